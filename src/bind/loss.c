/*
 * loss.c — the functional losses (segloss.dice, ... one per entry of the
 * registry, src/loss/registry.c), segloss.losses(), and what criteria
 * share with them (part.h): compiling a loss with its options, and
 * evaluating compiled parts.
 *
 *   local loss, grad = segloss.dice(x, t, opts)
 *
 * A call compiles its options (sl_part_compile: every option checked
 * against the registry, its default resolved, lists copied), checks them
 * against the data (sl_part_check, docs/losses.md's list of errors), builds
 * an sl_lossrun from the parts' components and hands it to the driver.
 * Nothing is written to opts.out unless every check, including the data
 * checks of the driver, has passed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "part.h"

_Static_assert(SL_O_COUNT <= 32, "options are bits of an unsigned");

/* The largest value of a number that the kernels hold as a float32. */
#define FMAX ((double)FLT_MAX)
#define A(a) (1u << (a))

/* ---- a loss with its options, compiled ---------------------------------- */

static const int list_opt[SL_NLIST] = {SL_O_WEIGHT, SL_O_ALPHA};

/* The n numbers of the list at idx (a table or a tensor) into dst; records
 * the first one outside [lo, hi]. */
static void read_list(lua_State *L, int idx, double lo, double hi, double *dst, size_t n, size_t *bad,
                      double *badv)
{
	sl_tensor *t = sl_totensor(L, idx);
	*bad = 0;
	for (size_t i = 0; i < n; i++) {
		double v;
		if (t) {
			v = (double)t->data[i];
		} else {
			lua_rawgeti(L, idx, (lua_Integer)i + 1);
			v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : (double)NAN;
			lua_pop(L, 1);
		}
		if (!*bad && !(isfinite(v) && v >= lo && v <= hi)) {
			*bad = i + 1;
			*badv = v;
		}
		dst[i] = v;
	}
}

/* Option spacing: a list of 1 to 3 finite numbers > 0 (one per spatial
 * axis: sl_eval_prepare checks the count against the data). */
static void read_spacing(lua_State *L, const char *fn, const sl_optval *ov, sl_part *p)
{
	for (int a = 0; a < 3; a++)
		p->spacing[a] = 1.0;
	if (!ov[SL_O_SPACING].list)
		return;
	int idx = ov[SL_O_SPACING].idx;
	lua_Unsigned n = lua_rawlen(L, idx);
	if (n < 1 || n > 3)
		sl_error(L, fn, "option spacing must be a list of one number > 0 per spatial axis (1 to 3), "
		         "got a table of length %llu", (unsigned long long)n);
	for (int a = 0; a < (int)n; a++) {
		lua_rawgeti(L, idx, a + 1);
		double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : (double)NAN;
		if (!(isfinite(v) && v > 0.0)) {
			char b[96];
			sl_error(L, fn, "option spacing[%d] must be a finite number > 0, got %s", a + 1,
			         sl_describe(L, -1, b, sizeof b));
		}
		p->spacing[a] = v;
		lua_pop(L, 1);
	}
	p->nspacing = (int)n;
}

/* Walks the options table against the registry's options (names, types,
 * ranges), resolves every default, and copies the lists (part.h). */
void sl_part_compile(lua_State *L, const char *fn, int id, int oi, sl_part *p)
{
	sl_optval ov[SL_O_COUNT];
	sl_optdesc od[SL_O_COUNT];
	sl_loss_optdescs(id, od);
	sl_opts_walk(L, fn, oi, od, SL_O_COUNT, sl_loss_known(id), ov);
	memset(p, 0, sizeof *p);
	p->id = id;
	for (int o = 0; o < SL_O_COUNT; o++)
		if (ov[o].given)
			p->given |= A(o);
	p->act = ov[SL_O_ACTIVATION].given ? (int)ov[SL_O_ACTIVATION].num : SL_ACT_NONE;
	for (int o = 0; o < SL_O_COUNT; o++) {
		if (ov[o].given && !ov[o].special && !ov[o].list) {
			p->v[o] = ov[o].num;
			continue;
		}
		if (ov[o].given)
			continue;
		sl_default d = sl_loss_default(id, o, p->act);
		if (d.kind == SL_DEF_VALUE)
			p->v[o] = d.v;
		else if (d.kind == SL_DEF_FROM)
			p->v[o] = p->v[(int)d.v]; /* an option of a smaller index */
		else if (d.kind == SL_DEF_FALSE && o == SL_O_ALPHA)
			p->alpha_off = 1;
	}
	if (ov[SL_O_ALPHA].given && ov[SL_O_ALPHA].special)
		p->alpha_off = 1;
	p->pos_auto = ov[SL_O_POS_WEIGHT].special;
	p->red = (int)p->v[SL_O_REDUCTION];
	p->incl_bg = p->v[SL_O_INCLUDE_BACKGROUND] != 0.0;
	p->batch = p->v[SL_O_BATCH] != 0.0;
	p->grad = p->v[SL_O_GRAD] != 0.0;
	p->mask = ov[SL_O_MASK].tensor;
	p->out = ov[SL_O_OUT].tensor;
	read_spacing(L, fn, ov, p);
	size_t total = 0, n[SL_NLIST];
	for (int k = 0; k < SL_NLIST; k++) {
		const sl_optval *v = &ov[list_opt[k]];
		sl_tensor *t = v->list ? sl_totensor(L, v->idx) : NULL;
		n[k] = !v->list ? 0 : t ? t->numel : (size_t)lua_rawlen(L, v->idx);
		total += n[k];
	}
	if (!total && !ov[SL_O_WEIGHT].list && !ov[SL_O_ALPHA].list)
		return;
	double *mem = sl_alloc(L, fn, (total ? total : 1) * sizeof(double), 0);
	for (int k = 0; k < SL_NLIST; k++) {
		const sl_optdesc *d = &sl_loss_options[list_opt[k]];
		if (!ov[list_opt[k]].list)
			continue;
		read_list(L, ov[list_opt[k]].idx, d->lo, d->hi, mem, n[k], &p->bad[k], &p->badv[k]);
		p->list[k] = mem;
		p->nlist[k] = n[k];
		mem += n[k];
	}
}

/* The first entry of list k that is out of range, as an error. */
static void bad_entry(lua_State *L, const char *fn, const sl_part *p, int k)
{
	const sl_optdesc *d = &sl_loss_options[list_opt[k]];
	char b[64];
	if (d->hi == FMAX)
		sl_error(L, fn, "option %s[%zu] must be a number >= %g within the float32 range "
		         "(<= %.8g), got %s", d->name, p->bad[k], d->lo, FMAX, sl_numstr(p->badv[k], b, sizeof b));
	sl_error(L, fn, "option %s[%zu] must be a number in [%g, %g], got %s", d->name, p->bad[k], d->lo,
	         d->hi, sl_numstr(p->badv[k], b, sizeof b));
}

void sl_part_check_entries(lua_State *L, const char *fn, const sl_part *p)
{
	for (int k = 0; k < SL_NLIST; k++)
		if (p->bad[k])
			bad_entry(L, fn, p, k);
}

/* The list k of a part, checked against C: its length, then its entries. */
static const double *part_list(lua_State *L, const char *fn, const sl_part *p, int k, size_t C)
{
	if (!p->list[k])
		return NULL;
	if (p->nlist[k] != C)
		sl_error(L, fn, "option %s must have one entry per channel (%zu), got %zu",
		         sl_loss_options[list_opt[k]].name, C, p->nlist[k]);
	if (p->bad[k])
		bad_entry(L, fn, p, k);
	return p->list[k];
}

/* ---- checks of a compiled part ------------------------------------------ */

/* The activations a loss allows, as the error says them: `"sigmoid" or
 * "none"`. */
static const char *act_list(unsigned acts, char *buf, size_t len)
{
	int order[] = {SL_ACT_SIGMOID, SL_ACT_SOFTMAX, SL_ACT_NONE}, k = 0, n = 0;
	size_t m = 0;
	for (int i = 0; i < 3; i++)
		n += (acts & A(order[i])) != 0;
	buf[0] = '\0';
	for (int i = 0; i < 3 && m < len; i++)
		if (acts & A(order[i])) {
			k++;
			m += (size_t)snprintf(buf + m, len - m, "%s\"%s\"", k == 1 ? "" : k == n ? " or " : ", ",
			                      sl_activations[order[i]]);
		}
	return buf;
}

/* The activation rule of the loss and of its parts (a preset), first
 * failure first. */
static void check_activation(lua_State *L, const char *fn, int id, int act)
{
	const sl_lossdesc *d = &sl_losses[id];
	if (d->acts && !(d->acts & A(act))) {
		char b[64];
		sl_error(L, fn, "%s needs activation %s, got \"%s\"%s%s%s", d->name, act_list(d->acts, b, sizeof b),
		         sl_activations[act], d->act_hint ? " (" : "", d->act_hint ? d->act_hint : "",
		         d->act_hint ? ")" : "");
	}
	for (int i = 0; i < d->nparts; i++)
		check_activation(L, fn, d->parts[i].loss, act);
}

/* The combinations of docs/losses.md that are errors (part.h). */
void sl_part_check(lua_State *L, const char *fn, const sl_part *p, size_t C, int nparts)
{
	int id = p->id, act = p->act;
	const sl_lossdesc *d = &sl_losses[id];
	/* an empty target and prediction would give s_nr / 0 */
	double snr = p->v[SL_O_SMOOTH_NR], sdr = p->v[SL_O_SMOOTH_DR];
	if (sdr == 0.0 && snr > 0.0 && sl_loss_flag(id, SL_LF_SMOOTH_NR))
		sl_error(L, fn, "smooth_dr = 0 with smooth_nr = %g divides by 0 on an empty target and "
		         "prediction (give smooth_dr > 0, or smooth_nr = 0)", snr);
	check_activation(L, fn, id, act);
	if (C && p->v[SL_O_COMPLEMENT] != 0.0 && (p->v[SL_O_SQUARED] != 0.0 || C != 1))
		sl_error(L, fn, "option complement needs C = 1 and squared = false, got C = %zu%s", C,
		         p->v[SL_O_SQUARED] != 0.0 ? " and squared = true" : "");
	for (int o = 0; o < SL_O_COUNT; o++) {
		const sl_lossopt *e = p->given & A(o) ? sl_loss_optentry(id, o) : NULL;
		if (e && e->refused)
			sl_error(L, fn, "option %s is not supported (%s)", sl_loss_options[o].name, e->refused);
	}
	if ((d->kind == SL_KIND_PRESET || nparts > 1) && p->red == SL_RED_NONE)
		sl_error(L, fn, "a combination of losses has no reduction \"none\"");
	if (d->kind == SL_KIND_GENERIC && !d->gen_shape && p->red == SL_RED_NONE)
		sl_error(L, fn, "%s has no reduction \"none\" (use \"mean\" or \"sum\")", d->name);
	if (C && C != 1 && sl_loss_flag(id, SL_LF_C1))
		sl_error(L, fn, "%s is binary: the input must have one channel, got C = %zu", d->name, C);
	if (sl_loss_flag(id, SL_LF_BETA01) && p->v[SL_O_BETA] > 1.0)
		sl_error(L, fn, "option beta must be a number in [0, 1], got %g", p->v[SL_O_BETA]);
	/* alpha: a number, false or a list per class (focal), or a number alone
	 * (tversky) */
	if (p->given & A(SL_O_ALPHA)) {
		int list = p->list[SL_LIST_ALPHA] != NULL, isfalse = p->alpha_off;
		if (sl_loss_opttype(id, SL_O_ALPHA) == SL_OT_NUM_FALSE_CHANNELS) {
			if (list && act != SL_ACT_SOFTMAX)
				sl_error(L, fn, "option alpha must be a number in [0, 1] or false with activation \"%s\", "
				         "got a table", sl_activations[act]);
			if (C && act == SL_ACT_SOFTMAX && !isfalse && !list)
				sl_error(L, fn, "option alpha must be a list of %zu numbers in [0, 1] or false with "
				         "activation \"softmax\", got %g", C, p->v[SL_O_ALPHA]);
		} else {
			if (list)
				sl_error(L, fn, "option alpha must be a number in [0, 1], got a table");
			if (isfalse)
				sl_error(L, fn, "option alpha must be a number in [0, 1], got boolean false");
		}
	}
}

/* ---- ignore_index ------------------------------------------------------ */

/* Is the loss (or a part of a preset) summed per pixel over the channels
 * whatever the activation (ce)? Its mask must then be whole pixels. */
static int pixel_level_loss(int id)
{
	const sl_lossdesc *d = &sl_losses[id];
	if ((d->kind == SL_KIND_PIXEL && d->comp == SL_PX_CE) || (d->flags & SL_LF_PIXEL_MASK))
		return 1;
	for (int i = 0; i < d->nparts; i++)
		if (pixel_level_loss(d->parts[i].loss))
			return 1;
	return 0;
}

/* A mask value that is neither 0 nor 1 (NaN included), at flat index i of
 * the mask, as the driver would report it. */
static _Noreturn void bad_mask_value(lua_State *L, const char *fn, const sl_tensor *m, size_t i)
{
	char at[160], v[64];
	sl_error(L, fn, "mask value %s at %s is not 0 or 1", sl_numstr((double)m->data[i], v, sizeof v),
	         sl_coordstr(m->ndim, m->shape, i, at, sizeof at));
}

/* ignore_index ii: the run's mask and target in fresh tensors (Lua-owned,
 * pushed on the stack: nothing leaks when a check raises), so that every
 * loss sees the ignored elements as masked and their target as 0:
 *   mask'   = mask (or 1) where the target is not ii, 0 where it is;
 *   target' = the target, 0 where it is ii.
 * A label map ignores pixels: mask' is (N, 1, S...), or x's shape when the
 * mask is. A target of x's shape ignores elements: mask' is x's shape, or
 * (N, 1, S...) where the loss is per pixel (softmax, ce), which needs
 * every channel of a pixel ignored or none. Everything else is left to the
 * driver's checks: a target that is NaN, ±Inf, out of range or not an
 * integer is not ii, and stays in target' for the driver to report (at the
 * same coordinates: target' has the target's shape). The mask's own values
 * are checked here, since mask' no longer holds them. */
/* o[s] = a[s] == ii ? 0 : (m ? m[s] : a[s] or 1): the rows of apply_ignore,
 * simple loops over restrict pointers that the compiler vectorizes */
static void row_clean(const float *restrict a, float *restrict o, size_t M, float ii)
{
	for (size_t s = 0; s < M; s++)
		o[s] = a[s] == ii ? 0.0f : a[s];
}

static void row_keep(const float *restrict a, const float *restrict m, float *restrict o, size_t M, float ii)
{
	if (m)
		for (size_t s = 0; s < M; s++)
			o[s] = a[s] == ii ? 0.0f : m[s];
	else
		for (size_t s = 0; s < M; s++)
			o[s] = a[s] == ii ? 0.0f : 1.0f;
}

static void apply_ignore(lua_State *L, const char *fn, sl_tensor *x, sl_tensor *t, sl_tensor *mask,
                         int labels, int pixlevel, float ii, sl_tensor **tout, sl_tensor **mout)
{
	size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], M = x->numel / (N * C);
	int mfull = mask && mask->numel == x->numel && C > 1;
	int efull = mfull || (!labels && !pixlevel && C > 1);
	const float *tv = t->data, *mv = mask ? mask->data : NULL;
	/* the checks first, in order (the first bad value is the error) */
	if (mv)
		for (size_t i = 0; i < mask->numel; i++)
			if (mv[i] != 0.0f && mv[i] != 1.0f)
				bad_mask_value(L, fn, mask, i);
	if (!labels && pixlevel && C > 1) /* per pixel: every channel ignored, or none */
		for (size_t n = 0; n < N; n++)
			for (size_t c = 1; c < C; c++)
				for (size_t s = 0; s < M; s++) {
					size_t i = (n * C + c) * M + s, i0 = n * C * M + s;
					if ((tv[i] == ii) != (tv[i0] == ii)) {
						char at[160], at0[160];
						sl_error(L, fn, "option ignore_index %g marks the target at %s but not at %s: "
						         "with activation \"softmax\" or ce, a pixel is ignored in every channel "
						         "or in none", (double)ii,
						         sl_coordstr(t->ndim, t->shape, tv[i] == ii ? i : i0, at, sizeof at),
						         sl_coordstr(t->ndim, t->shape, tv[i] == ii ? i0 : i, at0, sizeof at0));
					}
				}
	int64_t shape[SL_MAXDIM];
	memcpy(shape, x->shape, sizeof shape);
	if (!efull)
		shape[1] = 1;
	sl_tensor *tc = sl_newtensor(L, fn, t->ndim, t->shape);
	sl_tensor *mc = sl_newtensor(L, fn, x->ndim, shape);
	/* then the two tensors, row by row (elementwise: the same bits for any
	 * thread count) */
	size_t CT = labels ? 1 : C, CM = efull ? C : 1, rows = N * (CT > CM ? CT : CM);
	float *to = tc->data, *mo = mc->data;
	sl_exec e = sl_getexec(L);
	int nt = sl_exec_threads(&e, rows * M);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t r = 0; r < rows; r++) {
		size_t n = r / (rows / N), c = r % (rows / N);
		if (c < CT)
			row_clean(tv + (n * CT + c) * M, to + (n * CT + c) * M, M, ii);
		if (c < CM) /* the target's row: its label map, its own channel, or channel 0 */
			row_keep(tv + (labels ? n * M : (n * C + (efull ? c : 0)) * M),
			         mv ? mv + (mfull ? (n * C + c) * M : n * M) : NULL, mo + (n * CM + c) * M, M, ii);
	}
	*tout = tc;
	*mout = mc;
}

/* ---- shapes --------------------------------------------------------- */


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

/* ---- evaluation of one or more parts ----------------------------------- */

/* What a part adds to the run, whatever its kind. */
typedef struct compctx {
	const sl_part *p;
	double weight;             /* the part's weight in the sum */
	const double *cwd;         /* class weights (C), or NULL */
	const double *alist;       /* softmax focal's alpha list (C), or NULL */
	float *cwf, *cwv;          /* per-class factors of the pixel parts */
	size_t C;
	int c0;
	sl_splitpix *split;        /* segloss.core.debug_split: where pixel parts go
	                              to run as generic parts; NULL: they do not */
} compctx;

/* Adds a generic part (loss.h) to the run. */
static void add_generic(lua_State *L, const char *fn, sl_lossrun *run, const compctx *cc,
                        sl_gen_fn eval, const void *ctx, double factor, unsigned flags)
{
	if (run->ngen >= SL_MAXGEN)
		sl_error(L, fn, "a combination takes at most %d parts", SL_MAXREG - 1);
	run->gen[run->ngen++] = (sl_genpart){
		.eval = eval, .opts = cc->p->v, .reduction = cc->p->red, .c0 = cc->c0, .cw = cc->cwd,
		.ctx = ctx, .weight = cc->weight * factor, .factor = factor,
		.spacing = {cc->p->spacing[0], cc->p->spacing[1], cc->p->spacing[2]}, .stores = (flags & SL_LF_GEN_STORE) != 0,
		.atomic = (flags & SL_LF_GEN_STORE) && (flags & SL_LF_GEN_ATOMIC)};
}

/* Adds loss id's components to the run, each with the factor its preset
 * gives it (bce_weight, lambda, ...). */
static void add_comp(lua_State *L, const char *fn, sl_lossrun *run, const compctx *cc, int id, double factor,
                     unsigned ppflags)
{
	const sl_lossdesc *d = &sl_losses[id];
	const sl_part *p = cc->p;
	sl_lossjob *j = &run->job;
	size_t C = cc->C;
	switch (d->kind) {
	case SL_KIND_PRESET:
		for (int i = 0; i < d->nparts; i++) {
			const sl_presetpart *pp = &d->parts[i];
			int wo = pp->weight_opt;
			double w = wo < 0 ? 1.0 : pp->flags & SL_PP_COMPLEMENT ? 1.0 - p->v[wo] : p->v[wo];
			add_comp(L, fn, run, cc, pp->loss, factor * w, pp->flags);
		}
		return;
	case SL_KIND_PIXEL: {
		sl_pixk *px = &j->pix[j->npix];
		sl_pixmeta *pm = &run->pm[j->npix++];
		px->type = d->comp;
		pm->factor = factor;
		pm->weight = cc->weight * factor;
		if (d->comp == SL_PX_BCE) {
			if (ppflags & SL_PP_BETA) { /* combo: beta t log p + (1 - beta)(1 - t) log(1 - p) */
				px->pos_weight = (float)p->v[SL_O_BETA];
				px->neg_weight = (float)(1.0 - p->v[SL_O_BETA]);
			} else {
				px->pos_weight = (float)(p->pos_auto ? 1.0 : p->v[SL_O_POS_WEIGHT]);
				px->neg_weight = 1.0f;
				pm->pos_auto = p->pos_auto;
			}
		} else if (d->comp == SL_PX_FOCAL) {
			px->gamma = (float)p->v[SL_O_GAMMA];
			if (p->act == SL_ACT_SOFTMAX) {
				/* α_c joins the class weight; "none" values keep α but not w */
				if (cc->alist && !p->alpha_off)
					for (size_t c = 0; c < C; c++) {
						cc->cwf[c] = (float)((cc->cwd ? cc->cwd[c] : 1.0) * cc->alist[c]);
						cc->cwv[c] = (float)cc->alist[c];
					}
			} else {
				px->alpha_on = !p->alpha_off;
				px->alpha = (float)p->v[SL_O_ALPHA];
			}
		}
		double ls = p->v[SL_O_LABEL_SMOOTHING];
		if (ls > 0.0) {
			/* t' = t (1 - ε) + ε/K: K = C with softmax, 2 otherwise, as the
			 * contract has it (ce with activation "none" too) */
			double K = p->act == SL_ACT_SOFTMAX ? (double)C : 2.0;
			px->ls = 1;
			px->ls_b = ls / K;
			px->ls_a = 1.0 - ls + px->ls_b;
			px->ls_a1 = ls * ((K - 1.0) / K);
			px->ls_b1 = 1.0 - px->ls_b;
		}
		px->c0 = cc->c0;
		px->cw = cc->cwf;
		px->cwv = cc->cwv;
		pm->reduction = p->red;
		if (cc->split && p->red != SL_RED_NONE && run->ngen < SL_MAXGEN) {
			/* the check of the generic path: the part runs as a generic one */
			sl_splitpix *sp = &cc->split[run->ngen];
			sp->px = *px;
			sp->pm = *pm;
			j->npix--;
			add_generic(L, fn, run, cc, sl_loss_split_eval, sp, factor, 0);
		}
		return;
	}
	case SL_KIND_REGION: {
		sl_regpart *rp = &run->reg[run->nreg++];
		rp->type = d->comp;
		rp->factor = factor;
		rp->weight = cc->weight * factor;
		rp->reduction = p->red;
		rp->batch = p->batch;
		rp->c0 = cc->c0;
		rp->snr = p->v[SL_O_SMOOTH_NR];
		rp->sdr = p->v[SL_O_SMOOTH_DR];
		rp->squared = p->v[SL_O_SQUARED] != 0.0;
		rp->complement = p->v[SL_O_COMPLEMENT] != 0.0;
		rp->soft = p->v[SL_O_SOFT_LABEL] != 0.0;
		rp->empty_complement = p->v[SL_O_EMPTY] != 0.0;
		rp->alpha = p->v[SL_O_ALPHA];
		rp->beta = p->v[SL_O_BETA];
		rp->gamma = p->v[SL_O_GAMMA];
		rp->eps = p->v[SL_O_EPS];
		rp->lambda = p->v[SL_O_LAMBDA];
		rp->w_type = (int)p->v[SL_O_W_TYPE];
		rp->opts = p->v;
		rp->cw = cc->cwd;
		return;
	}
	default: /* SL_KIND_GENERIC */
		add_generic(L, fn, run, cc, d->gen, NULL, factor, d->flags);
		return;
	}
}

/* Adds the components of one part (two for the presets) to the run. */
static void add_part(lua_State *L, const char *fn, sl_lossrun *run, const sl_part *p, double weight,
                     size_t C, float *cwf, float *cwv, sl_splitpix *split)
{
	compctx cc = {p, weight, NULL, NULL, cwf, cwv, C, !p->incl_bg && C >= 2 ? 1 : 0, split};
	cc.cwd = part_list(L, fn, p, SL_LIST_WEIGHT, C);
	cc.alist = part_list(L, fn, p, SL_LIST_ALPHA, C);
	for (size_t c = 0; c < C; c++) {
		cwf[c] = (float)(cc.cwd ? cc.cwd[c] : 1.0);
		cwv[c] = 1.0f;
	}
	if (run->job.npix >= SL_MAXPIX - 1 || run->nreg >= SL_MAXREG - 1 || run->ngen >= SL_MAXGEN - 1)
		sl_error(L, fn, "a combination takes at most %d parts", SL_MAXREG - 1);
	add_comp(L, fn, run, &cc, p->id, 1.0, 0);
}

void sl_eval_prepare(lua_State *L, sl_eval *ev)
{
	char a[160];
	const char *fn = ev->fn;
	const sl_part *const *os = ev->parts;
	int nparts = ev->nparts;
	sl_tensor *x = ev->x, *t = ev->t;
	/* the parts share the activation, eps and mask: one pass computes them */
	int act = os[0]->act;
	double eps = os[0]->v[SL_O_EPS];
	sl_tensor *mask = ev->mask ? ev->mask : os[0]->mask;
	for (int p = 1; p < nparts; p++) {
		if (os[p]->act != act)
			sl_error(L, fn, "the parts of a combination must share the activation (part 1: \"%s\", "
			         "part %d: \"%s\")", sl_activations[act], p + 1, sl_activations[os[p]->act]);
		double e2 = os[p]->v[SL_O_EPS];
		if (e2 != eps)
			sl_error(L, fn, "the parts of a combination must share eps (part 1: %g, part %d: %g)",
			         eps, p + 1, e2);
		if (!ev->mask && os[p]->mask != os[0]->mask)
			sl_error(L, fn, "the parts of a combination must share the mask (part %d has another)",
			         p + 1);
		unsigned ib = A(SL_O_IGNORE_INDEX);
		if ((os[p]->given & ib) != (os[0]->given & ib) ||
		    ((os[0]->given & ib) && os[p]->v[SL_O_IGNORE_INDEX] != os[0]->v[SL_O_IGNORE_INDEX])) {
			char b1[32], b2[32];
			if (os[0]->given & ib)
				snprintf(b1, sizeof b1, "%g", os[0]->v[SL_O_IGNORE_INDEX]);
			else
				snprintf(b1, sizeof b1, "none");
			if (os[p]->given & ib)
				snprintf(b2, sizeof b2, "%g", os[p]->v[SL_O_IGNORE_INDEX]);
			else
				snprintf(b2, sizeof b2, "none");
			sl_error(L, fn, "the parts of a combination must share ignore_index (part 1: %s, part %d: %s)",
			         b1, p + 1, b2);
		}
	}

	/* shapes */
	if (x->ndim < 3 || x->ndim > 5)
		sl_error(L, fn, "input must have 3 to 5 dimensions (N, C, spatial...), got shape %s",
		         sl_shapestr(x->ndim, x->shape, a, sizeof a));
	size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], M = x->numel / (N * C);
	int labels = 0;
	if (!sl_same_shape(x->ndim, x->shape, t->ndim, t->shape)) {
		if (C >= 2 && sl_pixel_shape(x, t))
			labels = 1;
		else
			sl_shape_mismatch(L, fn, "target", t, "input", x->ndim, x->shape,
			                  C >= 2 ? " (nor is it a label map {N,1,...})" : NULL);
	}
	int mask_full = 0;
	if (mask) {
		if (sl_same_shape(x->ndim, x->shape, mask->ndim, mask->shape))
			mask_full = C > 1;
		else if (!sl_pixel_shape(x, mask))
			sl_shape_mismatch(L, fn, "option mask", mask, "input", x->ndim, x->shape,
			                  " (expected {N,1,...} or the input's shape)");
	}
	if (act == SL_ACT_SOFTMAX && C < 2)
		sl_error(L, fn, "activation \"softmax\" needs at least 2 channels, got C = 1");
	if (act == SL_ACT_SOFTMAX && C > SL_MAXC_SOFTMAX)
		sl_error(L, fn, "activation \"softmax\" supports at most %d channels, got %zu",
		         SL_MAXC_SOFTMAX, C);
	for (int p = 0; p < nparts; p++)
		sl_part_check(L, fn, os[p], C, nparts);
	int red = os[0]->red;

	/* out: a tensor of x's shape that shares storage with no input; a
	 * criterion's own buffer that does is replaced by a fresh one */
	int want_grad = ev->want_grad && red != SL_RED_NONE;
	sl_tensor *out = want_grad ? ev->out : NULL;
	if (out) {
		if (!sl_same_shape(x->ndim, x->shape, out->ndim, out->shape))
			sl_shape_mismatch(L, fn, "option out", out, "input", x->ndim, x->shape, NULL);
		int shared = sl_overlaps(out, x) || sl_overlaps(out, t) || (mask && sl_overlaps(out, mask));
		if (shared && ev->scratch_out)
			out = NULL;
		else if (shared)
			sl_error(L, fn, "option out shares storage with %s",
			         sl_overlaps(out, x) ? "the input" : sl_overlaps(out, t) ? "the target" : "the mask");
	}
	/* ignore_index: the run reads a mask and target made for it (the
	 * caller's tensors are left as they are); nothing when it is not given */
	const float *tdata = t->data;
	if (os[0]->given & A(SL_O_IGNORE_INDEX)) {
		int pixlevel = act == SL_ACT_SOFTMAX;
		for (int p = 0; p < nparts; p++)
			pixlevel |= pixel_level_loss(os[p]->id);
		sl_tensor *tc, *mc;
		apply_ignore(L, fn, x, t, mask, labels, pixlevel, (float)os[0]->v[SL_O_IGNORE_INDEX], &tc, &mc);
		tdata = tc->data;
		mask = mc;
		mask_full = mc->numel == x->numel && C > 1;
	}
	ev->out = out;
	ev->want_grad = want_grad;
	ev->mask = mask;
	ev->N = N;
	ev->C = C;
	ev->M = M;
	ev->act = act;
	ev->red = red;
	ev->labels = labels;

	/* the run: every part's components */
	sl_lossrun *run = &ev->run;
	sl_loss_init(run, N, C, M, x->data, tdata, labels, act, (float)eps);
	sl_lossjob *j = &run->job;
	/* real scores with "none" when every part takes them (the Lovász hinge) */
	j->x_real = act == SL_ACT_NONE;
	for (int p = 0; p < nparts; p++) {
		j->x_real &= sl_loss_flag(os[p]->id, SL_LF_REAL_X);
		if (os[p]->nspacing && os[p]->nspacing != x->ndim - 2)
			sl_error(L, fn, "option spacing has %d number%s, the input has %d spatial axes",
			         os[p]->nspacing, os[p]->nspacing == 1 ? "" : "s", x->ndim - 2);
		if (sl_loss_known(os[p]->id) & A(SL_O_SPACING)) { /* distances: the EDT's range */
			size_t sh[3];
			double r[3], diag;
			for (int k = 0; k < x->ndim - 2; k++)
				sh[k] = (size_t)x->shape[2 + k];
			sl_rel_spacing(L, fn, "option spacing", x->ndim - 2, sh, os[p]->spacing, r, &diag);
		}
	}
	j->m = mask ? mask->data : NULL;
	j->mask_full = mask_full;
	run->want_grad = want_grad;
	float *big = NULL;
	if (C > SL_LOCALC) /* per-class arrays of wide inputs, on the Lua stack */
		big = sl_alloc(L, fn, (size_t)nparts * C * 2 * sizeof(float), 0);
	ev->ncomp = 0;
	sl_splitpix *split = sl_getctx(L)->split_pixel ? ev->split : NULL;
	for (int p = 0; p < nparts; p++) {
		int np0 = j->npix, nr0 = run->nreg, ng0 = run->ngen;
		float *cwf = big ? big + (size_t)p * C * 2 : ev->cwbuf[p][0];
		add_part(L, fn, run, os[p], ev->weights[p], C, cwf, big ? cwf + C : ev->cwbuf[p][1], split);
		for (int i = np0; i < j->npix; i++) {
			ev->comp_part[ev->ncomp] = p;
			ev->comp_kind[ev->ncomp++] = i << 2 | SL_COMP_PIXEL;
		}
		for (int i = nr0; i < run->nreg; i++) {
			ev->comp_part[ev->ncomp] = p;
			ev->comp_kind[ev->ncomp++] = i << 2 | SL_COMP_REGION;
		}
		for (int i = ng0; i < run->ngen; i++) {
			ev->comp_part[ev->ncomp] = p;
			ev->comp_kind[ev->ncomp++] = i << 2 | SL_COMP_GENERIC;
		}
	}
	for (int i = 0; i < run->ngen; i++) { /* the spatial shape, for distance maps and pooling */
		sl_genpart *gp = &run->gen[i];
		gp->sdim = x->ndim - 2;
		for (int k = 0; k < 3; k++)
			gp->shape[k] = k < gp->sdim ? (size_t)x->shape[2 + k] : 1;
	}
}

size_t sl_eval_worksize(const sl_eval *ev)
{
	size_t n = ev->N * ev->C * SL_NSTAT;
	for (int i = 0; i < ev->run.nreg; i++)
		n += sl_region_rows(&ev->run.reg[i], ev->N) * sl_region_cols(&ev->run.reg[i], ev->C);
	return n;
}

void sl_eval_run(lua_State *L, sl_eval *ev, double *work)
{
	const char *fn = ev->fn;
	sl_lossrun *run = &ev->run;
	sl_lossjob *j = &run->job;
	size_t N = ev->N, C = ev->C;
	sl_tensor *x = ev->x;

	/* outputs: a "none" tensor, the gradient or the statistics */
	ev->vals = ev->stats = NULL;
	ev->vals_idx = ev->grad_idx = ev->stats_idx = 0;
	sl_regpart *rp0 = run->nreg ? &run->reg[0] : NULL;
	if (ev->red == SL_RED_NONE) {
		int64_t shape[SL_MAXDIM];
		if (rp0) {
			shape[0] = (int64_t)sl_region_rows(rp0, N);
			shape[1] = (int64_t)sl_region_cols(rp0, C);
			ev->vals = sl_newtensor(L, fn, 2, shape);
		} else if (run->ngen) { /* one generic part: its own shape */
			const sl_part *p0 = ev->parts[0];
			int nd = sl_losses[p0->id].gen_shape(x->ndim, x->shape, p0->v, shape);
			ev->vals = sl_newtensor(L, fn, nd, shape);
			run->gen[0].vals = ev->vals->data;
		} else {
			memcpy(shape, x->shape, sizeof shape);
			if (ev->act == SL_ACT_SOFTMAX || j->pix[0].type == SL_PX_CE)
				shape[1] = 1;
			ev->vals = sl_newtensor(L, fn, x->ndim, shape);
			j->out = ev->vals->data;
			j->out_mode = SL_OUT_VALUES;
		}
		ev->vals_idx = lua_gettop(L);
	}
	/* the run's statistics and the region parts' L live in the caller's
	 * memory (Lua-owned: nothing leaks when filling the results raises) */
	run->stats_mem = work;
	double *Lbuf = work + N * C * SL_NSTAT;
	for (int i = 0; i < run->nreg; i++) {
		run->reg[i].L = Lbuf;
		Lbuf += sl_region_rows(&run->reg[i], N) * sl_region_cols(&run->reg[i], C);
	}
	if (ev->stats_only) {
		int64_t shape[2] = {(int64_t)C, SL_NSTAT_PUBLIC};
		ev->stats = sl_newtensor(L, fn, 2, shape);
		ev->stats_idx = lua_gettop(L);
	}
	sl_tensor *g = NULL;
	if (ev->want_grad) {
		if (ev->out) {
			g = ev->out;
			run->out_user = !ev->scratch_out;
			lua_pushvalue(L, ev->out_idx);
		} else {
			g = sl_newtensor(L, fn, x->ndim, x->shape);
		}
		j->out = g->data;
		ev->grad_idx = lua_gettop(L);
	}

	if (ev->stats_only) {
		run->stats_only = 1;
		run->want_grad = 0;
		j->npix = 0;
	}
	sl_exec e = sl_getexec(L);
	int rc = sl_loss_run(&e, run); /* nothing it allocates survives it */
	sl_getctx(L)->gen_ran = run->gen_ran;
	if (g && (rc == SL_OK || !run->out_user))
		sl_touch(g); /* written (a failed run writes only into our own buffers) */
	if (rc != SL_OK)
		sl_loss_raise(L, fn, run, rc, x, ev->t, ev->mask, C);
	if (ev->stats) {
		for (size_t c = 0; c < C; c++)
			for (int k = 0; k < SL_NSTAT_PUBLIC; k++) {
				double v = 0.0;
				for (size_t n = 0; n < N; n++)
					v += run->stats[(n * C + c) * SL_NSTAT + (size_t)k];
				ev->stats->data[c * SL_NSTAT_PUBLIC + (size_t)k] = (float)v;
			}
	} else if (ev->vals && rp0) {
		for (size_t i = 0; i < ev->vals->numel; i++)
			ev->vals->data[i] = (float)rp0->L[i];
	}
}

int sl_eval_push(lua_State *L, sl_eval *ev)
{
	if (ev->stats) {
		lua_pushvalue(L, ev->stats_idx);
		return 1;
	}
	if (ev->red == SL_RED_NONE)
		lua_pushvalue(L, ev->vals_idx);
	else
		lua_pushnumber(L, ev->run.total);
	if (ev->want_grad)
		lua_pushvalue(L, ev->grad_idx);
	else
		lua_pushnil(L);
	return 2;
}

/* segloss.<name>(x, t, opts): compile, then evaluate */
static int loss_call(lua_State *L)
{
	int id = (int)lua_tointeger(L, lua_upvalueindex(2));
	const char *fn = sl_losses[id].fname;
	sl_checknargs(L, fn, 0, 2, 3);
	sl_eval ev;
	ev.fn = fn;
	ev.x = sl_checktensor(L, 1, fn, "input");
	ev.t = sl_checktensor(L, 2, fn, "target");
	lua_settop(L, 3);
	sl_part part;
	sl_part_compile(L, fn, id, 3, &part);
	const sl_part *pp = &part;
	double w = 1.0;
	ev.nparts = 1;
	ev.parts = &pp;
	ev.weights = &w;
	ev.mask = NULL;
	ev.out = part.out;
	ev.out_idx = 0;
	if (part.out) {
		lua_getfield(L, 3, "out");
		ev.out_idx = lua_gettop(L);
	}
	ev.want_grad = part.grad;
	ev.scratch_out = 0;
	ev.stats_only = 0;
	sl_eval_prepare(L, &ev);
	double *work = sl_alloc(L, fn, sl_eval_worksize(&ev) * sizeof(double), 0);
	sl_eval_run(L, &ev, work);
	return sl_eval_push(L, &ev);
}

int sl_loss_find(lua_State *L, int idx)
{
	for (int i = 0; i < SL_L_COUNT; i++)
		if (sl_isstring(L, idx, sl_losses[i].name))
			return i;
	return -1;
}

/* ---- segloss.losses() ---------------------------------------------------- */

static void setstr(lua_State *L, int t, const char *k, const char *v)
{
	if (!v)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, t, k);
}

/* Does loss id (and every part of it) allow activation a? */
static int act_allowed(int id, int a)
{
	const sl_lossdesc *d = &sl_losses[id];
	if (d->acts && !(d->acts & A(a)))
		return 0;
	for (int i = 0; i < d->nparts; i++)
		if (!act_allowed(d->parts[i].loss, a))
			return 0;
	return 1;
}

/* segloss.losses(): one descriptor per loss, a fresh table each call */
static int loss_losses(lua_State *L)
{
	sl_checknargs(L, "segloss.losses", 0, 0, 0);
	lua_createtable(L, SL_L_COUNT, 0);
	for (int id = 0; id < SL_L_COUNT; id++) {
		const sl_lossdesc *d = &sl_losses[id];
		lua_createtable(L, 0, 16);
		int e = lua_gettop(L);
		setstr(L, e, "name", d->name);
		setstr(L, e, "class", d->class_name);
		setstr(L, e, "kind", sl_kind_names[d->kind]);
		setstr(L, e, "paper", d->paper);
		setstr(L, e, "summary", d->summary);
		setstr(L, e, "doc", d->doc);
		setstr(L, e, "usage", d->usage);
		setstr(L, e, "usage_target", d->usage_t);
		setstr(L, e, "none_shape", d->none_shape);
		if (d->flags & SL_LF_PIXEL_MASK) { /* one mask value per pixel (C >= 2) */
			lua_pushboolean(L, 1);
			lua_setfield(L, e, "pixel_mask");
		}
		/* flags the specs and the golden generator act on */
		lua_pushboolean(L, sl_loss_flag(id, SL_LF_REAL_X));
		lua_setfield(L, e, "real_x");   /* activation "none" takes any real x */
		lua_pushboolean(L, sl_loss_flag(id, SL_LF_C1));
		lua_setfield(L, e, "binary");   /* C = 1 only */
		lua_pushboolean(L, sl_loss_flag(id, SL_LF_PIECEWISE));
		lua_setfield(L, e, "piecewise"); /* gradient jumps at ties of sorted terms */
		/* the activations it allows: its own rule and its parts' */
		lua_createtable(L, 3, 0);
		int k = 0;
		for (int a = 0; sl_activations[a]; a++) {
			if (act_allowed(id, a)) {
				lua_pushstring(L, sl_activations[a]);
				lua_rawseti(L, -2, ++k);
			}
		}
		lua_setfield(L, e, "activations");
		if (d->nparts) {
			lua_createtable(L, d->nparts, 0);
			for (int i = 0; i < d->nparts; i++) {
				lua_createtable(L, 0, 2);
				int pt = lua_gettop(L);
				setstr(L, pt, "name", sl_losses[d->parts[i].loss].name);
				if (d->parts[i].weight_opt >= 0)
					setstr(L, pt, "weight", sl_loss_options[d->parts[i].weight_opt].name);
				/* weighed by 1 - the option (combo's dice), and a bce part whose
				 * terms beta weighs (combo's cross-entropy) */
				if (d->parts[i].flags & SL_PP_COMPLEMENT) {
					lua_pushboolean(L, 1);
					lua_setfield(L, pt, "complement");
				}
				if (d->parts[i].flags & SL_PP_BETA) {
					lua_pushboolean(L, 1);
					lua_setfield(L, pt, "beta");
				}
				lua_rawseti(L, -2, i + 1);
			}
			lua_setfield(L, e, "parts");
		}
		lua_createtable(L, 0, SL_O_COUNT);
		unsigned known = sl_loss_known(id);
		sl_optdesc od[SL_O_COUNT];
		sl_loss_optdescs(id, od);
		for (int o = 0; o < SL_O_COUNT; o++) {
			if (!(known & A(o)))
				continue;
			const sl_lossopt *oe = sl_loss_optentry(id, o);
			sl_default none = {SL_DEF_NONE, 0.0, 0};
			sl_default sm = sl_loss_default(id, o, SL_ACT_SOFTMAX), df = sl_loss_default(id, o, SL_ACT_NONE);
			int same = sm.kind == df.kind && sm.v == df.v;
			sl_push_optdesc(L, od, o, sl_loss_opttype(id, o), df, same ? none : sm,
			                oe ? oe->doc : NULL, oe ? oe->refused : NULL);
			/* its place in the table (the order of the reference), and
			 * whether every loss takes it */
			lua_pushinteger(L, o + 1);
			lua_setfield(L, -2, "index");
			if (A(o) & SL_O_SHARED) {
				lua_pushboolean(L, 1);
				lua_setfield(L, -2, "shared");
			}
			lua_setfield(L, -2, sl_loss_options[o].name);
		}
		lua_setfield(L, e, "options");
		lua_rawseti(L, -2, id + 1);
	}
	return 1;
}

void sl_loss_open(lua_State *L, int ctx)
{
	for (int i = 0; i < SL_L_COUNT; i++) {
		lua_pushvalue(L, ctx);
		lua_pushinteger(L, i);
		lua_pushcclosure(L, loss_call, 2);
		lua_setfield(L, -2, sl_losses[i].name);
	}
	lua_pushcfunction(L, loss_losses);
	lua_setfield(L, -2, "losses");
	lua_pushinteger(L, SL_MAXPARTS);
	lua_setfield(L, -2, "max_parts");
}
