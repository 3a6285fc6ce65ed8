"""The loss registry of the C core, segloss.losses() (src/loss/registry.c),
read through lua5.4 and lua-cjson from the in-tree build: run `make` first.
Every list of losses in this package derives from it: the file order and
names, the options each loss knows and their defaults, the activations it
allows and the parts of a preset.  The references get each case's options
with the registry's defaults filled in (resolve), so that a loss's defaults
are written once, in its descriptor; the committed golden files pin them (a
changed default fails spec 10 until the files are regenerated)."""
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


def resolve(name, o):
    """The case's options o with every default of the registry filled in
    (a new dict; o is left as it is)."""
    act = o.get("activation", "none")
    r = dict(o)
    for opt in sorted(known(name)):
        if opt not in r:
            v = default(name, opt, act)
            if v is not None:
                r[opt] = v
    # then the options whose default is another's value (smooth_nr: smooth)
    for opt in sorted(known(name)):
        src = BY_NAME[name]["options"][opt].get("default_from")
        if opt not in r and src in r:
            r[opt] = r[src]
    return r
