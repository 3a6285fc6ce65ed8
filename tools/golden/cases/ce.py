"""Golden cases of ce: spec/golden/ce.json, in this order."""
import numpy as np

from ..case import (Case, expect_grad_zero_sample, expect_zero, large_logits, mask_all,
                    mask_sample, NON, plant_ignored, set_x, SMX, special_probs)


# The defaults of docs/losses.md (the contract), written here apart from
# the C registry so that the references stay independent of it; the
# generator stops when the two disagree (registry.check_defaults).
DEFAULTS = {"label_smoothing": 0.0}


def cases():
    return [
        Case("softmax-2d-labelmap-default", "C=3 label map, defaults but the activation",
             {"activation": SMX}, (2, 3, 4, 5), target="labels"),
        Case("softmax-onehot", "one-hot target of x's shape",
             {"activation": SMX}, (2, 3, 4, 5), target="onehot"),
        Case("softmax-soft-targets", "probability-distribution targets (soft labels)",
             {"activation": SMX}, (2, 4, 3, 4), target="softdist"),
        Case("none-default-onehot", "activation omitted (\"none\"): probabilities that sum to 1 over C",
             {}, (2, 3, 4, 4), xkind="simplex", target="onehot"),
        Case("none-exact-0-1-below-eps-sum", "activation none with p exactly 0 and 1 and below eps, label map",
             {"activation": NON, "reduction": "sum"}, (2, 3, 3, 4), xkind="simplex", target="labels",
             edits=[special_probs()]),
        Case("softmax-weight-labelmap-mean", "class weights with a label map: the mean divides by the pixel count, not by sum w_y",
             {"activation": SMX, "weight": [0.2, 1.0, 3.0]}, (2, 3, 4, 5), target="labels"),
        Case("softmax-zero-weight-sum", "a zero class weight, reduction sum",
             {"activation": SMX, "weight": [1.0, 0.0, 2.5, 0.5], "reduction": "sum"}, (2, 4, 3, 4), target="labels"),
        Case("softmax-nobg", "include_background=false, C=4: c=0 dropped from the sum over c (softmax still over all C)",
             {"activation": SMX, "include_background": False}, (2, 4, 3, 4), target="labels"),
        Case("softmax-pixmask", "(N,1,S) mask with a label map",
             {"activation": SMX}, (2, 3, 4, 5), target="labels", mask="pix"),
        Case("softmax-3d-fullmask", "3-D, mask of x's shape identical across channels",
             {"activation": SMX}, (2, 3, 2, 3, 4), target="labels", mask="fullsame"),
        Case("softmax-none-reduction", "reduction none: m*l of shape (N,1,S)",
             {"activation": SMX, "reduction": "none"}, (2, 3, 4, 4), target="labels", mask="pix"),
        Case("softmax-none-nobg-weight", "reduction none ignores class weights; include_background=false drops c=0",
             {"activation": SMX, "reduction": "none", "include_background": False, "weight": [2.0, 3.0, 0.5]},
             (2, 3, 3, 4), target="softdist"),
        Case("softmax-1d", "1-D spatial input (N,C,L)",
             {"activation": SMX}, (3, 3, 10), target="labels"),
        Case("softmax-3d-sum", "3-D input, reduction sum",
             {"activation": SMX, "reduction": "sum"}, (2, 2, 3, 3, 4), target="labels"),
        Case("softmax-large-logits", "|x| in [30, 80]: stable log-softmax",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", edits=[large_logits()]),
        Case("softmax-masked-sample", "sample 0 fully masked: no part in the mean",
             {"activation": SMX}, (2, 3, 3, 4), target="labels", mask="pix", edits=[mask_sample(0)],
             expect=expect_grad_zero_sample(0)),
        Case("softmax-all-masked", "everything masked: 0 with gradient 0",
             {"activation": SMX}, (2, 3, 2, 3), target="labels", mask="pix", edits=[mask_all], expect=expect_zero),
        Case("none-eps-1e-4", "activation none, eps = 1e-4, some p below it",
             {"activation": NON, "eps": 1e-4}, (2, 2, 4, 4), xkind="simplex", target="softdist",
             edits=[set_x(lambda c: np.where(c.R.random(c.x.shape) < 0.25, c.x * 1e-4 * 0.5, c.x))]),
        Case("softmax-c2", "C=2 softmax, one-hot target",
             {"activation": SMX}, (3, 2, 3, 4), target="onehot"),
        Case("softmax-unused-shared-options", "smooth / batch are shared options that ce accepts and ignores",
             {"activation": SMX, "smooth": 2.0, "batch": True}, (2, 3, 3, 3), target="labels"),
        Case("none-fullmask-weight-sum", "activation none, channel-identical full mask, weights, reduction sum",
             {"activation": NON, "weight": [1.5, 0.5, 1.0], "reduction": "sum"}, (2, 3, 3, 4), xkind="simplex",
             target="softdist", mask="fullsame"),
        Case("softmax-label-smoothing-labelmap", "label_smoothing 0.1 with a label map: PyTorch's cross_entropy(label_smoothing=0.1)",
             {"activation": SMX, "label_smoothing": 0.1}, (2, 3, 4, 5), target="labels"),
        Case("softmax-label-smoothing-soft-weight", "label_smoothing 0.3, probability targets and class weights (PyTorch's, probability targets)",
             {"activation": SMX, "label_smoothing": 0.3, "weight": [0.5, 2.0, 1.0, 1.5]}, (2, 4, 3, 4), target="softdist"),
        Case("softmax-ignore-label-smoothing-none", "ignore_index 255 with label_smoothing 0.2 and a mask, reduction none",
             {"activation": SMX, "ignore_index": 255, "label_smoothing": 0.2, "reduction": "none"}, (2, 3, 4, 4),
             target="labels", mask="pix", edits=[plant_ignored(255)]),
        Case("none-label-smoothing-nobg", "activation none, label_smoothing 0.2 (K = C), include_background=false",
             {"activation": NON, "label_smoothing": 0.2, "include_background": False}, (2, 3, 3, 4), xkind="simplex",
             target="onehot"),
        Case("softmax-ignore-outside-labels", "ignore_index -100 (PyTorch's default value) on a label map",
             {"activation": SMX, "ignore_index": -100}, (3, 4, 3, 3), target="labels", edits=[plant_ignored(-100, 0.4)]),
    ]
