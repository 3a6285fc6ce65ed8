#!/usr/bin/python3
# -*- coding: utf-8 -*-
"""gen_nn_golden.py -- independent float64 references for segloss.nn and segloss.optim.

    /usr/bin/python3 tools/gen_nn_golden.py [--out spec/golden/nn]

Writes <out>/manifest.json and <out>/<case>/<tensor>.npy (format:
tools/README-golden.md, section "Networks and optimisers").

Every layer case builds the PyTorch module that a segloss layer mirrors, sets
its parameters (and BatchNorm's initial running statistics) to float32 values
drawn from a fixed seed, then converts the module to float64 (module.double())
and runs forward and backward in float64 on the exact float32 input x with a
random float32 upstream gradient gy.  Inputs, gy, parameters and initial
buffers are saved as float32 (what segloss is given); outputs, gradients and
buffers after the forward as float64 (so the reference carries no float32
rounding of its own).  The U-Net is tools/torch_unet.py, the architecture of
docs/nn.md, with segloss's parameter names and order.

The optimiser cases run torch.optim (SGD, Adam, AdamW) in float64 for three
steps with given float32 gradients; the clipping cases run
torch.nn.utils.clip_grad_norm_ in float64.

Before writing anything, the script checks (exit 1 on failure):
  - every layer forward against a plain numpy implementation written here
    (convolution and transposed convolution as sums over kernel offsets,
    pooling windows, the interpolation formulas, the norms' statistics,
    BatchNorm's running-statistics update), and each U-Net's forward against
    the same pieces composed by parameter name from docs/nn.md's rules;
  - every layer's x- and parameter gradients by a central difference along a
    random direction (cases with ties or zeros, where the function has kinks,
    are checked against the first-maximum / zero-at-zero rules instead);
  - every optimiser step against a numpy transcription of the update rules,
    and the clipping against its formula;
  - the U-Net's parameter names against the list built from those rules.
Seeds are fixed (one per case, from its name); re-running gives byte-identical
files.  The old output directory is replaced as a whole.
"""

import argparse
import json
import os
import shutil
import sys
import zlib


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_env import ensure_torch  # noqa: E402

ensure_torch("gen_nn_golden.py")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_unet import UNet, expected_parameter_names  # noqa: E402

torch.set_num_threads(1)
GENERATOR = "tools/gen_nn_golden.py"


class GoldenError(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise GoldenError(msg)


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def close(a, b, tol, what):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    check(a.shape == b.shape, "%s: shape %s != %s" % (what, a.shape, b.shape))
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    check(err <= tol * scale, "%s: max error %.3g > %.3g" % (what, err, tol * scale))


# ---------------------------------------------------------------------------
# numpy references for the forward passes (independent of torch)
# ---------------------------------------------------------------------------
def np_conv(x, w, b, stride, pad):
    """x (N, Cin, S...), w (Cout, Cin, K...): cross-correlation, zero padding."""
    d = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pad, pad)] * d)
    K = w.shape[2:]
    out_sz = [(x.shape[2 + i] + 2 * pad - K[i]) // stride + 1 for i in range(d)]
    y = np.zeros((x.shape[0], w.shape[0]) + tuple(out_sz))
    for off in np.ndindex(*K):
        sl = tuple(slice(off[i], off[i] + stride * (out_sz[i] - 1) + 1, stride) for i in range(d))
        patch = xp[(slice(None), slice(None)) + sl]          # (N, Cin, out...)
        wk = w[(slice(None), slice(None)) + off]              # (Cout, Cin)
        y += np.einsum("nc...,oc->no...", patch, wk)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * d)
    return y


def np_convT2(x, w, b):
    """kernel 2, stride 2: y[n, o, 2i+a, 2j+b] = sum_c x[n, c, i, j] w[c, o, a, b] + b[o]."""
    d = x.ndim - 2
    N, _ = x.shape[:2]
    y = np.zeros((N, w.shape[1]) + tuple(2 * s for s in x.shape[2:]))
    for off in np.ndindex(*((2,) * d)):
        sl = tuple(slice(off[i], None, 2) for i in range(d))
        y[(slice(None), slice(None)) + sl] = np.einsum("nc...,co->no...", x,
                                                       w[(slice(None), slice(None)) + off])
    return y + b.reshape((1, -1) + (1,) * d)


def np_windows(x):
    """kernel 2, stride 2, floor: (N, C, o1, o2[, o3], 2^d) with the window's
    elements last, in row-major order within the window."""
    d = x.ndim - 2
    out = [s // 2 for s in x.shape[2:]]
    crop = x[(slice(None), slice(None)) + tuple(slice(0, 2 * o) for o in out)]
    shp = list(x.shape[:2])
    for o in out:
        shp += [o, 2]
    perm = [0, 1] + [2 + 2 * i for i in range(d)] + [3 + 2 * i for i in range(d)]
    return crop.reshape(shp).transpose(perm).reshape(tuple(x.shape[:2]) + tuple(out) + (2 ** d,))


def np_maxpool2(x):
    """y and the index within the window of the first maximum."""
    w = np_windows(x)
    return w.max(-1), w.argmax(-1)          # argmax: first occurrence


def np_maxpool2_grad(x, gy):
    d = x.ndim - 2
    _, idx = np_maxpool2(x)
    gx = np.zeros_like(x, dtype=np.float64)
    for pos in np.ndindex(*idx.shape):
        k = idx[pos]
        offs = np.unravel_index(k, (2,) * d)
        tgt = pos[:2] + tuple(2 * pos[2 + i] + offs[i] for i in range(d))
        gx[tgt] += gy[pos]
    return gx


def interp_matrix(n, linear):
    """(2n, n) matrix of scale-2 upsampling along one axis, align_corners=False:
    nearest takes src floor(i/2); linear takes src (i + 0.5)/2 - 0.5 clamped
    at 0, interpolating between floor and floor + 1 (clamped at n - 1)."""
    A = np.zeros((2 * n, n))
    for i in range(2 * n):
        if not linear:
            A[i, i // 2] = 1.0
            continue
        s = max((i + 0.5) / 2.0 - 0.5, 0.0)
        i0 = int(np.floor(s))
        i1 = min(i0 + 1, n - 1)
        lam = s - i0
        A[i, i0] += 1.0 - lam
        A[i, i1] += lam
    return A


def np_upsample(x, linear):
    y = x
    for ax in range(2, x.ndim):
        A = interp_matrix(x.shape[ax], linear)
        y = np.moveaxis(np.tensordot(A, np.moveaxis(y, ax, 0), axes=(1, 0)), 0, ax)
    return y


def np_norm(x, w, b, axes, eps=1e-5):
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)       # biased
    shp = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mu) / np.sqrt(var + eps) * w.reshape(shp) + b.reshape(shp)


def np_unet(x, P, B0, o, mode):
    """The U-Net of docs/nn.md from the numpy pieces above, by parameter name:
    a second implementation of tools/torch_unet.py's forward."""
    d = o["dims"]
    axes_b = (0,) + tuple(range(2, 2 + d))
    axes_i = tuple(range(2, 2 + d))
    shp = (1, -1) + (1,) * d

    def unit(h, pre, stride):
        h = np_conv(h, P[pre + ".conv.weight"], P[pre + ".conv.bias"], stride, 1)
        if o["norm"] == "batch" and mode == "train":
            h = np_norm(h, P[pre + ".norm.weight"], P[pre + ".norm.bias"], axes_b)
        elif o["norm"] == "batch":
            h = ((h - B0[pre + ".norm.running_mean"].reshape(shp))
                 / np.sqrt(B0[pre + ".norm.running_var"].reshape(shp) + 1e-5)
                 * P[pre + ".norm.weight"].reshape(shp) + P[pre + ".norm.bias"].reshape(shp))
        elif o["norm"] == "instance":
            h = np_norm(h, P[pre + ".norm.weight"], P[pre + ".norm.bias"], axes_i)
        slope = 0.01 if o["act"] == "leaky_relu" else 0.0
        return np.where(h > 0, h, slope * h)

    skips = []
    h = x
    for k in range(o["depth"] + 1):
        stride = 1
        if k > 0 and o["down"] == "maxpool":
            h = np_maxpool2(h)[0]
        elif k > 0:
            stride = 2
        h = unit(unit(h, "enc%d.unit1" % k, stride), "enc%d.unit2" % k, 1)
        skips.append(h)
    for k in range(o["depth"] - 1, -1, -1):
        w, b = P["dec%d.up.weight" % k], P["dec%d.up.bias" % k]
        if o["up"] == "transpose":
            u = np_convT2(h, w, b)
        else:
            u = np_conv(np_upsample(h, True), w, b, 1, 0)
        h = np.concatenate([skips[k], u], axis=1)
        h = unit(unit(h, "dec%d.unit1" % k, 1), "dec%d.unit2" % k, 1)
    return np_conv(h, P["out.weight"], P["out.bias"], 1, 0)


# ---------------------------------------------------------------------------
# Layer cases
# ---------------------------------------------------------------------------
def conv_case(name, dims, cin, cout, k, stride, pad, x_shape, bias=True, note=""):
    def build():
        C = nn.Conv2d if dims == 2 else nn.Conv3d
        return C(cin, cout, k, stride=stride, padding=pad, bias=bias)

    def ref(x, P, B0):
        return np_conv(x, P["weight"], P.get("bias"), stride, pad)

    return dict(name=name, layer="Conv%dd" % dims, args=[cin, cout, k],
                opts={"stride": stride, "padding": pad, "bias": bias},
                mode="train", x_shape=x_shape, build=build, ref=ref,
                torch="torch.nn.Conv%dd(%d, %d, %d, stride=%d, padding=%d, bias=%s)"
                % (dims, cin, cout, k, stride, pad, bias), note=note)


def convT_case(name, dims, cin, cout, x_shape):
    def build():
        C = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        return C(cin, cout, 2, stride=2, bias=True)

    def ref(x, P, B0):
        return np_convT2(x, P["weight"], P["bias"])

    return dict(name=name, layer="ConvTranspose%dd" % dims, args=[cin, cout, 2],
                opts={"stride": 2}, mode="train", x_shape=x_shape, build=build, ref=ref,
                torch="torch.nn.ConvTranspose%dd(%d, %d, 2, stride=2, bias=True)"
                % (dims, cin, cout),
                note="weight layout (cin, cout, 2, 2[, 2]); no overlap between windows")


def pool_case(name, dims, x_shape, ties=False, note=""):
    def build():
        return nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)

    def ref(x, P, B0):
        return np_maxpool2(x)[0]

    c = dict(name=name, layer="MaxPool%dd" % dims, args=[2], opts={}, mode="train",
             x_shape=x_shape, build=build, ref=ref,
             torch="torch.nn.MaxPool%dd(2) (stride 2, floor)" % dims, note=note)
    if ties:
        c["x_gen"] = lambda R, shp: R.integers(0, 3, size=shp).astype(np.float32)
        c["kinks"] = "maxpool"
    return c


def upsample_case(name, dims, mode, x_shape):
    linear = mode != "nearest"

    def build():
        return nn.Upsample(scale_factor=2, mode=mode,
                           align_corners=False if linear else None)

    def ref(x, P, B0):
        return np_upsample(x, linear)

    return dict(name=name, layer="Upsample", args=[], opts={"scale": 2, "mode": mode},
                mode="train", x_shape=x_shape, build=build, ref=ref,
                torch="torch.nn.Upsample(scale_factor=2, mode=%r%s)"
                % (mode, ", align_corners=False" if linear else ""),
                note="nearest: src = floor(dst/2); linear: src = max((dst+0.5)/2-0.5, 0)")


def bn_case(name, c, x_shape, mode, stats0=False):
    dims = len(x_shape) - 2

    def build():
        B = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        return B(c, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)

    axes = (0,) + tuple(range(2, len(x_shape)))

    def ref(x, P, B0):
        if mode == "train":
            return np_norm(x, P["weight"], P["bias"], axes)
        shp = (1, -1) + (1,) * dims
        return ((x - B0["running_mean"].reshape(shp)) / np.sqrt(B0["running_var"].reshape(shp) + 1e-5)
                * P["weight"].reshape(shp) + P["bias"].reshape(shp))

    def ref_buffers(x, B0):
        if mode != "train":
            return dict(B0)
        n = x.size // x.shape[1]
        mu = x.mean(axis=axes)
        var_unbiased = ((x - mu.reshape((1, -1) + (1,) * dims)) ** 2).sum(axis=axes) / (n - 1)
        return {"running_mean": 0.9 * B0["running_mean"] + 0.1 * mu,
                "running_var": 0.9 * B0["running_var"] + 0.1 * var_unbiased}

    note = ("train: normalise with the batch mean and biased variance over (N, spatial); "
            "running_mean <- 0.9 running_mean + 0.1 mean, running_var <- 0.9 running_var "
            "+ 0.1 * unbiased variance (n/(n-1)), n = N * spatial size"
            if mode == "train" else
            "evaluate: normalise with running_mean / running_var (buffer0.*), which do not change")
    return dict(name=name, layer="BatchNorm", args=[c], opts={}, mode=mode, x_shape=x_shape,
                build=build, ref=ref, ref_buffers=ref_buffers, stats0=stats0,
                buffers=["running_mean", "running_var"],
                torch="torch.nn.BatchNorm%dd(%d, eps=1e-5, momentum=0.1)" % (dims, c), note=note)


def in_case(name, c, x_shape):
    dims = len(x_shape) - 2

    def build():
        I = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d
        return I(c, eps=1e-5, affine=True, track_running_stats=False)

    def ref(x, P, B0):
        return np_norm(x, P["weight"], P["bias"], tuple(range(2, len(x_shape))))

    return dict(name=name, layer="InstanceNorm", args=[c], opts={"affine": True},
                mode="train", x_shape=x_shape, build=build, ref=ref,
                torch="torch.nn.InstanceNorm%dd(%d, eps=1e-5, affine=True, "
                "track_running_stats=False)" % (dims, c),
                note="statistics per (n, c) over the spatial axes, biased variance")


def x_with_zeros(R, shp):
    x = R.standard_normal(shp).astype(np.float32)
    x.reshape(-1)[::7] = 0.0           # exact zeros: the derivative at the kink
    return x


def act_case(name, slope, x_shape):
    def build():
        return nn.ReLU() if slope is None else nn.LeakyReLU(slope)

    def ref(x, P, B0):
        return np.where(x > 0, x, 0.0 if slope is None else np.float64(slope) * x)

    return dict(name=name, layer="ReLU" if slope is None else "LeakyReLU",
                args=[] if slope is None else [slope], opts={}, mode="train",
                x_shape=x_shape, build=build, ref=ref, x_gen=x_with_zeros,
                kinks="relu" if slope is None else "leaky",
                torch="torch.nn.ReLU()" if slope is None else "torch.nn.LeakyReLU(%r)" % slope,
                note="every 7th element of x is exactly 0; PyTorch's derivative there is "
                + ("0" if slope is None else "the slope (x > 0 ? 1 : slope)"))


UNET_A = dict(input=2, output=3, base=4, depth=2, dims=2, norm="batch", act="relu",
              down="maxpool", up="bilinear")
UNET_B = dict(input=1, output=1, base=4, depth=2, dims=2, norm="none", act="relu",
              down="maxpool", up="transpose")
UNET_C = dict(input=1, output=2, base=4, depth=2, dims=3, norm="instance", act="leaky_relu",
              down="stride", up="transpose")


def unet_case(name, o, x_shape, mode="train", stats0=False, note=""):
    def build():
        return UNet(**o)

    def ref(x, P, B0):
        return np_unet(x, P, B0, o, mode)

    return dict(name=name, layer="UNet", args=[], opts=dict(o), mode=mode, x_shape=x_shape,
                build=build, ref=ref, unet=True, stats0=stats0,
                torch="tools/torch_unet.py UNet(**opts)", note=note)


def layer_cases():
    return [
        conv_case("conv2d-k3-s1", 2, 3, 5, 3, 1, 1, (2, 3, 6, 7)),
        conv_case("conv2d-k3-s2-odd", 2, 3, 6, 3, 2, 1, (2, 3, 7, 9),
                  note="odd size: out = floor((S + 2 - 3) / 2) + 1"),
        conv_case("conv2d-k1", 2, 5, 3, 1, 1, 0, (2, 5, 5, 6)),
        conv_case("conv2d-k3-nobias", 2, 3, 5, 3, 1, 1, (2, 3, 5, 5),
                  bias=False, note="bias = false: parameters are {weight} only"),
        conv_case("conv3d-k3-s1", 3, 2, 3, 3, 1, 1, (2, 2, 4, 5, 6)),
        conv_case("conv3d-k3-s2-odd", 3, 2, 5, 3, 2, 1, (2, 2, 5, 7, 9),
                  note="odd size: out = floor((S + 2 - 3) / 2) + 1"),
        conv_case("conv3d-k1", 3, 6, 3, 1, 1, 0, (2, 6, 3, 4, 5)),
        convT_case("convtranspose2d", 2, 6, 3, (2, 6, 4, 5)),
        convT_case("convtranspose3d", 3, 5, 3, (2, 5, 3, 4, 5)),
        pool_case("maxpool2d", 2, (2, 3, 6, 8)),
        pool_case("maxpool2d-odd", 2, (2, 3, 7, 9),
                  note="odd size: floor, the last row and column take no part (gradient 0)"),
        pool_case("maxpool2d-ties", 2, (2, 3, 7, 9), ties=True,
                  note="x in {0, 1, 2}: ties; the gradient goes to the first maximum of "
                  "each window in row-major order"),
        pool_case("maxpool3d", 3, (2, 3, 4, 6, 8)),
        pool_case("maxpool3d-odd", 3, (2, 2, 5, 7, 9), note="odd size: floor"),
        pool_case("maxpool3d-ties", 3, (2, 2, 4, 5, 6), ties=True,
                  note="x in {0, 1, 2}: ties; the gradient goes to the first maximum of "
                  "each window in (d, h, w) row-major order"),
        upsample_case("upsample-nearest-2d", 2, "nearest", (2, 3, 4, 5)),
        upsample_case("upsample-bilinear-2d", 2, "bilinear", (2, 3, 4, 5)),
        upsample_case("upsample-nearest-3d", 3, "nearest", (2, 2, 3, 4, 5)),
        upsample_case("upsample-trilinear-3d", 3, "trilinear", (2, 2, 3, 4, 5)),
        bn_case("batchnorm-2d-train", 5, (3, 5, 4, 6), "train"),
        bn_case("batchnorm-2d-train-stats0", 5, (2, 5, 3, 4), "train", stats0=True),
        bn_case("batchnorm-3d-train", 3, (2, 3, 3, 4, 5), "train"),
        bn_case("batchnorm-2d-evaluate", 5, (2, 5, 4, 6), "evaluate", stats0=True),
        bn_case("batchnorm-3d-evaluate", 3, (2, 3, 3, 4, 5), "evaluate", stats0=True),
        in_case("instancenorm-2d", 5, (2, 5, 4, 6)),
        in_case("instancenorm-3d", 3, (2, 3, 3, 4, 5)),
        act_case("relu", None, (2, 3, 5, 6)),
        act_case("leakyrelu-0.01", 0.01, (2, 3, 5, 6)),
        act_case("leakyrelu-0.2", 0.2, (2, 3, 4, 3, 5)),
        unet_case("unet-2d-batch-bilinear", UNET_A, (2, 2, 16, 16),
                  note="train mode: BatchNorm with batch statistics; buffer.* after the forward"),
        unet_case("unet-2d-batch-bilinear-evaluate", UNET_A, (2, 2, 16, 16), mode="evaluate",
                  stats0=True, note="the same net in evaluate mode with non-default running "
                  "statistics (buffer0.*), which do not change"),
        unet_case("unet-2d-none-transpose", UNET_B, (2, 1, 16, 16)),
        unet_case("unet-3d-instance-stride", UNET_C, (2, 1, 8, 8, 8),
                  note="nnU-Net kind: InstanceNorm, LeakyReLU(0.01), strided convolutions"),
    ]


def param_init(R, mod, name, p, unet):
    """float32 values for one parameter: not PyTorch's default init."""
    shp = tuple(p.shape)
    is_norm = isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d,
                               nn.InstanceNorm3d)) or ".norm." in name
    leaf = name.rsplit(".", 1)[-1]
    if is_norm:
        if leaf == "weight":
            return f32(1.0 + 0.2 * R.standard_normal(shp))
        return f32(0.3 * R.standard_normal(shp))
    if not unet:
        return f32(0.3 * R.standard_normal(shp))
    if leaf == "bias":
        return f32(0.1 * R.standard_normal(shp))
    # U-Net weights: He-normal, so that activations stay O(1) through the net
    if name.endswith("up.weight") and len(shp) >= 4 and shp[2] == 2:   # ConvTranspose (cin, cout, 2..)
        fan = shp[0]
    else:
        fan = int(np.prod(shp[1:]))
    return f32(np.sqrt(2.0 / fan) * R.standard_normal(shp))


def segloss_buffers(mod, is_unet):
    if is_unet:
        return mod.segloss_buffers()
    return [(n, b) for n, b in mod.named_buffers() if n in ("running_mean", "running_var")]


def run_layer(c):
    """Returns (manifest entry, {tensor name: ndarray}) for one layer case."""
    R = rng_for(c["name"])
    unet = c.get("unet", False)
    torch.manual_seed(zlib.crc32(c["name"].encode()))
    mod = c["build"]()
    P = {}
    for n, p in mod.named_parameters():
        P[n] = param_init(R, mod, n, p, unet)
        with torch.no_grad():
            p.copy_(torch.from_numpy(P[n]))
    bufs = segloss_buffers(mod, unet)
    B0 = {}
    for n, b in bufs:
        if c.get("stats0"):
            v = f32(0.5 * R.standard_normal(tuple(b.shape))) if n.endswith("running_mean") \
                else f32(R.uniform(0.5, 2.0, tuple(b.shape)))
            with torch.no_grad():
                b.copy_(torch.from_numpy(v))
        B0[n] = b.detach().numpy().astype(np.float32).copy()
    mod = mod.double()
    mod.train(c["mode"] == "train")
    x = c.get("x_gen", lambda R_, s: f32(R_.standard_normal(s)))(R, c["x_shape"])
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    y = mod(xt)
    gy = f32(R.standard_normal(tuple(y.shape)))
    y.backward(torch.from_numpy(gy.astype(np.float64)))
    out = {"x": x, "gy": gy, "y": y.detach().numpy().copy(), "gx": xt.grad.numpy().copy()}
    names = [n for n, _ in mod.named_parameters()]
    for n, p in mod.named_parameters():
        out["param." + n] = P[n]
        out["grad." + n] = p.grad.numpy().copy()
    bnames = [n for n, _ in bufs]
    for n, b in segloss_buffers(mod, unet):
        out["buffer." + n] = b.detach().numpy().copy()
        if c.get("stats0"):
            out["buffer0." + n] = B0[n]
    selfcheck_layer(c, mod, x, gy, P, B0, out)
    entry = {"name": c["name"], "layer": c["layer"], "args": c["args"], "opts": c["opts"],
             "mode": c["mode"], "params": names, "buffers": bnames,
             "x_shape": list(c["x_shape"]), "y_shape": list(out["y"].shape),
             "torch": c["torch"]}
    if unet and (c["opts"]["norm"] == "instance"
                 or (c["opts"]["norm"] == "batch" and c["mode"] == "train")):
        # a bias added just before a norm (instance, or batch in train mode)
        # is removed again by the norm's mean
        zero = [n for n in names if n.endswith(".conv.bias")]
        for n in zero:
            check(np.max(np.abs(out["grad." + n])) < 1e-10 * np.max(np.abs(out["gx"])),
                  "%s: %s gradient should vanish" % (c["name"], n))
        entry["zero_grads"] = zero
    if c.get("note"):
        entry["note"] = c["note"]
    return entry, out


# ---------------------------------------------------------------------------
# Self-checks of the layer cases
# ---------------------------------------------------------------------------
def selfcheck_layer(c, mod, x, gy, P, B0, out):
    name = c["name"]
    x64 = x.astype(np.float64)
    P64 = {k: v.astype(np.float64) for k, v in P.items()}
    B064 = {k: v.astype(np.float64) for k, v in B0.items()}
    if c.get("unet"):
        check([n for n, _ in mod.named_parameters()]
              == expected_parameter_names(c["opts"]["depth"], c["opts"]["norm"]),
              name + ": parameter names")
        if c["mode"] == "evaluate":
            for n in B0:
                close(out["buffer." + n], B064[n], 0, name + ": " + n + " changed in evaluate")
    close(out["y"], c["ref"](x64, P64, B064), 1e-12, name + ": forward vs numpy")
    if not c.get("unet"):
        if "ref_buffers" in c:
            want = c["ref_buffers"](x64, B064)
            for n in c["buffers"]:
                close(out["buffer." + n], want[n], 1e-12, name + ": " + n + " vs numpy")
    kinks = c.get("kinks")
    if kinks == "maxpool":
        close(out["gx"], np_maxpool2_grad(x64, gy.astype(np.float64)), 0,
              name + ": gradient to the first maximum")
        win = np_windows(x64)
        check(np.any(np.sum(win == win.max(-1, keepdims=True), axis=-1) > 1), name + ": no ties")
        return
    if kinks in ("relu", "leaky"):
        slope = 0.0 if kinks == "relu" else c["args"][0]
        want = np.where(x64 > 0, 1.0, slope) * gy
        close(out["gx"], want, 1e-15, name + ": activation gradient (zeros -> slope)")
        check(np.sum(x == 0) > 0, name + ": no zeros")
        return
    directional_check(c, mod, x64, gy.astype(np.float64), out)


def directional_check(c, mod, x64, gy64, out):
    """For x and for each parameter tensor t alone, along a random direction v:
    <gy, f(t + h v) - f(t - h v)> / 2h == <g_t, v>.  One tensor at a time (with
    h = 1e-6, else 1e-7), since a direction through all of a U-Net's
    parameters at once crosses ReLU kinks and meets large curvature.
    BatchNorm buffers are restored between the evaluations (they do not enter
    a train-mode output)."""
    R = rng_for("dir:" + c["name"])
    params = list(mod.named_parameters())
    base = {n: p.detach().clone() for n, p in params}
    bufs = {n: b.detach().clone() for n, b in mod.named_buffers()}

    def restore():
        with torch.no_grad():
            for n, p in params:
                p.copy_(base[n])
            for n, b in mod.named_buffers():
                b.copy_(bufs[n])

    def f(which, v, h):
        restore()
        with torch.no_grad():
            xx = x64
            if which == "x":
                xx = x64 + h * v
            else:
                dict(params)[which].add_(torch.from_numpy(h * v))
            y = mod(torch.from_numpy(xx))
        return float(np.sum(y.numpy() * gy64))

    for which in ["x"] + [n for n, _ in params]:
        g = out["gx"] if which == "x" else out["grad." + which]
        v = R.standard_normal(g.shape)
        ana = float(np.sum(g * v))
        errs = []
        for h in (1e-6, 1e-7):
            num = (f(which, v, h) - f(which, v, -h)) / (2 * h)
            errs.append((abs(num - ana), num))
            if errs[-1][0] <= 1e-6 * max(1.0, abs(ana)):
                break
        else:
            raise GoldenError("%s: directional derivative for %s: %.12g != %.12g"
                              % (c["name"], which, errs[0][1], ana))
    restore()


# ---------------------------------------------------------------------------
# Optimisers
# ---------------------------------------------------------------------------
OPT_SHAPES = [(4, 3), (5,), (2, 3, 2)]
OPTIM_CASES = [
    ("sgd-plain", "SGD", {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                          "weight_decay": 0.0}),
    ("sgd-momentum-wd", "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.0,
                                "nesterov": False, "weight_decay": 1e-2}),
    ("sgd-nesterov", "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True,
                             "weight_decay": 0.0}),
    ("adam-wd", "Adam", {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8,
                         "weight_decay": 0.1}),
    ("adamw", "AdamW", {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8,
                        "weight_decay": 0.05}),
]
OPT_STEPS = 3


def torch_optim(kind, params, o):
    if kind == "SGD":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                               dampening=o["dampening"], nesterov=o["nesterov"],
                               weight_decay=o["weight_decay"])
    cls = torch.optim.Adam if kind == "Adam" else torch.optim.AdamW
    return cls(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"],
               weight_decay=o["weight_decay"], amsgrad=False)


def np_optim(kind, o, p, grads):
    """The update rules, transcribed: returns the parameters after each step."""
    p = [a.astype(np.float64) for a in p]
    state = [None] * len(p)
    hist = []
    for k, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            g = g.astype(np.float64)
            if kind == "SGD":
                if o["weight_decay"]:
                    g = g + o["weight_decay"] * p[i]
                if o["momentum"]:
                    # the first step sets the buffer to g (no dampening)
                    b = g.copy() if state[i] is None else o["momentum"] * state[i] + (1 - o["dampening"]) * g
                    state[i] = b
                    g = g + o["momentum"] * b if o["nesterov"] else b
                p[i] = p[i] - o["lr"] * g
            else:
                b1, b2 = o["betas"]
                if kind == "AdamW":
                    p[i] = p[i] * (1 - o["lr"] * o["weight_decay"])
                elif o["weight_decay"]:
                    g = g + o["weight_decay"] * p[i]
                m, v = state[i] if state[i] is not None else (np.zeros_like(g), np.zeros_like(g))
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                state[i] = (m, v)
                mhat = m / (1 - b1 ** k)
                denom = np.sqrt(v) / np.sqrt(1 - b2 ** k) + o["eps"]
                p[i] = p[i] - o["lr"] * mhat / denom
        hist.append([a.copy() for a in p])
    return hist


def run_optim(name, kind, o):
    R = rng_for(name)
    p0 = [f32(R.standard_normal(s)) for s in OPT_SHAPES]
    grads = []
    for _ in range(OPT_STEPS):
        gs = [f32(R.standard_normal(s)) for s in OPT_SHAPES]
        gs[1][0] = 0.0              # an exact zero gradient entry
        grads.append(gs)
    params = [torch.from_numpy(a.astype(np.float64)).requires_grad_(True) for a in p0]
    opt = torch_optim(kind, params, o)
    files = {}
    for i, a in enumerate(p0, start=1):
        files["p%d" % i] = a
    want = np_optim(kind, o, p0, grads)
    for k in range(1, OPT_STEPS + 1):
        opt.zero_grad()
        for i, p in enumerate(params, start=1):
            p.grad = torch.from_numpy(grads[k - 1][i - 1].astype(np.float64))
            files["g%d_s%d" % (i, k)] = grads[k - 1][i - 1]
        opt.step()
        for i, p in enumerate(params, start=1):
            files["p%d_s%d" % (i, k)] = p.detach().numpy().copy()
            close(files["p%d_s%d" % (i, k)], want[k - 1][i - 1], 1e-13,
                  "%s: step %d param %d vs numpy" % (name, k, i))
    entry = {"name": name, "optim": kind, "opts": o, "nparams": len(p0), "steps": OPT_STEPS,
             "shapes": [list(s) for s in OPT_SHAPES],
             "torch": "torch.optim.%s (float64)" % kind}
    return entry, files


CLIP_CASES = [("clip-scaled", 1.0), ("clip-unchanged", 100.0)]


def run_clip(name, max_norm):
    R = rng_for(name)
    g = [f32(R.standard_normal(s)) for s in OPT_SHAPES]
    params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in OPT_SHAPES]
    for p, a in zip(params, g):
        p.grad = torch.from_numpy(a.astype(np.float64))
    total = float(torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2.0))
    files = {}
    for i, (a, p) in enumerate(zip(g, params), start=1):
        files["g%d" % i] = a
        files["g%d_clipped" % i] = p.grad.numpy().copy()
    want_total = float(np.sqrt(sum(np.sum(a.astype(np.float64) ** 2) for a in g)))
    close(total, want_total, 1e-14, name + ": total norm")
    coef = min(max_norm / (want_total + 1e-6), 1.0)
    for i, a in enumerate(g, start=1):
        close(files["g%d_clipped" % i], a.astype(np.float64) * coef, 1e-15, name + ": clipped")
    entry = {"name": name, "max_norm": max_norm, "norm_type": 2, "nparams": len(g),
             "shapes": [list(s) for s in OPT_SHAPES], "total_norm": total,
             "clip_coef": coef, "clipped": coef < 1.0,
             "torch": "torch.nn.utils.clip_grad_norm_(params, max_norm) (float64)",
             "note": "grads are multiplied by min(max_norm / (total_norm + 1e-6), 1); "
                     "total_norm is the 2-norm of all grads together, before clipping"}
    return entry, files


# ---------------------------------------------------------------------------
FORMAT = {
    "files": "<case>/<tensor>.npy, little-endian, C order; inputs (x, gy, param.*, "
             "buffer0.*, optimiser p<i>, g<i>_s<k>, clip g<i>) float32, references "
             "(y, gx, grad.*, buffer.*, p<i>_s<k>, g<i>_clipped) float64",
    "cases": "layer cases: y = layer(x) in mode; gx and grad.<param> after one backward "
             "of gy from zero gradients; buffer.<name> after the forward; buffer0.<name> "
             "the running statistics to set before it (absent: the defaults 0 and 1); "
             "zero_grads: parameters whose exact gradient is 0 (a conv bias followed by "
             "a norm), where grad.* holds float64 round-off near 1e-14: compare them "
             "against the scale of the case's other gradients",
    "optim": "p<i> initial, g<i>_s<k> the gradient given at step k, p<i>_s<k> after step k",
    "clip": "g<i> before, g<i>_clipped after torch.nn.utils.clip_grad_norm_",
}


def save_case(root, name, files):
    d = os.path.join(root, name)
    os.makedirs(d)
    for t, a in files.items():
        a = np.ascontiguousarray(a)
        check(a.dtype in (np.float32, np.float64), "%s/%s: dtype %s" % (name, t, a.dtype))
        check(a.ndim >= 1, "%s/%s: 0-d" % (name, t))
        check(np.all(np.isfinite(a)), "%s/%s: not finite" % (name, t))
        np.save(os.path.join(d, t + ".npy"), a, allow_pickle=False)


def tensors_of(files):
    return {t: {"dtype": str(a.dtype), "shape": list(a.shape)} for t, a in files.items()}


def manifest_text(manifest):
    """Indented JSON; a list or object whose one-line form fits in 100
    characters stays on one line."""
    def fmt(v, ind):
        one = json.dumps(v, separators=(", ", ": "))
        if not isinstance(v, (list, dict)) or len(one) + ind <= 100:
            return one
        pad = " " * (ind + 1)
        if isinstance(v, list):
            items = [pad + fmt(e, ind + 1) for e in v]
            return "[\n" + ",\n".join(items) + "\n" + " " * ind + "]"
        items = [pad + json.dumps(k) + ": " + fmt(e, ind + 1) for k, e in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * ind + "}"

    text = fmt(manifest, 0)
    check(json.loads(text) == manifest, "manifest text does not parse back")
    return text + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="output directory (default: <repo>/spec/golden/nn)")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(root, "spec", "golden", "nn")
    results = {"cases": [], "optim": [], "clip": []}
    try:
        for c in layer_cases():
            e, f = run_layer(c)
            e["tensors"] = tensors_of(f)
            results["cases"].append((e, f))
        for name, kind, o in OPTIM_CASES:
            e, f = run_optim(name, kind, o)
            e["tensors"] = tensors_of(f)
            results["optim"].append((e, f))
        for name, mx in CLIP_CASES:
            e, f = run_clip(name, mx)
            e["tensors"] = tensors_of(f)
            results["clip"].append((e, f))
        names = [e["name"] for sec in results.values() for e, _ in sec]
        check(len(set(names)) == len(names), "duplicate case names")
    except GoldenError as e:
        sys.stderr.write("gen_nn_golden.py: FAILED: %s\n" % e)
        sys.exit(1)
    print("self-checks passed: %d layer cases, %d optimiser cases, %d clipping cases"
          % (len(results["cases"]), len(results["optim"]), len(results["clip"])))
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for sec in results.values():
        for e, f in sec:
            save_case(out, e["name"], f)
    manifest = {"generator": GENERATOR, "torch_version": torch.__version__, "format": FORMAT,
                "cases": [e for e, _ in results["cases"]],
                "optim": [e for e, _ in results["optim"]],
                "clip": [e for e, _ in results["clip"]]}
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(manifest_text(manifest))
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print("wrote %s: %d files, %d bytes" % (os.path.relpath(out),
                                             sum(len(fns) for _, _, fns in os.walk(out)), total))


if __name__ == "__main__":
    main()
