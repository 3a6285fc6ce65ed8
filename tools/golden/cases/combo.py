"""Golden cases of combo: spec/golden/combo.json, in this order.

combo = alpha * wce + (1 - alpha) * (1 - dice coefficient), wce the mean over
the elements of -[beta t log p + (1 - beta)(1 - t) log(1 - p)]
(docs/losses.md, "Newer losses"; Taghanaki et al. 2019 plus the constant
1 - alpha, as bce_dice).  Its own references here: the registry's preset
weighs its parts by 1 - alpha and beta, which the generic sum of parts does
not know."""
import math

import numpy as np
import torch

from ..case import (Case, empty_sample, expect_grad_zero_sample, expect_zero, large_logits,
                    mask_all, mask_sample, NON, SIG, special_probs)
from ..common import DT, check, expect_close, rnd32, smooth_pair
from ..reference import Act, bcast, class_vectors, reduce_elements, region_loss


# The defaults of docs/losses.md (the contract), apart from the C registry;
# pos_weight and label_smoothing are refused (beta weighs the positive term; the
# contract defines combo on the targets as given) and keep their bce part's
# defaults in the registry's listing, unused.
DEFAULTS = {"alpha": 0.5, "beta": 0.5, "smooth": 1.0, "squared": False, "complement": False,
            "soft_label": False, "pos_weight": 1.0, "label_smoothing": 0.0}


def _dice_L(o):
    snr, sdr = smooth_pair(o, DEFAULTS["smooth"])

    def L(s):
        TP, SP, ST = s["TP"], s["SP"], s["ST"]
        if o["complement"]:
            TN = s["M"] - SP - ST + TP
            return (1.0 - (TP + snr) / (SP + ST + 2.0 * sdr)
                    - (TN + snr) / (2.0 * s["M"] - SP - ST + 2.0 * sdr))
        den = (s["SP2"] + s["ST2"]) if o["squared"] else (SP + ST)
        return 1.0 - (2.0 * TP + snr) / (den + sdr)
    return L


def torch_loss(x, t, m, o):
    """PyTorch float64 with autograd, from the contract."""
    act = o["activation"]
    check(act in ("none", "sigmoid"), "combo needs sigmoid or none")
    check(o["reduction"] != "none", "combination with reduction none")
    alpha, beta = float(o["alpha"]), float(o["beta"])
    check(0.0 <= alpha <= 1.0 and 0.0 <= beta <= 1.0, "alpha, beta in [0, 1]")
    a = Act(x, act, float(o["eps"]))
    inc, w = class_vectors(x, o)
    ell = -(beta * t * a.logp + (1.0 - beta) * (1.0 - t) * a.logq)
    wce = reduce_elements(ell, m * bcast(inc, x), bcast(w, x), o["reduction"])
    dice = region_loss(x, t, m, o, _dice_L(o))
    return alpha * wce + (1.0 - alpha) * dice


def scalar(sc):
    """Loops over the elements and the statistics of sc."""
    o = sc.o
    alpha, beta = float(o["alpha"]), float(o["beta"])

    def term(n, c, s):
        tt = sc.T[n, c, s]
        return -(beta * tt * sc.LP[n, c, s] + (1.0 - beta) * (1.0 - tt) * sc.LQ[n, c, s])
    wce = sc.elementwise(term)
    s = float(o["smooth"])
    snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))

    def L(d):
        if o["complement"]:
            tn = d["M"] - d["SP"] - d["ST"] + d["TP"]
            return (1 - (d["TP"] + snr) / (d["SP"] + d["ST"] + 2 * sdr)
                    - (tn + snr) / (2 * d["M"] - d["SP"] - d["ST"] + 2 * sdr))
        den = d["SP2"] + d["ST2"] if o["squared"] else d["SP"] + d["ST"]
        return 1 - (2 * d["TP"] + snr) / (den + sdr)
    return alpha * wce + (1 - alpha) * sc.region(L)


def published(p, t, ALPHA, CE_RATIO, smooth=1.0, e=1e-9):
    """A float64 rendering of the behaviour of the code that circulates with the
    paper (Keras, and its PyTorch ports): the flattened batch, one dice
    coefficient with smooth s in numerator and denominator, p clipped to
    [e, 1 - e], wce = mean of -ALPHA (t log p + (1 - ALPHA)(1 - t) log(1 - p))
    -- ALPHA multiplies both terms, so the negative one weighs ALPHA (1 - ALPHA),
    not the paper's 1 - ALPHA -- and CE_RATIO wce - (1 - CE_RATIO) dice."""
    p, t = p.reshape(-1).astype(np.float64), t.reshape(-1).astype(np.float64)
    d = (2.0 * float((p * t).sum()) + smooth) / (float(p.sum()) + float(t.sum()) + smooth)
    pc = np.clip(p, e, 1.0 - e)
    out = -(ALPHA * (t * np.log(pc) + (1.0 - ALPHA) * (1.0 - t) * np.log(1.0 - pc)))
    return CE_RATIO * float(out.mean()) - (1.0 - CE_RATIO) * d


def selfcheck(R):
    """The published code equals k (combo(alpha, beta) - (1 - alpha)) with
    beta = 1/(2 - ALPHA), alpha = r/(r + 1 - CE_RATIO), r = CE_RATIO ALPHA
    (2 - ALPHA), k = r + 1 - CE_RATIO, on one sample and class or with
    batch = true and C = 1 (its dice is over the flattened batch), for p away
    from its clip."""
    n = 0
    R = np.random.default_rng(1208)
    for shape in ((1, 1, 6, 7), (3, 1, 5, 4)):
        p = rnd32(R.uniform(0.01, 0.99, shape))
        t = rnd32(R.random(shape) < 0.3)
        x = torch.tensor(p.astype(np.float64), dtype=DT)
        tt = torch.tensor(t.astype(np.float64), dtype=DT)
        for A, CR in ((0.5, 0.5), (1.0, 0.3), (0.8, 0.7), (0.2, 1.0)):
            r = CR * A * (2.0 - A)
            k = r + 1.0 - CR
            o = dict(DEFAULTS, activation="none", reduction="mean", batch=True, include_background=True,
                     eps=1e-7, alpha=r / k, beta=1.0 / (2.0 - A))
            ours = float(torch_loss(x, tt, torch.ones_like(x), o).item())
            expect_close("combo vs the published code %s ALPHA %g CE_RATIO %g" % (shape, A, CR),
                         k * (ours - (1.0 - o["alpha"])), published(p, t, A, CR), rtol=1e-12, atol=1e-14)
            n += 1
    return n


def cases():
    return [
        Case("sigmoid-2d-default", "C=1 binary, defaults (alpha 0.5, beta 0.5, smooth 1)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-beta1", "beta = 1: the negative term vanishes (-t log p only)",
             {"activation": SIG, "beta": 1.0}, (2, 1, 4, 6)),
        Case("sigmoid-beta0", "beta = 0: the positive term vanishes",
             {"activation": SIG, "beta": 0.0}, (2, 1, 4, 6)),
        Case("none-beta1-special", "beta = 1 with activation none, exact 0/1 and below-eps probabilities",
             {"activation": NON, "beta": 1.0}, (2, 1, 4, 5), edits=[special_probs(8)]),
        Case("sigmoid-alpha0", "alpha = 0: dice alone",
             {"activation": SIG, "alpha": 0.0, "beta": 0.7}, (2, 1, 4, 5)),
        Case("sigmoid-alpha1", "alpha = 1: the weighted cross-entropy alone",
             {"activation": SIG, "alpha": 1.0, "beta": 0.3}, (2, 1, 4, 5)),
        Case("sigmoid-multilabel-weight-nobg", "C=3 multi-label, class weights, include_background=false",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5], "include_background": False, "beta": 0.8},
             (2, 3, 3, 4)),
        Case("sigmoid-labelmap", "C=3 label map target (its one-hot), sigmoid",
             {"activation": SIG, "alpha": 0.4}, (2, 3, 4, 4), target="labels"),
        Case("sigmoid-mask-masked-sample", "(N,1,S) mask with sample 1 fully masked",
             {"activation": SIG, "beta": 0.6}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("none-fullmask", "a per-channel mask of x's shape, activation none",
             {"activation": NON, "beta": 0.25}, (2, 2, 3, 5), mask="full"),
        Case("sigmoid-batch-squared", "batch=true and squared=true go to the dice part",
             {"activation": SIG, "batch": True, "squared": True, "beta": 0.9}, (2, 2, 4, 4)),
        Case("sigmoid-sum", "reduction sum for both parts",
             {"activation": SIG, "reduction": "sum", "alpha": 0.3}, (2, 2, 3, 4)),
        Case("none-soft-label", "soft targets with soft_label=true (dice part)",
             {"activation": NON, "soft_label": True}, (2, 1, 4, 5), target="soft"),
        Case("sigmoid-3d-smooth", "3-D with smooth 0.1",
             {"activation": SIG, "smooth": 0.1, "beta": 0.7}, (2, 1, 3, 4, 4)),
        Case("sigmoid-1d-batch", "1-D with batch=true: the paper's dice over the batch",
             {"activation": SIG, "batch": True}, (3, 1, 12)),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG, "beta": 0.8}, (2, 1, 4, 5), edits=[large_logits()]),
        Case("none-complement", "complement=true (C=1) in the dice part",
             {"activation": NON, "complement": True}, (2, 1, 4, 5)),
        Case("sigmoid-empty-empty", "sample 0 empty target and (nearly) empty prediction",
             {"activation": SIG}, (2, 1, 4, 5), edits=[empty_sample(0)]),
        Case("none-empty-targets", "every target empty, beta 1: only the dice part and no cross-entropy",
             {"activation": NON, "beta": 1.0}, (2, 1, 3, 4), tfrac=0.0),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
    ]
