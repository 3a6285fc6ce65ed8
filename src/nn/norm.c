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
#include <stdlib.h>

#include "layers.h"

/* Partials on the stack up to this many (plane, block) tasks. */
#define STACK_TASKS 512

/* The per-task partials (2 doubles each) of the statistics pass: moments of
 * x (gy == NULL) or the backward sums. mean: per plane (shift or mean). */
static void stats_pass(const sl_exec *e, const sl_normjob *j, const float *x, const float *gy,
                       const float *shift, double *part)
{
	size_t P = j->N * j->C, M = j->M, nb = (M + SL_BLOCK - 1) / SL_BLOCK, ntask = P * nb;
	int nt = sl_exec_threads(e, P * M);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t t = 0; t < ntask; t++) {
		sl_note_team(e);
		size_t p = t / nb, i = (t % nb) * SL_BLOCK, n = M - i < SL_BLOCK ? M - i : SL_BLOCK;
		const float *xp = x + p * M + i;
		if (gy)
			e->k->nn->norm_bstats(n, xp, gy + p * M + i, shift[p], &part[2 * t], &part[2 * t + 1]);
		else
			e->k->nn->moments(n, xp, shift[p], &part[2 * t], &part[2 * t + 1]);
	}
}

/* The sums of the planes of channel c (batch) or of plane p (instance),
 * folded in (sample, block) order. */
static void fold(const sl_normjob *j, const double *part, size_t idx, int per_channel, double *s1,
                 double *s2)
{
	size_t nb = (j->M + SL_BLOCK - 1) / SL_BLOCK;
	double a = 0.0, b = 0.0;
	size_t n0 = per_channel ? 0 : idx / j->C, n1 = per_channel ? j->N : n0 + 1;
	size_t c = per_channel ? idx : idx % j->C;
	for (size_t n = n0; n < n1; n++)
		for (size_t k = 0; k < nb; k++) {
			const double *q = part + 2 * ((n * j->C + c) * nb + k);
			a += q[0];
			b += q[1];
		}
	*s1 = a;
	*s2 = b;
}

static void apply_pass(const sl_exec *e, const sl_normjob *j, const float *x, const float *gy,
                       const float *c0, const float *c1, const float *c2, const float *c3,
                       float *out)
{
	size_t P = j->N * j->C, M = j->M, nb = (M + SL_BLOCK - 1) / SL_BLOCK, ntask = P * nb;
	int nt = sl_exec_threads(e, P * M);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t t = 0; t < ntask; t++) {
		sl_note_team(e);
		size_t p = t / nb, i = (t % nb) * SL_BLOCK, n = M - i < SL_BLOCK ? M - i : SL_BLOCK;
		size_t o = p * M + i;
		if (!gy)
			e->k->nn->affine(n, x + o, c0[p], c1[p], out + o);
		else if (j->mode == SL_NORM_EVAL)
			e->k->binop('*', n, gy + o, NULL, c0[p], 0, out + o);
		else
			e->k->nn->norm_bwd(n, x + o, gy + o, out + o, c0[p], c1[p], c2[p], c3[p]);
	}
}

/* Scratch: the partials and 4 floats per plane. */
typedef struct scratch {
	double *part;
	float *c;
	double stack[2 * STACK_TASKS];
	float cstack[4 * STACK_TASKS];
} scratch;

static int scratch_get(scratch *s, size_t ntask, size_t P)
{
	s->part = ntask <= STACK_TASKS ? s->stack : malloc(2 * ntask * sizeof(double));
	s->c = P <= STACK_TASKS ? s->cstack : malloc(4 * P * sizeof(float));
	return s->part && s->c ? 0 : -1;
}

static void scratch_free(scratch *s)
{
	if (s->part != s->stack)
		free(s->part);
	if (s->c != s->cstack)
		free(s->c);
}

int sl_nn_norm(const sl_exec *e, const sl_normjob *j, const float *x, float *y)
{
	size_t N = j->N, C = j->C, M = j->M, P = N * C, nb = (M + SL_BLOCK - 1) / SL_BLOCK;
	int inst = j->mode == SL_NORM_INSTANCE;
	scratch s;
	if (scratch_get(&s, P * nb, P) != 0) {
		scratch_free(&s);
		return -1;
	}
	float *ca = s.c, *cb = s.c + P, *shift = s.c + 2 * P;
	if (j->mode != SL_NORM_EVAL) {
		for (size_t p = 0; p < P; p++)
			shift[p] = inst ? x[p * M] : x[(p % C) * M];
		stats_pass(e, j, x, NULL, shift, s.part);
		size_t nstat = inst ? P : C;
		double cnt = inst ? (double)M : (double)(N * M);
		for (size_t i = 0; i < nstat; i++) {
			double s1, s2;
			fold(j, s.part, i, !inst, &s1, &s2);
			/* shift[i]: plane i (instance), or channel i's first plane (batch) */
			double d = s1 / cnt, mean = (double)shift[i] + d;
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
			/* the plane coefficients in double; the statistics' own floats
			 * only for the backward, as PyTorch saves them */
			for (size_t n = inst ? i / C : 0; n < (inst ? i / C + 1 : N); n++) {
				size_t c = inst ? i % C : i, p = n * C + c;
				double w = j->w ? (double)j->w[c] : 1.0, b = j->b ? (double)j->b[c] : 0.0;
				ca[p] = (float)(w * invstd);
				cb[p] = (float)(b - mean * w * invstd);
			}
		}
	} else {
		for (size_t c = 0; c < C; c++) {
			double mean = (double)j->rmean[c], invstd = 1.0 / sqrt((double)j->rvar[c] + j->eps);
			double w = j->w ? (double)j->w[c] : 1.0, b = j->b ? (double)j->b[c] : 0.0;
			j->mean[c] = (float)mean;
			j->invstd[c] = (float)invstd;
			for (size_t n = 0; n < N; n++) {
				ca[n * C + c] = (float)(w * invstd);
				cb[n * C + c] = (float)(b - mean * w * invstd);
			}
		}
	}
	apply_pass(e, j, x, NULL, ca, cb, NULL, NULL, y);
	scratch_free(&s);
	return 0;
}

int sl_nn_norm_bwd(const sl_exec *e, const sl_normjob *j, const float *x, const float *gy,
                   float *gx, float *gw, float *gb)
{
	size_t N = j->N, C = j->C, M = j->M, P = N * C, nb = (M + SL_BLOCK - 1) / SL_BLOCK;
	int inst = j->mode == SL_NORM_INSTANCE, eval = j->mode == SL_NORM_EVAL;
	scratch s;
	if (scratch_get(&s, P * nb, P) != 0) {
		scratch_free(&s);
		return -1;
	}
	float *cmean = s.c, *cgm = s.c + P, *ck = s.c + 2 * P, *cs = s.c + 3 * P;
	for (size_t p = 0; p < P; p++)
		cmean[p] = j->mean[inst ? p : p % C];
	if (!eval || gw || gb) {
		/* Σ gy and Σ gy (x - mean) per plane, then per channel */
		stats_pass(e, j, x, gy, cmean, s.part);
		size_t nstat = inst ? P : C;
		double cnt = inst ? (double)M : (double)(N * M);
		for (size_t c = 0; c < C && (gw || gb); c++) {
			/* the parameters' gradients sum over every plane of channel c */
			double sw = 0.0, sb = 0.0, s1, s2;
			if (inst) {
				for (size_t n = 0; n < N; n++) {
					fold(j, s.part, n * C + c, 0, &s1, &s2);
					sw += s2 * (double)j->invstd[n * C + c];
					sb += s1;
				}
			} else {
				fold(j, s.part, c, 1, &s1, &s2);
				sw = s2 * (double)j->invstd[c];
				sb = s1;
			}
			if (gw)
				gw[c] = (float)((double)gw[c] + sw);
			if (gb)
				gb[c] = (float)((double)gb[c] + sb);
		}
		for (size_t i = 0; i < nstat && !eval; i++) {
			double s1, s2;
			fold(j, s.part, i, !inst, &s1, &s2);
			double invstd = (double)j->invstd[i];
			size_t c0 = inst ? i % C : i;
			double w = j->w ? (double)j->w[c0] : 1.0;
			for (size_t n = inst ? i / C : 0; n < (inst ? i / C + 1 : N); n++) {
				size_t p = n * C + c0;
				cgm[p] = (float)(s1 / cnt);
				ck[p] = (float)(s2 / cnt * invstd * invstd);
				cs[p] = (float)(invstd * w);
			}
		}
	}
	if (eval)
		for (size_t p = 0; p < P; p++) {
			size_t c = p % C;
			cmean[p] = (float)((double)j->invstd[c] * (j->w ? (double)j->w[c] : 1.0));
		}
	apply_pass(e, j, x, gy, cmean, cgm, ck, cs, gx);
	scratch_free(&s);
	return 0;
}
