-- The Lua API fuzzer (fuzz/lua/api.lua): CI's short round with a fixed
-- seed, and a self-test that its checks catch the faults they look for.
package.path = "./?.lua;" .. package.path
local segloss = require "segloss"
local fuzz = require "fuzz.lua.api"
local check = require "fuzz.lua.check"
local targets = require "fuzz.lua.targets"

local CALLS = 2000
local SEED = 13

describe("the Lua API fuzzer", function()
  local st = fuzz.setup()

  it("has a generator for every public function (or a reason to skip it)", function()
    assert.same({}, st.missing)
    assert.is_true(#st.names >= 350, #st.names .. " functions fuzzed")
    -- a new function without a generator is caught
    segloss.tensor.brand_new = function() end
    local ok, st2 = pcall(fuzz.setup)
    segloss.tensor.brand_new = nil
    assert.is_true(ok, st2)
    assert.same({ "segloss.tensor.brand_new" }, st2.missing)
  end)

  it("writes call i of a seed as the same standalone source, whatever ran before", function()
    local n1, a = fuzz.call(st, SEED, 77)
    fuzz.call(st, SEED, 5)
    local n2, b = fuzz.call(st, SEED, 77)
    assert.equal(n1, n2)
    assert.equal(a, b)
    local _, c = fuzz.call(st, SEED + 1, 77)
    assert.not_equal(a, c)
    -- the repro runs on its own and prints the call's outcome
    local repro = fuzz.repro(a)
    assert.truthy(repro:find("print(pcall(f, ", 1, true))
    local out = {}
    local env = setmetatable({ print = function(...) out[#out + 1] = select("#", ...) end }, { __index = _G })
    local chunk = assert(load(repro, "=repro", "t", env))
    chunk()
    assert.equal(1, #out)
  end)

  describe("checks", function()
    check.init(segloss)
    local PRE = 'local segloss = require "segloss" local T = segloss.tensor\n'
    local function run(body, nan_ok)
      return check.run(PRE .. body, { "segloss.fake" }, nan_ok, true)
    end

    it("pass a well-behaved call", function()
      local outcome, findings = run([[
        local x = T.rand{2, 3}
        return "segloss.fake", function(a) return a:sum(), a:clone() end, table.pack(x), {}]])
      assert.equal("ok", outcome)
      assert.same({}, findings)
    end)

    it("catch a NaN result from finite inputs", function()
      local outcome, findings = run([[
        local x = T.rand{2, 3}
        return "segloss.fake", function(a) return a:sum() * (0/0) end, table.pack(x), {}]])
      assert.equal("ok", outcome)
      assert.equal(1, #findings)
      assert.truthy(findings[1]:find("non-finite result", 1, true))
      -- in a tensor too, and an Inf
      local _, f2 = run([[
        local x = T.rand{2, 3}
        return "segloss.fake", function(a) local y = a:clone() y:set(2, 1, 1/0) return y end, table.pack(x), {}]])
      assert.equal(1, #f2)
      -- unless the function may answer NaN (elementwise math)
      local _, f3 = run([[
        local x = T.rand{2, 3}
        return "segloss.fake", function(a) return 0/0 end, table.pack(x), {}]], true)
      assert.same({}, f3)
    end)

    it("catch an input changed by a call that fails", function()
      local outcome, findings = run([[
        local x = T.rand{2, 3}
        local opts = {out = T.zeros(2, 3)}
        local function f(a) a:set(1, 1, 5) error("segloss.fake: no", 0) end
        return "segloss.fake", f, table.pack(x, opts), {}]])
      assert.equal("error", outcome)
      assert.equal(1, #findings)
      assert.truthy(findings[1]:find("arg1 changed by a call that failed", 1, true))
      -- out too, inside the options table
      local _, f2 = run([[
        local x = T.rand{2, 3}
        local opts = {out = T.zeros(2, 3)}
        return "segloss.fake", function(a, o) o.out:fill(1) error("segloss.fake: no", 0) end, table.pack(x, opts), {}]])
      assert.equal(1, #f2)
      assert.truthy(f2[1]:find("arg2.out changed", 1, true))
    end)

    it("catch an input other than out changed by a call that succeeds", function()
      local _, findings = run([[
        local x, y = T.rand{2, 3}, T.rand{2, 3}
        return "segloss.fake", function(a, o) a:fill(0) o.out:fill(1) return 1 end, table.pack(x, {out = y}), {}]])
      assert.equal(1, #findings)
      assert.truthy(findings[1]:find("arg1 changed by a successful call", 1, true))
      -- not when the generator said the call writes it (in place, out = x)
      local _, f2 = run([[
        local x = T.rand{2, 3}
        return "segloss.fake", function(a) a:fill(0) return 1 end, table.pack(x), {x}]])
      assert.same({}, f2)
    end)

    it("catch an error that does not name the function", function()
      for _, e in ipairs { '"x.lua:3: attempt to index a nil value"', "{}", '"segloss.other: no"' } do
        local outcome, findings = run(string.format([[
          return "segloss.fake", function() error(%s, 0) end, table.pack(), {}]], e))
        assert.equal("error", outcome)
        assert.equal(1, #findings, e)
        assert.truthy(findings[1]:find("does not name the function", 1, true))
      end
      local _, f2 = run([[return "segloss.fake", function() error("segloss.fake: bad x", 0) end, table.pack(), {}]])
      assert.same({}, f2)
    end)

    it("catch a raw Lua error while building the arguments", function()
      local outcome, findings = run("local x = nil + 1\nreturn 1")
      assert.equal("setup", outcome)
      assert.equal(1, #findings)
    end)
  end)

  it(string.format("finds nothing in %d calls of seed %d, over every backend and 1..4 threads", CALLS, SEED), function()
    local backend, threads = segloss.backend(), segloss.threads()
    local function listing()
      local p = io.popen("ls -A")
      local s = p:read("a")
      p:close()
      return s
    end
    local before = listing()
    local tot = fuzz.run({ seed = SEED, calls = CALLS, seconds = math.huge, max_findings = 5 }, st)
    -- garbage taken for a path wrote nothing that stayed in the current directory
    assert.equal(before, listing())
    segloss.set_backend(backend)
    segloss.set_threads(threads)
    segloss.core.debug_split(false)
    local msgs = {}
    for _, f in ipairs(tot.findings) do
      msgs[#msgs + 1] = string.format("call %d (%s): %s\n%s", f.i, f.name, f.what, fuzz.repro(f.src))
    end
    assert.equal(0, #tot.findings, table.concat(msgs, "\n"))
    -- it ran: every call, most of them to completion, some refused, most functions drawn
    assert.equal(CALLS, tot.calls)
    assert.is_true(tot.ok > CALLS / 2, tot.ok .. " calls succeeded")
    assert.is_true(tot.errors > CALLS / 10, tot.errors .. " calls failed cleanly")
    local drawn = 0
    for _ in pairs(tot.per) do drawn = drawn + 1 end
    assert.is_true(drawn >= 0.9 * #st.names, drawn .. " of " .. #st.names .. " functions drawn")
    for _, b in ipairs(segloss.backends()) do
      assert.is_true((tot.backends[b] or 0) > 0, "backend " .. b .. " used")
    end
    for k = 1, 4 do assert.is_true((tot.threads[k] or 0) > 0, k .. " threads used") end
  end)
end)

-- targets.SKIP says why each left-out function is left out
describe("the fuzzer's skip list", function()
  it("gives a reason for each entry, and each entry is public", function()
    local list = {}
    for _, n in ipairs(targets.list(segloss)) do list[n] = true end
    for n, why in pairs(targets.SKIP) do
      assert.is_true(list[n] == true, n .. " is not a public function")
      assert.is_true(#why > 10, n)
    end
  end)
end)
