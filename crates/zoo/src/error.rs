//! The error type of the zoo.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a name and a loaded model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading or checking a checkpoint failed (strict loading, checksums, formats).
    #[error(transparent)]
    Core(#[from] convnets_core::Error),

    /// A tensor operation failed while building or running a model.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// No architecture has this name.
    #[error("unknown architecture `{name}`; the zoo has: {known}")]
    UnknownArchitecture {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },

    /// No weights have this id.
    #[error("unknown weights `{id}`; the zoo has: {known}")]
    UnknownWeights {
        /// The id asked for.
        id: String,
        /// The ids there are.
        known: String,
    },

    /// Weights could not be found or fetched; the message says where they were looked for
    /// and how to provide them.
    #[error("{0}")]
    Fetch(String),

    /// Like [`Error::Fetch`], but the download could not connect at all (no network, a
    /// firewall, a mirror that is down): other downloads from this machine would most
    /// likely wait and fail the same way.
    #[error("{0}")]
    Unreachable(String),

    /// What was asked is not defined for this model or these weights.
    #[error("{0}")]
    Unsupported(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
