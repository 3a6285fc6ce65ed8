-- bench/newer.lua — the newer losses of issue 12 (Lovász, boundary, Hausdorff,
-- clDice, log-cosh Dice, unified focal, top-k CE, combo) against the PyTorch
-- peers of tools/peers.py, on the same inputs in the same run:
-- tools/bench_torch_newer.py writes them to .npy with the list of cases and
-- PyTorch's times (DIR/bench_newer.json); this script loads the same bits
-- with segloss's npy reader and times segloss.<loss>(x, t, opts), value and
-- gradient, the gradient into a reused tensor (opts.out), at 1 thread.
--
--   lua5.4 bench/newer.lua [--dir build] [--runs 5] [--md build/bench_newer.md]
--
-- Rounds are interleaved (each round calls every loss of a shape once); the
-- ratio is PyTorch's best over segloss's best. A loss that segloss does not
-- have yet (not in segloss.losses()), or that rejects the case's options,
-- is skipped with a line saying so; its PyTorch time stays in the table.
local segloss = require "segloss"
local U = dofile((arg[0]:match("^(.*)/") or ".") .. "/util.lua")
local T = segloss.tensor

local args = U.args({ dir = "build", runs = 5 }, "lua5.4 bench/newer.lua [--dir D] [--runs N] [--md F]")

-- the speed-ups issue 12 asks for (PyTorch / segloss, 1 thread)
local TARGET = { lovasz_hinge = 5, lovasz_softmax = 5, hausdorff_dt = 10 }
local DEFAULT_TARGET = 5

local ref = U.json(args.dir .. "/bench_newer.json")
if not ref then
  print(string.format("(no %s/bench_newer.json: run tools/bench_torch_newer.py first; no newer-loss benchmark)",
    args.dir))
  os.exit(0)
end

local have = {}
for _, d in ipairs(segloss.losses()) do have[d.name] = true end

local report = U.report()
local emit = report.emit

segloss.set_threads(1)
emit(string.format("%s, backend %s, %s; the newer losses, value + gradient, 1 thread, best (median) of %d "
  .. "interleaved rounds%s", segloss._VERSION, segloss.backend(), os.date("%Y-%m-%d"), args.runs,
  ref.torch_version and string.format("; PyTorch %s (tools/peers.py, autograd, float32, 1 thread) in the same run",
    ref.torch_version) or "; no PyTorch (python3-torch not installed)"))
emit("")

local function shape_str(s)
  local v = {}
  for i, n in ipairs(s) do v[i] = string.format("%d", math.tointeger(n)) end
  return "(" .. table.concat(v, ",") .. ")"
end

-- a Lua table of the case's segloss options (cjson gives a table already;
-- an empty JSON object may come back as an empty table)
local function opts_of(c, out)
  local o = {}
  for k, v in pairs(c.segloss_opts or {}) do o[k] = v end
  o.out = out
  return o
end

local order, by_shape = {}, {}
for _, c in ipairs(ref.cases) do
  if not by_shape[c.shape] then
    by_shape[c.shape] = {}
    order[#order + 1] = c.shape
  end
  table.insert(by_shape[c.shape], c)
end

local rows, skipped = {}, {}
for _, key in ipairs(order) do
  collectgarbage() -- the previous shape's inputs (64 MB at B) before the next ones load
  local S = ref.shapes[key]
  local cases = by_shape[key]
  local names, items, run = {}, {}, {}
  local x, t, out
  for _, c in ipairs(cases) do
    local id = c.loss .. "/" .. c.activation
    if not have[c.loss] then
      skipped[#skipped + 1] = string.format("%s at %s: not in segloss.losses() yet, skipped", c.loss, key)
    else
      if not x then
        U.progress("newer losses, shape %s %s: loading the inputs", key, shape_str(S.shape))
        x, t = T.load(S.x), T.load(S.t)
        out = T.zeros(S.shape)
      end
      local o = opts_of(c, out)
      local ok, err = pcall(segloss[c.loss], x, t, o)
      if ok then
        names[#names + 1] = id
        items[id] = function() return segloss[c.loss](x, t, o) end
        run[id] = true
      else
        skipped[#skipped + 1] = string.format("%s at %s: segloss rejects the case (%s), skipped", c.loss, key,
          tostring(err))
      end
    end
  end
  local best, med = {}, {}
  if #names > 0 then
    local label = string.format("newer losses, segloss, shape %s", key)
    U.progress("%s: %d rounds of %d losses ...", label, args.runs, #names)
    best, med = U.bests(names, items, args.runs, label)
  end
  for _, c in ipairs(cases) do
    local id = c.loss .. "/" .. c.activation
    rows[#rows + 1] = { c = c, key = key, shape = S.shape, best = run[id] and best[id], med = run[id] and med[id] }
  end
end

for _, s in ipairs(skipped) do emit(s) end
if #skipped > 0 then emit("") end

emit("| loss | shape | segloss ms | PyTorch ms | ratio (PyTorch/segloss, best vs best) | target |")
emit("|---|---|---:|---:|---:|---:|")
for _, r in ipairs(rows) do
  local c = r.c
  local target = TARGET[c.loss] or DEFAULT_TARGET
  local tbest, tmed = c.best, c.ms
  local sl = r.best and string.format("%.2f (%.2f)", r.best, r.med) or "–"
  local few = tbest and c.rounds < (ref.runs or c.rounds) and string.format(", %d calls", c.rounds) or ""
  local pt = tbest and string.format("%.1f (%.1f)%s", tbest, tmed, few) or "–"
  local ratio, mark = "–", ""
  if r.best and tbest then
    local q = tbest / r.best
    ratio = string.format("%.1f×", q)
    if q < target then mark = " (missed)" end
  elseif not r.best then
    mark = have[c.loss] and " (skipped)" or " (no segloss yet)"
  end
  emit(string.format("| %s (%s) | %s %s | %s | %s | %s | ≥ %d×%s |", c.loss, c.activation, r.key,
    shape_str(r.shape), sl, pt, ratio, target, mark))
end

report.write(args.md)
