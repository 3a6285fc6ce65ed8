"""The command line of tools/gen_golden.py: self-checks, then every file."""
import argparse
import os
import sys

import numpy as np

from . import registry
from .cases import CASES, MODULES
from .common import LOSS_NAMES, GoldenError, check
from .selfcheck import (selfcheck_builtins, selfcheck_conventions, selfcheck_gradcheck,
                        selfcheck_invariants)
from .write import build_file

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(description=None):
    """description: the first line of --help (gen_golden.py passes its own)."""
    ap = argparse.ArgumentParser(description=description or __doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="output directory (default: <repo>/spec/golden)")
    ap.add_argument("--only", default=None, help="comma-separated loss names (default: all)")
    args = ap.parse_args()
    root = os.path.dirname(TOOLS)
    out = args.out or os.path.join(root, "spec", "golden")
    names = LOSS_NAMES if not args.only else args.only.split(",")
    for n in names:
        check(n in CASES, "unknown loss " + n)
    registry.check_defaults()
    try:
        R = np.random.default_rng(20240601)
        nb, has_tv = selfcheck_builtins(R)
        ni = selfcheck_invariants(R)
        ng = selfcheck_gradcheck(R)
        nc = selfcheck_conventions()
        # a loss's own checks (cases/<name>.py selfcheck(R): against its
        # published implementation, say), each returning its count
        no = sum(MODULES[n].selfcheck(R) for n in LOSS_NAMES if hasattr(MODULES.get(n), "selfcheck"))
        print("self-checks passed: %d against PyTorch built-ins%s, %d invariants, %d gradchecks, %d convention "
              "values, %d of the losses' own"
              % (nb, " (torchvision included)" if has_tv else " (torchvision not installed: its formula only)",
                 ni, ng, nc, no))
        texts = {}
        for n in names:
            texts[n], count = build_file(n)
            print("  %-24s %2d cases" % (n, count))
    except GoldenError as e:
        sys.stderr.write("gen_golden.py: FAILED: %s\n" % e)
        sys.exit(1)
    os.makedirs(out, exist_ok=True)
    for n in names:
        path = os.path.join(out, n + ".json")
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(texts[n])
        print("wrote %s (%d bytes)" % (os.path.relpath(path), len(texts[n])))
