-- Every public function rejects bad arguments with a message that starts
-- with its public name and says what was expected and what was given.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local t23 = T.zeros(2, 3)
local lab = T.from { { { 0, 1, 3 } } }

-- { description, prefix, {fragments}, function, args... }
local cases = {
  -- module
  { "backend with an argument", "segloss.backend: ", { "expected 0 arguments, got 1" }, segloss.backend, 1 },
  { "set_backend without a name", "segloss.set_backend: ", { "expected 1 argument, got 0" }, segloss.set_backend },
  { "set_backend with a number", "segloss.set_backend: ", { "name must be a string, got 3" }, segloss.set_backend, 3 },
  { "set_backend unknown", "segloss.set_backend: ", { 'unknown backend "fastest"' }, segloss.set_backend, "fastest" },
  { "backends with an argument", "segloss.backends: ", { "expected 0 arguments" }, segloss.backends, "x" },
  { "set_threads string", "segloss.set_threads: ", { 'n must be an integer in 1..1024, got string "4"' }, segloss.set_threads, "4" },
  { "set_threads fraction", "segloss.set_threads: ", { "got 1.5" }, segloss.set_threads, 1.5 },
  { "set_threads NaN", "segloss.set_threads: ", { "got nan" }, segloss.set_threads, 0 / 0 },
  { "set_threads huge", "segloss.set_threads: ", { "got 100000" }, segloss.set_threads, 100000 },
  { "set_threads nil", "segloss.set_threads: ", { "n must be an integer in 1..1024, got nil" }, function() return segloss.set_threads(nil) end },
  { "threads with an argument", "segloss.threads: ", { "expected 0 arguments, got 1" }, segloss.threads, 2 },
  { "seed fraction", "segloss.seed: ", { "seed must be an integer", "got 0.5" }, segloss.seed, 0.5 },
  { "seed table", "segloss.seed: ", { "got a table" }, segloss.seed, {} },
  { "seed without argument", "segloss.seed: ", { "expected 1 argument, got 0" }, segloss.seed },

  -- constructors
  { "zeros without shape", "segloss.tensor.zeros: ", { "expected a shape", "got nothing" }, T.zeros },
  { "zeros negative", "segloss.tensor.zeros: ", { "dimension 2 must be an integer >= 1, got -1" }, T.zeros, 2, -1 },
  { "zeros zero", "segloss.tensor.zeros: ", { "dimension 1 must be an integer >= 1, got 0" }, T.zeros, 0 },
  { "zeros NaN", "segloss.tensor.zeros: ", { "dimension 1", "got nan" }, T.zeros, 0 / 0 },
  { "zeros inf", "segloss.tensor.zeros: ", { "dimension 1", "got inf" }, T.zeros, 1 / 0 },
  { "zeros fraction", "segloss.tensor.zeros: ", { "dimension 3", "got 2.5" }, T.zeros, 1, 2, 2.5 },
  { "zeros string", "segloss.tensor.zeros: ", { 'dimension 1', 'got string "2"' }, T.zeros, "2" },
  { "zeros six dims", "segloss.tensor.zeros: ", { "shape must have 1 to 5 dimensions, got 6" }, T.zeros, 1, 1, 1, 1, 1, 1 },
  { "zeros empty table", "segloss.tensor.zeros: ", { "shape must have 1 to 5 dimensions, got 0" }, T.zeros, {} },
  { "zeros table with a bad entry", "segloss.tensor.zeros: ", { "dimension 2", "got boolean true" }, T.zeros, { 2, true } },
  { "zeros table and more", "segloss.tensor.zeros: ", { "unexpected argument after the shape table: 3" }, T.zeros, { 2 }, 3 },
  { "zeros size overflow", "segloss.tensor.zeros: ", { "shape {4294967296,4294967296} is too large" }, T.zeros, 2 ^ 32, 2 ^ 32 },
  { "zeros over 2^40 elements", "segloss.tensor.zeros: ", { "is too large" }, T.zeros, 2 ^ 21, 2 ^ 20 },
  { "zeros huge dimension", "segloss.tensor.zeros: ", { "dimension 1", "got 1e+300" }, T.zeros, 1e300 },
  { "ones negative", "segloss.tensor.ones: ", { "dimension 1 must be an integer >= 1, got -3" }, T.ones, -3 },
  { "rand bad", "segloss.tensor.rand: ", { "dimension 1" }, T.rand, "x" },
  { "randn bad", "segloss.tensor.randn: ", { "dimension 2", "got -2" }, T.randn, 1, -2 },
  { "full without value", "segloss.tensor.full: ", { "expected 2 arguments, got 1" }, T.full, { 2 } },
  { "full shape not a table", "segloss.tensor.full: ", { "shape must be a table of dimensions, got 2" }, T.full, 2, 1 },
  { "full value a string", "segloss.tensor.full: ", { 'value must be a number, got string "1"' }, T.full, { 2 }, "1" },
  { "from not a table", "segloss.tensor.from: ", { "data must be a table, got 5" }, T.from, 5 },
  { "from empty", "segloss.tensor.from: ", { "empty table at depth 1" }, T.from, {} },
  { "from ragged", "segloss.tensor.from: ", { "ragged table: row [2] has 1 element, expected 2" }, T.from, { { 1, 2 }, { 3 } } },
  { "from mixed", "segloss.tensor.from: ", { "element [2] must be a table (row of 2), got 3" }, T.from, { { 1, 2 }, 3 } },
  { "from string element", "segloss.tensor.from: ", { 'element [1][2] must be a number, got string "x"' }, T.from, { { 1, "x" } } },
  { "from too deep", "segloss.tensor.from: ", { "more than 5 levels" }, T.from, { { { { { { 1 } } } } } } },
  { "from flat wrong count", "segloss.tensor.from: ", { "data has 3 elements but shape {2,2} needs 4" }, T.from, { 1, 2, 3 }, { 2, 2 } },
  { "from flat bad shape", "segloss.tensor.from: ", { "shape must be a table of dimensions, got 4" }, T.from, { 1, 2, 3, 4 }, 4 },
  { "from flat bad element", "segloss.tensor.from: ", { "element [2] must be a number, got nil" }, T.from, { 1, nil, 3 }, { 3 } },
  { "load without path", "segloss.tensor.load: ", { "expected 1 argument, got 0" }, T.load },
  { "load a number", "segloss.tensor.load: ", { "path must be a string, got 3" }, T.load, 3 },
  { "istensor arity", "segloss.tensor.istensor: ", { "expected 1 argument, got 0" }, T.istensor },

  -- methods
  { "get with too few indices", "segloss.Tensor:get: ", { "expected 2 arguments, got 1" }, t23.get, t23, 1 },
  { "get out of range", "segloss.Tensor:get: ", { "index 2 must be an integer in 1..3, got 4" }, t23.get, t23, 1, 4 },
  { "get zero", "segloss.Tensor:get: ", { "index 1 must be an integer in 1..2, got 0" }, t23.get, t23, 0, 1 },
  { "get NaN", "segloss.Tensor:get: ", { "index 1", "got nan" }, t23.get, t23, 0 / 0, 1 },
  { "get on a non-tensor", "segloss.Tensor:get: ", { "self must be a segloss.Tensor, got 1" }, t23.get, 1, 1 },
  { "set without value", "segloss.Tensor:set: ", { "expected 3 arguments, got 2" }, t23.set, t23, 1, 1 },
  { "set string value", "segloss.Tensor:set: ", { 'value must be a number, got string "a"' }, t23.set, t23, 1, 1, "a" },
  { "size out of range", "segloss.Tensor:size: ", { "dimension must be an integer in 1..2, got 3" }, t23.size, t23, 3 },
  { "fill string", "segloss.Tensor:fill: ", { "value must be a number" }, t23.fill, t23, "1" },
  { "copy mismatch", "segloss.Tensor:copy: ", { "source shape {3,2} does not match {2,3}" }, t23.copy, t23, T.zeros(3, 2) },
  { "copy non-tensor", "segloss.Tensor:copy: ", { "source must be a segloss.Tensor, got a table" }, t23.copy, t23, {} },
  { "reshape mismatch", "segloss.Tensor:reshape: ", { "cannot reshape {2,3} (6 elements) into {4,2}" }, t23.reshape, t23, 4, 2 },
  { "reshape two -1", "segloss.Tensor:reshape: ", { "dimension 2 must be >= 1 (or -1 once" }, t23.reshape, t23, -1, -1 },
  { "reshape zero", "segloss.Tensor:reshape: ", { "dimension 1 must be >= 1" }, t23.reshape, t23, 0, 6 },
  { "reshape -1 not dividing", "segloss.Tensor:reshape: ", { "cannot reshape {2,3} (6 elements)" }, t23.reshape, t23, 4, -1 },
  { "reshape nothing", "segloss.Tensor:reshape: ", { "shape must have 1 to 5 dimensions, got 0" }, t23.reshape, t23 },
  { "reshape huge", "segloss.Tensor:reshape: ", { "cannot reshape" }, t23.reshape, t23, 2 ^ 39, 2 ^ 39 },
  { "pow negative", "segloss.Tensor:pow: ", { "exponent must be in [0, 2^24], got -1" }, t23.pow, t23, -1 },
  { "pow NaN", "segloss.Tensor:pow: ", { "exponent must be a finite number, got nan" }, t23.pow, t23, 0 / 0 },
  { "softmax on 1-D", "segloss.Tensor:softmax: ", { "needs a channel axis (dimension 2), got shape {3}" }, T.zeros(3).softmax, T.zeros(3) },
  { "argmax on 1-D", "segloss.Tensor:argmax: ", { "needs a channel axis" }, T.zeros(3).argmax, T.zeros(3) },
  { "onehot without C", "segloss.Tensor:onehot: ", { "expected 1 argument, got 0" }, lab.onehot, lab },
  { "onehot C = 0", "segloss.Tensor:onehot: ", { "number of classes must be an integer in 1..16777216, got 0" }, lab.onehot, lab, 0 },
  { "onehot label too big", "segloss.Tensor:onehot: ", { "label 3 at {1,1,3} is not an integer in 0..2" }, lab.onehot, lab, 3 },
  { "onehot of channels", "segloss.Tensor:onehot: ", { "needs a label map of shape (N,1,...), got {2,3}" }, t23.onehot, t23, 2 },
  { "onehot fractional", "segloss.Tensor:onehot: ", { "label 0.5 at {1,1,1}" }, T.from { { { 0.5 } } }.onehot, T.from { { { 0.5 } } }, 2 },
  { "save without path", "segloss.Tensor:save: ", { "expected 1 argument, got 0" }, t23.save, t23 },
  { "save to a number", "segloss.Tensor:save: ", { "path must be a string, got 1" }, t23.save, t23, 1 },
  { "sum with two arguments", "segloss.Tensor:sum: ", { "expected at most 1 argument, got 2" }, t23.sum, t23, 1, 2 },
  { "sum along a dimension that is not there", "segloss.Tensor:sum: ", { "dimension must be an integer in 1..2, got 3" }, t23.sum, t23, 3 },
  { "add shape mismatch", "segloss.Tensor:__add: ", { "shapes {2,3} and {3,2} differ" }, function() return t23 + T.zeros(3, 2) end },
  { "mul by a string", "segloss.Tensor:__mul: ", { 'operand must be a number, got string "2"' }, function() return t23 * "2" end },
  -- sizes whose product overflows, and strings with NUL bytes
  { "reshape whose known sizes overflow", "segloss.Tensor:reshape: ", { "cannot reshape {16777216}" },
    function() return T.zeros(2 ^ 24):reshape(2 ^ 24, 2 ^ 40, -1) end },
  { "reshape into a product that wraps to the size", "segloss.Tensor:reshape: ", { "cannot reshape {16}" },
    function() return T.zeros(16):reshape(2 ^ 34, 2 ^ 34, 16) end },
  { "onehot into more than 2^40 elements", "segloss.Tensor:onehot: ", { "shape {1,16777216,131072} is too large" },
    function() return T.zeros(1, 1, 2 ^ 17):onehot(2 ^ 24) end },
  { "set_backend with a NUL", "segloss.set_backend: ", { "name must not contain a NUL byte" }, segloss.set_backend, "avx2\0x" },
  { "vmath_accuracy unknown", "segloss.core.vmath_accuracy: ", { 'unknown function "tan"' }, segloss.core.vmath_accuracy, "tan", 10 },
}

describe("errors name the function and the argument", function()
  for _, c in ipairs(cases) do
    it(c[1], function()
      local n = 4 -- the last argument: the largest index (nils in between count)
      for k in pairs(c) do
        if math.type(k) == "integer" and k > n then n = k end
      end
      H.errors(c[2], c[3], c[4], table.unpack(c, 5, n))
    end)
  end

  it("nothing is modified by a failing call", function()
    local t = T.from { 1, 2, 3 }
    pcall(t.copy, t, T.zeros(4))
    pcall(t.set, t, 4, 9)
    pcall(t.fill, t, "x")
    assert.same({ 1, 2, 3 }, t:totable())
  end)

  it("running out of memory is an error that names the function", function()
    -- a 2^39-element tensor (2 TiB): refused by the allocator where the
    -- kernel does not overcommit beyond RAM + swap (mode 0 or 2)
    local f = io.open("/proc/sys/vm/overcommit_memory")
    local mode = f and f:read("n")
    if f then f:close() end
    if mode ~= 0 and mode ~= 2 then
      pending("vm.overcommit_memory is " .. tostring(mode) .. ": a 2 TiB allocation could succeed")
      return
    end
    H.errors("segloss.tensor.zeros: ", { "out of memory (2199023255", "bytes requested)" }, T.zeros, 2 ^ 39)
    H.errors("segloss.tensor.rand: ", { "out of memory" }, T.rand, 2 ^ 20, 2 ^ 19)
  end)

  it("a failed reshape leaves the tensor usable", function()
    local t = T.from { 1, 2, 3, 4 }
    assert.is_false(pcall(t.reshape, t, 3, -1))
    assert.same({ { 1, 2 }, { 3, 4 } }, t:reshape(2, 2):totable())
  end)
end)
