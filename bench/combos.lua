-- bench/combos.lua — what fusion saves: combined criteria against their most
-- expensive single part, and against PyTorch composing the same parts.
--
--   lua5.4 bench/combos.lua [--torch build/bench_torch.json] [--runs 9]
--                           [--shapes A,B,C] [--threads 1,2] [--md F]
--
-- Criteria, as a training loop uses them (the gradient buffer reused), all
-- with activation "sigmoid"; at shape C the target is the one-hot of a label
-- map (multi-label). Target: a combination costs <= 1.3x its most expensive
-- part, since it takes the same two passes over memory.
local segloss = require "segloss"
local T = segloss.tensor
local ok_sys, system = pcall(require, "system")
local clock = ok_sys and system.monotime or os.clock

local args = { runs = 9, shapes = "A,B,C", threads = "1,2" }
do
  local i = 1
  while arg[i] do
    local k = arg[i]:match("^%-%-(.+)$")
    assert(k and arg[i + 1], "usage: lua5.4 bench/combos.lua [--torch F] [--runs N] [--shapes A,B,C] [--threads 1,2]")
    args[k] = arg[i + 1]
    i = i + 2
  end
  args.runs = tonumber(args.runs)
end

local SHAPES = { A = { 8, 1, 256, 256 }, B = { 16, 1, 512, 512 }, C = { 2, 4, 64, 128, 128 } }
local torch
if args.torch then
  local f = io.open(args.torch)
  if f then
    torch = require("cjson").decode(f:read("a"))
    f:close()
  end
end

-- Medians of interleaved rounds: each round times every item once, so that
-- a machine whose speed drifts affects all items alike.
local function medians(items)
  local ts = {}
  for name, f in pairs(items) do
    ts[name] = {}
    f()
    f()
  end
  for r = 1, args.runs do
    for name, f in pairs(items) do
      local t0 = clock()
      f()
      ts[name][r] = clock() - t0
    end
  end
  local out = {}
  for name, v in pairs(ts) do
    table.sort(v)
    out[name] = v[(#v + 1) // 2] * 1e3
  end
  return out
end

local function split(s)
  local out = {}
  for v in s:gmatch("[^,]+") do out[#out + 1] = v end
  return out
end

local md = {}
local function emit(line)
  print(line)
  md[#md + 1] = line
end

local S = { activation = "sigmoid" }
local singles = {
  BCE = segloss.BCE(S), Dice = segloss.Dice(S), Focal = segloss.Focal(S), Tversky = segloss.Tversky(S),
}
local combos = {
  { "bce+dice", segloss.BCE(S) + segloss.Dice(S), { "BCE", "Dice" } },
  { "dice+focal", segloss.Dice(S) + segloss.Focal(S), { "Dice", "Focal" } },
  { "bce+dice+tversky", segloss.BCE(S) + segloss.Dice(S) + segloss.Tversky(S), { "BCE", "Dice", "Tversky" } },
}

emit(string.format("%s, backend %s, %s; criteria (reused gradient buffer), median of %d calls%s",
  segloss._VERSION, segloss.backend(), os.date("%Y-%m-%d"), args.runs,
  torch and (", PyTorch " .. torch.torch_version .. " composing the parts in the same run") or ""))

segloss.seed(7)
for _, key in ipairs(split(args.shapes)) do
  local shape = SHAPES[key]
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  local x = T.randn(shape) * 3
  local t = T.rand(shape)
  local f = t:reshape(n)
  for i = 1, n do f:set(i, f:get(i) < 0.02 and 1 or 0) end
  for _, th in ipairs(split(args.threads)) do
    segloss.set_threads(tonumber(th))
    local items = {}
    for name, c in pairs(singles) do items[name] = function() return c(x, t) end end
    for _, cb in ipairs(combos) do items[cb[1]] = function() return cb[2](x, t) end end
    local ms = medians(items)
    emit("")
    emit(string.format("shape %s {%s}, %s thread%s: single parts %s", key, table.concat(shape, ","), th,
      th == "1" and "" or "s",
      string.format("BCE %.2f ms, Dice %.2f, Focal %.2f, Tversky %.2f", ms.BCE, ms.Dice, ms.Focal, ms.Tversky)))
    emit("")
    emit("| combination | ms | × most expensive part | PyTorch ms | speed-up |")
    emit("|---|---:|---:|---:|---:|")
    for _, cb in ipairs(combos) do
      local m = ms[cb[1]]
      local worst = 0
      for _, p in ipairs(cb[3]) do worst = math.max(worst, ms[p]) end
      local tms = torch and torch.ms[key] and torch.ms[key][th] and torch.ms[key][th][cb[1]]
      emit(string.format("| %s | %.2f | %.2f | %s | %s |", cb[1], m, m / worst,
        tms and string.format("%.2f", tms) or "–", tms and string.format("%.1f×", tms / m) or "–"))
    end
  end
end

if args.md then
  local fh = assert(io.open(args.md, "w"))
  fh:write(table.concat(md, "\n"), "\n")
  fh:close()
end
