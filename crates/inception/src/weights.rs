//! The family's pretrained weights, the key maps that name their tensors, and the paper's
//! GoogLeNet results.
//!
//! All four files are ports of Google's TensorFlow models, trained on RGB pixels scaled to
//! [-1, 1]. torchvision evaluates its two with ImageNet normalisation and a
//! `transform_input` inside the model; timm evaluates its two with mean = std = 0.5 and none.
//! [`network_for`] builds the map from each spec's own eval transform (see
//! [`TransformInput::for_eval_transform`]), so the normalisation happens exactly once.

use candle_core::Result;
use convnets_core::checkpoint::{KeyMap, KeyRule, UNUSED_NUM_BATCHES_TRACKED};
use convnets_core::spec::{
    Accuracy, EvalTransform, INCEPTION_MEAN, INCEPTION_STD, Interpolation, PaperResult, Protocol,
    WeightSource, WeightSpec,
};

use crate::input::TransformInput;
use crate::network::Network;
use crate::{GoogLeNetConfig, InceptionResNetV2Config, InceptionV3Config, InceptionV4Config};

const WHY_AUX: &str = "auxiliary classifier, used only in training: a model built without \
                       auxiliary heads (aux_logits off) leaves it unused";

/// torchvision's GoogLeNet and Inception-v3 files. Their auxiliary classifiers (`aux1`,
/// `aux2`, `AuxLogits`) are loaded when the model has them and may be absent or unused when
/// it does not, so inference models load full and inference-only files alike.
pub const TORCHVISION: KeyMap = KeyMap {
    name: "torchvision",
    rules: &[
        UNUSED_NUM_BATCHES_TRACKED,
        KeyRule::Unused {
            pattern: "aux1.*",
            why: WHY_AUX,
        },
        KeyRule::Unused {
            pattern: "aux2.*",
            why: WHY_AUX,
        },
        KeyRule::Unused {
            pattern: "AuxLogits.*",
            why: WHY_AUX,
        },
    ],
};

/// timm's Inception-v4 and Inception-ResNet-v2 files, whose module tree the models reproduce.
pub const TIMM: KeyMap = KeyMap {
    name: "timm",
    rules: &[UNUSED_NUM_BATCHES_TRACKED],
};

/// Rules renaming each Caffe layer's `{layer}_w_0` / `{layer}_b_0` to `{module}.weight` /
/// `{module}.bias`, followed by the other rules given.
macro_rules! caffe_rules {
    ($(($layer:literal, $module:literal)),* ; $($rule:expr),*) => {
        &[
            $(
                KeyRule::Rename { from: concat!($layer, "_w_0"), to: concat!($module, ".weight") },
                KeyRule::Rename { from: concat!($layer, "_b_0"), to: concat!($module, ".bias") },
            )*
            $($rule),*
        ]
    };
}

/// Caffe's `bvlc_googlenet` as the ONNX model zoo exports it through Caffe2: initialisers
/// named `conv1/7x7_s2_w_0`, `inception_4a/5x5_reduce_b_0`, …, for
/// [`GoogLeNetConfig::paper`] without auxiliary classifiers (the export is the deploy
/// network, which has none). The classifier's weight is stored as `[1, 1, 1000, 1024]`.
pub const CAFFE_ONNX: KeyMap = KeyMap {
    name: "caffe-onnx",
    rules: caffe_rules![
        ("conv1/7x7_s2", "conv1.conv"),
        ("conv2/3x3_reduce", "conv2.conv"),
        ("conv2/3x3", "conv3.conv"),
        ("inception_*/1x1", "inception*.branch1.conv"),
        ("inception_*/3x3_reduce", "inception*.branch2.0.conv"),
        ("inception_*/3x3", "inception*.branch2.1.conv"),
        ("inception_*/5x5_reduce", "inception*.branch3.0.conv"),
        ("inception_*/5x5", "inception*.branch3.1.conv"),
        ("inception_*/pool_proj", "inception*.branch4.1.conv"),
        ("loss3/classifier", "fc");
        KeyRule::Reshape { pattern: "fc.weight" }
    ],
};

const TV_SOURCE_GOOGLENET: &str =
    "torchvision 0.29 GoogLeNet_Weights.IMAGENET1K_V1 meta[\"_metrics\"]";
const TV_SOURCE_INCEPTION_V3: &str =
    "torchvision 0.29 Inception_V3_Weights.IMAGENET1K_V1 meta[\"_metrics\"]";
const TIMM_RESULTS: &str = "timm results/results-imagenet.csv (huggingface/pytorch-image-models \
                            @ 0173a139a2c66db3a41ebfe1d8ac4fb02483642e)";

/// torchvision's GoogLeNet, ported from the original TensorFlow model. The file holds
/// untrained auxiliary classifiers too (torchvision warns they are "NOT pretrained").
/// `num_params` is torchvision's, for the model without them.
pub const GOOGLENET_TV_IN1K: WeightSpec = WeightSpec {
    id: "googlenet.tv_in1k",
    arch: "googlenet",
    source: WeightSource::Url {
        url: "https://download.pytorch.org/models/googlenet-1378be20.pth",
    },
    // The prefix of its sha256 the file name carries, which `torch.hub` checks.
    sha256: Some("1378be20"),
    key_map: &TORCHVISION,
    transform: EvalTransform::torchvision(256, 224),
    num_classes: 1000,
    num_params: 6_624_904,
    accuracy: &[Accuracy {
        dataset: "imagenet-1k val",
        protocol: Protocol::SingleCrop,
        top1: Some(69.778),
        top5: Some(89.530),
        source: TV_SOURCE_GOOGLENET,
    }],
};

/// torchvision's Inception-v3, ported from TensorFlow. `num_params` is torchvision's, for
/// the model with its auxiliary classifier (which this file has trained).
pub const INCEPTION_V3_TV_IN1K: WeightSpec = WeightSpec {
    id: "inception_v3.tv_in1k",
    arch: "inception_v3",
    source: WeightSource::Url {
        url: "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    },
    // The sha256 prefix of the file name.
    sha256: Some("0cc3c7bd"),
    key_map: &TORCHVISION,
    transform: EvalTransform::torchvision(342, 299),
    num_classes: 1000,
    num_params: 27_161_264,
    accuracy: &[Accuracy {
        dataset: "imagenet-1k val",
        protocol: Protocol::SingleCrop,
        top1: Some(77.294),
        top5: Some(93.450),
        source: TV_SOURCE_INCEPTION_V3,
    }],
};

/// timm's Inception-v4, ported from TensorFlow (`pretrained_cfg`: 299, crop_pct 0.875,
/// bicubic, mean = std = 0.5).
pub const INCEPTION_V4_TF_IN1K: WeightSpec = WeightSpec {
    id: "inception_v4.tf_in1k",
    arch: "inception_v4",
    source: WeightSource::Hub {
        repo: "timm/inception_v4.tf_in1k",
        file: "model.safetensors",
        revision: "main",
    },
    sha256: None,
    key_map: &TIMM,
    transform: EvalTransform::timm(299, 0.875, Interpolation::Bicubic)
        .normalize(INCEPTION_MEAN, INCEPTION_STD),
    num_classes: 1000,
    num_params: 42_679_816,
    accuracy: &[Accuracy {
        dataset: "imagenet-1k val",
        protocol: Protocol::SingleCrop,
        top1: Some(80.156),
        top5: Some(94.968),
        source: TIMM_RESULTS,
    }],
};

/// timm's Inception-ResNet-v2, ported from TensorFlow (`pretrained_cfg`: 299, crop_pct
/// 0.8975, bicubic, mean = std = 0.5).
pub const INCEPTION_RESNET_V2_TF_IN1K: WeightSpec = WeightSpec {
    id: "inception_resnet_v2.tf_in1k",
    arch: "inception_resnet_v2",
    source: WeightSource::Hub {
        repo: "timm/inception_resnet_v2.tf_in1k",
        file: "model.safetensors",
        revision: "main",
    },
    sha256: None,
    key_map: &TIMM,
    transform: EvalTransform::timm(299, 0.8975, Interpolation::Bicubic)
        .normalize(INCEPTION_MEAN, INCEPTION_STD),
    num_classes: 1000,
    num_params: 55_843_464,
    accuracy: &[Accuracy {
        dataset: "imagenet-1k val",
        protocol: Protocol::SingleCrop,
        top1: Some(80.462),
        top5: Some(95.308),
        source: TIMM_RESULTS,
    }],
};

/// Every pretrained file of the family.
pub const WEIGHTS: &[WeightSpec] = &[
    GOOGLENET_TV_IN1K,
    INCEPTION_V3_TV_IN1K,
    INCEPTION_V4_TF_IN1K,
    INCEPTION_RESNET_V2_TF_IN1K,
];

const PAPER: &str = "Szegedy et al. 2014, Going Deeper with Convolutions, Table 3";

const fn googlenet_row(label: &'static str, protocol: Protocol, top5: f64) -> PaperResult {
    PaperResult {
        arch: "googlenet_paper",
        label,
        accuracy: Accuracy {
            dataset: "imagenet-1k val",
            protocol,
            top1: None,
            top5: Some(top5),
            source: PAPER,
        },
    }
}

/// GoogLeNet's single-model results in the paper (top-5 error 10.07 %, 9.15 % and 7.89 %,
/// here as accuracy). The ILSVRC 2014 entry's 6.67 % is an ensemble of seven models with
/// 144 crops each.
pub const PAPER_RESULTS: &[PaperResult] = &[
    googlenet_row("GoogLeNet, 1 model, 1 crop", Protocol::SingleCrop, 89.93),
    googlenet_row("GoogLeNet, 1 model, 10 crops", Protocol::TenCrop, 90.85),
    googlenet_row(
        "GoogLeNet, 1 model, 144 crops (4 scales × 3 squares × 6 crops × 2 mirrors)",
        Protocol::MultiCrop { crops: 144 },
        92.11,
    ),
];

/// The network a pretrained file needs for inference: its architecture's preset, without
/// auxiliary classifiers, with the input map that brings images prepared by the spec's own
/// eval transform to the [-1, 1] range the weights were trained on (torchvision's
/// `transform_input` for `googlenet` and `inception_v3`, none for timm's two).
pub fn network_for(spec: &WeightSpec) -> Result<Network> {
    let t = TransformInput::for_eval_transform(&spec.transform)?;
    let n = spec.num_classes;
    Ok(match spec.arch {
        "googlenet" => GoogLeNetConfig::googlenet()
            .with_num_classes(n)
            .with_aux_logits(false)
            .with_transform_input(t)
            .into(),
        "inception_v3" => InceptionV3Config::inception_v3()
            .with_num_classes(n)
            .with_aux_logits(false)
            .with_transform_input(t)
            .into(),
        "inception_v4" => InceptionV4Config::inception_v4()
            .with_num_classes(n)
            .with_transform_input(t)
            .into(),
        "inception_resnet_v2" => InceptionResNetV2Config::inception_resnet_v2()
            .with_num_classes(n)
            .with_transform_input(t)
            .into(),
        other => candle_core::bail!(
            "`{}`: architecture `{other}` is not of this family",
            spec.id
        ),
    })
}
