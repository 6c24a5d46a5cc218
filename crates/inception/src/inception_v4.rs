//! Inception-v4: Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of
//! Residual Connections on Learning", as timm has it (`timm/models/inception_v4.py`, a port
//! of Google's TensorFlow weights): one `features` sequence of the stem (figure 3: three
//! convolutions, then `Mixed3a`, `Mixed4a`, `Mixed5a`), four Inception-A, Reduction-A, seven
//! Inception-B, Reduction-B and three Inception-C blocks (figures 4–8), then `last_linear`.
//! Its `features.N` indices are derived from the block counts. BatchNorm eps is 1e-3 and
//! the average pooling of the A/B/C blocks does not count padding, as in TensorFlow.

use convnets_core::layers::{BatchNormConfig, Conv2dConfig};

use crate::blocks::{Branch, ConvNorm, Op, Style, WeightInit, avg_pool, conv, max_pool};
use crate::input::TransformInput;
use crate::network::{Block, Head, Network, Stage};

const K1: Conv2dConfig = Conv2dConfig::new(1);
const K3: Conv2dConfig = Conv2dConfig::new(3);
const K3P1: Conv2dConfig = Conv2dConfig::new(3).same();
const K3S2: Conv2dConfig = Conv2dConfig::new(3).stride(2);
const K1X7: Conv2dConfig = Conv2dConfig::rect(1, 7).same();
const K7X1: Conv2dConfig = Conv2dConfig::rect(7, 1).same();
const K1X3: Conv2dConfig = Conv2dConfig::rect(1, 3).same();
const K3X1: Conv2dConfig = Conv2dConfig::rect(3, 1).same();
const MAX: Op = max_pool(3, 2, 0);
const AVG: Op = avg_pool(3, 1, 1);

fn seq(name: &'static str, ops: &[Op]) -> Branch {
    Branch::sequential(name, ops)
}

fn mixed_3a() -> Vec<Branch> {
    vec![seq("maxpool", &[MAX]), seq("conv", &[conv(96, K3S2)])]
}

fn mixed_4a() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(64, K1), conv(96, K3)]),
        seq(
            "branch1",
            &[conv(64, K1), conv(64, K1X7), conv(64, K7X1), conv(96, K3)],
        ),
    ]
}

fn mixed_5a() -> Vec<Branch> {
    vec![seq("conv", &[conv(192, K3S2)]), seq("maxpool", &[MAX])]
}

fn inception_a() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(96, K1)]),
        seq("branch1", &[conv(64, K1), conv(96, K3P1)]),
        seq("branch2", &[conv(64, K1), conv(96, K3P1), conv(96, K3P1)]),
        seq("branch3", &[AVG, conv(96, K1)]),
    ]
}

fn reduction_a() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(384, K3S2)]),
        seq(
            "branch1",
            &[conv(192, K1), conv(224, K3P1), conv(256, K3S2)],
        ),
        seq("branch2", &[MAX]),
    ]
}

fn inception_b() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(384, K1)]),
        seq(
            "branch1",
            &[conv(192, K1), conv(224, K1X7), conv(256, K7X1)],
        ),
        seq(
            "branch2",
            &[
                conv(192, K1),
                conv(192, K7X1),
                conv(224, K1X7),
                conv(224, K7X1),
                conv(256, K1X7),
            ],
        ),
        seq("branch3", &[AVG, conv(128, K1)]),
    ]
}

fn reduction_b() -> Vec<Branch> {
    vec![
        seq("branch0", &[conv(192, K1), conv(192, K3S2)]),
        seq(
            "branch1",
            &[
                conv(256, K1),
                conv(256, K1X7),
                conv(320, K7X1),
                conv(320, K3S2),
            ],
        ),
        seq("branch2", &[MAX]),
    ]
}

fn inception_c() -> Vec<Branch> {
    let pair = |b: Branch| b.fork(conv(256, K1X3), conv(256, K3X1));
    vec![
        seq("branch0", &[conv(256, K1)]),
        pair(Branch::numbered("branch1", 0, &[conv(384, K1)])),
        pair(Branch::numbered(
            "branch2",
            0,
            &[conv(384, K1), conv(448, K3X1), conv(512, K1X3)],
        )),
        seq("branch3", &[AVG, conv(256, K1)]),
    ]
}

/// Inception-v4's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InceptionV4Config {
    /// Number of classes.
    pub num_classes: usize,
    /// Number of Inception-A, -B and -C blocks (4, 7, 3).
    pub blocks: [usize; 3],
    /// BatchNorm eps (timm's `norm_eps`, 1e-3).
    pub norm_eps: f64,
    /// Dropout before the classifier (timm's `drop_rate`, 0).
    pub drop_rate: f64,
    /// A map applied to the input first; see [`TransformInput`].
    pub transform_input: Option<TransformInput>,
}

impl InceptionV4Config {
    /// timm's `inception_v4`.
    pub const fn inception_v4() -> Self {
        Self {
            num_classes: 1000,
            blocks: [4, 7, 3],
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

impl From<&InceptionV4Config> for Network {
    fn from(c: &InceptionV4Config) -> Self {
        let [a, b, cc] = c.blocks;
        let blocks = [
            Block::Layer(conv(32, K3S2)),
            Block::Layer(conv(32, K3)),
            Block::Layer(conv(64, K3P1)),
            Block::Mixed(mixed_3a()),
            Block::Mixed(mixed_4a()),
            Block::Mixed(mixed_5a()),
        ]
        .into_iter()
        .chain(std::iter::repeat_n(Block::Mixed(inception_a()), a))
        .chain([Block::Mixed(reduction_a())])
        .chain(std::iter::repeat_n(Block::Mixed(inception_b()), b))
        .chain([Block::Mixed(reduction_b())])
        .chain(std::iter::repeat_n(Block::Mixed(inception_c()), cc));
        Self {
            transform_input: c.transform_input,
            stages: blocks
                .enumerate()
                .map(|(i, block)| Stage::new(format!("features.{i}"), block))
                .collect(),
            aux: Vec::new(),
            head: Head {
                name: "last_linear",
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

impl From<InceptionV4Config> for Network {
    fn from(c: InceptionV4Config) -> Self {
        Self::from(&c)
    }
}
