/*
 * augment.c — one sample copied through a flip and a 90-degree rotation
 * (the same mapping for an image and its mask, so they stay aligned), with
 * an intensity change for images.
 */
#include "data.h"

void sl_data_put(const float *src, float *dst, int64_t ch, const sl_grid *g, unsigned flips, int rot,
                 float scale, float shift)
{
	int64_t D = g->dims == 3 ? g->s[0] : 1;
	int64_t H = g->s[g->dims - 2], W = g->s[g->dims - 1];
	int fd = g->dims == 3 && (flips & 1u);
	int fh = (flips >> (g->dims - 2)) & 1u, fw = (flips >> (g->dims - 1)) & 1u;
	int64_t plane = H * W;
	for (int64_t c = 0; c < ch; c++) {
		for (int64_t d = 0; d < D; d++) {
			const float *sp = src + (c * D + (fd ? D - 1 - d : d)) * plane;
			float *dp = dst + (c * D + d) * plane;
			for (int64_t i = 0; i < H; i++) {
				for (int64_t j = 0; j < W; j++) {
					/* destination (i, j) <- rotated source coordinates */
					int64_t a, b;
					switch (rot & 3) {
					case 1: a = j; b = W - 1 - i; break;
					case 2: a = H - 1 - i; b = W - 1 - j; break;
					case 3: a = H - 1 - j; b = i; break;
					default: a = i; b = j; break;
					}
					if (fh) a = H - 1 - a;
					if (fw) b = W - 1 - b;
					dp[i * W + j] = scale * sp[a * W + b] + shift;
				}
			}
		}
	}
}

int64_t sl_data_scan(const float *t, int64_t n, int64_t m, int classes, int64_t *count)
{
	for (int64_t s = 0; s < n; s++) {
		int64_t k = 0;
		const float *p = t + s * m;
		for (int64_t i = 0; i < m; i++) {
			float v = p[i];
			if (!(v >= 0.0f && v <= (float)(classes - 1) && v == (float)(int)v)) return s * m + i;
			k += v != 0.0f;
		}
		count[s] = k;
	}
	return -1;
}
