/*
 * criterion.c — criteria compiled once (lua/segloss/criterion.lua holds the
 * Lua object, its algebra and schedules; this file its C side).
 *
 * A criterion's parts are compiled when it is built, like LPeg compiling a
 * pattern: core.criterion_new checks the options against the registry,
 * resolves every default and copies the lists into a userdata that only C
 * makes (a "compiled criterion"); the checks that need no data run there
 * too. A step then only checks its tensors and evaluates: no option is
 * parsed, nothing is checked twice, nothing is allocated once shapes are
 * stable. The compiled criterion also keeps what a step needs between
 * calls, out of Lua's reach:
 *
 *   user values 1..SL_MAXPARTS   each part's mask (the tensor given as an option)
 *   UV_GRAD1, UV_GRAD2           the two gradient buffers: each call writes into the
 *                                one it did not hand out last, so that the gradient
 *                                of the last successful call survives a failed one
 *   UV_WORK                      the statistics and region values of a run
 *   UV_LAST                      per part and class, the values behind crit:last()
 *   UV_X, UV_T, UV_M             what the last gradient was computed from (with
 *                                their versions: crit:backward's cache)
 *
 * Everything it owns is inline or in user values: the garbage collector
 * frees it, no __gc is needed. Its metatable is hidden (__metatable) and
 * checked, with a magic number, by every function that takes one.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "part.h"

/* The largest value of a number that the kernels hold as a float32. */
#define FMAX ((double)FLT_MAX)

#define PLAN_MT "segloss.CompiledCriterion"
#define PLAN_MAGIC UINT64_C(0x736c2d636f6d7031)
#define BUFFER_MT "segloss.buffer"

enum {
	UV_GRAD1 = SL_MAXPARTS + 1, UV_GRAD2, UV_WORK, UV_LAST, UV_X, UV_T, UV_M, UV_COUNT = UV_M
};

typedef struct plan {
	uint64_t magic;
	int nparts;
	char fname[48];           /* "segloss.Dice" for one part, else "segloss.Criterion" */
	sl_part part[SL_MAXPARTS];
	double weight[SL_MAXPARTS];
	int slot;                 /* the gradient buffer handed out last (UV_GRAD*), 0: none */
	int cached;               /* UV_X, UV_T, UV_M and the gradient in `slot` are what the
	                             last gradient was computed from */
	uint64_t xv, tv, mv, gv;  /* ... and their versions then */
	int have_last;            /* crit:last(): a call succeeded */
	double total, value[SL_MAXPARTS], weighted[SL_MAXPARTS];
	int has_pc[SL_MAXPARTS];  /* per_class in UV_LAST (rows of last_C) */
	size_t last_C;
	size_t nlist;
	double lists[];           /* the parts' weight and alpha lists */
} plan;

/* The compiled criterion at idx, or an error: only a userdata made here
 * passes (its hidden metatable and its magic number). */
static plan *check_plan(lua_State *L, int idx, const char *fn)
{
	plan *p = luaL_testudata(L, idx, PLAN_MT);
	if (!p || lua_rawlen(L, idx) < sizeof(plan) || p->magic != PLAN_MAGIC) {
		char d[96];
		sl_error(L, fn, "criterion must be a compiled criterion (segloss.core.criterion_new), got %s",
		         sl_describe(L, idx, d, sizeof d));
	}
	return p;
}

/* A userdata for nparts parts and nlist list entries, with the metatable. */
static plan *new_plan(lua_State *L, const char *fn, int nparts, size_t nlist)
{
	plan *p = sl_alloc(L, fn, sizeof(plan) + nlist * sizeof(double), UV_COUNT);
	memset(p, 0, sizeof(plan));
	p->magic = PLAN_MAGIC;
	p->nparts = nparts;
	p->nlist = nlist;
	if (luaL_newmetatable(L, PLAN_MT)) {
		lua_pushliteral(L, PLAN_MT);
		lua_setfield(L, -2, "__name");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable"); /* getmetatable() gives false */
	}
	lua_setmetatable(L, -2);
	return p;
}

/* Part q of the new plan p is src: its lists go into p's memory from
 * offset *used. */
static void put_part(plan *p, int q, const sl_part *src, size_t *used)
{
	p->part[q] = *src;
	for (int k = 0; k < SL_NLIST; k++) {
		if (!src->list[k])
			continue;
		memcpy(p->lists + *used, src->list[k], src->nlist[k] * sizeof(double));
		p->part[q].list[k] = p->lists + *used;
		*used += src->nlist[k];
	}
}

static void set_fname(plan *p)
{
	if (p->nparts == 1)
		snprintf(p->fname, sizeof p->fname, "segloss.%s", sl_losses[p->part[0].id].class_name);
	else
		snprintf(p->fname, sizeof p->fname, "segloss.Criterion");
}

/* The public name the Lua layer passes for the errors of criterion_new and
 * criterion_join: a string "segloss.<printable>" of at most 63 bytes, so that
 * every error, whoever calls segloss.core, names a segloss function. */
static const char *check_fname(lua_State *L, const char *self)
{
	const char *fn = sl_checkstr(L, 1, self, "fname");
	size_t len = strlen(fn);
	int ok = len > 8 && len < 64 && strncmp(fn, "segloss.", 8) == 0;
	for (size_t i = 0; ok && i < len; i++)
		ok = fn[i] > ' ' && fn[i] < 127;
	if (!ok) {
		char d[96];
		sl_error(L, self, "fname must be a public name \"segloss.<name>\" of at most 63 bytes, got %s",
		         sl_describe(L, 1, d, sizeof d));
	}
	return fn;
}

/* segloss.core.criterion_new(fname, name, opts): the loss `name` with its
 * options compiled, every check that needs no data done (errors name
 * fname). */
static int criterion_new(lua_State *L)
{
	const char *fn = check_fname(L, "segloss.core.criterion_new");
	int id = sl_loss_find(L, 2);
	if (id < 0) {
		char d[96];
		sl_error(L, fn, "unknown loss %s", sl_describe(L, 2, d, sizeof d));
	}
	lua_settop(L, 3);
	sl_part part;
	sl_part_compile(L, fn, id, 3, &part);
	sl_part_check(L, fn, &part, 0, 1);
	sl_part_check_entries(L, fn, &part); /* wrong whatever the data */
	size_t n = part.nlist[SL_LIST_WEIGHT] + part.nlist[SL_LIST_ALPHA];
	plan *p = new_plan(L, fn, 1, n);
	size_t used = 0;
	put_part(p, 0, &part, &used);
	set_fname(p);
	if (part.mask) {
		lua_getfield(L, 3, "mask");
		lua_setiuservalue(L, -2, 1);
	}
	return 1;
}

/* segloss.core.criterion_join(fname, a, b, ...): a new compiled criterion
 * with the parts of a, b, ... in order (a + b, and k * a with one). */
static int criterion_join(lua_State *L)
{
	const char *fn = check_fname(L, "segloss.core.criterion_join");
	int top = lua_gettop(L), nparts = 0;
	size_t n = 0;
	for (int i = 2; i <= top; i++) {
		plan *q = check_plan(L, i, fn);
		nparts += q->nparts;
		n += q->nlist;
	}
	if (nparts < 1)
		sl_error(L, fn, "a combination takes 1 to %d parts, got %d", SL_MAXPARTS, nparts);
	if (nparts > SL_MAXPARTS)
		sl_error(L, fn, "a combination takes at most %d parts, got %d", SL_MAXPARTS, nparts);
	plan *p = new_plan(L, fn, nparts, n);
	int pi = lua_gettop(L), k = 0;
	size_t used = 0;
	for (int i = 2; i <= top; i++) {
		plan *q = lua_touserdata(L, i);
		for (int j = 0; j < q->nparts; j++, k++) {
			put_part(p, k, &q->part[j], &used);
			p->weight[k] = q->weight[j];
			lua_getiuservalue(L, i, j + 1);
			lua_setiuservalue(L, pi, k + 1);
		}
	}
	set_fname(p);
	return 1;
}

/* segloss.core.criterion_weights(c, w1, ..., wn): the parts' weights from
 * now on (checked at each call, which says which part's is wrong). */
static int criterion_weights(lua_State *L)
{
	const char *fn = "segloss.core.criterion_weights";
	plan *p = check_plan(L, 1, fn);
	sl_checknargs(L, fn, 1, p->nparts, p->nparts);
	for (int i = 0; i < p->nparts; i++)
		p->weight[i] = sl_checknum(L, i + 2, fn, "weight", 0);
	p->cached = 0; /* the gradient of other weights */
	return 0;
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

/* ---- a step ----------------------------------------------------------------- */

/* A value as the Lua layer describes it (util.describe, which the
 * criterion's messages always used): only on the error path. */
static const char *lua_describe(lua_State *L, int idx, char *buf, size_t len)
{
	idx = lua_absindex(L, idx);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_getfield(L, -1, "segloss.util");
	if (lua_istable(L, -1) && lua_getfield(L, -1, "describe") == LUA_TFUNCTION) {
		lua_pushvalue(L, idx);
		if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
			snprintf(buf, len, "%s", lua_tostring(L, -1));
			return buf;
		}
	}
	return sl_describe(L, idx, buf, len);
}

static sl_tensor *arg_tensor(lua_State *L, int idx, const char *fn, const char *what, int nil_ok)
{
	sl_tensor *t = sl_totensor(L, idx);
	if (!t && !(nil_ok && lua_isnil(L, idx))) {
		char d[160];
		sl_error(L, fn, "%s must be a segloss.Tensor%s, got %s", what, nil_ok ? " or nil" : "",
		         lua_describe(L, idx, d, sizeof d));
	}
	return t;
}

/* The work memory of n doubles (UV_WORK, grown when too small). */
static double *work_buffer(lua_State *L, const char *fn, int pi, size_t n)
{
	if (lua_getiuservalue(L, pi, UV_WORK) == LUA_TUSERDATA && lua_rawlen(L, -1) >= n * sizeof(double)) {
		double *w = lua_touserdata(L, -1);
		lua_pop(L, 1);
		return w;
	}
	lua_pop(L, 1);
	double *w = sl_alloc(L, fn, (n ? n : 1) * sizeof(double), 0);
	if (luaL_newmetatable(L, BUFFER_MT)) {
		lua_pushliteral(L, BUFFER_MT);
		lua_setfield(L, -2, "__name");
	}
	lua_setmetatable(L, -2);
	lua_setiuservalue(L, pi, UV_WORK);
	return w;
}

/* The gradient buffer this call writes into: of the two, the one not
 * handed out last, reallocated when x's shape changes. Pushes it. */
static sl_tensor *spare(lua_State *L, const char *fn, plan *p, int pi, const sl_tensor *x, int *slot)
{
	*slot = p->slot == UV_GRAD1 ? UV_GRAD2 : UV_GRAD1;
	sl_tensor *b = NULL;
	if (lua_getiuservalue(L, pi, *slot) == LUA_TUSERDATA)
		b = sl_totensor(L, -1);
	if (b && sl_same_shape(b->ndim, b->shape, x->ndim, x->shape))
		return b;
	lua_pop(L, 1);
	b = sl_newtensor(L, fn, x->ndim, x->shape);
	memset(b->data, 0, b->numel * sizeof(float));
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, pi, *slot);
	return b;
}

/* Keeps what crit:last() reports: the total, each part's value and
 * weighted value, and per class the region values of its region part (the
 * mean over the rows where the class takes part), in UV_LAST. */
static void keep_last(lua_State *L, const char *fn, plan *p, int pi, const sl_eval *ev)
{
	const sl_lossrun *run = &ev->run;
	size_t N = ev->N, C = ev->C, n = (size_t)p->nparts * C;
	double *pc;
	if (lua_getiuservalue(L, pi, UV_LAST) == LUA_TUSERDATA && lua_rawlen(L, -1) >= n * sizeof(double)) {
		pc = lua_touserdata(L, -1);
		lua_pop(L, 1);
	} else {
		lua_pop(L, 1);
		pc = sl_alloc(L, fn, n * sizeof(double), 0);
		lua_setiuservalue(L, pi, UV_LAST);
	}
	p->total = run->total;
	p->last_C = C;
	for (int q = 0; q < p->nparts; q++) {
		double v = 0.0;
		int reg = -1;
		for (int k = 0; k < ev->ncomp; k++) {
			if (ev->comp_part[k] != q)
				continue;
			int i = ev->comp_kind[k] >> 2;
			switch (ev->comp_kind[k] & 3) {
			case SL_COMP_REGION:
				v += run->reg[i].factor * run->reg[i].value;
				reg = i;
				break;
			case SL_COMP_GENERIC:
				v += run->gen[i].factor * run->gen[i].value;
				break;
			default:
				v += run->pm[i].factor * run->pm[i].value;
				break;
			}
		}
		p->value[q] = v;
		p->weighted[q] = ev->weights[q] * v;
		p->has_pc[q] = reg >= 0 && run->reg[reg].L && run->reg[reg].type != SL_R_GDICE;
		if (!p->has_pc[q])
			continue;
		const sl_regpart *rp = &run->reg[reg];
		size_t R = sl_region_rows(rp, N);
		for (size_t c = 0; c < C; c++) {
			double sum = 0.0;
			size_t cnt = 0;
			for (size_t r = 0; r < R; r++) {
				double m = 0.0;
				for (size_t i = rp->batch ? 0 : r; i < (rp->batch ? N : r + 1); i++)
					m += run->stats[(i * C + c) * SL_NSTAT + SL_S_M];
				if ((int)c >= rp->c0 && m > 0.0) {
					sum += rp->L[r * C + c];
					cnt++;
				}
			}
			pc[(size_t)q * C + c] = cnt ? sum / (double)cnt : 0.0;
		}
	}
	p->have_last = 1;
}

/* A step: arguments plan, x, t, mask at 1..4; ext the statistics of
 * from_stats (or NULL), stats_only for crit:stats. Pushes the results. */
static int step(lua_State *L, const char *fn, plan *p, int want_grad, sl_tensor *ext, int stats_only)
{
	sl_eval ev;
	ev.fn = fn;
	ev.x = arg_tensor(L, 2, fn, "input", 0);
	ev.t = arg_tensor(L, 3, fn, "target", 0);
	ev.mask = arg_tensor(L, 4, fn, "mask", 1);
	for (int q = 0; q < p->nparts; q++) {
		double w = p->weight[q];
		if (!(isfinite(w) && fabs(w) <= FMAX)) {
			char d[64];
			sl_error(L, fn, "the weight of part %d must be a finite number within the float32 range "
			         "(|w| <= %.8g), got %s", q + 1, FMAX, sl_numstr(w, d, sizeof d));
		}
	}
	int slot = 0;
	ev.out = NULL;
	ev.out_idx = 0;
	if (want_grad) {
		ev.out = spare(L, fn, p, 1, ev.x, &slot);
		ev.out_idx = lua_gettop(L);
	}
	const sl_part *pp[SL_MAXPARTS];
	for (int q = 0; q < p->nparts; q++)
		pp[q] = &p->part[q];
	ev.nparts = p->nparts;
	ev.parts = pp;
	ev.weights = p->weight;
	ev.want_grad = want_grad;
	ev.scratch_out = 1;
	ev.stats_only = stats_only;
	sl_eval_prepare(L, &ev);
	if (ext) {
		double *st = ext_stats(L, fn, ext, ev.C);
		for (int i = 0; i < ev.run.nreg; i++)
			ev.run.reg[i].ext = ev.run.reg[i].batch ? st : NULL;
	}
	sl_eval_run(L, &ev, work_buffer(L, fn, 1, sl_eval_worksize(&ev)));
	if (stats_only)
		return sl_eval_push(L, &ev);
	keep_last(L, fn, p, 1, &ev);
	if (ev.want_grad) {
		/* the call succeeded: its gradient is the one handed out now (a
		 * fresh tensor if the buffer shared storage with an input) */
		sl_tensor *g = sl_totensor(L, ev.grad_idx);
		if (g != ev.out) {
			lua_pushvalue(L, ev.grad_idx);
			lua_setiuservalue(L, 1, slot);
		}
		p->slot = slot;
		lua_pushvalue(L, 2);
		lua_setiuservalue(L, 1, UV_X);
		lua_pushvalue(L, 3);
		lua_setiuservalue(L, 1, UV_T);
		lua_pushvalue(L, 4);
		lua_setiuservalue(L, 1, UV_M);
		p->xv = sl_version(ev.x);
		p->tv = sl_version(ev.t);
		sl_tensor *cm = sl_totensor(L, 4); /* the call's mask (a part's is no input) */
		p->mv = cm ? sl_version(cm) : 0;
		p->gv = sl_version(g);
		p->cached = 1;
	}
	return sl_eval_push(L, &ev);
}

/* segloss.core.criterion_call(c, x, t, mask, want_grad) -> loss, grad|nil:
 * crit(x, t, mask), crit:forward (want_grad), crit:value (not). */
static int criterion_call(lua_State *L)
{
	lua_settop(L, 5);
	plan *p = check_plan(L, 1, "segloss.core.criterion_call");
	return step(L, p->fname, p, lua_toboolean(L, 5), NULL, 0);
}

/* segloss.core.criterion_backward(c, x, t, mask) -> grad [, loss]: the
 * gradient of the last call when it was computed from the same x, t and
 * mask, none of them changed since (versions), the gradient itself not
 * changed, and the weights the same; else computed now (then the loss
 * too). */
static int criterion_backward(lua_State *L)
{
	lua_settop(L, 4);
	plan *p = check_plan(L, 1, "segloss.core.criterion_backward");
	if (p->cached) {
		int same = 1;
		for (int k = 0; k < 3 && same; k++) {
			lua_getiuservalue(L, 1, UV_X + k);
			same = lua_rawequal(L, -1, k + 2);
			lua_pop(L, 1);
		}
		sl_tensor *x = sl_totensor(L, 2), *t = sl_totensor(L, 3), *m = sl_totensor(L, 4);
		if (same && x && t && sl_version(x) == p->xv && sl_version(t) == p->tv &&
		    (!m || sl_version(m) == p->mv)) {
			lua_getiuservalue(L, 1, p->slot);
			sl_tensor *g = sl_totensor(L, -1);
			if (g && sl_version(g) == p->gv)
				return 1;
			lua_pop(L, 1);
		}
	}
	int n = step(L, p->fname, p, 1, NULL, 0);
	lua_rotate(L, -n, n - 1); /* grad, loss */
	return n;
}

/* segloss.core.criterion_from_stats(c, stats, x, t, mask) -> loss, grad:
 * the batch parts from the given statistics. */
static int criterion_from_stats(lua_State *L)
{
	lua_settop(L, 5);
	plan *p = check_plan(L, 1, "segloss.core.criterion_from_stats");
	sl_tensor *st = sl_totensor(L, 2);
	if (!st) {
		char d[160];
		sl_error(L, "segloss.Criterion:from_stats", "statistics must be a segloss.Tensor, got %s",
		         lua_describe(L, 2, d, sizeof d));
	}
	lua_rotate(L, 2, -1); /* c, x, t, mask as step wants them; the statistics
	                         stay on the stack (alive) above them */
	return step(L, p->fname, p, 1, st, 0);
}

/* segloss.core.criterion_stats(c, x, t, mask) -> the (C, 9) statistics of
 * the batch, summed over its samples. */
static int criterion_stats(lua_State *L)
{
	lua_settop(L, 4);
	plan *p = check_plan(L, 1, "segloss.core.criterion_stats");
	return step(L, "segloss.Criterion:stats", p, 0, NULL, 1);
}

/* segloss.core.criterion_last(c) -> nil before the first call, else {total
 * = , parts = { {value = , weighted = , per_class = {...} | nil}, ...}}:
 * a fresh table each time. */
static int criterion_last(lua_State *L)
{
	plan *p = check_plan(L, 1, "segloss.core.criterion_last");
	if (!p->have_last) {
		lua_pushnil(L);
		return 1;
	}
	lua_getiuservalue(L, 1, UV_LAST);
	const double *pc = lua_touserdata(L, -1);
	lua_createtable(L, 0, 2);
	int r = lua_gettop(L);
	lua_pushnumber(L, p->total);
	lua_setfield(L, r, "total");
	lua_createtable(L, p->nparts, 0);
	for (int q = 0; q < p->nparts; q++) {
		lua_createtable(L, 0, 3);
		lua_pushnumber(L, p->value[q]);
		lua_setfield(L, -2, "value");
		lua_pushnumber(L, p->weighted[q]);
		lua_setfield(L, -2, "weighted");
		if (p->has_pc[q] && pc) {
			lua_createtable(L, (int)p->last_C, 0);
			for (size_t c = 0; c < p->last_C; c++) {
				lua_pushnumber(L, pc[(size_t)q * p->last_C + c]);
				lua_rawseti(L, -2, (lua_Integer)c + 1);
			}
			lua_setfield(L, -2, "per_class");
		}
		lua_rawseti(L, -2, q + 1);
	}
	lua_setfield(L, r, "parts");
	return 1;
}

void sl_criterion_open(lua_State *L, int ctx)
{
	static const luaL_Reg funcs[] = {
		{"criterion_new", criterion_new},           {"criterion_join", criterion_join},
		{"criterion_weights", criterion_weights},   {"criterion_call", criterion_call},
		{"criterion_backward", criterion_backward}, {"criterion_from_stats", criterion_from_stats},
		{"criterion_stats", criterion_stats},       {"criterion_last", criterion_last},
		{NULL, NULL},
	};
	for (const luaL_Reg *f = funcs; f->name; f++) {
		lua_pushvalue(L, ctx);
		lua_pushcclosure(L, f->func, 1);
		lua_setfield(L, -2, f->name);
	}
}
