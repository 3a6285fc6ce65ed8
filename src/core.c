/*
 * core.c — luaopen_segloss_core: the module segloss.core behind
 * lua/segloss/init.lua. Holds the per-state context (backend, threads, PRNG)
 * as upvalue 1 of every function, so independent Lua states do not share
 * settings.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind/bind.h"
#include "mem.h"
#include "kern/vmcheck.h"

static int core_backend(lua_State *L)
{
	sl_checknargs(L, "segloss.backend", 0, 0, 0);
	lua_pushstring(L, sl_getctx(L)->kern->name);
	return 1;
}

static const char *list_names(const sl_kern **ks, int n, char *buf, size_t len)
{
	size_t m = 0;
	buf[0] = '\0';
	for (int i = 0; i < n && m < len; i++)
		m += (size_t)snprintf(buf + m, len - m, "%s%s", i ? ", " : "", ks[i]->name);
	return buf;
}

/* The backend called name, or an error naming fname and the choices. */
static const sl_kern *find_backend(lua_State *L, const char *fname, const char *name)
{
	const sl_kern *k = sl_kern_find(name);
	if (k)
		return k;
	const sl_kern *ks[SL_MAX_BACKENDS];
	char b[128];
	int n = sl_kern_known(ks);
	for (int i = 0; i < n; i++)
		if (strcmp(ks[i]->name, name) == 0) {
			n = sl_kern_available(ks);
			sl_error(L, fname, "backend \"%s\" is not supported by this CPU (available: %s)",
			         name, list_names(ks, n, b, sizeof b));
		}
	sl_error(L, fname, "unknown backend \"%.40s\" (known: %s)", name, list_names(ks, n, b, sizeof b));
}

static int core_set_backend(lua_State *L)
{
	const char *fn = "segloss.set_backend";
	sl_checknargs(L, fn, 0, 1, 1);
	sl_getctx(L)->kern = find_backend(L, fn, sl_checkstr(L, 1, fn, "name"));
	return 0;
}

/* pushes a list of backend names */
static int push_names(lua_State *L, const sl_kern **ks, int n)
{
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushstring(L, ks[i]->name);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

static int core_backends(lua_State *L)
{
	sl_checknargs(L, "segloss.backends", 0, 0, 0);
	const sl_kern *ks[SL_MAX_BACKENDS];
	return push_names(L, ks, sl_kern_available(ks));
}

static int core_known_backends(lua_State *L)
{
	const sl_kern *ks[SL_MAX_BACKENDS];
	return push_names(L, ks, sl_kern_known(ks));
}

static int core_set_threads(lua_State *L)
{
	const char *fn = "segloss.set_threads";
	sl_checknargs(L, fn, 0, 1, 1);
	sl_getctx(L)->threads = (int)sl_checkint(L, 1, fn, "n", 1, SL_MAXTHREADS);
	return 0;
}

static int core_threads(lua_State *L)
{
	sl_checknargs(L, "segloss.threads", 0, 0, 0);
	lua_pushinteger(L, sl_getctx(L)->threads);
	return 1;
}

static int core_seed(lua_State *L)
{
	const char *fn = "segloss.seed";
	sl_checknargs(L, fn, 0, 1, 1);
	lua_Integer s = sl_checkint(L, 1, fn, "seed", LUA_MININTEGER, LUA_MAXINTEGER);
	sl_rng_seed(&sl_getctx(L)->rng, (uint64_t)s);
	return 0;
}

/* segloss.core.threads_used(): the largest number of threads that ran
 * together in the last call that did work (for tests and benchmarks) */
static int core_threads_used(lua_State *L)
{
	lua_pushinteger(L, sl_getctx(L)->team);
	return 1;
}

/* segloss.core.debug_split([on]): with on, every pixel part of a loss
 * (bce, ce, focal, and those of the presets) is evaluated as a generic part
 * — by a run of its own whose gradient is added into the combination's —
 * instead of in the fused pass; a check of the generic path, whose results
 * must agree with the fused ones to float rounding. Returns the previous
 * setting. */
static int core_debug_split(lua_State *L)
{
	sl_ctx *c = sl_getctx(L);
	int was = c->split_pixel;
	if (!lua_isnoneornil(L, 1)) {
		if (lua_type(L, 1) != LUA_TBOOLEAN) {
			char d[96];
			sl_error(L, "segloss.core.debug_split", "on must be a boolean, got %s",
			         sl_describe(L, 1, d, sizeof d));
		}
		c->split_pixel = lua_toboolean(L, 1);
	}
	lua_pushboolean(L, was);
	return 1;
}

/* segloss.core.generic_ran(): how many generic parts the last loss call
 * evaluated (for tests) */
static int core_generic_ran(lua_State *L)
{
	lua_pushinteger(L, sl_getctx(L)->gen_ran);
	return 1;
}

static int ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > SL_MAXTHREADS ? SL_MAXTHREADS : (int)n;
}

static int core_ncpu(lua_State *L)
{
	lua_pushinteger(L, ncpu());
	return 1;
}

/* vmath_accuracy(fn, npoints [, g]) -> {max_ulp, worst_x, ...}: the accuracy
 * of the current backend's fn against double libm (vmcheck.h). */
static int core_vmath_accuracy(lua_State *L)
{
	const char *fname = "segloss.core.vmath_accuracy";
	sl_checknargs(L, fname, 0, 2, 3);
	const char *fn = sl_checkstr(L, 1, fname, "function");
	lua_Integer n = sl_checkint(L, 2, fname, "npoints", 2, (lua_Integer)1 << 34);
	double g = lua_isnoneornil(L, 3) ? 2.0 : sl_checknum(L, 3, fname, "exponent", 1);
	/* the range Tensor:pow takes: beyond 2^24 the float exponent is not the
	 * number asked for, and the reference in double and the kernel in float
	 * disagree about the class of the result (inf against finite) */
	if (!(g >= 0 && g <= 16777216.0)) {
		char b[32];
		sl_error(L, fname, "exponent must be in [0, 2^24], got %s", sl_numstr(g, b, sizeof b));
	}
	int known = 0;
	for (int i = 0; sl_vmcheck_names[i]; i++)
		known |= strcmp(sl_vmcheck_names[i], fn) == 0;
	if (!known)
		sl_error(L, fname, "unknown function \"%.40s\"", fn);
	sl_ctx *c = sl_getctx(L);
	sl_vmcheck r;
	if (sl_vmcheck_run(c->kern, fn, (float)g, (size_t)n, c->threads, &r) != 0)
		sl_error(L, fname, "out of memory");
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, (lua_Integer)r.points);
	lua_setfield(L, -2, "points");
	lua_pushnumber(L, r.max_ulp);
	lua_setfield(L, -2, "max_ulp");
	lua_pushnumber(L, (lua_Number)r.worst_x);
	lua_setfield(L, -2, "worst_x");
	lua_pushnumber(L, (lua_Number)r.worst_y);
	lua_setfield(L, -2, "worst_y");
	lua_pushnumber(L, r.worst_ref);
	lua_setfield(L, -2, "worst_ref");
	lua_pushinteger(L, (lua_Integer)r.bad);
	lua_setfield(L, -2, "bad");
	lua_pushnumber(L, (lua_Number)r.bad_x);
	lua_setfield(L, -2, "bad_x");
	lua_pushnumber(L, (lua_Number)r.bad_y);
	lua_setfield(L, -2, "bad_y");
	return 1;
}

/* memory([root]) -> {available = bytes, account = "MemAvailable ...",
 * checked_from = bytes, zero_pages = boolean}: what one allocation can get
 * now, from which size requests are checked against it, and whether big
 * zeroed tensors are left unwritten (calloc). root: read <root>/proc/meminfo
 * and the cgroup files under <root> instead (the specs' fixtures). */
static int core_memory(lua_State *L)
{
	const char *fn = "segloss.memory";
	sl_checknargs(L, fn, 0, 0, 1);
	const char *root = lua_isnoneornil(L, 1) ? "" : sl_checkstr(L, 1, fn, "root");
	char what[256] = "";
	size_t room = sl_mem_available_at(root, what, sizeof what);
	lua_createtable(L, 0, 4);
	if (room > (size_t)LUA_MAXINTEGER)
		lua_pushnumber(L, (lua_Number)room); /* unknown: SIZE_MAX */
	else
		lua_pushinteger(L, (lua_Integer)room);
	lua_setfield(L, -2, "available");
	lua_pushstring(L, what);
	lua_setfield(L, -2, "account");
	lua_pushinteger(L, (lua_Integer)SL_MEM_BIG);
	lua_setfield(L, -2, "checked_from");
	lua_pushboolean(L, sl_alloc_zeroed(L, SL_MEM_BIG));
	lua_setfield(L, -2, "zero_pages");
	return 1;
}

static const luaL_Reg funcs[] = {
	{"memory", core_memory},
	{"backend", core_backend},
	{"set_backend", core_set_backend},
	{"backends", core_backends},
	{"known_backends", core_known_backends},
	{"set_threads", core_set_threads},
	{"threads", core_threads},
	{"seed", core_seed},
	{"ncpu", core_ncpu},
	{"threads_used", core_threads_used},
	{"debug_split", core_debug_split},
	{"generic_ran", core_generic_ran},
	{"vmath_accuracy", core_vmath_accuracy},
	{NULL, NULL},
};

/* SEGLOSS_BACKEND and SEGLOSS_THREADS */
static void read_env(lua_State *L, sl_ctx *c)
{
	const char *b = getenv("SEGLOSS_BACKEND");
	if (b && *b)
		c->kern = find_backend(L, "segloss (SEGLOSS_BACKEND)", b);
	const char *t = getenv("SEGLOSS_THREADS");
	if (t && *t) {
		char *end;
		long v = strtol(t, &end, 10);
		if (*end != '\0' || v < 1 || v > SL_MAXTHREADS)
			sl_error(L, "segloss (SEGLOSS_THREADS)", "must be an integer in 1..%d, got \"%.40s\"",
			         SL_MAXTHREADS, t);
		c->threads = (int)v;
	}
}

/* The context's buffers go with the Lua state (or the module's last
 * function). Running out of memory in sl_conv_ws_init is impossible: it
 * allocates nothing. */
static int ctx_gc(lua_State *L)
{
	sl_ctx *c = lua_touserdata(L, 1);
	sl_conv_ws_free(&c->conv);
	return 0;
}

/* The only exported symbol (the build hides the rest). */
__attribute__((visibility("default"))) int luaopen_segloss_core(lua_State *L);

int luaopen_segloss_core(lua_State *L)
{
	sl_alloc_open(L);
	sl_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
	int ctx = lua_gettop(L);
	memset(c, 0, sizeof *c);
	sl_conv_ws_init(&c->conv);
	if (luaL_newmetatable(L, "segloss.Context")) {
		lua_pushcfunction(L, ctx_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "locked");
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, ctx);
	const sl_kern *ks[SL_MAX_BACKENDS];
	sl_kern_available(ks);
	c->kern = ks[0];
	c->threads = ncpu();
	c->team = 1;
	sl_rng_seed(&c->rng, 0);
	read_env(L, c);

	lua_createtable(L, 0, sizeof funcs / sizeof funcs[0] + 1);
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, funcs, 1);
	sl_tensor_open(L, ctx);
	lua_setfield(L, -2, "tensor");
	sl_loss_open(L, ctx);
	sl_criterion_open(L, ctx);
	sl_metrics_open(L, ctx);
	sl_nn_open(L, ctx);
	sl_npz_open(L, ctx);
	sl_conv_open(L, ctx);
	sl_data_open(L, ctx);
	sl_kernels_open(L, ctx);
#ifdef SL_FAULT_INJECT
	sl_fault_open(L, ctx);
#endif
	return 1;
}
