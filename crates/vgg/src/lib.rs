//! `convnets-vgg`: the VGG networks of Simonyan & Zisserman, *Very Deep Convolutional
//! Networks for Large-Scale Image Recognition*, ICLR 2015.
//!
//! - All six columns of the paper's Table 1 — A, A-LRN, B, C (with its 1×1 convolutions), D,
//!   E — as data ([`config`]), each with or without BatchNorm, built by one [`Vgg::new`].
//! - torchvision's layout and names (`torchvision/models/vgg.py`): `features.N` derived from
//!   the column, `avgpool`, `classifier.{0,3,6}`; A, B, D, E with and without BatchNorm are
//!   torchvision's `vgg11` … `vgg19_bn`. [`weights::TIMM`] loads timm's `vgg*.tv_in1k` files,
//!   which store fc6 and fc7 as convolutions (`timm/models/vgg.py`).
//! - The paper's dense evaluation ([`Vgg::forward_dense`]): the fully connected layers as
//!   convolutions over a whole image of any size, class scores averaged spatially.
//! - [`weights::WEIGHTS`]: the eight torchvision weights with their published accuracy;
//!   [`weights::PAPER_RESULTS`]: the paper's Tables 3, 4 and 5 with their protocols.
//!
//! `docs/vgg.md` records the measured parity and the deviations.

pub mod config;
mod model;
pub mod weights;

pub use config::{VggConfig, VggLayer};
pub use model::Vgg;
