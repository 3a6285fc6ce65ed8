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

-- a table: the header cells' pieces, the rows' HTML
local function html_table(head, rows)
  return "<table><thead>" .. table.concat(head) .. "</thead><tbody>\n" .. table.concat(rows, "\n") ..
    "\n</tbody></table>"
end

-- mean ± std over seeds; the mean alone for one seed
local function pm(st, digits)
  if not st then return "–" end
  local f = "%." .. digits .. "f"
  if st.n == 1 then return string.format(f, st.mean) end
  return string.format(f .. " ± " .. f, st.mean, st.std)
end

-- the metrics where less is better
local LOWER = { fp_rate_empty = true, hd95 = true, assd = true }

local function bar_series(entries, names, at)
  local series = {}
  for _, e in ipairs(entries) do
    local s = { loss = e.loss, mean = {}, std = {} }
    for g, k in ipairs(names) do
      local st = e[at][k]
      s.mean[g], s.std[g] = st and st.mean, st and st.std
    end
    series[#series + 1] = s
  end
  return series
end

-- the entries (and records) of one data setting, or all when name is nil
local function only(list, name, field)
  if name == nil then return list end
  local out = {}
  for _, e in ipairs(list) do if e[field] == name then out[#out + 1] = e end end
  return out
end

-- the four plots of one data setting (or of the whole experiment)
local function plots_of(entries, records, suffix)
  suffix = suffix and " — " .. suffix or ""
  return {
    train_loss = V.lines("Training loss per epoch (mean over seeds)" .. suffix, "epoch", "training loss",
      S.mean_curves(records, "train_loss")),
    val_dice = V.lines("Validation Dice per epoch (mean over seeds)" .. suffix, "epoch", "validation Dice",
      S.mean_curves(records, "dice"), { ymin = 0, ymax = 1 }),
    final_metrics = V.bars("Final validation metrics (mean ± std over seeds)" .. suffix, "value", RATIOS,
      bar_series(entries, RATIOS, "final"), { ymax = 1 }),
    final_distances = V.bars("Final surface distances (mean ± std over seeds)" .. suffix, "pixels", DISTANCES,
      bar_series(entries, DISTANCES, "final")),
  }
end

-- per loss, one bar per data setting of a final metric
local function by_data(summary, key, title, opts)
  local names, series, pos = {}, {}, {}
  for i, st in ipairs(summary.settings) do names[i] = st.name end
  for _, e in ipairs(summary.losses) do
    local s = pos[e.loss]
    if not s then
      s = { loss = e.loss, mean = {}, std = {} }
      pos[e.loss] = s
      series[#series + 1] = s
    end
    for g, st in ipairs(summary.settings) do
      if st.name == e.data and e.final[key] then s.mean[g], s.std[g] = e.final[key].mean, e.final[key].std end
    end
  end
  return V.bars(title, key, names, series, opts)
end

--- The plots: name → SVG text. With data settings, the four plots of each
-- setting are named "<setting>.<plot>", and "dice_by_data",
-- "sensitivity_by_data" compare the settings.
function H.plots(summary, records)
  if not summary.settings then return plots_of(summary.losses, records) end
  local out = {}
  for _, st in ipairs(summary.settings) do
    for name, svg in pairs(plots_of(only(summary.losses, st.name, "data"), only(records, st.name, "setting"),
      st.name)) do
      out[st.name .. "." .. name] = svg
    end
  end
  out.dice_by_data = by_data(summary, "dice", "Final validation Dice per data setting (mean ± std over seeds)",
    { ymax = 1, xlabel = "data setting" })
  out.sensitivity_by_data = by_data(summary, "sensitivity",
    "Final validation sensitivity per data setting (mean ± std over seeds)", { ymax = 1, xlabel = "data setting" })
  return out
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

local function table_of(entries, at)
  local rows = {}
  local head = { "<tr><th>loss</th><th>seeds</th>" }
  for _, k in ipairs(R.METRICS) do head[#head + 1] = "<th>" .. esc(k) .. "</th>" end
  if at == "best" then head[#head + 1] = "<th>best epoch</th>" end
  head[#head + 1] = "</tr>"
  -- the best mean of each column in bold: the highest, or the lowest where less is better
  local top = {}
  for _, k in ipairs(R.METRICS) do
    local sign = LOWER[k] and -1 or 1
    for _, e in ipairs(entries) do
      local st = e[at][k]
      if st and (top[k] == nil or sign * st.mean > sign * top[k]) then top[k] = st.mean end
    end
  end
  for _, e in ipairs(entries) do
    local r = { string.format("<tr><td>%s</td><td>%d</td>", esc(e.name or e.loss), #e.seeds) }
    for _, k in ipairs(R.METRICS) do
      local st = e[at][k]
      r[#r + 1] = (st and st.mean == top[k] and '<td style="font-weight:bold">' or "<td>") ..
        pm(st, (k == "hd95" or k == "assd") and 2 or 3) .. "</td>"
    end
    if at == "best" then r[#r + 1] = "<td>" .. pm(e.best_epoch, 1) .. "</td>" end
    r[#r + 1] = "</tr>"
    rows[#rows + 1] = table.concat(r)
  end
  return html_table(head, rows)
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

-- one metric per loss (rows) and data setting (columns), the best of each
-- column (the highest, or the lowest where less is better) in bold
local function overview(summary, key, digits)
  local sign = LOWER[key] and -1 or 1
  local head = { "<tr><th>loss</th>" }
  for _, st in ipairs(summary.settings) do head[#head + 1] = "<th>" .. esc(st.name) .. "</th>" end
  head[#head + 1] = "</tr>"
  local rows, cell, order, top = {}, {}, {}, {}
  for _, e in ipairs(summary.losses) do
    if not cell[e.loss] then
      cell[e.loss] = { name = e.name or e.loss }
      order[#order + 1] = e.loss
    end
    cell[e.loss][e.data] = e.final[key]
    local st = e.final[key]
    if st and (not top[e.data] or sign * st.mean > sign * top[e.data]) then top[e.data] = st.mean end
  end
  for _, id in ipairs(order) do
    local r = { "<tr><td>" .. esc(cell[id].name) .. "</td>" }
    for _, st in ipairs(summary.settings) do
      local v = cell[id][st.name]
      local bold = v and top[st.name] == v.mean
      r[#r + 1] = (bold and '<td style="font-weight:bold">' or "<td>") .. pm(v, digits) .. "</td>"
    end
    r[#r + 1] = "</tr>"
    rows[#rows + 1] = table.concat(r)
  end
  return html_table(head, rows)
end

-- a data setting in words: where the images come from, how many
local function describe_data(d)
  local a = d.about
  local size = {}
  for i = 3, #(d.shape or {}) do size[#size + 1] = string.format("%d", d.shape[i]) end
  local what
  if type(a) == "table" and (a.kind == "synthetic" or a.kind == "mri") then
    what = string.format("%s, %s %.3g %% foreground, %.3g of the images without target, data seed %d",
      a.kind == "mri" and "lesions inserted into MRI slices" or "synthetic images", table.concat(size, "×"),
      a.foreground * 100, a.empty, a.seed)
  elseif type(a) == "table" and a.kind == "folder" then
    what = string.format("images from %s, masks from %s, %s", tostring(a.images), tostring(a.masks),
      table.concat(size, "×"))
  else
    what = "images of " .. table.concat(size, "×")
  end
  return string.format("%s; %d training and %d validation images.", what, d.train or 0, d.val or 0)
end

-- the tables and plots of one data setting (or of the whole experiment)
local function section(entries, plots, prefix, h)
  local p = function(name) return plots[prefix .. name] end
  return table.concat({
    h .. "Final epoch" .. h:gsub("<", "</", 1), table_of(entries, "final"),
    h .. "Best checkpoint (highest validation Dice)" .. h:gsub("<", "</", 1), table_of(entries, "best"),
    '<div class="plots">', p("train_loss"), p("val_dice"), p("final_metrics"), p("final_distances"), "</div>",
  }, "\n")
end

--- The page.
function H.report(summary, plots)
  local nl, nseeds = 0, 0
  local seen = {}
  for _, e in ipairs(summary.losses) do
    if not seen[e.loss] then nl, seen[e.loss] = nl + 1, true end
    nseeds = math.max(nseeds, #e.seeds)
  end
  local out = {
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>segloss experiment report</title>",
    "<style>" .. CSS .. "</style></head><body>",
    "<h1>segloss: which loss finds the small targets?</h1>",
    string.format('<p class="note">%d runs: %d losses × %s%d seed%s. The same U-Net is trained with each loss on ' ..
      "the training images and measured on the validation images every epoch; numbers are means ± sample " ..
      "standard deviation over the seeds. Dice, IoU, precision, sensitivity, specificity, HD95 and ASSD are " ..
      "means over the validation images that have a target; an image where nothing is predicted scores Dice 0 " ..
      "and HD95 = ASSD = the image diagonal. fp_rate_empty is the share of the validation images without " ..
      "target where anything is predicted (0 for a network that never predicts anything). In each column the " ..
      "best value is bold. The training losses of different losses are on different scales: compare their " ..
      "shapes, not their values.</p>", summary.runs, nl,
      summary.settings and (#summary.settings .. " data settings × ") or "", nseeds, nseeds == 1 and "" or "s"),
  }
  if summary.settings then
    out[#out + 1] = "<h2>Overview: final validation Dice</h2>"
    out[#out + 1] = overview(summary, "dice", 3)
    out[#out + 1] = "<h2>Overview: final sensitivity</h2>"
    out[#out + 1] = overview(summary, "sensitivity", 3)
    out[#out + 1] = "<h2>Overview: false-positive rate on images without target</h2>"
    out[#out + 1] = overview(summary, "fp_rate_empty", 3)
    out[#out + 1] = "<h2>Overview: HD95 (pixels)</h2>"
    out[#out + 1] = overview(summary, "hd95", 2)
    out[#out + 1] = '<div class="plots">' .. plots.dice_by_data .. plots.sensitivity_by_data .. "</div>"
    for _, st in ipairs(summary.settings) do
      out[#out + 1] = "<h2>Data: " .. esc(st.name) .. "</h2>"
      out[#out + 1] = '<p class="note">' .. esc(describe_data(st.data)) .. "</p>"
      out[#out + 1] = section(only(summary.losses, st.name, "data"), plots, st.name .. ".", "<h3>")
    end
  else
    if type(summary.config.data) == "table" then
      out[#out + 1] = '<p class="note">Data: ' .. esc(describe_data(summary.config.data)) .. "</p>"
    end
    out[#out + 1] = section(summary.losses, plots, "", "<h2>")
  end
  out[#out + 1] = "<h2>Configuration</h2>"
  out[#out + 1] = config_list(summary.config)
  out[#out + 1] = "</body></html>"
  return table.concat(out, "\n") .. "\n"
end

return H
