"""AlexNet and ZFNet references (twins: tests/parity_alexnet.rs): torchvision's alexnet, and the
ONNX model zoo's bvlc_alexnet (Caffe) and ZFNet-512 (Caffe2) graphs run by onnxruntime."""

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


@reference("zfnet512")
def zfnet512() -> OnnxReference:
    return OnnxReference("zfnet512", "light_zfnet512.onnx", (3, 224, 224), "ONNX model zoo ZFNet-512 (Caffe2)")
