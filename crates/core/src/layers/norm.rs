//! `torch.nn.BatchNorm2d`, in training and in evaluation.

use std::sync::{Arc, PoisonError};

use candle_core::{DType, Result, Tensor, Var};
use candle_nn::{Init, ModuleT, VarBuilder};

use super::conv::Activation;
use crate::kernels::norm::{BatchNormTrain, BatchStats};

/// BatchNorm hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root: 1e-5 in PyTorch, 1e-3 in torchvision's
    /// GoogLeNet and Inception-v3 (ported from TensorFlow).
    pub eps: f64,
    /// Weight of the new batch statistic in the running averages (PyTorch's 0.1).
    pub momentum: f64,
    /// Whether the layer has a learnable scale (`weight`) and shift (`bias`).
    pub affine: bool,
}

impl BatchNormConfig {
    /// PyTorch's defaults: `eps=1e-5, momentum=0.1, affine=True`.
    pub const fn new() -> Self {
        Self {
            eps: 1e-5,
            momentum: 0.1,
            affine: true,
        }
    }

    /// The same with another `eps`.
    pub const fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// The same with another `momentum`.
    pub const fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Batch normalisation over dimension 1 of an `[N, C, ...]` tensor, as `torch.nn.BatchNorm2d`.
///
/// In training it normalises with the batch's own mean and biased variance and updates the
/// running statistics in place, with the *unbiased* variance
/// (`running_var = (1-m)·running_var + m·var·n/(n-1)`); in evaluation it uses the running
/// statistics. The running statistics are candle [`Var`]s, so when the layer is built from a
/// `VarMap` they are saved and restored with the model's parameters.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    running_mean: Var,
    running_var: Var,
    config: BatchNormConfig,
}

impl BatchNorm2d {
    /// Reads (or, from a `VarMap`, creates with PyTorch's initial values) `weight`, `bias`,
    /// `running_mean` and `running_var`.
    pub fn new(num_features: usize, config: BatchNormConfig, vb: VarBuilder<'_>) -> Result<Self> {
        if config.eps < 0.0 || !(0.0..=1.0).contains(&config.momentum) {
            candle_core::bail!("BatchNorm2d: invalid configuration {config:?}")
        }
        let (weight, bias) = if config.affine {
            (
                Some(vb.get_with_hints(num_features, "weight", Init::Const(1.0))?),
                Some(vb.get_with_hints(num_features, "bias", Init::Const(0.0))?),
            )
        } else {
            (None, None)
        };
        let running_mean = vb.get_with_hints(num_features, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(num_features, "running_var", Init::Const(1.0))?;
        Ok(Self {
            weight,
            bias,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            config,
        })
    }

    /// The running mean.
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running (unbiased) variance.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// The hyper-parameters.
    pub fn config(&self) -> BatchNormConfig {
        self.config
    }

    /// Whether the learnable scale or shift records operations for a backward pass.
    pub(crate) fn tracks_op(&self) -> bool {
        [&self.weight, &self.bias]
            .into_iter()
            .flatten()
            .any(Tensor::track_op)
    }

    /// The per-channel affine map of evaluation mode, `y = scale·x + shift`, computed in f64.
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor)> {
        let f64_ = |t: &Tensor| t.detach().to_dtype(DType::F64);
        let mean = f64_(self.running_mean.as_tensor())?;
        let var = f64_(self.running_var.as_tensor())?;
        let inv_std = (var + self.config.eps)?.sqrt()?.recip()?;
        let scale = match &self.weight {
            Some(w) => (f64_(w)? * inv_std)?,
            None => inv_std,
        };
        let shift = (mean.neg()? * &scale)?;
        let shift = match &self.bias {
            Some(b) => (shift + f64_(b)?)?,
            None => shift,
        };
        Ok((scale, shift))
    }

    /// Folds this normalisation into the convolution before it: returns the weight and bias
    /// of one convolution computing `bn(conv(x))` in evaluation mode.
    ///
    /// `weight` is `[C_out, C_in/groups, kh, kw]`; the fold is computed in f64 and returned
    /// in the weight's dtype.
    pub fn fold_into(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let dtype = weight.dtype();
        let (scale, shift) = self.scale_shift()?;
        let c_out = weight.dim(0)?;
        let w = weight
            .to_dtype(DType::F64)?
            .broadcast_mul(&scale.reshape((c_out, 1, 1, 1))?)?;
        let b = match bias {
            Some(b) => ((b.to_dtype(DType::F64)? * &scale)? + shift)?,
            None => shift,
        };
        Ok((w.to_dtype(dtype)?, b.to_dtype(dtype)?))
    }

    fn channel_shape(x: &Tensor) -> Vec<usize> {
        (0..x.rank())
            .map(|d| if d == 1 { x.dims()[1] } else { 1 })
            .collect()
    }

    fn forward_eval(&self, x: &Tensor) -> Result<Tensor> {
        let shape = Self::channel_shape(x);
        let inv_std = (self.running_var.as_detached_tensor() + self.config.eps)?
            .sqrt()?
            .recip()?;
        let scale = match &self.weight {
            Some(w) => (w * inv_std)?,
            None => inv_std,
        };
        let shift = (self.running_mean.as_detached_tensor().neg()? * &scale)?;
        let shift = match &self.bias {
            Some(b) => (shift + b)?,
            None => shift,
        };
        let dtype = x.dtype();
        x.broadcast_mul(&scale.reshape(shape.as_slice())?.to_dtype(dtype)?)?
            .broadcast_add(&shift.reshape(shape.as_slice())?.to_dtype(dtype)?)
    }

    /// `act(self(x))`; in training on the CPU in f32, one fused operation
    /// ([`kernels::norm`]).
    pub(crate) fn forward_act(&self, x: &Tensor, train: bool, act: Activation) -> Result<Tensor> {
        if train
            && !crate::flops::counting()
            && let Some(y) = self.forward_train_fused(x, act == Activation::Relu)?
        {
            return Ok(y);
        }
        act.apply(&self.forward_t(x, train)?)
    }

    /// Training mode as one operation with its own backward pass, where it applies (an
    /// affine f32 layer on the CPU).
    fn forward_train_fused(&self, x: &Tensor, relu: bool) -> Result<Option<Tensor>> {
        let (Some(weight), Some(bias)) = (&self.weight, &self.bias) else {
            return Ok(None);
        };
        let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
        if !(f32_cpu(x) && f32_cpu(weight) && f32_cpu(bias)) {
            return Ok(None);
        }
        let n = Self::values_per_channel(x)?;
        let op = BatchNormTrain {
            eps: self.config.eps,
            relu,
            stats: Arc::default(),
        };
        let stats = op.stats.clone();
        let y = x.contiguous()?.apply_op3(weight, bias, op)?;
        let BatchStats { mean, var } = stats.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let dev = x.device();
        self.update_running(&Tensor::new(mean, dev)?, &Tensor::new(var, dev)?, n)?;
        Ok(Some(y))
    }

    /// Values per channel in `x`, of which training needs more than one.
    fn values_per_channel(x: &Tensor) -> Result<usize> {
        let n = x.elem_count() / x.dim(1)?;
        if n <= 1 {
            candle_core::bail!(
                "BatchNorm2d: expected more than 1 value per channel when training, got input {:?}",
                x.dims()
            )
        }
        Ok(n)
    }

    /// Moves the running statistics towards a batch's mean and biased variance (over `n`
    /// values per channel), storing the unbiased variance as PyTorch does.
    fn update_running(&self, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
        let m = self.config.momentum;
        let rm = self.running_mean.as_tensor();
        let rv = self.running_var.as_tensor();
        let batch_mean = mean.detach().flatten_all()?.to_dtype(rm.dtype())?;
        let batch_var = var.detach().flatten_all()?.to_dtype(rv.dtype())?;
        self.running_mean
            .set(&((rm.detach() * (1.0 - m))? + (batch_mean * m)?)?)?;
        let unbiased = n as f64 / (n as f64 - 1.0);
        self.running_var
            .set(&((rv.detach() * (1.0 - m))? + (batch_var * (m * unbiased))?)?)
    }

    fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(y) = self.forward_train_fused(x, false)? {
            return Ok(y);
        }
        let shape = Self::channel_shape(x);
        let n = Self::values_per_channel(x)?;
        let dtype = x.dtype();
        let x = match dtype {
            DType::F16 | DType::BF16 => x.to_dtype(DType::F32)?,
            _ => x.clone(),
        };
        let mean = channel_mean(&x)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = channel_mean(&centred.sqr()?)?;
        let y = centred.broadcast_div(&(&var + self.config.eps)?.sqrt()?)?;
        let y = match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => y
                .broadcast_mul(&w.reshape(shape.as_slice())?)?
                .broadcast_add(&b.reshape(shape.as_slice())?)?,
            _ => y,
        };

        self.update_running(&mean, &var, n)?;
        y.to_dtype(dtype)
    }
}

/// Mean over every dimension but 1, keeping them. candle's multi-axis reduction walks a
/// strided index per element; chained single-axis sums, innermost first, are about 100×
/// faster on `[N, C, H, W]` activations.
fn channel_mean(x: &Tensor) -> Result<Tensor> {
    let n = x.elem_count() / x.dim(1)?;
    let mut acc = x.clone();
    for d in (0..x.rank()).rev().filter(|&d| d != 1) {
        acc = acc.sum_keepdim(d)?;
    }
    acc / n as f64
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if crate::flops::counting() {
            // No multiply-accumulates to count, and only the shape matters.
            return Ok(x.clone());
        }
        if train {
            self.forward_train(x)
        } else {
            self.forward_eval(x)
        }
    }
}
