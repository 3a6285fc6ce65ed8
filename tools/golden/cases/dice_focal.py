"""Golden cases of dice_focal: spec/golden/dice_focal.json, in this order."""
from ..case import (Case, empty_sample, expect_grad_zero_sample, expect_zero,
                    large_logits, mask_all, mask_sample, NON, SIG, SMX, special_probs)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"lambda": 1.0, "alpha": False, "gamma": 2.0, "smooth": 1.0, "squared": False,
            "complement": False, "soft_label": False, "label_smoothing": 0.0}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1, dice + focal (lambda 1, focal alpha false, gamma 2)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "softmax with a C=3 label map: dice + softmax focal",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-lambda0.5", "lambda 0.5",
             {"activation": SIG, "lambda": 0.5}, (2, 2, 4, 4)),
        Case("sigmoid-gamma0", "gamma 0 (focal = bce)",
             {"activation": SIG, "gamma": 0.0}, (2, 2, 4, 4)),
        Case("sigmoid-gamma0.5-alpha0.25", "gamma 0.5, alpha 0.25",
             {"activation": SIG, "gamma": 0.5, "alpha": 0.25}, (2, 2, 4, 4)),
        Case("softmax-gamma3.5-alpha-list", "softmax gamma 3.5 with an alpha list",
             {"activation": SMX, "gamma": 3.5, "alpha": [0.2, 0.5, 0.3]}, (2, 3, 4, 4), target="labels"),
        Case("softmax-weight-nobg", "weight and include_background=false go to both parts",
             {"activation": SMX, "weight": [1.0, 3.0, 0.5], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("sigmoid-mask-masked-sample", "(N,1,S) mask with sample 0 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-batch", "batch=true (dice part)",
             {"activation": SMX, "batch": True}, (2, 3, 3, 4), target="labels"),
        Case("sigmoid-sum", "reduction sum",
             {"activation": SIG, "reduction": "sum", "lambda": 0.8}, (2, 2, 3, 4)),
        Case("softmax-3d-fullmask", "3-D softmax with a channel-identical full mask",
             {"activation": SMX}, (2, 3, 2, 3, 3), target="labels", mask="fullsame"),
        Case("sigmoid-1d", "1-D spatial input",
             {"activation": SIG, "gamma": 1.0}, (3, 1, 12)),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 1, 4, 5), edits=[large_logits()]),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("none-special-gamma0.5", "activation none with exact 0/1 and below-eps probabilities, gamma 0.5",
             {"activation": NON, "gamma": 0.5}, (2, 1, 4, 5), edits=[special_probs(8)]),
        Case("sigmoid-smooth-soft-label", "smooth 0.1 and soft_label with soft targets",
             {"activation": SIG, "smooth": 0.1, "soft_label": True}, (2, 2, 4, 4), target="soft"),
        Case("none-squared", "squared=true (dice part), activation none",
             {"activation": NON, "squared": True}, (2, 2, 3, 4)),
        Case("sigmoid-empty-empty", "sample 1 empty target and (nearly) empty prediction",
             {"activation": SIG}, (2, 1, 4, 5), edits=[empty_sample(1)]),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("softmax-label-smoothing", "label_smoothing 0.1 smooths the focal part's target only (K = C); dice sees the labels",
             {"activation": SMX, "label_smoothing": 0.1}, (2, 3, 4, 5), target="labels"),
    ]
