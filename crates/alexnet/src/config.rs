//! The AlexNet family as data: five convolutional stages and three fully connected layers,
//! with the choices that distinguish torchvision's AlexNet, the paper's, Caffe's and ZFNet.

use convnets_core::layers::{Conv2dConfig, MaxPool2d};

/// Local response normalisation across channels, in the convention of PyTorch, Caffe and
/// ONNX: `b = a / (k + alpha/size · Σ a²)^beta`, the sum over `size` neighbouring channels.
///
/// Krizhevsky et al. write the same normalisation without the division by `size`, so their
/// `α = 1e-4` is `alpha = 5e-4` here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lrn {
    /// Channels in the window (`n` in the paper, Caffe's `local_size`).
    pub size: usize,
    /// Scale of the windowed sum of squares, divided by `size` when applied.
    pub alpha: f64,
    /// Exponent.
    pub beta: f64,
    /// Additive constant (the paper's `k`, ONNX's `bias`).
    pub k: f64,
}

impl Lrn {
    /// Krizhevsky et al. 2012 §3.3: `k = 2, n = 5, α = 10⁻⁴, β = 0.75`, with `α` applied to
    /// the plain sum; also the normalisation of the ONNX zoo's ZFNet-512 (`alpha 5e-4`,
    /// `bias 2`).
    pub const PAPER: Self = Self {
        size: 5,
        alpha: 5e-4,
        beta: 0.75,
        k: 2.0,
    };

    /// Caffe's `bvlc_alexnet` (`deploy.prototxt`: `local_size 5, alpha 0.0001, beta 0.75`,
    /// `k` left at Caffe's default of 1), as its ONNX export has it (`bias 1`).
    pub const CAFFE: Self = Self {
        size: 5,
        alpha: 1e-4,
        beta: 0.75,
        k: 1.0,
    };
}

/// A max pooling: square window, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Window side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Round the output size up, as Caffe always does (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
}

impl Pool {
    /// 3×3 windows, stride 2, floor: torchvision's overlapping pooling.
    pub const OVERLAPPING: Self = Self {
        kernel: 3,
        stride: 2,
        ceil_mode: false,
    };

    /// The same with Caffe's rounding up.
    pub const OVERLAPPING_CEIL: Self = Self {
        ceil_mode: true,
        ..Self::OVERLAPPING
    };

    /// The pooling layer.
    pub fn layer(&self) -> candle_core::Result<MaxPool2d> {
        let pool = MaxPool2d::new(self.kernel, self.stride, 0)?;
        Ok(if self.ceil_mode {
            pool.ceil_mode()
        } else {
            pool
        })
    }
}

/// One convolutional stage: convolution, ReLU, then optionally LRN and max pooling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvStage {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel, stride, padding and groups.
    pub conv: Conv2dConfig,
    /// Normalisation after the ReLU.
    pub lrn: Option<Lrn>,
    /// Pooling after the ReLU (and the normalisation).
    pub pool: Option<Pool>,
}

impl ConvStage {
    const fn new(out_channels: usize, conv: Conv2dConfig) -> Self {
        Self {
            out_channels,
            conv,
            lrn: None,
            pool: None,
        }
    }

    const fn lrn(mut self, lrn: Lrn) -> Self {
        self.lrn = Some(lrn);
        self
    }

    const fn pool(mut self, pool: Pool) -> Self {
        self.pool = Some(pool);
        self
    }
}

/// Where dropout sits around the two hidden fully connected layers (it changes the module
/// indices of the classifier, not evaluation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropoutAt {
    /// Before each hidden layer: torchvision (`classifier.{1,4,6}`).
    Input,
    /// After each hidden layer's ReLU: the papers and Caffe, `drop6`/`drop7`
    /// (`classifier.{0,3,6}`).
    Output,
}

/// How freshly built layers are initialised (a checkpoint overrides this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitScheme {
    /// PyTorch's defaults, as torchvision's AlexNet keeps them.
    Torch,
    /// Krizhevsky et al. 2012 §5: weights `N(0, 0.01²)`; biases 1 in the second, fourth and
    /// fifth convolutional layers and the hidden fully connected layers, 0 elsewhere.
    Krizhevsky2012,
    /// Zeiler & Fergus 2013 §3.1: "all weights are initialized to 10⁻² and biases are set to
    /// 0", read as weights `N(0, 0.01²)` as in the network they build on.
    ZeilerFergus2013,
}

/// An AlexNet-style network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlexNetConfig {
    /// Input channels.
    pub in_channels: usize,
    /// The input side the network is designed for; without `adaptive_pool` it fixes the
    /// size of the last feature map, hence fc6's input.
    pub input_size: usize,
    /// The five convolutional stages.
    pub stages: [ConvStage; 5],
    /// torchvision's `AdaptiveAvgPool2d((s, s))` between features and classifier, which
    /// makes fc6's input independent of the image size.
    pub adaptive_pool: Option<usize>,
    /// Units of fc6 and fc7.
    pub hidden: [usize; 2],
    /// Dropout probability of the hidden layers.
    pub dropout: f64,
    /// Where that dropout sits.
    pub dropout_at: DropoutAt,
    /// Number of classes.
    pub num_classes: usize,
    /// Initialisation for training from scratch.
    pub init: InitScheme,
}

const fn conv(k: usize) -> Conv2dConfig {
    Conv2dConfig::new(k)
}

impl AlexNetConfig {
    /// torchvision's `alexnet` (after Krizhevsky 2014, "One weird trick"): 64-192-384-256-256
    /// filters, no LRN, no groups, adaptive average pooling to 6×6; 61,100,840 parameters.
    pub const fn alexnet() -> Self {
        let pool = Pool::OVERLAPPING;
        Self {
            in_channels: 3,
            input_size: 224,
            stages: [
                ConvStage::new(64, conv(11).stride(4).padding(2)).pool(pool),
                ConvStage::new(192, conv(5).padding(2)).pool(pool),
                ConvStage::new(384, conv(3).padding(1)),
                ConvStage::new(256, conv(3).padding(1)),
                ConvStage::new(256, conv(3).padding(1)).pool(pool),
            ],
            adaptive_pool: Some(6),
            hidden: [4096, 4096],
            dropout: 0.5,
            dropout_at: DropoutAt::Input,
            num_classes: 1000,
            init: InitScheme::Torch,
        }
    }

    /// AlexNet as Krizhevsky, Sutskever and Hinton 2012 describe it (§3, Fig. 2): 96-256-384-
    /// 384-256 filters, the layers that were split across two GPUs as 2 groups (conv2, conv4,
    /// conv5), LRN after conv1 and conv2 with the paper's constants ([`Lrn::PAPER`]),
    /// overlapping 3×3/2 pooling rounded up as in Caffe, a 227×227 input (the paper's
    /// "224" does not fit an 11×11/4 convolution without padding); 60,965,224 parameters.
    pub const fn alexnet_paper() -> Self {
        let pool = Pool::OVERLAPPING_CEIL;
        Self {
            in_channels: 3,
            input_size: 227,
            stages: [
                ConvStage::new(96, conv(11).stride(4))
                    .lrn(Lrn::PAPER)
                    .pool(pool),
                ConvStage::new(256, conv(5).padding(2).groups(2))
                    .lrn(Lrn::PAPER)
                    .pool(pool),
                ConvStage::new(384, conv(3).padding(1)),
                ConvStage::new(384, conv(3).padding(1).groups(2)),
                ConvStage::new(256, conv(3).padding(1).groups(2)).pool(pool),
            ],
            adaptive_pool: None,
            hidden: [4096, 4096],
            dropout: 0.5,
            dropout_at: DropoutAt::Output,
            num_classes: 1000,
            init: InitScheme::Krizhevsky2012,
        }
    }

    /// Caffe's `bvlc_alexnet` (and the ONNX model zoo's export of it): the paper's network
    /// with Caffe's LRN constants ([`Lrn::CAFFE`], `k = 1`); 60,965,224 parameters.
    pub const fn bvlc_alexnet() -> Self {
        let mut c = Self::alexnet_paper();
        c.stages[0].lrn = Some(Lrn::CAFFE);
        c.stages[1].lrn = Some(Lrn::CAFFE);
        c
    }

    /// ZFNet as Zeiler and Fergus 2013 describe it (Fig. 3): a 7×7/2 first layer, a 5×5/2
    /// second layer, dense (ungrouped) 384-384-256 third to fifth layers, LRN ("contrast
    /// normalisation across feature maps") after the first two, 3×3/2 pooling; the sizes of
    /// Fig. 3 (110, 55, 26, 13, 6) need a padding of 1 on the first layer and pooling rounded
    /// up. 62,357,608 parameters.
    pub const fn zfnet() -> Self {
        let pool = Pool::OVERLAPPING_CEIL;
        Self {
            in_channels: 3,
            input_size: 224,
            stages: [
                ConvStage::new(96, conv(7).stride(2).padding(1))
                    .lrn(Lrn::PAPER)
                    .pool(pool),
                ConvStage::new(256, conv(5).stride(2))
                    .lrn(Lrn::PAPER)
                    .pool(pool),
                ConvStage::new(384, conv(3).padding(1)),
                ConvStage::new(384, conv(3).padding(1)),
                ConvStage::new(256, conv(3).padding(1)).pool(pool),
            ],
            adaptive_pool: None,
            hidden: [4096, 4096],
            dropout: 0.5,
            dropout_at: DropoutAt::Output,
            num_classes: 1000,
            init: InitScheme::ZeilerFergus2013,
        }
    }

    /// ZFNet-512 of the ONNX model zoo (a Caffe2 model): no padding on the first layer,
    /// 512-512-512 third to fifth layers, a final 2×2/2 pooling, fc7 of 1024 units;
    /// 87,250,536 parameters.
    pub const fn zfnet512() -> Self {
        let pool = Pool::OVERLAPPING;
        Self {
            in_channels: 3,
            input_size: 224,
            stages: [
                ConvStage::new(96, conv(7).stride(2))
                    .lrn(Lrn::PAPER)
                    .pool(pool),
                ConvStage::new(256, conv(5).stride(2))
                    .lrn(Lrn::PAPER)
                    .pool(pool),
                ConvStage::new(512, conv(3).padding(1)),
                ConvStage::new(512, conv(3).padding(1)),
                ConvStage::new(512, conv(3).padding(1)).pool(Pool {
                    kernel: 2,
                    stride: 2,
                    ceil_mode: false,
                }),
            ],
            adaptive_pool: None,
            hidden: [4096, 1024],
            dropout: 0.5,
            dropout_at: DropoutAt::Output,
            num_classes: 1000,
            init: InitScheme::ZeilerFergus2013,
        }
    }

    /// The same with another number of classes.
    pub const fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// The channels and side of the map fc6 reads (after the adaptive pooling, if any), for
    /// an input of `input_size`.
    pub fn classifier_input(&self) -> candle_core::Result<(usize, usize, usize)> {
        let channels = self.stages[4].out_channels;
        if let Some(s) = self.adaptive_pool {
            return Ok((channels, s, s));
        }
        let (mut h, mut w) = (self.input_size, self.input_size);
        for stage in &self.stages {
            let (k, _) = stage.conv.kernel;
            let (p, _) = stage.conv.padding;
            if h + 2 * p < k || w + 2 * p < k {
                candle_core::bail!("AlexNet: a {}-pixel input is too small", self.input_size)
            }
            (h, w) = stage.conv.output_size(h, w);
            if let Some(pool) = stage.pool {
                (h, w) = pool.layer()?.output_size(h, w)?;
            }
        }
        Ok((channels, h, w))
    }

    /// Number of parameters of the network this configuration builds.
    pub fn num_params(&self) -> candle_core::Result<usize> {
        let mut n = 0;
        let mut in_c = self.in_channels;
        for stage in &self.stages {
            let (kh, kw) = stage.conv.kernel;
            n += stage.out_channels * (in_c / stage.conv.groups) * kh * kw + stage.out_channels;
            in_c = stage.out_channels;
        }
        let (c, h, w) = self.classifier_input()?;
        let mut fan_in = c * h * w;
        for &units in self.hidden.iter().chain([&self.num_classes]) {
            n += units * fan_in + units;
            fan_in = units;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_are_the_published_ones() -> candle_core::Result<()> {
        // torchvision's meta, the ONNX graphs' initialisers, the sum of ZFNet's layers.
        assert_eq!(AlexNetConfig::alexnet().num_params()?, 61_100_840);
        assert_eq!(AlexNetConfig::alexnet_paper().num_params()?, 60_965_224);
        assert_eq!(AlexNetConfig::bvlc_alexnet().num_params()?, 60_965_224);
        assert_eq!(AlexNetConfig::zfnet512().num_params()?, 87_250_536);
        assert_eq!(AlexNetConfig::zfnet().num_params()?, 62_357_608);
        Ok(())
    }

    /// Pinned here because parity barely sees `alpha`: the fixtures calibrate every layer to
    /// unit activations, where the window's sum of squares is a few units and going from
    /// `alpha` 1e-4 to 5e-4 moves an output by about 1e-4 relative, under the tolerance.
    /// Parity tells `k` apart (2 against 1, `docs/alexnet.md`), not a wrong `alpha`.
    #[test]
    fn the_lrn_constants_are_the_papers_and_caffes() {
        // Krizhevsky et al. §3.3: n 5, α 1e-4 on the plain sum (5e-4 on the mean), β 0.75,
        // k 2.
        let paper = Lrn {
            size: 5,
            alpha: 5e-4,
            beta: 0.75,
            k: 2.0,
        };
        // bvlc_alexnet's deploy.prototxt: local_size 5, alpha 0.0001 (over the mean), beta
        // 0.75, k left at Caffe's default of 1.
        let caffe = Lrn {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        };
        assert_eq!(Lrn::PAPER, paper);
        assert_eq!(Lrn::CAFFE, caffe);
        // Every LRN of the paper's networks is the paper's (ZFNet takes AlexNet's), of
        // Caffe's AlexNet Caffe's; all sit after conv1 and conv2 only.
        for (c, lrn) in [
            (AlexNetConfig::alexnet_paper(), paper),
            (AlexNetConfig::zfnet(), paper),
            (AlexNetConfig::zfnet512(), paper),
            (AlexNetConfig::bvlc_alexnet(), caffe),
        ] {
            let lrns: Vec<_> = c.stages.iter().map(|s| s.lrn).collect();
            assert_eq!(lrns, [Some(lrn), Some(lrn), None, None, None]);
        }
    }

    #[test]
    fn the_papers_feature_map_sizes() -> candle_core::Result<()> {
        // AlexNet at 227: 55 → 27 → 27 → 13 → 13 → 6; ZFNet (Fig. 3): 110 → 55 → 26 → 13 → 6.
        assert_eq!(
            AlexNetConfig::alexnet_paper().classifier_input()?,
            (256, 6, 6)
        );
        assert_eq!(AlexNetConfig::zfnet().classifier_input()?, (256, 6, 6));
        assert_eq!(AlexNetConfig::zfnet512().classifier_input()?, (512, 6, 6));
        // Caffe's rounding up also takes a 224 crop to 6×6.
        let at_224 = AlexNetConfig {
            input_size: 224,
            ..AlexNetConfig::alexnet_paper()
        };
        assert_eq!(at_224.classifier_input()?, (256, 6, 6));
        Ok(())
    }
}
