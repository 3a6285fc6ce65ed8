--- Files of an experiment (internal): a deterministic JSON writer, atomic
-- writes, directories and listings.
--
-- The writer sorts object keys and prints every number with %.17g (integers
-- with %d), so that the same values always give the same bytes and a number
-- read back is the number written. NaN and infinities, which JSON cannot
-- hold, are written as null.
-- @module segloss.experiment.files

local cjson = require "cjson"

local F = {}

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil end
  local k = 0
  for _ in pairs(t) do k = k + 1 end
  return k == n
end

local function num(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  local s = string.format("%.17g", v)
  if s == "-0" then s = "0" end
  return s
end

local function encode(v, indent, out)
  local tv = type(v)
  if v == nil or v == cjson.null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif tv == "number" then
    out[#out + 1] = num(v)
  elseif tv == "string" then
    out[#out + 1] = cjson.encode(v)
  elseif tv == "table" then
    local inner = indent .. "  "
    if is_array(v) then
      if #v == 0 then out[#out + 1] = "[]" return end
      -- arrays of plain values on one line (curves stay readable)
      local flat = true
      for _, e in ipairs(v) do if type(e) == "table" then flat = false break end end
      out[#out + 1] = "["
      for i, e in ipairs(v) do
        if i > 1 then out[#out + 1] = flat and ", " or "," end
        if not flat then out[#out + 1] = "\n" .. inner end
        encode(e, inner, out)
      end
      out[#out + 1] = flat and "]" or "\n" .. indent .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("segloss.experiment: JSON object keys must be strings", 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        out[#out + 1] = (i > 1 and ",\n" or "\n") .. inner .. cjson.encode(k) .. ": "
        encode(v[k], inner, out)
      end
      out[#out + 1] = "\n" .. indent .. "}"
    end
  else
    error("segloss.experiment: cannot write a " .. tv .. " as JSON", 0)
  end
end

--- JSON text of v: keys sorted, numbers %.17g, two-space indent, final newline.
function F.json(v)
  local out = {}
  encode(v, "", out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

F.num = num

-- cjson gives null as cjson.null and every number as a float: back to nil
-- and, for integral values, to integers
local function normalise(v)
  if v == cjson.null then return nil end
  if type(v) == "number" and math.type(v) == "float" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
    return math.tointeger(v)
  end
  if type(v) == "table" then
    for k, e in pairs(v) do v[k] = normalise(e) end
  end
  return v
end

--- The value in a JSON file, or nil and why.
function F.read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil, "cannot open " .. path end
  local text = f:read("a")
  f:close()
  local ok, v = pcall(cjson.decode, text)
  if not ok then return nil, path .. ": " .. tostring(v) end
  return normalise(v)
end

--- Writes text to path atomically: a temporary file beside it, then a
-- rename, so that path holds either its old or its new content, never a part.
function F.write(path, text)
  local tmp = path .. ".part"
  local f, err = io.open(tmp, "wb")
  if not f then error("segloss.experiment: cannot write " .. path .. ": " .. tostring(err), 0) end
  local ok, werr = f:write(text)
  if ok then ok, werr = f:flush() end
  f:close()
  if ok then ok, werr = os.rename(tmp, path) end
  if not ok then
    os.remove(tmp)
    error("segloss.experiment: cannot write " .. path .. ": " .. tostring(werr), 0)
  end
end

function F.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- mkdir -p; an error names fname (default segloss.experiment) and the path.
function F.mkdir(path, fname)
  local ok = os.execute("mkdir -p " .. quote(path) .. " 2>/dev/null")
  if not ok then
    error(string.format("%s: cannot create the directory '%s'", fname or "segloss.experiment", path), 0)
  end
end

--- Is path a directory?
function F.isdir(path)
  return os.execute("test -d " .. quote(path)) == true
end

--- The names in a directory, sorted (none when it does not exist).
function F.list(path)
  local names = {}
  local p = io.popen("ls -1A " .. quote(path) .. " 2>/dev/null")
  if not p then return names end
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

function F.join(a, b)
  if a:sub(-1) == "/" then return a .. b end
  return a .. "/" .. b
end

--- Copies a file (binary) atomically.
function F.copy(from, to)
  local s = F.read(from)
  if s then F.write(to, s) end
  return s ~= nil
end

return F
