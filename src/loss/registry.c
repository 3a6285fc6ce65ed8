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

static const sl_lossopt bce_opts[] = {OPT(SL_O_POS_WEIGHT, NODEF), OPT(SL_O_LABEL_SMOOTHING, NODEF)};
static const sl_lossopt ce_opts[] = {
	OPTD(SL_O_LABEL_SMOOTHING, NODEF, "targets become t (1 - eps) + eps / C (PyTorch's cross_entropy)"),
};
static const sl_lossopt focal_opts[] = {
	{SL_O_ALPHA, SL_DEFV(0.25), SL_DEFFALSE, -1, NULL,
	 "class balance: a number in [0, 1] or false with sigmoid/none; a list of one number in [0, 1] "
	 "per class, or false, with softmax"},
	OPTD(SL_O_GAMMA, SL_DEFV(2.0), "focusing exponent: (1 - p_t)^gamma"),
	OPT(SL_O_LABEL_SMOOTHING, NODEF),
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
	OPT(SL_O_SOFT_LABEL, NODEF),
	{SL_O_WEIGHT, NODEF, NODEF, -1, "generalized_dice weighs classes by w_type", NULL},
};
static const sl_lossopt bce_dice_opts[] = {OPT(SL_O_BCE_WEIGHT, NODEF), OPT(SL_O_DICE_WEIGHT, NODEF)};
static const sl_lossopt dice_focal_opts[] = {
	OPTD(SL_O_LAMBDA, SL_DEFV(1.0), "weight of the focal part"),
	{SL_O_ALPHA, SL_DEFFALSE, SL_DEFFALSE, -1, NULL, "the focal part's alpha, as focal's"},
};
static const sl_lossopt combo_opts[] = {
	{SL_O_ALPHA, SL_DEFV(0.5), NODEF, SL_OT_NUMBER, NULL,
	 "weight of the cross-entropy part, in [0, 1]; the dice part has 1 - alpha"},
	OPTD(SL_O_BETA, SL_DEFV(0.5), "weight of the positive term of the cross-entropy, in [0, 1] (false "
	     "negatives); the negative term has 1 - beta"),
	{SL_O_POS_WEIGHT, NODEF, NODEF, -1, "combo weighs the positive term by beta", NULL},
	{SL_O_LABEL_SMOOTHING, NODEF, NODEF, -1, "the contract defines combo on the targets as given", NULL},
};
static const sl_presetpart bce_dice_parts[] = {{SL_L_BCE, SL_O_BCE_WEIGHT, 0}, {SL_L_DICE, SL_O_DICE_WEIGHT, 0}};
static const sl_presetpart dice_focal_parts[] = {{SL_L_DICE, -1, 0}, {SL_L_FOCAL, SL_O_LAMBDA, 0}};
static const sl_presetpart combo_parts[] = {
	{SL_L_BCE, SL_O_ALPHA, SL_PP_BETA}, {SL_L_DICE, SL_O_ALPHA, SL_PP_COMPLEMENT},
};
static const sl_lossopt boundary_opts[] = {
	OPT(SL_O_SPACING, NODEF),
	OPT(SL_O_INCLUDE_BACKGROUND, SL_DEFV(0)),
};
static const sl_lossopt hausdorff_opts[] = {
	{SL_O_ALPHA, SL_DEFV(2.0), NODEF, SL_OT_NUMBER, NULL, "the exponent of the distances: d^alpha"},
	OPT(SL_O_SPACING, NODEF),
	OPT(SL_O_INCLUDE_BACKGROUND, SL_DEFV(0)),
};
static const sl_lossopt cldice_opts[] = {
	{SL_O_ALPHA, SL_DEFV(0.5), NODEF, SL_OT_NUMBER, NULL,
	 "weight of the skeleton term: (1 - alpha) dice + alpha clDice"},
	OPTD(SL_O_ITERATIONS, SL_DEFV(3), "steps of the soft skeleton (erosions beyond the first)"),
	SMOOTH(1.0),
	OPT(SL_O_INCLUDE_BACKGROUND, SL_DEFV(0)),
};
static const sl_lossopt unified_focal_opts[] = {
	{SL_O_WEIGHT, SL_DEFV(0.5), NODEF, SL_OT_NUMBER, NULL,
	 "lambda in [0, 1]: the weight of the focal part, 1 - lambda that of the focal Tversky part "
	 "(one number here, not class weights)"},
	OPTD(SL_O_DELTA, SL_DEFV(0.7), "weight of the rare classes (c >= 1) in the focal part, of false "
	                               "negatives in the Tversky index"),
	OPTD(SL_O_GAMMA, SL_DEFV(0.5), "focal exponent: (1 - p_0)^gamma on the background, "
	                               "(1 - TI)^(1 - gamma) on the rare classes"),
	SMOOTH(1e-7),
};
static const sl_lossopt topk_ce_opts[] = {OPT(SL_O_K, NODEF)};
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
		"balances a rare foreground. `label_smoothing = ε` reads\n"
		"`t (1 - ε) + ε/2` for t.\n"
		"\n"
		"Agrees with PyTorch's `binary_cross_entropy_with_logits` (with `pos_weight`).\n"
		"Invariant: `focal` with `gamma = 0, alpha = false` equals it.",
		"activation = \"sigmoid\", pos_weight = \"auto\"", "mask01",
	},
	[SL_L_CE] = {
		"ce", "CE", "segloss.ce", SL_KIND_PIXEL, SL_PX_CE, A(SL_ACT_NONE) | A(SL_ACT_SOFTMAX), "use bce",
		0, OPTS(ce_opts), NULL, 0, "(N, 1, S...)",
		"the cross-entropy (PyTorch's cross_entropy with probability targets)",
		"Cross-entropy over the classes, per pixel.",
		"`ℓ = -Σ_c w_c t_c log p_c`; the mean divides by the number of valid\n"
		"pixels, also with class weights and label maps. With\n"
		"`include_background = false` class 0 is left out of the sum, not out of\n"
		"the pixel count. Label maps `(N, 1, ...)` are never expanded in memory.\n"
		"`label_smoothing = ε` reads `t (1 - ε) + ε/C` for t (PyTorch's).\n"
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
		"empty has `w = 0`. Takes no `weight` option; takes `soft_label` as dice\n"
		"does.\n"
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
	[SL_L_LOG_COSH_DICE] = {
		"log_cosh_dice", "LogCoshDice", "segloss.log_cosh_dice", SL_KIND_REGION, SL_R_LCDICE, ALLACTS, NULL,
		SL_LF_SMOOTH_NR, OPTS(dice_opts), NULL, 0, "(N, C), or (1, C) with batch",
		"Jadon 2020",
		"Log-cosh Dice loss: log(cosh(L)) of each Dice term, smoother near a perfect prediction.",
		"`L = log(cosh(L_dice))` per sample and class, with `L_dice` dice's term\n"
		"and all of dice's options (`smooth` 1, `squared`, `complement`,\n"
		"`soft_label`); then reduced like dice. Its gradient is dice's times\n"
		"`tanh(L_dice)`. Jadon applies log cosh after the mean over the batch;\n"
		"the two agree for one sample and class (or `batch = true` with C = 1).\n"
		"\n"
		"Invariant: about `L_dice² / 2` for a small dice term (`L - L_dice²/2 =\n"
		"-L_dice⁴/12 + ...`).",
		"activation = \"sigmoid\"", "mask01",
	},
	[SL_L_COMBO] = {
		"combo", "Combo", "segloss.combo", SL_KIND_PRESET, -1, A(SL_ACT_NONE) | A(SL_ACT_SIGMOID),
		"combo's cross-entropy is binary: for classes, segloss.CE{...} + segloss.Dice{...}",
		SL_LF_BETA01, OPTS(combo_opts), OPTS(combo_parts), NULL,
		"Taghanaki et al. 2019",
		"Combo loss: `alpha` · weighted cross-entropy + (1 - `alpha`) · dice, in one statistics "
		"pass and one fused pass.",
		"`alpha · wce + (1 - alpha) · L_dice` with `wce` the mean over the\n"
		"elements of `-[beta t log p + (1 - beta)(1 - t) log(1 - p)]` (`beta`\n"
		"above 1/2 punishes false negatives) and `L_dice = 1 - dice coefficient`\n"
		"(dice's options: `smooth` 1, `squared`, ...). Binary and multi-label\n"
		"(sigmoid or none). The paper's `alpha · wce - (1 - alpha) · DSC` is\n"
		"this minus the constant `1 - alpha`.\n"
		"\n"
		"Invariant: `beta < 1` gives `alpha (1 - beta) · BCE{pos_weight =\n"
		"beta/(1 - beta)} + (1 - alpha) · Dice{}`.",
		"activation = \"sigmoid\", alpha = 0.5, beta = 0.7", "mask01",
	},
	[SL_L_BOUNDARY] = {
		"boundary", "Boundary", "segloss.boundary", SL_KIND_GENERIC, -1, ALLACTS, NULL, 0,
		OPTS(boundary_opts), NULL, 0, "of x's shape",
		"Kervadec et al. 2019 (MIDL), boundary loss",
		"Boundary loss: p weighted by the signed distance map of the target.",
		"`L = mean over valid (n, c, s) of p·φ`, `φ` the signed distance map of\n"
		"`t_c > 0.5` per (n, c): outside the target the distance to the nearest\n"
		"target element, inside `-(d - 1)` with `d` the distance to the nearest\n"
		"element outside it; 0 everywhere for an empty or full target. Distances\n"
		"from segloss's exact EDT in `spacing` units, over the whole image (the\n"
		"mask only leaves terms out); the maps are constants. Usually scheduled\n"
		"against a region loss: `S.linear(0.01, 1, n) * Boundary{} + GeneralizedDice{}`.\n"
		"\n"
		"Agrees with Kervadec et al.'s `one_hot2dist` + `SurfaceLoss`.\n"
		"Invariant: with activation \"none\" the value is linear in p.",
		"activation = \"softmax\"", "labels", sl_boundary_eval, sl_dist_shape,
	},
	[SL_L_HAUSDORFF_DT] = {
		"hausdorff_dt", "HausdorffDT", "segloss.hausdorff_dt", SL_KIND_GENERIC, -1, ALLACTS, NULL, 0,
		OPTS(hausdorff_opts), NULL, 0, "of x's shape",
		"Karimi & Salcudean 2019 (IEEE TMI), the distance-transform form",
		"Hausdorff distance loss: squared errors weighted by the distance maps of prediction and target.",
		"`L = mean over valid (n, c, s) of (p - t)² (d_p^α + d_t^α)`, `d_q` the\n"
		"distance from each element of the mask `q > 0.5` to the nearest element\n"
		"on its other side (0 everywhere for an empty or full mask), per (n, c),\n"
		"by segloss's exact EDT in `spacing` units; the maps are constants.\n"
		"\n"
		"Agrees with MONAI's `HausdorffDTLoss` for C = 1 (MONAI takes one\n"
		"transform over all the channels of a sample together).\n"
		"Invariant: with `alpha = 0` it is twice the mean squared error.",
		"activation = \"sigmoid\"", "mask01", sl_hausdorff_dt_eval, sl_dist_shape,
	},
	[SL_L_CLDICE] = {
		"cldice", "ClDice", "segloss.cldice", SL_KIND_GENERIC, -1, ALLACTS, NULL,
		SL_LF_SMOOTH_NR, OPTS(cldice_opts), NULL, 0, "(N, C), or (1, C) with batch",
		"Shit et al. 2021 (clDice, CVPR)",
		"clDice: Dice combined with the overlap of soft skeletons, for thin tubular structures.",
		"Per (sample, class): `L = (1 - α) dice + α (1 - 2 Tprec Tsens / (Tprec + Tsens))`\n"
		"with `Tprec = (Σm S(p) t + s_nr) / (Σm S(p) + s_dr)`,\n"
		"`Tsens = (Σm S(t) p + s_nr) / (Σm S(t) + s_dr)` and dice as `dice`'s. `S` is\n"
		"the soft skeleton of `iterations` steps of min/max pooling (erosion over the\n"
		"cross, dilation over the full 3x3(x3) window), computed on the whole image;\n"
		"masked elements take no part in the sums and get gradient 0. The gradient\n"
		"flows through `S(p)` (min/max to the first extremal element in index\n"
		"order); `S(t)` is a constant. 1-D, 2-D and 3-D.\n"
		"\n"
		"Agrees with MONAI's `SoftDiceclDiceLoss` with `batch = true` and\n"
		"`include_background = false` for C = 2 (MONAI sums over the batch and\n"
		"over all foreground channels together).\n"
		"Invariant: `alpha = 0` equals `dice` with `include_background = false`.",
		"activation = \"sigmoid\", iterations = 3, alpha = 0.5", "mask01",
		sl_cldice_eval, sl_cldice_shape,
	},
	[SL_L_UNIFIED_FOCAL] = {
		"unified_focal", "UnifiedFocal", "segloss.unified_focal", SL_KIND_GENERIC, -1, ALLACTS, NULL,
		SL_LF_PIXEL_MASK | SL_LF_GEN_STORE, OPTS(unified_focal_opts), NULL, 0, NULL,
		"Yeung et al. 2022 (the asymmetric unified focal loss)",
		"Asymmetric unified focal loss: a focal cross-entropy and a focal Tversky part, both sparing "
		"the rare classes.",
		"`L = λ mF + (1 - λ) mFT` with class 0 the background and the other\n"
		"classes rare (C = 1: the two classes `1 - p`, `p`). `mF` = the mean over\n"
		"valid pixels of `(1 - δ)(1 - p_0)^γ (-t_0 log p_0) + δ Σ_{c≥1} (-t_c log p_c)`;\n"
		"`mFT` = the mean over (sample, class) of `1 - TI_0` for the background and\n"
		"`max(1 - TI_c, eps)^(1 - γ)` for the rare classes, with the Tversky index\n"
		"`TI = (TP + s)/(TP + δ FN + (1 - δ) FP + s)`. `weight` is λ, one number.\n"
		"No reduction \"none\": the two means run over different things.\n"
		"\n"
		"Agrees with MONAI's `AsymmetricUnifiedFocalLoss` in its focal part.\n"
		"Invariant: `weight = 1` is the asymmetric focal part alone, `weight = 0`\n"
		"the asymmetric focal Tversky part alone.",
		"activation = \"softmax\", weight = 0.5, delta = 0.6, gamma = 0.5", "labels",
		sl_unified_focal_eval, NULL,
	},
	[SL_L_TOPK_CE] = {
		"topk_ce", "TopKCE", "segloss.topk_ce", SL_KIND_GENERIC, -1, ALLACTS, NULL,
		SL_LF_PIXEL_MASK | SL_LF_GEN_STORE | SL_LF_GEN_ATOMIC, OPTS(topk_ce_opts), NULL, 0,
		"(N, 1, S...) for ce, of x's shape for bce",
		"nnU-Net's TopKLoss (Isensee et al. 2021)",
		"Top-k cross-entropy: the mean of the hardest k % of the cross-entropy terms.",
		"The mean of the largest `max(1, ⌊K k / 100⌋)` terms of ce (softmax, or\n"
		"\"none\" with C ≥ 2: one term per pixel) or bce (sigmoid, or \"none\" with\n"
		"C = 1: one per element), K the number of valid terms in the whole batch;\n"
		"equal terms are taken in index order (the lower flat index first). Class\n"
		"weights multiply the terms before they are ranked. The gradient is the\n"
		"terms' own on the selected ones, 0 elsewhere. The selection is a radix\n"
		"select on the terms' float bits: O(n), no sort.\n"
		"\n"
		"Agrees with nnU-Net's `TopKLoss` (which keeps `int(K k / 100)` terms, 0 for\n"
		"tiny inputs, and has no mask).\n"
		"Invariant: `k = 100` is ce (bce) with reduction \"mean\".",
		"activation = \"softmax\", k = 10", "labels",
		sl_topk_ce_eval, sl_topk_ce_shape,
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

/* Options whose range differs for a loss (a number; its entry narrows
 * the type to SL_OT_NUMBER). */
static const struct {
	int loss, opt;
	double lo, hi;
} own_ranges[] = {
	{SL_L_HAUSDORFF_DT, SL_O_ALPHA, 0.0, 10.0},
};

void sl_loss_optdescs(int id, sl_optdesc *d)
{
	for (int o = 0; o < SL_O_COUNT; o++) {
		d[o] = sl_loss_options[o];
		if (d[o].type == SL_OT_CHANNELS && sl_loss_opttype(id, o) == SL_OT_NUMBER) {
			/* one number in [0, 1] here (unified_focal's weight λ), not a list */
			d[o].type = SL_OT_NUMBER;
			d[o].lo = 0.0;
			d[o].hi = 1.0;
			d[o].lo_open = d[o].hi_open = 0;
			d[o].expect = NULL;
			d[o].def = sl_loss_default(id, o, SL_ACT_NONE);
		}
	}
	for (int i = 0; i < N(own_ranges); i++)
		if (own_ranges[i].loss == id) {
			sl_optdesc *od = &d[own_ranges[i].opt];
			od->type = SL_OT_NUMBER;
			od->lo = own_ranges[i].lo;
			od->hi = own_ranges[i].hi;
			od->expect = NULL;
		}
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
