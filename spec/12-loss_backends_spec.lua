-- Every SIMD backend against the scalar reference, on the same data: every
-- loss family, spatial sizes around 1, 2 and 3 vector tiles and the task
-- blocks, masks and label maps, and inputs that cross the fast paths' edges.
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
}

-- spatial sizes: below, at and above 1, 2 and 3 vectors of 8, a block edge
local SIZES = { 1, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24, 25, 63, 1000, 16385 }

describe("loss backends against scalar", function()
  for ci, cf in ipairs(configs) do
    local name, opts = cf[1], cf[2]
    H.backend_it(it, pending, name .. " " .. ci, function(b)
      if b == "scalar" then return end
      local C = cf.C or 1
      for si, S in ipairs(SIZES) do
        segloss.seed(ci * 100 + si)
        local shape = { 2, C, S }
        local act = opts.activation
        local x = act == "none" and T.rand(shape) or T.randn(shape) * 4
        if act ~= "none" and si % 3 == 0 then x = x * 10 end -- saturated logits
        local t = cf.lab and labels(shape) or cf.soft and T.rand(shape) or rand_bin(shape, 0.2)
        local o = {}
        for k, v in pairs(opts) do o[k] = v end
        if cf.mask == "pix" then o.mask = rand_bin({ 2, 1, S }, 0.8)
        elseif cf.mask == "full" then o.mask = rand_bin(shape, 0.8) end
        compare(name, x, t, o, b)
      end
    end)
  end
end)
