-- Determinism: the same bits for any thread count, on every backend.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local function bits(v) return string.pack("<d", v) end

describe("threads", function()
  local big
  setup(function()
    segloss.seed(2026)
    -- 1e7 elements of mixed magnitudes, so that the order of additions matters
    big = T.randn(10000000) * T.rand(10000000):pow(8) * 1e4
  end)

  H.backend_it(it, pending, "sum and mean over 1e7 elements are bit-identical for 1, 2 and 3 threads", function()
    local s1 = H.with_threads(1, function() return big:sum() end)
    for _, n in ipairs { 2, 3 } do
      local s = H.with_threads(n, function() return big:sum() end)
      assert.equal(bits(s1), bits(s), n .. " threads")
    end
    local m1 = H.with_threads(1, function() return big:mean() end)
    local m3 = H.with_threads(3, function() return big:mean() end)
    assert.equal(bits(m1), bits(m3))
  end)

  it("the order of additions matters for these data (the test can fail)", function()
    -- summing in float in another order gives another result
    local t = big:reshape(10000, 1000)
    local acc = 0.0
    local rows = t:totable()
    for j = 1000, 1, -1 do
      for i = 10000, 1, -1 do acc = acc + rows[i][j] end
    end
    assert.are_not.equal(bits(acc), bits(big:sum()))
  end)

  H.backend_it(it, pending, "min, max, elementwise maps and softmax are identical for 1, 2 and 3 threads", function()
    local x = big:reshape(10, 10, 100000)
    local function run()
      return { x:min(), x:max(), x:sigmoid():sum(), x:softmax():sum(), x:exp():max() }
    end
    local r1 = H.with_threads(1, run)
    for _, n in ipairs { 2, 3 } do
      assert.same(r1, H.with_threads(n, run))
    end
  end)
end)
