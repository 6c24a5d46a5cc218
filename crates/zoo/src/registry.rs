//! Every architecture and every set of weights of the family crates, by name.
//!
//! The tables are the families' own: [`weights`] chains their `WEIGHTS`, [`paper_results`]
//! their `PAPER_RESULTS`; [`ARCHITECTURES`] names each preset of their configuration types
//! once. Adding a model to a family is adding rows there (and one line here for a new
//! architecture); nothing downstream changes.

use convnets_alexnet::AlexNetConfig;
use convnets_core::checkpoint::KeyMap;
use convnets_core::spec::{PaperResult, WeightSpec};
use convnets_inception::{
    GoogLeNetConfig, InceptionResNetV2Config, InceptionV3Config, InceptionV4Config,
};
use convnets_lenet::LeNetConfig;
use convnets_resnet::ResNetConfig;
use convnets_vgg::VggConfig;

use crate::error::{Error, Result};

/// The groups `cargo xtask reproduce` takes by name: one line of the history each, with its
/// dataset and its reference table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// LeNet-5 on MNIST (LeCun et al. 1998).
    LeNet,
    /// AlexNet (Krizhevsky et al. 2012) and torchvision's single-GPU form.
    AlexNet,
    /// ZFNet (Zeiler & Fergus 2013).
    ZfNet,
    /// VGG, configurations A to E (Simonyan & Zisserman 2015).
    Vgg,
    /// GoogLeNet (Szegedy et al. 2014), torchvision's and the paper's.
    GoogLeNet,
    /// Inception-v3, -v4 and Inception-ResNet-v2 (Szegedy et al. 2016).
    Inception,
    /// ImageNet ResNets, wide ResNets and ResNeXts (He et al. 2015).
    ResNet,
    /// The CIFAR-10 ResNets and plain nets of He et al. 2015 §4.2.
    ResNetCifar,
}

impl Family {
    /// Every family, in historical order.
    pub const ALL: [Self; 8] = [
        Self::LeNet,
        Self::AlexNet,
        Self::ZfNet,
        Self::Vgg,
        Self::GoogLeNet,
        Self::Inception,
        Self::ResNet,
        Self::ResNetCifar,
    ];

    /// The name on the command line: `lenet`, `resnet-cifar`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Self::LeNet => "lenet",
            Self::AlexNet => "alexnet",
            Self::ZfNet => "zfnet",
            Self::Vgg => "vgg",
            Self::GoogLeNet => "googlenet",
            Self::Inception => "inception",
            Self::ResNet => "resnet",
            Self::ResNetCifar => "resnet-cifar",
        }
    }

    /// The family called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The dataset its weights are evaluated on.
    pub const fn dataset(self) -> Dataset {
        match self {
            Self::LeNet => Dataset::Mnist,
            Self::ResNetCifar => Dataset::Cifar10,
            _ => Dataset::ImageNet,
        }
    }

    /// Its architectures.
    pub fn architectures(self) -> impl Iterator<Item = &'static Architecture> {
        ARCHITECTURES.iter().filter(move |a| a.family == self)
    }

    /// Its pretrained weights.
    pub fn weights(self) -> impl Iterator<Item = &'static WeightSpec> {
        weights().filter(move |w| family_of(w.arch) == Some(self))
    }

    /// The results its papers report.
    pub fn paper_results(self) -> impl Iterator<Item = &'static PaperResult> {
        paper_results().filter(move |r| family_of(r.arch) == Some(self))
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A dataset weights are evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// The 10,000 MNIST test digits.
    Mnist,
    /// The 50,000 ILSVRC-2012 validation images.
    ImageNet,
    /// The 10,000 CIFAR-10 test images.
    Cifar10,
}

impl Dataset {
    /// The name accuracy rows use (`Accuracy::dataset`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist test",
            Self::ImageNet => "imagenet-1k val",
            Self::Cifar10 => "cifar-10 test",
        }
    }

    /// Number of images of the evaluation split: a run over fewer is partial.
    pub const fn images(self) -> usize {
        match self {
            Self::Mnist | Self::Cifar10 => 10_000,
            Self::ImageNet => 50_000,
        }
    }
}

/// An architecture's configuration, as its family crate defines it. (`const` data, hence
/// not boxed: AlexNet's five stages make its variant the largest.)
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Config {
    /// `convnets-lenet`.
    LeNet(LeNetConfig),
    /// `convnets-alexnet`.
    AlexNet(AlexNetConfig),
    /// `convnets-vgg`.
    Vgg(VggConfig),
    /// `convnets-resnet`.
    ResNet(ResNetConfig),
    /// `convnets-inception`, GoogLeNet.
    GoogLeNet(GoogLeNetConfig),
    /// `convnets-inception`, Inception-v3.
    InceptionV3(InceptionV3Config),
    /// `convnets-inception`, Inception-v4.
    InceptionV4(InceptionV4Config),
    /// `convnets-inception`, Inception-ResNet-v2.
    InceptionResNetV2(InceptionResNetV2Config),
}

impl Config {
    /// The same with another number of classes.
    pub const fn with_num_classes(self, n: usize) -> Self {
        match self {
            Self::LeNet(c) => Self::LeNet(c.with_num_classes(n)),
            Self::AlexNet(c) => Self::AlexNet(c.with_num_classes(n)),
            Self::Vgg(c) => Self::Vgg(c.with_num_classes(n)),
            Self::ResNet(c) => Self::ResNet(c.with_num_classes(n)),
            Self::GoogLeNet(c) => Self::GoogLeNet(c.with_num_classes(n)),
            Self::InceptionV3(c) => Self::InceptionV3(c.with_num_classes(n)),
            Self::InceptionV4(c) => Self::InceptionV4(c.with_num_classes(n)),
            Self::InceptionResNetV2(c) => Self::InceptionResNetV2(c.with_num_classes(n)),
        }
    }

    /// Number of classes.
    pub const fn num_classes(&self) -> usize {
        match self {
            Self::LeNet(c) => c.num_classes,
            Self::AlexNet(c) => c.num_classes,
            Self::Vgg(c) => c.num_classes,
            Self::ResNet(c) => c.num_classes,
            Self::GoogLeNet(c) => c.num_classes,
            Self::InceptionV3(c) => c.num_classes,
            Self::InceptionV4(c) => c.num_classes,
            Self::InceptionResNetV2(c) => c.num_classes,
        }
    }

    /// Channels of the input images.
    pub const fn in_channels(&self) -> usize {
        match self {
            Self::LeNet(c) => c.in_channels,
            Self::AlexNet(c) => c.in_channels,
            Self::Vgg(c) => c.in_channels,
            Self::ResNet(c) => c.in_channels,
            Self::GoogLeNet(_)
            | Self::InceptionV3(_)
            | Self::InceptionV4(_)
            | Self::InceptionResNetV2(_) => 3,
        }
    }

    /// The key maps of the family: every checkpoint layout its models load.
    pub fn key_maps(&self) -> &'static [&'static KeyMap] {
        use convnets_vgg::weights as vgg;
        use {convnets_alexnet::weights as alexnet, convnets_inception::weights as inception};
        use {convnets_lenet::weights as lenet, convnets_resnet::weights as resnet};
        match self {
            Self::LeNet(_) => &[&lenet::NATIVE],
            Self::AlexNet(_) => &[
                &alexnet::TORCHVISION,
                &alexnet::CAFFE_BVLC_ALEXNET,
                &alexnet::CAFFE2_ZFNET512,
            ],
            Self::Vgg(_) => &[&vgg::TORCHVISION, &vgg::TIMM],
            Self::ResNet(_) => &[&resnet::TORCHVISION, &resnet::TIMM],
            Self::GoogLeNet(_)
            | Self::InceptionV3(_)
            | Self::InceptionV4(_)
            | Self::InceptionResNetV2(_) => &[
                &inception::TORCHVISION,
                &inception::TIMM,
                &inception::CAFFE_ONNX,
            ],
        }
    }
}

/// A named preset of a family's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Architecture {
    /// Its name, as weight ids and paper rows use it (`resnet50`, `vgg16_bn`).
    pub name: &'static str,
    /// The family `cargo xtask reproduce` files it under.
    pub family: Family,
    /// The configuration (with the preset's number of classes).
    pub config: Config,
    /// The side of the square input it is designed for.
    pub input_size: usize,
    /// One line on what it is.
    pub summary: &'static str,
}

impl Architecture {
    /// The shape of one input image, `[channels, height, width]`.
    pub const fn input_shape(&self) -> [usize; 3] {
        [self.config.in_channels(), self.input_size, self.input_size]
    }

    /// Its pretrained weights.
    pub fn weights(&self) -> impl Iterator<Item = &'static WeightSpec> + use<> {
        let name = self.name;
        weights().filter(move |w| w.arch == name)
    }

    /// The results its paper reports.
    pub fn paper_results(&self) -> impl Iterator<Item = &'static PaperResult> + use<> {
        let name = self.name;
        paper_results().filter(move |r| r.arch == name)
    }
}

const fn arch(
    name: &'static str,
    family: Family,
    config: Config,
    input_size: usize,
    summary: &'static str,
) -> Architecture {
    Architecture {
        name,
        family,
        config,
        input_size,
        summary,
    }
}

use Config as C;
use Family as F;

/// Every architecture of the zoo, family by family.
pub const ARCHITECTURES: &[Architecture] = &[
    arch(
        "lenet5_classic",
        F::LeNet,
        C::LeNet(LeNetConfig::classic()),
        32,
        "LeNet-5 as LeCun et al. 1998: C3 table, trainable subsampling, RBF output",
    ),
    arch(
        "lenet5_modern",
        F::LeNet,
        C::LeNet(LeNetConfig::modern()),
        32,
        "LeNet-5 with ReLU, max pooling and a linear output",
    ),
    arch(
        "alexnet",
        F::AlexNet,
        C::AlexNet(AlexNetConfig::alexnet()),
        224,
        "torchvision's AlexNet (Krizhevsky 2014, one GPU, no LRN)",
    ),
    arch(
        "alexnet_paper",
        F::AlexNet,
        C::AlexNet(AlexNetConfig::alexnet_paper()),
        227,
        "AlexNet as Krizhevsky et al. 2012: two groups, LRN, overlapping pooling",
    ),
    arch(
        "bvlc_alexnet",
        F::AlexNet,
        C::AlexNet(AlexNetConfig::bvlc_alexnet()),
        227,
        "Caffe's bvlc_alexnet: the paper's network with Caffe's LRN constants",
    ),
    arch(
        "zfnet",
        F::ZfNet,
        C::AlexNet(AlexNetConfig::zfnet()),
        224,
        "ZFNet as Zeiler & Fergus 2013, Fig. 3",
    ),
    arch(
        "zfnet512",
        F::ZfNet,
        C::AlexNet(AlexNetConfig::zfnet512()),
        224,
        "the ONNX model zoo's ZFNet-512 (Caffe2)",
    ),
    arch(
        "vgg11",
        F::Vgg,
        C::Vgg(VggConfig::a()),
        224,
        "VGG A, 11 weight layers",
    ),
    arch(
        "vgg11_bn",
        F::Vgg,
        C::Vgg(VggConfig::a().with_batch_norm()),
        224,
        "VGG A with BatchNorm",
    ),
    arch(
        "vgg11_lrn",
        F::Vgg,
        C::Vgg(VggConfig::a_lrn()),
        224,
        "VGG A-LRN",
    ),
    arch(
        "vgg11_lrn_bn",
        F::Vgg,
        C::Vgg(VggConfig::a_lrn().with_batch_norm()),
        224,
        "VGG A-LRN with BatchNorm",
    ),
    arch(
        "vgg13",
        F::Vgg,
        C::Vgg(VggConfig::b()),
        224,
        "VGG B, 13 weight layers",
    ),
    arch(
        "vgg13_bn",
        F::Vgg,
        C::Vgg(VggConfig::b().with_batch_norm()),
        224,
        "VGG B with BatchNorm",
    ),
    arch(
        "vgg16c",
        F::Vgg,
        C::Vgg(VggConfig::c()),
        224,
        "VGG C, 16 weight layers with 1×1 convolutions",
    ),
    arch(
        "vgg16c_bn",
        F::Vgg,
        C::Vgg(VggConfig::c().with_batch_norm()),
        224,
        "VGG C with BatchNorm",
    ),
    arch(
        "vgg16",
        F::Vgg,
        C::Vgg(VggConfig::d()),
        224,
        "VGG D, 16 weight layers",
    ),
    arch(
        "vgg16_bn",
        F::Vgg,
        C::Vgg(VggConfig::d().with_batch_norm()),
        224,
        "VGG D with BatchNorm",
    ),
    arch(
        "vgg19",
        F::Vgg,
        C::Vgg(VggConfig::e()),
        224,
        "VGG E, 19 weight layers",
    ),
    arch(
        "vgg19_bn",
        F::Vgg,
        C::Vgg(VggConfig::e().with_batch_norm()),
        224,
        "VGG E with BatchNorm",
    ),
    arch(
        "googlenet",
        F::GoogLeNet,
        C::GoogLeNet(GoogLeNetConfig::googlenet()),
        224,
        "torchvision's GoogLeNet: BatchNorm, 3×3 third branch, auxiliary heads",
    ),
    arch(
        "googlenet_paper",
        F::GoogLeNet,
        C::GoogLeNet(GoogLeNetConfig::paper()),
        224,
        "GoogLeNet as Szegedy et al. 2014 and Caffe's bvlc_googlenet: LRN, 5×5 branch",
    ),
    arch(
        "inception_v3",
        F::Inception,
        C::InceptionV3(InceptionV3Config::inception_v3()),
        299,
        "torchvision's Inception-v3, with its auxiliary head",
    ),
    arch(
        "inception_v4",
        F::Inception,
        C::InceptionV4(InceptionV4Config::inception_v4()),
        299,
        "timm's Inception-v4",
    ),
    arch(
        "inception_resnet_v2",
        F::Inception,
        C::InceptionResNetV2(InceptionResNetV2Config::inception_resnet_v2()),
        299,
        "timm's Inception-ResNet-v2",
    ),
    arch(
        "resnet18",
        F::ResNet,
        C::ResNet(ResNetConfig::resnet18()),
        224,
        "ResNet-18, basic blocks 2-2-2-2",
    ),
    arch(
        "resnet34",
        F::ResNet,
        C::ResNet(ResNetConfig::resnet34()),
        224,
        "ResNet-34, basic blocks 3-4-6-3",
    ),
    arch(
        "resnet50",
        F::ResNet,
        C::ResNet(ResNetConfig::resnet50()),
        224,
        "ResNet-50 v1.5, bottlenecks 3-4-6-3",
    ),
    arch(
        "resnet101",
        F::ResNet,
        C::ResNet(ResNetConfig::resnet101()),
        224,
        "ResNet-101 v1.5, bottlenecks 3-4-23-3",
    ),
    arch(
        "resnet152",
        F::ResNet,
        C::ResNet(ResNetConfig::resnet152()),
        224,
        "ResNet-152 v1.5, bottlenecks 3-8-36-3",
    ),
    arch(
        "wide_resnet50_2",
        F::ResNet,
        C::ResNet(ResNetConfig::wide_resnet50_2()),
        224,
        "Wide ResNet-50-2: bottlenecks twice as wide",
    ),
    arch(
        "wide_resnet101_2",
        F::ResNet,
        C::ResNet(ResNetConfig::wide_resnet101_2()),
        224,
        "Wide ResNet-101-2",
    ),
    arch(
        "resnext50_32x4d",
        F::ResNet,
        C::ResNet(ResNetConfig::resnext50_32x4d()),
        224,
        "ResNeXt-50 32×4d",
    ),
    arch(
        "resnext101_32x8d",
        F::ResNet,
        C::ResNet(ResNetConfig::resnext101_32x8d()),
        224,
        "ResNeXt-101 32×8d",
    ),
    arch(
        "resnet20",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::resnet20()),
        32,
        "CIFAR ResNet-20 (option A shortcuts)",
    ),
    arch(
        "resnet32",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::resnet32()),
        32,
        "CIFAR ResNet-32",
    ),
    arch(
        "resnet44",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::resnet44()),
        32,
        "CIFAR ResNet-44",
    ),
    arch(
        "resnet56",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::resnet56()),
        32,
        "CIFAR ResNet-56",
    ),
    arch(
        "resnet110",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::resnet110()),
        32,
        "CIFAR ResNet-110",
    ),
    arch(
        "resnet1202",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::resnet1202()),
        32,
        "CIFAR ResNet-1202",
    ),
    arch(
        "plain20",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::plain20()),
        32,
        "CIFAR plain net of 20 layers (ResNet-20 without shortcuts)",
    ),
    arch(
        "plain32",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::plain32()),
        32,
        "CIFAR plain net of 32 layers",
    ),
    arch(
        "plain44",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::plain44()),
        32,
        "CIFAR plain net of 44 layers",
    ),
    arch(
        "plain56",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::plain56()),
        32,
        "CIFAR plain net of 56 layers",
    ),
    arch(
        "plain110",
        F::ResNetCifar,
        C::ResNet(ResNetConfig::plain110()),
        32,
        "CIFAR plain net of 110 layers",
    ),
];

/// The architecture called `name`.
pub fn architecture(name: &str) -> Result<&'static Architecture> {
    ARCHITECTURES
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| Error::UnknownArchitecture {
            name: name.to_string(),
            known: ARCHITECTURES
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The family of the architecture called `arch`.
pub fn family_of(arch: &str) -> Option<Family> {
    ARCHITECTURES
        .iter()
        .find(|a| a.name == arch)
        .map(|a| a.family)
}

/// Every set of pretrained weights, family by family.
pub fn weights() -> impl Iterator<Item = &'static WeightSpec> {
    [
        convnets_lenet::weights::WEIGHTS,
        convnets_alexnet::weights::WEIGHTS,
        convnets_vgg::weights::WEIGHTS,
        convnets_inception::weights::WEIGHTS,
        convnets_resnet::weights::WEIGHTS,
    ]
    .into_iter()
    .flatten()
}

/// The weights with id `id` (`resnet50.tv_in1k`).
pub fn weight(id: &str) -> Result<&'static WeightSpec> {
    weights()
        .find(|w| w.id == id)
        .ok_or_else(|| Error::UnknownWeights {
            id: id.to_string(),
            known: weights().map(|w| w.id).collect::<Vec<_>>().join(", "),
        })
}

/// Every result the papers report, family by family.
pub fn paper_results() -> impl Iterator<Item = &'static PaperResult> {
    [
        convnets_lenet::weights::PAPER_RESULTS,
        convnets_alexnet::weights::PAPER_RESULTS,
        convnets_vgg::weights::PAPER_RESULTS,
        convnets_inception::weights::PAPER_RESULTS,
        convnets_resnet::weights::PAPER_RESULTS,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_every_row_has_its_architecture() {
        let names: HashSet<_> = ARCHITECTURES.iter().map(|a| a.name).collect();
        assert_eq!(names.len(), ARCHITECTURES.len());
        let ids: HashSet<_> = weights().map(|w| w.id).collect();
        assert_eq!(ids.len(), weights().count());
        for w in weights() {
            let a = architecture(w.arch).expect("weights of a known architecture");
            assert_eq!(
                w.id.split_once('.').map(|(a, _)| a),
                Some(a.name),
                "{}",
                w.id
            );
            assert_eq!(a.config.in_channels(), a.input_shape()[0]);
        }
        for r in paper_results() {
            assert!(names.contains(r.arch), "paper row of unknown `{}`", r.arch);
        }
    }

    #[test]
    fn the_names_are_the_families_own() {
        for a in ARCHITECTURES {
            match a.config {
                Config::Vgg(c) => assert_eq!(c.arch(), a.name),
                Config::ResNet(c) if a.family == Family::ResNetCifar => {
                    assert_eq!(c.num_classes, 10, "{}", a.name);
                    assert_eq!(a.input_size, 32);
                }
                _ => {}
            }
            assert_eq!(Family::from_name(a.family.name()), Some(a.family));
        }
        assert_eq!(
            weight("nope").unwrap_err().to_string().split(';').next(),
            Some("unknown weights `nope`")
        );
    }
}
