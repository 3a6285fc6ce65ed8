-- The options of issue 12 item 9, for every loss where they apply:
--   ignore_index: for EVERY loss of the registry (a new one included, by its
--   descriptor alone), the same value and gradient, bit for bit, as the
--   explicit mask with the cleaned target, and a gradient exactly 0 where the
--   target is ignored; functional form and criterion alike;
--   label_smoothing (bce, ce, focal and the presets that hold them): 0 is the
--   call without the option, bit for bit; > 0 matches the golden files;
--   generalized_dice's soft_label; and the errors of the options.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local same = H.same_bits

local function copy(o, extra)
  local r = {}
  for k, v in pairs(o) do r[k] = v end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- the losses that sum per pixel over the channels: softmax, ce (in a part),
-- or a loss the registry marks so (pixel_mask: topk_ce, unified_focal)
local function per_pixel(d, act)
  if act == "softmax" or d.name == "ce" or d.pixel_mask then return true end
  for _, p in ipairs(d.parts or {}) do
    if p.name == "ce" then return true end
  end
  return false
end

-- C for loss d: 3 for softmax (2 otherwise), or 1 for a binary loss (the
-- descriptor does not say: a call with C = 2 does)
local function channels(d, act)
  if act == "softmax" then return 3 end
  local x = act == "none" and T.rand(1, 2, 4) or T.randn(1, 2, 4)
  local ok, err = pcall(segloss[d.name], x, H.bin({ 1, 2, 4 }, 0.5), { activation = act })
  if not ok and tostring(err):find("one channel", 1, true) then return 1 end
  return 2
end

local function inputs(act, shape)
  if act == "none" then return T.rand(shape) * 0.9 + 0.05 end
  return T.randn(shape) * 1.5
end

-- A target with about a quarter of its pixels (kind "pixels") or elements
-- ("elements") set to v; returns it, the cleaned target (0 there) and the
-- 0/1 map of what is kept, in the shape given by keep_shape.
local function plant(t, v, kind, keep_shape)
  local tt, tc = t:clone(), t:clone()
  local keep = T.ones(keep_shape)
  local shape = t:shape()
  local N, Ct, per = shape[1], shape[2], t:numel() // (shape[1] * shape[2])
  local Ck = keep_shape[2]
  local ft, fc, fk = tt:reshape(tt:numel()), tc:reshape(tc:numel()), keep:reshape(keep:numel())
  local r = T.rand(N, Ct, per):reshape(N * Ct * per)
  for n = 0, N - 1 do
    for s = 1, per do
      for c = 0, Ct - 1 do
        local pick = kind == "pixels" and r:get(n * Ct * per + s) < 0.25 or
          kind == "elements" and r:get((n * Ct + c) * per + s) < 0.25
        if s == 1 then pick = false end -- no sample ignored whole
        if pick then
          ft:set((n * Ct + c) * per + s, v)
          fc:set((n * Ct + c) * per + s, 0)
          if Ck == Ct then
            fk:set((n * Ck + c) * per + s, 0)
          else -- a label map (one channel) or a per-pixel mask of a dense target
            for k = 0, Ck - 1 do fk:set((n * Ck + k) * per + s, 0) end
          end
        end
      end
    end
  end
  return tt, tc, keep
end

-- every element of g where keep (broadcast over channels) is 0 is exactly 0
local function zero_where_ignored(g, keep)
  local gs, ks = g:shape(), keep:shape()
  local N, C, per = gs[1], gs[2], g:numel() // (gs[1] * gs[2])
  local fg, fk = g:reshape(g:numel()):totable(), keep:reshape(keep:numel()):totable()
  local zeros = 0
  for n = 0, N - 1 do
    for c = 0, C - 1 do
      for s = 1, per do
        local k = fk[(n * ks[2] + (ks[2] == C and c or 0)) * per + s]
        if k == 0 then
          if fg[(n * C + c) * per + s] ~= 0 then return false, 0 end
          zeros = zeros + 1
        end
      end
    end
  end
  return true, zeros
end

describe("ignore_index, every loss of the registry", function()
  for _, d in ipairs(H.losses()) do
    for _, act in ipairs(d.activations) do
      local variants = {}
      -- a label map: pixels whose label is 255 (outside 0..C-1)
      variants[#variants + 1] = { "label map, ignore_index 255", labels = true, value = 255, kind = "pixels" }
      -- a target of x's shape: -1 (outside [0, 1]); whole pixels for the
      -- per-pixel losses, single elements for the others
      variants[#variants + 1] = { "target of x's shape, ignore_index -1", value = -1,
        kind = per_pixel(d, act) and "pixels" or "elements" }
      for vi, v in ipairs(variants) do
        for _, extra in ipairs { {}, { mask = true }, { reduction = "none" }, { reduction = "sum", mask = true } } do
          local red = extra.reduction or "mean"
          local name = string.format("%s %s, %s%s, reduction %s: the same bits as the explicit mask", d.name, act,
            v[1], extra.mask and ", with a mask" or "", red)
          it(name, function()
            if red == "none" and (d.kind == "preset" or not d.none_shape) then return end
            local C = channels(d, act)
            if v.labels and C < 2 then return end -- a label map needs C >= 2
            segloss.seed(2800 + vi)
            local shape = { 2, C, 5, 7 }
            local x = inputs(act, shape)
            local t = v.labels and H.labels(shape) or H.bin(shape, 0.4)
            local pix = v.labels or v.kind == "pixels" or C == 1
            local keep_shape = { 2, pix and 1 or C, 5, 7 }
            local tt, tc, keep = plant(t, v.value, v.kind, keep_shape)
            local o = { activation = act, reduction = red }
            local m = keep
            if extra.mask then
              local um = H.bin(keep_shape, 0.8)
              o.mask = um
              m = um * keep
            end
            local l1, g1 = segloss[d.name](x, tt, copy(o, { ignore_index = v.value }))
            local l2, g2 = segloss[d.name](x, tc, copy(o, { mask = m }))
            assert.is_true(same(l1, l2), "value differs from the explicit mask's")
            assert.is_true(same(g1, g2), "gradient differs from the explicit mask's")
            if g1 then
              local ok, zeros = zero_where_ignored(g1, keep)
              assert.is_true(ok, "a nonzero gradient where the target is ignored")
              assert.is_true(zeros > 0)
            end
            -- the criterion takes the same path
            if red ~= "none" then
              local crit = segloss[d.class](copy(o, { ignore_index = v.value, mask = o.mask }))
              local l3, g3 = crit(x, tt)
              assert.is_true(same(l1, l3) and same(g1, g3), "the criterion differs from the function")
            end
          end)
        end
      end
    end
  end
end)

describe("ignore_index", function()
  local x, lab
  before_each(function()
    segloss.seed(281)
    x = T.randn(2, 3, 4, 6) * 2
    lab = H.labels({ 2, 3, 4, 6 })
  end)

  it("is free when not given: no option, the same run", function()
    local l1, g1 = segloss.dice(x, lab, { activation = "softmax" })
    local l2, g2 = segloss.dice(x, lab, { activation = "softmax", ignore_index = 255 })
    assert.is_true(same(l1, l2) and same(g1, g2)) -- no label is 255: nothing ignored
  end)

  it("a real class: ignoring class 0 is the mask of its pixels", function()
    local keep = lab:clone()
    local f = keep:reshape(keep:numel())
    for i = 1, f:numel() do f:set(i, f:get(i) == 0 and 0 or 1) end
    local l1, g1 = segloss.ce(x, lab, { activation = "softmax", ignore_index = 0 })
    local l2, g2 = segloss.ce(x, lab, { activation = "softmax", mask = keep })
    assert.is_true(same(l1, l2) and same(g1, g2))
  end)

  it("leaves the caller's target and mask as they are", function()
    local t = lab:clone()
    t:set(1, 1, 1, 1, 255)
    local m = H.bin({ 2, 1, 4, 6 }, 0.7)
    local t0, m0 = t:clone(), m:clone()
    segloss.dice(x, t, { activation = "softmax", ignore_index = 255, mask = m })
    assert.is_true(same(t, t0) and same(m, m0))
  end)

  it("matches PyTorch's cross_entropy(ignore_index = -100) mean: over the pixels not ignored", function()
    local t = lab:clone()
    t:set(1, 1, 2, 3, -100)
    t:set(2, 1, 4, 6, -100)
    local l1 = segloss.ce(x, t, { activation = "softmax", ignore_index = -100 })
    -- by hand: -log softmax at the label, over the 46 pixels that count
    local xs, ts, sum = x:totable(), t:totable(), 0
    for n = 1, 2 do
      for i = 1, 4 do
        for j = 1, 6 do
          local y = ts[n][1][i][j]
          if y ~= -100 then
            local mx, se = -math.huge, 0
            for c = 1, 3 do mx = math.max(mx, xs[n][c][i][j]) end
            for c = 1, 3 do se = se + math.exp(xs[n][c][i][j] - mx) end
            sum = sum - (xs[n][y + 1][i][j] - mx - math.log(se))
          end
        end
      end
    end
    assert.is_true(math.abs(l1 - sum / 46) <= 1e-6 * math.abs(l1))
  end)

  it("pos_weight \"auto\" counts the elements not ignored", function()
    segloss.seed(282)
    local xs = T.randn(2, 1, 8, 8)
    local t = H.bin({ 2, 1, 8, 8 }, 0.3)
    local tt, tc, keep = plant(t, 9, "elements", { 2, 1, 8, 8 })
    local l1, g1 = segloss.bce(xs, tt, { activation = "sigmoid", pos_weight = "auto", ignore_index = 9 })
    local l2, g2 = segloss.bce(xs, tc, { activation = "sigmoid", pos_weight = "auto", mask = keep })
    assert.is_true(same(l1, l2) and same(g1, g2))
  end)

  it("gives 1, 2 and 3 threads the same bits, with more than one thread running", function()
    segloss.seed(283)
    local xb = T.randn(4, 3, 128, 128) * 3
    local lb = H.labels({ 4, 3, 128, 128 })
    local tt = plant(lb, 255, "pixels", { 4, 1, 128, 128 })
    local o = { activation = "softmax", ignore_index = 255, label_smoothing = 0.1 }
    local l1, g1 = H.with_threads(1, function() return segloss.dice_focal(xb, tt, o) end)
    for _, n in ipairs { 2, 3 } do
      local l, g = H.with_threads(n, function() return segloss.dice_focal(xb, tt, o) end)
      assert.equal(n, segloss.core.threads_used())
      assert.is_true(same(l1, l) and same(g1, g))
    end
  end)
end)

describe("label_smoothing", function()
  local cases = {
    { "bce", "sigmoid", 2 }, { "bce", "none", 2 }, { "ce", "softmax", 3, true }, { "ce", "none", 3 },
    { "focal", "sigmoid", 2 }, { "focal", "none", 1 }, { "focal", "softmax", 3, true },
    { "bce_dice", "sigmoid", 1 }, { "dice_focal", "softmax", 3, true }, { "dice_focal", "sigmoid", 2 },
  }
  for _, cf in ipairs(cases) do
    local name, act, C, lab = cf[1], cf[2], cf[3], cf[4]
    for _, red in ipairs { "mean", "sum", "none" } do
      H.backend_it(it, pending, string.format("%s %s reduction %s: 0 is the call without it, bit for bit",
        name, act, red), function()
        if red == "none" and name:find("_") then return end -- presets have no "none"
        segloss.seed(2810)
        local shape = { 2, C, 9, 13 }
        local x = T.randn(shape) * 2
        if act == "none" then x = name == "ce" and x:softmax() or T.rand(shape) end
        local t = lab and H.labels(shape) or (name == "ce" and H.labels(shape):onehot(C) or H.bin(shape, 0.3))
        local o = { activation = act, reduction = red }
        local l1, g1 = segloss[name](x, t, o)
        local l2, g2 = segloss[name](x, t, copy(o, { label_smoothing = 0 }))
        assert.is_true(same(l1, l2) and same(g1, g2))
        local l3 = segloss[name](x, t, copy(o, { label_smoothing = 0.1 }))
        assert.is_false(same(l1, l3))
      end)
    end
  end

  it("> 0 matches the golden references (bce, ce, focal, bce_dice, dice_focal)", function()
    local n = 0
    for _, name in ipairs { "bce", "ce", "focal", "bce_dice", "dice_focal" } do
      for _, c in ipairs(H.json("spec/golden/" .. name .. ".json").cases) do
        if (c.opts.label_smoothing or 0) > 0 then
          local o = copy(c.opts)
          if c.mask then o.mask = T.from(c.mask.data, c.mask.shape) end
          local l = segloss[name](T.from(c.x.data, c.x.shape), T.from(c.t.data, c.t.shape), o)
          if type(c.loss) == "number" then
            assert.is_true(math.abs(l - c.loss) <= 1e-5 * math.abs(c.loss) + 1e-6, c.id)
          else
            local got = l:reshape(l:numel()):totable()
            for i, v in ipairs(c.loss.data) do
              assert.is_true(math.abs(got[i] - v) <= 1e-5 * math.abs(v) + 1e-6, c.id)
            end
          end
          n = n + 1
        end
      end
    end
    assert.is_true(n >= 10)
  end)

  it("in a preset smooths the bce or focal part only: bce_dice = BCE{label_smoothing} + Dice{}", function()
    segloss.seed(2811)
    local x, t = T.randn(2, 1, 6, 6), H.bin({ 2, 1, 6, 6 }, 0.3)
    local l1 = segloss.bce_dice(x, t, { activation = "sigmoid", label_smoothing = 0.2 })
    local lb = segloss.bce(x, t, { activation = "sigmoid", label_smoothing = 0.2 })
    local ld = segloss.dice(x, t, { activation = "sigmoid" })
    assert.is_true(math.abs(l1 - (lb + ld)) <= 1e-6 * math.abs(l1))
  end)

  it("ce with a label map is ce with the smoothed one-hot as a target of x's shape", function()
    segloss.seed(2812)
    local x, lab = T.randn(2, 4, 5, 5), H.labels({ 2, 4, 5, 5 })
    local l1, g1 = segloss.ce(x, lab, { activation = "softmax", label_smoothing = 0.2 })
    local soft = lab:onehot(4) * 0.8 + 0.05
    local l2, g2 = segloss.ce(x, soft, { activation = "softmax" })
    assert.is_true(math.abs(l1 - l2) <= 1e-6 * l2)
    local d = g1 - g2
    assert.is_true(math.max(d:max(), -d:min()) <= 1e-6 * g2:max())
  end)
end)

describe("generalized_dice soft_label", function()
  it("changes nothing for 0/1 targets, and is minimal at p = t for soft ones", function()
    segloss.seed(2820)
    local x, lab = T.randn(2, 3, 6, 6), H.labels({ 2, 3, 6, 6 })
    local l1 = segloss.generalized_dice(x, lab, { activation = "softmax" })
    local l2 = segloss.generalized_dice(x, lab, { activation = "softmax", soft_label = true })
    assert.is_true(math.abs(l1 - l2) <= 1e-6)
    local t = T.rand(2, 2, 6, 6)
    local at, g = segloss.generalized_dice(t, t, { soft_label = true, smooth = 0 })
    local off = segloss.generalized_dice((t * 0.9 + 0.05), t, { soft_label = true, smooth = 0 })
    assert.is_true(math.abs(at) <= 1e-6 and off > at)
    assert.is_true(math.max(g:max(), -g:min()) <= 1e-6) -- |p - t| has derivative 0 at p = t
  end)
end)

describe("errors of the options", function()
  local x, lab
  before_each(function()
    segloss.seed(2830)
    x = T.randn(2, 3, 4, 4)
    lab = H.labels({ 2, 3, 4, 4 })
  end)

  it("ignore_index must be an integer", function()
    H.errors("segloss.ce: ", { "option ignore_index must be an integer", "got 1.5" }, segloss.ce, x, lab,
      { activation = "softmax", ignore_index = 1.5 })
    H.errors("segloss.dice: ", { "option ignore_index must be an integer", "got string \"x\"" }, segloss.dice, x, lab,
      { ignore_index = "x" })
    H.errors("segloss.Dice: ", { "option ignore_index must be an integer" }, segloss.Dice, { ignore_index = true })
  end)

  it("label_smoothing is a number in [0, 1), for bce, ce and focal (and their presets) only", function()
    H.errors("segloss.ce: ", { "option label_smoothing", "got 1" }, segloss.ce, x, lab,
      { activation = "softmax", label_smoothing = 1 })
    H.errors("segloss.bce: ", { "option label_smoothing", "got -0.1" }, segloss.bce, x, lab:onehot(3),
      { activation = "sigmoid", label_smoothing = -0.1 })
    H.errors("segloss.dice: ", { "unknown option \"label_smoothing\"" }, segloss.dice, x, lab,
      { label_smoothing = 0.1 })
    H.errors("segloss.GeneralizedDice: ", { "unknown option \"label_smoothing\"" }, segloss.GeneralizedDice,
      { label_smoothing = 0.1 })
  end)

  it("soft_label is a boolean for generalized_dice", function()
    H.errors("segloss.generalized_dice: ", { "option soft_label", "got 1" }, segloss.generalized_dice, x, lab,
      { activation = "softmax", soft_label = 1 })
  end)

  it("parts of a combination must share ignore_index", function()
    local c = segloss.Dice { activation = "softmax", ignore_index = 255 } + segloss.CE { activation = "softmax" }
    H.errors("segloss.Criterion: ", { "must share ignore_index (part 1: 255, part 2: none)" }, c, x, lab)
    local c2 = segloss.Dice { activation = "softmax", ignore_index = 255 } +
      segloss.CE { activation = "softmax", ignore_index = 0 }
    H.errors("segloss.Criterion: ", { "must share ignore_index (part 1: 255, part 2: 0)" }, c2, x, lab)
  end)

  it("a per-pixel loss with a target of x's shape ignores whole pixels", function()
    local t = lab:onehot(3)
    t:set(1, 2, 3, 3, -1)
    H.errors("segloss.ce: ", { "option ignore_index -1 marks the target at {1,2,3,3} but not at {1,1,3,3}",
      "a pixel is ignored in every channel or in none" }, segloss.ce, x, t,
      { activation = "softmax", ignore_index = -1 })
    -- sigmoid: elements, no error
    segloss.dice(x, t, { activation = "sigmoid", ignore_index = -1 })
  end)

  it("keeps the target and mask errors (NaN, out of range, not 0/1), and writes nothing into out", function()
    local out = T.full({ 2, 3, 4, 4 }, 7)
    local t = lab:clone()
    t:set(1, 1, 1, 2, 255)
    t:set(2, 1, 2, 2, 254)
    H.errors("segloss.dice: ", { "target label 254 at {2,1,2,2} is not an integer in 0..2" }, segloss.dice, x, t,
      { activation = "softmax", ignore_index = 255, out = out })
    t:set(2, 1, 2, 2, 0 / 0)
    H.errors("segloss.dice: ", { "target label", "at {2,1,2,2}" }, segloss.dice, x, t,
      { activation = "softmax", ignore_index = 255, out = out })
    t:set(2, 1, 2, 2, 1)
    local m = T.ones(2, 1, 4, 4)
    m:set(1, 1, 1, 2, 0.5) -- at an ignored pixel: still an error
    H.errors("segloss.dice: ", { "mask value 0.5 at {1,1,1,2} is not 0 or 1" }, segloss.dice, x, t,
      { activation = "softmax", ignore_index = 255, out = out, mask = m })
    local d = T.rand(2, 3, 4, 4)
    d:set(1, 1, 1, 1, 2)
    H.errors("segloss.bce: ", { "target value 2 at {1,1,1,1} is outside [0, 1]" }, segloss.bce, x, d,
      { activation = "sigmoid", ignore_index = -1, out = out })
    assert.equal(7, out:min())
    assert.equal(7, out:max())
  end)
end)
