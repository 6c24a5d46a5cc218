#!/usr/bin/env python3
"""Reference side of `cargo xtask bench infer`: torchvision models (timm's for Inception-v4
and Inception-ResNet-v2) in evaluation at a fixed thread count, in PyTorch eager (NCHW or
channels_last, under `torch.inference_mode`) or exported with `torch.onnx.export` and run
by ONNX Runtime (all graph optimisations, one sequential session with the same number of
intra-op threads). Weights are the libraries' random initialisation: speed does not depend
on them. Prints one JSON line with images per
second and the multiply-add count of one image (torch.utils.flop_counter, 2 FLOPs each).

With --gemm, the f32 matrix-product rate (2048³) instead.
"""

import argparse
import json
import time
from pathlib import Path

import torch

p = argparse.ArgumentParser()
p.add_argument("--model")
p.add_argument("--impl", choices=["torch", "torch-cl", "ort"], default="torch")
p.add_argument("--threads", type=int, required=True)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--seconds", type=float, default=2.0)
p.add_argument("--gemm", action="store_true")
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)


def rate(step, seconds):
    step()
    step()
    calls, t = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t < seconds:
        step()
        calls += 1
    return calls / (time.perf_counter() - t)


if args.gemm:
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    calls = rate(lambda: torch.mm(a, b), 1.0)
    print(json.dumps({"impl": f"pytorch {torch.__version__}", "gflops": calls * 2 * n**3 / 1e9}))
    raise SystemExit

import torchvision  # noqa: E402
from torchvision import models  # noqa: E402

BUILD = {
    "resnet50": (lambda: models.resnet50(), 224),
    "resnet101": (lambda: models.resnet101(), 224),
    "resnet152": (lambda: models.resnet152(), 224),
    "wide_resnet50_2": (lambda: models.wide_resnet50_2(), 224),
    "resnext50_32x4d": (lambda: models.resnext50_32x4d(), 224),
    "resnet18": (lambda: models.resnet18(), 224),
    "vgg16": (lambda: models.vgg16(), 224),
    "vgg16_bn": (lambda: models.vgg16_bn(), 224),
    "alexnet": (lambda: models.alexnet(), 224),
    "googlenet": (lambda: models.googlenet(aux_logits=False, init_weights=True), 224),
    "inception_v3": (lambda: models.inception_v3(aux_logits=False, init_weights=True), 299),
    "inception_v4": (lambda: timm_model("inception_v4"), 299),
    "inception_resnet_v2": (lambda: timm_model("inception_resnet_v2"), 299),
}


def timm_model(name):
    import timm

    return timm.create_model(name, pretrained=False)


torch.manual_seed(0)
build, size = BUILD[args.model]
model = build().eval()
x = torch.randn(args.batch, 3, size, size)

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

with torch.inference_mode(), FlopCounterMode(display=False) as counter:
    model(x[:1])
gflops = counter.get_total_flops() / 1e9

if args.impl == "ort":
    import onnxruntime as ort

    cache = Path(__file__).resolve().parents[2] / "target" / "bench-onnx"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{args.model}-b{args.batch}-torch{torch.__version__}-tv{torchvision.__version__}.onnx"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with torch.no_grad():
            torch.onnx.export(model, (x,), str(tmp), input_names=["x"], output_names=["logits"], dynamo=False)
        tmp.rename(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    ips = rate(lambda: session.run(None, feed), args.seconds) * args.batch
    impl = f"onnxruntime {ort.__version__}"
else:
    if args.impl == "torch-cl":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ips = rate(lambda: model(x), args.seconds) * args.batch
    impl = f"pytorch {torch.__version__} {args.impl}"
print(json.dumps({"impl": impl, "images_per_sec": ips, "gflops_per_image": gflops}))
