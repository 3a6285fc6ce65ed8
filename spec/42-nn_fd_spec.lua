-- Central finite differences for every layer and for whole small U-Nets
-- (2-D and 3-D): the gradients of L = Σ y·r (r random, summed in double)
-- that backward returns against (L(θ + h) − L(θ − h)) / 2h, coordinate by
-- coordinate (a sample of the input's and of every parameter's).
local segloss = require "segloss"
local T, nn = segloss.tensor, segloss.nn

-- L = Σ y r for the module's output at x
local function loss(m, x, r) return m:forward(x):dot(r) end

-- the value at flat index i of t (a view of it as 1-D)
local function flat(t) return t:reshape(t:numel()) end

-- Checks `count` coordinates of t (x or a parameter) whose gradient is g
-- (a copy taken after backward): the central difference with step h
-- against g, within tol of the largest |g|.
local function check_coords(what, m, x, r, t, g, h, tol, count, skip, floor)
  local tf, gf = flat(t), flat(g)
  local gmax = math.max(g:max(), -g:min(), floor or 1e-12)
  local n = tf:numel()
  local checked = 0
  for k = 1, count do
    local i = (k * 7919 + 13) % n + 1
    if not (skip and skip(i)) then
      local v = tf:get(i)
      local an = gf:get(i)
      local fd
      -- h may be a list of steps: a ReLU network is piecewise linear, and a
      -- step may straddle a kink; the gradient must match at one of them
      for _, hh in ipairs(type(h) == "table" and h or { h }) do
        tf:set(i, v + hh)
        local lp = loss(m, x, r)
        tf:set(i, v - hh)
        local lm = loss(m, x, r)
        tf:set(i, v)
        local d = (lp - lm) / (2 * hh)
        if not fd or math.abs(d - an) < math.abs(fd - an) then fd = d end
      end
      assert(math.abs(fd - an) <= tol * gmax, string.format(
        "%s[%d]: finite difference %.7g, backward %.7g (largest |gradient| %.4g, tolerance %g)",
        what, i, fd, an, gmax, tol))
      checked = checked + 1
    end
  end
  assert(checked >= count // 2, what .. ": too few coordinates checked")
end

-- Every input coordinate sample and every parameter of m.
local function fd(m, x, opts)
  opts = opts or {}
  local h, tol, count = opts.h or 1e-2, opts.tol or 2e-3, opts.count or 12
  local r = T.randn(m:forward(x):shape())
  m:zero_grad()
  m:forward(x)
  local gx = m:backward(x, r):clone()
  local ps, gs, names = m:parameters()
  local gcopy = {}
  for i, g in ipairs(gs) do gcopy[i] = g:clone() end
  -- a gradient that is 0 in exact arithmetic (a bias before a norm) is
  -- compared with the largest of the module's gradients
  local floor = nil
  if opts.global then
    floor = math.max(gx:max(), -gx:min())
    for _, g in ipairs(gcopy) do floor = math.max(floor, g:max(), -g:min()) end
  end
  check_coords("d/dx", m, x, r, x, gx, h, tol, count, opts.skip_x, floor)
  for i, p in ipairs(ps) do
    check_coords("d/d" .. names[i], m, x, r, p, gcopy[i], h, tol, count, nil, floor)
  end
end

-- x with no element within 3h of 0 (ReLU's kink) and, per 2×2(×2) window,
-- distinct values (max-pool's argmax must not flip): a shuffled ramp.
local function ramp(shape, step)
  local x = T.zeros(shape)
  local f = flat(x)
  local n = f:numel()
  local perm = {}
  for i = 1, n do perm[i] = i end
  local u = flat(T.rand(n))
  for i = n, 2, -1 do
    local j = math.floor(u:get(i) * i) + 1
    perm[i], perm[j] = perm[j], perm[i]
  end
  for i = 1, n do f:set(i, (perm[i] - n / 2 - 0.5) * step) end
  return x
end

describe("segloss.nn finite differences", function()
  before_each(function() segloss.seed(7) end)

  it("Conv2d k3 stride 1 and 2, k1", function()
    fd(nn.Conv2d(3, 5, 3), T.randn(2, 3, 6, 7))
    fd(nn.Conv2d(3, 4, 3, { stride = 2 }), T.randn(2, 3, 7, 5))
    fd(nn.Conv2d(5, 3, 1), T.randn(2, 5, 4, 4))
  end)

  it("Conv3d k3 stride 1 and 2", function()
    fd(nn.Conv3d(2, 3, 3), T.randn(2, 2, 4, 5, 3))
    fd(nn.Conv3d(2, 3, 3, { stride = 2 }), T.randn(1, 2, 5, 4, 5))
  end)

  it("ConvTranspose2d and ConvTranspose3d", function()
    fd(nn.ConvTranspose2d(4, 3, 2, { stride = 2 }), T.randn(2, 4, 3, 5))
    fd(nn.ConvTranspose3d(3, 2, 2, { stride = 2 }), T.randn(1, 3, 2, 3, 2))
  end)

  it("MaxPool2d and MaxPool3d", function()
    fd(nn.MaxPool2d(2), ramp({ 2, 3, 6, 5 }, 0.1))
    fd(nn.MaxPool3d(2), ramp({ 1, 2, 4, 4, 5 }, 0.1))
  end)

  it("Upsample nearest, bilinear, trilinear", function()
    fd(nn.Upsample { scale = 2, mode = "nearest" }, T.randn(2, 3, 3, 4))
    fd(nn.Upsample { scale = 2, mode = "bilinear" }, T.randn(2, 3, 3, 4))
    fd(nn.Upsample { scale = 2, mode = "nearest" }, T.randn(1, 2, 2, 3, 3))
    fd(nn.Upsample { scale = 2, mode = "trilinear" }, T.randn(1, 2, 2, 3, 3))
  end)

  it("BatchNorm (training and evaluation) and InstanceNorm", function()
    local bn = nn.BatchNorm(3)
    bn.weight:copy(T.randn(3))
    bn.bias:copy(T.randn(3))
    fd(bn, T.randn(2, 3, 4, 3), { h = 1e-2, tol = 3e-3 })
    fd(bn, T.randn(2, 3, 2, 3, 2), { h = 1e-2, tol = 3e-3 })
    bn:evaluate()
    bn.running_mean:copy(T.randn(3))
    fd(bn, T.randn(2, 3, 4, 3))
    local inorm = nn.InstanceNorm(3, { affine = true })
    inorm.weight:copy(T.randn(3))
    fd(inorm, T.randn(2, 3, 4, 5), { h = 1e-2, tol = 3e-3 })
    fd(inorm, T.randn(2, 3, 3, 2, 3), { h = 1e-2, tol = 3e-3 })
  end)

  it("ReLU and LeakyReLU", function()
    fd(nn.ReLU(), ramp({ 2, 3, 4, 4 }, 0.1))
    fd(nn.LeakyReLU(0.2), ramp({ 2, 3, 4, 4 }, 0.1))
    fd(nn.Sequential { nn.Conv2d(2, 3, 3), nn.LeakyReLU(0.01) }, T.randn(2, 2, 5, 5), { h = 1e-3, tol = 1e-2 })
  end)

  it("Concat (the skip concatenation)", function()
    local cat = nn.Concat()
    local a, b = T.randn(2, 3, 4, 4), T.randn(2, 2, 4, 4)
    local r = T.randn(2, 5, 4, 4)
    local y = cat:forward(a, b)
    assert.are.equal(y:dot(r), a:dot(r:narrow(2, 1, 3)) + b:dot(r:narrow(2, 4, 2)))
    local ga, gb = cat:backward(a, b, r)
    assert.are.same(r:narrow(2, 1, 3):totable(), ga:totable())
    assert.are.same(r:narrow(2, 4, 2):totable(), gb:totable())
  end)

  -- the whole network: a few coordinates of the input and of every
  -- parameter tensor, one at a time. These tiny networks are piecewise
  -- linear with kinks at scales of 1e-3 (ReLU after normalisation puts many
  -- units near 0), so each coordinate tries three steps and the tolerance
  -- is 1 % of the largest gradient; the float64 goldens of PyTorch
  -- (43-nn_golden_spec) pin the gradients to 2e-4.
  local function fd_net(net, x)
    fd(net, x, { h = { 3e-4, 1e-3, 1e-4 }, tol = 1e-2, count = 4, global = true })
  end

  it("a 2-D U-Net (batch norm, ReLU, max-pool, bilinear up)", function()
    local net = nn.UNet { input = 2, output = 2, base = 4, depth = 2, dims = 2, norm = "batch", act = "relu",
                          down = "maxpool", up = "bilinear" }
    fd_net(net, T.randn(2, 2, 8, 8))
  end)

  it("a 2-D U-Net (no norm, leaky ReLU, strided down, transposed up)", function()
    local net = nn.UNet { input = 1, output = 1, base = 4, depth = 2, dims = 2, norm = "none", act = "leaky_relu",
                          down = "stride", up = "transpose" }
    fd_net(net, T.randn(2, 1, 8, 8))
  end)

  it("a 3-D U-Net of the nnU-Net kind (instance norm, leaky ReLU, strided, transposed)", function()
    local net = nn.UNet { input = 1, output = 2, base = 2, depth = 2, dims = 3, norm = "instance",
                          act = "leaky_relu", down = "stride", up = "transpose" }
    fd_net(net, T.randn(1, 1, 8, 8, 8))
  end)
end)
