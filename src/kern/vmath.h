/*
 * vmath.h — float32 elementary functions on SIMDe vectors.
 *
 * Included by simd.c after simd_isa.h, so every function exists once per ISA.
 * All are branch-free in the common case; special inputs (0, negatives, Inf,
 * NaN) are fixed up by a select that runs only when a vector holds one.
 * Accuracy, measured by vmcheck.c against double-precision libm over >= 1e7
 * points per function (see `make bench` and spec/04-vmath_spec.lua):
 *   v_exp, v_log, v_log1p <= 2 ulp; v_sigmoid, v_softplus <= 4 ulp.
 *
 * Method: the classic argument reductions (Cody & Waite): exp on |r| <=
 * ln2/2 after x = n ln2 + r, with a polynomial fitted for relative error;
 * log on m - 1 with m in [sqrt(1/2), sqrt(2)), with the minimax polynomial
 * of Cephes' single-precision library (S. Moshier). The split ln2 = C1 + C2
 * keeps n*C1 exact even without FMA. ln(1 + z) for z in [0, 1] (softplus,
 * the loss kernels) is 2 atanh(z/(2 + z)), one division and a short
 * polynomial (v_log1p01); the same form on the reduced range of v_log and
 * v_log1p was measured at 2.8 and 3.3 ulp, above their bound, so they keep
 * Cephes' polynomial.
 *
 * One implementation of each: the exponential (v_exp_reduce, v_exp_r) for
 * v_exp, v_pow and v_exp_neg; the logarithm's polynomial (v_log1p_reduced)
 * for v_log, v_log1p and v_pow; ln(1 + z) on [0, 1] (v_log1p01) for
 * softplus and the loss kernels' sigmoids.
 */
#ifndef SL_VMATH_H
#define SL_VMATH_H

#include "simd_isa.h"

/* ln2 = VM_LN2_HI + VM_LN2_LO; VM_LN2_HI has 9 significant bits, so n*HI is
 * exact for |n| < 2^15 (Cephes C1, C2). */
#define VM_LN2_HI 0x1.63p-1f          /* 0.693359375 */
#define VM_LN2_LO (-0x1.bd0106p-13f)  /* -2.12194440e-4 */
#define VM_LOG2E 0x1.715476p+0f       /* 1/ln2 */
#define VM_MAGIC 0x1.8p+23f           /* adding it rounds |v| < 2^22 to an integer */
#define VM_SQRTH 0x1.6a09e6p-1f       /* sqrt(1/2) */

/* The constant vectors one function needs are hoisted by the compiler when
 * the function is inlined into a loop. The small functions of the loss
 * kernels' inner loops are always inlined (VM_INLINE): left to gcc's
 * heuristics, which weigh the size of the translation unit, they became
 * calls in some kernels once the loss kernels had a file of their own, and
 * the softmax losses ran up to 12 % slower. */
#define VM_INLINE static inline __attribute__((always_inline))

/* The exponential: x = n ln2 + r with n = round(x / ln2) (Cody & Waite,
 * ln2 in two parts), e^r = 1 + r P(r) on |r| <= ln2/2 with P of degree 5
 * fitted for relative error (1.4 ulp in float with FMA), one FMA per
 * coefficient, then 2^n. One polynomial for every exponential of the
 * library: v_exp, v_pow through v_exp_lo, and the loss kernels' v_exp_neg,
 * which differ only in how they make 2^n. */

/* r = x - n ln2 for n = t - bias, where t = x/ln2 + bias rounds x/ln2 to
 * an integer (bias = VM_MAGIC plus an integer that the caller wants in the
 * low bits of t). */
VM_INLINE vf v_exp_reduce(vf x, float bias, vf *t)
{
	*t = vf_fma(x, vf_set1(VM_LOG2E), vf_set1(bias));
	vf n = vf_sub(*t, vf_set1(bias));
	vf r = vf_fma(n, vf_set1(-VM_LN2_HI), x);
	return vf_fma(n, vf_set1(-VM_LN2_LO), r);
}

/* e^r for |r| <= ln2/2 (a little beyond is fine: v_pow adds a correction) */
VM_INLINE vf v_exp_r(vf r)
{
	vf p = vf_set1(0x1.6ae730p-10f);
	p = vf_fma(p, r, vf_set1(0x1.126782p-7f));
	p = vf_fma(p, r, vf_set1(0x1.555822p-5f));
	p = vf_fma(p, r, vf_set1(0x1.55541ap-3f));
	p = vf_fma(p, r, vf_set1(0x1.fffffcp-2f));
	p = vf_fma(p, r, vf_set1(1.0f));
	return vf_fma(p, r, vf_set1(1.0f));
}

/* e^(x + lo), |lo| << |x| (lo is a correction term, see v_pow); with_lo is
 * a compile-time constant. Lanes below -104 give 0, above 89 overflow to
 * +Inf; NaN propagates through both clamps (vf_max/vf_min return their
 * second operand on NaN). */
static inline vf v_exp_lo(vf x, vf lo, int with_lo)
{
	x = vf_max(vf_set1(-104.0f), x);
	x = vf_min(vf_set1(89.0f), x);
	vf t;
	vf r = v_exp_reduce(x, VM_MAGIC, &t);
	vf n = vf_sub(t, vf_set1(VM_MAGIC));
	if (with_lo)
		r = vf_add(r, lo);
	vf y = v_exp_r(r);
	/* y * 2^n as y * 2^n1 * 2^n2 with n1 = floor(n/2): both factors are
	 * normal for n in [-150, 128], the first product is exact and the second
	 * rounds once — also into the subnormal range. */
	vi ni = vf_to_vi(n);
	vi n1 = vi_sra(ni, 1);
	vi n2 = vi_sub(ni, n1);
	vf s1 = vi_as_vf(vi_sll(vi_add(n1, vi_set1(127)), 23));
	vf s2 = vi_as_vf(vi_sll(vi_add(n2, vi_set1(127)), 23));
	return vf_mul(vf_mul(y, s1), s2);
}

/* e^x */
static inline vf v_exp(vf x) { return v_exp_lo(x, vf_zero(), 0); }

/* ln(1 + f) for f = m - 1, m in [sqrt(1/2), sqrt(2)), without the e ln2 term:
 * f - f^2/2 + f^3 P(f) (Cephes logf coefficients). */
static inline vf v_log1p_reduced(vf f, vf e)
{
	vf p = vf_set1(0x1.204376p-4f);              /*  7.0376836292e-2 */
	p = vf_fma(p, f, vf_set1(-0x1.d7a370p-4f));  /* -1.1514610310e-1 */
	p = vf_fma(p, f, vf_set1(0x1.de4a34p-4f));   /*  1.1676998740e-1 */
	p = vf_fma(p, f, vf_set1(-0x1.fcba9ep-4f));  /* -1.2420140846e-1 */
	p = vf_fma(p, f, vf_set1(0x1.23d37ep-3f));   /*  1.4249322787e-1 */
	p = vf_fma(p, f, vf_set1(-0x1.555ca0p-3f));  /* -1.6668057665e-1 */
	p = vf_fma(p, f, vf_set1(0x1.999d58p-3f));   /*  2.0000714765e-1 */
	p = vf_fma(p, f, vf_set1(-0x1.fffff8p-3f));  /* -2.4999993993e-1 */
	p = vf_fma(p, f, vf_set1(0x1.555554p-2f));   /*  3.3333331174e-1 */
	vf z = vf_mul(f, f);
	vf y = vf_mul(vf_mul(p, f), z);
	y = vf_fma(e, vf_set1(VM_LN2_LO), y);
	y = vf_fma(z, vf_set1(-0.5f), y);
	return vf_add(f, y);
}

/* Splits a positive normal float u into u = m 2^e with m in [sqrt(1/2),
 * sqrt(2)); returns f = m - 1 (exact) and e as a float. */
static inline vf v_split(vf u, vf *e)
{
	vi bits = vf_as_vi(u);
	vi ei = vi_sub(vi_srl(bits, 23), vi_set1(126));
	/* m in [0.5, 1) */
	vf m = vi_as_vf(vi_or(vi_and(bits, vi_set1(0x007fffff)), vi_set1(0x3f000000)));
	vf small = vf_lt(m, vf_set1(VM_SQRTH));
	vf ef = vf_sub(vi_to_vf(ei), vf_and(small, vf_set1(1.0f)));
	/* m < sqrt(1/2): f = 2m - 1, else f = m - 1; both exact */
	vf f = vf_add(vf_sub(m, vf_set1(1.0f)), vf_and(small, m));
	*e = ef;
	return f;
}

/* ln x; -Inf at ±0, NaN below 0 and for NaN, +Inf at +Inf. */
static inline vf v_log(vf x)
{
	/* scale subnormals into the normal range */
	vf sub = vf_lt(x, vf_set1(0x1p-126f));
	vf xs = vf_sel(sub, vf_mul(x, vf_set1(0x1p+23f)), x);
	vf e;
	vf f = v_split(xs, &e);
	e = vf_sub(e, vf_and(sub, vf_set1(23.0f)));
	vf y = vf_fma(e, vf_set1(VM_LN2_HI), v_log1p_reduced(f, e));
	vf ok = vf_and(vf_gt(x, vf_zero()), vf_lt(x, vf_set1(__builtin_inff())));
	if (vf_movemask(ok) != (1 << SL_W) - 1) {
		vf keep = vf_or(vf_eq(x, vf_set1(__builtin_inff())), vf_unord(x, x));
		vf fix = vf_sel(keep, x, vf_set1(__builtin_nanf("")));
		fix = vf_sel(vf_eq(x, vf_zero()), vf_set1(-__builtin_inff()), fix);
		y = vf_sel(ok, y, fix);
	}
	return y;
}

/* ln(1 + x); -Inf at -1, NaN below -1 and for NaN, +Inf at +Inf, ±0 kept. */
static inline vf v_log1p(vf x)
{
	vf one = vf_set1(1.0f);
	vf u = vf_add(one, x);
	/* The rounding error of u = fl(1 + x): exact as x - (u - 1) while u < 2,
	 * as 1 - (u - x) beyond (Sterbenz). Divided by u it is the first-order
	 * correction ln(1 + x) = ln u + c/u. u >= 2^-24 on the domain, so u is
	 * normal. */
	vf big = vf_ge(u, vf_set1(2.0f));
	vf c = vf_sel(big, vf_sub(one, vf_sub(u, x)), vf_sub(x, vf_sub(u, one)));
	c = vf_div(c, u);
	vf e;
	vf f = v_split(u, &e);
	vf y = vf_add(v_log1p_reduced(f, e), c);
	y = vf_fma(e, vf_set1(VM_LN2_HI), y);
	vf ok = vf_and(vf_gt(x, vf_set1(-1.0f)), vf_lt(x, vf_set1(__builtin_inff())));
	ok = vf_and(ok, vf_neq(x, vf_zero()));
	if (vf_movemask(ok) != (1 << SL_W) - 1) {
		vf keep = vf_or(vf_or(vf_eq(x, vf_set1(__builtin_inff())), vf_eq(x, vf_zero())),
		                vf_unord(x, x));
		vf fix = vf_sel(keep, x, vf_set1(__builtin_nanf("")));
		fix = vf_sel(vf_eq(x, vf_set1(-1.0f)), vf_set1(-__builtin_inff()), fix);
		y = vf_sel(ok, y, fix);
	}
	return y;
}

/* -|x| */
VM_INLINE vf v_negabs(vf x) { return vf_or(x, vf_set1(-0.0f)); }

/* ---- the sigmoid and its logarithms -------------------------------- */

/* e^z for z <= 0, the exponential of the loss kernels: the same as v_exp
 * but for 2^n, made in one shift of the integer n + 127 that the bias
 * leaves in the low bits of t, no clamps. A vector with a lane below
 * ln 2^-126 = -87.34 (a subnormal or zero result, so a logit beyond ±87)
 * takes v_exp, which scales into the subnormals and down to 0 correctly;
 * *slow says so. */
#define VM_EXP_NEG_SLOW (-87.33654f) /* below: a subnormal or zero e^z */
VM_INLINE vf v_exp_neg_s(vf z, int *slow)
{
	if ((*slow = vf_movemask(vf_lt(z, vf_set1(VM_EXP_NEG_SLOW))) != 0))
		return v_exp(z);
	vf t;
	vf r = v_exp_reduce(z, VM_MAGIC + 127.0f, &t);
	vf s = vi_as_vf(vi_sll(vf_as_vi(t), 23));
	return vf_mul(v_exp_r(r), s);
}

VM_INLINE vf v_exp_neg(vf z)
{
	int slow;
	return v_exp_neg_s(z, &slow);
}

/* ln(1 + z) for z in [0, 1], as 2 atanh(s) with s = z/(2 + z) in [0, 1/3]:
 * 2s (1 + c1 w + c2 w² + c3 w³ + c4 w⁴), w = s², coefficients fitted for
 * relative error on w in [0, 1/9]. Exact for tiny z (s = z/2). */
VM_INLINE vf v_log1p01(vf z)
{
	vf s = vf_div(z, vf_add(vf_set1(2.0f), z));
	vf w = vf_mul(s, s);
	vf P = vf_set1(0x1.1ed7c2p-3f);
	P = vf_fma(P, w, vf_set1(0x1.1ebd0cp-3f));
	P = vf_fma(P, w, vf_set1(0x1.99d208p-3f));
	P = vf_fma(P, w, vf_set1(0x1.555502p-2f));
	P = vf_fma(P, w, vf_set1(1.0f));
	return vf_mul(vf_add(s, s), P);
}

/* The sigmoid of x and its complement, both to full relative precision:
 * z = e^-|x|, r = 1/(1 + z); p = r, q = z r for x >= 0 and the other way
 * round for x < 0. */
typedef struct vsig {
	vf z, p, q;
} vsig;

/* the same from z = e^-|x| computed before (v_exp_neg) */
VM_INLINE vsig v_sig_z(vf x, vf z)
{
	vsig o;
	o.z = z;
	vf r = vf_div(vf_set1(1.0f), vf_add(vf_set1(1.0f), z));
	vf zr = vf_mul(z, r);
	vf pos = vf_ge(x, vf_zero());
	o.p = vf_sel(pos, r, zr);
	o.q = vf_sel(pos, zr, r);
	return o;
}

VM_INLINE vsig v_sig(vf x) { return v_sig_z(x, v_exp_neg(v_negabs(x))); }

/* The sigmoid of x, its complement and softplus(-x) = -ln p from one
 * exponential: with z = e^-|x|, r = 1/(1 + z) and s = z/(2 + z), the
 * argument of ln(1 + z) = 2 atanh(s) (v_log1p01). Two divisions, each
 * rounding once: one division of 1/((1 + z)(2 + z)) for both rounds four
 * times on the way to s and reached 5.1 ulp in softplus(-x). Measured by
 * spec/04 against double libm over 10^7 points: p, q <= 2.7 ulp,
 * softplus(-x) <= 3.5 ulp (most of it the 1.4 ulp of z). */
typedef struct vsigl {
	vf p, q, spn, spp; /* sigmoid, 1 - sigmoid, softplus(-x), softplus(x) */
} vsigl;

/* the same from z = e^-|x| computed before by v_exp_neg_s, slow set if it
 * took the slow path for this vector (or for any of a group of vectors:
 * the result is the same) */
VM_INLINE vsigl v_sig_log_z(vf x, vf z, int slow)
{
	vsigl o;
	vf one = vf_set1(1.0f);
	vf r = vf_div(one, vf_add(one, z));
	vf zr = vf_mul(z, r);
	vf pos = vf_ge(x, vf_zero());
	o.p = vf_sel(pos, r, zr);
	o.q = vf_sel(pos, zr, r);
	/* softplus(∓x) = max(∓x, 0) + ln(1 + z): both from ln(1 + z), so that
	 * softplus(x) is not softplus(-x) + x, which cancels for x << 0 */
	/* a subnormal z (|x| > 87.3, the slow path of the exponential): ln(1 +
	 * z) = z exactly, which s = z/2 would round */
	vf l1p = v_log1p01(z);
	if (slow)
		l1p = vf_sel(vf_lt(z, vf_set1(0x1p-24f)), z, l1p);
	o.spn = vf_add(vf_max(vf_zero(), vf_sub(vf_zero(), x)), l1p);
	o.spp = vf_add(vf_max(vf_zero(), x), l1p);
	return o;
}

VM_INLINE vsigl v_sig_log(vf x)
{
	int slow;
	vf z = v_exp_neg_s(v_negabs(x), &slow);
	return v_sig_log_z(x, z, slow);
}

/* sigma(x) = 1/(1 + e^-x), as 1/(1 + z) for x >= 0 and z/(1 + z) for x < 0
 * with z = e^-|x|: one exp, one division, no overflow, exact tails. */
static inline vf v_sigmoid(vf x)
{
	vf z = v_exp_neg(v_negabs(x));
	vf num = vf_sel(vf_lt(x, vf_zero()), z, vf_set1(1.0f));
	return vf_div(num, vf_add(vf_set1(1.0f), z));
}

/* softplus(x) = ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|), as v_sig_log's
 * softplus(x) (ln(1 + z) by v_log1p01, and z itself where it is
 * subnormal). */
static inline vf v_softplus(vf x)
{
	int slow;
	vf z = v_exp_neg_s(v_negabs(x), &slow);
	vf l1p = v_log1p01(z);
	if (slow)
		l1p = vf_sel(vf_lt(z, vf_set1(0x1p-24f)), z, l1p);
	return vf_add(vf_max(vf_zero(), x), l1p);
}

/* The rounding error of p = fl(a*b): a*b = p + err exactly (barring
 * overflow). One FMA where there is one, else Dekker's product with
 * Veltkamp's 12-bit splits. */
static inline vf v_prod_err(vf a, vf b, vf p)
{
#if SL_HAS_FMA
	return vf_fma(a, b, vf_sub(vf_zero(), p));
#else
	vf k = vf_set1(4097.0f); /* 2^12 + 1 */
	vf ca = vf_mul(a, k), cb = vf_mul(b, k);
	vf ah = vf_sub(ca, vf_sub(ca, a)), al = vf_sub(a, ah);
	vf bh = vf_sub(cb, vf_sub(cb, b)), bl = vf_sub(b, bh);
	vf e = vf_sub(vf_mul(ah, bh), p);
	e = vf_add(e, vf_mul(ah, bl));
	e = vf_add(e, vf_mul(al, bh));
	return vf_add(e, vf_mul(al, bl));
#endif
}

/* b^g for b >= 0 and g >= 0, as e^(g ln b). ln b = e ln2_hi + l is kept in
 * two parts (the first exact) and the product g (e ln2_hi) is split exactly,
 * so the exponent reaches exp with a few float ulps of absolute error even
 * when |g ln b| is near 100; the result is within a few ulps. 0^g = 0
 * (g > 0), b^0 = 1, Inf^g = Inf, NaN for b < 0 or NaN. Integer exponents
 * take v_powi. */
static inline vf v_pow(vf b, vf g)
{
	vf sub = vf_lt(b, vf_set1(0x1p-126f));
	vf bs = vf_sel(sub, vf_mul(b, vf_set1(0x1p+23f)), b);
	vf e;
	vf f = v_split(bs, &e);
	e = vf_sub(e, vf_and(sub, vf_set1(23.0f)));
	vf l = v_log1p_reduced(f, e);           /* ln m + e ln2_lo */
	vf h = vf_mul(e, vf_set1(VM_LN2_HI));   /* exact */
	vf ph = vf_mul(g, h);
	vf pl = vf_fma(g, l, v_prod_err(g, h, ph));
	/* renormalize (Knuth's TwoSum): s + err = ph + pl, |err| <= ulp(s)/2 */
	vf s = vf_add(ph, pl);
	vf bb = vf_sub(s, ph);
	vf err = vf_add(vf_sub(ph, vf_sub(s, bb)), vf_sub(pl, bb));
	vf y = v_exp_lo(s, err, 1);
	vf ok = vf_and(vf_gt(b, vf_zero()), vf_lt(b, vf_set1(__builtin_inff())));
	ok = vf_and(ok, vf_gt(g, vf_zero()));
	if (vf_movemask(ok) != (1 << SL_W) - 1) {
		/* b = +Inf or NaN: b; b = 0: 0; b < 0: NaN; and g = 0: 1 */
		vf keep = vf_or(vf_eq(b, vf_set1(__builtin_inff())), vf_unord(b, b));
		vf fix = vf_sel(keep, b, vf_set1(__builtin_nanf("")));
		fix = vf_sel(vf_eq(b, vf_zero()), vf_zero(), fix);
		vf okb = vf_and(vf_gt(b, vf_zero()), vf_lt(b, vf_set1(__builtin_inff())));
		y = vf_sel(okb, y, fix);
		y = vf_sel(vf_eq(g, vf_zero()), vf_set1(1.0f), y);
	}
	return y;
}

/* b^k for a small integer k >= 0, by squaring. */
static inline vf v_powi(vf b, unsigned k)
{
	vf r = vf_set1(1.0f);
	while (k) {
		if (k & 1u)
			r = vf_mul(r, b);
		k >>= 1;
		if (k)
			b = vf_mul(b, b);
	}
	return r;
}

#endif
