//! `convnets-core`: what every model family of the convnets zoo shares.
//!
//! - [`layers`]: the layers candle lacks or gets subtly different from PyTorch, each with
//!   `torch.nn` semantics to the last detail that changes a number: [`layers::MaxPool2d`]
//!   and [`layers::AvgPool2d`] with padding and `ceil_mode`, [`layers::AdaptiveAvgPool2d`],
//!   [`layers::LocalResponseNorm`], [`layers::BatchNorm2d`] (training and eval),
//!   [`layers::Conv2d`] with grouped and non-square kernels, the conv + BatchNorm + ReLU
//!   block [`layers::ConvNormAct`] with BatchNorm folding, [`layers::Linear`] and
//!   [`layers::Dropout`].
//! - [`Classifier`]: the interface every model implements on top of
//!   [`candle_nn::ModuleT`] (`forward_features`, `forward_head`, `num_classes`).
//! - [`spec`]: the data that describes a set of pretrained weights: where they come from,
//!   how they are named, the eval transform they need and the accuracy they reach.
//! - [`checkpoint`]: strict loading of safetensors and PyTorch `.pth` files through a
//!   declarative [`checkpoint::KeyMap`], reporting every missing, unexpected and mis-shaped
//!   tensor in one error.
//! - [`flops`]: the multiply-accumulates of a forward pass, counted from the model's own
//!   layers without computing them (torchvision's "GFLOPS" convention).
//! - [`init`] and [`random`]: seeded parameter initialisation and the dropout random stream,
//!   so that training is reproducible on CPU (candle's CPU generator cannot be seeded).
//! - [`runtime`]: the process settings the workspace's binaries use on the CPU (the
//!   allocator keeps a step's freed buffers; candle's elementwise pool stays out of rayon's
//!   way).
//! - [`procedural`] and [`parity`]: the weight generator and fixture reader behind the
//!   model parity tests (see `tests/parity/README.md` at the workspace root).
//!
//! The reference for every layer is PyTorch's own implementation
//! (`torch/nn/modules/{pooling,normalization,batchnorm,conv}.py` and the ATen kernels they
//! call); `crates/core/tests/ops_reference.py` computes the expected values the op tests
//! compare against.

pub mod checkpoint;
pub mod classifier;
pub mod device;
pub mod error;
pub mod flops;
pub mod init;
mod kernels;
pub mod layers;
mod legacy_pth;
pub mod parity;
pub mod procedural;
pub mod random;
pub mod runtime;
pub mod spec;

pub use classifier::{AuxLogits, Classifier, TrainOutput};
pub use error::{Error, Result};
