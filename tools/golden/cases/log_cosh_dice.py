"""Golden cases of log_cosh_dice: spec/golden/log_cosh_dice.json, in this order.

log_cosh_dice is log(cosh(L)) of each (n, c) dice term L (docs/losses.md,
"Newer losses"), then reduced like dice.  Jadon 2020 (the SemSegLoss code)
applies log cosh to the dice loss after its mean over the batch; the two agree
for one (n, c), which selfcheck() checks against a float64 rendering of that
code."""
import math

import numpy as np
import torch

from ..case import Case, NON, set_x, SIG
from ..common import DT, check, expect_close, rnd32, smooth_pair
from ..reference import region_loss
from . import dice


# The defaults of docs/losses.md (the contract): dice's, written here apart
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
    """dice's cases (log_cosh_dice takes dice's options, and every expectation
    of theirs, a 0 or a zero gradient, holds for log cosh too), then its own."""
    return dice.cases() + [
        Case("none-near-perfect", "prediction close to the target: dice terms near 0, log cosh about L^2/2",
             {"activation": NON, "reduction": "none"}, (2, 2, 4, 5),
             edits=[set_x(lambda c: np.clip(c.t + (c.R.random(c.t.shape) - 0.5) * 0.02, 0.0, 1.0))]),
        Case("sigmoid-1d-batch", "1-D, batch=true, C=1: the paper's log cosh of the batch's dice loss",
             {"activation": SIG, "batch": True}, (3, 1, 12)),
    ]
