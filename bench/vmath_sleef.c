/*
 * vmath_sleef.c — SLEEF 3.5's u10 functions wrapped as an sl_kern table, so
 * that bench/vmath.c measures them with the same loops and the same accuracy
 * checker as segloss' own vmath. Built once per ISA like src/kern/simd.c.
 * sigmoid and softplus are composed from SLEEF's exp and log1p in the same
 * stable forms as vmath.h.
 */
#include <stddef.h>

#include "kern/simd_isa.h"
#include <sleef.h>

#include "kern/kern.h"

#if defined(SL_ISA_AVX2)
#define S_EXP Sleef_expf8_u10avx2
#define S_LOG Sleef_logf8_u10avx2
#define S_LOG1P Sleef_log1pf8_u10avx2
#define S_POW Sleef_powf8_u10avx2
#define TABLE sl_kern_sleef_avx2
#define NAME "sleef-avx2"
#else
#define S_EXP Sleef_expf4_u10sse2
#define S_LOG Sleef_logf4_u10sse2
#define S_LOG1P Sleef_log1pf4_u10sse2
#define S_POW Sleef_powf4_u10sse2
#define TABLE sl_kern_sleef_sse2
#define NAME "sleef-sse2"
#endif

static inline vf s_sigmoid(vf x)
{
	vf z = S_EXP(vf_or(x, vf_set1(-0.0f)));
	vf num = vf_sel(vf_lt(x, vf_zero()), z, vf_set1(1.0f));
	return vf_div(num, vf_add(vf_set1(1.0f), z));
}

static inline vf s_softplus(vf x)
{
	vf z = S_EXP(vf_or(x, vf_set1(-0.0f)));
	return vf_add(vf_max(vf_zero(), x), S_LOG1P(z));
}

/* whole vectors, then the tail through a padded buffer */
#define WRAP(fname, expr)                                                        \
	static void fname(size_t n, const float *x, float *y)                    \
	{                                                                        \
		size_t i = 0;                                                    \
		for (; i + SL_W <= n; i += SL_W) {                               \
			vf v = vf_load(x + i);                                   \
			vf_store(y + i, expr);                                   \
		}                                                                \
		if (i < n) {                                                     \
			float b[SL_W] = {0};                                     \
			for (size_t j = 0; j < n - i; j++)                       \
				b[j] = x[i + j];                                 \
			vf v = vf_load(b);                                       \
			vf_store(b, expr);                                       \
			for (size_t j = 0; j < n - i; j++)                       \
				y[i + j] = b[j];                                 \
		}                                                                \
	}

WRAP(k_exp, S_EXP(v))
WRAP(k_log, S_LOG(v))
WRAP(k_log1p, S_LOG1P(v))
WRAP(k_sigmoid, s_sigmoid(v))
WRAP(k_softplus, s_softplus(v))

static void k_pow(size_t n, const float *x, float g, float *y)
{
	vf vg = vf_set1(g);
	size_t i = 0;
	for (; i + SL_W <= n; i += SL_W)
		vf_store(y + i, S_POW(vf_load(x + i), vg));
	if (i < n) {
		float b[SL_W] = {0};
		for (size_t j = 0; j < n - i; j++)
			b[j] = x[i + j];
		vf_store(b, S_POW(vf_load(b), vg));
		for (size_t j = 0; j < n - i; j++)
			y[i + j] = b[j];
	}
}

extern const sl_kern TABLE;
const sl_kern TABLE = {
	.name = NAME,
	.exp = k_exp,
	.log = k_log,
	.log1p = k_log1p,
	.sigmoid = k_sigmoid,
	.softplus = k_softplus,
	.pow = k_pow,
};
