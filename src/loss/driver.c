/*
 * driver.c — runs a loss job: at most one statistics pass and one fused
 * pass over memory, split into fixed tasks (sample n, a block of spatial
 * positions) whose partial sums are folded in task order, so the result is
 * the same for any thread count. Lua-free.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "../kern/kern.h"
#include "../ops.h"
#include "loss.h"
#include "validate.h"

size_t sl_loss_block(size_t C)
{
	size_t b = SL_BLOCK / (C ? C : 1);
	b = (b + 63) & ~(size_t)63;
	return b < 64 ? 64 : b;
}

typedef struct tasks {
	size_t bs, per, n; /* block size, blocks per sample, tasks */
} tasks;

static tasks make_tasks(const sl_lossjob *j)
{
	tasks t;
	t.bs = sl_loss_block(j->C);
	t.per = (j->M + t.bs - 1) / t.bs;
	t.n = j->N * t.per;
	return t;
}

static void task_range(const tasks *tk, const sl_lossjob *j, size_t task, size_t *n, size_t *s0,
                       size_t *s1)
{
	*n = task / tk->per;
	*s0 = (task % tk->per) * tk->bs;
	*s1 = *s0 + tk->bs < j->M ? *s0 + tk->bs : j->M;
}

static int threads_for(const sl_exec *e, const sl_lossjob *j, const tasks *tk)
{
	int nt = sl_exec_threads(e, j->N * j->C * j->M);
	return (size_t)nt > tk->n ? (int)tk->n : nt;
}

/* the first bad element in task order */
static int first_bad(const sl_bad *bads, size_t n, sl_bad *out)
{
	for (size_t i = 0; i < n; i++)
		if (bads[i].kind != SL_BAD_NONE) {
			*out = bads[i];
			return 1;
		}
	return 0;
}

/* ---- generic passes (plain C, every backend) ------------------------ */

/* Validation only (x if cx, t and m if ct), and with st the target sums ST
 * and M per (n, c) — for pixel losses that need Σm or Σt before their one
 * pass (a mask with "mean", pos_weight "auto"). The backend's check runs
 * first; where it fails, the scalar scan finds the first bad element (in
 * the order of the scalar kernels) or, if there is none, redoes the sums. */
static void check_task(const sl_exec *e, const sl_lossjob *j, size_t n, size_t s0, size_t s1,
                       int cx, int ct, double *st, sl_bad *bad)
{
	if (!e->k->loss_check(j, n, s0, s1, cx, ct, st))
		return;
	if (st)
		memset(st, 0, j->C * SL_NSTAT * sizeof *st);
	for (size_t c = 0; c < j->C; c++)
		for (size_t s = s0; s < s1; s++)
			if ((cx && sl_bad_x(j, (n * j->C + c) * j->M + s, bad)) ||
			    (ct && sl_bad_tm(j, n, c, s, bad)))
				return;
	sl_loss_check__scalar(j, n, s0, s1, 0, 0, st);
}

/* A full-shape mask must be the same in every channel for softmax and for
 * the pixel-level losses (ce, softmax focal). */
static void maskchan_task(const sl_lossjob *j, size_t n, size_t s0, size_t s1, sl_bad *bad)
{
	for (size_t c = 1; c < j->C; c++)
		for (size_t s = s0; s < s1; s++) {
			size_t i = (n * j->C + c) * j->M + s;
			if (j->m[i] != j->m[(n * j->C) * j->M + s]) {
				sl_record(bad, SL_BAD_MASK_CHAN, i, j->m[i]);
				return;
			}
		}
}

enum { PASS_CHECK, PASS_MASKCHAN, PASS_TSTATS, PASS_STATS, PASS_FUSED };

/* One task of a pass. */
static void run_task(const sl_exec *e, const sl_lossjob *j, const tasks *tk, int pass, int cx,
                     int ct, double *part, size_t width, size_t task, sl_bad *bad)
{
	size_t n, s0, s1;
	task_range(tk, j, task, &n, &s0, &s1);
	double *pt = part ? part + task * width : NULL;
	switch (pass) {
	case PASS_CHECK:
		check_task(e, j, n, s0, s1, cx, ct, NULL, bad);
		break;
	case PASS_MASKCHAN:
		maskchan_task(j, n, s0, s1, bad);
		break;
	case PASS_TSTATS:
		check_task(e, j, n, s0, s1, 0, 1, pt, bad);
		break;
	case PASS_STATS:
		e->k->loss_stats(j, n, s0, s1, pt, bad);
		break;
	default:
		e->k->loss_fused(j, n, s0, s1, pt, bad);
		break;
	}
}

/* Runs one pass over every task; partial sums go to part[task * width]. */
static int run_pass(const sl_exec *e, const sl_lossjob *j, int pass, int cx, int ct,
                    double *part, size_t width, sl_bad *bad)
{
	tasks tk = make_tasks(j);
	sl_bad *bads = calloc(tk.n, sizeof *bads);
	if (!bads)
		return SL_ERR_NOMEM;
	if (part)
		memset(part, 0, tk.n * width * sizeof *part);
	int nt = threads_for(e, j, &tk);
	if (nt <= 1) {
		/* one thread: no parallel region at all — entering one costs about
		 * 1.6 µs in the OpenMP runtime even with if(0), as much as a pass
		 * over a small tensor */
		for (size_t task = 0; task < tk.n; task++)
			run_task(e, j, &tk, pass, cx, ct, part, width, task, &bads[task]);
	} else {
#pragma omp parallel for num_threads(nt) schedule(static)
		for (size_t task = 0; task < tk.n; task++) {
			sl_note_team(e);
			run_task(e, j, &tk, pass, cx, ct, part, width, task, &bads[task]);
		}
	}
	int rc = first_bad(bads, tk.n, bad) ? SL_ERR_INPUT : SL_OK;
	free(bads);
	return rc;
}

/* Folds per-task statistics into st (N x C x SL_NSTAT), blocks in order. */
static void fold_stats(const sl_lossjob *j, const double *part, double *st)
{
	tasks tk = make_tasks(j);
	size_t w = j->C * SL_NSTAT;
	memset(st, 0, j->N * w * sizeof *st);
	for (size_t task = 0; task < tk.n; task++) {
		size_t n = task / tk.per;
		for (size_t i = 0; i < w; i++)
			st[n * w + i] += part[task * w + i];
	}
}

/* The region coefficients into the job's float array: each one where it can
 * matter, 0 where it cannot (K_T1 and K_SE1 act where t > 0, so not in an
 * (n, c) whose valid t are all 0; K_T0 and K_SE0 not where they are all 1;
 * none where nothing is valid), so that a coefficient that is infinite but
 * never used (smooth = 0, an empty target, a tiny prediction) leaves no
 * Inf or NaN behind. A used one that overflows float32 is an error. */
static int coef_to_float(sl_lossrun *run, int nk)
{
	const sl_lossjob *j = &run->job;
	for (size_t nc = 0; nc < j->N * j->C; nc++) {
		const double *st = run->stats + nc * SL_NSTAT;
		const double *d = run->coefd + nc * (size_t)nk;
		float *f = run->coef + nc * (size_t)nk;
		double ST = st[SL_S_ST], Mv = st[SL_S_M];
		for (int i = 0; i < nk; i++) {
			int used = Mv > 0.0;
			if (i == SL_K_T1 || i == SL_K_SE1)
				used &= ST > 0.0;
			if (i == SL_K_T0 || i == SL_K_SE0)
				used &= ST < Mv;
			f[i] = (float)(used ? d[i] : 0.0);
			if (used && !isfinite(f[i])) {
				sl_record(&run->bad, SL_BAD_COEF, nc, (float)d[i]);
				return SL_ERR_INPUT;
			}
		}
	}
	return SL_OK;
}

/* An upper bound of |d loss / d x| over every element, from the region
 * coefficients and the pixel parts' parameters (Inf where none is known),
 * so that the fused pass runs a trial first when it could overflow in the
 * caller's out. With z = 1 - p_t and the focal factor z^γ: |d(z^γ)/dx| bce_t
 * <= 2γ/e < γ for sigmoid, and γ for softmax; see also the clamped logs. */
static double grad_bound(const sl_lossrun *run)
{
	const sl_lossjob *j = &run->job;
	int smx = j->act == SL_ACT_SOFTMAX, none = j->act == SL_ACT_NONE;
	double chain = smx ? 2.0 : 1.0, ie = 1.0 / (double)j->eps, b = 0.0;
	if (run->coef) {
		int nk = j->coef_full ? SL_NK : SL_NK_BASIC;
		double mx = 0.0;
		for (size_t i = 0; i < j->N * j->C; i++) {
			double r = 0.0;
			for (int k = 0; k < nk; k++)
				r += fabs((double)run->coef[i * (size_t)nk + (size_t)k]) *
				     (k >= SL_K_SE0 ? 2.0 : 1.0);
			mx = r > mx ? r : mx;
		}
		b += chain * mx;
	}
	for (int i = 0; i < j->npix; i++) {
		const sl_pixk *px = &j->pix[i];
		double w = 1.0, g = (double)px->gamma, f;
		if (px->cw) {
			w = 0.0;
			for (size_t c = 0; c < j->C; c++)
				w = fabs((double)px->cw[c]) > w ? fabs((double)px->cw[c]) : w;
		}
		if (px->type == SL_PX_BCE)
			f = ((double)px->pos_weight + (double)px->neg_weight) * (none ? ie : 1.0);
		else if (px->type == SL_PX_CE)
			f = none ? ie : 1.0;
		else if (!none)
			f = 1.0 + g;
		else /* (1 - p_t)^γ with γ < 1 has no bound near p_t = 1 */
			f = g < 1.0 ? (double)INFINITY : g * (-log((double)j->eps)) + ie;
		b += chain * fabs((double)px->scale) * w * f;
	}
	return b;
}

static int region_needs_full(const sl_regpart *rp)
{
	return rp->squared || rp->soft || rp->type == SL_R_SENSSPEC;
}

/* is pixel part i summed per pixel over channels (ce, softmax focal)? */
static int pixel_level(const sl_lossjob *j, int i)
{
	return j->pix[i].type == SL_PX_CE || j->act == SL_ACT_SOFTMAX;
}

/* ---- generic parts -------------------------------------------------- */

/* The generic part of the split check: a pixel part (gp->ctx, an
 * sl_splitpix) evaluated by a run of its own (statistics for the mean and
 * for pos_weight "auto" included), whose fused pass adds its gradient into
 * g (the accumulate mode: one float addition per element, every sum
 * checked to be finite). */
int sl_loss_split_eval(const sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                       double *value, sl_bad *bad)
{
	const sl_splitpix *sp = gp->ctx;
	sl_lossrun *sub = malloc(sizeof *sub);
	if (!sub)
		return SL_ERR_NOMEM;
	sl_loss_init(sub, j->N, j->C, j->M, j->x, j->t, j->labels, j->act, j->eps);
	sub->job.m = j->m;
	sub->job.mask_full = j->mask_full;
	sub->job.npix = 1;
	sub->job.pix[0] = sp->px;
	sub->pm[0] = sp->pm;
	sub->pm[0].weight = gp->weight;
	sub->want_grad = g != NULL;
	sub->job.out = g;
	sub->job.accumulate = g != NULL;
	int rc = sl_loss_run(e, sub);
	if (rc == SL_OK)
		*value = sub->pm[0].value;
	else if (rc == SL_ERR_INPUT)
		*bad = sub->bad;
	sl_loss_free(sub);
	free(sub);
	return rc;
}

static int run_parts(const sl_exec *e, sl_lossrun *run)
{
	sl_lossjob *j = &run->job;
	size_t N = j->N, C = j->C, M = j->M;
	tasks tk = make_tasks(j);
	int rc = SL_OK;
	run->bad.kind = SL_BAD_NONE;
	run->total = 0.0;
	run->gen_ran = 0;

	int full = 0, need_m = 0, pixlevel = 0;
	for (int i = 0; i < run->nreg; i++)
		full |= region_needs_full(&run->reg[i]);
	for (int i = 0; i < j->npix; i++) {
		need_m |= (j->m && run->pm[i].reduction == SL_RED_MEAN) || run->pm[i].pos_auto;
		pixlevel |= pixel_level(j, i);
	}
	j->need_stats = run->nreg > 0 || run->stats_only;
	j->stats_full = full;
	j->coef_full = full;
	j->coef = NULL;
	int fused = !run->stats_only && (j->npix > 0 || (run->want_grad && run->nreg > 0));
	if (!fused)
		j->out_mode = SL_OUT_NOTHING;
	else if (run->want_grad)
		j->out_mode = SL_OUT_GRAD;
	else if (j->out_mode != SL_OUT_VALUES)
		j->out_mode = SL_OUT_NOTHING;
	int writes = fused && j->out_mode != SL_OUT_NOTHING;

	/* which pass validates what: the first one to read it, unless the fused
	 * pass would write into the caller's tensor before the check is done */
	int need_tstats = !j->need_stats && need_m;
	int x_seen = j->need_stats, t_seen = j->need_stats || need_tstats;
	j->check_x = j->check_t = j->need_stats;
	/* With a fresh (or scratch) gradient the statistics pass leaves p in it
	 * for the fused pass. bce parts then come along: their values are sums
	 * of the statistics pass (SL_S_BA, SL_S_BB), their gradients need only p:
	 * one exponential per element for bce + region parts together. */
	int all_bce = j->npix > 0 && j->act == SL_ACT_SIGMOID;
	for (int i = 0; i < j->npix; i++)
		all_bce &= j->pix[i].type == SL_PX_BCE && run->pm[i].reduction != SL_RED_NONE &&
		           !j->pix[i].ls; /* the statistics hold sums over t, not t' */
	j->p_in_out = j->need_stats && (j->npix == 0 || all_bce) && run->want_grad &&
	              !run->out_user && j->act != SL_ACT_NONE && !run->stats_only && !j->accumulate;
	j->bce_stats = j->p_in_out && all_bce;
	/* the other sigmoid jobs with a fresh gradient keep e^-|x| there instead */
	j->z_in_out = j->need_stats && !j->p_in_out && j->npix > 0 && run->want_grad &&
	              !run->out_user && j->act == SL_ACT_SIGMOID && !run->stats_only &&
	              !j->accumulate;
	int precheck_x = !x_seen && writes && run->out_user;
	int precheck_t = !t_seen && writes && run->out_user;
	int gen = run->ngen > 0 && !run->stats_only;
	if (gen && !fused) { /* generic parts read x, t and m checked */
		precheck_x = !x_seen;
		precheck_t = !t_seen;
	}
	j->fused_check_x = !x_seen && !precheck_x;
	j->fused_check_t = !t_seen && !precheck_t;

	size_t stw = C * SL_NSTAT;
	double *part = NULL;
	if (run->stats_mem) {
		run->stats = run->stats_mem;
		memset(run->stats, 0, N * stw * sizeof *run->stats);
	} else {
		run->stats = calloc(N * stw, sizeof *run->stats);
	}
	size_t pw = (size_t)(j->npix > 0 ? j->npix : 1);
	part = malloc(tk.n * (stw > pw ? stw : pw) * sizeof *part);
	if (!run->stats || !part) {
		free(part);
		return SL_ERR_NOMEM;
	}

	/* a full mask must not vary across channels where pixels are the unit */
	if (j->m && j->mask_full && (j->act == SL_ACT_SOFTMAX || pixlevel) && C > 1 &&
	    (rc = run_pass(e, j, PASS_MASKCHAN, 0, 0, NULL, 0, &run->bad)) != SL_OK)
		goto done;
	if ((precheck_x || precheck_t) &&
	    (rc = run_pass(e, j, PASS_CHECK, precheck_x, precheck_t, NULL, 0, &run->bad)) != SL_OK)
		goto done;
	if (j->need_stats || need_tstats) {
		rc = run_pass(e, j, j->need_stats ? PASS_STATS : PASS_TSTATS, 0, 0, part, stw, &run->bad);
		if (rc != SL_OK)
			goto done;
		fold_stats(j, part, run->stats);
	}
	if (run->stats_only)
		goto done;

	/* region parts: values and gradient coefficients */
	int nk = full ? SL_NK : SL_NK_BASIC;
	if (run->nreg > 0) {
		if (run->want_grad) {
			run->coefd = calloc(N * C * (size_t)nk, sizeof *run->coefd);
			run->coef = malloc(N * C * (size_t)nk * sizeof *run->coef);
			if (!run->coefd || !run->coef) {
				rc = SL_ERR_NOMEM;
				goto done;
			}
		}
		for (int i = 0; i < run->nreg; i++) {
			sl_region_eval(&run->reg[i], N, C, run->stats, run->coefd, nk);
			run->total += run->reg[i].weight * run->reg[i].value;
		}
		if (run->want_grad && (rc = coef_to_float(run, nk)) != SL_OK)
			goto done;
		j->coef = run->coef;
	}

	/* pixel parts: the divisor of the mean, pos_weight "auto", the gradient scale */
	for (int i = 0; i < j->npix; i++) {
		sl_pixk *px = &j->pix[i];
		sl_pixmeta *pm = &run->pm[i];
		int plev = pixel_level(j, i);
		double msum = 0.0, tsum = 0.0;
		if (j->need_stats || need_tstats) {
			for (size_t n = 0; n < N; n++)
				for (size_t c = plev ? 0 : (size_t)px->c0; c < (plev ? 1 : C); c++) {
					msum += run->stats[(n * C + c) * SL_NSTAT + SL_S_M];
					tsum += run->stats[(n * C + c) * SL_NSTAT + SL_S_ST];
				}
		} else {
			msum = (double)N * (double)M * (double)(plev ? 1 : C - (size_t)px->c0);
		}
		if (pm->pos_auto)
			px->pos_weight = (float)((msum - tsum) / (tsum > 1.0 ? tsum : 1.0));
		pm->denom = pm->reduction == SL_RED_MEAN ? msum : 1.0;
		/* a mean over nothing is 0 with gradient 0 */
		px->scale = pm->denom > 0.0 ? (float)(pm->weight / pm->denom) : 0.0f;
		if (!isfinite(px->scale)) {
			sl_record(&run->bad, SL_BAD_SCALE, (size_t)i, px->scale);
			rc = SL_ERR_INPUT;
			goto done;
		}
		if (j->bce_stats) {
			/* Σ w_c (w+ Σ t softplus(-x) + w- Σ (1 - t) softplus(x)) */
			double v = 0.0;
			for (size_t n = 0; n < N; n++)
				for (size_t c = (size_t)px->c0; c < C; c++) {
					const double *s = run->stats + (n * C + c) * SL_NSTAT;
					double w = px->cw ? (double)px->cw[c] : 1.0;
					v += w * ((double)px->pos_weight * s[SL_S_BA] + (double)px->neg_weight * s[SL_S_BB]);
				}
			pm->value = pm->denom > 0.0 ? v / pm->denom : 0.0;
			run->total += pm->weight * pm->value;
		}
	}

	/* where the gradient could overflow float32 in the caller's out, a trial
	 * pass checks it first: nothing is written unless the run succeeds */
	if (fused && run->out_user && j->out_mode == SL_OUT_GRAD && !(grad_bound(run) <= 0x1p+125)) {
		j->dry = 1;
		rc = run_pass(e, j, PASS_FUSED, 0, 0, part, pw, &run->bad);
		j->dry = 0;
		if (rc != SL_OK)
			goto done;
	}
	if (fused) {
		rc = run_pass(e, j, PASS_FUSED, 0, 0, part, pw, &run->bad);
		if (rc != SL_OK)
			goto done;
		for (int i = 0; i < j->npix && !j->bce_stats; i++) {
			double v = 0.0;
			for (size_t task = 0; task < tk.n; task++)
				v += part[task * pw + (size_t)i];
			sl_pixmeta *pm = &run->pm[i];
			pm->value = pm->reduction == SL_RED_NONE ? 0.0 : pm->denom > 0.0 ? v / pm->denom : 0.0;
			run->total += pm->weight * pm->value;
		}
	}

	/* generic parts, after the fused pass: each adds its gradient, but the
	 * first one stores into a gradient nothing has written yet when it can
	 * (loss.h: sl_genpart.stores) */
	int fresh = gen && run->want_grad && !fused && run->gen[0].stores;
	if (gen && run->want_grad && !fused && !fresh)
		memset(j->out, 0, N * C * M * sizeof *j->out);
	for (int i = 0; gen && i < run->ngen; i++) {
		sl_genpart *gp = &run->gen[i];
		gp->fresh = i == 0 && fresh;
		gp->value = 0.0;
		rc = gp->eval(e, j, gp, run->want_grad ? j->out : NULL, &gp->value, &run->bad);
		if (rc != SL_OK)
			goto done;
		run->total += gp->weight * gp->value;
		run->gen_ran++;
	}
done:
	free(part);
	free(run->coef);
	free(run->coefd);
	run->coef = NULL;
	run->coefd = NULL;
	j->coef = NULL;
	return rc;
}

int sl_loss_run(const sl_exec *e, sl_lossrun *run)
{
	sl_lossjob *j = &run->job;
	size_t n = j->N * j->C * j->M;
	/* A generic part may fail after the fused pass has written: a run with
	 * generic parts that writes into the caller's out goes into a scratch,
	 * copied into out when the run succeeds. */
	float *user = j->out, *scratch = NULL;
	int out_user = run->out_user;
	/* not for a lone generic part that writes only on success (loss.h) */
	int fused = j->npix > 0 || (run->want_grad && run->nreg > 0);
	int alone = run->ngen == 1 && !fused && run->gen[0].stores && run->gen[0].atomic;
	if (run->ngen > 0 && run->want_grad && out_user && !run->stats_only && !alone) {
		scratch = sl_mem_malloc((n ? n : 1) * sizeof *scratch);
		if (!scratch)
			return SL_ERR_NOMEM;
		j->out = scratch;
		run->out_user = 0;
	}
	int rc = run_parts(e, run);
	if (scratch) {
		if (rc == SL_OK)
			memcpy(user, scratch, n * sizeof *user);
		free(scratch);
		j->out = user;
		run->out_user = out_user;
	}
	return rc;
}

void sl_loss_free(sl_lossrun *run)
{
	if (run->stats != run->stats_mem)
		free(run->stats);
	run->stats = NULL;
}
