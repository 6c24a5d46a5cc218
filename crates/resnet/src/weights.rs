//! The family's pretrained weights and the paper's results, as data.
//!
//! [`WEIGHTS`] lists the torchvision ImageNet checkpoints (`tv_in1k`: the original recipe;
//! `tv2_in1k`: torchvision's 2021 recipe, evaluated at resize 232) and timm's ResNet-50 A1
//! ("ResNet strikes back", Wightman et al. 2021), each as the Hugging Face Hub copy timm
//! publishes (`timm/<id>`, `model.safetensors`). Their tensor names are torchvision's, which
//! [`crate::ResNet`] reproduces, so the key maps only let BatchNorm's step counter go unused.
//!
//! Checksums: the sha256 of the hub files is not known here (no network), so every row has
//! `sha256: None`. torchvision's own `.pth` files carry the first 8 hex digits of their
//! sha256 in their names (`resnet50-0676ba61.pth`); those are recorded in the row comments
//! for reference, but they identify the `.pth` download, not the safetensors file.
//!
//! [`PAPER_RESULTS`] are He et al. 2015 (arXiv:1512.03385): Table 2/3 (10-crop), Table 4
//! (single model, multi-scale fully convolutional) and Table 6 (CIFAR-10). The paper gives
//! error rates; they are stored as accuracies (`100 − error`), the error quoted in `source`.

use convnets_core::checkpoint::{KeyMap, KeyRule, UNUSED_NUM_BATCHES_TRACKED};
use convnets_core::spec::{
    Accuracy, EvalTransform, Interpolation, PaperResult, Protocol, WeightSource, WeightSpec,
};

/// torchvision's state-dict layout, which the model reproduces key for key.
pub const TORCHVISION: KeyMap = KeyMap {
    name: "torchvision",
    rules: &[UNUSED_NUM_BATCHES_TRACKED],
};

/// timm's ResNet layout: the same keys as torchvision's ("for weight compat").
pub const TIMM: KeyMap = KeyMap {
    name: "timm",
    rules: &[UNUSED_NUM_BATCHES_TRACKED],
};

/// The layout of the common PyTorch CIFAR ResNet (`resnet20()` … `resnet1202()` with option-A
/// `LambdaLayer` shortcuts): the CIFAR nets' keys, except that it calls the classifier
/// `linear` where every ResNet of the zoo calls it `fc`.
pub const CIFAR_LINEAR: KeyMap = KeyMap {
    name: "cifar-linear",
    rules: &[
        KeyRule::Rename {
            from: "linear.*",
            to: "fc.*",
        },
        UNUSED_NUM_BATCHES_TRACKED,
    ],
};

const IMAGENET_VAL: &str = "imagenet-1k val";
const CIFAR10_TEST: &str = "cifar-10 test";

/// torchvision's `IMAGENET1K_V1` eval transform: resize 256, crop 224, bilinear.
const TV1: EvalTransform = EvalTransform::torchvision(256, 224);
/// torchvision's `IMAGENET1K_V2` eval transform: resize 232, crop 224, bilinear (timm's
/// `test_crop_pct` 0.965 gives the same 232).
const TV2: EvalTransform = EvalTransform::torchvision(232, 224);
/// timm's test-time config for the RSB weights (`_rcfg`): 288 px, `test_crop_pct` 1.0,
/// bicubic, ImageNet mean and std — the configuration of timm's published result row.
const TIMM_RSB_TEST: EvalTransform = EvalTransform::timm(288, 1.0, Interpolation::Bicubic);

const fn hub(repo: &'static str) -> WeightSource {
    WeightSource::Hub {
        repo,
        file: "model.safetensors",
        revision: "main",
    }
}

/// A torchvision checkpoint as timm republishes it, with torchvision's own accuracy.
const fn torchvision(
    id: &'static str,
    arch: &'static str,
    repo: &'static str,
    transform: EvalTransform,
    num_params: usize,
    accuracy: &'static [Accuracy],
) -> WeightSpec {
    WeightSpec {
        id,
        arch,
        source: hub(repo),
        sha256: None,
        key_map: &TIMM,
        transform,
        num_classes: 1000,
        num_params,
        accuracy,
    }
}

/// A single-crop ImageNet accuracy from torchvision's weight metadata.
const fn tv_meta(top1: f64, top5: f64, source: &'static str) -> Accuracy {
    Accuracy {
        dataset: IMAGENET_VAL,
        protocol: Protocol::SingleCrop,
        top1: Some(top1),
        top5: Some(top5),
        source,
    }
}

/// Every set of pretrained weights of the family.
pub const WEIGHTS: &[WeightSpec] = &[
    // resnet18-f37072fd.pth
    torchvision(
        "resnet18.tv_in1k",
        "resnet18",
        "timm/resnet18.tv_in1k",
        TV1,
        11_689_512,
        &[tv_meta(
            69.758,
            89.078,
            "torchvision 0.29.2 ResNet18_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnet34-b627a593.pth
    torchvision(
        "resnet34.tv_in1k",
        "resnet34",
        "timm/resnet34.tv_in1k",
        TV1,
        21_797_672,
        &[tv_meta(
            73.314,
            91.420,
            "torchvision 0.29.2 ResNet34_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnet50-0676ba61.pth
    torchvision(
        "resnet50.tv_in1k",
        "resnet50",
        "timm/resnet50.tv_in1k",
        TV1,
        25_557_032,
        &[tv_meta(
            76.130,
            92.862,
            "torchvision 0.29.2 ResNet50_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnet50-11ad3fa6.pth
    torchvision(
        "resnet50.tv2_in1k",
        "resnet50",
        "timm/resnet50.tv2_in1k",
        TV2,
        25_557_032,
        &[tv_meta(
            80.858,
            95.434,
            "torchvision 0.29.2 ResNet50_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // resnet101-63fe2227.pth
    torchvision(
        "resnet101.tv_in1k",
        "resnet101",
        "timm/resnet101.tv_in1k",
        TV1,
        44_549_160,
        &[tv_meta(
            77.374,
            93.546,
            "torchvision 0.29.2 ResNet101_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnet101-cd907fc2.pth
    torchvision(
        "resnet101.tv2_in1k",
        "resnet101",
        "timm/resnet101.tv2_in1k",
        TV2,
        44_549_160,
        &[tv_meta(
            81.886,
            95.780,
            "torchvision 0.29.2 ResNet101_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // resnet152-394f9c45.pth
    torchvision(
        "resnet152.tv_in1k",
        "resnet152",
        "timm/resnet152.tv_in1k",
        TV1,
        60_192_808,
        &[tv_meta(
            78.312,
            94.046,
            "torchvision 0.29.2 ResNet152_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnet152-f82ba261.pth
    torchvision(
        "resnet152.tv2_in1k",
        "resnet152",
        "timm/resnet152.tv2_in1k",
        TV2,
        60_192_808,
        &[tv_meta(
            82.284,
            96.002,
            "torchvision 0.29.2 ResNet152_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // wide_resnet50_2-95faca4d.pth
    torchvision(
        "wide_resnet50_2.tv_in1k",
        "wide_resnet50_2",
        "timm/wide_resnet50_2.tv_in1k",
        TV1,
        68_883_240,
        &[tv_meta(
            78.468,
            94.086,
            "torchvision 0.29.2 Wide_ResNet50_2_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // wide_resnet50_2-9ba9bcbe.pth
    torchvision(
        "wide_resnet50_2.tv2_in1k",
        "wide_resnet50_2",
        "timm/wide_resnet50_2.tv2_in1k",
        TV2,
        68_883_240,
        &[tv_meta(
            81.602,
            95.758,
            "torchvision 0.29.2 Wide_ResNet50_2_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // wide_resnet101_2-32ee1156.pth
    torchvision(
        "wide_resnet101_2.tv_in1k",
        "wide_resnet101_2",
        "timm/wide_resnet101_2.tv_in1k",
        TV1,
        126_886_696,
        &[tv_meta(
            78.848,
            94.284,
            "torchvision 0.29.2 Wide_ResNet101_2_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // wide_resnet101_2-d733dc28.pth
    torchvision(
        "wide_resnet101_2.tv2_in1k",
        "wide_resnet101_2",
        "timm/wide_resnet101_2.tv2_in1k",
        TV2,
        126_886_696,
        &[tv_meta(
            82.510,
            96.020,
            "torchvision 0.29.2 Wide_ResNet101_2_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // resnext50_32x4d-7cdf4587.pth
    torchvision(
        "resnext50_32x4d.tv_in1k",
        "resnext50_32x4d",
        "timm/resnext50_32x4d.tv_in1k",
        TV1,
        25_028_904,
        &[tv_meta(
            77.618,
            93.698,
            "torchvision 0.29.2 ResNeXt50_32X4D_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnext50_32x4d-1a0047aa.pth
    torchvision(
        "resnext50_32x4d.tv2_in1k",
        "resnext50_32x4d",
        "timm/resnext50_32x4d.tv2_in1k",
        TV2,
        25_028_904,
        &[tv_meta(
            81.198,
            95.340,
            "torchvision 0.29.2 ResNeXt50_32X4D_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // resnext101_32x8d-8ba56ff5.pth
    torchvision(
        "resnext101_32x8d.tv_in1k",
        "resnext101_32x8d",
        "timm/resnext101_32x8d.tv_in1k",
        TV1,
        88_791_336,
        &[tv_meta(
            79.312,
            94.526,
            "torchvision 0.29.2 ResNeXt101_32X8D_Weights.IMAGENET1K_V1 meta",
        )],
    ),
    // resnext101_32x8d-110c445d.pth
    torchvision(
        "resnext101_32x8d.tv2_in1k",
        "resnext101_32x8d",
        "timm/resnext101_32x8d.tv2_in1k",
        TV2,
        88_791_336,
        &[tv_meta(
            82.834,
            96.228,
            "torchvision 0.29.2 ResNeXt101_32X8D_Weights.IMAGENET1K_V2 meta",
        )],
    ),
    // timm's own ResNet-50, trained with the A1 procedure of "ResNet strikes back"
    // (600 epochs, LAMB, BCE loss) at 224 px; published evaluated at 288 px, crop_pct 1.0.
    WeightSpec {
        id: "resnet50.a1_in1k",
        arch: "resnet50",
        source: hub("timm/resnet50.a1_in1k"),
        sha256: None,
        key_map: &TIMM,
        transform: TIMM_RSB_TEST,
        num_classes: 1000,
        num_params: 25_557_032,
        accuracy: &[Accuracy {
            dataset: IMAGENET_VAL,
            protocol: Protocol::SingleCrop,
            top1: Some(81.214),
            top5: Some(95.102),
            source: "timm results/results-imagenet.csv (commit 0173a139): img_size 288, \
                     crop_pct 1.0, bicubic",
        }],
    },
];

/// A 10-crop ImageNet result (He et al. 2015, Tables 2 and 3): four corners and the centre
/// of the image resized to shorter side 256, and their mirrors, softmax scores averaged.
const fn ten_crop(top1: f64, top5: Option<f64>, source: &'static str) -> Accuracy {
    Accuracy {
        dataset: IMAGENET_VAL,
        protocol: Protocol::TenCrop,
        top1: Some(top1),
        top5,
        source,
    }
}

/// He et al. 2015 §3.4: "For best results, we adopt the fully-convolutional form … and
/// average the scores at multiple scales (images are resized such that the shorter side is
/// in {224, 256, 384, 480, 640})".
const MULTI_SCALE: Protocol = Protocol::Dense {
    scales: &[224, 256, 384, 480, 640],
};

const fn single_model(top1: f64, top5: f64, source: &'static str) -> Accuracy {
    Accuracy {
        dataset: IMAGENET_VAL,
        protocol: MULTI_SCALE,
        top1: Some(top1),
        top5: Some(top5),
        source,
    }
}

const fn cifar(top1: f64, source: &'static str) -> Accuracy {
    Accuracy {
        dataset: CIFAR10_TEST,
        protocol: Protocol::FullImage,
        top1: Some(top1),
        top5: None,
        source,
    }
}

/// The results of He et al. 2015 for the architectures of this crate, with their protocol.
///
/// The ImageNet rows are the paper's own models (Caffe, stride on the first 1×1 of a
/// downsampling bottleneck, "v1"), not torchvision's; the ResNet-18 row is from Table 2,
/// where every ResNet has zero-padding (option A) shortcuts.
pub const PAPER_RESULTS: &[PaperResult] = &[
    PaperResult {
        arch: "resnet18",
        label: "ResNet-18, option A shortcuts, 10-crop",
        accuracy: ten_crop(
            72.12,
            None,
            "He et al. 2015, Table 2: top-1 error 27.88 (10-crop, ImageNet val)",
        ),
    },
    PaperResult {
        arch: "resnet34",
        label: "ResNet-34 B, 10-crop",
        accuracy: ten_crop(
            75.48,
            Some(92.54),
            "He et al. 2015, Table 3: top-1/top-5 error 24.52/7.46",
        ),
    },
    PaperResult {
        arch: "resnet50",
        label: "ResNet-50, 10-crop",
        accuracy: ten_crop(
            77.15,
            Some(93.29),
            "He et al. 2015, Table 3: top-1/top-5 error 22.85/6.71",
        ),
    },
    PaperResult {
        arch: "resnet101",
        label: "ResNet-101, 10-crop",
        accuracy: ten_crop(
            78.25,
            Some(93.95),
            "He et al. 2015, Table 3: top-1/top-5 error 21.75/6.05",
        ),
    },
    PaperResult {
        arch: "resnet152",
        label: "ResNet-152, 10-crop",
        accuracy: ten_crop(
            78.57,
            Some(94.29),
            "He et al. 2015, Table 3: top-1/top-5 error 21.43/5.71",
        ),
    },
    PaperResult {
        arch: "resnet34",
        label: "ResNet-34 B, single model, multi-scale",
        accuracy: single_model(
            78.16,
            94.29,
            "He et al. 2015, Table 4: top-1/top-5 error 21.84/5.71",
        ),
    },
    PaperResult {
        arch: "resnet50",
        label: "ResNet-50, single model, multi-scale",
        accuracy: single_model(
            79.26,
            94.75,
            "He et al. 2015, Table 4: top-1/top-5 error 20.74/5.25",
        ),
    },
    PaperResult {
        arch: "resnet101",
        label: "ResNet-101, single model, multi-scale",
        accuracy: single_model(
            80.13,
            95.40,
            "He et al. 2015, Table 4: top-1/top-5 error 19.87/4.60",
        ),
    },
    PaperResult {
        arch: "resnet152",
        label: "ResNet-152, single model, multi-scale",
        accuracy: single_model(
            80.62,
            95.51,
            "He et al. 2015, Table 4: top-1/top-5 error 19.38/4.49",
        ),
    },
    PaperResult {
        arch: "resnet20",
        label: "CIFAR-10 ResNet-20 (0.27M)",
        accuracy: cifar(91.25, "He et al. 2015, Table 6: test error 8.75"),
    },
    PaperResult {
        arch: "resnet32",
        label: "CIFAR-10 ResNet-32 (0.46M)",
        accuracy: cifar(92.49, "He et al. 2015, Table 6: test error 7.51"),
    },
    PaperResult {
        arch: "resnet44",
        label: "CIFAR-10 ResNet-44 (0.66M)",
        accuracy: cifar(92.83, "He et al. 2015, Table 6: test error 7.17"),
    },
    PaperResult {
        arch: "resnet56",
        label: "CIFAR-10 ResNet-56 (0.85M)",
        accuracy: cifar(93.03, "He et al. 2015, Table 6: test error 6.97"),
    },
    PaperResult {
        arch: "resnet110",
        label: "CIFAR-10 ResNet-110 (1.7M), best of 5 runs (mean 6.61 ± 0.16 % error)",
        accuracy: cifar(
            93.57,
            "He et al. 2015, Table 6: test error 6.43 (6.61±0.16)",
        ),
    },
    PaperResult {
        arch: "resnet1202",
        label: "CIFAR-10 ResNet-1202 (19.4M)",
        accuracy: cifar(92.07, "He et al. 2015, Table 6: test error 7.93"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use convnets_core::spec::Resize;

    #[test]
    fn every_row_points_at_its_timm_hub_copy() {
        for w in WEIGHTS {
            assert_eq!(
                w.id.split_once('.').map(|(a, _)| a),
                Some(w.arch),
                "{}",
                w.id
            );
            let WeightSource::Hub { repo, file, .. } = w.source else {
                panic!("{}: not on the hub", w.id)
            };
            assert_eq!(repo, format!("timm/{}", w.id));
            assert_eq!(file, "model.safetensors");
            assert!(!w.accuracy.is_empty(), "{}", w.id);
        }
    }

    #[test]
    fn cifar_linear_renames_only_the_classifier() -> convnets_core::Result<()> {
        assert_eq!(
            CIFAR_LINEAR.rename("linear.weight")?.as_deref(),
            Some("fc.weight")
        );
        assert_eq!(
            CIFAR_LINEAR.rename("linear.bias")?.as_deref(),
            Some("fc.bias")
        );
        assert_eq!(CIFAR_LINEAR.rename("layer3.2.conv2.weight")?, None);
        assert!(CIFAR_LINEAR.may_be_unused("layer1.0.bn1.num_batches_tracked"));
        Ok(())
    }

    #[test]
    fn ids_are_unique_and_transforms_match_their_recipe() {
        let mut ids: Vec<&str> = WEIGHTS.iter().map(|w| w.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), WEIGHTS.len());
        for w in WEIGHTS {
            let resize = w.transform.resize_shorter_side();
            match w.tag() {
                "tv_in1k" => assert_eq!(resize, Some(256), "{}", w.id),
                "tv2_in1k" => assert_eq!(resize, Some(232), "{}", w.id),
                "a1_in1k" => {
                    assert_eq!(w.transform.resize, Resize::CropPct(1.0));
                    assert_eq!(resize, Some(288));
                    assert_eq!(w.transform.interpolation, Interpolation::Bicubic);
                }
                tag => panic!("unexpected tag {tag}"),
            }
        }
    }

    /// The errors a paper row quotes in its `source` ("top-1/top-5 error 24.52/7.46", "test
    /// error 8.75").
    fn quoted_errors(source: &str) -> Vec<f64> {
        let (_, after) = source
            .split_once("error ")
            .unwrap_or_else(|| panic!("`{source}` quotes no error"));
        let quoted = after.split_whitespace().next().unwrap_or_default();
        quoted
            .split('/')
            .map(|e| e.parse().unwrap_or_else(|_| panic!("`{source}`: {e}")))
            .collect()
    }

    #[test]
    fn paper_rows_carry_their_tables_protocol() {
        for p in PAPER_RESULTS {
            let a = &p.accuracy;
            let table = ["Table 2", "Table 3", "Table 4", "Table 6"]
                .into_iter()
                .find(|t| a.source.contains(t))
                .unwrap_or_else(|| panic!("{}: `{}` names no table", p.label, a.source));
            // Tables 2 and 3: ten 224 crops of the image at shorter side 256 (§3.4); Table 4:
            // the fully convolutional form over five scales; Table 6: CIFAR-10's test set,
            // whole 32×32 images.
            let (protocol, dataset, words) = match table {
                "Table 2" | "Table 3" => (Protocol::TenCrop, IMAGENET_VAL, "10-crop"),
                "Table 4" => (
                    Protocol::Dense {
                        scales: &[224, 256, 384, 480, 640],
                    },
                    IMAGENET_VAL,
                    "multi-scale",
                ),
                _ => (Protocol::FullImage, CIFAR10_TEST, "CIFAR-10"),
            };
            assert_eq!(a.protocol, protocol, "{}", p.label);
            assert_eq!(a.dataset, dataset, "{}", p.label);
            assert!(p.label.contains(words), "{}: not `{words}`", p.label);
            // The accuracies are 100 − the errors the source quotes.
            let errors = quoted_errors(a.source);
            let accuracies: Vec<f64> = [a.top1, a.top5].into_iter().flatten().collect();
            assert_eq!(accuracies.len(), errors.len(), "{}", p.label);
            for (acc, err) in accuracies.iter().zip(&errors) {
                assert!(
                    (acc + err - 100.0).abs() < 1e-9,
                    "{}: {acc} + {err}",
                    p.label
                );
            }
        }
    }

    #[test]
    fn every_net_of_the_paper_has_its_rows() {
        let rows = |arch: &str, protocol: fn(&Protocol) -> bool| {
            PAPER_RESULTS
                .iter()
                .filter(|p| p.arch == arch && protocol(&p.accuracy.protocol))
                .count()
        };
        let ten_crop = |p: &Protocol| *p == Protocol::TenCrop;
        let multi_scale = |p: &Protocol| matches!(p, Protocol::Dense { .. });
        let cifar = |p: &Protocol| *p == Protocol::FullImage;
        // Table 2 has ResNet-18 and -34, Table 3 34 to 152 (one row each here: 34 with
        // projection shortcuts, B, as torchvision's), Table 4 34 to 152 again.
        for (arch, crops, scales) in [
            ("resnet18", 1, 0),
            ("resnet34", 1, 1),
            ("resnet50", 1, 1),
            ("resnet101", 1, 1),
            ("resnet152", 1, 1),
        ] {
            assert_eq!(rows(arch, ten_crop), crops, "{arch}: 10-crop rows");
            assert_eq!(rows(arch, multi_scale), scales, "{arch}: multi-scale rows");
        }
        for arch in [
            "resnet20",
            "resnet32",
            "resnet44",
            "resnet56",
            "resnet110",
            "resnet1202",
        ] {
            assert_eq!(rows(arch, cifar), 1, "{arch}: Table 6 row");
        }
        // Nothing else: every row is one of the above.
        assert_eq!(PAPER_RESULTS.len(), 5 + 4 + 6);
    }

    #[test]
    fn accuracies_are_percentages_with_a_source() {
        let all = WEIGHTS
            .iter()
            .flat_map(|w| w.accuracy.iter())
            .chain(PAPER_RESULTS.iter().map(|p| &p.accuracy));
        for a in all {
            for v in [a.top1, a.top5].into_iter().flatten() {
                assert!((50.0..100.0).contains(&v), "{a:?}");
            }
            assert!(a.top1 <= a.top5.or(Some(100.0)), "{a:?}");
            assert!(
                a.source.contains("Table")
                    || a.source.contains("meta")
                    || a.source.contains("timm")
            );
        }
    }
}
