//! `convnets-inception`: GoogLeNet and the Inception line on candle.
//!
//! - **GoogLeNet** (Szegedy et al. 2014, "Going Deeper with Convolutions"), the ILSVRC 2014
//!   winner, in two forms: as torchvision has it ([`GoogLeNetConfig::googlenet`],
//!   `torchvision/models/googlenet.py`: BatchNorm, a 3×3 kernel where the paper has 5×5,
//!   auxiliary classifiers, `transform_input`), and as published and trained in Caffe
//!   ([`GoogLeNetConfig::paper`], `bvlc_googlenet`: biases, local response normalisation,
//!   the 5×5 branch).
//! - **Inception-v3** (Szegedy et al. 2016, "Rethinking the Inception Architecture"), as
//!   torchvision has it ([`InceptionV3Config`], `torchvision/models/inception.py`).
//! - **Inception-v4** and **Inception-ResNet-v2** (Szegedy et al. 2016, "Inception-v4,
//!   Inception-ResNet and the Impact of Residual Connections on Learning"), as timm has them
//!   ([`InceptionV4Config`], [`InceptionResNetV2Config`], `timm/models/inception_v4.py` and
//!   `inception_resnet_v2.py`).
//!
//! Each architecture has a config type with `const` presets that compiles to one
//! [`Network`] description; [`Inception::new`] builds any of them, with module names that
//! reproduce the reference state dicts key for key. The Inception blocks are tables of
//! [`Branch`]es over shared building blocks (the `BasicConv2d` unit is core's
//! `ConvNormAct`), so the variants differ only in their data.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use candle_core::{DType, Device};
//! use convnets_core::checkpoint::Checkpoint;
//! use convnets_inception::{Inception, weights};
//!
//! let spec = &weights::GOOGLENET_TV_IN1K;
//! let net = weights::network_for(spec)?; // transform_input set from spec.transform
//! let model = Checkpoint::open("googlenet-1378be20.pth")?
//!     .load(spec.key_map, DType::F32, &Device::Cpu, |vb| Inception::new(net, vb))?;
//! # let _ = model; Ok(()) }
//! ```
//!
//! Parity with the references (torchvision, timm, and the `bvlc_googlenet` ONNX graph run by
//! onnxruntime) is checked at full size by `tests/parity_inception.rs` at the workspace root;
//! `docs/inception.md` has the measured numbers.

mod auxiliary;
mod blocks;
mod googlenet;
mod inception_resnet_v2;
mod inception_v3;
mod inception_v4;
mod input;
mod network;
pub mod weights;

pub use auxiliary::{AuxKind, AuxPool, AuxSpec};
pub use blocks::{Branch, ConvNorm, Naming, Op, Style, WeightInit, avg_pool, conv, max_pool};
pub use googlenet::GoogLeNetConfig;
pub use inception_resnet_v2::InceptionResNetV2Config;
pub use inception_v3::InceptionV3Config;
pub use inception_v4::InceptionV4Config;
pub use input::TransformInput;
pub use network::{Block, Head, Inception, Lrn, Network, Stage};
