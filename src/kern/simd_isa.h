/*
 * simd_isa.h — a width-generic vector layer over SIMDe.
 *
 * simd.c is compiled once per instruction set. The build defines one of
 *   SL_ISA_AVX2  (256-bit, compiled with -mavx2 -mfma: native AVX2 + FMA)
 *   SL_ISA_128   (128-bit: native SSE2 on x86-64, native NEON on AArch64;
 *                 the backend is called "sse2" or "neon" accordingly)
 * and this header maps a small vocabulary (vf_*, vi_*) onto the matching
 * simde_mm_* / simde_mm256_* intrinsics. Kernels are written once against it.
 *
 * Semantics that kernels rely on:
 *   vf_max(a, b) / vf_min(a, b): x86 semantics, if either is NaN the result
 *     is b — so vf_max(const, x) propagates a NaN in x.
 *   vf_fma(a, b, c) = a*b + c, vf_fnma(a, b, c) = c - a*b: one rounding with
 *     AVX2+FMA, two roundings on the 128-bit path (the backends then differ
 *     in the last bits).
 *   vf_sel(m, a, b) = m ? a : b lane-wise, m an all-ones/all-zeros mask.
 */
#ifndef SL_SIMD_ISA_H
#define SL_SIMD_ISA_H

#include <stddef.h>
#include <string.h>

#if defined(SL_ISA_AVX2)

#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>

#define SL_W 8
#define SL_HAS_FMA 1
#define SL_SFX(name) name##__avx2
#define SL_ISA_NAME "avx2"
typedef simde__m256 vf;
typedef simde__m256i vi;
typedef simde__m256d vd;

#define vf_zero() simde_mm256_setzero_ps()
#define vf_set1(v) simde_mm256_set1_ps(v)
#define vf_load(p) simde_mm256_loadu_ps(p)
#define vf_store(p, v) simde_mm256_storeu_ps((p), (v))
#define vf_add(a, b) simde_mm256_add_ps((a), (b))
#define vf_sub(a, b) simde_mm256_sub_ps((a), (b))
#define vf_mul(a, b) simde_mm256_mul_ps((a), (b))
#define vf_div(a, b) simde_mm256_div_ps((a), (b))
#define vf_sqrt(a) simde_mm256_sqrt_ps(a)
#define vf_max(a, b) simde_mm256_max_ps((a), (b))
#define vf_min(a, b) simde_mm256_min_ps((a), (b))
#define vf_and(a, b) simde_mm256_and_ps((a), (b))
#define vf_or(a, b) simde_mm256_or_ps((a), (b))
#define vf_xor(a, b) simde_mm256_xor_ps((a), (b))
#define vf_andnot(a, b) simde_mm256_andnot_ps((a), (b)) /* ~a & b */
#define vf_fma(a, b, c) simde_mm256_fmadd_ps((a), (b), (c))
#define vf_fnma(a, b, c) simde_mm256_fnmadd_ps((a), (b), (c)) /* c - a*b */
#define vf_sel(m, a, b) simde_mm256_blendv_ps((b), (a), (m))
#define vf_eq(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_EQ_OQ)
#define vf_neq(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_NEQ_UQ)
#define vf_lt(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_LT_OQ)
#define vf_le(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_LE_OQ)
#define vf_gt(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_GT_OQ)
#define vf_ge(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_GE_OQ)
#define vf_unord(a, b) simde_mm256_cmp_ps((a), (b), SIMDE_CMP_UNORD_Q)
#define vf_movemask(a) simde_mm256_movemask_ps(a)
#define vf_as_vi(a) simde_mm256_castps_si256(a)
#define vi_as_vf(a) simde_mm256_castsi256_ps(a)
#define vf_to_vi(a) simde_mm256_cvtps_epi32(a) /* round to nearest */
#define vi_to_vf(a) simde_mm256_cvtepi32_ps(a)
#define vi_set1(v) simde_mm256_set1_epi32(v)
#define vi_add(a, b) simde_mm256_add_epi32((a), (b))
#define vi_sub(a, b) simde_mm256_sub_epi32((a), (b))
#define vi_and(a, b) simde_mm256_and_si256((a), (b))
#define vi_or(a, b) simde_mm256_or_si256((a), (b))
#define vi_sll(a, k) simde_mm256_slli_epi32((a), (k))
#define vi_srl(a, k) simde_mm256_srli_epi32((a), (k))
#define vi_sra(a, k) simde_mm256_srai_epi32((a), (k))
#define vi_gt(a, b) simde_mm256_cmpgt_epi32((a), (b))

/* Widen the lanes of a float vector into doubles and add them to two
 * double accumulators (lo: lanes 0..3, hi: lanes 4..7). */
#define vd_zero() simde_mm256_setzero_pd()
#define vd_add(a, b) simde_mm256_add_pd((a), (b))
#define vd_store(p, v) simde_mm256_storeu_pd((p), (v))
#define VD_LANES 4
static inline void vd_acc(vd *lo, vd *hi, vf x)
{
	*lo = simde_mm256_add_pd(*lo, simde_mm256_cvtps_pd(simde_mm256_castps256_ps128(x)));
	*hi = simde_mm256_add_pd(*hi, simde_mm256_cvtps_pd(simde_mm256_extractf128_ps(x, 1)));
}
#define vd_set1(v) simde_mm256_set1_pd(v)
#define vd_sub(a, b) simde_mm256_sub_pd((a), (b))
#define vd_mul(a, b) simde_mm256_mul_pd((a), (b))
/* lanes 0..3 and 4..7 of x as doubles */
#define vd_cvtlo(x) simde_mm256_cvtps_pd(simde_mm256_castps256_ps128(x))
#define vd_cvthi(x) simde_mm256_cvtps_pd(simde_mm256_extractf128_ps((x), 1))

/* Even and odd elements of the 2 SL_W floats a:b (in order). */
static inline void vf_deint(vf a, vf b, vf *ev, vf *od)
{
	/* within 128-bit lanes: a0 a2 b0 b2 | a4 a6 b4 b6; then the 64-bit
	 * pieces reordered 0 2 1 3 */
	vf e = simde_mm256_shuffle_ps(a, b, SIMDE_MM_SHUFFLE(2, 0, 2, 0));
	vf o = simde_mm256_shuffle_ps(a, b, SIMDE_MM_SHUFFLE(3, 1, 3, 1));
	*ev = simde_mm256_castpd_ps(
		simde_mm256_permute4x64_pd(simde_mm256_castps_pd(e), SIMDE_MM_SHUFFLE(3, 1, 2, 0)));
	*od = simde_mm256_castpd_ps(
		simde_mm256_permute4x64_pd(simde_mm256_castps_pd(o), SIMDE_MM_SHUFFLE(3, 1, 2, 0)));
}

/* The inverse: a:b = e0 o0 e1 o1 ... */
static inline void vf_inter(vf ev, vf od, vf *a, vf *b)
{
	vf lo = simde_mm256_unpacklo_ps(ev, od), hi = simde_mm256_unpackhi_ps(ev, od);
	*a = simde_mm256_permute2f128_ps(lo, hi, 0x20);
	*b = simde_mm256_permute2f128_ps(lo, hi, 0x31);
}

#elif defined(SL_ISA_128)

#include <simde/x86/sse2.h>

#define SL_W 4
#define SL_HAS_FMA 0
#if defined(__aarch64__) || defined(__ARM_NEON)
#define SL_SFX(name) name##__neon
#define SL_ISA_NAME "neon"
#else
#define SL_SFX(name) name##__sse2
#define SL_ISA_NAME "sse2"
#endif
typedef simde__m128 vf;
typedef simde__m128i vi;
typedef simde__m128d vd;

#define vf_zero() simde_mm_setzero_ps()
#define vf_set1(v) simde_mm_set1_ps(v)
#define vf_load(p) simde_mm_loadu_ps(p)
#define vf_store(p, v) simde_mm_storeu_ps((p), (v))
#define vf_add(a, b) simde_mm_add_ps((a), (b))
#define vf_sub(a, b) simde_mm_sub_ps((a), (b))
#define vf_mul(a, b) simde_mm_mul_ps((a), (b))
#define vf_div(a, b) simde_mm_div_ps((a), (b))
#define vf_sqrt(a) simde_mm_sqrt_ps(a)
#define vf_max(a, b) simde_mm_max_ps((a), (b))
#define vf_min(a, b) simde_mm_min_ps((a), (b))
#define vf_and(a, b) simde_mm_and_ps((a), (b))
#define vf_or(a, b) simde_mm_or_ps((a), (b))
#define vf_xor(a, b) simde_mm_xor_ps((a), (b))
#define vf_andnot(a, b) simde_mm_andnot_ps((a), (b))
#define vf_fma(a, b, c) simde_mm_add_ps(simde_mm_mul_ps((a), (b)), (c))
#define vf_fnma(a, b, c) simde_mm_sub_ps((c), simde_mm_mul_ps((a), (b)))
#define vf_sel(m, a, b) simde_mm_or_ps(simde_mm_and_ps((m), (a)), simde_mm_andnot_ps((m), (b)))
#define vf_eq(a, b) simde_mm_cmpeq_ps((a), (b))
#define vf_neq(a, b) simde_mm_cmpneq_ps((a), (b))
#define vf_lt(a, b) simde_mm_cmplt_ps((a), (b))
#define vf_le(a, b) simde_mm_cmple_ps((a), (b))
#define vf_gt(a, b) simde_mm_cmpgt_ps((a), (b))
#define vf_ge(a, b) simde_mm_cmpge_ps((a), (b))
#define vf_unord(a, b) simde_mm_cmpunord_ps((a), (b))
#define vf_movemask(a) simde_mm_movemask_ps(a)
#define vf_as_vi(a) simde_mm_castps_si128(a)
#define vi_as_vf(a) simde_mm_castsi128_ps(a)
#define vf_to_vi(a) simde_mm_cvtps_epi32(a)
#define vi_to_vf(a) simde_mm_cvtepi32_ps(a)
#define vi_set1(v) simde_mm_set1_epi32(v)
#define vi_add(a, b) simde_mm_add_epi32((a), (b))
#define vi_sub(a, b) simde_mm_sub_epi32((a), (b))
#define vi_and(a, b) simde_mm_and_si128((a), (b))
#define vi_or(a, b) simde_mm_or_si128((a), (b))
#define vi_sll(a, k) simde_mm_slli_epi32((a), (k))
#define vi_srl(a, k) simde_mm_srli_epi32((a), (k))
#define vi_sra(a, k) simde_mm_srai_epi32((a), (k))
#define vi_gt(a, b) simde_mm_cmpgt_epi32((a), (b))

#define vd_zero() simde_mm_setzero_pd()
#define vd_add(a, b) simde_mm_add_pd((a), (b))
#define vd_store(p, v) simde_mm_storeu_pd((p), (v))
#define VD_LANES 2
static inline void vd_acc(vd *lo, vd *hi, vf x)
{
	*lo = simde_mm_add_pd(*lo, simde_mm_cvtps_pd(x));
	*hi = simde_mm_add_pd(*hi, simde_mm_cvtps_pd(simde_mm_movehl_ps(x, x)));
}
#define vd_set1(v) simde_mm_set1_pd(v)
#define vd_sub(a, b) simde_mm_sub_pd((a), (b))
#define vd_mul(a, b) simde_mm_mul_pd((a), (b))
#define vd_cvtlo(x) simde_mm_cvtps_pd(x)
#define vd_cvthi(x) simde_mm_cvtps_pd(simde_mm_movehl_ps((x), (x)))

/* Even and odd elements of the 2 SL_W floats a:b (in order). */
static inline void vf_deint(vf a, vf b, vf *ev, vf *od)
{
	*ev = simde_mm_shuffle_ps(a, b, SIMDE_MM_SHUFFLE(2, 0, 2, 0));
	*od = simde_mm_shuffle_ps(a, b, SIMDE_MM_SHUFFLE(3, 1, 3, 1));
}

/* The inverse: a:b = e0 o0 e1 o1 ... */
static inline void vf_inter(vf ev, vf od, vf *a, vf *b)
{
	*a = simde_mm_unpacklo_ps(ev, od);
	*b = simde_mm_unpackhi_ps(ev, od);
}

#else
#error "simd_isa.h: define SL_ISA_AVX2 or SL_ISA_128"
#endif

/* Loads k <= SL_W floats, zero-filling the rest. */
static inline vf vf_loadk(const float *p, size_t k)
{
	if (k == SL_W)
		return vf_load(p);
	float buf[SL_W] = {0};
	memcpy(buf, p, k * sizeof(float));
	return vf_load(buf);
}

/* Stores the first k <= SL_W lanes. */
static inline void vf_storek(float *p, vf v, size_t k)
{
	if (k == SL_W) {
		vf_store(p, v);
		return;
	}
	float buf[SL_W];
	vf_store(buf, v);
	memcpy(p, buf, k * sizeof(float));
}

#endif
