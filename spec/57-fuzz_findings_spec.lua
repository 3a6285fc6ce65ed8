-- What the libFuzzer harnesses (fuzz/c, make fuzz-c) found, each as a file
-- in spec/fixtures loaded from Lua: the spec failed before its fix.
local segloss = require "segloss"
local core = segloss.core

local PNG = "spec/fixtures/png/"

-- runs a Lua snippet in a new lua5.4 (the same module paths and, under make
-- asan, the same preloaded sanitizers); its output
local function lua(script)
  local cmd = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q lua5.4 -e %q 2>&1", package.path, package.cpath, script)
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  f:close()
  return out
end

describe("fuzz findings: PNG", function()
  it("an ancillary chunk that claims 300 MB is neither allocated nor cleared", function()
    -- libpng only warned about the length, then allocated and cleared it:
    -- 300 MB of resident memory (1.7 GB and 15 s for a 72-byte file)
    local out = lua([[
      local core = require "segloss.core"
      local function hwm()
        for l in io.lines("/proc/self/status") do
          local v = l:match("^VmHWM:%s*(%d+)")
          if v then return tonumber(v) end
        end
      end
      local before = hwm()
      local ok, err = pcall(core.png_load, "]] .. PNG .. [[huge_text.png")
      print(string.format("%d KiB; %s; %s", hwm() - before, tostring(ok), tostring(err)))
    ]])
    local kib, ok, err = out:match("^(%d+) KiB; (%a+); (.-)\n$")
    assert.is_truthy(kib, out)
    assert.equal("false", ok)
    assert.equal("segloss.core.png_load: '" .. PNG .. "huge_text.png' is a damaged PNG file: Read Error", err)
    assert.is_true(tonumber(kib) < 64 * 1024, "the peak resident size grew by " .. kib .. " KiB")
  end)

  it("a palette PNG with transparency reads as intensities (alpha dropped)", function()
    -- the palette's tRNS became a second channel: "cannot convert to grey"
    local g, depth = core.png_load(PNG .. "palette_trns.png", "grey")
    assert.equal(8, depth)
    -- palette (0,1,2), (3,4,5), (6,7,8): libpng's luminance of these colours,
    -- what an RGB PNG of the same pixels gives
    assert.same({ { 0, 3, 6, 3 }, { 6, 3, 0, 0 } }, g:totable())
    local v = core.png_load(PNG .. "palette_trns.png")
    assert.same({ { 0, 1, 2, 1 }, { 2, 1, 0, 0 } }, v:totable())
  end)
end)

describe("fuzz findings: checkpoints", function()
  local H = require "spec.helpers"
  local nn, cjson = segloss.nn, require "cjson"
  after_each(H.cleanup)

  -- a checkpoint of a Conv2d with every tensor 7 and the metadata's optimiser
  -- state replaced by `optim`; extra entries appended
  local function broken(optim, extra)
    segloss.seed(1)
    local path = H.tmpname(".npz")
    nn.Conv2d(1, 2, 3, { padding = 1 }):save(path)
    local list = {}
    for _, e in ipairs(core.npz_load(path)) do
      if e.name == "segloss_meta" then
        local meta = cjson.decode(e.bytes)
        meta.optim = optim
        list[#list + 1] = { e.name, cjson.encode(meta) }
      else
        list[#list + 1] = { e.name, e.tensor:clone():fill(7) }
      end
    end
    for _, e in ipairs(extra or {}) do list[#list + 1] = e end
    core.npz_save(path, list)
    return path
  end

  -- (optim.* entries are read by the optimiser's load_state, which checks them)
  local cases = {
    { "a slot that is not a name", { slots = { 1 } }, nil, "optimiser slot 1 must be a name, got 1" },
    { "a slot the file does not hold", { slots = { "m.weight" } }, nil, "lists the optimiser state optim.m.weight" },
  }
  for _, c in ipairs(cases) do
    it("Module:load of a file whose optimiser state is broken (" .. c[1] .. ") leaves the module as it was", function()
      -- the parameters were copied before the state was checked, and the
      -- error named segloss.nn.load
      local path = broken(c[2], c[3])
      segloss.seed(1)
      local m = nn.Conv2d(1, 2, 3, { padding = 1 })
      local w, b = m.weight:clone(), m.bias:clone()
      H.errors("segloss.nn.Module:load: ", { path, c[4] }, m.load, m, path)
      assert.is_true(H.same_bits(w, m.weight))
      assert.is_true(H.same_bits(b, m.bias))
      H.errors("segloss.nn.load: ", { path, c[4] }, nn.load, path)
    end)
  end

  it("Module:load of the same file with a good state fills the module", function()
    local path = broken({ slots = {} })
    local m = nn.Conv2d(1, 2, 3, { padding = 1 })
    m:load(path)
    assert.equal(7 * 18, m.weight:sum())
    assert.equal(14, m.bias:sum())
  end)
end)
