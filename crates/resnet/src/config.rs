//! The ResNet family as data: one [`ResNetConfig`] describes every member, from CIFAR
//! ResNet-20 to ResNeXt-101, and [`crate::ResNet::new`] is the one builder that walks it.

/// The residual unit a network stacks (He et al. 2015, Fig. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet-18/34 and every CIFAR net); `planes` channels out.
    Basic,
    /// 1×1 reduce, 3×3 (grouped in ResNeXt), 1×1 expand to `4 · planes` channels
    /// (ResNet-50 and deeper, wide ResNets, ResNeXt).
    Bottleneck,
}

impl BlockKind {
    /// Output channels of a block over its `planes`: 1 for basic blocks, 4 for bottlenecks.
    pub const fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }

    /// Number of weighted layers (convolutions) on the residual branch.
    pub const fn convs(self) -> usize {
        match self {
            Self::Basic => 2,
            Self::Bottleneck => 3,
        }
    }
}

/// What a block adds to its residual branch (He et al. 2015, §3.3 "Residual Network").
///
/// Where input and output shapes agree, every kind but [`Shortcut::None`] is the identity;
/// they differ where a stage changes the resolution or the number of channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// Option B: a 1×1 convolution with the block's stride and a BatchNorm (`downsample.0`,
    /// `downsample.1`) where the shape changes. torchvision's choice for every ImageNet model.
    Projection,
    /// Option A: the identity, subsampled with the block's stride (`x[:, :, ::s, ::s]`) and
    /// zero-padded with the missing channels, half before and half after the input's (as the
    /// common PyTorch CIFAR implementation does; for the usual doubling that is `C/2` zero
    /// channels on each side). No parameters: the paper's CIFAR-10 nets (§4.2).
    ZeroPad,
    /// No shortcut at all: the "plain" nets of the degradation experiment (Fig. 1, 6).
    None,
}

/// Where a bottleneck block that downsamples puts its stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BottleneckStride {
    /// On the 3×3 convolution (`conv2`): "ResNet v1.5", torchvision's and timm's placement,
    /// about 0.5 % top-1 better than the paper's at a small cost in speed (NVIDIA's
    /// measurement for ResNet-50).
    Conv3x3,
    /// On the first 1×1 convolution (`conv1`), as in the paper and its Caffe models (v1).
    Conv1x1,
}

/// The layers before the first stage: a convolution, a BatchNorm, a ReLU and optionally a
/// max pool. Module names `conv1`, `bn1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stem {
    /// Output channels of the convolution.
    pub width: usize,
    /// Square kernel size; the padding is `kernel / 2`.
    pub kernel: usize,
    /// Stride of the convolution.
    pub stride: usize,
    /// Whether a 3×3/2 max pool with padding 1 follows.
    pub max_pool: bool,
}

impl Stem {
    /// ImageNet: 7×7/2 convolution to 64 channels, 3×3/2 max pool (224 → 56).
    pub const IMAGENET: Self = Self {
        width: 64,
        kernel: 7,
        stride: 2,
        max_pool: true,
    };

    /// CIFAR-10: 3×3 convolution to 16 channels at full resolution (32 → 32).
    pub const CIFAR: Self = Self {
        width: 16,
        kernel: 3,
        stride: 1,
        max_pool: false,
    };
}

/// A member of the ResNet family.
///
/// Stage `i` (module `layer{i+1}`) stacks `depths[i]` blocks of `widths[i]` planes; the first
/// stage keeps the stem's resolution, every later one halves it in its first block. Build the
/// model with [`crate::ResNet::new`].
///
/// ```
/// use convnets_resnet::{ResNetConfig, Shortcut};
///
/// let cfg = ResNetConfig::resnet50().with_num_classes(10);
/// assert_eq!(cfg.depth(), 50);
/// assert_eq!(ResNetConfig::plain56().shortcut, Shortcut::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNetConfig {
    /// The residual unit.
    pub block: BlockKind,
    /// Blocks per stage.
    pub depths: &'static [usize],
    /// Planes (the 3×3 convolutions' width before grouping/widening) per stage.
    pub widths: &'static [usize],
    /// The stem.
    pub stem: Stem,
    /// The shortcut where a block changes shape.
    pub shortcut: Shortcut,
    /// The stride's place in a downsampling bottleneck.
    pub bottleneck_stride: BottleneckStride,
    /// Groups of the bottleneck's 3×3 convolution (ResNeXt's cardinality).
    pub groups: usize,
    /// Channels per group of the bottleneck's 3×3 convolution at 64 planes: the bottleneck
    /// is `planes · width_per_group / 64 · groups` wide (64 for ResNet, 128 for the wide
    /// ResNets, 4 or 8 with 32 groups for ResNeXt).
    pub width_per_group: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Classes of the linear classifier `fc`.
    pub num_classes: usize,
    /// Initialise the last BatchNorm's scale of every residual branch to zero, so that each
    /// block starts as the identity (torchvision's `zero_init_residual`, Goyal et al. 2017).
    /// Only affects training from scratch.
    pub zero_init_residual: bool,
}

impl ResNetConfig {
    const fn imagenet(block: BlockKind, depths: &'static [usize]) -> Self {
        Self {
            block,
            depths,
            widths: &[64, 128, 256, 512],
            stem: Stem::IMAGENET,
            shortcut: Shortcut::Projection,
            bottleneck_stride: BottleneckStride::Conv3x3,
            groups: 1,
            width_per_group: 64,
            in_channels: 3,
            num_classes: 1000,
            zero_init_residual: false,
        }
    }

    const fn cifar(depths: &'static [usize]) -> Self {
        Self {
            block: BlockKind::Basic,
            depths,
            widths: &[16, 32, 64],
            stem: Stem::CIFAR,
            shortcut: Shortcut::ZeroPad,
            bottleneck_stride: BottleneckStride::Conv3x3,
            groups: 1,
            width_per_group: 64,
            in_channels: 3,
            num_classes: 10,
            zero_init_residual: false,
        }
    }

    /// ResNet-18: basic blocks, 2-2-2-2 (11,689,512 parameters).
    pub const fn resnet18() -> Self {
        Self::imagenet(BlockKind::Basic, &[2, 2, 2, 2])
    }

    /// ResNet-34: basic blocks, 3-4-6-3 (21,797,672 parameters).
    pub const fn resnet34() -> Self {
        Self::imagenet(BlockKind::Basic, &[3, 4, 6, 3])
    }

    /// ResNet-50: bottlenecks, 3-4-6-3 (25,557,032 parameters).
    pub const fn resnet50() -> Self {
        Self::imagenet(BlockKind::Bottleneck, &[3, 4, 6, 3])
    }

    /// ResNet-101: bottlenecks, 3-4-23-3 (44,549,160 parameters).
    pub const fn resnet101() -> Self {
        Self::imagenet(BlockKind::Bottleneck, &[3, 4, 23, 3])
    }

    /// ResNet-152: bottlenecks, 3-8-36-3 (60,192,808 parameters).
    pub const fn resnet152() -> Self {
        Self::imagenet(BlockKind::Bottleneck, &[3, 8, 36, 3])
    }

    /// Wide ResNet-50-2 (Zagoruyko & Komodakis 2016 as torchvision builds it): ResNet-50 with
    /// bottlenecks twice as wide (68,883,240 parameters).
    pub const fn wide_resnet50_2() -> Self {
        Self::resnet50().with_width_per_group(128)
    }

    /// Wide ResNet-101-2: ResNet-101 with bottlenecks twice as wide (126,886,696 parameters).
    pub const fn wide_resnet101_2() -> Self {
        Self::resnet101().with_width_per_group(128)
    }

    /// ResNeXt-50 32×4d (Xie et al. 2017): ResNet-50 with 32 groups of 4 channels at 64
    /// planes (25,028,904 parameters).
    pub const fn resnext50_32x4d() -> Self {
        Self::resnet50().with_groups(32, 4)
    }

    /// ResNeXt-101 32×8d: ResNet-101 with 32 groups of 8 channels at 64 planes
    /// (88,791,336 parameters).
    pub const fn resnext101_32x8d() -> Self {
        Self::resnet101().with_groups(32, 8)
    }

    /// CIFAR-10 ResNet-20 (n = 3; 0.27M parameters).
    pub const fn resnet20() -> Self {
        Self::cifar(&[3, 3, 3])
    }

    /// CIFAR-10 ResNet-32 (n = 5; 0.46M parameters).
    pub const fn resnet32() -> Self {
        Self::cifar(&[5, 5, 5])
    }

    /// CIFAR-10 ResNet-44 (n = 7; 0.66M parameters).
    pub const fn resnet44() -> Self {
        Self::cifar(&[7, 7, 7])
    }

    /// CIFAR-10 ResNet-56 (n = 9; 0.85M parameters).
    pub const fn resnet56() -> Self {
        Self::cifar(&[9, 9, 9])
    }

    /// CIFAR-10 ResNet-110 (n = 18; 1.7M parameters).
    pub const fn resnet110() -> Self {
        Self::cifar(&[18, 18, 18])
    }

    /// CIFAR-10 ResNet-1202 (n = 200; 19.4M parameters), the paper's overfitting example.
    pub const fn resnet1202() -> Self {
        Self::cifar(&[200, 200, 200])
    }

    /// CIFAR-10 plain-20: ResNet-20 without shortcuts.
    pub const fn plain20() -> Self {
        Self::resnet20().without_shortcuts()
    }

    /// CIFAR-10 plain-32: ResNet-32 without shortcuts.
    pub const fn plain32() -> Self {
        Self::resnet32().without_shortcuts()
    }

    /// CIFAR-10 plain-44: ResNet-44 without shortcuts.
    pub const fn plain44() -> Self {
        Self::resnet44().without_shortcuts()
    }

    /// CIFAR-10 plain-56: ResNet-56 without shortcuts.
    pub const fn plain56() -> Self {
        Self::resnet56().without_shortcuts()
    }

    /// CIFAR-10 plain-110: ResNet-110 without shortcuts.
    pub const fn plain110() -> Self {
        Self::resnet110().without_shortcuts()
    }

    /// The same with another number of classes.
    pub const fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// The same with another number of input channels.
    pub const fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// The same with another shortcut where blocks change shape.
    pub const fn with_shortcut(mut self, shortcut: Shortcut) -> Self {
        self.shortcut = shortcut;
        self
    }

    /// The plain counterpart: the same layers without any shortcut.
    pub const fn without_shortcuts(self) -> Self {
        self.with_shortcut(Shortcut::None)
    }

    /// The same with the bottleneck's stride elsewhere (`Conv1x1`: the paper's ResNet v1).
    pub const fn with_bottleneck_stride(mut self, stride: BottleneckStride) -> Self {
        self.bottleneck_stride = stride;
        self
    }

    /// The same with `groups` groups of `width_per_group` channels (at 64 planes) in the
    /// bottleneck's 3×3 convolution.
    pub const fn with_groups(mut self, groups: usize, width_per_group: usize) -> Self {
        self.groups = groups;
        self.width_per_group = width_per_group;
        self
    }

    /// The same with `width_per_group` channels per group (128: twice as wide).
    pub const fn with_width_per_group(mut self, width_per_group: usize) -> Self {
        self.width_per_group = width_per_group;
        self
    }

    /// The same with every residual branch's last BatchNorm scale initialised to zero.
    pub const fn with_zero_init_residual(mut self) -> Self {
        self.zero_init_residual = true;
        self
    }

    /// The depth in the paper's sense: weighted layers (the stem's convolution, every
    /// convolution of every residual branch and the classifier), shortcuts not counted.
    pub const fn depth(&self) -> usize {
        let mut blocks = 0;
        let mut i = 0;
        while i < self.depths.len() {
            blocks += self.depths[i];
            i += 1;
        }
        1 + blocks * self.block.convs() + 1
    }

    /// Channels of the last feature map, the classifier's input.
    pub fn num_features(&self) -> usize {
        self.widths
            .last()
            .map_or(self.stem.width, |w| w * self.block.expansion())
    }

    /// The width of a bottleneck's 3×3 convolution for `planes` planes (torchvision:
    /// `int(planes * (base_width / 64.0)) * groups`).
    pub const fn bottleneck_width(&self, planes: usize) -> usize {
        planes * self.width_per_group / 64 * self.groups
    }

    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> Result<(), String> {
        if self.depths.is_empty() || self.depths.len() != self.widths.len() {
            return Err(format!(
                "{} stage depths for {} stage widths",
                self.depths.len(),
                self.widths.len()
            ));
        }
        if self.depths.contains(&0) || self.widths.contains(&0) {
            return Err("every stage needs at least one block of at least one plane".into());
        }
        if self.stem.width == 0 || self.stem.kernel == 0 || self.stem.stride == 0 {
            return Err(format!("invalid stem {:?}", self.stem));
        }
        if self.in_channels == 0 || self.num_classes == 0 {
            return Err("input channels and classes must be positive".into());
        }
        match self.block {
            // torchvision: "BasicBlock only supports groups=1 and base_width=64".
            BlockKind::Basic if self.groups != 1 || self.width_per_group != 64 => Err(format!(
                "basic blocks have no grouped or widened convolution (groups {}, width per \
                 group {})",
                self.groups, self.width_per_group
            )),
            BlockKind::Bottleneck
                if self.groups == 0
                    || self.widths.iter().any(|&p| self.bottleneck_width(p) == 0) =>
            {
                Err(format!(
                    "bottlenecks of {} groups of {} channels per 64 planes are empty",
                    self.groups, self.width_per_group
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_name() {
        for (cfg, depth) in [
            (ResNetConfig::resnet18(), 18),
            (ResNetConfig::resnet34(), 34),
            (ResNetConfig::resnet50(), 50),
            (ResNetConfig::resnet101(), 101),
            (ResNetConfig::resnet152(), 152),
            (ResNetConfig::wide_resnet50_2(), 50),
            (ResNetConfig::resnext101_32x8d(), 101),
            (ResNetConfig::resnet20(), 20),
            (ResNetConfig::resnet32(), 32),
            (ResNetConfig::resnet44(), 44),
            (ResNetConfig::resnet56(), 56),
            (ResNetConfig::resnet110(), 110),
            (ResNetConfig::resnet1202(), 1202),
            (ResNetConfig::plain20(), 20),
            (ResNetConfig::plain110(), 110),
        ] {
            assert_eq!(cfg.depth(), depth, "{cfg:?}");
            assert_eq!(cfg.validate(), Ok(()), "{cfg:?}");
        }
    }

    #[test]
    fn bottleneck_widths_follow_torchvision() {
        // layer1 (64 planes): ResNet-50 64, wide 128, ResNeXt 32×4d 128, ResNeXt 32×8d 256.
        assert_eq!(ResNetConfig::resnet50().bottleneck_width(64), 64);
        assert_eq!(ResNetConfig::wide_resnet50_2().bottleneck_width(64), 128);
        assert_eq!(ResNetConfig::resnext50_32x4d().bottleneck_width(64), 128);
        assert_eq!(ResNetConfig::resnext101_32x8d().bottleneck_width(512), 2048);
        assert_eq!(ResNetConfig::resnet50().num_features(), 2048);
        assert_eq!(ResNetConfig::resnet18().num_features(), 512);
        assert_eq!(ResNetConfig::resnet56().num_features(), 64);
    }

    #[test]
    fn impossible_configurations_are_refused() {
        let grouped_basic = ResNetConfig::resnet18().with_groups(32, 4);
        assert!(grouped_basic.validate().unwrap_err().contains("basic"));
        let ragged = ResNetConfig {
            widths: &[64, 128],
            ..ResNetConfig::resnet18()
        };
        assert!(ragged.validate().is_err());
        let empty = ResNetConfig::resnet50().with_groups(1, 0);
        assert!(empty.validate().is_err());
        assert!(
            ResNetConfig::resnet20()
                .with_num_classes(0)
                .validate()
                .is_err()
        );
    }
}
