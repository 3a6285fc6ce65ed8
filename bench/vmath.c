/*
 * vmath.c — throughput and accuracy of the vector math, per backend, next
 * to scalar libm (the scalar backend) and SLEEF 3.5 (Debian libsleef-dev).
 * Run by `make bench`. One thread; arrays of 16384 floats (in L2), so the
 * figures are compute throughput, not memory bandwidth.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kern/kern.h"
#include "kern/vmcheck.h"
#include "rng.h"

extern const sl_kern sl_kern_sleef_avx2, sl_kern_sleef_sse2;

#define N 16384
#define RUNS 7

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* inputs typical of each function's use */
static void inputs(const char *fn, float *x)
{
	sl_rng r;
	sl_rng_seed(&r, 12345);
	sl_rng_uniform(&r, N, x);
	for (int i = 0; i < N; i++) {
		float u = x[i];
		if (!strcmp(fn, "exp"))
			x[i] = -80.0f + 160.0f * u;
		else if (!strcmp(fn, "log"))
			x[i] = expf(-60.0f + 120.0f * u);
		else if (!strcmp(fn, "log1p"))
			x[i] = -0.9f + 100.0f * u * u;
		else if (!strcmp(fn, "pow"))
			x[i] = u;
		else
			x[i] = -20.0f + 40.0f * u;
	}
}

static void call(const sl_kern *k, const char *fn, float g, const float *x, float *y)
{
	if (!strcmp(fn, "exp"))
		k->exp(N, x, y);
	else if (!strcmp(fn, "log"))
		k->log(N, x, y);
	else if (!strcmp(fn, "log1p"))
		k->log1p(N, x, y);
	else if (!strcmp(fn, "sigmoid"))
		k->sigmoid(N, x, y);
	else if (!strcmp(fn, "softplus"))
		k->softplus(N, x, y);
	else
		k->pow(N, x, g, y);
}

/* median G elements/s over RUNS runs of >= 20 ms each */
static double rate(const sl_kern *k, const char *fn, float g, const float *x, float *y)
{
	double t[RUNS];
	int reps = 1;
	for (;;) {
		double t0 = now();
		for (int r = 0; r < reps; r++)
			call(k, fn, g, x, y);
		if (now() - t0 > 0.02)
			break;
		reps *= 2;
	}
	for (int i = 0; i < RUNS; i++) {
		double t0 = now();
		for (int r = 0; r < reps; r++)
			call(k, fn, g, x, y);
		t[i] = now() - t0;
	}
	qsort(t, RUNS, sizeof t[0], cmp_double);
	return (double)N * reps / t[RUNS / 2] * 1e-9;
}

int main(int argc, char **argv)
{
	size_t points = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000;
	/* each row as it is measured, also into a pipe (make bench | tee) */
	setvbuf(stdout, NULL, _IOLBF, 0);
	const sl_kern *ks[SL_MAX_BACKENDS + 2];
	int nk = sl_kern_available(ks);
	/* SLEEF's AVX2 build only where our avx2 runs */
	if (sl_kern_find("avx2"))
		ks[nk++] = &sl_kern_sleef_avx2;
	ks[nk++] = &sl_kern_sleef_sse2;
	static float x[N], y[N];
	struct {
		const char *fn;
		float g;
	} cases[] = {{"exp", 0}, {"log", 0}, {"log1p", 0}, {"sigmoid", 0}, {"softplus", 0},
	             {"pow", 2.0f}, {"pow", 2.5f}};
	printf("segloss vector math: 1 thread, %d-element arrays (cache-resident), median of %d runs;\n"
	       "accuracy: max error in ulps against double libm over %zu points + specials\n\n",
	       N, RUNS, points);
	printf("%-12s %-11s %9s %10s %9s %5s\n", "function", "backend", "G elem/s", "vs libm", "max ulp",
	       "bad");
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const char *fn = cases[c].fn;
		float g = cases[c].g;
		inputs(fn, x);
		double base = rate(&sl_kern_scalar, fn, g, x, y);
		char label[32];
		snprintf(label, sizeof label, g > 0 ? "%s(g=%.1f)" : "%s", fn, (double)g);
		for (int b = 0; b < nk; b++) {
			double r = ks[b] == &sl_kern_scalar ? base : rate(ks[b], fn, g, x, y);
			sl_vmcheck acc;
			if (sl_vmcheck_run(ks[b], fn, g, points, 2, &acc) != 0) {
				fprintf(stderr, "vmcheck failed\n");
				return 1;
			}
			printf("%-12s %-11s %9.3f %9.2fx %9.3f %5zu\n", label,
			       ks[b] == &sl_kern_scalar ? "libm" : ks[b]->name, r, r / base, acc.max_ulp,
			       acc.bad);
		}
	}
	return 0;
}
