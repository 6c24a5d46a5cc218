"""VGG references (twins: tests/parity_vgg.rs): torchvision's eight VGGs, and timm's vgg11 whose
state dict (fc6/fc7 stored as convolutions) the Rust side loads through its timm key map."""

from __future__ import annotations

from generate import Reference, reference
from published import torchvision_weights

TORCHVISION = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def register_torchvision(arch: str) -> None:
    @reference(arch)
    def make() -> Reference:
        import torchvision

        build = getattr(torchvision.models, arch)
        return Reference(arch, lambda: build(), (3, 224, 224), f"torchvision {torchvision.__version__} {arch}")


for _arch in TORCHVISION:
    register_torchvision(_arch)
    # vgg11_bn → VGG11_BN_Weights: the enum is the arch's name in capitals.
    torchvision_weights(f"{_arch}.tv_in1k", f"{_arch.upper()}_Weights.IMAGENET1K_V1")


@reference("vgg11_timm")
def vgg11_timm() -> Reference:
    # timm's VGG is the paper's dense evaluation (fc6 a 7×7 convolution, global average
    # pooling before fc8), so at 256×256 it checks the dense path and the key map at once.
    import timm

    return Reference(
        "vgg11_timm",
        lambda: timm.create_model("vgg11", pretrained=False),
        (3, 256, 256),
        f"timm {timm.__version__} vgg11 at 256×256",
    )


# The paper's two columns torchvision does not have, built with torchvision's VGG class around
# feature layers written here from Table 1: A-LRN (LRN with Krizhevsky's constants after the
# first layer; PyTorch divides alpha by the size, hence 5e-4) and C (1×1 convolutions).
PAPER_COLUMNS = {
    "vgg11_lrn": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16c": [64, 64, "M", 128, 128, "M", 256, 256, (1, 256), "M", 512, 512, (1, 512), "M", 512, 512, (1, 512), "M"],
}


def paper_vgg(column):
    from torch import nn
    from torchvision.models.vgg import VGG

    layers, in_c = [], 3
    for v in column:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif v == "LRN":
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        else:
            k, c = v if isinstance(v, tuple) else (3, v)
            layers += [nn.Conv2d(in_c, c, k, padding=k // 2), nn.ReLU(inplace=True)]
            in_c = c
    return VGG(nn.Sequential(*layers))


def register_paper(arch: str) -> None:
    @reference(arch)
    def make() -> Reference:
        import torchvision

        return Reference(
            arch,
            lambda: paper_vgg(PAPER_COLUMNS[arch]),
            (3, 224, 224),
            f"torchvision {torchvision.__version__} VGG class with Table 1's column (tests/parity/ref_vgg.py)",
        )


for _arch in PAPER_COLUMNS:
    register_paper(_arch)
