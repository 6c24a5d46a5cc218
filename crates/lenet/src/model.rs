//! The LeNet-5 model, built from a [`LeNetConfig`].

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_core::Classifier;
use convnets_core::layers::{Activation, Conv2d, Conv2dConfig, Linear, MaxPool2d};

use crate::config::{
    C1_MAPS, C3_MAPS, C3Connections, C5_MAPS, F6_UNITS, INPUT_SIZE, InitScheme, KERNEL,
    LeNetConfig, Nonlinearity, Output, Subsampling, c3_inputs,
};
use crate::prototypes::{NUM_PROTOTYPES, PROTOTYPE_LEN, PROTOTYPES};

/// Amplitude `A` of the paper's squashing function `A·tanh(S·a)`.
pub const SQUASH_AMPLITUDE: f64 = 1.7159;
/// Slope `S` of the paper's squashing function `A·tanh(S·a)`.
pub const SQUASH_SLOPE: f64 = 2.0 / 3.0;

/// Input value of a background (white) pixel in the paper's normalisation (§II.B), which
/// makes the mean input roughly 0 and its variance roughly 1.
pub const BACKGROUND: f64 = -0.1;
/// Input value of a foreground (black, ink) pixel in the paper's normalisation.
pub const FOREGROUND: f64 = 1.175;

impl Nonlinearity {
    /// Applies the nonlinearity.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::ScaledTanh => (x * SQUASH_SLOPE)?.tanh()? * SQUASH_AMPLITUDE,
            Self::Relu => x.relu(),
        }
    }

    /// `self(conv(x))`, a ReLU fused into the convolution (docs/perf.md).
    fn after_conv(self, conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Relu => conv.forward_act(x, Activation::Relu),
            Self::ScaledTanh => self.apply(&conv.forward(x)?),
        }
    }
}

impl InitScheme {
    /// The distribution of every weight and bias of a unit with `fan_in` inputs.
    fn uniform(self, fan_in: usize) -> Init {
        let bound = match self {
            Self::LeCun1998 => 2.4 / fan_in as f64,
            // kaiming_uniform_(a=√5) for weights and the bias rule of nn.Conv2d/nn.Linear
            // both give ±1/√fan_in.
            Self::Torch => 1.0 / (fan_in as f64).sqrt(),
        };
        Init::Uniform {
            lo: -bound,
            up: bound,
        }
    }
}

/// Brings MNIST-style images to the paper's input: `[N, C, h, w]` intensities in `[0, 1]`
/// with ink at 1 (MNIST's convention), `h, w ≤ 32`, are centred on a 32×32 field and mapped
/// to background [`BACKGROUND`] and ink [`FOREGROUND`].
pub fn paper_input(images: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = images.dims4()?;
    let margin = |len: usize| -> Result<(usize, usize)> {
        if len > INPUT_SIZE {
            candle_core::bail!(
                "LeNet-5 input: {h}×{w} images do not fit in {INPUT_SIZE}×{INPUT_SIZE}"
            )
        }
        let pad = INPUT_SIZE - len;
        Ok((pad / 2, pad - pad / 2))
    };
    let ((top, bottom), (left, right)) = (margin(h)?, margin(w)?);
    images
        .pad_with_zeros(2, top, bottom)?
        .pad_with_zeros(3, left, right)?
        .affine(FOREGROUND - BACKGROUND, BACKGROUND)
}

/// S2 and S4.
#[derive(Debug, Clone)]
enum Subsample {
    /// `nonlinearity(coefficient · Σ_{2×2} x + bias)`, per feature map.
    Trainable {
        coefficient: Tensor,
        bias: Tensor,
        nonlinearity: Nonlinearity,
    },
    Max(MaxPool2d),
}

impl Subsample {
    fn new(config: &LeNetConfig, maps: usize, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(match config.subsampling {
            Subsampling::Trainable => {
                // Each unit has 4 inputs, multiplied by one shared coefficient.
                let init = config.init.uniform(4);
                Self::Trainable {
                    coefficient: vb.get_with_hints(maps, "weight", init)?,
                    bias: vb.get_with_hints(maps, "bias", init)?,
                    nonlinearity: config.nonlinearity,
                }
            }
            Subsampling::MaxPool => Self::Max(MaxPool2d::new(2, 2, 0)?),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Trainable {
                coefficient,
                bias,
                nonlinearity,
            } => {
                // The mean of four values times four is their sum, exactly (powers of two).
                let sum = (x.avg_pool2d(2)? * 4.0)?;
                let per_map = |t: &Tensor| t.reshape((1, (), 1, 1));
                let a = sum
                    .broadcast_mul(&per_map(coefficient)?)?
                    .broadcast_add(&per_map(bias)?)?;
                nonlinearity.apply(&a)
            }
            Self::Max(pool) => pool.forward(x),
        }
    }
}

/// C3.
#[derive(Debug, Clone)]
enum C3 {
    /// Table I: map `j` has its own kernel `c3.j.weight` `[1, n_j, 5, 5]` over its `n_j`
    /// inputs and bias `c3.j.bias` `[1]`, so only the 60 connections are parameters. The
    /// forward pass scatters them into one dense `[16, 6, 5, 5]` kernel (zeros where Table I
    /// has no connection) and runs one convolution: gradients reach only the 60 kernels.
    Table {
        weights: Vec<Tensor>,
        biases: Vec<Tensor>,
        /// For each of the 16 · 6 (map, input) pairs, 0 for "no connection" or 1 + the
        /// row of its kernel among the concatenated kernels.
        scatter: Tensor,
    },
    Full(Conv2d),
}

impl C3 {
    fn new(config: &LeNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(match config.c3 {
            C3Connections::Full => {
                let init = config.init.uniform(C1_MAPS * KERNEL * KERNEL);
                Self::Full(conv(C1_MAPS, C3_MAPS, init, vb)?)
            }
            C3Connections::Table => {
                let mut weights = Vec::with_capacity(C3_MAPS);
                let mut biases = Vec::with_capacity(C3_MAPS);
                let mut scatter = vec![0u32; C3_MAPS * C1_MAPS];
                let mut row = 1;
                for j in 0..C3_MAPS {
                    let inputs = c3_inputs(j);
                    let init = config.init.uniform(inputs.len() * KERNEL * KERNEL);
                    let vb = vb.pp(j);
                    weights.push(vb.get_with_hints(
                        (1, inputs.len(), KERNEL, KERNEL),
                        "weight",
                        init,
                    )?);
                    biases.push(vb.get_with_hints(1, "bias", init)?);
                    for i in inputs {
                        scatter[j * C1_MAPS + i] = row;
                        row += 1;
                    }
                }
                let scatter = Tensor::from_vec(scatter, C3_MAPS * C1_MAPS, vb.device())?;
                Self::Table {
                    weights,
                    biases,
                    scatter,
                }
            }
        })
    }

    /// `act(c3(x))`, the ReLU fused into a full C3's convolution.
    fn forward_act(&self, x: &Tensor, act: Nonlinearity) -> Result<Tensor> {
        match self {
            Self::Full(conv) => act.after_conv(conv, x),
            Self::Table { .. } => act.apply(&self.forward(x)?),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Full(conv) => conv.forward(x),
            Self::Table {
                weights,
                biases,
                scatter,
            } => {
                let taps = KERNEL * KERNEL;
                let first = &weights[0];
                let mut rows = Vec::with_capacity(weights.len() + 1);
                rows.push(Tensor::zeros((1, taps), first.dtype(), first.device())?);
                for w in weights {
                    rows.push(w.reshape(((), taps))?);
                }
                let kernel = Tensor::cat(&rows, 0)?
                    .index_select(scatter, 0)?
                    .reshape((C3_MAPS, C1_MAPS, KERNEL, KERNEL))?;
                let bias = Tensor::cat(biases, 0)?;
                Conv2d::from_parts(kernel, Some(bias), Conv2dConfig::new(KERNEL)).forward(x)
            }
        }
    }
}

/// The output layer.
#[derive(Debug, Clone)]
enum Head {
    /// `[10, 84]`: fixed, not a parameter.
    Rbf {
        prototypes: Tensor,
    },
    Linear(Linear),
}

impl Head {
    fn new(config: &LeNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(match config.output {
            Output::Rbf => Self::Rbf {
                prototypes: rbf_prototypes(vb.dtype(), vb.device())?,
            },
            Output::Linear => {
                let init = config.init.uniform(F6_UNITS);
                Self::Linear(linear(F6_UNITS, config.num_classes, init, vb)?)
            }
        })
    }
}

/// The RBF prototypes as a `[10, 84]` tensor.
pub fn rbf_prototypes(dtype: DType, device: &Device) -> Result<Tensor> {
    let flat: Vec<f32> = PROTOTYPES.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (NUM_PROTOTYPES, PROTOTYPE_LEN), device)?.to_dtype(dtype)
}

fn conv(in_c: usize, out_c: usize, init: Init, vb: VarBuilder<'_>) -> Result<Conv2d> {
    let weight = vb.get_with_hints((out_c, in_c, KERNEL, KERNEL), "weight", init)?;
    let bias = vb.get_with_hints(out_c, "bias", init)?;
    Ok(Conv2d::from_parts(
        weight,
        Some(bias),
        Conv2dConfig::new(KERNEL),
    ))
}

fn linear(in_f: usize, out_f: usize, init: Init, vb: VarBuilder<'_>) -> Result<Linear> {
    let weight = vb.get_with_hints((out_f, in_f), "weight", init)?;
    let bias = vb.get_with_hints(out_f, "bias", init)?;
    Ok(Linear::from_parts(weight, Some(bias)))
}

/// LeNet-5: C1 → S2 → C3 → S4 → C5 → F6 → output, on 32×32 inputs.
///
/// State-dict names: `c1.{weight,bias}` `[6, C, 5, 5]`; `s2.{weight,bias}` `[6]` (the
/// trainable coefficient and bias, when subsampling is trainable); `c3.{weight,bias}`
/// `[16, 6, 5, 5]` for a full C3, or `c3.{j}.weight` `[1, n_j, 5, 5]` and `c3.{j}.bias` `[1]`
/// for each map `j` of Table I; `s4.{weight,bias}` `[16]`; `c5.{weight,bias}`
/// `[120, 16, 5, 5]`; `f6.{weight,bias}` `[84, 120]`; `output.{weight,bias}` `[classes, 84]`
/// for a linear output. The RBF prototypes are constants, not parameters.
///
/// **What `forward` returns.** With a linear output, the logits. With the paper's RBF output,
/// the *negated* RBF penalties `−y_i = −Σ_j (x_j − w_ij)²`: the class whose prototype is
/// nearest gets the largest value, so `argmax` is the paper's prediction, and softmax over
/// them is the paper's posterior `e^{−y_i} / Σ_k e^{−y_k}`. [`LeNet5::rbf_penalties`] gives
/// the penalties themselves, for the paper's training criterion.
#[derive(Debug, Clone)]
pub struct LeNet5 {
    config: LeNetConfig,
    c1: Conv2d,
    s2: Subsample,
    c3: C3,
    s4: Subsample,
    c5: Conv2d,
    f6: Linear,
    output: Head,
}

impl LeNet5 {
    /// Builds the model; parameters come from `vb` (a checkpoint, or a `VarMap` that
    /// initialises them as `config.init` says).
    pub fn new(config: &LeNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        if config.output == Output::Rbf && config.num_classes != NUM_PROTOTYPES {
            candle_core::bail!(
                "LeNet-5: the RBF output has prototypes for the {NUM_PROTOTYPES} digits only, \
                 not {} classes; use Output::Linear",
                config.num_classes
            )
        }
        let init = config.init;
        Ok(Self {
            config: *config,
            c1: conv(
                config.in_channels,
                C1_MAPS,
                init.uniform(config.in_channels * KERNEL * KERNEL),
                vb.pp("c1"),
            )?,
            s2: Subsample::new(config, C1_MAPS, vb.pp("s2"))?,
            c3: C3::new(config, vb.pp("c3"))?,
            s4: Subsample::new(config, C3_MAPS, vb.pp("s4"))?,
            c5: conv(
                C3_MAPS,
                C5_MAPS,
                init.uniform(C3_MAPS * KERNEL * KERNEL),
                vb.pp("c5"),
            )?,
            f6: linear(C5_MAPS, F6_UNITS, init.uniform(C5_MAPS), vb.pp("f6"))?,
            output: Head::new(config, vb.pp("output"))?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LeNetConfig {
        &self.config
    }

    /// F6's states `[N, 84]` from C5's maps `[N, 120, 1, 1]`.
    fn f6(&self, features: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = features.dims4()?;
        if (c, h, w) != (C5_MAPS, 1, 1) {
            candle_core::bail!(
                "LeNet-5: C5 produced [{c}, {h}, {w}] maps where F6 needs [{C5_MAPS}, 1, 1]; \
                 the input must be {INPUT_SIZE}×{INPUT_SIZE}"
            )
        }
        self.config
            .nonlinearity
            .apply(&self.f6.forward(&features.flatten_from(1)?)?)
    }

    /// The RBF penalties `y_i = Σ_j (x_j − w_ij)²` `[N, 10]` of the paper's output layer
    /// (an error for a model with a linear output).
    ///
    /// The paper trains with the MAP criterion of its equation (9),
    /// `E = mean_p ( y_{D_p} + log(e^{−j} + Σ_i e^{−y_i}) )`, `D_p` the correct class and
    /// `j` a positive constant. In terms of `forward`'s output `z = −y` this is the
    /// cross-entropy of a softmax over the ten `z_i` plus one extra, constant logit `−j` for
    /// a "rubbish" class that is never the target; with `j → ∞` it is the plain
    /// cross-entropy of `z`.
    pub fn rbf_penalties(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let features = self.forward_features(xs, train)?;
        self.penalties(&self.f6(&features)?)
    }

    fn penalties(&self, f6: &Tensor) -> Result<Tensor> {
        let Head::Rbf { prototypes } = &self.output else {
            candle_core::bail!("LeNet-5: this model has a linear output, not RBF units")
        };
        // Σ_j (x_j − w_ij)² directly rather than ‖x‖² − 2x·w + ‖w‖²: exact, and cheap at
        // [N, 10, 84].
        f6.unsqueeze(1)?
            .broadcast_sub(&prototypes.unsqueeze(0)?)?
            .sqr()?
            .sum(2)
    }
}

impl Classifier for LeNet5 {
    /// C1 to C5: `[N, 120, 1, 1]` for a 32×32 input.
    fn forward_features(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let act = self.config.nonlinearity;
        let x = act.after_conv(&self.c1, xs)?;
        let x = self.s2.forward(&x)?;
        let x = self.c3.forward_act(&x, act)?;
        let x = self.s4.forward(&x)?;
        act.after_conv(&self.c5, &x)
    }

    /// F6 and the output layer: logits, or negated RBF penalties (see [`LeNet5`]).
    fn forward_head(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        let f6 = self.f6(features)?;
        match &self.output {
            Head::Rbf { .. } => self.penalties(&f6)?.neg(),
            Head::Linear(linear) => linear.forward(&f6),
        }
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }
}

impl ModuleT for LeNet5 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.classify(xs, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use convnets_core::init::var_builder;

    #[test]
    fn c3_map_j_sees_exactly_the_s2_maps_of_table_one() -> Result<()> {
        let dev = Device::Cpu;
        let vb = var_builder(&VarMap::new(), 11, DType::F32, &dev);
        let c3 = C3::new(&LeNetConfig::classic(), vb)?;
        let at_rest = c3.forward(&Tensor::zeros((1, C1_MAPS, 14, 14), DType::F32, &dev)?)?;
        for i in 0..C1_MAPS {
            // S2 maps that are zero except map i.
            let mut maps = vec![0f32; C1_MAPS * 14 * 14];
            for (k, v) in maps[i * 196..(i + 1) * 196].iter_mut().enumerate() {
                *v = 1.0 + (k % 7) as f32;
            }
            let x = Tensor::from_vec(maps, (1, C1_MAPS, 14, 14), &dev)?;
            let response = (c3.forward(&x)? - &at_rest)?.abs()?.sum((0, 2, 3))?;
            let response: Vec<f32> = response.to_vec1()?;
            for (j, r) in response.iter().enumerate() {
                let connected = c3_inputs(j).contains(&i);
                assert_eq!(*r > 0.0, connected, "S2 map {i} → C3 map {j}: {r}");
            }
        }
        Ok(())
    }

    #[test]
    fn trainable_subsampling_is_a_scaled_shifted_sum() -> Result<()> {
        let dev = Device::Cpu;
        let s = Subsample::Trainable {
            coefficient: Tensor::new(&[0.5f32], &dev)?,
            bias: Tensor::new(&[-1f32], &dev)?,
            nonlinearity: Nonlinearity::ScaledTanh,
        };
        let x = Tensor::new(&[1f32, 2., 3., 4.], &dev)?.reshape((1, 1, 2, 2))?;
        let y = s.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
        // 1.7159 · tanh(2/3 · (0.5 · 10 − 1))
        let want = 1.7159 * (2.0f64 / 3.0 * 4.0).tanh();
        assert!((f64::from(y[0]) - want).abs() < 1e-6, "{y:?} vs {want}");
        Ok(())
    }

    #[test]
    fn squashing_maps_plus_minus_one_to_themselves() -> Result<()> {
        let x = Tensor::new(&[-1f32, 0., 1.], &Device::Cpu)?;
        let y: Vec<f32> = Nonlinearity::ScaledTanh.apply(&x)?.to_vec1()?;
        assert!((y[0] + 1.0).abs() < 1e-4 && y[1] == 0.0 && (y[2] - 1.0).abs() < 1e-4);
        Ok(())
    }
}
