--- What the Lua modules of segloss share (internal).
-- @module segloss.util
local T = require("segloss.core").tensor

local U = {}

--- A value as error messages show it: numbers and booleans as Lua prints
-- them (NaN as "nan"), strings quoted and cut at 40 bytes, tensors by their
-- shape, other values by the type their metatable names — never a whole
-- tensor or a long string.
function U.describe(v)
  if v ~= v then return "nan" end
  if type(v) == "number" or type(v) == "boolean" or v == nil then return tostring(v) end
  if type(v) == "string" then return string.format("string %q", #v > 40 and v:sub(1, 40) .. "..." or v) end
  if T.istensor(v) then return "a segloss.Tensor {" .. table.concat(v:shape(), ",") .. "}" end
  local mt = getmetatable(v)
  if type(v) == "table" and mt == nil and #v > 0 and #v <= 8 then
    -- a short list of numbers, strings or booleans: show it ("a table {4, 4}")
    local parts = {}
    for i = 1, #v do
      local e = v[i]
      if type(e) == "number" or type(e) == "boolean" then parts[i] = tostring(e)
      elseif type(e) == "string" and #e <= 20 then parts[i] = string.format("%q", e)
      else parts = nil break end
    end
    if parts and next(v, #v > 0 and #v or nil) == nil then return "a table {" .. table.concat(parts, ", ") .. "}" end
  end
  return "a " .. (type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v))
end

-- Levenshtein distance of two short strings
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local sub = prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1)
      cur[j] = math.min(sub, prev[j] + 1, cur[j - 1] + 1)
    end
    prev = cur
  end
  return prev[#b]
end

--- The name among the keys of `names` closest to k, if at most 2 edits away.
function U.suggest(k, names)
  if type(k) ~= "string" or #k > 40 then return nil end
  local best, bd = nil, 3
  for name in pairs(names) do
    local d = distance(k, name)
    if d < bd or (d == bd and best and name < best) then best, bd = name, d end
  end
  return best
end

--- Checks an options table against a spec {name = check}, where check(v)
-- returns nothing when v is good, else what was expected ("an integer >= 1").
-- Unknown names are errors with a suggestion. Returns opts (or {}).
function U.options(fname, opts, spec)
  if opts == nil then return {} end
  if type(opts) ~= "table" or getmetatable(opts) ~= nil then
    error(string.format("%s: options must be a table, got %s", fname, U.describe(opts)), 0)
  end
  for k, v in pairs(opts) do
    local check = spec[k]
    if not check then
      local s = U.suggest(k, spec)
      error(string.format("%s: unknown option %s%s", fname,
        type(k) == "string" and string.format("%q", k) or U.describe(k),
        s and string.format(' (did you mean "%s"?)', s) or ""), 0)
    end
    local want = check(v)
    if want then
      error(string.format("%s: option %s must be %s, got %s", fname, k, want, U.describe(v)), 0)
    end
  end
  return opts
end

-- Checks for U.options.
U.is = {}
function U.is.int(lo, hi)
  local want = hi and string.format("an integer in %d..%d", lo, hi) or string.format("an integer >= %d", lo)
  return function(v)
    local k = math.type(v) and math.tointeger(v)
    if not k or k < lo or (hi and k > hi) then return want end
  end
end
function U.is.num(lo, hi, lo_open, hi_open)
  local want = string.format("a number in %s%s, %s%s", lo_open and "(" or "[", tostring(lo),
    tostring(hi), hi_open and ")" or "]")
  return function(v)
    if math.type(v) == nil or v ~= v or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi)
        or v == math.huge or v == -math.huge then
      return want
    end
  end
end
function U.is.bool(v) if type(v) ~= "boolean" then return "true or false" end end
function U.is.oneof(...)
  local set, list = {}, {}
  for i, s in ipairs { ... } do set[s] = true; list[i] = string.format("%q", s) end
  local want = "one of " .. table.concat(list, ", ")
  return function(v) if not set[v] then return want end end
end

--- An integer argument in lo..hi (an integral float is fine), else an error
-- "<fname>: <what> must be an integer in lo..hi, got <v>".
function U.check_int(fname, what, v, lo, hi)
  local k = math.type(v) and math.tointeger(v)
  if not k or k < lo or k > hi then
    error(string.format("%s: %s must be an integer in %d..%d, got %s", fname, what, lo, hi, U.describe(v)), 0)
  end
  return k
end

--- Shape of a tensor as text: {8,1,64,64}.
function U.shapestr(t) return "{" .. table.concat(t:shape(), ",") .. "}" end

return U
