-- The Lovász losses (lovasz_hinge, lovasz_softmax): what the generic specs
-- cannot see. Ties broken by index (the gradient depends on it, the value
-- does not), errors that float rounding merges but double keeps apart,
-- per_image both ways, classes "present" / "all", reduction shapes, 3-D
-- inputs, bit-identical results for 1, 2 and 3 threads on data full of
-- ties, combinations, and the errors.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local function flat(t) return t:reshape(t:numel()):totable() end

local same = H.same_bits

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol, string.format("%s: %.17g vs %.17g", what or "value", a, b))
end

-- scores drawn from a few values: many exact ties, also across targets
local function grid_scores(shape, values)
  local x = T.zeros(shape)
  local f = x:reshape(x:numel())
  for i = 1, f:numel() do f:set(i, values[math.floor(T.rand({ 1 }):get(1) * #values) + 1]) end
  return x
end

describe("lovasz_hinge", function()
  H.backend_it(it, pending, "breaks ties by index: the gradient follows the index order, the value does not", function()
    -- x = 0.5 with t = 1 and x = -0.5 with t = 0 both have error 0.5
    local l1, g1 = segloss.lovasz_hinge(T.from({ 0.5, -0.5 }, { 1, 1, 2 }), T.from({ 1, 0 }, { 1, 1, 2 }))
    -- the positive first: J_1 = 1 - 0/1 = 1, J_2 = 1
    assert.equal(0.5, l1)
    assert.same({ -1, 0 }, flat(g1))
    local l2, g2 = segloss.lovasz_hinge(T.from({ -0.5, 0.5 }, { 1, 1, 2 }), T.from({ 0, 1 }, { 1, 1, 2 }))
    -- the negative first: J_1 = 1 - 1/2, J_2 = 1
    assert.equal(0.5, l2)
    assert.same({ 0.5, -0.5 }, flat(g2))
  end)

  H.backend_it(it, pending, "orders errors that round to the same float by their double values", function()
    -- e_A = 1 - 2e-10 (t = 1) and e_B = 1 - 1.5e-10 (t = 0) are both 1.0f:
    -- B comes first although A has the smaller index; C (e = -4) is not sorted
    local x = T.from({ 2e-10, -1.5e-10, 5 }, { 1, 1, 3 })
    local t = T.from({ 1, 0, 1 }, { 1, 1, 3 })
    local loss, g = segloss.lovasz_hinge(x, t)
    -- G = 2: B: J = 1 - 2/3, then A: J = 1 - 1/3
    local xa, xb = x:get(1, 1, 1), x:get(1, 1, 2)
    near(loss, ((1 + xb) + (1 - xa)) / 3, 1e-15)
    local gt = flat(g)
    near(gt[1], -1 / 3, 1e-7, "A")
    near(gt[2], 1 / 3, 1e-7, "B")
    assert.equal(0, gt[3])
  end)

  it("per image is the mean of each image alone; per_image = false is the hinge of the images side by side", function()
    segloss.seed(240)
    local x = T.randn(3, 1, 6, 7) * 2
    local t = H.bin({ 3, 1, 6, 7 }, 0.4)
    local l, g = segloss.lovasz_hinge(x, t)
    local sum = 0
    for n = 1, 3 do
      local ln, gn = segloss.lovasz_hinge(x:narrow(1, n, 1):clone(), t:narrow(1, n, 1):clone())
      sum = sum + ln
      local d = g:narrow(1, n, 1):clone() - gn * (1 / 3)
      assert.is_true(math.max(d:max(), -d:min()) <= 1e-7)
    end
    near(l, sum / 3, 1e-12)
    -- the batch as one image: images side by side keep the index order
    local lb, gb = segloss.lovasz_hinge(x, t, { per_image = false })
    local lr, gr = segloss.lovasz_hinge(x:reshape(1, 1, 18, 7), t:reshape(1, 1, 18, 7))
    assert.is_true(same(lb, lr))
    assert.is_true(same(gb, gr:reshape(3, 1, 6, 7)))
    -- with one image the two agree
    local x1, t1 = x:narrow(1, 1, 1):clone(), t:narrow(1, 1, 1):clone()
    assert.is_true(same(segloss.lovasz_hinge(x1, t1), segloss.lovasz_hinge(x1, t1, { per_image = false })))
  end)

  it("reductions: \"none\" per image (N, 1) or (1, 1), \"sum\" their sum, an image without valid pixels out", function()
    segloss.seed(241)
    local x = T.randn(4, 1, 5, 5) * 2
    local t = H.bin({ 4, 1, 5, 5 }, 0.3)
    local m = T.ones(4, 1, 5, 5)
    m:narrow(1, 3, 1):fill(0)
    local v = segloss.lovasz_hinge(x, t, { reduction = "none", mask = m })
    assert.same({ 4, 1 }, v:shape())
    local vt = flat(v)
    assert.equal(0, vt[3])
    local s = segloss.lovasz_hinge(x, t, { reduction = "sum", mask = m })
    near(s, vt[1] + vt[2] + vt[4], 1e-5)
    near(segloss.lovasz_hinge(x, t, { mask = m }), s / 3, 1e-12)
    assert.same({ 1, 1 }, segloss.lovasz_hinge(x, t, { reduction = "none", per_image = false }):shape())
  end)

  it("a large image (its sort takes the top digit first) gives the value and gradient of a sort in Lua", function()
    -- 90000 elements: more than the 65536 under which the C sort is LSD
    -- alone. A quarter of the scores from a few values (exact ties, broken
    -- by index); a quarter tiny (errors near 1 that round to the same
    -- float); a quarter with errors 1 + 2^k u over 31 octaves (buckets of
    -- the top digit sorted by the lower two); a quarter 2^k (1 + j 2^-23),
    -- j < 3 (lower digits all alike: one pass), k in 31..40, and one in
    -- twenty with k in 41..120 (short buckets, full of ties: by insertion)
    segloss.seed(245)
    math.randomseed(245)
    local shape = { 1, 1, 300, 300 }
    local t = H.bin(shape, 0.3)
    local x = grid_scores(shape, { -1.5, -0.25, 0, 0.25, 0.5, 2 })
    local xf, tf = x:reshape(x:numel()), t:reshape(t:numel())
    for i = 1, xf:numel() do
      local sgn = -(2 * tf:get(i) - 1)
      if i % 4 == 1 then
        xf:set(i, (math.random() - 0.5) * 2e-4)
      elseif i % 4 == 2 then
        xf:set(i, sgn * 2.0 ^ math.random(0, 30) * (1 + math.random()))
      elseif i % 4 == 3 then
        local k = math.random(20) == 1 and math.random(41, 120) or math.random(31, 40)
        xf:set(i, sgn * 2.0 ^ k * (1 + math.random(0, 2) * 2.0 ^ -23))
      end
    end
    local loss, g = segloss.lovasz_hinge(x, t)
    local xs, ts, n = flat(x), flat(t), x:numel()
    local e, order, G = {}, {}, 0
    for i = 1, n do
      e[i] = 1 - xs[i] * (2 * ts[i] - 1)
      G = G + ts[i]
      if e[i] > 0 then order[#order + 1] = i end
    end
    table.sort(order, function(a, b)
      if e[a] ~= e[b] then return e[a] > e[b] end
      return a < b
    end)
    local d = {}
    local cT, cF, Jp = 0, 0, 0
    for _, i in ipairs(order) do
      cT, cF = cT + ts[i], cF + 1 - ts[i]
      local J = 1 - (G - cT) / (G + cF)
      d[i], Jp = J - Jp, J
    end
    local L, gs = 0, flat(g)
    for i = 1, n do
      local di = d[i] or 0
      L = L + e[i] * di
      local want = string.unpack("<f", string.pack("<f", -(2 * ts[i] - 1) * di))
      if gs[i] ~= want then error(string.format("element %d: gradient %.9g, a sort in Lua %.9g", i, gs[i], want)) end
    end
    near(loss, L, 1e-12 * math.abs(L))
  end)

  it("scores with every margin x (2t - 1) >= 1 give 0 with gradient 0", function()
    segloss.seed(242)
    local t = H.bin({ 2, 1, 8, 8 }, 0.4)
    local x = (t * 2 - 1) * (T.rand(2, 1, 8, 8) + 1)
    local l, g = segloss.lovasz_hinge(x, t)
    assert.equal(0, l)
    assert.equal(0, g:max())
    assert.equal(0, g:min())
  end)

  it("joins a combination: Dice + LovaszHinge is the sum of its parts (and then x must be probabilities)", function()
    segloss.seed(243)
    local x = T.rand(2, 1, 9, 9)
    local t = H.bin({ 2, 1, 9, 9 }, 0.3)
    local crit = segloss.Dice() + 0.5 * segloss.LovaszHinge()
    local l, g = crit(x, t)
    local l1, g1 = segloss.dice(x, t)
    local l2, g2 = segloss.lovasz_hinge(x, t)
    near(l, l1 + 0.5 * l2, 1e-12)
    local d = g - (g1 + g2 * 0.5)
    assert.is_true(math.max(d:max(), -d:min()) <= 1e-7)
    assert.near(l2, crit:last().parts[2].value, 1e-12)
    H.errors("segloss.Criterion: ", { "is outside [0, 1] with activation \"none\"" }, crit, x * 3, t)
  end)
end)

describe("lovasz_softmax", function()
  local x, lab
  before_each(function()
    segloss.seed(244)
    x = T.randn(2, 4, 6, 7) * 2
    lab = H.labels({ 2, 4, 6, 7 })
    -- class 3 absent from the batch
    local f = lab:reshape(lab:numel())
    for i = 1, f:numel() do if f:get(i) == 3 then f:set(i, 0) end end
  end)

  it("classes: \"present\" averages the classes in the target, \"all\" every class (an absent one: its "
    .. "largest error)", function()
    local vp = flat(segloss.lovasz_softmax(x, lab, { activation = "softmax", reduction = "none" }))
    local va = flat(segloss.lovasz_softmax(x, lab, { activation = "softmax", reduction = "none", classes = "all" }))
    assert.equal(0, vp[4])
    for c = 1, 3 do assert.equal(vp[c], va[c]) end
    -- the absent class: J_1 = 1, every later step 0: L = max p_3
    local p3 = x:softmax():narrow(2, 4, 1):max()
    near(va[4], p3, 1e-6, "absent class")
    near(segloss.lovasz_softmax(x, lab, { activation = "softmax" }), (vp[1] + vp[2] + vp[3]) / 3, 1e-6)
    local all = segloss.lovasz_softmax(x, lab, { activation = "softmax", classes = "all" })
    near(all, (va[1] + va[2] + va[3] + va[4]) / 4, 1e-6)
  end)

  it("per_image: the mean over images of each image's class mean; shapes (N, C) and (1, C)", function()
    local v = segloss.lovasz_softmax(x, lab, { activation = "softmax", reduction = "none", per_image = true })
    assert.same({ 2, 4 }, v:shape())
    local l = segloss.lovasz_softmax(x, lab, { activation = "softmax", per_image = true })
    local want = 0
    for n = 1, 2 do
      local xn, ln = x:narrow(1, n, 1):clone(), lab:narrow(1, n, 1):clone()
      want = want + segloss.lovasz_softmax(xn, ln, { activation = "softmax" }) / 2
    end
    near(l, want, 1e-12)
    assert.same({ 1, 4 }, segloss.lovasz_softmax(x, lab, { activation = "softmax", reduction = "none" }):shape())
  end)

  it("weights: uniform ones change nothing, a constant factor neither; sum is Σ w_c L_c", function()
    local sm = { activation = "softmax" }
    local l0, g0 = segloss.lovasz_softmax(x, lab, sm)
    local l1, g1 = segloss.lovasz_softmax(x, lab, { activation = "softmax", weight = { 3, 3, 3, 3 } })
    near(l1, l0, 1e-12)
    assert.is_true(math.max((g1 - g0):max(), (g0 - g1):max()) <= 1e-8)
    local w = { 0.5, 2, 1, 4 }
    local v = flat(segloss.lovasz_softmax(x, lab, { activation = "softmax", reduction = "none" }))
    local s = segloss.lovasz_softmax(x, lab, { activation = "softmax", reduction = "sum", weight = w })
    near(s, 0.5 * v[1] + 2 * v[2] + v[3], 1e-5)
    near(segloss.lovasz_softmax(x, lab, { activation = "softmax", weight = w }), s / 3.5, 1e-6)
  end)

  it("a 3-D input gives the bits of the same data with the spatial axes flattened", function()
    segloss.seed(245)
    local x3 = T.randn(2, 3, 4, 5, 6) * 2
    local l3 = H.labels({ 2, 3, 4, 5, 6 })
    for _, o in ipairs { { activation = "softmax" }, { activation = "softmax", per_image = true, classes = "all" } } do
      local a, ga = segloss.lovasz_softmax(x3, l3, o)
      local b, gb = segloss.lovasz_softmax(x3:reshape(2, 3, 120), l3:reshape(2, 1, 120), o)
      assert.is_true(same(a, b))
      assert.is_true(same(ga, gb:reshape(2, 3, 4, 5, 6)))
    end
    local xh = T.randn(2, 1, 3, 4, 5)
    local th = H.bin({ 2, 1, 3, 4, 5 }, 0.3)
    assert.is_true(same(segloss.lovasz_hinge(xh, th), segloss.lovasz_hinge(xh:reshape(2, 1, 60), th:reshape(2, 1, 60))))
  end)

  it("a perfect prediction scores 0; with activation none each class may have its own mask", function()
    local oh = lab:onehot(4)
    local l, g = segloss.lovasz_softmax(oh, lab)
    assert.equal(0, l)
    assert.equal(0, g:max())
    assert.equal(0, g:min())
    local p = x:softmax()
    local m = H.bin({ 2, 4, 6, 7 }, 0.7)
    local _, gm = segloss.lovasz_softmax(p, oh, { mask = m })
    local gt, mt = flat(gm), flat(m)
    for i, v in ipairs(mt) do if v == 0 then assert.equal(0, gt[i]) end end
  end)
end)

describe("the Lovász losses and thread counts", function()
  local cases = {
    { "lovasz_hinge, ties, per image", "lovasz_hinge", {}, "hinge" },
    { "lovasz_hinge, ties, over the batch", "lovasz_hinge", { per_image = false }, "hinge" },
    { "lovasz_softmax, per image, classes all", "lovasz_softmax", { activation = "softmax", per_image = true,
      classes = "all" }, "softmax" },
    { "lovasz_softmax, none, ties, over the batch", "lovasz_softmax", { weight = { 1, 2, 0.5, 1, 3 } }, "grid" },
  }
  for _, cf in ipairs(cases) do
    H.backend_it(it, pending, cf[1] .. ": 1, 2 and 3 threads give the same bits", function()
      segloss.seed(246)
      local x, t
      if cf[4] == "hinge" then
        x = grid_scores({ 6, 1, 192, 192 }, { -1.5, -1, -0.5, 0, 0.5, 1, 1.5 })
        t = H.bin({ 6, 1, 192, 192 }, 0.3)
      elseif cf[4] == "softmax" then
        x = T.randn(4, 5, 112, 112) * 2
        t = H.labels({ 4, 5, 112, 112 })
      else
        x = grid_scores({ 4, 5, 112, 112 }, { 0, 0.125, 0.25, 0.5, 0.75, 1 })
        t = H.labels({ 4, 5, 112, 112 }):onehot(5)
      end
      local l1, g1 = H.with_threads(1, function() return segloss[cf[2]](x, t, cf[3]) end)
      assert.equal(1, segloss.core.threads_used())
      for _, n in ipairs { 2, 3 } do
        local l, g = H.with_threads(n, function() return segloss[cf[2]](x, t, cf[3]) end)
        assert.equal(n, segloss.core.threads_used(), "threads that ran together")
        assert.is_true(same(l1, l), "loss differs with " .. n .. " threads")
        assert.is_true(same(g1, g), "gradient differs with " .. n .. " threads")
      end
    end)
  end
end)

describe("the Lovász losses' errors", function()
  local x1, t1 = T.randn(2, 1, 4, 5), T.zeros(2, 1, 4, 5)
  local x3, lab = T.randn(2, 3, 4, 5), T.zeros(2, 1, 4, 5)
  local cases = {
    { "segloss.lovasz_hinge", { 'lovasz_hinge needs activation "none", got "sigmoid"', 'pass activation = "none"' },
      segloss.lovasz_hinge, x1, t1, { activation = "sigmoid" } },
    { "segloss.lovasz_hinge", { "lovasz_hinge is binary: the input must have one channel, got C = 3" },
      segloss.lovasz_hinge, x3, T.zeros(2, 3, 4, 5), {} },
    { "segloss.lovasz_hinge", { "option weight is not supported (lovasz_hinge has one class" },
      segloss.lovasz_hinge, x1, t1, { weight = { 1 } } },
    { "segloss.lovasz_hinge", { "option batch is not supported (use per_image = false" },
      segloss.lovasz_hinge, x1, t1, { batch = true } },
    { "segloss.lovasz_softmax", { 'lovasz_softmax needs activation "softmax" or "none", got "sigmoid"',
      "lovasz_hinge on the logits" }, segloss.lovasz_softmax, x1, t1, { activation = "sigmoid" } },
    { "segloss.lovasz_softmax", { "option batch is not supported" },
      segloss.lovasz_softmax, x3, lab, { activation = "softmax", batch = true } },
    { "segloss.lovasz_softmax", { 'option classes must be one of "present", "all", got string "some"' },
      segloss.lovasz_softmax, x3, lab, { activation = "softmax", classes = "some" } },
    { "segloss.lovasz_softmax", { "option per_image must be a boolean, got 1" },
      segloss.lovasz_softmax, x3, lab, { activation = "softmax", per_image = 1 } },
    { "segloss.lovasz_hinge", { "input has nan at {1,1,1,2}" },
      segloss.lovasz_hinge, (function() local c = x1:clone(); c:set(1, 1, 1, 2, 0 / 0); return c end)(), t1, {} },
    { "segloss.lovasz_softmax", { "input value 2 at {1,1,1,1} is outside [0, 1]" },
      segloss.lovasz_softmax, (function() local c = x3:softmax(); c:set(1, 1, 1, 1, 2); return c end)(), lab, {} },
    { "segloss.LovaszHinge", { 'lovasz_hinge needs activation "none", got "softmax"' },
      segloss.LovaszHinge, { activation = "softmax" } },
  }
  for i, c in ipairs(cases) do
    it(string.format("%d: %s", i, c[2][1]), function()
      local args = { table.unpack(c, 4) }
      local last = args[#args]
      if #args == 3 then -- a functional call with opts: out must come back untouched
        local out = T.full(args[1]:shape(), 7)
        last.out = out
        H.errors(c[1] .. ": ", c[2], c[3], table.unpack(args))
        assert.equal(7, out:min())
        assert.equal(7, out:max())
      else
        H.errors(c[1] .. ": ", c[2], c[3], table.unpack(args))
      end
    end)
  end
end)
