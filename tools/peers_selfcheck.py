#!/usr/bin/python3
"""Checks tools/peers.py against a straightforward reading of the contract
(docs/losses.md, "Newer losses") where the two agree: small float64
inputs, the value to 1e-9 relative, and the peer's autograd gradient against
central differences of the contract reading at a few coordinates (1e-6 of
the largest gradient entry; the readings are piecewise smooth, and the
inputs keep away from kinks: untied errors, |x| off the 0.5 threshold).

    /usr/bin/python3 tools/peers_selfcheck.py [-v]

Prints one line per check with the largest differences; exits 1 when a
check disagrees. The readings here are loops and numpy over the contract's
words (brute-force distances, padded min/max windows, stable sorts), written
apart from peers.py so that the two do not share a mistake.
"""
import itertools
import math
import sys

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
import peers  # noqa: E402

VALUE_RTOL = 1e-9
GRAD_TOL = 1e-6


# ---- activations and targets, the contract's notation -----------------------

def probs(x, act):
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if act == "softmax":
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    return x.copy()


def logp(x, act):
    """log p, from the logits for sigmoid/softmax (log-sigmoid, log-softmax)."""
    if act == "sigmoid":
        return -np.logaddexp(0.0, -x)
    if act == "softmax":
        m = x.max(1, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))
    return np.log(x)


def log1mp(x, act):
    """log(1 - p) for sigmoid (= log σ(−x))."""
    assert act == "sigmoid"
    return -np.logaddexp(0.0, x)


def dense(x, t):
    """A label map (N, 1, S...) with C >= 2 becomes its one-hot."""
    C = x.shape[1]
    if C >= 2 and t.shape[1] == 1:
        lab = t[:, 0].astype(int)
        return np.stack([(lab == c).astype(float) for c in range(C)], 1)
    return t.astype(float)


def included(C, include_background=False):
    return range(1, C) if C >= 2 and not include_background else range(C)


def spatial_coords(shape, spacing):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], 1)


def nearest(inside, spacing, towards):
    """For every element, the distance to the nearest element where `towards`
    is true (brute force over all pairs); inf if there is none."""
    pts = spatial_coords(inside.shape, spacing)
    tgt = pts[towards.reshape(-1)]
    if len(tgt) == 0:
        return np.full(inside.shape, np.inf)
    d = np.sqrt(((pts[:, None, :] - tgt[None, :, :]) ** 2).sum(-1)).min(1)
    return d.reshape(inside.shape)


def dice_L(p, t, s):
    return 1.0 - (2.0 * (p * t).sum() + s) / (p.sum() + t.sum() + s)


# ---- the contract's definitions, read literally ----------------------------------

def c_lovasz_hinge(x, t, o):
    N = x.shape[0]
    groups = [(x[n].reshape(-1), t[n].reshape(-1)) for n in range(N)] if o.get("per_image", True) \
        else [(x.reshape(-1), t.reshape(-1))]
    total = 0.0
    for xs, ts in groups:
        e = 1.0 - xs * (2.0 * ts - 1.0)
        order = np.argsort(-e, kind="stable")  # decreasing, ties by index
        G = ts.sum()
        ct = c1 = 0.0
        prev = 0.0
        L = 0.0
        for i in order:
            ct += ts[i]
            c1 += 1.0 - ts[i]
            J = 1.0 - (G - ct) / (G + c1)
            L += max(e[i], 0.0) * (J - prev)
            prev = J
        total += L
    return total / len(groups)


def _lovasz_class(e, tc):
    order = np.argsort(-e, kind="stable")
    G = tc.sum()
    ct = c1 = prev = L = 0.0
    for i in order:
        ct += tc[i]
        c1 += 1.0 - tc[i]
        J = 1.0 - (G - ct) / (G + c1)
        L += e[i] * (J - prev)
        prev = J
    return L


def c_lovasz_softmax(x, t, o):
    p, tt = probs(x, o.get("activation", "none")), dense(x, t)
    N, C = p.shape[:2]
    groups = [(p[n:n + 1], tt[n:n + 1]) for n in range(N)] if o.get("per_image", False) else [(p, tt)]
    vals = []
    for pg, tg in groups:
        ls = []
        for c in range(C):
            tc = tg[:, c].reshape(-1)
            if o.get("classes", "present") == "present" and tc.sum() == 0:
                continue
            ls.append(_lovasz_class(np.abs(tc - pg[:, c].reshape(-1)), tc))
        vals.append(sum(ls) / len(ls) if ls else 0.0)
    return sum(vals) / len(vals)


def c_boundary(x, t, o):
    p, tt = probs(x, o.get("activation", "none")), dense(x, t)
    sp = o.get("spacing") or [1.0] * (x.ndim - 2)
    acc, cnt = 0.0, 0
    for n in range(x.shape[0]):
        for c in included(x.shape[1], o.get("include_background", False)):
            inside = tt[n, c] > 0.5
            if inside.any():
                out_d = nearest(inside, sp, inside)      # outside: to the nearest target element
                in_d = nearest(inside, sp, ~inside)      # inside: to the nearest non-target element
                phi = np.where(inside, -(in_d - 1.0), out_d)
            else:
                phi = np.zeros(inside.shape)
            acc += (p[n, c] * phi).sum()
            cnt += phi.size
    return acc / cnt


def _dmap(mask, sp):
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return np.where(mask, nearest(mask, sp, ~mask), nearest(mask, sp, mask))


def c_hausdorff_dt(x, t, o):
    p, tt = probs(x, o.get("activation", "none")), dense(x, t)
    sp = o.get("spacing") or [1.0] * (x.ndim - 2)
    a = o.get("alpha", 2.0)
    acc, cnt = 0.0, 0
    for n in range(x.shape[0]):
        for c in included(x.shape[1], o.get("include_background", False)):
            dp, dt = _dmap(p[n, c] > 0.5, sp), _dmap(tt[n, c] > 0.5, sp)
            acc += ((p[n, c] - tt[n, c]) ** 2 * (dp ** a + dt ** a)).sum()
            cnt += dp.size
    return acc / cnt


def _window(q, axes, fn, fill):
    """fn (min or max) over the 3-neighbourhood along `axes` (a tuple of
    spatial axes taken together), elements outside the image left out."""
    d = q.ndim
    pad = np.pad(q, 1, constant_values=fill)
    out = np.full(q.shape, fill)
    for offs in itertools.product(*[(-1, 0, 1) if a in axes else (0,) for a in range(d)]):
        sl = tuple(slice(1 + o, 1 + o + q.shape[a]) for a, o in enumerate(offs))
        out = fn(out, pad[sl])
    return out


def _erode(q):
    return np.minimum.reduce([_window(q, (a,), np.minimum, np.inf) for a in range(q.ndim)])


def _dilate(q):
    return _window(q, tuple(range(q.ndim)), np.maximum, -np.inf)


def _skel(q, iters):
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    S = relu(q - _dilate(_erode(q)))
    for _ in range(iters):
        q = _erode(q)
        d = relu(q - _dilate(_erode(q)))
        S = S + relu(d - S * d)
    return S


def c_cldice(x, t, o):
    p, tt = probs(x, o.get("activation", "none")), dense(x, t)
    a, it, s = o.get("alpha", 0.5), o.get("iterations", 3), o.get("smooth", 1.0)
    vals = []
    for n in range(x.shape[0]):
        for c in included(x.shape[1], o.get("include_background", False)):
            pc, tc = p[n, c], tt[n, c]
            Sp, St = _skel(pc, it), _skel(tc, it)
            tprec = ((Sp * tc).sum() + s) / (Sp.sum() + s)
            tsens = ((St * pc).sum() + s) / (St.sum() + s)
            vals.append((1 - a) * dice_L(pc, tc, s) + a * (1 - 2 * tprec * tsens / (tprec + tsens)))
    return sum(vals) / len(vals)


def c_log_cosh_dice(x, t, o):
    p, tt = probs(x, o.get("activation", "none")), dense(x, t)
    s = o.get("smooth", 1.0)
    vals = [math.log(math.cosh(dice_L(p[n, c], tt[n, c], s)))
            for n in range(x.shape[0]) for c in included(x.shape[1], o.get("include_background", False))]
    return sum(vals) / len(vals)


def c_unified_parts(x, t, o):
    """(mF, mFT) of the contract."""
    act = o.get("activation", "none")
    delta, gamma, s = o.get("delta", 0.7), o.get("gamma", 0.5), o.get("smooth", 1e-7)
    eps = 1e-7
    if x.shape[1] == 1:
        p1 = probs(x, act)[:, 0]
        P = [1.0 - p1, p1]
        LP = [log1mp(x, act)[:, 0], logp(x, act)[:, 0]]
        T = [1.0 - t[:, 0], t[:, 0]]
    else:
        p, lp, tt = probs(x, act), logp(x, act), dense(x, t)
        P = [p[:, c] for c in range(x.shape[1])]
        LP = [lp[:, c] for c in range(x.shape[1])]
        T = [tt[:, c] for c in range(x.shape[1])]
    K = len(P)
    term = (1 - delta) * (1 - P[0]) ** gamma * (-T[0] * LP[0])
    for c in range(1, K):
        term = term + delta * (-T[c] * LP[c])
    mF = term.mean()
    ft = []
    for n in range(x.shape[0]):
        for c in range(K):
            tp = (P[c][n] * T[c][n]).sum()
            fn = T[c][n].sum() - tp
            fp = P[c][n].sum() - tp
            ti = (tp + s) / (tp + delta * fn + (1 - delta) * fp + s)
            ft.append(1 - ti if c == 0 else max(1 - ti, eps) ** (1 - gamma))
    return mF, sum(ft) / len(ft), K


def c_unified_focal_monai(x, t, o):
    """The peer's documented relation: λ mF / K + (1 − λ) mFT (MONAI means
    its focal terms over the K classes too)."""
    mF, mFT, K = c_unified_parts(x, t, o)
    lam = o.get("weight", 0.5)
    return lam * mF / K + (1 - lam) * mFT


def c_topk_ce(x, t, o):
    act = o.get("activation", "softmax")
    if act == "sigmoid":
        terms = (-(t * logp(x, act) + (1 - t) * log1mp(x, act))).reshape(-1)
    else:
        lp = logp(x, act)
        lab = t[:, 0].astype(int)
        terms = np.array([-lp[n, lab[n][idx]][idx] for n in range(x.shape[0])
                          for idx in np.ndindex(lab[n].shape)])
    K = terms.size
    k = max(1, int(math.floor(K * o.get("k", 10) / 100)))
    order = np.argsort(-terms, kind="stable")
    return terms[order[:k]].mean()


def c_combo(x, t, o):
    act = o.get("activation", "none")
    a, b, s = o.get("alpha", 0.5), o.get("beta", 0.5), o.get("smooth", 1.0)
    p, tt = probs(x, act), dense(x, t)
    inc = list(included(x.shape[1]))  # include_background = false drops c = 0 from both parts
    wce = (-(b * tt * logp(x, act) + (1 - b) * (1 - tt) * log1mp(x, act)))[:, inc].mean()
    dl = [dice_L(p[n, c], tt[n, c], s) for n in range(x.shape[0]) for c in inc]
    return a * wce + (1 - a) * sum(dl) / len(dl)


# ---- inputs --------------------------------------------------------------------

def inputs(rng, shape, kind="mask", frac=0.35, spread=2.0):
    """float64 logits (kept off 0 by 1e-3, so that p = σ(x) stays off the 0.5
    threshold) and a target: a 0/1 mask of x's shape, or a label map."""
    x = rng.normal(0.0, spread, shape)
    x = np.where(np.abs(x) < 1e-3, 1e-3 * np.sign(x + 1e-12), x)
    if kind == "labels":
        t = rng.integers(0, shape[1], (shape[0], 1) + tuple(shape[2:])).astype(float)
    else:
        t = (rng.random(shape) < frac).astype(float)
        for n in range(shape[0]):  # no empty or full target
            t[(n,) + (0,) * (len(shape) - 1)] = 1.0
            t[(n,) + (0,) * (len(shape) - 2) + (1,)] = 0.0
    return x, t


def check(name, peer_opts, contract, copts, x, t, rng, verbose, ncoords=12):
    """Value, and the gradient at a few coordinates against central
    differences of the contract reading. Returns True when both agree."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float64)
    v = peers.PEERS[name](xt, tt, peer_opts)
    v.backward()
    g = xt.grad.numpy()
    ref = contract(x, t, copts)
    vdiff = abs(v.item() - ref)
    vok = vdiff <= VALUE_RTOL * max(abs(ref), abs(v.item())) + 1e-15
    h = 1e-6
    gmax = max(np.abs(g).max(), 1e-12)
    gdiff = 0.0
    for idx in [tuple(int(rng.integers(0, n)) for n in x.shape) for _ in range(ncoords)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fd = (contract(xp, t, copts) - contract(xm, t, copts)) / (2 * h)
        gdiff = max(gdiff, abs(fd - g[idx]))
    gok = gdiff <= GRAD_TOL * gmax
    ok = vok and gok
    label = "%-15s %-48s" % (name, ", ".join("%s=%s" % kv for kv in sorted(peer_opts.items())))
    print("%s %s value %.17g  |diff| %.2e (rel %.1e)  grad max|diff| %.2e of %.2e" % (
        "ok  " if ok else "FAIL", label, v.item(), vdiff, vdiff / max(abs(ref), 1e-300), gdiff, gmax))
    if verbose and not ok:
        print("     contract %.17g" % ref)
    return ok


def main():
    verbose = "-v" in sys.argv
    rng = np.random.default_rng(12)
    torch.set_num_threads(1)
    S, L = "sigmoid", "softmax"
    plan = [
        # Berman: per image (his default) and over the batch; untied errors
        ("lovasz_hinge", {"per_image": True}, c_lovasz_hinge, (3, 1, 6, 7), "mask"),
        ("lovasz_hinge", {"per_image": False}, c_lovasz_hinge, (2, 1, 5, 6), "mask"),
        ("lovasz_hinge", {"per_image": True}, c_lovasz_hinge, (2, 1, 3, 4, 5), "mask"),
        ("lovasz_softmax", {"activation": L}, c_lovasz_softmax, (2, 3, 5, 6), "labels"),
        ("lovasz_softmax", {"activation": L, "classes": "all", "per_image": True}, c_lovasz_softmax,
         (2, 4, 4, 5), "labels"),
        # Kervadec: 2-D binary, 3-D, spacing, multi-class without background
        ("boundary", {"activation": S}, c_boundary, (2, 1, 7, 8), "mask"),
        ("boundary", {"activation": S, "spacing": [1.5, 0.5, 0.8]}, c_boundary, (2, 1, 4, 5, 6), "mask"),
        ("boundary", {"activation": L}, c_boundary, (2, 3, 6, 7), "labels"),
        # MONAI's Hausdorff DT: C = 1, and per channel for C >= 2
        ("hausdorff_dt", {"activation": S}, c_hausdorff_dt, (2, 1, 7, 8), "mask"),
        ("hausdorff_dt", {"activation": S, "alpha": 1.5, "spacing": [2.0, 0.7]}, c_hausdorff_dt,
         (2, 1, 6, 7), "mask"),
        ("hausdorff_dt", {"activation": L}, c_hausdorff_dt, (2, 3, 6, 6), "labels"),
        ("hausdorff_dt", {"activation": S}, c_hausdorff_dt, (1, 1, 4, 5, 6), "mask"),
        # clDice per (n, c) (batch = False)
        ("cldice", {"activation": S, "batch": False}, c_cldice, (2, 1, 8, 9), "mask"),
        ("cldice", {"activation": S, "batch": False, "iterations": 2, "alpha": 0.3}, c_cldice,
         (1, 1, 5, 6, 7), "mask"),
        ("cldice", {"activation": L, "batch": False}, c_cldice, (2, 3, 7, 7), "labels"),
        ("log_cosh_dice", {"activation": S, "batch": False}, c_log_cosh_dice, (2, 2, 5, 6), "mask"),
        ("log_cosh_dice", {"activation": L, "batch": False}, c_log_cosh_dice, (2, 3, 5, 6), "labels"),
        # MONAI's unified focal: the contract's parts with its focal mean over the classes
        ("unified_focal", {"activation": S}, c_unified_focal_monai, (2, 1, 5, 6), "mask"),
        ("unified_focal", {"activation": L, "weight": 0.3, "delta": 0.6}, c_unified_focal_monai,
         (2, 3, 5, 6), "labels"),
        ("unified_focal", {"activation": L, "weight": 0.0}, c_unified_focal_monai, (2, 4, 4, 5), "labels"),
        # nnU-Net's top-k on untied data; k * K / 100 an integer and not
        ("topk_ce", {"activation": L, "k": 10}, c_topk_ce, (2, 3, 10, 10), "labels"),
        ("topk_ce", {"activation": L, "k": 7.5}, c_topk_ce, (2, 3, 6, 7), "labels"),
        ("topk_ce", {"activation": S, "k": 20}, c_topk_ce, (2, 1, 6, 7), "mask"),
        # combo with the paper's weights, per (n, c), plus the constant
        ("combo", {"activation": S, "batch": False, "keras_weights": False, "constant": True}, c_combo,
         (2, 1, 6, 7), "mask"),
        ("combo", {"activation": S, "batch": False, "keras_weights": False, "constant": True, "alpha": 0.7,
                   "beta": 0.8}, c_combo, (2, 2, 5, 6), "mask"),
    ]
    bad = 0
    for name, opts, contract, shape, kind in plan:
        x, t = inputs(rng, shape, kind)
        bad += not check(name, opts, contract, opts, x, t, rng, verbose)
    print("peers_selfcheck: %d checks, %d disagree" % (len(plan), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
