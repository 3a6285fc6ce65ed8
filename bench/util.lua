-- bench/util.lua — what the benchmarks share: arguments, a clock, progress
-- lines, medians of interleaved rounds, and a table printer that also writes
-- markdown.
local U = {}

-- the tables line by line, also into a pipe (make bench | tee)
io.stdout:setvbuf("line")

local ok_sys, system = pcall(require, "system")
U.clock = ok_sys and system.monotime or os.clock

-- make bench passes its start (seconds since the epoch) in BENCH_T0, so that
-- every stage counts from there
local t0_env = tonumber(os.getenv("BENCH_T0") or "")
local started = U.clock()
local last = started

--- A progress line on stderr, "bench: <what> [<s> s]" (seconds since make
-- bench or the script started), so that stdout keeps only the tables.
function U.progress(fmt, ...)
  last = U.clock()
  local s = t0_env and os.time() - t0_env or last - started
  io.stderr:write(string.format("bench: %s [%.0f s]\n", string.format(fmt, ...), s))
  io.stderr:flush()
end

--- U.progress, if the last progress line is 10 s old or more.
function U.tick(fmt, ...)
  if U.clock() - last >= 10 then U.progress(fmt, ...) end
end

--- --key value pairs into a table of defaults; usage on error.
function U.args(defaults, usage)
  local a = {}
  for k, v in pairs(defaults) do a[k] = v end
  local i = 1
  while arg[i] do
    local k = arg[i]:match("^%-%-(.+)$")
    assert(k and arg[i + 1], "usage: " .. usage)
    a[k] = arg[i + 1]
    i = i + 2
  end
  if a.runs then a.runs = tonumber(a.runs) end
  return a
end

--- Comma-separated values.
function U.split(s)
  local out = {}
  for v in s:gmatch("[^,]+") do out[#out + 1] = v end
  return out
end

--- Medians in ms of `runs` interleaved rounds: each round times every item
-- once in the given order, so that a machine whose speed drifts affects all
-- items alike. Two warm-up calls each. With `label`, a progress line at
-- most every 10 s ("<label>: round r/runs").
function U.medians(names, items, runs, label)
  local _, med = U.bests(names, items, runs, label)
  return med
end

--- Best (minimum) and median times in ms of `runs` interleaved rounds, as
-- U.medians but keeping both: on a machine whose memory bandwidth swings
-- from minute to minute, the best of each item, all measured in the same
-- rounds, compare like with like.
function U.bests(names, items, runs, label)
  local ts = {}
  for _, name in ipairs(names) do
    ts[name] = {}
    items[name]()
    items[name]()
  end
  for r = 1, runs do
    for _, name in ipairs(names) do
      collectgarbage("step", 0)
      local t0 = U.clock()
      items[name]()
      ts[name][r] = U.clock() - t0
    end
    if label then U.tick("%s: round %d/%d", label, r, runs) end
  end
  local best, med = {}, {}
  for name, v in pairs(ts) do
    table.sort(v)
    best[name], med[name] = v[1] * 1e3, v[(#v + 1) // 2] * 1e3
  end
  return best, med
end

--- A printer that keeps its lines for a markdown file.
function U.report()
  local lines = {}
  local r = {}
  function r.emit(s)
    print(s)
    lines[#lines + 1] = s
  end
  function r.write(path)
    if not path then return end
    local f = assert(io.open(path, "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
  end
  return r
end

--- The PyTorch/SciPy results of the same run, if the file exists.
function U.json(path)
  if not path then return nil end
  local f = io.open(path)
  if not f then return nil end
  local v = require("cjson").decode(f:read("a"))
  f:close()
  return v
end

--- "median of N calls" (or "of N-M calls") of the PyTorch JSON file: its
-- rounds per shape and thread count, when it has them, else its runs.
function U.torch_calls(torch)
  local lo, hi = torch.runs, torch.runs
  if torch.rounds then
    lo, hi = math.huge, 0
    for _, per_th in pairs(torch.rounds) do
      for _, r in pairs(per_th) do lo, hi = math.min(lo, r), math.max(hi, r) end
    end
  end
  if lo == hi then return string.format("median of %d calls", lo) end
  return string.format("median of %d–%d calls", lo, hi)
end

return U
