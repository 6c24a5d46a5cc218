"""Parity references of the Inception family (crates/inception, tests/parity_inception.rs).

- googlenet, inception_v3: torchvision, built as its pretrained weights are (transform_input
  on, auxiliary classifiers in the state dict), evaluated.
- googlenet_train, inception_v3_train: the same in training mode with dropout off, in
  float64; the fixture's logits are the main and auxiliary logits side by side ([logits,
  aux1, aux2] and [logits, AuxLogits]), so the auxiliary heads are checked too.
- inception_v4, inception_resnet_v2: timm, evaluated.
- googlenet_paper_onnx: Caffe's bvlc_googlenet as the ONNX graph `light_inception_v1.onnx`
  that ships with the onnx package (onnx/backend/test/data/light/), with the procedural
  weights in its initialisers (under the ONNX names; crates/inception's CAFFE_ONNX key map
  renames them), run by onnxruntime. The graph is the ONNX model zoo's opset-9 export, whose
  pools round down (ONNX had no ceil_mode before opset 10).
- googlenet_paper: the same graph brought to Caffe's pooling arithmetic, the network as
  published: opset 10, ceil_mode on every max pool, and no padding on the final 7x7 average
  pool (the export padded it to cover the 6x6 map the floor rounding left).
- googlenet_paper_train: that graph with Caffe's two auxiliary classifiers (train_val.prototxt's
  loss1/loss2, which the deploy export lacks) as PyTorch modules written here on its
  inception_4a/4d outputs; [logits, aux1, aux2] with dropout off.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from generate import (
    GENERATOR,
    Reference,
    Spec,
    calibrate_torch,
    inputs_for,
    load_torch,
    reference,
    round_sig,
    torch_specs,
)
from published import timm_weights, torchvision_weights

torchvision_weights("googlenet.tv_in1k", "GoogLeNet_Weights.IMAGENET1K_V1")
torchvision_weights("inception_v3.tv_in1k", "Inception_V3_Weights.IMAGENET1K_V1")
# Quoted from timm's results-imagenet.csv at published.TIMM_RESULTS.
timm_weights("inception_v4.tf_in1k", "inception_v4.tf_in1k,80.156,19.844,94.968,5.032,42.68,299,0.875,bicubic")
timm_weights(
    "inception_resnet_v2.tf_in1k",
    "inception_resnet_v2.tf_in1k,80.462,19.538,95.308,4.692,55.84,299,0.897,bicubic",
)

# --------------------------------------------------------------------------------------------
# torchvision and timm


@reference("googlenet")
def googlenet() -> Reference:
    import torchvision

    def build():
        return torchvision.models.googlenet(aux_logits=True, transform_input=True, init_weights=False)

    return Reference(
        "googlenet",
        build,
        (3, 224, 224),
        "torchvision.models.googlenet(aux_logits=True, transform_input=True), eval "
        f"(torchvision {torchvision.__version__})",
    )


@reference("inception_v3")
def inception_v3() -> Reference:
    import torchvision

    def build():
        return torchvision.models.inception_v3(aux_logits=True, transform_input=True, init_weights=False)

    return Reference(
        "inception_v3",
        build,
        (3, 299, 299),
        "torchvision.models.inception_v3(aux_logits=True, transform_input=True), eval "
        f"(torchvision {torchvision.__version__})",
    )


@reference("inception_v4")
def inception_v4() -> Reference:
    import timm

    return Reference(
        "inception_v4",
        lambda: timm.create_model("inception_v4"),
        (3, 299, 299),
        f"timm.create_model('inception_v4'), eval (timm {timm.__version__})",
    )


@reference("inception_resnet_v2")
def inception_resnet_v2() -> Reference:
    import timm

    return Reference(
        "inception_resnet_v2",
        lambda: timm.create_model("inception_resnet_v2"),
        (3, 299, 299),
        f"timm.create_model('inception_resnet_v2'), eval (timm {timm.__version__})",
    )


class TrainingOutputs:
    """A torchvision model with auxiliary classifiers, run in training mode (batch statistics,
    auxiliary heads on) with every dropout at 0, in float64; `outputs` picks the logits to
    concatenate."""

    def __init__(self, ref: Reference, outputs):
        self.ref = ref
        self.outputs = outputs

    def run(self) -> dict:
        import torch

        ref = self.ref
        torch.manual_seed(0)
        model = ref.build()
        model.eval()
        specs = torch_specs(model)
        inputs = inputs_for(ref)
        x = torch.from_numpy(np.concatenate([s.array() for s in inputs]))
        load_torch(model, specs)
        calibrate_torch(model, specs, x)
        load_torch(model, specs)
        # In float64: with two images, training-mode BatchNorm over the auxiliary heads' 1×1
        # maps normalises pairs of values, which amplifies float32 rounding to about the
        # tolerance (torch's own float32 result is 3e-4 off its float64 one for Inception-v3).
        # The Rust side computes in float64 too, so what is compared is the arithmetic.
        model.double().train()
        with torch.no_grad():
            logits = torch.cat(self.outputs(model(x.double())), 1)
        return {
            "arch": ref.name,
            "reference": f"{ref.description}, float64 (torch {torch.__version__})",
            "generator": GENERATOR,
            "tensors": [s.json() for s in specs],
            "inputs": [s.json() for s in inputs],
            "logits": [[float(v) for v in row] for row in logits.numpy()],
        }


@reference("googlenet_train")
def googlenet_train() -> TrainingOutputs:
    import torchvision

    def build():
        return torchvision.models.googlenet(
            aux_logits=True, transform_input=True, init_weights=False, dropout=0.0, dropout_aux=0.0
        )

    ref = Reference(
        "googlenet_train",
        build,
        (3, 224, 224),
        "torchvision.models.googlenet(aux_logits=True, transform_input=True, dropout=0, "
        f"dropout_aux=0), train, [logits, aux1, aux2] (torchvision {torchvision.__version__})",
    )
    return TrainingOutputs(ref, lambda out: [out.logits, out.aux_logits1, out.aux_logits2])


@reference("inception_v3_train")
def inception_v3_train() -> TrainingOutputs:
    import torchvision

    def build():
        return torchvision.models.inception_v3(
            aux_logits=True, transform_input=True, init_weights=False, dropout=0.0
        )

    ref = Reference(
        "inception_v3_train",
        build,
        (3, 299, 299),
        "torchvision.models.inception_v3(aux_logits=True, transform_input=True, dropout=0), "
        f"train, [logits, AuxLogits] (torchvision {torchvision.__version__})",
    )
    return TrainingOutputs(ref, lambda out: [out.logits, out.aux_logits])


# --------------------------------------------------------------------------------------------
# bvlc_googlenet through ONNX

LIGHT_GOOGLENET = "backend/test/data/light/light_inception_v1.onnx"

# The convolutions before the two LRNs are calibrated to this output power instead of 1, so
# that the normalisation (k=1, alpha=1e-4 over 5 channels) divides by about 1.7 rather than by
# 1.00004: a model without its LRN must fail the comparison.
LRN_INPUT_POWER = 2e4


class OnnxGoogLeNet:
    """bvlc_googlenet's ONNX graph, with procedural weights, run by onnxruntime."""

    def __init__(self, name: str, caffe_pooling: bool):
        self.name = name
        self.caffe_pooling = caffe_pooling
        self.input_size = (3, 224, 224)

    def graph(self):
        """The shipped graph without its placeholder weights: (model, {weight: shape}, [weight
        in the order the nodes use them], logits tensor name)."""
        import onnx
        from onnx import numpy_helper

        path = Path(onnx.__file__).parent / LIGHT_GOOGLENET
        model = onnx.load(str(path))
        g = model.graph
        init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        # The "light" file replaces each large weight with ConstantOfShape(weight__SHAPE) and
        # keeps the small ones as initialisers; every one of them becomes procedural.
        shapes = {}
        for node in g.node:
            if node.op_type == "ConstantOfShape":
                shapes[node.output[0]] = [int(d) for d in init[node.input[0]]]
        for t in g.initializer:
            if not t.name.endswith("__SHAPE") and not t.name.startswith("OC2_DUMMY"):
                shapes[t.name] = list(t.dims)
        order = []
        for node in g.node:
            if node.op_type in ("Conv", "Gemm", "Reshape"):
                order += [i for i in node.input if i in shapes and i not in order]
        assert sorted(order) == sorted(shapes), "a weight no layer uses"
        gemm = next(n for n in g.node if n.op_type == "Gemm")

        kept_nodes = [n for n in g.node if n.op_type != "ConstantOfShape"]
        del g.node[:]
        g.node.extend(kept_nodes)
        kept_init = [t for t in g.initializer if t.name.startswith("OC2_DUMMY")]
        del g.initializer[:]
        g.initializer.extend(kept_init)
        kept_inputs = [i for i in g.input if i.name == "data_0" or i.name.startswith("OC2_DUMMY")]
        del g.input[:]
        g.input.extend(kept_inputs)
        # The logits, not the softmax.
        del g.output[:]
        g.output.append(onnx.helper.make_tensor_value_info(gemm.output[0], onnx.TensorProto.FLOAT, [1, 1000]))
        # Weights as initialisers that are also graph inputs (IR 3), so that calibration can
        # feed candidates without rebuilding the session.
        for name in order:
            g.input.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shapes[name]))

        if self.caffe_pooling:
            model.opset_import[0].version = 10  # MaxPool-10 has ceil_mode; nothing else used changes
            for node in g.node:
                if node.op_type == "MaxPool":
                    node.attribute.append(onnx.helper.make_attribute("ceil_mode", 1))
                if node.op_type == "AveragePool":
                    pads = next(a for a in node.attribute if a.name == "pads")
                    del pads.ints[:]
                    pads.ints.extend([0, 0, 0, 0])
        onnx.checker.check_model(model)
        return model, shapes, order, gemm

    def calibrated(self):
        """The graph with every weight calibrated and in its initialiser: (model, the weights'
        specs in the order the nodes use them, the input specs, the logits' tensor name)."""
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        model, shapes, order, gemm = self.graph()
        g = model.graph
        # Every weight's range is set by the calibration below; biases keep ±0.1.
        specs = {name: Spec(name, shapes[name], "float32", -0.1, 0.1) for name in order}
        inputs = [Spec(f"input.{i}", [1, *self.input_size], "float32", -2.0, 2.0) for i in range(2)]
        xs = [s.array() for s in inputs]

        # Calibration, layer by layer in the order the graph uses them: each Conv's and the
        # Gemm's weight range is set from the mean square of its actual input.
        layers = [n for n in g.node if n.op_type in ("Conv", "Gemm")]
        before_lrn = self.convs_before_lrn(g)
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        del probe.graph.output[:]
        for n in layers:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        weights = {name: s.array() for name, s in specs.items()}
        for node in layers:
            seen = [session.run([node.input[0]], {"data_0": x, **weights})[0] for x in xs]
            ms = max(float(np.mean([np.mean(np.square(a.astype(np.float64))) for a in seen])), 1e-12)
            if node.op_type == "Conv":
                w, fan_in = node.input[1], int(np.prod(shapes[node.input[1]][1:]))
            else:  # the Gemm reads a reshape of the classifier's [1, 1, 1000, 1024] weight
                w, fan_in = "loss3/classifier_w_0", shapes["loss3/classifier_w_0"][-1]
            power = LRN_INPUT_POWER if node.output[0] in before_lrn else 1.0
            b = round_sig(math.sqrt(3.0 * power / (fan_in * ms)))
            specs[w].lo, specs[w].hi = -b, b
            weights[w] = specs[w].array()

        # The final graph: every weight in its initialiser.
        for name in order:
            g.initializer.append(numpy_helper.from_array(specs[name].array(), name))
        return model, [specs[name] for name in order], inputs, gemm.output[0]

    def description(self) -> str:
        import onnx
        import onnxruntime as ort

        pooling = (
            "opset 10, ceil_mode max pools, unpadded pool5 (Caffe's pooling)"
            if self.caffe_pooling
            else "as shipped (opset 9, floor pooling)"
        )
        return (
            f"onnx {onnx.__version__} {LIGHT_GOOGLENET}, {pooling}, procedural weights in its "
            f"initialisers, logits of the Gemm (onnxruntime {ort.__version__})"
        )

    @staticmethod
    def outputs(model, names: list[str], inputs: list[Spec]) -> list[np.ndarray]:
        """The tensors `names` of the graph for the two inputs, each batched."""
        import onnx
        import onnxruntime as ort

        del model.graph.output[:]
        model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        runs = [session.run(names, {"data_0": x.array()}) for x in inputs]
        return [np.concatenate([r[k] for r in runs]) for k in range(len(names))]

    def run(self) -> dict:
        model, specs, inputs, logits = self.calibrated()
        (logits,) = self.outputs(model, [logits], inputs)
        return {
            "arch": self.name,
            "reference": self.description(),
            "generator": GENERATOR,
            "tensors": [s.json() for s in specs],
            "inputs": [s.json() for s in inputs],
            "logits": [[float(v) for v in row] for row in logits],
        }

    @staticmethod
    def convs_before_lrn(g) -> set[str]:
        """Output names of the convolutions whose (rectified, pooled) output an LRN reads."""
        producer = {out: n for n in g.node for out in n.output}
        found = set()
        for node in g.node:
            if node.op_type != "LRN":
                continue
            n = producer[node.input[0]]
            while n.op_type in ("Relu", "MaxPool"):
                n = producer[n.input[0]]
            assert n.op_type == "Conv", n.op_type
            found.add(n.output[0])
        return found


@reference("googlenet_paper")
def googlenet_paper() -> OnnxGoogLeNet:
    return OnnxGoogLeNet("googlenet_paper", caffe_pooling=True)


@reference("googlenet_paper_onnx")
def googlenet_paper_onnx() -> OnnxGoogLeNet:
    return OnnxGoogLeNet("googlenet_paper_onnx", caffe_pooling=False)


# --------------------------------------------------------------------------------------------
# bvlc_googlenet's training network: the deploy graph and Caffe's auxiliary classifiers


def caffe_aux_heads():
    """The two auxiliary classifiers of Caffe's bvlc_googlenet train_val.prototxt, written
    here from it: `loss1/*` on inception_4a's output (512 channels), `loss2/*` on
    inception_4d's (528), each an AVE pool 5/3, a 1×1 convolution to 128 + ReLU, an inner
    product to 1024 + ReLU, dropout 0.7 (left out: the fixture is compared with dropout off),
    and the classifier. Caffe's pooling rounds up, which at 14×14 gives 4×4 either way.
    Modules are named as torchvision's auxiliary heads (`aux1.conv.conv`, `aux1.fc1`,
    `aux1.fc2`), the names crates/inception gives them."""
    import torch
    from torch import nn

    class ConvReLU(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 1)

        def forward(self, x):
            return torch.relu(self.conv(x))

    class Head(nn.Module):
        def __init__(self, in_channels):
            super().__init__()
            self.pool = nn.AvgPool2d(5, stride=3, ceil_mode=True)
            self.conv = ConvReLU(in_channels, 128)
            self.fc1 = nn.Linear(128 * 4 * 4, 1024)
            self.fc2 = nn.Linear(1024, 1000)

        def forward(self, x):
            x = self.conv(self.pool(x))
            assert x.shape[1:] == (128, 4, 4), tuple(x.shape)
            return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.aux1 = Head(512)
            self.aux2 = Head(528)

        def forward(self, maps):
            x4a, x4d = maps
            return self.aux1(x4a), self.aux2(x4d)

    return Heads()


class OnnxGoogLeNetTraining(OnnxGoogLeNet):
    """The trunk and main classifier from the ONNX graph (Caffe's pooling), the auxiliary
    heads from `caffe_aux_heads` reading the graph's inception_4a and inception_4d outputs;
    the fixture's logits are [logits, aux1, aux2] side by side, as in training with every
    dropout off."""

    def run(self) -> dict:
        import torch

        model, specs, inputs, logits = self.calibrated()
        # The Concat outputs in graph order: inception_3a, 3b, 4a, 4b, 4c, 4d, 4e, 5a, 5b.
        concats = [n.output[0] for n in model.graph.node if n.op_type == "Concat"]
        assert len(concats) == 9, f"{len(concats)} inception modules"
        logits, x4a, x4d = self.outputs(model, [logits, concats[2], concats[5]], inputs)
        assert x4a.shape[1:] == (512, 14, 14) and x4d.shape[1:] == (528, 14, 14), (x4a.shape, x4d.shape)

        heads = caffe_aux_heads().eval()
        head_specs = torch_specs(heads)
        maps = (torch.from_numpy(x4a), torch.from_numpy(x4d))
        load_torch(heads, head_specs)
        calibrate_torch(heads, head_specs, maps)
        load_torch(heads, head_specs)
        with torch.no_grad():
            aux = [a.numpy() for a in heads(maps)]
        out = np.concatenate([logits, *aux], 1)
        return {
            "arch": self.name,
            "reference": f"{self.description()}, and Caffe's loss1/loss2 heads as PyTorch modules "
            f"(ref_inception.py, torch {torch.__version__}) on its inception_4a/4d outputs; "
            "[logits, aux1, aux2], dropout off",
            "generator": GENERATOR,
            "tensors": [s.json() for s in specs + head_specs],
            "inputs": [s.json() for s in inputs],
            "logits": [[float(v) for v in row] for row in out],
        }


@reference("googlenet_paper_train")
def googlenet_paper_train() -> OnnxGoogLeNetTraining:
    return OnnxGoogLeNetTraining("googlenet_paper_train", caffe_pooling=True)
