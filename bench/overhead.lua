-- bench/overhead.lua — what a call costs beyond its kernels: a criterion step
-- and the functional form on a small tensor, where the work is a few
-- microseconds and the binding's own work (arguments, options, buffers)
-- shows.
--
--   lua5.4 bench/overhead.lua [--runs 21] [--calls 1000] [--md build/bench_overhead.md]
--
-- Shapes: small (8,1,32,32) logits with a 0/1 target, as the issue
-- measures; tiny (1,1,4), where nearly all of a call is overhead. One
-- thread. Each round times --calls calls of every item in turn
-- (interleaved, so that a drifting machine affects all alike); the table
-- gives the median over --runs rounds of the time per call, in µs.
local segloss = require "segloss"
local U = dofile((arg[0]:match("^(.*)/") or ".") .. "/util.lua")
local T = segloss.tensor

local args = U.args({ runs = 21, calls = 1000 },
  "lua5.4 bench/overhead.lua [--runs N] [--calls K] [--md F]")
local calls = tonumber(args.calls)

local report = U.report()
local emit = report.emit

segloss.set_threads(1)
segloss.seed(11)

local SHAPES = { { "small", { 8, 1, 32, 32 } }, { "tiny", { 1, 1, 4 } } }
local S = { activation = "sigmoid" }

emit(string.format("%s, backend %s, %s; 1 thread, µs per call, median of %d rounds of %d calls",
  segloss._VERSION, segloss.backend(), os.date("%Y-%m-%d"), args.runs, calls))
emit("")
emit("| call | " .. SHAPES[1][1] .. " {8,1,32,32} µs | " .. SHAPES[2][1] .. " {1,1,4} µs |")
emit("|---|---:|---:|")

local rows, order = {}, {}
for si, sh in ipairs(SHAPES) do
  local shape = sh[2]
  local x = T.randn(shape) * 3
  local t = T.rand(shape)
  local f = t:reshape(t:numel())
  for i = 1, f:numel() do f:set(i, f:get(i) < 0.2 and 1 or 0) end
  local out = T.zeros(shape)
  local dice = segloss.Dice(S)
  local bce_dice = segloss.BCE(S) + segloss.Dice(S)
  local preset = segloss.BCEDice(S)
  local fopts = { activation = "sigmoid", out = out }
  local items = {
    ["crit(x, t), Dice"] = function() return dice(x, t) end,
    ["crit(x, t), BCE + Dice"] = function() return bce_dice(x, t) end,
    ["crit(x, t), BCEDice"] = function() return preset(x, t) end,
    ["crit:value(x, t), Dice"] = function() return dice:value(x, t) end,
    ["segloss.dice(x, t, opts)"] = function() return segloss.dice(x, t, fopts) end,
    ["segloss.bce_dice(x, t, opts)"] = function() return segloss.bce_dice(x, t, fopts) end,
  }
  local names = {}
  for name in pairs(items) do names[#names + 1] = name end
  table.sort(names)
  local batched = {}
  for _, name in ipairs(names) do
    local fn = items[name]
    batched[name] = function() for _ = 1, calls do fn() end end
  end
  U.progress("overhead, shape %s (%d/%d): %d rounds of %d calls x %d items", sh[1], si, #SHAPES, args.runs,
    calls, #names)
  local ms = U.medians(names, batched, args.runs, "overhead " .. sh[1])
  for _, name in ipairs(names) do
    if not rows[name] then
      rows[name] = {}
      order[#order + 1] = name
    end
    rows[name][si] = ms[name] * 1e3 / calls
  end
end
for _, name in ipairs(order) do
  emit(string.format("| %s | %.2f | %.2f |", name, rows[name][1], rows[name][2]))
end

report.write(args.md)
