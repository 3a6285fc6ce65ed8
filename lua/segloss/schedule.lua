--- Weight schedules for the parts of a combined criterion.
--
-- A schedule maps the step counter of a criterion (advanced by `crit:step()`)
-- to a number. Multiply a criterion by a schedule to let its weight follow
-- it, e.g. shifting weight from BCE to Dice over training, a common practice
-- for small targets:
--
--     local S = segloss.schedule
--     local crit = S.linear(1, 0, 1000) * segloss.BCE{activation = "sigmoid"}
--                + S.linear(0, 1, 1000) * segloss.Dice{activation = "sigmoid"}
--     for step = 1, 2000 do ... crit(x, t) ... crit:step() end
--
-- Values (`from`, `to`, `v`, `values[i]`) are numbers within float32's range
-- (|v| <= 3.4028235e38), as every weight of a criterion; step counts
-- (`steps`, `milestones[i]`) are integers >= 1, up to 2^63 - 1. Anything
-- else is an error that describes the value briefly (a tensor as
-- `a segloss.Tensor`): `segloss.schedule.linear: steps must be an integer
-- >= 1 (at most 2^63 - 1), got 0`.
--
-- @module segloss.schedule
-- @alias S

local describe = require("segloss.util").describe

local S = {}

local Schedule = {}
Schedule.__index = Schedule
Schedule.__name = "segloss.Schedule"

local function is_schedule(v) return getmetatable(v) == Schedule end
S.is = is_schedule

-- The largest float32: weights end up in float32 gradients.
local FLT_MAX = 3.4028234663852886e38

--- Is v a weight a criterion can take: a number within the float32 range?
function S.is_weight(v)
  return math.type(v) ~= nil and v == v and v >= -FLT_MAX and v <= FLT_MAX
end

local function num(fname, what, v)
  if not S.is_weight(v) then
    error(string.format("%s: %s must be a number within the float32 range (|v| <= 3.4028235e+38), got %s",
      fname, what, describe(v)), 0)
  end
  return v
end

local function count(fname, what, v)
  local k = math.type(v) ~= nil and math.tointeger(v)
  if not k or k < 1 then
    error(string.format("%s: %s must be an integer >= 1 (at most 2^63 - 1), got %s", fname, what,
      describe(v)), 0)
  end
  return k
end

--- The same value at every step.
-- @number v
function S.constant(v)
  num("segloss.schedule.constant", "value", v)
  return setmetatable({ kind = "constant", v = v }, Schedule)
end

--- From `from` at step 0 to `to` at step `steps`, linearly; `to` afterwards.
function S.linear(from, to, steps)
  local f = "segloss.schedule.linear"
  return setmetatable({ kind = "linear", from = num(f, "from", from), to = num(f, "to", to),
    steps = count(f, "steps", steps) }, Schedule)
end

--- From `from` to `to` along half a cosine over `steps` steps; `to` afterwards.
function S.cosine(from, to, steps)
  local f = "segloss.schedule.cosine"
  return setmetatable({ kind = "cosine", from = num(f, "from", from), to = num(f, "to", to),
    steps = count(f, "steps", steps) }, Schedule)
end

--- Piecewise constant: `values[1]` before `milestones[1]`, `values[2]` from
-- there to `milestones[2]`, and so on (`#values == #milestones + 1`,
-- milestones increasing).
function S.step(values, milestones)
  local f = "segloss.schedule.step"
  if type(values) ~= "table" or type(milestones) ~= "table" or #values ~= #milestones + 1 then
    error(f .. ": expected a list of values and a list of one fewer milestones", 0)
  end
  local v, m = {}, {}
  for i, x in ipairs(values) do v[i] = num(f, "values[" .. i .. "]", x) end
  for i, x in ipairs(milestones) do
    m[i] = count(f, "milestones[" .. i .. "]", x)
    if i > 1 and m[i] <= m[i - 1] then
      error(string.format("%s: milestones must increase, got %d after %d", f, m[i], m[i - 1]), 0)
    end
  end
  return setmetatable({ kind = "step", values = v, milestones = m }, Schedule)
end

--- The value at step k (k >= 0).
function Schedule:value(k)
  if not is_schedule(self) then
    error("segloss.schedule:value: self must be a segloss.schedule (call s:value(k)), got " .. describe(self), 0)
  end
  if math.type(k) == nil or k ~= k or k < 0 then
    error("segloss.schedule:value: k must be a number >= 0, got " .. describe(k), 0)
  end
  if self.kind == "constant" then return self.v end
  if self.kind == "step" then
    local i = 1
    while self.milestones[i] and k >= self.milestones[i] do i = i + 1 end
    return self.values[i]
  end
  local u = math.min(k, self.steps) / self.steps
  if self.kind == "cosine" then u = (1 - math.cos(math.pi * u)) / 2 end
  return self.from + (self.to - self.from) * u
end

local function g(v) return string.format("%.6g", v) end

function Schedule:__tostring()
  if self.kind == "constant" then return "constant(" .. g(self.v) .. ")" end
  if self.kind == "step" then
    local v, m = {}, {}
    for i, x in ipairs(self.values) do v[i] = g(x) end
    for i, x in ipairs(self.milestones) do m[i] = tostring(x) end
    return "step({" .. table.concat(v, ",") .. "}, {" .. table.concat(m, ",") .. "})"
  end
  return string.format("%s(%s, %s, %d)", self.kind, g(self.from), g(self.to), self.steps)
end

return S
