--- The extra memory of each loss (with and without its gradient),
-- metrics.evaluate (with and without distances) and a U-Net training step:
-- the peak resident size above the inputs, each case in a fresh process
-- (so that no freed heap from an earlier case hides a peak), after one
-- small warm-up call of the same kind (thread pools, oneDNN) and a reset
-- of the peak (/proc/self/clear_refs 5). Figures in bytes per element of x
-- and as a multiple of x's bytes; the gradient tensor itself (x's bytes)
-- counts as extra.
--
--   lua5.4 tools/memory_figures.lua [--size 512] [--md out.md]
-- (make memtest runs it; LUA_PATH_5_4 / LUA_CPATH_5_4 as in the Makefile)
local segloss = require "segloss"
local T = segloss.tensor

local procmem = dofile((arg[0]:match("^(.*/)") or "./") .. "procmem.lua")
local status, reset_peak = procmem.status, procmem.reset_peak

local function labels(N, H, W, C)
  local l = T.rand(N, 1, H, W) * C
  local f = l:reshape(l:numel())
  for i = 1, f:numel() do f:set(i, math.floor(f:get(i))) end
  return l
end

local function bin(N, H, W, p)
  local t = T.rand(N, 1, H, W)
  local f = t:reshape(t:numel())
  for i = 1, f:numel() do f:set(i, f:get(i) < p and 1 or 0) end
  return t
end

local function act_for(d)
  for _, a in ipairs { "sigmoid", "softmax" } do
    for _, v in ipairs(d.activations) do if v == a then return a end end
  end
  return "none"
end

-- One case in this process: prints "<extra bytes> <x bytes> <x numel>".
local function child(case, S)
  segloss.seed(1)
  local N = 2
  local run, x
  if case == "unet" or case == "unet2" then
    local nn = segloss.nn
    local net = nn.UNet { input = 1, output = 1, base = 16, depth = 4, dims = 2, norm = "batch", act = "relu" }
    local opt = segloss.optim.Adam(net, { lr = 1e-3 })
    local crit = segloss.Dice { activation = "sigmoid" }
    local t
    x, t = T.randn(N, 1, S, S), bin(N, S, S, 0.05)
    run = function(xx, tt)
      net:zero_grad()
      local y = net:forward(xx)
      crit(y, tt)
      net:backward(xx, crit:backward(y, tt))
      opt:step()
    end
    -- the first step (activations, workspaces, thread pools) above the
    -- network and the inputs, or a later step (they are kept)
    collectgarbage()
    reset_peak()
    local base = status("VmRSS")
    run(x, t)
    if case == "unet" or case == "unet2" then return status("VmHWM") - base, x end
    reset_peak()
    base = status("VmRSS")
    run(x, t)
    return status("VmHWM") - base, x
  end
  local name, mode = case:match("^([%w_]+):(%w+)$")
  local C, opts, t
  if name == "evaluate" then
    x, t = bin(N, S, S, 0.1), bin(N, S, S, 0.1)
    opts = { distances = mode == "dist" }
    local xs, ts = bin(N, 16, 16, 0.1), bin(N, 16, 16, 0.1)
    segloss.metrics.evaluate(xs, ts, opts)
    run = function(a, b) return segloss.metrics.evaluate(a, b, opts) end
  else
    local d
    for _, e in ipairs(segloss.losses()) do if e.name == name then d = e end end
    local act = act_for(d)
    C = act == "softmax" and 3 or 1
    x = T.randn(N, C, S, S)
    if act == "none" and not d.real_x then x = x:sigmoid() end
    t = C == 3 and labels(N, S, S, C) or bin(N, S, S, 0.1)
    opts = { activation = act, grad = mode == "grad" }
    local xs = T.randn(N, C, 16, 16)
    if act == "none" and not d.real_x then xs = xs:sigmoid() end
    local ts = C == 3 and labels(N, 16, 16, C) or bin(N, 16, 16, 0.1)
    segloss[name](xs, ts, opts)
    run = function(a, b) return segloss[name](a, b, opts) end
  end
  collectgarbage()
  collectgarbage()
  reset_peak()
  local base = status("VmRSS")
  local r = { run(x, t) }
  local extra = status("VmHWM") - base
  assert(#r >= 1)
  return extra, x
end

local args = { size = 512 }
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  args[k] = arg[i + 1]
  i = i + 2
end
local S = tonumber(args.size)

if args.case then
  local extra, x = child(args.case, S)
  print(string.format("%d %d %d", extra, x:numel() * 4, x:numel()))
  os.exit(0)
end

local env = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q ", package.path, package.cpath)
local function measure(case)
  local p = assert(io.popen(string.format("%slua5.4 %s --case %s --size %d", env, arg[0], case, S)))
  local out = p:read("a")
  p:close()
  local extra, xb, n = out:match("(%-?%d+) (%d+) (%d+)")
  assert(extra, case .. ": " .. out)
  return tonumber(extra), tonumber(xb), tonumber(n)
end

local rows = {}
local function add(label, case)
  io.stderr:write("memory_figures: ", case, "\n")
  local extra, xb, n = measure(case)
  rows[#rows + 1] = string.format("| %s | %d | %.1f | %.2f |", label, extra, extra / n, extra / xb)
end
for _, d in ipairs(segloss.losses()) do
  add(d.name .. " (" .. act_for(d) .. ")", d.name .. ":grad")
  add(d.name .. ", no gradient", d.name .. ":nograd")
end
add("metrics.evaluate, overlap only", "evaluate:plain")
add("metrics.evaluate, with distances", "evaluate:dist")
add("U-Net, first training step (base 16, depth 4, batch norm, Adam; x = its input)", "unet")
add("U-Net, a later training step", "unet2")

local md = {
  string.format("Input x: 2 x C x %d x %d floats (C = 3 for softmax-only losses, else 1); " ..
    "peak resident size above the inputs during one call, fresh process, after a warm-up call.", S, S),
  "",
  "| call | extra bytes | bytes / element of x | x multiple |",
  "|---|---:|---:|---:|",
}
for _, r in ipairs(rows) do md[#md + 1] = r end
local text = table.concat(md, "\n") .. "\n"
io.write(text)
if args.md then
  local f = assert(io.open(args.md, "w"))
  f:write(text)
  f:close()
end
io.stderr:write(string.format("memory_figures: %d calls measured at %dx%d\n", #rows, S, S))
