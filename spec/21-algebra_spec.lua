-- The loss algebra: sums and scalings of criteria, their formula, their
-- parts and weights, schedules; fused evaluation equals the sum of parts.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local bin = H.bin
local function labels(N, C, n) return H.labels({ N, C, n, n }) end
local S = segloss.schedule

-- golden-file tolerances: loss 1e-5 |ref| + 1e-6; gradient 1e-4 |ref| + 1e-5 max|ref|
local function close(l, g, lr, gr, what)
  assert(math.abs(l - lr) <= 1e-5 * math.abs(lr) + 1e-6, string.format("%s: %.9g vs %.9g", what, l, lr))
  local d = g - gr
  local scale = math.max(gr:max(), -gr:min())
  assert(math.max(d:max(), -d:min()) <= 1e-4 * scale + 1e-5 * scale, what .. ": gradients differ")
end

describe("algebra", function()
  it("builds sums and scalings, flattened, with the formula in tostring", function()
    local a = segloss.Dice { smooth = 1 }
    local b = segloss.Focal { gamma = 2 }
    assert.equal("1*Dice{smooth=1} + 0.5*Focal{gamma=2}", tostring(a + 0.5 * b))
    assert.equal("1*Dice{smooth=1} + 0.5*Focal{gamma=2}", tostring(a + b * 0.5))
    local c = 2 * (a + 0.5 * b) + segloss.Tversky { alpha = 0.7, beta = 0.3 }
    assert.equal("2*Dice{smooth=1} + 1*Focal{gamma=2} + 1*Tversky{alpha=0.7, beta=0.3}", tostring(c))
    local parts = c:parts()
    assert.equal(3, #parts)
    assert.same({ "Dice", 2 }, { parts[1].name, parts[1].weight })
    assert.same({ "Focal", 1 }, { parts[2].name, parts[2].weight })
    assert.same({ gamma = 2 }, parts[2].options)
    -- the operands are unchanged
    assert.equal("1*Dice{smooth=1}", tostring(a))
    c:set_weight(2, 0.25)
    assert.equal(0.25, c:parts()[2].weight)
    assert.equal("2*Dice{smooth=1} + 0.25*Focal{gamma=2} + 1*Tversky{alpha=0.7, beta=0.3}", tostring(c))
    assert.equal('1*BCE{weight={1,2}} + 1*IoU{activation="sigmoid", empty="complement"}',
      tostring(segloss.BCE { weight = { 1, 2 } } + segloss.IoU { activation = "sigmoid", empty = "complement" }))
  end)

  it("refuses what is not a criterion, a number or a schedule", function()
    local a = segloss.Dice()
    H.errors("segloss.Criterion: ", { "+ adds two criteria, got 1" }, function() return a + 1 end)
    H.errors("segloss.Criterion: ", { "multiplies a number within the float32 range (|k| <= 3.4028235e+38) or a schedule, got string \"2\"" }, function() return a * "2" end)
    H.errors("segloss.Criterion: ", { "multiplies a number within the float32 range (|k| <= 3.4028235e+38) or a schedule, got nan" }, function() return a * (0 / 0) end)
    H.errors("segloss.Criterion:set_weight: ", { "part must be an integer in 1..1, got 2" }, a.set_weight, a, 2, 1)
    H.errors("segloss.Criterion: ", { "at most 7 parts" }, function()
      local c = a
      for _ = 1, 7 do c = c + segloss.Dice() end
      return c
    end)
  end)

  describe("fused evaluation equals the sum of separately computed parts", function()
    local combos = {
      { "bce+dice, sigmoid", "sigmoid", { { "BCE", "bce", {}, 1 }, { "Dice", "dice", {}, 1 } } },
      { "dice+focal, sigmoid", "sigmoid", { { "Dice", "dice", {}, 1 }, { "Focal", "focal", { gamma = 2 }, 0.5 } } },
      { "bce+dice+tversky", "sigmoid", { { "BCE", "bce", { pos_weight = 3 }, 0.3 },
        { "Dice", "dice", { batch = true }, 1 }, { "Tversky", "tversky", { alpha = 0.7, beta = 0.3 }, 2 } } },
      { "five parts, softmax, labels", "softmax", { { "CE", "ce", {}, 0.2 }, { "Dice", "dice", {}, 1 },
        { "IoU", "iou", { include_background = false }, 0.5 }, { "Focal", "focal", { gamma = 1 }, 0.7 },
        { "GeneralizedDice", "generalized_dice", {}, 1.5 } } },
      { "region parts with full statistics", "sigmoid", { { "Dice", "dice", { squared = true }, 1 },
        { "SensitivitySpecificity", "sensitivity_specificity", {}, 1 },
        { "Tversky", "tversky", { soft_label = true }, 1 } } },
      { "presets inside a sum", "sigmoid", { { "BCEDice", "bce_dice", { dice_weight = 2 }, 1 },
        { "DiceFocal", "dice_focal", { lambda = 0.5 }, 0.5 } } },
      { "weights and masks", "sigmoid", { { "BCE", "bce", { weight = { 1, 2 } }, 1 },
        { "Dice", "dice", { weight = { 0.5, 1 } }, 1 } }, mask = true },
    }
    for _, cb in ipairs(combos) do
      it(cb[1], function()
        segloss.seed(#cb[1])
        local act = cb[2]
        local C = act == "softmax" and 3 or 2
        local x = T.randn(2, C, 10, 10)
        local t = act == "softmax" and labels(2, C, 10) or bin({ 2, C, 10, 10 }, 0.3)
        local m = cb.mask and bin({ 2, 1, 10, 10 }, 0.8) or nil
        local crit
        local lsum, gsum = 0, T.zeros(2, C, 10, 10)
        for _, p in ipairs(cb[3]) do
          local o = { activation = act }
          for k, v in pairs(p[3]) do o[k] = v end
          local part = p[4] * segloss[p[1]](o)
          crit = crit and crit + part or part
          o.mask = m
          local l, g = segloss[p[2]](T.from(x:totable()), t, o)
          lsum = lsum + p[4] * l
          gsum = gsum + g * p[4]
        end
        local l, g = crit(x, t, m)
        close(l, g, lsum, gsum, cb[1])
      end)
    end
  end)

  describe("schedules", function()
    it("constant, linear, cosine and step", function()
      assert.equal(0.3, S.constant(0.3):value(17))
      local lin = S.linear(1, 0, 10)
      assert.same({ 1, 0.5, 0, 0 }, { lin:value(0), lin:value(5), lin:value(10), lin:value(20) })
      local cos = S.cosine(1, 0, 10)
      assert.near(0.5, cos:value(5), 1e-12)
      assert.near(1 - (1 - math.cos(math.pi * 0.2)) / 2, cos:value(2), 1e-12)
      assert.equal(0, cos:value(11))
      local st = S.step({ 1, 0.5, 0.1 }, { 10, 20 })
      assert.same({ 1, 1, 0.5, 0.5, 0.1 }, { st:value(0), st:value(9), st:value(10), st:value(19), st:value(25) })
      assert.equal("linear(1, 0, 10)", tostring(lin))
      assert.equal("step({1,0.5,0.1}, {10,20})", tostring(st))
      H.errors("segloss.schedule.linear: ", { "steps must be an integer >= 1 (at most 2^63 - 1), got 0" }, S.linear, 1, 0, 0)
      H.errors("segloss.schedule.step: ", { "milestones must increase" }, S.step, { 1, 2, 3 }, { 5, 5 })
    end)

    it("drive the weights of parts through crit:step()", function()
      local crit = S.linear(1, 0, 4) * segloss.BCE { activation = "sigmoid" }
        + S.linear(0, 1, 4) * segloss.Dice { activation = "sigmoid" }
      assert.equal('linear(1, 0, 4)*BCE{activation="sigmoid"} + linear(0, 1, 4)*Dice{activation="sigmoid"}',
        tostring(crit))
      segloss.seed(9)
      local x, t = T.randn(1, 1, 8, 8), bin({ 1, 1, 8, 8 }, 0.2)
      local lb = segloss.bce(x, t, { activation = "sigmoid" })
      local ld = segloss.dice(x, t, { activation = "sigmoid" })
      for k = 0, 5 do
        local w = math.min(k, 4) / 4
        local l = crit:forward(x, t)
        assert.near((1 - w) * lb + w * ld, l, 1e-6)
        assert.equal(k, crit:steps())
        crit:step()
      end
      crit:set_weight(1, 3)
      assert.equal(3, crit:parts()[1].weight)
      H.errors("segloss.Criterion: ", { "one schedule" }, function() return S.constant(1) * crit end)
    end)
  end)

  it("last() gives each part's value and region parts' per-class values", function()
    segloss.seed(5)
    local x, t = T.randn(2, 3, 9, 9), labels(2, 3, 9)
    local crit = segloss.Dice { activation = "softmax" } + 0.5 * segloss.CE { activation = "softmax" }
    assert.is_nil(crit:last())
    local l = crit:forward(x, t)
    local last = crit:last()
    assert.equal(l, last.total)
    local ld = segloss.dice(x, t, { activation = "softmax" })
    local lc = segloss.ce(x, t, { activation = "softmax" })
    assert.near(ld, last.parts[1].value, 1e-12)
    assert.near(lc, last.parts[2].value, 1e-12) -- the part's own loss
    assert.near(0.5 * lc, last.parts[2].weighted, 1e-12)
    assert.equal(0.5, last.parts[2].weight)
    assert.near(last.total, last.parts[1].weighted + last.parts[2].weighted, 1e-12)
    assert.equal("Dice", last.parts[1].name)
    assert.is_nil(last.parts[2].per_class)
    local none = segloss.dice(x, t, { activation = "softmax", reduction = "none" }):totable()
    for c = 1, 3 do
      assert.near((none[1][c] + none[2][c]) / 2, last.parts[1].per_class[c], 1e-6)
    end
  end)

  it("statistics are additive: two halves, summed, give the whole batch's batch loss", function()
    segloss.seed(12)
    local x, t = T.randn(4, 3, 10, 10), labels(4, 3, 10)
    local xa, xb = T.from({ x:totable()[1], x:totable()[2] }), T.from({ x:totable()[3], x:totable()[4] })
    local ta, tb = T.from({ t:totable()[1], t:totable()[2] }), T.from({ t:totable()[3], t:totable()[4] })
    local crit = segloss.Dice { activation = "softmax", batch = true }
      + 0.5 * segloss.Tversky { activation = "softmax", batch = true }
    local stats = crit:stats(xa, ta) + crit:stats(xb, tb) -- an all-reduce over two workers
    assert.same({ 3, 9 }, stats:shape())
    local lw, gw = crit(x, t)
    gw = gw:clone()
    local la, ga = crit:from_stats(stats, xa, ta)
    ga = ga:clone()
    local lb, gb = crit:from_stats(stats, xb, tb)
    assert.near(lw, la, 1e-6 * math.abs(lw))
    assert.near(lw, lb, 1e-6 * math.abs(lw))
    -- each worker's gradient is the whole batch's gradient on its samples
    local whole = gw:reshape(2, 600):totable()
    local ha, hb = ga:reshape(600):totable(), gb:reshape(600):totable()
    local scale = math.max(gw:max(), -gw:min())
    for i = 1, 600 do
      assert.is_true(math.abs(whole[1][i] - ha[i]) <= 1e-5 * scale)
      assert.is_true(math.abs(whole[2][i] - hb[i]) <= 1e-5 * scale)
    end
    H.errors("segloss.Criterion: ", { "statistics must have shape {3,9}" }, crit.from_stats, crit, T.zeros(2, 9), xa, ta)
  end)
end)
