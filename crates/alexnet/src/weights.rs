//! AlexNet and ZFNet weights, the key maps of the files they come in, and the published
//! numbers: the papers', and BVLC's for their Caffe AlexNet.

use convnets_core::checkpoint::{KeyMap, KeyRule};
use convnets_core::spec::{
    Accuracy, EvalTransform, PaperResult, Protocol, WeightSource, WeightSpec,
};

/// torchvision's names are the model's own.
pub const TORCHVISION: KeyMap = KeyMap {
    name: "torchvision",
    rules: &[],
};

/// Renames Caffe blob names (`conv1_w_0`, `fc6_b_0`, as the ONNX exports of Caffe and Caffe2
/// models name their initialisers) to the model's module names.
macro_rules! caffe_blobs {
    ($prefix:literal; $($blob:literal => $module:literal),+ ; $($extra:expr),* $(,)?) => {
        [
            $(
                KeyRule::Rename {
                    from: concat!($prefix, $blob, "_w_0"),
                    to: concat!($module, ".weight"),
                },
                KeyRule::Rename {
                    from: concat!($prefix, $blob, "_b_0"),
                    to: concat!($module, ".bias"),
                },
            )+
            $($extra),*
        ]
    };
}

/// The Reshape node's target shape in the ONNX exports, stored as an initialiser.
const ONNX_RESHAPE_TARGET: KeyRule = KeyRule::Unused {
    pattern: "OC2_DUMMY_1",
    why: "the ONNX export's Reshape target shape ([1, C·6·6]), not a parameter",
};

/// Caffe's `bvlc_alexnet` as the ONNX model zoo exports it (`bvlc_alexnet/model.onnx`,
/// initialisers `conv1_w_0` … `fc8_b_0`, saved as safetensors under the same names), onto
/// [`crate::AlexNetConfig::bvlc_alexnet`].
pub const CAFFE_BVLC_ALEXNET: KeyMap = KeyMap {
    name: "caffe-bvlc-alexnet",
    rules: &caffe_blobs![
        "";
        "conv1" => "features.0",
        "conv2" => "features.4",
        "conv3" => "features.8",
        "conv4" => "features.10",
        "conv5" => "features.12",
        "fc6" => "classifier.0",
        "fc7" => "classifier.3",
        "fc8" => "classifier.6";
        ONNX_RESHAPE_TARGET,
    ],
};

/// The ONNX model zoo's ZFNet-512 (`zfnet512/model.onnx`, a Caffe2 model: initialisers
/// `gpu_0/conv1_w_0` …), onto [`crate::AlexNetConfig::zfnet512`].
pub const CAFFE2_ZFNET512: KeyMap = KeyMap {
    name: "caffe2-zfnet512",
    rules: &caffe_blobs![
        "gpu_0/";
        "conv1" => "features.0",
        "conv2" => "features.4",
        "conv3" => "features.8",
        "conv4" => "features.10",
        "conv5" => "features.12",
        "fc6" => "classifier.0",
        "fc7" => "classifier.3",
        "fc8" => "classifier.6";
        ONNX_RESHAPE_TARGET,
        KeyRule::Unused {
            pattern: "gpu_0/imagenet1k_blobs_queue_*",
            why: "the Caffe2 training net's data-loader queue blob, not a parameter",
        },
    ],
};

/// Pretrained weights.
pub const WEIGHTS: &[WeightSpec] = &[WeightSpec {
    id: "alexnet.tv_in1k",
    arch: "alexnet",
    // timm hosts no AlexNet; torchvision's file, whose name carries its sha256 prefix.
    source: WeightSource::Url {
        url: "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    },
    sha256: Some("7be5be79"),
    key_map: &TORCHVISION,
    transform: EvalTransform::torchvision(256, 224),
    num_classes: 1000,
    num_params: 61_100_840,
    accuracy: &[Accuracy {
        dataset: "imagenet-1k val",
        protocol: Protocol::SingleCrop,
        top1: Some(56.522),
        top5: Some(79.066),
        source: "torchvision 0.29 AlexNet_Weights.IMAGENET1K_V1 meta[\"_metrics\"]",
    }],
}];

const KRIZHEVSKY_2012: &str = "Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional \
     Neural Networks";
const BVLC_README: &str = "BVLC Caffe model zoo, models/bvlc_alexnet/readme.md (not a paper)";
const ZEILER_FERGUS_2013: &str = "Zeiler, Fergus 2014 (ECCV; arXiv:1311.2901v3), Visualizing \
                                  and Understanding Convolutional Networks, Table 2";

const fn row(
    arch: &'static str,
    label: &'static str,
    dataset: &'static str,
    top1_err: f64,
    top5_err: f64,
    source: &'static str,
) -> PaperResult {
    PaperResult {
        arch,
        label,
        accuracy: Accuracy {
            dataset,
            // Krizhevsky et al. §4.1: four corners and centre, and their reflections.
            protocol: Protocol::TenCrop,
            top1: Some(100.0 - top1_err),
            top5: Some(100.0 - top5_err),
            source,
        },
    }
}

/// The published results, as accuracy = 100 − error. Zeiler & Fergus do not state their test
/// protocol; ten crops, Krizhevsky et al.'s, which their comparison rows use, is assumed.
///
/// `bvlc_alexnet`'s row is no paper's: BVLC trained the network in Caffe themselves (biases
/// started at 0.1, no PCA lighting) and state its accuracy in the model's readme, the only
/// reference there is for the network whose graph [`CAFFE_BVLC_ALEXNET`] loads.
pub const PAPER_RESULTS: &[PaperResult] = &[
    row(
        "alexnet_paper",
        "1 CNN (Table 1, ILSVRC-2010 test)",
        "imagenet-2010 test",
        37.5,
        17.0,
        KRIZHEVSKY_2012,
    ),
    row(
        "alexnet_paper",
        "1 CNN (Table 2)",
        "imagenet-1k val",
        40.7,
        18.2,
        KRIZHEVSKY_2012,
    ),
    row(
        "alexnet_paper",
        "5 CNNs, predictions averaged (Table 2)",
        "imagenet-1k val",
        38.1,
        16.4,
        KRIZHEVSKY_2012,
    ),
    PaperResult {
        arch: "bvlc_alexnet",
        label: "BVLC's Caffe training of AlexNet (the 360,000-iteration snapshot), centre crop",
        accuracy: Accuracy {
            dataset: "imagenet-1k val",
            // 227×227 from the centre of the image warped to 256×256.
            protocol: Protocol::SingleCrop,
            top1: Some(57.1),
            top5: Some(80.2),
            source: BVLC_README,
        },
    },
    row(
        "zfnet",
        "1 convnet as per Fig. 3",
        "imagenet-1k val",
        38.4,
        16.5,
        ZEILER_FERGUS_2013,
    ),
    row(
        "zfnet",
        "1 convnet as per Fig. 3 with layers 3, 4, 5 of 512, 1024, 512 maps (b)",
        "imagenet-1k val",
        37.5,
        16.0,
        ZEILER_FERGUS_2013,
    ),
    row(
        "zfnet",
        "5 convnets as per Fig. 3, averaged (a)",
        "imagenet-1k val",
        36.7,
        15.3,
        ZEILER_FERGUS_2013,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlexNetConfig;

    #[test]
    fn caffe_names_map_to_the_derived_module_names() {
        let rename = |map: &KeyMap, name: &str| map.rename(name).ok().flatten();
        assert_eq!(
            rename(&CAFFE_BVLC_ALEXNET, "conv4_b_0").as_deref(),
            Some("features.10.bias")
        );
        assert_eq!(
            rename(&CAFFE2_ZFNET512, "gpu_0/fc7_w_0").as_deref(),
            Some("classifier.3.weight")
        );
        assert!(
            CAFFE2_ZFNET512.may_be_unused(
                "gpu_0/imagenet1k_blobs_queue_e24a6638-b332-4e67-a127-91f5e17e2e11_0"
            )
        );
        assert!(CAFFE_BVLC_ALEXNET.may_be_unused("OC2_DUMMY_1"));
    }

    #[test]
    fn the_table_agrees_with_the_configurations() -> candle_core::Result<()> {
        for w in WEIGHTS {
            let config = match w.arch {
                "alexnet" => AlexNetConfig::alexnet(),
                other => panic!("no configuration for {other}"),
            };
            assert_eq!(config.num_params()?, w.num_params, "{}", w.id);
            assert_eq!(w.tag(), "tv_in1k");
        }
        Ok(())
    }
}
