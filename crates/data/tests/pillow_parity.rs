//! Preprocessing parity with Pillow + torchvision (+ timm) on real photographs.
//!
//! `tests/pillow_reference.py` wrote the photographs (every JPEG flavour ImageNet holds,
//! and a PNG named `.JPEG`) and what the reference libraries make of them; this test
//! decodes and transforms the same files and demands:
//! - the decoded RGB pixels are Pillow's (libjpeg-turbo's) exactly;
//! - every uint8 crop (centre crop for seven transforms, ten-crop, dense resize) is
//!   torchvision's exactly, and where the crop is stored as PNG the largest difference is
//!   measured and reported (the tolerance is one level);
//! - the normalised floats are torch's (sum and samples, to float precision).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use convnets_core::spec::{ChannelOrder, EvalTransform, Interpolation, PixelRange, Resize};
use convnets_data::{RgbImage, Transform, Views, decode::decode};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn load(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    Ok(decode(&bytes, &path.display().to_string())?)
}

fn f32s(v: &Value) -> Result<[f32; 3]> {
    let a = v.as_array().context("expected an array")?;
    Ok([0, 1, 2].map(|i| a[i].as_f64().unwrap_or(f64::NAN) as f32))
}

fn spec(t: &Value) -> Result<EvalTransform> {
    let r = &t["resize"];
    let resize = if let Some(s) = r["shorter_side"].as_u64() {
        Resize::ShorterSide(s as usize)
    } else if let Some(p) = r["crop_pct"].as_f64() {
        Resize::CropPct(p)
    } else if let Some(e) = r["exact"].as_array() {
        Resize::Exact(
            e[0].as_u64().context("exact h")? as usize,
            e[1].as_u64().context("exact w")? as usize,
        )
    } else {
        bail!("unknown resize {r}")
    };
    let crop = t["crop"].as_array().context("crop")?;
    Ok(EvalTransform {
        resize,
        crop: (
            crop[0].as_u64().context("crop h")? as usize,
            crop[1].as_u64().context("crop w")? as usize,
        ),
        interpolation: match t["interpolation"].as_str() {
            Some("bilinear") => Interpolation::Bilinear,
            Some("bicubic") => Interpolation::Bicubic,
            Some("nearest") => Interpolation::Nearest,
            other => bail!("interpolation {other:?}"),
        },
        pixel_range: match t["pixel_range"].as_str() {
            Some("unit") => PixelRange::Unit,
            _ => PixelRange::Byte,
        },
        channels: match t["channels"].as_str() {
            Some("rgb") => ChannelOrder::Rgb,
            _ => ChannelOrder::Bgr,
        },
        mean: f32s(&t["mean"])?,
        std: f32s(&t["std"])?,
    })
}

#[test]
fn decoding_and_transforms_match_pillow_and_torchvision() -> Result<()> {
    let dir = fixtures();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pillow/manifest.json"))?)?;
    let mut failures = Vec::new();

    let mut images = std::collections::HashMap::new();
    for photo in manifest["photos"].as_array().context("photos")? {
        let file = photo["file"].as_str().context("file")?;
        let img = load(&dir.join("photos").join(file))?;
        let size = (img.width() as u64, img.height() as u64);
        let expected = (
            photo["width"].as_u64().unwrap_or(0),
            photo["height"].as_u64().unwrap_or(0),
        );
        if size != expected {
            failures.push(format!("{file}: decoded {size:?}, Pillow {expected:?}"));
        } else if sha256(img.pixels()) != photo["decoded_sha256"].as_str().unwrap_or("") {
            failures.push(format!("{file}: decoded pixels differ from Pillow's"));
        }
        images.insert(file.to_string(), img);
    }

    let (mut crops, mut exact, mut worst) = (0, 0, 0u8);
    for case in manifest["cases"].as_array().context("cases")? {
        let photo = case["photo"].as_str().context("photo")?;
        let name = format!("{photo} {}", case["name"].as_str().unwrap_or("?"));
        let transform = Transform::new(spec(&case["transform"])?)?;
        let img = &images[photo];
        let views = match case["kind"].as_str() {
            Some("center_crop") => Views::CenterCrop,
            Some("ten_crop") => Views::TenCrop,
            Some("dense") => Views::Full,
            other => bail!("kind {other:?}"),
        };
        let ours = transform.views(img, views);
        let refs = case["crops"].as_array().context("crops")?;
        assert_eq!(ours.len(), refs.len(), "{name}: number of views");
        for (k, (crop, r)) in ours.iter().zip(refs).enumerate() {
            crops += 1;
            let shape = (crop.height() as u64, crop.width() as u64);
            let want = (
                r["height"].as_u64().unwrap_or(0),
                r["width"].as_u64().unwrap_or(0),
            );
            if shape != want {
                failures.push(format!(
                    "{name} view {k}: shape {shape:?}, reference {want:?}"
                ));
                continue;
            }
            if let Some(png) = r["png"].as_str() {
                let reference = load(&dir.join("pillow").join(png))?;
                let max = crop
                    .pixels()
                    .iter()
                    .zip(reference.pixels())
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap_or(0);
                worst = worst.max(max);
                if max > 1 {
                    failures.push(format!("{name}: max |difference| {max} levels > 1"));
                }
            }
            if sha256(crop.pixels()) == r["sha256"].as_str().unwrap_or("") {
                exact += 1;
            } else {
                failures.push(format!("{name} view {k}: crop differs from the reference"));
            }
        }
        if let Some(float) = case.get("float") {
            let values = transform.apply(img);
            let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
            let want = float["sum"].as_f64().unwrap_or(f64::NAN);
            if (sum - want).abs() > 1e-6 * want.abs().max(1.0) {
                failures.push(format!("{name}: float sum {sum} != {want}"));
            }
            for s in float["samples"].as_array().context("samples")? {
                let (i, v) = (
                    s[0].as_u64().unwrap_or(0) as usize,
                    s[1].as_f64().unwrap_or(0.0),
                );
                if values[i] != v as f32 {
                    failures.push(format!("{name}: float[{i}] {} != {v}", values[i]));
                }
            }
        }
    }
    eprintln!(
        "pillow parity: {} photographs, {crops} crops, {exact} bit-exact, largest difference \
         on stored crops {worst} levels",
        images.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn libjpeg_warnings_decode_as_pillow_and_truncation_is_an_error() -> Result<()> {
    let path = fixtures().join("photos/chelsea.jpg");
    let jpeg = std::fs::read(&path)?;
    let clean = decode(&jpeg, "chelsea.jpg")?;
    // Garbage before the end-of-image marker: libjpeg warns "Corrupt JPEG data: 4
    // extraneous bytes before marker 0xd9" and Pillow decodes the image all the same.
    assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
    let mut noisy = jpeg[..jpeg.len() - 2].to_vec();
    noisy.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 0xFF, 0xD9]);
    assert_eq!(decode(&noisy, "noisy.jpg")?, clean);
    // A file cut short is an error naming it, as Pillow's "image file is truncated".
    let e = decode(&jpeg[..jpeg.len() / 2], "cut.jpg")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cut.jpg: cannot decode image"), "{e}");
    Ok(())
}
