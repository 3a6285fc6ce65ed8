-- Central finite differences against the returned gradient, for every loss
-- and option family (nn's criterionJacobianTest, judged like optim's
-- checkgrad: ‖g - ĝ‖ / ‖g + ĝ‖).
local segloss = require "segloss"
local T = segloss.tensor

local TOL = 2e-3

-- inputs: logits (sigmoid/softmax) or probabilities away from 0, 1 and eps
local function make_x(shape, act)
  if act == "none" then return T.rand(shape) * 0.9 + 0.05 end
  return T.randn(shape) * 1.5
end

-- targets: "bin" 0/1 of x's shape, "soft" in (0,1), "labels" (N,1,S...) in 0..C-1,
-- "onehot" of random labels, "empty1": binary with sample 1 empty
local function make_t(shape, kind)
  local C = shape[2]
  if kind == "labels" or kind == "onehot" then
    local ls = {}
    for i, v in ipairs(shape) do ls[i] = v end
    ls[2] = 1
    local lab = T.rand(ls) * C
    local flat = lab:reshape(lab:numel())
    for i = 1, flat:numel() do flat:set(i, math.floor(flat:get(i))) end
    if kind == "labels" then return lab end
    return lab:onehot(C)
  end
  local t = T.rand(shape)
  if kind == "soft" then return t * 0.8 + 0.1 end
  local flat = t:reshape(t:numel())
  for i = 1, flat:numel() do flat:set(i, flat:get(i) < 0.4 and 1 or 0) end
  if kind == "empty1" then
    local per = t:numel() // shape[1]
    for i = per + 1, 2 * per do flat:set(i, 0) end
  end
  return t
end

local function make_mask(shape, kind)
  if not kind then return nil end
  if kind == "fullsame" then -- a full-shape mask, the same in every channel
    local pix = make_mask(shape, "pix")
    local m = T.zeros(shape)
    local per = m:numel() // (shape[1] * shape[2])
    local src, dst = pix:reshape(pix:numel()), m:reshape(m:numel())
    for n = 0, shape[1] - 1 do
      for c = 0, shape[2] - 1 do
        for s = 1, per do dst:set((n * shape[2] + c) * per + s, src:get(n * per + s)) end
      end
    end
    return m
  end
  local ms = {}
  for i, v in ipairs(shape) do ms[i] = v end
  if kind == "pix" then ms[2] = 1 end
  local m = T.rand(ms)
  local flat = m:reshape(m:numel())
  for i = 1, flat:numel() do flat:set(i, flat:get(i) < 0.75 and 1 or 0) end
  return m
end

-- Losses that threshold p at 0.5 (hausdorff_dt's map of p > 0.5, a
-- constant): a difference step must not cross it, so their inputs keep p
-- at least 0.05 from it.
local THRESHOLD_HALF = { hausdorff_dt = true }
local function away_from_half(x, shape, act)
  local xs = x:reshape(x:numel())
  if act ~= "softmax" then
    local mid, gap = act == "none" and 0.5 or 0, act == "none" and 0.05 or 0.25
    for i = 1, xs:numel() do
      local v = xs:get(i)
      if math.abs(v - mid) < gap then xs:set(i, v < mid and mid - gap or mid + gap) end
    end
    return
  end
  local C = shape[2]
  local M = x:numel() // (shape[1] * C)
  for n = 0, shape[1] - 1 do
    for s = 1, M do
      for _ = 1, 5 do
        local z, sum = {}, 0
        for c = 0, C - 1 do z[c] = math.exp(xs:get((n * C + c) * M + s)); sum = sum + z[c] end
        local moved = false
        for c = 0, C - 1 do
          if math.abs(z[c] / sum - 0.5) < 0.05 then
            local i = (n * C + c) * M + s
            xs:set(i, xs:get(i) + 0.5)
            moved = true
          end
        end
        if not moved then break end
      end
    end
  end
end

-- Piecewise losses (the Lovász losses: the gradient jumps where two sorted
-- errors swap places): inputs from a shuffled grid, so that no two errors
-- lie closer than the grid step (0.9 / n for probabilities, 3 / n for
-- logits), and a step h far below it; each side is checked on its own,
-- (f(x + h) - f(x)) / h and (f(x) - f(x - h)) / h, so that a kink between
-- would show as a mismatch of one of them rather than average out.
local function grid_x(shape, act)
  local x = T.zeros(shape)
  local n = x:numel()
  local perm = {}
  for i = 1, n do perm[i] = i end
  for i = n, 2, -1 do
    local k = math.floor(T.rand({ 1 }):get(1) * i) + 1
    perm[i], perm[k] = perm[k], perm[i]
  end
  local f = x:reshape(n)
  for i = 1, n do
    -- none: (k + 1/4) / n, whose mirror 1 - v is never on the grid
    local u = (perm[i] - 1 + 0.25) / n
    f:set(i, act == "none" and 0.05 + 0.9 * u or 3 * (2 * u - 1))
  end
  return x
end

-- Losses made of many minima and maxima (cldice's soft skeleton): a step of
-- 1e-2 (even 1e-3) in the logits crosses ties between neighbours (kinks) in some
-- windows, so they take a smaller one.
local H_LOGITS = { cldice = 3e-4 }
-- one-sided differences that disagree by more than this (relative) mark a kink
local KINK = 0.01

local function fd_error(name, x, t, opts, h, onesided)
  local _, g = segloss[name](x, t, opts)
  local o2 = { grad = false }
  for k, v in pairs(opts) do if k ~= "grad" then o2[k] = v end end
  local xs = x:reshape(x:numel())
  local gs = g:reshape(g:numel())
  local num, den, kinks = 0, 0, 0
  local l0 = onesided and segloss[name](x, t, o2)
  for i = 1, xs:numel() do
    local v = xs:get(i)
    xs:set(i, v + h)
    local vp = xs:get(i)
    local lp = segloss[name](x, t, o2)
    xs:set(i, v - h)
    local vm = xs:get(i)
    local lm = segloss[name](x, t, o2)
    xs:set(i, v)
    local gi = gs:get(i)
    local fds = onesided and { (lp - l0) / (vp - v), (l0 - lm) / (v - vm) } or { (lp - lm) / (vp - vm) }
    -- a piecewise loss at a kink (two sorted terms tied within the step: the
    -- two sides disagree) is left out; spec 24 and the goldens cover ties
    if onesided and math.abs(fds[1] - fds[2]) > KINK * (math.abs(fds[1]) + math.abs(fds[2])) + 1e-9 then
      kinks = kinks + 1
    else
      for _, fd in ipairs(fds) do
        num = num + (gi - fd) ^ 2
        den = den + (gi + fd) ^ 2
      end
    end
  end
  return math.sqrt(num) / math.max(math.sqrt(den), 1e-30), kinks / xs:numel()
end

-- { loss, opts, shape, target kind, mask kind }: option families, then
-- (below) every loss of the registry with its defaults, once per activation
-- it allows
local cases = {
  { "bce", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "bce", { activation = "sigmoid", pos_weight = 2.5, reduction = "sum" }, { 2, 2, 3, 4 }, "soft" },
  { "bce", { activation = "sigmoid", pos_weight = "auto" }, { 2, 1, 4, 5 }, "bin", "pix" },
  { "bce", { activation = "none" }, { 2, 1, 4, 5 }, "soft" },
  { "bce", { activation = "sigmoid", weight = { 0.5, 2, 1 }, include_background = false }, { 2, 3, 3, 3 }, "labels" },
  { "bce", { activation = "sigmoid" }, { 1, 2, 2, 3, 4 }, "bin", "full" },
  { "ce", { activation = "softmax" }, { 2, 3, 4, 4 }, "labels" },
  { "ce", { activation = "softmax", weight = { 1, 0.5, 2 } }, { 2, 3, 4, 4 }, "soft", "pix" },
  { "ce", { activation = "softmax", include_background = false, reduction = "sum" }, { 2, 4, 3, 3 }, "onehot" },
  { "ce", { activation = "none" }, { 2, 3, 3, 4 }, "soft" },
  { "focal", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "focal", { activation = "sigmoid", gamma = 0.5, alpha = 0.6 }, { 2, 2, 3, 4 }, "soft" },
  { "focal", { activation = "sigmoid", gamma = 3, alpha = false, weight = { 1, 3 } }, { 2, 2, 3, 4 }, "bin", "pix" },
  { "focal", { activation = "none", gamma = 2 }, { 2, 1, 4, 5 }, "soft" },
  { "focal", { activation = "softmax", alpha = { 0.2, 0.5, 0.3 } }, { 2, 3, 3, 4 }, "labels" },
  { "focal", { activation = "softmax", gamma = 1.5 }, { 2, 3, 3, 4 }, "soft", "pix" },
  { "dice", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "dice", { activation = "none", reduction = "sum" }, { 2, 2, 3, 4 }, "soft" },
  { "dice", { activation = "softmax" }, { 2, 3, 4, 4 }, "labels" },
  { "dice", { activation = "softmax", include_background = false, weight = { 1, 2, 0.5 } }, { 2, 3, 3, 4 }, "onehot", "fullsame" },
  { "dice", { activation = "sigmoid", squared = true }, { 2, 2, 3, 4 }, "bin" },
  { "dice", { activation = "sigmoid", complement = true }, { 2, 1, 4, 5 }, "bin" },
  { "dice", { activation = "none", complement = true, batch = true }, { 2, 1, 4, 5 }, "bin", "pix" },
  { "dice", { activation = "sigmoid", soft_label = true }, { 2, 2, 3, 4 }, "soft" },
  { "dice", { activation = "softmax", batch = true, smooth_nr = 0, smooth_dr = 1e-3 }, { 2, 3, 3, 4 }, "labels", "pix" },
  { "iou", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "iou", { activation = "none", empty = "complement" }, { 2, 1, 4, 5 }, "empty1" },
  { "iou", { activation = "softmax", soft_label = true }, { 2, 3, 3, 4 }, "soft" },
  { "tversky", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "tversky", { activation = "softmax", alpha = 0.7, beta = 0.3, batch = true }, { 2, 3, 3, 4 }, "labels" },
  { "tversky", { activation = "none", soft_label = true, weight = { 2, 1 } }, { 2, 2, 3, 4 }, "soft", "full" },
  { "focal_tversky", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "focal_tversky", { activation = "softmax", gamma = 2 }, { 2, 3, 3, 4 }, "labels", "pix" },
  { "sensitivity_specificity", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "sensitivity_specificity", { activation = "softmax", lambda = 0.5 }, { 2, 3, 3, 4 }, "soft" },
  { "generalized_dice", { activation = "sigmoid" }, { 2, 2, 4, 4 }, "bin" },
  { "generalized_dice", { activation = "softmax", w_type = "simple" }, { 2, 3, 4, 4 }, "labels" },
  { "generalized_dice", { activation = "softmax", w_type = "uniform", batch = true }, { 2, 3, 3, 4 }, "labels", "pix" },
  { "generalized_dice", { activation = "none", include_background = false }, { 2, 3, 3, 4 }, "soft" },
  { "bce_dice", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "bce_dice", { activation = "sigmoid", bce_weight = 0.3, dice_weight = 2, pos_weight = 3 }, { 2, 2, 3, 4 }, "bin", "pix" },
  { "dice_focal", { activation = "sigmoid" }, { 2, 1, 4, 5 }, "bin" },
  { "dice_focal", { activation = "softmax", lambda = 0.5, alpha = { 0.3, 0.3, 0.4 } }, { 2, 3, 3, 4 }, "labels" },
  { "dice_focal", { activation = "sigmoid", gamma = 1, alpha = 0.25, squared = true }, { 2, 2, 3, 4 }, "soft" },
  { "boundary", { activation = "sigmoid", spacing = { 2, 0.5 } }, { 2, 1, 4, 5 }, "bin" },
  { "boundary", { activation = "softmax", include_background = true, weight = { 1, 2, 0.5 } }, { 2, 3, 3, 4 }, "labels", "pix" },
  { "boundary", { activation = "none", reduction = "sum" }, { 1, 2, 2, 3, 4 }, "bin", "full" },
  { "hausdorff_dt", { activation = "sigmoid", alpha = 1, spacing = { 1.5, 1 } }, { 2, 1, 4, 5 }, "bin" },
  { "hausdorff_dt", { activation = "softmax", include_background = true }, { 2, 3, 3, 4 }, "labels", "pix" },
  { "hausdorff_dt", { activation = "none", alpha = 3, reduction = "sum" }, { 1, 2, 2, 3, 4 }, "soft", "full" },
  -- label_smoothing, ignore_index, generalized_dice's soft_label
  { "bce", { activation = "sigmoid", label_smoothing = 0.1 }, { 2, 2, 3, 4 }, "bin", "pix" },
  { "bce", { activation = "none", label_smoothing = 0.2, pos_weight = "auto" }, { 2, 1, 4, 5 }, "soft" },
  { "ce", { activation = "softmax", label_smoothing = 0.1, weight = { 1, 0.5, 2 } }, { 2, 3, 4, 4 }, "labels" },
  { "ce", { activation = "none", label_smoothing = 0.3 }, { 2, 3, 3, 4 }, "soft" },
  { "focal", { activation = "sigmoid", label_smoothing = 0.2 }, { 2, 2, 3, 4 }, "bin" },
  { "focal", { activation = "softmax", label_smoothing = 0.1, gamma = 1.5 }, { 2, 3, 3, 4 }, "labels", "pix" },
  { "focal", { activation = "none", label_smoothing = 0.1, gamma = 2 }, { 2, 1, 4, 5 }, "soft" },
  { "generalized_dice", { activation = "sigmoid", soft_label = true }, { 2, 2, 3, 4 }, "soft" },
  { "ce", { activation = "softmax", ignore_index = 1 }, { 2, 3, 4, 4 }, "labels", "pix" },
  { "dice", { activation = "sigmoid", ignore_index = 0 }, { 2, 2, 3, 4 }, "bin" },
  { "bce_dice", { activation = "sigmoid", label_smoothing = 0.1, ignore_index = 1 }, { 2, 1, 4, 5 }, "bin", "pix" },
  { "dice_focal", { activation = "softmax", label_smoothing = 0.2, ignore_index = 2 }, { 2, 3, 3, 4 }, "labels" },
  -- masked elements are outside cldice's skeletons: their derivative is 0
  { "cldice", { activation = "softmax", include_background = true }, { 2, 3, 5, 6 }, "labels", "fullsame" },
  { "cldice", { activation = "none", include_background = true, batch = true }, { 2, 2, 5, 6 }, "soft", "full" },
  { "cldice", { activation = "sigmoid", iterations = 5 }, { 1, 1, 3, 4, 5 }, "bin", "full" },
}

local H = require "helpers"
local piecewise = {}
for _, d in ipairs(H.losses()) do
  piecewise[d.name] = d.piecewise
  for _, act in ipairs(d.activations) do
    if act == "softmax" then
      cases[#cases + 1] = { d.name, { activation = act }, { 2, 3, 3, 4 }, "labels" }
    else
      cases[#cases + 1] = { d.name, { activation = act }, { 2, d.binary and 1 or 2, 3, 4 },
        act == "none" and not d.piecewise and "soft" or "bin", "pix" }
    end
  end
end

describe("finite differences", function()
  for i, c in ipairs(cases) do
    local name, opts, shape, tkind, mkind = c[1], c[2], c[3], c[4], c[5]
    local desc = string.format("%s %d: %s", name, i, (require "cjson").encode(opts))
    it(desc, function()
      segloss.seed(1000 + i)
      local act = opts.activation or "none"
      local pw = piecewise[name]
      local x = pw and grid_x(shape, act) or make_x(shape, act)
      if THRESHOLD_HALF[name] then away_from_half(x, shape, act) end
      local t = make_t(shape, tkind)
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.mask = make_mask(shape, mkind)
      local h = act == "none" and 1e-3 or (H_LOGITS[name] or 1e-2)
      if pw then h = h / 8 end
      local err, kinked = fd_error(name, x, t, o, h, pw)
      assert.is_true(err <= TOL, string.format("relative error %.3g", err))
      assert.is_true(kinked <= 0.1, string.format("%.0f%% of the elements at a kink", 100 * kinked))
    end)
  end

  it("the check sees a wrong gradient (it can fail)", function()
    segloss.seed(7)
    local x, t = make_x({ 2, 1, 4, 5 }, "sigmoid"), make_t({ 2, 1, 4, 5 }, "bin")
    -- the gradient of the mean, judged against the differences of the sum
    local _, g = segloss.dice(x, t, { activation = "sigmoid" })
    local _, g2 = segloss.dice(x, t, { activation = "sigmoid", reduction = "sum" })
    local num, den = 0, 0
    local a, b = g:reshape(40):totable(), g2:reshape(40):totable()
    for k = 1, 40 do num = num + (a[k] - b[k]) ^ 2; den = den + (a[k] + b[k]) ^ 2 end
    assert.is_true(math.sqrt(num / den) > TOL)
  end)
end)
