/*
 * edt.c — exact Euclidean distance transforms (Felzenszwalb & Huttenlocher,
 * "Distance Transforms of Sampled Functions", Theory of Computing 2012) and
 * the surface distances built on them. Lua-free.
 *
 * The squared distance is separable: a 1-D transform along each axis in
 * turn, each one the lower envelope of the parabolas h²(q - p)² + f(p), is
 * exact for the Euclidean distance with axis weights h (the spacing).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "metrics.h"

int sl_edt_scale(int ndim, const size_t *shape, const double *spacing, double *r, double *scale,
                 double *diagonal)
{
	/* the largest and smallest spacing along the axes that have neighbours
	 * (the spacing of an axis of size 1 never enters a distance) */
	double hmax = 0.0, hmin = INFINITY;
	for (int a = 0; a < ndim; a++)
		if (shape[a] > 1) {
			hmax = spacing[a] > hmax ? spacing[a] : hmax;
			hmin = spacing[a] < hmin ? spacing[a] : hmin;
		}
	if (hmax == 0.0)
		hmax = hmin = 1.0;
	/* physical units while their squares are far from the double range's
	 * ends (the usual case, and SciPy's arithmetic), else units of hmax */
	*scale = hmin >= 0x1p-200 && hmax <= 0x1p+200 ? 1.0 : hmax;
	double diag = 0.0;
	for (int a = 0; a < ndim; a++) {
		r[a] = shape[a] > 1 ? spacing[a] / *scale : 1.0;
		if (shape[a] > 1 && !(spacing[a] / hmax >= SL_EDT_MINRATIO))
			return -1;
		diag += ((double)shape[a] * r[a]) * ((double)shape[a] * r[a]);
	}
	/* every distance, and the diagonal, must be finite in physical units */
	*diagonal = sqrt(diag) * *scale;
	return isfinite(*diagonal) ? 0 : -1;
}

/* d[q] = min_p h2 (q - p)² + f[p] over the finite f[p]; v (n) and z (n + 1)
 * are scratch. h2 is the squared spacing of the axis (sl_edt_scale), a
 * normal double in [2^-1000, 2^400]. */
static void dt1d(const double *f, size_t n, double h2, double *d, size_t *v, double *z)
{
	size_t first = 0;
	while (first < n && isinf(f[first]))
		first++;
	if (first == n) {
		for (size_t q = 0; q < n; q++)
			d[q] = INFINITY;
		return;
	}
	size_t k = 0;
	v[0] = first;
	z[0] = -INFINITY;
	z[1] = INFINITY;
	for (size_t q = first + 1; q < n; q++) {
		if (isinf(f[q]))
			continue;
		/* where parabola q starts to lie below parabola v[k]:
		 * s = ((f[q] - f[p]) / h2 / (q - p) + (q + p)) / 2, which may be
		 * ±Inf (never NaN: f is finite and h2 > 0); drop the parabolas that
		 * q hides, and if it hides all of them it is the new first one */
		double s;
		for (;;) {
			size_t p = v[k];
			s = ((f[q] - f[p]) / h2 / (double)(q - p) + (double)(q + p)) * 0.5;
			if (s > z[k] || k == 0)
				break;
			k--;
		}
		if (!(s > z[k])) { /* k == 0: q lies below v[0] everywhere */
			v[0] = q;
			z[1] = INFINITY;
			continue;
		}
		k++;
		v[k] = q;
		z[k] = s;
		z[k + 1] = INFINITY;
	}
	k = 0;
	for (size_t q = 0; q < n; q++) {
		while (z[k + 1] < (double)q)
			k++;
		double dq = (double)q - (double)v[k];
		d[q] = h2 * dq * dq + f[v[k]];
	}
}

int sl_edt_sq(const uint8_t *src, int ndim, const size_t *shape, const double *r, double *out,
              const sl_exec *e)
{
	size_t total = 1, maxn = 1;
	for (int a = 0; a < ndim; a++) {
		total *= shape[a];
		maxn = shape[a] > maxn ? shape[a] : maxn;
	}
	for (size_t i = 0; i < total; i++)
		out[i] = src[i] ? 0.0 : (double)INFINITY;
	int failed = 0, threads = e->threads > 0 ? e->threads : 1;
	/* the contiguous axis first, then the others; any order gives the same */
	for (int a = ndim - 1; a >= 0; a--) {
		size_t n = shape[a], stride = 1;
		for (int b = a + 1; b < ndim; b++)
			stride *= shape[b];
		size_t lines = total / n;
		double h2 = r[a] * r[a];
		if (n == 1)
			continue;
#pragma omp parallel num_threads(threads) if (threads > 1 && lines > 64)
		{
			double *f = malloc((3 * maxn + 1) * sizeof(double));
			size_t *v = malloc(maxn * sizeof(size_t));
			if (!f || !v) {
#pragma omp atomic write
				failed = 1;
			}
#pragma omp for schedule(static)
			for (size_t l = 0; l < lines; l++) {
				sl_note_team(e);
				if (!f || !v)
					continue;
				/* line l: the other coordinates, outer and inner to axis a */
				size_t base = (l / stride) * stride * n + l % stride;
				double *d = f + maxn, *z = f + 2 * maxn;
				for (size_t q = 0; q < n; q++)
					f[q] = out[base + q * stride];
				dt1d(f, n, h2, d, v, z);
				for (size_t q = 0; q < n; q++)
					out[base + q * stride] = d[q];
			}
			free(f);
			free(v);
		}
		if (failed)
			return -1;
	}
	return 0;
}

/* One run [a0, c0] of a line of the two-sided transform (sl_edt_opposite):
 * f[q] = h2 (q - p)² + f[p] minimised over the run's finite f[p] and over
 * its ends a0 - 1 (if hasl) and c0 + 1 (if hasr), which hold the other
 * value at distance 0; written over f[a0..c0] (each f is read before any
 * is written). vp, vf (n + 2) and z (n + 3) are scratch: the parabolas of
 * the lower envelope, their positions, values and left ends. */
static void opp_run(double *f, size_t a0, size_t c0, int hasl, int hasr, double h2, double *vp, double *vf,
                    double *z)
{
	size_t k = 0;
	int any = 0;
	for (size_t i = a0 - (size_t)hasl; i <= c0 + (size_t)hasr; i++) {
		double fq = i < a0 || i > c0 ? 0.0 : f[i], q = (double)i;
		if (isinf(fq))
			continue;
		if (!any) {
			any = 1;
			vp[0] = q;
			vf[0] = fq;
			z[0] = -INFINITY;
			z[1] = INFINITY;
			continue;
		}
		/* as dt1d: where parabola q starts to lie below parabola k; drop
		 * those it hides */
		double s;
		for (;;) {
			/* h2 == 1 (unit spacing): the division by it is exact, skipped */
			double df = h2 == 1.0 ? fq - vf[k] : (fq - vf[k]) / h2;
			s = (df / (q - vp[k]) + (q + vp[k])) * 0.5;
			if (s > z[k] || k == 0)
				break;
			k--;
		}
		if (!(s > z[k])) {
			vp[0] = q;
			vf[0] = fq;
			z[1] = INFINITY;
			continue;
		}
		k++;
		vp[k] = q;
		vf[k] = fq;
		z[k] = s;
		z[k + 1] = INFINITY;
	}
	if (!any) {
		for (size_t i = a0; i <= c0; i++)
			f[i] = INFINITY;
		return;
	}
	k = 0;
	for (size_t i = a0; i <= c0; i++) {
		double q = (double)i;
		while (z[k + 1] < q)
			k++;
		double dq = q - vp[k];
		f[i] = h2 * dq * dq + vf[k];
	}
}

/* A short run [a0, c0] with the other value at both ends, unit spacing and
 * integer f (see the caller): each f[q] = min of f[q], (q - a0 + 1)²,
 * (c0 + 1 - q)² and (q - p)² + f[p] over the run, directly (no envelope:
 * the noisy maps of a prediction are mostly such runs). Exact integers:
 * the same minima as opp_run. O(len²) at most: runs up to OPP_SHORT. */
#define OPP_SHORT 64
static void opp_short(double *f, size_t a0, size_t c0)
{
	double g[OPP_SHORT];
	size_t len = c0 - a0 + 1;
	for (size_t i = 0; i < len; i++)
		g[i] = f[a0 + i];
	for (size_t i = 0; i < len; i++) {
		/* the nearer end at m steps: only |i - p| < m can do better */
		size_t m = i + 1 < len - i ? i + 1 : len - i;
		double best = (double)m * (double)m;
		for (size_t p = i + 1 - m; p < i + m; p++) {
			double dq = (double)i - (double)p, v = dq * dq + g[p];
			best = v < best ? v : best;
		}
		f[a0 + i] = best;
	}
}

/* Lines gathered together along a non-contiguous axis: neighbours in
 * memory, so that a gather reads whole cache lines. */
#define OPP_LINES 8

int sl_edt_opposite(const uint8_t *b, int ndim, const size_t *shape, const double *r, double *out,
                    const sl_exec *e)
{
	size_t total = 1, maxn = 1;
	for (int a = 0; a < ndim; a++) {
		total *= shape[a];
		maxn = shape[a] > maxn ? shape[a] : maxn;
	}
	if (total == 0)
		return 0;
	int failed = 0, threads = e && e->threads > 0 ? e->threads : 1;
	/* unit spacing on every axis: every f is an integer (or +Inf) at most
	 * Σ n², exact in a double, as are the sums of opp_short */
	int unit = 1;
	double sumsq = 0.0;
	for (int a = 0; a < ndim; a++) {
		unit = unit && r[a] == 1.0;
		sumsq += (double)shape[a] * (double)shape[a];
	}
	unit = unit && 4.0 * sumsq < 0x1p52;
	/* the contiguous axis: the distance to the nearer end of the run, +1 */
	{
		size_t n = shape[ndim - 1], lines = total / n;
		double h2 = r[ndim - 1] * r[ndim - 1];
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && lines > 64)
		for (size_t l = 0; l < lines; l++) {
			if (e)
				sl_note_team(e);
			const uint8_t *bl = b + l * n;
			double *ol = out + l * n;
			for (size_t a0 = 0; a0 < n;) {
				size_t c0 = a0;
				uint8_t v = bl[a0] != 0;
				while (c0 + 1 < n && (bl[c0 + 1] != 0) == v)
					c0++;
				int hasl = a0 > 0, hasr = c0 + 1 < n;
				for (size_t q = a0; q <= c0; q++) {
					double dl = hasl ? (double)(q - a0 + 1) : (double)INFINITY;
					double dr = hasr ? (double)(c0 + 1 - q) : (double)INFINITY;
					double dd = dl < dr ? dl : dr;
					ol[q] = h2 * dd * dd; /* +Inf stays +Inf */
				}
				a0 = c0 + 1;
			}
		}
	}
	/* the other axes: the envelope of each run */
	for (int a = ndim - 2; a >= 0; a--) {
		size_t n = shape[a], stride = 1;
		for (int c = a + 1; c < ndim; c++)
			stride *= shape[c];
		if (n == 1)
			continue;
		size_t outer = total / (n * stride), blocks = (stride + OPP_LINES - 1) / OPP_LINES;
		size_t items = outer * blocks;
		double h2 = r[a] * r[a];
#pragma omp parallel num_threads(threads) if (threads > 1 && items > 8)
		{
			double *f = malloc((OPP_LINES * maxn + 3 * maxn + 7) * sizeof(double));
			uint8_t *bb = malloc(OPP_LINES * maxn);
			if (!f || !bb) {
#pragma omp atomic write
				failed = 1;
			}
#pragma omp for schedule(static)
			for (size_t it = 0; it < items; it++) {
				if (e)
					sl_note_team(e);
				if (!f || !bb)
					continue;
				double *vp = f + OPP_LINES * maxn, *vf = vp + maxn + 2, *z = vf + maxn + 2;
				size_t o = it / blocks, i0 = (it % blocks) * OPP_LINES;
				size_t kb = stride - i0 < OPP_LINES ? stride - i0 : OPP_LINES;
				size_t base = o * n * stride + i0;
				for (size_t q = 0; q < n; q++) {
					const double *src = out + base + q * stride;
					const uint8_t *bs = b + base + q * stride;
					for (size_t k = 0; k < kb; k++) {
						f[k * maxn + q] = src[k];
						bb[k * maxn + q] = bs[k] != 0;
					}
				}
				for (size_t k = 0; k < kb; k++) {
					double *fl = f + k * maxn;
					const uint8_t *bl = bb + k * maxn;
					for (size_t a0 = 0; a0 < n;) {
						size_t c0 = a0;
						while (c0 + 1 < n && bl[c0 + 1] == bl[a0])
							c0++;
						if (unit && a0 > 0 && c0 + 1 < n && c0 - a0 < 2) {
							/* the other value next to each: 1, the
							 * least (every f is at least 1 here) */
							fl[a0] = 1.0;
							fl[c0] = 1.0;
						} else if (unit && a0 > 0 && c0 + 1 < n && c0 - a0 < OPP_SHORT)
							opp_short(fl, a0, c0);
						else
							opp_run(fl, a0, c0, a0 > 0, c0 + 1 < n, h2, vp, vf, z);
						a0 = c0 + 1;
					}
				}
				for (size_t q = 0; q < n; q++) {
					double *dst = out + base + q * stride;
					for (size_t k = 0; k < kb; k++)
						dst[k] = f[k * maxn + q];
				}
			}
			free(f);
			free(bb);
		}
		if (failed)
			return -1;
	}
	return 0;
}

/* shape as 3-D, leading axes of size 1 */
static void as3(int ndim, const size_t *shape, size_t *s3)
{
	for (int a = 0; a < 3; a++)
		s3[a] = 1;
	for (int a = 0; a < ndim; a++)
		s3[3 - ndim + a] = shape[a];
}

size_t sl_mask_edges(const uint8_t *mask, int ndim, const size_t *shape, uint8_t *edge)
{
	size_t s[3];
	as3(ndim, shape, s);
	size_t st1 = s[2], st0 = s[1] * s[2], count = 0;
	int r0 = ndim >= 3, r1 = ndim >= 2; /* real axes, not the padding of as3 */
	for (size_t i0 = 0; i0 < s[0]; i0++)
		for (size_t i1 = 0; i1 < s[1]; i1++) {
			size_t row = i0 * st0 + i1 * st1;
			for (size_t i2 = 0; i2 < s[2]; i2++) {
				size_t i = row + i2;
				uint8_t e = 0;
				if (mask[i]) {
					/* an edge if a cross neighbour is background or outside the
					 * image (the image's own axes, also of size 1) */
					e = (i2 == 0 || i2 + 1 == s[2] || !mask[i - 1] || !mask[i + 1]) ||
					    (r1 && (i1 == 0 || i1 + 1 == s[1] || !mask[i - st1] || !mask[i + st1])) ||
					    (r0 && (i0 == 0 || i0 + 1 == s[0] || !mask[i - st0] || !mask[i + st0]));
				}
				edge[i] = e;
				count += e;
			}
		}
	return count;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* numpy.percentile's default: linear interpolation between order statistics */
static double percentile(double *a, size_t n, double q)
{
	qsort(a, n, sizeof *a, cmp_double);
	double pos = (double)(n - 1) * q / 100.0;
	size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : n - 1;
	return a[lo] + (pos - (double)lo) * (a[hi] - a[lo]);
}

/* Distances from the edge voxels of `from` to the nearest edge voxel of `to`
 * (both given as edge maps of the box `sub`), appended to dist. */
static int directed(const uint8_t *from, const uint8_t *to, int ndim, const size_t *sub,
                    const double *r, double scale, double *sq, double *dist, size_t *nd,
                    const sl_exec *e)
{
	size_t total = 1;
	for (int a = 0; a < ndim; a++)
		total *= sub[a];
	if (sl_edt_sq(to, ndim, sub, r, sq, e) != 0)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < total; i++)
		if (from[i])
			dist[k++] = sqrt(sq[i]) * scale;
	*nd = k;
	return 0;
}

int sl_surface_distances(const uint8_t *pred, const uint8_t *target, int ndim, const size_t *shape,
                         const double *r, double scale, double tolerance, double empty_distance,
                         const sl_exec *e, sl_surface *out)
{
	size_t total = 1;
	for (int a = 0; a < ndim; a++)
		total *= shape[a];
	memset(out, 0, sizeof *out);
	uint8_t *ep = sl_mem_malloc(2 * total);
	if (!ep)
		return -1;
	uint8_t *eg = ep + total;
	size_t np = sl_mask_edges(pred, ndim, shape, ep), ng = sl_mask_edges(target, ndim, shape, eg);
	out->pred_edges = np;
	out->target_edges = ng;
	if (np == 0 || ng == 0) {
		/* a non-empty mask always has edges: no edges is an empty mask */
		int both = np == 0 && ng == 0;
		out->hd = out->hd95 = out->assd = both ? 0.0 : empty_distance;
		out->nsd = both ? 1.0 : 0.0;
		free(ep);
		return 0;
	}
	/* the box holding both surfaces: all sources and queries lie in it, so
	 * the transform of the box alone gives the same distances */
	size_t s3[3], lo[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX}, hi[3] = {0, 0, 0}, sub[3];
	as3(ndim, shape, s3);
	size_t st1 = s3[2], st0 = s3[1] * s3[2];
	for (size_t i0 = 0; i0 < s3[0]; i0++)
		for (size_t i1 = 0; i1 < s3[1]; i1++) {
			size_t row = i0 * st0 + i1 * st1;
			for (size_t i2 = 0; i2 < s3[2]; i2++) {
				if (!ep[row + i2] && !eg[row + i2])
					continue;
				size_t c[3] = {i0, i1, i2};
				for (int a = 0; a < 3; a++) {
					lo[a] = c[a] < lo[a] ? c[a] : lo[a];
					hi[a] = c[a] > hi[a] ? c[a] : hi[a];
				}
			}
		}
	size_t subn = 1;
	for (int a = 0; a < 3; a++) {
		sub[a] = hi[a] - lo[a] + 1;
		subn *= sub[a];
	}
	uint8_t *sp = sl_mem_malloc(2 * subn);
	double *sq = sl_mem_malloc(subn * sizeof(double));
	double *d1 = sl_mem_malloc((np + ng) * sizeof(double));
	int rc = -1;
	if (!sp || !sq || !d1)
		goto done;
	uint8_t *sg = sp + subn;
	size_t j = 0;
	for (size_t i0 = lo[0]; i0 <= hi[0]; i0++)
		for (size_t i1 = lo[1]; i1 <= hi[1]; i1++) {
			size_t row = i0 * st0 + i1 * st1 + lo[2];
			memcpy(sp + j, ep + row, sub[2]);
			memcpy(sg + j, eg + row, sub[2]);
			j += sub[2];
		}
	/* the box in the caller's dimensions */
	size_t subd[SL_EDT_MAXDIM];
	for (int a = 0; a < ndim; a++)
		subd[a] = sub[3 - ndim + a];
	size_t n1, n2;
	double *d2 = d1 + np;
	if (directed(sp, sg, ndim, subd, r, scale, sq, d1, &n1, e) != 0 ||
	    directed(sg, sp, ndim, subd, r, scale, sq, d2, &n2, e) != 0)
		goto done;
	double sum = 0.0, mx = 0.0;
	size_t within = 0;
	for (size_t k = 0; k < np + ng; k++) {
		sum += d1[k];
		mx = d1[k] > mx ? d1[k] : mx;
		within += d1[k] <= tolerance;
	}
	out->hd = mx;
	out->assd = sum / (double)(np + ng);
	out->nsd = (double)within / (double)(np + ng);
	double p1 = percentile(d1, np, 95.0), p2 = percentile(d2, ng, 95.0);
	out->hd95 = p1 > p2 ? p1 : p2;
	rc = 0;
done:
	free(ep);
	free(sp);
	free(sq);
	free(d1);
	return rc;
}
