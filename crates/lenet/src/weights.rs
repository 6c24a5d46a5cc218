//! LeNet-5's weights and the numbers the paper reports.
//!
//! No downloadable LeNet-5 weights exist in the paper's exact form; the weights trained by
//! `convnets-train` on MNIST ship in `weights/` and are added to [`WEIGHTS`] by the
//! training issue. The paper's results are the reference those runs are compared with.

use convnets_core::checkpoint::KeyMap;
use convnets_core::spec::{Accuracy, PaperResult, Protocol, WeightSpec};

/// The names [`crate::LeNet5`] gives its parameters, as they are: there is no external
/// LeNet-5 checkpoint format to translate from, so nothing is renamed and nothing may go
/// unused.
pub const NATIVE: KeyMap = KeyMap {
    name: "convnets-lenet",
    rules: &[],
};

/// Pretrained LeNet-5 weights (none yet: see the module documentation).
pub const WEIGHTS: &[WeightSpec] = &[];

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
