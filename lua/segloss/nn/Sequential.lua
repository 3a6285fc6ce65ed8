--- nn.Sequential{m1, m2, ...}: the modules applied in order. Parameters are
-- named by position: "1.weight", "2.bias", ...
-- @classmod segloss.nn.Sequential

local U = require "segloss.util"
local base = require "segloss.nn.Module"

local Sequential = base.class("Sequential")

local function is_module(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name:find("^segloss%.nn%.") ~= nil
    and type(v.forward) == "function"
end
Sequential.is_module = is_module

-- A chain of {name =, module =} entries (the UNet names its parts; internal:
-- the entries are not checked, nn.Sequential{...} is the public constructor).
function Sequential._chain(entries, register)
  local self = base.new(Sequential, { args = {}, opts = {} })
  self.modules = {}
  for i, e in ipairs(entries) do
    self.modules[i] = e.module
    if register ~= false then self:_child(e.name, e.module) end
  end
  return self
end

getmetatable(Sequential).__call = function(_, list, ...)
  local fname = "segloss.nn.Sequential"
  if select("#", ...) > 0 then
    error(fname .. ": takes one list of modules, got " .. (select("#", ...) + 1) .. " arguments", 0)
  end
  if type(list) ~= "table" or getmetatable(list) ~= nil then
    error(fname .. ": expects a list of modules, got " .. U.describe(list), 0)
  end
  local n = #list
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      error(fname .. ": expects a list of modules (keys 1.." .. n .. "), got the key " .. U.describe(k), 0)
    end
  end
  local entries, seen = {}, {}
  for i = 1, n do
    if not is_module(list[i]) or list[i]._class == "Concat" then
      error(string.format("%s: element %d must be a one-input segloss.nn module, got %s", fname, i,
        U.describe(list[i])), 0)
    end
    if seen[list[i]] then
      error(string.format("%s: element %d is element %d: a module holds one forward pass for its " ..
        "backward, so each may appear once (make another one)", fname, i, seen[list[i]]), 0)
    end
    seen[list[i]] = i
    entries[i] = { name = tostring(i), module = list[i] }
  end
  return Sequential._chain(entries)
end

function Sequential._name() return "segloss.nn.Sequential" end

function Sequential:_forward(x)
  local h = x
  for _, m in ipairs(self.modules) do h = m:forward(h) end
  return h
end

-- owned: gy was handed over (see Module:backward); every later gradient is
-- a child's, handed on to the next child
function Sequential:_backward(x, gy, owned)
  local g, own = gy, owned == true
  for i = #self.modules, 1, -1 do
    local input = i > 1 and self.modules[i - 1].output or x
    g = self.modules[i]:backward(input, g, own)
    own = self._pool ~= nil
  end
  return g
end

-- Sequential keeps no input of its own: its first module checks it.
function Sequential:forward(x)
  base.own(self, "forward")
  if #self.modules == 0 then self._x, self._xv, self.output = x, nil, x return x end
  local y = self:_forward(x)
  self._x, self.output = x, y
  return y
end

function Sequential:backward(x, gy, owned)
  base.own(self, "backward")
  if self._x == nil then self:_fail("backward called before forward") end
  if x ~= self._x then
    self:_fail("backward(x, gy) needs the input of the last forward, got %s", U.describe(x))
  end
  if #self.modules == 0 then return gy end
  local gx = self:_backward(x, gy, owned)
  self.gradInput = gx
  return gx
end

return Sequential
