-- The module table, backends, threads, the PRNG and the environment.
local segloss = require "segloss"
local H = require "helpers"

local function lua_with_env(env, code)
  -- a child lua5.4 with the in-tree paths and some environment
  local cmd = string.format(
    "%s LUA_PATH_5_4='lua/?.lua;lua/?/init.lua;;' LUA_CPATH_5_4='%s;;' lua5.4 -e %q 2>&1",
    env, package.cpath:match("^([^;]+)"), code)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

describe("segloss module", function()
  it("has a semantic version", function()
    assert.matches("^segloss %d+%.%d+%.%d+$", segloss._VERSION)
    assert.equal("segloss 0.1.0", segloss._VERSION)
  end)

  it("lists the backends this CPU runs, best first, scalar last", function()
    local bs = segloss.backends()
    assert.is_true(#bs >= 1)
    assert.equal("scalar", bs[#bs])
    assert.equal(bs[1], segloss.backend())
    local known = segloss.core.known_backends()
    for _, b in ipairs(bs) do
      local found = false
      for _, k in ipairs(known) do found = found or k == b end
      assert.is_true(found)
    end
  end)

  it("switches backends and refuses unknown ones", function()
    local prev = segloss.backend()
    for _, b in ipairs(segloss.backends()) do
      segloss.set_backend(b)
      assert.equal(b, segloss.backend())
    end
    segloss.set_backend(prev)
    H.errors("segloss.set_backend: ", { 'unknown backend "avx512"', "known: " },
      segloss.set_backend, "avx512")
    assert.equal(prev, segloss.backend())
  end)

  it("sets the thread count, 1 to 1024", function()
    local prev = segloss.threads()
    assert.is_true(prev >= 1)
    segloss.set_threads(3)
    assert.equal(3, segloss.threads())
    segloss.set_threads(prev)
    H.errors("segloss.set_threads: ", { "n must be an integer in 1..1024, got 0" },
      segloss.set_threads, 0)
  end)

  it("defaults to one thread per core", function()
    local out = lua_with_env("", 'local s=require"segloss"; io.write(s.threads(), " ", s.core.ncpu())')
    local t, n = out:match("^(%d+) (%d+)$")
    assert.is_not_nil(t, out)
    assert.equal(n, t)
  end)

  it("reads SEGLOSS_BACKEND and SEGLOSS_THREADS at load", function()
    local out = lua_with_env("SEGLOSS_BACKEND=scalar SEGLOSS_THREADS=3",
      'local s=require"segloss"; io.write(s.backend(), " ", s.threads())')
    assert.equal("scalar 3", out)
  end)

  it("refuses a bad SEGLOSS_BACKEND or SEGLOSS_THREADS at load", function()
    local out, ok = lua_with_env("SEGLOSS_BACKEND=fast", 'require"segloss"')
    assert.is_falsy(ok)
    assert.truthy(out:find('segloss (SEGLOSS_BACKEND): unknown backend "fast"', 1, true), out)
    out, ok = lua_with_env("SEGLOSS_THREADS=two", 'require"segloss"')
    assert.is_falsy(ok)
    assert.truthy(out:find('segloss (SEGLOSS_THREADS): must be an integer in 1..1024, got "two"', 1, true), out)
  end)

  it("seeds the PRNG: the same seed gives the same stream", function()
    segloss.seed(42)
    local a = segloss.tensor.rand(1000):totable()
    segloss.seed(42)
    local b = segloss.tensor.rand(1000):totable()
    assert.same(a, b)
    segloss.seed(43)
    local c = segloss.tensor.rand(1000):totable()
    assert.are_not.same(a, c)
  end)

  it("draws uniform [0,1) and standard normal numbers", function()
    segloss.seed(7)
    local n = 200000
    local u = segloss.tensor.rand(n)
    assert.is_true(u:min() >= 0 and u:max() < 1)
    assert.near(0.5, u:mean(), 5 * math.sqrt(1 / 12 / n))
    local z = segloss.tensor.randn(n)
    local m = z:mean()
    local v = z:clone():pow(2):mean() - m * m
    assert.near(0, m, 5 / math.sqrt(n))
    assert.near(1, v, 5 * math.sqrt(2 / n))
    -- tails: P(|z| > 3) = 0.0027
    local t = z:totable()
    local far = 0
    for i = 1, n do if math.abs(t[i]) > 3 then far = far + 1 end end
    assert.near(0.0027 * n, far, 5 * math.sqrt(0.0027 * n))
  end)

  it("gives the same random stream on every backend and thread count", function()
    local ref
    for _, b in ipairs(segloss.backends()) do
      segloss.set_backend(b)
      for _, t in ipairs { 1, 2, 3 } do
        H.with_threads(t, function()
          segloss.seed(99)
          local x = segloss.tensor.randn(3, 5, 7):totable()
          ref = ref or x
          assert.same(ref, x)
        end)
      end
    end
    segloss.set_backend(segloss.backends()[1])
  end)
end)
