-- Criterion objects: the Torch7 protocol, the functional form's results,
-- a reused gradient buffer and no allocation per step.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local bin = H.bin
local function labels(N, C, n) return H.labels({ N, C, n, n }) end

local function same(g1, g2)
  local d = g1 - g2
  return d:max() == 0 and d:min() == 0
end

describe("criteria", function()
  local x, t, xs, lab
  before_each(function()
    segloss.seed(41)
    x = T.randn(2, 1, 12, 12)
    t = bin({ 2, 1, 12, 12 }, 0.2)
    xs = T.randn(2, 3, 12, 12)
    lab = labels(2, 3, 12)
  end)

  -- options per class (option families); a class the table lacks runs with
  -- its defaults. Every class of the registry is checked.
  local OPTS = {
    BCE = { activation = "sigmoid", pos_weight = 2 },
    CE = { activation = "softmax" },
    Focal = { activation = "sigmoid", gamma = 1.5 },
    Dice = { activation = "sigmoid", smooth = 0.5 },
    IoU = { activation = "softmax" },
    Tversky = { activation = "sigmoid", alpha = 0.6, beta = 0.4 },
    FocalTversky = { activation = "softmax", gamma = 2 },
    SensitivitySpecificity = { activation = "sigmoid", lambda = 0.3 },
    GeneralizedDice = { activation = "softmax", w_type = "simple" },
    BCEDice = { activation = "sigmoid", bce_weight = 0.1 },
    DiceFocal = { activation = "softmax", lambda = 0.5 },
  }
  for _, d in ipairs(H.losses()) do
    local opts = OPTS[d.class] or { activation = H.act_for(d) }
    it(d.class .. " gives the functional " .. d.name .. "'s loss and gradient, bit for bit", function()
      local xi, ti = x, t
      if opts.activation == "softmax" then xi, ti = xs, lab end
      local crit = segloss[d.class](opts)
      local l, g = crit(xi, ti)
      local l2, g2 = segloss[d.name](xi, ti, opts)
      assert.equal(l2, l)
      assert.is_true(same(g, g2))
      assert.equal(l, crit:forward(xi, ti))
      assert.is_true(same(g2, crit:backward(xi, ti)))
      -- the value alone takes other passes (no gradient): the same up to rounding
      assert.near(l, crit:value(xi, ti), 1e-6 * math.abs(l))
    end)
  end

  it("follows Torch7's protocol and reuses its two gradient buffers", function()
    local crit = segloss.Dice { activation = "sigmoid" }
    local l = crit:forward(x, t)
    assert.equal(l, crit.output)
    local g = crit:backward(x, t)
    assert.equal(crit.gradInput, g)
    local x2 = T.randn(2, 1, 12, 12)
    local g2 = crit:backward(x2, t) -- another input: recomputed, into the other buffer
    assert.are_not.equal(g, g2)
    assert.equal(crit.gradInput, g2)
    local _, g3 = segloss.dice(x2, t, { activation = "sigmoid" })
    assert.is_true(same(g2, g3))
    assert.equal(g, crit:backward(x, t)) -- and back: two buffers, no new ones
    assert.equal(g2, crit:backward(x2, t))
    local _, g4 = crit(T.randn(1, 1, 5, 5), T.zeros(1, 1, 5, 5)) -- new shape: new buffer
    assert.are_not.equal(g, g4)
    assert.same({ 1, 1, 5, 5 }, g4:shape())
  end)

  it("with reduction \"none\" gives the values and no gradient, as the functional form", function()
    local crit = segloss.Dice { activation = "sigmoid", reduction = "none" }
    local v, g = crit(x, t)
    local v2 = segloss.dice(x, t, { activation = "sigmoid", reduction = "none" })
    assert.is_nil(g)
    assert.is_true(same(v, v2))
    assert.is_true(same(v2, crit:forward(x, t)))
    assert.is_nil(crit:backward(x, t))
    assert.is_true(same(v2, crit.output))
  end)

  it("takes a mask per call", function()
    local m = bin({ 2, 1, 12, 12 }, 0.7)
    local crit = segloss.BCEDice { activation = "sigmoid" }
    local l, g = crit(x, t, m)
    local l2, g2 = segloss.bce_dice(x, t, { activation = "sigmoid", mask = m })
    assert.equal(l2, l)
    assert.is_true(same(g, g2))
  end)

  it("allocates nothing per step once shapes are stable", function()
    local crit = segloss.Dice { activation = "sigmoid" } + 0.5 * segloss.Focal { activation = "sigmoid" }
      + 2 * segloss.Tversky { activation = "sigmoid" }
    for _ = 1, 3 do crit(x, t); crit:step() end
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    for _ = 1, 200 do
      crit:forward(x, t)
      crit:backward(x, t)
      crit:step()
    end
    local after = collectgarbage("count")
    collectgarbage("restart")
    assert.is_true(after - before < 0.5, string.format("grew by %.2f KiB", after - before))
  end)

  it("names its class in errors, at construction and at call", function()
    H.errors("segloss.Dice: ", { 'unknown option "smoth" (did you mean "smooth"?)' },
      segloss.Dice, { smoth = 1 })
    H.errors("segloss.Focal: ",
      { "option gamma must be a number >= 0 within the float32 range (<= 3.4028235e+38), got -1" },
      segloss.Focal, { gamma = -1 })
    H.errors("segloss.IoU: ", { "option out is managed by the criterion" },
      segloss.IoU, { out = T.zeros(1) })
    H.errors("segloss.Dice: ", { "opts must be a table, got number" }, segloss.Dice, 3)
    local crit = segloss.Dice { activation = "sigmoid" }
    H.errors("segloss.Dice: ", { "target shape {2,1,12,11} does not match input {2,1,12,12}" },
      crit.forward, crit, x, T.zeros(2, 1, 12, 11))
    H.errors("segloss.Dice: ", { "input must be a segloss.Tensor, got a table" }, crit.forward, crit, {}, t)
    H.errors("segloss.Criterion: ", { "the parts of a combination must share the activation" },
      function() return (segloss.Dice { activation = "sigmoid" } + segloss.Dice())(x, t) end)
  end)
end)
