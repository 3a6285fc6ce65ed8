/*
 * metrics.c — segloss.metrics in C: the distance transform, and the
 * per-(sample, class) metrics behind segloss.metrics.evaluate with the
 * checks of its arguments and options (through the option walker the
 * losses use, opts.c).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../loss/loss.h"
#include "../metrics/metrics.h"
#include "bind.h"

/* spacing: a list of nd positive finite numbers at idx (idx 0 or nil: all 1) */
static void get_spacing(lua_State *L, const char *fn, int idx, int nd, double *h)
{
	for (int a = 0; a < nd; a++)
		h[a] = 1.0;
	if (idx == 0 || lua_isnoneornil(L, idx))
		return;
	if (lua_type(L, idx) != LUA_TTABLE) {
		char d[96];
		sl_error(L, fn, "spacing must be a list of %d number%s (one per spatial axis), got %s", nd,
		         nd == 1 ? "" : "s", sl_describe(L, idx, d, sizeof d));
	}
	lua_Unsigned len = lua_rawlen(L, idx);
	if (len != (lua_Unsigned)nd)
		sl_error(L, fn, "spacing must have one number per spatial axis: %llu given, %d needed",
		         (unsigned long long)len, nd);
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

/* The spacings relative to the largest (sl_edt_scale) and the image's
 * diagonal, or an error naming the spacing as `what` ("spacing", "option
 * spacing"); shared with the losses that take distances (loss.c). */
double sl_rel_spacing(lua_State *L, const char *fn, const char *what, int nd, const size_t *shape,
                      const double *h, double *r, double *diag)
{
	double scale;
	if (sl_edt_scale(nd, shape, h, r, &scale, diag) != 0) {
		char b[160], v[64];
		size_t n = (size_t)snprintf(b, sizeof b, "{");
		for (int a = 0; a < nd && n < sizeof b; a++)
			n += (size_t)snprintf(b + n, sizeof b - n, "%s%s", a ? ", " : "", sl_numstr(h[a], v, sizeof v));
		if (n < sizeof b)
			snprintf(b + n, sizeof b - n, "}");
		sl_error(L, fn, "%s %s is out of range: two axes' spacings may differ by a factor of at "
		         "most 2^500 (about 3e150), and the image's diagonal must be a finite number", what, b);
	}
	return scale;
}

/* segloss.metrics.distance_transform(mask [, spacing]): for each nonzero
 * voxel the distance to the nearest zero voxel, 0 elsewhere (SciPy's
 * distance_transform_edt); +Inf everywhere if there is no zero voxel. */
static int metrics_distance_transform(lua_State *L)
{
	const char *fn = "segloss.metrics.distance_transform";
	sl_checknargs(L, fn, 0, 1, 2);
	sl_tensor *m = sl_checktensor(L, 1, fn, "mask");
	if (m->ndim > SL_EDT_MAXDIM) {
		char b[160];
		sl_error(L, fn, "mask must have 1 to %d dimensions, got shape %s", SL_EDT_MAXDIM,
		         sl_shapestr(m->ndim, m->shape, b, sizeof b));
	}
	double h[SL_EDT_MAXDIM], r[SL_EDT_MAXDIM];
	get_spacing(L, fn, 2, m->ndim, h);
	size_t shape[SL_EDT_MAXDIM];
	for (int a = 0; a < m->ndim; a++)
		shape[a] = (size_t)m->shape[a];
	double diag, scale = sl_rel_spacing(L, fn, "spacing", m->ndim, shape, h, r, &diag);
	/* the result is float32: its smallest nonzero distance (one step along
	 * the finest axis) and its largest (the diagonal) must both fit */
	double hmin = INFINITY;
	for (int a = 0; a < m->ndim; a++)
		if (shape[a] > 1 && h[a] < hmin)
			hmin = h[a];
	if (hmin < (double)FLT_MIN || diag > (double)FLT_MAX) {
		char a[64], b[64];
		sl_error(L, fn, "spacing gives distances from %s to %s, outside the float32 range of the "
		         "result (%g to %g): express the spacing in other units", sl_numstr(hmin, a, sizeof a),
		         sl_numstr(diag, b, sizeof b), (double)FLT_MIN, (double)FLT_MAX);
	}
	uint8_t *src = sl_alloc(L, fn, m->numel, 0);
	double *sq = sl_alloc(L, fn, m->numel * sizeof(double), 0);
	for (size_t i = 0; i < m->numel; i++) {
		float v = m->data[i];
		if (v != v) {
			char b[160];
			sl_error(L, fn, "mask has nan at %s", sl_coordstr(m->ndim, m->shape, i, b, sizeof b));
		}
		src[i] = v == 0.0f; /* distances to the background */
	}
	sl_tensor *res = sl_newtensor(L, fn, m->ndim, m->shape);
	sl_exec e = sl_getexec(L);
	if (sl_edt_sq(src, m->ndim, shape, r, sq, &e) != 0)
		sl_error(L, fn, "out of memory");
	for (size_t i = 0; i < m->numel; i++)
		res->data[i] = (float)(sqrt(sq[i]) * scale);
	return 1;
}

/* The options of segloss.metrics.evaluate, checked by the walker of the
 * losses (opts.c): the same types, ranges and wording. */
enum { MO_ACTIVATION, MO_THRESHOLD, MO_SPACING, MO_TOLERANCE, MO_EMPTY_DISTANCE, MO_INCLUDE_BACKGROUND,
       MO_DISTANCES, MO_CLASSES, MO_COUNT };
static const char *const acts[] = {"none", "sigmoid", "softmax", NULL};
static const sl_optdesc metric_opts[MO_COUNT] = {
	[MO_ACTIVATION] = {"activation", SL_OT_ENUM, acts, 0, 0, 0, 0, NULL, SL_DEFV(SL_ACT_NONE),
	                   "how the prediction is read: probabilities (thresholded), sigmoid logits "
	                   "(thresholded), softmax logits (argmax over C)"},
	[MO_THRESHOLD] = {"threshold", SL_OT_NUMBER, NULL, 0.0, 1.0, 1, 1, NULL, SL_DEFV(0.5),
	                  "probabilities at or above it are foreground"},
	[MO_SPACING] = {"spacing", SL_OT_NUMBERS, NULL, 0, 0, 0, 0, "a list of one number > 0 per spatial axis",
	                SL_DEFTEXT("1 per axis"), "voxel size per spatial axis, in the order of the axes"},
	[MO_TOLERANCE] = {"tolerance", SL_OT_NUMBER, NULL, 0.0, INFINITY, 0, 1, NULL, SL_DEFV(1.0),
	                  "distance (physical units) within which nsd counts a surface voxel"},
	[MO_EMPTY_DISTANCE] = {"empty_distance", SL_OT_NUMBER, NULL, 0.0, INFINITY, 0, 1, NULL,
	                       SL_DEFTEXT("the image diagonal"), "hd, hd95, assd when exactly one mask is empty"},
	[MO_INCLUDE_BACKGROUND] = {"include_background", SL_OT_BOOL, NULL, 0, 0, 0, 0, NULL, SL_DEFV(1),
	                           "false leaves class 0 out (when there are 2 classes or more)"},
	[MO_DISTANCES] = {"distances", SL_OT_BOOL, NULL, 0, 0, 0, 0, NULL, SL_DEFV(1),
	                  "false skips hd, hd95, assd and nsd"},
	[MO_CLASSES] = {"classes", SL_OT_INT, NULL, 2.0, (double)(1 << 24), 0, 0, NULL, SL_DEFTEXT("C"),
	                "the number of classes of a label-map prediction {N,1,...}"},
};

static void setf(lua_State *L, int t, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, t, k);
}

/* segloss.metrics.evaluate(pred, target [, opts]) in C: checks everything
 * and returns { N, C, c0, empty_distance, distances, rows = { {sample,
 * class, dice, iou, ..., empty = "none"|"both"|"pred"|"target"}, ... } },
 * from which lua/segloss/metrics.lua makes the means per class and sample. */
static int metrics_evaluate(lua_State *L)
{
	const char *fn = "segloss.metrics.evaluate";
	sl_checknargs(L, fn, 0, 0, 3);
	lua_settop(L, 3);
	sl_tensor *x = sl_checktensor(L, 1, fn, "prediction");
	sl_tensor *t = sl_checktensor(L, 2, fn, "target");
	sl_optval ov[MO_COUNT];
	sl_opts_walk(L, fn, 3, metric_opts, MO_COUNT, (1u << MO_COUNT) - 1u, ov);
	/* not given: the default (empty_distance: the diagonal, below; classes:
	 * those of the prediction) */
	for (int o = 0; o < MO_COUNT; o++)
		if (!ov[o].given)
			ov[o].num = metric_opts[o].def.kind == SL_DEF_VALUE ? metric_opts[o].def.v : -1.0;
	int act = (int)ov[MO_ACTIVATION].num;
	double thr = ov[MO_THRESHOLD].num, tol = ov[MO_TOLERANCE].num, empty_given = ov[MO_EMPTY_DISTANCE].num;
	int incl_bg = ov[MO_INCLUDE_BACKGROUND].num != 0.0, want_dist = ov[MO_DISTANCES].num != 0.0;
	lua_Integer classes = ov[MO_CLASSES].given ? (lua_Integer)ov[MO_CLASSES].num : 0;
	int spacing_idx = ov[MO_SPACING].given ? ov[MO_SPACING].idx : 0;
	char a[160];
	if (x->ndim < 3 || x->ndim > 2 + SL_EDT_MAXDIM)
		sl_error(L, fn, "prediction must have 3 to 5 dimensions (N, C, spatial...), got shape %s",
		         sl_shapestr(x->ndim, x->shape, a, sizeof a));
	size_t N = (size_t)x->shape[0], Cx = (size_t)x->shape[1], M = x->numel / (N * Cx);
	int pred_labels = classes > 0 && Cx == 1;
	size_t C = pred_labels ? (size_t)classes : Cx;
	if (classes > 0 && !pred_labels && Cx != (size_t)classes)
		sl_error(L, fn, "prediction has %zu channels but option classes is %lld (give a label map "
		         "{N,1,...} or one channel per class)", Cx, (long long)classes);
	if (pred_labels && act != SL_ACT_NONE)
		sl_error(L, fn, "a label-map prediction takes activation \"none\", got \"%s\"", acts[act]);
	int64_t bshape[SL_MAXDIM];
	memcpy(bshape, x->shape, sizeof bshape);
	bshape[1] = (int64_t)C;
	int nd = x->ndim - 2, labels = 0;
	if (!sl_same_shape(x->ndim, bshape, t->ndim, t->shape)) {
		int pix = t->ndim == x->ndim && t->shape[0] == x->shape[0] && t->shape[1] == 1;
		for (int i = 2; pix && i < x->ndim; i++)
			pix = t->shape[i] == x->shape[i];
		if (!(pix && C >= 2))
			sl_shape_mismatch(L, fn, "target", t, "prediction", x->ndim, bshape,
			                  C >= 2 ? " (nor is it a label map {N,1,...})" : NULL);
		labels = 1;
	}
	if (act == SL_ACT_SOFTMAX && C < 2)
		sl_error(L, fn, "activation \"softmax\" needs at least 2 channels, got C = 1");
	double h[SL_EDT_MAXDIM], r[SL_EDT_MAXDIM];
	get_spacing(L, fn, spacing_idx, nd, h);
	size_t shape[SL_EDT_MAXDIM];
	for (int i = 0; i < nd; i++)
		shape[i] = (size_t)x->shape[i + 2];
	double diag, scale = sl_rel_spacing(L, fn, "spacing", nd, shape, h, r, &diag);
	double empty_d = empty_given >= 0.0 ? empty_given : diag;

	/* the binary prediction: one-hot of a label map, argmax (softmax),
	 * sigmoid >= thr, or x >= thr */
	sl_tensor *B = sl_newtensor(L, fn, x->ndim, bshape);
	double logit = log(thr / (1.0 - thr));
	for (size_t n = 0; n < N; n++)
		for (size_t s = 0; s < M; s++) {
			if (pred_labels) {
				size_t i = n * M + s;
				float v = x->data[i];
				if (!(v >= 0.0f && v < (float)C && v == floorf(v))) {
					char d[64];
					sl_error(L, fn, "prediction label %s at %s is not an integer in 0..%zu",
					         sl_numstr((double)v, d, sizeof d),
					         sl_coordstr(x->ndim, x->shape, i, a, sizeof a), C - 1);
				}
				for (size_t c = 0; c < C; c++)
					B->data[(n * C + c) * M + s] = (float)c == v ? 1.0f : 0.0f;
				continue;
			}
			size_t best = 0;
			for (size_t c = 0; c < C; c++) {
				size_t i = (n * C + c) * M + s;
				float v = x->data[i];
				if (!isfinite(v))
					sl_error(L, fn, "prediction has %s at %s", v != v ? "nan" : v > 0 ? "inf" : "-inf",
					         sl_coordstr(x->ndim, x->shape, i, a, sizeof a));
				if (act == SL_ACT_NONE && !(v >= 0.0f && v <= 1.0f)) {
					char d[64];
					int label = C == 1 && v > 1.0f && v == floorf(v);
					sl_error(L, fn, "prediction value %s at %s is outside [0, 1] with activation "
					         "\"none\" (%s)", sl_numstr((double)v, d, sizeof d),
					         sl_coordstr(x->ndim, x->shape, i, a, sizeof a),
					         label ? "logits? pass activation = \"sigmoid\" or \"softmax\"; a label "
					                 "map? pass classes = the number of classes"
					               : "logits? pass activation = \"sigmoid\" or \"softmax\"");
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
	uint8_t *mp = want_dist ? sl_alloc(L, fn, 2 * M, 0) : NULL, *mt = mp ? mp + M : NULL;

	/* overlap: the loss statistics pass on the binary prediction (one pass),
	 * into memory Lua owns, so that nothing leaks if building the result
	 * raises */
	sl_lossrun run;
	sl_loss_init(&run, N, C, M, B->data, t->data, labels, SL_ACT_NONE, 1e-7f);
	run.stats_only = 1;
	run.stats_mem = sl_alloc(L, fn, N * C * SL_NSTAT * sizeof(double), 0);
	sl_exec e = sl_getexec(L);
	int rc = sl_loss_run(&e, &run);
	if (rc != SL_OK) /* only a bad label or memory can fail here */
		sl_loss_raise(L, fn, &run, rc, B, t, NULL, C);
	double *st = run.stats;
	lua_createtable(L, 0, 5);
	int res = lua_gettop(L);
	lua_pushinteger(L, (lua_Integer)N);
	lua_setfield(L, res, "N");
	lua_pushinteger(L, (lua_Integer)C);
	lua_setfield(L, res, "C");
	size_t c0 = !incl_bg && C >= 2 ? 1 : 0;
	lua_pushinteger(L, (lua_Integer)c0);
	lua_setfield(L, res, "c0");
	setf(L, res, "empty_distance", empty_d);
	lua_pushboolean(L, want_dist);
	lua_setfield(L, res, "distances");
	lua_createtable(L, (int)(N * (C - c0)), 0);
	int rows = lua_gettop(L);
	int k = 0;
	for (size_t n = 0; n < N; n++)
		for (size_t c = c0; c < C; c++) {
			const double *sv = st + (n * C + c) * SL_NSTAT;
			double TP = sv[SL_S_TP], SP = sv[SL_S_SP], ST = sv[SL_S_ST], Mv = sv[SL_S_M];
			double FP = SP - TP, FN = ST - TP, TN = Mv - SP - ST + TP;
			int pe = SP == 0.0, te = ST == 0.0;
			lua_createtable(L, 0, 18);
			int row = lua_gettop(L);
			lua_pushinteger(L, (lua_Integer)n + 1);
			lua_setfield(L, row, "sample");
			lua_pushinteger(L, (lua_Integer)c);
			lua_setfield(L, row, "class");
			setf(L, row, "tp", TP);
			setf(L, row, "fp", FP);
			setf(L, row, "fn", FN);
			setf(L, row, "tn", TN);
			/* one empty-mask policy: never NaN */
			if (pe && te) {
				setf(L, row, "dice", 1.0);
				setf(L, row, "iou", 1.0);
				setf(L, row, "precision", 1.0);
				setf(L, row, "sensitivity", 1.0);
			} else if (pe || te) {
				setf(L, row, "dice", 0.0);
				setf(L, row, "iou", 0.0);
				setf(L, row, "precision", 0.0);
				setf(L, row, "sensitivity", 0.0);
			} else {
				setf(L, row, "dice", 2.0 * TP / (2.0 * TP + FP + FN));
				setf(L, row, "iou", TP / (TP + FP + FN));
				setf(L, row, "precision", TP / (TP + FP));
				setf(L, row, "sensitivity", TP / (TP + FN));
			}
			setf(L, row, "specificity", TN + FP > 0.0 ? TN / (TN + FP) : 1.0);
			lua_pushstring(L, pe && te ? "both" : pe ? "pred" : te ? "target" : "none");
			lua_setfield(L, row, "empty");
			if (want_dist) {
				for (size_t q = 0; q < M; q++) {
					mp[q] = B->data[(n * C + c) * M + q] != 0.0f;
					mt[q] = labels ? t->data[n * M + q] == (float)c
					               : t->data[(n * C + c) * M + q] != 0.0f;
				}
				sl_surface sd;
				if (sl_surface_distances(mp, mt, nd, shape, r, scale, tol, empty_d, &e, &sd) != 0)
					sl_error(L, fn, "out of memory");
				setf(L, row, "hd", sd.hd);
				setf(L, row, "hd95", sd.hd95);
				setf(L, row, "assd", sd.assd);
				setf(L, row, "nsd", sd.nsd);
				setf(L, row, "pred_edges", (double)sd.pred_edges);
				setf(L, row, "target_edges", (double)sd.target_edges);
			}
			lua_rawseti(L, rows, ++k);
		}
	lua_setfield(L, res, "rows");
	lua_pushvalue(L, res);
	return 1;
}

void sl_metrics_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, metrics_distance_transform, 1);
	lua_setfield(L, -2, "distance_transform");
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, metrics_evaluate, 1);
	lua_setfield(L, -2, "metrics_evaluate");
}
