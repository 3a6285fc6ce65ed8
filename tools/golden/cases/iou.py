"""Golden cases of iou: spec/golden/iou.json, in this order."""
from ..case import (Case, empty_class, empty_sample, expect_entries_small,
                    expect_grad_zero_sample, expect_zero, large_logits, mask_all, mask_sample,
                    NON, SIG, SMX, ties)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"smooth": 1e-6, "empty": "none", "soft_label": False}


def cases():
    return [
        Case("sigmoid-2d-default", "C=1, defaults (smooth 1e-6)",
             {"activation": SIG}, (2, 1, 5, 6)),
        Case("none-2d-default", "activation omitted (\"none\")",
             {}, (2, 1, 5, 6)),
        Case("softmax-labelmap", "C=3 softmax with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("none-empty-complement", "empty=\"complement\": sample 1 has an empty target and is scored on 1-p, 1-t",
             {"activation": NON, "empty": "complement", "reduction": "none"}, (2, 1, 4, 5),
             edits=[lambda c: c.t.__setitem__(1, 0.0)]),
        Case("none-empty-complement-perfect", "empty=\"complement\": an empty target with an empty prediction scores exactly 0",
             {"activation": NON, "empty": "complement"}, (2, 1, 4, 4), edits=[empty_sample(0)]),
        Case("softmax-complement-batch", "empty=\"complement\" with batch=true: class 2 absent from the whole batch",
             {"activation": SMX, "empty": "complement", "batch": True, "smooth": 1e-3}, (2, 3, 3, 4),
             target="labels", edits=[empty_class(0, 2, pred=False), empty_class(1, 2, pred=False)]),
        Case("sigmoid-complement-mask", "empty=\"complement\", sigmoid, (N,1,S) mask, C=2 with one empty (n,c)",
             {"activation": SIG, "empty": "complement"}, (2, 2, 4, 4), mask="pix",
             edits=[empty_class(1, 1, pred=False)]),
        Case("sigmoid-smooth1", "smooth 1",
             {"activation": SIG, "smooth": 1.0}, (2, 2, 4, 4)),
        Case("softmax-weight-nobg", "class weights with include_background=false",
             {"activation": SMX, "weight": [9.0, 1.0, 3.0], "include_background": False}, (2, 3, 4, 4),
             target="labels"),
        Case("softmax-3d-batch", "3-D softmax, batch=true",
             {"activation": SMX, "batch": True}, (2, 3, 2, 3, 3), target="labels"),
        Case("none-soft-label", "soft_label=true with soft targets and ties p == t",
             {"activation": NON, "soft_label": True}, (2, 2, 4, 4), target="soft", edits=[ties(0.2)]),
        Case("none-empty-empty", "empty target and empty prediction with empty=\"none\": L ~ 0, not NaN",
             {"activation": NON, "reduction": "none"}, (2, 2, 3, 4), edits=[empty_sample(0)],
             expect=expect_entries_small((0, 0), (0, 1), tol=1e-15)),
        Case("sigmoid-none-reduction", "reduction none, C=3, full mask",
             {"activation": SIG, "reduction": "none"}, (2, 3, 3, 4), mask="full"),
        Case("sigmoid-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SIG, "weight": [0.0, 2.0], "reduction": "sum"}, (2, 2, 4, 5)),
        Case("softmax-3d-fullmask", "3-D softmax with a channel-identical full mask",
             {"activation": SMX}, (2, 2, 2, 3, 4), target="onehot", mask="fullsame"),
        Case("sigmoid-1d", "1-D spatial input (N,C,L)",
             {"activation": SIG}, (3, 2, 10)),
        Case("sigmoid-masked-sample", "sample 0 fully masked: no part in the mean",
             {"activation": SIG}, (2, 1, 4, 5), mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-large-logits", "softmax with |x| in [30, 80]",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("sigmoid-smooth-nr-dr", "smooth_nr 0.5, smooth_dr 1",
             {"activation": SIG, "smooth_nr": 0.5, "smooth_dr": 1.0}, (2, 2, 3, 4)),
        Case("sigmoid-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SIG}, (2, 1, 3, 4), mask="pix", edits=[mask_all], expect=expect_zero),
    ]
