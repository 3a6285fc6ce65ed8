/*
 * distance.c — the losses weighted by distance maps (docs/losses.md):
 *
 *   boundary      (Kervadec et al. 2019): mean of p·φ, φ the signed
 *                 distance map of the target, a constant;
 *   hausdorff_dt  (Karimi & Salcudean 2019): mean of (p - t)² (d_p^α + d_t^α),
 *                 d_p, d_t the distance maps of p > 0.5 and t > 0.5,
 *                 constants.
 *
 * Both need, for a binary image, the distance from each element to the
 * nearest element of the other side; one two-sided transform gives it
 * (sl_edt_opposite, src/metrics/edt.c). Maps are per (n, c), over the whole
 * image (the mask only says which terms count). Samples run on the threads
 * when there are enough of them, else the lines of each transform do; the
 * bits are the same either way (every sample's sums are its own, folded in
 * sample order). Lua-free.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "../metrics/metrics.h"
#include "../ops.h"
#include "generic.h"
#include "registry.h"
#include "validate.h"

enum { D_BOUNDARY, D_HAUSDORFF };

typedef struct dist_job {
	const sl_lossjob *j;
	const sl_genpart *gp;
	int kind;
	int sdim;
	size_t shape[3];
	double r[3], scale; /* sl_edt_scale: distance = sqrt(squared) * scale */
	double alpha;
	double w;  /* part weight / count (mean) or part weight (sum) */
	float *g;  /* gradient, or NULL */
} dist_job;

/* t > 0.5 and the prediction's p > 0.5 of one channel as bytes; returns the
 * number of ones. The sigmoid's p > 0.5 is x > 0 (the same set, without
 * the rounding of p). */
static size_t target_bits(const sl_lossjob *j, size_t n, size_t c, uint8_t *bits)
{
	size_t ones = 0, M = j->M;
	for (size_t s = 0; s < M; s++) {
		bits[s] = sl_gen_t(j, n, c, s) > 0.5f;
		ones += bits[s];
	}
	return ones;
}

static size_t pred_bits(const sl_lossjob *j, size_t n, size_t c, const float *pc, uint8_t *bits)
{
	size_t ones = 0, M = j->M;
	const float *xc = j->x + (n * j->C + c) * M;
	for (size_t s = 0; s < M; s++) {
		bits[s] = j->act == SL_ACT_SIGMOID ? xc[s] > 0.0f : pc[s] > 0.5f;
		ones += bits[s];
	}
	return ones;
}

/* The squared distances to the other side of bits (ones set of M), or
 * zeros when it is empty or full. */
static int opposite(const dist_job *dj, const uint8_t *bits, size_t ones, double *sq, const sl_exec *e)
{
	size_t M = dj->j->M;
	if (ones == 0 || ones == M) {
		memset(sq, 0, M * sizeof *sq);
		return SL_OK;
	}
	return sl_edt_opposite(bits, dj->sdim, dj->shape, dj->r, sq, e) == 0 ? SL_OK : SL_ERR_NOMEM;
}

/* d^α from a squared distance in transform units */
static double dpow(const dist_job *dj, double sq)
{
	if (dj->alpha == 2.0)
		return sq * (dj->scale * dj->scale);
	return pow(sqrt(sq) * dj->scale, dj->alpha);
}

/* One thread's buffers, reused for every sample it runs: p (and q) of a
 * sample, dL/dp (the softmax only: its chain needs every channel's), the
 * bits of one channel and its one or two transforms. */
typedef struct dist_scratch {
	float *p, *q;
	double *dp;
	uint8_t *bits;
	double *sq;
} dist_scratch;

static int scratch_init(const dist_job *dj, dist_scratch *sc)
{
	const sl_lossjob *j = dj->j;
	size_t CM = j->C * j->M, M = j->M;
	int sig = j->act == SL_ACT_SIGMOID;
	memset(sc, 0, sizeof *sc);
	sc->p = sl_mem_malloc((CM ? CM : 1) * sizeof *sc->p * (sig ? 2 : 1));
	sc->q = sig && sc->p ? sc->p + CM : NULL;
	sc->dp = dj->g && j->act == SL_ACT_SOFTMAX ? sl_mem_malloc((CM ? CM : 1) * sizeof *sc->dp) : NULL;
	sc->bits = sl_mem_malloc(M ? M : 1);
	sc->sq = sl_mem_malloc((M ? M : 1) * sizeof *sc->sq * (dj->kind == D_HAUSDORFF ? 2 : 1));
	if (!sc->p || (dj->g && j->act == SL_ACT_SOFTMAX && !sc->dp) || !sc->bits || !sc->sq)
		return SL_ERR_NOMEM;
	return SL_OK;
}

static void scratch_free(dist_scratch *sc)
{
	free(sc->p);
	free(sc->dp);
	free(sc->bits);
	free(sc->sq);
}

/* The gradient of element i = (n C + c) M + s written directly (the
 * sigmoid and "none": sl_gen_chain's arithmetic, element by element): a
 * non-finite one is kept out of g and recorded in *gb if it comes before
 * the one there in sl_gen_chain's order (s, then c). */
static inline void grad_direct(const dist_job *dj, size_t n, size_t c, size_t s, double d, float p, const float *q,
                               sl_bad *gb, size_t *gbkey)
{
	const sl_lossjob *j = dj->j;
	size_t C = j->C, M = j->M, i = (n * C + c) * M + s;
	if (q)
		d *= (double)p * (double)*q;
	float v = dj->g[i] + (float)(dj->w * d);
	if (isfinite(v)) {
		dj->g[i] = v;
		return;
	}
	size_t key = s * C + c;
	if (key < *gbkey) {
		*gbkey = key;
		*gb = (sl_bad){0};
		sl_record(gb, SL_BAD_GRAD, i, v);
	}
}

/* Sample n: its value (Σ w_c m ℓ) into *val, its gradient into dj->g, its
 * reduction "none" values into gp->vals. */
static int eval_sample(const dist_job *dj, dist_scratch *sc, const sl_exec *e, size_t n, double *val,
                       sl_bad *bad)
{
	const sl_lossjob *j = dj->j;
	const sl_genpart *gp = dj->gp;
	size_t C = j->C, M = j->M, CM = C * M;
	float *p = sc->p, *q = sc->q;
	int direct = dj->g && j->act != SL_ACT_SOFTMAX; /* the gradient without dp */
	double *dp = dj->g && !direct ? sc->dp : NULL;
	uint8_t *bits = sc->bits;
	double *sq = sc->sq;
	int rc = SL_ERR_NOMEM;
	double sum = 0.0;
	sl_bad gb = {0};
	size_t gbkey = SIZE_MAX;
	*val = 0.0;
	if (dp)
		memset(dp, 0, CM * sizeof *dp);
	sl_gen_probs(e, j, n, p, q);
	for (size_t c = (size_t)gp->c0; c < C; c++) {
		double wc = gp->cw ? gp->cw[c] : 1.0;
		const float *pc = p + c * M;
		const float *qc = q ? q + c * M : NULL;
		double *dpc = dp ? dp + c * M : NULL;
		float *vc = gp->vals ? gp->vals + (n * C + c) * M : NULL;
		double *sqp = sq + M;
		size_t tones = target_bits(j, n, c, bits);
		int flat = tones == 0 || tones == M;
		if ((rc = opposite(dj, bits, tones, sq, e)) != SL_OK)
			goto done;
		if (dj->kind == D_HAUSDORFF &&
		    (rc = opposite(dj, bits, pred_bits(j, n, c, pc, bits), sqp, e)) != SL_OK)
			goto done;
		if (dj->kind == D_BOUNDARY) {
			/* φ = d outside the target, -(d - 1) inside; 0 everywhere with
			 * an empty or a full target (no boundary) */
			const uint8_t *tb = bits;
			for (size_t s = 0; s < M; s++) {
				float m = sl_gen_m(j, n, c, s);
				double d = sqrt(sq[s]) * dj->scale;
				double phi = flat ? 0.0 : tb[s] ? -(d - 1.0) : d;
				double l = m != 0.0f ? (double)pc[s] * phi : 0.0;
				sum += wc * l;
				if (m != 0.0f) {
					if (dpc)
						dpc[s] = wc * phi;
					else if (direct)
						grad_direct(dj, n, c, s, wc * phi, pc[s], qc ? qc + s : NULL, &gb, &gbkey);
				} else if (direct)
					grad_direct(dj, n, c, s, 0.0, pc[s], qc ? qc + s : NULL, &gb, &gbkey);
				if (vc) {
					vc[s] = (float)l;
					if (!isfinite(vc[s])) {
						sl_record(bad, SL_BAD_VALUE, (n * C + c) * M + s, vc[s]);
						rc = SL_ERR_INPUT;
						goto done;
					}
				}
			}
		} else if (direct && qc && !j->m && !j->labels && !vc && dj->alpha == 2.0) {
			/* the usual case (sigmoid, no mask, dense targets, a mean or a
			 * sum, α = 2): the loop below with its tests taken out, the
			 * same arithmetic */
			const float *tc = j->t + (n * C + c) * M;
			double s2 = dj->scale * dj->scale;
			for (size_t s = 0; s < M; s++) {
				double t = (double)tc[s];
				double e1 = (double)pc[s] * (1.0 - t) - (double)qc[s] * t;
				double D = sq[s] * s2 + sqp[s] * s2;
				double l = e1 != 0.0 ? e1 * e1 * D : 0.0;
				sum += wc * l;
				grad_direct(dj, n, c, s, wc * 2.0 * e1 * D, pc[s], qc + s, &gb, &gbkey);
			}
		} else {
			for (size_t s = 0; s < M; s++) {
				float m = sl_gen_m(j, n, c, s);
				double t = (double)sl_gen_t(j, n, c, s);
				/* p - t without the cancellation of 1 - p near p = 1 */
				double e1 = qc ? (double)pc[s] * (1.0 - t) - (double)qc[s] * t : (double)pc[s] - t;
				double D = dpow(dj, sq[s]) + dpow(dj, sqp[s]);
				double l = m != 0.0f && e1 != 0.0 ? e1 * e1 * D : 0.0;
				sum += wc * l;
				if (m != 0.0f) {
					if (dpc)
						dpc[s] = wc * 2.0 * e1 * D;
					else if (direct)
						grad_direct(dj, n, c, s, wc * 2.0 * e1 * D, pc[s], qc ? qc + s : NULL, &gb,
						            &gbkey);
				} else if (direct)
					grad_direct(dj, n, c, s, 0.0, pc[s], qc ? qc + s : NULL, &gb, &gbkey);
				if (vc) {
					vc[s] = (float)l;
					if (!isfinite(vc[s])) {
						sl_record(bad, SL_BAD_VALUE, (n * C + c) * M + s, vc[s]);
						rc = SL_ERR_INPUT;
						goto done;
					}
				}
			}
		}
	}
	if (gp->vals && gp->c0 > 0)
		memset(gp->vals + n * C * M, 0, (size_t)gp->c0 * M * sizeof *gp->vals);
	rc = SL_OK;
	if (direct) {
		/* the channels before c0 get dp = 0, as in sl_gen_chain */
		for (size_t c = 0; c < (size_t)gp->c0; c++)
			for (size_t s = 0; s < M; s++)
				grad_direct(dj, n, c, s, 0.0, p[c * M + s], q ? q + c * M + s : NULL, &gb, &gbkey);
		if (gbkey != SIZE_MAX) {
			*bad = gb;
			rc = SL_ERR_INPUT;
		}
	} else if (dj->g)
		rc = sl_gen_chain(j, n, p, q, dp, dj->w, dj->g, bad);
	*val = sum;
done:
	return rc;
}

static int dist_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g, double *value,
                     sl_bad *bad, int kind)
{
	size_t N = j->N, C = j->C, M = j->M;
	dist_job dj = {.j = j, .gp = gp, .kind = kind, .sdim = gp->sdim, .g = g};
	for (int a = 0; a < 3; a++)
		dj.shape[a] = gp->shape[a];
	double diag;
	if (sl_edt_scale(gp->sdim, dj.shape, gp->spacing, dj.r, &dj.scale, &diag) != 0)
		dj.scale = 1.0, dj.r[0] = dj.r[1] = dj.r[2] = 1.0; /* the binding checks spacing */
	dj.alpha = kind == D_HAUSDORFF ? gp->opts[SL_O_ALPHA] : 1.0;
	*value = 0.0;
	/* the count of the mean: the valid elements of the included channels */
	double count = 0.0;
	size_t c0 = (size_t)gp->c0;
	if (!j->m)
		count = (double)N * (double)(C - c0) * (double)M;
	else
		for (size_t n = 0; n < N; n++)
			for (size_t c = c0; c < C; c++)
				for (size_t s = 0; s < M; s++)
					count += (double)sl_gen_m(j, n, c, s);
	if (gp->reduction == SL_RED_MEAN && count == 0.0) {
		if (gp->vals)
			memset(gp->vals, 0, N * C * M * sizeof *gp->vals);
		return SL_OK;
	}
	double inv = gp->reduction == SL_RED_MEAN ? 1.0 / count : 1.0;
	dj.w = gp->weight * inv;
	double *vals = malloc((N ? N : 1) * sizeof *vals);
	int *rcs = malloc((N ? N : 1) * sizeof *rcs);
	sl_bad *bads = malloc((N ? N : 1) * sizeof *bads);
	if (!vals || !rcs || !bads) {
		free(vals);
		free(rcs);
		free(bads);
		return SL_ERR_NOMEM;
	}
	int threads = e->threads > 0 ? e->threads : 1;
	if (threads > 1 && N >= (size_t)threads) {
		/* samples on the threads, each transform on one */
		sl_exec e1 = {e->k, 1, NULL};
#pragma omp parallel num_threads(threads)
		{
			dist_scratch sc;
			int ok = scratch_init(&dj, &sc) == SL_OK;
#pragma omp for schedule(static)
			for (size_t n = 0; n < N; n++) {
				sl_note_team(e);
				bads[n] = (sl_bad){0};
				vals[n] = 0.0;
				rcs[n] = ok ? eval_sample(&dj, &sc, &e1, n, &vals[n], &bads[n]) : SL_ERR_NOMEM;
			}
			scratch_free(&sc);
		}
	} else {
		dist_scratch sc;
		int ok = scratch_init(&dj, &sc) == SL_OK;
		for (size_t n = 0; n < N; n++) {
			bads[n] = (sl_bad){0};
			vals[n] = 0.0;
			rcs[n] = ok ? eval_sample(&dj, &sc, e, n, &vals[n], &bads[n]) : SL_ERR_NOMEM;
		}
		scratch_free(&sc);
	}
	int rc = SL_OK;
	double sum = 0.0;
	for (size_t n = 0; n < N && rc == SL_OK; n++) {
		rc = rcs[n];
		if (rc == SL_ERR_INPUT)
			*bad = bads[n];
		sum += vals[n];
	}
	free(vals);
	free(rcs);
	free(bads);
	if (rc != SL_OK)
		return rc;
	*value = sum * inv;
	if (!isfinite(*value)) {
		sl_record(bad, SL_BAD_GRAD, 0, (float)*value);
		return SL_ERR_INPUT;
	}
	return SL_OK;
}

int sl_boundary_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g, double *value,
                     sl_bad *bad)
{
	return dist_eval(e, j, gp, g, value, bad, D_BOUNDARY);
}

int sl_hausdorff_dt_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                         double *value, sl_bad *bad)
{
	return dist_eval(e, j, gp, g, value, bad, D_HAUSDORFF);
}

int sl_dist_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape)
{
	(void)opts;
	for (int i = 0; i < ndim; i++)
		shape[i] = xshape[i];
	return ndim;
}
