--- Optimisers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, with
-- torch.optim's update rules, updating the parameters in place with SIMD
-- kernels.
--
--     local opt = segloss.optim.Adam(net, {lr = 1e-3})
--     for step = 1, n do
--       net:zero_grad(); ...; net:backward(x, gy)
--       segloss.optim.clip_grad_norm(net, 1.0)   -- optional
--       opt:step()
--     end
--     opt:set_lr(segloss.schedule.cosine(1e-3, 1e-5, n))  -- lr follows a schedule
--
-- The first argument is a module (its parameters() are used) or two lists
-- `params, grads` of tensors of matching shapes.
-- @module segloss.optim

local core = require "segloss.core"
local T = core.tensor
local U = require "segloss.util"
local schedule = require "segloss.schedule"

local optim = {}

local Optimizer = {}
Optimizer.__index = Optimizer
Optimizer.__name = "segloss.optim.Optimizer"

local function targets(fname, a, b)
  local ps, gs
  if type(a) == "table" and type(a.parameters) == "function" then
    ps, gs = a:parameters()
    if b ~= nil then return ps, gs, b end
  elseif type(a) == "table" and getmetatable(a) == nil and type(b) == "table" and getmetatable(b) == nil then
    ps, gs = a, b
    b = nil
  else
    error(string.format("%s: expects a segloss.nn module or two lists (params, grads), got %s", fname,
      U.describe(a)), 0)
  end
  if #ps ~= #gs then
    error(string.format("%s: %d parameters but %d gradients", fname, #ps, #gs), 0)
  end
  for i = 1, #ps do
    if not T.istensor(ps[i]) or not T.istensor(gs[i]) then
      error(string.format("%s: params[%d] and grads[%d] must be tensors, got %s and %s", fname, i, i,
        U.describe(ps[i]), U.describe(gs[i])), 0)
    end
    if U.shapestr(ps[i]) ~= U.shapestr(gs[i]) then
      error(string.format("%s: params[%d] has the shape %s but grads[%d] %s", fname, i, U.shapestr(ps[i]), i,
        U.shapestr(gs[i])), 0)
    end
  end
  return ps, gs, b
end

local function lr_check(v)
  if schedule.is(v) then return end
  if math.type(v) == nil or v ~= v or v < 0 or v > 3.4028234663852886e38 then
    return "a number in [0, 3.4028235e+38] or a segloss.schedule"
  end
end

-- SGD's options that only make sense together
local function check_sgd(fname, o)
  if o.nesterov and (o.momentum <= 0 or o.dampening ~= 0) then
    error(fname .. ": nesterov needs momentum > 0 and dampening = 0, got momentum " ..
      tostring(o.momentum) .. ", dampening " .. tostring(o.dampening), 0)
  end
end

local function new(kind, slots, spec, defaults, fname, a, b, c)
  local ps, gs, opts = targets(fname, a, b, c)
  if c ~= nil then opts = c end
  opts = U.options(fname, opts, spec)
  -- a tensor twice would be updated twice per step
  local seen = {}
  for i, p in ipairs(ps) do
    if seen[p] then
      error(string.format("%s: params[%d] is params[%d]: each parameter may be given once", fname, i, seen[p]), 0)
    end
    seen[p] = i
  end
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  if kind == "SGD" then check_sgd(fname, o) end
  local self = setmetatable({ kind = kind, params = ps, grads = gs, opts = o, nstep = 0, slots = slots,
                              buf = {}, spec = spec }, Optimizer)
  self:set_lr(o.lr)
  for _, s in ipairs(slots) do
    self.buf[s] = {}
    for i, p in ipairs(ps) do self.buf[s][i] = T.zeros(p:shape()) end
  end
  return self
end

-- Checks that self is an optimiser (a method called with `.` instead of
-- `:`, or on something else, is an error naming the method); returns self.
local function own(self, method)
  if getmetatable(self) ~= Optimizer then
    error(string.format("segloss.optim.Optimizer:%s: self must be a segloss.optim optimiser (call opt:%s(...)), got %s",
      method, method, U.describe(self)), 0)
  end
  return self
end

--- The learning rate of the next step: a schedule is read at the number of
-- steps taken so far (0 for the first step), as criteria read theirs.
function Optimizer:lr()
  own(self, "lr")
  local lr = self._lr
  if schedule.is(lr) then return lr:value(self.nstep) end
  return lr
end

--- Sets the learning rate: a number, or a segloss.schedule of the step count.
function Optimizer:set_lr(v)
  own(self, "set_lr")
  local want = lr_check(v)
  if want then
    error(string.format("segloss.optim.%s:set_lr: lr must be %s, got %s", self.kind, want, U.describe(v)), 0)
  end
  self._lr = v
  return self
end

--- Updates every parameter in place from its gradient.
function Optimizer:step()
  own(self, "step")
  local o, lr = self.opts, self:lr()
  local k = self.nstep + 1
  if not (lr >= 0 and lr < math.huge) then
    error(string.format("segloss.optim.%s:step: the schedule gave lr = %s", self.kind, tostring(lr)), 0)
  end
  if self.kind == "SGD" then
    local first = k == 1 or self._fresh == true
    for i, p in ipairs(self.params) do
      core.optim_sgd(p, self.grads[i], o.momentum ~= 0 and self.buf.momentum[i] or nil, lr, o.momentum,
        o.dampening, o.nesterov, o.weight_decay, first)
    end
  else
    for i, p in ipairs(self.params) do
      core.optim_adam(p, self.grads[i], self.buf.exp_avg[i], self.buf.exp_avg_sq[i], k, lr,
        o.betas[1], o.betas[2], o.eps, o.weight_decay, self.kind == "AdamW")
    end
  end
  self._fresh = nil
  self.nstep = k
  return self
end

--- The state to save: settings, step count and per-parameter buffers.
function Optimizer:state()
  own(self, "state")
  local tensors = {}
  for _, s in ipairs(self.slots) do
    for i, t in ipairs(self.buf[s]) do tensors[#tensors + 1] = { name = i .. "." .. s, tensor = t } end
  end
  local opts = {}
  for k, v in pairs(self.opts) do opts[k] = v end
  opts.lr = nil
  local lr = self._lr
  return { kind = self.kind, step = self.nstep, lr = schedule.is(lr) and lr:value(self.nstep) or lr,
           opts = opts, tensors = tensors }
end

--- Restores a state from opt:state() or a checkpoint (`select(2, nn.load(p)).optim`):
-- the step count, the per-parameter buffers and, as torch.optim does, the
-- settings (lr as a number, betas, eps, momentum, ...), each checked as the
-- constructor checks it. Nothing changes if anything is wrong.
function Optimizer:load_state(st)
  own(self, "load_state")
  local fname = "segloss.optim." .. self.kind .. ":load_state"
  if type(st) ~= "table" or st.kind ~= self.kind or type(st.tensors) ~= "table" then
    error(string.format("%s: expects the state of a %s optimiser, got %s", fname, self.kind,
      type(st) == "table" and "the state of " .. U.describe(st.kind) or U.describe(st)), 0)
  end
  local step = math.tointeger(st.step)
  if not step or step < 0 or step >= 2 ^ 53 then
    error(fname .. ": the state's step must be an integer in 0..2^53 - 1, got " .. U.describe(st.step), 0)
  end
  local o = {}
  for k, v in pairs(self.opts) do o[k] = v end
  if st.opts ~= nil then
    for k, v in pairs(U.options(fname .. " (the state's settings)", st.opts, self.spec)) do o[k] = v end
  end
  if st.lr ~= nil then
    local want = lr_check(st.lr)
    if want or schedule.is(st.lr) then
      error(string.format("%s: the state's lr must be a finite number >= 0, got %s", fname, U.describe(st.lr)), 0)
    end
  end
  if self.kind == "SGD" then check_sgd(fname, o) end
  local by = {}
  for _, e in ipairs(st.tensors) do by[e.name] = e.tensor end
  local todo = {}
  for _, s in ipairs(self.slots) do
    for i, t in ipairs(self.buf[s]) do
      local src = by[i .. "." .. s]
      if not T.istensor(src) or U.shapestr(src) ~= U.shapestr(t) then
        error(string.format("%s: state %d.%s must be a tensor of the shape %s, got %s", fname, i, s,
          U.shapestr(t), T.istensor(src) and U.shapestr(src) or U.describe(src)), 0)
      end
      todo[#todo + 1] = { t, src }
    end
  end
  for _, pair in ipairs(todo) do pair[1]:copy(pair[2]) end
  self.nstep = step
  self.opts = o
  if st.lr ~= nil then self._lr = st.lr end
  if self.kind == "SGD" and step == 0 then self._fresh = true end
  return self
end

function Optimizer:__tostring()
  local o = {}
  for k, v in pairs(self.opts) do
    if k ~= "lr" then
      o[#o + 1] = k .. " = " .. (type(v) == "table" and "{" .. table.concat(v, ", ") .. "}" or tostring(v))
    end
  end
  table.sort(o)
  return string.format("segloss.optim.%s(lr = %s, %s; %d parameters, step %d)", self.kind, tostring(self._lr),
    table.concat(o, ", "), #self.params, self.nstep)
end

local function betas_check(v)
  if type(v) ~= "table" or #v ~= 2 or not (math.type(v[1]) and v[1] >= 0 and v[1] < 1)
      or not (math.type(v[2]) and v[2] >= 0 and v[2] < 1) then
    return "a list of two numbers in [0, 1)"
  end
end

-- eps must stay > 0 in float32 (a smaller one rounds to 0: 0/0 on a zero
-- gradient); every setting must fit float32
local FLT_MIN, FLT_MAX = 1.1754943508222875e-38, 3.4028234663852886e38
local ADAM = { lr = lr_check, betas = betas_check, eps = U.is.num(FLT_MIN, FLT_MAX),
               weight_decay = U.is.num(0, FLT_MAX) }

--- Adam (Kingma & Ba), torch.optim.Adam: weight_decay adds wd·p to the gradient.
-- opts: lr (1e-3), betas ({0.9, 0.999}), eps (1e-8), weight_decay (0).
function optim.Adam(a, b, c)
  return new("Adam", { "exp_avg", "exp_avg_sq" }, ADAM,
    { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0 }, "segloss.optim.Adam", a, b, c)
end

--- AdamW (Loshchilov & Hutter), torch.optim.AdamW: decoupled weight decay
-- p ← p·(1 − lr·wd). opts as Adam, weight_decay (1e-2).
function optim.AdamW(a, b, c)
  return new("AdamW", { "exp_avg", "exp_avg_sq" }, ADAM,
    { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2 }, "segloss.optim.AdamW", a, b, c)
end

--- SGD, torch.optim.SGD: opts lr (1e-2), momentum (0), dampening (0),
-- nesterov (false; needs momentum > 0 and dampening 0), weight_decay (0).
function optim.SGD(a, b, c)
  local spec = { lr = lr_check, momentum = U.is.num(0, FLT_MAX), dampening = U.is.num(0, 1), nesterov = U.is.bool,
                 weight_decay = U.is.num(0, FLT_MAX) }
  return new("SGD", { "momentum" }, spec,
    { lr = 1e-2, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0 }, "segloss.optim.SGD", a, b, c)
end

--- Scales the gradients so that their global L2 norm is at most max_norm
-- (torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6) when
-- below 1); returns the norm before clipping. Target: a module or a list of
-- gradient tensors.
function optim.clip_grad_norm(target, max_norm)
  local fname = "segloss.optim.clip_grad_norm"
  local gs
  if type(target) == "table" and type(target.parameters) == "function" then
    gs = select(2, target:parameters())
  elseif type(target) == "table" and getmetatable(target) == nil then
    gs = target
    for i, g in ipairs(gs) do
      if not T.istensor(g) then
        error(string.format("%s: grads[%d] must be a tensor, got %s", fname, i, U.describe(g)), 0)
      end
    end
  else
    error(fname .. ": expects a segloss.nn module or a list of gradient tensors, got " .. U.describe(target), 0)
  end
  if math.type(max_norm) == nil or max_norm ~= max_norm or max_norm <= 0 or max_norm == math.huge then
    error(fname .. ": max_norm must be a finite number > 0, got " .. U.describe(max_norm), 0)
  end
  local ss, amax = 0, 0
  for _, g in ipairs(gs) do
    ss = ss + g:dot(g)
    local hi, lo = g:max(), g:min()
    if hi ~= hi or lo ~= lo or hi == math.huge or lo == -math.huge then
      error(fname .. ": a gradient holds NaN or Inf", 0)
    end
    amax = math.max(amax, hi, -lo)
  end
  if ss == math.huge then
    -- finite gradients whose squares overflow float32: sum (g / amax)^2
    -- (a temporary per gradient, only in this rare case)
    ss = 0
    for _, g in ipairs(gs) do
      local u = g * (1 / amax)
      ss = ss + u:dot(u)
    end
    ss = ss * amax * amax
  end
  local norm = math.sqrt(ss)
  local coef = max_norm / (norm + 1e-6)
  if coef < 1 then
    for _, g in ipairs(gs) do g:mul(coef) end
  end
  return norm
end

return optim
