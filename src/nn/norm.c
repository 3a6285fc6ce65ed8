/*
 * norm.c — batch and instance normalisation, forward and backward; see
 * layers.h.
 *
 * Forward: one statistics pass (per plane and block of SL_BLOCK elements,
 * Σ (x - K) and Σ (x - K)² in double with K the plane's or channel's first
 * element, so that the one-pass variance does not cancel when |mean| >> std)
 * and one apply pass, y = x a + b with a = w invstd and b = bias - mean a per
 * plane. Backward: one pass for Σ gy and Σ gy (x - mean), one for gx.
 * Partials are folded in (sample, block) order: the same bits for any
 * thread count.
 */
#include <assert.h>
#include <math.h>

#include "layers.h"

/* The work runs in windows of at most WINDOW statistics tasks (plane,
 * block of SL_BLOCK), taken in (channel, sample, block) order: each window's
 * partials and the coefficients of the statistics it completes live on the
 * stack, so a call allocates nothing whatever the shape. The partials fold
 * in that order, which is each statistic's (sample, block) order: the same
 * bits for any thread count and any window size. */
#define WINDOW 512

typedef struct normrun {
	const sl_exec *e;
	const sl_normjob *j;
	const float *x, *gy;
	size_t nb;   /* blocks per plane */
	int inst;
} normrun;

/* task t of the (channel, sample, block) order: its plane and first element */
static inline size_t task_plane(const normrun *r, size_t t, size_t *i)
{
	size_t N = r->j->N, C = r->j->C, q = t / r->nb;
	*i = (t % r->nb) * SL_BLOCK;
	return (q % N) * C + q / N;
}

/* The partials (2 doubles each) of tasks [t0, t1): moments of x about the
 * statistic's first element (gy == NULL), or Σ gy and Σ gy (x - mean). */
static void stats_window(const normrun *r, size_t t0, size_t t1, double *part)
{
	const sl_normjob *j = r->j;
	size_t M = j->M, C = j->C;
	const sl_exec *e = r->e;
	int nt = sl_exec_threads(e, (t1 - t0) * (M < SL_BLOCK ? M : SL_BLOCK));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t t = t0; t < t1; t++) {
		sl_note_team(e);
		size_t i, p = task_plane(r, t, &i), n = M - i < SL_BLOCK ? M - i : SL_BLOCK;
		const float *xp = r->x + p * M + i;
		double *q = part + 2 * (t - t0);
		if (r->gy)
			e->k->nn->norm_bstats(n, xp, r->gy + p * M + i, j->mean[r->inst ? p : p % C], &q[0],
			                      &q[1]);
		else
			e->k->nn->moments(n, xp, r->inst ? r->x[p * M] : r->x[(p % C) * M], &q[0], &q[1]);
	}
}

/* The apply pass over the planes q0 <= q < q1 of the (channel, sample)
 * order. coef: 4 floats per statistic, the first statistic's being those of
 * q0 (forward: a, b; backward: mean, gm, k, s); NULL in eval mode, whose
 * coefficients are computed per task from the running statistics. */
static void apply_window(const normrun *r, size_t q0, size_t q1, const float *coef, float *out)
{
	const sl_normjob *j = r->j;
	size_t M = j->M, N = j->N, C = j->C, nb = r->nb, per = r->inst ? 1 : N;
	size_t ntask = (q1 - q0) * nb;
	const sl_exec *e = r->e;
	int nt = sl_exec_threads(e, (q1 - q0) * M);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t t = 0; t < ntask; t++) {
		sl_note_team(e);
		size_t i, p = task_plane(r, q0 * nb + t, &i), n = M - i < SL_BLOCK ? M - i : SL_BLOCK;
		size_t o = p * M + i, c = p % C;
		const float *k = coef ? coef + 4 * ((q0 + t / nb) / per - q0 / per) : NULL;
		if (!r->gy) {
			if (k) {
				e->k->nn->affine(n, r->x + o, k[0], k[1], out + o);
			} else {
				double invstd = 1.0 / sqrt((double)j->rvar[c] + j->eps), mean = (double)j->rmean[c];
				double w = j->w ? (double)j->w[c] : 1.0, b = j->b ? (double)j->b[c] : 0.0;
				e->k->nn->affine(n, r->x + o, (float)(w * invstd), (float)(b - mean * w * invstd),
				                 out + o);
			}
		} else if (!k) {
			float s = (float)((double)j->invstd[c] * (j->w ? (double)j->w[c] : 1.0));
			e->k->binop('*', n, r->gy + o, NULL, s, 0, out + o);
		} else {
			e->k->nn->norm_bwd(n, r->x + o, r->gy + o, out + o, k[0], k[1], k[2], k[3]);
		}
	}
}

/* The forward coefficients of statistic i (channel, or plane in instance
 * mode) from its sums about shift; writes mean, invstd, the running
 * statistics. */
static void forward_stat(const sl_normjob *j, int inst, size_t i, double shift, double s1,
                         double s2, float *k)
{
	double cnt = inst ? (double)j->M : (double)(j->N * j->M);
	double d = s1 / cnt, mean = shift + d;
	double var = s2 / cnt - d * d;
	if (var < 0.0)
		var = 0.0;
	double invstd = 1.0 / sqrt(var + j->eps);
	j->mean[i] = (float)mean;
	j->invstd[i] = (float)invstd;
	if (!inst && j->rmean) {
		double m = j->momentum;
		j->rmean[i] = (float)((1.0 - m) * (double)j->rmean[i] + m * mean);
		j->rvar[i] = (float)((1.0 - m) * (double)j->rvar[i] + m * var * cnt / (cnt - 1.0));
	}
	/* the plane coefficients in double; the statistics' own floats only
	 * for the backward, as PyTorch saves them */
	size_t c = inst ? i % j->C : i;
	double w = j->w ? (double)j->w[c] : 1.0, b = j->b ? (double)j->b[c] : 0.0;
	k[0] = (float)(w * invstd);
	k[1] = (float)(b - mean * w * invstd);
}

/* The windows: statistics, folds, coefficients, apply. */
static void run(const normrun *r, float *out, float *gw, float *gb)
{
	const sl_normjob *j = r->j;
	size_t N = j->N, C = j->C, M = j->M, nb = r->nb, ntask = C * N * nb;
	int bwd = r->gy != NULL, eval = j->mode == SL_NORM_EVAL;
	double part[2 * WINDOW];
	float coef[4 * WINDOW];
	double a = 0.0, b = 0.0, sw = 0.0, sb = 0.0; /* running: statistic, channel */
	size_t qdone = 0;                            /* planes applied */
	for (size_t t0 = 0; t0 < ntask; t0 += WINDOW) {
		size_t t1 = ntask - t0 < WINDOW ? ntask : t0 + WINDOW, nstat = 0, qend = qdone;
		stats_window(r, t0, t1, part);
		for (size_t t = t0; t < t1; t++) {
			a += part[2 * (t - t0)];
			b += part[2 * (t - t0) + 1];
			size_t q = t / nb, c = q / N, n = q % N, p = n * C + c;
			int stat_end = t % nb == nb - 1 && (r->inst || n == N - 1);
			if (!stat_end)
				continue;
			size_t i = r->inst ? p : c;
			float *k = coef + 4 * nstat++;
			if (!bwd) {
				forward_stat(j, r->inst, i, (double)r->x[(r->inst ? p : c) * M], a, b, k);
			} else {
				double invstd = (double)j->invstd[i];
				/* gw, gb: Σ over the planes of channel c, from 0 (instance);
				 * the channel's sums themselves (batch) */
				sw = r->inst ? sw + b * invstd : b * invstd;
				sb = r->inst ? sb + a : a;
				if (n == N - 1) { /* channel c complete */
					if (gw)
						gw[c] = (float)((double)gw[c] + sw);
					if (gb)
						gb[c] = (float)((double)gb[c] + sb);
					sw = sb = 0.0;
				}
				double cnt = r->inst ? (double)M : (double)(N * M);
				double w = j->w ? (double)j->w[c] : 1.0;
				k[0] = j->mean[i];
				k[1] = (float)(a / cnt);
				k[2] = (float)(b / cnt * invstd * invstd);
				k[3] = (float)(invstd * w);
			}
			a = b = 0.0;
			qend = q + 1;
		}
		if (qend > qdone && !eval) {
			apply_window(r, qdone, qend, coef, out);
			qdone = qend;
		}
	}
	if (eval) /* the backward's statistics were for gw and gb only */
		apply_window(r, 0, C * N, NULL, out);
}

int sl_nn_norm(const sl_exec *e, const sl_normjob *j, const float *x, float *y)
{
	normrun r = {e, j, x, NULL, (j->M + SL_BLOCK - 1) / SL_BLOCK, j->mode == SL_NORM_INSTANCE};
	if (j->mode != SL_NORM_EVAL) {
		run(&r, y, NULL, NULL);
		return 0;
	}
	for (size_t c = 0; c < j->C; c++) {
		j->mean[c] = j->rmean[c];
		j->invstd[c] = (float)(1.0 / sqrt((double)j->rvar[c] + j->eps));
	}
	apply_window(&r, 0, j->C * j->N, NULL, y);
	return 0;
}

int sl_nn_norm_bwd(const sl_exec *e, const sl_normjob *j, const float *x, const float *gy,
                   float *gx, float *gw, float *gb)
{
	normrun r = {e, j, x, gy, (j->M + SL_BLOCK - 1) / SL_BLOCK, j->mode == SL_NORM_INSTANCE};
	if (j->mode == SL_NORM_EVAL && !gw && !gb)
		apply_window(&r, 0, j->C * j->N, NULL, gx);
	else
		run(&r, gx, gw, gb);
	return 0;
}
