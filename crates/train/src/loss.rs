//! Training criteria.

use candle_core::{D, DType, Tensor};
use convnets_core::TrainOutput;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The loss a model is trained with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Criterion {
    /// `torch.nn.CrossEntropyLoss(label_smoothing=ε)`, plus each auxiliary head's
    /// cross-entropy times the weight the model gives it.
    CrossEntropy {
        /// Label smoothing ε (0 for none).
        label_smoothing: f64,
    },
    /// LeCun et al. 1998 eq. (9), the maximum a posteriori criterion of the RBF output
    /// layer, for models whose "logits" are negated RBF penalties `-y_i`:
    /// `E = y_D + log(exp(-j) + Σ_i exp(-y_i))`, averaged over the batch. The `exp(-j)`
    /// term stands for a rubbish class and keeps penalties from collapsing to zero.
    LeCunMap {
        /// The positive constant `j`.
        j: f64,
    },
}

impl Criterion {
    /// Plain cross-entropy.
    pub const CROSS_ENTROPY: Self = Self::CrossEntropy {
        label_smoothing: 0.0,
    };

    /// The loss of one training forward pass against `labels` (`[N]`, u32), including the
    /// weighted auxiliary losses.
    pub fn loss(&self, out: &TrainOutput, labels: &Tensor) -> Result<Tensor> {
        let mut total = self.main(&out.logits, labels)?;
        for aux in &out.aux {
            total = (total + (self.main(&aux.logits, labels)? * aux.loss_weight)?)?;
        }
        Ok(total)
    }

    /// The loss of the main output alone (what evaluation reports).
    pub fn main(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        match *self {
            Self::CrossEntropy { label_smoothing } => {
                cross_entropy(logits, labels, label_smoothing)
            }
            Self::LeCunMap { j } => lecun_map(logits, labels, j),
        }
    }
}

/// Mean cross-entropy of `logits` (`[N, C]`) against class indices `labels` (`[N]`), with
/// PyTorch's label smoothing: `(1-ε)·nll + ε·mean_c(-log p_c)`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
    let nll = picked(&logp, labels)?.neg()?;
    if label_smoothing == 0.0 {
        return Ok(nll.mean_all()?);
    }
    let smooth = logp.mean(D::Minus1)?.neg()?;
    Ok(((nll * (1.0 - label_smoothing))? + (smooth * label_smoothing)?)?.mean_all()?)
}

/// LeCun et al. 1998 eq. (9) over negated penalties `logits = -y`.
pub fn lecun_map(logits: &Tensor, labels: &Tensor, j: f64) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?;
    let n = logits.dim(0)?;
    let rubbish = Tensor::full(-j as f32, (n, 1), logits.device())?;
    let all = Tensor::cat(&[&rubbish, &logits], 1)?;
    let lse = all.exp()?.sum(D::Minus1)?.log()?;
    // y_D = -logit_D.
    Ok((lse - picked(&logits, labels)?)?.mean_all()?)
}

/// `x[i, labels[i]]` for each row.
fn picked(x: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let idx = labels.to_dtype(DType::U32)?.unsqueeze(1)?;
    Ok(x.gather(&idx, 1)?.squeeze(1)?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use convnets_core::AuxLogits;

    use super::*;

    #[test]
    fn cross_entropy_matches_pytorch() -> Result<()> {
        // torch.nn.functional.cross_entropy(torch.tensor([[1., 2., 3.], [1., -1., 0.]]),
        //     torch.tensor([2, 0]), label_smoothing=s) for s = 0 and 0.1:
        //     0.40760600566864014, 0.507606029510498
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[1f32, 2., 3.], [1., -1., 0.]], &dev)?;
        let labels = Tensor::new(&[2u32, 0], &dev)?;
        let plain = cross_entropy(&logits, &labels, 0.0)?.to_scalar::<f32>()?;
        let smooth = cross_entropy(&logits, &labels, 0.1)?.to_scalar::<f32>()?;
        assert!((plain - 0.407_606).abs() < 1e-6, "{plain}");
        assert!((smooth - 0.507_606).abs() < 1e-6, "{smooth}");
        Ok(())
    }

    /// Mean cross-entropy with label smoothing `eps`, in f64 from the definition.
    fn reference_ce(logits: &[[f32; 3]], labels: &[usize], eps: f64) -> f64 {
        let rows = logits.iter().zip(labels).map(|(row, &label)| {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            let nll = lse - row[label];
            let uniform = row.iter().map(|v| lse - v).sum::<f64>() / row.len() as f64;
            (1.0 - eps) * nll + eps * uniform
        });
        rows.sum::<f64>() / labels.len() as f64
    }

    #[test]
    fn auxiliary_heads_add_their_weighted_losses() -> Result<()> {
        let dev = Device::Cpu;
        let main = [[1f32, 2., 3.], [1., -1., 0.]];
        let aux1 = [[0.5f32, -0.5, 2.], [3., 0., -2.]];
        let aux2 = [[-1f32, 4., 0.], [0.2, 0.1, 0.3]];
        let labels = [2usize, 0];
        let out = TrainOutput {
            logits: Tensor::new(&main, &dev)?,
            aux: vec![
                AuxLogits {
                    name: "aux1",
                    logits: Tensor::new(&aux1, &dev)?,
                    loss_weight: 0.3,
                },
                AuxLogits {
                    name: "aux2",
                    logits: Tensor::new(&aux2, &dev)?,
                    loss_weight: 0.4,
                },
            ],
        };
        let y = Tensor::new(&[2u32, 0], &dev)?;
        for eps in [0.0, 0.1] {
            let criterion = Criterion::CrossEntropy {
                label_smoothing: eps,
            };
            let got = f64::from(criterion.loss(&out, &y)?.to_scalar::<f32>()?);
            let want = reference_ce(&main, &labels, eps)
                + 0.3 * reference_ce(&aux1, &labels, eps)
                + 0.4 * reference_ce(&aux2, &labels, eps);
            assert!((got - want).abs() < 1e-5, "ε = {eps}: {got} vs {want}");
            // Evaluation reports the main head's loss alone.
            let main_only = f64::from(criterion.main(&out.logits, &y)?.to_scalar::<f32>()?);
            assert!((main_only - reference_ce(&main, &labels, eps)).abs() < 1e-6);
        }
        Ok(())
    }

    #[test]
    fn lecun_map_is_the_papers_equation() -> Result<()> {
        // Penalties y = [1, 3], label 0, j = 2: E = 1 + ln(e^-2 + e^-1 + e^-3).
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[-1f32, -3.]], &dev)?;
        let e = lecun_map(&logits, &Tensor::new(&[0u32], &dev)?, 2.0)?.to_scalar::<f32>()?;
        let want = 1.0 + ((-2f64).exp() + (-1f64).exp() + (-3f64).exp()).ln();
        assert!((f64::from(e) - want).abs() < 1e-6, "{e} vs {want}");
        Ok(())
    }
}
