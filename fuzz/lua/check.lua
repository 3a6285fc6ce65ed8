--- The checks of the Lua API fuzzer, on one call's outcome.
--
-- check.run(src, target, meta) runs the source of one call (fuzz/lua/gen.lua)
-- and returns the outcome ("ok", "error", "setup") and a list of findings
-- (strings): an error that is not a string naming the function, a NaN or
-- infinite result from finite inputs, an input or out changed by a failing
-- call, an input other than out changed by a successful one.
local C = {}

local T -- segloss.tensor, set by C.init
function C.init(segloss) T = segloss.tensor end
C.memory = 0 -- calls that failed with Lua's "not enough memory"

-- the elements of a tensor as a flat list of numbers
local function flat(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then
      for i = 1, #v do walk(v[i]) end
    else
      out[#out + 1] = v
    end
  end
  walk(t:totable())
  return out
end
C.flat = flat

-- the bytes of a tensor: its shape and its elements as float32
local function bytes(t)
  local f = flat(t)
  local parts = { table.concat(t:shape(), ",") .. ":" }
  for i = 1, #f do parts[#parts + 1] = string.pack("<f", f[i]) end
  return table.concat(parts)
end
C.bytes = bytes

local function istensor(v) return T.istensor(v) end

-- every tensor among the arguments and, one level down, in plain tables
-- (options, lists), with a path for the report
local function tensors_of(args)
  local found = {}
  local function visit(v, path, depth)
    if istensor(v) then
      found[#found + 1] = { t = v, path = path }
    elseif type(v) == "table" and getmetatable(v) == nil and depth < 2 then
      local keys = {}
      for k in next, v do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do visit(rawget(v, k), path .. "." .. tostring(k), depth + 1) end
    end
  end
  for i = 1, args.n do visit(args[i], "arg" .. i, 0) end
  return found
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- the first non-finite number in a result (numbers, tensors, plain tables)
local function nonfinite(v, path, depth)
  if type(v) == "number" then
    if not finite(v) then return path .. " = " .. tostring(v) end
  elseif istensor(v) then
    local f = flat(v)
    for i = 1, #f do
      if not finite(f[i]) then return string.format("%s[%d] = %s (tensor {%s})", path, i, tostring(f[i]),
        table.concat(v:shape(), ",")) end
    end
  elseif type(v) == "table" and getmetatable(v) == nil and depth < 4 then
    local keys = {}
    for k in next, v do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      local r = nonfinite(rawget(v, k), path .. "." .. tostring(k), depth + 1)
      if r then return r end
    end
  end
end

--- Does msg name the function: a string starting with one of prefixes?
function C.names(msg, prefixes)
  if type(msg) ~= "string" then return false end
  for _, p in ipairs(prefixes) do
    if msg:sub(1, #p) == p then return true end
  end
  return false
end

--- Runs one call. src: the call's source; name: the target's name;
-- prefixes: what an error message may start with; nan_ok: the call may
-- answer NaN from finite inputs; finite_in: the generator gave only finite
-- numbers. Returns outcome, findings, message.
function C.run(src, prefixes, nan_ok, finite_in)
  local findings = {}
  local chunk, perr = load(src, "=call", "t")
  if not chunk then return "setup", { "the generator wrote bad Lua: " .. tostring(perr) }, perr end
  local ok, fname, fn, args, mut = pcall(chunk)
  if not ok then
    -- building the arguments failed: fine when the library refused a
    -- fuzzed value with its own message, a finding (or a generator bug) if not
    local msg = fname
    if type(msg) ~= "string" or not msg:find("^segloss[.:%w_]") then
      findings[#findings + 1] = "setup failed with an error that names no segloss function: " .. tostring(msg)
    end
    return "setup", findings, msg
  end
  local mutable = {}
  -- (a value marked mutable may be any garbage, NaN included: only tensors matter)
  for _, v in ipairs(mut) do if v == v then mutable[v] = true end end
  local snaps = tensors_of(args)
  for _, s in ipairs(snaps) do s.before = bytes(s.t) end
  local res = table.pack(pcall(fn, table.unpack(args, 1, args.n)))
  if not res[1] then
    local msg = res[2]
    -- the generator's own functions raise "boom" and "inner": a user's error
    -- passes through unchanged, as it should
    local user = type(msg) == "string" and (msg:find("^call:%d+: boom$") or msg:find("^call:%d+: inner$"))
    -- Lua's own out-of-memory error (an allocation refused by the sanitizer's
    -- cap under make fuzz-lua): clean, but counted apart (C.memory)
    if msg == "not enough memory" then
      C.memory = C.memory + 1
      user = true
    end
    if not user and not C.names(msg, prefixes) then
      findings[#findings + 1] = string.format("error does not name the function (%s): %s",
        table.concat(prefixes, " | "), type(msg) == "string" and msg or ("a " .. type(msg) .. " " .. tostring(msg)))
    end
    for _, s in ipairs(snaps) do
      if bytes(s.t) ~= s.before then
        findings[#findings + 1] = string.format("%s changed by a call that failed (%s)", s.path, tostring(msg))
      end
    end
    return "error", findings, msg
  end
  if finite_in and not nan_ok then
    for i = 2, res.n do
      local r = nonfinite(res[i], "result" .. (i - 1), 0)
      if r then
        findings[#findings + 1] = "non-finite result from finite inputs: " .. r
        break
      end
    end
  end
  for _, s in ipairs(snaps) do
    if not mutable[s.t] and not s.path:find("%.out$") and bytes(s.t) ~= s.before then
      findings[#findings + 1] = string.format("%s changed by a successful call (not out, not in place)", s.path)
    end
  end
  return "ok", findings
end

return C
