//! `convnets-train`: training for any [`convnets_core::Classifier`]; it knows no model
//! family.
//!
//! - [`optim`]: SGD (momentum, dampening, Nesterov, weight decay) and AdamW with PyTorch's
//!   semantics (`torch/optim/sgd.py`, `adamw.py`), per-parameter weight decay.
//! - [`schedule`]: step/multi-step (He et al. 2015's CIFAR recipe), cosine with warm-up, and
//!   LeNet-5's decreasing schedule (LeCun et al. 1998 §III-C).
//! - [`loss`]: cross-entropy with label smoothing, auxiliary heads weighted through
//!   [`convnets_core::TrainOutput`], and LeNet-5's RBF criterion (eq. 9).
//! - [`augment`]: random crop with padding, horizontal flip, random-resized crop, LeCun's
//!   affine distortions.
//! - [`trainer`]: the loop, with exact resume, atomic checkpoints ([`state`]), Ctrl-C,
//!   non-finite-loss detection, a progress bar, and per-epoch metrics ([`metrics`]) to
//!   JSONL, CSV and SVG curves.
//!
//! Determinism: every random choice is a function of the seed and the step ([`rng`]), and
//! parameters are initialised by [`convnets_core::init::var_builder`], so the same seed gives
//! the same run on CPU, and a resumed run the same bits as an uninterrupted one.

pub mod augment;
pub mod dataset;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod rng;
pub mod schedule;
pub mod state;
pub mod trainer;

use std::path::PathBuf;

pub use dataset::{Dataset, InMemory, Normalize};
pub use loss::Criterion;
pub use optim::OptimizerConfig;
pub use schedule::Schedule;
pub use trainer::{Outcome, RunOptions, StopReason, TrainConfig, evaluate, train};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Loading a checkpoint or weights failed.
    #[error(transparent)]
    Core(#[from] convnets_core::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A checkpoint is malformed or does not fit.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An impossible configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The loss became NaN or infinite; nothing was updated with it.
    #[error(
        "the loss is {loss} at step {step}; training stopped before updating the weights{}",
        checkpoint.as_ref().map_or(String::new(), |p| format!(", the last good checkpoint is {}", p.display()))
    )]
    NonFinite {
        /// The step whose loss was not finite.
        step: u64,
        /// The loss.
        loss: f64,
        /// The last checkpoint written, untouched.
        checkpoint: Option<PathBuf>,
    },
    /// Anything else.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
