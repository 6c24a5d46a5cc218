#!/usr/bin/env python3
"""PyTorch side of `cargo xtask bench lenet-train`: LeNet-5 training steps per second.

The modules are the parity references of tests/parity/ref_lenet.py; the step is what
convnets-train does: forward in training mode, the loss (cross-entropy, or LeCun's MAP
criterion for the classic RBF output), backward, SGD with momentum. Prints one JSON line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "parity"))
import generate  # noqa: E402,F401  (ref_lenet imports it)
from ref_lenet import classic_module, modern_module  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--variant", choices=["classic", "modern"], required=True)
p.add_argument("--threads", type=int, required=True)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=100)
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
model = (classic_module if args.variant == "classic" else modern_module)().train()
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
x = torch.randn(args.batch, 1, 32, 32)
y = torch.randint(0, 10, (args.batch,))


def loss_fn(logits):
    if args.variant == "classic":  # LeCun et al. 1998 eq. (9), j = 10, logits = -penalties
        rubbish = torch.full((logits.shape[0], 1), -10.0)
        return (torch.logsumexp(torch.cat([rubbish, logits], 1), 1) - logits.gather(1, y[:, None])[:, 0]).mean()
    return torch.nn.functional.cross_entropy(logits, y)


def step():
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x)).backward()
    opt.step()


for _ in range(10):
    step()
t = time.perf_counter()
for _ in range(args.steps):
    step()
dt = time.perf_counter() - t
print(json.dumps({"impl": f"pytorch {torch.__version__}", "images_per_sec": args.batch * args.steps / dt}))
