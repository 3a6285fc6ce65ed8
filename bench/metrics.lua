-- bench/metrics.lua — segloss.metrics.evaluate (overlap, HD95, ASSD, NSD) on
-- a 128^3 pair of masks with realistic blobs, against the SciPy way on the
-- same masks in the same run (tools/bench_scipy_metrics.py writes them).
--
--   lua5.4 bench/metrics.lua [--dir build] [--runs 5] [--md F]
local segloss = require "segloss"
local U = dofile((arg[0]:match("^(.*)/") or ".") .. "/util.lua")
local T = segloss.tensor

local args = U.args({ dir = "build", runs = 5 }, "lua5.4 bench/metrics.lua [--dir D] [--runs N] [--md F]")

local ref = assert(U.json(args.dir .. "/bench_scipy_metrics.json"), "run tools/bench_scipy_metrics.py first")
local pred = T.load(args.dir .. "/metrics_pred.npy")
local target = T.load(args.dir .. "/metrics_target.npy")
local opts = { spacing = ref.spacing }

local report = U.report()
local emit, clock = report.emit, U.clock

emit(string.format("%s, backend %s, %s: metrics.evaluate on a {%s} pair (spacing %s), median of %d",
  segloss._VERSION, segloss.backend(), os.date("%Y-%m-%d"), table.concat(pred:shape(), ","),
  table.concat(ref.spacing, " x "), args.runs))
emit("")
emit("| threads | segloss ms | SciPy ms (1 thread) | speed-up | hd95 | assd | dice |")
emit("|---:|---:|---:|---:|---:|---:|---:|")
for _, th in ipairs { 1, 2 } do
  U.progress("metrics, %d thread%s (%d/2): %d runs ...", th, th == 1 and "" or "s", th, args.runs)
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

report.write(args.md)
