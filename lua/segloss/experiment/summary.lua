--- The summary of an experiment over seeds (internal): mean and sample
-- standard deviation (n - 1; 0 for one seed) per loss of every metric, for
-- the final epoch and for the best checkpoint; and the mean curves.
-- @module segloss.experiment.summary

local R = require "segloss.experiment.runner"
local F = require "segloss.experiment.files"

local S = {}

--- mean and sample std of a list (nil entries left out; nil when none)
function S.stats(xs)
  local n, s = 0, 0
  for _, x in ipairs(xs) do n, s = n + 1, s + x end
  if n == 0 then return nil end
  local mean = s / n
  local q = 0
  for _, x in ipairs(xs) do q = q + (x - mean) ^ 2 end
  return { mean = mean, std = n > 1 and math.sqrt(q / (n - 1)) or 0, n = n }
end

-- the runs grouped by (data setting, loss): settings and losses in the
-- order of the experiment's lists, runs by seed
local function by_loss(records)
  local groups, order = {}, {}
  for _, r in ipairs(records) do
    local key = (r.setting or "") .. "\0" .. r.config.loss
    if not groups[key] then
      groups[key] = { id = r.config.loss, name = r.config.loss_name, index = r.loss_index, data = r.setting,
        data_index = r.setting_index or 0, runs = {} }
      order[#order + 1] = groups[key]
    end
    table.insert(groups[key].runs, r)
  end
  table.sort(order, function(a, b)
    if a.data_index ~= b.data_index then return a.data_index < b.data_index end
    if a.index ~= b.index then return a.index < b.index end
    return a.id < b.id
  end)
  for _, g in ipairs(order) do
    table.sort(g.runs, function(a, b) return a.config.seed < b.config.seed end)
  end
  return order
end
S.by_loss = by_loss

--- The summary table of finished run records.
function S.summarise(records)
  local losses = {}
  for _, g in ipairs(by_loss(records)) do
    local e = { loss = g.id, name = g.name, data = g.data, seeds = {}, final = {}, best = {} }
    for _, r in ipairs(g.runs) do e.seeds[#e.seeds + 1] = r.config.seed end
    for _, at in ipairs { "final", "best" } do
      for _, k in ipairs(R.METRICS) do
        local xs = {}
        for _, r in ipairs(g.runs) do xs[#xs + 1] = r[at][k] end
        e[at][k] = S.stats(xs)
      end
    end
    local be = {}
    for _, r in ipairs(g.runs) do be[#be + 1] = r.best_epoch end
    e.best_epoch = S.stats(be)
    losses[#losses + 1] = e
  end
  local c = records[1] and records[1].config or {}
  local config = {}
  for k, v in pairs(c) do
    if k ~= "loss" and k ~= "loss_name" and k ~= "loss_spec" and k ~= "seed" then config[k] = v end
  end
  -- the data settings in order, each with its own data description
  local settings, seen = nil, {}
  for _, r in ipairs(records) do
    if r.setting and not seen[r.setting] then
      settings = settings or {}
      seen[r.setting] = true
      settings[#settings + 1] = { name = r.setting, index = r.setting_index, data = r.config.data }
    end
  end
  if settings then
    table.sort(settings, function(a, b) return a.index < b.index end)
    config.data = nil
  end
  return { losses = losses, config = config, runs = #records, settings = settings,
    metrics = R.METRICS, std = "sample standard deviation over seeds (n - 1; 0 for one seed)" }
end

--- summary.csv: one line per loss and point (final, best).
function S.csv(summary)
  local data = summary.settings ~= nil
  local head = { "loss", "at", "seeds" }
  if data then table.insert(head, 1, "data") end
  for _, k in ipairs(R.METRICS) do head[#head + 1] = k .. "_mean"; head[#head + 1] = k .. "_std" end
  local lines = { table.concat(head, ",") }
  for _, e in ipairs(summary.losses) do
    for _, at in ipairs { "final", "best" } do
      local f = { e.loss, at, tostring(#e.seeds) }
      if data then table.insert(f, 1, e.data) end
      for _, k in ipairs(R.METRICS) do
        local st = e[at][k]
        f[#f + 1] = st and F.num(st.mean) or ""
        f[#f + 1] = st and F.num(st.std) or ""
      end
      lines[#lines + 1] = table.concat(f, ",")
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Per loss, the mean over seeds of a curve (train_loss, dice, ...) per epoch.
function S.mean_curves(records, key)
  local out = {}
  for _, g in ipairs(by_loss(records)) do
    local ys = {}
    for e = 1, #g.runs[1].curves do
      local xs = {}
      for _, r in ipairs(g.runs) do
        local c = r.curves[e]
        if c and c[key] then xs[#xs + 1] = c[key] end
      end
      local st = S.stats(xs)
      ys[e] = st and st.mean
    end
    out[#out + 1] = { loss = g.id, name = g.name, data = g.data, y = ys }
  end
  return out
end

return S
