/*
 * layers.h — threaded drivers of the network's layers that are not
 * convolutions: activation, max pooling, upsampling, normalisation, channel
 * concatenation, and the optimisers' steps. Lua-free; the bindings
 * (bind/nn.c) check every argument first, so preconditions are asserts.
 *
 * Every driver cuts its work into fixed tasks (blocks of SL_BLOCK elements,
 * or rows) whatever the thread count, and reductions fold per-task partials
 * in task order: the results are bit-identical for any number of threads.
 * None allocates: scratch (partials, rows of interpolation) lives on the
 * stack in fixed-size windows, and indices and weights are computed on the
 * fly, so a call with stable shapes (or any shapes) costs no malloc. The
 * int-returning drivers return 0 (kept for callers that check).
 */
#ifndef SL_NN_LAYERS_H
#define SL_NN_LAYERS_H

#include <stddef.h>

#include "../ops.h"

/* The layout of an activation: `planes` = N C contiguous planes of d x h x w
 * elements (d = 1 for 4-D tensors); nd = 2 or 3 spatial dimensions. */
typedef struct sl_geom {
	size_t planes, d, h, w;
	int nd;
} sl_geom;

/* y = x > 0 ? x : slope x; y may equal x. */
void sl_nn_act(const sl_exec *e, size_t n, const float *x, float *y, float slope);
/* gx = gy (x > 0 ? 1 : slope) */
void sl_nn_act_bwd(const sl_exec *e, size_t n, const float *x, const float *gy, float *gx,
                   float slope);

/* Max pooling, window k and stride k along every spatial axis, no padding,
 * floor mode; y is (planes, d/k, h/k, w/k) (d stays 1 in 2-D). A window's
 * maximum is its first element v (row-major window order) with v > max or v
 * NaN, as in PyTorch's CPU kernel. */
void sl_nn_maxpool(const sl_exec *e, const sl_geom *g, size_t k, const float *x, float *y);
/* gx = 0 but at each window's maximum (recomputed from x: no index tensor
 * is kept), which gets the window's gy. */
void sl_nn_maxpool_bwd(const sl_exec *e, const sl_geom *g, size_t k, const float *x,
                       const float *gy, float *gx);

enum { SL_UP_NEAREST, SL_UP_LINEAR };
/* Upsampling by an integer scale s >= 1 along every spatial axis (g is the
 * input's layout): nearest (source index o / s) or (bi/tri)linear with
 * PyTorch's align_corners=False weights. */
int sl_nn_upsample(const sl_exec *e, const sl_geom *g, int mode, size_t s, const float *x,
                   float *y);
/* The adjoint: gx = A^T gy, each gx element a sum over the gy elements that
 * took from it, in a fixed order (a gather, no scatter). */
int sl_nn_upsample_bwd(const sl_exec *e, const sl_geom *g, int mode, size_t s, const float *gy,
                       float *gx);

enum { SL_NORM_BATCH, SL_NORM_INSTANCE, SL_NORM_EVAL };
typedef struct sl_normjob {
	size_t N, C, M; /* M: spatial elements per plane */
	int mode;
	double eps, momentum;
	const float *w, *b;        /* (C) or NULL: 1 and 0 */
	float *mean, *invstd;      /* (C), or (N C) for instance */
	float *rmean, *rvar;       /* (C) or NULL; required by SL_NORM_EVAL */
} sl_normjob;
/* y = (x - mean) invstd w + b. Training modes compute the mean and the
 * biased variance in double (shifted one-pass sums), write mean and
 * 1/sqrt(var + eps), and update the running statistics when given
 * (r = (1 - momentum) r + momentum v, the variance unbiased). SL_NORM_EVAL
 * uses the running statistics and writes them, as mean and invstd, into
 * mean and invstd for the backward. y may equal x. */
int sl_nn_norm(const sl_exec *e, const sl_normjob *j, const float *x, float *y);
/* gx from gy, given j->mean and j->invstd of the forward; gw and gb (C),
 * each NULL or accumulated (+=). In SL_NORM_EVAL, gx = gy w invstd. gx may
 * equal gy or x. */
int sl_nn_norm_bwd(const sl_exec *e, const sl_normjob *j, const float *x, const float *gy,
                   float *gx, float *gw, float *gb);

/* out[n] = [a[n], b[n]] for N samples of na and nb elements. */
void sl_nn_concat(const sl_exec *e, size_t N, size_t na, size_t nb, const float *a,
                  const float *b, float *out);
/* The inverse: ga[n], gb[n] = the two parts of g[n]; ga or gb may be NULL. */
void sl_nn_split(const sl_exec *e, size_t N, size_t na, size_t nb, const float *g, float *ga,
                 float *gb);

/* One step of SGD / Adam over n elements (nnkern.h for the constants). */
void sl_nn_sgd(const sl_exec *e, size_t n, float *p, const float *g, float *buf,
               const sl_sgd_par *o);
void sl_nn_adam(const sl_exec *e, size_t n, float *p, const float *g, float *m, float *v,
                const sl_adam_par *o);

#endif
