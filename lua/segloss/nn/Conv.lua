--- Convolutions: Conv2d, Conv3d (kernel 1 or 3, stride 1 or 2, "same"
-- padding) and ConvTranspose2d, ConvTranspose3d (kernel 2, stride 2), with
-- PyTorch's argument meanings and parameter layouts:
--
--     nn.Conv2d(cin, cout, 3, {stride = 1, padding = 1, bias = true})
--       weight (cout, cin, 3, 3), bias (cout)
--     nn.ConvTranspose2d(cin, cout, 2, {stride = 2})
--       weight (cin, cout, 2, 2), bias (cout)
--
-- The arithmetic runs in oneDNN (see the README for the measurement behind
-- that choice); weights start Kaiming-normal from the library PRNG
-- (std = sqrt(2 / fan_in)), biases at 0.
-- @module segloss.nn.Conv

local core = require "segloss.core"
local T = core.tensor
local U = require "segloss.util"
local base = require "segloss.nn.Module"

local M = {}

local LAYOUT = { [2] = "(N, %d, H, W)", [3] = "(N, %d, D, H, W)" }

local int_arg = U.check_int

local function make(dims, transposed)
  local name = (transposed and "ConvTranspose" or "Conv") .. dims .. "d"
  local cls = base.class(name)
  local fname = "segloss.nn." .. name

  local function new(cin, cout, k, opts)
    cin = int_arg(fname, "in_channels", cin, 1, 65536)
    cout = int_arg(fname, "out_channels", cout, 1, 65536)
    local ks = transposed and "2" or "1 or 3"
    local kk = math.type(k) and math.tointeger(k)
    if transposed and kk ~= 2 or not transposed and kk ~= 1 and kk ~= 3 then
      error(string.format("%s: kernel_size must be %s, got %s", fname, ks, U.describe(k)), 0)
    end
    k = kk
    local pad = transposed and 0 or (k - 1) // 2
    opts = U.options(fname, opts, {
      stride = transposed and U.is.int(2, 2) or U.is.int(1, 2),
      padding = U.is.int(pad, pad),
      bias = U.is.bool,
    })
    local stride = opts.stride or (transposed and 2 or 1)
    local self = base.new(cls, { args = { cin, cout, k }, opts = { stride = stride, bias = opts.bias } })
    self.dims, self.cin, self.cout, self.k, self.stride, self.transposed = dims, cin, cout, k, stride, transposed
    self.plan = core.conv_plan { dims = dims, cin = cin, cout = cout, k = k, stride = stride,
                                 transposed = transposed }
    local wshape = transposed and { cin, cout } or { cout, cin }
    for _ = 1, dims do wshape[#wshape + 1] = k end
    self.weight, self.gradWeight = self:_param("weight", T.zeros(wshape))
    if opts.bias ~= false then
      self.bias, self.gradBias = self:_param("bias", T.zeros(cout))
    end
    self:reset()
    return self
  end

  --- Kaiming-normal weights for an activation of negative slope a (default 0,
  -- ReLU) from the library PRNG; zero biases.
  function cls:reset(a)
    if getmetatable(self) ~= cls then
      -- own() accepts any module; reset needs this class's fields
      error(string.format("%s:reset: self must be a %s (call m:reset(a)), got %s", cls.__name, cls.__name,
        U.describe(self)), 0)
    end
    a = a or 0
    if math.type(a) == nil or a ~= a or a < 0 or a > 1e6 then
      error(string.format("%s:reset: a (the activation's negative slope) must be a number in [0, 1e6], got %s",
        self.__name, U.describe(a)), 0)
    end
    -- fan-in: the inputs one output sums over (a transposed convolution of
    -- kernel = stride sums over cin, one tap each)
    local fan_in = self.transposed and self.cin or self.cin * self.k ^ self.dims
    local std = math.sqrt(2 / ((1 + a * a) * fan_in))
    self.weight:copy(T.randn(self.weight:shape()):mul(std))
    if self.bias then self.bias:fill(0) end
    return self
  end

  function cls:_describe()
    local s = string.format("%s(%d -> %d, k%d", name, self.cin, self.cout, self.k)
    if self.stride ~= 1 and not self.transposed then s = s .. ", stride " .. self.stride end
    if not self.bias then s = s .. ", no bias" end
    return s .. ")"
  end

  function cls:_forward(x)
    self:_check_input(x, dims + 2, self.cin, string.format(LAYOUT[dims], self.cin))
    local y = self:_buf("output", core.conv_out_shape(self.plan, x))
    core.conv_forward(self.plan, x, self.weight, self.bias, y)
    return y
  end

  function cls:_backward(x, gy)
    local gx = self:_gbuf(x:shape())
    core.conv_backward_data(self.plan, gy, self.weight, gx)
    core.conv_backward_weights(self.plan, x, gy, self.gradWeight, self.gradBias)
    return gx
  end

  getmetatable(cls).__call = function(_, ...) return new(...) end
  M[name] = cls
end

make(2, false)
make(3, false)
make(2, true)
make(3, true)

return M
