/*
 * layers.c — drivers of activation, max pooling, upsampling, concatenation
 * and the optimisers; see layers.h. (Normalisation: norm.c.)
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "layers.h"

static size_t nblocks(size_t n) { return (n + SL_BLOCK - 1) / SL_BLOCK; }

static inline size_t blocklen(size_t n, size_t b)
{
	size_t i = b * SL_BLOCK;
	return n - i < SL_BLOCK ? n - i : SL_BLOCK;
}

static inline int thread_id(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
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

/* One axis of linear interpolation, n inputs to n s outputs: output o reads
 * i0[o] and i1[o] with weights l0[o], l1[o]; the adjoint lists, for input
 * i, the pairs (ao[a], aw[a]) for a in [astart[i], astart[i + 1]). */
typedef struct axis {
	size_t n, no;
	size_t *i0, *i1, *astart, *ao;
	float *l0, *l1, *aw;
} axis;

/* PyTorch's weights (UpSample.h, area_pixel_compute_source_index and
 * compute_source_index_and_lambda), computed as it does, in float. */
static void axis_weights(axis *a, size_t s)
{
	float scale = (float)(1.0 / (double)s);
	for (size_t o = 0; o < a->no; o++) {
		float src;
		size_t i0;
		if (s == 1) {
			src = (float)o;
			i0 = o;
		} else {
			src = scale * ((float)o + 0.5f) - 0.5f;
			if (src < 0.0f)
				src = 0.0f;
			i0 = (size_t)src;
		}
		float l1 = src - (float)i0;
		l1 = l1 < 0.0f ? 0.0f : l1 > 1.0f ? 1.0f : l1;
		a->i0[o] = i0;
		a->i1[o] = i0 + (i0 + 1 < a->n ? 1 : 0);
		a->l1[o] = l1;
		a->l0[o] = 1.0f - l1;
	}
	/* the adjoint, in increasing o; i0 = i1 (the edges) merge into one pair */
	for (size_t i = 0; i <= a->n; i++)
		a->astart[i] = 0;
	for (size_t o = 0; o < a->no; o++) {
		a->astart[a->i0[o] + 1]++;
		if (a->i1[o] != a->i0[o])
			a->astart[a->i1[o] + 1]++;
	}
	for (size_t i = 0; i < a->n; i++)
		a->astart[i + 1] += a->astart[i];
	size_t *fill = a->i0 + a->no; /* scratch of n entries after i0 (see axis_alloc) */
	for (size_t i = 0; i < a->n; i++)
		fill[i] = a->astart[i];
	for (size_t o = 0; o < a->no; o++) {
		size_t i = a->i0[o];
		if (a->i1[o] == i) {
			a->ao[fill[i]] = o;
			a->aw[fill[i]++] = a->l0[o] + a->l1[o];
			continue;
		}
		a->ao[fill[i]] = o;
		a->aw[fill[i]++] = a->l0[o];
		i = a->i1[o];
		a->ao[fill[i]] = o;
		a->aw[fill[i]++] = a->l1[o];
	}
}

/* one allocation for an axis of n inputs; NULL if out of memory */
static void *axis_alloc(axis *a, size_t n, size_t s)
{
	size_t no = n * s, na = 2 * no;
	size_t bytes = (no + n + no + (n + 1) + na) * sizeof(size_t) + (2 * no + na) * sizeof(float);
	char *m = malloc(bytes);
	if (!m)
		return NULL;
	a->n = n;
	a->no = no;
	a->i0 = (size_t *)m;          /* no, then n of scratch */
	a->i1 = a->i0 + no + n;       /* no */
	a->astart = a->i1 + no;       /* n + 1 */
	a->ao = a->astart + n + 1;    /* up to 2 no */
	a->l0 = (float *)(a->ao + na);
	a->l1 = a->l0 + no;
	a->aw = a->l1 + no;
	axis_weights(a, s);
	return m;
}

/* out[o] = r[i0] l0 + r[i1] l1 along the last axis */
static void hlerp(const axis *a, const float *r, float *out)
{
	for (size_t o = 0; o < a->no; o++)
		out[o] = r[a->i0[o]] * a->l0[o] + r[a->i1[o]] * a->l1[o];
}

/* the adjoint along the last axis: out[i] = Σ aw g[ao] */
static void hlerp_adj(const axis *a, const float *g, float *out)
{
	for (size_t i = 0; i < a->n; i++) {
		float acc = 0.0f;
		for (size_t j = a->astart[i]; j < a->astart[i + 1]; j++)
			acc = acc + a->aw[j] * g[a->ao[j]];
		out[i] = acc;
	}
}

/* nearest, one output row from one input row */
static void nearest_row(size_t w, size_t s, const float *r, float *out)
{
	for (size_t i = 0; i < w; i++)
		for (size_t j = 0; j < s; j++)
			out[i * s + j] = r[i];
}

/* nearest adjoint: acc[i] += Σ_j g[i s + j], j in order */
static void nearest_row_adj(size_t w, size_t s, const float *g, float *acc)
{
	for (size_t i = 0; i < w; i++) {
		float t = g[i * s];
		for (size_t j = 1; j < s; j++)
			t = t + g[i * s + j];
		acc[i] = acc[i] + t;
	}
}

int sl_nn_upsample(const sl_exec *e, const sl_geom *g, int mode, size_t s, const float *x,
                   float *y)
{
	size_t sd = g->nd == 3 ? s : 1;
	size_t Do = g->d * sd, Ho = g->h * s, Wo = g->w * s;
	size_t nrows = g->planes * Do * Ho, in_plane = g->d * g->h * g->w;
	int nt = sl_exec_threads(e, nrows * Wo);
	if (mode == SL_UP_NEAREST) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
		for (size_t r = 0; r < nrows; r++) {
			sl_note_team(e);
			size_t oy = r % Ho, oz = r / Ho % Do, p = r / (Ho * Do);
			nearest_row(g->w, s, x + p * in_plane + (oz / sd * g->h + oy / s) * g->w, y + r * Wo);
		}
		return 0;
	}
	axis ax, ay, az;
	void *mx = axis_alloc(&ax, g->w, s), *my = axis_alloc(&ay, g->h, s);
	void *mz = axis_alloc(&az, g->d, sd);
	float *ws = malloc((size_t)nt * 6 * Wo * sizeof(float));
	int rc = -1;
	if (!mx || !my || !mz || !ws)
		goto done;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t r = 0; r < nrows; r++) {
		sl_note_team(e);
		size_t oy = r % Ho, oz = r / Ho % Do, p = r / (Ho * Do);
		float *h = ws + (size_t)thread_id() * 6 * Wo; /* 4 rows along x, 2 planes */
		const float *xp = x + p * in_plane;
		size_t zs[2] = {az.i0[oz], az.i1[oz]}, ys[2] = {ay.i0[oy], ay.i1[oy]};
		for (int dz = 0; dz < (g->nd == 3 ? 2 : 1); dz++) {
			for (int dy = 0; dy < 2; dy++)
				hlerp(&ax, xp + (zs[dz] * g->h + ys[dy]) * g->w, h + (size_t)(2 * dz + dy) * Wo);
			float *dst = g->nd == 3 ? h + (size_t)(4 + dz) * Wo : y + r * Wo;
			e->k->nn->lerp(Wo, h + (size_t)(2 * dz) * Wo, ay.l0[oy], h + (size_t)(2 * dz + 1) * Wo,
			               ay.l1[oy], dst);
		}
		if (g->nd == 3)
			e->k->nn->lerp(Wo, h + 4 * Wo, az.l0[oz], h + 5 * Wo, az.l1[oz], y + r * Wo);
	}
	rc = 0;
done:
	free(mx);
	free(my);
	free(mz);
	free(ws);
	return rc;
}

int sl_nn_upsample_bwd(const sl_exec *e, const sl_geom *g, int mode, size_t s, const float *gy,
                       float *gx)
{
	size_t sd = g->nd == 3 ? s : 1;
	size_t Do = g->d * sd, Ho = g->h * s, Wo = g->w * s, W = g->w;
	size_t nrows = g->planes * g->d * g->h, out_plane = Do * Ho * Wo;
	int nt = sl_exec_threads(e, nrows * W * s * s * sd);
	if (mode == SL_UP_NEAREST) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
		for (size_t r = 0; r < nrows; r++) {
			sl_note_team(e);
			size_t iy = r % g->h, iz = r / g->h % g->d, p = r / (g->h * g->d);
			float *acc = gx + r * W;
			memset(acc, 0, W * sizeof(float));
			for (size_t dz = 0; dz < sd; dz++)
				for (size_t dy = 0; dy < s; dy++)
					nearest_row_adj(W, s, gy + p * out_plane + ((iz * sd + dz) * Ho + iy * s + dy) * Wo,
					                acc);
		}
		return 0;
	}
	axis ax, ay, az;
	void *mx = axis_alloc(&ax, g->w, s), *my = axis_alloc(&ay, g->h, s);
	void *mz = axis_alloc(&az, g->d, sd);
	float *ws = malloc((size_t)nt * 2 * W * sizeof(float));
	int rc = -1;
	if (!mx || !my || !mz || !ws)
		goto done;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t r = 0; r < nrows; r++) {
		sl_note_team(e);
		size_t iy = r % g->h, iz = r / g->h % g->d, p = r / (g->h * g->d);
		float *t = ws + (size_t)thread_id() * 2 * W, *ty = t + W, *acc = gx + r * W;
		const float *gp = gy + p * out_plane;
		/* 2-D: acc = Σ_y wy A_x^T gy[y]; 3-D: acc = Σ_z wz Σ_y wy A_x^T gy[z][y] */
		float *yacc = g->nd == 3 ? ty : acc;
		memset(acc, 0, W * sizeof(float));
		for (size_t jz = az.astart[iz]; jz < az.astart[iz + 1]; jz++) {
			size_t oz = az.ao[jz];
			if (g->nd == 3)
				memset(ty, 0, W * sizeof(float));
			for (size_t jy = ay.astart[iy]; jy < ay.astart[iy + 1]; jy++) {
				hlerp_adj(&ax, gp + (oz * Ho + ay.ao[jy]) * Wo, t);
				e->k->nn->axpy(W, ay.aw[jy], t, yacc);
			}
			if (g->nd == 3)
				e->k->nn->axpy(W, az.aw[jz], ty, acc);
		}
	}
	rc = 0;
done:
	free(mx);
	free(my);
	free(mz);
	free(ws);
	return rc;
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
