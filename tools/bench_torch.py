#!/usr/bin/python3
"""PyTorch side of `make bench`: the losses of bench/losses.lua computed the
usual way, with autograd (forward, then backward for d loss / d logits), on
the same shapes and thread counts. Writes one JSON file of median
milliseconds that bench/losses.lua reads in the same run.

    /usr/bin/python3 tools/bench_torch.py --out build/bench_torch.json [--runs 7]
        [--budget SECONDS [--min-runs 3]] [--shapes A,B,C] [--threads 1,2] [--verbose]

Rounds are interleaved as in bench/util.lua. With --budget (make bench's
quick default), a shape and thread count whose round takes long gets fewer
rounds, down to --min-runs: PyTorch's slowest configurations (shape C,
seconds per call) cost the most time, and their ratio to segloss, 10-40x,
is the least in doubt.
Progress goes to stderr, the medians to the JSON file ("rounds" says how many
calls each median is of).

Each loss is written the way a user of PyTorch (or of MONAI, whose
formulas these follow) would write it: activation, one-hot targets for
softmax, per-(n, c) sums, mean.
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
    sys.exit("bench_torch.py: python3-torch is not installed")

SHAPES = {
    "A": ((8, 1, 256, 256), "sigmoid"),
    "B": ((16, 1, 512, 512), "sigmoid"),
    "C": ((2, 4, 64, 128, 128), "softmax"),
}


def spatial(x):
    return tuple(range(2, x.dim()))


def probs(x, act):
    return torch.sigmoid(x) if act == "sigmoid" else torch.softmax(x, 1)


def onehot(lab, C):
    # (N, 1, S...) labels -> (N, C, S...) floats, as MONAI's to_onehot_y does
    return F.one_hot(lab[:, 0].long(), C).movedim(-1, 1).float()


def stats(p, t):
    d = spatial(p)
    return (p * t).sum(d), p.sum(d), t.sum(d)


def dice(x, t, act, s=1.0):
    tp, sp, st = stats(probs(x, act), t)
    return (1 - (2 * tp + s) / (sp + st + s)).mean()


def iou(x, t, act, s=1e-6):
    tp, sp, st = stats(probs(x, act), t)
    return (1 - (tp + s) / (sp + st - tp + s)).mean()


def tversky_L(x, t, act, a=0.3, b=0.7, s=1e-5):
    p = probs(x, act)
    d = spatial(p)
    tp = (p * t).sum(d)
    fp = (p * (1 - t)).sum(d)
    fn = ((1 - p) * t).sum(d)
    return 1 - (tp + s) / (tp + a * fp + b * fn + s)


def tversky(x, t, act):
    return tversky_L(x, t, act).mean()


def focal_tversky(x, t, act):
    return tversky_L(x, t, act).clamp(min=1e-7).pow(0.75).mean()


def sensitivity_specificity(x, t, act, lam=0.05, s=1e-5):
    p = probs(x, act)
    d = spatial(p)
    e2 = (t - p) ** 2
    sens = (e2 * t).sum(d) / (t.sum(d) + s)
    spec = (e2 * (1 - t)).sum(d) / ((1 - t).sum(d) + s)
    return (lam * sens + (1 - lam) * spec).mean()


def generalized_dice(x, t, act, s=1e-5):
    p = probs(x, act)
    d = spatial(p)
    tp, sp, st = (p * t).sum(d), p.sum(d), t.sum(d)
    w = 1.0 / (st * st)
    inf = torch.isinf(w)
    w[inf] = 0.0
    w = w + inf * w.max(dim=1, keepdim=True).values
    return (1 - (2 * (w * tp).sum(1) + s) / ((w * (sp + st)).sum(1) + s)).mean()


def bce(x, t, act):
    return F.binary_cross_entropy_with_logits(x, t)


def focal(x, t, act, gamma=2.0, alpha=0.25):
    if act == "softmax":  # MONAI FocalLoss(use_softmax=True), alpha none
        logp = F.log_softmax(x, 1)
        return (-(t * (1 - logp.exp()) ** gamma * logp)).sum(1).mean()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    pt = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - pt) ** gamma
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean()


def ce(x, lab, act):
    return F.cross_entropy(x, lab[:, 0].long())


def bce_dice(x, t, act):
    return bce(x, t, act) + dice(x, t, act)


def dice_focal(x, t, act):
    return dice(x, t, act) + focal(x, t, act, alpha=None)


def bce_dice_tversky(x, t, act):
    return bce(x, t, act) + dice(x, t, act) + tversky(x, t, act)


def dice_focal_a(x, t, act):
    """dice + focal with torchvision's default alpha (0.25), as Focal() + Dice()."""
    return dice(x, t, act) + focal(x, t, act)


COMBOS = {
    "bce+dice": bce_dice, "dice+focal": dice_focal_a, "bce+dice+tversky": bce_dice_tversky,
}

LOSSES = {
    "bce": bce, "ce": ce, "focal": focal, "dice": dice, "iou": iou, "tversky": tversky,
    "focal_tversky": focal_tversky, "sensitivity_specificity": sensitivity_specificity,
    "generalized_dice": generalized_dice, "bce_dice": bce_dice, "dice_focal": dice_focal,
}


def which(shape_key):
    """(loss, activation, target kind) run at this shape; bce and bce_dice
    keep sigmoid on the multi-class shape (one-hot targets, multi-label)."""
    _, act = SHAPES[shape_key]
    out = []
    for name in LOSSES:
        if act == "sigmoid" and name == "ce":
            continue
        a = "sigmoid" if name in ("bce", "bce_dice") else act
        out.append((name, a))
    return out


def items(shape_key):
    """[(name, f(x, d))] timed at this shape: the losses of bench/losses.lua,
    then the combinations of bench/combos.lua; d holds the targets (see data)."""
    _, act = SHAPES[shape_key]
    out = []
    for name, act2 in which(shape_key):
        f = LOSSES[name]
        if act == "softmax":
            if name == "ce":
                fn = lambda x, d, f=f, a=act2: f(x, d["lab"], a)
            else:  # one-hot inside the timed call, as MONAI does
                fn = lambda x, d, f=f, a=act2: f(x, onehot(d["lab"], x.shape[1]), a)
        else:
            fn = lambda x, d, f=f, a=act2: f(x, d["t"], a)
        out.append((name, fn))
    # the combinations of bench/combos.lua: sigmoid, dense (one-hot) targets
    for name, f in COMBOS.items():
        out.append((name, lambda x, d, f=f: f(x, d["tt"], "sigmoid")))
    return out


def data(shape_key):
    """The logits and targets of a shape: binary targets (2 % ones) for
    sigmoid, a label map and its one-hot for softmax."""
    shape, act = SHAPES[shape_key]
    N, C = shape[0], shape[1]
    x = torch.randn(shape) * 3
    if act == "softmax":
        lab = torch.randint(0, C, (N, 1) + shape[2:]).float()
        return x, {"lab": lab, "tt": onehot(lab, C)}
    t = (torch.rand(shape) < 0.02).float()
    return x, {"t": t, "tt": t}


# Warm-up inputs have at most this many elements (shape A's size): the first
# rows of the first spatial axis. They run the same kernels at a fraction of
# the cost; at shapes B and C every call of PyTorch maps fresh memory anyway.
WARM_ELEMS = 1 << 19


def shrink(x, d):
    k = -(-x.numel() // WARM_ELEMS)
    if k <= 1:
        return x, d
    rows = max(1, x.shape[2] // k)
    return x.narrow(2, 0, rows).contiguous(), {n: v.narrow(2, 0, rows).contiguous() for n, v in d.items()}


def call_ms(f, x, d):
    """One call of f, forward and backward, in ms. x is a leaf that requires
    grad; its grad is cleared first, so backward allocates it as for a fresh
    leaf (without the cost of cloning the input before every call)."""
    x.grad = None
    t0 = time.perf_counter()
    f(x, d).backward()
    return (time.perf_counter() - t0) * 1e3


class Progress:
    """"bench: <what> [<s> s]" lines on stderr, seconds since make bench
    started (BENCH_T0, seconds since the epoch) or else since this script
    did; at most one every `every` seconds for ticks."""

    def __init__(self, every=10.0):
        self.last = time.perf_counter()
        t0 = os.environ.get("BENCH_T0")
        self.t0 = float(t0) if t0 else time.time()
        self.every = every

    def say(self, msg):
        self.last = time.perf_counter()
        print("bench: %s [%.0f s]" % (msg, time.time() - self.t0), file=sys.stderr, flush=True)

    def tick(self, msg):
        if time.perf_counter() - self.last >= self.every:
            self.say(msg)


def medians(its, x, d, a, say, tick):
    """Medians in ms of interleaved rounds: each round times every item once,
    in the same order, so that a drift of the machine affects all alike. One
    warm-up call each on a reduced input (shrink); then rounds: a.runs, or
    fewer when a.budget > 0 and a round takes longer than a.budget / a.runs
    seconds, but never fewer than a.min_runs. Returns ({name: ms}, rounds)."""
    wx, wd = shrink(x, d)
    x, wx = x.detach().requires_grad_(True), wx.detach().requires_grad_(True)
    for i, (_, f) in enumerate(its):
        call_ms(f, wx, wd)
        tick("warm-up, item %d/%d" % (i + 1, len(its)))
    ts = {name: [] for name, _ in its}
    rounds = a.runs
    r = 0
    while r < rounds:
        t0 = time.perf_counter()
        for i, (name, f) in enumerate(its):
            ts[name].append(call_ms(f, x, d))
            tick("round %d/%d, item %d/%d" % (r + 1, rounds, i + 1, len(its)))
        r += 1
        if r == 1 and a.budget > 0:
            rounds = max(a.min_runs, min(a.runs, int(a.budget // (time.perf_counter() - t0))))
            say("%d rounds of %.1f s" % (rounds, time.perf_counter() - t0))
    return {name: statistics.median(v) for name, v in ts.items()}, rounds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=7, help="timed rounds per shape and thread count")
    ap.add_argument("--min-runs", type=int, default=3, help="rounds when the budget is short")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds of timed rounds per shape and thread count, 0 = no limit")
    ap.add_argument("--shapes", default="A,B,C")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--verbose", action="store_true", help="each median on stderr")
    a = ap.parse_args()
    torch.manual_seed(0)
    shapes = a.shapes.split(",")
    threads = [int(v) for v in a.threads.split(",")]
    prog = Progress()
    prog.say("PyTorch %s: shapes %s, threads %s, %s" % (
        torch.__version__, a.shapes, a.threads,
        "%d rounds" % a.runs if a.budget <= 0 else
        "%d-%d rounds within %g s" % (a.min_runs, a.runs, a.budget)))
    res, rounds = {}, {}
    group, groups = 0, len(shapes) * len(threads)
    for key in shapes:
        x, d = data(key)
        its = items(key)
        res[key], rounds[key] = {}, {}
        for th in threads:
            torch.set_num_threads(th)
            group += 1
            what = "PyTorch, shape %s, %d thread%s (%d/%d)" % (key, th, "" if th == 1 else "s", group, groups)
            prog.say("%s: %d losses and combinations ..." % (what, len(its)))
            ms, n = medians(its, x, d, a, lambda m: prog.say("%s: %s" % (what, m)),
                            lambda m: prog.tick("%s: %s" % (what, m)))
            res[key][str(th)], rounds[key][str(th)] = ms, n
            if a.verbose:
                for name, _ in its:
                    print("torch %s %d thread(s) %-24s %8.2f ms" % (key, th, name, ms[name]), file=sys.stderr)
    with open(a.out, "w") as fh:
        json.dump({"torch_version": torch.__version__, "runs": a.runs, "rounds": rounds, "ms": res}, fh, indent=1)
    prog.say("PyTorch done")


if __name__ == "__main__":
    main()
