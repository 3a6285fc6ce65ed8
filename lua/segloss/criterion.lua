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
-- Its parts are compiled when it is built (options checked once, defaults
-- resolved, lists copied into C memory), so a step parses nothing.
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
-- its parts (class, options as given, weight factor and schedule), the
-- step counter, and its compiled form (`plan`, a userdata only the C core
-- makes and reads: the parts' options compiled once, the weights, the two
-- gradient buffers, the values of the last evaluation and what the last
-- gradient was computed from).
local state = setmetatable({}, { __mode = "k" })

local MANAGED = { out = true, grad = true }

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- the parts' weights into the compiled criterion (which also forgets the
-- gradient it kept: it was computed with the old weights)
local function refresh(self)
  local st = state[self]
  local w = st.w
  for i, p in ipairs(st.parts) do
    local v = p.k * (p.schedule and p.schedule:value(st.steps) or 1)
    p.weight = v
    w[i] = v
  end
  core.criterion_weights(st.plan, table.unpack(w, 1, #st.parts))
end

local function new(parts, plan)
  local self = setmetatable({}, Criterion)
  state[self] = { parts = parts, plan = plan, steps = 0, w = {} }
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
    -- every option checked against the registry and compiled, once
    local plan = core.criterion_new(fname, name, opts)
    return new({ { class = class, name = name, user = copy(opts), k = 1 } }, plan)
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

-- The C core checks x, t and the mask, picks the gradient buffer, runs the
-- passes and keeps the values behind last(); here only the public fields.
local call, backward_core = core.criterion_call, core.criterion_backward

--- The loss and its gradient: `loss, grad = crit(x, t [, mask])`.
function Criterion:__call(x, t, mask)
  local loss, g = call(own(self, "segloss.Criterion").plan, x, t, mask, true)
  self.output = loss
  if g ~= nil then self.gradInput = g end
  return loss, g
end

--- Computes the loss (and, fused with it, the gradient that backward returns).
function Criterion:forward(x, t, mask)
  local loss, g = call(own(self, "segloss.Criterion:forward").plan, x, t, mask, true)
  self.output = loss
  if g ~= nil then self.gradInput = g end
  return loss
end

--- d loss / d x: the gradient of the last forward when it was computed on
-- the same x, t and mask, none of them changed since (every in-place change
-- of a tensor bumps its `version()`), the gradient itself was not changed
-- in place, and the weights are the same; else computed now.
function Criterion:backward(x, t, mask)
  local g, loss = backward_core(own(self, "segloss.Criterion:backward").plan, x, t, mask)
  if loss ~= nil then -- computed now
    self.output = loss
    if g ~= nil then self.gradInput = g end
  end
  return g
end

--- The loss alone, without the gradient pass (for validation, say).
function Criterion:value(x, t, mask)
  local loss = call(own(self, "segloss.Criterion:value").plan, x, t, mask, false)
  self.output = loss
  return loss
end

--- The per-class statistics of the batch, summed over its samples: a (C, 9)
-- tensor with columns TP, SP, ST, M', SP2, ST2, SAD, SQT, SQN (docs/losses.md).
-- They are additive: summing them over the workers of a data-parallel run
-- (an all-reduce) gives the statistics of the global batch, which
-- `crit:from_stats` turns into the loss and gradient of parts with
-- `batch = true`.
function Criterion:stats(x, t, mask)
  return core.criterion_stats(own(self, "segloss.Criterion:stats").plan, x, t, mask)
end

--- The loss and gradient from given statistics (all-reduced ones, say) for
-- the parts with `batch = true`; other parts use the local data.
function Criterion:from_stats(stats, x, t, mask)
  local loss, g = core.criterion_from_stats(own(self, "segloss.Criterion:from_stats").plan, stats, x, t, mask)
  self.output = loss
  if g ~= nil then self.gradInput = g end
  return loss, g
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
  local st = own(self, "segloss.Criterion:last")
  local r = core.criterion_last(st.plan)
  if r == nil then return nil end
  for i, p in ipairs(st.parts) do
    r.parts[i].name, r.parts[i].weight = p.class, p.weight
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
  local r = new(parts, core.criterion_join("segloss.Criterion", state[c].plan))
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
  -- (the C core says when there are too many: segloss.core.max_parts)
  local r = new(parts, core.criterion_join("segloss.Criterion", state[a].plan, state[b].plan))
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
