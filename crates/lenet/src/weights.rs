//! LeNet-5's weights and the numbers the paper reports.
//!
//! No downloadable LeNet-5 weights exist in the paper's exact form; the weights in
//! [`WEIGHTS`] were trained here by `convnets-train` on MNIST (`cargo xtask train lenet5`)
//! and ship in the repository's `weights/` folder with their training configuration,
//! metrics log and curves. The paper's results are the reference they are compared with.

use convnets_core::checkpoint::KeyMap;
use convnets_core::spec::{
    Accuracy, ChannelOrder, EvalTransform, Interpolation, PaperResult, PixelRange, Protocol,
    Resize, WeightSource, WeightSpec,
};

/// The names [`crate::LeNet5`] gives its parameters, as they are: there is no external
/// LeNet-5 checkpoint format to translate from, so nothing is renamed and nothing may go
/// unused.
pub const NATIVE: KeyMap = KeyMap {
    name: "convnets-lenet",
    rules: &[],
};

/// The paper's input (§II.B) as an eval transform: the 28×28 digit centred in a 32×32
/// field (torchvision's `CenterCrop(32)` pads a smaller image), background −0.1 and ink
/// 1.175 (`(p − 0.0784) / 0.7843` for ink intensity `p` in `[0, 1]`): what
/// [`crate::paper_input`] computes.
pub const PAPER_INPUT: EvalTransform = EvalTransform {
    resize: Resize::ShorterSide(28),
    crop: (32, 32),
    interpolation: Interpolation::Bilinear,
    pixel_range: PixelRange::Unit,
    channels: ChannelOrder::Rgb,
    mean: [0.078_431_37; 3],
    std: [0.784_313_7; 3],
};

const fn mnist(top1: f64, source: &'static str) -> Accuracy {
    Accuracy {
        dataset: "mnist test",
        protocol: Protocol::FullImage,
        top1: Some(top1),
        top5: None,
        source,
    }
}

/// LeNet-5 weights trained here on MNIST's 60,000 training images, evaluated on its 10,000
/// test images (docs/lenet.md has the runs, the recipes and the curves).
pub const WEIGHTS: &[WeightSpec] = &[
    WeightSpec {
        id: "lenet5_classic.mnist",
        arch: "lenet5_classic",
        source: WeightSource::Repository {
            path: "weights/lenet5_classic.mnist/model.safetensors",
        },
        sha256: Some("9bd3aa8ae42ea162ea6bf785d6a10edcf78e026fa2900ae504474983fd5570fb"),
        key_map: &NATIVE,
        transform: PAPER_INPUT,
        num_classes: 10,
        num_params: 60_000,
        accuracy: &[mnist(
            99.12,
            "trained here: `cargo xtask train lenet5 --variant classic` (seed 1998, 20 \
             epochs), test error 0.88 % (weights/lenet5_classic.mnist/metrics.csv)",
        )],
    },
    WeightSpec {
        id: "lenet5_classic.mnist_distortions",
        arch: "lenet5_classic",
        source: WeightSource::Repository {
            path: "weights/lenet5_classic.mnist_distortions/model.safetensors",
        },
        sha256: Some("ba8fe1fda1c95ba16c65de265b3a56edd0fba185c78624e6839972ae2ae27d10"),
        key_map: &NATIVE,
        transform: PAPER_INPUT,
        num_classes: 10,
        num_params: 60_000,
        accuracy: &[mnist(
            99.22,
            "trained here: `cargo xtask train lenet5 --variant classic --distortions` (seed \
             1998, 20 epochs), test error 0.78 % \
             (weights/lenet5_classic.mnist_distortions/metrics.csv)",
        )],
    },
    WeightSpec {
        id: "lenet5_modern.mnist",
        arch: "lenet5_modern",
        source: WeightSource::Repository {
            path: "weights/lenet5_modern.mnist/model.safetensors",
        },
        sha256: Some("a009b8be33961905e0707400837766fb19af9d853d7e686cb2476c317db8fc01"),
        key_map: &NATIVE,
        transform: PAPER_INPUT,
        num_classes: 10,
        num_params: 61_706,
        accuracy: &[mnist(
            99.37,
            "trained here: `cargo xtask train lenet5 --variant modern` (seed 1998, 20 \
             epochs), test error 0.63 % (weights/lenet5_modern.mnist/metrics.csv)",
        )],
    },
];

const LECUN_1998: &str = "LeCun, Bottou, Bengio, Haffner 1998, Gradient-Based Learning Applied \
                          to Document Recognition, §III.C and Fig. 9";

/// LeCun et al. 1998 on the MNIST test set (10,000 images, 32×32 after padding), as
/// accuracy = 100 − error.
pub const PAPER_RESULTS: &[PaperResult] = &[
    PaperResult {
        arch: "lenet5_classic",
        label: "LeNet-5, 0.95% test error (20 passes, no distortions)",
        accuracy: Accuracy {
            dataset: "mnist test",
            protocol: Protocol::FullImage,
            top1: Some(99.05),
            top5: None,
            source: LECUN_1998,
        },
    },
    PaperResult {
        arch: "lenet5_classic",
        label: "LeNet-5 trained with distortions, 0.8% test error",
        accuracy: Accuracy {
            dataset: "mnist test",
            protocol: Protocol::FullImage,
            top1: Some(99.2),
            top5: None,
            source: LECUN_1998,
        },
    },
];
