/*
 * conv.c — segloss.core.conv_*: convolution plans and their three passes
 * (src/nn/conv.h). Every argument is checked here before the core runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../nn/conv.h"
#include "bind.h"

#define SL_CONVPLAN_MT "segloss.ConvPlan"
/* the most channels a plan takes (weights stay far below SL_MAXNUMEL) */
#define MAX_CHANNELS 65536

typedef struct plan_ud {
	sl_conv *p; /* NULL once closed */
} plan_ud;

static sl_conv *checkplan(lua_State *L, int idx, const char *fn)
{
	plan_ud *u = luaL_testudata(L, idx, SL_CONVPLAN_MT);
	if (!u) {
		char d[96];
		sl_error(L, fn, "plan must be a segloss.ConvPlan (from segloss.core.conv_plan), got %s",
		         sl_describe(L, idx, d, sizeof d));
	}
	if (!u->p)
		sl_error(L, fn, "plan is closed");
	return u->p;
}

static int plan_gc(lua_State *L)
{
	plan_ud *u = luaL_checkudata(L, 1, SL_CONVPLAN_MT);
	sl_conv_free(u->p);
	u->p = NULL;
	return 0;
}

static int plan_tostring(lua_State *L)
{
	plan_ud *u = luaL_checkudata(L, 1, SL_CONVPLAN_MT);
	if (!u->p) {
		lua_pushliteral(L, "segloss.ConvPlan (closed)");
		return 1;
	}
	const sl_conv_cfg *c = sl_conv_config(u->p);
	lua_pushfstring(L, "segloss.ConvPlan{dims=%d, cin=%d, cout=%d, k=%d, stride=%d, transposed=%s}",
	                c->dims, c->cin, c->cout, c->k, c->stride, c->transposed ? "true" : "false");
	return 1;
}

/* An integer field of the options table, or def if absent (def < 0: required). */
static int opt_int(lua_State *L, const char *fn, const char *key, int def, int lo, int hi)
{
	int t = lua_getfield(L, 1, key);
	int v = def;
	if (t == LUA_TNIL) {
		if (def < 0)
			sl_error(L, fn, "option %s is required", key);
	} else {
		char name[32];
		snprintf(name, sizeof name, "option %s", key);
		v = (int)sl_checkint(L, -1, fn, name, lo, hi);
	}
	lua_pop(L, 1);
	return v;
}

/* segloss.core.conv_plan{dims=, cin=, cout=, k=, stride=, transposed=}:
 * k defaults to 3 (2 if transposed), stride to 1 (2 if transposed). */
static int conv_plan(lua_State *L)
{
	const char *fn = "segloss.core.conv_plan";
	static const char *const keys[] = {"dims", "cin", "cout", "k", "stride", "transposed", NULL};
	sl_checknargs(L, fn, 0, 1, 1);
	if (lua_type(L, 1) != LUA_TTABLE) {
		char d[96];
		sl_error(L, fn, "options must be a table {dims=, cin=, cout=, k=, stride=, transposed=}, got %s",
		         sl_describe(L, 1, d, sizeof d));
	}
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		int known = 0;
		for (int i = 0; keys[i]; i++)
			known |= sl_isstring(L, -2, keys[i]);
		if (!known) {
			char d[96];
			if (lua_type(L, -2) == LUA_TSTRING)
				sl_quote(L, -2, d, sizeof d);
			else
				sl_describe(L, -2, d, sizeof d);
			sl_error(L, fn, "unknown option %s (known: dims, cin, cout, k, stride, transposed)", d);
		}
		lua_pop(L, 1);
	}
	sl_conv_cfg c;
	lua_getfield(L, 1, "transposed");
	c.transposed = lua_isnil(L, -1) ? 0 : sl_optbool(L, fn, "transposed", -1);
	lua_pop(L, 1);
	c.dims = opt_int(L, fn, "dims", -1, 2, 3);
	c.cin = opt_int(L, fn, "cin", -1, 1, MAX_CHANNELS);
	c.cout = opt_int(L, fn, "cout", -1, 1, MAX_CHANNELS);
	c.k = opt_int(L, fn, "k", c.transposed ? 2 : 3, 1, 3);
	c.stride = opt_int(L, fn, "stride", c.transposed ? 2 : 1, 1, 2);
	const char *why = sl_conv_cfg_check(&c);
	if (why)
		sl_error(L, fn, "%s, got k=%d, stride=%d", why, c.k, c.stride);
	plan_ud *u = sl_alloc(L, fn, sizeof *u, 0);
	u->p = NULL;
	luaL_setmetatable(L, SL_CONVPLAN_MT);
	if (!(u->p = sl_conv_new(&c)))
		sl_error(L, fn, "out of memory");
	return 1;
}

/* "(N, 3, H, W)" for messages */
static const char *layout(const sl_conv_cfg *c, int ch, char *buf, size_t len)
{
	snprintf(buf, len, "(N, %d, %s)", ch, c->dims == 2 ? "H, W" : "D, H, W");
	return buf;
}

/* Checks the activation t (the input if is_x, else the output gradient)
 * against the plan, returns N and the input spatial shape in in[]. */
static int64_t check_act(lua_State *L, const char *fn, const sl_conv_cfg *c, const sl_tensor *t,
                         const char *what, int is_x, int64_t *in)
{
	char b[96], l[48];
	int ch = is_x ? c->cin : c->cout;
	if (t->ndim != c->dims + 2 || t->shape[1] != ch)
		sl_error(L, fn, "%s has shape %s, the plan needs %d dimensions %s", what,
		         sl_shapestr(t->ndim, t->shape, b, sizeof b), c->dims + 2, layout(c, ch, l, sizeof l));
	for (int a = 0; a < c->dims; a++)
		in[a] = t->shape[2 + a];
	return t->shape[0];
}

/* The output shape for input shape (N, cin, in...), or an error. */
static void out_shape(lua_State *L, const char *fn, const sl_conv_cfg *c, const sl_tensor *x, int64_t *ys)
{
	int64_t in[3], out[3];
	check_act(L, fn, c, x, "input", 1, in);
	if (sl_conv_out_spatial(c, in, out) != 0) {
		char b[96];
		sl_error(L, fn, "input of shape %s is too small for kernel %d with padding %d",
		         sl_shapestr(x->ndim, x->shape, b, sizeof b), c->k, (c->k - 1) / 2);
	}
	ys[0] = x->shape[0];
	ys[1] = c->cout;
	for (int a = 0; a < c->dims; a++)
		ys[2 + a] = out[a];
	if (c->transposed) /* 2^d times the input: within SL_MAXNUMEL? */
		sl_checksize(L, fn, c->dims + 2, ys);
}

static void check_shape(lua_State *L, const char *fn, const sl_tensor *t, const char *what, int nd,
                        const int64_t *want)
{
	if (!sl_same_shape(t->ndim, t->shape, nd, want)) {
		char b[96], w[96];
		sl_error(L, fn, "%s has shape %s, the plan needs %s", what, sl_shapestr(t->ndim, t->shape, b, sizeof b),
		         sl_shapestr(nd, want, w, sizeof w));
	}
}

static void check_weight(lua_State *L, const char *fn, const sl_conv_cfg *c, const sl_tensor *w,
                         const char *what)
{
	int64_t ws[5] = {c->transposed ? c->cin : c->cout, c->transposed ? c->cout : c->cin, c->k, c->k, c->k};
	check_shape(L, fn, w, what, c->dims + 2, ws);
}

static void check_bias(lua_State *L, const char *fn, const sl_conv_cfg *c, const sl_tensor *b,
                       const char *what)
{
	int64_t bs[1] = {c->cout};
	check_shape(L, fn, b, what, 1, bs);
}

/* An optional tensor argument (nil, or a tensor). */
static sl_tensor *opt_tensor(lua_State *L, int idx, const char *fn, const char *what)
{
	return lua_isnil(L, idx) ? NULL : sl_checktensor(L, idx, fn, what);
}

/* The output must not share memory with an input. */
static void check_apart(lua_State *L, const char *fn, const sl_tensor *o, const char *ow,
                        const sl_tensor *i, const char *iw)
{
	if (!i)
		return;
	uintptr_t o0 = (uintptr_t)o->data, o1 = o0 + o->numel * sizeof(float);
	uintptr_t i0 = (uintptr_t)i->data, i1 = i0 + i->numel * sizeof(float);
	if (o0 < i1 && i0 < o1)
		sl_error(L, fn, "%s shares memory with %s", ow, iw);
}

static _Noreturn void raise_core(lua_State *L, const char *fn, sl_conv *p, int rc)
{
	if (rc == SL_CONV_ENOMEM)
		sl_error(L, fn, "out of memory");
	sl_error(L, fn, "%s", sl_conv_error(p));
}

/* conv_forward(plan, x, w, b_or_nil, y): y = conv(x, w) + b */
static int conv_forward(lua_State *L)
{
	const char *fn = "segloss.core.conv_forward";
	sl_checknargs(L, fn, 0, 5, 5);
	sl_conv *p = checkplan(L, 1, fn);
	const sl_conv_cfg *c = sl_conv_config(p);
	sl_tensor *x = sl_checktensor(L, 2, fn, "input");
	sl_tensor *w = sl_checktensor(L, 3, fn, "weight");
	sl_tensor *b = opt_tensor(L, 4, fn, "bias (or nil)");
	sl_tensor *y = sl_checktensor(L, 5, fn, "output");
	int64_t ys[5], in[3];
	out_shape(L, fn, c, x, ys);
	check_weight(L, fn, c, w, "weight");
	if (b)
		check_bias(L, fn, c, b, "bias");
	check_shape(L, fn, y, "output", c->dims + 2, ys);
	check_apart(L, fn, y, "output", x, "input");
	check_apart(L, fn, y, "output", w, "weight");
	check_apart(L, fn, y, "output", b, "bias");
	int64_t N = check_act(L, fn, c, x, "input", 1, in);
	sl_exec e = sl_getexec(L);
	int rc = sl_conv_forward(p, &sl_getctx(L)->conv, &e, N, in, x->data, w->data, b ? b->data : NULL, y->data);
	sl_touch(y);
	if (rc != SL_CONV_OK)
		raise_core(L, fn, p, rc);
	return 0;
}

/* conv_backward_data(plan, gy, w, gx): gx = dL/dx */
static int conv_backward_data(lua_State *L)
{
	const char *fn = "segloss.core.conv_backward_data";
	sl_checknargs(L, fn, 0, 4, 4);
	sl_conv *p = checkplan(L, 1, fn);
	const sl_conv_cfg *c = sl_conv_config(p);
	sl_tensor *gy = sl_checktensor(L, 2, fn, "output gradient");
	sl_tensor *w = sl_checktensor(L, 3, fn, "weight");
	sl_tensor *gx = sl_checktensor(L, 4, fn, "input gradient");
	int64_t ys[5], in[3];
	check_act(L, fn, c, gx, "input gradient", 1, in);
	out_shape(L, fn, c, gx, ys); /* gx has the input's shape */
	check_weight(L, fn, c, w, "weight");
	check_shape(L, fn, gy, "output gradient", c->dims + 2, ys);
	check_apart(L, fn, gx, "input gradient", gy, "output gradient");
	check_apart(L, fn, gx, "input gradient", w, "weight");
	sl_exec e = sl_getexec(L);
	int rc = sl_conv_backward_data(p, &sl_getctx(L)->conv, &e, gx->shape[0], in, gy->data, w->data, gx->data);
	sl_touch(gx);
	if (rc != SL_CONV_OK)
		raise_core(L, fn, p, rc);
	return 0;
}

/* conv_backward_weights(plan, x, gy, gw, gb_or_nil): gw += dL/dw, gb += dL/db */
static int conv_backward_weights(lua_State *L)
{
	const char *fn = "segloss.core.conv_backward_weights";
	sl_checknargs(L, fn, 0, 5, 5);
	sl_conv *p = checkplan(L, 1, fn);
	const sl_conv_cfg *c = sl_conv_config(p);
	sl_tensor *x = sl_checktensor(L, 2, fn, "input");
	sl_tensor *gy = sl_checktensor(L, 3, fn, "output gradient");
	sl_tensor *gw = sl_checktensor(L, 4, fn, "weight gradient");
	sl_tensor *gb = opt_tensor(L, 5, fn, "bias gradient (or nil)");
	int64_t ys[5], in[3];
	out_shape(L, fn, c, x, ys);
	check_shape(L, fn, gy, "output gradient", c->dims + 2, ys);
	check_weight(L, fn, c, gw, "weight gradient");
	if (gb)
		check_bias(L, fn, c, gb, "bias gradient");
	const sl_tensor *ins[2] = {x, gy};
	const char *inn[2] = {"input", "output gradient"};
	for (int i = 0; i < 2; i++) {
		check_apart(L, fn, gw, "weight gradient", ins[i], inn[i]);
		if (gb)
			check_apart(L, fn, gb, "bias gradient", ins[i], inn[i]);
	}
	if (gb)
		check_apart(L, fn, gw, "weight gradient", gb, "bias gradient");
	int64_t N = check_act(L, fn, c, x, "input", 1, in);
	sl_exec e = sl_getexec(L);
	int rc = sl_conv_backward_weights(p, &sl_getctx(L)->conv, &e, N, in, x->data, gy->data, gw->data, gb ? gb->data : NULL);
	if (rc != SL_CONV_OK)
		raise_core(L, fn, p, rc); /* gw and gb are written only at the end */
	sl_touch(gw);
	if (gb)
		sl_touch(gb);
	return 0;
}

/* conv_out_shape(plan, x) -> {N, cout, ...} */
static int conv_out_shape(lua_State *L)
{
	const char *fn = "segloss.core.conv_out_shape";
	sl_checknargs(L, fn, 0, 2, 2);
	sl_conv *p = checkplan(L, 1, fn);
	const sl_conv_cfg *c = sl_conv_config(p);
	sl_tensor *x = sl_checktensor(L, 2, fn, "input");
	int64_t ys[5];
	out_shape(L, fn, c, x, ys);
	lua_createtable(L, c->dims + 2, 0);
	for (int a = 0; a < c->dims + 2; a++) {
		lua_pushinteger(L, (lua_Integer)ys[a]);
		lua_rawseti(L, -2, a + 1);
	}
	return 1;
}

/* conv_min_flops([n]) -> the previous value: below n floating-point
 * operations per thread a convolution call runs on fewer threads (0: always
 * the whole team; specs use it to reach the threaded path on small shapes) */
static int conv_min_flops(lua_State *L)
{
	const char *fn = "segloss.core.conv_min_flops";
	sl_checknargs(L, fn, 0, 0, 1);
	sl_conv_ws *ws = &sl_getctx(L)->conv;
	lua_pushnumber(L, ws->min_flops);
	if (!lua_isnoneornil(L, 1)) {
		double v = sl_checknum(L, 1, fn, "n", 1);
		if (v < 0)
			sl_error(L, fn, "n must be >= 0, got %g", v);
		ws->min_flops = v;
	}
	return 1;
}

/* conv_workspace([free]) -> bytes of the state's convolution workspace
 * (before freeing it, if free is true; the next call grows it again) */
static int conv_workspace(lua_State *L)
{
	const char *fn = "segloss.core.conv_workspace";
	sl_checknargs(L, fn, 0, 0, 1);
	if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TBOOLEAN) {
		char d[96];
		sl_error(L, fn, "free must be a boolean, got %s", sl_describe(L, 1, d, sizeof d));
	}
	int release = lua_toboolean(L, 1);
	sl_conv_ws *ws = &sl_getctx(L)->conv;
	lua_pushinteger(L, (lua_Integer)ws->bytes);
	if (release)
		sl_conv_ws_free(ws);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"conv_min_flops", conv_min_flops},
	{"conv_workspace", conv_workspace},
	{"conv_plan", conv_plan},
	{"conv_forward", conv_forward},
	{"conv_backward_data", conv_backward_data},
	{"conv_backward_weights", conv_backward_weights},
	{"conv_out_shape", conv_out_shape},
	{NULL, NULL},
};

void sl_conv_open(lua_State *L, int ctx)
{
	if (luaL_newmetatable(L, SL_CONVPLAN_MT)) {
		lua_pushcfunction(L, plan_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, plan_gc);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, plan_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, "locked");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, funcs, 1);
}
