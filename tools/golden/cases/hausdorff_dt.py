"""Golden cases of hausdorff_dt: spec/golden/hausdorff_dt.json, in this order.

The references: torch_loss, PyTorch float64 with the distance maps of MONAI's
HausdorffDTLoss (distance_field: fg_dist + bg_dist by SciPy's
distance_transform_edt, an EDT independent of segloss's) taken per (n, c),
and scalar, loops over the elements with maps from a brute-force search over
every pair of elements. Every case keeps p at least 1e-3 from the threshold
0.5, so that float32 and float64 threshold alike."""

from ..case import Case, large_logits, NON, SIG, SMX
from ..distmaps import (shared_cases, away_from_half, blobs, empty_target, full_target, maps_torch, other_side_brute,
                        other_side_scipy, pred_const, probs, reduce_scalar, reduce_torch, spacing_of)

# The defaults of docs/losses.md (the contract); spacing is 1 per axis.
DEFAULTS = {"alpha": 2.0, "include_background": False}


def torch_loss(x, t, m, o):
    sp = spacing_of(o, x.dim() - 2)
    a = float(o["alpha"])
    act = probs(x, o)
    p = act.p
    dp = maps_torch(other_side_scipy, p.detach().numpy() > 0.5, sp)   # constants
    dt = maps_torch(other_side_scipy, t.detach().numpy() > 0.5, sp)
    err = p * (1 - t) - act.q * t   # p - t, without rounding 1 - q near p = 1
    return reduce_torch(err ** 2 * (dp ** a + dt ** a), x, m, o)


def scalar(sc):
    sp = spacing_of(sc.o, len(sc.sp_shape))
    a = float(sc.o["alpha"])
    ell = []
    for n in range(sc.N):
        rows = []
        for c in range(sc.C):
            dt = other_side_brute((sc.T[n, c] > 0.5).reshape(sc.sp_shape), sp).reshape(-1)
            dp = other_side_brute((sc.P[n, c] > 0.5).reshape(sc.sp_shape), sp).reshape(-1)
            rows.append([(sc.P[n, c, s] * (1 - sc.T[n, c, s]) - sc.Q[n, c, s] * sc.T[n, c, s]) ** 2
                         * (dp[s] ** a + dt[s] ** a)
                         for s in range(sc.Msp)])
        ell.append(rows)
    return reduce_scalar(sc, ell)


def cases():
    B = [blobs(), away_from_half]
    return [
        Case("sigmoid-2d-default", "C=1 sigmoid, blob target, defaults (alpha 2)",
             {"activation": SIG}, (2, 1, 7, 8), edits=B),
        Case("none-2d", "activation omitted (\"none\")",
             {}, (2, 1, 6, 9), edits=B),
        Case("softmax-labels-nobg", "C=3 softmax, label map, background left out (default)",
             {"activation": SMX}, (2, 3, 7, 6), target="labels", edits=B),
        Case("softmax-labels-bg", "C=3 softmax, label map, include_background = true",
             {"activation": SMX, "include_background": True}, (2, 3, 6, 7), target="labels", edits=B),
        Case("sigmoid-alpha1", "alpha 1",
             {"activation": SIG, "alpha": 1.0}, (2, 1, 7, 7), edits=B),
        Case("none-alpha0", "alpha 0: twice the mean squared error",
             {"activation": NON, "alpha": 0.0}, (2, 1, 5, 6), edits=B),
        Case("sigmoid-alpha3.5", "alpha 3.5",
             {"activation": SIG, "alpha": 3.5}, (2, 1, 6, 6), edits=B),
        Case("sigmoid-spacing", "anisotropic spacing {2, 0.5}",
             {"activation": SIG, "spacing": [2.0, 0.5]}, (2, 1, 7, 9), edits=B),
        Case("none-3d-spacing", "3-D, spacing {1.5, 1, 0.7}",
             {"activation": NON, "spacing": [1.5, 1.0, 0.7]}, (2, 1, 3, 4, 5), edits=B),
        Case("softmax-3d-labels", "3-D softmax, label map",
             {"activation": SMX}, (1, 3, 3, 4, 4), target="labels", edits=B),
        Case("sigmoid-1d", "1-D",
             {"activation": SIG}, (3, 1, 15), edits=B),
        Case("sigmoid-empty-target", "sample 1's target empty (d_t = 0)",
             {"activation": SIG, "reduction": "none"}, (2, 1, 6, 6), edits=B + [empty_target(1)]),
        Case("sigmoid-full-target", "sample 0's target full (d_t = 0)",
             {"activation": SIG}, (2, 1, 6, 6), edits=B + [full_target(0)]),
        Case("sigmoid-empty-pred", "sample 0's prediction all below 0.5 (d_p = 0)",
             {"activation": SIG}, (2, 1, 6, 6), edits=B + [pred_const(0, 0, -2.0)]),
        Case("none-full-pred", "sample 1's prediction all above 0.5 (d_p = 0)",
             {"activation": NON}, (2, 1, 6, 6), edits=B + [pred_const(1, 0, 0.875)]),
        *shared_cases(B, "the terms"),
        Case("sigmoid-large-logits", "sigmoid with |x| in [30, 80]",
             {"activation": SIG}, (2, 1, 6, 6), edits=[blobs(), large_logits(), away_from_half]),
        Case("sigmoid-soft-targets", "soft targets (d_t from t > 0.5)",
             {"activation": SIG}, (2, 1, 6, 7), target="soft", edits=[away_from_half]),
    ]
