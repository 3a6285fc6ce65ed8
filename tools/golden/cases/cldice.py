"""Golden cases of cldice: spec/golden/cldice.json, in this order.

torch_loss builds the soft skeleton of docs/losses.md ("Soft skeleton
S(q)") from shifted copies of the image: each minimum (erosion, over the
cross) and maximum (dilation, over the full 3x3(x3) window) is taken over
the window's elements listed in flat index order, and torch.gather picks
the FIRST extremal one, so that autograd sends the gradient there and
nowhere else -- the contract's tie rule, whatever PyTorch's pooling does
with ties.  scalar() is a loop over elements of the same definition.
monai_like() is MONAI's SoftDiceclDiceLoss as its source computes it
(max_pool of -x for the erosion, a 3x3 max_pool for the dilation, sums over
the batch and over channels 1.., arguments (y_true, y_pred)), written here
from reading it, in float64; case "monai-crosscheck" requires the two to
agree where their definitions meet (C = 2, batch = true,
include_background = false, no mask)."""
import itertools

import numpy as np
import torch
import torch.nn.functional as F

from ..case import (Case, empty_class, empty_sample, expect_entries_small, expect_grad_zero_sample,
                    expect_zero, mask_all, mask_sample, perfect, SIG, SMX)
from ..common import DT, check, expect_close
from ..reference import Act, class_vectors
import peers  # tools/ is on the path of gen_golden.py

DEFAULTS = {"alpha": 0.5, "iterations": 3, "smooth": 1.0, "include_background": False}


# ---------------------------------------------------------------------------
# torch float64 reference
# ---------------------------------------------------------------------------
def _shifted(img, off, fill):
    """img (B, *sp) shifted so that out[x] = img[x + off], fill outside."""
    nd = img.dim() - 1
    pad = []
    for a in reversed(range(nd)):
        pad += [1, 1]
    big = F.pad(img, pad, value=fill)
    sl = [slice(None)]
    for a in range(nd):
        n = img.shape[1 + a]
        sl.append(slice(1 + off[a], 1 + off[a] + n))
    return big[tuple(sl)]


def _pool_first(img, offsets, is_min):
    """min (or max) over the window given by offsets (in flat index order),
    the gradient to the first extremal element."""
    fill = float("inf") if is_min else float("-inf")
    st = torch.stack([_shifted(img, o, fill) for o in offsets], 0)
    ext = st.min(0).values if is_min else st.max(0).values
    K = len(offsets)
    rank = torch.arange(K, 0, -1, dtype=DT).view((K,) + (1,) * img.dim())
    first = K - ((st == ext.unsqueeze(0)).to(DT) * rank).max(0).values
    return torch.gather(st, 0, first.long().unsqueeze(0)).squeeze(0)


def _cross(nd):
    offs = []
    for a in range(nd):
        o = [0] * nd
        o[a] = -1
        offs.append(tuple(o))
    offs.append((0,) * nd)
    for a in reversed(range(nd)):
        o = [0] * nd
        o[a] = 1
        offs.append(tuple(o))
    return sorted(offs)          # flat index order (lexicographic)


def _box(nd):
    return list(itertools.product((-1, 0, 1), repeat=nd))   # lexicographic = flat order


def t_erode(q, v):
    """v: the valid elements (bool); the others are outside the image, +inf
    for the minimum (they never win: every window holds its valid centre);
    the result is set to 0 on them (never read)."""
    e = _pool_first(torch.where(v, q, torch.full_like(q, float("inf"))), _cross(q.dim() - 1), True)
    return torch.where(v, e, torch.zeros_like(e))


def t_dilate(q, v):
    o = _pool_first(torch.where(v, q, torch.full_like(q, float("-inf"))), _box(q.dim() - 1), False)
    return torch.where(v, o, torch.zeros_like(o))


def t_skel(q, K, v):
    """the soft skeleton of q over the valid elements v; 0 on the others"""
    z = torch.zeros_like(q)
    e = t_erode(q, v)
    S = torch.where(v, F.relu(q - t_dilate(e, v)), z)
    for _ in range(K):
        q = e
        e = t_erode(q, v)
        d = torch.where(v, F.relu(q - t_dilate(e, v)), z)
        S = S + F.relu(d - S * d)
    return S


def _terms(p, t, m, Sp, St, snr, sdr, alpha, dims):
    TP = (m * p * t).sum(dims)
    dice = 1.0 - (2.0 * TP + snr) / ((m * p).sum(dims) + (m * t).sum(dims) + sdr)
    tprec = ((m * Sp * t).sum(dims) + snr) / ((m * Sp).sum(dims) + sdr)
    tsens = ((m * St * p).sum(dims) + snr) / ((m * St).sum(dims) + sdr)
    return (1.0 - alpha) * dice + alpha * (1.0 - 2.0 * tprec * tsens / (tprec + tsens))


def torch_loss(x, t, m, o):
    a = Act(x, o["activation"], 1e-7)
    p = m * a.p + (1.0 - m) * a.p.detach()       # masked elements: gradient 0
    N, C = x.shape[:2]
    sp = tuple(x.shape[2:])
    K = int(o["iterations"])
    v = (m > 0).expand(p.shape).reshape((N * C,) + sp)
    Sp = t_skel(p.reshape((N * C,) + sp), K, v).reshape(p.shape)
    St = t_skel(t.reshape((N * C,) + sp), K, v).reshape(t.shape).detach()
    s = float(o["smooth"])
    snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))
    batch = bool(o.get("batch", False))
    dims = tuple(range(2, x.dim()))
    if batch:
        dims = (0,) + dims
        cnt = m.sum(dims).unsqueeze(0)
        L = _terms(p, t, m, Sp, St, snr, sdr, float(o["alpha"]), dims).unsqueeze(0)
    else:
        cnt = m.sum(dims)
        L = _terms(p, t, m, Sp, St, snr, sdr, float(o["alpha"]), dims)
    inc, w = class_vectors(x, o)
    take = (cnt > 0) & (inc.view(1, -1) > 0)
    red = o["reduction"]
    if red == "none":
        out = torch.zeros_like(cnt)
        out[take] = L[take].detach()
        return out
    wsel = w.view(1, -1).expand_as(take)[take]
    total = (wsel * L[take]).sum()
    if red == "sum":
        return total
    den = wsel.sum()
    return total / den if den.item() > 0 else total * 0.0


# ---------------------------------------------------------------------------
# loop-based second implementation (values)
# ---------------------------------------------------------------------------
def _sc_pool(a, shape, cross, is_min, valid):
    """a: flat list over shape; min over the cross or max over the box, of
    the valid elements only (valid: flat list of bools); None at the others."""
    nd = len(shape)
    out = [0.0] * len(a)
    for idx in itertools.product(*[range(n) for n in shape]):
        f = 0
        for v, n in zip(idx, shape):
            f = f * n + v
        if not valid[f]:
            out[f] = None
            continue
        best = None
        for off in itertools.product((-1, 0, 1), repeat=nd):
            if cross and sum(abs(v) for v in off) > 1:
                continue
            nb = [i + d for i, d in zip(idx, off)]
            if any(v < 0 or v >= n for v, n in zip(nb, shape)):
                continue
            g = 0
            for v, n in zip(nb, shape):
                g = g * n + v
            if not valid[g]:
                continue
            val = a[g]
            if best is None or (val < best if is_min else val > best):
                best = val
        out[f] = best
    return out


def _sc_skel(q, shape, K, valid):
    e = _sc_pool(q, shape, True, True, valid)
    o = _sc_pool(e, shape, False, False, valid)
    S = [max(a - b, 0.0) if ok else 0.0 for a, b, ok in zip(q, o, valid)]
    for _ in range(K):
        q = e
        e = _sc_pool(q, shape, True, True, valid)
        o = _sc_pool(e, shape, False, False, valid)
        for i in range(len(q)):
            if not valid[i]:
                continue
            d = max(q[i] - o[i], 0.0)
            S[i] = S[i] + max(d - S[i] * d, 0.0)
    return S


def scalar(sc):
    o = sc.o
    shape = tuple(int(v) for v in sc.sp_shape)
    K = int(o["iterations"])
    al = float(o["alpha"])
    s = float(o["smooth"])
    snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))
    batch = bool(o.get("batch", False))
    R = 1 if batch else sc.N
    keys = ("TP", "SP", "ST", "SPT", "SPS", "STP", "STS", "M")
    acc = [[dict.fromkeys(keys, 0.0) for _ in range(sc.C)] for _ in range(R)]
    for n in range(sc.N):
        for c in range(sc.C):
            P = [float(v) for v in sc.P[n, c]]
            Tt = [float(v) for v in sc.T[n, c]]
            valid = [sc.W[n, c, i] != 0 for i in range(sc.Msp)]
            Sp, St = _sc_skel(P, shape, K, valid), _sc_skel(Tt, shape, K, valid)
            d = acc[0 if batch else n][c]
            for i in range(sc.Msp):
                w = sc.W[n, c, i]
                if w == 0:
                    continue
                d["TP"] += P[i] * Tt[i]
                d["SP"] += P[i]
                d["ST"] += Tt[i]
                d["SPT"] += Sp[i] * Tt[i]
                d["SPS"] += Sp[i]
                d["STP"] += St[i] * P[i]
                d["STS"] += St[i]
                d["M"] += 1.0
    out = np.zeros((R, sc.C))
    tot = wsum = 0.0
    for r in range(R):
        for c in range(sc.C):
            d = acc[r][c]
            if not sc.inc[c] or d["M"] <= 0:
                continue
            dice = 1 - (2 * d["TP"] + snr) / (d["SP"] + d["ST"] + sdr)
            tp = (d["SPT"] + snr) / (d["SPS"] + sdr)
            ts = (d["STP"] + snr) / (d["STS"] + sdr)
            L = (1 - al) * dice + al * (1 - 2 * tp * ts / (tp + ts))
            out[r, c] = L
            tot += sc.w[c] * L
            wsum += sc.w[c]
    if sc.red == "none":
        return out
    if sc.red == "sum":
        return tot
    return tot / wsum if wsum > 0 else 0.0


# ---------------------------------------------------------------------------
# MONAI's SoftDiceclDiceLoss, from reading its source (float64); its soft
# skeleton is tools/peers.py's (the benchmark's peer)
# ---------------------------------------------------------------------------
def monai_like(y_true, y_pred, iters=3, alpha=0.5, smooth=1.0):
    inter = torch.sum((y_true * y_pred)[:, 1:, ...])
    dice = 1.0 - (2.0 * inter + smooth) / (torch.sum(y_true[:, 1:, ...]) + torch.sum(y_pred[:, 1:, ...]) + smooth)
    sp, st = peers.soft_skel(y_pred, iters), peers.soft_skel(y_true, iters)
    tprec = (torch.sum((sp * y_true)[:, 1:, ...]) + smooth) / (torch.sum(sp[:, 1:, ...]) + smooth)
    tsens = (torch.sum((st * y_pred)[:, 1:, ...]) + smooth) / (torch.sum(st[:, 1:, ...]) + smooth)
    cl = 1.0 - 2.0 * (tprec * tsens) / (tprec + tsens)
    return (1.0 - alpha) * dice + alpha * cl


def monai_check(c):
    """edit: computes MONAI's value and gradient on the case's inputs (they
    are checked against ours by expect_monai)."""
    x = torch.tensor(c.x.astype(np.float64), requires_grad=True)
    t = torch.tensor(c.t.astype(np.float64))
    v = monai_like(t, x)
    v.backward()
    MONAI_REF[c.x.shape] = (float(v.item()), x.grad.numpy().copy())


MONAI_REF = {}


def expect_monai(loss, grad, case):
    v, g = MONAI_REF[case.shape]
    expect_close("cldice/%s: MONAI's value" % case.slug, loss, v, rtol=1e-12)
    check(np.max(np.abs(grad - g)) <= 1e-12 * np.max(np.abs(g)), "cldice/%s: MONAI's gradient" % case.slug)


# ---------------------------------------------------------------------------
# inputs with structure: a thick line, blurred
# ---------------------------------------------------------------------------
def thick_line(c):
    N, C = c.x.shape[:2]
    H, W = c.x.shape[2:]
    yy = np.arange(H).reshape(H, 1)
    t = (np.abs(yy - H // 2) <= 1) & np.ones((1, W), dtype=bool)
    c.t[...] = t.astype(np.float32)
    soft = np.exp(-0.5 * ((yy - H / 2.0 + 0.3) / 1.6) ** 2) * np.ones((1, W))
    noise = c.R.uniform(0.0, 0.1, c.x.shape)
    c.x[...] = np.clip(0.9 * soft + noise, 0.0, 1.0).astype(np.float32)


def cut_columns(w0, w1):
    """mask columns w0 .. w1 - 1 (the last axis) of every sample: a band
    that cuts every horizontal structure in two"""
    def f(c):
        c.m[...] = 1.0
        c.m[..., w0:w1] = 0.0
    return f


def cut_cross(c):
    """mask a row and a column crossing each other in sample 0, a random
    70% in the others"""
    H, W = c.m.shape[-2:]
    c.m[0] = 1.0
    c.m[0, ..., H // 2, :] = 0.0
    c.m[0, ..., :, W // 3] = 0.0


def cases():
    return [
        Case("none-2d-default", "C=1, activation none, defaults (alpha 0.5, 3 iterations, smooth 1)",
             {}, (2, 1, 6, 7)),
        Case("sigmoid-2d-default", "C=1 sigmoid",
             {"activation": SIG}, (2, 1, 8, 9)),
        Case("softmax-labelmap", "C=3 softmax, label map, background left out (default)",
             {"activation": SMX}, (2, 3, 6, 6), target="labels"),
        Case("softmax-labelmap-bg", "C=3 softmax, label map, include_background = true",
             {"activation": SMX, "include_background": True}, (2, 3, 5, 6), target="labels"),
        Case("sigmoid-3d", "3-D, C=1 sigmoid",
             {"activation": SIG}, (1, 1, 4, 5, 6)),
        Case("softmax-3d-labels", "3-D softmax, C=2 label map",
             {"activation": SMX}, (2, 2, 3, 4, 5), target="labels"),
        Case("none-iterations-0", "iterations 0: S = relu(q - open(q))",
             {"iterations": 0}, (2, 1, 6, 6)),
        Case("sigmoid-iterations-1", "iterations 1",
             {"activation": SIG, "iterations": 1}, (2, 1, 7, 6)),
        Case("none-iterations-beyond-diameter", "iterations 12 on 4x5 (diameter 7): the extra steps change nothing",
             {"iterations": 12}, (1, 1, 4, 5)),
        Case("sigmoid-alpha-0", "alpha 0: dice alone",
             {"activation": SIG, "alpha": 0.0}, (2, 1, 6, 7)),
        Case("sigmoid-alpha-1", "alpha 1: the skeleton term alone",
             {"activation": SIG, "alpha": 1.0}, (2, 1, 6, 7)),
        Case("none-empty-empty", "sample 1: empty target and prediction (p = 0: ties everywhere) -> L = 0",
             {"reduction": "none"}, (2, 1, 5, 6), edits=[empty_sample(1)],
             expect=expect_entries_small((1, 0), tol=1e-15)),
        Case("sigmoid-empty-class", "sample 0 class 1 absent from target and (about) from prediction",
             {"activation": SIG, "include_background": True}, (2, 2, 5, 5), edits=[empty_class(0, 1)]),
        Case("sigmoid-masked-sample", "(N,1,S) mask, sample 1 fully masked: no part in the mean",
             {"activation": SIG}, (2, 1, 6, 6), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-fullmask", "per-channel mask: masked elements are outside both skeletons",
             {"activation": SIG, "include_background": True}, (2, 2, 6, 5), mask="full"),
        Case("softmax-all-masked", "everything masked: a mean over nothing = 0, gradient 0",
             {"activation": SMX}, (2, 3, 4, 4), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("sigmoid-batch", "batch = true: sums over the batch per class",
             {"activation": SIG, "batch": True}, (3, 1, 6, 6)),
        Case("sigmoid-weight-sum", "class weights, reduction sum",
             {"activation": SIG, "include_background": True, "weight": [0.5, 2.0], "reduction": "sum"},
             (2, 2, 5, 6)),
        Case("none-1d", "1-D: the skeleton along one axis",
             {"include_background": True}, (2, 2, 12)),
        Case("none-perfect-binary", "a perfect binary prediction scores 0 (ties in every window)",
             {"reduction": "none"}, (2, 1, 6, 7), edits=[perfect(0), perfect(1)],
             expect=expect_entries_small((0, 0), (1, 0), tol=1e-15)),
        Case("none-thick-line", "a blurred thick line against its target",
             {}, (1, 1, 9, 11), edits=[thick_line]),
        Case("sigmoid-smooth-0.5", "smooth 0.5 with smooth_dr 2",
             {"activation": SIG, "smooth": 0.5, "smooth_dr": 2.0}, (2, 1, 6, 6)),
        Case("monai-crosscheck", "C=2 one-hot, batch, no background: MONAI's SoftDiceclDiceLoss, same value and gradient",
             {"batch": True}, (2, 2, 7, 8), target="onehot", edits=[monai_check], expect=expect_monai),
        Case("monai-crosscheck-3d", "3-D, C=2 one-hot, batch, no background: MONAI's value and gradient",
             {"batch": True}, (1, 2, 4, 5, 6), target="onehot", edits=[monai_check], expect=expect_monai),
        Case("none-thick-line-cut", "a blurred thick line cut in two by a masked band of columns",
             {"include_background": True}, (1, 1, 9, 11), mask="pix", edits=[thick_line, cut_columns(4, 6)]),
        Case("sigmoid-thick-line-cut-1", "a thick line cut by one masked column, 5 iterations",
             {"activation": SIG, "iterations": 5}, (2, 1, 9, 12), mask="pix",
             edits=[thick_line, cut_columns(7, 8)]),
        Case("softmax-mask-cross", "softmax label map, a masked row and column crossing (sample 0)",
             {"activation": SMX}, (2, 3, 7, 8), target="labels", mask="pix", edits=[cut_cross]),
        Case("sigmoid-3d-fullmask", "3-D, per-channel random mask",
             {"activation": SIG, "include_background": True}, (1, 2, 4, 5, 5), mask="full"),
        Case("none-batch-mask-cut", "batch = true with a masked band",
             {"batch": True, "include_background": True}, (2, 2, 6, 9), mask="fullsame",
             edits=[cut_columns(3, 5)]),
        Case("none-1d-mask", "1-D with a (N,1,S) random mask",
             {"include_background": True, "iterations": 4}, (2, 2, 14), mask="pix"),
        Case("sigmoid-none-batch", "reduction none with batch: shape (1, C)",
             {"activation": SIG, "batch": True, "reduction": "none", "include_background": True},
             (2, 2, 5, 5)),
    ]


