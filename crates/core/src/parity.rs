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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two inputs, eight classes, max |ref| 20, so the tolerance is `20 · TOLERANCE`. In row
    /// 0 ranks 4 and 5 (classes 0 and 3) are closer than the tolerance, so swapping them is
    /// invisible to the error bound and only the top-5 comparison can catch it.
    const FIXTURE: &str = r#"{
        "arch": "tiny",
        "reference": "hand-written",
        "generator": 1,
        "tensors": [{"name": "fc.weight", "shape": [8, 4], "lo": -1, "hi": 1}],
        "inputs": [
            {"name": "input0", "shape": [1, 4], "lo": 0, "hi": 1},
            {"name": "input1", "shape": [1, 4], "lo": 0, "hi": 1}
        ],
        "logits": [
            [3.0, -20.0, 7.5, 2.9995, 12.0, -4.0, 9.0, 0.5],
            [-1.0, 4.0, 0.25, -8.0, 6.5, 2.0, -3.5, 5.0]
        ]
    }"#;

    fn fixture() -> Fixture {
        serde_json::from_str(FIXTURE).expect("the fixture literal parses")
    }

    fn tolerance() -> f64 {
        TOLERANCE * 20.0
    }

    /// The reference logits with `edit` applied, as the `[2, 8]` tensor a model returns.
    fn logits(edit: impl FnOnce(&mut Vec<Vec<f32>>)) -> Tensor {
        let mut rows = fixture().logits;
        edit(&mut rows);
        Tensor::new(rows, &Device::Cpu).expect("a [2, 8] tensor")
    }

    fn parity_failure(logits: &Tensor) -> String {
        match fixture().check(logits) {
            Err(Error::Parity(message)) => message,
            other => panic!("expected a parity failure, got {other:?}"),
        }
    }

    #[test]
    fn the_reference_logits_pass() {
        let report = fixture().check(&logits(|_| {})).unwrap();
        assert_eq!(
            report,
            ParityReport {
                max_abs_err: 0.0,
                tolerance: tolerance(),
                max_abs_ref: 20.0,
            }
        );
    }

    #[test]
    fn an_error_within_the_tolerance_passes_and_beyond_it_fails() {
        // Class 1 of row 0 is last, so moving it changes no top-5.
        let shifted = |factor: f64| logits(|rows| rows[0][1] += (factor * tolerance()) as f32);
        let report = fixture().check(&shifted(0.9)).unwrap();
        // f32 spacing at 20 is ~2e-6: the error is 0.9 · tolerance to well within 1e-5.
        assert!(
            (report.max_abs_err - 0.9 * tolerance()).abs() < 1e-5,
            "{report:?}"
        );
        let message = parity_failure(&shifted(1.1));
        assert!(
            message.starts_with("tiny: max abs error 2.19")
                && message.ends_with("exceeds 2.000e-3 (max |ref| 20.000)"),
            "{message}"
        );
    }

    #[test]
    fn swapped_ranks_four_and_five_fail_the_top_5() {
        let swapped = logits(|rows| rows[0].swap(0, 3));
        let message = parity_failure(&swapped);
        assert_eq!(
            message,
            "tiny: input 0: top-5 [4, 6, 2, 3, 0], reference [4, 6, 2, 0, 3]"
        );
    }

    #[test]
    fn a_nan_logit_fails() {
        // NaN with the sign bit set sorts last, so the top-5 is unchanged and only the error
        // bound can catch it; a later finite error must not hide it.
        let hidden = logits(|rows| {
            rows[0][1] = -f32::NAN;
            rows[1][3] += 1e-4;
        });
        let message = parity_failure(&hidden);
        assert!(message.starts_with("tiny: max abs error NaN"), "{message}");
        // A positive NaN sorts first, which the top-5 comparison catches.
        let first = logits(|rows| rows[1][3] = f32::NAN);
        let message = parity_failure(&first);
        assert!(message.starts_with("tiny: input 1: top-5 [3,"), "{message}");
    }

    #[test]
    fn logits_of_the_wrong_shape_fail() {
        let short = Tensor::zeros((2, 7), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            parity_failure(&short),
            "tiny: logits have shape [2, 7], the reference [2, 8]"
        );
    }
}
