-- boundary and hausdorff_dt: what the generic specs do not cover — spacing,
-- 3-D, larger images against maps built from segloss.metrics.distance_transform
-- (a different transform: one side at a time), empty and full targets,
-- the scheduled Boundary + GeneralizedDice of the docs, thread counts, and
-- the errors of spacing and alpha.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local metrics = segloss.metrics

local function bits(v) return string.pack("<d", v) end

local function flat(t) return t:reshape(t:numel()):totable() end

-- per (n, c) of a {N, C, S...} 0/1 tensor: the distance to the other side,
-- from two one-sided transforms (0 everywhere for an empty or full map)
local function other_side(t, spacing)
  local shape = t:shape()
  local N, C = shape[1], shape[2]
  local sp = {}
  for i = 3, #shape do sp[#sp + 1] = shape[i] end
  local M = t:numel() // (N * C)
  local tf = flat(t)
  local out = {}
  for n = 0, N - 1 do
    for c = 0, C - 1 do
      local img, inv, ones = T.zeros(sp), T.zeros(sp), 0
      local a, b = img:reshape(M), inv:reshape(M)
      for s = 1, M do
        local v = tf[(n * C + c) * M + s] > 0.5 and 1 or 0
        a:set(s, v)
        b:set(s, 1 - v)
        ones = ones + v
      end
      local d1, d2 = flat(metrics.distance_transform(img, spacing)), flat(metrics.distance_transform(inv, spacing))
      for s = 1, M do
        local v = 0
        if ones > 0 and ones < M then v = d1[s] + d2[s] end -- one of them is 0
        out[(n * C + c) * M + s] = v
      end
    end
  end
  return out
end

-- the shape {N, C, S...} of blobs: a few balls of random centres and radii
local function blobs(shape, seed)
  segloss.seed(seed)
  local t = T.zeros(shape)
  local N, C = shape[1], shape[2]
  local sp = {}
  for i = 3, #shape do sp[#sp + 1] = shape[i] end
  local M = t:numel() // (N * C)
  local tf = t:reshape(t:numel())
  local u = flat(T.rand(N * C * 9))
  local k = 0
  local function rnd() k = k + 1; return u[k] end
  for nc = 0, N * C - 1 do
    local balls = {}
    for b = 1, 2 do
      local ctr = {}
      for a = 1, #sp do ctr[a] = rnd() * sp[a] end
      balls[b] = { ctr, 0.15 * sp[1] + rnd() * 0.25 * sp[1] }
    end
    for s = 0, M - 1 do
      local idx, r = {}, s
      for a = #sp, 1, -1 do idx[a] = r % sp[a]; r = r // sp[a] end
      for _, ball in ipairs(balls) do
        local d2 = 0
        for a = 1, #sp do d2 = d2 + (idx[a] - ball[1][a]) ^ 2 end
        if d2 <= ball[2] ^ 2 then tf:set(nc * M + s + 1, 1) end
      end
    end
  end
  return t
end

local function absmax(t) return math.max(t:max(), -t:min()) end

local function close(a, b, rel)
  return math.abs(a - b) <= rel * math.max(math.abs(a), math.abs(b), 1e-30)
end

describe("boundary", function()
  it("uses the spacing: one target pixel in a 3 x 3 image, spacing {2, 1}", function()
    local t = T.zeros(1, 1, 3, 3)
    t:reshape(9):set(5, 1)
    local x = T.ones(1, 1, 3, 3)
    -- outside: corners √(4 + 1), above and below 2, left and right 1;
    -- inside: -(1 - 1) = 0
    local want = (4 * math.sqrt(5) + 2 * 2 + 2 * 1) / 9
    local v = segloss.boundary(x, t, { spacing = { 2, 1 }, grad = false })
    assert.is_true(close(v, want, 1e-6), v .. " vs " .. want)
    local v1 = segloss.boundary(x, t, { grad = false })
    assert.is_true(close(v1, (4 * math.sqrt(2) + 4) / 9, 1e-6))
  end)

  for _, case in ipairs {
    { "2-D 61 x 70, anisotropic", { 2, 1, 61, 70 }, { 1.5, 0.6 } },
    { "3-D 9 x 10 x 11, anisotropic", { 2, 1, 9, 10, 11 }, { 2, 1, 0.7 } },
    { "1-D", { 3, 1, 40 }, { 0.5 } },
  } do
    it("agrees with maps from segloss.metrics.distance_transform: " .. case[1], function()
      local t = blobs(case[2], 3)
      segloss.seed(4)
      local x = T.rand(case[2])
      local v, g = segloss.boundary(x, t, { spacing = case[3], reduction = "sum" })
      local d = other_side(t, case[3])
      local xf, tf, gf = flat(x), flat(t), flat(g)
      local want, worst = 0, 0
      for i = 1, #xf do
        local phi = 0
        if d[i] ~= 0 then phi = tf[i] > 0.5 and -(d[i] - 1) or d[i] end
        want = want + xf[i] * phi
        worst = math.max(worst, math.abs(gf[i] - phi))
      end
      assert.is_true(close(v, want, 1e-6), v .. " vs " .. want)
      assert.is_true(worst < 1e-5, "gradient off by " .. worst)
    end)
  end

  it("gives 0, and gradient 0, for an empty and a full target (no NaN)", function()
    local x = T.randn(2, 1, 16, 16)
    local t = T.zeros(2, 1, 16, 16)
    t:narrow(1, 2, 1):fill(1)
    local v, g = segloss.boundary(x, t, { activation = "sigmoid" })
    assert.equal(0, v)
    assert.equal(0, absmax(g))
    local vn = segloss.boundary(x, t, { activation = "sigmoid", reduction = "none" })
    assert.equal(0, absmax(vn))
  end)

  it("is linear in p with activation none (the invariant of the docs)", function()
    local t = blobs({ 2, 1, 20, 20 }, 5)
    segloss.seed(6)
    local a, b = T.rand(2, 1, 20, 20), T.rand(2, 1, 20, 20)
    local la, lb = segloss.boundary(a, t, { grad = false }), segloss.boundary(b, t, { grad = false })
    local lab = segloss.boundary(a * 0.25 + b * 0.75, t, { grad = false })
    assert.is_true(close(lab, 0.25 * la + 0.75 * lb, 1e-5))
  end)

  it("runs the docs' schedule: S.linear(0.01, 1, n) * Boundary{} + GeneralizedDice{}", function()
    local S = segloss.schedule
    local opts = { activation = "softmax" }
    local crit = S.linear(0.01, 1, 1000) * segloss.Boundary(opts) + segloss.GeneralizedDice(opts)
    segloss.seed(8)
    local x = T.randn(2, 3, 24, 24)
    local t = H.labels({ 2, 3, 24, 24 })
    local loss, g = crit(x, t)
    local b, bg = segloss.boundary(x, t, opts)
    local gd, gg = segloss.generalized_dice(x, t, opts)
    assert.is_true(close(loss, 0.01 * b + gd, 1e-6))
    local dg = g - (bg * 0.01 + gg)
    assert.is_true(absmax(dg) < 1e-6)
    crit:step(1000)
    local loss2 = crit(x, t)
    assert.is_true(close(loss2, b + gd, 1e-6))
    assert.is_true(b ~= 0 and gd ~= 0)
  end)
end)

describe("hausdorff_dt", function()
  for _, case in ipairs {
    { "2-D 61 x 70, anisotropic, sigmoid", { 2, 1, 61, 70 }, { 1.5, 0.6 }, "sigmoid" },
    { "3-D 9 x 10 x 11, anisotropic, none", { 2, 1, 9, 10, 11 }, { 2, 1, 0.7 }, "none" },
  } do
    it("agrees with maps from segloss.metrics.distance_transform: " .. case[1], function()
      local t = blobs(case[2], 13)
      local xb = blobs(case[2], 14) -- a prediction of its own blobs
      segloss.seed(15)
      local noise = T.rand(case[2]) * 0.4
      local x
      if case[4] == "none" then x = xb * 0.5 + noise + 0.05 -- p > 0.5 exactly on the blobs
      else x = (xb * 2 - 1) * (noise + 0.1) end
      local v = segloss.hausdorff_dt(x, t, { activation = case[4], spacing = case[3], reduction = "sum",
        grad = false })
      local p = case[4] == "none" and x or x:sigmoid()
      local dt, dp = other_side(t, case[3]), other_side(xb, case[3])
      local pf, tf = flat(p), flat(t)
      local want = 0
      for i = 1, #pf do want = want + (pf[i] - tf[i]) ^ 2 * (dp[i] ^ 2 + dt[i] ^ 2) end
      assert.is_true(close(v, want, 1e-5), v .. " vs " .. want)
    end)
  end

  it("gives 0 and gradient 0 for full targets and predictions, finite values for empty ones", function()
    local t = T.ones(2, 1, 12, 12)
    local v, g = segloss.hausdorff_dt(T.ones(2, 1, 12, 12), t, {})
    assert.equal(0, v)
    assert.equal(0, absmax(g))
    -- an empty target against a full prediction: both maps 0, the loss 0
    local v2, g2 = segloss.hausdorff_dt(T.ones(2, 1, 12, 12), T.zeros(2, 1, 12, 12), {})
    assert.equal(0, v2)
    assert.equal(0, absmax(g2))
    -- an empty target against a prediction with a blob: finite
    local x = blobs({ 2, 1, 12, 12 }, 21) * 0.8 + 0.1
    local v3, g3 = segloss.hausdorff_dt(x, T.zeros(2, 1, 12, 12), {})
    assert.is_true(v3 > 0 and v3 < math.huge)
    assert.is_true(absmax(g3) < math.huge)
  end)

  it("with alpha = 0 is twice the mean squared error (the invariant of the docs)", function()
    local t = blobs({ 2, 2, 15, 16 }, 22)
    segloss.seed(23)
    local x = T.rand(2, 2, 15, 16)
    local v = segloss.hausdorff_dt(x, t, { alpha = 0, include_background = true, grad = false })
    local d = x - t
    local mse = (d * d):sum() / d:numel()
    assert.is_true(close(v, 2 * mse, 1e-6))
  end)
end)

describe("distance losses and threads", function()
  for _, name in ipairs { "boundary", "hausdorff_dt" } do
    for _, N in ipairs { 4, 1 } do
      it(name .. ": 1, 2 and 3 threads give the same bits with N = " .. N
        .. (N == 1 and " (lines on the threads)" or " (samples on the threads)"), function()
        local t = blobs({ N, 1, 96, 100 }, 31)
        segloss.seed(32)
        local x = T.randn(N, 1, 96, 100)
        local o = { activation = "sigmoid" }
        local l1, g1 = H.with_threads(1, function() return segloss[name](x, t, o) end)
        for _, n in ipairs { 2, 3 } do
          local l, g = H.with_threads(n, function() return segloss[name](x, t, o) end)
          assert.equal(n, segloss.core.threads_used(), "threads that ran together")
          assert.equal(bits(l1), bits(l))
          local d = g - g1
          assert.is_true(d:max() == 0 and d:min() == 0)
        end
      end)
    end
  end
end)

describe("distance losses: errors", function()
  local x, t = T.rand(1, 1, 4, 4), T.zeros(1, 1, 4, 4)
  it("refuses a spacing of the wrong length or out of the EDT's range", function()
    H.errors("segloss.boundary: ", { "option spacing has 1 number, the input has 2 spatial axes" },
      segloss.boundary, x, t, { spacing = { 1 } })
    H.errors("segloss.hausdorff_dt: ", { "option spacing[2] must be a finite number > 0, got 0" },
      segloss.hausdorff_dt, x, t, { spacing = { 1, 0 } })
    H.errors("segloss.boundary: ", { "option spacing {1, 1e-200} is out of range",
      "may differ by a factor of at most 2^500" }, segloss.boundary, x, t, { spacing = { 1, 1e-200 } })
  end)
  it("takes alpha in [0, 10] for hausdorff_dt", function()
    H.errors("segloss.hausdorff_dt: ", { "option alpha must be a number in [0, 10], got 11" },
      segloss.hausdorff_dt, x, t, { alpha = 11 })
    H.errors("segloss.hausdorff_dt: ", { "option alpha must be a number in [0, 10], got boolean false" },
      segloss.hausdorff_dt, x, t, { alpha = false })
    assert.is_true(segloss.hausdorff_dt(x, t, { alpha = 10, grad = false }) >= 0)
    H.errors("segloss.boundary: ", { "unknown option \"alpha\"" }, segloss.boundary, x, t, { alpha = 1 })
  end)
end)
