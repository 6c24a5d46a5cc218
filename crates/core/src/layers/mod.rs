//! Layers with PyTorch semantics. Each documents the `torch.nn` module it reproduces and
//! is checked against PyTorch's numbers in `crates/core/tests/ops.rs`.

mod conv;
mod dropout;
mod linear;
mod lrn;
mod norm;
mod pool;

pub use conv::{
    Activation, Conv2d, Conv2dConfig, ConvNormAct, KAIMING_NORMAL_FAN_OUT, TORCH_DEFAULT_INIT,
};
pub use dropout::Dropout;
pub use linear::Linear;
pub use lrn::LocalResponseNorm;
pub use norm::{BatchNorm2d, BatchNormConfig};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, global_avg_pool};
