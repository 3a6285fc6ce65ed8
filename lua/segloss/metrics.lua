--- Segmentation metrics: overlap and surface distances, per class and per
-- sample, with one empty-mask policy that never returns NaN.
--
--     local r = segloss.metrics.evaluate(logits, labels, {activation = "softmax",
--                                                         spacing = {1.5, 0.8, 0.8}})
--     print(r.dice, r.hd95, r.per_class[2].assd)
--
-- Conventions (MONAI's `compute_hausdorff_distance`, `compute_average_surface_distance`
-- with `symmetric = true`, and the normalized surface Dice of Nikolov et al.):
--
-- * a mask's surface is its voxels with a 4- (2-D) or 6- (3-D) connected
--   neighbour outside it or outside the image (the mask minus its erosion by
--   the cross, the border counting as background);
-- * distances run between voxel centres, in physical units (`spacing`), from
--   each surface voxel of one mask to the nearest surface voxel of the other,
--   computed with an exact Euclidean distance transform;
-- * `hd` is the larger of the two directed maxima; `hd95` the larger of the
--   two directed 95th percentiles (linear interpolation, as numpy.percentile);
--   `assd` the mean of the distances of both directions together; `nsd` the
--   share of surface voxels within `tolerance` of the other surface.
--
-- Empty masks (never NaN): prediction and target both empty score perfectly
-- (dice = iou = precision = sensitivity = nsd = 1, hd = hd95 = assd = 0);
-- exactly one empty scores dice = iou = precision = sensitivity = nsd = 0 and
-- hd = hd95 = assd = `empty_distance` (default: the diagonal of the image,
-- √Σ(shape_i·spacing_i)², in physical units); a ratio whose denominator is 0
-- otherwise (specificity of an all-foreground target) is 1. Every result
-- lists the (sample, class) pairs that were empty, so they can be excluded.
-- @module segloss.metrics

local core = require "segloss.core"

local M = {}

local NAMES = { "dice", "iou", "precision", "sensitivity", "specificity", "hd", "hd95", "assd", "nsd" }
local DIST = { hd = true, hd95 = true, assd = true, nsd = true }

local function mean_of(rows, name)
  local s, n = 0, 0
  for _, r in ipairs(rows) do
    local v = r[name]
    if v ~= nil then
      s = s + v
      n = n + 1
    end
  end
  return n > 0 and s / n or nil
end

--- Evaluates a prediction against a target.
--
-- `pred`: a 0/1 mask, probabilities (thresholded at `threshold`), logits
-- with `activation = "sigmoid"` (thresholded) or `"softmax"` (argmax over the
-- classes), all of shape (N, C, spatial...) with 1 to 3 spatial axes; or a
-- label map (N, 1, spatial...) of classes 0 … K-1 with `classes = K` (e.g.
-- `logits:argmax()`). `target`: 0/1 of the prediction's shape, or a label
-- map (N, 1, spatial...) of classes 0 … C-1.
-- Options: `activation` ("none"), `threshold` (0.5), `classes` (the number
-- of classes of a label-map prediction, which takes activation "none"; with
-- a prediction of C channels it must be C), `spacing` (1 per spatial axis, in
-- the order of the axes), `tolerance` (1, in physical units, for nsd),
-- `empty_distance` (the image diagonal), `include_background` (true; false
-- leaves class 0 out when there are 2 classes or more), `distances` (true;
-- false skips hd, hd95, assd and nsd). An unknown option is an error that
-- suggests the option meant (`unknown option "spacng" (did you mean
-- "spacing"?)`).
--
-- Spacings may be any finite numbers > 0 that differ by a factor of at most
-- 2^500 and give a finite image diagonal; distances are computed in
-- physical units, or in units of the largest spacing when a spacing lies
-- outside [2^-200, 2^200], and reported in physical units. Else:
-- `spacing {1, 1e-200} is out of range: two axes' spacings may differ by a
-- factor of at most 2^500 (about 3e150), and the image's diagonal must be a
-- finite number`.
--
-- Returns a table with the means over every evaluated (sample, class) pair
-- (`dice`, `iou`, `precision`, `sensitivity`, `specificity`, `hd`, `hd95`,
-- `assd`, `nsd`); `per_class`, a list with one entry per evaluated class in
-- order (its means over the samples; its field `class` is the class as a
-- label map writes it, 0 … C-1, so with `include_background = false`
-- `per_class[1].class` is 1); `per_sample`, a list indexed by sample
-- number 1 … N (means over classes); `values` (every pair: `sample` 1 … N,
-- `class` 0 … C-1, the counts `tp fp fn tn`, surface sizes and its `empty`
-- flag: "none", "both", "pred" or "target"); and `empty`, the pairs where a
-- mask was empty (`sample`, `class` and `which`) — `class` is always the
-- label value, indexes (`per_class[i]`, `per_sample[n]`) are 1-based Lua
-- positions.
-- @tparam segloss.Tensor pred
-- @tparam segloss.Tensor target
-- @tparam[opt] table opts
-- @treturn table
function M.evaluate(pred, target, opts, ...)
  -- the C core checks the arguments and the options (with the losses'
  -- option walker, so that their errors read alike) and computes the rows
  local res = core.metrics_evaluate(pred, target, opts, ...)
  local dist = res.distances
  local rows = res.rows
  local r = { values = rows, per_class = {}, per_sample = {}, empty = {},
    empty_distance = res.empty_distance }
  local names = {}
  for _, n in ipairs(NAMES) do
    if dist or not DIST[n] then names[#names + 1] = n end
  end
  for _, n in ipairs(names) do r[n] = mean_of(rows, n) end
  local by_class, by_sample = {}, {}
  for _, row in ipairs(rows) do
    local kc = row.class - res.c0 + 1
    by_class[kc] = by_class[kc] or {}
    table.insert(by_class[kc], row)
    by_sample[row.sample] = by_sample[row.sample] or {}
    table.insert(by_sample[row.sample], row)
    if row.empty ~= "none" then
      r.empty[#r.empty + 1] = { sample = row.sample, class = row.class, which = row.empty }
    end
  end
  for k, list in ipairs(by_class) do
    local e = { class = list[1].class }
    for _, n in ipairs(names) do e[n] = mean_of(list, n) end
    r.per_class[k] = e
  end
  for k, list in ipairs(by_sample) do
    local e = { sample = k }
    for _, n in ipairs(names) do e[n] = mean_of(list, n) end
    r.per_sample[k] = e
  end
  return r
end

--- The exact Euclidean distance transform of a 1-, 2- or 3-D mask: for
-- every nonzero voxel the distance, in physical units, to the nearest zero
-- voxel, and 0 on zero voxels (SciPy's `distance_transform_edt`); +Inf
-- everywhere if the mask has no zero voxel. The mask is a tensor of 1 to 3
-- dimensions, all of them spatial (no batch or channel axis: take a sample
-- with `t:select(1, n):select(1, c)`); `spacing` has one entry per
-- dimension. Spacings must give distances within float32's range (about
-- 1.2e-38 to 3.4e38) and differ by at most a factor of 2^500. Linear time
-- (Felzenszwalb & Huttenlocher), threaded over lines.
-- @function distance_transform
-- @tparam segloss.Tensor mask
-- @tparam[opt] {number,...} spacing one per axis (default 1)
-- @treturn segloss.Tensor
M.distance_transform = core.distance_transform

return M
