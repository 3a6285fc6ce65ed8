-- The OpenMP environment variables cannot make a result wrong: the workload
-- of test/threads/workload.lua (tensor reductions, losses of every kind with
-- their gradients, metrics, a U-Net forward/backward with Adam and SGD
-- steps) gives the same bits under each variable as in the usual
-- environment, for set_threads(1) to (4); and segloss.core.threads_used()
-- reports the team that really ran. OpenMP reads its environment once, so
-- each environment runs in a fresh process (about 0.3 s each).
local H = require "helpers"

local WORKLOAD = "test/threads/workload.lua"

-- runs the workload on the default backend for 1..4 threads in a process
-- with env; returns the bytes of each thread count and the teams of its
-- large jobs ({[n] = {sum = 1, ...}}), or fails with the process's output
local child = [[
  local W = dofile(%q)
  local b = W.backends()[1]
  for n = 1, 4 do
    local s, _, teams = W.run(b, n)
    local f = assert(io.open(%q .. n, "wb"))
    f:write(s)
    f:close()
    local l = {}
    for _, k in ipairs(teams.names) do l[#l + 1] = k .. "=" .. teams[k] end
    print("teams " .. n .. " " .. table.concat(l, " "))
  end
]]

local function run(env)
  local out = H.tmpname(".bin")
  local cmd = string.format("env %s LUA_PATH_5_4=%q LUA_CPATH_5_4=%q lua5.4 -e %q 2>&1", env, package.path,
    package.cpath, string.format(child, WORKLOAD, out))
  local p = assert(io.popen(cmd))
  local text = p:read("a")
  local ok = p:close()
  assert(ok, "the workload failed under " .. env .. ":\n" .. text)
  local bytes, teams, njobs = {}, {}, 0
  for n = 1, 4 do
    local f = assert(io.open(out .. n, "rb"))
    bytes[n] = f:read("a")
    f:close()
    os.remove(out .. n)
    teams[n] = {}
    local line = assert(text:match("teams " .. n .. " ([^\n]*)"), text)
    for k, v in line:gmatch("([%w_]+)=(%d+)") do
      teams[n][k] = tonumber(v)
      njobs = njobs + 1
    end
  end
  assert(njobs >= 4 * 10, "too few large jobs reported a team: " .. text)
  return bytes, teams
end

describe("OpenMP environment variables", function()
  after_each(H.cleanup)
  local ref, ref_teams

  setup(function()
    ref, ref_teams = run("")
  end)

  it("the usual environment: the same bits for 1 to 4 threads, on n threads", function()
    local bytes, teams = ref, ref_teams
    assert.is_true(#ref[1] > 100000, "the workload returned " .. #ref[1] .. " bytes")
    for n = 1, 4 do
      assert.is_true(bytes[n] == ref[1], n .. " threads")
      for k, v in pairs(teams[n]) do assert.equal(n, v, k .. " on " .. n .. " threads") end
    end
  end)

  -- env, the team expected for n requested threads (nil: any in 1..n)
  local cases = {
    { "OMP_THREAD_LIMIT=1", function() return 1 end },
    { "OMP_THREAD_LIMIT=2", function(n) return math.min(n, 2) end },
    { "OMP_DYNAMIC=true", nil },
    { "OMP_NUM_THREADS=1", function(n) return n end },
    { "OMP_NUM_THREADS=3", function(n) return n end },
    { "OMP_NUM_THREADS=3,2 OMP_MAX_ACTIVE_LEVELS=2", function(n) return n end },
    { "OMP_PROC_BIND=true OMP_PLACES=cores", function(n) return n end },
    { "OMP_PROC_BIND=spread OMP_WAIT_POLICY=passive", function(n) return n end },
    { "OMP_PROC_BIND=close OMP_WAIT_POLICY=active GOMP_SPINCOUNT=1000", function(n) return n end },
    { "OMP_THREAD_LIMIT=3 OMP_DYNAMIC=true OMP_NUM_THREADS=2", nil },
  }
  for _, c in ipairs(cases) do
    local env, want = c[1], c[2]
    it(env .. ": the same bits, teams as OpenMP allows", function()
      local bytes, teams = run(env)
      for n = 1, 4 do
        assert.is_true(bytes[n] == ref[1], env .. ", " .. n .. " threads: the results differ")
        for k, v in pairs(teams[n]) do
          if want then
            assert.equal(want(n), v, k .. " on " .. n .. " threads")
          else
            assert.is_true(v >= 1 and v <= n, k .. " on " .. n .. " threads ran on " .. v)
          end
        end
      end
      if env:match("OMP_THREAD_LIMIT=3") then
        for k, v in pairs(teams[4]) do assert.is_true(v <= 3, k .. " ran on " .. v .. " > OMP_THREAD_LIMIT") end
      end
    end)
  end
end)
