--- The layers besides convolutions: MaxPool2d/3d, Upsample, BatchNorm,
-- InstanceNorm, ReLU, LeakyReLU and Concat (the skip concatenation). Their
-- kernels run in segloss's SIMD backends (avx2, sse2/neon) with the scalar
-- reference, like the losses, and give the same bits for any thread count.
-- @module segloss.nn.Layers

local core = require "segloss.core"
local T = core.tensor
local U = require "segloss.util"
local base = require "segloss.nn.Module"

local M = {}

local LAYOUT = { [4] = "(N, C, H, W)", [5] = "(N, C, D, H, W)" }
local function layout_c(nd, c)
  return nd == 4 and string.format("(N, %d, H, W)", c) or string.format("(N, %d, D, H, W)", c)
end

local function ctor(cls, new)
  getmetatable(cls).__call = function(_, ...) return new(...) end
  M[cls._class] = cls
  return cls
end

local int_arg = U.check_int

local function nargs_max(fname, n, max)
  if n > max then error(string.format("%s: takes at most %d arguments, got %d", fname, max, n), 0) end
end

-- --------------------------------------------------------------- pooling

local function make_pool(dims)
  local cls = base.class("MaxPool" .. dims .. "d")
  local fname = cls.__name
  ctor(cls, function(k, ...)
    nargs_max(fname, select("#", ...) + 1, 1)
    k = int_arg(fname, "kernel_size", k, 1, 65536)
    local self = base.new(cls, { args = { k }, opts = {} })
    self.k = k
    return self
  end)

  function cls:_forward(x)
    self:_check_input(x, dims + 2, nil, LAYOUT[dims + 2])
    local shape = x:shape()
    for a = 3, dims + 2 do
      if shape[a] < self.k then
        self:_fail("input %s is smaller than the window %d along dimension %d", U.shapestr(x), self.k, a)
      end
      shape[a] = shape[a] // self.k
    end
    local y = self:_buf("output", shape)
    core.nn_maxpool(x, y, self.k)
    return y
  end

  function cls:_backward(x, gy)
    local gx = self:_gbuf(x:shape())
    core.nn_maxpool_backward(x, gy, gx, self.k)
    return gx
  end
end
make_pool(2)
make_pool(3)

-- --------------------------------------------------------------- upsampling

local Upsample = base.class("Upsample")
ctor(Upsample, function(opts, ...)
  local fname = "segloss.nn.Upsample"
  nargs_max(fname, select("#", ...) + 1, 1)
  opts = U.options(fname, opts, {
    scale = U.is.int(1, 64), mode = U.is.oneof("nearest", "bilinear", "trilinear"),
    align_corners = function(v) if v ~= false then return "false (the only convention supported)" end end,
  })
  local self = base.new(Upsample, { args = {}, opts = { scale = opts.scale or 2, mode = opts.mode or "nearest" } })
  self.scale, self.mode = self._config.opts.scale, self._config.opts.mode
  return self
end)

function Upsample:_name()
  return string.format("segloss.nn.Upsample{scale = %d, mode = %q}", self.scale, self.mode)
end
function Upsample:_describe() return string.format("Upsample(x%d, %s)", self.scale, self.mode) end

local UP_DIM = { nearest = { 4, 5 }, bilinear = 4, trilinear = 5 }
local function up_mode(m) return m == "nearest" and "nearest" or "linear" end

function Upsample:_forward(x)
  local nd = UP_DIM[self.mode]
  self:_check_input(x, nd, nil, type(nd) == "table" and "(N, C, H, W) or (N, C, D, H, W)" or LAYOUT[nd])
  local shape = x:shape()
  for a = 3, #shape do shape[a] = shape[a] * self.scale end
  local y = self:_buf("output", shape)
  core.nn_upsample(x, y, up_mode(self.mode), self.scale)
  return y
end

function Upsample:_backward(x, gy)
  local gx = self:_gbuf(x:shape())
  core.nn_upsample_backward(gy, gx, up_mode(self.mode), self.scale)
  return gx
end

-- --------------------------------------------------------------- normalisation

-- BatchNorm (statistics per channel over the batch and space) and
-- InstanceNorm (per sample and channel over space), 4-D or 5-D input.
local function make_norm(name, batch)
  local cls = base.class(name)
  local fname = cls.__name
  ctor(cls, function(c, opts, ...)
    nargs_max(fname, select("#", ...) + 2, 2)
    c = int_arg(fname, "num_features", c, 1, 65536)
    opts = U.options(fname, opts, {
      eps = U.is.num(0, 1, true, false), momentum = U.is.num(0, 1, false, false), affine = U.is.bool,
    })
    local affine = opts.affine
    if affine == nil then affine = batch end -- PyTorch's defaults
    local self = base.new(cls, { args = { c }, opts = { eps = opts.eps or 1e-5,
      momentum = opts.momentum or 0.1, affine = affine } })
    self.c, self.eps, self.momentum, self.affine = c, self._config.opts.eps, self._config.opts.momentum, affine
    if affine then
      self.weight, self.gradWeight = self:_param("weight", T.ones(c))
      self.bias, self.gradBias = self:_param("bias", T.zeros(c))
    end
    if batch then
      self.running_mean = self:_buffer("running_mean", T.zeros(c))
      self.running_var = self:_buffer("running_var", T.ones(c))
    end
    return self
  end)

  function cls:_describe()
    return string.format("%s(%d%s)", name, self.c, self.affine and "" or ", no affine")
  end

  function cls:_forward(x)
    self:_check_input(x, { 4, 5 }, self.c, x and T.istensor(x) and layout_c(x:dim(), self.c) or layout_c(4, self.c))
    local y = self:_buf("output", x:shape())
    local eval = batch and not self.training
    local ns = batch and self.c or x:size(1) * self.c
    -- the mean and 1/sqrt(var + eps) used (of the batch, the sample or, in
    -- evaluation, the running statistics): what backward needs
    local sm = self:_buf("save_mean", { ns })
    local si = self:_buf("save_invstd", { ns })
    local m = 1
    for a = 1, x:dim() do if a ~= 2 and (batch or a > 2) then m = m * x:size(a) end end
    if not eval and m < 2 then
      self:_fail("training needs more than one value per %s, got input %s",
        batch and "channel" or "sample and channel", U.shapestr(x))
    end
    self._mode = eval and "batch_eval" or batch and "batch" or "instance"
    core.nn_norm(x, y, self._mode, self.eps, self.weight, self.bias, sm, si,
      batch and self.running_mean or nil, batch and self.running_var or nil, self.momentum)
    return y
  end

  function cls:_backward(x, gy)
    local gx = self:_gbuf(x:shape())
    core.nn_norm_backward(x, gy, gx, self._mode, self.weight, self.save_mean, self.save_invstd,
      self.gradWeight, self.gradBias)
    return gx
  end
end
make_norm("BatchNorm", true)
make_norm("InstanceNorm", false)

-- --------------------------------------------------------------- activations

local function make_act(name, default_slope)
  local cls = base.class(name)
  local fname = cls.__name
  ctor(cls, function(...)
    local n, a, b = select("#", ...), ...
    local slope, opts = default_slope
    if name == "LeakyReLU" then
      nargs_max(fname, n, 2)
      if type(a) == "table" then opts = a else slope, opts = a == nil and slope or a, b end
      if not (math.type(slope) and slope == slope and slope >= 0 and slope < math.huge) then
        error(string.format("%s: negative_slope must be a finite number >= 0, got %s", fname,
          U.describe(slope)), 0)
      end
    else
      nargs_max(fname, n, 1)
      opts = a
    end
    opts = U.options(fname, opts, { inplace = U.is.bool })
    local self = base.new(cls, { args = name == "LeakyReLU" and { slope } or {}, opts = { inplace = opts.inplace } })
    self.slope, self.inplace = slope + 0.0, opts.inplace or false
    return self
  end)

  function cls:_forward(x)
    self:_check_input(x, { 4, 5 }, nil, "(N, C, H, W) or (N, C, D, H, W)")
    local y = self.inplace and x or self:_buf("output", x:shape())
    core.nn_act(x, y, self.slope)
    return y
  end

  -- the output's sign is the input's (slope >= 0): backward works in place
  -- too, and inside a network an in-place activation writes its gradient
  -- over the one it was handed
  function cls:_backward(x, gy, owned)
    local gx = (self.inplace and owned) and gy or self:_gbuf(x:shape())
    core.nn_act_backward(self.inplace and self.output or x, gy, gx, self.slope)
    return gx
  end

  if name == "LeakyReLU" then
    function cls:_describe()
      return string.format("LeakyReLU(%g%s)", self.slope, self.inplace and ", in place" or "")
    end
  else
    function cls:_describe() return "ReLU" .. (self.inplace and "(in place)" or "") end
  end
end
make_act("ReLU", 0)
make_act("LeakyReLU", 0.01)

-- --------------------------------------------------------------- concatenation

--- nn.Concat(): the skip concatenation along the channel axis, two inputs:
-- `y = cat:forward(a, b)`, `ga, gb = cat:backward(a, b, gy)`.
local Concat = base.class("Concat")
ctor(Concat, function(...)
  nargs_max("segloss.nn.Concat", select("#", ...), 0)
  return base.new(Concat, { args = {}, opts = {} })
end)

function Concat:forward(a, b)
  base.own(self, "forward")
  self:_check_input(a, { 4, 5 }, nil, "(N, C, H, W) or (N, C, D, H, W)")
  self:_check_input(b, a:dim(), nil, LAYOUT[a:dim()])
  local sa, sb = a:shape(), b:shape()
  for i = 1, #sa do
    if i ~= 2 and sa[i] ~= sb[i] then
      self:_fail("inputs must agree in every dimension but the channels, got %s and %s", U.shapestr(a), U.shapestr(b))
    end
  end
  sa[2] = sa[2] + sb[2]
  local y = self:_buf("output", sa)
  core.nn_concat(a, b, y)
  self._x, self._b, self._xv, self._bv = a, b, a:version(), b:version()
  return y
end

function Concat:backward(a, b, gy)
  base.own(self, "backward")
  self:_check_backward(a, gy)
  if b ~= self._b or b:version() ~= self._bv then
    self:_fail("backward(a, b, gy) needs the inputs of the last forward")
  end
  local ga = self:_gbuf(a:shape(), "gradA")
  local gb = self:_gbuf(b:shape(), "gradB")
  core.nn_split(gy, ga, gb)
  return ga, gb
end

return M
