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

  it("the threaded paths really run on several threads (threads_used)", function()
    local x = big:reshape(10, 10, 100000)
    local used = {}
    H.with_threads(3, function()
      local function note(name, f)
        f()
        used[name] = segloss.core.threads_used()
      end
      note("sum", function() return x:sum() end)
      note("min", function() return x:min() end)
      note("sigmoid", function() return x:sigmoid() end)
      note("softmax", function() return x:softmax() end)
      note("add", function() return x + x end)
      note("pow", function() return x:pow(2) end)
    end)
    for name, n in pairs(used) do assert.equal(3, n, name) end
    H.with_threads(1, function() x:sum() end)
    assert.equal(1, segloss.core.threads_used())
  end)
end)

-- OpenMP may give fewer threads than asked for (OMP_THREAD_LIMIT,
-- OMP_DYNAMIC): every driver must fold what its team really did. These run
-- in a fresh process, since OpenMP reads its environment once.
describe("threads when OpenMP gives fewer than asked for", function()
  local script = [[
    local segloss = require "segloss"
    local T = segloss.tensor
    segloss.seed(9)
    local x = T.randn(4, 3, 160, 160)
    local t = T.rand(4, 3, 160, 160):pow(8)
    local lab = T.randn(4, 3, 160, 160):argmax()
    local mask = T.randn(1, 3, 300, 300):argmax():reshape(300, 300)
    local function all()
      local r = { T.full({ 1000000 }, 5):min(), T.full({ 1000000 }, 5):max(), x:min(), x:max(),
        x:sum(), x:sigmoid():sum(), x:softmax():sum(), (x * x):sum(), x:pow(3):sum() }
      local l, g = segloss.dice_focal(x, t, { activation = "sigmoid" })
      r.team = segloss.core.threads_used()
      r[#r + 1], r[#r + 2] = l, g:sum()
      local m = segloss.metrics.evaluate(x, lab, { activation = "softmax" })
      r[#r + 1] = m.hd95
      r[#r + 1] = segloss.metrics.distance_transform(mask):sum()
      return r
    end
    segloss.set_threads(1)
    local one = all()
    segloss.set_threads(4)
    local four = all()
    local team = four.team
    for i = 1, #one do
      if string.pack("<d", one[i]) ~= string.pack("<d", four[i]) then
        print("result " .. i .. " differs: " .. one[i] .. " vs " .. four[i])
        os.exit(1)
      end
    end
    if four[1] ~= 5 or four[2] ~= 5 then print("min/max of 5s: " .. four[1] .. ", " .. four[2]) os.exit(1) end
    print("ok team " .. team)
  ]]

  local function run(env)
    local cmd = string.format("%s LUA_PATH_5_4=%q LUA_CPATH_5_4=%q lua5.4 -e %q 2>&1", env, package.path,
      package.cpath, script)
    local f = assert(io.popen(cmd))
    local out = f:read("a")
    f:close()
    return out
  end

  it("OMP_THREAD_LIMIT=1: the same results, on one thread", function()
    assert.equal("ok team 1\n", run("OMP_THREAD_LIMIT=1"))
  end)

  it("OMP_DYNAMIC=true: the same results", function()
    assert.matches("^ok team %d\n$", run("OMP_DYNAMIC=true"))
  end)

  it("the environment as usual: the same results, on four threads", function()
    assert.equal("ok team 4\n", run(""))
  end)
end)
