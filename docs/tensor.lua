--- Float32 tensors: the constructors in `segloss.tensor` and the methods of `segloss.Tensor`.
--
-- <pre>
-- local T = segloss.tensor
-- local x = T.randn(2, 1, 64, 64)          -- or T.randn{2, 1, 64, 64}
-- local t = T.zeros(2, 1, 64, 64)
-- t:set(1, 1, 30, 31, 1)
-- print(x:shape()[3], #x, x:sigmoid():mean())
-- x:save("x.npy")                          -- numpy.load("x.npy")
-- </pre>
--
-- A tensor is float32, contiguous and row-major, with 1 to 5 dimensions,
-- each at least 1, and at most 2^40 elements (a larger shape is an error:
-- `segloss.tensor.zeros: shape {1048576,1048576,2} is too large (more than
-- 2^40 elements)`). Its elements live inside the Lua userdata (64-byte
-- aligned), so Lua's garbage collector sees their real size. Running out of
-- memory is an error that names the function and the size:
-- `segloss.tensor.zeros: out of memory (2199023255696 bytes requested)`.
--
-- Views: `reshape`, and `narrow` and `select` along dimension 1, return a
-- view that shares the elements and keeps them alive (`isview()` tells);
-- `narrow` and `select` along another dimension return a copy, since a
-- tensor is always contiguous. Every other method that returns a tensor
-- returns a new one, or `self` for the methods that change it in place
-- (`set`, `fill`, `copy`, `add`, `sub`, `mul`, `div`) and for `save`.
--
-- Versions: every change of the elements in place (`set`, `fill`, `copy`,
-- `add`, `sub`, `mul`, `div`, a loss writing its gradient into `opts.out`)
-- bumps a counter, `version()`, shared by a tensor and its views. The
-- criteria use it to tell whether a tensor changed since they last saw it.
--
-- Numbers: every number stored into a tensor (by `from`, `full`, `fill`,
-- `set`, and as an operand of `+ - * /`, `add`, `sub`, `mul`, `div`) must
-- lie within float32's range, |v| <= 3.4028235e38: a larger finite number
-- is an error, not a silent infinity
-- (`segloss.Tensor:fill: value must be a number within the float32 range
-- (|v| <= 3.4028235e+38), got 1e+39`). NaN, Inf and -Inf given as such are
-- stored as they are, and float32 arithmetic on the elements may still
-- overflow to ±Inf (`3e38 * 2`).
--
-- Indices are 1-based, as in Lua and Torch7. The second axis is the channel
-- axis for `softmax`, `argmax` and `onehot`, and label maps hold the classes
-- 0 ... C-1 (so class c is channel c+1), as the losses expect.
--
-- Reductions of the whole tensor (`sum`, `mean`, `dot`) accumulate in double
-- precision over fixed blocks in a fixed order: the result is the same for
-- any number of threads. Along a dimension, `sum` and `mean` accumulate in
-- double in index order. Elementwise functions use the vector math of the
-- current backend: within 2 ulp of the exact value for `exp`, `log`,
-- `log1p`, 4 ulp for `sigmoid` and `softplus`, 2 + g/2 ulp for `pow(g)`.
--
-- Every error names the function and the offending argument:
-- `segloss.tensor.zeros: dimension 2 must be an integer >= 1, got -1`,
-- `segloss.Tensor:get: index 2 must be an integer in 1..3, got 4`. A path
-- (or any other string argument) with an embedded NUL byte is an error
-- (`segloss.Tensor:save: path must not contain a NUL byte, got string "x"`
-- for `"x\0.npy"`), never cut short.
--
-- This file documents; the functions are implemented in C (`src/bind/tensor.c`).
-- @module segloss.tensor

--- A tensor of zeros.
--
-- The shape is given as dimensions or as one table of them.
-- @function zeros
-- @param ... the dimensions (integers >= 1), or a table of them
-- @treturn segloss.Tensor
-- @usage local a = segloss.tensor.zeros(2, 1, 64, 64)
-- local b = segloss.tensor.zeros{2, 1, 64, 64}   -- the same shape

--- A tensor of ones.
-- @function ones
-- @param ... the dimensions, or a table of them
-- @treturn segloss.Tensor

--- A tensor filled with one value.
-- @function full
-- @tparam {integer,...} shape a table of dimensions
-- @tparam number value within float32's range, or NaN, Inf or -Inf
-- @treturn segloss.Tensor
-- @usage local w = segloss.tensor.full({2, 3}, 0.5)

--- A tensor from Lua numbers: a nested table, or a flat table and a shape.
--
-- A nested table gives the shape by its nesting (rows must have equal
-- lengths); with a flat table the shape is the second argument, and the
-- number of elements must match it. Every element must be a number within
-- float32's range (or NaN, Inf, -Inf): `segloss.tensor.from: element [2][1]
-- must be within the float32 range (|v| <= 3.4028235e+38), got 1e+39`.
-- @function from
-- @tparam table data nested rows of numbers, or a flat list
-- @tparam[opt] {integer,...} shape with a flat list
-- @treturn segloss.Tensor
-- @usage local a = segloss.tensor.from{{1, 2, 3}, {4, 5, 6}}        -- {2,3}
-- local b = segloss.tensor.from({1, 2, 3, 4, 5, 6}, {2, 3})  -- the same

--- A tensor of uniform random numbers in [0, 1), from the library's generator.
--
-- The values are multiples of 2^-24; `segloss.seed(n)` makes them
-- reproducible.
-- @function rand
-- @param ... the dimensions, or a table of them
-- @treturn segloss.Tensor

--- A tensor of standard normal random numbers, from the library's generator.
-- @function randn
-- @param ... the dimensions, or a table of them
-- @treturn segloss.Tensor
-- @usage segloss.seed(1)
-- local logits = segloss.tensor.randn(8, 1, 256, 256) * 2

--- Reads a NumPy `.npy` file.
--
-- Reads float32, float64, int8 to int64, uint8 to uint64 and bool arrays of
-- 1 to 5 dimensions in C order, little-endian (or single-byte), converting
-- the values to float32 (rounded to nearest; a finite float64 value beyond
-- float32's range is an error naming its element, as everywhere a number
-- becomes a float32: `segloss.tensor.load: 'a.npy': value 1e+300 at {1} is
-- beyond the float32 range (|v| <= 3.4028235e+38)`). Fortran-order, big-endian,
-- structured, 0-dimensional and zero-size arrays are errors that say so.
--
-- The size the header announces is checked against the file's size before
-- anything is allocated, so a damaged header is an error, not a huge
-- allocation: `segloss.tensor.load: 'a.npy': truncated data: the header's
-- shape needs 4398046511104 bytes, the file holds 16`; bytes after the data
-- are an error too (`unexpected bytes after the 6 elements of data`).
-- @function load
-- @tparam string path
-- @treturn segloss.Tensor
-- @usage local mask = segloss.tensor.load("mask.npy")

--- Whether a value is a tensor.
-- @function istensor
-- @param v any value
-- @treturn boolean

--- Tensor methods and operators.
--
-- Besides the methods below, `+`, `-`, `*` and `/` take two tensors of the
-- same shape, or a tensor and a number (within float32's range) on either
-- side, and return a new tensor; unary `-` negates; `#t` is the number of elements; `tostring(t)`
-- shows the shape and the elements in NumPy's layout (3 at each edge of
-- every axis when there are more than 1000 elements):
-- <pre>
-- local y = (x - x:mean()) * 2
-- local p = 1 / (1 + (-x):exp())      -- x:sigmoid(), less exactly
-- print(segloss.tensor.from{{1, 2}, {3, 4}})
-- --> segloss.Tensor {2,2} float32
-- --> [[1., 2.],
-- -->  [3., 4.]]
-- </pre>
-- @type Tensor

--- The shape, as a new table of dimensions.
-- @function Tensor:shape
-- @treturn {integer,...}
-- @usage print(table.concat(x:shape(), "x"))   --> 2x1x64x64

--- One dimension, or the shape when called without an argument.
-- @function Tensor:size
-- @tparam[opt] integer i the axis, 1 .. dim()
-- @return the size of axis i (an integer), or the shape (a table)

--- The number of dimensions.
-- @function Tensor:dim
-- @treturn integer

--- The number of elements; `#t` gives the same.
-- @function Tensor:numel
-- @treturn integer

--- The element at the given indices, one per dimension.
-- @function Tensor:get
-- @param ... the indices, 1-based
-- @treturn number
-- @usage local v = x:get(1, 1, 30, 31)

--- Sets the element at the given indices; returns the tensor.
--
-- The value must lie within float32's range (or be NaN, Inf, -Inf). Bumps
-- the `version`.
-- @function Tensor:set
-- @param ... the indices, 1-based, then the value
-- @return self
-- @usage t:set(1, 1, 30, 31, 1)

--- The elements as nested Lua tables.
-- @function Tensor:totable
-- @treturn table

--- A new tensor with the same shape and elements.
-- @function Tensor:clone
-- @treturn segloss.Tensor

--- Sets every element to a value; returns the tensor.
--
-- The value must lie within float32's range (or be NaN, Inf, -Inf). Bumps
-- the `version`.
-- @function Tensor:fill
-- @tparam number v
-- @return self

--- Copies the elements of a tensor of the same shape into this one; returns it.
--
-- Bumps the `version`.
-- @function Tensor:copy
-- @tparam segloss.Tensor src of the same shape (it may overlap this one)
-- @return self

--- A view with another shape, sharing the elements.
--
-- The new shape must have the same number of elements; one dimension may be
-- -1, to be inferred. Writing through the view changes the original; the
-- view keeps the elements alive and shares their `version`.
-- @function Tensor:reshape
-- @param ... the dimensions, or a table of them
-- @treturn segloss.Tensor
-- @usage local flat = x:reshape(-1)
-- local per_pixel = x:reshape(2, 3, -1)

--- A slice of `length` elements along one dimension, from index `start`.
--
-- The result has t's dimensions, dimension `dim` of size `length`. Along
-- dimension 1 it is a view: it shares the elements (writing through it
-- changes t), keeps them alive and shares their `version`. Along another
-- dimension it is a copy, since segloss tensors are always contiguous.
-- @function Tensor:narrow
-- @tparam integer dim the dimension, 1 .. dim()
-- @tparam integer start the first index, 1 .. size(dim)
-- @tparam integer length 1 .. size(dim) - start + 1
-- @treturn segloss.Tensor
-- @usage local first = batch:narrow(1, 1, 4)   -- samples 1 to 4: a view
-- local fg = probs:narrow(2, 2, 2)            -- channels 2 and 3: a copy

--- One index along one dimension, that dimension removed.
--
-- `t:select(dim, i)` has one dimension fewer than t, so t needs at least 2
-- (`get` reads an element of a 1-D tensor). Along dimension 1 it is a view,
-- along another dimension a copy, as with `narrow`.
-- @function Tensor:select
-- @tparam integer dim the dimension, 1 .. dim()
-- @tparam integer index 1 .. size(dim)
-- @treturn segloss.Tensor
-- @usage local sample = x:select(1, n)            -- (C, H, W): a view
-- local m = t:select(1, n):select(1, c)          -- (H, W): sample n, channel c

--- Whether the tensor is a view of another tensor's elements.
--
-- True for the results of `reshape`, and of `narrow` and `select` along
-- dimension 1.
-- @function Tensor:isview
-- @treturn boolean

--- The version of the elements: a counter that every change in place bumps.
--
-- `set`, `fill`, `copy`, `add`, `sub`, `mul`, `div`, and a loss writing its
-- gradient into `opts.out` bump it; reading does not. A view shares the
-- counter of the elements it shows, so a change through any view shows in
-- the version of all of them. Criteria compare versions to tell whether
-- `backward` may return the gradient of the last `forward`.
-- @function Tensor:version
-- @treturn integer
-- @usage local v = x:version()
-- x:add(1)
-- assert(x:version() > v)

--- The sum of the elements as a Lua number, or the sums along one dimension as a tensor.
--
-- Without an argument: the sum of every element, accumulated in double
-- precision. With a dimension `d`: a new tensor of the same dimensions but
-- `d`, which has size 1 (Torch7's convention); each element is the sum
-- along `d`, accumulated in double in index order and rounded to float32
-- once.
-- @function Tensor:sum
-- @tparam[opt] integer d the dimension, 1 .. dim()
-- @return a number, or a tensor whose dimension d has size 1
-- @usage local x = segloss.tensor.from{{1, 2, 3}, {4, 5, 6}}
-- print(x:sum())                      --> 21.0
-- local rows = x:sum(2)               -- shape {2,1}: 6, 15
-- local cols = x:sum(1)               -- shape {1,3}: 5, 7, 9

--- The mean of the elements as a Lua number, or the means along one dimension as a tensor.
--
-- As `sum`, divided by the number of elements summed (in double).
-- @function Tensor:mean
-- @tparam[opt] integer d the dimension, 1 .. dim()
-- @return a number, or a tensor whose dimension d has size 1

--- The smallest element, or the smallest values along one dimension and their indices.
--
-- As `max`, for the smallest.
-- @function Tensor:min
-- @tparam[opt] integer d the dimension, 1 .. dim()
-- @return a number; or, with d, the values and the indices (two tensors)

--- The largest element, or the largest values along one dimension and their indices.
--
-- Without an argument: a Lua number, NaN if any element is NaN. With a
-- dimension `d`: two new tensors whose dimension `d` has size 1 (Torch7's
-- convention), the largest values and their 1-based indices along `d`
-- (held as float32). The first maximum wins ties, and a NaN wins over
-- every number (the first NaN). Dimension `d` may hold at most 2^24
-- elements, so that every index is exact in float32
-- (`segloss.Tensor:max: dimension 1 of {16777217} is longer than 2^24: its
-- indices are not exact in float32`).
-- @function Tensor:max
-- @tparam[opt] integer d the dimension, 1 .. dim()
-- @return a number; or, with d, the values and the indices (two tensors)
-- @usage local x = segloss.tensor.from{{1, 5, 3}, {4, 2, 4}}
-- print(x:max())                      --> 5.0
-- local v, i = x:max(2)               -- v {2,1}: 5, 4; i {2,1}: 2, 1

--- The dot product with a tensor of the same number of elements (shapes may differ).
-- @function Tensor:dot
-- @tparam segloss.Tensor other
-- @treturn number

--- In-place addition, as in Torch: `t:add(a)` is `t = t + a`, `t:add(a, b)` is `t = a + b`.
--
-- `a` and `b` are tensors of t's shape or numbers within float32's range;
-- they may be t itself. `sub`, `mul` and `div` work alike. Returns the
-- tensor, whose `version` is bumped.
-- @function Tensor:add
-- @param a a tensor of t's shape, or a number
-- @param[opt] b a tensor of t's shape, or a number
-- @return self
-- @usage acc:add(grad)              -- acc = acc + grad
-- acc:add(grad, 0.5)                -- acc = grad + 0.5

--- In-place subtraction: `t:sub(a)` is `t = t - a`, `t:sub(a, b)` is `t = a - b`.
-- @function Tensor:sub
-- @param a
-- @param[opt] b
-- @return self

--- In-place multiplication: `t:mul(a)` is `t = t * a`, `t:mul(a, b)` is `t = a * b`.
-- @function Tensor:mul
-- @param a
-- @param[opt] b
-- @return self

--- In-place division: `t:div(a)` is `t = t / a`, `t:div(a, b)` is `t = a / b`.
-- @function Tensor:div
-- @param a
-- @param[opt] b
-- @return self

--- The elementwise exponential, as a new tensor.
-- @function Tensor:exp
-- @treturn segloss.Tensor

--- The elementwise natural logarithm, as a new tensor.
-- @function Tensor:log
-- @treturn segloss.Tensor

--- The elementwise `log(1 + x)`, accurate near 0, as a new tensor.
-- @function Tensor:log1p
-- @treturn segloss.Tensor

--- The elementwise logistic sigmoid `1 / (1 + exp(-x))`, as a new tensor.
-- @function Tensor:sigmoid
-- @treturn segloss.Tensor

--- The elementwise softplus `log(1 + exp(x))`, as a new tensor.
-- @function Tensor:softplus
-- @treturn segloss.Tensor

--- The elementwise power `x^g`, as a new tensor.
-- @function Tensor:pow
-- @tparam number g the exponent, in [0, 2^24]
-- @treturn segloss.Tensor

--- The softmax over the channel axis (axis 2), as a new tensor.
-- @function Tensor:softmax
-- @treturn segloss.Tensor
-- @usage local probs = logits:softmax()   -- (N, C, ...)

--- The class of the largest value over the channel axis: a label map (N, 1, ...) of 0 to C-1.
--
-- The first maximum wins ties; a NaN counts as the largest value (as in
-- NumPy).
-- @function Tensor:argmax
-- @treturn segloss.Tensor
-- @usage local labels = logits:argmax()   -- (N, 1, ...), values 0 .. C-1

--- The one-hot encoding of a label map (N, 1, ...) of the classes 0 to C-1: a new tensor (N, C, ...).
--
-- Every label must be an integer in 0 to C-1, and the result may hold at
-- most 2^40 elements.
-- @function Tensor:onehot
-- @tparam integer C the number of classes, 1 .. 2^24
-- @treturn segloss.Tensor
-- @usage local t = labels:onehot(3)

--- Writes the tensor to a NumPy `.npy` file (float32, little-endian); returns the tensor.
--
-- The array goes to a temporary file in the destination's directory, which
-- is renamed over the destination once complete: a reader never sees a
-- partial file, and a failed save leaves the old file as it was. An
-- existing file keeps its permissions (and, when run as root, its owner);
-- a new one gets 0666 minus the umask. A symbolic link is followed: the
-- file it points to is replaced, and the link stays.
--
-- Only regular files are replaced: a directory, a device, a FIFO, a socket
-- or a link to a file that does not exist is an error that says which
-- (`segloss.Tensor:save: cannot write '/dev/null': it is a character
-- device, not a regular file`). The file name may have any length the
-- system allows (255 bytes on Linux); a path with a NUL byte is an error.
-- @function Tensor:save
-- @tparam string path
-- @return self
