/*
 * nn_scalar.c — the network kernels of the scalar reference backend
 * (nnkern.h). The SIMD backends (nn_simd.h) compute the same expressions in
 * the same order, lane by lane.
 */
#include <assert.h>
#include <math.h>

#include "kern.h"

static void act__scalar(size_t n, const float *x, float *y, float slope)
{
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		y[i] = v > 0.0f ? v : v * slope;
	}
}

static void act_bwd__scalar(size_t n, const float *x, const float *gy, float *gx, float slope)
{
	for (size_t i = 0; i < n; i++) {
		float g = gy[i];
		gx[i] = x[i] > 0.0f ? g : g * slope;
	}
}

/* PyTorch's rule: a later value replaces the maximum if it is greater or NaN */
static inline int takes(float v, float m) { return v > m || isnan(v); }

static void pool2__scalar(size_t wo, size_t nr, const float *const *rows, float *y)
{
	assert(nr == 2 || nr == 4);
	for (size_t j = 0; j < wo; j++) {
		float m = rows[0][2 * j];
		for (size_t r = 0; r < nr; r++)
			for (size_t c = r ? 0 : 1; c < 2; c++) {
				float v = rows[r][2 * j + c];
				if (takes(v, m))
					m = v;
			}
		y[j] = m;
	}
}

static void pool2_bwd__scalar(size_t wo, size_t w, size_t nr, const float *const *rows,
                              const float *gy, float *const *grows)
{
	assert((nr == 2 || nr == 4) && (w == 2 * wo || w == 2 * wo + 1));
	for (size_t j = 0; j < wo; j++) {
		float m = rows[0][2 * j];
		size_t best = 0; /* r * 2 + c */
		for (size_t r = 0; r < nr; r++)
			for (size_t c = r ? 0 : 1; c < 2; c++) {
				float v = rows[r][2 * j + c];
				if (takes(v, m)) {
					m = v;
					best = 2 * r + c;
				}
			}
		for (size_t r = 0; r < nr; r++)
			for (size_t c = 0; c < 2; c++)
				grows[r][2 * j + c] = best == 2 * r + c ? gy[j] : 0.0f;
	}
	if (w > 2 * wo)
		for (size_t r = 0; r < nr; r++)
			grows[r][w - 1] = 0.0f;
}

static void moments__scalar(size_t n, const float *x, float shift, double *s1, double *s2)
{
	assert(n <= SL_BLOCK);
	double a = 0.0, b = 0.0, k = (double)shift;
	for (size_t i = 0; i < n; i++) {
		double d = (double)x[i] - k;
		a += d;
		b += d * d;
	}
	*s1 = a;
	*s2 = b;
}

static void affine__scalar(size_t n, const float *x, float a, float b, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] * a + b;
}

static void norm_bstats__scalar(size_t n, const float *x, const float *gy, float mean, double *sg,
                                double *sgx)
{
	assert(n <= SL_BLOCK);
	double a = 0.0, b = 0.0, mu = (double)mean;
	for (size_t i = 0; i < n; i++) {
		double g = (double)gy[i];
		a += g;
		b += g * ((double)x[i] - mu);
	}
	*sg = a;
	*sgx = b;
}

static void norm_bwd__scalar(size_t n, const float *x, const float *gy, float *gx, float mean,
                             float gm, float k, float s)
{
	for (size_t i = 0; i < n; i++)
		gx[i] = ((gy[i] - gm) - (x[i] - mean) * k) * s;
}

static void lerp__scalar(size_t n, const float *a, float wa, const float *b, float wb, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] * wa + b[i] * wb;
}

static void axpy__scalar(size_t n, float w, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = y[i] + w * x[i];
}

/* the vertical blend of the horizontal values h of nr rows (interp.h) */
static inline float up2_blend(size_t nr, const float *h, const float *wt)
{
	float v = h[0] * wt[0] + h[1] * wt[1];
	if (nr == 4)
		v = v * wt[2] + (h[2] * wt[0] + h[3] * wt[1]) * wt[3];
	return v;
}

static void up2__scalar(size_t w, size_t nr, const float *const *rows, const float *wt, float *y)
{
	assert(nr == 2 || nr == 4);
	/* inside, output 2k - 1 reads r[k-1] 0.75 + r[k] 0.25 and output 2k
	 * reads r[k-1] 0.25 + r[k] 0.75 (1 <= k < w); the first and the last
	 * output clamp */
	y[0] = sl_up2_at(w, nr, rows, wt, 0);
	for (size_t k = 1; k < w; k++) {
		float ho[4], he[4];
		for (size_t r = 0; r < nr; r++) {
			ho[r] = rows[r][k - 1] * 0.75f + rows[r][k] * 0.25f;
			he[r] = rows[r][k - 1] * 0.25f + rows[r][k] * 0.75f;
		}
		y[2 * k - 1] = up2_blend(nr, ho, wt);
		y[2 * k] = up2_blend(nr, he, wt);
	}
	y[2 * w - 1] = sl_up2_at(w, nr, rows, wt, 2 * w - 1);
}

static void up2_adj__scalar(size_t w, size_t nz, const float *wz, size_t ny, const float *wy,
                            const float *const *rows, float *gx)
{
	/* inside (2 <= i <= w - 2) input i is read by outputs 2i - 1 .. 2i + 2
	 * with weights 0.25 0.75 0.75 0.25; the columns 0, 1 and w - 1 by the
	 * edge rules */
	for (size_t i = 0; i < w; i++) {
		if (i < 2 || i + 1 >= w) {
			gx[i] = sl_up2_adj_at(w, nz, wz, ny, wy, rows, i);
			continue;
		}
		float acc = 0.0f;
		for (size_t z = 0; z < (nz ? nz : 1); z++) {
			float ty = 0.0f;
			for (size_t yy = 0; yy < ny; yy++) {
				const float *g = rows[z * ny + yy] + 2 * i;
				float t = 0.0f;
				t = t + 0.25f * g[-1];
				t = t + 0.75f * g[0];
				t = t + 0.75f * g[1];
				t = t + 0.25f * g[2];
				ty = ty + wy[yy] * t;
			}
			acc = nz ? acc + wz[z] * ty : ty;
		}
		gx[i] = acc;
	}
}

static void near2__scalar(size_t w, const float *x, float *y)
{
	for (size_t i = 0; i < w; i++)
		y[2 * i] = y[2 * i + 1] = x[i];
}

static void near2_adj__scalar(size_t w, const float *g, float *acc)
{
	for (size_t i = 0; i < w; i++)
		acc[i] = acc[i] + (g[2 * i] + g[2 * i + 1]);
}

static void sgd__scalar(size_t n, float *p, const float *g, float *buf, const sl_sgd_par *o)
{
	for (size_t i = 0; i < n; i++) {
		float d = g[i];
		if (o->wd != 0.0f)
			d = d + o->wd * p[i];
		if (o->momentum != 0.0f) {
			float b = o->first ? d : buf[i] * o->momentum + o->one_m_damp * d;
			buf[i] = b;
			d = o->nesterov ? d + o->momentum * b : b;
		}
		p[i] = p[i] + o->neg_lr * d;
	}
}

static void adam__scalar(size_t n, float *p, const float *g, float *m, float *v,
                         const sl_adam_par *o)
{
	for (size_t i = 0; i < n; i++) {
		float pi = p[i], gi = g[i];
		if (o->decay != 1.0f)
			pi = pi * o->decay;
		if (o->wd != 0.0f)
			gi = gi + o->wd * pi;
		float mi = m[i] * o->beta1 + o->one_m_beta1 * gi;
		float vi = v[i] * o->beta2 + (o->one_m_beta2 * gi) * gi;
		float denom = sqrtf(vi) / o->bc2_sqrt + o->eps;
		m[i] = mi;
		v[i] = vi;
		p[i] = pi + (o->neg_step * mi) / denom;
	}
}

const sl_nnkern sl_nnkern_scalar = {
	.act = act__scalar,
	.act_bwd = act_bwd__scalar,
	.pool2 = pool2__scalar,
	.pool2_bwd = pool2_bwd__scalar,
	.moments = moments__scalar,
	.affine = affine__scalar,
	.norm_bstats = norm_bstats__scalar,
	.norm_bwd = norm_bwd__scalar,
	.lerp = lerp__scalar,
	.axpy = axpy__scalar,
	.up2 = up2__scalar,
	.up2_adj = up2_adj__scalar,
	.near2 = near2__scalar,
	.near2_adj = near2_adj__scalar,
	.sgd = sgd__scalar,
	.adam = adam__scalar,
};
