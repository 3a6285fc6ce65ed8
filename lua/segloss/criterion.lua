--- Criterion objects and their algebra.
--
-- A criterion holds one or more weighted parts, each a loss of docs/losses.md
-- with its own options. `crit(x, t)` returns the loss and d loss / d x like
-- the functional form; `crit:forward` and `crit:backward` follow Torch7's
-- protocol, and the gradient buffer (`crit.gradInput`) is reused across
-- calls, so that a training loop allocates nothing once shapes are stable.
--
-- Criteria add and scale: `segloss.Dice() + 0.5 * segloss.Focal{gamma = 2}`.
-- A combination of any number of parts is evaluated in one statistics pass
-- (shared by all region parts) plus one fused pass that sums every part's
-- value and gradient, the activation computed once per pass.
--
-- @module segloss.criterion

local core = require "segloss.core"
local schedule = require "segloss.schedule"

local T = core.tensor
local M = {}

--- The criterion classes and the functional loss behind each.
M.classes = {
  BCE = "bce", CE = "ce", Focal = "focal", Dice = "dice", IoU = "iou", Tversky = "tversky",
  FocalTversky = "focal_tversky", SensitivitySpecificity = "sensitivity_specificity",
  GeneralizedDice = "generalized_dice", BCEDice = "bce_dice", DiceFocal = "dice_focal",
}

local Criterion = {}
Criterion.__index = Criterion
Criterion.__name = "segloss.Criterion"
M.Criterion = Criterion

local function is_criterion(v) return getmetatable(v) == Criterion end
M.is = is_criterion

local MANAGED = { out = true, grad = true }

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- the parts' spec for core.combo: { {name, opts, weight}, ... }; weights are
-- refreshed in place when they change (no allocation per step)
local function refresh(self)
  local spec = self._spec
  for i, p in ipairs(self._parts) do
    local w = p.k * (p.schedule and p.schedule:value(self._steps) or 1)
    p.weight = w
    local e = spec[i]
    if not e then
      e = {}
      spec[i] = e
    end
    e[1], e[2], e[3] = p.name, p.opts, w
  end
  for i = #self._parts + 1, #spec do spec[i] = nil end
  self._valid = false
end

local function new(parts)
  local self = setmetatable({ _parts = parts, _spec = {}, _steps = 0, _last = {} }, Criterion)
  refresh(self)
  return self
end

--- Makes a constructor: `segloss.Dice{smooth = 1}`.
function M.constructor(class)
  local name = M.classes[class]
  local fname = "segloss." .. class
  return function(opts)
    if opts == nil then opts = {} end
    if type(opts) ~= "table" then
      error(string.format("%s: opts must be a table, got %s", fname, type(opts)), 0)
    end
    for k in pairs(MANAGED) do
      if opts[k] ~= nil then
        error(string.format("%s: option %s is managed by the criterion (crit.gradInput is its " ..
          "gradient; use the functional segloss.%s for %s)", fname, k, name, k), 0)
      end
    end
    local ok, err = pcall(core.check_opts, fname, name, opts)
    if not ok then error(err, 0) end
    return new({ { class = class, name = name, opts = copy(opts), user = copy(opts), k = 1 } })
  end
end

-- the checks of the data-bearing arguments of a call
local function check_xt(fname, x, t, mask)
  if not T.istensor(x) then
    error(string.format("%s: input must be a segloss.Tensor, got %s", fname, type(x)), 0)
  end
  if not T.istensor(t) then
    error(string.format("%s: target must be a segloss.Tensor, got %s", fname, type(t)), 0)
  end
  if mask ~= nil and not T.istensor(mask) then
    error(string.format("%s: mask must be a segloss.Tensor or nil, got %s", fname, type(mask)), 0)
  end
end

local function fname_of(self)
  if #self._parts == 1 then return "segloss." .. self._parts[1].class end
  return "segloss.Criterion"
end

-- the gradient buffer, reallocated only when x's shape changes
local function buffer(self, x)
  local g = self.gradInput
  if g and g:dim() == x:dim() then
    local same = true
    for i = 1, x:dim() do same = same and g:size(i) == x:size(i) end
    if same then return g end
  end
  g = T.zeros(x:shape())
  self.gradInput = g
  return g
end

local function run(self, x, t, mask, want_grad, stats)
  local fname = fname_of(self)
  check_xt(fname, x, t, mask)
  local out = want_grad and buffer(self, x) or nil
  local loss, g = core.combo(fname, self._spec, x, t, mask, out, want_grad, true, stats, self._last)
  self._x, self._t, self._m, self._valid = x, t, mask, want_grad
  self.output = loss
  return loss, g
end

--- The loss and its gradient: `loss, grad = crit(x, t [, mask])`.
function Criterion:__call(x, t, mask)
  return run(self, x, t, mask, true)
end

--- Computes the loss (and, fused with it, the gradient that backward returns).
function Criterion:forward(x, t, mask)
  return (run(self, x, t, mask, true))
end

--- d loss / d x: the gradient of the last forward on the same x, t and mask,
-- or computed now.
function Criterion:backward(x, t, mask)
  if self._valid and rawequal(self._x, x) and rawequal(self._t, t) and rawequal(self._m, mask) then
    return self.gradInput
  end
  local _, g = run(self, x, t, mask, true)
  return g
end

--- The loss alone, without the gradient pass (for validation, say).
function Criterion:value(x, t, mask)
  return (run(self, x, t, mask, false))
end

--- The per-class statistics of the batch, summed over its samples: a (C, 9)
-- tensor with columns TP, SP, ST, M', SP2, ST2, SAD, SQT, SQN (docs/losses.md).
-- They are additive: summing them over the workers of a data-parallel run
-- (an all-reduce) gives the statistics of the global batch, which
-- `crit:from_stats` turns into the loss and gradient of parts with
-- `batch = true`.
function Criterion:stats(x, t, mask)
  check_xt("segloss.Criterion:stats", x, t, mask)
  return core.combo("segloss.Criterion:stats", self._spec, x, t, mask, nil, false, false, nil, nil,
    true)
end

--- The loss and gradient from given statistics (all-reduced ones, say) for
-- the parts with `batch = true`; other parts use the local data.
function Criterion:from_stats(stats, x, t, mask)
  if not T.istensor(stats) then
    error("segloss.Criterion:from_stats: statistics must be a segloss.Tensor, got " .. type(stats), 0)
  end
  return run(self, x, t, mask, true, stats)
end

--- The values of the last evaluation: `{total = , parts = { {name = , weight = ,
-- value = , per_class = {...}}, ...}}` (per_class for region parts), from the
-- statistics already gathered.
function Criterion:last()
  local L = self._last
  if L.total == nil then return nil end
  local r = { total = L.total, parts = {} }
  for i, p in ipairs(self._parts) do
    local e = L.parts and L.parts[i] or {}
    local pc
    if e.per_class then pc = copy(e.per_class) end
    r.parts[i] = { name = p.class, weight = p.weight, value = e.value, per_class = pc }
  end
  return r
end

--- The parts: a list of `{name = , weight = , options = , schedule = }`.
function Criterion:parts()
  local r = {}
  for i, p in ipairs(self._parts) do
    r[i] = { name = p.class, weight = p.weight, options = copy(p.user), schedule = p.schedule }
  end
  return r
end

--- Sets the weight of part i: a number, or a schedule.
function Criterion:set_weight(i, w)
  local p = self._parts[i]
  if math.type(i) ~= "integer" or not p then
    error(string.format("segloss.Criterion:set_weight: part must be an integer in 1..%d, got %s",
      #self._parts, tostring(i)), 0)
  end
  if schedule.is(w) then
    p.k, p.schedule = 1, w
  elseif math.type(w) and w == w and w ~= math.huge and w ~= -math.huge then
    p.k, p.schedule = w, nil
  else
    error("segloss.Criterion:set_weight: weight must be a finite number or a schedule, got " ..
      tostring(w), 0)
  end
  refresh(self)
  return self
end

--- Advances the schedules by one step (or n). Returns the criterion.
function Criterion:step(n)
  n = n or 1
  if math.type(n) ~= "integer" or n < 0 then
    error("segloss.Criterion:step: n must be an integer >= 0, got " .. tostring(n), 0)
  end
  self._steps = self._steps + n
  refresh(self)
  return self
end

--- The step counter of the schedules.
function Criterion:steps() return self._steps end

-- ---- algebra -------------------------------------------------------------

local function scaled(c, k)
  local parts = {}
  for i, p in ipairs(c._parts) do
    local q = copy(p)
    if schedule.is(k) then
      if q.schedule then error("segloss.Criterion: a part can follow one schedule only", 0) end
      q.schedule = k
    else
      q.k = q.k * k
    end
    parts[i] = q
  end
  local r = new(parts)
  r._steps = c._steps
  refresh(r)
  return r
end

local function weight_arg(v)
  return schedule.is(v) or (math.type(v) ~= nil and v == v and v ~= math.huge and v ~= -math.huge)
end

function Criterion.__mul(a, b)
  if is_criterion(a) and weight_arg(b) then return scaled(a, b) end
  if is_criterion(b) and weight_arg(a) then return scaled(b, a) end
  error("segloss.Criterion: a criterion multiplies a finite number or a schedule, got " ..
    (is_criterion(a) and tostring(b) or tostring(a)), 0)
end

function Criterion.__add(a, b)
  if not (is_criterion(a) and is_criterion(b)) then
    error("segloss.Criterion: + adds two criteria, got " ..
      (is_criterion(a) and type(b) or type(a)), 0)
  end
  local parts = {}
  for _, p in ipairs(a._parts) do parts[#parts + 1] = copy(p) end
  for _, p in ipairs(b._parts) do parts[#parts + 1] = copy(p) end
  if #parts > 7 then
    error(string.format("segloss.Criterion: a combination takes at most 7 parts, got %d", #parts), 0)
  end
  local r = new(parts)
  r._steps = math.max(a._steps, b._steps)
  refresh(r)
  return r
end

local function fmt(v)
  if type(v) == "number" then return string.format("%.6g", v) end
  if type(v) == "string" then return string.format("%q", v) end
  if T.istensor(v) then return "<tensor {" .. table.concat(v:shape(), ",") .. "}>" end
  if type(v) == "table" then
    local r = {}
    for i, x in ipairs(v) do r[i] = fmt(x) end
    return "{" .. table.concat(r, ",") .. "}"
  end
  return tostring(v)
end

function Criterion:__tostring()
  local terms = {}
  for i, p in ipairs(self._parts) do
    local keys = {}
    for k in pairs(p.user) do keys[#keys + 1] = k end
    table.sort(keys)
    local o = {}
    for j, k in ipairs(keys) do o[j] = k .. "=" .. fmt(p.user[k]) end
    local w = fmt(p.k)
    if p.schedule then w = (p.k == 1 and "" or w .. "*") .. tostring(p.schedule) end
    terms[i] = w .. "*" .. p.class .. "{" .. table.concat(o, ", ") .. "}"
  end
  return table.concat(terms, " + ")
end

return M
