-- The numerical edges of the losses: gradients whose coefficients differ by
-- a factor of 10^6 or more (no cancellation), ratios 0/0 at smooth = 0,
-- values and gradients that would overflow float32, and saturated logits.
-- References are computed here in double precision, from the formulas of
-- docs/losses.md.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local function sigmoid(x)
  if x >= 0 then return 1 / (1 + math.exp(-x)) end
  local z = math.exp(x)
  return z / (1 + z)
end

-- the largest |g - ref| over the largest |ref| of a (1, 1, S) gradient
local function rel_err(g, ref)
  local gt, err, mx = g:totable()[1][1], 0, 0
  for i, r in ipairs(ref) do
    err = math.max(err, math.abs(gt[i] - r))
    mx = math.max(mx, math.abs(r))
  end
  return err / mx, mx
end

local function all_finite(g)
  local s = g:sum()
  return s == s and s ~= math.huge and s ~= -math.huge
end

describe("loss coefficients without cancellation", function()
  H.backend_it(it, pending,
    "sensitivity_specificity on a target covering every pixel (coefficients 95000 and 5e-5)", function()
    -- Σ(1 - t) = 0: the specificity term's coefficient (1 - λ)/s = 95000
    -- dwarfs the sensitivity term's λ/(ST + s) ~ 5e-5, which alone acts
    segloss.seed(4)
    local S, lam, s = 1000, 0.05, 1e-5
    local x = T.randn(1, 1, S) * 2
    local t = T.ones(1, 1, S)
    local loss, g = segloss.sensitivity_specificity(x, t, { activation = "sigmoid" })
    local xt, ref, L = x:totable()[1][1], {}, 0
    for i = 1, S do
      local p = sigmoid(xt[i])
      L = L + (1 - p) ^ 2
      ref[i] = 2 * lam * (p - 1) / (S + s) * p * (1 - p)
    end
    L = lam * L / (S + s)
    assert.is_true(math.abs(loss - L) <= 1e-6 * L, string.format("loss %.9g vs %.9g", loss, L))
    local e, mx = rel_err(g, ref)
    assert.is_true(mx > 1e-6)
    assert.is_true(e <= 1e-5, string.format("gradient off by %.3g of its size", e))
  end)

  H.backend_it(it, pending, "tversky with alpha = 1, beta = 0 and few false positives (coefficients 5e6 apart)",
    function()
    -- t = 1 everywhere but at 3 pixels predicted 2^-14 (sums exact in
    -- float32): at t = 1, dL/dp = -FP/B^2 ~ 1.8e-10 against dL/dTP = -1/B ~
    -- 1e-3, which float32 coefficients added together would bury
    local S, s = 1000, 1e-5
    local x, t = T.ones(1, 1, S), T.ones(1, 1, S)
    for _, i in ipairs { 10, 500, 900 } do
      t:set(1, 1, i, 0)
      x:set(1, 1, i, 2 ^ -14)
    end
    local _, g = segloss.tversky(x, t, { alpha = 1, beta = 0 })
    local TP, FP = S - 3, 3 * 2 ^ -14
    local A, B = TP + s, TP + FP + s
    local ref = {}
    for i = 1, S do
      -- dL/dp = -(t B - A (t (1 - a - b) + a)) / B^2 with a = 1, b = 0
      local ti = t:get(1, 1, i)
      ref[i] = -(ti * B - A) / (B * B)
    end
    local gt = g:totable()[1][1]
    for i = 1, S do
      assert.is_true(math.abs(gt[i] - ref[i]) <= 1e-6 * math.abs(ref[i]),
        string.format("pixel %d: %.9g vs %.9g", i, gt[i], ref[i]))
    end
    assert.is_true(math.abs(ref[1]) < 2e-10 and math.abs(A / (B * B)) > 1e-3 / 1.01)
  end)

  H.backend_it(it, pending, "squared dice near a perfect prediction (2A/B^2 p against 2/B)", function()
    -- p = t -/+ 2^-20: dL/dp = 2 (p A - t B) / B^2 is ~2^-20 of either term
    local S, s, d = 500, 1, 2 ^ -20
    local t = H.bin({ 1, 1, S }, 0.3)
    local x = t * (1 - 2 * d) + d
    local _, g = segloss.dice(x, t, { squared = true })
    local xt, tt = x:totable()[1][1], t:totable()[1][1]
    local TP, SP2, ST2 = 0, 0, 0
    for i = 1, S do
      TP, SP2, ST2 = TP + xt[i] * tt[i], SP2 + xt[i] ^ 2, ST2 + tt[i] ^ 2
    end
    local A, B = 2 * TP + s, SP2 + ST2 + s
    local ref = {}
    for i = 1, S do ref[i] = 2 * (xt[i] * A - tt[i] * B) / (B * B) end
    local gt = g:totable()[1][1]
    for i = 1, S do
      assert.is_true(math.abs(gt[i] - ref[i]) <= 1e-4 * math.abs(ref[i]),
        string.format("pixel %d (t = %d): %.9g vs %.9g", i, tt[i], gt[i], ref[i]))
    end
  end)
end)

describe("ratios 0/0 at smooth = 0", function()
  local x0, t0 = T.zeros(2, 1, 8), T.zeros(2, 1, 8)
  for _, name in ipairs { "dice", "iou", "tversky", "focal_tversky", "sensitivity_specificity", "generalized_dice" } do
    H.backend_it(it, pending, name .. ": an empty target and prediction score as perfect, never NaN", function()
      local loss, g = segloss[name](x0, t0, { smooth = 0 })
      local want = name == "focal_tversky" and 1e-7 ^ 0.75 or 0
      assert.near(want, loss, 1e-12)
      assert.equal(0, g:max())
      assert.equal(0, g:min())
      local none = segloss[name](x0, t0, { smooth = 0, reduction = "none" })
      assert.is_true(all_finite(none))
    end)
  end

  it("dice's complement terms take their limits 1/2 (a full target and prediction)", function()
    local one = T.ones(1, 1, 5)
    local loss, g = segloss.dice(one, one, { complement = true, smooth = 0 })
    assert.equal(0, loss)
    assert.is_true(all_finite(g))
  end)

  H.backend_it(it, pending, "smooth = 0 with saturated negative logits: a finite gradient", function()
    for _, name in ipairs { "dice", "iou", "tversky" } do
      -- p ~ 1.8e-35: an almost empty prediction scores 1, with dL/dTP ~ 1e34
      -- where no t is 1 (so it acts nowhere)
      local loss, g = segloss[name](T.full({ 2, 1, 8 }, -80), t0, { activation = "sigmoid", smooth = 0 })
      assert.equal(1, loss)
      assert.is_true(all_finite(g), name)
      -- p = 0 exactly: the prediction is empty too, 0/0 scores as perfect
      loss, g = segloss[name](T.full({ 2, 1, 8 }, -1e30), t0, { activation = "sigmoid", smooth = 0 })
      assert.equal(0, loss)
      assert.is_true(all_finite(g), name)
    end
  end)

  it("smooth_nr > 0 with smooth_dr = 0 is an error (it divides by 0 on empty masks)", function()
    for _, name in ipairs { "dice", "iou", "tversky", "generalized_dice", "bce_dice" } do
      H.errors("segloss." .. name .. ": ", { "smooth_dr = 0 with smooth_nr = ", "divides by 0" },
        segloss[name], x0, t0, { smooth_dr = 0 })
    end
    H.errors("segloss.Dice: ", { "smooth_dr = 0 with smooth_nr = 1 divides by 0" }, segloss.Dice, { smooth_dr = 0 })
    -- sensitivity_specificity has no numerator smoothing
    assert.equal(0, (segloss.sensitivity_specificity(x0, t0, { smooth_dr = 0 })))
  end)
end)

describe("float32 overflow", function()
  local x, t = T.full({ 1, 1, 4 }, 1e-6), T.ones(1, 1, 4)

  it("options beyond the float32 range are errors", function()
    local cases = {
      { "bce", { pos_weight = 1e39 }, "option pos_weight must be a number >= 0 within the float32 range" },
      { "dice", { weight = { 1e39 } }, "option weight[1] must be a number >= 0 within the float32 range" },
      { "focal", { gamma = 1e39 }, "option gamma must be a number >= 0 within the float32 range" },
      { "bce_dice", { bce_weight = 1e300 }, "option bce_weight must be a number >= 0 within the float32 range" },
      { "bce", { eps = 1e-40 }, "option eps must be a number in (0, 1) no smaller than 1.1754944e-38" },
    }
    for _, c in ipairs(cases) do
      H.errors("segloss." .. c[1] .. ": ", { c[3] }, segloss[c[1]], x, t, c[2])
    end
    H.errors("segloss.Criterion: ", { "multiplies a number within the float32 range", "got 1e+300" },
      function() return 1e300 * segloss.Dice() end)
    H.errors("segloss.Criterion:set_weight: ", { "weight must be a number within the float32 range" },
      segloss.Dice().set_weight, segloss.Dice(), 1, -1e39)
  end)

  H.backend_it(it, pending, "a gradient that overflows is an error, and out keeps what it held", function()
    -- pos_weight t / p with p = 1e-6: 3e38 * 1e6 overflows
    local out = T.full({ 1, 1, 4 }, 7)
    H.errors("segloss.bce: ", { "the gradient at {1,1,1} overflows float32" },
      segloss.bce, x, t, { pos_weight = 3e38, out = out })
    assert.same({ 7, 7, 7, 7 }, out:totable()[1][1])
    H.errors("segloss.bce: ", { "overflows float32" }, segloss.bce, x, t, { pos_weight = 3e38 })
    -- well inside the range, the same call works
    local _, g = segloss.bce(x, t, { pos_weight = 3e30, out = out })
    assert.is_true(all_finite(g))
  end)

  H.backend_it(it, pending, "a reduction \"none\" value that overflows is an error", function()
    H.errors("segloss.bce: ", { "the value at {1,1,1} overflows float32" },
      segloss.bce, x, t, { pos_weight = 3e38, reduction = "none" })
  end)

  H.backend_it(it, pending, "a region coefficient that overflows is an error", function()
    -- dL/dp at t = 1 is about -2/B with B ~ 1 (one pixel of target), times 3e38
    local crit = 3e38 * segloss.Dice { activation = "sigmoid", smooth = 1e-6 }
    local xs, ts = T.full({ 1, 1, 4 }, -30), T.zeros(1, 1, 4)
    ts:set(1, 1, 2, 1)
    H.errors("segloss.Dice: ", { "the gradient of sample 1, class 0 overflows float32" }, crit, xs, ts)
  end)

  it("from_stats checks the statistics it is given", function()
    local crit = segloss.Dice { activation = "sigmoid", batch = true }
    local xs, ts = T.randn(2, 1, 6), H.bin({ 2, 1, 6 }, 0.5)
    local good = crit:stats(xs, ts)
    local function with(k, v)
      local s = good:clone()
      s:set(1, k, v)
      return s
    end
    H.errors("segloss.Dice: ", { "statistics[1][2] (SP) must be a finite number >= 0, got nan" },
      crit.from_stats, crit, with(2, 0 / 0), xs, ts)
    H.errors("segloss.Dice: ", { "statistics[1][4] (M') must be a finite number >= 0, got inf" },
      crit.from_stats, crit, with(4, math.huge), xs, ts)
    H.errors("segloss.Dice: ", { "statistics[1][3] (ST) must be a finite number >= 0, got -1" },
      crit.from_stats, crit, with(3, -1), xs, ts)
    H.errors("segloss.Dice: ", { "statistics[1] (class 0) are not sums over one set of elements" },
      crit.from_stats, crit, with(1, 1e6), xs, ts)
    H.errors("segloss.Dice: ", { "statistics must have shape {1,9}, got {9}" },
      crit.from_stats, crit, good:reshape(9), xs, ts)
    assert.is_true(all_finite(select(2, crit:from_stats(good, xs, ts))))
  end)
end)

describe("saturated logits", function()
  H.backend_it(it, pending, "bce is exactly 0 for logits of ±1e30 on the right side, and exact in the subnormals",
    function()
    local x = T.from({ 1e30, -1e30, 100, -100 }, { 1, 1, 4 })
    local t = T.from({ 1, 0, 1, 0 }, { 1, 1, 4 })
    local l2 = segloss.bce(x:narrow(3, 1, 2), t:narrow(3, 1, 2), { activation = "sigmoid" })
    assert.equal(0, l2)
    -- softplus(-100) = 3.72e-44 is a float32 subnormal: no 2^-126 floor
    local l4, g = segloss.bce(x, t, { activation = "sigmoid", reduction = "sum" })
    local sp = math.exp(-100) -- softplus(-100) = ln(1 + e^-100), to 1e-44 relative
    assert.is_true(math.abs(l4 - 2 * sp) <= 1.5e-45, string.format("%.6g vs %.6g", l4, 2 * sp))
    -- the gradient p - t: -3.72e-44 and 3.72e-44, not ±1.2e-38
    local gt = g:totable()[1][1]
    assert.equal(0, gt[1])
    assert.equal(0, gt[2])
    assert.is_true(math.abs(gt[3] + sp) <= 1.5e-45 and math.abs(gt[4] - sp) <= 1.5e-45,
      string.format("%.6g, %.6g", gt[3], gt[4]))
  end)
end)
