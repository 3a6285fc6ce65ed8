#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""gen_metrics_golden.py -- independent float64 references for segloss.metrics.

    /usr/bin/python3 tools/gen_metrics_golden.py [--out spec/golden]

Writes two files (format: tools/README-golden.md, section "Metrics"):

  metrics_edt.json      Euclidean distance transforms of binary masks
  metrics_surface.json  overlap counts/ratios and surface distances of
                        (prediction, target) mask pairs

Nothing here calls segloss.  The values come from numpy/scipy and every case
is checked against a second, brute-force implementation written below; any
disagreement above 1e-9 (or any other failed check) aborts with status 1
before a file is written.  Seeds are fixed, so two runs give byte-identical
files.

------------------------------------------------------------------------------
CONVENTIONS IMPLEMENTED
------------------------------------------------------------------------------
 C1  distance_transform(mask, spacing): for a nonzero voxel, the Euclidean
     distance between voxel centres, in physical units (offset along axis i
     times spacing[i]), to the nearest ZERO voxel; 0 at zero voxels.  Equal
     to scipy.ndimage.distance_transform_edt(mask, sampling=spacing).
     A mask without any zero voxel gives +inf everywhere (written as the JSON
     string "inf").  NOTE: scipy itself does NOT return inf there: its
     feature transform has no feature to point to and it returns the finite
     distance to a phantom voxel at index (-1, 0, ..., 0), e.g. [[1, 1.41..,
     2.23..], [2, 2.23.., 2.82..]] for np.ones((2, 3)).  The golden file
     expects inf; the scipy value is never used for such masks.
 C2  surface (edges) of a mask: mask XOR binary_erosion(mask, structure =
     generate_binary_structure(ndim, 1) (the cross: 2 / 4 / 6 neighbours in
     1-D / 2-D / 3-D), border_value = 0).  A mask voxel is an edge iff one of
     its face neighbours is background or lies outside the image, so object
     voxels on the image border are edges and a full image has the border
     shell as its surface.  (MONAI's get_mask_edges without the crop.)
 C3  directed surface distance of an edge voxel p of P: min over edge voxels
     g of G of the Euclidean distance between voxel centres, physical units.
 C4  hd   = max(max d(P->G), max d(G->P))
     hd95 = max(percentile95(d(P->G)), percentile95(d(G->P))) with
            numpy.percentile(..., 95) and its default "linear" method: on the
            ascending sorted distances a[0..n-1], position h = 0.95 * (n - 1),
            value = a[floor h] + (h - floor h) * (a[floor h + 1] - a[floor h]).
            (numpy 1.24 evaluates the lerp as b - (b - a) * (1 - t) when
            t >= 0.5; the two forms differ by at most an ulp or so.)
     assd = (sum d(P->G) + sum d(G->P)) / (#edges(P) + #edges(G)); the sum is
            math.fsum (correctly rounded).
     nsd  = (#{p: d(p,G) <= tau} + #{g: d(g,P) <= tau}) / (#edges(P) +
            #edges(G)).  Cases are built so that no distance is within 1e-9
            of tau unless it equals tau EXACTLY with an exactly representable
            squared distance (checked with rational arithmetic), so any
            correct double-precision implementation, comparing d <= tau or
            d^2 <= tau^2, agrees.
 C5  overlap counts TP, FP, FN, TN of the binary masks; dice = 2TP/(2TP+FP+FN),
     iou = TP/(TP+FP+FN), precision = TP/(TP+FP), sensitivity = TP/(TP+FN),
     specificity = TN/(TN+FP).
 C6  empty masks: both empty -> dice = iou = precision = sensitivity = nsd = 1,
     hd = hd95 = assd = 0.  Exactly one empty -> dice = iou = precision =
     sensitivity = nsd = 0, hd = hd95 = assd = empty_distance =
     sqrt(sum_i (shape_i * spacing_i)^2) (the diagonal of the image BOX, not
     the distance between the centres of two opposite corner voxels, which
     would use shape_i - 1), accumulated in axis order, then sqrt.
     Specificity is not part of the empty-mask policy: it is TN/(TN+FP) as
     usual, and 1 when TN + FP = 0 (target fills the image) -- also when the
     prediction is empty (case "pred-empty-target-full").
 C7  every case is one (sample, class) pair.

Masks are written flat, row-major (C order, last axis fastest).
"""
import argparse
import json
import math
import os
import sys
from fractions import Fraction

if __name__ == "__main__":
    try:
        import numpy as np
        import scipy.ndimage as ndi
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
                and os.path.exists("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        sys.exit("gen_metrics_golden.py: needs numpy and scipy "
                 "(apt-get install python3-numpy python3-scipy)")
else:
    import numpy as np
    import scipy.ndimage as ndi

GENERATOR = "tools/gen_metrics_golden.py"
AGREE = 1e-9          # brute force vs scipy, absolute
TIE_BAND = 1e-9       # |d - tau| below this (relative to max(1, tau)) is a tie


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


# ---------------------------------------------------------------------------
# Reference implementations
# ---------------------------------------------------------------------------
def coords_of(mask):
    """Integer voxel indices (k, ndim) of the nonzero voxels, C order."""
    return np.argwhere(mask).astype(np.int64)


def pair_sq(a, b, spacing):
    """(len(a), len(b)) squared physical distances between index sets a, b."""
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    for ax, h in enumerate(spacing):
        d = (a[:, None, ax] - b[None, :, ax]).astype(np.float64) * float(h)
        out += d * d
    return out


def edt_scipy(mask, spacing):
    m = np.asarray(mask, dtype=bool)
    if m.all():
        return np.full(m.shape, np.inf)
    return ndi.distance_transform_edt(m, sampling=[float(h) for h in spacing])


def edt_brute(mask, spacing):
    """O(n * zeros): each voxel's distance to every zero voxel, the minimum."""
    m = np.asarray(mask, dtype=bool)
    allv = np.indices(m.shape).reshape(m.ndim, -1).T.astype(np.int64)
    zeros = coords_of(~m)
    if zeros.shape[0] == 0:
        return np.full(m.shape, np.inf)
    best = np.sqrt(pair_sq(allv, zeros, spacing).min(axis=1))
    return best.reshape(m.shape)


def edges_scipy(mask):
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros(m.shape, dtype=bool)
    st = ndi.generate_binary_structure(m.ndim, 1)
    return m ^ ndi.binary_erosion(m, structure=st, border_value=0)


def edges_loop(mask):
    """Second edge definition: a mask voxel with a face neighbour that is 0
    or outside the image (padding with 0)."""
    m = np.asarray(mask, dtype=bool)
    p = np.pad(m, 1, mode="constant", constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(m.ndim))
    allnb = np.ones(m.shape, dtype=bool)
    for ax in range(m.ndim):
        for s in (-1, 1):
            sl = list(inner)
            sl[ax] = slice(1 + s, p.shape[ax] - 1 + s)
            allnb &= p[tuple(sl)]
    return m & ~allnb


def directed_scipy(src_edges, dst_edges, spacing):
    """Distances from each src edge voxel (C order) to the nearest dst edge
    voxel: EDT of the complement of dst's edges, read at src's edges."""
    dt = ndi.distance_transform_edt(~dst_edges, sampling=[float(h) for h in spacing])
    return dt[src_edges]


def directed_brute(src_edges, dst_edges, spacing):
    a, b = coords_of(src_edges), coords_of(dst_edges)
    sq = pair_sq(a, b, spacing)
    return np.sqrt(sq.min(axis=1)), sq, a, b


def percentile_linear(d, q):
    """Linear-interpolation percentile written out (numpy's default)."""
    a = sorted(float(v) for v in d)
    n = len(a)
    h = (q / 100.0) * (n - 1)
    lo = int(math.floor(h))
    if lo >= n - 1:
        return a[-1]
    t = h - lo
    return a[lo] + t * (a[lo + 1] - a[lo])


def check_ties(name, d, sq, a, b, spacing, tau):
    """Distances within TIE_BAND of tau must be true, exactly representable
    ties (else nsd would depend on rounding)."""
    fr_h = [Fraction(float(h)) for h in spacing]
    fr_tau2 = Fraction(float(tau)) ** 2
    near = np.nonzero(np.abs(d - tau) <= TIE_BAND * max(1.0, tau))[0]
    if len(near):
        check(Fraction(float(tau) * float(tau)) == fr_tau2, "%s: ties at a tau whose square is inexact" % name)
    for i in near:
        row = sq[i]
        cand = np.nonzero(row <= row.min() * (1 + 1e-6) + 1e-12)[0]
        exact = None
        for j in cand:
            terms = [(Fraction(int(a[i, ax] - b[j, ax])) * fr_h[ax]) ** 2 for ax in range(len(spacing))]
            for ax, tm in enumerate(terms):
                fl = (float(a[i, ax] - b[j, ax]) * float(spacing[ax])) ** 2
                check(Fraction(fl) == tm, "%s: inexact squared term near tau" % name)
            s = sum(terms)
            exact = s if exact is None else min(exact, s)
        check(exact == fr_tau2,
              "%s: a distance %.17g lies within %g of tau = %g without being equal to it"
              % (name, d[i], TIE_BAND, tau))
        check(float(exact) == float(tau) ** 2 and math.sqrt(float(exact)) == float(tau),
              "%s: tie not exactly representable" % name)
    return len(near)


def overlap(pred, target):
    p, g = np.asarray(pred, bool), np.asarray(target, bool)
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    tn = int(np.count_nonzero(~p & ~g))
    # second count, one voxel at a time
    c = [0, 0, 0, 0]
    for pv, gv in zip(p.ravel().tolist(), g.ravel().tolist()):
        c[(0 if pv else 2) + (0 if gv else 1)] += 1
    check(c == [tp, fp, fn, tn], "overlap counts")
    return tp, fp, fn, tn


def ratio(num, den):
    return 1.0 if den == 0 else num / den


def empty_distance(shape, spacing):
    acc = 0.0
    for n, h in zip(shape, spacing):
        v = float(n) * float(h)
        acc += v * v
    return math.sqrt(acc)


def surface_expect(name, pred, target, spacing, tau):
    pred = np.asarray(pred, bool)
    target = np.asarray(target, bool)
    shape = pred.shape
    tp, fp, fn, tn = overlap(pred, target)
    ep, eg = edges_scipy(pred), edges_scipy(target)
    check(np.array_equal(ep, edges_loop(pred)) and np.array_equal(eg, edges_loop(target)),
          "%s: edge definitions disagree" % name)
    np_, ng = int(ep.sum()), int(eg.sum())
    check((np_ == 0) == (not pred.any()) and (ng == 0) == (not target.any()),
          "%s: a non-empty mask has edges" % name)
    e = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "pred_edges": np_, "target_edges": ng,
         "specificity": ratio(tn, tn + fp)}
    pe, ge = not pred.any(), not target.any()
    info = {}
    if pe and ge:
        e.update(dice=1.0, iou=1.0, precision=1.0, sensitivity=1.0, nsd=1.0, hd=0.0, hd95=0.0, assd=0.0)
        return e, info
    if pe or ge:
        ed = empty_distance(shape, spacing)
        e.update(dice=0.0, iou=0.0, precision=0.0, sensitivity=0.0, nsd=0.0, hd=ed, hd95=ed, assd=ed)
        return e, info
    e["dice"] = ratio(2 * tp, 2 * tp + fp + fn)
    e["iou"] = ratio(tp, tp + fp + fn)
    e["precision"] = ratio(tp, tp + fp)
    e["sensitivity"] = ratio(tp, tp + fn)

    d_pg = directed_scipy(ep, eg, spacing)
    d_gp = directed_scipy(eg, ep, spacing)
    b_pg, sq_pg, a1, b1 = directed_brute(ep, eg, spacing)
    b_gp, sq_gp, a2, b2 = directed_brute(eg, ep, spacing)
    check(d_pg.shape == b_pg.shape and d_gp.shape == b_gp.shape, "%s: distance counts" % name)
    err = max(float(np.max(np.abs(d_pg - b_pg))), float(np.max(np.abs(d_gp - b_gp))))
    check(err <= AGREE, "%s: scipy and brute-force surface distances differ by %g" % (name, err))
    info["maxerr"] = err

    hd = max(float(d_pg.max()), float(d_gp.max()))
    check(hd == max(float(b_pg.max()), float(b_gp.max())) or abs(hd - max(b_pg.max(), b_gp.max())) <= AGREE,
          "%s: hd" % name)
    p1, p2 = float(np.percentile(d_pg, 95)), float(np.percentile(d_gp, 95))
    q1, q2 = percentile_linear(b_pg, 95), percentile_linear(b_gp, 95)
    check(abs(p1 - q1) <= AGREE and abs(p2 - q2) <= AGREE, "%s: percentile" % name)
    hd95 = max(p1, p2)
    total = math.fsum(d_pg.tolist() + d_gp.tolist())
    assd = total / (np_ + ng)
    bassd = math.fsum(b_pg.tolist() + b_gp.tolist()) / (np_ + ng)
    check(abs(assd - bassd) <= AGREE, "%s: assd" % name)

    ties = check_ties(name + " P->G", b_pg, sq_pg, a1, b1, spacing, tau) \
        + check_ties(name + " G->P", b_gp, sq_gp, a2, b2, spacing, tau)
    k1 = int(np.count_nonzero(d_pg <= tau)) + int(np.count_nonzero(d_gp <= tau))
    k2 = int(np.count_nonzero(b_pg <= tau)) + int(np.count_nonzero(b_gp <= tau))
    check(k1 == k2, "%s: nsd counts differ" % name)
    e.update(hd=hd, hd95=hd95, assd=assd, nsd=k1 / (np_ + ng))
    info.update(ties=ties, hd_pg=float(d_pg.max()), hd_gp=float(d_gp.max()))
    return e, info


# ---------------------------------------------------------------------------
# Mask makers
# ---------------------------------------------------------------------------
def noise(rng, shape, density):
    return rng.random(shape) < density


def ellipsoids(rng, shape, k, rmin, rmax, margin=0.0):
    """Union of k random axis-aligned ellipsoids (index units)."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    m = np.zeros(shape, dtype=bool)
    for _ in range(k):
        acc = np.zeros(shape)
        for ax, n in enumerate(shape):
            c = rng.uniform(margin, n - 1 - margin)
            r = rng.uniform(rmin, rmax) if n > 1 else 1.0
            acc += ((grids[ax] - c) / r) ** 2
        m |= acc <= 1.0
    return m


def box(shape, lo, hi):
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def shifted(m, shift):
    """Shift without wrap-around (vacated voxels become 0)."""
    out = np.zeros_like(m)
    src, dst = [], []
    for s, n in zip(shift, m.shape):
        if s >= 0:
            src.append(slice(0, n - s))
            dst.append(slice(s, n))
        else:
            src.append(slice(-s, n))
            dst.append(slice(0, n + s))
    out[tuple(dst)] = m[tuple(src)]
    return out


def points(shape, pts):
    m = np.zeros(shape, dtype=bool)
    for p in pts:
        m[tuple(p)] = True
    return m


# ---------------------------------------------------------------------------
# EDT cases
# ---------------------------------------------------------------------------
def edt_cases():
    R = np.random.default_rng(1001)
    C = []

    def add(slug, note, mask, spacing):
        C.append((slug, note, np.asarray(mask, dtype=bool), [float(h) for h in spacing]))

    add("1d-random-iso", "1-D, random density 0.6", noise(R, (17,), 0.6), [1])
    add("1d-random-h0.5", "1-D, random density 0.75, spacing 0.5", noise(R, (23,), 0.75), [0.5])
    m = np.ones(12, bool)
    m[-1] = False
    add("1d-zero-at-end", "1-D, single background voxel at the last index, spacing 2", m, [2])
    add("1d-all-foreground", "1-D, no zero voxel: inf everywhere", np.ones(9, bool), [1])
    add("1d-all-background", "1-D, all zero: distances all 0", np.zeros(8, bool), [1.5])
    add("2d-1xN-random", "2-D 1x23, random density 0.7", noise(R, (1, 23), 0.7), [1, 1])
    add("2d-1xN-aniso", "2-D 1x19, random density 0.8, spacing [3, 0.5]", noise(R, (1, 19), 0.8), [3, 0.5])
    add("2d-Nx1-aniso", "2-D 11x1, random density 0.7, spacing [0.5, 2]", noise(R, (11, 1), 0.7), [0.5, 2])
    add("2d-7x9-d0.5-iso", "2-D 7x9, random density 0.5", noise(R, (7, 9), 0.5), [1, 1])
    add("2d-7x9-d0.8-aniso", "2-D 7x9, random density 0.8, spacing [0.5, 2]", noise(R, (7, 9), 0.8), [0.5, 2])
    add("2d-7x9-d0.95-aniso", "2-D 7x9, random density 0.95, spacing [2, 0.5]", noise(R, (7, 9), 0.95), [2, 0.5])
    m = np.ones((9, 9), bool)
    m[4, 4] = False
    add("2d-single-bg-centre", "2-D 9x9, the only background voxel in the centre", m, [1, 1])
    m = np.ones((7, 9), bool)
    m[0, 8] = False
    add("2d-single-bg-corner-aniso", "2-D 7x9, the only background voxel in a corner, spacing [0.5, 2]",
        m, [0.5, 2])
    add("2d-all-foreground", "2-D 6x5, no zero voxel: inf everywhere", np.ones((6, 5), bool), [1, 1])
    add("2d-all-background", "2-D 4x7, all zero", np.zeros((4, 7), bool), [0.5, 2])
    m = np.zeros((8, 10), bool)
    m[3, 1:9] = True
    m[1:7, 6] = True
    add("2d-thin-lines", "2-D 8x10, one-voxel-thin foreground lines (a cross)", m, [1, 1])
    m = np.ones((9, 7), bool)
    m[4, :] = False
    add("2d-thin-bg-line-aniso", "2-D 9x7, all foreground but one background row, spacing [1.5, 0.8]",
        m, [1.5, 0.8])
    yy, xx = np.mgrid[0:12, 0:12]
    m = (yy - 2.0) ** 2 + (xx - 6.0) ** 2 <= 20.0
    add("2d-disk-touching-border", "2-D 12x12, a disk cut by the top border", m, [1, 1])
    m = np.eye(10, 12, k=1, dtype=bool) | np.eye(10, 12, k=2, dtype=bool)
    add("2d-diagonal-band-aniso", "2-D 10x12, a two-voxel diagonal band, spacing [0.7, 1.3]", m, [0.7, 1.3])
    add("3d-5x6x7-d0.6-iso", "3-D 5x6x7, random density 0.6", noise(R, (5, 6, 7), 0.6), [1, 1, 1])
    add("3d-5x6x7-d0.9-aniso", "3-D 5x6x7, random density 0.9, spacing [2.5, 1, 0.7]",
        noise(R, (5, 6, 7), 0.9), [2.5, 1, 0.7])
    m = np.ones((5, 6, 7), bool)
    m[1, 4, 2] = False
    add("3d-single-bg-aniso", "3-D 5x6x7, one background voxel, spacing [2.5, 1, 0.7]", m, [2.5, 1, 0.7])
    add("3d-16x16x8-blobs", "3-D 16x16x8, random ellipsoids, spacing [1.5, 0.8, 0.8]",
        ellipsoids(R, (16, 16, 8), 4, 2.0, 7.0), [1.5, 0.8, 0.8])
    add("3d-16x16x8-d0.985-aniso", "3-D 16x16x8, sparse background (density 0.985), spacing [2.5, 1, 0.7]",
        noise(R, (16, 16, 8), 0.985), [2.5, 1, 0.7])
    add("3d-all-foreground", "3-D 3x4x5, no zero voxel: inf everywhere", np.ones((3, 4, 5), bool), [2.5, 1, 0.7])
    add("3d-all-background", "3-D 2x3x4, all zero", np.zeros((2, 3, 4), bool), [1, 1, 1])
    m = np.ones((6, 5, 7), bool)
    m[:, :, 3] = False
    add("3d-thin-bg-plane-aniso", "3-D 6x5x7, all foreground but one background plane (last axis), "
        "spacing [0.5, 2, 1.25]", m, [0.5, 2, 1.25])
    add("3d-1x1xN", "3-D 1x1x15, random density 0.7", noise(R, (1, 1, 15), 0.7), [1, 1, 1])
    add("3d-1x5x6-aniso", "3-D 1x5x6, random density 0.7, spacing [4, 0.5, 1.5]",
        noise(R, (1, 5, 6), 0.7), [4, 0.5, 1.5])
    zz, yy, xx = np.mgrid[0:10, 0:12, 0:9].astype(float)
    m = ((zz - 1) / 4.5) ** 2 + ((yy - 6) / 5.0) ** 2 + ((xx - 7) / 3.5) ** 2 <= 1.0
    add("3d-ellipsoid-touching-border", "3-D 10x12x9, an ellipsoid cut by two borders, spacing [0.5, 2, 1]",
        m, [0.5, 2, 1])
    m = np.zeros((7, 8, 6), bool)
    m[3, :, :] = True
    m[:, 4, 2] = True
    add("3d-thin-structures", "3-D 7x8x6, a one-voxel plane and a one-voxel line", m, [1, 1, 1])
    return C


def build_edt():
    blocks = []
    cases = edt_cases()
    slugs = [c[0] for c in cases]
    check(len(set(slugs)) == len(slugs), "duplicate edt slugs")
    worst = 0.0
    for i, (slug, note, mask, spacing) in enumerate(cases, 1):
        cid = "edt-%02d-%s" % (i, slug)
        check(len(spacing) == mask.ndim, cid + ": spacing rank")
        a = edt_scipy(mask, spacing)
        b = edt_brute(mask, spacing)
        if mask.all():
            check(np.all(np.isinf(a)) and np.all(np.isinf(b)), cid + ": all-foreground must be inf")
        else:
            check(np.all(np.isfinite(a)) and np.all(np.isfinite(b)), cid + ": finite")
            err = float(np.max(np.abs(a - b)))
            check(err <= AGREE, "%s: scipy vs brute-force EDT differ by %g" % (cid, err))
            worst = max(worst, err)
        check(np.all(a[~mask] == 0), cid + ": zero voxels must be 0")
        lines = ['      "id": %s' % json.dumps(cid),
                 '      "note": %s' % json.dumps(note),
                 '      "shape": %s' % fmt_ints(mask.shape),
                 '      "spacing": %s' % fmt_floats(spacing),
                 '      "mask": %s' % fmt_ints(mask.astype(np.int64).ravel(order="C")),
                 '      "dist": [%s]' % ", ".join(fmt_dist(v) for v in a.ravel(order="C"))]
        blocks.append("    {\n" + ",\n".join(lines) + "\n    }")
    text = ("{\n"
            '  "generator": %s,\n' % json.dumps(GENERATOR)
            + '  "cases": [\n' + ",\n".join(blocks) + "\n  ]\n}\n")
    back = json.loads(text)
    check(len(back["cases"]) == len(cases), "edt json round trip")
    for (slug, note, mask, spacing), c in zip(cases, back["cases"]):
        a = edt_scipy(mask, spacing).ravel()
        got = [math.inf if v == "inf" else v for v in c["dist"]]
        check(all(x == y for x, y in zip(got, a.tolist())) and len(got) == a.size, "edt value round trip")
    return text, len(cases), worst


# ---------------------------------------------------------------------------
# Surface cases
# ---------------------------------------------------------------------------
def surface_cases():
    R = np.random.default_rng(2002)
    C = []

    def add(slug, note, pred, target, spacing, tau):
        p, t = np.asarray(pred, bool), np.asarray(target, bool)
        check(p.shape == t.shape, slug + ": shapes")
        C.append((slug, note, p, t, [float(h) for h in spacing], float(tau)))

    s2 = (20, 20)
    g = ellipsoids(R, s2, 3, 2.5, 6.0, margin=2)
    p = ellipsoids(R, s2, 3, 2.5, 6.0, margin=2)
    add("2d-blobs-iso", "2-D 20x20, random ellipses vs random ellipses", p, g, [1, 1], 1.0)
    g = ellipsoids(R, s2, 2, 3.0, 7.0, margin=2)
    p = ellipsoids(R, s2, 3, 2.0, 6.0, margin=2)
    add("2d-blobs-aniso", "2-D 20x20, random ellipses, spacing [0.5, 2], tolerance 1.5", p, g, [0.5, 2], 1.5)
    add("2d-noise", "2-D 15x17, random noise density 0.3 vs 0.35", noise(R, (15, 17), 0.3),
        noise(R, (15, 17), 0.35), [1, 1], 1.0)
    add("2d-noise-dense-aniso", "2-D 15x17, noise density 0.85 vs 0.8 (holes make inner edges), "
        "spacing [0.7, 1.3], tolerance 0.9", noise(R, (15, 17), 0.85), noise(R, (15, 17), 0.8),
        [0.7, 1.3], 0.9)
    g = ellipsoids(R, (18, 16), 3, 2.0, 6.0, margin=1)
    add("2d-identical", "2-D 18x16, identical masks: every distance 0, tolerance 0", g, g.copy(), [1, 1], 0.0)
    g = ellipsoids(R, (16, 14, 10), 3, 2.0, 5.0, margin=1)
    add("3d-identical-aniso", "3-D 16x14x10, identical masks, spacing [2.5, 1, 0.7]", g, g.copy(),
        [2.5, 1, 0.7], 1.0)
    g = box((14, 16), (3, 4), (10, 11))
    add("2d-shifted-copy", "2-D 14x16, a 7x7 square and its copy shifted by (1, 2), tolerance 1.5",
        shifted(g, (1, 2)), g, [1, 1], 1.5)
    g = ellipsoids(R, (12, 14, 10), 2, 2.5, 4.5, margin=3)
    add("3d-shifted-copy-aniso", "3-D 12x14x10, ellipsoids and their copy shifted by 2 along axis 0, "
        "spacing [2.5, 1, 0.7], tolerance 2", shifted(g, (2, 0, 0)), g, [2.5, 1, 0.7], 2.0)
    add("2d-both-empty", "2-D 9x11, both masks empty", np.zeros((9, 11), bool), np.zeros((9, 11), bool),
        [1, 1], 1.0)
    add("3d-both-empty-aniso", "3-D 5x6x7, both masks empty, spacing [2.5, 1, 0.7]", np.zeros((5, 6, 7), bool),
        np.zeros((5, 6, 7), bool), [2.5, 1, 0.7], 1.0)
    add("2d-pred-empty", "2-D 10x12, empty prediction: distances = image diagonal sqrt(10^2 + 12^2)",
        np.zeros((10, 12), bool), box((10, 12), (2, 3), (6, 8)), [1, 1], 1.0)
    add("3d-target-empty-aniso", "3-D 6x7x8, empty target, spacing [2.5, 1, 0.7]: diagonal "
        "sqrt(15^2 + 7^2 + 5.6^2)", ellipsoids(R, (6, 7, 8), 2, 1.5, 3.0, margin=1),
        np.zeros((6, 7, 8), bool), [2.5, 1, 0.7], 1.0)
    add("2d-pred-empty-target-full", "2-D 5x6, empty prediction, target fills the image: TN + FP = 0 so "
        "specificity = 1, the rest is the one-empty policy", np.zeros((5, 6), bool), np.ones((5, 6), bool),
        [0.5, 2], 1.0)
    add("2d-single-voxels", "2-D 12x12, one voxel vs one voxel 3 rows and 4 columns away: all distances 5",
        points((12, 12), [(2, 3)]), points((12, 12), [(5, 7)]), [1, 1], 5.0)
    add("3d-single-voxels-aniso", "3-D 6x7x8, one voxel vs one voxel, spacing [2.5, 1, 0.7]",
        points((6, 7, 8), [(1, 2, 3)]), points((6, 7, 8), [(4, 5, 1)]), [2.5, 1, 0.7], 1.0)
    add("2d-both-full", "2-D 7x9, both masks fill the image: edges = the border ring, distances 0",
        np.ones((7, 9), bool), np.ones((7, 9), bool), [1, 1], 1.0)
    add("3d-full-vs-box-aniso", "3-D 8x9x10, prediction fills the image (edges = the border shell) vs an "
        "inner box, spacing [0.5, 2, 1.25], tolerance 2", np.ones((8, 9, 10), bool),
        box((8, 9, 10), (2, 3, 2), (6, 7, 7)), [0.5, 2, 1.25], 2.0)
    yy, xx = np.mgrid[0:16, 0:16].astype(float)
    g = (yy - 0) ** 2 + (xx - 8) ** 2 <= 36
    p = (yy - 1) ** 2 + (xx - 15) ** 2 <= 30
    add("2d-touching-border", "2-D 16x16, disks cut by the image border (border voxels are edges)", p, g,
        [1, 1], 1.0)
    g = np.zeros((14, 15), bool)
    g[6, 2:13] = True
    p = np.zeros((14, 15), bool)
    p[8, 3:14] = True
    p[2:9, 13] = True
    add("2d-thin-lines", "2-D 14x15, one-voxel-thin lines (every voxel an edge), tolerance 2", p, g, [1, 1], 2.0)
    g = np.zeros((9, 10, 8), bool)
    g[4, 1:9, 1:7] = True
    p = box((9, 10, 8), (3, 2, 0), (7, 9, 6))
    add("3d-thin-plane-vs-slab", "3-D 9x10x8, a one-voxel plane vs a slab touching a border, "
        "spacing [1.5, 0.8, 0.8]", p, g, [1.5, 0.8, 0.8], 1.0)
    # prediction one voxel at (5, 5); target voxels at (5, 6) -> 1 index step along
    # axis 1 = 3 physical units, and (9, 5) -> 4 steps along axis 0 = 2 units.
    add("2d-nearest-along-fine-axis", "2-D 12x10, spacing [0.5, 3]: from the prediction voxel (5,5) the "
        "nearest target voxel is (9,5), 4 voxels away along axis 0 (2.0), not the neighbour (5,6) along "
        "axis 1 (3.0); d(P->G) = [2], d(G->P) = [3, 2]: hd 3, hd95 2.95, assd 7/3, nsd 2/3 (2.0 <= tau 2)",
        points((12, 10), [(5, 5)]), points((12, 10), [(5, 6), (9, 5)]), [0.5, 3], 2.0)
    g = box((10, 8, 9), (3, 2, 2), (7, 6, 7))
    add("3d-shift-along-fine-axis", "3-D 10x8x9, a box and its copy shifted 3 voxels along the fine axis 2, "
        "spacing [2, 1, 0.5], tolerance 1.25",
        shifted(g, (0, 0, 3)), g, [2, 1, 0.5], 1.25)
    add("3d-noise", "3-D 12x12x8, random noise density 0.5 vs 0.5", noise(R, (12, 12, 8), 0.5),
        noise(R, (12, 12, 8), 0.5), [1, 1, 1], 1.0)
    add("3d-noise-sparse-aniso", "3-D 12x10x8, sparse noise 0.08 vs 0.1, spacing [2.5, 1, 0.7], tolerance 3",
        noise(R, (12, 10, 8), 0.08), noise(R, (12, 10, 8), 0.1), [2.5, 1, 0.7], 3.0)
    s3 = (20, 20, 12)
    g = ellipsoids(R, s3, 3, 2.5, 6.0, margin=1)
    p = ellipsoids(R, s3, 4, 2.0, 6.0, margin=1)
    add("3d-blobs-aniso", "3-D 20x20x12, random ellipsoids, spacing [1.5, 0.8, 0.8], tolerance 2", p, g,
        [1.5, 0.8, 0.8], 2.0)
    g = ellipsoids(R, (16, 16, 10), 2, 3.0, 6.0, margin=2)
    p = shifted(g, (1, 0, -1)) | ellipsoids(R, (16, 16, 10), 1, 1.5, 2.5, margin=1)
    add("3d-blobs-tau0", "3-D 16x16x10, shifted ellipsoids plus a false-positive blob, tolerance 0 "
        "(nsd counts coinciding edge voxels)", p, g, [1, 1, 1], 0.0)
    g = box((12, 12), (2, 2), (10, 10))
    add("2d-tie-at-tau", "2-D 12x12, squares shifted by 2 rows, spacing [0.5, 1]: many distances are "
        "exactly 1 = tolerance (counted, d <= tau)", shifted(g, (2, 0)), g, [0.5, 1], 1.0)
    g = ellipsoids(R, (18, 18), 2, 3.0, 6.0, margin=2)
    p = g & ~edges_scipy(g)
    add("2d-pred-inside-target", "2-D 18x18, prediction = target eroded once (subset)", p, g, [1, 1], 0.5)
    yy, xx = np.mgrid[0:17, 0:17].astype(float)
    r2 = (yy - 8) ** 2 + (xx - 8) ** 2
    g = (r2 <= 49) & (r2 > 9)
    p = (r2 <= 42) & (r2 > 16)
    add("2d-rings-with-holes", "2-D 17x17, annuli: the inner boundary is part of the surface", p, g,
        [1, 1], 1.0)
    cb = (np.indices((9, 10)).sum(axis=0) % 2) == 0
    add("2d-checkerboard", "2-D 9x10, checkerboard vs its complement: every voxel an edge, "
        "every distance 1", cb, ~cb, [1, 1], 1.0)
    add("2d-1xN", "2-D 1x20, random runs: every foreground voxel is an edge (image height 1)",
        noise(R, (1, 20), 0.5), noise(R, (1, 20), 0.5), [1, 1], 1.0)
    add("1d-runs", "1-D 24, random runs, spacing 0.5 (edges = run ends and border voxels)",
        noise(R, (24,), 0.6), noise(R, (24,), 0.6), [0.5], 1.0)
    g = ellipsoids(R, (14, 14, 9), 2, 2.0, 4.0, margin=2)
    p = ellipsoids(R, (14, 14, 9), 2, 2.0, 4.0, margin=2)
    add("3d-large-tolerance", "3-D 14x14x9, tolerance 100: nsd = 1", p, g, [1, 1, 1], 100.0)
    add("3d-far-apart", "3-D 12x12x12, two cubes in opposite corners, spacing [0.5, 2, 1.25]",
        box((12, 12, 12), (0, 0, 0), (3, 3, 3)), box((12, 12, 12), (9, 8, 9), (12, 12, 12)),
        [0.5, 2, 1.25], 1.0)
    return C


KEYS = ["dice", "iou", "precision", "sensitivity", "specificity", "hd", "hd95", "assd", "nsd",
        "tp", "fp", "fn", "tn", "pred_edges", "target_edges"]
INT_KEYS = {"tp", "fp", "fn", "tn", "pred_edges", "target_edges"}


def build_surface():
    cases = surface_cases()
    slugs = [c[0] for c in cases]
    check(len(set(slugs)) == len(slugs), "duplicate surface slugs")
    blocks = []
    worst, ties, expects = 0.0, 0, []
    for i, (slug, note, p, t, spacing, tau) in enumerate(cases, 1):
        cid = "surface-%02d-%s" % (i, slug)
        check(len(spacing) == p.ndim, cid + ": spacing rank")
        e, info = surface_expect(cid, p, t, spacing, tau)
        worst = max(worst, info.get("maxerr", 0.0))
        ties += info.get("ties", 0)
        for k in KEYS:
            check(k in e, "%s: missing %s" % (cid, k))
            if k not in INT_KEYS:
                check(math.isfinite(e[k]), "%s: %s not finite" % (cid, k))
        case_checks(slug, e, p, t, spacing, tau)
        expects.append(e)
        ex = ", ".join("%s: %s" % (json.dumps(k), str(e[k]) if k in INT_KEYS else fmt_float(e[k]))
                       for k in KEYS)
        lines = ['      "id": %s' % json.dumps(cid),
                 '      "note": %s' % json.dumps(note),
                 '      "shape": %s' % fmt_ints(p.shape),
                 '      "spacing": %s' % fmt_floats(spacing),
                 '      "tolerance": %s' % fmt_float(tau),
                 '      "pred": %s' % fmt_ints(p.astype(np.int64).ravel(order="C")),
                 '      "target": %s' % fmt_ints(t.astype(np.int64).ravel(order="C")),
                 '      "expect": {%s}' % ex]
        blocks.append("    {\n" + ",\n".join(lines) + "\n    }")
    text = ("{\n"
            '  "generator": %s,\n' % json.dumps(GENERATOR)
            + '  "cases": [\n' + ",\n".join(blocks) + "\n  ]\n}\n")
    back = json.loads(text)
    check(len(back["cases"]) == len(cases), "surface json round trip")
    for c, e, (slug, note, p, t, spacing, tau) in zip(back["cases"], expects, cases):
        check(all(c["expect"][k] == e[k] for k in KEYS), "surface value round trip")
        check(np.array_equal(np.array(c["pred"]).reshape(c["shape"]) == 1, p), "mask round trip")
    return text, len(cases), worst, ties


def case_checks(slug, e, p, t, spacing, tau):
    """Expectations known by hand for particular cases."""
    def close(a, b):
        return abs(a - b) <= 1e-12 * max(1.0, abs(b))
    if slug in ("2d-identical", "3d-identical-aniso", "2d-both-full"):
        check(e["hd"] == 0 and e["hd95"] == 0 and e["assd"] == 0 and e["nsd"] == 1 and e["dice"] == 1, slug)
    if slug == "2d-both-full":
        check(e["pred_edges"] == 2 * 7 + 2 * 9 - 4, slug + ": border ring")
    if slug == "3d-full-vs-box-aniso":
        check(e["pred_edges"] == 8 * 9 * 10 - 6 * 7 * 8, slug + ": border shell")
    if slug in ("2d-both-empty", "3d-both-empty-aniso"):
        check(e["dice"] == 1 and e["nsd"] == 1 and e["hd"] == 0 and e["specificity"] == 1, slug)
    if slug == "2d-pred-empty":
        check(close(e["hd"], math.hypot(10, 12)) and e["hd95"] == e["assd"] == e["hd"], slug)
        check(e["dice"] == 0 and e["nsd"] == 0 and e["specificity"] == 1, slug)
    if slug == "3d-target-empty-aniso":
        check(close(e["hd"], math.sqrt(15.0 ** 2 + 7.0 ** 2 + 5.6 ** 2)), slug)
        check(e["sensitivity"] == 0 and e["precision"] == 0, slug)
    if slug == "2d-pred-empty-target-full":
        check(e["tn"] + e["fp"] == 0 and e["specificity"] == 1 and e["dice"] == 0, slug)
        check(close(e["hd"], math.hypot(2.5, 12.0)), slug)
    if slug == "2d-single-voxels":
        check(e["hd"] == 5 and e["hd95"] == 5 and e["assd"] == 5 and e["nsd"] == 1, slug)
    if slug == "3d-single-voxels-aniso":
        d = math.sqrt(7.5 ** 2 + 3.0 ** 2 + 1.4 ** 2)
        check(close(e["hd"], d) and close(e["assd"], d) and e["nsd"] == 0, slug)
    if slug == "2d-nearest-along-fine-axis":
        # P->G: [2.0]; G->P: (5,6) -> 3.0, (9,5) -> 2.0
        check(e["hd"] == 3.0 and close(e["assd"], 7.0 / 3.0) and close(e["nsd"], 2.0 / 3.0), slug)
        check(close(e["hd95"], 2.0 + 0.95 * 1.0), slug)
    if slug == "2d-checkerboard":
        check(e["hd"] == 1 and e["assd"] == 1 and e["nsd"] == 1 and e["tp"] == 0, slug)
    if slug == "2d-tie-at-tau":
        check(e["nsd"] > 0.5, slug + ": ties at tau must be counted")
    if slug == "3d-large-tolerance":
        check(e["nsd"] == 1, slug)
    if slug == "2d-shifted-copy":
        check(e["hd"] == math.sqrt(5.0), slug)


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def fmt_ints(v):
    return "[" + ", ".join(str(int(x)) for x in v) + "]"


def fmt_float(v):
    f = float(v)
    check(math.isfinite(f), "non-finite output")
    if f == 0.0:
        return "0"
    s = "%.17g" % f
    check(float(s) == f, "round trip " + s)
    return s


def fmt_floats(v):
    return "[" + ", ".join(fmt_float(x) for x in v) + "]"


def fmt_dist(v):
    f = float(v)
    if math.isinf(f) and f > 0:
        return '"inf"'
    return fmt_float(f)


# ---------------------------------------------------------------------------
# Self-checks of the reference pieces themselves
# ---------------------------------------------------------------------------
def selfcheck():
    R = np.random.default_rng(7)
    # percentile: written-out linear interpolation vs numpy on random data
    for n in (1, 2, 3, 7, 20, 101):
        d = R.random(n) * 10
        check(abs(percentile_linear(d, 95) - float(np.percentile(d, 95))) <= 1e-12, "percentile selfcheck")
    # numpy's default percentile method must be linear
    check(float(np.percentile([0.0, 10.0], 95)) == 9.5, "np.percentile default is linear")
    # edge definitions agree on random masks of every rank
    for shape in ((13,), (6, 7), (4, 5, 6)):
        for dens in (0.2, 0.5, 0.9, 1.0):
            m = noise(R, shape, dens)
            check(np.array_equal(edges_scipy(m), edges_loop(m)), "edge selfcheck")
    # a full image's surface is the border shell
    m = np.ones((4, 5, 6), bool)
    check(int(edges_scipy(m).sum()) == 4 * 5 * 6 - 2 * 3 * 4, "shell selfcheck")
    # scipy without a zero voxel: document that it is finite (phantom voxel)
    raw = ndi.distance_transform_edt(np.ones((2, 3)))
    check(np.all(np.isfinite(raw)), "scipy all-foreground behaviour changed (now non-finite)")
    # an anisotropic hand value
    m = np.ones((3, 3), bool)
    m[0, 0] = False
    check(abs(edt_scipy(m, [0.5, 2])[2, 2] - math.sqrt(1.0 + 16.0)) <= 1e-15, "aniso hand value")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="output directory (default: <repo>/spec/golden)")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, "spec", "golden")
    try:
        selfcheck()
        edt_text, n_edt, w_edt = build_edt()
        surf_text, n_surf, w_surf, ties = build_surface()
        check(n_edt >= 20 and n_surf >= 25, "case counts")
    except CheckFailed as e:
        print("gen_metrics_golden.py: CHECK FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
    os.makedirs(out, exist_ok=True)
    for name, text in (("metrics_edt.json", edt_text), ("metrics_surface.json", surf_text)):
        check(len(text.encode()) < 600 * 1024, name + " too large")
        with open(os.path.join(out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    print("metrics_edt.json: %d cases (max |scipy - brute| = %.3g)" % (n_edt, w_edt))
    print("metrics_surface.json: %d cases (max |scipy - brute| = %.3g, %d distances exactly at tau)"
          % (n_surf, w_surf, ties))


if __name__ == "__main__":
    main()
