/*
 * nn.c — the network's kernels in segloss.core: nn_act, nn_maxpool,
 * nn_upsample, nn_norm, nn_concat / nn_split (and their backwards),
 * optim_sgd and optim_adam. The Lua layer (lua/segloss/nn/, optim.lua)
 * allocates the outputs once and passes them in; every argument is checked
 * here before the drivers of nn/layers.h run, and outputs are marked as
 * changed (sl_touch).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../nn/layers.h"
#include "bind.h"

/* ---- argument checks ------------------------------------------------- */

static const char *shp(const sl_tensor *t, char *buf, size_t len)
{
	return sl_shapestr(t->ndim, t->shape, buf, len);
}

/* An activation: a 4-D (N,C,H,W) or 5-D (N,C,D,H,W) tensor. */
static sl_tensor *act_arg(lua_State *L, const char *fn, int idx, const char *what)
{
	sl_tensor *t = sl_checktensor(L, idx, fn, what);
	if (t->ndim != 4 && t->ndim != 5) {
		char b[160];
		sl_error(L, fn, "%s must be a 4-D (N,C,H,W) or 5-D (N,C,D,H,W) tensor, got shape %s", what,
		         shp(t, b, sizeof b));
	}
	return t;
}

/* nil (NULL) or a tensor */
static sl_tensor *opt_tensor(lua_State *L, const char *fn, int idx, const char *what)
{
	if (lua_isnil(L, idx))
		return NULL;
	sl_tensor *t = sl_totensor(L, idx);
	if (!t) {
		char d[96];
		sl_error(L, fn, "%s must be a segloss.Tensor or nil, got %s", what,
		         sl_describe(L, idx, d, sizeof d));
	}
	return t;
}

/* t must have the shape of ref */
static void need_same(lua_State *L, const char *fn, const sl_tensor *t, const char *what,
                      const sl_tensor *ref, const char *refwhat)
{
	if (!sl_same_shape(t->ndim, t->shape, ref->ndim, ref->shape))
		sl_shape_mismatch(L, fn, what, t, refwhat, ref->ndim, ref->shape, NULL);
}

/* t must have the given shape; why says where it comes from */
static void need_shape(lua_State *L, const char *fn, const sl_tensor *t, const char *what, int ndim,
                       const int64_t *shape, const char *why)
{
	if (!sl_same_shape(t->ndim, t->shape, ndim, shape)) {
		char a[160], b[160];
		sl_error(L, fn, "%s shape %s must be %s (%s)", what, shp(t, a, sizeof a),
		         sl_shapestr(ndim, shape, b, sizeof b), why);
	}
}

/* out may not share memory with in (exact: `same` allows the very same
 * elements, for elementwise operations) */
static void need_apart(lua_State *L, const char *fn, const sl_tensor *out, const char *wout,
                       const sl_tensor *in, const char *win, int same)
{
	if (!out || !in || !sl_overlaps(out, in))
		return;
	if (same && out->data == in->data && out->numel == in->numel)
		return;
	sl_error(L, fn, "%s must not share memory with %s%s", wout, win,
	         same ? " (except by being the same tensor)" : "");
}

/* a finite number in the range lo..hi (hi = INFINITY: no upper end) that
 * float32 holds */
static double num_arg(lua_State *L, const char *fn, int idx, const char *what, double lo,
                      int lo_open, double hi, int hi_open)
{
	double v = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : (double)NAN;
	int ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi) &&
	         fabs(v) <= (double)FLT_MAX;
	if (!ok) {
		char exp[96], d[96], a[32], b[32];
		if (isinf(hi))
			snprintf(exp, sizeof exp, "a finite number %s %s (within float32)", lo_open ? ">" : ">=",
			         sl_numstr(lo, a, sizeof a));
		else
			snprintf(exp, sizeof exp, "a number in %c%s, %s%c", lo_open ? '(' : '[',
			         sl_numstr(lo, a, sizeof a), sl_numstr(hi, b, sizeof b), hi_open ? ')' : ']');
		sl_error(L, fn, "%s must be %s, got %s", what, exp, sl_describe(L, idx, d, sizeof d));
	}
	return v;
}

static int bool_arg(lua_State *L, const char *fn, int idx, const char *what)
{
	if (lua_type(L, idx) != LUA_TBOOLEAN) {
		char d[96];
		sl_error(L, fn, "%s must be a boolean, got %s", what, sl_describe(L, idx, d, sizeof d));
	}
	return lua_toboolean(L, idx);
}

static int enum_arg(lua_State *L, const char *fn, int idx, const char *what,
                    const char *const *choices)
{
	for (int i = 0; choices[i]; i++)
		if (sl_isstring(L, idx, choices[i]))
			return i;
	char exp[128], d[96];
	size_t n = 0;
	for (int i = 0; choices[i] && n < sizeof exp; i++)
		n += (size_t)snprintf(exp + n, sizeof exp - n, "%s\"%s\"", i ? ", " : "", choices[i]);
	sl_error(L, fn, "%s must be one of %s, got %s", what, exp, sl_describe(L, idx, d, sizeof d));
}

static sl_geom geom_of(const sl_tensor *t)
{
	int five = t->ndim == 5;
	sl_geom g;
	g.planes = (size_t)(t->shape[0] * t->shape[1]);
	g.d = five ? (size_t)t->shape[2] : 1;
	g.h = (size_t)t->shape[t->ndim - 2];
	g.w = (size_t)t->shape[t->ndim - 1];
	g.nd = five ? 3 : 2;
	return g;
}

/* ---- activation -------------------------------------------------------- */

/* nn_act(x, y, slope): y = x > 0 ? x : slope x; y may be x */
static int nn_act(lua_State *L)
{
	const char *fn = "segloss.core.nn_act";
	sl_checknargs(L, fn, 0, 3, 3);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *y = sl_checktensor(L, 2, fn, "y");
	need_same(L, fn, y, "y", x, "x");
	need_apart(L, fn, y, "y", x, "x", 1);
	float slope = (float)num_arg(L, fn, 3, "slope", 0.0, 0, INFINITY, 0);
	sl_exec e = sl_getexec(L);
	sl_nn_act(&e, x->numel, x->data, y->data, slope);
	sl_touch(y);
	return 0;
}

/* nn_act_backward(x, gy, gx, slope): gx = gy (x > 0 ? 1 : slope) */
static int nn_act_backward(lua_State *L)
{
	const char *fn = "segloss.core.nn_act_backward";
	sl_checknargs(L, fn, 0, 4, 4);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *gy = sl_checktensor(L, 2, fn, "gy");
	sl_tensor *gx = sl_checktensor(L, 3, fn, "gx");
	need_same(L, fn, gy, "gy", x, "x");
	need_same(L, fn, gx, "gx", x, "x");
	need_apart(L, fn, gx, "gx", x, "x", 1);
	need_apart(L, fn, gx, "gx", gy, "gy", 1);
	float slope = (float)num_arg(L, fn, 4, "slope", 0.0, 0, INFINITY, 0);
	sl_exec e = sl_getexec(L);
	sl_nn_act_bwd(&e, x->numel, x->data, gy->data, gx->data, slope);
	sl_touch(gx);
	return 0;
}

/* ---- max pooling ------------------------------------------------------- */

/* k, checked against x's spatial sizes; the pooled shape into out */
static size_t pool_args(lua_State *L, const char *fn, const sl_tensor *x, int idx, int64_t *out)
{
	lua_Integer k = sl_checkint(L, idx, fn, "k", 1, SL_MAXNUMEL);
	out[0] = x->shape[0];
	out[1] = x->shape[1];
	for (int d = 2; d < x->ndim; d++) {
		if (x->shape[d] < k) {
			char b[160];
			sl_error(L, fn, "x shape %s: spatial size %lld is smaller than the window k = %lld",
			         shp(x, b, sizeof b), (long long)x->shape[d], (long long)k);
		}
		out[d] = x->shape[d] / k;
	}
	return (size_t)k;
}

/* nn_maxpool(x, y, k) */
static int nn_maxpool(lua_State *L)
{
	const char *fn = "segloss.core.nn_maxpool";
	sl_checknargs(L, fn, 0, 3, 3);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *y = sl_checktensor(L, 2, fn, "y");
	int64_t ys[SL_MAXDIM];
	size_t k = pool_args(L, fn, x, 3, ys);
	need_shape(L, fn, y, "y", x->ndim, ys, "x pooled by k, floor");
	need_apart(L, fn, y, "y", x, "x", 0);
	sl_exec e = sl_getexec(L);
	sl_geom g = geom_of(x);
	sl_nn_maxpool(&e, &g, k, x->data, y->data);
	sl_touch(y);
	return 0;
}

/* nn_maxpool_backward(x, gy, gx, k) */
static int nn_maxpool_backward(lua_State *L)
{
	const char *fn = "segloss.core.nn_maxpool_backward";
	sl_checknargs(L, fn, 0, 4, 4);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *gy = sl_checktensor(L, 2, fn, "gy");
	sl_tensor *gx = sl_checktensor(L, 3, fn, "gx");
	int64_t ys[SL_MAXDIM];
	size_t k = pool_args(L, fn, x, 4, ys);
	need_shape(L, fn, gy, "gy", x->ndim, ys, "x pooled by k, floor");
	need_same(L, fn, gx, "gx", x, "x");
	need_apart(L, fn, gx, "gx", x, "x", 0);
	need_apart(L, fn, gx, "gx", gy, "gy", 0);
	sl_exec e = sl_getexec(L);
	sl_geom g = geom_of(x);
	sl_nn_maxpool_bwd(&e, &g, k, x->data, gy->data, gx->data);
	sl_touch(gx);
	return 0;
}

/* ---- upsampling -------------------------------------------------------- */

static const char *const up_modes[] = {"nearest", "linear", NULL};
#define MAX_SCALE 64

/* mode and scale at idx, idx + 1; the upsampled shape of the small tensor */
static int up_args(lua_State *L, const char *fn, const sl_tensor *small, int idx, size_t *scale,
                   int64_t *big)
{
	int mode = enum_arg(L, fn, idx, "mode", up_modes);
	lua_Integer s = sl_checkint(L, idx + 1, fn, "scale", 1, MAX_SCALE);
	big[0] = small->shape[0];
	big[1] = small->shape[1];
	for (int d = 2; d < small->ndim; d++)
		big[d] = small->shape[d] * s;
	sl_checksize(L, fn, small->ndim, big);
	*scale = (size_t)s;
	return mode == 0 ? SL_UP_NEAREST : SL_UP_LINEAR;
}

/* nn_upsample(x, y, mode, scale) */
static int nn_upsample(lua_State *L)
{
	const char *fn = "segloss.core.nn_upsample";
	sl_checknargs(L, fn, 0, 4, 4);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *y = sl_checktensor(L, 2, fn, "y");
	int64_t ys[SL_MAXDIM];
	size_t s;
	int mode = up_args(L, fn, x, 3, &s, ys);
	need_shape(L, fn, y, "y", x->ndim, ys, "x's spatial sizes times scale");
	need_apart(L, fn, y, "y", x, "x", 0);
	sl_exec e = sl_getexec(L);
	sl_geom g = geom_of(x);
	if (sl_nn_upsample(&e, &g, mode, s, x->data, y->data) != 0)
		sl_error(L, fn, "out of memory");
	sl_touch(y);
	return 0;
}

/* nn_upsample_backward(gy, gx, mode, scale) */
static int nn_upsample_backward(lua_State *L)
{
	const char *fn = "segloss.core.nn_upsample_backward";
	sl_checknargs(L, fn, 0, 4, 4);
	sl_tensor *gy = act_arg(L, fn, 1, "gy"), *gx = act_arg(L, fn, 2, "gx");
	int64_t ys[SL_MAXDIM];
	size_t s;
	int mode = up_args(L, fn, gx, 3, &s, ys);
	need_shape(L, fn, gy, "gy", gx->ndim, ys, "gx's spatial sizes times scale");
	need_apart(L, fn, gx, "gx", gy, "gy", 0);
	sl_exec e = sl_getexec(L);
	sl_geom g = geom_of(gx);
	if (sl_nn_upsample_bwd(&e, &g, mode, s, gy->data, gx->data) != 0)
		sl_error(L, fn, "out of memory");
	sl_touch(gx);
	return 0;
}

/* ---- normalisation ----------------------------------------------------- */

static const char *const norm_modes[] = {"batch", "instance", "batch_eval", NULL};

/* a (C) tensor or nil */
static sl_tensor *vec_arg(lua_State *L, const char *fn, int idx, const char *what, int64_t n,
                          const char *why, int required)
{
	sl_tensor *t = required ? sl_checktensor(L, idx, fn, what) : opt_tensor(L, fn, idx, what);
	if (t)
		need_shape(L, fn, t, what, 1, &n, why);
	return t;
}

/* The mode at mode_idx and x's sizes into j (zeroed first), and the
 * statistics save_mean, save_invstd at stat_idx and stat_idx + 1: one per
 * channel, or one per (sample, channel) for "instance". */
static void norm_job(lua_State *L, const char *fn, const sl_tensor *x, int mode_idx, int stat_idx,
                     sl_normjob *j, sl_tensor **sm, sl_tensor **si)
{
	memset(j, 0, sizeof *j);
	j->mode = enum_arg(L, fn, mode_idx, "mode", norm_modes);
	j->N = (size_t)x->shape[0];
	j->C = (size_t)x->shape[1];
	j->M = x->numel / (j->N * j->C);
	int inst = j->mode == SL_NORM_INSTANCE;
	int64_t n = inst ? x->shape[0] * x->shape[1] : x->shape[1];
	const char *why = inst ? "N*C: one per sample and channel of x" : "one per channel of x";
	*sm = vec_arg(L, fn, stat_idx, "save_mean", n, why, 1);
	*si = vec_arg(L, fn, stat_idx + 1, "save_invstd", n, why, 1);
}

/* nn_norm(x, y, mode, eps, weight, bias, save_mean, save_invstd,
 * running_mean, running_var, momentum) */
static int nn_norm(lua_State *L)
{
	const char *fn = "segloss.core.nn_norm";
	sl_checknargs(L, fn, 0, 8, 11);
	lua_settop(L, 11);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *y = sl_checktensor(L, 2, fn, "y");
	need_same(L, fn, y, "y", x, "x");
	need_apart(L, fn, y, "y", x, "x", 1);
	sl_normjob j;
	sl_tensor *sm, *si;
	norm_job(L, fn, x, 3, 7, &j, &sm, &si);
	j.eps = num_arg(L, fn, 4, "eps", 0.0, 1, INFINITY, 0);
	int64_t C = x->shape[1];
	int inst = j.mode == SL_NORM_INSTANCE;
	sl_tensor *w = vec_arg(L, fn, 5, "weight", C, "one per channel of x", 0);
	sl_tensor *b = vec_arg(L, fn, 6, "bias", C, "one per channel of x", 0);
	sl_tensor *rm = vec_arg(L, fn, 9, "running_mean", C, "one per channel of x", 0);
	sl_tensor *rv = vec_arg(L, fn, 10, "running_var", C, "one per channel of x", 0);
	if (!rm != !rv)
		sl_error(L, fn, "running_mean and running_var must be given together (one is nil)");
	if (inst && rm)
		sl_error(L, fn, "mode \"instance\" keeps no running statistics: running_mean and "
		         "running_var must be nil");
	if (j.mode == SL_NORM_EVAL && !rm)
		sl_error(L, fn, "mode \"batch_eval\" needs running_mean and running_var, got nil");
	j.momentum = 0.0;
	if (j.mode == SL_NORM_BATCH && rm)
		j.momentum = num_arg(L, fn, 11, "momentum", 0.0, 0, 1.0, 0);
	else if (!lua_isnil(L, 11))
		num_arg(L, fn, 11, "momentum", 0.0, 0, 1.0, 0);
	if (j.mode == SL_NORM_BATCH && j.N * j.M < 2)
		sl_error(L, fn, "mode \"batch\" needs more than 1 value per channel, got x shape %s",
		         shp(x, (char[160]){0}, 160));
	if (inst && j.M < 2)
		sl_error(L, fn, "mode \"instance\" needs more than 1 spatial element, got x shape %s",
		         shp(x, (char[160]){0}, 160));
	/* outputs apart from every input and from each other */
	const sl_tensor *outs[5] = {y, sm, si, rm, rv};
	const char *onames[5] = {"y", "save_mean", "save_invstd", "running_mean", "running_var"};
	const sl_tensor *ins[3] = {x, w, b};
	const char *inames[3] = {"x", "weight", "bias"};
	for (int i = 1; i < 5; i++) {
		for (int k = 0; k < 3; k++)
			need_apart(L, fn, (sl_tensor *)(uintptr_t)outs[i], onames[i], ins[k], inames[k], 0);
		for (int k = 0; k < i; k++)
			need_apart(L, fn, (sl_tensor *)(uintptr_t)outs[i], onames[i], outs[k], onames[k], 0);
	}
	need_apart(L, fn, y, "y", w, "weight", 0);
	need_apart(L, fn, y, "y", b, "bias", 0);
	j.w = w ? w->data : NULL;
	j.b = b ? b->data : NULL;
	j.mean = sm->data;
	j.invstd = si->data;
	j.rmean = rm ? rm->data : NULL;
	j.rvar = rv ? rv->data : NULL;
	sl_exec e = sl_getexec(L);
	if (sl_nn_norm(&e, &j, x->data, y->data) != 0)
		sl_error(L, fn, "out of memory");
	sl_touch(y);
	sl_touch(sm);
	sl_touch(si);
	if (rm && j.mode == SL_NORM_BATCH) {
		sl_touch(rm);
		sl_touch(rv);
	}
	return 0;
}

/* nn_norm_backward(x, gy, gx, mode, weight, save_mean, save_invstd,
 * gweight, gbias) */
static int nn_norm_backward(lua_State *L)
{
	const char *fn = "segloss.core.nn_norm_backward";
	sl_checknargs(L, fn, 0, 7, 9);
	lua_settop(L, 9);
	sl_tensor *x = act_arg(L, fn, 1, "x"), *gy = sl_checktensor(L, 2, fn, "gy");
	sl_tensor *gx = sl_checktensor(L, 3, fn, "gx");
	need_same(L, fn, gy, "gy", x, "x");
	need_same(L, fn, gx, "gx", x, "x");
	need_apart(L, fn, gx, "gx", x, "x", 1);
	need_apart(L, fn, gx, "gx", gy, "gy", 1);
	sl_normjob j;
	sl_tensor *sm, *si;
	norm_job(L, fn, x, 4, 6, &j, &sm, &si);
	int64_t C = x->shape[1];
	sl_tensor *w = vec_arg(L, fn, 5, "weight", C, "one per channel of x", 0);
	sl_tensor *gw = vec_arg(L, fn, 8, "gweight", C, "one per channel of x", 0);
	sl_tensor *gb = vec_arg(L, fn, 9, "gbias", C, "one per channel of x", 0);
	const sl_tensor *ins[6] = {x, gy, w, sm, si, gx};
	const char *inames[6] = {"x", "gy", "weight", "save_mean", "save_invstd", "gx"};
	for (int k = 0; k < 6; k++) {
		need_apart(L, fn, gw, "gweight", ins[k], inames[k], 0);
		need_apart(L, fn, gb, "gbias", ins[k], inames[k], 0);
	}
	need_apart(L, fn, gb, "gbias", gw, "gweight", 0);
	for (int k = 2; k < 5; k++)
		need_apart(L, fn, gx, "gx", ins[k], inames[k], 0);
	j.w = w ? w->data : NULL;
	j.mean = sm->data;
	j.invstd = si->data;
	sl_exec e = sl_getexec(L);
	if (sl_nn_norm_bwd(&e, &j, x->data, gy->data, gx->data, gw ? gw->data : NULL,
	                   gb ? gb->data : NULL) != 0)
		sl_error(L, fn, "out of memory");
	sl_touch(gx);
	if (gw)
		sl_touch(gw);
	if (gb)
		sl_touch(gb);
	return 0;
}

/* ---- concatenation ----------------------------------------------------- */

/* b must agree with a on every axis but the channels */
static void need_cat(lua_State *L, const char *fn, const sl_tensor *t, const char *what,
                     const sl_tensor *ref, const char *refwhat)
{
	int ok = t->ndim == ref->ndim;
	for (int d = 0; ok && d < t->ndim; d++)
		ok = d == 1 || t->shape[d] == ref->shape[d];
	if (!ok)
		sl_shape_mismatch(L, fn, what, t, refwhat, ref->ndim, ref->shape,
		                  " on every axis but the channels (2)");
}

/* nn_concat(a, b, out): out = cat([a, b], channel axis 2) */
static int nn_concat(lua_State *L)
{
	const char *fn = "segloss.core.nn_concat";
	sl_checknargs(L, fn, 0, 3, 3);
	sl_tensor *a = act_arg(L, fn, 1, "a"), *b = act_arg(L, fn, 2, "b");
	sl_tensor *out = sl_checktensor(L, 3, fn, "out");
	need_cat(L, fn, b, "b", a, "a");
	int64_t os[SL_MAXDIM];
	memcpy(os, a->shape, sizeof os);
	os[1] = a->shape[1] + b->shape[1];
	need_shape(L, fn, out, "out", a->ndim, os, "a and b joined along the channels");
	need_apart(L, fn, out, "out", a, "a", 0);
	need_apart(L, fn, out, "out", b, "b", 0);
	size_t N = (size_t)a->shape[0];
	sl_exec e = sl_getexec(L);
	sl_nn_concat(&e, N, a->numel / N, b->numel / N, a->data, b->data, out->data);
	sl_touch(out);
	return 0;
}

/* nn_split(g, ga, gb): ga, gb = the first and last channels of g (either nil) */
static int nn_split(lua_State *L)
{
	const char *fn = "segloss.core.nn_split";
	sl_checknargs(L, fn, 0, 3, 3);
	sl_tensor *g = act_arg(L, fn, 1, "g");
	sl_tensor *ga = opt_tensor(L, fn, 2, "ga"), *gb = opt_tensor(L, fn, 3, "gb");
	if (!ga && !gb)
		sl_error(L, fn, "ga and gb are both nil: nothing to do");
	if (ga)
		need_cat(L, fn, ga, "ga", g, "g");
	if (gb)
		need_cat(L, fn, gb, "gb", g, "g");
	int64_t Cg = g->shape[1], Ca = ga ? ga->shape[1] : Cg - gb->shape[1];
	int64_t Cb = gb ? gb->shape[1] : Cg - ga->shape[1];
	if (Ca < 1 || Cb < 1 || Ca + Cb != Cg) {
		char s1[160], s2[160], s3[160];
		sl_error(L, fn, "the channels of ga %s and gb %s must add up to those of g %s (%lld)",
		         ga ? shp(ga, s1, sizeof s1) : "nil", gb ? shp(gb, s2, sizeof s2) : "nil",
		         shp(g, s3, sizeof s3), (long long)Cg);
	}
	need_apart(L, fn, ga, "ga", g, "g", 0);
	need_apart(L, fn, gb, "gb", g, "g", 0);
	need_apart(L, fn, gb, "gb", ga, "ga", 0);
	size_t N = (size_t)g->shape[0], M = g->numel / (N * (size_t)Cg);
	sl_exec e = sl_getexec(L);
	sl_nn_split(&e, N, (size_t)Ca * M, (size_t)Cb * M, g->data, ga ? ga->data : NULL,
	            gb ? gb->data : NULL);
	if (ga)
		sl_touch(ga);
	if (gb)
		sl_touch(gb);
	return 0;
}

/* ---- optimisers -------------------------------------------------------- */

/* the state tensors of a parameter p: p's shape, no shared memory */
static void state_args(lua_State *L, const char *fn, sl_tensor **ts, const char **names, int n)
{
	for (int i = 1; i < n; i++)
		if (ts[i])
			need_same(L, fn, ts[i], names[i], ts[0], names[0]);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < i; k++)
			if (ts[i] && ts[k] && sl_overlaps(ts[i], ts[k]))
				sl_error(L, fn, "%s must not share memory with %s", names[i], names[k]);
}

/* optim_sgd(p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first) */
static int nn_optim_sgd(lua_State *L)
{
	const char *fn = "segloss.core.optim_sgd";
	sl_checknargs(L, fn, 0, 9, 9);
	sl_tensor *ts[3] = {sl_checktensor(L, 1, fn, "p"), sl_checktensor(L, 2, fn, "g"),
	                    opt_tensor(L, fn, 3, "buf")};
	const char *names[3] = {"p", "g", "buf"};
	state_args(L, fn, ts, names, 3);
	double lr = num_arg(L, fn, 4, "lr", 0.0, 0, INFINITY, 0);
	double mom = num_arg(L, fn, 5, "momentum", 0.0, 0, INFINITY, 0);
	double damp = num_arg(L, fn, 6, "dampening", 0.0, 0, 1.0, 0);
	int nesterov = bool_arg(L, fn, 7, "nesterov");
	double wd = num_arg(L, fn, 8, "weight_decay", 0.0, 0, INFINITY, 0);
	int first = bool_arg(L, fn, 9, "first");
	if (nesterov && (mom <= 0.0 || damp != 0.0))
		sl_error(L, fn, "nesterov needs momentum > 0 and dampening 0, got momentum %g and "
		         "dampening %g", mom, damp);
	if (mom != 0.0 && !ts[2])
		sl_error(L, fn, "momentum %g needs a buffer: buf must be a tensor, got nil", mom);
	sl_sgd_par o = {.neg_lr = (float)-lr, .wd = (float)wd, .momentum = (float)mom,
	                .one_m_damp = (float)(1.0 - damp), .nesterov = nesterov, .first = first};
	sl_exec e = sl_getexec(L);
	sl_nn_sgd(&e, ts[0]->numel, ts[0]->data, ts[1]->data, mom != 0.0 ? ts[2]->data : NULL, &o);
	sl_touch(ts[0]);
	if (mom != 0.0)
		sl_touch(ts[2]);
	return 0;
}

/* optim_adam(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled) */
static int nn_optim_adam(lua_State *L)
{
	const char *fn = "segloss.core.optim_adam";
	sl_checknargs(L, fn, 0, 11, 11);
	sl_tensor *ts[4] = {sl_checktensor(L, 1, fn, "p"), sl_checktensor(L, 2, fn, "g"),
	                    sl_checktensor(L, 3, fn, "m"), sl_checktensor(L, 4, fn, "v")};
	const char *names[4] = {"p", "g", "m", "v"};
	state_args(L, fn, ts, names, 4);
	lua_Integer step = sl_checkint(L, 5, fn, "step", 1, LUA_MAXINTEGER);
	double lr = num_arg(L, fn, 6, "lr", 0.0, 0, INFINITY, 0);
	double b1 = num_arg(L, fn, 7, "beta1", 0.0, 0, 1.0, 1);
	double b2 = num_arg(L, fn, 8, "beta2", 0.0, 0, 1.0, 1);
	/* at least FLT_MIN: a smaller eps rounds to 0 in float32 and a zero
	 * gradient then gives 0/0 */
	double eps = num_arg(L, fn, 9, "eps", (double)FLT_MIN, 0, INFINITY, 0);
	double wd = num_arg(L, fn, 10, "weight_decay", 0.0, 0, INFINITY, 0);
	int decoupled = bool_arg(L, fn, 11, "decoupled");
	/* bias corrections in double, once per call (torch: 1 - beta ** step) */
	double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
	double neg_step = -lr / bc1, decay = decoupled ? 1.0 - lr * wd : 1.0;
	if (!sl_fits_float(neg_step) || !sl_fits_float(decay))
		sl_error(L, fn, "lr %g is too large for float32 at step %lld (lr / (1 - beta1^step) = %g, "
		         "1 - lr weight_decay = %g)", lr, (long long)step, -neg_step, decay);
	sl_adam_par o = {.decay = (float)decay, .wd = decoupled ? 0.0f : (float)wd,
	                 .beta1 = (float)b1, .one_m_beta1 = (float)(1.0 - b1),
	                 .beta2 = (float)b2, .one_m_beta2 = (float)(1.0 - b2),
	                 .bc2_sqrt = (float)sqrt(bc2), .eps = (float)eps, .neg_step = (float)neg_step};
	sl_exec e = sl_getexec(L);
	sl_nn_adam(&e, ts[0]->numel, ts[0]->data, ts[1]->data, ts[2]->data, ts[3]->data, &o);
	sl_touch(ts[0]);
	sl_touch(ts[2]);
	sl_touch(ts[3]);
	return 0;
}

static const luaL_Reg funcs[] = {
	{"nn_act", nn_act},
	{"nn_act_backward", nn_act_backward},
	{"nn_maxpool", nn_maxpool},
	{"nn_maxpool_backward", nn_maxpool_backward},
	{"nn_upsample", nn_upsample},
	{"nn_upsample_backward", nn_upsample_backward},
	{"nn_norm", nn_norm},
	{"nn_norm_backward", nn_norm_backward},
	{"nn_concat", nn_concat},
	{"nn_split", nn_split},
	{"optim_sgd", nn_optim_sgd},
	{"optim_adam", nn_optim_adam},
	{NULL, NULL},
};

void sl_nn_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, funcs, 1);
}
