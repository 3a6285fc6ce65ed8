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
local U = dofile((arg[0]:match("^(.*)/") or ".") .. "/util.lua")
local T = segloss.tensor

local args = U.args({ runs = 9, shapes = "A,B,C", threads = "1,2" },
  "lua5.4 bench/combos.lua [--torch F] [--runs N] [--shapes A,B,C] [--threads 1,2] [--md F]")

local SHAPES = { A = { 8, 1, 256, 256 }, B = { 16, 1, 512, 512 }, C = { 2, 4, 64, 128, 128 } }
local torch = U.json(args.torch)

local report = U.report()
local emit, split = report.emit, U.split

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
  torch and (", PyTorch " .. torch.torch_version .. " composing the parts in the same run ("
    .. U.torch_calls(torch) .. ")") or ""))

segloss.seed(7)
local shapes, threads = split(args.shapes), split(args.threads)
local group, groups = 0, #shapes * #threads
for _, key in ipairs(shapes) do
  local shape = SHAPES[key]
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  U.progress("combinations, shape %s: making the inputs", key)
  local x = T.randn(shape) * 3
  local t = T.rand(shape)
  local f = t:reshape(n)
  for i = 1, n do f:set(i, f:get(i) < 0.02 and 1 or 0) end
  for _, th in ipairs(threads) do
    segloss.set_threads(tonumber(th))
    group = group + 1
    local label = string.format("combinations, shape %s, %s thread%s (%d/%d)", key, th,
      th == "1" and "" or "s", group, groups)
    U.progress("%s: %d rounds ...", label, args.runs)
    local items = {}
    for name, c in pairs(singles) do items[name] = function() return c(x, t) end end
    for _, cb in ipairs(combos) do items[cb[1]] = function() return cb[2](x, t) end end
    local names = {}
    for name in pairs(items) do names[#names + 1] = name end
    table.sort(names)
    local ms = U.medians(names, items, args.runs, label)
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

report.write(args.md)
