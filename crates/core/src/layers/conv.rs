//! Convolutions: `torch.nn.Conv2d` with the kernels and paddings classic nets use, and the
//! conv + BatchNorm + ReLU block with BatchNorm folding.

use candle_core::{DType, Result, Tensor};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::{Init, ModuleT, VarBuilder};

use super::norm::{BatchNorm2d, BatchNormConfig};
use crate::kernels::{self, conv::Epilogue};

/// The geometry of a convolution. Construction is `const`, so family configs can hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Kernel height and width (Inception-v3 uses 1×7 and 7×1).
    pub kernel: (usize, usize),
    /// Stride, the same along both axes.
    pub stride: usize,
    /// Zero padding on top/bottom and left/right.
    pub padding: (usize, usize),
    /// Dilation, the same along both axes.
    pub dilation: usize,
    /// Number of groups (2 in the paper AlexNet, 32 in ResNeXt).
    pub groups: usize,
    /// Whether the convolution has a bias (not when a BatchNorm follows).
    pub bias: bool,
}

impl Conv2dConfig {
    /// A square `k × k` kernel, stride 1, no padding, with bias.
    pub const fn new(k: usize) -> Self {
        Self::rect(k, k)
    }

    /// A `kh × kw` kernel, stride 1, no padding, with bias.
    pub const fn rect(kh: usize, kw: usize) -> Self {
        Self {
            kernel: (kh, kw),
            stride: 1,
            padding: (0, 0),
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }

    /// The same with stride `s`.
    pub const fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }

    /// The same with padding `p` on every side.
    pub const fn padding(mut self, p: usize) -> Self {
        self.padding = (p, p);
        self
    }

    /// The same with padding `ph` on top/bottom and `pw` on left/right.
    pub const fn padding_hw(mut self, ph: usize, pw: usize) -> Self {
        self.padding = (ph, pw);
        self
    }

    /// The same with `kernel / 2` padding, which keeps the size at stride 1 for odd kernels.
    pub const fn same(mut self) -> Self {
        self.padding = (self.kernel.0 / 2, self.kernel.1 / 2);
        self
    }

    /// The same with `g` groups.
    pub const fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// The same with dilation `d`.
    pub const fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }

    /// The same without a bias.
    pub const fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }

    /// The output height and width for an input of `h × w`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let axis = |len: usize, k: usize, p: usize| {
            (len + 2 * p - self.dilation * (k - 1) - 1) / self.stride + 1
        };
        (
            axis(h, self.kernel.0, self.padding.0),
            axis(w, self.kernel.1, self.padding.1),
        )
    }

    /// How many trailing rows and columns of the padded input no window reaches: what a
    /// stride leaves over (PyTorch's `output_padding` when it transposes the convolution).
    fn unread(&self, h: usize, w: usize) -> (usize, usize) {
        let axis = |len: usize, k: usize, p: usize| {
            (len + 2 * p)
                .checked_sub(self.dilation * (k - 1) + 1)
                .map_or(0, |n| n % self.stride)
        };
        (
            axis(h, self.kernel.0, self.padding.0),
            axis(w, self.kernel.1, self.padding.1),
        )
    }
}

/// PyTorch's default initialisation of convolution and linear weights,
/// `kaiming_uniform_(a=sqrt(5))`: uniform in `±1/sqrt(fan_in)`.
pub const TORCH_DEFAULT_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Uniform,
    fan: FanInOut::FanIn,
    non_linearity: NonLinearity::ExplicitGain(0.577_350_269_189_625_8), // sqrt(2 / (1 + 5))
};

/// torchvision's ResNet/VGG initialisation, `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
pub const KAIMING_NORMAL_FAN_OUT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

/// `torch.nn.Conv2d`, with non-square kernels and paddings.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv2dConfig,
    /// The weight transformed for the inference kernel's F(2×2, 3×3), made on first use;
    /// `None` where the direct sum is asked for ([`Conv2d::without_winograd`]).
    winograd: Option<kernels::winograd::Cache>,
}

impl Conv2d {
    /// Reads `weight` (`[out, in/groups, kh, kw]`) and, if configured, `bias`; a `VarMap`
    /// initialises them as PyTorch does by default.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        config: Conv2dConfig,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        Self::with_init(in_channels, out_channels, config, TORCH_DEFAULT_INIT, vb)
    }

    /// As [`Conv2d::new`] with another initialisation for the weight (the bias, if any, keeps
    /// PyTorch's default; families that zero it do so themselves).
    pub fn with_init(
        in_channels: usize,
        out_channels: usize,
        config: Conv2dConfig,
        init: Init,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let g = config.groups;
        if g == 0 || !in_channels.is_multiple_of(g) || !out_channels.is_multiple_of(g) {
            candle_core::bail!(
                "Conv2d {}: {in_channels} → {out_channels} channels cannot be split in {g} groups",
                vb.prefix()
            )
        }
        let (kh, kw) = config.kernel;
        let weight = vb.get_with_hints((out_channels, in_channels / g, kh, kw), "weight", init)?;
        let bias = if config.bias {
            let bound = 1.0 / ((in_channels / g * kh * kw) as f64).sqrt();
            Some(vb.get_with_hints(
                out_channels,
                "bias",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            config,
            winograd: Some(Default::default()),
        })
    }

    /// A convolution from explicit tensors (used by BatchNorm folding).
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, config: Conv2dConfig) -> Self {
        Self {
            weight,
            bias,
            config,
            winograd: Some(Default::default()),
        }
    }

    /// The same convolution computed as the direct sum where the CPU inference kernel
    /// would use Winograd's F(2×2, 3×3) (3×3, stride 1, 32 channels and more): slower, with
    /// the rounding of the plain sum (both are within the parity tolerance), for
    /// benchmarks and comparisons.
    pub fn without_winograd(self) -> Self {
        Self {
            winograd: None,
            ..self
        }
    }

    /// The weight, `[out, in/groups, kh, kw]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The geometry.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// Applies the convolution to an `[N, C, H, W]` tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, Activation::Identity)
    }

    /// `act(conv(x) + bias)`: on the CPU inference path, the activation is applied to the
    /// output rows while they are in cache rather than in a pass of its own.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        self.forward_fused(x, Tail::act(act), false)
    }

    /// `tail(conv(x) + bias)`, in one pass on the CPU inference path (f32, nothing tracking
    /// gradients, BatchNorm in evaluation); with the ordinary operations otherwise.
    fn forward_fused(&self, x: &Tensor, tail: Tail<'_>, train: bool) -> Result<Tensor> {
        if let Some(epilogue) = self.epilogue(x, &tail, train)? {
            return kernels::conv::conv2d(
                x,
                &self.weight,
                &self.config,
                &epilogue,
                self.winograd.as_ref(),
            );
        }
        // Without a norm, a ReLU is fused into the training convolution where it runs.
        let fuse_relu = tail.norm.is_none() && tail.act == Activation::Relu;
        let (mut y, fused) = self.forward_unfused(x, fuse_relu)?;
        y = match tail.norm {
            Some(norm) => norm.forward_act(&y, train, tail.act)?,
            None if fused => y,
            None => tail.act.apply(&y)?,
        };
        if let Some(r) = tail.residual {
            let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
            y = if tail.act_after == Activation::Relu && f32_cpu(&y) && f32_cpu(r) {
                kernels::residual::add_relu(&y, r)?
            } else {
                tail.act_after.apply(&(y + r)?)?
            };
        }
        Ok(y)
    }

    /// The fused kernel's epilogue for `tail`, or `None` when the kernel does not apply.
    fn epilogue(&self, x: &Tensor, tail: &Tail<'_>, train: bool) -> Result<Option<Epilogue>> {
        let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32 && !t.track_op();
        // A counting pass takes the plain path, where the convolution is counted.
        let applies = !crate::flops::counting()
            && f32_cpu(x)
            && f32_cpu(&self.weight)
            && self.bias.as_ref().is_none_or(f32_cpu)
            && tail.residual.is_none_or(f32_cpu)
            && match tail.norm {
                None => true,
                Some(norm) => !train && !norm.tracks_op(),
            };
        if !applies {
            return Ok(None);
        }
        let bias = match &self.bias {
            Some(b) => Some(b.to_dtype(DType::F64)?),
            None => None,
        };
        // bn(conv + b) = conv·scale + (b·scale + shift).
        let (scale, shift) = match (tail.norm, bias) {
            (Some(norm), bias) => {
                let (scale, shift) = norm.scale_shift()?;
                let shift = match bias {
                    Some(b) => ((b * &scale)? + shift)?,
                    None => shift,
                };
                (Some(scale), Some(shift))
            }
            (None, bias) => (None, bias),
        };
        let to_vec = |t: Option<Tensor>| -> Result<Option<Vec<f32>>> {
            t.map(|t| t.to_dtype(DType::F32)?.to_vec1::<f32>())
                .transpose()
        };
        Ok(Some(Epilogue {
            scale: to_vec(scale)?,
            shift: to_vec(shift)?,
            act: Some(tail.act),
            residual: tail.residual.cloned(),
            act_after: tail.residual.map(|_| tail.act_after),
        }))
    }

    /// `conv(x) + bias`, and whether a ReLU was applied too (asked by `relu`, done where the
    /// training kernel runs).
    fn forward_unfused(&self, x: &Tensor, relu: bool) -> Result<(Tensor, bool)> {
        let c = &self.config;
        if let Some(zeros) =
            crate::flops::conv2d(x, &self.weight, c.groups, |h, w| c.output_size(h, w))?
        {
            return Ok((zeros, false));
        }
        let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
        if f32_cpu(x) && f32_cpu(&self.weight) && self.bias.as_ref().is_none_or(f32_cpu) {
            // Training on CPU: a backward pass through candle's kernel would be a scalar loop.
            let y = kernels::conv_grad::conv2d(x, &self.weight, self.bias.as_ref(), c, relu)?;
            return Ok((y, relu));
        }
        let y = {
            // candle pads both axes alike, and its backward pass sizes the input's gradient
            // by what the stride leaves over along the height alone (a strided convolution of
            // a 9 × 8 input gets a gradient 7 wide). Where the axes differ in either, pad
            // explicitly and drop what no window reads: the gradient of both is exact.
            let (ph, pw) = c.padding;
            let (h, w) = (x.dim(2)?, x.dim(3)?);
            let (uh, uw) = c.unread(h, w);
            let (x, padding) = if ph == pw && uh == uw {
                (x.clone(), ph)
            } else {
                let x = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
                let x = x.narrow(2, 0, h + 2 * ph - uh)?;
                (x.narrow(3, 0, w + 2 * pw - uw)?, 0)
            };
            x.conv2d(&self.weight, padding, c.stride, c.dilation, c.groups)?
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
            None => y,
        };
        Ok((y, false))
    }
}

/// What follows a convolution: `act_after(act(norm(y)) + residual)`.
#[derive(Debug, Clone, Copy)]
struct Tail<'a> {
    norm: Option<&'a BatchNorm2d>,
    act: Activation,
    residual: Option<&'a Tensor>,
    act_after: Activation,
}

impl Tail<'_> {
    fn act(act: Activation) -> Self {
        Self {
            norm: None,
            act,
            residual: None,
            act_after: Activation::Identity,
        }
    }
}

impl ModuleT for Conv2d {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}

/// The activation that ends a [`ConvNormAct`] block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// No activation (the last BatchNorm of a residual branch, a downsample projection).
    Identity,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Identity => Ok(x.clone()),
            Self::Relu => x.relu(),
        }
    }
}

/// A convolution, an optional BatchNorm and an activation: torchvision's `BasicConv2d`
/// (GoogLeNet, Inception), a VGG-BN stage, a ResNet `convN`/`bnN` pair.
///
/// The convolution and the BatchNorm take their own [`VarBuilder`]s, because their names
/// differ between families (`conv`/`bn`, `conv1`/`bn1`, `features.0`/`features.1`).
#[derive(Debug, Clone)]
pub struct ConvNormAct {
    conv: Conv2d,
    norm: Option<BatchNorm2d>,
    act: Activation,
}

impl ConvNormAct {
    /// Conv (without bias) → BatchNorm → `act`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        conv: Conv2dConfig,
        norm: BatchNormConfig,
        act: Activation,
        vb_conv: VarBuilder<'_>,
        vb_norm: VarBuilder<'_>,
    ) -> Result<Self> {
        Self::with_init(
            in_channels,
            out_channels,
            conv,
            TORCH_DEFAULT_INIT,
            norm,
            act,
            vb_conv,
            vb_norm,
        )
    }

    /// As [`ConvNormAct::new`] with another initialisation for the convolution's weight.
    #[allow(clippy::too_many_arguments)]
    pub fn with_init(
        in_channels: usize,
        out_channels: usize,
        conv: Conv2dConfig,
        init: Init,
        norm: BatchNormConfig,
        act: Activation,
        vb_conv: VarBuilder<'_>,
        vb_norm: VarBuilder<'_>,
    ) -> Result<Self> {
        let conv = Conv2d::with_init(in_channels, out_channels, conv.no_bias(), init, vb_conv)?;
        let norm = BatchNorm2d::new(out_channels, norm, vb_norm)?;
        Ok(Self {
            conv,
            norm: Some(norm),
            act,
        })
    }

    /// A block from its parts: `conv` (with or without bias), an optional BatchNorm over its
    /// output, and `act` (VGG-BN's convolutions keep their bias before the BatchNorm).
    pub fn from_parts(conv: Conv2d, norm: Option<BatchNorm2d>, act: Activation) -> Self {
        Self { conv, norm, act }
    }

    /// A convolution (with the bias its config asks for) → `act`, without normalisation.
    pub fn without_norm(conv: Conv2d, act: Activation) -> Self {
        Self {
            conv,
            norm: None,
            act,
        }
    }

    /// The convolution.
    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// The BatchNorm, unless it has been folded.
    pub fn norm(&self) -> Option<&BatchNorm2d> {
        self.norm.as_ref()
    }

    /// `act(self(x) + residual)`, the end of a residual block (`residual` has the output's
    /// shape): on the CPU inference path the sum and the activation are applied to the
    /// output rows while they are in cache.
    pub fn forward_residual_t(
        &self,
        x: &Tensor,
        residual: &Tensor,
        act: Activation,
        train: bool,
    ) -> Result<Tensor> {
        let tail = Tail {
            norm: self.norm.as_ref(),
            act: self.act,
            residual: Some(residual),
            act_after: act,
        };
        self.conv.forward_fused(x, tail, train)
    }

    /// Folds the BatchNorm into the convolution, for inference: afterwards the block computes
    /// in one convolution what it computed in evaluation mode before. A folded block has no
    /// batch statistics to train with.
    pub fn fold_batch_norm(&mut self) -> Result<()> {
        if let Some(norm) = self.norm.take() {
            let (w, b) = norm.fold_into(self.conv.weight(), self.conv.bias())?;
            let config = Conv2dConfig {
                bias: true,
                ..self.conv.config
            };
            let folded = Conv2d::from_parts(w, Some(b), config);
            self.conv = match self.conv.winograd {
                Some(_) => folded,
                None => folded.without_winograd(),
            };
        }
        Ok(())
    }
}

impl ModuleT for ConvNormAct {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let tail = Tail {
            norm: self.norm.as_ref(),
            ..Tail::act(self.act)
        };
        self.conv.forward_fused(x, tail, train)
    }
}
