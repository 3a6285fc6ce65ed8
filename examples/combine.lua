-- combine.lua — criteria, their algebra, schedules, logging and statistics.
-- Run: make && LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="build/?.so;;" lua5.4 examples/combine.lua
local segloss = require "segloss"
local T, S = segloss.tensor, segloss.schedule

segloss.seed(4)
-- a batch of 4 logits maps for 3 classes (background, two small structures)
local x = T.randn(4, 3, 32, 32)
local labels = T.zeros(4, 1, 32, 32)
for n = 1, 4 do
  for i = 10, 13 do
    for j = 10, 13 do labels:set(n, 1, i, j, 1) end -- a 4x4 lesion
  end
  labels:set(n, 1, 25, 25, 2)                      -- a one-pixel one
end

-- a Dice + focal combination: one statistics pass, one fused pass
local crit = segloss.Dice { activation = "softmax", include_background = false }
  + 0.5 * segloss.Focal { activation = "softmax", gamma = 2 }
print("criterion:  " .. tostring(crit))
local loss, grad = crit(x, labels)
print(string.format("loss %.6f, gradient %s, |grad|max %.3g", loss,
  table.concat(grad:shape(), "x"), math.max(grad:max(), -grad:min())))

-- the same numbers as the parts computed one by one
local ld = segloss.dice(x, labels, { activation = "softmax", include_background = false })
local lf = segloss.focal(x, labels, { activation = "softmax", gamma = 2 })
print(string.format("parts:      %.6f + 0.5 * %.6f = %.6f", ld, lf, ld + 0.5 * lf))

-- logging from the statistics already gathered: each part's own value,
-- and that value times its weight (the parts' weighted values add up to
-- the loss)
local last = crit:last()
for _, p in ipairs(last.parts) do
  local pc = p.per_class and (" per class {" .. table.concat((function()
    local r = {}
    for c, v in ipairs(p.per_class) do r[c] = string.format("%.3f", v) end
    return r
  end)(), ", ") .. "}") or ""
  print(string.format("  %-6s value %.6f x weight %.2f = %.6f%s", p.name, p.value, p.weight, p.weighted, pc))
end
print(string.format("  total  %.6f", last.total))

-- shifting weight from BCE to Dice over training (sigmoid, one-hot targets)
local onehot = labels:onehot(3)
local sched = S.cosine(1, 0.1, 100) * segloss.BCE { activation = "sigmoid" }
  + S.linear(0, 1, 100) * segloss.Dice { activation = "sigmoid", include_background = false }
print("\nscheduled:  " .. tostring(sched))
for step = 0, 100, 25 do
  local parts = sched:parts()
  print(string.format("  step %3d: weights %.3f, %.3f  loss %.6f", step, parts[1].weight, parts[2].weight,
    sched:forward(x, onehot)))
  sched:step(25)
end

-- data-parallel batch Dice: statistics are sums, so workers can all-reduce them
local global = segloss.Dice { activation = "softmax", batch = true }
-- (narrow along the batch dimension: views, no copies)
local half1, half2 = x:narrow(1, 1, 2), x:narrow(1, 3, 2)
local lab1, lab2 = labels:narrow(1, 1, 2), labels:narrow(1, 3, 2)
local stats = global:stats(half1, lab1) + global:stats(half2, lab2) -- the all-reduce
local l1 = global:from_stats(stats, half1, lab1)
print(string.format("\nbatch Dice from summed statistics %.6f, on the whole batch %.6f", l1,
  global:forward(x, labels)))
