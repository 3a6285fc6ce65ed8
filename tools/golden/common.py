"""What every part of the golden generator shares: torch set-up, the loss
names, the options each loss knows and their defaults, the error type, and
the comparison and float32 helpers."""
import numpy as np
import torch

torch.set_num_threads(1)
DT = torch.float64
GENERATOR = "tools/gen_golden.py"

LOSS_NAMES = ["bce", "ce", "focal", "dice", "iou", "tversky", "focal_tversky",
              "sensitivity_specificity", "generalized_dice", "bce_dice", "dice_focal"]

# ---------------------------------------------------------------------------
# Options: which names each loss knows, defaults
# ---------------------------------------------------------------------------
SHARED = {"activation", "reduction", "weight", "include_background", "batch",
          "smooth", "smooth_nr", "smooth_dr", "eps"}
KNOWN = {
    "bce": SHARED | {"pos_weight"},
    "ce": set(SHARED),
    "focal": SHARED | {"alpha", "gamma"},
    "dice": SHARED | {"squared", "complement", "soft_label"},
    "iou": SHARED | {"empty", "soft_label"},
    "tversky": SHARED | {"alpha", "beta", "soft_label"},
    "focal_tversky": SHARED | {"alpha", "beta", "gamma", "soft_label"},
    "sensitivity_specificity": SHARED | {"lambda"},
    "generalized_dice": SHARED | {"w_type"},
}
KNOWN["bce_dice"] = KNOWN["bce"] | KNOWN["dice"] | {"bce_weight", "dice_weight"}
KNOWN["dice_focal"] = KNOWN["dice"] | KNOWN["focal"] | {"lambda"}

DEFAULT_SMOOTH = {"dice": 1.0, "iou": 1e-6, "tversky": 1e-5, "focal_tversky": 1e-5,
                  "sensitivity_specificity": 1e-5, "generalized_dice": 1e-5}
EPS_DEFAULT = 1e-7


def opt(o, key, default):
    return o[key] if key in o else default


def smooth_pair(o, default):
    s = float(opt(o, "smooth", default))
    return float(opt(o, "smooth_nr", s)), float(opt(o, "smooth_dr", s))


class GoldenError(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise GoldenError(msg)


# ---------------------------------------------------------------------------
# Comparisons and float32 inputs
# ---------------------------------------------------------------------------
def close(a, b, rtol=1e-10, atol=1e-13):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def expect_close(what, a, b, rtol=1e-10, atol=1e-13):
    if not close(a, b, rtol, atol):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        diff = np.max(np.abs(a - b)) if a.shape == b.shape else "shape %s vs %s" % (a.shape, b.shape)
        raise GoldenError("self-check failed: %s (max abs diff %s)" % (what, diff))


def rnd32(a):
    return np.asarray(a, dtype=np.float32)


def onehot_np(lab, C):
    N = lab.shape[0]
    sp = lab.shape[2:]
    out = np.zeros((N, C) + sp, dtype=np.float32)
    for c in range(C):
        out[:, c] = (lab[:, 0] == c)
    return out
