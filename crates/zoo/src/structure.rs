//! What a model is made of, read off its construction and one counted forward pass: the
//! tensors it asks for, its parameters, and its multiply-accumulates.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_core::flops::{self, Macs};
use convnets_core::spec::WeightSpec;

use crate::error::Result;
use crate::model::Model;
use crate::registry::{Architecture, architecture};

/// Tensor names and shapes.
pub type Shapes = Vec<(String, Vec<usize>)>;

/// A model's tensors, parameters and cost at one input size.
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    /// Every tensor the model reads when built, with its shape, in construction order:
    /// what a checkpoint for it must hold (after its key map).
    pub tensors: Shapes,
    /// Trainable parameters: the elements of every tensor but BatchNorm's running statistics.
    pub params: usize,
    /// Multiply-accumulates of one forward pass in evaluation mode on one image of
    /// [`Structure::input`] (see [`convnets_core::flops`]).
    pub macs: Macs,
    /// The input image the cost is counted for, `[channels, height, width]`.
    pub input: [usize; 3],
}

impl Structure {
    /// The structure of the model `build` makes, counted on one `input`-shaped image. The
    /// model is built from zeros and never computes: this takes milliseconds even for VGG.
    pub fn of(
        build: impl FnOnce(VarBuilder<'_>) -> Result<Model>,
        input: [usize; 3],
    ) -> Result<Self> {
        let (model, tensors) = record(build)?;
        let params = tensors
            .iter()
            .filter(|(name, _)| !is_running_statistic(name))
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum();
        let [c, h, w] = input;
        let x = Tensor::zeros((1, c, h, w), DType::F32, &Device::Cpu)?;
        let (_, macs) = flops::count(|| model.forward_t(&x, false))?;
        Ok(Self {
            tensors,
            params,
            macs,
            input,
        })
    }

    /// The preset `arch` at its design input size.
    pub fn of_architecture(arch: &'static Architecture) -> Result<Self> {
        Self::of(
            |vb| Model::new(arch, arch.config.num_classes(), vb),
            arch.input_shape(),
        )
    }

    /// The inference network of `spec`'s weights, at the size of the weights' eval crop.
    pub fn of_weights(spec: &WeightSpec) -> Result<Self> {
        let arch = architecture(spec.arch)?;
        let (h, w) = spec.transform.crop;
        Self::of(
            |vb| Model::for_weights(spec, vb),
            [arch.config.in_channels(), h, w],
        )
    }

    /// Billions of multiply-accumulates: torchvision's "GFLOPS".
    pub fn gflops(&self) -> f64 {
        self.macs.giga()
    }
}

/// Builds a model from zeros, writing down every tensor it asks for.
pub(crate) fn record(
    build: impl FnOnce(VarBuilder<'_>) -> Result<Model>,
) -> Result<(Model, Shapes)> {
    let tensors = Arc::new(Mutex::new(Vec::new()));
    let backend = Recorder {
        tensors: tensors.clone(),
    };
    let model = build(VarBuilder::from_backend(
        Box::new(backend),
        DType::F32,
        Device::Cpu,
    ))?;
    let tensors = std::mem::take(&mut *tensors.lock().map_err(|_| poisoned())?);
    Ok((model, tensors))
}

fn is_running_statistic(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

fn poisoned() -> crate::Error {
    crate::Error::Candle(candle_core::Error::Msg(
        "structure recorder poisoned".into(),
    ))
}

/// A `VarBuilder` backend that hands out zeros and writes down what was asked for.
struct Recorder {
    tensors: Arc<Mutex<Shapes>>,
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.tensors
            .lock()
            .map_err(|_| candle_core::Error::Msg("structure recorder poisoned".into()))?
            .push((name.to_string(), shape.dims().to_vec()));
        // One zero broadcast to the shape: no memory for VGG's 138 million parameters. A
        // constructor that needs a contiguous tensor gets a copy of its own.
        Tensor::zeros((), dtype, dev)?.broadcast_as(shape)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("`{name}` was asked for without a shape")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}
