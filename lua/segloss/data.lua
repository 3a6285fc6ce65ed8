--- Data for small-target segmentation: datasets from tensors, synthetic
-- images, folders of PNG or .npy pairs; splits, subsets and augmented
-- batches, all deterministic by seed. Documented in docs/data.md.
-- @module segloss.data
local core = require "segloss.core"
local U = require "segloss.util"

local T = core.tensor
local D = {}

-- A small generator of our own (splitmix64), seeded explicitly: the same
-- seed gives the same numbers whatever the thread count or the state of
-- math.random and segloss.seed. next() -> [0, 1); int(n) -> 1..n;
-- bits() -> a 64-bit integer.
local function rng(seed)
  local s = (math.tointeger(seed) or 0) * 0x2545F4914F6CDD1D + 0x1234567
  local g = {}
  function g.bits()
    s = s + 0x9E3779B97F4A7C15
    local z = s
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    return z ~ (z >> 31)
  end
  function g.next() return (g.bits() >> 11) * 0x1p-53 end
  function g.int(n) return 1 + math.floor(g.next() * n) end
  function g.shuffle(list)
    for i = #list, 2, -1 do
      local j = g.int(i)
      list[i], list[j] = list[j], list[i]
    end
    return list
  end
  return g
end
D._rng = rng

local Dataset = {}
Dataset.__index = Dataset
Dataset.__name = "segloss.Dataset"

-- Checks that self is a dataset (a method called with `.` instead of `:`,
-- or on something else, is an error naming the method).
local function own(self, fname)
  if getmetatable(self) ~= Dataset then
    error(fname .. ": self must be a segloss.Dataset (call d:" .. fname:match("[%w_]+$") .. "(...)), got "
      .. U.describe(self), 0)
  end
end
function Dataset.__len(d) return d.n end

local function shapestr(t) return U.shapestr(t) end

-- The label of image i in messages: "image 3" or "image 3 ('a.png')".
local function label(names, i)
  if names and names[i] then return string.format("image %d (%q)", i, names[i]) end
  return "image " .. i
end

-- A dataset from checked tensors x (N, C, S...) and t (N, 1, S...).
local function make(fname, x, t, classes, names, seed, about)
  local counts, where, value = core.data_scan(t, classes)
  if not counts then
    local n = math.tointeger(where:match("^{(%d+)"))
    error(string.format("%s: %s: mask value %s at %s is not a class 0..%d", fname, label(names, n), value,
      where, classes - 1), 0)
  end
  local n = x:size(1)
  local m = #t // n
  local empty, fraction = {}, {}
  for i = 1, n do
    empty[i] = counts[i] == 0
    fraction[i] = counts[i] / m
  end
  return setmetatable({
    x = x, t = t, n = n, classes = classes, dims = x:dim() - 2, names = names,
    empty = empty, foreground = fraction, seed = seed or 1, _epochs = 0, _buffers = {},
    about = about or { kind = "tensors" },
  }, Dataset)
end

local function is_names(v)
  if type(v) ~= "table" then return "a list of strings" end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then return "a list of strings (element " .. i .. " is not)" end
  end
end

--- A dataset from tensors: x (N, C, S...) images, t (N, 1, S...) label maps.
-- opts: classes (2), names (list of N strings), seed (the default seed of
-- batches, 1).
function D.tensors(x, t, opts)
  local fname = "segloss.data.tensors"
  opts = U.options(fname, opts, { classes = U.is.int(2, 65536), names = is_names, seed = U.is.int(0) })
  if not T.istensor(x) then error(fname .. ": x must be a segloss.Tensor, got " .. U.describe(x), 0) end
  if not T.istensor(t) then error(fname .. ": t must be a segloss.Tensor, got " .. U.describe(t), 0) end
  if x:dim() ~= 4 and x:dim() ~= 5 then
    error(string.format("%s: x must be (N, C, H, W) or (N, C, D, H, W), got %s", fname, shapestr(x)), 0)
  end
  local ok = t:dim() == x:dim() and t:size(1) == x:size(1) and t:size(2) == 1
  for a = 3, x:dim() do ok = ok and t:size(a) == x:size(a) end
  if not ok then
    error(string.format("%s: t shape %s does not match x %s (expected {%d,1,%s})", fname, shapestr(t),
      shapestr(x), x:size(1), table.concat(x:shape(), ",", 3)), 0)
  end
  if opts.names and #opts.names ~= x:size(1) then
    error(string.format("%s: names has %d entries for %d images", fname, #opts.names, x:size(1)), 0)
  end
  return make(fname, x, t, opts.classes or 2, opts.names, opts.seed)
end

--- A new dataset of the images at the given indices (copies, in that order).
function Dataset:subset(indices)
  local fname = "segloss.Dataset:subset"
  own(self, fname)
  if type(indices) ~= "table" or #indices == 0 then
    error(fname .. ": indices must be a non-empty list, got " .. U.describe(indices), 0)
  end
  local k = #indices
  local xs, ts = self.x:shape(), self.t:shape()
  xs[1], ts[1] = k, k
  local x, t = T.zeros(xs), T.zeros(ts)
  local names = self.names and {} or nil
  for j, i in ipairs(indices) do
    i = U.check_int(fname, "index " .. j, i, 1, self.n)
    x:narrow(1, j, 1):copy(self.x:narrow(1, i, 1))
    t:narrow(1, j, 1):copy(self.t:narrow(1, i, 1))
    if names then names[j] = self.names[i] end
  end
  return make(fname, x, t, self.classes, names, self.seed, self.about)
end

--- Two datasets, train and val: frac of the images with targets and frac
-- of those without go to train (at least one of each kind on each side
-- when there are two or more of that kind), the rest to val; each keeps
-- the original order. Deterministic by seed (default 1).
function Dataset:split(frac, seed)
  local fname = "segloss.Dataset:split"
  own(self, fname)
  if math.type(frac) == nil or not (frac > 0 and frac < 1) then
    error(fname .. ": frac must be a number in (0, 1), got " .. U.describe(frac), 0)
  end
  seed = seed == nil and 1 or U.check_int(fname, "seed", seed, 0, math.maxinteger)
  if self.n < 2 then error(fname .. ": needs at least 2 images, the dataset has " .. self.n, 0) end
  local g = rng(seed)
  local groups = { {}, {} }
  for i = 1, self.n do
    local grp = groups[self.empty[i] and 2 or 1]
    grp[#grp + 1] = i
  end
  local tr, va = {}, {}
  for _, grp in ipairs(groups) do
    g.shuffle(grp)
    local k = math.floor(frac * #grp + 0.5)
    if #grp >= 2 then k = math.max(1, math.min(#grp - 1, k)) end
    for j, i in ipairs(grp) do
      local side = j <= k and tr or va
      side[#side + 1] = i
    end
  end
  if #tr == 0 or #va == 0 then -- one image of each kind: move one across
    local from, to = #tr == 0 and va or tr, #tr == 0 and tr or va
    to[1] = table.remove(from)
  end
  table.sort(tr)
  table.sort(va)
  return self:subset(tr), self:subset(va)
end

local function augment_opts(v)
  if v == true or v == false then return nil end
  if type(v) ~= "table" then return "true, false or a table {flip, rotate, scale, shift}" end
  local spec = { flip = U.is.bool, rotate = U.is.bool, scale = U.is.num(0, 0.9), shift = U.is.num(0, 10) }
  for k, x in pairs(v) do
    if not spec[k] or spec[k](x) then return "a table {flip = bool, rotate = bool, scale in [0, 0.9], shift >= 0}" end
  end
end

--- An iterator over one epoch of (x, t) batches of bs images. The two
-- tensors are buffers of the dataset, overwritten by the next batch.
-- opts: shuffle (false), augment (false, true or {flip = true, rotate =
-- true, scale = 0.1, shift = 0.1}), seed (default: the dataset's seed plus
-- the number of earlier calls without a seed), drop_last (false).
function Dataset:batches(bs, opts)
  local fname = "segloss.Dataset:batches"
  own(self, fname)
  bs = U.check_int(fname, "batch size", bs, 1, 1 << 30)
  opts = U.options(fname, opts, {
    shuffle = U.is.bool, augment = augment_opts, seed = U.is.int(0), drop_last = U.is.bool })
  local seed = opts.seed
  if seed == nil then
    seed = self.seed + self._epochs
    self._epochs = self._epochs + 1
  end
  local aug = opts.augment
  if aug == true then aug = {} end
  local flip, rotate, scale, shift
  if aug then
    flip = aug.flip ~= false
    rotate = aug.rotate ~= false
    scale = aug.scale or 0.1
    shift = aug.shift or 0.1
  end
  local sp = self.x:shape()
  local square = sp[#sp] == sp[#sp - 1]
  local nflip = 1 << self.dims
  local g = rng(seed)
  local order = {}
  for i = 1, self.n do order[i] = i end
  if opts.shuffle then g.shuffle(order) end
  bs = math.min(bs, self.n)
  local buf = self._buffers[bs]
  if not buf then
    local xs, ts = self.x:shape(), self.t:shape()
    xs[1], ts[1] = bs, bs
    buf = { x = T.zeros(xs), t = T.zeros(ts), tail = {} }
    self._buffers[bs] = buf
  end
  local pos = 0
  return function()
    local r = math.min(bs, self.n - pos)
    if r <= 0 or (opts.drop_last and r < bs) then return nil end
    for k = 1, r do
      local i = order[pos + k]
      local f, rot, a, b = 0, 0, 1, 0
      if aug then
        -- always four draws per image, so that options do not shift the stream
        local u1, u2, u3, u4 = g.bits(), g.next(), g.next(), g.next()
        if flip then f = u1 % nflip end
        if rotate and square then rot = math.floor(u2 * 4) end
        a = 1 + (2 * u3 - 1) * scale
        b = (2 * u4 - 1) * shift
      end
      core.data_put(self.x, i, buf.x, k, f, rot, a, b)
      core.data_put(self.t, i, buf.t, k, f, rot, 1, 0)
    end
    pos = pos + r
    if r == bs then return buf.x, buf.t end
    local tail = buf.tail[r]
    if not tail then
      tail = { buf.x:narrow(1, 1, r), buf.t:narrow(1, 1, r) }
      buf.tail[r] = tail
    end
    return tail[1], tail[2]
  end
end

-- ------------------------------------------------------------------
-- Synthetic data

local KIND = { disc = 0, ellipse = 1, blob = 2 }

local function is_size(v)
  local want = "a list of 2 or 3 integers in 8..4096 ({H, W} or {D, H, W})"
  if type(v) ~= "table" or (#v ~= 2 and #v ~= 3) then return want end
  for _, s in ipairs(v) do
    if math.tointeger(s) == nil or s < 8 or s > 4096 then return want end
  end
end

local function is_shapes(v)
  local want = 'a non-empty list of "disc", "ellipse", "blob"'
  if type(v) ~= "table" or #v == 0 then return want end
  for _, s in ipairs(v) do if not KIND[s] then return want end end
end

-- Appends one shape (11 numbers) to list: kind, centre, radii, angle, amp, phases.
local function push_shape(list, g, kind, S, req, amp)
  local dims = #S
  local e = kind == 1 and 1.5 + g.next() or kind == 2 and 1 + 0.4 * g.next() or 1
  local r1, r2 = req * math.sqrt(e), req / math.sqrt(e)
  local c = {}
  for a = 1, dims do
    local rad = (a == 1 and dims == 3) and req or r1
    local margin = math.min(rad * 1.5 + 1, S[a] / 2)
    c[a] = margin + g.next() * (S[a] - 1 - 2 * margin)
  end
  if dims == 2 then table.insert(c, 1, 0) end
  local n = #list
  list[n + 1], list[n + 2], list[n + 3], list[n + 4] = kind, c[1], c[2], c[3]
  list[n + 5], list[n + 6], list[n + 7] = dims == 3 and req or 1, r1, r2
  list[n + 8], list[n + 9] = g.next() * math.pi, amp
  list[n + 10], list[n + 11] = g.next() * 2 * math.pi, g.next() * 2 * math.pi
end

-- radii (entries 5..7 of each shape) times s
local function scale_shapes(list, s, dims)
  for k = 0, #list // 11 - 1 do
    local o = 11 * k
    if dims == 3 then list[o + 5] = list[o + 5] * s end
    list[o + 6], list[o + 7] = list[o + 6] * s, list[o + 7] * s
  end
end

-- Exactly round(empty * n) of the n images without targets, chosen by g:
-- a set of indices.
local function empty_images(g, n, empty)
  local order = {}
  for i = 1, n do order[i] = i end
  g.shuffle(order)
  local set = {}
  for k = 1, math.floor(empty * n + 0.5) do set[order[k]] = true end
  return set
end

-- Draws 1..maxk targets of about A pixels in all into the mask ti (one
-- sample) from the generator g; returns their shapes (intensity amp
-- contrast * 0.85..1.15 each). centre(list, g), when given, moves the
-- centre of the shape just pushed (entries #list-8 .. #list-7 in 2-D).
local function place_targets(ti, g, kinds, S, A, maxk, contrast, unit, centre)
  local dims = #S
  local targets = {}
  local k = math.max(1, math.min(maxk, g.int(maxk), math.floor(A / 4)))
  local w, tot = {}, 0
  for j = 1, k do w[j] = 0.5 + g.next(); tot = tot + w[j] end
  for j = 1, k do
    push_shape(targets, g, kinds[g.int(#kinds)], S, unit(A * w[j] / tot), contrast * (0.85 + 0.3 * g.next()))
    if centre then centre(targets, g) end
  end
  -- scale the radii until the mask covers about A pixels; a scale that
  -- draws no pixel at all never wins (an image with a target must have one)
  local s, best, bestd = 1, nil, math.huge
  for _ = 1, 8 do
    local got = core.data_synth_mask(ti, targets, s)
    local d = got > 0 and math.abs(math.log(got / A)) or math.huge
    if d < bestd then best, bestd = s, d end
    if d < 0.02 then break end
    s = got == 0 and s * 1.5 or s * (A / got) ^ (1 / dims)
  end
  while not best do -- eight tries without a pixel: grow until one appears
    s = s * 1.5
    if core.data_synth_mask(ti, targets, s) > 0 then best = s end
  end
  scale_shapes(targets, best, dims)
  core.data_synth_mask(ti, targets, 1)
  return targets
end

--- Synthetic images with a few small bright targets on a shaded, textured,
-- noisy background with target-like distractors. See docs/data.md.
function D.synthetic(opts)
  local fname = "segloss.data.synthetic"
  opts = U.options(fname, opts, {
    n = U.is.int(1, 1 << 20), size = is_size, foreground = U.is.num(1e-4, 0.05), empty = U.is.num(0, 1),
    seed = U.is.int(0), shapes = is_shapes, distractors = U.is.bool, noise = U.is.num(0, 1),
    contrast = U.is.num(0, 2, true), targets = U.is.int(1, 16),
  })
  local n = opts.n or 64
  local S = opts.size or { 64, 64 }
  local dims = #S
  local fg = opts.foreground or 0.001
  local seed = opts.seed or 1
  local kinds = {}
  for i, s in ipairs(opts.shapes or { "disc", "ellipse", "blob" }) do kinds[i] = KIND[s] end
  local distractors = opts.distractors ~= false
  local noise = opts.noise or 0.08
  local contrast = opts.contrast or 0.35
  local maxk = opts.targets or 3
  local P = 1
  for _, s in ipairs(S) do P = P * s end
  local shape = { n, 1, table.unpack(S) }
  local x, t = T.zeros(shape), T.zeros(shape)
  local g = rng(seed)
  local is_empty = empty_images(g, n, opts.empty or 0.2)
  local unit = dims == 3 and function(a) return (3 * a / (4 * math.pi)) ^ (1 / 3) end
      or function(a) return math.sqrt(a / math.pi) end
  -- each image from its own streams: targets (g) apart from distractors and
  -- background (gd), so that options of one never move the other
  local root = g.bits()
  for i = 1, n do
    g = rng(root + 2 * i)
    local gd = rng(root + 2 * i + 1)
    local xi, ti = x:narrow(1, i, 1), t:narrow(1, i, 1)
    local A = fg * P
    local typical = unit(A / 2)
    local targets = {}
    if not is_empty[i] then targets = place_targets(ti, g, kinds, S, A, maxk, contrast, unit) end
    local shapes = targets
    if distractors then
      shapes = table.move(targets, 1, #targets, 1, {})
      for _ = 1, 2 + gd.int(3) do
        local kind, u = kinds[gd.int(#kinds)], gd.next()
        if u < 0.45 then -- as small, fainter
          push_shape(shapes, gd, kind, S, typical * (0.7 + 0.7 * gd.next()), contrast * (0.3 + 0.25 * gd.next()))
        elseif u < 0.75 then -- as bright, larger
          push_shape(shapes, gd, kind, S, typical * (2.2 + 1.5 * gd.next()), contrast * (0.6 + 0.3 * gd.next()))
        else -- dark
          push_shape(shapes, gd, kind, S, typical * (0.8 + 1.2 * gd.next()), -contrast * (0.5 + 0.5 * gd.next()))
        end
      end
    end
    local waves = {}
    for k = 1, 7 do
      local lowf = k <= 3
      local fmax = lowf and 1.5 or 9
      local o = #waves
      for a = 1, 3 do waves[o + a] = (a == 1 and dims == 2) and 0 or (2 * gd.next() - 1) * fmax end
      waves[o + 4] = gd.next() * 2 * math.pi
      waves[o + 5] = lowf and 0.05 + 0.07 * gd.next() or 0.01 + 0.02 * gd.next()
      waves[o + 6] = 0
    end
    core.data_synth_image(xi, 0.35, waves, shapes, noise, gd.bits())
  end
  return make(fname, x, t, 2, nil, seed, { kind = "synthetic", n = n, size = S, foreground = fg,
    empty = opts.empty or 0.2, seed = seed, shapes = opts.shapes or { "disc", "ellipse", "blob" },
    distractors = distractors, noise = noise, contrast = contrast, targets = maxk })
end

-- ------------------------------------------------------------------
-- Lesions inserted into real MRI slices

--- Where the MRI slices of Debian's insighttoolkit5-examples are, and the
-- ones segloss.data.mri uses by default: proton-density and T1-weighted
-- axial slices and a T1 mid-sagittal slice of one head (8-bit PNG).
D.MRI_DIR = "/usr/share/doc/insighttoolkit5-examples/examples/Data"
D.MRI_FILES = { "BrainProtonDensitySlice.png", "BrainT1Slice.png", "BrainMidSagittalSlice.png" }

-- share of a crop that must be tissue, and what counts as tissue: above
-- this share of the slice's maximum
local MRI_TISSUE, MRI_LEVEL = 0.6, 0.2

-- One slice, ready for crops of H x W: intensities scaled to 0..1, the
-- tissue mask, and the crop origins (1-based) whose tissue share is at least
-- MRI_TISSUE.
local function mri_slice(fname, path, H, W)
  local ok, img = pcall(core.png_load, path, "grey")
  if not ok then
    local hint = ""
    if not io.open(path, "rb") and path:find(D.MRI_DIR, 1, true) then
      hint = " (install Debian's insighttoolkit5-examples, or give files = {...})"
    end
    error(string.format("%s: %s%s", fname, (tostring(img):gsub("^segloss%.core%.png_load: ", "")), hint), 0)
  end
  local R, C = img:size(1), img:size(2)
  if R < H or C < W then
    error(string.format("%s: '%s' is %dx%d, smaller than the crop size %dx%d", fname, path, R, C, H, W), 0)
  end
  local hi = img:max()
  if hi ~= hi or hi <= 0 then error(string.format("%s: '%s' is black", fname, path), 0) end
  img:div(hi)
  local v = img:totable()
  local tissue = T.zeros({ R, C })
  -- integral image of the tissue mask: S[r][c] = tissue pixels above and left
  local S = {}
  S[0] = {}
  for c = 0, C do S[0][c] = 0 end
  for r = 1, R do
    local row, prev, acc = v[r], S[r - 1], 0
    local cur = { [0] = 0 }
    for c = 1, C do
      local m = row[c] > MRI_LEVEL and 1 or 0
      if m == 1 then tissue:set(r, c, 1) end
      acc = acc + m
      cur[c] = prev[c] + acc
    end
    S[r] = cur
  end
  local origins, need = {}, MRI_TISSUE * H * W
  for r = 1, R - H + 1 do
    for c = 1, C - W + 1 do
      local k = S[r + H - 1][c + W - 1] - S[r - 1][c + W - 1] - S[r + H - 1][c - 1] + S[r - 1][c - 1]
      if k >= need then origins[#origins + 1] = r * 65536 + c end
    end
  end
  if #origins == 0 then
    error(string.format("%s: '%s' has no %dx%d crop that is %d%% tissue", fname, path, H, W, MRI_TISSUE * 100), 0)
  end
  return { img = img, tissue = tissue, origins = origins, path = path }
end

--- Small synthetic lesions inserted into crops of real MRI slices. See
-- docs/data.md.
function D.mri(opts)
  local fname = "segloss.data.mri"
  opts = U.options(fname, opts, {
    n = U.is.int(1, 1 << 20), size = function(v)
      local want = "a list of 2 integers in 16..176 ({H, W})"
      if type(v) ~= "table" or #v ~= 2 then return want end
      for _, x in ipairs(v) do if math.tointeger(x) == nil or x < 16 or x > 176 then return want end end
    end,
    foreground = U.is.num(1e-4, 0.05), empty = U.is.num(0, 1), seed = U.is.int(0), shapes = is_shapes,
    contrast = function(v)
      if math.type(v) == nil or v ~= v or v == 0 or v < -1 or v > 1 then return "a number in [-1, 1], not 0" end
    end,
    noise = U.is.num(0, 1), targets = U.is.int(1, 16), files = is_names,
    dir = function(v) if type(v) ~= "string" or v == "" then return "a directory name" end end,
  })
  local n = opts.n or 64
  local S = opts.size or { 64, 64 }
  local H, W = S[1], S[2]
  local fg = opts.foreground or 0.005
  local seed = opts.seed or 1
  local kinds = {}
  for i, sh in ipairs(opts.shapes or { "disc", "ellipse", "blob" }) do kinds[i] = KIND[sh] end
  local contrast = opts.contrast or 0.25
  local noise = opts.noise or 0.02
  local maxk = opts.targets or 3
  local dir = opts.dir or D.MRI_DIR
  local files = opts.files or D.MRI_FILES
  if #files == 0 then error(fname .. ": option files must not be empty", 0) end
  local slices = {}
  for i, f in ipairs(files) do
    slices[i] = mri_slice(fname, f:sub(1, 1) == "/" and f or (dir:gsub("/+$", "")) .. "/" .. f, H, W)
  end
  local shape = { n, 1, H, W }
  local x, t = T.zeros(shape), T.zeros(shape)
  local stage, stage_t = T.zeros({ 1, 1, H, W }), T.zeros({ 1, 1, H, W })
  local tis, extra = T.zeros({ 1, 1, H, W }), T.zeros({ 1, 1, H, W })
  local plane, plane_t = stage:reshape(H, W), stage_t:reshape(H, W)
  local g = rng(seed)
  local is_empty = empty_images(g, n, opts.empty or 0.2)
  local unit = function(a) return math.sqrt(a / math.pi) end
  local A = fg * H * W
  local names = {}
  local root = g.bits()
  for i = 1, n do
    g = rng(root + 2 * i)
    local gd = rng(root + 2 * i + 1)
    -- the background: a crop of a slice, flipped and rotated, its gain jittered
    local sl = slices[gd.int(#slices)]
    local o = sl.origins[gd.int(#sl.origins)]
    local r0, c0 = o // 65536, o % 65536
    plane:copy(sl.img:narrow(1, r0, H):narrow(2, c0, W))
    plane_t:copy(sl.tissue:narrow(1, r0, H):narrow(2, c0, W))
    local flips = gd.int(4) - 1
    local rot = H == W and gd.int(4) - 1 or 0
    local gain = 0.9 + 0.2 * gd.next()
    local xi, ti = x:narrow(1, i, 1), t:narrow(1, i, 1)
    core.data_put(stage, 1, x, i, flips, rot, gain, 0)
    core.data_put(stage_t, 1, tis, 1, flips, rot, 1, 0)
    names[i] = string.format("%s @ %d,%d", sl.path:match("[^/]*$"), r0, c0)
    -- lesions in tissue: centres drawn among tissue pixels away from the
    -- border; the draw that keeps the most lesion inside tissue wins
    local targets = {}
    if not is_empty[i] then
      local cand, margin = {}, math.max(2, math.ceil(unit(A / 2) * 1.5))
      local tv = tis:reshape(H, W):totable()
      for r = 1 + margin, H - margin do
        for c = 1 + margin, W - margin do
          if tv[r][c] > 0 then cand[#cand + 1] = (r - 1) * 65536 + (c - 1) end
        end
      end
      local centre = #cand > 0 and function(list, gg)
        local p = cand[gg.int(#cand)]
        list[#list - 7], list[#list - 6] = p // 65536, p % 65536
      end or nil
      local best, bestin = nil, -1
      for _ = 1, 6 do
        local tg = place_targets(ti, g, kinds, S, A, maxk, contrast, unit, centre)
        local total = ti:sum()
        local inside = total > 0 and ti:dot(tis) / total or 0
        if inside > bestin then best, bestin = tg, inside end
        if inside >= 0.95 then break end
      end
      targets = best
      core.data_synth_mask(ti, targets, 1)
      -- the lesion only where there is tissue: the mask is what was changed
      ti:mul(tis)
      if ti:sum() == 0 then core.data_synth_mask(ti, targets, 1) end
    end
    -- intensity: lesions added (times the tissue mask, like the labels), then noise
    core.data_synth_image(extra, 0, {}, targets, 0, gd.bits())
    extra:mul(ti)
    xi:add(extra)
    if noise > 0 then
      core.data_synth_image(extra, 0, {}, {}, noise, gd.bits())
      xi:add(extra)
    end
  end
  return make(fname, x, t, 2, names, seed, { kind = "mri", n = n, size = S, foreground = fg,
    empty = opts.empty or 0.2, seed = seed, shapes = opts.shapes or { "disc", "ellipse", "blob" },
    contrast = contrast, noise = noise, targets = maxk, files = files })
end

-- ------------------------------------------------------------------
-- Folders

local function ext(name) return (name:match("%.([%w]+)$") or ""):lower() end
local function stem(name) return name:match("^(.*)%.[%w]+$") or name end

-- An image file as a tensor {1, 1, S...} of raw values, and the PNG bit depth (or nil).
local function read_file(fname, path)
  local ok, v, depth
  if ext(path) == "png" then
    ok, v, depth = pcall(core.png_load, path)
  else
    ok, v = pcall(T.load, path)
  end
  if not ok then
    error(string.format("%s: %s", fname, tostring(v):gsub("^segloss%.[%w_.:]+: ", "")), 0)
  end
  if v:dim() ~= 2 and v:dim() ~= 3 then
    error(string.format("%s: '%s' must hold a 2-D image or a 3-D volume, got %s", fname, path, U.shapestr(v)), 0)
  end
  local s = v:shape()
  return v:reshape(1, 1, table.unpack(s)), depth
end
D._read_file = read_file -- also segloss eval's reader

-- Do a and b have the same shape?
local function same_shape(a, b)
  if a:dim() ~= b:dim() then return false end
  for i = 1, a:dim() do if a:size(i) ~= b:size(i) then return false end end
  return true
end

local function is_dir(v)
  if type(v) ~= "string" or v == "" then return "a directory (or .npy file) name" end
end

--- A dataset from the user's files. See docs/data.md.
function D.folder(opts)
  local fname = "segloss.data.folder"
  opts = U.options(fname, opts, {
    images = is_dir, masks = is_dir, classes = U.is.int(2, 65536), split = U.is.num(0, 1, true, true),
    seed = U.is.int(0) })
  if not opts.images or not opts.masks then error(fname .. ": options images and masks are required", 0) end
  local classes = opts.classes or 2
  local topts = { classes = classes, seed = opts.seed }
  local data
  if ext(opts.images) == "npy" then
    local ok, x = pcall(T.load, opts.images)
    local ok2, t = pcall(T.load, opts.masks)
    if not ok or not ok2 then
      error(fname .. ": " .. tostring(ok and t or x):gsub("^segloss%.[%w_.:]+: ", ""), 0)
    end
    data = D.tensors(x, t, topts)
  else
    local dirs = { (opts.images:gsub("/+$", "")), (opts.masks:gsub("/+$", "")) }
    local lists = {}
    for k, dir in ipairs(dirs) do
      local ok, names = pcall(core.data_listdir, dir)
      if not ok then error(fname .. ": " .. tostring(names):gsub("^segloss%.[%w_.:]+: ", ""), 0) end
      local found = {}
      for _, nm in ipairs(names) do
        if ext(nm) == "png" or ext(nm) == "npy" then found[#found + 1] = nm end
      end
      table.sort(found)
      lists[k] = found
    end
    if #lists[1] == 0 then error(string.format("%s: no .png or .npy files in '%s'", fname, dirs[1]), 0) end
    local masks = {}
    for _, nm in ipairs(lists[2]) do
      local st = stem(nm)
      if not masks[st] or nm:lower():match("%.png$") then masks[st] = nm end
    end
    local n = #lists[1]
    local x, t, S
    for i, nm in ipairs(lists[1]) do
      local ipath = dirs[1] .. "/" .. nm
      local mname = masks[stem(nm)]
      if not mname then
        error(string.format("%s: no mask for '%s' in '%s' (expected %s.png or %s.npy)", fname, ipath, dirs[2],
          stem(nm), stem(nm)), 0)
      end
      local mpath = dirs[2] .. "/" .. mname
      local img, depth = read_file(fname, ipath)
      local msk, mdepth = read_file(fname, mpath)
      if not same_shape(img, msk) then
        error(string.format("%s: mask '%s' is %s, its image '%s' %s", fname, mpath,
          table.concat(msk:shape(), "x", 3), ipath, table.concat(img:shape(), "x", 3)), 0)
      end
      if not x then
        S = img:shape()
        S[1] = n
        x, t = T.zeros(S), T.zeros(S)
      elseif not same_shape(img, x:narrow(1, 1, 1)) then
        error(string.format("%s: '%s' is %s, the images before it %s; all images must have one size", fname, ipath,
          table.concat(img:shape(), "x", 3), table.concat(S, "x", 3)), 0)
      end
      if depth then img = img / ((1 << depth) - 1) end
      -- a binary PNG mask stored as 0 / 255 (or 0 / 65535) reads as 0 / 1
      if mdepth and classes == 2 and msk:max() == (1 << mdepth) - 1 and msk:max() > 1 then
        msk = msk / msk:max()
      end
      local counts, where, value = core.data_scan(msk, classes)
      if not counts then
        local c = {}
        for v in where:gmatch("%d+") do c[#c + 1] = v end
        error(string.format("%s: mask '%s': value %s at (%s) is not a class 0..%d", fname, mpath, value,
          table.concat(c, ", ", 3), classes - 1), 0)
      end
      x:narrow(1, i, 1):copy(img)
      t:narrow(1, i, 1):copy(msk)
    end
    topts.names = lists[1]
    data = D.tensors(x, t, topts)
  end
  data.about = { kind = "folder", images = opts.images, masks = opts.masks, classes = classes }
  if opts.split then return data:split(opts.split, opts.seed) end
  return data
end

return D
