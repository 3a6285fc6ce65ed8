"""Self-checks run before any file is written: agreement with PyTorch
built-ins, the invariants of docs/losses.md, gradchecks, and values derived
by hand at the conventions' kinks."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from . import registry
from .common import (DT, KNOWN, LOSS_NAMES, check, expect_close, onehot_np,
                     rnd32)
from .reference import TORCH_LOSS, expand_mask, expand_target, torch_eval


# ---------------------------------------------------------------------------
# Self-checks on random inputs
# ---------------------------------------------------------------------------
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
    return n_checks + selfcheck_options(R), tv_focal is not None


def selfcheck_options(R):
    """ignore_index and label_smoothing against PyTorch: cross_entropy with
    class indices (ignore_index, label_smoothing; no class weights, whose mean
    divides by sum w_y there) and with probability targets (label_smoothing,
    class weights), and binary_cross_entropy_with_logits on the smoothed
    target written by hand (it has no label_smoothing)."""
    n = 0
    for shape in [(3, 4, 3, 5), (2, 3, 2, 3, 3)]:
        N, C = shape[:2]
        x = rnd32(R.standard_normal(shape) * 2.5)
        lab = rnd32(R.integers(0, C, (N, 1) + shape[2:]))
        lab[R.random(lab.shape) < 0.3] = 255
        for ls in (0.0, 0.1, 0.45):
            for red in ("mean", "sum"):
                o = {"activation": "softmax", "reduction": red, "ignore_index": 255}
                if ls:
                    o["label_smoothing"] = ls
                v1, g1 = torch_eval("ce", x, lab, None, o)
                xx = torch.tensor(x.astype(np.float64), dtype=DT, requires_grad=True)
                v2 = F.cross_entropy(xx, torch.tensor(lab[:, 0].astype(np.int64)), ignore_index=255,
                                     label_smoothing=ls, reduction=red)
                v2.backward()
                expect_close("ce ignore_index vs cross_entropy(ignore_index, label_smoothing=%g) %s [loss]" % (ls, red),
                             v1, float(v2.item()))
                expect_close("ce ignore_index vs cross_entropy(ignore_index, label_smoothing=%g) %s [grad]" % (ls, red),
                             g1, xx.grad.numpy())
                n += 1
        soft = R.random(shape) + 0.05
        soft = rnd32(soft / soft.sum(axis=1, keepdims=True))
        wl = [float(v) for v in R.uniform(0.1, 3.0, C).astype(np.float32)]
        for ls in (0.1, 0.6):
            o = {"activation": "softmax", "label_smoothing": ls, "weight": wl}
            tp = torch.tensor(soft.astype(np.float64))
            compare_fns("ce label_smoothing vs cross_entropy(probability targets, label_smoothing=%g)" % ls,
                        ours("ce", soft, None, o),
                        lambda xx, tp=tp, ls=ls: F.cross_entropy(xx, tp, weight=torch.tensor(wl, dtype=DT),
                                                                 label_smoothing=ls), x)
            n += 1
    for shape in [(2, 3, 4, 5), (3, 1, 9)]:
        x = rnd32(R.standard_normal(shape) * 3)
        t = rnd32(R.random(shape) < 0.3)
        for ls in (0.1, 0.5):
            for pw in (1.0, 3.0):
                o = {"activation": "sigmoid", "label_smoothing": ls, "pos_weight": pw}
                tt = torch.tensor(t.astype(np.float64)) * (1.0 - ls) + ls / 2.0
                compare_fns("bce label_smoothing vs binary_cross_entropy_with_logits(t (1 - e) + e/2)",
                            ours("bce", t, None, o),
                            lambda xx, tt=tt, pw=pw: F.binary_cross_entropy_with_logits(
                                xx, tt, pos_weight=torch.tensor(pw, dtype=DT)), x)
                n += 1
    return n


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
    for name in [n for n in LOSS_NAMES if registry.kind(n) == "region" and "soft_label" in KNOWN[n]]:
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
            if act not in registry.activations(name):
                continue
            shape = (2, 3, 4, 4)
            x, t, m = random_case_inputs(R, shape, act, "labels", "pix")
            reds = ("mean", "sum") if registry.kind(name) == "preset" else ("mean", "sum", "none")
            for red in reds:
                base = {"activation": act, "reduction": red}
                if "refused" in registry.BY_NAME[name]["options"]["weight"]:
                    continue                       # takes no weight (generalized_dice)
                if registry.BY_NAME[name]["options"]["weight"]["type"] != "list":
                    continue                       # weight is one number here (unified_focal's lambda)
                if red == "none" and not registry.BY_NAME[name].get("none_shape"):
                    continue                       # no reduction "none" (unified_focal)
                for wl in ([1.0, 1.0, 1.0],) + (([0.7, 0.7, 0.7],) if (red == "mean" and registry.kind(name) == "region") else ()):
                    a = torch_eval(name, x, t, m, dict(base, weight=wl))
                    b = torch_eval(name, x, t, m, base)
                    expect_close("%s uniform weights %s == none [loss]" % (name, wl), a[0], b[0])
                    if red != "none":
                        expect_close("%s uniform weights %s == none [grad]" % (name, wl), a[1], b[1])
                    n_checks += 1
    # label-map target == its one-hot target (every loss with C >= 2)
    for name in LOSS_NAMES:
        for act in ("none", "sigmoid", "softmax"):
            if act not in registry.activations(name) or registry.binary(name):
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
