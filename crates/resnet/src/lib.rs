//! `convnets-resnet`: the residual networks of He, Zhang, Ren and Sun, "Deep Residual
//! Learning for Image Recognition" (CVPR 2016, arXiv:1512.03385), and their wide
//! (Zagoruyko & Komodakis 2016) and ResNeXt (Xie et al. 2017) variants, on candle.
//!
//! One [`ResNetConfig`] describes every member and [`ResNet::new`] is the one builder:
//!
//! - **ImageNet**: [`ResNetConfig::resnet18`] … [`ResNetConfig::resnet152`],
//!   [`ResNetConfig::wide_resnet50_2`], [`ResNetConfig::wide_resnet101_2`],
//!   [`ResNetConfig::resnext50_32x4d`], [`ResNetConfig::resnext101_32x8d`], exactly as
//!   torchvision builds them (`torchvision/models/resnet.py`): module paths are its
//!   state-dict keys (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`, `fc`), so
//!   torchvision and timm checkpoints load without renaming. Like torchvision this is
//!   **ResNet v1.5**: a downsampling bottleneck strides on its 3×3 convolution, not on the
//!   first 1×1 as in the paper ([`BottleneckStride`] restores the paper's placement).
//!   Shortcuts are projections where the shape changes (the paper's option B).
//! - **CIFAR-10** (§4.2): [`ResNetConfig::resnet20`] … [`ResNetConfig::resnet1202`]
//!   (6n + 2 layers, 16/32/64 filters, option-A shortcuts: identity, stride-2 subsampling,
//!   zero-padded channels, no parameters) and the plain nets of the same depths
//!   ([`ResNetConfig::plain20`] …) for the degradation experiment. Module names follow the
//!   common PyTorch CIFAR ResNet (`conv1`, `bn1`, `layer1.0.conv1` …) with the classifier
//!   named `fc`, as in the ImageNet nets (that implementation calls it `linear`).
//!
//! [`ResNet`] implements [`candle_nn::ModuleT`] and [`convnets_core::Classifier`]: training
//! and evaluation mode, `forward_features` (the last feature map) / `forward_head`, any
//! number of classes and input channels, and BatchNorm folding for inference. Built from a
//! `VarMap` it is initialised for training from scratch as torchvision does (Kaiming-normal
//! fan-out convolutions, BatchNorm 1/0, optionally zero-initialised last BatchNorm of each
//! residual branch).
//!
//! [`weights`] lists the pretrained checkpoints (torchvision's V1 and V2 recipes, timm's
//! ResNet-50 A1) with their eval transforms and published accuracy, and the paper's tables.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{ModuleT, VarMap};
//! use convnets_core::Classifier;
//! use convnets_resnet::{ResNet, ResNetConfig};
//!
//! # fn main() -> candle_core::Result<()> {
//! let varmap = VarMap::new();
//! let vb = convnets_core::init::var_builder(&varmap, 0, DType::F32, &Device::Cpu);
//! let model = ResNet::new(&ResNetConfig::resnet20(), vb)?;
//! let images = Tensor::zeros((2, 3, 32, 32), DType::F32, &Device::Cpu)?;
//! assert_eq!(model.forward_features(&images, false)?.dims(), &[2, 64, 8, 8]);
//! assert_eq!(model.forward_t(&images, false)?.dims(), &[2, 10]);
//! # Ok(())
//! # }
//! ```

mod config;
mod model;
pub mod weights;

pub use config::{BlockKind, BottleneckStride, ResNetConfig, Shortcut, Stem};
pub use model::ResNet;
