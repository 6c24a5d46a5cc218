"""AlexNet and ZFNet references (twins: tests/parity_alexnet.rs): torchvision's alexnet, the ONNX
model zoo's bvlc_alexnet (Caffe) and ZFNet-512 (Caffe2) graphs run by onnxruntime, the bvlc graph
again with the paper's LRN constants, and the paper's ZFNet as a PyTorch module written here."""

from __future__ import annotations

from generate import Reference, reference
from onnx_reference import OnnxReference
from published import torchvision_weights

torchvision_weights("alexnet.tv_in1k", "AlexNet_Weights.IMAGENET1K_V1")


@reference("alexnet")
def alexnet() -> Reference:
    import torchvision

    return Reference("alexnet", lambda: torchvision.models.alexnet(), (3, 224, 224), f"torchvision {torchvision.__version__} alexnet")


@reference("bvlc_alexnet")
def bvlc_alexnet() -> OnnxReference:
    # Caffe's bvlc_alexnet takes 227×227 crops. The export declares 224 and, with pooling that
    # does not round up, would compute 26×26 and 12×12 maps there where Caffe computes 27 and
    # 13; at 227 the two roundings agree, so the graph computes what Caffe computes.
    return OnnxReference("bvlc_alexnet", "light_bvlc_alexnet.onnx", (3, 227, 227), "ONNX model zoo bvlc_alexnet (Caffe)")


@reference("alexnet_paper")
def alexnet_paper() -> OnnxReference:
    # Krizhevsky et al. 2012 §3.3 normalise with k = 2, n = 5, α = 1e-4, β = 0.75, α scaling
    # the plain sum of squares. ONNX's LRN (as Caffe's and PyTorch's) divides α by `size`, so
    # the paper's α is 5e-4 there; bvlc's graph has alpha 1e-4 and bias (k) 1. The graph is
    # otherwise the paper's network, so only these two attributes change.
    paper_lrn = {"alpha": 5e-4, "bias": 2.0}
    return OnnxReference(
        "alexnet_paper",
        "light_bvlc_alexnet.onnx",
        (3, 227, 227),
        "ONNX model zoo bvlc_alexnet (Caffe) with the paper's LRN",
        overrides={"LRN": paper_lrn},
    )


@reference("zfnet512")
def zfnet512() -> OnnxReference:
    return OnnxReference("zfnet512", "light_zfnet512.onnx", (3, 224, 224), "ONNX model zoo ZFNet-512 (Caffe2)")


def zfnet_module():
    """ZFNet as Zeiler & Fergus 2013 draw it in Fig. 3, the layer sizes annotated there
    (224 → 110 → 55 → 26 → 13 → 13 → 13 → 6) reached with a padding of 1 on layer 1 and
    3×3/2 pooling that rounds up. Module indices follow torchvision's AlexNet habit of one
    nn.Sequential per half, with dropout after each hidden layer as in the paper."""
    from torch import nn

    def normalise():
        # "Contrast normalised across feature maps" (§3 and Fig. 3), with the constants of the
        # network it builds on: k 2, n 5, β 0.75 and α 1e-4 on the plain sum, which is
        # alpha = 5 · 1e-4 in PyTorch's convention of dividing α by the window.
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

    def pool():
        return nn.MaxPool2d(3, stride=2, ceil_mode=True)

    class ZFNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, 7, stride=2, padding=1),  # layer 1: 96 × 110 × 110
                nn.ReLU(),
                normalise(),
                pool(),  # 55 × 55
                nn.Conv2d(96, 256, 5, stride=2),  # layer 2: 256 × 26 × 26
                nn.ReLU(),
                normalise(),
                pool(),  # 13 × 13
                nn.Conv2d(256, 384, 3, padding=1),  # layer 3
                nn.ReLU(),
                nn.Conv2d(384, 384, 3, padding=1),  # layer 4
                nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1),  # layer 5
                nn.ReLU(),
                pool(),  # 256 × 6 × 6
            )
            self.classifier = nn.Sequential(
                nn.Linear(256 * 6 * 6, 4096),  # layer 6
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(4096, 4096),  # layer 7
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(4096, 1000),  # output
            )

        def forward(self, x):
            x = self.features(x)
            assert x.shape[1:] == (256, 6, 6), f"ZFNet: layer 5 pools to {tuple(x.shape[1:])}, Fig. 3 says 256×6×6"
            return self.classifier(x.flatten(1))

    return ZFNet()


@reference("zfnet")
def zfnet() -> Reference:
    return Reference("zfnet", zfnet_module, (3, 224, 224), "ZFNet of Zeiler & Fergus 2013 Fig. 3, tests/parity/ref_alexnet.py")
