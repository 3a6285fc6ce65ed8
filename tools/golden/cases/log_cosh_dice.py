"""Golden cases of log_cosh_dice: spec/golden/log_cosh_dice.json, in this order.

log_cosh_dice is log(cosh(L)) of each (n, c) dice term L (../shared/LOSSES.md,
"Newer losses"), then reduced like dice.  Jadon 2020 (the SemSegLoss code)
applies log cosh to the dice loss after its mean over the batch; the two agree
for one (n, c), which selfcheck() checks against a float64 rendering of that
code."""
import math

import numpy as np
import torch

from ..case import (Case, empty_class, empty_sample, expect_entries_small, expect_entries_zero,
                    expect_grad_zero_sample, expect_zero, large_logits, mask_all, mask_sample,
                    NON, perfect, set_x, SIG, SMX, ties)
from ..common import DT, check, expect_close, opt, rnd32, smooth_pair
from ..reference import region_loss


# The defaults of ../shared/LOSSES.md (the contract): dice's, written here apart
# from the C registry so that the references stay independent of it.
DEFAULTS = {"smooth": 1.0, "squared": False, "complement": False, "soft_label": False}


def torch_loss(x, t, m, o):
    """PyTorch float64: dice's term per (n, c), log(cosh(.)) of it, reduced."""
    snr, sdr = smooth_pair(o, DEFAULTS["smooth"])
    squared, complement = bool(o["squared"]), bool(o["complement"])
    if complement:
        check(x.shape[1] == 1 and not squared, "complement needs C = 1, no squared")

    def L(s):
        TP, SP, ST = s["TP"], s["SP"], s["ST"]
        if complement:
            TN = s["M"] - SP - ST + TP
            d = (1.0 - (TP + snr) / (SP + ST + 2.0 * sdr)
                 - (TN + snr) / (2.0 * s["M"] - SP - ST + 2.0 * sdr))
        else:
            den = (s["SP2"] + s["ST2"]) if squared else (SP + ST)
            d = 1.0 - (2.0 * TP + snr) / (den + sdr)
        return torch.log(torch.cosh(d))
    return region_loss(x, t, m, o, L)


def scalar(sc):
    """Loops: the statistics of sc, then the paper's log((e^L + e^-L) / 2)."""
    o = sc.o
    s = float(o["smooth"])
    snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))

    def L(d):
        if o["complement"]:
            tn = d["M"] - d["SP"] - d["ST"] + d["TP"]
            v = (1 - (d["TP"] + snr) / (d["SP"] + d["ST"] + 2 * sdr)
                 - (tn + snr) / (2 * d["M"] - d["SP"] - d["ST"] + 2 * sdr))
        else:
            den = d["SP2"] + d["ST2"] if o["squared"] else d["SP"] + d["ST"]
            v = 1 - (2 * d["TP"] + snr) / (den + sdr)
        return math.log((math.exp(v) + math.exp(-v)) / 2.0)
    return sc.region(L)


def jadon(p, t, smooth=1.0):
    """A float64 rendering of the published code's behaviour (SemSegLoss,
    log_cosh_dice_loss): the dice loss of the flattened batch, 1 - (2 Σpt + s)
    / (Σp + Σt + s), then log((e^x + e^-x) / 2)."""
    p, t = p.reshape(-1).astype(np.float64), t.reshape(-1).astype(np.float64)
    x = 1.0 - (2.0 * float((p * t).sum()) + smooth) / (float(p.sum()) + float(t.sum()) + smooth)
    return math.log((math.exp(x) + math.exp(-x)) / 2.0)


def selfcheck(R):
    """Against the published code where the definitions meet: one (n, c), or
    the batch with batch = true and C = 1; they differ (by design) for several
    samples, where the paper takes log cosh of the mean."""
    n = 0
    R = np.random.default_rng(1202)
    for shape, batch in (((1, 1, 6, 7), False), ((3, 1, 5, 4), True)):
        p = rnd32(R.random(shape))
        t = rnd32(R.random(shape) < 0.3)
        x = torch.tensor(p.astype(np.float64), dtype=DT)
        tt = torch.tensor(t.astype(np.float64), dtype=DT)
        o = dict(DEFAULTS, activation="none", reduction="mean", batch=batch, include_background=True)
        ours = float(torch_loss(x, tt, torch.ones_like(x), o).item())
        expect_close("log_cosh_dice vs the published code %s" % (shape,), ours, jadon(p, t), rtol=1e-12)
        n += 1
    return n


def cases():
    return [
        Case("sigmoid-2d-default", "C=1 binary, defaults (smooth 1)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-onehot-nobg", "one-hot target, include_background=false",
             {"activation": SMX, "include_background": False}, (2, 3, 4, 5), target="onehot"),
        Case("sigmoid-multilabel-weight", "multi-label sigmoid, class weights: mean = sum w L / sum w",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5]}, (2, 3, 4, 5)),
        Case("softmax-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SMX, "weight": [0.0, 1.5, 1.0], "reduction": "sum"}, (2, 3, 4, 4), target="labels"),
        Case("softmax-3d-batch", "3-D with batch=true: one statistic per class",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("sigmoid-squared", "squared=true: denominator SP2 + ST2 + s",
             {"activation": SIG, "squared": True}, (2, 2, 4, 5), target="soft"),
        Case("none-complement-empty-full", "complement=true (C=1): sample 1 perfect and empty, sample 2 perfect and full",
             {"activation": NON, "complement": True, "reduction": "none"}, (3, 1, 4, 5),
             edits=[perfect(1), empty_sample(1), set_x(lambda c: np.concatenate([c.x[:2], np.ones_like(c.x[2:])])),
                    lambda c: c.t.__setitem__(slice(2, 3), 1.0)],
             expect=expect_entries_small((1, 0), (2, 0), tol=1e-15)),
        Case("sigmoid-complement-batch-mask", "complement=true with batch=true and a mask, smooth 0.5",
             {"activation": SIG, "complement": True, "batch": True, "smooth": 0.5}, (2, 1, 4, 5), mask="pix"),
        Case("sigmoid-smooth-nr0-dr1e-5", "smooth_nr = 0, smooth_dr = 1e-5",
             {"activation": SIG, "smooth_nr": 0.0, "smooth_dr": 1e-5}, (2, 2, 4, 4), tfrac=0.5),
        Case("none-soft-label-ties", "soft_label=true, soft targets, some p exactly equal to t",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties()]),
        Case("none-near-perfect", "prediction close to the target: dice terms near 0, log cosh about L^2/2",
             {"activation": NON, "reduction": "none"}, (2, 2, 4, 5),
             edits=[set_x(lambda c: np.clip(c.t + (c.R.random(c.t.shape) - 0.5) * 0.02, 0.0, 1.0))]),
        Case("none-empty-empty", "sample 1: empty target and empty prediction -> 0 there, not NaN",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(1)],
             expect=expect_entries_small((1, 0), (1, 1), tol=1e-15)),
        Case("sigmoid-empty-class-mean", "sample 0 class 1 empty in target and (nearly) in prediction, mean",
             {"activation": SIG}, (2, 2, 4, 4), edits=[empty_class(0, 1)]),
        Case("sigmoid-masked-sample", "(N,1,S) mask, sample 1 fully masked: no part in the mean",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("softmax-all-masked", "everything masked: mean over nothing = 0, gradient 0",
             {"activation": SMX}, (2, 3, 3, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("softmax-none-batch", "reduction none with batch=true: shape (1,C)",
             {"activation": SMX, "reduction": "none", "batch": True}, (2, 3, 3, 4), target="labels"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]: dice terms near 1",
             {"activation": SIG}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("none-labelmap-nobg-fullmask", "activation none, C=3 label map, include_background=false, per-channel mask, none",
             {"activation": NON, "include_background": False, "reduction": "none"}, (2, 3, 3, 4),
             target="labels", mask="full", edits=[lambda c: c.m.__setitem__((1, 2), 0.0)],
             expect=expect_entries_zero((0, 0), (1, 0), (1, 2))),
        Case("sigmoid-1d-batch", "1-D, batch=true, C=1: the paper's log cosh of the batch's dice loss",
             {"activation": SIG, "batch": True}, (3, 1, 12)),
    ]
