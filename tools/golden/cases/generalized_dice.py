"""Golden cases of generalized_dice: spec/golden/generalized_dice.json, in this order."""
from ..case import (Case, empty_class, empty_sample, expect_entries_small, expect_entry,
                    expect_grad_zero_sample, expect_zero, large_logits, mask_all, mask_sample,
                    NON, SIG, SMX)


# The defaults of ../shared/LOSSES.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"w_type": "square", "smooth": 1e-5}


def cases():
    return [
        Case("softmax-labelmap-default", "C=3 softmax, label map, defaults (w_type square, smooth 1e-5)",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("none-default", "activation omitted (\"none\"), C=2",
             {}, (2, 2, 4, 5)),
        Case("sigmoid-c1", "sigmoid with C=1",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("softmax-simple", "w_type simple",
             {"activation": SMX, "w_type": "simple"}, (2, 3, 4, 4), target="labels"),
        Case("softmax-uniform", "w_type uniform",
             {"activation": SMX, "w_type": "uniform"}, (2, 3, 4, 4), target="labels"),
        Case("softmax-empty-class", "class 2 absent from sample 0's target: it takes the largest finite w of the sample",
             {"activation": SMX, "reduction": "none"}, (2, 3, 4, 4), target="labels",
             edits=[empty_class(0, 2, pred=False)]),
        Case("sigmoid-simple-empty-class", "w_type simple, class 0 absent from sample 1 (prediction not empty)",
             {"activation": SIG, "w_type": "simple"}, (2, 2, 4, 4), edits=[empty_class(1, 0, pred=False)]),
        Case("none-all-empty-square", "sample 1: every class empty -> w = 0, L = 1 - s_nr/s_dr, gradient 0 (smooth_dr = 2 smooth_nr)",
             {"activation": NON, "smooth_nr": 1e-5, "smooth_dr": 2e-5, "reduction": "none"}, (2, 2, 3, 4),
             edits=[lambda c: c.t.__setitem__(1, 0.0)], expect=expect_entry((1, 0), 1.0 - 1e-5 / 2e-5)),
        Case("sigmoid-all-empty-mean", "sample 0 all classes empty (square): constant 0 with default smooth, gradient 0 there",
             {"activation": SIG}, (2, 2, 3, 4), edits=[lambda c: c.t.__setitem__(0, 0.0)],
             expect=expect_grad_zero_sample(0)),
        Case("none-empty-empty", "empty target and empty prediction: L = 0",
             {"activation": NON, "reduction": "none", "w_type": "simple"}, (2, 2, 3, 4), edits=[empty_sample(0)],
             expect=expect_entries_small((0, 0), tol=1e-15)),
        Case("softmax-batch", "batch=true: one value for the batch, \"none\" shape (1,1)",
             {"activation": SMX, "batch": True, "reduction": "none"}, (2, 3, 3, 4), target="labels"),
        Case("softmax-batch-empty-in-one-sample", "batch=true with class 2 empty in sample 0 only (not empty over the batch)",
             {"activation": SMX, "batch": True}, (2, 3, 3, 4), target="labels", edits=[empty_class(0, 2, pred=False)]),
        Case("softmax-nobg", "include_background=false, C=4",
             {"activation": SMX, "include_background": False}, (2, 4, 3, 4), target="labels"),
        Case("softmax-3d-mask", "3-D softmax with an (N,1,S) mask",
             {"activation": SMX}, (2, 3, 2, 3, 4), target="labels", mask="pix"),
        Case("sigmoid-soft-sum", "soft targets, reduction sum",
             {"activation": SIG, "reduction": "sum"}, (2, 2, 4, 4), target="soft"),
        Case("softmax-1d-simple", "1-D softmax, w_type simple",
             {"activation": SMX, "w_type": "simple"}, (3, 3, 10), target="labels"),
        Case("sigmoid-masked-sample", "sample 1 fully masked: no part in the mean",
             {"activation": SIG}, (2, 2, 4, 4), mask="pix", edits=[mask_sample(1)],
             expect=expect_grad_zero_sample(1)),
        Case("sigmoid-fullmask-perchannel", "sigmoid with a per-channel full mask",
             {"activation": SIG, "w_type": "simple"}, (2, 2, 4, 4), mask="full"),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-smooth1-uniform", "smooth 1, w_type uniform",
             {"activation": SIG, "smooth": 1.0, "w_type": "uniform"}, (2, 2, 3, 4)),
        Case("uniform-all-empty", "w_type uniform, sample 1 every class empty -> w = 0, L = 1 - s_nr/s_dr, gradient 0",
             {"activation": SIG, "w_type": "uniform", "smooth_nr": 1e-5, "smooth_dr": 4e-5, "reduction": "sum"},
             (2, 2, 3, 4), edits=[lambda c: c.t.__setitem__(1, 0.0)], expect=expect_grad_zero_sample(1)),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
    ]
