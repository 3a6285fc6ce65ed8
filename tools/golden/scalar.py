"""The second implementation: plain Python loops over elements, loss values
only, written straight from the definitions; it shares no code with
reference.py.  run_case (write.py) requires both to agree on every golden case."""
import math

import numpy as np

from . import registry
from .common import EPS_DEFAULT


# ---------------------------------------------------------------------------
# Second implementation: plain Python loops over elements (loss values only).
# Written straight from the definitions; it shares no code with the above.
# ---------------------------------------------------------------------------
def sc_logsig(v):
    return -math.log1p(math.exp(-v)) if v >= 0 else v - math.log1p(math.exp(v))


class Scalar:
    def __init__(self, name, x, t, mask, o):
        self.name, self.o = name, o
        N, C = x.shape[0], x.shape[1]
        Msp = int(np.prod(x.shape[2:]))
        self.N, self.C, self.Msp, self.sp_shape = N, C, Msp, x.shape[2:]
        X = x.astype(np.float64).reshape(N, C, Msp)
        if t.shape[1] == C:
            T = t.astype(np.float64).reshape(N, C, Msp)
        else:
            T = np.zeros((N, C, Msp))
            lab = t.reshape(N, Msp)
            ii = o.get("ignore_index")
            for n in range(N):
                for s in range(Msp):
                    if ii is None or lab[n, s] != float(ii):
                        T[n, int(lab[n, s]), s] = 1.0
        W = np.ones((N, C, Msp))
        if mask is not None:
            mk = mask.astype(np.float64).reshape(N, mask.shape[1], Msp)
            for n in range(N):
                for c in range(C):
                    W[n, c] = mk[n, 0 if mask.shape[1] == 1 else c]
        if "ignore_index" in o:
            # elements whose target is ignore_index: weight 0 and target 0; a
            # label map marks every channel of its pixel
            ii = float(o["ignore_index"])
            raw = t.astype(np.float64).reshape(N, t.shape[1], Msp)
            for n in range(N):
                for c in range(C):
                    for s in range(Msp):
                        if raw[n, 0 if t.shape[1] == 1 and C > 1 else c, s] == ii:
                            W[n, c, s] = 0.0
                            T[n, c, s] = 0.0
        self.X, self.T, self.W = X, T, W
        self.act = o.get("activation", "none")
        self.eps = float(o.get("eps", EPS_DEFAULT))
        self.inc = [not (c == 0 and C >= 2 and o.get("include_background", True) is False)
                    for c in range(C)]
        # class weights; a weight that is one number is not one (unified_focal's lambda)
        self.w = [float(v) for v in o["weight"]] if isinstance(o.get("weight"), list) else [1.0] * C
        self.red = o.get("reduction", "mean")
        self._activate()

    def _activate(self):
        N, C, Msp = self.N, self.C, self.Msp
        P = np.zeros((N, C, Msp)); Q = np.zeros((N, C, Msp))
        LP = np.zeros((N, C, Msp)); LQ = np.zeros((N, C, Msp))
        for n in range(N):
            for s in range(Msp):
                if self.act == "softmax":
                    col = [self.X[n, c, s] for c in range(C)]
                    top = max(col)
                    lse = top + math.log(sum(math.exp(v - top) for v in col))
                    pr = [math.exp(v - lse) for v in col]
                    for c in range(C):
                        P[n, c, s] = pr[c]
                        LP[n, c, s] = col[c] - lse
                        Q[n, c, s] = sum(pr[k] for k in range(C) if k != c)
                        LQ[n, c, s] = float("nan")
                    continue
                for c in range(C):
                    v = self.X[n, c, s]
                    if self.act == "none":
                        P[n, c, s], Q[n, c, s] = v, 1.0 - v
                        LP[n, c, s] = math.log(max(v, self.eps))
                        LQ[n, c, s] = math.log(max(1.0 - v, self.eps))
                    else:
                        LP[n, c, s], LQ[n, c, s] = sc_logsig(v), sc_logsig(-v)
                        P[n, c, s], Q[n, c, s] = math.exp(LP[n, c, s]), math.exp(LQ[n, c, s])
        self.P, self.Q, self.LP, self.LQ = P, Q, LP, LQ

    # -- pixel losses -----------------------------------------------------
    def elementwise(self, term):
        N, C, Msp = self.N, self.C, self.Msp
        if self.red == "none":
            out = np.zeros((N, C, Msp))
            for n in range(N):
                for c in range(C):
                    for s in range(Msp):
                        if self.inc[c]:
                            out[n, c, s] = self.W[n, c, s] * term(n, c, s)
            return out.reshape((N, C) + tuple(self.sp_shape))
        tot = cnt = 0.0
        for n in range(N):
            for c in range(C):
                if not self.inc[c]:
                    continue
                for s in range(Msp):
                    if self.W[n, c, s] != 0:
                        tot += self.W[n, c, s] * self.w[c] * term(n, c, s)
                        cnt += self.W[n, c, s]
        if self.red == "sum":
            return tot
        return tot / cnt if cnt > 0 else 0.0

    def per_pixel(self, term):
        """term(n, c, s) of a softmax-style loss, summed over included c."""
        N, C, Msp = self.N, self.C, self.Msp
        out = np.zeros((N, 1, Msp))
        tot = cnt = 0.0
        for n in range(N):
            for s in range(Msp):
                mv = self.W[n, 0, s]
                plain = sum(term(n, c, s) for c in range(C) if self.inc[c])
                weighted = sum(self.w[c] * term(n, c, s) for c in range(C) if self.inc[c])
                out[n, 0, s] = mv * plain
                tot += mv * weighted
                cnt += mv
        if self.red == "none":
            return out.reshape((N, 1) + tuple(self.sp_shape))
        if self.red == "sum":
            return tot
        return tot / cnt if cnt > 0 else 0.0

    def bce(self):
        pw = self.o.get("pos_weight", 1.0)
        if pw == "auto":
            mt = st = 0.0
            for n in range(self.N):
                for c in range(self.C):
                    if self.inc[c]:
                        for s in range(self.Msp):
                            mt += self.W[n, c, s]
                            st += self.W[n, c, s] * self.T[n, c, s]
            pw = (mt - st) / max(st, 1.0)
        pw = float(pw)

        def term(n, c, s):
            tt = self.smooth(self.T[n, c, s], 2)
            return -(pw * tt * self.LP[n, c, s] + (1.0 - tt) * self.LQ[n, c, s])
        return self.elementwise(term)

    def smooth(self, tt, K):
        """label_smoothing e: t (1 - e) + e / K."""
        e = float(self.o.get("label_smoothing", 0.0))
        return tt * (1.0 - e) + e / K if e else tt

    def ce(self):
        K = self.C if self.act == "softmax" else 2  # the contract's K, also for ce with "none"
        return self.per_pixel(lambda n, c, s: -self.smooth(self.T[n, c, s], K) * self.LP[n, c, s])

    def focal(self, alpha_default=None):
        g = float(self.o.get("gamma", 2.0))

        def fpow(q):
            return 1.0 if g == 0 else (0.0 if q == 0 else q ** g)

        if self.act == "softmax":
            alpha = self.o.get("alpha", False if alpha_default is None else alpha_default)
            av = [1.0] * self.C if alpha is False else [float(v) for v in alpha]
            return self.per_pixel(lambda n, c, s: -av[c] * self.smooth(self.T[n, c, s], self.C)
                                  * fpow(self.Q[n, c, s]) * self.LP[n, c, s])
        alpha = self.o.get("alpha", 0.25 if alpha_default is None else alpha_default)

        def term(n, c, s):
            tt, p, q = self.smooth(self.T[n, c, s], 2), self.P[n, c, s], self.Q[n, c, s]
            pt_c = tt * q + (1.0 - tt) * p
            b = -(tt * self.LP[n, c, s] + (1.0 - tt) * self.LQ[n, c, s])
            at = 1.0 if alpha is False else float(alpha) * tt + (1.0 - float(alpha)) * (1.0 - tt)
            return at * fpow(pt_c) * b
        return self.elementwise(term)

    # -- region losses ----------------------------------------------------
    def stats(self, soft=False):
        batch = bool(self.o.get("batch", False))
        R = 1 if batch else self.N
        keys = ("TP", "SP", "ST", "SP2", "ST2", "M", "SAD", "A", "B")
        st = {k: [[0.0] * self.C for _ in range(R)] for k in keys}
        for n in range(self.N):
            r = 0 if batch else n
            for c in range(self.C):
                for s in range(self.Msp):
                    w, p, tt = self.W[n, c, s], self.P[n, c, s], self.T[n, c, s]
                    st["TP"][r][c] += w * p * tt
                    st["SP"][r][c] += w * p
                    st["ST"][r][c] += w * tt
                    st["SP2"][r][c] += w * p * p
                    st["ST2"][r][c] += w * tt * tt
                    st["M"][r][c] += w
                    st["SAD"][r][c] += w * abs(p - tt)
                    st["A"][r][c] += w * (tt - p) ** 2 * tt
                    st["B"][r][c] += w * (tt - p) ** 2 * (1.0 - tt)
        if soft:
            for r in range(R):
                for c in range(self.C):
                    st["TP"][r][c] = (st["SP"][r][c] + st["ST"][r][c] - st["SAD"][r][c]) / 2.0
        return R, st

    def region(self, Lfun):
        R, st = self.stats(bool(self.o.get("soft_label", False)))
        out = np.zeros((R, self.C))
        tot = wsum = 0.0
        for r in range(R):
            for c in range(self.C):
                if not self.inc[c] or st["M"][r][c] <= 0:
                    continue
                L = Lfun({k: v[r][c] for k, v in st.items()})
                out[r, c] = L
                tot += self.w[c] * L
                wsum += self.w[c]
        if self.red == "none":
            return out
        if self.red == "sum":
            return tot
        return tot / wsum if wsum > 0 else 0.0

    def dice(self):
        o = self.o
        s = float(o.get("smooth", 1.0))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))

        def L(d):
            if o.get("complement", False):
                tn = d["M"] - d["SP"] - d["ST"] + d["TP"]
                return (1 - (d["TP"] + snr) / (d["SP"] + d["ST"] + 2 * sdr)
                        - (tn + snr) / (2 * d["M"] - d["SP"] - d["ST"] + 2 * sdr))
            den = d["SP2"] + d["ST2"] if o.get("squared", False) else d["SP"] + d["ST"]
            return 1 - (2 * d["TP"] + snr) / (den + sdr)
        return self.region(L)

    def iou(self):
        o = self.o
        s = float(o.get("smooth", 1e-6))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))

        def L(d):
            tp, sp, stt = d["TP"], d["SP"], d["ST"]
            if o.get("empty", "none") == "complement" and stt == 0:
                tp, sp, stt = d["M"] - sp - stt + tp, d["M"] - sp, d["M"] - stt
            return 1 - (tp + snr) / (sp + stt - tp + sdr)
        return self.region(L)

    def _tv(self, d):
        o = self.o
        s = float(o.get("smooth", 1e-5))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))
        a, b = float(o.get("alpha", 0.3)), float(o.get("beta", 0.7))
        tp = d["TP"]
        return 1 - (tp + snr) / (tp + a * (d["SP"] - tp) + b * (d["ST"] - tp) + sdr)

    def tversky(self):
        return self.region(self._tv)

    def focal_tversky(self):
        g = float(self.o.get("gamma", 0.75))
        eps = float(self.o.get("eps", EPS_DEFAULT))
        return self.region(lambda d: max(self._tv(d), eps) ** g)

    def sensitivity_specificity(self):
        o = self.o
        sdr = float(o.get("smooth_dr", o.get("smooth", 1e-5)))
        lam = float(o.get("lambda", 0.05))
        return self.region(lambda d: lam * d["A"] / (d["ST"] + sdr)
                           + (1 - lam) * d["B"] / (d["M"] - d["ST"] + sdr))

    def generalized_dice(self):
        o = self.o
        s = float(o.get("smooth", 1e-5))
        snr, sdr = float(o.get("smooth_nr", s)), float(o.get("smooth_dr", s))
        wt = o.get("w_type", "square")
        R, st = self.stats(bool(o.get("soft_label", False)))
        vals, taken = [], []
        for r in range(R):
            cls = [c for c in range(self.C) if self.inc[c]]
            w = {}
            for c in cls:
                stc = st["ST"][r][c]
                if wt == "uniform":
                    w[c] = 1.0
                elif stc > 0:
                    w[c] = 1.0 / (stc * stc) if wt == "square" else 1.0 / stc
            finite = [w[c] for c in w]
            for c in cls:
                if c not in w:
                    w[c] = max(finite) if finite else 0.0
            if all(st["ST"][r][c] == 0 for c in cls):   # all empty: w = 0
                w = {c: 0.0 for c in cls}
            num = 2 * sum(w[c] * st["TP"][r][c] for c in cls) + snr
            den = sum(w[c] * (st["SP"][r][c] + st["ST"][r][c]) for c in cls) + sdr
            vals.append(1 - num / den)
            taken.append(sum(st["M"][r][c] for c in cls) > 0)
        if self.red == "none":
            return np.array([[v if k else 0.0] for v, k in zip(vals, taken)])
        tot = sum(v for v, k in zip(vals, taken) if k)
        if self.red == "sum":
            return tot
        n = sum(taken)
        return tot / n if n else 0.0

    def value(self, name=None):
        """The loss value: a method named after the loss, a preset's weighted
        sum of its parts, or the scalar(sc) of the loss's cases module."""
        nm = name or self.name
        from .cases import MODULES
        if registry.kind(nm) == "preset" and not hasattr(MODULES.get(nm), "scalar"):
            total = None
            for part, wopt in registry.parts(nm):
                v = self.value(part)
                v = v if wopt is None else float(self.o[wopt]) * v
                total = v if total is None else total + v
            return total
        own = getattr(self, nm, None)
        if own is not None:
            return own()
        return MODULES[nm].scalar(self)


def scalar_eval(name, x, t, m, o):
    return Scalar(name, x, t, m, registry.resolve(name, o)).value()
