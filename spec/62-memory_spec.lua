-- At the memory limit: a request larger than the system can give is a Lua
-- error naming the function and the bytes (never left to the OOM killer),
-- big zeroed tensors stay unwritten until used, collectgarbage("count")
-- includes the tensors, and loss loops keep a flat resident size. The big
-- runs (a 2 GiB tensor, a 500-step U-Net loop) are in make memtest.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local ENV = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q ", package.path, package.cpath)
-- under AddressSanitizer freed memory waits in quarantine (resident) and the
-- allocator keeps its own pages: resident sizes say nothing there
local ASAN = (os.getenv("LD_PRELOAD") or ""):find("libasan") ~= nil

-- resident and virtual size in KiB, from /proc/self/statm
local function statm()
  local f = io.open("/proc/self/statm")
  if not f then return nil end
  local size, res = f:read("n", "n")
  f:close()
  return res * 4, size * 4
end

-- runs code in a fresh lua5.4 with env before it; returns its output (stdout and stderr) and success
local function run(env, code)
  local path = H.tmpname(".lua")
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(env .. " " .. ENV .. "lua5.4 " .. path .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  return out, ok
end

describe("a flat resident size", function()
  -- after a warm-up, the resident size of a long loop of calls grows by no
  -- more than 2 MiB; under ASan fewer steps, for the errors it would catch.
  -- (First in this file: after the big blocks below, glibc's raised mmap and
  -- trim thresholds let its heap settle a few MiB higher, once, over the
  -- first ~5000 steps.) Lua's own count, after full collections, must not
  -- grow at all, whatever the C heap does.
  local STEPS, WARM = ASAN and 1000 or 10000, 2000
  local function flat(step)
    for i = 1, WARM do step(i) end
    collectgarbage()
    collectgarbage()
    local before, count = statm(), collectgarbage("count")
    for i = 1, STEPS do step(i) end
    collectgarbage()
    collectgarbage()
    local after = statm()
    local more = collectgarbage("count") - count
    assert.is_true(more < 16, string.format("Lua's count grew by %.1f KiB over %d steps", more, STEPS))
    if before and not ASAN then
      assert.is_true(after - before <= 2048, string.format("resident size grew by %d KiB over %d steps",
        after - before, STEPS))
    end
  end

  it(STEPS .. " criterion steps (Dice + Focal, forward and backward)", function()
    segloss.seed(3)
    local x, t = T.randn(2, 1, 8, 8), H.bin({ 2, 1, 8, 8 }, 0.3)
    local crit = segloss.Dice { activation = "sigmoid" } + 0.5 * segloss.Focal { activation = "sigmoid", gamma = 2 }
    local calls = 0
    flat(function()
      local l, g = crit(x, t)
      assert(l == l and g:numel() == 128)
      calls = calls + 1
    end)
    assert.equal(WARM + STEPS, calls)
  end)

  it(STEPS .. " functional calls cycling through every loss of the registry, with gradients", function()
    segloss.seed(4)
    local cases = {}
    for _, d in ipairs(H.losses()) do
      local act = H.act_for(d)
      local C = act == "softmax" and 3 or 1
      local x = T.randn(2, C, 8, 8)
      if act == "none" and not d.real_x then x = x:sigmoid() end
      local t = C == 3 and H.labels({ 2, 3, 8, 8 }) or H.bin({ 2, 1, 8, 8 }, 0.3)
      cases[#cases + 1] = { segloss[d.name], x, t, { activation = act } }
    end
    assert.is_true(#cases >= 20)
    local ran = {}
    flat(function(i)
      local k = (i - 1) % #cases + 1
      local c = cases[k]
      local l, g = c[1](c[2], c[3], c[4])
      assert(l == l and g:numel() == c[2]:numel())
      ran[k] = (ran[k] or 0) + 1
    end)
    for k = 1, #cases do assert.is_true(ran[k] >= STEPS // #cases, "loss " .. k .. " ran " .. ran[k]) end
  end)
end)

describe("what one allocation can get", function()
  it("reads MemAvailable + SwapFree and the room under each memory cgroup limit", function()
    local base = "spec/fixtures/mem/"
    local plain = segloss.memory(base .. "plain")
    assert.equal(20000000 * 1024 + 1048576 * 1024, plain.available)
    assert.equal("MemAvailable 19.1 GiB + SwapFree 1.0 GiB", plain.account)
    -- v2: the job's memory.max 2 GiB - memory.current 1 GiB + inactive_file 256 MiB
    local v2 = segloss.memory(base .. "v2")
    assert.equal(2 ^ 31 - 2 ^ 30 + 2 ^ 28, v2.available)
    assert.matches("the memory cgroup's limit leaves 1.2 GiB (MemAvailable 8.0 GiB + SwapFree 1.0 GiB)",
      v2.account, 1, true)
    -- a parent's tighter limit wins (1 GiB - 900 MiB)
    assert.equal(2 ^ 30 - 900 * 2 ^ 20, segloss.memory(base .. "v2-parent").available)
    -- v1: memory.limit_in_bytes 4 GiB - memory.usage_in_bytes 3 GiB; its
    -- ancestors' "no limit" (2^63 rounded to pages) is no limit
    assert.equal(2 ^ 30, segloss.memory(base .. "v1").available)
    -- nothing to read: no limit known
    local none = segloss.memory(base .. "absent")
    assert.is_true(none.available >= 2 ^ 63)
  end)

  it("this process: a figure, the threshold, and calloc'd zero pages under lauxlib's allocator", function()
    local m = segloss.memory()
    assert.equal(64 * 2 ^ 20, m.checked_from)
    if not io.open("/proc/meminfo") then
      pending("no /proc/meminfo")
      return
    end
    assert.is_true(m.available > 0 and m.available < 2 ^ 62, tostring(m.available))
    assert.matches("MemAvailable", m.account)
    -- (under make asan's full suite zero_pages was false, alone true: not
    -- yet explained, see the issue 13 report; only the normal build holds it)
    if not ASAN then
      assert.is_true(m.zero_pages, "lua5.4 runs luaL_newstate's allocator: big userdata come from calloc")
    end
    H.errors("segloss.memory: ", { "root must be a string, got 1" }, segloss.memory, 1)
    H.errors("segloss.memory: ", { "expected at most 1 argument, got 2" }, segloss.memory, "a", "b")
  end)
end)

describe("over the limit", function()
  it("256 GiB is an error naming the function, the bytes and what is available", function()
    H.errors("segloss.tensor.zeros: ", { "out of memory (274877907088 bytes requested): ", " available: " },
      T.zeros, 2 ^ 36)
    H.errors("segloss.tensor.ones: ", { "out of memory (274877907088 bytes requested)" }, T.ones, 2 ^ 36)
    H.errors("segloss.tensor.rand: ", { "out of memory (274877907088 bytes requested)" }, T.rand, { 2 ^ 18, 2 ^ 18 })
  end)

  it("1 GiB more than available is refused before it is made, whatever overcommit allows", function()
    local m = segloss.memory()
    if m.available >= 2 ^ 60 then
      pending("no /proc/meminfo: nothing to compare with")
      return
    end
    -- zeros, whose pages stay unwritten: were the check gone, this would
    -- succeed under overcommit without touching memory, and fail the spec
    local n = math.floor((m.available + 2 ^ 30) / 4)
    H.errors("segloss.tensor.zeros: ", { string.format("out of memory (%d bytes requested)", 4 * n + 144),
      " available" }, T.zeros, n)
    -- the state is sound afterwards
    assert.equal(6, T.ones(2, 3):sum())
  end)

  it("a kernel's scratch over SEGLOSS_MEMORY_LIMIT fails the call with an error; the next call works", function()
    -- 2^24 elements (64 MiB tensors) under a 100 MB limit: the inputs fit,
    -- the scratch of the distance transforms (8 bytes an element), clDice
    -- and the Lovasz sort does not
    local out = run("SEGLOSS_MEMORY_LIMIT=100000000", [[
      local s = require "segloss"
      local x, t = s.tensor.zeros(1, 1, 2 ^ 24), s.tensor.zeros(1, 1, 2 ^ 24)
      print(s.memory().available >= 2 ^ 26 and "room" or "no room")
      for _, f in ipairs { "hausdorff_dt", "cldice", "lovasz_hinge" } do
        print(f, pcall(s[f], x, t, { activation = f == "lovasz_hinge" and "none" or "sigmoid" }))
      end
      print("big", pcall(s.tensor.zeros, 2 ^ 25))
      print("small", s.dice(s.tensor.zeros(2, 1, 8, 8), s.tensor.ones(2, 1, 8, 8), { activation = "sigmoid" }))
    ]])
    if out:match("^no room") then
      pending("less than 64 MiB available")
      return
    end
    assert.matches("hausdorff_dt\tfalse\tsegloss.hausdorff_dt: out of memory\n", out, 1, true)
    assert.matches("cldice\tfalse\tsegloss.cldice: out of memory\n", out, 1, true)
    assert.matches("lovasz_hinge\tfalse\tsegloss.lovasz_hinge: out of memory\n", out, 1, true)
    assert.matches("big\tfalse\tsegloss.tensor.zeros: out of memory (134217872 bytes requested): " ..
      "95.4 MiB available: SEGLOSS_MEMORY_LIMIT\n", out, 1, true)
    assert.matches("small\t0.", out, 1, true)
  end)
end)

describe("zero pages and the collector", function()
  it("a small zeros is zero too (memset there)", function()
    do
      local a = T.ones(2 ^ 16)
      assert.equal(1, a:min())
    end
    collectgarbage()
    local z = T.zeros(2 ^ 16)
    assert.equal(0, z:min())
    assert.equal(0, z:max())
  end)

  it("count grows by a tensor's bytes, and big temporaries without collectgarbage stay bounded", function()
    collectgarbage()
    collectgarbage()
    local c0 = collectgarbage("count")
    do
      local t = T.ones(2 ^ 20) -- 4 MiB through the ordinary path
      local grew = collectgarbage("count") - c0
      assert.is_true(grew >= 4096 and grew < 4096 + 8, "count grew by " .. grew .. " KiB")
      assert.equal(1, t:get(1))
    end
    -- 200 temporaries of 64 MiB (12.5 GiB in all): the collector, paced by
    -- their real size, frees them as it goes. Lua's incremental collector
    -- (pause 200%) lets garbage reach about twice what survived its last
    -- cycle, or twice the biggest heap since (Lua 5.4.4 starts late after a
    -- big block was freed: docs/reliability.md): a few dozen temporaries,
    -- never all of them. (Virtual size: they are zeros and never resident.)
    local _, v0 = statm()
    local peak_count, peak_v, drops, last = 0, 0, 0, 0
    for _ = 1, 200 do
      local tmp = T.zeros(2 ^ 24)
      tmp:set(1, 1)
      local c = collectgarbage("count") - c0
      if c < last then drops = drops + 1 end
      last = c
      peak_count = math.max(peak_count, c)
      if v0 then peak_v = math.max(peak_v, select(2, statm()) - v0) end
    end
    local msg = string.format("count peaked %.0f MiB above the start, %d collections", peak_count / 1024, drops)
    -- the count holds every live temporary: below a third of them all, the
    -- collector freed the rest as it went (drops: the times it fell)
    assert.is_true(peak_count < 4 * 2 ^ 20, msg)
    if v0 and not ASAN then
      assert.is_true(peak_v < 4 * 2 ^ 20 + 2 ^ 19, string.format("virtual size peaked %d MiB above the start",
        peak_v // 1024))
    end
  end)

  it("a 1 GiB zeros stays out of the resident set until written, and the collector counts it", function()
    collectgarbage()
    collectgarbage()
    local r0 = statm()
    local c0 = collectgarbage("count")
    local t = T.zeros(2 ^ 28)
    local grew = collectgarbage("count") - c0
    -- the whole block, counted by Lua's allocator (KiB)
    assert.is_true(grew >= 2 ^ 20 and grew < 2 ^ 20 + 64, "count grew by " .. grew .. " KiB")
    if r0 and not ASAN then
      local r1 = statm()
      assert.is_true(r1 - r0 < 16 * 1024, string.format("resident size grew by %d KiB", r1 - r0))
    end
    assert.equal(0, t:get(2 ^ 28))
    assert.equal(0, t:get(1))
    t:set(2 ^ 27, 5) -- one page written (reading it all would map it all)
    assert.equal(5, t:get(2 ^ 27))
    t = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_true(collectgarbage("count") - c0 < 1024)
  end)
end)
