#!/usr/bin/env python3
"""Measures where a convolution call starts to gain from a second thread, to
choose SL_CONV_MIN_FLOPS (src/nn/conv.h).

Runs $(BUILD)/bench_conv with --min-flops 0 (every call on the threads asked
for) on 3x3 C->C convolutions from 0.04 to 600 Mflop, on 1 and 2 threads,
best of 3 interleaved rounds, once with the other core idle and once with it
held by a busy loop (what a loaded machine looks like: every barrier then
waits for the scheduler). Prints total ms (forward + both gradients) and the
ratio 2 threads / 1 thread per shape.

    python3 tools/conv_threshold.py [--conv build/bench_conv] [--rounds 3]
"""
import argparse
import json
import subprocess

SHAPES = [(2, 4, 8), (2, 8, 8), (2, 8, 16), (2, 16, 16), (4, 16, 16), (2, 16, 32), (4, 16, 32),
          (8, 16, 32), (4, 32, 32), (8, 32, 32), (8, 32, 64)]


def sweep(conv, rounds, busy):
    lines = "".join("c%d_%d_%d 2 %d %d %d 3 1 0 %d %d\n" % (n, c, s, n, c, c, s, s) for n, c, s in SHAPES)
    best = {}
    spin = subprocess.Popen(["sh", "-c", "while :; do :; done"]) if busy else None
    try:
        for _ in range(rounds):
            for t in (1, 2):
                out = subprocess.run([conv, "--reps", "15", "--threads", str(t), "--modes", "auto",
                                      "--min-flops", "0"], input=lines, capture_output=True, text=True,
                                     check=True).stdout
                for line in out.splitlines():
                    d = json.loads(line)
                    k = (d["name"], t)
                    best[k] = min(best.get(k, 1e30), d["fwd"] + d["bwd_data"] + d["bwd_weights"])
    finally:
        if spin:
            spin.kill()
            spin.wait()
    print("\nother core %s" % ("busy" if busy else "idle"))
    print("| shape (N, C, S) | Mflop | 1 thread ms | 2 threads ms | 2 / 1 |")
    print("|---|---|---|---|---|")
    for n, c, s in SHAPES:
        name = "c%d_%d_%d" % (n, c, s)
        fl = 2 * n * c * c * 9 * s * s
        a, b = best[(name, 1)], best[(name, 2)]
        print("| (%d, %d, %d) | %.2f | %.3f | %.3f | %.2f |" % (n, c, s, fl / 1e6, a, b, b / a))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conv", default="build/bench_conv")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for busy in (False, True):
        sweep(a.conv, a.rounds, busy)


if __name__ == "__main__":
    main()
