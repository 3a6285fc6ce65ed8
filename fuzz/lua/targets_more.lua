--- The fuzzer's targets for the network, optimisers, checkpoints, data and
-- the core's kernels (fuzz/lua/targets.lua has the rest).
return function(R, segloss, H)
  local add, lit, sorted_keys, numel = H.add, H.lit, H.sorted_keys, H.numel
  local loss_ctx = H.loss_ctx

  -- layers -----------------------------------------------------------------
  -- each class: constructor arguments, and the input shape it takes
  local function spatial(g, dims, lo, hi)
    local s = {}
    for i = 1, dims do s[i] = g:int(lo or 1, hi or 6) end
    return s
  end
  local LAYERS = {
    Conv2d = function(g)
      local cin, cout, k = g:int(1, 3), g:int(1, 3), g:pick { 1, 3, 3 }
      return { lit(cin), lit(cout), lit(k),
        g:opts({ stride = function() return g:num(1, 2, true) end,
          padding = function() return g:num((k - 1) // 2, (k - 1) // 2, true) end,
          bias = function() return g:pick { "true", "false" } end }) }, 2, cin
    end,
    Conv3d = function(g)
      local cin = g:int(1, 2)
      return { lit(cin), lit(g:int(1, 2)), lit(g:pick { 1, 3 }),
        g:opts({ stride = function() return g:num(1, 2, true) end, bias = function() return g:pick { "true", "false" } end }) },
        3, cin
    end,
    ConvTranspose2d = function(g)
      local cin = g:int(1, 3)
      return { lit(cin), g:num(1, 3, true), g:maybe("2"), g:opts({ stride = function() return g:num(2, 2, true) end }) }, 2, cin
    end,
    ConvTranspose3d = function(g)
      local cin = g:int(1, 2)
      return { lit(cin), g:num(1, 2, true), "2" }, 3, cin
    end,
    MaxPool2d = function(g) return { g:num(1, 3, true) }, 2 end,
    MaxPool3d = function(g) return { g:num(1, 2, true) }, 3 end,
    Upsample = function(g)
      local dims = g:int(2, 3)
      return { g:opts({ scale = function() return g:num(1, 3, true) end,
        mode = function() return lit(g:pick { "nearest", dims == 2 and "bilinear" or "trilinear" }) end,
        align_corners = function() return "false" end }) }, dims
    end,
    BatchNorm = function(g)
      local c = g:int(1, 3)
      return { lit(c), g:opts({ eps = function() return g:num(0, 1) end, momentum = function() return g:num(0, 1) end,
        affine = function() return g:pick { "true", "false" } end }) }, g:int(2, 3), c
    end,
    InstanceNorm = function(g)
      local c = g:int(1, 3)
      return { lit(c), g:opts({ eps = function() return g:num(0, 1) end, affine = function() return g:pick { "true", "false" } end }) },
        g:int(2, 3), c
    end,
    ReLU = function(g) return { g:opts({ inplace = function() return g:pick { "true", "false" } end }) }, g:int(1, 3) end,
    LeakyReLU = function(g)
      return { g:num(0, 1), g:opts({ inplace = function() return g:pick { "true", "false" } end }) }, g:int(1, 3)
    end,
    UNet = function(g)
      local dims = g:chance(0.8) and 2 or 3
      local input = g:int(1, 2)
      local o = g:opts({
        input = function() return lit(input) end, output = function() return g:num(1, 3, true) end,
        base = function() return g:num(1, 4, true) end, depth = function() return g:num(0, 2, true) end,
        dims = function() return lit(dims) end,
        norm = function() return lit(g:pick { "batch", "instance", "none" }) end,
        act = function() return lit(g:pick { "relu", "leaky_relu" }) end,
        down = function() return lit(g:pick { "maxpool", "stride" }) end,
        up = function() return lit(g:pick { "transpose", dims == 2 and "bilinear" or "trilinear" }) end,
      }, 5)
      -- small networks: the defaults (base 16, depth 4) take a second per call under the sanitizers
      if o:sub(1, 1) == "{" then
        if not o:find('"base"') then o = '{["base"] = ' .. lit(g:int(1, 3)) .. ", " .. o:sub(2) end
        if not o:find('"depth"') then o = '{["depth"] = ' .. lit(g:int(0, 2)) .. ", " .. o:sub(2) end
        if not o:find('"dims"') then o = '{["dims"] = ' .. lit(dims) .. ", " .. o:sub(2) end
        if not o:find('"input"') then o = '{["input"] = ' .. lit(input) .. ", " .. o:sub(2) end
      end
      return { o }, dims, input, true
    end,
    Sequential = function(g)
      local c = g:int(1, 2)
      local list = {}
      for i = 1, g:int(0, 3) do
        list[i] = g:pick { "nn.ReLU()", string.format("nn.Conv2d(%d, %d, 3)", c, c), "nn.LeakyReLU(0.1)",
          string.format("nn.InstanceNorm(%d)", c), "nn.MaxPool2d(2)" }
      end
      if g:chance(0.05) then list[#list + 1] = g:garbage() end
      return { "{" .. table.concat(list, ", ") .. "}" }, 2, c
    end,
    Concat = function() return {}, 2 end,
  }
  -- a layer built with clean arguments, and an input for it
  local function layer(g, cls)
    local saved = g.clean
    g.clean = true
    local args, dims, c, unet = LAYERS[cls](g)
    g.clean = saved
    local m = g:var(string.format("nn.%s(%s)", cls, table.concat(args, ", ")))
    local s = { g:int(1, 2), c or g:int(1, 3) }
    local sp = spatial(g, dims, 1, unet and (dims == 3 and 2 or 4) or 6)
    if unet then for i = 1, dims do sp[i] = math.min(sp[i], 4) * 4 end end
    for _, d in ipairs(sp) do s[#s + 1] = d end
    if g:chance(0.05) then s[2] = s[2] + 1 end
    local x = g:tensor(s, "logit")
    return m, x, s
  end
  local NN_METHOD = {
    forward = function(g, m, x, cls)
      if cls == "Concat" then return { x, x } end
      return { x }
    end,
    backward = function(g, m, x, cls, s)
      if cls == "Concat" then
        local y = g:var(string.format("select(2, pcall(%s.forward, %s, %s, %s))", m, m, x, x))
        return { x, x, g:chance(0.9) and string.format("(T.istensor(%s) and T.randn(%s:shape()) or %s)", y, y, y)
          or g:tensor(s, "any") }
      end
      local y = g:var(string.format("select(2, pcall(%s.forward, %s, %s))", m, m, x))
      local gy = g:chance(0.9) and g:var(string.format("T.istensor(%s) and T.randn(%s:shape()) or %s", y, y, y))
        or g:tensor(s, "any")
      return { x, gy }
    end,
    parameters = function() return {} end, buffers = function() return {} end,
    zero_grad = function() return {} end, train = function() return {} end, evaluate = function() return {} end,
    nparams = function() return {} end, reset = function() return {} end, __tostring = function() return {} end,
    save = function(g)
      return { g:chance(0.9) and g:path(".npz") or g:pick { '"/nonexistent/x.npz"', "1", '""' },
        g:chance(0.1) and g:garbage() or nil }
    end,
    load = function(g, m)
      local p = g:path(".npz")
      g:emit("pcall(%s.save, %s, %s)", m, m, p)
      if g:chance(0.5) then
        g:emit("do local f = io.open(%s, 'rb') if f then local s = f:read('a') f:close() f = io.open(%s, 'wb') " ..
          "f:write(s:sub(1, %d)) f:close() end end", p, p, g:int(0, 2000))
      end
      return { p }
    end,
    is_module = function(g, m) return { g:chance(0.5) and m or g:garbage() } end,
  }
  for _, cls in ipairs(sorted_keys(LAYERS)) do
    add("segloss.nn." .. cls, function(g)
      local args = LAYERS[cls](g)
      if g:chance(0.05) then args[#args + 1] = g:garbage() end
      return "nn." .. cls, args
    end, { prefixes = { "segloss.nn." .. cls } })
    local names = {}
    local obj = segloss.nn[cls]
    local t = obj
    while type(t) == "table" do
      for _, k in ipairs(sorted_keys(t)) do
        if type(k) == "string" and type(rawget(t, k)) == "function" and (k:sub(1, 1) ~= "_" or k == "__tostring") then
          names[k] = true
        end
      end
      local mt = getmetatable(t)
      t = mt and type(mt.__index) == "table" and mt.__index or nil
    end
    for _, k in ipairs(sorted_keys(names)) do
      local mg = NN_METHOD[k]
      if mg then
        add("segloss.nn." .. cls .. ":" .. k, function(g)
          local m, x, s = layer(g, cls)
          if g:chance(0.2) then g:emit("pcall(%s.%s, %s)", m, g:pick { "train", "evaluate", "zero_grad" }, m) end
          local a = mg(g, m, x, cls, s)
          if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
          if k == "forward" and cls:find("ReLU") then g:mutable(x) end -- inplace = true writes x
          if k == "backward" and (cls:find("ReLU") or cls == "Sequential" or cls == "UNet") then
            g:mutable(x) -- forward before backward may write x in place
            for _, v in ipairs(a) do if type(v) == "string" and v:match("^v%d+$") then g:mutable(v) end end
          end
          if k == "load" or k == "reset" then g.nan_ok = false end
          if k == "__tostring" then return "tostring", { m } end
          return string.format("%s.%s", m, k), { g:chance(0.97) and m or g:garbage(), table.unpack(a, 1, #a) }
        end, { prefixes = { "segloss.nn", "segloss.core.npz", "segloss.Module" } })
      end
    end
  end
  add("segloss.nn.is_module", function(g)
    return "nn.is_module", { g:chance(0.5) and "nn.ReLU()" or g:garbage() }
  end)
  add("segloss.nn.load", function(g)
    local r = math.random()
    if r < 0.1 then return "nn.load", { g:maybe(g:path(".npz"), 0.5) } end
    local m = layer(g, g:pick { "Conv2d", "UNet", "BatchNorm", "Sequential", "ConvTranspose2d" })
    local p = g:path(".npz")
    if g:chance(0.3) then
      g:emit("pcall(%s.save, %s, %s, {optim = segloss.optim.Adam(%s)})", m, m, p, m)
    else
      g:emit("pcall(%s.save, %s, %s)", m, m, p)
    end
    if r < 0.8 then
      -- truncated or mutated: the same bytes through the generator's mutator
      local seed = g:int(1, 1 << 30)
      g:emit("do local f = io.open(%s, 'rb') if f then local s = f:read('a') f:close() " ..
        "local r = %d local b = {} for k = 1, #s do b[k] = s:byte(k) end for _ = 1, %d do if #b == 0 then break end " ..
        "r = (r * 1103515245 + 12345) %% 2147483648 local i = r %% #b + 1 b[i] = (b[i] + r //65536) %% 256 end " ..
        "local n = %s for k = 1, #b do b[k] = string.char(b[k]) end f = io.open(%s, 'wb') " ..
        "f:write(table.concat(b, '', 1, math.min(#b, n))) f:close() end end",
        p, seed, g:int(0, 6), g:chance(0.5) and tostring(g:int(0, 3000)) or "math.huge", p)
    end
    return "nn.load", { p }
  end, { prefixes = { "segloss.nn.load", "segloss.core.npz_load" } })

  -- optimisers -----------------------------------------------------------------
  local function optim_opts(g, kind)
    local spec = {
      lr = function() return g:chance(0.1) and "segloss.schedule.linear(0.1, 0, 3)" or g:num(0, 1) end,
      weight_decay = function() return g:num(0, 1) end,
    }
    if kind == "SGD" then
      spec.momentum = function() return g:num(0, 1) end
      spec.nesterov = function() return g:pick { "true", "false" } end
      spec.dampening = function() return g:num(0, 1) end
    else
      spec.betas = function() return string.format("{%s, %s}", g:num(0, 1), g:num(0, 1)) end
      spec.eps = function() return g:num(0, 1e-3) end
    end
    return g:opts(spec, 3)
  end
  local function model(g)
    local m, x = layer(g, g:pick { "Conv2d", "BatchNorm", "Conv2d", "ConvTranspose2d", "InstanceNorm",
      g:chance(0.2) and "UNet" or "Conv2d" })
    -- a gradient to step on
    g:emit("pcall(function() local y = %s:forward(%s) %s:backward(%s, T.randn(y:shape())) end)", m, x, m, x)
    return m
  end
  for _, kind in ipairs { "Adam", "AdamW", "SGD" } do
    add("segloss.optim." .. kind, function(g)
      if g:chance(0.2) then
        local s = g:shape(1, 3, 16)
        local p, gr = g:tensor(s, "any"), g:tensor(g:chance(0.9) and s or g:shape(1, 3, 16), "any")
        return "segloss.optim." .. kind, { "{" .. p .. "}", "{" .. gr .. "}", optim_opts(g, kind) }
      end
      return "segloss.optim." .. kind, { g:chance(0.95) and model(g) or g:garbage(), optim_opts(g, kind) }
    end)
  end
  add("segloss.optim.clip_grad_norm", function(g)
    local m = model(g)
    return "segloss.optim.clip_grad_norm", { g:chance(0.9) and m or g:garbage(), g:num(0, 10) }
  end)
  local OPTM = {
    step = function() return {} end, lr = function() return {} end,
    set_lr = function(g) return { g:num(0, 1) } end,
    state = function() return {} end,
    load_state = function(g, o, m)
      local kind = g:pick { "Adam", "AdamW", "SGD" }
      local other = g:var(string.format("segloss.optim.%s(%s)", kind, m))
      if g:chance(0.5) then g:emit("pcall(%s.step, %s)", other, other) end
      local st = g:var(string.format("%s:state()", other))
      if g:chance(0.3) then
        g:emit("%s.%s = %s", st, g:pick { "step", "lr", "kind", "opts", "tensors" }, g:garbage())
      end
      return { st }
    end,
    __tostring = function() return {} end,
  }
  for _, k in ipairs(sorted_keys(OPTM)) do
    add("segloss.Optimizer:" .. k, function(g)
      local m = model(g)
      local kind = g:pick { "Adam", "AdamW", "SGD" }
      local saved = g.clean
      g.clean = true
      local o = g:var(string.format("segloss.optim.%s(%s, %s)", kind, m, optim_opts(g, kind)))
      g.clean = saved
      if g:chance(0.5) then g:emit("pcall(%s.step, %s)", o, o) end
      local a = OPTM[k](g, o, m)
      if k == "__tostring" then return "tostring", { o } end
      if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
      return string.format("%s.%s", o, k), { g:chance(0.97) and o or g:garbage(), table.unpack(a, 1, #a) }
    end, { prefixes = { "segloss.optim" } })
  end

  -- data ---------------------------------------------------------------------------
  local function synth_opts(g)
    return g:opts({
      n = function() return g:num(1, 6, true) end,
      size = function()
        local d = g:chance(0.8) and 2 or 3
        local s = {}
        for i = 1, d + (g:chance(0.05) and 1 or 0) do s[i] = g:num(8, 12, true) end
        return "{" .. table.concat(s, ", ") .. "}"
      end,
      foreground = function() return g:num(1e-4, 0.05) end,
      empty = function() return g:num(0, 1) end,
      seed = function() return g:num(0, 100, true) end,
      shapes = function() return lit({ g:pick { "disc", "ellipse", "blob", "line", "ring" } }) end,
      distractors = function() return g:pick { "true", "false" } end,
      noise = function() return g:num(0, 1) end,
      contrast = function() return g:num(0, 2) end,
      targets = function() return g:num(1, 4, true) end,
    }, 4)
  end
  add("segloss.data.synthetic", function(g)
    local o = synth_opts(g)
    if o:sub(1, 1) == "{" and not o:find("size") then o = "{size = {8, 8}, " .. o:sub(2) end
    return "segloss.data.synthetic", { o }
  end)
  add("segloss.data.mri", function(g)
    return "segloss.data.mri", { g:opts({
      n = function() return g:num(1, 3, true) end,
      size = function() return string.format("{%s, %s}", g:num(16, 40, true), g:num(16, 40, true)) end,
      seed = function() return g:num(0, 9, true) end,
      dir = function() return g:chance(0.5) and lit(segloss.data.MRI_DIR) or g:path() end,
      foreground = function() return g:num(1e-4, 0.05) end,
    }, 3) }
  end)
  add("segloss.data.tensors", function(g)
    local ctx = loss_ctx(g, "sigmoid")
    local ts = { ctx.N, 1 }
    for i = 1, ctx.sdim do ts[#ts + 1] = ctx.S[i] end
    local t = g:tensor(ts, "labels", 3)
    return "segloss.data.tensors", { ctx.x, t, g:opts({ classes = function() return g:num(2, 4, true) end,
      seed = function() return g:num(0, 9, true) end,
      names = function() return "{" .. string.rep('"a", ', ctx.N) .. "}" end }) }
  end)
  -- a folder of image and mask files: PNGs made by the library, some damaged, and garbage
  local function png_bytes(g, s, depth)
    -- the bytes of a PNG the library writes, read back (or nil in the source)
    local p = g:path(".png")
    local ok = g:var(string.format("pcall(core.png_save, %s, T.from(%s, %s), %d)", p,
      lit((function() local v = {} for i = 1, numel(s) do v[i] = math.random(0, depth == 8 and 255 or 3) end return v end)()),
      lit(s), depth))
    return p, ok
  end
  add("segloss.data.folder", function(g)
    local dir = g:path()
    g:emit("os.execute('mkdir -p ' .. %s .. '/img ' .. %s .. '/msk')", dir, dir)
    g.files[#g.files + 1] = dir .. " .. '/img'"
    g.files[#g.files + 1] = dir .. " .. '/msk'"
    local s = { g:int(1, 8), g:int(1, 8) }
    for i = 1, g:int(0, 3) do
      for _, sub in ipairs { "img", "msk" } do
        local name = g:pick { "a", "b", "c" } .. i .. g:pick { ".png", ".png", ".npy", ".txt", "" }
        local p = string.format("%s .. '/%s/%s'", dir, sub, name)
        g.files[#g.files + 1] = p
        local r = math.random()
        if r < 0.6 then
          local _, src = png_bytes(g, g:chance(0.9) and s or { g:int(1, 8), g:int(1, 8) }, g:pick { 8, 16 })
          local _ = src
          g:emit("os.rename(%s, %s)", g.files[#g.files - 1], p)
          if g:chance(0.3) then
            g:emit("do local f = io.open(%s, 'rb') if f then local b = f:read('a') f:close() f = io.open(%s, 'wb') " ..
              "f:write(b:sub(1, %d) .. %s .. b:sub(%d)) f:close() end end", p, p, g:int(0, 60),
              lit(g:randbytes(g:int(0, 4))), g:int(1, 80))
          end
        elseif r < 0.8 then
          g:emit("pcall(T.save, T.rand(%s), %s)", lit(s), p)
        else
          g:emit("do local f = io.open(%s, 'wb') f:write(%s) f:close() end", p, lit(g:randbytes(g:int(0, 64))))
        end
      end
    end
    g.files[#g.files + 1] = dir
    return "segloss.data.folder", { g:opts({
      images = function() return dir .. " .. '/img'" end, masks = function() return dir .. " .. '/msk'" end,
      classes = function() return g:num(2, 5, true) end, split = function() return g:num(0, 1) end,
      seed = function() return g:num(0, 9, true) end,
    }, 5) }
  end)
  local DS = {
    batches = function(g)
      return { g:num(1, 4, true), g:opts({ shuffle = function() return g:pick { "true", "false" } end,
        augment = function() return g:pick { "true", "false", "{flip = true, rotate = true, scale = 0.1, shift = 0.5}" } end,
        seed = function() return g:num(0, 9, true) end, drop_last = function() return g:pick { "true", "false" } end }) }
    end,
    split = function(g) return { g:num(0, 1), g:chance(0.5) and g:num(0, 9, true) or nil } end,
    subset = function(g)
      local l = {}
      for i = 1, g:int(0, 4) do l[i] = g:num(1, 5, true) end
      return { "{" .. table.concat(l, ", ") .. "}" }
    end,
    __len = function() return {} end,
  }
  for _, k in ipairs(sorted_keys(DS)) do
    add("segloss.Dataset:" .. k, function(g)
      local saved = g.clean
      g.clean = true
      local o = synth_opts(g)
      g.clean = saved
      local d = g:var(string.format("segloss.data.synthetic(%s)",
        o:find("size") and o or "{size = {8, 8}, n = 4, " .. o:sub(2)))
      local a = DS[k](g)
      if k == "__len" then return "function(d) return #d end", { d } end
      if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
      local fn = k == "batches" and
        string.format("function(...) local n = 0 for x, t in %s.batches(...) do n = n + x:numel() + t:numel() end return n end", d)
        or string.format("%s.%s", d, k)
      return fn, { g:chance(0.97) and d or g:garbage(), table.unpack(a, 1, #a) }
    end, { prefixes = { "segloss.Dataset", "segloss.data" } })
  end

  -- experiment helpers that run no study ----------------------------------------
  add("segloss.experiment.is_settings", function(g)
    return "segloss.experiment.is_settings", { g:chance(0.5) and "{}" or g:garbage() }
  end)
  add("segloss.experiment.parse_shard", function(g)
    return "segloss.experiment.parse_shard", { g:maybe(lit(string.format("%d/%d", g:int(0, 4), g:int(0, 4))), 0.3),
      g:chance(0.5) and '"segloss.experiment.run"' or nil }
  end, { prefixes = { "segloss.experiment" } })
  add("segloss.experiment.losses", function(g)
    local names = {}
    for i = 1, g:int(0, 3) do
      local d = g:pick(segloss.losses())
      names[i] = lit(g:chance(0.9) and d.name or g:nearmiss(d.name))
    end
    return "segloss.experiment.losses", { g:maybe("{" .. table.concat(names, ", ") .. "}") }
  end, { prefixes = { "segloss.experiment" } })

  -- the core's network kernels, checkpoint and image files ------------------------
  local function conv_setup(g)
    local dims = g:chance(0.8) and 2 or 3
    local tr = g:chance(0.3)
    local cin, cout = g:int(1, 3), g:int(1, 3)
    local k = tr and 2 or g:pick { 1, 3 }
    local stride = tr and 2 or g:int(1, 2)
    local plan = g:var(string.format("core.conv_plan{dims = %d, cin = %d, cout = %d, k = %d, stride = %d, transposed = %s}",
      dims, cin, cout, k, stride, tostring(tr)))
    local xs = { g:int(1, 2), cin }
    for i = 1, dims do xs[#xs + 1] = g:int(1, 6) end
    if g:chance(0.05) then xs[2] = cin + 1 end
    local x = g:tensor(xs, "logit")
    local ws = tr and { cin, cout } or { cout, cin }
    for _ = 1, dims do ws[#ws + 1] = k end
    local w = g:tensor(ws, "logit")
    local b = g:tensor({ cout }, "logit")
    local y = g:var(string.format("(function() local ok, s = pcall(core.conv_out_shape, %s, %s) return ok and T.zeros(s) or T.zeros(1) end)()", plan, x))
    return plan, x, w, b, y
  end
  add("segloss.core.conv_plan", function(g)
    return "core.conv_plan", { g:opts({
      dims = function() return g:num(2, 3, true) end, cin = function() return g:num(1, 4, true) end,
      cout = function() return g:num(1, 4, true) end, k = function() return g:num(1, 3, true) end,
      stride = function() return g:num(1, 2, true) end, transposed = function() return g:pick { "true", "false" } end,
    }, 6) }
  end)
  add("segloss.core.conv_out_shape", function(g)
    local plan, x = conv_setup(g)
    return "core.conv_out_shape", { g:maybe(plan), g:maybe(x) }
  end)
  add("segloss.core.conv_forward", function(g)
    local plan, x, w, b, y = conv_setup(g)
    g:mutable(y)
    if g:chance(0.05) then y = x; g:mutable(x) end
    return "core.conv_forward", { g:maybe(plan, 0.03), g:maybe(x, 0.03), g:maybe(w, 0.03), g:chance(0.2) and "nil" or b, y }
  end)
  add("segloss.core.conv_backward_data", function(g)
    local plan, x, w, _, y = conv_setup(g)
    g:emit("%s = T.randn(%s:shape())", y, y)
    g:mutable(x)
    return "core.conv_backward_data", { g:maybe(plan, 0.03), y, g:maybe(w, 0.03), x }
  end)
  add("segloss.core.conv_backward_weights", function(g)
    local plan, x, w, b, y = conv_setup(g)
    g:emit("%s = T.randn(%s:shape())", y, y)
    g:mutable(w); g:mutable(b)
    return "core.conv_backward_weights", { g:maybe(plan, 0.03), x, g:maybe(y, 0.03), w, g:chance(0.2) and "nil" or b }
  end)
  local function img(g, dims, c)
    local s = { g:int(1, 2), c or g:int(1, 3) }
    for _ = 1, dims or g:int(2, 3) do s[#s + 1] = g:int(1, 5) end
    return s
  end
  add("segloss.core.nn_act", function(g)
    local s = img(g)
    local x = g:tensor(s, "logit")
    local y = g:chance(0.2) and x or g:tensor(g:chance(0.95) and s or img(g), "any")
    g:mutable(y)
    return "core.nn_act", { x, y, g:num(0, 1) }
  end)
  add("segloss.core.nn_act_backward", function(g)
    local s = img(g)
    local x, gy = g:tensor(s, "logit"), g:tensor(s, "logit")
    local gx = g:chance(0.2) and gy or g:tensor(g:chance(0.95) and s or img(g), "any")
    g:mutable(gx)
    return "core.nn_act_backward", { x, gy, gx, g:num(0, 1) }
  end)
  local function pooled(s, k, scale)
    local o = { s[1], s[2] }
    for i = 3, #s do o[i] = scale and s[i] * k or s[i] // k end
    return o
  end
  add("segloss.core.nn_maxpool", function(g)
    local s, k = img(g), g:int(1, 2)
    local x = g:tensor(s, "logit")
    local y = g:tensor(g:chance(0.9) and pooled(s, k) or img(g), "any")
    g:mutable(y)
    return "core.nn_maxpool", { x, y, g:num(1, 2, true) }
  end)
  add("segloss.core.nn_maxpool_backward", function(g)
    local s, k = img(g), g:int(1, 2)
    local x = g:tensor(s, "logit")
    local gy = g:tensor(g:chance(0.9) and pooled(s, k) or img(g), "logit")
    local gx = g:tensor(s, "any")
    g:mutable(gx)
    return "core.nn_maxpool_backward", { x, gy, gx, lit(k) }
  end)
  add("segloss.core.nn_upsample", function(g)
    local s, k = img(g), g:int(1, 3)
    local x = g:tensor(s, "logit")
    local y = g:tensor(g:chance(0.9) and pooled(s, k, true) or img(g), "any")
    g:mutable(y)
    return "core.nn_upsample", { x, y, g:maybe(lit(g:pick { "nearest", "linear" })), g:num(1, 3, true) }
  end)
  add("segloss.core.nn_upsample_backward", function(g)
    local s, k = img(g), g:int(1, 3)
    local gy = g:tensor(g:chance(0.9) and pooled(s, k, true) or img(g), "logit")
    local gx = g:tensor(s, "any")
    g:mutable(gx)
    return "core.nn_upsample_backward", { gy, gx, g:maybe(lit(g:pick { "nearest", "linear" })), g:num(1, 3, true) }
  end)
  add("segloss.core.nn_concat", function(g)
    local s = img(g)
    local s2 = { s[1], g:int(1, 3) }
    for i = 3, #s do s2[i] = s[i] end
    local y = { s[1], s[2] + s2[2] }
    for i = 3, #s do y[i] = s[i] end
    local a, b = g:tensor(s, "logit"), g:tensor(s2, "logit")
    local out = g:tensor(g:chance(0.9) and y or img(g), "any")
    g:mutable(out)
    return "core.nn_concat", { a, g:chance(0.05) and a or b, out }
  end)
  add("segloss.core.nn_split", function(g)
    local s = img(g)
    local c1 = g:int(1, 2)
    local a, b = { s[1], c1 }, { s[1], s[2] }
    local y = { s[1], c1 + s[2] }
    for i = 3, #s do a[i], b[i], y[i] = s[i], s[i], s[i] end
    local gy = g:tensor(y, "logit")
    local ga, gb = g:tensor(a, "any"), g:tensor(g:chance(0.9) and b or img(g), "any")
    g:mutable(ga); g:mutable(gb)
    return "core.nn_split", { gy, ga, gb }
  end)
  add("segloss.core.nn_norm", function(g)
    local s = img(g)
    local c = s[2]
    local x, y = g:tensor(s, "logit"), g:tensor(s, "any")
    local mode = g:pick { "batch", "instance", "batch_eval" }
    local n = mode == "instance" and s[1] * c or c
    local sm, si = g:tensor({ n }, "any"), g:tensor({ n }, "any")
    local rm, rv = g:tensor({ c }, "any"), g:tensor({ c }, "prob")
    g:mutable(y); g:mutable(sm); g:mutable(si); g:mutable(rm); g:mutable(rv)
    local w = g:chance(0.5) and g:tensor({ c }, "logit") or "nil"
    local b = g:chance(0.5) and g:tensor({ c }, "logit") or "nil"
    return "core.nn_norm", { x, y, g:maybe(lit(mode)), g:num(1e-5, 0.1), w, b, sm, si,
      mode ~= "instance" and rm or "nil", mode ~= "instance" and rv or "nil", g:num(0, 1) }
  end)
  add("segloss.core.nn_norm_backward", function(g)
    local s = img(g)
    local c = s[2]
    local x, gy, gx = g:tensor(s, "logit"), g:tensor(s, "logit"), g:tensor(s, "any")
    local mode = g:pick { "batch", "instance", "batch_eval" }
    local n = mode == "instance" and s[1] * c or c
    local sm, si = g:tensor({ n }, "logit"), g:tensor({ n }, "prob")
    g:mutable(gx)
    local w, gw, gb = "nil", "nil", "nil"
    if g:chance(0.5) then
      w, gw, gb = g:tensor({ c }, "logit"), g:tensor({ c }, "any"), g:tensor({ c }, "any")
      g:mutable(gw); g:mutable(gb)
    end
    return "core.nn_norm_backward", { x, gy, gx, g:maybe(lit(mode)), w, sm, si, gw, gb }
  end)
  add("segloss.core.optim_sgd", function(g)
    local s = g:shape(1, 4, 64)
    local p, gr, buf = g:tensor(s, "logit"), g:tensor(s, "logit"), g:tensor(s, "any")
    if g:chance(0.05) then gr = p end
    g:mutable(p); g:mutable(buf)
    return "core.optim_sgd", { p, gr, g:chance(0.3) and "nil" or buf, g:num(0, 1), g:num(0, 1), g:num(0, 1),
      g:pick { "true", "false" }, g:num(0, 1), g:pick { "true", "false" } }
  end)
  add("segloss.core.optim_adam", function(g)
    local s = g:shape(1, 4, 64)
    local p, gr, m, v = g:tensor(s, "logit"), g:tensor(s, "logit"), g:tensor(s, "any"), g:tensor(s, "prob")
    if g:chance(0.05) then m = v end
    g:mutable(p); g:mutable(m); g:mutable(v)
    return "core.optim_adam", { p, gr, m, v, g:num(1, 100, true), g:num(0, 1), g:num(0, 1), g:num(0, 1),
      g:num(1e-8, 1e-3), g:num(0, 1), g:pick { "true", "false" } }
  end)
  add("segloss.core.npz_save", function(g)
    local e = {}
    for i = 1, g:int(0, 4) do
      local name = g:chance(0.9) and lit(g:pick { "a", "b.c", "segloss_meta", "x/y", "" } .. i) or g:garbage()
      local v = g:chance(0.7) and g:tensor(g:shape(1, 5, 64), "any") or lit(g:pick { "text", "{}", string.rep("j", 100) })
      e[i] = string.format("{%s, %s}", name, v)
    end
    return "core.npz_save", { g:chance(0.9) and g:path(".npz") or g:garbage(), g:maybe("{" .. table.concat(e, ", ") .. "}") }
  end)
  local function npz_file(g)
    local p = g:path(".npz")
    g:emit("pcall(core.npz_save, %s, {{'segloss_meta', '{}'}, {'param.w', T.randn(%s)}})", p, lit(g:shape(1, 4, 32)))
    return p
  end
  add("segloss.core.npz_load", function(g)
    local p = npz_file(g)
    if g:chance(0.6) then
      g:emit("do local f = io.open(%s, 'rb') if f then local s = f:read('a') f:close() f = io.open(%s, 'wb') " ..
        "f:write(s:sub(1, %d) .. %s .. s:sub(%d)) f:close() end end", p, p, g:int(0, 400),
        lit(g:randbytes(g:int(0, 8))), g:int(1, 420))
    end
    g.finite = false
    return "core.npz_load", { g:maybe(p, 0.05) }
  end)
  add("segloss.core.npz_load_string", function(g)
    local p = npz_file(g)
    local s = g:var(string.format("(function() local f = io.open(%s, 'rb') if not f then return '' end local s = f:read('a') f:close() return s end)()", p))
    if g:chance(0.7) then
      s = g:var(string.format("%s:sub(1, %d) .. %s .. %s:sub(%d)", s, g:int(0, 400), lit(g:randbytes(g:int(0, 8))), s,
        g:int(1, 420)))
    end
    g.finite = false
    return "core.npz_load_string", { g:maybe(s, 0.05), g:chance(0.3) and lit("x.npz") or nil }
  end)
  add("segloss.core.png_save", function(g)
    local s = g:shape(1, 3, 64)
    local v = {}
    for i = 1, numel(s) do v[i] = g:chance(0.98) and math.random(0, 255) or g:pick { -1, 256, 0.5, 70000 } end
    return "core.png_save", { g:chance(0.95) and g:path(".png") or g:garbage(), string.format("T.from(%s, %s)", lit(v), lit(s)),
      g:maybe(lit(g:pick { 8, 16 })) }
  end)
  add("segloss.core.png_load", function(g)
    local p = g:path(".png")
    local s = { g:int(1, 8), g:int(1, 8) }
    local v = {}
    for i = 1, numel(s) do v[i] = math.random(0, 255) end
    g:emit("pcall(core.png_save, %s, T.from(%s, %s), %d)", p, lit(v), lit(s), g:pick { 8, 16 })
    if g:chance(0.7) then
      g:emit("do local f = io.open(%s, 'rb') if f then local s = f:read('a') f:close() f = io.open(%s, 'wb') " ..
        "f:write(s:sub(1, %d) .. %s .. s:sub(%d)) f:close() end end", p, p, g:int(0, 120),
        lit(g:randbytes(g:int(0, 6))), g:int(1, 130))
    end
    return "core.png_load", { g:maybe(p, 0.05), g:chance(0.4) and g:maybe(lit(g:pick { "values", "grey" })) or nil }
  end)
  add("segloss.core.data_listdir", function(g)
    return "core.data_listdir", { g:chance(0.8) and g:pick { "DIR", lit("/nonexistent"), lit("/etc/hostname"), lit("") }
      or g:garbage() }
  end)
  add("segloss.core.data_hash", function(g)
    return "core.data_hash", { g:chance(0.9) and g:tensor(g:shape(1, 5, 256), "any") or g:garbage() }
  end)
  add("segloss.core.data_scan", function(g)
    local s = img(g, nil, 1)
    return "core.data_scan", { g:tensor(s, g:chance(0.8) and "labels" or "any", 4), g:num(2, 4, true) }
  end)
  add("segloss.core.data_put", function(g)
    local s = img(g)
    local d = { g:int(1, 3) }
    for i = 2, #s do d[i] = s[i] end
    local src, dst = g:tensor(s, "logit"), g:tensor(g:chance(0.95) and d or img(g), "any")
    if g:chance(0.05) then dst = src end
    g:mutable(dst)
    return "core.data_put", { src, g:num(1, s[1], true), dst, g:num(1, d[1], true), g:num(0, 3, true),
      g:num(0, 3, true), g:num(0, 2), g:num(-1, 1) }
  end)
  local function shapes_flat(g, sdim)
    local v = {}
    for i = 1, g:int(0, 2) * 11 + (g:chance(0.05) and 1 or 0) do
      v[i] = i % 11 == 1 and g:num(0, 4, true) or g:num(-2, sdim and 8 or 8)
    end
    return "{" .. table.concat(v, ", ") .. "}"
  end
  add("segloss.core.data_synth_mask", function(g)
    local s = { 1 }
    for i = 2, g:int(3, 4) do s[i] = g:int(1, 8) end
    local t = g:tensor(s, "any")
    g:mutable(t)
    return "core.data_synth_mask", { t, shapes_flat(g), g:num(0.1, 3) }
  end)
  add("segloss.core.data_synth_image", function(g)
    local s = { 1 }
    for i = 2, g:int(3, 4) do s[i] = g:int(1, 8) end
    local x = g:tensor(s, "any")
    g:mutable(x)
    local w = {}
    for i = 1, g:int(0, 1) * 6 + (g:chance(0.05) and 1 or 0) do w[i] = g:num(-1, 1) end
    return "core.data_synth_image", { x, g:num(0, 1), "{" .. table.concat(w, ", ") .. "}", shapes_flat(g),
      g:num(0, 0.5), g:num(0, 1000, true) }
  end)
end
