/*
 * loss_simd.h — the entry points of loss_simd.c, the SIMD loss kernels of
 * one ISA (included after simd_isa.h, which names them through SL_SFX):
 * the statistics pass, the fused pass and the checks of loss.h, and the
 * list of their variants (loss_variants.inc).
 */
#ifndef SL_LOSS_SIMD_H
#define SL_LOSS_SIMD_H

#include "kern.h"
#include "simd_isa.h"

void SL_SFX(sl_loss_stats)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *st,
                           sl_bad *bad);
void SL_SFX(sl_loss_fused)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, double *vals,
                           sl_bad *bad);
int SL_SFX(sl_loss_check)(const sl_lossjob *j, size_t n, size_t s0, size_t s1, int cx, int ct,
                          double *st);
extern const sl_lossvars SL_SFX(sl_loss_variants);

#endif
