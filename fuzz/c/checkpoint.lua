--- The Lua side of fuzz_checkpoint (libFuzzer): checkpoints through
-- segloss.nn.load and Module:load (lua/segloss/nn/checkpoint.lua on top of
-- the .npz reader). An input is either
--   a whole file ("PK..."): written as it is, then loaded; or
--   a description: the JSON of segloss_meta, "\0", then entries, each
--   `name "\0" k` and, for k % 7 < 6, k % 7 dimensions (a byte each,
--   modulo 16, 0 included) and a fill byte (a number of NUMBERS), else a length byte
--   and that many bytes (a byte string entry): written by
--   segloss.core.npz_save, then loaded. The fuzzer mutates the
--   architecture (classes, their arguments and options), the version, the
--   names and shapes of the tensors and the optimiser's state.
--
-- run(bytes) returns nil or the broken invariant: an error is a string that
-- starts with "segloss."; a load that succeeds gives a module whose
-- parameters have the file's values; Module:load that fails leaves the
-- module as it was.
local segloss = require "segloss"
local nn = segloss.nn
local T = segloss.tensor
local core = segloss.core

local M = {}

local DIR = (os.getenv("TMPDIR") or "/tmp") .. "/segloss-fuzz-checkpoint-" .. tostring(os.time()) ..
  "-" .. tostring(math.random(1 << 30))
assert(os.execute("mkdir -p '" .. DIR .. "'"))
local PATH = DIR .. "/ckpt.npz"
M.DIR, M.PATH = DIR, PATH -- fuzz_checkpoint.c removes them at exit

local NUMBERS = { 0, 1, -1, 0.5, 0 / 0, math.huge, -math.huge, 3.4028235e38, 1e-45, -0.0, 2, 1e-3 }

-- the models Module:load fills in, and the seeds of the corpus
local function models()
  segloss.seed(1)
  return {
    nn.Conv2d(1, 2, 3, { padding = 1 }),
    nn.Sequential { nn.Conv2d(1, 2, 3), nn.BatchNorm(2), nn.ReLU() },
    nn.UNet { input = 1, output = 1, base = 2, depth = 2, dims = 2 },
  }
end
local REF = models()

local function params_print(m)
  local out = {}
  local ps, _, names = m:parameters()
  for i, p in ipairs(ps) do out[#out + 1] = string.format("%s=%.9g/%.9g", names[i], p:sum(), p:max()) end
  for _, b in ipairs(m:buffers()) do out[#out + 1] = string.format("%s=%.9g", b.name, b.value:sum()) end
  return table.concat(out, ";")
end
local REF_PRINTS = {}
for i, m in ipairs(REF) do REF_PRINTS[i] = params_print(m) end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- the description's entries; nil if the bytes end inside one
local function entries(s, pos)
  local list = {}
  while pos <= #s do
    local z = s:find("\0", pos, true)
    if not z or z + 1 > #s then return list end
    local name = s:sub(pos, z - 1)
    local k = s:byte(z + 1)
    pos = z + 2
    local nd = k % 7
    if nd == 6 then
      local n = s:byte(pos) or 0
      list[#list + 1] = { name, s:sub(pos + 1, pos + n) }
      pos = pos + 1 + n
    else
      local shape = { s:byte(pos, pos + nd - 1) }
      for i, d in ipairs(shape) do shape[i] = d % 16 end -- at most 15^5 elements: fast
      local fill = s:byte(pos + nd) or 0
      pos = pos + nd + 1
      local ok, t = pcall(T.full, shape, NUMBERS[fill % #NUMBERS + 1])
      list[#list + 1] = { name, ok and t or shape }
    end
  end
  return list
end

local function check_error(err, what)
  if type(err) ~= "string" then return what .. ": an error that is not a string: " .. tostring(err) end
  if err:sub(1, 8) ~= "segloss." then return what .. ": an error that does not name the function: " .. err end
end

-- the file's tensors by name, read back with the .npz reader
local function file_tensors()
  local by = {}
  for _, e in ipairs(core.npz_load(PATH)) do by[e.name] = e.tensor end
  return by
end

local function same(a, b)
  if a:numel() ~= b:numel() then return false end
  local x, y = a:reshape(a:numel()):totable(), b:reshape(b:numel()):totable()
  for i = 1, #x do
    if string.pack("<f", x[i]) ~= string.pack("<f", y[i]) then return false end
  end
  return true
end

local function check_loaded(m, what)
  if type(m) ~= "table" or type(m.parameters) ~= "function" then return what .. ": no module" end
  local by = file_tensors()
  local ps, _, names = m:parameters()
  for i, p in ipairs(ps) do
    local t = by["param." .. names[i]]
    if not t or not same(t, p) then return what .. ": parameter " .. names[i] .. " is not the file's" end
  end
end

M.runs = 0
function M.run(s)
  M.runs = M.runs + 1
  if s:sub(1, 2) == "PK" then
    write(PATH, s)
  else
    local z = s:find("\0", 1, true)
    local list = { { "segloss_meta", z and s:sub(1, z - 1) or s } }
    for _, e in ipairs(z and entries(s, z + 1) or {}) do list[#list + 1] = e end
    if list[1][2] == "" then list[1][2] = "{}" end
    local ok, err = pcall(core.npz_save, PATH, list)
    if not ok then return check_error(err, "segloss.core.npz_save") end
  end
  local ok, m, info = pcall(nn.load, PATH)
  if not ok then
    local bad = check_error(m, "segloss.nn.load")
    if bad then return bad end
  else
    if type(info) ~= "table" then return "segloss.nn.load: no second result" end
    local bad = check_loaded(m, "segloss.nn.load")
    if bad then return bad end
  end
  local k = #s % #REF + 1
  local ref = REF[k]
  ok, m = pcall(ref.load, ref, PATH)
  if not ok then
    local bad = check_error(m, "Module:load")
    if bad then return bad end
    if params_print(ref) ~= REF_PRINTS[k] then return "Module:load failed but changed the module" end
  else
    local bad = check_loaded(ref, "Module:load")
    if bad then return bad end
    REF_PRINTS[k] = params_print(ref)
  end
end

-- the seeds (fuzz/c/corpus/checkpoint): each model saved whole, with an
-- optimiser's state, and as a description
function M.seeds(dir)
  local cjson = require "cjson"
  for i, m in ipairs(models()) do
    local opt = segloss.optim.Adam(m, { lr = 1e-3 })
    local p = dir .. "/model" .. i .. ".npz"
    m:save(p, { optim = opt })
    local desc = {}
    for _, e in ipairs(core.npz_load(p)) do
      if e.name == "segloss_meta" then
        table.insert(desc, 1, e.bytes .. "\0")
      else
        local sh = e.tensor:shape()
        local ok = #sh <= 5
        for _, d in ipairs(sh) do ok = ok and d <= 255 end
        if ok then desc[#desc + 1] = e.name .. "\0" .. string.char(#sh) .. string.char(table.unpack(sh)) .. "\1" end
      end
    end
    write(dir .. "/model" .. i .. ".desc", table.concat(desc))
  end
  -- a slot that is not a name (CI's fuzz round found Module:load copying the
  -- parameters before it checked the optimiser's state)
  local f = assert(io.open(dir .. "/model1.desc", "rb"))
  write(dir .. "/bad_slot.desc", (f:read("a"):gsub('"slots":%[', '"slots":[1,', 1)))
  f:close()
  write(dir .. "/bad_version.desc", cjson.encode { format = "segloss.checkpoint", version = 2 } .. "\0")
end

return M
