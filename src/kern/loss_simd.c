/*
 * loss_simd.c — the SIMD loss kernels (loss.h), built once per ISA like
 * simd.c (simd_isa.h, vmath.h): sl_loss_stats__<isa>, sl_loss_fused__<isa>
 * and sl_loss_check__<isa> of the backend tables.
 *
 * The kernels are written once as always-inline bodies with compile-time
 * switches (activation, label map, mask, statistics set, ...) and
 * instantiated for every variant of loss_variants.inc — the combinations
 * the driver can ask for — so the inner loops carry no dead work. The same
 * list makes the dispatch tables and the variants' descriptors. Sums are
 * kept per lane in float over SUB-vector sub-blocks, then added into double
 * accumulators, and the lanes folded in a fixed order.
 *
 * Input checks ride along at a few operations per vector: the finiteness of
 * x through an x*0 accumulator or of the loss terms through their sums, the
 * range of t and of x ("none") through min/max, the mask through m - m² = 0,
 * labels through rounding. A task whose checks fail (or whose sums overflow)
 * is redone by the scalar kernel, which finds the first bad element in the
 * reference order — or, if there is none, computes the task in double.
 *
 * The softmax kernels keep a pixel's channels on the stack and so take at
 * most SIMD_MAXC channels; the scalar kernels take wider inputs.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "../loss/validate.h"
#include "kern.h"
#include "simd_isa.h"
#include "vmath.h"
#include "loss_simd.h"

#define SUB 16
#define SIMD_MAXC 64
#define SM_GROUP 64 /* channel-vectors of exponentials a softmax group holds */

/* ---- building blocks ------------------------------------------------ */

/* softplus(-x) and softplus(x): -ln p and -ln(1 - p) */
typedef struct vsp {
	vf n, p;
} vsp;

/* p = sigmoid(x) and *q = 1 - p from z = e^-|x| (exp_block); with LOG (a
 * compile-time constant) also softplus(-x) and softplus(x) in *sp, else *sp
 * is untouched. slow: the exponential of this vector, or of one computed
 * with it, took its slow path. */
static inline __attribute__((always_inline)) vf v_sig_pq(vf x, vf z, int slow, int LOG, vf *q,
                                                         vsp *sp)
{
	if (LOG) {
		vsigl sg = v_sig_log_z(x, z, slow);
		*q = sg.q;
		sp->n = sg.spn;
		sp->p = sg.spp;
		return sg.p;
	}
	vsig sg = v_sig_z(x, z);
	*q = sg.q;
	return sg.p;
}

/* z = e^-|x| for the vectors of x at s, s + SL_W, ... below end (at most
 * SUB) into zb; returns 1 if one took the slow path. The sigmoid passes
 * compute the exponentials of a sub-block first, side by side, and the
 * rest vector by vector: their long chains of dependent operations (the
 * exponential, a division, ln(1 + z), the loss) then overlap in the CPU,
 * which a whole chain per vector, some 100 instructions, does not let it
 * do — the focal loss' fused pass ran 1.5x slower so. */
static inline __attribute__((always_inline)) int exp_block(const float *x, size_t s, size_t end,
                                                           vf *zb)
{
	int slow = 0;
	for (size_t k = 0; s < end; s += SL_W, k++) {
		int sl;
		zb[k] = v_exp_neg_s(v_negabs(vf_load(x + s)), &sl);
		slow |= sl;
	}
	return slow;
}

/* The clamped logarithms of activation "none", ln max(eps, p) and
 * ln max(eps, 1 - p) with p = x, of the same vectors, first for the same
 * reason. */
static inline __attribute__((always_inline)) void log_block(const float *x, size_t s, size_t end,
                                                            float eps, vf *lb)
{
	vf e = vf_set1(eps), one = vf_set1(1.0f);
	for (size_t k = 0; s < end; s += SL_W, k++) {
		vf p = vf_load(x + s), q = vf_sub(one, p);
		lb[4 * k] = v_log(vf_max(e, p));
		lb[4 * k + 1] = v_log(vf_max(e, q));
		/* and their derivatives: 1/p on [eps, 1], else 0 */
		lb[4 * k + 2] = vf_and(vf_ge(p, e), vf_div(one, vf_max(e, p)));
		lb[4 * k + 3] = vf_and(vf_ge(q, e), vf_div(vf_set1(-1.0f), vf_max(e, q)));
	}
}

/* The same from the z the statistics pass left in out (z_in_out), and
 * whether v_exp_neg_s would have taken its slow path. */
static inline __attribute__((always_inline)) int z_block(const float *x, const float *zin, size_t s,
                                                         size_t end, vf *zb)
{
	int slow = 0;
	for (size_t k = 0; s < end; s += SL_W, k++) {
		zb[k] = vf_load(zin + s);
		slow |= vf_movemask(vf_lt(v_negabs(vf_load(x + s)), vf_set1(VM_EXP_NEG_SLOW))) != 0;
	}
	return slow;
}

/* all-ones in the lanes below k */
static inline vf lanes_below(size_t k)
{
	float b[SL_W];
	for (int i = 0; i < SL_W; i++)
		b[i] = (size_t)i < k ? 1.0f : 0.0f;
	return vf_gt(vf_load(b), vf_set1(0.5f));
}

/* float sub-block sums flushed into double accumulators */
typedef struct dacc {
	vd lo, hi;
} dacc;

static inline void dacc_add(dacc *d, vf *f)
{
	vd_acc(&d->lo, &d->hi, *f);
	*f = vf_zero();
}

static inline double dacc_total(dacc *d)
{
	double b[VD_LANES];
	vd_store(b, vd_add(d->lo, d->hi));
	double s = 0.0;
	for (int i = 0; i < VD_LANES; i++)
		s += b[i];
	return s;
}

static inline int any_lane(vf m) { return vf_movemask(m) != 0; }

/* label check: not an integer in [0, C-1], or NaN */
static inline vf bad_label(vf lab, vf cmax)
{
	vf rr = vf_sub(vf_add(lab, vf_set1(0x1.8p+23f)), vf_set1(0x1.8p+23f));
	vf bad = vf_neq(rr, lab);
	bad = vf_or(bad, vf_lt(lab, vf_zero()));
	return vf_or(bad, vf_gt(lab, cmax));
}

/* mask check: m - m² != 0 (or NaN) for anything but 0 and 1 */
static inline vf bad_mask(vf m) { return vf_neq(vf_fma(vf_sub(vf_zero(), m), m, m), vf_zero()); }

/* ---- statistics pass, elementwise activations ------------------------- */

typedef struct rowchk {
	vf xz;         /* Σ x*0: NaN if x has NaN or Inf (sigmoid) */
	vf lo, hi;     /* min and max of x ("none") */
	vf tlo, thi;   /* min and max of a dense t */
	vf bad;        /* label and mask failures */
	vf gz;         /* Σ g*0 of the gradient the fused pass computes: NaN if it overflows */
} rowchk;

static inline void chk_init(rowchk *k)
{
	k->xz = vf_zero();
	k->lo = k->hi = k->tlo = k->thi = vf_zero();
	k->bad = vf_zero();
	k->gz = vf_zero();
}

static inline int grad_failed(const rowchk *k) { return any_lane(vf_neq(k->gz, vf_zero())); }

static inline int chk_failed(const rowchk *k, int act_none, int dense)
{
	vf b = vf_or(k->bad, vf_neq(k->xz, vf_zero()));
	if (act_none)
		b = vf_or(b, vf_or(vf_lt(k->lo, vf_zero()), vf_gt(k->hi, vf_set1(1.0f))));
	if (dense)
		b = vf_or(b, vf_or(vf_lt(k->tlo, vf_zero()), vf_gt(k->thi, vf_set1(1.0f))));
	return any_lane(b);
}

/* The statistics of one row, as named vectors so that they stay in
 * registers: float sums over a sub-block, then double. */
typedef struct vstats {
	vf v[SL_NSTAT];
} vstats;

typedef struct dstats {
	dacc d[SL_NSTAT];
} dstats;

/* FULL: bit 0, the full region statistics (else the basic 4); bit 1, the
 * bce sums SL_S_BA and SL_S_BB */
#define FOR_STAT(k, FULL)                                                                         \
	for (int k = 0; k < SL_NSTAT; k++)                                                        \
		if (k < (((FULL) & 1) ? SL_NSTAT_FULL : SL_NSTAT_BASIC) || (((FULL) & 2) && k >= SL_S_BA))

/* One vector of statistics into the row's float sums a[SL_NSTAT], for both
 * passes (elementwise and softmax). HASM: multiply by m (a mask, or the
 * lane mask of a tail); ACCM: add m into M' (with a mask; without one M' is
 * a count). sp: softplus(∓x) for the bce sums. */
static inline __attribute__((always_inline)) void stat_add(vf *a, vf p, vf t, vf m, vsp sp,
                                                           int HASM, int ACCM, int FULL)
{
	vf mp = HASM ? vf_mul(m, p) : p;
	vf mt = HASM ? vf_mul(m, t) : t;
	a[SL_S_TP] = vf_fma(mp, t, a[SL_S_TP]);
	a[SL_S_SP] = vf_add(a[SL_S_SP], mp);
	a[SL_S_ST] = vf_add(a[SL_S_ST], mt);
	if (ACCM)
		a[SL_S_M] = vf_add(a[SL_S_M], m);
	if (FULL & 1) {
		vf d = vf_sub(t, p);
		vf md2 = HASM ? vf_mul(m, vf_mul(d, d)) : vf_mul(d, d);
		vf ad = vf_andnot(vf_set1(-0.0f), d);
		a[SL_S_SP2] = vf_fma(mp, p, a[SL_S_SP2]);
		a[SL_S_ST2] = vf_fma(mt, t, a[SL_S_ST2]);
		a[SL_S_SAD] = HASM ? vf_fma(m, ad, a[SL_S_SAD]) : vf_add(a[SL_S_SAD], ad);
		a[SL_S_SQT] = vf_fma(md2, t, a[SL_S_SQT]);
		a[SL_S_SQN] = vf_fma(md2, vf_sub(vf_set1(1.0f), t), a[SL_S_SQN]);
	}
	if (FULL & 2) { /* Σ m t softplus(-x), Σ m (1 - t) softplus(x) */
		vf mnt = HASM ? vf_sub(m, mt) : vf_sub(vf_set1(1.0f), t);
		a[SL_S_BA] = vf_fma(mt, sp.n, a[SL_S_BA]);
		a[SL_S_BB] = vf_fma(mnt, sp.p, a[SL_S_BB]);
	}
}

static inline __attribute__((always_inline)) void stat_flush(vstats *a, dstats *d, int FULL)
{
	FOR_STAT(k, FULL)
	{
		vd_acc(&d->d[k].lo, &d->d[k].hi, a->v[k]);
		a->v[k] = vf_zero();
	}
}

static inline __attribute__((always_inline)) void stat_zero(vstats *a, dstats *d, int FULL)
{
	FOR_STAT(k, FULL)
	{
		a->v[k] = vf_zero();
		d->d[k].lo = d->d[k].hi = vd_zero();
	}
}

/* p of one vector of x (z = e^-|x| with sigmoid), with the checks of x;
 * stores p (STP) or z (STZ) for the fused pass; with BCES also
 * softplus(-x) */
static inline __attribute__((always_inline)) vf stats_p(rowchk *ck, vf x, vf z, int slow,
                                                        float *pout, size_t kk, vsp *sp, int ACT,
                                                        int STP, int STZ, int BCES)
{
	if (ACT == SL_ACT_SIGMOID) {
		vf q, p = v_sig_pq(x, z, slow, BCES, &q, sp);
		ck->xz = vf_fma(x, vf_zero(), ck->xz);
		if (STP) /* +p for x < 0, -(1 - p) for x >= 0 */
			vf_storek(pout, vf_sel(vf_ge(x, vf_zero()), vf_xor(q, vf_set1(-0.0f)), p), kk);
		if (STZ)
			vf_storek(pout, z, kk);
		return p;
	}
	ck->lo = vf_min(x, ck->lo);
	ck->hi = vf_max(x, ck->hi);
	return x;
}

static inline __attribute__((always_inline)) void
stats_ew(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st, sl_bad *bad, int ACT,
         int LAB, int MSK, int FULL, int STP, int STZ)
{
	size_t C = j->C, M = j->M;
	vf one = vf_set1(1.0f), cmax = vf_set1((float)C - 1.0f);
	int failed = 0;
	for (size_t c = 0; c < C && !failed; c++) {
		const float *xr = j->x + (n * C + c) * M;
		const float *tr = LAB ? j->t + n * M : j->t + (n * C + c) * M;
		const float *mr = MSK ? j->m + (j->mask_full ? (n * C + c) * M : n * M) : NULL;
		float *pr = STP || STZ ? j->out + (n * C + c) * M : NULL;
		int chk_lab = LAB && c == 0, chk_m = MSK && (j->mask_full || c == 0);
		vf cv = vf_set1((float)c);
		vstats a;
		dstats d;
		stat_zero(&a, &d, FULL);
		rowchk ck;
		chk_init(&ck);
		size_t s = s0;
		while (s + SL_W <= s1) {
			size_t end = s + SUB * SL_W <= s1 ? s + SUB * SL_W : s1 - (s1 - s) % SL_W;
			vf zb[SUB];
			int slow = ACT == SL_ACT_SIGMOID ? exp_block(xr, s, end, zb) : 0;
			for (size_t kz = 0; s < end; s += SL_W, kz++) {
				vf x = vf_load(xr + s), t, m = one;
				if (LAB) {
					vf lab = vf_load(tr + s);
					if (chk_lab)
						ck.bad = vf_or(ck.bad, bad_label(lab, cmax));
					t = vf_and(vf_eq(lab, cv), one);
				} else {
					t = vf_load(tr + s);
					ck.tlo = vf_min(t, ck.tlo);
					ck.thi = vf_max(t, ck.thi);
				}
				if (MSK) {
					m = vf_load(mr + s);
					if (chk_m)
						ck.bad = vf_or(ck.bad, bad_mask(m));
				}
				vsp sp = {vf_zero(), vf_zero()};
				vf p = stats_p(&ck, x, zb[kz], slow, pr ? pr + s : NULL, SL_W, &sp, ACT, STP,
				               STZ, FULL & 2);
				stat_add(a.v, p, t, m, sp, MSK, MSK, FULL);
			}
			stat_flush(&a, &d, FULL);
		}
		if (s < s1) { /* tail: the same code on a partial vector */
			size_t kk = s1 - s;
			vf x = vf_loadk(xr + s, kk), t, m = vf_and(lanes_below(kk), one);
			if (LAB) {
				vf lab = vf_loadk(tr + s, kk);
				if (chk_lab)
					ck.bad = vf_or(ck.bad, bad_label(lab, cmax));
				t = vf_and(vf_eq(lab, cv), one);
			} else {
				t = vf_loadk(tr + s, kk);
				ck.tlo = vf_min(t, ck.tlo);
				ck.thi = vf_max(t, ck.thi);
			}
			if (MSK) {
				m = vf_loadk(mr + s, kk);
				if (chk_m)
					ck.bad = vf_or(ck.bad, bad_mask(m));
			}
			vsp sp = {vf_zero(), vf_zero()};
			int slow = 0;
			vf z = ACT == SL_ACT_SIGMOID ? v_exp_neg_s(v_negabs(x), &slow) : vf_zero();
			vf p = stats_p(&ck, x, z, slow, pr ? pr + s : NULL, kk, &sp, ACT, STP, STZ, FULL & 2);
			stat_add(a.v, p, t, m, sp, 1, MSK, FULL);
			stat_flush(&a, &d, FULL);
		}
		FOR_STAT(k, FULL)
		{
			st[c * SL_NSTAT + (size_t)k] += dacc_total(&d.d[k]);
			failed |= !isfinite(st[c * SL_NSTAT + (size_t)k]);
		}
		if (!MSK)
			st[c * SL_NSTAT + SL_S_M] += (double)(s1 - s0);
		failed |= chk_failed(&ck, ACT == SL_ACT_NONE && !j->x_real, !LAB);
	}
	if (failed) {
		/* the scalar kernel finds the first bad element, or does it right */
		memset(st, 0, C * SL_NSTAT * sizeof *st);
		sl_loss_stats__scalar(j, n, s0, s1, st, bad);
	}
}

/* ---- statistics pass, softmax ----------------------------------------- */

/* The softmax of one vector of pixels: e_c = e^(x_c - max) into e, the max,
 * 1/S and ln S (PIX) of S = Σ e_c; with xz, x * 0 added there (the check of
 * x). The passes compute it for a group of vectors first, then the rest
 * vector by vector, for the reason of exp_block. */
typedef struct smpre {
	const vf *e;
	vf mx, rS, lS;
} smpre;

static inline __attribute__((always_inline)) smpre sm_exps(const float *xb, size_t C, size_t M,
                                                           size_t kk, vf *e, vf *xz, int PIX)
{
	smpre o;
	vf mx = vf_loadk(xb, kk), S = vf_zero();
	for (size_t c = 1; c < C; c++)
		mx = vf_max(vf_loadk(xb + c * M, kk), mx);
	for (size_t c = 0; c < C; c++) {
		vf x = vf_loadk(xb + c * M, kk);
		if (xz)
			*xz = vf_fma(x, vf_zero(), *xz);
		e[c] = v_exp_neg(vf_sub(x, mx));
		S = vf_add(S, e[c]);
	}
	o.e = e;
	o.mx = mx;
	o.rS = vf_div(vf_set1(1.0f), S);
	o.lS = PIX ? v_log(S) : vf_zero();
	return o;
}


static inline __attribute__((always_inline)) void
stats_sm_vec(const sl_lossjob *j, size_t n, size_t s, size_t kk, vf *a, rowchk *ck, vf *pb,
             const smpre *sp, int LAB, int MSK, int FULL, int STP, int HASM, vf lanes)
{
	size_t C = j->C, M = j->M;
	vf one = vf_set1(1.0f);
	smpre own;
	if (!sp) {
		own = sm_exps(j->x + n * C * M + s, C, M, kk, pb, &ck->xz, 0);
		sp = &own;
	}
	const vf *eb = sp->e;
	vf rS = sp->rS;
	vf lab = vf_zero(), m = HASM ? vf_and(lanes, one) : one;
	if (LAB) {
		lab = vf_loadk(j->t + n * M + s, kk);
		ck->bad = vf_or(ck->bad, bad_label(lab, vf_set1((float)C - 1.0f)));
	}
	if (MSK && !j->mask_full) {
		m = vf_loadk(j->m + n * M + s, kk);
		ck->bad = vf_or(ck->bad, bad_mask(m));
	}
	for (size_t c = 0; c < C; c++) {
		vf p = vf_mul(eb[c], rS), t;
		if (LAB) {
			t = vf_and(vf_eq(lab, vf_set1((float)c)), one);
		} else {
			t = vf_loadk(j->t + (n * C + c) * M + s, kk);
			ck->tlo = vf_min(t, ck->tlo);
			ck->thi = vf_max(t, ck->thi);
		}
		if (MSK && j->mask_full) {
			m = vf_loadk(j->m + (n * C + c) * M + s, kk);
			ck->bad = vf_or(ck->bad, bad_mask(m));
		}
		if (STP)
			vf_storek(j->out + (n * C + c) * M + s, p, kk);
		vsp none = {vf_zero(), vf_zero()};
		stat_add(a + c * SL_NSTAT, p, t, m, none, HASM, MSK, FULL);
	}
}

static inline __attribute__((always_inline)) void
stats_sm(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st, sl_bad *bad, int LAB,
         int MSK, int FULL, int STP)
{
	size_t C = j->C;
	const int NS = FULL ? SL_NSTAT_FULL : SL_NSTAT_BASIC;
	vf a[SIMD_MAXC * SL_NSTAT], pb[SIMD_MAXC];
	dacc d[SIMD_MAXC * SL_NSTAT];
	for (size_t i = 0; i < C * SL_NSTAT; i++) {
		a[i] = vf_zero();
		d[i].lo = d[i].hi = vd_zero();
	}
	rowchk ck;
	chk_init(&ck);
	size_t s = s0;
	int sub = 0;
	/* the softmax vector by vector: grouped as in the fused pass, this pass
	 * (which also stores p with a fresh gradient) measured 5 % slower */
	for (; s + SL_W <= s1; s += SL_W) {
		stats_sm_vec(j, n, s, SL_W, a, &ck, pb, NULL, LAB, MSK, FULL, STP, MSK, vf_zero());
		if (++sub == SUB) {
			for (size_t c = 0; c < C; c++)
				for (int k = 0; k < NS; k++)
					dacc_add(&d[c * SL_NSTAT + (size_t)k], &a[c * SL_NSTAT + (size_t)k]);
			sub = 0;
		}
	}
	if (s < s1)
		stats_sm_vec(j, n, s, s1 - s, a, &ck, pb, NULL, LAB, MSK, FULL, STP, 1, lanes_below(s1 - s));
	int failed = chk_failed(&ck, 0, !LAB);
	for (size_t c = 0; c < C; c++) {
		for (int k = 0; k < NS; k++) {
			size_t i = c * SL_NSTAT + (size_t)k;
			dacc_add(&d[i], &a[i]);
			st[i] += dacc_total(&d[i]);
			failed |= !isfinite(st[i]);
		}
		if (!MSK)
			st[c * SL_NSTAT + SL_S_M] += (double)(s1 - s0);
	}
	if (failed) {
		memset(st, 0, C * SL_NSTAT * sizeof *st);
		sl_loss_stats__scalar(j, n, s0, s1, st, bad);
	}
}

/* ---- fused value and gradient pass --------------------------------------- */

/* dL/dp of the region parts for one vector, from the coefficients k of
 * its (n, c) (kfull: all SL_NK, else SL_NK_BASIC):
 * K_T0 (1 - t) + K_T1 t + K_P (p - t) [+ K_SAD sgn(p - t)
 * + 2 (p - t)(K_SE1 t + K_SE0 (1 - t))]: no cancellation (loss.h). The
 * broadcasts are hoisted out of the loop where k cannot change in it (a
 * row's copy on the stack), and cost a load each where it can. */
static inline __attribute__((always_inline)) vf region_gp(const float *k, int kfull, vf p, vf t)
{
	vf one = vf_set1(1.0f), zero = vf_zero(), k0 = vf_set1(k[SL_K_T0]);
	vf d = vf_sub(p, t);
	vf gp = vf_fma(vf_set1(k[SL_K_T1]), t, vf_fnma(t, k0, k0)); /* K_T0 (1 - t) */
	gp = vf_fma(vf_set1(k[SL_K_P]), d, gp);
	if (kfull) {
		vf ks0 = vf_set1(k[SL_K_SE0]);
		vf sg = vf_sub(vf_and(vf_gt(d, zero), one), vf_and(vf_lt(d, zero), one));
		gp = vf_fma(vf_set1(k[SL_K_SAD]), sg, gp);
		gp = vf_fma(vf_add(d, d), vf_fma(vf_set1(k[SL_K_SE1]), t, vf_fnma(t, ks0, ks0)), gp);
	}
	return gp;
}

/* q^g and g q^(g-1) for the focal factor; the derivative is 0 where q = 0
 * (docs/losses.md, Conventions). gi: g as an integer 0..4, or -1. */
static inline __attribute__((always_inline)) void v_focal_pow(vf q, float g, int gi, vf *qg,
                                                                vf *dqg)
{
	vf pos = vf_gt(q, vf_zero());
	switch (gi) {
	case 0:
		*qg = vf_set1(1.0f);
		*dqg = vf_zero();
		return;
	case 1:
		*qg = q;
		*dqg = vf_and(pos, vf_set1(1.0f));
		return;
	case 2:
		*qg = vf_mul(q, q);
		*dqg = vf_add(q, q);
		return;
	case 3: {
		vf q2 = vf_mul(q, q);
		*qg = vf_mul(q2, q);
		*dqg = vf_mul(vf_set1(3.0f), q2);
		return;
	}
	case 4: {
		vf q2 = vf_mul(q, q);
		*qg = vf_mul(q2, q2);
		*dqg = vf_mul(vf_set1(4.0f), vf_mul(q2, q));
		return;
	}
	default: {
		*qg = v_pow(q, vf_set1(g));
		/* g q^(g-1) as g q^g / q, the divisor kept normal: for a subnormal q
		 * (a logit beyond ±87) q^(g-1) would overflow for g < 1, while the
		 * gradient, this times dp/dx ~ q, is tiny either way */
		*dqg = vf_and(pos, vf_div(vf_mul(vf_set1(g), *qg), vf_max(vf_set1(0x1p-126f), q)));
		return;
	}
	}
}

/* per-row constants of the pixel parts */
typedef struct pixrow {
	vf w, sw;      /* class weight, and scale times it */
	vf pw, nw;     /* bce pos_weight, neg_weight */
	vf al, al1;    /* focal alpha_t = al t + al1 (1 - t) */
	float g;
	float la, lb, la1, lb1; /* label_smoothing: t' = la t + lb (1 - t), 1 - t' = la1 t + lb1 (1 - t) */
	int gi, type, ls;
} pixrow;

static inline void pixrow_init(pixrow *pr, const sl_pixk *px, size_t c)
{
	float w = px->cw ? px->cw[c] : 1.0f;
	pr->w = vf_set1(w);
	pr->sw = vf_set1(px->scale * w);
	pr->pw = vf_set1(px->pos_weight);
	pr->nw = vf_set1(px->neg_weight);
	pr->al = vf_set1(px->alpha_on ? px->alpha : 1.0f);
	pr->al1 = vf_set1(px->alpha_on ? 1.0f - px->alpha : 1.0f);
	pr->ls = px->ls;
	pr->la = (float)px->ls_a;
	pr->lb = (float)px->ls_b;
	pr->la1 = (float)px->ls_a1;
	pr->lb1 = (float)px->ls_b1;
	pr->g = px->gamma;
	float gf = px->gamma;
	pr->gi = gf <= 4.0f && gf == (float)(int)gf ? (int)gf : -1;
	pr->type = px->type;
}

/* The first element of the task whose out is not finite, as a bad gradient;
 * returns 1 if there is one. */
static int first_bad_grad(const sl_lossjob *j, size_t n, size_t s0, size_t s1, sl_bad *bad)
{
	for (size_t c = 0; c < j->C; c++)
		for (size_t s = s0; s < s1; s++) {
			size_t i = (n * j->C + c) * j->M + s;
			if (!isfinite(j->out[i]))
				return sl_record(bad, SL_BAD_GRAD, i, j->out[i]);
		}
	return 0;
}

/* The end of a fused task: the pixel parts' sums into vals, unless a check
 * failed or a sum overflowed; then the scalar kernel redoes the task (and
 * names the first bad element, if there is one). With p read from out
 * (FROMP) the task cannot be redone, since out now holds the gradient: the
 * first gradient that is not finite is the error. Nor when the gradient was
 * added into out (accumulate, not dry): the scalar kernel then runs as a
 * trial of the gradient alone, for a bad input or the values in double,
 * and if it finds nothing wrong, the first sum that is not finite is. */
static inline void fused_finish(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                                sl_bad *bad, vf *va, dacc *dv, int npix, int failed, int FROMP)
{
	double tot[SL_MAXPIX];
	for (int i = 0; i < npix; i++) {
		dacc_add(&dv[i], &va[i]);
		tot[i] = dacc_total(&dv[i]);
		failed |= !isfinite(tot[i]);
	}
	if (failed && FROMP && first_bad_grad(j, n, s0, s1, bad))
		return;
	if (failed && j->accumulate && !j->dry) {
		sl_lossjob trial = *j;
		trial.dry = 1;
		trial.accumulate = 0;
		double v[SL_MAXPIX] = {0};
		sl_loss_fused__scalar(&trial, n, s0, s1, v, bad);
		if (bad->kind != SL_BAD_NONE || first_bad_grad(j, n, s0, s1, bad))
			return;
		for (int i = 0; i < j->npix; i++)
			vals[i] += v[i];
		return;
	}
	if (failed) {
		sl_loss_fused__scalar(j, n, s0, s1, vals, bad);
		return;
	}
	for (int i = 0; i < npix; i++)
		vals[i] += tot[i];
}


/* ℓ and dℓ/dx of one pixel part for one vector (sigmoid or "none") */
static inline __attribute__((always_inline)) void
pix_term(const pixrow *pr, int type, int gi, vf t, vf omt, vf p, vf q, vf dpdx, vsp sp,
         vf lp, vf lq, vf dlp, vf dlq, vf *l, vf *g, int ACT)
{
	/* Every mix of a value at t = 1 and one at t = 0 is a t + b (1 - t),
	 * never b + (a - b) t, which loses a when b >> a (a saturated logit,
	 * alpha near 0). */
	vf one = vf_set1(1.0f), zero = vf_zero();
	if (type == SL_PX_BCE) {
		if (ACT == SL_ACT_SIGMOID) {
			/* ℓ = w t softplus(-x) + v (1 - t) softplus(x), g = -w t q + v (1 - t) p
			 * (w, v: pos_weight, neg_weight; v = 1 but in combo, and v·(1 - t)
			 * is then 1 - t exactly) */
			vf wt = vf_mul(pr->pw, t), vt = vf_mul(pr->nw, omt);
			*l = vf_fma(wt, sp.n, vf_mul(vt, sp.p));
			*g = vf_fma(vf_sub(zero, wt), q, vf_mul(vt, p));
		} else {
			vf pt = vf_mul(pr->pw, t), vt = vf_mul(pr->nw, omt);
			*l = vf_sub(zero, vf_fma(pt, lp, vf_mul(vt, lq)));
			*g = vf_sub(zero, vf_fma(pt, dlp, vf_mul(vt, dlq)));
		}
	} else if (type == SL_PX_CE) {
		*l = vf_sub(zero, vf_mul(t, lp));
		*g = vf_sub(zero, vf_mul(t, dlp));
	} else {
		/* focal: α_t Q^γ bce_t with Q = 1 - p_t = t q + (1 - t) p */
		vf Q = vf_fma(t, q, vf_mul(omt, p)), Qg, dQg, b, db;
		if (ACT == SL_ACT_SIGMOID) {
			b = vf_fma(t, sp.n, vf_mul(omt, sp.p));
			db = vf_fma(vf_sub(zero, t), q, vf_mul(omt, p)); /* p - t */
		} else {
			b = vf_sub(zero, vf_fma(t, lp, vf_mul(omt, lq)));
			db = vf_sub(zero, vf_fma(t, dlp, vf_mul(omt, dlq)));
		}
		v_focal_pow(Q, pr->g, gi, &Qg, &dQg);
		vf at = vf_fma(t, pr->al, vf_mul(omt, pr->al1));
		vf dQ = vf_mul(vf_mul(dQg, vf_fma(t, vf_set1(-2.0f), one)), dpdx);
		*l = vf_mul(at, vf_mul(Qg, b));
		*g = vf_mul(at, vf_fma(dQ, b, vf_mul(Qg, db)));
	}
}

/* One vector of the elementwise fused pass: returns d loss / d x, adds the
 * pixel parts' w m ℓ into va[]. */
static inline __attribute__((always_inline)) vf
fused_ew_vec(const pixrow *prs, int npix, int active, const float *k, int kfull, vf x, vf z,
             int slow, const vf *lb, vf t, vf m, vf packed, vf *va, rowchk *ck,
             int ACT, int HASM, int REG, int PXM, int FROMP)
{
	vf one = vf_set1(1.0f), zero = vf_zero();
	vf p, q, dpdx, lp = zero, lq = zero, dlp = zero, dlq = zero;
	vsp sp = {zero, zero};
	if (FROMP) {
		vf neg = vi_as_vf(vi_sra(vf_as_vi(packed), 31)); /* the sign bit, also of -0 */
		p = vf_sel(neg, vf_add(one, packed), packed);
		q = vf_sel(neg, vf_sub(zero, packed), vf_sub(one, packed));
		dpdx = vf_mul(p, q);
	} else if (ACT == SL_ACT_SIGMOID) {
		p = v_sig_pq(x, z, slow, PXM != SL_PXM_NONE, &q, &sp); /* sp: -ln p, -ln(1 - p) */
		dpdx = vf_mul(p, q);
	} else {
		p = x;
		q = vf_sub(one, x);
		dpdx = one;
		ck->lo = vf_min(x, ck->lo);
		ck->hi = vf_max(x, ck->hi);
		if (PXM != SL_PXM_NONE) {
			/* clamped logs: ln max(p, eps) and their derivatives (log_block) */
			lp = lb[0];
			lq = lb[1];
			dlp = lb[2];
			dlq = lb[3];
		}
	}
	vf gx = zero, omt = vf_sub(one, t);
	if (REG) {
		gx = vf_mul(region_gp(k, kfull, p, t), dpdx);
		if (HASM)
			gx = vf_mul(gx, m);
	}
	if (PXM == SL_PXM_NONE)
		return gx;
	for (int i = 0; i < (PXM == SL_PXM_GEN ? npix : 1); i++) {
		if (PXM == SL_PXM_GEN && !(active & (1 << i)))
			continue;
		const pixrow *pr = &prs[i];
		vf l, g, ti = t, oi = omt;
		if (pr->ls) { /* label_smoothing: the part's own target */
			ti = vf_fma(t, vf_set1(pr->la), vf_mul(omt, vf_set1(pr->lb)));
			oi = vf_fma(t, vf_set1(pr->la1), vf_mul(omt, vf_set1(pr->lb1)));
		}
		if (PXM == SL_PXM_BCE)
			pix_term(pr, SL_PX_BCE, -1, ti, oi, p, q, dpdx, sp, lp, lq, dlp, dlq, &l, &g, ACT);
		else if (PXM == SL_PXM_FOCAL2)
			pix_term(pr, SL_PX_FOCAL, 2, ti, oi, p, q, dpdx, sp, lp, lq, dlp, dlq, &l, &g, ACT);
		else
			pix_term(pr, pr->type, pr->gi, ti, oi, p, q, dpdx, sp, lp, lq, dlp, dlq, &l, &g,
			         ACT);
		vf swm = HASM ? vf_mul(pr->sw, m) : pr->sw;
		if (!FROMP) { /* with p from the statistics pass, bce's value came from there */
			vf wm = HASM ? vf_mul(pr->w, m) : pr->w;
			va[i] = vf_fma(wm, l, va[i]);
		}
		gx = vf_fma(swm, g, gx);
	}
	return gx;
}

static inline __attribute__((always_inline)) void
fused_ew(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals, sl_bad *bad, int ACT,
         int LAB, int MSK, int REG, int PXM, int FROMP, int FROMZ)
{
	size_t C = j->C, M = j->M;
	int npix = PXM != SL_PXM_NONE ? j->npix : 0, kfull = j->coef_full;
	int grad = j->out_mode == SL_OUT_GRAD, write = grad && !j->dry, acc = j->accumulate;
	const int EXPZ = ACT == SL_ACT_SIGMOID && !FROMP; /* exponentials first (exp_block) */
	const int LOGS = ACT == SL_ACT_NONE && PXM != SL_PXM_NONE; /* logarithms first (log_block) */
	int nk = kfull ? SL_NK : SL_NK_BASIC;
	vf one = vf_set1(1.0f), cmax = vf_set1((float)C - 1.0f);
	vf va[SL_MAXPIX];
	dacc dv[SL_MAXPIX];
	for (int i = 0; i < npix; i++) {
		va[i] = vf_zero();
		dv[i].lo = dv[i].hi = vd_zero();
	}
	rowchk ck;
	chk_init(&ck);
	int chk_t = j->fused_check_t;
	for (size_t c = 0; c < C; c++) {
		const float *xr = j->x + (n * C + c) * M;
		const float *tr = LAB ? j->t + n * M : j->t + (n * C + c) * M;
		const float *mr = MSK ? j->m + (j->mask_full ? (n * C + c) * M : n * M) : NULL;
		/* no gradient (grad = false): no output buffer, and no offset from NULL */
		float *orow = j->out ? j->out + (n * C + c) * M : NULL;
		int chk_lab = chk_t && LAB && c == 0, chk_m = chk_t && MSK && (j->mask_full || c == 0);
		vf cv = vf_set1((float)c);
		float k[SL_NK] = {0}; /* the row's coefficients, out of reach of the stores */
		if (REG)
			memcpy(k, j->coef + (n * C + c) * (size_t)nk, (size_t)nk * sizeof(float));
		pixrow prs[SL_MAXPIX];
		int active = 0;
		for (int i = 0; i < npix; i++) {
			pixrow_init(&prs[i], &j->pix[i], c);
			active |= (int)c >= j->pix[i].c0 ? 1 << i : 0;
		}
		if (PXM != SL_PXM_NONE && PXM != SL_PXM_GEN && !active) {
			/* a channel below the single part's c0: gradient 0 (or only the regions') */
			if (!REG) {
				if (write && !acc)
					memset(orow + s0, 0, (s1 - s0) * sizeof(float));
				continue;
			}
		}
		int px_here = PXM == SL_PXM_GEN || active;
/* one vector; HM: multiply by m; the loads are full or partial (kk); Z: its
 * e^-|x| (sigmoid), LP, LQ: its clamped logarithms ("none") */
#define FUSED_STEP(LOAD, HM, KK, Z, LB)                                                           \
	do {                                                                                      \
		vf x = FROMP ? vf_zero() : LOAD(xr + s), t, m = one;                              \
		vf packed = FROMP ? LOAD(orow + s) : vf_zero();                                   \
		if (LAB) {                                                                        \
			vf lab = LOAD(tr + s);                                                    \
			if (chk_lab)                                                              \
				ck.bad = vf_or(ck.bad, bad_label(lab, cmax));                     \
			t = vf_and(vf_eq(lab, cv), one);                                          \
		} else {                                                                          \
			t = LOAD(tr + s);                                                         \
			if (chk_t) {                                                              \
				ck.tlo = vf_min(t, ck.tlo);                                       \
				ck.thi = vf_max(t, ck.thi);                                       \
			}                                                                         \
		}                                                                                 \
		if (MSK) {                                                                        \
			m = LOAD(mr + s);                                                         \
			if (chk_m)                                                                \
				ck.bad = vf_or(ck.bad, bad_mask(m));                              \
		} else if (HM) {                                                                  \
			m = vf_and(lanes_below(KK), one);                                         \
		}                                                                                 \
		vf g = px_here ? fused_ew_vec(prs, npix, active, k, kfull, x, Z, slow, LB, t, m,     \
		                              packed, va, &ck, ACT, HM, REG, PXM, FROMP)         \
		               : fused_ew_vec(prs, npix, active, k, kfull, x, Z, slow, LB, t, m,     \
		                              packed, va, &ck, ACT, HM, REG, SL_PXM_NONE, FROMP); \
		if (acc)                                                                          \
			g = vf_add(LOAD(orow + s), g);                                            \
		if (grad)                                                                         \
			ck.gz = vf_fma(g, vf_zero(), ck.gz);                                      \
		if (write)                                                                        \
			STORE(orow + s, g);                                                       \
	} while (0)
#define LOADF(p) vf_load(p)
#define LOADK(p) vf_loadk((p), kk)
		size_t s = s0;
		while (s + SL_W <= s1) {
			size_t end = s + SUB * SL_W <= s1 ? s + SUB * SL_W : s1 - (s1 - s) % SL_W;
			vf zb[SUB], lb[LOGS ? 4 * SUB : 1];
			int slow = FROMZ ? z_block(xr, orow, s, end, zb) : EXPZ ? exp_block(xr, s, end, zb) : 0;
			if (LOGS)
				log_block(xr, s, end, j->eps, lb);
#define STORE(p, v) vf_store((p), (v))
			for (size_t kz = 0; s < end; s += SL_W, kz++)
				FUSED_STEP(LOADF, MSK, SL_W, zb[kz], lb + (LOGS ? 4 * kz : 0));
#undef STORE
			for (int i = 0; i < npix; i++)
				dacc_add(&dv[i], &va[i]);
		}
		if (s < s1) {
			size_t kk = s1 - s;
			int slow = 0;
			vf z = vf_zero(), xn = v_negabs(vf_loadk(xr + s, kk));
			if (FROMZ) {
				z = vf_loadk(orow + s, kk);
				slow = vf_movemask(vf_lt(xn, vf_set1(VM_EXP_NEG_SLOW))) != 0;
			} else if (EXPZ) {
				z = v_exp_neg_s(xn, &slow);
			}
			vf lb[4] = {vf_zero(), vf_zero(), vf_zero(), vf_zero()};
			if (LOGS) {
				float xk[SL_W] = {0};
				memcpy(xk, xr + s, kk * sizeof(float));
				log_block(xk, 0, SL_W, j->eps, lb);
			}
#define STORE(p, v) vf_storek((p), (v), kk)
			FUSED_STEP(LOADK, 1, kk, z, lb);
#undef STORE
		}
#undef LOADF
#undef LOADK
#undef FUSED_STEP
	}
	int failed = grad_failed(&ck);
	if (j->fused_check_x || j->fused_check_t)
		failed |= chk_failed(&ck, ACT == SL_ACT_NONE && !j->x_real && j->fused_check_x, !LAB && chk_t);
	fused_finish(j, n, s0, s1, vals, bad, va, dv, npix, failed, FROMP);
}


/* One vector of pixels of the softmax fused pass; pre: its softmax computed
 * before (sm_exps), or NULL. */
static inline __attribute__((always_inline)) void
fused_sm_vec(const sl_lossjob *j, const pixrow *prs, int npix, size_t n, size_t s, size_t kk,
             vf *pb, vf *hb, vf *va, rowchk *ck, const smpre *sp, int LAB, int MSK, int REG, int PIX,
             int FROMP, int HASM, vf lanes)
{
	size_t C = j->C, M = j->M;
	int nk = j->coef_full ? SL_NK : SL_NK_BASIC, chk_t = j->fused_check_t;
	const float *xb = j->x + n * C * M + s;
	float *ob = j->out ? j->out + n * C * M + s : NULL; /* NULL: no gradient */
	vf one = vf_set1(1.0f), zero = vf_zero(), lS = zero, rS = one, mx = zero;
	vf ebuf[SIMD_MAXC];
	const vf *eb = ebuf;
	if (FROMP) {
		for (size_t c = 0; c < C; c++)
			pb[c] = vf_loadk(ob + c * M, kk);
	} else {
		smpre own;
		if (!sp) { /* a tail: computed here */
			own = sm_exps(xb, C, M, kk, ebuf, NULL, PIX);
			sp = &own;
		}
		eb = sp->e;
		mx = sp->mx;
		rS = sp->rS;
		lS = sp->lS;
		for (size_t c = 0; c < C; c++)
			pb[c] = vf_mul(eb[c], rS);
	}
	vf lab = zero, m = HASM ? vf_and(lanes, one) : one;
	if (LAB) {
		lab = vf_loadk(j->t + n * M + s, kk);
		if (chk_t)
			ck->bad = vf_or(ck->bad, bad_label(lab, vf_set1((float)C - 1.0f)));
	}
	if (MSK) {
		/* (N,1,S), or channel 0 of a full mask (the driver checked that the
		 * channels agree) */
		m = vf_loadk(j->m + (j->mask_full ? n * C * M : n * M) + s, kk);
		if (chk_t)
			ck->bad = vf_or(ck->bad, bad_mask(m));
	}
	/* q_c = 1 - p_c as Σ_{k≠c} e_k / S (or Σ_{k≠c} p_k from the stored p):
	 * prefix and suffix sums keep it exact in the tails, for the focal factor
	 * and for the softmax chain rule below */
	vf pre[SIMD_MAXC];
	{
		const vf *src = FROMP ? pb : eb;
		vf acc = zero;
		for (size_t c = 0; c < C; c++) {
			pre[c] = acc;
			acc = vf_add(acc, src[c]);
		}
		acc = zero;
		for (size_t c = C; c-- > 0;) {
			pre[c] = vf_add(pre[c], acc);
			if (!FROMP)
				pre[c] = vf_mul(pre[c], rS);
			acc = vf_add(acc, src[c]);
		}
	}
	for (size_t c = 0; c < C; c++) {
		vf t = LAB ? vf_and(vf_eq(lab, vf_set1((float)c)), one) : vf_loadk(j->t + (n * C + c) * M + s, kk);
		if (!LAB && chk_t) {
			ck->tlo = vf_min(t, ck->tlo);
			ck->thi = vf_max(t, ck->thi);
		}
		vf h = zero;
		if (REG) {
			/* nk = SL_NK with coef_full: all six exist */
			h = vf_mul(pb[c], region_gp(j->coef + (n * C + c) * (size_t)nk, j->coef_full, pb[c], t));
			if (HASM)
				h = vf_mul(h, m);
		}
		if (PIX) {
			vf lp = vf_sub(vf_sub(vf_loadk(xb + c * M, kk), mx), lS);
			for (int i = 0; i < npix; i++) {
				const pixrow *pr = &prs[c * SL_MAXPIX + (size_t)i];
				if ((int)c < j->pix[i].c0)
					continue;
				vf l, hl, ti = t;
				if (pr->ls) /* label_smoothing: the part's own target */
					ti = vf_fma(t, vf_set1(pr->la), vf_mul(vf_sub(one, t), vf_set1(pr->lb)));
				if (pr->type == SL_PX_CE) {
					l = vf_sub(zero, vf_mul(ti, lp));
					hl = vf_sub(zero, ti);
				} else {
					vf Qg, dQg;
					v_focal_pow(pre[c], pr->g, pr->gi, &Qg, &dQg);
					l = vf_sub(zero, vf_mul(ti, vf_mul(Qg, lp)));
					hl = vf_sub(zero, vf_mul(ti, vf_sub(Qg, vf_mul(dQg, vf_mul(pb[c], lp)))));
				}
				vf wm = HASM ? vf_mul(pr->w, m) : pr->w;
				vf swm = HASM ? vf_mul(pr->sw, m) : pr->sw;
				va[i] = vf_fma(wm, l, va[i]);
				h = vf_fma(swm, hl, h);
			}
		}
		hb[c] = h;
	}
	/* dL/dx_c = h_c - p_c Σ_k h_k = h_c q_c - p_c Σ_{k≠c} h_k: no cancellation
	 * when one class takes (almost) all of the probability */
	if (j->out_mode == SL_OUT_GRAD) {
		int add = j->accumulate, write = !j->dry;
		vf acc = zero, hpre[SIMD_MAXC], gz = ck->gz;
		for (size_t c = 0; c < C; c++) {
			hpre[c] = acc;
			acc = vf_add(acc, hb[c]);
		}
		acc = zero;
		for (size_t c = C; c-- > 0;) {
			vf hx = vf_add(hpre[c], acc);
			acc = vf_add(acc, hb[c]);
			vf g = vf_sub(vf_mul(hb[c], pre[c]), vf_mul(pb[c], hx));
			if (add)
				g = vf_add(vf_loadk(ob + c * M, kk), g);
			gz = vf_fma(g, zero, gz);
			if (write)
				vf_storek(ob + c * M, g, kk);
		}
		ck->gz = gz;
	}
}

static inline __attribute__((always_inline)) void
fused_sm(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals, sl_bad *bad, int LAB,
         int MSK, int REG, int PIX, int FROMP)
{
	size_t C = j->C;
	int npix = PIX ? j->npix : 0;
	vf pb[SIMD_MAXC], hb[SIMD_MAXC], va[SL_MAXPIX];
	dacc dv[SL_MAXPIX];
	pixrow prs[SIMD_MAXC * SL_MAXPIX];
	for (int i = 0; i < npix; i++) {
		va[i] = vf_zero();
		dv[i].lo = dv[i].hi = vd_zero();
		for (size_t c = 0; c < C; c++)
			pixrow_init(&prs[c * SL_MAXPIX + (size_t)i], &j->pix[i], c);
	}
	rowchk ck;
	chk_init(&ck);
	size_t s = s0, M = j->M;
	int sub = 0;
	/* the softmax of a group of vectors first, then the rest vector by
	 * vector (as exp_block for the sigmoid): as many vectors as SM_GROUP
	 * channels' exponentials, at most SUB */
	size_t grp = SM_GROUP / C < 1 ? 1 : SM_GROUP / C > SUB ? SUB : SM_GROUP / C;
	vf eg[SM_GROUP];
	smpre pg[SUB];
	while (s + SL_W <= s1) {
		size_t g = 0;
		if (!FROMP)
			for (; g < grp && s + (g + 1) * SL_W <= s1; g++)
				pg[g] = sm_exps(j->x + n * C * M + s + g * SL_W, C, M, SL_W, eg + g * C, NULL, PIX);
		for (size_t k = 0; k < (FROMP ? 1 : g); k++, s += SL_W) {
			fused_sm_vec(j, prs, npix, n, s, SL_W, pb, hb, va, &ck, FROMP ? NULL : &pg[k], LAB,
			             MSK, REG, PIX, FROMP, MSK, vf_zero());
			if (PIX && ++sub == SUB) {
				for (int i = 0; i < npix; i++)
					dacc_add(&dv[i], &va[i]);
				sub = 0;
			}
		}
	}
	if (s < s1)
		fused_sm_vec(j, prs, npix, n, s, s1 - s, pb, hb, va, &ck, NULL, LAB, MSK, REG, PIX, FROMP,
		             1, lanes_below(s1 - s));
	fused_finish(j, n, s0, s1, vals, bad, va, dv, npix,
	             grad_failed(&ck) || (j->fused_check_t && chk_failed(&ck, 0, !LAB)), FROMP);
}

/* ---- the variants of loss_variants.inc ------------------------------------ */

/* the kernels, one function per line of the list */
/* the body by activation (the list's act token): softmax has its own */
#define STATS_BODY_SL_ACT_NONE(A, L, Mk, F, B, P, Z) stats_ew(j, n, s0, s1, st, bad, A, L, Mk, (F) | (B) << 1, P, Z)
#define STATS_BODY_SL_ACT_SIGMOID STATS_BODY_SL_ACT_NONE
#define STATS_BODY_SL_ACT_SOFTMAX(A, L, Mk, F, B, P, Z) stats_sm(j, n, s0, s1, st, bad, L, Mk, F, P)
#define FUSED_BODY_SL_ACT_NONE(A, L, Mk, R, X, P, Z) fused_ew(j, n, s0, s1, vals, bad, A, L, Mk, R, X, P, Z)
#define FUSED_BODY_SL_ACT_SIGMOID FUSED_BODY_SL_ACT_NONE
#define FUSED_BODY_SL_ACT_SOFTMAX(A, L, Mk, R, X, P, Z)                                          \
	fused_sm(j, n, s0, s1, vals, bad, L, Mk, R, (X) != SL_PXM_NONE, P)
#define SL_STATS_VARIANT(name, A, L, Mk, F, B, P, Z)                                          \
	static void name(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st,      \
	                 sl_bad *bad)                                                           \
	{                                                                                       \
		STATS_BODY_##A(A, L, Mk, F, B, P, Z);                                           \
	}
#define SL_FUSED_VARIANT(name, A, L, Mk, R, X, P, Z)                                          \
	static void name(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,    \
	                 sl_bad *bad)                                                           \
	{                                                                                       \
		FUSED_BODY_##A(A, L, Mk, R, X, P, Z);                                           \
	}
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT

/* their numbers, in the list's order */
enum {
#define SL_STATS_VARIANT(name, ...) VAR_##name,
#define SL_FUSED_VARIANT(name, ...) VAR_##name,
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT
	NVAR
};

/* The dispatch tables: one slot per combination of a job's switches, the
 * number of its variant + 1 there, 0 where the list has none. The slot of
 * a combination is its switches as digits of a mixed-radix number. */
#define STATS_KEY(A, L, Mk, F, B, P, Z)                                                            \
	(((((((A) * 2 + (L)) * 2 + (Mk)) * 2 + (F)) * 2 + (B)) * 2 + (P)) * 2 + (Z))
#define FUSED_KEY(A, L, Mk, R, X, P, Z)                                                            \
	(((((((A) * 2 + (L)) * 2 + (Mk)) * 2 + (R)) * 4 + (X)) * 2 + (P)) * 2 + (Z))
static const unsigned char stats_at[STATS_KEY(3, 0, 0, 0, 0, 0, 0)] = {
#define SL_STATS_VARIANT(name, A, L, Mk, F, B, P, Z) [STATS_KEY(A, L, Mk, F, B, P, Z)] = VAR_##name + 1,
#define SL_FUSED_VARIANT(...)
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT
};
static const unsigned char fused_at[FUSED_KEY(3, 0, 0, 0, 0, 0, 0)] = {
#define SL_STATS_VARIANT(...)
#define SL_FUSED_VARIANT(name, A, L, Mk, R, X, P, Z) [FUSED_KEY(A, L, Mk, R, X, P, Z)] = VAR_##name + 1,
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT
};
_Static_assert(NVAR < 255, "the dispatch tables hold variant numbers + 1 in unsigned char");

static const sl_stats_fn stats_fn[NVAR] = {
#define SL_STATS_VARIANT(name, ...) [VAR_##name] = name,
#define SL_FUSED_VARIANT(...)
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT
};
static const sl_fused_fn fused_fn[NVAR] = {
#define SL_STATS_VARIANT(...)
#define SL_FUSED_VARIANT(name, ...) [VAR_##name] = name,
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT
};

/* what each variant is (kern.h), and how often it ran */
static const sl_lossvar vars[NVAR] = {
#define SL_STATS_VARIANT(name, A, L, Mk, F, B, P, Z) \
	[VAR_##name] = {#name, SL_VAR_STATS, A, L, Mk, F, B, P, Z, 0, 0, 0, 0},
#define SL_FUSED_VARIANT(name, A, L, Mk, R, X, P, Z) \
	[VAR_##name] = {#name, SL_VAR_FUSED, A, L, Mk, 0, 0, 0, 0, R, X, P, Z},
#include "loss_variants.inc"
#undef SL_STATS_VARIANT
#undef SL_FUSED_VARIANT
};
static unsigned long calls[NVAR + 1]; /* [NVAR]: jobs that found no variant */

const sl_lossvars SL_SFX(sl_loss_variants) = {vars, NVAR, calls};

static inline void count_call(int v) { __atomic_fetch_add(&calls[v], 1ul, __ATOMIC_RELAXED); }

void SL_SFX(sl_loss_stats)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st,
                           sl_bad *bad)
{
	assert(j->act >= SL_ACT_NONE && j->act <= SL_ACT_SOFTMAX);
	if (j->act == SL_ACT_SOFTMAX && j->C > SIMD_MAXC) { /* wide softmax: the scalar kernel */
		sl_loss_stats__scalar(j, n, s0, s1, st, bad);
		return;
	}
	int v = stats_at[STATS_KEY(j->act, j->labels != 0, j->m != NULL, j->stats_full != 0,
	                           j->bce_stats != 0, j->p_in_out != 0, j->z_in_out != 0)] - 1;
	if (v < 0) {
		count_call(NVAR);
		sl_loss_stats__scalar(j, n, s0, s1, st, bad);
		return;
	}
	count_call(v);
	stats_fn[v](j, n, s0, s1, st, bad);
}

void SL_SFX(sl_loss_fused)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                           sl_bad *bad)
{
	assert(j->act >= SL_ACT_NONE && j->act <= SL_ACT_SOFTMAX);
	assert(!j->accumulate || (j->out_mode == SL_OUT_GRAD && !j->p_in_out && !j->z_in_out));
	int reg = j->coef != NULL, pix = j->npix > 0, fromp = j->p_in_out != 0, fromz = j->z_in_out != 0;
	int smx = j->act == SL_ACT_SOFTMAX;
	/* reduction "none" value maps and wide softmax: the scalar kernel */
	if (j->out_mode == SL_OUT_VALUES || (smx && j->C > SIMD_MAXC) || (!reg && !pix)) {
		sl_loss_fused__scalar(j, n, s0, s1, vals, bad);
		return;
	}
	/* the pixel-part mode; with p from the statistics pass the pixel parts
	 * are bce (driver.c) */
	int pxm = SL_PXM_NONE;
	if (pix) {
		const sl_pixk *p0 = &j->pix[0];
		int single = j->npix == 1;
		if (smx)
			pxm = SL_PXM_GEN;
		else if (single && p0->type == SL_PX_BCE && !fromz)
			pxm = SL_PXM_BCE; /* (with e^-|x| stored: a smoothed bce beside regions, GEN) */
		else if (single && p0->type == SL_PX_FOCAL && p0->gamma == 2.0f && !fromp)
			pxm = SL_PXM_FOCAL2;
		else
			pxm = SL_PXM_GEN;
	}
	int v = fused_at[FUSED_KEY(j->act, j->labels != 0, j->m != NULL, reg, pxm, fromp, fromz)] - 1;
	if (v < 0) {
		count_call(NVAR);
		sl_loss_fused__scalar(j, n, s0, s1, vals, bad);
		return;
	}
	count_call(v);
	fused_fn[v](j, n, s0, s1, vals, bad);
}

/* ---- validation and target statistics (no x arithmetic) -------------- */

/* Checks x (cx) and t, m (ct) of a task; with st, adds ΣmT and Σm per (n, c)
 * into st[c][SL_S_ST], st[c][SL_S_M]. On a failure the caller's scalar
 * version finds the first bad element. Returns 1 if something failed. */
int SL_SFX(sl_loss_check)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, int cx, int ct,
                          double *st)
{
	size_t C = j->C, M = j->M;
	vf one = vf_set1(1.0f), cmax = vf_set1((float)C - 1.0f);
	int failed = 0;
	for (size_t c = 0; c < C && !failed; c++) {
		const float *xr = j->x + (n * C + c) * M;
		const float *tr = j->labels ? j->t + n * M : j->t + (n * C + c) * M;
		const float *mr = j->m ? j->m + (j->mask_full ? (n * C + c) * M : n * M) : NULL;
		int chk_lab = ct && j->labels && c == 0, chk_m = ct && mr && (j->mask_full || c == 0);
		int chk_t = ct && !j->labels;
		rowchk ck;
		chk_init(&ck);
		size_t s;
		if (cx) { /* x: finite, and in [0, 1] with "none" */
			for (s = s0; s + SL_W <= s1; s += SL_W) {
				vf x = vf_load(xr + s);
				ck.xz = vf_fma(x, vf_zero(), ck.xz);
				ck.lo = vf_min(x, ck.lo);
				ck.hi = vf_max(x, ck.hi);
			}
			if (s < s1) {
				vf x = vf_loadk(xr + s, s1 - s);
				ck.xz = vf_fma(x, vf_zero(), ck.xz);
				ck.lo = vf_min(x, ck.lo);
				ck.hi = vf_max(x, ck.hi);
			}
		}
		if (chk_t) { /* a dense target in [0, 1] */
			for (s = s0; s + SL_W <= s1; s += SL_W) {
				vf t = vf_load(tr + s);
				ck.tlo = vf_min(t, ck.tlo);
				ck.thi = vf_max(t, ck.thi);
				ck.xz = vf_fma(t, vf_zero(), ck.xz);
			}
			if (s < s1) {
				vf t = vf_loadk(tr + s, s1 - s);
				ck.tlo = vf_min(t, ck.tlo);
				ck.thi = vf_max(t, ck.thi);
				ck.xz = vf_fma(t, vf_zero(), ck.xz);
			}
		}
		if (chk_lab)
			for (s = s0; s < s1; s += SL_W)
				ck.bad = vf_or(ck.bad, bad_label(vf_loadk(tr + s, s1 - s < SL_W ? s1 - s : SL_W), cmax));
		if (chk_m)
			for (s = s0; s < s1; s += SL_W)
				ck.bad = vf_or(ck.bad, bad_mask(vf_loadk(mr + s, s1 - s < SL_W ? s1 - s : SL_W)));
		failed = chk_failed(&ck, cx && j->act == SL_ACT_NONE && !j->x_real, chk_t);
		if (st && !failed) { /* Σ m t and Σ m */
			vf ast = vf_zero(), am = vf_zero(), cv = vf_set1((float)c);
			dacc dst = {vd_zero(), vd_zero()}, dm = {vd_zero(), vd_zero()};
			int sub = 0;
			for (s = s0; s < s1; s += SL_W) {
				size_t kk = s1 - s < SL_W ? s1 - s : SL_W;
				vf t = vf_loadk(tr + s, kk);
				if (j->labels)
					t = vf_and(vf_eq(t, cv), one);
				vf m = mr ? vf_loadk(mr + s, kk) : kk == SL_W ? one : vf_and(lanes_below(kk), one);
				ast = vf_fma(m, t, ast);
				am = vf_add(am, m);
				if (++sub == SUB) {
					dacc_add(&dst, &ast);
					dacc_add(&dm, &am);
					sub = 0;
				}
			}
			dacc_add(&dst, &ast);
			dacc_add(&dm, &am);
			st[c * SL_NSTAT + SL_S_ST] += dacc_total(&dst);
			st[c * SL_NSTAT + SL_S_M] += dacc_total(&dm);
		}
	}
	return failed;
}
