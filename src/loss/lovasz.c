/*
 * lovasz.c — the Lovász hinge and the Lovász-softmax (Berman, Triki and
 * Blaschko, CVPR 2018) as generic parts (loss.h): the errors of each image
 * (or of the batch) are sorted, which no fused pass does. Lua-free.
 *
 * One engine serves both. A *group* is one image (per_image) or the whole
 * batch; an *item* is a (group, class) pair. For the valid elements of an
 * item, with e_i its error and t_i its target,
 *   hinge:   e_i = 1 - x_i (2 t_i - 1)  (x real scores, one class);
 *   softmax: e_i = |t_ci - p_ci|         (p from softmax, or x itself);
 * sorted decreasingly, ties by index;
 *   J_r = 1 - (G - Σ_{k<=r} t_(k)) / (G + Σ_{k<=r} (1 - t_(k))),  G = Σ t;
 *   L = Σ_r max(e_(r), 0) (J_r - J_{r-1}),  J_0 = 0.
 * An error <= 0 contributes nothing, and it sorts after every positive one,
 * so it changes no J before it: only the valid elements with e > 0 enter
 * the sort (G still sums t over every valid element).
 *
 * L is piecewise linear in the errors: where their order (and signs) is
 * fixed, dL/de_(r) = J_r - J_{r-1}. The gradient of the Lovász extension is
 * piecewise constant; it jumps where two errors swap places, and at ties it
 * is the one of the index order (the contract's tie rule).
 *
 * The sort: each error, computed in double, is rounded to float (a monotone
 * map), its bits turned into a key that orders decreasingly, and (key,
 * target bit, local index) entries are sorted by a stable radix sort of
 * three digits (11, 11 and 10 bits; a pass whose digit is the same for every
 * key is skipped): LSD for up to 65536 entries; above, the top digit first,
 * then each of its buckets, small enough to stay in cache, by the lower two. Stability keeps equal keys in index order; a run of equal
 * keys whose double errors differ (float rounding merged them) is then put
 * in order by an insertion sort on the double errors, stable too. So the
 * order is exactly that of the double errors, ties by index. An item makes
 * three passes: the entries in index order (branch-free); after the sort,
 * the steps Δ in rank order, stored at each entry's local index (with 0/1
 * targets this pass reads nothing but the sorted entries: the target is
 * the entry's bit); then the value and the gradient in index order again.
 * Only the sort's scatter and the store of Δ are random accesses.
 *
 * Threads: the items run in parallel (fixed items, each computed by one
 * thread); the passes before and after run over samples. Values are folded
 * in item order: the same bits for any thread count. The probabilities of
 * the softmax come from the scalar reference kernel on every backend: the
 * gradient jumps where errors swap places, so p must not differ in its last
 * bit between backends.
 */
#define _DEFAULT_SOURCE /* madvise */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "../kern/kern.h"
#include "../ops.h"
#include "generic.h"
#include "registry.h"
#include "validate.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

enum { HINGE, SOFTMAX };

#ifndef RADIX_BITS
#define RADIX_BITS 11
#endif
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_PASSES ((32 + RADIX_BITS - 1) / RADIX_BITS)
#define LOC_MASK 0x7fffffffu /* the local index in a sorted entry; bit 31: t (0/1 targets) */

/* What the items of one evaluation share. */
typedef struct lov {
	const sl_lossjob *j;
	int kind;
	size_t per;            /* samples per group */
	size_t C, c0;          /* channels; the first included one */
	const float *p;        /* (N, C, M): the probabilities (softmax), else x */
	const double *gsum;    /* (group, class): G = Σ m t */
	const unsigned char *part; /* (group, class): takes part */
	const double *fac;     /* (group, class): gradient factor (weight included) */
	double *L;             /* (group, class): the value, written by the item */
	double *dp;            /* softmax: dL/dp (N, C, M), or NULL */
	float *g;              /* hinge: the gradient, or NULL */
	sl_bad *bads;          /* one per item */
} lov;

/* One block for the large buffers of a call. Fresh pages cost a fault each
 * (about 3 us on a VM: 40 MB of 4 KB pages took 130 ms, more than the
 * loss itself), so a large block is aligned to 2 MB and, on Linux, asked
 * to be backed by transparent huge pages (a fault per 2 MB). Not zeroed. */
#define BIG_ALIGN ((size_t)2 << 20)
/* entries between the buffers of a block: the two halves of a sort's
 * scratch, 2 MB apart at some sizes, would share cache sets */
#define SKEW 72
static void *big_alloc(size_t bytes)
{
	if (bytes < BIG_ALIGN)
		return sl_mem_malloc(bytes ? bytes : 1);
	size_t n = (bytes + BIG_ALIGN - 1) / BIG_ALIGN * BIG_ALIGN;
	void *p = sl_mem_aligned(BIG_ALIGN, n);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
	if (p)
		(void)madvise(p, n, MADV_HUGEPAGE);
#endif
	return p;
}

/* the float's bits as a key that orders decreasingly (e > 0) */
static inline uint32_t key_of(double e)
{
	float f = (float)e;
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return ~u;
}

/* The error of element s of sample n, class c, and its target; KIND and
 * LAB (a label map) are constants where the item's loops are instantiated.
 * The first pass of an item computes the same with its own locals. */
static inline __attribute__((always_inline)) double err_k(const lov *w, size_t n, size_t c, size_t s, double *tp,
                                                          int KIND, int LAB)
{
	const sl_lossjob *j = w->j;
	size_t i = (n * w->C + c) * j->M + s;
	double t = LAB ? (j->t[n * j->M + s] == (float)c ? 1.0 : 0.0) : (double)j->t[i];
	*tp = t;
	if (KIND == HINGE)
		return 1.0 - (double)w->p[i] * (2.0 * t - 1.0);
	return fabs(t - (double)w->p[i]);
}

static inline double err_of(const lov *w, size_t n, size_t c, size_t s, double *tp)
{
	return err_k(w, n, c, s, tp, w->kind, w->j->labels);
}

/* the sample and position of local index v of group gi */
static inline void locate(const lov *w, size_t gi, uint32_t v, size_t *n, size_t *s)
{
	size_t M = w->j->M;
	if (w->per == 1) {
		*n = gi;
		*s = v;
	} else {
		*n = gi * w->per + v / M;
		*s = v % M;
	}
}

/* Stable LSD radix sort of a[0..n) on the key (the upper 32 bits), with
 * the counts of its first `passes` digits in hist (RADIX_SIZE each); b is
 * scratch. Returns where the result is (a or b). */
static uint64_t *lsd_sort(uint64_t *a, uint64_t *b, size_t n, const uint32_t *hist, int passes)
{
	size_t off[RADIX_SIZE];
	for (int pass = 0; pass < passes; pass++) {
		const uint32_t *h = hist + (size_t)pass * RADIX_SIZE;
		size_t sum = 0;
		int trivial = 0;
		for (size_t d = 0; d < RADIX_SIZE; d++) {
			trivial |= h[d] == n;
			off[d] = sum;
			sum += h[d];
		}
		if (trivial)
			continue;
		int sh = 32 + pass * RADIX_BITS;
		for (size_t i = 0; i < n; i++) {
			size_t d = (size_t)(a[i] >> sh) & (RADIX_SIZE - 1);
			b[off[d]++] = a[i];
		}
		uint64_t *tmp = a;
		a = b;
		b = tmp;
	}
	return a;
}

/* The sort of an item's entries. hist (RADIX_PASSES x RADIX_SIZE) holds
 * the counts of the top digit, the only ones the first pass takes, the
 * lower ones zero. Many entries: the top digit first (one scatter through
 * memory), then each of its buckets, a range small enough to stay in
 * cache, by the lower digits (LSD, stable), with counts taken over the
 * bucket; a short bucket by insertion. Few entries, or one top digit for
 * all: the lower digits are counted, then LSD. Every step is stable, so
 * equal keys stay in index order. lo (RADIX_PASSES - 1 x RADIX_SIZE
 * counts) is scratch. Returns where the result is (a or b). */
#define MSD_MIN 65536 /* fewer entries: LSD over the whole (in cache) */
#define INS_MAX 24    /* a bucket this short: insertion sort */
static uint64_t *radix_sort(uint64_t *a, uint64_t *b, size_t n, uint32_t *hist, uint32_t *lo)
{
	const int top = RADIX_PASSES - 1, tsh = 32 + top * RADIX_BITS;
	const uint32_t *h = hist + (size_t)top * RADIX_SIZE;
	int trivial = 0; /* hist holds the top digit's counts; the lower ones are counted here */
	for (size_t d = 0; d < RADIX_SIZE; d++)
		trivial |= h[d] == n;
	if (n < MSD_MIN || trivial) {
		for (size_t i = 0; i < n; i++) {
			uint32_t k = (uint32_t)(a[i] >> 32);
			for (int q = 0; q < top; q++)
				hist[(size_t)q * RADIX_SIZE + ((k >> (q * RADIX_BITS)) & (RADIX_SIZE - 1))]++;
		}
		return lsd_sort(a, b, n, hist, RADIX_PASSES);
	}
	size_t off[RADIX_SIZE], sum = 0;
	for (size_t d = 0; d < RADIX_SIZE; d++) {
		off[d] = sum;
		sum += h[d];
	}
	for (size_t i = 0; i < n; i++)
		b[off[(size_t)(a[i] >> tsh) & (RADIX_SIZE - 1)]++] = a[i];
	/* off[d] is now the end of bucket d */
	for (size_t d = 0, start = 0; d < RADIX_SIZE; start = off[d], d++) {
		size_t len = off[d] - start;
		uint64_t *bb = b + start;
		if (len <= 1)
			continue;
		if (len <= INS_MAX) {
			for (size_t r = 1; r < len; r++) {
				uint64_t v = bb[r];
				size_t k = r;
				for (; k > 0 && (bb[k - 1] >> 32) > (v >> 32); k--)
					bb[k] = bb[k - 1];
				bb[k] = v;
			}
			continue;
		}
		memset(lo, 0, (size_t)top * RADIX_SIZE * sizeof *lo);
		for (size_t i = 0; i < len; i++) {
			uint32_t k = (uint32_t)(bb[i] >> 32);
			for (int q = 0; q < top; q++)
				lo[(size_t)q * RADIX_SIZE + ((k >> (q * RADIX_BITS)) & (RADIX_SIZE - 1))]++;
		}
		if (lsd_sort(bb, a + start, len, lo, top) != bb)
			memcpy(bb, a + start, len * sizeof *bb);
	}
	return b;
}

/* Keys that float rounding made equal: put the run a[r0..r1) in the order
 * of its double errors, decreasing, stable (an insertion sort: a run is
 * short unless its errors are really equal, and then it is in order). */
static void fix_run(const lov *w, size_t gi, size_t c, uint64_t *a, size_t r0, size_t r1)
{
	for (size_t r = r0 + 1; r < r1; r++) {
		uint64_t v = a[r];
		size_t n, s;
		double t;
		locate(w, gi, (uint32_t)v & LOC_MASK, &n, &s);
		double ev = err_of(w, n, c, s, &t);
		size_t k = r;
		while (k > r0) {
			locate(w, gi, (uint32_t)a[k - 1] & LOC_MASK, &n, &s);
			if (!(err_of(w, n, c, s, &t) < ev))
				break;
			a[k] = a[k - 1];
			k--;
		}
		a[k] = v;
	}
}

/* One item: group gi, class c. a and b hold per * M entries each, hist
 * (RADIX_PASSES + 3) x RADIX_SIZE counts. Three passes: the candidates (key, t bit, local index)
 * in index order; after the sort, the steps Δ in rank order, stored at each
 * candidate's local index (in the half of the scratch the sort left free);
 * then, in index order again, the value Σ e Δ and the gradient. Only the
 * Δ store is a random access; with 0/1 targets the rank pass reads nothing
 * but the sorted entries. */
static inline __attribute__((always_inline)) void run_item_k(const lov *w, size_t item, uint64_t *a, uint64_t *b,
                                                              uint32_t *hist, int KIND, int LAB)
{
	const sl_lossjob *j = w->j;
	size_t nc = w->C - w->c0, gi = item / nc, c = w->c0 + item % nc, M = j->M;
	size_t gc = gi * w->C + c;
	w->L[gc] = 0.0;
	if (!w->part[gc]) {
		if (w->dp) /* the buffer is not zeroed: the chain reads every class */
			for (size_t n = gi * w->per; n < (gi + 1) * w->per; n++)
				memset(w->dp + (n * w->C + c) * M, 0, M * sizeof *w->dp);
		return;
	}
	memset(hist, 0, (RADIX_PASSES + 3) * RADIX_SIZE * sizeof *hist);
	size_t P = 0;
	int binary = 1;
	/* branch-free: every element is written, the count advances for the
	 * valid ones with a positive error. The sizes and pointers are locals:
	 * the entries are uint64_t, the type of size_t, so through w and j the
	 * compiler would load them again after every store (err_k's math) */
	const size_t C = w->C, per = w->per, n0 = gi * per;
	const float fc = (float)c;
	uint32_t *htop = hist + (size_t)(RADIX_PASSES - 1) * RADIX_SIZE;
	uint64_t *ap = a;
	for (size_t n = n0; n < n0 + per; n++) {
		const float *mr = !j->m ? NULL : j->mask_full ? j->m + (n * C + c) * M : j->m + n * M;
		const float *pr = w->p + (n * C + c) * M, *tr = LAB ? j->t + n * M : j->t + (n * C + c) * M;
		uint32_t base = (uint32_t)((n - n0) * M);
		for (size_t s = 0; s < M; s++) {
			double t = LAB ? (tr[s] == fc ? 1.0 : 0.0) : (double)tr[s];
			double e = KIND == HINGE ? 1.0 - (double)pr[s] * (2.0 * t - 1.0) : fabs(t - (double)pr[s]);
			uint32_t in = (uint32_t)(e > 0.0) & (uint32_t)(!mr || mr[s] != 0.0f);
			uint32_t k = key_of(e); /* any bits where the element is not taken */
			binary &= t == 0.0 || t == 1.0;
			ap[P] = (uint64_t)k << 32 | (uint64_t)(t == 1.0) << 31 | (uint64_t)(base + (uint32_t)s);
			P += in;
			/* four copies of the counts, in turn: neighbours share a top
			 * digit (the exponent), and one count would be a chain of
			 * dependent increments */
			htop[(s & 3) * RADIX_SIZE + (k >> ((RADIX_PASSES - 1) * RADIX_BITS))] += in;
		}
	}
	for (size_t d = 0; d < RADIX_SIZE; d++)
		htop[d] += htop[RADIX_SIZE + d] + htop[2 * RADIX_SIZE + d] + htop[3 * RADIX_SIZE + d];
	uint64_t *r = radix_sort(a, b, P, hist, hist + RADIX_PASSES * RADIX_SIZE), *dl = r == a ? b : a;
	for (size_t r0 = 0; r0 < P;) {
		size_t r1 = r0 + 1;
		while (r1 < P && (r[r1] >> 32) == (r[r0] >> 32))
			r1++;
		if (r1 - r0 > 1)
			fix_run(w, gi, c, r, r0, r1);
		r0 = r1;
	}

	/* the steps, in rank order, at the local index of each sorted element */
	double G = w->gsum[gc], cT = 0.0, cF = 0.0, Jp = 0.0;
	for (size_t k = 0; k < P; k++) {
		uint32_t loc = (uint32_t)r[k] & LOC_MASK;
		double t;
		if (binary) {
			t = (double)((r[k] >> 31) & 1u);
		} else {
			size_t n, s;
			locate(w, gi, loc, &n, &s);
			(void)err_of(w, n, c, s, &t);
		}
		cT += t;
		cF += 1.0 - t;
		double I = G - cT, U = G + cF;
		double J = 1.0 - I / U, d = J - Jp;
		Jp = J;
		uint64_t bits;
		memcpy(&bits, &d, sizeof bits);
		dl[loc] = bits;
	}

	/* the value and the gradient, in index order, over every element: Δ is
	 * 0 where an element was not sorted (masked, or e <= 0), selected
	 * without a branch: a mask over what the entry holds */
	double fac = w->fac[gc], L = 0.0;
	int grad = fac != 0.0 && w->g != NULL;
	for (size_t n = gi * w->per; n < (gi + 1) * w->per; n++) {
		const float *mr = !j->m ? NULL : j->mask_full ? j->m + (n * w->C + c) * M : j->m + n * M;
		const uint64_t *dn = dl + (n - gi * w->per) * M;
		size_t i0 = (n * w->C + c) * M;
		for (size_t s = 0; s < M; s++) {
			double d, t, e = err_k(w, n, c, s, &t, KIND, LAB);
			uint64_t in = (uint64_t)(e > 0.0) & (uint64_t)(!mr || mr[s] != 0.0f);
			uint64_t bits = dn[s] & (0 - in); /* where not sorted: stale bits, masked */
			memcpy(&d, &bits, sizeof d);
			L += e * d;
			if (!grad) {
				if (w->dp)
					w->dp[i0 + s] = 0.0;
				continue;
			}
			/* d e / d x: -(2t - 1) for the hinge, sign(p - t) for the softmax */
			double de = KIND == HINGE ? -(2.0 * t - 1.0) : (double)w->p[i0 + s] > t ? 1.0 : -1.0;
			if (w->dp) {
				w->dp[i0 + s] = fac * (de * d);
			} else {
				float v = w->g[i0 + s] + (float)(fac * (de * d));
				if (!isfinite(v) && w->bads[item].kind == SL_BAD_NONE)
					sl_record(&w->bads[item], SL_BAD_GRAD, i0 + s, v);
				w->g[i0 + s] = v;
			}
		}
	}
	w->L[gc] = L;
}

/* One item, its loops instantiated for the loss and the target's form. */
static void run_item(const lov *w, size_t item, uint64_t *a, uint64_t *b, uint32_t *hist)
{
	if (w->kind == HINGE)
		run_item_k(w, item, a, b, hist, HINGE, 0);
	else if (w->j->labels)
		run_item_k(w, item, a, b, hist, SOFTMAX, 1);
	else
		run_item_k(w, item, a, b, hist, SOFTMAX, 0);
}

/* G = Σ m t and the valid count Σ m of each (sample, class) */
static void sample_sums(const lov *w, size_t n, double *gs, double *vs)
{
	const sl_lossjob *j = w->j;
	size_t M = j->M;
	for (size_t c = 0; c < w->C; c++) {
		const float *mr = !j->m ? NULL : j->mask_full ? j->m + (n * w->C + c) * M : j->m + n * M;
		double G = 0.0, V = 0.0;
		for (size_t s = 0; s < M; s++) {
			double m = mr ? (double)mr[s] : 1.0;
			double t = j->labels ? (j->t[n * M + s] == (float)c ? 1.0 : 0.0)
			                     : (double)j->t[(n * w->C + c) * M + s];
			G += m * t;
			V += m;
		}
		gs[n * w->C + c] = G;
		vs[n * w->C + c] = V;
	}
}

static int lovasz_eval(int kind, const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                       double *value, sl_bad *bad)
{
	size_t N = j->N, C = j->C, M = j->M;
	int per_image = gp->opts[SL_O_PER_IMAGE] != 0.0;
	int all = kind == HINGE || gp->opts[SL_O_CLASSES] != 0.0;
	size_t per = per_image ? 1 : N, ng = N / (per ? per : 1), c0 = kind == HINGE ? 0 : (size_t)gp->c0;
	size_t nc = C - c0, nitems = ng * nc, span = per * M;
	lov w = {.j = j, .kind = kind, .per = per, .C = C, .c0 = c0, .p = j->x};
	int rc = SL_OK;
	*value = 0.0;
	if (N == 0 || M == 0 || nc == 0)
		return SL_OK;
	if (span > LOC_MASK) /* local indices are 31 bits: a group of 2^31 elements */
		return SL_ERR_NOMEM;

	double *gs = malloc(N * C * sizeof *gs), *vs = malloc(N * C * sizeof *vs);
	double *G = calloc(ng * C, sizeof *G), *V = calloc(ng * C, sizeof *V);
	double *L = calloc(ng * C, sizeof *L), *fac = calloc(ng * C, sizeof *fac);
	unsigned char *part = calloc(ng * C, 1), *gpart = calloc(ng, 1);
	sl_bad *bads = calloc(nitems > N ? nitems : N, sizeof *bads);
	float *P = NULL;
	double *dp = NULL;
	void *blk = NULL;
	if (!gs || !vs || !G || !V || !L || !fac || !part || !gpart || !bads) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	int nt = sl_exec_threads(e, N * C * M);

	/* the sums of each sample, then of each group (in sample order) */
	int nts = (size_t)nt > N ? (int)N : nt;
	if (nts <= 1) {
		for (size_t n = 0; n < N; n++)
			sample_sums(&w, n, gs, vs);
	} else {
#pragma omp parallel for num_threads(nts) schedule(static)
		for (size_t n = 0; n < N; n++) {
			sl_note_team(e);
			sample_sums(&w, n, gs, vs);
		}
	}
	for (size_t n = 0; n < N; n++)
		for (size_t c = 0; c < C; c++) {
			G[(n / per) * C + c] += gs[n * C + c];
			V[(n / per) * C + c] += vs[n * C + c];
		}

	/* who takes part, and the gradient factors: the mean over the groups
	 * with a valid element of the weighted mean over their classes that
	 * take part, or the weighted sum of everything */
	size_t ngp = 0;
	for (size_t gi = 0; gi < ng; gi++) {
		for (size_t c = c0; c < C; c++) {
			size_t gc = gi * C + c;
			gpart[gi] |= V[gc] > 0.0;
			part[gc] = V[gc] > 0.0 && (all || G[gc] > 0.0);
		}
		ngp += gpart[gi];
	}
	for (size_t gi = 0; gi < ng; gi++) {
		double W = 0.0;
		for (size_t c = c0; c < C; c++)
			if (part[gi * C + c])
				W += gp->cw ? gp->cw[c] : 1.0;
		for (size_t c = c0; c < C; c++) {
			size_t gc = gi * C + c;
			double wc = gp->cw ? gp->cw[c] : 1.0;
			if (!part[gc])
				continue;
			if (gp->reduction == SL_RED_SUM)
				fac[gc] = gp->weight * wc;
			else if (W > 0.0 && ngp > 0)
				fac[gc] = gp->weight * (wc / W) / (double)ngp;
		}
	}

	/* one block: dL/dp (softmax with a gradient), each thread's sort scratch
	 * (2 span entries) and digit counts, the probabilities (softmax) */
	int nti = (size_t)nt > nitems ? (int)nitems : nt;
	if (nti < 1)
		nti = 1;
	int smx = kind == SOFTMAX && j->act == SL_ACT_SOFTMAX;
	size_t ndp = smx && g ? N * C * M : 0, nP = smx ? N * C * M : 0;
	/* the counts, with three more copies of the top digit's, which the
	 * sort then uses as its scratch counts (RADIX_PASSES - 1 digits) */
	size_t nhist = (size_t)(RADIX_PASSES + 3) * RADIX_SIZE;
	size_t ts = 2 * span + 2 * SKEW; /* a thread's scratch entries */
	blk = big_alloc(ndp * sizeof(double) + (size_t)nti * (ts * sizeof(uint64_t) + nhist * sizeof(uint32_t)) +
	                nP * sizeof(float));
	if (!blk) {
		rc = SL_ERR_NOMEM;
		goto done;
	}
	dp = ndp ? (double *)blk : NULL;
	uint64_t *scr = (uint64_t *)((double *)blk + ndp);
	uint32_t *hists = (uint32_t *)(scr + (size_t)nti * ts);
	P = nP ? (float *)(hists + (size_t)nti * nhist) : NULL;

	/* the probabilities of the softmax, by the scalar kernel */
	if (P) {
		sl_exec es = {&sl_kern_scalar, 1, NULL};
		if (nts <= 1) {
			for (size_t n = 0; n < N; n++)
				sl_gen_probs(&es, j, n, P + n * C * M, NULL);
		} else {
#pragma omp parallel for num_threads(nts) schedule(static)
			for (size_t n = 0; n < N; n++) {
				sl_note_team(e);
				sl_gen_probs(&es, j, n, P + n * C * M, NULL);
			}
		}
		w.p = P;
	}
	if (dp) /* the chain through the softmax reads every class of a pixel */
		for (size_t n = 0; n < N; n++)
			memset(dp + n * C * M, 0, c0 * M * sizeof *dp);
	w.gsum = G;
	w.part = part;
	w.fac = fac;
	w.L = L;
	w.dp = dp;
	w.g = g;
	w.bads = bads;

	/* the items; a thread's scratch is its own part of the block, and
	 * entries an item did not write are masked, not read */
#pragma omp parallel num_threads(nti) if (nti > 1)
	{
		size_t tid = 0;
#ifdef _OPENMP
		tid = (size_t)omp_get_thread_num();
#endif
		uint64_t *a = scr + tid * ts + SKEW;
		uint32_t *hist = hists + tid * nhist;
#pragma omp for schedule(static)
		for (size_t k = 0; k < nitems; k++) {
			if (nti > 1)
				sl_note_team(e);
			run_item(&w, k, a, a + span + SKEW, hist);
		}
	}
	for (size_t k = 0; k < nitems; k++)
		if (bads[k].kind != SL_BAD_NONE) {
			*bad = bads[k];
			rc = SL_ERR_INPUT;
			goto done;
		}

	/* the softmax's gradient through the activation, sample by sample */
	if (dp) {
		memset(bads, 0, N * sizeof *bads);
		const float *pp = P ? P : j->x;
		if (nts <= 1) {
			for (size_t n = 0; n < N; n++)
				if (sl_gen_chain(j, n, pp + n * C * M, NULL, dp + n * C * M, 1.0, g, &bads[n]) != SL_OK)
					break;
		} else {
#pragma omp parallel for num_threads(nts) schedule(static)
			for (size_t n = 0; n < N; n++) {
				sl_note_team(e);
				sl_gen_chain(j, n, pp + n * C * M, NULL, dp + n * C * M, 1.0, g, &bads[n]);
			}
		}
		for (size_t n = 0; n < N; n++)
			if (bads[n].kind != SL_BAD_NONE) {
				*bad = bads[n];
				rc = SL_ERR_INPUT;
				goto done;
			}
	}

	/* the value, folded in item order; reduction "none": L per (group, class) */
	double total = 0.0;
	size_t cols = kind == HINGE ? 1 : C;
	for (size_t gi = 0; gi < ng; gi++) {
		double W = 0.0, S = 0.0;
		for (size_t c = c0; c < C; c++) {
			size_t gc = gi * C + c;
			double wc = gp->cw ? gp->cw[c] : 1.0;
			if (part[gc]) {
				W += wc;
				S += wc * L[gc];
			}
		}
		if (gp->reduction == SL_RED_SUM)
			total += S;
		else if (W > 0.0)
			total += S / W;
		if (gp->vals)
			for (size_t c = 0; c < cols; c++) {
				float v = (float)L[gi * C + c];
				if (!isfinite(v)) {
					sl_record(bad, SL_BAD_VALUE, gi * cols + c, v);
					rc = SL_ERR_INPUT;
					goto done;
				}
				gp->vals[gi * cols + c] = v;
			}
	}
	if (gp->reduction != SL_RED_SUM)
		total = ngp > 0 ? total / (double)ngp : 0.0;
	*value = total;
done:
	free(gs);
	free(vs);
	free(G);
	free(V);
	free(L);
	free(fac);
	free(part);
	free(gpart);
	free(bads);
	free(blk);
	return rc;
}

int sl_lovasz_hinge_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g, double *value,
                         sl_bad *bad)
{
	return lovasz_eval(HINGE, e, j, gp, g, value, bad);
}

int sl_lovasz_softmax_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g, double *value,
                           sl_bad *bad)
{
	return lovasz_eval(SOFTMAX, e, j, gp, g, value, bad);
}

int sl_lovasz_hinge_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape)
{
	(void)ndim;
	shape[0] = opts[SL_O_PER_IMAGE] != 0.0 ? xshape[0] : 1;
	shape[1] = 1;
	return 2;
}

int sl_lovasz_softmax_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape)
{
	(void)ndim;
	shape[0] = opts[SL_O_PER_IMAGE] != 0.0 ? xshape[0] : 1;
	shape[1] = xshape[1];
	return 2;
}
