//! `convnets-lenet`: LeNet-5, as LeCun, Bottou, Bengio and Haffner describe it in *Gradient-
//! Based Learning Applied to Document Recognition* (Proc. IEEE 86(11), 1998, §II.B and
//! Appendix A), and in the form it is usually built today.
//!
//! - [`LeNetConfig::classic`]: the paper's network, 60,000 trainable parameters. 32×32
//!   input; C1, 6 maps 5×5; S2, trainable subsampling (2×2 sum × coefficient + bias); C3,
//!   16 maps 5×5 wired by the paper's Table I ([`config::C3_TABLE`]); S4; C5, 120 maps 5×5;
//!   F6, 84 units; every layer up to F6 squashed by `1.7159·tanh(2a/3)`; an output layer of
//!   ten Euclidean RBF units whose fixed ±1 parameters are 7×12 bitmaps of the digits
//!   ([`prototypes`]). Per layer: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164.
//! - [`LeNetConfig::modern`]: ReLU, 2×2 max pooling, a full C3 and a linear 10-way head.
//!
//! Both are one [`LeNet5`] type built from the configuration, whose fields can also mix the
//! two (a classic network with a linear head, say). The reference implementations the
//! parity tests compare against are the PyTorch modules of `tests/parity/ref_lenet.py`,
//! written independently from the paper (C3 as sixteen convolutions over subsets of S2's
//! maps, sum pooling with `divisor_override=1`).
//!
//! For the classic model, `forward` returns the negated RBF penalties, so `argmax` is the
//! paper's decision; [`LeNet5::rbf_penalties`] exposes the penalties for the paper's MAP
//! training criterion. Inputs are normalised as the paper does with [`paper_input`].

pub mod config;
mod model;
pub mod prototypes;
pub mod weights;

pub use config::{C3Connections, InitScheme, LeNetConfig, Nonlinearity, Output, Subsampling};
pub use model::{
    BACKGROUND, FOREGROUND, LeNet5, SQUASH_AMPLITUDE, SQUASH_SLOPE, paper_input, rbf_prototypes,
};
