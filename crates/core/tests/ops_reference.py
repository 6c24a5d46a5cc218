#!/usr/bin/env python3
"""Expected values of the core layers, computed by PyTorch: writes fixtures/ops.json.

Each case names a layer configuration, the procedural tensors it reads (inputs, weights;
generated exactly as tests/parity/README.md specifies, so nothing but ranges is stored),
and what PyTorch computes from them. crates/core/tests/ops.rs runs the same configuration
on the same tensors and compares. Run with a Python that has torch (see
tests/parity/requirements.txt): `python crates/core/tests/ops_reference.py`.
"""

import json
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests" / "parity"))
from generate import procedural_array  # noqa: E402  (the one Python copy of the generator)

torch.set_num_threads(1)
CASES = []


def t(name, shape, lo=-2.0, hi=2.0):
    """A procedural tensor and its spec."""
    spec = {"name": name, "shape": list(shape), "lo": lo, "hi": hi}
    return torch.from_numpy(procedural_array(name, list(shape), lo, hi)), spec


def out(x):
    x = x.detach().contiguous()
    return {"shape": list(x.shape), "values": [float(v) for v in x.flatten()]}


def case(name, op, params, tensors, expected):
    CASES.append({"name": name, "op": op, "params": params, "tensors": tensors, "expected": expected})


# ---- MaxPool2d -----------------------------------------------------------------------------
for name, shape, k, s, p, ceil, lo, hi in [
    # ceil_mode: the third window would start at 6 ≥ L + pad = 6, so PyTorch drops it.
    ("max_ceil_window_in_padding", (1, 2, 5, 5), 2, 3, 1, True, -2.0, 2.0),
    # GoogLeNet's 3×3/2 ceil pool on an even size: ceil gives 8, floor would give 7.
    ("max_ceil_googlenet", (1, 2, 16, 16), 3, 2, 0, True, -2.0, 2.0),
    # ResNet's stem pool on all-negative input: the padding must be -inf, not 0.
    ("max_pad_negative_input", (2, 3, 9, 9), 3, 2, 1, False, -3.0, -0.5),
    ("max_ceil_pad", (1, 2, 6, 7), 3, 2, 1, True, -2.0, 2.0),
]:
    x, xs = t(f"{name}.x", shape, lo, hi)
    y = nn.MaxPool2d(k, s, p, ceil_mode=ceil)(x)
    case(name, "max_pool", {"kernel": k, "stride": s, "padding": p, "ceil_mode": ceil}, [xs], out(y))

# ---- AvgPool2d -----------------------------------------------------------------------------
for name, shape, k, s, p, ceil, inc in [
    # The last ceil window overhangs the padding: its divisor counts padding, not overhang.
    ("avg_ceil_include_pad", (1, 2, 6, 6), 3, 2, 1, True, True),
    ("avg_ceil_exclude_pad", (1, 2, 6, 6), 3, 2, 1, True, False),
    ("avg_ceil_window_in_padding", (1, 2, 5, 5), 2, 3, 1, True, True),
    # Inception-v4 / Inception-ResNet-v2 branch pool: count_include_pad=False.
    ("avg_inception_exclude_pad", (2, 3, 7, 7), 3, 1, 1, False, False),
    ("avg_inception_include_pad", (2, 3, 7, 7), 3, 1, 1, False, True),
    # GoogLeNet's auxiliary head: 5×5/3 on 14×14.
    ("avg_googlenet_aux", (1, 2, 14, 14), 5, 3, 0, False, True),
]:
    x, xs = t(f"{name}.x", shape)
    y = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=inc)(x)
    case(name, "avg_pool",
         {"kernel": k, "stride": s, "padding": p, "ceil_mode": ceil, "count_include_pad": inc}, [xs], out(y))

# ---- AdaptiveAvgPool2d ---------------------------------------------------------------------
for name, shape, size in [
    ("adaptive_7_to_3", (1, 3, 7, 7), (3, 3)),
    ("adaptive_13_to_6", (2, 2, 13, 13), (6, 6)),
    ("adaptive_5_to_7_upsamples", (1, 2, 5, 5), (7, 7)),
    ("adaptive_rect_7x13_to_2x5", (1, 2, 7, 13), (2, 5)),
    ("adaptive_divisible_12_to_6", (1, 2, 12, 12), (6, 6)),
    ("adaptive_global", (2, 4, 9, 5), (1, 1)),
]:
    x, xs = t(f"{name}.x", shape)
    y = nn.AdaptiveAvgPool2d(size)(x)
    case(name, "adaptive_avg_pool", {"size": list(size)}, [xs], out(y))

# ---- LocalResponseNorm ---------------------------------------------------------------------
for name, size, alpha, beta, k in [
    ("lrn_alexnet", 5, 1e-4, 0.75, 2.0),
    # A large alpha so that the first and last channels' truncated windows matter.
    ("lrn_strong", 5, 0.5, 0.75, 1.0),
    ("lrn_even_size", 4, 0.3, 0.6, 1.5),
]:
    x, xs = t(f"{name}.x", (2, 7, 3, 3), -6.0, 6.0)
    y = nn.LocalResponseNorm(size, alpha, beta, k)(x)
    case(name, "lrn", {"size": size, "alpha": alpha, "beta": beta, "k": k}, [xs], out(y))

# ---- BatchNorm2d: a training step, then evaluation -------------------------------------------
bn = nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)
w, ws = t("bn.weight", (4,), 0.5, 1.5)
b, bs = t("bn.bias", (4,), -0.5, 0.5)
rm, rms = t("bn.running_mean", (4,), -0.5, 0.5)
rv, rvs = t("bn.running_var", (4,), 0.5, 2.0)
with torch.no_grad():
    bn.weight.copy_(w), bn.bias.copy_(b), bn.running_mean.copy_(rm), bn.running_var.copy_(rv)
x, xs = t("bn.x", (3, 4, 5, 5), -1.0, 3.0)
g, gs = t("bn.grad", (3, 4, 5, 5))
x.requires_grad_(True)
bn.train()
y = bn(x)
(y * g).sum().backward()
bn.eval()
x2, x2s = t("bn.x_eval", (2, 4, 3, 3))
y2 = bn(x2)
case("batch_norm_train_then_eval", "batch_norm", {"eps": 1e-5, "momentum": 0.1},
     [ws, bs, rms, rvs, xs, gs, x2s],
     {"train": out(y), "running_mean": out(bn.running_mean), "running_var": out(bn.running_var),
      "grad_x": out(x.grad), "grad_weight": out(bn.weight.grad), "grad_bias": out(bn.bias.grad),
      "eval": out(y2)})

# ---- Conv2d --------------------------------------------------------------------------------
for name, cin, cout, kernel, stride, padding, groups, bias, shape in [
    ("conv_grouped_strided", 4, 6, (3, 3), 2, (1, 1), 2, True, (2, 4, 9, 9)),
    ("conv_1x7", 3, 5, (1, 7), 1, (0, 3), 1, False, (1, 3, 8, 9)),
    ("conv_7x1", 3, 5, (7, 1), 1, (3, 0), 1, True, (1, 3, 8, 9)),
    ("conv_11x11_stride4", 3, 4, (11, 11), 4, (2, 2), 1, True, (1, 3, 31, 31)),
]:
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=bias)
    w, ws = t(f"{name}.weight", tuple(conv.weight.shape), -0.3, 0.3)
    specs = [ws]
    with torch.no_grad():
        conv.weight.copy_(w)
        if bias:
            bb, bbs = t(f"{name}.bias", (cout,), -0.3, 0.3)
            conv.bias.copy_(bb)
            specs.append(bbs)
    x, xs = t(f"{name}.x", shape)
    specs.append(xs)
    case(name, "conv", {"in": cin, "out": cout, "kernel": list(kernel), "stride": stride,
                        "padding": list(padding), "groups": groups, "bias": bias}, specs, out(conv(x)))

# ---- Conv2d gradients (the training path: im2col + matrix product, col2im backward) --------
for name, cin, cout, kernel, stride, padding, dilation, groups, shape in [
    ("conv_grad_grouped", 4, 6, (3, 3), 2, (1, 1), 1, 2, (2, 4, 9, 8)),
    ("conv_grad_1x7", 3, 5, (1, 7), 1, (0, 3), 1, 1, (2, 3, 6, 9)),
    ("conv_grad_1x1", 6, 4, (1, 1), 1, (0, 0), 1, 1, (2, 6, 5, 5)),
    ("conv_grad_dilated", 3, 4, (3, 3), 1, (2, 2), 2, 1, (1, 3, 7, 7)),
    ("conv_grad_5x5_valid", 1, 6, (5, 5), 1, (0, 0), 1, 1, (3, 1, 12, 12)),
]:
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups)
    w, ws = t(f"{name}.weight", tuple(conv.weight.shape), -0.3, 0.3)
    bb, bbs = t(f"{name}.bias", (cout,), -0.3, 0.3)
    with torch.no_grad():
        conv.weight.copy_(w), conv.bias.copy_(bb)
    x, xs = t(f"{name}.x", shape)
    x.requires_grad_(True)
    y = conv(x)
    g, gs = t(f"{name}.grad", tuple(y.shape))
    (y * g).sum().backward()
    case(name, "conv_grad", {"in": cin, "out": cout, "kernel": list(kernel), "stride": stride,
                             "padding": list(padding), "dilation": dilation, "groups": groups},
         [ws, bbs, xs, gs],
         {"output": out(y), "grad_x": out(x.grad), "grad_weight": out(conv.weight.grad),
          "grad_bias": out(conv.bias.grad)})

# ---- Conv + BatchNorm (eps 1e-3) + ReLU in evaluation, the block BN folding replaces -------
conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False)
bn = nn.BatchNorm2d(6, eps=1e-3)
w, ws = t("cba.conv.weight", (6, 2, 3, 3), -0.5, 0.5)
g_, gs_ = t("cba.bn.weight", (6,), 0.5, 1.5)
b_, bs_ = t("cba.bn.bias", (6,), -0.5, 0.5)
m_, ms_ = t("cba.bn.running_mean", (6,), -0.5, 0.5)
v_, vs_ = t("cba.bn.running_var", (6,), 0.2, 2.0)
with torch.no_grad():
    conv.weight.copy_(w), bn.weight.copy_(g_), bn.bias.copy_(b_)
    bn.running_mean.copy_(m_), bn.running_var.copy_(v_)
bn.eval()
x, xs = t("cba.x", (2, 4, 7, 7))
case("conv_bn_relu_eval", "conv_bn_relu", {"in": 4, "out": 6, "groups": 2, "eps": 1e-3},
     [ws, gs_, bs_, ms_, vs_, xs], out(torch.relu(bn(conv(x)))))

# ---- Linear --------------------------------------------------------------------------------
lin = nn.Linear(12, 5)
w, ws = t("linear.weight", (5, 12), -0.5, 0.5)
bb, bbs = t("linear.bias", (5,), -0.5, 0.5)
with torch.no_grad():
    lin.weight.copy_(w), lin.bias.copy_(bb)
x, xs = t("linear.x", (3, 12))
case("linear", "linear", {"in": 12, "out": 5}, [ws, bbs, xs], out(lin(x)))

path = HERE / "fixtures" / "ops.json"
path.parent.mkdir(exist_ok=True)
with open(path, "w") as f:
    json.dump({"reference": f"torch {torch.__version__}", "cases": CASES}, f, indent=1)
    f.write("\n")
print(f"{path}: {len(CASES)} cases")
