/*
 * unified_focal.c — the asymmetric unified focal loss (Yeung et al., CMIG
 * 2022) as a generic part (loss.h, generic.h):
 *
 *   L = λ mF + (1 - λ) mFT,
 *   mF  = mean over valid pixels of (1 - δ)(1 - p_0)^γ (-t_0 log p_0)
 *                                   + δ Σ_{c>=1} (-t_c log p_c),
 *   mFT = mean over (row, class) of 1 - TI_0 (the background) and
 *         max(1 - TI_c, eps)^(1 - γ) (the rare classes c >= 1),
 *   TI  = (TP + s) / (TP + δ FN + (1 - δ) FP + s) per (n, c), or per class
 *         over the batch with batch = true.
 *
 * The classes: C = 1 gives two, 1 - p (the background) and p; with C >= 2
 * the channels are the classes (softmax, or p as given, or one sigmoid per
 * channel). Two passes over fixed tasks (sample n, UF_BS positions): the
 * first gathers TP, FN, FP, M' per (n, class) and the sum of the focal
 * terms, the second adds the gradient. Both compute p, log p and u_0^γ for
 * a block with the backend's vector functions into per-thread scratch, then
 * run a loop in double. Partial sums are per task and folded in task order,
 * so the bits do not depend on the thread count.
 *
 * The gradient goes through the activation here rather than through
 * sl_gen_chain: the log terms' d/dp = -t/p is infinite where a softmax or
 * sigmoid p underflows, so the loop works with h = p dL/dp, which is finite
 * (for -t log p it is -t), and applies the chain rule in that form.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../mem.h"
#include "../kern/kern.h"
#include "../ops.h"
#include "generic.h"
#include "registry.h"
#include "validate.h"

#define UF_BS 2048 /* positions per task: fixed, whatever the thread count */
#define UF_NST 4   /* per (row, class): TP, FN, FP, M' */
enum { ST_TP, ST_FN, ST_FP, ST_M };

typedef struct uf {
	const sl_exec *e;
	const sl_lossjob *j;
	size_t C, K, M, per, ntask;
	int act;
	double lambda, delta, gamma, smooth, eps;
	float feps;
	size_t nscr;     /* floats of scratch per thread */
	float *scr;      /* nthreads * nscr */
	double *part;    /* ntask * (K * UF_NST + 2) */
	double *coef;    /* rows * K * 2: the Tversky part's a0, a1 per (row, class) */
	int batch;
	int fresh;       /* g is uninitialised: store (loss.h, sl_genpart.fresh) */
	double sF;       /* the focal part's gradient scale */
	sl_bad *bads;    /* one per task */
	double *hs;      /* nthreads * C: h of one pixel (softmax) */
} uf;

/* a where the mask m is all ones, b where it is 0: a select that
 * vectorises (a ?: of loaded or computed floats may not, as a float
 * comparison or operation can trap) */
static inline float selb(uint32_t m, float a, float b)
{
	uint32_t x, y;
	memcpy(&x, &a, sizeof x);
	memcpy(&y, &b, sizeof y);
	x = (x & m) | (y & ~m);
	memcpy(&a, &x, sizeof a);
	return a;
}

/* The block's scratch: p (C * bs), q (C * bs), log p (C * bs), u_0^γ (bs),
 * a temporary (C * bs). */
typedef struct blk {
	float *p, *q, *lp, *u, *tmp;
} blk;

static blk scratch(const uf *u, int tid)
{
	float *s = u->scr + (size_t)tid * u->nscr;
	size_t C = u->C;
	blk b = {s, s + C * UF_BS, s + 2 * C * UF_BS, s + 3 * C * UF_BS, s + 3 * C * UF_BS + UF_BS};
	return b;
}

/* p, q = 1 - p, log p and u_0^γ (u_0 = 1 - p_0, the background's) of the
 * positions [s0, s0 + len) of sample n, with the backend's vector
 * functions. For C = 1 the arrays hold the one channel's p, q, log p, and
 * tmp holds log q, the background's log p_0. */
static void prep(const uf *u, blk *b, size_t n, size_t s0, size_t len)
{
	const sl_kern *k = u->e->k;
	size_t C = u->C, M = u->M;
	const float *xn = u->j->x + n * C * M + s0;
	float g = (float)u->gamma;
	switch (u->act) {
	case SL_ACT_SIGMOID:
		for (size_t c = 0; c < C; c++) {
			float *lp = b->lp + c * UF_BS;
			k->sigpq(len, xn + c * M, b->p + c * UF_BS, b->q + c * UF_BS, lp);
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				lp[i] = -lp[i]; /* softplus(-x) = -log p */
		}
		if (C == 1) {
			/* the background p_0 = q: log q = -softplus(x); u_0 = p, and
			 * p^γ = e^(γ log p), exact even where p underflows */
			k->softplus(len, xn, b->tmp);
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				b->tmp[i] = -b->tmp[i];
				b->u[i] = g * b->lp[i];
			}
			k->exp(len, b->u, b->u);
		} else {
			k->pow(len, b->q, g, b->u);
		}
		break;
	case SL_ACT_SOFTMAX: {
		/* log-softmax: z = x - max, log p = z - log Σ e^z; q_c = (S - e_c)/S,
		 * and for the (first) largest class, whose e^z = 1, the sum of the
		 * others instead, without cancellation. Loops run over positions
		 * within a channel, so that they vectorise. */
		float *z = b->lp, *ez = b->p, *S = b->u, *rest = b->tmp, *ls = b->tmp + UF_BS;
		float *top = b->q; /* the index of the largest class, as a float, until q is written */
#pragma omp simd
		for (size_t i = 0; i < len; i++) {
			S[i] = xn[i];
			top[i] = 0.0f;
		}
		for (size_t c = 1; c < C; c++) {
			const float *xc = xn + c * M;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				uint32_t gt = -(uint32_t)(xc[i] > S[i]);
				S[i] = selb(gt, xc[i], S[i]);
				top[i] = selb(gt, (float)c, top[i]);
			}
		}
		for (size_t c = 0; c < C; c++) {
			const float *xc = xn + c * M;
			float *zc = z + c * UF_BS;
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				zc[i] = xc[i] - S[i];
			k->exp(len, zc, ez + c * UF_BS);
		}
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			S[i] = rest[i] = 0.0f;
		for (size_t c = 0; c < C; c++) {
			const float *ec = ez + c * UF_BS;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				S[i] += ec[i];
				rest[i] += selb(-(uint32_t)(top[i] == (float)c), 0.0f, ec[i]);
			}
		}
		k->log(len, S, ls);
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			S[i] = 1.0f / S[i]; /* 1/S from here */
		/* q of the largest class first, while top still holds its index */
		for (size_t c = C; c-- > 0;) {
			float *pc = ez + c * UF_BS, *qc = b->q + c * UF_BS, *zc = z + c * UF_BS;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				float e = pc[i];
				float qv = selb(-(uint32_t)(top[i] == (float)c), rest[i] * S[i], 1.0f - e * S[i]);
				qc[i] = qv;
				pc[i] = e * S[i];
				zc[i] -= ls[i]; /* log p, in place of z */
			}
		}
		k->pow(len, b->q, g, b->u); /* u_0 = q_0 */
		break;
	}
	default: /* none: p as given, logs clamped at eps */
		for (size_t c = 0; c < C; c++) {
			const float *xc = xn + c * M;
			float *p = b->p + c * UF_BS, *q = b->q + c * UF_BS, *lp = b->lp + c * UF_BS;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				p[i] = xc[i];
				q[i] = 1.0f - xc[i];
				lp[i] = xc[i] < u->feps ? u->feps : xc[i];
			}
			k->log(len, lp, lp);
		}
		if (C == 1) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				b->tmp[i] = b->q[i] < u->feps ? u->feps : b->q[i];
			k->log(len, b->tmp, b->tmp); /* log p_0 = log(1 - p), clamped */
			k->pow(len, b->p, g, b->u);  /* u_0 = p, exact */
		} else {
			k->pow(len, b->q, g, b->u);
		}
		break;
	}
}

/* The pixel mask at (n, s): 1 without one (a full mask is the same in every
 * channel: checked by the first pass). */
static inline double mask_at(const sl_lossjob *j, size_t n, size_t s)
{
	if (!j->m)
		return 1.0;
	return j->mask_full ? (double)j->m[n * j->C * j->M + s] : (double)j->m[n * j->M + s];
}

/* target of channel c at (n, s) */
static inline double targ(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	if (j->labels)
		return j->t[n * j->M + s] == (float)c ? 1.0 : 0.0;
	return (double)j->t[(n * j->C + c) * j->M + s];
}

/* ---- pass 1: statistics and the focal terms ----------------------------- */

/* A full-shape mask must be the same in every channel of a pixel (the loss
 * sums over a pixel's classes): records the first that differs in the
 * task's bad slot and returns 1. */
static int mask_chan_bad(uf *u, size_t task, size_t n, size_t s0, size_t len)
{
	const sl_lossjob *j = u->j;
	size_t C = u->C;
	if (!(j->m && j->mask_full && C > 1))
		return 0;
	for (size_t c = 1; c < C; c++)
		for (size_t i = 0; i < len; i++) {
			size_t a = (n * C + c) * u->M + s0 + i;
			if (j->m[a] != j->m[n * C * u->M + s0 + i]) {
				sl_record(&u->bads[task], SL_BAD_MASK_CHAN, a, j->m[a]);
				return 1;
			}
		}
	return 0;
}

static void stats_task(uf *u, size_t task, int tid)
{
	const sl_lossjob *j = u->j;
	size_t n = task / u->per, s0 = (task % u->per) * UF_BS;
	size_t len = u->M - s0 < UF_BS ? u->M - s0 : UF_BS, C = u->C, K = u->K;
	double *pt = u->part + task * (K * UF_NST + 2);
	memset(pt, 0, (K * UF_NST + 2) * sizeof *pt);
	if (mask_chan_bad(u, task, n, s0, len))
		return;
	blk b = scratch(u, tid);
	prep(u, &b, n, s0, len);
	double d = u->delta, sumF = 0.0, cnt = 0.0;
	for (size_t i = 0; i < len; i++) {
		size_t s = s0 + i;
		double m = mask_at(j, n, s);
		if (m == 0.0)
			continue;
		cnt += m;
		double U = (double)b.u[i];
		if (C == 1) {
			double t = targ(j, n, 0, s), p = b.p[i], q = b.q[i];
			double t0 = 1.0 - t;
			if (u->act == SL_ACT_NONE)
				q = 1.0 - p;
			/* class 0: p_0 = q, q_0 = p, t_0 = 1 - t; class 1: p, q, t */
			double *s0p = pt, *s1p = pt + UF_NST;
			s0p[ST_TP] += m * q * t0;
			s0p[ST_FN] += m * p * t0;
			s0p[ST_FP] += m * q * t;
			s0p[ST_M] += m;
			s1p[ST_TP] += m * p * t;
			s1p[ST_FN] += m * q * t;
			s1p[ST_FP] += m * p * t0;
			s1p[ST_M] += m;
			sumF += m * ((1.0 - d) * U * (-t0 * (double)b.tmp[i]) + d * (-t * (double)b.lp[i]));
			continue;
		}
		double f = 0.0;
		for (size_t c = 0; c < C; c++) {
			size_t a = c * UF_BS + i;
			double t = targ(j, n, c, s), p = b.p[a];
			double q = u->act == SL_ACT_NONE ? 1.0 - p : (double)b.q[a];
			double *sp = pt + c * UF_NST;
			sp[ST_TP] += m * p * t;
			sp[ST_FN] += m * q * t;
			sp[ST_FP] += m * p * (1.0 - t);
			sp[ST_M] += m;
			double ce = -t * (double)b.lp[a];
			f += c == 0 ? (1.0 - d) * U * ce : d * ce;
		}
		sumF += m * f;
	}
	pt[K * UF_NST] = sumF;
	pt[K * UF_NST + 1] = cnt;
}

/* ---- pass 2: the gradient ---------------------------------------------- */

static void grad_task(uf *u, size_t task, int tid, float *g, double w)
{
	const sl_lossjob *j = u->j;
	size_t n = task / u->per, s0 = (task % u->per) * UF_BS;
	size_t len = u->M - s0 < UF_BS ? u->M - s0 : UF_BS, C = u->C, K = u->K, M = u->M;
	blk b = scratch(u, tid);
	prep(u, &b, n, s0, len);
	const double *cf = u->coef + (u->batch ? 0 : n) * K * 2;
	double d = u->delta, sF = u->sF, gm = u->gamma, eps = (double)u->feps;
	int none = u->act == SL_ACT_NONE;
	float *gn = g + n * C * M + s0;
	double *h = u->hs + (size_t)tid * C;
	for (size_t i = 0; i < len; i++) {
		size_t s = s0 + i;
		double m = mask_at(j, n, s);
		if (m == 0.0)
			continue;
		double U = (double)b.u[i], dx;
		if (C == 1) {
			double t = targ(j, n, 0, s), t0 = 1.0 - t, p = b.p[i], q = none ? 1.0 - p : (double)b.q[i];
			double lp0 = b.tmp[i];
			/* Tversky part: dL/dp_k = a0 (1 - t_k) + a1 t_k */
			double T0 = cf[0] * t + cf[1] * t0, T1 = cf[2] * t0 + cf[3] * t;
			if (none) {
				/* dL/dp_1 - dL/dp_0, logs clamped (derivative 0 below eps) */
				double G1 = T1 + sF * d * (p >= eps ? -t / p : 0.0);
				double f0 = 0.0;
				if (t0 != 0.0) {
					double du = p > 0.0 && gm != 0.0 ? gm * U / p * lp0 : 0.0; /* u_0 = p */
					f0 = sF * (1.0 - d) * t0 * (du - (q >= eps ? U / q : 0.0));
				}
				dx = G1 - (T0 + f0);
			} else {
				/* h_k = p_k dL/dp_k; dx = h_1 q - h_0 p */
				double h1 = p * T1 - sF * d * t, h0 = q * T0;
				if (t0 != 0.0) {
					double r = p > 0.0 ? lp0 / p : -1.0; /* log p_0 / u_0 -> -1 as u_0 -> 0 */
					h0 += sF * (1.0 - d) * t0 * (gm * q * U * r - U);
				}
				dx = h1 * q - h0 * p;
			}
			float v = gn[i] + (float)(w * m * dx);
			if (!isfinite(v)) {
				sl_record(&u->bads[task], SL_BAD_GRAD, n * C * M + s, v);
				return;
			}
			gn[i] = v;
			continue;
		}
		double H = 0.0;
		for (size_t c = 0; c < C; c++) {
			size_t a = c * UF_BS + i;
			double t = targ(j, n, c, s), p = b.p[a];
			double q = none ? 1.0 - p : (double)b.q[a], lp = b.lp[a];
			double G = cf[c * 2] * (1.0 - t) + cf[c * 2 + 1] * t; /* dL/dp, Tversky part */
			double hc;
			if (none) {
				if (c == 0) {
					if (t != 0.0) {
						double du = q > 0.0 && gm != 0.0 ? gm * U / q * lp : 0.0;
						G += sF * (1.0 - d) * t * (du - (p >= eps ? U / p : 0.0));
					}
				} else {
					G += sF * d * (p >= eps ? -t / p : 0.0);
				}
				hc = G;
			} else {
				hc = p * G;
				if (c == 0) {
					if (t != 0.0) {
						double r = q > 0.0 ? lp / q : -1.0;
						hc += sF * (1.0 - d) * t * (gm * p * U * r - U);
					}
				} else {
					hc -= sF * d * t;
				}
			}
			h[c] = hc;
			H += hc;
		}
		for (size_t c = 0; c < C; c++) {
			size_t a = c * UF_BS + i;
			if (none)
				dx = h[c];
			else if (u->act == SL_ACT_SIGMOID)
				dx = h[c] * (double)b.q[a];
			else /* softmax: h_c - p_c Σ h = h_c q_c - p_c Σ_{k≠c} h_k */
				dx = h[c] * (double)b.q[a] - (double)b.p[a] * (H - h[c]);
			float v = gn[c * M + i] + (float)(w * m * dx);
			if (!isfinite(v)) {
				sl_record(&u->bads[task], SL_BAD_GRAD, (n * C + c) * M + s, v);
				return;
			}
			gn[c * M + i] = v;
		}
	}
}

/* ---- the vector passes (sigmoid, softmax) ------------------------------ */

/* Class k's p, q = 1 - p and log p in a block prepared by prep: with C = 1
 * class 0 is the background (1 - p, p, log(1 - p)) and class 1 the
 * channel; otherwise class k is channel k. */
static void cls(const uf *u, const blk *b, size_t k, const float **P, const float **Q, const float **lP)
{
	if (u->C == 1) {
		*P = k == 0 ? b->q : b->p;
		*Q = k == 0 ? b->p : b->q;
		*lP = k == 0 ? b->tmp : b->lp;
		return;
	}
	*P = b->p + k * UF_BS;
	*Q = b->q + k * UF_BS;
	*lP = b->lp + k * UF_BS;
}

/* The targets of class k over the block into T (label maps as 1/0; C = 1:
 * class 0 is 1 - t), each times the mask when there is one. */
static void targets(const uf *u, size_t n, size_t k, size_t s0, size_t len, const float *mk, float *T)
{
	const sl_lossjob *j = u->j;
	size_t M = u->M, c = u->C == 1 ? 0 : k;
	float fc = (float)c;
	if (j->labels) {
		const float *tl = j->t + n * M + s0;
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			T[i] = tl[i] == fc ? 1.0f : 0.0f;
	} else {
		memcpy(T, j->t + (n * u->C + c) * M + s0, len * sizeof *T);
	}
	if (u->C == 1 && k == 0) {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			T[i] = 1.0f - T[i];
	}
	if (mk) {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			T[i] *= mk[i];
	}
}

/* The mask of the block (a full one is the same in every channel), or
 * NULL without one. */
static const float *blockmask(const uf *u, size_t n, size_t s0)
{
	const sl_lossjob *j = u->j;
	if (!j->m)
		return NULL;
	return j->mask_full ? j->m + n * u->C * u->M + s0 : j->m + n * u->M + s0;
}

/* Pass 1 with vector loops: per class TP = Σ m p t, FN = Σ m q t, FP = Σ m
 * p (1 - t) as the backend's dot products of one block (float products,
 * double sums), M' = Σ m, and the focal terms summed per block. */
static void stats_vec(uf *u, size_t task, int tid)
{
	const sl_kern *k = u->e->k;
	size_t n = task / u->per, s0 = (task % u->per) * UF_BS;
	size_t len = u->M - s0 < UF_BS ? u->M - s0 : UF_BS, C = u->C, K = u->K;
	double *pt = u->part + task * (K * UF_NST + 2);
	memset(pt, 0, (K * UF_NST + 2) * sizeof *pt);
	if (mask_chan_bad(u, task, n, s0, len))
		return;
	blk b = scratch(u, tid);
	prep(u, &b, n, s0, len);
	const float *mk = blockmask(u, n, s0);
	float *T = b.tmp + (C + 1) * UF_BS, *T0 = T + UF_BS, *f = T0 + UF_BS;
	float d = (float)u->delta, d1 = (float)(1.0 - u->delta);
	for (size_t c = 0; c < K; c++) {
		const float *P, *Q, *lP;
		cls(u, &b, c, &P, &Q, &lP);
		targets(u, n, c, s0, len, mk, T);
		/* m (1 - t) */
		if (mk) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				T0[i] = mk[i] - T[i];
		} else {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				T0[i] = 1.0f - T[i];
		}
		double *sp = pt + c * UF_NST;
		sp[ST_TP] = k->dot(len, P, T);
		sp[ST_FN] = k->dot(len, Q, T);
		sp[ST_FP] = k->dot(len, P, T0);
		sp[ST_M] = mk ? k->sum(len, mk) : (double)len;
		/* the focal terms: (1 - δ) u_0^γ (-m t_0 log p_0), δ (-m t_c log p_c) */
		if (c == 0) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				f[i] = d1 * b.u[i] * (T[i] * -lP[i]);
		} else {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				f[i] += d * (T[i] * -lP[i]);
		}
	}
	pt[K * UF_NST] = k->sum(len, f);
	pt[K * UF_NST + 1] = pt[ST_M];
}

/* Pass 2 with vector loops: h_k = p_k dL/dp_k per class in float, then the
 * chain rule through the sigmoid or softmax. */
static void grad_vec(uf *u, size_t task, int tid, float *g, double w)
{
	size_t n = task / u->per, s0 = (task % u->per) * UF_BS;
	size_t len = u->M - s0 < UF_BS ? u->M - s0 : UF_BS, C = u->C, K = u->K, M = u->M;
	blk b = scratch(u, tid);
	prep(u, &b, n, s0, len);
	const double *cf = u->coef + (u->batch ? 0 : n) * K * 2;
	const float *mk = blockmask(u, n, s0);
	float *T = b.tmp + (C + 1) * UF_BS, *h = T + UF_BS, *dx = h + K * UF_BS, *rs = dx + UF_BS;
	float sF = (float)u->sF, d = (float)u->delta, d1 = (float)(1.0 - u->delta), gm = (float)u->gamma;
	float fw = (float)w;
	for (size_t c = 0; c < K; c++) {
		const float *P, *Q, *lP;
		cls(u, &b, c, &P, &Q, &lP);
		targets(u, n, c, s0, len, NULL, T);
		float a0 = (float)cf[c * 2], a1 = (float)cf[c * 2 + 1];
		float *hc = h + c * UF_BS;
		if (c == 0) {
			/* + sF (1 - δ) t_0 (γ p_0 u r - u), r = log p_0 / q_0 (-1 at q_0 = 0) */
			float k0 = sF * d1;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				uint32_t pos = -(uint32_t)(Q[i] > 0.0f);
				float r = selb(pos, lP[i] / selb(pos, Q[i], 1.0f), -1.0f);
				float G = a0 * (1.0f - T[i]) + a1 * T[i];
				hc[i] = P[i] * G + k0 * T[i] * (gm * P[i] * b.u[i] * r - b.u[i]);
			}
		} else {
			float k1 = sF * d;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				float G = a0 * (1.0f - T[i]) + a1 * T[i];
				hc[i] = P[i] * G - k1 * T[i];
			}
		}
	}
	for (size_t c = 0; c < C; c++) {
		const float *P, *Q, *lP;
		float *gc = g + (n * C + c) * M + s0;
		if (C == 1) {
			/* dx = h_1 q - h_0 p */
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				dx[i] = h[UF_BS + i] * b.q[i] - h[i] * b.p[i];
		} else if (u->act == SL_ACT_SIGMOID) {
			cls(u, &b, c, &P, &Q, &lP);
			const float *hc = h + c * UF_BS;
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				dx[i] = hc[i] * Q[i];
		} else {
			/* softmax: h_c q_c - p_c Σ_{k≠c} h_k, the sum without h_c itself */
			cls(u, &b, c, &P, &Q, &lP);
			const float *hc = h + c * UF_BS;
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				rs[i] = 0.0f;
			for (size_t k2 = 0; k2 < C; k2++) {
				if (k2 == c)
					continue;
				const float *hk = h + k2 * UF_BS;
#pragma omp simd
				for (size_t i = 0; i < len; i++)
					rs[i] += hk[i];
			}
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				dx[i] = hc[i] * Q[i] - P[i] * rs[i];
		}
		/* w m dx, stored (fresh) or added; masked elements untouched / 0 */
		if (mk) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				dx[i] = selb(-(uint32_t)(mk[i] != 0.0f), fw * mk[i] * dx[i], 0.0f);
		} else {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				dx[i] = fw * dx[i];
		}
		if (!u->fresh) {
			if (mk) {
#pragma omp simd
				for (size_t i = 0; i < len; i++)
					dx[i] = selb(-(uint32_t)(mk[i] != 0.0f), gc[i] + dx[i], gc[i]);
			} else {
#pragma omp simd
				for (size_t i = 0; i < len; i++)
					dx[i] = gc[i] + dx[i];
			}
		}
		int ok = 1;
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			ok &= dx[i] * 0.0f == 0.0f;
		if (!ok)
			for (size_t i = 0; i < len; i++)
				if (!isfinite(dx[i])) {
					sl_record(&u->bads[task], SL_BAD_GRAD, (n * C + c) * M + s0 + i, dx[i]);
					return;
				}
		memcpy(gc, dx, len * sizeof *dx);
	}
}

/* ---- the part -------------------------------------------------------- */

static int run_tasks(uf *u, int pass, float *g, double w)
{
	int nt = sl_exec_threads(u->e, u->j->N * u->C * u->M);
	if ((size_t)nt > u->ntask)
		nt = (int)u->ntask;
	if (nt <= 1) {
		for (size_t t = 0; t < u->ntask; t++) {
			if (pass == 0)
				(u->act == SL_ACT_NONE ? stats_task : stats_vec)(u, t, 0);
			else
				(u->act == SL_ACT_NONE ? grad_task : grad_vec)(u, t, 0, g, w);
		}
	} else {
#pragma omp parallel for num_threads(nt) schedule(static)
		for (size_t t = 0; t < u->ntask; t++) {
			sl_note_team(u->e);
			int tid = 0;
#ifdef _OPENMP
			tid = omp_get_thread_num();
#endif
			if (pass == 0)
				(u->act == SL_ACT_NONE ? stats_task : stats_vec)(u, t, tid);
			else
				(u->act == SL_ACT_NONE ? grad_task : grad_vec)(u, t, tid, g, w);
		}
	}
	for (size_t t = 0; t < u->ntask; t++)
		if (u->bads[t].kind != SL_BAD_NONE)
			return (int)t + 1;
	return 0;
}

int sl_unified_focal_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                          double *value, sl_bad *bad)
{
	uf u = {0};
	u.e = e;
	u.j = j;
	u.C = j->C;
	u.K = j->C == 1 ? 2 : j->C;
	u.M = j->M;
	u.act = j->act;
	u.lambda = gp->opts[SL_O_WEIGHT];
	u.delta = gp->opts[SL_O_DELTA];
	u.gamma = gp->opts[SL_O_GAMMA];
	u.smooth = gp->opts[SL_O_SMOOTH];
	u.eps = gp->opts[SL_O_EPS];
	u.feps = j->eps;
	u.batch = gp->opts[SL_O_BATCH] != 0.0;
	u.per = (u.M + UF_BS - 1) / UF_BS;
	u.ntask = j->N * u.per;
	size_t N = j->N, K = u.K, C = u.C, pw = K * UF_NST + 2;
	int nt = e->threads > 0 ? e->threads : 1;
	u.nscr = (4 * C + K + 8) * UF_BS;
	size_t rows = u.batch ? 1 : N;
	u.scr = sl_mem_malloc((size_t)nt * u.nscr * sizeof *u.scr);
	u.part = malloc((u.ntask ? u.ntask : 1) * pw * sizeof *u.part);
	u.coef = calloc(rows * K * 2, sizeof *u.coef);
	u.bads = calloc(u.ntask ? u.ntask : 1, sizeof *u.bads);
	u.hs = sl_mem_malloc((size_t)nt * C * sizeof *u.hs);
	double *st = calloc(rows * K * UF_NST, sizeof *st);
	int rc = SL_OK;
	if (!u.scr || !u.part || !u.coef || !u.bads || !u.hs || !st) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	int b = run_tasks(&u, 0, NULL, 0.0);
	if (b) {
		*bad = u.bads[b - 1];
		rc = SL_ERR_INPUT;
		goto done;
	}
	/* fold in task order */
	double sumF = 0.0, cnt = 0.0;
	for (size_t t = 0; t < u.ntask; t++) {
		const double *pt = u.part + t * pw;
		double *r = st + (u.batch ? 0 : t / u.per) * K * UF_NST;
		for (size_t k = 0; k < K * UF_NST; k++)
			r[k] += pt[k];
		sumF += pt[K * UF_NST];
		cnt += pt[K * UF_NST + 1];
	}
	/* the Tversky part per (row, class): value and d/dp coefficients */
	int mean = gp->reduction == SL_RED_MEAN;
	double d = u.delta, s = u.smooth, gm = u.gamma, sumFT = 0.0, nFT = 0.0;
	for (size_t r = 0; r < rows; r++)
		for (size_t k = 0; k < K; k++)
			nFT += st[(r * K + k) * UF_NST + ST_M] > 0.0 ? 1.0 : 0.0;
	double sFT = mean ? (nFT > 0.0 ? (1.0 - u.lambda) / nFT : 0.0) : 1.0 - u.lambda;
	u.sF = mean ? (cnt > 0.0 ? u.lambda / cnt : 0.0) : u.lambda;
	for (size_t r = 0; r < rows; r++)
		for (size_t k = 0; k < K; k++) {
			const double *q = st + (r * K + k) * UF_NST;
			if (!(q[ST_M] > 0.0))
				continue;
			double A = q[ST_TP] + s, B = q[ST_TP] + d * q[ST_FN] + (1.0 - d) * q[ST_FP] + s;
			double TI = 1.0, kt0 = 0.0, kt1 = 0.0; /* 0/0: the limit 1, derivative 0 */
			if (B > 0.0) {
				TI = A / B;
				kt0 = -(1.0 - d) * TI / B;       /* dTI/dp where t = 0 */
				kt1 = (1.0 - (1.0 - d) * TI) / B; /* where t = 1 */
			}
			double L, dL;
			if (k == 0) {
				L = 1.0 - TI;
				dL = -1.0;
			} else {
				double v = 1.0 - TI;
				if (v < u.eps) {
					L = pow(u.eps, 1.0 - gm);
					dL = 0.0;
				} else {
					L = pow(v, 1.0 - gm);
					dL = -(1.0 - gm) * L / v;
				}
			}
			sumFT += L;
			double *cf = u.coef + (r * K + k) * 2;
			cf[0] = sFT * dL * kt0;
			cf[1] = sFT * dL * kt1;
		}
	*value = mean ? (cnt > 0.0 ? u.lambda * sumF / cnt : 0.0) + (nFT > 0.0 ? (1.0 - u.lambda) * sumFT / nFT : 0.0)
	              : u.lambda * sumF + (1.0 - u.lambda) * sumFT;
	if (g) {
		u.fresh = gp->fresh;
		if (u.fresh && u.act == SL_ACT_NONE) { /* its pass adds */
			memset(g, 0, N * C * u.M * sizeof *g);
			u.fresh = 0;
		}
		b = run_tasks(&u, 1, g, gp->weight);
		if (b) {
			*bad = u.bads[b - 1];
			rc = SL_ERR_INPUT;
		}
	}
done:
	free(u.scr);
	free(u.part);
	free(u.coef);
	free(u.bads);
	free(u.hs);
	free(st);
	return rc;
}
