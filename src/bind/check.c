/*
 * check.c — argument checks and error messages for every binding.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "bind.h"

_Noreturn void sl_error(lua_State *L, const char *fname, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lua_pushfstring(L, "%s: %s", fname, msg);
	lua_error(L);
	abort(); /* not reached: lua_error does not return */
}

int sl_same_shape(int na, const int64_t *a, int nb, const int64_t *b)
{
	if (na != nb)
		return 0;
	for (int i = 0; i < na; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

int sl_pixel_shape(const sl_tensor *x, const sl_tensor *t)
{
	if (t->ndim != x->ndim || t->shape[0] != x->shape[0] || t->shape[1] != 1)
		return 0;
	for (int i = 2; i < x->ndim; i++)
		if (t->shape[i] != x->shape[i])
			return 0;
	return 1;
}

int sl_overlaps(const sl_tensor *a, const sl_tensor *b)
{
	/* as integers: comparing pointers into different objects is undefined */
	uintptr_t a0 = (uintptr_t)a->data, a1 = (uintptr_t)(a->data + a->numel);
	uintptr_t b0 = (uintptr_t)b->data, b1 = (uintptr_t)(b->data + b->numel);
	return a0 < b1 && b0 < a1;
}

_Noreturn void sl_shape_mismatch(lua_State *L, const char *fname, const char *what, const sl_tensor *t,
                                 const char *refwhat, int ndim, const int64_t *shape, const char *tail)
{
	char a[160], b[160];
	sl_error(L, fname, "%s shape %s does not match %s%s%s%s", what, sl_shapestr(t->ndim, t->shape, a, sizeof a),
	         refwhat ? refwhat : "", refwhat ? " " : "", sl_shapestr(ndim, shape, b, sizeof b),
	         tail ? tail : "");
}

const char *sl_numstr(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "nan");
	else if (isinf(v))
		snprintf(buf, len, v > 0 ? "inf" : "-inf");
	else
		snprintf(buf, len, "%.14g", v);
	return buf;
}

const char *sl_quote(lua_State *L, int idx, char *buf, size_t len)
{
	/* at most 40 bytes, NUL and other control bytes escaped */
	size_t sl, n = 0;
	const char *s = lua_tolstring(L, idx, &sl);
	char q[4 * 40 + 1];
	q[0] = '\0';
	for (size_t i = 0; i < sl && i < 40; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			n += (size_t)snprintf(q + n, sizeof q - n, "\\0");
		else if (c < 32 || c == 127 || c == '"' || c == '\\')
			n += (size_t)snprintf(q + n, sizeof q - n, "\\%03o", c);
		else
			q[n++] = (char)c;
		q[n] = '\0';
	}
	snprintf(buf, len, "\"%s\"%s", q, sl > 40 ? "..." : "");
	return buf;
}

const char *sl_describe(lua_State *L, int idx, char *buf, size_t len)
{
	char tmp[64];
	switch (lua_type(L, idx)) {
	case LUA_TNONE:
		snprintf(buf, len, "nothing");
		break;
	case LUA_TNIL:
		snprintf(buf, len, "nil");
		break;
	case LUA_TBOOLEAN:
		snprintf(buf, len, "boolean %s", lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			snprintf(buf, len, "%lld", (long long)lua_tointeger(L, idx));
		else
			snprintf(buf, len, "%s", sl_numstr(lua_tonumber(L, idx), tmp, sizeof tmp));
		break;
	case LUA_TSTRING: {
		char q[4 * 40 + 8];
		snprintf(buf, len, "string %s", sl_quote(L, idx, q, sizeof q));
		break;
	}
	case LUA_TUSERDATA: {
		sl_tensor *t = sl_totensor(L, idx);
		if (t) {
			snprintf(buf, len, "a segloss.Tensor %s", sl_shapestr(t->ndim, t->shape, tmp, sizeof tmp));
			break;
		}
	}
		/* fall through */
	default: {
		/* a value whose metatable names its type (a segloss.Criterion...) */
		int mt = luaL_getmetafield(L, idx, "__name"); /* pushes nothing if nil */
		if (mt == LUA_TSTRING)
			snprintf(buf, len, "a %.60s", lua_tostring(L, -1));
		else
			snprintf(buf, len, "a %s", luaL_typename(L, idx));
		if (mt != LUA_TNIL)
			lua_pop(L, 1);
		break;
	}
	}
	return buf;
}

void sl_checknargs(lua_State *L, const char *fname, int self, int lo, int hi)
{
	int n = lua_gettop(L) - self;
	if (n >= lo && n <= hi)
		return;
	if (lo == hi)
		sl_error(L, fname, "expected %d argument%s, got %d", lo, lo == 1 ? "" : "s", n);
	if (n < lo)
		sl_error(L, fname, "expected at least %d argument%s, got %d", lo, lo == 1 ? "" : "s", n);
	sl_error(L, fname, "expected at most %d argument%s, got %d", hi, hi == 1 ? "" : "s", n);
}

sl_tensor *sl_totensor(lua_State *L, int idx)
{
	return (sl_tensor *)luaL_testudata(L, idx, SL_TENSOR_MT);
}

sl_tensor *sl_checktensor(lua_State *L, int idx, const char *fname, const char *what)
{
	sl_tensor *t = sl_totensor(L, idx);
	if (!t) {
		char d[96];
		sl_error(L, fname, "%s must be a segloss.Tensor, got %s", what,
		         sl_describe(L, idx, d, sizeof d));
	}
	return t;
}

static const char *rangestr(lua_Integer lo, lua_Integer hi, char *buf, size_t len)
{
	if (hi >= SL_MAXNUMEL)
		snprintf(buf, len, "an integer >= %lld", (long long)lo);
	else
		snprintf(buf, len, "an integer in %lld..%lld", (long long)lo, (long long)hi);
	return buf;
}

lua_Integer sl_checkint(lua_State *L, int idx, const char *fname, const char *what,
                        lua_Integer lo, lua_Integer hi)
{
	lua_Integer v = 0;
	int ok = 0;
	if (lua_type(L, idx) == LUA_TNUMBER) {
		if (lua_isinteger(L, idx)) {
			v = lua_tointeger(L, idx);
			ok = 1;
		} else {
			double d = lua_tonumber(L, idx);
			/* integral and within the int64 range (2^63 is excluded) */
			if (d == floor(d) && d >= -0x1p63 && d < 0x1p63) {
				v = (lua_Integer)d;
				ok = 1;
			}
		}
	}
	if (!ok || v < lo || v > hi) {
		char d[96], r[64];
		sl_error(L, fname, "%s must be %s, got %s", what, rangestr(lo, hi, r, sizeof r),
		         sl_describe(L, idx, d, sizeof d));
	}
	return v;
}

double sl_checknum(lua_State *L, int idx, const char *fname, const char *what, int finite)
{
	if (lua_type(L, idx) != LUA_TNUMBER || (finite && !isfinite(lua_tonumber(L, idx)))) {
		char d[96];
		sl_error(L, fname, "%s must be a %snumber, got %s", what, finite ? "finite " : "",
		         sl_describe(L, idx, d, sizeof d));
	}
	return lua_tonumber(L, idx);
}

float sl_checkfloat(lua_State *L, int idx, const char *fname, const char *what)
{
	double v = sl_checknum(L, idx, fname, what, 0);
	if (!sl_fits_float(v)) {
		char d[96];
		sl_error(L, fname, "%s must be a number within the float32 range (|v| <= %.8g), got %s",
		         what, (double)FLT_MAX, sl_describe(L, idx, d, sizeof d));
	}
	return (float)v;
}

const char *sl_checkstr(lua_State *L, int idx, const char *fname, const char *what)
{
	if (lua_type(L, idx) != LUA_TSTRING) {
		char d[96];
		sl_error(L, fname, "%s must be a string, got %s", what, sl_describe(L, idx, d, sizeof d));
	}
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	if (strlen(s) != len) {
		char d[96];
		sl_error(L, fname, "%s must not contain a NUL byte, got %s", what,
		         sl_describe(L, idx, d, sizeof d));
	}
	return s;
}

/* Big userdata from calloc. Under luaL_newstate's allocator (realloc and
 * free), a big block comes from a fresh mmap anyway; calloc also knows that
 * it is zero, so segloss.tensor.zeros need not write its pages and they stay
 * out of the resident set until used. Every request still goes through the
 * state's allocator, so collectgarbage("count") includes the tensors and the
 * collector paces itself by them. A state with an allocator of its own
 * (lua_newstate) keeps it untouched: its big zeroed tensors are memset. */
static _Atomic(lua_Alloc) std_alloc; /* lauxlib's l_alloc, found at open */

static void *calloc_big(void *ud, void *ptr, size_t osize, size_t nsize)
{
	/* a new userdata (osize is then the type tag) of SL_MEM_BIG or more */
	if (ptr == NULL && osize == LUA_TUSERDATA && nsize >= SL_MEM_BIG)
		return calloc(1, nsize);
	return atomic_load_explicit(&std_alloc, memory_order_relaxed)(ud, ptr, osize, nsize);
}

void sl_alloc_open(lua_State *L)
{
	void *ud;
	lua_Alloc f = lua_getallocf(L, &ud);
	if (f == calloc_big || ud != NULL)
		return;
	lua_State *probe = luaL_newstate(); /* whose allocator is lauxlib's */
	if (!probe)
		return;
	lua_Alloc lf = lua_getallocf(probe, NULL);
	lua_close(probe);
	if (f != lf)
		return;
	atomic_store_explicit(&std_alloc, f, memory_order_relaxed);
	lua_setallocf(L, calloc_big, NULL);
}

int sl_alloc_zeroed(lua_State *L, size_t bytes)
{
	/* lua_newuserdatauv adds its header: nsize > bytes >= SL_MEM_BIG */
	return bytes >= SL_MEM_BIG && lua_getallocf(L, NULL) == calloc_big;
}

/* the body of sl_alloc, run under lua_pcall: (bytes, nuv) -> userdata */
static int alloc_ud(lua_State *L)
{
	size_t bytes = (size_t)lua_tointeger(L, 1);
	int nuv = (int)lua_tointeger(L, 2);
	lua_newuserdatauv(L, bytes, nuv);
	return 1;
}

void *sl_alloc(lua_State *L, const char *fname, size_t bytes, int nuv)
{
	/* small blocks: an allocation failure there is Lua's own "not enough
	 * memory", like any table or string */
	if (bytes < ((size_t)1 << 16))
		return lua_newuserdatauv(L, bytes, nuv);
	if (bytes > (size_t)LUA_MAXINTEGER)
		sl_error(L, fname, "out of memory (%zu bytes requested)", bytes);
	/* refused before it is made: overcommit would let it succeed and the
	 * kernel kill the process when the pages are written */
	char why[384];
	if (!sl_mem_fits(bytes, why, sizeof why))
		sl_error(L, fname, "out of memory (%zu bytes requested): %s", bytes, why);
	lua_pushcfunction(L, alloc_ud);
	lua_pushinteger(L, (lua_Integer)bytes);
	lua_pushinteger(L, nuv);
	int rc = lua_pcall(L, 2, 1, 0);
	if (rc != LUA_OK) {
		lua_pop(L, 1);
		if (rc == LUA_ERRMEM)
			sl_error(L, fname, "out of memory (%zu bytes requested)", bytes);
		sl_error(L, fname, "allocation of %zu bytes failed", bytes);
	}
	return lua_touserdata(L, -1);
}

size_t sl_checksize(lua_State *L, const char *fname, int ndim, const int64_t *shape)
{
	int64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (__builtin_mul_overflow(n, shape[i], &n) || n > SL_MAXNUMEL) {
			char b[160];
			sl_error(L, fname, "shape %s is too large (more than 2^40 elements)",
			         sl_shapestr(ndim, shape, b, sizeof b));
		}
	}
	return (size_t)n;
}

int sl_checkshape(lua_State *L, int idx, const char *fname, int64_t *shape)
{
	int top = lua_gettop(L), ndim;
	char what[32];
	if (lua_type(L, idx) == LUA_TTABLE) {
		if (top > idx) {
			char d[96];
			sl_error(L, fname, "unexpected argument after the shape table: %s",
			         sl_describe(L, idx + 1, d, sizeof d));
		}
		lua_Unsigned k = lua_rawlen(L, idx);
		if (k < 1 || k > SL_MAXDIM)
			sl_error(L, fname, "shape must have 1 to %d dimensions, got %llu", SL_MAXDIM,
			         (unsigned long long)k);
		ndim = (int)k;
		for (int i = 0; i < ndim; i++) {
			lua_rawgeti(L, idx, i + 1);
			snprintf(what, sizeof what, "dimension %d", i + 1);
			shape[i] = sl_checkint(L, -1, fname, what, 1, SL_MAXNUMEL);
			lua_pop(L, 1);
		}
	} else {
		ndim = top - idx + 1;
		if (ndim < 1) {
			sl_error(L, fname, "expected a shape (dimensions or a table of them), got nothing");
		}
		if (ndim > SL_MAXDIM)
			sl_error(L, fname, "shape must have 1 to %d dimensions, got %d", SL_MAXDIM, ndim);
		for (int i = 0; i < ndim; i++) {
			snprintf(what, sizeof what, "dimension %d", i + 1);
			shape[i] = sl_checkint(L, idx + i, fname, what, 1, SL_MAXNUMEL);
		}
	}
	sl_checksize(L, fname, ndim, shape);
	return ndim;
}
