//! `convnets`: the model zoo of the classic CNN image classifiers, from LeNet-5 through
//! AlexNet, ZFNet, VGG and GoogLeNet/Inception to ResNet, on candle.
//!
//! This is the facade over the family crates. It re-exports them ([`lenet`], [`alexnet`],
//! [`vgg`], [`inception`], [`resnet`], and [`core`] and [`data`] beneath them) and adds what
//! needs all of them at once:
//!
//! - [`registry`]: every architecture by name ([`architecture`], [`ARCHITECTURES`]), every set
//!   of pretrained weights by id ([`weight`], [`weights`]) and every published result
//!   ([`paper_results`]), grouped in the [`Family`]s `cargo xtask reproduce` takes;
//! - [`Model`]: any architecture as one [`Classifier`](convnets_core::Classifier), built with
//!   any number of classes ([`build`]) or loaded strictly from pretrained weights through the
//!   family's key map ([`Model::pretrained`]);
//! - [`Fetcher`]: weights from the Hugging Face Hub (with the `hub` feature, on by default)
//!   or torchvision's URLs, cached where `huggingface_hub` and `torch.hub` cache them, checked
//!   against their sha256 before use;
//! - [`Structure`]: parameters and multiply-accumulates of any model, counted from its layers;
//! - [`manifest`]: the weights manifest (`weights/manifest.toml`) generated from the tables;
//! - [`inspect`]: which architecture a checkpoint file fits.
//!
//! The `convnets` binary (`classify`, `models`, `inspect`) is the command line over these;
//! it and what it alone needs ([`cli`]) come with the `cli` feature, on by default.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use candle_core::{DType, Device};
//! use convnets::{Fetcher, Model};
//!
//! let spec = convnets::weight("resnet50.tv_in1k")?;
//! let file = Fetcher::from_env().fetch(spec)?; // downloaded once, sha256-checked every time
//! let model = Model::pretrained(spec, &file, DType::F32, &Device::Cpu)?;
//! # let _ = model; Ok(()) }
//! ```

#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod fetch;
pub mod inspect;
pub mod manifest;
mod model;
pub mod registry;
mod structure;

pub use convnets_alexnet as alexnet;
pub use convnets_core as core;
pub use convnets_data as data;
pub use convnets_inception as inception;
pub use convnets_lenet as lenet;
pub use convnets_resnet as resnet;
pub use convnets_vgg as vgg;

pub use error::{Error, Result};
pub use fetch::{Check, Fetched, Fetcher};
pub use model::{Model, build};
pub use registry::{
    ARCHITECTURES, Architecture, Config, Dataset, Family, architecture, paper_results, weight,
    weights,
};
pub use structure::{Shapes, Structure};
