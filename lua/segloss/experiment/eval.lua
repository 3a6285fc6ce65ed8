--- Metrics of predicted masks against reference masks on disk: the logic of
-- `segloss eval` (docs/experiment.md, "Evaluating saved masks").
--
--     local E = require "segloss.experiment.eval"
--     local r = E.eval("pred/", "ref/", {classes = 2, spacing = {0.8, 0.8}})
--     io.write(E.text(r))            -- or E.json(r)
--
-- PRED and REF are each a mask file (.png or .npy) or a directory of them;
-- in directories files pair by stem (pred/a.png with ref/a.png or
-- ref/a.npy). Each pair is evaluated on its own with
-- `segloss.metrics.evaluate`, so images may differ in size between pairs.
-- @module segloss.experiment.eval

local core = require "segloss.core"
local metrics = require "segloss.metrics"
local util = require "segloss.util"
local F = require "segloss.experiment.files"

local M = {}

--- The reported metrics, in the order of the table's columns.
M.METRICS = { "dice", "iou", "precision", "sensitivity", "specificity", "hd95", "assd" }

local FNAME = "segloss.experiment.eval"

local function fail(msg) error(FNAME .. ": " .. msg, 0) end

local function ext(name) return (name:match("%.([%w]+)$") or ""):lower() end
local function base(path) return path:match("([^/]*)/*$") end
local function stem(name) return name:match("^(.*)%.[%w]+$") or name end
local function dims(t) return table.concat(t:shape(), "x") end

-- the message of an error raised by segloss, without its function's name
local function reason(e) return (tostring(e):gsub("^segloss%.[%w_.:]+: ", "")) end

-- path → "dir" or "file"; anything else is an error naming it
local function kind(what, path)
  if type(path) ~= "string" or path == "" then
    fail(string.format("%s must be a file or directory name, got %s", what, util.describe(path)))
  end
  if pcall(core.data_listdir, path) then return "dir" end
  local f = io.open(path, "rb")
  if not f then fail(string.format("%s '%s' does not exist or cannot be read", what, path)) end
  f:close()
  local e = ext(path)
  if e == "png" or e == "npy" then return "file" end
  fail(string.format("%s '%s' is neither a directory nor a .png or .npy file", what, path))
end

-- the .png and .npy files of a directory by stem; two files of one stem are an error
local function listing(dir)
  local by, stems = {}, {}
  local names = core.data_listdir(dir)
  table.sort(names)
  for _, nm in ipairs(names) do
    local e = ext(nm)
    if e == "png" or e == "npy" then
      local st = stem(nm)
      local path = F.join(dir, nm)
      if by[st] then
        fail(string.format("'%s' and '%s' have the same stem; keep one of them", by[st], path))
      end
      by[st] = path
      stems[#stems + 1] = st
    end
  end
  return by, stems
end

-- The pairs {name, pred, ref} of two paths, and the files without a partner.
local function pairs_of(pred, ref, partial)
  local kp, kr = kind("prediction", pred), kind("reference", ref)
  if kp ~= kr then
    fail(string.format("the prediction '%s' is a %s and the reference '%s' a %s; give two files or two directories",
      pred, kp == "dir" and "directory" or "file", ref, kr == "dir" and "directory" or "file"))
  end
  if kp == "file" then return { { name = stem(base(pred)), pred = pred, ref = ref } }, { pred = {}, ref = {} } end
  local pdir, rdir = pred:gsub("/+$", ""), ref:gsub("/+$", "")
  if pdir == "" then pdir = "/" end
  if rdir == "" then rdir = "/" end
  local pby, pstems = listing(pdir)
  local rby, rstems = listing(rdir)
  local list, missing = {}, { pred = {}, ref = {} }
  for _, st in ipairs(pstems) do
    if rby[st] then
      list[#list + 1] = { name = st, pred = pby[st], ref = rby[st] }
    elseif partial then
      missing.ref[#missing.ref + 1] = pby[st]
    else
      fail(string.format("no reference for the prediction '%s' in '%s' (expected %s.png or %s.npy; " ..
        "--partial evaluates the pairs only)", pby[st], rdir, st, st))
    end
  end
  for _, st in ipairs(rstems) do
    if not pby[st] then
      if partial then
        missing.pred[#missing.pred + 1] = rby[st]
      else
        fail(string.format("no prediction for the reference '%s' in '%s' (expected %s.png or %s.npy; " ..
          "--partial evaluates the pairs only)", rby[st], pdir, st, st))
      end
    end
  end
  if #list == 0 then
    fail(string.format("no pairs of .png or .npy files with the same stem in '%s' and '%s'", pdir, rdir))
  end
  return list, missing
end

-- A file as a (1, 1, S...) tensor and its PNG bit depth (nil for .npy):
-- segloss.data's reader, with this module's name in its errors.
local function load(path) return require("segloss.data")._read_file(FNAME, path) end

-- A mask read as classes 0..classes-1: a binary PNG mask stored as 0/255
-- (0/65535) reads as 0/1; any value that is not a class is an error.
local function as_mask(path, t, depth, classes, hint)
  local raw = t
  if depth and classes == 2 then
    local top = (1 << depth) - 1
    if top > 1 and t:max() == top then t = t / top end
  end
  local counts, where = core.data_scan(t, classes)
  if not counts then
    local c = {}
    for v in where:gmatch("%d+") do c[#c + 1] = math.tointeger(v) end
    -- the value as stored in the file, float32 digits only
    local v = raw:get(table.unpack(c))
    v = math.tointeger(v) or string.format("%.7g", v)
    fail(string.format("'%s': value %s at (%s) is not a class 0..%d%s", path, v, table.concat(c, ", ", 3),
      classes - 1, hint or ""))
  end
  return t
end

-- A probability map (.npy) in [0, 1]; a PNG prediction is a mask.
local function as_probabilities(path, t, depth)
  if depth then return as_mask(path, t, depth, 2) end
  local lo, hi = t:min(), t:max()
  if not (lo >= 0 and hi <= 1) then
    fail(string.format("'%s': a probability map must hold values in [0, 1], got %s .. %s", path,
      F.num(lo), F.num(hi)))
  end
  return t
end

local function check_opts(opts)
  opts = util.options(FNAME, opts, {
    classes = util.is.int(2, 65536),
    threshold = util.is.num(0, 1, true, true),
    spacing = function(v)
      local want = "a list of 1 to 3 numbers > 0"
      if type(v) ~= "table" or #v < 1 or #v > 3 then return want end
      for _, s in ipairs(v) do
        if type(s) ~= "number" or not (s > 0 and s < math.huge) then return want end
      end
    end,
    partial = util.is.bool,
    include_background = util.is.bool,
  })
  local classes = opts.classes or 2
  if opts.threshold and classes ~= 2 then
    fail("threshold applies to binary predictions (classes = 2), not to label maps of " .. classes .. " classes")
  end
  return opts, classes
end

local function mean(rows, name)
  local s, n = 0, 0
  for _, r in ipairs(rows) do
    s = s + r[name]
    n = n + 1
  end
  return n > 0 and s / n or nil
end

--- Evaluates the predictions under `pred` against the references under
-- `ref` (two files, or two directories paired by stem).
--
-- opts: `classes` (2: binary masks 0/1, or 0/255 in a PNG; K > 2: label
-- maps 0..K-1, one row per image and class), `threshold` (binary only:
-- .npy predictions are probabilities in [0, 1], foreground where p >=
-- threshold), `spacing` (one number per axis, in the order of the array's
-- axes), `partial` (evaluate the pairs only, list the files without a
-- partner in `missing`), `include_background` (false; with classes > 2,
-- true reports class 0 too).
--
-- Returns `{pred, ref, classes, threshold, spacing, metrics = names,
-- images = rows, mean = {metric = value}, per_class (classes > 2),
-- missing = {pred = refs without a prediction, ref = predictions without a
-- reference}}`; a row is `{image = stem, pred, ref, shape, class (classes >
-- 2), empty = "none"|"both"|"pred"|"target", dice, iou, ...}`. Errors name
-- the file: a missing partner, a shape mismatch, a value that is not a class.
-- @tparam string pred a mask file or a directory of them
-- @tparam string ref a mask file or a directory of them
-- @tparam[opt] table opts
-- @treturn table
function M.eval(pred, ref, opts)
  local classes
  opts, classes = check_opts(opts)
  local list, missing = pairs_of(pred, ref, opts.partial)
  local mopts = { spacing = opts.spacing }
  if classes > 2 then
    mopts.classes = classes
    mopts.include_background = opts.include_background == true
  elseif opts.threshold then
    mopts.threshold = opts.threshold
  end
  local rows = {}
  for _, p in ipairs(list) do
    local x, xdepth = load(p.pred)
    local t, tdepth = load(p.ref)
    if x:dim() ~= t:dim() or dims(x) ~= dims(t) then
      fail(string.format("the prediction '%s' is %s but its reference '%s' is %s", p.pred,
        table.concat(x:shape(), "x", 3), p.ref, table.concat(t:shape(), "x", 3)))
    end
    if opts.spacing and #opts.spacing ~= x:dim() - 2 then
      fail(string.format("spacing has %d values but '%s' has %d axes (%s)", #opts.spacing, p.pred, x:dim() - 2,
        table.concat(x:shape(), "x", 3)))
    end
    if opts.threshold then
      x = as_probabilities(p.pred, x, xdepth)
    else
      x = as_mask(p.pred, x, xdepth, classes,
        classes == 2 and ext(p.pred) == "npy" and " (a probability map? pass threshold, --threshold T)" or nil)
    end
    t = as_mask(p.ref, t, tdepth, classes)
    local ok, r = pcall(metrics.evaluate, x, t, mopts)
    if not ok then fail(string.format("'%s' against '%s': %s", p.pred, p.ref, reason(r))) end
    local shape = table.move(x:shape(), 3, x:dim(), 1, {})
    for _, v in ipairs(r.values) do
      local row = { image = p.name, pred = p.pred, ref = p.ref, shape = shape, empty = v.empty }
      if classes > 2 then row.class = v.class end
      for _, m in ipairs(M.METRICS) do row[m] = v[m] end
      rows[#rows + 1] = row
    end
  end
  local res = {
    pred = pred, ref = ref, classes = classes, threshold = opts.threshold, spacing = opts.spacing,
    metrics = M.METRICS, images = rows, mean = {}, missing = missing,
  }
  for _, m in ipairs(M.METRICS) do res.mean[m] = mean(rows, m) end
  if classes > 2 then
    local by, order = {}, {}
    for _, row in ipairs(rows) do
      if not by[row.class] then
        by[row.class] = {}
        order[#order + 1] = row.class
      end
      table.insert(by[row.class], row)
    end
    table.sort(order)
    res.per_class = {}
    for i, c in ipairs(order) do
      local e = { class = c }
      for _, m in ipairs(M.METRICS) do e[m] = mean(by[c], m) end
      res.per_class[i] = e
    end
  end
  return res
end

--- The result as JSON (keys sorted, numbers %.17g: the same result gives the same bytes).
function M.json(res) return F.json(res) end

--- The result as an aligned table: one row per image (and class), then the means.
function M.text(res)
  local multi = res.classes > 2
  local head = { "image" }
  if multi then head[#head + 1] = "class" end
  for _, m in ipairs(M.METRICS) do head[#head + 1] = m end
  head[#head + 1] = "empty"
  local lines = { head }
  local function line(name, class, r, empty)
    local l = { name }
    if multi then l[#l + 1] = class end
    for _, m in ipairs(M.METRICS) do l[#l + 1] = r[m] and string.format("%.4f", r[m]) or "-" end
    l[#l + 1] = empty
    lines[#lines + 1] = l
  end
  for _, r in ipairs(res.images) do line(r.image, tostring(r.class), r, r.empty == "none" and "-" or r.empty) end
  if multi then
    for _, e in ipairs(res.per_class) do line("mean", tostring(e.class), e, "") end
    line("mean", "all", res.mean, "")
  else
    line("mean", nil, res.mean, "")
  end
  local width = {}
  for _, l in ipairs(lines) do
    for i, s in ipairs(l) do width[i] = math.max(width[i] or 0, #s) end
  end
  local out = {}
  for _, l in ipairs(lines) do
    local cells = {}
    for i, s in ipairs(l) do
      -- names left-aligned, numbers right-aligned
      local left = i == 1 or i == #l
      cells[i] = string.format(left and "%-" .. width[i] .. "s" or "%" .. width[i] .. "s", s)
    end
    out[#out + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  return table.concat(out, "\n") .. "\n"
end

return M
