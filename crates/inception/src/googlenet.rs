//! GoogLeNet (Inception v1): Szegedy et al. 2014, "Going Deeper with Convolutions", as
//! torchvision has it (`torchvision/models/googlenet.py`) and as the paper and Caffe's
//! `bvlc_googlenet` have it.
//!
//! The two differ in ways that change numbers:
//!
//! | | paper / Caffe | torchvision |
//! |---|---|---|
//! | after each convolution | bias, ReLU | BatchNorm (eps 1e-3), ReLU |
//! | local response normalisation | after `pool1` and after `conv3` | none |
//! | third branch of each module | 5×5 | 3×3 (see below) |
//! | pooling before `inception5a` | 3×3/2 | 2×2/2 |
//! | auxiliary heads' pooling | 5×5/3 average | adaptive to 4×4 |
//! | dropout before the classifier | 0.4 | 0.2 |
//!
//! torchvision's 3×3 "5×5" branch is a known slip of its port (pytorch/vision#906), kept
//! because its pretrained weights have that shape. Both round pooling sizes up, as Caffe
//! does (112 → 56 → 28 → 14 → 7).

use convnets_core::layers::{BatchNormConfig, Conv2dConfig};

use crate::auxiliary::{AuxKind, AuxPool, AuxSpec};
use crate::blocks::{Branch, ConvNorm, Style, WeightInit, conv, max_pool};
use crate::input::TransformInput;
use crate::network::{Block, Head, Lrn, Network, Stage};

/// The nine Inception modules (the paper's Table 1): name, then #1×1, #3×3 reduce, #3×3,
/// #5×5 reduce, #5×5, pool proj. A stride-2 max pooling precedes `inception4a` and
/// `inception5a`.
const MODULES: [(&str, [usize; 6]); 9] = [
    ("inception3a", [64, 96, 128, 16, 32, 32]),
    ("inception3b", [128, 128, 192, 32, 96, 64]),
    ("inception4a", [192, 96, 208, 16, 48, 64]),
    ("inception4b", [160, 112, 224, 24, 64, 64]),
    ("inception4c", [128, 128, 256, 24, 64, 64]),
    ("inception4d", [112, 144, 288, 32, 64, 64]),
    ("inception4e", [256, 160, 320, 32, 128, 128]),
    ("inception5a", [256, 160, 320, 32, 128, 128]),
    ("inception5b", [384, 192, 384, 48, 128, 128]),
];

/// GoogLeNet's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoogLeNetConfig {
    /// Number of classes.
    pub num_classes: usize,
    /// What follows every convolution.
    pub norm: ConvNorm,
    /// Local response normalisation after `pool1` and after `conv3`.
    pub lrn: Option<Lrn>,
    /// Kernel of the third branch of every module: 5 in the paper, 3 in torchvision.
    pub branch3_kernel: usize,
    /// Kernel of the stride-2 max pooling before `inception5a`: 3 in the paper, 2 in
    /// torchvision.
    pub pool4_kernel: usize,
    /// Whether pooling rounds up (both references do). Off reproduces the ONNX model zoo's
    /// opset-9 export of `bvlc_googlenet` (ONNX had no `ceil_mode` before opset 10), whose
    /// feature maps are 55, 27, 13 and 6 wide instead of 56, 28, 14 and 7.
    pub ceil_mode: bool,
    /// Whether the model has the auxiliary classifiers `aux1` (after `inception4a`) and
    /// `aux2` (after `inception4d`). They only run in training; a model without them loads
    /// checkpoints with or without their tensors.
    pub aux_logits: bool,
    /// How the auxiliary classifiers pool.
    pub aux_pool: AuxPool,
    /// Dropout before the classifier.
    pub dropout: f64,
    /// Dropout in the auxiliary classifiers.
    pub aux_dropout: f64,
    /// torchvision's `transform_input`; see [`TransformInput`].
    pub transform_input: Option<TransformInput>,
    /// Initialisation for training from scratch.
    pub init: WeightInit,
}

impl GoogLeNetConfig {
    /// torchvision's `GoogLeNet()`: BatchNorm, the 3×3 third branch, auxiliary classifiers,
    /// no `transform_input` (its pretrained weights need one: see [`crate::weights`]).
    pub const fn googlenet() -> Self {
        Self {
            num_classes: 1000,
            norm: ConvNorm::BatchNorm(BatchNormConfig::new().eps(1e-3)),
            lrn: None,
            branch3_kernel: 3,
            pool4_kernel: 2,
            ceil_mode: true,
            aux_logits: true,
            aux_pool: AuxPool::Adaptive,
            dropout: 0.2,
            aux_dropout: 0.7,
            transform_input: None,
            init: WeightInit::TruncNormal(0.01),
        }
    }

    /// GoogLeNet as published and as Caffe's `bvlc_googlenet` (6,998,552 parameters without
    /// the auxiliary classifiers).
    pub const fn paper() -> Self {
        Self {
            num_classes: 1000,
            norm: ConvNorm::Bias,
            lrn: Some(Lrn::CAFFE_GOOGLENET),
            branch3_kernel: 5,
            pool4_kernel: 3,
            ceil_mode: true,
            aux_logits: true,
            aux_pool: AuxPool::Avg5Stride3,
            dropout: 0.4,
            aux_dropout: 0.7,
            transform_input: None,
            init: WeightInit::Xavier,
        }
    }

    /// The same with `n` classes.
    pub const fn with_num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }

    /// The same with or without the auxiliary classifiers.
    pub const fn with_aux_logits(mut self, aux_logits: bool) -> Self {
        self.aux_logits = aux_logits;
        self
    }

    /// The same with another input map.
    pub const fn with_transform_input(mut self, t: Option<TransformInput>) -> Self {
        self.transform_input = t;
        self
    }

    /// The same with pooling that rounds up or down.
    pub const fn with_ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }

    /// The same with other dropout probabilities (main classifier, auxiliary classifiers).
    pub const fn with_dropout(mut self, dropout: f64, aux_dropout: f64) -> Self {
        self.dropout = dropout;
        self.aux_dropout = aux_dropout;
        self
    }
}

/// One Inception module: four branches, concatenated.
fn inception(c: [usize; 6], branch3_kernel: usize) -> Block {
    let [ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj] = c;
    let k1 = Conv2dConfig::new(1);
    Block::Mixed(vec![
        Branch::sequential("branch1", &[conv(ch1x1, k1)]),
        Branch::sequential(
            "branch2",
            &[conv(ch3x3red, k1), conv(ch3x3, Conv2dConfig::new(3).same())],
        ),
        Branch::sequential(
            "branch3",
            &[
                conv(ch5x5red, k1),
                conv(ch5x5, Conv2dConfig::new(branch3_kernel).same()),
            ],
        ),
        Branch::sequential("branch4", &[max_pool(3, 1, 1), conv(pool_proj, k1)]),
    ])
}

impl From<&GoogLeNetConfig> for Network {
    fn from(c: &GoogLeNetConfig) -> Self {
        let layer = |name: &str, op| Stage::new(name, Block::Layer(op));
        let lrn = |name: &str| c.lrn.map(|n| Stage::new(name, Block::Lrn(n)));
        let mut stages = vec![
            Some(layer(
                "conv1",
                conv(64, Conv2dConfig::new(7).stride(2).padding(3)),
            )),
            Some(layer("maxpool1", max_pool(3, 2, 0))),
            lrn("norm1"),
            Some(layer("conv2", conv(64, Conv2dConfig::new(1)))),
            Some(layer("conv3", conv(192, Conv2dConfig::new(3).same()))),
            lrn("norm2"),
            Some(layer("maxpool2", max_pool(3, 2, 0))),
        ];
        for (name, channels) in MODULES {
            match name {
                "inception4a" => stages.push(Some(layer("maxpool3", max_pool(3, 2, 0)))),
                "inception5a" => {
                    let k = c.pool4_kernel;
                    stages.push(Some(layer("maxpool4", max_pool(k, 2, 0))));
                }
                _ => {}
            }
            stages.push(Some(Stage::new(
                name,
                inception(channels, c.branch3_kernel),
            )));
        }
        let aux_head = |name, after| AuxSpec {
            name,
            after,
            kind: AuxKind::GoogLeNet {
                pool: c.aux_pool,
                dropout: c.aux_dropout,
            },
            // "During training, their loss gets added to the total loss of the network with a
            // discount weight (the losses of the auxiliary classifiers were weighted by 0.3)."
            loss_weight: 0.3,
        };
        let aux = if c.aux_logits {
            vec![
                aux_head("aux1", "inception4a"),
                aux_head("aux2", "inception4d"),
            ]
        } else {
            Vec::new()
        };
        Self {
            transform_input: c.transform_input,
            stages: stages.into_iter().flatten().collect(),
            aux,
            head: Head {
                name: "fc",
                dropout: c.dropout,
            },
            num_classes: c.num_classes,
            style: Style {
                norm: c.norm,
                init: c.init,
                ceil_mode: c.ceil_mode,
                count_include_pad: true,
            },
        }
    }
}

impl From<GoogLeNetConfig> for Network {
    fn from(c: GoogLeNetConfig) -> Self {
        Self::from(&c)
    }
}
