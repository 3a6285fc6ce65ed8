"""The reference implementation: every loss of docs/losses.md as PyTorch tensor
formulas in float64, differentiated by autograd ("LOSSES.md" in the comments
means docs/losses.md; R1-R18 are its readings).  TORCH_LOSS has one entry per
loss of the registry: t_<name> here, the weighted sum of a preset's parts, or
the torch_loss of a loss's own cases module (cases/<name>.py).  Options
arrive with the contract's defaults filled in (registry.resolve)."""
import numpy as np
import torch
import torch.nn.functional as F

from . import registry
from .common import (default_smooth, DT, EPS_DEFAULT, KNOWN, LOSS_NAMES, GoldenError, check, opt,
                     smooth_pair)


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


def smoothed(t, o, K):
    """label_smoothing e: the target t (1 - e) + e / K of a pixel loss, K = C with
    softmax (PyTorch's cross_entropy(label_smoothing=e)) and 2 otherwise, as
    the contract says (also for ce with activation "none"); t itself when e = 0."""
    e = float(opt(o, "label_smoothing", 0.0))
    return t if e == 0.0 else t * (1.0 - e) + e / K


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
    t = smoothed(t, o, 2.0)       # after pos_weight "auto", which counts the target as given
    ell = -(pw * t * a.logp + (1.0 - t) * a.logq)
    return reduce_elements(ell, valid, bcast(w, x), opt(o, "reduction", "mean"))


def t_ce(x, t, m, o):
    act = opt(o, "activation", "none")
    check(act in ("none", "softmax") and x.shape[1] >= 2, "ce activation / C")
    a = Act(x, act, float(opt(o, "eps", EPS_DEFAULT)))
    inc, w = class_vectors(x, o)
    t = smoothed(t, o, float(x.shape[1]) if act == "softmax" else 2.0)  # the contract's K
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
    t = smoothed(t, o, float(C) if act == "softmax" else 2.0)
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
    snr, sdr = smooth_pair(o, default_smooth("dice"))
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
    snr, sdr = smooth_pair(o, default_smooth("iou"))
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
    return region_loss(x, t, m, o, tversky_L(o, default_smooth("tversky")))


def t_focal_tversky(x, t, m, o):
    base = tversky_L(o, default_smooth("focal_tversky"))
    gamma = float(opt(o, "gamma", 0.75))
    eps = float(opt(o, "eps", EPS_DEFAULT))

    def L(s):
        Lt = base(s)
        clamped = torch.where(Lt < eps, torch.full_like(Lt, eps), Lt)     # R9
        return torch.pow(clamped, gamma)
    return region_loss(x, t, m, o, L)


def t_sensitivity_specificity(x, t, m, o):
    _, sdr = smooth_pair(o, default_smooth("sensitivity_specificity"))  # R11
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
    st = region_stats(a.p, t, m, bool(opt(o, "batch", False)), bool(opt(o, "soft_label", False)))
    snr, sdr = smooth_pair(o, default_smooth("generalized_dice"))
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


def preset_loss(name):
    """A preset of the registry: the weighted sum of its parts, each given the
    preset's options with the preset's defaults (dice_focal's alpha = false);
    or, for a preset whose cases module has its own torch_loss (combo, whose
    parts the registry weighs by 1 - alpha and beta), that one."""
    def f(x, t, m, o):
        check(opt(o, "reduction", "mean") != "none", "combination with reduction none")
        from .cases import MODULES
        if hasattr(MODULES.get(name), "torch_loss"):
            return MODULES[name].torch_loss(x, t, m, registry.resolve(name, o))
        o = registry.resolve(name, o)
        total = None
        for part, wopt in registry.parts(name):
            v = TORCH_LOSS[part](x, t, m, o)
            v = v if wopt is None else float(o[wopt]) * v
            total = v if total is None else total + v
        return total
    return f


def own_loss(name):
    """A loss whose reference lives with its cases (cases/<name>.py: torch_loss),
    given the options with the registry's defaults."""
    def f(x, t, m, o):
        from .cases import MODULES
        return MODULES[name].torch_loss(x, t, m, registry.resolve(name, o))
    return f


TORCH_LOSS = {n: preset_loss(n) if registry.kind(n) == "preset" else globals().get("t_" + n) or own_loss(n)
              for n in LOSS_NAMES}


def validate_opts(name, o, x_shape, t_shape, mask_shape):
    unknown = set(o) - KNOWN[name]
    check(not unknown, "%s: unknown option(s) %s" % (name, sorted(unknown)))
    C = x_shape[1]
    act = opt(o, "activation", "none")
    check(act in ("none", "sigmoid", "softmax"), "activation")
    check(not (act == "softmax" and C < 2), "softmax with C = 1")
    check(act in registry.activations(name), "%s with activation %s" % (name, act))
    check(opt(o, "reduction", "mean") in ("mean", "sum", "none"), "reduction")
    if mask_shape is not None:
        check(mask_shape[1] in (1, C) and mask_shape[0] == x_shape[0]
              and mask_shape[2:] == x_shape[2:], "mask shape")
    check(t_shape == x_shape or (C >= 2 and t_shape[1] == 1 and t_shape[2:] == x_shape[2:]),
          "target shape")


def ignore(x, t_raw, m_raw, ii):
    """ignore_index ii (docs/losses.md): elements of the target equal to ii take
    no part, as if masked, and their target reads 0. A label map (N, 1, S...)
    ignores pixels; a target of x's shape ignores elements. Returns the target
    and the mask (None: none) the loss then sees."""
    ign = t_raw == float(ii)
    keep = (~ign).to(DT)
    if m_raw is None:
        m = keep
    elif tuple(m_raw.shape) == tuple(keep.shape) or m_raw.shape[1] == 1:
        m = m_raw * keep                    # same shape, or a (N,1,S) mask on a label map
    else:
        m = m_raw * keep.expand_as(m_raw)   # a mask of x's shape on a label map
    return torch.where(ign, torch.zeros_like(t_raw), t_raw), m


def torch_eval(name, x_np, t_np, m_np, o):
    """Returns (loss, grad): loss a float or an ndarray ("none"), grad an ndarray or None."""
    validate_opts(name, o, x_np.shape, t_np.shape, None if m_np is None else m_np.shape)
    x = torch.tensor(x_np.astype(np.float64), dtype=DT, requires_grad=True)
    t_raw = torch.tensor(t_np.astype(np.float64), dtype=DT)
    m_raw = None if m_np is None else torch.tensor(m_np.astype(np.float64), dtype=DT)
    if "ignore_index" in o:
        t_raw, m_raw = ignore(x, t_raw, m_raw, o["ignore_index"])
        o = {k: v for k, v in o.items() if k != "ignore_index"}
    t = expand_target(x, t_raw)
    m = expand_mask(x, m_raw)
    loss = TORCH_LOSS[name](x, t, m, registry.resolve(name, o))
    if opt(o, "reduction", "mean") == "none":
        return loss.detach().numpy().copy(), None
    check(loss.dim() == 0, "scalar loss")
    if loss.requires_grad:
        loss.backward()
        grad = x.grad.detach().numpy().copy()
    else:
        grad = np.zeros(x_np.shape)
    return float(loss.item()), grad
