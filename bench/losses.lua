-- bench/losses.lua — value + gradient of every loss, against the memory floor
-- of the same run and against PyTorch (tools/bench_torch.py, same run).
--
--   lua5.4 bench/losses.lua [--torch build/bench_torch.json] [--runs 9]
--                           [--shapes A,B,C] [--threads 1,2] [--md build/bench_losses.md]
--                           [--crit_rounds 21]
--
-- Shapes: A (8,1,256,256) sigmoid, B (16,1,512,512) sigmoid, C (2,4,64,128,128)
-- softmax with a label map (bce and bce_dice stay sigmoid there, with the
-- one-hot target). Times are medians of --runs calls of the functional form
-- as a training loop calls it, the gradient written into a reused tensor
-- (opts.out); the "fresh" column lets each call allocate its gradient, which
-- adds the operating system's cost of first-touching new pages.
-- Floors, on tensors of the input's size: a read-2-write-1 pass
-- (out:add(a, b)) and a read-2-reduce pass (a:dot(b)). A pixel loss can at
-- best cost one read-2-write-1 pass; a region loss a read-2-reduce pass plus
-- a read-2-write-1 pass. GB/s counts those bytes.
local segloss = require "segloss"
local U = dofile((arg[0]:match("^(.*)/") or ".") .. "/util.lua")
local T = segloss.tensor

-- every loss of the registry that the fused engine computes (the generic
-- ones, Lovász, distance maps, clDice, ..., are timed against their PyTorch
-- peers by bench/newer.lua); REGION: those with a region part (their floor
-- adds a read-2-reduce pass)
local LOSSES, REGION, kinds = {}, {}, {}
for _, d in ipairs(segloss.losses()) do
  kinds[d.name] = d.kind
  if d.kind ~= "generic" then LOSSES[#LOSSES + 1] = d end
end
for _, d in ipairs(LOSSES) do
  REGION[d.name] = d.kind == "region"
  for _, p in ipairs(d.parts or {}) do REGION[d.name] = REGION[d.name] or kinds[p.name] == "region" end
end
if arg[1] == "--list" then -- the losses this benchmark times (spec 17)
  for _, d in ipairs(LOSSES) do print(d.name) end
  os.exit(0)
end

local args = U.args({ runs = 9, shapes = "A,B,C", threads = "1,2" },
  "lua5.4 bench/losses.lua [--torch F] [--runs N] [--shapes A,B,C] [--threads 1,2] [--md F] | --list")

local SHAPES = {
  A = { shape = { 8, 1, 256, 256 }, act = "sigmoid" },
  B = { shape = { 16, 1, 512, 512 }, act = "sigmoid" },
  C = { shape = { 2, 4, 64, 128, 128 }, act = "softmax" },
}

local torch = U.json(args.torch)

local report = U.report()
local emit, split = report.emit, U.split

segloss.seed(2026)
emit(string.format("%s, backend %s, %s; value + gradient from logits, median of %d calls%s",
  segloss._VERSION, segloss.backend(), os.date("%Y-%m-%d"), args.runs,
  torch and (", PyTorch " .. torch.torch_version .. " in the same run (" .. U.torch_calls(torch) .. ")") or ""))

local shapes, threads = split(args.shapes), split(args.threads)
local group, groups = 0, #shapes * #threads
for _, key in ipairs(shapes) do
  local S = SHAPES[key]
  local shape, act = S.shape, S.act
  local N, C = shape[1], shape[2]
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  U.progress("losses, shape %s: making the inputs", key)
  local x = T.randn(shape) * 3
  local tbin, lab
  if act == "sigmoid" then
    tbin = T.rand(shape)
    local f = tbin:reshape(n)
    for i = 1, n, 1 do f:set(i, f:get(i) < 0.02 and 1 or 0) end
  else
    local ls = { N, 1 }
    for i = 3, #shape do ls[i] = shape[i] end
    lab = T.rand(ls) * C
    local f = lab:reshape(lab:numel())
    for i = 1, f:numel() do f:set(i, math.floor(f:get(i))) end
    tbin = lab:onehot(C)
  end
  local other = T.rand(shape)
  local out = T.zeros(shape)
  for _, th in ipairs(threads) do
    segloss.set_threads(tonumber(th))
    group = group + 1
    local label = string.format("losses, shape %s, %s thread%s (%d/%d)", key, th, th == "1" and "" or "s",
      group, groups)
    U.progress("%s: %d rounds ...", label, args.runs)
    local names, items = { "r2w1", "r2red" }, {}
    items.r2w1 = function() return out:add(x, other) end
    items.r2red = function() return x:dot(other) end
    local run = {}
    for _, d in ipairs(LOSSES) do
      local name, allowed = d.name, {}
      for _, a in ipairs(d.activations) do allowed[a] = true end
      -- a loss without the shape's activation takes the sigmoid (bce at C) or is left out (ce at A, B)
      local lact = allowed[act] and act or "sigmoid"
      if allowed[lact] then
        local t = (lact == "softmax") and lab or tbin
        local opts, fresh = { activation = lact, out = out }, { activation = lact }
        run[#run + 1] = name
        names[#names + 1] = name
        items[name] = function() return segloss[name](x, t, opts) end
        names[#names + 1] = name .. "/fresh"
        items[name .. "/fresh"] = function() return segloss[name](x, t, fresh) end
      end
    end
    local ms = U.medians(names, items, args.runs, label)
    local r2w1, r2red = ms.r2w1, ms.r2red
    emit("")
    emit(string.format("shape %s {%s} %s, %s thread%s: floors read-2-write-1 %.2f ms, read-2-reduce %.2f ms",
      key, table.concat(shape, ","), act, th, th == "1" and "" or "s", r2w1, r2red))
    emit("")
    emit("| loss | ms | GB/s | × floor | PyTorch ms | speed-up | fresh ms |")
    emit("|---|---:|---:|---:|---:|---:|---:|")
    for _, name in ipairs(run) do
      local m = ms[name]
      local floor = REGION[name] and (r2w1 + r2red) or r2w1
      local bytes = (REGION[name] and 5 or 3) * 4 * n -- x, t read once or twice, g written
      local tms = torch and torch.ms[key] and torch.ms[key][th] and torch.ms[key][th][name]
      emit(string.format("| %s | %.2f | %.1f | %.2f | %s | %s | %.2f |", name, m, bytes / m * 1e-6,
        m / floor, tms and string.format("%.2f", tms) or "–",
        tms and string.format("%.1f×", tms / m) or "–", ms[name .. "/fresh"]))
    end
  end
end

-- ---- The criterion path at shape B, against what bounds each loss -------
-- (issue 11, item 6). A training loop calls crit(x, t), the gradient in a
-- buffer the criterion reuses; one thread. Every item runs in the same
-- interleaved rounds and the best of each is compared with the best of
-- its bound: a region loss with the memory floor of its two passes
-- (read-2-write-1 + read-2-reduce), a pixel loss with the vector-math
-- functions it evaluates run over as many elements (bce: e^-|x| and
-- ln(1 + z); focal: also z^2, its pow at gamma 2), a combination with its
-- costliest part. --crit_rounds 0 leaves the section out.
-- The losses and their bounds derive from the registry: every loss that
-- takes a sigmoid, a region loss bounded by the floor, a preset by its
-- costliest part, a pixel loss by the vector functions its kernel
-- evaluates (PIXEL_VMATH; a pixel loss not listed there is bounded by the
-- floor, and the table says so).
local PIXEL_VMATH = { bce = { "exp", "log1p" }, focal = { "exp", "log1p", "pow" } }
local CRIT_BOUND, CRIT_ORDER = {}, {}
for _, d in ipairs(LOSSES) do
  local sig = false
  for _, a in ipairs(d.activations) do sig = sig or a == "sigmoid" end
  if sig then
    CRIT_ORDER[#CRIT_ORDER + 1] = d.name
    if d.kind == "preset" then
      local parts = {}
      for i, p in ipairs(d.parts) do parts[i] = p.name end
      CRIT_BOUND[d.name] = { "parts", parts }
    elseif d.kind == "pixel" and PIXEL_VMATH[d.name] then
      CRIT_BOUND[d.name] = { "vmath", PIXEL_VMATH[d.name] }
    else
      CRIT_BOUND[d.name] = { "floor" }
    end
  end
end
local CRIT_TARGET = { vmath = 1.3, floor = 2, parts = 1.25 }

local function criterion_path(rounds)
  local core = require "segloss.core"
  local class_of = {}
  for class, name in pairs(require("segloss.criterion").classes) do class_of[name] = class end
  local shape = SHAPES.B.shape
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  segloss.set_threads(1)
  segloss.seed(2611)
  U.progress("criterion path, shape B, 1 thread: making the inputs")
  local x = T.randn(shape) * 3
  local t = T.rand(shape)
  local f = t:reshape(n)
  for i = 1, n do f:set(i, f:get(i) < 0.02 and 1 or 0) end
  local other, out = T.rand(shape), T.zeros(shape)
  -- the vector functions' arguments as the losses meet them: e^-|x| of
  -- -|x| <= 0, ln(1 + z) of z in (0, 1], z^2 of z in [0, 1)
  local vneg, vz, vq, vout = T.rand(shape) * -8, T.zeros(shape), T.rand(shape), T.zeros(shape)
  core.vmath_map("exp", vneg, vz)
  local items = {
    r2w1 = function() return out:add(x, other) end,
    r2red = function() return x:dot(other) end,
    exp = function() return core.vmath_map("exp", vneg, vout) end,
    log1p = function() return core.vmath_map("log1p", vz, vout) end,
    pow = function() return core.vmath_map("pow", vq, vout, 2) end,
  }
  local names = { "r2w1", "r2red", "exp", "log1p", "pow" }
  for _, name in ipairs(CRIT_ORDER) do
    local crit = segloss[class_of[name]]({ activation = "sigmoid" })
    items[name] = function() return crit(x, t) end
    names[#names + 1] = name
  end
  local label = "criterion path, shape B, 1 thread"
  U.progress("%s: %d interleaved rounds of %d items ...", label, rounds, #names)
  local best, med = U.bests(names, items, rounds, label)
  local floor = best.r2w1 + best.r2red
  emit("")
  emit(string.format("criterion path (crit(x, t), buffers reused), shape B {%s} sigmoid, 1 thread, best of %d "
    .. "interleaved rounds: floors read-2-write-1 %.2f ms, read-2-reduce %.2f ms; vector math over the same %d "
    .. "elements: exp %.2f ms, log1p %.2f ms, pow (gamma 2) %.2f ms", table.concat(shape, ","), rounds, best.r2w1,
    best.r2red, n, best.exp, best.log1p, best.pow))
  emit("")
  emit("| loss | best ms | median ms | bound | bound ms | × bound | target |")
  emit("|---|---:|---:|---|---:|---:|---:|")
  for _, name in ipairs(CRIT_ORDER) do
    local kind, what = CRIT_BOUND[name][1], CRIT_BOUND[name][2]
    local bound, label_b = floor, "r2w1 + r2red"
    if kind == "vmath" then
      bound = 0
      for _, fn in ipairs(what) do bound = bound + best[fn] end
      label_b = table.concat(what, " + ")
    elseif kind == "parts" then
      bound, label_b = 0, nil
      for _, part in ipairs(what) do
        if best[part] > bound then bound, label_b = best[part], part end
      end
      label_b = label_b .. " (costliest part)"
    end
    local r = best[name] / bound
    emit(string.format("| %s | %.2f | %.2f | %s | %.2f | %.2f | ≤ %.2f%s |", name, best[name], med[name], label_b,
      bound, r, CRIT_TARGET[kind], r <= CRIT_TARGET[kind] and "" or " (missed)"))
  end
end

local crit_rounds = tonumber(args.crit_rounds or 21)
if crit_rounds > 0 then criterion_path(crit_rounds) end

report.write(args.md)
