-- .npz archives (segloss.core.npz_save / npz_load / npz_load_string):
-- round trips, archives written by NumPy (fixtures of
-- tools/make_npz_fixtures.py, and live through /usr/bin/python3 when it has
-- numpy), and every way an archive or a save can go wrong.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local core = segloss.core

local DIR = "spec/fixtures/npz/"
local LOAD = "segloss.core.npz_load: "
local SAVE = "segloss.core.npz_save: "

-- the float32 bits of every element, so that -0 and 0 differ
local function bits(t)
  local out = {}
  for i, v in ipairs(t:reshape(t:numel()):totable()) do out[i] = string.pack("<f", v) end
  return table.concat(out)
end

local function writefile(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- the names in a directory (ls -A), sorted
local function listdir(d)
  local names = {}
  for n in assert(io.popen("ls -A " .. d)):lines() do names[#names + 1] = n end
  table.sort(names)
  return names
end

local function tmpdir()
  local d = H.tmpname(".d")
  assert(os.execute("mkdir " .. d))
  return d
end

local function rmdir(d) os.execute("rm -rf " .. d) end

local function has_numpy()
  return os.execute("unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; " ..
    "/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == true
end

-- runs a Python snippet (argv[1..]) without the sanitizer runtime; its stdout
local function python(code, ...)
  local script = H.tmpname(".py")
  writefile(script, code)
  local args = { "unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; /usr/bin/python3", script, ... }
  local f = assert(io.popen(table.concat(args, " ") .. " 2>&1"))
  local out = f:read("a")
  local ok = f:close()
  assert(ok, "python failed:\n" .. out)
  return out
end

describe("npz", function()
  after_each(H.cleanup)

  describe("round trip", function()
    it("keeps tensors of 1 to 5 dimensions bit for bit, strings byte for byte, names in order", function()
      segloss.seed(45)
      local special = T.from { 0, -0.0, 1 / 0, -1 / 0, 1e-45, 3.4028234663852886e38,
        -3.4028234663852886e38, 0 / 0 }
      local json = '{"epoch": 7, "name": "caf\xc3\xa9", "zero": "\0 byte"}'
      local entries = {
        { "z_first", T.randn(5) },
        { "enc0.unit1.conv.weight", T.randn(8, 3, 3, 3) * 1e30 },
        { "a-2D", T.randn(3, 4) },
        { "vol", T.randn(1, 2, 3, 2, 2) },
        { "special", special },
        { "meta", json },
        { "four", T.randn(2, 1, 3, 4) },
        { "one", T.from { 42 } },
        { "byte", "\255" },
      }
      local p = H.tmpname(".npz")
      assert.is_nil(core.npz_save(p, entries))
      local got = core.npz_load(p)
      assert.equal(#entries, #got)
      for i, e in ipairs(entries) do
        assert.equal(e[1], got[i].name)
        if type(e[2]) == "string" then
          assert.equal(e[2], got[i].bytes)
          assert.same({ #e[2] }, got[i].tensor:shape())
          assert.equal(e[2]:byte(1), got[i].tensor:get(1))
        else
          assert.is_nil(got[i].bytes)
          assert.same(e[2]:shape(), got[i].tensor:shape())
          assert.equal(bits(e[2]), bits(got[i].tensor), e[1])
        end
      end
      -- the NaN stays a NaN (its payload is not promised)
      local back = got[5].tensor:get(8)
      assert.is_true(back ~= back)
      -- the same bytes again from memory
      local again = core.npz_load_string(H.readfile(p))
      assert.equal(#entries, #again)
      assert.equal(bits(got[2].tensor), bits(again[2].tensor))
    end)

    it("writes the same bytes for the same entries (fixed time stamps)", function()
      local p, q = H.tmpname(".npz"), H.tmpname(".npz")
      local e = { { "w", T.from { { 1, 2 }, { 3, 4 } } }, { "m", "{}" } }
      core.npz_save(p, e)
      core.npz_save(q, e)
      assert.equal(H.readfile(p), H.readfile(q))
    end)

    it("saves a view with the view's shape, and an empty archive", function()
      local p = H.tmpname(".npz")
      core.npz_save(p, { { "v", T.from({ 1, 2, 3, 4, 5, 6 }, { 2, 3 }):reshape(3, 2) } })
      assert.same({ 3, 2 }, core.npz_load(p)[1].tensor:shape())
      core.npz_save(p, {})
      assert.same({}, core.npz_load(p))
    end)

    it("replaces an existing file, keeps its mode, follows a symbolic link", function()
      local d = tmpdir()
      local target, link = d .. "/t.npz", d .. "/l.npz"
      core.npz_save(target, { { "a", T.zeros(2) } })
      assert.is_true(os.execute("chmod 640 " .. target .. " && ln -s t.npz " .. link))
      core.npz_save(link, { { "b", T.ones(3) } })
      local f = assert(io.popen("stat -c '%a %F' " .. target .. "; stat -c %F " .. link))
      assert.equal("640 regular file", f:read("l"))
      assert.equal("symbolic link", f:read("l"))
      f:close()
      local got = core.npz_load(target)
      assert.equal("b", got[1].name)
      assert.same({ "l.npz", "t.npz" }, listdir(d))
      rmdir(d)
    end)
  end)

  describe("reads what NumPy writes", function()
    local expected = H.json(DIR .. "expected.json")
    for _, file in ipairs { "savez.npz", "savez_compressed.npz" } do
      it(file, function()
        local got = core.npz_load(DIR .. file)
        local want = expected[file]
        assert.equal(#want, #got)
        for i, w in ipairs(want) do
          assert.equal(w.name, got[i].name)
          assert.same(w.shape, got[i].tensor:shape())
          assert.same(w.data, got[i].tensor:reshape(got[i].tensor:numel()):totable())
          assert.equal(w.bytes, got[i].bytes)
        end
        -- -0 in the 'special' entry is still negative
        local special = got[7].tensor
        assert.equal("special", got[7].name)
        assert.equal(-1 / 0, 1 / special:get(2))
      end)
    end
  end)

  describe("NumPy, live (/usr/bin/python3)", function()
    it("numpy.load reads what segloss writes: names, dtypes, shapes, values", function()
      if not has_numpy() then
        pending("/usr/bin/python3 has no numpy")
        return
      end
      segloss.seed(7)
      local w, v = T.randn(4, 3, 3, 3), T.randn(1, 2, 2, 2, 3)
      local meta = '{"epoch": 2, "loss": 0.125}'
      local p = H.tmpname(".npz")
      core.npz_save(p, { { "w", w }, { "meta", meta }, { "v", v } })
      local out = python([==[
import json, sys
import numpy as np
z = np.load(sys.argv[1])
print(json.dumps({"files": z.files,
                  "dtypes": [str(z[k].dtype) for k in z.files],
                  "shapes": [list(z[k].shape) for k in z.files],
                  "w": [float(x) for x in z["w"].ravel()],
                  "v": [float(x) for x in z["v"].ravel()],
                  "meta": json.loads(z["meta"].tobytes().decode())}))
]==], p)
      local r = require("cjson").decode(out)
      assert.same({ "w", "meta", "v" }, r.files)
      assert.same({ "float32", "uint8", "float32" }, r.dtypes)
      assert.same({ { 4, 3, 3, 3 }, { #meta }, { 1, 2, 2, 2, 3 } }, r.shapes)
      assert.same(w:reshape(w:numel()):totable(), r.w)
      assert.same(v:reshape(v:numel()):totable(), r.v)
      assert.same({ epoch = 2, loss = 0.125 }, r.meta)
    end)

    it("segloss reads numpy.savez and numpy.savez_compressed", function()
      if not has_numpy() then
        pending("/usr/bin/python3 has no numpy")
        return
      end
      local p, q = H.tmpname(".npz"), H.tmpname(".npz")
      local out = python([==[
import json, sys
import numpy as np
rng = np.random.default_rng(3)
a = rng.standard_normal((2, 3, 5)).astype(np.float32)
b = rng.integers(0, 9, (4,)).astype(np.int64)
np.savez(sys.argv[1], a=a, b=b)
np.savez_compressed(sys.argv[2], a=a, b=b)
print(json.dumps([[float(x) for x in a.ravel()], [float(x) for x in b]]))
]==], p, q)
      local want = require("cjson").decode(out)
      for _, file in ipairs { p, q } do
        local got = core.npz_load(file)
        assert.same({ "a", "b" }, { got[1].name, got[2].name })
        assert.same({ 2, 3, 5 }, got[1].tensor:shape())
        assert.same(want[1], got[1].tensor:reshape(30):totable())
        assert.same(want[2], got[2].tensor:totable())
      end
    end)
  end)

  describe("load refuses", function()
    local cases = {
      { "text_entry.npz", "entry \"readme.txt\" is not a .npy file" },
      { "dir_entry.npz", "entry \"sub/\" is not a .npy file" },
      { "bad_header.npz", "entry \"b.npy\": malformed header: not a dict" },
      { "truncated_npy.npz", "entry \"a.npy\": truncated data: the header's shape needs 24 bytes, the entry holds 19" },
      { "trailing_npy.npz", "entry \"a.npy\": unexpected bytes after the 6 elements of data" },
      { "huge_shape.npz", "truncated data: the header's shape needs 2199023255552 bytes, the entry holds 8" },
      { "empty_npy.npz", "entry \"a.npy\": not a .npy file" },
      { "zero_size.npz", "entry \"z.npy\": arrays with a zero-length dimension are not supported" },
      { "duplicate.npz", "two entries have the same name" },
      { "bad_crc.npz", "entry \"a.npy\": read error: CRC error" },
      { "bzip2.npz", "entry \"a.npy\": compression method 12 is not supported" },
      { "claims_huge.npz", "claims 4294967280 bytes from 85 deflated bytes, more than deflate can give" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        H.errors(LOAD, { "'" .. DIR .. c[1] .. "': ", c[2] }, core.npz_load, DIR .. c[1])
        -- the same from memory
        H.errors("segloss.core.npz_load_string: ", { "'x': ", c[2] },
          core.npz_load_string, H.readfile(DIR .. c[1]), "x")
      end)
    end

    it("a missing file, a directory, an empty file, a FIFO", function()
      H.errors(LOAD, { "cannot open 'no/such/file.npz': No such file or directory" },
        core.npz_load, "no/such/file.npz")
      H.errors(LOAD, { "cannot read 'spec': it is a directory, not a regular file" }, core.npz_load, "spec")
      local p = H.tmpname(".npz")
      writefile(p, "")
      H.errors(LOAD, { "'" .. p .. "': not a zip archive (an empty file)" }, core.npz_load, p)
      H.errors("segloss.core.npz_load_string: ", { "not a zip archive (empty)" }, core.npz_load_string, "")
      local fifo = H.tmpname(".fifo")
      assert.is_true(os.execute("mkfifo " .. fifo))
      H.errors(LOAD, { "it is a device, FIFO or socket, not a regular file" }, core.npz_load, fifo)
    end)

    it("a foreign file: a .npy, a PNG, text", function()
      H.errors(LOAD, { "not a zip archive" }, core.npz_load, "spec/fixtures/npy/f4.npy")
      local png = "\137PNG\r\n\26\n\0\0\0\rIHDR" .. string.rep("\0", 40)
      H.errors("segloss.core.npz_load_string: ", { "'<string>': not a zip archive" }, core.npz_load_string, png)
      H.errors("segloss.core.npz_load_string: ", { "not a zip archive" }, core.npz_load_string, "PK")
    end)

    it("an archive cut short anywhere", function()
      local p = H.tmpname(".npz")
      core.npz_save(p, { { "a", T.randn(3, 4) }, { "meta", "{}" }, { "b", T.randn(10) } })
      local full = H.readfile(p)
      local cuts = { 1, 3, 4, 10, 30, 64, #full // 2, #full - 100, #full - 23, #full - 22, #full - 10, #full - 1 }
      for _, n in ipairs(cuts) do
        local part = full:sub(1, n)
        local err = H.errors("segloss.core.npz_load_string: ", {}, core.npz_load_string, part)
        assert(err:find("truncated or damaged zip archive", 1, true) or err:find("not a zip archive", 1, true),
          "cut at " .. n .. ": " .. err)
        writefile(p, part)
        H.errors(LOAD, { "'" .. p .. "': " }, core.npz_load, p)
      end
      -- a cut after the first local header says "truncated", not "not a zip"
      H.errors("segloss.core.npz_load_string: ", { "truncated or damaged zip archive" },
        core.npz_load_string, full:sub(1, #full - 1))
    end)

    it("more than 10000 entries, before reading any", function()
      -- a stored zip of empty "<i>.npy" files, written here
      local function archive(n)
        local locals, central, off = {}, {}, 0
        for i = 1, n do
          local name = i .. ".npy"
          local lh = string.pack("<I4I2I2I2I2I2I4I4I4I2I2", 0x04034b50, 20, 0, 0, 0, 0x21, 0, 0, 0, #name, 0) .. name
          central[i] = string.pack("<I4I2I2I2I2I2I2I4I4I4I2I2I2I2I2I4I4", 0x02014b50, 20, 20, 0, 0, 0,
            0x21, 0, 0, 0, #name, 0, 0, 0, 0, 0, off) .. name
          locals[i] = lh
          off = off + #lh
        end
        local cd = table.concat(central)
        return table.concat(locals) .. cd .. string.pack("<I4I2I2I2I2I4I4I2", 0x06054b50, 0, 0, n, n, #cd, off, 0)
      end
      H.errors("segloss.core.npz_load_string: ", { "10001 entries, more than 10000" },
        core.npz_load_string, archive(10001))
      -- the writer of this test is right: 3 such entries are read up to their (empty) .npy
      H.errors("segloss.core.npz_load_string: ", { "entry \"1.npy\": not a .npy file" },
        core.npz_load_string, archive(3))
    end)
  end)

  describe("save refuses", function()
    local p
    before_each(function() p = H.tmpname(".npz") end)

    local bad = {
      { "not a table", "x", "entries must be a list of {name, value} pairs, got string \"x\"" },
      { "a key outside the list", { { "a", "b" }, k = 1 },
        "entries must be a list, but has the key string \"k\"" },
      { "a pair that is not a table", { 5 }, "entry 1 must be a pair {name, value}, got 5" },
      { "a pair of one", { { "a" } }, "entry 1 must be a pair {name, value}" },
      { "a pair with an extra key", { { "a", "b", x = 1 } },
        "an entry {name, value} must be a list, but has the key string \"x\"" },
      { "a number as name", { { 3, "b" } }, "entry 1: name must be a string, got 3" },
      { "an empty name", { { "", "b" } }, "entry 1: name \"\" is empty" },
      { "a long name", { { string.rep("a", 201), "b" } }, "is longer than 200 bytes" },
      { "a slash", { { "ok", "b" }, { "a/b", "c" } }, "entry 2: name \"a/b\" has a character outside [A-Za-z0-9_.-]" },
      { "a space", { { "a b", "c" } }, "has a character outside [A-Za-z0-9_.-]" },
      { "a NUL byte", { { "a\0", "c" } }, "entry 1: name \"a\\0\" has a character" },
      { "a duplicate", { { "w", "1" }, { "x", "2" }, { "w", "3" } }, "entries 1 and 3 have the same name \"w\"" },
      { "a number value", { { "a", T.zeros(1) }, { "n", 5 } },
        "entry 2 (\"n\"): value must be a segloss.Tensor or a non-empty string, got 5" },
      { "an empty string", { { "e", "" } },
        "entry 1 (\"e\"): value must be a segloss.Tensor or a non-empty string, got string \"\"" },
      { "a table value", { { "t", {} } }, "got a table" },
      { "a boolean value", { { "t", true } }, "got boolean true" },
    }
    for _, c in ipairs(bad) do
      it(c[1] .. ", writing nothing", function()
        H.errors(SAVE, { c[3] }, core.npz_save, p, c[2])
        assert.is_nil(io.open(p, "rb"))
      end)
    end

    it("more than 10000 entries", function()
      local many = {}
      for i = 1, 10001 do many[i] = { "e" .. i, "x" } end
      H.errors(SAVE, { "10001 entries, more than 10000" }, core.npz_save, p, many)
    end)

    it("a bad entry late in the list leaves the old file and no temporary file", function()
      local d = tmpdir()
      local f = d .. "/ck.npz"
      core.npz_save(f, { { "a", T.ones(4) } })
      local before = H.readfile(f)
      local entries = {}
      for i = 1, 50 do entries[i] = { "w" .. i, T.randn(10, 10) } end
      entries[51] = { "late", 1 }
      H.errors(SAVE, { "entry 51 (\"late\")" }, core.npz_save, f, entries)
      assert.equal(before, H.readfile(f))
      assert.same({ "ck.npz" }, listdir(d))
      rmdir(d)
    end)

    it("unwritable places: a missing directory, /proc, a directory, a dangling link", function()
      H.errors(SAVE, { "cannot write 'no/such/dir/x.npz': No such file or directory" },
        core.npz_save, "no/such/dir/x.npz", { { "a", T.zeros(2) } })
      -- /proc/version is a regular file in a directory nobody may create files in
      local before = H.readfile("/proc/version")
      H.errors(SAVE, { "cannot write '/proc/version'" }, core.npz_save, "/proc/version", { { "a", T.zeros(2) } })
      assert.equal(before, H.readfile("/proc/version"))
      H.errors(SAVE, { "cannot write 'spec': it is a directory, not a regular file" },
        core.npz_save, "spec", { { "a", T.zeros(2) } })
      local d = tmpdir()
      assert.is_true(os.execute("ln -s nowhere " .. d .. "/l.npz"))
      H.errors(SAVE, { "it is a symbolic link to a file that does not exist" },
        core.npz_save, d .. "/l.npz", { { "a", T.zeros(2) } })
      rmdir(d)
    end)

    it("a full disk (a file size limit) leaves the old file and no temporary file", function()
      local d = tmpdir()
      local f = d .. "/ck.npz"
      core.npz_save(f, { { "a", T.ones(4) } })
      local before = H.readfile(f)
      -- a child Lua with a 64 KiB file size limit (SIGXFSZ ignored: write
      -- fails with EFBIG) saves 1 MiB over the file
      local script = d .. "/save.lua"
      writefile(script, [[
local core, T = require("segloss").core, require("segloss").tensor
local ok, err = pcall(core.npz_save, arg[1], { { "a", T.ones(4) }, { "big", T.zeros(512, 512) } })
io.write(ok and "saved" or err)
]])
      local cmd = string.format("cd %s && ulimit -f 128 && trap '' XFSZ && " ..
        "LUA_PATH_5_4=%q LUA_CPATH_5_4=%q lua5.4 %s %s 2>&1",
        os.getenv("PWD") or ".", package.path, package.cpath, script, f)
      local pipe = assert(io.popen("sh -c " .. string.format("%q", cmd)))
      local out = pipe:read("a")
      pipe:close()
      assert.equal(SAVE .. "cannot write '" .. f .. "': File too large", out)
      assert.equal(before, H.readfile(f))
      assert.same({ "ck.npz", "save.lua" }, listdir(d))
      rmdir(d)
    end)

    it("argument checks", function()
      H.errors(SAVE, { "path must be a string" }, core.npz_save, nil, {})
      H.errors(SAVE, {}, core.npz_save, p)
      H.errors(LOAD, { "path must be a string" }, core.npz_load, {})
      H.errors("segloss.core.npz_load_string: ", { "data must be a string, got nil" }, core.npz_load_string, nil)
    end)
  end)
end)
