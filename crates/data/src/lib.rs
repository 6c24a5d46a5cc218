//! `convnets-data`: every byte between a file on disk and a normalised batch.
//!
//! - [`decode`]: JPEG (libjpeg-turbo, Pillow's decoder) and PNG to RGB, with Pillow's colour
//!   conversions, whatever the file is named.
//! - [`resample`] and [`transform`]: Pillow's antialiased resize reimplemented to the bit and
//!   the [`convnets_core::spec::EvalTransform`] of a set of weights executed with
//!   torchvision's semantics (resize, centre crop, normalise), plus ten-crop and dense views.
//! - [`imagenet`]: the 1000-class table and ImageNet-1k validation in the layouts users have
//!   (class folders, flat folder with the devkit's or Kaggle's labels, Hugging Face parquet).
//! - [`loader`]: decoding and transforming on worker threads with a bounded prefetch,
//!   batches in dataset order; unreadable images are errors naming them, or listed skips.
//! - [`mnist`], [`cifar`]: the small datasets from their original files (IDX, binary batches)
//!   or the Hugging Face Hub's parquet ([`parquet`], [`hub`]), every size and label checked.
//! - [`subset`]: `n` examples spread evenly over a set, for quick partial runs.
//!
//! The reference for every pixel is Pillow (`libImaging/Resample.c`, `Geometry.c`,
//! `Convert.c`, libjpeg-turbo) under torchvision's `transforms/functional.py` and
//! `transforms/_presets.py` and timm's `data/transforms_factory.py`;
//! `tests/pillow_reference.py` writes the fixtures the parity test compares against, and
//! `docs/data.md` records the measured parity and throughput.
pub mod cifar;
pub mod decode;
pub mod error;
pub mod hub;
pub mod image;
pub mod imagenet;
pub mod loader;
pub mod mnist;
pub mod parquet;
pub mod resample;
pub mod subset;
pub mod transform;
pub mod turbojpeg;

pub use error::{Error, Result};
pub use image::RgbImage;
pub use transform::{Transform, Views};
