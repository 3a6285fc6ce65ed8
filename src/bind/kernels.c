/*
 * kernels.c — the loss kernels seen from Lua, for specs and benchmarks:
 * segloss.core.loss_variants() lists the current backend's SIMD variants
 * (loss_variants.inc) with their call counts, segloss.core.loss_fused
 * runs its fused pass on a job described in Lua, without the driver, so
 * that a spec can set what no public function sets yet (accumulate), and
 * segloss.core.vmath_map applies one vector function into a given tensor
 * (what make bench compares the pixel losses with).
 */
#include <float.h>
#include <string.h>

#include "../loss/loss.h"
#include "../loss/registry.h"
#include "bind.h"

/* segloss.core.loss_variants() -> {{name, kind, act, labels, mask, full, bce,
 * storep, storez, region, pixel, fromp, fromz, calls}, ..., missed = n}: the variants of
 * the current backend's loss kernels and how often each ran since the
 * module was loaded (in this process); missed counts the jobs that found
 * none and ran the scalar kernel. An empty list for scalar. */
static int kernels_loss_variants(lua_State *L)
{
	static const char *const acts[] = {"none", "sigmoid", "softmax"};
	static const char *const pxms[] = {"none", "bce", "focal2", "other"};
	sl_checknargs(L, "segloss.core.loss_variants", 0, 0, 0);
	const sl_lossvars *lv = sl_getctx(L)->kern->loss_variants;
	int n = lv ? lv->n : 0;
	lua_createtable(L, n, 1);
	for (int i = 0; i < n; i++) {
		const sl_lossvar *v = &lv->v[i];
		const char *const flags[] = {"labels", "mask", "full",   "bce",   "storep",
		                             "storez", "region", "fromp", "fromz"};
		const int vals[] = {v->labels, v->mask, v->full,  v->bce,  v->storep,
		                    v->storez, v->reg,  v->fromp, v->fromz};
		lua_createtable(L, 0, 14);
		lua_pushstring(L, v->name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, v->kind == SL_VAR_STATS ? "stats" : "fused");
		lua_setfield(L, -2, "kind");
		lua_pushstring(L, acts[v->act]);
		lua_setfield(L, -2, "act");
		for (int k = 0; k < 9; k++) {
			lua_pushboolean(L, vals[k]);
			lua_setfield(L, -2, flags[k]);
		}
		lua_pushstring(L, pxms[v->pxm]);
		lua_setfield(L, -2, "pixel");
		lua_pushinteger(L, (lua_Integer)__atomic_load_n(&lv->calls[i], __ATOMIC_RELAXED));
		lua_setfield(L, -2, "calls");
		lua_rawseti(L, -2, i + 1);
	}
	lua_pushinteger(L, lv ? (lua_Integer)__atomic_load_n(&lv->calls[n], __ATOMIC_RELAXED) : 0);
	lua_setfield(L, -2, "missed");
	return 1;
}

/* field k of the table at idx onto the stack, without metamethods (so that
 * no Lua code runs and what the table holds stays alive); returns its type */
static int field(lua_State *L, int idx, const char *k)
{
	lua_pushstring(L, k);
	return lua_rawget(L, idx < 0 ? idx - 1 : idx);
}

static void need_table(lua_State *L, const char *fn, int idx, const char *what)
{
	if (!lua_istable(L, idx)) {
		char d[96];
		sl_error(L, fn, "%s must be a table, got %s", what, sl_describe(L, idx, d, sizeof d));
	}
}

static double num_field(lua_State *L, const char *fn, int idx, const char *k, double dflt,
                        double lo, double hi)
{
	double v = dflt;
	if (field(L, idx, k) != LUA_TNIL)
		v = sl_optnum(L, fn, k, lua_gettop(L), lo, 0, hi, 0);
	lua_pop(L, 1);
	return v;
}

static int bool_field(lua_State *L, const char *fn, int idx, const char *k)
{
	int v = 0;
	if (field(L, idx, k) != LUA_TNIL)
		v = sl_optbool(L, fn, k, lua_gettop(L));
	lua_pop(L, 1);
	return v;
}

/* an optional tensor field, left on the stack (nil or the tensor) */
static sl_tensor *tensor_field(lua_State *L, const char *fn, int idx, const char *k)
{
	if (field(L, idx, k) == LUA_TNIL)
		return NULL;
	return sl_checktensor(L, lua_gettop(L), fn, k);
}

/* segloss.core.loss_fused(x, t, job) -> {v_1, ..., v_npix}: one fused pass
 * of the current backend over every task, in order, on one thread (what
 * the driver's PASS_FUSED does) with out_mode SL_OUT_GRAD; returns each
 * pixel part's Σ w_c m ℓ. job = {act = "none" | "sigmoid" | "softmax",
 * eps = 1e-7, mask = tensor, coef = tensor (N, C, 3 or 6), pix = {{type =
 * the name of a pixel loss of the registry (bce...), c0 = 0, scale = 1,
 * pos_weight = 1, neg_weight = 1, gamma = 2, alpha = [0, 1] (focal with sigmoid or "none"), weight =
 * tensor (C)},
 * ...}, out = tensor (x's shape), accumulate = false, dry = false, check =
 * false (the pass validates x, t and the mask)}. t is x's shape or a label
 * map (N, 1, ...). A bad input or gradient is an error naming its kind and
 * flat index. */
static int kernels_loss_fused(lua_State *L)
{
	static const char *const acts[] = {"none", "sigmoid", "softmax", NULL};
	/* the pixel components, named by the registry's losses of pixel kind */
	const char *types[SL_L_COUNT + 1] = {0};
	int comp_of[SL_L_COUNT], ntypes = 0;
	for (int l = 0; l < SL_L_COUNT; l++)
		if (sl_losses[l].kind == SL_KIND_PIXEL) {
			comp_of[ntypes] = sl_losses[l].comp;
			types[ntypes++] = sl_losses[l].name;
		}
	const char *fn = "segloss.core.loss_fused";
	char a[160];
	sl_checknargs(L, fn, 0, 3, 3);
	sl_tensor *x = sl_checktensor(L, 1, fn, "input");
	sl_tensor *t = sl_checktensor(L, 2, fn, "target");
	need_table(L, fn, 3, "job");
	luaL_checkstack(L, 2 * SL_MAXPIX + 8, fn);
	if (x->ndim < 3)
		sl_error(L, fn, "input must have 3 to 5 dimensions, got %s",
		         sl_shapestr(x->ndim, x->shape, a, sizeof a));
	size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], M = x->numel / (N * C);

	sl_lossjob j = {0};
	j.N = N;
	j.C = C;
	j.M = M;
	j.x = x->data;
	j.t = t->data;
	if (!sl_same_shape(x->ndim, x->shape, t->ndim, t->shape)) {
		if (!(C >= 2 && sl_pixel_shape(x, t)))
			sl_shape_mismatch(L, fn, "target", t, "input", x->ndim, x->shape, NULL);
		j.labels = 1;
	}
	field(L, 3, "act");
	j.act = sl_optenum(L, fn, "act", lua_gettop(L), acts);
	lua_pop(L, 1);
	if (j.act == SL_ACT_SOFTMAX && (C < 2 || C > SL_MAXC_SOFTMAX))
		sl_error(L, fn, "softmax needs 2 to %d channels, got %zu", SL_MAXC_SOFTMAX, C);
	j.eps = (float)num_field(L, fn, 3, "eps", 1e-7, 0x1p-126, 0.5);
	j.accumulate = bool_field(L, fn, 3, "accumulate");
	j.dry = bool_field(L, fn, 3, "dry");
	j.fused_check_x = j.fused_check_t = bool_field(L, fn, 3, "check");
	j.out_mode = SL_OUT_GRAD;

	sl_tensor *m = tensor_field(L, fn, 3, "mask");
	if (m) {
		if (sl_same_shape(x->ndim, x->shape, m->ndim, m->shape))
			j.mask_full = C > 1;
		else if (!sl_pixel_shape(x, m))
			sl_shape_mismatch(L, fn, "mask", m, "input", x->ndim, x->shape, NULL);
		j.m = m->data;
	}
	sl_tensor *out = tensor_field(L, fn, 3, "out");
	if (!out)
		sl_error(L, fn, "job.out must be a tensor of the input's shape");
	if (!sl_same_shape(x->ndim, x->shape, out->ndim, out->shape))
		sl_shape_mismatch(L, fn, "out", out, "input", x->ndim, x->shape, NULL);
	if (sl_overlaps(out, x) || sl_overlaps(out, t) || (m && sl_overlaps(out, m)))
		sl_error(L, fn, "out shares storage with an input");
	j.out = out->data;
	sl_tensor *coef = tensor_field(L, fn, 3, "coef");
	if (coef) {
		if (coef->ndim != 3 || (size_t)coef->shape[0] != N || (size_t)coef->shape[1] != C ||
		    (coef->shape[2] != SL_NK_BASIC && coef->shape[2] != SL_NK))
			sl_error(L, fn, "coef must have shape {%zu,%zu,%d} or {%zu,%zu,%d}, got %s", N, C,
			         SL_NK_BASIC, N, C, SL_NK, sl_shapestr(coef->ndim, coef->shape, a, sizeof a));
		j.coef = coef->data;
		j.coef_full = coef->shape[2] == SL_NK;
	}

	if (field(L, 3, "pix") != LUA_TNIL) {
		int pt = lua_gettop(L);
		need_table(L, fn, pt, "job.pix");
		lua_Integer np = (lua_Integer)lua_rawlen(L, pt);
		if (np > SL_MAXPIX)
			sl_error(L, fn, "at most %d pixel parts, got %lld", SL_MAXPIX, (long long)np);
		for (int i = 0; i < (int)np; i++) {
			sl_pixk *px = &j.pix[i];
			lua_rawgeti(L, pt, i + 1);
			int e = lua_gettop(L);
			need_table(L, fn, e, "a pixel part");
			field(L, e, "type");
			int ti = sl_optenum(L, fn, "type", lua_gettop(L), types);
			px->type = comp_of[ti];
			lua_pop(L, 1);
			if ((px->type == SL_PX_BCE && j.act == SL_ACT_SOFTMAX) ||
			    (px->type == SL_PX_CE && j.act == SL_ACT_SIGMOID))
				sl_error(L, fn, "pixel part %d: %s with activation %s", i + 1, types[ti],
				         acts[j.act]);
			double c0 = num_field(L, fn, e, "c0", 0, 0, (double)C);
			if (c0 != (double)(int)c0)
				sl_error(L, fn, "pixel part %d: c0 must be an integer, got %g", i + 1, c0);
			px->c0 = (int)c0;
			px->scale = (float)num_field(L, fn, e, "scale", 1, -FLT_MAX, FLT_MAX);
			px->pos_weight = (float)num_field(L, fn, e, "pos_weight", 1, 0, FLT_MAX);
			px->neg_weight = (float)num_field(L, fn, e, "neg_weight", 1, 0, FLT_MAX);
			px->gamma = (float)num_field(L, fn, e, "gamma", 2, 0, 100);
			if (field(L, e, "alpha") != LUA_TNIL) {
				px->alpha = (float)sl_optnum(L, fn, "alpha", lua_gettop(L), 0, 0, 1, 0);
				px->alpha_on = j.act != SL_ACT_SOFTMAX;
			}
			lua_pop(L, 1);
			sl_tensor *w = tensor_field(L, fn, e, "weight");
			if (w) {
				if (w->numel != C)
					sl_error(L, fn, "pixel part %d: weight must have %zu elements, got %zu", i + 1,
					         C, w->numel);
				px->cw = px->cwv = w->data;
			}
			/* the part and its weight tensor stay on the stack */
			j.npix = i + 1;
		}
	}

	sl_exec e = sl_getexec(L);
	size_t bs = sl_loss_block(C), per = (M + bs - 1) / bs;
	double tot[SL_MAXPIX] = {0};
	for (size_t task = 0; task < N * per; task++) {
		size_t n = task / per, s0 = (task % per) * bs, s1 = s0 + bs < M ? s0 + bs : M;
		double v[SL_MAXPIX] = {0};
		sl_bad bad = {SL_BAD_NONE, 0, 0.0f};
		e.k->loss_fused(&j, n, s0, s1, v, &bad);
		if (bad.kind != SL_BAD_NONE) {
			char b[64];
			sl_error(L, fn, "bad element of kind %d at flat index %zu (value %s)", bad.kind,
			         bad.index, sl_numstr((double)bad.value, b, sizeof b));
		}
		for (int i = 0; i < j.npix; i++)
			tot[i] += v[i];
	}
	if (!j.dry)
		sl_touch(out);
	lua_createtable(L, j.npix, 0);
	for (int i = 0; i < j.npix; i++) {
		lua_pushnumber(L, tot[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* segloss.core.vmath_map(fn, x, y [, g]): y = fn(x) elementwise with the
 * current backend's vector function fn ("exp", "log", "log1p", "sigmoid",
 * "softplus", or "pow" with exponent g >= 0), into y of x's size (y may be
 * x), on the context's threads: what the loss kernels' arithmetic costs
 * without a loss around it, for make bench. */
static int kernels_vmath_map(lua_State *L)
{
	static const char *const fns[] = {"exp", "log", "log1p", "sigmoid", "softplus", "pow", NULL};
	const char *fn = "segloss.core.vmath_map";
	sl_checknargs(L, fn, 0, 3, 4);
	int f = sl_optenum(L, fn, "function", 1, fns);
	sl_tensor *x = sl_checktensor(L, 2, fn, "x");
	sl_tensor *y = sl_checktensor(L, 3, fn, "y");
	if (y->numel != x->numel)
		sl_error(L, fn, "y must have the %zu elements of x, got %zu", x->numel, y->numel);
	if (y->data != x->data && sl_overlaps(x, y))
		sl_error(L, fn, "y overlaps x without being x");
	sl_exec e = sl_getexec(L);
	if (f == 5) {
		double g = sl_checknum(L, 4, fn, "exponent", 1);
		if (!(g >= 0.0 && g <= 0x1p24))
			sl_error(L, fn, "exponent must be in [0, 2^24], got %g", g);
		sl_op_pow(&e, x->numel, x->data, (float)g, y->data);
	} else {
		const sl_unary_fn maps[] = {e.k->exp, e.k->log, e.k->log1p, e.k->sigmoid, e.k->softplus};
		sl_op_map(&e, maps[f], x->numel, x->data, y->data);
	}
	sl_touch(y);
	return 0;
}

void sl_kernels_open(lua_State *L, int ctx)
{
	static const luaL_Reg fns[] = {
		{"loss_variants", kernels_loss_variants},
		{"loss_fused", kernels_loss_fused},
		{"vmath_map", kernels_vmath_map},
		{NULL, NULL},
	};
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, fns, 1);
}
