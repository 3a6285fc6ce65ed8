-- tools/valgrind_run.lua — a small, representative workload for `make valgrind`.
--
--   mkdir -p DIR/img DIR/msk
--   LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="build-vg/?.so;;" \
--     valgrind ... lua5.4 tools/valgrind_run.lua DIR
--
-- DIR must exist with the subdirectories img and msk (the script runs no
-- shell: glibc's system() switches stacks, which memcheck warns about);
-- the files it writes there it removes.
--
-- Touches every layer of the library once on small shapes (valgrind runs
-- code some 30x slower): tensors (constructors, views, methods, .npy),
-- losses of each kind (pixel, region, preset, generic), a scheduled
-- criterion combination, metrics with HD95/ASSD, a 2-D U-Net training step
-- with Adam and SGD, a checkpoint, the data loaders (synthetic, and a
-- folder of PNG pairs) — on every backend this CPU has, with 1 and 2
-- threads. It checks that results are finite and that the backends agree
-- within loose tolerances (memcheck finds the memory errors; these checks
-- only make sure the work really ran). Progress on stderr; the last line of
-- stdout is "valgrind_run: N calls, backends ..., threads 1,2".
local segloss = require "segloss"
local T, nn, optim, D = segloss.tensor, segloss.nn, segloss.optim, segloss.data
local core = segloss.core

local dir = assert(arg and arg[1], "usage: valgrind_run.lua DIR (with DIR/img and DIR/msk)")

local calls = 0
local function check(ok, what)
  calls = calls + 1
  if not ok then error("valgrind_run: check failed: " .. what, 2) end
end
local function finite(v) return v == v and v > -math.huge and v < math.huge end
local function maxabs(t) return math.max(t:max(), -t:min()) end
-- sets t[..., r, c] = v for r in r0..r1, c in c0..c1 over the leading
-- indices (narrow copies along inner axes: tensors are contiguous)
local function box(t, r0, r1, c0, c1, v)
  local sh = t:shape()
  local lead = t:numel() // (sh[#sh - 1] * sh[#sh])
  local flat = t:reshape(lead, sh[#sh - 1], sh[#sh])
  for i = 1, lead do
    for r = r0, r1 do
      for c = c0, c1 do flat:set(i, r, c, v) end
    end
  end
  return t
end
local function finite_t(t, what)
  local mn, mx = t:min(), t:max()
  check(finite(mn) and finite(mx), what .. " finite")
end

-- tensors: constructors, views, methods, .npy
local function tensors()
  local a = T.randn(2, 3, 5, 7)
  local b = T.from({ { 1, 2, 3 }, { 4, 5, 6 } })
  check(b:get(2, 3) == 6, "from")
  local z, o, f = T.zeros(3, 5), T.ones { 3, 5 }, T.full({ 3, 5 }, 2.5)
  check((z + o * f):sum() == 37.5, "arith")
  local v = a:reshape(6, 35):narrow(1, 2, 3)
  v:fill(1)
  check(a:select(1, 1):select(1, 2):sum() == 35, "views write through")
  local c = a:clone()
  c:add(1):mul(2)
  check(finite(c:mean()) and finite(a:sigmoid():sum()) and finite(a:softmax():sum()), "maps")
  local lab = a:argmax()
  check(lab:onehot(3):sum() == 2 * 5 * 7, "argmax, onehot")
  check(#tostring(a) > 0 and #a:totable() == 2, "tostring, totable")
  local path = dir .. "/t.npy"
  a:save(path)
  local r = T.load(path)
  check(maxabs(r - a) == 0, ".npy round trip")
  check(a:min() <= a:max() and finite(a:pow(2):sum()), "min, max, pow")
  -- lengths that are not a multiple of any vector width (the kernels' tails)
  for _, n in ipairs { 1, 3, 7, 9, 17, 33 } do
    local x = T.randn(n)
    check(finite(x:sigmoid():sum() + x:exp():sum() + x:sum() + x:min() + x:max()), "tail " .. n)
  end
end

-- losses of each kind, functional and as criteria
local function losses()
  local x, t = T.randn(2, 1, 12, 11), T.rand(2, 1, 12, 11):pow(6)
  local tb = box(T.zeros(2, 1, 12, 11), 4, 8, 3, 8, 1)
  local xs, lab = T.randn(2, 3, 12, 11), T.randn(2, 3, 12, 11):argmax()
  local mask = box(T.zeros(2, 1, 12, 11), 1, 12, 1, 9, 1)
  local cases = {
    { "bce", x, t, { activation = "sigmoid" } },
    { "bce", x, t, { activation = "sigmoid", mask = mask } },
    { "ce", xs, lab, { activation = "softmax" } },
    { "focal", x, t, { activation = "sigmoid", gamma = 2 } },
    { "dice", x, t, { activation = "sigmoid" } },
    { "dice", xs, lab, { activation = "softmax", mask = mask } },
    { "tversky", x, t, { activation = "sigmoid", alpha = 0.3, beta = 0.7 } },
    { "generalized_dice", xs, lab, { activation = "softmax" } },
    { "dice_focal", x, t, { activation = "sigmoid" } },
    { "bce_dice", x, t, { activation = "sigmoid" } },
    { "lovasz_hinge", x, tb, {} },
    { "lovasz_softmax", xs, lab, { activation = "softmax" } },
    { "boundary", x, tb, { activation = "sigmoid" } },
    { "hausdorff_dt", x, tb, { activation = "sigmoid" } },
    { "cldice", x, tb, { activation = "sigmoid" } },
    { "topk_ce", xs, lab, { activation = "softmax" } },
    { "unified_focal", x, tb, { activation = "sigmoid" } },
  }
  local out = {}
  for _, c in ipairs(cases) do
    local l, g = segloss[c[1]](c[2], c[3], c[4])
    check(finite(l), c[1] .. " value")
    finite_t(g, c[1] .. " gradient")
    out[#out + 1] = l
  end
  local none = segloss.bce(x, t, { activation = "sigmoid", reduction = "none" })
  finite_t(none, "bce none")
  local g = T.zeros(2, 1, 12, 11)
  segloss.dice(x, t, { activation = "sigmoid", out = g })
  check(maxabs(g) > 0, "dice out")
  -- a combination with a schedule: forward, backward, step
  local crit = segloss.schedule.linear(0, 1, 3) * segloss.BCE { activation = "sigmoid" }
    + 0.5 * segloss.Dice { activation = "sigmoid" } + segloss.Boundary { activation = "sigmoid" }
  for _ = 1, 3 do
    local l1, g1 = crit(x, tb)
    check(finite(l1), "criterion value")
    local g2 = crit:backward(x, tb)
    check(maxabs(g1 - g2) == 0, "criterion backward")
    check(finite(crit:forward(x, tb)), "criterion forward")
    check(#tostring(crit) > 0 and crit:last() ~= nil, "criterion last")
    crit:step()
  end
  return out
end

local function metrics()
  local x, lab = T.randn(2, 3, 16, 13), T.randn(2, 3, 16, 13):argmax()
  local r = segloss.metrics.evaluate(x, lab, { activation = "softmax", spacing = { 1.5, 1 } })
  check(finite(r.dice) and finite(r.hd95) and finite(r.assd) and finite(r.hd), "metrics")
  local p = T.rand(2, 1, 9, 8, 7)
  local r3 = segloss.metrics.evaluate(p, T.rand(2, 1, 9, 8, 7):pow(4):sigmoid():sub(0.5):mul(4):argmax()
    :reshape(2, 1, 9, 8, 7), {})
  check(finite(r3.hd95) and finite(r3.assd), "metrics 3-D")
  local m = box(T.zeros(10, 9), 3, 6, 2, 4, 1)
  check(segloss.metrics.distance_transform(m):sum() > 0, "distance transform")
  return { r.dice, r.hd95, r.assd }
end

local function unet(opt_name)
  segloss.seed(7)
  local net = nn.UNet { input = 1, output = 2, base = 4, depth = 2, dims = 2, norm = "instance",
    act = "leaky_relu", down = "maxpool", up = "transpose" }
  local x, t = T.randn(2, 1, 16, 16), T.randn(2, 2, 16, 16):argmax()
  local opt = opt_name == "adam" and optim.Adam(net, { lr = 1e-3 })
    or optim.SGD(net, { lr = 1e-2, momentum = 0.9, nesterov = true })
  local crit = segloss.CE { activation = "softmax" } + segloss.Dice { activation = "softmax" }
  local l0
  for _ = 1, 2 do
    net:zero_grad()
    local y = net:forward(x)
    local l, gy = crit(y, t)
    l0 = l0 or l
    net:backward(x, gy)
    opt:step()
    check(finite(l), "unet loss")
  end
  net:evaluate()
  local y = net:forward(x)
  finite_t(y, "unet eval")
  local path = dir .. "/net.npz"
  net:save(path, { optim = opt })
  local net2 = nn.load(path)
  net2:evaluate()
  check(maxabs(net2:forward(x) - y) == 0, "checkpoint round trip")
  -- a second net with the other options: batch norm, strided, bilinear
  local n2 = nn.UNet { input = 1, output = 1, base = 2, depth = 1, dims = 2, norm = "batch", act = "relu",
    down = "stride", up = "bilinear" }
  local y2 = n2:forward(x)
  n2:backward(x, T.ones(y2:shape()))
  finite_t(y2, "unet 2")
  return l0
end

local function data()
  local d = D.synthetic { n = 4, size = { 16, 16 }, foreground = 0.05, empty = 0.25, seed = 1 }
  local nb = 0
  for bx, bt in d:batches(2, { shuffle = true, augment = true }) do
    nb = nb + 1
    check(bx:numel() == bt:numel(), "batch")
  end
  check(nb == 2, "synthetic batches")
  for _, nm in ipairs { "a.png", "b.png" } do
    local img = box(box(T.full({ 9, 7 }, 40), 1, 5, 2, 6, 200), 3, 9, 4, 4, 7)
    local m = box(T.zeros(9, 7), 2, 4, 1, 7, 255)
    core.png_save(dir .. "/img/" .. nm, img, 8)
    core.png_save(dir .. "/msk/" .. nm, m, 8)
  end
  local f = D.folder { images = dir .. "/img", masks = dir .. "/msk" }
  check(f.n == 2 and f.t:sum() == 2 * 3 * 7, "folder of PNG")
end

-- large enough for the drivers to split the work (at least 4 blocks of
-- 16384 elements per thread): with 2 threads, 2 threads must run
local function threaded(nt)
  local x, t = T.randn(2, 1, 256, 256), T.rand(2, 1, 256, 256):pow(8)
  check(finite(x:sum()) and core.threads_used() == nt, "threaded sum on " .. nt)
  local l, g = segloss.dice_focal(x, t, { activation = "sigmoid" })
  check(finite(l) and core.threads_used() == nt, "threaded dice_focal on " .. nt)
  finite_t(g, "threaded gradient")
  return l
end

local backends = segloss.backends()
local first
for _, b in ipairs(backends) do
  for _, nt in ipairs { 1, 2 } do
    io.stderr:write(string.format("valgrind_run: backend %s, %d thread(s)\n", b, nt))
    segloss.set_backend(b)
    segloss.set_threads(nt)
    segloss.seed(1)
    tensors()
    local r = losses()
    local m = metrics()
    local ua, us = unet("adam"), unet("sgd")
    data()
    r[#r + 1] = threaded(nt)
    r[#r + 1], r[#r + 2] = ua, us
    for _, v in ipairs(m) do r[#r + 1] = v end
    if not first then
      first = r
    else
      for i = 1, #r do
        check(math.abs(r[i] - first[i]) <= 1e-3 * (1 + math.abs(first[i])), "backend " .. b .. " result " .. i)
      end
    end
    collectgarbage()
  end
end
for _, f in ipairs { "t.npy", "net.npz", "img/a.png", "img/b.png", "msk/a.png", "msk/b.png" } do
  assert(os.remove(dir .. "/" .. f))
end
print(string.format("valgrind_run: %d checks, backends %s, threads 1,2", calls, table.concat(backends, ",")))
