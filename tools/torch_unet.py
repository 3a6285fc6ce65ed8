# -*- coding: utf-8 -*-
"""torch_unet.py -- segloss's U-Net written in PyTorch, for the goldens
(tools/gen_nn_golden.py) and the benchmark (tools/bench_torch_unet.py).

    UNet(input=1, output=1, base=16, depth=4, dims=2, norm="instance",
         act="leaky_relu", down="maxpool", up="transpose")

The architecture, options and defaults are those of segloss.nn.UNet
(docs/nn.md, "The U-Net"):

  c_k = base * 2^k, k = 0..depth.  A conv unit is Conv(k 3, pad 1, bias) ->
  norm (BatchNorm momentum 0.1 / InstanceNorm without running stats, both
  affine, eps 1e-5; or none) -> ReLU or LeakyReLU(0.01).
  enc0 = unit(input->c0), unit(c0->c0).
  enc{k}, k = 1..depth: maxpool: MaxPool(2), unit(c_{k-1}->c_k), unit(c_k->c_k);
                        stride:  unit(c_{k-1}->c_k, stride 2), unit(c_k->c_k).
  dec{k}, k = depth-1..0: up = ConvTranspose(c_{k+1}->c_k, 2, stride 2, bias), or
                          Upsample(2, bilinear/trilinear, align_corners False)
                          then Conv(1x1, c_{k+1}->c_k, bias);
                          cat([skip_k, up]) -> unit(2c_k->c_k), unit(c_k->c_k).
  out = Conv(1x1, c0->output, bias).

Modules are registered in segloss's parameter order and under segloss's names,
so `named_parameters()` yields exactly
  enc{k}.unit{j}.conv.weight, .conv.bias, enc{k}.unit{j}.norm.weight, .norm.bias
  (k = 0..depth, j = 1, 2), then for k = depth-1..0: dec{k}.up.weight,
  dec{k}.up.bias, dec{k}.unit{j}...., then out.weight, out.bias;
and `named_buffers()` the BatchNorm running_mean / running_var (plus PyTorch's
num_batches_tracked, which segloss does not have; use `segloss_buffers`, or
load_state_dict(..., strict=False) when moving weights from segloss).
`expected_parameter_names` builds that list independently of the module, and
the constructor asserts that the two agree.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMS = ("batch", "instance", "none")
ACTS = ("relu", "leaky_relu")
DOWNS = ("maxpool", "stride")
UPS = ("transpose", "bilinear", "trilinear")


class Unit(nn.Module):
    """Conv(k 3, pad 1, bias) -> norm -> activation."""

    def __init__(self, dims, cin, cout, stride, norm, act):
        super().__init__()
        Conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv = Conv(cin, cout, 3, stride=stride, padding=1, bias=True)
        if norm == "batch":
            BN = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
            self.norm = BN(cout, eps=1e-5, momentum=0.1, affine=True,
                           track_running_stats=True)
        elif norm == "instance":
            IN = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d
            self.norm = IN(cout, eps=1e-5, affine=True, track_running_stats=False)
        else:
            self.norm = None
        self.slope = 0.01 if act == "leaky_relu" else None

    def forward(self, x):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.slope is None:
            return F.relu(x)
        return F.leaky_relu(x, self.slope)


class Enc(nn.Module):
    def __init__(self, dims, cin, cout, first, norm, act, down):
        super().__init__()
        self.pool = (not first) and down == "maxpool"
        stride = 2 if (not first and down == "stride") else 1
        self.unit1 = Unit(dims, cin, cout, stride, norm, act)
        self.unit2 = Unit(dims, cout, cout, 1, norm, act)
        self.dims = dims

    def forward(self, x):
        if self.pool:
            x = F.max_pool2d(x, 2) if self.dims == 2 else F.max_pool3d(x, 2)
        return self.unit2(self.unit1(x))


class InterpConv(nn.Module):
    """Upsample(scale 2, (bi|tri)linear, align_corners=False) then a 1x1 conv.
    The weight and bias are this module's own, so that they are named
    dec{k}.up.weight / dec{k}.up.bias as in segloss."""

    def __init__(self, dims, cin, cout):
        super().__init__()
        k = (1,) * dims
        self.weight = nn.Parameter(torch.empty((cout, cin) + k))
        self.bias = nn.Parameter(torch.empty(cout))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        nn.init.uniform_(self.bias, -cin ** -0.5, cin ** -0.5)
        self.dims = dims

    def forward(self, x):
        mode = "bilinear" if self.dims == 2 else "trilinear"
        x = F.interpolate(x, scale_factor=2, mode=mode, align_corners=False)
        conv = F.conv2d if self.dims == 2 else F.conv3d
        return conv(x, self.weight, self.bias)


class Dec(nn.Module):
    def __init__(self, dims, cin, cout, norm, act, up):
        super().__init__()
        if up == "transpose":
            CT = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
            self.up = CT(cin, cout, 2, stride=2, bias=True)
        else:
            self.up = InterpConv(dims, cin, cout)
        self.unit1 = Unit(dims, 2 * cout, cout, 1, norm, act)
        self.unit2 = Unit(dims, cout, cout, 1, norm, act)

    def forward(self, x, skip):
        x = torch.cat([skip, self.up(x)], dim=1)    # skip first
        return self.unit2(self.unit1(x))


def expected_parameter_names(depth, norm):
    """segloss's parameter order, built from docs/nn.md's rules, not from a module."""
    names = []

    def unit(prefix):
        names.extend([prefix + ".conv.weight", prefix + ".conv.bias"])
        if norm != "none":
            names.extend([prefix + ".norm.weight", prefix + ".norm.bias"])

    for k in range(depth + 1):
        for j in (1, 2):
            unit("enc%d.unit%d" % (k, j))
    for k in range(depth - 1, -1, -1):
        names.extend(["dec%d.up.weight" % k, "dec%d.up.bias" % k])
        for j in (1, 2):
            unit("dec%d.unit%d" % (k, j))
    names.extend(["out.weight", "out.bias"])
    return names


class UNet(nn.Module):
    def __init__(self, input=1, output=1, base=16, depth=4, dims=2, norm="instance",
                 act="leaky_relu", down="maxpool", up="transpose"):
        super().__init__()
        if dims not in (2, 3) or norm not in NORMS or act not in ACTS \
                or down not in DOWNS or up not in UPS or depth < 0:
            raise ValueError("UNet: bad options")
        if up != "transpose" and up != ("bilinear" if dims == 2 else "trilinear"):
            raise ValueError("UNet: up=%r does not fit dims=%d" % (up, dims))
        self.depth, self.dims = depth, dims
        c = [base * 2 ** k for k in range(depth + 1)]
        # registration order == segloss's parameter order
        for k in range(depth + 1):
            cin = input if k == 0 else c[k - 1]
            setattr(self, "enc%d" % k, Enc(dims, cin, c[k], k == 0, norm, act, down))
        for k in range(depth - 1, -1, -1):
            setattr(self, "dec%d" % k, Dec(dims, c[k + 1], c[k], norm, act, up))
        Conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.out = Conv(c[0], output, 1, bias=True)
        got = [n for n, _ in self.named_parameters()]
        want = expected_parameter_names(depth, norm)
        assert got == want, "UNet parameter order %r != %r" % (got, want)

    def forward(self, x):
        f = 2 ** self.depth
        if any(s % f for s in x.shape[2:]):
            raise ValueError("UNet: spatial sizes %r not divisible by %d" % (tuple(x.shape[2:]), f))
        skips = []
        for k in range(self.depth + 1):
            x = getattr(self, "enc%d" % k)(x)
            if k < self.depth:
                skips.append(x)
        for k in range(self.depth - 1, -1, -1):
            x = getattr(self, "dec%d" % k)(x, skips[k])
        return self.out(x)

    def segloss_buffers(self):
        """(name, tensor) of the BatchNorm running statistics, in parameter order."""
        return [(n, b) for n, b in self.named_buffers()
                if n.endswith(".running_mean") or n.endswith(".running_var")]
