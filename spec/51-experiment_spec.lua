-- segloss.experiment: outputs, summary = mean/std of the runs, resume,
-- shards merged = unsharded, bit-identical reruns, well-formed SVG/HTML.
local segloss = require "segloss"
local cjson = require "cjson"
local T = segloss.tensor
local E = segloss.experiment

-- A dataset of the data contract (segloss.data) built from tensors: fields
-- x, t, n, classes, dims, empty; split(frac, seed); batches(bs, {shuffle, seed}).
local dataset
local function make(x, t)
  local n = x:size(1)
  local ds = { x = x, t = t, n = n, classes = 2, dims = x:dim() - 2, empty = {} }
  for i = 1, n do ds.empty[i] = t:narrow(1, i, 1):sum() == 0 end
  function ds.split(self, frac, _)
    local k = math.floor(self.n * frac + 0.5)
    return dataset(self.x:narrow(1, 1, k):clone(), self.t:narrow(1, 1, k):clone()),
      dataset(self.x:narrow(1, k + 1, self.n - k):clone(), self.t:narrow(1, k + 1, self.n - k):clone())
  end
  function ds.batches(self, bs, o)
    -- a permutation from the seed (a tiny LCG: independent of the library's PRNG)
    local order = {}
    for i = 1, self.n do order[i] = i end
    if o and o.shuffle then
      local s = (o.seed or 1) % 2147483647 + 1
      for i = self.n, 2, -1 do
        s = (s * 48271) % 2147483647
        local j = s % i + 1
        order[i], order[j] = order[j], order[i]
      end
    end
    local b = 0
    return function()
      if b * bs >= self.n then return nil end
      local m = math.min(bs, self.n - b * bs)
      local xs, ts = T.zeros(m, self.x:size(2), self.x:size(3), self.x:size(4)),
        T.zeros(m, 1, self.t:size(3), self.t:size(4))
      for i = 1, m do
        local src = order[b * bs + i]
        xs:narrow(1, i, 1):copy(self.x:narrow(1, src, 1))
        ts:narrow(1, i, 1):copy(self.t:narrow(1, src, 1))
      end
      b = b + 1
      return xs, ts
    end
  end
  return ds
end
dataset = make

-- 12 images of 16×16: noise, one bright 3×3 square in 9 of them (3 empty)
local function tiny()
  segloss.seed(7)
  local n, S = 12, 16
  local x, t = T.randn(n, 1, S, S) * 0.3, T.zeros(n, 1, S, S)
  for i = 1, n do
    if i % 4 ~= 0 then
      local cy, cx = 2 + (i * 5) % 11, 2 + (i * 3) % 11
      for y = cy, cy + 2 do
        for xx = cx, cx + 2 do
          x:set(i, 1, y, xx, x:get(i, 1, y, xx) + 1.5)
          t:set(i, 1, y, xx, 1)
        end
      end
    end
  end
  return dataset(x, t)
end

local tmp = os.tmpname()
os.remove(tmp)
local ROOT = tmp .. "-segloss-exp"
local function dir(name) return ROOT .. "/" .. name end

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local DATA = tiny()
local LOSSES = { "bce", "dice", { "bce", pos_weight = "auto" } }
local IDS = { "bce", "dice", "bce_pos_weight=auto" }
local function opts(out, extra)
  local o = { data = DATA, model = { base = 4, depth = 1, norm = "batch" }, losses = LOSSES, epochs = 2,
    seeds = { 1, 2 }, batch = 4, lr = 3e-3, out = out, progress = false }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- a tiny XML check: balanced tags, quoted attributes, one root element
local function well_formed(s)
  s = s:gsub("<!%-%-.-%-%->", ""):gsub("<%?.-%?>", ""):gsub("<!DOCTYPE[^>]*>", "")
  local stack, roots = {}, 0
  for close, name, attrs in s:gmatch("<(/?)([%w:_-]+)([^>]*)>") do
    local body = attrs:gsub("/$", "")
    local selfclose = attrs:sub(-1) == "/" and "/" or ""
    -- every attribute name="value"
    local rest = body:gsub('%s+[%w:_-]+="[^"]*"', "")
    assert(rest:match("^%s*$"), "bad attributes in <" .. name .. attrs .. ">")
    if close == "/" then
      assert(stack[#stack] == name, "</" .. name .. "> closes <" .. tostring(stack[#stack]) .. ">")
      stack[#stack] = nil
    elseif selfclose == "" then
      if #stack == 0 then roots = roots + 1 end
      stack[#stack + 1] = name
    end
  end
  assert(#stack == 0, "unclosed <" .. tostring(stack[#stack]) .. ">")
  return roots
end

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

describe("segloss.experiment", function()
  local first -- the result of the reference run

  setup(function()
    os.execute("rm -rf '" .. ROOT .. "' && mkdir -p '" .. ROOT .. "'")
    first = E.run(opts(dir("a")))
  end)
  teardown(function() os.execute("rm -rf '" .. ROOT .. "'") end)

  it("writes every output, and they parse", function()
    assert.are.equal(6, #first.trained)
    for _, id in ipairs(IDS) do
      for _, s in ipairs { 1, 2 } do
        local rd = dir("a") .. "/runs/" .. id .. "-s" .. s
        local rec = cjson.decode((assert(read(rd .. "/run.json"), rd)))
        assert.is_true(rec.complete)
        assert.are.equal(2, #rec.curves)
        assert.are.equal(s, rec.config.seed)
        for _, k in ipairs { "dice", "iou", "precision", "sensitivity", "specificity", "hd95", "assd",
          "fp_rate_empty" } do
          assert.is_number(rec.final[k], k)
          assert.is_number(rec.best[k], k)
        end
        assert.is_true(rec.best.dice >= rec.final.dice)
        assert.truthy(read(rd .. "/best.npz"))
        local csv = read(rd .. "/curves.csv")
        assert.are.equal(3, count(csv, "\n"))
        assert.truthy(csv:find("^epoch,train_loss,val_loss,dice,"))
        -- the checkpoint loads
        local net = segloss.nn.load(rd .. "/best.npz")
        assert.truthy(net)
      end
    end
    for _, f in ipairs { "summary.json", "summary.csv", "report.html", "train_loss.svg", "val_dice.svg",
      "final_metrics.svg", "final_distances.svg" } do
      assert.truthy(read(dir("a") .. "/" .. f), f)
    end
    local sum = cjson.decode(read(dir("a") .. "/summary.json"))
    assert.are.equal(3, #sum.losses)
    assert.are.equal(7, count(read(dir("a") .. "/summary.csv"), "\n")) -- header + 3 losses × final, best
  end)

  it("the false-positive rate on empty images counts the empty validation images with a prediction", function()
    local _, val = DATA:split(0.8, 1)
    local n_empty = 0
    for _, e in ipairs(val.empty) do if e then n_empty = n_empty + 1 end end
    assert.is_true(n_empty > 0)
    local rec = cjson.decode(read(dir("a") .. "/runs/bce-s1/run.json"))
    local fp = rec.final.fp_rate_empty * n_empty
    assert.is_true(math.abs(fp - math.floor(fp + 0.5)) < 1e-12)
    assert.are.equal(n_empty, rec.final.empty_images)
    assert.are.equal(val.n - n_empty, rec.final.target_images)
  end)

  it("the metrics are means over the validation images with a target, from the kept checkpoint", function()
    local _, val = DATA:split(0.8, 1)
    for _, id in ipairs { "bce-s1", "dice-s2" } do
      local rec = cjson.decode(read(dir("a") .. "/runs/" .. id .. "/run.json"))
      local net = segloss.nn.load(dir("a") .. "/runs/" .. id .. "/best.npz")
      net:evaluate()
      local r = segloss.metrics.evaluate(net:forward(val.x), val.t, { activation = "sigmoid", threshold = 0.5 })
      local sums, n, fp, ne = {}, 0, 0, 0
      for i, row in ipairs(r.values) do
        if val.t:narrow(1, i, 1):sum() > 0 then
          n = n + 1
          for _, k in ipairs { "dice", "iou", "sensitivity", "hd95" } do sums[k] = (sums[k] or 0) + row[k] end
        else
          ne = ne + 1
          -- anything predicted on an image without target is a false positive
          local y = net:forward(val.x:narrow(1, i, 1))
          local any = false
          for _, v in ipairs(y:reshape(-1):totable()) do any = any or v >= 0 end
          if any then fp = fp + 1 end
        end
      end
      assert.is_true(n > 0 and ne > 0)
      for k, v in pairs(sums) do
        assert.is_true(math.abs(rec.best[k] - v / n) <= 1e-9 * math.max(1, math.abs(v / n)),
          string.format("%s %s: %.17g vs %.17g", id, k, rec.best[k], v / n))
      end
      assert.are.equal(fp / ne, rec.best.fp_rate_empty)
    end
  end)

  it("the summary holds the mean and sample std over seeds of every run's numbers", function()
    local sum = cjson.decode(read(dir("a") .. "/summary.json"))
    for i, id in ipairs(IDS) do
      local e = sum.losses[i]
      assert.are.equal(id, e.loss)
      for _, at in ipairs { "final", "best" } do
        for _, k in ipairs { "dice", "iou", "precision", "sensitivity", "specificity", "hd95", "assd",
          "fp_rate_empty" } do
          local a = cjson.decode(read(dir("a") .. "/runs/" .. id .. "-s1/run.json"))[at][k]
          local b = cjson.decode(read(dir("a") .. "/runs/" .. id .. "-s2/run.json"))[at][k]
          local mean = (a + b) / 2
          local std = math.abs(a - b) / math.sqrt(2) -- sample std of two numbers
          assert.is_true(math.abs(e[at][k].mean - mean) <= 1e-12 * math.max(1, math.abs(mean)), k)
          assert.is_true(math.abs(e[at][k].std - std) <= 1e-12 * math.max(1, std), k)
        end
      end
    end
  end)

  it("resume skips finished runs and reruns an incomplete one", function()
    E.run(opts(dir("r")))
    local runs = dir("r") .. "/runs/"
    local before = read(runs .. "dice-s2/run.json")
    -- an interrupted run: its run.json says complete = false
    local rec = read(runs .. "bce-s1/run.json"):gsub('"complete": true', '"complete": false')
    local f = assert(io.open(runs .. "bce-s1/run.json", "wb"))
    f:write(rec)
    f:close()
    os.remove(runs .. "dice-s1/run.json") -- a run that never wrote its record
    local r = E.run(opts(dir("r")))
    table.sort(r.trained)
    assert.are.same({ "bce-s1", "dice-s1" }, r.trained)
    assert.are.equal(4, #r.skipped)
    assert.are.equal(before, read(runs .. "dice-s2/run.json"))
    assert.truthy(read(runs .. "bce-s1/run.json"):find('"complete": true', 1, true))
    -- resume = false trains everything again
    local r2 = E.run(opts(dir("r"), { resume = false, losses = { "dice" }, seeds = { 1 } }))
    assert.are.same({ "dice-s1" }, r2.trained)
  end)

  it("two identical runs write byte-identical run.json and summary", function()
    E.run(opts(dir("b")))
    for _, id in ipairs(IDS) do
      for _, s in ipairs { 1, 2 } do
        local p = "/runs/" .. id .. "-s" .. s .. "/run.json"
        assert.are.equal(read(dir("a") .. p), read(dir("b") .. p), p)
      end
    end
    -- and the seed matters (else the comparison above would prove nothing)
    assert.are_not.equal(read(dir("a") .. "/runs/dice-s1/run.json"):gsub('"seed": 1', ""),
      read(dir("a") .. "/runs/dice-s2/run.json"):gsub('"seed": 2', ""))
    assert.are.equal(read(dir("a") .. "/summary.json"), read(dir("b") .. "/summary.json"))
    assert.are.equal(read(dir("a") .. "/summary.csv"), read(dir("b") .. "/summary.csv"))
  end)

  it("one thread gives the same run.json as several", function()
    local H = require "helpers"
    H.with_threads(1, function() E.run(opts(dir("t1"))) end)
    for _, id in ipairs(IDS) do
      local p = "/runs/" .. id .. "-s1/run.json"
      assert.are.equal(read(dir("a") .. p), read(dir("t1") .. p), p)
    end
  end)

  it("three shards are disjoint, cover the grid, and merged give the unsharded summary", function()
    local seen = {}
    for k = 1, 3 do
      local r = E.run(opts(dir("shard" .. k), { shard = k .. "/3" }))
      assert.is_nil(r.summary)
      assert.are.equal(2, #r.trained)
      for _, id in ipairs(r.trained) do
        assert.is_nil(seen[id], id .. " in two shards")
        seen[id] = true
      end
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(6, n)
    local m = E.merge({ dir("shard1"), dir("shard2"), dir("shard3") }, dir("merged"))
    assert.are.equal(6, #m.runs)
    assert.are.equal(read(dir("a") .. "/summary.json"), read(dir("merged") .. "/summary.json"))
    assert.are.equal(read(dir("a") .. "/summary.csv"), read(dir("merged") .. "/summary.csv"))
    assert.are.equal(read(dir("a") .. "/report.html"), read(dir("merged") .. "/report.html"))
    -- a missing shard is an error naming the missing runs
    local ok, err = pcall(E.merge, { dir("shard1"), dir("shard2") }, dir("partial"))
    assert.is_false(ok)
    assert.truthy(err:find("segloss.experiment.merge: 2 of the grid's runs are missing", 1, true), err)
  end)

  it("writes well-formed SVG and HTML with one line per loss", function()
    for _, name in ipairs { "train_loss", "val_dice" } do
      local svg = read(dir("a") .. "/" .. name .. ".svg")
      assert.are.equal(1, well_formed(svg))
      assert.truthy(svg:find("^<svg xmlns=\"http://www.w3.org/2000/svg\""))
      assert.are.equal(3, count(svg, "<polyline class=\"series\""))
      for _, id in ipairs(IDS) do
        assert.are.equal(1, count(svg, '<polyline class="series" data%-loss="' .. id:gsub("%p", "%%%0") .. '"'), id)
        assert.truthy(svg:find('class="legend" data-loss="' .. id .. '"', 1, true), id)
      end
      assert.is_true(count(svg, 'class="ytick"') >= 3)
      assert.are.equal(2, count(svg, 'class="xtick"')) -- epochs 1 and 2
    end
    local bars = read(dir("a") .. "/final_metrics.svg")
    assert.are.equal(1, well_formed(bars))
    assert.are.equal(3, count(bars, '<g class="series"'))
    assert.is_true(count(bars, 'class="err"') >= 1) -- error bars (std over two seeds)
    local html = read(dir("a") .. "/report.html")
    assert.truthy(html:find("^<!DOCTYPE html>"))
    assert.are.equal(1, well_formed((html:gsub("<meta[^>]*>", ""))))
    assert.are.equal(4, count(html, "<svg "))
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("src=", 1, true))
    assert.is_nil(html:find("href=", 1, true))
  end)

  it("trains a grid of data settings: runs, summary, CSV, plots and report per setting", function()
    local built = {}
    local function setting(name, shift)
      return { name = name, data = function()
        built[name] = (built[name] or 0) + 1
        local d = tiny()
        d.x:add(shift)
        return d
      end }
    end
    local o = opts(dir("grid"), { data = { setting("a", 0), setting("b-2", 0.5) }, losses = { "bce", "dice" },
      seeds = { 1 } })
    local r = E.run(o)
    assert.are.same({ a = 1, ["b-2"] = 1 }, built) -- each setting built once
    local ids = {}
    for i, rec in ipairs(r.runs) do ids[i] = rec.setting .. "|" .. rec.config.loss end
    assert.are.same({ "a|bce", "a|dice", "b-2|bce", "b-2|dice" }, ids)
    for _, id in ipairs { "a.bce-s1", "a.dice-s1", "b-2.bce-s1", "b-2.dice-s1" } do
      local rec = cjson.decode((assert(read(dir("grid") .. "/runs/" .. id .. "/run.json"), id)))
      assert.is_true(rec.complete)
      assert.are.same({ "a", "b-2" }, rec.grid.data)
      assert.are.equal(id:match("^[^.]+"), rec.config.data.setting)
    end
    -- the two settings' data differ, so do their runs
    local ra = cjson.decode(read(dir("grid") .. "/runs/a.bce-s1/run.json"))
    local rb = cjson.decode(read(dir("grid") .. "/runs/b-2.bce-s1/run.json"))
    assert.are_not.equal(ra.final.val_loss, rb.final.val_loss)
    -- the summary: one entry per (setting, loss), the settings in order
    local sum = r.summary
    assert.are.same({ "a", "b-2" }, { sum.settings[1].name, sum.settings[2].name })
    local keys = {}
    for i, e in ipairs(sum.losses) do keys[i] = e.data .. "|" .. e.loss end
    assert.are.same({ "a|bce", "a|dice", "b-2|bce", "b-2|dice" }, keys)
    assert.are.equal(ra.final.dice, sum.losses[1].final.dice.mean)
    assert.are.equal(rb.final.dice, sum.losses[3].final.dice.mean)
    local csv = read(dir("grid") .. "/summary.csv")
    assert.truthy(csv:find("^data,loss,at,seeds,dice_mean"), csv)
    assert.truthy(csv:find("\nb%-2,dice,final,1,"), csv)
    for _, name in ipairs { "a.train_loss", "a.val_dice", "a.final_metrics", "a.final_distances", "b-2.val_dice",
      "dice_by_data", "sensitivity_by_data" } do
      local svg = read(dir("grid") .. "/" .. name .. ".svg")
      assert.truthy(svg, name)
      assert.are.equal(1, well_formed(svg), name)
    end
    assert.are.equal(2, count(read(dir("grid") .. "/a.val_dice.svg"), "<polyline class=\"series\""))
    assert.are.equal(2, count(read(dir("grid") .. "/dice_by_data.svg"), '<g class="series"'))
    local html = read(dir("grid") .. "/report.html")
    assert.are.equal(1, well_formed((html:gsub("<meta[^>]*>", ""))))
    assert.truthy(html:find("<h2>Data: a</h2>", 1, true))
    assert.truthy(html:find("<h2>Data: b-2</h2>", 1, true))
    assert.truthy(html:find("Overview: final validation Dice", 1, true))
    assert.are.equal(2 * 4 + 2, count(html, "<svg "))
    -- in each overview column the best value is bold: the highest Dice, the lowest HD95
    for _, case in ipairs { { "Overview: final validation Dice", 1 }, { "Overview: HD95 %(pixels%)", -1 } } do
      local tbl = html:match(case[1] .. "</h2>%s*<table>(.-)</table>")
      assert.truthy(tbl, case[1])
      local cols = { {}, {} }
      for row in tbl:gmatch("<tr><td>.-</tr>") do
        local c = 0
        -- one seed: the mean alone, no "± 0.000"
        assert.is_nil(row:find("±", 1, true), row)
        for attr, v in row:gmatch("<td([^>]*)>([%d.]+)</td>") do
          c = c + 1
          cols[c][#cols[c] + 1] = { v = tonumber(v), bold = attr:find("bold") ~= nil }
        end
      end
      for _, col in ipairs(cols) do
        assert.are.equal(2, #col)
        local best = col[1].v * case[2] >= col[2].v * case[2] and 1 or 2
        assert.is_true(col[best].bold, case[1])
        if col[1].v ~= col[2].v then assert.is_false(col[3 - best].bold, case[1]) end
      end
    end
    -- a shard builds only the settings of its own jobs; shards merged = unsharded
    built = {}
    local o1 = opts(dir("grid1"), { data = { setting("a", 0), setting("b-2", 0.5) }, losses = { "bce", "dice" },
      seeds = { 1 }, shard = "1/2" })
    E.run(o1)
    local o2 = opts(dir("grid2"), { data = { setting("a", 0), setting("b-2", 0.5) }, losses = { "bce", "dice" },
      seeds = { 1 }, shard = "2/2" })
    E.run(o2)
    local m = E.merge({ dir("grid1"), dir("grid2") }, dir("gridm"))
    assert.are.equal(4, #m.runs)
    assert.are.equal(read(dir("grid") .. "/summary.json"), read(dir("gridm") .. "/summary.json"))
    assert.are.equal(read(dir("grid") .. "/report.html"), read(dir("gridm") .. "/report.html"))
    built = {}
    E.run(opts(dir("grid3"), { data = { setting("a", 0), setting("b-2", 0.5) }, losses = { "bce" },
      seeds = { 1 }, shard = "1/2" }))
    assert.are.same({ a = 1 }, built)
    -- bad settings
    local H = require "helpers"
    H.errors("segloss.experiment.run: data[2] must be {name = ", { 'got string "b.c"' }, E.run,
      opts(dir("x"), { data = { setting("a", 0), setting("b.c", 0) } }))
    H.errors("segloss.experiment.run: data[2]: the data setting a is listed twice", {}, E.run,
      opts(dir("x"), { data = { setting("a", 0), setting("a", 0) } }))
  end)

  it("a rerun on other data trains again; merge refuses runs trained differently", function()
    local shifted = tiny()
    shifted.x:add(0.25)
    local o = opts(dir("d1"), { losses = { "dice" }, seeds = { 1 } })
    local r1 = E.run(o)
    assert.are.equal(1, #r1.trained)
    local rec = cjson.decode(read(dir("d1") .. "/runs/dice-s1/run.json"))
    assert.truthy(rec.config.data.hash:match("^%x+%-%x+%-%x+%-%x+$"), rec.config.data.hash)
    -- the same data: skipped; other data of the same sizes: trained again
    assert.are.equal(1, #E.run(o).skipped)
    local r2 = E.run(opts(dir("d1"), { losses = { "dice" }, seeds = { 1 }, data = shifted }))
    assert.are.equal(1, #r2.trained)
    -- shards trained with other epochs, or on other data, do not merge
    E.run(opts(dir("m1"), { shard = "1/2", losses = { "bce", "dice" }, seeds = { 1 } }))
    E.run(opts(dir("m2"), { shard = "2/2", losses = { "bce", "dice" }, seeds = { 1 }, epochs = 3 }))
    local ok, err = pcall(E.merge, { dir("m1"), dir("m2") }, dir("mm"))
    assert.is_false(ok)
    assert.truthy(err:find("segloss.experiment.merge: the runs bce-s1 (" .. dir("m1") .. ") and dice-s1 (" ..
      dir("m2") .. ") were trained with different settings", 1, true), err)
    E.run(opts(dir("m3"), { shard = "2/2", losses = { "bce", "dice" }, seeds = { 1 }, data = shifted }))
    ok, err = pcall(E.merge, { dir("m1"), dir("m3") }, dir("mm"))
    assert.is_false(ok)
    assert.truthy(err:find("were trained on different data", 1, true), err)
    ok, err = pcall(E.merge, { dir("m1"), dir("nothere") }, dir("mm"))
    assert.is_false(ok)
    assert.truthy(err:find("segloss.experiment.merge: dirs[2]: string \"" .. dir("nothere") ..
      "\" is not a directory", 1, true), err)
  end)

  it("writes option values of loss ids in their shortest exact form", function()
    local l = E.losses({ { "tversky", alpha = 0.7, beta = 0.3 }, { "focal", gamma = 1 / 3 } })
    assert.are.equal("tversky_alpha=0.7_beta=0.3", l[1].id)
    assert.are.equal("focal_gamma=0.3333333333333333", l[2].id)
    assert.are.equal(1 / 3, tonumber(l[2].id:match("=(.*)$")))
  end)

  it("checks its options", function()
    local H = require "helpers"
    H.errors("segloss.experiment.run: unknown option \"epoch\"", { "did you mean \"epochs\"" }, E.run,
      opts(dir("x"), { epoch = 2 }))
    H.errors("segloss.experiment.run: losses[2]: unknown loss string \"dic\"", { "did you mean \"dice\"" }, E.run,
      opts(dir("x"), { losses = { "bce", "dic" } }))
    H.errors("segloss.experiment.run: option shard must be \"k/n\"", {}, E.run, opts(dir("x"), { shard = "4/3" }))
    H.errors("segloss.experiment.run: losses[2]: the loss \"bce\" is listed twice", {}, E.run,
      opts(dir("x"), { losses = { "bce", "bce" } }))
    H.errors("segloss.experiment.run: option seeds must be a list of distinct integers (2 is listed twice)",
      { "got a table {1, 2, 2}" }, E.run, opts(dir("x"), { seeds = { 1, 2, 2 } }))
    -- the model and the data sizes are checked before anything trains
    H.errors("segloss.experiment.run: data: a U-Net of depth 5 needs spatial sizes divisible by 32, " ..
      "the images are {10,1,16,16}", {}, E.run, opts(dir("x"), { model = { base = 4, depth = 5 } }))
    H.errors("segloss.experiment.run: model: option base must be", {}, E.run, opts(dir("x"), { model = { base = 0 } }))
    H.errors("segloss.experiment.run: data[1] must be {name = ", {}, E.run,
      opts(dir("x"), { data = { { data = DATA } } }))
  end)

  it("shows a bar with the ETA on a terminal, plain lines otherwise", function()
    local P = require "segloss.experiment.progress"
    local function sink()
      local buf = {}
      return { write = function(self, ...) for _, v in ipairs { ... } do buf[#buf + 1] = v end return self end,
        flush = function() end, text = function() return table.concat(buf) end }
    end
    local now = 0
    local bar = sink()
    local p = P.new("bar", 4, function() return now end, bar)
    now = 10
    p:epoch("dice-s1", 1, 2, 1, 2)
    assert.truthy(bar.text():find("[" .. string.rep("#", 8), 1, true))
    assert.truthy(bar.text():find("run 1/2 dice-s1  epoch 1/2  ETA 30s", 1, true), bar.text())
    local lines = sink()
    p = P.new("lines", 4, function() return now end, lines)
    p:epoch("dice-s1", 1, 2, 1, 2)
    p:line("dice-s1: done")
    assert.are.equal("dice-s1: done\n", lines.text())
    local off = sink()
    p = P.new("off", 4, function() return now end, off)
    p:epoch("dice-s1", 1, 2, 1, 2)
    p:line("x")
    assert.are.equal("", off.text())
  end)

  it("shards split any grid into disjoint covering parts", function()
    local losses = E.losses { "bce", "dice", "focal", "iou", "tversky" }
    local all = E.jobs(losses, { 1, 2, 3 })
    for n = 1, 7 do
      local seen = 0
      local ids = {}
      for k = 1, n do
        for _, j in ipairs(E.jobs(losses, { 1, 2, 3 }, k, n)) do
          assert.is_nil(ids[j.id])
          ids[j.id] = true
          seen = seen + 1
        end
      end
      assert.are.equal(#all, seen)
    end
  end)
end)
