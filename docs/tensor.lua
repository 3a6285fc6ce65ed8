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
-- each at least 1, and at most 2^40 elements. Its elements live inside the
-- Lua userdata (64-byte aligned), so Lua's garbage collector sees their real
-- size. `reshape` returns a view that shares the elements and keeps them
-- alive; every other method that returns a tensor returns a new one, or
-- `self` for the methods that change it in place (`set`, `fill`, `copy`,
-- `add`, `sub`, `mul`, `div`, `save`).
--
-- Indices are 1-based, as in Lua and Torch7. The second axis is the channel
-- axis for `softmax`, `argmax` and `onehot`, and label maps hold the classes
-- 0 ... C-1 (so class c is channel c+1), as the losses expect.
--
-- Reductions (`sum`, `mean`, `dot`) accumulate in double precision over
-- fixed blocks in a fixed order: the result is the same for any number of
-- threads. Elementwise functions use the vector math of the current backend:
-- within 2 ulp of the exact value for `exp`, `log`, `log1p`, 4 ulp for
-- `sigmoid` and `softplus`, 2 + g/2 ulp for `pow(g)`.
--
-- Every error names the function and the offending argument:
-- `segloss.tensor.zeros: dimension 2 must be an integer >= 1, got -1`,
-- `segloss.Tensor:get: index 2 must be an integer in 1..3, got 4`.
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
-- @tparam number value
-- @treturn segloss.Tensor
-- @usage local w = segloss.tensor.full({2, 3}, 0.5)

--- A tensor from Lua numbers: a nested table, or a flat table and a shape.
--
-- A nested table gives the shape by its nesting (rows must have equal
-- lengths); with a flat table the shape is the second argument, and the
-- number of elements must match it.
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
-- the values to float32. Fortran-order, big-endian, structured,
-- 0-dimensional and zero-size arrays are errors that say so.
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
-- same shape, or a tensor and a number on either side, and return a new
-- tensor; unary `-` negates; `#t` is the number of elements; `tostring(t)`
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
-- @function Tensor:fill
-- @tparam number v
-- @return self

--- Copies the elements of a tensor of the same shape into this one; returns it.
-- @function Tensor:copy
-- @tparam segloss.Tensor src of the same shape (it may overlap this one)
-- @return self

--- A view with another shape, sharing the elements.
--
-- The new shape must have the same number of elements; one dimension may be
-- -1, to be inferred. Writing through the view changes the original.
-- @function Tensor:reshape
-- @param ... the dimensions, or a table of them
-- @treturn segloss.Tensor
-- @usage local flat = x:reshape(-1)
-- local per_pixel = x:reshape(2, 3, -1)

--- The sum of the elements, as a Lua number (accumulated in double).
-- @function Tensor:sum
-- @treturn number

--- The mean of the elements, as a Lua number (accumulated in double).
-- @function Tensor:mean
-- @treturn number

--- The smallest element (NaN if any element is NaN).
-- @function Tensor:min
-- @treturn number

--- The largest element (NaN if any element is NaN).
-- @function Tensor:max
-- @treturn number

--- The dot product with a tensor of the same number of elements (shapes may differ).
-- @function Tensor:dot
-- @tparam segloss.Tensor other
-- @treturn number

--- In-place addition, as in Torch: `t:add(a)` is `t = t + a`, `t:add(a, b)` is `t = a + b`.
--
-- `a` and `b` are tensors of t's shape or numbers. `sub`, `mul` and `div`
-- work alike. Returns the tensor.
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
-- Every label must be an integer in 0 to C-1.
-- @function Tensor:onehot
-- @tparam integer C the number of classes
-- @treturn segloss.Tensor
-- @usage local t = labels:onehot(3)

--- Writes the tensor to a NumPy `.npy` file (float32, little-endian); returns the tensor.
--
-- The file is written next to its destination and then renamed over it, so
-- a reader never sees a partial file.
-- @function Tensor:save
-- @tparam string path
-- @return self
