/*
 * simd.c — the SIMD backends, written once against simd_isa.h.
 *
 * Built twice on x86-64: with -DSL_ISA_AVX2 -mavx2 -mfma (table
 * sl_kern__avx2) and with -DSL_ISA_128 (sl_kern__sse2); on AArch64 the
 * 128-bit build is native NEON through SIMDe (sl_kern__neon). The loss
 * kernels of the table come from loss_simd.c, built the same way. Every kernel runs
 * its main loop on whole vectors and its tail through the same code on a
 * partial vector (vf_loadk / vf_storek), never through a second formula.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "kern.h"
#include "loss_simd.h"
#include "simd_isa.h"
#include "vmath.h"

#define UNARY_KERNEL(fname, vfun)                                              \
	static void SL_SFX(fname)(size_t n, const float *x, float *y)          \
	{                                                                      \
		size_t i = 0;                                                  \
		for (; i + 2 * SL_W <= n; i += 2 * SL_W) {                     \
			vf a = vfun(vf_load(x + i));                           \
			vf b = vfun(vf_load(x + i + SL_W));                    \
			vf_store(y + i, a);                                    \
			vf_store(y + i + SL_W, b);                             \
		}                                                              \
		for (; i < n; i += SL_W) {                                     \
			size_t k = n - i < SL_W ? n - i : SL_W;                \
			vf_storek(y + i, vfun(vf_loadk(x + i, k)), k);         \
		}                                                              \
	}

UNARY_KERNEL(vexp, v_exp)
UNARY_KERNEL(vlog, v_log)
UNARY_KERNEL(vlog1p, v_log1p)
UNARY_KERNEL(vsigmoid, v_sigmoid)
UNARY_KERNEL(vsoftplus, v_softplus)

static void SL_SFX(vpow)(size_t n, const float *x, float g, float *y)
{
	assert(g >= 0.0f);
	/* powf's semantics: x^k for negative x and an integer k, NaN for a
	 * negative x and any other g. Exponents 0..4 multiply (at most 1.5 ulp);
	 * larger ones go through e^(g ln|x|), which is more accurate than a long
	 * chain of squarings. */
	int integral = g < 0x1p24f && (float)(unsigned)g == g;
	unsigned k = integral ? (unsigned)g : 0u;
	vf vg = vf_set1(g), sign = vf_set1((integral && (k & 1u)) ? -0.0f : 0.0f);
	for (size_t i = 0; i < n; i += SL_W) {
		size_t m = n - i < SL_W ? n - i : SL_W;
		vf b = vf_loadk(x + i, m), r;
		if (integral && k <= 4)
			r = v_powi(b, k);
		else if (integral)
			r = vf_xor(v_pow(vf_andnot(vf_set1(-0.0f), b), vg), vf_and(sign, b));
		else
			r = v_pow(b, vg);
		vf_storek(y + i, r, m);
	}
}

static double SL_SFX(sum)(size_t n, const float *x)
{
	assert(n <= SL_BLOCK);
	vd a0 = vd_zero(), a1 = vd_zero(), a2 = vd_zero(), a3 = vd_zero();
	size_t i = 0;
	for (; i + 2 * SL_W <= n; i += 2 * SL_W) {
		vd_acc(&a0, &a1, vf_load(x + i));
		vd_acc(&a2, &a3, vf_load(x + i + SL_W));
	}
	if (i < n) {
		size_t k = n - i < SL_W ? n - i : SL_W;
		vd_acc(&a0, &a1, vf_loadk(x + i, k));
		i += k;
		if (i < n)
			vd_acc(&a2, &a3, vf_loadk(x + i, n - i));
	}
	double lanes[VD_LANES];
	vd_store(lanes, vd_add(vd_add(a0, a2), vd_add(a1, a3)));
	double s = 0.0;
	for (int j = 0; j < VD_LANES; j++)
		s += lanes[j];
	return s;
}

static inline vf binop_v(int op, vf a, vf b)
{
	switch (op) {
	case '+':
		return vf_add(a, b);
	case '-':
		return vf_sub(a, b);
	case '*':
		return vf_mul(a, b);
	default:
		return vf_div(a, b);
	}
}

/* the loops per operation, so that the switch is outside them */
#define BINOP_LOOP(OP)                                                                   \
	for (size_t i = 0; i < n; i += SL_W) {                                           \
		size_t k = n - i < SL_W ? n - i : SL_W;                                  \
		vf x = vf_loadk(a + i, k);                                               \
		vf y = b ? vf_loadk(b + i, k) : vv;                                      \
		vf_storek(out + i, swap ? binop_v(OP, y, x) : binop_v(OP, x, y), k);     \
	}

static void SL_SFX(binop)(int op, size_t n, const float *a, const float *b, float v, int swap,
                          float *out)
{
	vf vv = vf_set1(v);
	switch (op) {
	case '+':
		BINOP_LOOP('+') break;
	case '-':
		BINOP_LOOP('-') break;
	case '*':
		BINOP_LOOP('*') break;
	default:
		BINOP_LOOP('/') break;
	}
}

static double SL_SFX(dot)(size_t n, const float *a, const float *b)
{
	assert(n <= SL_BLOCK);
	vd a0 = vd_zero(), a1 = vd_zero(), a2 = vd_zero(), a3 = vd_zero();
	for (size_t i = 0; i < n; i += 2 * SL_W) {
		size_t k = n - i < SL_W ? n - i : SL_W;
		vd_acc(&a0, &a1, vf_mul(vf_loadk(a + i, k), vf_loadk(b + i, k)));
		if (i + SL_W < n) {
			size_t k2 = n - i - SL_W < SL_W ? n - i - SL_W : SL_W;
			vd_acc(&a2, &a3, vf_mul(vf_loadk(a + i + SL_W, k2), vf_loadk(b + i + SL_W, k2)));
		}
	}
	double lanes[VD_LANES];
	vd_store(lanes, vd_add(vd_add(a0, a2), vd_add(a1, a3)));
	double s = 0.0;
	for (int j = 0; j < VD_LANES; j++)
		s += lanes[j];
	return s;
}

static void SL_SFX(minmax)(size_t n, const float *x, float *mn, float *mx)
{
	assert(n >= 1);
	/* Partial vectors repeat x[0], which changes neither extreme. */
	vf lo = vf_set1(x[0]), hi = lo, nan = vf_zero();
	for (size_t i = 0; i < n; i += SL_W) {
		size_t k = n - i < SL_W ? n - i : SL_W;
		vf v = lo;
		if (k == SL_W) {
			v = vf_load(x + i);
		} else {
			float buf[SL_W];
			for (int j = 0; j < SL_W; j++)
				buf[j] = x[i + ((size_t)j < k ? (size_t)j : 0)];
			v = vf_load(buf);
		}
		nan = vf_or(nan, vf_unord(v, v));
		lo = vf_min(v, lo); /* NaN lanes of v leave lo unchanged */
		hi = vf_max(v, hi);
	}
	float l[SL_W], h[SL_W];
	vf_store(l, lo);
	vf_store(h, hi);
	float a = l[0], b = h[0];
	for (int j = 1; j < SL_W; j++) {
		a = l[j] < a ? l[j] : a;
		b = h[j] > b ? h[j] : b;
	}
	if (vf_movemask(nan)) {
		a = __builtin_nanf("");
		b = a;
	}
	*mn = a;
	*mx = b;
}

/* Softmax over channels for SL_W (or k) spatial positions starting at s. */
static inline void softmax_tile(size_t C, size_t M, size_t s, size_t k, const float *x, float *y)
{
	vf mx = vf_loadk(x + s, k);
	for (size_t c = 1; c < C; c++)
		mx = vf_max(vf_loadk(x + c * M + s, k), mx);
	vf sum = vf_zero();
	for (size_t c = 0; c < C; c++) {
		vf e = v_exp(vf_sub(vf_loadk(x + c * M + s, k), mx));
		sum = vf_add(sum, e);
		vf_storek(y + c * M + s, e, k);
	}
	for (size_t c = 0; c < C; c++)
		vf_storek(y + c * M + s, vf_div(vf_loadk(y + c * M + s, k), sum), k);
}

static void SL_SFX(softmax)(size_t C, size_t M, size_t s0, size_t s1, const float *x, float *y)
{
	assert(C >= 1 && s0 <= s1 && s1 <= M);
	size_t s = s0;
	for (; s + SL_W <= s1; s += SL_W)
		softmax_tile(C, M, s, SL_W, x, y);
	if (s < s1)
		softmax_tile(C, M, s, s1 - s, x, y);
}

#include "nn_simd.h"

static void SL_SFX(sigpq)(size_t n, const float *x, float *p, float *q, float *spn)
{
	for (size_t i = 0; i < n; i += SL_W) {
		size_t k = n - i < SL_W ? n - i : SL_W;
		vf v = vf_loadk(x + i, k);
		if (spn) {
			vsigl o = v_sig_log(v);
			vf_storek(p + i, o.p, k);
			vf_storek(q + i, o.q, k);
			vf_storek(spn + i, o.spn, k);
		} else {
			vsig o = v_sig(v);
			vf_storek(p + i, o.p, k);
			vf_storek(q + i, o.q, k);
		}
	}
}

const sl_kern SL_SFX(sl_kern) = {
	.name = SL_ISA_NAME,
	.exp = SL_SFX(vexp),
	.log = SL_SFX(vlog),
	.log1p = SL_SFX(vlog1p),
	.sigmoid = SL_SFX(vsigmoid),
	.softplus = SL_SFX(vsoftplus),
	.pow = SL_SFX(vpow),
	.sum = SL_SFX(sum),
	.dot = SL_SFX(dot),
	.binop = SL_SFX(binop),
	.minmax = SL_SFX(minmax),
	.softmax = SL_SFX(softmax),
	.sigpq = SL_SFX(sigpq),
	.loss_stats = SL_SFX(sl_loss_stats),
	.loss_fused = SL_SFX(sl_loss_fused),
	.loss_check = SL_SFX(sl_loss_check),
	.loss_variants = &SL_SFX(sl_loss_variants),
	.nn = &SL_SFX(sl_nnkern),
};
