/*
 * ops.c — threaded drivers; see ops.h.
 */
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops.h"

/* Below this many elements a parallel region costs more than it saves. */
#define MIN_PER_THREAD (4 * SL_BLOCK)

int sl_exec_threads(const sl_exec *e, size_t n)
{
	size_t t = n / MIN_PER_THREAD;
	if (t < 1)
		t = 1;
	return (size_t)e->threads < t ? e->threads : (int)t;
}

static size_t nblocks(size_t n) { return (n + SL_BLOCK - 1) / SL_BLOCK; }

void sl_note_team(const sl_exec *e)
{
#ifdef _OPENMP
	if (e->team && omp_get_thread_num() == 0) {
		int n = omp_get_num_threads();
		if (n > *e->team)
			*e->team = n;
	}
#else
	(void)e;
#endif
}

void sl_op_map(const sl_exec *e, sl_unary_fn f, size_t n, const float *x, float *y)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t b = 0; b < nb; b++) {
		size_t i = b * SL_BLOCK, m = n - i < SL_BLOCK ? n - i : SL_BLOCK;
		sl_note_team(e);
		f(m, x + i, y + i);
	}
}

void sl_op_pow(const sl_exec *e, size_t n, const float *x, float g, float *y)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t b = 0; b < nb; b++) {
		size_t i = b * SL_BLOCK, m = n - i < SL_BLOCK ? n - i : SL_BLOCK;
		sl_note_team(e);
		e->k->pow(m, x + i, g, y + i);
	}
}

/* Partials live on the stack for up to STACK_BLOCKS blocks (16 M elements). */
#define STACK_BLOCKS 1024

/* The partial of one block: sum of a, or dot of a and b when b is given. */
static double block_partial(const sl_exec *e, size_t n, size_t blk, const float *a, const float *b)
{
	size_t i = blk * SL_BLOCK, m = n - i < SL_BLOCK ? n - i : SL_BLOCK;
	return b ? e->k->dot(m, a + i, b + i) : e->k->sum(m, a + i);
}

static double reduce(const sl_exec *e, size_t n, const float *a, const float *b)
{
	size_t nb = nblocks(n);
	double stack[STACK_BLOCKS];
	double *part = nb <= STACK_BLOCKS ? stack : malloc(nb * sizeof *part);
	double s = 0.0;
	if (!part) {
		/* Same blocks, same order, one thread: the same bits. */
		for (size_t blk = 0; blk < nb; blk++)
			s += block_partial(e, n, blk, a, b);
		return s;
	}
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t blk = 0; blk < nb; blk++) {
		sl_note_team(e);
		part[blk] = block_partial(e, n, blk, a, b);
	}
	for (size_t blk = 0; blk < nb; blk++)
		s += part[blk];
	if (part != stack)
		free(part);
	return s;
}

double sl_op_sum(const sl_exec *e, size_t n, const float *x) { return reduce(e, n, x, NULL); }

double sl_op_dot(const sl_exec *e, size_t n, const float *a, const float *b)
{
	return reduce(e, n, a, b);
}

void sl_op_binary(const sl_exec *e, int op, size_t n, const float *a, const float *b,
                  float b_scalar, int swap, float *out)
{
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t blk = 0; blk < nb; blk++) {
		size_t i = blk * SL_BLOCK, m = n - i < SL_BLOCK ? n - i : SL_BLOCK;
		sl_note_team(e);
		e->k->binop(op, m, a + i, b ? b + i : NULL, b_scalar, swap, out + i);
	}
}

void sl_op_minmax(const sl_exec *e, size_t n, const float *x, float *mn, float *mx)
{
	/* one (min, max) per block, folded in block order: right for whatever
	 * team OpenMP gives (every block is done by some thread), and min and
	 * max are exact, so any split gives the same result */
	size_t nb = nblocks(n);
	int nt = sl_exec_threads(e, n);
	float stack[2 * STACK_BLOCKS];
	float *part = nt <= 1 ? NULL : nb <= STACK_BLOCKS ? stack : malloc(2 * nb * sizeof *part);
	if (!part) {
		e->k->minmax(n, x, mn, mx);
		return;
	}
#pragma omp parallel for num_threads(nt) schedule(static)
	for (size_t blk = 0; blk < nb; blk++) {
		size_t i = blk * SL_BLOCK, m = n - i < SL_BLOCK ? n - i : SL_BLOCK;
		sl_note_team(e);
		e->k->minmax(m, x + i, &part[2 * blk], &part[2 * blk + 1]);
	}
	float a = part[0], b = part[1];
	int nan = a != a;
	for (size_t blk = 1; blk < nb; blk++) {
		float lo = part[2 * blk], hi = part[2 * blk + 1];
		nan |= lo != lo;
		a = lo < a ? lo : a;
		b = hi > b ? hi : b;
	}
	if (part != stack)
		free(part);
	if (nan)
		a = b = __builtin_nanf("");
	*mn = a;
	*mx = b;
}

void sl_op_softmax(const sl_exec *e, size_t N, size_t C, size_t M, const float *x, float *y)
{
	/* tiles of SL_BLOCK/C spatial positions (at least one vector) per task */
	size_t tile = SL_BLOCK / C < 64 ? 64 : SL_BLOCK / C;
	size_t per = (M + tile - 1) / tile, ntask = N * per;
	int nt = sl_exec_threads(e, N * C * M);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (size_t task = 0; task < ntask; task++) {
		size_t n = task / per, s0 = (task % per) * tile;
		size_t s1 = s0 + tile < M ? s0 + tile : M;
		sl_note_team(e);
		e->k->softmax(C, M, s0, s1, x + n * C * M, y + n * C * M);
	}
}
