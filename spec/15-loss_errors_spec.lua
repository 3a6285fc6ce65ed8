-- Every error of docs/losses.md's list: a message that names the function and
-- the argument (and the offending value or index), and nothing written to out.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor

local x = T.randn(2, 3, 4, 5)
local p = x:sigmoid()
local t = T.zeros(2, 3, 4, 5)
local lab = T.zeros(2, 1, 4, 5)
local x1 = T.randn(2, 1, 4, 5)
local t1 = T.zeros(2, 1, 4, 5)

local function with(tensor, i, v)
  local c = tensor:clone()
  c:reshape(c:numel()):set(i, v)
  return c
end

local cases = {
  -- data
  { "target outside [0, 1]", "segloss.dice", { "target value 1.5 at {1,1,1,3} is outside [0, 1]" },
    function(o) o.activation = "sigmoid"; return segloss.dice(x, with(t, 3, 1.5), o) end },
  { "negative target", "segloss.bce", { "target value -0.25 at {2,3,4,5}" },
    function(o) o.activation = "sigmoid"; return segloss.bce(x, with(t, 120, -0.25), o) end },
  { "NaN target", "segloss.focal", { "target value nan at {1,2,1,1}" },
    function(o) o.activation = "sigmoid"; return segloss.focal(x, with(t, 21, 0 / 0), o) end },
  { "label out of range", "segloss.ce", { "target label 3 at {1,1,2,1} is not an integer in 0..2" },
    function(o) o.activation = "softmax"; return segloss.ce(x, with(lab, 6, 3), o) end },
  { "fractional label", "segloss.dice", { "target label 1.5 at {2,1,1,1}" },
    function(o) o.activation = "softmax"; return segloss.dice(x, with(lab, 21, 1.5), o) end },
  { "negative label", "segloss.generalized_dice", { "target label -1 at {1,1,1,1}" },
    function(o) o.activation = "softmax"; return segloss.generalized_dice(x, with(lab, 1, -1), o) end },
  { "NaN input", "segloss.bce", { "input has nan at {1,1,1,2}" },
    function(o) o.activation = "sigmoid"; return segloss.bce(with(x, 2, 0 / 0), t, o) end },
  { "Inf input", "segloss.dice", { "input has inf at {2,3,4,5}" },
    function(o) o.activation = "sigmoid"; return segloss.dice(with(x, 120, 1 / 0), t, o) end },
  { "-Inf input with softmax", "segloss.ce", { "input has -inf at {1,2,1,1}" },
    function(o) o.activation = "softmax"; return segloss.ce(with(x, 21, -1 / 0), lab, o) end },
  { "NaN input where masked", "segloss.tversky", { "input has nan at {1,1,1,1}" },
    function(o)
      o.activation = "sigmoid"; o.mask = with(T.ones(2, 1, 4, 5), 1, 0)
      return segloss.tversky(with(x, 1, 0 / 0), t, o)
    end },
  { "probability input above 1", "segloss.dice", { "input value 1.25 at {1,1,1,1} is outside [0, 1]",
    'activation = "sigmoid"' }, function(o) return segloss.dice(with(p, 1, 1.25), t, o) end },
  { "logits passed as probabilities", "segloss.bce", { "input value", "is outside [0, 1] with activation \"none\"" },
    function(o) return segloss.bce(x, t, o) end },
  { "mask not 0/1", "segloss.dice", { "mask value 0.5 at {1,1,1,4} is not 0 or 1" },
    function(o) o.activation = "sigmoid"; o.mask = with(T.ones(2, 1, 4, 5), 4, 0.5); return segloss.dice(x, t, o) end },
  { "NaN mask", "segloss.bce", { "mask value nan at {2,1,1,1}" },
    function(o) o.activation = "sigmoid"; o.mask = with(T.ones(2, 1, 4, 5), 21, 0 / 0); return segloss.bce(x, t, o) end },
  { "softmax mask differs across channels", "segloss.dice", { "mask value 0 at {1,2,1,1} differs from channel 1" },
    function(o) o.activation = "softmax"; o.mask = with(T.ones(2, 3, 4, 5), 21, 0); return segloss.dice(x, lab, o) end },
  { "ce mask differs across channels", "segloss.ce", { "differs from channel 1" },
    function(o) o.mask = with(T.ones(2, 3, 4, 5), 21, 0); return segloss.ce(p, t, o) end },
  -- shapes and combinations
  { "target shape", "segloss.dice", { "target shape {2,3,4,4} does not match input {2,3,4,5}" },
    function(o) return segloss.dice(p, T.zeros(2, 3, 4, 4), o) end },
  { "label map with C = 1 is a mask of the wrong shape", "segloss.dice", { "target shape {2,1,4,4}" },
    function(o) return segloss.dice(x1:sigmoid(), T.zeros(2, 1, 4, 4), o) end },
  { "mask shape", "segloss.bce", { "option mask shape {2,2,4,5} does not match input {2,3,4,5}" },
    function(o) o.mask = T.ones(2, 2, 4, 5); return segloss.bce(p, t, o) end },
  { "2-D input", "segloss.dice", { "input must have 3 to 5 dimensions (N, C, spatial...), got shape {2,3}" },
    function(o) return segloss.dice(T.zeros(2, 3), T.zeros(2, 3), o) end },
  { "1-D input", "segloss.bce", { "input must have 3 to 5 dimensions (N, C, spatial...), got shape {5}" },
    function(o) return segloss.bce(T.zeros(5), T.zeros(5), o) end },
  { "softmax with C = 1", "segloss.dice", { 'activation "softmax" needs at least 2 channels, got C = 1' },
    function(o) o.activation = "softmax"; return segloss.dice(x1, t1, o) end },
  { "bce with softmax", "segloss.bce", { 'bce needs activation "sigmoid" or "none", got "softmax"' },
    function(o) o.activation = "softmax"; return segloss.bce(x, t, o) end },
  { "bce_dice with softmax", "segloss.bce_dice", { "bce needs activation" },
    function(o) o.activation = "softmax"; return segloss.bce_dice(x, t, o) end },
  { "ce with sigmoid", "segloss.ce", { 'ce needs activation "softmax" or "none", got "sigmoid"' },
    function(o) o.activation = "sigmoid"; return segloss.ce(x, t, o) end },
  { "complement with C = 3", "segloss.dice", { "option complement needs C = 1 and squared = false, got C = 3" },
    function(o) o.complement = true; return segloss.dice(p, t, o) end },
  { "complement with squared", "segloss.dice", { "got C = 1 and squared = true" },
    function(o) o.complement = true; o.squared = true; return segloss.dice(x1:sigmoid(), t1, o) end },
  { "generalized_dice with weight", "segloss.generalized_dice", { "option weight is not supported" },
    function(o) o.weight = { 1, 1, 1 }; return segloss.generalized_dice(p, t, o) end },
  { "combo with softmax", "segloss.combo", { 'combo needs activation "sigmoid" or "none", got "softmax"', "segloss.CE" },
    function(o) o.activation = "softmax"; return segloss.combo(x, lab, o) end },
  { "combo with beta above 1", "segloss.combo", { "option beta must be a number in [0, 1], got 1.5" },
    function(o) o.activation = "sigmoid"; o.beta = 1.5; return segloss.combo(x, t, o) end },
  { "combo with pos_weight", "segloss.combo", { "option pos_weight is not supported (combo weighs the positive term by beta)" },
    function(o) o.activation = "sigmoid"; o.pos_weight = 2; return segloss.combo(x, t, o) end },
  { "combo with alpha a list", "segloss.combo", { "option alpha must be a number in [0, 1], got a table" },
    function(o) o.activation = "sigmoid"; o.alpha = { 0.5, 0.5, 0.5 }; return segloss.combo(x, t, o) end },
  { "combo with reduction none", "segloss.combo", { 'a combination of losses has no reduction "none"' },
    function(o) o.activation = "sigmoid"; o.reduction = "none"; return segloss.combo(x, t, o) end },
  { "combination with reduction none", "segloss.dice_focal", { 'a combination of losses has no reduction "none"' },
    function(o) o.reduction = "none"; return segloss.dice_focal(p, t, o) end },
  -- options
  { "unknown option", "segloss.dice", { 'unknown option "smoth" (did you mean "smooth"?)' },
    function(o) o.smoth = 1; return segloss.dice(p, t, o) end },
  { "option of another loss", "segloss.bce", { 'unknown option "gamma"' },
    function(o) o.gamma = 2; return segloss.bce(p, t, o) end },
  { "option name not a string", "segloss.iou", { "option names must be strings, got 1" },
    function(o) o[1] = true; return segloss.iou(p, t, o) end },
  { "unknown activation", "segloss.dice", { 'option activation must be one of "none", "sigmoid", "softmax", got string "relu"' },
    function(o) o.activation = "relu"; return segloss.dice(p, t, o) end },
  { "unknown reduction", "segloss.bce", { 'option reduction must be one of "mean", "sum", "none", got string "avg"' },
    function(o) o.reduction = "avg"; return segloss.bce(p, t, o) end },
  { "unknown w_type", "segloss.generalized_dice", { 'option w_type must be one of "square", "simple", "uniform"' },
    function(o) o.w_type = "cubic"; return segloss.generalized_dice(p, t, o) end },
  { "unknown empty", "segloss.iou", { 'option empty must be one of "none", "complement"' },
    function(o) o.empty = "skip"; return segloss.iou(p, t, o) end },
  { "negative weight", "segloss.dice", { "option weight[2] must be a number >= 0 within the float32 range (<= 3.4028235e+38), got -1" },
    function(o) o.weight = { 1, -1, 1 }; return segloss.dice(p, t, o) end },
  { "weight of the wrong length", "segloss.bce", { "option weight must have one entry per channel (3), got 2" },
    function(o) o.weight = { 1, 2 }; return segloss.bce(p, t, o) end },
  { "weight not a list", "segloss.bce", { "option weight must be a list of one number >= 0 per channel, got 2" },
    function(o) o.weight = 2; return segloss.bce(p, t, o) end },
  { "negative smooth", "segloss.dice", { "option smooth must be a finite number >= 0, got -1" },
    function(o) o.smooth = -1; return segloss.dice(p, t, o) end },
  { "NaN smooth_dr", "segloss.tversky", { "option smooth_dr must be a finite number >= 0, got nan" },
    function(o) o.smooth_dr = 0 / 0; return segloss.tversky(p, t, o) end },
  { "negative pos_weight", "segloss.bce", { "option pos_weight must be a number >= 0 within the float32 range (<= 3.4028235e+38), got -2" },
    function(o) o.pos_weight = -2; return segloss.bce(p, t, o) end },
  { "pos_weight string", "segloss.bce", { 'option pos_weight must be a number >= 0 or "auto", got string "max"' },
    function(o) o.pos_weight = "max"; return segloss.bce(p, t, o) end },
  { "negative gamma", "segloss.focal", { "option gamma must be a number >= 0 within the float32 range (<= 3.4028235e+38), got -0.5" },
    function(o) o.gamma = -0.5; return segloss.focal(p, t, o) end },
  { "alpha above 1", "segloss.focal", { "option alpha must be a number in [0, 1], got 1.5" },
    function(o) o.alpha = 1.5; return segloss.focal(p, t, o) end },
  { "alpha list with sigmoid", "segloss.focal", { 'option alpha must be a number in [0, 1] or false with activation "sigmoid"' },
    function(o) o.activation = "sigmoid"; o.alpha = { 0.5, 0.5, 0.5 }; return segloss.focal(x, t, o) end },
  { "alpha number with softmax", "segloss.focal", { "option alpha must be a list of 3 numbers in [0, 1] or false" },
    function(o) o.activation = "softmax"; o.alpha = 0.25; return segloss.focal(x, lab, o) end },
  { "tversky alpha false", "segloss.tversky", { "option alpha must be a number in [0, 1], got boolean false" },
    function(o) o.alpha = false; return segloss.tversky(p, t, o) end },
  { "lambda above 1", "segloss.sensitivity_specificity", { "option lambda must be a number in [0, 1], got 2" },
    function(o) o.lambda = 2; return segloss.sensitivity_specificity(p, t, o) end },
  { "dice_focal lambda above 1", "segloss.dice_focal", { "option lambda must be a number in [0, 1], got 2" },
    function(o) o.lambda = 2; return segloss.dice_focal(p, t, o) end },
  { "eps of 0", "segloss.bce", { "option eps must be a number in (0, 1) no smaller than 1.1754944e-38 (float32), got 0" },
    function(o) o.eps = 0; return segloss.bce(p, t, o) end },
  { "eps of 1", "segloss.focal_tversky", { "option eps must be a number in (0, 1) no smaller than 1.1754944e-38 (float32), got 1" },
    function(o) o.eps = 1; return segloss.focal_tversky(p, t, o) end },
  { "boolean option given a number", "segloss.dice", { "option batch must be a boolean, got 1" },
    function(o) o.batch = 1; return segloss.dice(p, t, o) end },
  { "boolean option given a string", "segloss.iou", { 'option soft_label must be a boolean, got string "true"' },
    function(o) o.soft_label = "true"; return segloss.iou(p, t, o) end },
  { "mask not a tensor", "segloss.dice", { "option mask must be a segloss.Tensor, got a table" },
    function(o) o.mask = {}; return segloss.dice(p, t, o) end },
  -- arguments
  { "input not a tensor", "segloss.dice", { "input must be a segloss.Tensor, got a table" },
    function() return segloss.dice({}, t) end },
  { "target missing", "segloss.bce", { "expected at least 2 arguments, got 1" },
    function() return segloss.bce(p) end },
  { "opts not a table", "segloss.ce", { 'opts must be a table, got string "softmax"' },
    function() return segloss.ce(p, t, "softmax") end },
}

describe("loss errors", function()
  for _, c in ipairs(cases) do
    it(c[1], function()
      -- with an out buffer that must come back untouched
      local out = T.full(x:shape(), 7)
      H.errors(c[2] .. ": ", c[3], c[4], { out = out })
      local o = out:clone() - 7
      assert.is_true(o:max() == 0 and o:min() == 0, "out was written")
    end)
  end

  it("out of another shape, or sharing storage with an input", function()
    H.errors("segloss.dice: ", { "option out shape {2,3,4,4} does not match input {2,3,4,5}" },
      segloss.dice, p, t, { out = T.zeros(2, 3, 4, 4) })
    H.errors("segloss.dice: ", { "option out shares storage with the input" },
      segloss.dice, p, t, { out = p })
    H.errors("segloss.bce: ", { "option out shares storage with the target" },
      segloss.bce, p, t, { out = t:reshape(120):reshape(2, 3, 4, 5) })
  end)

  it("data errors leave out untouched for every loss, also with a fused first pass", function()
    local bad = with(t, 77, 2)
    for _, d in ipairs(H.losses(function(d) return H.allows(d, "sigmoid") end)) do
      local name = d.name
      local out = T.full(x:shape(), 7)
      H.errors("segloss." .. name .. ": ", { "target value 2 at {2,1,4,2}" }, segloss[name], x, bad,
        { activation = "sigmoid", out = out })
      assert.equal(7 * 120, out:sum())
    end
  end)
end)
