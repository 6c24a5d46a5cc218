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
        self.inner.forward(x)
    }
}

impl ModuleT for Linear {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}
