/*
 * kern.h — one table of kernels per backend.
 *
 * A backend is a constant table of function pointers. Kernels are Lua-free,
 * single-threaded, and work on one contiguous chunk: the drivers in ops.c cut
 * the work into fixed-size blocks, spread the blocks over threads and fold
 * partial results in a fixed order, so that a result never depends on the
 * thread count. Preconditions are asserted, not reported: the bindings check
 * every argument before a kernel runs.
 *
 * Backends: "scalar" (plain C and libm, the reference), "sse2" (128-bit
 * SIMDe; the same source is "neon" on AArch64), "avx2" (256-bit SIMDe with
 * FMA). The SIMD tables are built from one source, simd.c, once per ISA.
 */
#ifndef SL_KERN_H
#define SL_KERN_H

#include <stddef.h>

#include "../loss/loss.h"
#include "nnkern.h"

/* Elements per block of every deterministic reduction (64 KiB of floats). */
#define SL_BLOCK 16384

typedef void (*sl_unary_fn)(size_t n, const float *x, float *y);

/* Pixel-part modes of the SIMD fused pass, fixed at compile time for the
 * common jobs: no pixel part, one bce part, one focal part with gamma 2,
 * anything else (a loop over the parts; every pixel part with softmax). */
enum { SL_PXM_NONE, SL_PXM_BCE, SL_PXM_FOCAL2, SL_PXM_GEN };

/* One variant of a SIMD backend's loss kernels (loss_variants.inc): its
 * name and compile-time switches. A statistics-pass variant has reg = pxm =
 * fromp = fromz = 0, a fused-pass variant full = bce = storep = storez = 0. */
enum { SL_VAR_STATS, SL_VAR_FUSED };
typedef struct sl_lossvar {
	const char *name;
	int kind;                     /* SL_VAR_* */
	int act, labels, mask;        /* SL_ACT_*, a label map, a mask */
	int full, bce, storep, storez; /* statistics: job.stats_full, bce_stats, p_in_out,
	                                  z_in_out */
	int reg, pxm, fromp, fromz;   /* fused: region coefficients, SL_PXM_*, job.p_in_out,
	                                 z_in_out */
} sl_lossvar;

/* The variants of a backend and how often each ran since the module was
 * loaded (per process, whatever the Lua state; relaxed atomic counts, one
 * per task): calls[n] counts the jobs that found no variant and ran the
 * scalar kernel instead (0 unless the list misses a job the driver makes). */
typedef struct sl_lossvars {
	const sl_lossvar *v;
	int n;
	unsigned long *calls;
} sl_lossvars;

typedef struct sl_kern {
	const char *name;

	/* y[i] = f(x[i]); y may equal x. */
	sl_unary_fn exp;      /* e^x */
	sl_unary_fn log;      /* ln x: -inf at 0, NaN below */
	sl_unary_fn log1p;    /* ln(1 + x): -inf at -1, NaN below */
	sl_unary_fn sigmoid;  /* 1 / (1 + e^-x) */
	sl_unary_fn softplus; /* ln(1 + e^x); log-sigmoid(x) = -softplus(-x) */
	/* y[i] = x[i]^g for a constant g >= 0, as powf: 0^0 = 1, (-2)^3 = -8,
	 * NaN for a negative x and a non-integer g. */
	void (*pow)(size_t n, const float *x, float g, float *y);

	/* Sum of one block (n <= SL_BLOCK), accumulated in double. */
	double (*sum)(size_t n, const float *x);
	/* out = a op b elementwise, op one of '+', '-', '*', '/'; b NULL: a op v,
	 * or v op a with swap. out may equal a or b. */
	void (*binop)(int op, size_t n, const float *a, const float *b, float v, int swap,
	              float *out);
	/* Σ a b of one block (n <= SL_BLOCK): products in float, sums in double. */
	double (*dot)(size_t n, const float *a, const float *b);
	/* Minimum and maximum of x[0..n), n >= 1; NaN if any element is NaN. */
	void (*minmax)(size_t n, const float *x, float *mn, float *mx);
	/* Softmax over the channel axis of one sample laid out as x[c*M + s],
	 * for the spatial positions s in [s0, s1); y may equal x. */
	void (*softmax)(size_t C, size_t M, size_t s0, size_t s1, const float *x, float *y);

	/* The sigmoid p of x, its complement q = 1 - p, and, when spn is not
	 * NULL, softplus(-x) = -ln p, as the loss kernels compute them (one
	 * exponential for all three); for the accuracy checks. */
	void (*sigpq)(size_t n, const float *x, float *p, float *q, float *spn);

	/* The loss kernels of loss.h: statistics pass and fused pass of one task. */
	sl_stats_fn loss_stats;
	sl_fused_fn loss_fused;
	/* Checks x (cx) and t, m (ct) of a task without computing the loss; with
	 * st, adds Σ m t and Σ m per channel into st[c][SL_S_ST], st[c][SL_S_M].
	 * Returns 1 if a check failed (the driver then finds the element). */
	int (*loss_check)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, int cx, int ct,
	                  double *st);
	/* the variants behind loss_stats and loss_fused; NULL for scalar */
	const sl_lossvars *loss_variants;

	/* The network's elementwise, pooling, normalisation and optimiser kernels (nnkern.h). */
	const sl_nnkern *nn;
} sl_kern;

extern const sl_kern sl_kern_scalar;
/* loss_scalar.c */
void sl_loss_stats__scalar(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st,
                           sl_bad *bad);
void sl_loss_fused__scalar(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                           sl_bad *bad);
int sl_loss_check__scalar(const sl_lossjob *j, size_t n, size_t s0, size_t s1, int cx, int ct,
                          double *st);
#if defined(__x86_64__) || defined(__i386__)
extern const sl_kern sl_kern__sse2;
extern const sl_kern sl_kern__avx2;
#elif defined(__aarch64__)
extern const sl_kern sl_kern__neon;
#endif

/* dispatch.c */
#define SL_MAX_BACKENDS 4
/* The backends this build and CPU can run, best first; returns the count. */
int sl_kern_available(const sl_kern **out);
/* Every backend this build knows of (some may not run on this CPU). */
int sl_kern_known(const sl_kern **out);
/* The backend called name if this CPU can run it, else NULL. */
const sl_kern *sl_kern_find(const char *name);

#endif
