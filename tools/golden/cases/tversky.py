"""Golden cases of tversky: spec/golden/tversky.json, in this order."""
from ..case import (Case, empty_sample, expect_entries_small, expect_grad_zero_sample,
                    expect_zero, large_logits, mask_all, mask_sample, NON, SIG, SMX, ties)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"alpha": 0.3, "beta": 0.7, "smooth": 1e-5, "soft_label": False}


def cases():
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
