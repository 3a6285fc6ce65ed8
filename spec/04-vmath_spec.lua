-- Vector math: accuracy against double libm on >= 1e7 points per function
-- and backend, and every backend against the scalar reference.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

-- max error in ulps allowed, per function (the issue's bounds); pow's error
-- grows with the exponent g (g times the rounding of ln b), so its bound is
-- 2 + g/2 ulp: 3 ulp at the focal loss' usual g = 2
local BOUND = { exp = 2, log = 2, log1p = 2, sigmoid = 4, softplus = 4, pow = 4,
  -- the sigmoid as the loss kernels compute it: p, 1 - p (v_sig), and with
  -- softplus(-x) = -ln p from the same exponential (v_sig_log), which
  -- computes every BCE value of the fast passes
  sig_p = 4, sig_q = 4, sig_log_p = 4, sig_log_q = 4, sig_log_spn = 4 }
local function pow_bound(g) return 2 + g / 2 end
local POINTS = 10000000

describe("vector math accuracy (1e7 points + specials vs double libm)", function()
  for _, fn in ipairs { "exp", "log", "log1p", "sigmoid", "softplus", "sig_p", "sig_q", "sig_log_p",
    "sig_log_q", "sig_log_spn" } do
    H.backend_it(it, pending, fn .. " within " .. BOUND[fn] .. " ulp", function()
      local r = segloss.core.vmath_accuracy(fn, POINTS)
      assert.is_true(r.points >= POINTS)
      assert.equal(0, r.bad, string.format("wrong class at x=%a: %a", r.bad_x, r.bad_y))
      assert.is_true(r.max_ulp <= BOUND[fn], string.format("%.3f ulp at x=%a (got %a, want %.17g)",
        r.max_ulp, r.worst_x, r.worst_y, r.worst_ref))
    end)
  end
  for _, g in ipairs { 0.5, 2, 2.5, 7 } do
    H.backend_it(it, pending, "pow with exponent " .. g .. " within " .. pow_bound(g) .. " ulp on [0, 1]", function()
      local r = segloss.core.vmath_accuracy("pow", POINTS // 4, g)
      assert.equal(0, r.bad)
      assert.is_true(r.max_ulp <= pow_bound(g), string.format("%.3f ulp at x=%a", r.max_ulp, r.worst_x))
    end)
  end

  it("the checker measures real errors (a sanity check of the measure itself)", function()
    -- glibc's expf is correctly rounded on these points: errors in (0, 0.5]
    local prev = segloss.backend()
    segloss.set_backend("scalar")
    local r = segloss.core.vmath_accuracy("exp", 1000)
    segloss.set_backend(prev)
    assert.is_true(r.max_ulp <= 0.51)
    assert.is_true(r.max_ulp > 0.4)
  end)
end)

-- special values every backend must get exactly right
local specials = {
  exp = { { 0, 1 }, { -0.0, 1 }, { 1 / 0, 1 / 0 }, { -1 / 0, 0 }, { 89, 1 / 0 }, { -104, 0 } },
  log = { { 1, 0 }, { 0, -1 / 0 }, { -0.0, -1 / 0 }, { -1, 0 / 0 }, { 1 / 0, 1 / 0 }, { -1 / 0, 0 / 0 } },
  log1p = { { 0, 0 }, { -1, -1 / 0 }, { -2, 0 / 0 }, { 1 / 0, 1 / 0 }, { 2 ^ -149, 2 ^ -149 } },
  sigmoid = { { 0, 0.5 }, { 1 / 0, 1 }, { -1 / 0, 0 }, { 200, 1 }, { -200, 0 } },
  softplus = { { 1 / 0, 1 / 0 }, { -1 / 0, 0 }, { 100, 100 }, { -200, 0 } },
}

describe("vector math special values", function()
  for fn, cases in pairs(specials) do
    H.backend_it(it, pending, fn, function()
      local x, want = {}, {}
      for i, c in ipairs(cases) do x[i], want[i] = c[1], c[2] end
      x[#x + 1] = 0 / 0
      want[#want + 1] = 0 / 0
      local got = T.from(x)[fn](T.from(x)):totable()
      for i = 1, #want do
        assert.equal(0, H.ulps(want[i], got[i]), string.format("%s(%s) = %s", fn, x[i], got[i]))
      end
    end)
  end
end)

-- Every backend against scalar, on lengths around 1, 2 and 3 vector tiles
-- (and a long one), with the sum of the two bounds as the tolerance.
describe("backends against scalar", function()
  local lengths = {}
  for n = 1, 26 do lengths[#lengths + 1] = n end
  lengths[#lengths + 1] = 100003

  local function inputs(fn, n)
    segloss.seed(n)
    local u = T.rand(n)
    if fn == "log" then return (u * 40 - 20):exp() end
    if fn == "log1p" then return u * 20 - 0.999 end
    if fn == "pow" then return u end
    return u * 60 - 30
  end

  for _, fn in ipairs { "exp", "log", "log1p", "sigmoid", "softplus", "pow" } do
    H.simd_it(it, pending, fn, function(b)
      for _, n in ipairs(lengths) do
        local x = inputs(fn, n)
        local got = fn == "pow" and x:pow(2.5) or x[fn](x)
        segloss.set_backend("scalar")
        local ref = fn == "pow" and x:pow(2.5) or x[fn](x)
        segloss.set_backend(b)
        local g, r = got:totable(), ref:totable()
        for i = 1, n do
          local d = H.ulps(g[i], r[i])
          if d > 2 * BOUND[fn] then
            error(string.format("%s n=%d i=%d x=%a: %a vs scalar %a (%d ulp)", fn, n, i,
              x:get(i), g[i], r[i], d))
          end
        end
      end
    end)
  end

  H.simd_it(it, pending, "softmax over channels", function(b)
    for _, C in ipairs { 1, 2, 3, 5 } do
      for _, M in ipairs { 1, 3, 4, 7, 8, 9, 17, 1000 } do
        segloss.seed(C * 1000 + M)
        local x = T.randn(2, C, M) * 10
        local got = x:softmax():totable()
        segloss.set_backend("scalar")
        local ref = x:softmax():totable()
        segloss.set_backend(b)
        for n = 1, 2 do
          for c = 1, C do
            for s = 1, M do
              local d = H.ulps(got[n][c][s], ref[n][c][s])
              assert.is_true(d <= 8, string.format("C=%d M=%d (%d,%d,%d): %d ulp", C, M, n, c, s, d))
            end
          end
        end
      end
    end
  end)

  H.simd_it(it, pending, "sum, min and max", function(b)
    for _, n in ipairs(lengths) do
      segloss.seed(n)
      local x = T.randn(n)
      local s, lo, hi = x:sum(), x:min(), x:max()
      segloss.set_backend("scalar")
      local s0, lo0, hi0 = x:sum(), x:min(), x:max()
      segloss.set_backend(b)
      assert.near(s0, s, 1e-12 * n)
      assert.equal(lo0, lo)
      assert.equal(hi0, hi)
    end
  end)
end)
