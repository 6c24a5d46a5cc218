//! The AlexNet family, built from an [`AlexNetConfig`].

use candle_core::{Result, Tensor};
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_core::Classifier;
use convnets_core::layers::{
    Activation, AdaptiveAvgPool2d, Conv2d, Conv2dConfig, Dropout, Linear, LocalResponseNorm,
    MaxPool2d,
};

use crate::config::{AlexNetConfig, DropoutAt, InitScheme};

/// Krizhevsky et al. 2012 §5: the stages whose biases start at 1 (conv2, conv4, conv5).
const UNIT_BIAS_STAGES: [usize; 3] = [1, 3, 4];

/// Which layer an initialisation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Conv(usize),
    Hidden,
    Output,
}

impl InitScheme {
    /// `None`: PyTorch's defaults (the core layers' own).
    fn inits(self, layer: Layer) -> Option<(Init, Init)> {
        let gaussian = Init::Randn {
            mean: 0.0,
            stdev: 0.01,
        };
        match self {
            Self::Torch => None,
            Self::ZeilerFergus2013 => Some((gaussian, Init::Const(0.0))),
            Self::Krizhevsky2012 => {
                let unit = match layer {
                    Layer::Conv(i) => UNIT_BIAS_STAGES.contains(&i),
                    Layer::Hidden => true,
                    Layer::Output => false,
                };
                Some((gaussian, Init::Const(if unit { 1.0 } else { 0.0 })))
            }
        }
    }
}

fn conv(
    in_c: usize,
    out_c: usize,
    config: Conv2dConfig,
    inits: Option<(Init, Init)>,
    vb: VarBuilder<'_>,
) -> Result<Conv2d> {
    let Some((w_init, b_init)) = inits else {
        return Conv2d::new(in_c, out_c, config, vb);
    };
    if !in_c.is_multiple_of(config.groups) {
        candle_core::bail!(
            "AlexNet: {in_c} channels cannot be split in {} groups",
            config.groups
        )
    }
    let (kh, kw) = config.kernel;
    let weight = vb.get_with_hints((out_c, in_c / config.groups, kh, kw), "weight", w_init)?;
    let bias = vb.get_with_hints(out_c, "bias", b_init)?;
    Ok(Conv2d::from_parts(weight, Some(bias), config))
}

fn linear(
    in_f: usize,
    out_f: usize,
    inits: Option<(Init, Init)>,
    vb: VarBuilder<'_>,
) -> Result<Linear> {
    let Some((w_init, b_init)) = inits else {
        return Linear::new(in_f, out_f, vb);
    };
    let weight = vb.get_with_hints((out_f, in_f), "weight", w_init)?;
    let bias = vb.get_with_hints(out_f, "bias", b_init)?;
    Ok(Linear::from_parts(weight, Some(bias)))
}

/// Convolution, ReLU, and the stage's normalisation and pooling.
#[derive(Debug, Clone)]
struct Stage {
    conv: Conv2d,
    lrn: Option<LocalResponseNorm>,
    pool: Option<MaxPool2d>,
}

impl Stage {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.conv.forward_act(x, Activation::Relu)?;
        if let Some(lrn) = &self.lrn {
            x = lrn.forward(&x)?;
        }
        if let Some(pool) = &self.pool {
            x = pool.forward(&x)?;
        }
        Ok(x)
    }
}

/// AlexNet, the paper's or torchvision's, or ZFNet: `features` (five convolutional stages),
/// an optional `avgpool`, and `classifier` (fc6, fc7, fc8 with dropout).
///
/// Module names follow torchvision's `nn.Sequential` indices, derived from the
/// configuration: in `features`, each stage takes one index for its convolution, one for its
/// ReLU, one for its LRN and one for its pooling, when it has them (torchvision: convolutions
/// at `features.{0,3,6,8,10}`; the paper's layout: `features.{0,4,8,10,12}`); in
/// `classifier`, dropout takes an index before (torchvision, `classifier.{1,4,6}`) or after
/// (the papers, `classifier.{0,3,6}`) each hidden layer.
#[derive(Debug, Clone)]
pub struct AlexNet {
    config: AlexNetConfig,
    stages: Vec<Stage>,
    avgpool: Option<AdaptiveAvgPool2d>,
    hidden: Vec<Linear>,
    output: Linear,
    dropout: Dropout,
    classifier_input: (usize, usize, usize),
}

impl AlexNet {
    /// Builds the network; parameters come from `vb`.
    pub fn new(config: &AlexNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let vb_features = vb.pp("features");
        let mut index = 0;
        let mut in_c = config.in_channels;
        let mut stages = Vec::with_capacity(config.stages.len());
        for (i, stage) in config.stages.iter().enumerate() {
            let conv = conv(
                in_c,
                stage.out_channels,
                stage.conv,
                config.init.inits(Layer::Conv(i)),
                vb_features.pp(index),
            )?;
            index += 2; // convolution, ReLU
            let lrn = match stage.lrn {
                Some(l) => {
                    index += 1;
                    Some(LocalResponseNorm::new(l.size, l.alpha, l.beta, l.k)?)
                }
                None => None,
            };
            let pool = match stage.pool {
                Some(p) => {
                    index += 1;
                    Some(p.layer()?)
                }
                None => None,
            };
            stages.push(Stage { conv, lrn, pool });
            in_c = stage.out_channels;
        }

        let classifier_input = config.classifier_input()?;
        let (c, h, w) = classifier_input;
        let vb_classifier = vb.pp("classifier");
        let mut index = 0;
        let mut fan_in = c * h * w;
        let mut hidden = Vec::with_capacity(config.hidden.len());
        for &units in &config.hidden {
            if config.dropout_at == DropoutAt::Input {
                index += 1;
            }
            let inits = config.init.inits(Layer::Hidden);
            hidden.push(linear(fan_in, units, inits, vb_classifier.pp(index))?);
            index += 2; // linear, ReLU
            if config.dropout_at == DropoutAt::Output {
                index += 1;
            }
            fan_in = units;
        }
        let inits = config.init.inits(Layer::Output);
        let output = linear(fan_in, config.num_classes, inits, vb_classifier.pp(index))?;
        Ok(Self {
            config: *config,
            stages,
            avgpool: config
                .adaptive_pool
                .map(|s| AdaptiveAvgPool2d::new(s, s))
                .transpose()?,
            hidden,
            output,
            dropout: Dropout::new(config.dropout)?,
            classifier_input,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AlexNetConfig {
        &self.config
    }
}

impl Classifier for AlexNet {
    /// The fifth stage's pooled maps, `[N, C5, h, w]`.
    fn forward_features(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        self.stages
            .iter()
            .try_fold(xs.clone(), |x, s| s.forward(&x))
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let x = match &self.avgpool {
            Some(pool) => pool.forward(features)?,
            None => features.clone(),
        };
        let (_, c, h, w) = x.dims4()?;
        if (c, h, w) != self.classifier_input {
            let (ec, eh, ew) = self.classifier_input;
            candle_core::bail!(
                "AlexNet: fc6 reads [{ec}, {eh}, {ew}] maps, the features are [{c}, {h}, {w}]; \
                 this configuration needs {0}×{0} inputs",
                self.config.input_size
            )
        }
        let mut x = x.flatten_from(1)?;
        for fc in &self.hidden {
            if self.config.dropout_at == DropoutAt::Input {
                x = self.dropout.forward_t(&x, train)?;
            }
            x = fc.forward(&x)?.relu()?;
            if self.config.dropout_at == DropoutAt::Output {
                x = self.dropout.forward_t(&x, train)?;
            }
        }
        self.output.forward(&x)
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }
}

impl ModuleT for AlexNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.classify(xs, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krizhevsky_biases_are_one_where_the_paper_says() {
        let bias = |layer| match InitScheme::Krizhevsky2012.inits(layer) {
            Some((Init::Randn { mean, stdev }, Init::Const(b))) => {
                assert_eq!((mean, stdev), (0.0, 0.01));
                b
            }
            other => panic!("{other:?}"),
        };
        let conv: Vec<f64> = (0..5).map(|i| bias(Layer::Conv(i))).collect();
        assert_eq!(conv, [0.0, 1.0, 0.0, 1.0, 1.0]);
        assert_eq!(bias(Layer::Hidden), 1.0);
        assert_eq!(bias(Layer::Output), 0.0);
        assert!(InitScheme::Torch.inits(Layer::Hidden).is_none());
    }
}
