/*
 * loss_scalar.c — the reference loss kernels: one element at a time, in
 * double, with libm. The SIMD kernels are checked against these.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "../loss/loss.h"
#include "../loss/validate.h"
#include "kern.h"

static double sigmoid(double x)
{
	double z = exp(-fabs(x));
	return x >= 0 ? 1.0 / (1.0 + z) : z / (1.0 + z);
}

/* log σ(x) = -softplus(-x) */
static double log_sigmoid(double x) { return (x < 0 ? x : 0.0) - log1p(exp(-fabs(x))); }

/* e_c = exp(x_c - max_k x_k) at pixel s of sample n; returns Σ e_c */
static double softmax_exp(const sl_lossjob *j, size_t n, size_t s, double *e, double *mx)
{
	size_t C = j->C, M = j->M;
	double m = -INFINITY, S = 0.0;
	for (size_t c = 0; c < C; c++) {
		double v = (double)j->x[(n * C + c) * M + s];
		m = v > m ? v : m;
	}
	for (size_t c = 0; c < C; c++) {
		e[c] = exp((double)j->x[(n * C + c) * M + s] - m);
		S += e[c];
	}
	*mx = m;
	return S;
}

/* dL/dp of the region parts for one element, from its coefficients (loss.h) */
static double region_gp(const sl_lossjob *j, const float *k, double p, double t)
{
	double d = p - t;
	double g = (double)k[SL_K_T0] * (1.0 - t) + (double)k[SL_K_T1] * t + (double)k[SL_K_P] * d;
	if (j->coef_full) {
		g += (double)k[SL_K_SAD] * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0);
		g += 2.0 * d * ((double)k[SL_K_SE1] * t + (double)k[SL_K_SE0] * (1.0 - t));
	}
	return g;
}

/* Stores v at out[i] unless the job is a trial; records it as bad (and
 * returns 1) if it is not finite in float32. */
static int put(const sl_lossjob *j, size_t i, double v, int kind, sl_bad *bad)
{
	float f = (float)v;
	if (!isfinite(f))
		return sl_record(bad, kind, i, f);
	if (!j->dry)
		j->out[i] = f;
	return 0;
}

/* Stores the gradient g at out[i] — or adds it to out[i] with
 * j->accumulate, in one float addition, as the SIMD kernels do — unless the
 * job is a trial; records it as bad (and returns 1) if the float result is
 * not finite. */
static int put_grad(const sl_lossjob *j, size_t i, double g, sl_bad *bad)
{
	float f = (float)g;
	if (j->accumulate)
		f = j->out[i] + f;
	if (!isfinite(f))
		return sl_record(bad, SL_BAD_GRAD, i, f);
	if (!j->dry)
		j->out[i] = f;
	return 0;
}

/* q^g and g q^(g-1), the latter 0 where q = 0 (docs/losses.md, Conventions) */
static void focal_pow(double q, double g, double *qg, double *dqg)
{
	if (q <= 0.0) {
		*qg = g == 0.0 ? 1.0 : 0.0;
		*dqg = 0.0;
		return;
	}
	*qg = pow(q, g);
	*dqg = g * *qg / q;
}

/* ---- statistics pass ------------------------------------------------ */

static void add_stats(double *s, int full, double m, double p, double t)
{
	if (m == 0.0)
		return;
	s[SL_S_TP] += p * t;
	s[SL_S_SP] += p;
	s[SL_S_ST] += t;
	s[SL_S_M] += 1.0;
	if (full) {
		double d = t - p;
		s[SL_S_SP2] += p * p;
		s[SL_S_ST2] += t * t;
		s[SL_S_SAD] += fabs(d);
		s[SL_S_SQT] += d * d * t;
		s[SL_S_SQN] += d * d * (1.0 - t);
	}
}

void sl_loss_stats__scalar(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st,
                           sl_bad *bad)
{
	size_t C = j->C, M = j->M;
	if (j->act == SL_ACT_SOFTMAX) {
		double e[SL_MAXC_SOFTMAX];
		for (size_t s = s0; s < s1; s++) {
			if (j->check_x)
				for (size_t c = 0; c < C; c++)
					if (sl_bad_x(j, (n * C + c) * M + s, bad))
						return;
			double mx, S = softmax_exp(j, n, s, e, &mx);
			for (size_t c = 0; c < C; c++) {
				if (j->check_t && sl_bad_tm(j, n, c, s, bad))
					return;
				double pc = e[c] / S;
				if (j->p_in_out)
					j->out[(n * C + c) * M + s] = (float)pc;
				add_stats(st + c * SL_NSTAT, j->stats_full, sl_mval(j, n, c, s), pc, sl_tval(j, n, c, s));
			}
		}
		return;
	}
	for (size_t c = 0; c < C; c++) {
		for (size_t s = s0; s < s1; s++) {
			size_t i = (n * C + c) * M + s;
			if ((j->check_x && sl_bad_x(j, i, bad)) || (j->check_t && sl_bad_tm(j, n, c, s, bad)))
				return;
			double p = j->act == SL_ACT_SIGMOID ? sigmoid((double)j->x[i]) : (double)j->x[i];
			if (j->p_in_out) /* sigmoid: the smaller of p, 1 - p, signed */
				j->out[i] = j->x[i] < 0.0f ? (float)p : -(float)sigmoid(-(double)j->x[i]);
			else if (j->z_in_out) /* e^-|x| for the SIMD fused pass (read by it only) */
				j->out[i] = (float)exp(-fabs((double)j->x[i]));
			double m = sl_mval(j, n, c, s), t = sl_tval(j, n, c, s);
			add_stats(st + c * SL_NSTAT, j->stats_full, m, p, t);
			if (j->bce_stats && m != 0.0) {
				double x = (double)j->x[i];
				st[c * SL_NSTAT + SL_S_BA] -= m * t * log_sigmoid(x);
				st[c * SL_NSTAT + SL_S_BB] -= m * (1.0 - t) * log_sigmoid(-x);
			}
		}
	}
}

/* ---- fused value and gradient pass ---------------------------------- */

/* Elementwise activations ("none", "sigmoid"): bce, sigmoid/none focal, and
 * ce with "none". */
static void fused_elementwise(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                              sl_bad *bad)
{
	size_t C = j->C, M = j->M;
	int nk = j->coef_full ? SL_NK : SL_NK_BASIC, sig = j->act == SL_ACT_SIGMOID;
	double eps = (double)j->eps;
	if (j->out_mode == SL_OUT_VALUES)
		for (int i = 0; i < j->npix; i++)
			if (j->pix[i].type == SL_PX_CE)
				for (size_t s = s0; s < s1; s++)
					j->out[n * M + s] = 0.0f;
	for (size_t c = 0; c < C; c++) {
		const float *k = j->coef ? j->coef + (n * C + c) * (size_t)nk : NULL;
		for (size_t s = s0; s < s1; s++) {
			size_t i = (n * C + c) * M + s;
			if ((j->fused_check_x && sl_bad_x(j, i, bad)) ||
			    (j->fused_check_t && sl_bad_tm(j, n, c, s, bad)))
				return;
			double t = sl_tval(j, n, c, s), m = sl_mval(j, n, c, s);
			double x = (double)j->x[i], p, q, lp, lq, dpdx;
			if (j->p_in_out) {
				/* only bce parts in this mode: their values came with the
				 * statistics, their gradients need p and q alone */
				double v = (double)j->out[i];
				p = signbit(v) ? 1.0 + v : v;
				q = signbit(v) ? -v : 1.0 - v;
				lp = lq = 0.0;
			} else if (sig) {
				p = sigmoid(x);
				q = sigmoid(-x);
				lp = log_sigmoid(x);
				lq = log_sigmoid(-x);
			} else {
				p = x;
				q = 1.0 - x;
				lp = log(p > eps ? p : eps);
				lq = log(q > eps ? q : eps);
			}
			dpdx = sig ? p * q : 1.0;
			/* clamped logs: d log(max(p, eps))/dp = 1/p on [eps, 1], else 0 */
			double dlp = sig ? q : (p >= eps ? 1.0 / p : 0.0);   /* d log p / dx */
			double dlq = sig ? -p : (q >= eps ? -1.0 / q : 0.0); /* d log(1-p) / dx */
			double gx = 0.0;
			if (j->out_mode == SL_OUT_VALUES && j->pix[0].type != SL_PX_CE)
				j->out[i] = 0.0f; /* masked, or a channel below c0 */
			if (k && m != 0.0)
				gx = m * region_gp(j, k, p, t) * dpdx;
			for (int pi = 0; pi < j->npix; pi++) {
				const sl_pixk *px = &j->pix[pi];
				if ((int)c < px->c0 || m == 0.0)
					continue;
				double w = px->cw ? (double)px->cw[c] : 1.0, l, dl;
				/* the part's target: t, or smoothed (label_smoothing) */
				double tt = t, ot = 1.0 - t;
				if (px->ls) {
					tt = px->ls_a * t + px->ls_b * (1.0 - t);
					ot = px->ls_a1 * t + px->ls_b1 * (1.0 - t);
				}
				if (px->type == SL_PX_BCE) {
					double pw = (double)px->pos_weight, nw = (double)px->neg_weight;
					l = -(pw * tt * lp + nw * ot * lq);
					dl = -(pw * tt * dlp + nw * ot * dlq);
				} else if (px->type == SL_PX_CE) {
					l = -tt * lp;
					dl = -tt * dlp;
				} else {
					double Q = tt * q + ot * p, Qg, dQg;
					double at = px->alpha_on
					                ? (double)px->alpha * tt + (1.0 - (double)px->alpha) * ot
					                : 1.0;
					double b = -(tt * lp + ot * lq);
					double db = -(tt * dlp + ot * dlq);
					focal_pow(Q, (double)px->gamma, &Qg, &dQg);
					l = at * Qg * b;
					dl = at * (dQg * (1.0 - 2.0 * tt) * dpdx * b + Qg * db);
				}
				if (!j->p_in_out)
					vals[pi] += w * m * l;
				gx += (double)px->scale * w * m * dl;
				if (j->out_mode == SL_OUT_VALUES) {
					double wv = px->cwv ? (double)px->cwv[c] : 1.0;
					size_t o = px->type == SL_PX_CE ? n * M + s : i;
					double prev = px->type == SL_PX_CE ? (double)j->out[o] : 0.0;
					if (put(j, o, prev + wv * m * l, SL_BAD_VALUE, bad))
						return;
				}
			}
			if (j->out_mode == SL_OUT_GRAD && put_grad(j, i, gx, bad))
				return;
		}
	}
}

/* Softmax: ce and softmax focal, region parts through the softmax chain:
 * with h_c = p_c dL/dp_c, dL/dx_c = h_c - p_c Σ_k h_k. */
static void fused_softmax(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                          sl_bad *bad)
{
	size_t C = j->C, M = j->M;
	int nk = j->coef_full ? SL_NK : SL_NK_BASIC;
	double p[SL_MAXC_SOFTMAX], lp[SL_MAXC_SOFTMAX], q[SL_MAXC_SOFTMAX], h[SL_MAXC_SOFTMAX],
		e[SL_MAXC_SOFTMAX];
	for (size_t s = s0; s < s1; s++) {
		if (j->fused_check_x)
			for (size_t c = 0; c < C; c++)
				if (sl_bad_x(j, (n * C + c) * M + s, bad))
					return;
		if (j->fused_check_t)
			for (size_t c = 0; c < C; c++)
				if (sl_bad_tm(j, n, c, s, bad))
					return;
		if (j->p_in_out) {
			double pre = 0.0;
			for (size_t c = 0; c < C; c++) {
				p[c] = (double)j->out[(n * C + c) * M + s];
				q[c] = pre; /* completed below: 1 - p_c = Σ_{k≠c} p_k */
				pre += p[c];
				lp[c] = 0.0;
			}
			double suf = 0.0;
			for (size_t c = C; c-- > 0;) {
				q[c] += suf;
				suf += p[c];
			}
		} else {
			double mx, S = softmax_exp(j, n, s, e, &mx);
			double lS = log(S), pre = 0.0;
			for (size_t c = 0; c < C; c++) {
				p[c] = e[c] / S;
				lp[c] = ((double)j->x[(n * C + c) * M + s] - mx) - lS;
				q[c] = pre; /* Σ_{k<c} e_k, completed below: 1 - p_c = Σ_{k≠c} e_k / S */
				pre += e[c];
			}
			double suf = 0.0;
			for (size_t c = C; c-- > 0;) {
				q[c] = (q[c] + suf) / S;
				suf += e[c];
			}
		}
		double mpix = j->m ? (double)j->m[j->mask_full ? (n * C) * M + s : n * M + s] : 1.0;
		double lsum[SL_MAXPIX] = {0}, lsumv[SL_MAXPIX] = {0};
		for (size_t c = 0; c < C; c++) {
			double t = sl_tval(j, n, c, s), hc = 0.0;
			if (j->coef && mpix != 0.0)
				hc = mpix * p[c] * region_gp(j, j->coef + (n * C + c) * (size_t)nk, p[c], t);
			for (int pi = 0; pi < j->npix; pi++) {
				const sl_pixk *px = &j->pix[pi];
				/* the part's target: t, or smoothed (label_smoothing) */
				double tt = px->ls ? px->ls_a * t + px->ls_b * (1.0 - t) : t;
				if ((int)c < px->c0 || mpix == 0.0 || tt == 0.0)
					continue;
				double w = px->cw ? (double)px->cw[c] : 1.0;
				double wv = px->cwv ? (double)px->cwv[c] : 1.0, l, hl;
				if (px->type == SL_PX_CE) {
					l = -tt * lp[c];
					hl = -tt;
				} else {
					double Qg, dQg;
					focal_pow(q[c], (double)px->gamma, &Qg, &dQg);
					l = -tt * Qg * lp[c];
					hl = -tt * (Qg - dQg * p[c] * lp[c]);
				}
				lsum[pi] += w * l;
				lsumv[pi] += wv * l;
				hc += (double)px->scale * w * mpix * hl;
			}
			h[c] = hc;
		}
		for (int pi = 0; pi < j->npix; pi++)
			vals[pi] += mpix * lsum[pi];
		if (j->out_mode == SL_OUT_GRAD) {
			/* h_c - p_c Σ_k h_k = h_c q_c - p_c Σ_{k≠c} h_k: no cancellation when
			 * one class takes (almost) all the probability */
			double pre = 0.0;
			for (size_t c = 0; c < C; c++) {
				e[c] = pre;
				pre += h[c];
			}
			double suf = 0.0;
			for (size_t c = C; c-- > 0;) {
				double hx = e[c] + suf;
				suf += h[c];
				if (put_grad(j, (n * C + c) * M + s, h[c] * q[c] - p[c] * hx, bad))
					return;
			}
		} else if (j->out_mode == SL_OUT_VALUES && put(j, n * M + s, mpix * lsumv[0], SL_BAD_VALUE, bad)) {
			return;
		}
	}
}

void sl_loss_fused__scalar(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                           sl_bad *bad)
{
	assert(!j->accumulate || (j->out_mode == SL_OUT_GRAD && !j->p_in_out && !j->z_in_out));
	if (j->act == SL_ACT_SOFTMAX)
		fused_softmax(j, n, s0, s1, vals, bad);
	else
		fused_elementwise(j, n, s0, s1, vals, bad);
}

/* ---- checks and target statistics ------------------------------------ */

int sl_loss_check__scalar(const sl_lossjob *j, size_t n, size_t s0, size_t s1, int cx, int ct,
                          double *st)
{
	sl_bad bad = {SL_BAD_NONE, 0, 0.0f};
	for (size_t c = 0; c < j->C; c++) {
		double ST = 0.0, Mv = 0.0;
		for (size_t s = s0; s < s1; s++) {
			if ((cx && sl_bad_x(j, (n * j->C + c) * j->M + s, &bad)) ||
			    (ct && sl_bad_tm(j, n, c, s, &bad)))
				return 1;
			double m = sl_mval(j, n, c, s);
			ST += m * sl_tval(j, n, c, s);
			Mv += m;
		}
		if (st) {
			st[c * SL_NSTAT + SL_S_ST] += ST;
			st[c * SL_NSTAT + SL_S_M] += Mv;
		}
	}
	return 0;
}
