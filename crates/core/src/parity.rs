//! Parity fixtures: a reference model's state-dict manifest and its logits for procedural
//! inputs, written by `tests/parity/generate.py`, read and checked here.
//!
//! A fixture lists every tensor of the reference state dict (name, shape, dtype and the range
//! its procedural values are drawn from, see [`crate::procedural`]), the procedural inputs,
//! and the logits the reference computed for them. [`Fixture::checkpoint`] regenerates the
//! state dict as a [`Checkpoint`], so the model under test goes through the same strict
//! loader and key map as a real checkpoint; [`Fixture::check`] compares the logits.
//!
//! The format and the tolerance are specified in `tests/parity/README.md`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::procedural;

/// Relative tolerance of the logit comparison: `max |ours - ref| ≤ 1e-4 · max(1, max |ref|)`.
pub const TOLERANCE: f64 = 1e-4;

/// One procedural tensor of a fixture.
#[derive(Debug, Clone, Deserialize)]
pub struct TensorSpec {
    /// State-dict key (or input name).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// `float32` or, for buffers such as `num_batches_tracked`, `int64`.
    #[serde(default = "float32")]
    pub dtype: String,
    /// Lower end of the value range.
    pub lo: f64,
    /// Upper end of the value range (exclusive).
    pub hi: f64,
}

fn float32() -> String {
    "float32".into()
}

impl TensorSpec {
    /// The tensor on `device`: procedural floats, or `lo` as a constant for integer buffers.
    pub fn tensor(&self, device: &Device) -> Result<Tensor> {
        match self.dtype.as_str() {
            "float32" => procedural::tensor(&self.name, &self.shape, self.lo, self.hi, device),
            "int64" => Ok(Tensor::full(self.lo as i64, self.shape.as_slice(), device)?),
            other => Err(Error::tensor(
                "parity fixture",
                &self.name,
                format!("unsupported dtype `{other}`"),
            )),
        }
    }
}

/// A parity fixture as `tests/parity/generate.py` writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    /// Architecture name.
    pub arch: String,
    /// The reference implementation, with versions.
    pub reference: String,
    /// Version of the generator specification.
    pub generator: u32,
    /// The reference state dict.
    pub tensors: Vec<TensorSpec>,
    /// The inputs, one image each.
    pub inputs: Vec<TensorSpec>,
    /// The reference logits, one row per input.
    pub logits: Vec<Vec<f32>>,
}

/// How close a model came to the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityReport {
    /// Largest absolute difference of any logit.
    pub max_abs_err: f64,
    /// The tolerance it was compared with (`TOLERANCE · max(1, max |ref|)`).
    pub tolerance: f64,
    /// Largest absolute reference logit.
    pub max_abs_ref: f64,
}

impl Fixture {
    /// Reads a fixture file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let fixture: Self = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(path, format!("not a parity fixture: {e}")))?;
        if fixture.generator != 1 {
            return Err(Error::checkpoint(
                path,
                format!(
                    "generator version {} (this reader knows 1)",
                    fixture.generator
                ),
            ));
        }
        if fixture.logits.len() != fixture.inputs.len() {
            return Err(Error::checkpoint(path, "one logit row per input expected"));
        }
        Ok(fixture)
    }

    /// The reference state dict, regenerated, as a checkpoint named after the fixture.
    pub fn checkpoint(&self, device: &Device) -> Result<Checkpoint> {
        let tensors = self
            .tensors
            .iter()
            .map(|spec| Ok((spec.name.clone(), spec.tensor(device)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(Checkpoint::from_tensors(
            format!("parity fixture `{}`", self.arch),
            tensors,
        ))
    }

    /// Number of parameters of the reference: elements of every float tensor whose name is
    /// not a BatchNorm running statistic.
    pub fn num_params(&self) -> usize {
        self.tensors
            .iter()
            .filter(|t| {
                t.dtype == "float32"
                    && !t.name.ends_with("running_mean")
                    && !t.name.ends_with("running_var")
            })
            .map(|t| t.shape.iter().product::<usize>())
            .sum()
    }

    /// The inputs, concatenated along the batch dimension, in `dtype`.
    pub fn input(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        let xs = self
            .inputs
            .iter()
            .map(|spec| spec.tensor(device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&xs, 0)?.to_dtype(dtype)?)
    }

    /// Compares `logits` (`[inputs, classes]`) with the reference: the maximum absolute
    /// error must be within [`TOLERANCE`] of the output scale and each row's top-5 classes
    /// must be the same, in the same order.
    pub fn check(&self, logits: &Tensor) -> Result<ParityReport> {
        let ours: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
        if ours.len() != self.logits.len()
            || ours
                .iter()
                .zip(&self.logits)
                .any(|(a, b)| a.len() != b.len())
        {
            return Err(Error::Parity(format!(
                "{}: logits have shape {:?}, the reference [{}, {}]",
                self.arch,
                logits.dims(),
                self.logits.len(),
                self.logits.first().map_or(0, Vec::len)
            )));
        }
        let max_abs_ref = self
            .logits
            .iter()
            .flatten()
            .fold(0f64, |m, &x| m.max(f64::from(x).abs()));
        let tolerance = TOLERANCE * max_abs_ref.max(1.0);
        let mut max_abs_err = 0f64;
        for (row, (a, b)) in ours.iter().zip(&self.logits).enumerate() {
            for (&x, &y) in a.iter().zip(b) {
                let err = (f64::from(x) - f64::from(y)).abs();
                // A NaN logit must fail the check, so it sticks once seen.
                if err.is_nan() || err > max_abs_err {
                    max_abs_err = err;
                }
            }
            let (ta, tb) = (top_k(a, 5), top_k(b, 5));
            if ta != tb {
                return Err(Error::Parity(format!(
                    "{}: input {row}: top-5 {ta:?}, reference {tb:?}",
                    self.arch
                )));
            }
        }
        let report = ParityReport {
            max_abs_err,
            tolerance,
            max_abs_ref,
        };
        if max_abs_err.is_nan() || max_abs_err > tolerance {
            return Err(Error::Parity(format!(
                "{}: max abs error {max_abs_err:.3e} exceeds {tolerance:.3e} (max |ref| {max_abs_ref:.3})",
                self.arch
            )));
        }
        Ok(report)
    }
}

/// Indices of the `k` largest values, largest first (ties by lower index).
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}
