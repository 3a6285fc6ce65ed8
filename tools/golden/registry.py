"""The loss registry of the C core, segloss.losses() (src/loss/registry.c),
read through lua5.4 and lua-cjson from the in-tree build: run `make` first.
Every list of losses in this package derives from it: the file order and
names, the options each loss knows and their defaults, the activations it
allows and the parts of a preset.  The defaults are not taken from it: the
references fill in the contract's (resolve: DEFAULTS in cases/<name>.py,
SHARED_DEFAULTS here), and check_defaults stops the generator when the
registry disagrees, so that a wrong default in C cannot flow into the
references."""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_LUA = ('local cjson = require "cjson"; cjson.encode_number_precision(14); '
        'io.write(cjson.encode(require("segloss.core").losses()))')


def _load():
    env = dict(os.environ, LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;", LUA_CPATH_5_4="build/?.so;;")
    try:
        r = subprocess.run(["lua5.4", "-e", _LUA], cwd=ROOT, env=env, capture_output=True, text=True)
    except OSError as e:
        raise SystemExit("golden: cannot run lua5.4 for the loss registry (%s)" % e)
    if r.returncode != 0:
        raise SystemExit("golden: cannot read segloss.losses() from build/segloss/core.so "
                         "(run make first):\n" + r.stderr)
    return json.loads(r.stdout)


LOSSES = _load()
BY_NAME = {d["name"]: d for d in LOSSES}
# options that are no case's business: the mask is a case field, out and grad
# belong to the call
CALL_OPTIONS = {"mask", "out", "grad"}


def names():
    return [d["name"] for d in LOSSES]


def known(name):
    return set(BY_NAME[name]["options"]) - CALL_OPTIONS


def activations(name):
    return set(BY_NAME[name]["activations"])


def kind(name):
    return BY_NAME[name]["kind"]


def real_x(name):
    """Does activation "none" take any real x (the Lovász hinge's scores)?"""
    return bool(BY_NAME[name].get("real_x"))


def binary(name):
    """Does the loss need one channel (C = 1)?"""
    return bool(BY_NAME[name].get("binary"))


def parts(name):
    """A preset's parts: [(loss, the option that weighs it or None), ...]."""
    return [(p["name"], p.get("weight")) for p in BY_NAME[name].get("parts", [])]


def default(name, opt, act="none"):
    """The registry's default of option opt for loss name with activation
    act: a value, or None when it has none (or takes another's: smooth_nr)."""
    o = BY_NAME[name]["options"][opt]
    if act == "softmax" and "default_softmax" in o:
        return o["default_softmax"]
    return o.get("default")


# The defaults every loss shares, as docs/losses.md gives them; each
# loss's own are DEFAULTS (and SOFTMAX_DEFAULTS) in cases/<name>.py. The
# references take the defaults from there, not from the registry, so that a
# wrong default in C shows up as a golden mismatch instead of flowing into
# the references; check_defaults stops the generator when the two differ.
SHARED_DEFAULTS = {"activation": "none", "reduction": "mean", "include_background": True,
                   "batch": False, "eps": 1e-7, "grad": True}


def contract_default(name, opt, act="none"):
    """The contract's default of option opt for loss name with activation
    act, or None."""
    from . import cases  # cases imports common, which imports this module
    mod = cases.MODULES[name]
    if act == "softmax" and opt in getattr(mod, "SOFTMAX_DEFAULTS", {}):
        return mod.SOFTMAX_DEFAULTS[opt]
    if opt in getattr(mod, "DEFAULTS", {}):
        return mod.DEFAULTS[opt]
    return SHARED_DEFAULTS.get(opt)


def check_defaults():
    """Every default the registry gives equals the contract's, for every
    activation; raises SystemExit naming the first that does not."""
    for name in names():
        for act in activations(name):
            for opt in sorted(known(name)):
                r, c = default(name, opt, act), contract_default(name, opt, act)
                if r is None and c is None:
                    continue
                same = (r == c and type(r) is type(c)) or (
                    isinstance(r, (int, float)) and not isinstance(r, bool) and
                    isinstance(c, (int, float)) and not isinstance(c, bool) and float(r) == float(c))
                if not same:
                    raise SystemExit("golden: the default of %s's option %s with activation %s is %r in "
                                     "the registry (src/loss/registry.c) but %r in the contract "
                                     "(tools/golden/cases/%s.py DEFAULTS, or SHARED_DEFAULTS)"
                                     % (name, opt, act, r, c, name))


def resolve(name, o):
    """The case's options o with every default of the contract filled in
    (a new dict; o is left as it is)."""
    act = o.get("activation", "none")
    r = dict(o)
    for opt in sorted(known(name)):
        if opt not in r:
            v = contract_default(name, opt, act)
            if v is not None:
                r[opt] = v
    # then the options whose default is another's value (smooth_nr: smooth)
    for opt in sorted(known(name)):
        src = BY_NAME[name]["options"][opt].get("default_from")
        if opt not in r and src in r:
            r[opt] = r[src]
    return r
