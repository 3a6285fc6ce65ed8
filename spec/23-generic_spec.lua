-- The generic part kind: a loss computed by its own code, its value and
-- gradient added into the combination's. segloss.core.debug_split(true)
-- routes every pixel part (bce, ce, focal, and those inside bce_dice and
-- dice_focal) through it — a run of its own whose gradient is added into
-- the fused pass's — so that each combination can be computed both ways.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local core = segloss.core

local function split(on, fn, ...)
  local was = core.debug_split(on)
  local r = table.pack(pcall(fn, ...))
  core.debug_split(was)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

-- float rounding of one extra add per element, and of a sum in a
-- different order: loss 1e-6 relative, gradient 1e-6 of its largest entry
local function close(l1, g1, l2, g2, what)
  assert(math.abs(l1 - l2) <= 1e-6 * math.abs(l2) + 1e-9, string.format("%s: loss %.9g vs %.9g", what, l1, l2))
  if g2 then
    local d = g1 - g2
    local scale = math.max(g2:max(), -g2:min(), 1e-30)
    local err = math.max(d:max(), -d:min())
    assert(err <= 1e-6 * scale, string.format("%s: gradients differ by %.3g (scale %.3g)", what, err, scale))
  end
end

local function data(act, N, C, n, lab)
  local x = T.randn({ N, C, n, n }) * 3
  if act == "none" then x = x:sigmoid() end
  local t
  if lab then t = H.labels({ N, C, n, n }) else t = H.bin({ N, C, n, n }, 0.1) end
  return x, t
end

-- name, parts {criterion class, options, weight}, activation, C, labels, mask
local cases = {
  { "bce", { { "BCE", {} } }, "sigmoid", 1 },
  { "bce pos_weight auto, mask, sum", { { "BCE", { pos_weight = "auto", reduction = "sum" } } }, "sigmoid", 2, false, true },
  { "bce, none", { { "BCE", { activation = "none" } } }, "none", 1 },
  { "ce, softmax, labels", { { "CE", {} } }, "softmax", 3, true },
  { "ce, class weights, mask", { { "CE", { weight = { 1, 2, 0.5 } } } }, "softmax", 3, false, true },
  { "focal", { { "Focal", { gamma = 2 } } }, "sigmoid", 1 },
  { "focal softmax alpha list", { { "Focal", { alpha = { 0.2, 0.3, 0.5 }, gamma = 1.5 } } }, "softmax", 3, true },
  { "bce_dice preset", { { "BCEDice", { bce_weight = 0.3, dice_weight = 2 } } }, "sigmoid", 1 },
  { "dice_focal preset", { { "DiceFocal", { lambda = 0.5 } } }, "sigmoid", 2 },
  { "bce + dice + tversky", { { "BCE", { pos_weight = 3 }, 0.3 }, { "Dice", { batch = true } },
    { "Tversky", { alpha = 0.7, beta = 0.3 }, 2 } }, "sigmoid", 1 },
  { "ce + dice + focal, labels", { { "CE", {}, 0.2 }, { "Dice", {} }, { "Focal", { gamma = 1 }, 0.7 } }, "softmax", 4, true },
  { "bce + focal (pixel parts only)", { { "BCE", {} }, { "Focal", {}, 2 } }, "sigmoid", 2 },
  { "bce + focal, none", { { "BCE", { activation = "none" } }, { "Focal", { activation = "none" }, 2 } }, "none", 1 },
}

local function npixel(parts)
  local n = 0
  for _, p in ipairs(parts) do
    local c = p[1]
    if c == "BCE" or c == "CE" or c == "Focal" or c == "BCEDice" or c == "DiceFocal" then n = n + 1 end
  end
  return n
end

local function build(parts, act)
  local crit
  for _, p in ipairs(parts) do
    local o = {}
    for k, v in pairs(p[2]) do o[k] = v end
    if o.activation == nil then o.activation = act end
    local c = segloss[p[1]](o) * (p[3] or 1)
    crit = crit and crit + c or c
  end
  return crit
end

describe("the generic part kind", function()
  for _, case in ipairs(cases) do
    local name, parts, act, C, lab, with_mask = table.unpack(case)
    H.backend_it(it, pending, name .. ": split equals fused, through a criterion", function()
      segloss.seed(11)
      local x, t = data(act, 2, C, 24, lab)
      local m = with_mask and H.bin({ 2, 1, 24, 24 }, 0.7) or nil
      local crit = build(parts, act)
      local l1, g1 = crit(x, t, m)
      g1 = g1:clone()
      assert.equal(0, core.generic_ran())
      local l2, g2 = split(true, crit, x, t, m)
      assert.equal(npixel(parts), core.generic_ran(), "the generic path ran once per pixel part")
      close(l2, g2, l1, g1, name)
      -- the values per part come from the generic parts as well
      crit(x, t, m)
      local a = crit:last()
      local b = split(true, function() crit(x, t, m); return crit:last() end)
      for i = 1, #a.parts do
        assert(math.abs(a.parts[i].value - b.parts[i].value) <= 1e-6 * math.abs(a.parts[i].value) + 1e-9,
          name .. ": part " .. i)
      end
      -- the value alone (no gradient) agrees too
      close(split(true, crit.value, crit, x, t, m), nil, crit:value(x, t, m), nil, name .. " (value)")
    end)
  end

  it("a single-part functional loss, and out =, go through it too", function()
    segloss.seed(3)
    local x, t = data("sigmoid", 2, 1, 20)
    local out = T.zeros(x:shape())
    local l1, g1 = segloss.bce_dice(x, t, { activation = "sigmoid" })
    local l2, g2 = split(true, segloss.bce_dice, x, t, { activation = "sigmoid", out = out })
    assert.equal(1, core.generic_ran())
    assert.is_true(rawequal(out, g2))
    close(l2, g2, l1, g1, "bce_dice out=")
  end)

  it("adds: a part whose gradient is zero leaves the fused gradient as it is", function()
    -- bce with weight 0 adds exactly 0 to every element of dice's gradient
    segloss.seed(5)
    local x, t = data("sigmoid", 2, 1, 16)
    local crit = segloss.Dice { activation = "sigmoid" } + 0 * segloss.BCE { activation = "sigmoid" }
    local _, g1 = crit(x, t)
    g1 = g1:clone()
    local _, g2 = split(true, crit, x, t)
    assert.equal(1, core.generic_ran())
    local d = g2 - g1
    assert.equal(0, d:max())
    assert.equal(0, d:min())
  end)

  it("gives the same bits for any thread count", function()
    segloss.seed(7)
    local x, t = data("softmax", 2, 3, 200, true)
    local sm = { activation = "softmax" }
    local crit = segloss.CE(sm) + segloss.Dice(sm) + 0.5 * segloss.Focal { activation = "softmax", alpha = { 0.2, 0.3, 0.5 } }
    local l1, g1 = split(true, function() return H.with_threads(1, function() return crit(x, t) end) end)
    g1 = g1:clone()
    local l2, g2 = split(true, function() return H.with_threads(2, function() return crit(x, t) end) end)
    assert.equal(2, core.threads_used())
    assert.equal(l1, l2)
    assert.equal(0, (g1 - g2):max())
    assert.equal(0, (g1 - g2):min())
  end)

  it("reports bad inputs as the fused path does, and writes nothing into out", function()
    local x, t = data("sigmoid", 1, 1, 8)
    x:set(1, 1, 3, 4, 0 / 0)
    local function msg(fn) local ok, e = pcall(fn); assert.is_false(ok); return e end
    local out = T.full(x:shape(), 7)
    local e1 = msg(function() return segloss.bce(x, t, { activation = "sigmoid", out = out }) end)
    local e2 = msg(function() return split(true, segloss.bce, x, t, { activation = "sigmoid", out = out }) end)
    assert.equal(e1, e2)
    assert.matches("input has nan at", e2)
    assert.equal(7, out:min())
    assert.equal(7, out:max())
    -- a gradient that overflows float32 inside a generic part: an error, out intact
    local x2, t2 = data("none", 1, 1, 8)
    x2:set(1, 1, 1, 1, 1e-37)
    t2:set(1, 1, 1, 1, 1)
    local big = { activation = "none", eps = 2e-38, pos_weight = 3e38, reduction = "sum", out = out }
    local e3 = msg(function() return split(true, segloss.bce, x2, t2, big) end)
    assert.matches("overflows float32", e3)
    assert.equal(7, out:min())
    assert.equal(7, out:max())
  end)

  it("refuses a debug switch that is not a boolean", function()
    H.errors("segloss.core.debug_split: ", { "on must be a boolean, got 1" }, core.debug_split, 1)
  end)
end)
