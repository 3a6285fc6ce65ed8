/*
 * npz.c (binding) — segloss.core.npz_save, npz_load and npz_load_string:
 * .npz archives for checkpoints (src/npz.h does the work).
 *
 *   core.npz_save(path, {{name, value}, ...})
 *       value: a segloss.Tensor (written as float32 '<f4' with its shape) or
 *       a non-empty string (a 1-D uint8 '|u1' array of its bytes: JSON
 *       metadata); the entry is `<name>.npy`, names 1-200 bytes of
 *       [A-Za-z0-9_.-], unique. The file is replaced whole or not at all.
 *   core.npz_load(path) -> {{name = n, tensor = t [, bytes = s]}, ...}
 *       in archive order; `bytes` for 1-D uint8 entries, their bytes exactly.
 *   core.npz_load_string(s [, label]) -> the same from the bytes of an
 *       archive in memory (label names it in messages; default "<string>").
 */
#include <stdlib.h>
#include <string.h>

#include "../npz.h"
#include "bind.h"

#define NPZ_BOX "segloss.npzbox"

/* ------------------------------------------------------------------ */

/* The value at idx (a table) may only have the integer keys 1..n. */
static void check_list_keys(lua_State *L, int idx, lua_Unsigned n, const char *fn, const char *what)
{
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		int ok = lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
		         (lua_Unsigned)lua_tointeger(L, -1) <= n;
		if (!ok) {
			char b[128];
			sl_error(L, fn, "%s must be a list, but has the key %s", what, sl_describe(L, -1, b, sizeof b));
		}
	}
}

static int npz_save(lua_State *L)
{
	const char *fn = "segloss.core.npz_save";
	sl_checknargs(L, fn, 0, 2, 2);
	const char *path = sl_checkstr(L, 1, fn, "path");
	char b[128], q[192];
	if (!lua_istable(L, 2))
		sl_error(L, fn, "entries must be a list of {name, value} pairs, got %s",
		         sl_describe(L, 2, b, sizeof b));
	lua_Unsigned n = lua_rawlen(L, 2);
	if (n > SL_NPZ_MAXENTRIES)
		sl_error(L, fn, "%llu entries, more than %d", (unsigned long long)n, SL_NPZ_MAXENTRIES);
	check_list_keys(L, 2, n, fn, "entries");
	sl_npz_item *items = sl_alloc(L, fn, (n ? n : 1) * sizeof *items, 0); /* index 3 */
	lua_newtable(L); /* index 4: name -> entry number, for duplicates */
	for (lua_Unsigned i = 1; i <= n; i++) {
		int e = (int)i;
		lua_rawgeti(L, 2, (lua_Integer)i); /* 5: the pair */
		if (!lua_istable(L, 5) || lua_rawlen(L, 5) != 2)
			sl_error(L, fn, "entry %d must be a pair {name, value}, got %s", e,
			         lua_istable(L, 5) ? "a table that is not a pair" : sl_describe(L, 5, b, sizeof b));
		check_list_keys(L, 5, 2, fn, "an entry {name, value}");
		lua_rawgeti(L, 5, 1); /* 6: name */
		lua_rawgeti(L, 5, 2); /* 7: value */
		if (lua_type(L, 6) != LUA_TSTRING)
			sl_error(L, fn, "entry %d: name must be a string, got %s", e, sl_describe(L, 6, b, sizeof b));
		size_t len;
		const char *name = lua_tolstring(L, 6, &len);
		const char *why = sl_npz_name_problem(name, len);
		if (why)
			sl_error(L, fn, "entry %d: name %s %s", e, sl_quote(L, 6, q, sizeof q), why);
		lua_pushvalue(L, 6);
		if (lua_rawget(L, 4) != LUA_TNIL)
			sl_error(L, fn, "entries %d and %d have the same name %s", (int)lua_tointeger(L, -1), e,
			         sl_quote(L, 6, q, sizeof q));
		lua_pop(L, 1);
		lua_pushvalue(L, 6);
		lua_pushinteger(L, e);
		lua_rawset(L, 4);

		/* the strings and tensors stay reachable through entries (argument 2),
		 * which no Lua code runs to change until the write is done */
		sl_npz_item *it = &items[i - 1];
		it->name = name;
		it->namelen = len;
		sl_tensor *t = sl_totensor(L, 7);
		if (t) {
			it->type = SL_NPZ_F32;
			it->ndim = t->ndim;
			it->shape = t->shape;
			it->data = t->data;
			it->nbytes = t->numel * sizeof(float);
		} else if (lua_type(L, 7) == LUA_TSTRING && lua_rawlen(L, 7) > 0) {
			it->type = SL_NPZ_BYTES;
			it->ndim = 1;
			it->shape = NULL;
			it->data = lua_tolstring(L, 7, &it->nbytes);
		} else {
			sl_error(L, fn, "entry %d (%s): value must be a segloss.Tensor or a non-empty string, got %s",
			         e, sl_quote(L, 6, q, sizeof q), sl_describe(L, 7, b, sizeof b));
		}
		lua_settop(L, 4);
	}
	char err[1024];
	if (sl_npz_write(path, items, (size_t)n, err, sizeof err) != 0)
		sl_error(L, fn, "%s", err);
	return 0;
}

/* ------------------------------------------------------------------ */

/* The open archive in a userdata, closed on collection should a Lua error
 * (out of memory in a tensor's allocation) leave it behind. */
static int npzbox_gc(lua_State *L)
{
	sl_npz **box = lua_touserdata(L, 1);
	sl_npz_close(*box);
	*box = NULL;
	return 0;
}

static sl_npz **new_box(lua_State *L)
{
	sl_npz **box = lua_newuserdatauv(L, sizeof *box, 0);
	*box = NULL;
	if (luaL_newmetatable(L, NPZ_BOX)) {
		lua_pushcfunction(L, npzbox_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return box;
}

/* Closes the archive first, then raises err. */
static _Noreturn void close_and_fail(lua_State *L, const char *fn, sl_npz **box, const char *err)
{
	sl_npz_close(*box);
	*box = NULL;
	sl_error(L, fn, "%s", err);
}

/* Pushes the list of entries of the archive in box. */
static int push_entries(lua_State *L, const char *fn, sl_npz **box)
{
	char err[1024];
	size_t n = sl_npz_count(*box);
	lua_createtable(L, (int)n, 0);
	int list = lua_gettop(L);
	for (size_t i = 0; i < n; i++) {
		sl_npy h;
		if (sl_npz_begin(*box, i, &h, err, sizeof err) != 0)
			close_and_fail(L, fn, box, err);
		lua_createtable(L, 0, 3);
		size_t len;
		const char *name = sl_npz_name(*box, i, &len);
		lua_pushlstring(L, name, len);
		lua_setfield(L, -2, "name");
		sl_tensor *t = sl_newtensor(L, fn, h.ndim, h.shape);
		if (sl_npz_read(*box, &h, t->data, err, sizeof err) != 0)
			close_and_fail(L, fn, box, err);
		if (h.kind == 'u' && h.size == 1 && h.ndim == 1) {
			/* the bytes again: uint8 values are exact in float32 */
			luaL_Buffer lb;
			char *p = luaL_buffinitsize(L, &lb, t->numel);
			for (size_t k = 0; k < t->numel; k++)
				p[k] = (char)(unsigned char)t->data[k];
			luaL_pushresultsize(&lb, t->numel);
			lua_setfield(L, -3, "bytes");
		}
		lua_setfield(L, -2, "tensor");
		lua_rawseti(L, list, (lua_Integer)i + 1);
	}
	sl_npz_close(*box);
	*box = NULL;
	return 1;
}

static int npz_load(lua_State *L)
{
	const char *fn = "segloss.core.npz_load";
	sl_checknargs(L, fn, 0, 1, 1);
	const char *path = sl_checkstr(L, 1, fn, "path");
	sl_npz **box = new_box(L);
	char err[1024];
	if (sl_npz_open_path(path, box, err, sizeof err) != 0)
		sl_error(L, fn, "%s", err);
	return push_entries(L, fn, box);
}

static int npz_load_string(lua_State *L)
{
	const char *fn = "segloss.core.npz_load_string";
	sl_checknargs(L, fn, 0, 1, 2);
	char b[128];
	if (lua_type(L, 1) != LUA_TSTRING)
		sl_error(L, fn, "data must be a string, got %s", sl_describe(L, 1, b, sizeof b));
	const char *label = lua_isnoneornil(L, 2) ? "<string>" : sl_checkstr(L, 2, fn, "label");
	size_t len;
	const char *data = lua_tolstring(L, 1, &len); /* argument 1 keeps it alive */
	sl_npz **box = new_box(L);
	char err[1024];
	if (sl_npz_open_buffer(data, len, label, box, err, sizeof err) != 0)
		sl_error(L, fn, "%s", err);
	return push_entries(L, fn, box);
}

static const luaL_Reg funcs[] = {
	{"npz_save", npz_save},
	{"npz_load", npz_load},
	{"npz_load_string", npz_load_string},
	{NULL, NULL},
};

void sl_npz_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, funcs, 1);
}
