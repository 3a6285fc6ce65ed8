--- nn.UNet{...}: the U-Net of Ronneberger et al. (2015) in 2-D or 3-D, with
-- the variants nnU-Net uses (Isensee et al., 2021).
--
--     local net = nn.UNet{input = 1, output = 1, base = 16, depth = 4, dims = 2,
--                         norm = "instance", act = "leaky_relu",
--                         down = "maxpool", up = "transpose"}
--
-- Level k (0..depth) has base·2^k channels. A "unit" is a 3×3 (3×3×3)
-- convolution with bias, then the normalisation (if any), then the
-- activation. Level 0 is two units; each deeper level goes down by a 2×2
-- max-pool (down = "maxpool") or by making its first unit's convolution
-- strided (down = "stride"), then two units. The decoder goes up by a
-- transposed convolution (kernel 2, stride 2; up = "transpose") or by
-- interpolation then a 1×1 convolution (up = "bilinear" in 2-D,
-- "trilinear" in 3-D), concatenates the skip connection (skip first) and
-- applies two units; a 1×1 convolution gives the logits.
-- Options: input (1), output (1), base (16), depth (4), dims (2),
-- norm "batch" | "instance" (default) | "none", act "relu" | "leaky_relu"
-- (default, slope 0.01), down "maxpool" (default) | "stride", up "transpose"
-- (default) | "bilinear" | "trilinear". Convolutions start Kaiming-normal
-- for the activation's slope, from the library PRNG (segloss.seed).
-- @classmod segloss.nn.UNet

local U = require "segloss.util"
local base = require "segloss.nn.Module"
local Conv = require "segloss.nn.Conv"
local L = require "segloss.nn.Layers"
local Sequential = require "segloss.nn.Sequential"

local UNet = base.class("UNet")
-- one decoder level: its parts are named for parameters, driven by the UNet
local Decoder = base.class("Decoder")
local FNAME = "segloss.nn.UNet"

local OPTS = {
  input = U.is.int(1, 65536), output = U.is.int(1, 65536), base = U.is.int(1, 4096),
  depth = U.is.int(0, 10), dims = U.is.int(2, 3),
  norm = U.is.oneof("batch", "instance", "none"), act = U.is.oneof("relu", "leaky_relu"),
  down = U.is.oneof("maxpool", "stride"), up = U.is.oneof("transpose", "bilinear", "trilinear"),
}
local DEFAULTS = { input = 1, output = 1, base = 16, depth = 4, dims = 2, norm = "instance",
                   act = "leaky_relu", down = "maxpool", up = "transpose" }

-- conv (stride s) → norm → activation (in place), as a named chain
local function unit(o, cin, cout, stride)
  local conv = Conv["Conv" .. o.dims .. "d"](cin, cout, 3, { stride = stride })
  conv:reset(o.slope)
  local e = { { name = "conv", module = conv } }
  if o.norm == "batch" then
    e[#e + 1] = { name = "norm", module = L.BatchNorm(cout) }
  elseif o.norm == "instance" then
    e[#e + 1] = { name = "norm", module = L.InstanceNorm(cout, { affine = true }) }
  end
  local act = o.act == "relu" and L.ReLU { inplace = true } or L.LeakyReLU(0.01, { inplace = true })
  e[#e + 1] = { name = "act", module = act }
  return Sequential._chain(e)
end

getmetatable(UNet).__call = function(_, opts, ...)
  if select("#", ...) > 0 then
    error(FNAME .. ": takes one table of options, got " .. (select("#", ...) + 1) .. " arguments", 0)
  end
  U.options(FNAME, opts, OPTS)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = opts and opts[k] or v end
  for k in pairs(DEFAULTS) do o[k] = math.tointeger(o[k]) or o[k] end
  if o.up == "bilinear" and o.dims ~= 2 or o.up == "trilinear" and o.dims ~= 3 then
    error(string.format('%s: option up = "%s" needs dims = %d (use "%s" with dims = %d)', FNAME, o.up,
      o.up == "bilinear" and 2 or 3, o.dims == 2 and "bilinear" or "trilinear", o.dims), 0)
  end
  local cfg = {}
  for k, v in pairs(o) do cfg[k] = v end
  local self = base.new(UNet, { args = {}, opts = cfg })
  o.slope = o.act == "leaky_relu" and 0.01 or 0
  self.opts = cfg
  local c = function(k) return o.base * 2 ^ k // 1 end
  local dd = o.dims .. "d"

  self.enc, self.dec = {}, {}
  for k = 0, o.depth do
    local e = {}
    local cin = k == 0 and o.input or c(k - 1)
    if k > 0 and o.down == "maxpool" then
      e[#e + 1] = { name = "pool", module = L["MaxPool" .. dd](2) }
    end
    e[#e + 1] = { name = "unit1", module = unit(o, cin, c(k), (k > 0 and o.down == "stride") and 2 or 1) }
    e[#e + 1] = { name = "unit2", module = unit(o, c(k), c(k), 1) }
    self.enc[k] = self:_child("enc" .. k, Sequential._chain(e))
  end
  for k = o.depth - 1, 0, -1 do
    local d = base.new(Decoder, { args = {}, opts = {} })
    local up = {}
    if o.up == "transpose" then
      local m = Conv["ConvTranspose" .. dd](c(k + 1), c(k), 2, { stride = 2 })
      m:reset(o.slope)
      up[1] = { name = "up", module = m }
    else
      up[1] = { name = "upsample", module = L.Upsample { scale = 2, mode = o.up } }
      local m = Conv["Conv" .. dd](c(k + 1), c(k), 1)
      m:reset(o.slope)
      up[2] = { name = "up", module = m }
    end
    d.upper = Sequential._chain(up, false)
    d.cat = L.Concat()
    d.units = Sequential._chain({ { name = "unit1", module = unit(o, 2 * c(k), c(k), 1) },
                                 { name = "unit2", module = unit(o, c(k), c(k), 1) } }, false)
    for _, e in ipairs(up) do d:_child(e.name, e.module) end
    d:_child("unit1", d.units.modules[1])
    d:_child("unit2", d.units.modules[2])
    self.dec[k] = self:_child("dec" .. k, d)
  end
  local out = Conv["Conv" .. dd](c(0), o.output, 1)
  out:reset(0)
  self.out = self:_child("out", out)
  -- one pool of gradient buffers for the whole network (this module's own
  -- backward hands its result to the caller, so it keeps out of it)
  self._gpool = base.pool()
  for k = 0, o.depth do base.share_pool(self.enc[k], self._gpool) end
  for k = 0, o.depth - 1 do
    base.share_pool(self.dec[k], self._gpool)
    base.share_pool(self.dec[k].upper, self._gpool)
    base.share_pool(self.dec[k].units, self._gpool)
  end
  base.share_pool(self.out, self._gpool)
  return self
end

function UNet._name() return FNAME end

function UNet:_describe()
  local o = self.opts
  return string.format("UNet(%d-D, %d -> %d channels, base %d, depth %d, norm %s, %s, down %s, up %s; %d parameters)",
    o.dims, o.input, o.output, o.base, o.depth, o.norm, o.act, o.down, o.up, self:nparams())
end

function UNet:_check(x)
  local o = self.opts
  local layout = o.dims == 2 and "(N, %d, H, W)" or "(N, %d, D, H, W)"
  self:_check_input(x, o.dims + 2, o.input, string.format(layout, o.input))
  local m = 2 ^ o.depth // 1
  local bottom = 1
  for a = 3, o.dims + 2 do
    if x:size(a) % m ~= 0 then
      self:_fail("input %s: every spatial size must be a multiple of 2^depth = %d (depth %d), " ..
        "dimension %d is %d", U.shapestr(x), m, o.depth, a, x:size(a))
    end
    bottom = bottom * (x:size(a) // m)
  end
  -- the deepest level's normalisation needs two values per statistic
  local per = o.norm == "instance" and bottom or (o.norm == "batch" and self.training) and bottom * x:size(1)
  if per and per < 2 then
    self:_fail("input %s is too small for depth %d with %s norm%s: the deepest level would hold %d value%s "
      .. "per %s, and the statistics need at least 2", U.shapestr(x), o.depth, o.norm,
      o.norm == "batch" and " in training" or "", per, per == 1 and "" or "s",
      o.norm == "instance" and "sample and channel" or "channel")
  end
end

function UNet:_forward(x)
  self:_check(x)
  local h = x
  local skips = {}
  for k = 0, self.opts.depth do
    h = self.enc[k]:forward(h)
    skips[k] = h
  end
  for k = self.opts.depth - 1, 0, -1 do
    local d = self.dec[k]
    local u = d.upper:forward(h)
    h = d.units:forward(d.cat:forward(skips[k], u))
  end
  self._skips = skips
  return self.out:forward(h)
end

-- Every gradient below comes from the pool and is handed on (owned = true)
-- to the module that consumes it; the skip connections' gradients wait in
-- the pool's buffers until the encoder reaches their level.
function UNet:_backward(x, gy)
  local pool, depth, skips = self._gpool, self.opts.depth, self._skips
  pool:put(self._gx) -- the result of the previous backward
  local g = self.out:backward(self.out._x, gy)
  local gskip = {}
  for k = 0, depth - 1 do
    local d = self.dec[k]
    local gc = d.units:backward(d.cat.output, g, true)
    local gu
    gskip[k], gu = d.cat:backward(skips[k], d.upper.output, gc)
    pool:put(gc)
    g = d.upper:backward(d.upper._x, gu, true)
  end
  for k = depth, 0, -1 do
    if k < depth then
      g:add(gskip[k])
      pool:put(gskip[k])
    end
    g = self.enc[k]:backward(k > 0 and skips[k - 1] or x, g, true)
  end
  self._gx = g
  return g
end

UNet.DEFAULTS = DEFAULTS
return UNet
