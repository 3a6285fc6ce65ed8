--- The source builder of the Lua API fuzzer: one call as standalone Lua source.
--
-- A generator draws every choice from Lua's math.random, seeded with
-- (seed, index) for each call, so a call is the same source whatever ran
-- before it. It writes Lua lines (the arguments' construction), then the
-- call's function and arguments; fuzz/lua/api.lua runs the source, checks
-- the outcome, and prints the source as the repro of a finding.
local Gen = {}
Gen.__index = Gen

-- The prelude of every call: what any repro needs, and nothing that draws.
local PRELUDE = [[
local segloss = require "segloss"
local T, core, nn = segloss.tensor, segloss.core, segloss.nn
local DIR = os.getenv("SEGLOSS_FUZZ_DIR") or "/tmp"
-- a table whose every read collects garbage first (a GC in the middle of a call)
local function GC(v)
  return setmetatable({}, { __index = function(_, k) collectgarbage() return v[k] end,
    __len = function() collectgarbage() return #v end })
end
-- a table that reads as a and b in turn (a check, then a use, that read it twice disagree)
local function FICKLE(a, b)
  local n = 0
  return setmetatable({}, { __index = function(_, k) n = n + 1 return (n % 2 == 1 and a or b)[k] end,
    __len = function() n = n + 1 return #(n % 2 == 1 and a or b) end })
end]]

function Gen.new(seed, index, backends)
  math.randomseed(seed, index)
  local g = setmetatable({ lines = {}, nv = 0, finite = true, nan_ok = false, mut = {},
    root = {}, files = {}, index = index, backends = backends }, Gen)
  -- the state the call runs in: backend, threads, the library's seed
  g:emit("segloss.set_backend(%q); segloss.set_threads(%d); segloss.seed(%d)",
    backends[math.random(#backends)], math.random(1, 4), math.random(0, 1 << 30))
  if g:chance(0.04) then
    -- finalizers that allocate tensors while the call allocates
    g:emit("for _ = 1, %d do setmetatable({}, { __gc = function() local _ = T.zeros(%d) end }) end",
      math.random(1, 50), math.random(1, 300))
  end
  if g:chance(0.01) then
    -- a finalizer that changes the thread count in the middle of a call
    g:emit("setmetatable({}, { __gc = function() segloss.set_threads(%d) end })", math.random(1, 4))
  end
  return g
end

function Gen:emit(fmt, ...) self.lines[#self.lines + 1] = select("#", ...) > 0 and fmt:format(...) or fmt end
function Gen:chance(p) return math.random() < p end
function Gen:int(lo, hi) return math.random(lo, hi) end
function Gen:pick(list) return list[math.random(#list)] end
--- A new local holding expr; returns its name.
function Gen:var(expr, root)
  self.nv = self.nv + 1
  local v = "v" .. self.nv
  self:emit("local %s = %s", v, expr)
  self.root[v] = root and (self.root[root] or root) or v
  return v
end

--- A literal of a Lua value (numbers exactly, with the non-finite ones spelt).
local function lit(v)
  if type(v) == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "1/0" end
    if v == -math.huge then return "-1/0" end
    if math.type(v) == "integer" then
      return v == math.mininteger and "math.mininteger" or string.format("%d", v)
    end
    local s = string.format("%.17g", v)
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  elseif type(v) == "string" then
    return string.format("%q", v):gsub("\\\n", "\\n")
  elseif type(v) == "table" then
    local p = {}
    for i = 1, #v do p[i] = lit(v[i]) end
    return "{" .. table.concat(p, ", ") .. "}"
  end
  return tostring(v)
end
Gen.lit = lit

-- ---------------------------------------------------------------- garbage

-- Values of the wrong kind for about any argument; nf: not finite (a call
-- given one may answer NaN).
local GARBAGE = {
  { "nil" }, { "true" }, { "false" }, { "0" }, { "-1" }, { "0.5" }, { "-0.0" }, { "3" },
  { "0/0", nf = true }, { "1/0", nf = true }, { "-1/0", nf = true }, { "1e39", nf = true },
  { "2^63", nf = true }, { "-2^63", nf = true }, { "math.maxinteger" }, { "math.mininteger" },
  { "1e308", nf = true }, { "2^31", big = true }, { "-2^31 - 1" }, { "4294967297", big = true },
  { "1 << 28", big = true }, { "65536", big = true },
  { '""' }, { '"x"' }, { '"2"' }, { '"nan"' }, { 'string.rep("z", 300)' }, { '"a\\0b"' },
  { "{}" }, { "{1, 2}" }, { "{{}}" }, { "{0/0}", nf = true }, { "{n = 1}" }, { "{1, nil, 3}" },
  { "print" }, { 'function() error("inner") end' }, { "function() collectgarbage() end" },
  { "coroutine.create(print)" }, { "io.stdout" }, { "(function() local f = io.tmpfile() f:close() return f end)()" },
  { "T.zeros(1)" }, { "T.zeros(0)" }, { "T.zeros{2, 0, 3}" }, { "T.zeros(1, 1, 1, 1, 1)" },
  { "segloss.Dice{}" }, { "core" }, { "GC({2, 2})" },
  { 'setmetatable({}, { __index = function() error("boom") end })' },
  { 'setmetatable({}, { __name = "segloss.Tensor" })' },
  { 'core.conv_plan{dims = 2, cin = 1, cout = 1}' },
  { 'core.criterion_new("segloss.Dice", "dice", {})' },
  { "nn.ReLU()" }, { "segloss.schedule.constant(1)" },
}

--- A value of the wrong kind (an expression).
--- Gen.big: garbage may hold sizes whose tensors would take gigabytes
-- (2^31 elements): only under make fuzz-lua, whose ASan refuses any
-- allocation above max_allocation_size_mb (SEGLOSS_FUZZ_BIG=1 there);
-- elsewhere such a call would really allocate them.
Gen.big = os.getenv("SEGLOSS_FUZZ_BIG") == "1"

function Gen:garbage()
  if self.clean then return "nil" end
  local e = GARBAGE[math.random(#GARBAGE)]
  if e.big and not Gen.big then e = GARBAGE[1] end
  if e.nf then self.finite = false end
  return e[1]
end

--- The file names a garbage value can stand for when a call takes it for a
-- path (a number converts to a string: 0/0 names "-nan" or "nan"; a string
-- is cut at its first NUL), so that a run can remove what calls left in the
-- current directory.
function Gen.stray_names()
  local out = { "nan", "-nan", "a" }
  for _, e in ipairs(GARBAGE) do
    local f = load("return " .. e[1], "=garbage", "t", { math = math, string = string })
    local ok, v = pcall(f)
    if ok and (type(v) == "number" or type(v) == "string") and #tostring(v) > 0 and #tostring(v) < 200 then
      out[#out + 1] = tostring(v)
    end
  end
  return out
end

--- A near miss of a string: a letter dropped, doubled, changed or the case flipped.
function Gen:nearmiss(s)
  if #s == 0 then return "x" end
  local i = math.random(#s)
  local k = math.random(4)
  if k == 1 then return s:sub(1, i - 1) .. s:sub(i + 1) end
  if k == 2 then return s:sub(1, i) .. s:sub(i) end
  if k == 3 then return s:sub(1, i - 1) .. string.char(math.random(97, 122)) .. s:sub(i + 1) end
  return s:upper()
end

-- ---------------------------------------------------------------- numbers

--- A number expression meant to lie in [lo, hi] (integer if int), sometimes
-- an edge, a fraction where an integer is due, a negative, NaN, Inf or huge.
function Gen:num(lo, hi, int)
  local r = self.clean and 0 or math.random()
  if r < 0.75 then
    if int then return lit(math.random(lo, hi)) end
    return lit(lo + (hi - lo) * math.random())
  elseif r < 0.85 then
    return lit(self:pick { lo, hi })
  elseif r < 0.9 then
    return lit(int and (lo + 0.5) or (lo - 1))
  elseif r < 0.93 then
    return lit(-(math.abs(hi) + 1))
  end
  local e = self:pick { "0/0", "1/0", "-1/0", "1e39", "2^63", "-0.0", "math.maxinteger", "1e-45" }
  if e ~= "-0.0" and e ~= "math.maxinteger" and e ~= "1e-45" then self.finite = false end
  return e
end

--- Either a good value (expr) or, with probability p, garbage.
function Gen:maybe(expr, p)
  if not self.clean and self:chance(p or 0.08) then return self:garbage() end
  return expr
end

-- ---------------------------------------------------------------- shapes

--- A random shape: mind to maxd dimensions (a 6th is refused by the
-- library), at most maxn elements; with zeros, some dimensions are 0 (the
-- constructors refuse them, so only they are given such shapes).
function Gen:shape(mind, maxd, maxn, zeros)
  mind, maxd, maxn = mind or 1, maxd or 6, maxn or 512
  if maxd == 6 and math.random() < 0.9 then maxd = 5 end
  local nd = math.random(mind, maxd)
  local s, n = {}, 1
  for i = 1, nd do
    local d = zeros and math.random() < 0.05 and 0 or math.random(1, 6)
    if n * math.max(d, 1) > maxn then d = 1 end
    s[i] = d
    n = n * math.max(d, 1)
  end
  return s
end

local function numel(s)
  local n = 1
  for _, d in ipairs(s) do n = n * d end
  return n
end
Gen.numel = numel

--- A shape as an argument: a table, varargs, or a table read through GC().
function Gen:shapearg(s)
  local r = math.random()
  if r < 0.08 then return "GC(" .. lit(s) .. ")" end
  if r < 0.12 then
    local b = {}
    for i, d in ipairs(s) do b[i] = d * 4 + 3 end
    if math.random() < 0.5 then b[#b + 1] = 7 end
    return "FICKLE(" .. lit(s) .. ", " .. lit(b) .. ")"
  end
  return lit(s)
end

-- ---------------------------------------------------------------- tensors

--- A tensor of shape s; kind: "prob" ([0, 1)), "logit" (scaled randn),
-- "binary" (0/1), "labels" (integers 0..c-1), "any". Sometimes a view (of a
-- base that is then dropped and collected), sometimes with a bad value.
function Gen:tensor(s, kind, c)
  kind = kind or "any"
  local n = numel(s)
  local expr
  if kind == "binary" or kind == "labels" then
    local v = {}
    for i = 1, n do v[i] = kind == "binary" and math.random(0, 1) or math.random(0, (c or 2) - 1) end
    if n > 0 and self:chance(0.03) then
      v[math.random(n)] = self:pick { 0.5, -1, c or 2, 1e6 }
    end
    expr = string.format("T.from(%s, %s)", lit(v), lit(s))
  elseif kind == "prob" then
    expr = string.format("T.rand(%s)", lit(s))
  elseif kind == "logit" then
    local scale = self:pick { 1, 1, 3, 30, 1e4, 1e30 }
    if scale >= 1e4 then self.huge = true end
    expr = string.format("T.randn(%s):mul(%s)", lit(s), lit(scale))
  else
    local r = math.random(5)
    expr = r == 1 and string.format("T.zeros(%s)", lit(s)) or r == 2 and string.format("T.ones(%s)", lit(s))
      or r == 3 and string.format("T.rand(%s)", lit(s)) or string.format("T.randn(%s)", lit(s))
  end
  local v
  local r = math.random()
  if r < 0.06 and n > 0 then
    -- a view of a collected base: the base is dropped before the call
    self.nv = self.nv + 1
    v = "v" .. self.nv
    self:emit("local %s do local base = %s:reshape(%d); %s = base:reshape(%s); base = nil end collectgarbage()",
      v, expr, n, v, lit(s))
    self.root[v] = v
  elseif r < 0.1 and n > 0 and #s > 0 and kind ~= "binary" and kind ~= "labels" then
    -- a narrowed view of a larger base (offset storage)
    local big = {}
    for i, d in ipairs(s) do big[i] = d end
    big[1] = s[1] + 2
    local bigexpr = expr:gsub(lit(s):gsub("%p", "%%%0"), lit(big), 1)
    v = self:var(string.format("(%s):narrow(1, 2, %d)", bigexpr, s[1]))
  else
    v = self:var(expr)
  end
  if n > 0 and #s > 0 and kind ~= "binary" and kind ~= "labels" and self:chance(0.04) then
    local bad = self:pick { "0/0", "1/0", "-1/0", "1e38", "-1e38", "1e-40" }
    if bad == "0/0" or bad:find("1/0") then self.finite = false end
    if bad:find("e38") then self.huge = true end
    local idx = {}
    for i, d in ipairs(s) do idx[i] = math.random(1, d) end
    self:emit("%s:set(%s, %s)", v, table.concat(idx, ", "), bad)
  end
  return v
end

--- A view of v (same storage): reshape, narrow or select.
function Gen:view(v, s)
  local n = numel(s)
  if n == 0 then return v end
  return self:var(string.format("%s:reshape(%d)", v, n), v)
end

--- Marks tensors (and everything sharing their storage) as written by the call.
function Gen:mutable(v)
  self.mut[self.root[v] or v] = true
end

-- ---------------------------------------------------------------- files

--- A fresh path in the fuzzer's directory (removed after the call).
function Gen:path(ext)
  local p = string.format("DIR .. %q", string.format("/c%d_%d%s", self.index, #self.files + 1, ext or ""))
  self.files[#self.files + 1] = p
  return p
end

--- Writes bytes (a Lua string) to a new file; returns the path expression.
function Gen:file(bytes, ext)
  local p = self:path(ext)
  self:emit("do local f = assert(io.open(%s, 'wb')) f:write(%s) f:close() end", p, lit(bytes))
  return p
end

--- Random bytes, or a mutation of good bytes: truncated, bytes flipped, grown.
function Gen:mutate(bytes)
  local r = math.random()
  if r < 0.3 then return bytes:sub(1, math.random(0, #bytes)) end
  local b = { bytes:byte(1, -1) }
  local flips = math.random(1, 8)
  for _ = 1, flips do
    if #b == 0 then break end
    local i = math.random(#b)
    b[i] = math.random() < 0.5 and math.random(0, 255) or (b[i] ~ (1 << math.random(0, 7)))
  end
  local s = {}
  for i, x in ipairs(b) do s[i] = string.char(x) end
  local out = table.concat(s)
  if r > 0.9 then out = out .. string.rep("\255", math.random(1, 64)) end
  return out
end

function Gen:randbytes(n)
  local s = {}
  for i = 1, n do s[i] = string.char(math.random(0, 255)) end
  return table.concat(s)
end

-- ---------------------------------------------------------------- options

--- An options table expression from spec {name = function(g) -> expr}: a
-- few of them, sometimes a near-miss or unknown key, a wrong-typed value, a
-- table with a metatable, or not a table at all.
function Gen:opts(spec, maxn)
  local names = {}
  for k in pairs(spec) do names[#names + 1] = k end
  table.sort(names)
  local r = self.clean and 1 or math.random()
  if r < 0.03 then return self:garbage() end
  if r < 0.1 then return "nil" end
  local parts, used = {}, {}
  for _ = 1, math.random(0, maxn or 3) do
    if #names == 0 then break end
    local k = names[math.random(#names)]
    if not used[k] then
      used[k] = true
      local v = self:chance(0.07) and self:garbage() or spec[k](self)
      parts[#parts + 1] = string.format("[%q] = %s", k, v)
    end
  end
  if self.clean then return "{" .. table.concat(parts, ", ") .. "}" end
  if self:chance(0.05) and #names > 0 then
    parts[#parts + 1] = string.format("[%q] = %s", self:nearmiss(names[math.random(#names)]), "1")
  end
  if self:chance(0.02) then parts[#parts + 1] = self:pick { "[1] = 1", "[true] = 1", "[2.5] = 1" } end
  local t = "{" .. table.concat(parts, ", ") .. "}"
  if self:chance(0.03) then t = "GC(" .. t .. ")" end
  return t
end

--- The source of the call: the prelude, the lines, then a return of the
-- function's name, the function, the packed arguments and the tensors the
-- call may write.
function Gen:source(name, fn, args)
  local mut = {}
  for v in pairs(self.mut) do mut[#mut + 1] = v end
  table.sort(mut)
  local muts = {}
  for v, root in pairs(self.root) do
    if self.mut[root] then muts[#muts + 1] = v end
  end
  table.sort(muts)
  for _, v in ipairs(mut) do
    if not self.root[v] then muts[#muts + 1] = v end
  end
  local body = table.concat(self.lines, "\n")
  local call = string.format("return %q, %s, table.pack(%s), {%s}", name, fn, table.concat(args, ", "),
    table.concat(muts, ", "))
  return PRELUDE .. "\n" .. body .. "\n" .. call .. "\n"
end

return Gen
