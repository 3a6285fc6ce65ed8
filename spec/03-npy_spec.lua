-- NumPy .npy files: fixtures written by NumPy (tools/make_npy_fixtures.py),
-- expected float32 values converted by NumPy.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local DIR = "spec/fixtures/npy/"

local function same_values(want, got)
  assert.equal(#want, #got)
  for i = 1, #want do
    local w, g = want[i], got[i]
    if w ~= w then
      assert.is_true(g ~= g, "element " .. i .. " should be nan")
    else
      assert.equal(w, g, "element " .. i)
    end
  end
end

local function flat(t)
  return t:reshape(t:numel()):totable()
end

describe("npy", function()
  after_each(H.cleanup)

  describe("reads what NumPy writes", function()
    local expected = H.json(DIR .. "expected.json")
    local names = {}
    -- f8_big.npy holds float64 values beyond float32's range: refused below
    for name in pairs(expected) do
      if name ~= "f8_big.npy" then names[#names + 1] = name end
    end
    table.sort(names)
    for _, name in ipairs(names) do
      it(name, function()
        local t = T.load(DIR .. name)
        assert.same(expected[name].shape, t:shape())
        same_values(expected[name].data, flat(t))
      end)
    end
  end)

  it("writes float32 files byte for byte as NumPy does", function()
    local p = H.tmpname(".npy")
    T.from { { 1, 2, 3 }, { 4, 5, 6.5 } }:save(p)
    assert.equal(H.readfile(DIR .. "written_2x3.npy"), H.readfile(p))
    T.from { 0.25, -1, 2, 3, 4 }:save(p) -- replaces the file
    assert.equal(H.readfile(DIR .. "written_5.npy"), H.readfile(p))
  end)

  it("round-trips every shape and special value", function()
    local p = H.tmpname(".npy")
    segloss.seed(5)
    for _, shape in ipairs { { 1 }, { 7 }, { 2, 3 }, { 2, 1, 4, 5 }, { 1, 2, 3, 4, 5 } } do
      local t = T.randn(shape)
      t:save(p)
      local u = T.load(p)
      assert.same(t:shape(), u:shape())
      assert.same(flat(t), flat(u))
    end
    local s = T.from { 0, -0.0, 1 / 0, -1 / 0, 1e-45 }
    s:save(p)
    assert.same(flat(s), flat(T.load(p)))
    local nan = T.from { 0 / 0 }
    nan:save(p)
    local back = T.load(p):get(1)
    assert.is_true(back ~= back)
  end)

  it("save of a view writes the view's shape", function()
    local p = H.tmpname(".npy")
    T.from({ 1, 2, 3, 4, 5, 6 }, { 2, 3 }):reshape(3, 2):save(p)
    assert.same({ 3, 2 }, T.load(p):shape())
  end)

  describe("refuses malformed and unsupported files", function()
    local cases = {
      { "bad_magic.npy", "not a .npy file" },
      { "f8_big.npy", "value 1e+300 at {1} is beyond the float32 range" },
      { "empty.npy", "not a .npy file" },
      { "truncated_header.npy", "truncated .npy header" },
      { "truncated_data.npy", "truncated data: the header's shape needs 96 bytes, the file holds 91" },
      { "trailing_bytes.npy", "unexpected bytes after the 24 elements" },
      { "version4.npy", "unsupported .npy format version 4.0" },
      { "fortran.npy", "Fortran-order arrays are not supported" },
      { "big_endian.npy", "big-endian dtype '>f4' is not supported" },
      { "f2.npy", "unsupported dtype '<f2'" },
      { "c8.npy", "unsupported dtype '<c8'" },
      { "structured.npy", "unsupported dtype" },
      { "scalar.npy", "0-dimensional arrays are not supported" },
      { "zero_size.npy", "zero-length dimension" },
      { "six_dims.npy", "more than 5 dimensions" },
      { "not_a_dict.npy", "malformed header: not a dict" },
      { "missing_shape.npy", "malformed header: missing 'shape'" },
      { "bad_shape.npy", "malformed header: bad 'shape' tuple" },
      { "extra_key.npy", "malformed header: unexpected key 'x'" },
      { "huge_shape.npy", "array is too large" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        H.errors("segloss.tensor.load: ", { DIR .. c[1], c[2] }, T.load, DIR .. c[1])
      end)
    end

    it("a missing file", function()
      H.errors("segloss.tensor.load: ", { "cannot open 'no/such/file.npy'", "No such file" },
        T.load, "no/such/file.npy")
    end)

    it("a directory", function()
      H.errors("segloss.tensor.load: ", { "'spec'" }, T.load, "spec")
    end)
  end)

  it("save to an unwritable place fails and leaves nothing behind", function()
    H.errors("segloss.Tensor:save: ", { "cannot write 'no/such/dir/x.npy'" },
      function() T.zeros(2):save("no/such/dir/x.npy") end)
    -- an existing file is not half-overwritten when the write fails
    local p = H.tmpname(".npy")
    T.from { 1, 2, 3 }:save(p)
    local before = H.readfile(p)
    local ok = pcall(function() T.zeros(3):save(p .. "/sub") end)
    assert.is_false(ok)
    assert.equal(before, H.readfile(p))
  end)

  describe("save keeps what it replaces", function()
    local function npy_header(shape_src)
      -- a v1.0 header for '<f4' with the given shape text, padded to 64 bytes
      local h = "{'descr': '<f4', 'fortran_order': False, 'shape': " .. shape_src .. ", }"
      local total = 10 + #h + 1
      h = h .. string.rep(" ", (64 - total % 64) % 64) .. "\n"
      return "\x93NUMPY\1\0" .. string.pack("<I2", #h) .. h
    end

    it("refuses a character device, and leaves it one", function()
      -- a private copy of /dev/null, so that a regression cannot replace the real one
      local p = H.tmpname(".dev")
      if not os.execute("mknod -m 666 " .. p .. " c 1 3 2>/dev/null") then
        pending("mknod needs root")
        return
      end
      H.errors("segloss.Tensor:save: ", { "cannot write '" .. p .. "': it is a character device, not a regular file" },
        function() T.zeros(2):save(p) end)
      local f = assert(io.popen("stat -c %F " .. p))
      assert.equal("character special file", f:read("l"))
      f:close()
    end)

    it("refuses a FIFO at once (no blocking open) and a directory", function()
      local p = H.tmpname(".fifo")
      assert.is_true(os.execute("mkfifo " .. p))
      H.errors("segloss.Tensor:save: ", { "it is a FIFO, not a regular file" }, function() T.zeros(2):save(p) end)
      local f = assert(io.popen("stat -c %F " .. p))
      assert.equal("fifo", f:read("l"))
      f:close()
      H.errors("segloss.Tensor:save: ", { "cannot write 'spec': it is a directory" },
        function() T.zeros(2):save("spec") end)
    end)

    it("follows a symbolic link: the link stays, its target gets the array", function()
      local target, link = H.tmpname(".npy"), H.tmpname(".npy")
      T.zeros(3):save(target)
      assert.is_true(os.execute("ln -s " .. target .. " " .. link))
      T.from { 1, 2, 3 }:save(link)
      local f = assert(io.popen("stat -c %F " .. link))
      assert.equal("symbolic link", f:read("l"))
      f:close()
      assert.same({ 1, 2, 3 }, T.load(target):totable())
      -- a link to nowhere is refused
      local dangling = H.tmpname(".npy")
      assert.is_true(os.execute("ln -s " .. target .. ".missing " .. dangling))
      H.errors("segloss.Tensor:save: ", { "it is a symbolic link to a file that does not exist" },
        function() T.zeros(2):save(dangling) end)
    end)

    it("keeps the mode of an existing file; new files follow the umask", function()
      local p = H.tmpname(".npy")
      T.zeros(2):save(p)
      assert.is_true(os.execute("chmod 600 " .. p))
      T.ones(2):save(p)
      local f = assert(io.popen("stat -c %a " .. p))
      assert.equal("600", f:read("l"))
      f:close()
      assert.same({ 1, 1 }, T.load(p):totable())
    end)

    it("takes file names up to the system's limit of 255 bytes", function()
      local dir = H.tmpname(".d")
      assert.is_true(os.execute("mkdir " .. dir))
      for _, n in ipairs { 246, 250, 255 } do
        local p = dir .. "/" .. string.rep("a", n - 4) .. ".npy"
        T.from { n }:save(p)
        assert.same({ n }, T.load(p):totable())
        os.remove(p)
      end
      os.remove(dir)
    end)

    it("refuses a path with an embedded NUL byte instead of cutting it short", function()
      local a = H.tmpname()
      H.errors("segloss.Tensor:save: ", { "path must not contain a NUL byte" },
        function() T.zeros(2):save(a .. "\0b.npy") end)
      H.errors("segloss.tensor.load: ", { "path must not contain a NUL byte" }, T.load, "spec\0x")
      assert.is_nil(io.open(a, "rb"))
    end)

    it("load checks the size a header announces before allocating it", function()
      local p = H.tmpname(".npy")
      local f = assert(io.open(p, "wb"))
      -- 2^39 elements (2 TiB) announced, 8 bytes present
      f:write(npy_header("(549755813888,)") .. string.rep("\0", 8))
      f:close()
      H.errors("segloss.tensor.load: ",
        { "truncated data: the header's shape needs 2199023255552 bytes, the file holds 8" },
        T.load, p)
    end)
  end)
end)
