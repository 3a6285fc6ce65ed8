/*
 * test/arm/kernels.c — every SIMD backend of this build against the scalar
 * reference, in C, without Lua: `make test-arm` cross-compiles it with the
 * kernels for AArch64 and runs it under qemu (the NEON backend); `make
 * test-kernels` builds and runs the same source natively (SSE2 and AVX2 on
 * x86-64). The tolerances are those of the busted specs that compare the
 * backends on x86:
 *
 *   vmath accuracy   spec/04: max ulp against double libm (vmcheck.c), exp
 *                    log log1p 2, sigmoid softplus and the loss kernels'
 *                    sigmoid 4, pow 2 + g/2; no result of the wrong class
 *   vmath specials   spec/04: exact values at 0, ±Inf, NaN, overflow
 *   vmath vs scalar  spec/04: elementwise within twice the accuracy bound;
 *                    softmax 8 ulp; sum within 1e-12 n; min and max equal
 *   loss variants    spec/12 and 18: value |l - l0| <= 1e-5 |l0| + 1e-6,
 *                    gradient max |g - g0| <= 2e-4 max |g0|, statistics
 *                    |s - s0| <= 1e-5 (|s0| + 1e-6); every variant of
 *                    loss_variants.inc must run (its call count grows) and
 *                    no job may miss the list
 *   loss inputs      the first bad element (NaN, range, mask, label) is the
 *                    same kind at the same index on both backends
 *   nn kernels       spec/41: the same bits, but the normalisation's
 *                    statistics (2 ulp) and its backward (4 ulp); every entry
 *                    of the backend's nn table must be called
 *
 * Each group also hashes the backend's results (NaN as one NaN): two
 * backends that compute the same bits have the same hashes. NEON and SSE2
 * are one source (simd_isa.h's 128-bit path) and give the same bits.
 *
 * Usage: kernels [--points N] [--threads T] [--expect NAME] [--only NAME]
 *                [--hashes FILE] [--same-bits FILE]
 *   --points     inputs per function of the accuracy sweeps (spec 04: 1e7)
 *   --expect     fail unless the build's first SIMD backend is NAME (neon)
 *   --only       test this backend only
 *   --hashes     write "backend group hash" lines for the backends tested
 *   --same-bits  fail unless every group's hash equals that of the first
 *                backend in FILE (make test-arm: neon against sse2's run)
 * Progress on stderr; per group a line on stdout; the last line a summary.
 * Exit status 1 on any failure.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kern/kern.h"
#include "kern/vmcheck.h"
#include "loss/loss.h"
#include "nn/layers.h"
#include "ops.h"

#if defined(__aarch64__)
#include <simde/x86/sse2.h>
#if !defined(SIMDE_ARM_NEON_A64V8_NATIVE)
#error "SIMDe does not take its native NEON path with these flags"
#endif
#endif

/* ---- bookkeeping ---------------------------------------------------- */

typedef struct grp {
	const char *name;
	const char *unit;   /* what worst measures */
	long items;         /* functions, variants, kernels, cases checked */
	double elems;       /* elements compared */
	double worst;       /* largest error found, in unit */
	double bound;       /* its bound (the largest of the bounds used), or -1 */
	long differ;        /* elements whose bits differ from scalar */
	long fails;
	uint64_t hash;      /* of the backend's results (NaN as one NaN): the same on two
	                       backends that compute the same bits */
} grp;

static long total_fails;
static double t_start;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "kernels: [%5.1f s] ", now() - t_start);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void fail(grp *g, const char *fmt, ...)
{
	g->fails++;
	total_fails++;
	if (g->fails > 12)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL %s: ", g->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#define FNV0 0xcbf29ce484222325ull
/* FNV-1a over the bytes of the backend's results */
static void hash_bytes(grp *g, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		g->hash = (g->hash ^ b[i]) * 0x100000001b3ull;
}

static void hash_floats(grp *g, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = isnan(x[i]) ? NAN : x[i];
		uint32_t u;
		memcpy(&u, &v, sizeof u);
		if (isnan(x[i]))
			u = 0x7fc00000u;
		hash_bytes(g, &u, sizeof u);
	}
}

static void hash_double(grp *g, double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof u);
	if (isnan(v))
		u = 0x7ff8000000000000ull;
	hash_bytes(g, &u, sizeof u);
}

static void worst(grp *g, double e)
{
	if (e > g->worst)
		g->worst = e;
}

/* ---- random inputs (splitmix64: the same inputs on every machine) ---- */

static uint64_t rng_state;

static void seed(uint64_t s) { rng_state = s * 0x9e3779b97f4a7c15ull + 1; }

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double urand(void) { return (double)(rnd64() >> 11) * 0x1p-53; }

static float randn(void)
{
	double u = urand(), v = urand();
	return (float)(sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v));
}

static float *falloc(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof *p);
	if (!p) {
		fprintf(stderr, "kernels: out of memory\n");
		exit(2);
	}
	return p;
}

static float *frandn(size_t n, float scale)
{
	float *p = falloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = randn() * scale;
	return p;
}

/* ---- float comparisons ---------------------------------------------- */

static int64_t fkey(float f)
{
	uint32_t b;
	memcpy(&b, &f, sizeof b);
	return (b & 0x80000000u) ? -(int64_t)(b & 0x7fffffffu) : (int64_t)b;
}

/* distance in float ulps; NaN vs NaN 0, NaN vs a number +Inf (spec/helpers.lua) */
static double ulps(float a, float b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b) ? 0.0 : (double)INFINITY;
	int64_t d = fkey(a) - fkey(b);
	return (double)(d < 0 ? -d : d);
}

/* the same float (any NaN equals any NaN; the sign of zero counts) */
static int same(float a, float b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return memcmp(&a, &b, sizeof a) == 0;
}

static int bits_differ(float a, float b) { return memcmp(&a, &b, sizeof a) != 0; }

/* Compares n floats of got against ref within tol ulps (0: the same bits);
 * returns the largest distance and counts differing bits into g. */
static double cmp_floats(grp *g, const char *what, size_t n, const float *got, const float *ref,
                         double tol)
{
	double mx = 0.0;
	hash_floats(g, got, n);
	for (size_t i = 0; i < n; i++) {
		double d = tol == 0.0 ? (same(got[i], ref[i]) ? 0.0 : ulps(got[i], ref[i])) :
		                        ulps(got[i], ref[i]);
		if (tol == 0.0 && d == 0.0 && !same(got[i], ref[i]))
			d = 1.0; /* -0 against +0 */
		g->differ += bits_differ(got[i], ref[i]);
		if (d > mx)
			mx = d;
		if (d > tol) {
			fail(g, "%s: element %zu is %a, scalar %a (%.0f ulp > %.0f)", what, i,
			     (double)got[i], (double)ref[i], d, tol);
			break;
		}
	}
	g->elems += (double)n;
	worst(g, mx);
	return mx;
}

/* ---- 1. vector math accuracy against double libm (vmcheck.c) --------- */

typedef struct vmfn {
	const char *name;
	double bound;
} vmfn;

static const vmfn vm_fns[] = {
	{"exp", 2},       {"log", 2},       {"log1p", 2},     {"sigmoid", 4},
	{"softplus", 4},  {"sig_p", 4},     {"sig_q", 4},     {"sig_log_p", 4},
	{"sig_log_q", 4}, {"sig_log_spn", 4},
};
static const float pow_gs[] = {0.5f, 2.0f, 2.5f, 7.0f};

static void vm_accuracy(const sl_kern *k, size_t points, int threads, grp *g)
{
	g->bound = 0.0;
	for (size_t i = 0; i < sizeof vm_fns / sizeof vm_fns[0] + 4; i++) {
		int ispow = i >= sizeof vm_fns / sizeof vm_fns[0];
		const char *fn = ispow ? "pow" : vm_fns[i].name;
		float gexp = ispow ? pow_gs[i - sizeof vm_fns / sizeof vm_fns[0]] : 2.0f;
		double bound = ispow ? 2.0 + (double)gexp / 2.0 : vm_fns[i].bound;
		sl_vmcheck r;
		if (sl_vmcheck_run(k, fn, gexp, ispow ? points / 4 : points, threads, &r) != 0) {
			fail(g, "%s: vmcheck could not run", fn);
			continue;
		}
		g->items++;
		g->elems += (double)r.points;
		worst(g, r.max_ulp);
		hash_double(g, r.max_ulp);
		hash_floats(g, &r.worst_x, 1);
		hash_bytes(g, &r.bad, sizeof r.bad);
		if (bound > g->bound)
			g->bound = bound;
		if (r.bad)
			fail(g, "%s (g=%g for pow): %zu results of the wrong class, first at x=%a: %a", fn,
			     (double)gexp, r.bad, (double)r.bad_x, (double)r.bad_y);
		if (!(r.max_ulp <= bound) && ispow)
			fail(g, "pow g=%g: %.3f ulp > %.1f at x=%a (got %a, want %.17g)", (double)gexp,
			     r.max_ulp, bound, (double)r.worst_x, (double)r.worst_y, r.worst_ref);
		else if (!(r.max_ulp <= bound))
			fail(g, "%s: %.3f ulp > %.1f at x=%a (got %a, want %.17g)", fn, r.max_ulp, bound,
			     (double)r.worst_x, (double)r.worst_y, r.worst_ref);
		if (ispow)
			progress("  pow g=%-4g %9zu points, max %.3f ulp (bound %.1f)", (double)gexp, r.points,
			         r.max_ulp, bound);
		else
			progress("  %-11s %9zu points, max %.3f ulp (bound %.1f)", fn, r.points, r.max_ulp, bound);
	}
}

/* ---- 2. special values, exactly (spec 04) ----------------------------- */

typedef struct special {
	float x, want;
} special;

static void run_unary(const sl_kern *k, const char *fn, size_t n, const float *x, float *y)
{
	sl_unary_fn f = strcmp(fn, "exp") == 0        ? k->exp
	                : strcmp(fn, "log") == 0      ? k->log
	                : strcmp(fn, "log1p") == 0    ? k->log1p
	                : strcmp(fn, "sigmoid") == 0  ? k->sigmoid
	                                              : k->softplus;
	sl_exec e = {k, 1, NULL};
	sl_op_map(&e, f, n, x, y);
}

static void vm_specials(const sl_kern *k, grp *g)
{
	const float inf = INFINITY, nan = NAN;
	static const char *names[] = {"exp", "log", "log1p", "sigmoid", "softplus"};
	const special tab[5][7] = {
		{{0, 1}, {-0.0f, 1}, {inf, inf}, {-inf, 0}, {89, inf}, {-104, 0}, {nan, nan}},
		{{1, 0}, {0, -inf}, {-0.0f, -inf}, {-1, nan}, {inf, inf}, {-inf, nan}, {nan, nan}},
		{{0, 0}, {-1, -inf}, {-2, nan}, {inf, inf}, {0x1p-149f, 0x1p-149f}, {nan, nan}, {nan, nan}},
		{{0, 0.5f}, {inf, 1}, {-inf, 0}, {200, 1}, {-200, 0}, {nan, nan}, {nan, nan}},
		{{inf, inf}, {-inf, 0}, {100, 100}, {-200, 0}, {nan, nan}, {nan, nan}, {nan, nan}},
	};
	for (int f = 0; f < 5; f++) {
		/* the specials alone (a tail), after 5 ordinary values, and repeated
		 * over 6 vectors (the main loop) */
		float x[64], y[64];
		for (int layout = 0; layout < 3; layout++) {
			size_t off = layout == 1 ? 5 : 0, n = layout == 2 ? 56 : off + 7;
			for (size_t i = 0; i < n; i++)
				x[i] = i < off ? 0.25f * (float)i : tab[f][(i - off) % 7].x;
			run_unary(k, names[f], n, x, y);
			hash_floats(g, y, n);
			for (size_t i = off; i < n; i++) {
				const special *s = &tab[f][(i - off) % 7];
				g->elems++;
				if (ulps(y[i], s->want) != 0.0)
					fail(g, "%s(%a) = %a, want %a (layout %d)", names[f], (double)s->x, (double)y[i],
					     (double)s->want, layout);
			}
		}
		g->items++;
	}
}

/* ---- 3. vector math against scalar ------------------------------------ */

/* the special inputs of vmcheck.c: zeros, subnormals, the edges of exp */
#define edge_x sl_vmcheck_specials
#define NEDGE sl_vmcheck_nspecials

static void vm_inputs(const char *fn, size_t n, float *x)
{
	for (size_t i = 0; i < n; i++) {
		float u = (float)urand();
		if (strcmp(fn, "log") == 0)
			x[i] = expf(u * 40.0f - 20.0f);
		else if (strcmp(fn, "log1p") == 0)
			x[i] = u * 20.0f - 0.999f;
		else
			x[i] = u * 60.0f - 30.0f;
	}
}

static void vm_versus(const sl_kern *k, grp *g)
{
	static const char *names[] = {"exp", "log", "log1p", "sigmoid", "softplus"};
	static const double bound[] = {2, 2, 2, 4, 4};
	size_t lens[28];
	for (size_t i = 0; i < 26; i++)
		lens[i] = i + 1;
	lens[26] = 100003;
	lens[27] = NEDGE;
	const sl_kern *s = &sl_kern_scalar;
	sl_exec es = {s, 1, NULL}, ek = {k, 1, NULL};
	float *x = falloc(100003), *y = falloc(100003), *r = falloc(100003);
	char what[96];
	g->bound = 8;
	for (int f = 0; f < 5; f++) {
		for (size_t li = 0; li < 28; li++) {
			size_t n = lens[li];
			seed(1000 + n);
			if (li == 27)
				memcpy(x, edge_x, NEDGE * sizeof *edge_x);
			else
				vm_inputs(names[f], n, x);
			run_unary(k, names[f], n, x, y);
			run_unary(s, names[f], n, x, r);
			snprintf(what, sizeof what, "%s n=%zu", names[f], n);
			cmp_floats(g, what, n, y, r, 2 * bound[f]);
		}
		g->items++;
	}
	/* pow: the spec's g = 2.5 on [0, 1), and the integer paths on negative bases */
	static const float gs[] = {2.5f, 0.5f, 2.0f, 3.0f, 7.0f};
	for (size_t gi = 0; gi < sizeof gs / sizeof gs[0]; gi++) {
		for (size_t li = 0; li < 28; li++) {
			size_t n = lens[li];
			seed(2000 + n);
			for (size_t i = 0; i < n; i++)
				x[i] = li == 27 ? fabsf(edge_x[i]) : gs[gi] == 3.0f || gs[gi] == 2.0f
				                                       ? (float)urand() * 2.0f - 1.0f
				                                       : (float)urand();
			sl_op_pow(&ek, n, x, gs[gi], y);
			sl_op_pow(&es, n, x, gs[gi], r);
			snprintf(what, sizeof what, "pow g=%g n=%zu", (double)gs[gi], n);
			cmp_floats(g, what, n, y, r, 2 * (2.0 + (double)gs[gi] / 2.0));
		}
		g->items++;
	}
	/* the loss kernels' sigmoid: p, 1 - p, softplus(-x) */
	{
		float *q = falloc(100003), *q0 = falloc(100003), *sp = falloc(100003), *sp0 = falloc(100003);
		for (size_t li = 0; li < 28; li++) {
			size_t n = lens[li];
			seed(3000 + n);
			if (li == 27)
				memcpy(x, edge_x, NEDGE * sizeof *edge_x);
			else
				vm_inputs("sigmoid", n, x);
			for (int withsp = 0; withsp < 2; withsp++) {
				k->sigpq(n, x, y, q, withsp ? sp : NULL);
				s->sigpq(n, x, r, q0, withsp ? sp0 : NULL);
				snprintf(what, sizeof what, "sigpq%s n=%zu", withsp ? "+spn" : "", n);
				cmp_floats(g, what, n, y, r, 8);
				cmp_floats(g, what, n, q, q0, 8);
				if (withsp)
					cmp_floats(g, what, n, sp, sp0, 8);
			}
		}
		g->items++;
		free(q);
		free(q0);
		free(sp);
		free(sp0);
	}
	/* softmax over channels: 8 ulp */
	{
		static const size_t Cs[] = {1, 2, 3, 5}, Ms[] = {1, 3, 4, 7, 8, 9, 17, 1000};
		for (size_t ci = 0; ci < 4; ci++)
			for (size_t mi = 0; mi < 8; mi++) {
				size_t C = Cs[ci], M = Ms[mi], n = 2 * C * M;
				seed(C * 1000 + M);
				for (size_t i = 0; i < n; i++)
					x[i] = randn() * 10.0f;
				sl_op_softmax(&ek, 2, C, M, x, y);
				sl_op_softmax(&es, 2, C, M, x, r);
				snprintf(what, sizeof what, "softmax C=%zu M=%zu", C, M);
				cmp_floats(g, what, n, y, r, 8);
			}
		g->items++;
	}
	/* sum and dot within 1e-12 n (sums in double, lanes in another order);
	 * min and max equal, NaN wherever one element is NaN; the four
	 * operations of binop the same bits */
	for (size_t li = 0; li < 28; li++) {
		size_t n = lens[li];
		seed(4000 + n);
		for (size_t i = 0; i < n; i++) {
			x[i] = li == 27 ? edge_x[i] : randn();
			r[i] = randn();
		}
		double s1 = sl_op_sum(&ek, n, x), s0 = sl_op_sum(&es, n, x);
		double d1 = sl_op_dot(&ek, n, x, r), d0 = sl_op_dot(&es, n, x, r);
		double tol = 1e-12 * (double)n;
		g->elems += 2.0 * (double)n;
		hash_double(g, s1);
		hash_double(g, d1);
		if (li != 27 && !(fabs(s1 - s0) <= tol))
			fail(g, "sum n=%zu: %.17g vs scalar %.17g", n, s1, s0);
		if (li != 27 && !(fabs(d1 - d0) <= tol))
			fail(g, "dot n=%zu: %.17g vs scalar %.17g", n, d1, d0);
		if (li == 27 && !(isnan(s1) && isnan(s0)))
			fail(g, "sum of the edge values (Inf - Inf, NaN): %g vs scalar %g", s1, s0);
		for (size_t nanat = 0; nanat <= (n < 9 ? n : 9); nanat++) {
			/* nanat = 0: no NaN; else a NaN at element nanat - 1 (or the last) */
			size_t at = nanat == 0 ? 0 : nanat == 9 ? n - 1 : nanat - 1;
			float save = x[at];
			if (nanat && li != 27)
				x[at] = NAN;
			float mn1, mx1, mn0, mx0;
			sl_op_minmax(&ek, n, x, &mn1, &mx1);
			sl_op_minmax(&es, n, x, &mn0, &mx0);
			g->elems += (double)n;
			hash_floats(g, &mn1, 1);
			hash_floats(g, &mx1, 1);
			if (!(mn1 == mn0 || (isnan(mn1) && isnan(mn0))) ||
			    !(mx1 == mx0 || (isnan(mx1) && isnan(mx0))))
				fail(g, "minmax n=%zu, NaN at %zu: %g %g vs scalar %g %g", n, nanat ? at : n,
				     (double)mn1, (double)mx1, (double)mn0, (double)mx0);
			x[at] = save;
		}
	}
	g->items += 3;
	/* binop, with its own buffers (a, b, out; every special against every other) */
	{
		size_t n = NEDGE * NEDGE;
		float *a = falloc(n), *b = falloc(n), *o1 = falloc(n), *o0 = falloc(n);
		for (size_t i = 0; i < n; i++) {
			a[i] = edge_x[i / NEDGE];
			b[i] = edge_x[i % NEDGE];
		}
		static const int ops[] = {'+', '-', '*', '/'};
		for (int o = 0; o < 4; o++)
			for (int mode = 0; mode < 3; mode++) {
				for (size_t len = n - 7; len <= n; len += 7) {
					k->binop(ops[o], len, a, mode == 0 ? b : NULL, -3.25f, mode == 2, o1);
					s->binop(ops[o], len, a, mode == 0 ? b : NULL, -3.25f, mode == 2, o0);
					snprintf(what, sizeof what, "binop %c mode %d n=%zu", ops[o], mode, len);
					cmp_floats(g, what, len, o1, o0, 0);
				}
			}
		g->items++;
		free(a);
		free(b);
		free(o1);
		free(o0);
	}
	free(x);
	free(y);
	free(r);
}

/* ---- 4. loss kernels through the driver (sl_loss_run) ----------------- */

enum { MASK_NONE, MASK_PIX, MASK_FULL };

typedef struct lcase {
	const char *what;
	int act, labels, mask;
	size_t C;
	double xscale; /* logits randn * xscale (sigmoid, softmax) */
	int stats_only, out_user, want_grad;
	int accumulate; /* the fused pass adds its gradient to what out holds */
	int nreg, npix;
	sl_regpart reg[4];
	sl_pixk pix[4];
	sl_pixmeta pm[4];
	float cw[80], cwv[80]; /* class weights of the pixel parts, when pix[i].cw points here */
} lcase;

static sl_regpart region(int type)
{
	sl_regpart r = {0};
	r.type = type;
	r.weight = 1.0;
	r.factor = 1.0;
	r.reduction = SL_RED_MEAN;
	r.snr = 1e-5;
	r.sdr = 1e-5;
	r.alpha = 0.3;
	r.beta = 0.7;
	r.gamma = 0.75;
	r.eps = 1e-7;
	r.lambda = 0.05;
	r.w_type = SL_W_SQUARE;
	return r;
}

static void add_reg(lcase *c, sl_regpart r) { c->reg[c->nreg++] = r; }

static sl_pixk *add_pix(lcase *c, int type, double weight)
{
	sl_pixk *p = &c->pix[c->npix];
	*p = (sl_pixk){0};
	p->type = type;
	p->pos_weight = 1.0f;
	p->neg_weight = 1.0f;
	p->gamma = 2.0f;
	p->alpha_on = 1;
	p->alpha = 0.25f;
	c->pm[c->npix] = (sl_pixmeta){.reduction = SL_RED_MEAN, .weight = weight, .factor = 1.0};
	c->npix++;
	return p;
}

static void smooth(sl_pixk *p, double ls, double K)
{
	p->ls = 1;
	p->ls_b = ls / K;
	p->ls_a = 1.0 - ls + p->ls_b;
	p->ls_a1 = ls * ((K - 1.0) / K);
	p->ls_b1 = 1.0 - p->ls_b;
}

/* the region parts of spec 18: dice, or with every statistic read (squared
 * dice, sensitivity-specificity at weight 1/2, soft-label dice) */
static void region_parts(lcase *c, int full)
{
	if (!full) {
		add_reg(c, region(SL_R_DICE));
		return;
	}
	sl_regpart r = region(SL_R_DICE);
	r.squared = 1;
	add_reg(c, r);
	r = region(SL_R_SENSSPEC);
	r.weight = 0.5;
	add_reg(c, r);
	r = region(SL_R_DICE);
	r.soft = 1;
	add_reg(c, r);
}

/* The run that reaches variant v (spec 18's call_for): a statistics pass
 * that stores nothing is a stats-only run; store_p / from_p and store_z /
 * from_z write into a buffer of the run's own (out_user = 0), where the
 * statistics pass leaves p (bce parts or none) or e^-|x| (sigmoid, other
 * pixel parts); without them a run writes into the caller's out. */
static lcase case_for(const sl_lossvar *v, int si)
{
	lcase c;
	memset(&c, 0, sizeof c);
	c.what = v->name;
	c.act = v->act;
	c.labels = v->labels;
	c.mask = v->mask ? (si == 1 && (v->labels || v->act == SL_ACT_SOFTMAX) ? MASK_FULL : MASK_PIX)
	                 : MASK_NONE;
	c.C = (v->labels || v->act == SL_ACT_SOFTMAX) ? 3 : 1;
	c.xscale = 4.0;
	c.want_grad = 1;
	if (v->kind == SL_VAR_STATS) {
		if (v->storez)
			add_pix(&c, SL_PX_FOCAL, 1.0);
		if (v->bce)
			add_pix(&c, SL_PX_BCE, 1.0)->pos_weight = 2.0f;
		region_parts(&c, v->full);
		c.stats_only = !(v->storep || v->storez);
		c.want_grad = !c.stats_only;
		return c;
	}
	int full = si >= 1;
	if (v->pxm == SL_PXM_BCE) {
		add_pix(&c, SL_PX_BCE, 1.0)->pos_weight = 2.0f;
	} else if (v->pxm == SL_PXM_FOCAL2) {
		add_pix(&c, SL_PX_FOCAL, 1.0);
	} else if (v->pxm == SL_PXM_GEN && v->act == SL_ACT_SOFTMAX) {
		add_pix(&c, SL_PX_CE, 1.0);
		sl_pixk *f = add_pix(&c, SL_PX_FOCAL, 1.0);
		static const float alpha[3] = {0.2f, 0.3f, 0.5f};
		memcpy(c.cw, alpha, sizeof alpha);
		memcpy(c.cwv, alpha, sizeof alpha);
		f->cw = c.cw;
		f->cwv = c.cwv;
	} else if (v->pxm == SL_PXM_GEN && v->fromp) {
		add_pix(&c, SL_PX_BCE, 1.0);
		add_pix(&c, SL_PX_BCE, 1.0)->pos_weight = 3.0f;
	} else if (v->pxm == SL_PXM_GEN) {
		add_pix(&c, SL_PX_FOCAL, 1.0)->gamma = 1.5f;
		add_pix(&c, SL_PX_BCE, 1.0);
	}
	if (v->reg)
		region_parts(&c, full);
	int keeps = v->reg && (v->act == SL_ACT_SIGMOID ||
	                       (v->act == SL_ACT_SOFTMAX && v->pxm == SL_PXM_NONE));
	c.out_user = !(v->fromp || v->fromz || !keeps);
	return c;
}

typedef struct lresult {
	int rc;
	sl_bad bad;
	double total;
	float *out;
	double *stats;
} lresult;

typedef struct linputs {
	size_t N, C, M;
	float *x, *t, *m;
	int mask_full;
} linputs;

static void make_inputs(const lcase *c, size_t S, uint64_t sd, linputs *in)
{
	seed(sd);
	size_t N = 2, C = c->C, n = N * C * S;
	in->N = N;
	in->C = C;
	in->M = S;
	in->x = falloc(n);
	for (size_t i = 0; i < n; i++)
		in->x[i] = c->act == SL_ACT_NONE ? (float)urand() : randn() * (float)c->xscale;
	if (c->act != SL_ACT_NONE && S > 30 && c->xscale < 10.0)
		in->x[2] = 200.0f; /* beyond the fast exponential */
	if (c->labels) {
		in->t = falloc(N * S);
		for (size_t i = 0; i < N * S; i++)
			in->t[i] = floorf((float)urand() * (float)C);
	} else {
		in->t = falloc(n);
		for (size_t i = 0; i < n; i++)
			in->t[i] = c->act == SL_ACT_NONE && (i % 3 == 0) ? (float)urand()
			                                                 : urand() < 0.3 ? 1.0f : 0.0f;
	}
	in->m = NULL;
	in->mask_full = 0;
	if (c->mask == MASK_PIX) {
		in->m = falloc(N * S);
		for (size_t i = 0; i < N * S; i++)
			in->m[i] = urand() < 0.8 ? 1.0f : 0.0f;
	} else if (c->mask == MASK_FULL) {
		in->m = falloc(n);
		in->mask_full = C > 1;
		for (size_t i = 0; i < n; i++)
			in->m[i] = urand() < 0.8 ? 1.0f : 0.0f;
		/* the same in every channel where pixels are the unit (softmax, ce) */
		int per_pixel = c->act == SL_ACT_SOFTMAX;
		for (int p = 0; p < c->npix; p++)
			per_pixel |= c->pix[p].type == SL_PX_CE;
		if (per_pixel)
			for (size_t nn = 0; nn < N; nn++)
				for (size_t ch = 1; ch < C; ch++)
					memcpy(in->m + (nn * C + ch) * S, in->m + nn * C * S, S * sizeof(float));
	}
}

static void free_inputs(linputs *in)
{
	free(in->x);
	free(in->t);
	free(in->m);
}

static void run_case(const sl_kern *k, const lcase *c, const linputs *in, lresult *res)
{
	sl_lossrun *run = calloc(1, sizeof *run);
	if (!run) {
		fprintf(stderr, "kernels: out of memory\n");
		exit(2);
	}
	size_t n = in->N * in->C * in->M;
	sl_loss_init(run, in->N, in->C, in->M, in->x, in->t, c->labels, c->act, 1e-7f);
	run->job.m = in->m;
	run->job.mask_full = in->mask_full;
	run->nreg = c->nreg;
	memcpy(run->reg, c->reg, sizeof c->reg);
	run->job.npix = c->npix;
	memcpy(run->job.pix, c->pix, sizeof c->pix);
	memcpy(run->pm, c->pm, sizeof c->pm);
	/* the class weights point into c, which outlives the run */
	run->want_grad = c->want_grad;
	run->out_user = c->out_user;
	run->stats_only = c->stats_only;
	res->out = falloc(n);
	for (size_t i = 0; i < n; i++) /* the caller's zeros, a buffer of garbage, or a gradient */
		res->out[i] = c->accumulate ? (float)((int)(i % 13) - 6) * 0.125f : c->out_user ? 0.0f : NAN;
	run->job.accumulate = c->accumulate;
	run->job.out = res->out;
	res->stats = calloc(in->N * in->C * SL_NSTAT, sizeof *res->stats);
	run->stats_mem = res->stats;
	sl_exec e = {k, 1, NULL};
	res->rc = sl_loss_run(&e, run);
	res->bad = run->bad;
	res->total = run->total;
	sl_loss_free(run);
	free(run);
}

/* one case on both backends at spatial size S; returns 0 if it failed */
static int compare_case(const sl_kern *k, const lcase *c, size_t S, uint64_t sd, grp *g)
{
	linputs in;
	make_inputs(c, S, sd, &in);
	lresult r0, r1;
	run_case(&sl_kern_scalar, c, &in, &r0);
	run_case(k, c, &in, &r1);
	size_t n = in.N * in.C * in.M, ns = in.N * in.C * SL_NSTAT;
	int ok = 1;
	g->elems += (double)n;
	if (r0.rc != r1.rc || r0.rc != SL_OK) {
		fail(g, "%s S=%zu: status %d (bad %d at %zu) vs scalar %d (bad %d at %zu)", c->what, S, r1.rc,
		     r1.bad.kind, r1.bad.index, r0.rc, r0.bad.kind, r0.bad.index);
		ok = 0;
		goto done;
	}
	hash_double(g, r1.total);
	for (size_t i = 0; i < ns; i++)
		hash_double(g, r1.stats[i]);
	if (c->want_grad)
		hash_floats(g, r1.out, n);
	double le = fabs(r1.total - r0.total);
	worst(g, le / (fabs(r0.total) + 1e-30) < 1.0 ? le / (fabs(r0.total) + 1e-30) : 1.0);
	if (!(le <= 1e-5 * fabs(r0.total) + 1e-6)) {
		fail(g, "%s S=%zu: loss %.9g vs scalar %.9g", c->what, S, r1.total, r0.total);
		ok = 0;
	}
	for (size_t i = 0; i < ns; i++) {
		double d = fabs(r1.stats[i] - r0.stats[i]) / (fabs(r0.stats[i]) + 1e-6);
		worst(g, d);
		if (!(d <= 1e-5)) {
			fail(g, "%s S=%zu: statistic %zu (n,c %zu, k %zu) %.17g vs scalar %.17g", c->what, S, i,
			     i / SL_NSTAT, i % SL_NSTAT, r1.stats[i], r0.stats[i]);
			ok = 0;
			break;
		}
	}
	if (c->want_grad) {
		double scale = 0.0, err = 0.0;
		for (size_t i = 0; i < n; i++) {
			double a = fabs((double)r0.out[i]), d = fabs((double)r1.out[i] - (double)r0.out[i]);
			scale = a > scale ? a : scale;
			err = d > err || isnan(d) ? d : err;
			g->differ += bits_differ(r1.out[i], r0.out[i]);
		}
		if (scale > 0.0)
			worst(g, err / scale);
		if (!(err <= 2e-4 * scale + 1e-30)) {
			fail(g, "%s S=%zu: gradient differs by %.3g (scale %.3g)", c->what, S, err, scale);
			ok = 0;
		}
	}
done:
	free(r0.out);
	free(r1.out);
	free(r0.stats);
	free(r1.stats);
	free_inputs(&in);
	return ok;
}

static void loss_variants(const sl_kern *k, grp *g)
{
	const sl_lossvars *lv = k->loss_variants;
	g->bound = 2e-4;
	if (!lv || lv->n == 0) {
		fail(g, "backend %s has no loss variants", k->name);
		return;
	}
	static const size_t sizes[] = {9, 37, 1000};
	unsigned long missed0 = lv->calls[lv->n];
	for (int vi = 0; vi < lv->n; vi++) {
		const sl_lossvar *v = &lv->v[vi];
		unsigned long before = lv->calls[vi];
		for (int si = 0; si < 3; si++) {
			lcase c = case_for(v, si);
			/* re-point the class weights at this copy */
			for (int p = 0; p < c.npix; p++)
				if (c.pix[p].cw) {
					c.pix[p].cw = c.cw;
					c.pix[p].cwv = c.cwv;
				}
			compare_case(k, &c, sizes[si], (uint64_t)(vi * 10 + si), g);
		}
		g->items++;
		if (lv->calls[vi] == before)
			fail(g, "%s did not run on %s", v->name, k->name);
	}
	if (lv->calls[lv->n] != missed0)
		fail(g, "%lu jobs found no variant (ran the scalar kernel)", lv->calls[lv->n] - missed0);
}

/* spec 12's option families: every region loss, pixel options, label
 * smoothing, class weights, include_background, reductions, saturated
 * logits, more than 64 channels; spatial sizes below, at and above 1, 2
 * and 3 vectors of 8 and a block edge */
static void loss_options(const sl_kern *k, grp *g)
{
	static const size_t sizes[] = {1, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24, 25, 63, 1000, 16385};
	lcase cs[40];
	int nc = 0;
	lcase *c;
#define NEWCASE(W, A, LAB, MSK, CC)                                                           \
	c = &cs[nc++];                                                                        \
	memset(c, 0, sizeof *c);                                                              \
	c->what = W;                                                                          \
	c->act = A;                                                                           \
	c->labels = LAB;                                                                      \
	c->mask = MSK;                                                                        \
	c->C = CC;                                                                            \
	c->xscale = 4.0;                                                                      \
	c->want_grad = 1;                                                                     \
	c->out_user = 1
	static const int regions[] = {SL_R_DICE, SL_R_IOU, SL_R_TVERSKY, SL_R_FTVERSKY, SL_R_SENSSPEC,
	                              SL_R_GDICE, SL_R_LCDICE};
	static const char *rnames[] = {"dice", "iou", "tversky", "focal_tversky", "sensitivity_specificity",
	                               "generalized_dice", "log_cosh_dice"};
	for (int r = 0; r < 7; r++) {
		NEWCASE(rnames[r], SL_ACT_SOFTMAX, 1, MASK_NONE, 3);
		c->xscale = 1.5;
		add_reg(c, region(regions[r]));
		NEWCASE(rnames[r], SL_ACT_SIGMOID, 0, MASK_PIX, 2);
		c->xscale = 1.5;
		add_reg(c, region(regions[r]));
	}
	NEWCASE("dice complement, none, squared, batch", SL_ACT_NONE, 0, MASK_FULL, 2);
	sl_regpart rp = region(SL_R_DICE);
	rp.complement = 1;
	add_reg(c, rp);
	rp = region(SL_R_DICE);
	rp.squared = 1;
	rp.batch = 1;
	add_reg(c, rp);
	NEWCASE("bce pos_weight auto, sum", SL_ACT_SIGMOID, 0, MASK_PIX, 1);
	add_pix(c, SL_PX_BCE, 1.0);
	c->pm[0].pos_auto = 1;
	c->pm[0].reduction = SL_RED_SUM;
	NEWCASE("bce none, label_smoothing 0.2", SL_ACT_NONE, 0, MASK_PIX, 2);
	smooth(add_pix(c, SL_PX_BCE, 1.0), 0.2, 2.0);
	NEWCASE("bce sigmoid, label_smoothing 0.1, saturated", SL_ACT_SIGMOID, 0, MASK_NONE, 2);
	smooth(add_pix(c, SL_PX_BCE, 1.0), 0.1, 2.0);
	c->xscale = 40.0;
	NEWCASE("ce softmax, weights, include_background false", SL_ACT_SOFTMAX, 1, MASK_PIX, 4);
	sl_pixk *p = add_pix(c, SL_PX_CE, 1.0);
	p->c0 = 1;
	for (int i = 0; i < 4; i++)
		c->cw[i] = i == 1 ? 2.0f : i == 2 ? 0.5f : 1.0f;
	p->cw = c->cw;
	NEWCASE("ce softmax, label_smoothing 0.1, saturated", SL_ACT_SOFTMAX, 1, MASK_NONE, 3);
	smooth(add_pix(c, SL_PX_CE, 1.0), 0.1, 3.0);
	c->xscale = 40.0;
	NEWCASE("ce none, label_smoothing 0.3", SL_ACT_NONE, 0, MASK_NONE, 3);
	smooth(add_pix(c, SL_PX_CE, 1.0), 0.3, 3.0);
	NEWCASE("focal gamma 2.5, no alpha", SL_ACT_SIGMOID, 0, MASK_NONE, 1);
	p = add_pix(c, SL_PX_FOCAL, 1.0);
	p->gamma = 2.5f;
	p->alpha_on = 0;
	NEWCASE("focal none, gamma 1", SL_ACT_NONE, 0, MASK_PIX, 1);
	add_pix(c, SL_PX_FOCAL, 1.0)->gamma = 1.0f;
	NEWCASE("focal softmax, gamma 1, label_smoothing 0.2", SL_ACT_SOFTMAX, 1, MASK_PIX, 3);
	p = add_pix(c, SL_PX_FOCAL, 1.0);
	p->gamma = 1.0f;
	smooth(p, 0.2, 3.0);
	NEWCASE("dice + focal sigmoid, saturated, own buffer", SL_ACT_SIGMOID, 0, MASK_PIX, 2);
	add_pix(c, SL_PX_FOCAL, 1.0);
	add_reg(c, region(SL_R_DICE));
	c->xscale = 40.0;
	c->out_user = 0;
	NEWCASE("bce + dice sigmoid, label_smoothing, saturated", SL_ACT_SIGMOID, 0, MASK_NONE, 2);
	smooth(add_pix(c, SL_PX_BCE, 1.0), 0.1, 2.0);
	add_reg(c, region(SL_R_DICE));
	c->xscale = 40.0;
	c->out_user = 0;
	NEWCASE("ce softmax, 70 classes, weights", SL_ACT_SOFTMAX, 1, MASK_NONE, 70);
	p = add_pix(c, SL_PX_CE, 1.0);
	for (int i = 0; i < 70; i++)
		c->cw[i] = 0.5f + (float)i / 69.0f;
	p->cw = c->cw;
	NEWCASE("dice + focal softmax, 70 classes, mask", SL_ACT_SOFTMAX, 1, MASK_PIX, 70);
	add_pix(c, SL_PX_FOCAL, 1.0);
	add_reg(c, region(SL_R_DICE));
	NEWCASE("dice sigmoid, 70 channels", SL_ACT_SIGMOID, 1, MASK_NONE, 70);
	add_reg(c, region(SL_R_DICE));
	/* the accumulate mode (out = out + g) of generic parts' split runs */
	NEWCASE("bce sigmoid, accumulate", SL_ACT_SIGMOID, 0, MASK_NONE, 2);
	add_pix(c, SL_PX_BCE, 1.0);
	c->accumulate = 1;
	NEWCASE("focal sigmoid, mask, accumulate", SL_ACT_SIGMOID, 1, MASK_PIX, 3);
	add_pix(c, SL_PX_FOCAL, 1.0);
	c->accumulate = 1;
	NEWCASE("ce softmax, accumulate", SL_ACT_SOFTMAX, 1, MASK_PIX, 3);
	add_pix(c, SL_PX_CE, 1.0);
	c->accumulate = 1;
	NEWCASE("dice + focal none, accumulate", SL_ACT_NONE, 0, MASK_FULL, 2);
	add_pix(c, SL_PX_FOCAL, 1.0);
	add_reg(c, region(SL_R_DICE));
	c->accumulate = 1;
	NEWCASE("dice sigmoid, value only", SL_ACT_SIGMOID, 0, MASK_NONE, 1);
	add_reg(c, region(SL_R_DICE));
	c->want_grad = 0;
#undef NEWCASE
	g->bound = 2e-4;
	for (int i = 0; i < nc; i++) {
		int wide = cs[i].C > 64;
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			size_t S = sizes[si];
			if (wide && S > 1000)
				continue;
			compare_case(k, &cs[i], S, (uint64_t)(5000 + 100 * i + (int)si), g);
		}
		g->items++;
	}
}

/* A bad element where the driver validates: in the statistics pass (a
 * region part), in the fused pass (a pixel part alone), in the check pass
 * (a mean under a mask, into the caller's out). Both backends must stop
 * with the same kind at the same index. */
static void loss_bad_inputs(const sl_kern *k, grp *g)
{
	typedef struct badk {
		const char *what;
		int act, labels, tgt; /* tgt: put it into t (1), m (2) or x (0) */
		float v;
	} badk;
	static const badk kinds[] = {
		{"x NaN", SL_ACT_SIGMOID, 0, 0, NAN},     {"x +Inf", SL_ACT_SIGMOID, 0, 0, INFINITY},
		{"x -Inf", SL_ACT_SOFTMAX, 1, 0, -INFINITY}, {"x 1.5 (none)", SL_ACT_NONE, 0, 0, 1.5f},
		{"x -0.25 (none)", SL_ACT_NONE, 0, 0, -0.25f}, {"x NaN (none)", SL_ACT_NONE, 0, 0, NAN},
		{"t 1.5", SL_ACT_SIGMOID, 0, 1, 1.5f},    {"t NaN", SL_ACT_SIGMOID, 0, 1, NAN},
		{"t -0.5", SL_ACT_NONE, 0, 1, -0.5f},     {"label 1.5", SL_ACT_SOFTMAX, 1, 1, 1.5f},
		{"label 3 of 3", SL_ACT_SOFTMAX, 1, 1, 3.0f}, {"label -1", SL_ACT_SIGMOID, 1, 1, -1.0f},
		{"label NaN", SL_ACT_SOFTMAX, 1, 1, NAN}, {"mask 0.5", SL_ACT_SIGMOID, 0, 2, 0.5f},
		{"mask NaN", SL_ACT_SOFTMAX, 1, 2, NAN},
	};
	static const size_t S = 37;
	for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
		const badk *b = &kinds[ki];
		for (int where = 0; where < 3; where++) { /* stats, fused, check pass */
			lcase c;
			memset(&c, 0, sizeof c);
			c.what = b->what;
			c.act = b->act;
			c.labels = b->labels;
			c.mask = MASK_PIX;
			c.C = b->labels || b->act == SL_ACT_SOFTMAX ? 3 : 2;
			c.xscale = 4.0;
			c.want_grad = 1;
			c.out_user = 1;
			if (where == 0)
				add_reg(&c, region(SL_R_DICE));
			if (where >= 1)
				add_pix(&c, b->act == SL_ACT_SOFTMAX ? SL_PX_CE : SL_PX_BCE, 1.0);
			if (where == 1) { /* into a buffer of the run's own, no Σm: the fused pass checks */
				c.pm[0].reduction = SL_RED_SUM;
				c.out_user = 0;
			}
			/* where == 2: a mean under a mask into the caller's out: check passes first */
			/* first bad element: in a whole vector, in the tail, in sample 1 */
			static const size_t pos[] = {0, 5, 33, 36};
			for (size_t pi = 0; pi < 4; pi++)
				for (int smp = 0; smp < 2; smp++) {
					linputs in;
					make_inputs(&c, S, 7000 + ki * 100 + (size_t)where * 10 + pi, &in);
					size_t s = pos[pi], ch = c.C - 1;
					if (b->tgt == 0)
						in.x[((size_t)smp * c.C + ch) * S + s] = b->v;
					else if (b->tgt == 1 && b->labels)
						in.t[(size_t)smp * S + s] = b->v;
					else if (b->tgt == 1)
						in.t[((size_t)smp * c.C + ch) * S + s] = b->v;
					else
						in.m[(size_t)smp * S + s] = b->v;
					/* and a second one later, which must not be the one reported */
					if (b->tgt == 0 && s + 1 < S)
						in.x[((size_t)smp * c.C) * S + S - 1] = b->v;
					lresult r0, r1;
					run_case(&sl_kern_scalar, &c, &in, &r0);
					run_case(k, &c, &in, &r1);
					g->elems += (double)(in.N * in.C * in.M);
					hash_bytes(g, &r1.rc, sizeof r1.rc);
					hash_bytes(g, &r1.bad.kind, sizeof r1.bad.kind);
					hash_bytes(g, &r1.bad.index, sizeof r1.bad.index);
					if (r0.rc != SL_ERR_INPUT)
						fail(g, "%s (pass %d, at %zu, sample %d): scalar did not fail (status %d)",
						     b->what, where, s, smp, r0.rc);
					else if (r1.rc != r0.rc || r1.bad.kind != r0.bad.kind ||
					         r1.bad.index != r0.bad.index || !same(r1.bad.value, r0.bad.value))
						fail(g, "%s (pass %d, at %zu, sample %d): status %d, bad %d at %zu (%g) vs "
						        "scalar %d, bad %d at %zu (%g)",
						     b->what, where, s, smp, r1.rc, r1.bad.kind, r1.bad.index,
						     (double)r1.bad.value, r0.rc, r0.bad.kind, r0.bad.index,
						     (double)r0.bad.value);
					/* nothing written into the caller's out */
					for (size_t i = 0; c.out_user && i < in.N * in.C * in.M; i++)
						if (r1.out[i] != 0.0f) {
							fail(g, "%s (pass %d): out written before the failure", b->what, where);
							break;
						}
					free(r0.out);
					free(r1.out);
					free(r0.stats);
					free(r1.stats);
					free_inputs(&in);
				}
			g->items++;
		}
	}
}

/* ---- 5. the network's kernels (nnkern.h), each entry counted ---------- */

static const sl_nnkern *nn_inner;
enum { NN_ACT, NN_ACT_BWD, NN_POOL2, NN_POOL2_BWD, NN_MOMENTS, NN_AFFINE, NN_BSTATS, NN_NORM_BWD,
       NN_LERP, NN_AXPY, NN_UP2, NN_UP2_ADJ, NN_NEAR2, NN_NEAR2_ADJ, NN_SGD, NN_ADAM, NN_N };
static const char *nn_names[NN_N] = {"act", "act_bwd", "pool2", "pool2_bwd", "moments", "affine",
                                     "norm_bstats", "norm_bwd", "lerp", "axpy", "up2", "up2_adj",
                                     "near2", "near2_adj", "sgd", "adam"};
static unsigned long nn_calls[NN_N];

static void w_act(size_t n, const float *x, float *y, float s)
{
	nn_calls[NN_ACT]++;
	nn_inner->act(n, x, y, s);
}
static void w_act_bwd(size_t n, const float *x, const float *gy, float *gx, float s)
{
	nn_calls[NN_ACT_BWD]++;
	nn_inner->act_bwd(n, x, gy, gx, s);
}
static void w_pool2(size_t wo, size_t nr, const float *const *rows, float *y)
{
	nn_calls[NN_POOL2]++;
	nn_inner->pool2(wo, nr, rows, y);
}
static void w_pool2_bwd(size_t wo, size_t w, size_t nr, const float *const *rows, const float *gy,
                        float *const *grows)
{
	nn_calls[NN_POOL2_BWD]++;
	nn_inner->pool2_bwd(wo, w, nr, rows, gy, grows);
}
static void w_moments(size_t n, const float *x, float shift, double *s1, double *s2)
{
	nn_calls[NN_MOMENTS]++;
	nn_inner->moments(n, x, shift, s1, s2);
}
static void w_affine(size_t n, const float *x, float a, float b, float *y)
{
	nn_calls[NN_AFFINE]++;
	nn_inner->affine(n, x, a, b, y);
}
static void w_bstats(size_t n, const float *x, const float *gy, float mean, double *sg, double *sgx)
{
	nn_calls[NN_BSTATS]++;
	nn_inner->norm_bstats(n, x, gy, mean, sg, sgx);
}
static void w_norm_bwd(size_t n, const float *x, const float *gy, float *gx, float mean, float gm,
                       float kk, float s)
{
	nn_calls[NN_NORM_BWD]++;
	nn_inner->norm_bwd(n, x, gy, gx, mean, gm, kk, s);
}
static void w_lerp(size_t n, const float *a, float wa, const float *b, float wb, float *y)
{
	nn_calls[NN_LERP]++;
	nn_inner->lerp(n, a, wa, b, wb, y);
}
static void w_axpy(size_t n, float w, const float *x, float *y)
{
	nn_calls[NN_AXPY]++;
	nn_inner->axpy(n, w, x, y);
}
static void w_up2(size_t w, size_t nr, const float *const *rows, const float *wt, float *y)
{
	nn_calls[NN_UP2]++;
	nn_inner->up2(w, nr, rows, wt, y);
}
static void w_up2_adj(size_t w, size_t nz, const float *wz, size_t ny, const float *wy,
                      const float *const *rows, float *gx)
{
	nn_calls[NN_UP2_ADJ]++;
	nn_inner->up2_adj(w, nz, wz, ny, wy, rows, gx);
}
static void w_near2(size_t w, const float *x, float *y)
{
	nn_calls[NN_NEAR2]++;
	nn_inner->near2(w, x, y);
}
static void w_near2_adj(size_t w, const float *gg, float *acc)
{
	nn_calls[NN_NEAR2_ADJ]++;
	nn_inner->near2_adj(w, gg, acc);
}
static void w_sgd(size_t n, float *p, const float *gg, float *buf, const sl_sgd_par *o)
{
	nn_calls[NN_SGD]++;
	nn_inner->sgd(n, p, gg, buf, o);
}
static void w_adam(size_t n, float *p, const float *gg, float *m, float *v, const sl_adam_par *o)
{
	nn_calls[NN_ADAM]++;
	nn_inner->adam(n, p, gg, m, v, o);
}

static const sl_nnkern nn_counted = {
	.act = w_act, .act_bwd = w_act_bwd, .pool2 = w_pool2, .pool2_bwd = w_pool2_bwd,
	.moments = w_moments, .affine = w_affine, .norm_bstats = w_bstats, .norm_bwd = w_norm_bwd,
	.lerp = w_lerp, .axpy = w_axpy, .up2 = w_up2, .up2_adj = w_up2_adj, .near2 = w_near2,
	.near2_adj = w_near2_adj, .sgd = w_sgd, .adam = w_adam,
};

/* values with many ties, both zeros, and NaNs (spec 41's tied) */
static float *tied(size_t n, int nans)
{
	float *x = falloc(n);
	for (size_t i = 0; i < n; i++) {
		float v = floorf(randn() * 1.5f) / 2.0f;
		if (v == 0.0f && i % 2 == 1)
			v = -0.0f;
		if (nans && i % 37 == 4)
			v = NAN;
		x[i] = v;
	}
	return x;
}

typedef struct nncase {
	size_t N, C, D, H, W;
	int nd;
} nncase;

static sl_geom geom_of(const nncase *s)
{
	return (sl_geom){s->N * s->C, s->D, s->H, s->W, s->nd};
}

/* runs every nn driver on backend e; outputs into out[] (allocated here) */
enum { O_ACT, O_ACT_BWD, O_POOL2, O_POOL3, O_POOL_BWD, O_UPL, O_UPN, O_UPL3, O_UPN3, O_UPL_BWD,
       O_UPN_BWD, O_UPL3_BWD, O_NORM_Y, O_NORM_MEAN, O_NORM_INV, O_NORM_RM, O_NORM_RV, O_INST_Y,
       O_INST_MEAN, O_INST_INV, O_NBWD_GX, O_NBWD_GW, O_NBWD_GB, O_IBWD_GX, O_IBWD_GW, O_IBWD_GB,
       O_CONCAT, O_SGD_P, O_SGD_BUF, O_ADAM_P, O_ADAM_M, O_ADAM_V, O_N };
static const char *o_names[O_N] = {
	"act", "act_bwd", "maxpool k=2", "maxpool k=3", "maxpool_bwd", "upsample linear x2",
	"upsample nearest x2", "upsample linear x3", "upsample nearest x3", "upsample_bwd linear x2",
	"upsample_bwd nearest x2", "upsample_bwd linear x3", "norm batch y", "norm batch mean",
	"norm batch invstd", "norm running_mean", "norm running_var", "norm instance y",
	"norm instance mean", "norm instance invstd", "norm_bwd batch gx", "norm_bwd batch gw",
	"norm_bwd batch gb", "norm_bwd instance gx", "norm_bwd instance gw", "norm_bwd instance gb",
	"concat", "sgd p", "sgd buf", "adam p", "adam m", "adam v"};
/* spec 41's tolerances, in ulps */
static double o_tol(int o)
{
	if (o >= O_NORM_Y && o <= O_INST_INV)
		return 2;
	if (o >= O_NBWD_GX && o <= O_IBWD_GB)
		return 4;
	return 0;
}

typedef struct nnin {
	float *x, *xn, *xu, *gy, *w, *b, *gp, *gu, *gu3;
	/* the scalar forward's saved statistics, for both backwards */
	float *bmean, *binv, *imean, *iinv;
} nnin;

static void nn_run(const sl_exec *e, const nncase *s, const nnin *in, float **out, size_t *len)
{
	sl_geom g = geom_of(s);
	size_t n = s->N * s->C * s->D * s->H * s->W, C = s->C, M = s->D * s->H * s->W;
	size_t dk2 = s->nd == 3 ? s->D / 2 : 1, dk3 = s->nd == 3 ? s->D / 3 : 1;
	size_t np2 = g.planes * dk2 * (s->H / 2) * (s->W / 2), np3 = g.planes * dk3 * (s->H / 3) * (s->W / 3);
	size_t sd2 = s->nd == 3 ? 2 : 1, sd3 = s->nd == 3 ? 3 : 1;
	size_t nu2 = n * sd2 * 4, nu3 = n * sd3 * 9;
	size_t sizes[O_N] = {n, n, np2, np3, n, nu2, nu2, nu3, nu3, n, n, n, n, C, C, C, C, n,
	                     s->N * C, s->N * C, n, C, C, n, C, C, 2 * n, n, n, n, n, n};
	for (int o = 0; o < O_N; o++) {
		out[o] = falloc(sizes[o]);
		len[o] = sizes[o];
		memset(out[o], 0, sizes[o] * sizeof(float));
	}
	sl_nn_act(e, n, in->x, out[O_ACT], 0.01f);
	sl_nn_act_bwd(e, n, in->x, in->gy, out[O_ACT_BWD], 0.01f);
	sl_nn_maxpool(e, &g, 2, in->x, out[O_POOL2]);
	sl_nn_maxpool(e, &g, 3, in->x, out[O_POOL3]);
	sl_nn_maxpool_bwd(e, &g, 2, in->x, in->gp, out[O_POOL_BWD]);
	sl_nn_upsample(e, &g, SL_UP_LINEAR, 2, in->xu, out[O_UPL]);
	sl_nn_upsample(e, &g, SL_UP_NEAREST, 2, in->xu, out[O_UPN]);
	sl_nn_upsample(e, &g, SL_UP_LINEAR, 3, in->xu, out[O_UPL3]);
	sl_nn_upsample(e, &g, SL_UP_NEAREST, 3, in->xu, out[O_UPN3]);
	sl_nn_upsample_bwd(e, &g, SL_UP_LINEAR, 2, in->gu, out[O_UPL_BWD]);
	sl_nn_upsample_bwd(e, &g, SL_UP_NEAREST, 2, in->gu, out[O_UPN_BWD]);
	sl_nn_upsample_bwd(e, &g, SL_UP_LINEAR, 3, in->gu3, out[O_UPL3_BWD]);
	for (size_t c = 0; c < C; c++)
		out[O_NORM_RV][c] = 1.0f;
	sl_normjob nb = {s->N, C, M, SL_NORM_BATCH, 1e-5, 0.1, in->w, in->b, out[O_NORM_MEAN],
	                 out[O_NORM_INV], out[O_NORM_RM], out[O_NORM_RV]};
	sl_nn_norm(e, &nb, in->xn, out[O_NORM_Y]);
	sl_normjob ni = {s->N, C, M, SL_NORM_INSTANCE, 1e-5, 0.1, in->w, in->b, out[O_INST_MEAN],
	                 out[O_INST_INV], NULL, NULL};
	sl_nn_norm(e, &ni, in->xn, out[O_INST_Y]);
	sl_normjob bb = nb, ib = ni;
	bb.mean = in->bmean;
	bb.invstd = in->binv;
	bb.rmean = bb.rvar = NULL;
	ib.mean = in->imean;
	ib.invstd = in->iinv;
	sl_nn_norm_bwd(e, &bb, in->xn, in->gy, out[O_NBWD_GX], out[O_NBWD_GW], out[O_NBWD_GB]);
	sl_nn_norm_bwd(e, &ib, in->xn, in->gy, out[O_IBWD_GX], out[O_IBWD_GW], out[O_IBWD_GB]);
	sl_nn_concat(e, s->N, n / s->N, n / s->N, in->x, in->gy, out[O_CONCAT]);
	/* optimisers: SGD nesterov (first step, then another), Adam then AdamW */
	memcpy(out[O_SGD_P], in->x, n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		if (isnan(out[O_SGD_P][i]))
			out[O_SGD_P][i] = 0.5f;
	sl_sgd_par sp = {.neg_lr = -0.1f, .wd = 1e-4f, .momentum = 0.9f, .one_m_damp = 1.0f,
	                 .nesterov = 1, .first = 1};
	sl_nn_sgd(e, n, out[O_SGD_P], in->gy, out[O_SGD_BUF], &sp);
	sp.first = 0;
	sl_nn_sgd(e, n, out[O_SGD_P], in->gy, out[O_SGD_BUF], &sp);
	memcpy(out[O_ADAM_P], out[O_SGD_P], n * sizeof(float));
	for (int step = 1; step <= 2; step++) {
		double b1 = 0.9, b2 = 0.999, lr = 1e-3, wd = 0.01;
		int decoupled = step == 1;
		double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
		sl_adam_par ap = {.decay = decoupled ? (float)(1.0 - lr * wd) : 1.0f,
		                  .wd = decoupled ? 0.0f : (float)wd, .beta1 = (float)b1,
		                  .one_m_beta1 = (float)(1.0 - b1), .beta2 = (float)b2,
		                  .one_m_beta2 = (float)(1.0 - b2), .bc2_sqrt = (float)sqrt(bc2),
		                  .eps = 1e-8f, .neg_step = (float)(-lr / bc1)};
		sl_nn_adam(e, n, out[O_ADAM_P], in->gy, out[O_ADAM_M], out[O_ADAM_V], &ap);
	}
}

static void nn_kernels(const sl_kern *k, grp *g)
{
	/* spec 41's shapes: W = 37 (pooled 18 = 2 vectors of 8 + 2), 35, 8k+1;
	 * 130 x 131 spans two blocks; and 5-D ones */
	static const nncase cases[] = {
		{2, 3, 1, 10, 37, 2}, {1, 5, 1, 7, 17, 2}, {2, 3, 1, 130, 131, 2}, {1, 3, 6, 10, 35, 3},
		{2, 2, 3, 4, 9, 3},   {1, 2, 1, 3, 4, 2},  {1, 1, 3, 5, 17, 3},
	};
	sl_kern counted = *k;
	nn_inner = k->nn;
	counted.nn = &nn_counted;
	memset(nn_calls, 0, sizeof nn_calls);
	sl_exec es = {&sl_kern_scalar, 1, NULL}, ek = {&counted, 1, NULL};
	double mx[O_N] = {0};
	g->bound = 4;
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		const nncase *s = &cases[ci];
		size_t n = s->N * s->C * s->D * s->H * s->W, C = s->C;
		seed(4103 + ci);
		nnin in;
		in.x = tied(n, 1);
		in.xn = frandn(n, 1.0f);
		in.xu = frandn(n, 1.0f);
		in.gy = frandn(n, 1.0f);
		in.w = frandn(C, 1.0f);
		in.b = frandn(C, 1.0f);
		in.gp = frandn(n, 1.0f);
		in.gu = frandn(n * 8, 1.0f);
		in.gu3 = frandn(n * 27, 1.0f);
		in.bmean = falloc(C);
		in.binv = falloc(C);
		in.imean = falloc(s->N * C);
		in.iinv = falloc(s->N * C);
		/* special values where the kernels must keep the same bits (the
		 * normalisations and the optimisers take finite inputs) */
		if (n >= 8) {
			in.xu[1] = -0.0f;
			in.xu[3] = INFINITY;
			in.xu[n - 2] = NAN;
			in.gp[2] = NAN;
			in.gp[4] = -INFINITY;
			in.gu[5] = NAN;
			in.gu[0] = -0.0f;
			in.gu[8 * n - 1] = INFINITY;
		}
		{
			size_t M = s->D * s->H * s->W;
			float *tmp = falloc(n);
			sl_normjob nb = {s->N, C, M, SL_NORM_BATCH, 1e-5, 0.1, in.w, in.b, in.bmean, in.binv,
			                 NULL, NULL};
			sl_normjob ni = {s->N, C, M, SL_NORM_INSTANCE, 1e-5, 0.1, in.w, in.b, in.imean, in.iinv,
			                 NULL, NULL};
			sl_nn_norm(&es, &nb, in.xn, tmp);
			sl_nn_norm(&es, &ni, in.xn, tmp);
			free(tmp);
		}
		float *ro[O_N], *ko[O_N];
		size_t rl[O_N], kl[O_N];
		nn_run(&es, s, &in, ro, rl);
		nn_run(&ek, s, &in, ko, kl);
		for (int o = 0; o < O_N; o++) {
			char what[96];
			snprintf(what, sizeof what, "%s {%zu,%zu,%zu,%zu,%zu}", o_names[o], s->N, s->C, s->D,
			         s->H, s->W);
			double d = cmp_floats(g, what, rl[o], ko[o], ro[o], o_tol(o));
			mx[o] = d > mx[o] ? d : mx[o];
			free(ro[o]);
			free(ko[o]);
		}
		free(in.x);
		free(in.xn);
		free(in.xu);
		free(in.gy);
		free(in.w);
		free(in.b);
		free(in.gp);
		free(in.gu);
		free(in.gu3);
		free(in.bmean);
		free(in.binv);
		free(in.imean);
		free(in.iinv);
	}
	g->items = O_N;
	for (int o = 0; o < O_N; o++)
		if (mx[o] > 0.0)
			progress("  %-26s max %.0f ulp (tolerance %.0f)", o_names[o], mx[o], o_tol(o));
	char calls[512];
	size_t at = 0;
	for (int i = 0; i < NN_N; i++) {
		if (nn_calls[i] == 0)
			fail(g, "the %s kernel of %s was never called", nn_names[i], k->name);
		at += (size_t)snprintf(calls + at, sizeof calls - at, "%s%s %lu", i ? ", " : "", nn_names[i],
		                       nn_calls[i]);
		if (at >= sizeof calls)
			at = sizeof calls - 1;
	}
	progress("  calls of the %s nn table: %s", k->name, calls);
}

/* ---- main -------------------------------------------------------------- */

static void report(const sl_kern *k, const grp *g)
{
	char b[32];
	if (g->bound >= 0)
		snprintf(b, sizeof b, "%g", g->bound);
	else
		snprintf(b, sizeof b, "-");
	printf("%-5s %-16s %4ld %-9s %12.0f elements, max %-10.3g %-14s (bound %s), %ld differ from "
	       "scalar in bits, results %016llx: %s\n",
	       k->name, g->name, g->items, strcmp(g->name, "loss variants") == 0 ? "variants" :
	                                   strcmp(g->name, "loss options") == 0 ? "cases" : "checks",
	       g->elems, g->worst, g->unit, b, g->differ, (unsigned long long)g->hash,
	       g->fails ? "FAIL" : "pass");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	size_t points = 10000000;
	int threads = 2;
	const char *expect = NULL, *only = NULL, *hashes = NULL, *same_bits = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--points") == 0 && i + 1 < argc)
			points = (size_t)atof(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			expect = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--hashes") == 0 && i + 1 < argc)
			hashes = argv[++i];
		else if (strcmp(argv[i], "--same-bits") == 0 && i + 1 < argc)
			same_bits = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--points N] [--threads T] [--expect NAME] [--only NAME] "
			        "[--hashes FILE] [--same-bits FILE]\n", argv[0]);
			return 2;
		}
	}
	if (points < 1000)
		points = 1000;
	t_start = now();

	const sl_kern *avail[SL_MAX_BACKENDS];
	int na = sl_kern_available(avail);
	char list[128] = "";
	for (int i = 0; i < na; i++) {
		strncat(list, avail[i]->name, sizeof list - strlen(list) - 2);
		if (i + 1 < na)
			strncat(list, " ", sizeof list - strlen(list) - 1);
	}
	int neon_macro = 0, native_neon = 0;
#if defined(__ARM_NEON)
	neon_macro = 1;
#endif
#if defined(SIMDE_ARM_NEON_A64V8_NATIVE)
	native_neon = 1;
#endif
	progress("machine %s; backends of this build, best first: %s; __ARM_NEON %s; SIMDe native "
	         "NEON %s",
#if defined(__aarch64__)
	         "aarch64",
#elif defined(__x86_64__)
	         "x86-64",
#else
	         "other",
#endif
	         list, neon_macro ? "defined" : "undefined", native_neon ? "yes" : "no");
	if (na < 2 || strcmp(avail[na - 1]->name, "scalar") != 0) {
		fprintf(stderr, "kernels: no SIMD backend besides scalar in this build\n");
		return 1;
	}
	if (expect && strcmp(avail[0]->name, expect) != 0) {
		fprintf(stderr, "kernels: the default backend is %s, expected %s\n", avail[0]->name, expect);
		return 1;
	}
#if defined(__aarch64__)
	if (strcmp(avail[0]->name, "neon") != 0 || !neon_macro) {
		fprintf(stderr, "kernels: an AArch64 build without the neon backend\n");
		return 1;
	}
#endif

	/* the other run's hashes: "backend group hash" lines, the first backend's */
	char other[32] = "";
	unsigned long long other_hash[7] = {0};
	int other_n = 0;
	if (same_bits) {
		FILE *f = fopen(same_bits, "r");
		char line[256];
		while (f && fgets(line, sizeof line, f)) {
			char be[32];
			unsigned long long h;
			int gi;
			if (sscanf(line, "%31s %d %llx", be, &gi, &h) != 3 || gi < 0 || gi >= 7)
				continue;
			if (!other[0])
				memcpy(other, be, sizeof be);
			if (strcmp(be, other) == 0) {
				other_hash[gi] = h;
				other_n++;
			}
		}
		if (f)
			fclose(f);
		if (other_n != 7) {
			fprintf(stderr, "kernels: %s holds no complete set of hashes\n", same_bits);
			return 1;
		}
	}
	FILE *hf = hashes ? fopen(hashes, "w") : NULL;
	if (hashes && !hf) {
		fprintf(stderr, "kernels: cannot write %s\n", hashes);
		return 1;
	}
	long tested = 0, bits_differ_groups = 0;
	char names[128] = "";
	double elements = 0.0, vm_worst = 0.0, loss_worst = 0.0;
	for (int b = 0; b + 1 < na; b++) {
		const sl_kern *k = avail[b];
		if (only && strcmp(only, k->name) != 0)
			continue;
		tested++;
		if (names[0])
			strncat(names, " ", sizeof names - strlen(names) - 1);
		strncat(names, k->name, sizeof names - strlen(names) - 1);
		grp gs[7] = {
			{"vmath accuracy", "ulp vs libm", 0, 0, 0, -1, 0, 0, FNV0},
			{"vmath specials", "ulp", 0, 0, 0, 0, 0, 0, FNV0},
			{"vmath vs scalar", "ulp", 0, 0, 0, -1, 0, 0, FNV0},
			{"loss variants", "rel. error", 0, 0, 0, -1, 0, 0, FNV0},
			{"loss options", "rel. error", 0, 0, 0, -1, 0, 0, FNV0},
			{"loss bad inputs", "mismatches", 0, 0, 0, 0, 0, 0, FNV0},
			{"nn kernels", "ulp", 0, 0, 0, -1, 0, 0, FNV0},
		};
		progress("%s: (1/7) vector math accuracy, %zu points per function (pow %zu), %d threads",
		         k->name, points, points / 4, threads);
		vm_accuracy(k, points, threads, &gs[0]);
		progress("%s: (2/7) vector math special values", k->name);
		vm_specials(k, &gs[1]);
		progress("%s: (3/7) vector math, softmax, sum, dot, min/max, binop against scalar", k->name);
		vm_versus(k, &gs[2]);
		if (gs[2].differ == 0)
			fail(&gs[2], "no result differs from scalar in a single bit: is %s's code running?",
			     k->name);
		progress("%s: (4/7) every loss kernel variant of loss_variants.inc against scalar",
		         k->name);
		loss_variants(k, &gs[3]);
		progress("%s: (5/7) loss option families, sizes 1 .. 16385, saturated logits, 70 classes",
		         k->name);
		loss_options(k, &gs[4]);
		progress("%s: (6/7) bad inputs: the same first bad element as scalar", k->name);
		loss_bad_inputs(k, &gs[5]);
		gs[5].worst = (double)gs[5].fails;
		progress("%s: (7/7) the network's kernels against scalar", k->name);
		nn_kernels(k, &gs[6]);
		const sl_lossvars *lv = k->loss_variants;
		unsigned long vcalls = 0;
		int ran = 0;
		for (int i = 0; i < lv->n; i++) {
			vcalls += lv->calls[i];
			ran += lv->calls[i] > 0;
		}
		progress("%s: %d of %d loss variants ran, %lu kernel calls; %lu jobs missed the list",
		         k->name, ran, lv->n, vcalls, lv->calls[lv->n]);
		int differ = 0;
		for (int i = 0; i < 7; i++) {
			if (same_bits && gs[i].hash != other_hash[i]) {
				fail(&gs[i], "%s's results differ in bits from %s's (hash %016llx, %s %016llx)",
				     k->name, other, (unsigned long long)gs[i].hash, other, other_hash[i]);
				differ++;
				bits_differ_groups++;
			}
			report(k, &gs[i]);
			elements += gs[i].elems;
			if (hf)
				fprintf(hf, "%s %d %016llx\n", k->name, i, (unsigned long long)gs[i].hash);
		}
		if (same_bits && !differ)
			progress("%s: the same bits as %s in all 7 groups (hashes of every result)", k->name,
			         other);
		vm_worst = gs[0].worst > vm_worst ? gs[0].worst : vm_worst;
		loss_worst = gs[3].worst > loss_worst ? gs[3].worst : loss_worst;
		loss_worst = gs[4].worst > loss_worst ? gs[4].worst : loss_worst;
	}
	if (hf)
		fclose(hf);
	if (tested == 0) {
		fprintf(stderr, "kernels: backend %s is not available here\n", only ? only : "?");
		return 1;
	}
	char same[64] = "";
	if (same_bits)
		snprintf(same, sizeof same, ", %s %s's bits", bits_differ_groups ? "NOT" : "the same as",
		         other);
	printf("kernels: %s %ld SIMD backend%s (%s) against scalar, %.3g elements, vmath max %.3f ulp, "
	       "loss max rel. error %.2g%s, %ld failures, %.1f s\n",
	       total_fails ? "FAILED:" : "ok:", tested, tested == 1 ? "" : "s", names, elements,
	       vm_worst, loss_worst, same, total_fails, now() - t_start);
	return total_fails ? 1 : 0;
}
