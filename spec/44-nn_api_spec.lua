-- segloss.nn and segloss.optim as a user meets them: construction,
-- parameters, modes, errors that name the layer and the shapes, determinism,
-- buffer reuse, checkpoints and the optimisers' options.
local segloss = require "segloss"
local H = require "helpers"
local T, nn, optim = segloss.tensor, segloss.nn, segloss.optim

local function small_unet(o)
  local opts = { input = 1, output = 2, base = 4, depth = 2, dims = 2, norm = "batch", act = "relu",
                 down = "maxpool", up = "bilinear" }
  for k, v in pairs(o or {}) do opts[k] = v end
  return nn.UNet(opts)
end

local function bits_equal(a, b)
  local d = a - b
  return d:max() == 0 and d:min() == 0
end

describe("segloss.nn modules", function()
  before_each(function() segloss.seed(1) end)
  after_each(H.cleanup)

  it("parameters follow PyTorch's layouts and the U-Net's documented names", function()
    local c = nn.Conv2d(3, 8, 3)
    local ps, gs, names = c:parameters()
    assert.are.same({ "weight", "bias" }, names)
    assert.are.same({ 8, 3, 3, 3 }, ps[1]:shape())
    assert.are.same({ 8 }, ps[2]:shape())
    assert.are.same({ 8, 3, 3, 3 }, gs[1]:shape())
    assert.are.same({ 4, 6, 2, 2, 2 }, nn.ConvTranspose3d(4, 6, 2, { stride = 2 }).weight:shape())
    assert.are.same(8 * 3 * 9 + 8, c:nparams())
    local net = small_unet()
    local _, _, n2 = net:parameters()
    assert.are.equal("enc0.unit1.conv.weight", n2[1])
    assert.are.equal("enc0.unit1.norm.bias", n2[4])
    assert.are.equal("dec1.up.weight", n2[25])
    assert.are.equal("out.bias", n2[#n2])
    local bufs = net:buffers()
    assert.are.equal("enc0.unit1.norm.running_mean", bufs[1].name)
  end)

  it("the same seed gives the same network; another seed another", function()
    segloss.seed(5)
    local a = small_unet()
    segloss.seed(5)
    local b = small_unet()
    segloss.seed(6)
    local c = small_unet()
    local pa, pb, pc = a:parameters(), b:parameters(), c:parameters()
    for i = 1, #pa do assert.is_true(bits_equal(pa[i], pb[i])) end
    assert.is_false(bits_equal(pa[1], pc[1]))
  end)

  it("tostring shows the architecture and the size", function()
    local s = tostring(small_unet())
    assert.truthy(s:find("UNet(2-D, 1 -> 2 channels, base 4, depth 2", 1, true))
    assert.truthy(s:find("parameters)", 1, true))
    assert.truthy(s:find("Conv2d(1 -> 4, k3)", 1, true))
    assert.truthy(s:find("MaxPool2d", 1, true))
    assert.are.equal("Conv2d(3 -> 8, k3, stride 2)", tostring(nn.Conv2d(3, 8, 3, { stride = 2 })))
  end)

  it("buffers are reused: a second step allocates no new tensors", function()
    local net = small_unet()
    local x, gy = T.randn(2, 1, 16, 16), T.randn(2, 2, 16, 16)
    local y1 = net:forward(x)
    local g1 = net:backward(x, gy)
    local y2 = net:forward(x)
    local g2 = net:backward(x, gy)
    assert.are.equal(y1, y2)
    assert.are.equal(g1, g2)
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    for _ = 1, 3 do
      net:forward(x)
      net:backward(x, gy)
    end
    collectgarbage()
    collectgarbage()
    -- tensors are userdata of their full size: a new activation would be >= 2 KiB
    assert.is_true(collectgarbage("count") - before < 64, "memory grew by " .. (collectgarbage("count") - before) .. " KiB")
  end)

  it("zero_grad zeroes, backward accumulates", function()
    local c = nn.Conv2d(2, 3, 3)
    local x, gy = T.randn(1, 2, 5, 5), T.randn(1, 3, 5, 5)
    c:forward(x)
    c:backward(x, gy)
    local g1 = c.gradWeight:clone()
    c:backward(x, gy)
    local d = c.gradWeight - g1 * 2
    assert.is_true(math.max(d:max(), -d:min()) <= 1e-5 * math.max(g1:max(), -g1:min()))
    c:zero_grad()
    assert.are.equal(0, c.gradWeight:max())
    assert.are.equal(0, c.gradWeight:min())
  end)

  it("train and evaluate switch BatchNorm between batch and running statistics", function()
    local bn = nn.BatchNorm(2)
    local x = T.randn(4, 2, 3, 3) * 3 + 1
    bn:forward(x)
    local rm = bn.running_mean:clone()
    assert.is_true(rm:max() ~= 0)
    bn:evaluate()
    assert.is_false(bn.training)
    bn:forward(x)
    assert.is_true(bits_equal(rm, bn.running_mean))
    local net = small_unet():evaluate()
    assert.is_false(net.enc[0].modules[1].modules[2].training)
    net:train()
    assert.is_true(net.enc[0].modules[1].modules[2].training)
  end)

  it("one training step gives the same bits on 1 and 2 threads", function()
    local function step(threads)
      return H.with_threads(threads, function()
        segloss.seed(3)
        local net = small_unet { norm = "instance", act = "leaky_relu", down = "stride", up = "transpose" }
        local x, gy = T.randn(4, 1, 32, 32), T.randn(4, 2, 32, 32)
        net:forward(x)
        local used = segloss.core.threads_used()
        local y = net.output:clone()
        local gx = net:backward(x, gy):clone()
        local opt = optim.Adam(net, { lr = 1e-2 })
        opt:step()
        local ps = net:parameters()
        local out = { y, gx }
        for _, p in ipairs(ps) do out[#out + 1] = p:clone() end
        return out, used
      end)
    end
    local a = step(1)
    -- the small convolutions of this net stay below the work threshold:
    -- lift it, so that the step really runs on the team
    local prev = segloss.core.conv_min_flops(0)
    local ok, b, used = pcall(step, 2)
    segloss.core.conv_min_flops(prev)
    assert(ok, b)
    assert.are.equal(2, used)
    for i = 1, #a do assert.is_true(bits_equal(a[i], b[i]), "tensor " .. i .. " differs") end
  end)
end)

describe("segloss.nn errors name the layer and the shapes", function()
  it("wrong inputs", function()
    local c = nn.Conv2d(3, 8, 3)
    H.errors("segloss.nn.Conv2d(3, 8, 3): input must have the shape (N, 3, H, W)", { "{2,1,8,8}" },
      c.forward, c, T.zeros(2, 1, 8, 8))
    H.errors("segloss.nn.Conv2d(3, 8, 3): input must have the shape", { "{2,3,8}" }, c.forward, c, T.zeros(2, 3, 8))
    H.errors("segloss.nn.Conv2d(3, 8, 3): input must be a segloss.Tensor", { "string" }, c.forward, c, "x")
    local net = small_unet()
    H.errors("segloss.nn.UNet: input {1,1,10,16}: every spatial size must be a multiple of 2^depth = 4",
      { "dimension 3 is 10" }, net.forward, net, T.zeros(1, 1, 10, 16))
    H.errors("segloss.nn.UNet: input must have the shape (N, 1, H, W)", { "{1,2,16,16}" },
      net.forward, net, T.zeros(1, 2, 16, 16))
    H.errors("segloss.nn.UNet: input must have the shape", { "{1,1,16,16,16}" }, net.forward, net,
      T.zeros(1, 1, 16, 16, 16))
    local deep = nn.UNet { input = 1, output = 1, base = 2, depth = 3, norm = "instance" }
    H.errors("segloss.nn.UNet: input {2,1,8,8} is too small for depth 3 with instance norm: the deepest level would "
      .. "hold 1 value per sample and channel", {}, deep.forward, deep, T.zeros(2, 1, 8, 8))
    local bdeep = nn.UNet { input = 1, output = 1, base = 2, depth = 3, norm = "batch" }
    H.errors("segloss.nn.UNet: input {1,1,8,8} is too small for depth 3 with batch norm in training", {},
      bdeep.forward, bdeep, T.zeros(1, 1, 8, 8))
    bdeep:evaluate()
    assert.are.same({ 1, 1, 8, 8 }, bdeep:forward(T.zeros(1, 1, 8, 8)):shape())
    local p = nn.MaxPool2d(2)
    H.errors("segloss.nn.MaxPool2d(2): input {1,1,1,4} is smaller than the window 2", {}, p.forward, p, T.zeros(1, 1, 1, 4))
    local up = nn.Upsample { mode = "bilinear" }
    H.errors('segloss.nn.Upsample{scale = 2, mode = "bilinear"}: input must have the shape (N, C, H, W)',
      { "{1,1,2,2,2}" }, up.forward, up, T.zeros(1, 1, 2, 2, 2))
    local bn = nn.BatchNorm(4)
    H.errors("segloss.nn.BatchNorm(4): input must have the shape (N, 4, H, W)", { "{2,3,4,4}" }, bn.forward, bn,
      T.zeros(2, 3, 4, 4))
    H.errors("segloss.nn.BatchNorm(4): training needs more than one value per channel", {}, bn.forward, bn,
      T.zeros(1, 4, 1, 1))
  end)

  it("backward before forward, with another input, or a gradient of the wrong shape", function()
    local c = nn.Conv2d(1, 2, 3)
    local x = T.zeros(1, 1, 4, 4)
    H.errors("segloss.nn.Conv2d(1, 2, 3): backward called before forward", {}, c.backward, c, x, T.zeros(1, 2, 4, 4))
    c:forward(x)
    H.errors("segloss.nn.Conv2d(1, 2, 3): backward(x, gy) needs the input of the last forward", {},
      c.backward, c, T.zeros(1, 1, 4, 4), T.zeros(1, 2, 4, 4))
    H.errors("segloss.nn.Conv2d(1, 2, 3): gradient must have the output's shape {1,2,4,4}", { "{1,2,4,3}" },
      c.backward, c, x, T.zeros(1, 2, 4, 3))
    x:fill(1)
    H.errors("segloss.nn.Conv2d(1, 2, 3): the input {1,1,4,4} was changed after forward", {},
      c.backward, c, x, T.zeros(1, 2, 4, 4))
    local net = small_unet()
    H.errors("segloss.nn.UNet: backward called before forward", {}, net.backward, net, T.zeros(1, 1, 8, 8),
      T.zeros(1, 2, 8, 8))
  end)

  it("bad constructor arguments and options", function()
    H.errors("segloss.nn.Conv2d: kernel_size must be 1 or 3, got 5", {}, nn.Conv2d, 1, 2, 5)
    H.errors("segloss.nn.Conv2d: in_channels must be an integer in 1..65536, got 0", {}, nn.Conv2d, 0, 2, 3)
    H.errors('segloss.nn.Conv2d: unknown option "strid" (did you mean "stride"?)', {}, nn.Conv2d, 1, 2, 3, { strid = 2 })
    H.errors("segloss.nn.Conv2d: option stride must be an integer in 1..2, got 3", {}, nn.Conv2d, 1, 2, 3, { stride = 3 })
    H.errors("segloss.nn.Conv2d: option padding must be an integer in 1..1, got 0", {}, nn.Conv2d, 1, 2, 3, { padding = 0 })
    H.errors("segloss.nn.ConvTranspose2d: kernel_size must be 2, got 3", {}, nn.ConvTranspose2d, 1, 2, 3)
    H.errors('segloss.nn.UNet: unknown option "dept" (did you mean "depth"?)', {}, nn.UNet, { dept = 3 })
    H.errors('segloss.nn.UNet: option norm must be one of "batch", "instance", "none", got string "group"', {},
      nn.UNet, { norm = "group" })
    H.errors('segloss.nn.UNet: option up = "bilinear" needs dims = 2', {}, nn.UNet, { dims = 3, up = "bilinear" })
    H.errors("segloss.nn.Sequential: element 2 must be a one-input segloss.nn module, got 3", {},
      nn.Sequential, { nn.ReLU(), 3 })
    H.errors("segloss.nn.LeakyReLU: negative_slope must be a finite number >= 0, got nan", {}, nn.LeakyReLU, 0 / 0)
    H.errors("segloss.nn.Upsample: option mode must be one of", { "cubic" }, nn.Upsample, { mode = "cubic" })
  end)
end)

describe("checkpoints", function()
  after_each(H.cleanup)

  it("save and load give the same network, statistics and optimiser state", function()
    segloss.seed(2)
    local net = small_unet()
    local x, gy = T.randn(2, 1, 8, 8), T.randn(2, 2, 8, 8)
    net:forward(x)
    net:backward(x, gy)
    local opt = optim.Adam(net, { lr = 1e-3 })
    opt:step()
    local path = H.tmpname(".npz")
    net:save(path, { optim = opt })
    local net2, extra = nn.load(path)
    local p1, _, n1 = net:parameters()
    local p2, _, n2 = net2:parameters()
    assert.are.same(n1, n2)
    for i = 1, #p1 do assert.is_true(bits_equal(p1[i], p2[i]), n1[i]) end
    local b1, b2 = net:buffers(), net2:buffers()
    for i = 1, #b1 do assert.is_true(bits_equal(b1[i].value, b2[i].value), b1[i].name) end
    net:evaluate()
    net2:evaluate()
    assert.is_true(bits_equal(net:forward(x), net2:forward(x)))
    local opt2 = optim.Adam(net2, { lr = 1e-3 }):load_state(extra.optim)
    assert.are.equal(1, opt2.nstep)
    assert.is_true(bits_equal(opt.buf.exp_avg_sq[3], opt2.buf.exp_avg_sq[3]))
    assert.are.equal("UNet", extra.meta.model.class)
  end)

  it("loading into a network of other shapes names the parameter and both shapes", function()
    local path = H.tmpname(".npz")
    small_unet():save(path)
    local other = small_unet { base = 8 }
    H.errors("segloss.nn.Module:load: parameter enc0.unit1.conv.weight has the shape {8,1,3,3} in the module but {4,1,3,3}",
      {}, other.load, other, path)
    local fewer = small_unet { norm = "none" }
    H.errors("segloss.nn.Module:load: " .. path .. " holds param.enc0.unit1.norm.weight, which the module does not have",
      {}, fewer.load, fewer, path)
  end)

  it("numpy.load opens a checkpoint: parameters and the JSON metadata", function()
    -- (without the sanitizers' preload of make asan, which python does not take)
    if not os.execute("env -u LD_PRELOAD /usr/bin/python3 -c 'import numpy' 2>/dev/null") then
      pending("python3-numpy is not installed")
      return
    end
    segloss.seed(4)
    local net = small_unet()
    local path = H.tmpname(".npz")
    net:save(path)
    local py = "import numpy, json, sys; z = numpy.load(sys.argv[1]); m = json.loads(bytes(z['segloss_meta']));"
      .. " w = z['param.enc0.unit1.conv.weight']; print(m['model']['class'], w.dtype, w.shape, repr(float(w[3,0,1,2])),"
      .. " len([k for k in z.files if k.startswith('param.')]))"
    local p = assert(io.popen(string.format("env -u LD_PRELOAD /usr/bin/python3 -c %q %s", py, path)))
    local out = p:read("a")
    p:close()
    local w = net:parameters()[1]
    local _, _, names = net:parameters()
    local cls, dtype, shape, v, n = out:match("^(%S+) (%S+) (%b()) (%S+) (%d+)\n$")
    assert.are.same({ "UNet", "float32", "(4, 1, 3, 3)", #names }, { cls, dtype, shape, tonumber(n) })
    assert.are.equal(w:get(4, 1, 2, 3), tonumber(v))
  end)

  it("a Sequential of every layer kind saves and loads", function()
    segloss.seed(9)
    local s = nn.Sequential { nn.Conv2d(1, 3, 3, { stride = 2 }), nn.BatchNorm(3), nn.LeakyReLU(0.2),
                              nn.MaxPool2d(2), nn.Upsample { scale = 2, mode = "bilinear" },
                              nn.InstanceNorm(3, { affine = true }), nn.ReLU(), nn.ConvTranspose2d(3, 2, 2) }
    local x = T.randn(2, 1, 8, 8)
    s:forward(x)
    local path = H.tmpname(".npz")
    s:save(path)
    local s2 = nn.load(path)
    assert.are.equal(tostring(s), tostring(s2))
    s:evaluate()
    s2:evaluate()
    assert.is_true(bits_equal(s:forward(x), s2:forward(x)))
    nn.MaxPool3d(2):save(path)
    assert.are.equal("MaxPool3d(2)", tostring(nn.load(path)))
  end)

  it("optimiser settings come back with the state, checked", function()
    local net = nn.Conv2d(1, 1, 1)
    local opt = optim.Adam(net, { lr = 0.5, betas = { 0.5, 0.75 }, eps = 1e-6 })
    opt:step()
    local st = opt:state()
    local o2 = optim.Adam(net):load_state(st)
    assert.are.same({ 0.5, 0.75 }, o2.opts.betas)
    assert.are.equal(0.5, o2:lr())
    st.opts.betas = { 2, 3 }
    H.errors("segloss.optim.Adam:load_state (the state's settings): option betas must be", {}, o2.load_state, o2, st)
    st.opts.betas = { 0.5, 0.75 }
    st.step = math.maxinteger
    H.errors("segloss.optim.Adam:load_state: the state's step must be an integer in 0..2^53 - 1", {},
      o2.load_state, o2, st)
  end)

  it("a plain .npz of param. entries (e.g. from a PyTorch state_dict) loads into a module", function()
    local c = nn.Conv2d(2, 3, 3)
    local path = H.tmpname(".npz")
    segloss.core.npz_save(path, { { "param.weight", T.ones(3, 2, 3, 3) }, { "param.bias", T.full({ 3 }, 2) } })
    c:load(path)
    assert.are.equal(1, c.weight:min())
    assert.are.equal(2, c.bias:max())
    H.errors("segloss.nn.load: " .. path .. " is a .npz file but not a segloss checkpoint", {}, nn.load, path)
  end)

  it("a truncated or foreign file is an error, never a crash", function()
    local path = H.tmpname(".npz")
    small_unet():save(path)
    local data = H.readfile(path)
    for _, cut in ipairs { 0, 10, 100, #data // 2, #data - 30, #data - 1 } do
      local p = H.tmpname(".npz")
      local f = assert(io.open(p, "wb"))
      f:write(data:sub(1, cut))
      f:close()
      local ok, err = pcall(nn.load, p)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("^segloss"), tostring(err))
    end
    local npy = H.tmpname(".npy")
    T.zeros(3):save(npy)
    local ok, err = pcall(nn.load, npy)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("^segloss"), tostring(err))
  end)
end)

describe("segloss.optim", function()
  it("set_lr takes a number or a schedule of the step count", function()
    local p, g = T.ones(4), T.ones(4)
    local opt = optim.SGD({ p }, { g }, { lr = 0.5 })
    opt:step()
    assert.are.equal(0.5, p:get(1))
    opt:set_lr(segloss.schedule.step({ 0.25, 0.125 }, { 2 }))
    assert.are.equal(0.25, opt:lr())
    opt:step()
    assert.are.equal(0.25, p:get(1))
    opt:step()
    assert.are.equal(0.125, p:get(1))
    H.errors("segloss.optim.SGD:set_lr: lr must be a number in [0, 3.4028235e+38] or a segloss.schedule", { "-1" },
      opt.set_lr, opt, -1)
  end)

  it("clip_grad_norm scales to the global norm as torch does", function()
    local g1, g2 = T.full({ 3 }, 3), T.full({ 4 }, 2)
    local norm = optim.clip_grad_norm({ g1, g2 }, 1)
    assert.are.equal(math.sqrt(27 + 16), norm)
    local c = 1 / (norm + 1e-6)
    assert.is_true(math.abs(g1:get(1) - 3 * c) < 1e-6)
    assert.are.equal(norm, math.sqrt(27 + 16))
    local n2 = optim.clip_grad_norm({ g1, g2 }, 10)
    assert.is_true(math.abs(n2 - 1) < 1e-5)
    assert.is_true(math.abs(g1:get(1) - 3 * c) < 1e-6, "no clipping below max_norm")
    H.errors("segloss.optim.clip_grad_norm: max_norm must be a finite number > 0, got 0", {},
      optim.clip_grad_norm, { g1 }, 0)
    H.errors("segloss.optim.clip_grad_norm: a gradient holds NaN or Inf", {},
      optim.clip_grad_norm, { T.full({ 2 }, 0 / 0) }, 1)
    H.errors("segloss.optim.clip_grad_norm: a gradient holds NaN or Inf", {},
      optim.clip_grad_norm, { T.ones(2), T.full({ 2 }, -1 / 0) }, 1)
    -- finite gradients whose squares overflow float32
    local big = T.full({ 4 }, 1e20)
    local n3 = optim.clip_grad_norm({ big }, 1)
    assert.is_true(math.abs(n3 - 2e20) <= 1e-6 * 2e20, tostring(n3))
    assert.is_true(math.abs(big:get(1) - 0.5) < 1e-6)
  end)

  it("bad options and arguments", function()
    local net = nn.Conv2d(1, 1, 1)
    H.errors('segloss.optim.Adam: unknown option "beta" (did you mean "betas"?)', {}, optim.Adam, net, { beta = 1 })
    H.errors("segloss.optim.Adam: option betas must be a list of two numbers in [0, 1)", {}, optim.Adam, net,
      { betas = { 0.9, 1 } })
    H.errors("segloss.optim.SGD: nesterov needs momentum > 0 and dampening = 0", {}, optim.SGD, net, { nesterov = true })
    H.errors("segloss.optim.SGD: expects a segloss.nn module or two lists (params, grads), got 3", {},
      optim.SGD, 3)
    H.errors("segloss.optim.SGD: params[1] has the shape {2} but grads[1] {3}", {}, optim.SGD, { T.zeros(2) },
      { T.zeros(3) })
    local p = T.ones(2)
    H.errors("segloss.optim.Adam: params[2] is params[1]: each parameter may be given once", {}, optim.Adam,
      { p, p }, { T.ones(2), T.ones(2) })
    H.errors("segloss.optim.Adam: option eps must be a number in", { "1e-46" }, optim.Adam, net, { eps = 1e-46 })
    local c = nn.ReLU()
    H.errors("segloss.nn.Sequential: element 2 is element 1", {}, nn.Sequential, { c, c })
  end)
end)
