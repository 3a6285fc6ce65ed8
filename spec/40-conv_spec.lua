-- Convolutions (segloss.core.conv_*): forward, data gradient, weight and
-- bias gradients against a naive reference in doubles; central differences;
-- the same bits for 1, 2 and 3 threads; accumulation; every argument error.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local core = segloss.core

local function flat(t) return t:reshape(t:numel()):totable() end

-- The spatial geometry of a plan for input spatial sizes `sp` (2 or 3 of
-- them): 2-D is 3-D with depth 1 and kernel depth 1.
local function geom(cfg, sp)
  local g = { k = cfg.k or (cfg.transposed and 2 or 3) }
  g.s = cfg.stride or (cfg.transposed and 2 or 1)
  g.p = cfg.transposed and 0 or (g.k - 1) // 2
  local in3 = cfg.dims == 3 and sp or { 1, sp[1], sp[2] }
  g.i = in3
  g.kd = cfg.dims == 3 and g.k or 1
  g.o = {}
  for a = 1, 3 do
    local k = a == 1 and g.kd or g.k
    local s = (a == 1 and cfg.dims == 2) and 1 or g.s
    local p = (a == 1 and cfg.dims == 2) and 0 or g.p
    if cfg.transposed then
      g.o[a] = (a == 1 and cfg.dims == 2) and 1 or 2 * in3[a]
    else
      g.o[a] = (in3[a] + 2 * p - k) // s + 1
    end
  end
  return g
end

-- Calls f(n, ci, co, xi, yi, wi) for every product x[xi] * w[wi] that adds
-- to y[yi] (1-based flat indices), the definition of the convolution.
local function each_term(cfg, N, g, f)
  local cin, cout, k, kd = cfg.cin, cfg.cout, g.k, g.kd
  local I, O = g.i, g.o
  local s3 = cfg.dims == 3 and g.s or 1
  local p3 = cfg.dims == 3 and g.p or 0
  for n = 0, N - 1 do
    for co = 0, cout - 1 do
      for od = 0, O[1] - 1 do
        for oh = 0, O[2] - 1 do
          for ow = 0, O[3] - 1 do
            local yi = (((n * cout + co) * O[1] + od) * O[2] + oh) * O[3] + ow + 1
            for ci = 0, cin - 1 do
              if cfg.transposed then
                local id, a = od, 0
                if cfg.dims == 3 then id, a = od // 2, od % 2 end
                local ih, b, iw, c = oh // 2, oh % 2, ow // 2, ow % 2
                local xi = (((n * cin + ci) * I[1] + id) * I[2] + ih) * I[3] + iw + 1
                local wi = (((ci * cout + co) * kd + a) * k + b) * k + c + 1
                f(n, co, xi, yi, wi)
              else
                for a = 0, kd - 1 do
                  local id = od * s3 - p3 + a
                  if id >= 0 and id < I[1] then
                    for b = 0, k - 1 do
                      local ih = oh * g.s - g.p + b
                      if ih >= 0 and ih < I[2] then
                        for c = 0, k - 1 do
                          local iw = ow * g.s - g.p + c
                          if iw >= 0 and iw < I[3] then
                            local xi = (((n * cin + ci) * I[1] + id) * I[2] + ih) * I[3] + iw + 1
                            local wi = (((co * cin + ci) * kd + a) * k + b) * k + c + 1
                            f(n, co, xi, yi, wi)
                          end
                        end
                      end
                    end
                  end
                end
              end
            end
          end
        end
      end
    end
  end
end

local function zeros(n)
  local t = {}
  for i = 1, n do t[i] = 0.0 end
  return t
end

-- Reference results in doubles, and their scale (the same sums of |terms|)
-- for the tolerance.
local function reference(cfg, N, sp, x, w, b, gy)
  local g = geom(cfg, sp)
  local ny = N * cfg.cout * g.o[1] * g.o[2] * g.o[3]
  local y, ys, gx, gxs = zeros(ny), zeros(ny), zeros(#x), zeros(#x)
  local gw, gws, gb, gbs = zeros(#w), zeros(#w), zeros(cfg.cout), zeros(cfg.cout)
  each_term(cfg, N, g, function(_, _, xi, yi, wi)
    y[yi] = y[yi] + x[xi] * w[wi]
    ys[yi] = ys[yi] + math.abs(x[xi] * w[wi])
    gx[xi] = gx[xi] + gy[yi] * w[wi]
    gxs[xi] = gxs[xi] + math.abs(gy[yi] * w[wi])
    gw[wi] = gw[wi] + gy[yi] * x[xi]
    gws[wi] = gws[wi] + math.abs(gy[yi] * x[xi])
  end)
  local per = ny // (N * cfg.cout)
  for i = 1, ny do
    local co = ((i - 1) // per) % cfg.cout + 1
    y[i] = y[i] + b[co]
    ys[i] = ys[i] + math.abs(b[co])
    gb[co] = gb[co] + gy[i]
    gbs[co] = gbs[co] + math.abs(gy[i])
  end
  return { y = y, ys = ys, gx = gx, gxs = gxs, gw = gw, gws = gws, gb = gb, gbs = gbs, g = g }
end

-- |got - want| <= 2^-17 * scale + 1e-6 (float32 sums of up to a few hundred terms)
local function close(got, want, scale, what)
  assert.equal(#want, #got, what .. ": element count")
  for i = 1, #want do
    local tol = 2 ^ -17 * scale[i] + 1e-6
    local d = math.abs(got[i] - want[i])
    if d > tol or d ~= d then
      error(string.format("%s[%d] = %.9g, reference %.9g (tolerance %.3g)", what, i, got[i], want[i], tol), 2)
    end
  end
end

local function wshape(cfg)
  local k = cfg.k or (cfg.transposed and 2 or 3)
  local s = cfg.transposed and { cfg.cin, cfg.cout } or { cfg.cout, cfg.cin }
  for _ = 1, cfg.dims do s[#s + 1] = k end
  return s
end

local function xshape(cfg, N, sp)
  local s = { N, cfg.cin }
  for _, v in ipairs(sp) do s[#s + 1] = v end
  return s
end

-- Runs the three passes; gw and gb start from the given tensors (accumulate).
local function run(plan, x, w, b, gy, gw, gb)
  local y = T.zeros(core.conv_out_shape(plan, x))
  core.conv_forward(plan, x, w, b, y)
  local gx = T.full(x:shape(), 7) -- overwritten
  core.conv_backward_data(plan, gy, w, gx)
  core.conv_backward_weights(plan, x, gy, gw, gb)
  return y, gx
end

local function label(cfg, N, sp)
  return string.format("dims=%d cin=%d cout=%d k=%s stride=%s%s N=%d spatial {%s}", cfg.dims, cfg.cin,
    cfg.cout, tostring(cfg.k), tostring(cfg.stride), cfg.transposed and " transposed" or "", N,
    table.concat(sp, ","))
end

describe("conv", function()
  setup(function() segloss.seed(40) end)

  describe("against a naive reference in doubles", function()
    local cases = {}
    for _, dims in ipairs { 2, 3 } do
      local sp = dims == 2 and { 7, 5 } or { 5, 3, 4 }
      for _, k in ipairs { 1, 3 } do
        for _, s in ipairs { 1, 2 } do
          cases[#cases + 1] = { cfg = { dims = dims, cin = 3, cout = 5, k = k, stride = s }, N = 2, sp = sp }
        end
      end
      cases[#cases + 1] = { cfg = { dims = dims, cin = 3, cout = 5, transposed = true }, N = 2, sp = sp }
      -- channel counts that straddle oneDNN's blocks of 8 and 16
      local sp2 = dims == 2 and { 6, 9 } or { 3, 4, 3 }
      cases[#cases + 1] = { cfg = { dims = dims, cin = 9, cout = 17, k = 3, stride = 2 }, N = 3, sp = sp2 }
      cases[#cases + 1] = { cfg = { dims = dims, cin = 17, cout = 9, transposed = true }, N = 3, sp = sp2 }
      cases[#cases + 1] = { cfg = { dims = dims, cin = 1, cout = 8, k = 3, stride = 1 }, N = 1, sp = sp2 }
      cases[#cases + 1] = { cfg = { dims = dims, cin = 16, cout = 1, k = 1, stride = 1 }, N = 2, sp = sp2 }
      -- batches below 4 cut forward into slabs of output rows
      local sp3 = dims == 2 and { 19, 6 } or { 13, 3, 4 }
      for _, k in ipairs { 1, 3 } do
        for _, s in ipairs { 1, 2 } do
          cases[#cases + 1] = { cfg = { dims = dims, cin = 3, cout = 5, k = k, stride = s }, N = 1, sp = sp3 }
        end
      end
      cases[#cases + 1] = { cfg = { dims = dims, cin = 3, cout = 5, transposed = true }, N = 1, sp = sp3 }
    end
    for _, c in ipairs(cases) do
      it(label(c.cfg, c.N, c.sp), function()
        local plan = core.conv_plan(c.cfg)
        local x = T.randn(xshape(c.cfg, c.N, c.sp))
        local w = T.randn(wshape(c.cfg))
        local b = T.randn { c.cfg.cout }
        local ys = core.conv_out_shape(plan, x)
        local gy = T.randn(ys)
        local gw0, gb0 = T.randn(wshape(c.cfg)), T.randn { c.cfg.cout }
        local gw, gb = gw0:clone(), gb0:clone()
        local y, gx = run(plan, x, w, b, gy, gw, gb)
        local r = reference(c.cfg, c.N, c.sp, flat(x), flat(w), flat(b), flat(gy))
        -- the output shape is PyTorch's
        local want = { c.N, c.cfg.cout }
        for a = (c.cfg.dims == 2 and 2 or 1), 3 do want[#want + 1] = r.g.o[a] end
        assert.same(want, ys)
        close(flat(y), r.y, r.ys, "output")
        close(flat(gx), r.gx, r.gxs, "input gradient")
        -- gw = gw0 + dL/dw: the gradient accumulates
        local g0, gwr, gws = flat(gw0), {}, {}
        for i, v in ipairs(r.gw) do
          gwr[i] = g0[i] + v
          gws[i] = r.gws[i] + math.abs(g0[i])
        end
        close(flat(gw), gwr, gws, "weight gradient")
        local b0, gbr, gbs = flat(gb0), {}, {}
        for i, v in ipairs(r.gb) do
          gbr[i] = b0[i] + v
          gbs[i] = r.gbs[i] + math.abs(b0[i])
        end
        close(flat(gb), gbr, gbs, "bias gradient")
        -- without a bias: y - b
        local y2 = T.zeros(ys)
        core.conv_forward(plan, x, w, nil, y2)
        local nob, yf = {}, flat(y2)
        local per = #r.y // (c.N * c.cfg.cout)
        local bf = flat(b)
        for i = 1, #r.y do nob[i] = r.y[i] - bf[((i - 1) // per) % c.cfg.cout + 1] end
        close(yf, nob, r.ys, "output without bias")
      end)
    end
  end)

  it("a plan follows a change of input shape and back", function()
    local cfg = { dims = 2, cin = 4, cout = 6, k = 3, stride = 2 }
    local plan = core.conv_plan(cfg)
    local w, b = T.randn(wshape(cfg)), T.randn { 6 }
    for _, sp in ipairs { { 8, 8 }, { 5, 11 }, { 8, 8 } } do
      for _, N in ipairs { 1, 3 } do
        local x = T.randn(xshape(cfg, N, sp))
        local y = T.zeros(core.conv_out_shape(plan, x))
        core.conv_forward(plan, x, w, b, y)
        local r = reference(cfg, N, sp, flat(x), flat(w), flat(b), zeros(y:numel()))
        close(flat(y), r.y, r.ys, "output " .. label(cfg, N, sp))
      end
    end
  end)

  it("the gradients agree with central differences of sum(y * r)", function()
    for _, cfg in ipairs {
      { dims = 2, cin = 3, cout = 4, k = 3, stride = 2 },
      { dims = 3, cin = 2, cout = 3, transposed = true },
    } do
      local sp = cfg.dims == 2 and { 5, 6 } or { 2, 3, 2 }
      local plan = core.conv_plan(cfg)
      local x, w, b = T.randn(xshape(cfg, 2, sp)), T.randn(wshape(cfg)), T.randn { cfg.cout }
      local r = T.randn(core.conv_out_shape(plan, x))
      local rf = flat(r)
      local function L()
        local y = T.zeros(r:shape())
        core.conv_forward(plan, x, w, b, y)
        local s = 0.0
        for i, v in ipairs(flat(y)) do s = s + v * rf[i] end
        return s
      end
      local gx = T.zeros(x:shape())
      core.conv_backward_data(plan, r, w, gx)
      local gw, gb = T.zeros(w:shape()), T.zeros { cfg.cout }
      core.conv_backward_weights(plan, x, r, gw, gb)
      -- L is linear in x, w and b: a step of 2^-4 has no truncation error
      local h = 2 ^ -4
      for _, t in ipairs { { x, gx }, { w, gw }, { b, gb } } do
        local v, g = t[1]:reshape(t[1]:numel()), flat(t[2])
        local num, den = 0.0, 0.0
        for i = 1, v:numel(), math.max(1, v:numel() // 7) do
          local v0 = v:get(i)
          v:set(i, v0 + h)
          local lp = L()
          v:set(i, v0 - h)
          local lm = L()
          v:set(i, v0)
          local fd = (lp - lm) / (2 * h)
          num = num + (fd - g[i]) ^ 2
          den = den + (fd + g[i]) ^ 2
        end
        assert.is_true(math.sqrt(num) <= 1e-4 * math.sqrt(den), label(cfg, 2, sp))
      end
    end
  end)

  it("gives the same bits for 1, 2 and 3 threads, and 2 threads really ran", function()
    for _, c in ipairs {
      { cfg = { dims = 2, cin = 5, cout = 7, k = 3, stride = 1 }, N = 5, sp = { 17, 19 } },
      { cfg = { dims = 2, cin = 12, cout = 9, k = 1, stride = 1 }, N = 3, sp = { 9, 9 } },
      { cfg = { dims = 3, cin = 3, cout = 10, k = 3, stride = 2 }, N = 4, sp = { 7, 6, 5 } },
      { cfg = { dims = 3, cin = 10, cout = 3, transposed = true }, N = 3, sp = { 3, 4, 3 } },
      -- one sample: forward in slabs on every thread, the backward passes on one
      { cfg = { dims = 2, cin = 4, cout = 6, k = 3, stride = 2 }, N = 1, sp = { 33, 20 } },
      { cfg = { dims = 3, cin = 4, cout = 6, k = 3, stride = 1 }, N = 2, sp = { 16, 5, 6 } },
    } do
      local x, w, b = T.randn(xshape(c.cfg, c.N, c.sp)), T.randn(wshape(c.cfg)), T.randn { c.cfg.cout }
      local gy
      local function go(n)
        return H.with_threads(n, function()
          local plan = core.conv_plan(c.cfg)
          gy = gy or T.randn(core.conv_out_shape(plan, x))
          local gw, gb = T.zeros(w:shape()), T.zeros { c.cfg.cout }
          local y = T.zeros(core.conv_out_shape(plan, x))
          core.conv_forward(plan, x, w, b, y)
          local used = { core.threads_used() }
          local gx = T.zeros(x:shape())
          core.conv_backward_data(plan, gy, w, gx)
          used[2] = core.threads_used()
          core.conv_backward_weights(plan, x, gy, gw, gb)
          used[3] = core.threads_used()
          return { flat(y), flat(gx), flat(gw), flat(gb) }, used
        end)
      end
      -- these shapes are below the work threshold: lift it to test the teams
      local prev = core.conv_min_flops(0)
      local ok, err = pcall(function()
      local r1, u1 = go(1)
      assert.same({ 1, 1, 1 }, u1)
      for _, n in ipairs { 2, 3 } do
        local rn, un = go(n)
        local what = label(c.cfg, c.N, c.sp) .. ", " .. n .. " threads"
        for i, name in ipairs { "output", "input gradient", "weight gradient", "bias gradient" } do
          assert.same(r1[i], rn[i], what .. ": " .. name)
        end
        -- the backward passes use at most one thread per sample
        local nb = math.min(n, c.N)
        assert.same({ n, nb, nb }, un, what .. ": threads_used")
      end
      end)
      core.conv_min_flops(prev)
      if not ok then error(err, 0) end
    end
  end)

  it("runs small work on one thread with the same bits, large work on the team", function()
    local function case(cfg, N, sp)
      local plan = core.conv_plan(cfg)
      local x, w = T.randn(xshape(cfg, N, sp)), T.randn(wshape(cfg))
      local gy = T.randn(core.conv_out_shape(plan, x))
      return function()
        local y, gx, gw = T.zeros(core.conv_out_shape(plan, x)), T.zeros(x:shape()), T.zeros(w:shape())
        core.conv_forward(plan, x, w, nil, y)
        local used = { core.threads_used() }
        core.conv_backward_data(plan, gy, w, gx)
        used[2] = core.threads_used()
        core.conv_backward_weights(plan, x, gy, gw, nil)
        used[3] = core.threads_used()
        return { flat(y), flat(gx), flat(gw) }, used
      end
    end
    -- (2,4,8,8), 4 -> 4: 2 * 2*4*4*9*64 = 74 kflop, far below the threshold
    local small = case({ dims = 2, cin = 4, cout = 4, k = 3, stride = 1 }, 2, { 8, 8 })
    local r1 = H.with_threads(1, small)
    local r2, u2 = H.with_threads(2, small)
    assert.same({ 1, 1, 1 }, u2)
    assert.same(r1, r2)
    -- (4,32,32,32), 32 -> 32: 2 * 4*32*32*9*1024 = 75 Mflop, above it
    local big = case({ dims = 2, cin = 32, cout = 32, k = 3, stride = 1 }, 4, { 32, 32 })
    local _, ub = H.with_threads(2, big)
    assert.same({ 2, 2, 2 }, ub)
  end)

  it("shares one workspace between plans: the largest need, and the same bits interleaved", function()
    local cases = {
      { cfg = { dims = 2, cin = 5, cout = 16, k = 3, stride = 1 }, N = 2, sp = { 24, 20 } },
      { cfg = { dims = 3, cin = 16, cout = 8, k = 3, stride = 2 }, N = 3, sp = { 6, 8, 7 } },
      { cfg = { dims = 3, cin = 8, cout = 4, transposed = true }, N = 2, sp = { 3, 4, 5 } },
    }
    H.with_threads(2, function()
      local prev = core.conv_min_flops(0)
      local ok, err = pcall(function()
        local data = {}
        for i, c in ipairs(cases) do
          c.plan = core.conv_plan(c.cfg)
          local x = T.randn(xshape(c.cfg, c.N, c.sp))
          data[i] = { x = x, w = T.randn(wshape(c.cfg)), b = T.randn { c.cfg.cout },
                      gy = T.randn(core.conv_out_shape(c.plan, x)) }
        end
        local function pass(i)
          local c, d = cases[i], data[i]
          local y, gx = T.zeros(core.conv_out_shape(c.plan, d.x)), T.zeros(d.x:shape())
          local gw, gb = T.zeros(d.w:shape()), T.zeros { c.cfg.cout }
          core.conv_forward(c.plan, d.x, d.w, d.b, y)
          core.conv_backward_data(c.plan, d.gy, d.w, gx)
          core.conv_backward_weights(c.plan, d.x, d.gy, gw, gb)
          return { flat(y), flat(gx), flat(gw), flat(gb) }
        end
        -- alone, each from an empty workspace: its need
        local alone, need, most = {}, {}, 0
        for i = 1, #cases do
          core.conv_workspace(true)
          alone[i] = pass(i)
          need[i] = core.conv_workspace()
          assert.is_true(need[i] > 0)
          most = math.max(most, need[i])
        end
        -- interleaved, in another order, twice: the same bits, and the
        -- workspace is the largest need, not the sum
        core.conv_workspace(true)
        for _ = 1, 2 do
          for _, i in ipairs { 3, 1, 2 } do
            assert.same(alone[i], pass(i), "case " .. i)
          end
        end
        assert.equal(most, core.conv_workspace())
        -- stable shapes: the workspace does not move
        assert.equal(most, core.conv_workspace())
      end)
      core.conv_min_flops(prev)
      if not ok then error(err, 0) end
    end)
  end)

  it("a set_threads change between calls of one plan keeps the bits", function()
    local cfg = { dims = 2, cin = 6, cout = 6, k = 3, stride = 1 }
    local plan = core.conv_plan(cfg)
    local x, w = T.randn(xshape(cfg, 4, { 12, 12 })), T.randn(wshape(cfg))
    local outs = {}
    for i, n in ipairs { 2, 1, 2 } do
      H.with_threads(n, function()
        local gw = T.zeros(w:shape())
        core.conv_backward_weights(plan, x, x:clone():narrow(2, 1, 6), gw, nil)
        outs[i] = flat(gw)
      end)
    end
    assert.same(outs[1], outs[2])
    assert.same(outs[1], outs[3])
  end)

  it("accumulates repeated weight gradients (+=)", function()
    local cfg = { dims = 2, cin = 2, cout = 3, k = 3, stride = 1 }
    local plan = core.conv_plan(cfg)
    local x = T.randn(xshape(cfg, 2, { 4, 4 }))
    local gy = T.randn(core.conv_out_shape(plan, x))
    local gw1, gb1 = T.zeros(wshape(cfg)), T.zeros { 3 }
    core.conv_backward_weights(plan, x, gy, gw1, gb1)
    local gw2, gb2 = T.zeros(wshape(cfg)), T.zeros { 3 }
    core.conv_backward_weights(plan, x, gy, gw2, gb2)
    core.conv_backward_weights(plan, x, gy, gw2, gb2)
    -- doubling is exact in float32
    assert.same(flat(gw1 * 2), flat(gw2))
    assert.same(flat(gb1 * 2), flat(gb2))
    -- nil bias gradient: the weight gradient alone
    local gw3 = T.zeros(wshape(cfg))
    core.conv_backward_weights(plan, x, gy, gw3, nil)
    assert.same(flat(gw1), flat(gw3))
  end)

  it("closes its plan with <close> and refuses it afterwards", function()
    local p
    do
      local q <close> = core.conv_plan { dims = 2, cin = 1, cout = 1, k = 1 }
      p = q
    end
    assert.equal("segloss.ConvPlan (closed)", tostring(p))
    H.errors("segloss.core.conv_out_shape: plan is closed", nil, core.conv_out_shape, p, T.zeros { 1, 1, 2, 2 })
    collectgarbage() -- __gc after __close frees nothing twice
  end)

  describe("errors", function()
    local P = "segloss.core.conv_plan: "
    it("conv_plan", function()
      H.errors(P .. "options must be a table", { "got 3" }, core.conv_plan, 3)
      H.errors(P .. "unknown option \"kernel\"", nil, core.conv_plan, { dims = 2, cin = 1, cout = 1, kernel = 3 })
      H.errors(P .. "option dims is required", nil, core.conv_plan, { cin = 1, cout = 1 })
      H.errors(P .. "option dims must be an integer in 2..3, got 4", nil, core.conv_plan,
        { dims = 4, cin = 1, cout = 1 })
      H.errors(P .. "option cin must be an integer in 1..65536", { "got 0" }, core.conv_plan,
        { dims = 2, cin = 0, cout = 1 })
      H.errors(P .. "option cout must be an integer", { "got string \"4\"" }, core.conv_plan,
        { dims = 2, cin = 1, cout = "4" })
      H.errors(P .. "option k must be an integer in 1..3, got 5", nil, core.conv_plan,
        { dims = 2, cin = 1, cout = 1, k = 5 })
      H.errors(P .. "k must be 1 or 3, got k=2, stride=1", nil, core.conv_plan, { dims = 2, cin = 1, cout = 1, k = 2 })
      H.errors(P .. "option stride must be an integer in 1..2", nil, core.conv_plan,
        { dims = 2, cin = 1, cout = 1, stride = 3 })
      H.errors(P .. "option transposed must be a boolean, got string \"yes\"", nil, core.conv_plan,
        { dims = 2, cin = 1, cout = 1, transposed = "yes" })
      H.errors(P .. "a transposed convolution has kernel 2 and stride 2, got k=3, stride=2", nil, core.conv_plan,
        { dims = 3, cin = 1, cout = 1, transposed = true, k = 3 })
    end)

    local cfg = { dims = 2, cin = 3, cout = 8, k = 3, stride = 2 }
    local function fresh()
      local plan = core.conv_plan(cfg)
      local x = T.randn { 2, 3, 9, 7 }
      return plan, x, T.randn { 8, 3, 3, 3 }, T.randn { 8 }, T.zeros { 2, 8, 5, 4 }
    end

    it("conv_forward", function()
      local F = "segloss.core.conv_forward: "
      local plan, x, w, b, y = fresh()
      H.errors(F .. "expected 5 arguments, got 4", nil, core.conv_forward, plan, x, w, b)
      H.errors(F .. "plan must be a segloss.ConvPlan (from segloss.core.conv_plan), got a segloss.Tensor {2,3,9,7}",
        nil, core.conv_forward, x, x, w, b, y)
      H.errors(F .. "input must be a segloss.Tensor, got a table", nil, core.conv_forward, plan, {}, w, b, y)
      H.errors(F .. "input has shape {2,3,9}, the plan needs 4 dimensions (N, 3, H, W)", nil,
        core.conv_forward, plan, T.zeros { 2, 3, 9 }, w, b, y)
      H.errors(F .. "input has shape {2,4,9,7}, the plan needs 4 dimensions (N, 3, H, W)", nil,
        core.conv_forward, plan, T.zeros { 2, 4, 9, 7 }, w, b, y)
      H.errors(F .. "weight has shape {8,2,3,3}, the plan needs {8,3,3,3}", nil,
        core.conv_forward, plan, x, T.zeros { 8, 2, 3, 3 }, b, y)
      H.errors(F .. "weight must be a segloss.Tensor, got nil", nil, core.conv_forward, plan, x, nil, b, y)
      H.errors(F .. "bias has shape {3}, the plan needs {8}", nil, core.conv_forward, plan, x, w, T.zeros { 3 }, y)
      H.errors(F .. "bias (or nil) must be a segloss.Tensor, got 1", nil, core.conv_forward, plan, x, w, 1, y)
      H.errors(F .. "output has shape {2,8,9,7}, the plan needs {2,8,5,4}", nil,
        core.conv_forward, plan, x, w, b, T.zeros { 2, 8, 9, 7 })
      local big = T.zeros { 400 }
      H.errors(F .. "output shares memory with input", nil, core.conv_forward, plan,
        big:narrow(1, 1, 2 * 3 * 9 * 7):reshape(2, 3, 9, 7), w, b, big:narrow(1, 11, 320):reshape(2, 8, 5, 4))
      H.errors(F .. "output shares memory with weight", nil, core.conv_forward, plan, x,
        big:narrow(1, 1, 216):reshape(8, 3, 3, 3), b, big:narrow(1, 1, 320):reshape(2, 8, 5, 4))
      local t = core.conv_plan { dims = 3, cin = 3, cout = 8, transposed = true }
      H.errors(F .. "weight has shape {8,3,2,2,2}, the plan needs {3,8,2,2,2}", nil, core.conv_forward, t,
        T.zeros { 1, 3, 2, 2, 2 }, T.zeros { 8, 3, 2, 2, 2 }, nil, T.zeros { 1, 8, 4, 4, 4 })
      H.errors(F .. "input has shape {1,3,2,2}, the plan needs 5 dimensions (N, 3, D, H, W)", nil,
        core.conv_forward, t, T.zeros { 1, 3, 2, 2 }, T.zeros { 3, 8, 2, 2, 2 }, nil, T.zeros { 1, 8, 4, 4, 4 })
    end)

    it("conv_backward_data", function()
      local F = "segloss.core.conv_backward_data: "
      local plan, x, w, _, y = fresh()
      H.errors(F .. "expected 4 arguments, got 3", nil, core.conv_backward_data, plan, y, w)
      H.errors(F .. "plan must be a segloss.ConvPlan", nil, core.conv_backward_data, "p", y, w, x)
      H.errors(F .. "output gradient has shape {2,8,5,5}, the plan needs {2,8,5,4}", nil,
        core.conv_backward_data, plan, T.zeros { 2, 8, 5, 5 }, w, x)
      H.errors(F .. "input gradient has shape {2,8,9,7}, the plan needs 4 dimensions (N, 3, H, W)", nil,
        core.conv_backward_data, plan, y, w, T.zeros { 2, 8, 9, 7 })
      H.errors(F .. "weight has shape {3,8,3,3}, the plan needs {8,3,3,3}", nil,
        core.conv_backward_data, plan, y, T.zeros { 3, 8, 3, 3 }, x)
      local big = T.zeros { 700 }
      H.errors(F .. "input gradient shares memory with output gradient", nil, core.conv_backward_data, plan,
        big:narrow(1, 1, 320):reshape(2, 8, 5, 4), w, big:narrow(1, 301, 378):reshape(2, 3, 9, 7))
    end)

    it("conv_backward_weights", function()
      local F = "segloss.core.conv_backward_weights: "
      local plan, x, w, b, y = fresh()
      H.errors(F .. "expected 5 arguments, got 4", nil, core.conv_backward_weights, plan, x, y, w)
      H.errors(F .. "output gradient has shape {2,8,5}, the plan needs {2,8,5,4}", nil,
        core.conv_backward_weights, plan, x, T.zeros { 2, 8, 5 }, w, b)
      H.errors(F .. "input has shape {2,3,9,7,1}, the plan needs 4 dimensions", nil,
        core.conv_backward_weights, plan, T.zeros { 2, 3, 9, 7, 1 }, y, w, b)
      H.errors(F .. "weight gradient has shape {8,3,1,1}, the plan needs {8,3,3,3}", nil,
        core.conv_backward_weights, plan, x, y, T.zeros { 8, 3, 1, 1 }, b)
      H.errors(F .. "bias gradient has shape {8,1}, the plan needs {8}", nil,
        core.conv_backward_weights, plan, x, y, w, T.zeros { 8, 1 })
      H.errors(F .. "bias gradient (or nil) must be a segloss.Tensor, got boolean", nil,
        core.conv_backward_weights, plan, x, y, w, false)
      H.errors(F .. "weight gradient shares memory with bias gradient", nil,
        core.conv_backward_weights, plan, x, y, w, w:reshape(216):narrow(1, 1, 8))
      -- nothing written on error
      local gw = T.ones { 8, 3, 3, 3 }
      pcall(core.conv_backward_weights, plan, x, y, gw, T.zeros { 7 })
      assert.same(flat(T.ones { 8, 3, 3, 3 }), flat(gw))
    end)

    it("conv_out_shape", function()
      local F = "segloss.core.conv_out_shape: "
      local plan = fresh()
      H.errors(F .. "expected 2 arguments, got 1", nil, core.conv_out_shape, plan)
      H.errors(F .. "input must be a segloss.Tensor, got nil", nil, core.conv_out_shape, plan, nil)
      H.errors(F .. "input has shape {9,7}, the plan needs 4 dimensions (N, 3, H, W)", nil,
        core.conv_out_shape, plan, T.zeros { 9, 7 })
      -- the smallest inputs are valid: "same" padding keeps every output >= 1
      assert.same({ 1, 8, 1, 1 }, core.conv_out_shape(plan, T.zeros { 1, 3, 1, 1 }))
      local t = core.conv_plan { dims = 3, cin = 3, cout = 2, transposed = true }
      assert.same({ 1, 2, 2, 4, 6 }, core.conv_out_shape(t, T.zeros { 1, 3, 1, 2, 3 }))
    end)
  end)
end)
