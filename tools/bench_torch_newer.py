#!/usr/bin/python3
"""PyTorch side of the newer losses' benchmark (make bench, stage 5; make
bench-newer): writes the inputs to .npy, then times forward + backward
(autograd, d loss / d x) of each peer of tools/peers.py at 1 thread in
float32, in interleaved rounds; bench/newer.lua times segloss on the same
files in the same run and prints the table.

    /usr/bin/python3 tools/bench_torch_newer.py [--dir build] [--runs 5]
        [--budget SECONDS [--min-runs 2]] [--slow SECONDS] [--shapes B,D3,M]
        [--only LOSS,...] [--verbose]

Shapes (inputs deterministic by seed; the targets are small structures):
  B   (16, 1, 512, 512)    binary: 2-5 discs per image, ~1 % of the pixels
  D3  (2, 1, 64, 96, 96)   binary 3-D: a few balls per volume, ~1 % of the voxels
  M   (2, 4, 32, 96, 96)   4 classes, softmax, a label map: balls of classes 1-3
Logits: x = 2 z − 2 + 4 t with z standard normal (binary), x = 2 z + 3 onehot
(M): a noisy prediction of the target (about 16 % false positives at p > 0.5),
so that the thresholded prediction and the skeletons look like a network's.

Writes DIR/newer_<shape>_x.npy, DIR/newer_<shape>_t.npy (float32; t is the
mask, or the label map for M) and DIR/bench_newer.json: the cases (loss,
shape, activation, the peer's options and segloss's options), and for each
the median and best ms over the rounds (wall clock: "ms", "best"; the
calling thread's CPU time, which a busy machine disturbs less: "cpu_ms",
"cpu_best"). Without python3-torch it writes the
inputs and the cases only (bench/newer.lua then has no PyTorch column).
Progress on stderr ("bench: ... [s]").

With --budget (make bench's default), a shape whose first round takes long
gets fewer rounds, down to --min-runs: at shape B a round of the nine peers
takes about 14 s (clDice's max-pool skeletons 9 s of it), and the ratio to
segloss is in no doubt at 2 rounds. With --slow S, a loss whose first two
calls both take more than S seconds is timed twice only ("rounds": 2 in the
JSON): clDice at shape B, 9-18 s a call, would otherwise take half of the
stage. (Two calls, not one: on the shared VM a single call can stall for
seconds — unified_focal at B took 0.16 s in one run and 3.8 s in another.)
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

SHAPES = {
    "B": {"shape": (16, 1, 512, 512), "kind": "binary", "radius": (10, 25), "seed": 1201},
    "D3": {"shape": (2, 1, 64, 96, 96), "kind": "binary", "radius": (5, 10), "seed": 1202},
    "M": {"shape": (2, 4, 32, 96, 96), "kind": "labels", "radius": (4, 9), "seed": 1203},
}

SIG, NON, SMX = "sigmoid", "none", "softmax"
# (loss, shape, activation, peer options, segloss options): the peers run as
# the contract reads (cldice, log_cosh_dice and combo per (n, c)), at the same
# cost as their native aggregation.
_BIN = [
    ("lovasz_hinge", NON, {"per_image": True}, {"per_image": True}),
    ("boundary", SIG, {}, {}),
    ("hausdorff_dt", SIG, {}, {}),
    ("cldice", SIG, {"batch": False}, {}),
    ("log_cosh_dice", SIG, {"batch": False}, {}),
    ("unified_focal", SIG, {}, {}),
    ("topk_ce", SIG, {}, {}),
    ("combo", SIG, {"batch": False, "keras_weights": False, "constant": True}, {}),
]
_MULTI = [
    ("lovasz_softmax", SMX, {}, {}),
    ("unified_focal", SMX, {}, {}),
    ("topk_ce", SMX, {}, {}),
]
CASES = [(n, "B", a, po, so) for n, a, po, so in _BIN] + [(n, "D3", a, po, so) for n, a, po, so in _BIN] \
    + [(n, "M", a, po, so) for n, a, po, so in _MULTI]

T0 = time.time()


def progress(msg):
    """A "bench: <what> [<s> s]" line on stderr: seconds since make bench
    started (BENCH_T0) or else since this script did."""
    t0 = float(os.environ.get("BENCH_T0") or T0)
    print("bench: %s [%.0f s]" % (msg, time.time() - t0), file=sys.stderr, flush=True)


def blobs(rng, spatial, radius, frac):
    """Discs (2-D) or balls (3-D) of random centres and radii in `radius`
    until they cover `frac` of the image."""
    m = np.zeros(spatial, dtype=bool)
    axes = [np.arange(n, dtype=np.float64) for n in spatial]
    while m.mean() < frac:
        c = [rng.uniform(0.1 * n, 0.9 * n) for n in spatial]
        r = rng.uniform(*radius)
        d2 = 0.0
        for i, a in enumerate(axes):
            sh = [1] * len(spatial)
            sh[i] = -1
            d2 = d2 + ((a - c[i]) ** 2).reshape(sh)
        m |= d2 <= r * r
    return m


def make_inputs(key):
    """x (float32 logits) and t (float32 mask, or label map for M)."""
    S = SHAPES[key]
    shape, rng = S["shape"], np.random.default_rng(S["seed"])
    N, C, sp = shape[0], shape[1], shape[2:]
    z = rng.standard_normal(shape, dtype=np.float32)
    if S["kind"] == "binary":
        t = np.zeros(shape, dtype=np.float32)
        for n in range(N):
            t[n, 0] = blobs(rng, sp, S["radius"], 0.01)
        x = 2 * z - 2 + 4 * t
        return x.astype(np.float32), t
    lab = np.zeros((N, 1) + sp, dtype=np.float32)
    for n in range(N):
        for c in range(1, C):
            lab[n, 0][blobs(rng, sp, S["radius"], 0.02)] = c
    onehot = np.stack([(lab[:, 0] == c) for c in range(C)], 1).astype(np.float32)
    x = 2 * z + 3 * onehot
    return x.astype(np.float32), lab


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="build")
    ap.add_argument("--runs", type=int, default=5, help="timed rounds per shape")
    ap.add_argument("--min-runs", type=int, default=2, help="rounds when the budget is short")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds of timed rounds per shape, 0 = no limit")
    ap.add_argument("--slow", type=float, default=0,
                    help="a loss whose first call takes longer (s) is timed once, 0 = off")
    ap.add_argument("--shapes", default="B,D3,M")
    ap.add_argument("--only", default="", help="comma-separated losses (default: all)")
    ap.add_argument("--verbose", action="store_true", help="each median and best on stderr")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    shapes = a.shapes.split(",")
    only = set(a.only.split(",")) if a.only else None
    cases = [c for c in CASES if c[1] in shapes and (only is None or c[0] in only)]
    try:
        import torch
        import peers
    except ImportError:
        torch = None
    out = {"torch_version": torch.__version__ if torch else None, "threads": 1, "dtype": "float32", "runs": a.runs,
           "shapes": {}, "cases": []}
    data = {}
    for key in shapes:
        progress("newer losses: making the inputs of shape %s %s" % (key, SHAPES[key]["shape"]))
        x, t = make_inputs(key)
        fx, ft = os.path.join(a.dir, "newer_%s_x.npy" % key), os.path.join(a.dir, "newer_%s_t.npy" % key)
        np.save(fx, x)
        np.save(ft, t)
        out["shapes"][key] = {"shape": list(x.shape), "x": fx, "t": ft, "target_fraction": float((t > 0).mean())}
        data[key] = (x, t)
    for name, key, act, popts, sopts in cases:
        out["cases"].append({"loss": name, "shape": key, "activation": act, "peer_opts": popts,
                             "segloss_opts": dict(sopts, activation=act)})
    if torch is None:
        progress("newer losses: python3-torch is not installed: inputs only, no PyTorch times")
    else:
        torch.set_num_threads(1)
        progress("newer losses: PyTorch %s, 1 thread, float32, %s" % (
            torch.__version__, "%d rounds" % a.runs if a.budget <= 0 else
            "%d-%d rounds within %g s per shape" % (a.min_runs, a.runs, a.budget)))
        for key in shapes:
            its = [(i, c) for i, c in enumerate(out["cases"]) if c["shape"] == key]
            if not its:
                continue
            x, t = data[key]
            X = torch.from_numpy(x)
            Tt = torch.from_numpy(t)
            # warm-up: one call each on the first eighth of the first spatial axis
            rows = max(4, x.shape[2] // 8)
            wx = X.narrow(2, 0, rows).contiguous().requires_grad_(True)
            wt = Tt.narrow(2, 0, rows).contiguous()
            fns = {}
            for i, c in its:
                f, po = peers.PEERS[c["loss"]], dict(c["peer_opts"], activation=c["activation"])
                fns[i] = (lambda xx, tt, f=f, po=po: f(xx, tt, po))
                wx.grad = None
                fns[i](wx, wt).backward()
            xs = X.clone().requires_grad_(True)
            ts = {i: [] for i, _ in its}
            cs = {i: [] for i, _ in its}  # CPU time of the calling thread (PyTorch runs its CPU backward there)
            rounds, r = a.runs, 0
            while r < rounds:
                t0 = time.perf_counter()
                for i, c in its:
                    if r >= 2 and a.slow > 0 and min(ts[i][:2]) > a.slow * 1e3:
                        continue
                    xs.grad = None
                    t1, c1 = time.perf_counter(), time.thread_time()
                    fns[i](xs, Tt).backward()
                    ts[i].append((time.perf_counter() - t1) * 1e3)
                    cs[i].append((time.thread_time() - c1) * 1e3)
                r += 1
                el = time.perf_counter() - t0
                if r == 1 and a.budget > 0:  # the budget counts the losses that may get more rounds
                    more = [ts[i][0] for i, _ in its if a.slow <= 0 or ts[i][0] <= a.slow * 1e3]
                    per = max(sum(more) * 1e-3, 1e-3)
                    rounds = max(a.min_runs, min(a.runs, int(a.budget // per)))
                progress("newer losses, PyTorch, shape %s: round %d/%d of %d losses, %.1f s" % (
                    key, r, rounds, len(its), el))
            for i, c in its:
                c["ms"], c["best"], c["rounds"] = statistics.median(ts[i]), min(ts[i]), len(ts[i])
                c["cpu_ms"], c["cpu_best"] = statistics.median(cs[i]), min(cs[i])
                if a.verbose:
                    print("torch %-3s %-15s %-8s median %9.1f ms  best %9.1f ms  (CPU: median %9.1f, best %9.1f)" % (
                        key, c["loss"], c["activation"], c["ms"], c["best"], c["cpu_ms"], c["cpu_best"]),
                        file=sys.stderr)
    path = os.path.join(a.dir, "bench_newer.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    progress("newer losses: PyTorch side done (%s)" % path)


if __name__ == "__main__":
    main()
