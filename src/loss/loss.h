/*
 * loss.h — one evaluation of a loss, or of a weighted sum of losses, on one
 * input. Lua-free: the bindings fill an sl_lossjob, sl_loss_run does the
 * passes.
 *
 * Every loss of docs/losses.md is a sum of parts of three kinds:
 *
 *   region parts (dice, iou, tversky, focal_tversky, sensitivity_specificity,
 *   generalized_dice, log_cosh_dice) are functions of additive per-(n, c) statistics. One
 *   statistics pass gathers them; region.c turns them into values and into
 *   per-(n, c) gradient coefficients, which add up across parts:
 *     dL/dp = m (K_T0 (1 - t) + K_T1 t + K_P (p - t) + K_SAD sgn(p - t)
 *                + 2 (p - t)(K_SE1 t + K_SE0 (1 - t)))
 *   Each coefficient is the gradient's value at a corner (t = 0 or 1, p = t),
 *   computed in double, so that the kernel interpolates between values
 *   instead of adding terms that cancel (b + (a - b) t loses a when b >> a).
 *
 *   pixel parts (bce, ce, focal) are sums of elementwise terms; their value
 *   and gradient come out of the one fused pass that also applies the
 *   region coefficients and the chain rule through the activation.
 *
 *   generic parts (sl_genpart) are computed by their own code — a loss
 *   that is neither a sum of statistics nor elementwise (a per-image sort,
 *   a distance map) — after the fused pass, and add their gradient into
 *   the one it wrote.
 *
 * So a job of region and pixel parts costs at most two passes over memory,
 * whatever its parts; each generic part costs what its own code costs.
 */
#ifndef SL_LOSS_H
#define SL_LOSS_H

#include <stddef.h>
#include <stdint.h>

enum { SL_ACT_NONE, SL_ACT_SIGMOID, SL_ACT_SOFTMAX };
enum { SL_RED_MEAN, SL_RED_SUM, SL_RED_NONE };

/* Per-(n, c) statistics, sums over the valid elements (mask m = 1). */
enum {
	SL_S_TP,  /* Σ p t */
	SL_S_SP,  /* Σ p */
	SL_S_ST,  /* Σ t */
	SL_S_M,   /* Σ m: the valid count M' */
	SL_S_SP2, /* Σ p² */
	SL_S_ST2, /* Σ t² */
	SL_S_SAD, /* Σ |p - t| */
	SL_S_SQT, /* Σ (t - p)² t */
	SL_S_SQN, /* Σ (t - p)² (1 - t) */
	SL_S_BA,  /* Σ t softplus(-x) = Σ -t ln p     (bce in the statistics pass) */
	SL_S_BB,  /* Σ (1 - t) softplus(x) = Σ -(1 - t) ln(1 - p) */
	SL_NSTAT
};
#define SL_NSTAT_BASIC 4  /* TP, SP, ST, M */
#define SL_NSTAT_FULL 9   /* ... up to SQN: the region statistics */
#define SL_NSTAT_PUBLIC 9 /* the columns of crit:stats() */

/* Gradient coefficients of the region parts, per (n, c) (see above). */
enum { SL_K_T0, SL_K_T1, SL_K_P, SL_K_SAD, SL_K_SE0, SL_K_SE1, SL_NK };
#define SL_NK_BASIC 3

enum { SL_PX_BCE, SL_PX_CE, SL_PX_FOCAL };
#define SL_MAXPIX 8
#define SL_MAXREG 8
/* Most channels a softmax may have (kernels keep a pixel's channels on the stack). */
#define SL_MAXC_SOFTMAX 1024

/* A pixel part as the kernels see it. */
typedef struct sl_pixk {
	int type;
	int c0;            /* first channel it sums over (include_background) */
	float scale;       /* gradient factor: part weight / (Σm for "mean", 1 for "sum") */
	float pos_weight;  /* bce: weight of the positive term t log p */
	float neg_weight;  /* bce: weight of the negative term (1 - t) log(1 - p); 1 but in
	                      combo (1 - beta) */
	float gamma;       /* focal */
	int alpha_on;      /* focal sigmoid/none: alpha_t on */
	float alpha;       /* focal sigmoid/none */
	const float *cw;   /* per-class factor (C): class weight, times alpha_c for
	                      softmax focal; NULL = 1 */
	const float *cwv;  /* the factor for values of reduction "none" (unweighted:
	                      alpha_c for softmax focal), NULL = 1 */
	/* label_smoothing: the part reads t' = ls_a t + ls_b (1 - t) and
	 * 1 - t' = ls_a1 t + ls_b1 (1 - t) instead of t (each a mix of its values
	 * at t = 1 and t = 0, computed without cancellation); ls = 0: t itself */
	int ls;
	double ls_a, ls_b, ls_a1, ls_b1;
} sl_pixk;

/* Where the kernels report the first bad input element they meet. */
enum {
	SL_BAD_NONE,
	SL_BAD_X_NONFINITE, /* NaN or ±Inf in x */
	SL_BAD_X_RANGE,     /* x outside [0, 1] with activation "none" */
	SL_BAD_T,           /* target outside [0, 1] (or not finite) */
	SL_BAD_LABEL,       /* label not an integer in 0 .. C-1 */
	SL_BAD_MASK,        /* mask value neither 0 nor 1 */
	SL_BAD_MASK_CHAN,   /* softmax with a mask that differs across channels */
	SL_BAD_GRAD,        /* the gradient at index (of x) overflows float32 */
	SL_BAD_VALUE,       /* a reduction "none" value at index (of the map) overflows */
	SL_BAD_COEF,        /* a region coefficient of (n, c) = index overflows float32 */
	SL_BAD_SCALE,       /* the gradient scale of pixel part index overflows float32 */
};

typedef struct sl_bad {
	int kind;
	size_t index; /* flat index into the tensor concerned */
	float value;
} sl_bad;

/* What the fused pass writes. */
enum {
	SL_OUT_GRAD,   /* d loss / d x into out */
	SL_OUT_VALUES, /* reduction "none" of one pixel part: m·ℓ into out */
	SL_OUT_NOTHING /* value only (grad = false) */
};

typedef struct sl_lossjob {
	/* input: x is (N, C, M); t is (N, C, M), or (N, 1, M) labels; m is
	 * NULL, (N, 1, M) or (N, C, M) */
	size_t N, C, M;
	const float *x, *t, *m;
	int labels, mask_full, act;
	int x_real; /* with activation "none": x holds real scores, no [0, 1] check */
	float eps; /* clamp of logs with activation "none" */

	/* what the passes do */
	int need_stats;   /* a statistics pass runs */
	int stats_full;   /* it gathers the SL_NSTAT_FULL statistics, else the basic 4 */
	int bce_stats;    /* it also gathers SL_S_BA and SL_S_BB (sigmoid): the bce parts'
	                     values come from the statistics, and the fused pass, reading
	                     p from out, adds only their gradients */
	int check_x, check_t; /* the statistics pass validates x, and t with m */
	int fused_check_x, fused_check_t; /* the fused pass validates them */
	int out_mode;     /* SL_OUT_*; with no pixel part and SL_OUT_NOTHING no fused pass runs */
	int dry;          /* the fused pass computes and checks the gradient but writes
	                     nothing (a trial run before writing into the caller's out) */
	int accumulate;   /* with SL_OUT_GRAD: the fused pass adds its gradient to what
	                     out holds (out = out + g, one float addition per element)
	                     instead of storing it, for parts whose gradient other code
	                     wrote there first; every sum is checked to be finite. Not
	                     with p_in_out. A SIMD task that fails (a bad input, a sum
	                     that overflows) cannot be redone over out: the driver must
	                     validate x and t before such a pass if the run is to fail
	                     without touching out, as for any write into the caller's
	                     out (and can run a dry trial first; dry works with it) */
	float *out;       /* gradient (x's shape) or value map; the fused pass checks
	                     that every value it writes is finite */
	int p_in_out;     /* the stats pass stores p into out, the fused pass reads it
	                     from there instead of recomputing it from x. For
	                     sigmoid the smaller of p and 1 - p is stored, the sign
	                     bit set when it is 1 - p (sl_sig_pack), so that neither
	                     loses precision */
	int z_in_out;     /* sigmoid, where p_in_out cannot serve (pixel parts that need
	                     logarithms): the stats pass stores z = e^-|x| into out, the
	                     fused pass reads it instead of computing the exponential
	                     again; the results are the same bits. The scalar kernels
	                     store it too (as the float of their double) but do not
	                     read it. Neither p_in_out nor z_in_out with accumulate */

	/* region coefficients, (N, C, nk) floats, nk = SL_NK if coef_full else
	 * SL_NK_BASIC; NULL if there is no region part */
	const float *coef;
	int coef_full;

	/* pixel parts */
	int npix;
	sl_pixk pix[SL_MAXPIX];
} sl_lossjob;

/* A region part: its options, and after sl_region_eval its results. */
enum { SL_R_DICE, SL_R_IOU, SL_R_TVERSKY, SL_R_FTVERSKY, SL_R_SENSSPEC, SL_R_GDICE, SL_R_LCDICE };
enum { SL_W_SQUARE, SL_W_SIMPLE, SL_W_UNIFORM };

typedef struct sl_regpart {
	int type;
	double weight;  /* its weight in the sum of parts */
	double factor;  /* the part of that weight set inside a preset (dice_weight), else 1 */
	int reduction;  /* SL_RED_* */
	int batch;      /* statistics summed over the batch: one row */
	int c0;         /* first included channel */
	double snr, sdr;
	int squared, complement, soft, empty_complement;
	double alpha, beta, gamma, eps, lambda;
	int w_type;
	const double *cw; /* class weights (C), NULL = 1 */
	const double *ext; /* with batch: (C, SL_NSTAT) statistics to use instead of
	                      the batch's own (e.g. all-reduced over workers) */
	const double *opts; /* every option of the part, resolved, indexed by the
	                       registry's SL_O_* (src/loss/registry.h): a new loss's
	                       own options reach its math here; NULL if not given */
	/* results */
	double value;   /* reduced value ("mean"/"sum"), 0 for "none" */
	double *L;      /* per (row, c): rows x C, or rows x 1 for gdice; 0 where
	                   nothing takes part; caller-allocated, or NULL */
} sl_regpart;

/* Rows of a region part's L: N, or 1 with batch. Columns: C, or 1 for
 * generalized_dice. */
size_t sl_region_rows(const sl_regpart *rp, size_t N);
size_t sl_region_cols(const sl_regpart *rp, size_t C);

/* Computes the part's L and value from the folded statistics st (N x C x
 * SL_NSTAT) and, if coef is not NULL, adds its gradient coefficients
 * (N x C x nk doubles, nk = SL_NK or SL_NK_BASIC) into coef. Ratios whose
 * numerator and denominator are both 0 (smooth = 0 with an empty target
 * and prediction) take their limit for equal smoothing terms going to 0,
 * with derivative 0. */
void sl_region_eval(sl_regpart *rp, size_t N, size_t C, const double *st, double *coef, int nk);

/* The sigmoid's p stored by the statistics pass: +p for p <= 1/2 (x < 0),
 * -(1 - p) otherwise; the sign bit tells which (also for -0). */
static inline float sl_sig_pack(float p, float q, int neg) { return neg ? p : -q; }

/* Spatial positions per task: a block of about SL_BLOCK elements over all
 * channels; fixed for a given C, whatever the thread count. */
size_t sl_loss_block(size_t C);

/* Kernels (one set per backend, in the sl_kern table) work on one task: the
 * spatial positions [s0, s1) of sample n, every channel.
 *   stats: adds the statistics of the task into st[c * SL_NSTAT + k]
 *          (zeroed by the caller), validates as the job says;
 *   fused: writes out for the task, adds each pixel part's Σ w_c m ℓ into
 *          vals[i]; validates as the job says;
 *   check: validates x (and t, m if check_t) only.
 * A kernel that meets a bad element records the first one in *bad and may
 * stop early (its other outputs are then meaningless). */
typedef void (*sl_stats_fn)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st,
                            sl_bad *bad);
typedef void (*sl_fused_fn)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                            sl_bad *bad);

/* A generic part: a loss computed by its own code rather than by the fused
 * passes (a per-image sort, a distance map, ...), so that any loss can join
 * a combination. It runs after the fused pass, on inputs that the passes
 * before it have validated, and
 *   - sets *value to the part's own reduced value (before its weight);
 *   - when g is not NULL, ADDS weight * d value / d x into g (x's shape,
 *     the chain rule through the activation included), checking that
 *     every element it leaves there is finite (else SL_BAD_GRAD);
 *   - returns SL_OK, SL_ERR_INPUT with *bad set, or SL_ERR_NOMEM, freeing
 *     whatever it allocated in every case.
 * Its result must not depend on the thread count (e->threads). The driver
 * hands it a scratch gradient when the run writes into the caller's out,
 * so a failing generic part never leaves that half-written.
 *
 * A part may promise more, and the driver then skips work for it:
 *   - `stores` (its descriptor's SL_LF_GEN_STORE): with `fresh` set (the
 *     driver sets it when no fused pass ran and the part is the first
 *     generic one: g holds garbage), it STORES weight * d value / d x into
 *     every element of g, 0 where it has none, instead of adding (the
 *     driver does not clear g first); it may also use g as scratch before
 *     it writes the gradient. Without `fresh` it adds, as every part does;
 *   - `atomic` (SL_LF_GEN_ATOMIC, with `stores`): with `fresh` set it
 *     writes nothing into g unless it returns SL_OK (it checks, or bounds,
 *     its gradient before it writes), so that a run whose only part it is
 *     writes straight into the caller's out, without a scratch and its
 *     copy. */
struct sl_exec;
typedef struct sl_genpart sl_genpart;
typedef int (*sl_gen_fn)(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp,
                         float *g, double *value, sl_bad *bad);
struct sl_genpart {
	sl_gen_fn eval;
	const double *opts; /* its option values, indexed by SL_O_* (registry.h) */
	int reduction;     /* SL_RED_MEAN or SL_RED_SUM */
	int c0;            /* first included channel (include_background) */
	const double *cw;  /* class weights (C), NULL = 1 */
	const void *ctx;   /* anything else eval needs, or NULL */
	double weight;     /* its weight in the sum of parts (factor included) */
	double factor;     /* the part of that weight set inside a preset, else 1 */
	int sdim;          /* spatial dimensions (1 to 3) and their sizes: j->M is */
	size_t shape[3];   /* their product; unused sizes are 1 */
	double spacing[3]; /* the element spacing per spatial axis (option spacing; 1) */
	float *vals;       /* reduction "none": where eval writes its values, in the
	                      shape of the descriptor's gen_shape; else NULL */
	int stores;        /* it honours `fresh` (above) */
	int atomic;        /* with `fresh`, it writes only on success (above) */
	int fresh;         /* set by the driver: g is uninitialised, store into all of it */
	double value;      /* result: eval's value */
};
#define SL_MAXGEN 8


/* One evaluation: the job, its parts, and the results. */
typedef struct sl_pixmeta {
	int reduction;   /* SL_RED_* */
	double weight;   /* weight of the part in the sum */
	double factor;   /* the part of that weight set inside a preset (bce_weight, lambda), else 1 */
	int pos_auto;    /* bce pos_weight = "auto" */
	double value;    /* result: the reduced value */
	double denom;    /* result: Σm of the mean (or 1) */
} sl_pixmeta;

/* The check of the generic path (segloss.core.debug_split): a pixel part
 * evaluated as a generic part, by a run of its own whose gradient is
 * added in; ctx points to one of these. Results agree with the fused pass
 * to float rounding. */
typedef struct sl_splitpix {
	sl_pixk px;
	sl_pixmeta pm;
} sl_splitpix;
int sl_loss_split_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                       double *value, sl_bad *bad);

typedef struct sl_lossrun {
	sl_lossjob job;  /* input pointers, act, eps, npix/pix (type, c0, gamma,
	                    alpha, cw, cwv, pos_weight); the driver sets the rest */
	int out_user;    /* out belongs to the caller: write nothing before every
	                    input is validated */
	int want_grad;   /* write d loss / d x into job.out */
	int stats_only;  /* run the statistics pass (and its checks), nothing else */
	int nreg;
	sl_regpart reg[SL_MAXREG];
	sl_pixmeta pm[SL_MAXPIX];
	int ngen;
	sl_genpart gen[SL_MAXGEN];
	double *stats_mem; /* N x C x SL_NSTAT doubles from the caller for stats, or
	                      NULL (then the run allocates them) */
	/* results */
	int gen_ran;     /* generic parts evaluated */
	double total;    /* Σ weights * values */
	sl_bad bad;      /* the first bad input, kind SL_BAD_NONE if none */
	double *stats;   /* N x C x SL_NSTAT: stats_mem, or owned by the run (sl_loss_free) */
	float *coef;     /* scratch of the run, freed before sl_loss_run returns */
	double *coefd;
} sl_lossrun;

/* A zeroed run on x (N, C, M) and t; labels: t is a (N, 1, M) label map. */
static inline void sl_loss_init(sl_lossrun *run, size_t N, size_t C, size_t M, const float *x,
                                const float *t, int labels, int act, float eps)
{
	*run = (sl_lossrun){0};
	run->job.N = N;
	run->job.C = C;
	run->job.M = M;
	run->job.x = x;
	run->job.t = t;
	run->job.labels = labels;
	run->job.act = act;
	run->job.eps = eps;
}

enum { SL_OK = 0, SL_ERR_INPUT = 1, SL_ERR_NOMEM = 2 };
/* Runs the passes; returns SL_OK, SL_ERR_INPUT (run->bad says what: a bad
 * input element, or a gradient or value that overflows float32) or
 * SL_ERR_NOMEM. With out_user, nothing is written into out unless the run
 * succeeds. When the caller gave stats_mem, nothing the run allocated
 * survives it; else call sl_loss_free afterwards in every case. */
int sl_loss_run(const struct sl_exec *e, sl_lossrun *run);
void sl_loss_free(sl_lossrun *run);

#endif
