/*
 * tensor.c — the segloss.Tensor userdata: constructors (segloss.tensor.*)
 * and methods (segloss.Tensor:*).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../npy.h"
#include "bind.h"

/* ------------------------------------------------------------------ */
/* allocation */

#define ALIGN 64

sl_tensor *sl_newtensor(lua_State *L, const char *fname, int ndim, const int64_t *shape)
{
	size_t n = sl_checksize(L, fname, ndim, shape); /* <= 2^40: the byte count fits */
	sl_tensor *t = sl_alloc(L, fname, sizeof(sl_tensor) + ALIGN + n * sizeof(float), 1);
	uintptr_t p = (uintptr_t)(t + 1);
	t->data = (float *)((p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
	t->numel = n;
	t->ndim = ndim;
	t->view = 0;
	memcpy(t->shape, shape, (size_t)ndim * sizeof shape[0]);
	t->owner = t;
	t->version = 0;
	luaL_setmetatable(L, SL_TENSOR_MT);
	return t;
}

/* A new tensor of t's shape. */
static sl_tensor *newlike(lua_State *L, const char *fname, const sl_tensor *t)
{
	return sl_newtensor(L, fname, t->ndim, t->shape);
}

static sl_tensor *self(lua_State *L, const char *fname)
{
	return sl_checktensor(L, 1, fname, "self");
}

/* ------------------------------------------------------------------ */
/* constructors */

static int tensor_zeros(lua_State *L)
{
	int64_t shape[SL_MAXDIM];
	const char *fn = "segloss.tensor.zeros";
	int nd = sl_checkshape(L, 1, fn, shape);
	sl_tensor *t = sl_newtensor(L, fn, nd, shape);
	/* a big block from calloc is zero already: its pages stay unwritten */
	if (!sl_alloc_zeroed(L, sizeof(sl_tensor) + ALIGN + t->numel * sizeof(float)))
		memset(t->data, 0, t->numel * sizeof(float));
	return 1;
}

static void fill(sl_tensor *t, float v)
{
	for (size_t i = 0; i < t->numel; i++)
		t->data[i] = v;
}

static int tensor_ones(lua_State *L)
{
	int64_t shape[SL_MAXDIM];
	const char *fn = "segloss.tensor.ones";
	int nd = sl_checkshape(L, 1, fn, shape);
	fill(sl_newtensor(L, fn, nd, shape), 1.0f);
	return 1;
}

static int tensor_full(lua_State *L)
{
	const char *fn = "segloss.tensor.full";
	sl_checknargs(L, fn, 0, 2, 2);
	if (lua_type(L, 1) != LUA_TTABLE) {
		char d[96];
		sl_error(L, fn, "shape must be a table of dimensions, got %s",
		         sl_describe(L, 1, d, sizeof d));
	}
	float v = sl_checkfloat(L, 2, fn, "value");
	lua_settop(L, 1);
	int64_t shape[SL_MAXDIM];
	int nd = sl_checkshape(L, 1, fn, shape);
	fill(sl_newtensor(L, fn, nd, shape), v);
	return 1;
}

static int tensor_rand(lua_State *L)
{
	int64_t shape[SL_MAXDIM];
	const char *fn = "segloss.tensor.rand";
	int nd = sl_checkshape(L, 1, fn, shape);
	sl_tensor *t = sl_newtensor(L, fn, nd, shape);
	sl_rng_uniform(&sl_getctx(L)->rng, t->numel, t->data);
	return 1;
}

static int tensor_randn(lua_State *L)
{
	int64_t shape[SL_MAXDIM];
	const char *fn = "segloss.tensor.randn";
	int nd = sl_checkshape(L, 1, fn, shape);
	sl_tensor *t = sl_newtensor(L, fn, nd, shape);
	sl_rng_normal(&sl_getctx(L)->rng, t->numel, t->data);
	return 1;
}

/* from(nested): the path of an element for messages, e.g. [2][3] */
static const char *pathstr(const int64_t *idx, int depth, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; i < depth && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "[%lld]", (long long)idx[i] + 1);
	return buf;
}

static float elemval(lua_State *L, const char *fn, const int64_t *idx, int depth)
{
	if (lua_type(L, -1) != LUA_TNUMBER) {
		char p[96], d[96];
		sl_error(L, fn, "element %s must be a number, got %s", pathstr(idx, depth, p, sizeof p),
		         sl_describe(L, -1, d, sizeof d));
	}
	double v = lua_tonumber(L, -1);
	if (!sl_fits_float(v)) {
		char p[96], d[64];
		sl_error(L, fn, "element %s must be within the float32 range (|v| <= %.8g), got %s",
		         pathstr(idx, depth, p, sizeof p), (double)FLT_MAX, sl_numstr(v, d, sizeof d));
	}
	return (float)v;
}

/* Fills dst from the nested table on the top of the stack, at depth d. */
static void fill_nested(lua_State *L, const char *fn, int nd, const int64_t *shape, int d,
                        int64_t *idx, float **dst)
{
	char p[96], d2[96];
	if (lua_type(L, -1) != LUA_TTABLE)
		sl_error(L, fn, "element %s must be a table (row of %lld), got %s",
		         pathstr(idx, d, p, sizeof p), (long long)shape[d],
		         sl_describe(L, -1, d2, sizeof d2));
	lua_Unsigned len = lua_rawlen(L, -1);
	if ((int64_t)len != shape[d])
		sl_error(L, fn, "ragged table: row %s has %llu element%s, expected %lld",
		         d ? pathstr(idx, d, p, sizeof p) : "{}", (unsigned long long)len,
		         len == 1 ? "" : "s", (long long)shape[d]);
	luaL_checkstack(L, 2, NULL);
	for (int64_t i = 0; i < shape[d]; i++) {
		idx[d] = i;
		lua_rawgeti(L, -1, i + 1);
		if (d + 1 == nd)
			*(*dst)++ = elemval(L, fn, idx, d + 1);
		else
			fill_nested(L, fn, nd, shape, d + 1, idx, dst);
		lua_pop(L, 1);
	}
}

static int tensor_from(lua_State *L)
{
	const char *fn = "segloss.tensor.from";
	sl_checknargs(L, fn, 0, 1, 2);
	if (lua_type(L, 1) != LUA_TTABLE) {
		char d[96];
		sl_error(L, fn, "data must be a table, got %s", sl_describe(L, 1, d, sizeof d));
	}
	int64_t shape[SL_MAXDIM], idx[SL_MAXDIM];
	if (!lua_isnoneornil(L, 2)) {
		/* from(flat, shape) */
		if (lua_type(L, 2) != LUA_TTABLE) {
			char d[96];
			sl_error(L, fn, "shape must be a table of dimensions, got %s",
			         sl_describe(L, 2, d, sizeof d));
		}
		int nd = sl_checkshape(L, 2, fn, shape);
		size_t n = sl_checksize(L, fn, nd, shape);
		lua_Unsigned len = lua_rawlen(L, 1);
		if (len != n) {
			char b[96];
			sl_error(L, fn, "data has %llu elements but shape %s needs %zu",
			         (unsigned long long)len, sl_shapestr(nd, shape, b, sizeof b), n);
		}
		sl_tensor *t = sl_newtensor(L, fn, nd, shape);
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, 1, (lua_Integer)i + 1);
			idx[0] = (int64_t)i;
			t->data[i] = elemval(L, fn, idx, 1);
			lua_pop(L, 1);
		}
		return 1;
	}
	/* from(nested): the shape follows the first element at each depth */
	lua_settop(L, 1);
	int nd = 0;
	lua_pushvalue(L, 1);
	while (lua_type(L, -1) == LUA_TTABLE) {
		if (nd == SL_MAXDIM)
			sl_error(L, fn, "nested table has more than %d levels", SL_MAXDIM);
		lua_Unsigned len = lua_rawlen(L, -1);
		if (len == 0)
			sl_error(L, fn, "empty table at depth %d (dimensions must be >= 1)", nd + 1);
		if (len > (lua_Unsigned)SL_MAXNUMEL)
			sl_error(L, fn, "table is too large");
		shape[nd++] = (int64_t)len;
		lua_rawgeti(L, -1, 1);
	}
	lua_settop(L, 1);
	sl_tensor *t = sl_newtensor(L, fn, nd, shape);
	float *dst = t->data;
	lua_pushvalue(L, 1);
	fill_nested(L, fn, nd, shape, 0, idx, &dst);
	lua_pop(L, 1);
	return 1;
}

/* Closes the FILE* of a box on collection, error or success. */
static int filebox_gc(lua_State *L)
{
	FILE **f = lua_touserdata(L, 1);
	if (*f) {
		fclose(*f);
		*f = NULL;
	}
	return 0;
}

static int tensor_load(lua_State *L)
{
	const char *fn = "segloss.tensor.load";
	sl_checknargs(L, fn, 0, 1, 1);
	const char *path = sl_checkstr(L, 1, fn, "path");
	FILE **box = lua_newuserdatauv(L, sizeof(FILE *), 0);
	*box = NULL;
	if (luaL_newmetatable(L, "segloss.filebox")) {
		lua_pushcfunction(L, filebox_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	*box = fopen(path, "rb");
	if (!*box)
		sl_error(L, fn, "cannot open '%s': %s", path, strerror(errno));
	sl_npy h;
	char err[256];
	if (sl_npy_read_header(*box, &h, err, sizeof err) != 0 ||
	    sl_npy_check_size(*box, &h, err, sizeof err) != 0)
		sl_error(L, fn, "'%s': %s", path, err);
	sl_tensor *t = sl_newtensor(L, fn, h.ndim, h.shape);
	if (sl_npy_read_data(*box, &h, t->data, err, sizeof err) != 0)
		sl_error(L, fn, "'%s': %s", path, err);
	fclose(*box);
	*box = NULL;
	return 1;
}

static int tensor_istensor(lua_State *L)
{
	sl_checknargs(L, "segloss.tensor.istensor", 0, 1, 1);
	lua_pushboolean(L, sl_totensor(L, 1) != NULL);
	return 1;
}

/* ------------------------------------------------------------------ */
/* shape and elements */

static int tensor_shape(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:shape");
	sl_checknargs(L, "segloss.Tensor:shape", 1, 0, 0);
	lua_createtable(L, t->ndim, 0);
	for (int i = 0; i < t->ndim; i++) {
		lua_pushinteger(L, t->shape[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

static int tensor_size(lua_State *L)
{
	const char *fn = "segloss.Tensor:size";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 1);
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1); /* t:size(nil) is t:size(), not t:shape(nil) */
		return tensor_shape(L);
	}
	lua_Integer i = sl_checkint(L, 2, fn, "dimension", 1, t->ndim);
	lua_pushinteger(L, t->shape[i - 1]);
	return 1;
}

static int tensor_dim(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:dim");
	sl_checknargs(L, "segloss.Tensor:dim", 1, 0, 0);
	lua_pushinteger(L, t->ndim);
	return 1;
}

static int tensor_numel(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:numel");
	lua_pushinteger(L, (lua_Integer)t->numel);
	return 1;
}

/* The flat offset of the indices at 2 .. ndim+1. */
static size_t offset(lua_State *L, const char *fn, const sl_tensor *t)
{
	size_t off = 0;
	char what[32];
	for (int i = 0; i < t->ndim; i++) {
		snprintf(what, sizeof what, "index %d", i + 1);
		lua_Integer k = sl_checkint(L, i + 2, fn, what, 1, t->shape[i]);
		off = off * (size_t)t->shape[i] + (size_t)(k - 1);
	}
	return off;
}

static int tensor_get(lua_State *L)
{
	const char *fn = "segloss.Tensor:get";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, t->ndim, t->ndim);
	lua_pushnumber(L, (lua_Number)t->data[offset(L, fn, t)]);
	return 1;
}

static int tensor_set(lua_State *L)
{
	const char *fn = "segloss.Tensor:set";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, t->ndim + 1, t->ndim + 1);
	size_t off = offset(L, fn, t);
	t->data[off] = sl_checkfloat(L, t->ndim + 2, fn, "value");
	sl_touch(t);
	lua_settop(L, 1);
	return 1;
}

static void totable(lua_State *L, const sl_tensor *t, int d, const float **src)
{
	luaL_checkstack(L, 2, NULL);
	lua_createtable(L, (int)t->shape[d], 0);
	for (int64_t i = 0; i < t->shape[d]; i++) {
		if (d + 1 == t->ndim)
			lua_pushnumber(L, (lua_Number) * (*src)++);
		else
			totable(L, t, d + 1, src);
		lua_rawseti(L, -2, i + 1);
	}
}

static int tensor_totable(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:totable");
	sl_checknargs(L, "segloss.Tensor:totable", 1, 0, 0);
	const float *src = t->data;
	totable(L, t, 0, &src);
	return 1;
}

/* ------------------------------------------------------------------ */
/* copies and views */

static int tensor_clone(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:clone");
	sl_checknargs(L, "segloss.Tensor:clone", 1, 0, 0);
	sl_tensor *r = newlike(L, "segloss.Tensor:clone", t);
	memcpy(r->data, t->data, t->numel * sizeof(float));
	return 1;
}

static int tensor_fill(lua_State *L)
{
	const char *fn = "segloss.Tensor:fill";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 1);
	fill(t, sl_checkfloat(L, 2, fn, "value"));
	sl_touch(t);
	lua_settop(L, 1);
	return 1;
}

static int tensor_copy(lua_State *L)
{
	const char *fn = "segloss.Tensor:copy";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 1);
	sl_tensor *s = sl_checktensor(L, 2, fn, "source");
	if (!sl_same_shape(t->ndim, t->shape, s->ndim, s->shape))
		sl_shape_mismatch(L, fn, "source", s, NULL, t->ndim, t->shape, NULL);
	memmove(t->data, s->data, t->numel * sizeof(float));
	sl_touch(t);
	lua_settop(L, 1);
	return 1;
}

/* Pushes a view of t (at stack index idx) with the given shape, its
 * elements starting at t->data + off. */
static sl_tensor *push_view(lua_State *L, int idx, sl_tensor *t, int nd, const int64_t *shape,
                            size_t off, size_t numel)
{
	sl_tensor *v = lua_newuserdatauv(L, sizeof(sl_tensor), 1);
	*v = *t;
	v->view = 1;
	v->ndim = nd;
	v->data = t->data + off;
	v->numel = numel;
	v->owner = t->owner;
	memcpy(v->shape, shape, (size_t)nd * sizeof shape[0]);
	luaL_setmetatable(L, SL_TENSOR_MT);
	/* keep the owner of the elements alive, never a chain of views */
	if (t->view)
		lua_getiuservalue(L, idx, 1);
	else
		lua_pushvalue(L, idx);
	lua_setiuservalue(L, -2, 1);
	return v;
}

static int tensor_reshape(lua_State *L)
{
	const char *fn = "segloss.Tensor:reshape";
	sl_tensor *t = self(L, fn);
	int top = lua_gettop(L), tab = lua_type(L, 2) == LUA_TTABLE;
	if (tab && top > 2)
		sl_checknargs(L, fn, 1, 1, 1);
	int nd = tab ? (int)lua_rawlen(L, 2) : top - 1;
	if (tab && lua_rawlen(L, 2) > SL_MAXDIM)
		nd = SL_MAXDIM + 1;
	if (nd < 1 || nd > SL_MAXDIM)
		sl_error(L, fn, "shape must have 1 to %d dimensions, got %d", SL_MAXDIM, nd);
	int64_t shape[SL_MAXDIM];
	int infer = -1;
	char what[32];
	for (int i = 0; i < nd; i++) {
		if (tab)
			lua_rawgeti(L, 2, i + 1);
		int idx = tab ? -1 : i + 2;
		snprintf(what, sizeof what, "dimension %d", i + 1);
		lua_Integer v = sl_checkint(L, idx, fn, what, -1, SL_MAXNUMEL);
		if (v == 0 || (v == -1 && infer >= 0))
			sl_error(L, fn, "%s must be >= 1 (or -1 once, to infer it), got %lld", what,
			         (long long)v);
		if (v == -1)
			infer = i;
		shape[i] = v;
		if (tab)
			lua_pop(L, 1);
	}
	/* the product of the given sizes, without overflow */
	int64_t known = 1, numel = (int64_t)t->numel;
	int ok = 1;
	for (int i = 0; ok && i < nd; i++)
		if (i != infer)
			ok = !__builtin_mul_overflow(known, shape[i], &known) && known <= numel;
	if (ok && infer >= 0) {
		ok = numel % known == 0;
		shape[infer] = ok ? numel / known : -1;
		known = ok ? numel : known;
	}
	if (!ok || known != numel) {
		char a[160], b[160];
		sl_error(L, fn, "cannot reshape %s (%zu elements) into %s",
		         sl_shapestr(t->ndim, t->shape, a, sizeof a), t->numel,
		         sl_shapestr(nd, shape, b, sizeof b));
	}
	push_view(L, 1, t, nd, shape, 0, t->numel);
	return 1;
}

/* The elements of t between start and start + len - 1 (1-based) along
 * dimension d as a new tensor: a view for d = 1 (the elements are
 * contiguous), a copy otherwise (segloss tensors are always contiguous). */
static void slice(lua_State *L, const char *fn, sl_tensor *t, int d, int64_t start, int64_t len,
                  int drop)
{
	int64_t shape[SL_MAXDIM];
	size_t outer = 1, inner = 1;
	for (int i = 0; i < d; i++)
		outer *= (size_t)t->shape[i];
	for (int i = d + 1; i < t->ndim; i++)
		inner *= (size_t)t->shape[i];
	int nd = 0;
	for (int i = 0; i < t->ndim; i++)
		if (!(drop && i == d))
			shape[nd++] = i == d ? len : t->shape[i];
	size_t row = (size_t)len * inner, off = (size_t)(start - 1) * inner;
	if (d == 0) {
		push_view(L, 1, t, nd, shape, off, row);
		return;
	}
	sl_tensor *r = sl_newtensor(L, fn, nd, shape);
	size_t stride = (size_t)t->shape[d] * inner;
	for (size_t o = 0; o < outer; o++)
		memcpy(r->data + o * row, t->data + o * stride + off, row * sizeof(float));
}

static int tensor_narrow(lua_State *L)
{
	const char *fn = "segloss.Tensor:narrow";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 3, 3);
	int d = (int)sl_checkint(L, 2, fn, "dimension", 1, t->ndim) - 1;
	int64_t n = t->shape[d];
	lua_Integer start = sl_checkint(L, 3, fn, "start", 1, n);
	lua_Integer len = sl_checkint(L, 4, fn, "length", 1, n - start + 1);
	slice(L, fn, t, d, start, len, 0);
	return 1;
}

static int tensor_select(lua_State *L)
{
	const char *fn = "segloss.Tensor:select";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 2, 2);
	if (t->ndim < 2) {
		char b[160];
		sl_error(L, fn, "needs at least 2 dimensions, got shape %s (use get for an element)",
		         sl_shapestr(t->ndim, t->shape, b, sizeof b));
	}
	int d = (int)sl_checkint(L, 2, fn, "dimension", 1, t->ndim) - 1;
	lua_Integer i = sl_checkint(L, 3, fn, "index", 1, t->shape[d]);
	slice(L, fn, t, d, i, 1, 1);
	return 1;
}

static int tensor_isview(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:isview");
	sl_checknargs(L, "segloss.Tensor:isview", 1, 0, 0);
	lua_pushboolean(L, t->view);
	return 1;
}

static int tensor_version(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:version");
	sl_checknargs(L, "segloss.Tensor:version", 1, 0, 0);
	lua_pushinteger(L, (lua_Integer)sl_version(t));
	return 1;
}

/* ------------------------------------------------------------------ */
/* arithmetic: tensor op tensor (same shape) and tensor op number, either side */

static int arith(lua_State *L, int op, const char *fn)
{
	sl_tensor *a = sl_totensor(L, 1), *b = sl_totensor(L, 2);
	sl_exec e = sl_getexec(L);
	if (a && b) {
		if (!sl_same_shape(a->ndim, a->shape, b->ndim, b->shape)) {
			char x[160], y[160];
			sl_error(L, fn, "shapes %s and %s differ", sl_shapestr(a->ndim, a->shape, x, sizeof x),
			         sl_shapestr(b->ndim, b->shape, y, sizeof y));
		}
		sl_tensor *r = newlike(L, fn, a);
		sl_op_binary(&e, op, a->numel, a->data, b->data, 0.0f, 0, r->data);
		return 1;
	}
	/* one side is a tensor (Lua called us), the other must be a number */
	sl_tensor *t = a ? a : b;
	float v = sl_checkfloat(L, a ? 2 : 1, fn, "operand");
	sl_tensor *r = newlike(L, fn, t);
	sl_op_binary(&e, op, t->numel, t->data, NULL, v, a == NULL, r->data);
	return 1;
}

/* In place, Torch style: t:add(a) is t = t + a; t:add(a, b) is t = a + b;
 * a and b are tensors of t's shape or numbers. Returns t. */
static int inplace(lua_State *L, int op, const char *fn)
{
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 2);
	int two = lua_gettop(L) == 3;
	int ia = two ? 2 : 1, ib = two ? 3 : 2;
	sl_tensor *a = sl_totensor(L, ia), *b = sl_totensor(L, ib);
	const char *wa = two ? "first operand" : "self", *wb = two ? "second operand" : "operand";
	float va = a ? 0.0f : sl_checkfloat(L, ia, fn, wa);
	float vb = b ? 0.0f : sl_checkfloat(L, ib, fn, wb);
	sl_tensor *chk[2] = {a, b};
	for (int i = 0; i < 2; i++)
		if (chk[i] && !sl_same_shape(chk[i]->ndim, chk[i]->shape, t->ndim, t->shape))
			sl_shape_mismatch(L, fn, i ? wb : wa, chk[i], NULL, t->ndim, t->shape, NULL);
	sl_exec e = sl_getexec(L);
	if (a && b) {
		sl_op_binary(&e, op, t->numel, a->data, b->data, 0.0f, 0, t->data);
	} else if (a || b) {
		sl_op_binary(&e, op, t->numel, (a ? a : b)->data, NULL, a ? vb : va, a == NULL, t->data);
	} else {
		fill(t, op == '+' ? va + vb : op == '-' ? va - vb : op == '*' ? va * vb : va / vb);
	}
	sl_touch(t);
	lua_settop(L, 1);
	return 1;
}

static int tensor_addi(lua_State *L) { return inplace(L, '+', "segloss.Tensor:add"); }
static int tensor_subi(lua_State *L) { return inplace(L, '-', "segloss.Tensor:sub"); }
static int tensor_muli(lua_State *L) { return inplace(L, '*', "segloss.Tensor:mul"); }
static int tensor_divi(lua_State *L) { return inplace(L, '/', "segloss.Tensor:div"); }

static int tensor_add(lua_State *L) { return arith(L, '+', "segloss.Tensor:__add"); }
static int tensor_sub(lua_State *L) { return arith(L, '-', "segloss.Tensor:__sub"); }
static int tensor_mul(lua_State *L) { return arith(L, '*', "segloss.Tensor:__mul"); }
static int tensor_div(lua_State *L) { return arith(L, '/', "segloss.Tensor:__div"); }

static int tensor_unm(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:__unm");
	sl_tensor *r = newlike(L, "segloss.Tensor:__unm", t);
	for (size_t i = 0; i < t->numel; i++)
		r->data[i] = -t->data[i];
	return 1;
}

/* ------------------------------------------------------------------ */
/* reductions */

/* A reduction along dimension d (1-based at idx): outer x n x inner, the
 * result keeping d with size 1 (Torch7's convention). Returns d (0-based). */
static int reduce_dim(lua_State *L, const char *fn, const sl_tensor *t, int idx, size_t *outer,
                      size_t *n, size_t *inner, int64_t *shape)
{
	int d = (int)sl_checkint(L, idx, fn, "dimension", 1, t->ndim) - 1;
	*outer = *inner = 1;
	for (int i = 0; i < d; i++)
		*outer *= (size_t)t->shape[i];
	for (int i = d + 1; i < t->ndim; i++)
		*inner *= (size_t)t->shape[i];
	*n = (size_t)t->shape[d];
	memcpy(shape, t->shape, (size_t)t->ndim * sizeof shape[0]);
	shape[d] = 1;
	return d;
}

/* Σ (or the mean) along a dimension, in double, in index order: the same
 * bits for any thread count. */
static int sum_dim(lua_State *L, const char *fn, sl_tensor *t, int mean)
{
	size_t outer, n, inner;
	int64_t shape[SL_MAXDIM];
	reduce_dim(L, fn, t, 2, &outer, &n, &inner, shape);
	sl_tensor *r = sl_newtensor(L, fn, t->ndim, shape);
	double *acc = sl_alloc(L, fn, inner * sizeof(double), 0);
	const float *x = t->data;
	for (size_t o = 0; o < outer; o++) {
		for (size_t k = 0; k < inner; k++)
			acc[k] = 0.0;
		for (size_t i = 0; i < n; i++) {
			const float *row = x + (o * n + i) * inner;
			for (size_t k = 0; k < inner; k++)
				acc[k] += (double)row[k];
		}
		for (size_t k = 0; k < inner; k++)
			r->data[o * inner + k] = (float)(mean ? acc[k] / (double)n : acc[k]);
	}
	lua_pop(L, 1);
	return 1;
}

static int tensor_sum(lua_State *L)
{
	const char *fn = "segloss.Tensor:sum";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 1);
	if (!lua_isnoneornil(L, 2))
		return sum_dim(L, fn, t, 0);
	sl_exec e = sl_getexec(L);
	lua_pushnumber(L, sl_op_sum(&e, t->numel, t->data));
	return 1;
}

static int tensor_mean(lua_State *L)
{
	const char *fn = "segloss.Tensor:mean";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 1);
	if (!lua_isnoneornil(L, 2))
		return sum_dim(L, fn, t, 1);
	sl_exec e = sl_getexec(L);
	lua_pushnumber(L, sl_op_sum(&e, t->numel, t->data) / (double)t->numel);
	return 1;
}

static int tensor_dot(lua_State *L)
{
	const char *fn = "segloss.Tensor:dot";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 1);
	sl_tensor *u = sl_checktensor(L, 2, fn, "other");
	if (u->numel != t->numel) {
		char a[160], b[160];
		sl_error(L, fn, "other has shape %s, %zu elements, but self %s has %zu",
		         sl_shapestr(u->ndim, u->shape, a, sizeof a), u->numel,
		         sl_shapestr(t->ndim, t->shape, b, sizeof b), t->numel);
	}
	sl_exec e = sl_getexec(L);
	lua_pushnumber(L, sl_op_dot(&e, t->numel, t->data, u->data));
	return 1;
}

/* The extreme along a dimension and its 1-based index: the first one, or
 * the first NaN if there is one (NaN wins, as in min() and max()). */
static int minmax_dim(lua_State *L, const char *fn, const sl_tensor *t, int want_max)
{
	size_t outer, n, inner;
	int64_t shape[SL_MAXDIM];
	int d = reduce_dim(L, fn, t, 2, &outer, &n, &inner, shape);
	if (n > ((size_t)1 << 24)) {
		char b[160];
		sl_error(L, fn, "dimension %d of %s is longer than 2^24: its indices are not exact in float32",
		         d + 1, sl_shapestr(t->ndim, t->shape, b, sizeof b));
	}
	sl_tensor *v = sl_newtensor(L, fn, t->ndim, shape);
	sl_tensor *ix = sl_newtensor(L, fn, t->ndim, shape);
	for (size_t o = 0; o < outer; o++)
		for (size_t k = 0; k < inner; k++) {
			const float *x = t->data + o * n * inner + k;
			float best = x[0];
			size_t bi = 0;
			for (size_t i = 1; i < n && best == best; i++) {
				float c = x[i * inner];
				if (c != c || (want_max ? c > best : c < best)) {
					best = c;
					bi = i;
				}
			}
			v->data[o * inner + k] = best;
			ix->data[o * inner + k] = (float)(bi + 1);
		}
	return 2;
}

static int minmax(lua_State *L, const char *fn, int want_max)
{
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 1);
	if (!lua_isnoneornil(L, 2))
		return minmax_dim(L, fn, t, want_max);
	sl_exec e = sl_getexec(L);
	float lo, hi;
	sl_op_minmax(&e, t->numel, t->data, &lo, &hi);
	lua_pushnumber(L, (lua_Number)(want_max ? hi : lo));
	return 1;
}

static int tensor_min(lua_State *L) { return minmax(L, "segloss.Tensor:min", 0); }
static int tensor_max(lua_State *L) { return minmax(L, "segloss.Tensor:max", 1); }

/* ------------------------------------------------------------------ */
/* elementwise functions and the channel axis */

static int map(lua_State *L, const char *fn, size_t member)
{
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 0);
	sl_exec e = sl_getexec(L);
	sl_unary_fn f;
	memcpy(&f, (const char *)e.k + member, sizeof f);
	sl_tensor *r = newlike(L, fn, t);
	sl_op_map(&e, f, t->numel, t->data, r->data);
	return 1;
}

#define MAP(name)                                                                         \
	static int tensor_##name(lua_State *L)                                            \
	{                                                                                 \
		return map(L, "segloss.Tensor:" #name, offsetof(sl_kern, name));           \
	}
MAP(exp)
MAP(log)
MAP(log1p)
MAP(sigmoid)
MAP(softplus)

static int tensor_pow(lua_State *L)
{
	const char *fn = "segloss.Tensor:pow";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 1);
	double g = sl_checknum(L, 2, fn, "exponent", 1);
	if (g < 0 || g > 0x1p24) {
		char b[64];
		sl_error(L, fn, "exponent must be in [0, 2^24], got %s", sl_numstr(g, b, sizeof b));
	}
	sl_exec e = sl_getexec(L);
	sl_tensor *r = newlike(L, fn, t);
	sl_op_pow(&e, t->numel, t->data, (float)g, r->data);
	return 1;
}

/* N, C and the spatial size M of a tensor with a channel axis (dim >= 2) */
static void ncm(lua_State *L, const char *fn, const sl_tensor *t, size_t *N, size_t *C, size_t *M)
{
	if (t->ndim < 2) {
		char b[160];
		sl_error(L, fn, "needs a channel axis (dimension 2), got shape %s",
		         sl_shapestr(t->ndim, t->shape, b, sizeof b));
	}
	*N = (size_t)t->shape[0];
	*C = (size_t)t->shape[1];
	*M = t->numel / (*N * *C);
}

static int tensor_softmax(lua_State *L)
{
	const char *fn = "segloss.Tensor:softmax";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 0);
	size_t N, C, M;
	ncm(L, fn, t, &N, &C, &M);
	sl_exec e = sl_getexec(L);
	sl_tensor *r = newlike(L, fn, t);
	sl_op_softmax(&e, N, C, M, t->data, r->data);
	return 1;
}

static int tensor_argmax(lua_State *L)
{
	const char *fn = "segloss.Tensor:argmax";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 0, 0);
	size_t N, C, M;
	ncm(L, fn, t, &N, &C, &M);
	int64_t shape[SL_MAXDIM];
	memcpy(shape, t->shape, sizeof shape);
	shape[1] = 1;
	sl_tensor *r = sl_newtensor(L, fn, t->ndim, shape);
	for (size_t n = 0; n < N; n++) {
		const float *x = t->data + n * C * M;
		float *y = r->data + n * M;
		for (size_t s = 0; s < M; s++) {
			/* the first maximum; a NaN counts as the largest (NumPy) */
			size_t best = 0;
			float bv = x[s];
			for (size_t c = 1; c < C && bv == bv; c++) {
				float v = x[c * M + s];
				if (v > bv || v != v) {
					bv = v;
					best = c;
				}
			}
			y[s] = (float)best;
		}
	}
	return 1;
}

static int tensor_onehot(lua_State *L)
{
	const char *fn = "segloss.Tensor:onehot";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 1);
	lua_Integer C = sl_checkint(L, 2, fn, "number of classes", 1, 1 << 24);
	size_t N, C1, M;
	ncm(L, fn, t, &N, &C1, &M);
	if (C1 != 1) {
		char b[160];
		sl_error(L, fn, "needs a label map of shape (N,1,...), got %s",
		         sl_shapestr(t->ndim, t->shape, b, sizeof b));
	}
	for (size_t i = 0; i < t->numel; i++) {
		float v = t->data[i];
		if (!(v >= 0.0f && v < (float)C && v == floorf(v))) {
			char b[160], d[64];
			sl_error(L, fn, "label %s at %s is not an integer in 0..%lld",
			         sl_numstr((double)v, d, sizeof d), sl_coordstr(t->ndim, t->shape, i, b, sizeof b),
			         (long long)C - 1);
		}
	}
	int64_t shape[SL_MAXDIM];
	memcpy(shape, t->shape, sizeof shape);
	shape[1] = C;
	sl_tensor *r = sl_newtensor(L, fn, t->ndim, shape); /* checks N*C*M <= 2^40 */
	memset(r->data, 0, r->numel * sizeof(float));
	for (size_t n = 0; n < N; n++)
		for (size_t s = 0; s < M; s++)
			r->data[(n * (size_t)C + (size_t)t->data[n * M + s]) * M + s] = 1.0f;
	return 1;
}

static int tensor_save(lua_State *L)
{
	const char *fn = "segloss.Tensor:save";
	sl_tensor *t = self(L, fn);
	sl_checknargs(L, fn, 1, 1, 1);
	const char *path = sl_checkstr(L, 2, fn, "path");
	char err[512];
	if (sl_npy_write(path, t->ndim, t->shape, t->data, err, sizeof err) != 0)
		sl_error(L, fn, "%s", err);
	lua_settop(L, 1);
	return 1;
}

static int tensor_len(lua_State *L)
{
	sl_tensor *t = self(L, "segloss.Tensor:__len");
	lua_pushinteger(L, (lua_Integer)t->numel);
	return 1;
}

/* ------------------------------------------------------------------ */

static const luaL_Reg ctors[] = {
	{"zeros", tensor_zeros}, {"ones", tensor_ones},   {"full", tensor_full},
	{"from", tensor_from},   {"rand", tensor_rand},   {"randn", tensor_randn},
	{"load", tensor_load},   {"istensor", tensor_istensor}, {NULL, NULL},
};

static const luaL_Reg methods[] = {
	{"shape", tensor_shape},     {"size", tensor_size},       {"dim", tensor_dim},
	{"numel", tensor_numel},     {"get", tensor_get},         {"set", tensor_set},
	{"totable", tensor_totable}, {"clone", tensor_clone},     {"fill", tensor_fill},
	{"copy", tensor_copy},       {"reshape", tensor_reshape}, {"sum", tensor_sum},
	{"mean", tensor_mean},       {"min", tensor_min},         {"max", tensor_max},
	{"dot", tensor_dot},         {"add", tensor_addi},        {"sub", tensor_subi},
	{"mul", tensor_muli},        {"div", tensor_divi},
	{"exp", tensor_exp},         {"log", tensor_log},         {"log1p", tensor_log1p},
	{"sigmoid", tensor_sigmoid}, {"softplus", tensor_softplus}, {"pow", tensor_pow},
	{"softmax", tensor_softmax}, {"argmax", tensor_argmax},   {"onehot", tensor_onehot},
	{"save", tensor_save},       {"narrow", tensor_narrow},   {"select", tensor_select},
	{"isview", tensor_isview},   {"version", tensor_version}, {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
	{"__tostring", sl_tensor_tostring},
	{"__len", tensor_len},
	{"__add", tensor_add},
	{"__sub", tensor_sub},
	{"__mul", tensor_mul},
	{"__div", tensor_div},
	{"__unm", tensor_unm},
	{NULL, NULL},
};

/* Fills the Tensor metatable (again, if an earlier require made it) and
 * pushes the table of constructors; ctx is the stack index of the context. */
void sl_tensor_open(lua_State *L, int ctx)
{
	luaL_newmetatable(L, SL_TENSOR_MT);
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, metamethods, 1);
	lua_createtable(L, 0, sizeof methods / sizeof methods[0]);
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, methods, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_createtable(L, 0, sizeof ctors / sizeof ctors[0]);
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, ctors, 1);
}
