"""Running a case and writing a file: the guards that keep golden inputs away
from kinks, the JSON formatting, run_case (reference, loop implementation,
masked gradients, the case's expectation) and build_file."""
import json
import math
import zlib

import numpy as np
import torch

from .case import build_inputs, ignore_family
from . import registry
from .cases import CASES, MODULES
from .common import DT, EPS_DEFAULT, GENERATOR, check, expect_close
from .reference import Act, expand_target, torch_eval
from .scalar import scalar_eval


# ---------------------------------------------------------------------------
# Guards: keep golden inputs away from places where float32 and float64 could
# take different sides of a convention's kink.
# ---------------------------------------------------------------------------
def guard_inputs(name, case, x, t, m):
    o = case.opts
    act = o.get("activation", "none")
    check(np.all(np.isfinite(x)) and np.all(np.isfinite(t)), "finite inputs")
    check(np.all((t >= 0) & (t <= 1)) or (x.shape[1] >= 2 and t.shape[1] == 1), "t in [0,1]")
    if x.shape[1] >= 2 and t.shape[1] == 1:
        check(np.all((t == np.round(t)) & (t >= 0) & (t < x.shape[1])), "integer labels")
    if m is not None:
        check(np.all((m == 0) | (m == 1)), "mask values 0/1")
        if act == "softmax":
            check(m.shape[1] == 1 or np.all(m == m[:, :1]), "softmax mask identical across channels")
    if act == "none" and not registry.real_x(name):
        check(np.all((x >= 0) & (x <= 1)), "activation none needs x in [0,1]")
        eps = float(o.get("eps", EPS_DEFAULT))
        for a in (x.astype(np.float64), 1.0 - x.astype(np.float64)):
            near = np.abs(a - eps) <= 1e-3 * eps
            check(not np.any(near), "%s: a probability within 0.1%% of eps" % case.slug)
    if o.get("soft_label") and act != "none":
        tt = expand_target(torch.zeros(x.shape, dtype=DT), torch.tensor(t.astype(np.float64))).numpy()
        p = Act(torch.tensor(x.astype(np.float64)), act, EPS_DEFAULT).p.numpy()
        check(np.min(np.abs(p - tt)) > 1e-6, "%s: sigmoid/softmax p within 1e-6 of t with soft_label" % case.slug)
    if name == "focal_tversky":
        eps = float(o.get("eps", EPS_DEFAULT))
        o2 = {k: v for k, v in o.items() if k not in ("gamma", "eps")}
        o2["reduction"] = "none"
        Lt, _ = torch_eval("tversky", x, t, m, o2)
        bad = (Lt != 0) & (Lt > 0.1 * eps) & (Lt < 10 * eps)
        check(not np.any(bad), "%s: a tversky value within a factor 10 of eps" % case.slug)
    own = getattr(MODULES.get(name), "guard", None)
    if own is not None:                    # the loss's own kinks (cases/<name>.py)
        own(case, x, t, m)
    if o.get("soft_label") and o.get("squared"):
        check(np.all((t == 0) | (t == 1)), "%s: soft_label + squared with soft targets is not pinned (R14)" % case.slug)


# ---------------------------------------------------------------------------
# JSON output
# ---------------------------------------------------------------------------
def fmt_in(v):
    """An input value (a float32) as the shortest digits of its float64 value."""
    f = float(v)
    check(math.isfinite(f), "finite input")
    if f == 0.0:
        return "0"
    s = repr(f)
    if s.endswith(".0"):
        s = s[:-2]
    check(float(s) == f and float(np.float32(float(s))) == f, "input round trip " + s)
    return s


def fmt_out(v):
    f = float(v)
    check(math.isfinite(f), "non-finite result")
    if f == 0.0:
        return "0"
    s = "%.17g" % f
    check(float(s) == f, "output round trip")
    return s


def fmt_opt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_opt(e) for e in v) + "]"
    if isinstance(v, int):
        return str(v)
    check(isinstance(v, float) and math.isfinite(v), "option value")
    return repr(v)


def fmt_tensor(a, fmt):
    a = np.asarray(a)
    return '{"shape": [%s], "data": [%s]}' % (", ".join(str(int(d)) for d in a.shape),
                                              ", ".join(fmt(v) for v in a.reshape(-1)))


def case_json(cid, case, x, t, m, loss, grad):
    lines = ['      "id": %s' % json.dumps(cid),
             '      "note": %s' % json.dumps(case.note),
             '      "opts": {%s}' % ", ".join("%s: %s" % (json.dumps(k), fmt_opt(v)) for k, v in case.opts.items()),
             '      "x": %s' % fmt_tensor(x, fmt_in),
             '      "t": %s' % fmt_tensor(t, fmt_in)]
    if m is not None:
        lines.append('      "mask": %s' % fmt_tensor(m, fmt_in))
    if grad is None:
        lines.append('      "loss": %s' % fmt_tensor(loss, fmt_out))
        lines.append('      "grad": null')
    else:
        lines.append('      "loss": %s' % fmt_out(loss))
        lines.append('      "grad": %s' % fmt_tensor(grad, fmt_out))
    return "    {\n" + ",\n".join(lines) + "\n    }"


def effective(x, t, m, o):
    """The target and mask a loss sees with ignore_index (numpy): ignored
    elements masked, their target 0 (a label map ignores pixels)."""
    if "ignore_index" not in o:
        return t, m
    ign = t == np.float32(o["ignore_index"])
    keep = (~ign).astype(np.float32)
    if m is None:
        m2 = keep
    elif m.shape == keep.shape or m.shape[1] == 1:
        m2 = m * keep
    else:
        m2 = m * np.broadcast_to(keep, m.shape)
    return np.where(ign, np.float32(0), t).astype(np.float32), m2.astype(np.float32)


def run_case(name, case):
    cid_seed = zlib.crc32(("%s/%s" % (name, case.slug)).encode("utf-8"))
    R = np.random.default_rng(cid_seed)
    x, t, m = build_inputs(case, R)
    te, me = effective(x, t, m, case.opts)
    guard_inputs(name, case, x, te, me)
    loss, grad = torch_eval(name, x, t, m, case.opts)
    # second implementation, loss values
    ref = scalar_eval(name, x, t, m, case.opts)
    expect_close("%s/%s: tensor vs loop implementation" % (name, case.slug), loss, ref, rtol=1e-11, atol=1e-14)
    if grad is not None:
        check(np.all(np.isfinite(grad)), "finite gradient")
        check(np.isfinite(loss), "finite loss")
        if me is not None:
            mfull = np.broadcast_to(me, x.shape)
            check(np.all(grad[mfull == 0] == 0), "%s/%s: masked elements need gradient exactly 0" % (name, case.slug))
    else:
        check(np.all(np.isfinite(loss)), "finite loss")
    if case.expect is not None:
        case.expect(loss, grad, case)
    own = getattr(MODULES.get(name), "crosscheck", None)
    if own is not None:                    # e.g. against the published reference (cases/<name>.py)
        own(case, x, t, m, loss, grad)
    return x, t, m, loss, grad


def build_file(name):
    cases = CASES[name]()
    cases = cases + ignore_family(name, cases)
    slugs = [c.slug for c in cases]
    check(len(set(slugs)) == len(slugs), "duplicate case names in " + name)
    blocks = []
    for i, case in enumerate(cases, 1):
        cid = "%s-%02d-%s" % (name, i, case.slug)
        x, t, m, loss, grad = run_case(name, case)
        blocks.append(case_json(cid, case, x, t, m, loss, grad))
    text = ("{\n"
            '  "loss": %s,\n' % json.dumps(name)
            + '  "generator": %s,\n' % json.dumps(GENERATOR)
            + '  "torch_version": %s,\n' % json.dumps(torch.__version__)
            + '  "cases": [\n' + ",\n".join(blocks) + "\n  ]\n}\n")
    # the file must parse and give back exactly what was computed
    back = json.loads(text)
    check(back["loss"] == name and len(back["cases"]) == len(cases), "json round trip")
    return text, len(cases)
