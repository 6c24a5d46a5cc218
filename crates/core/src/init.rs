//! Seeded parameter initialisation.
//!
//! candle's `VarMap` initialises parameters from its CPU generator, which cannot be seeded,
//! so two runs of the same training never start from the same weights. [`var_builder`]
//! returns a `VarBuilder` over a `VarMap` that realises each [`Init`] hint from a stream
//! keyed by `(seed, parameter name)`: the same seed gives the same model, whatever the order
//! in which layers are built, and a new parameter does not shift the others.

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap, init::NormalOrUniform};

use crate::procedural::{fnv1a64, mix64, unit};

/// A `VarBuilder` that creates missing parameters in `varmap`, initialised from `seed`.
///
/// Parameters already in the map are returned as they are (after a shape check), so a
/// `VarMap` filled from a checkpoint is used rather than re-initialised.
pub fn var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend: Box<dyn SimpleBackend> = Box::new(SeededVarMap {
        varmap: varmap.clone(),
        seed,
    });
    VarBuilder::from_backend(backend, dtype, device.clone())
}

/// A `VarBuilder` (of `dtype`) over plain tensors detached from `varmap`'s variables: a
/// model built from it has the same weights but tracks no gradients, so that evaluation
/// takes the fused CPU kernels, which run only for tensors that are not variables.
pub fn frozen(varmap: &VarMap, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    let tensors: std::collections::HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    Ok(VarBuilder::from_tensors(tensors, dtype, device))
}

struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

impl SimpleBackend for SeededVarMap {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!(
                    "parameter `{name}`: shape {:?} requested, {:?} in the VarMap",
                    shape.dims(),
                    var.dims()
                )
            }
            return Ok(var.as_tensor().clone());
        }
        let key = mix64(self.seed ^ fnv1a64(name.as_bytes()));
        let var = Var::from_tensor(&realise(init, &shape, key, dev)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("parameter `{name}`: a seeded VarMap needs the shape of every parameter")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|vars| vars.contains_key(name))
            .unwrap_or(false)
    }
}

/// The values of `init` for a tensor of `shape`, drawn from the stream `key`.
pub fn realise(init: Init, shape: &Shape, key: u64, device: &Device) -> Result<Tensor> {
    let n = shape.elem_count();
    let uniform = |lo: f64, hi: f64| -> Vec<f32> {
        (0..n as u64)
            .map(|i| (lo + (hi - lo) * unit(key, i)) as f32)
            .collect()
    };
    let normal = |mean: f64, std: f64| -> Vec<f32> {
        // Box–Muller on pairs of draws; 1 - u keeps the logarithm finite.
        (0..n as u64)
            .map(|i| {
                let u1 = 1.0 - unit(key, 2 * i);
                let u2 = unit(key, 2 * i + 1);
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (mean + std * z) as f32
            })
            .collect()
    };
    let data = match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Uniform { lo, up } => uniform(lo, up),
        Init::Randn { mean, stdev } => normal(mean, stdev),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => uniform(-(3f64.sqrt()) * std, 3f64.sqrt() * std),
                NormalOrUniform::Normal => normal(0.0, std),
            }
        }
    };
    Tensor::from_vec(data, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_parameters_independent_of_order() {
        let dev = Device::Cpu;
        let a = VarMap::new();
        let vb = var_builder(&a, 42, DType::F32, &dev);
        let wa = vb
            .get_with_hints(
                (8, 4),
                "fc.weight",
                Init::Randn {
                    mean: 0.,
                    stdev: 1.,
                },
            )
            .unwrap();
        let b = VarMap::new();
        let vb = var_builder(&b, 42, DType::F32, &dev);
        vb.get_with_hints(3, "other.bias", Init::Const(0.5))
            .unwrap();
        let wb = vb
            .get_with_hints(
                (8, 4),
                "fc.weight",
                Init::Randn {
                    mean: 0.,
                    stdev: 1.,
                },
            )
            .unwrap();
        let diff = (wa - wb).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        assert_eq!(b.all_vars().len(), 2);
    }

    #[test]
    fn kaiming_normal_has_the_right_spread() {
        let init = crate::layers::KAIMING_NORMAL_FAN_OUT;
        let shape = Shape::from((64, 32, 3, 3));
        let t = realise(init, &shape, 1, &Device::Cpu).unwrap();
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let var = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / v.len() as f64;
        let want = 2.0 / (64.0 * 9.0);
        assert!((var / want - 1.0).abs() < 0.05, "{var} vs {want}");
    }
}
