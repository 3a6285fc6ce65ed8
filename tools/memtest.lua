--- make memtest: the memory-limit checks too big or too slow for the suite
-- (spec/62-memory_spec.lua has their small versions).
--   1. 256 GiB and (MemAvailable + 1 GiB) are refused with an error;
--   2. a 2 GiB tensor (2^29 floats): Dice and BCE with gradients, its time,
--      the peak resident size, and the resident size after it is freed;
--   3. a 4 GiB zeros leaves the resident size alone until written;
--   4. 500 training steps of a small U-Net (base 8, depth 3, 2 x 1 x 32 x 32)
--      keep a flat resident size.
-- Progress on stderr, the last line a summary; exit 1 on any failure.
--   lua5.4 tools/memtest.lua [--steps 500]
local segloss = require "segloss"
local T = segloss.tensor

local steps, unet_only = 500, false
for i = 1, #arg do
  if arg[i] == "--steps" then steps = tonumber(arg[i + 1]) end
  if arg[i] == "--unet" then unet_only = true end
end

local procmem = dofile((arg[0]:match("^(.*/)") or "./") .. "procmem.lua")
local status, reset_peak = procmem.status, procmem.reset_peak
local function clock()
  local ok, sys = pcall(require, "system")
  if ok then return sys.monotime() end
  return os.time()
end
local function mib(b) return b / 2 ^ 20 end
local function say(fmt, ...) io.stderr:write("memtest: ", string.format(fmt, ...), "\n") end

local failures, summary = 0, {}
local function check(ok, fmt, ...)
  if not ok then
    failures = failures + 1
    say("FAIL " .. fmt, ...)
  end
end

if not unet_only then
  -- 1. refusals
  local m = segloss.memory()
  say("%s: %.1f GiB available (%s), checked from %d MiB, zero pages %s", "memory", m.available / 2 ^ 30,
    m.account, m.checked_from // 2 ^ 20, tostring(m.zero_pages))
  local ok, err = pcall(T.zeros, 2 ^ 36)
  check(not ok and err:find("^segloss.tensor.zeros: out of memory %(274877907088 bytes requested%)"),
    "256 GiB: %s", tostring(err))
  say("(1/4) 256 GiB refused: %s", tostring(err))
  local over = math.floor((m.available + 2 ^ 30) / 4)
  ok, err = pcall(T.zeros, over)
  check(not ok and err:find("available"), "available + 1 GiB: %s", tostring(err))
  say("(1/4) available + 1 GiB (%d bytes) refused: %s", over * 4, tostring(err))
  summary[#summary + 1] = string.format("refused %.1f GiB (available + 1 GiB)", over * 4 / 2 ^ 30)

  -- 2. a 2 GiB tensor
  local need = 3 * 2 ^ 31 + 2 ^ 30
  if m.available < need then
    say("(2/4) SKIP the 2 GiB run: %.1f GiB available, %.1f GiB needed", m.available / 2 ^ 30, need / 2 ^ 30)
    summary[#summary + 1] = "2 GiB run skipped (memory)"
  else
    collectgarbage()
    local rss0 = status("VmRSS")
    reset_peak()
    local t0 = clock()
    segloss.seed(1)
    local n = 2 ^ 29
    local x, t = T.rand(1, 1, n), T.rand(1, 1, n)
    local t1 = clock()
    say("(2/4) x and t, 2 GiB each: %.1f s", t1 - t0)
    local ld, g = segloss.dice(x, t, { activation = "sigmoid" })
    local t2 = clock()
    say("(2/4) dice with gradient: %.6f, %.1f s", ld, t2 - t1)
    local lb = segloss.bce(x, t, { activation = "sigmoid", out = g })
    local t3 = clock()
    say("(2/4) bce with gradient into the same out: %.6f, %.1f s", lb, t3 - t2)
    check(ld == ld and lb == lb and ld > 0 and lb > 0, "2 GiB losses: dice %s bce %s", ld, lb)
    check(g:numel() == n, "gradient numel %d", g:numel())
    local peak = status("VmHWM")
    x, t, g = nil, nil, nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    local rss1 = status("VmRSS")
    say("(2/4) peak resident %.0f MiB (%.0f MiB above the start; inputs + gradient = 6144 MiB); " ..
      "after freeing %.0f MiB above the start; %.1f s in all", mib(peak), mib(peak - rss0), mib(rss1 - rss0), t3 - t0)
    check(peak - rss0 < 6144 * 2 ^ 20 + 512 * 2 ^ 20, "2 GiB run peaked %.0f MiB above the start", mib(peak - rss0))
    check(rss1 - rss0 < 64 * 2 ^ 20, "2 GiB run: %.0f MiB still resident after freeing", mib(rss1 - rss0))
    summary[#summary + 1] = string.format("2 GiB run %.0f s peak +%.0f MiB freed to +%.0f MiB", t3 - t0,
      mib(peak - rss0), mib(rss1 - rss0))
  end

  -- 3. zero pages
  if m.available > 2 ^ 33 then
    collectgarbage()
    local r0 = status("VmRSS")
    local t0 = clock()
    local z = T.zeros(2 ^ 30)
    local dt = clock() - t0
    local r1 = status("VmRSS")
    z:set(1, 1)
    z:set(2 ^ 30, 1)
    local r2 = status("VmRSS")
    say("(3/4) zeros of 4 GiB: %.3f s, resident +%.1f MiB, +%.1f MiB after two writes", dt, mib(r1 - r0), mib(r2 - r0))
    check(r1 - r0 < 16 * 2 ^ 20, "4 GiB zeros made %.0f MiB resident", mib(r1 - r0))
    z = nil -- luacheck: ignore 311
    collectgarbage()
    summary[#summary + 1] = string.format("4 GiB zeros +%.1f MiB resident", mib(r1 - r0))
  else
    say("(3/4) SKIP zeros of 4 GiB: %.1f GiB available", m.available / 2 ^ 30)
  end
end

-- 4. a U-Net training loop, in a fresh process like a training run's: after
-- the big blocks above, Lua 5.4.4's collector starts its cycles late (a
-- freed 16 MiB string alone, full collections after it, lets garbage of
-- small objects rise to ~32 MiB before the next cycle, in plain Lua), so in
-- this process the loop's resident size climbs (+12 MiB over 500 steps)
-- towards that level while Lua's count after a full collection stays flat
if not unet_only then
  local env = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q ", package.path, package.cpath)
  local p = assert(io.popen(string.format("%slua5.4 %s --unet --steps %d 2>&1", env, arg[0], steps)))
  for line in p:lines() do
    io.stderr:write(line, "\n")
    local s4 = line:match("^memtest: unet summary: (.*)$")
    if s4 then summary[#summary + 1] = s4 end
    if line:match("^memtest: FAIL") then failures = failures + 1 end
  end
  if not p:close() and failures == 0 then failures = 1 end
else
  local nn = segloss.nn
  segloss.seed(2)
  local net = nn.UNet { input = 1, output = 1, base = 8, depth = 3, dims = 2, norm = "batch", act = "relu" }
  local opt = segloss.optim.Adam(net, { lr = 1e-3 })
  local crit = segloss.BCEDice { activation = "sigmoid" }
  local x = T.randn(2, 1, 32, 32)
  local t = (T.rand(2, 1, 32, 32)):reshape(2 * 32 * 32)
  for i = 1, t:numel() do t:set(i, t:get(i) < 0.05 and 1 or 0) end
  t = t:reshape(2, 1, 32, 32)
  local function step()
    net:zero_grad()
    local y = net:forward(x)
    local l = crit(y, t)
    net:backward(x, crit:backward(y, t))
    opt:step()
    return l
  end
  local warm = 50
  local t0 = clock()
  for _ = 1, warm do step() end
  collectgarbage()
  collectgarbage()
  local r0, c0 = status("VmRSS"), collectgarbage("count")
  local first, last
  for i = 1, steps do
    last = step()
    first = first or last
    if i % 100 == 0 then say("(4/4) U-Net step %d/%d, loss %.4f, resident %+.0f KiB", i, steps, last,
      (status("VmRSS") - r0) / 1024) end
  end
  collectgarbage()
  collectgarbage()
  local r1, c1 = status("VmRSS"), collectgarbage("count")
  local dt = clock() - t0
  say("(4/4) %d U-Net steps after %d warm-up: resident %+.0f KiB, Lua count %+.1f KiB, loss %.4f -> %.4f, %.1f s",
    steps, warm, (r1 - r0) / 1024, c1 - c0, first, last, dt)
  check(r1 - r0 <= 2 * 2 ^ 20, "U-Net loop: resident size grew by %.0f KiB", (r1 - r0) / 1024)
  check(c1 - c0 < 64, "U-Net loop: Lua's count grew by %.1f KiB", c1 - c0)
  say("unet summary: %d U-Net steps %+.0f KiB resident, %.0f s", steps, (r1 - r0) / 1024, dt)
  os.exit(failures == 0 and 0 or 1)
end

io.stderr:write(string.format("memtest: %s: %s\n", failures == 0 and "ok" or (failures .. " FAILED"),
  table.concat(summary, "; ")))
os.exit(failures == 0 and 0 or 1)
