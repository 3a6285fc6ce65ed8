-- bench/conv_choice.lua — why oneDNN: segloss's convolution forward (oneDNN,
-- bench/conv.c has all directions) against im2col + OpenBLAS SGEMM
-- (bench/conv_openblas.c) on the 3x3 layers of the 2-D benchmark U-Net at
-- (8, ., 64, 64), one thread, in alternating rounds, best against best.
--
--   make bench-conv-choice
local segloss = require "segloss"
local T, core = segloss.tensor, segloss.core
local ok_sys, system = pcall(require, "system")
local clock = ok_sys and system.monotime or os.clock

local exe = assert(arg[1], "usage: lua5.4 bench/conv_choice.lua <bench_conv_openblas>")
local rounds = tonumber(arg[2]) or 3
segloss.set_threads(1)

local LAYERS = { { 1, 16, 64 }, { 16, 16, 64 }, { 16, 32, 32 }, { 32, 32, 32 }, { 32, 64, 16 }, { 64, 64, 16 },
                 { 64, 32, 32 }, { 32, 16, 64 } }
local N = 8

local function segloss_ms(cin, cout, s)
  local plan = core.conv_plan { dims = 2, cin = cin, cout = cout, k = 3, stride = 1, transposed = false }
  local x, w, b = T.randn(N, cin, s, s), T.randn(cout, cin, 3, 3), T.zeros(cout)
  local y = T.zeros(N, cout, s, s)
  core.conv_forward(plan, x, w, b, y)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = clock()
    core.conv_forward(plan, x, w, b, y)
    best = math.min(best, clock() - t0)
  end
  return best * 1e3
end

local function openblas_ms(cin, cout, s)
  local p = assert(io.popen(string.format("%s %d %d %d %d %d 5", exe, N, cin, cout, s, s)))
  local v = tonumber(p:read("a"))
  p:close()
  return assert(v, "bench_conv_openblas failed")
end

local best = {}
for r = 1, rounds do
  io.stderr:write(string.format("bench: convolution choice, round %d/%d\n", r, rounds))
  for i, l in ipairs(LAYERS) do
    local a, b = segloss_ms(table.unpack(l)), openblas_ms(table.unpack(l))
    best[i] = best[i] or { math.huge, math.huge }
    best[i][1], best[i][2] = math.min(best[i][1], a), math.min(best[i][2], b)
  end
end
print("| layer (N = 8) | oneDNN (segloss) ms | im2col + OpenBLAS ms | OpenBLAS / oneDNN |")
print("|---|---|---|---|")
local sa, sb = 0, 0
for i, l in ipairs(LAYERS) do
  print(string.format("| %d→%d, %dx%d | %.2f | %.2f | %.1f× |", l[1], l[2], l[3], l[3], best[i][1], best[i][2],
    best[i][2] / best[i][1]))
  sa, sb = sa + best[i][1], sb + best[i][2]
end
print(string.format("| all | %.2f | %.2f | %.1f× |", sa, sb, sb / sa))
