/*
 * bind.h — what the Lua bindings share: the per-state context, tensor
 * userdata, and argument checks whose errors start with the public name of
 * the function (`segloss.tensor.zeros: ...`).
 */
#ifndef SL_BIND_H
#define SL_BIND_H

#include <math.h>

#include <lauxlib.h>
#include <lua.h>

#include "../nn/conv.h"
#include "../ops.h"
#include "../opt.h"
#include "../rng.h"
#include "../tensor.h"

#define SL_TENSOR_MT "segloss.Tensor"
#define SL_MAXTHREADS 1024

/* Settings of one Lua state, upvalue 1 of every C function of the module. */
typedef struct sl_ctx {
	const sl_kern *kern;
	int threads;
	int team; /* the largest team of threads of the last call that ran work */
	int split_pixel; /* segloss.core.debug_split: pixel parts run as generic parts */
	int gen_ran;     /* generic parts the last loss call evaluated */
	sl_rng rng;
	/* the transient buffers of every convolution plan of the state (they
	 * run one at a time); freed by the context's __gc */
	sl_conv_ws conv;
} sl_ctx;

static inline sl_ctx *sl_getctx(lua_State *L)
{
	return (sl_ctx *)lua_touserdata(L, lua_upvalueindex(1));
}

/* The settings for one call that runs work; resets the team record. */
static inline sl_exec sl_getexec(lua_State *L)
{
	sl_ctx *c = sl_getctx(L);
	c->team = 1;
	return (sl_exec){c->kern, c->threads, &c->team};
}

/* check.c — errors */
_Noreturn void sl_error(lua_State *L, const char *fname, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A short description of the value at idx for messages: `number 2.5`,
 * `string "abc"`, `nil`, `a table`, `a segloss.Tensor {2,3}`. */
const char *sl_describe(lua_State *L, int idx, char *buf, size_t len);
/* The string at idx quoted for messages: `"abc"`, at most 40 bytes, NUL and
 * control bytes escaped (`"a\0b"`). */
const char *sl_quote(lua_State *L, int idx, char *buf, size_t len);
/* A number as Lua would print it, in buf. */
const char *sl_numstr(double v, char *buf, size_t len);
/* Are the shapes (na, a) and (nb, b) the same? */
int sl_same_shape(int na, const int64_t *a, int nb, const int64_t *b);
/* Is t's shape x's with one channel, (N, 1, S...) — a label map or a
 * per-pixel mask of x? */
int sl_pixel_shape(const sl_tensor *x, const sl_tensor *t);
/* Do the elements of a and b share memory? */
int sl_overlaps(const sl_tensor *a, const sl_tensor *b);
/* The error `<what> shape <t's shape> does not match <refwhat> <shape><tail>`;
 * refwhat NULL leaves out the word and its space, tail NULL is "". */
_Noreturn void sl_shape_mismatch(lua_State *L, const char *fname, const char *what, const sl_tensor *t,
                                 const char *refwhat, int ndim, const int64_t *shape, const char *tail);

/* check.c — arguments. `what` names the argument in messages. */
/* lo..hi arguments besides self (self = 1 for methods), else an error. */
void sl_checknargs(lua_State *L, const char *fname, int self, int lo, int hi);
sl_tensor *sl_totensor(lua_State *L, int idx);
sl_tensor *sl_checktensor(lua_State *L, int idx, const char *fname, const char *what);
/* An integer (an integral float is fine, a string is not) in [lo, hi]. */
lua_Integer sl_checkint(lua_State *L, int idx, const char *fname, const char *what,
                        lua_Integer lo, lua_Integer hi);
/* A number (not a string); finite if `finite`. */
double sl_checknum(lua_State *L, int idx, const char *fname, const char *what, int finite);
/* A string without embedded NUL bytes. */
const char *sl_checkstr(lua_State *L, int idx, const char *fname, const char *what);
/* Is v (finite, NaN or ±Inf) stored as a float32 without overflowing to ±Inf? */
static inline int sl_fits_float(double v) { return !(isfinite(v) && isinf((float)v)); }
/* A number whose float32 value does not overflow (NaN and ±Inf as given pass). */
float sl_checkfloat(lua_State *L, int idx, const char *fname, const char *what);
/* A new userdata of `bytes` bytes with nuv user values on the top of the
 * stack; running out of memory is an error that names fname. */
void *sl_alloc(lua_State *L, const char *fname, size_t bytes, int nuv);
/* 1 when a block of bytes that sl_alloc just returned is zero already (a big
 * block under the allocator of sl_alloc_open) */
int sl_alloc_zeroed(lua_State *L, size_t bytes);
/* luaopen: under lauxlib's own allocator, big userdata come from calloc */
void sl_alloc_open(lua_State *L);
/* A shape given as a table {d1, ..., dk} at idx, or as the integers from idx
 * to the top of the stack; checks 1 <= k <= SL_MAXDIM, every d >= 1 and the
 * size. Returns k. */
int sl_checkshape(lua_State *L, int idx, const char *fname, int64_t *shape);
/* Checks a parsed shape (dimensions >= 1, no overflow); returns numel. */
size_t sl_checksize(lua_State *L, const char *fname, int ndim, const int64_t *shape);

/* opts.c — options. `opt` names the option in messages: "option <opt>
 * must be <expected>, got <value>". */
_Noreturn void sl_opterror(lua_State *L, const char *fname, const char *opt, int idx,
                           const char *expected);
/* Is the value at idx the string s (a NUL byte in it never matches)? */
int sl_isstring(lua_State *L, int idx, const char *s);
/* The index of the value at idx in the NULL-terminated choices, else an error. */
int sl_optenum(lua_State *L, const char *fname, const char *opt, int idx, const char *const *choices);
int sl_optbool(lua_State *L, const char *fname, const char *opt, int idx);
/* A finite number between lo and hi, each end open or closed; hi = INFINITY
 * means no upper end, hi = FLT_MAX the float32 range. */
double sl_optnum(lua_State *L, const char *fname, const char *opt, int idx, double lo, int lo_open,
                 double hi, int hi_open);
/* What sl_optnum says a number must be ("a number in [0, 1]"), in buf. */
const char *sl_rangestr(double lo, int lo_open, double hi, int hi_open, char *buf, size_t len);

/* One option as the walker found it. */
typedef struct sl_optval {
	unsigned char given;   /* the table has it */
	unsigned char special; /* "auto" (SL_OT_NUM_AUTO), false (SL_OT_NUM_FALSE_CHANNELS) */
	unsigned char list;    /* a list (SL_OT_CHANNELS, SL_OT_NUMBERS, a table for
	                          SL_OT_NUM_FALSE_CHANNELS): its value is at stack index idx */
	int idx;
	double num;            /* a number, a boolean (0/1), an enum's index, an integer */
	sl_tensor *tensor;     /* SL_OT_TENSOR */
} sl_optval;
/* The spacings h (nd of them) of an image of that shape relative to the
 * largest, into r, and its diagonal; returns the scale of sl_edt_scale
 * (metrics.h), or raises an error naming the spacing as `what` ("spacing",
 * "option spacing") when the exact EDT cannot take it (metrics.c). */
double sl_rel_spacing(lua_State *L, const char *fn, const char *what, int nd, const size_t *shape,
                      const double *h, double *r, double *diag);

/* Walks the opts table at oi (nil: no options) against the n descriptors
 * d; a name whose bit is not in `known` is unknown (with a suggestion).
 * Checks each value against its type and range; fills v[0..n-1]. The
 * values of lists are pushed once the walk is over, and stay on the stack
 * until the function returns. */
void sl_opts_walk(lua_State *L, const char *fn, int oi, const sl_optdesc *d, int n, unsigned known,
                  sl_optval *v);
/* Pushes option o of the descriptors `all` as Lua sees it (segloss.losses()):
 * {type = , choices = , min = , max = , default = , doc = , ...}, with the
 * type, defaults, doc and refusal of the loss or function that takes it
 * (doc NULL: the option's own; a default of kind SL_DEF_NONE: none). */
void sl_push_optdesc(lua_State *L, const sl_optdesc *all, int o, int type, sl_default def, sl_default def_sm,
                     const char *doc, const char *refused);

/* tensor.c */
/* A new tensor (uninitialised elements) on the top of the stack; checks the
 * size, and names fname if memory runs out. */
sl_tensor *sl_newtensor(lua_State *L, const char *fname, int ndim, const int64_t *shape);
void sl_tensor_open(lua_State *L, int ctx);
/* print.c: segloss.Tensor:__tostring */
int sl_tensor_tostring(lua_State *L);

/* loss.c: frees a failed loss run and raises its error (out of memory, or
 * the first bad input with its coordinates in x, t or the mask m) */
struct sl_lossrun;
_Noreturn void sl_loss_raise(lua_State *L, const char *fn, struct sl_lossrun *run, int rc,
                             const sl_tensor *x, const sl_tensor *t, const sl_tensor *m, size_t C);
/* loss.c: sets the functional losses (segloss.dice, ...) into the table on
 * the top of the stack */
void sl_loss_open(lua_State *L, int ctx);
/* criterion.c: what criteria call (combo, check_opts) into the table on the top */
void sl_criterion_open(lua_State *L, int ctx);
/* kernels.c: segloss.core.loss_variants and loss_fused (the loss kernels
 * for specs and benchmarks) into the table on the top of the stack */
void sl_kernels_open(lua_State *L, int ctx);
/* metrics.c: distance_transform and metrics_evaluate into the table on the top */
void sl_metrics_open(lua_State *L, int ctx);
/* nn.c: the network's kernels and optimiser steps (nn_*, optim_*) into the
 * table on the top */
void sl_nn_open(lua_State *L, int ctx);
/* npz.c: npz_save, npz_load and npz_load_string into the table on the top */
void sl_npz_open(lua_State *L, int ctx);
/* conv.c: conv_plan, conv_forward, ... into the table on the top */
void sl_conv_open(lua_State *L, int ctx);
/* data.c: data_put, data_scan, data_synth_*, png_load, png_save into the
 * table on the top */
void sl_data_open(lua_State *L, int ctx);
#ifdef SL_FAULT_INJECT
/* fault.c (the fault build only): segloss.core.fault */
void sl_fault_open(lua_State *L, int ctx);
#endif

#endif
