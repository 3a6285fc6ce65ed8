--- segloss: exact, fast losses for segmenting small targets.
-- The C core (segloss.core) holds the tensors and kernels; this table is
-- the public API, documented in docs/ (docs/README.md).
-- @module segloss

local core = require "segloss.core"

local segloss = {
  _VERSION = "segloss 0.1.0",
  _DESCRIPTION = "Segmentation losses for small targets, with fused SIMD kernels",

  backend = core.backend,
  set_backend = core.set_backend,
  backends = core.backends,
  set_threads = core.set_threads,
  threads = core.threads,
  seed = core.seed,

  tensor = core.tensor,
  core = core,
}

local criterion = require "segloss.criterion"
segloss.metrics = require "segloss.metrics"
segloss.schedule = require "segloss.schedule"
segloss.nn = require "segloss.nn"
segloss.optim = require "segloss.optim"
segloss.experiment = require "segloss.experiment"
segloss.data = require "segloss.data"
segloss.Criterion = criterion.Criterion

-- Criterion objects: segloss.Dice{smooth = 1} + 0.5 * segloss.Focal{gamma = 2}
for class in pairs(criterion.classes) do
  segloss[class] = criterion.constructor(class)
end

-- The functional losses: local loss, grad = segloss.dice(x, t, opts)
for _, name in ipairs { "bce", "ce", "focal", "dice", "iou", "tversky", "focal_tversky",
  "sensitivity_specificity", "generalized_dice", "bce_dice", "dice_focal" } do
  segloss[name] = core[name]
end

return segloss
