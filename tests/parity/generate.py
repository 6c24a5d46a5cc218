#!/usr/bin/env python3
"""Writes the model parity fixtures of tests/parity/fixtures/ (spec: tests/parity/README.md).

For every reference architecture this script
  1. lists the reference state dict (names, shapes, dtypes),
  2. chooses a value range per tensor (calibrated so that activations stay O(1) through the
     deepest nets, see `calibrate_torch`),
  3. fills every tensor with the procedural values of that range, loads them into the
     reference model with strict=True (which proves the names), and
  4. records the reference logits for the procedural inputs.

The Rust tests regenerate the same tensors bit for bit and compare logits. Developers run
this script (`cargo xtask fixtures [ARCH...]`); CI never does. Needs the packages pinned in
tests/parity/requirements.txt, installed in a virtualenv outside the repository.

Family modules add references with the @reference decorator below; `python generate.py`
with no argument regenerates every fixture, `python generate.py resnet50 vgg16` a few. They
also register the pretrained weights their tables list with published.py, whose fixture
`published.json` (`python generate.py published`) holds the numbers those tables restate.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

GENERATOR = 1
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"

# --------------------------------------------------------------------------------------------
# The procedural generator (identical to crates/core/src/procedural.rs)

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x00000100000001B3
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def procedural(name: str, n: int, lo: float, hi: float) -> np.ndarray:
    """The n float32 values of procedural tensor `name` in [lo, hi)."""
    seed = np.uint64(fnv1a64(name.encode("utf-8")))
    out = np.empty(n, dtype=np.float32)
    span = float(hi) - float(lo)
    chunk = 1 << 22
    for start in range(0, n, chunk):
        i = np.arange(start, min(n, start + chunk), dtype=np.uint64)
        z = seed + (i + np.uint64(1)) * np.uint64(GOLDEN_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        u = (z >> np.uint64(40)).astype(np.float64) * (1.0 / (1 << 24))
        out[start : start + len(i)] = (float(lo) + span * u).astype(np.float32)
    return out


def procedural_array(name: str, shape, lo: float, hi: float) -> np.ndarray:
    return procedural(name, int(np.prod(shape, dtype=np.int64)), lo, hi).reshape(shape)


# --------------------------------------------------------------------------------------------
# Value ranges


def round_sig(x: float, digits: int = 4) -> float:
    """Rounds to a few significant digits so fixtures stay readable; exact in JSON."""
    return float(f"{x:.{digits}g}")


def default_range(name: str, shape) -> tuple[float, float]:
    """The range of a tensor that calibration did not touch."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_mean":
        return (-0.1, 0.1)
    if leaf == "running_var":
        return (0.5, 1.5)
    if len(shape) >= 2:  # conv / linear weight: unit gain for unit-variance input
        fan_in = int(np.prod(shape[1:]))
        b = round_sig(math.sqrt(3.0 / fan_in))
        return (-b, b)
    if leaf == "weight":  # norm scale
        return (0.5, 1.5)
    return (-0.1, 0.1)  # biases and anything else


@dataclass
class Spec:
    name: str
    shape: list[int]
    dtype: str
    lo: float
    hi: float

    def array(self) -> np.ndarray:
        if self.dtype == "int64":
            return np.full(self.shape, int(self.lo), dtype=np.int64)
        return procedural_array(self.name, self.shape, self.lo, self.hi)

    def json(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype, "lo": self.lo, "hi": self.hi}


# --------------------------------------------------------------------------------------------
# References


@dataclass
class Reference:
    """A reference model: builds itself, runs on a float32 numpy batch, names its source."""

    name: str
    build: Callable[[], object]  # returns a torch.nn.Module (or an object with the same API)
    input_size: tuple[int, int, int] = (3, 224, 224)
    description: str = ""
    calibrate: bool = True


REFERENCES: dict[str, Callable[[], Reference]] = {}


def reference(name: str):
    """Registers a function returning a Reference under `name` (the fixture's file name)."""

    def register(fn):
        REFERENCES[name] = fn
        return fn

    return register


def torch_specs(model) -> list[Spec]:
    import torch

    specs = []
    for name, t in model.state_dict().items():
        if t.dtype == torch.int64:
            specs.append(Spec(name, list(t.shape), "int64", 0.0, 0.0))
        elif t.dtype == torch.float32:
            lo, hi = default_range(name, list(t.shape))
            specs.append(Spec(name, list(t.shape), "float32", lo, hi))
        else:
            raise SystemExit(f"{name}: unsupported dtype {t.dtype}")
    return specs


def load_torch(model, specs: list[Spec]) -> None:
    """Fills the model with the procedural tensors, strictly."""
    import torch

    state = {s.name: torch.from_numpy(s.array()) for s in specs}
    model.load_state_dict(state, strict=True)


def calibrate_torch(model, specs: list[Spec], x) -> None:
    """Chooses ranges so that every convolution, linear layer and BatchNorm sees and produces
    activations of order one on these inputs.

    A forward pre-hook on each such module measures its input and, before the module runs,
    sets its ranges (rounded to 4 significant digits) and refills its tensors:
      - conv / linear weight: uniform in ±sqrt(3 / (fan_in · E[x²])), so E[y²] ≈ 1;
      - BatchNorm running_mean in m ± 0.1·s and running_var in [0.5, 1.5]·s², where m and s
        are the mean and standard deviation of its input.
    Modules that never run in evaluation (auxiliary heads) keep `default_range`.
    """
    import torch

    by_name = {s.name: s for s in specs}
    module_names = {m: n for n, m in model.named_modules()}
    seen = set()

    def refill(module, prefix):
        for pname, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            spec = by_name.get(prefix + pname)
            if spec is not None and spec.dtype == "float32":
                t.data.copy_(torch.from_numpy(spec.array()))

    def hook(module, args):
        if module in seen:
            return
        seen.add(module)
        prefix = module_names[module] + "." if module_names[module] else ""
        inp = args[0].detach().double()
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            ms = max(inp.pow(2).mean().item(), 1e-12)
            b = round_sig(math.sqrt(3.0 / (fan_in * ms)))
            w = by_name[prefix + "weight"]
            w.lo, w.hi = -b, b
        else:  # BatchNorm
            m, s = inp.mean().item(), max(inp.std().item(), 1e-6)
            rm, rv = by_name[prefix + "running_mean"], by_name[prefix + "running_var"]
            rm.lo, rm.hi = round_sig(m - 0.1 * s), round_sig(m + 0.1 * s)
            rv.lo, rv.hi = round_sig(0.5 * s * s), round_sig(1.5 * s * s)
        refill(module, prefix)

    kinds = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d)
    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()


def inputs_for(ref: Reference) -> list[Spec]:
    c, h, w = ref.input_size
    return [Spec(f"input.{i}", [1, c, h, w], "float32", -2.0, 2.0) for i in range(2)]


def run_torch(ref: Reference) -> dict:
    import torch

    torch.manual_seed(0)
    model = ref.build()
    model.eval()
    specs = torch_specs(model)
    inputs = inputs_for(ref)
    x = torch.from_numpy(np.concatenate([s.array() for s in inputs]))
    load_torch(model, specs)
    if ref.calibrate:
        calibrate_torch(model, specs, x)
        load_torch(model, specs)  # every tensor from its final range, nothing else
    with torch.no_grad():
        logits = model(x)
    if not isinstance(logits, torch.Tensor):
        raise SystemExit(f"{ref.name}: eval forward returned {type(logits)}, not a tensor")
    return {
        "arch": ref.name,
        "reference": f"{ref.description} (torch {torch.__version__})",
        "generator": GENERATOR,
        "tensors": [s.json() for s in specs],
        "inputs": [s.json() for s in inputs],
        "logits": [[float(v) for v in row] for row in logits.numpy()],
    }


def write(fixture: dict) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{fixture['arch']}.json"
    logits = np.array(fixture["logits"])
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    n = sum(int(np.prod(t["shape"])) for t in fixture["tensors"])
    print(
        f"{path.relative_to(HERE.parent.parent)}: {len(fixture['tensors'])} tensors, {n:,} values, "
        f"logits {logits.shape}, max |logit| {np.abs(logits).max():.3f}, std {logits.std():.3f}"
    )


# --------------------------------------------------------------------------------------------
# The harness's own reference: a small net that uses every core layer


@reference("smallnet")
def smallnet() -> Reference:
    """Exercises the core layers in one model (tests/parity_smallnet.rs is its Rust twin)."""
    import torch
    from torch import nn

    class SmallNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1, bias=False),
                nn.BatchNorm2d(8),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, ceil_mode=True),
                nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0),
            )
            self.grouped = nn.Conv2d(8, 16, 3, padding=1, groups=2)
            self.wide = nn.Conv2d(16, 16, (1, 5), padding=(0, 2), bias=False)
            self.wide_bn = nn.BatchNorm2d(16, eps=1e-3)
            self.pool = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
            self.adapt = nn.AdaptiveAvgPool2d((3, 3))
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(16 * 9, 10)

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(self.grouped(x))
            x = torch.relu(self.wide_bn(self.wide(x)))
            x = self.adapt(self.pool(x))
            return self.fc(self.drop(torch.flatten(x, 1)))

    return Reference("smallnet", SmallNet, (3, 37, 37), "SmallNet in tests/parity/generate.py")


# --------------------------------------------------------------------------------------------


def load_family_modules() -> None:
    """Imports every `ref_*.py` beside this file: each registers a family's references."""
    # Family modules `from generate import reference`. When this file runs as a script it is
    # `__main__`; without this alias that import would load a second copy of it, and the
    # references would be registered in that copy's registry instead of this one.
    sys.modules.setdefault("generate", sys.modules[__name__])
    sys.path.insert(0, str(HERE))
    for path in sorted(HERE.glob("ref_*.py")):
        __import__(path.stem)


def main() -> None:
    load_family_modules()
    import published

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "archs",
        nargs="*",
        help=f"fixtures to write (default: all {len(REFERENCES)}, and `{published.NAME}`: the weights tables' published numbers)",
    )
    parser.add_argument("--list", action="store_true", help="list the references and exit")
    args = parser.parse_args()
    known = sorted(REFERENCES) + [published.NAME]
    if args.list:
        print("\n".join(known))
        return
    unknown = [a for a in args.archs if a not in known]
    if unknown:
        raise SystemExit(f"unknown architectures {unknown}; known: {known}")
    for name in args.archs or known:
        if name == published.NAME:
            published.write()
            continue
        ref = REFERENCES[name]()
        # A reference that is not a torch module (an ONNX graph) brings its own `run()`.
        write(ref.run() if hasattr(ref, "run") else run_torch(ref))


if __name__ == "__main__":
    main()
