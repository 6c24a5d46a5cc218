//! Any architecture of the zoo behind one type, built fresh or from pretrained weights.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder};
use convnets_alexnet::AlexNet;
use convnets_core::checkpoint::Checkpoint;
use convnets_core::spec::WeightSpec;
use convnets_core::{Classifier, TrainOutput};
use convnets_inception::Inception;
use convnets_lenet::LeNet5;
use convnets_resnet::ResNet;
use convnets_vgg::Vgg;

use crate::error::{Error, Result};
use crate::fetch::Fetched;
use crate::registry::{Architecture, Config, architecture};

/// The network of one of the family crates. Built once per model, so the variants' sizes
/// do not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Inner {
    LeNet(LeNet5),
    AlexNet(AlexNet),
    Vgg(Vgg),
    ResNet(ResNet),
    Inception(Inception),
}

/// Calls the same method on whichever network it is.
macro_rules! dispatch {
    ($net:expr, $m:ident => $call:expr) => {
        match $net {
            Inner::LeNet($m) => $call,
            Inner::AlexNet($m) => $call,
            Inner::Vgg($m) => $call,
            Inner::ResNet($m) => $call,
            Inner::Inception($m) => $call,
        }
    };
}

/// A model of the zoo: any architecture, as one type that is a [`Classifier`].
///
/// Built from a name ([`Model::new`]) it is the family's preset, auxiliary heads included
/// where torchvision's constructor has them, ready to train from a `VarMap` or to load a
/// checkpoint through a `VarBuilder`. Built for a set of weights ([`Model::pretrained`]) it
/// is the inference network the weights fit, loaded strictly through the weights' key map.
#[derive(Debug, Clone)]
pub struct Model {
    arch: &'static Architecture,
    net: Inner,
}

impl Model {
    /// `arch`'s preset with `num_classes` classes, parameters from `vb`.
    pub fn new(
        arch: &'static Architecture,
        num_classes: usize,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        Self::from_config(arch, &arch.config.with_num_classes(num_classes), vb)
    }

    fn from_config(
        arch: &'static Architecture,
        config: &Config,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let net = match *config {
            Config::LeNet(c) => Inner::LeNet(LeNet5::new(&c, vb)?),
            Config::AlexNet(c) => Inner::AlexNet(AlexNet::new(&c, vb)?),
            Config::Vgg(c) => Inner::Vgg(Vgg::new(&c, vb)?),
            Config::ResNet(c) => Inner::ResNet(ResNet::new(&c, vb)?),
            Config::GoogLeNet(c) => Inner::Inception(Inception::new(c, vb)?),
            Config::InceptionV3(c) => Inner::Inception(Inception::new(c, vb)?),
            Config::InceptionV4(c) => Inner::Inception(Inception::new(c, vb)?),
            Config::InceptionResNetV2(c) => Inner::Inception(Inception::new(c, vb)?),
        };
        Ok(Self { arch, net })
    }

    /// The inference network `spec`'s weights fit, parameters from `vb`: the architecture
    /// with the weights' number of classes, and for the Inception family the network
    /// `convnets_inception::weights::network_for` derives from the weights' eval transform
    /// (no auxiliary heads, `transform_input` where the normalisation needs it).
    pub fn for_weights(spec: &WeightSpec, vb: VarBuilder<'_>) -> Result<Self> {
        let arch = architecture(spec.arch)?;
        match arch.config {
            Config::GoogLeNet(_)
            | Config::InceptionV3(_)
            | Config::InceptionV4(_)
            | Config::InceptionResNetV2(_) => {
                let network = convnets_inception::weights::network_for(spec)?;
                Ok(Self {
                    arch,
                    net: Inner::Inception(Inception::new(network, vb)?),
                })
            }
            config => Self::from_config(arch, &config.with_num_classes(spec.num_classes), vb),
        }
    }

    /// `spec`'s weights, fetched and checked by a [`crate::Fetcher`], loaded strictly through
    /// the weights' key map: every tensor used, none missing, every shape right.
    pub fn pretrained(
        spec: &WeightSpec,
        weights: &Fetched,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Self::from_file(spec, weights.path(), dtype, device)
    }

    /// A file in `spec`'s layout (its key map, its number of classes), loaded strictly but
    /// not checked against `spec`'s checksum: weights of the user's own, such as a
    /// fine-tuned copy.
    pub fn from_file(
        spec: &WeightSpec,
        path: impl AsRef<Path>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let checkpoint = Checkpoint::open(path)?;
        Ok(checkpoint.load(spec.key_map, dtype, device, |vb| {
            Self::for_weights(spec, vb).map_err(candle_core::Error::wrap)
        })?)
    }

    /// The architecture.
    pub fn architecture(&self) -> &'static Architecture {
        self.arch
    }

    /// Whether [`Model::forward_dense`] is defined for this architecture.
    pub fn supports_dense(&self) -> bool {
        matches!(
            self.net,
            Inner::Vgg(_) | Inner::ResNet(_) | Inner::Inception(_)
        )
    }

    /// Dense evaluation (Simonyan & Zisserman 2015 §3.2) of images of any size at least the
    /// network's input size: class scores of every position of the last feature map,
    /// averaged, `[N, classes]`. VGG applies fc6-fc8 as convolutions
    /// ([`Vgg::forward_dense`]); the ResNets and the Inception family, whose heads are global
    /// average pooling and one linear layer, compute exactly that average with their
    /// ordinary forward pass. AlexNet, ZFNet and LeNet-5 have none (their fully connected
    /// layers expect one input size).
    pub fn forward_dense(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(match &self.net {
            Inner::Vgg(m) => m.forward_dense(xs)?,
            Inner::ResNet(m) => m.forward_t(xs, false)?,
            Inner::Inception(m) => m.forward_t(xs, false)?,
            Inner::LeNet(_) | Inner::AlexNet(_) => {
                return Err(Error::Unsupported(format!(
                    "{}: dense evaluation needs a fully convolutional network (VGG, ResNet, \
                     Inception); its fully connected layers expect {}×{} inputs",
                    self.arch.name, self.arch.input_size, self.arch.input_size
                )));
            }
        })
    }
}

impl ModuleT for Model {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        dispatch!(&self.net, m => m.forward_t(xs, train))
    }
}

impl Classifier for Model {
    fn forward_features(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        dispatch!(&self.net, m => m.forward_features(xs, train))
    }

    fn forward_head(&self, features: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        dispatch!(&self.net, m => m.forward_head(features, train))
    }

    fn num_classes(&self) -> usize {
        dispatch!(&self.net, m => m.num_classes())
    }

    fn fold_batch_norm(&mut self) -> candle_core::Result<()> {
        dispatch!(&mut self.net, m => m.fold_batch_norm())
    }

    fn forward_train(&self, xs: &Tensor) -> candle_core::Result<TrainOutput> {
        dispatch!(&self.net, m => m.forward_train(xs))
    }
}

/// Builds the architecture called `name` with `num_classes` classes, parameters from `vb`
/// (a `VarMap` initialises them as the family's paper or torchvision does).
pub fn build(name: &str, num_classes: usize, vb: VarBuilder<'_>) -> Result<Box<dyn Classifier>> {
    Ok(Box::new(Model::new(architecture(name)?, num_classes, vb)?))
}
