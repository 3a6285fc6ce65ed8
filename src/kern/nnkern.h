/*
 * nnkern.h — the network's kernels of one backend (the `nn` sub-table of
 * sl_kern): activations, 2x max pooling, the rows of interpolation, the
 * passes of batch and instance normalisation, and the optimisers' updates.
 *
 * Like every kernel these are single-threaded and work on one contiguous
 * chunk; the drivers in src/nn/ cut the work into fixed blocks. Elementwise
 * float arithmetic is written without fused multiply-add and in the same
 * order in every backend, so that all backends give the same bits; only the
 * double sums of the normalisation statistics differ in their order (lanes).
 */
#ifndef SL_NNKERN_H
#define SL_NNKERN_H

#include <stddef.h>

#include "interp.h"

/* One step of torch.optim.SGD, as float constants (see nn/layers.h). */
typedef struct sl_sgd_par {
	float neg_lr;       /* -lr */
	float wd;           /* weight decay (0: none) */
	float momentum;     /* 0: no buffer */
	float one_m_damp;   /* 1 - dampening */
	int nesterov;
	int first;          /* the buffer's first step: buf = d_p */
} sl_sgd_par;

/* One step of torch.optim.Adam / AdamW. */
typedef struct sl_adam_par {
	float decay;        /* AdamW: p *= decay (1 - lr wd); 1: none */
	float wd;           /* Adam: g += wd p (L2); 0: none */
	float beta1, one_m_beta1, beta2, one_m_beta2;
	float bc2_sqrt;     /* sqrt(1 - beta2^step) */
	float eps;
	float neg_step;     /* -lr / (1 - beta1^step) */
} sl_adam_par;

typedef struct sl_nnkern {
	/* y = x > 0 ? x : slope x; y may equal x. */
	void (*act)(size_t n, const float *x, float *y, float slope);
	/* gx = x > 0 ? gy : gy slope; gx may equal gy or x. */
	void (*act_bwd)(size_t n, const float *x, const float *gy, float *gx, float slope);

	/* Max pooling with window 2, stride 2: one output row of wo elements
	 * from the nr (2: 4-D, 4: 5-D) input rows of its window, in window
	 * order. The first maximum wins (`v > m || isnan(v)` in row-major window
	 * order, PyTorch's CPU rule), so a NaN propagates. */
	void (*pool2)(size_t wo, size_t nr, const float *const *rows, float *y);
	/* Its backward: writes the nr gradient rows of width w (2 wo or
	 * 2 wo + 1; the odd last column gets 0): gy of each window goes to the
	 * element pool2 picked from rows, 0 elsewhere. */
	void (*pool2_bwd)(size_t wo, size_t w, size_t nr, const float *const *rows, const float *gy,
	                  float *const *grows);

	/* Σ (x - shift) and Σ (x - shift)² in double (n <= SL_BLOCK): the
	 * shifted one-pass moments of normalisation. */
	void (*moments)(size_t n, const float *x, float shift, double *s1, double *s2);
	/* y = x a + b (two roundings); y may equal x. */
	void (*affine)(size_t n, const float *x, float a, float b, float *y);
	/* Σ gy and Σ gy (x - mean) in double (n <= SL_BLOCK). */
	void (*norm_bstats)(size_t n, const float *x, const float *gy, float mean, double *sg,
	                    double *sgx);
	/* gx = ((gy - gm) - (x - mean) k) s; gx may equal x or gy. */
	void (*norm_bwd)(size_t n, const float *x, const float *gy, float *gx, float mean, float gm,
	                 float k, float s);

	/* y = a wa + b wb (interpolation of two rows); y may equal a or b. */
	void (*lerp)(size_t n, const float *a, float wa, const float *b, float wb, float *y);
	/* y = y + w x */
	void (*axpy)(size_t n, float w, const float *x, float *y);

	/* Linear upsampling by 2 (align_corners=False), one output row of 2 w
	 * from nr = 2 input rows of width w (2-D) or 4 (3-D), with the vertical
	 * weights wt = {wy0, wy1, wz0, wz1}: interp.h's sl_up2_at at every
	 * column (the same floats, in the same order). */
	void (*up2)(size_t w, size_t nr, const float *const *rows, const float *wt, float *y);
	/* Its adjoint: one gradient row gx of width w from the gradient rows
	 * (of width 2 w) rows[z ny + y] with weights wy[y] (and wz[z] in 3-D;
	 * nz = 0 in 2-D): sl_up2_adj_at at every column. */
	void (*up2_adj)(size_t w, size_t nz, const float *wz, size_t ny, const float *wy,
	                const float *const *rows, float *gx);
	/* Nearest upsampling by 2 along a row: y[2 i] = y[2 i + 1] = x[i]. */
	void (*near2)(size_t w, const float *x, float *y);
	/* Its adjoint, accumulated: acc[i] = acc[i] + (g[2 i] + g[2 i + 1]). */
	void (*near2_adj)(size_t w, const float *g, float *acc);

	/* One optimiser step on n elements of a parameter p with gradient g. */
	void (*sgd)(size_t n, float *p, const float *g, float *buf, const sl_sgd_par *o);
	void (*adam)(size_t n, float *p, const float *g, float *m, float *v, const sl_adam_par *o);
} sl_nnkern;

extern const sl_nnkern sl_nnkern_scalar;

#endif
