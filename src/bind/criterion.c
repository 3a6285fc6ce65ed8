/*
 * criterion.c — the C side of criteria (lua/segloss/criterion.lua): the
 * evaluation of a combination of parts with the call-level arguments a
 * criterion passes, the statistics paths (crit:stats, crit:from_stats), the
 * values of the last evaluation (crit:last) and the work buffers a
 * criterion keeps between steps. The parts are compiled and evaluated by
 * what loss.c shares (part.h).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "part.h"

/* The largest value of a number that the kernels hold as a float32. */
#define FMAX ((double)FLT_MAX)

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

/* Sets t[key] = v. */
static void setnum(lua_State *L, int t, const char *key, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, t, key);
}

/* Fills the `last` table: total, and per part {value = (its own value),
 * weighted = (times its weight), per_class = {...}} (per_class for region
 * parts: the part's mean over samples, class by class). Existing subtables
 * are reused. */
static void fill_last(lua_State *L, int lt, const sl_eval *ev)
{
	const sl_lossrun *run = &ev->run;
	size_t N = ev->N, C = ev->C;
	int nparts = ev->nparts;
	double total = run->total;
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
		for (int k = 0; k < ev->ncomp; k++) {
			if (ev->comp_part[k] != p)
				continue;
			int i = ev->comp_kind[k] >> 1;
			if (ev->comp_kind[k] & 1) {
				v += run->reg[i].factor * run->reg[i].value;
				reg = i;
			} else {
				v += run->pm[i].factor * run->pm[i].value;
			}
		}
		setnum(L, e, "value", v);
		setnum(L, e, "weighted", ev->weights[p] * v);
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
static int criterion_combo(lua_State *L)
{
	lua_settop(L, 11);
	const char *fn = lua_type(L, 1) == LUA_TSTRING ? sl_checkstr(L, 1, "segloss.core.combo", "fname")
	                                               : "segloss.core.combo";
	if (lua_type(L, 2) != LUA_TTABLE) {
		char d[96];
		sl_error(L, fn, "parts must be a list of {name, opts, weight}, got %s",
		         sl_describe(L, 2, d, sizeof d));
	}
	sl_eval ev;
	ev.fn = fn;
	ev.x = sl_checktensor(L, 3, fn, "input");
	ev.t = sl_checktensor(L, 4, fn, "target");
	ev.mask = opt_tensor_arg(L, fn, 5, "mask");
	ev.out = opt_tensor_arg(L, fn, 6, "out");
	ev.out_idx = 6;
	ev.want_grad = opt_flag(L, fn, 7, "want_grad");
	ev.scratch_out = opt_flag(L, fn, 8, "scratch_out");
	sl_tensor *ext = opt_tensor_arg(L, fn, 9, "statistics");
	if (!lua_isnil(L, 10) && !lua_istable(L, 10)) {
		char d[96];
		sl_error(L, fn, "last must be a table or nil, got %s", sl_describe(L, 10, d, sizeof d));
	}
	int last_idx = lua_istable(L, 10) ? 10 : 0;
	ev.stats_only = opt_flag(L, fn, 11, "stats_only");
	lua_Unsigned n = lua_rawlen(L, 2);
	if (n < 1 || n > SL_MAXPARTS)
		sl_error(L, fn, "a combination takes 1 to %d parts, got %llu", SL_MAXPARTS,
		         (unsigned long long)n);
	sl_part parts[SL_MAXPARTS];
	const sl_part *pp[SL_MAXPARTS];
	int ids[SL_MAXPARTS], optidx[SL_MAXPARTS];
	double weights[SL_MAXPARTS];
	luaL_checkstack(L, 4 * (int)n + 8, NULL);
	for (int p = 0; p < (int)n; p++) {
		char d[96];
		if (lua_rawgeti(L, 2, p + 1) != LUA_TTABLE)
			sl_error(L, fn, "part %d must be a table {name, opts, weight}, got %s", p + 1,
			         sl_describe(L, -1, d, sizeof d));
		int pt = lua_gettop(L);
		lua_rawgeti(L, pt, 1);
		if ((ids[p] = sl_loss_find(L, -1)) < 0)
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
	for (int p = 0; p < (int)n; p++) {
		sl_part_compile(L, fn, ids[p], optidx[p], &parts[p]);
		pp[p] = &parts[p];
	}
	ev.nparts = (int)n;
	ev.parts = pp;
	ev.weights = weights;
	sl_eval_prepare(L, &ev);
	if (ext) {
		double *st = ext_stats(L, fn, ext, ev.C);
		for (int i = 0; i < ev.run.nreg; i++)
			ev.run.reg[i].ext = ev.run.reg[i].batch ? st : NULL;
	}
	/* The run's statistics and the region parts' L live in memory Lua owns:
	 * a criterion's last table keeps it, in a userdata type only C makes, so
	 * that a step allocates nothing and nothing Lua puts there is written
	 * into. */
	int bidx = 0, fresh;
	if (last_idx) {
		lua_getfield(L, last_idx, "_buf");
		bidx = lua_gettop(L);
	}
	double *work = private_buffer(L, fn, bidx, sl_eval_worksize(&ev), &fresh);
	if (fresh && last_idx) {
		lua_pushvalue(L, -1);
		lua_setfield(L, last_idx, "_buf");
	}
	sl_eval_run(L, &ev, work);
	if (last_idx && !ev.stats_only)
		fill_last(L, last_idx, &ev);
	return sl_eval_push(L, &ev);
}

/* segloss.core.check_opts(fname, name, opts): the checks a constructor can
 * make without data (option names and values). */
static int criterion_check_opts(lua_State *L)
{
	const char *fn = sl_checkstr(L, 1, "segloss.core.check_opts", "fname");
	int id = sl_loss_find(L, 2);
	if (id < 0) {
		char d[96];
		sl_error(L, fn, "unknown loss %s", sl_describe(L, 2, d, sizeof d));
	}
	lua_settop(L, 3);
	sl_part p;
	sl_part_compile(L, fn, id, 3, &p);
	/* what can be told without data: smoothing that divides by 0 */
	double snr = p.v[SL_O_SMOOTH_NR], sdr = p.v[SL_O_SMOOTH_DR];
	if (sdr == 0.0 && snr > 0.0 && sl_loss_flag(id, SL_LF_SMOOTH_NR))
		sl_error(L, fn, "smooth_dr = 0 with smooth_nr = %g divides by 0 on an empty target and "
		         "prediction (give smooth_dr > 0, or smooth_nr = 0)", snr);
	return 0;
}

void sl_criterion_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, criterion_combo, 1);
	lua_setfield(L, -2, "combo");
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, criterion_check_opts, 1);
	lua_setfield(L, -2, "check_opts");
}
