/*
 * conv.h — Conv2d/Conv3d (kernel 1 or 3, stride 1 or 2, padding (k-1)/2) and
 * ConvTranspose2d/3d (kernel 2, stride 2, padding 0), float32, NCHW/NCDHW,
 * PyTorch weight layouts: conv (cout, cin, k, k[, k]), transposed
 * (cin, cout, 2, 2[, 2]); bias (cout). Lua-free.
 *
 * A plan caches oneDNN primitives for one spatial input shape and thread
 * count, and their small descriptors. The large buffers a call needs only
 * while it runs (samples reordered to blocked layouts, oneDNN scratchpads,
 * reordered weights, weight-gradient partials) come from a workspace the
 * caller passes, shared by every plan that never runs concurrently with
 * another (the Lua binding: one per Lua state); it grows to the largest call
 * and is reused, so once shapes are stable a call allocates nothing.
 *
 * Threads and determinism: every oneDNN primitive is created for ONE thread
 * and works on ONE sample (forward, for batches below 4: on one slab of a
 * sample's output rows, a cut that depends on N and the shape only); our own
 * OpenMP loop hands samples (slabs) to threads.
 * oneDNN's OpenMP runtime runs serially inside a parallel region and with a
 * one-thread ICV, so a sample's result is computed by the same code whatever
 * the thread count. The weight gradient is one partial per sample, summed in
 * double in sample order. So every result is bit-identical for any number of
 * threads.
 */
#ifndef SL_NN_CONV_H
#define SL_NN_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "../ops.h"
#include "../tensor.h"

typedef struct sl_conv_cfg {
	int dims;       /* 2 or 3 spatial dimensions */
	int cin, cout;  /* >= 1 */
	int k;          /* 1 or 3; 2 if transposed */
	int stride;     /* 1 or 2; 2 if transposed */
	int transposed; /* ConvTranspose (kernel 2, stride 2) */
} sl_conv_cfg;

typedef struct sl_conv sl_conv;

/* A call gets one thread per this many floating-point operations (2 per
 * multiply-add), at most the threads asked for: small work stays on one
 * thread. Measured (tools/conv_threshold.py: 3x3 C->C convolutions,
 * forward + both gradients, 1 against 2 threads, 2-core VM): 2 threads break
 * even near 2.4-4.7 Mflop, gain 30-40 % from 9 Mflop on; below 1 Mflop they
 * lose 1.1-1.5x with the other core busy and up to 15 ms per call (800x)
 * when it sleeps. 4 Mflop per thread (2 threads from 8 Mflop) takes no
 * risk where the gain is marginal. */
#define SL_CONV_MIN_FLOPS 4e6

/* The workspace of the plans of one owner (one Lua state); plans using one
 * workspace must not run concurrently. */
typedef struct sl_conv_ws {
	void *base;       /* 64-byte aligned, or NULL */
	size_t bytes;     /* its size: the largest need so far */
	double min_flops; /* floating-point operations per thread at least */
} sl_conv_ws;

/* An empty workspace with min_flops = SL_CONV_MIN_FLOPS. */
void sl_conv_ws_init(sl_conv_ws *ws);
/* Frees the buffer (the workspace stays usable: it grows again). */
void sl_conv_ws_free(sl_conv_ws *ws);

enum {
	SL_CONV_OK = 0,
	SL_CONV_ENOMEM = 1, /* out of memory */
	SL_CONV_EDNNL = 2,  /* oneDNN refused or failed: sl_conv_error says what */
};

/* Why a configuration is invalid (a static string), or NULL if it is valid. */
const char *sl_conv_cfg_check(const sl_conv_cfg *c);

/* Output spatial size for input spatial sizes in[dims]: conv
 * floor((S + 2p - k)/s) + 1, transposed 2S. Returns 0, or -1 if an output
 * size would be < 1 or overflow. */
int sl_conv_out_spatial(const sl_conv_cfg *c, const int64_t *in, int64_t *out);

/* The number of weight elements: cout*cin*k^dims. */
size_t sl_conv_wnumel(const sl_conv_cfg *c);

/* A new plan (NULL if out of memory); cfg must pass sl_conv_cfg_check. */
sl_conv *sl_conv_new(const sl_conv_cfg *cfg);
void sl_conv_free(sl_conv *p);
const sl_conv_cfg *sl_conv_config(const sl_conv *p);
/* The message of the last SL_CONV_EDNNL of this plan. */
const char *sl_conv_error(const sl_conv *p);

/* For benchmarks: 1 lets oneDNN choose blocked layouts (reorders around each
 * sample), 0 makes it use the plain layouts, -1 (default) chooses per
 * direction what measured fastest. Call before the first run of the plan. */
void sl_conv_set_blocked(sl_conv *p, int blocked);
/* The name of oneDNN's implementation used last in direction d
 * (0 forward, 1 backward data, 2 backward weights), or "". */
const char *sl_conv_impl(const sl_conv *p, int d);

/* x: (N, cin, in...), y: (N, cout, out...); b may be NULL. y = conv(x, w) + b. */
int sl_conv_forward(sl_conv *p, sl_conv_ws *ws, const sl_exec *e, int64_t N, const int64_t *in,
                    const float *x, const float *w, const float *b, float *y);
/* gx = dL/dx from gy = dL/dy (gx overwritten). */
int sl_conv_backward_data(sl_conv *p, sl_conv_ws *ws, const sl_exec *e, int64_t N, const int64_t *in,
                          const float *gy, const float *w, float *gx);
/* gw += dL/dw, gb += dL/db (gb may be NULL). */
int sl_conv_backward_weights(sl_conv *p, sl_conv_ws *ws, const sl_exec *e, int64_t N, const int64_t *in,
                             const float *x, const float *gy, float *gw, float *gb);

#endif
