"""What the golden references of the distance losses (boundary, hausdorff_dt)
share: the distance maps two independent ways -- SciPy's
distance_transform_edt for the PyTorch reference, a brute-force search over
all element pairs for the loop one -- the reduction of elementwise terms by
the contract's conventions, and the edits that give the cases targets with
real shapes (blobs) and keep p away from the threshold 0.5."""
import itertools
import math

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from .common import DT, check, rnd32
from .reference import Act, class_vectors


def spacing_of(o, sdim):
    sp = o.get("spacing")
    return [1.0] * sdim if sp is None else [float(v) for v in sp]


# -- the maps, SciPy -----------------------------------------------------------
def other_side_scipy(b, spacing):
    """Per element of the boolean image b: the distance to the nearest element
    of the other value (MONAI's fg_dist + bg_dist); zeros if b is empty or full."""
    if not b.any() or b.all():
        return np.zeros(b.shape)
    return (distance_transform_edt(b, sampling=spacing) * b
            + distance_transform_edt(~b, sampling=spacing) * ~b)


def signed_scipy(b, spacing):
    """Kervadec's one_hot2dist for one class: outside the distance to the
    target, inside -(distance to the outside - 1); zeros if b is empty (and,
    segloss's choice, full)."""
    if not b.any() or b.all():
        return np.zeros(b.shape)
    neg = ~b
    return distance_transform_edt(neg, sampling=spacing) * neg - (distance_transform_edt(b, sampling=spacing) - 1) * b


def maps_torch(fn, q, spacing):
    """fn's map of every (n, c) of the boolean array q (N, C, S...), a float64 tensor."""
    out = np.zeros(q.shape)
    for n in range(q.shape[0]):
        for c in range(q.shape[1]):
            out[n, c] = fn(q[n, c], spacing)
    return torch.tensor(out, dtype=DT)


# -- the maps, brute force -------------------------------------------------------
def other_side_brute(b, spacing):
    """The same as other_side_scipy, by looking at every pair of elements."""
    shape = b.shape
    idx = list(itertools.product(*[range(s) for s in shape]))
    flat = [bool(b[i]) for i in idx]
    if all(flat) or not any(flat):
        return np.zeros(shape)
    out = np.zeros(shape)
    for i, bi in zip(idx, flat):
        best = math.inf
        for k, bk in zip(idx, flat):
            if bk != bi:
                d2 = sum(((a - c) * h) ** 2 for a, c, h in zip(i, k, spacing))
                best = min(best, d2)
        out[i] = math.sqrt(best)
    return out


# -- reductions ---------------------------------------------------------------------
def reduce_torch(ell, x, m, o):
    """ell (N, C, S...) elementwise terms: the contract's mean over the valid
    elements of the included classes (class weights on the terms), sum, or
    the unweighted m·ell with excluded classes 0."""
    inc, w = class_vectors(x, o)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    keep = m * inc.view(shape)
    red = o.get("reduction", "mean")
    if red == "none":
        return ell * keep
    tot = (ell * keep * w.view(shape)).sum()
    if red == "sum":
        return tot
    cnt = keep.sum()
    return tot / cnt if float(cnt) > 0 else tot * 0.0


def reduce_scalar(sc, ell):
    """The same over the Scalar's loops; ell[n][c][s] (flat spatial index)."""
    N, C, M = sc.N, sc.C, sc.Msp
    if sc.red == "none":
        out = np.zeros((N, C, M))
        for n in range(N):
            for c in range(C):
                if sc.inc[c]:
                    for s in range(M):
                        out[n, c, s] = sc.W[n, c, s] * ell[n][c][s]
        return out.reshape((N, C) + tuple(sc.sp_shape))
    tot = cnt = 0.0
    for n in range(N):
        for c in range(C):
            if not sc.inc[c]:
                continue
            for s in range(M):
                if sc.W[n, c, s] != 0:
                    tot += sc.w[c] * sc.W[n, c, s] * ell[n][c][s]
                    cnt += sc.W[n, c, s]
    if sc.red == "sum":
        return tot
    return tot / cnt if cnt > 0 else 0.0


def probs(x, o):
    return Act(x, o.get("activation", "none"), float(o.get("eps", 1e-7)))


# -- edits: targets with shapes, p away from 0.5 -------------------------------------
def _field(R, sp, k=3):
    """A smooth random field over the spatial shape sp: a sum of k bumps."""
    grids = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in sp], indexing="ij")
    f = np.zeros(sp)
    for _ in range(k):
        r2 = 0.0
        for g, s in zip(grids, sp):
            r2 = r2 + ((g - R.uniform(0, s)) / max(s / 3.0, 1.0)) ** 2
        f += R.uniform(0.5, 1.5) * np.exp(-r2)
    return f


def blobs(frac=0.35):
    """Targets made of blobs: per (n, c) the top frac of a smooth field
    (binary targets), or the argmax of C fields (label maps, one-hot)."""
    def f(c):
        sp = c.t.shape[2:]
        for n in range(c.N):
            fields = [_field(c.R, sp) for _ in range(c.C)]
            if c.labelmap:
                c.t[n, 0] = rnd32(np.argmax(np.stack(fields), axis=0))
            elif c.C >= 2 and np.all((c.t[n].sum(axis=0) == 1)):   # one-hot
                lab = np.argmax(np.stack(fields), axis=0)
                for k in range(c.C):
                    c.t[n, k] = rnd32(lab == k)
            else:
                for k in range(c.C):
                    fk = fields[k]
                    c.t[n, k] = rnd32(fk >= np.quantile(fk, 1.0 - frac))
    return f


def away_from_half(c):
    """p at least 1e-3 from 0.5 (the threshold of hausdorff_dt's d_p), so that
    float32 and float64 take the same side."""
    act = c.act
    if act == "none":
        near = np.abs(c.x - 0.5) < 1e-3
        c.x[near] = rnd32(0.5 + np.where(c.x[near] >= 0.5, 0.01, -0.01))
    elif act == "sigmoid":
        near = np.abs(c.x) < 4e-3
        c.x[near] = rnd32(np.where(c.x[near] >= 0, 0.05, -0.05))
    else:
        for _ in range(3):
            z = np.exp(c.x - c.x.max(axis=1, keepdims=True))
            p = z / z.sum(axis=1, keepdims=True)
            near = np.abs(p - 0.5) < 1e-3
            if not near.any():
                break
            c.x[near] = rnd32(c.x[near] + 0.1)
        check(True, "")


def empty_target(n, cl=0):
    def f(c):
        check(not c.labelmap, "empty_target on a label map")
        c.t[n, cl] = 0
    return f


def full_target(n, cl=0):
    def f(c):
        check(not c.labelmap, "full_target on a label map")
        c.t[n, cl] = 1
    return f


def pred_const(n, cl, v):
    """Sample n's prediction of class cl all on one side: x = v."""
    def f(c):
        c.x[n, cl] = v
    return f

def shared_cases(B, what):
    """The golden cases boundary and hausdorff_dt share (masks, weights,
    reductions), their inputs made by the edits B; `what` names the
    elementwise terms of reduction "none"."""
    from .case import Case, expect_zero, expect_grad_zero_sample, mask_all, mask_sample, NON, SIG, SMX
    return [
        Case("sigmoid-masked-sample", "(N,1,S) mask, sample 1 fully masked",
             {"activation": SIG}, (2, 1, 6, 7), mask="pix", edits=B + [mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-fullmask-2ch", "a full per-channel mask, include_background = true",
             {"activation": SIG, "include_background": True}, (2, 2, 5, 6), mask="full", edits=B),
        Case("softmax-sum", "reduction sum",
             {"activation": SMX, "reduction": "sum"}, (2, 2, 6, 6), target="labels", edits=B),
        Case("none-reduction-none", "reduction none: %s in x's shape, excluded channel 0" % what,
             {"activation": NON, "reduction": "none"}, (2, 2, 5, 6), edits=B),
        Case("sigmoid-weights", "class weights",
             {"activation": SIG, "weight": [0.5, 2.0, 1.0]}, (2, 3, 6, 5), edits=B),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 4, 4), target="labels", mask="pix", edits=B + [mask_all],
             expect=expect_zero),
    ]
