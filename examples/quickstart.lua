-- quickstart.lua — segloss on a small-target batch: losses and their
-- gradients, why Dice and not plain BCE, metrics, determinism, .npy files.
-- Run with `make run` (or, after `make install`, `lua5.4 examples/quickstart.lua`).
local segloss = require "segloss"
local T = segloss.tensor

local N, H, W = 16, 128, 128
print(string.format("%s, backend %s (this CPU runs: %s), %d threads", segloss._VERSION, segloss.backend(),
  table.concat(segloss.backends(), ", "), segloss.threads()))

-- The batch: N images of H x W, one class, each with one small round lesion
-- of radius 2.5 px at its own place.
local centres = {}
for n = 1, N do centres[n] = { 20 + (n * 37) % 88, 20 + (n * 53) % 88 } end

-- Builds an (N, 1, H, W) tensor from f(n, y, x).
local function image(f)
  local v = {}
  for n = 1, N do
    for y = 1, H do
      for x = 1, W do v[#v + 1] = f(n, y, x) end
    end
  end
  return T.from(v, { N, 1, H, W })
end

local function d2(n, y, x, dy) -- squared distance to lesion n's centre, moved dy rows
  local c = centres[n]
  return (y - c[1] - (dy or 0)) ^ 2 + (x - c[2]) ^ 2
end

local target = image(function(n, y, x) return d2(n, y, x) <= 2.5 ^ 2 and 1 or 0 end)
-- A deterministic stand-in for a network's output (logits): a blurred
-- bump one row below the lesion, -8 far from it.
local logits = image(function(n, y, x) return math.max(-8, 4 - d2(n, y, x, 1) / 2) end)

print(string.format("\nbatch {%d,1,%d,%d}: a lesion of %d px per image, %d of %d pixels (%.3f %%) are foreground",
  N, H, W, target:sum() // N, target:sum(), target:numel(), 100 * target:mean()))

local function norm(g) return math.sqrt((g * g):sum()) end

-- The fused losses: value and d loss / d logits in one call each.
local S = { activation = "sigmoid" }
local rows = {
  { "segloss.bce", segloss.bce(logits, target, S) },
  { "segloss.dice", segloss.dice(logits, target, S) },
  { "segloss.focal (gamma 2, alpha 0.25)", segloss.focal(logits, target, S) },
}
local crit = segloss.Dice { activation = "sigmoid" } + 0.5 * segloss.Focal { activation = "sigmoid" }
rows[4] = { "Dice + 0.5 * Focal, one fused run", crit(logits, target) }
print(string.format("\n%-38s %12s %12s", "loss of the logits above (sigmoid)", "value", "|grad|_2"))
for _, r in ipairs(rows) do print(string.format("%-38s %12.6g %12.4g", r[1], r[2], norm(r[3]))) end
print(string.format("%-38s %12.6g", "  dice + 0.5 * focal of the calls above", rows[2][2] + 0.5 * rows[3][2]))
print("  the criterion: " .. tostring(crit))

-- Small targets: a prediction that finds every lesion with a 2-pixel
-- margin, against one that predicts nothing.
local margin = image(function(n, y, x) return d2(n, y, x) <= 4.5 ^ 2 and 6 or -8 end)
local nothing = T.full({ N, 1, H, W }, -8)
local preds = { { "finds every lesion, 2 px too wide", margin }, { "predicts nothing", nothing } }
print(string.format("\n%-38s %12s %12s", "two predictions, logits +6 / -8", "bce", "dice"))
local best = {}
for i, p in ipairs(preds) do
  local lb = segloss.bce(p[2], target, { activation = "sigmoid", grad = false })
  local ld = segloss.dice(p[2], target, { activation = "sigmoid", grad = false })
  print(string.format("%-38s %12.6f %12.6f", p[1], lb, ld))
  if i == 1 or lb < best.bce then best.bce, best.bce_name = lb, p[1] end
  if i == 1 or ld < best.dice then best.dice, best.dice_name = ld, p[1] end
end
print(string.format("lower bce: %q; lower dice: %q", best.bce_name, best.dice_name))
if best.bce_name == "predicts nothing" and best.dice_name ~= "predicts nothing" then
  print(string.format("with %.3f %% foreground, plain BCE scores predicting nothing better than finding every lesion;",
    100 * target:mean()) .. " Dice does not")
end

-- Metrics of the predictions thresholded at p = 0.5.
print("\nmetrics (sigmoid, threshold 0.5), means over the " .. N .. " images:")
for _, p in ipairs { { "logits above", logits }, preds[1], preds[2] } do
  local r = segloss.metrics.evaluate(p[2], target, { activation = "sigmoid" })
  print(string.format("  %-36s dice %.4f  iou %.4f  hd95 %7.3f px  assd %7.3f px  (%d pairs with an empty mask)",
    p[1] .. ":", r.dice, r.iou, r.hd95, r.assd, #r.empty))
end

-- Every thread count gives the same bits (fixed blocks summed in a fixed
-- order); backends agree to float32 rounding.
local function bits(loss, grad) -- the loss (double) and the gradient (float32) as bytes
  local g = grad:reshape(grad:numel()):totable()
  return string.pack("<d", loss) .. string.pack("<" .. string.rep("f", #g), table.unpack(g))
end
print("\nDice + 0.5 * Focal on each backend with 1, 2 and 4 threads (loss and gradient compared byte for byte):")
local prev_b, prev_n = segloss.backend(), segloss.threads()
local ref = {}
for _, b in ipairs(segloss.backends()) do
  segloss.set_backend(b)
  local first, same = nil, true
  local threads = { 1, 2, 4 }
  for _, n in ipairs(threads) do
    segloss.set_threads(n)
    local l, g = crit(logits, target)
    if not first then
      first = { l = l, g = g:clone(), bits = bits(l, g) } -- crit reuses its gradient buffer
    elseif bits(l, g) ~= first.bits then
      same = false
    end
  end
  local vs = ""
  if not ref.l then
    ref = { b = b, l = first.l, g = first.g }
  else
    local dg = first.g - ref.g
    vs = string.format("; vs %s: loss %+.2g, gradient max |diff| %.2g (max |grad| %.2g)", ref.b, first.l - ref.l,
      math.max(dg:max(), -dg:min()), math.max(ref.g:max(), -ref.g:min()))
  end
  print(string.format("  %-6s %.9f, threads: %s%s", b, first.l, same and "identical bits" or "DIFFERENT BITS", vs))
end
segloss.set_backend(prev_b)
segloss.set_threads(prev_n)

-- Tensors round-trip through NumPy's .npy format (numpy.load reads it).
local base = os.tmpname()
local path = base .. ".npy"
logits:save(path)
local back = T.load(path)
os.remove(path)
os.remove(base)
local d = back - logits
print(string.format("\nlogits saved to %s and loaded back: shape {%s}, identical = %s", path,
  table.concat(back:shape(), ","), tostring(d:max() == 0 and d:min() == 0)))
