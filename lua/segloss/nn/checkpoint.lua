--- Checkpoints: one uncompressed .npz file (a zip of .npy files, which
-- numpy.load opens) holding
--
--   segloss_meta              JSON as uint8 bytes: the format, the module's
--                             architecture, the names below, the optimiser's
--                             settings and step
--   param.<name>              every parameter (float32, PyTorch layout)
--   buffer.<name>             running statistics (BatchNorm)
--   optim.<i>.<slot>          the optimiser's per-parameter state, when saved
--
-- In Python: `z = numpy.load("unet.npz"); z["param.enc0.unit1.conv.weight"]`,
-- `json.loads(bytes(z["segloss_meta"]))`.
-- @module segloss.nn.checkpoint

local core = require "segloss.core"
local U = require "segloss.util"
local cjson = require "cjson"

local C = {}

local FORMAT, VERSION = "segloss.checkpoint", 1

-- The architecture of m as a plain table that rebuilds it.
local function config_of(m)
  if m._class == "Sequential" then
    local ch = {}
    for i, sub in ipairs(m.modules) do ch[i] = config_of(sub) end
    return { class = "Sequential", children = ch }
  end
  return { class = m._class, args = m._config.args, opts = m._config.opts }
end

-- JSON gives back numbers as floats and null as cjson.null: integral
-- floats become integers again (stride 2, not 2.0), null becomes nil.
local function plain(v)
  if v == cjson.null then return nil end
  if math.type(v) == "float" and math.tointeger(v) then return math.tointeger(v) end
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = plain(x) end
    return out
  end
  return v
end

local function build(nn, cfg, path)
  local function bad(what)
    error(string.format("segloss.nn.load: %s: the architecture in the file is not valid (%s)", path, what), 0)
  end
  if type(cfg) ~= "table" or type(cfg.class) ~= "string" then bad("no class") end
  if cfg.class == "Sequential" then
    if type(cfg.children) ~= "table" then bad("a Sequential without children") end
    local list = {}
    for i, c in ipairs(cfg.children) do list[i] = build(nn, c, path) end
    return nn.Sequential(list)
  end
  local cls = nn[cfg.class]
  if cls == nil or cfg.class == "Module" or type(cls) ~= "table" then bad("unknown class " .. U.describe(cfg.class)) end
  if type(cfg.args) ~= "table" or type(cfg.opts) ~= "table" then
    bad(cfg.class .. " needs a list args and a table opts")
  end
  local n = #cfg.args
  local a = table.move(cfg.args, 1, n, 1, {})
  -- options only when there are any: MaxPool2d(k) and Concat() take none
  if next(cfg.opts) ~= nil then
    n = n + 1
    a[n] = cfg.opts
  end
  local ok, m = pcall(cls, table.unpack(a, 1, n))
  if not ok then bad(tostring(m)) end
  return m
end

-- core.npz_save / npz_load under the public name: their errors (a full
-- disk, a missing file) name the function the user called, not the core's.
local function npz(fname, f, ...)
  local ok, v = pcall(f, ...)
  if ok then return v end
  if type(v) == "string" then
    local rest = v:match("^segloss%.core%.npz_%w+: (.*)$")
    if rest then v = fname .. ": " .. rest end
  end
  error(v, 0)
end

--- Saves module m to path; opts.optim: an optimiser whose state is saved too.
function C.save(m, path, opts)
  local fname = "segloss.nn.Module:save"
  opts = U.options(fname, opts, { optim = function(v)
    if type(v) ~= "table" or type(v.state) ~= "function" then return "a segloss.optim optimiser" end
  end })
  if type(path) ~= "string" then
    error(string.format("%s: path must be a string, got %s", fname, U.describe(path)), 0)
  end
  local ps, _, names = m:parameters()
  local bufs = m:buffers()
  local meta = { format = FORMAT, version = VERSION, segloss = require("segloss")._VERSION,
                 model = config_of(m), params = names, buffers = {} }
  local entries = { { "segloss_meta", "" } }
  for i, p in ipairs(ps) do entries[#entries + 1] = { "param." .. names[i], p } end
  for i, b in ipairs(bufs) do
    meta.buffers[i] = b.name
    entries[#entries + 1] = { "buffer." .. b.name, b.value }
  end
  if opts.optim then
    local st = opts.optim:state()
    meta.optim = { kind = st.kind, step = st.step, lr = st.lr, opts = st.opts, slots = {} }
    for i, e in ipairs(st.tensors) do
      meta.optim.slots[i] = e.name
      entries[#entries + 1] = { "optim." .. e.name, e.tensor }
    end
  end
  entries[1][2] = cjson.encode(meta)
  npz(fname, core.npz_save, path, entries)
  return m
end

-- The entries of a checkpoint by name, and its metadata (with `optional`, a
-- file without segloss_meta is fine: nil metadata).
local function read(fname, path, optional)
  if type(path) ~= "string" then
    error(string.format("%s: path must be a string, got %s", fname, U.describe(path)), 0)
  end
  local list = npz(fname, core.npz_load, path)
  local by = { [0] = list }
  for _, e in ipairs(list) do by[e.name] = e end
  local m = by.segloss_meta
  if not m and optional then return by, nil end
  local ok, meta = pcall(cjson.decode, m and m.bytes or "")
  if not m or not m.bytes or not ok or type(meta) ~= "table" or meta.format ~= FORMAT then
    error(string.format("%s: %s is a .npz file but not a segloss checkpoint (no valid segloss_meta entry)",
      fname, path), 0)
  end
  meta = plain(meta)
  if meta.version ~= VERSION then
    error(string.format("%s: %s has checkpoint version %s; this segloss reads version %d", fname, path,
      U.describe(meta.version), VERSION), 0)
  end
  return by, meta
end

-- Copies the file's tensors into m's parameters and buffers, after checking
-- every name and shape (nothing is changed if one does not match).
local function fill(fname, path, m, by)
  local ps, _, names = m:parameters()
  local bufs = m:buffers()
  local todo, used = {}, { segloss_meta = true }
  by = by or {}
  local function want(kind, name, t)
    local key = kind .. "." .. name
    local e = by[key]
    if not e then
      error(string.format("%s: %s has no %s %s", fname, path, kind == "param" and "parameter" or "buffer", name), 0)
    end
    if not require("segloss.nn.Module").same_shape(e.tensor, t:shape()) then
      error(string.format("%s: %s %s has the shape %s in the module but %s in %s", fname,
        kind == "param" and "parameter" or "buffer", name, U.shapestr(t), U.shapestr(e.tensor), path), 0)
    end
    used[key] = true
    todo[#todo + 1] = { t, e.tensor }
  end
  for i, p in ipairs(ps) do want("param", names[i], p) end
  for _, b in ipairs(bufs) do want("buffer", b.name, b.value) end
  for _, e in ipairs(by[0]) do
    local key = e.name
    if not used[key] and not key:find("^optim%.") then
      error(string.format("%s: %s holds %s, which the module does not have", fname, path, key), 0)
    end
  end
  for _, pair in ipairs(todo) do pair[1]:copy(pair[2]) end
end

-- The optimiser's state the metadata lists, with its tensors; checked before
-- fill changes anything, so that a file with a broken state leaves the module as it was.
local function optim_state(fname, meta, by, path)
  local st = meta and meta.optim
  if type(st) ~= "table" then return nil end
  local tensors = {}
  for i, name in ipairs(type(st.slots) == "table" and st.slots or {}) do
    if type(name) ~= "string" then
      error(string.format("%s: %s: optimiser slot %d must be a name, got %s", fname, path, i,
        U.describe(name)), 0)
    end
    local e = by["optim." .. name]
    if not e then
      error(string.format("%s: %s lists the optimiser state optim.%s but does not hold it",
        fname, path, name), 0)
    end
    tensors[i] = { name = name, tensor = e.tensor }
  end
  st.slots = nil
  st.tensors = tensors
  return st
end

function C.load(nn, path)
  local by, meta = read("segloss.nn.load", path)
  local m = build(nn, meta.model, path)
  local st = optim_state("segloss.nn.load", meta, by, path)
  fill("segloss.nn.load", path, m, by)
  return m, { optim = st, meta = meta }
end

-- Also reads a plain .npz of param.<name> (and buffer.<name>) entries, e.g.
-- written by numpy from a PyTorch state_dict: names and shapes are checked all the same.
function C.load_into(m, path)
  local by, meta = read("segloss.nn.Module:load", path, true)
  local st = optim_state("segloss.nn.Module:load", meta, by, path)
  fill("segloss.nn.Module:load", path, m, by)
  return m, { optim = st, meta = meta }
end

return C
