-- bench/losses.lua — value + gradient of every loss, against the memory floor
-- of the same run and against PyTorch (tools/bench_torch.py, same run).
--
--   lua5.4 bench/losses.lua [--torch build/bench_torch.json] [--runs 9]
--                           [--shapes A,B,C] [--threads 1,2] [--md build/bench_losses.md]
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

-- every loss of the registry; REGION: those with a region part (their floor
-- adds a read-2-reduce pass)
local LOSSES, REGION, kinds = segloss.losses(), {}, {}
for _, d in ipairs(LOSSES) do kinds[d.name] = d.kind end
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

report.write(args.md)
