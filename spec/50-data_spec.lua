-- segloss.data: synthetic data, datasets, splits, batches, augmentation, PNG and folders.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local D = segloss.data
local core = segloss.core

local FIX = "spec/fixtures/png/"

local function same_bits(a, b)
  if not H.same_shape(a, b) then return false end
  local fa, fb = a:reshape(-1), b:reshape(-1)
  for i = 1, #fa do
    if string.pack("<f", fa:get(i)) ~= string.pack("<f", fb:get(i)) then return false end
  end
  return true
end

-- An (N, 1, H, W) tensor whose image i is fn(i, r, c).
local function images(n, h, w, fn)
  local x = T.zeros(n, 1, h, w)
  for i = 1, n do for r = 1, h do for c = 1, w do x:set(i, 1, r, c, fn(i, r, c)) end end end
  return x
end

-- The 8 transforms of a square plane (the reference for augmentation),
-- written independently of the C: p(r, c) -> source coordinates.
local function dihedral(h, w)
  local list = {}
  for rot = 0, 3 do
    for flip = 0, 3 do
      list[#list + 1] = function(r, c)
        -- rotate (counter-clockwise) the flipped image rot times: undo the rotation first
        for _ = 1, rot do r, c = c, w + 1 - r end
        if flip & 1 == 1 then r = h + 1 - r end
        if flip & 2 == 2 then c = w + 1 - c end
        return r, c
      end
    end
  end
  return list
end

local function plane_matches(out, k, src, i, map, h, w, a, b)
  for r = 1, h do
    for c = 1, w do
      local sr, sc = map(r, c)
      local want = a * src:get(i, 1, sr, sc) + b
      if math.abs(out:get(k, 1, r, c) - want) > 1e-5 * (1 + math.abs(want)) then return false end
    end
  end
  return true
end

local function tmpdir()
  local d = H.tmpname("_dir")
  assert(os.execute("mkdir -p '" .. d .. "/img' '" .. d .. "/msk'"))
  return d
end
local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

describe("segloss.data.synthetic", function()
  it("is deterministic by seed: the same bits for the same seed and any thread count", function()
    local a = H.with_threads(1, function() return D.synthetic { n = 6, size = { 32, 32 }, seed = 7 } end)
    local b = H.with_threads(2, function() return D.synthetic { n = 6, size = { 32, 32 }, seed = 7 } end)
    local c = D.synthetic { n = 6, size = { 32, 32 }, seed = 8 }
    assert.is_true(same_bits(a.x, b.x))
    assert.is_true(same_bits(a.t, b.t))
    assert.is_false(same_bits(a.x, c.x))
    -- the library generator's state does not matter
    segloss.seed(123)
    local d = D.synthetic { n = 6, size = { 32, 32 }, seed = 7 }
    assert.is_true(same_bits(a.x, d.x))
  end)

  it("covers the requested foreground fraction of the images with targets (2-D and 3-D)", function()
    for _, case in ipairs {
      { { 128, 128 }, 0.001 }, { { 128, 128 }, 0.005 }, { { 64, 64 }, 0.02 }, { { 64, 64 }, 0.05 },
      { { 16, 32, 32 }, 0.002 }, { { 16, 32, 32 }, 0.02 },
    } do
      local d = D.synthetic { n = 16, size = case[1], foreground = case[2], empty = 0.25, seed = 3 }
      local pix = 1
      for _, s in ipairs(case[1]) do pix = pix * s end
      local sum, k = 0, 0
      for i = 1, d.n do
        -- measured independently of d.foreground: the mask's sum
        local f = d.t:narrow(1, i, 1):sum() / pix
        assert.are.equal(d.foreground[i], f)
        if not d.empty[i] then
          sum, k = sum + f, k + 1
          assert(math.abs(f / case[2] - 1) < 0.35, string.format("image %d: %g for %g", i, f, case[2]))
        end
      end
      local mean = sum / k
      assert(math.abs(mean / case[2] - 1) < 0.1, string.format("mean %g for %g", mean, case[2]))
    end
  end)

  it("has exactly round(empty * n) images without targets, and a target in every other", function()
    for _, e in ipairs { 0, 0.2, 0.5, 1 } do
      local d = D.synthetic { n = 25, size = { 32, 32 }, foreground = 0.01, empty = e, seed = 2 }
      local k = 0
      for i = 1, d.n do
        local s = d.t:narrow(1, i, 1):sum()
        assert.are.equal(s == 0, d.empty[i])
        if d.empty[i] then k = k + 1 end
      end
      assert.are.equal(math.floor(e * 25 + 0.5), k)
    end
  end)

  it("gives images with texture and distractors, targets brighter than their surroundings", function()
    local d = D.synthetic { n = 8, size = { 64, 64 }, foreground = 0.01, empty = 0, seed = 5 }
    local nd = D.synthetic { n = 8, size = { 64, 64 }, foreground = 0.01, empty = 0, seed = 5, distractors = false,
      noise = 0 }
    for i = 1, 8 do
      local x, t = d.x:narrow(1, i, 1), d.t:narrow(1, i, 1)
      local fg = (x * t):sum() / t:sum()
      local bg = (x * (1 - t)):sum() / (1 - t):sum()
      assert(fg > bg + 0.15, string.format("image %d: inside %g, outside %g", i, fg, bg))
    end
    -- distractors and noise change the background, not the masks
    assert.is_true(same_bits(d.t, nd.t))
    assert.is_false(same_bits(d.x, nd.x))
    -- a background is not flat: its spread exceeds the noise's
    local x0 = nd.x:narrow(1, 1, 1)
    local m = x0:mean()
    assert(((x0 - m) * (x0 - m)):mean() > 0.002)
  end)

  it("finishes at the smallest foreground: no placement loop that spins", function()
    -- not a speed test (make bench is where speed is measured): about 0.05 s
    -- of CPU time normally; the loose bound only catches a loop that never
    -- finds room for its targets
    local t0 = os.clock()
    D.synthetic { n = 64, size = { 64, 64 }, foreground = 0.001, seed = 1 }
    assert(os.clock() - t0 < 20, "took " .. (os.clock() - t0) .. " s of CPU time")
  end)

  it("checks its options", function()
    H.errors("segloss.data.synthetic: unknown option \"foregound\"", { 'did you mean "foreground"' },
      D.synthetic, { foregound = 0.01 })
    H.errors("segloss.data.synthetic: option foreground must be a number in [0.0001, 0.05]", { "got 0.2" },
      D.synthetic, { foreground = 0.2 })
    H.errors("segloss.data.synthetic: option size must be a list of 2 or 3 integers", {},
      D.synthetic, { size = { 64 } })
    H.errors("segloss.data.synthetic: option shapes must be", { '"disc"' }, D.synthetic, { shapes = { "square" } })
    H.errors("segloss.data.synthetic: option empty must be a number in [0, 1]", {}, D.synthetic, { empty = 1.5 })
  end)
end)

describe("segloss.core.data_hash", function()
  it("is 64-bit FNV-1a of the sizes (8 bytes each, little-endian) and the float32 bytes", function()
    -- the reference, in Lua: the same bytes through string.pack
    local function fnv(t)
      local bytes = {}
      for _, s in ipairs(t:shape()) do bytes[#bytes + 1] = string.pack("<i8", s) end
      for _, v in ipairs(t:reshape(-1):totable()) do bytes[#bytes + 1] = string.pack("<f", v) end
      local h = 0xcbf29ce484222325
      for c in table.concat(bytes):gmatch(".") do h = (h ~ c:byte()) * 0x100000001b3 end
      return string.format("%016x", h)
    end
    segloss.seed(3)
    for _, shape in ipairs { { 2, 3 }, { 3, 2 }, { 1, 1, 5, 7 }, { 4 } } do
      local t = T.randn(shape)
      assert.are.equal(fnv(t), core.data_hash(t))
    end
    -- sizes count: the same zeros in another shape differ; one changed value differs
    assert.are_not.equal(core.data_hash(T.zeros(2, 3)), core.data_hash(T.zeros(3, 2)))
    local a = T.zeros(4, 4)
    local h = core.data_hash(a)
    a:set(3, 2, 1e-30)
    assert.are_not.equal(h, core.data_hash(a))
    H.errors("segloss.core.data_hash: tensor must be a segloss.Tensor", {}, core.data_hash, {})
  end)
end)

describe("segloss.data: targets below a pixel", function()
  it("every image meant to have a target has at least one pixel of it", function()
    for _, case in ipairs { { "synthetic", { 64, 64 }, 1e-4 }, { "synthetic", { 16, 16 }, 1e-3 },
      { "synthetic", { 8, 16, 16 }, 1e-4 }, { "mri", { 64, 64 }, 1e-4 }, { "mri", { 16, 16 }, 1e-3 } } do
      local d = D[case[1]] { n = 10, size = case[2], foreground = case[3], empty = 0.2, seed = 1 }
      local nempty = 0
      for i = 1, 10 do
        if d.empty[i] then nempty = nempty + 1 end
      end
      assert.are.equal(2, nempty, case[1] .. " " .. table.concat(case[2], "x") .. " " .. case[3])
    end
  end)
end)

describe("segloss.data.tensors", function()
  it("builds a dataset with the documented fields", function()
    local x = T.rand(5, 2, 8, 8)
    local t = T.zeros(5, 1, 8, 8)
    t:set(2, 1, 3, 4, 1)
    local d = D.tensors(x, t, { names = { "a", "b", "c", "d", "e" } })
    assert.are.equal(5, d.n)
    assert.are.equal(5, #d)
    assert.are.equal(2, d.classes)
    assert.are.equal(2, d.dims)
    assert.are.same({ true, false, true, true, true }, d.empty)
    assert.are.equal("b", d.names[2])
    assert.are.equal(x, d.x)
    local v = D.tensors(T.rand(2, 1, 4, 8, 8), T.zeros(2, 1, 4, 8, 8))
    assert.are.equal(3, v.dims)
  end)

  it("names the offending argument, image and element", function()
    H.errors("segloss.data.tensors: t shape {5,1,8,7} does not match x {5,1,8,8}", { "expected {5,1,8,8}" },
      D.tensors, T.rand(5, 1, 8, 8), T.zeros(5, 1, 8, 7))
    H.errors("segloss.data.tensors: t shape {5,2,8,8} does not match", {}, D.tensors, T.rand(5, 1, 8, 8),
      T.zeros(5, 2, 8, 8))
    H.errors("segloss.data.tensors: x must be (N, C, H, W) or (N, C, D, H, W), got {8,8}", {}, D.tensors,
      T.rand(8, 8), T.zeros(8, 8))
    H.errors("segloss.data.tensors: x must be a segloss.Tensor, got nil", {}, D.tensors, nil, T.zeros(1, 1, 2, 2))
    local t = T.zeros(3, 1, 4, 4)
    t:set(3, 1, 2, 4, 2)
    H.errors("segloss.data.tensors: image 3: mask value 2 at {3,1,2,4} is not a class 0..1", {}, D.tensors,
      T.rand(3, 1, 4, 4), t)
    H.errors("segloss.data.tensors: image 3 (\"c\"): mask value 2", {}, D.tensors, T.rand(3, 1, 4, 4), t,
      { names = { "a", "b", "c" } })
    t:set(3, 1, 2, 4, 0.5)
    H.errors("segloss.data.tensors: image 3: mask value 0.5 at {3,1,2,4} is not a class 0..2", {}, D.tensors,
      T.rand(3, 1, 4, 4), t, { classes = 3 })
    H.errors("segloss.data.tensors: names has 2 entries for 3 images", {}, D.tensors, T.rand(3, 1, 4, 4),
      T.zeros(3, 1, 4, 4), { names = { "a", "b" } })
    H.errors("segloss.data.tensors: option classes must be an integer in 2..65536", {}, D.tensors,
      T.rand(3, 1, 4, 4), T.zeros(3, 1, 4, 4), { classes = 1 })
  end)
end)

describe("Dataset:split and :subset", function()
  local function named(n, empty_every)
    local x = images(n, 4, 4, function(i) return i end)
    local t = T.zeros(n, 1, 4, 4)
    local names = {}
    for i = 1, n do
      names[i] = "im" .. i
      if i % empty_every ~= 0 then t:set(i, 1, 1, 1, 1) end
    end
    return D.tensors(x, t, { names = names })
  end

  it("splits deterministically, disjointly and stratified by empty images", function()
    local d = named(20, 4) -- 5 empty images
    local tr, va = d:split(0.8, 3)
    local tr2, va2 = d:split(0.8, 3)
    assert.are.same(tr.names, tr2.names)
    assert.are.same(va.names, va2.names)
    assert.are.equal(16, tr.n)
    assert.are.equal(4, va.n)
    local seen, ce = {}, { [tr] = 0, [va] = 0 }
    for _, s in ipairs { tr, va } do
      for i = 1, s.n do
        assert.is_nil(seen[s.names[i]])
        seen[s.names[i]] = true
        -- the images moved with their names and masks
        assert.are.equal(tonumber(s.names[i]:sub(3)), s.x:get(i, 1, 1, 1))
        if s.empty[i] then ce[s] = ce[s] + 1 end
      end
    end
    assert.are.equal(4, ce[tr]) -- round(0.8 * 5)
    assert.are.equal(1, ce[va])
    local _, vb = d:split(0.8, 4)
    assert.are_not.same(va.names, vb.names)
    -- both sides keep an empty image even when 0.9 * 2 rounds to 2
    local tr3, va3 = named(10, 5):split(0.9, 1)
    local function has_empty(s) for i = 1, s.n do if s.empty[i] then return true end end return false end
    assert.is_true(has_empty(tr3))
    assert.is_true(has_empty(va3))
  end)

  it("takes subsets in the given order and checks the arguments", function()
    local d = named(6, 3)
    local s = d:subset { 5, 2, 5 }
    assert.are.same({ "im5", "im2", "im5" }, s.names)
    assert.are.equal(2, s.x:get(2, 1, 3, 3))
    H.errors("segloss.Dataset:subset: index 2 must be an integer in 1..6, got 7", {}, d.subset, d, { 1, 7 })
    H.errors("segloss.Dataset:subset: indices must be a non-empty list", {}, d.subset, d, {})
    H.errors("segloss.Dataset:split: frac must be a number in (0, 1), got 1", {}, d.split, d, 1)
    H.errors("segloss.Dataset:split: needs at least 2 images", {}, d:subset { 1 }.split, d:subset { 1 }, 0.5)
  end)
end)

describe("Dataset:batches", function()
  it("covers every image once per epoch, shuffled, in reused buffers", function()
    local n = 13
    local d = D.tensors(images(n, 4, 4, function(i) return i end), T.zeros(n, 1, 4, 4))
    local seen, order, bufs, sizes = {}, {}, {}, {}
    for x, t in d:batches(4, { shuffle = true, seed = 9 }) do
      sizes[#sizes + 1] = x:size(1)
      assert.are.equal(x:size(1), t:size(1))
      bufs[x] = true
      for k = 1, x:size(1) do
        local id = x:get(k, 1, 2, 2)
        assert.is_nil(seen[id])
        seen[id] = true
        order[#order + 1] = id
      end
    end
    assert.are.same({ 4, 4, 4, 1 }, sizes)
    for i = 1, n do assert.is_true(seen[i]) end
    local sorted = true
    for i = 2, n do sorted = sorted and order[i] > order[i - 1] end
    assert.is_false(sorted)
    -- one buffer for the full batches, one view for the tail, and the same on the next epoch
    local count = 0
    for _ in pairs(bufs) do count = count + 1 end
    assert.are.equal(2, count)
    for x in d:batches(4, { shuffle = true, seed = 10 }) do assert.is_true(bufs[x]) end
    -- drop_last
    local k = 0
    for x in d:batches(4, { drop_last = true }) do k = k + x:size(1) end
    assert.are.equal(12, k)
    -- same seed, same order; without a seed each epoch differs
    local function epoch(opts)
      local ids = {}
      for x in d:batches(5, opts) do for j = 1, x:size(1) do ids[#ids + 1] = x:get(j, 1, 1, 1) end end
      return ids
    end
    assert.are.same(epoch { shuffle = true, seed = 3 }, epoch { shuffle = true, seed = 3 })
    assert.are_not.same(epoch { shuffle = true }, epoch { shuffle = true })
  end)

  it("augments with flips and rotations that the mask follows, and jitters only the image", function()
    local n, s = 16, 6
    -- asymmetric images, and masks that are a different function of the same pixels
    local x = images(n, s, s, function(i, r, c) return (i * 7 + r * 13 + c * c * 3) % 17 end)
    local t = T.zeros(n, 1, s, s)
    for i = 1, n do for r = 1, s do for c = 1, s do
      if x:get(i, 1, r, c) > 8 then t:set(i, 1, r, c, 1) end
    end end end
    local d = D.tensors(x, t)
    local maps = dihedral(s, s)
    local function run(aug, jitter)
      local used = {}
      local id = 0
      for bx, bt in d:batches(4, { augment = aug, seed = 21 }) do
        for k = 1, bx:size(1) do
          id = id + 1
          local found
          for m, map in ipairs(maps) do
            if plane_matches(bt, k, t, id, map, s, s, 1, 0) then
              -- the image, through the same map, up to a * x + b
              local r1, c1 = map(1, 1)
              local r2, c2
              for rr = 1, s do for cc = 1, s do
                if not r2 and x:get(id, 1, rr, cc) ~= x:get(id, 1, r1, c1) then r2, c2 = rr, cc end
              end end
              local inv = {}
              for rr = 1, s do for cc = 1, s do
                local sr, sc = map(rr, cc)
                inv[sr .. "," .. sc] = { rr, cc }
              end end
              local p, q = inv[r1 .. "," .. c1], inv[r2 .. "," .. c2]
              local a = (bx:get(k, 1, p[1], p[2]) - bx:get(k, 1, q[1], q[2])) /
                  (x:get(id, 1, r1, c1) - x:get(id, 1, r2, c2))
              local b = bx:get(k, 1, p[1], p[2]) - a * x:get(id, 1, r1, c1)
              if plane_matches(bx, k, x, id, map, s, s, a, b) then
                found = m
                if jitter then assert(math.abs(a - 1) <= 0.2 + 1e-6 and math.abs(b) <= 0.2 + 1e-6) end
                if not jitter then assert(math.abs(a - 1) < 1e-6 and math.abs(b) < 1e-6) end
                break
              end
            end
          end
          assert(found, "sample " .. id .. " is not a flip/rotation of its image with the mask aligned")
          used[found] = true
        end
      end
      local k = 0
      for _ in pairs(used) do k = k + 1 end
      return k
    end
    assert.are.equal(1, run(false)) -- identity only
    assert(run({ scale = 0, shift = 0 }) >= 5, "few distinct transforms")
    assert(run({ flip = true, rotate = true, scale = 0.2, shift = 0.2 }, true) >= 5)
    -- jitter changes x and only x
    local bx, bt = d:batches(16, { augment = { flip = false, rotate = false }, seed = 1 })()
    assert.is_true(same_bits(bt, t))
    assert.is_false(same_bits(bx, x))
  end)

  it("skips rotations of non-square planes and flips every axis of volumes", function()
    local x = T.rand(3, 1, 3, 4, 5)
    local t = T.zeros(3, 1, 3, 4, 5)
    t:set(1, 1, 1, 1, 1, 1)
    local d = D.tensors(x, t)
    local corners = {}
    for _ = 1, 8 do
      local _, bt = d:batches(3, { augment = { scale = 0, shift = 0 } })()
      assert.are.equal(1, bt:narrow(1, 1, 1):sum())
      for a = 1, 3 do for b = 1, 4 do for c = 1, 5 do
        if bt:get(1, 1, a, b, c) == 1 then corners[a .. b .. c] = true end
      end end end
    end
    local k = 0
    for key in pairs(corners) do
      k = k + 1
      assert(key:match("^[13][14][15]$"), "a flip moves the corner to a corner, got " .. key)
    end
    assert(k >= 4)
  end)

  it("checks its arguments", function()
    local d = D.tensors(T.rand(2, 1, 4, 4), T.zeros(2, 1, 4, 4))
    H.errors("segloss.Dataset:batches: batch size must be an integer in 1..1073741824, got 0", {}, d.batches, d, 0)
    H.errors("segloss.Dataset:batches: unknown option \"shufle\"", { 'did you mean "shuffle"' }, d.batches, d, 2,
      { shufle = true })
    H.errors("segloss.Dataset:batches: option augment must be", {}, d.batches, d, 2, { augment = { flop = true } })
  end)
end)

describe("PNG files", function()
  it("reads 8-, 16- and 1-bit grey and palette PNGs written by another encoder", function()
    local g8, d8 = core.png_load(FIX .. "grey8.png")
    assert.are.equal(8, d8)
    assert.are.same({ 5, 7 }, g8:shape())
    local g16, d16 = core.png_load(FIX .. "grey16.png")
    assert.are.equal(16, d16)
    local g1 = core.png_load(FIX .. "grey1.png")
    local lab = core.png_load(FIX .. "labels.png")
    for r = 0, 4 do for c = 0, 6 do assert.are.equal((3 * r + 11 * c) % 256, g8:get(r + 1, c + 1)) end end
    for r = 0, 3 do for c = 0, 5 do
      assert.are.equal((r * 6 + c) * 4099 % 65536, g16:get(r + 1, c + 1))
    end end
    for r = 0, 2 do for c = 0, 9 do assert.are.equal((r + c) % 2, g1:get(r + 1, c + 1)) end end
    for r = 0, 5 do for c = 0, 5 do assert.are.equal((r + c) % 3, lab:get(r + 1, c + 1)) end end
  end)

  it("round-trips 8- and 16-bit images through png_save", function()
    for _, depth in ipairs { 8, 16 } do
      local hi = (1 << depth) - 1
      local v = images(1, 9, 11, function(_, r, c) return (r * 977 + c * 131) % (hi + 1) end):reshape(9, 11)
      local p = H.tmpname(".png")
      core.png_save(p, v, depth)
      local back, d = core.png_load(p)
      assert.are.equal(depth, d)
      assert.is_true(same_bits(v, back))
    end
    H.errors("segloss.core.png_save: value 256 at {1,2} is not an integer in 0..255", {}, core.png_save,
      H.tmpname(".png"), T.from { { 0, 256 } }, 8)
    H.errors("segloss.core.png_save: depth must be 8 or 16, got 12", {}, core.png_save, H.tmpname(".png"),
      T.zeros(2, 2), 12)
  end)

  it("refuses damaged, truncated, colour and missing files with the file's name", function()
    H.errors("segloss.core.png_load: '" .. FIX .. "truncated.png' is a damaged PNG file", {}, core.png_load,
      FIX .. "truncated.png")
    H.errors("segloss.core.png_load: '" .. FIX .. "badcrc.png' is a damaged PNG file", {}, core.png_load,
      FIX .. "badcrc.png")
    H.errors("segloss.core.png_load: '" .. FIX .. "notpng.png' is not a PNG file", {}, core.png_load,
      FIX .. "notpng.png")
    H.errors("segloss.core.png_load: '" .. FIX .. "rgb.png' is a colour (RGB) PNG", {}, core.png_load,
      FIX .. "rgb.png")
    H.errors("segloss.core.png_load: cannot read '" .. FIX .. "nothere.png'", { "No such file" }, core.png_load,
      FIX .. "nothere.png")
  end)
end)

describe("PNG intensities (mode \"grey\")", function()
  it("reads palette and colour PNGs as Rec. 709 luminance, grey ones unchanged", function()
    -- the expected values from the definition: Y = 0.2126 R + 0.7152 G + 0.0722 B
    local function y(r, g, b) return 0.2126 * r + 0.7152 * g + 0.0722 * b end
    local m = core.png_load(FIX .. "rgbmix.png", "grey")
    assert.are.same({ 2, 2 }, m:shape())
    assert.are.equal(10, m:get(1, 1))
    assert.are.equal(200, m:get(1, 2))
    assert.is_true(math.abs(m:get(2, 1) - y(255, 0, 0)) <= 1, m:get(2, 1))
    assert.is_true(math.abs(m:get(2, 2) - y(0, 0, 255)) <= 1, m:get(2, 2))
    local lab = core.png_load(FIX .. "labels.png", "grey")
    for r = 1, 6 do
      for c = 1, 6 do
        local k = (r + c - 2) % 3
        local want = ({ [0] = 0, y(255, 0, 0), y(0, 255, 0) })[k]
        assert.is_true(math.abs(lab:get(r, c) - want) <= 1, string.format("(%d,%d) %g", r, c, lab:get(r, c)))
      end
    end
    -- grey files read the same in both modes; 1-bit grey is scaled to 0/255
    assert.is_true(same_bits(core.png_load(FIX .. "grey8.png"), core.png_load(FIX .. "grey8.png", "grey")))
    local g1 = core.png_load(FIX .. "grey1.png", "grey")
    assert.are.equal(0, g1:get(1, 1))
    assert.are.equal(255, g1:get(1, 2))
    H.errors('segloss.core.png_load: mode must be "values" or "grey", got "gray"', {}, core.png_load,
      FIX .. "grey8.png", "gray")
    H.errors("segloss.core.png_load: '" .. FIX .. "notpng.png' is not a PNG file", {}, core.png_load,
      FIX .. "notpng.png", "grey")
  end)
end)

describe("segloss.data.mri", function()
  local function files_present()
    local f = io.open(D.MRI_DIR .. "/" .. D.MRI_FILES[1], "rb")
    if f then f:close() end
    return f ~= nil
  end

  it("finds the slices of insighttoolkit5-examples (a test package)", function()
    assert.is_true(files_present(), "install insighttoolkit5-examples (make test does)")
  end)

  it("inserts lesions exactly where the mask says, into tissue, with the contrast asked for", function()
    local base = { n = 12, size = { 48, 48 }, foreground = 0.01, empty = 0.25, noise = 0, seed = 4 }
    local function with(k, v)
      local o = {}
      for a, b in pairs(base) do o[a] = b end
      o[k] = v
      return o
    end
    local a = D.mri(with("contrast", 0.2))
    local b = D.mri(with("contrast", 0.4))
    assert.are.same({ 12, 1, 48, 48 }, a.x:shape())
    assert.is_true(same_bits(a.t, b.t)) -- the contrast moves no lesion
    local nempty, fsum, nfg = 0, 0, 0
    for i = 1, a.n do
      if a.empty[i] then nempty = nempty + 1 else fsum, nfg = fsum + a.foreground[i], nfg + 1 end
      assert.truthy(a.names[i]:find("^Brain%w+%.png @ %d+,%d+$"), a.names[i])
      for r = 1, 48 do
        for c = 1, 48 do
          local m = a.t:get(i, 1, r, c)
          local d = b.x:get(i, 1, r, c) - a.x:get(i, 1, r, c)
          if m == 0 then
            assert.are.equal(0, d) -- nothing changes outside the mask
          else
            -- inside: the lesion's extra 0.2 * (0.85 .. 1.15), and tissue beneath
            -- (the lesion-free value 2a - b above 0.2 of the slice's maximum times
            -- the gain, >= 0.9)
            assert.is_true(d >= 0.2 * 0.85 - 1e-5 and d <= 0.2 * 1.15 + 1e-5, d)
            assert.is_true(2 * a.x:get(i, 1, r, c) - b.x:get(i, 1, r, c) > 0.2 * 0.9 - 1e-5)
          end
        end
      end
    end
    assert.are.equal(3, nempty)
    local mean = fsum / nfg
    assert.is_true(mean > 0.006 and mean < 0.014, mean)
  end)

  it("is deterministic by seed, whatever the thread count", function()
    local o = { n = 6, size = { 32, 32 }, foreground = 0.01, seed = 9 }
    local a = H.with_threads(1, function() return D.mri(o) end)
    local b = H.with_threads(2, function() return D.mri(o) end)
    assert.is_true(same_bits(a.x, b.x))
    assert.is_true(same_bits(a.t, b.t))
    o.seed = 10
    local c = D.mri(o)
    assert.is_false(same_bits(a.x, c.x))
  end)

  it("dark lesions, own files, and its errors", function()
    local d = D.mri { n = 4, size = { 32, 32 }, foreground = 0.02, empty = 0, contrast = -0.3, noise = 0,
      files = { D.MRI_DIR .. "/BrainProtonDensitySlice.png" } }
    for i = 1, 4 do assert.truthy(d.names[i]:find("^BrainProtonDensitySlice%.png"), d.names[i]) end
    H.errors("segloss.data.mri: option contrast must be a number in [-1, 1], not 0", {}, D.mri, { contrast = 0 })
    H.errors("segloss.data.mri: option size must be a list of 2 integers in 16..176", {}, D.mri,
      { size = { 200, 200 } })
    H.errors("segloss.data.mri: cannot read '/nonexistent/x.png'", {}, D.mri, { files = { "/nonexistent/x.png" } })
    H.errors("segloss.data.mri: '" .. FIX .. "notpng.png' is not a PNG file", {}, D.mri,
      { dir = FIX, files = { "notpng.png" } })
    H.errors("segloss.data.mri: '" .. FIX .. "grey8.png' is 5x7, smaller than the crop size 16x16", {}, D.mri,
      { dir = FIX, files = { "grey8.png" }, size = { 16, 16 } })
    H.errors("segloss.data.mri: cannot read '" .. D.MRI_DIR .. "/nothere.png'", { "install Debian's " ..
      "insighttoolkit5-examples" }, D.mri, { files = { "nothere.png" } })
    H.errors("segloss.data.mri: unknown option \"foregrund\"", {}, D.mri, { foregrund = 0.01 })
  end)
end)

describe("segloss.data.folder", function()
  after_each(H.cleanup)

  -- writes image k (values scaled to 0..255) and its mask
  local function write_pair(dir, name, h, w, mask_fn, depth)
    local img = images(1, h, w, function(_, r, c) return (r * 17 + c * 5) % 256 end):reshape(h, w)
    local m = images(1, h, w, function(_, r, c) return mask_fn(r, c) end):reshape(h, w)
    core.png_save(dir .. "/img/" .. name, img, 8)
    core.png_save(dir .. "/msk/" .. name, m, depth or 8)
    return img, m
  end

  it("reads PNG pairs matched by name, images scaled to [0, 1], 0/255 masks as 0/1", function()
    local dir = tmpdir()
    local img = write_pair(dir, "b.png", 8, 8, function(r, c) return (r == 2 and c == 3) and 255 or 0 end)
    write_pair(dir, "a.png", 8, 8, function() return 0 end)
    local d = D.folder { images = dir .. "/img", masks = dir .. "/msk/" }
    assert.are.same({ "a.png", "b.png" }, d.names)
    assert.are.same({ true, false }, d.empty)
    assert.are.equal(1, d.t:get(2, 1, 2, 3))
    assert.are.equal(1, d.t:sum())
    assert.is_true(math.abs(d.x:get(2, 1, 4, 5) - img:get(4, 5) / 255) < 1e-7)
    local tr, va = D.folder { images = dir .. "/img", masks = dir .. "/msk", split = 0.5 }
    assert.are.equal(1, tr.n)
    assert.are.equal(1, va.n)
    rmdir(dir)
  end)

  it("reads label maps of several classes and .npy pairs", function()
    local dir = tmpdir()
    write_pair(dir, "a.png", 6, 6, function(r, c) return (r + c) % 3 end)
    T.rand(6, 6):save(dir .. "/img/b.npy")
    T.full({ 6, 6 }, 2):save(dir .. "/msk/b.npy")
    local d = D.folder { images = dir .. "/img", masks = dir .. "/msk", classes = 3 }
    assert.are.equal(3, d.classes)
    assert.are.equal(2, d.t:get(1, 1, 1, 1)) -- (1 + 1) % 3
    assert.are.equal(0, d.t:get(1, 1, 1, 2))
    assert.are.equal(2, d.t:get(2, 1, 3, 3))
    H.errors("segloss.data.folder: mask '" .. dir .. "/msk/a.png': value 2 at (1, 1) is not a class 0..1", {},
      D.folder, { images = dir .. "/img", masks = dir .. "/msk" })
    rmdir(dir)
    -- .npy stacks
    local xs, ts = H.tmpname(".npy"), H.tmpname(".npy")
    T.rand(3, 1, 4, 4):save(xs)
    T.zeros(3, 1, 4, 4):save(ts)
    assert.are.equal(3, D.folder { images = xs, masks = ts }.n)
  end)

  it("names the file in every error", function()
    local dir = tmpdir()
    write_pair(dir, "a.png", 8, 8, function() return 0 end)
    core.png_save(dir .. "/img/c.png", T.zeros(8, 8), 8)
    H.errors("segloss.data.folder: no mask for '" .. dir .. "/img/c.png' in '" .. dir .. "/msk'", {}, D.folder,
      { images = dir .. "/img", masks = dir .. "/msk" })
    core.png_save(dir .. "/msk/c.png", T.zeros(8, 7), 8)
    H.errors("segloss.data.folder: mask '" .. dir .. "/msk/c.png' is 8x7, its image '" .. dir .. "/img/c.png' 8x8",
      {}, D.folder, { images = dir .. "/img", masks = dir .. "/msk" })
    core.png_save(dir .. "/img/c.png", T.zeros(8, 7), 8)
    H.errors("segloss.data.folder: '" .. dir .. "/img/c.png' is 8x7, the images before it 8x8", {}, D.folder,
      { images = dir .. "/img", masks = dir .. "/msk" })
    os.remove(dir .. "/msk/c.png")
    local f = assert(io.open(dir .. "/msk/c.png", "wb"))
    f:write(H.readfile(FIX .. "truncated.png"))
    f:close()
    core.png_save(dir .. "/img/c.png", T.zeros(8, 8), 8)
    H.errors("segloss.data.folder: '" .. dir .. "/msk/c.png' is a damaged PNG file", {}, D.folder,
      { images = dir .. "/img", masks = dir .. "/msk" })
    H.errors("segloss.data.folder: cannot read the directory '" .. dir .. "/nothere'", {}, D.folder,
      { images = dir .. "/nothere", masks = dir .. "/msk" })
    H.errors("segloss.data.folder: options images and masks are required", {}, D.folder, { images = dir })
    rmdir(dir)
    local empty = tmpdir()
    H.errors("segloss.data.folder: no .png or .npy files in '" .. empty .. "/img'", {}, D.folder,
      { images = empty .. "/img", masks = empty .. "/msk" })
    rmdir(empty)
  end)
end)

describe("segloss.core data kernels", function()
  it("check their arguments and survive shapes far outside the image", function()
    local t = T.zeros(1, 1, 8, 8)
    assert.are.equal(0, core.data_synth_mask(t, { 0, 0, 1e300, -1e300, 1, 2, 2, 0, 1, 0, 0 }, 1))
    assert.are.equal(64, core.data_synth_mask(t, { 0, 0, 3, 3, 1, 1e200, 1e200, 0, 1, 0, 0 }, 1))
    H.errors("segloss.core.data_synth_mask: shapes must hold 11 numbers per item", {}, core.data_synth_mask, t,
      { 1, 2 }, 1)
    H.errors("segloss.core.data_synth_mask: shape 1: radii must be > 0", {}, core.data_synth_mask, t,
      { 0, 0, 3, 3, 0, 1, 1, 0, 1, 0, 0 }, 1)
    H.errors("segloss.core.data_put: a rotation needs square planes, got 8 x 4", {}, core.data_put,
      T.zeros(1, 1, 8, 4), 1, T.zeros(1, 1, 8, 4), 1, 0, 1, 1, 0)
    H.errors("segloss.core.data_put: dst shape {1,1,8,8} does not match src {1,1,8,4}", {}, core.data_put,
      T.zeros(1, 1, 8, 4), 1, T.zeros(1, 1, 8, 8), 1, 0, 0, 1, 0)
    H.errors("segloss.core.data_put: flips must be an integer in 0..3, got 4", {}, core.data_put,
      T.zeros(1, 1, 8, 8), 1, T.zeros(1, 1, 8, 8), 1, 4, 0, 1, 0)
    local a = T.zeros(2, 1, 4, 4)
    H.errors("segloss.core.data_put: src and dst must not share elements", {}, core.data_put, a, 1, a, 2, 0, 0, 1, 0)
  end)
end)
