--- The built-in default study: what `make run` and `segloss compare` (with
-- no --data) train. Synthetic images at about 2 %, 0.5 % and 0.1 %
-- foreground and lesions in real MRI slices, each with a fifth of the images
-- empty; the eleven losses of the article's comparison. See docs/study.md.
--
--     local study = segloss.experiment.study
--     local cfg = study.config()            -- or study.config{quick = true}
--     cfg.out = "results"
--     segloss.experiment.run(cfg)
--
-- @module segloss.experiment.study

local St = {}

--- The losses, as segloss.experiment.run takes them (the U-Net's logits get
-- a sigmoid): plain and weighted cross-entropy, focal, the region losses and
-- the two combinations.
St.LOSSES = { "bce", { "bce", pos_weight = "auto" }, "focal", "dice", "iou", "tversky", "focal_tversky",
  "sensitivity_specificity", "generalized_dice", "bce_dice", "dice_focal" }

--- The same, as the command line writes them (name:key=value).
St.LOSS_FLAGS = { "bce", "bce:pos_weight=auto", "focal", "dice", "iou", "tversky", "focal_tversky",
  "sensitivity_specificity", "generalized_dice", "bce_dice", "dice_focal" }

--- The data settings: a list of {name, data = function returning a
-- dataset, about = text}. opts.n (images per setting, 64), opts.seed (of
-- the data, 1), opts.mri (false to leave the MRI setting out).
function St.settings(opts)
  opts = opts or {}
  local data = require "segloss.data"
  local n, seed = opts.n or 64, opts.seed or 1
  local list = {
    { name = "synthetic_2pct", about = "synthetic 64x64, 2 % foreground",
      data = function() return data.synthetic { n = n, size = { 64, 64 }, foreground = 0.02, empty = 0.2,
        seed = seed } end },
    { name = "synthetic_05pct", about = "synthetic 64x64, 0.5 % foreground",
      data = function() return data.synthetic { n = n, size = { 64, 64 }, foreground = 0.005, empty = 0.2,
        seed = seed } end },
    { name = "synthetic_01pct", about = "synthetic 96x96, 0.1 % foreground",
      data = function() return data.synthetic { n = n, size = { 96, 96 }, foreground = 0.001, empty = 0.2,
        seed = seed } end },
  }
  if opts.mri ~= false then
    list[#list + 1] = { name = "mri_05pct", about = "lesions in MRI slices, 64x64 crops, 0.5 % foreground",
      data = function() return data.mri { n = n, size = { 64, 64 }, foreground = 0.005, empty = 0.2, seed = seed } end }
  end
  return list
end

--- The options of segloss.experiment.run for the study (without out):
-- opts.quick gives the 20-second version (three losses, two settings,
-- fewer images and epochs); opts.n, opts.mri as for settings.
function St.config(opts)
  opts = opts or {}
  if opts.quick then
    local s = St.settings { n = opts.n or 48, seed = opts.seed, mri = false }
    return { data = { s[1], s[2] }, losses = { "bce", "dice", "bce_dice" }, epochs = 40, seeds = { 1 },
      model = { base = 8, depth = 2 }, lr = 3e-3 }
  end
  return { data = St.settings(opts), losses = St.LOSSES, epochs = 80, seeds = { 1 },
    model = { base = 8, depth = 2 }, lr = 3e-3 }
end

return St
