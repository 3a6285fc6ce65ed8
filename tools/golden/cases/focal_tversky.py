"""Golden cases of focal_tversky: spec/golden/focal_tversky.json, in this order."""
from ..case import (Case, empty_sample, expect_entry, expect_grad_zero_sample, expect_zero,
                    large_logits, mask_all, mask_sample, NON, perfect, SIG, SMX, ties)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"alpha": 0.3, "beta": 0.7, "gamma": 0.75, "smooth": 1e-5, "soft_label": False}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (gamma 0.75, eps 1e-7, alpha 0.3, beta 0.7)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-gamma1", "gamma 1 (= tversky)",
             {"activation": SIG, "gamma": 1.0}, (2, 2, 4, 4)),
        Case("sigmoid-gamma2", "gamma 2",
             {"activation": SIG, "gamma": 2.0}, (2, 2, 4, 4)),
        Case("none-gamma0.5", "gamma 0.5",
             {"activation": NON, "gamma": 0.5}, (2, 2, 3, 4)),
        Case("sigmoid-gamma0", "gamma 0: every (n,c) that takes part scores 1, gradient 0",
             {"activation": SIG, "gamma": 0.0}, (2, 2, 3, 3)),
        Case("none-perfect-eps-1e-3", "eps 1e-3: sample 1 predicted perfectly (L = 0 -> eps^gamma, gradient 0 there)",
             {"activation": NON, "eps": 1e-3, "reduction": "none"}, (2, 1, 4, 5), edits=[perfect(1)],
             expect=expect_entry((1, 0), 1e-3 ** 0.75)),
        Case("none-empty-empty", "empty target and prediction in sample 0: L_tversky = 0 -> eps^gamma",
             {"activation": NON}, (2, 2, 3, 4), edits=[empty_sample(0)], expect=expect_grad_zero_sample(0)),
        Case("sigmoid-alpha0.7-beta0.3", "alpha 0.7, beta 0.3, gamma 1.5",
             {"activation": SIG, "alpha": 0.7, "beta": 0.3, "gamma": 1.5}, (2, 2, 4, 4)),
        Case("none-soft-label", "soft_label=true with soft targets and ties",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties(0.2)]),
        Case("softmax-3d-batch", "3-D softmax with batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("softmax-weight-nobg", "class weights and include_background=false",
             {"activation": SMX, "weight": [1.0, 0.5, 2.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-none-reduction", "reduction none with a full per-channel mask",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [0.0, 1.0, 3.0], "reduction": "sum"}, (2, 3, 3, 4)),
        Case("sigmoid-masked-sample", "sample 0 fully masked",
             {"activation": SIG}, (2, 1, 4, 5), mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-1d", "1-D softmax with a smooth of 1",
             {"activation": SMX, "smooth": 1.0}, (3, 3, 10), target="labels"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG, "gamma": 1.25}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-3d-smooth-nr-dr", "3-D activation none, smooth_nr 1e-4, smooth_dr 1e-2",
             {"activation": NON, "smooth_nr": 1e-4, "smooth_dr": 1e-2}, (2, 1, 3, 3, 4)),
    ]
