"""Golden cases of boundary: spec/golden/boundary.json, in this order.

The references: torch_loss, PyTorch float64 with the signed distance maps
of Kervadec et al.'s one_hot2dist computed by SciPy's distance_transform_edt
(an EDT independent of segloss's), and scalar, loops over the elements with
maps from a brute-force search over every pair of elements."""

from ..case import Case, large_logits, NON, SIG, SMX
from ..distmaps import (shared_cases, blobs, empty_target, full_target, maps_torch, other_side_brute, probs, reduce_scalar,
                        reduce_torch, signed_scipy, spacing_of)

# The defaults of docs/losses.md (the contract); spacing is 1 per axis.
DEFAULTS = {"include_background": False}


def torch_loss(x, t, m, o):
    sp = spacing_of(o, x.dim() - 2)
    phi = maps_torch(signed_scipy, t.detach().numpy() > 0.5, sp)   # constants
    p = probs(x, o).p
    return reduce_torch(p * phi, x, m, o)


def scalar(sc):
    sp = spacing_of(sc.o, len(sc.sp_shape))
    ell = []
    for n in range(sc.N):
        rows = []
        for c in range(sc.C):
            b = (sc.T[n, c] > 0.5).reshape(sc.sp_shape)
            d = other_side_brute(b, sp).reshape(-1)
            flat = not b.any() or b.all()
            bf = b.reshape(-1)
            rows.append([0.0 if flat else sc.P[n, c, s] * (-(d[s] - 1.0) if bf[s] else d[s])
                         for s in range(sc.Msp)])
        ell.append(rows)
    return reduce_scalar(sc, ell)


def cases():
    B = [blobs()]
    return [
        Case("sigmoid-2d-default", "C=1 sigmoid, blob target, defaults",
             {"activation": SIG}, (2, 1, 7, 8), edits=B),
        Case("none-2d", "activation omitted (\"none\")",
             {}, (2, 1, 6, 9), edits=B),
        Case("softmax-labels-nobg", "C=3 softmax, label map, background left out (default)",
             {"activation": SMX}, (2, 3, 7, 6), target="labels", edits=B),
        Case("softmax-labels-bg", "C=3 softmax, label map, include_background = true",
             {"activation": SMX, "include_background": True}, (2, 3, 6, 7), target="labels", edits=B),
        Case("sigmoid-2ch-nobg", "C=2 sigmoid, dense targets, channel 0 left out",
             {"activation": SIG}, (2, 2, 6, 6), edits=B),
        Case("sigmoid-spacing", "anisotropic spacing {2, 0.5}",
             {"activation": SIG, "spacing": [2.0, 0.5]}, (2, 1, 7, 9), edits=B),
        Case("none-3d-spacing", "3-D, spacing {1.5, 1, 0.7}",
             {"activation": NON, "spacing": [1.5, 1.0, 0.7]}, (2, 1, 3, 4, 5), edits=B),
        Case("softmax-3d-labels", "3-D softmax, label map",
             {"activation": SMX}, (1, 3, 3, 4, 4), target="labels", edits=B),
        Case("sigmoid-1d", "1-D",
             {"activation": SIG}, (3, 1, 15), edits=B),
        Case("sigmoid-empty-target", "sample 1's target empty: its map is 0",
             {"activation": SIG, "reduction": "none"}, (2, 1, 6, 6), edits=B + [empty_target(1)]),
        Case("sigmoid-full-target", "sample 0's target full: its map is 0 (no boundary)",
             {"activation": SIG}, (2, 1, 6, 6), edits=B + [full_target(0)]),
        *shared_cases(B, "p·φ"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 1, 6, 6), edits=B + [large_logits()]),
        Case("none-random-targets", "scattered (not blob) targets",
             {"activation": NON}, (2, 1, 6, 7)),
    ]
