/*
 * bench/conv.c — times segloss' convolutions (src/nn/conv.c) per layer shape:
 * forward, backward data, backward weights, for oneDNN's plain layouts
 * (what segloss runs) and its blocked layouts with reorders around each
 * sample (the alternative), at each thread count.
 *
 * Shapes come on stdin, one per line (tools/bench_torch_conv.py writes them):
 *   name dims N cin cout k stride transposed S1 S2 [S3]
 * For each shape, mode and thread count it prints one JSON line
 *   {"name":..,"mode":"plain","threads":1,"fwd":ms,"bwd_data":ms,"bwd_weights":ms,"impl":..}
 * with the best of --reps timed calls after one warm-up call.
 *
 *   bench_conv [--reps R] [--threads 1,2] [--modes auto,plain,blocked] [--min-flops F]
 *
 * --min-flops sets the work threshold below which a call stays on fewer
 * threads (default SL_CONV_MIN_FLOPS; 0 always uses every thread asked for).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/conv.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(size_t n, unsigned *seed)
{
	float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
	if (!p) {
		fprintf(stderr, "bench_conv: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1664525u + 1013904223u;
		p[i] = (float)(*seed >> 8) / 16777216.0f - 0.5f;
	}
	return p;
}

static void check(int rc, sl_conv *p)
{
	if (rc != SL_CONV_OK) {
		fprintf(stderr, "bench_conv: %s\n", rc == SL_CONV_ENOMEM ? "out of memory" : sl_conv_error(p));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int reps = 3, threads[8] = {1, 2}, nthr = 2, modes[3] = {-1, 0, 1}, nmodes = 3;
	sl_conv_ws ws; /* shared by every plan, as in a Lua state */
	sl_conv_ws_init(&ws);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			nthr = 0;
			for (char *t = strtok(argv[++i], ","); t && nthr < 8; t = strtok(NULL, ","))
				threads[nthr++] = atoi(t);
		} else if (!strcmp(argv[i], "--min-flops") && i + 1 < argc) {
			ws.min_flops = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--modes") && i + 1 < argc) {
			const char *m = argv[++i];
			nmodes = 0;
			if (strstr(m, "auto"))
				modes[nmodes++] = -1;
			if (strstr(m, "plain"))
				modes[nmodes++] = 0;
			if (strstr(m, "blocked"))
				modes[nmodes++] = 1;
		} else {
			fprintf(stderr, "usage: bench_conv [--reps R] [--threads 1,2] [--modes auto,plain,blocked] [--min-flops F] < shapes\n");
			return 2;
		}
	}
	char name[64];
	int dims, N, cin, cout, k, stride, tr;
	long long s[3];
	unsigned seed = 12345;
	char line[256];
	while (fgets(line, sizeof line, stdin)) {
		s[2] = 0;
		int got = sscanf(line, "%63s %d %d %d %d %d %d %d %lld %lld %lld", name, &dims, &N, &cin, &cout, &k,
		                 &stride, &tr, &s[0], &s[1], &s[2]);
		if (got < 10)
			continue;
		sl_conv_cfg c = {dims, cin, cout, k, stride, tr};
		if (sl_conv_cfg_check(&c)) {
			fprintf(stderr, "bench_conv: %s: %s\n", name, sl_conv_cfg_check(&c));
			return 1;
		}
		int64_t in[3] = {s[0], s[1], s[2]}, out[3];
		sl_conv_out_spatial(&c, in, out);
		size_t xn = (size_t)N * (size_t)cin, yn = (size_t)N * (size_t)cout, wn = sl_conv_wnumel(&c);
		for (int a = 0; a < dims; a++) {
			xn *= (size_t)in[a];
			yn *= (size_t)out[a];
		}
		float *x = rnd(xn, &seed), *w = rnd(wn, &seed), *b = rnd((size_t)cout, &seed);
		float *y = rnd(yn, &seed), *gx = rnd(xn, &seed), *gw = rnd(wn, &seed), *gb = rnd((size_t)cout, &seed);
		for (int mi = 0; mi < nmodes; mi++)
			for (int ti = 0; ti < nthr; ti++) {
				sl_conv *p = sl_conv_new(&c);
				if (!p)
					return 1;
				sl_conv_set_blocked(p, modes[mi]);
				int team = 1;
				sl_exec e = {NULL, threads[ti], &team};
				double best[3] = {1e30, 1e30, 1e30};
				for (int r = 0; r <= reps; r++) {
					double t0 = now();
					check(sl_conv_forward(p, &ws, &e, N, in, x, w, b, y), p);
					double t1 = now();
					check(sl_conv_backward_data(p, &ws, &e, N, in, y, w, gx), p);
					double t2 = now();
					check(sl_conv_backward_weights(p, &ws, &e, N, in, x, y, gw, gb), p);
					double t3 = now();
					if (r == 0)
						continue; /* warm-up: builds the primitives */
					double t[3] = {t1 - t0, t2 - t1, t3 - t2};
					for (int j = 0; j < 3; j++)
						if (t[j] < best[j])
							best[j] = t[j];
				}
				printf("{\"name\":\"%s\",\"mode\":\"%s\",\"threads\":%d,\"team\":%d,\"fwd\":%.4f,"
				       "\"bwd_data\":%.4f,\"bwd_weights\":%.4f,\"impl\":\"%s|%s|%s\"}\n",
				       name, modes[mi] < 0 ? "auto" : modes[mi] ? "blocked" : "plain", threads[ti], team, best[0] * 1e3,
				       best[1] * 1e3, best[2] * 1e3, sl_conv_impl(p, 0), sl_conv_impl(p, 1), sl_conv_impl(p, 2));
				fflush(stdout);
				sl_conv_free(p);
			}
		free(x);
		free(w);
		free(b);
		free(y);
		free(gx);
		free(gw);
		free(gb);
	}
	sl_conv_ws_free(&ws);
	return 0;
}
