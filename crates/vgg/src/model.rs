//! The VGG network, built from a [`VggConfig`].

use candle_core::{Result, Tensor};
use candle_nn::{Init, ModuleT, VarBuilder};
use convnets_core::Classifier;
use convnets_core::layers::{
    Activation, AdaptiveAvgPool2d, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, ConvNormAct,
    Dropout, KAIMING_NORMAL_FAN_OUT, Linear, LocalResponseNorm, MaxPool2d,
};

use crate::config::{FC6_SIDE, LRN, VggConfig, VggLayer};

#[derive(Debug, Clone)]
enum Feature {
    /// A convolution, its optional BatchNorm, and ReLU.
    Conv(ConvNormAct),
    Lrn(LocalResponseNorm),
    Pool(MaxPool2d),
}

/// torchvision's VGG initialisation (`_initialize_weights` in `torchvision/models/vgg.py`):
/// convolutions `kaiming_normal_(fan_out, relu)` with zero bias.
fn conv(in_c: usize, out_c: usize, k: usize, vb: VarBuilder<'_>) -> Result<Conv2d> {
    let config = Conv2dConfig::new(k).same();
    let weight = vb.get_with_hints((out_c, in_c, k, k), "weight", KAIMING_NORMAL_FAN_OUT)?;
    let bias = vb.get_with_hints(out_c, "bias", Init::Const(0.0))?;
    Ok(Conv2d::from_parts(weight, Some(bias), config))
}

/// Fully connected layers: `N(0, 0.01²)` weights, zero bias.
fn linear(in_f: usize, out_f: usize, vb: VarBuilder<'_>) -> Result<Linear> {
    let init = Init::Randn {
        mean: 0.0,
        stdev: 0.01,
    };
    let weight = vb.get_with_hints((out_f, in_f), "weight", init)?;
    let bias = vb.get_with_hints(out_f, "bias", Init::Const(0.0))?;
    Ok(Linear::from_parts(weight, Some(bias)))
}

/// A VGG network as torchvision lays it out: `features` (the column of Table 1, indices
/// derived from it: a convolution, its BatchNorm and its ReLU take one index each, as do LRN
/// and pooling), `avgpool` (adaptive, to 7×7) and `classifier` (fc6 `classifier.0`, fc7
/// `classifier.3`, fc8 `classifier.6`, each hidden layer followed by ReLU and dropout).
///
/// Besides the usual forward pass, [`Vgg::forward_dense`] evaluates the network as the paper
/// does at test time (§3.2): the fully connected layers become convolutions (fc6 a 7×7, fc7
/// and fc8 1×1) applied to the whole feature map of an image of any size ≥ 224, and the class
/// score map is averaged spatially.
#[derive(Debug, Clone)]
pub struct Vgg {
    config: VggConfig,
    features: Vec<Feature>,
    avgpool: AdaptiveAvgPool2d,
    fc6: Linear,
    fc7: Linear,
    fc8: Linear,
    dropout: Dropout,
}

impl Vgg {
    /// Builds the network; parameters come from `vb` (a checkpoint, or a `VarMap` that
    /// initialises them as torchvision does).
    pub fn new(config: &VggConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let vb_features = vb.pp("features");
        let mut features = Vec::with_capacity(config.layers.len());
        let mut index = 0;
        let mut in_c = config.in_channels;
        for layer in config.layers {
            let (out_c, k) = match *layer {
                VggLayer::Conv3(c) => (c, 3),
                VggLayer::Conv1(c) => (c, 1),
                VggLayer::Lrn => {
                    let (size, alpha, beta, k) = LRN;
                    features.push(Feature::Lrn(LocalResponseNorm::new(size, alpha, beta, k)?));
                    index += 1;
                    continue;
                }
                VggLayer::MaxPool => {
                    features.push(Feature::Pool(MaxPool2d::new(2, 2, 0)?));
                    index += 1;
                    continue;
                }
            };
            let conv = conv(in_c, out_c, k, vb_features.pp(index))?;
            index += 1;
            let norm = if config.batch_norm {
                let bn = BatchNorm2d::new(out_c, BatchNormConfig::new(), vb_features.pp(index))?;
                index += 1;
                Some(bn)
            } else {
                None
            };
            index += 1; // ReLU
            features.push(Feature::Conv(ConvNormAct::from_parts(
                conv,
                norm,
                Activation::Relu,
            )));
            in_c = out_c;
        }
        let vb_classifier = vb.pp("classifier");
        let fc6_in = config.out_channels() * FC6_SIDE * FC6_SIDE;
        Ok(Self {
            config: *config,
            features,
            avgpool: AdaptiveAvgPool2d::new(FC6_SIDE, FC6_SIDE)?,
            fc6: linear(fc6_in, config.hidden, vb_classifier.pp(0))?,
            fc7: linear(config.hidden, config.hidden, vb_classifier.pp(3))?,
            fc8: linear(config.hidden, config.num_classes, vb_classifier.pp(6))?,
            dropout: Dropout::new(config.dropout)?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VggConfig {
        &self.config
    }

    /// The class score map: the fully connected layers applied as convolutions to the last
    /// feature map `[N, 512, h, w]` (`h, w ≥ 7`), giving `[N, classes, h − 6, w − 6]`.
    ///
    /// fc6 as a 7×7 convolution is fc6 applied to every 7×7 window of the map, flattened as
    /// the standard head flattens its 7×7 input; fc7 and fc8 as 1×1 convolutions are fc7 and
    /// fc8 applied at every position. It is computed that way: the windows are gathered once
    /// and the three layers run as matrix products, as fast as the standard head per window.
    pub fn score_map(&self, features: &Tensor) -> Result<Tensor> {
        let (n, _, h, w) = features.dims4()?;
        if h < FC6_SIDE || w < FC6_SIDE {
            candle_core::bail!(
                "VGG dense evaluation: a {h}×{w} feature map is smaller than fc6's 7×7 window; \
                 the image must be at least 224 pixels on each side"
            )
        }
        let (oh, ow) = (h - FC6_SIDE + 1, w - FC6_SIDE + 1);
        let mut windows = Vec::with_capacity(oh * ow);
        for i in 0..oh {
            let row = features.narrow(2, i, FC6_SIDE)?;
            for j in 0..ow {
                windows.push(row.narrow(3, j, FC6_SIDE)?.flatten_from(1)?);
            }
        }
        let x = Tensor::stack(&windows, 1)?.flatten_to(1)?; // [N·oh·ow, 512·7·7]
        let x = self.fc6.forward(&x)?.relu()?;
        let x = self.fc7.forward(&x)?.relu()?;
        self.fc8
            .forward(&x)?
            .reshape((n, oh, ow, self.config.num_classes))?
            .permute((0, 3, 1, 2))?
            .contiguous()
    }

    /// Dense evaluation of a last feature map: the score map averaged spatially, `[N, classes]`.
    /// On a 7×7 map (a 224×224 image) it equals [`Classifier::forward_head`] in evaluation.
    pub fn forward_dense_head(&self, features: &Tensor) -> Result<Tensor> {
        self.score_map(features)?.mean((2, 3))
    }

    /// Dense evaluation of images `[N, 3, H, W]`, `H, W ≥ 224` (Simonyan & Zisserman §3.2; the
    /// paper also averages the scores of the horizontally flipped image, which is the
    /// evaluation protocol's business).
    pub fn forward_dense(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_dense_head(&self.forward_features(xs, false)?)
    }
}

impl Classifier for Vgg {
    /// The last (pooled) feature map, `[N, 512, H/32, W/32]`.
    fn forward_features(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = xs.clone();
        for f in &self.features {
            x = match f {
                Feature::Conv(block) => block.forward_t(&x, train)?,
                Feature::Lrn(lrn) => lrn.forward(&x)?,
                Feature::Pool(pool) => pool.forward(&x)?,
            };
        }
        Ok(x)
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let x = self.avgpool.forward(features)?.flatten_from(1)?;
        let x = self.fc6.forward(&x)?.relu()?;
        let x = self.dropout.forward_t(&x, train)?;
        let x = self.fc7.forward(&x)?.relu()?;
        let x = self.dropout.forward_t(&x, train)?;
        self.fc8.forward(&x)
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn fold_batch_norm(&mut self) -> Result<()> {
        for f in &mut self.features {
            if let Feature::Conv(block) = f {
                block.fold_batch_norm()?;
            }
        }
        Ok(())
    }
}

impl ModuleT for Vgg {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.classify(xs, train)
    }
}
