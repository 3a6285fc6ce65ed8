"""Golden cases of sensitivity_specificity: spec/golden/sensitivity_specificity.json, in this order."""
from ..case import (Case, empty_sample, expect_entries_small, expect_grad_zero_sample,
                    expect_zero, large_logits, mask_all, mask_sample, NON, SIG, SMX)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"lambda": 0.05, "smooth": 1e-5}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (lambda 0.05, smooth 1e-5)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-lambda0.5", "lambda 0.5",
             {"activation": SIG, "lambda": 0.5}, (2, 2, 4, 4)),
        Case("none-lambda0", "lambda 0: only the specificity term",
             {"activation": NON, "lambda": 0.0}, (2, 2, 3, 4)),
        Case("none-lambda1", "lambda 1: only the sensitivity term",
             {"activation": NON, "lambda": 1.0}, (2, 2, 3, 4)),
        Case("sigmoid-smooth1", "smooth 1 in both denominators",
             {"activation": SIG, "smooth": 1.0}, (2, 2, 4, 4)),
        Case("sigmoid-smooth-dr", "smooth_dr 0.1 (and smooth_nr 5, accepted and unused)",
             {"activation": SIG, "smooth_dr": 0.1, "smooth_nr": 5.0}, (2, 2, 4, 4)),
        Case("softmax-3d-batch", "3-D softmax with batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 4), target="labels"),
        Case("softmax-weight-nobg", "class weights and include_background=false",
             {"activation": SMX, "weight": [1.0, 0.5, 2.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-none-reduction", "reduction none with a full per-channel mask",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [1.0, 0.0, 3.0], "reduction": "sum"}, (2, 3, 3, 4)),
        Case("none-empty-target", "sample 1 with an empty target (first term 0 / s)",
             {"activation": NON, "reduction": "none"}, (2, 1, 4, 5),
             edits=[lambda c: c.t.__setitem__(1, 0.0)]),
        Case("none-empty-empty", "empty target and prediction: L = 0",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(1)],
             expect=expect_entries_small((1, 0), (1, 1), tol=1e-15)),
        Case("sigmoid-masked-sample", "(N,1,S) mask, sample 1 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("softmax-1d", "1-D softmax",
             {"activation": SMX, "lambda": 0.3}, (3, 3, 10), target="labels"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 2, 3, 4), edits=[large_logits()]),
        Case("sigmoid-soft-targets", "soft targets",
             {"activation": SIG, "lambda": 0.2}, (2, 2, 4, 4), target="soft"),
        Case("softmax-fullmask-onehot", "softmax, one-hot target, channel-identical full mask",
             {"activation": SMX}, (2, 2, 4, 4), target="onehot", mask="fullsame"),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
    ]
