/*
 * loss.c — the functional losses: segloss.bce, ce, focal, dice, iou,
 * tversky, focal_tversky, sensitivity_specificity, generalized_dice,
 * bce_dice, dice_focal.
 *
 *   local loss, grad = segloss.dice(x, t, opts)
 *
 * The binding parses and checks every argument and option (docs/losses.md's list
 * of errors), builds an sl_lossrun and hands it to the driver. Nothing is
 * written to opts.out unless every check, including the data checks of the
 * driver, has passed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loss/loss.h"
#include "bind.h"

/* ---- the losses and the options they know --------------------------- */

enum {
	O_ACTIVATION, O_REDUCTION, O_MASK, O_WEIGHT, O_INCLUDE_BACKGROUND, O_BATCH, O_SMOOTH,
	O_SMOOTH_NR, O_SMOOTH_DR, O_EPS, O_GRAD, O_OUT, /* shared by all */
	O_POS_WEIGHT, O_ALPHA, O_BETA, O_GAMMA, O_SQUARED, O_COMPLEMENT, O_SOFT_LABEL, O_EMPTY,
	O_LAMBDA, O_W_TYPE, O_BCE_WEIGHT, O_DICE_WEIGHT, O_COUNT
};

static const char *const optnames[O_COUNT] = {
	"activation", "reduction", "mask", "weight", "include_background", "batch", "smooth",
	"smooth_nr", "smooth_dr", "eps", "grad", "out", "pos_weight", "alpha", "beta", "gamma",
	"squared", "complement", "soft_label", "empty", "lambda", "w_type", "bce_weight",
	"dice_weight",
};

#define SHARED ((1u << (O_OUT + 1)) - 1u)
#define B(o) (1u << (o))

enum { L_BCE, L_CE, L_FOCAL, L_DICE, L_IOU, L_TVERSKY, L_FTVERSKY, L_SENSSPEC, L_GDICE,
       L_BCE_DICE, L_DICE_FOCAL, L_COUNT };

typedef struct lossdef {
	const char *name;  /* Lua name */
	const char *fname; /* for messages */
	unsigned opts;     /* the options it knows */
	double smooth;     /* default smooth */
} lossdef;

#define DICE_OPTS (B(O_SQUARED) | B(O_COMPLEMENT) | B(O_SOFT_LABEL))
static const lossdef defs[L_COUNT] = {
	{"bce", "segloss.bce", SHARED | B(O_POS_WEIGHT), 0},
	{"ce", "segloss.ce", SHARED, 0},
	{"focal", "segloss.focal", SHARED | B(O_ALPHA) | B(O_GAMMA), 0},
	{"dice", "segloss.dice", SHARED | DICE_OPTS, 1.0},
	{"iou", "segloss.iou", SHARED | B(O_SOFT_LABEL) | B(O_EMPTY), 1e-6},
	{"tversky", "segloss.tversky", SHARED | B(O_ALPHA) | B(O_BETA) | B(O_SOFT_LABEL), 1e-5},
	{"focal_tversky", "segloss.focal_tversky",
	 SHARED | B(O_ALPHA) | B(O_BETA) | B(O_GAMMA) | B(O_SOFT_LABEL), 1e-5},
	{"sensitivity_specificity", "segloss.sensitivity_specificity", SHARED | B(O_LAMBDA), 1e-5},
	{"generalized_dice", "segloss.generalized_dice", SHARED | B(O_W_TYPE), 1e-5},
	{"bce_dice", "segloss.bce_dice",
	 SHARED | DICE_OPTS | B(O_POS_WEIGHT) | B(O_BCE_WEIGHT) | B(O_DICE_WEIGHT), 1.0},
	{"dice_focal", "segloss.dice_focal",
	 SHARED | DICE_OPTS | B(O_ALPHA) | B(O_GAMMA) | B(O_LAMBDA), 1.0},
};

/* ---- parsed options ------------------------------------------------- */

typedef struct lopts {
	int act, red, incl_bg, batch, grad;
	int has[O_COUNT];
	sl_tensor *mask, *out;
	int weight_idx;    /* stack index of the weight table or tensor, 0 if none */
	int alpha_idx;     /* stack index of an alpha list, 0 if none */
	double smooth, snr, sdr, eps;
	double pos_weight;
	int pos_auto;
	int alpha_off;     /* alpha = false */
	double alpha, beta, gamma, lambda;
	int squared, complement, soft, empty_complement, w_type;
	double bce_weight, dice_weight;
} lopts;

static const char *const activations[] = {"none", "sigmoid", "softmax", NULL};
static const char *const reductions[] = {"mean", "sum", "none", NULL};
static const char *const wtypes[] = {"square", "simple", "uniform", NULL};
static const char *const empties[] = {"none", "complement", NULL};

/* The largest value of a number that the kernels hold as a float32. */
#define FMAX ((double)FLT_MAX)

static sl_tensor *opt_tensor(lua_State *L, const char *fn, const char *opt, int idx)
{
	sl_tensor *t = sl_totensor(L, idx);
	if (!t)
		sl_opterror(L, fn, opt, idx, "a segloss.Tensor");
	return t;
}

/* The closest option name to s, for "did you mean" (edit distance <= 2). */
static const char *suggest(const char *s, unsigned known)
{
	const char *best = NULL;
	size_t bestd = 3, n = strlen(s);
	if (n > 40)
		return NULL;
	for (int o = 0; o < O_COUNT; o++) {
		if (!(known & B(o)))
			continue;
		const char *t = optnames[o];
		size_t m = strlen(t), prev[48], cur[48];
		if (m > 40)
			continue;
		for (size_t j = 0; j <= m; j++)
			prev[j] = j;
		for (size_t i = 1; i <= n; i++) {
			cur[0] = i;
			for (size_t j = 1; j <= m; j++) {
				size_t sub = prev[j - 1] + (s[i - 1] != t[j - 1]);
				size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
				cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
			}
			memcpy(prev, cur, (m + 1) * sizeof prev[0]);
		}
		if (prev[m] < bestd) {
			bestd = prev[m];
			best = t;
		}
	}
	return best;
}

/* Walks the opts table at index oi; every key must be an option this loss
 * knows. Leaves nothing on the stack but pushes values it keeps an index to
 * (weight, alpha list), which stay until the function returns. */
static void parse_opts(lua_State *L, const lossdef *d, int oi, lopts *o)
{
	const char *fn = d->fname;
	memset(o, 0, sizeof *o);
	o->incl_bg = 1;
	o->grad = 1;
	if (lua_isnoneornil(L, oi))
		return;
	if (lua_type(L, oi) != LUA_TTABLE) {
		char b[96];
		sl_error(L, fn, "opts must be a table, got %s", sl_describe(L, oi, b, sizeof b));
	}
	lua_pushnil(L);
	while (lua_next(L, oi)) {
		int vi = lua_gettop(L);
		if (lua_type(L, -2) != LUA_TSTRING) {
			char b[96];
			sl_error(L, fn, "option names must be strings, got %s", sl_describe(L, -2, b, sizeof b));
		}
		const char *key = lua_tostring(L, -2);
		int o_id = -1;
		for (int i = 0; i < O_COUNT; i++)
			if (sl_isstring(L, -2, optnames[i]))
				o_id = i;
		if (o_id < 0 || !(d->opts & B(o_id))) {
			char q[4 * 40 + 8];
			const char *s = suggest(key, d->opts);
			sl_quote(L, -2, q, sizeof q);
			if (s)
				sl_error(L, fn, "unknown option %s (did you mean \"%s\"?)", q, s);
			sl_error(L, fn, "unknown option %s", q);
		}
		o->has[o_id] = 1;
		switch (o_id) {
		case O_ACTIVATION:
			o->act = sl_optenum(L, fn, key, vi, activations);
			break;
		case O_REDUCTION:
			o->red = sl_optenum(L, fn, key, vi, reductions);
			break;
		case O_MASK:
			o->mask = opt_tensor(L, fn, key, vi);
			break;
		case O_WEIGHT:
			if (lua_type(L, vi) != LUA_TTABLE && !sl_totensor(L, vi))
				sl_opterror(L, fn, key, vi, "a list of one number >= 0 per channel");
			o->weight_idx = 1; /* pushed below, once the table walk is over */
			break;
		case O_INCLUDE_BACKGROUND:
			o->incl_bg = sl_optbool(L, fn, key, vi);
			break;
		case O_BATCH:
			o->batch = sl_optbool(L, fn, key, vi);
			break;
		case O_SMOOTH:
			o->smooth = sl_optnum(L, fn, key, vi, 0.0, 0, INFINITY, 0);
			break;
		case O_SMOOTH_NR:
			o->snr = sl_optnum(L, fn, key, vi, 0.0, 0, INFINITY, 0);
			break;
		case O_SMOOTH_DR:
			o->sdr = sl_optnum(L, fn, key, vi, 0.0, 0, INFINITY, 0);
			break;
		case O_EPS:
			/* in (0, 1) and a normal float32: the kernels clamp logs at
			 * (float)eps, whose reciprocal must be finite */
			o->eps = lua_type(L, vi) == LUA_TNUMBER ? lua_tonumber(L, vi) : (double)NAN;
			if (!(o->eps >= (double)FLT_MIN && o->eps < 1.0)) {
				char exp[96];
				snprintf(exp, sizeof exp, "a number in (0, 1) no smaller than %.8g (float32)",
				         (double)FLT_MIN);
				sl_opterror(L, fn, key, vi, exp);
			}
			break;
		case O_GRAD:
			o->grad = sl_optbool(L, fn, key, vi);
			break;
		case O_OUT:
			o->out = opt_tensor(L, fn, key, vi);
			break;
		case O_POS_WEIGHT:
			if (sl_isstring(L, vi, "auto"))
				o->pos_auto = 1;
			else if (lua_type(L, vi) == LUA_TNUMBER)
				o->pos_weight = sl_optnum(L, fn, key, vi, 0.0, 0, FMAX, 0);
			else
				sl_opterror(L, fn, key, vi, "a number >= 0 or \"auto\"");
			break;
		case O_ALPHA:
			if (lua_type(L, vi) == LUA_TBOOLEAN && !lua_toboolean(L, vi))
				o->alpha_off = 1;
			else if (lua_type(L, vi) == LUA_TTABLE)
				o->alpha_idx = 1; /* a list: checked against C later */
			else
				o->alpha = sl_optnum(L, fn, key, vi, 0.0, 0, 1.0, 0);
			break;
		case O_BETA:
			o->beta = sl_optnum(L, fn, key, vi, 0.0, 0, INFINITY, 0);
			break;
		case O_GAMMA:
			o->gamma = sl_optnum(L, fn, key, vi, 0.0, 0, FMAX, 0);
			break;
		case O_SQUARED:
			o->squared = sl_optbool(L, fn, key, vi);
			break;
		case O_COMPLEMENT:
			o->complement = sl_optbool(L, fn, key, vi);
			break;
		case O_SOFT_LABEL:
			o->soft = sl_optbool(L, fn, key, vi);
			break;
		case O_EMPTY:
			o->empty_complement = sl_optenum(L, fn, key, vi, empties);
			break;
		case O_LAMBDA:
			/* docs/losses.md: lambda in [0, 1] for every loss that takes it
			 * (for dice_focal a larger focal weight is written as
			 * Dice{} + k*Focal{alpha = false}) */
			o->lambda = sl_optnum(L, fn, key, vi, 0.0, 0, 1.0, 0);
			break;
		case O_W_TYPE:
			o->w_type = sl_optenum(L, fn, key, vi, wtypes);
			break;
		case O_BCE_WEIGHT:
			o->bce_weight = sl_optnum(L, fn, key, vi, 0.0, 0, FMAX, 0);
			break;
		case O_DICE_WEIGHT:
			o->dice_weight = sl_optnum(L, fn, key, vi, 0.0, 0, FMAX, 0);
			break;
		default:
			break;
		}
		lua_pop(L, 1);
	}
	/* keep the weight and alpha values at fixed stack slots */
	if (o->weight_idx) {
		lua_getfield(L, oi, "weight");
		o->weight_idx = lua_gettop(L);
	}
	if (o->alpha_idx) {
		lua_getfield(L, oi, "alpha");
		o->alpha_idx = lua_gettop(L);
	}
}

/* Reads a list (table or tensor) of C numbers at idx into dst; each in
 * [lo, hi]. */
static void read_list(lua_State *L, const char *fn, const char *opt, int idx, size_t C, double lo,
                      double hi, double *dst)
{
	sl_tensor *t = sl_totensor(L, idx);
	size_t n = t ? t->numel : (size_t)lua_rawlen(L, idx);
	if (n != C)
		sl_error(L, fn, "option %s must have one entry per channel (%zu), got %zu", opt, C, n);
	for (size_t i = 0; i < C; i++) {
		double v;
		if (t) {
			v = (double)t->data[i];
		} else {
			lua_rawgeti(L, idx, (lua_Integer)i + 1);
			v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : (double)NAN;
			lua_pop(L, 1);
		}
		if (!(isfinite(v) && v >= lo && v <= hi)) {
			char b[64];
			if (hi == FMAX)
				sl_error(L, fn, "option %s[%zu] must be a number >= %g within the float32 range "
				         "(<= %.8g), got %s", opt, i + 1, lo, FMAX, sl_numstr(v, b, sizeof b));
			sl_error(L, fn, "option %s[%zu] must be a number in [%g, %g], got %s", opt, i + 1, lo, hi,
			         sl_numstr(v, b, sizeof b));
		}
		dst[i] = v;
	}
}

/* ---- shapes --------------------------------------------------------- */

/* (N, 1, S...) of x */
static int is_pixel_shape(const sl_tensor *x, const sl_tensor *t)
{
	if (t->ndim != x->ndim || t->shape[0] != x->shape[0] || t->shape[1] != 1)
		return 0;
	for (int i = 2; i < x->ndim; i++)
		if (t->shape[i] != x->shape[i])
			return 0;
	return 1;
}

static int overlaps(const sl_tensor *a, const sl_tensor *b)
{
	const float *a0 = a->data, *a1 = a->data + a->numel;
	const float *b0 = b->data, *b1 = b->data + b->numel;
	return a0 < b1 && b0 < a1;
}

/* ---- the error of a failed run ---------------------------------------- */

_Noreturn void sl_loss_raise(lua_State *L, const char *fn, struct sl_lossrun *run, int rc,
                             const sl_tensor *x, const sl_tensor *t, const sl_tensor *m, size_t C)
{
	const sl_bad b = run->bad, *bad = &b;
	int plev = run->job.act == SL_ACT_SOFTMAX || (run->job.npix > 0 && run->job.pix[0].type == SL_PX_CE);
	sl_loss_free(run);
	if (rc == SL_ERR_NOMEM)
		sl_error(L, fn, "out of memory");
	char at[160], v[64];
	sl_numstr((double)bad->value, v, sizeof v);
	switch (bad->kind) {
	case SL_BAD_X_NONFINITE:
		sl_error(L, fn, "input has %s at %s", v, sl_coordstr(x->ndim, x->shape, bad->index, at, sizeof at));
	case SL_BAD_X_RANGE:
		sl_error(L, fn,
		         "input value %s at %s is outside [0, 1] with activation \"none\" (logits? pass "
		         "activation = \"sigmoid\" or \"softmax\")",
		         v, sl_coordstr(x->ndim, x->shape, bad->index, at, sizeof at));
	case SL_BAD_T:
		sl_error(L, fn, "target value %s at %s is outside [0, 1]", v,
		         sl_coordstr(t->ndim, t->shape, bad->index, at, sizeof at));
	case SL_BAD_LABEL:
		sl_error(L, fn, "target label %s at %s is not an integer in 0..%zu", v,
		         sl_coordstr(t->ndim, t->shape, bad->index, at, sizeof at), C - 1);
	case SL_BAD_MASK:
		sl_error(L, fn, "mask value %s at %s is not 0 or 1", v,
		         sl_coordstr(m->ndim, m->shape, bad->index, at, sizeof at));
	case SL_BAD_MASK_CHAN:
		sl_error(L, fn, "mask value %s at %s differs from channel 1 (with softmax, ce or focal over "
		         "classes the mask must be the same for every channel)", v,
		         sl_coordstr(m->ndim, m->shape, bad->index, at, sizeof at));
	case SL_BAD_GRAD:
		sl_error(L, fn, "the gradient at %s overflows float32 (%s): a very large weight or "
		         "pos_weight, or a tiny eps?", sl_coordstr(x->ndim, x->shape, bad->index, at, sizeof at), v);
	case SL_BAD_VALUE: {
		int64_t shape[SL_MAXDIM];
		memcpy(shape, x->shape, sizeof shape);
		if (plev)
			shape[1] = 1;
		sl_error(L, fn, "the value at %s overflows float32 (%s): a very large weight or pos_weight?",
		         sl_coordstr(x->ndim, shape, bad->index, at, sizeof at), v);
	}
	case SL_BAD_COEF:
		sl_error(L, fn, "the gradient of sample %zu, class %zu overflows float32 (a region coefficient "
		         "of %s): a very large part weight, or smooth = 0 with a nearly empty prediction?",
		         bad->index / C + 1, bad->index % C, v);
	default:
		sl_error(L, fn, "the gradient scale of a pixel part (its weight over its element count) is "
		         "%s, beyond float32: a smaller weight?", v);
	}
}

/* ---- buffers owned by Lua -------------------------------------------- */

#define BUFFER_MT "segloss.buffer"

/* A buffer of n doubles that only C writes: the one at idx if it is one of
 * ours and large enough, else a new one (pushed; *fresh set). */
static double *private_buffer(lua_State *L, const char *fn, int idx, size_t n, int *fresh)
{
	*fresh = 0;
	if (idx && luaL_testudata(L, idx, BUFFER_MT) && lua_rawlen(L, idx) >= n * sizeof(double))
		return lua_touserdata(L, idx);
	double *b = sl_alloc(L, fn, n * sizeof(double), 0);
	if (luaL_newmetatable(L, BUFFER_MT)) {
		lua_pushliteral(L, "segloss.buffer");
		lua_setfield(L, -2, "__name");
	}
	lua_setmetatable(L, -2);
	*fresh = 1;
	return b;
}

/* ---- evaluation of one or more parts ----------------------------------- */

#define MAXPARTS SL_MAXREG

/* Call-level arguments: the functional form takes them from opts, a
 * criterion passes them positionally (so that its steps allocate nothing). */
typedef struct callargs {
	sl_tensor *x, *t, *mask, *out;
	int out_idx;               /* stack index of out */
	int want_grad;
	int scratch_out;           /* out is the caller's own buffer (criteria):
	                              it may be written before every check is done */
	const sl_tensor *ext_stats; /* (C, SL_NSTAT) statistics for batch parts */
	int last_idx;              /* a table to fill with per-part values, or 0 */
	int stats_only;            /* return the batch-summed (C, SL_NSTAT) statistics */
} callargs;

/* Per-class arrays of one part, on the C stack for up to LOCALC classes. */
#define LOCALC 64
typedef struct partbuf {
	double cwd[LOCALC], alist[LOCALC];
	float cwf[LOCALC], cwv[LOCALC];
} partbuf;

/* s_nr and s_dr of a part: smooth_nr / smooth_dr where given, else smooth,
 * else the loss's default (R4 of docs/losses.md) */
static void smoothing(const lossdef *d, const lopts *o, double *snr, double *sdr)
{
	double smooth = o->has[O_SMOOTH] ? o->smooth : d->smooth;
	*snr = o->has[O_SMOOTH_NR] ? o->snr : smooth;
	*sdr = o->has[O_SMOOTH_DR] ? o->sdr : smooth;
}

/* An empty target and prediction would give s_nr / 0 (sensitivity_
 * specificity has no s_nr). */
static void check_smoothing(lua_State *L, const char *fn, int id, const lopts *o)
{
	double snr, sdr;
	smoothing(&defs[id], o, &snr, &sdr);
	if (sdr == 0.0 && snr > 0.0 && id != L_BCE && id != L_CE && id != L_FOCAL && id != L_SENSSPEC)
		sl_error(L, fn, "smooth_dr = 0 with smooth_nr = %g divides by 0 on an empty target and "
		         "prediction (give smooth_dr > 0, or smooth_nr = 0)", snr);
}

/* The checks of one part against the data: the combinations of
 * docs/losses.md that are errors. */
static void check_part(lua_State *L, const char *fn, int id, const lopts *o, size_t C, int act,
                       int nparts)
{
	check_smoothing(L, fn, id, o);
	if ((id == L_BCE || id == L_BCE_DICE) && act == SL_ACT_SOFTMAX)
		sl_error(L, fn, "bce needs activation \"sigmoid\" or \"none\", got \"softmax\" (use ce)");
	if (id == L_CE && act == SL_ACT_SIGMOID)
		sl_error(L, fn, "ce needs activation \"softmax\" or \"none\", got \"sigmoid\" (use bce)");
	if (o->complement && (o->squared || C != 1))
		sl_error(L, fn, "option complement needs C = 1 and squared = false, got C = %zu%s", C,
		         o->squared ? " and squared = true" : "");
	if (id == L_GDICE && o->weight_idx)
		sl_error(L, fn, "option weight is not supported (generalized_dice weighs classes by w_type)");
	if ((id == L_BCE_DICE || id == L_DICE_FOCAL || nparts > 1) && o->red == SL_RED_NONE)
		sl_error(L, fn, "a combination of losses has no reduction \"none\"");
	int focal_part = id == L_FOCAL || id == L_DICE_FOCAL;
	if (focal_part && o->alpha_idx && act != SL_ACT_SOFTMAX)
		sl_error(L, fn, "option alpha must be a number in [0, 1] or false with activation \"%s\", "
		         "got a table", activations[act]);
	if (focal_part && act == SL_ACT_SOFTMAX && o->has[O_ALPHA] && !o->alpha_off && !o->alpha_idx)
		sl_error(L, fn, "option alpha must be a list of %zu numbers in [0, 1] or false with "
		         "activation \"softmax\", got %g", C, o->alpha);
	if ((id == L_TVERSKY || id == L_FTVERSKY) && o->alpha_idx)
		sl_error(L, fn, "option alpha must be a number in [0, 1], got a table");
	if ((id == L_TVERSKY || id == L_FTVERSKY) && o->alpha_off)
		sl_error(L, fn, "option alpha must be a number in [0, 1], got boolean false");
}

/* Adds the components of one part (two for the presets) to the run. */
static void add_part(lua_State *L, const char *fn, sl_lossrun *run, int id, const lopts *o,
                     double weight, size_t C, int act, partbuf *pb, double *cwd_big)
{
	const lossdef *d = &defs[id];
	double *cwd = C <= LOCALC ? pb->cwd : cwd_big;
	double *alist = C <= LOCALC ? pb->alist : cwd_big + C;
	float *cwf = C <= LOCALC ? pb->cwf : (float *)(cwd_big + 2 * C);
	float *cwv = cwf + (C <= LOCALC ? LOCALC : C);
	int have_w = o->weight_idx != 0, have_alist = o->alpha_idx != 0;
	if (have_w)
		read_list(L, fn, "weight", o->weight_idx, C, 0.0, FMAX, cwd);
	if (have_alist)
		read_list(L, fn, "alpha", o->alpha_idx, C, 0.0, 1.0, alist);
	for (size_t c = 0; c < C; c++) {
		cwf[c] = (float)(have_w ? cwd[c] : 1.0);
		cwv[c] = 1.0f;
	}
	sl_lossjob *j = &run->job;
	int c0 = !o->incl_bg && C >= 2 ? 1 : 0;
	double snr, sdr;
	smoothing(d, o, &snr, &sdr);
	int focal_part = id == L_FOCAL || id == L_DICE_FOCAL;
	int np0 = j->npix;
	if (j->npix >= SL_MAXPIX - 1 || run->nreg >= SL_MAXREG - 1)
		sl_error(L, fn, "a combination takes at most %d parts", SL_MAXREG - 1);

	/* pixel parts */
	if (id == L_BCE || id == L_BCE_DICE) {
		sl_pixk *px = &j->pix[j->npix];
		sl_pixmeta *pm = &run->pm[j->npix++];
		px->type = SL_PX_BCE;
		px->pos_weight = (float)(o->has[O_POS_WEIGHT] && !o->pos_auto ? o->pos_weight : 1.0);
		pm->pos_auto = o->pos_auto;
		pm->factor = id == L_BCE_DICE && o->has[O_BCE_WEIGHT] ? o->bce_weight : 1.0;
		pm->weight = weight * pm->factor;
	} else if (id == L_CE) {
		j->pix[j->npix].type = SL_PX_CE;
		run->pm[j->npix].factor = 1.0;
		run->pm[j->npix++].weight = weight;
	} else if (focal_part) {
		sl_pixk *px = &j->pix[j->npix];
		sl_pixmeta *pm = &run->pm[j->npix++];
		px->type = SL_PX_FOCAL;
		px->gamma = (float)(o->has[O_GAMMA] ? o->gamma : 2.0);
		pm->factor = id == L_DICE_FOCAL && o->has[O_LAMBDA] ? o->lambda : 1.0;
		pm->weight = weight * pm->factor;
		if (act == SL_ACT_SOFTMAX) {
			/* α_c joins the class weight; "none" values keep α but not w */
			if (have_alist && !o->alpha_off)
				for (size_t c = 0; c < C; c++) {
					cwf[c] = (float)((have_w ? cwd[c] : 1.0) * alist[c]);
					cwv[c] = (float)alist[c];
				}
		} else {
			/* default 0.25 in focal, false inside dice_focal */
			px->alpha_on = !o->alpha_off && (o->has[O_ALPHA] || id == L_FOCAL);
			px->alpha = (float)(o->has[O_ALPHA] ? o->alpha : 0.25);
		}
	}
	for (int i = np0; i < j->npix; i++) {
		j->pix[i].c0 = c0;
		j->pix[i].cw = cwf;
		j->pix[i].cwv = cwv;
		run->pm[i].reduction = o->red;
	}

	/* region parts */
	int rtype = -1;
	switch (id) {
	case L_DICE:
	case L_BCE_DICE:
	case L_DICE_FOCAL:
		rtype = SL_R_DICE;
		break;
	case L_IOU:
		rtype = SL_R_IOU;
		break;
	case L_TVERSKY:
		rtype = SL_R_TVERSKY;
		break;
	case L_FTVERSKY:
		rtype = SL_R_FTVERSKY;
		break;
	case L_SENSSPEC:
		rtype = SL_R_SENSSPEC;
		break;
	case L_GDICE:
		rtype = SL_R_GDICE;
		break;
	default:
		break;
	}
	if (rtype >= 0) {
		sl_regpart *rp = &run->reg[run->nreg++];
		rp->type = rtype;
		rp->factor = id == L_BCE_DICE && o->has[O_DICE_WEIGHT] ? o->dice_weight : 1.0;
		rp->weight = weight * rp->factor;
		rp->reduction = o->red;
		rp->batch = o->batch;
		rp->c0 = c0;
		rp->snr = snr;
		rp->sdr = sdr;
		rp->squared = o->squared;
		rp->complement = o->complement;
		rp->soft = o->soft;
		rp->empty_complement = o->empty_complement;
		rp->alpha = o->has[O_ALPHA] ? o->alpha : 0.3;
		rp->beta = o->has[O_BETA] ? o->beta : 0.7;
		rp->gamma = o->has[O_GAMMA] ? o->gamma : 0.75;
		rp->eps = o->has[O_EPS] ? o->eps : 1e-7;
		rp->lambda = o->has[O_LAMBDA] ? o->lambda : 0.05;
		rp->w_type = o->w_type;
		rp->cw = have_w ? cwd : NULL;
	}
}

/* Sets t[key] = v. */
static void setnum(lua_State *L, int t, const char *key, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, t, key);
}

/* The components (pixel or region) of the run that make up each part. */
typedef struct comps {
	int part[2 * SL_MAXREG], kind[2 * SL_MAXREG], n; /* kind: index << 1 | is_region */
} comps;

/* Fills the `last` table: total, and per part {value = (its own value),
 * weighted = (times its weight), per_class = {...}} (per_class for region
 * parts: the part's mean over samples, class by class). Existing subtables
 * are reused. */
static void fill_last(lua_State *L, int lt, const sl_lossrun *run, const comps *cp, int nparts,
                      const double *weights, size_t N, size_t C, double total)
{
	setnum(L, lt, "total", total);
	lua_getfield(L, lt, "parts");
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_createtable(L, nparts, 0);
		lua_pushvalue(L, -1);
		lua_setfield(L, lt, "parts");
	}
	int pt = lua_gettop(L);
	for (int p = 0; p < nparts; p++) {
		if (lua_rawgeti(L, pt, p + 1) != LUA_TTABLE) {
			lua_pop(L, 1);
			lua_createtable(L, 0, 3);
			lua_pushvalue(L, -1);
			lua_rawseti(L, pt, p + 1);
		}
		int e = lua_gettop(L);
		double v = 0.0;
		int reg = -1;
		for (int k = 0; k < cp->n; k++) {
			if (cp->part[k] != p)
				continue;
			int i = cp->kind[k] >> 1;
			if (cp->kind[k] & 1) {
				v += run->reg[i].factor * run->reg[i].value;
				reg = i;
			} else {
				v += run->pm[i].factor * run->pm[i].value;
			}
		}
		setnum(L, e, "value", v);
		setnum(L, e, "weighted", weights[p] * v);
		if (reg >= 0 && run->reg[reg].L && run->reg[reg].type != SL_R_GDICE) {
			const sl_regpart *rp = &run->reg[reg];
			size_t R = sl_region_rows(rp, N);
			if (lua_getfield(L, e, "per_class") != LUA_TTABLE) {
				lua_pop(L, 1);
				lua_createtable(L, (int)C, 0);
				lua_pushvalue(L, -1);
				lua_setfield(L, e, "per_class");
			}
			for (size_t c = 0; c < C; c++) {
				/* mean over the rows where the class takes part (M' > 0) */
				double sum = 0.0;
				size_t cnt = 0;
				for (size_t r = 0; r < R; r++) {
					double m = 0.0;
					for (size_t n = rp->batch ? 0 : r; n < (rp->batch ? N : r + 1); n++)
						m += run->stats[(n * C + c) * SL_NSTAT + SL_S_M];
					if ((int)c >= rp->c0 && m > 0.0) {
						sum += rp->L[r * C + c];
						cnt++;
					}
				}
				lua_pushnumber(L, cnt ? sum / (double)cnt : 0.0);
				lua_rawseti(L, -2, (lua_Integer)c + 1);
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Statistics given for batch parts (crit:from_stats): a (C, 9) tensor of
 * sums, each finite and >= 0, with TP <= SP, ST and SP, ST <= M' (sums of
 * p t, p, t and 1 over the valid elements). Returns them as doubles. */
static double *ext_stats(lua_State *L, const char *fn, const sl_tensor *st, size_t C)
{
	static const char *const names[SL_NSTAT_PUBLIC] = {"TP", "SP", "ST", "M'", "SP2",
	                                                    "ST2", "SAD", "SQT", "SQN"};
	char a[160];
	if (st->ndim != 2 || (size_t)st->shape[0] != C || st->shape[1] != SL_NSTAT_PUBLIC)
		sl_error(L, fn, "statistics must have shape {%zu,%d}, got %s", C, SL_NSTAT_PUBLIC,
		         sl_shapestr(st->ndim, st->shape, a, sizeof a));
	double *ext = sl_alloc(L, fn, C * SL_NSTAT * sizeof(double), 0);
	memset(ext, 0, C * SL_NSTAT * sizeof(double));
	for (size_t c = 0; c < C; c++) {
		const float *r = st->data + c * SL_NSTAT_PUBLIC;
		for (int k = 0; k < SL_NSTAT_PUBLIC; k++) {
			float v = r[k];
			if (!(isfinite(v) && v >= 0.0f)) {
				char b[64];
				sl_error(L, fn, "statistics[%zu][%d] (%s) must be a finite number >= 0, got %s", c + 1,
				         k + 1, names[k], sl_numstr((double)v, b, sizeof b));
			}
			ext[c * SL_NSTAT + (size_t)k] = (double)v;
		}
		if (!(r[SL_S_TP] <= r[SL_S_SP] && r[SL_S_TP] <= r[SL_S_ST] && r[SL_S_SP] <= r[SL_S_M] &&
		      r[SL_S_ST] <= r[SL_S_M]))
			sl_error(L, fn, "statistics[%zu] (class %zu) are not sums over one set of elements "
			         "(TP <= SP, TP <= ST, SP <= M' and ST <= M' must hold; got TP %g, SP %g, "
			         "ST %g, M' %g)", c + 1, c, (double)r[SL_S_TP], (double)r[SL_S_SP],
			         (double)r[SL_S_ST], (double)r[SL_S_M]);
	}
	return ext;
}

/* Evaluates the parts (ids, opts tables at stack indices, weights) on the
 * call's data; pushes the loss (a number, or a tensor for reduction "none")
 * and the gradient (or nil). */
static int evaluate(lua_State *L, const char *fn, int nparts, const int *ids, const int *optidx,
                    const double *weights, callargs *ca)
{
	lopts os[MAXPARTS];
	char a[160];
	sl_tensor *x = ca->x, *t = ca->t;
	for (int p = 0; p < nparts; p++)
		parse_opts(L, &defs[ids[p]], optidx[p], &os[p]);
	/* the parts share the activation, eps and mask: one pass computes them */
	int act = os[0].act;
	double eps = os[0].has[O_EPS] ? os[0].eps : 1e-7;
	sl_tensor *mask = ca->mask ? ca->mask : os[0].mask;
	for (int p = 1; p < nparts; p++) {
		if (os[p].act != act)
			sl_error(L, fn, "the parts of a combination must share the activation (part 1: \"%s\", "
			         "part %d: \"%s\")", activations[act], p + 1, activations[os[p].act]);
		double e2 = os[p].has[O_EPS] ? os[p].eps : 1e-7;
		if (e2 != eps)
			sl_error(L, fn, "the parts of a combination must share eps (part 1: %g, part %d: %g)",
			         eps, p + 1, e2);
		if (!ca->mask && os[p].mask != os[0].mask)
			sl_error(L, fn, "the parts of a combination must share the mask (part %d has another)",
			         p + 1);
	}

	/* shapes */
	if (x->ndim < 3 || x->ndim > 5)
		sl_error(L, fn, "input must have 3 to 5 dimensions (N, C, spatial...), got shape %s",
		         sl_shapestr(x->ndim, x->shape, a, sizeof a));
	size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], M = x->numel / (N * C);
	int labels = 0;
	if (!sl_same_shape(x->ndim, x->shape, t->ndim, t->shape)) {
		if (C >= 2 && is_pixel_shape(x, t))
			labels = 1;
		else
			sl_shape_mismatch(L, fn, "target", t, "input", x->ndim, x->shape,
			                  C >= 2 ? " (nor is it a label map {N,1,...})" : NULL);
	}
	int mask_full = 0;
	if (mask) {
		if (sl_same_shape(x->ndim, x->shape, mask->ndim, mask->shape))
			mask_full = C > 1;
		else if (!is_pixel_shape(x, mask))
			sl_shape_mismatch(L, fn, "option mask", mask, "input", x->ndim, x->shape,
			                  " (expected {N,1,...} or the input's shape)");
	}
	if (act == SL_ACT_SOFTMAX && C < 2)
		sl_error(L, fn, "activation \"softmax\" needs at least 2 channels, got C = 1");
	if (act == SL_ACT_SOFTMAX && C > SL_MAXC_SOFTMAX)
		sl_error(L, fn, "activation \"softmax\" supports at most %d channels, got %zu",
		         SL_MAXC_SOFTMAX, C);
	for (int p = 0; p < nparts; p++)
		check_part(L, fn, ids[p], &os[p], C, act, nparts);
	int red = os[0].red;

	/* out: a tensor of x's shape that shares storage with no input; a
	 * criterion's own buffer that does is replaced by a fresh one */
	int want_grad = ca->want_grad && red != SL_RED_NONE;
	sl_tensor *out = want_grad ? ca->out : NULL;
	if (out) {
		if (!sl_same_shape(x->ndim, x->shape, out->ndim, out->shape))
			sl_shape_mismatch(L, fn, "option out", out, "input", x->ndim, x->shape, NULL);
		int shared = overlaps(out, x) || overlaps(out, t) || (mask && overlaps(out, mask));
		if (shared && ca->scratch_out)
			out = NULL;
		else if (shared)
			sl_error(L, fn, "option out shares storage with %s",
			         overlaps(out, x) ? "the input" : overlaps(out, t) ? "the target" : "the mask");
	}

	/* the run: every part's components */
	sl_lossrun run;
	sl_loss_init(&run, N, C, M, x->data, t->data, labels, act, (float)eps);
	sl_lossjob *j = &run.job;
	j->m = mask ? mask->data : NULL;
	j->mask_full = mask_full;
	run.want_grad = want_grad;
	run.split_pixel = sl_getctx(L)->split_pixel;
	partbuf pbs[MAXPARTS];
	double *big = NULL;
	if (C > LOCALC) /* per-class arrays of wide inputs, on the Lua stack */
		big = sl_alloc(L, fn, (size_t)nparts * C * (2 * sizeof(double) + 2 * sizeof(float)), 0);
	comps cp = {.n = 0};
	for (int p = 0; p < nparts; p++) {
		int np0 = j->npix, nr0 = run.nreg;
		add_part(L, fn, &run, ids[p], &os[p], weights[p], C, act, &pbs[p],
		         big ? big + (size_t)p * C * 3 : NULL);
		for (int i = np0; i < j->npix; i++) {
			cp.part[cp.n] = p;
			cp.kind[cp.n++] = i << 1;
		}
		for (int i = nr0; i < run.nreg; i++) {
			cp.part[cp.n] = p;
			cp.kind[cp.n++] = i << 1 | 1;
		}
	}
	if (ca->ext_stats) {
		double *ext = ext_stats(L, fn, ca->ext_stats, C);
		for (int i = 0; i < run.nreg; i++)
			run.reg[i].ext = run.reg[i].batch ? ext : NULL;
	}

	/* outputs: a "none" tensor, the per-(row, class) values, the gradient */
	sl_tensor *vals = NULL;
	sl_regpart *rp0 = run.nreg ? &run.reg[0] : NULL;
	if (red == SL_RED_NONE) {
		int64_t shape[SL_MAXDIM];
		if (rp0) {
			shape[0] = (int64_t)sl_region_rows(rp0, N);
			shape[1] = (int64_t)sl_region_cols(rp0, C);
			vals = sl_newtensor(L, fn, 2, shape);
		} else {
			memcpy(shape, x->shape, sizeof shape);
			if (act == SL_ACT_SOFTMAX || j->pix[0].type == SL_PX_CE)
				shape[1] = 1;
			vals = sl_newtensor(L, fn, x->ndim, shape);
			j->out = vals->data;
			j->out_mode = SL_OUT_VALUES;
		}
	}
	int validx = lua_gettop(L);
	/* The run's statistics and the region parts' L live in memory Lua owns,
	 * so that nothing leaks when filling the results raises (a metamethod,
	 * memory); a criterion's last table keeps it, in a userdata type only C
	 * makes: no allocation per step, and nothing Lua puts there is written
	 * into. */
	size_t nL = 0, nst = N * C * SL_NSTAT;
	for (int i = 0; i < run.nreg; i++)
		nL += sl_region_rows(&run.reg[i], N) * sl_region_cols(&run.reg[i], C);
	int bidx = 0, fresh;
	if (ca->last_idx) {
		lua_getfield(L, ca->last_idx, "_buf");
		bidx = lua_gettop(L);
	}
	double *work = private_buffer(L, fn, bidx, nst + nL, &fresh);
	if (fresh && ca->last_idx) {
		lua_pushvalue(L, -1);
		lua_setfield(L, ca->last_idx, "_buf");
	}
	run.stats_mem = work;
	double *Lbuf = work + nst;
	for (int i = 0; i < run.nreg; i++) {
		run.reg[i].L = Lbuf;
		Lbuf += sl_region_rows(&run.reg[i], N) * sl_region_cols(&run.reg[i], C);
	}
	sl_tensor *st_out = NULL;
	int stidx = 0;
	if (ca->stats_only) {
		int64_t shape[2] = {(int64_t)C, SL_NSTAT_PUBLIC};
		st_out = sl_newtensor(L, fn, 2, shape);
		stidx = lua_gettop(L);
	}
	sl_tensor *g = NULL;
	if (want_grad) {
		if (out) {
			g = out;
			run.out_user = !ca->scratch_out;
			lua_pushvalue(L, ca->out_idx);
		} else {
			g = sl_newtensor(L, fn, x->ndim, x->shape);
		}
		j->out = g->data;
	}
	int gidx = lua_gettop(L);

	if (ca->stats_only) {
		run.stats_only = 1;
		run.want_grad = 0;
		j->npix = 0;
	}
	sl_exec e = sl_getexec(L);
	int rc = sl_loss_run(&e, &run); /* nothing it allocates survives it */
	sl_getctx(L)->gen_ran = run.gen_ran;
	if (g && (rc == SL_OK || !run.out_user))
		sl_touch(g); /* written (a failed run writes only into our own buffers) */
	if (rc != SL_OK)
		sl_loss_raise(L, fn, &run, rc, x, t, mask, C);
	if (st_out) {
		for (size_t c = 0; c < C; c++)
			for (int k = 0; k < SL_NSTAT_PUBLIC; k++) {
				double v = 0.0;
				for (size_t n = 0; n < N; n++)
					v += run.stats[(n * C + c) * SL_NSTAT + (size_t)k];
				st_out->data[c * SL_NSTAT_PUBLIC + (size_t)k] = (float)v;
			}
		lua_pushvalue(L, stidx);
		return 1;
	}
	double total = run.total;
	if (red == SL_RED_NONE && rp0)
		for (size_t i = 0; i < vals->numel; i++)
			vals->data[i] = (float)rp0->L[i];
	if (ca->last_idx)
		fill_last(L, ca->last_idx, &run, &cp, nparts, weights, N, C, total);
	if (red == SL_RED_NONE)
		lua_pushvalue(L, validx);
	else
		lua_pushnumber(L, total);
	if (want_grad)
		lua_pushvalue(L, gidx);
	else
		lua_pushnil(L);
	return 2;
}

/* segloss.<name>(x, t, opts) */
static int loss_call(lua_State *L)
{
	int id = (int)lua_tointeger(L, lua_upvalueindex(2));
	const char *fn = defs[id].fname;
	sl_checknargs(L, fn, 0, 2, 3);
	callargs ca = {0};
	ca.x = sl_checktensor(L, 1, fn, "input");
	ca.t = sl_checktensor(L, 2, fn, "target");
	lua_settop(L, 3);
	lopts o;
	parse_opts(L, &defs[id], 3, &o); /* for out and grad; evaluate parses again */
	ca.out = o.out;
	if (o.out) {
		lua_getfield(L, 3, "out");
		ca.out_idx = lua_gettop(L);
	}
	ca.want_grad = o.grad;
	int optidx = 3;
	double w = 1.0;
	return evaluate(L, fn, 1, &id, &optidx, &w, &ca);
}

/* The id of the loss called name (a string without NUL), or -1. */
static int find_loss(lua_State *L, int idx)
{
	for (int i = 0; i < L_COUNT; i++)
		if (sl_isstring(L, idx, defs[i].name))
			return i;
	return -1;
}

static int opt_flag(lua_State *L, const char *fn, int idx, const char *what)
{
	if (lua_type(L, idx) != LUA_TBOOLEAN && !lua_isnil(L, idx)) {
		char d[96];
		sl_error(L, fn, "%s must be a boolean, got %s", what, sl_describe(L, idx, d, sizeof d));
	}
	return lua_toboolean(L, idx);
}

static sl_tensor *opt_tensor_arg(lua_State *L, const char *fn, int idx, const char *what)
{
	return lua_isnil(L, idx) ? NULL : sl_checktensor(L, idx, fn, what);
}

/* segloss.core.combo(fname, parts, x, t, mask, out, want_grad, scratch_out,
 * stats, last, stats_only) — the evaluation behind criteria: parts is a list
 * of {name, opts, weight}; out (a tensor or nil) receives the gradient;
 * scratch_out says out is the criterion's own buffer (it may then be
 * written before every check is done, and is replaced by a fresh tensor if
 * it shares storage with an input); stats (a (C, 9) tensor or nil)
 * replaces the statistics of batch parts; last (a table or nil) receives
 * the values per part; stats_only returns the batch's (C, 9) statistics
 * instead. Everything is checked: this is reachable from Lua. */
static int core_combo(lua_State *L)
{
	lua_settop(L, 11);
	const char *fn = lua_type(L, 1) == LUA_TSTRING ? sl_checkstr(L, 1, "segloss.core.combo", "fname")
	                                               : "segloss.core.combo";
	if (lua_type(L, 2) != LUA_TTABLE) {
		char d[96];
		sl_error(L, fn, "parts must be a list of {name, opts, weight}, got %s",
		         sl_describe(L, 2, d, sizeof d));
	}
	callargs ca = {0};
	ca.x = sl_checktensor(L, 3, fn, "input");
	ca.t = sl_checktensor(L, 4, fn, "target");
	ca.mask = opt_tensor_arg(L, fn, 5, "mask");
	ca.out = opt_tensor_arg(L, fn, 6, "out");
	ca.out_idx = 6;
	ca.want_grad = opt_flag(L, fn, 7, "want_grad");
	ca.scratch_out = opt_flag(L, fn, 8, "scratch_out");
	ca.ext_stats = opt_tensor_arg(L, fn, 9, "statistics");
	if (!lua_isnil(L, 10) && !lua_istable(L, 10)) {
		char d[96];
		sl_error(L, fn, "last must be a table or nil, got %s", sl_describe(L, 10, d, sizeof d));
	}
	ca.last_idx = lua_istable(L, 10) ? 10 : 0;
	ca.stats_only = opt_flag(L, fn, 11, "stats_only");
	lua_Unsigned n = lua_rawlen(L, 2);
	if (n < 1 || n > MAXPARTS - 1)
		sl_error(L, fn, "a combination takes 1 to %d parts, got %llu", MAXPARTS - 1,
		         (unsigned long long)n);
	int ids[MAXPARTS], optidx[MAXPARTS];
	double weights[MAXPARTS];
	luaL_checkstack(L, 3 * (int)n + 8, NULL);
	for (int p = 0; p < (int)n; p++) {
		char d[96];
		if (lua_rawgeti(L, 2, p + 1) != LUA_TTABLE)
			sl_error(L, fn, "part %d must be a table {name, opts, weight}, got %s", p + 1,
			         sl_describe(L, -1, d, sizeof d));
		int pt = lua_gettop(L);
		lua_rawgeti(L, pt, 1);
		if ((ids[p] = find_loss(L, -1)) < 0)
			sl_error(L, fn, "part %d: unknown loss %s", p + 1, sl_describe(L, -1, d, sizeof d));
		if (lua_rawgeti(L, pt, 2) != LUA_TTABLE && !lua_isnil(L, -1))
			sl_error(L, fn, "part %d: options must be a table, got %s", p + 1,
			         sl_describe(L, -1, d, sizeof d));
		optidx[p] = lua_gettop(L);
		lua_rawgeti(L, pt, 3);
		double w = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : (double)NAN;
		if (!(isfinite(w) && fabs(w) <= FMAX))
			sl_error(L, fn, "the weight of part %d must be a finite number within the float32 range "
			         "(|w| <= %.8g), got %s", p + 1, FMAX, sl_describe(L, -1, d, sizeof d));
		weights[p] = w;
	}
	return evaluate(L, fn, (int)n, ids, optidx, weights, &ca);
}

/* segloss.core.check_opts(fname, name, opts): the checks a constructor can
 * make without data (option names and values). */
static int core_check_opts(lua_State *L)
{
	const char *fn = sl_checkstr(L, 1, "segloss.core.check_opts", "fname");
	int id = find_loss(L, 2);
	if (id < 0) {
		char d[96];
		sl_error(L, fn, "unknown loss %s", sl_describe(L, 2, d, sizeof d));
	}
	lopts o;
	lua_settop(L, 3);
	lossdef d = defs[id];
	d.fname = fn;
	parse_opts(L, &d, 3, &o);
	/* what can be told without data: smoothing that divides by 0 */
	check_smoothing(L, fn, id, &o);
	return 0;
}

void sl_loss_open(lua_State *L, int ctx)
{
	for (int i = 0; i < L_COUNT; i++) {
		lua_pushvalue(L, ctx);
		lua_pushinteger(L, i);
		lua_pushcclosure(L, loss_call, 2);
		lua_setfield(L, -2, defs[i].name);
	}
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, core_combo, 1);
	lua_setfield(L, -2, "combo");
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, core_check_opts, 1);
	lua_setfield(L, -2, "check_opts");
}
