-- segloss.tensor: construction, shape, elements, views, printing, math.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

describe("segloss.tensor", function()
  describe("constructors", function()
    it("zeros/ones take dimensions or a table", function()
      local a = T.zeros(2, 1, 4, 5)
      local b = T.zeros { 2, 1, 4, 5 }
      assert.same({ 2, 1, 4, 5 }, a:shape())
      assert.same(a:shape(), b:shape())
      assert.equal(40, a:numel())
      assert.equal(40, #a)
      assert.equal(4, a:dim())
      assert.equal(0, a:sum())
      assert.equal(40, T.ones(2, 1, 4, 5):sum())
      assert.same({ 7 }, T.ones(7):shape())
      assert.same({ 1, 2, 1, 2, 3 }, T.zeros(1, 2, 1, 2, 3):shape())
    end)

    it("accepts integral floats as dimensions", function()
      assert.same({ 2, 3 }, T.zeros(2.0, 3.0):shape())
    end)

    it("full fills with a value", function()
      local t = T.full({ 3, 2 }, -1.5)
      assert.same({ { -1.5, -1.5 }, { -1.5, -1.5 }, { -1.5, -1.5 } }, t:totable())
    end)

    it("from infers the shape of nested tables", function()
      local t = T.from { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }
      assert.same({ 2, 2, 2 }, t:shape())
      assert.equal(7, t:get(2, 2, 1))
      assert.same({ { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }, t:totable())
    end)

    it("from takes a flat table and a shape", function()
      local t = T.from({ 1, 2, 3, 4, 5, 6 }, { 2, 3 })
      assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
    end)

    it("stores float32: values round to the nearest float", function()
      local t = T.from { 0.1, 1 / 3, 16777217, 1e-46, 3.4028235e38, math.huge }
      local back = t:totable()
      assert.equal(string.unpack("<f", string.pack("<f", 0.1)), back[1])
      assert.equal(16777216, back[3])
      assert.equal(0, back[4])
      assert.equal(3.4028234663852886e38, back[5]) -- rounds to FLT_MAX, no overflow
      assert.equal(math.huge, back[6])             -- an infinity given is kept
    end)

    it("istensor tells tensors apart", function()
      assert.is_true(T.istensor(T.zeros(1)))
      assert.is_false(T.istensor({}))
      assert.is_false(T.istensor(io.stdout))
    end)
  end)

  describe("elements", function()
    it("get and set use 1-based indices", function()
      local t = T.zeros(2, 3, 4)
      t:set(2, 3, 4, 9.5)
      t:set(1, 1, 1, -2)
      assert.equal(9.5, t:get(2, 3, 4))
      assert.equal(-2, t:get(1, 1, 1))
      assert.equal(7.5, t:sum())
      -- row-major: the last element
      assert.equal(9.5, t:reshape(24):get(24))
    end)

    it("set returns the tensor, fill and copy too", function()
      local t = T.zeros(2, 2)
      assert.equal(t, t:set(1, 1, 1))
      assert.equal(t, t:fill(3))
      assert.equal(12, t:sum())
      local u = T.ones(2, 2)
      assert.equal(t, t:copy(u))
      assert.equal(4, t:sum())
    end)

    it("size gives one dimension, or all", function()
      local t = T.zeros(2, 3, 4)
      assert.equal(3, t:size(2))
      assert.same({ 2, 3, 4 }, t:size())
    end)

    it("clone copies the elements", function()
      local a = T.from { 1, 2, 3 }
      local b = a:clone()
      b:set(1, 10)
      assert.equal(1, a:get(1))
      assert.equal(10, b:get(1))
    end)
  end)

  describe("views", function()
    it("reshape shares storage and infers one -1", function()
      local a = T.from { { 1, 2, 3 }, { 4, 5, 6 } }
      local v = a:reshape(3, -1)
      assert.same({ 3, 2 }, v:shape())
      v:set(3, 2, 60)
      assert.equal(60, a:get(2, 3))
      assert.same({ 1, 6 }, a:reshape { 1, 6 }:shape())
    end)

    it("a view keeps its base alive", function()
      local v
      do
        local a = T.from { 1, 2, 3, 4 }
        v = a:reshape(2, 2):reshape(4):reshape(1, 4)
      end
      collectgarbage()
      collectgarbage()
      -- churn the allocator so a freed base would be overwritten
      for _ = 1, 50 do local _ = T.full({ 4 }, -7) end
      collectgarbage()
      assert.same({ { 1, 2, 3, 4 } }, v:totable())
    end)

    it("the garbage collector sees the size of the elements", function()
      collectgarbage()
      collectgarbage()
      local before = collectgarbage("count")
      local t = T.zeros(1024, 1024) -- 4 MiB
      local after = collectgarbage("count")
      assert.is_true(after - before >= 4096, "GC saw " .. (after - before) .. " KiB")
      assert.equal(1024 * 1024, t:numel())
    end)

    it("elements are 64-byte aligned", function()
      -- the address of the data is not exposed; the kernels assume nothing
      -- about alignment, but allocation must be stable across many sizes
      for n = 1, 70 do
        local t = T.full({ n }, n)
        assert.equal(n * n, t:sum())
      end
    end)
  end)

  describe("reductions", function()
    it("sum, mean, min and max", function()
      local t = T.from { { 1, -2, 3.5 }, { 4, 0.25, -6 } }
      assert.equal(0.75, t:sum())
      assert.equal(0.125, t:mean())
      assert.equal(-6, t:min())
      assert.equal(4, t:max())
    end)

    it("min and max are NaN when an element is NaN", function()
      local t = T.from { 1, 0 / 0, 3 }
      assert.is_true(t:min() ~= t:min())
      assert.is_true(t:max() ~= t:max())
    end)

    it("sum accumulates in double", function()
      -- 2^24 ones: a float accumulator would stop at 16777216
      local n = 16777216 + 1000
      assert.equal(n, T.ones(n):sum())
      -- large and small values: float accumulation would lose the small ones
      local t = T.full({ 100000 }, 1e-3)
      t:set(1, 1e7)
      local f = string.unpack("<f", string.pack("<f", 1e-3)) -- 1e-3 in float32
      assert.near(1e7 + 99999 * f, t:sum(), 1e-6)
    end)
  end)

  describe("channel axis", function()
    it("softmax runs over dimension 2", function()
      local x = T.from { { { 1, 2 }, { 3, 4 }, { -1, 0 } } } -- (1, 3, 2)
      local p = x:softmax()
      for s = 1, 2 do
        local e = {}
        local z = 0
        for c = 1, 3 do
          e[c] = math.exp(x:get(1, c, s))
          z = z + e[c]
        end
        for c = 1, 3 do
          assert.near(e[c] / z, p:get(1, c, s), 1e-7)
        end
      end
    end)

    it("softmax is stable for large logits", function()
      local p = T.from { { 1000, 0, -1000 } }:softmax()
      assert.same({ { 1, 0, 0 } }, p:totable())
    end)

    it("sigmoid", function()
      local x = T.from { -100, -1, 0, 1, 100 }
      local p = x:sigmoid():totable()
      -- sigma(-100) = 3.72e-44 is subnormal: 27 * 2^-149 is the nearest float
      assert.equal(27 * 2 ^ -149, p[1])
      assert.near(1 / (1 + math.exp(1)), p[2], 3e-8)
      assert.equal(0.5, p[3])
      assert.equal(1, p[5])
    end)

    it("argmax gives a label map, ties to the first", function()
      local x = T.from { { { 5, 1, 2 }, { 5, 3, 1 }, { 0, 3, 9 } } } -- (1, 3, 3)
      local a = x:argmax()
      assert.same({ 1, 1, 3 }, a:shape())
      assert.same({ { { 0, 1, 2 } } }, a:totable())
    end)

    it("onehot expands a label map", function()
      local lab = T.from { { { 0, 2, 1, 2 } } } -- (1, 1, 4)
      local oh = lab:onehot(3)
      assert.same({ 1, 3, 4 }, oh:shape())
      assert.same({ { { 1, 0, 0, 0 }, { 0, 0, 1, 0 }, { 0, 1, 0, 1 } } }, oh:totable())
      assert.same(lab:totable(), oh:argmax():totable())
    end)
  end)

  describe("elementwise math", function()
    it("exp, log, log1p, softplus and pow", function()
      local x = T.from { 0.5, 1, 2 }
      local function check(t, f)
        local v = t:totable()
        for i = 1, 3 do
          local want = f(x:get(i))
          assert.is_true(H.ulps(v[i], string.unpack("<f", string.pack("<f", want))) <= 2,
            "element " .. i)
        end
      end
      check(x:exp(), math.exp)
      check(x:log(), math.log)
      check(x:log1p(), function(v) return math.log(1 + v) end)
      check(x:softplus(), function(v) return math.log(1 + math.exp(v)) end)
      check(x:pow(2.5), function(v) return v ^ 2.5 end)
    end)

    it("pow follows powf on negative bases", function()
      local t = T.from { -2, -0.5, 3 }
      assert.same({ 4, 0.25, 9 }, t:pow(2):totable())
      assert.same({ -32, -0.03125, 243 }, t:pow(5):totable())
      local r = t:pow(0.5):totable()
      assert.is_true(r[1] ~= r[1] and r[2] ~= r[2])
      assert.same({ 1, 1, 1 }, t:pow(0):totable())
    end)
  end)

  describe("tostring", function()
    it("shows a header and NumPy-like rows", function()
      local s = tostring(T.from { { 1, 2, 3 }, { 4, 5, 6 } })
      assert.equal("segloss.Tensor {2,3} float32\n[[1., 2., 3.],\n [4., 5., 6.]]", s)
    end)

    it("aligns fixed-point values", function()
      local s = tostring(T.from { 0.5, -0.25, 10 })
      assert.equal("segloss.Tensor {3} float32\n[ 0.5000, -0.2500, 10.0000]", s)
    end)

    it("uses scientific notation for wide ranges and shows nan/inf", function()
      local s = tostring(T.from { 1e-8, 1e8, 0 / 0, math.huge })
      assert.equal("segloss.Tensor {4} float32\n[1.0000e-08, 1.0000e+08,        nan,        inf]", s)
    end)

    it("separates blocks of 3-D tensors by a blank line", function()
      local s = tostring(T.zeros(2, 1, 2))
      assert.equal("segloss.Tensor {2,1,2} float32\n[[[0., 0.]],\n\n [[0., 0.]]]", s)
    end)

    it("elides the middle of large tensors", function()
      local t = T.zeros(2, 1, 100, 100)
      local s = tostring(t)
      assert.truthy(s:find("^segloss.Tensor {2,1,100,100} float32\n"))
      assert.truthy(s:find("0., 0., 0., ..., 0., 0., 0.", 1, true))
      assert.truthy(s:find("\n   ...,\n", 1, true))
      assert.is_true(#s < 2000, "length " .. #s)
      -- 1000 elements print in full, 1001 do not
      assert.falsy(tostring(T.zeros(1000)):find("...", 1, true))
      assert.truthy(tostring(T.zeros(1001)):find("...", 1, true))
    end)
  end)

  describe("views and copies along a dimension", function()
    local t
    before_each(function() t = T.from({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, { 2, 3, 2 }) end)

    it("narrow along the first dimension is a view that shares the elements", function()
      local v = t:narrow(1, 2, 1)
      assert.same({ 1, 3, 2 }, v:shape())
      assert.is_true(v:isview())
      assert.same({ { { 7, 8 }, { 9, 10 }, { 11, 12 } } }, v:totable())
      v:fill(0)
      assert.equal(0, t:get(2, 1, 1))
      assert.equal(6, t:get(1, 3, 2))
    end)

    it("select along the first dimension takes a sample out of a batch, as a view", function()
      local v = t:select(1, 2)
      assert.same({ 3, 2 }, v:shape())
      assert.same({ { 7, 8 }, { 9, 10 }, { 11, 12 } }, v:totable())
      v:set(1, 1, -1)
      assert.equal(-1, t:get(2, 1, 1))
      -- views of views reach any leading block, and keep their base alive
      local w = t:select(1, 1):select(1, 3)
      t = nil
      collectgarbage()
      collectgarbage()
      assert.same({ 5, 6 }, w:totable())
    end)

    it("along other dimensions they are copies (segloss tensors are contiguous)", function()
      local c = t:narrow(2, 2, 2)
      assert.is_false(c:isview())
      assert.same({ { { 3, 4 }, { 5, 6 } }, { { 9, 10 }, { 11, 12 } } }, c:totable())
      local s = t:select(3, 2)
      assert.same({ { 2, 4, 6 }, { 8, 10, 12 } }, s:totable())
      c:fill(0)
      assert.equal(3, t:get(1, 2, 1))
    end)

    it("check their arguments", function()
      H.errors("segloss.Tensor:narrow: ", { "dimension must be an integer in 1..3, got 4" }, t.narrow, t, 4, 1, 1)
      H.errors("segloss.Tensor:narrow: ", { "start must be an integer in 1..3, got 0" }, t.narrow, t, 2, 0, 1)
      H.errors("segloss.Tensor:narrow: ", { "length must be an integer in 1..2, got 3" }, t.narrow, t, 2, 2, 3)
      H.errors("segloss.Tensor:select: ", { "index must be an integer in 1..2, got 3" }, t.select, t, 1, 3)
      H.errors("segloss.Tensor:select: ", { "needs at least 2 dimensions, got shape {3} (use get for an element)" },
        T.zeros(3).select, T.zeros(3), 1, 1)
    end)
  end)

  describe("reductions along a dimension", function()
    local t
    before_each(function() t = T.from({ 1, 5, 3, 4, 2, 6, 0 / 0, 8, 9, 7, 11, 10 }, { 2, 3, 2 }) end)

    it("sum and mean keep the dimension with size 1 (Torch7), in double", function()
      local u = T.from({ 1, 2, 3, 4, 5, 6 }, { 2, 3 })
      assert.same({ { 5, 7, 9 } }, u:sum(1):totable())
      assert.same({ { 6 }, { 15 } }, u:sum(2):totable())
      assert.same({ { 2 }, { 5 } }, u:mean(2):totable())
      -- 2^24 + 1 + 1 needs more than float accumulation
      local big = T.from({ 16777216, 1, 1 }, { 3, 1 })
      assert.equal(16777218, big:sum(1):get(1, 1))
      assert.equal(16777218, big:sum()) -- as the whole-tensor sum
    end)

    it("max and min return the values and 1-based indices, the first on ties, NaN wins", function()
      -- t is {{{1,5},{3,4},{2,6}}, {{nan,8},{9,7},{11,10}}}
      local v, i = t:max(2)
      assert.same({ 2, 1, 2 }, v:shape())
      assert.same({ 3, 6 }, v:totable()[1][1])
      local v2 = v:totable()[2][1]
      assert.is_true(v2[1] ~= v2[1]) -- nan
      assert.equal(10, v2[2])
      assert.same({ { { 2, 3 } }, { { 1, 3 } } }, i:totable())
      local lo, j = t:min(3)
      assert.same({ 2, 3, 1 }, lo:shape())
      assert.same({ { 1 }, { 3 }, { 2 } }, lo:totable()[1])
      assert.same({ { { 1 }, { 1 }, { 1 } }, { { 1 }, { 2 }, { 2 } } }, j:totable())
      local e, k = T.from({ 2, 2, 1, 2 }, { 4 }):max(1)
      assert.same({ 2 }, e:totable())
      assert.same({ 1 }, k:totable())
    end)

    it("agree with the whole-tensor reductions on 1-D tensors", function()
      segloss.seed(3)
      local r = T.randn(1000)
      assert.near(r:sum(), r:sum(1):get(1), 1e-4) -- the same in float32
      assert.equal(r:max(), (r:max(1)):get(1))
      assert.equal(r:min(), (r:min(1)):get(1))
    end)
  end)

  describe("version counters", function()
    it("every change in place bumps the version of the elements, through views too", function()
      local t = T.zeros(2, 3)
      local v0 = t:version()
      local function bumps(f)
        local before = t:version()
        f()
        return t:version() > before
      end
      assert.is_true(bumps(function() t:fill(1) end))
      assert.is_true(bumps(function() t:set(1, 1, 2) end))
      assert.is_true(bumps(function() t:copy(T.ones(2, 3)) end))
      assert.is_true(bumps(function() t:add(1) end))
      assert.is_true(bumps(function() t:mul(T.ones(2, 3), 2) end))
      assert.is_true(bumps(function() t:reshape(6):fill(0) end))
      assert.is_true(bumps(function() t:select(1, 2):set(1, 5) end))
      assert.is_true(bumps(function() segloss.dice(T.rand(2, 1, 3), T.zeros(2, 1, 3), { out = t:reshape(2, 1,
        3) }) end))
      -- reading does not
      assert.is_false(bumps(function() return t:sum(), t:clone(), t + 1, t:sigmoid(), t:totable() end))
      assert.is_true(t:version() > v0)
      assert.equal(t:version(), t:reshape(3, 2):version())
    end)
  end)

  describe("float32 range", function()
    it("numbers beyond it are errors, not a silent Inf", function()
      local t = T.zeros(2)
      H.errors("segloss.tensor.from: ", { "element [2] must be within the float32 range", "got 1e+40" }, T.from,
        { 1, 1e40 })
      H.errors("segloss.tensor.from: ", { "element [1][2] must be within the float32 range" }, T.from, { { 1, -1e39 } })
      H.errors("segloss.tensor.from: ", { "element [2] must be within" }, T.from, { 1, 1e40 }, { 2 })
      H.errors("segloss.Tensor:set: ", { "value must be a number within the float32 range", "got 1e+40" }, t.set,
        t, 1, 1e40)
      H.errors("segloss.Tensor:fill: ", { "value must be a number within the float32 range" }, t.fill, t, -1e300)
      H.errors("segloss.tensor.full: ", { "value must be a number within the float32 range" }, T.full, { 2 }, 1e39)
      H.errors("segloss.Tensor:__mul: ", { "operand must be a number within the float32 range" },
        function() return t * 1e39 end)
      H.errors("segloss.Tensor:add: ", { "operand must be a number within the float32 range" }, t.add, t, 1e39)
      assert.same({ 0, 0 }, t:totable())
      -- what was given as Inf or NaN stays so, and float32 arithmetic may overflow
      t:set(1, math.huge)
      assert.equal(math.huge, t:get(1))
      assert.equal(math.huge, (T.from { 3e38 } * 2):get(1))
    end)
  end)
end)
