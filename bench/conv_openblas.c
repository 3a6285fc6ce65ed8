/*
 * bench/conv_openblas.c — the alternative to oneDNN that the README weighs:
 * a 3x3 "same" convolution as im2col + OpenBLAS SGEMM, per sample, on one
 * thread, for the 2-D benchmark U-Net's layers (forward only, the cheapest
 * direction for im2col). Prints the best of `runs` times in ms per layer;
 * bench/conv_choice.lua times segloss's oneDNN forward on the same shapes
 * in alternation with this program.
 *
 *   cc -O2 bench/conv_openblas.c -o build/bench_conv_openblas -lopenblas
 *   build/bench_conv_openblas N CIN COUT H W RUNS
 */
#define _POSIX_C_SOURCE 199309L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* cols[(c*9 + ky*3 + kx) * H*W + y*W + x] = x[c][y+ky-1][x+kx-1] (0 outside) */
static void im2col(int C, int H, int W, const float *x, float *cols)
{
	for (int c = 0; c < C; c++)
		for (int ky = 0; ky < 3; ky++)
			for (int kx = 0; kx < 3; kx++) {
				float *o = cols + ((size_t)(c * 9 + ky * 3 + kx)) * (size_t)(H * W);
				for (int y = 0; y < H; y++) {
					int sy = y + ky - 1;
					for (int xx = 0; xx < W; xx++) {
						int sx = xx + kx - 1;
						o[y * W + xx] = (sy < 0 || sy >= H || sx < 0 || sx >= W)
						                    ? 0.0f
						                    : x[((size_t)c * (size_t)H + (size_t)sy) * (size_t)W + (size_t)sx];
					}
				}
			}
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s N CIN COUT H W RUNS\n", argv[0]);
		return 2;
	}
	int N = atoi(argv[1]), C = atoi(argv[2]), K = atoi(argv[3]), H = atoi(argv[4]), W = atoi(argv[5]);
	int runs = atoi(argv[6]);
	openblas_set_num_threads(1);
	size_t hw = (size_t)H * (size_t)W;
	float *x = malloc(sizeof(float) * (size_t)N * (size_t)C * hw);
	float *w = malloc(sizeof(float) * (size_t)K * (size_t)C * 9);
	float *y = malloc(sizeof(float) * (size_t)N * (size_t)K * hw);
	float *cols = malloc(sizeof(float) * (size_t)C * 9 * hw);
	if (!x || !w || !y || !cols)
		return 1;
	for (size_t i = 0; i < (size_t)N * (size_t)C * hw; i++)
		x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	for (size_t i = 0; i < (size_t)K * (size_t)C * 9; i++)
		w[i] = (float)((i * 40503u) % 1000) / 1000.0f - 0.5f;
	double best = 1e30;
	for (int r = 0; r < runs + 1; r++) {
		double t0 = now();
		for (int n = 0; n < N; n++) {
			im2col(C, H, W, x + (size_t)n * (size_t)C * hw, cols);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, (int)hw, C * 9, 1.0f, w, C * 9, cols,
			            (int)hw, 0.0f, y + (size_t)n * (size_t)K * hw, (int)hw);
		}
		double t = now() - t0;
		if (r > 0 && t < best) /* the first run warms up */
			best = t;
	}
	printf("%.3f\n", best * 1e3);
	free(x);
	free(w);
	free(y);
	free(cols);
	return 0;
}
