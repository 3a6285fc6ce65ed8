/*
 * generic.h — what the generic losses (kind SL_KIND_GENERIC, loss.h's
 * sl_genpart) share: reading one sample's probabilities, targets and mask
 * the way the fused kernels define them, and the chain rule from d L / d p
 * back to d L / d x through the activation. Lua-free.
 *
 * A generic loss works one sample at a time: it makes p (and, when it needs
 * them, t and m) for sample n into buffers of C * M floats with
 * sl_gen_probs / sl_gen_targets / sl_gen_valid, computes its value and
 * d L / d p there, and adds weight * d L / d x into the gradient with
 * sl_gen_chain, which also checks that what it leaves is finite.
 */
#ifndef SL_GENERIC_H
#define SL_GENERIC_H

#include <stddef.h>
#include <stdint.h>

#include "loss.h"

struct sl_exec;

/* p of sample n, laid out as p[c * M + s]: x itself (activation "none"),
 * or the backend's sigmoid or softmax over the channels, the same
 * functions as segloss.sigmoid / segloss.softmax. With the sigmoid and q
 * not NULL, q = 1 - p too, to full relative precision (p near 1 loses it
 * in 1 - p); q is left alone otherwise. */
void sl_gen_probs(const struct sl_exec *e, const sl_lossjob *j, size_t n, float *p, float *q);

/* The target of element (n, c, s): the dense target's value, or 1/0 for a
 * label map (label == c). */
static inline float sl_gen_t(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	if (j->labels)
		return j->t[n * j->M + s] == (float)c ? 1.0f : 0.0f;
	return j->t[(n * j->C + c) * j->M + s];
}

/* The mask of element (n, c, s): 1 without a mask. */
static inline float sl_gen_m(const sl_lossjob *j, size_t n, size_t c, size_t s)
{
	if (!j->m)
		return 1.0f;
	return j->mask_full ? j->m[(n * j->C + c) * j->M + s] : j->m[n * j->M + s];
}

/* t and m of sample n as C * M floats each (either may be NULL). */
void sl_gen_targets(const sl_lossjob *j, size_t n, float *t, float *m);

/* Adds w * d L / d x of sample n into g (x's layout), given dp = d L / d p
 * of that sample (C * M doubles) and p, q from sl_gen_probs: dp itself for
 * "none", p q dp for the sigmoid (q NULL: 1 - p), p_c (dp_c - Σ_k p_k dp_k)
 * for the softmax. Every element written is checked to be finite: returns
 * SL_OK, or SL_ERR_INPUT with the first bad one recorded as SL_BAD_GRAD. */
int sl_gen_chain(const sl_lossjob *j, size_t n, const float *p, const float *q, const double *dp, double w,
                 float *g, sl_bad *bad);

/* boundary and hausdorff_dt (distance.c); sl_dist_shape: their reduction
 * "none" shape, x's */
int sl_boundary_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                     double *value, sl_bad *bad);
int sl_hausdorff_dt_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                         double *value, sl_bad *bad);
int sl_dist_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape);
/* cldice.c: clDice (Shit et al. 2021), its value and reduction "none" shape */
int sl_cldice_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                   double *value, sl_bad *bad);
int sl_cldice_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape);
/* unified_focal.c: the asymmetric unified focal loss (Yeung et al. 2022) */
int sl_unified_focal_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                          double *value, sl_bad *bad);

/* topk_ce.c: the mean of the largest k % of the ce / bce terms (nnU-Net's TopKLoss) */
int sl_topk_ce_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                    double *value, sl_bad *bad);
int sl_topk_ce_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape);
/* lovasz.c: the Lovász hinge and the Lovász-softmax (Berman et al. 2018),
 * and the shapes of their reduction "none" values: (N, 1) or (1, 1), and
 * (N, C) or (1, C), by option per_image */
int sl_lovasz_hinge_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                         double *value, sl_bad *bad);
int sl_lovasz_softmax_eval(const struct sl_exec *e, const sl_lossjob *j, const sl_genpart *gp, float *g,
                           double *value, sl_bad *bad);
int sl_lovasz_hinge_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape);
int sl_lovasz_softmax_shape(int ndim, const int64_t *xshape, const double *opts, int64_t *shape);

#endif
