//! The miniature ImageNet validation set of `tests/fixtures/imagenet` (real photographs
//! filed under their synsets) in every layout: each gives the same labels and the same
//! tensors, and every broken file is named.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use common::{fixtures, scratch, write};
use convnets_core::spec::EvalTransform;
use convnets_data::decode::decode;
use convnets_data::imagenet::{CLASSES, DevkitIds, ImageNetVal};
use convnets_data::loader::{Loader, LoaderConfig};
use convnets_data::{Transform, Views};

/// `(photo, validation file name, synset, index)` rows of `labels.tsv`.
fn labels() -> Result<Vec<(String, String, String, u32)>> {
    let text = std::fs::read_to_string(fixtures().join("imagenet/labels.tsv"))?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<_> = l.split('\t').collect();
            Ok((c[0].into(), c[1].into(), c[2].into(), c[3].parse()?))
        })
        .collect()
}

fn photo(name: &str) -> Result<Vec<u8>> {
    Ok(std::fs::read(fixtures().join("photos").join(name))?)
}

/// A made-up devkit numbering (a permutation of the sorted order), as a `map_clsloc.txt`.
fn devkit_id(index: usize) -> usize {
    index * 7 % 1000 + 1
}

fn write_devkit_map(path: &Path) {
    let text: String = CLASSES
        .all()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}\n",
                c.synset,
                devkit_id(c.index),
                c.name.replace(' ', "_")
            )
        })
        .collect();
    write(path, text.as_bytes());
}

/// Builds the folder layouts from the committed photographs.
fn build(root: &Path) -> Result<()> {
    let rows = labels()?;
    for (photo_name, val, synset, _) in &rows {
        let bytes = photo(photo_name)?;
        write(&root.join("folders").join(synset).join(val), &bytes);
        write(&root.join("flat").join(val), &bytes);
        write(&root.join(KAGGLE_VAL).join(val), &bytes);
    }
    let gt: String = rows
        .iter()
        .map(|r| format!("{}\n", devkit_id(r.3 as usize)))
        .collect();
    write(
        &root.join("devkit/ILSVRC2012_validation_ground_truth.txt"),
        gt.as_bytes(),
    );
    write_devkit_map(&root.join("devkit/map_clsloc.txt"));
    // The same ground truth with the real ILSVRC2012 ids.
    let real = DevkitIds::ilsvrc2012();
    let real_id = |index: u32| (1..=1000).find(|&id| real.index(id) == Some(index as usize));
    let gt: String = rows
        .iter()
        .map(|r| format!("{}\n", real_id(r.3).unwrap_or(0)))
        .collect();
    write(
        &root.join("devkit/ground_truth_ilsvrc2012.txt"),
        gt.as_bytes(),
    );
    // Kaggle's CSV: not in file order, boxes after each synset.
    let mut csv = String::from("ImageId,PredictionString\n");
    for (_, val, synset, _) in rows.iter().rev() {
        let id = val.trim_end_matches(".JPEG");
        csv += &format!("{id},{synset} 10 20 110 220 {synset} 5 5 50 50 \n");
    }
    write(&root.join("LOC_val_solution.csv"), csv.as_bytes());
    // The Kaggle download as users have it: the CSV at its top, beside `ILSVRC/`.
    write(&root.join("kaggle/LOC_val_solution.csv"), csv.as_bytes());
    Ok(())
}

/// The validation folder of the Kaggle download (`imagenet-object-localization-challenge`)
/// under `build`'s root.
const KAGGLE_VAL: &str = "kaggle/ILSVRC/Data/CLS-LOC/val";

/// Every image of a layout through the parallel loader: validation file name -> (label,
/// floats).
fn load_all(
    val: &ImageNetVal,
    names: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, (u32, Vec<f32>)>> {
    let transform = Transform::new(EvalTransform::torchvision(256, 224))?;
    let config = LoaderConfig {
        batch_size: 2,
        workers: 2,
        prefetch: 3,
        ..LoaderConfig::default()
    };
    let mut out = BTreeMap::new();
    for batch in Loader::new(val.items(), transform, config)? {
        let batch = batch?;
        let labels = batch.labels.to_vec1::<u32>()?;
        let images = batch.images.flatten_from(1)?.to_vec2::<f32>()?;
        for ((name, label), img) in batch.names.iter().zip(labels).zip(images) {
            let key = names.get(name).cloned().unwrap_or_else(|| {
                Path::new(name)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            out.insert(key, (label, img));
        }
    }
    Ok(out)
}

#[test]
fn every_layout_gives_the_same_batches() -> Result<()> {
    let root = scratch("imagenet-layouts");
    build(&root)?;
    let rows = labels()?;
    let shard = fixtures().join("imagenet/validation-00000-of-00001.parquet");
    // Parquet rows are named "<shard> row <n>", written in labels.tsv order.
    let names: BTreeMap<String, String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("{} row {i}", shard.display()), r.1.clone()))
        .collect();

    let ids = DevkitIds::from_file(&root.join("devkit/map_clsloc.txt"))?;
    let layouts = [
        (
            "class folders",
            ImageNetVal::class_folders(&root.join("folders"))?,
        ),
        (
            "devkit",
            ImageNetVal::devkit(
                &root.join("flat"),
                &root.join("devkit/ILSVRC2012_validation_ground_truth.txt"),
                &ids,
            )?,
        ),
        (
            "devkit (ILSVRC2012 ids)",
            ImageNetVal::devkit(
                &root.join("flat"),
                &root.join("devkit/ground_truth_ilsvrc2012.txt"),
                &DevkitIds::ilsvrc2012(),
            )?,
        ),
        (
            "kaggle",
            ImageNetVal::kaggle(&root.join("flat"), &root.join("LOC_val_solution.csv"))?,
        ),
        (
            "parquet",
            ImageNetVal::parquet(&[fixtures().join("imagenet")])?,
        ),
        (
            "detected folders",
            ImageNetVal::detect(&root.join("folders"))?,
        ),
        ("detected kaggle", ImageNetVal::detect(&root.join("flat"))?),
        (
            "detected kaggle download",
            ImageNetVal::detect(&root.join(KAGGLE_VAL))?,
        ),
    ];
    let expected: BTreeMap<String, u32> = rows.iter().map(|r| (r.1.clone(), r.3)).collect();
    let reference = load_all(&layouts[0].1, &names)?;
    assert_eq!(reference.len(), rows.len());
    for (layout, val) in &layouts {
        assert_eq!(val.len(), rows.len(), "{layout}");
        let got = load_all(val, &names)?;
        let got_labels: BTreeMap<String, u32> = got.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        assert_eq!(got_labels, expected, "{layout}: labels");
        for (k, v) in &got {
            assert!(v.1 == reference[k].1, "{layout}: {k}: tensor differs");
        }
    }
    // The tensors are the transform of the photographs, and the labels their synsets.
    let transform = Transform::new(EvalTransform::torchvision(256, 224))?;
    for (photo_name, val, synset, index) in &rows {
        let img = decode(&photo(photo_name)?, photo_name)?;
        assert!(reference[val].1 == transform.apply(&img), "{val}");
        assert_eq!(CLASSES.index_of(synset), Some(*index as usize));
    }
    Ok(())
}

#[test]
fn ten_crops_batch_as_views() -> Result<()> {
    let transform = Transform::new(EvalTransform::torchvision(256, 224))?;
    let val = ImageNetVal::parquet(&[fixtures().join("imagenet")])?;
    let config = LoaderConfig {
        batch_size: 4,
        workers: 2,
        prefetch: 4,
        views: Views::TenCrop,
        ..LoaderConfig::default()
    };
    let batches: Vec<_> = Loader::new(val.items(), transform, config)?.collect::<Result<_, _>>()?;
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].images.dims(), &[4, 10, 3, 224, 224]);
    assert_eq!(batches[1].images.dims(), &[1, 10, 3, 224, 224]);
    // Dense views of photographs of different shapes cannot share a batch...
    let config = LoaderConfig {
        batch_size: 2,
        workers: 1,
        prefetch: 2,
        views: Views::Full,
        ..LoaderConfig::default()
    };
    let e = Loader::new(val.items(), transform, config)?
        .find_map(|b| b.err())
        .context("an error")?;
    assert!(e.to_string().contains("need batch_size 1"), "{e}");
    // ...but can one at a time.
    let config = LoaderConfig {
        batch_size: 1,
        ..config
    };
    let shapes: Vec<Vec<usize>> = Loader::new(val.items(), transform, config)?
        .map(|b| b.map(|b| b.images.dims().to_vec()))
        .collect::<Result<_, _>>()?;
    assert_eq!(shapes[0], [1, 3, 256, 384]); // chelsea, 451x300 -> 384x256
    Ok(())
}

fn first_error(val: &ImageNetVal, skip: bool) -> Result<(Option<String>, Vec<String>, usize)> {
    let transform = Transform::new(EvalTransform::torchvision(256, 224))?;
    let config = LoaderConfig {
        batch_size: 2,
        workers: 2,
        prefetch: 4,
        skip_unreadable: skip,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::new(val.items(), transform, config)?;
    let mut error = None;
    for b in loader.by_ref() {
        if let Err(e) = b {
            error = Some(e.to_string());
        }
    }
    let skipped = loader
        .skipped()
        .iter()
        .map(|s| format!("{}: {}", s.name, s.reason))
        .collect();
    Ok((error, skipped, loader.loaded()))
}

#[test]
fn unreadable_images_are_named_or_listed() -> Result<()> {
    let root = scratch("imagenet-broken");
    build(&root)?;
    let folders = root.join("folders");
    let broken: PathBuf = folders.join("n02123045/ILSVRC2012_val_00000006.JPEG");
    let jpeg = photo("chelsea.jpg")?;
    write(&broken, &jpeg[..jpeg.len() / 3]);
    write(&folders.join("n07920052/ILSVRC2012_val_00000007.JPEG"), b"");
    let val = ImageNetVal::class_folders(&folders)?;
    assert_eq!(val.len(), 7);

    let (error, skipped, loaded) = first_error(&val, false)?;
    let error = error.context("an error")?;
    assert!(
        error.contains(&broken.display().to_string()) && error.contains("cannot decode"),
        "{error}"
    );
    assert!(skipped.is_empty() && loaded < 7);

    let (error, skipped, loaded) = first_error(&val, true)?;
    assert_eq!(error, None);
    assert_eq!(loaded, 5);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].starts_with(&broken.display().to_string()),
        "{skipped:?}"
    );
    assert!(
        skipped[1].contains("ILSVRC2012_val_00000007.JPEG") && skipped[1].contains("empty file")
    );

    // A folder that is no synset.
    std::fs::create_dir_all(folders.join("n99999999"))?;
    let e = ImageNetVal::class_folders(&folders)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("n99999999") && e.contains("not an ImageNet-1k synset"),
        "{e}"
    );
    Ok(())
}

#[test]
fn broken_label_files_are_named() -> Result<()> {
    let root = scratch("imagenet-labels");
    build(&root)?;
    let flat = root.join("flat");
    let ids = DevkitIds::from_file(&root.join("devkit/map_clsloc.txt"))?;

    let gt = root.join("gt.txt");
    write(&gt, b"8\n1001\n");
    let e = ImageNetVal::devkit(&flat, &gt, &ids)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gt.txt") && e.contains("line 2: `1001`"), "{e}");
    // Ground truth for a file that is not there: the loader names it.
    write(&gt, b"8\n8\n8\n8\n8\n8\n");
    let val = ImageNetVal::devkit(&flat, &gt, &ids)?;
    let (error, _, _) = first_error(&val, false)?;
    assert!(
        error
            .context("error")?
            .contains("ILSVRC2012_val_00000006.JPEG")
    );

    let map = root.join("map.txt");
    write(&map, b"n01440764 1 tench\n");
    let e = DevkitIds::from_file(&map).unwrap_err().to_string();
    assert!(
        e.contains("map.txt") && e.contains("devkit id 2 is missing"),
        "{e}"
    );
    write(&map, b"n00000001 1 nothing\n");
    let e = DevkitIds::from_file(&map).unwrap_err().to_string();
    assert!(
        e.contains("line 1: `n00000001` is not an ImageNet-1k synset"),
        "{e}"
    );

    let csv = root.join("bad.csv");
    write(&csv, b"id,label\n");
    let e = ImageNetVal::kaggle(&flat, &csv).unwrap_err().to_string();
    assert!(
        e.contains("bad.csv") && e.contains("ImageId,PredictionString"),
        "{e}"
    );
    write(
        &csv,
        b"ImageId,PredictionString\nILSVRC2012_val_00000001,tench 1 2 3 4\n",
    );
    let e = ImageNetVal::kaggle(&flat, &csv).unwrap_err().to_string();
    assert!(e.contains("line 2: `tench`"), "{e}");

    // A truncated shard, and a shard without the columns of imagenet-1k.
    let shard = std::fs::read(fixtures().join("imagenet/validation-00000-of-00001.parquet"))?;
    let cut = root.join("validation-00000-of-00002.parquet");
    write(&cut, &shard[..shard.len() / 2]);
    let e = ImageNetVal::parquet(std::slice::from_ref(&cut))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("validation-00000-of-00002.parquet") && e.contains("not a readable parquet"),
        "{e}"
    );
    let cifar = fixtures().join("hub/cifar10/plain_text/test-00000-of-00001.parquet");
    let e = ImageNetVal::parquet(&[cifar]).unwrap_err().to_string();
    assert!(e.contains("no column `image`"), "{e}");
    // A label outside the 1000 classes: the loader names the shard and the row, and does not
    // skip it as an unreadable image.
    let shard = fixtures().join("hub/broken/imagenet_label1000.parquet");
    let val = ImageNetVal::parquet(std::slice::from_ref(&shard))?;
    for skip in [false, true] {
        let (error, _, loaded) = first_error(&val, skip)?;
        let error = error.context("an error")?;
        assert!(
            error.contains(&shard.display().to_string())
                && error.contains("row 1: label 1000 not in 0..1000"),
            "{error}"
        );
        assert_eq!(loaded, 0);
    }
    let e = ImageNetVal::detect(&scratch("imagenet-empty"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no synset folders"), "{e}");
    Ok(())
}

/// `(name, label)` of every item, without decoding.
fn listing(val: &ImageNetVal) -> Result<Vec<(String, u32)>> {
    val.items()
        .map(|item| {
            let item = item?;
            item.bytes?;
            Ok((item.name, item.label))
        })
        .collect()
}

#[test]
fn an_evenly_spaced_subset_spans_the_set_in_every_layout() -> Result<()> {
    let root = scratch("imagenet-subset");
    build(&root)?;
    let layouts = [
        ImageNetVal::class_folders(&root.join("folders"))?,
        ImageNetVal::parquet(&[fixtures().join("imagenet")])?,
    ];
    for val in &layouts {
        let all = listing(val)?;
        assert_eq!(all.len(), 5);
        // ⌊k · 5 / 3⌋ for k = 0, 1, 2.
        let three = val.evenly_spaced(3);
        assert_eq!(three.len(), 3);
        assert_eq!(listing(&three)?, [0, 1, 3].map(|i| all[i].clone()));
        // A subset of a subset: positions 0 and 1 of those three.
        assert_eq!(
            listing(&three.evenly_spaced(2))?,
            [0, 1].map(|i| all[i].clone())
        );
        assert_eq!(listing(&val.evenly_spaced(9))?, all);
    }
    Ok(())
}
