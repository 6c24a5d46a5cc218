//! Weights are data: the description of a set of pretrained weights, from where to fetch
//! them to the accuracy they reach, as `const` values each family lists in a table.
//!
//! A [`WeightSpec`] is torchvision's `Weights` enum entry and timm's `pretrained_cfg` in one:
//! an id in timm's `arch.tag` form, its [`WeightSource`], the [`KeyMap`] that turns its
//! tensor names into the model's, the [`EvalTransform`] its accuracy was measured with, and
//! that accuracy as [`Accuracy`] rows with their provenance. Numbers from papers that no
//! downloadable file reproduces are [`PaperResult`] rows beside them.

use serde::Serialize;

use crate::checkpoint::KeyMap;

/// Resampling filter of the eval resize, with Pillow's semantics (antialiased when
/// downscaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// `InterpolationMode.NEAREST`.
    Nearest,
    /// `InterpolationMode.BILINEAR`, torchvision's default.
    Bilinear,
    /// `InterpolationMode.BICUBIC`, timm's usual choice.
    Bicubic,
}

/// How the image is resized before the centre crop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Shorter side to this many pixels, aspect kept (torchvision's `resize_size`).
    ShorterSide(usize),
    /// timm's rule: shorter side to `floor(crop / crop_pct)`.
    CropPct(f64),
    /// Both sides to exactly this size, aspect not kept (Caffe's `256×256` warp).
    Exact(usize, usize),
}

/// The scale pixels are brought to before `mean` and `std` apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelRange {
    /// `[0, 1]`: torchvision and timm.
    Unit,
    /// `[0, 255]`: Caffe-era weights (mean-pixel subtraction, `std = 1`).
    Byte,
}

/// The channel order the network expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue: torchvision and timm.
    Rgb,
    /// Blue, green, red: Caffe (OpenCV's order).
    Bgr,
}

/// The evaluation preprocessing a set of weights needs, as torchvision's
/// `ImageClassification` or timm's `pretrained_cfg` describe it. `convnets-data` applies it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalTransform {
    /// Resize before cropping.
    pub resize: Resize,
    /// Centre-crop height and width: the network's input size.
    pub crop: (usize, usize),
    /// Resampling filter.
    pub interpolation: Interpolation,
    /// Scale of pixel values before normalisation.
    pub pixel_range: PixelRange,
    /// Channel order of the input tensor.
    pub channels: ChannelOrder,
    /// Per-channel mean, in the order of `channels` and on the scale of `pixel_range`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, likewise.
    pub std: [f32; 3],
}

/// ImageNet channel statistics used by torchvision and most timm weights.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations used by torchvision and most timm weights.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Inception-style normalisation (`(x - 0.5) / 0.5`), used by TensorFlow ports.
pub const INCEPTION_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
/// Inception-style normalisation standard deviation.
pub const INCEPTION_STD: [f32; 3] = [0.5, 0.5, 0.5];

impl EvalTransform {
    /// torchvision's `ImageClassification(crop_size=crop, resize_size=resize)`: bilinear,
    /// ImageNet mean and std.
    pub const fn torchvision(resize: usize, crop: usize) -> Self {
        Self {
            resize: Resize::ShorterSide(resize),
            crop: (crop, crop),
            interpolation: Interpolation::Bilinear,
            pixel_range: PixelRange::Unit,
            channels: ChannelOrder::Rgb,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// timm's eval transform: shorter side to `floor(crop / crop_pct)`, then the crop.
    pub const fn timm(crop: usize, crop_pct: f64, interpolation: Interpolation) -> Self {
        Self {
            resize: Resize::CropPct(crop_pct),
            crop: (crop, crop),
            interpolation,
            pixel_range: PixelRange::Unit,
            channels: ChannelOrder::Rgb,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// The same with another mean and std.
    pub const fn normalize(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }

    /// The same with another resampling filter.
    pub const fn interpolation(mut self, interpolation: Interpolation) -> Self {
        self.interpolation = interpolation;
        self
    }

    /// The shorter side the image is resized to before the centre crop, or `None` for an
    /// [`Resize::Exact`] warp.
    pub fn resize_shorter_side(&self) -> Option<usize> {
        match self.resize {
            Resize::ShorterSide(s) => Some(s),
            // timm: `scale_size = math.floor(img_size / crop_pct)`.
            Resize::CropPct(pct) => {
                Some((self.crop.0.max(self.crop.1) as f64 / pct).floor() as usize)
            }
            Resize::Exact(..) => None,
        }
    }
}

/// Where a set of weights can be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightSource {
    /// A file in a Hugging Face Hub model repository.
    Hub {
        /// `owner/name`.
        repo: &'static str,
        /// Path of the file inside the repository.
        file: &'static str,
        /// Branch, tag or commit.
        revision: &'static str,
    },
    /// A file at a URL (torchvision's `download.pytorch.org` `.pth` files).
    Url {
        /// The address.
        url: &'static str,
    },
    /// Shipped in this repository, relative to the workspace root.
    Repository {
        /// Path relative to the workspace root.
        path: &'static str,
    },
}

/// How an accuracy number was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// One centre crop after the weights' [`EvalTransform`].
    SingleCrop,
    /// Four corners and the centre, and their mirror images (Krizhevsky et al. 2012).
    TenCrop,
    /// Many crops at several scales (GoogLeNet's 144 crops: 4 scales × 3 squares × 6 crops
    /// × 2 mirrors).
    MultiCrop {
        /// Number of crops per image.
        crops: u32,
    },
    /// The fully connected layers applied convolutionally to the whole image, scores averaged
    /// spatially and over the listed shorter-side scales (Simonyan & Zisserman 2015 §3.2).
    Dense {
        /// Shorter sides the image is evaluated at.
        scales: &'static [usize],
    },
    /// Dense evaluation and multi-crop scores averaged (VGG's best single-model rows).
    DenseAndMultiCrop {
        /// Shorter sides the image is evaluated at.
        scales: &'static [usize],
    },
    /// Test error on a small dataset's full test set (MNIST, CIFAR-10), no crops.
    FullImage,
}

/// In words, as the zoo's `convnets models` and xtask's reproduction tables print it.
impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scales = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join("/");
        match self {
            Protocol::SingleCrop => f.write_str("single crop"),
            Protocol::TenCrop => f.write_str("10-crop"),
            Protocol::MultiCrop { crops } => write!(f, "{crops} crops"),
            Protocol::Dense { scales: s } => write!(f, "dense, scales {}", scales(s)),
            Protocol::DenseAndMultiCrop { scales: s } => {
                write!(f, "dense + multi-crop, scales {}", scales(s))
            }
            Protocol::FullImage => f.write_str("full image"),
        }
    }
}

/// An accuracy, in percent, with where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Accuracy {
    /// Dataset and split, e.g. `imagenet-1k val`, `mnist test`.
    pub dataset: &'static str,
    /// How it was measured.
    pub protocol: Protocol,
    /// Top-1 accuracy in percent.
    pub top1: Option<f64>,
    /// Top-5 accuracy in percent.
    pub top5: Option<f64>,
    /// Where the number is published (document, table, or tool and version).
    pub source: &'static str,
}

/// A downloadable (or shipped) set of weights for one architecture.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WeightSpec {
    /// timm-style `arch.tag`, e.g. `resnet50.tv_in1k`.
    pub id: &'static str,
    /// Architecture name, the part of `id` before the dot.
    pub arch: &'static str,
    /// Where to fetch the file.
    pub source: WeightSource,
    /// sha256 of the file, lowercase hex, when known; a mismatch refuses the file. Where only
    /// a prefix is published (torchvision's `<name>-<prefix>.pth` file names, the prefix
    /// `torch.hub` checks), the prefix, at least 8 digits.
    pub sha256: Option<&'static str>,
    /// How the file's tensor names map to the model's.
    #[serde(serialize_with = "serialize_key_map_name")]
    pub key_map: &'static KeyMap,
    /// The preprocessing the accuracy below was measured with.
    pub transform: EvalTransform,
    /// Number of classes of the classifier.
    pub num_classes: usize,
    /// Number of parameters of the model the file fits.
    pub num_params: usize,
    /// Published accuracy of these weights.
    pub accuracy: &'static [Accuracy],
}

fn serialize_key_map_name<S: serde::Serializer>(k: &&KeyMap, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name)
}

impl WeightSpec {
    /// The tag, the part of `id` after the dot (`tv_in1k`).
    pub fn tag(&self) -> &'static str {
        self.id.split_once('.').map_or("", |(_, tag)| tag)
    }
}

/// A result published for an architecture, with no downloadable weights behind it: a paper's,
/// or for Caffe's reference models the model zoo's readme (`source` says which). Printed
/// beside the measured rows of `cargo xtask reproduce` as the historical reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PaperResult {
    /// Architecture name as the zoo knows it (`vgg16`, `googlenet_paper`, ...).
    pub arch: &'static str,
    /// What the row is, in the paper's words (`VGG D, single scale 256`).
    pub label: &'static str,
    /// The number.
    pub accuracy: Accuracy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timm_crop_pct_rule() {
        let t = EvalTransform::timm(224, 0.875, Interpolation::Bicubic);
        assert_eq!(t.resize_shorter_side(), Some(256));
        let t = EvalTransform::timm(299, 0.8975, Interpolation::Bicubic);
        assert_eq!(t.resize_shorter_side(), Some(333));
        let t = EvalTransform::timm(224, 0.95, Interpolation::Bicubic);
        assert_eq!(t.resize_shorter_side(), Some(235));
        assert_eq!(
            EvalTransform::torchvision(232, 224).resize_shorter_side(),
            Some(232)
        );
    }

    #[test]
    fn protocols_in_words() {
        for (p, words) in [
            (Protocol::SingleCrop, "single crop"),
            (Protocol::TenCrop, "10-crop"),
            (Protocol::MultiCrop { crops: 144 }, "144 crops"),
            (
                Protocol::Dense {
                    scales: &[256, 384, 512],
                },
                "dense, scales 256/384/512",
            ),
            (
                Protocol::DenseAndMultiCrop { scales: &[256] },
                "dense + multi-crop, scales 256",
            ),
            (Protocol::FullImage, "full image"),
        ] {
            assert_eq!(p.to_string(), words);
        }
    }
}
