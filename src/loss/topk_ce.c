/*
 * topk_ce.c — the mean of the largest k % of the cross-entropy terms
 * (nnU-Net's TopKLoss) as a generic part (loss.h, generic.h).
 *
 * The terms: ce per pixel (softmax, or "none" with C >= 2) or bce per
 * element (sigmoid, or "none" with C = 1), each times its class weight;
 * K = the number of valid terms in the whole batch, and the part keeps the
 * largest max(1, floor(K k / 100)) of them, equal terms in index order
 * (the lower flat index first: n M + s for ce, x's own index for bce).
 *
 * The terms are computed in float with the backend's vector functions
 * (softmax's exponentials, softplus, log) in loops over the positions of a
 * block, and kept as floats (-1 where masked): in the "none" values, in a
 * fresh gradient (loss.h: the part declares SL_LF_GEN_STORE and
 * SL_LF_GEN_ATOMIC; bce terms there) or in memory of their own. With the
 * softmax and a fresh gradient whose bound cannot overflow, the terms pass
 * also stores every element's own unscaled gradient while e^z is at hand
 * (the terms then go to memory of their own, one float per pixel), and the
 * gradient pass only scales it or zeroes it. Otherwise the gradient pass
 * recomputes it where a block has a selected term.
 *
 * The selection is a radix select on the terms' float bits, never a sort:
 * a term t >= 0 has the key bits(t) + 1 (0 marks a masked term, below every
 * valid one), and three histogram passes over the keys (bits 31-21, 20-10,
 * 9-0) find the threshold key and how many of its ties are kept; when only
 * some of them are, a count per task finds the flat index of the last one
 * kept. Histograms are integer counts (per thread, four sub-histograms),
 * so they do not depend on the order of the additions; the value (the
 * selected terms summed in double, NACC lanes per task, folded in task
 * order) and the gradient (the selected terms' own, 0 elsewhere) are the
 * same bits for any thread count. The gradient is bounded before anything
 * is written (|weight| max w_c, times C + 1 for the softmax, over eps for
 * "none"); where the bound could overflow float32 a dry pass checks it
 * first, so a failing call writes nothing.
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

#define TK_BS 1024 /* terms per task: fixed, whatever the thread count */
#define NBIN 2048
#define NSUB 4      /* sub-histograms per thread: no chain of increments of one bin */
#define NACC 8      /* lanes of the value's double sum (fixed: the same bits always) */

typedef struct tk {
	const sl_exec *e;
	const sl_lossjob *j;
	const sl_genpart *gp;
	size_t C, M, rows, per, ntask, nterm;
	int ce, act, c0;
	float feps;
	float *tv;       /* the term of (row, s) at tv[row * rstride + s]; -1 where masked */
	size_t rstride;
	float *cwf;      /* class weights as floats (C), 1 without */
	float *scr;      /* per thread: (2 C + 6) TK_BS floats */
	size_t nscr;
	uint64_t *hist;  /* per thread: NSUB * NBIN counts */
	double *part;    /* per task: Σ of the selected terms */
	uint64_t *cnt;   /* per task: a count */
	sl_bad *bads;
	/* the selection: key > thr, or key == thr and flat index <= cut */
	uint32_t thr;
	float thrf;      /* the term of the key thr */
	size_t cut;
	double scale;    /* gradient factor: weight / count (mean) or weight (sum) */
	float *g;
	float *vals;     /* reduction "none" */
	int fresh;       /* g is uninitialised: store (loss.h, sl_genpart.fresh) */
	int dry;         /* the gradient pass only checks, writes nothing */
	int pregrad;     /* softmax, fresh: the terms pass stores d ce / d x unscaled into g,
	                    the gradient pass scales it or zeroes it */
} tk;

/* A term's key: its float bits + 1 (terms are >= 0: the same order), 0 for a
 * masked one (stored as -1). */
static inline uint32_t key_of(float t)
{
	uint32_t b;
	memcpy(&b, &t, sizeof b);
	return (int32_t)b < 0 ? 0u : b + 1u;
}

/* r where the mask m is all ones, +0 where it is 0: a select that
 * vectorises (a ?: of a computed float may not, as the computation can
 * trap), and keeps an Inf or NaN where it is not selected out of the
 * gradient's check. */
static inline float keep(float r, uint32_t m)
{
	uint32_t b;
	memcpy(&b, &r, sizeof b);
	b &= m;
	memcpy(&r, &b, sizeof r);
	return r;
}

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

/* task -> (row: n for ce, n C + c for bce; the first position; the count) */
static void task_at(const tk *u, size_t task, size_t *row, size_t *s0, size_t *len)
{
	*row = task / u->per;
	*s0 = (task % u->per) * TK_BS;
	*len = u->M - *s0 < TK_BS ? u->M - *s0 : TK_BS;
}

static inline float *terms_at(const tk *u, size_t row, size_t s0) { return u->tv + row * u->rstride + s0; }

/* ---- the terms ---------------------------------------------------------- */

/* ce: z_c = x_c - max, e_c = e^z_c, S = Σ e_c into scratch (z at scr, e at
 * scr + C bs, log S at scr + 2 C bs, S at scr + 2 C bs + bs). */
static void softmax_block(const tk *u, float *scr, size_t n, size_t s0, size_t len)
{
	const sl_kern *k = u->e->k;
	size_t C = u->C, M = u->M;
	const float *xn = u->j->x + n * C * M + s0;
	float *z = scr, *ez = scr + C * TK_BS, *ls = scr + 2 * C * TK_BS, *S = ls + TK_BS;
	/* channel by channel, so that the loops vectorise: S holds the max first */
#pragma omp simd
	for (size_t i = 0; i < len; i++)
		S[i] = xn[i];
	for (size_t c = 1; c < C; c++) {
		const float *xc = xn + c * M;
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			S[i] = selb(-(uint32_t)(xc[i] > S[i]), xc[i], S[i]);
	}
	for (size_t c = 0; c < C; c++) {
		const float *xc = xn + c * M;
		float *zc = z + c * TK_BS;
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			zc[i] = xc[i] - S[i];
		k->exp(len, zc, ez + c * TK_BS);
	}
#pragma omp simd
	for (size_t i = 0; i < len; i++)
		S[i] = 0.0f;
	for (size_t c = 0; c < C; c++) {
		const float *ec = ez + c * TK_BS;
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			S[i] += ec[i];
	}
	k->log(len, S, ls);
}

/* The target of channel c of sample n over the block: t itself, or a label
 * map's 1/0 written into buf. */
static const float *tblock(const tk *u, float *buf, size_t n, size_t c, size_t s0, size_t len)
{
	const sl_lossjob *j = u->j;
	if (!j->labels)
		return j->t + (n * u->C + c) * u->M + s0;
	const float *tl = j->t + n * u->M + s0;
	float fc = (float)c;
#pragma omp simd
	for (size_t i = 0; i < len; i++)
		buf[i] = tl[i] == fc ? 1.0f : 0.0f;
	return buf;
}

/* v[i] = -1 (masked) where the mask m (NULL: none) is 0, else max(r[i], 0). */
static void put_terms(float *v, const float *r, const float *m, size_t len)
{
	if (m) {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			v[i] = m[i] == 0.0f ? -1.0f : r[i] > 0.0f ? r[i] : 0.0f;
	} else {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			v[i] = r[i] > 0.0f ? r[i] : 0.0f;
	}
}

/* A full mask must be the same in every channel where a pixel is one term. */
static void maskchan_task(tk *u, size_t task)
{
	const sl_lossjob *j = u->j;
	size_t n, s0, len, C = u->C, M = u->M;
	task_at(u, task, &n, &s0, &len);
	for (size_t c = 1; c < C; c++)
		for (size_t i = 0; i < len; i++) {
			size_t a = (n * C + c) * M + s0 + i;
			if (j->m[a] != j->m[n * C * M + s0 + i]) {
				sl_record(&u->bads[task], SL_BAD_MASK_CHAN, a, j->m[a]);
				return;
			}
		}
}

/* The terms v[0..len) (masked already -1): the top-digit histogram and the
 * valid count. Four sub-histograms, so that equal digits in a row do not
 * wait on each other. */
static uint64_t histo1(const float *v, size_t len, uint64_t *h)
{
	uint64_t valid = 0;
	size_t i = 0;
	for (; i + NSUB <= len; i += NSUB)
		for (size_t l = 0; l < NSUB; l++) {
			uint32_t key = key_of(v[i + l]);
			valid += key != 0;
			h[l * NBIN + (key >> 21)]++;
		}
	for (; i < len; i++) {
		uint32_t key = key_of(v[i]);
		valid += key != 0;
		h[key >> 21]++;
	}
	return valid;
}

static int grad_softmax(tk *u, size_t task, float *scr, const uint32_t *sf, float sc, size_t n, size_t s0,
                        size_t len, float *gn);

/* The terms of one task into tv, their top-digit histogram, the valid count.
 * Float arithmetic, loops over positions (they vectorise); a term < 0 (or
 * NaN) counts as 0. */
static void terms_task(tk *u, size_t task, int tid)
{
	const sl_lossjob *j = u->j;
	const sl_kern *k = u->e->k;
	size_t row, s0, len, C = u->C, M = u->M;
	task_at(u, task, &row, &s0, &len);
	float *scr = u->scr + (size_t)tid * u->nscr;
	float *v = terms_at(u, row, s0);
	float *tb = scr + (2 * C + 5) * TK_BS;
	if (u->ce) {
		size_t n = row;
		const float *xn = j->x + n * C * M + s0;
		float *acc = scr + (2 * C + 3) * TK_BS;
		float *z = scr, *ls = scr + 2 * C * TK_BS;
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			acc[i] = 0.0f;
		if (u->act == SL_ACT_SOFTMAX) {
			softmax_block(u, scr, n, s0, len); /* ℓ_c = log S - z_c */
		} else { /* none: ℓ_c = 0 - log max(p, eps) */
			for (size_t c = 0; c < C; c++) {
				float *zc = z + c * TK_BS;
#pragma omp simd
				for (size_t i = 0; i < len; i++) {
					float p = xn[c * M + i];
					zc[i] = p < u->feps ? u->feps : p;
				}
				k->log(len, zc, zc);
			}
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				ls[i] = 0.0f;
		}
		for (size_t c = (size_t)u->c0; c < C; c++) {
			float w = u->cwf[c];
			const float *zc = z + c * TK_BS, *t = tblock(u, tb, n, c, s0, len);
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				acc[i] += w * t[i] * (ls[i] - zc[i]);
		}
		put_terms(v, acc, !j->m ? NULL : j->mask_full ? j->m + n * C * M + s0 : j->m + n * M + s0, len);
		if (u->pregrad) { /* every pixel's own d ce / d x, while e^z is at hand */
			uint32_t *all = (uint32_t *)(scr + (2 * C + 4) * TK_BS);
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				all[i] = ~0u;
			grad_softmax(u, task, scr, all, 1.0f, n, s0, len, u->g + n * C * M + s0);
		}
	} else { /* bce of channel c of sample n */
		size_t n = row / C, c = row % C;
		const float *xc = j->x + row * M + s0;
		float *a = scr, *b = scr + TK_BS, *r = scr + 2 * TK_BS;
		if (c < (size_t)u->c0) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				v[i] = -1.0f;
			u->cnt[task] = 0;
			return;
		}
		float w = u->cwf[c];
		const float *t = tblock(u, tb, n, c, s0, len);
		uint32_t frac = 0;
		if (u->act == SL_ACT_SIGMOID) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				frac |= (uint32_t)(t[i] != 0.0f && t[i] != 1.0f);
		}
		if (u->act == SL_ACT_SIGMOID && !frac) {
			/* 0/1 targets: one softplus, of -x where t = 1 (-log p), of x
			 * where t = 0 (-log q) */
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				a[i] = t[i] != 0.0f ? -xc[i] : xc[i];
			k->softplus(len, a, a);
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				r[i] = w * a[i];
		} else if (u->act == SL_ACT_SIGMOID) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				a[i] = -xc[i];
			k->softplus(len, a, a);  /* -log p */
			k->softplus(len, xc, b); /* -log q */
		} else {
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				float p = xc[i], q = 1.0f - p;
				a[i] = p < u->feps ? u->feps : p;
				b[i] = q < u->feps ? u->feps : q;
			}
			k->log(len, a, a);
			k->log(len, b, b);
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				a[i] = -a[i];
				b[i] = -b[i];
			}
		}
		if (u->act != SL_ACT_SIGMOID || frac) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				r[i] = w * (t[i] * a[i] + (1.0f - t[i]) * b[i]);
		}
		put_terms(v, r, !j->m ? NULL : j->mask_full ? j->m + row * M + s0 : j->m + n * M + s0, len);
	}
	u->cnt[task] = histo1(v, len, u->hist + (size_t)tid * NSUB * NBIN);
}

/* ---- the selection ------------------------------------------------------ */

enum { P_MASKCHAN, P_TERMS, P_DIGIT2, P_DIGIT3, P_TIES, P_GRAD };

static void digit_task(tk *u, size_t task, int tid, int pass, uint32_t prefix)
{
	size_t row, s0, len;
	task_at(u, task, &row, &s0, &len);
	const float *v = terms_at(u, row, s0);
	uint64_t *h = u->hist + (size_t)tid * NSUB * NBIN;
	/* a vector test per chunk of 64 keys first: few of them match */
	uint32_t sh = pass == P_DIGIT2 ? 21 : 10;
	for (size_t i0 = 0; i0 < len; i0 += 64) {
		size_t e = len - i0 < 64 ? len - i0 : 64;
		uint32_t hit = 0;
#pragma omp simd
		for (size_t i = 0; i < e; i++)
			hit |= (uint32_t)(key_of(v[i0 + i]) >> sh == prefix);
		if (!hit)
			continue;
		for (size_t i = i0; i < i0 + e; i++) {
			uint32_t key = key_of(v[i]);
			if (key >> sh == prefix)
				h[pass == P_DIGIT2 ? (key >> 10) & 0x7FFu : key & 0x3FFu]++;
		}
	}
	if (pass == P_DIGIT2 || pass == P_DIGIT3) {
		return;
	} else { /* P_TIES */
		uint64_t c = 0;
		float f = u->thrf;
		for (size_t i = 0; i < len; i++)
			c += v[i] == f;
		u->cnt[task] = c;
	}
}

/* ---- value and gradient ------------------------------------------------- */

/* Is the term v at flat index idx selected? (v is -1 where masked, and
 * thrf >= 0.) */
static inline int selected(const tk *u, float v, size_t idx)
{
	return v > u->thrf || (v == u->thrf && idx <= u->cut);
}

/* Stores or adds (fresh or not) the block's gradient d (scaled already, 0
 * where not selected: sf = 0, else ~0) into gc, checking it; dry: checks only. */
static int put_grad(tk *u, size_t task, const uint32_t *sf, float *d, size_t len, float *gc, size_t at)
{
	if (!u->fresh) {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			d[i] = keep(gc[i] + d[i], sf[i]) + keep(gc[i], ~sf[i]);
	}
	int ok = 1;
#pragma omp simd
	for (size_t i = 0; i < len; i++)
		ok &= d[i] * 0.0f == 0.0f; /* not for Inf, NaN */
	if (!ok)
		for (size_t i = 0; i < len; i++)
			if (!isfinite(d[i])) {
				sl_record(&u->bads[task], SL_BAD_GRAD, at + i, d[i]);
				return 1;
			}
	if (!u->dry)
		memcpy(gc, d, len * sizeof *d);
	return 0;
}

/* dL/dx of one block of a softmax ce (selected pixels: sf = ~0, else 0),
 * stored or added into gn (x's layout, the block's first position). */
static int grad_softmax(tk *u, size_t task, float *scr, const uint32_t *sf, float sc, size_t n, size_t s0, size_t len,
                        float *gn)
{
	const sl_lossjob *j = u->j;
	size_t C = u->C, M = u->M, c0 = (size_t)u->c0;
	const float *ez = scr + C * TK_BS, *S = scr + 2 * C * TK_BS + TK_BS;
	float *W = scr + (2 * C + 2) * TK_BS, *is = scr + (2 * C + 3) * TK_BS, *tb = scr + (2 * C + 5) * TK_BS;
	float *rest = scr, *d = scr + TK_BS; /* z is not needed any more (C >= 2) */
	int lab = j->labels != 0;
	/* the scale over S; W = Σ_{c >= c0} w_c t_c; with a label map, rest =
	 * Σ_{c != y} e_c = S - e_y without cancellation */
#pragma omp simd
	for (size_t i = 0; i < len; i++) {
		is[i] = keep(sc / S[i], sf[i]);
		W[i] = 0.0f;
		rest[i] = 0.0f;
	}
	for (size_t c = 0; c < C; c++) {
		const float *t = tblock(u, tb, n, c, s0, len), *ec = ez + c * TK_BS;
		float w = c >= c0 ? u->cwf[c] : 0.0f;
#pragma omp simd
		for (size_t i = 0; i < len; i++) {
			W[i] += w * t[i];
			rest[i] += (1.0f - t[i]) * ec[i];
		}
	}
	/* labels: d_c = W e_c / S for c != y and -W (S - e_y) / S for c = y;
	 * dense: p_c W - w_c t_c = (W e_c - w_c t_c S) / S */
	for (size_t c = 0; c < C; c++) {
		const float *t = tblock(u, tb, n, c, s0, len), *ec = ez + c * TK_BS;
		float w = c >= c0 ? u->cwf[c] : 0.0f;
		if (lab) {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				d[i] = ((1.0f - t[i]) * (W[i] * ec[i]) - t[i] * (W[i] * rest[i])) * is[i];
		} else {
#pragma omp simd
			for (size_t i = 0; i < len; i++)
				d[i] = (W[i] * ec[i] - w * t[i] * S[i]) * is[i];
		}
		if (put_grad(u, task, sf, d, len, gn + c * M, (n * C + c) * M + s0))
			return 1;
	}
	return 0;
}

/* The value's part of one task (the selected terms summed in double, NACC
 * lanes in a fixed order), the selection as ~0 / 0 into sf, the "none" values;
 * then the gradient: the selected terms' own, 0 elsewhere. */
static void grad_task(tk *u, size_t task, int tid)
{
	const sl_lossjob *j = u->j;
	size_t row, s0, len, C = u->C, M = u->M;
	task_at(u, task, &row, &s0, &len);
	float *scr = u->scr + (size_t)tid * u->nscr;
	uint32_t *sf = (uint32_t *)(scr + (2 * C + 4) * TK_BS); /* ~0 where selected, else 0 */
	float *v = terms_at(u, row, s0);
	size_t base = row * M + s0;
	double acc[NACC] = {0.0};
	float f = u->thrf;
	size_t cut = u->cut;
	/* the selection: v >= thr where every tie of the task is kept, v > thr
	 * where none is, the index test only in the task holding the cut */
	if (cut != (size_t)-1 && cut >= base && cut < base + len - 1) {
		for (size_t i = 0; i < len; i++)
			sf[i] = -(uint32_t)selected(u, v[i], base + i);
	} else if (cut < base) {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			sf[i] = -(uint32_t)(v[i] > f);
	} else {
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			sf[i] = -(uint32_t)(v[i] >= f);
	}
	uint32_t anym = 0;
#pragma omp simd
	for (size_t i = 0; i < len; i++)
		anym |= sf[i];
	int any = anym != 0;
	if (!u->dry && any) {
		/* NACC lanes in double, folded in order: the same bits always */
		size_t i = 0;
		for (; i + NACC <= len; i += NACC)
			for (size_t l = 0; l < NACC; l++)
				acc[l] += (double)keep(v[i + l], sf[i + l]);
		for (; i < len; i++)
			acc[0] += (double)keep(v[i], sf[i]);
		double sum = 0.0;
		for (size_t l = 0; l < NACC; l++)
			sum += acc[l];
		u->part[task] = sum;
	} else if (!u->dry) {
		u->part[task] = 0.0;
	}
	if (u->vals && !u->dry) /* the kept terms, 0 elsewhere (v may be vals itself) */
		for (size_t k = 0; k < len; k++)
			u->vals[base + k] = keep(v[k], sf[k]);
	if (!u->g)
		return;
	if (!any) {
		if (u->fresh && !u->dry) {
			if (u->ce)
				for (size_t c = 0; c < C; c++)
					memset(u->g + (row * C + c) * M + s0, 0, len * sizeof *u->g);
			else
				memset(u->g + row * M + s0, 0, len * sizeof *u->g);
		}
		return;
	}
	float sc = (float)u->scale;
	if (u->ce) {
		size_t n = row;
		float *gn = u->g + n * C * M + s0;
		if (u->pregrad) { /* scale the stored gradient where selected, 0 elsewhere */
			for (size_t c = 0; c < C; c++) {
				float *gc = gn + c * M;
#pragma omp simd
				for (size_t i = 0; i < len; i++)
					gc[i] = keep(gc[i] * sc, sf[i]);
			}
			return;
		}
		if (u->act == SL_ACT_SOFTMAX) {
			softmax_block(u, scr, n, s0, len);
			grad_softmax(u, task, scr, sf, sc, n, s0, len, gn);
			return;
		}
		/* none: d_c = -w_c t_c / p_c where p_c >= eps */
		const float *xn = j->x + n * C * M;
		float *d = scr;
		float *tb = scr + (2 * C + 5) * TK_BS;
		for (size_t c = 0; c < C; c++) {
			const float *xc = xn + c * M + s0, *t = tblock(u, tb, n, c, s0, len);
			float w = c >= (size_t)u->c0 ? -u->cwf[c] * sc : 0.0f, e = u->feps;
#pragma omp simd
			for (size_t i = 0; i < len; i++) {
				uint32_t ok = -(uint32_t)(xc[i] >= e);
				d[i] = keep(w * t[i] / (xc[i] >= e ? xc[i] : 1.0f), sf[i] & ok);
			}
			if (put_grad(u, task, sf, d, len, gn + c * M, (n * C + c) * M + s0))
				return;
		}
		return;
	}
	size_t n = row / C, c = row % C;
	const float *xc = j->x + row * M + s0;
	float *gc = u->g + row * M + s0, *p = scr, *q = scr + TK_BS, *d = scr + 2 * TK_BS;
	float w = u->cwf[c] * sc, e = u->feps;
	const float *t = tblock(u, scr + (2 * C + 5) * TK_BS, n, c, s0, len);
	if (u->act == SL_ACT_SIGMOID) {
		u->e->k->sigpq(len, xc, p, q, NULL);
		/* p - t = p (1 - t) - q t */
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			d[i] = keep(w * (p[i] * (1.0f - t[i]) - q[i] * t[i]), sf[i]);
	} else {
#pragma omp simd
		for (size_t i = 0; i < len; i++) {
			float pv = xc[i], qv = 1.0f - pv;
			float a = keep(t[i] / (pv >= e ? pv : 1.0f), -(uint32_t)(pv >= e));
			float b = keep((1.0f - t[i]) / (qv >= e ? qv : 1.0f), -(uint32_t)(qv >= e));
			d[i] = keep(-w * (a - b), sf[i]);
		}
	}
	put_grad(u, task, sf, d, len, gc, row * M + s0);
}

/* ---- the part -------------------------------------------------------- */

static int run(tk *u, int pass, uint32_t prefix)
{
	int nt = sl_exec_threads(u->e, u->j->N * u->C * u->M);
	if ((size_t)nt > u->ntask)
		nt = (int)u->ntask;
	size_t hw = NSUB * NBIN;
	if (pass == P_TERMS || pass == P_DIGIT2 || pass == P_DIGIT3)
		memset(u->hist, 0, (size_t)(nt > 0 ? nt : 1) * hw * sizeof *u->hist);
	if (nt <= 1) {
		for (size_t t = 0; t < u->ntask; t++) {
			if (pass == P_MASKCHAN)
				maskchan_task(u, t);
			else if (pass == P_TERMS)
				terms_task(u, t, 0);
			else if (pass == P_GRAD)
				grad_task(u, t, 0);
			else
				digit_task(u, t, 0, pass, prefix);
		}
	} else {
#pragma omp parallel for num_threads(nt) schedule(static)
		for (size_t t = 0; t < u->ntask; t++) {
			sl_note_team(u->e);
			int tid = 0;
#ifdef _OPENMP
			tid = omp_get_thread_num();
#endif
			if (pass == P_MASKCHAN)
				maskchan_task(u, t);
			else if (pass == P_TERMS)
				terms_task(u, t, tid);
			else if (pass == P_GRAD)
				grad_task(u, t, tid);
			else
				digit_task(u, t, tid, pass, prefix);
		}
	}
	/* every histogram into the first (integer sums: any order) */
	if (pass == P_TERMS || pass == P_DIGIT2 || pass == P_DIGIT3)
		for (size_t h = 1; h < (size_t)(nt > 0 ? nt : 1) * NSUB; h++)
			for (size_t b = 0; b < NBIN; b++)
				u->hist[b] += u->hist[h * NBIN + b];
	for (size_t t = 0; t < u->ntask; t++)
		if (u->bads[t].kind != SL_BAD_NONE)
			return (int)t + 1;
	return 0;
}

/* The bin of hist[0..nb) holding the need-th largest key, counting from the
 * top; *need becomes the rank within that bin. */
static uint32_t pick(const uint64_t *h, size_t nb, uint64_t *need)
{
	for (size_t b = nb; b-- > 0;) {
		if (h[b] >= *need)
			return (uint32_t)b;
		*need -= h[b];
	}
	return 0; /* not reached: need <= the count */
}

int sl_topk_ce_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape)
{
	int act = (int)opts[SL_O_ACTIVATION];
	for (int i = 0; i < ndim; i++)
		shape[i] = xshape[i];
	if (act == SL_ACT_SOFTMAX || (act == SL_ACT_NONE && xshape[1] >= 2))
		shape[1] = 1;
	return ndim;
}

int sl_topk_ce_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g, double *value,
                    sl_bad *bad)
{
	tk u = {0};
	u.e = e;
	u.j = j;
	u.gp = gp;
	u.C = j->C;
	u.M = j->M;
	u.act = j->act;
	u.ce = j->act == SL_ACT_SOFTMAX || (j->act == SL_ACT_NONE && j->C >= 2);
	u.c0 = gp->c0;
	u.feps = j->eps;
	u.rows = u.ce ? j->N : j->N * j->C;
	u.per = (u.M + TK_BS - 1) / TK_BS;
	u.ntask = u.rows * u.per;
	u.nterm = u.rows * u.M;
	u.g = g;
	u.vals = gp->vals;
	u.fresh = g && gp->fresh;
	int nt = e->threads > 0 ? e->threads : 1;
	u.nscr = (2 * u.C + 6) * TK_BS;
	float *own = NULL;
	u.scr = sl_mem_malloc((size_t)nt * u.nscr * sizeof *u.scr);
	u.hist = sl_mem_malloc((size_t)nt * NSUB * NBIN * sizeof *u.hist);
	u.part = malloc((u.ntask ? u.ntask : 1) * sizeof *u.part);
	u.cnt = calloc(u.ntask ? u.ntask : 1, sizeof *u.cnt);
	u.bads = calloc(u.ntask ? u.ntask : 1, sizeof *u.bads);
	u.cwf = malloc(u.C * sizeof *u.cwf);
	int rc = SL_OK, b;
	*value = 0.0;
	if (!u.scr || !u.hist || !u.part || !u.cnt || !u.bads || !u.cwf) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	double wmax = 0.0;
	for (size_t c = 0; c < u.C; c++) {
		u.cwf[c] = gp->cw ? (float)gp->cw[c] : 1.0f;
		wmax = fabs((double)u.cwf[c]) > wmax ? fabs((double)u.cwf[c]) : wmax;
	}
	/* |d L / d x| <= |weight| max|w_c| (C + 1 for the softmax) (1 / eps for
	 * "none"): where that cannot overflow float32, the gradient pass cannot
	 * fail, else a dry pass checks it before anything is written */
	double bound = fabs(gp->weight) * wmax * (j->act == SL_ACT_SOFTMAX ? (double)u.C + 1.0 : 1.0) *
	               (j->act == SL_ACT_NONE ? 1.0 / (double)j->eps : 1.0);
	int safe = bound <= 0x1p+120;
	/* where the terms go: the "none" values, a fresh gradient (which holds
	 * nothing yet; ce terms in channel 0) when the gradient pass cannot
	 * fail, or memory of their own */
	if (u.vals) {
		u.tv = u.vals;
		u.rstride = u.M;
	} else if (u.fresh && safe && u.ce && j->act == SL_ACT_SOFTMAX) {
		own = sl_mem_malloc((u.nterm ? u.nterm : 1) * sizeof *own);
		if (!own) {
			rc = SL_ERR_NOMEM;
			goto done;
		}
		u.tv = own;
		u.rstride = u.M;
		u.pregrad = 1;
	} else if (u.fresh && safe) {
		u.tv = g;
		u.rstride = u.ce ? u.C * u.M : u.M;
	} else {
		own = sl_mem_malloc((u.nterm ? u.nterm : 1) * sizeof *own);
		if (!own) {
			rc = SL_ERR_NOMEM;
			goto done;
		}
		u.tv = own;
		u.rstride = u.M;
	}
	if (u.ce && j->m && j->mask_full && u.C > 1 && (b = run(&u, P_MASKCHAN, 0)) != 0) {
		*bad = u.bads[b - 1];
		rc = SL_ERR_INPUT;
		goto done;
	}
	run(&u, P_TERMS, 0);
	uint64_t K = 0;
	for (size_t t = 0; t < u.ntask; t++)
		K += u.cnt[t];
	if (K == 0) { /* a mean over nothing: 0, gradient 0 */
		if (u.vals)
			memset(u.vals, 0, u.nterm * sizeof *u.vals);
		if (u.fresh)
			memset(g, 0, j->N * u.C * u.M * sizeof *g);
		goto done;
	}
	double want = floor((double)K * gp->opts[SL_O_K] / 100.0);
	uint64_t nsel = want < 1.0 ? 1 : (uint64_t)want;
	if (nsel > K)
		nsel = K;
	/* radix select: the top digit's histogram came with the terms */
	uint64_t need = nsel;
	uint32_t d1 = pick(u.hist, NBIN, &need);
	run(&u, P_DIGIT2, d1);
	uint32_t d2 = pick(u.hist, NBIN, &need);
	run(&u, P_DIGIT3, d1 << 11 | d2);
	uint64_t eq;
	uint32_t d3 = pick(u.hist, 1024, &need);
	eq = u.hist[d3];
	u.thr = d1 << 21 | d2 << 10 | d3;
	{
		uint32_t tb = u.thr - 1u; /* thr >= 1: a valid key */
		memcpy(&u.thrf, &tb, sizeof tb);
	}
	u.cut = (size_t)-1;
	if (need < eq) {
		/* only the first `need` ties are kept: the flat index of the last */
		run(&u, P_TIES, u.thr);
		uint64_t seen = 0;
		for (size_t t = 0; t < u.ntask; t++) {
			if (seen + u.cnt[t] < need) {
				seen += u.cnt[t];
				continue;
			}
			size_t row, s0, len;
			task_at(&u, t, &row, &s0, &len);
			const float *v = terms_at(&u, row, s0);
			for (size_t i = 0; i < len; i++)
				if (v[i] == u.thrf && ++seen == need) {
					u.cut = row * u.M + s0 + i;
					break;
				}
			break;
		}
	}
	int mean = gp->reduction == SL_RED_MEAN;
	u.scale = gp->weight / (mean ? (double)nsel : 1.0);
	if (g && !safe) {
		u.dry = 1;
		b = run(&u, P_GRAD, 0);
		u.dry = 0;
		if (b != 0) {
			*bad = u.bads[b - 1];
			rc = SL_ERR_INPUT;
			goto done;
		}
	}
	if ((b = run(&u, P_GRAD, 0)) != 0) {
		*bad = u.bads[b - 1];
		rc = SL_ERR_INPUT;
		goto done;
	}
	double sum = 0.0;
	for (size_t t = 0; t < u.ntask; t++)
		sum += u.part[t];
	*value = mean ? sum / (double)nsel : sum;
done:
	free(own);
	free(u.scr);
	free(u.hist);
	free(u.part);
	free(u.cnt);
	free(u.bads);
	free(u.cwf);
	return rc;
}
