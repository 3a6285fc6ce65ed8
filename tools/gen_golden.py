#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""gen_golden.py -- independent float64 reference values ("golden files") for segloss.

    python3 tools/gen_golden.py [--out spec/golden]

Every loss of docs/losses.md is written here a second time, independently of
the C kernels, as plain PyTorch tensor formulas in float64: probabilities from
the activation, one-hot targets, masks, per-(n,c) statistics, reductions, and
loss.backward() for d loss / d x.  One JSON file per loss name is written to the
output directory (format: tools/README-golden.md).

The script first runs its self-checks (agreement with PyTorch built-ins, the
invariants of docs/losses.md, gradchecks, hand-derived values at the
conventions' kinks) and a second, loop-based pure-Python implementation of
every loss value that must agree with the tensor implementation on every golden
case.  Any failure aborts with a non-zero exit status before a file is written.

Inputs are generated in float32 from fixed seeds (one per case, derived from its
name), written with shortest round-trip digits of the float64 value of each
float32 (so they parse back to exactly the same float32), and the references
are computed in float64 from those exact values.  Outputs use '%.17g'.
Re-running produces byte-identical files.

Where the formulas leave room, this script makes the choices listed as the
readings R1-R16 in docs/losses.md (section "Readings R1-R16: where the formulas
leave room"); the comments below refer to them by number, and the C code makes
the same choices for the golden tests to pass.  "LOSSES.md" in the comments
below means docs/losses.md.
"""

import argparse
import json
import math
import os
import sys
import zlib


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_env import ensure_torch  # noqa: E402

ensure_torch("gen_golden.py")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
DT = torch.float64
GENERATOR = "tools/gen_golden.py"

LOSS_NAMES = ["bce", "ce", "focal", "dice", "iou", "tversky", "focal_tversky",
              "sensitivity_specificity", "generalized_dice", "bce_dice", "dice_focal"]

# ---------------------------------------------------------------------------
# Options: which names each loss knows, defaults
# ---------------------------------------------------------------------------
SHARED = {"activation", "reduction", "weight", "include_background", "batch",
          "smooth", "smooth_nr", "smooth_dr", "eps"}
KNOWN = {
    "bce": SHARED | {"pos_weight"},
    "ce": set(SHARED),
    "focal": SHARED | {"alpha", "gamma"},
    "dice": SHARED | {"squared", "complement", "soft_label"},
    "iou": SHARED | {"empty", "soft_label"},
    "tversky": SHARED | {"alpha", "beta", "soft_label"},
    "focal_tversky": SHARED | {"alpha", "beta", "gamma", "soft_label"},
    "sensitivity_specificity": SHARED | {"lambda"},
    "generalized_dice": SHARED | {"w_type"},
}
KNOWN["bce_dice"] = KNOWN["bce"] | KNOWN["dice"] | {"bce_weight", "dice_weight"}
KNOWN["dice_focal"] = KNOWN["dice"] | KNOWN["focal"] | {"lambda"}

DEFAULT_SMOOTH = {"dice": 1.0, "iou": 1e-6, "tversky": 1e-5, "focal_tversky": 1e-5,
                  "sensitivity_specificity": 1e-5, "generalized_dice": 1e-5}
EPS_DEFAULT = 1e-7


def opt(o, key, default):
    return o[key] if key in o else default


def smooth_pair(o, default):
    s = float(opt(o, "smooth", default))
    return float(opt(o, "smooth_nr", s)), float(opt(o, "smooth_dr", s))


class GoldenError(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise GoldenError(msg)


# ---------------------------------------------------------------------------
# Autograd pieces with the conventions of LOSSES.md
# ---------------------------------------------------------------------------
class ClampedLog(torch.autograd.Function):
    """log(max(a, eps)); derivative 1/a where a >= eps, 0 where a < eps (R6)."""

    @staticmethod
    def forward(ctx, a, eps):
        ctx.save_for_backward(a)
        ctx.eps = eps
        return torch.log(torch.clamp(a, min=eps))

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        inside = a >= ctx.eps
        safe = torch.where(inside, a, torch.ones_like(a))
        return torch.where(inside, g / safe, torch.zeros_like(a)), None


class FocalPow(torch.autograd.Function):
    """q ** gamma for q >= 0, with derivative 0 where q == 0 (R7)."""

    @staticmethod
    def forward(ctx, q, gamma):
        ctx.save_for_backward(q)
        ctx.gamma = gamma
        return torch.pow(q, gamma)          # 0 ** 0 == 1

    @staticmethod
    def backward(ctx, g):
        (q,) = ctx.saved_tensors
        pos = q > 0
        safe = torch.where(pos, q, torch.ones_like(q))
        d = ctx.gamma * torch.pow(safe, ctx.gamma - 1.0)
        return torch.where(pos, g * d, torch.zeros_like(q)), None


class Act:
    """p, q = 1-p, log p, log(1-p) for one activation."""

    def __init__(self, x, activation, eps):
        if activation == "none":
            self.p = x
            self.q = 1.0 - x
            self.logp = ClampedLog.apply(self.p, eps)
            self.logq = ClampedLog.apply(self.q, eps)
        elif activation == "sigmoid":
            # exp(log sigma) keeps the derivative sigma(x) sigma(-x) accurate
            # for large |x|, where sigma(x) (1 - sigma(x)) would cancel.
            self.logp = F.logsigmoid(x)
            self.logq = F.logsigmoid(-x)
            self.p = torch.exp(self.logp)
            self.q = torch.exp(self.logq)
        elif activation == "softmax":
            check(x.shape[1] >= 2, "softmax needs C >= 2")
            self.logp = F.log_softmax(x, dim=1)
            self.p = torch.exp(self.logp)
            C = x.shape[1]
            others = 1.0 - torch.eye(C, dtype=DT)
            self.q = torch.einsum("nk...,kc->nc...", self.p, others)   # sum_{k != c} p_k
            self.logq = None
        else:
            raise GoldenError("unknown activation %r" % (activation,))


def bcast(v, x):
    """A per-class vector (C,) shaped to broadcast against x (N, C, S...)."""
    return v.view((1, -1) + (1,) * (x.dim() - 2))


def expand_target(x, t):
    if tuple(t.shape) == tuple(x.shape):
        return t
    C = x.shape[1]
    check(C >= 2 and t.shape[1] == 1 and t.shape[0] == x.shape[0]
          and tuple(t.shape[2:]) == tuple(x.shape[2:]), "target shape")
    labels = t[:, 0].long()
    check(bool(torch.all(labels.to(DT) == t[:, 0])), "labels must be integers")
    return F.one_hot(labels, C).movedim(-1, 1).to(DT)


def expand_mask(x, m):
    if m is None:
        return torch.ones_like(x)
    if tuple(m.shape) == tuple(x.shape):
        return m
    return m.expand_as(x).clone()


def class_vectors(x, o):
    C = x.shape[1]
    inc = torch.ones(C, dtype=DT)
    if not opt(o, "include_background", True) and C >= 2:
        inc[0] = 0.0
    if "weight" in o:
        w = torch.tensor([float(v) for v in o["weight"]], dtype=DT)
        check(w.numel() == C, "weight needs C entries")
    else:
        w = torch.ones(C, dtype=DT)
    return inc, w


def pixel_mask(m):
    check(bool(torch.all(m == m[:, :1])), "pixel losses need a mask identical across channels")
    return m[:, :1]


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------
def reduce_elements(ell, valid, w, reduction):
    """bce, sigmoid/none focal: l in x's shape; valid = m * [c included]."""
    if reduction == "none":
        return valid * ell                                   # R1, R2
    total = (valid * w * ell).sum()
    if reduction == "sum":
        return total
    count = valid.sum()
    return total / count if count.item() > 0 else total * 0.0


def reduce_pixels(ell_weighted, ell_plain, mp, reduction):
    """ce, softmax focal: l per pixel (N, 1, S...), mp the (N, 1, S...) mask."""
    if reduction == "none":
        return mp * ell_plain                                # R2
    total = (mp * ell_weighted).sum()
    if reduction == "sum":
        return total
    count = mp.sum()                                         # R3
    return total / count if count.item() > 0 else total * 0.0


def region_stats(p, t, m, batch, soft_label):
    dims = tuple(range(2, p.dim()))

    def S(v):
        s = v.sum(dim=dims)
        return s.sum(dim=0, keepdim=True) if batch else s

    st = {
        "SP": S(m * p), "ST": S(m * t), "M": S(m),
        "SP2": S(m * p * p), "ST2": S(m * t * t),
        "A": S(m * (t - p) ** 2 * t),            # sensitivity_specificity
        "B": S(m * (t - p) ** 2 * (1.0 - t)),
    }
    if soft_label:
        st["TP"] = (st["SP"] + st["ST"] - S(m * (p - t).abs())) / 2.0
    else:
        st["TP"] = S(m * p * t)
    return st


def reduce_regions(L_of, st, inc, w, reduction):
    take = (st["M"] > 0) & (inc.view(1, -1) > 0)
    sel = {k: v[take] for k, v in st.items()}
    L = L_of(sel)
    if reduction == "none":
        out = torch.zeros_like(st["M"])
        out[take] = L.detach()
        return out
    wsel = w.view(1, -1).expand_as(take)[take]
    total = (wsel * L).sum()
    if reduction == "sum":
        return total
    den = wsel.sum()
    return total / den if den.item() > 0 else total * 0.0


# ---------------------------------------------------------------------------
# The losses (torch, float64)
# ---------------------------------------------------------------------------
def t_bce(x, t, m, o):
    act = opt(o, "activation", "none")
    check(act in ("none", "sigmoid"), "bce activation")
    a = Act(x, act, float(opt(o, "eps", EPS_DEFAULT)))
    inc, w = class_vectors(x, o)
    valid = m * bcast(inc, x)
    pw = opt(o, "pos_weight", 1.0)
    if pw == "auto":                                          # R5
        s_t = (valid * t).sum().item()
        m_tot = valid.sum().item()
        pw = (m_tot - s_t) / max(s_t, 1.0)
    pw = float(pw)
    ell = -(pw * t * a.logp + (1.0 - t) * a.logq)
    return reduce_elements(ell, valid, bcast(w, x), opt(o, "reduction", "mean"))


def t_ce(x, t, m, o):
    act = opt(o, "activation", "none")
    check(act in ("none", "softmax") and x.shape[1] >= 2, "ce activation / C")
    a = Act(x, act, float(opt(o, "eps", EPS_DEFAULT)))
    inc, w = class_vectors(x, o)
    term = -(t * a.logp)
    ell_w = (bcast(inc * w, x) * term).sum(dim=1, keepdim=True)
    ell_u = (bcast(inc, x) * term).sum(dim=1, keepdim=True)
    return reduce_pixels(ell_w, ell_u, pixel_mask(m), opt(o, "reduction", "mean"))


def t_focal(x, t, m, o, alpha_default=None):
    act = opt(o, "activation", "none")
    a = Act(x, act, float(opt(o, "eps", EPS_DEFAULT)))
    inc, w = class_vectors(x, o)
    gamma = float(opt(o, "gamma", 2.0))
    red = opt(o, "reduction", "mean")
    C = x.shape[1]
    if act == "softmax":
        alpha = opt(o, "alpha", False if alpha_default is None else alpha_default)
        if alpha is False:
            av = torch.ones(C, dtype=DT)
        else:
            check(isinstance(alpha, list) and len(alpha) == C, "softmax focal alpha is a list of C")
            av = torch.tensor([float(v) for v in alpha], dtype=DT)
        term = -(t * FocalPow.apply(a.q, gamma) * a.logp)
        ell_w = (bcast(inc * w * av, x) * term).sum(dim=1, keepdim=True)
        ell_u = (bcast(inc * av, x) * term).sum(dim=1, keepdim=True)
        return reduce_pixels(ell_w, ell_u, pixel_mask(m), red)
    alpha = opt(o, "alpha", 0.25 if alpha_default is None else alpha_default)
    one_minus_pt = t * a.q + (1.0 - t) * a.p                  # R7
    bce_t = -(t * a.logp + (1.0 - t) * a.logq)
    if alpha is False:
        alpha_t = 1.0
    else:
        check(not isinstance(alpha, (list, bool)), "sigmoid focal alpha is a number or false")
        alpha = float(alpha)
        alpha_t = alpha * t + (1.0 - alpha) * (1.0 - t)
    ell = alpha_t * FocalPow.apply(one_minus_pt, gamma) * bce_t
    return reduce_elements(ell, m * bcast(inc, x), bcast(w, x), red)


def region_loss(x, t, m, o, L_of):
    act = opt(o, "activation", "none")
    a = Act(x, act, float(opt(o, "eps", EPS_DEFAULT)))
    inc, w = class_vectors(x, o)
    st = region_stats(a.p, t, m, bool(opt(o, "batch", False)), bool(opt(o, "soft_label", False)))
    return reduce_regions(L_of, st, inc, w, opt(o, "reduction", "mean"))


def dice_L(o):
    snr, sdr = smooth_pair(o, DEFAULT_SMOOTH["dice"])
    squared = bool(opt(o, "squared", False))
    complement = bool(opt(o, "complement", False))

    def L(s):
        TP, SP, ST = s["TP"], s["SP"], s["ST"]
        if complement:
            TN = s["M"] - SP - ST + TP
            return (1.0 - (TP + snr) / (SP + ST + 2.0 * sdr)
                    - (TN + snr) / (2.0 * s["M"] - SP - ST + 2.0 * sdr))
        den = (s["SP2"] + s["ST2"]) if squared else (SP + ST)
        return 1.0 - (2.0 * TP + snr) / (den + sdr)
    return L


def t_dice(x, t, m, o):
    if opt(o, "complement", False):
        check(x.shape[1] == 1 and not opt(o, "squared", False), "complement needs C = 1, no squared")
    return region_loss(x, t, m, o, dice_L(o))


def t_iou(x, t, m, o):
    snr, sdr = smooth_pair(o, DEFAULT_SMOOTH["iou"])
    empty = opt(o, "empty", "none")
    check(empty in ("none", "complement"), "iou empty")

    def L(s):
        TP, SP, ST, M = s["TP"], s["SP"], s["ST"], s["M"]
        if empty == "complement":
            flip = ST == 0
            TN = M - SP - ST + TP
            TP, SP, ST = (torch.where(flip, TN, TP), torch.where(flip, M - SP, SP),
                          torch.where(flip, M - ST, ST))
        return 1.0 - (TP + snr) / (SP + ST - TP + sdr)
    return region_loss(x, t, m, o, L)


def tversky_L(o, default_smooth):
    snr, sdr = smooth_pair(o, default_smooth)
    al = float(opt(o, "alpha", 0.3))
    be = float(opt(o, "beta", 0.7))

    def L(s):
        TP = s["TP"]
        FP = s["SP"] - TP
        FN = s["ST"] - TP
        return 1.0 - (TP + snr) / (TP + al * FP + be * FN + sdr)
    return L


def t_tversky(x, t, m, o):
    return region_loss(x, t, m, o, tversky_L(o, DEFAULT_SMOOTH["tversky"]))


def t_focal_tversky(x, t, m, o):
    base = tversky_L(o, DEFAULT_SMOOTH["focal_tversky"])
    gamma = float(opt(o, "gamma", 0.75))
    eps = float(opt(o, "eps", EPS_DEFAULT))

    def L(s):
        Lt = base(s)
        clamped = torch.where(Lt < eps, torch.full_like(Lt, eps), Lt)     # R9
        return torch.pow(clamped, gamma)
    return region_loss(x, t, m, o, L)


def t_sensitivity_specificity(x, t, m, o):
    _, sdr = smooth_pair(o, DEFAULT_SMOOTH["sensitivity_specificity"])  # R11
    lam = float(opt(o, "lambda", 0.05))

    def L(s):
        return (lam * s["A"] / (s["ST"] + sdr)
                + (1.0 - lam) * s["B"] / (s["M"] - s["ST"] + sdr))
    return region_loss(x, t, m, o, L)


def gdice_weights(ST, inc, w_type):
    """Constant class weights (R, C) from the target sums (R10)."""
    ST = ST.detach()
    incl = (inc.view(1, -1) > 0).expand_as(ST)
    # LOSSES.md Conventions: when all included classes of a sample are empty,
    # w = 0 (whatever w_type), so L = 1 - s_nr/s_dr with gradient 0.
    any_pos = ((ST > 0) & incl).any(dim=1, keepdim=True)
    if w_type == "uniform":
        return (incl & any_pos).to(DT)
    check(w_type in ("square", "simple"), "w_type")
    pos = (ST > 0) & incl
    safe = torch.where(pos, ST, torch.ones_like(ST))
    raw = 1.0 / (safe * safe) if w_type == "square" else 1.0 / safe
    raw = torch.where(pos, raw, torch.zeros_like(raw))
    largest = raw.max(dim=1, keepdim=True).values        # 0 when no class is finite
    return torch.where(pos, raw, torch.where(incl, largest.expand_as(raw), torch.zeros_like(raw)))


def t_generalized_dice(x, t, m, o):
    check("weight" not in o, "generalized_dice takes no weight")
    act = opt(o, "activation", "none")
    a = Act(x, act, float(opt(o, "eps", EPS_DEFAULT)))
    inc, _ = class_vectors(x, o)
    st = region_stats(a.p, t, m, bool(opt(o, "batch", False)), False)
    snr, sdr = smooth_pair(o, DEFAULT_SMOOTH["generalized_dice"])
    wts = gdice_weights(st["ST"], inc, opt(o, "w_type", "square"))
    num = 2.0 * (wts * st["TP"]).sum(dim=1) + snr
    den = (wts * (st["SP"] + st["ST"])).sum(dim=1) + sdr
    L = 1.0 - num / den                                   # (R,)
    take = (st["M"] * inc.view(1, -1)).sum(dim=1) > 0
    red = opt(o, "reduction", "mean")
    if red == "none":
        out = torch.zeros(L.shape[0], 1, dtype=DT)
        out[take, 0] = L[take].detach()
        return out
    total = L[take].sum()
    if red == "sum":
        return total
    n = int(take.sum().item())
    return total / n if n > 0 else total * 0.0


def t_bce_dice(x, t, m, o):
    check(opt(o, "reduction", "mean") != "none", "combination with reduction none")
    return (float(opt(o, "bce_weight", 1.0)) * t_bce(x, t, m, o)
            + float(opt(o, "dice_weight", 1.0)) * t_dice(x, t, m, o))


def t_dice_focal(x, t, m, o):
    check(opt(o, "reduction", "mean") != "none", "combination with reduction none")
    return (t_dice(x, t, m, o)
            + float(opt(o, "lambda", 1.0)) * t_focal(x, t, m, o, alpha_default=False))


TORCH_LOSS = {
    "bce": t_bce, "ce": t_ce, "focal": t_focal, "dice": t_dice, "iou": t_iou,
    "tversky": t_tversky, "focal_tversky": t_focal_tversky,
    "sensitivity_specificity": t_sensitivity_specificity,
    "generalized_dice": t_generalized_dice, "bce_dice": t_bce_dice, "dice_focal": t_dice_focal,
}


def validate_opts(name, o, x_shape, t_shape, mask_shape):
    unknown = set(o) - KNOWN[name]
    check(not unknown, "%s: unknown option(s) %s" % (name, sorted(unknown)))
    C = x_shape[1]
    act = opt(o, "activation", "none")
    check(act in ("none", "sigmoid", "softmax"), "activation")
    check(not (act == "softmax" and C < 2), "softmax with C = 1")
    check(not (name in ("bce", "bce_dice") and act == "softmax"), "bce with softmax")
    check(not (name == "ce" and act == "sigmoid"), "ce with sigmoid")
    check(opt(o, "reduction", "mean") in ("mean", "sum", "none"), "reduction")
    if mask_shape is not None:
        check(mask_shape[1] in (1, C) and mask_shape[0] == x_shape[0]
              and mask_shape[2:] == x_shape[2:], "mask shape")
    check(t_shape == x_shape or (C >= 2 and t_shape[1] == 1 and t_shape[2:] == x_shape[2:]),
          "target shape")


def torch_eval(name, x_np, t_np, m_np, o):
    """Returns (loss, grad): loss a float or an ndarray ("none"), grad an ndarray or None."""
    validate_opts(name, o, x_np.shape, t_np.shape, None if m_np is None else m_np.shape)
    x = torch.tensor(x_np.astype(np.float64), dtype=DT, requires_grad=True)
    t_raw = torch.tensor(t_np.astype(np.float64), dtype=DT)
    m_raw = None if m_np is None else torch.tensor(m_np.astype(np.float64), dtype=DT)
    t = expand_target(x, t_raw)
    m = expand_mask(x, m_raw)
    loss = TORCH_LOSS[name](x, t, m, o)
    if opt(o, "reduction", "mean") == "none":
        return loss.detach().numpy().copy(), None
    check(loss.dim() == 0, "scalar loss")
    if loss.requires_grad:
        loss.backward()
        grad = x.grad.detach().numpy().copy()
    else:
        grad = np.zeros(x_np.shape)
    return float(loss.item()), grad


# ---------------------------------------------------------------------------
# Second implementation: plain Python loops over elements (loss values only).
# Written straight from the definitions; it shares no code with the above.
# ---------------------------------------------------------------------------
def sc_logsig(v):
    return -math.log1p(math.exp(-v)) if v >= 0 else v - math.log1p(math.exp(v))


class Scalar:
    def __init__(self, name, x, t, mask, o):
        self.name, self.o = name, o
        N, C = x.shape[0], x.shape[1]
        Msp = int(np.prod(x.shape[2:]))
        self.N, self.C, self.Msp, self.sp_shape = N, C, Msp, x.shape[2:]
        X = x.astype(np.float64).reshape(N, C, Msp)
        if t.shape[1] == C:
            T = t.astype(np.float64).reshape(N, C, Msp)
        else:
            T = np.zeros((N, C, Msp))
            lab = t.reshape(N, Msp)
            for n in range(N):
                for s in range(Msp):
                    T[n, int(lab[n, s]), s] = 1.0
        W = np.ones((N, C, Msp))
        if mask is not None:
            mk = mask.astype(np.float64).reshape(N, mask.shape[1], Msp)
            for n in range(N):
                for c in range(C):
                    W[n, c] = mk[n, 0 if mask.shape[1] == 1 else c]
        self.X, self.T, self.W = X, T, W
        self.act = o.get("activation", "none")
        self.eps = float(o.get("eps", EPS_DEFAULT))
        self.inc = [not (c == 0 and C >= 2 and o.get("include_background", True) is False)
                    for c in range(C)]
        self.w = [float(v) for v in o["weight"]] if "weight" in o else [1.0] * C
        self.red = o.get("reduction", "mean")
        self._activate()

    def _activate(self):
        N, C, Msp = self.N, self.C, self.Msp
        P = np.zeros((N, C, Msp)); Q = np.zeros((N, C, Msp))
        LP = np.zeros((N, C, Msp)); LQ = np.zeros((N, C, Msp))
        for n in range(N):
            for s in range(Msp):
                if self.act == "softmax":
                    col = [self.X[n, c, s] for c in range(C)]
                    top = max(col)
                    lse = top + math.log(sum(math.exp(v - top) for v in col))
                    pr = [math.exp(v - lse) for v in col]
                    for c in range(C):
                        P[n, c, s] = pr[c]
                        LP[n, c, s] = col[c] - lse
                        Q[n, c, s] = sum(pr[k] for k in range(C) if k != c)
                        LQ[n, c, s] = float("nan")
                    continue
                for c in range(C):
                    v = self.X[n, c, s]
                    if self.act == "none":
                        P[n, c, s], Q[n, c, s] = v, 1.0 - v
                        LP[n, c, s] = math.log(max(v, self.eps))
                        LQ[n, c, s] = math.log(max(1.0 - v, self.eps))
                    else:
                        LP[n, c, s], LQ[n, c, s] = sc_logsig(v), sc_logsig(-v)
                        P[n, c, s], Q[n, c, s] = math.exp(LP[n, c, s]), math.exp(LQ[n, c, s])
        self.P, self.Q, self.LP, self.LQ = P, Q, LP, LQ

    # -- pixel losses -----------------------------------------------------
    def elementwise(self, term):
        N, C, Msp = self.N, self.C, self.Msp
        if self.red == "none":
            out = np.zeros((N, C, Msp))
            for n in range(N):
                for c in range(C):
                    for s in range(Msp):
                        if self.inc[c]:
                            out[n, c, s] = self.W[n, c, s] * term(n, c, s)
            return out.reshape((N, C) + tuple(self.sp_shape))
        tot = cnt = 0.0
        for n in range(N):
            for c in range(C):
                if not self.inc[c]:
                    continue
                for s in range(Msp):
                    if self.W[n, c, s] != 0:
                        tot += self.W[n, c, s] * self.w[c] * term(n, c, s)
                        cnt += self.W[n, c, s]
        if self.red == "sum":
            return tot
        return tot / cnt if cnt > 0 else 0.0

    def per_pixel(self, term):
        """term(n, c, s) of a softmax-style loss, summed over included c."""
        N, C, Msp = self.N, self.C, self.Msp
        out = np.zeros((N, 1, Msp))
        tot = cnt = 0.0
        for n in range(N):
            for s in range(Msp):
                mv = self.W[n, 0, s]
                plain = sum(term(n, c, s) for c in range(C) if self.inc[c])
                weighted = sum(self.w[c] * term(n, c, s) for c in range(C) if self.inc[c])
                out[n, 0, s] = mv * plain
                tot += mv * weighted
                cnt += mv
        if self.red == "none":
            return out.reshape((N, 1) + tuple(self.sp_shape))
        if self.red == "sum":
            return tot
        return tot / cnt if cnt > 0 else 0.0

    def bce(self):
        pw = self.o.get("pos_weight", 1.0)
        if pw == "auto":
            mt = st = 0.0
            for n in range(self.N):
                for c in range(self.C):
                    if self.inc[c]:
                        for s in range(self.Msp):
                            mt += self.W[n, c, s]
                            st += self.W[n, c, s] * self.T[n, c, s]
            pw = (mt - st) / max(st, 1.0)
        pw = float(pw)

        def term(n, c, s):
            tt = self.T[n, c, s]
            return -(pw * tt * self.LP[n, c, s] + (1.0 - tt) * self.LQ[n, c, s])
        return self.elementwise(term)

    def ce(self):
        return self.per_pixel(lambda n, c, s: -self.T[n, c, s] * self.LP[n, c, s])

    def focal(self, alpha_default=None):
        g = float(self.o.get("gamma", 2.0))

        def fpow(q):
            return 1.0 if g == 0 else (0.0 if q == 0 else q ** g)

        if self.act == "softmax":
            alpha = self.o.get("alpha", False if alpha_default is None else alpha_default)
            av = [1.0] * self.C if alpha is False else [float(v) for v in alpha]
            return self.per_pixel(lambda n, c, s: -av[c] * self.T[n, c, s]
                                  * fpow(self.Q[n, c, s]) * self.LP[n, c, s])
        alpha = self.o.get("alpha", 0.25 if alpha_default is None else alpha_default)

        def term(n, c, s):
            tt, p, q = self.T[n, c, s], self.P[n, c, s], self.Q[n, c, s]
            pt_c = tt * q + (1.0 - tt) * p
            b = -(tt * self.LP[n, c, s] + (1.0 - tt) * self.LQ[n, c, s])
            at = 1.0 if alpha is False else float(alpha) * tt + (1.0 - float(alpha)) * (1.0 - tt)
            return at * fpow(pt_c) * b
        return self.elementwise(term)

    # -- region losses ----------------------------------------------------
    def stats(self, soft=False):
        batch = bool(self.o.get("batch", False))
        R = 1 if batch else self.N
        keys = ("TP", "SP", "ST", "SP2", "ST2", "M", "SAD", "A", "B")
        st = {k: [[0.0] * self.C for _ in range(R)] for k in keys}
        for n in range(self.N):
            r = 0 if batch else n
            for c in range(self.C):
                for s in range(self.Msp):
                    w, p, tt = self.W[n, c, s], self.P[n, c, s], self.T[n, c, s]
                    st["TP"][r][c] += w * p * tt
                    st["SP"][r][c] += w * p
                    st["ST"][r][c] += w * tt
                    st["SP2"][r][c] += w * p * p
                    st["ST2"][r][c] += w * tt * tt
                    st["M"][r][c] += w
                    st["SAD"][r][c] += w * abs(p - tt)
                    st["A"][r][c] += w * (tt - p) ** 2 * tt
                    st["B"][r][c] += w * (tt - p) ** 2 * (1.0 - tt)
        if soft:
            for r in range(R):
                for c in range(self.C):
                    st["TP"][r][c] = (st["SP"][r][c] + st["ST"][r][c] - st["SAD"][r][c]) / 2.0
        return R, st

    def region(self, Lfun):
        R, st = self.stats(bool(self.o.get("soft_label", False)))
        out = np.zeros((R, self.C))
        tot = wsum = 0.0
        for r in range(R):
            for c in range(self.C):
                if not self.inc[c] or st["M"][r][c] <= 0:
                    continue
                L = Lfun({k: v[r][c] for k, v in st.items()})
                out[r, c] = L
                tot += self.w[c] * L
                wsum += self.w[c]
        if self.red == "none":
            return out
        if self.red == "sum":
            return tot
        return tot / wsum if wsum > 0 else 0.0

    def dice(self):
        o = self.o
        s = float(o.get("smooth", 1.0))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))

        def L(d):
            if o.get("complement", False):
                tn = d["M"] - d["SP"] - d["ST"] + d["TP"]
                return (1 - (d["TP"] + snr) / (d["SP"] + d["ST"] + 2 * sdr)
                        - (tn + snr) / (2 * d["M"] - d["SP"] - d["ST"] + 2 * sdr))
            den = d["SP2"] + d["ST2"] if o.get("squared", False) else d["SP"] + d["ST"]
            return 1 - (2 * d["TP"] + snr) / (den + sdr)
        return self.region(L)

    def iou(self):
        o = self.o
        s = float(o.get("smooth", 1e-6))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))

        def L(d):
            tp, sp, stt = d["TP"], d["SP"], d["ST"]
            if o.get("empty", "none") == "complement" and stt == 0:
                tp, sp, stt = d["M"] - sp - stt + tp, d["M"] - sp, d["M"] - stt
            return 1 - (tp + snr) / (sp + stt - tp + sdr)
        return self.region(L)

    def _tv(self, d):
        o = self.o
        s = float(o.get("smooth", 1e-5))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))
        a, b = float(o.get("alpha", 0.3)), float(o.get("beta", 0.7))
        tp = d["TP"]
        return 1 - (tp + snr) / (tp + a * (d["SP"] - tp) + b * (d["ST"] - tp) + sdr)

    def tversky(self):
        return self.region(self._tv)

    def focal_tversky(self):
        g = float(self.o.get("gamma", 0.75))
        eps = float(self.o.get("eps", EPS_DEFAULT))
        return self.region(lambda d: max(self._tv(d), eps) ** g)

    def sensitivity_specificity(self):
        o = self.o
        sdr = float(o.get("smooth_dr", o.get("smooth", 1e-5)))
        lam = float(o.get("lambda", 0.05))
        return self.region(lambda d: lam * d["A"] / (d["ST"] + sdr)
                           + (1 - lam) * d["B"] / (d["M"] - d["ST"] + sdr))

    def generalized_dice(self):
        o = self.o
        s = float(o.get("smooth", 1e-5))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))
        wt = o.get("w_type", "square")
        R, st = self.stats(False)
        vals, taken = [], []
        for r in range(R):
            cls = [c for c in range(self.C) if self.inc[c]]
            w = {}
            for c in cls:
                stc = st["ST"][r][c]
                if wt == "uniform":
                    w[c] = 1.0
                elif stc > 0:
                    w[c] = 1.0 / (stc * stc) if wt == "square" else 1.0 / stc
            finite = [w[c] for c in w]
            for c in cls:
                if c not in w:
                    w[c] = max(finite) if finite else 0.0
            if all(st["ST"][r][c] == 0 for c in cls):   # all empty: w = 0
                w = {c: 0.0 for c in cls}
            num = 2 * sum(w[c] * st["TP"][r][c] for c in cls) + snr
            den = sum(w[c] * (st["SP"][r][c] + st["ST"][r][c]) for c in cls) + sdr
            vals.append(1 - num / den)
            taken.append(sum(st["M"][r][c] for c in cls) > 0)
        if self.red == "none":
            return np.array([[v if k else 0.0] for v, k in zip(vals, taken)])
        tot = sum(v for v, k in zip(vals, taken) if k)
        if self.red == "sum":
            return tot
        n = sum(taken)
        return tot / n if n else 0.0

    def value(self):
        nm = self.name
        if nm == "bce_dice":
            return (float(self.o.get("bce_weight", 1.0)) * self.bce()
                    + float(self.o.get("dice_weight", 1.0)) * self.dice())
        if nm == "dice_focal":
            return self.dice() + float(self.o.get("lambda", 1.0)) * self.focal(alpha_default=False)
        return getattr(self, nm)()


def scalar_eval(name, x, t, m, o):
    return Scalar(name, x, t, m, o).value()


# ---------------------------------------------------------------------------
# Self-checks on random inputs
# ---------------------------------------------------------------------------
def close(a, b, rtol=1e-10, atol=1e-13):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def expect_close(what, a, b, rtol=1e-10, atol=1e-13):
    if not close(a, b, rtol, atol):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        diff = np.max(np.abs(a - b)) if a.shape == b.shape else "shape %s vs %s" % (a.shape, b.shape)
        raise GoldenError("self-check failed: %s (max abs diff %s)" % (what, diff))


def rnd32(a):
    return np.asarray(a, dtype=np.float32)


def value_and_grad(fn, x_np):
    x = torch.tensor(x_np.astype(np.float64), dtype=DT, requires_grad=True)
    v = fn(x)
    v.backward()
    return float(v.item()), x.grad.numpy().copy()


def ours(name, t_np, m_np, o):
    """Builds fn(x) -> loss tensor for the torch implementation, for value_and_grad."""
    def fn(x):
        t = expand_target(x, torch.tensor(t_np.astype(np.float64), dtype=DT))
        m = expand_mask(x, None if m_np is None else torch.tensor(m_np.astype(np.float64), dtype=DT))
        return TORCH_LOSS[name](x, t, m, o)
    return fn


def compare_fns(what, f1, f2, x_np, rtol=1e-10, atol=1e-13):
    v1, g1 = value_and_grad(f1, x_np)
    v2, g2 = value_and_grad(f2, x_np)
    expect_close(what + " [loss]", v1, v2, rtol, atol)
    expect_close(what + " [grad]", g1, g2, rtol, atol)


def onehot_np(lab, C):
    N = lab.shape[0]
    sp = lab.shape[2:]
    out = np.zeros((N, C) + sp, dtype=np.float32)
    for c in range(C):
        out[:, c] = (lab[:, 0] == c)
    return out


def selfcheck_builtins(R):
    n_checks = 0
    # bce sigmoid vs binary_cross_entropy_with_logits(pos_weight, weight)
    for shape in [(3, 2, 4, 5), (2, 1, 3, 3, 2)]:
        x = rnd32(R.standard_normal(shape) * 3)
        for tkind in ("binary", "soft"):
            t = rnd32(R.random(shape) < 0.3) if tkind == "binary" else rnd32(R.random(shape))
            for pw in (1.0, 2.5, 0.4, "auto"):
                for red in ("mean", "sum"):
                    C = shape[1]
                    wl = [float(v) for v in R.uniform(0.2, 2.0, C).astype(np.float32)]
                    o = {"activation": "sigmoid", "pos_weight": pw, "reduction": red, "weight": wl}
                    pwv = pw if pw != "auto" else (t.size - float(t.astype(np.float64).sum())) / max(float(t.astype(np.float64).sum()), 1.0)
                    wt = torch.tensor(wl, dtype=DT).view((1, C) + (1,) * (len(shape) - 2))
                    tt = torch.tensor(t.astype(np.float64))

                    def ref(xx, tt=tt, pwv=pwv, wt=wt, red=red):
                        return F.binary_cross_entropy_with_logits(
                            xx, tt, weight=wt.expand_as(xx), reduction=red,
                            pos_weight=torch.tensor(pwv, dtype=DT))
                    compare_fns("bce sigmoid vs binary_cross_entropy_with_logits %s" % (o,),
                                ours("bce", t, None, o), ref, x)
                    n_checks += 1
    # bce none vs binary_cross_entropy, p in [eps, 1 - eps]
    for shape in [(2, 3, 4, 4), (4, 1, 9)]:
        p = rnd32(R.uniform(1e-6, 1 - 1e-6, shape))
        p[0, 0, 0] = np.float32(2e-7)
        t = rnd32(R.random(shape))
        C = shape[1]
        wl = [float(v) for v in R.uniform(0.2, 2.0, C).astype(np.float32)]
        for red in ("mean", "sum"):
            o = {"reduction": red, "weight": wl}
            wt = torch.tensor(wl, dtype=DT).view((1, C) + (1,) * (len(shape) - 2))
            tt = torch.tensor(t.astype(np.float64))
            compare_fns("bce none vs binary_cross_entropy %s" % red, ours("bce", t, None, o),
                        lambda xx, tt=tt, wt=wt, red=red: F.binary_cross_entropy(
                            xx, tt, weight=wt.expand_as(xx), reduction=red), p)
            n_checks += 1
    # ce softmax vs cross_entropy with probability targets and weights
    for shape in [(3, 4, 3, 5), (2, 3, 2, 3, 3), (4, 2, 7)]:
        N, C = shape[:2]
        x = rnd32(R.standard_normal(shape) * 2.5)
        lab = rnd32(R.integers(0, C, (N, 1) + shape[2:]))
        soft = R.random(shape) + 0.05
        soft = rnd32(soft / soft.sum(axis=1, keepdims=True))
        wl = [float(v) for v in R.uniform(0.1, 3.0, C).astype(np.float32)]
        for tname, t_in, t_prob in (("label map", lab, onehot_np(lab, C)), ("soft", soft, soft)):
            for red in ("mean", "sum"):
                for use_w in (False, True):
                    o = {"activation": "softmax", "reduction": red}
                    if use_w:
                        o["weight"] = wl
                    tp = torch.tensor(t_prob.astype(np.float64))
                    wt = torch.tensor(wl, dtype=DT) if use_w else None
                    compare_fns("ce softmax vs cross_entropy (%s) %s" % (tname, o), ours("ce", t_in, None, o),
                                lambda xx, tp=tp, wt=wt, red=red: F.cross_entropy(xx, tp, weight=wt, reduction=red), x)
                    n_checks += 1
        # ce none: -sum t log p equals cross_entropy(log p) for normalised p (value only)
        pr = R.random(shape) + 0.01
        pr = pr / pr.sum(axis=1, keepdims=True)
        pr = rnd32(pr)
        o = {"weight": wl}
        v1 = torch_eval("ce", pr, soft, None, o)[0]
        lg = torch.log(torch.tensor(pr.astype(np.float64)))
        lg = lg - torch.logsumexp(lg, dim=1, keepdim=True)    # exact renormalisation in log space
        v2 = float(-(torch.tensor(soft.astype(np.float64)) * lg
                     * torch.tensor(wl, dtype=DT).view((1, C) + (1,) * (len(shape) - 2))).sum(1).mean())
        v3 = float(F.cross_entropy(torch.log(torch.tensor(pr.astype(np.float64))),
                                   torch.tensor(soft.astype(np.float64)), weight=torch.tensor(wl, dtype=DT)))
        expect_close("ce none vs cross_entropy(log p) value", v1, v3, rtol=1e-6)
        expect_close("cross_entropy(log p) vs renormalised formula", v3, v2, rtol=1e-12)
        n_checks += 1
    # focal sigmoid vs the published torchvision sigmoid_focal_loss formula
    try:
        from torchvision.ops import sigmoid_focal_loss as tv_focal   # only if installed
    except Exception:
        tv_focal = None

    def tv_formula(xx, tt, alpha, gamma, red):
        p = torch.sigmoid(xx)
        ce_loss = F.binary_cross_entropy_with_logits(xx, tt, reduction="none")
        p_t = p * tt + (1 - p) * (1 - tt)
        loss = ce_loss * ((1 - p_t) ** gamma)
        if alpha >= 0:
            loss = (alpha * tt + (1 - alpha) * (1 - tt)) * loss
        return loss.mean() if red == "mean" else loss.sum()

    for shape in [(2, 3, 4, 5), (3, 1, 11)]:
        x = rnd32(R.standard_normal(shape) * 2)
        t = rnd32(R.random(shape) < 0.35)
        for alpha in (0.25, 0.6, -1):
            for gamma in (0.0, 1.0, 2.0, 3.5):
                for red in ("mean", "sum"):
                    o = {"activation": "sigmoid", "gamma": gamma, "reduction": red,
                         "alpha": (False if alpha < 0 else alpha)}
                    tt = torch.tensor(t.astype(np.float64))
                    compare_fns("focal sigmoid vs torchvision formula %s" % (o,), ours("focal", t, None, o),
                                lambda xx, tt=tt, a=alpha, g=gamma, r=red: tv_formula(xx, tt, a, g, r), x,
                                rtol=1e-9, atol=1e-12)
                    if tv_focal is not None:
                        compare_fns("focal sigmoid vs torchvision %s" % (o,), ours("focal", t, None, o),
                                    lambda xx, tt=tt, a=alpha, g=gamma, r=red: tv_focal(xx, tt, a, g, r), x,
                                    rtol=1e-9, atol=1e-12)
                    n_checks += 1
    return n_checks, tv_focal is not None


def random_case_inputs(R, shape, act, tkind, mkind):
    N, C = shape[:2]
    if act == "none":
        x = rnd32(R.uniform(0.02, 0.98, shape))
    else:
        x = rnd32(R.standard_normal(shape) * 2)
    if tkind == "labels":
        t = rnd32(R.integers(0, C, (N, 1) + shape[2:]))
    elif tkind == "binary":
        t = rnd32(R.random(shape) < 0.4)
    else:
        t = rnd32(R.random(shape))
    m = None
    if mkind == "pix":
        m = rnd32(R.random((N, 1) + shape[2:]) < 0.7)
    return x, t, m


def selfcheck_invariants(R):
    n_checks = 0
    # tversky alpha = beta = 1/2, smooth s  ==  dice with smooth 2 s
    for act, shape in (("sigmoid", (2, 3, 4, 5)), ("softmax", (2, 3, 3, 4)), ("none", (3, 1, 5, 5))):
        for s in (1e-5, 0.5, 1.0):
            for extra in ({}, {"batch": True}, {"weight": [0.5, 2.0, 1.0][:shape[1]], "reduction": "sum"},
                          {"soft_label": True}, {"include_background": False}):
                x, t, m = random_case_inputs(R, shape, act, "soft" if extra.get("soft_label") else "binary", "pix")
                if act == "softmax" and not extra.get("soft_label"):
                    t = onehot_np(rnd32(R.integers(0, shape[1], (shape[0], 1) + shape[2:])), shape[1])
                ot = dict(extra, activation=act, alpha=0.5, beta=0.5, smooth=s)
                od = dict(extra, activation=act, smooth=2 * s)
                compare_fns("tversky(1/2,1/2,s) == dice(2s) %s" % (ot,), ours("tversky", t, m, ot),
                            ours("dice", t, m, od), x)
                n_checks += 1
    # focal gamma = 0, alpha = false == bce (sigmoid/none); softmax focal gamma 0 == ce
    for act, shape in (("sigmoid", (2, 3, 4, 4)), ("none", (2, 2, 3, 5))):
        for red in ("mean", "sum", "none"):
            for extra in ({}, {"weight": [0.3, 1.7, 1.0][:shape[1]]}, {"include_background": False}):
                x, t, m = random_case_inputs(R, shape, act, "soft", "pix")
                of = dict(extra, activation=act, gamma=0.0, alpha=False, reduction=red)
                ob = dict(extra, activation=act, reduction=red)
                if red == "none":
                    expect_close("focal(g=0, a=false) == bce, none", torch_eval("focal", x, t, m, of)[0],
                                 torch_eval("bce", x, t, m, ob)[0])
                else:
                    compare_fns("focal(g=0, a=false) == bce %s" % (of,), ours("focal", t, m, of),
                                ours("bce", t, m, ob), x)
                n_checks += 1
    for red in ("mean", "sum"):
        x, t, m = random_case_inputs(R, (2, 4, 3, 3), "softmax", "labels", "pix")
        of = {"activation": "softmax", "gamma": 0.0, "reduction": red, "weight": [1.0, 0.5, 2.0, 0.0]}
        oc = {"activation": "softmax", "reduction": red, "weight": [1.0, 0.5, 2.0, 0.0]}
        compare_fns("softmax focal(g=0) == ce", ours("focal", t, m, of), ours("ce", t, m, oc), x)
        n_checks += 1
    # soft_label changes nothing for 0/1 targets (p != t everywhere here)
    for name in ("dice", "iou", "tversky", "focal_tversky"):
        for act, shape in (("sigmoid", (2, 2, 4, 5)), ("none", (2, 1, 6, 4)), ("softmax", (2, 3, 4, 3))):
            for extra in ({}, {"batch": True}, {"squared": True} if name == "dice" else {"smooth": 0.1}):
                x, t, m = random_case_inputs(R, shape, act, "binary", "pix")
                if act == "softmax":
                    t = onehot_np(rnd32(R.integers(0, shape[1], (shape[0], 1) + shape[2:])), shape[1])
                o = dict(extra, activation=act)
                compare_fns("%s soft_label on 0/1 targets %s" % (name, o), ours(name, t, m, dict(o, soft_label=True)),
                            ours(name, t, m, o), x, rtol=1e-9, atol=1e-12)
                n_checks += 1
    # all-ones class weights == no weights (every loss, every reduction);
    # a constant weight == no weights for region means
    for name in LOSS_NAMES:
        for act in ("none", "sigmoid", "softmax"):
            if (name in ("bce", "bce_dice") and act == "softmax") or (name == "ce" and act == "sigmoid"):
                continue
            shape = (2, 3, 4, 4)
            x, t, m = random_case_inputs(R, shape, act, "labels", "pix")
            reds = ("mean", "sum") if name in ("bce_dice", "dice_focal") else ("mean", "sum", "none")
            for red in reds:
                base = {"activation": act, "reduction": red}
                if name == "generalized_dice":
                    continue                       # takes no weight
                for wl in ([1.0, 1.0, 1.0],) + (([0.7, 0.7, 0.7],) if (red == "mean" and name in DEFAULT_SMOOTH) else ()):
                    a = torch_eval(name, x, t, m, dict(base, weight=wl))
                    b = torch_eval(name, x, t, m, base)
                    expect_close("%s uniform weights %s == none [loss]" % (name, wl), a[0], b[0])
                    if red != "none":
                        expect_close("%s uniform weights %s == none [grad]" % (name, wl), a[1], b[1])
                    n_checks += 1
    # label-map target == its one-hot target (every loss with C >= 2)
    for name in LOSS_NAMES:
        for act in ("none", "sigmoid", "softmax"):
            if (name in ("bce", "bce_dice") and act == "softmax") or (name == "ce" and act == "sigmoid"):
                continue
            for shape in ((2, 3, 4, 5), (2, 2, 2, 3, 3)):
                x, lab, m = random_case_inputs(R, shape, act, "labels", "pix")
                o = {"activation": act}
                if name == "generalized_dice":
                    o["w_type"] = "simple"
                compare_fns("%s label map == one-hot (%s)" % (name, act), ours(name, lab, m, o),
                            ours(name, onehot_np(lab, shape[1]), m, o), x)
                n_checks += 1
    return n_checks


def selfcheck_gradcheck(R):
    """Finite differences against autograd, on inputs away from every kink."""
    configs = [
        ("bce", {"activation": "none", "pos_weight": 1.7, "weight": [1.0, 0.5]}),
        ("bce", {"activation": "sigmoid", "pos_weight": "auto", "include_background": False}),
        ("ce", {"activation": "none", "weight": [0.2, 1.5]}),
        ("ce", {"activation": "softmax", "reduction": "sum"}),
        ("focal", {"activation": "none", "gamma": 0.5}),
        ("focal", {"activation": "sigmoid", "gamma": 3.5, "alpha": 0.7}),
        ("focal", {"activation": "softmax", "gamma": 0.5, "alpha": [0.3, 0.7]}),
        ("dice", {"activation": "sigmoid", "squared": True}),
        ("dice", {"activation": "none", "soft_label": True}),
        ("dice", {"activation": "softmax", "batch": True}),
        ("iou", {"activation": "sigmoid", "smooth": 0.5}),
        ("tversky", {"activation": "softmax", "alpha": 0.8, "beta": 0.2}),
        ("focal_tversky", {"activation": "sigmoid", "gamma": 0.5}),
        ("focal_tversky", {"activation": "none", "gamma": 2.0, "soft_label": True}),
        ("sensitivity_specificity", {"activation": "sigmoid", "lambda": 0.3}),
        ("generalized_dice", {"activation": "softmax", "w_type": "simple"}),
        ("generalized_dice", {"activation": "none", "w_type": "square", "batch": True}),
        ("bce_dice", {"activation": "sigmoid", "bce_weight": 0.5, "dice_weight": 2.0}),
        ("dice_focal", {"activation": "softmax", "lambda": 0.5, "gamma": 1.5}),
    ]
    for name, o in configs:
        act = o["activation"]
        shape = (2, 2, 3, 4)
        x, t, m = random_case_inputs(R, shape, act, "soft", "pix")
        if act == "softmax" or name == "ce":
            t = onehot_np(rnd32(R.integers(0, 2, (2, 1, 3, 4))), 2)
        if name == "ce" and act == "none":
            x = rnd32(R.uniform(0.05, 0.95, shape))
        fn = ours(name, t, m, o)
        xt = torch.tensor(x.astype(np.float64), dtype=DT, requires_grad=True)
        ok = torch.autograd.gradcheck(fn, (xt,), eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=False)
        check(ok, "gradcheck failed for %s %s" % (name, o))
    return len(configs)


def selfcheck_conventions():
    """Hand-derived values at the kinks fixed by the Conventions section."""
    n = 0
    eps = 1e-7
    # bce, activation none, reduction sum, at p = 0, 1 and below eps
    p = np.array([0.0, 0.0, 1.0, 1.0, 1e-9, 0.5], dtype=np.float32).reshape(1, 1, 6)
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0], dtype=np.float32).reshape(1, 1, 6)
    loss, grad = torch_eval("bce", p, t, None, {"reduction": "sum"})
    p9 = float(np.float32(1e-9))
    want_loss = -math.log(eps) + 0 + 0 - math.log(eps) - math.log(1 - p9) - math.log(0.5)
    want_grad = [0.0, 1.0, -1.0, 0.0, 1.0 / (1.0 - p9), -2.0]
    expect_close("bce clamp convention [loss]", loss, want_loss)
    expect_close("bce clamp convention [grad]", grad.reshape(-1), want_grad)
    n += 1
    # focal none, gamma 0.5, at p = t in {0, 1}: loss 0, gradient 0 (q == 0)
    p = np.array([0.0, 1.0], dtype=np.float32).reshape(1, 1, 2)
    loss, grad = torch_eval("focal", p, p.copy(), None, {"gamma": 0.5, "alpha": False, "reduction": "sum"})
    expect_close("focal q=0 convention [loss]", loss, 0.0)
    check(np.all(grad == 0), "focal q=0 convention [grad]")
    n += 1
    # soft_label dice at p == t: d|p-t|/dp = 0, so dTP/dp = 1/2 there
    p = np.array([0.3, 0.6, 0.1], dtype=np.float32).reshape(1, 1, 3)
    t = np.array([0.3, 0.2, 0.9], dtype=np.float32).reshape(1, 1, 3)
    loss, grad = torch_eval("dice", p, t, None, {"soft_label": True, "reduction": "sum"})
    pd, td = p.astype(np.float64).ravel(), t.astype(np.float64).ravel()
    SP, ST, SAD = pd.sum(), td.sum(), np.abs(pd - td).sum()
    TP = (SP + ST - SAD) / 2
    D = SP + ST + 1.0
    dTP = (1 - np.sign(pd - td)) / 2
    want = -(2 * dTP * D - (2 * TP + 1.0)) / D ** 2
    expect_close("soft_label dice [loss]", loss, 1 - (2 * TP + 1) / D)
    expect_close("soft_label dice [grad]", grad.ravel(), want)
    n += 1
    # focal_tversky perfect prediction: L = 0 -> eps^gamma, gradient 0
    t = np.array([0, 1, 1, 0], dtype=np.float32).reshape(1, 1, 4)
    loss, grad = torch_eval("focal_tversky", t.copy(), t, None, {"gamma": 0.75})
    expect_close("focal_tversky clamp [loss]", loss, eps ** 0.75)
    check(np.all(grad == 0), "focal_tversky clamp [grad]")
    n += 1
    # generalized_dice: a class with ST = 0 takes the largest finite weight
    p = np.array([[0.2, 0.7], [0.5, 0.1], [0.3, 0.4]], dtype=np.float32).reshape(1, 3, 2)
    t = np.array([[1, 1], [0, 1], [0, 0]], dtype=np.float32).reshape(1, 3, 2)
    loss, _ = torch_eval("generalized_dice", p, t, None, {"w_type": "simple", "smooth": 0.0})
    pd, td = p.astype(np.float64)[0], t.astype(np.float64)[0]
    w = [1 / 2.0, 1 / 1.0, 1 / 1.0]        # class 2 empty -> max finite = 1
    num = 2 * sum(w[c] * (pd[c] * td[c]).sum() for c in range(3))
    den = sum(w[c] * (pd[c].sum() + td[c].sum()) for c in range(3))
    expect_close("generalized_dice empty-class weight", loss, 1 - num / den)
    n += 1
    # generalized_dice: all classes empty (square) -> 1 - s_nr/s_dr, gradient 0
    t = np.zeros((1, 3, 2), dtype=np.float32)
    loss, grad = torch_eval("generalized_dice", p, t, None, {"smooth_nr": 1e-5, "smooth_dr": 4e-5})
    expect_close("generalized_dice all empty [loss]", loss, 1 - 1e-5 / 4e-5)
    check(np.all(grad == 0), "generalized_dice all empty [grad]")
    n += 1
    # iou empty = complement on an empty target: 1 - (M - SP + s)/(M + s)
    p = np.array([0.25, 0.0, 0.5, 0.0], dtype=np.float32).reshape(1, 1, 4)
    t = np.zeros_like(p)
    loss, _ = torch_eval("iou", p, t, None, {"empty": "complement", "smooth": 0.5})
    expect_close("iou complement on empty target", loss, 1 - (4 - 0.75 + 0.5) / (4 + 0.5))
    n += 1
    # dice complement: a perfect prediction, empty or full, scores 0
    for tv in (0.0, 1.0):
        t = np.full((1, 1, 5), tv, dtype=np.float32)
        loss, _ = torch_eval("dice", t.copy(), t, None, {"complement": True, "smooth": 0.3})
        expect_close("dice complement perfect (%s)" % tv, loss, 0.0, atol=1e-15)
        n += 1
    return n


# ---------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------
class Ctx:
    """Mutable inputs of one case while it is being built (numpy float32)."""

    def __init__(self, R, x, t, m, act):
        self.R, self.x, self.t, self.m, self.act = R, x, t, m, act
        self.N, self.C = x.shape[0], x.shape[1]

    @property
    def labelmap(self):
        return self.C >= 2 and self.t.shape[1] == 1


class Case:
    def __init__(self, slug, note, opts, shape, target="binary", mask=None, xkind=None,
                 edits=(), expect=None, xscale=2.0, tfrac=0.4, mfrac=0.7):
        self.slug, self.note, self.opts, self.shape = slug, note, opts, tuple(shape)
        self.target, self.mask, self.xkind, self.edits = target, mask, xkind, edits
        self.expect, self.xscale, self.tfrac, self.mfrac = expect, xscale, tfrac, mfrac


def build_inputs(case, R):
    shape = case.shape
    N, C = shape[:2]
    sp = shape[2:]
    act = case.opts.get("activation", "none")
    xkind = case.xkind or {"none": "probs", "sigmoid": "logits", "softmax": "logits"}[act]
    if xkind == "logits":
        x = R.standard_normal(shape) * case.xscale
    elif xkind == "probs":
        x = R.random(shape)
    elif xkind == "simplex":
        z = np.exp(R.standard_normal(shape) * 1.5)
        x = z / z.sum(axis=1, keepdims=True)
    else:
        raise GoldenError("xkind " + xkind)
    tk = case.target
    if tk == "binary":
        t = (R.random(shape) < case.tfrac).astype(np.float64)
    elif tk == "soft":
        t = R.random(shape)
    elif tk == "labels":
        t = R.integers(0, C, (N, 1) + sp).astype(np.float64)
    elif tk == "onehot":
        t = onehot_np(R.integers(0, C, (N, 1) + sp), C)
    elif tk == "softdist":
        z = R.random(shape) + 0.05
        t = z / z.sum(axis=1, keepdims=True)
    else:
        raise GoldenError("target kind " + tk)
    m = None
    if case.mask == "pix":
        m = (R.random((N, 1) + sp) < case.mfrac).astype(np.float64)
    elif case.mask == "full":
        m = (R.random(shape) < case.mfrac).astype(np.float64)
    elif case.mask == "fullsame":
        m = np.broadcast_to((R.random((N, 1) + sp) < case.mfrac), shape).astype(np.float64)
    elif case.mask is not None:
        raise GoldenError("mask kind " + case.mask)
    ctx = Ctx(R, rnd32(x), rnd32(t), None if m is None else rnd32(m), act)
    for e in case.edits:
        e(ctx)
    return ctx.x, ctx.t, ctx.m


# -- edits -------------------------------------------------------------------
def mask_sample(n):
    def f(c):
        c.m[n] = 0
    return f


def mask_all(c):
    c.m[...] = 0


def scale_target(k):
    def f(c):
        c.t[...] = rnd32(c.t * np.float32(k))
    return f


def large_logits(frac=1.0, lo=30.0, hi=80.0):
    def f(c):
        sel = c.R.random(c.x.shape) < frac
        sign = np.where(c.R.random(c.x.shape) < 0.5, -1.0, 1.0)
        big = rnd32(sign * c.R.uniform(lo, hi, c.x.shape))
        c.x[sel] = big[sel]
    return f


SPECIAL_PT = [(0.0, 1.0), (0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (1e-9, 1.0), (5e-8, 0.0),
              (0.99999994, 1.0), (0.99999994, 0.0), (2e-7, 1.0), (3e-8, 0.5), (1.0, 0.25), (0.0, 0.75)]


def special_probs(count=None):
    """activation none: probabilities exactly 0 and 1, below eps, within eps of 1."""
    def f(c):
        fx = c.x.reshape(-1)
        pairs = SPECIAL_PT[:count] if count else SPECIAL_PT
        pos = c.R.choice(fx.size, len(pairs), replace=False)
        for k, (pv, tv) in zip(pos, pairs):
            fx[k] = pv
            if not c.labelmap:
                c.t.reshape(-1)[k] = tv
    return f


def empty_class(n, cl, pred=True):
    """Class cl absent from sample n's target; with pred, also (about) absent from the prediction."""
    def f(c):
        if c.labelmap:
            lab = c.t[n, 0]
            lab[lab == cl] = (cl + 1) % c.C
        else:
            if c.act == "softmax" and c.C >= 2:
                c.t[n, (cl + 1) % c.C] += c.t[n, cl]
            c.t[n, cl] = 0
        if pred:
            if c.act == "none":
                c.x[n, cl] = 0
            else:
                c.x[n, cl] = -40.0
    return f


def empty_sample(n):
    def f(c):
        for cl in range(c.C):
            if c.labelmap:
                raise GoldenError("a label map cannot empty every class")
            c.t[n, cl] = 0
            if c.act == "none":
                c.x[n, cl] = 0
            else:
                c.x[n, cl] = -40.0
    return f


def perfect(n):
    def f(c):
        c.x[n] = c.t[n]
    return f


def set_x(fn):
    def f(c):
        c.x[...] = rnd32(fn(c))
    return f


def ties(frac=0.3):
    """activation none with soft targets: some p exactly equal to t."""
    def f(c):
        sel = c.R.random(c.x.shape) < frac
        c.x[sel] = c.t[sel]
    return f


# -- expectations checked on the computed result -----------------------------
def expect_zero(loss, grad, case):
    check(loss == 0.0, "%s: expected loss 0, got %r" % (case.slug, loss))
    check(grad is None or np.all(grad == 0), "%s: expected gradient 0" % case.slug)


def expect_entries_small(*entries, tol=1e-6):
    def f(loss, grad, case):
        for e in entries:
            check(abs(loss[e]) < tol, "%s: expected ~0 at %s, got %r" % (case.slug, e, loss[e]))
    return f


def expect_entries_zero(*entries):
    def f(loss, grad, case):
        for e in entries:
            check(loss[e] == 0.0, "%s: expected 0 at %s, got %r" % (case.slug, e, loss[e]))
    return f


def expect_entry(entry, v, rtol=1e-12):
    def f(loss, grad, case):
        expect_close("%s expected value at %s" % (case.slug, entry), loss[entry], v, rtol=rtol)
    return f


def expect_grad_zero_sample(n):
    def f(loss, grad, case):
        check(np.all(grad[n] == 0), "%s: expected zero gradient in sample %d" % (case.slug, n))
    return f


def both(*fs):
    def f(loss, grad, case):
        for g in fs:
            g(loss, grad, case)
    return f


# -- the case lists ------------------------------------------------------------
SIG, SMX, NON = "sigmoid", "softmax", "none"


def cases_bce():
    return [
        Case("sigmoid-2d-default", "C=1 binary target, all defaults but the activation",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (default \"none\"), probabilities in (0,1)",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-multilabel-weight-sum", "C=3 multi-label with class weights, reduction sum",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5], "reduction": "sum"}, (2, 3, 4, 5)),
        Case("sigmoid-3d-pixmask", "3-D input with an (N,1,S) mask; mean over the N*C*M' valid elements",
             {"activation": SIG}, (2, 2, 3, 4, 4), mask="pix"),
        Case("sigmoid-1d-posweight", "1-D spatial input (N,C,L), pos_weight 3",
             {"activation": SIG, "pos_weight": 3.0}, (3, 1, 12)),
        Case("sigmoid-posweight-auto-mask", "pos_weight \"auto\" from the valid elements of the batch",
             {"activation": SIG, "pos_weight": "auto"}, (2, 1, 5, 6), mask="pix", tfrac=0.25),
        Case("sigmoid-posweight-auto-small-sum", "pos_weight \"auto\" with soft targets summing below 1: max(sum t, 1) = 1",
             {"activation": SIG, "pos_weight": "auto", "reduction": "sum"}, (2, 1, 4, 4), target="soft",
             edits=[scale_target(0.01)]),
        Case("sigmoid-posweight-auto-nobg", "pos_weight \"auto\" counts channels 1..C-1 only when include_background=false",
             {"activation": SIG, "pos_weight": "auto", "include_background": False}, (2, 3, 3, 4), mask="full", tfrac=0.3),
        Case("none-exact-0-1-below-eps-sum", "probabilities exactly 0 and 1, below eps and within eps of 1 (clamped logs)",
             {"activation": NON, "reduction": "sum"}, (2, 1, 4, 5), edits=[special_probs()]),
        Case("none-eps-1e-3", "eps = 1e-3 with probabilities below 1e-3 and above 1-1e-3",
             {"activation": NON, "eps": 1e-3}, (2, 2, 3, 4),
             edits=[set_x(lambda c: np.where(c.R.random(c.x.shape) < 0.3,
                                             np.where(c.R.random(c.x.shape) < 0.5, c.x * 1e-3 * 0.9, 1 - c.x * 1e-3 * 0.9),
                                             c.x))]),
        Case("sigmoid-none-fullmask", "reduction none: m*l in x's shape, mask of x's shape differing per channel",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 5), mask="full"),
        Case("sigmoid-none-nobg-weight-posweight", "reduction none: class weights not applied, pos_weight applied, channel 0 zero (include_background=false)",
             {"activation": SIG, "reduction": "none", "include_background": False, "weight": [4.0, 2.0, 0.5], "pos_weight": 2.0},
             (2, 3, 3, 4)),
        Case("sigmoid-nobg-zero-weight", "include_background=false, C=3, a zero class weight; the mean divides by the valid count of channels 1..2",
             {"activation": SIG, "include_background": False, "weight": [3.0, 0.0, 1.5]}, (2, 3, 4, 5), mask="pix"),
        Case("sigmoid-labelmap", "C=3 with a label-map target (N,1,S): its one-hot",
             {"activation": SIG}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-soft-targets", "soft targets in [0,1]",
             {"activation": SIG}, (2, 2, 5, 4), target="soft"),
        Case("sigmoid-large-logits", "|x| in [30, 80]: stable log-sigmoid, right and wrong confident predictions",
             {"activation": SIG, "reduction": "sum"}, (2, 1, 4, 6), edits=[large_logits()]),
        Case("sigmoid-masked-sample", "sample 1 fully masked: no part in the mean, gradient 0 there",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-all-masked", "everything masked: a mean over nothing is 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-3d-fullmask-posweight-sum", "3-D, activation none, full-shape mask, pos_weight 0.5, reduction sum",
             {"activation": NON, "pos_weight": 0.5, "reduction": "sum"}, (2, 2, 2, 3, 4), mask="full", target="soft"),
        Case("sigmoid-unused-shared-options", "batch and smooth are shared options that bce accepts and ignores",
             {"activation": SIG, "batch": True, "smooth": 0.5}, (2, 1, 4, 4)),
        Case("none-labelmap-weight-mean", "activation none, C=2 label map, class weights",
             {"activation": NON, "weight": [0.25, 2.0]}, (3, 2, 3, 4), target="labels"),
    ]


def cases_ce():
    return [
        Case("softmax-2d-labelmap-default", "C=3 label map, defaults but the activation",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-onehot", "one-hot target of x's shape",
             {"activation": SMX}, (2, 3, 4, 5), target="onehot"),
        Case("softmax-soft-targets", "probability-distribution targets (soft labels)",
             {"activation": SMX}, (2, 4, 3, 4), target="softdist"),
        Case("none-default-onehot", "activation omitted (\"none\"): probabilities that sum to 1 over C",
             {}, (2, 3, 4, 4), xkind="simplex", target="onehot"),
        Case("none-exact-0-1-below-eps-sum", "activation none with p exactly 0 and 1 and below eps, label map",
             {"activation": NON, "reduction": "sum"}, (2, 3, 3, 4), xkind="simplex", target="labels",
             edits=[special_probs()]),
        Case("softmax-weight-labelmap-mean", "class weights with a label map: the mean divides by the pixel count, not by sum w_y",
             {"activation": SMX, "weight": [0.2, 1.0, 3.0]}, (2, 3, 4, 5), target="labels"),
        Case("softmax-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SMX, "weight": [1.0, 0.0, 2.5, 0.5], "reduction": "sum"}, (2, 4, 3, 4), target="labels"),
        Case("softmax-nobg", "include_background=false, C=4: c=0 dropped from the sum over c (softmax still over all C)",
             {"activation": SMX, "include_background": False}, (2, 4, 3, 4), target="labels"),
        Case("softmax-pixmask", "(N,1,S) mask with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels", mask="pix"),
        Case("softmax-3d-fullmask", "3-D, mask of x's shape identical across channels",
             {"activation": SMX}, (2, 3, 2, 3, 4), target="labels", mask="fullsame"),
        Case("softmax-none-reduction", "reduction none: m*l of shape (N,1,S)",
             {"activation": SMX, "reduction": "none"}, (2, 3, 4, 4), target="labels", mask="pix"),
        Case("softmax-none-nobg-weight", "reduction none ignores class weights; include_background=false drops c=0",
             {"activation": SMX, "reduction": "none", "include_background": False, "weight": [2.0, 3.0, 0.5]},
             (2, 3, 3, 4), target="softdist"),
        Case("softmax-1d", "1-D spatial input (N,C,L)",
             {"activation": SMX}, (3, 3, 10), target="labels"),
        Case("softmax-3d-sum", "3-D input, reduction sum",
             {"activation": SMX, "reduction": "sum"}, (2, 2, 3, 3, 4), target="labels"),
        Case("softmax-large-logits", "|x| in [30, 80]: stable log-softmax",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("softmax-masked-sample", "sample 0 fully masked: no part in the mean",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-eps-1e-4", "activation none, eps = 1e-4, some p below it",
             {"activation": NON, "eps": 1e-4}, (2, 2, 4, 4), xkind="simplex", target="softdist",
             edits=[set_x(lambda c: np.where(c.R.random(c.x.shape) < 0.25, c.x * 1e-4 * 0.5, c.x))]),
        Case("softmax-c2", "C=2 softmax, one-hot target",
             {"activation": SMX}, (3, 2, 3, 4), target="onehot"),
        Case("softmax-unused-shared-options", "smooth / batch are shared options that ce accepts and ignores",
             {"activation": SMX, "smooth": 2.0, "batch": True}, (2, 3, 3, 3), target="labels"),
        Case("none-fullmask-weight-sum", "activation none, channel-identical full mask, weights, reduction sum",
             {"activation": NON, "weight": [1.5, 0.5, 1.0], "reduction": "sum"}, (2, 3, 3, 4), xkind="simplex",
             target="softdist", mask="fullsame"),
    ]


def cases_focal():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (alpha 0.25, gamma 2) with sigmoid",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\"): alpha 0.25, gamma 2",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-gamma0-alpha-false", "gamma 0 and alpha false: equals bce",
             {"activation": SIG, "gamma": 0.0, "alpha": False}, (2, 2, 4, 4)),
        Case("sigmoid-gamma0.5-alpha0.5", "gamma 0.5, alpha 0.5",
             {"activation": SIG, "gamma": 0.5, "alpha": 0.5}, (2, 2, 4, 5)),
        Case("sigmoid-gamma1-alpha0.75-sum", "gamma 1, alpha 0.75, reduction sum",
             {"activation": SIG, "gamma": 1.0, "alpha": 0.75, "reduction": "sum"}, (2, 1, 6, 5)),
        Case("sigmoid-gamma3.5-soft", "gamma 3.5 with soft targets",
             {"activation": SIG, "gamma": 3.5}, (2, 2, 4, 4), target="soft"),
        Case("none-gamma0.5-exact-special", "activation none, gamma 0.5: p exactly 0/1 (1-p_t = 0, derivative taken 0), p below eps",
             {"activation": NON, "gamma": 0.5}, (2, 1, 4, 5), edits=[special_probs()]),
        Case("none-gamma2-special-sum", "activation none, gamma 2, alpha 0.25: exact 0/1, below eps, reduction sum",
             {"activation": NON, "reduction": "sum"}, (2, 2, 3, 4), target="soft", edits=[special_probs()]),
        Case("softmax-labelmap-default", "softmax (alpha false, gamma 2 by default), C=3 label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-alpha-list-gamma1-weight", "softmax with alpha a list of C, gamma 1 and class weights",
             {"activation": SMX, "alpha": [0.25, 0.75, 0.5], "gamma": 1.0, "weight": [1.0, 2.0, 0.5]},
             (2, 3, 4, 4), target="labels"),
        Case("softmax-gamma0.5-onehot-pixmask", "softmax gamma 0.5, one-hot target, (N,1,S) mask",
             {"activation": SMX, "gamma": 0.5}, (2, 3, 4, 5), target="onehot", mask="pix"),
        Case("softmax-3d-nobg", "3-D softmax, C=4, include_background=false",
             {"activation": SMX, "include_background": False}, (2, 4, 2, 3, 3), target="labels"),
        Case("softmax-none-reduction", "softmax, reduction none: (N,1,S), alpha applied, class weights not",
             {"activation": SMX, "reduction": "none", "alpha": [0.5, 0.2, 0.9], "weight": [3.0, 1.0, 1.0]},
             (2, 3, 3, 4), target="softdist", mask="fullsame"),
        Case("sigmoid-none-reduction-fullmask", "sigmoid, reduction none: m*l in x's shape, alpha applied, weights not",
             {"activation": SIG, "reduction": "none", "weight": [2.0, 0.5]}, (2, 2, 3, 4), mask="full"),
        Case("sigmoid-nobg-zero-weight", "sigmoid, include_background=false, C=3, a zero weight",
             {"activation": SIG, "include_background": False, "weight": [1.0, 0.0, 2.0], "gamma": 3.5},
             (2, 3, 4, 4), mask="pix"),
        Case("sigmoid-large-logits-gamma0.5", "|x| in [30,80] with gamma 0.5: tiny 1-p_t computed stably",
             {"activation": SIG, "gamma": 0.5, "reduction": "sum"}, (2, 1, 4, 6), edits=[large_logits()]),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX, "gamma": 2.0}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-3d-labelmap", "3-D sigmoid with a C=3 label map (one-hot)",
             {"activation": SIG}, (2, 3, 2, 3, 4), target="labels"),
        Case("sigmoid-1d-masked-sample", "1-D, sample 2 fully masked",
             {"activation": SIG, "alpha": 0.4}, (3, 1, 12), mask="pix", edits=[mask_sample(2)],
             expect=expect_grad_zero_sample(2)),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 2, 3, 3), mask="full", edits=[mask_all], expect=expect_zero),
        Case("sigmoid-alpha0", "alpha 0 (a number, not false): positives weigh 0",
             {"activation": SIG, "alpha": 0.0}, (2, 1, 4, 5)),
        Case("softmax-gamma3.5-soft-sum", "softmax gamma 3.5, soft targets, reduction sum",
             {"activation": SMX, "gamma": 3.5, "reduction": "sum"}, (2, 3, 4, 4), target="softdist"),
    ]


def cases_dice():
    return [
        Case("sigmoid-2d-default", "C=1 binary, defaults (smooth 1)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-onehot-nobg", "one-hot target, include_background=false",
             {"activation": SMX, "include_background": False}, (2, 3, 4, 5), target="onehot"),
        Case("sigmoid-weight-mean", "class weights: mean = sum w L / sum w over what takes part",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5]}, (2, 3, 4, 5)),
        Case("softmax-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SMX, "weight": [0.0, 1.5, 1.0], "reduction": "sum"}, (2, 3, 4, 4), target="labels"),
        Case("softmax-3d-batch", "3-D with batch=true: one statistic per class",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("sigmoid-squared", "squared=true: denominator SP2 + ST2 + s (V-Net)",
             {"activation": SIG, "squared": True}, (2, 2, 4, 5), target="soft"),
        Case("none-complement-empty-full", "complement=true (C=1): sample 0 random, sample 1 perfect and empty, sample 2 perfect and full",
             {"activation": NON, "complement": True, "reduction": "none"}, (3, 1, 4, 5),
             edits=[perfect(1), empty_sample(1), set_x(lambda c: np.concatenate([c.x[:2], np.ones_like(c.x[2:])])),
                    lambda c: c.t.__setitem__(slice(2, 3), 1.0)],
             expect=expect_entries_small((1, 0), (2, 0), tol=1e-15)),
        Case("sigmoid-complement-batch-mask", "complement=true with batch=true and a mask, smooth 0.5",
             {"activation": SIG, "complement": True, "batch": True, "smooth": 0.5}, (2, 1, 4, 5), mask="pix"),
        Case("sigmoid-smooth-nr0-dr1e-5", "smooth_nr = 0, smooth_dr = 1e-5",
             {"activation": SIG, "smooth_nr": 0.0, "smooth_dr": 1e-5}, (2, 2, 4, 4), tfrac=0.5),
        Case("none-smooth-and-smooth-dr", "smooth 0.5 with smooth_dr 2: the specific option wins (s_nr 0.5, s_dr 2)",
             {"activation": NON, "smooth": 0.5, "smooth_dr": 2.0}, (2, 2, 3, 4)),
        Case("none-soft-label-ties", "soft_label=true, soft targets, some p exactly equal to t (d|p-t| = 0 there)",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties()]),
        Case("sigmoid-soft-label-batch", "soft_label=true with soft targets, sigmoid, batch=true",
             {"activation": SIG, "soft_label": True, "batch": True}, (2, 1, 5, 5), target="soft"),
        Case("none-empty-empty", "sample 1: empty target and empty prediction -> L = 0 there, not NaN",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(1)],
             expect=expect_entries_small((1, 0), (1, 1), tol=1e-15)),
        Case("sigmoid-empty-empty-mean", "sample 0 class 1 empty in target and (nearly) in prediction, mean",
             {"activation": SIG}, (2, 2, 4, 4), edits=[empty_class(0, 1)]),
        Case("sigmoid-masked-sample", "(N,1,S) mask, sample 1 fully masked: no part in the mean",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("softmax-all-masked", "everything masked: mean over nothing = 0, gradient 0",
             {"activation": SMX}, (2, 3, 3, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("softmax-none-batch", "reduction none with batch=true: shape (1,C)",
             {"activation": SMX, "reduction": "none", "batch": True}, (2, 3, 3, 4), target="labels"),
        Case("softmax-1d-fullmask", "1-D softmax, mask of x's shape identical across channels",
             {"activation": SMX}, (3, 3, 10), target="labels", mask="fullsame"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("weights-zero-where-taking-part", "include_background=false and weights {5,0,0}: a mean over nothing = 0",
             {"activation": SMX, "include_background": False, "weight": [5.0, 0.0, 0.0]}, (2, 3, 3, 3),
             target="labels", expect=expect_zero),
        Case("none-labelmap-nobg-fullmask", "activation none, C=3 label map, include_background=false, per-channel full mask, reduction none",
             {"activation": NON, "include_background": False, "reduction": "none"}, (2, 3, 3, 4),
             target="labels", mask="full", edits=[lambda c: c.m.__setitem__((1, 2), 0.0)],
             expect=expect_entries_zero((0, 0), (1, 0), (1, 2))),
    ]


def cases_iou():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (smooth 1e-6)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("none-empty-complement", "empty=\"complement\": sample 1 has an empty target and is scored on 1-p, 1-t",
             {"activation": NON, "empty": "complement", "reduction": "none"}, (2, 1, 4, 5),
             edits=[lambda c: c.t.__setitem__(1, 0.0)]),
        Case("none-empty-complement-perfect", "empty=\"complement\": an empty target with an empty prediction scores exactly 0",
             {"activation": NON, "empty": "complement"}, (2, 1, 4, 4), edits=[empty_sample(0)]),
        Case("softmax-complement-batch", "empty=\"complement\" with batch=true: class 2 absent from the whole batch",
             {"activation": SMX, "empty": "complement", "batch": True, "smooth": 1e-3}, (2, 3, 3, 4),
             target="labels", edits=[empty_class(0, 2, pred=False), empty_class(1, 2, pred=False)]),
        Case("sigmoid-complement-mask", "empty=\"complement\", sigmoid, (N,1,S) mask, C=2 with one empty (n,c)",
             {"activation": SIG, "empty": "complement"}, (2, 2, 4, 4), mask="pix",
             edits=[empty_class(1, 1, pred=False)]),
        Case("sigmoid-smooth1", "smooth 1",
             {"activation": SIG, "smooth": 1.0}, (2, 2, 4, 4)),
        Case("softmax-weight-nobg", "class weights with include_background=false",
             {"activation": SMX, "weight": [9.0, 1.0, 3.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("softmax-3d-batch", "3-D softmax, batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 3), target="labels"),
        Case("none-soft-label", "soft_label=true with soft targets and ties p == t",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties(0.2)]),
        Case("none-empty-empty", "empty target and empty prediction with empty=\"none\": L ~ 0, not NaN",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(0)],
             expect=expect_entries_small((0, 0), (0, 1), tol=1e-15)),
        Case("sigmoid-none-reduction", "reduction none, C=3, full mask",
             {"activation": SIG, "reduction": "none"}, (2, 3, 3, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [0.0, 2.0], "reduction": "sum"}, (2, 2, 4, 5)),
        Case("softmax-3d-fullmask", "3-D softmax with a channel-identical full mask",
             {"activation": SMX}, (2, 2, 2, 3, 4), target="onehot", mask="fullsame"),
        Case("sigmoid-1d", "1-D spatial input (N,C,L)",
             {"activation": SIG}, (3, 2, 10)),
        Case("sigmoid-masked-sample", "sample 0 fully masked: no part in the mean",
             {"activation": SIG}, (2, 1, 4, 5), mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-smooth-nr-dr", "smooth_nr 0.5, smooth_dr 1",
             {"activation": SIG, "smooth_nr": 0.5, "smooth_dr": 1.0}, (2, 2, 3, 4)),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
    ]


def cases_tversky():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (alpha 0.3, beta 0.7, smooth 1e-5)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-half-half", "alpha = beta = 0.5 (= dice with twice the smoothing)",
             {"activation": SIG, "alpha": 0.5, "beta": 0.5, "smooth": 0.5}, (2, 2, 4, 4)),
        Case("sigmoid-alpha0.7-beta0.3", "alpha 0.7, beta 0.3",
             {"activation": SIG, "alpha": 0.7, "beta": 0.3}, (2, 2, 4, 4)),
        Case("none-alpha1-beta0", "alpha 1, beta 0 (the ends of the range)",
             {"activation": NON, "alpha": 1.0, "beta": 0.0, "smooth": 1.0}, (2, 2, 3, 4)),
        Case("sigmoid-smooth1", "smooth 1",
             {"activation": SIG, "smooth": 1.0}, (2, 1, 4, 6)),
        Case("none-soft-label-ties", "soft_label=true with soft targets and ties p == t",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties()]),
        Case("softmax-3d-batch", "3-D softmax with batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("softmax-weight-nobg", "class weights and include_background=false",
             {"activation": SMX, "weight": [1.0, 0.5, 2.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-none-reduction-mask", "reduction none with a full per-channel mask",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [2.0, 0.0, 1.0], "reduction": "sum"}, (2, 3, 3, 4)),
        Case("none-empty-empty", "empty target and empty prediction: L = 0 there, not NaN",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(1)],
             expect=expect_entries_small((1, 0), (1, 1), tol=1e-15)),
        Case("sigmoid-pixmask-masked-sample", "(N,1,S) mask with sample 1 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("softmax-1d", "1-D softmax",
             {"activation": SMX, "alpha": 0.4, "beta": 0.6}, (3, 3, 10), target="labels"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("softmax-onehot-fullmask", "one-hot target, channel-identical full mask",
             {"activation": SMX}, (2, 2, 4, 4), target="onehot", mask="fullsame"),
        Case("sigmoid-smooth-nr-dr", "smooth_nr 1e-3, smooth_dr 1",
             {"activation": SIG, "smooth_nr": 1e-3, "smooth_dr": 1.0}, (2, 2, 3, 4)),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-3d-soft", "3-D activation none with soft targets",
             {"activation": NON, "alpha": 0.2, "beta": 0.8}, (2, 1, 3, 3, 4), target="soft"),
    ]


def cases_focal_tversky():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (gamma 0.75, eps 1e-7, alpha 0.3, beta 0.7)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-gamma1", "gamma 1 (= tversky)",
             {"activation": SIG, "gamma": 1.0}, (2, 2, 4, 4)),
        Case("sigmoid-gamma2", "gamma 2",
             {"activation": SIG, "gamma": 2.0}, (2, 2, 4, 4)),
        Case("none-gamma0.5", "gamma 0.5",
             {"activation": NON, "gamma": 0.5}, (2, 2, 3, 4)),
        Case("sigmoid-gamma0", "gamma 0: every (n,c) that takes part scores 1, gradient 0",
             {"activation": SIG, "gamma": 0.0}, (2, 2, 3, 3)),
        Case("none-perfect-eps-1e-3", "eps 1e-3: sample 1 predicted perfectly (L = 0 -> eps^gamma, gradient 0 there)",
             {"activation": NON, "eps": 1e-3, "reduction": "none"}, (2, 1, 4, 5), edits=[perfect(1)],
             expect=expect_entry((1, 0), 1e-3 ** 0.75)),
        Case("none-empty-empty", "empty target and prediction in sample 0: L_tversky = 0 -> eps^gamma",
             {"activation": NON}, (2, 2, 3, 4), edits=[empty_sample(0)], expect=expect_grad_zero_sample(0)),
        Case("sigmoid-alpha0.7-beta0.3", "alpha 0.7, beta 0.3, gamma 1.5",
             {"activation": SIG, "alpha": 0.7, "beta": 0.3, "gamma": 1.5}, (2, 2, 4, 4)),
        Case("none-soft-label", "soft_label=true with soft targets and ties",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties(0.2)]),
        Case("softmax-3d-batch", "3-D softmax with batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("softmax-weight-nobg", "class weights and include_background=false",
             {"activation": SMX, "weight": [1.0, 0.5, 2.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-none-reduction", "reduction none with a full per-channel mask",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [0.0, 1.0, 3.0], "reduction": "sum"}, (2, 3, 3, 4)),
        Case("sigmoid-masked-sample", "sample 0 fully masked",
             {"activation": SIG}, (2, 1, 4, 5), mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-1d", "1-D softmax with a smooth of 1",
             {"activation": SMX, "smooth": 1.0}, (3, 3, 10), target="labels"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG, "gamma": 1.25}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-3d-smooth-nr-dr", "3-D activation none, smooth_nr 1e-4, smooth_dr 1e-2",
             {"activation": NON, "smooth_nr": 1e-4, "smooth_dr": 1e-2}, (2, 1, 3, 3, 4)),
    ]


def cases_sensitivity_specificity():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (lambda 0.05, smooth 1e-5)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-lambda0.5", "lambda 0.5",
             {"activation": SIG, "lambda": 0.5}, (2, 2, 4, 4)),
        Case("none-lambda0", "lambda 0: only the specificity term",
             {"activation": NON, "lambda": 0.0}, (2, 2, 3, 4)),
        Case("none-lambda1", "lambda 1: only the sensitivity term",
             {"activation": NON, "lambda": 1.0}, (2, 2, 3, 4)),
        Case("sigmoid-smooth1", "smooth 1 in both denominators",
             {"activation": SIG, "smooth": 1.0}, (2, 2, 4, 4)),
        Case("sigmoid-smooth-dr", "smooth_dr 0.1 (and smooth_nr 5, accepted and unused)",
             {"activation": SIG, "smooth_dr": 0.1, "smooth_nr": 5.0}, (2, 2, 4, 4)),
        Case("softmax-3d-batch", "3-D softmax with batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("softmax-weight-nobg", "class weights and include_background=false",
             {"activation": SMX, "weight": [1.0, 0.5, 2.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-none-reduction", "reduction none with a full per-channel mask",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [1.0, 0.0, 3.0], "reduction": "sum"}, (2, 3, 3, 4)),
        Case("none-empty-target", "sample 1 with an empty target (first term 0 / s)",
             {"activation": NON, "reduction": "none"}, (2, 1, 4, 5),
             edits=[lambda c: c.t.__setitem__(1, 0.0)]),
        Case("none-empty-empty", "empty target and prediction: L = 0",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(1)],
             expect=expect_entries_small((1, 0), (1, 1), tol=1e-15)),
        Case("sigmoid-masked-sample", "(N,1,S) mask, sample 1 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("softmax-1d", "1-D softmax",
             {"activation": SMX, "lambda": 0.3}, (3, 3, 10), target="labels"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("sigmoid-soft-targets", "soft targets",
             {"activation": SIG, "lambda": 0.2}, (2, 2, 4, 4), target="soft"),
        Case("softmax-fullmask-onehot", "softmax, one-hot target, channel-identical full mask",
             {"activation": SMX}, (2, 2, 4, 4), target="onehot", mask="fullsame"),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
    ]


def cases_generalized_dice():
    return [
        Case("softmax-labelmap-default", "C=3 softmax, label map, defaults (w_type square, smooth 1e-5)",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("none-default", "activation omitted (\"none\"), C=2",
             {}, (2, 2, 4, 5)),
        Case("sigmoid-c1", "sigmoid with C=1",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("softmax-simple", "w_type simple",
             {"activation": SMX, "w_type": "simple"}, (2, 3, 4, 4), target="labels"),
        Case("softmax-uniform", "w_type uniform",
             {"activation": SMX, "w_type": "uniform"}, (2, 3, 4, 4), target="labels"),
        Case("softmax-empty-class", "class 2 absent from sample 0's target: it takes the largest finite w of the sample",
             {"activation": SMX, "reduction": "none"}, (2, 3, 4, 4), target="labels",
             edits=[empty_class(0, 2, pred=False)]),
        Case("sigmoid-simple-empty-class", "w_type simple, class 0 absent from sample 1 (prediction not empty)",
             {"activation": SIG, "w_type": "simple"}, (2, 2, 4, 4), edits=[empty_class(1, 0, pred=False)]),
        Case("none-all-empty-square", "sample 1: every class empty -> w = 0, L = 1 - s_nr/s_dr, gradient 0 (smooth_dr = 2 smooth_nr)",
             {"activation": NON, "smooth_nr": 1e-5, "smooth_dr": 2e-5, "reduction": "none"}, (2, 2, 3, 4),
             edits=[lambda c: c.t.__setitem__(1, 0.0)], expect=expect_entry((1, 0), 1.0 - 1e-5 / 2e-5)),
        Case("sigmoid-all-empty-mean", "sample 0 all classes empty (square): constant 0 with default smooth, gradient 0 there",
             {"activation": SIG}, (2, 2, 3, 4), edits=[lambda c: c.t.__setitem__(0, 0.0)],
             expect=expect_grad_zero_sample(0)),
        Case("none-empty-empty", "empty target and empty prediction: L = 0",
             {"activation": NON, "reduction": "none", "w_type": "simple"}, (2, 2, 3, 4), edits=[empty_sample(0)],
             expect=expect_entries_small((0, 0), tol=1e-15)),
        Case("softmax-batch", "batch=true: one value for the batch, \"none\" shape (1,1)",
             {"activation": SMX, "batch": True, "reduction": "none"}, (2, 3, 3, 4), target="labels"),
        Case("softmax-batch-empty-in-one-sample", "batch=true with class 2 empty in sample 0 only (not empty over the batch)",
             {"activation": SMX, "batch": True}, (2, 3, 3, 4), target="labels", edits=[empty_class(0, 2, pred=False)]),
        Case("softmax-nobg", "include_background=false, C=4",
             {"activation": SMX, "include_background": False}, (2, 4, 3, 4), target="labels"),
        Case("softmax-3d-mask", "3-D softmax with an (N,1,S) mask",
             {"activation": SMX}, (2, 3, 2, 3, 4), target="labels", mask="pix"),
        Case("sigmoid-soft-sum", "soft targets, reduction sum",
             {"activation": SIG, "reduction": "sum"}, (2, 2, 4, 4), target="soft"),
        Case("softmax-1d-simple", "1-D softmax, w_type simple",
             {"activation": SMX, "w_type": "simple"}, (3, 3, 10), target="labels"),
        Case("sigmoid-masked-sample", "sample 1 fully masked: no part in the mean",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-fullmask-perchannel", "sigmoid with a per-channel full mask",
             {"activation": SIG, "w_type": "simple"}, (2, 2, 4, 4), mask="full"),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-smooth1-uniform", "smooth 1, w_type uniform",
             {"activation": SIG, "smooth": 1.0, "w_type": "uniform"}, (2, 2, 3, 4)),
        Case("uniform-all-empty", "w_type uniform, sample 1 every class empty -> w = 0, L = 1 - s_nr/s_dr, gradient 0",
             {"activation": SIG, "w_type": "uniform", "smooth_nr": 1e-5, "smooth_dr": 4e-5, "reduction": "sum"},
             (2, 2, 3, 4), edits=[lambda c: c.t.__setitem__(1, 0.0)], expect=expect_grad_zero_sample(1)),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
    ]


def cases_bce_dice():
    return [
        Case("sigmoid-2d-default", "C=1, bce + dice with weights (1, 1)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-seed-form", "bce_weight 1e-3 (the seed's 1e-3*BCE - dice_coef, up to the constant -1)",
             {"activation": SIG, "bce_weight": 1e-3}, (2, 1, 5, 5)),
        Case("sigmoid-dice-weight0.5", "dice_weight 0.5, bce_weight 2",
             {"activation": SIG, "bce_weight": 2.0, "dice_weight": 0.5}, (2, 2, 4, 4)),
        Case("sigmoid-posweight", "pos_weight 3 goes to the bce part",
             {"activation": SIG, "pos_weight": 3.0}, (2, 1, 4, 6)),
        Case("sigmoid-posweight-auto", "pos_weight \"auto\" with a mask",
             {"activation": SIG, "pos_weight": "auto"}, (2, 1, 4, 6), mask="pix", tfrac=0.2),
        Case("sigmoid-weight-nobg", "weight and include_background=false go to both parts, C=3",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5], "include_background": False}, (2, 3, 3, 4)),
        Case("sigmoid-mask-masked-sample", "(N,1,S) mask with sample 1 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-batch-squared", "batch=true and squared=true go to the dice part",
             {"activation": SIG, "batch": True, "squared": True}, (2, 2, 4, 4)),
        Case("sigmoid-sum", "reduction sum for both parts",
             {"activation": SIG, "reduction": "sum"}, (2, 2, 3, 4)),
        Case("none-soft-label", "soft targets with soft_label=true (dice part)",
             {"activation": NON, "soft_label": True}, (2, 1, 4, 5), target="soft"),
        Case("sigmoid-labelmap", "C=3 label map target",
             {"activation": SIG}, (2, 3, 4, 4), target="labels"),
        Case("sigmoid-3d-smooth", "3-D with smooth 0.1",
             {"activation": SIG, "smooth": 0.1}, (2, 1, 3, 4, 4)),
        Case("sigmoid-1d", "1-D spatial input",
             {"activation": SIG}, (3, 1, 12)),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 1, 4, 5), edits=[large_logits()]),
        Case("none-complement", "complement=true (C=1) in the dice part",
             {"activation": NON, "complement": True}, (2, 1, 4, 5)),
        Case("none-special-eps", "activation none with exact 0/1 and below-eps probabilities, eps 1e-6",
             {"activation": NON, "eps": 1e-6}, (2, 1, 4, 5), edits=[special_probs(8)]),
        Case("sigmoid-empty-empty", "sample 0 empty target and (nearly) empty prediction",
             {"activation": SIG}, (2, 1, 4, 5), edits=[empty_sample(0)]),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
    ]


def cases_dice_focal():
    return [
        Case("sigmoid-2d-default", "C=1, dice + focal (lambda 1, focal alpha false, gamma 2)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "softmax with a C=3 label map: dice + softmax focal",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-lambda0.5", "lambda 0.5",
             {"activation": SIG, "lambda": 0.5}, (2, 2, 4, 4)),
        Case("sigmoid-gamma0", "gamma 0 (focal = bce)",
             {"activation": SIG, "gamma": 0.0}, (2, 2, 4, 4)),
        Case("sigmoid-gamma0.5-alpha0.25", "gamma 0.5, alpha 0.25",
             {"activation": SIG, "gamma": 0.5, "alpha": 0.25}, (2, 2, 4, 4)),
        Case("softmax-gamma3.5-alpha-list", "softmax gamma 3.5 with an alpha list",
             {"activation": SMX, "gamma": 3.5, "alpha": [0.2, 0.5, 0.3]}, (2, 3, 4, 4), target="labels"),
        Case("softmax-weight-nobg", "weight and include_background=false go to both parts",
             {"activation": SMX, "weight": [1.0, 3.0, 0.5], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-mask-masked-sample", "(N,1,S) mask with sample 0 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-batch", "batch=true (dice part)",
             {"activation": SMX, "batch": True}, (2, 3, 3, 4), target="labels"),
        Case("sigmoid-sum", "reduction sum",
             {"activation": SIG, "reduction": "sum", "lambda": 0.8}, (2, 2, 3, 4)),
        Case("softmax-3d-fullmask", "3-D softmax with a channel-identical full mask",
             {"activation": SMX}, (2, 3, 2, 3, 3), target="labels", mask="fullsame"),
        Case("sigmoid-1d", "1-D spatial input",
             {"activation": SIG, "gamma": 1.0}, (3, 1, 12)),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 1, 4, 5), edits=[large_logits()]),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("none-special-gamma0.5", "activation none with exact 0/1 and below-eps probabilities, gamma 0.5",
             {"activation": NON, "gamma": 0.5}, (2, 1, 4, 5), edits=[special_probs(8)]),
        Case("sigmoid-smooth-soft-label", "smooth 0.1 and soft_label with soft targets",
             {"activation": SIG, "smooth": 0.1, "soft_label": True}, (2, 2, 4, 4), target="soft"),
        Case("none-squared", "squared=true (dice part), activation none",
             {"activation": NON, "squared": True}, (2, 2, 3, 4)),
        Case("sigmoid-empty-empty", "sample 1 empty target and (nearly) empty prediction",
             {"activation": SIG}, (2, 1, 4, 5), edits=[empty_sample(1)]),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
    ]


CASES = {
    "bce": cases_bce, "ce": cases_ce, "focal": cases_focal, "dice": cases_dice, "iou": cases_iou,
    "tversky": cases_tversky, "focal_tversky": cases_focal_tversky,
    "sensitivity_specificity": cases_sensitivity_specificity,
    "generalized_dice": cases_generalized_dice, "bce_dice": cases_bce_dice, "dice_focal": cases_dice_focal,
}


# ---------------------------------------------------------------------------
# Guards: keep golden inputs away from places where float32 and float64 could
# take different sides of a convention's kink.
# ---------------------------------------------------------------------------
def guard_inputs(name, case, x, t, m):
    o = case.opts
    act = o.get("activation", "none")
    check(np.all(np.isfinite(x)) and np.all(np.isfinite(t)), "finite inputs")
    check(np.all((t >= 0) & (t <= 1)) or (x.shape[1] >= 2 and t.shape[1] == 1), "t in [0,1]")
    if x.shape[1] >= 2 and t.shape[1] == 1:
        check(np.all((t == np.round(t)) & (t >= 0) & (t < x.shape[1])), "integer labels")
    if m is not None:
        check(np.all((m == 0) | (m == 1)), "mask values 0/1")
        if act == "softmax":
            check(m.shape[1] == 1 or np.all(m == m[:, :1]), "softmax mask identical across channels")
    if act == "none":
        check(np.all((x >= 0) & (x <= 1)), "activation none needs x in [0,1]")
        eps = float(o.get("eps", EPS_DEFAULT))
        for a in (x.astype(np.float64), 1.0 - x.astype(np.float64)):
            near = np.abs(a - eps) <= 1e-3 * eps
            check(not np.any(near), "%s: a probability within 0.1%% of eps" % case.slug)
    if o.get("soft_label") and act != "none":
        tt = expand_target(torch.zeros(x.shape, dtype=DT), torch.tensor(t.astype(np.float64))).numpy()
        p = Act(torch.tensor(x.astype(np.float64)), act, EPS_DEFAULT).p.numpy()
        check(np.min(np.abs(p - tt)) > 1e-6, "%s: sigmoid/softmax p within 1e-6 of t with soft_label" % case.slug)
    if name == "focal_tversky":
        eps = float(o.get("eps", EPS_DEFAULT))
        o2 = {k: v for k, v in o.items() if k not in ("gamma", "eps")}
        o2["reduction"] = "none"
        Lt, _ = torch_eval("tversky", x, t, m, o2)
        bad = (Lt != 0) & (Lt > 0.1 * eps) & (Lt < 10 * eps)
        check(not np.any(bad), "%s: a tversky value within a factor 10 of eps" % case.slug)
    if o.get("soft_label") and o.get("squared"):
        check(np.all((t == 0) | (t == 1)), "%s: soft_label + squared with soft targets is not pinned (R14)" % case.slug)


# ---------------------------------------------------------------------------
# JSON output
# ---------------------------------------------------------------------------
def fmt_in(v):
    """An input value (a float32) as the shortest digits of its float64 value."""
    f = float(v)
    check(math.isfinite(f), "finite input")
    if f == 0.0:
        return "0"
    s = repr(f)
    if s.endswith(".0"):
        s = s[:-2]
    check(float(s) == f and float(np.float32(float(s))) == f, "input round trip " + s)
    return s


def fmt_out(v):
    f = float(v)
    check(math.isfinite(f), "non-finite result")
    if f == 0.0:
        return "0"
    s = "%.17g" % f
    check(float(s) == f, "output round trip")
    return s


def fmt_opt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_opt(e) for e in v) + "]"
    if isinstance(v, int):
        return str(v)
    check(isinstance(v, float) and math.isfinite(v), "option value")
    return repr(v)


def fmt_tensor(a, fmt):
    a = np.asarray(a)
    return '{"shape": [%s], "data": [%s]}' % (", ".join(str(int(d)) for d in a.shape),
                                              ", ".join(fmt(v) for v in a.reshape(-1)))


def case_json(cid, case, x, t, m, loss, grad):
    lines = ['      "id": %s' % json.dumps(cid),
             '      "note": %s' % json.dumps(case.note),
             '      "opts": {%s}' % ", ".join("%s: %s" % (json.dumps(k), fmt_opt(v)) for k, v in case.opts.items()),
             '      "x": %s' % fmt_tensor(x, fmt_in),
             '      "t": %s' % fmt_tensor(t, fmt_in)]
    if m is not None:
        lines.append('      "mask": %s' % fmt_tensor(m, fmt_in))
    if grad is None:
        lines.append('      "loss": %s' % fmt_tensor(loss, fmt_out))
        lines.append('      "grad": null')
    else:
        lines.append('      "loss": %s' % fmt_out(loss))
        lines.append('      "grad": %s' % fmt_tensor(grad, fmt_out))
    return "    {\n" + ",\n".join(lines) + "\n    }"


def run_case(name, case):
    cid_seed = zlib.crc32(("%s/%s" % (name, case.slug)).encode("utf-8"))
    R = np.random.default_rng(cid_seed)
    x, t, m = build_inputs(case, R)
    guard_inputs(name, case, x, t, m)
    loss, grad = torch_eval(name, x, t, m, case.opts)
    # second implementation, loss values
    ref = scalar_eval(name, x, t, m, case.opts)
    expect_close("%s/%s: tensor vs loop implementation" % (name, case.slug), loss, ref, rtol=1e-11, atol=1e-14)
    if grad is not None:
        check(np.all(np.isfinite(grad)), "finite gradient")
        check(np.isfinite(loss), "finite loss")
        if m is not None:
            mfull = np.broadcast_to(m, x.shape)
            check(np.all(grad[mfull == 0] == 0), "%s/%s: masked elements need gradient exactly 0" % (name, case.slug))
    else:
        check(np.all(np.isfinite(loss)), "finite loss")
    if case.expect is not None:
        case.expect(loss, grad, case)
    return x, t, m, loss, grad


def build_file(name):
    cases = CASES[name]()
    slugs = [c.slug for c in cases]
    check(len(set(slugs)) == len(slugs), "duplicate case names in " + name)
    blocks = []
    for i, case in enumerate(cases, 1):
        cid = "%s-%02d-%s" % (name, i, case.slug)
        x, t, m, loss, grad = run_case(name, case)
        blocks.append(case_json(cid, case, x, t, m, loss, grad))
    text = ("{\n"
            '  "loss": %s,\n' % json.dumps(name)
            + '  "generator": %s,\n' % json.dumps(GENERATOR)
            + '  "torch_version": %s,\n' % json.dumps(torch.__version__)
            + '  "cases": [\n' + ",\n".join(blocks) + "\n  ]\n}\n")
    # the file must parse and give back exactly what was computed
    back = json.loads(text)
    check(back["loss"] == name and len(back["cases"]) == len(cases), "json round trip")
    return text, len(cases)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="output directory (default: <repo>/spec/golden)")
    ap.add_argument("--only", default=None, help="comma-separated loss names (default: all)")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, "spec", "golden")
    names = LOSS_NAMES if not args.only else args.only.split(",")
    for n in names:
        check(n in CASES, "unknown loss " + n)
    try:
        R = np.random.default_rng(20240601)
        nb, has_tv = selfcheck_builtins(R)
        ni = selfcheck_invariants(R)
        ng = selfcheck_gradcheck(R)
        nc = selfcheck_conventions()
        print("self-checks passed: %d against PyTorch built-ins%s, %d invariants, %d gradchecks, %d convention values"
              % (nb, " (torchvision included)" if has_tv else " (torchvision not installed: its formula only)",
                 ni, ng, nc))
        texts = {}
        for n in names:
            texts[n], count = build_file(n)
            print("  %-24s %2d cases" % (n, count))
    except GoldenError as e:
        sys.stderr.write("gen_golden.py: FAILED: %s\n" % e)
        sys.exit(1)
    os.makedirs(out, exist_ok=True)
    for n in names:
        path = os.path.join(out, n + ".json")
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(texts[n])
        print("wrote %s (%d bytes)" % (os.path.relpath(path), len(texts[n])))


if __name__ == "__main__":
    main()
