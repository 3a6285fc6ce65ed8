-- bench/metrics.lua — segloss.metrics.evaluate (overlap, HD95, ASSD, NSD) on
-- a 128^3 pair of masks with realistic blobs, against the SciPy way on the
-- same masks in the same run (tools/bench_scipy_metrics.py writes them).
--
--   lua5.4 bench/metrics.lua [--dir build] [--runs 5] [--md F]
local segloss = require "segloss"
local T = segloss.tensor
local ok_sys, system = pcall(require, "system")
local clock = ok_sys and system.monotime or os.clock

local args = { dir = "build", runs = 5 }
do
  local i = 1
  while arg[i] do
    local k = arg[i]:match("^%-%-(.+)$")
    assert(k and arg[i + 1], "usage: lua5.4 bench/metrics.lua [--dir D] [--runs N] [--md F]")
    args[k] = arg[i + 1]
    i = i + 2
  end
  args.runs = tonumber(args.runs)
end

local f = assert(io.open(args.dir .. "/bench_scipy_metrics.json"), "run tools/bench_scipy_metrics.py first")
local ref = require("cjson").decode(f:read("a"))
f:close()
local pred = T.load(args.dir .. "/metrics_pred.npy")
local target = T.load(args.dir .. "/metrics_target.npy")
local opts = { spacing = ref.spacing }

local lines = {}
local function emit(s)
  print(s)
  lines[#lines + 1] = s
end

emit(string.format("%s, backend %s, %s: metrics.evaluate on a {%s} pair (spacing %s), median of %d",
  segloss._VERSION, segloss.backend(), os.date("%Y-%m-%d"), table.concat(pred:shape(), ","),
  table.concat(ref.spacing, " x "), args.runs))
emit("")
emit("| threads | segloss ms | SciPy ms (1 thread) | speed-up | hd95 | assd | dice |")
emit("|---:|---:|---:|---:|---:|---:|---:|")
for _, th in ipairs { 1, 2 } do
  segloss.set_threads(th)
  local r
  local ts = {}
  for i = 1, args.runs + 1 do
    local t0 = clock()
    r = segloss.metrics.evaluate(pred, target, opts)
    if i > 1 then ts[#ts + 1] = clock() - t0 end
  end
  table.sort(ts)
  local ms = ts[(#ts + 1) // 2] * 1e3
  emit(string.format("| %d | %.1f | %.1f | %.1f× | %.4f | %.4f | %.4f |", th, ms, ref.ms, ref.ms / ms,
    r.hd95, r.assd, r.dice))
end
emit(string.format("| SciPy | | | | %.4f | %.4f | %.4f |", ref.hd95, ref.assd, ref.dice))

if args.md then
  local fh = assert(io.open(args.md, "w"))
  fh:write(table.concat(lines, "\n"), "\n")
  fh:close()
end
