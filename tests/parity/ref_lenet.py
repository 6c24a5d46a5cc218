"""LeNet-5 references: PyTorch modules written here from LeCun et al. 1998, independently of
crates/lenet (twins: tests/parity_lenet.rs).

The classic network is built the way the paper describes it rather than the way the Rust
crate computes it: C3 is sixteen separate convolutions, map j over the S2 maps Table I gives
it (Rust scatters the 60 kernels into one dense convolution); S2/S4 add their 2×2 inputs with
`avg_pool2d(divisor_override=1)` (Rust: 4 · mean). Only the RBF prototypes are shared, as data:
the font sheet crates/lenet/src/prototypes.txt.
"""

from __future__ import annotations

from pathlib import Path

from generate import Reference, reference

SHEET = Path(__file__).resolve().parents[2] / "crates/lenet/src/prototypes.txt"

# Table I of the paper: row i = S2 map, column j = C3 map, X = connected.
TABLE_I = [
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
]


def prototypes():
    """The ten 7×12 bitmaps as a [10, 84] tensor of ±1 (digit k is columns 8k..8k+6)."""
    import torch

    rows = [line for line in SHEET.read_text().splitlines() if line and not line.startswith("//")]
    assert len(rows) == 12, f"{SHEET}: {len(rows)} bitmap rows"
    codes = [[1.0 if rows[r][8 * k + c] == "#" else -1.0 for r in range(12) for c in range(7)] for k in range(10)]
    return torch.tensor(codes)


def squash(a):
    import torch

    return 1.7159 * torch.tanh(a * (2.0 / 3.0))


def classic_module():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Subsampling(nn.Module):
        """2×2 sum × trainable coefficient + trainable bias, per map, then squashing."""

        def __init__(self, maps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(maps))
            self.bias = nn.Parameter(torch.zeros(maps))

        def forward(self, x):
            s = F.avg_pool2d(x, 2, divisor_override=1)
            return squash(s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1))

    class LeNet5Classic(nn.Module):
        def __init__(self):
            super().__init__()
            self.inputs = [[i for i in range(6) if TABLE_I[i][j] == "X"] for j in range(16)]
            self.c1 = nn.Conv2d(1, 6, 5)
            self.s2 = Subsampling(6)
            self.c3 = nn.ModuleList(nn.Conv2d(len(ins), 1, 5) for ins in self.inputs)
            self.s4 = Subsampling(16)
            self.c5 = nn.Conv2d(16, 120, 5)
            self.f6 = nn.Linear(120, 84)
            self.register_buffer("prototypes", prototypes(), persistent=False)

        def forward(self, x):
            x = self.s2(squash(self.c1(x)))
            x = torch.cat([conv(x[:, ins]) for conv, ins in zip(self.c3, self.inputs)], dim=1)
            x = self.s4(squash(x))
            x = squash(self.c5(x)).flatten(1)
            x = squash(self.f6(x))
            penalties = ((x[:, None, :] - self.prototypes[None]) ** 2).sum(-1)
            return -penalties

    return LeNet5Classic()


def modern_module():
    import torch.nn.functional as F
    from torch import nn

    class LeNet5Modern(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.c5 = nn.Conv2d(16, 120, 5)
            self.f6 = nn.Linear(120, 84)
            self.output = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2)
            x = F.max_pool2d(F.relu(self.c3(x)), 2)
            x = F.relu(self.c5(x)).flatten(1)
            return self.output(F.relu(self.f6(x)))

    return LeNet5Modern()


@reference("lenet5_classic")
def lenet5_classic() -> Reference:
    return Reference(
        "lenet5_classic",
        classic_module,
        (1, 32, 32),
        "LeNet-5 of LeCun et al. 1998 (Table I, trainable subsampling, RBF) in tests/parity/ref_lenet.py",
    )


@reference("lenet5_modern")
def lenet5_modern() -> Reference:
    return Reference(
        "lenet5_modern",
        modern_module,
        (1, 32, 32),
        "modern LeNet-5 (ReLU, max pooling, full C3, linear head) in tests/parity/ref_lenet.py",
    )
