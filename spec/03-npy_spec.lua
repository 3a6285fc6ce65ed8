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
    for name in pairs(expected) do names[#names + 1] = name end
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
      { "empty.npy", "not a .npy file" },
      { "truncated_header.npy", "truncated .npy header" },
      { "truncated_data.npy", "truncated data: expected 96 bytes, found 91" },
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
end)
