"""Golden cases of bce_dice: spec/golden/bce_dice.json, in this order."""
from ..case import (Case, empty_sample, expect_grad_zero_sample, expect_zero,
                    large_logits, mask_all, mask_sample, NON, SIG, special_probs)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"bce_weight": 1.0, "dice_weight": 1.0, "pos_weight": 1.0, "smooth": 1.0, "squared": False,
            "complement": False, "soft_label": False, "label_smoothing": 0.0}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1, bce + dice with weights (1, 1)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-seed-form", "bce_weight 1e-3 (the seed's 1e-3*BCE - dice_coef, up to the constant -1)",
             {"activation": SIG, "bce_weight": 1e-3}, (2, 1, 5, 5)),
        Case("sigmoid-dice-weight0.5", "dice_weight 0.5, bce_weight 2",
             {"activation": SIG, "bce_weight": 2.0, "dice_weight": 0.5}, (2, 2, 4, 4)),
        Case("sigmoid-posweight", "pos_weight 3 goes to the bce part",
             {"activation": SIG, "pos_weight": 3.0}, (2, 1, 4, 6)),
        Case("sigmoid-posweight-auto", "pos_weight \"auto\" with a mask",
             {"activation": SIG, "pos_weight": "auto"}, (2, 1, 4, 6), mask="pix", tfrac=0.2),
        Case("sigmoid-weight-nobg", "weight and include_background=false go to both parts, C=3",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5], "include_background": False}, (2, 3, 3, 4)),
        Case("sigmoid-mask-masked-sample", "(N,1,S) mask with sample 1 fully masked",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-batch-squared", "batch=true and squared=true go to the dice part",
             {"activation": SIG, "batch": True, "squared": True}, (2, 2, 4, 4)),
        Case("sigmoid-sum", "reduction sum for both parts",
             {"activation": SIG, "reduction": "sum"}, (2, 2, 3, 4)),
        Case("none-soft-label", "soft targets with soft_label=true (dice part)",
             {"activation": NON, "soft_label": True}, (2, 1, 4, 5), target="soft"),
        Case("sigmoid-labelmap", "C=3 label map target",
             {"activation": SIG}, (2, 3, 4, 4), target="labels"),
        Case("sigmoid-3d-smooth", "3-D with smooth 0.1",
             {"activation": SIG, "smooth": 0.1}, (2, 1, 3, 4, 4)),
        Case("sigmoid-1d", "1-D spatial input",
             {"activation": SIG}, (3, 1, 12)),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 1, 4, 5), edits=[large_logits()]),
        Case("none-complement", "complement=true (C=1) in the dice part",
             {"activation": NON, "complement": True}, (2, 1, 4, 5)),
        Case("none-special-eps", "activation none with exact 0/1 and below-eps probabilities, eps 1e-6",
             {"activation": NON, "eps": 1e-6}, (2, 1, 4, 5), edits=[special_probs(8)]),
        Case("sigmoid-empty-empty", "sample 0 empty target and (nearly) empty prediction",
             {"activation": SIG}, (2, 1, 4, 5), edits=[empty_sample(0)]),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
        Case("sigmoid-label-smoothing", "label_smoothing 0.2 smooths the bce part's target only (K = 2); dice sees t",
             {"activation": SIG, "label_smoothing": 0.2, "pos_weight": "auto"}, (2, 2, 4, 5), mask="pix"),
    ]
