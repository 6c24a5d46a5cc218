#!/usr/bin/env python3
"""The reference pipeline of the throughput benchmark: torchvision's ImageFolder (Pillow
loader) + ImageClassification(crop 224, resize 256) in a DataLoader with WORKERS worker
processes, batch 32, over DIR (class folders). Prints one line: `images_per_s N`.

    python torchvision_throughput.py DIR WORKERS [PASSES]
"""

import sys
import time

import torch
import torchvision
from torchvision.transforms._presets import ImageClassification


def main():
    root, workers = sys.argv[1], int(sys.argv[2])
    passes = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(1)
    data = torchvision.datasets.ImageFolder(root, transform=ImageClassification(crop_size=224, resize_size=256))
    loader = torch.utils.data.DataLoader(data, batch_size=32, num_workers=workers, shuffle=False,
                                         persistent_workers=workers > 0)
    best = 0.0
    for _ in range(passes):
        start, n = time.perf_counter(), 0
        for images, _labels in loader:
            n += images.shape[0]
        best = max(best, n / (time.perf_counter() - start))
    print(f"images_per_s {best:.1f}")


if __name__ == "__main__":
    main()
