"""The ResNet family's parity references (crates/resnet), registered with generate.py.

ImageNet nets are torchvision's own (`torchvision.models.resnet*`). The CIFAR-10 nets of
He et al. 2015 §4.2, which torchvision lacks, are `CifarResNet` below, written from the
paper: a 3×3 stem of 16 filters, three stages of n basic blocks with 16/32/64 filters, the
first block of stages 2 and 3 striding by 2, option-A shortcuts (identity, subsampled with
`x[:, :, ::2, ::2]`, zero-padded with the new channels, half before and half after the old
ones), global average pooling and a linear classifier. Its module names are the ones the
Rust model uses: `conv1`, `bn1`, `layer{1,2,3}.{j}.conv{1,2}` / `bn{1,2}`, `fc`.

Run as a script (`python ref_resnet.py`), this file also writes the small checkpoint files
of tests/checkpoint_resnet.rs: a CIFAR ResNet-20 saved with `torch.save(state_dict)` and
with `safetensors.torch.save_file`, and the logits it gives on the procedural inputs; and two
`.pth` files of a narrow ResNet-8 with a tensor missing and one too many.
"""

from __future__ import annotations

import json
from pathlib import Path

from generate import GENERATOR, Reference, inputs_for, reference
from published import timm_weights, torchvision_weights

HERE = Path(__file__).resolve().parent
CHECKPOINTS = HERE / "checkpoints"

IMAGENET = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "resnext50_32x4d",
    "resnext101_32x8d",
]

# The torchvision weights enum of each ImageNet net: its V1 weights are `<arch>.tv_in1k`, its V2
# (the 2021 recipe) `<arch>.tv2_in1k`.
WEIGHTS_ENUM = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights",
    "resnet152": "ResNet152_Weights",
    "wide_resnet50_2": "Wide_ResNet50_2_Weights",
    "wide_resnet101_2": "Wide_ResNet101_2_Weights",
    "resnext50_32x4d": "ResNeXt50_32X4D_Weights",
    "resnext101_32x8d": "ResNeXt101_32X8D_Weights",
}
V2 = ["resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d"]
for _arch, _enum in WEIGHTS_ENUM.items():
    torchvision_weights(f"{_arch}.tv_in1k", f"{_enum}.IMAGENET1K_V1")
    if _arch in V2:
        torchvision_weights(f"{_arch}.tv2_in1k", f"{_enum}.IMAGENET1K_V2")
# Quoted from timm's results-imagenet.csv at published.TIMM_RESULTS.
timm_weights("resnet50.a1_in1k", "resnet50.a1_in1k,81.214,18.786,95.102,4.898,25.56,288,1.000,bicubic")

# CIFAR-10 depth 6n + 2 → n.
CIFAR = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}


def _register_torchvision(arch: str) -> None:
    @reference(arch)
    def build() -> Reference:
        import torchvision
        from torchvision import models

        return Reference(
            arch,
            getattr(models, arch),
            (3, 224, 224),
            f"torchvision {torchvision.__version__} models.{arch}",
        )


for _arch in IMAGENET:
    _register_torchvision(_arch)


@reference("resnet50_v1")
def resnet50_v1() -> Reference:
    """The paper's bottleneck placement (ResNet v1): torchvision's ResNet-50 with the stride
    of every downsampling bottleneck moved from its 3×3 `conv2` to its 1×1 `conv1`."""

    def build():
        from torchvision import models

        model = models.resnet50()
        for m in model.modules():
            if isinstance(m, models.resnet.Bottleneck) and m.stride != 1:
                m.conv1.stride, m.conv2.stride = m.conv2.stride, m.conv1.stride
        return model

    import torchvision

    return Reference(
        "resnet50_v1",
        build,
        (3, 224, 224),
        f"torchvision {torchvision.__version__} models.resnet50, stride moved to conv1 (v1)",
    )


def cifar_resnet_class():
    """The CIFAR-10 ResNet / plain net, defined on first use so that importing this module
    (`generate.py --list`) does not need torch."""
    import torch.nn.functional as F
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, in_channels: int, planes: int, stride: int, shortcut: bool):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = shortcut
            self.stride = stride
            self.extra = planes - in_channels

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.shortcut:
                s = x
                if self.stride != 1 or self.extra:
                    # Option A: no parameters, zeros for the channels the input lacks.
                    before = self.extra // 2
                    s = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, before, self.extra - before))
                y = y + s
            return F.relu(y)

    class CifarResNet(nn.Module):
        def __init__(self, n: int, shortcut: bool = True, num_classes: int = 10, widths=(16, 32, 64)):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            channels = widths[0]
            for i, planes in enumerate(widths):
                blocks = []
                for j in range(n):
                    stride = 2 if i > 0 and j == 0 else 1
                    blocks.append(BasicBlock(channels, planes, stride, shortcut))
                    channels = planes
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(widths[-1], num_classes)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean(dim=(2, 3)))

    return CifarResNet


def _register_cifar(depth: int, n: int, shortcut: bool) -> None:
    name = f"{'resnet' if shortcut else 'plain'}{depth}"
    kind = "option-A shortcuts" if shortcut else "no shortcuts"

    @reference(name)
    def build() -> Reference:
        return Reference(
            name,
            lambda: cifar_resnet_class()(n, shortcut),
            (3, 32, 32),
            f"CifarResNet(n={n}, {kind}) in tests/parity/ref_resnet.py",
        )


for _depth, _n in CIFAR.items():
    _register_cifar(_depth, _n, shortcut=True)
    _register_cifar(_depth, _n, shortcut=False)


def write_checkpoints() -> None:
    """A CIFAR ResNet-20 as PyTorch users save it, in both formats, with its logits.

    The weights are PyTorch's default initialisation; the BatchNorm statistics come from a
    few training-mode passes and the BatchNorm scales and shifts are randomised, so that no
    tensor holds its initial value and a loader that skipped one would change the logits.
    """
    import numpy as np
    import safetensors.torch
    import torch

    torch.manual_seed(20)
    model = cifar_resnet_class()(CIFAR[20])
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 32, 32))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    ref = Reference("resnet20", lambda: model, (3, 32, 32))
    inputs = inputs_for(ref)
    x = torch.from_numpy(np.concatenate([s.array() for s in inputs]))
    with torch.no_grad():
        logits = model(x)

    CHECKPOINTS.mkdir(exist_ok=True)
    state = model.state_dict()
    torch.save(state, CHECKPOINTS / "resnet20_cifar.pth")
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, CHECKPOINTS / "resnet20_cifar.safetensors")
    expected = {
        "arch": "resnet20",
        "reference": (
            f"CifarResNet(n=3) in tests/parity/ref_resnet.py, torch.manual_seed(20), weights in "
            f"resnet20_cifar.pth / .safetensors beside this file (torch {torch.__version__})"
        ),
        "generator": GENERATOR,
        "tensors": [],
        "inputs": [s.json() for s in inputs],
        "logits": [[float(v) for v in row] for row in logits.numpy()],
    }
    with open(CHECKPOINTS / "resnet20_cifar.json", "w") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")
    for p in sorted(CHECKPOINTS.glob("resnet20_cifar.*")):
        print(f"{p.relative_to(HERE.parent.parent)}: {p.stat().st_size:,} bytes")


# The tensor the `_missing` file lacks, and the one the `_extra` file has in excess.
MISSING = "layer2.0.bn1.running_var"
EXTRA = "layer4.0.conv1.weight"


def write_refused_checkpoints() -> None:
    """Two `torch.save(state_dict)` files a strict loader must refuse, naming the key: one
    without `MISSING`, one with `EXTRA` too. What is refused is their keys, not their values,
    so they hold a narrow CIFAR ResNet-8 (n = 1, 4/8/16 filters) and stay a few kilobytes."""
    import torch

    torch.manual_seed(8)
    state = cifar_resnet_class()(1, widths=(4, 8, 16)).state_dict()
    CHECKPOINTS.mkdir(exist_ok=True)
    missing = {k: v for k, v in state.items() if k != MISSING}
    torch.save(missing, CHECKPOINTS / "resnet8_narrow_missing.pth")
    extra = dict(state) | {EXTRA: state["layer3.0.conv2.weight"].clone()}
    torch.save(extra, CHECKPOINTS / "resnet8_narrow_extra.pth")
    for p in sorted(CHECKPOINTS.glob("resnet8_narrow_*.pth")):
        print(f"{p.relative_to(HERE.parent.parent)}: {p.stat().st_size:,} bytes")


if __name__ == "__main__":
    write_checkpoints()
    write_refused_checkpoints()
