/*
 * layers.c — drivers of activation, max pooling, upsampling, concatenation
 * and the optimisers; see layers.h. (Normalisation: norm.c.)
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

static size_t nblocks(size_t n) { return (n + SL_BLOCK - 1) / SL_BLOCK; }

static inline size_t blocklen(size_t n, size_t b)
{
	size_t i = b * SL_BLOCK;
	return n - i < SL_BLOCK ? n - i : SL_BLOCK;
}

/* ---- activation ------------------------------------------------------ */

void sl_nn_act(const sl_exec *e, size_t n, const float *x, float *y, float slope)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t b = 0; b < nb; b++) {
		sl_note_team(e);
		size_t i = b * SL_BLOCK;
		e->k->nn->act(blocklen(n, b), x + i, y + i, slope);
	}
}

void sl_nn_act_bwd(const sl_exec *e, size_t n, const float *x, const float *gy, float *gx,
                   float slope)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t b = 0; b < nb; b++) {
		sl_note_team(e);
		size_t i = b * SL_BLOCK;
		e->k->nn->act_bwd(blocklen(n, b), x + i, gy + i, gx + i, slope);
	}
}

/* ---- max pooling ----------------------------------------------------- */

/* PyTorch's CPU rule: a later value replaces the maximum if greater or NaN */
static inline int takes(float v, float m) { return v > m || isnan(v); }

/* The offset in the plane of the first maximum of the window whose corner
 * is (z, y, x), window kd x k x k, scanned in row-major order. */
static size_t window_argmax(const float *p, const sl_geom *g, size_t k, size_t kd, size_t z,
                            size_t y, size_t x)
{
	size_t best = (z * g->h + y) * g->w + x;
	float m = p[best];
	for (size_t dz = 0; dz < kd; dz++)
		for (size_t dy = 0; dy < k; dy++)
			for (size_t dx = 0; dx < k; dx++) {
				size_t o = ((z + dz) * g->h + y + dy) * g->w + x + dx;
				if (takes(p[o], m)) {
					m = p[o];
					best = o;
				}
			}
	return best;
}

/* One slab (plane p, output depth od) of the pooling, forward or backward. */
static void pool_slab(const sl_exec *e, const sl_geom *g, size_t k, size_t p, size_t od,
                      const float *x, const float *gy, float *y, float *gx)
{
	size_t kd = g->nd == 3 ? k : 1;
	size_t Do = g->d / kd, Ho = g->h / k, Wo = g->w / k, plane = g->d * g->h * g->w;
	const float *xp = x + p * plane;
	size_t orow0 = (p * Do + od) * Ho; /* the slab's first output row */
	if (gx) {
		/* the slab's input rows the windows leave out get 0; so do the
		 * depths below the last slab */
		float *gp = gx + p * plane;
		size_t z1 = od + 1 == Do ? g->d : (od + 1) * kd;
		for (size_t z = od * kd; z < z1; z++)
			for (size_t yy = z < Do * kd ? Ho * k : 0; yy < g->h; yy++)
				memset(gp + (z * g->h + yy) * g->w, 0, g->w * sizeof(float));
	}
	if (k == 2) {
		const float *rows[4];
		float *grows[4];
		size_t nr = 2 * kd;
		for (size_t oy = 0; oy < Ho; oy++) {
			for (size_t dz = 0; dz < kd; dz++)
				for (size_t dy = 0; dy < 2; dy++) {
					size_t o = ((od * kd + dz) * g->h + 2 * oy + dy) * g->w;
					rows[2 * dz + dy] = xp + o;
					if (gx)
						grows[2 * dz + dy] = gx + p * plane + o;
				}
			if (gx)
				e->k->nn->pool2_bwd(Wo, g->w, nr, rows, gy + (orow0 + oy) * Wo, grows);
			else
				e->k->nn->pool2(Wo, nr, rows, y + (orow0 + oy) * Wo);
		}
		return;
	}
	/* any k: the scalar path */
	for (size_t oy = 0; oy < Ho; oy++) {
		if (gx)
			for (size_t dz = 0; dz < kd; dz++)
				for (size_t dy = 0; dy < k; dy++)
					memset(gx + p * plane + ((od * kd + dz) * g->h + oy * k + dy) * g->w, 0,
					       g->w * sizeof(float));
		for (size_t ox = 0; ox < Wo; ox++) {
			size_t a = window_argmax(xp, g, k, kd, od * kd, oy * k, ox * k);
			if (gx)
				gx[p * plane + a] = gy[(orow0 + oy) * Wo + ox];
			else
				y[(orow0 + oy) * Wo + ox] = xp[a];
		}
	}
}

static void pool_run(const sl_exec *e, const sl_geom *g, size_t k, const float *x, const float *gy,
                     float *y, float *gx)
{
	size_t kd = g->nd == 3 ? k : 1, Do = g->d / kd;
	assert(k >= 1 && Do >= 1 && g->h / k >= 1 && g->w / k >= 1);
	size_t ntask = g->planes * Do;
	int nt = sl_exec_threads(e, g->planes * g->d * g->h * g->w);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t t = 0; t < ntask; t++) {
		sl_note_team(e);
		pool_slab(e, g, k, t / Do, t % Do, x, gy, y, gx);
	}
}

void sl_nn_maxpool(const sl_exec *e, const sl_geom *g, size_t k, const float *x, float *y)
{
	pool_run(e, g, k, x, NULL, y, NULL);
}

void sl_nn_maxpool_bwd(const sl_exec *e, const sl_geom *g, size_t k, const float *x,
                       const float *gy, float *gx)
{
	pool_run(e, g, k, x, gy, NULL, gx);
}

/* ---- upsampling ------------------------------------------------------ */

/* The weights of every axis come from interp.h, per index and on the fly:
 * the drivers keep no tables and allocate nothing. Scale 2, PyTorch's
 * U-Net scale, runs through the backends' up2 / near2 kernels; other scales
 * through the generic rows below, in chunks of UP_CHUNK columns on the
 * stack. Both compute each element with the same floats in the same order. */
#define UP_CHUNK 256

/* out[o - o0] = r[i0] l0 + r[i1] l1 along the last axis, o0 <= o < o1 */
static void hlerp(size_t n, size_t s, size_t o0, size_t o1, const float *r, float *out)
{
	for (size_t o = o0; o < o1; o++) {
		size_t i0, i1;
		float l0, l1;
		sl_lin_at(o, n, s, &i0, &i1, &l0, &l1);
		out[o - o0] = r[i0] * l0 + r[i1] * l1;
	}
}

/* the adjoint along the last axis: out[i - i0] = Σ aw g[ao] over the pairs
 * of input i, from 0, i0 <= i < i1 */
static void hlerp_adj(size_t n, size_t s, size_t i0, size_t i1, const float *g, float *out)
{
	size_t ao[2 * 64 + 2];
	float aw[2 * 64 + 2];
	assert(s <= 64);
	for (size_t i = i0; i < i1; i++) {
		size_t na = sl_lin_adj(i, n, s, ao, aw);
		float acc = 0.0f;
		for (size_t j = 0; j < na; j++)
			acc = acc + aw[j] * g[ao[j]];
		out[i - i0] = acc;
	}
}

/* nearest, one output row from one input row */
static void nearest_row(const sl_exec *e, size_t w, size_t s, const float *r, float *out)
{
	if (s == 2) {
		e->k->nn->near2(w, r, out);
		return;
	}
	for (size_t i = 0; i < w; i++)
		for (size_t j = 0; j < s; j++)
			out[i * s + j] = r[i];
}

/* nearest adjoint: acc[i] += Σ_j g[i s + j], j in order */
static void nearest_row_adj(const sl_exec *e, size_t w, size_t s, const float *g, float *acc)
{
	if (s == 2) {
		e->k->nn->near2_adj(w, g, acc);
		return;
	}
	for (size_t i = 0; i < w; i++) {
		float t = g[i * s];
		for (size_t j = 1; j < s; j++)
			t = t + g[i * s + j];
		acc[i] = acc[i] + t;
	}
}

/* linear, output row (p, oz, oy) of any scale */
static void up_row(const sl_exec *e, const sl_geom *g, size_t s, const float *xp, size_t oz,
                   size_t oy, float *y)
{
	size_t nd3 = g->nd == 3, Wo = g->w * s;
	size_t zs[2] = {0, 0}, ys[2];
	float wt[4] = {0.0f, 0.0f, 1.0f, 0.0f}; /* wy0, wy1, wz0, wz1 */
	if (s == 2) {
		sl_lin2_at(oy, g->h, &ys[0], &ys[1], &wt[0], &wt[1]);
		if (nd3)
			sl_lin2_at(oz, g->d, &zs[0], &zs[1], &wt[2], &wt[3]);
	} else {
		sl_lin_at(oy, g->h, s, &ys[0], &ys[1], &wt[0], &wt[1]);
		if (nd3)
			sl_lin_at(oz, g->d, s, &zs[0], &zs[1], &wt[2], &wt[3]);
	}
	const float *rows[4];
	for (size_t dz = 0; dz <= nd3; dz++)
		for (size_t dy = 0; dy < 2; dy++)
			rows[2 * dz + dy] = xp + (zs[dz] * g->h + ys[dy]) * g->w;
	if (s == 2) {
		e->k->nn->up2(g->w, 2 + 2 * nd3, rows, wt, y);
		return;
	}
	/* 4 rows along x and 2 planes, chunk by chunk */
	float h[6][UP_CHUNK];
	for (size_t o0 = 0; o0 < Wo; o0 += UP_CHUNK) {
		size_t n = Wo - o0 < UP_CHUNK ? Wo - o0 : UP_CHUNK;
		for (size_t dz = 0; dz <= nd3; dz++) {
			hlerp(g->w, s, o0, o0 + n, rows[2 * dz], h[2 * dz]);
			hlerp(g->w, s, o0, o0 + n, rows[2 * dz + 1], h[2 * dz + 1]);
			e->k->nn->lerp(n, h[2 * dz], wt[0], h[2 * dz + 1], wt[1], nd3 ? h[4 + dz] : y + o0);
		}
		if (nd3)
			e->k->nn->lerp(n, h[4], wt[2], h[5], wt[3], y + o0);
	}
}

/* linear adjoint, input row (p, iz, iy) of any scale; gp: plane p of gy */
static void up_row_adj(const sl_exec *e, const sl_geom *g, size_t s, const float *gp, size_t iz,
                       size_t iy, float *acc)
{
	size_t nd3 = g->nd == 3, Ho = g->h * s, Wo = g->w * s, W = g->w;
	/* the pairs of iy along y and of iz along z, 2 s + 2 at most each */
	size_t oy[2 * 64 + 2], oz[2 * 64 + 2];
	float wy[2 * 64 + 2], wz[2 * 64 + 2];
	assert(s <= 64);
	size_t ny = sl_lin_adj(iy, g->h, s, oy, wy);
	size_t nz = nd3 ? sl_lin_adj(iz, g->d, s, oz, wz) : 0;
	if (s == 2) {
		const float *rows[5 * 5];
		assert(ny <= 5 && nz <= 5);
		for (size_t z = 0; z < (nd3 ? nz : 1); z++)
			for (size_t y = 0; y < ny; y++)
				rows[z * ny + y] = gp + ((nd3 ? oz[z] : 0) * Ho + oy[y]) * Wo;
		e->k->nn->up2_adj(W, nz, wz, ny, wy, rows, acc);
		return;
	}
	/* 2-D: acc = Σ_y wy A_x^T gy[y]; 3-D: acc = Σ_z wz Σ_y wy A_x^T gy[z][y],
	 * each sum from 0, chunk by chunk */
	float t[UP_CHUNK], ty[UP_CHUNK];
	for (size_t i0 = 0; i0 < W; i0 += UP_CHUNK) {
		size_t n = W - i0 < UP_CHUNK ? W - i0 : UP_CHUNK;
		float *a = acc + i0, *yacc = nd3 ? ty : a;
		memset(a, 0, n * sizeof(float));
		for (size_t z = 0; z < (nd3 ? nz : 1); z++) {
			if (nd3)
				memset(ty, 0, n * sizeof(float));
			for (size_t y = 0; y < ny; y++) {
				hlerp_adj(W, s, i0, i0 + n, gp + ((nd3 ? oz[z] : 0) * Ho + oy[y]) * Wo, t);
				e->k->nn->axpy(n, wy[y], t, yacc);
			}
			if (nd3)
				e->k->nn->axpy(n, wz[z], ty, a);
		}
	}
}

int sl_nn_upsample(const sl_exec *e, const sl_geom *g, int mode, size_t s, const float *x,
                   float *y)
{
	size_t sd = g->nd == 3 ? s : 1;
	size_t Do = g->d * sd, Ho = g->h * s, Wo = g->w * s;
	size_t nrows = g->planes * Do * Ho, in_plane = g->d * g->h * g->w;
	int nt = sl_exec_threads(e, nrows * Wo);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t r = 0; r < nrows; r++) {
		sl_note_team(e);
		size_t oy = r % Ho, oz = r / Ho % Do, p = r / (Ho * Do);
		if (mode == SL_UP_NEAREST)
			nearest_row(e, g->w, s, x + p * in_plane + (oz / sd * g->h + oy / s) * g->w,
			            y + r * Wo);
		else
			up_row(e, g, s, x + p * in_plane, oz, oy, y + r * Wo);
	}
	return 0;
}

int sl_nn_upsample_bwd(const sl_exec *e, const sl_geom *g, int mode, size_t s, const float *gy,
                       float *gx)
{
	size_t sd = g->nd == 3 ? s : 1;
	size_t Do = g->d * sd, Ho = g->h * s, Wo = g->w * s, W = g->w;
	size_t nrows = g->planes * g->d * g->h, out_plane = Do * Ho * Wo;
	int nt = sl_exec_threads(e, nrows * W * s * s * sd);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t r = 0; r < nrows; r++) {
		sl_note_team(e);
		size_t iy = r % g->h, iz = r / g->h % g->d, p = r / (g->h * g->d);
		const float *gp = gy + p * out_plane;
		if (mode == SL_UP_NEAREST) {
			float *acc = gx + r * W;
			memset(acc, 0, W * sizeof(float));
			for (size_t dz = 0; dz < sd; dz++)
				for (size_t dy = 0; dy < s; dy++)
					nearest_row_adj(e, W, s, gp + ((iz * sd + dz) * Ho + iy * s + dy) * Wo, acc);
		} else {
			up_row_adj(e, g, s, gp, iz, iy, gx + r * W);
		}
	}
	return 0;
}

/* ---- concatenation --------------------------------------------------- */

/* The out (or g) elements [o0, o1) of N samples of na + nb: copies each
 * piece from (to) a or b. */
static void cat_range(size_t na, size_t nb, size_t o0, size_t o1, float *whole, float *a, float *b,
                      int split)
{
	size_t L = na + nb;
	while (o0 < o1) {
		size_t n = o0 / L, r = o0 % L, end;
		float *part;
		if (r < na) {
			end = na;
			part = a ? a + n * na + r : NULL;
		} else {
			end = L;
			part = b ? b + n * nb + (r - na) : NULL;
		}
		size_t len = end - r < o1 - o0 ? end - r : o1 - o0;
		if (part) {
			if (split)
				memcpy(part, whole + o0, len * sizeof(float));
			else
				memcpy(whole + o0, part, len * sizeof(float));
		}
		o0 += len;
	}
}

void sl_nn_concat(const sl_exec *e, size_t N, size_t na, size_t nb, const float *a,
                  const float *b, float *out)
{
	size_t n = N * (na + nb), nbk = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t k = 0; k < nbk; k++) {
		sl_note_team(e);
		size_t o0 = k * SL_BLOCK;
		cat_range(na, nb, o0, o0 + blocklen(n, k), out, (float *)(uintptr_t)a,
		          (float *)(uintptr_t)b, 0);
	}
}

void sl_nn_split(const sl_exec *e, size_t N, size_t na, size_t nb, const float *g, float *ga,
                 float *gb)
{
	size_t n = N * (na + nb), nbk = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t k = 0; k < nbk; k++) {
		sl_note_team(e);
		size_t o0 = k * SL_BLOCK;
		cat_range(na, nb, o0, o0 + blocklen(n, k), (float *)(uintptr_t)g, ga, gb, 1);
	}
}

/* ---- optimisers ------------------------------------------------------ */

void sl_nn_sgd(const sl_exec *e, size_t n, float *p, const float *g, float *buf,
               const sl_sgd_par *o)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t b = 0; b < nb; b++) {
		sl_note_team(e);
		size_t i = b * SL_BLOCK;
		e->k->nn->sgd(blocklen(n, b), p + i, g + i, buf ? buf + i : NULL, o);
	}
}

void sl_nn_adam(const sl_exec *e, size_t n, float *p, const float *g, float *m, float *v,
                const sl_adam_par *o)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t b = 0; b < nb; b++) {
		sl_note_team(e);
		size_t i = b * SL_BLOCK;
		e->k->nn->adam(blocklen(n, b), p + i, g + i, m + i, v + i, o);
	}
}
