-- Every variant of the SIMD loss kernels (src/kern/loss_variants.inc), on
-- every SIMD backend: each one is reached through the public functions, from
-- a loss call made out of its switches, compared with the scalar reference
-- (spec 12's tolerances), and its call count (segloss.core.loss_variants)
-- must have grown — a variant missing from the list, or listed but never
-- picked, fails. A matrix of the calls the driver can make must find a
-- variant every time (a job that finds none runs scalar code and is
-- counted). Then the fused pass's accumulate mode (out += g), driven through
-- segloss.core.loss_fused on every backend.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local function simd_backends()
  local out = {}
  for _, b in ipairs(H.known_backends()) do
    if b ~= "scalar" then out[#out + 1] = b end
  end
  return out
end

-- the list, from the first SIMD backend this CPU runs (the same file makes
-- every backend's list); nil if there is none
local function the_list()
  for _, b in ipairs(simd_backends()) do
    if H.available(b) then
      local prev = segloss.backend()
      segloss.set_backend(b)
      local vs = segloss.core.loss_variants()
      segloss.set_backend(prev)
      return vs
    end
  end
end

local function calls_of(name)
  local vs = segloss.core.loss_variants()
  for _, v in ipairs(vs) do
    if v.name == name then return v.calls end
  end
  error("variant " .. name .. " is not in the " .. segloss.backend() .. " list")
end

local function missed() return segloss.core.loss_variants().missed end

-- inputs of shape {2, C, S}: logits (a few saturated) or probabilities, a
-- binary or label target, a mask of shape {2, 1, S} or {2, C, S}
local function inputs(act, labels, mask, C, S, seed)
  segloss.seed(seed)
  local shape = { 2, C, S }
  local x = act == "none" and T.rand(shape) or T.randn(shape) * 4
  if act ~= "none" and S > 30 then x:set(1, 1, 3, 200) end -- beyond the fast exponential
  local t = labels and H.labels(shape) or H.bin(shape, 0.3)
  local m
  if mask == "pix" then m = H.bin({ 2, 1, S }, 0.8) elseif mask == "full" then m = H.bin(shape, 0.8) end
  if mask == "full" and act == "softmax" then -- the same in every channel
    for n = 1, 2 do
      for c = 2, C do
        for s = 1, S do m:set(n, c, s, m:get(n, 1, s)) end
      end
    end
  end
  return x, t, m, shape
end

-- The region parts of a call: the basic statistics (Dice), or the full
-- ones, every one of them read by some part (squared: Σp², Σt²; soft
-- labels: Σ|p - t|; sensitivity-specificity: the squared errors on each
-- side), so that a wrong statistic shows in the value or the gradient.
local function region_parts(full)
  if not full then return { { "Dice", {} } } end
  return { { "Dice", { squared = true } }, { "SensitivitySpecificity", {} }, { "Dice", { soft_label = true } } }
end

-- a criterion of the given parts, every one with the options opts
local function criterion(parts, opts)
  local sum
  for i, p in ipairs(parts) do
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    for k, v in pairs(p[2]) do o[k] = v end
    local c = (i == 2 and 0.5 or 1) * segloss[p[1]](o)
    sum = sum and sum + c or c
  end
  return sum
end

-- The call that reaches variant v on inputs (x, t) with options opts: a
-- function returning (value, gradient). The switches map to calls so: a
-- statistics pass that stores nothing is crit:stats() (compared statistic
-- by statistic); store_p/from_p and store_z/from_z take a criterion's own
-- buffer, where the statistics pass then leaves p (the pixel parts are bce
-- or absent) or e^-|x| (sigmoid, other pixel parts); without them, where
-- something would be left, a functional loss writes into opts.out. full:
-- region parts that read every statistic (the size index si varies the
-- region coefficients' kind too).
local function call_for(v, x, t, opts, si)
  local full = v.full or (v.kind == "fused" and si >= 2)
  if v.kind == "stats" then
    local parts = region_parts(v.full)
    if v.bce then table.insert(parts, 1, { "BCE", { pos_weight = 2 } }) end
    if v.storez then table.insert(parts, 1, { "Focal", {} }) end
    local crit = criterion(parts, opts)
    if not (v.storep or v.storez) then return function() return 0, crit:stats(x, t) end end
    return function() return crit(x, t) end
  end
  local pix = {}
  if v.pixel == "bce" then
    pix = { { "BCE", { pos_weight = 2 } } }
  elseif v.pixel == "focal2" then
    pix = { { "Focal", {} } }
  elseif v.pixel == "other" and v.act == "softmax" then
    pix = { { "CE", {} }, { "Focal", { alpha = { 0.2, 0.3, 0.5 } } } }
  elseif v.pixel == "other" and v.fromp then
    pix = { { "BCE", {} }, { "BCE", { pos_weight = 3 } } }
  elseif v.pixel == "other" then
    pix = { { "Focal", { gamma = 1.5 } }, { "BCE", {} } }
  end
  local parts = {}
  for _, p in ipairs(pix) do parts[#parts + 1] = p end
  if v.region then
    for _, p in ipairs(region_parts(full)) do parts[#parts + 1] = p end
  end
  -- a criterion's buffer keeps p or z with a region part and sigmoid, and p
  -- with softmax and region parts alone
  local keeps = v.region and (v.act == "sigmoid" or (v.act == "softmax" and v.pixel == "none"))
  if v.fromp or v.fromz or not keeps then
    local crit = criterion(parts, opts)
    return function() return crit(x, t) end
  end
  -- one functional loss writing into out: dice (full: squared, or
  -- sensitivity_specificity), bce_dice, dice_focal
  local name = v.pixel == "bce" and "bce_dice" or (v.pixel == "focal2" or v.pixel == "other") and "dice_focal"
    or full and si == 3 and "sensitivity_specificity" or "dice"
  local o = { out = T.zeros(x:shape()), squared = full and name ~= "sensitivity_specificity" or nil }
  if name == "bce_dice" then o.pos_weight = 2 end
  if name == "dice_focal" then o.gamma = v.pixel == "other" and 1.5 or 2 end
  for k, val in pairs(opts) do o[k] = val end
  return function() return segloss[name](x, t, o) end
end

-- (value, gradient or statistics) of backend b against scalar, spec 12's
-- tolerances; statistics each against its own size
local function compare(what, run, b)
  segloss.set_backend("scalar")
  local l0, g0 = run()
  segloss.set_backend(b)
  local l1, g1 = run()
  assert(math.abs(l1 - l0) <= 1e-5 * math.abs(l0) + 1e-6,
    string.format("%s %s: loss %.9g vs scalar %.9g", what, b, l1, l0))
  assert((g0 == nil) == (g1 == nil), what .. ": a gradient on one backend only")
  if not g0 then return end
  local a, c = g0:reshape(g0:numel()), g1:reshape(g1:numel())
  if l0 == 0 and l1 == 0 then -- statistics
    local err = 0
    for i = 1, a:numel() do
      err = math.max(err, math.abs(c:get(i) - a:get(i)) / (math.abs(a:get(i)) + 1e-6))
    end
    assert(err <= 1e-5, string.format("%s %s: a statistic differs by %.3g of itself", what, b, err))
  else
    local scale = math.max(a:max(), -a:min())
    local d = c - a
    local err = math.max(d:max(), -d:min())
    assert(err <= 2e-4 * scale + 1e-30,
      string.format("%s %s: gradient differs by %.3g (scale %.3g)", what, b, err, scale))
  end
end

describe("loss kernel variants", function()
  local list = the_list()
  if not list then
    it("(no SIMD backend runs on this CPU)", function() pending("no SIMD backend runs here") end)
    return
  end

  it("the list holds the 148 variants the driver can reach, each once", function()
    local seen = {}
    for _, v in ipairs(list) do
      assert.is_nil(seen[v.name], "listed twice: " .. v.name)
      seen[v.name] = true
      -- the name says what the switches say
      assert.truthy(v.name:find("^" .. v.kind .. "_" .. v.act .. "_" .. (v.labels and "labels" or "dense")
        .. "_" .. (v.mask and "mask" or "nomask")), v.name)
      assert.is_false(v.act ~= "sigmoid" and (v.storez or v.fromz or v.bce), v.name .. " is unreachable")
      assert.is_false(v.act == "none" and (v.storep or v.fromp), v.name .. " is unreachable")
    end
    assert.equal(148, #list)
  end)

  for _, v in ipairs(list) do
    H.simd_it(it, pending, v.name .. " runs and matches scalar", function(b)
      local C = (v.labels or v.act == "softmax") and 3 or 1
      for si, S in ipairs({ 9, 37, 1000 }) do
        local mask = v.mask and (si == 2 and C > 1 and "full" or "pix") or nil
        local x, t, m = inputs(v.act, v.labels, mask, C, S, si)
        local run = call_for(v, x, t, { activation = v.act, mask = m }, si)
        segloss.set_backend(b)
        local before, miss = calls_of(v.name), missed()
        compare(v.name, run, b)
        assert.is_true(calls_of(v.name) > before, v.name .. " did not run on " .. b)
        assert.equal(miss, missed(), "a job found no variant")
      end
    end)
  end

  -- every call the driver can be asked for finds its variant
  local LOSSES = {}
  for _, d in ipairs(segloss.losses()) do LOSSES[#LOSSES + 1] = d.name end
  local EXTRA = { {}, { squared = true }, { gamma = 1.5 }, { pos_weight = "auto" }, { reduction = "sum" },
    { label_smoothing = 0.1 } }
  H.simd_it(it, pending, "every loss, activation, target, mask and gradient destination finds a variant", function(b)
    segloss.set_backend(b)
    local miss, ran = missed(), 0
    for _, act in ipairs({ "none", "sigmoid", "softmax" }) do
      for _, tk in ipairs({ "bin1", "bin3", "lab" }) do
        for _, mk in ipairs({ "no", "pix", "full" }) do
          local C = tk == "bin1" and 1 or 3
          local x, t, m = inputs(act, tk == "lab", mk ~= "no" and mk or nil, C, 40, 7)
          if tk == "bin3" then t = H.bin({ 2, 3, 40 }, 0.3) end
          for _, name in ipairs(LOSSES) do
            for _, e in ipairs(EXTRA) do
              for _, dest in ipairs({ "out", "fresh", "nograd" }) do
                local o = { activation = act, mask = m, grad = dest ~= "nograd" }
                for k, val in pairs(e) do o[k] = val end
                if dest == "out" then o.out = T.zeros(x:shape()) end
                if pcall(segloss[name], x, t, o) then ran = ran + 1 end
              end
            end
          end
        end
      end
    end
    assert.is_true(ran > 500, "only " .. ran .. " calls were valid")
    assert.equal(miss, missed(), "jobs found no variant")
  end)
end)

-- The accumulate mode of the fused pass: out prefilled with r, the pass
-- adds its gradient g: out = r + g in one float addition per element (the
-- same bits as out:add(r, g) on the gradient stored by the same backend),
-- the values unchanged; dry leaves out alone; a sum that overflows is an
-- error. Every backend, every kind of fused job (what the variants switch on).
describe("fused pass, accumulate mode", function()
  -- the jobs: act, labels, mask, region coefficients, pixel parts
  local jobs = {}
  local PIX = {
    none = {}, bce = { { type = "bce", pos_weight = 2, neg_weight = 0.25 } },
    focal2 = { { type = "focal", alpha = 0.25 } },
    other = { { type = "focal", gamma = 1.5 }, { type = "bce", scale = 0.5 } },
  }
  for _, act in ipairs({ "none", "sigmoid", "softmax" }) do
    for _, labels in ipairs({ false, true }) do
      for _, mask in ipairs({ false, true }) do
        for _, reg in ipairs({ false, true }) do
          for _, px in ipairs({ "none", "bce", "focal2", "other" }) do
            local pix = PIX[px]
            if act == "softmax" then
              pix = px == "other" and { { type = "ce" }, { type = "focal", c0 = 1 } } or px == "none" and {} or nil
            end
            if pix and (reg or #pix > 0) then
              jobs[#jobs + 1] = { act = act, labels = labels, mask = mask, reg = reg, pix = pix, px = px }
            end
          end
        end
      end
    end
  end

  local function job_inputs(jb, S, seed)
    local C = (jb.labels or jb.act == "softmax") and 3 or 1
    local x, t, m, shape = inputs(jb.act, jb.labels, jb.mask and "pix" or nil, C, S, seed)
    local coef = nil
    if jb.reg then coef = T.randn(2, C, seed % 2 == 0 and 6 or 3) * 0.1 end
    return x, t, m, coef, shape
  end

  local function run(jb, x, t, m, coef, out, acc, dry)
    local pix = {}
    for i, p in ipairs(jb.pix) do
      pix[i] = {}
      for k, v in pairs(p) do pix[i][k] = v end
      pix[i].scale = (p.scale or 1) / x:numel()
    end
    return segloss.core.loss_fused(x, t, { act = jb.act, mask = m, coef = coef, pix = pix, out = out,
      accumulate = acc, dry = dry })
  end

  H.backend_it(it, pending, "out = prefill + gradient, for every kind of fused job", function()
    for ji, jb in ipairs(jobs) do
      for si, S in ipairs({ 5, 37, 1000 }) do
        local x, t, m, coef, shape = job_inputs(jb, S, ji * 10 + si)
        local what = string.format("job %d (%s, labels %s, mask %s, region %s, pixel %s), S = %d", ji, jb.act,
          jb.labels, jb.mask, jb.reg, jb.px, S)
        local g = T.zeros(shape)
        local v0 = run(jb, x, t, m, coef, g, false)
        local r = T.randn(shape)
        local out = r:clone()
        local v1 = run(jb, x, t, m, coef, out, true)
        local want = r + g
        local d = out - want
        assert(d:max() == 0 and d:min() == 0, what .. ": out is not prefill + gradient")
        for i = 1, #v0 do assert(v0[i] == v1[i], what .. ": values differ") end
        -- a trial writes nothing
        local keep = r:clone()
        run(jb, x, t, m, coef, keep, true, true)
        d = keep - r
        assert(d:max() == 0 and d:min() == 0, what .. ": a dry run wrote into out")
      end
    end
  end)

  H.simd_it(it, pending, "the gradient added matches scalar's", function(b)
    for ji, jb in ipairs(jobs) do
      local x, t, m, coef, shape = job_inputs(jb, 1000, ji)
      local r = T.randn(shape)
      segloss.set_backend("scalar")
      local o0 = r:clone()
      run(jb, x, t, m, coef, o0, true)
      segloss.set_backend(b)
      local o1 = r:clone()
      run(jb, x, t, m, coef, o1, true)
      local g0 = o0 - r
      local scale = math.max(g0:max(), -g0:min())
      local d = o1 - o0
      assert(math.max(d:max(), -d:min()) <= 2e-4 * scale + 1e-6, "job " .. ji .. " differs from scalar")
    end
  end)

  H.backend_it(it, pending, "a sum that overflows is an error; float sums of the values that do are redone", function()
    local x = T.full({ 2, 1, 40 }, -1)
    local t = T.ones(2, 1, 40)
    -- the gradient near -pos_weight q: huge, but r + g overflows only where r is
    local pix = { { type = "bce", pos_weight = 3e38, scale = 1e-30 } }
    local out = T.zeros(2, 1, 40)
    local v = segloss.core.loss_fused(x, t, { act = "sigmoid", pix = pix, out = out })
    -- ℓ = w softplus(1) = 3.9e38 per element overflows float32 sums, not the double ones
    assert.is_true(math.abs(v[1] / (80 * 3e38 * math.log(1 + math.exp(1))) - 1) < 1e-6)
    local r = T.randn(2, 1, 40)
    local acc = r:clone()
    local va = segloss.core.loss_fused(x, t, { act = "sigmoid", pix = pix, out = acc, accumulate = true })
    assert.equal(v[1], va[1])
    -- out holds the scalar redo's gradient, acc r + the SIMD one (the task
    -- cannot be redone over r)
    local d, scale = acc - (r + out), -out:min()
    assert.is_true(scale > 1e8 and math.max(d:max(), -d:min()) <= 1e-6 * scale)
    -- out at the float32 limit: out + g overflows
    local big = T.full({ 2, 1, 40 }, -3.4e38)
    H.errors("segloss.core.loss_fused: ", { "bad element of kind 7", "flat index 0" }, segloss.core.loss_fused,
      x, t, { act = "sigmoid", pix = { { type = "bce", scale = 1e38 } }, out = big, accumulate = true })
  end)
end)
