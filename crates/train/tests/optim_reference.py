#!/usr/bin/env python3
"""Five steps of torch.optim.SGD / AdamW on procedural parameters and gradients: writes
fixtures/optim.json for tests/optim.rs. The one-dimensional parameter `b` is in a group
without weight decay when a case says so (timm's no-decay-on-1d rule)."""

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests" / "parity"))
from generate import procedural_array  # noqa: E402

SHAPES = {"w": [4, 3], "b": [3]}
LRS = [0.1, 0.1, 0.05, 0.05, 0.01]
CASES = {
    "sgd_momentum_wd": ("sgd", dict(momentum=0.9, weight_decay=1e-2), True),
    "sgd_nesterov_no_1d_decay": ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=5e-4), False),
    "sgd_dampening": ("sgd", dict(momentum=0.8, dampening=0.3), True),
    "sgd_plain": ("sgd", dict(), True),
    "adamw": ("adamw", dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), False),
    "adamw_betas": ("adamw", dict(betas=(0.8, 0.9), eps=1e-6, weight_decay=0.0), True),
}


def run(kind, opts, decay_1d):
    params = {k: torch.nn.Parameter(torch.from_numpy(procedural_array(f"param.{k}", s, -1.0, 1.0)))
              for k, s in SHAPES.items()}
    wd = opts.pop("weight_decay", 0.0)
    groups = [{"params": [params["w"]], "weight_decay": wd},
              {"params": [params["b"]], "weight_decay": wd if decay_1d else 0.0}]
    opt = (torch.optim.SGD if kind == "sgd" else torch.optim.AdamW)(groups, lr=LRS[0], foreach=False, **opts)
    for step, lr in enumerate(LRS):
        for g in opt.param_groups:
            g["lr"] = lr
        for k, p in params.items():
            p.grad = torch.from_numpy(procedural_array(f"grad.{step}.{k}", SHAPES[k], -1.0, 1.0))
        opt.step()
    return {k: [float(v) for v in p.detach().flatten()] for k, p in params.items()}


out = {"reference": f"torch {torch.__version__}", "lrs": LRS, "cases": {}}
for name, (kind, opts, decay_1d) in CASES.items():
    out["cases"][name] = {"params": run(kind, dict(opts), decay_1d)}
path = HERE / "fixtures" / "optim.json"
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"{path}: {len(CASES)} cases")
