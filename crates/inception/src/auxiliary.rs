//! The auxiliary classifiers of GoogLeNet and Inception-v3: small heads on intermediate
//! feature maps whose losses are added, down-weighted, to the main loss during training
//! (Szegedy et al. 2014 §5; 2016 §4). They never run in evaluation.

use candle_core::{Result, Tensor};
use candle_nn::{ModuleT, VarBuilder};
use convnets_core::layers::{
    AdaptiveAvgPool2d, AvgPool2d, Conv2dConfig, ConvNormAct, Dropout, Linear,
};

use crate::blocks::{Style, WeightInit, basic_conv};

/// How GoogLeNet's auxiliary head reduces its 14×14 input to 4×4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxPool {
    /// `adaptive_avg_pool2d(4, 4)`: torchvision (overlapping bins of 4 at 14×14).
    Adaptive,
    /// 5×5 average pooling with stride 3, as in the paper and Caffe.
    Avg5Stride3,
}

/// The architecture of an auxiliary head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AuxKind {
    /// GoogLeNet's: pool to 4×4, `conv` (1×1 to 128), `fc1` (2048 → 1024), ReLU, dropout,
    /// `fc2`.
    GoogLeNet {
        /// The pooling.
        pool: AuxPool,
        /// Dropout before `fc2` (0.7).
        dropout: f64,
    },
    /// Inception-v3's: 5×5/3 average pooling, `conv0` (1×1 to 128), `conv1` (5×5 to 768),
    /// global average pooling, `fc`.
    InceptionV3,
}

/// An auxiliary head, as data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuxSpec {
    /// Its module name: `aux1`, `aux2`, `AuxLogits`.
    pub name: &'static str,
    /// The stage whose output it reads.
    pub after: &'static str,
    /// Its architecture.
    pub kind: AuxKind,
    /// The weight of its loss in the training objective.
    pub loss_weight: f64,
}

#[derive(Debug, Clone)]
enum Pool {
    Adaptive(AdaptiveAvgPool2d),
    Avg(AvgPool2d),
}

impl Pool {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Adaptive(p) => p.forward(x),
            Self::Avg(p) => p.forward(x),
        }
    }
}

#[derive(Debug, Clone)]
enum Head {
    GoogLeNet {
        pool: Pool,
        conv: ConvNormAct,
        fc1: Linear,
        dropout: Dropout,
        fc2: Linear,
    },
    InceptionV3 {
        pool: AvgPool2d,
        conv0: ConvNormAct,
        conv1: ConvNormAct,
        fc: Linear,
    },
}

/// An auxiliary classifier, built.
#[derive(Debug, Clone)]
pub(crate) struct AuxClassifier {
    pub(crate) spec: AuxSpec,
    head: Head,
}

impl AuxClassifier {
    pub(crate) fn build(
        spec: AuxSpec,
        in_channels: usize,
        num_classes: usize,
        style: &Style,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let head = match spec.kind {
            AuxKind::GoogLeNet { pool, dropout } => {
                let pool = match pool {
                    AuxPool::Adaptive => Pool::Adaptive(AdaptiveAvgPool2d::new(4, 4)?),
                    AuxPool::Avg5Stride3 => {
                        let p = AvgPool2d::new(5, 3, 0)?;
                        Pool::Avg(if style.ceil_mode { p.ceil_mode() } else { p })
                    }
                };
                let k1 = Conv2dConfig::new(1);
                let conv = basic_conv(in_channels, 128, k1, style.norm, style.init, vb.pp("conv"))?;
                let init = style.init.init();
                Head::GoogLeNet {
                    pool,
                    conv,
                    fc1: Linear::with_init(128 * 4 * 4, 1024, init, vb.pp("fc1"))?,
                    dropout: Dropout::new(dropout)?,
                    fc2: Linear::with_init(1024, num_classes, init, vb.pp("fc2"))?,
                }
            }
            // torchvision gives these two layers their own `stddev` (0.01 and 0.001).
            AuxKind::InceptionV3 => Head::InceptionV3 {
                pool: AvgPool2d::new(5, 3, 0)?,
                conv0: basic_conv(
                    in_channels,
                    128,
                    Conv2dConfig::new(1),
                    style.norm,
                    style.init,
                    vb.pp("conv0"),
                )?,
                conv1: basic_conv(
                    128,
                    768,
                    Conv2dConfig::new(5),
                    style.norm,
                    WeightInit::TruncNormal(0.01),
                    vb.pp("conv1"),
                )?,
                fc: Linear::with_init(
                    768,
                    num_classes,
                    WeightInit::TruncNormal(0.001).init(),
                    vb.pp("fc"),
                )?,
            },
        };
        Ok(Self { spec, head })
    }

    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.head {
            Head::GoogLeNet {
                pool,
                conv,
                fc1,
                dropout,
                fc2,
            } => {
                let x = conv.forward_t(&pool.forward(x)?, train)?.flatten_from(1)?;
                let x = fc1.forward(&x)?.relu()?;
                fc2.forward(&dropout.forward_t(&x, train)?)
            }
            Head::InceptionV3 {
                pool,
                conv0,
                conv1,
                fc,
            } => {
                let x = conv0.forward_t(&pool.forward(x)?, train)?;
                let x = conv1.forward_t(&x, train)?;
                fc.forward(&convnets_core::layers::global_avg_pool(&x)?)
            }
        }
    }

    pub(crate) fn fold_batch_norm(&mut self) -> Result<()> {
        match &mut self.head {
            Head::GoogLeNet { conv, .. } => conv.fold_batch_norm(),
            Head::InceptionV3 { conv0, conv1, .. } => {
                conv0.fold_batch_norm()?;
                conv1.fold_batch_norm()
            }
        }
    }
}
