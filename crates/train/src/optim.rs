//! Optimisers with PyTorch's semantics: `torch.optim.SGD` (momentum, dampening, Nesterov,
//! weight decay) and `torch.optim.AdamW`, over named parameters with per-parameter weight
//! decay. candle-nn's `SGD` has none of these, and its `AdamW` differs in where the bias
//! correction is applied.
//!
//! The update formulas follow the algorithm boxes of the PyTorch documentation
//! (`torch/optim/sgd.py`, `torch/optim/adamw.py`); `tests/optim.rs` compares several steps
//! with PyTorch's own numbers.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One trainable tensor.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its name in the model's state dict.
    pub name: String,
    /// The variable.
    pub var: Var,
    /// The weight decay applied to it.
    pub weight_decay: f64,
}

/// Whether a tensor of a `VarMap` is a buffer (BatchNorm statistics), not a parameter.
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")
}

/// The trainable parameters of `varmap`, sorted by name, with `weight_decay` on each —
/// except, when `decay_1d` is false, on one-dimensional tensors (biases and normalisation
/// scales), as timm's `param_groups_weight_decay` does.
pub fn params(varmap: &VarMap, weight_decay: f64, decay_1d: bool) -> Result<Vec<Param>> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
    let mut params: Vec<Param> = vars
        .iter()
        .filter(|(name, _)| !is_buffer(name))
        .map(|(name, var)| Param {
            name: name.clone(),
            weight_decay: if var.rank() <= 1 && !decay_1d {
                0.0
            } else {
                weight_decay
            },
            var: var.clone(),
        })
        .collect();
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(params)
}

/// Which optimiser, with its hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd {
        /// Momentum factor (0 disables the buffer).
        momentum: f64,
        /// Dampening of the gradient in the momentum buffer.
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
        /// Whether biases and normalisation scales are decayed too.
        decay_1d: bool,
    },
    /// `torch.optim.AdamW`.
    AdamW {
        /// Coefficients of the running averages of the gradient and its square.
        betas: (f64, f64),
        /// Added to the denominator.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
        /// Whether biases and normalisation scales are decayed too.
        decay_1d: bool,
    },
}

impl OptimizerConfig {
    /// SGD with momentum 0.9 and weight decay on every parameter, the ImageNet/CIFAR recipe
    /// of He et al. 2015.
    pub const fn sgd(momentum: f64, weight_decay: f64) -> Self {
        Self::Sgd {
            momentum,
            dampening: 0.0,
            nesterov: false,
            weight_decay,
            decay_1d: true,
        }
    }

    /// AdamW with PyTorch's defaults for betas and eps.
    pub const fn adamw(weight_decay: f64) -> Self {
        Self::AdamW {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
            decay_1d: true,
        }
    }

    /// Builds the optimiser over the parameters of `varmap`.
    pub fn build(&self, varmap: &VarMap) -> Result<Optimizer> {
        let (wd, decay_1d) = match *self {
            Self::Sgd {
                weight_decay,
                decay_1d,
                ..
            }
            | Self::AdamW {
                weight_decay,
                decay_1d,
                ..
            } => (weight_decay, decay_1d),
        };
        if let Self::Sgd {
            momentum,
            dampening,
            nesterov: true,
            ..
        } = *self
            && (momentum <= 0.0 || dampening != 0.0)
        {
            return Err(Error::Config(
                "Nesterov momentum requires a momentum and zero dampening".into(),
            ));
        }
        let params = params(varmap, wd, decay_1d)?;
        Ok(Optimizer {
            config: *self,
            slots: vec![Slots::default(); params.len()],
            params,
            steps: 0,
        })
    }
}

#[derive(Debug, Clone, Default)]
struct Slots {
    /// SGD's momentum buffer, or AdamW's first moment.
    first: Option<Tensor>,
    /// AdamW's second moment.
    second: Option<Tensor>,
}

/// An optimiser over a fixed list of named parameters.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    params: Vec<Param>,
    slots: Vec<Slots>,
    steps: u64,
}

impl Optimizer {
    /// The parameters it updates.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update with learning rate `lr`. Parameters without a gradient are skipped, as
    /// PyTorch skips those whose `.grad` is `None`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.steps += 1;
        for (param, slots) in self.params.iter().zip(self.slots.iter_mut()) {
            let Some(grad) = grads.get(param.var.as_tensor()) else {
                continue;
            };
            // candle detaches the gradients of intermediate nodes but not those of the
            // variables themselves: a variable used directly in a matrix product (the
            // weight of `W·xᵀ`) gets a gradient that still references the step's forward
            // graph. A momentum buffer built from it would keep every step's graph alive,
            // one after the other (LeNet-5: 4 MB a step).
            let grad = &grad.detach();
            let p = param.var.as_tensor().detach();
            let wd = param.weight_decay;
            let next = match self.config {
                OptimizerConfig::Sgd {
                    momentum,
                    dampening,
                    nesterov,
                    ..
                } => {
                    let mut g = if wd != 0.0 {
                        (grad + (&p * wd)?)?
                    } else {
                        grad.clone()
                    };
                    if momentum != 0.0 {
                        let buf = match slots.first.take() {
                            None => g.clone(),
                            Some(buf) => ((buf * momentum)? + (&g * (1.0 - dampening))?)?,
                        };
                        g = if nesterov {
                            (g + (&buf * momentum)?)?
                        } else {
                            buf.clone()
                        };
                        slots.first = Some(buf);
                    }
                    (p - (g * lr)?)?
                }
                OptimizerConfig::AdamW {
                    betas: (b1, b2),
                    eps,
                    ..
                } => {
                    let p = if wd != 0.0 { (p * (1.0 - lr * wd))? } else { p };
                    let m = match slots.first.take() {
                        None => (grad * (1.0 - b1))?,
                        Some(m) => ((m * b1)? + (grad * (1.0 - b1))?)?,
                    };
                    let v = match slots.second.take() {
                        None => (grad.sqr()? * (1.0 - b2))?,
                        Some(v) => ((v * b2)? + (grad.sqr()? * (1.0 - b2))?)?,
                    };
                    let t = self.steps as i32;
                    let bias1 = 1.0 - b1.powi(t);
                    let bias2 = 1.0 - b2.powi(t);
                    let denom = ((v.sqrt()? / bias2.sqrt())? + eps)?;
                    let update = ((&m / denom)? * (lr / bias1))?;
                    slots.first = Some(m);
                    slots.second = Some(v);
                    (p - update)?
                }
            };
            param.var.set(&next)?;
        }
        Ok(())
    }

    /// The optimiser's state as named tensors (`<param>.momentum_buffer`, `<param>.exp_avg`,
    /// `<param>.exp_avg_sq`, PyTorch's names) and the step count, for checkpoints.
    pub fn state(&self) -> (Vec<(String, Tensor)>, u64) {
        let (first, second) = match self.config {
            OptimizerConfig::Sgd { .. } => ("momentum_buffer", ""),
            OptimizerConfig::AdamW { .. } => ("exp_avg", "exp_avg_sq"),
        };
        let mut out = Vec::new();
        for (param, slots) in self.params.iter().zip(&self.slots) {
            if let Some(t) = &slots.first {
                out.push((format!("{}.{first}", param.name), t.clone()));
            }
            if let Some(t) = &slots.second {
                out.push((format!("{}.{second}", param.name), t.clone()));
            }
        }
        (out, self.steps)
    }

    /// Restores a state written by [`Optimizer::state`]; every slot must belong to a
    /// parameter and have its shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        let (first, second) = match self.config {
            OptimizerConfig::Sgd { .. } => ("momentum_buffer", "-"),
            OptimizerConfig::AdamW { .. } => ("exp_avg", "exp_avg_sq"),
        };
        let mut used = 0;
        for (param, slots) in self.params.iter().zip(self.slots.iter_mut()) {
            let get = |slot: &str| -> Result<Option<Tensor>> {
                let name = format!("{}.{slot}", param.name);
                match tensors.get(&name) {
                    None => Ok(None),
                    Some(t) if t.shape() == param.var.shape() => Ok(Some(
                        t.to_dtype(param.var.dtype())?
                            .to_device(param.var.device())?,
                    )),
                    Some(t) => Err(Error::Checkpoint(format!(
                        "optimiser state `{name}` has shape {:?}, the parameter {:?}",
                        t.dims(),
                        param.var.dims()
                    ))),
                }
            };
            slots.first = get(first)?;
            slots.second = get(second)?;
            used += usize::from(slots.first.is_some()) + usize::from(slots.second.is_some());
        }
        if used != tensors.len() {
            let known: Vec<String> = self
                .params
                .iter()
                .flat_map(|p| {
                    [
                        format!("{}.{first}", p.name),
                        format!("{}.{second}", p.name),
                    ]
                })
                .collect();
            let mut stray: Vec<&String> = tensors.keys().filter(|k| !known.contains(k)).collect();
            stray.sort();
            return Err(Error::Checkpoint(format!(
                "optimiser state holds tensors for no parameter: {stray:?}"
            )));
        }
        self.steps = steps;
        Ok(())
    }

    /// The dtype of the first parameter (f32 for every model here).
    pub fn dtype(&self) -> DType {
        self.params.first().map_or(DType::F32, |p| p.var.dtype())
    }
}
