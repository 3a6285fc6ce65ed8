-- Every SIMD backend against the scalar reference, on the same data: every
-- loss family, spatial sizes around 1, 2 and 3 vector tiles and the task
-- blocks, masks and label maps, inputs that cross the fast paths' edges,
-- and more than 64 channels (the per-class arrays on the heap, and the
-- softmax kernels' fallback to scalar code beyond 64 channels).
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local rand_bin, labels = H.bin, H.labels

local function compare(name, x, t, opts, b)
  segloss.set_backend("scalar")
  local l0, g0 = segloss[name](x, t, opts)
  segloss.set_backend(b)
  local l1, g1 = segloss[name](x, t, opts)
  if type(l0) == "number" then
    assert(math.abs(l1 - l0) <= 1e-5 * math.abs(l0) + 1e-6,
      string.format("%s %s: loss %.9g vs scalar %.9g", name, b, l1, l0))
  else
    local d = (l1 - l0)
    local scale = math.max(math.abs(l0:max()), math.abs(l0:min()))
    assert(math.max(d:max(), -d:min()) <= 1e-5 * scale + 1e-6, name .. ": none values differ")
  end
  if g0 then
    local scale = math.max(g0:max(), -g0:min())
    local d = g1 - g0
    local err = math.max(d:max(), -d:min())
    assert(err <= 2e-4 * scale + 1e-30,
      string.format("%s %s: gradient differs by %.3g (scale %.3g)", name, b, err, scale))
  end
end

-- { name, options, C, target kind ("lab" label map, "soft", binary), mask ("pix", "full") }:
-- option families, then (below) every loss of the registry with its defaults,
-- once per activation it allows
local configs = {
  { "bce", { activation = "sigmoid" } },
  { "bce", { activation = "sigmoid", pos_weight = "auto", reduction = "sum" }, mask = "pix" },
  { "bce", { activation = "none" } },
  { "ce", { activation = "softmax" }, C = 3, lab = true },
  { "ce", { activation = "softmax", weight = { 1, 2, 0.5, 1 }, include_background = false }, C = 4, mask = "pix" },
  { "ce", { activation = "none" }, C = 3, soft = true },
  { "focal", { activation = "sigmoid" } },
  { "focal", { activation = "sigmoid", gamma = 2.5, alpha = false } },
  { "focal", { activation = "none", gamma = 1 }, mask = "pix" },
  { "focal", { activation = "softmax", alpha = { 0.2, 0.3, 0.5 } }, C = 3, lab = true },
  { "dice", { activation = "sigmoid" } },
  { "dice", { activation = "sigmoid" }, mask = "full", C = 2 },
  { "dice", { activation = "none", squared = true } },
  { "dice", { activation = "softmax", batch = true }, C = 3, lab = true },
  { "dice", { activation = "softmax", soft_label = true }, C = 3, soft = true, mask = "pix" },
  { "iou", { activation = "sigmoid", empty = "complement" } },
  { "tversky", { activation = "sigmoid" }, C = 2, lab = true },
  { "focal_tversky", { activation = "softmax", gamma = 1.5 }, C = 4, lab = true },
  { "sensitivity_specificity", { activation = "sigmoid" } },
  { "generalized_dice", { activation = "softmax" }, C = 3, lab = true },
  { "bce_dice", { activation = "sigmoid" } },
  { "dice_focal", { activation = "softmax" }, C = 3, lab = true },
  { "dice_focal", { activation = "sigmoid" }, mask = "pix" },
  -- label_smoothing (in the kernels), ignore_index (a mask made by the binding)
  { "bce", { activation = "sigmoid", label_smoothing = 0.1 }, C = 2 },
  { "bce", { activation = "none", label_smoothing = 0.2, pos_weight = "auto" }, soft = true, mask = "pix" },
  { "ce", { activation = "softmax", label_smoothing = 0.1, ignore_index = 0 }, C = 3, lab = true },
  { "ce", { activation = "none", label_smoothing = 0.3 }, C = 3, soft = true },
  { "focal", { activation = "sigmoid", label_smoothing = 0.1, ignore_index = 1 }, C = 2 },
  { "focal", { activation = "softmax", label_smoothing = 0.2, gamma = 1 }, C = 3, lab = true, mask = "pix" },
  { "bce_dice", { activation = "sigmoid", label_smoothing = 0.1 }, mask = "pix" },
  { "dice_focal", { activation = "softmax", label_smoothing = 0.1, ignore_index = 2 }, C = 3, lab = true },
  { "generalized_dice", { activation = "softmax", soft_label = true }, C = 3, soft = true },
  -- more than 64 channels: per-class arrays on the heap; softmax in scalar code
  { "ce", { activation = "softmax", weight = "ramp" }, C = 70, lab = true },
  { "dice_focal", { activation = "softmax", alpha = "half-ramp", weight = "ramp" }, C = 70, lab = true, mask = "pix" },
  { "dice", { activation = "sigmoid", weight = "ramp" }, C = 70, lab = true },
}

-- (with mild logits: saturated ones make near-perfect predictions, where a
-- loss like focal_tversky with gamma < 1 amplifies float32 rounding beyond
-- the tolerance; the option families above take them on)
for _, d in ipairs(H.losses()) do
  for _, act in ipairs(d.activations) do
    if act == "softmax" then
      configs[#configs + 1] = { d.name, { activation = act }, C = 3, lab = true, mild = true }
    else
      configs[#configs + 1] = { d.name, { activation = act }, C = d.binary and 1 or 2, soft = act == "none",
        mild = true }
    end
  end
end

-- a name that says what the case is: loss, options, shape of the target, mask
local function describe_case(cf)
  local keys = {}
  for k in pairs(cf[2]) do keys[#keys + 1] = k end
  table.sort(keys)
  local o = {}
  for _, k in ipairs(keys) do
    local v = cf[2][k]
    o[#o + 1] = k .. "=" .. (type(v) == "table" and "{...}" or tostring(v))
  end
  local C = cf.C or 1
  return string.format("%s %s, C=%d%s%s%s", cf[1], table.concat(o, " "), C,
    cf.lab and ", label map" or cf.soft and ", soft target" or "",
    cf.mask and (", mask " .. cf.mask) or "", cf.mild and ", mild logits" or "")
end

-- a list of C values from 0.5 to 1.5
local function ramp(C)
  local r = {}
  for c = 1, C do r[c] = 0.5 + (c - 1) / math.max(C - 1, 1) end
  return r
end

-- spatial sizes: below, at and above 1, 2 and 3 vectors of 8, a block edge
local SIZES = { 1, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24, 25, 63, 1000, 16385 }

describe("loss backends against scalar", function()
  for ci, cf in ipairs(configs) do
    local name, opts = cf[1], cf[2]
    H.simd_it(it, pending, describe_case(cf), function(b)
      local C = cf.C or 1
      local sizes = C > 64 and { 1, 7, 9, 33, 1000 } or SIZES
      for si, S in ipairs(sizes) do
        segloss.seed(ci * 100 + si)
        local shape = { 2, C, S }
        local act = opts.activation
        local x = act == "none" and T.rand(shape) or T.randn(shape) * (cf.mild and 1.5 or 4)
        if act ~= "none" and si % 3 == 0 and not cf.mild then x = x * 10 end -- saturated logits
        local t = cf.lab and labels(shape) or cf.soft and T.rand(shape) or rand_bin(shape, 0.2)
        if cf.lab and act ~= "softmax" then t = t:onehot(C) end
        local o = {}
        for k, v in pairs(opts) do
          o[k] = v
          if v == "ramp" then o[k] = ramp(C) end
          if v == "half-ramp" then -- 0.25 .. 0.75
            o[k] = ramp(C)
            for c = 1, C do o[k][c] = o[k][c] / 2 end
          end
        end
        if cf.mask == "pix" then o.mask = rand_bin({ 2, 1, S }, 0.8)
        elseif cf.mask == "full" then o.mask = rand_bin(shape, 0.8) end
        compare(name, x, t, o, b)
      end
    end)
  end
end)

-- Weighted cross-entropy over 70 classes, label maps: value and gradient
-- against a reference written here in double precision, on every backend
-- (the per-class arrays of more than 64 classes live on the heap).
describe("more than 64 classes", function()
  H.backend_it(it, pending, "ce softmax with 70 class weights matches a double-precision reference", function()
    local N, C, S = 2, 70, 37
    segloss.seed(70)
    local x = T.randn(N, C, S) * 3
    local lab = labels({ N, C, S })
    local w = ramp(C)
    local loss, g = segloss.ce(x, lab, { activation = "softmax", weight = w })
    local xt, lt, gt = x:totable(), lab:totable(), g:totable()
    local ref, gmax, err = 0, 0, 0
    for n = 1, N do
      for s = 1, S do
        local mx = -math.huge
        for c = 1, C do mx = math.max(mx, xt[n][c][s]) end
        local sum = 0
        for c = 1, C do sum = sum + math.exp(xt[n][c][s] - mx) end
        local y = lt[n][1][s] + 1
        ref = ref - w[y] * (xt[n][y][s] - mx - math.log(sum))
        for c = 1, C do
          -- dl/dx_c = p_c w_y - w_c [c = y], over N S pixels
          local p = math.exp(xt[n][c][s] - mx) / sum
          local want = (p * w[y] - (c == y and w[c] or 0)) / (N * S)
          gmax = math.max(gmax, math.abs(want))
          err = math.max(err, math.abs(gt[n][c][s] - want))
        end
      end
    end
    ref = ref / (N * S)
    assert.is_true(math.abs(loss - ref) <= 1e-6 * ref, string.format("loss %.9g vs %.9g", loss, ref))
    assert.is_true(err <= 1e-5 * gmax, string.format("gradient error %.3g of %.3g", err, gmax))
  end)
end)
