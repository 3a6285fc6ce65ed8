/*
 * lua_harness.h — a harness whose target is Lua code: one Lua state for
 * the whole run, segloss.core linked in (package.preload), lua/ and fuzz/c/
 * on the module path (SL_FUZZ_ROOT: the source tree, set by the Makefile),
 * and a driver module (fuzz/c/<name>.lua) whose run(bytes) returns nil or
 * the invariant that broke. A Lua error escaping run() is a finding too.
 */
#ifndef SL_FUZZ_LUA_HARNESS_H
#define SL_FUZZ_LUA_HARNESS_H

#include "common.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef SL_FUZZ_ROOT
#error "SL_FUZZ_ROOT: the source tree (-DSL_FUZZ_ROOT='\"...\"')"
#endif

int luaopen_segloss_core(lua_State *L);

static lua_State *fuzz_L;
static int fuzz_run_ref;

/* Opens the state and requires the driver module; exits on failure. */
static void lua_harness_init(const char *driver)
{
	lua_State *L = fuzz_L = luaL_newstate();
	luaL_openlibs(L);
	lua_getglobal(L, "package");
	lua_pushstring(L, SL_FUZZ_ROOT "/lua/?.lua;" SL_FUZZ_ROOT "/lua/?/init.lua;" SL_FUZZ_ROOT "/fuzz/c/?.lua;");
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_segloss_core);
	lua_setfield(L, -2, "segloss.core");
	lua_pop(L, 2);
	lua_getglobal(L, "require");
	lua_pushstring(L, driver);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		fprintf(stderr, "cannot load the driver %s: %s\n", driver, lua_tostring(L, -1));
		exit(2);
	}
	lua_getfield(L, -1, "run");
	fuzz_run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
}

/* Runs the driver on one input; a full collection every 256 runs keeps
 * the memory flat (and runs every __gc the inputs left behind). */
static void lua_harness_run(const uint8_t *data, size_t size)
{
	static unsigned long runs;
	lua_State *L = fuzz_L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_run_ref);
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK)
		finding("the driver raised: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
	if (!lua_isnil(L, -1))
		finding("%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
	lua_pop(L, 1);
	CHECK(lua_gettop(L) == 0, "the Lua stack holds %d values", lua_gettop(L));
	if (++runs % 256 == 0)
		lua_gc(L, LUA_GCCOLLECT);
}

#endif
