#!/usr/bin/python3
"""PyTorch side of `make bench`: the losses of bench/losses.lua computed the
usual way, with autograd (forward, then backward for d loss / d logits), on
the same shapes and thread counts. Writes one JSON file of median
milliseconds that bench/losses.lua reads in the same run.

    /usr/bin/python3 tools/bench_torch.py --out build/bench_torch.json [--runs 7]

Each loss is written the way a user of PyTorch (or of MONAI, whose
formulas these follow) would write it: activation, one-hot targets for
softmax, per-(n, c) sums, mean.
"""
import argparse
import json
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


def median_ms(f, x, runs):
    ts = []
    for i in range(runs + 2):
        xx = x.detach().clone().requires_grad_(True)
        t0 = time.perf_counter()
        loss = f(xx)
        loss.backward()
        t1 = time.perf_counter()
        if i >= 2:
            ts.append((t1 - t0) * 1e3)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--shapes", default="A,B,C")
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    torch.manual_seed(0)
    res = {}
    for key in a.shapes.split(","):
        shape, act = SHAPES[key]
        N, C = shape[0], shape[1]
        x = torch.randn(shape) * 3
        if act == "softmax":
            lab = torch.randint(0, C, (N, 1) + shape[2:]).float()
        else:
            t = (torch.rand(shape) < 0.02).float()
        res[key] = {}
        for th in [int(v) for v in a.threads.split(",")]:
            torch.set_num_threads(th)
            res[key][str(th)] = {}
            for name, act2 in which(key):
                f = LOSSES[name]
                if act == "softmax":
                    if name == "ce":
                        fn = lambda xx, f=f: f(xx, lab, act2)
                    else:  # one-hot inside the timed call, as MONAI does
                        fn = lambda xx, f=f, act2=act2: f(xx, onehot(lab, C), act2)
                else:
                    fn = lambda xx, f=f, act2=act2: f(xx, t, act2)
                res[key][str(th)][name] = median_ms(fn, x, a.runs)
                print("torch %s %d thread(s) %-24s %8.2f ms" % (key, th, name, res[key][str(th)][name]),
                      file=sys.stderr)
        # the combinations of bench/combos.lua: sigmoid, dense (one-hot) targets
        tt = onehot(lab, C) if act == "softmax" else t
        for th in [int(v) for v in a.threads.split(",")]:
            torch.set_num_threads(th)
            for name, f in COMBOS.items():
                fn = lambda xx, f=f: f(xx, tt, "sigmoid")
                res[key][str(th)][name] = median_ms(fn, x, a.runs)
                print("torch %s %d thread(s) %-24s %8.2f ms" % (key, th, name, res[key][str(th)][name]),
                      file=sys.stderr)
    with open(a.out, "w") as fh:
        json.dump({"torch_version": torch.__version__, "runs": a.runs, "ms": res}, fh, indent=1)


if __name__ == "__main__":
    main()
