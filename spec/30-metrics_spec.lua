-- segloss.metrics: the empty-mask policy, invariants, options and errors.
-- (Values against SciPy and brute force: 31-metrics_golden_spec.lua.)
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local metrics = segloss.metrics
local bin = H.bin

local function box(shape, lo, hi)
  -- a (1, 1, ...) mask with ones in the box lo..hi (1-based, inclusive)
  local full = { 1, 1 }
  for i, v in ipairs(shape) do full[i + 2] = v end
  local m = T.zeros(full)
  local f = m:reshape(m:numel())
  local n = m:numel()
  for i = 1, n do
    local rem, inside = i - 1, true
    for a = #shape, 1, -1 do
      local c = rem % shape[a] + 1
      rem = rem // shape[a]
      inside = inside and c >= lo[a] and c <= hi[a]
    end
    if inside then f:set(i, 1) end
  end
  return m
end

local ALL = { "dice", "iou", "precision", "sensitivity", "specificity", "hd", "hd95", "assd", "nsd" }

describe("metrics", function()
  it("scores identical masks perfectly", function()
    local m = box({ 9, 11 }, { 2, 3 }, { 6, 8 })
    local r = metrics.evaluate(m, m)
    for _, k in ipairs { "dice", "iou", "precision", "sensitivity", "specificity", "nsd" } do
      assert.equal(1, r[k], k)
    end
    for _, k in ipairs { "hd", "hd95", "assd" } do assert.equal(0, r[k], k) end
    assert.same({}, r.empty)
  end)

  it("follows one empty-mask policy and never gives NaN", function()
    local z = T.zeros(1, 1, 8, 9)
    local m = box({ 8, 9 }, { 2, 2 }, { 4, 5 })
    local both = metrics.evaluate(z, z)
    for _, k in ipairs { "dice", "iou", "precision", "sensitivity", "specificity", "nsd" } do
      assert.equal(1, both[k], k)
    end
    for _, k in ipairs { "hd", "hd95", "assd" } do assert.equal(0, both[k], k) end
    assert.same({ { sample = 1, class = 0, which = "both" } }, both.empty)
    local diag = math.sqrt(8 * 8 + 9 * 9)
    for _, case in ipairs { { z, m, "pred" }, { m, z, "target" } } do
      local r = metrics.evaluate(case[1], case[2])
      for _, k in ipairs { "dice", "iou", "precision", "sensitivity", "nsd" } do assert.equal(0, r[k], k) end
      for _, k in ipairs { "hd", "hd95", "assd" } do assert.near(diag, r[k], 1e-12, k) end
      assert.equal(case[3], r.empty[1].which)
      for _, k in ipairs(ALL) do assert.is_true(r[k] == r[k], k .. " is NaN") end
    end
    local r = metrics.evaluate(z, m, { empty_distance = 100, spacing = { 2, 3 } })
    assert.equal(100, r.hd95)
    local r2 = metrics.evaluate(z, m, { spacing = { 2, 3 } })
    assert.near(math.sqrt(16 ^ 2 + 27 ^ 2), r2.hd, 1e-12)
    -- an all-foreground target: specificity has nothing to measure and is 1
    local full = T.ones(1, 1, 5, 5)
    assert.equal(1, metrics.evaluate(full, full).specificity)
  end)

  it("is symmetric in hd, hd95, assd and nsd", function()
    segloss.seed(3)
    local a = bin({ 1, 1, 12, 10 }, 0.4)
    local b = bin({ 1, 1, 12, 10 }, 0.4)
    local ab = metrics.evaluate(a, b)
    local ba = metrics.evaluate(b, a)
    for _, k in ipairs { "dice", "iou", "hd", "hd95", "assd", "nsd" } do assert.near(ab[k], ba[k], 1e-12, k) end
    assert.near(ab.precision, ba.sensitivity, 1e-12)
  end)

  it("scales distances with the spacing", function()
    local p = box({ 6, 7, 8 }, { 1, 1, 1 }, { 3, 4, 5 })
    local t = box({ 6, 7, 8 }, { 2, 2, 2 }, { 5, 5, 7 })
    local r1 = metrics.evaluate(p, t, { tolerance = 0 })
    local r2 = metrics.evaluate(p, t, { spacing = { 2.5, 2.5, 2.5 }, tolerance = 0 })
    for _, k in ipairs { "hd", "hd95", "assd" } do assert.near(2.5 * r1[k], r2[k], 1e-9, k) end
    assert.equal(r1.nsd, r2.nsd)
    assert.equal(r1.dice, r2.dice)
  end)

  it("a one-voxel shift along an axis is that axis's spacing away", function()
    local p = box({ 9, 9, 9 }, { 3, 3, 3 }, { 6, 6, 6 })
    local t = box({ 9, 9, 9 }, { 4, 3, 3 }, { 7, 6, 6 }) -- shifted by one along axis 1
    local r = metrics.evaluate(p, t, { spacing = { 3, 1, 1 } })
    assert.equal(3, r.hd)
  end)

  it("thresholds probabilities, sigmoid logits, and takes the argmax of softmax logits", function()
    local t = box({ 4, 4 }, { 1, 1 }, { 2, 4 })
    local probs = t * 0.8 + 0.1 -- 0.9 inside, 0.1 outside
    assert.equal(1, metrics.evaluate(probs, t).dice)
    assert.equal(0, metrics.evaluate(probs, t, { threshold = 0.95 }).sensitivity)
    local logits = t * 6 - 3
    assert.equal(1, metrics.evaluate(logits, t, { activation = "sigmoid" }).dice)
    -- softmax: 3 classes, label map target
    local lab = T.zeros(1, 1, 4, 4)
    for j = 1, 4 do lab:set(1, 1, 1, j, 1); lab:set(1, 1, 4, j, 2) end
    local x = lab:onehot(3) * 5
    local r = metrics.evaluate(x, lab, { activation = "softmax" })
    assert.equal(1, r.dice)
    assert.equal(3, #r.per_class)
    assert.same({ 0, 1, 2 }, { r.per_class[1].class, r.per_class[2].class, r.per_class[3].class })
    local nobg = metrics.evaluate(x, lab, { activation = "softmax", include_background = false })
    assert.equal(2, #nobg.per_class)
    assert.equal(1, nobg.per_class[1].class)
  end)

  it("reports per class, per sample and per pair", function()
    local lab = T.zeros(2, 1, 6, 6)
    for j = 1, 6 do lab:set(1, 1, 1, j, 1) end -- sample 1: class 1 on row 1; class 2 absent
    for j = 1, 3 do lab:set(2, 1, 6, j, 2) end -- sample 2: class 2 on row 6
    local x = lab:onehot(3) * 4
    local r = metrics.evaluate(x, lab, { activation = "softmax", include_background = false })
    assert.equal(4, #r.values)
    assert.equal(2, #r.per_sample)
    -- class 2 of sample 1 and class 1 of sample 2: both empty, perfect
    assert.same({ { sample = 1, class = 2, which = "both" }, { sample = 2, class = 1, which = "both" } }, r.empty)
    assert.equal(1, r.per_class[1].dice)
    assert.equal(6, r.values[1].tp)
    assert.equal(30, r.values[1].tn)
    local nod = metrics.evaluate(x, lab, { activation = "softmax", distances = false })
    assert.is_nil(nod.hd95)
    assert.equal(1, nod.dice)
  end)

  it("gives the same results for any number of threads", function()
    segloss.seed(8)
    local p = bin({ 2, 1, 40, 40, 40 }, 0.5)
    local t = bin({ 2, 1, 40, 40, 40 }, 0.45)
    local r1 = H.with_threads(1, function() return metrics.evaluate(p, t, { spacing = { 1, 0.5, 2 } }) end)
    local r2 = H.with_threads(2, function() return metrics.evaluate(p, t, { spacing = { 1, 0.5, 2 } }) end)
    for _, k in ipairs(ALL) do assert.equal(r1[k], r2[k], k) end
  end)

  it("refuses bad arguments with messages naming the function", function()
    local m = T.zeros(1, 1, 4, 4)
    local E = "segloss.metrics.evaluate: "
    H.errors(E, { "prediction must be a segloss.Tensor, got a table" }, metrics.evaluate, {}, m)
    H.errors(E, { 'unknown option "tresh"' }, metrics.evaluate, m, m, { tresh = 0.5 })
    H.errors(E, { "option threshold must be a number in (0, 1), got 1" }, metrics.evaluate, m, m, { threshold = 1 })
    H.errors(E, { "option spacing must be a list of one number > 0 per spatial axis, got 1" }, metrics.evaluate, m, m,
      { spacing = 1 })
    H.errors(E, { "spacing must have one number per spatial axis: 3 given, 2 needed" }, metrics.evaluate, m, m,
      { spacing = { 1, 1, 1 } })
    H.errors(E, { "spacing[2] must be a finite number > 0, got -1" }, metrics.evaluate, m, m, { spacing = { 1, -1 } })
    H.errors(E, { 'option activation must be one of "none", "sigmoid", "softmax", got string "relu"' },
      metrics.evaluate, m, m, { activation = "relu" })
    H.errors(E, { "target shape {1,1,4,5} does not match prediction {1,1,4,4}" },
      metrics.evaluate, m, T.zeros(1, 1, 4, 5))
    H.errors(E, { "target value 0.5 at {1,1,1,2} is not 0 or 1" }, metrics.evaluate, m,
      T.from({ { { { 0, 0.5, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 } } } }))
    H.errors(E, { "prediction value 2 at {1,1,1,1} is outside [0, 1]", 'activation = "sigmoid"' },
      metrics.evaluate, m + 2, m)
    H.errors(E, { "prediction has nan at {1,1,1,1}" }, metrics.evaluate, m / 0, m)
    H.errors(E, { "prediction must have 3 to 5 dimensions" }, metrics.evaluate, T.zeros(4, 4), T.zeros(4, 4))
    H.errors(E, { "target label 3 at {1,1,1,1} is not an integer in 0..2" }, metrics.evaluate,
      T.zeros(1, 3, 2, 2), T.full({ 1, 1, 2, 2 }, 3), { activation = "softmax" })
    H.errors(E, { 'activation "softmax" needs at least 2 channels' }, metrics.evaluate, m, m,
      { activation = "softmax" })
    local D = "segloss.metrics.distance_transform: "
    H.errors(D, { "mask must be a segloss.Tensor, got 3" }, metrics.distance_transform, 3)
    H.errors(D, { "mask must have 1 to 3 dimensions, got shape {1,1,2,2}" }, metrics.distance_transform,
      T.zeros(1, 1, 2, 2))
    H.errors(D, { "spacing must have one number per spatial axis: 1 given, 2 needed" }, metrics.distance_transform,
      T.zeros(2, 2), { 1 })
    H.errors(D, { "mask has nan at {1,2}" }, metrics.distance_transform, T.from { { 1, 0 / 0 } })
  end)

  describe("spacings at the ends of the double range", function()
    local D = "segloss.metrics.distance_transform: "
    local E = "segloss.metrics.evaluate: "

    it("the reported crashes are clear errors", function()
      H.errors(D, { "outside the float32 range of the result" }, metrics.distance_transform, T.zeros(4), { 1e-200 })
      H.errors(D, { "outside the float32 range of the result" }, metrics.distance_transform, T.zeros(4), { 1e200 })
      H.errors(D, { "spacing {1e-100, 1e+100} is out of range", "at most 2^500" },
        metrics.distance_transform, T.zeros(3, 3), { 1e-100, 1e100 })
      local m = box({ 6, 6 }, { 2, 2 }, { 4, 4 })
      H.errors(E, { "spacing {1e-200, 1} is out of range" }, metrics.evaluate, m, m, { spacing = { 1e-200, 1 } })
    end)

    it("distances scale with a uniform spacing anywhere in the double range", function()
      local a, b = box({ 12, 10 }, { 2, 3 }, { 6, 7 }), box({ 12, 10 }, { 4, 2 }, { 10, 5 })
      local ref = metrics.evaluate(a, b)
      for _, h in ipairs { 1e-300, 1e-200, 1e-40, 1e40, 1e200, 1e300 } do
        local r = metrics.evaluate(a, b, { spacing = { h, h }, tolerance = h })
        for _, k in ipairs { "hd", "hd95", "assd" } do
          assert.is_true(math.abs(r[k] - h * ref[k]) <= 1e-12 * h * ref[k], string.format("%s at %g: %.17g", k, h,
            r[k]))
        end
        assert.equal(ref.nsd, r.nsd)
        assert.equal(ref.dice, r.dice)
      end
    end)

    it("very unequal spacings still give exact distances (against brute force)", function()
      local function brute(mask, sp)
        -- for each nonzero voxel, the nearest zero voxel, in double
        local n1, n2 = mask:size(1), mask:size(2)
        local out = {}
        for i = 1, n1 do
          out[i] = {}
          for j = 1, n2 do
            local best = math.huge
            if mask:get(i, j) ~= 0 then
              for k = 1, n1 do
                for l = 1, n2 do
                  if mask:get(k, l) == 0 then
                    best = math.min(best, math.sqrt(((i - k) * sp[1]) ^ 2 + ((j - l) * sp[2]) ^ 2))
                  end
                end
              end
            else
              best = 0
            end
            out[i][j] = best
          end
        end
        return out
      end
      segloss.seed(8)
      local m = bin({ 9, 7 }, 0.7)
      for _, sp in ipairs { { 1e-15, 1e15 }, { 1e15, 1e-15 }, { 3e-20, 7e15 }, { 1, 1e30 } } do
        local d = metrics.distance_transform(m, sp):totable()
        local want = brute(m, sp)
        for i = 1, 9 do
          for j = 1, 7 do
            local w = want[i][j]
            local ok = (w == math.huge and d[i][j] == math.huge) or math.abs(d[i][j] - w) <= 1e-6 * w
            assert.is_true(ok, string.format("spacing {%g, %g} at (%d,%d): %.9g vs %.9g", sp[1], sp[2], i, j,
              d[i][j], w))
          end
        end
      end
    end)

    it("unequal spacings beyond 2^200 scale like the rest (distances in units of the largest)", function()
      local a, b = box({ 12, 10 }, { 2, 3 }, { 6, 7 }), box({ 12, 10 }, { 4, 2 }, { 10, 5 })
      local ref = metrics.evaluate(a, b, { spacing = { 1e-50, 1 } })
      for _, k in ipairs { 1e-250, 1e250 } do
        local r = metrics.evaluate(a, b, { spacing = { 1e-50 * k, k } })
        for _, n in ipairs { "hd", "hd95", "assd" } do
          assert.is_true(math.abs(r[n] - k * ref[n]) <= 1e-12 * k * ref[n], string.format("%s at %g", n, k))
        end
      end
    end)

    it("random spacings from 1e-300 to 1e300 never crash: a result or a clear error", function()
      segloss.seed(99)
      local u = T.rand(3000):totable()
      local masks = { bin({ 5 }, 0.5), bin({ 4, 6 }, 0.5), bin({ 3, 4, 5 }, 0.5) }
      local k, errors, results = 1, 0, 0
      for _ = 1, 300 do
        local m = masks[(k % 3) + 1]
        local sp = {}
        for a = 1, m:dim() do
          sp[a] = 10 ^ (u[k] * 600 - 300)
          k = k + 1
        end
        local ok, r = pcall(metrics.distance_transform, m, sp)
        if ok then
          results = results + 1
          assert.is_true(r:min() >= 0)
        else
          errors = errors + 1
          assert.truthy(r:find("^segloss.metrics.distance_transform: spacing"), r)
        end
        local full = m:reshape(1, 1, table.unpack(m:shape()))
        local ok2, e = pcall(metrics.evaluate, full, full, { spacing = sp })
        assert.is_true(ok2 or e:find("^segloss.metrics.evaluate: spacing") ~= nil, tostring(e))
        if ok2 then assert.equal(0, e.hd) end
      end
      assert.is_true(errors > 0 and results > 0)
    end)
  end)

  describe("label maps, options and messages", function()
    it("takes a label-map prediction (argmax) with classes = C", function()
      segloss.seed(6)
      local logits = T.randn(2, 3, 9, 9)
      local lab = H.labels({ 2, 3, 9, 9 })
      local want = metrics.evaluate(logits, lab, { activation = "softmax" })
      local got = metrics.evaluate(logits:argmax(), lab, { classes = 3 })
      for _, k in ipairs(ALL) do assert.equal(want[k], got[k], k) end
      -- one-hot target too
      local got2 = metrics.evaluate(logits:argmax(), lab:onehot(3), { classes = 3 })
      assert.equal(want.dice, got2.dice)
      local E = "segloss.metrics.evaluate: "
      H.errors(E, { "prediction label 3 at {1,1,1,1} is not an integer in 0..2" },
        metrics.evaluate, T.full({ 1, 1, 2, 2 }, 3), T.zeros(1, 1, 2, 2), { classes = 3 })
      H.errors(E, { 'a label-map prediction takes activation "none", got "softmax"' },
        metrics.evaluate, logits:argmax(), lab, { classes = 3, activation = "softmax" })
      H.errors(E, { "prediction has 3 channels but option classes is 4" }, metrics.evaluate, logits, lab,
        { classes = 4 })
      H.errors(E, { "option classes must be an integer in 2..16777216, got 1.5" }, metrics.evaluate, logits, lab,
        { classes = 1.5 })
      -- a label map given without classes: the message says how
      H.errors(E, { "prediction value 2 at", "a label map? pass classes = the number of classes" },
        metrics.evaluate, logits:argmax(), lab)
    end)

    it("suggests the option meant", function()
      local m = T.zeros(1, 1, 4, 4)
      H.errors("segloss.metrics.evaluate: ", { 'unknown option "spacng" (did you mean "spacing"?)' },
        metrics.evaluate, m, m, { spacng = { 1, 1 } })
      H.errors("segloss.metrics.evaluate: ", { 'unknown option "treshold" (did you mean "threshold"?)' },
        metrics.evaluate, m, m, { treshold = 0.5 })
      H.errors("segloss.metrics.evaluate: ", { 'unknown option "xyzzyplugh"' }, metrics.evaluate, m, m,
        { xyzzyplugh = 1 })
    end)

    it("numbers classes as label maps do, and lists as Lua does", function()
      local t = T.zeros(1, 1, 6, 6)
      t:set(1, 1, 2, 2, 2) -- class 2 only; class 1 empty in both
      local r = metrics.evaluate(t:onehot(3), t, { include_background = false })
      assert.equal(2, #r.per_class)
      assert.equal(1, r.per_class[1].class)
      assert.equal(2, r.per_class[2].class)
      assert.equal(1, #r.per_sample)
      assert.same({ { sample = 1, class = 1, which = "both" } }, r.empty)
    end)
  end)
end)
