//! `torch.nn.Linear`.

use candle_core::{Result, Tensor};
use candle_nn::{Init, Module, ModuleT, VarBuilder};

use super::conv::TORCH_DEFAULT_INIT;

/// A fully connected layer, `y = x·Wᵀ + b` with `W` of shape `[out, in]` as in PyTorch,
/// initialised from a `VarMap` as PyTorch does by default.
#[derive(Debug, Clone)]
pub struct Linear {
    inner: candle_nn::Linear,
}

impl Linear {
    /// Reads `weight` (`[out, in]`) and `bias` (`[out]`).
    pub fn new(in_features: usize, out_features: usize, vb: VarBuilder<'_>) -> Result<Self> {
        Self::with_init(in_features, out_features, TORCH_DEFAULT_INIT, vb)
    }

    /// As [`Linear::new`] with another initialisation for the weight.
    pub fn with_init(
        in_features: usize,
        out_features: usize,
        init: Init,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((out_features, in_features), "weight", init)?;
        let bound = 1.0 / (in_features as f64).sqrt();
        let bias = vb.get_with_hints(
            out_features,
            "bias",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Self::from_parts(weight, Some(bias)))
    }

    /// A layer from explicit tensors.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            inner: candle_nn::Linear::new(weight, bias),
        }
    }

    /// The weight, `[out, in]`.
    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.inner.bias()
    }

    /// Applies the layer to `[N, in]` (or `[..., in]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(zeros) = crate::flops::linear(x, self.inner.weight())? {
            return Ok(zeros);
        }
        let weight = self.inner.weight();
        match x.dims() {
            // A batch of fewer rows than this is a thin matrix against a large weight
            // (AlexNet's and VGG's fc6 at batch 16): multiplied as `(W·xᵀ)ᵀ`, the weight is
            // the left operand, which the matrix-product kernel streams through once, where
            // as the transposed right operand of `x·Wᵀ` it is repacked block by block. On
            // this machine (docs/perf.md) AlexNet's fc6 at batch 16 takes 11 ms instead of
            // 56; the orientations are even by about 256 rows.
            &[rows, _] if rows < THIN_BATCH => {
                let y = weight.matmul(&x.t()?)?.t()?;
                match self.inner.bias() {
                    Some(b) => y.broadcast_add(b),
                    None => y.contiguous(),
                }
            }
            _ => self.inner.forward(x),
        }
    }
}

/// Batches of fewer rows than this run as `(W·xᵀ)ᵀ` (see [`Linear::forward`]).
const THIN_BATCH: usize = 256;

impl ModuleT for Linear {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}
