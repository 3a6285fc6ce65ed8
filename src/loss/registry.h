/*
 * registry.h — the losses of segloss, one descriptor each: name, criterion
 * class, kind, the options it takes with their types, ranges and defaults,
 * the activations it allows, its paper and its reference text. Lua-free.
 *
 * Everything that lists the losses derives from this table: the binding's
 * option parser and checks (src/bind/loss.c), segloss.losses() and through
 * it segloss.<name>, the criterion classes, the reference docs
 * (tools/gen_docs.lua), the golden generator's case lists, the specs that
 * run every loss, and the benchmarks. docs/development.md has the checklist
 * for adding a loss.
 */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include "../opt.h"
#include "loss.h"

/* Every option a loss can take, in one table (sl_loss_options). The ones
 * before SL_O_POS_WEIGHT are shared by every loss. The order is that of
 * "did you mean" suggestions between equally close names. */
enum {
	SL_O_ACTIVATION, SL_O_REDUCTION, SL_O_MASK, SL_O_WEIGHT, SL_O_INCLUDE_BACKGROUND, SL_O_BATCH,
	SL_O_SMOOTH, SL_O_SMOOTH_NR, SL_O_SMOOTH_DR, SL_O_EPS, SL_O_IGNORE_INDEX, SL_O_GRAD, SL_O_OUT,
	SL_O_POS_WEIGHT, SL_O_ALPHA, SL_O_BETA, SL_O_GAMMA, SL_O_SQUARED, SL_O_COMPLEMENT,
	SL_O_SOFT_LABEL, SL_O_EMPTY, SL_O_LAMBDA, SL_O_W_TYPE, SL_O_BCE_WEIGHT, SL_O_DICE_WEIGHT,
	SL_O_PER_IMAGE, SL_O_CLASSES, SL_O_SPACING, SL_O_ITERATIONS, SL_O_DELTA, SL_O_K,
	SL_O_LABEL_SMOOTHING,
	SL_O_COUNT /* at most 32: the options a loss knows are the bits of an unsigned */
};
#define SL_O_SHARED ((1u << (SL_O_OUT + 1)) - 1u)

extern const sl_optdesc sl_loss_options[SL_O_COUNT];

/* The choices of the enum options, in the order of their SL_* values. */
extern const char *const sl_activations[]; /* SL_ACT_*: "none", "sigmoid", "softmax" */
extern const char *const sl_reductions[];  /* SL_RED_* */

/* What a loss is made of. */
enum {
	SL_KIND_PIXEL,  /* a sum of elementwise terms: a pixel part of the fused pass (SL_PX_*) */
	SL_KIND_REGION, /* a function of per-(n, c) statistics: a region part (SL_R_*) */
	SL_KIND_PRESET, /* a weighted sum of other losses of the registry */
	SL_KIND_GENERIC, /* value and gradient from its own code, added into the
	                    combination's gradient (src/loss/driver.c) */
	SL_KIND_COUNT
};
extern const char *const sl_kind_names[SL_KIND_COUNT]; /* "pixel", "region", ... */

/* A loss's own entry for an option: one it takes beyond the shared ones, or
 * a shared one whose default (or type) differs for this loss. */
typedef struct sl_lossopt {
	int id;                  /* SL_O_* */
	sl_default def;          /* its default here (SL_DEF_NONE: the option's own) */
	sl_default def_softmax;  /* with activation "softmax", if it differs */
	int type;                /* narrower type here (tversky's alpha: a number), or -1 */
	const char *refused;     /* the loss refuses the option: why (shown in the error) */
	const char *doc;         /* what the option means here, if the option's own line
	                            will not do */
} sl_lossopt;

/* One part of a preset: a loss of the registry and the option that weighs
 * it (-1: weight 1). */
typedef struct sl_presetpart {
	int loss;                /* SL_L_* */
	int weight_opt;          /* SL_O_*, or -1 */
	unsigned flags;          /* SL_PP_* */
} sl_presetpart;
/* Flags of a preset's part. */
#define SL_PP_COMPLEMENT 1u /* weighed by 1 - the option's value (combo's dice: 1 - alpha) */
#define SL_PP_BETA 2u       /* a bce part whose positive term is weighed by the option beta
                               and whose negative term by 1 - beta, instead of pos_weight and
                               1 (combo's weighted cross-entropy, exact for every beta in
                               [0, 1]: beta = 1 drops the negative term) */

/* Flags of a loss. */
#define SL_LF_SMOOTH_NR 1u /* divides (... + s_nr) by (... + s_dr): smooth_dr = 0
                              with smooth_nr > 0 divides by 0 */
#define SL_LF_REAL_X 2u    /* with activation "none", x holds real scores (the Lovász
                              hinge): no [0, 1] check, unless another part of the
                              combination needs one */
#define SL_LF_C1 4u        /* binary: the input must have one channel (C = 1) */
#define SL_LF_BETA01 8u    /* the option beta is a weight in [0, 1] (combo), not any
                              number >= 0 (tversky) */
#define SL_LF_PIXEL_MASK 16u /* with C >= 2 it sums over the channels of a pixel (as ce):
                                one mask value per pixel, and ignore_index takes whole
                                pixels */
#define SL_LF_PIECEWISE 32u /* the gradient jumps where the order of sorted terms changes
                              (the Lovász losses): finite differences hold only away
                              from those kinks, with steps below the gaps */
#define SL_LF_GEN_STORE 64u  /* a generic part that stores into a fresh gradient
                                (loss.h, sl_genpart.stores) */
#define SL_LF_GEN_ATOMIC 128u /* ... and then writes only on success (sl_genpart.atomic) */

/* The shape of a generic loss's reduction "none" value: fills shape[] from
 * x's shape (ndim dimensions, N, C, then the spatial sizes) and the part's
 * option values opts[SL_O_*]; returns the number of dimensions. */
typedef int (*sl_gen_shape_fn)(int ndim, const int64_t *xshape, const double *opts, int64_t *shape);

typedef struct sl_lossdesc {
	const char *name;        /* "dice": segloss.dice, the golden file, cases/<name>.py */
	const char *class_name;  /* "Dice": segloss.Dice */
	const char *fname;       /* "segloss.dice", for messages */
	int kind;                /* SL_KIND_* */
	int comp;                /* SL_PX_* (pixel) or SL_R_* (region); -1 otherwise */
	unsigned acts;           /* the activations it allows: bits 1 << SL_ACT_* */
	const char *act_hint;    /* said when the activation is refused ("use ce") */
	unsigned flags;          /* SL_LF_* */
	const sl_lossopt *opts;  /* its own options and overrides */
	int nopts;
	const sl_presetpart *parts; /* a preset's parts */
	int nparts;
	const char *none_shape;  /* the shape of its reduction "none" value; NULL: it has none */
	const char *paper;       /* short citation */
	const char *summary;     /* one line */
	const char *doc;         /* the formula and what it agrees with, for the reference */
	const char *usage;       /* options of an example call, Lua syntax */
	const char *usage_t;     /* what the example passes as the target ("mask01", "labels") */
	sl_gen_fn gen;           /* SL_KIND_GENERIC: its evaluation (loss.h), which reads its
	                            options as opts[SL_O_*] */
	sl_gen_shape_fn gen_shape; /* SL_KIND_GENERIC with a reduction "none": its shape
	                              (none_shape says it in words); NULL: none refused */
} sl_lossdesc;

/* The losses, in the order segloss.losses() lists them. */
enum {
	SL_L_BCE, SL_L_CE, SL_L_FOCAL, SL_L_DICE, SL_L_IOU, SL_L_TVERSKY, SL_L_FOCAL_TVERSKY,
	SL_L_SENSSPEC, SL_L_GDICE, SL_L_BCE_DICE, SL_L_DICE_FOCAL, SL_L_LOVASZ_HINGE, SL_L_LOVASZ_SOFTMAX,
	SL_L_BOUNDARY, SL_L_HAUSDORFF_DT, SL_L_CLDICE, SL_L_LOG_COSH_DICE, SL_L_UNIFIED_FOCAL, SL_L_TOPK_CE,
	SL_L_COMBO,
	SL_L_COUNT
};
extern const sl_lossdesc sl_losses[SL_L_COUNT];

/* The options loss `id` knows: the shared ones, its own, and its parts'
 * (a preset). A bit set over SL_O_*. */
unsigned sl_loss_known(int id);
/* The loss's own entry for option o, looked up in the loss, then in its
 * parts in order (a preset); NULL if it has none. */
const sl_lossopt *sl_loss_optentry(int id, int o);
/* The default of option o for loss id with activation act (SL_ACT_*). */
sl_default sl_loss_default(int id, int o, int act);
/* The descriptors of every option as loss id takes them (SL_O_COUNT
 * entries): sl_loss_options with the loss's narrower ranges (registry.c's
 * own_ranges: hausdorff_dt's alpha is an exponent, not a share in [0, 1]),
 * which the option walker checks. */
void sl_loss_optdescs(int id, sl_optdesc *d);
/* The type of option o for loss id. */
int sl_loss_opttype(int id, int o);
/* Does the loss, or one of its parts, have flag f? */
int sl_loss_flag(int id, unsigned f);

#endif
