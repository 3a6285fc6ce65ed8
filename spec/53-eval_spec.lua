-- segloss eval and segloss.experiment.eval: masks written to a temporary
-- directory as PNG and .npy, scored against numbers counted here by hand
-- (rectangles: overlaps by area; surface distances of one-pixel shifts
-- worked out voxel by voxel), the JSON equal to the table, and the errors.
local segloss = require "segloss"
local H = require "helpers"
local cjson = require "cjson"
local T = segloss.tensor
local E = require "segloss.experiment.eval"

local ENV = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q ", package.path, package.cpath)

-- runs bin/segloss; returns stdout, stderr and success
local function cli(args)
  local err = H.tmpname(".err")
  local p = assert(io.popen(ENV .. "lua5.4 bin/segloss " .. args .. " 2>" .. err))
  local out = p:read("a")
  local ok = p:close()
  return out, H.readfile(err), ok
end

local dirs = {}
local function tmpdir()
  local d = H.tmpname("")
  assert(os.execute("mkdir -p " .. d))
  dirs[#dirs + 1] = d
  return d
end

-- an H x W mask of zeros with `value` on rows r0..r1 and columns c0..c1 (1-based, inclusive)
local function rect(h, w, r0, r1, c0, c1, value, t)
  t = t or T.zeros(h, w)
  for i = r0, r1 do
    for j = c0, c1 do t:set(i, j, value or 1) end
  end
  return t
end

local function png(path, t) segloss.core.png_save(path, t, 8) end

-- the overlap metrics of two rectangles {r0, r1, c0, c1} in an h x w image, by areas
local function by_area(h, w, p, r)
  local function area(a) return math.max(0, a[2] - a[1] + 1) * math.max(0, a[4] - a[3] + 1) end
  local inter = { math.max(p[1], r[1]), math.min(p[2], r[2]), math.max(p[3], r[3]), math.min(p[4], r[4]) }
  local tp = (inter[1] <= inter[2] and inter[3] <= inter[4]) and area(inter) or 0
  local fp, fn = area(p) - tp, area(r) - tp
  local tn = h * w - tp - fp - fn
  return { dice = 2 * tp / (2 * tp + fp + fn), iou = tp / (tp + fp + fn), precision = tp / (tp + fp),
    sensitivity = tp / (tp + fn), specificity = tn / (tn + fp) }
end

local function near(want, got, what)
  for k, v in pairs(want) do assert.near(v, got[k], 1e-12, (what or "") .. " " .. k) end
end

local function decode(text)
  local v = cjson.decode(text)
  return v
end

describe("segloss eval", function()
  teardown(function()
    for _, d in ipairs(dirs) do os.execute("rm -rf " .. d) end
    H.cleanup()
  end)

  -- 6 x 8 images (diagonal 10): a 3x4 reference rectangle at rows 2..4, columns 2..5
  local R = { 2, 4, 2, 5 }
  local P_COL = { 2, 4, 3, 6 } -- shifted one column right
  local P_BIG = { 1, 5, 2, 7 } -- a larger box covering it

  local function fixture()
    local d = tmpdir()
    local pd, rd = d .. "/pred", d .. "/ref"
    assert(os.execute("mkdir -p " .. pd .. " " .. rd))
    -- a: PNG 0/255 reference, .npy 0/1 prediction shifted one column
    png(rd .. "/a.png", rect(6, 8, R[1], R[2], R[3], R[4], 255))
    rect(6, 8, P_COL[1], P_COL[2], P_COL[3], P_COL[4], 1):save(pd .. "/a.npy")
    -- b: .npy reference, PNG 0/1 prediction, a larger box
    rect(6, 8, R[1], R[2], R[3], R[4], 1):save(rd .. "/b.npy")
    png(pd .. "/b.png", rect(6, 8, P_BIG[1], P_BIG[2], P_BIG[3], P_BIG[4], 1))
    -- c: both empty; e: prediction empty, reference not
    png(pd .. "/c.png", T.zeros(6, 8))
    png(rd .. "/c.png", T.zeros(6, 8))
    png(pd .. "/e.png", T.zeros(6, 8))
    png(rd .. "/e.png", rect(6, 8, R[1], R[2], R[3], R[4], 255))
    -- files that are not masks are ignored
    local f = assert(io.open(pd .. "/notes.txt", "w"))
    f:write("not a mask\n")
    f:close()
    return pd, rd, d
  end

  it("scores two rectangles by area and one-pixel shifts by surface distances counted by hand", function()
    local pd, rd = fixture()
    local r = segloss.experiment.eval(pd .. "/a.npy", rd .. "/a.png")
    assert.equal(1, #r.images)
    local row = r.images[1]
    assert.equal("a", row.image)
    assert.same({ 6, 8 }, row.shape)
    assert.equal("none", row.empty)
    -- 12 and 12 pixels, 9 shared: dice 18/24
    near(by_area(6, 8, P_COL, R), row, "a")
    assert.near(0.75, row.dice, 1e-12)
    -- surfaces: 10 voxels each (the 3x4 box minus its 2 interior voxels);
    -- 4 voxels of each at distance 1 from the other surface, 6 at 0:
    -- assd = 8 / 20, the 95th percentile of {0 x6, 1 x4} is 1
    assert.near(0.4, row.assd, 1e-12)
    assert.near(1, row.hd95, 1e-12)
    -- the mean of one image is that image
    for _, m in ipairs(E.METRICS) do assert.equal(row[m], r.mean[m], m) end
  end)

  it("takes spacing in the order of the array's axes", function()
    local d = tmpdir()
    png(d .. "/r.png", rect(6, 8, R[1], R[2], R[3], R[4], 1))
    png(d .. "/p.png", rect(6, 8, R[1] + 1, R[2] + 1, R[3], R[4], 1)) -- one row down
    local r = segloss.experiment.eval(d .. "/p.png", d .. "/r.png", { spacing = { 3, 1 } })
    -- rows 3 apart, columns 1: from each surface, 4 voxels at 3 (the outer
    -- row), 2 at 1 (the other's interior voxels, a column from its side),
    -- 4 at 0: assd = 2 * (12 + 2) / 20; sorted {0,0,0,0,1,1,3,3,3,3}: hd95 = 3
    assert.near(1.4, r.images[1].assd, 1e-12)
    assert.near(3, r.images[1].hd95, 1e-12)
    near(by_area(6, 8, { 3, 5, 2, 5 }, R), r.images[1], "row shift")
    -- the other order gives other distances
    local r2 = segloss.experiment.eval(d .. "/p.png", d .. "/r.png", { spacing = { 1, 3 } })
    assert.near(1, r2.images[1].hd95, 1e-12)
  end)

  it("pairs directories by stem across .png and .npy, handles empty masks, and means the rows", function()
    local pd, rd = fixture()
    local r = segloss.experiment.eval(pd, rd)
    local names = {}
    for i, row in ipairs(r.images) do names[i] = row.image end
    assert.same({ "a", "b", "c", "e" }, names)
    assert.equal(pd .. "/b.png", r.images[2].pred)
    assert.equal(rd .. "/b.npy", r.images[2].ref)
    near(by_area(6, 8, P_BIG, R), r.images[2], "b")
    assert.near(12 / 30, r.images[2].precision, 1e-12)
    -- both empty: perfect; prediction empty: 0 and the diagonal sqrt(6^2 + 8^2) = 10
    local c, e = r.images[3], r.images[4]
    assert.equal("both", c.empty)
    for _, m in ipairs { "dice", "iou", "precision", "sensitivity", "specificity" } do assert.equal(1, c[m], m) end
    assert.equal(0, c.hd95)
    assert.equal(0, c.assd)
    assert.equal("pred", e.empty)
    for _, m in ipairs { "dice", "iou", "precision", "sensitivity" } do assert.equal(0, e[m], m) end
    assert.equal(1, e.specificity)
    assert.near(10, e.hd95, 1e-12)
    assert.near(10, e.assd, 1e-12)
    -- the mean row: over the four images, summed here
    local want = {}
    local a, b = by_area(6, 8, P_COL, R), by_area(6, 8, P_BIG, R)
    for _, m in ipairs { "dice", "iou", "precision", "sensitivity" } do want[m] = (a[m] + b[m] + 1 + 0) / 4 end
    want.specificity = (a.specificity + b.specificity + 1 + 1) / 4
    want.assd = (0.4 + r.images[2].assd + 0 + 10) / 4
    near(want, r.mean, "mean")
    assert.same({ pred = {}, ref = {} }, r.missing)
  end)

  it("reads a PNG mask of {0, 255} as binary and rejects any other value, naming the file", function()
    local d = tmpdir()
    png(d .. "/r.png", rect(6, 8, 2, 4, 2, 5, 255))
    png(d .. "/p255.png", rect(6, 8, 2, 4, 2, 5, 255))
    local r = segloss.experiment.eval(d .. "/p255.png", d .. "/r.png")
    assert.equal(1, r.images[1].dice)
    local bad = rect(6, 8, 2, 4, 2, 5, 255)
    bad:set(6, 8, 7)
    png(d .. "/bad.png", bad)
    H.errors("segloss.experiment.eval: '" .. d .. "/bad.png': value 7 at (6, 8) is not a class 0..1", {},
      segloss.experiment.eval, d .. "/bad.png", d .. "/r.png")
    -- {0, 1, 255}: 1 would read as 1/255
    local mixed = rect(6, 8, 2, 4, 2, 5, 255)
    mixed:set(1, 1, 1)
    png(d .. "/mixed.png", mixed)
    H.errors("segloss.experiment.eval: '" .. d .. "/mixed.png': value ", { "is not a class 0..1" },
      segloss.experiment.eval, d .. "/r.png", d .. "/mixed.png")
    -- .npy masks are taken as stored: 255 is not a class there
    rect(6, 8, 2, 4, 2, 5, 255):save(d .. "/p255.npy")
    H.errors("segloss.experiment.eval: '" .. d .. "/p255.npy': value 255 at (2, 2) is not a class 0..1", {},
      segloss.experiment.eval, d .. "/p255.npy", d .. "/r.png")
  end)

  it("thresholds probability maps and asks for a threshold without one", function()
    local d = tmpdir()
    png(d .. "/r.png", rect(6, 8, 2, 4, 2, 5, 1))
    -- 0.7 on the reference box, 0.3 on the next two columns, 0 elsewhere
    local p = rect(6, 8, 2, 4, 6, 7, 0.3, rect(6, 8, 2, 4, 2, 5, 0.7))
    p:save(d .. "/p.npy")
    local hi = segloss.experiment.eval(d .. "/p.npy", d .. "/r.png", { threshold = 0.5 })
    assert.equal(1, hi.images[1].dice)
    local lo = segloss.experiment.eval(d .. "/p.npy", d .. "/r.png", { threshold = 0.25 })
    near(by_area(6, 8, { 2, 4, 2, 7 }, R), lo.images[1], "threshold 0.25")
    assert.near(24 / 30, lo.images[1].dice, 1e-12)
    assert.equal(0.25, lo.threshold)
    H.errors("segloss.experiment.eval: '" .. d .. "/p.npy': value 0.7", { "is not a class 0..1",
      "a probability map? pass threshold" }, segloss.experiment.eval, d .. "/p.npy", d .. "/r.png")
    local q = T.zeros(6, 8)
    q:set(1, 1, 1.5)
    q:save(d .. "/q.npy")
    H.errors("segloss.experiment.eval: '" .. d .. "/q.npy': a probability map must hold values in [0, 1], got 0 .. 1.5",
      {}, segloss.experiment.eval, d .. "/q.npy", d .. "/r.png", { threshold = 0.5 })
    H.errors("segloss.experiment.eval: threshold applies to binary predictions", {},
      segloss.experiment.eval, d .. "/p.npy", d .. "/r.png", { threshold = 0.5, classes = 3 })
  end)

  it("gives label maps one row per image and class, background on request", function()
    local d = tmpdir()
    -- classes 1 and 2 as rectangles; the prediction moves class 2 by one column
    local ref = rect(6, 8, 1, 2, 1, 3, 1, rect(6, 8, 4, 6, 5, 8, 2))
    local pred = rect(6, 8, 1, 2, 1, 3, 1, rect(6, 8, 4, 6, 6, 8, 2))
    png(d .. "/r.png", ref)
    pred:save(d .. "/p.npy")
    local r = segloss.experiment.eval(d .. "/p.npy", d .. "/r.png", { classes = 3 })
    assert.equal(2, #r.images)
    assert.same({ 1, 2 }, { r.images[1].class, r.images[2].class })
    assert.equal(1, r.images[1].dice)
    -- class 2: 9 of 12 reference pixels predicted, nothing else: dice 18/21
    near(by_area(6, 8, { 4, 6, 6, 8 }, { 4, 6, 5, 8 }), r.images[2], "class 2")
    assert.near(18 / 21, r.images[2].dice, 1e-12)
    assert.same({ 1, 2 }, { r.per_class[1].class, r.per_class[2].class })
    assert.near((1 + 18 / 21) / 2, r.mean.dice, 1e-12)
    local rb = segloss.experiment.eval(d .. "/p.npy", d .. "/r.png", { classes = 3, include_background = true })
    assert.equal(3, #rb.images)
    assert.equal(0, rb.images[1].class)
    -- background: 48 - 6 - 12 = 30 reference pixels, 48 - 6 - 9 = 33 predicted, all 30 shared
    assert.near(60 / 63, rb.images[1].dice, 1e-12)
    -- 3 is not a class of 3
    local bad = pred:clone()
    bad:set(1, 8, 3)
    bad:save(d .. "/bad.npy")
    H.errors("segloss.experiment.eval: '" .. d .. "/bad.npy': value 3 at (1, 8) is not a class 0..2", {},
      segloss.experiment.eval, d .. "/bad.npy", d .. "/r.png", { classes = 3 })
  end)

  it("names the file without a partner, unless partial; names both files and shapes on a size mismatch", function()
    local pd, rd = fixture()
    rect(6, 8, 1, 1, 1, 1, 1):save(pd .. "/only_pred.npy")
    H.errors("segloss.experiment.eval: no reference for the prediction '" .. pd .. "/only_pred.npy' in '" .. rd ..
      "'", {}, segloss.experiment.eval, pd, rd)
    local r = segloss.experiment.eval(pd, rd, { partial = true })
    assert.equal(4, #r.images)
    assert.same({ pred = {}, ref = { pd .. "/only_pred.npy" } }, r.missing)
    os.remove(pd .. "/only_pred.npy")
    png(rd .. "/only_ref.png", T.zeros(6, 8))
    H.errors("segloss.experiment.eval: no prediction for the reference '" .. rd .. "/only_ref.png' in '" .. pd ..
      "'", {}, segloss.experiment.eval, pd, rd)
    r = segloss.experiment.eval(pd, rd, { partial = true })
    assert.same({ pred = { rd .. "/only_ref.png" }, ref = {} }, r.missing)
    os.remove(rd .. "/only_ref.png")
    png(rd .. "/b.png", T.zeros(6, 8))
    H.errors("segloss.experiment.eval: '" .. rd .. "/b.npy' and '" .. rd .. "/b.png' have the same stem", {},
      segloss.experiment.eval, pd, rd)
    os.remove(rd .. "/b.png")
    png(rd .. "/a.png", T.zeros(6, 7))
    H.errors("segloss.experiment.eval: the prediction '" .. pd .. "/a.npy' is 6x8 but its reference '" .. rd ..
      "/a.png' is 6x7", {}, segloss.experiment.eval, pd, rd)
    H.errors("segloss.experiment.eval: the prediction '" .. pd .. "' is a directory and the reference '" .. rd ..
      "/a.png' a file", {}, segloss.experiment.eval, pd, rd .. "/a.png")
    H.errors("segloss.experiment.eval: spacing has 3 values but '" .. pd .. "/b.png' has 2 axes", {},
      segloss.experiment.eval, pd .. "/b.png", rd .. "/b.npy", { spacing = { 1, 1, 1 } })
    H.errors("segloss.experiment.eval: unknown option", { "spacng" },
      segloss.experiment.eval, pd, rd, { spacng = { 1, 1 } })
  end)

  it("prints an aligned table with a mean row, and JSON equal to the module's table", function()
    local pd, rd = fixture()
    local out, err, ok = cli("eval " .. pd .. " " .. rd)
    assert.is_true(ok, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(6, #lines, out)
    assert.truthy(lines[1]:match("^image%s+dice%s+iou%s+precision%s+sensitivity%s+specificity%s+hd95%s+assd%s+empty$"),
      lines[1])
    assert.truthy(lines[2]:match("^a%s+0%.7500%s+0%.6000%s+0%.7500%s+0%.7500%s+0%.9167%s+1%.0000%s+0%.4000%s+%-$"),
      lines[2])
    assert.truthy(lines[4]:match("^c%s+1%.0000 .* both$"), lines[4])
    assert.truthy(lines[5]:match("^e%s+0%.0000 .*10%.0000%s+10%.0000%s+pred$"), lines[5])
    assert.truthy(lines[6]:match("^mean%s+%d"), lines[6])
    -- every column's right edge lines up
    local header_end = #lines[1]:match("^(.-assd)")
    for i = 2, #lines do
      local pos = 0
      for _ = 1, 8 do pos = (lines[i] .. " "):find("%S%s", pos + 1) end
      assert.equal(header_end, pos, lines[i])
    end
    local jout, jerr, jok = cli("eval --json " .. pd .. " " .. rd)
    assert.is_true(jok, jerr)
    local want = segloss.experiment.eval(pd, rd)
    assert.same(want, decode(jout))
    assert.equal(E.json(want), jout)
    -- --out writes the same text to the file and nothing to stdout
    local file = H.tmpname(".json")
    local o2, e2, ok2 = cli("eval --json --out " .. file .. " " .. pd .. " " .. rd)
    assert.is_true(ok2, e2)
    assert.equal("", o2)
    assert.equal(jout, H.readfile(file))
    -- label maps and a threshold through the flags
    local d = tmpdir()
    png(d .. "/r.png", rect(6, 8, 2, 4, 2, 5, 1))
    rect(6, 8, 2, 4, 6, 7, 0.3, rect(6, 8, 2, 4, 2, 5, 0.7)):save(d .. "/p.npy")
    local o3, e3, ok3 = cli("eval --json --threshold 0.25 --spacing 2,1 " .. d .. "/p.npy " .. d .. "/r.png")
    assert.is_true(ok3, e3)
    assert.same(segloss.experiment.eval(d .. "/p.npy", d .. "/r.png", { threshold = 0.25, spacing = { 2, 1 } }),
      decode(o3))
    local o4, e4, ok4 = cli("eval --classes 3 --background " .. d .. "/r.png " .. d .. "/r.png")
    assert.is_true(ok4, e4)
    assert.truthy(o4:match("^image%s+class%s+dice"), o4)
    assert.truthy(o4:find("\nmean%s+all%s+1%.0000"), o4)
  end)

  it("fails on the command line with one line naming the file, or the usage for a bad flag", function()
    local pd, rd = fixture()
    local cases = {
      { "eval --bogus " .. pd .. " " .. rd, "unknown option '--bogus'" },
      { "eval " .. pd, "missing argument 'ref'" },
      { "eval --classes 1 " .. pd .. " " .. rd, "segloss eval: --classes must be an integer >= 2, got 1" },
      { "eval --threshold 1.5 " .. pd .. " " .. rd, "segloss eval: --threshold must be a number in (0, 1), got 1.5" },
      { "eval --spacing 1,x " .. pd .. " " .. rd, "segloss eval: --spacing must be numbers separated by commas" },
      { "eval --background " .. pd .. " " .. rd, "segloss eval: --background applies to label maps" },
    }
    for _, c in ipairs(cases) do
      local _, err, ok = cli(c[1])
      assert.is_falsy(ok, c[1])
      assert.truthy(err:find(c[2], 1, true), c[1] .. ": " .. err)
    end
    local _, uerr = cli("eval --bogus " .. pd .. " " .. rd)
    assert.truthy(uerr:find("Usage: segloss eval", 1, true), uerr)
    -- a missing pair, then --partial, a size mismatch, a value that is not a class
    png(rd .. "/x.png", T.zeros(6, 8))
    local _, err, ok = cli("eval " .. pd .. " " .. rd)
    assert.is_falsy(ok)
    assert.equal("segloss eval: no prediction for the reference '" .. rd .. "/x.png' in '" .. pd ..
      "' (expected x.png or x.npy; --partial evaluates the pairs only)\n", err)
    local out
    out, err, ok = cli("eval --partial " .. pd .. " " .. rd)
    assert.is_true(ok, err)
    assert.equal("segloss eval: no prediction for '" .. rd .. "/x.png' (left out: --partial)\n", err)
    assert.falsy(out:find("\nx ", 1, true), out)
    os.remove(rd .. "/x.png")
    png(rd .. "/c.png", T.zeros(5, 8))
    _, err, ok = cli("eval " .. pd .. " " .. rd)
    assert.is_falsy(ok)
    assert.equal("segloss eval: the prediction '" .. pd .. "/c.png' is 6x8 but its reference '" .. rd ..
      "/c.png' is 5x8\n", err)
    png(rd .. "/c.png", rect(6, 8, 1, 1, 1, 1, 3))
    _, err, ok = cli("eval " .. pd .. " " .. rd)
    assert.is_falsy(ok)
    assert.equal("segloss eval: '" .. rd .. "/c.png': value 3 at (1, 1) is not a class 0..1\n", err)
    _, err, ok = cli("eval " .. pd .. " " .. rd .. "/nothing")
    assert.is_falsy(ok)
    assert.equal("segloss eval: reference '" .. rd .. "/nothing' does not exist or cannot be read\n", err)
    -- an existing file of another kind
    local txt = rd .. "/notes.txt"
    local f = assert(io.open(txt, "w"))
    f:write("x")
    f:close()
    _, err, ok = cli("eval " .. pd .. " " .. txt)
    assert.is_falsy(ok)
    assert.equal("segloss eval: reference '" .. txt .. "' is neither a directory nor a .png or .npy file\n", err)
  end)
end)
