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
  --- What one allocation can get now (MemAvailable + SwapFree, within the
  -- memory cgroup's limit): `{available = bytes, account = "MemAvailable
  -- 19.6 GiB + SwapFree 0 B", checked_from = 67108864, zero_pages = true}`.
  -- A tensor or buffer of `checked_from` bytes or more that exceeds
  -- `available` is refused with an error instead of being left for the
  -- kernel's OOM killer; `zero_pages`: big `tensor.zeros` stay unwritten
  -- (calloc) until used.
  memory = core.memory,

  tensor = core.tensor,
  core = core,
  --- The losses: one descriptor each, from the registry in C (a fresh table
  -- per call): `{name = "dice", class = "Dice", kind = "region", paper = ,
  -- activations = {...}, options = {smooth = {type = "number", default = 1,
  -- min = 0}, ...}, ...}`.
  losses = core.losses,
}

local criterion = require "segloss.criterion"
segloss.metrics = require "segloss.metrics"
segloss.schedule = require "segloss.schedule"
segloss.nn = require "segloss.nn"
segloss.optim = require "segloss.optim"
segloss.experiment = require "segloss.experiment"
segloss.data = require "segloss.data"
segloss.Criterion = criterion.Criterion

-- Every loss of the registry twice: the functional form,
--   local loss, grad = segloss.dice(x, t, opts)
-- and the criterion class,
--   segloss.Dice{smooth = 1} + 0.5 * segloss.Focal{gamma = 2}
for _, d in ipairs(core.losses()) do
  segloss[d.name] = core[d.name]
  segloss[d.class] = criterion.constructor(d.class)
end

return segloss
