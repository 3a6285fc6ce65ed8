/*
 * validate.h — element access and input checks shared by the scalar kernels
 * and the driver's generic passes. Lua-free.
 */
#ifndef SL_VALIDATE_H
#define SL_VALIDATE_H

#include <math.h>

#include "loss.h"

/* t for (n, c, s): a dense target, or the one-hot of a label map */
static inline double sl_tval(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	if (j->labels)
		return j->t[n * j->M + s] == (float)c ? 1.0 : 0.0;
	return (double)j->t[(n * j->C + c) * j->M + s];
}

static inline size_t sl_midx(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	return j->mask_full ? (n * j->C + c) * j->M + s : n * j->M + s;
}

static inline double sl_mval(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	return j->m ? (double)j->m[sl_midx(j, n, c, s)] : 1.0;
}

static inline int sl_record(sl_bad *bad, int kind, size_t index, float value)
{
	bad->kind = kind;
	bad->index = index;
	bad->value = value;
	return 1;
}

/* Checks x at flat index i; returns 1 (and records it) if it is bad. */
static inline int sl_bad_x(const sl_lossjob *j, size_t i, sl_bad *bad)
{
	float v = j->x[i];
	if (!isfinite(v))
		return sl_record(bad, SL_BAD_X_NONFINITE, i, v);
	if (j->act == SL_ACT_NONE && !j->x_real && !(v >= 0.0f && v <= 1.0f))
		return sl_record(bad, SL_BAD_X_RANGE, i, v);
	return 0;
}

/* Checks t and m of element (n, c, s). A label and a (N,1,M) mask value are
 * checked at c == 0 only, so that each value is checked once. */
static inline int sl_bad_tm(const sl_lossjob *j, size_t n, size_t c, size_t s, sl_bad *bad)
{
	if (j->labels) {
		size_t i = n * j->M + s;
		float v = j->t[i];
		if (c == 0 && !(v >= 0.0f && v < (float)j->C && v == floorf(v)))
			return sl_record(bad, SL_BAD_LABEL, i, v);
	} else {
		size_t i = (n * j->C + c) * j->M + s;
		float v = j->t[i];
		if (!(v >= 0.0f && v <= 1.0f))
			return sl_record(bad, SL_BAD_T, i, v);
	}
	if (j->m && (j->mask_full || c == 0)) {
		size_t i = sl_midx(j, n, c, s);
		float v = j->m[i];
		if (v != 0.0f && v != 1.0f)
			return sl_record(bad, SL_BAD_MASK, i, v);
	}
	return 0;
}

#endif
