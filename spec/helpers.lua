-- Shared test helpers (loaded with require "helpers"; spec/ is on the path).
local segloss = require "segloss"

local H = {}

--- Every backend this build knows, whether or not the CPU runs it.
function H.known_backends()
  return segloss.core.known_backends()
end

local function available(name)
  for _, b in ipairs(segloss.backends()) do
    if b == name then return true end
  end
  return false
end
H.available = available

local function backends_its(it, pending, desc, fn, simd_only)
  for _, b in ipairs(H.known_backends()) do
    if not (simd_only and b == "scalar") then
      it(desc .. " [" .. b .. "]", function()
        if not available(b) then
          pending(b .. " is not supported by this CPU")
          return
        end
        local prev = segloss.backend()
        segloss.set_backend(b)
        assert(segloss.backend() == b, "the backend in use is " .. segloss.backend())
        local ok, err = pcall(fn, b)
        segloss.set_backend(prev)
        if not ok then error(err, 0) end
      end)
    end
  end
end

--- One `it` per backend; a backend the CPU lacks is pending, not skipped.
-- fn(name) runs with that backend selected; the previous one is restored.
-- busted's `it` and `pending` live in the spec file's environment, so the
-- spec hands them over: H.backend_it(it, pending, "desc", fn).
function H.backend_it(it, pending, desc, fn)
  backends_its(it, pending, desc, fn, false)
end

--- One `it` per SIMD backend, for comparisons against the scalar
-- reference (which would only compare with itself).
function H.simd_it(it, pending, desc, fn)
  backends_its(it, pending, desc, fn, true)
end

--- Runs fn with n threads, restoring the previous count.
function H.with_threads(n, fn)
  local prev = segloss.threads()
  segloss.set_threads(n)
  local ok, a, b = pcall(fn)
  segloss.set_threads(prev)
  if not ok then error(a, 0) end
  return a, b
end

--- The float32 bits of v as an integer ordered like the floats.
local function key(v)
  local bits = string.unpack("<I4", string.pack("<f", v))
  if bits >= 0x80000000 then return -(bits - 0x80000000) end
  return bits
end

--- Distance in float32 ulps between a and b (both representable); NaN vs
-- NaN is 0, NaN vs a number is math.huge.
function H.ulps(a, b)
  if a ~= a or b ~= b then
    return (a ~= a and b ~= b) and 0 or math.huge
  end
  return math.abs(key(a) - key(b))
end

--- Asserts that fn(...) raises an error whose message starts with prefix
-- and contains every string of `parts` (plain text, not patterns).
function H.errors(prefix, parts, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error starting with " .. prefix)
  err = tostring(err)
  if err:sub(1, #prefix) ~= prefix then
    error(string.format("error message %q does not start with %q", err, prefix), 2)
  end
  for _, p in ipairs(parts or {}) do
    if not err:find(p, 1, true) then
      error(string.format("error message %q does not contain %q", err, p), 2)
    end
  end
  return err
end

--- A 0/1 tensor of the given shape, each element 1 with probability p
-- (the library's PRNG).
function H.bin(shape, p)
  local t = segloss.tensor.rand(shape)
  local f = t:reshape(t:numel())
  for i = 1, f:numel() do f:set(i, f:get(i) < p and 1 or 0) end
  return t
end

--- A label map (N, 1, S...) of classes 0 .. C-1 for an input shape (N, C, S...).
function H.labels(shape)
  local ls = { shape[1], 1 }
  for i = 3, #shape do ls[i] = shape[i] end
  local l = segloss.tensor.rand(ls) * shape[2]
  local f = l:reshape(l:numel())
  for i = 1, f:numel() do f:set(i, math.floor(f:get(i))) end
  return l
end

--- Do tensors a and b have the same shape?
function H.same_shape(a, b)
  if a:dim() ~= b:dim() then return false end
  for i = 1, a:dim() do
    if a:size(i) ~= b:size(i) then return false end
  end
  return true
end

--- The same bits: two numbers (as doubles), two tensors of one shape
-- (float by float, so -0 differs from 0 and a NaN equals only its own bits),
-- or two nils.
function H.same_bits(a, b)
  local function bits(v) return string.pack("<d", v) end
  if type(a) == "number" or type(b) == "number" then return type(a) == type(b) and bits(a) == bits(b) end
  if (a == nil) ~= (b == nil) then return false end
  if a == nil then return true end
  if not H.same_shape(a, b) then return false end
  local x, y = a:reshape(a:numel()):totable(), b:reshape(b:numel()):totable()
  for i = 1, #x do
    if bits(x[i]) ~= bits(y[i]) then return false end
  end
  return true
end

--- Reads a whole file (binary).
function H.readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- A fresh temporary file name, removed by H.cleanup().
local temps = {}
function H.tmpname(suffix)
  local name = os.tmpname()
  os.remove(name)
  name = name .. (suffix or "")
  temps[#temps + 1] = name
  return name
end

--- A new empty temporary directory (removed by H.cleanup with the other temporary names).
function H.tmpdir()
  local d = H.tmpname("")
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

function H.cleanup()
  for i, name in ipairs(temps) do
    os.remove(name)
    temps[i] = nil
  end
end

--- Reads a JSON file with lua-cjson.
function H.json(path)
  local cjson = require "cjson"
  return cjson.decode(H.readfile(path))
end

--- The loss registry (segloss.losses()), or its entries for which keep(d)
-- is true: the specs that run "every loss" iterate it, so a new loss joins
-- them by its descriptor alone.
function H.losses(keep)
  local out = {}
  for _, d in ipairs(require("segloss").losses()) do
    if not keep or keep(d) then out[#out + 1] = d end
  end
  return out
end

--- Does loss d take option o (and not refuse it)?
function H.takes(d, o) return d.options[o] ~= nil and not d.options[o].refused end

--- Does loss d allow activation a?
function H.allows(d, a)
  for _, v in ipairs(d.activations) do if v == a then return true end end
  return false
end

--- The activation a spec that runs every loss with one activation gives
-- loss d: the sigmoid where it is allowed, else the softmax, else "none"
-- (the Lovász hinge's real scores).
function H.act_for(d)
  if H.allows(d, "sigmoid") then return "sigmoid" end
  if H.allows(d, "softmax") then return "softmax" end
  return "none"
end

return H
