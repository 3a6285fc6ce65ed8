-- The layers, the U-Nets and the optimisers against PyTorch: the goldens of
-- tools/gen_nn_golden.py (float64 references from float32 inputs and weights,
-- spec/golden/nn/). Same weights and input: same output, input gradient,
-- parameter gradients and running statistics; the optimisers' steps give the
-- same parameters. Every layer and U-Net case also runs on every backend.
local segloss = require "segloss"
local H = require "helpers"
local T, nn, optim = segloss.tensor, segloss.nn, segloss.optim

local DIR = "spec/golden/nn/"
local manifest = H.json(DIR .. "manifest.json")

local function load(case, name) return T.load(DIR .. case .. "/" .. name .. ".npy") end

-- max |a - b| <= tol * max |b| (a relative error in the max norm); with
-- `scale`, tol * scale instead (for gradients that are exactly 0 in exact
-- arithmetic, e.g. a convolution's bias right before a normalisation)
local function close(what, a, b, tol, scale_of)
  assert(H.same_shape(a, b), string.format("%s: shape {%s} vs golden {%s}", what,
    table.concat(a:shape(), ","), table.concat(b:shape(), ",")))
  local d = a - b
  local err = math.max(d:max(), -d:min())
  local scale = scale_of or math.max(b:max(), -b:min(), 1e-30)
  assert(err == err, what .. ": NaN")
  assert(err <= tol * scale, string.format("%s: max error %.3g, %.3g of the golden's max %.3g (tolerance %g)",
    what, err, err / scale, scale, tol))
  return err / scale
end

local function build(c)
  if c.layer == "UNet" then return nn.UNet(c.opts) end
  local args = {}
  for i, v in ipairs(c.args or {}) do args[i] = v end
  local n = #args
  local opts = c.opts
  if opts and next(opts) ~= nil then
    args[n + 1] = opts
    n = n + 1
  end
  return nn[c.layer](table.unpack(args, 1, n))
end

local function names_of(m)
  local ps, gs, names = m:parameters()
  local by = {}
  for i, name in ipairs(names) do by[name] = { p = ps[i], g = gs[i] } end
  return by, names
end

local function run_case(c, tol)
  local m = build(c)
  local by, names = names_of(m)
  assert.are.same(c.params or {}, names)
  for _, name in ipairs(c.params or {}) do by[name].p:copy(load(c.name, "param." .. name)) end
  local bufs = {}
  for _, b in ipairs(m:buffers()) do bufs[b.name] = b.value end
  for _, name in ipairs(c.buffers or {}) do
    local f = io.open(DIR .. c.name .. "/buffer0." .. name .. ".npy")
    if f then
      f:close()
      bufs[name]:copy(load(c.name, "buffer0." .. name))
    end
  end
  if c.mode == "evaluate" then m:evaluate() else m:train() end
  local x = load(c.name, "x")
  local y = m:forward(x)
  local errs = { y = close(c.name .. " output", y, load(c.name, "y"), tol) }
  local gx = m:backward(x, load(c.name, "gy"))
  errs.gx = close(c.name .. " input gradient", gx, load(c.name, "gx"), tol)
  local zero, gmax = {}, 0
  for _, name in ipairs(c.zero_grads or {}) do zero[name] = true end
  for _, name in ipairs(c.params or {}) do
    local g = load(c.name, "grad." .. name)
    gmax = math.max(gmax, g:max(), -g:min())
  end
  for _, name in ipairs(c.params or {}) do
    close(c.name .. " gradient of " .. name, by[name].g, load(c.name, "grad." .. name), tol,
      zero[name] and gmax or nil)
  end
  for _, name in ipairs(c.buffers or {}) do
    close(c.name .. " buffer " .. name, bufs[name], load(c.name, "buffer." .. name), tol)
  end
  return errs
end

describe("segloss.nn against PyTorch (goldens)", function()
  assert.is_true(#manifest.cases >= 20)

  for _, c in ipairs(manifest.cases) do
    local tol = c.layer == "UNet" and 2e-4 or 2e-5
    H.backend_it(it, pending, c.name .. " (" .. c.layer .. ", " .. (c.mode or "train") .. ")", function()
      run_case(c, tol)
    end)
  end

  it("a golden comparison can fail: a perturbed weight is caught", function()
    for _, c in ipairs(manifest.cases) do
      if c.layer == "Conv2d" then
        local m = build(c)
        local ps = m:parameters()
        ps[1]:copy(load(c.name, "param.weight"))
        ps[2]:copy(load(c.name, "param.bias"))
        ps[1]:set(1, 1, 1, 1, ps[1]:get(1, 1, 1, 1) + 1e-3)
        local y = m:forward(load(c.name, "x"))
        assert.has_error(function() close("perturbed", y, load(c.name, "y"), 2e-5) end)
        return
      end
    end
    error("no Conv2d case in the manifest")
  end)
end)

describe("segloss.optim against torch.optim (goldens)", function()
  assert.is_true(#manifest.optim >= 5)
  for _, c in ipairs(manifest.optim) do
    it(c.name .. " (" .. c.optim .. ", " .. c.steps .. " steps)", function()
      local ps, gs = {}, {}
      for i = 1, c.nparams do
        ps[i] = load(c.name, "p" .. i)
        gs[i] = T.zeros(ps[i]:shape())
      end
      local o = {}
      for k, v in pairs(c.opts) do o[k] = v end
      local opt = optim[c.optim](ps, gs, o)
      for s = 1, c.steps do
        for i = 1, c.nparams do gs[i]:copy(load(c.name, "g" .. i .. "_s" .. s)) end
        opt:step()
        for i = 1, c.nparams do
          close(string.format("%s p%d after step %d", c.name, i, s), ps[i], load(c.name, "p" .. i .. "_s" .. s), 2e-6)
        end
      end
    end)
  end

  for _, c in ipairs(manifest.clip) do
    it(c.name .. " (clip_grad_norm to " .. c.max_norm .. ")", function()
      local gs = {}
      for i = 1, c.nparams do gs[i] = load(c.name, "g" .. i) end
      local norm = optim.clip_grad_norm(gs, c.max_norm)
      assert(math.abs(norm - c.total_norm) <= 1e-6 * c.total_norm, string.format("norm %.9g, torch %.9g", norm,
        c.total_norm))
      for i = 1, c.nparams do
        close(string.format("%s g%d", c.name, i), gs[i], load(c.name, "g" .. i .. "_clipped"), 2e-7)
      end
    end)
  end
end)
