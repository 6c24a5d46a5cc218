#!/usr/bin/env python3
"""Writes `imagenet_classes.tsv`, the ImageNet-1k class table of convnets-data, from the
facts two reference libraries ship:

- the 1000 synset ids in sorted order (the order of class indices every torchvision and timm
  checkpoint uses): timm `timm/data/_info/imagenet_synsets.txt`;
- the WordNet lemmas of each synset: timm `timm/data/_info/imagenet_synset_to_lemma.txt`;
- the short English name of each class: torchvision `torchvision/models/_meta.py`
  (`_IMAGENET_CATEGORIES`, in the same sorted-synset order).

    /work/venv/bin/python crates/data/assets/imagenet_classes.py
"""

from pathlib import Path

import timm
from torchvision.models._meta import _IMAGENET_CATEGORIES

info = Path(timm.__file__).parent / "data" / "_info"
synsets = (info / "imagenet_synsets.txt").read_text().split()
lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines())
assert len(synsets) == 1000 and synsets == sorted(synsets)
assert len(_IMAGENET_CATEGORIES) == 1000

out = Path(__file__).with_name("imagenet_classes.tsv")
with open(out, "w") as f:
    f.write("# ImageNet-1k (ILSVRC2012) classes in sorted-synset order, the class index of every\n")
    f.write("# torchvision and timm checkpoint. Written by imagenet_classes.py from timm's\n")
    f.write(f"# imagenet_synsets.txt and imagenet_synset_to_lemma.txt (timm {timm.__version__}) and\n")
    f.write("# torchvision's _IMAGENET_CATEGORIES. Columns: index, synset, name, WordNet lemmas.\n")
    for i, (wnid, name) in enumerate(zip(synsets, _IMAGENET_CATEGORIES)):
        assert "\t" not in name and "\t" not in lemmas[wnid]
        f.write(f"{i}\t{wnid}\t{name}\t{lemmas[wnid].strip()}\n")
print(f"wrote {out}")
