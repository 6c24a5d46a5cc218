#!/usr/bin/env python3
"""Writes the preprocessing-parity fixtures of convnets-data: real photographs saved as the
JPEG variants an ImageNet download contains, and what Pillow + torchvision (+ timm) make of
them.

Run from anywhere with a Python that has torch, torchvision, timm, Pillow, numpy, pyarrow,
scikit-image, scikit-learn and matplotlib (the photographs ship with the last three):

    /work/venv/bin/python crates/data/tests/pillow_reference.py

Developers run it; CI only reads what it wrote. Output, under `tests/fixtures/`:

- `photos/`: the photographs. Each is a different JPEG flavour (4:2:0, 4:2:2, 4:4:4,
  progressive, greyscale, Adobe CMYK, EXIF-rotated) or a PNG named `.JPEG`, at
  ImageNet-like sizes (shorter side 300-512 px, quality 90).
- `imagenet/`: the same photographs as a miniature ImageNet-1k validation set in every
  layout `convnets-data` reads: class folders, the flat official folder with the devkit's
  ground-truth file and Kaggle's `LOC_val_solution.csv`, and a Hugging Face parquet shard.
- `pillow/manifest.json`: for every photograph, the sha256 of the RGB pixels Pillow decodes
  (`Image.open(f).convert("RGB")`, libjpeg-turbo underneath); for every (photograph,
  transform) case, the sha256 of each uint8 crop torchvision/timm produce before
  `ToTensor`, statistics and samples of the normalised float tensor, and for a subset the
  crop itself as a lossless PNG so a mismatch can be measured, not just detected.
"""

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import PIL
import PIL.features
import timm
import torch
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
PHOTOS = FIXTURES / "photos"
PILLOW = FIXTURES / "pillow"
IMAGENET = FIXTURES / "imagenet"


def source_images():
    """The photographs, as uint8 HWC arrays, by name."""
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_image

    images = {n: getattr(skimage.data, n)() for n in ("chelsea", "coffee", "rocket", "astronaut")}
    for n in ("china", "flower"):
        images[n] = load_sample_image(f"{n}.jpg")
    return images


def shrink(arr, longer):
    """Downscale so the longer side is `longer` (Lanczos; only used to make the fixtures)."""
    im = Image.fromarray(arr)
    w, h = im.size
    s = longer / max(w, h)
    return im.resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)


def write_photos():
    """Each photograph in one of the encodings an ImageNet download contains."""
    PHOTOS.mkdir(parents=True, exist_ok=True)
    src = source_images()
    made = {}

    # 451x300 4:2:0 baseline, with an EXIF orientation tag (6 = rotate 90°) that PIL ignores
    # unless asked (ImageOps.exif_transpose), as torchvision's loader does.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(src["chelsea"]).save(
        PHOTOS / "chelsea.jpg", quality=90, subsampling=2, exif=exif.tobytes()
    )
    made["chelsea.jpg"] = "skimage.data.chelsea(), 4:2:0, EXIF orientation 6"

    shrink(src["coffee"], 500).save(PHOTOS / "coffee.jpg", quality=90, subsampling=1)
    made["coffee.jpg"] = "skimage.data.coffee(), 500 px, 4:2:2"

    shrink(src["rocket"], 500).save(PHOTOS / "rocket.jpg", quality=90, progressive=True)
    made["rocket.jpg"] = "skimage.data.rocket(), 500 px, progressive 4:2:0"

    shrink(src["astronaut"], 400).save(PHOTOS / "astronaut.jpg", quality=90, subsampling=0)
    made["astronaut.jpg"] = "skimage.data.astronaut(), 400 px, 4:4:4"

    shrink(src["china"], 500).convert("L").save(PHOTOS / "china.jpg", quality=90)
    made["china.jpg"] = "sklearn china.jpg, 500 px, greyscale"

    shrink(src["flower"], 500).convert("CMYK").save(PHOTOS / "flower.jpg", quality=90)
    made["flower.jpg"] = "sklearn flower.jpg, 500 px, Adobe CMYK"

    hopper = Path(matplotlib_sample("grace_hopper.jpg"))
    shutil.copyfile(hopper, PHOTOS / "grace_hopper.jpg")
    made["grace_hopper.jpg"] = "matplotlib sample_data/grace_hopper.jpg, unchanged"

    # ImageNet's train set holds a PNG named .JPEG; so does this fixture.
    shrink(src["coffee"], 240).save(PHOTOS / "coffee_png.JPEG", format="PNG")
    made["coffee_png.JPEG"] = "skimage.data.coffee(), 240 px, PNG named .JPEG"
    return made


def matplotlib_sample(name):
    import matplotlib.cbook

    return matplotlib.cbook.get_sample_data(name, asfileobj=False)


def load_rgb(path):
    """torchvision's `pil_loader`."""
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def sha256(arr):
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.uint8).tobytes()).hexdigest()


# The transforms, as convnets_core::spec::EvalTransform describes them, and the reference
# implementation that defines each.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CAFFE_MEAN_BGR = [104.0, 117.0, 123.0]


def spec(resize, crop, interp, mean=IMAGENET_MEAN, std=IMAGENET_STD, pixel_range="unit", channels="rgb"):
    return {
        "resize": resize,
        "crop": [crop, crop],
        "interpolation": interp,
        "pixel_range": pixel_range,
        "channels": channels,
        "mean": mean,
        "std": std,
    }


TRANSFORMS = {
    "tv_256_224": spec({"shorter_side": 256}, 224, "bilinear"),
    "tv_232_224": spec({"shorter_side": 232}, 224, "bilinear"),
    "tv_342_299": spec({"shorter_side": 342}, 299, "bilinear"),
    "tv_nearest_256_224": spec({"shorter_side": 256}, 224, "nearest"),
    "timm_bicubic_0.875": spec({"crop_pct": 0.875}, 224, "bicubic"),
    "timm_bicubic_0.95": spec({"crop_pct": 0.95}, 224, "bicubic"),
    "caffe_256x256_227": spec(
        {"exact": [256, 256]}, 227, "bilinear", CAFFE_MEAN_BGR, [1.0, 1.0, 1.0], "byte", "bgr"
    ),
}
INTERP = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


def reference_pipeline(name):
    """(uint8 stage: PIL -> PIL crop, float stage: PIL -> CHW float tensor) per transform,
    both from the library that defines the transform."""
    t = TRANSFORMS[name]
    interp = INTERP[t["interpolation"]]
    crop = t["crop"][0]
    if "shorter_side" in t["resize"]:
        size = t["resize"]["shorter_side"]
        full = torchvision.transforms._presets.ImageClassification(
            crop_size=crop, resize_size=size, interpolation=interp
        )
        stage = torchvision.transforms.Compose(
            [torchvision.transforms.Resize(size, interpolation=interp),
             torchvision.transforms.CenterCrop(crop)]
        )
        return stage, full
    if "crop_pct" in t["resize"]:
        full = timm.data.transforms_factory.transforms_imagenet_eval(
            img_size=crop, crop_pct=t["resize"]["crop_pct"], interpolation=t["interpolation"]
        )
        # timm's eval pipeline is Resize, CenterCrop, ToTensor, Normalize: the first two
        # produce the uint8 crop.
        stage = torchvision.transforms.Compose(full.transforms[:2])
        return stage, full
    # Caffe: warp to 256x256 (Pillow bilinear here), centre crop, BGR, subtract the mean pixel.
    h, w = t["resize"]["exact"]

    def stage(img):
        return F.center_crop(img.resize((w, h), Image.Resampling.BILINEAR), [crop])

    def full(img):
        arr = np.asarray(stage(img), dtype=np.float32)[:, :, ::-1]
        arr = arr - np.asarray(t["mean"], dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    return stage, full


def float_summary(tensor):
    """Sum and samples of a CHW float tensor at fixed flat indices."""
    flat = tensor.contiguous().view(-1).numpy()
    idx = np.linspace(0, flat.size - 1, 24).astype(np.int64)
    return {
        "shape": list(tensor.shape),
        "sum": float(flat.astype(np.float64).sum()),
        "samples": [[int(i), float(flat[i])] for i in idx],
    }


def ten_crop_reference(img, resize, crop):
    resized = F.resize(img, [resize], interpolation=InterpolationMode.BILINEAR)
    return F.ten_crop(resized, [crop])


def main():
    torch.set_num_threads(1)
    shutil.rmtree(PILLOW, ignore_errors=True)
    PILLOW.mkdir(parents=True)
    made = write_photos()

    manifest = {
        "generator": "crates/data/tests/pillow_reference.py",
        "versions": {
            "pillow": PIL.__version__,
            "libjpeg_turbo": PIL.features.version("libjpeg_turbo"),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
        },
        "photos": [],
        "cases": [],
    }
    # Crops written as PNG (the rest are checked by hash): every photograph with
    # torchvision's default, plus each other transform on two photographs.
    png_cases = {("*", "tv_256_224")}
    for i, name in enumerate(sorted(TRANSFORMS)):
        if name != "tv_256_224":
            names = sorted(made)
            png_cases |= {(names[(2 * i) % len(names)], name), (names[(2 * i + 1) % len(names)], name)}

    for photo in sorted(made):
        path = PHOTOS / photo
        with Image.open(path) as raw:
            mode, fmt = raw.mode, raw.format
        img = load_rgb(path)
        arr = np.asarray(img)
        manifest["photos"].append({
            "file": photo,
            "source": made[photo],
            "format": fmt,
            "mode": mode,
            "width": img.width,
            "height": img.height,
            "decoded_sha256": sha256(arr),
            "decoded_mean": [float(arr[..., c].mean()) for c in range(3)],
        })
        for tname in sorted(TRANSFORMS):
            stage, full = reference_pipeline(tname)
            crop = np.asarray(stage(img))
            tensor = full(img)
            # The float pipeline must be exactly the uint8 crop scaled and normalised.
            t = TRANSFORMS[tname]
            scale = 1.0 if t["pixel_range"] == "byte" else 255.0
            chans = crop[:, :, ::-1] if t["channels"] == "bgr" else crop
            recomputed = (torch.from_numpy(np.ascontiguousarray(chans.transpose(2, 0, 1))).float() / scale
                          - torch.tensor(t["mean"]).view(3, 1, 1)) / torch.tensor(t["std"]).view(3, 1, 1)
            assert torch.equal(recomputed, tensor), (photo, tname)
            case = {
                "photo": photo,
                "name": tname,
                "kind": "center_crop",
                "transform": t,
                "crops": [crop_entry(crop, photo, tname, ("*", tname) in png_cases or (photo, tname) in png_cases)],
                "float": float_summary(tensor),
            }
            manifest["cases"].append(case)

        # The papers' protocols on top of torchvision's resize: 10-crop and dense (no crop).
        crops = ten_crop_reference(img, 235, 224)
        manifest["cases"].append({
            "photo": photo,
            "name": "ten_crop_235_224",
            "kind": "ten_crop",
            "transform": spec({"shorter_side": 235}, 224, "bilinear"),
            "crops": [crop_entry(np.asarray(c), photo, f"ten_crop_{k}", False) for k, c in enumerate(crops)],
        })
        dense = F.resize(img, [256], interpolation=InterpolationMode.BICUBIC)
        manifest["cases"].append({
            "photo": photo,
            "name": "dense_256_bicubic",
            "kind": "dense",
            "transform": spec({"shorter_side": 256}, 256, "bicubic"),
            "crops": [crop_entry(np.asarray(dense), photo, "dense", False)],
        })

    (PILLOW / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_imagenet_layouts(made)
    print(f"wrote {len(manifest['cases'])} cases for {len(manifest['photos'])} photographs")


def crop_entry(crop, photo, tname, write_png):
    entry = {"height": int(crop.shape[0]), "width": int(crop.shape[1]), "sha256": sha256(crop)}
    if write_png:
        stem = photo.split(".")[0]
        name = f"{stem}__{tname}.png"
        Image.fromarray(crop).save(PILLOW / name, optimize=True)
        entry["png"] = name
    return entry


# A miniature ImageNet validation set: photograph -> (ILSVRC2012 validation file name,
# synset). The synsets are the classes the photographs show; the file numbers are made up.
IMAGENET_FILES = [
    ("chelsea.jpg", "ILSVRC2012_val_00000001.JPEG", "n02123045"),     # tabby, tabby cat
    ("coffee.jpg", "ILSVRC2012_val_00000002.JPEG", "n07920052"),      # espresso
    ("grace_hopper.jpg", "ILSVRC2012_val_00000003.JPEG", "n03763968"),  # military uniform
    ("flower.jpg", "ILSVRC2012_val_00000004.JPEG", "n11939491"),      # daisy
    ("coffee_png.JPEG", "ILSVRC2012_val_00000005.JPEG", "n07930864"),  # cup
]


def write_imagenet_layouts(made):
    """The miniature validation set in the layouts users have. Only the parquet shard is
    written here (it needs pyarrow); the folder layouts are built by the Rust test from
    `photos/` and `imagenet/labels.tsv`, so no photograph is committed twice."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = HERE.parent / "assets" / "imagenet_classes.tsv"
    synsets = [line.split("\t")[1] for line in table.read_text().splitlines() if not line.startswith("#")]
    IMAGENET.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(IMAGENET / "labels.tsv", "w") as f:
        f.write("# photo\tvalidation file\tsynset\tindex (sorted-synset order)\n")
        for photo, val_name, wnid in IMAGENET_FILES:
            index = synsets.index(wnid)
            f.write(f"{photo}\t{val_name}\t{wnid}\t{index}\n")
            rows.append(((PHOTOS / photo).read_bytes(), val_name, index))

    # Hugging Face `imagenet-1k` shards: `image` is a struct {bytes, path}, `label` an int64,
    # written by `datasets` through pyarrow (snappy, dictionary encoding where it pays, small
    # row groups here so the reader crosses a row-group boundary).
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({
        "image": pa.array([{"bytes": b, "path": p} for b, p, _ in rows], type=image_type),
        "label": pa.array([label for _, _, label in rows], type=pa.int64()),
    })
    pq.write_table(table, IMAGENET / "validation-00000-of-00001.parquet", row_group_size=2,
                   compression="snappy")


if __name__ == "__main__":
    main()
