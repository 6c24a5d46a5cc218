//! The parts every member of the family is built from, written as data and built by one
//! function each.
//!
//! An Inception block runs several *branches* on the same input and concatenates their
//! outputs along the channels (Szegedy et al. 2014, §4). A [`Branch`] is a name, a chain of
//! [`Op`]s and, for Inception-v3's expanded filter banks, a final fork of two convolutions
//! whose outputs are concatenated too. The blocks of GoogLeNet, Inception-v3, Inception-v4
//! and Inception-ResNet-v2 are tables of branches; they differ in widths, kernels and names,
//! and nowhere in code.

use candle_core::{Result, Tensor};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_core::layers::{
    Activation, AvgPool2d, BatchNormConfig, Conv2d, Conv2dConfig, ConvNormAct, LocalResponseNorm,
    MaxPool2d, TORCH_DEFAULT_INIT,
};

/// What turns a convolution into a `BasicConv2d`, the unit every Inception network is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConvNorm {
    /// Convolution without bias, BatchNorm, ReLU: torchvision and timm. Tensors
    /// `{name}.conv.weight` and `{name}.bn.{weight,bias,running_mean,running_var}`.
    BatchNorm(BatchNormConfig),
    /// Convolution with bias, ReLU: GoogLeNet as published, which predates BatchNorm.
    /// Tensors `{name}.conv.weight` and `{name}.conv.bias`.
    Bias,
}

/// How convolution and linear weights are initialised when a model is built from a `VarMap`
/// to be trained from scratch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightInit {
    /// PyTorch's default, uniform in ±1/√fan_in: what timm leaves on Inception-v4 and
    /// Inception-ResNet-v2.
    TorchDefault,
    /// torchvision's `trunc_normal_(std=σ, a=-2, b=2)` (GoogLeNet: 0.01, Inception-v3: 0.1).
    /// The cut lies 20σ out or further, so a plain normal draws the same distribution.
    TruncNormal(f64),
    /// Caffe's `xavier` filler, uniform in ±√(3/fan_in), as `bvlc_googlenet` was trained.
    Xavier,
}

impl WeightInit {
    /// The candle initialisation hint.
    pub fn init(self) -> Init {
        match self {
            Self::TorchDefault => TORCH_DEFAULT_INIT,
            Self::TruncNormal(std) => Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            Self::Xavier => Init::Kaiming {
                dist: NormalOrUniform::Uniform,
                fan: FanInOut::FanIn,
                non_linearity: NonLinearity::Linear,
            },
        }
    }
}

/// The choices a network makes once for all its layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// The normalisation after every convolution.
    pub norm: ConvNorm,
    /// The initialisation of every convolution and linear weight.
    pub init: WeightInit,
    /// Whether pooling rounds its output size up (`ceil_mode=True`): torchvision's GoogLeNet
    /// and Caffe do; Inception-v3 and later do not.
    pub ceil_mode: bool,
    /// Whether average pooling divides by padded positions too (`count_include_pad`):
    /// torchvision's Inception-v3 does, timm's Inception-v4 and Inception-ResNet-v2 do not.
    pub count_include_pad: bool,
}

/// One layer of a branch, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A `BasicConv2d` to `out` channels (the config's `bias` is decided by [`ConvNorm`]).
    Conv {
        /// Output channels.
        out: usize,
        /// Kernel, stride and padding.
        conv: Conv2dConfig,
    },
    /// Max pooling, square.
    MaxPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on every side.
        padding: usize,
    },
    /// Average pooling, square.
    AvgPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding on every side.
        padding: usize,
    },
}

/// A `BasicConv2d` to `out` channels.
pub const fn conv(out: usize, conv: Conv2dConfig) -> Op {
    Op::Conv { out, conv }
}

/// Max pooling.
pub const fn max_pool(kernel: usize, stride: usize, padding: usize) -> Op {
    Op::MaxPool {
        kernel,
        stride,
        padding,
    }
}

/// Average pooling.
pub const fn avg_pool(kernel: usize, stride: usize, padding: usize) -> Op {
    Op::AvgPool {
        kernel,
        stride,
        padding,
    }
}

/// How the layers of a branch are named in the reference state dict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// An `nn.Sequential`, or a bare module when the branch is one layer: `branch1`,
    /// `branch2.0`, `branch2.1`, indices counting every layer, pools included (torchvision's
    /// GoogLeNet, timm's Inception-v4 and Inception-ResNet-v2).
    Sequential,
    /// Attributes numbered over the convolutions only, from `first`: `branch5x5_1`,
    /// `branch5x5_2` (torchvision's Inception-v3, from 1), `branch1_0` (timm's Inception-v4 C,
    /// from 0). A fork's pair takes the next number with `a` and `b`; a branch of a single
    /// convolution is the bare name (`branch_pool`).
    Numbered {
        /// The first number.
        first: usize,
    },
}

/// One branch of an Inception block, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The module name (or the prefix of the attribute names) in the reference.
    pub name: &'static str,
    /// How its layers are named.
    pub naming: Naming,
    /// The chain of layers.
    pub ops: Vec<Op>,
    /// Two layers applied side by side to the chain's output, their outputs concatenated
    /// (Inception-v3's 1×3/3×1 pairs, Szegedy et al. 2016 fig. 7).
    pub fork: Option<[Op; 2]>,
}

impl Branch {
    /// A branch named as an `nn.Sequential`.
    pub fn sequential(name: &'static str, ops: &[Op]) -> Self {
        Self {
            name,
            naming: Naming::Sequential,
            ops: ops.to_vec(),
            fork: None,
        }
    }

    /// A branch of attributes numbered from `first`.
    pub fn numbered(name: &'static str, first: usize, ops: &[Op]) -> Self {
        Self {
            name,
            naming: Naming::Numbered { first },
            ops: ops.to_vec(),
            fork: None,
        }
    }

    /// The same branch ending in a fork.
    pub fn fork(mut self, a: Op, b: Op) -> Self {
        self.fork = Some([a, b]);
        self
    }

    /// The module name of each layer of the chain and of the fork.
    fn layer_names(&self) -> Result<(Vec<String>, [String; 2])> {
        let name = self.name;
        match self.naming {
            Naming::Sequential => {
                if self.fork.is_some() {
                    candle_core::bail!("branch `{name}`: an nn.Sequential cannot end in a fork")
                }
                let names = match self.ops.len() {
                    1 => vec![name.to_string()],
                    _ => (0..self.ops.len()).map(|i| format!("{name}.{i}")).collect(),
                };
                Ok((names, Default::default()))
            }
            Naming::Numbered { first } => {
                let convs = self
                    .ops
                    .iter()
                    .filter(|op| matches!(op, Op::Conv { .. }))
                    .count();
                let bare = convs == 1 && self.fork.is_none();
                let mut n = first;
                let names = self
                    .ops
                    .iter()
                    .map(|op| match op {
                        Op::Conv { .. } if bare => name.to_string(),
                        Op::Conv { .. } => {
                            let numbered = format!("{name}_{n}");
                            n += 1;
                            numbered
                        }
                        // Pools are functional (`F.avg_pool2d`) there: they own no tensors.
                        _ => String::new(),
                    })
                    .collect();
                Ok((names, [format!("{name}_{n}a"), format!("{name}_{n}b")]))
            }
        }
    }
}

/// A `BasicConv2d` under `vb`: `conv` and, with BatchNorm, `bn`.
pub(crate) fn basic_conv(
    in_channels: usize,
    out_channels: usize,
    conv: Conv2dConfig,
    norm: ConvNorm,
    init: WeightInit,
    vb: VarBuilder<'_>,
) -> Result<ConvNormAct> {
    match norm {
        ConvNorm::BatchNorm(bn) => ConvNormAct::with_init(
            in_channels,
            out_channels,
            conv,
            init.init(),
            bn,
            Activation::Relu,
            vb.pp("conv"),
            vb.pp("bn"),
        ),
        ConvNorm::Bias => {
            let config = Conv2dConfig { bias: true, ..conv };
            let conv = Conv2d::with_init(
                in_channels,
                out_channels,
                config,
                init.init(),
                vb.pp("conv"),
            )?;
            Ok(ConvNormAct::without_norm(conv, Activation::Relu))
        }
    }
}

/// A layer of a branch or of the trunk.
#[derive(Debug, Clone)]
pub(crate) enum Layer {
    Conv(ConvNormAct),
    MaxPool(MaxPool2d),
    AvgPool(AvgPool2d),
    Lrn(LocalResponseNorm),
}

impl Layer {
    /// Builds `op` for `in_channels` inputs; returns the layer and its output channels.
    pub(crate) fn build(
        op: &Op,
        in_channels: usize,
        style: &Style,
        vb: VarBuilder<'_>,
    ) -> Result<(Self, usize)> {
        Ok(match *op {
            Op::Conv { out, conv } => (
                Self::Conv(basic_conv(
                    in_channels,
                    out,
                    conv,
                    style.norm,
                    style.init,
                    vb,
                )?),
                out,
            ),
            Op::MaxPool {
                kernel,
                stride,
                padding,
            } => {
                let pool = MaxPool2d::new(kernel, stride, padding)?;
                let pool = if style.ceil_mode {
                    pool.ceil_mode()
                } else {
                    pool
                };
                (Self::MaxPool(pool), in_channels)
            }
            Op::AvgPool {
                kernel,
                stride,
                padding,
            } => {
                let mut pool = AvgPool2d::new(kernel, stride, padding)?;
                if style.ceil_mode {
                    pool = pool.ceil_mode();
                }
                if !style.count_include_pad {
                    pool = pool.exclude_pad();
                }
                (Self::AvgPool(pool), in_channels)
            }
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Self::Conv(c) => c.forward_t(x, train),
            Self::MaxPool(p) => p.forward(x),
            Self::AvgPool(p) => p.forward(x),
            Self::Lrn(n) => n.forward(x),
        }
    }

    pub(crate) fn fold_batch_norm(&mut self) -> Result<()> {
        match self {
            Self::Conv(c) => c.fold_batch_norm(),
            _ => Ok(()),
        }
    }
}

/// A branch, built.
#[derive(Debug, Clone)]
struct BranchLayers {
    chain: Vec<Layer>,
    fork: Option<[Layer; 2]>,
}

impl BranchLayers {
    fn build(
        branch: &Branch,
        in_channels: usize,
        style: &Style,
        vb: &VarBuilder<'_>,
    ) -> Result<(Self, usize)> {
        let (names, fork_names) = branch.layer_names()?;
        let mut channels = in_channels;
        let mut chain = Vec::with_capacity(branch.ops.len());
        for (op, name) in branch.ops.iter().zip(&names) {
            let (layer, out) = Layer::build(op, channels, style, vb.pp(name))?;
            chain.push(layer);
            channels = out;
        }
        let fork = match &branch.fork {
            None => None,
            Some([a, b]) => {
                let (a, ca) = Layer::build(a, channels, style, vb.pp(&fork_names[0]))?;
                let (b, cb) = Layer::build(b, channels, style, vb.pp(&fork_names[1]))?;
                channels = ca + cb;
                Some([a, b])
            }
        };
        Ok((Self { chain, fork }, channels))
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = x.clone();
        for layer in &self.chain {
            y = layer.forward(&y, train)?;
        }
        match &self.fork {
            None => Ok(y),
            Some([a, b]) => Tensor::cat(&[a.forward(&y, train)?, b.forward(&y, train)?], 1),
        }
    }

    fn layers_mut(&mut self) -> impl Iterator<Item = &mut Layer> {
        self.chain.iter_mut().chain(self.fork.iter_mut().flatten())
    }
}

/// Branches over the same input, concatenated along the channels in the order given.
#[derive(Debug, Clone)]
pub(crate) struct Mixed {
    branches: Vec<BranchLayers>,
}

impl Mixed {
    /// Builds the branches under `vb`; returns the block and its output channels.
    pub(crate) fn build(
        branches: &[Branch],
        in_channels: usize,
        style: &Style,
        vb: &VarBuilder<'_>,
    ) -> Result<(Self, usize)> {
        let mut built = Vec::with_capacity(branches.len());
        let mut channels = 0;
        for branch in branches {
            let (b, c) = BranchLayers::build(branch, in_channels, style, vb)?;
            built.push(b);
            channels += c;
        }
        Ok((Self { branches: built }, channels))
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let outs = self
            .branches
            .iter()
            .map(|b| b.forward(x, train))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&outs, 1)
    }

    pub(crate) fn fold_batch_norm(&mut self) -> Result<()> {
        for layer in self.branches.iter_mut().flat_map(BranchLayers::layers_mut) {
            layer.fold_batch_norm()?;
        }
        Ok(())
    }
}

/// Inception-ResNet's residual block: `act(x + scale · conv2d(mixed(x)))`, where the 1×1
/// `conv2d` (with bias, without normalisation) restores the input's width and `scale` damps
/// the residual for stability (Szegedy et al. 2016, §3.3).
#[derive(Debug, Clone)]
pub(crate) struct Residual {
    mixed: Mixed,
    up: Conv2d,
    scale: f64,
    act: Activation,
}

impl Residual {
    pub(crate) fn build(
        branches: &[Branch],
        scale: f64,
        relu: bool,
        channels: usize,
        style: &Style,
        vb: &VarBuilder<'_>,
    ) -> Result<Self> {
        let (mixed, width) = Mixed::build(branches, channels, style, vb)?;
        let up = Conv2d::with_init(
            width,
            channels,
            Conv2dConfig::new(1),
            style.init.init(),
            vb.pp("conv2d"),
        )?;
        let act = if relu {
            Activation::Relu
        } else {
            Activation::Identity
        };
        Ok(Self {
            mixed,
            up,
            scale,
            act,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let residual = self.up.forward(&self.mixed.forward(x, train)?)?;
        self.act.apply(&((residual * self.scale)? + x)?)
    }

    pub(crate) fn fold_batch_norm(&mut self) -> Result<()> {
        self.mixed.fold_batch_norm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(b: &Branch) -> (Vec<String>, [String; 2]) {
        b.layer_names().unwrap()
    }

    #[test]
    fn sequential_branches_count_every_layer() {
        let c1 = conv(8, Conv2dConfig::new(1));
        let b = Branch::sequential("branch4", &[max_pool(3, 1, 1), c1]);
        assert_eq!(names(&b).0, ["branch4.0", "branch4.1"]);
        assert_eq!(names(&Branch::sequential("branch1", &[c1])).0, ["branch1"]);
        assert!(
            Branch::sequential("b", &[c1])
                .fork(c1, c1)
                .layer_names()
                .is_err()
        );
    }

    #[test]
    fn numbered_branches_count_convolutions_and_name_the_fork() {
        let c1 = conv(8, Conv2dConfig::new(1));
        // torchvision's Inception-v3 E: branch3x3dbl_1, _2, then _3a / _3b.
        let b = Branch::numbered("branch3x3dbl", 1, &[c1, c1]).fork(c1, c1);
        let (chain, fork) = names(&b);
        assert_eq!(chain, ["branch3x3dbl_1", "branch3x3dbl_2"]);
        assert_eq!(fork, ["branch3x3dbl_3a", "branch3x3dbl_3b"]);
        // timm's Inception-v4 C: branch1_0, then branch1_1a / branch1_1b.
        let (chain, fork) = names(&Branch::numbered("branch1", 0, &[c1]).fork(c1, c1));
        assert_eq!(chain, ["branch1_0"]);
        assert_eq!(fork, ["branch1_1a", "branch1_1b"]);
        // A pool and one convolution: the convolution is the branch.
        let (chain, _) = names(&Branch::numbered(
            "branch_pool",
            1,
            &[avg_pool(3, 1, 1), c1],
        ));
        assert_eq!(chain[1], "branch_pool");
    }
}
