//! The one model type of the family: a network description ([`Network`], what each
//! architecture's config compiles to) and the model built from it ([`Inception`]).

use candle_core::{Result, Tensor};
use candle_nn::{ModuleT, VarBuilder};
use convnets_core::layers::{Dropout, Linear, LocalResponseNorm, global_avg_pool};
use convnets_core::{AuxLogits, Classifier, TrainOutput};

use crate::auxiliary::{AuxClassifier, AuxSpec};
use crate::blocks::{Branch, Layer, Mixed, Op, Residual, Style};
use crate::input::TransformInput;

/// Local response normalisation hyper-parameters (`torch.nn.LocalResponseNorm`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lrn {
    /// Channels in the window.
    pub size: usize,
    /// Scale of the sum of squares (divided by `size`, as PyTorch and Caffe do).
    pub alpha: f64,
    /// Exponent.
    pub beta: f64,
    /// Additive constant.
    pub k: f64,
}

impl Lrn {
    /// `bvlc_googlenet`'s `norm1` and `norm2`: a window of 5, α = 1e-4, β = 0.75, and Caffe's
    /// default `k = 1` (AlexNet's was 2).
    pub const CAFFE_GOOGLENET: Self = Self {
        size: 5,
        alpha: 1e-4,
        beta: 0.75,
        k: 1.0,
    };
}

/// What a stage of the trunk is.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// One layer: a `BasicConv2d` named after the stage, or a pooling.
    Layer(Op),
    /// Local response normalisation (GoogLeNet as published).
    Lrn(Lrn),
    /// Branches over the same input, concatenated along the channels.
    Mixed(Vec<Branch>),
    /// `act(x + scale · conv2d(mixed(x)))`: Inception-ResNet (see the `blocks` module).
    Residual {
        /// The branches.
        branches: Vec<Branch>,
        /// The residual's scale.
        scale: f64,
        /// Whether a ReLU follows the sum (all but the last block of Inception-ResNet-v2).
        relu: bool,
    },
}

/// A named stage of the trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its module name in the reference state dict (`inception4a`, `Mixed_6e`,
    /// `features.7`, `repeat_1.13`); pooling and normalisation stages own no tensors and are
    /// named for error messages only.
    pub name: String,
    /// What it is.
    pub block: Block,
}

impl Stage {
    /// A stage.
    pub fn new(name: impl Into<String>, block: Block) -> Self {
        Self {
            name: name.into(),
            block,
        }
    }
}

/// The classifier after global average pooling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    /// The linear layer's name: `fc`, `last_linear`, `classif`.
    pub name: &'static str,
    /// Dropout before it.
    pub dropout: f64,
}

/// A whole network, as data: what [`crate::GoogLeNetConfig`], [`crate::InceptionV3Config`],
/// [`crate::InceptionV4Config`] and [`crate::InceptionResNetV2Config`] compile to, and what
/// [`Inception::new`] builds.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The map applied to the input first (torchvision's `transform_input`).
    pub transform_input: Option<TransformInput>,
    /// The trunk, from the input to the last feature map.
    pub stages: Vec<Stage>,
    /// The auxiliary classifiers, in the order their logits are returned.
    pub aux: Vec<AuxSpec>,
    /// The classifier.
    pub head: Head,
    /// Number of classes.
    pub num_classes: usize,
    /// The network-wide layer choices.
    pub style: Style,
}

#[derive(Debug, Clone)]
enum Built {
    Layer(Layer),
    Mixed(Mixed),
    Residual(Residual),
}

impl Built {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Self::Layer(l) => l.forward(x, train),
            Self::Mixed(m) => m.forward(x, train),
            Self::Residual(r) => r.forward(x, train),
        }
    }

    fn fold_batch_norm(&mut self) -> Result<()> {
        match self {
            Self::Layer(l) => l.fold_batch_norm(),
            Self::Mixed(m) => m.fold_batch_norm(),
            Self::Residual(r) => r.fold_batch_norm(),
        }
    }
}

/// A model of the Inception family: GoogLeNet, Inception-v3, Inception-v4 or
/// Inception-ResNet-v2, as its config describes.
///
/// In evaluation ([`ModuleT::forward_t`] with `train = false`) it returns logits; in training,
/// [`Classifier::forward_train`] also returns each auxiliary classifier's logits with the
/// weight of its loss.
#[derive(Debug, Clone)]
pub struct Inception {
    transform_input: Option<TransformInput>,
    stages: Vec<Built>,
    /// Each auxiliary classifier with the index of the stage it reads.
    aux: Vec<(usize, AuxClassifier)>,
    dropout: Dropout,
    fc: Linear,
    num_classes: usize,
    num_features: usize,
}

impl Inception {
    /// Builds the network `config` describes (any of the family's configs, or a
    /// [`Network`]), reading its tensors from `vb` under the reference's names.
    pub fn new(config: impl Into<Network>, vb: VarBuilder<'_>) -> Result<Self> {
        Self::from_network(&config.into(), vb)
    }

    /// Builds `net`.
    pub fn from_network(net: &Network, vb: VarBuilder<'_>) -> Result<Self> {
        let style = &net.style;
        let mut channels = 3;
        let mut stages = Vec::with_capacity(net.stages.len());
        let mut widths = Vec::with_capacity(net.stages.len());
        for stage in &net.stages {
            let vb = vb.pp(&stage.name);
            let built = match &stage.block {
                Block::Layer(op) => {
                    let (layer, out) = Layer::build(op, channels, style, vb)?;
                    channels = out;
                    Built::Layer(layer)
                }
                Block::Lrn(n) => Built::Layer(Layer::Lrn(LocalResponseNorm::new(
                    n.size, n.alpha, n.beta, n.k,
                )?)),
                Block::Mixed(branches) => {
                    let (mixed, out) = Mixed::build(branches, channels, style, &vb)?;
                    channels = out;
                    Built::Mixed(mixed)
                }
                Block::Residual {
                    branches,
                    scale,
                    relu,
                } => Built::Residual(Residual::build(
                    branches, *scale, *relu, channels, style, &vb,
                )?),
            };
            stages.push(built);
            widths.push(channels);
        }
        let aux = net
            .aux
            .iter()
            .map(|spec| {
                let Some(at) = net.stages.iter().position(|s| s.name == spec.after) else {
                    candle_core::bail!(
                        "auxiliary classifier `{}` reads stage `{}`, which the network lacks",
                        spec.name,
                        spec.after
                    )
                };
                let head = AuxClassifier::build(
                    *spec,
                    widths[at],
                    net.num_classes,
                    style,
                    vb.pp(spec.name),
                )?;
                Ok((at, head))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            transform_input: net.transform_input,
            stages,
            aux,
            dropout: Dropout::new(net.head.dropout)?,
            fc: Linear::with_init(
                channels,
                net.num_classes,
                style.init.init(),
                vb.pp(net.head.name),
            )?,
            num_classes: net.num_classes,
            num_features: channels,
        })
    }

    /// Channels of the last feature map, the classifier's input.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Whether the model has auxiliary classifiers.
    pub fn has_aux_logits(&self) -> bool {
        !self.aux.is_empty()
    }

    /// The trunk; in training with `aux`, also the auxiliary classifiers' logits.
    fn trunk(&self, xs: &Tensor, train: bool, aux: bool) -> Result<(Tensor, Vec<AuxLogits>)> {
        let mut x = match &self.transform_input {
            Some(t) => t.apply(xs)?,
            None => xs.clone(),
        };
        let mut aux_logits = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            x = stage.forward(&x, train)?;
            for (_, head) in self.aux.iter().filter(|(at, _)| aux && *at == i) {
                aux_logits.push(AuxLogits {
                    name: head.spec.name,
                    logits: head.forward(&x, train)?,
                    loss_weight: head.spec.loss_weight,
                });
            }
        }
        Ok((x, aux_logits))
    }
}

impl Classifier for Inception {
    fn forward_features(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.trunk(xs, train, false)?.0)
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let x = global_avg_pool(features)?;
        self.fc.forward(&self.dropout.forward_t(&x, train)?)
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn fold_batch_norm(&mut self) -> Result<()> {
        for stage in &mut self.stages {
            stage.fold_batch_norm()?;
        }
        for (_, head) in &mut self.aux {
            head.fold_batch_norm()?;
        }
        Ok(())
    }

    fn forward_train(&self, xs: &Tensor) -> Result<TrainOutput> {
        let (features, aux) = self.trunk(xs, true, true)?;
        Ok(TrainOutput {
            logits: self.forward_head(&features, true)?,
            aux,
        })
    }
}

impl ModuleT for Inception {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.classify(xs, train)
    }
}
