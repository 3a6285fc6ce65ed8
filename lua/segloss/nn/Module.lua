--- The base of every layer of segloss.nn (Torch7's nn.Module habits).
--
-- A module keeps what its backward pass needs from the last forward pass
-- (its input and its output), and the buffers it writes into (`output`,
-- `gradInput`) are allocated once per input shape and reused: the tensor
-- returned by `forward` is overwritten by the next call, as in Torch7.
-- Parameter gradients accumulate (`+=`) until `zero_grad`, as in PyTorch.
-- @classmod segloss.nn.Module

local T = require("segloss.core").tensor
local U = require "segloss.util"

local M = {}

local Module = {}
Module.__index = Module
Module.__name = "segloss.nn.Module"
M.Module = Module

local function tostring_of(self) return self:_tostring("") end

--- Checks that self is a module (a method called with `.` instead of `:`,
-- or on something else, is an error naming the method); returns self.
function M.own(self, method)
  local mt = getmetatable(self)
  if type(self) ~= "table" or type(mt) ~= "table" or type(rawget(self, "_params")) ~= "table"
      or type(mt.__name) ~= "string" or mt.__name:sub(1, 11) ~= "segloss.nn." then
    error(string.format("segloss.nn.Module:%s: self must be a segloss.nn module (call m:%s(...)), got %s",
      method, method, U.describe(self)), 0)
  end
  return self
end
local own = M.own

--- A new class named `name` (segloss.nn.<name>), deriving from parent.
function M.class(name, parent)
  parent = parent or Module
  local cls = setmetatable({}, { __index = parent })
  cls.__index = cls
  cls.__name = "segloss.nn." .. name
  cls.__tostring = tostring_of
  cls._class = name
  return cls
end

--- A new instance of cls; config {args = {...}, opts = {...}} rebuilds it.
function M.new(cls, config)
  local self = setmetatable({ training = true, _params = {}, _buffers = {}, _children = {} }, cls)
  self._config = config or { args = {}, opts = {} }
  return self
end

-- "segloss.nn.Conv2d(1, 16, 3)": the class and its positional arguments.
function Module:_name()
  local a = {}
  for i, v in ipairs(self._config.args) do a[i] = tostring(v) end
  return self.__name .. "(" .. table.concat(a, ", ") .. ")"
end

-- "segloss.nn.Conv2d(1, 16, 3): " — the prefix of this layer's errors.
function Module:_fail(fmt, ...)
  error(self:_name() .. ": " .. string.format(fmt, ...), 0)
end

-- A registered parameter with its gradient (zeros), in order.
function Module:_param(name, t)
  local g = T.zeros(t:shape())
  self._params[#self._params + 1] = { name = name, value = t, grad = g }
  return t, g
end

function Module:_buffer(name, t)
  self._buffers[#self._buffers + 1] = { name = name, value = t }
  return t
end

function Module:_child(name, m)
  self._children[#self._children + 1] = { name = name, module = m }
  return m
end

local function same_shape(t, shape)
  if t == nil or t:dim() ~= #shape then return false end
  for i = 1, #shape do
    if t:size(i) ~= shape[i] then return false end
  end
  return true
end
M.same_shape = same_shape

-- The reusable tensor self[field] with this shape (new only when it changes).
function Module:_buf(field, shape)
  local t = self[field]
  if not same_shape(t, shape) then
    t = T.zeros(shape)
    self[field] = t
  end
  return t
end

-- Checks that x is a tensor of rank nd (or one of several ranks if nd is a
-- table) and, when c is given, with c channels.
function Module:_check_input(x, nd, c, layout)
  if not T.istensor(x) then
    self:_fail("input must be a segloss.Tensor %s, got %s", layout, U.describe(x))
  end
  local ok = x:dim() == nd
  if type(nd) == "table" then ok = x:dim() == nd[1] or x:dim() == nd[2] end
  if not ok or (c and x:size(2) ~= c) then
    self:_fail("input must have the shape %s, got %s", layout, U.shapestr(x))
  end
end

-- A pool of gradient buffers shared by the modules of a network: a module's
-- backward takes its gradInput from it, and whoever consumes a gradient
-- gives it back, so a backward pass needs a few gradient-sized buffers at a
-- time instead of one per module (as PyTorch frees gradients as it goes).
-- The same sequence of get/put every step: no new tensors once shapes are
-- stable.
local Pool = {}
Pool.__index = Pool

function M.pool() return setmetatable({ free = {}, key = setmetatable({}, { __mode = "k" }), out = {} }, Pool) end

function Pool:get(shape)
  local key = table.concat(shape, ",")
  local list = self.free[key]
  local t = list and list[#list]
  if t then
    list[#list] = nil
  else
    t = T.zeros(shape)
    self.key[t] = key
  end
  self.out[t] = true
  return t
end

-- gives t back (a tensor this pool did not hand out is ignored)
function Pool:put(t)
  if t and self.out[t] then
    self.out[t] = nil
    local key = self.key[t]
    local list = self.free[key] or {}
    self.free[key] = list
    list[#list + 1] = t
  end
end

-- Sets the pool of m and of every module below it.
function M.share_pool(m, pool)
  m._pool = pool
  for _, c in ipairs(m._children) do M.share_pool(c.module, pool) end
  for _, sub in ipairs(m.modules or {}) do M.share_pool(sub, pool) end
end

-- The buffer for d loss / d input: from the network's pool, or this module's own.
function Module:_gbuf(shape, field)
  if self._pool then return self._pool:get(shape) end
  return self:_buf(field or "gradInput", shape)
end

--- Computes the output for input x; returns it (a buffer of this module).
function Module:forward(x)
  own(self, "forward")
  local y = self:_forward(x)
  self._x, self._xv = x, x:version()
  self.output = y
  return y
end

-- Checks that backward(x, gy) follows a forward(x) with the same, unchanged
-- x, and that gy has the output's shape.
function Module:_check_backward(x, gy)
  if self._x == nil then
    self:_fail("backward called before forward")
  end
  if x ~= self._x then
    self:_fail("backward(x, gy) needs the input of the last forward, got %s", U.describe(x))
  end
  if x:version() ~= self._xv then
    self:_fail("the input %s was changed after forward", U.shapestr(x))
  end
  if not T.istensor(gy) or not same_shape(gy, self.output:shape()) then
    self:_fail("gradient must have the output's shape %s, got %s", U.shapestr(self.output),
      T.istensor(gy) and U.shapestr(gy) or U.describe(gy))
  end
end

--- Back-propagates gy (d loss / d output) through the module: accumulates
-- the parameters' gradients and returns d loss / d x (a buffer).
-- (Inside a network, `owned` hands gy over: the module may overwrite it and
-- gives it back to the pool when done.)
function Module:backward(x, gy, owned)
  own(self, "backward")
  self:_check_backward(x, gy)
  local gx = self:_backward(x, gy, owned == true and self._pool ~= nil)
  if owned == true and self._pool and gx ~= gy then self._pool:put(gy) end
  self.gradInput = gx
  return gx
end

--- Parameters and their gradients, two lists in the same order (and their names).
function Module:parameters()
  own(self, "parameters")
  local names, ps, gs = {}, {}, {}
  self:_collect("", names, ps, gs)
  return ps, gs, names
end

function Module:_collect(prefix, names, ps, gs, bufs)
  for _, p in ipairs(self._params) do
    local i = #names + 1
    names[i], ps[i], gs[i] = prefix .. p.name, p.value, p.grad
  end
  if bufs then
    for _, b in ipairs(self._buffers) do
      bufs[#bufs + 1] = { name = prefix .. b.name, value = b.value }
    end
  end
  for _, c in ipairs(self._children) do
    c.module:_collect(prefix .. c.name .. ".", names, ps, gs, bufs)
  end
end

--- Named buffers (running statistics) {name =, value =} in order.
function Module:buffers()
  own(self, "buffers")
  local bufs = {}
  self:_collect("", {}, {}, {}, bufs)
  return bufs
end

--- Zeroes every parameter gradient.
function Module:zero_grad()
  own(self, "zero_grad")
  local _, gs = self:parameters()
  for _, g in ipairs(gs) do g:fill(0) end
  return self
end

local function set_mode(m, training)
  m.training = training
  for _, c in ipairs(m._children) do set_mode(c.module, training) end
end

--- Training mode (batch statistics in BatchNorm). The default.
function Module:train() set_mode(own(self, "train"), true) return self end

--- Evaluation mode (BatchNorm uses its running statistics).
function Module:evaluate() set_mode(own(self, "evaluate"), false) return self end

--- The number of parameters (elements).
function Module:nparams()
  own(self, "nparams")
  local ps = self:parameters()
  local n = 0
  for _, p in ipairs(ps) do n = n + p:numel() end
  return n
end

function Module:_describe() return (self:_name():gsub("^segloss%.nn%.", "")) end

function Module:_tostring(indent)
  local s = self:_describe()
  if #self._children == 0 then return s end
  local lines = { s .. " {" }
  for _, c in ipairs(self._children) do
    lines[#lines + 1] = indent .. "  (" .. c.name .. ") " .. c.module:_tostring(indent .. "  ")
  end
  lines[#lines + 1] = indent .. "}"
  return table.concat(lines, "\n")
end

--- Saves the module (architecture, parameters, running statistics and, with
-- opts.optim, the optimiser's state) to one .npz file; see segloss.nn.load.
function Module:save(path, opts)
  own(self, "save")
  return require("segloss.nn.checkpoint").save(self, path, opts)
end

--- Loads parameters and buffers saved from a module of the same architecture.
function Module:load(path)
  own(self, "load")
  return require("segloss.nn.checkpoint").load_into(self, path)
end

return M
