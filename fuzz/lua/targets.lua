--- The targets of the Lua API fuzzer: one generator per public function.
--
-- targets.list(segloss) enumerates the public functions from the module
-- tables at run time; targets.build(segloss) returns {name = target}, where
-- a target is {gen = function(g) -> fn_expr, {arg_expr...}, prefixes =
-- {...}}. fuzz/lua/api.lua fails when a listed function has no target and
-- no entry in targets.SKIP, so that a new function cannot slip past.
local M = {}

local function numel(s)
  local n = 1
  for _, d in ipairs(s) do n = n * d end
  return n
end

--- Public functions left out on purpose, with the reason.
M.SKIP = {
  ["segloss.experiment.run"] = "trains networks for minutes per call; spec 51 and make run cover it",
  ["segloss.experiment.eval"] = "reads a results directory of a study; spec 53 covers it",
  ["segloss.experiment.merge"] = "merges results directories of a study; spec 54 covers it",
  ["segloss.experiment.jobs"] = "lists the jobs of a whole study (settings of experiment.run)",
}

local function sorted_keys(t)
  local k = {}
  for n in pairs(t) do k[#k + 1] = n end
  table.sort(k, function(a, b) return tostring(a) < tostring(b) end)
  return k
end

-- the functions of an object: its fields and its metatable's __index chain
local function methods_of(obj, into, prefix, skip_private)
  local seen, t = {}, obj
  while type(t) == "table" do
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if type(k) == "string" and type(v) == "function" and not seen[k]
          and not (skip_private and k:sub(1, 1) == "_" and k:sub(1, 2) ~= "__") then
        seen[k] = true
        into[#into + 1] = prefix .. k
      end
    end
    local mt = getmetatable(t)
    t = mt and type(mt.__index) == "table" and mt.__index or nil
  end
end

--- Every public function, by the name the fuzzer reports it under.
function M.list(segloss)
  local names = {}
  local function mod(prefix, t)
    for _, k in ipairs(sorted_keys(t)) do
      -- a leading underscore marks a module's private function (data._rng)
      if type(t[k]) == "function" and not tostring(k):find("^_") then names[#names + 1] = prefix .. k end
    end
  end
  mod("segloss.", segloss)
  mod("segloss.tensor.", segloss.tensor)
  mod("segloss.core.", segloss.core)
  for _, m in ipairs { "metrics", "schedule", "optim", "data", "experiment" } do mod("segloss." .. m .. ".", segloss[m]) end
  mod("segloss.nn.", segloss.nn)
  -- tensor methods and operators
  local tmt = getmetatable(segloss.tensor.zeros(1))
  methods_of(tmt.__index, names, "segloss.Tensor:")
  for _, k in ipairs { "__add", "__sub", "__mul", "__div", "__unm", "__len", "__tostring" } do
    if tmt[k] then names[#names + 1] = "segloss.Tensor:" .. k end
  end
  -- criteria: classes (segloss.<Class>, above) and their methods
  methods_of(segloss.Criterion, names, "segloss.Criterion:", true)
  -- the layers: constructors and methods
  for _, k in ipairs(sorted_keys(segloss.nn)) do
    local cls = segloss.nn[k]
    if type(cls) == "table" and k ~= "Module" then
      names[#names + 1] = "segloss.nn." .. k
      methods_of(cls, names, "segloss.nn." .. k .. ":", true)
    end
  end
  -- optimisers, schedules, datasets: methods of an instance
  local net = segloss.nn.ReLU()
  methods_of(segloss.optim.SGD({ segloss.tensor.zeros(1) }, { segloss.tensor.zeros(1) }, { lr = 0.1 }), names,
    "segloss.Optimizer:", true)
  methods_of(segloss.schedule.linear(0, 1, 2), names, "segloss.Schedule:", true)
  methods_of(segloss.data.synthetic { n = 2, size = { 8, 8 } }, names, "segloss.Dataset:", true)
  local _ = net
  local seen, out = {}, {}
  for _, n in ipairs(names) do
    if not seen[n] then seen[n] = true; out[#out + 1] = n end
  end
  table.sort(out)
  return out
end

-- ====================================================================
-- helpers shared by generators

local lit

-- a loss context: x (N, C, S...) and a target, for activation act
local function loss_ctx(g, act, binary)
  local sdim = g:int(1, 3)
  local N = g:int(1, 3)
  local C = (binary or act == "sigmoid" and g:chance(0.5)) and 1 or g:int(act == "softmax" and 2 or 1, 4)
  if act == "softmax" and g:chance(0.03) then C = 1 end
  local S = {}
  for i = 1, sdim do S[i] = g:int(1, sdim == 3 and 5 or 9) end
  local xs = { N, C }
  for i = 1, sdim do xs[#xs + 1] = S[i] end
  local x = g:tensor(xs, act == "none" and "prob" or "logit")
  local t
  if act == "softmax" and g:chance(0.5) then
    local ts = { N, 1 }
    for i = 1, sdim do ts[#ts + 1] = S[i] end
    t = g:tensor(ts, "labels", C)
  else
    t = g:tensor(xs, g:chance(0.9) and "binary" or "prob")
  end
  if g:chance(0.02) then
    -- a mismatched target
    local ts = { N + 1, C }
    for i = 1, sdim do ts[#ts + 1] = S[i] end
    t = g:tensor(ts, "binary")
  end
  return { x = x, t = t, N = N, C = C, S = S, sdim = sdim, xs = xs, act = act }
end

local function mask_of(g, ctx)
  local ms = { ctx.N, g:chance(0.8) and 1 or ctx.C }
  for i = 1, ctx.sdim do ms[#ms + 1] = ctx.S[i] end
  return g:tensor(ms, g:chance(0.9) and "binary" or "prob")
end

-- an option value by the registry's descriptor of the option
local function loss_opt_value(g, ctx, name, o)
  local ty = o.type
  if name == "out" then
    local r = math.random()
    local v
    if r < 0.15 then v = ctx.x elseif r < 0.2 then v = ctx.t
    else v = g:tensor(ctx.xs, "any") end
    g:mutable(v)
    return v
  elseif name == "mask" then
    return mask_of(g, ctx)
  elseif name == "activation" then
    return lit(ctx.act)
  elseif ty == "enum" then
    return lit((g.clean or g:chance(0.95)) and g:pick(o.choices) or g:nearmiss(g:pick(o.choices)))
  elseif ty == "boolean" then
    return g:pick { "true", "false" }
  elseif ty == "integer" then
    if name == "ignore_index" then return g:num(-1, ctx.C + 1, true) end
    return g:num(o.min or 0, math.min(o.max or 20, 20), true)
  elseif ty == "number" then
    return g:num(o.min or 0, math.min(o.max or 10, 10))
  elseif ty == "number|auto" then
    return g:chance(0.3) and '"auto"' or g:num(o.min or 0, 10)
  elseif ty == "number|false|list" then
    local r = math.random(3)
    if r == 1 then return "false" end
    if r == 2 then return g:num(0, 1) end
    local l = {}
    for i = 1, ctx.C + (g:chance(0.1) and 1 or 0) do l[i] = g:num(0, 1) end
    return "{" .. table.concat(l, ", ") .. "}"
  elseif ty == "list" then
    local l = {}
    for i = 1, ctx.C + (g:chance(0.1) and g:pick { -1, 1 } or 0) do l[i] = g:num(0, 3) end
    local e = "{" .. table.concat(l, ", ") .. "}"
    if not g.clean and g:chance(0.05) then return "GC(" .. e .. ")" end
    if not g.clean and g:chance(0.05) then
      l[#l + 1] = "1"
      l[#l + 1] = "0/0"
      return "FICKLE(" .. e .. ", {" .. table.concat(l, ", ") .. "})"
    end
    return e
  elseif ty == "numbers" then
    local l = {}
    for i = 1, ctx.sdim + (g:chance(0.1) and 1 or 0) do l[i] = g:num(0.1, 4) end
    local e = "{" .. table.concat(l, ", ") .. "}"
    if not g.clean and g:chance(0.05) then return "FICKLE(" .. e .. ", {1, 1, 1, 1, 1, 1})" end
    return e
  elseif ty == "tensor" then
    return g:tensor(ctx.xs, "any")
  end
  return g:garbage()
end

local function loss_opts(g, ctx, d, managed)
  local spec = {}
  for name, o in pairs(d.options) do
    if not (managed and (name == "out" or name == "grad")) then
      spec[name] = function() return loss_opt_value(g, ctx, name, o) end
    end
  end
  local act = spec.activation
  spec.activation = nil
  local t = g:opts(spec, 4)
  if t:sub(1, 1) == "{" and g:chance(0.9) then
    t = "{activation = " .. act() .. (t == "{}" and "}" or ", " .. t:sub(2))
  end
  return t
end

local function pick_act(g, d)
  if g:chance(0.9) then return g:pick(d.activations) end
  return g:pick { "none", "sigmoid", "softmax" }
end

-- ====================================================================

function M.build(segloss)
  lit = require("fuzz.lua.gen").lit
  local R = {}
  local function add(name, gen, extra)
    local t = extra or {}
    t.gen = gen
    R[name] = t
  end

  -- module functions ---------------------------------------------------
  add("segloss.backend", function() return "segloss.backend", {} end)
  add("segloss.backends", function() return "segloss.backends", {} end)
  add("segloss.threads", function() return "segloss.threads", {} end)
  add("segloss.set_backend", function(g)
    local b = g:pick(g.backends)
    return "segloss.set_backend", { g:maybe(lit(g:chance(0.9) and b or g:nearmiss(b)), 0.2) }
  end)
  add("segloss.set_threads", function(g) return "segloss.set_threads", { g:maybe(g:num(1, 4, true), 0.2) } end)
  add("segloss.seed", function(g) return "segloss.seed", { g:maybe(g:num(0, 1 << 40, true), 0.2) } end)
  add("segloss.losses", function(g) return "segloss.losses", g:chance(0.9) and {} or { g:garbage() } end)
  -- memory([root]): root is where it reads proc/meminfo and the cgroup files
  -- (the specs' fixtures): none, garbage, a directory without them, a file
  -- of random bytes as meminfo's place, the real root
  add("segloss.memory", function(g)
    local r = g:int(0, 4)
    if r == 0 then return "segloss.memory", {} end
    if r == 1 then return "segloss.memory", { g:garbage() } end
    if r == 2 then return "segloss.memory", { "DIR" } end
    if r == 3 then return "segloss.memory", { g:file(g:mutate("MemAvailable: 1024 kB\nSwapFree: 0 kB\n")) } end
    return "segloss.memory", { lit("/") }
  end)
  for _, k in ipairs { "backend", "backends", "threads", "set_backend", "set_threads", "seed", "losses", "memory" } do
    -- the same functions: their messages say segloss.<name>
    R["segloss.core." .. k] = { prefixes = { "segloss." .. k }, gen = function(g)
      local _, a = R["segloss." .. k].gen(g)
      return "core." .. k, a
    end }
  end
  add("segloss.core.known_backends", function() return "core.known_backends", {} end)
  add("segloss.core.ncpu", function() return "core.ncpu", {} end)
  add("segloss.core.threads_used", function() return "core.threads_used", {} end)
  add("segloss.core.generic_ran", function(g) return "core.generic_ran", g:chance(0.5) and {} or { g:garbage() } end)
  add("segloss.core.debug_split", function(g)
    return "function(v) local prev = core.debug_split(v) core.debug_split(false) return prev end",
      { g:maybe(g:pick { "true", "false" }, 0.2) }
  end, { prefixes = { "segloss.core.debug_split" } })
  add("segloss.core.conv_min_flops", function(g)
    return "function(v) local prev = core.conv_min_flops(v) core.conv_min_flops(prev) return prev end",
      { g:maybe(g:num(0, 1e9, true), 0.2) }
  end, { prefixes = { "segloss.core.conv_min_flops" } })
  add("segloss.core.conv_workspace", function(g) return "core.conv_workspace", g:chance(0.8) and {} or { g:garbage() } end)
  add("segloss.core.vmath_accuracy", function(g)
    -- its report holds kernel values of the wrong class (bad_y may be inf)
    g.nan_ok = true
    return "core.vmath_accuracy", { g:maybe(lit(g:pick { "exp", "log", "log1p", "sigmoid", "softplus", "pow", "tanh" })),
      g:maybe(g:num(2, 2000, true)), g:chance(0.5) and g:num(0, 4) or nil }
  end)
  add("segloss.core.vmath_map", function(g)
    local s = g:shape(1, 5, 256)
    local x = g:tensor(s, "any")
    local y = g:chance(0.2) and x or g:tensor(s, "any")
    g:mutable(y)
    g.nan_ok = true
    return "core.vmath_map", { g:maybe(lit(g:pick { "exp", "log", "log1p", "sigmoid", "softplus", "pow" })), x, y,
      g:chance(0.5) and g:num(0, 5) or "nil" }
  end)
  add("segloss.core.loss_variants", function(g) return "core.loss_variants", g:chance(0.8) and {} or { g:garbage() } end)
  add("segloss.core.loss_fused", function(g)
    local act = g:pick { "none", "sigmoid", "softmax" }
    local ctx = loss_ctx(g, act)
    local job = g:opts({
      type = function() return lit(g:pick { "bce", "ce", "focal", "dice" }) end,
      activation = function() return lit(act) end,
      gamma = function() return g:num(0, 4) end,
      eps = function() return g:num(1e-7, 1e-3) end,
    }, 4)
    return "core.loss_fused", { ctx.x, ctx.t, job }
  end)

  -- tensors --------------------------------------------------------------
  local function shape_args(g, s)
    if g:chance(0.5) then return { g:shapearg(s) } end
    local a = {}
    for i, d in ipairs(s) do a[i] = lit(d) end
    return a
  end
  for _, k in ipairs { "zeros", "ones", "rand", "randn" } do
    add("segloss.tensor." .. k, function(g)
      local s = g:shape(0, 7, 4096, true)
      if g:chance(0.03) then s[#s + 1] = g:pick { -1, 2.5, 1 << 40, 0 } end
      local a = shape_args(g, s)
      if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
      return "T." .. k, a
    end)
  end
  add("segloss.tensor.full", function(g)
    local s = g:shape(1, 6, 1024, true)
    return "T.full", { g:maybe(g:shapearg(s)), g:num(-10, 10) }
  end)
  add("segloss.tensor.from", function(g)
    local s = g:shape(1, 3, 64)
    local n = numel(s)
    local flat = {}
    for i = 1, n do flat[i] = g:chance(0.97) and g:num(-5, 5) or g:garbage() end
    if g:chance(0.5) then
      -- nested
      local function nest(d, off)
        if d > #s then return flat[off + 1] or "0", off + 1 end
        local parts = {}
        for i = 1, s[d] do parts[i], off = nest(d + 1, off) end
        return "{" .. table.concat(parts, ", ") .. "}", off
      end
      return "T.from", { (nest(1, 0)) }
    end
    if g:chance(0.1) and n > 0 then table.remove(flat) end
    return "T.from", { "{" .. table.concat(flat, ", ") .. "}", g:maybe(g:shapearg(s)) }
  end)
  add("segloss.tensor.istensor", function(g) return "T.istensor", { g:chance(0.5) and g:tensor({ 2 }) or g:garbage() } end)
  add("segloss.tensor.load", function(g)
    -- a good .npy from save, then mutated; or random bytes
    local r = math.random()
    if r < 0.15 then return "T.load", { g:maybe(g:path(".npy"), 0.5) } end
    local s = g:shape(1, 5, 64)
    local hdr = string.format("{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }",
      g:pick { "<f4", "<f8", "<i4", "<i8", "|u1", "|b1", ">f4", "<f2", "<c8", "|i1", "<u2" },
      g:pick { "False", "False", "True" }, table.concat(s, ", ") .. (#s == 1 and "," or ""))
    hdr = hdr .. string.rep(" ", (64 - (10 + #hdr + 1) % 64) % 64) .. "\n"
    local bytes = "\147NUMPY\1\0" .. string.pack("<I2", #hdr) .. hdr .. g:randbytes(math.min(numel(s) * 4, 600))
    if g:chance(0.7) then bytes = g:mutate(bytes) end
    g.finite = false
    return "T.load", { g:file(bytes, ".npy") }
  end)

  -- tensor methods: self, then the method's arguments
  local METHOD = {
    shape = function() return {} end, dim = function() return {} end, numel = function() return {} end,
    clone = function() return {} end, sum = function() return {} end, mean = function() return {} end,
    min = function() return {} end, max = function() return {} end, totable = function() return {} end,
    isview = function() return {} end, version = function() return {} end,
    exp = function() return {} end, log = function() return {} end, log1p = function() return {} end,
    sigmoid = function() return {} end, softmax = function() return {} end, softplus = function() return {} end,
    argmax = function() return {} end,
    size = function(g, s) return { g:num(1, #s, true) } end,
    pow = function(g) return { g:num(0, 4) } end,
    onehot = function(g) return { g:num(1, 5, true) } end,
    fill = function(g) return { g:num(-3, 3) } end,
    get = function(g, s)
      local a = {}
      for i, d in ipairs(s) do a[i] = g:num(1, math.max(d, 1), true) end
      if g:chance(0.1) then a[#a + 1] = "1" end
      return a
    end,
    set = function(g, s)
      local a = {}
      for i, d in ipairs(s) do a[i] = g:num(1, math.max(d, 1), true) end
      a[#a + 1] = g:num(-3, 3)
      return a
    end,
    reshape = function(g, s)
      local n = numel(s)
      local t = g:chance(0.7) and { n } or g:shape(1, 6, 4096)
      if g:chance(0.2) and n > 0 then t = { -1 } end
      return { g:shapearg(t) }
    end,
    narrow = function(g, s)
      local d = g:num(1, #s, true)
      return { d, g:num(1, 4, true), g:num(0, 3, true) }
    end,
    select = function(g, s) return { g:num(1, #s, true), g:num(1, 4, true) } end,
    save = function(g) return { g:chance(0.9) and g:path(".npy") or g:pick { '"/nonexistent/dir/x.npy"', '""', '"/"' } } end,
    dot = function(g, s, self) return { g:chance(0.3) and self or g:tensor(s, "any") } end,
    copy = function(g, s, self)
      local r = math.random()
      if r < 0.1 then return { self } end
      if r < 0.2 then return { g:view(self, s) } end
      return { g:tensor(g:chance(0.8) and s or g:shape(1, 5, 256), "any") }
    end,
  }
  local ARITH = function(g, s, self)
    local r = math.random()
    if r < 0.5 then return { g:num(-3, 3) } end
    if r < 0.6 then return { self } end
    return { g:tensor(g:chance(0.8) and s or g:shape(1, 5, 256), "any") }
  end
  for _, k in ipairs { "add", "sub", "mul", "div" } do METHOD[k] = ARITH end
  local INPLACE = { fill = true, set = true, copy = true, add = true, sub = true, mul = true, div = true }
  local NANOK = { exp = true, log = true, log1p = true, pow = true, div = true, mul = true, add = true,
    sub = true, sum = true, mean = true, dot = true, softplus = true, softmax = true, sigmoid = true,
    __div = true, __mul = true, __add = true, __sub = true }
  local tmt = getmetatable(segloss.tensor.zeros(1))
  for _, k in ipairs(sorted_keys(tmt.__index)) do
    local m = METHOD[k]
    if m then
      add("segloss.Tensor:" .. k, function(g)
        local s = g:shape(1, 6, 512)
        local self = g:tensor(s, "any")
        if INPLACE[k] then g:mutable(self) end
        if NANOK[k] then g.nan_ok = true end
        local a = m(g, s, self)
        if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
        local selfarg = g:chance(0.97) and self or g:var(g:garbage())
        -- garbage in self's place may be another tensor, which an in-place
        -- method rightly writes
        if INPLACE[k] then g:mutable(selfarg) end
        return string.format("%s.%s", self, k), { selfarg, table.unpack(a, 1, #a) }
      end)
    end
  end
  for _, op in ipairs { { "__add", "+" }, { "__sub", "-" }, { "__mul", "*" }, { "__div", "/" } } do
    add("segloss.Tensor:" .. op[1], function(g)
      local s = g:shape(1, 5, 256)
      local a = g:tensor(s, "any")
      local b = g:chance(0.5) and g:num(-3, 3) or g:chance(0.2) and g:garbage() or g:tensor(s, "any")
      if g:chance(0.5) then a, b = b, a end
      g.nan_ok = true
      return string.format("function(a, b) return a %s b end", op[2]), { a, b }
    end, { prefixes = { "segloss.Tensor:", "segloss.Criterion" } }) -- garbage on the left answers first
  end
  add("segloss.Tensor:__unm", function(g)
    return "function(a) return -a end", { g:tensor(g:shape(1, 5, 256), "any") }
  end, { prefixes = { "segloss.Tensor:" } })
  add("segloss.Tensor:__len", function(g)
    return "function(a) return #a end", { g:tensor(g:shape(1, 6, 256), "any") }
  end)
  add("segloss.Tensor:__tostring", function(g)
    g.nan_ok = true
    return "tostring", { g:tensor(g:shape(0, 6, 2048), "any") }
  end)

  -- losses: functional, criterion classes, criterion methods ---------------
  local descs = segloss.losses()
  local function crit_setup(g, ctx, d)
    -- a criterion built with clean options (the call fuzzes its use)
    local saved = g.clean
    g.clean = true
    local o = loss_opts(g, ctx, d, true)
    g.clean = saved
    return g:var(string.format("segloss.%s(%s)", d.class, o))
  end
  for _, d in ipairs(descs) do
    local fn = function(g)
      local ctx = loss_ctx(g, pick_act(g, d), d.binary)
      local o = loss_opts(g, ctx, d, false)
      local x, t = ctx.x, ctx.t
      if g:chance(0.03) then x = g:garbage() end
      if g:chance(0.03) then t = g:garbage() end
      return "segloss." .. d.name, { x, t, o }
    end
    add("segloss." .. d.name, fn)
    add("segloss.core." .. d.name, function(g)
      local _, a = fn(g)
      return "core." .. d.name, a
    end, { prefixes = { "segloss." .. d.name } })
    add("segloss." .. d.class, function(g)
      local ctx = loss_ctx(g, pick_act(g, d), d.binary)
      return "segloss." .. d.class, { loss_opts(g, ctx, d, g:chance(0.9)) }
    end)
  end
  local function crit_pair(g)
    local d = g:pick(descs)
    local ctx = loss_ctx(g, pick_act(g, d), d.binary)
    local c = crit_setup(g, ctx, d)
    if g:chance(0.3) then
      local d2 = g:pick(descs)
      local c2 = crit_setup(g, ctx, d2)
      c = g:var(string.format("%s + %s * %s", c, g:num(0, 3), c2))
    end
    if g:chance(0.1) then
      c = g:var(string.format("%s * segloss.schedule.linear(%s, %s, %s)", c, g:num(0, 1), g:num(0, 1),
        g:num(1, 5, true)))
    end
    return c, ctx
  end
  local CRIT = {
    forward = function(g, ctx) return { ctx.x, ctx.t } end,
    backward = function(g, ctx, c)
      if g:chance(0.5) then g:emit("pcall(%s.forward, %s, %s, %s)", c, c, ctx.x, ctx.t) end
      return { ctx.x, ctx.t }
    end,
    value = function(g, ctx) return { ctx.x, ctx.t } end,
    __call = function(g, ctx) return { ctx.x, ctx.t, g:chance(0.2) and mask_of(g, ctx) or nil } end,
    stats = function(g, ctx) return { ctx.x, ctx.t } end,
    from_stats = function(g, ctx, c)
      local st = g:var(string.format("select(2, pcall(%s.stats, %s, %s, %s))", c, c, ctx.x, ctx.t))
      if g:chance(0.3) then st = g:garbage() end
      return { st, ctx.x, ctx.t }
    end,
    last = function(g, ctx, c)
      if g:chance(0.7) then g:emit("pcall(%s.forward, %s, %s, %s)", c, c, ctx.x, ctx.t) end
      return {}
    end,
    parts = function() return {} end,
    set_weight = function(g) return { g:num(1, 3, true), g:num(0, 3) } end,
    step = function(g) return { g:chance(0.3) and "nil" or g:num(0, 5, true) } end,
    steps = function() return {} end,
  }
  for _, k in ipairs(sorted_keys(CRIT)) do
    add("segloss.Criterion:" .. k, function(g)
      local c, ctx = crit_pair(g)
      local a = CRIT[k](g, ctx, c)
      if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
      if ctx.x and g:chance(0.03) then g:mutable(ctx.x) end
      local self = g:chance(0.97) and c or g:garbage()
      return string.format("%s.%s", c, k), { self, table.unpack(a, 1, #a) }
    end, { prefixes = { "segloss.Criterion", "segloss." } })
  end
  add("segloss.Criterion:__add", function(g)
    local a = crit_pair(g)
    local b = g:chance(0.8) and crit_pair(g) or g:garbage()
    if g:chance(0.5) then a, b = b, a end
    return "function(a, b) return a + b end", { a, b }
  end, { prefixes = { "segloss.Criterion", "segloss.Tensor:" } }) -- a tensor on the left answers first
  add("segloss.Criterion:__mul", function(g)
    local a = crit_pair(g)
    local k = g:chance(0.7) and g:num(0, 5) or g:chance(0.5) and "segloss.schedule.cosine(0, 1, 3)" or g:garbage()
    if g:chance(0.5) then a, k = k, a end
    return "function(a, b) return a * b end", { a, k }
  end, { prefixes = { "segloss.Criterion", "segloss.Tensor:" } })
  add("segloss.Criterion:__tostring", function(g) return "tostring", { (crit_pair(g)) } end)
  for _, k in ipairs { "criterion_new", "criterion_join", "criterion_weights", "criterion_call",
    "criterion_backward", "criterion_stats", "criterion_from_stats", "criterion_last" } do
    add("segloss.core." .. k, function(g)
      local d = g:pick(descs)
      local ctx = loss_ctx(g, pick_act(g, d), d.binary)
      local plan = g:var(string.format('core.criterion_new("segloss.%s", %q, %s)', d.class, d.name,
        loss_opts(g, ctx, d, true)))
      local a
      if k == "criterion_new" then
        a = { lit("segloss." .. d.class), g:maybe(lit(d.name)), loss_opts(g, ctx, d, true) }
      elseif k == "criterion_join" then
        a = { '"segloss.Criterion"', plan, g:chance(0.7) and plan or "nil" }
      elseif k == "criterion_weights" then
        a = { plan, g:num(0, 3), g:chance(0.3) and g:num(0, 3) or nil }
      elseif k == "criterion_call" then
        a = { plan, ctx.x, ctx.t, g:chance(0.2) and mask_of(g, ctx) or "nil", g:pick { "true", "false" } }
      elseif k == "criterion_from_stats" then
        local st = g:var(string.format("select(2, pcall(core.criterion_stats, %s, %s, %s))", plan, ctx.x, ctx.t))
        a = { plan, g:chance(0.8) and st or g:garbage(), ctx.x, ctx.t }
      elseif k == "criterion_last" then
        a = { plan }
      else
        a = { plan, ctx.x, ctx.t }
      end
      if g:chance(0.1) then a[math.random(#a)] = g:garbage() end
      return "core." .. k, a
    end, { prefixes = { "segloss." } })
  end

  -- schedules --------------------------------------------------------------
  local SCHED = {
    constant = function(g) return { g:num(-2, 2) } end,
    linear = function(g) return { g:num(0, 2), g:num(0, 2), g:num(1, 10, true) } end,
    cosine = function(g) return { g:num(0, 2), g:num(0, 2), g:num(1, 10, true) } end,
    step = function(g)
      local n = g:int(1, 4)
      local v, m = {}, {}
      for i = 1, n do v[i] = g:num(0, 2) end
      for i = 1, n - 1 + (g:chance(0.1) and 1 or 0) do m[i] = g:num(i * 2, i * 2 + 1, true) end
      return { "{" .. table.concat(v, ", ") .. "}", "{" .. table.concat(m, ", ") .. "}" }
    end,
    is = function(g) return { g:chance(0.5) and "segloss.schedule.constant(1)" or g:garbage() } end,
    is_weight = function(g) return { g:chance(0.3) and g:num(0, 2) or g:garbage() } end,
  }
  for _, k in ipairs(sorted_keys(SCHED)) do
    add("segloss.schedule." .. k, function(g)
      local a = SCHED[k](g)
      if g:chance(0.05) then a[math.random(#a + 1)] = g:garbage() end
      return "segloss.schedule." .. k, a
    end)
  end
  local function sched(g)
    local k = g:pick { "constant", "linear", "cosine", "step" }
    local a = SCHED[k](g)
    return g:var(string.format("segloss.schedule.%s(%s)", k, table.concat(a, ", ")))
  end
  add("segloss.Schedule:value", function(g)
    local s = sched(g)
    return s .. ".value", { s, g:maybe(g:num(0, 20, true), 0.15) }
  end, { prefixes = { "segloss.schedule" } })
  add("segloss.Schedule:__tostring", function(g) local s = sched(g) return "tostring", { s } end)

  -- metrics ------------------------------------------------------------------
  add("segloss.metrics.evaluate", function(g)
    local act = g:pick { "none", "sigmoid", "softmax" }
    local ctx = loss_ctx(g, act)
    local o = g:opts({
      activation = function() return lit(act) end,
      threshold = function() return g:num(0, 1) end,
      spacing = function()
        local l = {}
        for i = 1, ctx.sdim + (g:chance(0.1) and 1 or 0) do l[i] = g:num(0.1, 3) end
        return "{" .. table.concat(l, ", ") .. "}"
      end,
      empty_distance = function() return g:num(0, 100) end,
      include_background = function() return g:pick { "true", "false" } end,
      distances = function() return g:pick { "true", "false" } end,
      percentile = function() return g:num(0, 100) end,
      ignore_index = function() return g:num(-1, 4, true) end,
      mask = function() return mask_of(g, ctx) end,
      classes = function() return g:num(1, 5, true) end,
    }, 4)
    return "segloss.metrics.evaluate", { ctx.x, ctx.t, o }
  end, { prefixes = { "segloss.metrics.evaluate" } })
  add("segloss.core.metrics_evaluate", function(g)
    local _, a = R["segloss.metrics.evaluate"].gen(g)
    return "core.metrics_evaluate", a
  end, { prefixes = { "segloss.metrics.evaluate", "segloss.core.metrics_evaluate" } })
  local function dt(g)
    local s = g:shape(1, 4, 256)
    local m = g:tensor(s, g:chance(0.8) and "binary" or "any")
    local sp = {}
    for i = 1, #s + (g:chance(0.1) and 1 or 0) do sp[i] = g:num(0.01, 5) end
    return { m, g:chance(0.5) and "{" .. table.concat(sp, ", ") .. "}" or nil }
  end
  add("segloss.metrics.distance_transform", function(g)
    g.nan_ok = true -- +Inf is the documented answer for a mask without zeros
    return "segloss.metrics.distance_transform", dt(g)
  end, { prefixes = { "segloss.metrics.distance_transform", "segloss.core.distance_transform" } })
  add("segloss.core.distance_transform", function(g)
    g.nan_ok = true
    return "core.distance_transform", dt(g)
  end, { prefixes = { "segloss.metrics.distance_transform", "segloss.core.distance_transform" } })

  require("fuzz.lua.targets_more")(R, segloss, { add = add, lit = lit, loss_ctx = loss_ctx, mask_of = mask_of,
    sorted_keys = sorted_keys, numel = numel })
  return R
end

return M
