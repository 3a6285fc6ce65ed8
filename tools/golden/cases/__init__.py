"""The case lists, one module per loss (cases/<loss>.py, each with a cases()
that returns its list), found by the loss names of the registry: CASES maps
a loss name to that function; the files are written in the registry's order
(LOSS_NAMES).  A loss that is new to the references may also define there
torch_loss(x, t, m, o), its PyTorch float64 reference (reference.py), and
scalar(sc), its loop-based second implementation given the Scalar sc
(scalar.py)."""
import importlib

from ..common import LOSS_NAMES

MODULES = {}
for _name in LOSS_NAMES:
    try:
        MODULES[_name] = importlib.import_module("." + _name, __name__)
    except ModuleNotFoundError as e:
        if e.name != __name__ + "." + _name:
            raise
CASES = {n: m.cases for n, m in MODULES.items()}
