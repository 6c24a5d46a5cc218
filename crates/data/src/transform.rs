//! The evaluation transform: [`convnets_core::spec::EvalTransform`] executed with
//! torchvision's and Pillow's semantics, and the papers' multi-view protocols.
//!
//! For torchvision's `ImageClassification` (and timm's eval pipeline, which is the same
//! with `resize = floor(crop / crop_pct)`):
//! 1. the shorter side is resized to `resize`, the longer to `int(resize * long / short)`
//!    (truncated, as `torchvision.transforms.functional._compute_resized_output_size`), with
//!    Pillow's antialiased filter ([`crate::resample`]);
//! 2. the centre crop starts at `int(round((size - crop) / 2.0))`, Python's `round` (half to
//!    even), after zero padding when the crop is larger than the image
//!    (`torchvision.transforms.functional.center_crop`);
//! 3. bytes become `x / 255` (or stay on `[0, 255]` for Caffe-era weights), channels are
//!    reordered to BGR if asked, and `(x - mean) / std` is applied in `f32`, the same three
//!    IEEE operations as `convert_image_dtype` + `normalize`, so the floats are torch's.
//!
//! [`Views`] adds the papers' protocols: ten crops (Krizhevsky et al. 2012: the four corners
//! and the centre, then the same five of the mirrored image, in torchvision's `ten_crop`
//! order) and dense evaluation of the whole resized image (Simonyan & Zisserman 2015).

use convnets_core::spec::{ChannelOrder, EvalTransform, PixelRange, Resize};

use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::resample::{Window, resize_window};

/// The views an image is evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Views {
    /// One centre crop: the weights' single-crop protocol.
    #[default]
    CenterCrop,
    /// Corners and centre of the image and of its mirror image: ten crops.
    TenCrop,
    /// The whole resized image, no crop (dense evaluation; the crop size is ignored).
    Full,
}

impl Views {
    /// Number of views per image.
    pub fn count(self) -> usize {
        match self {
            Self::TenCrop => 10,
            Self::CenterCrop | Self::Full => 1,
        }
    }
}

/// An [`EvalTransform`], checked and ready to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    spec: EvalTransform,
}

/// Python's `int(round(x / 2.0))` for a non-negative integer `x`: halves go to even.
fn half_round_even(x: usize) -> usize {
    let q = x / 2;
    if x % 2 == 1 && q % 2 == 1 { q + 1 } else { q }
}

impl Transform {
    /// Checks the description: non-empty crop and resize, non-zero standard deviations.
    pub fn new(spec: EvalTransform) -> Result<Self> {
        if spec.crop.0 == 0 || spec.crop.1 == 0 {
            return Err(Error::Config(format!("crop {:?} is empty", spec.crop)));
        }
        match spec.resize {
            Resize::ShorterSide(0) | Resize::Exact(0, _) | Resize::Exact(_, 0) => {
                return Err(Error::Config(format!("resize {:?} is empty", spec.resize)));
            }
            Resize::CropPct(p) if !(p > 0.0 && p <= 4.0) => {
                return Err(Error::Config(format!("crop_pct {p} is not in (0, 4]")));
            }
            _ => {}
        }
        if spec.std.contains(&0.0) {
            return Err(Error::Config(format!("std {:?} has a zero", spec.std)));
        }
        Ok(Self { spec })
    }

    /// The description this transform executes.
    pub fn spec(&self) -> &EvalTransform {
        &self.spec
    }

    /// `(width, height)` after the resize, for an image of `width × height`.
    pub fn resized_size(&self, width: usize, height: usize) -> (usize, usize) {
        self.resized_size_for(self.spec.resize_shorter_side(), width, height)
    }

    fn resized_size_for(
        &self,
        shorter: Option<usize>,
        width: usize,
        height: usize,
    ) -> (usize, usize) {
        let Some(short_target) = shorter else {
            let Resize::Exact(h, w) = self.spec.resize else {
                unreachable!("only Exact has no shorter side")
            };
            return (w, h);
        };
        let (short, long) = if width <= height {
            (width, height)
        } else {
            (height, width)
        };
        // `int(size * long / short)`: an exact product, one correctly rounded division.
        let new_long = ((short_target * long) as f64 / short as f64) as usize;
        if width <= height {
            (short_target, new_long)
        } else {
            (new_long, short_target)
        }
    }

    /// The centre-crop window `(x, y)` in a `width × height` image, negative where
    /// torchvision pads.
    fn center_offsets(&self, width: usize, height: usize) -> (isize, isize) {
        let (ch, cw) = self.spec.crop;
        let offset = |size: usize, crop: usize| -> isize {
            if crop > size {
                // `pad` by ((crop - size) // 2, (crop - size + 1) // 2), then the padded
                // image is exactly the crop.
                -(((crop - size) / 2) as isize)
            } else {
                half_round_even(size - crop) as isize
            }
        };
        (offset(width, cw), offset(height, ch))
    }

    /// Resize and crop the `(x, y, w, h)` window of the resized image: only the pixels
    /// inside the resized image are computed, the rest is black padding.
    fn resized_window(
        &self,
        img: &RgbImage,
        size: (usize, usize),
        x: isize,
        y: isize,
        w: usize,
        h: usize,
    ) -> RgbImage {
        let (rw, rh) = size;
        let x0 = x.clamp(0, rw as isize) as usize;
        let y0 = y.clamp(0, rh as isize) as usize;
        let x1 = (x + w as isize).clamp(0, rw as isize) as usize;
        let y1 = (y + h as isize).clamp(0, rh as isize) as usize;
        if x1 <= x0 || y1 <= y0 {
            return RgbImage::new(w, h, vec![0; w * h * 3]);
        }
        let window = Window {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        };
        let part = resize_window(img, rw, rh, self.spec.interpolation, window);
        if (window.width, window.height) == (w, h) {
            part
        } else {
            part.crop(x - x0 as isize, y - y0 as isize, w, h)
        }
    }

    /// Resize and centre crop: the uint8 image torchvision hands to `ToTensor`.
    pub fn center_crop(&self, img: &RgbImage) -> RgbImage {
        let size = self.resized_size(img.width(), img.height());
        let (x, y) = self.center_offsets(size.0, size.1);
        let (ch, cw) = self.spec.crop;
        self.resized_window(img, size, x, y, cw, ch)
    }

    /// Resize only: the whole image at the transform's scale (dense evaluation).
    pub fn resize_only(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = self.resized_size(img.width(), img.height());
        self.resized_window(img, (w, h), 0, 0, w, h)
    }

    /// Dense evaluation at another scale: the shorter side to `shorter_side`.
    pub fn resize_shorter_side(&self, img: &RgbImage, shorter_side: usize) -> RgbImage {
        let (w, h) = self.resized_size_for(Some(shorter_side), img.width(), img.height());
        self.resized_window(img, (w, h), 0, 0, w, h)
    }

    /// torchvision's `ten_crop` after the resize: top-left, top-right, bottom-left,
    /// bottom-right, centre, then the same five of the mirrored resized image.
    pub fn ten_crop(&self, img: &RgbImage) -> Vec<RgbImage> {
        let resized = self.resize_only(img);
        let mirrored = resized.flip_horizontal();
        let (ch, cw) = self.spec.crop;
        let (w, h) = (resized.width(), resized.height());
        let mut crops = Vec::with_capacity(10);
        for image in [&resized, &mirrored] {
            let right = w as isize - cw as isize;
            let bottom = h as isize - ch as isize;
            for (x, y) in [(0, 0), (right, 0), (0, bottom), (right, bottom)] {
                crops.push(image.crop(x, y, cw, ch));
            }
            let (x, y) = self.center_offsets(w, h);
            crops.push(image.crop(x, y, cw, ch));
        }
        crops
    }

    /// The images of one sample under `views`, as uint8.
    pub fn views(&self, img: &RgbImage, views: Views) -> Vec<RgbImage> {
        match views {
            Views::CenterCrop => vec![self.center_crop(img)],
            Views::TenCrop => self.ten_crop(img),
            Views::Full => vec![self.resize_only(img)],
        }
    }

    /// Appends the normalised `3 × h × w` floats of `img` (channel-major) to `out`.
    pub fn normalize_into(&self, img: &RgbImage, out: &mut Vec<f32>) {
        let plane = img.width() * img.height();
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        let dst = &mut out[start..];
        let order = match self.spec.channels {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        for (c, &src_c) in order.iter().enumerate() {
            let (mean, std) = (self.spec.mean[c], self.spec.std[c]);
            let plane_out = &mut dst[c * plane..(c + 1) * plane];
            let src = img.pixels().chunks_exact(3).map(|px| f32::from(px[src_c]));
            match self.spec.pixel_range {
                PixelRange::Unit => {
                    for (d, v) in plane_out.iter_mut().zip(src) {
                        *d = (v / 255.0 - mean) / std;
                    }
                }
                PixelRange::Byte => {
                    for (d, v) in plane_out.iter_mut().zip(src) {
                        *d = (v - mean) / std;
                    }
                }
            }
        }
    }

    /// Centre crop and normalisation: the `3 × crop.0 × crop.1` input of the network.
    pub fn apply(&self, img: &RgbImage) -> Vec<f32> {
        let mut out = Vec::new();
        self.normalize_into(&self.center_crop(img), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use convnets_core::spec::Interpolation;

    use super::*;

    #[test]
    fn python_round_is_half_to_even() {
        // round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(5.5) = 6, round(64.5) = 64.
        let got: Vec<_> = [1, 3, 5, 11, 129, 4].map(half_round_even).into();
        assert_eq!(got, [0, 2, 2, 6, 64, 2]);
    }

    #[test]
    fn torchvision_resize_sizes() {
        let t = Transform::new(EvalTransform::torchvision(256, 224)).unwrap();
        // int(256 * 451 / 300) = int(384.85) = 384; portrait keeps the order.
        assert_eq!(t.resized_size(451, 300), (384, 256));
        assert_eq!(t.resized_size(300, 451), (256, 384));
        assert_eq!(t.resized_size(500, 500), (256, 256));
        let t = Transform::new(EvalTransform::timm(224, 0.95, Interpolation::Bicubic)).unwrap();
        assert_eq!(t.resized_size(451, 300), (353, 235));
    }

    #[test]
    fn crop_larger_than_image_is_zero_padded_as_torchvision() {
        let t = Transform::new(EvalTransform::torchvision(4, 6)).unwrap();
        let img = RgbImage::new(4, 4, vec![200; 48]);
        let out = t.center_crop(&img);
        assert_eq!((out.width(), out.height()), (6, 6));
        // Padding (left, right) = ((6-4)//2, (6-4+1)//2) = (1, 1): a one-pixel frame.
        let row = |y: usize| out.pixels()[y * 18..(y + 1) * 18].to_vec();
        assert!(row(0).iter().all(|&v| v == 0));
        assert_eq!(&row(1)[..3], &[0, 0, 0]);
        assert_eq!(&row(1)[3..15], &[200; 12]);
    }

    #[test]
    fn invalid_descriptions_are_refused() {
        let mut spec = EvalTransform::torchvision(256, 224);
        spec.std[1] = 0.0;
        assert!(Transform::new(spec).is_err());
        assert!(Transform::new(EvalTransform::torchvision(0, 224)).is_err());
    }
}
