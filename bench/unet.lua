-- bench/unet.lua — one U-Net training step (forward, BCE+Dice, backward,
-- Adam) and inference (forward only), segloss against PyTorch CPU in the same
-- run, with the peak resident memory of each.
--
--   lua5.4 bench/unet.lua [--rounds 2] [--md out.md] [--configs 2d64,2d128,3d] [--threads 1,2]
--
-- Every (configuration, thread count) runs in a fresh process per side, so
-- that its peak resident size is its own: this script as a worker
-- (--worker 1) for segloss, tools/bench_torch_unet.py for PyTorch; each runs
-- the inference steps, then the training steps (whose peak is then the
-- process's). Rounds interleave the two sides, and the table compares best
-- step time against best step time (this VM's speed swings by 2x within
-- minutes). Memory: VmHWM, the process's peak resident size, and its growth
-- over the size before the first step (the steps' own buffers: activations,
-- gradients, workspaces).
--
-- Architectures (the same on both sides, tools/torch_unet.py):
--   2d64, 2d128  UNet{base 16, depth 2, dims 2, norm none, relu, maxpool, bilinear}
--                on (8,1,64,64) / (8,1,128,128)
--   3d           UNet{base 16, depth 3, dims 3, instance norm, leaky_relu, strided down,
--                transposed up} on (2,1,32,64,64) — nnU-Net's kind

local CONFIGS = {
  ["2d64"] = { shape = { 8, 1, 64, 64 }, warmup = 1, steps = 4,
               net = { input = 1, output = 1, base = 16, depth = 2, dims = 2, norm = "none", act = "relu",
                       down = "maxpool", up = "bilinear" } },
  ["2d128"] = { shape = { 8, 1, 128, 128 }, warmup = 1, steps = 2,
                net = { input = 1, output = 1, base = 16, depth = 2, dims = 2, norm = "none", act = "relu",
                        down = "maxpool", up = "bilinear" } },
  ["3d"] = { shape = { 2, 1, 32, 64, 64 }, warmup = 1, steps = 2,
             net = { input = 1, output = 1, base = 16, depth = 3, dims = 3, norm = "instance",
                     act = "leaky_relu", down = "stride", up = "transpose" } },
}
local ORDER = { "2d64", "2d128", "3d" }

local function status_mb(key)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match(key .. ":%s*(%d+) kB")
  return kb and tonumber(kb) / 1024
end

-- ---------------------------------------------------------------- worker

local function worker(a)
  local segloss = require "segloss"
  local ok_sys, system = pcall(require, "system")
  local clock = ok_sys and system.monotime or os.clock
  local T = segloss.tensor
  local cfg = assert(CONFIGS[a.config], "unknown config " .. tostring(a.config))
  segloss.set_threads(tonumber(a.threads))
  segloss.seed(1)
  local net = segloss.nn.UNet(cfg.net)
  local x = T.randn(cfg.shape)
  -- a target with ~1 % foreground: a few small blobs (boxes) per sample
  local t = T.zeros(cfg.shape)
  local n = cfg.shape[1]
  local sp = { table.unpack(cfg.shape, 3) }
  local u = T.rand(n * 4 * #sp)
  local k = 0
  for i = 1, n do
    for _ = 1, 3 do
      local lo = {}
      for d = 1, #sp do
        k = k + 1
        lo[d] = math.floor(u:get(k) * (sp[d] - 4)) + 1
      end
      local b = t:select(1, i):select(1, 1)
      if #sp == 2 then
        for yy = lo[1], lo[1] + 3 do for xx = lo[2], lo[2] + 3 do b:set(yy, xx, 1) end end
      else
        for zz = lo[1], lo[1] + 1 do
          for yy = lo[2], lo[2] + 3 do for xx = lo[3], lo[3] + 3 do b:set(zz, yy, xx, 1) end end
        end
      end
    end
  end
  local opt = segloss.optim.Adam(net, { lr = 1e-3 })
  local g = T.zeros(cfg.shape)
  local lopts = { activation = "sigmoid", out = g }
  local function train_step()
    net:zero_grad()
    local y = net:forward(x)
    segloss.bce_dice(y, t, lopts)
    net:backward(x, g)
    opt:step()
  end
  local function infer_step() net:forward(x) end
  collectgarbage()
  local before = status_mb("VmRSS")
  local warm = tonumber(a.warmup) or cfg.warmup
  local steps = tonumber(a.steps) or cfg.steps
  local cjson = require "cjson"
  local function run(mode)
    if mode == "train" then net:train() else net:evaluate() end
    local step = mode == "train" and train_step or infer_step
    for _ = 1, warm do step() end
    local times = {}
    for i = 1, steps do
      local t0 = clock()
      step()
      times[i] = clock() - t0
    end
    local best = math.huge
    for _, v in ipairs(times) do best = math.min(best, v) end
    return { config = a.config, threads = tonumber(a.threads), mode = mode, steps = steps, times = times,
             best = best, rss_before_mb = before, rss_peak_mb = status_mb("VmHWM") }
  end
  if a.mode == "both" then
    local out = { infer = run("infer") }
    out.train = run("train")
    print(cjson.encode(out))
  else
    print(cjson.encode(run(a.mode)))
  end
end

-- ---------------------------------------------------------------- driver

local function run_json(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  local line = out:match("(%{[^\n]*%})%s*$")
  if not ok or not line then return nil, out end
  return require("cjson").decode(line)
end

local function driver(a)
  local U = dofile((arg[0]:match("^(.*)/") or ".") .. "/util.lua")
  local rounds = tonumber(a.rounds) or 2
  local configs = a.configs and U.split(a.configs) or ORDER
  local threads = U.split(a.threads or "1,2")
  local modes = { "train", "infer" }
  local have_torch = os.execute("/usr/bin/python3 -c 'import torch' 2>/dev/null")
  local lua = a.lua or "lua5.4"
  local best = {}
  local cells = {}
  for _, c in ipairs(configs) do
    for _, th in ipairs(threads) do
      for _, m in ipairs(modes) do cells[#cells + 1] = { c, th, m } end
    end
  end
  local function keep(side, cell, r)
    local key = table.concat(cell, "/") .. "/" .. side
    local b = best[key]
    if not b then
      best[key] = { best = r.best, peak = r.rss_peak_mb, grow = r.rss_peak_mb - r.rss_before_mb }
    else
      b.best = math.min(b.best, r.best)
      b.peak = math.max(b.peak, r.rss_peak_mb)
      b.grow = math.max(b.grow, r.rss_peak_mb - r.rss_before_mb)
    end
  end
  -- one process per (config, threads) and side: inference, then training
  local pairs_ = {}
  for _, c in ipairs(configs) do
    for _, th in ipairs(threads) do pairs_[#pairs_ + 1] = { c, th } end
  end
  for round = 1, rounds do
    for i, ct in ipairs(pairs_) do
      local cfg = CONFIGS[ct[1]]
      U.progress("U-Net %s, %s thread(s): round %d/%d (%d/%d)", ct[1], ct[2], round, rounds, i, #pairs_)
      local args = string.format("--config %s --threads %s --mode both --warmup %d --steps %d", ct[1], ct[2],
        cfg.warmup, cfg.steps)
      local r, err = run_json(string.format("%s bench/unet.lua --worker 1 %s", lua, args))
      if not r then error("bench/unet.lua worker failed: " .. tostring(err)) end
      local tr, terr
      if have_torch then
        tr, terr = run_json("/usr/bin/python3 tools/bench_torch_unet.py " .. args)
        if not tr then error("tools/bench_torch_unet.py failed: " .. tostring(terr)) end
      end
      for _, m in ipairs(modes) do
        keep("segloss", { ct[1], ct[2], m }, r[m])
        if tr then keep("torch", { ct[1], ct[2], m }, tr[m]) end
      end
    end
  end
  local rep = U.report()
  rep.emit(string.format("### U-Net step: segloss vs PyTorch %s (best of %d rounds, ms per step; peak RSS MB)",
    have_torch and "1.13 CPU" or "(not installed)", rounds))
  rep.emit("")
  rep.emit("| config | threads | step | segloss ms | PyTorch ms | ratio | segloss peak / growth MB "
    .. "| PyTorch peak / growth MB |")
  rep.emit("|---|---|---|---|---|---|---|---|")
  for _, cell in ipairs(cells) do
    local k = table.concat(cell, "/")
    local s, t = best[k .. "/segloss"], best[k .. "/torch"]
    rep.emit(string.format("| %s | %s | %s | %.1f | %s | %s | %.0f / %.0f | %s |", cell[1], cell[2], cell[3],
      s.best * 1e3, t and string.format("%.1f", t.best * 1e3) or "–",
      t and string.format("%.2f", s.best / t.best) or "–", s.peak, s.grow,
      t and string.format("%.0f / %.0f", t.peak, t.grow) or "–"))
  end
  rep.emit("")
  rep.emit("ratio = segloss / PyTorch (below 1: segloss is faster). Growth = peak RSS minus RSS after building")
  rep.emit("the model and data, i.e. what the steps themselves need.")
  rep.write(a.md)
end

local a = {}
local i = 1
while arg[i] do
  local k = arg[i]:match("^%-%-(.+)$")
  assert(k and arg[i + 1], "usage: lua5.4 bench/unet.lua [--rounds N] [--md file] [--configs a,b] [--threads 1,2]")
  a[k] = arg[i + 1]
  i = i + 2
end
if a.worker then worker(a) else driver(a) end
