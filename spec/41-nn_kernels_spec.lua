-- The network's non-convolution kernels (segloss.core.nn_*, optim_*):
-- (1) against naive Lua references in double (or in emulated float32 where
-- the kernel's float arithmetic is the contract), (2) every SIMD backend
-- against the scalar reference, (3) the same bits for 1 and 2 threads,
-- (4) every error, (5) finite differences / adjoint identities.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local core = segloss.core

-- float32 rounding of a double: exact emulation of one float operation
local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end

local function vals(t) return t:reshape(t:numel()):totable() end
local function from(a, shape) return T.from(a, shape) end

local function copy(shape) local s = {} for i, v in ipairs(shape) do s[i] = v end return s end

-- N, C, D, H, W of an activation shape (D = 1 in 4-D)
local function dims(shape)
  if #shape == 4 then return shape[1], shape[2], 1, shape[3], shape[4] end
  return shape[1], shape[2], shape[3], shape[4], shape[5]
end
local function at(D, Hh, W, C, n, c, z, y, x) return 1 + ((((n * C + c) * D + z) * Hh + y) * W + x) end

-- same bits (any NaN equals any NaN)
local function same_bits(a, b)
  local va, vb = vals(a), vals(b)
  if #va ~= #vb then return false, "sizes differ" end
  for i = 1, #va do
    local x, y = va[i], vb[i]
    -- equal numbers are the same float but for the sign of zero
    local same = (x == y and (x ~= 0 or 1 / x == 1 / y)) or (x ~= x and y ~= y)
    if not same then
      return false, string.format("element %d: %.9g vs %.9g", i, x, y)
    end
  end
  return true
end
local function assert_bits(a, b, what)
  local ok, msg = same_bits(a, b)
  assert(ok, (what or "") .. ": " .. (msg or ""))
end

-- the largest difference in ulps and the largest absolute difference
local function max_ulps(a, b)
  local va, vb, u = vals(a), vals(b), 0
  for i = 1, #va do u = math.max(u, H.ulps(va[i], vb[i])) end
  return u
end
-- max |a - b| against an array of doubles, relative to 1 + |ref|
local function max_err(t, ref)
  local v, e = vals(t), 0
  assert(#v == #ref, "sizes " .. #v .. " and " .. #ref)
  for i = 1, #v do
    local d = math.abs(v[i] - ref[i]) / (1 + math.abs(ref[i]))
    if d ~= d then d = math.huge end
    e = math.max(e, d)
  end
  return e
end

local function randn(shape, scale) return T.randn(shape) * (scale or 1) end

-- values with many ties, both zeros, and (optionally) NaNs: the first-max rule
local function tied(shape, nans)
  local t = T.randn(shape)
  local f = t:reshape(t:numel())
  for i = 1, f:numel() do
    local v = math.floor(f:get(i) * 1.5) / 2
    if v == 0 and i % 2 == 0 then v = -0.0 end
    if nans and i % 37 == 5 then v = 0 / 0 end
    f:set(i, v)
  end
  return t
end

local shapes = { { 2, 3, 5, 7 }, { 1, 5, 6, 9 }, { 3, 2, 4, 4 }, { 2, 3, 3, 5, 4 }, { 1, 2, 4, 6, 5 } }
-- large enough for 2 threads (more than 2 x 65536 elements) and for several blocks
local big4, big5 = { 2, 8, 96, 97 }, { 1, 4, 26, 40, 41 }

local function with_threads(n, fn) return H.with_threads(n, fn) end

---------------------------------------------------------------------------
-- references

local function ref_act(x, slope)
  local s, out = f32(slope), {}
  for i, v in ipairs(vals(x)) do out[i] = v > 0 and v or f32(s * v) end
  return out
end
local function ref_act_bwd(x, gy, slope)
  local s, xv, out = f32(slope), vals(x), {}
  for i, g in ipairs(vals(gy)) do out[i] = xv[i] > 0 and g or f32(s * g) end
  return out
end

-- max pooling: y and the 1-based flat index of each window's first maximum
local function ref_pool(x, k)
  local sh = x:shape()
  local N, C, D, Hh, W = dims(sh)
  local kd = #sh == 5 and k or 1
  local Do, Ho, Wo = D // kd, Hh // k, W // k
  local xv, y, arg = vals(x), {}, {}
  for n = 0, N - 1 do for c = 0, C - 1 do for oz = 0, Do - 1 do for oy = 0, Ho - 1 do for ox = 0, Wo - 1 do
    local best, m
    for dz = 0, kd - 1 do for dy = 0, k - 1 do for dx = 0, k - 1 do
      local i = at(D, Hh, W, C, n, c, oz * kd + dz, oy * k + dy, ox * k + dx)
      local v = xv[i]
      if not best or v > m or v ~= v then best, m = i, v end
    end end end
    y[#y + 1], arg[#arg + 1] = m, best
  end end end end end
  local ys = copy(sh)
  for d = 3, #sh do ys[d] = sh[d] // ((d == 3 and #sh == 5) and kd or k) end
  return y, arg, ys
end

-- linear (align_corners=False) or nearest weights of one axis: per output
-- a list of {input index (0-based), weight}
local function axis_weights(n, s, mode)
  local w = {}
  for o = 0, n * s - 1 do
    if mode == "nearest" then
      w[o] = { { o // s, 1 } }
    else
      local src = (o + 0.5) / s - 0.5
      if src < 0 then src = 0 end
      local i0 = math.floor(src)
      local i1 = math.min(i0 + 1, n - 1)
      local l1 = src - i0
      w[o] = { { i0, 1 - l1 }, { i1, l1 } }
    end
  end
  return w
end

-- upsampling as a list of (output, input, weight) triples, 1-based flat
local function up_terms(sh, mode, s)
  local N, C, D, Hh, W = dims(sh)
  local sd = #sh == 5 and s or 1
  local wz, wy, wx = axis_weights(D, sd, mode), axis_weights(Hh, s, mode), axis_weights(W, s, mode)
  local Do, Ho, Wo = D * sd, Hh * s, W * s
  local terms = {}
  for n = 0, N - 1 do for c = 0, C - 1 do for oz = 0, Do - 1 do for oy = 0, Ho - 1 do for ox = 0, Wo - 1 do
    local o = at(Do, Ho, Wo, C, n, c, oz, oy, ox)
    for _, a in ipairs(wz[oz]) do for _, b in ipairs(wy[oy]) do for _, e in ipairs(wx[ox]) do
      terms[#terms + 1] = { o, at(D, Hh, W, C, n, c, a[1], b[1], e[1]), a[2] * b[2] * e[2] }
    end end end
  end end end end end
  local ys = copy(sh)
  for d = 3, #sh do ys[d] = sh[d] * ((d == 3 and #sh == 5) and sd or s) end
  return terms, ys
end
local function ref_up(x, mode, s)
  local terms, ys = up_terms(x:shape(), mode, s)
  local xv, y = vals(x), {}
  for i = 1, #terms do y[i] = 0 end
  for _, t in ipairs(terms) do y[t[1]] = (y[t[1]] or 0) + t[3] * xv[t[2]] end
  local n = 1
  for _, d in ipairs(ys) do n = n * d end
  for i = n + 1, #y do y[i] = nil end
  return y, ys
end
local function ref_up_bwd(gy, xshape, mode, s)
  local terms = up_terms(xshape, mode, s)
  local gv, gx = vals(gy), {}
  local n = 1
  for _, d in ipairs(xshape) do n = n * d end
  for i = 1, n do gx[i] = 0 end
  for _, t in ipairs(terms) do gx[t[2]] = gx[t[2]] + t[3] * gv[t[1]] end
  return gx
end

-- normalisation in double: y, mean, invstd, and the backward
local function groups(sh, mode)
  local N, C = sh[1], sh[2]
  local M = 1
  for d = 3, #sh do M = M * sh[d] end
  local gs = {}
  if mode == "instance" then
    for n = 0, N - 1 do for c = 0, C - 1 do
      local g = { c = c }
      for i = 1, M do g[i] = (n * C + c) * M + i end
      gs[#gs + 1] = g
    end end
  else
    for c = 0, C - 1 do
      local g = { c = c }
      for n = 0, N - 1 do for i = 1, M do g[#g + 1] = (n * C + c) * M + i end end
      gs[#gs + 1] = g
    end
  end
  return gs
end
local function ref_norm(x, mode, eps, w, b)
  local xv, y, means, invs, vars = vals(x), {}, {}, {}, {}
  local wv, bv = w and vals(w), b and vals(b)
  for gi, g in ipairs(groups(x:shape(), mode)) do
    local s = 0
    for _, i in ipairs(g) do s = s + xv[i] end
    local mean = s / #g
    local q = 0
    for _, i in ipairs(g) do q = q + (xv[i] - mean) ^ 2 end
    local var = q / #g
    local inv = 1 / math.sqrt(var + eps)
    means[gi], invs[gi], vars[gi] = mean, inv, q / (#g - 1)
    for _, i in ipairs(g) do
      y[i] = (xv[i] - mean) * inv * (wv and wv[g.c + 1] or 1) + (bv and bv[g.c + 1] or 0)
    end
  end
  return y, means, invs, vars
end
local function ref_norm_bwd(x, gy, mode, w, means, invs)
  local xv, gv, gx, gw, gb = vals(x), vals(gy), {}, {}, {}
  local wv = w and vals(w)
  for gi, g in ipairs(groups(x:shape(), mode)) do
    local mean, inv, c = means[gi], invs[gi], g.c + 1
    local sg, sgx = 0, 0
    for _, i in ipairs(g) do sg = sg + gv[i]; sgx = sgx + gv[i] * (xv[i] - mean) * inv end
    gw[c] = (gw[c] or 0) + sgx
    gb[c] = (gb[c] or 0) + sg
    local ww = wv and wv[c] or 1
    for _, i in ipairs(g) do
      local xh = (xv[i] - mean) * inv
      if mode == "batch_eval" then
        gx[i] = gv[i] * ww * inv
      else
        gx[i] = ww * inv * (gv[i] - sg / #g - xh * sgx / #g)
      end
    end
  end
  return gx, gw, gb
end

-- Upsampling with the kernels' float32 arithmetic emulated exactly: the
-- generic path's expressions (PyTorch's order), which the scale-2 fast
-- path must reproduce bit for bit. Weights as interp.h computes them.
local function lin_at(o, n, s)
  local src, a
  if s == 1 then
    src, a = o, o
  else
    src = f32(f32(f32(1 / s) * f32(o + 0.5)) - 0.5)
    if src < 0 then src = 0 end
    a = math.floor(src)
  end
  local w1 = f32(src - a)
  w1 = w1 < 0 and 0 or w1 > 1 and 1 or w1
  return a, (a + 1 < n) and a + 1 or a, f32(1 - w1), w1
end
-- the adjoint pairs of input i: {o, weight} in increasing o
local adj_memo = {}
local function lin_adj(i, n, s)
  local key = i .. ":" .. n .. ":" .. s
  if adj_memo[key] then return adj_memo[key] end
  local pairs_ = {}
  adj_memo[key] = pairs_
  for o = 0, n * s - 1 do
    local a, b, l0, l1 = lin_at(o, n, s)
    if a == i and b == i then pairs_[#pairs_ + 1] = { o, f32(l0 + l1) }
    elseif a == i then pairs_[#pairs_ + 1] = { o, l0 }
    elseif b == i then pairs_[#pairs_ + 1] = { o, l1 } end
  end
  return pairs_
end
local function up_f32(x, mode, s)
  local sh = x:shape()
  local N, C, D, Hh, W = dims(sh)
  local nd3 = #sh == 5
  local sd = nd3 and s or 1
  local Do, Ho, Wo = D * sd, Hh * s, W * s
  local xv, y = vals(x), {}
  for n = 0, N - 1 do for c = 0, C - 1 do for oz = 0, Do - 1 do for oy = 0, Ho - 1 do for ox = 0, Wo - 1 do
    local v
    if mode == "nearest" then
      v = xv[at(D, Hh, W, C, n, c, oz // sd, oy // s, ox // s)]
    else
      local x0, x1, l0, l1 = lin_at(ox, W, s)
      local y0, y1, m0, m1 = lin_at(oy, Hh, s)
      local function h(z, yy)
        return f32(f32(xv[at(D, Hh, W, C, n, c, z, yy, x0)] * l0) + f32(xv[at(D, Hh, W, C, n, c, z, yy, x1)] * l1))
      end
      local function vert(z) return f32(f32(h(z, y0) * m0) + f32(h(z, y1) * m1)) end
      if nd3 then
        local z0, z1, k0, k1 = lin_at(oz, D, s)
        v = f32(f32(vert(z0) * k0) + f32(vert(z1) * k1))
      else
        v = vert(0)
      end
    end
    y[at(Do, Ho, Wo, C, n, c, oz, oy, ox)] = v
  end end end end end
  local ys = copy(sh)
  for d = 3, #sh do ys[d] = sh[d] * ((d == 3 and nd3) and sd or s) end
  return y, ys
end
local function up_bwd_f32(gy, xshape, mode, s)
  local N, C, D, Hh, W = dims(xshape)
  local nd3 = #xshape == 5
  local sd = nd3 and s or 1
  local Do, Ho, Wo = D * sd, Hh * s, W * s
  local gv, gx = vals(gy), {}
  local function g(n, c, z, yy, xx) return gv[at(Do, Ho, Wo, C, n, c, z, yy, xx)] end
  for n = 0, N - 1 do for c = 0, C - 1 do for iz = 0, D - 1 do for iy = 0, Hh - 1 do for ix = 0, W - 1 do
    local acc = 0
    if mode == "nearest" then
      for dz = 0, sd - 1 do for dy = 0, s - 1 do
        local t = g(n, c, iz * sd + dz, iy * s + dy, ix * s)
        for j = 1, s - 1 do t = f32(t + g(n, c, iz * sd + dz, iy * s + dy, ix * s + j)) end
        acc = f32(acc + t)
      end end
    else
      local px, py = lin_adj(ix, W, s), lin_adj(iy, Hh, s)
      local pz = nd3 and lin_adj(iz, D, s) or { { 0, 1 } }
      for _, zp in ipairs(pz) do
        local ty = 0
        for _, yp in ipairs(py) do
          local t = 0
          for _, xp in ipairs(px) do t = f32(t + f32(xp[2] * g(n, c, zp[1], yp[1], xp[1]))) end
          ty = f32(ty + f32(yp[2] * t))
        end
        acc = nd3 and f32(acc + f32(zp[2] * ty)) or ty
      end
    end
    gx[at(D, Hh, W, C, n, c, iz, iy, ix)] = acc
  end end end end end
  return gx
end

---------------------------------------------------------------------------

describe("nn kernels against Lua references", function()
  setup(function() segloss.seed(4101) end)

  H.backend_it(it, pending, "nn_act and nn_act_backward: exactly x > 0 ? x : slope x (float32)", function()
    for _, sh in ipairs(shapes) do
      for _, slope in ipairs { 0, 0.01, 0.3, 2 } do
        local x, gy = tied(sh, true), randn(sh)
        local y, gx = T.zeros(sh), T.zeros(sh)
        core.nn_act(x, y, slope)
        assert_bits(y, from(ref_act(x, slope), sh), "act")
        core.nn_act_backward(x, gy, gx, slope)
        assert_bits(gx, from(ref_act_bwd(x, gy, slope), sh), "act backward")
        -- in place
        local z = x:clone()
        core.nn_act(z, z, slope)
        assert_bits(z, y, "act in place")
      end
    end
  end)

  H.backend_it(it, pending, "nn_maxpool: window maxima, first maximum wins, NaN propagates", function()
    for _, sh in ipairs(shapes) do
      for _, k in ipairs { 1, 2, 3 } do
        local ok = true
        for d = 3, #sh do ok = ok and sh[d] >= k end
        if ok then
          local x = tied(sh, k ~= 1)
          local ref, arg, ys = ref_pool(x, k)
          local y = T.zeros(ys)
          core.nn_maxpool(x, y, k)
          assert_bits(y, from(ref, ys), "maxpool k=" .. k)
          local gy = randn(ys)
          local gx = T.full(sh, 7)
          core.nn_maxpool_backward(x, gy, gx, k)
          local want, gv = {}, vals(gy)
          for i = 1, x:numel() do want[i] = 0 end
          for j, i in ipairs(arg) do want[i] = gv[j] end
          assert_bits(gx, from(want, sh), "maxpool backward k=" .. k)
        end
      end
    end
  end)

  H.backend_it(it, pending, "nn_upsample nearest and linear, scales 1-3, and the backward", function()
    for _, sh in ipairs(shapes) do
      for _, mode in ipairs { "nearest", "linear" } do
        for _, s in ipairs { 1, 2, 3 } do
          local x = randn(sh)
          local ref, ys = ref_up(x, mode, s)
          local y = T.zeros(ys)
          core.nn_upsample(x, y, mode, s)
          local e = max_err(y, ref)
          assert(e < 2e-6, mode .. " scale " .. s .. ": error " .. e)
          local gy = randn(ys)
          local gx = T.full(sh, 5)
          core.nn_upsample_backward(gy, gx, mode, s)
          e = max_err(gx, ref_up_bwd(gy, sh, mode, s))
          assert(e < 1e-5, mode .. " scale " .. s .. " backward: error " .. e)
        end
      end
    end
  end)

  -- widths 1, 2, 3, 4 (the fast path's edge columns only), widths that are
  -- not whole vectors (8k + 1, 8k - 1, 4k + 3), 1x1 and 1x1x1 inputs;
  -- signed zeros, infinities and NaNs, whose propagation must match too
  H.backend_it(it, pending, "nn_upsample(_backward) scale 2 fast path = the generic float32 expressions", function()
    local edge = { { 1, 1, 1, 1 }, { 1, 2, 1, 2 }, { 2, 1, 3, 1 }, { 1, 1, 2, 3 }, { 1, 2, 4, 4 }, { 1, 1, 3, 9 },
      { 1, 1, 2, 15 }, { 2, 1, 5, 23 }, { 1, 1, 1, 1, 1 }, { 1, 1, 2, 1, 3 }, { 1, 2, 3, 4, 5 }, { 1, 1, 2, 5, 17 },
      { 1, 1, 4, 3, 10 } }
    for _, sh in ipairs(edge) do
      for _, s in ipairs { 2, 1, 3 } do
        for _, mode in ipairs { "linear", "nearest" } do
          for _, special in ipairs { false, true, "zeros" } do
            local x = randn(sh)
            local us = copy(sh)
            for d = 3, #sh do us[d] = sh[d] * s end
            local gy = randn(us)
            if special == "zeros" then
              -- every sum of -0 starts from +0: the result is +0, not -0
              x, gy = T.full(sh, -0.0), T.full(us, -0.0)
            elseif special then
              local f, gf = x:reshape(x:numel()), gy:reshape(gy:numel())
              f:set(1, -0.0)
              if f:numel() >= 3 then f:set(3, 1 / 0) end
              if f:numel() >= 6 then f:set(f:numel() - 1, 0 / 0) end
              gf:set(1, -0.0)
              gf:set(gf:numel(), 1 / 0)
              if gf:numel() >= 8 then gf:set(4, 0 / 0) end
            end
            local what = string.format("%s x%d {%s}%s", mode, s, table.concat(sh, ","),
              special and " " .. tostring(special) or "")
            local ref, ys = up_f32(x, mode, s)
            local y = T.full(ys, 9)
            core.nn_upsample(x, y, mode, s)
            assert_bits(y, from(ref, ys), what)
            local gx = T.full(sh, 9)
            core.nn_upsample_backward(gy, gx, mode, s)
            assert_bits(gx, from(up_bwd_f32(gy, sh, mode, s), sh), what .. " backward")
          end
        end
      end
    end
  end)

  H.backend_it(it, pending, "nn_upsample scale 2 on the U-Net's shapes: the float32 expressions", function()
    for _, sh in ipairs { { 1, 2, 16, 16 }, { 1, 1, 4, 8, 8 } } do
      local x = randn(sh)
      local ref, ys = up_f32(x, "linear", 2)
      local y = T.zeros(ys)
      core.nn_upsample(x, y, "linear", 2)
      assert_bits(y, from(ref, ys), "linear")
      local gy = randn(ys)
      local gx = T.zeros(sh)
      core.nn_upsample_backward(gy, gx, "linear", 2)
      assert_bits(gx, from(up_bwd_f32(gy, sh, "linear", 2), sh), "linear backward")
    end
  end)

  H.backend_it(it, pending, "nn_norm batch / instance / batch_eval and running statistics", function()
    for _, sh in ipairs(shapes) do
      local C = sh[2]
      for _, mode in ipairs { "batch", "instance" } do
        for _, affine in ipairs { false, true } do
          local x = randn(sh, 2) + 3
          local w, b = affine and randn({ C }) or nil, affine and randn({ C }) or nil
          local ns = mode == "instance" and sh[1] * C or C
          local y, sm, si = T.zeros(sh), T.zeros(ns), T.zeros(ns)
          local rm, rv
          if mode == "batch" then rm, rv = randn({ C }), T.rand(C) + 0.5 end
          local rm0, rv0 = rm and vals(rm), rv and vals(rv)
          core.nn_norm(x, y, mode, 1e-5, w, b, sm, si, rm, rv, mode == "batch" and 0.1 or nil)
          local ry, means, invs, uvars = ref_norm(x, mode, 1e-5, w, b)
          assert(max_err(y, ry) < 2e-6, mode .. " y")
          assert(max_err(sm, means) < 1e-6, mode .. " mean")
          assert(max_err(si, invs) < 1e-6, mode .. " invstd")
          if rm then
            local wm, wv = {}, {}
            for c = 1, C do
              wm[c] = 0.9 * rm0[c] + 0.1 * means[c]
              wv[c] = 0.9 * rv0[c] + 0.1 * uvars[c]
            end
            assert(max_err(rm, wm) < 1e-6, "running_mean")
            assert(max_err(rv, wv) < 1e-6, "running_var")
          end
          -- backward; gweight and gbias accumulate onto 1
          local gy = randn(sh)
          local gx, gw, gb = T.zeros(sh), T.ones(C), T.ones(C)
          core.nn_norm_backward(x, gy, gx, mode, w, sm, si, gw, gb)
          local rgx, rgw, rgb = ref_norm_bwd(x, gy, mode, w, vals(sm), vals(si))
          for c = 1, C do rgw[c] = rgw[c] + 1; rgb[c] = rgb[c] + 1 end
          assert(max_err(gx, rgx) < 1e-5, mode .. " gx " .. max_err(gx, rgx))
          assert(max_err(gw, rgw) < 1e-5, mode .. " gweight")
          assert(max_err(gb, rgb) < 1e-5, mode .. " gbias")
        end
      end
      -- batch_eval: the running statistics, written into save_mean / save_invstd
      local x = randn(sh)
      local w, b = randn({ C }), randn({ C })
      local rm, rv = randn({ C }), T.rand(C) + 0.5
      local rm0, rv0 = vals(rm), vals(rv)
      local y, sm, si = T.zeros(sh), T.zeros(C), T.zeros(C)
      core.nn_norm(x, y, "batch_eval", 1e-5, w, b, sm, si, rm, rv)
      local xv, wv, bv, want = vals(x), vals(w), vals(b), {}
      local M = x:numel() // (sh[1] * C)
      for i = 1, #xv do
        local c = ((i - 1) // M) % C + 1
        want[i] = (xv[i] - rm0[c]) / math.sqrt(rv0[c] + 1e-5) * wv[c] + bv[c]
      end
      assert(max_err(y, want) < 2e-6, "batch_eval y")
      assert_bits(rm, from(rm0, { C }), "batch_eval leaves running_mean")
      assert_bits(rv, from(rv0, { C }), "batch_eval leaves running_var")
      local gy = randn(sh)
      local gx, gw = T.zeros(sh), T.zeros(C)
      core.nn_norm_backward(x, gy, gx, "batch_eval", w, sm, si, gw, nil)
      local rgx, rgw = ref_norm_bwd(x, gy, "batch_eval", w, rm0, vals(si))
      assert(max_err(gx, rgx) < 1e-5, "batch_eval gx")
      assert(max_err(gw, rgw) < 1e-5, "batch_eval gweight")
    end
  end)

  it("nn_norm: the shifted one-pass variance survives |mean| >> std", function()
    local x = randn({ 2, 3, 40, 41 }, 1e-2) + 1000
    local y, sm, si = T.zeros(x:shape()), T.zeros(3), T.zeros(3)
    core.nn_norm(x, y, "batch", 1e-5, nil, nil, sm, si)
    local _, means, invs = ref_norm(x, "batch", 1e-5)
    assert(max_err(si, invs) < 1e-5 * (1 + invs[1]), "invstd")
    local sv = vals(si)
    for c = 1, 3 do assert(math.abs(sv[c] - invs[c]) / invs[c] < 1e-5, "invstd " .. c) end
    assert(max_err(sm, means) < 1e-6, "mean")
  end)

  H.backend_it(it, pending, "nn_concat and nn_split", function()
    for _, sh in ipairs(shapes) do
      local sa, sb = copy(sh), copy(sh)
      sb[2] = sh[2] + 2
      local a, b = randn(sa), randn(sb)
      local so = copy(sh)
      so[2] = sa[2] + sb[2]
      local out = T.zeros(so)
      core.nn_concat(a, b, out)
      local av, bv, want = vals(a), vals(b), {}
      local Ma, Mb = a:numel() // sh[1], b:numel() // sh[1]
      for n = 0, sh[1] - 1 do
        for i = 1, Ma do want[#want + 1] = av[n * Ma + i] end
        for i = 1, Mb do want[#want + 1] = bv[n * Mb + i] end
      end
      assert_bits(out, from(want, so), "concat")
      local ga, gb = T.zeros(sa), T.zeros(sb)
      core.nn_split(out, ga, gb)
      assert_bits(ga, a, "split a")
      assert_bits(gb, b, "split b")
      local gb2 = T.zeros(sb)
      core.nn_split(out, nil, gb2)
      assert_bits(gb2, b, "split b alone")
      local ga2 = T.zeros(sa)
      core.nn_split(out, ga2, nil)
      assert_bits(ga2, a, "split a alone")
    end
  end)
end)

---------------------------------------------------------------------------
-- optimisers: the kernels' float32 arithmetic emulated exactly, and a
-- double reference

local function sgd_ref(p, g, buf, o, emulate)
  local r = emulate and f32 or function(v) return v end
  local lr, wd, mom, damp = r(-o.lr), r(o.wd), r(o.momentum), r(1 - o.dampening)
  for i = 1, #p do
    local d = g[i]
    if o.wd ~= 0 then d = r(d + r(wd * p[i])) end
    if o.momentum ~= 0 then
      local b = o.first and d or r(r(buf[i] * mom) + r(damp * d))
      buf[i] = b
      d = o.nesterov and r(d + r(mom * b)) or b
    end
    p[i] = r(p[i] + r(lr * d))
  end
end

local function adam_ref(p, g, m, v, step, o, emulate)
  local r = emulate and f32 or function(x) return x end
  local bc1, bc2 = 1 - o.beta1 ^ step, 1 - o.beta2 ^ step
  local decay = o.decoupled and r(1 - o.lr * o.wd) or 1
  local wd = o.decoupled and 0 or r(o.wd)
  local b1, c1, b2, c2 = r(o.beta1), r(1 - o.beta1), r(o.beta2), r(1 - o.beta2)
  local bc2s, eps, ns = r(math.sqrt(bc2)), r(o.eps), r(-o.lr / bc1)
  for i = 1, #p do
    local pi, gi = p[i], g[i]
    if decay ~= 1 then pi = r(pi * decay) end
    if wd ~= 0 then gi = r(gi + r(wd * pi)) end
    local mi = r(r(m[i] * b1) + r(c1 * gi))
    local vi = r(r(v[i] * b2) + r(r(c2 * gi) * gi))
    local denom = r(r(r(math.sqrt(vi)) / bc2s) + eps)
    m[i], v[i] = mi, vi
    p[i] = r(pi + r(r(ns * mi) / denom))
  end
end

local sgd_cases = {
  { lr = 0.1, momentum = 0, dampening = 0, nesterov = false, wd = 0 },
  { lr = 0.05, momentum = 0.9, dampening = 0, nesterov = false, wd = 1e-4 },
  { lr = 0.05, momentum = 0.9, dampening = 0.3, nesterov = false, wd = 0 },
  { lr = 0.01, momentum = 0.8, dampening = 0, nesterov = true, wd = 0.01 },
}
local adam_cases = {
  { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0, decoupled = false },
  { lr = 3e-3, beta1 = 0.8, beta2 = 0.99, eps = 1e-6, wd = 0.1, decoupled = false },
  { lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.05, decoupled = true },
  { lr = 1e-3, beta1 = 0, beta2 = 0.5, eps = 1.1754943508222875e-38, wd = 0, decoupled = true },
}

describe("optimisers against Lua references", function()
  setup(function() segloss.seed(4102) end)

  H.backend_it(it, pending, "optim_sgd: torch.optim.SGD over 4 steps", function()
    for _, o in ipairs(sgd_cases) do
      local p, buf = randn({ 3, 37 }), T.zeros(3, 37)
      local pe, be, pd, bd = vals(p), {}, vals(p), {}
      for step = 1, 4 do
        local g = randn({ 3, 37 })
        local gv = vals(g)
        core.optim_sgd(p, g, o.momentum ~= 0 and buf or nil, o.lr, o.momentum, o.dampening,
          o.nesterov, o.wd, step == 1)
        local oo = setmetatable({ first = step == 1 }, { __index = o })
        sgd_ref(pe, gv, be, oo, true)
        sgd_ref(pd, gv, bd, oo, false)
      end
      assert_bits(p, from(pe, { 3, 37 }), "sgd (emulated float32)")
      assert(max_err(p, pd) < 1e-6, "sgd (double)")
      if o.momentum ~= 0 then assert_bits(buf, from(be, { 3, 37 }), "sgd buffer") end
    end
  end)

  H.backend_it(it, pending, "optim_adam: torch.optim.Adam / AdamW over 5 steps", function()
    for _, o in ipairs(adam_cases) do
      local sh = { 5, 29 }
      local p, m, v = randn(sh), T.zeros(sh), T.zeros(sh)
      local pe, me, ve = vals(p), vals(m), vals(m)
      local pd, md, vd = vals(p), vals(m), vals(m)
      for step = 1, 5 do
        local g = randn(sh)
        local gv = vals(g)
        core.optim_adam(p, g, m, v, step, o.lr, o.beta1, o.beta2, o.eps, o.wd, o.decoupled)
        adam_ref(pe, gv, me, ve, step, o, true)
        adam_ref(pd, gv, md, vd, step, o, false)
      end
      assert_bits(p, from(pe, sh), "adam p (emulated float32)")
      assert_bits(m, from(me, sh), "adam m")
      assert_bits(v, from(ve, sh), "adam v")
      assert(max_err(p, pd) < 1e-5, "adam (double) " .. max_err(p, pd))
    end
  end)
end)

---------------------------------------------------------------------------
-- every backend against scalar, on shapes with whole vectors and tails

-- the tolerance per kernel, in float32 ulps (0: the same bits)
local ULPS = {
  act = 0, act_backward = 0, maxpool = 0, maxpool_backward = 0, upsample = 0,
  upsample_backward = 0, concat = 0, optim = 0,
  -- the statistics' double sums run in another order (lanes): the float mean
  -- and invstd may differ in their last bit, which a few ulps of y follow
  -- (measured: 0 ulps on all these shapes and at 8x16x64x64)
  norm = 2, norm_backward = 4,
}

-- runs fn under the scalar backend and under the current one
local function versus_scalar(fn)
  local cur = segloss.backend()
  segloss.set_backend("scalar")
  local ref = { fn() }
  segloss.set_backend(cur)
  return ref, { fn() }
end

local function check_all(name, ref, got)
  for i = 1, #ref do
    if ULPS[name] == 0 then
      assert_bits(got[i], ref[i], name .. " output " .. i)
    else
      local u = max_ulps(got[i], ref[i])
      assert(u <= ULPS[name], string.format("%s output %d: %d ulps", name, i, u))
    end
  end
end

-- every kernel once; returns a table name -> function returning outputs
local function all_kernels(sh, x, gy, w, b)
  local C = sh[2]
  local ys = copy(sh)
  for d = 3, #sh do ys[d] = sh[d] // 2 end
  local us = copy(sh)
  for d = 3, #sh do us[d] = sh[d] * 2 end
  local gp = randn(ys)
  local gu = randn(us)
  local ps = { x:numel() }
  local pg = randn(ps)
  return {
    act = function() local y = T.zeros(sh); core.nn_act(x, y, 0.01); return y end,
    act_backward = function() local g = T.zeros(sh); core.nn_act_backward(x, gy, g, 0.01); return g end,
    maxpool = function()
      local y = T.zeros(ys)
      core.nn_maxpool(x, y, 2)
      local s3 = copy(sh)
      for d = 3, #sh do s3[d] = sh[d] // 3 end
      local y3 = T.zeros(s3)
      core.nn_maxpool(x, y3, 3)
      return y, y3
    end,
    maxpool_backward = function() local g = T.zeros(sh); core.nn_maxpool_backward(x, gp, g, 2); return g end,
    upsample = function()
      local a, c = T.zeros(us), T.zeros(us)
      core.nn_upsample(x, a, "linear", 2)
      core.nn_upsample(x, c, "nearest", 2)
      return a, c
    end,
    upsample_backward = function()
      local a, c = T.zeros(sh), T.zeros(sh)
      core.nn_upsample_backward(gu, a, "linear", 2)
      core.nn_upsample_backward(gu, c, "nearest", 2)
      return a, c
    end,
    norm = function()
      local y, sm, si, rm, rv = T.zeros(sh), T.zeros(C), T.zeros(C), T.zeros(C), T.ones(C)
      core.nn_norm(x, y, "batch", 1e-5, w, b, sm, si, rm, rv, 0.1)
      local y2, sm2, si2 = T.zeros(sh), T.zeros(sh[1] * C), T.zeros(sh[1] * C)
      core.nn_norm(x, y2, "instance", 1e-5, w, b, sm2, si2)
      return y, sm, si, rm, rv, y2, sm2, si2
    end,
    norm_backward = function()
      -- the same saved statistics for both backends (from scalar's forward)
      local cur = segloss.backend()
      segloss.set_backend("scalar")
      local y, sm, si = T.zeros(sh), T.zeros(C), T.zeros(C)
      core.nn_norm(x, y, "batch", 1e-5, w, b, sm, si)
      local y2, sm2, si2 = T.zeros(sh), T.zeros(sh[1] * C), T.zeros(sh[1] * C)
      core.nn_norm(x, y2, "instance", 1e-5, w, b, sm2, si2)
      segloss.set_backend(cur)
      local gx, gw, gb = T.zeros(sh), T.zeros(C), T.zeros(C)
      core.nn_norm_backward(x, gy, gx, "batch", w, sm, si, gw, gb)
      local gx2, gw2, gb2 = T.zeros(sh), T.zeros(C), T.zeros(C)
      core.nn_norm_backward(x, gy, gx2, "instance", w, sm2, si2, gw2, gb2)
      return gx, gw, gb, gx2, gw2, gb2
    end,
    concat = function()
      local so = copy(sh)
      so[2] = 2 * C
      local o = T.zeros(so)
      core.nn_concat(x, gy, o)
      return o
    end,
    optim = function()
      local p, buf = x:reshape(ps):clone(), T.zeros(ps)
      core.optim_sgd(p, pg, buf, 0.1, 0.9, 0, true, 1e-4, true)
      core.optim_sgd(p, pg, buf, 0.1, 0.9, 0, true, 1e-4, false)
      local q, m, v = x:reshape(ps):clone(), T.zeros(ps), T.zeros(ps)
      core.optim_adam(q, pg, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.01, true)
      core.optim_adam(q, pg, m, v, 2, 1e-3, 0.9, 0.999, 1e-8, 0.01, false)
      return p, buf, q, m, v
    end,
  }
end

describe("nn kernels: every backend against scalar", function()
  local cases
  setup(function()
    segloss.seed(4103)
    cases = {}
    -- W = 37 (pooled 18 = 2 vectors of 8 + 2), 35, 8k+1; M = 17030 spans two blocks
    for _, sh in ipairs { { 2, 3, 10, 37 }, { 1, 5, 7, 17 }, { 2, 3, 130, 131 }, { 1, 3, 6, 10, 35 },
      { 2, 2, 3, 4, 9 } } do
      local x = tied(sh, true)
      -- the norm tests need finite inputs: a copy without NaNs
      cases[#cases + 1] = { sh = sh, x = x, gy = randn(sh), w = randn({ sh[2] }), b = randn({ sh[2] }) }
    end
  end)

  for _, name in ipairs { "act", "act_backward", "maxpool", "maxpool_backward", "upsample",
    "upsample_backward", "norm", "norm_backward", "concat", "optim" } do
    H.simd_it(it, pending, name .. " (tolerance " .. ULPS[name] .. " ulps)", function()
      for _, cs in ipairs(cases) do
        local x = cs.x
        if name:find("norm") or name:find("upsample") then x = randn(cs.sh) end
        local k = all_kernels(cs.sh, x, cs.gy, cs.w, cs.b)
        local ref, got = versus_scalar(k[name])
        check_all(name, ref, got)
      end
    end)
  end
end)

---------------------------------------------------------------------------

describe("nn kernels: 1 and 2 threads give the same bits", function()
  local inputs
  setup(function()
    segloss.seed(4104)
    inputs = {}
    for _, sh in ipairs { big4, big5 } do
      inputs[#inputs + 1] = { sh = sh, x = randn(sh), gy = randn(sh), w = randn({ sh[2] }), b = randn({ sh[2] }) }
    end
  end)
  for _, name in ipairs { "act", "act_backward", "maxpool", "maxpool_backward", "upsample",
    "upsample_backward", "norm", "norm_backward", "concat", "optim" } do
    H.backend_it(it, pending, name, function()
      for _, inp in ipairs(inputs) do
        local k = all_kernels(inp.sh, inp.x, inp.gy, inp.w, inp.b)
        local one = { with_threads(1, function() return table.pack(k[name]()) end) }
        local two = { with_threads(2, function()
          local r = table.pack(k[name]())
          return r, core.threads_used()
        end) }
        assert.equal(2, two[2], name .. ": threads that ran together")
        for i = 1, one[1].n do assert_bits(two[1][i], one[1][i], name .. " output " .. i) end
      end
    end)
  end
end)

---------------------------------------------------------------------------

describe("nn kernels: finite differences and adjoints", function()
  setup(function() segloss.seed(4105) end)

  local function dot(a, b) return a:dot(b) end

  -- relative ‖g − ĝ‖ / ‖g + ĝ‖
  local function rel(g, h)
    local a, b = vals(g), h
    local num, den = 0, 0
    for i = 1, #a do num = num + (a[i] - b[i]) ^ 2; den = den + (a[i] + b[i]) ^ 2 end
    return math.sqrt(num) / math.sqrt(den)
  end

  for _, mode in ipairs { "batch", "instance" } do
    for _, sh in ipairs { { 2, 3, 3, 4 }, { 2, 2, 2, 3, 3 } } do
      it("nn_norm_backward " .. mode .. " " .. #sh .. "-D: central differences on x, weight, bias", function()
        local C = sh[2]
        local x, r = randn(sh), randn(sh)
        local w, b = randn({ C }) + 1, randn({ C })
        local ns = mode == "instance" and sh[1] * C or C
        local function loss(xx, ww, bb)
          local y, sm, si = T.zeros(sh), T.zeros(ns), T.zeros(ns)
          core.nn_norm(xx, y, mode, 1e-5, ww, bb, sm, si)
          return dot(y, r), sm, si
        end
        local _, sm, si = loss(x, w, b)
        local gx, gw, gb = T.zeros(sh), T.zeros(C), T.zeros(C)
        core.nn_norm_backward(x, r, gx, mode, w, sm, si, gw, gb)
        local h = 1e-2
        local function fd(t)
          local f, g = t:reshape(t:numel()), {}
          for i = 1, f:numel() do
            local v = f:get(i)
            f:set(i, v + h)
            local lp = loss(x, w, b)
            f:set(i, v - h)
            local lm = loss(x, w, b)
            f:set(i, v)
            g[i] = (lp - lm) / (2 * h)
          end
          return g
        end
        assert(rel(gx, fd(x)) < 3e-3, "gx " .. rel(gx, fd(x)))
        assert(rel(gw, fd(w)) < 3e-3, "gweight")
        assert(rel(gb, fd(b)) < 3e-3, "gbias")
      end)
    end
  end

  for _, mode in ipairs { "nearest", "linear" } do
    for _, s in ipairs { 2, 3 } do
      it("nn_upsample_backward " .. mode .. " x" .. s .. ": <A x, y> = <x, A* y>", function()
        for _, sh in ipairs { { 2, 3, 5, 7 }, { 1, 2, 3, 4, 5 } } do
          local us = copy(sh)
          for d = 3, #sh do us[d] = sh[d] * s end
          local x, y = randn(sh), randn(us)
          local ax, aty = T.zeros(us), T.zeros(sh)
          core.nn_upsample(x, ax, mode, s)
          core.nn_upsample_backward(y, aty, mode, s)
          local l, r = dot(ax, y), dot(x, aty)
          assert(math.abs(l - r) <= 1e-5 * (math.abs(l) + math.abs(r) + 1),
            string.format("%.9g vs %.9g", l, r))
        end
      end)
    end
  end
end)

---------------------------------------------------------------------------

describe("nn kernels: errors", function()
  local x4, x5, y4, s3
  setup(function()
    x4, x5 = T.zeros(2, 3, 4, 4), T.zeros(1, 2, 4, 4, 4)
    y4 = T.zeros(2, 3, 4, 4)
    s3 = T.zeros(3)
  end)
  local function E(fn, parts, ...) return H.errors("segloss.core." .. fn .. ": ", parts, core[fn], ...) end

  it("nn_act / nn_act_backward", function()
    E("nn_act", { "expected 3 arguments, got 2" }, x4, y4)
    E("nn_act", { "x must be a segloss.Tensor, got nil" }, nil, y4, 0)
    E("nn_act", { "x must be a 4-D (N,C,H,W) or 5-D (N,C,D,H,W) tensor, got shape {3}" }, s3, s3, 0)
    E("nn_act", { "y shape {2,3,4,5} does not match x {2,3,4,4}" }, x4, T.zeros(2, 3, 4, 5), 0)
    E("nn_act", { "slope must be a finite number >= 0 (within float32), got -1" }, x4, y4, -1)
    E("nn_act", { "slope must be", "got nan" }, x4, y4, 0 / 0)
    E("nn_act", { "slope must be", "got 1e+300" }, x4, y4, 1e300)
    E("nn_act", { "slope must be", "got string" }, x4, y4, "0.1")
    E("nn_act_backward", { "gy shape {2,3,4,5} does not match x {2,3,4,4}" }, x4, T.zeros(2, 3, 4, 5), y4, 0)
    E("nn_act_backward", { "gx shape {1} does not match x {2,3,4,4}" }, x4, y4, T.zeros(1), 0)
    E("nn_act_backward", { "slope must be" }, x4, y4, T.zeros(2, 3, 4, 4), 1 / 0)
  end)

  it("nn_act rejects overlapping views of different offsets", function()
    local base = T.zeros(4, 3, 4, 4)
    local a, b = base:narrow(1, 1, 2), base:narrow(1, 2, 2)
    E("nn_act", { "y must not share memory with x (except by being the same tensor)" }, a, b, 0)
  end)

  it("nn_maxpool / nn_maxpool_backward", function()
    E("nn_maxpool", { "k must be an integer >= 1, got 0" }, x4, T.zeros(2, 3, 2, 2), 0)
    E("nn_maxpool", { "k must be an integer >= 1, got 1.5" }, x4, T.zeros(2, 3, 2, 2), 1.5)
    E("nn_maxpool", { "spatial size 4 is smaller than the window k = 5" }, x4, T.zeros(2, 3, 1, 1), 5)
    E("nn_maxpool", { "y shape {2,3,4,4} must be {2,3,2,2} (x pooled by k, floor)" }, x4, y4, 2)
    E("nn_maxpool", { "y shape {1,2,2,2} must be {1,2,2,2,2}" }, x5, T.zeros(1, 2, 2, 2), 2)
    E("nn_maxpool", { "y must not share memory with x" }, x4, x4:reshape(96):narrow(1, 1, 24):reshape(2, 3, 2, 2), 2)
    E("nn_maxpool_backward", { "gy shape {2,3,4,4} must be {2,3,2,2}" }, x4, y4, T.zeros(2, 3, 4, 4), 2)
    E("nn_maxpool_backward", { "gx shape {2,3,2,2} does not match x {2,3,4,4}" }, x4, T.zeros(2, 3, 2, 2),
      T.zeros(2, 3, 2, 2), 2)
    E("nn_maxpool_backward", { "expected 4 arguments, got 3" }, x4, y4, y4)
  end)

  it("nn_upsample / nn_upsample_backward", function()
    E("nn_upsample", { "mode must be one of \"nearest\", \"linear\", got string \"bilinear\"" }, x4,
      T.zeros(2, 3, 8, 8), "bilinear", 2)
    E("nn_upsample", { "scale must be an integer in 1..64, got 0" }, x4, T.zeros(2, 3, 8, 8), "nearest", 0)
    E("nn_upsample", { "scale must be an integer in 1..64, got 2.5" }, x4, T.zeros(2, 3, 8, 8), "nearest", 2.5)
    E("nn_upsample", { "y shape {2,3,8,7} must be {2,3,8,8} (x's spatial sizes times scale)" }, x4,
      T.zeros(2, 3, 8, 7), "linear", 2)
    E("nn_upsample", { "x must be a 4-D" }, T.zeros(2, 3), T.zeros(2, 3), "linear", 2)
    E("nn_upsample_backward", { "gy shape {2,3,8,8} must be {2,3,12,12} (gx's spatial sizes times scale)" },
      T.zeros(2, 3, 8, 8), x4, "linear", 3)
    E("nn_upsample_backward", { "gx must be a segloss.Tensor, got 3" }, T.zeros(2, 3, 8, 8), 3, "linear", 2)
  end)

  it("nn_norm", function()
    local sm, si = T.zeros(3), T.zeros(3)
    E("nn_norm", { "expected at least 8 arguments, got 4" }, x4, y4, "batch", 1e-5)
    E("nn_norm", { "mode must be one of \"batch\", \"instance\", \"batch_eval\", got string \"layer\"" },
      x4, y4, "layer", 1e-5, nil, nil, sm, si)
    E("nn_norm", { "eps must be a finite number > 0 (within float32), got 0" }, x4, y4, "batch", 0, nil, nil, sm, si)
    E("nn_norm", { "weight shape {4} must be {3} (one per channel of x)" }, x4, y4, "batch", 1e-5,
      T.zeros(4), nil, sm, si)
    E("nn_norm", { "bias must be a segloss.Tensor or nil, got 1" }, x4, y4, "batch", 1e-5, nil, 1, sm, si)
    E("nn_norm", { "save_mean shape {3} must be {6} (N*C: one per sample and channel of x)" }, x4, y4,
      "instance", 1e-5, nil, nil, sm, si)
    E("nn_norm", { "save_invstd must be a segloss.Tensor, got nil" }, x4, y4, "batch", 1e-5, nil, nil, sm, nil)
    E("nn_norm", { "running_mean and running_var must be given together" }, x4, y4, "batch", 1e-5, nil, nil,
      sm, si, T.zeros(3), nil, 0.1)
    E("nn_norm", { "mode \"instance\" keeps no running statistics" }, x4, y4, "instance", 1e-5, nil, nil,
      T.zeros(6), T.zeros(6), T.zeros(3), T.zeros(3), 0.1)
    E("nn_norm", { "mode \"batch_eval\" needs running_mean and running_var, got nil" }, x4, y4, "batch_eval",
      1e-5, nil, nil, sm, si)
    E("nn_norm", { "momentum must be a number in [0, 1], got 1.5" }, x4, y4, "batch", 1e-5, nil, nil, sm, si,
      T.zeros(3), T.ones(3), 1.5)
    E("nn_norm", { "momentum must be a number in [0, 1], got nil" }, x4, y4, "batch", 1e-5, nil, nil, sm, si,
      T.zeros(3), T.ones(3))
    E("nn_norm", { "mode \"batch\" needs more than 1 value per channel, got x shape {1,3,1,1}" },
      T.zeros(1, 3, 1, 1), T.zeros(1, 3, 1, 1), "batch", 1e-5, nil, nil, sm, si)
    E("nn_norm", { "mode \"instance\" needs more than 1 spatial element, got x shape {2,3,1,1}" },
      T.zeros(2, 3, 1, 1), T.zeros(2, 3, 1, 1), "instance", 1e-5, nil, nil, T.zeros(6), T.zeros(6))
    E("nn_norm", { "save_invstd must not share memory with save_mean" }, x4, y4, "batch", 1e-5, nil, nil,
      sm, sm)
    E("nn_norm", { "save_mean must not share memory with weight" }, x4, y4, "batch", 1e-5, sm, nil, sm, si)
  end)

  it("nn_norm_backward", function()
    local sm, si = T.zeros(3), T.ones(3)
    E("nn_norm_backward", { "expected at least 7 arguments, got 3" }, x4, y4, y4)
    E("nn_norm_backward", { "gy shape {2,3,4,5} does not match x {2,3,4,4}" }, x4, T.zeros(2, 3, 4, 5), y4,
      "batch", nil, sm, si)
    E("nn_norm_backward", { "mode must be one of" }, x4, y4, T.zeros(2, 3, 4, 4), "group", nil, sm, si)
    E("nn_norm_backward", { "save_invstd shape {3} must be {6}" }, x4, y4, T.zeros(2, 3, 4, 4), "instance",
      nil, T.zeros(6), si)
    E("nn_norm_backward", { "gweight shape {2} must be {3}" }, x4, y4, T.zeros(2, 3, 4, 4), "batch", nil, sm,
      si, T.zeros(2))
    E("nn_norm_backward", { "gbias must not share memory with gweight" }, x4, y4, T.zeros(2, 3, 4, 4), "batch",
      nil, sm, si, s3, s3)
  end)

  it("nn_concat / nn_split", function()
    E("nn_concat", { "b shape {2,3,4,5} does not match a {2,3,4,4} on every axis but the channels" }, x4,
      T.zeros(2, 3, 4, 5), T.zeros(2, 6, 4, 4))
    E("nn_concat", { "out shape {2,5,4,4} must be {2,6,4,4} (a and b joined along the channels)" }, x4, y4,
      T.zeros(2, 5, 4, 4))
    E("nn_concat", { "b shape {1,2,4,4,4} does not match a {2,3,4,4}" }, x4, x5, T.zeros(2, 6, 4, 4))
    local base = T.zeros(192)
    E("nn_concat", { "out must not share memory with a" }, base:narrow(1, 1, 96):reshape(2, 3, 4, 4), y4,
      base:reshape(2, 6, 4, 4))
    E("nn_split", { "ga and gb are both nil" }, x4, nil, nil)
    E("nn_split", { "the channels of ga {2,2,4,4} and gb {2,2,4,4} must add up to those of g {2,3,4,4} (3)" },
      x4, T.zeros(2, 2, 4, 4), T.zeros(2, 2, 4, 4))
    E("nn_split", { "the channels of ga {2,3,4,4} and gb nil must add up" }, x4, T.zeros(2, 3, 4, 4), nil)
    E("nn_split", { "gb shape {2,1,4,3} does not match g {2,3,4,4}" }, x4, nil, T.zeros(2, 1, 4, 3))
    E("nn_split", { "ga must be a segloss.Tensor or nil, got boolean true" }, x4, true, nil)
  end)

  it("optim_sgd / optim_adam", function()
    local p, g, b = T.zeros(5), T.zeros(5), T.zeros(5)
    E("optim_sgd", { "expected 9 arguments, got 2" }, p, g)
    E("optim_sgd", { "g shape {4} does not match p {5}" }, p, T.zeros(4), b, 0.1, 0.9, 0, false, 0, true)
    E("optim_sgd", { "lr must be a finite number >= 0 (within float32), got -0.1" }, p, g, b, -0.1, 0.9, 0,
      false, 0, true)
    E("optim_sgd", { "momentum must be a finite number >= 0 (within float32), got nan" }, p, g, b, 0.1, 0 / 0,
      0, false, 0, true)
    E("optim_sgd", { "nesterov must be a boolean, got 1" }, p, g, b, 0.1, 0.9, 0, 1, 0, true)
    E("optim_sgd", { "dampening must be a number in [0, 1], got -1e+38" }, p, g, b, 0.1, 0.9, -1e38, false, 0,
      true)
    E("optim_sgd", { "nesterov needs momentum > 0 and dampening 0" }, p, g, b, 0.1, 0.9, 0.1, true, 0, true)
    E("optim_sgd", { "weight_decay must be a finite number >= 0 (within float32), got -1" }, p, g, b, 0.1,
      0.9, 0, false, -1, true)
    E("optim_sgd", { "momentum 0.9 needs a buffer: buf must be a tensor, got nil" }, p, g, nil, 0.1, 0.9, 0,
      false, 0, true)
    E("optim_sgd", { "first must be a boolean, got nil" }, p, g, b, 0.1, 0.9, 0, false, 0, nil)
    E("optim_sgd", { "buf must not share memory with p" }, p, g, p, 0.1, 0.9, 0, false, 0, true)
    local m, v = T.zeros(5), T.zeros(5)
    E("optim_adam", { "expected 11 arguments, got 4" }, p, g, m, v)
    E("optim_adam", { "step must be an integer >= 1, got 0" }, p, g, m, v, 0, 1e-3, 0.9, 0.999, 1e-8, 0, false)
    E("optim_adam", { "beta1 must be a number in [0, 1), got 1" }, p, g, m, v, 1, 1e-3, 1, 0.999, 1e-8, 0, false)
    E("optim_adam", { "beta2 must be a number in [0, 1), got -0.5" }, p, g, m, v, 1, 1e-3, 0.9, -0.5, 1e-8, 0,
      false)
    E("optim_adam", { "eps must be a finite number >= 1.1754943508223e-38 (within float32), got inf" }, p, g, m, v,
      1, 1e-3,
      0.9, 0.999, 1 / 0, 0, false)
    E("optim_adam", { "decoupled must be a boolean, got string \"yes\"" }, p, g, m, v, 1, 1e-3, 0.9, 0.999, 1e-8,
      0, "yes")
    E("optim_adam", { "v shape {4} does not match p {5}" }, p, g, m, T.zeros(4), 1, 1e-3, 0.9, 0.999, 1e-8, 0,
      false)
    E("optim_adam", { "v must not share memory with m" }, p, g, m, m, 1, 1e-3, 0.9, 0.999, 1e-8, 0, false)
    E("optim_adam", { "lr 1e+37 is too large for float32 at step 1" }, p, g, m, v, 1, 1e37, 0.999, 0.999, 1e-8,
      0, false)
  end)
end)
