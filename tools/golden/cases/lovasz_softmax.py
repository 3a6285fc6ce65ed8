"""Golden cases of lovasz_softmax: spec/golden/lovasz_softmax.json, in this
order; its PyTorch float64 reference (torch_loss), its loop-based second
implementation (scalar) and a float64 version of Berman et al.'s published
lovasz_softmax (berman_softmax, written from reading their description and
code, used by crosscheck where its definition agrees with ours)."""
import numpy as np
import torch

from ..case import (Case, empty_class, expect_entries_zero, expect_grad_zero_sample, expect_zero, mask_all,
                    mask_sample, NON, SMX)
from ..common import check, expect_close, rnd32
from ..reference import Act
from .lovasz_hinge import jaccard_steps

# The defaults of docs/losses.md (the contract).
DEFAULTS = {"classes": "present", "per_image": False}


# ---------------------------------------------------------------------------
# The reference: autograd through a stable sort, per (group, class)
# ---------------------------------------------------------------------------
def class_flat(pv, tv):
    e = torch.abs(tv - pv)
    es, perm = torch.sort(e, descending=True, stable=True)         # ties by index
    return torch.dot(es, jaccard_steps(tv[perm]).detach())


def c0_of(C, o):
    return 1 if (C >= 2 and not o["include_background"]) else 0


def torch_loss(x, t, m, o):
    N, C = x.shape[0], x.shape[1]
    p = Act(x, o["activation"], o["eps"]).p
    w = [float(v) for v in o["weight"]] if "weight" in o else [1.0] * C
    c0 = c0_of(C, o)
    groups = [slice(n, n + 1) for n in range(N)] if o["per_image"] else [slice(0, N)]
    zero = x.sum() * 0.0
    Ls, gvals, gtaken, total_sum = [], [], [], zero
    for sl in groups:
        row, W, S, any_valid = [], 0.0, zero, False
        for c in range(C):
            keep = m[sl, c].reshape(-1) > 0
            tv = t[sl, c].reshape(-1)[keep]
            takes = c >= c0 and tv.numel() > 0 and (o["classes"] == "all" or float(tv.sum()) > 0)
            any_valid |= c >= c0 and tv.numel() > 0
            if not takes:
                row.append(zero)
                continue
            L = class_flat(p[sl, c].reshape(-1)[keep], tv)
            row.append(L)
            W += w[c]
            S = S + w[c] * L
        Ls.append(row)
        total_sum = total_sum + S
        gvals.append(S / W if W > 0 else zero)
        gtaken.append(any_valid)
    if o["reduction"] == "none":
        return torch.stack([torch.stack([v.detach() for v in r]) for r in Ls])
    if o["reduction"] == "sum":
        return total_sum
    n = sum(gtaken)
    return sum(v for v, k in zip(gvals, gtaken) if k) / n if n else zero


# ---------------------------------------------------------------------------
# The second implementation: plain loops, Python's stable sort
# ---------------------------------------------------------------------------
def scalar(sc):
    N, C, Msp, o = sc.N, sc.C, sc.Msp, sc.o
    per = 1 if o["per_image"] else N
    c0 = c0_of(C, o)
    rows, gvals, gtaken, tot_sum = [], [], [], 0.0
    for g0 in range(0, N, per):
        row, W, S, any_valid = [], 0.0, 0.0, False
        for c in range(C):
            items = [(abs(sc.T[n, c, s] - sc.P[n, c, s]), sc.T[n, c, s])
                     for n in range(g0, g0 + per) for s in range(Msp) if sc.W[n, c, s] > 0]
            G = sum(tv for _, tv in items)
            takes = c >= c0 and len(items) > 0 and (o["classes"] == "all" or G > 0)
            any_valid = any_valid or (c >= c0 and len(items) > 0)
            if not takes:
                row.append(0.0)
                continue
            order = sorted(range(len(items)), key=lambda k: -items[k][0])
            ct = cf = jp = L = 0.0
            for k in order:
                e, tv = items[k]
                ct += tv
                cf += 1.0 - tv
                J = 1.0 - (G - ct) / (G + cf)
                L += e * (J - jp)
                jp = J
            row.append(L)
            W += sc.w[c]
            S += sc.w[c] * L
        rows.append(row)
        tot_sum += S
        gvals.append(S / W if W > 0 else 0.0)
        gtaken.append(any_valid)
    if sc.red == "none":
        return np.array(rows)
    if sc.red == "sum":
        return tot_sum
    n = sum(gtaken)
    return sum(v for v, k in zip(gvals, gtaken) if k) / n if n else 0.0


# ---------------------------------------------------------------------------
# Berman et al.'s lovasz_softmax, as published (float64): probabilities
# (P, C) and labels (P) with an ignore label; classes "present" skips a
# class absent from the labels; the mean over the classes kept (0 if none);
# per image, the mean over every image; torch.sort without a tie rule.
# ---------------------------------------------------------------------------
def berman_softmax(probas, labels, valid, classes="present", per_image=False):
    def flat(pr, lab):
        if pr.numel() == 0:
            return pr.sum() * 0.0
        losses = []
        for c in range(pr.shape[1]):
            fg = (lab == c).to(pr.dtype)
            if classes == "present" and fg.sum() == 0:
                continue
            errors = (fg - pr[:, c]).abs()
            es, perm = torch.sort(errors, 0, descending=True)
            fs = fg[perm]
            gts = fs.sum()
            jac = 1.0 - (gts - fs.cumsum(0)) / (gts + (1.0 - fs).cumsum(0))
            if fs.numel() > 1:
                jac[1:] = jac[1:] - jac[:-1].clone()
            losses.append(torch.dot(es, jac))
        return sum(losses) / len(losses) if losses else pr.sum() * 0.0

    def flatten(pr, lab, v):           # (n, C, S...) -> (P, C) of the valid pixels
        C = pr.shape[1]
        pf = pr.movedim(1, -1).reshape(-1, C)
        return pf[v.reshape(-1)], lab.reshape(-1)[v.reshape(-1)]
    if per_image:
        ls = [flat(*flatten(probas[n:n + 1], labels[n:n + 1], valid[n:n + 1])) for n in range(probas.shape[0])]
        return sum(ls) / len(ls)
    return flat(*flatten(probas, labels, valid))


def crosscheck(case, x, t, m, loss, grad):
    """Ours equals Berman's for the mean with label maps (or one-hot
    targets), no class weights, every class included, a pixel mask at most,
    and (per image) a valid pixel in every image; the gradient too when no
    two errors of a class are equal (Berman's sort has no tie rule)."""
    o = dict(DEFAULTS, **case.opts)
    N, C = x.shape[0], x.shape[1]
    if (o.get("reduction", "mean") != "mean" or "weight" in o or o.get("include_background") is False
            or C < 2 or (m is not None and m.shape[1] != 1)):
        return
    if t.shape[1] == 1:
        lab = t[:, 0]
    elif np.all((t == 0) | (t == 1)) and np.all(t.sum(axis=1) == 1):
        lab = t.argmax(axis=1)
    else:
        return
    valid = np.ones(lab.shape, dtype=bool) if m is None else (m[:, 0] > 0)
    if o.get("ignore_index") is not None:  # Berman's `ignore`: those pixels leave
        if t.shape[1] != 1:
            return
        ii = float(o["ignore_index"])
        valid = valid & (lab != ii)
        lab = np.where(lab == ii, 0, lab)
    if (o["per_image"] and not all(valid[n].any() for n in range(N))) or not valid.any():
        return
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    p = Act(xt, o.get("activation", "none"), 1e-7).p
    b = berman_softmax(p, torch.tensor(lab.astype(np.int64)), torch.tensor(valid), o["classes"], o["per_image"])
    expect_close("%s: Berman's lovasz_softmax value" % case.slug, float(b), loss, rtol=1e-12, atol=1e-15)
    if not b.requires_grad:
        return
    pn = p.detach().numpy()
    for c in range(C):
        ev = np.abs((lab == c) - pn[:, c])[valid]
        if len(np.unique(ev)) != len(ev):
            return
    b.backward()
    expect_close("%s: Berman's lovasz_softmax gradient" % case.slug, xt.grad.numpy(), grad, rtol=1e-10, atol=1e-14)


def guard(case, x, t, m):
    """With the softmax, segloss sorts errors of float32 probabilities: no
    two errors of a (group, class) may lie within 1e-6 of each other unless
    exactly equal in float64 (then they are equal in float32 too)."""
    o = dict(DEFAULTS, **case.opts)
    if o.get("activation", "none") != "softmax":
        return
    p = Act(torch.tensor(x.astype(np.float64)), "softmax", 1e-7).p.numpy()
    N, C = x.shape[0], x.shape[1]
    tt = t if t.shape[1] == C else np.stack([(t[:, 0] == c) for c in range(C)], 1).astype(np.float64)
    valid = np.ones(x.shape, dtype=bool) if m is None else np.broadcast_to(m > 0, x.shape)
    per = 1 if o["per_image"] else N
    for g0 in range(0, N, per):
        for c in range(C):
            v = valid[g0:g0 + per, c]
            e = np.sort(np.abs(tt[g0:g0 + per, c] - p[g0:g0 + per, c])[v])
            gaps = np.diff(e)
            check(not np.any((gaps > 0) & (gaps < 1e-6)), "%s: errors within 1e-6 of each other" % case.slug)


# ---------------------------------------------------------------------------
# Edits
# ---------------------------------------------------------------------------
def grid_probs(values):
    def f(c):
        c.x[...] = rnd32(c.R.choice(values, c.x.shape))
    return f


def cases():
    grid = (0.0, 0.125, 0.25, 0.5, 0.75, 0.875, 1.0)
    return [
        Case("softmax-2d-default", "C=3 softmax, label map, classes present, over the batch",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-all", "classes all: an absent class scores its largest error",
             {"activation": SMX, "classes": "all"}, (2, 4, 3, 4), target="labels", edits=[empty_class(0, 2, False),
                                                                                           empty_class(1, 2, False)]),
        Case("softmax-absent-present", "a class absent from the batch is left out with classes present",
             {"activation": SMX}, (2, 4, 3, 4), target="labels", edits=[empty_class(0, 2, False),
                                                                        empty_class(1, 2, False)]),
        Case("softmax-per-image", "per_image true: per image, then the mean over images",
             {"activation": SMX, "per_image": True}, (3, 3, 4, 4), target="labels"),
        Case("softmax-per-image-all", "per_image true, classes all, a class absent from image 1",
             {"activation": SMX, "per_image": True, "classes": "all"}, (2, 3, 4, 4), target="labels",
             edits=[empty_class(0, 1, False)]),
        Case("none-simplex-onehot", "activation none: probabilities on the simplex, one-hot target",
             {}, (2, 3, 4, 5), xkind="simplex", target="onehot"),
        Case("none-multilabel", "activation none, C=2, independent probabilities and 0/1 targets",
             {"activation": NON}, (2, 2, 5, 5)),
        Case("none-c1", "C=1, activation none: one class",
             {}, (2, 1, 5, 6)),
        Case("nobg", "include_background false: class 0 left out",
             {"activation": SMX, "include_background": False}, (2, 3, 4, 5), target="labels"),
        Case("weights", "class weights: the weighted mean over the classes present",
             {"activation": SMX, "weight": [0.5, 2.0, 1.0]}, (2, 3, 4, 5), target="labels"),
        Case("weights-zero-per-image", "a zero class weight, per image",
             {"activation": SMX, "weight": [1.0, 0.0, 3.0], "per_image": True}, (2, 3, 4, 4), target="labels"),
        Case("sum", "reduction sum: Σ w_c L over what takes part",
             {"activation": SMX, "reduction": "sum", "per_image": True}, (2, 3, 4, 4), target="labels"),
        Case("none-batch", "reduction none over the batch: (1, C)",
             {"activation": SMX, "reduction": "none", "classes": "all"}, (2, 3, 4, 4), target="labels"),
        Case("none-per-image", "reduction none per image: (N, C), 0 where a class is absent",
             {"activation": SMX, "reduction": "none", "per_image": True}, (2, 3, 4, 4), target="labels",
             edits=[empty_class(1, 0, False)], expect=expect_entries_zero((1, 0))),
        Case("pixel-mask", "an (N,1,S) mask",
             {"activation": SMX}, (2, 3, 5, 5), target="labels", mask="pix"),
        Case("full-mask-none", "activation none with a per-channel mask",
             {"activation": NON}, (2, 3, 4, 5), target="onehot", xkind="simplex", mask="full"),
        Case("masked-image", "per_image: image 2 fully masked takes no part",
             {"activation": SMX, "per_image": True}, (3, 3, 4, 4), target="labels", mask="pix",
             edits=[mask_sample(1)], expect=expect_grad_zero_sample(1)),
        Case("all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("softmax-3d", "3-D softmax with a label map",
             {"activation": SMX}, (2, 3, 2, 3, 4), target="labels"),
        Case("softmax-3d-per-image-onehot", "3-D, one-hot target, per image",
             {"activation": SMX, "per_image": True}, (2, 4, 2, 3, 3), target="onehot"),
        Case("ties", "activation none, probabilities from 7 values: exact ties broken by index",
             {"activation": NON, "classes": "all"}, (2, 3, 5, 5), target="onehot", edits=[grid_probs(grid)]),
        Case("soft-targets", "activation none, soft targets",
             {"activation": NON}, (2, 2, 4, 5), target="soft"),
    ]
