-- topk_ce and unified_focal: what the generic specs cannot say. topk_ce:
-- k = 100 is ce / bce, ties go to the lower flat index (also across the
-- blocks that threads share), a tiny k keeps one term, the kept terms are
-- the largest of the bce / ce "none" maps. unified_focal: linear in its
-- weight λ between its two parts, the binary form equals the two-channel
-- softmax on logits (0, x), "none" with C = 1 equals C = 2 with (1 - p, p).
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local function close(a, b, tol, what)
  tol = tol or 1e-5
  if type(a) == "number" then
    assert.is_true(math.abs(a - b) <= tol * math.max(1, math.abs(b)), string.format("%s: %.9g vs %.9g", what, a, b))
    return
  end
  local d = (a - b):reshape(a:numel())
  local scale = math.max(b:max(), -b:min(), 1e-30)
  assert.is_true(math.max(d:max(), -d:min()) <= tol * scale, what .. ": max diff " .. math.max(d:max(), -d:min()))
end

local function bits(v) return string.pack("<d", v) end
local tie_x, tie_xs -- the input of the ties-and-threads test, made once

-- the flat indices (1-based) where g is not 0
local function nonzero(g)
  local out, f = {}, g:reshape(g:numel()):totable()
  for i = 1, #f do if f[i] ~= 0 then out[#out + 1] = i end end
  return out
end

describe("topk_ce", function()
  it("k = 100 is bce (sigmoid, mask) and ce (softmax, label map, class weights)", function()
    segloss.seed(271)
    local x, t, m = T.randn(2, 1, 6, 7) * 2, H.bin({ 2, 1, 6, 7 }, 0.3), H.bin({ 2, 1, 6, 7 }, 0.8)
    local l1, g1 = segloss.topk_ce(x, t, { activation = "sigmoid", k = 100, mask = m })
    local l2, g2 = segloss.bce(x, t, { activation = "sigmoid", mask = m })
    close(l1, l2, 1e-6, "bce value")
    close(g1, g2, 1e-5, "bce gradient")
    local xs, lab = T.randn(2, 3, 5, 6) * 2, H.labels({ 2, 3, 5, 6 })
    local o = { activation = "softmax", weight = { 0.5, 2, 1 } }
    l1, g1 = segloss.topk_ce(xs, lab, { activation = "softmax", weight = o.weight, k = 100 })
    l2, g2 = segloss.ce(xs, lab, o)
    close(l1, l2, 1e-6, "ce value")
    close(g1, g2, 1e-5, "ce gradient")
  end)

  it("keeps the largest terms of the bce map: the mean of the top max(1, floor(K k / 100))", function()
    segloss.seed(272)
    local x, t = T.randn(3, 2, 5, 5) * 2, H.bin({ 3, 2, 5, 5 }, 0.4)
    local map = segloss.bce(x, t, { activation = "sigmoid", reduction = "none" }):reshape(150):totable()
    table.sort(map, function(a, b) return a > b end)
    for _, k in ipairs { 10, 33.3, 0.5, 100 } do
      local n = math.max(1, math.floor(150 * k / 100))
      local s = 0
      for i = 1, n do s = s + map[i] end
      close(segloss.topk_ce(x, t, { activation = "sigmoid", k = k, grad = false }), s / n, 1e-6, "k " .. k)
      close(segloss.topk_ce(x, t, { activation = "sigmoid", k = k, grad = false, reduction = "sum" }), s, 1e-6,
        "sum, k " .. k)
    end
  end)

  it("a tiny k keeps one term: the largest, its gradient alone", function()
    segloss.seed(273)
    local x, t = T.randn(2, 1, 6, 6) * 2, H.bin({ 2, 1, 6, 6 }, 0.4)
    local l, g = segloss.topk_ce(x, t, { activation = "sigmoid", k = 0.5 })
    local map = segloss.bce(x, t, { activation = "sigmoid", reduction = "none" })
    close(l, map:max(), 1e-6, "the largest term")
    assert.equal(1, #nonzero(g))
  end)

  it("breaks ties by index: the lower flat index first (bce elements, ce pixels, masked ones skipped)", function()
    -- every term equal: x = 0, t = 0, so each bce term is log 2
    local x, t = T.zeros(2, 2, 4, 5), T.zeros(2, 2, 4, 5)
    local _, g = segloss.topk_ce(x, t, { activation = "sigmoid", k = 10 }) -- floor(80 * 0.1) = 8
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, nonzero(g))
    local m = T.ones(2, 2, 4, 5)
    m:set(1, 1, 1, 2, 0); m:set(1, 1, 1, 4, 0)
    _, g = segloss.topk_ce(x, t, { activation = "sigmoid", k = 10, mask = m }) -- K = 78: 7 kept
    assert.same({ 1, 3, 5, 6, 7, 8, 9 }, nonzero(g))
    local vals = segloss.topk_ce(x, t, { activation = "sigmoid", k = 10, mask = m, reduction = "none" })
    assert.same({ 1, 3, 5, 6, 7, 8, 9 }, nonzero(vals))
    -- ce: equal logits and a label map, one term per pixel (index n M + s)
    local xs, lab = T.zeros(2, 3, 4, 5), T.zeros(2, 1, 4, 5)
    vals = segloss.topk_ce(xs, lab, { activation = "softmax", k = 25, reduction = "none" }) -- 10 of 40
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, nonzero(vals))
    -- a larger term later in the order is kept before the ties
    xs:set(2, 1, 4, 5, -3)
    vals = segloss.topk_ce(xs, lab, { activation = "softmax", k = 25, reduction = "none" })
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 40 }, nonzero(vals))
  end)

  H.backend_it(it, pending, "ties across blocks and threads: the same bits, the first ones kept", function()
    -- 4 x 1 x 256 x 256 terms on three levels: the k-th term falls inside a
    -- run of ties that spans many blocks
    local n = 4 * 256 * 256
    if not tie_x then
      segloss.seed(274)
      local r = T.rand(4, 1, 256, 256):reshape(n):totable()
      tie_xs = {}
      for i = 1, n do local v = r[i]; tie_xs[i] = v < 0.3 and -2 or v < 0.7 and 0 or 1 end
      tie_x = T.from(tie_xs, { 4, 1, 256, 256 })
    end
    local xs, x, t = tie_xs, tie_x, T.zeros(4, 1, 256, 256)
    local opts = { activation = "sigmoid", k = 50 }
    local l1, g1 = H.with_threads(1, function() return segloss.topk_ce(x, t, opts) end)
    for _, th in ipairs { 2, 3 } do
      local l, g = H.with_threads(th, function() return segloss.topk_ce(x, t, opts) end)
      assert.equal(th, segloss.core.threads_used(), "threads that ran together")
      assert.equal(bits(l1), bits(l))
      local d = g - g1
      assert.is_true(d:max() == 0 and d:min() == 0, "gradient differs with " .. th .. " threads")
    end
    -- the largest level (x = 1: 30 % of the terms) all kept, then the x = 0
    -- ties in index order up to 50 %
    local keep, last = math.floor(n * 0.5), 0
    local nz = nonzero(g1)
    assert.equal(keep, #nz)
    local f = g1:reshape(n):totable()
    for i = 1, n do
      if xs[i] == 1 then assert.is_true(f[i] ~= 0, "x = 1 kept at " .. i) end
      if xs[i] == -2 then assert.equal(0, f[i]) end
      if xs[i] == 0 and f[i] ~= 0 then last = i end
    end
    for i = 1, last do
      if xs[i] == 0 then assert.is_true(f[i] ~= 0, "a tie before the last kept one is kept: " .. i) end
    end
  end)

  it("one-sided finite differences with a gap at the k-th term", function()
    segloss.seed(275)
    local x, t = T.randn(2, 1, 4, 5) * 2, H.bin({ 2, 1, 4, 5 }, 0.4)
    local o = { activation = "sigmoid", k = 30 }
    local _, g = segloss.topk_ce(x, t, o)
    local f, gf = x:reshape(40), g:reshape(40)
    for i = 1, 40 do
      local v = f:get(i)
      local h = 1e-3
      f:set(i, v + h)
      local lp = segloss.topk_ce(x, t, { activation = "sigmoid", k = 30, grad = false })
      f:set(i, v)
      local l0 = segloss.topk_ce(x, t, { activation = "sigmoid", k = 30, grad = false })
      local fd = (lp - l0) / (f:get(i) + h - v)
      assert.is_true(math.abs(fd - gf:get(i)) < 2e-3 * math.max(1, math.abs(gf:get(i))) + 1e-4,
        string.format("element %d: fd %.6g, gradient %.6g", i, fd, gf:get(i)))
    end
  end)
end)

describe("unified_focal", function()
  it("is linear in weight (lambda) between its two parts", function()
    segloss.seed(276)
    local x, lab = T.randn(2, 3, 5, 6) * 2, H.labels({ 2, 3, 5, 6 })
    local function f(w) return segloss.unified_focal(x, lab, { activation = "softmax", weight = w }) end
    local l1, g1 = f(1)
    local l0, g0 = f(0)
    local l, g = f(0.3)
    close(l, 0.3 * l1 + 0.7 * l0, 1e-6, "value")
    close(g, g1 * 0.3 + g0 * 0.7, 1e-5, "gradient")
    assert.is_true(l1 > 0 and l0 > 0)
  end)

  local desc = "binary sigmoid equals the two-channel softmax on logits (0, x); none with C = 1 equals C = 2"
  it(desc, function()
    segloss.seed(277)
    local x, t, m = T.randn(2, 1, 5, 6) * 2, H.bin({ 2, 1, 5, 6 }, 0.3), H.bin({ 2, 1, 5, 6 }, 0.8)
    local x2, t2 = T.zeros(2, 2, 5, 6), T.zeros(2, 2, 5, 6)
    for n = 1, 2 do
      for i = 1, 5 do
        for j = 1, 6 do
          x2:set(n, 2, i, j, x:get(n, 1, i, j))
          t2:set(n, 2, i, j, t:get(n, 1, i, j))
          t2:set(n, 1, i, j, 1 - t:get(n, 1, i, j))
        end
      end
    end
    for _, o in ipairs { {}, { batch = true }, { weight = 0.8, delta = 0.6, gamma = 0.2 } } do
      local a = { activation = "sigmoid", mask = m }
      local b = { activation = "softmax", mask = m }
      for k, v in pairs(o) do a[k] = v; b[k] = v end
      local l1, g1 = segloss.unified_focal(x, t, a)
      local l2, g2 = segloss.unified_focal(x2, t2, b)
      close(l1, l2, 1e-5, "value")
      local g2x = T.zeros(2, 1, 5, 6)
      for n = 1, 2 do
        for i = 1, 5 do for j = 1, 6 do g2x:set(n, 1, i, j, g2:get(n, 2, i, j)) end end
      end
      close(g1, g2x, 1e-4, "gradient")
    end
    -- "none": p given
    local p = T.rand(2, 1, 5, 6) * 0.9 + 0.05
    local p2 = T.zeros(2, 2, 5, 6)
    for n = 1, 2 do
      for i = 1, 5 do
        for j = 1, 6 do p2:set(n, 2, i, j, p:get(n, 1, i, j)); p2:set(n, 1, i, j, 1 - p:get(n, 1, i, j)) end
      end
    end
    local l1, g1 = segloss.unified_focal(p, t, {})
    local l2, g2 = segloss.unified_focal(p2, t2, {})
    close(l1, l2, 1e-5, "none value")
    local gd = T.zeros(2, 1, 5, 6)
    for n = 1, 2 do
      for i = 1, 5 do for j = 1, 6 do gd:set(n, 1, i, j, g2:get(n, 2, i, j) - g2:get(n, 1, i, j)) end end
    end
    close(g1, gd, 1e-4, "none gradient")
  end)

  it("stays finite at a perfect prediction (the clamp of 1 - TI) and gives 0 over nothing", function()
    local t = H.bin({ 2, 1, 4, 5 }, 0.5)
    local l, g = segloss.unified_focal(t:clone(), t, {})
    assert.is_true(l == l and l < 1e-2)
    assert.is_true(g:max() < math.huge and g:min() > -math.huge)
    l, g = segloss.unified_focal(T.randn(2, 1, 4, 5), t, { activation = "sigmoid", mask = T.zeros(2, 1, 4, 5) })
    assert.equal(0, l)
    assert.equal(0, g:max())
    assert.equal(0, g:min())
  end)

  it("errors: weight a list or outside [0, 1], reduction none, a mask that varies across channels", function()
    local x, t = T.rand(2, 2, 3, 3), H.bin({ 2, 2, 3, 3 }, 0.5)
    H.errors("segloss.unified_focal: ", { "option weight must be a number in [0, 1], got a table" },
      segloss.unified_focal, x, t, { weight = { 1, 1 } })
    H.errors("segloss.unified_focal: ", { "option weight must be a number in [0, 1], got 1.5" },
      segloss.unified_focal, x, t, { weight = 1.5 })
    H.errors("segloss.unified_focal: ", { 'unified_focal has no reduction "none"' },
      segloss.unified_focal, x, t, { reduction = "none" })
    local m = T.ones(2, 2, 3, 3)
    m:set(1, 2, 1, 1, 0)
    H.errors("segloss.unified_focal: ", { "mask value 0 at {1,2,1,1} differs from channel 1" },
      segloss.unified_focal, x, t, { mask = m })
    H.errors("segloss.UnifiedFocal: ", { "option weight must be a number in [0, 1]" },
      segloss.UnifiedFocal, { weight = -1 })
    local d
    for _, e in ipairs(segloss.losses()) do if e.name == "unified_focal" then d = e end end
    assert.equal("number", d.options.weight.type)
    assert.equal(0.5, d.options.weight.default)
    assert.equal(1, d.options.weight.max)
  end)
end)

-- The driver's store mode (loss.h, sl_genpart.stores / atomic): a lone
-- generic part stores into a gradient nothing has written (no memset, no
-- scratch for topk_ce), a second part adds, and a failing topk_ce call
-- leaves the caller's out as it was.
describe("topk_ce and unified_focal store into a fresh gradient", function()
  local function cases()
    segloss.seed(2712)
    local xs, lab = T.randn(2, 3, 9, 10) * 2, H.labels({ 2, 3, 9, 10 })
    local xb, tb, mb = T.randn(2, 1, 9, 10) * 2, H.bin({ 2, 1, 9, 10 }, 0.3), H.bin({ 2, 1, 9, 10 }, 0.7)
    local pn = T.rand(2, 3, 9, 10) * 0.9 + 0.05
    return {
      { "softmax", xs, lab, { activation = "softmax" } },
      { "softmax, mask, k = 37", xs, lab, { activation = "softmax", mask = H.bin({ 2, 1, 9, 10 }, 0.7) }, 37 },
      { "sigmoid, mask", xb, tb, { activation = "sigmoid", mask = mb } },
      { "sigmoid, soft targets", xb, T.rand(2, 1, 9, 10), { activation = "sigmoid" }, 50 },
      { "none, C = 3", pn, lab, { activation = "none" } },
    }
  end
  -- the case's options for a loss (k for topk_ce only), with more
  local function opts(c, name, more)
    local o = {}
    for k, v in pairs(c[4]) do o[k] = v end
    if name == "topk_ce" then o.k = c[5] end
    for k, v in pairs(more or {}) do o[k] = v end
    return o
  end
  local function maxabs(a) return math.max(a:max(), -a:min()) end

  it("gives the same bits into an out full of garbage as into a new tensor", function()
    for _, c in ipairs(cases()) do
      for _, name in ipairs({ "topk_ce", "unified_focal" }) do
        local l1, g1 = segloss[name](c[2], c[3], opts(c, name))
        local out = T.full(c[2]:shape(), 0 / 0)
        local l2 = segloss[name](c[2], c[3], opts(c, name, { out = out }))
        assert.equal(bits(l1), bits(l2), name .. " " .. c[1])
        local d = out - g1
        assert.equal(0, d:max(), name .. " " .. c[1])
        assert.equal(0, d:min(), name .. " " .. c[1])
        assert.is_true(out:max() == out:max(), name .. " " .. c[1] .. ": no NaN left")
      end
    end
  end)

  it("a second part adds to what the first one stored", function()
    for _, c in ipairs(cases()) do
      local ot, ou = opts(c, "topk_ce"), opts(c, "unified_focal")
      local _, ga = segloss.topk_ce(c[2], c[3], ot)
      local _, gb = segloss.unified_focal(c[2], c[3], ou)
      local sum = ga + gb
      for _, crit in ipairs({ segloss.TopKCE(ot) + segloss.UnifiedFocal(ou),
                              segloss.UnifiedFocal(ou) + segloss.TopKCE(ot) }) do
        local _, g = crit(c[2], c[3])
        assert.is_true(maxabs(g - sum) <= 1e-6 * math.max(maxabs(sum), 1e-30), c[1])
      end
    end
  end)

  it("a failing topk_ce call leaves out as it was", function()
    local out = T.full({ 1, 1, 4, 4 }, 7)
    local x, t = T.full({ 1, 1, 4, 4 }, 0.5), T.zeros(1, 1, 4, 4)
    x:set(1, 1, 2, 3, 1e-37)
    t:set(1, 1, 2, 3, 1)
    local ok, e = pcall(segloss.topk_ce, x, t, { activation = "none", eps = 2e-38, weight = { 3e38 }, out = out })
    assert.is_false(ok)
    assert.matches("overflows float32", e)
    assert.equal(7, out:min())
    assert.equal(7, out:max())
    local o2 = T.full({ 1, 2, 4, 4 }, 7)
    local m = T.ones(1, 2, 4, 4)
    m:set(1, 2, 3, 3, 0)
    ok = pcall(segloss.topk_ce, T.randn(1, 2, 4, 4), H.labels({ 1, 2, 4, 4 }),
      { activation = "softmax", mask = m, out = o2 })
    assert.is_false(ok)
    assert.equal(7, o2:min())
    assert.equal(7, o2:max())
  end)
end)
