-- Identities between losses, compared directly (docs/losses.md; smp tests some).
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local bin = H.bin
local function labels(N, C, h, w) return H.labels({ N, C, h, w }) end
-- Lua 5.4 has no hyperbolic functions (for the dice terms here, in [0, 1])
local function cosh(v) return (math.exp(v) + math.exp(-v)) / 2 end
local function tanh(v) return (math.exp(v) - math.exp(-v)) / (math.exp(v) + math.exp(-v)) end

-- same value and gradient up to float rounding
local function close(l1, g1, l2, g2, what)
  assert(math.abs(l1 - l2) <= 1e-6 * math.abs(l2) + 1e-7, string.format("%s: %.9g vs %.9g", what, l1, l2))
  if g1 then
    local d = g1 - g2
    local scale = math.max(g2:max(), -g2:min())
    assert(math.max(d:max(), -d:min()) <= 1e-5 * scale, what .. ": gradients differ")
  end
end

describe("invariants", function()
  local x, t, xs, lab
  before_each(function()
    segloss.seed(31)
    x = T.randn(2, 3, 8, 9) * 2
    t = bin({ 2, 3, 8, 9 }, 0.3)
    xs = T.randn(2, 4, 8, 9) * 2
    lab = labels(2, 4, 8, 9)
  end)

  it("Tversky with alpha = beta = 1/2 and smooth s is Dice with smooth 2s", function()
    for _, s in ipairs { 0.5, 1e-5, 1 } do
      for _, act in ipairs { "sigmoid", "none" } do
        local xi = act == "none" and x:sigmoid() or x
        local l1, g1 = segloss.tversky(xi, t, { activation = act, alpha = 0.5, beta = 0.5, smooth = s })
        local l2, g2 = segloss.dice(xi, t, { activation = act, smooth = 2 * s })
        close(l1, g1, l2, g2, "tversky/dice " .. act .. " " .. s)
      end
      local l1, g1 = segloss.tversky(xs, lab,
        { activation = "softmax", alpha = 0.5, beta = 0.5, smooth = s, batch = true })
      local l2, g2 = segloss.dice(xs, lab, { activation = "softmax", smooth = 2 * s, batch = true })
      close(l1, g1, l2, g2, "tversky/dice softmax")
    end
  end)

  it("focal with gamma = 0 and alpha = false is BCE", function()
    for _, act in ipairs { "sigmoid", "none" } do
      local xi = act == "none" and x:sigmoid() or x
      for _, red in ipairs { "mean", "sum" } do
        local l1, g1 = segloss.focal(xi, t, { activation = act, gamma = 0, alpha = false, reduction = red })
        local l2, g2 = segloss.bce(xi, t, { activation = act, reduction = red })
        close(l1, g1, l2, g2, "focal/bce " .. act .. " " .. red)
      end
    end
    local l1, g1 = segloss.focal(xs, lab, { activation = "softmax", gamma = 0 })
    local l2, g2 = segloss.ce(xs, lab, { activation = "softmax" })
    close(l1, g1, l2, g2, "softmax focal/ce")
  end)

  it("soft_label changes nothing for 0/1 targets (every loss that takes it)", function()
    for _, d in ipairs(H.losses(function(d) return H.takes(d, "soft_label") end)) do
      local name = d.name
      local l1, g1 = segloss[name](x, t, { activation = "sigmoid", soft_label = true })
      local l2, g2 = segloss[name](x, t, { activation = "sigmoid" })
      close(l1, g1, l2, g2, name .. " soft_label")
      if H.allows(d, "softmax") then
        l1, g1 = segloss[name](xs, lab, { activation = "softmax", soft_label = true })
        l2, g2 = segloss[name](xs, lab, { activation = "softmax" })
        close(l1, g1, l2, g2, name .. " soft_label softmax")
      end
    end
  end)

  it("uniform class weights equal no weights (every loss that takes them)", function()
    local function classw(d) return H.takes(d, "weight") and d.options.weight.type == "list" end
    for _, d in ipairs(H.losses(function(d) return classw(d) and H.allows(d, "sigmoid") end)) do
      local name = d.name
      local l1, g1 = segloss[name](x, t, { activation = "sigmoid", weight = { 1, 1, 1 } })
      local l2, g2 = segloss[name](x, t, { activation = "sigmoid" })
      close(l1, g1, l2, g2, name .. " weights 1")
    end
    -- a constant weight leaves region means unchanged
    for _, d in ipairs(H.losses(function(d) return d.kind == "region" and classw(d) end)) do
      local name = d.name
      local l1, g1 = segloss[name](xs, lab, { activation = "softmax", weight = { 3, 3, 3, 3 } })
      local l2, g2 = segloss[name](xs, lab, { activation = "softmax" })
      close(l1, g1, l2, g2, name .. " weights 3")
    end
  end)

  it("a label map means its one-hot encoding (every loss that takes softmax)", function()
    local oh = lab:onehot(4)
    for _, d in ipairs(H.losses(function(d) return H.allows(d, "softmax") end)) do
      local name = d.name
      local l1, g1 = segloss[name](xs, lab, { activation = "softmax" })
      local l2, g2 = segloss[name](xs, oh, { activation = "softmax" })
      close(l1, g1, l2, g2, name .. " labels/one-hot")
    end
  end)

  it("presets are the weighted sums of their parts (every preset of the registry)", function()
    local byname = {}
    for _, d in ipairs(H.losses()) do byname[d.name] = d end
    for _, d in ipairs(H.losses(function(d) return d.kind == "preset" end)) do
      for _, act in ipairs { "sigmoid", "softmax" } do
        if H.allows(d, act) then
          local xi, ti = x, t
          if act == "softmax" then xi, ti = xs, lab end
          -- the preset with its part weights at 0.3, 0.4, ... (a weight two
          -- parts share, combo's alpha, at the first one's), and beta at 0.7
          -- where a bce part's terms follow it (combo)
          local o = { activation = act }
          for i, p in ipairs(d.parts) do
            if p.weight and not o[p.weight] then o[p.weight] = 0.2 + 0.1 * i end
            if p.beta then o.beta = 0.7 end
          end
          local l1, g1 = segloss[d.name](xi, ti, o)
          local sum, gsum = 0, nil
          for _, p in ipairs(d.parts) do
            -- the part alone, with the preset's defaults where they differ
            -- from its own (dice_focal's alpha = false)
            local po = { activation = act }
            for k, od in pairs(d.options) do
              local own = byname[p.name].options[k]
              local dv = act == "softmax" and od.default_softmax ~= nil and od.default_softmax or od.default
              local ov = own and (act == "softmax" and own.default_softmax ~= nil and own.default_softmax
                or own.default)
              if own and dv ~= nil and dv ~= ov then po[k] = dv end
            end
            local w = p.weight and o[p.weight] or 1
            if p.complement then w = 1 - w end
            if p.beta then -- beta t log p + (1 - beta)(1 - t) log(1 - p): (1 - beta) bce{pos_weight = beta/(1 - beta)}
              w = w * (1 - o.beta)
              po.pos_weight = o.beta / (1 - o.beta)
            end
            local l, g = segloss[p.name](xi, ti, po)
            sum = sum + w * l
            gsum = gsum and gsum + g * w or g * w
          end
          close(l1, g1, sum, gsum, d.name .. " " .. act)
        end
      end
    end
  end)

  it("log_cosh_dice is log cosh of each dice term, its gradient dice's times tanh, about dice^2/2 when small",
    function()
      for _, c in ipairs { { x, t, "sigmoid" }, { xs, lab, "softmax" } } do
        local xi, ti, act = c[1], c[2], c[3]
        local d = segloss.dice(xi, ti, { activation = act, reduction = "none" })
        local l = segloss.log_cosh_dice(xi, ti, { activation = act, reduction = "none" })
        for i = 1, d:numel() do
          local dv, lv = d:reshape(d:numel()):get(i), l:reshape(l:numel()):get(i)
          assert.is_true(math.abs(lv - math.log(cosh(dv))) <= 1e-6 * lv + 1e-9, act .. " entry " .. i)
        end
      end
      -- one sample and class: the gradient is tanh(L) times dice's
      local x1, t1 = x:reshape(2, 216):narrow(1, 1, 1):reshape(1, 1, 216), t:reshape(2, 216):narrow(1, 1, 1)
      t1 = t1:reshape(1, 1, 216)
      local ld, gd = segloss.dice(x1, t1, { activation = "sigmoid" })
      local l1, g1 = segloss.log_cosh_dice(x1, t1, { activation = "sigmoid" })
      close(l1, g1, math.log(cosh(ld)), gd * tanh(ld), "log_cosh_dice one (n, c)")
      -- near a perfect prediction: L^2/2 - L^4/12, relative precision kept
      local p = t1 * 0.998 + 0.001
      local lds = segloss.dice(p, t1, { smooth = 1e-3 })
      local lls = segloss.log_cosh_dice(p, t1, { smooth = 1e-3 })
      assert.is_true(lds > 0 and lds < 1e-2, "a small dice term: " .. lds)
      local want = lds * lds / 2 - lds ^ 4 / 12
      assert.is_true(math.abs(lls - want) <= 1e-6 * want, string.format("%.9g vs %.9g", lls, want))
    end)

  it("combo with alpha = 0 is dice, with alpha = 1 the weighted cross-entropy (beta 1 and 0 included)", function()
    local p = x:sigmoid()
    for _, act in ipairs { "sigmoid", "none" } do
      local xi = act == "none" and p or x
      for _, red in ipairs { "mean", "sum" } do
        local o = { activation = act, reduction = red }
        local l1, g1 = segloss.combo(xi, t, { activation = act, reduction = red, alpha = 0, beta = 0.9 })
        local l2, g2 = segloss.dice(xi, t, o)
        close(l1, g1, l2, g2, "combo alpha 0 " .. act .. " " .. red)
        for _, b in ipairs { 0, 0.25, 1 } do
          l1, g1 = segloss.combo(xi, t, { activation = act, reduction = red, alpha = 1, beta = b })
          -- beta t (-log p) + (1 - beta)(1 - t)(-log(1 - p)) as two bce calls on
          -- mirrored inputs: bce(p, t) with pos_weight w has w t (-log p) + (1 - t)(-log(1 - p))
          local la, ga = segloss.bce(xi, t, { activation = act, reduction = red, pos_weight = 1 })
          local lb, gb = segloss.bce(xi, t, { activation = act, reduction = red, pos_weight = 0 })
          -- lb: the negative term alone; la - lb: the positive term alone
          local l2b = b * (la - lb) + (1 - b) * lb
          local g2b = (ga - gb) * b + gb * (1 - b)
          close(l1, g1, l2b, g2b, "combo alpha 1 beta " .. b .. " " .. act .. " " .. red)
        end
      end
    end
  end)

  it("an empty target with an empty prediction scores about 0, never NaN (every region loss)", function()
    local z = T.full({ 1, 1, 8, 8 }, -30)
    local e = T.zeros(1, 1, 8, 8)
    for _, d in ipairs(H.losses(function(d) return d.kind == "region" end)) do
      local name = d.name
      local l, g = segloss[name](z, e, { activation = "sigmoid" })
      assert.is_true(l == l and math.abs(l) < 1e-4, name .. " " .. l)
      assert.is_true(g:max() == g:max())
    end
  end)

  it("a fully masked sample takes no part in the mean (every loss)", function()
    local m = T.ones(2, 1, 8, 9)
    for i = 1, 72 do m:reshape(144):set(72 + i, 0) end
    for _, d in ipairs(H.losses(function(d) return H.allows(d, "sigmoid") end)) do
      local name = d.name
      local l1, g1 = segloss[name](x, t, { activation = "sigmoid", mask = m })
      local x0, t0 = x:reshape(2, 216), t:reshape(2, 216)
      -- sample 1 alone
      local xa, ta = T.from({ x0:totable()[1] }, nil), T.from({ t0:totable()[1] }, nil)
      local l2 = segloss[name](xa:reshape(1, 3, 8, 9), ta:reshape(1, 3, 8, 9), { activation = "sigmoid" })
      assert.is_true(math.abs(l1 - l2) <= 1e-6 * math.abs(l2), name)
      local gz = g1:reshape(2, 216):totable()[2]
      for _, v in ipairs(gz) do assert.equal(0, v) end
    end
  end)
end)
