--- Criterion objects and their algebra.
--
-- A criterion holds one or more weighted parts, each a loss of
-- docs/losses.md with its own options. `crit(x, t)` returns the loss and
-- d loss / d x like the functional form; `crit:forward` and `crit:backward`
-- follow Torch7's protocol. The gradient (`crit.gradInput`) lives in one of
-- two buffers the criterion owns and reuses, so that a training loop
-- allocates nothing once shapes are stable: each call writes into the
-- buffer it did not hand out last, so the gradient returned by the last
-- successful call stays intact when a call fails (on a NaN input, say).
-- A criterion's fields are `output` (the last loss) and `gradInput` (the
-- last gradient; reassigning it changes nothing inside); the rest of its
-- state is private.
--
-- Criteria add and scale: `segloss.Dice() + 0.5 * segloss.Focal{gamma = 2}`,
-- with weights that are numbers within float32's range or schedules.
-- A combination of up to `segloss.core.max_parts` parts (a limit of the C
-- core) is evaluated in one statistics pass
-- (shared by all region parts) plus one fused pass that sums every part's
-- value and gradient, the activation computed once per pass.
--
-- @module segloss.criterion

local core = require "segloss.core"
local schedule = require "segloss.schedule"

local T = core.tensor
local M = {}

--- The criterion classes and the functional loss behind each, from the
-- registry (`segloss.losses()`): `classes.Dice == "dice"`.
M.classes = {}
for _, d in ipairs(core.losses()) do M.classes[d.class] = d.name end

local Criterion = {}
Criterion.__index = Criterion
Criterion.__name = "segloss.Criterion"
M.Criterion = Criterion

local function is_criterion(v) return getmetatable(v) == Criterion end
M.is = is_criterion

-- Each criterion's state, out of reach of Lua code holding the criterion:
-- its parts, the spec handed to the C core, the step counter, the values
-- of the last evaluation, its two gradient buffers and what the last
-- gradient was computed from. (The C core checks all of it anyway.)
local state = setmetatable({}, { __mode = "k" })

local MANAGED = { out = true, grad = true }

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- the parts' spec for core.combo: { {name, opts, weight}, ... }; weights are
-- refreshed in place when they change (no allocation per step)
local function refresh(self)
  local spec = state[self].spec
  for i, p in ipairs(state[self].parts) do
    local w = p.k * (p.schedule and p.schedule:value(state[self].steps) or 1)
    p.weight = w
    local e = spec[i]
    if not e then
      e = {}
      spec[i] = e
    end
    e[1], e[2], e[3] = p.name, p.opts, w
  end
  for i = #state[self].parts + 1, #spec do spec[i] = nil end
  state[self].cache.valid = false -- the weights changed
end

local function new(parts)
  local self = setmetatable({}, Criterion)
  state[self] = { parts = parts, spec = {}, steps = 0, last = {}, bufs = {}, cache = {} }
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

local describe = require("segloss.util").describe
M.describe = describe

-- the state of self, or an error when self is not a criterion
local function own(self, fname)
  local st = state[self]
  if not st then
    error(string.format("%s: self must be a segloss criterion, got %s", fname, describe(self)), 0)
  end
  return st
end

-- the checks of the data-bearing arguments of a call
local function check_xt(fname, x, t, mask)
  if not T.istensor(x) then
    error(string.format("%s: input must be a segloss.Tensor, got %s", fname, describe(x)), 0)
  end
  if not T.istensor(t) then
    error(string.format("%s: target must be a segloss.Tensor, got %s", fname, describe(t)), 0)
  end
  if mask ~= nil and not T.istensor(mask) then
    error(string.format("%s: mask must be a segloss.Tensor or nil, got %s", fname, describe(mask)), 0)
  end
end

local function fname_of(self)
  if #state[self].parts == 1 then return "segloss." .. state[self].parts[1].class end
  return "segloss.Criterion"
end

local function same_shape(a, x)
  if a:dim() ~= x:dim() then return false end
  for i = 1, x:dim() do
    if a:size(i) ~= x:size(i) then return false end
  end
  return true
end

-- The buffer this call writes its gradient into: of the criterion's two,
-- the one it did not hand out last (reallocated only when x's shape
-- changes). Nothing here reads crit.gradInput, which users may reassign.
local function spare(self, x)
  local bufs = state[self].bufs
  local i = rawequal(bufs[1], state[self].cache.g) and 2 or 1
  local b = bufs[i]
  if not (b and same_shape(b, x)) then
    b = T.zeros(x:shape())
    bufs[i] = b
  end
  return b, i
end

local function run(self, x, t, mask, want_grad, stats)
  local fname = fname_of(self)
  check_xt(fname, x, t, mask)
  local out, slot
  if want_grad then out, slot = spare(self, x) end
  local loss, g = core.combo(fname, state[self].spec, x, t, mask, out, want_grad, true, stats, state[self].last)
  -- the call succeeded: publish its gradient, remember what it was made of
  self.output = loss
  if want_grad then
    if not rawequal(g, out) then state[self].bufs[slot] = g end -- out overlapped an input
    local c = state[self].cache
    c.valid, c.x, c.t, c.m, c.g = true, x, t, mask, g
    c.xv, c.tv, c.mv, c.gv = x:version(), t:version(), mask and mask:version(), g:version()
    self.gradInput = g
  end
  return loss, g
end

--- The loss and its gradient: `loss, grad = crit(x, t [, mask])`.
function Criterion:__call(x, t, mask)
  own(self, "segloss.Criterion")
  return run(self, x, t, mask, true)
end

--- Computes the loss (and, fused with it, the gradient that backward returns).
function Criterion:forward(x, t, mask)
  own(self, "segloss.Criterion:forward")
  return (run(self, x, t, mask, true))
end

--- d loss / d x: the gradient of the last forward when it was computed on
-- the same x, t and mask, none of them changed since (every in-place change
-- of a tensor bumps its `version()`), the gradient itself was not changed
-- in place, and the weights are the same; else computed now.
function Criterion:backward(x, t, mask)
  local c = own(self, "segloss.Criterion:backward").cache
  if c.valid and rawequal(c.x, x) and rawequal(c.t, t) and rawequal(c.m, mask)
    and x:version() == c.xv and t:version() == c.tv and (mask == nil or mask:version() == c.mv)
    and c.g:version() == c.gv then
    return c.g
  end
  local _, g = run(self, x, t, mask, true)
  return g
end

--- The loss alone, without the gradient pass (for validation, say).
function Criterion:value(x, t, mask)
  own(self, "segloss.Criterion:value")
  return (run(self, x, t, mask, false))
end

--- The per-class statistics of the batch, summed over its samples: a (C, 9)
-- tensor with columns TP, SP, ST, M', SP2, ST2, SAD, SQT, SQN (docs/losses.md).
-- They are additive: summing them over the workers of a data-parallel run
-- (an all-reduce) gives the statistics of the global batch, which
-- `crit:from_stats` turns into the loss and gradient of parts with
-- `batch = true`.
function Criterion:stats(x, t, mask)
  own(self, "segloss.Criterion:stats")
  check_xt("segloss.Criterion:stats", x, t, mask)
  return core.combo("segloss.Criterion:stats", state[self].spec, x, t, mask, nil, false, false, nil, nil,
    true)
end

--- The loss and gradient from given statistics (all-reduced ones, say) for
-- the parts with `batch = true`; other parts use the local data.
function Criterion:from_stats(stats, x, t, mask)
  own(self, "segloss.Criterion:from_stats")
  if not T.istensor(stats) then
    error("segloss.Criterion:from_stats: statistics must be a segloss.Tensor, got " .. describe(stats), 0)
  end
  return run(self, x, t, mask, true, stats)
end

--- The values of the last evaluation, from the statistics already
-- gathered: `{total = , parts = { {name = , weight = , value = , weighted = ,
-- per_class = {...}}, ...}}`. `value` is the part's own loss (as its
-- functional form returns it), `weighted` is `weight * value`, and `total`
-- the sum of the weighted values. `per_class`, for the parts with a region
-- loss other than generalized_dice, holds that region loss per class
-- (index c + 1 for class c; of a preset, its region component alone),
-- averaged over the samples where the class takes part, 0 where it takes
-- part nowhere. Nil before the first evaluation.
function Criterion:last()
  local L = own(self, "segloss.Criterion:last").last
  if type(L) ~= "table" or L.total == nil then return nil end
  local r = { total = L.total, parts = {} }
  for i, p in ipairs(state[self].parts) do
    local e = type(L.parts) == "table" and type(L.parts[i]) == "table" and L.parts[i] or {}
    local pc
    if type(e.per_class) == "table" then pc = copy(e.per_class) end
    r.parts[i] = { name = p.class, weight = p.weight, value = e.value, weighted = e.weighted,
      per_class = pc }
  end
  return r
end

--- The parts: a list of `{name = , weight = , options = , schedule = }`.
function Criterion:parts()
  own(self, "segloss.Criterion:parts")
  local r = {}
  for i, p in ipairs(state[self].parts) do
    r[i] = { name = p.class, weight = p.weight, options = copy(p.user), schedule = p.schedule }
  end
  return r
end

--- Sets the weight of part i: a number within float32's range
-- (|w| <= 3.4028235e38), or a schedule. Returns the criterion.
function Criterion:set_weight(i, w)
  own(self, "segloss.Criterion:set_weight")
  local p = state[self].parts[i]
  if math.type(i) ~= "integer" or not p then
    error(string.format("segloss.Criterion:set_weight: part must be an integer in 1..%d, got %s",
      #state[self].parts, describe(i)), 0)
  end
  if schedule.is(w) then
    p.k, p.schedule = 1, w
  elseif schedule.is_weight(w) then
    p.k, p.schedule = w, nil
  else
    error("segloss.Criterion:set_weight: weight must be a number within the float32 range or a " ..
      "schedule, got " .. describe(w), 0)
  end
  refresh(self)
  return self
end

--- Advances the schedules by one step (or n). Returns the criterion.
function Criterion:step(n)
  own(self, "segloss.Criterion:step")
  local k = math.type(n or 1) and math.tointeger(n or 1)
  if not k or k < 0 then
    error("segloss.Criterion:step: n must be an integer >= 0, got " .. describe(n), 0)
  end
  local st = state[self]
  if k > math.maxinteger - st.steps then
    error(string.format("segloss.Criterion:step: the step counter (%d) would pass 2^63 - 1", st.steps), 0)
  end
  st.steps = st.steps + k
  refresh(self)
  return self
end

--- The step counter of the schedules.
function Criterion:steps() return own(self, "segloss.Criterion:steps").steps end

-- ---- algebra -------------------------------------------------------------

local function scaled(c, k)
  local parts = {}
  for i, p in ipairs(state[c].parts) do
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
  state[r].steps = state[c].steps
  refresh(r)
  return r
end

local function weight_arg(v) return schedule.is(v) or schedule.is_weight(v) end

function Criterion.__mul(a, b)
  if is_criterion(a) and weight_arg(b) then return scaled(a, b) end
  if is_criterion(b) and weight_arg(a) then return scaled(b, a) end
  error("segloss.Criterion: a criterion multiplies a number within the float32 range " ..
    "(|k| <= 3.4028235e+38) or a schedule, got " .. describe(is_criterion(a) and b or a), 0)
end

function Criterion.__add(a, b)
  if not (is_criterion(a) and is_criterion(b)) then
    error("segloss.Criterion: + adds two criteria, got " .. describe(is_criterion(a) and b or a), 0)
  end
  local parts = {}
  for _, p in ipairs(state[a].parts) do parts[#parts + 1] = copy(p) end
  for _, p in ipairs(state[b].parts) do parts[#parts + 1] = copy(p) end
  if #parts > core.max_parts then
    error(string.format("segloss.Criterion: a combination takes at most %d parts, got %d", core.max_parts,
      #parts), 0)
  end
  local r = new(parts)
  state[r].steps = math.max(state[a].steps, state[b].steps)
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
  own(self, "segloss.Criterion:__tostring")
  local terms = {}
  for i, p in ipairs(state[self].parts) do
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
