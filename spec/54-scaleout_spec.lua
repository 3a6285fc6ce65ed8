-- scripts/parallel-compare.sh and scripts/slurm-compare.sh as a user runs
-- them: three shards of a tiny grid, merged, give the unsharded summary
-- byte for byte. The Slurm script runs under bash with the variables a job
-- array sets; GNU parallel is not required: without it the script runs
-- xargs -P, and says which one it used.
local H = require "helpers"

-- the scripts run bin/segloss on the modules of this suite (build/ or build-asan/)
local ENV = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q SEGLOSS='lua5.4 bin/segloss' ", package.path,
  package.cpath)
local FLAGS = " --losses bce,dice,iou --seeds 1,2 --epochs 2 --n 12 --size 32,32 --base 4 --depth 1 --threads 1 "

-- runs a shell command with ENV; returns its stdout, stderr and success
local function sh(cmd)
  local err = H.tmpname(".err")
  local p = assert(io.popen(ENV .. cmd .. " 2>" .. err))
  local out = p:read("a")
  local ok = p:close()
  return out, H.readfile(err), ok
end

local tmpdir = H.tmpdir

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- the run ids of a directory's runs/
local function runs(dir)
  local p = assert(io.popen("ls -1 " .. dir .. "/runs 2>/dev/null"))
  local ids = {}
  for l in p:lines() do ids[#ids + 1] = l end
  p:close()
  return ids
end

describe("scale-out scripts", function()
  local root, whole
  setup(function()
    root = tmpdir()
    whole = root .. "/whole"
    local _, err, ok = sh("lua5.4 bin/segloss compare" .. FLAGS .. "--out " .. whole)
    assert(ok, err)
  end)
  teardown(function()
    os.execute("rm -rf " .. root)
    H.cleanup()
  end)

  it("parallel-compare.sh runs 3 shards and merges them into the unsharded summary", function()
    local out = root .. "/par"
    local _, err, ok = sh("bash scripts/parallel-compare.sh 3" .. FLAGS .. "--out " .. out)
    assert.is_true(ok, err)
    local has_parallel = os.execute("parallel --version 2>/dev/null | grep -q 'GNU parallel'")
    local runner = has_parallel and "3 shards with GNU parallel, 3 at a time" or "3 shards with xargs -P 3"
    assert.truthy(err:find(runner, 1, true), err)
    -- every shard ran its share: 6 runs in 3 shards, 2 each (jobs k and k + 3)
    for k = 1, 3 do assert.equal(2, #runs(out .. "/shard-" .. k), "shard " .. k) end
    assert.equal(H.readfile(whole .. "/summary.json"), H.readfile(out .. "/summary.json"))
    assert.same(runs(whole), runs(out))
    assert.is_true(exists(out .. "/report.html"))
  end)

  it("parallel-compare.sh rejects a bad count and --shard, and does not merge after a failed shard", function()
    local _, err, ok = sh("bash scripts/parallel-compare.sh x" .. FLAGS)
    assert.is_falsy(ok)
    assert.truthy(err:find("usage: scripts/parallel-compare.sh N", 1, true), err)
    _, err, ok = sh("bash scripts/parallel-compare.sh 2 --shard 1/2" .. FLAGS)
    assert.is_falsy(ok)
    assert.truthy(err:find("--shard is set per shard by this script", 1, true), err)
    local out = root .. "/bad"
    _, err, ok = sh("bash scripts/parallel-compare.sh 2 --losses nosuchloss --epochs 1 --out " .. out)
    assert.is_falsy(ok)
    assert.truthy(err:find("unknown loss", 1, true), err)
    assert.truthy(err:find("a shard failed", 1, true), err)
    assert.is_false(exists(out .. "/summary.json"))
  end)

  it("slurm-compare.sh runs each array task under bash, and the merge gives the unsharded summary", function()
    local out = root .. "/slurm"
    local dirs = {}
    for k = 1, 3 do
      local _, err, ok = sh(string.format("OUT=%s SLURM_ARRAY_TASK_ID=%d SLURM_ARRAY_TASK_COUNT=3 " ..
        "SLURM_CPUS_PER_TASK=1 bash scripts/slurm-compare.sh%s", out, k, FLAGS))
      assert.is_true(ok, err)
      dirs[k] = out .. "/shard-" .. k
      assert.equal(2, #runs(dirs[k]), "task " .. k)
    end
    local _, err, ok = sh("lua5.4 bin/segloss merge --out " .. out .. " " .. table.concat(dirs, " "))
    assert.is_true(ok, err)
    assert.equal(H.readfile(whole .. "/summary.json"), H.readfile(out .. "/summary.json"))
    -- outside an array it says how to run it
    _, err, ok = sh("bash scripts/slurm-compare.sh" .. FLAGS)
    assert.is_falsy(ok)
    assert.truthy(err:find("run it as a job array (sbatch --array=1-N)", 1, true), err)
    _, err, ok = sh("SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_COUNT=3 bash scripts/slurm-compare.sh" .. FLAGS)
    assert.is_falsy(ok)
    assert.truthy(err:find("1 <= k <= N; got '4' and '3'", 1, true), err)
  end)

  it("the Slurm script carries the array, the shard and the output the docs promise", function()
    local s = H.readfile("scripts/slurm-compare.sh")
    assert.truthy(s:find("\n#SBATCH %-%-array=1%-%d+\n"), "no #SBATCH --array=1-N line")
    assert.truthy(s:find('--shard "$k/$n" --out "$out/shard-$k"', 1, true))
    local doc = H.readfile("docs/experiment.md")
    assert.truthy(doc:find("sbatch --dependency=afterok:", 1, true), "docs/experiment.md: the dependent merge")
    assert.truthy(doc:find("scripts/parallel-compare.sh", 1, true), "docs/experiment.md: the parallel script")
  end)
end)
