/*
 * fault.c — allocation fault injection, compiled into the fault build only
 * (make fault: BUILD=build-fault, -DSL_FAULT_INJECT, ASan+UBSan+LSan).
 *
 * The module is linked there with -Wl,--wrap=<f> for each allocating call
 * below, so every call to malloc, calloc, ... from segloss's own objects
 * comes here (__wrap_malloc), and __real_malloc is the C library's (or the
 * sanitizer's). The sources do not change and the normal build has none of
 * this. Calls made inside other libraries (oneDNN, libzip, libpng, libgomp)
 * go straight to their malloc and are out of reach.
 *
 * segloss.core.fault also wraps the Lua state's allocator (lua_setallocf),
 * so that tables, strings, closures and tensor userdata count as well. Lua
 * answers a failed allocation with an emergency collection and one retry of
 * the same request; the retry fails too, so that a failed Lua allocation is
 * a failed allocation as the code sees it ("not enough memory").
 *
 *   core.fault(k)  k >= 1: the k-th allocation from now fails (once);
 *                  k = 0: count only. Returns nothing.
 *   core.fault()   disarms; returns the number of allocations seen since the
 *                  last core.fault(k), whether the k-th failed, and what it
 *                  was ("malloc", "lua", ...) and its size.
 *
 * One Lua state at a time (the driver's): the counters are process-wide.
 * The counter is atomic: OpenMP workers allocate too, and with more than
 * one thread the order of their allocations, hence which one is the k-th,
 * is not fixed (the driver runs on one thread).
 */
#ifdef SL_FAULT_INJECT

#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
char *__real_strdup(const char *s);
char *__real_realpath(const char *path, char *resolved);
FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fdopen(int fd, const char *mode);
DIR *__real_opendir(const char *path);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_realpath(const char *path, char *resolved);
FILE *__wrap_fopen(const char *path, const char *mode);
FILE *__wrap_fdopen(int fd, const char *mode);
DIR *__wrap_opendir(const char *path);

static int armed;          /* counting since the last core.fault(k) */
static long target;        /* the allocation to fail, 0 = none */
static long seen;          /* allocations counted */
static int fired;          /* the target failed */
static const char *what;   /* and what it was */
static size_t what_size;

/* Counts one allocation; non-zero if it must fail. */
static int fail_now(const char *name, size_t size)
{
	if (!__atomic_load_n(&armed, __ATOMIC_ACQUIRE))
		return 0;
	long k = __atomic_add_fetch(&seen, 1, __ATOMIC_ACQ_REL);
	if (k != target)
		return 0;
	fired = 1;
	what = name;
	what_size = size;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	if (fail_now("malloc", n)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(n);
}

void *__wrap_calloc(size_t m, size_t n)
{
	if (fail_now("calloc", m * n)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(m, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (fail_now("realloc", n)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
	if (fail_now("aligned_alloc", n)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_aligned_alloc(a, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	if (fail_now("posix_memalign", n))
		return ENOMEM;
	return __real_posix_memalign(p, a, n);
}

char *__wrap_strdup(const char *s)
{
	if (fail_now("strdup", strlen(s) + 1)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

/* realpath(path, NULL) allocates its result */
char *__wrap_realpath(const char *path, char *resolved)
{
	if (!resolved && fail_now("realpath", 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realpath(path, resolved);
}

/* a stream or directory handle is an allocation too (its buffer) */
FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (fail_now("fopen", 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_fopen(path, mode);
}

FILE *__wrap_fdopen(int fd, const char *mode)
{
	if (fail_now("fdopen", 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_fdopen(fd, mode);
}

DIR *__wrap_opendir(const char *path)
{
	if (fail_now("opendir", 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_opendir(path);
}

/* The Lua state's allocator, wrapped. */
static lua_Alloc lua_f;
static void *lua_ud;
static int retry;          /* the failed Lua request, to fail its retry too */
static void *retry_p;
static size_t retry_o, retry_n;

static void *fault_allocf(void *ud, void *p, size_t osize, size_t nsize)
{
	(void)ud;
	if (nsize > 0 && (!p || nsize > osize)) {
		if (retry) {
			retry = 0;
			if (p == retry_p && osize == retry_o && nsize == retry_n)
				return NULL; /* Lua's retry after its emergency collection */
		}
		if (fail_now("lua", nsize)) {
			retry = 1;
			retry_p = p;
			retry_o = osize;
			retry_n = nsize;
			return NULL;
		}
	}
	return lua_f(lua_ud, p, osize, nsize);
}

static int core_fault(lua_State *L)
{
	if (lua_getallocf(L, NULL) != fault_allocf) {
		lua_f = lua_getallocf(L, &lua_ud);
		lua_setallocf(L, fault_allocf, NULL);
	}
	if (lua_isnoneornil(L, 1)) {
		__atomic_store_n(&armed, 0, __ATOMIC_RELEASE);
		retry = 0;
		lua_pushinteger(L, (lua_Integer)__atomic_load_n(&seen, __ATOMIC_ACQUIRE));
		lua_pushboolean(L, fired);
		if (fired) {
			lua_pushstring(L, what);
			lua_pushinteger(L, (lua_Integer)what_size);
			return 4;
		}
		return 2;
	}
	lua_Integer k = luaL_checkinteger(L, 1);
	if (k < 0)
		sl_error(L, "segloss.core.fault", "k must be >= 0, got %lld", (long long)k);
	seen = 0;
	fired = 0;
	what = NULL;
	what_size = 0;
	retry = 0;
	target = (long)k;
	__atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
	return 0;
}

void sl_fault_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	lua_pushcclosure(L, core_fault, 1);
	lua_setfield(L, -2, "fault");
}

#endif
