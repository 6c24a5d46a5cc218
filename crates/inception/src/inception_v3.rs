//! Inception-v3: Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
//! Vision", as torchvision has it (`torchvision/models/inception.py`, `Inception3`), whose
//! names its pretrained weights (ported from TensorFlow) carry: 299×299 input, the stem
//! `Conv2d_1a_3x3` … `Conv2d_4a_3x3`, the blocks `Mixed_5b` … `Mixed_7c` built from the five
//! module types A–E (the paper's figures 5, 6, 7 and 10), and the auxiliary classifier
//! `AuxLogits` on `Mixed_6e`.

use convnets_core::layers::{BatchNormConfig, Conv2dConfig};

use crate::auxiliary::{AuxKind, AuxSpec};
use crate::blocks::{Branch, ConvNorm, Op, Style, WeightInit, avg_pool, conv, max_pool};
use crate::input::TransformInput;
use crate::network::{Block, Head, Network, Stage};

/// The five module types of Inception-v3 and their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    /// 35×35: 1×1, 5×5, double 3×3 and pooled branches (`pool_features` wide).
    A { pool_features: usize },
    /// 35 → 17 grid reduction.
    B,
    /// 17×17 with factorised 7×7 (1×7 then 7×1) branches `c7` wide.
    C { c7: usize },
    /// 17 → 8 grid reduction.
    D,
    /// 8×8 with expanded filter banks (1×3 and 3×1 side by side).
    E,
}

const MIXED: [(&str, Module); 11] = [
    ("Mixed_5b", Module::A { pool_features: 32 }),
    ("Mixed_5c", Module::A { pool_features: 64 }),
    ("Mixed_5d", Module::A { pool_features: 64 }),
    ("Mixed_6a", Module::B),
    ("Mixed_6b", Module::C { c7: 128 }),
    ("Mixed_6c", Module::C { c7: 160 }),
    ("Mixed_6d", Module::C { c7: 160 }),
    ("Mixed_6e", Module::C { c7: 192 }),
    ("Mixed_7a", Module::D),
    ("Mixed_7b", Module::E),
    ("Mixed_7c", Module::E),
];

const K1: Conv2dConfig = Conv2dConfig::new(1);
const K3: Conv2dConfig = Conv2dConfig::new(3).same();
const K3S2: Conv2dConfig = Conv2dConfig::new(3).stride(2);
const K1X7: Conv2dConfig = Conv2dConfig::rect(1, 7).same();
const K7X1: Conv2dConfig = Conv2dConfig::rect(7, 1).same();
const K1X3: Conv2dConfig = Conv2dConfig::rect(1, 3).same();
const K3X1: Conv2dConfig = Conv2dConfig::rect(3, 1).same();
/// `F.avg_pool2d(x, 3, stride=1, padding=1)`, padding counted.
const POOL: Op = avg_pool(3, 1, 1);

impl Module {
    fn branches(self) -> Vec<Branch> {
        let b = |name, ops: &[Op]| Branch::numbered(name, 1, ops);
        match self {
            Self::A { pool_features } => vec![
                b("branch1x1", &[conv(64, K1)]),
                b(
                    "branch5x5",
                    &[conv(48, K1), conv(64, Conv2dConfig::new(5).same())],
                ),
                b("branch3x3dbl", &[conv(64, K1), conv(96, K3), conv(96, K3)]),
                b("branch_pool", &[POOL, conv(pool_features, K1)]),
            ],
            Self::B => vec![
                b("branch3x3", &[conv(384, K3S2)]),
                b(
                    "branch3x3dbl",
                    &[conv(64, K1), conv(96, K3), conv(96, K3S2)],
                ),
                b("branch_pool", &[max_pool(3, 2, 0)]),
            ],
            Self::C { c7 } => vec![
                b("branch1x1", &[conv(192, K1)]),
                b(
                    "branch7x7",
                    &[conv(c7, K1), conv(c7, K1X7), conv(192, K7X1)],
                ),
                b(
                    "branch7x7dbl",
                    &[
                        conv(c7, K1),
                        conv(c7, K7X1),
                        conv(c7, K1X7),
                        conv(c7, K7X1),
                        conv(192, K1X7),
                    ],
                ),
                b("branch_pool", &[POOL, conv(192, K1)]),
            ],
            Self::D => vec![
                b("branch3x3", &[conv(192, K1), conv(320, K3S2)]),
                b(
                    "branch7x7x3",
                    &[
                        conv(192, K1),
                        conv(192, K1X7),
                        conv(192, K7X1),
                        conv(192, K3S2),
                    ],
                ),
                b("branch_pool", &[max_pool(3, 2, 0)]),
            ],
            Self::E => vec![
                b("branch1x1", &[conv(320, K1)]),
                b("branch3x3", &[conv(384, K1)]).fork(conv(384, K1X3), conv(384, K3X1)),
                b("branch3x3dbl", &[conv(448, K1), conv(384, K3)])
                    .fork(conv(384, K1X3), conv(384, K3X1)),
                b("branch_pool", &[POOL, conv(192, K1)]),
            ],
        }
    }
}

/// Inception-v3's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InceptionV3Config {
    /// Number of classes.
    pub num_classes: usize,
    /// Whether the model has the auxiliary classifier `AuxLogits` (on `Mixed_6e`). It only
    /// runs in training; a model without it loads checkpoints with or without its tensors.
    pub aux_logits: bool,
    /// torchvision's `transform_input`; see [`TransformInput`].
    pub transform_input: Option<TransformInput>,
    /// Dropout before the classifier.
    pub dropout: f64,
}

impl InceptionV3Config {
    /// torchvision's `Inception3()`: auxiliary classifier, no `transform_input` (its
    /// pretrained weights need one: see [`crate::weights`]).
    pub const fn inception_v3() -> Self {
        Self {
            num_classes: 1000,
            aux_logits: true,
            transform_input: None,
            dropout: 0.5,
        }
    }

    /// The same with `n` classes.
    pub const fn with_num_classes(mut self, n: usize) -> Self {
        self.num_classes = n;
        self
    }

    /// The same with or without the auxiliary classifier.
    pub const fn with_aux_logits(mut self, aux_logits: bool) -> Self {
        self.aux_logits = aux_logits;
        self
    }

    /// The same with another input map.
    pub const fn with_transform_input(mut self, t: Option<TransformInput>) -> Self {
        self.transform_input = t;
        self
    }

    /// The same with another dropout before the classifier.
    pub const fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }
}

impl From<&InceptionV3Config> for Network {
    fn from(c: &InceptionV3Config) -> Self {
        let layer = |name: &str, op| Stage::new(name, Block::Layer(op));
        let mut stages = vec![
            layer("Conv2d_1a_3x3", conv(32, K3S2)),
            layer("Conv2d_2a_3x3", conv(32, Conv2dConfig::new(3))),
            layer("Conv2d_2b_3x3", conv(64, K3)),
            layer("maxpool1", max_pool(3, 2, 0)),
            layer("Conv2d_3b_1x1", conv(80, K1)),
            layer("Conv2d_4a_3x3", conv(192, Conv2dConfig::new(3))),
            layer("maxpool2", max_pool(3, 2, 0)),
        ];
        stages.extend(
            MIXED
                .iter()
                .map(|&(name, module)| Stage::new(name, Block::Mixed(module.branches()))),
        );
        let aux = c.aux_logits.then_some(AuxSpec {
            name: "AuxLogits",
            after: "Mixed_6e",
            kind: AuxKind::InceptionV3,
            // The recipe the ported weights were trained with, TF-slim's
            // `train_image_classifier.py` (`weights=0.4, scope='aux_loss'`), which PyTorch's
            // fine-tuning tutorial repeats as `loss = loss1 + 0.4 * loss2`.
            loss_weight: 0.4,
        });
        Self {
            transform_input: c.transform_input,
            stages,
            aux: aux.into_iter().collect(),
            head: Head {
                name: "fc",
                dropout: c.dropout,
            },
            num_classes: c.num_classes,
            style: Style {
                norm: ConvNorm::BatchNorm(BatchNormConfig::new().eps(1e-3)),
                init: WeightInit::TruncNormal(0.1),
                ceil_mode: false,
                count_include_pad: true,
            },
        }
    }
}

impl From<InceptionV3Config> for Network {
    fn from(c: InceptionV3Config) -> Self {
        Self::from(&c)
    }
}
