/*
 * metrics.c — segloss.metrics in C: the distance transform, and the
 * per-(sample, class) metrics behind segloss.metrics.evaluate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../loss/loss.h"
#include "../metrics/metrics.h"
#include "bind.h"

/* spacing: a list of nd positive finite numbers at idx (or nil: all 1) */
static void get_spacing(lua_State *L, const char *fn, int idx, int nd, double *h)
{
	for (int a = 0; a < nd; a++)
		h[a] = 1.0;
	if (lua_isnoneornil(L, idx))
		return;
	if (lua_type(L, idx) != LUA_TTABLE || (int)lua_rawlen(L, idx) != nd) {
		char d[96];
		sl_error(L, fn, "spacing must be a list of %d numbers (one per spatial axis), got %s", nd,
		         sl_describe(L, idx, d, sizeof d));
	}
	for (int a = 0; a < nd; a++) {
		lua_rawgeti(L, idx, a + 1);
		double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : (double)NAN;
		if (!(v > 0.0 && isfinite(v))) {
			char d[96];
			sl_error(L, fn, "spacing[%d] must be a finite number > 0, got %s", a + 1,
			         sl_describe(L, -1, d, sizeof d));
		}
		h[a] = v;
		lua_pop(L, 1);
	}
}

/* segloss.metrics.distance_transform(mask [, spacing]): for each nonzero
 * voxel the distance to the nearest zero voxel, 0 elsewhere (SciPy's
 * distance_transform_edt); +Inf everywhere if there is no zero voxel. */
static int metrics_edt(lua_State *L)
{
	const char *fn = "segloss.metrics.distance_transform";
	sl_checknargs(L, fn, 0, 1, 2);
	sl_tensor *m = sl_checktensor(L, 1, fn, "mask");
	if (m->ndim > SL_EDT_MAXDIM) {
		char b[160];
		sl_error(L, fn, "mask must have 1 to %d dimensions, got shape %s", SL_EDT_MAXDIM,
		         sl_shapestr(m->ndim, m->shape, b, sizeof b));
	}
	double h[SL_EDT_MAXDIM];
	get_spacing(L, fn, 2, m->ndim, h);
	size_t shape[SL_EDT_MAXDIM];
	for (int a = 0; a < m->ndim; a++)
		shape[a] = (size_t)m->shape[a];
	uint8_t *src = lua_newuserdatauv(L, m->numel, 0);
	double *sq = lua_newuserdatauv(L, m->numel * sizeof(double), 0);
	for (size_t i = 0; i < m->numel; i++) {
		float v = m->data[i];
		if (v != v) {
			char b[160];
			sl_error(L, fn, "mask has nan at %s", sl_coordstr(m->ndim, m->shape, i, b, sizeof b));
		}
		src[i] = v == 0.0f; /* distances to the background */
	}
	sl_tensor *r = sl_newtensor(L, m->ndim, m->shape);
	if (sl_edt_sq(src, m->ndim, shape, h, sq, sl_getctx(L)->threads) != 0)
		sl_error(L, fn, "out of memory");
	for (size_t i = 0; i < m->numel; i++)
		r->data[i] = (float)sqrt(sq[i]);
	return 1;
}

static const char *const acts[] = {"none", "sigmoid", "softmax", NULL};

static void setf(lua_State *L, int t, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, t, k);
}

/* segloss.core.metrics(pred, target, activation, threshold, spacing,
 * tolerance, empty_distance, include_background, distances) ->
 * { N, C, c0, rows = { {n, c, dice, iou, ..., empty = "none"|"both"|"pred"|"target"}, ... } }
 * (called by lua/segloss/metrics.lua, which checks the option table) */
static int core_metrics(lua_State *L)
{
	const char *fn = "segloss.metrics.evaluate";
	sl_tensor *x = sl_checktensor(L, 1, fn, "prediction");
	sl_tensor *t = sl_checktensor(L, 2, fn, "target");
	int act = luaL_checkoption(L, 3, "none", acts);
	double thr = luaL_checknumber(L, 4);
	double tol = luaL_checknumber(L, 6);
	int incl_bg = lua_toboolean(L, 8), want_dist = lua_toboolean(L, 9);
	char a[160], b[160];
	if (x->ndim < 3 || x->ndim > 2 + SL_EDT_MAXDIM)
		sl_error(L, fn, "prediction must have 3 to 5 dimensions (N, C, spatial...), got shape %s",
		         sl_shapestr(x->ndim, x->shape, a, sizeof a));
	size_t N = (size_t)x->shape[0], C = (size_t)x->shape[1], M = x->numel / (N * C);
	int nd = x->ndim - 2, labels = 0;
	if (x->ndim != t->ndim || memcmp(x->shape, t->shape, (size_t)x->ndim * sizeof x->shape[0])) {
		int pix = t->ndim == x->ndim && t->shape[0] == x->shape[0] && t->shape[1] == 1;
		for (int i = 2; pix && i < x->ndim; i++)
			pix = t->shape[i] == x->shape[i];
		if (!(pix && C >= 2))
			sl_error(L, fn, "target shape %s does not match prediction %s%s",
			         sl_shapestr(t->ndim, t->shape, a, sizeof a),
			         sl_shapestr(x->ndim, x->shape, b, sizeof b),
			         C >= 2 ? " (nor is it a label map {N,1,...})" : "");
		labels = 1;
	}
	if (act == SL_ACT_SOFTMAX && C < 2)
		sl_error(L, fn, "activation \"softmax\" needs at least 2 channels, got C = 1");
	double h[SL_EDT_MAXDIM];
	get_spacing(L, fn, 5, nd, h);
	size_t shape[SL_EDT_MAXDIM];
	double diag = 0.0;
	for (int i = 0; i < nd; i++) {
		shape[i] = (size_t)x->shape[i + 2];
		diag += ((double)shape[i] * h[i]) * ((double)shape[i] * h[i]);
	}
	double empty_d = lua_isnil(L, 7) ? sqrt(diag) : lua_tonumber(L, 7);

	/* the binary prediction: argmax (softmax), sigmoid >= thr, or x >= thr */
	sl_tensor *B = sl_newtensor(L, x->ndim, x->shape);
	double logit = log(thr / (1.0 - thr));
	for (size_t n = 0; n < N; n++)
		for (size_t s = 0; s < M; s++) {
			size_t best = 0;
			for (size_t c = 0; c < C; c++) {
				size_t i = (n * C + c) * M + s;
				float v = x->data[i];
				if (!isfinite(v))
					sl_error(L, fn, "prediction has %s at %s", v != v ? "nan" : v > 0 ? "inf" : "-inf",
					         sl_coordstr(x->ndim, x->shape, i, a, sizeof a));
				if (act == SL_ACT_NONE && !(v >= 0.0f && v <= 1.0f)) {
					char d[64];
					sl_error(L, fn, "prediction value %s at %s is outside [0, 1] with activation "
					         "\"none\" (logits? pass activation = \"sigmoid\" or \"softmax\")",
					         sl_numstr((double)v, d, sizeof d),
					         sl_coordstr(x->ndim, x->shape, i, a, sizeof a));
				}
				if (act == SL_ACT_SOFTMAX) {
					if (v > x->data[(n * C + best) * M + s])
						best = c;
				} else {
					B->data[i] = (act == SL_ACT_SIGMOID ? (double)v >= logit : (double)v >= thr)
					                 ? 1.0f : 0.0f;
				}
			}
			if (act == SL_ACT_SOFTMAX)
				for (size_t c = 0; c < C; c++)
					B->data[(n * C + c) * M + s] = c == best ? 1.0f : 0.0f;
		}

	/* a dense target must be binary (a label map is checked by the pass) */
	for (size_t i = 0; i < t->numel && !labels; i++) {
		float v = t->data[i];
		if (v != 0.0f && v != 1.0f) {
			char d[64];
			sl_error(L, fn, "target value %s at %s is not 0 or 1", sl_numstr((double)v, d, sizeof d),
			         sl_coordstr(t->ndim, t->shape, i, a, sizeof a));
		}
	}

	/* overlap: the loss statistics pass on the binary prediction (one pass) */
	sl_lossrun run;
	sl_loss_init(&run, N, C, M, B->data, t->data, labels, SL_ACT_NONE, 1e-7f);
	run.stats_only = 1;
	sl_exec e = sl_getexec(L);
	int rc = sl_loss_run(&e, &run);
	if (rc != SL_OK) /* only a bad label or memory can fail here */
		sl_loss_raise(L, fn, &run, rc, B, t, NULL, C);
	double *st = run.stats;
	lua_createtable(L, 0, 4);
	int res = lua_gettop(L);
	lua_pushinteger(L, (lua_Integer)N);
	lua_setfield(L, res, "N");
	lua_pushinteger(L, (lua_Integer)C);
	lua_setfield(L, res, "C");
	size_t c0 = !incl_bg && C >= 2 ? 1 : 0;
	lua_pushinteger(L, (lua_Integer)c0);
	lua_setfield(L, res, "c0");
	setf(L, res, "empty_distance", empty_d);
	lua_createtable(L, (int)(N * (C - c0)), 0);
	int rows = lua_gettop(L);
	uint8_t *mp = want_dist ? lua_newuserdatauv(L, 2 * M, 0) : NULL, *mt = mp ? mp + M : NULL;
	if (mp)
		lua_insert(L, rows); /* keep it below the rows table */
	rows = lua_gettop(L);
	int k = 0;
	for (size_t n = 0; n < N; n++)
		for (size_t c = c0; c < C; c++) {
			const double *s = st + (n * C + c) * SL_NSTAT;
			double TP = s[SL_S_TP], SP = s[SL_S_SP], ST = s[SL_S_ST], Mv = s[SL_S_M];
			double FP = SP - TP, FN = ST - TP, TN = Mv - SP - ST + TP;
			int pe = SP == 0.0, te = ST == 0.0;
			lua_createtable(L, 0, 18);
			int r = lua_gettop(L);
			lua_pushinteger(L, (lua_Integer)n + 1);
			lua_setfield(L, r, "sample");
			lua_pushinteger(L, (lua_Integer)c);
			lua_setfield(L, r, "class");
			setf(L, r, "tp", TP);
			setf(L, r, "fp", FP);
			setf(L, r, "fn", FN);
			setf(L, r, "tn", TN);
			/* one empty-mask policy: never NaN */
			if (pe && te) {
				setf(L, r, "dice", 1.0);
				setf(L, r, "iou", 1.0);
				setf(L, r, "precision", 1.0);
				setf(L, r, "sensitivity", 1.0);
			} else if (pe || te) {
				setf(L, r, "dice", 0.0);
				setf(L, r, "iou", 0.0);
				setf(L, r, "precision", 0.0);
				setf(L, r, "sensitivity", 0.0);
			} else {
				setf(L, r, "dice", 2.0 * TP / (2.0 * TP + FP + FN));
				setf(L, r, "iou", TP / (TP + FP + FN));
				setf(L, r, "precision", TP / (TP + FP));
				setf(L, r, "sensitivity", TP / (TP + FN));
			}
			setf(L, r, "specificity", TN + FP > 0.0 ? TN / (TN + FP) : 1.0);
			lua_pushstring(L, pe && te ? "both" : pe ? "pred" : te ? "target" : "none");
			lua_setfield(L, r, "empty");
			if (want_dist) {
				for (size_t q = 0; q < M; q++) {
					mp[q] = B->data[(n * C + c) * M + q] != 0.0f;
					mt[q] = labels ? t->data[n * M + q] == (float)c
					               : t->data[(n * C + c) * M + q] != 0.0f;
				}
				sl_surface sd;
				if (sl_surface_distances(mp, mt, nd, shape, h, tol, empty_d, e.threads, &sd) != 0) {
					sl_loss_free(&run);
					sl_error(L, fn, "out of memory");
				}
				setf(L, r, "hd", sd.hd);
				setf(L, r, "hd95", sd.hd95);
				setf(L, r, "assd", sd.assd);
				setf(L, r, "nsd", sd.nsd);
				setf(L, r, "pred_edges", (double)sd.pred_edges);
				setf(L, r, "target_edges", (double)sd.target_edges);
			}
			lua_rawseti(L, rows, ++k);
		}
	sl_loss_free(&run);
	lua_setfield(L, res, "rows");
	lua_pushvalue(L, res);
	return 1;
}

void sl_metrics_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, metrics_edt, 1);
	lua_setfield(L, -2, "distance_transform");
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, core_metrics, 1);
	lua_setfield(L, -2, "metrics");
}
