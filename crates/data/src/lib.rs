//! `convnets-data`: every byte between a file on disk and a normalised batch.
//!
//! - [`decode`]: JPEG (libjpeg-turbo, Pillow's decoder) and PNG to RGB, with Pillow's colour
//!   conversions, whatever the file is named.
//! - [`resample`] and [`transform`]: Pillow's antialiased resize reimplemented to the bit and
//!   the [`convnets_core::spec::EvalTransform`] of a set of weights executed with
//!   torchvision's semantics (resize, centre crop, normalise), plus ten-crop and dense views.
pub mod decode;
pub mod error;
pub mod hub;
pub mod image;
pub mod mnist;
pub mod parquet;
pub mod resample;
pub mod transform;

pub use error::{Error, Result};
pub use image::RgbImage;
pub use transform::{Transform, Views};
