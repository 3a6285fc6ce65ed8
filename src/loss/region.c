/*
 * region.c — region losses from their statistics: values, reductions and
 * gradient coefficients, in double. Lua-free.
 *
 * For each (row, class) the loss L is a function of the statistics; its
 * partial derivatives D[k] = dL/dS_k are chained through the reduction and
 * turned into the coefficients of loss.h. Since dTP/dp = t, dSP/dp = 1,
 * dSP2/dp = 2p, dSAD/dp = sgn(p - t), dSQT/dp = 2 (p - t) t and dSQN/dp =
 * 2 (p - t)(1 - t), the gradient D_SP + D_TP t + 2 D_SP2 p + ... is
 *   K_T0 (1 - t) + K_T1 t + K_P (p - t) + K_SAD sgn(p - t)
 *     + 2 (p - t)(K_SE1 t + K_SE0 (1 - t))
 * with K_T0 = D_SP, K_T1 = D_SP + D_TP + 2 D_SP2 (both in double: the sum
 * cancels there, not in float), K_P = 2 D_SP2, K_SAD = D_SAD, K_SE0 = D_SQN,
 * K_SE1 = D_SQT.
 *
 * Smoothing 0 can make a ratio 0/0 (an empty target and prediction): it
 * then takes its limit as equal smoothing terms go to 0 (1 for dice, iou
 * and tversky, 1/2 for each of dice's complement terms, 0 for the error
 * rates of sensitivity_specificity), with derivative 0.
 */
#include <math.h>
#include <string.h>

#include "loss.h"
#include "registry.h" /* SL_O_*: a loss's own options, rp->opts[SL_O_*] */

/* a / b, or lim where b = 0 (then a = 0 too: the bindings refuse smooth_nr
 * > 0 with smooth_dr = 0); *ok says whether b > 0 */
static double ratio(double a, double b, double lim, int *ok)
{
	*ok = b > 0.0;
	return *ok ? a / b : lim;
}

size_t sl_region_rows(const sl_regpart *rp, size_t N) { return rp->batch ? 1 : N; }

size_t sl_region_cols(const sl_regpart *rp, size_t C) { return rp->type == SL_R_GDICE ? 1 : C; }

/* The statistics of class c in row r: sample r, or the batch summed in the
 * order n = 0 .. N-1, or the external statistics given for batch parts. */
static void class_stats(const sl_regpart *rp, const double *st, size_t N, size_t C, size_t r,
                        size_t c, double *out)
{
	if (rp->batch && rp->ext) {
		memcpy(out, rp->ext + c * SL_NSTAT, SL_NSTAT * sizeof *out);
		return;
	}
	size_t n0 = rp->batch ? 0 : r, n1 = rp->batch ? N : r + 1;
	memset(out, 0, SL_NSTAT * sizeof *out);
	for (size_t n = n0; n < n1; n++)
		for (int k = 0; k < SL_NSTAT; k++)
			out[k] += st[(n * C + c) * SL_NSTAT + (size_t)k];
}

/* log(cosh(L)) for any L, without overflow or cancellation: for |L| <= 1
 * as log1p(2 sinh²(|L|/2)) (cosh L - 1 = 2 sinh²(L/2) exactly, so that the
 * value near 0, about L²/2, keeps its relative precision: |L| + log1p(e^-2|L|)
 * - log 2 would there subtract two numbers near log 2); beyond, as |L| +
 * log1p(e^-2|L|) - log 2, which neither overflows nor loses more than a few
 * ulps (the result is above 0.43 there). */
static double log_cosh(double L)
{
	double a = fabs(L);
	if (a <= 1.0) {
		double h = sinh(0.5 * a);
		return log1p(2.0 * h * h);
	}
	return a + log1p(exp(-2.0 * a)) - 0.69314718055994530942;
}

/* soft_label: TP = (SP + ST - SAD)/2 replaces Σ p t */
static double true_pos(const sl_regpart *rp, const double *s)
{
	return rp->soft ? 0.5 * (s[SL_S_SP] + s[SL_S_ST] - s[SL_S_SAD]) : s[SL_S_TP];
}

/* Moves dL/dTP onto the statistics TP is made of. */
static void chain_tp(const sl_regpart *rp, double *D)
{
	if (rp->soft) {
		D[SL_S_SP] += 0.5 * D[SL_S_TP];
		D[SL_S_SAD] -= 0.5 * D[SL_S_TP];
		D[SL_S_TP] = 0.0;
	}
}

/* L of one (row, class) of the non-generalized region losses, and its
 * partial derivatives in D (if D is not NULL). */
static double region_L(const sl_regpart *rp, const double *s, double *D)
{
	double TP = true_pos(rp, s), SP = s[SL_S_SP], ST = s[SL_S_ST], Mv = s[SL_S_M];
	double snr = rp->snr, sdr = rp->sdr, L = 0.0;
	double dTP = 0.0, dSP = 0.0, dSP2 = 0.0, dSQT = 0.0, dSQN = 0.0;
	int ok, ok2;
	switch (rp->type) {
	case SL_R_DICE:
	case SL_R_LCDICE:
		if (rp->complement) {
			double TN = Mv - SP - ST + TP;
			double A1 = TP + snr, B1 = SP + ST + 2.0 * sdr;
			double A2 = TN + snr, B2 = 2.0 * Mv - SP - ST + 2.0 * sdr;
			L = 1.0 - ratio(A1, B1, 0.5, &ok) - ratio(A2, B2, 0.5, &ok2);
			/* dTN/dTP = 1, dTN/dSP = -1 */
			if (ok) {
				dTP -= 1.0 / B1;
				dSP += A1 / (B1 * B1);
			}
			if (ok2) {
				dTP -= 1.0 / B2;
				dSP += (B2 - A2) / (B2 * B2);
			}
		} else {
			double A = 2.0 * TP + snr;
			double B = (rp->squared ? s[SL_S_SP2] + s[SL_S_ST2] : SP + ST) + sdr;
			L = 1.0 - ratio(A, B, 1.0, &ok);
			if (ok) {
				dTP = -2.0 / B;
				if (rp->squared)
					dSP2 = A / (B * B);
				else
					dSP = A / (B * B);
			}
		}
		if (rp->type == SL_R_LCDICE) {
			/* log cosh of the dice term; d/dL log cosh L = tanh L */
			double f = tanh(L);
			L = log_cosh(L);
			dTP *= f;
			dSP *= f;
			dSP2 *= f;
		}
		break;
	case SL_R_IOU:
		if (rp->empty_complement && ST == 0.0) {
			/* scored on 1 - p, 1 - t: TP' = TN, SP' = M' - SP, ST' = M' */
			double TPc = Mv - SP - ST + TP, SPc = Mv - SP, STc = Mv - ST;
			double A = TPc + snr, B = SPc + STc - TPc + sdr;
			L = 1.0 - ratio(A, B, 1.0, &ok);
			if (ok) {
				double dTPc = -(B + A) / (B * B), dSPc = A / (B * B);
				/* dTP'/dTP = 1, dTP'/dSP = -1, dSP'/dSP = -1 */
				dTP = dTPc;
				dSP = -dTPc - dSPc;
			}
		} else {
			double A = TP + snr, B = SP + ST - TP + sdr;
			L = 1.0 - ratio(A, B, 1.0, &ok);
			if (ok) {
				dTP = -(B + A) / (B * B);
				dSP = A / (B * B);
			}
		}
		break;
	case SL_R_TVERSKY:
	case SL_R_FTVERSKY: {
		double a = rp->alpha, b = rp->beta, FP = SP - TP, FN = ST - TP;
		double A = TP + snr;
		double B = TP + a * FP + b * FN + sdr;
		L = 1.0 - ratio(A, B, 1.0, &ok);
		if (ok) {
			/* dB/dTP = 1 - a - b: -(B - A (1 - a - b)) / B², the numerator
			 * summed from its terms, nonnegative but for s_dr - s_nr */
			dTP = -(a * FP + b * FN + (a + b) * A + (sdr - snr)) / (B * B);
			dSP = A * a / (B * B);
		}
		if (rp->type == SL_R_FTVERSKY) {
			/* (max(L, eps))^gamma; the clamp's derivative is 0 below eps */
			double Lc = L < rp->eps ? rp->eps : L;
			double f = L < rp->eps ? 0.0 : rp->gamma * pow(Lc, rp->gamma - 1.0);
			L = pow(Lc, rp->gamma);
			dTP *= f;
			dSP *= f;
		}
		break;
	}
	case SL_R_SENSSPEC: {
		double lam = rp->lambda;
		double d1 = ST + sdr, d0 = Mv - ST + sdr;
		L = lam * ratio(s[SL_S_SQT], d1, 0.0, &ok) + (1.0 - lam) * ratio(s[SL_S_SQN], d0, 0.0, &ok2);
		dSQT = ok ? lam / d1 : 0.0;
		dSQN = ok2 ? (1.0 - lam) / d0 : 0.0;
		break;
	}
	default:
		break;
	}
	if (D) {
		memset(D, 0, SL_NSTAT * sizeof *D);
		D[SL_S_TP] = dTP;
		D[SL_S_SP] = dSP;
		D[SL_S_SP2] = dSP2;
		D[SL_S_SQT] = dSQT;
		D[SL_S_SQN] = dSQN;
		chain_tp(rp, D);
	}
	return L;
}

/* Adds f * D as coefficients to coef[n, c] for every n the row stands for. */
static void add_coef(double *coef, int nk, size_t N, size_t C, int batch, size_t r, size_t c,
                     double f, const double *D)
{
	double k[SL_NK] = {
		f * D[SL_S_SP],
		f * (D[SL_S_SP] + D[SL_S_TP] + 2.0 * D[SL_S_SP2]),
		f * 2.0 * D[SL_S_SP2],
		f * D[SL_S_SAD],
		f * D[SL_S_SQN],
		f * D[SL_S_SQT],
	};
	size_t n0 = batch ? 0 : r, n1 = batch ? N : r + 1;
	for (size_t n = n0; n < n1; n++) {
		double *q = coef + (n * C + c) * (size_t)nk;
		for (int i = 0; i < nk; i++)
			q[i] += k[i];
	}
}

static void eval_classwise(sl_regpart *rp, size_t N, size_t C, const double *st, double *coef,
                           int nk)
{
	size_t R = sl_region_rows(rp, N);
	double wsum = 0.0, vsum = 0.0, s[SL_NSTAT], D[SL_NSTAT];
	/* values, and the weight sum of what takes part */
	for (size_t r = 0; r < R; r++) {
		for (size_t c = 0; c < C; c++) {
			class_stats(rp, st, N, C, r, c, s);
			int takes = (int)c >= rp->c0 && s[SL_S_M] > 0.0;
			double L = takes ? region_L(rp, s, NULL) : 0.0;
			if (rp->L)
				rp->L[r * C + c] = L;
			if (takes) {
				double w = rp->cw ? rp->cw[c] : 1.0;
				wsum += w;
				vsum += w * L;
			}
		}
	}
	if (rp->reduction == SL_RED_NONE) {
		rp->value = 0.0;
		return;
	}
	/* a mean over nothing (all masked, or all weights 0) is 0, gradient 0 */
	double norm = rp->reduction == SL_RED_MEAN ? (wsum > 0.0 ? 1.0 / wsum : 0.0) : 1.0;
	rp->value = vsum * norm;
	if (!coef || norm == 0.0)
		return;
	for (size_t r = 0; r < R; r++) {
		for (size_t c = (size_t)rp->c0; c < C; c++) {
			double w = rp->cw ? rp->cw[c] : 1.0;
			class_stats(rp, st, N, C, r, c, s);
			if (!(s[SL_S_M] > 0.0) || w == 0.0)
				continue;
			region_L(rp, s, D);
			add_coef(coef, nk, N, C, rp->batch, r, c, rp->weight * w * norm, D);
		}
	}
}

/* generalized_dice's constant weight of a class with target sum ST, in a row
 * where `any` class has ST > 0 and wmax is the largest finite weight: a class
 * with ST = 0 gets wmax; with every class empty, w = 0 (docs/losses.md). */
static double gd_weight(int w_type, double ST, int any, double wmax)
{
	if (!any)
		return 0.0;
	if (w_type == SL_W_UNIFORM)
		return 1.0;
	if (!(ST > 0.0))
		return wmax;
	return w_type == SL_W_SQUARE ? 1.0 / (ST * ST) : 1.0 / ST;
}

/* generalized_dice's L of row r, with A and B of 1 - A/B; takes = M' > 0 */
static double gd_row(const sl_regpart *rp, size_t N, size_t C, const double *st, size_t r,
                     double *A, double *B, int *any, double *wmax, int *takes)
{
	double s[SL_NSTAT], Msum = 0.0;
	*any = 0;
	*wmax = 0.0;
	for (size_t c = (size_t)rp->c0; c < C; c++) {
		class_stats(rp, st, N, C, r, c, s);
		Msum += s[SL_S_M];
		if (s[SL_S_ST] > 0.0) {
			double w = gd_weight(rp->w_type, s[SL_S_ST], 1, 0.0);
			*wmax = w > *wmax ? w : *wmax;
			*any = 1;
		}
	}
	*A = rp->snr;
	*B = rp->sdr;
	for (size_t c = (size_t)rp->c0; c < C; c++) {
		class_stats(rp, st, N, C, r, c, s);
		double w = gd_weight(rp->w_type, s[SL_S_ST], *any, *wmax);
		*A += w * 2.0 * true_pos(rp, s);
		*B += w * (s[SL_S_SP] + s[SL_S_ST]);
	}
	*takes = Msum > 0.0;
	int ok;
	return 1.0 - ratio(*A, *B, 1.0, &ok);
}

static void eval_gdice(sl_regpart *rp, size_t N, size_t C, const double *st, double *coef, int nk)
{
	size_t R = sl_region_rows(rp, N), taking = 0;
	double vsum = 0.0, A, B, wmax, s[SL_NSTAT];
	int any, takes;
	for (size_t r = 0; r < R; r++) {
		double L = gd_row(rp, N, C, st, r, &A, &B, &any, &wmax, &takes);
		if (rp->L)
			rp->L[r] = takes ? L : 0.0;
		if (takes) {
			vsum += L;
			taking++;
		}
	}
	if (rp->reduction == SL_RED_NONE) {
		rp->value = 0.0;
		return;
	}
	double norm = rp->reduction == SL_RED_MEAN ? (taking ? 1.0 / (double)taking : 0.0) : 1.0;
	rp->value = vsum * norm;
	if (!coef || norm == 0.0)
		return;
	for (size_t r = 0; r < R; r++) {
		gd_row(rp, N, C, st, r, &A, &B, &any, &wmax, &takes);
		if (!takes)
			continue;
		for (size_t c = (size_t)rp->c0; c < C; c++) {
			class_stats(rp, st, N, C, r, c, s);
			double w = gd_weight(rp->w_type, s[SL_S_ST], any, wmax);
			if (w == 0.0 || !(B > 0.0))
				continue;
			double D[SL_NSTAT] = {0};
			D[SL_S_TP] = -2.0 * w / B;
			D[SL_S_SP] = w * A / (B * B);
			chain_tp(rp, D);
			add_coef(coef, nk, N, C, rp->batch, r, c, rp->weight * norm, D);
		}
	}
}

void sl_region_eval(sl_regpart *rp, size_t N, size_t C, const double *st, double *coef, int nk)
{
	if (rp->type == SL_R_GDICE)
		eval_gdice(rp, N, C, st, coef, nk);
	else
		eval_classwise(rp, N, C, st, coef, nk);
}
