/*
 * opts.c — options tables: the walker that checks a table against option
 * descriptors (src/opt.h: types, ranges, enums), the "did you mean"
 * suggestion for unknown names, and the checks of single option values.
 * The losses (registry.c's options) and the metrics share it, so that an
 * option error reads the same everywhere:
 *
 *   segloss.dice: unknown option "smoth" (did you mean "smooth"?)
 *   segloss.metrics.evaluate: option threshold must be a number in (0, 1), got 2
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"

_Noreturn void sl_opterror(lua_State *L, const char *fname, const char *opt, int idx,
                           const char *expected)
{
	char d[96];
	sl_error(L, fname, "option %s must be %s, got %s", opt, expected, sl_describe(L, idx, d, sizeof d));
}

int sl_isstring(lua_State *L, int idx, const char *s)
{
	size_t len;
	const char *v = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
	return v && len == strlen(s) && memcmp(v, s, len) == 0;
}

int sl_optenum(lua_State *L, const char *fname, const char *opt, int idx, const char *const *choices)
{
	for (int i = 0; choices[i]; i++)
		if (sl_isstring(L, idx, choices[i]))
			return i;
	char exp[128];
	size_t n = (size_t)snprintf(exp, sizeof exp, "one of");
	for (int i = 0; choices[i] && n < sizeof exp; i++)
		n += (size_t)snprintf(exp + n, sizeof exp - n, "%s \"%s\"", i ? "," : "", choices[i]);
	sl_opterror(L, fname, opt, idx, exp);
}

int sl_optbool(lua_State *L, const char *fname, const char *opt, int idx)
{
	if (lua_type(L, idx) != LUA_TBOOLEAN)
		sl_opterror(L, fname, opt, idx, "a boolean");
	return lua_toboolean(L, idx);
}

const char *sl_rangestr(double lo, int lo_open, double hi, int hi_open, char *buf, size_t len)
{
	if (isinf(hi))
		snprintf(buf, len, "a finite number %s %g", lo_open ? ">" : ">=", lo);
	else if (hi == (double)FLT_MAX)
		snprintf(buf, len, "a number >= %g within the float32 range (<= %.8g)", lo, (double)FLT_MAX);
	else
		snprintf(buf, len, "a number in %c%g, %g%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
	return buf;
}

double sl_optnum(lua_State *L, const char *fname, const char *opt, int idx, double lo, int lo_open,
                 double hi, int hi_open)
{
	double v = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : (double)NAN;
	int ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
	if (!ok) {
		char exp[96];
		sl_opterror(L, fname, opt, idx, sl_rangestr(lo, lo_open, hi, hi_open, exp, sizeof exp));
	}
	return v;
}

/* The closest name to s among the descriptors whose bit is in `known`, for
 * "did you mean" (edit distance <= 2; the first of equally close ones). */
static const char *suggest(const char *s, const sl_optdesc *d, int n, unsigned known)
{
	const char *best = NULL;
	size_t bestd = 3, ns = strlen(s);
	if (ns > 40)
		return NULL;
	for (int o = 0; o < n; o++) {
		if (!(known & (1u << o)))
			continue;
		const char *t = d[o].name;
		size_t m = strlen(t), prev[48], cur[48];
		if (m > 40)
			continue;
		for (size_t j = 0; j <= m; j++)
			prev[j] = j;
		for (size_t i = 1; i <= ns; i++) {
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

/* A number option's value at vi, checked against its range; the message
 * says what the descriptor expects if `expect`, else the range. */
static double number(lua_State *L, const char *fn, const sl_optdesc *d, int vi, int expect)
{
	if (!(expect && d->expect))
		return sl_optnum(L, fn, d->name, vi, d->lo, d->lo_open, d->hi, d->hi_open);
	double v = lua_type(L, vi) == LUA_TNUMBER ? lua_tonumber(L, vi) : (double)NAN;
	if (!(isfinite(v) && (d->lo_open ? v > d->lo : v >= d->lo) && (d->hi_open ? v < d->hi : v <= d->hi)))
		sl_opterror(L, fn, d->name, vi, d->expect);
	return v;
}

void sl_opts_walk(lua_State *L, const char *fn, int oi, const sl_optdesc *d, int n, unsigned known,
                  sl_optval *v)
{
	memset(v, 0, (size_t)n * sizeof *v);
	if (lua_isnoneornil(L, oi))
		return;
	if (lua_type(L, oi) != LUA_TTABLE) {
		char b[96];
		sl_error(L, fn, "opts must be a table, got %s", sl_describe(L, oi, b, sizeof b));
	}
	int lists = 0;
	lua_pushnil(L);
	while (lua_next(L, oi)) {
		int vi = lua_gettop(L);
		if (lua_type(L, -2) != LUA_TSTRING) {
			char b[96];
			sl_error(L, fn, "option names must be strings, got %s", sl_describe(L, -2, b, sizeof b));
		}
		int o = -1;
		for (int i = 0; i < n && o < 0; i++)
			if (sl_isstring(L, -2, d[i].name))
				o = i;
		if (o < 0 || !(known & (1u << o))) {
			char q[4 * 40 + 8];
			const char *s = suggest(lua_tostring(L, -2), d, n, known);
			sl_quote(L, -2, q, sizeof q);
			if (s)
				sl_error(L, fn, "unknown option %s (did you mean \"%s\"?)", q, s);
			sl_error(L, fn, "unknown option %s", q);
		}
		const sl_optdesc *od = &d[o];
		sl_optval *ov = &v[o];
		ov->given = 1;
		switch (od->type) {
		case SL_OT_BOOL:
			ov->num = sl_optbool(L, fn, od->name, vi);
			break;
		case SL_OT_ENUM:
			ov->num = sl_optenum(L, fn, od->name, vi, od->choices);
			break;
		case SL_OT_NUMBER:
			ov->num = number(L, fn, od, vi, 1);
			break;
		case SL_OT_INT: {
			char what[64];
			snprintf(what, sizeof what, "option %s", od->name);
			ov->num = (double)sl_checkint(L, vi, fn, what, (lua_Integer)od->lo, (lua_Integer)od->hi);
			break;
		}
		case SL_OT_TENSOR:
			if (!(ov->tensor = sl_totensor(L, vi)))
				sl_opterror(L, fn, od->name, vi, "a segloss.Tensor");
			break;
		case SL_OT_CHANNELS:
			if (lua_type(L, vi) != LUA_TTABLE && !sl_totensor(L, vi))
				sl_opterror(L, fn, od->name, vi, od->expect);
			ov->list = 1;
			lists++;
			break;
		case SL_OT_NUM_AUTO:
			if (sl_isstring(L, vi, "auto"))
				ov->special = 1;
			else if (lua_type(L, vi) == LUA_TNUMBER)
				ov->num = number(L, fn, od, vi, 0);
			else
				sl_opterror(L, fn, od->name, vi, od->expect);
			break;
		case SL_OT_NUM_FALSE_CHANNELS:
			if (lua_type(L, vi) == LUA_TBOOLEAN && !lua_toboolean(L, vi))
				ov->special = 1;
			else if (lua_type(L, vi) == LUA_TTABLE) {
				ov->list = 1; /* a list: checked against C later */
				lists++;
			} else
				ov->num = number(L, fn, od, vi, 1);
			break;
		case SL_OT_NUMBERS:
			if (lua_type(L, vi) != LUA_TTABLE)
				sl_opterror(L, fn, od->name, vi, od->expect);
			ov->list = 1;
			lists++;
			break;
		default:
			break;
		}
		lua_pop(L, 1);
	}
	/* the lists' values at fixed stack slots, once the walk is over */
	for (int o = 0; o < n && lists; o++)
		if (v[o].list) {
			lua_getfield(L, oi, d[o].name);
			v[o].idx = lua_gettop(L);
			lists--;
		}
}

/* ---- descriptors for Lua --------------------------------------------- */

static const char *const type_names[SL_OT_COUNT] = {
	[SL_OT_BOOL] = "boolean", [SL_OT_ENUM] = "enum", [SL_OT_NUMBER] = "number",
	[SL_OT_INT] = "integer", [SL_OT_TENSOR] = "tensor", [SL_OT_CHANNELS] = "list",
	[SL_OT_NUM_AUTO] = "number|auto", [SL_OT_NUM_FALSE_CHANNELS] = "number|false|list",
	[SL_OT_NUMBERS] = "numbers",
};

static void setstr(lua_State *L, int t, const char *k, const char *v)
{
	if (!v)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, t, k);
}

static void setbool(lua_State *L, int t, const char *k, int v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, t, k);
}

/* A default as a Lua value under key k (nothing for SL_DEF_NONE). */
static void push_default(lua_State *L, int t, const char *k, const sl_optdesc *all, const sl_optdesc *od, int type,
                         sl_default d)
{
	char key[32];
	switch (d.kind) {
	case SL_DEF_VALUE:
		if (type == SL_OT_BOOL)
			lua_pushboolean(L, d.v != 0.0);
		else if (type == SL_OT_ENUM)
			lua_pushstring(L, od->choices[(int)d.v]);
		else
			lua_pushnumber(L, d.v);
		lua_setfield(L, t, k);
		break;
	case SL_DEF_FALSE:
		lua_pushboolean(L, 0);
		lua_setfield(L, t, k);
		break;
	case SL_DEF_FROM:
		snprintf(key, sizeof key, "%s_from", k);
		setstr(L, t, key, all[(int)d.v].name);
		break;
	case SL_DEF_TEXT:
		snprintf(key, sizeof key, "%s_text", k);
		setstr(L, t, key, d.text);
		break;
	default:
		break;
	}
}

/* An option's descriptor as Lua sees it (segloss.losses()): {type = ,
 * choices = , min = , max = , default = , doc = , ...}; type, defaults,
 * doc and refused as the caller's loss takes the option. */
void sl_push_optdesc(lua_State *L, const sl_optdesc *all, int o, int type, sl_default def, sl_default def_sm,
                     const char *doc, const char *refused)
{
	const sl_optdesc *od = &all[o];
	lua_createtable(L, 0, 8);
	int t = lua_gettop(L);
	setstr(L, t, "type", type_names[type]);
	if (type == SL_OT_ENUM) {
		lua_createtable(L, 4, 0);
		for (int i = 0; od->choices[i]; i++) {
			lua_pushstring(L, od->choices[i]);
			lua_rawseti(L, -2, i + 1);
		}
		lua_setfield(L, t, "choices");
	}
	int ranged = type == SL_OT_NUMBER || type == SL_OT_INT || type == SL_OT_CHANNELS ||
	             type == SL_OT_NUM_AUTO || type == SL_OT_NUM_FALSE_CHANNELS;
	if (ranged) {
		lua_pushnumber(L, od->lo);
		lua_setfield(L, t, "min");
		if (od->lo_open)
			setbool(L, t, "min_open", 1);
		if (!isinf(od->hi)) {
			lua_pushnumber(L, od->hi);
			lua_setfield(L, t, "max");
		}
		if (od->hi_open)
			setbool(L, t, "max_open", 1);
		if (od->hi == (double)FLT_MAX)
			setbool(L, t, "float32", 1);
	}
	push_default(L, t, "default", all, od, type, def);
	push_default(L, t, "default_softmax", all, od, type, def_sm);
	setstr(L, t, "doc", doc ? doc : od->doc);
	setstr(L, t, "refused", refused);
}

