-- The same bits for 1, 2 and 3 threads: the passes sum fixed blocks and
-- fold them in order, whatever the number of threads. Every configuration
-- is large enough to be split (4 samples of 256 x 256: 16 tasks of one
-- block), and each asserts that more than one thread really ran.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local bin = H.bin

local same = H.same_bits

describe("losses and thread counts", function()
  local x1, t1, m1, x3, t3
  setup(function()
    segloss.seed(77)
    x1 = T.randn(4, 1, 256, 256) * 3
    t1 = bin({ 4, 1, 256, 256 }, 0.05)
    m1 = bin({ 4, 1, 256, 256 }, 0.9)
    x3 = T.randn(4, 3, 128, 128) * 3
    t3 = H.labels({ 4, 3, 128, 128 })
  end)

  local configs = {
    { "bce sigmoid", "bce", 1, { activation = "sigmoid" } },
    { "bce sigmoid pos_weight auto, mask", "bce", 1, { activation = "sigmoid", pos_weight = "auto", mask = true } },
    { "focal sigmoid", "focal", 1, { activation = "sigmoid" } },
    { "dice sigmoid", "dice", 1, { activation = "sigmoid" } },
    { "dice sigmoid batch, mask, soft_label", "dice", 1, { activation = "sigmoid", batch = true, mask = true,
      soft_label = true } },
    { "tversky sigmoid reduction none", "tversky", 1, { activation = "sigmoid", reduction = "none" } },
    { "ce softmax labels", "ce", 3, { activation = "softmax" } },
    { "focal softmax labels", "focal", 3, { activation = "softmax" } },
    { "dice softmax labels", "dice", 3, { activation = "softmax" } },
    { "generalized_dice softmax labels", "generalized_dice", 3, { activation = "softmax" } },
    { "dice_focal softmax labels", "dice_focal", 3, { activation = "softmax" } },
    { "bce_dice sigmoid", "bce_dice", 1, { activation = "sigmoid" } },
    { "bce sigmoid label_smoothing, pos_weight auto", "bce", 1, { activation = "sigmoid", label_smoothing = 0.1,
      pos_weight = "auto" } },
    { "ce softmax labels label_smoothing, ignore_index", "ce", 3, { activation = "softmax", label_smoothing = 0.1,
      ignore_index = 2 } },
    { "focal sigmoid ignore_index, mask", "focal", 1, { activation = "sigmoid", ignore_index = 1, mask = true } },
    { "dice softmax labels ignore_index", "dice", 3, { activation = "softmax", ignore_index = 0 } },
  }
  -- every loss of the registry: its defaults, for the one the list above lacks
  for _, d in ipairs(H.losses()) do
    local listed = false
    for _, cf in ipairs(configs) do listed = listed or cf[2] == d.name end
    if not listed then
      local act = H.act_for(d)
      configs[#configs + 1] = { d.name .. " " .. act .. " (defaults)", d.name, act == "softmax" and 3 or 1,
        { activation = act }, act == "none" and not d.real_x }
    end
  end
  for _, cf in ipairs(configs) do
    H.backend_it(it, pending, cf[1] .. ": 1, 2 and 3 threads give the same bits", function()
      local x, t = x1, t1
      if cf[3] == 3 then x, t = x3, t3 end
      if cf[5] then x = x:sigmoid() end -- activation "none" on probabilities
      local opts = {}
      for k, v in pairs(cf[4]) do opts[k] = v end
      if opts.mask then opts.mask = m1 end
      local l1, g1 = H.with_threads(1, function() return segloss[cf[2]](x, t, opts) end)
      assert.equal(1, segloss.core.threads_used())
      for _, n in ipairs { 2, 3 } do
        local l, g = H.with_threads(n, function() return segloss[cf[2]](x, t, opts) end)
        assert.equal(n, segloss.core.threads_used(), "threads that ran together")
        assert.is_true(same(l1, l), cf[1] .. ": loss differs with " .. n .. " threads")
        if g1 then assert.is_true(same(g1, g), cf[1] .. ": gradient differs with " .. n .. " threads") end
      end
    end)
  end
end)
