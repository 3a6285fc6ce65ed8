/*
 * interp.h — PyTorch's linear interpolation weights (align_corners=False),
 * computed per index on the fly, and the scalar formulas of the scale-2
 * rows at any column. Shared by the drivers (src/nn/layers.c) and every
 * backend (the SIMD backends take their edge columns from here), so that a
 * column is computed by one formula whatever path reaches it.
 */
#ifndef SL_INTERP_H
#define SL_INTERP_H

#include <stddef.h>

/* One output index o of an axis of n inputs scaled by s: it reads i0 and
 * i1 with weights l0 and l1 (i1 = i0 at the last input). As UpSample.h
 * computes them (area_pixel_compute_source_index and
 * compute_source_index_and_lambda), in float. For s = 2 the weights are
 * exact: 1 and 0 at o = 0, else 0.25 and 0.75 (o even) or 0.75 and 0.25. */
static inline void sl_lin_at(size_t o, size_t n, size_t s, size_t *i0, size_t *i1, float *l0,
                             float *l1)
{
	float src;
	size_t a;
	if (s == 1) {
		src = (float)o;
		a = o;
	} else {
		src = (float)(1.0 / (double)s) * ((float)o + 0.5f) - 0.5f;
		if (src < 0.0f)
			src = 0.0f;
		a = (size_t)src;
	}
	float w1 = src - (float)a;
	w1 = w1 < 0.0f ? 0.0f : w1 > 1.0f ? 1.0f : w1;
	*i0 = a;
	*i1 = a + (a + 1 < n ? 1 : 0);
	*l1 = w1;
	*l0 = 1.0f - w1;
}

/* sl_lin_at for s = 2 without the float arithmetic: the same values (the
 * weights are exact), cheaper per row and per edge column. */
static inline void sl_lin2_at(size_t o, size_t n, size_t *i0, size_t *i1, float *l0, float *l1)
{
	size_t k = o / 2;
	if (o == 0) {
		*i0 = 0;
		*i1 = n > 1 ? 1 : 0;
		*l0 = 1.0f;
		*l1 = 0.0f;
	} else if (o % 2 == 0) {
		*i0 = k - 1;
		*i1 = k;
		*l0 = 0.25f;
		*l1 = 0.75f;
	} else {
		*i0 = k;
		*i1 = k + 1 < n ? k + 1 : k;
		*l0 = 0.75f;
		*l1 = 0.25f;
	}
}

/* The adjoint's pairs of input i: the outputs o that read i, in increasing
 * o, each with the weight it reads i with (l0 + l1 where i0 = i1 = i).
 * Writes at most 2 s + 2 pairs; returns their count. */
static inline size_t sl_lin_adj(size_t i, size_t n, size_t s, size_t *o, float *w)
{
	/* the outputs reading i have i0 in {i - 1, i}: o in about
	 * [(i - 1) s, (i + 2) s); one s of margin on either side */
	size_t no = n * s, lo = i >= 2 ? (i - 2) * s : 0, hi = (i + 3) * s < no ? (i + 3) * s : no;
	if (s == 2) /* o in [2i - 2, 2i + 2] */
		lo = i >= 1 ? 2 * i - 2 : 0, hi = 2 * i + 3 < no ? 2 * i + 3 : no;
	size_t k = 0;
	for (size_t q = lo; q < hi; q++) {
		size_t a, b;
		float l0, l1;
		if (s == 2)
			sl_lin2_at(q, n, &a, &b, &l0, &l1);
		else
			sl_lin_at(q, n, s, &a, &b, &l0, &l1);
		if (a == i && b == i) {
			o[k] = q;
			w[k++] = l0 + l1;
		} else if (a == i) {
			o[k] = q;
			w[k++] = l0;
		} else if (b == i) {
			o[k] = q;
			w[k++] = l1;
		}
	}
	return k;
}

/* Scale 2, forward, output column o (< 2 w) of nr = 2 input rows (2-D) or
 * 4 (3-D, two depths of two rows), vertical weights wt = {wy0, wy1, wz0,
 * wz1}: h(r) = r[i0] l0 + r[i1] l1 along x, then h(r0) wy0 + h(r1) wy1, and
 * in 3-D (h(r0) wy0 + h(r1) wy1) wz0 + (h(r2) wy0 + h(r3) wy1) wz1 —
 * PyTorch's order. */
static inline float sl_up2_at(size_t w, size_t nr, const float *const *rows, const float *wt,
                              size_t o)
{
	size_t i0, i1;
	float l0, l1, h[4] = {0.0f, 0.0f, 0.0f, 0.0f};
	sl_lin2_at(o, w, &i0, &i1, &l0, &l1);
	for (size_t r = 0; r < nr; r++)
		h[r] = rows[r][i0] * l0 + rows[r][i1] * l1;
	float v = h[0] * wt[0] + h[1] * wt[1];
	if (nr == 4)
		v = v * wt[2] + (h[2] * wt[0] + h[3] * wt[1]) * wt[3];
	return v;
}

/* Scale 2, adjoint, input column i (< w): rows[z ny + y] is the gradient
 * row of the y-th pair (weight wy[y]) of the z-th pair (wz[z]); nz = 0 in
 * 2-D (no depth). t(r) = Σ aw r[ao] over the column's pairs along x, from
 * 0; then Σ wy t in 2-D, Σ_z wz (Σ_y wy t) in 3-D, each from 0 and in pair
 * order. */
static inline float sl_up2_adj_at(size_t w, size_t nz, const float *wz, size_t ny,
                                  const float *wy, const float *const *rows, size_t i)
{
	size_t ao[6], na;
	float aw[6];
	na = sl_lin_adj(i, w, 2, ao, aw);
	float acc = 0.0f;
	for (size_t z = 0; z < (nz ? nz : 1); z++) {
		float ty = 0.0f;
		for (size_t y = 0; y < ny; y++) {
			const float *g = rows[z * ny + y];
			float t = 0.0f;
			for (size_t a = 0; a < na; a++)
				t = t + aw[a] * g[ao[a]];
			ty = ty + wy[y] * t;
		}
		acc = nz ? acc + wz[z] * ty : ty;
	}
	return acc;
}

#endif
