/*
 * generic.c — the shared steps of the generic losses (generic.h).
 */
#include <math.h>
#include <string.h>

#include "../kern/kern.h"
#include "../ops.h"
#include "generic.h"
#include "validate.h"

void sl_gen_probs(const sl_exec *e, const sl_lossjob *j, size_t n, float *p, float *q)
{
	size_t C = j->C, M = j->M;
	const float *x = j->x + n * C * M;
	switch (j->act) {
	case SL_ACT_SIGMOID:
		if (q)
			e->k->sigpq(C * M, x, p, q, NULL);
		else
			e->k->sigmoid(C * M, x, p);
		break;
	case SL_ACT_SOFTMAX:
		e->k->softmax(C, M, 0, M, x, p);
		break;
	default:
		memcpy(p, x, C * M * sizeof *p);
		break;
	}
}

void sl_gen_targets(const sl_lossjob *j, size_t n, float *t, float *m)
{
	size_t C = j->C, M = j->M;
	if (t) {
		if (j->labels) {
			const float *lab = j->t + n * M;
			for (size_t c = 0; c < C; c++)
				for (size_t s = 0; s < M; s++)
					t[c * M + s] = lab[s] == (float)c ? 1.0f : 0.0f;
		} else {
			memcpy(t, j->t + n * C * M, C * M * sizeof *t);
		}
	}
	if (m) {
		if (!j->m)
			for (size_t i = 0; i < C * M; i++)
				m[i] = 1.0f;
		else if (j->mask_full)
			memcpy(m, j->m + n * C * M, C * M * sizeof *m);
		else
			for (size_t c = 0; c < C; c++)
				memcpy(m + c * M, j->m + n * M, M * sizeof *m);
	}
}

int sl_gen_chain(const sl_lossjob *j, size_t n, const float *p, const float *q, const double *dp, double w,
                 float *g, sl_bad *bad)
{
	size_t C = j->C, M = j->M;
	float *gn = g + n * C * M;
	for (size_t s = 0; s < M; s++) {
		double dot = 0.0;
		if (j->act == SL_ACT_SOFTMAX)
			for (size_t c = 0; c < C; c++)
				dot += (double)p[c * M + s] * dp[c * M + s];
		for (size_t c = 0; c < C; c++) {
			size_t i = c * M + s;
			double d = dp[i];
			if (j->act == SL_ACT_SIGMOID)
				d *= (double)p[i] * (q ? (double)q[i] : 1.0 - (double)p[i]);
			else if (j->act == SL_ACT_SOFTMAX)
				d = (double)p[i] * (d - dot);
			float v = gn[i] + (float)(w * d);
			if (!isfinite(v)) {
				sl_record(bad, SL_BAD_GRAD, n * C * M + i, v);
				return SL_ERR_INPUT;
			}
			gn[i] = v;
		}
	}
	return SL_OK;
}
