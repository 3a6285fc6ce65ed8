-- tools/loss_dump.lua — the bits of every loss's value and gradient on fixed
-- inputs, per backend, for checking that a kernel change leaves results
-- bit-identical (SLEEF's tester3 idea): run it with the old and the new
-- build and compare the files with cmp.
--
--   LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="build/?.so;;" \
--     lua5.4 tools/loss_dump.lua OUTDIR [backend,...]
--
-- Writes OUTDIR/<backend>.bin (the float32 bytes of every gradient and
-- value map, and each loss value as a double; about 1.4 GB) and
-- OUTDIR/<backend>.txt (one line per case: its offset in the .bin, its
-- description and the loss value in %a, or the error), so that the first
-- difference cmp reports names its case.
-- Cases: every loss x activation x target kind x mask x a few option sets x
-- the ways a gradient is asked for (opts.out, a fresh tensor, a criterion's
-- two buffers, no gradient), and combinations of criteria, on a small shape
-- and on one of two or more tasks.
local segloss = require "segloss"
local T = segloss.tensor

local outdir = assert(arg[1], "usage: lua5.4 tools/loss_dump.lua OUTDIR [backend,...]")
local backends = {}
for b in (arg[2] or table.concat(segloss.backends(), ",")):gmatch("[^,]+") do backends[#backends + 1] = b end

-- every loss of the registry, with its criterion class
local LOSSES, CLASSES = {}, {}
for _, d in ipairs(segloss.losses()) do
  LOSSES[#LOSSES + 1] = d.name
  CLASSES[d.name] = d.class
end
-- extra option sets of some losses (besides the defaults)
local EXTRA = {
  bce = { { pos_weight = 3 }, { reduction = "sum", include_background = false }, { reduction = "none" } },
  ce = { { include_background = false }, { reduction = "none" } },
  focal = { { gamma = 1 }, { gamma = 2.5, alpha = false }, { gamma = 0.5 }, { gamma = 3 }, { reduction = "none" } },
  dice = { { squared = true }, { batch = true }, { soft_label = true }, { include_background = false } },
  iou = { { squared = true } },
  tversky = { { alpha = 0.6, beta = 0.4 } },
  focal_tversky = { { gamma = 1.5 } },
  generalized_dice = { { w_type = "simple" } },
  bce_dice = { { squared = true } },
  dice_focal = { { gamma = 1 }, { gamma = 2.5 } },
}

local function bin(shape, p)
  local t = T.rand(shape)
  local f = t:reshape(t:numel())
  for i = 1, f:numel() do f:set(i, f:get(i) < p and 1 or 0) end
  return t
end

local function labels(shape)
  local ls = { shape[1], 1 }
  for i = 3, #shape do ls[i] = shape[i] end
  local l = T.rand(ls) * shape[2]
  local f = l:reshape(l:numel())
  for i = 1, f:numel() do f:set(i, math.floor(f:get(i))) end
  return l
end

-- the inputs of each (act, target kind, mask, size), made once so that every
-- backend sees the same data
local inputs = {}
local function data(act, tk, mk, S, seed)
  local key = table.concat({ act, tk, mk, S }, "/")
  if inputs[key] then return table.unpack(inputs[key]) end
  segloss.seed(seed)
  local C = tk == "bin1" and 1 or 3
  local shape = { 2, C, S }
  local x = act == "none" and T.rand(shape) or T.randn(shape) * 4
  if act ~= "none" then -- a few saturated logits
    local f = x:reshape(x:numel())
    for i = 1, f:numel(), 17 do f:set(i, f:get(i) * 30) end
  end
  local t = tk == "lab" and labels(shape) or tk == "soft" and T.rand(shape) or bin(shape, 0.2)
  local m = mk == "pix" and bin({ 2, 1, S }, 0.8) or mk == "full" and bin(shape, 0.8) or nil
  inputs[key] = { x, t, m, shape }
  return x, t, m, shape
end

local cases = {}
for _, S in ipairs({ 37, 20000 }) do
  for _, name in ipairs(LOSSES) do
    for _, act in ipairs({ "none", "sigmoid", "softmax" }) do
      for _, tk in ipairs({ "bin1", "bin3", "lab", "soft" }) do
        for _, mk in ipairs({ "no", "pix", "full" }) do
          local sets = { {} }
          for _, e in ipairs(EXTRA[name] or {}) do sets[#sets + 1] = e end
          for oi, o in ipairs(sets) do
            for _, mode in ipairs({ "out", "fresh", "crit", "nograd" }) do
              cases[#cases + 1] = { S = S, name = name, act = act, tk = tk, mk = mk, o = o, oi = oi, mode = mode }
            end
          end
        end
      end
    end
  end
end

-- combinations (criteria: one statistics pass, one fused pass for all parts)
local COMBOS = {
  { "BCE", "BCEDice" }, { "BCE", "Dice" }, { "Dice", "Focal" }, { "BCE", "Dice", "Tversky" },
  { "BCE", "Focal" }, { "CE", "Dice" }, { "Focal", "GeneralizedDice" }, { "BCE", "BCE" },
}
for _, S in ipairs({ 37, 20000 }) do
  for _, parts in ipairs(COMBOS) do
    for _, act in ipairs({ "none", "sigmoid", "softmax" }) do
      for _, tk in ipairs({ "bin1", "bin3", "lab" }) do
        for _, mk in ipairs({ "no", "pix", "full" }) do
          cases[#cases + 1] = { S = S, combo = parts, act = act, tk = tk, mk = mk, o = {}, oi = 1, mode = "crit" }
        end
      end
    end
  end
end

local function describe(c)
  return string.format("%s act=%s t=%s mask=%s opts#%d %s S=%d", c.name or table.concat(c.combo, "+"), c.act, c.tk,
    c.mk, c.oi, c.mode, c.S)
end

local tmp = os.tmpname()
local function bytes(t)
  t:save(tmp)
  local f = assert(io.open(tmp, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

for _, b in ipairs(backends) do
  segloss.set_backend(b)
  segloss.set_threads(1)
  local fb = assert(io.open(outdir .. "/" .. b .. ".bin", "wb"))
  local ft = assert(io.open(outdir .. "/" .. b .. ".txt", "w"))
  for ci, c in ipairs(cases) do
    local x, t, m, shape = data(c.act, c.tk, c.mk, c.S, ci)
    local opts = { activation = c.act, mask = m }
    for k, v in pairs(c.o) do opts[k] = v end
    local ok, l, g
    local at = fb:seek()
    if c.mode == "crit" then
      local ok0, crit = pcall(function()
        if not c.combo then return segloss[CLASSES[c.name]](opts) end
        local sum
        for i, cls in ipairs(c.combo) do
          local part = (i == 2 and 0.5 or 1) * segloss[cls](opts)
          sum = sum and sum + part or part
        end
        return sum
      end)
      ok = ok0
      if ok then
        ok, l, g = pcall(crit, x, t)
        if ok then -- the second buffer too
          local l2, g2 = crit(x, t)
          fb:write(string.pack("<d", l2), bytes(g2))
        end
      else
        l = crit
      end
    else
      if c.mode == "out" then opts.out = T.zeros(shape) end
      if c.mode == "nograd" then opts.grad = false end
      ok, l, g = pcall(segloss[c.name], x, t, opts)
    end
    if ok then
      if type(l) == "number" then
        fb:write(string.pack("<d", l))
        ft:write(at, " ", describe(c), " ", string.format("%a", l), "\n")
      else
        fb:write(bytes(l))
        ft:write(at, " ", describe(c), " map\n")
      end
      if g then fb:write(bytes(g)) end
    else
      ft:write(at, " ", describe(c), " error ", (tostring(l):gsub("\n", " ")), "\n")
    end
  end
  fb:close()
  ft:close()
  local vs, ran = segloss.core.loss_variants and segloss.core.loss_variants() or {}, 0
  for _, v in ipairs(vs) do ran = ran + (v.calls > 0 and 1 or 0) end
  io.stderr:write(string.format("%s: %d cases; %d of its %d kernel variants ran, %d jobs found none\n", b,
    #cases, ran, #vs, vs.missed or 0))
end
os.remove(tmp)
