//! The network: one builder over [`ResNetConfig`], module names torchvision's state-dict keys.

use candle_core::{Result, Tensor};
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_core::Classifier;
use convnets_core::layers::{
    Activation, BatchNormConfig, Conv2dConfig, ConvNormAct, KAIMING_NORMAL_FAN_OUT, Linear,
    MaxPool2d, global_avg_pool,
};

use crate::config::{BlockKind, BottleneckStride, ResNetConfig, Shortcut};

/// PyTorch's BatchNorm defaults (eps 1e-5, momentum 0.1), which every ResNet uses.
const BN: BatchNormConfig = BatchNormConfig::new();

/// A convolution, its BatchNorm and an activation, initialised for training from scratch as
/// torchvision does: convolutions `kaiming_normal_(mode="fan_out", nonlinearity="relu")`,
/// BatchNorm scale 1 and shift 0.
fn conv_bn(
    in_channels: usize,
    out_channels: usize,
    conv: Conv2dConfig,
    act: Activation,
    vb_conv: VarBuilder<'_>,
    vb_bn: VarBuilder<'_>,
) -> Result<ConvNormAct> {
    ConvNormAct::with_init(
        in_channels,
        out_channels,
        conv,
        KAIMING_NORMAL_FAN_OUT,
        BN,
        act,
        vb_conv,
        vb_bn,
    )
}

/// What a block adds to its residual branch, once built.
#[derive(Debug, Clone)]
enum ShortcutPath {
    /// The block keeps the shape: `x` itself.
    Identity,
    /// Option B: `downsample.0` (1×1 convolution with the block's stride), `downsample.1`.
    Projection(ConvNormAct),
    /// Option A: every `stride`-th row and column of `x`, with `before` and `after` zero
    /// channels around its own.
    ZeroPad {
        stride: usize,
        before: usize,
        after: usize,
    },
    /// A plain net's block: nothing.
    None,
}

impl ShortcutPath {
    fn new(
        cfg: &ResNetConfig,
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let reshapes = stride != 1 || in_channels != out_channels;
        Ok(match (cfg.shortcut, reshapes) {
            (Shortcut::None, _) => Self::None,
            (_, false) => Self::Identity,
            (Shortcut::Projection, true) => Self::Projection(conv_bn(
                in_channels,
                out_channels,
                Conv2dConfig::new(1).stride(stride),
                Activation::Identity,
                vb.pp("downsample.0"),
                vb.pp("downsample.1"),
            )?),
            (Shortcut::ZeroPad, true) => {
                let Some(extra) = out_channels.checked_sub(in_channels) else {
                    candle_core::bail!(
                        "{}: a zero-padded shortcut cannot reduce {in_channels} channels to \
                         {out_channels}",
                        vb.prefix()
                    )
                };
                Self::ZeroPad {
                    stride,
                    before: extra / 2,
                    after: extra - extra / 2,
                }
            }
        })
    }

    /// The shortcut's contribution, `None` for a plain block.
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Option<Tensor>> {
        match self {
            Self::Identity => Ok(Some(x.clone())),
            Self::Projection(p) => p.forward_t(x, train).map(Some),
            Self::ZeroPad {
                stride,
                before,
                after,
            } => {
                // `x[:, :, ::s, ::s]`: the same ceil(h / s) rows as the branch's strided
                // convolution with padding 1 produces.
                let x = if *stride == 1 {
                    x.clone()
                } else {
                    let every = |len: usize| {
                        Tensor::arange_step(0u32, len as u32, *stride as u32, x.device())
                    };
                    x.index_select(&every(x.dim(2)?)?, 2)?
                        .index_select(&every(x.dim(3)?)?, 3)?
                };
                x.pad_with_zeros(1, *before, *after).map(Some)
            }
            Self::None => Ok(None),
        }
    }

    fn fold_batch_norm(&mut self) -> Result<()> {
        match self {
            Self::Projection(p) => p.fold_batch_norm(),
            _ => Ok(()),
        }
    }
}

/// A residual unit, basic or bottleneck: `relu(branch(x) + shortcut(x))`, or
/// `relu(branch(x))` in a plain net. Modules `conv1`/`bn1` … `conv3`/`bn3`, `downsample`.
#[derive(Debug, Clone)]
struct Block {
    /// The residual branch; every convolution but the last ends in a ReLU.
    branch: Vec<ConvNormAct>,
    shortcut: ShortcutPath,
}

impl Block {
    fn new(
        cfg: &ResNetConfig,
        in_channels: usize,
        planes: usize,
        stride: usize,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let out_channels = planes * cfg.block.expansion();
        let k3 = Conv2dConfig::new(3).padding(1);
        let k1 = Conv2dConfig::new(1);
        // (input channels, output channels, geometry) of conv1, conv2[, conv3].
        let convs = match cfg.block {
            BlockKind::Basic => vec![
                (in_channels, planes, k3.stride(stride)),
                (planes, planes, k3),
            ],
            BlockKind::Bottleneck => {
                let width = cfg.bottleneck_width(planes);
                let (s1, s3) = match cfg.bottleneck_stride {
                    BottleneckStride::Conv3x3 => (1, stride),
                    BottleneckStride::Conv1x1 => (stride, 1),
                };
                vec![
                    (in_channels, width, k1.stride(s1)),
                    (width, width, k3.stride(s3).groups(cfg.groups)),
                    (width, out_channels, k1),
                ]
            }
        };
        let n = convs.len();
        let mut branch = Vec::with_capacity(n);
        for (i, (cin, cout, geometry)) in convs.into_iter().enumerate() {
            let last = i + 1 == n;
            let vb_bn = vb.pp(format!("bn{}", i + 1));
            if last && cfg.zero_init_residual {
                // A VarMap hands out an existing variable unchanged, so creating the scale
                // here, as zeros, decides its initial value; loading from a checkpoint is
                // unaffected (the tensor is simply read twice).
                vb_bn.get_with_hints(cout, "weight", Init::Const(0.0))?;
            }
            let act = if last {
                Activation::Identity
            } else {
                Activation::Relu
            };
            branch.push(conv_bn(
                cin,
                cout,
                geometry,
                act,
                vb.pp(format!("conv{}", i + 1)),
                vb_bn,
            )?);
        }
        let shortcut = ShortcutPath::new(cfg, in_channels, out_channels, stride, vb)?;
        Ok(Self { branch, shortcut })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let Some((last, first)) = self.branch.split_last() else {
            candle_core::bail!("a residual block without convolutions")
        };
        let mut y = x.clone();
        for conv in first {
            y = conv.forward_t(&y, train)?;
        }
        match self.shortcut.forward_t(x, train)? {
            // relu(bn(conv(y)) + s), in one pass over the output when inferring on CPU.
            Some(s) => last.forward_residual_t(&y, &s, Activation::Relu, train),
            None => last.forward_t(&y, train)?.relu(),
        }
    }

    fn fold_batch_norm(&mut self) -> Result<()> {
        for conv in &mut self.branch {
            conv.fold_batch_norm()?;
        }
        self.shortcut.fold_batch_norm()
    }
}

/// Images per evaluation task on the CPU ([`Classifier::eval_group`]).
const EVAL_GROUP: usize = 8;
/// The map size (pixels) from which blocks run on a group of images rather than image by
/// image ([`Classifier::forward_features_group`]).
const SMALL_MAP: usize = 14 * 14;

/// A ResNet: stem (`conv1`, `bn1`, ReLU, max pool), stages `layer1` … `layerN` of residual
/// blocks, global average pooling and the linear classifier `fc`.
///
/// Built from a [`ResNetConfig`] through a [`VarBuilder`] whose names are torchvision's
/// state-dict keys, so a torchvision or timm checkpoint loads without renaming.
#[derive(Debug, Clone)]
pub struct ResNet {
    config: ResNetConfig,
    stem: ConvNormAct,
    stem_pool: Option<MaxPool2d>,
    stages: Vec<Vec<Block>>,
    fc: Linear,
}

impl ResNet {
    /// Builds the network `config` describes, reading (or, from a `VarMap`, initialising)
    /// its parameters through `vb`.
    pub fn new(config: &ResNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        if let Err(e) = config.validate() {
            candle_core::bail!("ResNet: invalid configuration: {e}")
        }
        let stem_cfg = config.stem;
        let stem = conv_bn(
            config.in_channels,
            stem_cfg.width,
            Conv2dConfig::new(stem_cfg.kernel)
                .stride(stem_cfg.stride)
                .same(),
            Activation::Relu,
            vb.pp("conv1"),
            vb.pp("bn1"),
        )?;
        let stem_pool = if stem_cfg.max_pool {
            Some(MaxPool2d::new(3, 2, 1)?)
        } else {
            None
        };

        let mut channels = stem_cfg.width;
        let mut stages = Vec::with_capacity(config.depths.len());
        for (i, (&depth, &planes)) in config.depths.iter().zip(config.widths).enumerate() {
            let vb = vb.pp(format!("layer{}", i + 1));
            let mut blocks = Vec::with_capacity(depth);
            for j in 0..depth {
                // Every stage but the first halves the resolution in its first block.
                let stride = if i > 0 && j == 0 { 2 } else { 1 };
                blocks.push(Block::new(config, channels, planes, stride, vb.pp(j))?);
                channels = planes * config.block.expansion();
            }
            stages.push(blocks);
        }
        let fc = Linear::new(channels, config.num_classes, vb.pp("fc"))?;
        Ok(Self {
            config: *config,
            stem,
            stem_pool,
            stages,
            fc,
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }
}

impl Classifier for ResNet {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = self.stem.forward_t(xs, train)?;
        if let Some(pool) = &self.stem_pool {
            x = pool.forward(&x)?;
        }
        for block in self.stages.iter().flatten() {
            x = block.forward_t(&x, train)?;
        }
        Ok(x)
    }

    fn forward_head(&self, features: &Tensor, _train: bool) -> Result<Tensor> {
        self.fc.forward(&global_avg_pool(features)?)
    }

    fn eval_group(&self) -> usize {
        EVAL_GROUP
    }

    /// Image by image until the maps are [`SMALL_MAP`] pixels or fewer (ResNet-50 from
    /// `layer3.1`, whose maps are 14×14), then the blocks on the group: the last stages'
    /// weights (a bottleneck of `layer4` holds 25 MB with its Winograd transform) are then
    /// read once for the group instead of once per image.
    fn forward_features_group(&self, xs: &Tensor) -> Result<Tensor> {
        let blocks: Vec<&Block> = self.stages.iter().flatten().collect();
        let mut early = 0;
        let mut maps = Vec::with_capacity(xs.dim(0)?);
        for i in 0..xs.dim(0)? {
            let mut x = self.stem.forward_t(&xs.narrow(0, i, 1)?, false)?;
            if let Some(pool) = &self.stem_pool {
                x = pool.forward(&x)?;
            }
            early = 0;
            while early < blocks.len() && x.dims()[2..].iter().product::<usize>() > SMALL_MAP {
                x = blocks[early].forward_t(&x, false)?;
                early += 1;
            }
            maps.push(x);
        }
        let mut x = Tensor::cat(&maps, 0)?;
        for block in &blocks[early..] {
            x = block.forward_t(&x, false)?;
        }
        Ok(x)
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn fold_batch_norm(&mut self) -> Result<()> {
        self.stem.fold_batch_norm()?;
        for block in self.stages.iter_mut().flatten() {
            block.fold_batch_norm()?;
        }
        Ok(())
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.classify(xs, train)
    }
}
