#!/usr/bin/python3
"""SciPy side of the metrics benchmark (make bench): writes a pair of 128^3
masks with realistic blobs to .npy, and times the usual SciPy way of getting
HD95, ASSD and the overlap of them: surfaces by erosion, one Euclidean
distance transform per surface, distances gathered at the other surface.

    /usr/bin/python3 tools/bench_scipy_metrics.py --dir build [--runs 5]

Writes DIR/metrics_pred.npy, DIR/metrics_target.npy and DIR/bench_scipy_metrics.json
({"ms": median, "hd95":, "assd":, "dice":}) for bench/metrics.lua.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from scipy import ndimage

SHAPE = (128, 128, 128)
SPACING = (1.5, 0.8, 0.8)


def blobs(rng, shape, k):
    """k ellipsoids of random centres and radii, the kind of lesions and organs
    segmentation targets have."""
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    m = np.zeros(shape, dtype=bool)
    for _ in range(k):
        c = rng.uniform(20, 108, 3)
        r = rng.uniform(4, 18, 3)
        m |= ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
    return m


def scipy_way(pred, target, spacing):
    st = ndimage.generate_binary_structure(3, 1)
    ep = pred ^ ndimage.binary_erosion(pred, structure=st, border_value=0)
    eg = target ^ ndimage.binary_erosion(target, structure=st, border_value=0)
    dg = ndimage.distance_transform_edt(~eg, sampling=spacing)
    dp = ndimage.distance_transform_edt(~ep, sampling=spacing)
    d1, d2 = dg[ep], dp[eg]
    hd95 = max(np.percentile(d1, 95), np.percentile(d2, 95))
    assd = (d1.sum() + d2.sum()) / (d1.size + d2.size)
    tp = np.count_nonzero(pred & target)
    dice = 2 * tp / (np.count_nonzero(pred) + np.count_nonzero(target))
    return hd95, assd, dice


def progress(msg):
    """A "bench: <what> [<s> s]" line on stderr; seconds since make bench
    started (BENCH_T0, seconds since the epoch) or else since this script did."""
    t0 = float(os.environ.get("BENCH_T0") or T0)
    print("bench: %s [%.0f s]" % (msg, time.time() - t0), file=sys.stderr, flush=True)


T0 = time.time()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="build")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    progress("SciPy metrics: making the %s masks" % "x".join(map(str, SHAPE)))
    rng = np.random.default_rng(128)
    target = blobs(rng, SHAPE, 6)
    # the prediction: the target shifted by a voxel, eroded in places, with a
    # false positive blob
    pred = np.roll(target, 1, axis=2)
    pred = ndimage.binary_erosion(pred, iterations=1) | (blobs(rng, SHAPE, 1) & ~target)
    np.save(os.path.join(a.dir, "metrics_pred.npy"), pred.astype(np.float32)[None, None])
    np.save(os.path.join(a.dir, "metrics_target.npy"), target.astype(np.float32)[None, None])
    progress("SciPy metrics: %d runs ..." % a.runs)
    ts = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        hd95, assd, dice = scipy_way(pred, target, SPACING)
        ts.append((time.perf_counter() - t0) * 1e3)
    with open(os.path.join(a.dir, "bench_scipy_metrics.json"), "w") as fh:
        json.dump({"ms": statistics.median(ts), "hd95": hd95, "assd": assd, "dice": dice,
                   "spacing": SPACING}, fh)


if __name__ == "__main__":
    main()
