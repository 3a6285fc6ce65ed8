/*
 * vmcheck.h — accuracy of a backend's elementary functions against
 * double-precision libm, in ulps of the float result.
 */
#ifndef SL_VMCHECK_H
#define SL_VMCHECK_H

#include <stddef.h>

#include "kern.h"

typedef struct sl_vmcheck {
	size_t points;     /* inputs tested */
	double max_ulp;    /* largest |y - ref| / ulp(ref) over finite references */
	float worst_x;     /* the first input (in test order) where it occurs */
	float worst_y;
	double worst_ref;
	size_t bad;        /* results of the wrong class: NaN, ±Inf or overflow where the reference is not */
	float bad_x;       /* the first such input */
	float bad_y;
} sl_vmcheck;

/* The functions vmcheck knows: "exp", "log", "log1p", "sigmoid", "softplus",
 * "pow" (x^g on x in [0, 1]), and the sigmoid of the loss kernels: "sig_p",
 * "sig_q" (p and 1 - p of v_sig), "sig_log_p", "sig_log_q", "sig_log_spn"
 * (p, 1 - p and softplus(-x) of v_sig_log); NULL-terminated. */
extern const char *const sl_vmcheck_names[];

/* The special inputs every sweep starts with: ±0, subnormals, ±1 and their
 * neighbours, ±FLT_MAX, the overflow and underflow edges of exp, ±Inf, NaN
 * (also the edge values of the kernel tests, test/arm/kernels.c). */
extern const float sl_vmcheck_specials[];
extern const size_t sl_vmcheck_nspecials;

/* Tests kernel fn of backend k on npoints inputs spread over its domain
 * (half uniform in the float bit patterns, so every binade and the
 * subnormals are covered; half uniform on the central range), plus ±0,
 * subnormals, ±Inf, NaN and the overflow and underflow edges. Uses up to
 * `threads` threads; the result does not depend on their number.
 * Returns 0, or -1 if fn is unknown or memory runs out. */
int sl_vmcheck_run(const sl_kern *k, const char *fn, float g, size_t npoints, int threads,
                   sl_vmcheck *out);

#endif
