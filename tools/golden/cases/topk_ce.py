"""Golden cases of topk_ce: spec/golden/topk_ce.json, in this order.

nnU-Net's TopKLoss as docs/losses.md ("Newer losses") defines it: the
mean of the largest max(1, floor(K k / 100)) per-pixel ce terms (softmax, or
"none" with C >= 2) or per-element bce terms (sigmoid, or "none" with C = 1),
K the number of valid terms of the batch, equal terms taken in index order
(the lower flat index first).  Class weights multiply the terms before the
ranking; reduction "none" gives the selected terms, 0 elsewhere.

torch.topk leaves the order of ties unspecified, so the reference ranks with
a stable sort of -value (ties keep index order) and checks torch.topk's
values agree; every case must have a gap at the k-th term (or an exact tie
from equal inputs) so that float32 terms select the same elements."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..case import (Case, expect_zero, large_logits, mask_all, NON, SIG, SMX, set_x, special_probs)
from ..common import DT, check
from ..reference import ClampedLog, pixel_mask

DEFAULTS = {"k": 10.0}


def ce_mode(o, C):
    return o["activation"] == "softmax" or (o["activation"] == "none" and C >= 2)


def terms(x, t, m, o):
    """(the terms, 1 where valid) in the shape of the "none" map."""
    act, eps = o["activation"], float(o["eps"])
    C = x.shape[1]
    c0 = 1 if (not o["include_background"] and C >= 2) else 0
    w = torch.tensor([float(v) for v in o["weight"]], dtype=DT) if "weight" in o else torch.ones(C, dtype=DT)
    wb = w.view((1, -1) + (1,) * (x.dim() - 2))
    inc = torch.ones(C, dtype=DT)
    inc[:c0] = 0.0
    ib = inc.view_as(wb)
    if ce_mode(o, C):
        lp = F.log_softmax(x, dim=1) if act == "softmax" else ClampedLog.apply(x, eps)
        ell = (-(ib * wb * t * lp)).sum(dim=1, keepdim=True)
        return ell, pixel_mask(m)
    if act == "sigmoid":
        lp, lq = F.logsigmoid(x), F.logsigmoid(-x)
    else:
        lp, lq = ClampedLog.apply(x, eps), ClampedLog.apply(1.0 - x, eps)
    ell = -wb * (t * lp + (1.0 - t) * lq)
    return ell, m * ib


def n_selected(K, k):
    return max(1, math.floor(K * k / 100.0))


def torch_loss(x, t, m, o):
    ell, valid = terms(x, t, m, o)
    flat, vflat = ell.reshape(-1), valid.reshape(-1)
    K = int(vflat.sum().item())
    if K == 0:
        return torch.zeros_like(ell) if o["reduction"] == "none" else (ell * 0.0).sum()
    nsel = n_selected(K, float(o["k"]))
    vals = torch.where(vflat > 0, flat.detach(), torch.full_like(flat, -1.0))   # terms are >= 0
    order = torch.sort(-vals, stable=True).indices                            # ties: index order
    chosen = order[:nsel]
    # torch.topk picks the same values (not necessarily the same tied indices)
    tv = torch.topk(vals, nsel).values
    check(torch.equal(torch.sort(tv).values, torch.sort(vals[chosen]).values), "topk vs stable sort")
    # a gap at the k-th term, or an exact tie: float32 terms then select alike
    if nsel < K:
        a, b = float(vals[order[nsel - 1]]), float(vals[order[nsel]])
        check(a == b or a - b > 1e-5 * max(a, 1e-3), "topk_ce: the k-th and next terms %r, %r are too close" % (a, b))
    sel = torch.zeros_like(flat)
    sel[chosen] = 1.0
    picked = (sel * flat).reshape(ell.shape)
    if o["reduction"] == "none":
        return picked.detach()
    total = picked.sum()
    return total / nsel if o["reduction"] == "mean" else total


def scalar(sc):
    o = sc.o
    N, C, Msp = sc.N, sc.C, sc.Msp
    c0 = 1 if (not o["include_background"] and C >= 2) else 0
    ce = ce_mode(o, C)
    items = []   # (value, flat index)
    out = np.zeros((N, 1 if ce else C, Msp))
    for n in range(N):
        if ce:
            for i in range(Msp):
                if sc.W[n, 0, i] == 0:
                    continue
                v = sum(-sc.w[c] * sc.T[n, c, i] * sc.LP[n, c, i] for c in range(c0, C) if sc.T[n, c, i] != 0)
                items.append((v, n * Msp + i))
        else:
            for c in range(c0, C):
                for i in range(Msp):
                    if sc.W[n, c, i] == 0:
                        continue
                    tt = sc.T[n, c, i]
                    v = -sc.w[c] * (tt * sc.LP[n, c, i] + (1.0 - tt) * sc.LQ[n, c, i])
                    items.append((v, (n * C + c) * Msp + i))
    if not items:
        return out.reshape((N, out.shape[1]) + tuple(sc.sp_shape)) if sc.red == "none" else 0.0
    nsel = n_selected(len(items), float(o["k"]))
    best = sorted(items, key=lambda e: (-e[0], e[1]))[:nsel]
    if sc.red == "none":
        flat = out.reshape(-1)
        for v, idx in best:
            flat[idx] = v
        return out.reshape((N, out.shape[1]) + tuple(sc.sp_shape))
    total = sum(v for v, _ in best)
    return total / nsel if sc.red == "mean" else total


def levels(c):
    """logits on three levels: many equal terms"""
    return np.choose(c.R.integers(0, 3, c.x.shape), [-1.0, 0.5, 2.0])


def empty_targets(c):
    c.t[...] = 0


def cases():
    return [
        Case("sigmoid-2d-default", "C=1 bce terms, k = 10 (defaults)",
             {"activation": SIG}, (2, 1, 8, 8)),
        Case("softmax-labelmap-default", "C=3 ce terms per pixel, label map",
             {"activation": SMX}, (2, 3, 6, 6), target="labels"),
        Case("none-c1", "activation none with C=1: bce terms",
             {"activation": NON, "k": 25.0}, (2, 1, 6, 6)),
        Case("none-c3-onehot", "activation none with C=3: ce terms over probabilities",
             {"activation": NON, "k": 20.0}, (2, 3, 5, 5), xkind="simplex", target="onehot"),
        Case("sigmoid-k100-is-bce", "k = 100: every term, the bce mean",
             {"activation": SIG, "k": 100.0}, (2, 1, 5, 6)),
        Case("softmax-k100-is-ce", "k = 100: every pixel, the ce mean",
             {"activation": SMX, "k": 100.0}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-tiny-k", "k = 0.5 of 72 terms: floor(0.36) = 0, so one term",
             {"activation": SIG, "k": 0.5}, (2, 1, 6, 6)),
        Case("sigmoid-many-ties", "logits on three levels, binary targets: the k-th term inside a run of ties",
             {"activation": SIG, "k": 30.0}, (2, 1, 6, 8), edits=[set_x(levels)]),
        Case("softmax-many-ties", "softmax logits on three levels: ties among pixels",
             {"activation": SMX, "k": 45.0}, (2, 3, 5, 6), target="labels", edits=[set_x(levels)]),
        Case("sigmoid-pixmask", "(N,1,S) mask: K counts the valid terms",
             {"activation": SIG, "k": 20.0}, (2, 1, 6, 7), mask="pix"),
        Case("sigmoid-c2-fullmask", "multi-label C=2 with a per-channel mask",
             {"activation": SIG, "k": 15.0}, (2, 2, 5, 6), mask="full"),
        Case("softmax-3d-pixmask", "3-D softmax with an (N,1,S) mask",
             {"activation": SMX}, (2, 3, 3, 4, 5), target="labels", mask="pix"),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("sigmoid-empty-targets", "empty targets: the hardest negatives",
             {"activation": SIG, "k": 20.0}, (2, 1, 6, 6), edits=[empty_targets]),
        Case("softmax-weights", "class weights multiply the terms before the ranking",
             {"activation": SMX, "weight": [0.2, 1.0, 3.0], "k": 25.0}, (2, 3, 5, 5), target="labels"),
        Case("softmax-nobg", "include_background = false: class 0 left out of the ce sum",
             {"activation": SMX, "include_background": False, "k": 30.0}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-sum", "reduction sum: the sum of the selected terms",
             {"activation": SIG, "reduction": "sum", "k": 20.0}, (2, 1, 5, 6)),
        Case("softmax-none-map", "reduction none: the selected terms in (N,1,S), 0 elsewhere",
             {"activation": SMX, "reduction": "none", "k": 20.0}, (2, 3, 4, 5), target="labels", mask="pix"),
        Case("sigmoid-none-map", "reduction none with C=2: x's shape",
             {"activation": SIG, "reduction": "none", "k": 25.0}, (2, 2, 4, 4)),
        Case("sigmoid-1d", "1-D input",
             {"activation": SIG, "k": 12.5}, (3, 1, 16)),
        Case("softmax-large-logits", "|x| in [30, 80]",
             {"activation": SMX, "k": 30.0}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-c3-weights-soft", "multi-label C=3, class weights, soft targets",
             {"activation": SIG, "weight": [0.5, 1.0, 2.0], "k": 20.0}, (2, 3, 4, 4), target="soft"),
        Case("none-special-probs", "activation none, C=1: p exactly 0, 1 and below eps (clamped logs)",
             {"activation": NON, "k": 50.0}, (2, 1, 5, 6), edits=[special_probs(8)]),
    ]
