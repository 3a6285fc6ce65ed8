/*
 * cldice.c — the clDice loss of Shit et al. 2021 (docs/losses.md, cldice), a
 * generic part (loss.h): per (sample, class), (1 - α) dice + α (1 - the
 * harmonic mean of the topology precision and sensitivity), both made from
 * soft skeletons. Lua-free.
 *
 * The soft skeleton S(q) of one image (1 to 3 spatial axes, held as D x H x
 * W with unused sizes 1):
 *   erode(q)  = the minimum over the cross (the element and its neighbours
 *               along each axis), borders using only elements inside;
 *   dilate(q) = the maximum over the full 3 x 3 (x 3) window, computed as
 *               three 1-D passes: along W, then H, then D;
 *   S_0 = relu(q_0 - dilate(erode(q_0))), q_0 = q; for i = 1 .. K:
 *   q_i = erode(q_{i-1}), d_i = relu(q_i - dilate(erode(q_i))),
 *   S_i = S_{i-1} + relu(d_i - S_{i-1} d_i).
 * Since erode(q_i) = q_{i+1}, step i costs one erosion and one dilation.
 *
 * Gradients: every minimum and maximum passes its gradient to the FIRST
 * extremal element of its window in flat index order (z, then y, then x).
 * For the dilation's separable passes this is what each 1-D pass does when
 * it takes the first of its three (along W first, D last): the D pass picks
 * the first plane, the H pass in it the first row, the W pass the first
 * element. relu'(0) = 0. The skeleton of the target is a constant.
 *
 * Masks: masked elements are outside the image for both skeletons (left
 * out of every window, as beyond the border): q_i holds +inf there (the
 * identity of the minimum), the dilation reads a copy with -inf there (the
 * identity of the maximum), and S is 0 there. Every window of a valid
 * element holds that element, so it is never empty; the value does not
 * depend on masked inputs, and no gradient reaches them. The masked passes
 * are variants chosen once per (sample, class): no cost without a mask.
 * With a mask the pieces' geodesic diameter can exceed the image's; the
 * steps are capped at the valid count less one instead.
 *
 * Steps past the image's diameter ((D - 1) + (H - 1) + (W - 1)) change
 * nothing (q is constant there, so d = 0 and S stays, bit for bit): they
 * are not run, which bounds the work for any `iterations`.
 *
 * Memory: the backward pass keeps q_1 .. q_{K+1} and S_0 .. S_{K-1} of the
 * prediction's skeleton, (2K + 1) M floats, plus 11 M floats of work, per
 * (sample, class) being computed (one per thread; 3 M more with a mask:
 * the mask and the two masked copies); the run keeps p (and for
 * the sigmoid 1 - p) and d L / d p (doubles) of the whole batch.
 *
 * Threads: the (sample, class) pairs are fixed tasks; each writes its own
 * sums and its own slice of d L / d p, and the sums are folded in order,
 * so the bits do not depend on the thread count.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "../ops.h"
#include "generic.h"
#include "registry.h"
#include "validate.h"

typedef struct img {
	size_t D, H, W, M;
} img;

static inline float fmn(float a, float b) { return b < a ? b : a; }
static inline float fmx(float a, float b) { return b > a ? b : a; }

/* ---- forward passes ------------------------------------------------- */

/* e = erode(q): the minimum over the cross, one fused pass. With a mask m
 * (masked: the masked variant, chosen once per call), q holds +inf at the
 * masked elements (they are outside the image: the identity of the
 * minimum), e gets +inf there too, and em gets e with -inf at the masked
 * elements (the identity of the maximum: the dilation's input). */
static void erode(const img *im, const float *restrict q, float *restrict e, const float *restrict m,
                  float *restrict em)
{
	size_t D = im->D, H = im->H, W = im->W, HW = H * W;
	for (size_t z = 0; z < D; z++)
		for (size_t y = 0; y < H; y++) {
			const float *r = q + z * HW + y * W;
			const float *u = y > 0 ? r - W : r, *d = y + 1 < H ? r + W : r;
			const float *f = z > 0 ? r - HW : r, *b = z + 1 < D ? r + HW : r;
			float *o = e + z * HW + y * W;
#pragma omp simd
			for (size_t x = 0; x < W; x++)
				o[x] = fmn(fmn(r[x], u[x]), fmn(fmn(d[x], f[x]), b[x]));
			if (W > 1) {
				o[0] = fmn(o[0], r[1]);
				for (size_t x = 1; x + 1 < W; x++)
					o[x] = fmn(o[x], fmn(r[x - 1], r[x + 1]));
				o[W - 1] = fmn(o[W - 1], r[W - 2]);
			}
			if (m) {
				const float *mr = m + z * HW + y * W;
				float *emr = em + z * HW + y * W;
#pragma omp simd
				for (size_t x = 0; x < W; x++) {
					float v = o[x];
					int on = mr[x] != 0.0f;
					o[x] = on ? v : INFINITY;
					emr[x] = on ? v : -INFINITY;
				}
			}
		}
}

/* em = e with -inf at the masked elements (the dilation's input) */
static void mask_max(size_t M, const float *restrict e, const float *restrict m, float *restrict em)
{
#pragma omp simd
	for (size_t k = 0; k < M; k++)
		em[k] = m[k] != 0.0f ? e[k] : -INFINITY;
}

/* out = the maximum of in along W (within rows of W) */
static void maxw(const img *im, const float *restrict in, float *restrict out)
{
	size_t W = im->W, rows = im->D * im->H;
	for (size_t r = 0; r < rows; r++) {
		const float *a = in + r * W;
		float *o = out + r * W;
		if (W == 1) {
			o[0] = a[0];
			continue;
		}
		o[0] = fmx(a[0], a[1]);
#pragma omp simd
		for (size_t x = 1; x < W - 1; x++)
			o[x] = fmx(fmx(a[x - 1], a[x]), a[x + 1]);
		o[W - 1] = fmx(a[W - 2], a[W - 1]);
	}
}

/* out = the maximum of in across rows: blocks of R rows of length L each
 * (H: blocks = D, R = H, L = W; D: blocks = 1, R = D, L = H W) */
static void maxrows(size_t blocks, size_t R, size_t L, const float *restrict in, float *restrict out)
{
	for (size_t k = 0; k < blocks; k++)
		for (size_t r = 0; r < R; r++) {
			const float *c = in + (k * R + r) * L;
			const float *u = r > 0 ? c - L : c, *d = r + 1 < R ? c + L : c;
			float *o = out + (k * R + r) * L;
#pragma omp simd
			for (size_t x = 0; x < L; x++)
				o[x] = fmx(fmx(u[x], c[x]), d[x]);
		}
}

/* o = dilate(e); a, b keep the passes along W and H (where they run: an
 * axis of size 1 has no pass). Returns o, which may be a or b or e. */
static const float *dilate(const img *im, const float *e, float *a, float *b, float *o)
{
	const float *cur = e;
	if (im->W > 1) {
		maxw(im, cur, a);
		cur = a;
	}
	if (im->H > 1) {
		maxrows(im->D, im->H, im->W, cur, b);
		cur = b;
	}
	if (im->D > 1) {
		maxrows(1, im->D, im->H * im->W, cur, o);
		cur = o;
	}
	return cur;
}

/* ---- backward passes ------------------------------------------------- */

/* gin += the gradient gout of out = max along W of in, to the first maximum */
static void maxw_bwd(const img *im, const float *restrict in, const float *restrict out,
                     const float *restrict gout, float *restrict gin)
{
	size_t W = im->W, rows = im->D * im->H;
	for (size_t r = 0; r < rows; r++) {
		const float *a = in + r * W, *o = out + r * W, *g = gout + r * W;
		float *gi = gin + r * W;
		for (size_t x = 0; x < W; x++) {
			float gv = g[x], v = o[x];
			if (gv == 0.0f)
				continue;
			if (x > 0 && a[x - 1] == v)
				gi[x - 1] += gv;
			else if (a[x] == v)
				gi[x] += gv;
			else
				gi[x + 1] += gv;
		}
	}
}

/* rows: the three-row cases of maxrows_bwd, each with distinct rows */
static void rows_bwd3(size_t L, const float *restrict iu, const float *restrict ic, const float *restrict o,
                      const float *restrict g, float *restrict gu, float *restrict gc, float *restrict gd)
{
#pragma omp simd
	for (size_t x = 0; x < L; x++) {
		int fu = iu[x] == o[x], fc = !fu && ic[x] == o[x];
		gu[x] += fu ? g[x] : 0.0f;
		gc[x] += fc ? g[x] : 0.0f;
		gd[x] += !fu && !fc ? g[x] : 0.0f;
	}
}

/* the first row (no row above) */
static void rows_bwd_first(size_t L, const float *restrict ic, const float *restrict o, const float *restrict g,
                           float *restrict gc, float *restrict gd)
{
#pragma omp simd
	for (size_t x = 0; x < L; x++) {
		int fc = ic[x] == o[x];
		gc[x] += fc ? g[x] : 0.0f;
		gd[x] += fc ? 0.0f : g[x];
	}
}

/* the last row (no row below) */
static void rows_bwd_last(size_t L, const float *restrict iu, const float *restrict o, const float *restrict g,
                          float *restrict gu, float *restrict gc)
{
#pragma omp simd
	for (size_t x = 0; x < L; x++) {
		int fu = iu[x] == o[x];
		gu[x] += fu ? g[x] : 0.0f;
		gc[x] += fu ? 0.0f : g[x];
	}
}

/* gin += the gradient of out = maxrows(in) (R >= 2) */
static void maxrows_bwd(size_t blocks, size_t R, size_t L, const float *in, const float *out,
                        const float *gout, float *gin)
{
	for (size_t k = 0; k < blocks; k++)
		for (size_t r = 0; r < R; r++) {
			size_t i = (k * R + r) * L;
			if (r == 0)
				rows_bwd_first(L, in + i, out + i, gout + i, gin + i, gin + i + L);
			else if (r + 1 == R)
				rows_bwd_last(L, in + i - L, out + i, gout + i, gin + i - L, gin + i);
			else
				rows_bwd3(L, in + i - L, in + i, out + i, gout + i, gin + i - L, gin + i, gin + i + L);
		}
}

/* ge += the gradient of o = dilate(e) given go (destroyed: the passes'
 * gradients go through t1, t2, zeroed here) */
static void dilate_bwd(const img *im, const float *e, const float *a, const float *b, const float *o,
                       float *go, float *t1, float *t2, float *ge)
{
	size_t M = im->M;
	/* the chain of passes, as dilate ran them: e -> a (W) -> b (H) -> o (D) */
	const float *ins[3], *outs[3];
	int axes[3], np = 0;
	const float *cur = e;
	if (im->W > 1) {
		ins[np] = cur, outs[np] = a, axes[np++] = 0;
		cur = a;
	}
	if (im->H > 1) {
		ins[np] = cur, outs[np] = b, axes[np++] = 1;
		cur = b;
	}
	if (im->D > 1) {
		ins[np] = cur, outs[np] = o, axes[np++] = 2;
		cur = o;
	}
	float *g = go;
	for (int k = np - 1; k >= 0; k--) {
		float *gi = k == 0 ? ge : (g == t1 ? t2 : t1);
		if (k > 0)
			memset(gi, 0, M * sizeof *gi);
		if (axes[k] == 0)
			maxw_bwd(im, ins[k], outs[k], g, gi);
		else if (axes[k] == 1)
			maxrows_bwd(im->D, im->H, im->W, ins[k], outs[k], g, gi);
		else
			maxrows_bwd(1, im->D, im->H * im->W, ins[k], outs[k], g, gi);
		g = gi;
	}
	if (np == 0)
		for (size_t s = 0; s < M; s++)
			ge[s] += go[s];
}

/* gq += the gradient of e = erode(q) given ge: each to the first minimum
 * of its cross in flat order (z - 1, y - 1, x - 1, itself, x + 1, y + 1,
 * z + 1) */
static void erode_bwd(const img *im, const float *q, const float *e, const float *ge, float *gq)
{
	size_t D = im->D, H = im->H, W = im->W, HW = H * W;
	for (size_t z = 0; z < D; z++)
		for (size_t y = 0; y < H; y++) {
			size_t i = z * HW + y * W;
			const float *r = q + i, *ev = e + i, *g = ge + i;
			float *gr = gq + i;
			int hf = z > 0, hu = y > 0, hd = y + 1 < H;
			/* the rows in front and above, as pointers made only where
			 * they exist (r[x - HW] wraps the unsigned index for x < HW) */
			const float *rf = hf ? r - HW : r, *ru = hu ? r - W : r;
			float *gf = hf ? gr - HW : gr, *gu = hu ? gr - W : gr;
			for (size_t x = 0; x < W; x++) {
				float gv = g[x], v = ev[x];
				if (gv == 0.0f)
					continue;
				if (hf && rf[x] == v)
					gf[x] += gv;
				else if (hu && ru[x] == v)
					gu[x] += gv;
				else if (x > 0 && r[x - 1] == v)
					gr[x - 1] += gv;
				else if (r[x] == v)
					gr[x] += gv;
				else if (x + 1 < W && r[x + 1] == v)
					gr[x + 1] += gv;
				else if (hd && r[x + W] == v)
					gr[x + W] += gv;
				else
					gr[x + HW] += gv;
			}
		}
}

/* ---- one skeleton ------------------------------------------------------ */

/* The sums of one (sample, class), over its valid elements. */
enum { K_SPT, K_SPN, K_STP, K_STS, K_TP, K_FP, K_ST, K_M, K_N };

typedef struct work {
	float *t, *m;       /* the target and mask of the class (m NULL: no mask) */
	float *qm, *em;     /* with a mask: q_0 with +inf, e with -inf at masked */
	float *sp, *st;     /* the skeletons S(p), S(t) */
	float *a, *b, *o, *u, *v; /* work */
	float *g1, *g2, *g3;
	float **qs;         /* q_1 .. q_{K+1} (backward) */
	float **ss;         /* S_0 .. S_{K-1} (backward) */
	float *block;
} work;

/* S(q) into s; with keep, q_1 .. q_{K+1} into qs[1..] and S_0 .. S_{K-1}
 * into ss[] (else w->u, w->v roll). With a mask (w->m), the masked
 * elements are outside the image: q_0 is first copied into w->qm with +inf
 * there (kept for the backward pass), every q_i holds +inf there, the
 * dilation reads w->em (-inf there), and S is 0 there. */
static void skeleton(const img *im, int K, const float *q0, float *s, work *w, int keep)
{
	size_t M = im->M;
	const float *m = w->m;
	const float *q = q0;
	if (m) {
		for (size_t k = 0; k < M; k++)
			w->qm[k] = m[k] != 0.0f ? q0[k] : INFINITY;
		q = w->qm;
	}
	for (int i = 0; i <= K; i++) {
		float *qn = keep ? w->qs[i + 1] : (i % 2 ? w->v : w->u);
		erode(im, q, qn, m, w->em);
		const float *o = dilate(im, m ? w->em : qn, w->a, w->b, w->o);
		float *si = keep && i < K ? w->ss[i] : s;
		const float *sp = keep && i > 0 ? w->ss[i - 1] : s;
		if (i == 0) {
			for (size_t k = 0; k < M; k++) {
				float d = q[k] - o[k];
				si[k] = d > 0.0f ? d : 0.0f;
			}
		} else {
#pragma omp simd
			for (size_t k = 0; k < M; k++) {
				float d = q[k] - o[k];
				d = d > 0.0f ? d : 0.0f;
				float uu = d - sp[k] * d;
				si[k] = sp[k] + (uu > 0.0f ? uu : 0.0f);
			}
		}
		if (m) /* masked: S = 0 (q there is +inf, d meaningless) */
#pragma omp simd
			for (size_t k = 0; k < M; k++)
				si[k] = m[k] != 0.0f ? si[k] : 0.0f;
		q = qn;
	}
}

/* d L / d q_0 of the skeleton given gs = d L / d S_K (destroyed; 0 at the
 * masked elements), into gout (overwritten; 0 at the masked elements: no
 * window of a valid element holds one, so nothing reaches them) */
static void skeleton_bwd(const img *im, int K, const float *q0, float *gs, work *w, float *gout)
{
	size_t M = im->M;
	const float *m = w->m;
	float *gnext = w->g1, *gcur = w->g2, *go = w->g3;
	memset(gnext, 0, M * sizeof *gnext); /* d L / d q_{K+1}: none */
	for (int i = K; i >= 0; i--) {
		const float *q = i == 0 ? (m ? w->qm : q0) : w->qs[i], *e = w->qs[i + 1];
		const float *ed = e;
		if (m) {
			mask_max(M, e, m, w->em);
			ed = w->em;
		}
		const float *o = dilate(im, ed, w->a, w->b, w->o);
		const float *sp = i > 0 ? w->ss[i - 1] : NULL;
		for (size_t k = 0; k < M; k++) {
			if (m && m[k] == 0.0f) {
				gcur[k] = 0.0f;
				go[k] = 0.0f;
				continue;
			}
			float d = q[k] - o[k];
			int pos = d > 0.0f;
			d = pos ? d : 0.0f;
			float gd = gs[k];
			if (sp) {
				float uu = d - sp[k] * d;
				if (uu > 0.0f) {
					gd = gs[k] * (1.0f - sp[k]);
					gs[k] = gs[k] * (1.0f - d);
				} else {
					gd = 0.0f;
				}
			}
			gcur[k] = pos ? gd : 0.0f;
			go[k] = pos ? -gd : 0.0f;
		}
		/* d L / d e_i: from the dilation, plus q_{i+1}'s own (gnext) */
		dilate_bwd(im, ed, w->a, w->b, o, go, w->u, w->v, gnext);
		erode_bwd(im, q, e, gnext, gcur);
		float *tmp = gnext;
		gnext = gcur;
		gcur = tmp;
	}
	memcpy(gout, gnext, M * sizeof *gout);
}

/* ---- the loss -------------------------------------------------------------- */

typedef struct cfg {
	const sl_lossjob *j;
	const sl_genpart *gp;
	img im;
	int K;           /* steps run (iterations, at most the diameter) */
	double iters;    /* the option iterations (with a mask: capped per task) */
	int batch;
	double alpha, snr, sdr;
	const float *P;  /* p of the batch */
} cfg;

/* L and its derivatives by the sums: dL/dp = m (t c1 + (1 - t) c0 + cs St),
 * dL/dS(p) = m (t k1 + (1 - t) k0) */
typedef struct coefs {
	double L, c1, c0, cs, k1, k0;
} coefs;

static coefs cl_coefs(const cfg *cf, const double *s)
{
	coefs r = {0};
	double al = cf->alpha, snr = cf->snr, sdr = cf->sdr;
	/* dice: 1 - (2 TP + snr)/(SP + ST + sdr) */
	double nd = 2.0 * s[K_TP] + snr, dd = s[K_TP] + s[K_FP] + s[K_ST] + sdr;
	double dice = 0.0, dc1 = 0.0, dc0 = 0.0;
	if (dd > 0.0) {
		dice = 1.0 - nd / dd;
		/* d/dp: -(2 t dd - nd)/dd², at t = 1: -(2 FP + 2 ST + 2 sdr - snr)/dd² */
		dc1 = -(2.0 * s[K_FP] + 2.0 * s[K_ST] + 2.0 * sdr - snr) / (dd * dd);
		dc0 = nd / (dd * dd);
	}
	/* Tprec = A/B over S(p), Tsens = C/E over S(t); 0/0 = 1 */
	double A = s[K_SPT] + snr, B = s[K_SPT] + s[K_SPN] + sdr;
	double Cs = s[K_STP] + snr, E = s[K_STS] + sdr;
	double tp = B > 0.0 ? A / B : 1.0, ts = E > 0.0 ? Cs / E : 1.0;
	double hm = 0.0, dtp = 0.0, dts = 0.0;
	if (tp + ts > 0.0) {
		double den = tp + ts;
		hm = 2.0 * tp * ts / den;
		dtp = 2.0 * ts * ts / (den * den);
		dts = 2.0 * tp * tp / (den * den);
	}
	r.L = (1.0 - al) * dice + al * (1.0 - hm);
	r.c1 = (1.0 - al) * dc1;
	r.c0 = (1.0 - al) * dc0;
	r.cs = E > 0.0 ? -al * dts / E : 0.0;
	if (B > 0.0) {
		/* dTprec/dS = (t (B - A) - (1 - t) A)/B², B - A = SPN + sdr - snr */
		r.k1 = -al * dtp * (s[K_SPN] + sdr - snr) / (B * B);
		r.k0 = al * dtp * A / (B * B);
	}
	return r;
}

static int alloc_work(work *w, const img *im, int K, int keep, int masked)
{
	size_t M = im->M;
	size_t nf = 11 + (keep ? (size_t)(2 * K + 1) : 0) + (masked ? 3 : 0);
	w->block = sl_mem_malloc(nf * (M ? M : 1) * sizeof(float));
	w->qs = keep ? malloc((size_t)(K + 2) * sizeof *w->qs) : NULL;
	w->ss = keep && K > 0 ? malloc((size_t)K * sizeof *w->ss) : NULL;
	if (!w->block || (keep && !w->qs) || (keep && K > 0 && !w->ss)) {
		free(w->block);
		free(w->qs);
		free(w->ss);
		return 0;
	}
	float *f = w->block;
	float **slots[] = {&w->t, &w->sp, &w->st, &w->a, &w->b, &w->o, &w->u, &w->v, &w->g1, &w->g2, &w->g3};
	for (size_t k = 0; k < sizeof slots / sizeof *slots; k++, f += M)
		*slots[k] = f;
	w->m = w->qm = w->em = NULL;
	if (masked) {
		w->m = f;
		w->qm = f + M;
		w->em = f + 2 * M;
		f += 3 * M;
	}
	if (keep) {
		w->qs[0] = NULL;
		for (int i = 1; i <= K + 1; i++, f += M)
			w->qs[i] = f;
		for (int i = 0; i < K; i++, f += M)
			w->ss[i] = f;
	}
	return 1;
}

static void free_work(work *w)
{
	free(w->block);
	free(w->qs);
	free(w->ss);
}

/* Forward of (n, c): the sums; with dp (not batch) also its gradient,
 * scaled by the class weight, into dp (the sample's C M doubles). With
 * grad_only (batch, second pass), sums are given in s and only the gradient
 * is computed. Returns 0 when out of memory. */
static int task(const cfg *cf, size_t n, size_t c, double *s, double *dp, int grad_only)
{
	const sl_lossjob *j = cf->j;
	size_t M = cf->im.M, C = j->C;
	int keep = dp != NULL;
	int K = cf->K;
	if (j->m) {
		/* the masked elements cut the image into pieces whose geodesic
		 * diameter (along the cross) may exceed the image's but not their
		 * number of elements less one: past that, steps change nothing */
		size_t nv = 0;
		for (size_t k = 0; k < M; k++)
			nv += sl_gen_m(j, n, c, k) != 0.0f;
		double cap = nv > 0 ? (double)(nv - 1) : 0.0;
		K = cf->iters > cap ? (int)cap : (int)cf->iters;
	}
	work w;
	if (!alloc_work(&w, &cf->im, K, keep, j->m != NULL))
		return 0;
	const float *p = cf->P + (n * C + c) * M;
	for (size_t k = 0; k < M; k++)
		w.t[k] = sl_gen_t(j, n, c, k);
	if (w.m)
		for (size_t k = 0; k < M; k++)
			w.m[k] = sl_gen_m(j, n, c, k);
	/* S(t) first: S(p)'s masked copy of p (w.qm) is kept for the backward */
	skeleton(&cf->im, K, w.t, w.st, &w, 0);
	skeleton(&cf->im, K, p, w.sp, &w, keep);
	if (!grad_only) {
		double a[K_N] = {0};
		for (size_t k = 0; k < M; k++) {
			if (w.m && w.m[k] == 0.0f)
				continue;
			double sp = w.sp[k], st = w.st[k], pv = p[k], tv = w.t[k], nt = 1.0 - tv;
			a[K_SPT] += sp * tv;
			a[K_SPN] += sp * nt;
			a[K_STP] += st * pv;
			a[K_STS] += st;
			a[K_TP] += pv * tv;
			a[K_FP] += pv * nt;
			a[K_ST] += tv;
			a[K_M] += 1.0;
		}
		memcpy(s, a, sizeof a);
	}
	if (dp && s[K_M] > 0.0) {
		coefs kf = cl_coefs(cf, s);
		double wc = cf->gp->cw ? cf->gp->cw[c] : 1.0;
		/* d L / d S(p) as floats into S(p)'s place (no longer needed), then
		 * back through the skeleton into S(t)'s, once the direct term has
		 * read it */
		float *gs = w.sp;
		for (size_t k = 0; k < M; k++) {
			double mv = w.m ? (double)w.m[k] : 1.0, tv = w.t[k];
			gs[k] = (float)(wc * mv * (tv * kf.k1 + (1.0 - tv) * kf.k0));
		}
		float *gq = w.st; /* S(t) is no longer needed after the direct term */
		double *d = dp + c * M;
		for (size_t k = 0; k < M; k++) {
			double mv = w.m ? (double)w.m[k] : 1.0, tv = w.t[k];
			d[k] = wc * mv * (tv * kf.c1 + (1.0 - tv) * kf.c0 + kf.cs * (double)w.st[k]);
		}
		skeleton_bwd(&cf->im, K, p, gs, &w, gq);
		for (size_t k = 0; k < M; k++)
			if (!w.m || w.m[k] != 0.0f)
				d[k] += (double)gq[k];
	}
	free_work(&w);
	return 1;
}

int sl_cldice_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape)
{
	(void)ndim;
	shape[0] = opts[SL_O_BATCH] != 0.0 ? 1 : xshape[0];
	shape[1] = xshape[1];
	return 2;
}

int sl_cldice_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g, double *value,
                   sl_bad *bad)
{
	size_t N = j->N, C = j->C, M = j->M, c0 = (size_t)gp->c0;
	cfg cf = {.j = j, .gp = gp};
	cf.im.D = gp->sdim >= 3 ? gp->shape[0] : 1;
	cf.im.H = gp->sdim >= 2 ? gp->shape[gp->sdim - 2] : 1;
	cf.im.W = gp->shape[gp->sdim - 1];
	cf.im.M = M;
	size_t diam = (cf.im.D - 1) + (cf.im.H - 1) + (cf.im.W - 1);
	double it = gp->opts[SL_O_ITERATIONS];
	cf.K = it > (double)diam ? (int)diam : (int)it;
	cf.iters = it;
	cf.batch = gp->opts[SL_O_BATCH] != 0.0;
	cf.alpha = gp->opts[SL_O_ALPHA];
	cf.snr = gp->opts[SL_O_SMOOTH_NR];
	cf.sdr = gp->opts[SL_O_SMOOTH_DR];
	int rc = SL_OK;
	size_t nc = C - c0, ntask = N * nc;
	float *P = NULL, *Q = NULL;
	double *sums = calloc((ntask ? ntask : 1) * K_N, sizeof *sums);
	double *dp = NULL;
	int *okv = calloc(ntask ? ntask : 1, sizeof *okv);
	sl_bad *bads = NULL;
	if (!sums || !okv)
		goto nomem;
	if (j->act == SL_ACT_NONE) {
		cf.P = j->x;
	} else {
		P = sl_mem_malloc(N * C * M * sizeof *P);
		if (j->act == SL_ACT_SIGMOID && g)
			Q = sl_mem_malloc(N * C * M * sizeof *Q);
		if (!P || (j->act == SL_ACT_SIGMOID && g && !Q))
			goto nomem;
		for (size_t n = 0; n < N; n++)
			sl_gen_probs(e, j, n, P + n * C * M, Q ? Q + n * C * M : NULL);
		cf.P = P;
	}
	int direct = g && !cf.batch; /* the gradient in the first pass */
	if (g) {
		dp = sl_mem_calloc(N * C * M, sizeof *dp);
		if (!dp)
			goto nomem;
	}
	/* a task costs some 16 passes over its image per step */
	int nt = sl_exec_threads(e, N * C * M * 16 * (size_t)(cf.K + 1));
	if ((size_t)nt > ntask)
		nt = (int)ntask;
	/* pass 1: the sums of every (n, c), and without batch its gradient */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t k = 0; k < ntask; k++) {
		sl_note_team(e);
		size_t n = k / nc, c = c0 + k % nc;
		okv[k] = task(&cf, n, c, sums + k * K_N, direct ? dp + n * C * M : NULL, 0);
	}
	for (size_t k = 0; k < ntask; k++)
		if (!okv[k])
			goto nomem;

	/* values: per (n, c), or per class over the batch */
	size_t rows = cf.batch ? 1 : N;
	double total = 0.0, wsum = 0.0;
	double *bs = NULL;
	if (cf.batch) {
		bs = calloc(nc ? nc * K_N : 1, sizeof *bs);
		if (!bs)
			goto nomem;
		for (size_t n = 0; n < N; n++)
			for (size_t c = 0; c < nc; c++)
				for (int q = 0; q < K_N; q++)
					bs[c * K_N + (size_t)q] += sums[(n * nc + c) * K_N + (size_t)q];
	}
	if (gp->vals)
		memset(gp->vals, 0, rows * C * sizeof *gp->vals);
	for (size_t r = 0; r < rows; r++)
		for (size_t c = c0; c < C; c++) {
			const double *s = cf.batch ? bs + (c - c0) * K_N : sums + (r * nc + c - c0) * K_N;
			if (s[K_M] <= 0.0)
				continue;
			double L = cl_coefs(&cf, s).L, wc = gp->cw ? gp->cw[c] : 1.0;
			total += wc * L;
			wsum += wc;
			if (gp->vals)
				gp->vals[r * C + c] = (float)L;
		}
	double scale = 1.0;
	if (gp->reduction == SL_RED_MEAN) {
		*value = wsum > 0.0 ? total / wsum : 0.0;
		scale = wsum > 0.0 ? 1.0 / wsum : 0.0;
	} else {
		*value = total;
	}
	if (g && cf.batch && scale != 0.0) {
		/* pass 2: the gradient with the batch's sums */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
		for (size_t k = 0; k < ntask; k++) {
			sl_note_team(e);
			size_t n = k / nc, c = c0 + k % nc;
			okv[k] = task(&cf, n, c, bs + (c - c0) * K_N, dp + n * C * M, 1);
		}
		for (size_t k = 0; k < ntask; k++)
			if (!okv[k]) {
				free(bs);
				goto nomem;
			}
	}
	free(bs);
	if (g && scale != 0.0) {
		bads = calloc(N, sizeof *bads);
		if (!bads)
			goto nomem;
		int ntc = sl_exec_threads(e, N * C * M);
		if ((size_t)ntc > N)
			ntc = (int)N;
#pragma omp parallel for num_threads(ntc) schedule(static) if (ntc > 1)
		for (size_t n = 0; n < N; n++) {
			sl_note_team(e);
			sl_gen_chain(j, n, cf.P + n * C * M, Q ? Q + n * C * M : NULL, dp + n * C * M,
			             gp->weight * scale, g, &bads[n]);
		}
		for (size_t n = 0; n < N; n++)
			if (bads[n].kind != SL_BAD_NONE) {
				*bad = bads[n];
				rc = SL_ERR_INPUT;
				break;
			}
	}
	goto done;
nomem:
	rc = SL_ERR_NOMEM;
done:
	free(bads);
	free(P);
	free(Q);
	free(dp);
	free(sums);
	free(okv);
	return rc;
}
