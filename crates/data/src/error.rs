//! The error type of `convnets-data`.
//!
//! Every error that comes from a file names it (for a row of a parquet shard: the shard and
//! the row), so that a user with a broken dataset knows which file to replace.

use std::path::{Path, PathBuf};

/// Result alias used throughout `convnets-data`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a file on disk and a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or listing a folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// An image cannot be decoded: not a JPEG or PNG, truncated, corrupt.
    #[error("{origin}: cannot decode image: {reason}")]
    Decode {
        /// The file, or the shard and row it comes from.
        origin: String,
        /// What the decoder said.
        reason: String,
    },

    /// A dataset file has the wrong format: bad magic number, counts or sizes that do not
    /// add up, a missing column, a label out of range.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A dataset is not where it was looked for.
    #[error("{0}")]
    NotFound(String),

    /// A transform or loader configuration that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The parallel loader lost images: a thread panicked. Iteration stops with this
    /// error instead of ending early, so a panic never shortens an evaluation silently.
    #[error("{0}")]
    Lost(String),

    /// Building a tensor failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(origin: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Decode {
            origin: origin.into(),
            reason: reason.to_string(),
        }
    }
}

/// Reads a whole file, naming it on failure.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
