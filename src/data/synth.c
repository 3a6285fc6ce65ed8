/*
 * synth.c — drawing the synthetic data: shapes into masks, and images made
 * of a shaded, textured background (plane waves), the shapes and Gaussian
 * noise. Lua chooses every shape and wave (data.lua); this file only draws.
 */
#include <math.h>

#include "data.h"

/* Is p inside shape h with radii times scale? */
static int inside(const sl_shape *h, int dims, const double *p, double scale)
{
	double d0 = dims == 3 ? (p[0] - h->c[0]) / (h->r[0] * scale) : 0.0;
	double d1 = p[1] - h->c[1], d2 = p[2] - h->c[2];
	double cs = cos(h->angle), sn = sin(h->angle);
	double u = (cs * d1 + sn * d2) / (h->r[1] * scale), v = (-sn * d1 + cs * d2) / (h->r[2] * scale);
	double q = d0 * d0 + u * u + v * v;
	double m = 1.0;
	if (h->kind == 2) {
		double th = atan2(v, u);
		m = 1.0 + 0.25 * sin(3.0 * th + h->ph[0]) + 0.12 * sin(5.0 * th + h->ph[1]);
	}
	return q <= m * m;
}

/* The box of pixels that may lie inside h: lo[a]..hi[a] on each axis. */
static void box(const sl_shape *h, const sl_grid *g, double scale, int64_t *lo, int64_t *hi)
{
	double rmax = h->r[1] > h->r[2] ? h->r[1] : h->r[2];
	for (int a = 0; a < 3; a++) {
		lo[a] = 0;
		hi[a] = 0;
	}
	for (int a = 3 - g->dims; a < 3; a++) {
		int64_t S = g->s[a - (3 - g->dims)];
		double r = (a == 0 ? h->r[0] : rmax) * scale * 1.4 + 1.0;
		double l = floor(h->c[a] - r), u = ceil(h->c[a] + r);
		/* clamped as doubles first: a far-away centre must not overflow the cast */
		lo[a] = l < 0 ? 0 : l > (double)S ? S : (int64_t)l;
		hi[a] = u < 0 ? -1 : u > (double)(S - 1) ? S - 1 : (int64_t)u;
	}
}

/* Calls fn for each pixel of the grid inside h. */
#define FOR_INSIDE(h, g, scale, OFF, BODY)                                                              \
	do {                                                                                             \
		int64_t lo[3], hi[3];                                                                    \
		box(h, g, scale, lo, hi);                                                                \
		int64_t Hh = (g)->s[(g)->dims - 2], Ww = (g)->s[(g)->dims - 1];                          \
		for (int64_t z = lo[0]; z <= hi[0]; z++)                                                 \
			for (int64_t y = lo[1]; y <= hi[1]; y++)                                         \
				for (int64_t x_ = lo[2]; x_ <= hi[2]; x_++) {                            \
					double p[3] = {(double)z, (double)y, (double)x_};                \
					if (inside(h, (g)->dims, p, scale)) {                            \
						int64_t OFF = (z * Hh + y) * Ww + x_;                    \
						BODY;                                                    \
					}                                                                \
				}                                                                        \
	} while (0)

static int64_t numel(const sl_grid *g)
{
	int64_t m = 1;
	for (int a = 0; a < g->dims; a++) m *= g->s[a];
	return m;
}

int64_t sl_synth_mask(float *t, const sl_grid *g, const sl_shape *sh, int n, double scale)
{
	int64_t m = numel(g), k = 0;
	for (int64_t i = 0; i < m; i++) t[i] = 0.0f;
	for (int s = 0; s < n; s++) {
		FOR_INSIDE(&sh[s], g, scale, off, {
			if (t[off] == 0.0f) k++;
			t[off] = 1.0f;
		});
	}
	return k;
}

/* splitmix64: the noise's generator, one stream per image */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)((next(s) >> 11) + 1) * 0x1p-53; } /* (0, 1] */

void sl_synth_image(float *x, const sl_grid *g, double base, const sl_wave *w, int nw, const sl_shape *sh, int n,
                    double sigma, uint64_t seed)
{
	const double two_pi = 6.283185307179586;
	int64_t D = g->dims == 3 ? g->s[0] : 1, H = g->s[g->dims - 2], W = g->s[g->dims - 1];
	uint64_t st = seed;
	int64_t off = 0;
	for (int64_t z = 0; z < D; z++)
		for (int64_t y = 0; y < H; y++)
			for (int64_t i = 0; i < W; i++, off++) {
				double v = base;
				for (int k = 0; k < nw; k++) {
					double a = w[k].f[0] * (double)z / (double)D + w[k].f[1] * (double)y / (double)H +
					           w[k].f[2] * (double)i / (double)W;
					v += w[k].amp * cos(two_pi * a + w[k].phase);
				}
				x[off] = (float)v;
			}
	for (int s = 0; s < n; s++) {
		float amp = (float)sh[s].amp;
		FOR_INSIDE(&sh[s], g, 1.0, o, x[o] += amp);
	}
	if (sigma > 0.0) {
		int64_t m = numel(g);
		for (int64_t i = 0; i < m; i += 2) { /* Box-Muller, two values per draw */
			double r = sqrt(-2.0 * log(uniform(&st))), th = two_pi * uniform(&st);
			x[i] += (float)(sigma * r * cos(th));
			if (i + 1 < m) x[i + 1] += (float)(sigma * r * sin(th));
		}
	}
}
