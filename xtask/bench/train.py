#!/usr/bin/env python3
"""PyTorch side of `cargo xtask bench train`: training steps per second.

The modules are the parity references (tests/parity/ref_lenet.py, ref_resnet.py); the step is
what convnets-train does: forward in training mode, the loss (cross-entropy, or LeCun's MAP
criterion for the classic RBF output), backward, SGD with momentum (and weight decay 1e-4 for
the CIFAR ResNets, He et al. 2015). Prints one JSON line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "parity"))
import generate  # noqa: E402,F401  (the reference modules import it)
from ref_lenet import classic_module, modern_module  # noqa: E402
from ref_resnet import CIFAR, cifar_resnet_class  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--model", choices=["lenet5-classic", "lenet5-modern", "resnet20", "resnet56"], required=True)
p.add_argument("--threads", type=int, required=True)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--seconds", type=float, default=2.0)
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)
if args.model.startswith("lenet5"):
    model = (classic_module if args.model == "lenet5-classic" else modern_module)()
    x = torch.randn(args.batch, 1, 32, 32)
    weight_decay = 0.0
else:
    model = cifar_resnet_class()(CIFAR[int(args.model[len("resnet"):])])
    x = torch.randn(args.batch, 3, 32, 32)
    weight_decay = 1e-4
model.train()
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=weight_decay)
y = torch.arange(args.batch) % 10


def loss_fn(logits):
    if args.model == "lenet5-classic":  # LeCun et al. 1998 eq. (9), j = 10, logits = -penalties
        rubbish = torch.full((logits.shape[0], 1), -10.0)
        return (torch.logsumexp(torch.cat([rubbish, logits], 1), 1) - logits.gather(1, y[:, None])[:, 0]).mean()
    return torch.nn.functional.cross_entropy(logits, y)


def step():
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x)).backward()
    opt.step()


step()
step()
calls, t = 0, time.perf_counter()
while calls < 3 or time.perf_counter() - t < args.seconds:
    step()
    calls += 1
dt = time.perf_counter() - t
print(json.dumps({"impl": f"pytorch {torch.__version__}", "images_per_sec": args.batch * calls / dt}))
