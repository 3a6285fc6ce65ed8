#!/usr/bin/python3
"""PyTorch side of `make bench`'s U-Net benchmark: one round of training or
inference steps of the U-Net of tools/torch_unet.py, timed per step.

    /usr/bin/python3 tools/bench_torch_unet.py --config 2d64|2d128|3d --threads N
        --mode train|infer|both [--steps S] [--warmup W]

Prints exactly one JSON line on stdout:
    {"config", "threads", "mode", "steps", "times": [seconds per step], "best",
     "median", "rss_before_mb", "rss_peak_mb"}
With --mode both, inference runs first, then training, in the same process,
and the line is {"infer": {...}, "train": {...}}, each as above: the infer
peak is VmHWM after the inference steps, the train peak VmHWM at the end (a
training step needs more than inference, so it is the training peak).
rss_before_mb is VmRSS once the model, optimiser and data exist, before the
first step; rss_peak_mb is VmHWM (the process's peak resident set) at the end,
both from /proc/self/status, in MiB.  An extra field, rss_import_mb (VmRSS
once torch is imported, before the model exists: ~230 MiB of it is
libtorch), lets a reader subtract the library's own footprint.  The segloss side spawns this script once
per round, interleaving it with its own runs.

Configurations:
  2d64   UNet(1, 1, base 16, depth 2, dims 2, norm none, relu, maxpool, bilinear), x (8,1,64,64)
  2d128  the same on x (8, 1, 128, 128)
  3d     UNet(1, 1, base 16, depth 3, dims 3, instance, leaky_relu, stride, transpose),
         x (2, 1, 32, 64, 64)

A train step is zero_grad, forward, segloss's bce_dice with activation
"sigmoid" and its defaults (docs/losses.md: bce's mean over all N*C*M elements
plus dice's mean over the (n, c) of 1 - (2 TP + 1) / (SP + ST + 1), per sample,
smooth 1), backward, Adam(lr 1e-3) step.  An infer step is the forward under
torch.no_grad() with model.eval().  Targets: a fixed-seed binary mask of a few
small blobs (~1% foreground).
"""
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("bench_torch_unet.py: python3-torch is not installed")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_unet import UNet  # noqa: E402

CONFIGS = {
    "2d64": (dict(input=1, output=1, base=16, depth=2, dims=2, norm="none", act="relu",
                  down="maxpool", up="bilinear"), (8, 1, 64, 64)),
    "2d128": (dict(input=1, output=1, base=16, depth=2, dims=2, norm="none", act="relu",
                   down="maxpool", up="bilinear"), (8, 1, 128, 128)),
    "3d": (dict(input=1, output=1, base=16, depth=3, dims=3, norm="instance",
                act="leaky_relu", down="stride", up="transpose"), (2, 1, 32, 64, 64)),
}


def proc_status_mb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0       # kB -> MiB
    return None


def blob_mask(shape, gen, fraction=0.01):
    """(N, 1, S...) float mask of a few small balls per sample, ~fraction of
    the voxels, from the generator gen."""
    N, spatial = shape[0], shape[2:]
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in spatial],
                           indexing="ij")
    vol = 1
    for s in spatial:
        vol *= s
    t = torch.zeros(shape)
    nblobs = 4
    # radius r of a ball (disc) holding fraction * vol / nblobs voxels
    per = fraction * vol / nblobs
    r = (per / 3.14159) ** 0.5 if len(spatial) == 2 else (per * 3 / (4 * 3.14159)) ** (1 / 3)
    for n in range(N):
        for _ in range(nblobs):
            c = [float(torch.randint(int(r) + 1, s - int(r) - 1, (1,), generator=gen))
                 for s in spatial]
            d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
            t[n, 0][d2 <= r * r] = 1.0
    return t


def bce_dice(x, t, smooth=1.0):
    """segloss.bce_dice(x, t, {activation = "sigmoid"}) with its defaults:
    bce_weight 1, dice_weight 1, per-sample Dice (batch = false), smooth 1."""
    bce = F.binary_cross_entropy_with_logits(x, t)          # mean over all elements
    p = torch.sigmoid(x)
    dims = tuple(range(2, x.dim()))
    tp = (p * t).sum(dims)
    sp = p.sum(dims)
    st = t.sum(dims)
    dice = (1 - (2 * tp + smooth) / (sp + st + smooth)).mean()   # over (n, c)
    return bce + dice


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", default="train", choices=("train", "infer", "both"))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.threads < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("--threads and --steps must be >= 1, --warmup >= 0")

    rss_import = proc_status_mb("VmRSS")   # the interpreter and libtorch alone
    torch.set_num_interop_threads(1)       # before any parallel work
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    opts, xshape = CONFIGS[a.config]
    model = UNet(**opts)
    gen = torch.Generator().manual_seed(a.seed)
    x = torch.randn(xshape, generator=gen)
    t = blob_mask(xshape, gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad()
        loss = bce_dice(model(x), t)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    rss_before = proc_status_mb("VmRSS")

    def run(mode):
        if mode == "train":
            model.train()
        else:
            model.eval()
        step = train_step if mode == "train" else infer_step
        for _ in range(a.warmup):
            step()
        times = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return {"config": a.config, "threads": a.threads, "mode": mode, "steps": a.steps,
                "times": times, "best": min(times), "median": statistics.median(times),
                "rss_before_mb": rss_before, "rss_peak_mb": proc_status_mb("VmHWM"),
                "rss_import_mb": rss_import}

    if a.mode == "both":
        out = {"infer": run("infer")}
        out["train"] = run("train")
    else:
        out = run(a.mode)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
