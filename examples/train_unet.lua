-- examples/train_unet.lua — train a small U-Net to find small bright targets.
--
--   make && LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="build/?.so;;" \
--     lua5.4 examples/train_unet.lua [seconds]
--
-- A few dozen generated 64×64 images: a noisy, smoothly shaded background, a
-- few dim distractor blobs, and one to three small bright discs (the targets,
-- about 1 % of the pixels). A U-Net (base 8, depth 2) trains with BCE + Dice
-- and Adam for about a minute (or the seconds given); every epoch prints the
-- training loss and the validation Dice from segloss.metrics — it rises from
-- near 0 as the network learns to find the discs.
local segloss = require "segloss"
local T, nn = segloss.tensor, segloss.nn

local budget = tonumber(arg and arg[1]) or 60
segloss.seed(42)

-- one image and its mask; u draws uniform numbers from the library PRNG
local S = 64
local function sample(u)
  local img, mask = T.zeros(1, 1, S, S), T.zeros(1, 1, S, S)
  local im, mk = img:select(1, 1):select(1, 1), mask:select(1, 1):select(1, 1)
  local gx, gy = u() - 0.5, u() - 0.5
  local noise = T.randn(S, S)
  for y = 1, S do
    for x = 1, S do
      im:set(y, x, 0.6 * (gx * x + gy * y) / S + 0.35 * noise:get(y, x))
    end
  end
  local function disc(cx, cy, r, v, target)
    for y = math.max(1, math.floor(cy - r)), math.min(S, math.ceil(cy + r)) do
      for x = math.max(1, math.floor(cx - r)), math.min(S, math.ceil(cx + r)) do
        if (x - cx) ^ 2 + (y - cy) ^ 2 <= r * r then
          im:set(y, x, im:get(y, x) + v)
          if target then mk:set(y, x, 1) end
        end
      end
    end
  end
  for _ = 1, 4 do disc(4 + u() * (S - 8), 4 + u() * (S - 8), 3 + 4 * u(), 0.6, false) end -- distractors
  for _ = 1, 1 + math.floor(u() * 3) do disc(4 + u() * (S - 8), 4 + u() * (S - 8), 1.5 + 1.5 * u(), 0.9, true) end
  return img, mask
end

local function dataset(n)
  local x, t = T.zeros(n, 1, S, S), T.zeros(n, 1, S, S)
  local r = T.rand(n * 40)
  local k = 0
  local function u() k = k + 1 return r:get(k) end
  for i = 1, n do
    local img, mask = sample(u)
    x:narrow(1, i, 1):copy(img)
    t:narrow(1, i, 1):copy(mask)
  end
  return x, t
end

local NTRAIN, NVAL, BATCH = 48, 16, 8
local xtr, ttr = dataset(NTRAIN)
local xval, tval = dataset(NVAL)
local fg = ttr:mean()
print(string.format("data: %d training and %d validation images of %dx%d, targets cover %.2f %% of the pixels",
  NTRAIN, NVAL, S, S, 100 * fg))

local net = nn.UNet { input = 1, output = 1, base = 8, depth = 2, dims = 2, norm = "batch", act = "relu",
                      down = "maxpool", up = "transpose" }
print((tostring(net):match("^[^\n]*"):gsub(" {$", "")))
local opt = segloss.optim.Adam(net, { lr = 3e-3 })
local crit = segloss.BCEDice { activation = "sigmoid" }

-- wall-clock time: luasystem's monotonic clock if installed (Debian
-- lua-system), else os.time (whole seconds; os.clock would count CPU time of
-- every thread)
local clock = os.time
local ok_sys, system = pcall(require, "system")
if ok_sys then clock = system.monotime end
local t0 = clock()

local function validate()
  net:evaluate()
  local y = net:forward(xval)
  local r = segloss.metrics.evaluate(y, tval, { activation = "sigmoid", distances = false })
  net:train()
  return r.dice
end

print(string.format("epoch   0  loss      -  val dice %.3f", validate()))
local epoch, first, last, shown = 0, nil, nil, -math.huge
while clock() - t0 < budget do
  epoch = epoch + 1
  local sum, nb = 0, 0
  for b = 1, NTRAIN, BATCH do
    local x, t = xtr:narrow(1, b, BATCH), ttr:narrow(1, b, BATCH)
    net:zero_grad()
    local y = net:forward(x)
    local loss = crit(y, t)
    net:backward(x, crit:backward(y, t))
    opt:step()
    sum, nb = sum + loss, nb + 1
  end
  local d = validate()
  first = first or d
  last = d
  -- about 20 lines whatever the speed
  if clock() - shown >= budget / 20 or clock() - t0 >= budget then
    shown = clock()
    print(string.format("epoch %3d  loss %.4f  val dice %.3f  [%.0f s]", epoch, sum / nb, d, clock() - t0))
  end
end
print(string.format("validation Dice went from %.3f after epoch 1 to %.3f after epoch %d", first, last, epoch))
