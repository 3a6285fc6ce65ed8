#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""gen_golden.py -- independent float64 reference values ("golden files") for segloss.

    /usr/bin/python3 tools/gen_golden.py [--out spec/golden] [--only dice,iou]

The entry point of the package tools/golden/, which holds the reference
implementations, the self-checks and one module of cases per loss
(tools/golden/cases/<loss>.py); its __init__.py describes the layout, and
tools/README-golden.md the files written.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_env import ensure_torch  # noqa: E402

ensure_torch("gen_golden.py")

from golden.cli import main  # noqa: E402

if __name__ == "__main__":
    main(__doc__.split("\n")[0])
