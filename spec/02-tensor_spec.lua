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
      local t = T.from { 0.1, 1 / 3, 16777217, 1e-46, 1e39 }
      local back = t:totable()
      assert.equal(string.unpack("<f", string.pack("<f", 0.1)), back[1])
      assert.equal(16777216, back[3])
      assert.equal(0, back[4])
      assert.equal(math.huge, back[5])
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
end)
