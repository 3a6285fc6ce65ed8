"""What every part of the golden generator shares: torch set-up, the loss
names and the options each loss knows (from the registry), the contract's defaults,
the error type, and the comparison and float32 helpers."""
import numpy as np
import torch

from . import registry

torch.set_num_threads(1)
DT = torch.float64
GENERATOR = "tools/gen_golden.py"

# ---------------------------------------------------------------------------
# The losses and the options each knows: from the registry (their defaults:
# the contract's, registry.contract_default)
# ---------------------------------------------------------------------------
LOSS_NAMES = registry.names()
KNOWN = {n: registry.known(n) for n in LOSS_NAMES}
EPS_DEFAULT = float(registry.SHARED_DEFAULTS["eps"])


def default_smooth(name):
    """The contract's default smooth of region loss name."""
    return float(registry.contract_default(name, "smooth"))


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
