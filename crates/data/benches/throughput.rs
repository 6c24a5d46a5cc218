//! `cargo bench -p convnets-data`: images per second from JPEG files to normalised batches,
//! this crate's loader beside torchvision's Pillow pipeline on the same files with the same
//! number of workers.
//!
//! The files are 512 JPEGs at ImageNet-like sizes (shorter side 333-375, longer ~500,
//! quality 90, 4:2:0) cut from the fixture photographs and written under
//! `target/bench-jpegs`. The transform is `EvalTransform::torchvision(256, 224)`, batches of
//! 32. The torchvision side runs only when `PYTHON` names a Python with torch and
//! torchvision, e.g. the fixtures' venv (`PYTHON=../venv/bin/python`, see
//! `tests/parity/README.md`); unset, the table says so and shows convnets-data alone.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use convnets_core::spec::{EvalTransform, Interpolation};
use convnets_data::decode::decode;
use convnets_data::imagenet::ImageNetVal;
use convnets_data::loader::{Loader, LoaderConfig};
use convnets_data::resample::resize;
use convnets_data::{RgbImage, Transform};

const IMAGES: usize = 512;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes the benchmark JPEGs (once) into class folders, 8 classes of 64.
fn make_jpegs(dir: &Path) -> anyhow::Result<()> {
    if dir.join("done").is_file() {
        return Ok(());
    }
    let photos: Vec<RgbImage> = [
        "chelsea.jpg",
        "coffee.jpg",
        "rocket.jpg",
        "astronaut.jpg",
        "flower.jpg",
        "grace_hopper.jpg",
    ]
    .iter()
    .map(|n| {
        let p = manifest_dir().join("tests/fixtures/photos").join(n);
        Ok(decode(&std::fs::read(&p)?, n)?)
    })
    .collect::<anyhow::Result<_>>()?;
    let classes = [
        "n01440764",
        "n01443537",
        "n01484850",
        "n01491361",
        "n01494475",
        "n01496331",
        "n01498041",
        "n01514668",
    ];
    for i in 0..IMAGES {
        let src = &photos[i % photos.len()];
        // Landscape 500 x (333..375) or portrait, from an upscaled photograph, offset by i.
        let short = 333 + (i * 7) % 43;
        let (w, h) = if i % 4 == 3 {
            (short, 500)
        } else {
            (500, short)
        };
        let s = (w as f64 / src.width() as f64).max(h as f64 / src.height() as f64) * 1.1;
        let big = resize(
            src,
            (src.width() as f64 * s) as usize,
            (src.height() as f64 * s) as usize,
            Interpolation::Bilinear,
        );
        let x = (i * 13) % (big.width() - w + 1);
        let y = (i * 5) % (big.height() - h + 1);
        let img = big.crop(x as isize, y as isize, w, h);
        let jpeg = convnets_data::turbojpeg::encode_rgb(img.pixels(), w, h, 90)
            .map_err(anyhow::Error::msg)?;
        let path = dir
            .join(classes[i % classes.len()])
            .join(format!("img_{i:04}.JPEG"));
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(path, &*jpeg)?;
    }
    std::fs::write(dir.join("done"), b"")?;
    Ok(())
}

fn ours(dir: &Path, workers: usize) -> anyhow::Result<f64> {
    let val = ImageNetVal::class_folders(dir)?;
    let transform = Transform::new(EvalTransform::torchvision(256, 224))?;
    let config = LoaderConfig {
        batch_size: 32,
        workers,
        prefetch: 128,
        ..LoaderConfig::default()
    };
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0;
        for batch in Loader::new(val.items(), transform, config)? {
            n += batch?.images.dims()[0];
        }
        anyhow::ensure!(n == IMAGES, "loaded {n} images");
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Images per second of `benches/torchvision_throughput.py` run by `python`.
fn torchvision(python: &OsStr, dir: &Path, workers: usize) -> anyhow::Result<f64> {
    let script = manifest_dir().join("benches/torchvision_throughput.py");
    let command = format!("{} {}", python.to_string_lossy(), script.display());
    let out = Command::new(python)
        .arg(&script)
        .arg(dir)
        .arg(workers.to_string())
        .output()
        .with_context(|| format!("running `{command}`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "`{command}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| {
            format!(
                "`{command}` printed `{}`, not `images_per_s N`",
                text.trim()
            )
        })
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let target = manifest_dir().join("../../target/bench-jpegs");
    make_jpegs(&target)?;
    let dir = target.canonicalize()?;
    println!(
        "{IMAGES} JPEGs (~500x333..375, q90) -> resize 256 bilinear, crop 224, normalise, batches of 32"
    );
    println!(
        "{:>8} {:>14} {:>22} {:>7}",
        "workers", "convnets-data", "torchvision + Pillow", "ratio"
    );
    let max = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let python = std::env::var_os("PYTHON");
    for workers in 1..=max {
        let a = ours(&dir, workers)?;
        match &python {
            Some(python) => {
                let b = torchvision(python, &dir, workers)?;
                println!("{workers:>8} {a:>10.0} im/s {b:>18.0} im/s {:>6.2}x", a / b);
            }
            None => println!("{workers:>8} {a:>10.0} im/s {:>22}", "(PYTHON unset)"),
        }
    }
    Ok(())
}
