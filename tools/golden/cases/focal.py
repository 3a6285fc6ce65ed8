"""Golden cases of focal: spec/golden/focal.json, in this order."""
from ..case import (Case, expect_grad_zero_sample, expect_zero, large_logits, mask_all,
                    mask_sample, NON, plant_elements, SIG, SMX, special_probs)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"alpha": 0.25, "gamma": 2.0, "label_smoothing": 0.0}  # alpha: false with softmax (SOFTMAX_DEFAULTS)
SOFTMAX_DEFAULTS = {"alpha": False}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (alpha 0.25, gamma 2) with sigmoid",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-default", "activation omitted (\"none\"): alpha 0.25, gamma 2",
             {}, (2, 1, 5, 6)),
        Case("sigmoid-gamma0-alpha-false", "gamma 0 and alpha false: equals bce",
             {"activation": SIG, "gamma": 0.0, "alpha": False}, (2, 2, 4, 4)),
        Case("sigmoid-gamma0.5-alpha0.5", "gamma 0.5, alpha 0.5",
             {"activation": SIG, "gamma": 0.5, "alpha": 0.5}, (2, 2, 4, 5)),
        Case("sigmoid-gamma1-alpha0.75-sum", "gamma 1, alpha 0.75, reduction sum",
             {"activation": SIG, "gamma": 1.0, "alpha": 0.75, "reduction": "sum"}, (2, 1, 6, 5)),
        Case("sigmoid-gamma3.5-soft", "gamma 3.5 with soft targets",
             {"activation": SIG, "gamma": 3.5}, (2, 2, 4, 4), target="soft"),
        Case("none-gamma0.5-exact-special", "activation none, gamma 0.5: p exactly 0/1 (1-p_t = 0, derivative taken 0), p below eps",
             {"activation": NON, "gamma": 0.5}, (2, 1, 4, 5), edits=[special_probs()]),
        Case("none-gamma2-special-sum", "activation none, gamma 2, alpha 0.25: exact 0/1, below eps, reduction sum",
             {"activation": NON, "reduction": "sum"}, (2, 2, 3, 4), target="soft", edits=[special_probs()]),
        Case("softmax-labelmap-default", "softmax (alpha false, gamma 2 by default), C=3 label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-alpha-list-gamma1-weight", "softmax with alpha a list of C, gamma 1 and class weights",
             {"activation": SMX, "alpha": [0.25, 0.75, 0.5], "gamma": 1.0, "weight": [1.0, 2.0, 0.5]},
             (2, 3, 4, 4), target="labels"),
        Case("softmax-gamma0.5-onehot-pixmask", "softmax gamma 0.5, one-hot target, (N,1,S) mask",
             {"activation": SMX, "gamma": 0.5}, (2, 3, 4, 5), target="onehot", mask="pix"),
        Case("softmax-3d-nobg", "3-D softmax, C=4, include_background=false",
             {"activation": SMX, "include_background": False}, (2, 4, 2, 3, 3), target="labels"),
        Case("softmax-none-reduction", "softmax, reduction none: (N,1,S), alpha applied, class weights not",
             {"activation": SMX, "reduction": "none", "alpha": [0.5, 0.2, 0.9], "weight": [3.0, 1.0, 1.0]},
             (2, 3, 3, 4), target="softdist", mask="fullsame"),
        Case("sigmoid-none-reduction-fullmask", "sigmoid, reduction none: m*l in x's shape, alpha applied, weights not",
             {"activation": SIG, "reduction": "none", "weight": [2.0, 0.5]}, (2, 2, 3, 4), mask="full"),
        Case("sigmoid-nobg-zero-weight", "sigmoid, include_background=false, C=3, a zero weight",
             {"activation": SIG, "include_background": False, "weight": [1.0, 0.0, 2.0], "gamma": 3.5},
             (2, 3, 4, 4), mask="pix"),
        Case("sigmoid-large-logits-gamma0.5", "|x| in [30,80] with gamma 0.5: tiny 1-p_t computed stably",
             {"activation": SIG, "gamma": 0.5, "reduction": "sum"}, (2, 1, 4, 6), edits=[large_logits()]),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX, "gamma": 2.0}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-3d-labelmap", "3-D sigmoid with a C=3 label map (one-hot)",
             {"activation": SIG}, (2, 3, 2, 3, 4), target="labels"),
        Case("sigmoid-1d-masked-sample", "1-D, sample 2 fully masked",
             {"activation": SIG, "alpha": 0.4}, (3, 1, 12), mask="pix", edits=[mask_sample(2)],
             expect=expect_grad_zero_sample(2)),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 2, 3, 3), mask="full", edits=[mask_all], expect=expect_zero),
        Case("sigmoid-alpha0", "alpha 0 (a number, not false): positives weigh 0",
             {"activation": SIG, "alpha": 0.0}, (2, 1, 4, 5)),
        Case("softmax-gamma3.5-soft-sum", "softmax gamma 3.5, soft targets, reduction sum",
             {"activation": SMX, "gamma": 3.5, "reduction": "sum"}, (2, 3, 4, 4), target="softdist"),
        Case("sigmoid-label-smoothing", "label_smoothing 0.1 (K = 2): alpha_t and p_t read the smoothed target too",
             {"activation": SIG, "label_smoothing": 0.1}, (2, 2, 4, 5)),
        Case("softmax-label-smoothing-alpha", "softmax, label_smoothing 0.2 (K = C), alpha a list, gamma 1",
             {"activation": SMX, "label_smoothing": 0.2, "alpha": [0.25, 0.75, 0.5], "gamma": 1.0}, (2, 3, 4, 4),
             target="labels"),
        Case("none-label-smoothing-sum", "activation none, label_smoothing 0.4, gamma 0.5, reduction sum",
             {"activation": NON, "label_smoothing": 0.4, "gamma": 0.5, "reduction": "sum"}, (2, 1, 5, 4)),
        Case("sigmoid-ignore-elements-none", "ignore_index 3 on single elements, reduction none: 0 there",
             {"activation": SIG, "ignore_index": 3, "reduction": "none"}, (2, 2, 3, 4), edits=[plant_elements(3)]),
    ]
