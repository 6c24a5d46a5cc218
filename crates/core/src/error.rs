//! The error type of `convnets-core`.
//!
//! Every error that comes from a file names the file, and every error about a tensor names
//! the tensor, so that a user with a broken checkpoint knows what to fix without a debugger.

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout `convnets-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `convnets-core`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shapes, dtypes, devices).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A checkpoint file is unreadable as a whole: truncated, corrupt header, unknown format,
    /// or not a state dict.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// One tensor of a checkpoint is unusable (wrong dtype, cannot be reshaped as the key map
    /// asks, two source tensors renamed to the same key, ...).
    #[error("{origin}: tensor `{name}`: {reason}")]
    Tensor {
        /// The file the tensor comes from, or a description of the in-memory source.
        origin: String,
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The checkpoint does not fit the model: every missing, unexpected and mis-shaped tensor.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),

    /// A file's sha256 is not the one its weight spec records; the file is not used.
    #[error(
        "{path}: sha256 mismatch, expected {expected}, found {actual}; the file is corrupt or \
         not the published one and was not loaded"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The digest the spec records.
        expected: String,
        /// The digest of the file on disk.
        actual: String,
    },

    /// A configuration that cannot describe a valid layer or model.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A model's output differs from the reference beyond the parity tolerance.
    #[error("parity: {0}")]
    Parity(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn tensor(
        origin: impl Into<String>,
        name: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Tensor {
            origin: origin.into(),
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// The difference between the tensors a model asks for and those a checkpoint holds.
///
/// All three lists are sorted by name, so the report reads like a diff of two state dicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mismatch {
    /// The checkpoint that was being loaded.
    pub origin: String,
    /// The key map that was applied to its names.
    pub key_map: String,
    /// Tensors the model needs that the checkpoint lacks.
    pub missing: Vec<String>,
    /// Tensors in the checkpoint that the model does not use and the key map does not name.
    pub unexpected: Vec<String>,
    /// Tensors whose shape differs: name, shape the model needs, shape in the checkpoint.
    pub mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Tensors the model needs that are present but unusable (wrong dtype, unreadable data).
    pub invalid: Vec<(String, String)>,
    /// An error the model's constructor raised after the placeholders were handed out.
    pub build_error: Option<String>,
}

impl Mismatch {
    /// True when the checkpoint fits the model exactly.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mis_shaped.is_empty()
            && self.invalid.is_empty()
            && self.build_error.is_none()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} does not fit the model (key map `{}`): {} missing, {} unexpected, {} mis-shaped, \
             {} invalid",
            self.origin,
            self.key_map,
            self.missing.len(),
            self.unexpected.len(),
            self.mis_shaped.len(),
            self.invalid.len()
        )?;
        for name in &self.missing {
            write!(f, "\n  missing:     {name}")?;
        }
        for name in &self.unexpected {
            write!(f, "\n  unexpected:  {name}")?;
        }
        for (name, want, got) in &self.mis_shaped {
            write!(
                f,
                "\n  mis-shaped:  {name}: model needs {want:?}, file has {got:?}"
            )?;
        }
        for (name, reason) in &self.invalid {
            write!(f, "\n  invalid:     {name}: {reason}")?;
        }
        if let Some(err) = &self.build_error {
            write!(f, "\n  the model could not be built: {err}")?;
        }
        Ok(())
    }
}
