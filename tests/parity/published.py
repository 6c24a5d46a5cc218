"""Writes tests/parity/fixtures/published.json: what the weights tables (crates/*/src/weights.rs)
restate about each set of pretrained weights, read from where it is published.

The tables type their accuracies, parameter counts and eval transforms by hand;
tests/published.rs compares every row with this file, so a wrong digit fails a test.

Each family module registers the weights its table lists, by the table's id:
  - `torchvision_weights(id, "ResNet50_Weights.IMAGENET1K_V2")`: the entry's `meta`
    (`num_params`, `_metrics["ImageNet-1K"]`, the categories), its URL, and its
    `transforms()` (resize, crop, interpolation, mean, std), all from the installed
    torchvision;
  - `timm_weights(id, row)`: the installed timm's `pretrained_cfg` and parameter count, and
    the weights' row of timm's `results/results-imagenet.csv`. That table is not in the pip
    package, so the family module quotes the row verbatim, from the commit in `TIMM_RESULTS`.

`python generate.py published` (`cargo xtask fixtures published`) writes the file; a run of
generate.py without arguments writes it with every other fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATH = HERE / "fixtures" / "published.json"
# The name generate.py knows the fixture by.
NAME = "published"

TIMM_RESULTS = {
    "repository": "huggingface/pytorch-image-models",
    "commit": "0173a139a2c66db3a41ebfe1d8ac4fb02483642e",
    "file": "results/results-imagenet.csv",
}
TIMM_RESULTS["url"] = (
    f"https://github.com/{TIMM_RESULTS['repository']}/blob/{TIMM_RESULTS['commit']}/{TIMM_RESULTS['file']}"
)
RESULTS_HEADER = "model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation"

# Weights id → torchvision `Enum.MEMBER`, and weights id → quoted results row.
TORCHVISION: dict[str, str] = {}
TIMM: dict[str, str] = {}


def torchvision_weights(weights_id: str, member: str) -> None:
    """Registers a table row whose numbers are torchvision's `member` (`Enum.MEMBER`)."""
    TORCHVISION[weights_id] = member


def timm_weights(weights_id: str, results_row: str) -> None:
    """Registers a table row whose numbers are timm's, with its results-imagenet.csv row."""
    TIMM[weights_id] = results_row


def torchvision_entry(member: str) -> dict:
    from torchvision.models import get_weight

    weights = get_weight(member)
    metrics = weights.meta["_metrics"]["ImageNet-1K"]
    t = weights.transforms()
    (resize,), (crop,) = t.resize_size, t.crop_size
    return {
        "source": "torchvision",
        "weights": member,
        "url": weights.url,
        "num_params": weights.meta["num_params"],
        "num_classes": len(weights.meta["categories"]),
        "top1": metrics["acc@1"],
        "top5": metrics["acc@5"],
        "resize": resize,
        "crop": crop,
        "interpolation": t.interpolation.value,
        "mean": list(t.mean),
        "std": list(t.std),
    }


def parse_results_row(weights_id: str, row: str) -> dict:
    """The fields of a results-imagenet.csv row (param_count in millions)."""
    fields = row.split(",")
    names = RESULTS_HEADER.split(",")
    if len(fields) != len(names) or fields[0] != weights_id:
        raise SystemExit(f"{weights_id}: not a results-imagenet.csv row of it: {row!r}")
    r = dict(zip(names, fields))
    for top in ("top1", "top5"):
        if abs(float(r[top]) + float(r[f"{top}_err"]) - 100.0) > 1e-9:
            raise SystemExit(f"{weights_id}: {top} and {top}_err do not add up to 100 in {row!r}")
    return {
        "row": row,
        "top1": float(r["top1"]),
        "top5": float(r["top5"]),
        "param_count_m": float(r["param_count"]),
        "img_size": int(r["img_size"]),
        "crop_pct": float(r["crop_pct"]),
        "interpolation": r["interpolation"],
    }


def timm_entry(weights_id: str, row: str) -> dict:
    import timm

    cfg = timm.models.get_pretrained_cfg(weights_id)
    if cfg is None:
        raise SystemExit(f"{weights_id}: timm {timm.__version__} has no pretrained_cfg for it")
    model = timm.create_model(weights_id, pretrained=False)
    keep = ("input_size", "test_input_size", "crop_pct", "test_crop_pct", "interpolation", "mean", "std", "num_classes")
    d = cfg.to_dict()
    return {
        "source": "timm",
        "num_params": sum(p.numel() for p in model.parameters()),
        "pretrained_cfg": {k: list(d[k]) if isinstance(d[k], tuple) else d[k] for k in keep if d.get(k) is not None},
        "results": parse_results_row(weights_id, row),
    }


def write() -> None:
    import timm
    import torchvision

    entries = {i: torchvision_entry(m) for i, m in TORCHVISION.items()}
    entries |= {i: timm_entry(i, row) for i, row in TIMM.items()}
    fixture = {
        "generator": "tests/parity/published.py",
        "reference": f"torchvision {torchvision.__version__}, timm {timm.__version__}",
        "timm_results": TIMM_RESULTS | {"header": RESULTS_HEADER},
        "weights": dict(sorted(entries.items())),
    }
    PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(PATH, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"{PATH.relative_to(HERE.parent.parent)}: {len(TORCHVISION)} torchvision and {len(TIMM)} timm weights")
