//! VGG weights, the key maps of the files they come in, and the paper's tables.

use convnets_core::checkpoint::{KeyMap, KeyRule, UNUSED_NUM_BATCHES_TRACKED};
use convnets_core::spec::{
    Accuracy, EvalTransform, Interpolation, PaperResult, Protocol, WeightSource, WeightSpec,
};

/// torchvision's names are the model's own.
pub const TORCHVISION: KeyMap = KeyMap {
    name: "torchvision",
    rules: &[UNUSED_NUM_BATCHES_TRACKED],
};

/// timm's VGG (`timm/models/vgg.py`): the classifier is `pre_logits.fc1` (fc6 stored as a
/// `4096×512×7×7` convolution), `pre_logits.fc2` (fc7 as `4096×4096×1×1`) and `head.fc`
/// (fc8); the features are torchvision's.
pub const TIMM: KeyMap = KeyMap {
    name: "timm",
    rules: &[
        KeyRule::Rename {
            from: "pre_logits.fc1.*",
            to: "classifier.0.*",
        },
        KeyRule::Rename {
            from: "pre_logits.fc2.*",
            to: "classifier.3.*",
        },
        KeyRule::Rename {
            from: "head.fc.*",
            to: "classifier.6.*",
        },
        KeyRule::Reshape {
            pattern: "classifier.0.weight",
        },
        KeyRule::Reshape {
            pattern: "classifier.3.weight",
        },
        UNUSED_NUM_BATCHES_TRACKED,
    ],
};

/// torchvision's weights as timm hosts them on the Hugging Face Hub (`timm/<arch>.tv_in1k`:
/// the same tensors under timm's names), with the accuracy torchvision publishes for them.
/// Their sha256 is not recorded (it cannot be read without the network); torchvision's own
/// `.pth` files, whose names carry a sha256 prefix, are listed in `docs/vgg.md`.
macro_rules! tv_in1k {
    ($arch:literal, $num_params:expr, $top1:expr, $top5:expr, $weights:literal) => {
        WeightSpec {
            id: concat!($arch, ".tv_in1k"),
            arch: $arch,
            source: WeightSource::Hub {
                repo: concat!("timm/", $arch, ".tv_in1k"),
                file: "model.safetensors",
                revision: "main",
            },
            sha256: None,
            key_map: &TIMM,
            // timm's pretrained_cfg (crop_pct 0.875, bilinear) is torchvision's resize 256,
            // crop 224, with which torchvision measured the numbers below.
            transform: EvalTransform::timm(224, 0.875, Interpolation::Bilinear),
            num_classes: 1000,
            num_params: $num_params,
            accuracy: &[Accuracy {
                dataset: "imagenet-1k val",
                protocol: Protocol::SingleCrop,
                top1: Some($top1),
                top5: Some($top5),
                source: concat!(
                    "torchvision 0.29 ",
                    $weights,
                    ".IMAGENET1K_V1 meta[\"_metrics\"]"
                ),
            }],
        }
    };
}

/// Pretrained weights: the eight torchvision VGGs.
pub const WEIGHTS: &[WeightSpec] = &[
    tv_in1k!("vgg11", 132_863_336, 69.020, 88.628, "VGG11_Weights"),
    tv_in1k!("vgg11_bn", 132_868_840, 70.370, 89.810, "VGG11_BN_Weights"),
    tv_in1k!("vgg13", 133_047_848, 69.928, 89.246, "VGG13_Weights"),
    tv_in1k!("vgg13_bn", 133_053_736, 71.586, 90.374, "VGG13_BN_Weights"),
    tv_in1k!("vgg16", 138_357_544, 71.592, 90.382, "VGG16_Weights"),
    tv_in1k!("vgg16_bn", 138_365_992, 73.360, 91.516, "VGG16_BN_Weights"),
    tv_in1k!("vgg19", 143_667_240, 72.376, 90.876, "VGG19_Weights"),
    tv_in1k!("vgg19_bn", 143_678_248, 74.218, 91.842, "VGG19_BN_Weights"),
];

const SIMONYAN_ZISSERMAN: &str = "Simonyan, Zisserman 2015 (ICLR; arXiv:1409.1556v6), Very Deep \
                                  Convolutional Networks for Large-Scale Image Recognition";

/// The shorter sides the paper tests at (§4.2): `{S−32, S, S+32}` for a fixed training scale
/// `S`, `{S_min, (S_min+S_max)/2, S_max}` for scale jittering.
const Q256: &[usize] = &[256];
const Q384: &[usize] = &[384];
const Q224_256_288: &[usize] = &[224, 256, 288];
const Q352_384_416: &[usize] = &[352, 384, 416];
const Q256_384_512: &[usize] = &[256, 384, 512];

/// One row of the paper's tables, errors in percent, on ILSVRC-2012 val.
const fn row(
    arch: &'static str,
    label: &'static str,
    protocol: Protocol,
    top1_err: f64,
    top5_err: f64,
) -> PaperResult {
    PaperResult {
        arch,
        label,
        accuracy: Accuracy {
            dataset: "imagenet-1k val",
            protocol,
            top1: Some(100.0 - top1_err),
            top5: Some(100.0 - top5_err),
            source: SIMONYAN_ZISSERMAN,
        },
    }
}

const fn dense(scales: &'static [usize]) -> Protocol {
    Protocol::Dense { scales }
}

/// Simonyan & Zisserman's single-model results, as accuracy = 100 − error. Each label gives
/// the table, the configuration and the training scale `S` (a number, or `[256;512]` for
/// scale jittering); the protocol gives the test scales `Q`. Dense evaluation averages the
/// class score maps over positions, scales, and the image and its horizontal flip; the
/// multi-crop rows use 50 crops per scale (5×5 grid, 2 flips), 150 in all.
pub const PAPER_RESULTS: &[PaperResult] = &[
    // Table 3: a single test scale.
    row("vgg11", "Table 3: A, S=256", dense(Q256), 29.6, 10.4),
    row(
        "vgg11_lrn",
        "Table 3: A-LRN, S=256",
        dense(Q256),
        29.7,
        10.5,
    ),
    row("vgg13", "Table 3: B, S=256", dense(Q256), 28.7, 9.9),
    row("vgg16c", "Table 3: C, S=256", dense(Q256), 28.1, 9.4),
    row("vgg16c", "Table 3: C, S=384", dense(Q384), 28.1, 9.3),
    row("vgg16c", "Table 3: C, S=[256;512]", dense(Q384), 27.3, 8.8),
    row("vgg16", "Table 3: D, S=256", dense(Q256), 27.0, 8.8),
    row("vgg16", "Table 3: D, S=384", dense(Q384), 26.8, 8.7),
    row("vgg16", "Table 3: D, S=[256;512]", dense(Q384), 25.6, 8.1),
    row("vgg19", "Table 3: E, S=256", dense(Q256), 27.3, 9.0),
    row("vgg19", "Table 3: E, S=384", dense(Q384), 26.9, 8.7),
    row("vgg19", "Table 3: E, S=[256;512]", dense(Q384), 25.5, 8.0),
    // Table 4: several test scales.
    row("vgg13", "Table 4: B, S=256", dense(Q224_256_288), 28.2, 9.6),
    row(
        "vgg16c",
        "Table 4: C, S=256",
        dense(Q224_256_288),
        27.7,
        9.2,
    ),
    row(
        "vgg16c",
        "Table 4: C, S=384",
        dense(Q352_384_416),
        27.8,
        9.2,
    ),
    row(
        "vgg16c",
        "Table 4: C, S=[256;512]",
        dense(Q256_384_512),
        26.3,
        8.2,
    ),
    row("vgg16", "Table 4: D, S=256", dense(Q224_256_288), 26.6, 8.6),
    row("vgg16", "Table 4: D, S=384", dense(Q352_384_416), 26.5, 8.6),
    row(
        "vgg16",
        "Table 4: D, S=[256;512]",
        dense(Q256_384_512),
        24.8,
        7.5,
    ),
    row("vgg19", "Table 4: E, S=256", dense(Q224_256_288), 26.9, 8.7),
    row("vgg19", "Table 4: E, S=384", dense(Q352_384_416), 26.7, 8.6),
    row(
        "vgg19",
        "Table 4: E, S=[256;512]",
        dense(Q256_384_512),
        24.8,
        7.5,
    ),
    // Table 5: multi-crop, and multi-crop with dense (its dense rows are Table 4's last).
    row(
        "vgg16",
        "Table 5: D, S=[256;512], multi-crop",
        Protocol::MultiCrop { crops: 150 },
        24.6,
        7.5,
    ),
    row(
        "vgg16",
        "Table 5: D, S=[256;512], multi-crop & dense",
        Protocol::DenseAndMultiCrop {
            scales: Q256_384_512,
        },
        24.4,
        7.2,
    ),
    row(
        "vgg19",
        "Table 5: E, S=[256;512], multi-crop",
        Protocol::MultiCrop { crops: 150 },
        24.6,
        7.4,
    ),
    row(
        "vgg19",
        "Table 5: E, S=[256;512], multi-crop & dense",
        Protocol::DenseAndMultiCrop {
            scales: Q256_384_512,
        },
        24.4,
        7.1,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VggConfig;

    #[test]
    fn the_table_agrees_with_the_configurations() {
        assert_eq!(WEIGHTS.len(), 8);
        for w in WEIGHTS {
            let config = VggConfig::for_arch(w.arch).expect("a configuration per weight");
            assert_eq!(config.num_params(), w.num_params, "{}", w.id);
            assert_eq!(w.id, format!("{}.tv_in1k", w.arch));
            assert_eq!(w.transform.resize_shorter_side(), Some(256));
        }
        for r in PAPER_RESULTS {
            assert!(VggConfig::for_arch(r.arch).is_some(), "{}", r.arch);
            assert!(r.arch.starts_with("vgg") && !r.arch.ends_with("_bn"));
        }
    }

    #[test]
    fn timm_names_map_onto_torchvision_names() -> convnets_core::Result<()> {
        assert_eq!(
            TIMM.rename("pre_logits.fc1.weight")?.as_deref(),
            Some("classifier.0.weight")
        );
        assert_eq!(
            TIMM.rename("head.fc.bias")?.as_deref(),
            Some("classifier.6.bias")
        );
        assert_eq!(TIMM.rename("features.24.running_var")?, None);
        assert!(TIMM.may_reshape("classifier.0.weight"));
        assert!(!TIMM.may_reshape("classifier.6.weight"));
        Ok(())
    }
}
