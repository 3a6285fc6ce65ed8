"""Golden cases of dice: spec/golden/dice.json, in this order."""
import numpy as np

from ..case import (Case, empty_class, empty_sample, expect_entries_small, expect_entries_zero,
                    expect_grad_zero_sample, expect_zero, large_logits, mask_all, mask_sample,
                    NON, perfect, set_x, SIG, SMX, ties)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"smooth": 1.0, "squared": False, "complement": False, "soft_label": False}


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
