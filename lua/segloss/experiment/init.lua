--- Experiments: train the same U-Net with each loss and seed, measure it,
-- summarise over seeds, plot and report (docs/experiment.md).
--
--     local r = segloss.experiment.run{data = ds, model = {base = 8, depth = 2},
--       losses = {"bce", "dice", {"bce", pos_weight = "auto"}}, epochs = 20, seeds = {1, 2, 3},
--       out = "results/"}
--
-- @module segloss.experiment

local util = require "segloss.util"
local F = require "segloss.experiment.files"
local R = require "segloss.experiment.runner"
local S = require "segloss.experiment.summary"
local H = require "segloss.experiment.html"
local P = require "segloss.experiment.progress"

local describe = util.describe
local E = {}

--- The built-in default study (segloss.experiment.study).
E.study = require "segloss.experiment.study"

local function fail(fname, msg) error(fname .. ": " .. msg, 0) end

-- loss name → criterion class (segloss.Dice for "dice")
local function class_of(name)
  local classes = require("segloss.criterion").classes
  for class, n in pairs(classes) do
    if n == name then return class end
  end
end

-- The activation a loss gets on the binary U-Net's logits when the user
-- gives none: the sigmoid where the loss takes it, "none" for a loss on real
-- scores (the Lovász hinge, whose sign is the prediction as the sigmoid's
-- 1/2), nil for a loss of classes only (ce, lovasz_softmax).
local function default_activation(name)
  for _, d in ipairs(require("segloss").losses()) do
    if d.name == name then
      for _, a in ipairs(d.activations) do
        if a == "sigmoid" then return "sigmoid" end
      end
      return d.real_x and "none" or nil
    end
  end
  return "sigmoid"
end

-- the text of an option value in a loss id
local function vtext(v)
  if type(v) == "table" then
    local p = {}
    for i, e in ipairs(v) do p[i] = vtext(e) end
    return table.concat(p, "-")
  end
  if math.type(v) == "float" then
    -- the shortest text that reads back as v: 0.7, not 0.69999999999999996
    for digits = 1, 17 do
      local t = string.format("%." .. digits .. "g", v)
      if tonumber(t) == v then return t end
    end
  end
  return tostring(v)
end

local function slug(s) return (s:gsub("[^%w_.=-]", "-")) end

--- The losses of the experiment as {id, name, spec, make}: a loss name
-- ("dice"), a name with options ({"bce", pos_weight = "auto"}), or
-- {name = "...", criterion = crit or function returning one}. Options
-- without `activation` get activation = "sigmoid" (the U-Net gives logits),
-- or "none" for a loss that takes no sigmoid (the Lovász hinge's scores).
function E.losses(list, fname)
  fname = fname or "segloss.experiment.losses"
  if type(list) ~= "table" or #list == 0 then fail(fname, "losses must be a non-empty list, got " .. describe(list)) end
  local segloss = require "segloss"
  local out, seen = {}, {}
  for i, l in ipairs(list) do
    local e
    if type(l) == "string" then l = { l } end
    if type(l) ~= "table" then fail(fname, string.format("losses[%d] must be a loss name or a table, got %s", i,
      describe(l))) end
    if l.criterion ~= nil then
      local c = l.criterion
      if type(l.name) ~= "string" or l.name == "" then
        fail(fname, string.format("losses[%d] with a criterion needs a name", i))
      end
      local make = type(c) == "function" and c or function() return c end
      local probe = make()
      if not require("segloss.criterion").is(probe) then
        fail(fname, string.format("losses[%d].criterion must be a segloss criterion or a function returning one, " ..
          "got %s", i, describe(probe)))
      end
      e = { id = slug(l.name), name = l.name, spec = tostring(probe), make = make }
    else
      local name = l[1]
      local class = type(name) == "string" and class_of(name)
      if not class then
        local names = {}
        for _, n in pairs(require("segloss.criterion").classes) do names[n] = true end
        local s = util.suggest(name, names)
        fail(fname, string.format("losses[%d]: unknown loss %s%s", i, describe(name),
          s and string.format(' (did you mean "%s"?)', s) or ""))
      end
      local opts, keys = {}, {}
      for k, v in pairs(l) do
        if k ~= 1 and k ~= "name" then
          if type(k) ~= "string" then fail(fname, string.format("losses[%d]: options must be named", i)) end
          opts[k] = v
          keys[#keys + 1] = k
        end
      end
      table.sort(keys)
      local id = name
      for _, k in ipairs(keys) do id = id .. "_" .. k .. "=" .. vtext(opts[k]) end
      if opts.activation == nil then
        opts.activation = default_activation(name)
        if not opts.activation then
          fail(fname, string.format("losses[%d]: %s is a loss over classes (no sigmoid), and the experiments " ..
            "train a binary U-Net on logits: use its binary form (lovasz_hinge for lovasz_softmax, bce for ce), " ..
            "or give an activation", i, name))
        end
      end
      local ctor = segloss[class]
      local probe = ctor(opts) -- checks the options now, not after hours of training
      local display = type(l.name) == "string" and l.name or id
      e = { id = slug(display), name = display, spec = tostring(probe), make = function() return ctor(opts) end }
    end
    if seen[e.id] then fail(fname, string.format("losses[%d]: the loss %q is listed twice", i, e.id)) end
    seen[e.id] = true
    e.index = i
    out[#out + 1] = e
  end
  return out
end

--- "k/n" (or {k, n}) → k, n with 1 <= k <= n.
function E.parse_shard(s, fname)
  fname = fname or "segloss.experiment.run"
  local k, n
  if type(s) == "string" then
    k, n = s:match("^%s*(%d+)%s*/%s*(%d+)%s*$")
    k, n = tonumber(k), tonumber(n)
  elseif type(s) == "table" then
    k, n = math.tointeger(s[1]), math.tointeger(s[2])
  end
  if not (k and n and n >= 1 and k >= 1 and k <= n) then
    fail(fname, 'option shard must be "k/n" with 1 <= k <= n, got ' .. describe(s))
  end
  return k, n
end

--- The grid of jobs {setting, loss, seed, id}, sorted by data setting (as
-- listed), loss id, seed; and the share of shard k of n: jobs k, k + n, k +
-- 2n, ... (disjoint, covering). settings: a list of {id, index} (or nil for
-- one unnamed dataset, whose run ids carry no setting).
function E.jobs(losses, seeds, k, n, settings)
  local all = {}
  for _, st in ipairs(settings or { false }) do
    for _, l in ipairs(losses) do
      for _, s in ipairs(seeds) do
        local id = l.id .. "-s" .. s
        if st then id = st.id .. "." .. id end
        all[#all + 1] = { setting = st or nil, loss = l, seed = s, id = id }
      end
    end
  end
  table.sort(all, function(a, b)
    local sa, sb = a.setting and a.setting.index or 0, b.setting and b.setting.index or 0
    if sa ~= sb then return sa < sb end
    if a.loss.id ~= b.loss.id then return a.loss.id < b.loss.id end
    return a.seed < b.seed
  end)
  if not k then return all end
  local mine = {}
  for j, job in ipairs(all) do
    if (j - 1) % n == k - 1 then mine[#mine + 1] = job end
  end
  return mine
end

-- a list of data settings: {{name = "...", data = dataset | {train, val} |
-- function returning either}, ...}
local function is_settings(v)
  return type(v) == "table" and getmetatable(v) == nil and v.x == nil and v.train == nil and v.val == nil
    and type(v[1]) == "table" and getmetatable(v[1]) == nil and v[1].x == nil
end
E.is_settings = is_settings

local RUN_OPTS = {
  data = function(v)
    if type(v) ~= "table" then
      return 'a dataset, {train = ..., val = ...}, or a list of settings {{name = "...", data = ...}, ...}'
    end
  end,
  model = function(v) if type(v) ~= "table" then return "a table of U-Net options" end end,
  losses = function(v) if type(v) ~= "table" then return "a list of losses" end end,
  epochs = util.is.int(1),
  seeds = function(v)
    if type(v) ~= "table" or #v == 0 then return "a non-empty list of integers" end
    local seen = {}
    for _, s in ipairs(v) do
      if not math.tointeger(s) or s < 0 then return "a non-empty list of integers >= 0" end
      if seen[s] then return "a list of distinct integers (" .. s .. " is listed twice)" end
      seen[s] = true
    end
  end,
  batch = util.is.int(1),
  lr = util.is.num(0, math.huge, true, true),
  optim = util.is.oneof("adam", "adamw"),
  out = function(v) if type(v) ~= "string" or v == "" then return "a directory name" end end,
  resume = util.is.bool,
  shard = function(v) if type(v) ~= "string" and type(v) ~= "table" then return '"k/n"' end end,
  threshold = util.is.num(0, 1, true, true),
  progress = function(v)
    if v ~= true and v ~= false and v ~= "bar" and v ~= "lines" then return 'true, false, "bar" or "lines"' end
  end,
  augment = util.is.bool,
  split = util.is.num(0, 1, true, true),
  split_seed = util.is.int(0),
  report = util.is.bool,
}

local OPTIM = { adam = "Adam", adamw = "AdamW" }

local function check_dataset(fname, what, ds)
  if type(ds) ~= "table" and type(ds) ~= "userdata" then fail(fname, what .. " must be a dataset, got " ..
    describe(ds)) end
  local T = require("segloss.core").tensor
  if not T.istensor(ds.x) or not T.istensor(ds.t) then fail(fname, what .. ".x and .t must be tensors") end
  if ds.x:dim() < 4 or ds.x:dim() > 5 then
    fail(fname, what .. ".x must be (N, C, H, W) or (N, C, D, H, W), got " .. util.shapestr(ds.x))
  end
  if ds.t:dim() ~= ds.x:dim() or ds.t:size(2) ~= 1 or ds.t:size(1) ~= ds.x:size(1) then
    fail(fname, what .. ".t must be (N, 1, spatial...) like x, got " .. util.shapestr(ds.t) .. " for x " ..
      util.shapestr(ds.x))
  end
  if type(ds.batches) ~= "function" and not (getmetatable(ds) and ds.batches) then
    fail(fname, what .. " has no batches method")
  end
  return ds
end

-- the record's parts that must match for a finished run to be reused
local function config_of(cfg, job)
  return {
    loss = job.loss.id, loss_name = job.loss.name, loss_spec = job.loss.spec, seed = job.seed,
    epochs = cfg.epochs, batch = cfg.batch, lr = cfg.lr, optim = cfg.optim, threshold = cfg.threshold,
    augment = cfg.augment, model = cfg.model,
    data = { train = cfg.train.n or cfg.train.x:size(1), val = cfg.val.n or cfg.val.x:size(1),
      shape = cfg.train.x:shape(), setting = job.setting and job.setting.name or nil,
      about = type(cfg.train.about) == "table" and cfg.train.about or nil, hash = cfg.data_hash },
  }
end

-- the fingerprint of a setting's data: its four tensors' hashes
local function data_hash(train, val)
  local h = require("segloss.core").data_hash
  return table.concat({ h(train.x), h(train.t), h(val.x), h(val.t) }, "-")
end

-- the finished runs of a directory's runs/ (id → record)
local function finished(dir)
  local runs = {}
  local base = F.join(dir, "runs")
  for _, id in ipairs(F.list(base)) do
    local rec = F.read_json(F.join(F.join(base, id), "run.json"))
    if type(rec) == "table" and rec.complete == true then runs[id] = rec end
  end
  return runs
end

-- the order of run's list: data settings and losses as listed, then seeds
local function in_order(records)
  table.sort(records, function(a, b)
    local sa, sb = a.setting_index or 0, b.setting_index or 0
    if sa ~= sb then return sa < sb end
    if a.loss_index ~= b.loss_index then return a.loss_index < b.loss_index end
    return a.config.seed < b.config.seed
  end)
  return records
end

local function write_outputs(out, records)
  in_order(records)
  local summary = S.summarise(records)
  F.write(F.join(out, "summary.json"), F.json(summary))
  F.write(F.join(out, "summary.csv"), S.csv(summary))
  local plots = H.plots(summary, records)
  for name, svg in pairs(plots) do F.write(F.join(out, name .. ".svg"), svg) end
  F.write(F.join(out, "report.html"), H.report(summary, plots))
  return summary
end

-- records in grid order, read back from disk (so that a run trained now and
-- one read back give the same bits)
local function grid_records(out, jobs)
  local list = {}
  for _, job in ipairs(jobs) do
    local rec = F.read_json(F.join(F.join(F.join(out, "runs"), job.id), "run.json"))
    list[#list + 1] = rec
  end
  return list
end

--- Runs an experiment; see docs/experiment.md. Returns {out, runs (the
-- records of this call's jobs, in grid order), trained, skipped, summary
-- (nil when sharded), report (its path)}.
function E.run(opts)
  local fname = "segloss.experiment.run"
  opts = util.options(fname, opts, RUN_OPTS)
  for _, k in ipairs { "data", "losses", "out" } do
    if opts[k] == nil then fail(fname, "option " .. k .. " is required") end
  end
  local cfg = {
    epochs = opts.epochs or 20, batch = opts.batch or 8, lr = opts.lr or 1e-3, optim = opts.optim or "adam",
    threshold = opts.threshold or 0.5, augment = opts.augment or false,
  }
  cfg.optim_class = OPTIM[cfg.optim]
  local seeds = opts.seeds or { 1 }
  -- the data: one dataset, or settings resolved (built, split, checked)
  -- the first time one of their jobs needs them
  local function resolve(data, what)
    if type(data) == "function" then data = data() end
    if type(data) ~= "table" then fail(fname, what .. " must be a dataset or {train = ..., val = ...}, got " ..
      describe(data)) end
    local train, val
    if data.train ~= nil or data.val ~= nil then
      train = check_dataset(fname, what .. ".train", data.train)
      val = check_dataset(fname, what .. ".val", data.val)
    else
      check_dataset(fname, what, data)
      train, val = data:split(opts.split or 0.8, opts.split_seed or 1)
      check_dataset(fname, what .. ":split()'s train", train)
      check_dataset(fname, what .. ":split()'s validation", val)
    end
    val.n = val.n or val.x:size(1)
    local model = {}
    for key, v in pairs(opts.model or {}) do model[key] = v end
    model.input = model.input or train.x:size(2)
    model.output = model.output or 1
    model.dims = model.dims or train.x:dim() - 2
    if model.output ~= 1 then fail(fname, "the runner trains binary segmentation: model.output must be 1") end
    -- the model's options and the data's sizes are checked now, not after
    -- the first runs have trained
    local depth = math.tointeger(model.depth or 4)
    if depth and depth >= 0 and depth <= 10 then
      local m = 1 << depth
      for a = 3, train.x:dim() do
        if train.x:size(a) % m ~= 0 then
          fail(fname, string.format("%s: a U-Net of depth %d needs spatial sizes divisible by %d, the images are %s",
            what, depth, m, util.shapestr(train.x)))
        end
      end
    end
    local ok, err = pcall(require("segloss.nn").UNet, model)
    if not ok then fail(fname, "model: " .. tostring(err):gsub("^segloss%.nn%.UNet: ", "")) end
    return { train = train, val = val, model = model, hash = data_hash(train, val) }
  end
  local settings, resolved = nil, {}
  if is_settings(opts.data) then
    settings = {}
    local seen = {}
    for i, st in ipairs(opts.data) do
      local what = string.format("data[%d]", i)
      if type(st) ~= "table" or type(st.name) ~= "string" or not st.name:match("^[%w_-]+$") then
        fail(fname, what .. ' must be {name = "letters, digits, _ or -", data = ...}, got ' ..
          describe(type(st) == "table" and st.name or st))
      end
      if seen[st.name] then fail(fname, what .. ": the data setting " .. st.name .. " is listed twice") end
      if st.data == nil then fail(fname, what .. " (" .. st.name .. ") has no data") end
      seen[st.name] = true
      settings[i] = { id = st.name, name = st.name, index = i, data = st.data, what = what }
    end
  else
    resolved[false] = resolve(opts.data, "data")
  end
  local function setting_of(job)
    local key = job.setting or false
    if not resolved[key] then resolved[key] = resolve(job.setting.data, job.setting.what) end
    return resolved[key]
  end
  local losses = E.losses(opts.losses, fname)
  local k, n
  if opts.shard ~= nil then k, n = E.parse_shard(opts.shard, fname) end
  local all = E.jobs(losses, seeds, nil, nil, settings)
  local jobs = E.jobs(losses, seeds, k, n, settings)
  -- the options of one job: its data and model, the rest shared
  local function job_cfg(job)
    local d = setting_of(job)
    return setmetatable({ train = d.train, val = d.val, model = d.model, data_hash = d.hash }, { __index = cfg })
  end
  local out = opts.out
  F.mkdir(F.join(out, "runs"), fname)

  local clock = P.clock()
  local mode = opts.progress
  if mode == nil or mode == true then mode = P.isatty() and "bar" or "lines" end
  if mode == false then mode = "off" end
  local resume = opts.resume ~= false
  local done = resume and finished(out) or {}
  local todo = {}
  for _, job in ipairs(jobs) do
    local rec = done[job.id]
    local want = F.json(config_of(job_cfg(job), job))
    if not (rec and F.json(rec.config) == want) then todo[#todo + 1] = job end
  end
  local prog = P.new(mode, #todo * cfg.epochs, clock)
  local grid = { losses = {}, seeds = seeds }
  for i, l in ipairs(losses) do grid.losses[i] = l.id end
  if settings then
    grid.data = {}
    for i, st in ipairs(settings) do grid.data[i] = st.id end
  end
  local trained, skipped = {}, {}
  local ti = 0
  for _, job in ipairs(jobs) do
    local dir = F.join(F.join(out, "runs"), job.id)
    local rec = done[job.id]
    local jc = job_cfg(job)
    local config = config_of(jc, job)
    if rec and F.json(rec.config) == F.json(config) then
      skipped[#skipped + 1] = job.id
      prog:line(string.format("%s: finished before, skipped", job.id))
    else
      ti = ti + 1
      if rec then prog:line(string.format("%s: finished with other settings, trained again", job.id)) end
      F.mkdir(dir)
      local record = { config = config, loss_index = job.loss.index, grid = grid, complete = false,
        format = "segloss.experiment run 1", setting = job.setting and job.setting.name or nil,
        setting_index = job.setting and job.setting.index or nil }
      local seconds
      record, seconds = R.train(job, jc, record, dir, function(e)
        prog:epoch(job.id, ti, #todo, e, cfg.epochs)
      end, clock)
      F.write(F.join(dir, "curves.csv"), R.curves_csv(record))
      F.write(F.join(dir, "timing.json"), F.json({ seconds = seconds,
        threads = require("segloss").threads() }))
      F.write(F.join(dir, "run.json"), F.json(record)) -- last: its complete = true marks the run finished
      trained[#trained + 1] = job.id
      prog:line(string.format("run %d/%d %s: done in %s, final dice %.3f, best %.3f (epoch %d)%s", ti, #todo,
        job.id, P.hms(seconds), record.final.dice or 0, record.best.dice or 0, record.best_epoch,
        ti < #todo and "; ETA " .. prog:eta() or ""))
    end
  end
  prog:finish()
  local result = { out = out, trained = trained, skipped = skipped, runs = grid_records(out, jobs) }
  if not k and opts.report ~= false then
    result.summary = write_outputs(out, grid_records(out, all))
    result.report = F.join(out, "report.html")
  end
  return result
end

--- Combines the outputs of shards (directories written by run with shard
-- = "k/n", or any runs of one grid) into out: the runs are copied to
-- out/runs/ (unless already there) and summary, plots and report written.
-- Every run of the grid the runs name must be present, unless opts.partial.
-- Returns {out, summary, runs, report}.
function E.merge(dirs, out, opts)
  local fname = "segloss.experiment.merge"
  if type(dirs) == "string" then dirs = { dirs } end
  if type(dirs) ~= "table" or #dirs == 0 then fail(fname, "dirs must be a non-empty list of directories") end
  if type(out) ~= "string" or out == "" then fail(fname, "out must be a directory name, got " .. describe(out)) end
  opts = util.options(fname, opts, { partial = util.is.bool })
  local runs, from = {}, {}
  for i, d in ipairs(dirs) do
    if type(d) ~= "string" or not F.isdir(d) then
      fail(fname, string.format("dirs[%d]: %s is not a directory", i, describe(d)))
    end
    for id, rec in pairs(finished(d)) do
      if runs[id] and F.json(runs[id]) ~= F.json(rec) then
        fail(fname, string.format("the run %s differs between %s and %s", id, from[id], d))
      end
      runs[id], from[id] = rec, d
    end
  end
  local ids = {}
  for id in pairs(runs) do ids[#ids + 1] = id end
  if #ids == 0 then fail(fname, "no finished run in " .. table.concat(dirs, ", ")) end
  table.sort(ids)
  -- every run must belong to the same grid, and the grid must be complete
  local grid = F.json(runs[ids[1]].grid)
  for _, id in ipairs(ids) do
    if F.json(runs[id].grid) ~= grid then
      fail(fname, string.format("the runs %s and %s belong to different experiments", ids[1], id))
    end
  end
  -- and have been trained the same way: the configurations may differ only
  -- in the loss and the seed, and in the data between settings
  local function shared(rec)
    local c = {}
    for key, v in pairs(rec.config) do
      if key ~= "loss" and key ~= "loss_name" and key ~= "loss_spec" and key ~= "seed" and key ~= "data" then
        c[key] = v
      end
    end
    return F.json(c)
  end
  local ref, data_of = shared(runs[ids[1]]), {}
  for _, id in ipairs(ids) do
    if shared(runs[id]) ~= ref then
      fail(fname, string.format("the runs %s (%s) and %s (%s) were trained with different settings", ids[1],
        from[ids[1]], id, from[id]))
    end
    local key = runs[id].setting or ""
    local d = F.json(runs[id].config.data)
    if data_of[key] and data_of[key][1] ~= d then
      fail(fname, string.format("the runs %s (%s) and %s (%s) were trained on different data", data_of[key][2],
        from[data_of[key][2]], id, from[id]))
    end
    data_of[key] = data_of[key] or { d, id }
  end
  local g = runs[ids[1]].grid
  local missing = {}
  for _, d in ipairs(g.data or { false }) do
    for _, l in ipairs(g.losses) do
      for _, s in ipairs(g.seeds) do
        local id = (d and d .. "." or "") .. l .. "-s" .. s
        if not runs[id] then missing[#missing + 1] = id end
      end
    end
  end
  if #missing > 0 and not opts.partial then
    fail(fname, string.format("%d of the grid's runs are missing: %s", #missing, table.concat(missing, ", ")))
  end
  F.mkdir(F.join(out, "runs"), fname)
  local records = {}
  for _, id in ipairs(ids) do
    local src, dst = F.join(F.join(from[id], "runs"), id), F.join(F.join(out, "runs"), id)
    if F.read(F.join(dst, "run.json")) ~= F.read(F.join(src, "run.json")) then
      F.mkdir(dst)
      for _, name in ipairs { "best.npz", "curves.csv", "timing.json", "run.json" } do
        F.copy(F.join(src, name), F.join(dst, name))
      end
    end
    records[#records + 1] = F.read_json(F.join(dst, "run.json"))
  end
  local summary = write_outputs(out, records)
  return { out = out, summary = summary, runs = records, report = F.join(out, "report.html"), missing = missing }
end

--- Metrics of predicted masks against reference masks on disk (files or
-- directories paired by stem): segloss.experiment.eval(pred, ref, opts) →
-- the table of lua/segloss/experiment/eval.lua (`segloss eval`).
function E.eval(pred, ref, opts) return require("segloss.experiment.eval").eval(pred, ref, opts) end

return E
