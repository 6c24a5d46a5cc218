//! Inception-ResNet-v2: Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact
//! of Residual Connections on Learning", as timm has it (`timm/models/inception_resnet_v2.py`,
//! a port of Google's TensorFlow weights, whose stem is Inception-v3's rather than the
//! paper's figure 3): `mixed_5b`, ten scaled residual Inception-A blocks (`repeat`, figure 16),
//! `mixed_6a`, twenty Inception-B blocks (`repeat_1`, figure 17), `mixed_7a`, nine
//! Inception-C blocks (`repeat_2`, figure 19) and a last one without ReLU (`block8`), a 1×1
//! convolution to 1536 channels, then `classif`. BatchNorm eps is 1e-3 and average pooling
//! does not count padding, as in TensorFlow.

use convnets_core::layers::{BatchNormConfig, Conv2dConfig};

use crate::blocks::{Branch, ConvNorm, Op, Style, WeightInit, avg_pool, conv, max_pool};
use crate::input::TransformInput;
use crate::network::{Block, Head, Network, Stage};

const K1: Conv2dConfig = Conv2dConfig::new(1);
const K3: Conv2dConfig = Conv2dConfig::new(3);
const K3P1: Conv2dConfig = Conv2dConfig::new(3).same();
const K3S2: Conv2dConfig = Conv2dConfig::new(3).stride(2);
const MAX: Op = max_pool(3, 2, 0);

fn seq(name: &'static str, ops: &[Op]) -> Branch {
    Branch::sequential(name, ops)
}

fn mixed_5b() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(96, K1)]),
        seq(
            "branch1",
            &[conv(48, K1), conv(64, Conv2dConfig::new(5).same())],
        ),
        seq("branch2", &[conv(64, K1), conv(96, K3P1), conv(96, K3P1)]),
        seq("branch3", &[avg_pool(3, 1, 1), conv(64, K1)]),
    ]
}

/// Inception-ResNet-A, 35×35, 320 channels.
fn block35() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(32, K1)]),
        seq("branch1", &[conv(32, K1), conv(32, K3P1)]),
        seq("branch2", &[conv(32, K1), conv(48, K3P1), conv(64, K3P1)]),
    ]
}

fn mixed_6a() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(384, K3S2)]),
        seq(
            "branch1",
            &[conv(256, K1), conv(256, K3P1), conv(384, K3S2)],
        ),
        seq("branch2", &[MAX]),
    ]
}

/// Inception-ResNet-B, 17×17, 1088 channels.
fn block17() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(192, K1)]),
        seq(
            "branch1",
            &[
                conv(128, K1),
                conv(160, Conv2dConfig::rect(1, 7).same()),
                conv(192, Conv2dConfig::rect(7, 1).same()),
            ],
        ),
    ]
}

fn mixed_7a() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(256, K1), conv(384, K3S2)]),
        seq("branch1", &[conv(256, K1), conv(288, K3S2)]),
        seq(
            "branch2",
            &[conv(256, K1), conv(288, K3P1), conv(320, K3S2)],
        ),
        seq("branch3", &[MAX]),
    ]
}

/// Inception-ResNet-C, 8×8, 2080 channels.
fn block8() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(192, K1)]),
        seq(
            "branch1",
            &[
                conv(192, K1),
                conv(224, Conv2dConfig::rect(1, 3).same()),
                conv(256, Conv2dConfig::rect(3, 1).same()),
            ],
        ),
    ]
}

/// Inception-ResNet-v2's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InceptionResNetV2Config {
    /// Number of classes.
    pub num_classes: usize,
    /// Number of residual A, B and C blocks (10, 20, 9), the last C block without ReLU
    /// not counted.
    pub blocks: [usize; 3],
    /// Scale of the residuals of the A, B and C blocks (0.17, 0.10, 0.20); the last C
    /// block's is 1.
    pub scales: [f64; 3],
    /// BatchNorm eps (timm's `norm_eps`, 1e-3).
    pub norm_eps: f64,
    /// Dropout before the classifier (timm's `drop_rate`, 0).
    pub drop_rate: f64,
    /// A map applied to the input first; see [`TransformInput`].
    pub transform_input: Option<TransformInput>,
}

impl InceptionResNetV2Config {
    /// timm's `inception_resnet_v2`.
    pub const fn inception_resnet_v2() -> Self {
        Self {
            num_classes: 1000,
            blocks: [10, 20, 9],
            scales: [0.17, 0.10, 0.20],
            norm_eps: 1e-3,
            drop_rate: 0.0,
            transform_input: None,
        }
    }

    /// The same with `n` classes.
    pub const fn with_num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }

    /// The same with another input map.
    pub const fn with_transform_input(mut self, t: Option<TransformInput>) -> Self {
        self.transform_input = t;
        self
    }

    /// The same with dropout before the classifier.
    pub const fn with_drop_rate(mut self, p: f64) -> Self {
        self.drop_rate = p;
        self
    }
}

impl From<&InceptionResNetV2Config> for Network {
    fn from(c: &InceptionResNetV2Config) -> Self {
        let layer = |name: &str, op| Stage::new(name, Block::Layer(op));
        let residual = |branches: fn() -> Vec<Branch>, scale, relu| Block::Residual {
            branches: branches(),
            scale,
            relu,
        };
        let repeat = |name: &'static str, n: usize, branches, scale| {
            (0..n).map(move |i| Stage::new(format!("{name}.{i}"), residual(branches, scale, true)))
        };
        let mut stages = vec![
            layer("conv2d_1a", conv(32, K3S2)),
            layer("conv2d_2a", conv(32, K3)),
            layer("conv2d_2b", conv(64, K3P1)),
            layer("maxpool_3a", MAX),
            layer("conv2d_3b", conv(80, K1)),
            layer("conv2d_4a", conv(192, K3)),
            layer("maxpool_5a", MAX),
            Stage::new("mixed_5b", Block::Mixed(mixed_5b())),
        ];
        stages.extend(repeat("repeat", c.blocks[0], block35, c.scales[0]));
        stages.push(Stage::new("mixed_6a", Block::Mixed(mixed_6a())));
        stages.extend(repeat("repeat_1", c.blocks[1], block17, c.scales[1]));
        stages.push(Stage::new("mixed_7a", Block::Mixed(mixed_7a())));
        stages.extend(repeat("repeat_2", c.blocks[2], block8, c.scales[2]));
        stages.push(Stage::new("block8", residual(block8, 1.0, false)));
        stages.push(layer("conv2d_7b", conv(1536, K1)));
        Self {
            transform_input: c.transform_input,
            stages,
            aux: Vec::new(),
            head: Head {
                name: "classif",
                dropout: c.drop_rate,
            },
            num_classes: c.num_classes,
            style: Style {
                norm: ConvNorm::BatchNorm(BatchNormConfig::new().eps(c.norm_eps)),
                init: WeightInit::TorchDefault,
                ceil_mode: false,
                count_include_pad: false,
            },
        }
    }
}

impl From<InceptionResNetV2Config> for Network {
    fn from(c: InceptionResNetV2Config) -> Self {
        Self::from(&c)
    }
}
