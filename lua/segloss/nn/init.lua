--- segloss.nn: the layers, the U-Net and checkpoints (Torch7 nn habits,
-- PyTorch argument meanings and parameter layouts).
--
--     local nn = segloss.nn
--     local net = nn.UNet{input = 1, output = 1, base = 16, depth = 4}
--     local y = net:forward(x)            -- logits (N, output, S...)
--     local gx = net:backward(x, gy)      -- accumulates parameter gradients
--     net:save("unet.npz")   local net2 = nn.load("unet.npz")
--
-- See docs/nn.md.
-- @module segloss.nn

local nn = {}

nn.Module = require("segloss.nn.Module").Module
for name, cls in pairs(require "segloss.nn.Conv") do nn[name] = cls end
for name, cls in pairs(require "segloss.nn.Layers") do nn[name] = cls end
nn.Sequential = require "segloss.nn.Sequential"
nn.UNet = require "segloss.nn.UNet"

local checkpoint = require "segloss.nn.checkpoint"

--- Loads a module saved with `module:save(path)`: returns the module (in
-- training mode) and a table {optim = state or nil, meta = the file's metadata}.
function nn.load(path)
  return checkpoint.load(nn, path)
end

--- Is v a segloss.nn module?
nn.is_module = nn.Sequential.is_module

return nn
