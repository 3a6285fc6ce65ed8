/*
 * data.c (binding) — the C half of segloss.data (lua/segloss/data.lua):
 *
 *   core.data_put(src, i, dst, j, flips, rot, scale, shift)
 *       sample i of src (N, C, S...) into sample j of dst (M, C, S...):
 *       flipped along the spatial axes of the bits of flips (bit 0 = first
 *       spatial axis), rotated rot * 90 degrees in the last two axes (square
 *       planes only), then times scale plus shift.
 *   core.data_scan(t, classes) -> counts | nil, "{n,1,i,j}", value
 *       non-zero elements of each sample of a label map, or where the first
 *       value that is not a class 0..classes-1 is.
 *   core.data_synth_mask(t, shapes, scale) -> pixels set
 *   core.data_synth_image(x, base, waves, shapes, sigma, seed)
 *       t, x: one sample (1, 1, S...); shapes: a flat list of 11 numbers per
 *       shape (kind, c1, c2, c3, r1, r2, r3, angle, amp, ph1, ph2; 0-based
 *       pixel coordinates, axis 1 unused in 2-D); waves: 6 numbers per wave
 *       (f1, f2, f3, phase, amp, unused).
 *   core.png_load(path [, mode]) -> tensor (H, W), bit depth; mode "values"
 *       (default: the stored values, palette indices as labels) or "grey"
 *       (intensities: palette and colour through luminance, alpha dropped)
 *   core.png_save(path, tensor (H, W), depth)   values integers 0..2^depth-1
 *   core.data_hash(tensor) -> 16 hex digits: FNV-1a of its sizes and bytes
 *   core.data_listdir(path) -> the names in a directory (not . and ..),
 *       unsorted
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../data/data.h"
#include "bind.h"

/* The spatial grid of a (N, C, S...) tensor; checks 4 or 5 dimensions. */
static void grid_of(lua_State *L, const char *fn, const char *what, const sl_tensor *t, sl_grid *g)
{
	if (t->ndim != 4 && t->ndim != 5) {
		char b[96];
		sl_error(L, fn, "%s must have 4 or 5 dimensions (N, C, S...), got %s", what,
		         sl_shapestr(t->ndim, t->shape, b, sizeof b));
	}
	g->dims = t->ndim - 2;
	for (int a = 0; a < g->dims; a++) g->s[a] = t->shape[a + 2];
}

static int data_put(lua_State *L)
{
	const char *fn = "segloss.core.data_put";
	sl_checknargs(L, fn, 0, 8, 8);
	sl_tensor *src = sl_checktensor(L, 1, fn, "src");
	sl_tensor *dst = sl_checktensor(L, 3, fn, "dst");
	sl_grid g;
	grid_of(L, fn, "src", src, &g);
	if (!sl_same_shape(dst->ndim - 1, dst->shape + 1, src->ndim - 1, src->shape + 1))
		sl_shape_mismatch(L, fn, "dst", dst, "src", src->ndim, src->shape, " after the first axis");
	int64_t i = sl_checkint(L, 2, fn, "i", 1, src->shape[0]);
	int64_t j = sl_checkint(L, 4, fn, "j", 1, dst->shape[0]);
	unsigned flips = (unsigned)sl_checkint(L, 5, fn, "flips", 0, (1 << g.dims) - 1);
	int rot = (int)sl_checkint(L, 6, fn, "rot", 0, 3);
	if (rot && g.s[g.dims - 1] != g.s[g.dims - 2])
		sl_error(L, fn, "a rotation needs square planes, got %lld x %lld", (long long)g.s[g.dims - 2],
		         (long long)g.s[g.dims - 1]);
	float scale = sl_checkfloat(L, 7, fn, "scale"), shift = sl_checkfloat(L, 8, fn, "shift");
	int64_t m = (int64_t)(src->numel / (size_t)src->shape[0]);
	if (src->owner == dst->owner) sl_error(L, fn, "src and dst must not share elements");
	sl_data_put(src->data + (i - 1) * m, dst->data + (j - 1) * m, src->shape[1], &g, flips, rot, scale, shift);
	sl_touch(dst);
	lua_settop(L, 3);
	return 1;
}

static int data_scan(lua_State *L)
{
	const char *fn = "segloss.core.data_scan";
	sl_checknargs(L, fn, 0, 2, 2);
	sl_tensor *t = sl_checktensor(L, 1, fn, "t");
	int classes = (int)sl_checkint(L, 2, fn, "classes", 2, 1 << 20);
	int64_t n = t->shape[0], m = (int64_t)(t->numel / (size_t)n);
	int64_t *count = sl_alloc(L, fn, (size_t)n * sizeof *count, 0);
	int64_t bad = sl_data_scan(t->data, n, m, classes, count);
	if (bad >= 0) {
		char b[128], v[48];
		lua_pushnil(L);
		lua_pushstring(L, sl_coordstr(t->ndim, t->shape, (size_t)bad, b, sizeof b));
		lua_pushstring(L, sl_numstr((double)t->data[bad], v, sizeof v));
		return 3;
	}
	lua_createtable(L, (int)n, 0);
	for (int64_t s = 0; s < n; s++) {
		lua_pushinteger(L, count[s]);
		lua_rawseti(L, -2, s + 1);
	}
	return 1;
}

/* One sample (1, 1, S...) at idx. */
static sl_tensor *check_sample(lua_State *L, int idx, const char *fn, const char *what, sl_grid *g)
{
	sl_tensor *t = sl_checktensor(L, idx, fn, what);
	grid_of(L, fn, what, t, g);
	if (t->shape[0] != 1 || t->shape[1] != 1) sl_error(L, fn, "%s must be one sample of one channel", what);
	return t;
}

/* A flat list of k numbers per item at idx, into a new userdata of doubles. */
static double *check_flat(lua_State *L, int idx, const char *fn, const char *what, int k, int *count)
{
	char b[128];
	if (!lua_istable(L, idx)) sl_error(L, fn, "%s must be a list of numbers, got %s", what, sl_describe(L, idx, b, sizeof b));
	lua_Unsigned len = lua_rawlen(L, idx);
	if (len % (lua_Unsigned)k || len > (lua_Unsigned)k * 4096)
		sl_error(L, fn, "%s must hold %d numbers per item (at most 4096 items), got %llu", what, k,
		         (unsigned long long)len);
	double *v = sl_alloc(L, fn, (len ? len : 1) * sizeof(double), 0);
	for (lua_Unsigned i = 1; i <= len; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		if (lua_type(L, -1) != LUA_TNUMBER) sl_error(L, fn, "%s[%llu] must be a number", what, (unsigned long long)i);
		v[i - 1] = lua_tonumber(L, -1);
		if (!isfinite(v[i - 1])) sl_error(L, fn, "%s[%llu] must be finite", what, (unsigned long long)i);
		lua_pop(L, 1);
	}
	*count = (int)(len / (lua_Unsigned)k);
	return v;
}

static sl_shape *to_shapes(lua_State *L, const char *fn, const double *v, int n)
{
	sl_shape *s = sl_alloc(L, fn, (size_t)(n ? n : 1) * sizeof *s, 0);
	for (int i = 0; i < n; i++) {
		const double *p = v + 11 * i;
		if (p[0] != 0 && p[0] != 1 && p[0] != 2) sl_error(L, fn, "shape %d: kind must be 0, 1 or 2", i + 1);
		if (!(p[4] > 0 && p[5] > 0 && p[6] > 0)) sl_error(L, fn, "shape %d: radii must be > 0", i + 1);
		s[i] = (sl_shape){(int)p[0], {p[1], p[2], p[3]}, {p[4], p[5], p[6]}, p[7], p[8], {p[9], p[10]}};
	}
	return s;
}

static int data_synth_mask(lua_State *L)
{
	const char *fn = "segloss.core.data_synth_mask";
	sl_checknargs(L, fn, 0, 3, 3);
	sl_grid g;
	sl_tensor *t = check_sample(L, 1, fn, "t", &g);
	int n;
	double *v = check_flat(L, 2, fn, "shapes", 11, &n);
	double scale = sl_checknum(L, 3, fn, "scale", 1);
	if (!(scale > 0)) sl_error(L, fn, "scale must be > 0");
	sl_shape *s = to_shapes(L, fn, v, n);
	int64_t k = sl_synth_mask(t->data, &g, s, n, scale);
	sl_touch(t);
	lua_pushinteger(L, k);
	return 1;
}

static int data_synth_image(lua_State *L)
{
	const char *fn = "segloss.core.data_synth_image";
	sl_checknargs(L, fn, 0, 6, 6);
	sl_grid g;
	sl_tensor *x = check_sample(L, 1, fn, "x", &g);
	double base = sl_checknum(L, 2, fn, "base", 1);
	int nw, n;
	double *wv = check_flat(L, 3, fn, "waves", 6, &nw);
	double *v = check_flat(L, 4, fn, "shapes", 11, &n);
	double sigma = sl_checknum(L, 5, fn, "sigma", 1);
	if (sigma < 0) sl_error(L, fn, "sigma must be >= 0");
	lua_Integer seed = sl_checkint(L, 6, fn, "seed", LUA_MININTEGER, LUA_MAXINTEGER);
	sl_shape *s = to_shapes(L, fn, v, n);
	sl_wave *w = sl_alloc(L, fn, (size_t)(nw ? nw : 1) * sizeof *w, 0);
	for (int i = 0; i < nw; i++) {
		const double *p = wv + 6 * i;
		w[i] = (sl_wave){{p[0], p[1], p[2]}, p[3], p[4]};
	}
	sl_synth_image(x->data, &g, base, w, nw, s, n, sigma, (uint64_t)seed);
	sl_touch(x);
	return 0;
}

#define PNG_BOX "segloss.pngbox"

/* A box owning the pixels of a PNG being read until they are in a tensor. */
static int box_gc(lua_State *L)
{
	float **b = lua_touserdata(L, 1);
	free(*b);
	*b = NULL;
	return 0;
}

static int data_png_load(lua_State *L)
{
	const char *fn = "segloss.core.png_load";
	sl_checknargs(L, fn, 0, 1, 2);
	const char *path = sl_checkstr(L, 1, fn, "path");
	int grey = 0;
	if (!lua_isnoneornil(L, 2)) {
		const char *mode = sl_checkstr(L, 2, fn, "mode");
		if (strcmp(mode, "grey") == 0) grey = 1;
		else if (strcmp(mode, "values") != 0) sl_error(L, fn, "mode must be \"values\" or \"grey\", got \"%s\"", mode);
	}
	lua_settop(L, 1);
	float **box = sl_alloc(L, fn, sizeof *box, 0); /* index 2 */
	*box = NULL;
	if (luaL_newmetatable(L, PNG_BOX)) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, 2);
	int64_t shape[2];
	int depth;
	char err[1024];
	if (sl_png_read(path, grey, box, &shape[0], &shape[1], &depth, err, sizeof err) != 0) sl_error(L, fn, "%s", err);
	sl_tensor *t = sl_newtensor(L, fn, 2, shape); /* on failure the box frees the pixels */
	memcpy(t->data, *box, (size_t)(shape[0] * shape[1]) * sizeof(float));
	free(*box);
	*box = NULL;
	lua_pushinteger(L, depth);
	return 2;
}

static int data_png_save(lua_State *L)
{
	const char *fn = "segloss.core.png_save";
	sl_checknargs(L, fn, 0, 3, 3);
	const char *path = sl_checkstr(L, 1, fn, "path");
	sl_tensor *t = sl_checktensor(L, 2, fn, "image");
	int depth = (int)sl_checkint(L, 3, fn, "depth", 8, 16);
	if (depth != 8 && depth != 16) sl_error(L, fn, "depth must be 8 or 16, got %d", depth);
	if (t->ndim != 2 || t->shape[0] > SL_PNG_MAXSIDE || t->shape[1] > SL_PNG_MAXSIDE) {
		char b[96];
		sl_error(L, fn, "image must be 2-D (H, W), at most %d on a side, got %s", SL_PNG_MAXSIDE,
		         sl_shapestr(t->ndim, t->shape, b, sizeof b));
	}
	float hi = depth == 16 ? 65535.0f : 255.0f;
	for (size_t i = 0; i < t->numel; i++) {
		float v = t->data[i];
		if (!(v >= 0.0f && v <= hi && v == (float)(int)v)) {
			char b[96], nb[48];
			sl_error(L, fn, "value %s at %s is not an integer in 0..%d", sl_numstr((double)v, nb, sizeof nb),
			         sl_coordstr(t->ndim, t->shape, i, b, sizeof b), (int)hi);
		}
	}
	char err[1024];
	if (sl_png_write(path, t->data, t->shape[0], t->shape[1], depth, err, sizeof err) != 0)
		sl_error(L, fn, "%s", err);
	lua_settop(L, 2);
	return 1;
}

/* The directory handle of data_listdir in a userdata whose __gc closes it:
 * a Lua allocation that fails while the names are pushed raises past the
 * closedir, and the collector closes it then. */
static int dirbox_gc(lua_State *L)
{
	DIR **d = lua_touserdata(L, 1);
	if (*d) {
		closedir(*d);
		*d = NULL;
	}
	return 0;
}

static int data_listdir(lua_State *L)
{
	const char *fn = "segloss.core.data_listdir";
	sl_checknargs(L, fn, 0, 1, 1);
	const char *path = sl_checkstr(L, 1, fn, "path");
	DIR **box = lua_newuserdatauv(L, sizeof(DIR *), 0);
	*box = NULL;
	if (luaL_newmetatable(L, "segloss.dirbox")) {
		lua_pushcfunction(L, dirbox_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	*box = opendir(path);
	if (!*box) sl_error(L, fn, "cannot read the directory '%s': %s", path, strerror(errno));
	lua_newtable(L);
	lua_Integer k = 0;
	struct dirent *e;
	/* names are copied before the next readdir */
	while ((e = readdir(*box)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++k);
	}
	closedir(*box);
	*box = NULL;
	return 1;
}

/* A fingerprint of a tensor's shape and values: 64-bit FNV-1a over the
 * sizes and the float32 bytes (a NaN's payload included), as 16 hex
 * digits. It tells datasets apart in an experiment's records; it is not a
 * cryptographic hash. */
static int data_hash(lua_State *L)
{
	const char *fn = "segloss.core.data_hash";
	sl_checknargs(L, fn, 0, 1, 1);
	sl_tensor *t = sl_checktensor(L, 1, fn, "tensor");
	uint64_t h = 0xcbf29ce484222325u;
	const uint64_t prime = 0x100000001b3u;
	for (int a = 0; a < t->ndim; a++) {
		uint64_t v = (uint64_t)t->shape[a];
		for (int b = 0; b < 8; b++) h = (h ^ ((v >> (8 * b)) & 0xff)) * prime;
	}
	const unsigned char *p = (const unsigned char *)t->data;
	size_t nb = t->numel * sizeof(float);
	for (size_t i = 0; i < nb; i++) h = (h ^ p[i]) * prime;
	char out[17];
	snprintf(out, sizeof out, "%016llx", (unsigned long long)h);
	lua_pushstring(L, out);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"data_hash", data_hash},
	{"data_listdir", data_listdir},
	{"data_put", data_put},
	{"data_scan", data_scan},
	{"data_synth_mask", data_synth_mask},
	{"data_synth_image", data_synth_image},
	{"png_load", data_png_load},
	{"png_save", data_png_save},
	{NULL, NULL},
};

void sl_data_open(lua_State *L, int ctx)
{
	lua_pushvalue(L, ctx);
	luaL_setfuncs(L, funcs, 1);
}
