-- test/threads/workload.lua — what each Lua state of test/threads/two_states.c
-- runs, and spec 08 (OpenMP environment variables) too.
--
-- Returns a table:
--   backends()            the backends this CPU has, best first
--   run(backend, threads) -> bytes, team, teams
--     runs the workload on that backend and thread count from a fixed seed
--     and returns every result as one binary string (each number and every
--     element of each gradient, packed), for a bit-for-bit comparison; team
--     is segloss.core.threads_used() after a job large enough for threads
--     threads (4 blocks of 16384 elements per thread and more); teams
--     maps each large job's name to its threads_used() (a list of names
--     in order in teams.names).
-- Results do not depend on the thread count (deterministic reductions);
-- they do depend on the backend, so compare like with like.
local segloss = require "segloss"
local T, nn, optim = segloss.tensor, segloss.nn, segloss.optim

local W = {}

function W.backends() return segloss.backends() end

-- every element of t as packed float32s
local function tbytes(t)
  local n = t:numel()
  local f = t:reshape(n)
  local parts = {}
  for i = 1, n do parts[i] = string.pack("<f", f:get(i)) end
  return table.concat(parts)
end

local function box(t, r0, r1, c0, c1)
  local sh = t:shape()
  local lead = t:numel() // (sh[#sh - 1] * sh[#sh])
  local flat = t:reshape(lead, sh[#sh - 1], sh[#sh])
  for i = 1, lead do
    for r = r0 + i - 1, r1 + i - 1 do
      for c = c0, c1 do flat:set(i, r, c, 1) end
    end
  end
  return t
end

function W.run(backend, threads)
  segloss.set_backend(backend)
  segloss.set_threads(threads)
  segloss.seed(13)
  local out, teams = {}, { names = {} }
  local function used(name)
    teams[name] = segloss.core.threads_used()
    teams.names[#teams.names + 1] = name
  end
  local function num(v) out[#out + 1] = string.pack("<d", v) end
  local function ten(t) out[#out + 1] = tbytes(t) end

  -- tensors: sums, min, max, maps over 2^18 elements (threaded)
  local big = T.randn(4, 1, 256, 256) * T.rand(4, 1, 256, 256):pow(4) * 100
  num(big:sum())
  local team = segloss.core.threads_used()
  used("sum")
  num(big:min())
  used("min")
  num(big:max())
  local sig = big:sigmoid()
  used("sigmoid")
  num(sig:sum())
  local smx = big:reshape(4, 4, 128, 128):softmax()
  used("softmax")
  num(smx:sum())
  num(big:exp():mean())
  local sq = big * big
  used("mul")
  num(sq:sum())

  -- losses with gradients, several kinds
  local x, t = T.randn(2, 1, 24, 20), T.rand(2, 1, 24, 20):pow(6)
  local tb = box(T.zeros(2, 1, 24, 20), 5, 14, 4, 12)
  local xs, lab = T.randn(2, 3, 24, 20), T.randn(2, 3, 24, 20):argmax()
  local cases = {
    { "bce", x, t, { activation = "sigmoid" } },
    { "ce", xs, lab, { activation = "softmax" } },
    { "focal", x, t, { activation = "sigmoid", gamma = 2 } },
    { "dice", xs, lab, { activation = "softmax" } },
    { "dice_focal", x, t, { activation = "sigmoid" } },
    { "tversky", x, t, { activation = "sigmoid", alpha = 0.3, beta = 0.7 } },
    { "lovasz_hinge", x, tb, {} },
    { "lovasz_softmax", xs, lab, { activation = "softmax" } },
    { "boundary", x, tb, { activation = "sigmoid" } },
    { "hausdorff_dt", x, tb, { activation = "sigmoid" } },
    { "cldice", x, tb, { activation = "sigmoid" } },
    { "topk_ce", xs, lab, { activation = "softmax" } },
    { "unified_focal", x, tb, { activation = "sigmoid" } },
  }
  for _, c in ipairs(cases) do
    local l, g = segloss[c[1]](c[2], c[3], c[4])
    num(l)
    ten(g)
  end
  -- the big ones, threaded
  local bt = T.rand(4, 1, 256, 256):pow(8)
  local l, g = segloss.dice_focal(big, bt, { activation = "sigmoid" })
  used("dice_focal")
  num(l)
  num(g:sum())
  num(g:max())

  -- a criterion combination with a schedule
  local crit = segloss.schedule.linear(0, 1, 2) * segloss.BCE { activation = "sigmoid" }
    + 0.5 * segloss.Dice { activation = "sigmoid" }
  for _ = 1, 2 do
    local lc, gc = crit(x, tb)
    num(lc)
    ten(gc)
    crit:step()
  end

  -- metrics
  local r = segloss.metrics.evaluate(xs, lab, { activation = "softmax" })
  num(r.dice)
  num(r.hd95)
  num(r.assd)
  local dt = segloss.metrics.distance_transform(box(T.zeros(1, 300, 290), 10, 130, 5, 240):reshape(300, 290))
  used("distance_transform")
  num(dt:sum())
  local bx, blab = T.randn(4, 2, 192, 192), T.randn(4, 2, 192, 192):argmax()
  for _, n in ipairs { "lovasz_softmax", "topk_ce", "unified_focal", "boundary" } do
    local lb, gb = segloss[n](bx, blab, { activation = "softmax" })
    used(n)
    num(lb)
    num(gb:sum())
  end

  -- a U-Net training step with Adam, then one with SGD
  local net = nn.UNet { input = 1, output = 2, base = 4, depth = 2, dims = 2, norm = "instance",
    act = "leaky_relu", down = "maxpool", up = "transpose" }
  local opt = optim.Adam(net, { lr = 1e-3 })
  local xi, ti = T.randn(2, 1, 32, 32), T.randn(2, 2, 32, 32):argmax()
  local uc = segloss.CE { activation = "softmax" } + segloss.Dice { activation = "softmax" }
  for step = 1, 2 do
    if step == 2 then opt = optim.SGD(net, { lr = 1e-2, momentum = 0.9 }) end
    net:zero_grad()
    local y = net:forward(xi)
    local lu, gy = uc(y, ti)
    num(lu)
    ten(net:backward(xi, gy))
    opt:step()
  end
  local params = net:parameters()
  for _, p in ipairs(params) do ten(p) end
  return table.concat(out), team, teams
end

return W
