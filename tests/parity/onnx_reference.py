"""References that are ONNX graphs: the `light_*.onnx` models the `onnx` package ships for its
backend tests (real graphs of the ONNX model zoo whose weights are placeholders, made by
ConstantOfShape nodes), run by onnxruntime with the procedural weights of tests/parity/README.md.

The weights become graph inputs named as the zoo file names its initialisers (`conv1_w_0`,
`gpu_0/fc6_b_0`, ...), so the fixture's tensor list is the state dict of the real ONNX file and
the Rust side must load it through the family's key map, as it would load a converted zoo file.
Value ranges are calibrated as `generate.calibrate_torch` does, one Conv/Gemm at a time, from
the activations the graph itself computes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from generate import GENERATOR, Spec, default_range, inputs_for, round_sig


def light_graph(file_name: str) -> str:
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", file_name)


@dataclass
class OnnxReference:
    """A light ONNX graph as a parity reference (the `run()` protocol of generate.py)."""

    name: str
    graph: str  # file name under onnx/backend/test/data/light
    input_size: tuple[int, int, int]  # (C, H, W) given to the graph's data input
    description: str
    # Attributes to set on every node of an op type before the graph runs, {op: {attr: value}}:
    # the same graph with other constants (the paper's LRN in place of Caffe's).
    overrides: dict[str, dict[str, float]] = field(default_factory=dict)

    def run(self) -> dict:
        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper

        model = onnx.load(light_graph(self.graph))
        g = model.graph
        for op, attrs in self.overrides.items():
            unknown = set(attrs) - set(onnx.defs.get_schema(op).attributes)
            targets = [n for n in g.node if n.op_type == op]
            if unknown or not targets:
                raise SystemExit(f"{self.graph}: cannot set {sorted(unknown) or attrs} on its {len(targets)} {op} nodes")
            for node in targets:
                kept = [a for a in node.attribute if a.name not in attrs]
                del node.attribute[:]
                node.attribute.extend([*kept, *(helper.make_attribute(k, v) for k, v in attrs.items())])
        inits = {t.name: t for t in g.initializer}

        # Placeholder weights: ConstantOfShape(<name>__SHAPE) -> <name>.
        specs: list[Spec] = []
        placeholders = [n for n in g.node if n.op_type == "ConstantOfShape" and n.input[0] in inits]
        for node in placeholders:
            shape = [int(d) for d in numpy_helper.to_array(inits[node.input[0]])]
            lo, hi = default_range(node.output[0], shape)
            specs.append(Spec(node.output[0], shape, "float32", lo, hi))
        shape_names = {n.input[0] for n in placeholders}
        nodes = [n for n in g.node if n not in placeholders]
        del g.node[:]
        g.node.extend(nodes)
        kept = [t for t in g.initializer if t.name not in shape_names]
        del g.initializer[:]
        g.initializer.extend(kept)
        graph_inputs = [i for i in g.input if i.name not in shape_names]
        data = next(i for i in graph_inputs if i.name not in inits)
        for dim, size in zip(data.type.tensor_type.shape.dim, (1, *self.input_size)):
            dim.dim_value = size
        del g.input[:]
        g.input.extend(graph_inputs)
        g.input.extend(helper.make_tensor_value_info(s.name, onnx.TensorProto.FLOAT, s.shape) for s in specs)

        # Outputs: the logits (the final Softmax's input) and every Conv/Gemm input.
        softmax = [n for n in g.node if n.op_type == "Softmax"]
        logits = softmax[-1].input[0] if softmax else g.output[0].name
        layers = [n for n in g.node if n.op_type in ("Conv", "Gemm")]
        wanted = [logits] + [n.input[0] for n in layers if n.input[0] != data.name]
        del g.output[:]
        g.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in dict.fromkeys(wanted))

        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        inputs = inputs_for(self)
        by_name = {s.name: s for s in specs}
        weights = {s.name: s.array() for s in specs}

        def forward(outputs: list[str]) -> list[np.ndarray]:
            # The exports fix the batch at 1 (Reshape to [1, C·H·W]): one image at a time.
            runs = [session.run(outputs, {data.name: x.array(), **weights}) for x in inputs]
            return [np.concatenate([r[k] for r in runs]) for k in range(len(outputs))]

        for node in layers:
            spec = by_name[node.input[1]]
            x = np.concatenate([s.array() for s in inputs]) if node.input[0] == data.name else forward([node.input[0]])[0]
            fan_in = int(np.prod(spec.shape[1:]))
            ms = max(float(np.mean(x.astype(np.float64) ** 2)), 1e-12)
            b = round_sig(math.sqrt(3.0 / (fan_in * ms)))
            spec.lo, spec.hi = -b, b
            weights[spec.name] = spec.array()

        out = forward([logits])[0]
        changed = "".join(f" with {op} {', '.join(f'{k} {v}' for k, v in attrs.items())}" for op, attrs in self.overrides.items())
        return {
            "arch": self.name,
            "reference": f"{self.description}: {self.graph} of onnx {onnx.__version__}{changed}, run by onnxruntime {ort.__version__}",
            "generator": GENERATOR,
            "tensors": [s.json() for s in specs],
            "inputs": [s.json() for s in inputs],
            "logits": [[float(v) for v in row] for row in out],
        }
