"""The newer losses of issue 12 as the field computes them: PyTorch, written
the way the published or peer implementation does it (Berman's LovaszSoftmax,
Kervadec's boundary-loss, MONAI's HausdorffDTLoss, SoftDiceclDiceLoss and
AsymmetricUnifiedFocalLoss, Jadon's log-cosh Dice, nnU-Net's TopKLoss,
Taghanaki's combo loss), read from their sources and written anew here.

Two uses: the PyTorch side of the benchmark (tools/bench_torch_newer.py, in
float32 at 1 thread) and a cross-check of the golden references (in float64:
every function computes in x's dtype unless its docstring says otherwise).

Every function has the signature

    loss = name(x, t, opts=None)        # a 0-d tensor; loss.backward() gives d loss / d x

- x: (N, C, S1[, S2[, S3]]) scores, logits or probabilities (opts["activation"]:
  "none" (default) = x are probabilities (real scores for lovasz_hinge),
  "sigmoid", "softmax");
- t: a target of x's shape (0/1 masks, one-hot) or, when C >= 2, a label map
  (N, 1, S...) of class indices (float or integer dtype);
- opts: a dict of the options of docs/losses.md ("Newer losses") that
  the peer has, with the contract's defaults, plus the switches named in the
  function's docstring that select the peer's own conventions.

Each docstring ends with "Differs from the contract", a precise list of where
the peer computes something else than LOSSES.md's definition; the contract
cross-check (tools/peers_selfcheck.py) runs each peer where they agree.

Masks are not supported (no peer has them); ignore_index only where the peer
has it (lovasz_hinge, lovasz_softmax, topk_ce).
"""
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = ["lovasz_hinge", "lovasz_softmax", "boundary", "hausdorff_dt", "cldice", "log_cosh_dice",
           "unified_focal", "topk_ce", "combo", "PEERS"]


# ---- shared helpers ------------------------------------------------------

def _opt(opts, name, default):
    return default if not opts or opts.get(name) is None else opts[name]


def _probs(x, opts):
    act = _opt(opts, "activation", "none")
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "softmax":
        return torch.softmax(x, 1)
    if act != "none":
        raise ValueError("activation %r" % (act,))
    return x


def _is_labels(x, t):
    return x.shape[1] >= 2 and t.shape[1] == 1


def _dense(x, t):
    """t in x's shape and dtype: a label map becomes its one-hot (MONAI's
    to_onehot_y, Kervadec's class2one_hot)."""
    if _is_labels(x, t):
        return F.one_hot(t[:, 0].long(), x.shape[1]).movedim(-1, 1).to(x.dtype)
    return t.to(x.dtype)


def _labels(x, t):
    """The label map (N, S...) as int64: a one-hot target becomes its argmax."""
    if _is_labels(x, t):
        return t[:, 0].long()
    if x.shape[1] >= 2:
        return t.argmax(1)
    return t[:, 0].long()


def _channels(C, opts, default=False):
    """The included channels: 1..C-1 without the background when C >= 2, all
    when C = 1 (include_background is ignored there, as in the contract)."""
    if C >= 2 and not _opt(opts, "include_background", default):
        return slice(1, C)
    return slice(0, C)


def _spacing(opts, sdim):
    s = _opt(opts, "spacing", None)
    if s is None:
        return None
    if isinstance(s, (int, float)):
        return [float(s)] * sdim
    return [float(v) for v in s]


def _lovasz_grad(gt_sorted):
    """Delta_r = J_r - J_{r-1} of the sorted ground truth (Berman's Alg. 1):
    J_r = 1 - (G - cumsum t)/(G + cumsum (1 - t)), in gt_sorted's dtype."""
    g = gt_sorted.sum()
    inter = g - gt_sorted.cumsum(0)
    union = g + (1 - gt_sorted).cumsum(0)
    jac = 1.0 - inter / union
    if jac.numel() > 1:
        jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
    return jac


def _mean(vals, like):
    """Berman's mean(): the mean of a list, 0 (here x.sum() * 0, a tensor with
    a gradient) for an empty list."""
    if not vals:
        return like.sum() * 0.0
    acc = vals[0]
    for v in vals[1:]:
        acc = acc + v
    return acc / len(vals)


# ---- Lovász hinge (Berman, Triki & Blaschko 2018) -------------------------

def _hinge_flat(s, lab):
    if lab.numel() == 0:
        return s.sum() * 0.0
    signs = 2.0 * lab - 1.0
    errors = 1.0 - s * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    grad = _lovasz_grad(lab[perm])
    return torch.dot(F.relu(errors_sorted), grad)


def lovasz_hinge(x, t, opts=None):
    """Berman's `lovasz_hinge(logits, labels, per_image, ignore)` (LovaszSoftmax
    pytorch/lovasz_losses.py; segmentation_models_pytorch's `_lovasz_hinge` is
    the same code). x: real scores, C = 1 (activation must be "none", as in
    the contract); t: 0/1 mask of x's shape.

    opts: per_image (True), ignore_index (None: Berman's `ignore`, pixels whose
    label equals it are dropped before the sort).

    Differs from the contract:
    - the sort is torch.sort(descending=True), not stable: equal errors come
      in the order the sort leaves them, not by index. The value does not
      depend on the order of ties (e_r (Δ_r + Δ_r+1) = e (J_r+1 − J_r−1));
      the gradient does (which tied pixel gets which Δ).
    - Berman computes Δ in float32 (`gt_sorted.float().cumsum(0)`), whatever
      the dtype of the logits; this peer in x's dtype.
    - defaults: Berman's per_image is True (the contract's too);
      segmentation_models_pytorch's LovaszLoss(mode="binary") has per_image=False.
    - no mask; an image with no valid pixel gives 0 and still counts in the
      mean over images (Berman's mean over the generator), whereas the
      contract leaves images without valid pixels out.
    """
    if x.shape[1] != 1:
        raise ValueError("lovasz_hinge: C = 1 only")
    ign = _opt(opts, "ignore_index", None)
    t = t.to(x.dtype)

    def flat(s, lab):
        s, lab = s.reshape(-1), lab.reshape(-1)
        if ign is not None:
            keep = lab != ign
            s, lab = s[keep], lab[keep]
        return s, lab

    if _opt(opts, "per_image", True):
        return _mean([_hinge_flat(*flat(x[n], t[n])) for n in range(x.shape[0])], x)
    return _hinge_flat(*flat(x, t))


# ---- Lovász-Softmax --------------------------------------------------------

def _softmax_flat(p, lab, classes):
    if p.numel() == 0:
        return p.sum() * 0.0
    losses = []
    for c in range(p.shape[1]):
        fg = (lab == c).to(p.dtype)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - p[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    return _mean(losses, p)


def lovasz_softmax(x, t, opts=None):
    """Berman's `lovasz_softmax(probas, labels, classes, per_image, ignore)`
    (as segmentation_models_pytorch's `_lovasz_softmax`): probabilities
    flattened to (P, C) pixels × classes, one sort per class.

    opts: activation ("none"; "softmax"), classes ("present" | "all"),
    per_image (False), ignore_index (None: Berman's `ignore`).

    Differs from the contract:
    - torch.sort(descending=True) is not stable: tied errors in the sort's
      order, not by index (same value, other gradient at ties).
    - Berman's first release (commit 188332e) has `only_present=False`, i.e.
      classes = "all", as default; later releases and smp default to
      "present", the contract's default.
    - with nothing to average (no class present), Berman's mean returns the
      Python number 0 (no gradient at all); this peer returns x.sum() * 0.
    - Δ in float32 in Berman's code (`.float()` in lovasz_grad); here in x's dtype.
    - no mask; an image without valid pixels (per_image) counts as 0 in the
      mean over images (the contract leaves it out).
    """
    p = _probs(x, opts)
    C = p.shape[1]
    lab = _labels(x, t)
    classes = _opt(opts, "classes", "present")
    ign = _opt(opts, "ignore_index", None)

    def flat(pp, ll):
        pp = pp.movedim(1, -1).reshape(-1, C)
        ll = ll.reshape(-1)
        if ign is not None:
            keep = ll != ign
            pp, ll = pp[keep], ll[keep]
        return pp, ll

    if ign is not None and _is_labels(x, t):
        lab = t[:, 0].long()
    if _opt(opts, "per_image", False):
        return _mean([_softmax_flat(*flat(p[n:n + 1], lab[n:n + 1]), classes) for n in range(p.shape[0])], p)
    return _softmax_flat(*flat(p, lab), classes)


# ---- Boundary loss (Kervadec et al. 2019) ----------------------------------

def one_hot2dist(seg, spacing=None):
    """Kervadec's one_hot2dist for one sample: seg (K, S...) numpy 0/1; per
    class with any foreground: edt(outside) · outside − (edt(inside) − 1) ·
    inside (scipy's exact EDT, `sampling` = spacing); 0 for an empty class.
    float64 numpy."""
    res = np.zeros(seg.shape, dtype=np.float64)
    for k in range(seg.shape[0]):
        pos = seg[k].astype(bool)
        if pos.any():
            neg = ~pos
            res[k] = ndimage.distance_transform_edt(neg, sampling=spacing) * neg \
                - (ndimage.distance_transform_edt(pos, sampling=spacing) - 1) * pos
    return res


def boundary(x, t, opts=None):
    """Kervadec's `SurfaceLoss` (boundary-loss losses.py) on the maps of
    `one_hot2dist` (utils.py): mean over (n, k in idc, s) of p · φ, φ the
    signed distance map of the target from scipy's EDT, computed here in the
    call (Kervadec computes it in the data loader) and held constant.

    opts: activation, spacing (None = 1 per axis; Kervadec's `resolution`),
    include_background (False: idc = 1..C-1 when C >= 2; all when C = 1).

    Differs from the contract:
    - Kervadec's one_hot2dist asserts a one-hot (simplex) target over the
      classes, so his binary setups use two softmax channels with idc = [1];
      this peer also takes C = 1 (sigmoid) with the map of t itself — his
      value for softmax over (background, x) equals this one on p = σ(x1 − x0).
    - a target element counts as inside when it is nonzero (`astype(bool)`);
      soft targets are not thresholded at 0.5.
    - Kervadec's maps are stored in the dataset's dtype (float32 typically);
      here float64, cast to x's dtype.
    - no mask: the mean runs over every element.
    """
    p = _probs(x, opts)
    tt = _dense(x, t)
    sdim = x.dim() - 2
    sp = _spacing(opts, sdim)
    tn = tt.detach().cpu().numpy()
    dist = np.stack([one_hot2dist(tn[n], sp) for n in range(tn.shape[0])])
    dist = torch.from_numpy(dist).to(x.dtype)
    idc = _channels(x.shape[1], opts)
    return (p[:, idc] * dist[:, idc]).mean()


# ---- Hausdorff DT loss (Karimi & Salcudean 2019; MONAI) ---------------------

def _distance_field(img, spacing):
    """MONAI's HausdorffDTLoss.distance_field for one channel (N, 1, S...):
    per sample, fg = img > 0.5; if fg has both sides, edt(fg) + edt(~fg)
    (MONAI's distance_transform_edt runs scipy channel by channel), else 0."""
    a = img.detach().cpu().numpy()
    field = np.zeros(a.shape, dtype=np.float64)
    for n in range(a.shape[0]):
        fg = a[n, 0] > 0.5
        if fg.any() and not fg.all():
            field[n, 0] = ndimage.distance_transform_edt(fg, sampling=spacing) \
                + ndimage.distance_transform_edt(~fg, sampling=spacing)
    return field


def hausdorff_dt(x, t, opts=None):
    """MONAI's `HausdorffDTLoss(alpha, include_background, sigmoid/softmax)`
    (monai/losses/hausdorff_loss.py, commit 049bb6d): per channel c, the
    distance fields of the thresholded prediction (p > 0.5, detached) and of
    the target, each edt(inside) + edt(outside) per sample with SciPy; the
    mean over the spatial axes of (p − t)² (d_p^α + d_t^α) per (n, c), then
    the mean over (n, c).

    opts: activation, alpha (2), include_background (False), spacing (None;
    MONAI has no spacing, this peer passes it to scipy's `sampling`).

    Differs from the contract:
    - MONAI casts the distance fields to float32 (`.float()`) whatever the
      input's dtype (a relative error of ~6e-8 in d, so ~1e-7 in the loss);
      here they stay float64 (cast to x's dtype).
    - MONAI has no spacing (unit spacing) and no mask; the mean runs over
      every element.
    - the contract's table says MONAI takes one transform over all channels
      of a sample together: the current MONAI does not (it slices [:, [i]]
      and its distance_transform_edt runs channel by channel), so this peer
      agrees with the contract for every C; the one-transform-over-(C, S...)
      behaviour is that of the original PatRyg99/HausdorffLoss code.
    """
    p = _probs(x, opts)
    tt = _dense(x, t)
    alpha = float(_opt(opts, "alpha", 2.0))
    sp = _spacing(opts, x.dim() - 2)
    idc = _channels(x.shape[1], opts)
    p, tt = p[:, idc], tt[:, idc]
    axes = list(range(2, x.dim()))
    parts = []
    for i in range(p.shape[1]):
        pc, tc = p[:, i:i + 1], tt[:, i:i + 1]
        pdt = torch.from_numpy(_distance_field(pc, sp)).to(x.dtype)
        tdt = torch.from_numpy(_distance_field(tc, sp)).to(x.dtype)
        f = (pc - tc) ** 2 * (pdt ** alpha + tdt ** alpha)
        parts.append(f.mean(dim=axes, keepdim=True))
    return torch.cat(parts, 1).mean()


# ---- clDice (Shit et al. 2021; MONAI) ---------------------------------------

def soft_erode(img):
    """MONAI's soft_erode: the minimum along each axis over 3 elements (by
    max-pooling −img, padding that never wins), then the minimum of those."""
    if img.dim() == 4:
        p1 = -F.max_pool2d(-img, (3, 1), (1, 1), (1, 0))
        p2 = -F.max_pool2d(-img, (1, 3), (1, 1), (0, 1))
        return torch.min(p1, p2)
    p1 = -F.max_pool3d(-img, (3, 1, 1), (1, 1, 1), (1, 0, 0))
    p2 = -F.max_pool3d(-img, (1, 3, 1), (1, 1, 1), (0, 1, 0))
    p3 = -F.max_pool3d(-img, (1, 1, 3), (1, 1, 1), (0, 0, 1))
    return torch.min(torch.min(p1, p2), p3)


def soft_dilate(img):
    """MONAI's soft_dilate: the maximum over the full 3×3(×3) neighbourhood."""
    if img.dim() == 4:
        return F.max_pool2d(img, (3, 3), (1, 1), (1, 1))
    return F.max_pool3d(img, (3, 3, 3), (1, 1, 1), (1, 1, 1))


def soft_skel(img, iters):
    """MONAI's soft_skel: relu(img − open(img)), then `iters` times erode and
    add relu(d − skel · d)."""
    skel = F.relu(img - soft_dilate(soft_erode(img)))
    for _ in range(iters):
        img = soft_erode(img)
        delta = F.relu(img - soft_dilate(soft_erode(img)))
        skel = skel + F.relu(delta - skel * delta)
    return skel


def cldice(x, t, opts=None):
    """MONAI's `SoftDiceclDiceLoss(iter_, alpha, smooth)` (monai/losses/
    cldice.py, from Shit et al.'s code): (1 − α) soft Dice + α clDice, soft
    skeletons by max-pooling (soft_skel). MONAI's forward takes (y_true,
    y_pred) in that order; this peer takes (x, t) like the others.

    opts: activation, alpha (0.5), iterations (3), smooth (1),
    include_background (False), batch (True).
    batch = True is MONAI's aggregation: every sum runs over the batch and
    the kept channels together (one Dice, one Tprec, one Tsens); batch =
    False takes them per (n, c) and averages the losses over (n, c), the
    contract's reading.

    Differs from the contract:
    - MONAI always drops channel 0 (`[:, 1:]`), even when C = 1, where every
      sum is then empty and the loss is identically 0 (smooth/smooth): its
      binary use needs two channels. This peer drops channel 0 only for
      C >= 2 without include_background (the contract's rule), so that C = 1
      computes something.
    - MONAI (batch = True) sums over the batch and the channels before the
      ratios; the contract has one Dice and one clDice per (n, c).
    - the skeleton's subgradients are max_pool's (the first maximal element
      of each window in PyTorch's CPU kernel; torch.min of two pools sends
      the gradient to the first argument on ties), relu'(0) = 0 as in the
      contract; ties of min/max between pools and windows may resolve to an
      element other than the contract's "first in index order".
    """
    p = _probs(x, opts)
    tt = _dense(x, t)
    alpha = float(_opt(opts, "alpha", 0.5))
    iters = int(_opt(opts, "iterations", 3))
    s = float(_opt(opts, "smooth", 1.0))
    idc = _channels(x.shape[1], opts)
    sp, st = soft_skel(p, iters)[:, idc], soft_skel(tt, iters)[:, idc]
    pc, tc = p[:, idc], tt[:, idc]
    if _opt(opts, "batch", True):
        def S(a):
            return a.sum()
    else:
        axes = list(range(2, x.dim()))

        def S(a):
            return a.sum(axes)
    dice = 1.0 - (2.0 * S(pc * tc) + s) / (S(tc) + S(pc) + s)
    tprec = (S(sp * tc) + s) / (S(sp) + s)
    tsens = (S(st * pc) + s) / (S(st) + s)
    cl = 1.0 - 2.0 * (tprec * tsens) / (tprec + tsens)
    return ((1.0 - alpha) * dice + alpha * cl).mean()


# ---- log-cosh Dice (Jadon 2020) ---------------------------------------------

def log_cosh_dice(x, t, opts=None):
    """Jadon's `log_cosh_dice_loss` (Semantic-Segmentation-Loss-Functions,
    loss_functions.py, Keras): the Dice loss with smooth 1 of the flattened
    tensors, then log((e^L + e^−L)/2).

    opts: activation, smooth (1), include_background (False), batch (True).
    batch = True is Jadon's: one Dice over the whole flattened batch and all
    kept channels; batch = False: log-cosh of each (n, c) Dice loss, then the
    mean over (n, c) — the contract.

    Differs from the contract:
    - Jadon flattens everything (K.flatten): one Dice over the batch and the
      channels, then one log-cosh; the contract takes the log-cosh of each
      (n, c) term, then reduces.
    - Jadon has no activation (y_pred are probabilities) and no
      include_background: he keeps every channel. This peer drops channel 0
      as the contract does (C >= 2, include_background false).
    - log((e^L + e^−L)/2) as written overflows for |L| > ~710; L is in [0, 1]
      here, so it equals log(cosh(L)).
    """
    p = _probs(x, opts)
    tt = _dense(x, t)
    s = float(_opt(opts, "smooth", 1.0))
    idc = _channels(x.shape[1], opts)
    pc, tc = p[:, idc], tt[:, idc]
    if _opt(opts, "batch", True):
        L = 1.0 - (2.0 * (pc * tc).sum() + s) / (tc.sum() + pc.sum() + s)
    else:
        axes = list(range(2, x.dim()))
        L = 1.0 - (2.0 * (pc * tc).sum(axes) + s) / (tc.sum(axes) + pc.sum(axes) + s)
    return torch.log((torch.exp(L) + torch.exp(-L)) / 2.0).mean()


# ---- Unified focal (Yeung et al. 2022; MONAI) --------------------------------

def unified_focal(x, t, opts=None):
    """MONAI's `AsymmetricUnifiedFocalLoss(weight, delta, gamma,
    include_background=True, use_softmax, epsilon)` (monai/losses/
    unified_focal_loss.py, commit 05142ed): p clamped to [ε, 1 − ε]; per
    (n, c): the focal part, the spatial mean of (1 − δ)(1 − p_0)^γ (−t_0 log
    p_0) for c = 0 and δ (−t_c log p_c) for c >= 1; the Tversky part, TI_c =
    (TP + ε)/(TP + δ FN + (1 − δ) FP + ε), 1 − TI_0 for c = 0 and
    max(1 − TI_c, ε)^(1−γ) for c >= 1; the loss is the mean over (n, c) of
    λ focal + (1 − λ) Tversky.

    opts: activation, weight λ (0.5), delta (0.7; MONAI's default is 0.6),
    gamma (0.5), smooth ε (1e-7; MONAI's `epsilon`, also the clamp bound).
    C = 1 with sigmoid (or none): the two classes (1 − p, p), targets
    (1 − t, t), as the contract says; MONAI needs the two channels given.

    Differs from the contract:
    - the focal part is a mean over (n, c, s) of the per-class terms, so it
      is the contract's mF divided by C (by 2 in the binary case).
    - p is clamped to [ε, 1 − ε] before the logs and the Tversky sums (the
      contract computes logs from the logits with sigmoid/softmax and
      clamps nothing): values differ where some p is within ε of 0 or 1,
      and the gradient is 0 there.
    - MONAI's default delta is 0.6 (the contract's 0.7, the paper's 0.6).
    - the MONAI of the contract's note ("its Tversky part sums over no axis
      for 2 channels") is the older AsymmetricFocalTverskyLoss; the current
      class sums over the spatial axes, as the contract does.
    - no mask.
    """
    p = _probs(x, opts)
    tt = _dense(x, t)
    if x.shape[1] == 1:
        p = torch.cat([1.0 - p, p], 1)
        tt = torch.cat([1.0 - tt, tt], 1)
    lam = float(_opt(opts, "weight", 0.5))
    delta = float(_opt(opts, "delta", 0.7))
    gamma = float(_opt(opts, "gamma", 0.5))
    eps = float(_opt(opts, "smooth", 1e-7))
    p = torch.clamp(p, eps, 1.0 - eps)
    ce = -tt * torch.log(p)
    back = (1 - delta) * torch.pow(1 - p[:, 0:1], gamma) * ce[:, 0:1]
    fore = delta * ce[:, 1:]
    axes = list(range(2, x.dim()))
    focal = torch.cat([back, fore], 1).mean(axes)
    tp = (tt * p).sum(axes)
    fn = (tt * (1 - p)).sum(axes)
    fp = ((1 - tt) * p).sum(axes)
    ti = (tp + eps) / (tp + delta * fn + (1 - delta) * fp + eps)
    tv = torch.cat([1 - ti[:, 0:1], torch.pow(torch.clamp(1 - ti[:, 1:], min=eps), 1 - gamma)], 1)
    return (lam * focal + (1 - lam) * tv).mean()


# ---- Top-k cross-entropy (nnU-Net) -------------------------------------------

def topk_ce(x, t, opts=None):
    """nnU-Net's `TopKLoss(k=10)` (RobustCrossEntropyLoss with reduction
    "none" on the label map, then torch.topk(sorted=False) of the flattened
    per-pixel losses, int(K · k / 100) of them, K = their number, and the mean).
    activation "softmax" (nnU-Net's: the logits) or "sigmoid" with C = 1: the
    per-element binary cross-entropy with logits (nnU-Net has no binary
    TopK; this is its natural counterpart, the contract's bce).

    opts: activation ("softmax"), k (10), ignore_index (None; nnU-Net's
    CrossEntropyLoss ignore_index, -100 by default).

    Differs from the contract:
    - int(K · k / 100) may be 0 (K · k < 100): nnU-Net's mean of nothing is
      NaN; the contract takes at least 1.
    - ignored pixels (ignore_index) give loss 0 and still count in K (and
      may be among the top k); the contract leaves them out of K.
    - ties at the k-th value: torch.topk picks which of the equal terms; the
      value is the same, the gradient goes to other pixels than the
      contract's (ties by index).
    - x with activation "none" (probabilities): −log p_y with no clamp
      (the contract clamps at eps); only "softmax" and "sigmoid" are nnU-Net's.
    """
    act = _opt(opts, "activation", "softmax")
    k = float(_opt(opts, "k", 10))
    ign = _opt(opts, "ignore_index", None)
    if act == "sigmoid":
        res = F.binary_cross_entropy_with_logits(x, t.to(x.dtype), reduction="none")
    elif act == "softmax":
        lab = _labels(x, t)
        res = F.cross_entropy(x, lab, reduction="none", ignore_index=-100 if ign is None else int(ign))
    else:
        lab = _labels(x, t)
        res = -torch.log(x.gather(1, lab.unsqueeze(1)))
    K = res.numel()
    top, _ = torch.topk(res.reshape(-1), int(K * k / 100), sorted=False)
    return top.mean()


# ---- Combo loss (Taghanaki et al. 2019) ---------------------------------------

def combo(x, t, opts=None):
    """The combo loss of Taghanaki et al.'s Keras reference (asgsaeid/ComboLoss
    combo_loss.py): d = (2 Σ t p + s)/(Σ t + Σ p + s) over the flattened
    tensors; p clipped to [ε, 1 − ε] (Keras' epsilon, 1e-7) for the logs;
    out = −(β (t log p + (1 − β)(1 − t) log(1 − p))), wce its mean; combo =
    α wce − (1 − α) d.

    opts: activation, alpha (0.5; ce_d_w), beta (0.5; ce_w), smooth (1),
    eps (1e-7), include_background (False), and the switches of the reference:
    batch (True: one Dice over everything, as K.flatten; False: one per
    (n, c), averaged), keras_weights (True: the reference's brackets, which
    give the negatives β(1 − β) instead of the paper's 1 − β; False: the
    paper's), constant (False: no constant, as the reference; True: adds
    1 − α, so that the loss is α wce + (1 − α)(1 − d), the contract's).

    Differs from the contract:
    - the reference's brackets weight the negative term by β (1 − β), not
      1 − β (a parenthesization slip in combo_loss.py; the paper's equation
      has 1 − β); keras_weights = False gives the paper's.
    - the reference returns α wce − (1 − α) d: the contract's value minus the
      constant 1 − α (same gradient); constant = True adds it.
    - the reference flattens the batch and the channels into one Dice; the
      contract has one per (n, c) (batch = False).
    - the reference has no channels; this peer keeps channel 0 out of both
      parts as the contract does (C >= 2, include_background false).
    - p is clipped to [ε, 1 − ε] before the logs even with a sigmoid (the
      contract computes log σ stably from the logits and clips nothing):
      the values differ where p is within ε of 0 or 1, and the gradient of
      the clipped log is 0 there.
    """
    p = _probs(x, opts)
    tt = _dense(x, t)
    alpha = float(_opt(opts, "alpha", 0.5))
    beta = float(_opt(opts, "beta", 0.5))
    s = float(_opt(opts, "smooth", 1.0))
    eps = float(_opt(opts, "eps", 1e-7))
    idc = _channels(x.shape[1], opts)
    pc, tc = p[:, idc], tt[:, idc]
    if _opt(opts, "batch", True):
        d = (2.0 * (tc * pc).sum() + s) / (tc.sum() + pc.sum() + s)
    else:
        axes = list(range(2, x.dim()))
        d = ((2.0 * (tc * pc).sum(axes) + s) / (tc.sum(axes) + pc.sum(axes) + s)).mean()
    q = torch.clamp(pc, eps, 1.0 - eps)
    if _opt(opts, "keras_weights", True):
        out = -(beta * ((tc * torch.log(q)) + ((1 - beta) * (1.0 - tc) * torch.log(1.0 - q))))
    else:
        out = -(beta * tc * torch.log(q) + (1 - beta) * (1.0 - tc) * torch.log(1.0 - q))
    wce = out.mean()
    loss = alpha * wce - (1 - alpha) * d
    if _opt(opts, "constant", False):
        loss = loss + (1 - alpha)
    return loss


# name -> function, in the order of the issue
PEERS = {
    "lovasz_hinge": lovasz_hinge, "lovasz_softmax": lovasz_softmax, "boundary": boundary,
    "hausdorff_dt": hausdorff_dt, "cldice": cldice, "log_cosh_dice": log_cosh_dice,
    "unified_focal": unified_focal, "topk_ce": topk_ce, "combo": combo,
}
