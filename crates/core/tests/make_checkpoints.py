#!/usr/bin/env python3
"""Writes the small checkpoint files the loader tests read (fixtures/checkpoints/).

TinyNet is a conv (no bias) + BatchNorm + linear layer with procedural weights; it is saved
the ways users save models, right and wrong: torch.save of the state dict (zip), of a
training-script wrapper, of the whole module, of a list, in the legacy pre-1.6 format, and
safetensors in f32, f16 and bf16 and with an integer weight.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests" / "parity"))
from generate import procedural_array  # noqa: E402

OUT = HERE / "fixtures" / "checkpoints"
OUT.mkdir(parents=True, exist_ok=True)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


model = TinyNet().eval()
state = {}
for name, t in model.state_dict().items():
    if t.dtype == torch.int64:
        state[name] = torch.tensor(7)
    else:
        lo, hi = (0.5, 1.5) if name.endswith("running_var") else (-1.0, 1.0)
        state[name] = torch.from_numpy(procedural_array(name, list(t.shape), lo, hi))
model.load_state_dict(state, strict=True)

torch.save(model.state_dict(), OUT / "state_dict.pth")
torch.save({"epoch": 3, "state_dict": model.state_dict()}, OUT / "wrapped.pth")
torch.save(model, OUT / "whole_model.pth")
torch.save([state["conv.weight"], state["fc.bias"]], OUT / "list.pth")
torch.save(model.state_dict(), OUT / "legacy.pth", _use_new_zipfile_serialization=False)
# Tensors that share a storage at an offset, and a half-precision one, in the legacy format.
base = torch.arange(24, dtype=torch.float32)
views = {"base": base, "view": base[6:18].view(3, 4), "half": torch.arange(5, dtype=torch.float16)}
torch.save(views, OUT / "legacy_views.pth", _use_new_zipfile_serialization=False)
save_file({k: v.contiguous() for k, v in state.items()}, OUT / "state_dict.safetensors")
for dtype, tag in [(torch.float16, "f16"), (torch.bfloat16, "bf16")]:
    save_file({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()},
              OUT / f"state_dict_{tag}.safetensors")
bad = dict(state)
bad["conv.weight"] = (bad["conv.weight"] * 100).to(torch.int64)
save_file(bad, OUT / "int_weight.safetensors")
with torch.no_grad():
    x = torch.from_numpy(procedural_array("tiny.input", [1, 3, 5, 5], -2.0, 2.0))
    print("logits", [float(v) for v in model(x).flatten()])
for p in sorted(OUT.iterdir()):
    print(f"{p.name}: {p.stat().st_size} bytes")
