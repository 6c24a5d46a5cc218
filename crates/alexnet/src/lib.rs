//! `convnets-alexnet`: AlexNet and ZFNet, the two networks that opened the ImageNet era, as
//! one configurable type.
//!
//! - [`AlexNetConfig::alexnet`]: torchvision's `alexnet` (`torchvision/models/alexnet.py`),
//!   which follows Krizhevsky's 2014 "One weird trick" single-GPU variant: 64-192-384-256-256
//!   filters, no LRN, adaptive average pooling to 6×6. 61,100,840 parameters.
//! - [`AlexNetConfig::alexnet_paper`]: Krizhevsky, Sutskever, Hinton, *ImageNet
//!   Classification with Deep Convolutional Neural Networks*, NIPS 2012: 96-256-384-384-256
//!   filters, two groups where the two GPUs did not communicate (conv2, conv4, conv5), local
//!   response normalisation after conv1 and conv2, overlapping pooling. 60,965,224
//!   parameters. [`AlexNetConfig::bvlc_alexnet`] is the same network with the LRN constants
//!   of Caffe's `bvlc_alexnet` (`k = 1`), whose ONNX export the parity test runs.
//! - [`AlexNetConfig::zfnet`]: Zeiler & Fergus, *Visualizing and Understanding Convolutional
//!   Networks*, ECCV 2014 (arXiv 2013), Fig. 3: 7×7/2 and 5×5/2 first layers, dense
//!   384-384-256 layers. [`AlexNetConfig::zfnet512`]: the ONNX model zoo's ZFNet-512, the
//!   layout its checkpoint needs (87,250,536 parameters).
//!
//! Module names are torchvision's `features.N` / `classifier.N`, with the indices derived
//! from the configuration; [`weights`] holds the key maps that load Caffe- and Caffe2-named
//! files (as exported to ONNX) onto them, the torchvision weights, and the papers' numbers.
//! `docs/alexnet.md` records the deviations and the measured parity.

pub mod config;
mod model;
pub mod weights;

pub use config::{AlexNetConfig, ConvStage, DropoutAt, InitScheme, Lrn, Pool};
pub use model::AlexNet;
