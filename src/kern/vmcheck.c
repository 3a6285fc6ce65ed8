/*
 * vmcheck.c — measures the ulp error of the vector math of a backend.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmcheck.h"

const char *const sl_vmcheck_names[] = {"exp",   "log",   "log1p",     "sigmoid",   "softplus",
                                        "pow",   "sig_p", "sig_q",     "sig_log_p", "sig_log_q",
                                        "sig_log_spn", NULL};

typedef double (*ref_fn)(double x, double g);

static double ref_exp(double x, double g) { (void)g; return exp(x); }
static double ref_log(double x, double g) { (void)g; return log(x); }
static double ref_log1p(double x, double g) { (void)g; return log1p(x); }
static double ref_pow(double x, double g) { return pow(x, g); }

static double ref_sigmoid(double x, double g)
{
	(void)g;
	if (x >= 0.0)
		return 1.0 / (1.0 + exp(-x));
	double z = exp(x);
	return z / (1.0 + z);
}

static double ref_softplus(double x, double g)
{
	(void)g;
	if (x > 0.0)
		return x + log1p(exp(-x));
	return log1p(exp(x));
}

static double ref_sigmoid_neg(double x, double g) { return ref_sigmoid(-x, g); }
static double ref_softplus_neg(double x, double g) { return ref_softplus(-x, g); }

/* which kernel output a check reads */
enum { K_EXP, K_LOG, K_LOG1P, K_SIGMOID, K_SOFTPLUS, K_POW, K_SIG_P, K_SIG_Q, K_SIGL_P, K_SIGL_Q,
       K_SIGL_SPN };

typedef struct fn_info {
	const char *name;
	int kernel;
	ref_fn ref;
	float lo, hi;   /* bit-uniform range */
	float clo, chi; /* linear central range */
	int nonneg;     /* domain x >= 0 (pow) */
} fn_info;

static const fn_info fns[] = {
	{"exp", K_EXP, ref_exp, -110.0f, 95.0f, -104.0f, 89.0f, 0},
	{"log", K_LOG, ref_log, 0x1p-149f, FLT_MAX, 0.5f, 2.0f, 0},
	{"log1p", K_LOG1P, ref_log1p, -1.0f, FLT_MAX, -0.5f, 1.0f, 0},
	{"sigmoid", K_SIGMOID, ref_sigmoid, -110.0f, 110.0f, -20.0f, 20.0f, 0},
	{"softplus", K_SOFTPLUS, ref_softplus, -110.0f, 110.0f, -20.0f, 20.0f, 0},
	{"pow", K_POW, ref_pow, 0.0f, 1.0f, 0.0f, 1.0f, 1},
	/* the sigmoid as the loss kernels compute it (v_sig, v_sig_log) */
	{"sig_p", K_SIG_P, ref_sigmoid, -110.0f, 110.0f, -20.0f, 20.0f, 0},
	{"sig_q", K_SIG_Q, ref_sigmoid_neg, -110.0f, 110.0f, -20.0f, 20.0f, 0},
	{"sig_log_p", K_SIGL_P, ref_sigmoid, -110.0f, 110.0f, -20.0f, 20.0f, 0},
	{"sig_log_q", K_SIGL_Q, ref_sigmoid_neg, -110.0f, 110.0f, -20.0f, 20.0f, 0},
	{"sig_log_spn", K_SIGL_SPN, ref_softplus_neg, -110.0f, 110.0f, -20.0f, 20.0f, 0},
};

const float sl_vmcheck_specials[] = {
	0.0f, -0.0f, 0x1p-149f, -0x1p-149f, 0x1p-127f, -0x1p-127f, FLT_MIN, -FLT_MIN,
	1.0f, -1.0f, 0x1.fffffep-1f, 0x1.000002p+0f, -0x1.fffffep-1f, 0x1p-24f, -0x1p-24f,
	0x1p-25f, -0x1p-25f, 0.5f, 2.0f, 10.0f, -10.0f, FLT_MAX, -FLT_MAX,
	/* exp overflow and underflow edges: ln(FLT_MAX) = 88.7228391, ln(2^-126)
	 * = -87.3365448, ln(2^-149) = -103.2789, ln(2^-150) = -103.9720771 */
	88.72283f, 88.722839f, 0x1.62e42ep+6f, 0x1.62e430p+6f, 0x1.62e432p+6f, 89.0f, 90.0f,
	-87.33654f, -87.336548f, -103.27893f, -103.97207f, -103.972084f, -104.0f, -105.0f,
	-88.72283f, -88.722839f, -89.0f, 87.33654f, 103.97207f, 104.0f,
	INFINITY, -INFINITY, NAN,
};

const size_t sl_vmcheck_nspecials = sizeof sl_vmcheck_specials / sizeof sl_vmcheck_specials[0];
#define NSPECIAL sl_vmcheck_nspecials
#define specials sl_vmcheck_specials
#define CHUNK 4096

/* A monotone integer key of a float: order-preserving over all floats. */
static int64_t fkey(float f)
{
	uint32_t b;
	memcpy(&b, &f, sizeof b);
	return (b & 0x80000000u) ? -(int64_t)(b & 0x7fffffffu) : (int64_t)b;
}

static float unkey(int64_t k)
{
	uint32_t b = k < 0 ? ((uint32_t)(-k) | 0x80000000u) : (uint32_t)k;
	float f;
	memcpy(&f, &b, sizeof f);
	return f;
}

/* The i-th of n test inputs of function f. */
static float point(const fn_info *f, size_t i, size_t n)
{
	if (i < NSPECIAL)
		return specials[i];
	i -= NSPECIAL;
	size_t half = (n + 1) / 2;
	if (i < half) {
		int64_t a = fkey(f->lo), b = fkey(f->hi);
		return unkey(a + (int64_t)((double)(b - a) * ((double)i + 0.5) / (double)half));
	}
	i -= half;
	size_t rest = n - half;
	return (float)((double)f->clo +
	               ((double)f->chi - (double)f->clo) * ((double)i + 0.5) / (double)rest);
}

/* ulp of the float nearest to r (r finite, |r| <= FLT_MAX) */
static double ulp_of(double r)
{
	int e;
	frexp(r, &e); /* |r| = m 2^e, m in [0.5, 1) */
	if (e - 1 < -126)
		e = -125;
	return ldexp(1.0, e - 1 - 23);
}

typedef struct acc {
	double max_ulp;
	size_t worst_i;
	float worst_x, worst_y;
	double worst_ref;
	size_t bad, bad_i;
	float bad_x, bad_y;
} acc;

static void judge(acc *a, size_t i, float x, float y, double r)
{
	int wrong_class;
	double err = 0.0;
	if (isnan(r)) {
		wrong_class = !isnan(y);
	} else if (isnan(y)) {
		wrong_class = 1;
	} else {
		float rf = (float)r;
		if (isinf(rf) || isinf(y)) {
			wrong_class = y != rf;
		} else {
			wrong_class = 0;
			err = fabs((double)y - r) / ulp_of(r);
		}
	}
	if (wrong_class) {
		if (a->bad++ == 0 || i < a->bad_i) {
			a->bad_i = i;
			a->bad_x = x;
			a->bad_y = y;
		}
	} else if (err > a->max_ulp || (err == a->max_ulp && err > 0.0 && i < a->worst_i)) {
		a->max_ulp = err;
		a->worst_i = i;
		a->worst_x = x;
		a->worst_y = y;
		a->worst_ref = r;
	}
}

/* xs and ys hold CHUNK floats, s1 and s2 too (the other outputs of sigpq) */
static void run_chunk(const sl_kern *k, const fn_info *f, float g, size_t i0, size_t i1,
                      size_t n, float *xs, float *ys, float *s1, float *s2, acc *a)
{
	size_t m = i1 - i0;
	for (size_t i = 0; i < m; i++) {
		float x = point(f, i0 + i, n);
		xs[i] = f->nonneg && x < 0.0f ? -x : x;
	}
	switch (f->kernel) {
	case K_EXP:
		k->exp(m, xs, ys);
		break;
	case K_LOG:
		k->log(m, xs, ys);
		break;
	case K_LOG1P:
		k->log1p(m, xs, ys);
		break;
	case K_SIGMOID:
		k->sigmoid(m, xs, ys);
		break;
	case K_SOFTPLUS:
		k->softplus(m, xs, ys);
		break;
	case K_POW:
		k->pow(m, xs, g, ys);
		break;
	case K_SIG_P:
		k->sigpq(m, xs, ys, s1, NULL);
		break;
	case K_SIG_Q:
		k->sigpq(m, xs, s1, ys, NULL);
		break;
	case K_SIGL_P:
		k->sigpq(m, xs, ys, s1, s2);
		break;
	case K_SIGL_Q:
		k->sigpq(m, xs, s1, ys, s2);
		break;
	default:
		k->sigpq(m, xs, s1, s2, ys);
		break;
	}
	for (size_t i = 0; i < m; i++)
		judge(a, i0 + i, xs[i], ys[i], f->ref((double)xs[i], (double)g));
}

static void merge(acc *into, const acc *a)
{
	if (a->bad && (into->bad == 0 || a->bad_i < into->bad_i)) {
		into->bad_i = a->bad_i;
		into->bad_x = a->bad_x;
		into->bad_y = a->bad_y;
	}
	into->bad += a->bad;
	if (a->max_ulp > into->max_ulp ||
	    (a->max_ulp == into->max_ulp && a->max_ulp > 0.0 && a->worst_i < into->worst_i)) {
		into->max_ulp = a->max_ulp;
		into->worst_i = a->worst_i;
		into->worst_x = a->worst_x;
		into->worst_y = a->worst_y;
		into->worst_ref = a->worst_ref;
	}
}

int sl_vmcheck_run(const sl_kern *k, const char *fn, float g, size_t npoints, int threads,
                   sl_vmcheck *out)
{
	const fn_info *f = NULL;
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
		if (strcmp(fns[i].name, fn) == 0)
			f = &fns[i];
	if (!f || npoints < 2)
		return -1;
	size_t total = npoints + NSPECIAL;
	size_t nchunks = (total + CHUNK - 1) / CHUNK;
	acc *accs = calloc(nchunks, sizeof *accs);
	if (!accs)
		return -1;
	int failed = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : 1)
	{
		float *xs = malloc(4 * CHUNK * sizeof(float));
		if (!xs) {
#pragma omp atomic write
			failed = 1;
		}
#pragma omp for schedule(static)
		for (size_t c = 0; c < nchunks; c++) {
			if (!xs)
				continue;
			size_t i0 = c * CHUNK, i1 = i0 + CHUNK < total ? i0 + CHUNK : total;
			run_chunk(k, f, g, i0, i1, npoints, xs, xs + CHUNK, xs + 2 * CHUNK, xs + 3 * CHUNK,
			          &accs[c]);
		}
		free(xs);
	}
	acc all = {0};
	for (size_t c = 0; c < nchunks; c++)
		merge(&all, &accs[c]);
	free(accs);
	if (failed)
		return -1;
	*out = (sl_vmcheck){
		.points = total,
		.max_ulp = all.max_ulp,
		.worst_x = all.worst_x,
		.worst_y = all.worst_y,
		.worst_ref = all.worst_ref,
		.bad = all.bad,
		.bad_x = all.bad_x,
		.bad_y = all.bad_y,
	};
	return 0;
}
