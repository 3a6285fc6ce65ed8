--- Allocation fault injection (make fault): for each scenario, counts the
-- allocations n of one clean run, then for k = 1..n makes the k-th fail and
-- requires a Lua error, nothing half-written (what the user holds, the file
-- on disk), and a next call that works and gives the clean run's bits.
--
-- Needs the fault build (segloss.core.fault: make fault builds it in
-- build-fault/ under ASan+UBSan+LSan). Usage:
--   lua5.4 tools/fault.lua [--max N] [--sample N] [--seed S] [--only NAME] [--dir DIR]
-- --max: every k up to N (default 250); past it, a seeded sample of --sample
-- (default 100) of the k between, and the last 50. Progress on stderr, the summary last;
-- exit 1 on any finding.
local segloss = require "segloss"
local core = require "segloss.core"
local T = segloss.tensor

local opts = { max = 250, sample = 100, seed = 13, dir = nil, only = nil }
do
  local i = 1
  while arg[i] do
    local k, v = arg[i]:match("^%-%-(%w+)$"), arg[i + 1]
    if not k or opts[k] == nil and k ~= "dir" and k ~= "only" or v == nil then
      io.stderr:write("usage: lua5.4 tools/fault.lua [--max N] [--sample N] [--seed S] [--only NAME] [--dir DIR]\n")
      os.exit(2)
    end
    opts[k] = (k == "dir" or k == "only") and v or assert(math.tointeger(tonumber(v)), "--" .. k .. " needs an integer")
    i = i + 2
  end
end

if not core.fault then
  io.stderr:write("fault: segloss.core.fault is missing: run the fault build (make fault)\n")
  os.exit(2)
end

-- one thread: which allocation is the k-th must not depend on the order in
-- which OpenMP workers allocate
segloss.set_threads(1)

local function sh(cmd) assert(os.execute(cmd), cmd) end
-- the files on a tmpfs where there is one: checkpoints are fsynced
local dir = opts.dir
if not dir then
  local shm = io.open("/dev/shm/.segloss-probe", "wb")
  if shm then shm:close() os.remove("/dev/shm/.segloss-probe") end
  dir = (shm and "/dev/shm" or os.getenv("TMPDIR") or "/tmp") .. string.format("/segloss-fault-%d", os.time())
end
sh("mkdir -p '" .. dir .. "'")

-- What a value is, as bytes: tensors bit for bit, tables by sorted keys.
local function bits(v, out)
  out = out or {}
  local tv = type(v)
  if T.istensor(v) then
    local flat = v:numel() > 0 and v:reshape(v:numel()):totable() or {}
    out[#out + 1] = "T" .. table.concat(v:shape(), ",") .. ":"
    for i = 1, #flat, 256 do
      local j = math.min(i + 255, #flat)
      out[#out + 1] = string.pack(string.rep("<f", j - i + 1), table.unpack(flat, i, j))
    end
  elseif tv == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      out[#out + 1] = tostring(k) .. "="
      bits(v[k], out)
      out[#out + 1] = ";"
    end
    out[#out + 1] = "}"
  elseif tv == "number" then
    out[#out + 1] = math.type(v) == "integer" and string.pack("<j", v) or string.pack("<d", v)
  else
    out[#out + 1] = tv .. ":" .. tostring(v)
  end
  return out
end
local function B(...) return table.concat(bits({ ... })) end

-- a file's bytes, nil when it cannot be read (the experiment layer's reader)
local slurp = require("segloss.experiment.files").read

local function spit(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- the files in a directory (a temporary file left behind is a finding)
local function listing(d)
  local p = io.popen("env -u LD_PRELOAD ls -A '" .. d .. "'")
  local s = p:read("a")
  p:close()
  return s
end

-- fixed inputs
segloss.seed(1)
local X2 = T.randn{2, 3, 24, 24}
local Tl = T.rand{2, 3, 24, 24}:softmax() -- soft targets for the region loss
local T1h = Tl:argmax():onehot(3)
local Xb = T.randn{2, 1, 24, 24}
local Tb = T.zeros{2, 1, 24, 24}
for n = 1, 2 do for i = 6, 15 do for j = 5 + n, 14 do Tb:set(n, 1, i, j, 1) end end end
local pred = Tb:clone()
for i = 6, 15 do pred:set(1, 1, i, 16, 1) end
pred:set(2, 1, 20, 20, 1)

-- data on disk: a folder of PNG images and .npy masks
local ddir = dir .. "/data"
sh("mkdir -p '" .. ddir .. "/img' '" .. ddir .. "/mask'")
for i = 1, 3 do
  local img = T.zeros{16, 16}
  for a = 1, 16 do for b = 1, 16 do img:set(a, b, (a * 7 + b * i) % 256) end end
  core.png_save(ddir .. "/img/s" .. i .. ".png", img, 8)
  local m = T.zeros{16, 16}
  for a = 3, 8 + i do m:set(a, a, 1) end
  m:save(ddir .. "/mask/s" .. i .. ".npy")
end

local function small_unet()
  segloss.seed(7)
  local net = segloss.nn.UNet{ input = 1, output = 1, base = 4, depth = 2, dims = 2, norm = "instance" }
  local opt = segloss.optim.Adam(net, { lr = 1e-3 })
  return net, opt
end
local function net_state(net, opt)
  local ps = net:parameters()
  local st = opt and opt:state() or {}
  return B(ps, st.tensors or {}, st.step or 0)
end

local ckpt = dir .. "/net.npz"
do
  local net, opt = small_unet()
  net:save(ckpt, { optim = opt })
end

-- A scenario of a functional loss without `out`: nothing to hold, its
-- results (value and gradient) compared with the clean run's.
local function plain_loss(name, call)
  return { name = name, reuse = true,
    setup = function() return {} end,
    run = function() return table.pack(call()) end,
    held = function() return "" end,
    result = function(_, r) return B(r) end }
end

-- Each scenario: setup() -> state (once per k unless reuse), run(state) ->
-- result, held(state) -> the bytes that a failed run must leave as they
-- were, result(state, r) -> the bytes to compare with the clean run.
local scenarios = {
  { name = "loss dice (region, fused, softmax, out)", reuse = true,
    setup = function() return { out = T.zeros{2, 3, 24, 24} } end,
    run = function(s) return segloss.dice(X2, Tl, { activation = "softmax", out = s.out }) end,
    held = function(s) return B(s.out) end,
    result = function(s, r) return B(r, s.out) end },
  { name = "loss bce (pixel, sigmoid, out)", reuse = true,
    setup = function() return { out = T.zeros{2, 1, 24, 24} } end,
    run = function(s) return segloss.bce(Xb, Tb, { activation = "sigmoid", out = s.out }) end,
    held = function(s) return B(s.out) end,
    result = function(s, r) return B(r, s.out) end },
  plain_loss("loss lovasz_hinge (generic)", function() return segloss.lovasz_hinge(Xb, Tb) end),
  plain_loss("loss boundary (generic, distance maps)",
    function() return segloss.boundary(X2, T1h, { activation = "softmax" }) end),
  plain_loss("loss cldice (generic, soft skeleton)",
    function() return segloss.cldice(Xb, Tb, { activation = "sigmoid" }) end),
  plain_loss("loss topk_ce (generic, selection)",
    function() return segloss.topk_ce(X2, T1h, { activation = "softmax" }) end),
  { name = "criterion step Dice + 0.5 Focal + 0.2 Boundary (forward+backward)", reuse = true,
    setup = function()
      local crit = segloss.Dice{ activation = "sigmoid" } + 0.5 * segloss.Focal{ activation = "sigmoid", gamma = 2 }
        + 0.2 * segloss.Boundary{ activation = "sigmoid" }
      local l, g = crit(Xb, Tb) -- the user holds g from the call before
      return { crit = crit, g = g, l = l }
    end,
    run = function(s)
      local l = s.crit:forward(Xb, Tb)
      local g = s.crit:backward(Xb, Tb)
      -- the criterion writes into the buffer it handed out the call before
      -- last: what the user holds is the latest gradient
      s.g = g
      return { l, g }
    end,
    held = function(s) return B(s.g, s.crit.output, s.crit:last()) end,
    result = function(_, r) return B(r) end },
  { name = "metrics.evaluate (dice, HD95, ASSD)", reuse = true,
    setup = function() return {} end,
    run = function() return segloss.metrics.evaluate(pred, Tb, { spacing = { 1, 0.5 } }) end,
    held = function() return "" end,
    result = function(_, r) return B(r) end },
  { name = "training step (2-D U-Net forward, Dice, backward, Adam)",
    setup = function()
      local net, opt = small_unet()
      return { net = net, opt = opt, crit = segloss.Dice{ activation = "sigmoid" } }
    end,
    run = function(s)
      s.net:zero_grad()
      local y = s.net:forward(Xb)
      local l, g = s.crit(y, Tb)
      s.net:backward(Xb, g)
      s.opt:step()
      return l
    end,
    -- the step zeroes the gradients first: the parameters and the
    -- optimiser's state are what must survive a failed step
    held = function(s) return net_state(s.net, s.opt) end,
    result = function(s, l) return B(l) .. net_state(s.net, s.opt) end },
  { name = "checkpoint save (net:save over an old file)", reuse = true,
    setup = function()
      local net, opt = small_unet()
      opt:step() -- a state different from the file's
      return { net = net, opt = opt, old = slurp(ckpt) }
    end,
    run = function(s) s.net:save(ckpt, { optim = s.opt }) end,
    held = function() return slurp(ckpt) end,
    result = function() return slurp(ckpt) end,
    restore = function(s) spit(ckpt, s.old) end },
  { name = "checkpoint load (nn.load)", reuse = true,
    setup = function() return {} end,
    run = function() return segloss.nn.load(ckpt) end,
    held = function() return "" end,
    result = function(_, net) return net_state(net) end },
  { name = "tensor save (.npy over an old file)", reuse = true,
    setup = function()
      local p = dir .. "/t.npy"
      T.full({ 4, 4 }, 1):save(p)
      return { p = p, old = slurp(p) }
    end,
    run = function(s) X2:save(s.p) end,
    held = function(s) return slurp(s.p) end,
    result = function(s) return slurp(s.p) end,
    restore = function(s) spit(s.p, s.old) end },
  { name = "data load (folder of PNG + npy, one batch)", reuse = true,
    setup = function() return {} end,
    run = function()
      local d = segloss.data.folder{ images = ddir .. "/img", masks = ddir .. "/mask" }
      local it = d:batches(2)
      local x, t = it()
      return { x, t }
    end,
    held = function() return "" end,
    result = function(_, r) return B(r) end },
}

local TAIL = 50

-- a seeded sample of m numbers from lo..hi, sorted
local function sample(lo, hi, m, seed)
  local ks, seen = {}, {}
  local s = seed
  local function rnd(n)
    s = (s * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff
    return 1 + (s >> 11) % n
  end
  if hi - lo + 1 <= m then for k = lo, hi do ks[#ks + 1] = k end return ks end
  while #ks < m do
    local k = lo - 1 + rnd(hi - lo + 1)
    if not seen[k] then seen[k] = true ks[#ks + 1] = k end
  end
  table.sort(ks)
  return ks
end

local t0 = os.time()
local total_failed, findings, nscen = 0, {}, 0
local function finding(sc, k, msg)
  findings[#findings + 1] = string.format("%s, k = %d: %s", sc.name, k, msg)
  io.stderr:write("fault: FINDING: ", findings[#findings], "\n")
end

for _, sc in ipairs(scenarios) do
  if not opts.only or sc.name:find(opts.only, 1, true) then
    nscen = nscen + 1
    -- warm up (caches made on first use: oneDNN plans, ...), then count
    local st = sc.setup()
    sc.run(st)
    if sc.restore then sc.restore(st) end
    st = sc.reuse and st or sc.setup()
    collectgarbage()
    core.fault(0)
    local r = sc.run(st)
    local n = core.fault()
    local clean = sc.result(st, r)
    if sc.restore then sc.restore(st) end
    -- the count again: it must not change from run to run
    st = sc.reuse and st or sc.setup()
    collectgarbage()
    core.fault(0)
    sc.run(st)
    local n2 = core.fault()
    if sc.restore then sc.restore(st) end
    if n2 ~= n then
      io.stderr:write(string.format("fault: note: %s: %d then %d allocations in two clean runs\n", sc.name, n, n2))
    end
    local ks = {}
    for k = 1, math.min(n, opts.max) do ks[#ks + 1] = k end
    local sampled = 0
    if n > opts.max then
      -- a seeded sample of the middle, and the last TAIL (a save's own C
      -- allocations come after its Lua work)
      local tail = math.max(opts.max + 1, n - TAIL + 1)
      for _, k in ipairs(sample(opts.max + 1, tail - 1, opts.sample, opts.seed)) do ks[#ks + 1] = k end
      for k = tail, n do ks[#ks + 1] = k end
      sampled = #ks - opts.max
    end
    -- a temporary file left behind by a failed save stays there: the
    -- directory is compared once, before and after every k
    local files = listing(dir)
    local failed, errs, kinds = 0, 0, {}
    for _, k in ipairs(ks) do
      if not sc.reuse then st = sc.setup() end
      local before = sc.held(st)
      collectgarbage()
      core.fault(k)
      local ok, res = pcall(sc.run, st)
      local _, fired, what = core.fault()
      if fired then
        failed = failed + 1
        kinds[what] = (kinds[what] or 0) + 1
        if ok then
          finding(sc, k, "succeeded although allocation " .. k .. " (" .. what .. ") failed")
        elseif type(res) ~= "string" then
          finding(sc, k, "error value is a " .. type(res) .. ", not a message")
        else
          errs = errs + 1
          if sc.held(st) ~= before then finding(sc, k, "partial output after the error: " .. res) end
        end
      elseif not ok then
        finding(sc, k, "error without a failed allocation: " .. tostring(res))
      end
      -- the next call works and gives the clean bits (a scenario that
      -- changes its state, run through, would start from another state)
      if not ok or sc.reuse then
        local ok2, r2 = pcall(sc.run, st)
        if not ok2 then
          finding(sc, k, "the next call fails: " .. tostring(r2))
        elseif sc.result(st, r2) ~= clean then
          finding(sc, k, "the next call gives other bits than the clean run")
        end
      end
      if sc.restore then sc.restore(st) end
    end
    if listing(dir) ~= files then finding(sc, 0, "files left behind: " .. listing(dir)) end
    total_failed = total_failed + failed
    local kl = {}
    for w, c in pairs(kinds) do kl[#kl + 1] = w .. " " .. c end
    table.sort(kl)
    io.stderr:write(string.format("fault: %-66s n = %5d, failed %4d%s (%s), errors %d [%d s]\n", sc.name, n, failed,
      sampled > 0 and string.format(" (1..%d, %d sampled, the last %d)", opts.max,
        sampled - math.min(TAIL, n - opts.max), math.min(TAIL, n - opts.max)) or "",
      table.concat(kl, ", "), errs, os.time() - t0))
  end
end

sh("rm -rf '" .. dir .. "'")
print(string.format("fault: %d scenarios, %d allocations failed on purpose, %d findings", nscen, total_failed,
  #findings))
os.exit(#findings == 0 and 0 or 1)
