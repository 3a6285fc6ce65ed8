-- bin/segloss as a user runs it: info, a bad flag, compare --quick (the
-- issue's minute-long run), and sharded runs merged by the command line.
local H = require "helpers"
local cjson = require "cjson"

-- the command sees the modules this suite runs on (build/ or build-asan/)
local ENV = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q ", package.path, package.cpath)

-- runs the command line; returns its output (stdout and stderr) and success
local function segloss(args)
  local p = assert(io.popen(ENV .. "lua5.4 bin/segloss " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local tmpdir = H.tmpdir

describe("bin/segloss", function()
  it("info names the version and the backend", function()
    local out, ok = segloss("info")
    assert.is_true(ok, out)
    assert.truthy(out:find("segloss 0.1.0", 1, true), out)
    assert.truthy(out:find("backend ", 1, true), out)
  end)

  it("a bad flag is an error with the usage", function()
    local out, ok = segloss("compare --bogus")
    assert.is_falsy(ok)
    assert.truthy(out:find("Usage: segloss compare", 1, true), out)
    assert.truthy(out:find("unknown option '--bogus'", 1, true), out)
    out, ok = segloss("compare --seeds x --epochs 1")
    assert.is_falsy(ok)
    assert.truthy(out:find("segloss compare: --seeds must be numbers", 1, true), out)
  end)

  it("compare --quick trains, summarises and writes the report", function()
    local d = tmpdir()
    local out, ok = segloss("compare --quick --epochs 3 --n 16 --out " .. d)
    assert.is_true(ok, out)
    assert.truthy(out:find("results in " .. d .. "; report: " .. d .. "/report.html", 1, true), out)
    for _, loss in ipairs { "bce", "dice", "bce_dice" } do
      assert.truthy(out:find("\n" .. loss .. " ", 1, true), out)
    end
    -- the quick study: two synthetic settings, three losses each
    assert.truthy(out:find("data synthetic_2pct\n", 1, true), out)
    assert.truthy(out:find("data synthetic_05pct\n", 1, true), out)
    local s = cjson.decode(H.readfile(d .. "/summary.json"))
    assert.are.equal(6, #s.losses)
    assert.are.equal("synthetic_05pct", s.losses[6].data)
    assert.truthy(H.readfile(d .. "/report.html"):find("<svg", 1, true))
    -- the same in two processes (--jobs 2, one thread each): the same summary, bit for bit
    local d2 = tmpdir()
    out, ok = segloss("compare --quick --epochs 3 --n 16 --jobs 2 --out " .. d2)
    assert.is_true(ok, out)
    assert.truthy(out:find("2 processes of 1 thread each", 1, true), out)
    assert.truthy(out:find("[1/2] shard 1/2: 3 runs trained", 1, true), out)
    assert.truthy(out:find("[2/2] shard 2/2: 3 runs trained", 1, true), out)
    -- each shard's lines say which run of how many, and the time left
    assert.truthy(out:find("%[1/2%] run 1/3 synthetic_%w+%.[%w_]+%-s1: done in %d+s, final dice [%d.]+, " ..
      "best [%d.]+ %(epoch %d+%); ETA %d+s"), out)
    assert.truthy(out:find("[2/2] run 3/3 ", 1, true), out)
    assert.are.equal(H.readfile(d .. "/summary.json"), H.readfile(d2 .. "/summary.json"))
    assert.are.equal(H.readfile(d .. "/report.html"), H.readfile(d2 .. "/report.html"))
    os.execute("rm -rf " .. d .. " " .. d2)
  end)

  it("compare trains with each loss the built-in study leaves out (issue 12's)", function()
    -- every loss of the registry not in the study that a binary U-Net can
    -- train with: lovasz_hinge (on the logits, activation "none"), the
    -- distance losses, cldice, log_cosh_dice, unified_focal, topk_ce, combo
    local study, names = {}, {}
    for _, l in ipairs(require("segloss.experiment.study").LOSSES) do study[type(l) == "table" and l[1] or l] = true end
    local classes_only = {}
    for _, d in ipairs(require("segloss").losses()) do
      local sig = false
      for _, a in ipairs(d.activations) do sig = sig or a == "sigmoid" end
      if not study[d.name] and (sig or d.real_x) then names[#names + 1] = d.name end
      if not sig and not d.real_x then classes_only[#classes_only + 1] = d.name end
    end
    assert.is_true(#names >= 8, table.concat(names, ","))
    local d = tmpdir()
    local out, ok = segloss("compare --data synthetic --losses " .. table.concat(names, ",") ..
      " --epochs 1 --n 8 --size 32,32 --base 4 --depth 1 --out " .. d)
    assert.is_true(ok, out)
    local s = cjson.decode(H.readfile(d .. "/summary.json"))
    assert.are.equal(#names, #s.losses)
    local got = {}
    for _, e in ipairs(s.losses) do
      got[e.name] = true
      local dice = e.final.dice.mean
      assert.is_true(dice >= 0 and dice <= 1, e.name .. ": a final Dice in [0, 1]")
    end
    for _, n in ipairs(names) do assert.is_true(got[n] or false, n .. " in summary.json") end
    assert.truthy(H.readfile(d .. "/report.html"):find("lovasz_hinge", 1, true))
    -- a loss over classes only is an error that says what to use
    for _, n in ipairs(classes_only) do
      out, ok = segloss("compare --data synthetic --losses " .. n .. " --epochs 1 --n 8 --out " .. d)
      assert.is_falsy(ok)
      assert.truthy(out:find(n .. " is a loss over classes (no sigmoid)", 1, true), out)
    end
    os.execute("rm -rf " .. d)
  end)

  it("compare --data mri trains on lesions in the MRI slices", function()
    local d = tmpdir()
    local out, ok = segloss("compare --data mri --losses dice --epochs 1 --n 8 --size 32,32 --base 4 --depth 1 " ..
      "--out " .. d)
    assert.is_true(ok, out)
    local s = cjson.decode(H.readfile(d .. "/summary.json"))
    assert.are.equal(1, #s.losses)
    assert.are.equal(8, s.config.data.train + s.config.data.val)
    -- a loss that is not name(:key=value)* is an error, never a silent "bce"
    for _, bad in ipairs { "bce-dice", "bce+dice", "bce:pos_weight" } do
      out, ok = segloss("compare --losses " .. bad .. " --out " .. d)
      assert.is_falsy(ok)
      assert.truthy(out:find('segloss compare: --losses: cannot read "', 1, true), out)
    end
    out, ok = segloss("compare --epochs x --out " .. d)
    assert.is_falsy(ok)
    assert.truthy(out:find('segloss compare: --epochs must be a number, got "x"', 1, true), out)
    out, ok = segloss("compare --data foo --out " .. d)
    assert.is_falsy(ok)
    assert.truthy(out:find("segloss compare: --data must be study, synthetic or mri, got foo", 1, true), out)
    out, ok = segloss("compare --jobs 0 --out " .. d)
    assert.is_falsy(ok)
    assert.truthy(out:find("segloss compare: --jobs must be an integer in 1..64, got 0", 1, true), out)
    os.execute("rm -rf " .. d)
  end)

  it("three shards merged give the unsharded summary", function()
    local whole, parts = tmpdir(), {}
    local args = " --losses bce,dice,iou --seeds 1,2 --epochs 2 --n 12 --size 32,32 --base 4 --depth 1 "
    local out, ok = segloss("compare" .. args .. "--out " .. whole)
    assert.is_true(ok, out)
    for k = 1, 3 do
      parts[k] = tmpdir()
      out, ok = segloss("compare" .. args .. "--shard " .. k .. "/3 --out " .. parts[k])
      assert.is_true(ok, out)
    end
    local merged = tmpdir()
    out, ok = segloss("merge --out " .. merged .. " " .. table.concat(parts, " "))
    assert.is_true(ok, out)
    assert.are.equal(H.readfile(whole .. "/summary.json"), H.readfile(merged .. "/summary.json"))
    os.execute("rm -rf " .. whole .. " " .. merged .. " " .. table.concat(parts, " "))
  end)
end)
