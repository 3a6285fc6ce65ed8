--- report.html (internal): one self-contained page, inline CSS and SVG, the
-- summary tables and the plots; no script and nothing fetched.
-- @module segloss.experiment.html

local R = require "segloss.experiment.runner"
local S = require "segloss.experiment.summary"
local V = require "segloss.experiment.svg"

local esc = V.escape

local H = {}

local RATIOS = { "dice", "iou", "precision", "sensitivity", "specificity", "fp_rate_empty" }
local DISTANCES = { "hd95", "assd" }

local function pm(st, digits)
  if not st then return "–" end
  local f = "%." .. digits .. "f"
  return string.format(f .. " ± " .. f, st.mean, st.std)
end

local function bar_series(summary, names, at)
  local series = {}
  for _, e in ipairs(summary.losses) do
    local s = { loss = e.loss, mean = {}, std = {} }
    for g, k in ipairs(names) do
      local st = e[at][k]
      s.mean[g], s.std[g] = st and st.mean, st and st.std
    end
    series[#series + 1] = s
  end
  return series
end

--- The plots: name → SVG text.
function H.plots(summary, records)
  return {
    train_loss = V.lines("Training loss per epoch (mean over seeds)", "epoch", "training loss",
      S.mean_curves(records, "train_loss")),
    val_dice = V.lines("Validation Dice per epoch (mean over seeds)", "epoch", "validation Dice",
      S.mean_curves(records, "dice"), { ymin = 0, ymax = 1 }),
    final_metrics = V.bars("Final validation metrics (mean ± std over seeds)", "value", RATIOS,
      bar_series(summary, RATIOS, "final"), { ymax = 1 }),
    final_distances = V.bars("Final surface distances (mean ± std over seeds)", "pixels", DISTANCES,
      bar_series(summary, DISTANCES, "final")),
  }
end

local CSS = [[
body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f3f3f3}tr.best td{font-weight:bold}
.plots svg{display:block;margin:1em 0;max-width:100%;height:auto}
.note{color:#555;font-size:.9em}code{background:#f6f6f6;padding:0 .2em}
]]

local function table_of(summary, at)
  local rows = {}
  local head = { "<tr><th>loss</th><th>seeds</th>" }
  for _, k in ipairs(R.METRICS) do head[#head + 1] = "<th>" .. esc(k) .. "</th>" end
  if at == "best" then head[#head + 1] = "<th>best epoch</th>" end
  head[#head + 1] = "</tr>"
  -- the loss with the highest mean Dice in bold
  local top, topv = nil, -math.huge
  for i, e in ipairs(summary.losses) do
    local d = e[at].dice
    if d and d.mean > topv then top, topv = i, d.mean end
  end
  for i, e in ipairs(summary.losses) do
    local r = { string.format('<tr%s><td>%s</td><td>%d</td>', i == top and ' class="best"' or "", esc(e.name or e.loss),
      #e.seeds) }
    for _, k in ipairs(R.METRICS) do
      r[#r + 1] = "<td>" .. pm(e[at][k], (k == "hd95" or k == "assd") and 2 or 3) .. "</td>"
    end
    if at == "best" then r[#r + 1] = "<td>" .. pm(e.best_epoch, 1) .. "</td>" end
    r[#r + 1] = "</tr>"
    rows[#rows + 1] = table.concat(r)
  end
  return "<table><thead>" .. table.concat(head) .. "</thead><tbody>\n" .. table.concat(rows, "\n") ..
    "\n</tbody></table>"
end

-- a configuration value as text: lists in brackets, tables with sorted keys
local function text(v)
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  if #v > 0 then
    for i, e in ipairs(v) do parts[i] = text(e) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = k .. " = " .. text(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function config_list(c)
  local keys = {}
  for k in pairs(c) do keys[#keys + 1] = k end
  table.sort(keys)
  local items = {}
  for _, k in ipairs(keys) do
    items[#items + 1] = "<li><code>" .. esc(k) .. "</code>: " .. esc(text(c[k])) .. "</li>"
  end
  return "<ul>" .. table.concat(items) .. "</ul>"
end

--- The page.
function H.report(summary, plots)
  local out = {
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>segloss experiment report</title>",
    "<style>" .. CSS .. "</style></head><body>",
    "<h1>segloss: which loss finds the small targets?</h1>",
    string.format('<p class="note">%d runs: %d losses × seeds; U-Net trained on the training set, measured on ' ..
      "the validation set every epoch. Mean ± sample standard deviation over seeds; fp_rate_empty is the share " ..
      "of validation images without target where anything is predicted.</p>", summary.runs, #summary.losses),
    "<h2>Final epoch</h2>", table_of(summary, "final"),
    "<h2>Best checkpoint (highest validation Dice)</h2>", table_of(summary, "best"),
    '<h2>Plots</h2><div class="plots">',
    plots.train_loss, plots.val_dice, plots.final_metrics, plots.final_distances,
    "</div>",
    "<h2>Configuration</h2>", config_list(summary.config),
    "</body></html>",
  }
  return table.concat(out, "\n") .. "\n"
end

return H
