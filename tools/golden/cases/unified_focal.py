"""Golden cases of unified_focal: spec/golden/unified_focal.json, in this order.

The asymmetric unified focal loss of Yeung et al. (CMIG 2022), as
docs/losses.md ("Newer losses") defines it:

    L   = λ mF + (1 - λ) mFT
    mF  = mean over valid pixels of (1 - δ)(1 - p_0)^γ (-t_0 log p_0) + δ Σ_{c≥1} (-t_c log p_c)
    mFT = mean over (row, class) of 1 - TI_0 and max(1 - TI_c, eps)^(1 - γ) (c ≥ 1)
    TI  = (TP + s)/(TP + δ FN + (1 - δ) FP + s) per (n, c) (per class with batch)

C = 1 means the two classes 1 - p (background) and p; with C ≥ 2 the
channels are the classes.  `weight` is λ (one number)."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..case import (Case, empty_sample, expect_grad_zero_sample, expect_zero, large_logits, mask_all,
                    mask_sample, NON, SIG, SMX, special_probs)
from ..common import DT, check
from ..reference import ClampedLog, FocalPow, pixel_mask

DEFAULTS = {"weight": 0.5, "delta": 0.7, "gamma": 0.5, "smooth": 1e-7}


def classes(x, t, o):
    """p, q = 1 - p, log p and t per class (N, K, S...), K = 2 for C = 1."""
    act, eps = o["activation"], float(o["eps"])
    C = x.shape[1]
    if C == 1:
        if act == "sigmoid":
            l1, l0 = F.logsigmoid(x), F.logsigmoid(-x)
            p1, p0 = torch.exp(l1), torch.exp(l0)
        else:
            p1, p0 = x, 1.0 - x
            l1, l0 = ClampedLog.apply(p1, eps), ClampedLog.apply(p0, eps)
        return (torch.cat([p0, p1], 1), torch.cat([p1, p0], 1), torch.cat([l0, l1], 1),
                torch.cat([1.0 - t, t], 1))
    if act == "softmax":
        lp = F.log_softmax(x, dim=1)
        p = torch.exp(lp)
        others = 1.0 - torch.eye(C, dtype=DT)
        q = torch.einsum("nk...,kc->nc...", p, others)
    elif act == "sigmoid":
        lp = F.logsigmoid(x)
        p = torch.exp(lp)
        q = torch.exp(F.logsigmoid(-x))
    else:
        p, q = x, 1.0 - x
        lp = ClampedLog.apply(p, eps)
    return p, q, lp, t


def torch_loss(x, t, m, o):
    check(o["reduction"] != "none", "unified_focal has no reduction none")
    lam, d, g, s, eps = (float(o[k]) for k in ("weight", "delta", "gamma", "smooth", "eps"))
    p, q, lp, tt = classes(x, t, o)
    mp = pixel_mask(m)                                     # (N, 1, S...)
    K = p.shape[1]
    # the focal part, per pixel
    ell = (1.0 - d) * FocalPow.apply(q[:, :1], g) * (-tt[:, :1] * lp[:, :1])
    if K > 1:
        ell = ell + d * (-(tt[:, 1:] * lp[:, 1:])).sum(dim=1, keepdim=True)
    sumF, cnt = (mp * ell).sum(), mp.sum()
    # the focal Tversky part, per (row, class)
    dims = tuple(range(2, x.dim()))
    mk = mp.expand_as(p)

    def S(v):
        r = v.sum(dim=dims)
        return r.sum(dim=0, keepdim=True) if o["batch"] else r
    TP, FN, FP, Mv = S(mk * p * tt), S(mk * q * tt), S(mk * p * (1.0 - tt)), S(mk)
    num, den = TP + s, TP + d * FN + (1.0 - d) * FP + s
    safe = torch.where(den > 0, den, torch.ones_like(den))
    TI = torch.where(den > 0, num / safe, torch.ones_like(den))      # 0/0: the limit 1
    v = 1.0 - TI
    clamped = torch.where(v < eps, torch.full_like(v, eps), v)
    Lc = torch.cat([v[:, :1], torch.pow(clamped[:, 1:], 1.0 - g)], 1)
    take = Mv > 0
    sumFT, nFT = Lc[take].sum(), int(take.sum().item())
    if o["reduction"] == "sum":
        return lam * sumF + (1.0 - lam) * sumFT
    mF = sumF / cnt if cnt.item() > 0 else sumF * 0.0
    mFT = sumFT / nFT if nFT > 0 else sumFT * 0.0
    return lam * mF + (1.0 - lam) * mFT


def scalar(sc):
    o = sc.o
    lam, d, g, s, eps = (float(o[k]) for k in ("weight", "delta", "gamma", "smooth", "eps"))
    N, C, Msp = sc.N, sc.C, sc.Msp
    K = 2 if C == 1 else C

    def cls(n, k, i):
        """p, q, log p, t of class k at (n, i)"""
        if C == 1:
            p, q, lp, lq, t = sc.P[n, 0, i], sc.Q[n, 0, i], sc.LP[n, 0, i], sc.LQ[n, 0, i], sc.T[n, 0, i]
            return (q, p, lq, 1.0 - t) if k == 0 else (p, q, lp, t)
        return sc.P[n, k, i], sc.Q[n, k, i], sc.LP[n, k, i], sc.T[n, k, i]

    rows = 1 if o["batch"] else N
    st = [[[0.0] * 4 for _ in range(K)] for _ in range(rows)]
    sumF = cnt = 0.0
    for n in range(N):
        r = 0 if o["batch"] else n
        for i in range(Msp):
            w = sc.W[n, 0, i]
            if w == 0:
                continue
            cnt += w
            f = 0.0
            for k in range(K):
                p, q, lp, t = cls(n, k, i)
                st[r][k][0] += w * p * t
                st[r][k][1] += w * q * t
                st[r][k][2] += w * p * (1.0 - t)
                st[r][k][3] += w
                if k == 0:
                    f += (1.0 - d) * (1.0 if g == 0 else q ** g) * (-t * lp)
                else:
                    f += d * (-t * lp)
            sumF += w * f
    sumFT = nFT = 0.0
    for r in range(rows):
        for k in range(K):
            tp, fn, fp, mv = st[r][k]
            if mv <= 0:
                continue
            den = tp + d * fn + (1.0 - d) * fp + s
            ti = (tp + s) / den if den > 0 else 1.0
            v = 1.0 - ti
            sumFT += v if k == 0 else max(v, eps) ** (1.0 - g)
            nFT += 1
    if sc.red == "sum":
        return lam * sumF + (1.0 - lam) * sumFT
    return lam * (sumF / cnt if cnt > 0 else 0.0) + (1.0 - lam) * (sumFT / nFT if nFT > 0 else 0.0)


def cases():
    return [
        Case("sigmoid-2d-default", "C=1: the two classes 1-p, p; defaults (lambda 0.5, delta 0.7, gamma 0.5)",
             {"activation": SIG}, (2, 1, 6, 6)),
        Case("none-2d-default", "activation omitted (\"none\"), C=1",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-c2-onehot", "C=2 softmax, one-hot target",
             {"activation": SMX}, (2, 2, 4, 5), target="onehot"),
        Case("sigmoid-lambda1", "weight (lambda) 1: the asymmetric focal part alone",
             {"activation": SIG, "weight": 1.0}, (2, 1, 5, 5)),
        Case("softmax-lambda0", "weight (lambda) 0: the asymmetric focal Tversky part alone",
             {"activation": SMX, "weight": 0.0}, (2, 3, 4, 4), target="labels"),
        Case("sigmoid-delta0.5-gamma0", "delta 0.5, gamma 0: a weighted ce and 1 - TI",
             {"activation": SIG, "delta": 0.5, "gamma": 0.0}, (2, 1, 4, 6)),
        Case("softmax-gamma1", "gamma 1: the rare classes' Tversky terms are constant 1",
             {"activation": SMX, "gamma": 1.0, "weight": 0.3}, (2, 3, 4, 4), target="labels"),
        Case("softmax-3d-batch", "3-D softmax, batch=true: one Tversky index per class",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("sigmoid-pixmask", "(N,1,S) mask",
             {"activation": SIG}, (2, 1, 5, 6), mask="pix"),
        Case("softmax-masked-sample", "sample 0 fully masked: it takes no part",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
        Case("sigmoid-empty-target", "sample 0: empty target and (about) empty prediction",
             {"activation": SIG}, (2, 1, 4, 5), edits=[empty_sample(0)]),
        Case("softmax-sum", "reduction sum",
             {"activation": SMX, "reduction": "sum"}, (2, 3, 3, 4), target="labels"),
        Case("softmax-large-logits", "|x| in [30, 80]: log-softmax, p underflowing",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("none-simplex-onehot", "activation none, C=3 probabilities, one-hot target, fullsame mask",
             {"activation": NON, "delta": 0.6}, (2, 3, 4, 4), xkind="simplex", target="onehot", mask="fullsame"),
        Case("sigmoid-c2-channels", "sigmoid with C=2: the channels are the classes",
             {"activation": SIG, "gamma": 0.3}, (2, 2, 4, 5)),
        Case("softmax-1d-smooth1", "1-D softmax, smooth 1",
             {"activation": SMX, "smooth": 1.0}, (3, 3, 10), target="labels"),
        Case("none-special-probs", "activation none, C=1, p exactly 0 and 1 and below eps",
             {"activation": NON}, (2, 1, 4, 6), edits=[special_probs(8)]),
        Case("sigmoid-large-logits-soft", "sigmoid with |x| in [30, 80], soft targets",
             {"activation": SIG}, (2, 1, 4, 4), target="soft", edits=[large_logits(0.5)]),
    ]
