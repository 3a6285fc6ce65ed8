/*
 * ops.h — threaded drivers over the kernels of one backend.
 *
 * Work is cut into blocks of SL_BLOCK elements (fixed, whatever the thread
 * count); threads take contiguous runs of blocks; reductions keep one partial
 * per block and fold them in block order. So every result is bit-identical
 * for any number of threads. Lua-free.
 */
#ifndef SL_OPS_H
#define SL_OPS_H

#include <stddef.h>

#include "kern/kern.h"

struct sl_exec;
typedef struct sl_exec {
	const sl_kern *k;
	int threads;
	/* if not NULL: raised to the largest team of threads that ran together
	 * (written by thread 0 of each parallel region), so that callers and
	 * tests can see that the threaded path really ran */
	int *team;
} sl_exec;

/* Called inside a parallel loop body: records the team's size in e->team.
 * Never assume the team has the size that was asked for — OpenMP may give
 * fewer threads (OMP_THREAD_LIMIT, OMP_DYNAMIC, nesting). */
void sl_note_team(const sl_exec *e);

/* Threads worth using for n elements (>= 1): small jobs stay on one. */
int sl_exec_threads(const sl_exec *e, size_t n);

/* y = f(x) elementwise; f is one of the unary kernels of e->k. */
void sl_op_map(const sl_exec *e, sl_unary_fn f, size_t n, const float *x, float *y);
/* y = x^g */
void sl_op_pow(const sl_exec *e, size_t n, const float *x, float g, float *y);
/* Σ x, in double. */
double sl_op_sum(const sl_exec *e, size_t n, const float *x);
/* Σ a b, products in float, sums in double. */
double sl_op_dot(const sl_exec *e, size_t n, const float *a, const float *b);
/* out = a op b elementwise (op: '+', '-', '*', '/'); b_scalar used when b is NULL,
 * swap: b_scalar op a. */
void sl_op_binary(const sl_exec *e, int op, size_t n, const float *a, const float *b,
                  float b_scalar, int swap, float *out);
/* min and max (NaN if any element is NaN); n >= 1. */
void sl_op_minmax(const sl_exec *e, size_t n, const float *x, float *mn, float *mx);
/* Softmax over axis 2 of an (N, C, M) array. */
void sl_op_softmax(const sl_exec *e, size_t N, size_t C, size_t M, const float *x, float *y);

#endif
