"""Golden cases of bce: spec/golden/bce.json, in this order."""
import numpy as np

from ..case import (Case, expect_grad_zero_sample, expect_zero, large_logits, mask_all,
                    mask_sample, NON, plant_elements, scale_target, set_x, SIG, special_probs)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"pos_weight": 1.0, "label_smoothing": 0.0}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1 binary target, all defaults but the activation",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (default \"none\"), probabilities in (0,1)",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-multilabel-weight-sum", "C=3 multi-label with class weights, reduction sum",
             {"activation": SIG, "weight": [1.0, 2.0, 0.5], "reduction": "sum"}, (2, 3, 4, 5)),
        Case("sigmoid-3d-pixmask", "3-D input with an (N,1,S) mask; mean over the N*C*M' valid elements",
             {"activation": SIG}, (2, 2, 3, 4, 4), mask="pix"),
        Case("sigmoid-1d-posweight", "1-D spatial input (N,C,L), pos_weight 3",
             {"activation": SIG, "pos_weight": 3.0}, (3, 1, 12)),
        Case("sigmoid-posweight-auto-mask", "pos_weight \"auto\" from the valid elements of the batch",
             {"activation": SIG, "pos_weight": "auto"}, (2, 1, 5, 6), mask="pix", tfrac=0.25),
        Case("sigmoid-posweight-auto-small-sum", "pos_weight \"auto\" with soft targets summing below 1: max(sum t, 1) = 1",
             {"activation": SIG, "pos_weight": "auto", "reduction": "sum"}, (2, 1, 4, 4), target="soft",
             edits=[scale_target(0.01)]),
        Case("sigmoid-posweight-auto-nobg", "pos_weight \"auto\" counts channels 1..C-1 only when include_background=false",
             {"activation": SIG, "pos_weight": "auto", "include_background": False}, (2, 3, 3, 4), mask="full", tfrac=0.3),
        Case("none-exact-0-1-below-eps-sum", "probabilities exactly 0 and 1, below eps and within eps of 1 (clamped logs)",
             {"activation": NON, "reduction": "sum"}, (2, 1, 4, 5), edits=[special_probs()]),
        Case("none-eps-1e-3", "eps = 1e-3 with probabilities below 1e-3 and above 1-1e-3",
             {"activation": NON, "eps": 1e-3}, (2, 2, 3, 4),
             edits=[set_x(lambda c: np.where(c.R.random(c.x.shape) < 0.3,
                                             np.where(c.R.random(c.x.shape) < 0.5, c.x * 1e-3 * 0.9, 1 - c.x * 1e-3 * 0.9),
                                             c.x))]),
        Case("sigmoid-none-fullmask", "reduction none: m*l in x's shape, mask of x's shape differing per channel",
             {"activation": SIG, "reduction": "none"}, (2, 2, 4, 5), mask="full"),
        Case("sigmoid-none-nobg-weight-posweight", "reduction none: class weights not applied, pos_weight applied, channel 0 zero (include_background=false)",
             {"activation": SIG, "reduction": "none", "include_background": False, "weight": [4.0, 2.0, 0.5], "pos_weight": 2.0},
             (2, 3, 3, 4)),
        Case("sigmoid-nobg-zero-weight", "include_background=false, C=3, a zero class weight; the mean divides by the valid count of channels 1..2",
             {"activation": SIG, "include_background": False, "weight": [3.0, 0.0, 1.5]}, (2, 3, 4, 5), mask="pix"),
        Case("sigmoid-labelmap", "C=3 with a label-map target (N,1,S): its one-hot",
             {"activation": SIG}, (2, 3, 4, 5), target="labels"),
        Case("sigmoid-soft-targets", "soft targets in [0,1]",
             {"activation": SIG}, (2, 2, 5, 4), target="soft"),
        Case("sigmoid-large-logits", "|x| in [30, 80]: stable log-sigmoid, right and wrong confident predictions",
             {"activation": SIG, "reduction": "sum"}, (2, 1, 4, 6), edits=[large_logits()]),
        Case("sigmoid-masked-sample", "sample 1 fully masked: no part in the mean, gradient 0 there",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-all-masked", "everything masked: a mean over nothing is 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-3d-fullmask-posweight-sum", "3-D, activation none, full-shape mask, pos_weight 0.5, reduction sum",
             {"activation": NON, "pos_weight": 0.5, "reduction": "sum"}, (2, 2, 2, 3, 4), mask="full", target="soft"),
        Case("sigmoid-unused-shared-options", "batch and smooth are shared options that bce accepts and ignores",
             {"activation": SIG, "batch": True, "smooth": 0.5}, (2, 1, 4, 4)),
        Case("none-labelmap-weight-mean", "activation none, C=2 label map, class weights",
             {"activation": NON, "weight": [0.25, 2.0]}, (3, 2, 3, 4), target="labels"),
        Case("sigmoid-label-smoothing", "label_smoothing 0.1: targets t (1 - 0.1) + 0.1/2",
             {"activation": SIG, "label_smoothing": 0.1}, (2, 1, 5, 6)),
        Case("none-label-smoothing-posweight-auto-mask", "label_smoothing 0.3 with pos_weight \"auto\" (counted on the target as given) and a mask",
             {"activation": NON, "label_smoothing": 0.3, "pos_weight": "auto"}, (2, 2, 4, 5), mask="pix", tfrac=0.2),
        Case("sigmoid-label-smoothing-labelmap-none", "label_smoothing 0.05 on a C=3 label map, reduction none",
             {"activation": SIG, "label_smoothing": 0.05, "reduction": "none", "weight": [1.0, 2.0, 0.5]}, (2, 3, 3, 4),
             target="labels"),
        Case("sigmoid-ignore-elements", "ignore_index 7 on single elements of a target of x's shape (not whole pixels)",
             {"activation": SIG, "ignore_index": 7, "pos_weight": "auto"}, (2, 3, 4, 5), mask="pix",
             edits=[plant_elements(7)]),
        Case("sigmoid-ignore-label-smoothing-sum", "ignore_index 1 (ignoring the positives) with label_smoothing 0.2, reduction sum",
             {"activation": SIG, "ignore_index": 1, "label_smoothing": 0.2, "reduction": "sum"}, (2, 2, 4, 4)),
    ]
