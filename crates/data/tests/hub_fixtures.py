#!/usr/bin/env python3
"""Writes the small-dataset fixtures of convnets-data: parquet files laid out as the Hugging
Face Hub stores Fashion-MNIST (`zalando-datasets/fashion_mnist`), CIFAR-10 (`uoft-cs/cifar10`)
and CIFAR-100 (`uoft-cs/cifar100`): PNG images in a struct column, int64 labels, written by
pyarrow as `datasets` does. A few rows each, so the files stay small:

- Fashion-MNIST: the first 5 training and 3 test images of the real dataset
  (Debian `dataset-fashion-mnist`, /usr/share/datasets/fashion-mnist);
- CIFAR: 32x32 thumbnails of the fixture photographs (CIFAR itself is not available here),
  with made-up labels;
- broken/: files with the right columns and a bad row each (a label out of range, an image
  of the wrong size, bytes that are no image), for the loaders' bad-file tests.

    ../venv/bin/python crates/data/tests/hub_fixtures.py
"""

import gzip
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HERE = Path(__file__).resolve().parent
OUT = HERE / "fixtures" / "hub"
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write(path, columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="snappy")


def main():
    fm = Path("/usr/share/datasets/fashion-mnist")
    for split, prefix, n in (("train", "train", 5), ("test", "t10k", 3)):
        images = idx(fm / f"{prefix}-images-idx3-ubyte.gz")[:n]
        labels = idx(fm / f"{prefix}-labels-idx1-ubyte.gz")[:n]
        write(OUT / "fashion_mnist" / f"{split}-00000-of-00001.parquet", {
            "image": pa.array([{"bytes": png(a), "path": None} for a in images], type=IMAGE),
            "label": pa.array(labels.astype(np.int64)),
        })

    photos = sorted((HERE / "fixtures" / "photos").glob("*.jpg"))[:4]
    thumbs = [np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.Resampling.BOX)) for p in photos]
    write(OUT / "cifar10" / "plain_text" / "test-00000-of-00001.parquet", {
        "img": pa.array([{"bytes": png(a), "path": None} for a in thumbs], type=IMAGE),
        "label": pa.array([3, 1, 4, 1], type=pa.int64()),
    })
    write(OUT / "cifar100" / "cifar100" / "test-00000-of-00001.parquet", {
        "img": pa.array([{"bytes": png(a), "path": None} for a in thumbs], type=IMAGE),
        "fine_label": pa.array([59, 26, 53, 58], type=pa.int64()),
        "coarse_label": pa.array([17, 13, 0, 18], type=pa.int64()),
    })
    # The planar bytes the Rust test expects from the CIFAR fixtures.
    np.stack([t.transpose(2, 0, 1) for t in thumbs]).tofile(OUT / "cifar_thumbnails_chw.u8")
    write_broken(idx(fm / "t10k-images-idx3-ubyte.gz")[:2], thumbs[:2])
    print("wrote", OUT)


def write_broken(digits, thumbs):
    """Two rows each, the second one bad (the first one good, so that the error must name
    the row)."""
    broken = OUT / "broken"
    grey = lambda arrays, labels: {
        "image": pa.array([{"bytes": png(a), "path": None} for a in arrays], type=IMAGE),
        "label": pa.array(labels, type=pa.int64()),
    }
    write(broken / "fashion_mnist_label10.parquet", grey(digits, [9, 10]))
    write(broken / "fashion_mnist_32x32.parquet", grey([digits[0], np.zeros((32, 32), np.uint8)], [9, 2]))
    rgb = lambda images, labels: {
        "img": pa.array([{"bytes": b, "path": None} for b in images], type=IMAGE),
        "label": pa.array(labels, type=pa.int64()),
    }
    big = np.asarray(Image.fromarray(thumbs[1]).resize((64, 64), Image.Resampling.NEAREST))
    write(broken / "cifar10_64x64.parquet", rgb([png(thumbs[0]), png(big)], [3, 1]))
    write(broken / "cifar10_label10.parquet", rgb([png(t) for t in thumbs], [3, 10]))
    write(broken / "cifar10_not_an_image.parquet", rgb([png(thumbs[0]), b"GIF89a, not a PNG"], [3, 1]))
    write(broken / "imagenet_label1000.parquet", {
        "image": pa.array([{"bytes": png(t), "path": None} for t in thumbs], type=IMAGE),
        "label": pa.array([281, 1000], type=pa.int64()),
    })


if __name__ == "__main__":
    main()
