#!/usr/bin/python3
"""bench_torch_conv.py — segloss' convolutions against PyTorch's, layer by layer.

The layer shapes are those of the benchmark networks:
  unet2d   2-D U-Net base 16, depth 2, bilinear up (1x1 convs), batch 8, 64x64 and 128x128
  unet3d   3-D U-Net base 16, depth 3, strided down, transposed up, batch 2, 32x64x64
  unet3d_n1  the same at batch 1 (inference; not in the default sets)
For R interleaved rounds it runs build/bench_conv (segloss: plain, blocked and
auto layouts) and then PyTorch (torch.nn.functional conv + aten's
convolution_backward for the data and weight gradients apart), at 1 and 2
threads; it keeps the best time of each and prints a Markdown table, with the
sums over a network's layers (each layer counted as often as the network has
it; the first layer's data gradient is left out, as training never needs it).

  tools/bench_torch_conv.py [--conv build/bench_conv] [--rounds 3] [--reps 3]
                            [--sets unet2d64,unet2d128,unet3d] [--threads 1,2]
                            [--json out.json]
"""
import argparse
import json
import subprocess
import sys
import time


def unet2d(S):
    # (name, dims, N, cin, cout, k, stride, transposed, spatial, count, first)
    L = []
    def add(name, cin, cout, k, s, sp, count=1, first=False):
        L.append((name, 2, 8, cin, cout, k, 1, 0, (sp, sp), count, first))
    add("enc0.1 1-16 k3", 1, 16, 3, 1, S, first=True)
    add("16-16 k3", 16, 16, 3, 1, S, count=2)          # enc0.2, dec0.2
    add("16-32 k3", 16, 32, 3, 1, S // 2)
    add("32-32 k3", 32, 32, 3, 1, S // 2, count=2)     # enc1.2, dec1.2
    add("32-64 k3", 32, 64, 3, 1, S // 4)
    add("64-64 k3", 64, 64, 3, 1, S // 4)
    add("up 64-32 k1", 64, 32, 1, 1, S // 2)
    add("64-32 k3", 64, 32, 3, 1, S // 2)
    add("up 32-16 k1", 32, 16, 1, 1, S)
    add("32-16 k3", 32, 16, 3, 1, S)
    add("out 16-1 k1", 16, 1, 1, 1, S)
    return L


def unet3d():
    L = []
    D, H, W = 32, 64, 64
    def add(name, cin, cout, k, s, tr, sp, count=1, first=False):
        L.append((name, 3, 2, cin, cout, k, s, tr, sp, count, first))
    def sp(f):
        return (D // f, H // f, W // f)
    add("enc0.1 1-16 k3", 1, 16, 3, 1, 0, sp(1), first=True)
    add("16-16 k3", 16, 16, 3, 1, 0, sp(1), count=2)
    add("16-32 k3 s2", 16, 32, 3, 2, 0, sp(1))
    add("32-32 k3", 32, 32, 3, 1, 0, sp(2), count=2)
    add("32-64 k3 s2", 32, 64, 3, 2, 0, sp(2))
    add("64-64 k3", 64, 64, 3, 1, 0, sp(4), count=2)
    add("64-128 k3 s2", 64, 128, 3, 2, 0, sp(4))
    add("128-128 k3", 128, 128, 3, 1, 0, sp(8))
    add("up T 128-64", 128, 64, 2, 2, 1, sp(8))
    add("128-64 k3", 128, 64, 3, 1, 0, sp(4))
    add("up T 64-32", 64, 32, 2, 2, 1, sp(4))
    add("64-32 k3", 64, 32, 3, 1, 0, sp(2))
    add("up T 32-16", 32, 16, 2, 2, 1, sp(2))
    add("32-16 k3", 32, 16, 3, 1, 0, sp(1))
    add("out 16-1 k1", 16, 1, 1, 1, 0, sp(1))
    return L


def batch1(layers):
    # inference on one volume: forward cuts it into slabs of rows
    return [(L[0], L[1], 1) + L[3:] for L in layers]


SETS = {"unet2d64": lambda: unet2d(64), "unet2d128": lambda: unet2d(128), "unet3d": unet3d,
        "unet3d_n1": lambda: batch1(unet3d())}


def key(setname, layer):
    return setname + "/" + layer[0]


def shape_lines(sets):
    out = []
    for s in sets:
        for L in SETS[s]():
            name, dims, N, cin, cout, k, st, tr, sp = L[:9]
            out.append("%s %d %d %d %d %d %d %d %s" % (key(s, L).replace(" ", "~"), dims, N, cin, cout, k,
                                                        st, tr, " ".join(map(str, sp))))
    return "\n".join(out) + "\n"


def torch_round(torch, sets, threads, reps, best):
    F = torch.nn.functional
    for s in sets:
        for L in SETS[s]():
            name, dims, N, cin, cout, k, st, tr, sp = L[:9]
            pad = 0 if tr else (k - 1) // 2
            x = torch.randn((N, cin) + tuple(sp))
            wshape = (cin, cout) + (k,) * dims if tr else (cout, cin) + (k,) * dims
            w = torch.randn(wshape)
            b = torch.randn(cout)
            if tr:
                fwd = (F.conv_transpose2d if dims == 2 else F.conv_transpose3d)
                y = fwd(x, w, b, stride=st)
            else:
                fwd = (F.conv2d if dims == 2 else F.conv3d)
                y = fwd(x, w, b, stride=st, padding=pad)
            gy = torch.randn(y.shape)
            args = dict(bias_sizes=[cout], stride=[st] * dims, padding=[pad] * dims, dilation=[1] * dims,
                        transposed=bool(tr), output_padding=[0] * dims, groups=1)
            cb = torch.ops.aten.convolution_backward
            for nt in threads:
                torch.set_num_threads(nt)
                t = [1e30, 1e30, 1e30]
                for r in range(reps + 1):
                    t0 = time.perf_counter()
                    if tr:
                        fwd(x, w, b, stride=st)
                    else:
                        fwd(x, w, b, stride=st, padding=pad)
                    t1 = time.perf_counter()
                    cb(gy, x, w, args["bias_sizes"], args["stride"], args["padding"], args["dilation"],
                       args["transposed"], args["output_padding"], 1, [True, False, False])
                    t2 = time.perf_counter()
                    cb(gy, x, w, args["bias_sizes"], args["stride"], args["padding"], args["dilation"],
                       args["transposed"], args["output_padding"], 1, [False, True, True])
                    t3 = time.perf_counter()
                    if r:
                        t = [min(t[0], t1 - t0), min(t[1], t2 - t1), min(t[2], t3 - t2)]
                k_ = (key(s, L), "torch", nt)
                old = best.get(k_, [1e30] * 3)
                best[k_] = [min(old[i], t[i] * 1e3) for i in range(3)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conv", default="build/bench_conv")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sets", default="unet2d64,unet2d128,unet3d")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--modes", default="auto,plain,blocked")
    ap.add_argument("--json")
    a = ap.parse_args()
    sets = a.sets.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    try:
        import torch
    except ImportError:
        torch = None
        print("(PyTorch is not installed: segloss only)", file=sys.stderr)
    best, impl = {}, {}
    t0 = time.time()
    for r in range(a.rounds):
        print("bench_conv: round %d/%d segloss [%d s]" % (r + 1, a.rounds, time.time() - t0), file=sys.stderr)
        p = subprocess.run([a.conv, "--reps", str(a.reps), "--threads", a.threads, "--modes", a.modes],
                           input=shape_lines(sets), capture_output=True, text=True, check=True)
        for line in p.stdout.splitlines():
            j = json.loads(line)
            k_ = (j["name"].replace("~", " "), j["mode"], j["threads"])
            old = best.get(k_, [1e30] * 3)
            best[k_] = [min(old[0], j["fwd"]), min(old[1], j["bwd_data"]), min(old[2], j["bwd_weights"])]
            impl[k_] = j["impl"]
        if torch is not None:
            print("bench_conv: round %d/%d PyTorch [%d s]" % (r + 1, a.rounds, time.time() - t0), file=sys.stderr)
            torch_round(torch, sets, threads, a.reps, best)
    modes = a.modes.split(",") + (["torch"] if torch is not None else [])
    ops = ["fwd", "bwd_data", "bwd_weights"]
    for s in sets:
        print("\n### %s (ms, best of %d rounds x %d calls)\n" % (s, a.rounds, a.reps))
        for nt in threads:
            hdr = "| %d thr | layer x count | " % nt + " | ".join("%s %s" % (m, o) for o in ops for m in modes)
            if torch is not None:
                hdr += " | auto/torch step"
            print(hdr + " |")
            print("|" + "---|" * (hdr.count("|")))
            tot = {m: [0.0, 0.0, 0.0] for m in modes}
            for L in SETS[s]():
                kk = key(s, L)
                row = []
                for i, o in enumerate(ops):
                    for m in modes:
                        v = best.get((kk, m, nt), [float("nan")] * 3)[i]
                        row.append("%.3f" % v)
                for m in modes:
                    v = best.get((kk, m, nt), [float("nan")] * 3)
                    for i in range(3):
                        if not (i == 1 and L[10]):
                            tot[m][i] += L[9] * v[i]
                ratio = ""
                if torch is not None:
                    sa = sum(best.get((kk, "auto", nt), [float("nan")] * 3))
                    st = sum(best.get((kk, "torch", nt), [float("nan")] * 3))
                    ratio = " | %.2f" % (sa / st)
                print("| | %s x%d | %s%s |" % (L[0], L[9], " | ".join(row), ratio))
            row = []
            for i in range(3):
                for m in modes:
                    row.append("**%.2f**" % tot[m][i])
            ratio = ""
            if torch is not None:
                ratio = " | **%.2f**" % (sum(tot["auto"]) / sum(tot["torch"]))
            print("| | **network total** | %s%s |" % (" | ".join(row), ratio))
            print()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"|".join(map(str, k)): v for k, v in best.items()}, f, indent=0)
    print("segloss implementations (auto, 2 threads): " + "; ".join(
        "%s: %s" % (k[0], impl[k]) for k in impl if k[1] == "auto" and k[2] == threads[-1]), file=sys.stderr)


if __name__ == "__main__":
    main()
