-- quickstart.lua — segloss' tensors and kernel backends at work.
-- Run with `make run` (or, after `make install`, `lua5.4 examples/quickstart.lua`).
local segloss = require "segloss"
local T = segloss.tensor

print(segloss._VERSION)
print("backends on this CPU: " .. table.concat(segloss.backends(), ", ")
  .. "  (in use: " .. segloss.backend() .. ", threads: " .. segloss.threads() .. ")")

-- A batch of 2 predictions (logits) for a 1-class 6x8 segmentation, and a
-- target with one small 2x2 lesion: the kind of data segloss is for.
segloss.seed(1)
local logits = T.randn(2, 1, 6, 8) * 2
local target = T.zeros(2, 1, 6, 8)
for _, yx in ipairs { { 3, 4 }, { 3, 5 }, { 4, 4 }, { 4, 5 } } do
  target:set(1, 1, yx[1], yx[2], 1)
end
print(string.format("\ntarget covers %.1f %% of the pixels", 100 * target:mean()))

local p = logits:sigmoid()
print("\nprobabilities of sample 1:")
print(p)

-- Soft Dice by hand from tensor ops (the fused segloss.dice comes next)
local tp = (p * target):sum()
local dice = 1 - (2 * tp + 1) / (p:sum() + target:sum() + 1)
print(string.format("soft Dice loss, smooth 1: %.6f", dice))

-- The same numbers on every backend and thread count
print("\nsum of sigmoid(x) over 1e7 elements, per backend and thread count:")
local big = T.randn(10000000)
for _, b in ipairs(segloss.backends()) do
  segloss.set_backend(b)
  for _, n in ipairs { 1, 2 } do
    segloss.set_threads(n)
    local t0 = os.clock()
    local s = big:sigmoid():sum()
    print(string.format("  %-6s %d thread%s: %.17g   (%.0f ms CPU)", b, n, n > 1 and "s" or " ", s,
      (os.clock() - t0) * 1000))
  end
end

-- Tensors round-trip through NumPy's .npy format
local base = os.tmpname()
local path = base .. ".npy"
p:save(path)
local back = T.load(path)
os.remove(path)
os.remove(base)
print(string.format("\nsaved and reloaded %s: identical = %s", path, tostring((back - p):max() == 0)))
