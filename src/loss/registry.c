/*
 * registry.c — the table of losses (registry.h). A loss is described here
 * once: its name and class, its kind and the component of the engine that
 * computes it, its options, activations, paper and reference text.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>

#include "generic.h"
#include "loss.h"
#include "registry.h"

#define FMAX ((double)FLT_MAX)

const char *const sl_activations[] = {"none", "sigmoid", "softmax", NULL};
const char *const sl_reductions[] = {"mean", "sum", "none", NULL};
static const char *const w_types[] = {"square", "simple", "uniform", NULL};
static const char *const empties[] = {"none", "complement", NULL};
static const char *const class_sets[] = {"present", "all", NULL};

const char *const sl_kind_names[SL_KIND_COUNT] = {"pixel", "region", "preset", "generic"};

#define NODEF {SL_DEF_NONE, 0.0, 0}
#define BOOLOPT(nm, dv, d) {nm, SL_OT_BOOL, NULL, 0, 0, 0, 0, NULL, SL_DEFV(dv), d}
#define NUMOPT(nm, lo, hi, lo_open, hi_open, def, d) {nm, SL_OT_NUMBER, NULL, lo, hi, lo_open, hi_open, NULL, def, d}

/* Every option of every loss; the per-loss entries below narrow the type or
 * change the default. */
const sl_optdesc sl_loss_options[SL_O_COUNT] = {
	[SL_O_ACTIVATION] = {"activation", SL_OT_ENUM, sl_activations, 0, 0, 0, 0, NULL, SL_DEFV(SL_ACT_NONE),
	                     "how p is made from x"},
	[SL_O_REDUCTION] = {"reduction", SL_OT_ENUM, sl_reductions, 0, 0, 0, 0, NULL, SL_DEFV(SL_RED_MEAN),
	                    "the mean or the sum over what takes part, or the values themselves"},
	[SL_O_MASK] = {"mask", SL_OT_TENSOR, NULL, 0, 0, 0, 0, NULL, NODEF,
	               "validity mask of 0/1, shape (N, 1, S...) or x's"},
	[SL_O_WEIGHT] = {"weight", SL_OT_CHANNELS, NULL, 0.0, FMAX, 0, 0,
	                 "a list of one number >= 0 per channel", SL_DEFTEXT("1 per class"),
	                 "class weights w_c"},
	[SL_O_INCLUDE_BACKGROUND] = BOOLOPT("include_background", 1,
	                                    "false leaves class 0 out (only when C >= 2)"),
	[SL_O_BATCH] = BOOLOPT("batch", 0, "region losses: one statistic per class over the whole batch"),
	[SL_O_SMOOTH] = NUMOPT("smooth", 0.0, INFINITY, 0, 0, NODEF,
	                       "sets both smoothing terms s_nr and s_dr"),
	[SL_O_SMOOTH_NR] = NUMOPT("smooth_nr", 0.0, INFINITY, 0, 0, SL_DEFFROM(SL_O_SMOOTH),
	                          "the numerator's smoothing term s_nr alone"),
	[SL_O_SMOOTH_DR] = NUMOPT("smooth_dr", 0.0, INFINITY, 0, 0, SL_DEFFROM(SL_O_SMOOTH),
	                          "the denominator's smoothing term s_dr alone"),
	/* a normal float32 below 1: the kernels clamp logs at (float)eps, whose
	 * reciprocal must be finite */
	[SL_O_EPS] = {"eps", SL_OT_NUMBER, NULL, (double)FLT_MIN, 1.0, 0, 1,
	              "a number in (0, 1) no smaller than 1.1754944e-38 (float32)", SL_DEFV(1e-7),
	              "clamp of logarithms with activation \"none\""},
	/* labels are float32: an integer they hold exactly */
	[SL_O_IGNORE_INDEX] = {"ignore_index", SL_OT_INT, NULL, -16777216.0, 16777216.0, 0, 0, NULL,
	                       SL_DEFTEXT("none"),
	                       "a label (or, with a target of x's shape, a target value) whose elements take "
	                       "no part, as if masked"},
	[SL_O_GRAD] = BOOLOPT("grad", 1, "false: no gradient pass, the gradient is nil"),
	[SL_O_OUT] = {"out", SL_OT_TENSOR, NULL, 0, 0, 0, 0, NULL, NODEF, "receives the gradient"},
	[SL_O_POS_WEIGHT] = {"pos_weight", SL_OT_NUM_AUTO, NULL, 0.0, FMAX, 0, 0,
	                     "a number >= 0 or \"auto\"", SL_DEFV(1.0),
	                     "weight w+ of the positive term; \"auto\": (valid - positives) / max(positives, 1) "
	                     "over the batch"},
	[SL_O_ALPHA] = {"alpha", SL_OT_NUM_FALSE_CHANNELS, NULL, 0.0, 1.0, 0, 0, NULL, NODEF, "alpha"},
	[SL_O_BETA] = NUMOPT("beta", 0.0, INFINITY, 0, 0, NODEF, "weight of false negatives"),
	[SL_O_GAMMA] = NUMOPT("gamma", 0.0, FMAX, 0, 0, NODEF, "the exponent gamma"),
	[SL_O_SQUARED] = BOOLOPT("squared", 0, "denominator SP2 + ST2 + s_dr (V-Net)"),
	[SL_O_COMPLEMENT] = BOOLOPT("complement", 0, "also score the background: the binary DL2 (C = 1)"),
	[SL_O_SOFT_LABEL] = BOOLOPT("soft_label", 0, "TP = (SP + ST - sum |p - t|)/2, minimal at p = t "
	                                             "for soft targets"),
	[SL_O_EMPTY] = {"empty", SL_OT_ENUM, empties, 0, 0, 0, 0, NULL, SL_DEFV(0),
	                "\"complement\": an (n, c) with an empty target is scored on 1 - p, 1 - t"},
	[SL_O_LAMBDA] = NUMOPT("lambda", 0.0, 1.0, 0, 0, NODEF, "lambda"),
	[SL_O_W_TYPE] = {"w_type", SL_OT_ENUM, w_types, 0, 0, 0, 0, NULL, SL_DEFV(SL_W_SQUARE),
	                 "class weights 1/ST^2 (\"square\"), 1/ST (\"simple\") or 1 (\"uniform\")"},
	[SL_O_BCE_WEIGHT] = NUMOPT("bce_weight", 0.0, FMAX, 0, 0, SL_DEFV(1.0), "weight of the bce part"),
	[SL_O_DICE_WEIGHT] = NUMOPT("dice_weight", 0.0, FMAX, 0, 0, SL_DEFV(1.0), "weight of the dice part"),
	[SL_O_PER_IMAGE] = BOOLOPT("per_image", 0, "one value per image, then their mean (else one over the batch)"),
	[SL_O_CLASSES] = {"classes", SL_OT_ENUM, class_sets, 0, 0, 0, 0, NULL, SL_DEFV(0),
	                  "the classes averaged: those present in the target, or all"},
	[SL_O_SPACING] = {"spacing", SL_OT_NUMBERS, NULL, 0, 0, 0, 0,
	                  "a list of one number > 0 per spatial axis", SL_DEFTEXT("1 per axis"),
	                  "the element spacing per spatial axis, for distances"},
	[SL_O_ITERATIONS] = {"iterations", SL_OT_INT, NULL, 0.0, 10000.0, 0, 0, NULL, SL_DEFV(3),
	                     "steps of the soft skeleton"},
	[SL_O_DELTA] = NUMOPT("delta", 0.0, 1.0, 0, 0, NODEF, "delta"),
	[SL_O_K] = NUMOPT("k", 0.0, 100.0, 1, 0, SL_DEFV(10.0), "the percentage of the terms kept, the largest"),
	[SL_O_LABEL_SMOOTHING] = NUMOPT("label_smoothing", 0.0, 1.0, 0, 1, SL_DEFV(0.0),
	                                "targets become t (1 - eps) + eps / K (K = C with softmax, else 2)"),
};

#define A(a) (1u << (a))
/* an entry: the option, its default here */
#define OPT(o, def) {o, def, NODEF, -1, NULL, NULL}
#define OPTD(o, def, doc) {o, def, NODEF, -1, NULL, doc}
#define SMOOTH(v) OPT(SL_O_SMOOTH, SL_DEFV(v))

static const sl_lossopt bce_opts[] = {OPT(SL_O_POS_WEIGHT, NODEF)};
static const sl_lossopt focal_opts[] = {
	{SL_O_ALPHA, SL_DEFV(0.25), SL_DEFFALSE, -1, NULL,
	 "class balance: a number in [0, 1] or false with sigmoid/none; a list of one number in [0, 1] "
	 "per class, or false, with softmax"},
	OPTD(SL_O_GAMMA, SL_DEFV(2.0), "focusing exponent: (1 - p_t)^gamma"),
};
static const sl_lossopt dice_opts[] = {
	SMOOTH(1.0), OPT(SL_O_SQUARED, NODEF), OPT(SL_O_COMPLEMENT, NODEF), OPT(SL_O_SOFT_LABEL, NODEF),
};
static const sl_lossopt iou_opts[] = {SMOOTH(1e-6), OPT(SL_O_SOFT_LABEL, NODEF), OPT(SL_O_EMPTY, NODEF)};
static const sl_lossopt tversky_opts[] = {
	SMOOTH(1e-5),
	{SL_O_ALPHA, SL_DEFV(0.3), NODEF, SL_OT_NUMBER, NULL, "weight of false positives"},
	OPT(SL_O_BETA, SL_DEFV(0.7)),
	OPT(SL_O_SOFT_LABEL, NODEF),
};
static const sl_lossopt ftversky_opts[] = {
	SMOOTH(1e-5),
	{SL_O_ALPHA, SL_DEFV(0.3), NODEF, SL_OT_NUMBER, NULL, "weight of false positives"},
	OPT(SL_O_BETA, SL_DEFV(0.7)),
	OPTD(SL_O_GAMMA, SL_DEFV(0.75), "exponent of the Tversky loss"),
	OPT(SL_O_SOFT_LABEL, NODEF),
};
static const sl_lossopt sensspec_opts[] = {
	SMOOTH(1e-5), OPTD(SL_O_LAMBDA, SL_DEFV(0.05), "weight of the sensitivity term"),
};
static const sl_lossopt gdice_opts[] = {
	SMOOTH(1e-5),
	OPT(SL_O_W_TYPE, NODEF),
	{SL_O_WEIGHT, NODEF, NODEF, -1, "generalized_dice weighs classes by w_type", NULL},
};
static const sl_lossopt bce_dice_opts[] = {OPT(SL_O_BCE_WEIGHT, NODEF), OPT(SL_O_DICE_WEIGHT, NODEF)};
static const sl_lossopt dice_focal_opts[] = {
	OPTD(SL_O_LAMBDA, SL_DEFV(1.0), "weight of the focal part"),
	{SL_O_ALPHA, SL_DEFFALSE, SL_DEFFALSE, -1, NULL, "the focal part's alpha, as focal's"},
};
static const sl_lossopt lovasz_hinge_opts[] = {
	OPTD(SL_O_PER_IMAGE, SL_DEFV(1), "one hinge per image, then their mean (false: one over the batch)"),
	{SL_O_WEIGHT, NODEF, NODEF, -1, "lovasz_hinge has one class: weigh the loss itself, k * LovaszHinge{}", NULL},
	{SL_O_BATCH, NODEF, NODEF, -1, "use per_image = false for one hinge over the batch", NULL},
};
static const sl_lossopt lovasz_softmax_opts[] = {
	OPT(SL_O_CLASSES, NODEF),
	OPTD(SL_O_PER_IMAGE, SL_DEFV(0), "per image, then the mean over images (false: over the batch)"),
	{SL_O_BATCH, NODEF, NODEF, -1, "the loss is over the batch unless per_image = true", NULL},
};
static const sl_presetpart bce_dice_parts[] = {{SL_L_BCE, SL_O_BCE_WEIGHT}, {SL_L_DICE, SL_O_DICE_WEIGHT}};
static const sl_presetpart dice_focal_parts[] = {{SL_L_DICE, -1}, {SL_L_FOCAL, SL_O_LAMBDA}};

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
#define OPTS(a) a, N(a)
#define ALLACTS (A(SL_ACT_NONE) | A(SL_ACT_SIGMOID) | A(SL_ACT_SOFTMAX))

const sl_lossdesc sl_losses[SL_L_COUNT] = {
	[SL_L_BCE] = {
		"bce", "BCE", "segloss.bce", SL_KIND_PIXEL, SL_PX_BCE, A(SL_ACT_NONE) | A(SL_ACT_SIGMOID), "use ce",
		0, OPTS(bce_opts), NULL, 0, "of x's shape",
		"Ronneberger et al. 2015 (the weighted form)",
		"Binary cross-entropy, optionally weighted, elementwise over every channel.",
		"`ℓ = -w_c [w⁺ t log p + (1 - t) log(1 - p)]`. With `\"sigmoid\"` the logs\n"
		"are computed stably from the logits; with `\"none\"` they are clamped to\n"
		"`[eps, 1]`. `pos_weight = \"auto\"` sets `w⁺ = (Σm - Σmt) / max(Σmt, 1)`\n"
		"over the whole batch, a constant: the weighted cross-entropy that\n"
		"balances a rare foreground.\n"
		"\n"
		"Agrees with PyTorch's `binary_cross_entropy_with_logits` (with `pos_weight`).\n"
		"Invariant: `focal` with `gamma = 0, alpha = false` equals it.",
		"activation = \"sigmoid\", pos_weight = \"auto\"", "mask01",
	},
	[SL_L_CE] = {
		"ce", "CE", "segloss.ce", SL_KIND_PIXEL, SL_PX_CE, A(SL_ACT_NONE) | A(SL_ACT_SOFTMAX), "use bce",
		0, NULL, 0, NULL, 0, "(N, 1, S...)",
		"the cross-entropy (PyTorch's cross_entropy with probability targets)",
		"Cross-entropy over the classes, per pixel.",
		"`ℓ = -Σ_c w_c t_c log p_c`; the mean divides by the number of valid\n"
		"pixels, also with class weights and label maps. With\n"
		"`include_background = false` class 0 is left out of the sum, not out of\n"
		"the pixel count. Label maps `(N, 1, ...)` are never expanded in memory.\n"
		"\n"
		"Agrees with PyTorch's `cross_entropy` with probability targets.\n"
		"Invariant: softmax `focal` with `gamma = 0` equals it.",
		"activation = \"softmax\", weight = {0.1, 1, 1}", "labels",
	},
	[SL_L_FOCAL] = {
		"focal", "Focal", "segloss.focal", SL_KIND_PIXEL, SL_PX_FOCAL, ALLACTS, NULL,
		0, OPTS(focal_opts), NULL, 0, "of x's shape, or (N, 1, S...) with softmax",
		"Lin et al. 2017",
		"Focal loss: cross-entropy scaled down where the prediction is already good.",
		"Sigmoid or none, elementwise: `ℓ = w_c α_t (1 - p_t)^γ bce_t` with\n"
		"`p_t = p t + (1 - p)(1 - t)`, `α_t = α t + (1 - α)(1 - t)`. Softmax, per\n"
		"pixel: `ℓ = -Σ_c w_c α_c t_c (1 - p_c)^γ log p_c`. `alpha` is a number in\n"
		"[0, 1] or false with sigmoid/none, a list of C numbers in [0, 1] or\n"
		"false with softmax (false: no α factor).\n"
		"\n"
		"Agrees with torchvision's `sigmoid_focal_loss` and MONAI's\n"
		"`FocalLoss(use_softmax = True)` (whose mean is ours divided by C).\n"
		"Invariant: `gamma = 0, alpha = false` gives bce (ce with softmax).",
		"activation = \"sigmoid\", gamma = 2, alpha = 0.25", "mask01",
	},
	[SL_L_DICE] = {
		"dice", "Dice", "segloss.dice", SL_KIND_REGION, SL_R_DICE, ALLACTS, NULL,
		SL_LF_SMOOTH_NR, OPTS(dice_opts), NULL, 0, "(N, C), or (1, C) with batch",
		"Milletari et al. 2016 (V-Net)",
		"Soft Dice loss, per sample and class: the overlap measure made differentiable.",
		"`L = 1 - (2 TP + s_nr) / (SP + ST + s_dr)`. `squared = true` uses\n"
		"`Σp² + Σt²` in the denominator (V-Net); `complement = true` (C = 1) also\n"
		"scores the background, as the binary DL2 of Sudre et al. 2017;\n"
		"`soft_label = true` takes `TP = (SP + ST - Σ|p - t|)/2`, minimal at\n"
		"`p = t` for soft targets (MONAI issue 8094).\n"
		"\n"
		"Agrees with MONAI's `DiceLoss`.\n"
		"Invariant: `tversky` with `alpha = beta = 0.5` and smooth `s` equals it\n"
		"with smooth `2 s`.",
		"activation = \"softmax\", include_background = false", "labels",
	},
	[SL_L_IOU] = {
		"iou", "IoU", "segloss.iou", SL_KIND_REGION, SL_R_IOU, ALLACTS, NULL,
		SL_LF_SMOOTH_NR, OPTS(iou_opts), NULL, 0, "(N, C), or (1, C) with batch",
		"Rahman and Wang 2016",
		"Soft IoU (Jaccard) loss, per sample and class.",
		"`L = 1 - (TP + s_nr) / (SP + ST - TP + s_dr)`. `empty = \"complement\"`\n"
		"scores a (sample, class) whose target is empty on `1 - p`, `1 - t`\n"
		"instead. Takes `soft_label` as dice does.\n"
		"\n"
		"Agrees with MONAI's `DiceLoss(jaccard = True)` whose smoothing terms are\n"
		"twice ours.\n"
		"Invariant: for 0/1 targets, `soft_label = true` changes nothing.",
		"activation = \"sigmoid\", empty = \"complement\"", "mask01",
	},
	[SL_L_TVERSKY] = {
		"tversky", "Tversky", "segloss.tversky", SL_KIND_REGION, SL_R_TVERSKY, ALLACTS, NULL,
		SL_LF_SMOOTH_NR, OPTS(tversky_opts), NULL, 0, "(N, C), or (1, C) with batch",
		"Salehi et al. 2017",
		"Tversky loss: weighs false positives against false negatives, the lever for small targets.",
		"`L = 1 - (TP + s_nr) / (TP + α FP + β FN + s_dr)`, `alpha` (α) weighing\n"
		"false positives and `beta` (β) false negatives.\n"
		"\n"
		"Agrees with MONAI's `TverskyLoss`.\n"
		"Invariant: `alpha = beta = 0.5` with smooth `s` is dice with smooth `2 s`.",
		"activation = \"sigmoid\", alpha = 0.3, beta = 0.7", "mask01",
	},
	[SL_L_FOCAL_TVERSKY] = {
		"focal_tversky", "FocalTversky", "segloss.focal_tversky", SL_KIND_REGION, SL_R_FTVERSKY, ALLACTS,
		NULL, SL_LF_SMOOTH_NR, OPTS(ftversky_opts), NULL, 0, "(N, C), or (1, C) with batch",
		"Abraham and Khan 2019",
		"Focal Tversky loss: the Tversky loss raised to a power γ.",
		"`L = max(L_tversky, eps)^γ`; the floor `eps` keeps the gradient finite\n"
		"at a perfect (or empty-vs-empty) prediction.\n"
		"\n"
		"Invariant: `gamma = 1` gives tversky wherever `L_tversky >= eps`.",
		"activation = \"sigmoid\", gamma = 0.75", "mask01",
	},
	[SL_L_SENSSPEC] = {
		"sensitivity_specificity", "SensitivitySpecificity", "segloss.sensitivity_specificity",
		SL_KIND_REGION, SL_R_SENSSPEC, ALLACTS, NULL, 0, OPTS(sensspec_opts), NULL, 0,
		"(N, C), or (1, C) with batch",
		"Brosch et al. 2015",
		"Sensitivity-specificity loss: squared errors on foreground and background, each normalised "
		"by its size.",
		"`L = λ Σm(t - p)² t / (ST + s) + (1 - λ) Σm(t - p)² (1 - t) / (Σm(1 - t) + s)`\n"
		"with `s = s_dr` in both terms (`smooth_nr` is accepted and unused).\n"
		"\n"
		"Invariant: a perfect prediction scores 0.",
		"activation = \"sigmoid\", lambda = 0.05", "mask01",
	},
	[SL_L_GDICE] = {
		"generalized_dice", "GeneralizedDice", "segloss.generalized_dice", SL_KIND_REGION, SL_R_GDICE,
		ALLACTS, NULL, SL_LF_SMOOTH_NR, OPTS(gdice_opts), NULL, 0, "(N, 1), or (1, 1) with batch",
		"Sudre et al. 2017",
		"Generalized Dice loss: one value per sample over all classes, each weighted by its inverse "
		"volume.",
		"`L = 1 - (2 Σ_c w_c TP_c + s_nr) / (Σ_c w_c (SP_c + ST_c) + s_dr)` with\n"
		"`w_c = 1/ST_c²` (`w_type = \"square\"`), `1/ST_c` (\"simple\") or 1\n"
		"(\"uniform\"), constants (no gradient); a class with `ST_c = 0` takes the\n"
		"largest finite weight of its sample; a sample whose classes are all\n"
		"empty has `w = 0`. Takes no `weight` option.\n"
		"\n"
		"Agrees with MONAI's `GeneralizedDiceLoss`.\n"
		"Invariant: with one class and `w_type = \"uniform\"`, it is dice with the\n"
		"same smoothing on samples whose target is not empty.",
		"activation = \"softmax\"", "labels",
	},
	[SL_L_BCE_DICE] = {
		"bce_dice", "BCEDice", "segloss.bce_dice", SL_KIND_PRESET, -1, 0, NULL, 0, OPTS(bce_dice_opts),
		OPTS(bce_dice_parts), NULL,
		"the Keras habit 1e-3*binary_crossentropy - dice_coef",
		"BCE + Dice: `bce_weight · bce + dice_weight · dice`, in one statistics pass and one fused "
		"pass.",
		"Takes the options of both parts, which share the common ones. The\n"
		"common Keras `1e-3*binary_crossentropy - dice_coef` is\n"
		"`bce_weight = 1e-3` minus the constant 1.\n"
		"\n"
		"Invariant: equals `bce_weight * BCE{...} + dice_weight * Dice{...}`.",
		"activation = \"sigmoid\", bce_weight = 1e-3", "mask01",
	},
	[SL_L_DICE_FOCAL] = {
		"dice_focal", "DiceFocal", "segloss.dice_focal", SL_KIND_PRESET, -1, 0, NULL, 0,
		OPTS(dice_focal_opts), OPTS(dice_focal_parts), NULL,
		"MONAI's DiceFocalLoss; AnatomyNet (Zhu et al. 2019)",
		"Dice + Focal: `dice + lambda · focal`, in one statistics pass and one fused pass.",
		"The focal part has `alpha = false` unless given, and is the softmax\n"
		"focal with softmax. `lambda` lies in [0, 1]; a heavier focal part is\n"
		"written `segloss.Dice{...} + 2 * segloss.Focal{alpha = false, ...}`.\n"
		"\n"
		"Agrees with MONAI's `DiceFocalLoss` for sigmoid.\n"
		"Invariant: equals `Dice{...} + lambda * Focal{alpha = false, ...}`.",
		"activation = \"softmax\", lambda = 0.5", "labels",
	},
	[SL_L_LOVASZ_HINGE] = {
		"lovasz_hinge", "LovaszHinge", "segloss.lovasz_hinge", SL_KIND_GENERIC, -1, A(SL_ACT_NONE),
		"x holds real scores such as logits, taken as they are: pass activation = \"none\"",
		SL_LF_REAL_X | SL_LF_C1 | SL_LF_PIECEWISE, OPTS(lovasz_hinge_opts), NULL, 0,
		"(N, 1), or (1, 1) with per_image = false",
		"Berman, Triki and Blaschko 2018",
		"Lovász hinge: a convex surrogate of the Jaccard index for binary scores, per image.",
		"Over the valid pixels of an image (of the batch with `per_image = false`),\n"
		"`e_i = 1 - x_i (2 t_i - 1)` on real scores `x`, sorted decreasingly (ties by\n"
		"index); `L = Σ_r max(e_(r), 0) (J_r - J_{r-1})` with\n"
		"`J_r = 1 - (G - Σ_{k<=r} t_(k)) / (G + Σ_{k<=r} (1 - t_(k)))`, `G = Σ t`;\n"
		"the mean over the images that have a valid pixel. C = 1, activation\n"
		"`\"none\"` only. The gradient of the Lovász extension is piecewise\n"
		"constant: it jumps where two errors swap places.\n"
		"\n"
		"Agrees with Berman et al.'s `lovasz_hinge(per_image = True)` (which also\n"
		"counts an image without valid pixels, as 0).\n"
		"Invariant: scores with every margin `x (2 t - 1) >= 1` give exactly 0.",
		"activation = \"none\", per_image = true", "mask01", sl_lovasz_hinge_eval, sl_lovasz_hinge_shape,
	},
	[SL_L_LOVASZ_SOFTMAX] = {
		"lovasz_softmax", "LovaszSoftmax", "segloss.lovasz_softmax", SL_KIND_GENERIC, -1,
		A(SL_ACT_NONE) | A(SL_ACT_SOFTMAX),
		"binary scores: lovasz_hinge on the logits, or softmax over two channels", SL_LF_PIECEWISE,
		OPTS(lovasz_softmax_opts), NULL, 0, "(N, C), or (1, C) with per_image = false",
		"Berman, Triki and Blaschko 2018",
		"Lovász-softmax: the Lovász extension of the Jaccard loss of each class, on probabilities.",
		"Per class c over the valid pixels of the batch (of each image with\n"
		"`per_image = true`): `e_i = |t_ci - p_ci|` sorted decreasingly (ties by\n"
		"index), `L_c = Σ_r e_(r) (J_r - J_{r-1})` with J from `t_c` as in\n"
		"`lovasz_hinge`; the weighted mean over the classes present in the target\n"
		"(`classes = \"present\"`) or all of them (`\"all\"`), then over the\n"
		"images. Nothing present gives 0. The gradient is piecewise smooth and\n"
		"jumps where two errors of a class swap places.\n"
		"\n"
		"Agrees with Berman et al.'s `lovasz_softmax`.\n"
		"Invariant: a label map gives the same value and gradient as its one-hot.",
		"activation = \"softmax\", classes = \"present\"", "labels", sl_lovasz_softmax_eval,
		sl_lovasz_softmax_shape,
	},
};

const sl_lossopt *sl_loss_optentry(int id, int o)
{
	const sl_lossdesc *d = &sl_losses[id];
	for (int i = 0; i < d->nopts; i++)
		if (d->opts[i].id == o)
			return &d->opts[i];
	for (int i = 0; i < d->nparts; i++) {
		const sl_lossopt *e = sl_loss_optentry(d->parts[i].loss, o);
		if (e)
			return e;
	}
	return NULL;
}

unsigned sl_loss_known(int id)
{
	const sl_lossdesc *d = &sl_losses[id];
	unsigned k = SL_O_SHARED;
	for (int i = 0; i < d->nopts; i++)
		k |= 1u << d->opts[i].id;
	for (int i = 0; i < d->nparts; i++)
		k |= sl_loss_known(d->parts[i].loss);
	return k;
}

/* the first entry for o that sets a default, in the loss, then in its parts */
static const sl_lossopt *default_entry(int id, int o)
{
	const sl_lossdesc *d = &sl_losses[id];
	for (int i = 0; i < d->nopts; i++)
		if (d->opts[i].id == o && d->opts[i].def.kind != SL_DEF_NONE)
			return &d->opts[i];
	for (int i = 0; i < d->nparts; i++) {
		const sl_lossopt *e = default_entry(d->parts[i].loss, o);
		if (e)
			return e;
	}
	return NULL;
}

sl_default sl_loss_default(int id, int o, int act)
{
	const sl_lossopt *e = default_entry(id, o);
	if (!e)
		return sl_loss_options[o].def;
	if (act == SL_ACT_SOFTMAX && e->def_softmax.kind != SL_DEF_NONE)
		return e->def_softmax;
	return e->def;
}

int sl_loss_opttype(int id, int o)
{
	const sl_lossopt *e = sl_loss_optentry(id, o);
	return e && e->type >= 0 ? e->type : sl_loss_options[o].type;
}

int sl_loss_flag(int id, unsigned f)
{
	const sl_lossdesc *d = &sl_losses[id];
	if (d->flags & f)
		return 1;
	for (int i = 0; i < d->nparts; i++)
		if (sl_loss_flag(d->parts[i].loss, f))
			return 1;
	return 0;
}
