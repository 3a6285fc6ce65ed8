-- cldice: what is specific to it — the soft skeleton of simple shapes (a
-- thick line's skeleton is its centre line, in 2-D and 3-D), the number of
-- iterations it takes, alpha = 0 as dice, masks, steps past the diameter,
-- the "none" shapes and thread counts. The generic specs (10-16, 20, 23)
-- run it with the other losses.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local same = H.same_bits

-- a (1, 1, Hh, W) image with rows r0..r1 (1-based) set to 1
local function rows(Hh, W, r0, r1)
  local x = T.zeros(1, 1, Hh, W)
  for y = r0, r1 do
    for w = 1, W do x:set(1, 1, y, w, 1) end
  end
  return x
end

describe("cldice", function()
  -- with alpha = 1 only the skeleton term counts: 1 - 2 Tprec Tsens / (Tprec + Tsens)
  local function cl(p, t, o)
    local opts = { alpha = 1 }
    for k, v in pairs(o or {}) do opts[k] = v end
    return (segloss.cldice(p, t, opts))
  end

  it("a thick line's skeleton is its centre line (2-D)", function()
    local W = 12
    local t = rows(9, W, 4, 6)       -- three rows thick
    -- the centre row alone: S(p) = p lies inside t, and S(t) = the centre row lies in p
    assert.equal(0, cl(rows(9, W, 5, 5), t))
    -- a row inside t but off centre: Tprec = 1, Tsens = 1 / (W + 1)
    local ts = 1 / (W + 1)
    assert.near(1 - 2 * ts / (1 + ts), cl(rows(9, W, 4, 4), t), 1e-12)
    -- the line itself scores 0 too (its skeleton is inside it)
    assert.equal(0, cl(t, t))
  end)

  it("a thick rod's skeleton is its axis (3-D)", function()
    local D, Hh, W = 7, 7, 10
    local t, axis, off = T.zeros(1, 1, D, Hh, W), T.zeros(1, 1, D, Hh, W), T.zeros(1, 1, D, Hh, W)
    for z = 3, 5 do
      for y = 3, 5 do
        for w = 1, W do t:set(1, 1, z, y, w, 1) end
      end
    end
    for w = 1, W do
      axis:set(1, 1, 4, 4, w, 1)
      off:set(1, 1, 3, 4, w, 1)
    end
    assert.equal(0, cl(axis, t))
    local ts = 1 / (W + 1)
    assert.near(1 - 2 * ts / (1 + ts), cl(off, t), 1e-12)
  end)

  it("a thicker line needs more iterations to reach its centre", function()
    local W = 10
    local t = rows(11, W, 4, 8)      -- five rows thick: its centre appears at step 2
    local edge = rows(11, W, 4, 4)   -- a row on t's edge
    -- iterations 1: S(t) is still empty (Tsens = 1), and the edge row lies in t
    assert.equal(0, cl(edge, t, { iterations = 1 }))
    local ts = 1 / (W + 1)
    for _, k in ipairs { 2, 3, 10 } do
      assert.near(1 - 2 * ts / (1 + ts), cl(edge, t, { iterations = k }), 1e-12)
    end
  end)

  it("steps past the image's diameter change nothing, bit for bit", function()
    segloss.seed(5)
    local x, t = T.randn(2, 2, 5, 6), H.labels({ 2, 2, 5, 6 })
    -- diameter (5 - 1) + (6 - 1) = 9
    local l1, g1 = segloss.cldice(x, t, { activation = "softmax", iterations = 9 })
    for _, k in ipairs { 10, 1000 } do
      local l2, g2 = segloss.cldice(x, t, { activation = "softmax", iterations = k })
      assert.is_true(same(l1, l2) and same(g1, g2), "iterations " .. k)
    end
    local l3 = segloss.cldice(x, t, { activation = "softmax", iterations = 1 })
    assert.are_not.equal(l1, l3)
  end)

  H.backend_it(it, pending, "alpha = 0 is dice without the background (value and gradient)", function()
    segloss.seed(6)
    local x, t = T.randn(2, 3, 9, 8) * 2, H.labels({ 2, 3, 9, 8 })
    for _, o in ipairs { { activation = "softmax" }, { activation = "softmax", batch = true, reduction = "sum" } } do
      local oc, od = { alpha = 0 }, { include_background = false }
      for k, v in pairs(o) do oc[k], od[k] = v, v end
      local l1, g1 = segloss.cldice(x, t, oc)
      local l2, g2 = segloss.dice(x, t, od)
      assert.near(l2, l1, 1e-6 * math.abs(l2))
      local d = g1 - g2
      assert.is_true(math.max(d:max(), -d:min()) <= 1e-5 * math.max(g2:max(), -g2:min()))
    end
  end)

  it("masked elements are outside the skeleton: the value is the cropped image's, gradient 0", function()
    segloss.seed(8)
    local x, t = T.rand(1, 1, 8, 8) * 0.9 + 0.05, H.bin({ 1, 1, 8, 8 }, 0.3)
    local m = T.ones(1, 1, 8, 8)
    for y = 1, 8 do m:set(1, 1, y, 1, 0) end
    local l, g = segloss.cldice(x, t, { mask = m, include_background = true })
    for y = 1, 8 do assert.equal(0, g:get(1, 1, y, 1)) end
    -- the masked first column is like the outside of the image
    local xc, tc = T.zeros(1, 1, 8, 7), T.zeros(1, 1, 8, 7)
    for y = 1, 8 do
      for w = 2, 8 do
        xc:set(1, 1, y, w - 1, x:get(1, 1, y, w))
        tc:set(1, 1, y, w - 1, t:get(1, 1, y, w))
      end
    end
    local lc, gc = segloss.cldice(xc, tc, {})
    assert.near(lc, l, 1e-12)
    for y = 1, 8 do
      for w = 2, 8 do assert.equal(gc:get(1, 1, y, w - 1), g:get(1, 1, y, w)) end
    end
  end)

  -- x with its masked elements replaced by v (m: the mask, of x's shape or (N, 1, S...))
  local function refill(x, m, v)
    local y = x:clone()
    local ys, ms = y:reshape(y:numel()), m:reshape(m:numel())
    local C, per = x:size(2), x:numel() // (x:size(1) * x:size(2))
    for i = 1, ys:numel() do
      local n, s = (i - 1) // (C * per), (i - 1) % per
      if ms:get(ms:numel() == ys:numel() and i or n * per + s + 1) == 0 then ys:set(i, v(i)) end
    end
    return y
  end

  for _, cf in ipairs {
    { "none, (N,1,S) mask", { 2, 2, 9, 10 }, "pix", { include_background = true } },
    { "sigmoid, full mask, batch", { 2, 2, 9, 10 }, "full", { activation = "sigmoid", batch = true } },
    { "softmax, label map", { 2, 3, 9, 10 }, "pix", { activation = "softmax", iterations = 6 } },
    { "sigmoid 3-D, full mask", { 1, 2, 5, 6, 7 }, "full", { activation = "sigmoid", include_background = true } },
  } do
    it(cf[1] .. ": x and t at masked elements change neither the value nor the gradient, bit for bit", function()
      segloss.seed(11)
      local shape, act = cf[2], cf[4].activation or "none"
      local x = act == "none" and T.rand(shape) or T.randn(shape) * 2
      local t = act == "softmax" and H.labels(shape) or H.bin(shape, 0.4)
      local ms = {}
      for i, v in ipairs(shape) do ms[i] = v end
      if cf[3] == "pix" then ms[2] = 1 end
      local m = H.bin(ms, 0.7)
      local o = { mask = m }
      for k, v in pairs(cf[4]) do o[k] = v end
      local l1, g1 = segloss.cldice(x, t, o)
      for _, v in ipairs { function() return act == "none" and 1 or 30 end,
                           function() return act == "none" and 0 or -30 end,
                           function(i) return act == "none" and (i % 3) / 2 or (i % 7) - 3 end } do
        local x2 = refill(x, m, v)
        local t2 = t
        if act ~= "softmax" then t2 = refill(t, m, function(i) return 1 - i % 2 end) end
        local l2, g2 = segloss.cldice(x2, t2, o)
        assert.is_true(same(l1, l2), "value")
        assert.is_true(same(g1, g2), "gradient")
      end
    end)
  end

  it("a mask that cuts a line gives the skeletons of the two pieces", function()
    segloss.seed(12)
    -- a blurred thick line across a 9 x 11 image, column 6 masked: the two
    -- 9 x 5 pieces on either side, as a batch of two images with batch = true
    local Hh, W = 9, 11
    local x, t, m = T.zeros(1, 1, Hh, W), rows(Hh, W, 4, 6), T.ones(1, 1, Hh, W)
    for y = 1, Hh do
      for w = 1, W do
        local v = math.exp(-0.5 * ((y - 5.3) / 1.5) ^ 2) * 0.85 + 0.1 * math.random()
        x:set(1, 1, y, w, v)
      end
      m:set(1, 1, y, 6, 0)
    end
    local xp, tp = T.zeros(2, 1, Hh, 5), T.zeros(2, 1, Hh, 5)
    for y = 1, Hh do
      for w = 1, 5 do
        xp:set(1, 1, y, w, x:get(1, 1, y, w))
        tp:set(1, 1, y, w, t:get(1, 1, y, w))
        xp:set(2, 1, y, w, x:get(1, 1, y, w + 6))
        tp:set(2, 1, y, w, t:get(1, 1, y, w + 6))
      end
    end
    for _, o in ipairs { { alpha = 1 }, { alpha = 0.5, iterations = 5 }, { alpha = 1, iterations = 0 } } do
      local op = { batch = true }
      for k, v in pairs(o) do op[k] = v end
      local om = { mask = m }
      for k, v in pairs(o) do om[k] = v end
      local lp, gp = segloss.cldice(xp, tp, op)
      local lm, gm = segloss.cldice(x, t, om)
      assert.near(lp, lm, 1e-12)
      for y = 1, Hh do
        for w = 1, 5 do
          assert.near(gp:get(1, 1, y, w), gm:get(1, 1, y, w), 1e-7 * math.abs(gp:get(1, 1, y, w)) + 1e-12)
          assert.near(gp:get(2, 1, y, w), gm:get(1, 1, y, w + 6), 1e-7 * math.abs(gp:get(2, 1, y, w)) + 1e-12)
        end
        assert.equal(0, gm:get(1, 1, y, 6))
      end
    end
    -- the mask matters: without it the line is one piece
    assert.are_not.equal(segloss.cldice(x, t, { alpha = 1 }), segloss.cldice(x, t, { alpha = 1, mask = m }))
  end)

  it("reduction none: (N, C), or (1, C) with batch", function()
    segloss.seed(9)
    local x, t = T.randn(3, 2, 6, 6), H.bin({ 3, 2, 6, 6 }, 0.3)
    local v = segloss.cldice(x, t, { activation = "sigmoid", reduction = "none", include_background = true })
    assert.same({ 3, 2 }, v:shape())
    local mean = segloss.cldice(x, t, { activation = "sigmoid", include_background = true })
    assert.near(mean, v:mean(), 1e-6)
    local vb = segloss.cldice(x, t, { activation = "sigmoid", reduction = "none", batch = true })
    assert.same({ 1, 2 }, vb:shape())
    assert.equal(0, vb:get(1, 1)) -- the background is left out by default
  end)

  for _, cf in ipairs {
    { "sigmoid, mask", 1, { activation = "sigmoid", mask = true } },
    { "softmax, batch", 3, { activation = "softmax", batch = true } },
    { "sigmoid 3-D", 0, { activation = "sigmoid" } },
  } do
    H.backend_it(it, pending, cf[1] .. ": 1, 2 and 3 threads give the same bits", function()
      segloss.seed(10)
      local shape = cf[2] == 0 and { 4, 1, 12, 24, 24 } or { 4, cf[2], 96, 96 }
      local x = T.randn(shape) * 2
      local t = cf[2] == 3 and H.labels(shape) or H.bin(shape, 0.2)
      local opts = {}
      for k, v in pairs(cf[3]) do opts[k] = v end
      if opts.mask then opts.mask = H.bin({ shape[1], 1, 96, 96 }, 0.8) end
      local l1, g1 = H.with_threads(1, function() return segloss.cldice(x, t, opts) end)
      for _, n in ipairs { 2, 3 } do
        local l, g = H.with_threads(n, function() return segloss.cldice(x, t, opts) end)
        assert.equal(n, segloss.core.threads_used(), "threads that ran together")
        assert.is_true(same(l1, l) and same(g1, g), cf[1] .. ": differs with " .. n .. " threads")
      end
    end)
  end
end)
