"""Golden cases of lovasz_hinge: spec/golden/lovasz_hinge.json, in this order;
its PyTorch float64 reference (torch_loss), its loop-based second
implementation (scalar) and a float64 version of Berman et al.'s published
lovasz_hinge (berman_hinge, written from reading their description and code,
used by crosscheck where its definition agrees with ours)."""
import numpy as np
import torch
import torch.nn.functional as F

from ..case import Case, both, expect_grad_zero_sample, expect_zero, mask_all, mask_sample, set_x
from ..common import check, expect_close, rnd32

# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it.
DEFAULTS = {"per_image": True}


# ---------------------------------------------------------------------------
# The reference: autograd through a stable sort
# ---------------------------------------------------------------------------
def jaccard_steps(ts):
    """Δ_r = J_r - J_{r-1} for the targets ts in sorted order (constants)."""
    G = ts.sum()
    inter = G - torch.cumsum(ts, 0)
    union = G + torch.cumsum(1.0 - ts, 0)
    J = 1.0 - inter / union
    return torch.cat([J[:1], J[1:] - J[:-1]])


def hinge_flat(xv, tv):
    """The hinge of one group's valid elements (in index order), or None."""
    if xv.numel() == 0:
        return None
    e = 1.0 - xv * (2.0 * tv - 1.0)
    es, perm = torch.sort(e, descending=True, stable=True)     # ties by index
    return torch.dot(F.relu(es), jaccard_steps(tv[perm]).detach())


def groups(x, per_image):
    N = x.shape[0]
    return [slice(n, n + 1) for n in range(N)] if per_image else [slice(0, N)]


def torch_loss(x, t, m, o):
    vals, taken = [], []
    for sl in groups(x, o["per_image"]):
        keep = m[sl].reshape(-1) > 0
        v = hinge_flat(x[sl].reshape(-1)[keep], t[sl].reshape(-1)[keep])
        taken.append(v is not None)
        vals.append(v if v is not None else x.sum() * 0.0)
    if o["reduction"] == "none":
        return torch.stack([v.detach() for v in vals]).reshape(-1, 1)
    tot = sum(v for v, k in zip(vals, taken) if k) if any(taken) else x.sum() * 0.0
    if o["reduction"] == "sum":
        return tot
    return tot / sum(taken) if any(taken) else tot


# ---------------------------------------------------------------------------
# The second implementation: plain loops, Python's stable sort
# ---------------------------------------------------------------------------
def scalar_group(items):
    """items: (e, t) of one group's valid elements in index order."""
    order = sorted(range(len(items)), key=lambda k: -items[k][0])    # stable: ties by index
    G = sum(tv for _, tv in items)
    ct = cf = jp = L = 0.0
    for k in order:
        e, tv = items[k]
        ct += tv
        cf += 1.0 - tv
        J = 1.0 - (G - ct) / (G + cf)
        L += max(e, 0.0) * (J - jp)
        jp = J
    return L


def scalar(sc):
    N, Msp, o = sc.N, sc.Msp, sc.o
    per = 1 if o["per_image"] else N
    vals, taken = [], []
    for g0 in range(0, N, per):
        items = [(1.0 - sc.X[n, 0, s] * (2.0 * sc.T[n, 0, s] - 1.0), sc.T[n, 0, s])
                 for n in range(g0, g0 + per) for s in range(Msp) if sc.W[n, 0, s] > 0]
        taken.append(len(items) > 0)
        vals.append(scalar_group(items) if items else 0.0)
    if sc.red == "none":
        return np.array([[v] for v in vals])
    tot = sum(v for v, k in zip(vals, taken) if k)
    if sc.red == "sum":
        return tot
    return tot / sum(taken) if any(taken) else 0.0


# ---------------------------------------------------------------------------
# Berman et al.'s lovasz_hinge, as published (float64): per image, the mean
# over every image (one without valid pixels counts as 0); pixels whose
# label is `ignore` are dropped; torch.sort without a tie rule.
# ---------------------------------------------------------------------------
def berman_hinge(x, t, valid, per_image=True):
    def flat(xv, tv):
        if tv.numel() == 0:
            return xv.sum() * 0.0
        err = 1.0 - xv * (2.0 * tv - 1.0)
        es, perm = torch.sort(err, dim=0, descending=True)
        ts = tv[perm]
        gts = ts.sum()
        jac = 1.0 - (gts - ts.cumsum(0)) / (gts + (1.0 - ts).cumsum(0))
        if ts.numel() > 1:
            jac[1:] = jac[1:] - jac[:-1].clone()
        return torch.dot(F.relu(es), jac)
    if per_image:
        ls = [flat(x[n].reshape(-1)[valid[n].reshape(-1)], t[n].reshape(-1)[valid[n].reshape(-1)])
              for n in range(x.shape[0])]
        return sum(ls) / len(ls)
    return flat(x.reshape(-1)[valid.reshape(-1)], t.reshape(-1)[valid.reshape(-1)])


def crosscheck(case, x, t, m, loss, grad):
    """Ours equals Berman's for the mean, wherever every image has a valid
    pixel (Berman counts one without as 0); the gradient too when no two
    errors are equal (Berman's sort has no tie rule)."""
    o = dict(DEFAULTS, **case.opts)
    if o.get("reduction", "mean") != "mean":
        return
    valid = np.ones(x.shape, dtype=bool) if m is None else np.broadcast_to(m > 0, x.shape)
    if o.get("ignore_index") is not None:  # Berman's `ignore`: those elements leave
        ii = float(o["ignore_index"])
        valid = valid & (t != ii)
        t = np.where(t == ii, 0.0, t)
    if o["per_image"] and not all(valid[n].any() for n in range(x.shape[0])):
        return
    if not valid.any():
        return
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    tt = torch.tensor(t.astype(np.float64))
    b = berman_hinge(xt, tt, torch.tensor(np.ascontiguousarray(valid)), o["per_image"])
    expect_close("%s: Berman's lovasz_hinge value" % case.slug, float(b), loss, rtol=1e-12, atol=1e-15)
    err = 1.0 - x.astype(np.float64) * (2.0 * t.astype(np.float64) - 1.0)
    ev = err[valid]
    if len(np.unique(ev)) == len(ev) and b.requires_grad:
        b.backward()
        expect_close("%s: Berman's lovasz_hinge gradient" % case.slug, xt.grad.numpy(), grad,
                     rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# Edits
# ---------------------------------------------------------------------------
def grid_scores(values):
    """Scores drawn from a few values only: many exact ties, also between
    a positive and a negative (x = 0.5, t = 1 and x = -0.5, t = 0 both
    have error 0.5)."""
    def f(c):
        c.x[...] = rnd32(c.R.choice(values, c.x.shape))
    return f


def target_all(n, v):
    def f(c):
        c.t[n] = v
    return f


def margins(c):
    """Every margin x (2t - 1) at least 1: every error <= 0."""
    s = 2.0 * c.t.astype(np.float64) - 1.0
    c.x[...] = rnd32(s * (1.0 + np.abs(c.x)))


def some_on_margin(c):
    """A few scores exactly on the margin (e = 0: the hinge's kink, where
    the gradient is 0)."""
    flat = c.x.reshape(-1)
    tf = c.t.reshape(-1)
    for k in c.R.choice(flat.size, 6, replace=False):
        flat[k] = np.float32(2.0 * tf[k] - 1.0)


def scale_scores(k):
    def f(c):
        c.x[...] = rnd32(c.x * k)
    return f


def cases():
    LG = "logits"
    grid = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
    return [
        Case("2d-default", "real scores, per_image true (the default)",
             {}, (2, 1, 5, 6), xkind=LG),
        Case("2d-per-batch", "per_image false: one hinge over the batch",
             {"per_image": False}, (2, 1, 5, 6), xkind=LG),
        Case("sum", "reduction sum over images",
             {"reduction": "sum"}, (3, 1, 4, 5), xkind=LG),
        Case("none-per-image", "reduction none: one value per image, (N, 1)",
             {"reduction": "none"}, (3, 1, 4, 5), xkind=LG),
        Case("none-per-batch", "reduction none with per_image false: (1, 1)",
             {"reduction": "none", "per_image": False}, (3, 1, 4, 5), xkind=LG),
        Case("pixel-mask", "an (N,1,S) mask: masked pixels take no part",
             {}, (2, 1, 6, 6), xkind=LG, mask="pix"),
        Case("masked-image", "image 2 fully masked: it takes no part in the mean",
             {}, (3, 1, 4, 5), xkind=LG, mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("all-masked", "everything masked: 0 with gradient 0",
             {}, (2, 1, 4, 5), xkind=LG, mask="pix", edits=[mask_all], expect=expect_zero),
        Case("empty-target", "image 2 has an empty target (G = 0: L = max error)",
             {}, (2, 1, 5, 5), xkind=LG, edits=[target_all(1, 0.0)]),
        Case("full-target", "image 1 is all target",
             {}, (2, 1, 5, 5), xkind=LG, edits=[target_all(0, 1.0)]),
        Case("ties", "scores from 7 values: exact ties, across targets too, broken by index",
             {}, (2, 1, 6, 7), xkind=LG, edits=[grid_scores(grid)]),
        Case("ties-per-batch", "ties over the batch",
             {"per_image": False}, (3, 1, 5, 5), xkind=LG, edits=[grid_scores(grid)]),
        Case("all-margins", "every margin >= 1: loss 0, gradient 0",
             {}, (2, 1, 4, 6), xkind=LG, edits=[margins], expect=expect_zero),
        Case("on-margin", "some errors exactly 0: the kink of max(e, 0), gradient 0 there",
             {}, (2, 1, 5, 6), xkind=LG, edits=[some_on_margin]),
        Case("3d", "3-D input",
             {}, (2, 1, 3, 4, 5), xkind=LG),
        Case("1d", "1-D input, three images",
             {}, (3, 1, 17), xkind=LG),
        Case("soft-targets", "targets in [0, 1]: e = 1 - x (2t - 1), G = Σ t",
             {}, (2, 1, 5, 6), xkind=LG, target="soft"),
        Case("large-scores", "scores of |x| up to 80",
             {}, (2, 1, 4, 5), xkind=LG, edits=[scale_scores(20.0)]),
        Case("per-batch-masked", "per_image false, mask, image 1 fully masked",
             {"per_image": False}, (3, 1, 4, 5), xkind=LG, mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("sum-edge-images", "reduction sum: an empty target and an all-masked image",
             {"reduction": "sum"}, (4, 1, 4, 4), xkind=LG, mask="pix",
             edits=[target_all(1, 0.0), mask_sample(2)],
             expect=both(expect_grad_zero_sample(2))),
        Case("probabilities", "scores that happen to lie in [0, 1]",
             {}, (2, 1, 5, 6), xkind="probs", edits=[set_x(lambda c: c.x)]),
    ]


def guard(case, x, t, m):
    check(x.shape[1] == 1, "%s: lovasz_hinge needs C = 1" % case.slug)
