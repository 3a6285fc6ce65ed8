"""How a golden case is described and built: Case, the input builder, the
edits that plant edge cases in the random inputs, and the expectations
checked on the result.  The case lists themselves are in cases/."""
import numpy as np

from .common import GoldenError, check, expect_close, onehot_np, rnd32


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


def empty_pred(c, n, cl):
    """Sample n's prediction of class cl (about) empty: p = 0, or a logit of -40."""
    c.x[n, cl] = 0 if c.act == "none" else -40.0


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
            empty_pred(c, n, cl)
    return f


def empty_sample(n):
    def f(c):
        for cl in range(c.C):
            if c.labelmap:
                raise GoldenError("a label map cannot empty every class")
            c.t[n, cl] = 0
            empty_pred(c, n, cl)
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


# -- shorthands for the case lists ---------------------------------------------
SIG, SMX, NON = "sigmoid", "softmax", "none"


# -- ignore_index: a family of cases for every loss of the registry ------------
def plant_ignored(value, frac=0.25):
    """Sets the target of about frac of the pixels to value (every channel of
    a pixel: valid for every loss, the per-pixel ones included); the first
    pixel of each sample stays, so that no sample is ignored whole."""
    def f(c):
        N = c.t.shape[0]
        sp = c.t.shape[2:]
        sel = c.R.random((N,) + sp) < frac
        sel.reshape(N, -1)[:, 0] = False
        for n in range(N):
            c.t[n][:, sel[n]] = np.float32(value)
    return f


def plant_elements(value, frac=0.2):
    """Sets about frac of the target's elements (single elements, not whole
    pixels) to value."""
    def f(c):
        sel = c.R.random(c.t.shape) < frac
        sel.reshape(-1)[0] = False
        c.t[sel] = np.float32(value)
    return f


IGNORE_LABEL, IGNORE_DENSE = 255, -1


def ignore_family(name, base):
    """ignore_index cases derived from a loss's own list (its first case with a
    label map, its first with a target of x's shape): the same inputs, about a
    quarter of the pixels set to ignore_index (255 for a label map, -1 for a
    target of x's shape, both outside the target's range), and with a mask
    and reduction "none" (or "sum" where the loss has no "none")."""
    from . import registry
    has_none = registry.BY_NAME[name].get("none_shape") is not None
    out = []
    for kind, value in (("labels", IGNORE_LABEL), ("dense", IGNORE_DENSE)):
        pick = [c for c in base if (c.target == "labels") == (kind == "labels")]
        if not pick:
            continue
        b = pick[0]
        for variant in ("", "-mask"):
            opts = dict(b.opts, ignore_index=value)
            mask = b.mask
            if variant:
                mask = mask or "pix"
                opts["reduction"] = "none" if has_none else "sum"
            note = "ignore_index %d on about 1/4 of the pixels of case %s%s" % (
                value, b.slug, ", with a mask and reduction %s" % opts["reduction"] if variant else "")
            out.append(Case("ignore-%s%s" % (kind, variant), note, opts, b.shape, target=b.target, mask=mask,
                            xkind=b.xkind, edits=list(b.edits) + [plant_ignored(value)], xscale=b.xscale,
                            tfrac=b.tfrac, mfrac=b.mfrac))
    return out
