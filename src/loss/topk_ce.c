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
 * The selection is a radix select on the terms' float bits, never a sort:
 * a term t >= 0 is the key bits(t) + 1 (0 marks a masked term, below every
 * valid one), and three histogram passes over the keys (bits 31-21, 20-10,
 * 9-0) find the threshold key and how many of its ties are kept; when only
 * some of them are, a count per task finds the flat index of the last one
 * kept. Histograms are integer counts, so they do not depend on the order
 * of the additions; the value (the selected terms summed in double per task,
 * folded in task order) and the gradient (the selected terms' own, 0
 * elsewhere) are the same bits for any thread count.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../kern/kern.h"
#include "../ops.h"
#include "generic.h"
#include "registry.h"
#include "validate.h"

#define TK_BS 4096 /* terms per task: fixed, whatever the thread count */
#define NBIN 2048

typedef struct tk {
	const sl_exec *e;
	const sl_lossjob *j;
	const sl_genpart *gp;
	size_t C, M, rows, per, ntask, nterm;
	int ce, act, c0;
	float feps;
	uint32_t *key;   /* nterm keys */
	float *scr;      /* per thread: (3 C + 2) TK_BS floats */
	size_t nscr;
	uint64_t *hist;  /* per thread: NBIN counts */
	double *part;    /* per task: Σ of the selected terms */
	uint64_t *cnt;   /* per task: a count */
	sl_bad *bads;
	/* the selection: key > thr, or key == thr and flat index <= cut */
	uint32_t thr;
	size_t cut;
	double scale;    /* gradient factor: weight / count (mean) or weight (sum) */
	float *g;
	float *vals;
} tk;

static inline uint32_t key_of(float t)
{
	uint32_t b;
	if (!(t > 0.0f))
		t = 0.0f; /* -0 and 0 alike */
	memcpy(&b, &t, sizeof b);
	return b + 1u;
}

static inline float term_of(uint32_t key)
{
	float t;
	uint32_t b = key - 1u;
	memcpy(&t, &b, sizeof t);
	return t;
}

static inline double cweight(const tk *u, size_t c) { return u->gp->cw ? u->gp->cw[c] : 1.0; }

/* task -> (row: n for ce, n C + c for bce; the first position; the count) */
static void task_at(const tk *u, size_t task, size_t *row, size_t *s0, size_t *len)
{
	*row = task / u->per;
	*s0 = (task % u->per) * TK_BS;
	*len = u->M - *s0 < TK_BS ? u->M - *s0 : TK_BS;
}

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
			S[i] = xc[i] > S[i] ? xc[i] : S[i];
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

static inline double mask_pix(const sl_lossjob *j, size_t n, size_t s)
{
	if (!j->m)
		return 1.0;
	return j->mask_full ? (double)j->m[n * j->C * j->M + s] : (double)j->m[n * j->M + s];
}

static inline double targ(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	if (j->labels)
		return j->t[n * j->M + s] == (float)c ? 1.0 : 0.0;
	return (double)j->t[(n * j->C + c) * j->M + s];
}

/* The keys of one task, their top-digit histogram, and the valid count. */
static void terms_task(tk *u, size_t task, int tid)
{
	const sl_lossjob *j = u->j;
	const sl_kern *k = u->e->k;
	size_t row, s0, len, C = u->C, M = u->M;
	task_at(u, task, &row, &s0, &len);
	float *scr = u->scr + (size_t)tid * u->nscr;
	uint64_t *h = u->hist + (size_t)tid * NBIN;
	uint32_t *key = u->key + row * M + s0;
	uint64_t valid = 0;
	if (u->ce) {
		size_t n = row;
		if (j->m && j->mask_full && C > 1)
			for (size_t c = 1; c < C; c++)
				for (size_t i = 0; i < len; i++) {
					size_t a = (n * C + c) * M + s0 + i;
					if (j->m[a] != j->m[n * C * M + s0 + i]) {
						sl_record(&u->bads[task], SL_BAD_MASK_CHAN, a, j->m[a]);
						return;
					}
				}
		if (u->act == SL_ACT_SOFTMAX) {
			softmax_block(u, scr, n, s0, len);
			const float *z = scr, *ls = scr + 2 * C * TK_BS;
			for (size_t i = 0; i < len; i++) {
				size_t s = s0 + i;
				if (mask_pix(j, n, s) == 0.0) {
					key[i] = 0;
					continue;
				}
				double v = 0.0, l = (double)ls[i];
				if (j->labels) {
					size_t y = (size_t)j->t[n * M + s];
					if (y >= (size_t)u->c0)
						v = cweight(u, y) * (l - (double)z[y * TK_BS + i]);
				} else {
					for (size_t c = (size_t)u->c0; c < C; c++) {
						double t = targ(j, n, c, s);
						if (t != 0.0)
							v += cweight(u, c) * t * (l - (double)z[c * TK_BS + i]);
					}
				}
				key[i] = key_of((float)v);
				valid++;
				h[key[i] >> 21]++;
			}
		} else { /* none: -Σ w t log max(p, eps) */
			const float *xn = j->x + n * C * M + s0;
			float *lp = scr;
			for (size_t c = 0; c < C; c++)
				for (size_t i = 0; i < len; i++) {
					float p = xn[c * M + i];
					lp[c * TK_BS + i] = p < u->feps ? u->feps : p;
				}
			for (size_t c = 0; c < C; c++)
				k->log(len, lp + c * TK_BS, lp + c * TK_BS);
			for (size_t i = 0; i < len; i++) {
				size_t s = s0 + i;
				if (mask_pix(j, n, s) == 0.0) {
					key[i] = 0;
					continue;
				}
				double v = 0.0;
				for (size_t c = (size_t)u->c0; c < C; c++) {
					double t = targ(j, n, c, s);
					if (t != 0.0)
						v -= cweight(u, c) * t * (double)lp[c * TK_BS + i];
				}
				key[i] = key_of((float)v);
				valid++;
				h[key[i] >> 21]++;
			}
		}
	} else { /* bce of channel c of sample n */
		size_t n = row / C, c = row % C;
		const float *xc = j->x + row * M + s0;
		float *a = scr, *b = scr + TK_BS;
		if (c < (size_t)u->c0) {
			memset(key, 0, len * sizeof *key);
			return;
		}
		if (u->act == SL_ACT_SIGMOID) {
			for (size_t i = 0; i < len; i++)
				a[i] = -xc[i];
			k->softplus(len, a, a);  /* -log p */
			k->softplus(len, xc, b); /* -log q */
		} else {
			for (size_t i = 0; i < len; i++) {
				float p = xc[i], q = 1.0f - p;
				a[i] = p < u->feps ? u->feps : p;
				b[i] = q < u->feps ? u->feps : q;
			}
			k->log(len, a, a);
			k->log(len, b, b);
			for (size_t i = 0; i < len; i++) {
				a[i] = -a[i];
				b[i] = -b[i];
			}
		}
		double w = cweight(u, c);
		for (size_t i = 0; i < len; i++) {
			size_t s = s0 + i;
			double m = !j->m ? 1.0 : j->mask_full ? (double)j->m[row * M + s] : (double)j->m[n * M + s];
			if (m == 0.0) {
				key[i] = 0;
				continue;
			}
			double t = targ(j, n, c, s);
			double v = w * (t * (double)a[i] + (1.0 - t) * (double)b[i]);
			key[i] = key_of((float)v);
			valid++;
			h[key[i] >> 21]++;
		}
	}
	u->cnt[task] = valid;
}

/* ---- the selection ------------------------------------------------------ */

enum { P_TERMS, P_DIGIT2, P_DIGIT3, P_TIES, P_GRAD };

static void digit_task(tk *u, size_t task, int tid, int pass, uint32_t prefix)
{
	size_t row, s0, len;
	task_at(u, task, &row, &s0, &len);
	const uint32_t *key = u->key + row * u->M + s0;
	uint64_t *h = u->hist + (size_t)tid * NBIN;
	if (pass == P_DIGIT2) {
		for (size_t i = 0; i < len; i++)
			if (key[i] >> 21 == prefix)
				h[(key[i] >> 10) & 0x7FFu]++;
	} else if (pass == P_DIGIT3) {
		for (size_t i = 0; i < len; i++)
			if (key[i] >> 10 == prefix)
				h[key[i] & 0x3FFu]++;
	} else { /* P_TIES */
		uint64_t c = 0;
		for (size_t i = 0; i < len; i++)
			c += key[i] == prefix;
		u->cnt[task] = c;
	}
}

/* ---- value and gradient ------------------------------------------------- */

static inline int selected(const tk *u, uint32_t key, size_t idx)
{
	return key > u->thr || (key == u->thr && idx <= u->cut);
}

static void grad_task(tk *u, size_t task, int tid)
{
	const sl_lossjob *j = u->j;
	size_t row, s0, len, C = u->C, M = u->M;
	task_at(u, task, &row, &s0, &len);
	const uint32_t *key = u->key + row * M + s0;
	size_t base = row * M + s0;
	double sum = 0.0;
	int any = 0;
	for (size_t i = 0; i < len; i++)
		if (selected(u, key[i], base + i)) {
			sum += (double)term_of(key[i]);
			any = 1;
			if (u->vals)
				u->vals[base + i] = term_of(key[i]);
		}
	u->part[task] = sum;
	if (!u->g || !any)
		return;
	float *scr = u->scr + (size_t)tid * u->nscr;
	double sc = u->scale;
	if (u->ce) {
		size_t n = row;
		const float *xn = j->x + n * C * M + s0;
		float *gn = u->g + n * C * M + s0;
		const float *ez = scr + C * TK_BS, *S = scr + 2 * C * TK_BS + TK_BS;
		if (u->act == SL_ACT_SOFTMAX)
			softmax_block(u, scr, n, s0, len);
		for (size_t i = 0; i < len; i++) {
			if (!selected(u, key[i], base + i))
				continue;
			size_t s = s0 + i;
			if (u->act == SL_ACT_SOFTMAX) {
				/* dℓ/dx_c = p_c W - w_c t_c, W = Σ w_c t_c */
				double W = 0.0, is = 1.0 / (double)S[i];
				for (size_t c = (size_t)u->c0; c < C; c++)
					W += cweight(u, c) * targ(j, n, c, s);
				for (size_t c = 0; c < C; c++) {
					double t = c >= (size_t)u->c0 ? cweight(u, c) * targ(j, n, c, s) : 0.0;
					double d = (double)ez[c * TK_BS + i] * is * W - t;
					float v = gn[c * M + i] + (float)(sc * d);
					if (!isfinite(v)) {
						sl_record(&u->bads[task], SL_BAD_GRAD, (n * C + c) * M + s, v);
						return;
					}
					gn[c * M + i] = v;
				}
			} else {
				for (size_t c = 0; c < C; c++) {
					double p = xn[c * M + i], d = 0.0;
					double t = c >= (size_t)u->c0 ? targ(j, n, c, s) : 0.0;
					if (t != 0.0 && p >= (double)u->feps)
						d = -cweight(u, c) * t / p;
					float v = gn[c * M + i] + (float)(sc * d);
					if (!isfinite(v)) {
						sl_record(&u->bads[task], SL_BAD_GRAD, (n * C + c) * M + s, v);
						return;
					}
					gn[c * M + i] = v;
				}
			}
		}
	} else {
		size_t n = row / C, c = row % C;
		const float *xc = j->x + row * M + s0;
		float *gc = u->g + row * M + s0, *p = scr, *q = scr + TK_BS;
		double w = cweight(u, c);
		if (u->act == SL_ACT_SIGMOID)
			u->e->k->sigpq(len, xc, p, q, NULL);
		for (size_t i = 0; i < len; i++) {
			if (!selected(u, key[i], base + i))
				continue;
			double t = targ(j, n, c, s0 + i), d;
			if (u->act == SL_ACT_SIGMOID) {
				d = w * ((double)p[i] * (1.0 - t) - (double)q[i] * t); /* p - t */
			} else {
				double pv = xc[i], qv = 1.0 - pv, e = (double)u->feps;
				d = -w * ((pv >= e ? t / pv : 0.0) - (qv >= e ? (1.0 - t) / qv : 0.0));
			}
			float v = gc[i] + (float)(sc * d);
			if (!isfinite(v)) {
				sl_record(&u->bads[task], SL_BAD_GRAD, row * M + s0 + i, v);
				return;
			}
			gc[i] = v;
		}
	}
}

/* ---- the part -------------------------------------------------------- */

static int run(tk *u, int pass, uint32_t prefix)
{
	int nt = sl_exec_threads(u->e, u->j->N * u->C * u->M);
	if ((size_t)nt > u->ntask)
		nt = (int)u->ntask;
	if (pass <= P_DIGIT3)
		memset(u->hist, 0, (size_t)(nt > 0 ? nt : 1) * NBIN * sizeof *u->hist);
	if (nt <= 1) {
		for (size_t t = 0; t < u->ntask; t++) {
			if (pass == P_TERMS)
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
			if (pass == P_TERMS)
				terms_task(u, t, tid);
			else if (pass == P_GRAD)
				grad_task(u, t, tid);
			else
				digit_task(u, t, tid, pass, prefix);
		}
		/* the threads' histograms into the first (integer sums: any order) */
		if (pass <= P_DIGIT3)
			for (int t = 1; t < nt; t++)
				for (size_t b = 0; b < NBIN; b++)
					u->hist[b] += u->hist[(size_t)t * NBIN + b];
	}
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
	int nt = e->threads > 0 ? e->threads : 1;
	u.nscr = (3 * u.C + 2) * TK_BS;
	u.key = malloc((u.nterm ? u.nterm : 1) * sizeof *u.key);
	u.scr = malloc((size_t)nt * u.nscr * sizeof *u.scr);
	u.hist = malloc((size_t)nt * NBIN * sizeof *u.hist);
	u.part = malloc((u.ntask ? u.ntask : 1) * sizeof *u.part);
	u.cnt = calloc(u.ntask ? u.ntask : 1, sizeof *u.cnt);
	u.bads = calloc(u.ntask ? u.ntask : 1, sizeof *u.bads);
	int rc = SL_OK, b;
	*value = 0.0;
	if (!u.key || !u.scr || !u.hist || !u.part || !u.cnt || !u.bads) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	if (u.vals)
		memset(u.vals, 0, u.nterm * sizeof *u.vals);
	if ((b = run(&u, P_TERMS, 0)) != 0) {
		*bad = u.bads[b - 1];
		rc = SL_ERR_INPUT;
		goto done;
	}
	uint64_t K = 0;
	for (size_t t = 0; t < u.ntask; t++)
		K += u.cnt[t];
	if (K == 0)
		goto done; /* a mean over nothing: 0, gradient 0 */
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
			const uint32_t *key = u.key + row * u.M + s0;
			for (size_t i = 0; i < len; i++)
				if (key[i] == u.thr && ++seen == need) {
					u.cut = row * u.M + s0 + i;
					break;
				}
			break;
		}
	}
	int mean = gp->reduction == SL_RED_MEAN;
	u.scale = gp->weight / (mean ? (double)nsel : 1.0);
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
	free(u.key);
	free(u.scr);
	free(u.hist);
	free(u.part);
	free(u.cnt);
	free(u.bads);
	return rc;
}
