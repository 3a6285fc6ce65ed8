--- The Lua API fuzzer of segloss (docs/reliability.md, "The Lua API fuzzer").
--
--   lua5.4 fuzz/lua/api.lua --seed S --calls N [--seconds T] [--print I]
--                          [--only PATTERN] [--last FILE] [--quiet]
--
-- Call i of seed S is Lua source drawn from math.random seeded with (S, i),
-- so --print I writes call I as a standalone script, and a finding prints
-- its repro. Every public function (enumerated from the module tables at
-- run time) must have a generator, or the run fails. Before running a call
-- its source goes to --last (flushed), so that a crash or a sanitizer's
-- abort leaves the repro of the call that died. Progress on stderr, totals
-- on stdout, the last line a summary; exit status 1 on any finding.
-- the repository's root (the fuzzer runs in a scratch directory under make fuzz-lua)
local ROOT = (arg and arg[0] and arg[0]:match("^(.*)/fuzz/lua/api%.lua$")) or "."
package.path = ROOT .. "/?.lua;" .. package.path
local segloss = require "segloss"
local Gen = require "fuzz.lua.gen"
local targets = require "fuzz.lua.targets"
local check = require "fuzz.lua.check"

local M = {}

-- the names the generator's garbage (fuzz/lua/gen.lua) gives a file when a call takes it for a path
local STRAY = Gen.stray_names()

local function parse(argv)
  local o = { seed = 1, calls = 1000, seconds = math.huge, quiet = false, max_findings = 20 }
  local i = 1
  while i <= #argv do
    local a, v = argv[i], argv[i + 1]
    if a == "--seed" then o.seed = assert(math.tointeger(tonumber(v)), "--seed: an integer") i = i + 1
    elseif a == "--calls" then o.calls = assert(math.tointeger(tonumber(v)), "--calls: an integer") i = i + 1
    elseif a == "--seconds" then o.seconds = assert(tonumber(v), "--seconds: a number") i = i + 1
    elseif a == "--print" then o.print = assert(math.tointeger(tonumber(v)), "--print: an integer") i = i + 1
    elseif a == "--only" then o.only = v i = i + 1
    elseif a == "--last" then o.last = v i = i + 1
    elseif a == "--quiet" then o.quiet = true
    elseif a == "--verbose" then o.verbose = true
    else error("unknown argument " .. tostring(a) .. " (see the head of fuzz/lua/api.lua)", 0) end
    i = i + 1
  end
  return o
end

--- The fuzzer's state: the targets by name, sorted, and the names to draw from.
function M.setup(only)
  check.init(segloss)
  local list = targets.list(segloss)
  local R = targets.build(segloss)
  local missing, names = {}, {}
  for _, n in ipairs(list) do
    if R[n] then
      if not only or n:find(only) then names[#names + 1] = n end
    elseif not targets.SKIP[n] then
      missing[#missing + 1] = n
    end
  end
  -- backends this build and CPU can run, in order
  local backends = segloss.backends()
  -- draw by weight: the slow targets (a U-Net per call) less often
  local cum, total = {}, 0
  for i, n in ipairs(names) do
    total = total + (R[n].weight or (n:find("UNet") and 0.15) or 1)
    cum[i] = total
  end
  -- the functions that answer finite numbers for any finite input
  local strict = {}
  for _, d in ipairs(segloss.losses()) do
    for _, n in ipairs { "segloss." .. d.name, "segloss.core." .. d.name, "segloss." .. d.class } do strict[n] = true end
  end
  for _, n in ipairs(names) do
    if n:find("^segloss%.Criterion:") or n:find("^segloss%.core%.criterion_") or n:find("metrics") then strict[n] = true end
  end
  return { R = R, names = names, list = list, missing = missing, backends = backends, cum = cum, total = total,
    strict = strict }
end

--- The call i of seed: the target's name, the source, the generator.
function M.call(st, seed, i)
  local g = Gen.new(seed, i, st.backends)
  local r, lo, hi = math.random() * st.total, 1, #st.names
  while lo < hi do
    local mid = (lo + hi) // 2
    if st.cum[mid] < r then lo = mid + 1 else hi = mid end
  end
  local name = st.names[lo]
  local tgt = st.R[name]
  local fn, args = tgt.gen(g)
  local a = {}
  for k = 1, #args do a[k] = args[k] or "nil" end
  -- an argument list with holes: table.pack keeps its length
  local n = 0
  for k in pairs(args) do if k > n then n = k end end
  for k = 1, n do a[k] = args[k] or "nil" end
  return name, g:source(name, fn, a), g, tgt
end

--- The source of call i as a standalone script that runs it and prints the outcome.
function M.repro(src)
  return (src:gsub("\nreturn (%b\"\"), (.-), table%.pack%((.*)%), (%b{})\n$", function(q, fn, args)
    return string.format("\n-- the call: %s\nlocal f = %s\nprint(pcall(f, %s))\n", q, fn, args)
  end))
end

--- Runs calls 1..n (or until the deadline); returns the totals.
function M.run(o, st, log)
  local tot = { calls = 0, ok = 0, errors = 0, setup = 0, findings = {}, per = {}, t0 = os.clock(),
    backends = {}, threads = {} }
  local wall0 = os.time()
  local lastf
  for i = 1, o.calls do
    if os.time() - wall0 >= o.seconds then break end
    local name, src, g, tgt = M.call(st, o.seed, i)
    if o.last then
      lastf = io.open(o.last, "w")
      lastf:write("-- segloss fuzz: seed ", o.seed, ", call ", i, " (", name, ")\n", M.repro(src))
      lastf:close()
    end
    local prefixes = tgt.prefixes or { name }
    -- a garbage string given as a path names a file in the current
    -- directory: remove what the call created there, nothing else
    local there = {}
    for _, p in ipairs(STRAY) do
      local f = io.open(p, "rb")
      there[p] = f ~= nil
      if f then f:close() end
    end
    local c0 = os.clock()
    -- huge finite inputs (1e38, x 1e30) may overflow float32 in a layer, an
    -- optimiser or tensor arithmetic; losses, criteria and metrics must not
    local nan_ok = g.nan_ok or (g.huge and not st.strict[name])
    local outcome, findings, msg = check.run(src, prefixes, nan_ok, g.finite)
    local per = tot.per[name] or { calls = 0, ok = 0, error = 0, setup = 0, cpu = 0 }
    per.cpu = per.cpu + os.clock() - c0
    tot.per[name] = per
    per.calls = per.calls + 1
    per[outcome] = per[outcome] + 1
    tot.calls = tot.calls + 1
    if outcome == "ok" then tot.ok = tot.ok + 1 elseif outcome == "error" then tot.errors = tot.errors + 1
    else tot.setup = tot.setup + 1 end
    local b = segloss.backend()
    tot.backends[b] = (tot.backends[b] or 0) + 1
    local th = segloss.threads()
    tot.threads[th] = (tot.threads[th] or 0) + 1
    for _, f in ipairs(findings) do
      tot.findings[#tot.findings + 1] = { i = i, name = name, what = f, src = src }
      if log then
        log(string.format("FINDING seed %d call %d (%s): %s\n%s", o.seed, i, name, f, M.repro(src)))
      end
    end
    if o.verbose and outcome ~= "ok" and log then log(string.format("%d %s %s: %s", i, name, outcome, tostring(msg))) end
    for _, p in ipairs(STRAY) do
      if not there[p] then os.remove(p) end
    end
    -- the call's files, then its directories (emptied by then)
    for _ = 1, 2 do
      for k = #g.files, 1, -1 do
        os.remove(load("local DIR = os.getenv('SEGLOSS_FUZZ_DIR') or '/tmp' return " .. g.files[k])())
      end
    end
    if log and i % 500 == 0 then
      log(string.format("fuzz-lua: %d calls, %d ok, %d errors, %d setup refused, %d findings [%.0f s]", tot.calls,
        tot.ok, tot.errors, tot.setup, #tot.findings, os.time() - wall0))
    end
    if #tot.findings >= o.max_findings then break end
  end
  if o.last then os.remove(o.last) end
  tot.wall = os.time() - wall0
  return tot
end

function M.main(argv)
  local o = parse(argv)
  local st = M.setup(o.only)
  if o.print then
    local name, src = M.call(st, o.seed, o.print)
    io.write("-- segloss fuzz: seed ", o.seed, ", call ", o.print, " (", name, ")\n", M.repro(src))
    return 0
  end
  local function log(s) io.stderr:write(s, "\n") io.stderr:flush() end
  if #st.missing > 0 then
    log("fuzz-lua: public functions without a generator (add one in fuzz/lua/targets*.lua, or a reason in SKIP):")
    for _, n in ipairs(st.missing) do log("  " .. n) end
  end
  log(string.format("fuzz-lua: seed %d, up to %d calls%s, %d public functions (%d fuzzed, %d skipped: see SKIP), backends %s",
    o.seed, o.calls, o.seconds < math.huge and string.format(" or %g s", o.seconds) or "", #st.list, #st.names,
    #st.list - #st.names - #st.missing, table.concat(st.backends, ",")))
  local tot = M.run(o, st, not o.quiet and log or function(s) if s:find("^FINDING") then log(s) end end)
  -- totals
  local names = {}
  for n in pairs(tot.per) do names[#names + 1] = n end
  table.sort(names)
  print(string.format("%-48s %7s %7s %7s %7s %8s", "function", "calls", "ok", "errors", "refused", "cpu ms"))
  for _, n in ipairs(names) do
    local p = tot.per[n]
    print(string.format("%-48s %7d %7d %7d %7d %8.1f", n, p.calls, p.ok, p.error, p.setup, 1000 * p.cpu / p.calls))
  end
  local never = {}
  for _, n in ipairs(st.names) do if not tot.per[n] then never[#never + 1] = n end end
  local bk = {}
  for _, b in ipairs(st.backends) do bk[#bk + 1] = b .. " " .. (tot.backends[b] or 0) end
  local th = {}
  for k = 1, 4 do th[#th + 1] = k .. ":" .. (tot.threads[k] or 0) end
  print(string.format("backends after the calls: %s; threads: %s", table.concat(bk, ", "), table.concat(th, " ")))
  if check.memory > 0 then print(string.format("%d calls failed with Lua's \"not enough memory\"", check.memory)) end
  if #never > 0 then print(string.format("%d fuzzed functions not drawn in this run", #never)) end
  for _, f in ipairs(tot.findings) do print(string.format("finding: call %d (%s): %s", f.i, f.name, f.what)) end
  local bad = #tot.findings + #st.missing
  print(string.format("fuzz-lua: seed %d: %d calls (%d ok, %d errors, %d refused in setup) over %d of %d functions in %d s; %d findings%s",
    o.seed, tot.calls, tot.ok, tot.errors, tot.setup, #names, #st.names, tot.wall, #tot.findings,
    #st.missing > 0 and string.format(", %d functions without a generator", #st.missing) or ""))
  return bad > 0 and 1 or 0
end

if arg and arg[0] and arg[0]:find("api%.lua$") then
  os.exit(M.main(arg))
end
return M
