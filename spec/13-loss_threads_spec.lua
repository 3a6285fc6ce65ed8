-- The same bits for 1, 2 and 3 threads: the passes sum fixed blocks and
-- fold them in order, whatever the number of threads.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local bin = H.bin

local function bits(v) return string.pack("<d", v) end

local function same(a, b)
  if type(a) == "number" then return bits(a) == bits(b) end
  local d = a - b
  return d:max() == 0 and d:min() == 0
end

describe("losses and thread counts", function()
  local x1, t1, m1, x3, t3
  setup(function()
    segloss.seed(77)
    -- 12 tasks of (n, block) at C = 3; 4 tasks at C = 1
    x1 = T.randn(4, 1, 128, 128) * 3
    t1 = bin({ 4, 1, 128, 128 }, 0.05)
    m1 = bin({ 4, 1, 128, 128 }, 0.9)
    x3 = T.randn(4, 3, 128, 128) * 3
    local lab = T.rand(4, 1, 128, 128) * 3
    local f = lab:reshape(lab:numel())
    for i = 1, f:numel() do f:set(i, math.floor(f:get(i))) end
    t3 = lab
  end)

  local configs = {
    { "bce", "1", { activation = "sigmoid" } },
    { "bce", "1", { activation = "sigmoid", pos_weight = "auto", mask = true } },
    { "focal", "1", { activation = "sigmoid" } },
    { "dice", "1", { activation = "sigmoid" } },
    { "dice", "1", { activation = "sigmoid", batch = true, mask = true, soft_label = true } },
    { "tversky", "1", { activation = "sigmoid", reduction = "none" } },
    { "ce", "3", { activation = "softmax" } },
    { "focal", "3", { activation = "softmax" } },
    { "dice", "3", { activation = "softmax" } },
    { "generalized_dice", "3", { activation = "softmax" } },
    { "dice_focal", "3", { activation = "softmax" } },
    { "bce_dice", "1", { activation = "sigmoid" } },
  }
  for i, cf in ipairs(configs) do
    H.backend_it(it, pending, cf[1] .. " " .. i .. ": 1, 2 and 3 threads give the same bits", function()
      local x, t = x1, t1
      if cf[2] == "3" then x, t = x3, t3 end
      local opts = {}
      for k, v in pairs(cf[3]) do opts[k] = v end
      if opts.mask then opts.mask = m1 end
      local l1, g1 = H.with_threads(1, function() return segloss[cf[1]](x, t, opts) end)
      for _, n in ipairs { 2, 3 } do
        local l, g = H.with_threads(n, function() return segloss[cf[1]](x, t, opts) end)
        assert.is_true(same(l1, l), cf[1] .. ": loss differs with " .. n .. " threads")
        if g1 then assert.is_true(same(g1, g), cf[1] .. ": gradient differs with " .. n .. " threads") end
      end
    end)
  end
end)
