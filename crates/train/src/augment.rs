//! Training augmentations, on one image at a time (`[C, H, W]` floats in `[0, 1]`, before
//! normalisation, so that padding and fill are black as in torchvision).
//!
//! Every random choice comes from the [`Rng`] the trainer derives for the step, so a
//! resumed run draws the same augmentations.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// One image: channels, height, width, and `c·h·w` values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Number of channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Pixels, `[C, H, W]`.
    pub data: Vec<f32>,
}

impl Image {
    /// Zero padding on every side.
    pub fn pad(&self, p: usize) -> Self {
        if p == 0 {
            return self.clone();
        }
        let (h, w) = (self.h + 2 * p, self.w + 2 * p);
        let mut data = vec![0.0; self.c * h * w];
        for c in 0..self.c {
            for y in 0..self.h {
                let src = &self.data[(c * self.h + y) * self.w..][..self.w];
                data[(c * h + y + p) * w + p..][..self.w].copy_from_slice(src);
            }
        }
        Self {
            c: self.c,
            h,
            w,
            data,
        }
    }

    /// The `h × w` window at `(top, left)`.
    pub fn crop(&self, top: usize, left: usize, h: usize, w: usize) -> Self {
        let mut data = Vec::with_capacity(self.c * h * w);
        for c in 0..self.c {
            for y in top..top + h {
                data.extend_from_slice(&self.data[(c * self.h + y) * self.w + left..][..w]);
            }
        }
        Self {
            c: self.c,
            h,
            w,
            data,
        }
    }

    /// Mirror image.
    pub fn hflip(&self) -> Self {
        let mut data = self.data.clone();
        for row in data.chunks_mut(self.w) {
            row.reverse();
        }
        Self { data, ..*self }
    }

    /// Resamples to `out_h × out_w` through the affine map `m` from output to input pixel
    /// coordinates (pixel centres at integer + 0.5): input `(x', y') = (m0·x + m1·y + m2,
    /// m3·x + m4·y + m5)`. Bilinear, zero outside.
    pub fn warp_affine(&self, out_h: usize, out_w: usize, m: [f64; 6]) -> Self {
        let mut data = vec![0.0; self.c * out_h * out_w];
        let at = |c: usize, y: isize, x: isize| -> f32 {
            if y < 0 || x < 0 || y >= self.h as isize || x >= self.w as isize {
                0.0
            } else {
                self.data[(c * self.h + y as usize) * self.w + x as usize]
            }
        };
        for oy in 0..out_h {
            for ox in 0..out_w {
                let (x, y) = (ox as f64 + 0.5, oy as f64 + 0.5);
                let sx = m[0] * x + m[1] * y + m[2] - 0.5;
                let sy = m[3] * x + m[4] * y + m[5] - 0.5;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
                let (x0, y0) = (x0 as isize, y0 as isize);
                for c in 0..self.c {
                    let top = at(c, y0, x0) * (1.0 - fx) + at(c, y0, x0 + 1) * fx;
                    let bottom = at(c, y0 + 1, x0) * (1.0 - fx) + at(c, y0 + 1, x0 + 1) * fx;
                    data[(c * out_h + oy) * out_w + ox] = top * (1.0 - fy) + bottom * fy;
                }
            }
        }
        Self {
            c: self.c,
            h: out_h,
            w: out_w,
            data,
        }
    }
}

/// A random augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Augment {
    /// torchvision `RandomCrop(size, padding)`: zero-pad, then a uniformly placed crop
    /// (He et al. 2015's CIFAR recipe: pad 4, crop 32).
    RandomCrop {
        /// Output size.
        size: usize,
        /// Padding added first.
        padding: usize,
    },
    /// torchvision `RandomHorizontalFlip(p)`.
    HorizontalFlip {
        /// Probability of flipping.
        p: f64,
    },
    /// torchvision `RandomResizedCrop(size, scale, ratio)`: a crop of random area fraction and
    /// aspect ratio (ten tries, then the centre crop of the clamped ratio), resized
    /// bilinearly (without antialiasing) to `size × size`.
    RandomResizedCrop {
        /// Output size.
        size: usize,
        /// Range of the crop's area as a fraction of the image.
        scale: (f64, f64),
        /// Range of the crop's aspect ratio (log-uniform).
        ratio: (f64, f64),
    },
    /// LeCun et al. 1998 §III-C distortions for MNIST: a random planar affine map combining
    /// translation, scaling, squeezing (horizontal compression with vertical elongation or
    /// the reverse) and horizontal shearing. The paper gives the kinds, not the ranges;
    /// these are ours (docs/lenet.md).
    LeCunAffine {
        /// Maximum translation in pixels, each axis.
        translate: f64,
        /// Maximum relative change of scale (0.1 = ±10 %).
        scale: f64,
        /// Maximum relative squeeze.
        squeeze: f64,
        /// Maximum horizontal shear (x += shear · y).
        shear: f64,
    },
}

impl Augment {
    /// The distortions used for the distortion-trained LeNet-5 (docs/lenet.md).
    pub const LECUN: Self = Self::LeCunAffine {
        translate: 2.0,
        scale: 0.1,
        squeeze: 0.1,
        shear: 0.2,
    };

    /// Applies the augmentation to one image.
    pub fn apply(&self, img: &Image, rng: &mut Rng) -> Image {
        match *self {
            Self::RandomCrop { size, padding } => {
                let padded = img.pad(padding);
                let top = rng.below((padded.h - size + 1) as u64) as usize;
                let left = rng.below((padded.w - size + 1) as u64) as usize;
                padded.crop(top, left, size, size)
            }
            Self::HorizontalFlip { p } => {
                if rng.chance(p) {
                    img.hflip()
                } else {
                    img.clone()
                }
            }
            Self::RandomResizedCrop { size, scale, ratio } => {
                let (top, left, h, w) = resized_crop_box(img.h, img.w, scale, ratio, rng);
                let m = [
                    w as f64 / size as f64,
                    0.0,
                    left as f64,
                    0.0,
                    h as f64 / size as f64,
                    top as f64,
                ];
                img.warp_affine(size, size, m)
            }
            Self::LeCunAffine {
                translate,
                scale,
                squeeze,
                shear,
            } => {
                let s = 1.0 + rng.uniform(-scale, scale);
                let q = 1.0 + rng.uniform(-squeeze, squeeze);
                let sh = rng.uniform(-shear, shear);
                let (tx, ty) = (
                    rng.uniform(-translate, translate),
                    rng.uniform(-translate, translate),
                );
                // Forward map about the centre: x' = s·q·(x + sh·y), y' = s/q·y, then shift.
                // The sampler needs its inverse.
                let (a, b, d) = (s * q, s * q * sh, s / q);
                let (ia, ib, id) = (1.0 / a, -b / (a * d), 1.0 / d);
                let (cx, cy) = (img.w as f64 / 2.0, img.h as f64 / 2.0);
                let (ox, oy) = (cx + tx, cy + ty);
                let m = [ia, ib, cx - ia * ox - ib * oy, 0.0, id, cy - id * oy];
                img.warp_affine(img.h, img.w, m)
            }
        }
    }
}

/// A training step's augmentations with the generator they draw from.
#[derive(Debug)]
pub struct Augmenter<'a> {
    /// Applied in order.
    pub ops: &'a [Augment],
    /// The step's generator.
    pub rng: &'a mut Rng,
}

impl Augmenter<'_> {
    /// Applies every augmentation, in order.
    pub fn apply(&mut self, img: Image) -> Image {
        self.ops.iter().fold(img, |img, a| a.apply(&img, self.rng))
    }
}

/// torchvision's `RandomResizedCrop.get_params`: `(top, left, height, width)`.
fn resized_crop_box(
    h: usize,
    w: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut Rng,
) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.uniform(scale.0, scale.1);
        let aspect = rng.uniform(log_lo, log_hi).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = rng.below((h - ch + 1) as u64) as usize;
            let left = rng.below((w - cw + 1) as u64) as usize;
            return (top, left, ch, cw);
        }
    }
    // Fallback: the whole image's centre crop at the nearest allowed ratio.
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (w as f64 / ratio.0).round() as usize)
    } else if in_ratio > ratio.1 {
        ((h as f64 * ratio.1).round() as usize, h)
    } else {
        (w, h)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

#[cfg(test)]
mod tests {
    use crate::rng::Stream;

    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        Image {
            c,
            h,
            w,
            data: (0..c * h * w).map(|i| i as f32).collect(),
        }
    }

    #[test]
    fn pad_crop_flip_are_exact() {
        let img = ramp(2, 3, 4);
        let p = img.pad(1);
        assert_eq!((p.h, p.w), (5, 6));
        assert_eq!(p.crop(1, 1, 3, 4), img);
        assert_eq!(p.data[0], 0.0);
        assert_eq!(img.hflip().hflip(), img);
        assert_eq!(img.hflip().data[..4], [3.0, 2.0, 1.0, 0.0]);
    }

    #[test]
    fn the_identity_warp_is_the_identity() {
        let img = ramp(1, 5, 7);
        assert_eq!(img.warp_affine(5, 7, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]), img);
    }

    #[test]
    fn random_crop_is_the_padded_image_cut_at_a_uniform_offset() {
        // Values from 1, so that no pixel looks like padding and each crop has one offset.
        let mut img = ramp(3, 32, 32);
        img.data.iter_mut().for_each(|v| *v += 1.0);
        let padded = img.pad(4);
        let crop = Augment::RandomCrop {
            size: 32,
            padding: 4,
        };
        let mut rng = Rng::derive(1, Stream::Augment, 0);
        let (mut tops, mut lefts) = ([0; 9], [0; 9]);
        for _ in 0..200 {
            let out = crop.apply(&img, &mut rng);
            let offsets: Vec<_> = (0..=8)
                .flat_map(|t| (0..=8).map(move |l| (t, l)))
                .filter(|&(t, l)| padded.crop(t, l, 32, 32) == out)
                .collect();
            let [(t, l)] = offsets[..] else {
                panic!(
                    "a crop of shape {:?} at offsets {offsets:?}",
                    (out.c, out.h, out.w)
                );
            };
            tops[t] += 1;
            lefts[l] += 1;
        }
        // Every offset of 0..=8, the edges included, turns up in 200 draws (for one missing,
        // (8/9)^200 ≈ 6e-11, and the seed is fixed).
        assert!(
            tops.iter().chain(&lefts).all(|&n| n > 0),
            "{tops:?} {lefts:?}"
        );
    }

    #[test]
    fn horizontal_flip_happens_with_its_probability() {
        let img = ramp(2, 3, 5);
        let mut rng = Rng::derive(3, Stream::Augment, 0);
        let flip = |p, rng: &mut Rng| Augment::HorizontalFlip { p }.apply(&img, rng);
        for _ in 0..100 {
            assert_eq!(flip(0.0, &mut rng), img);
            assert_eq!(flip(1.0, &mut rng), img.hflip());
        }
        let flipped = (0..1000)
            .filter(|_| flip(0.5, &mut rng) == img.hflip())
            .count();
        // 500 expected, σ ≈ 16: the bound is six σ wide, and the seed is fixed.
        assert!((400..=600).contains(&flipped), "{flipped} of 1000");
    }

    #[test]
    fn random_resized_crop_boxes_respect_scale_and_ratio() {
        let (h, w) = (48, 64);
        // An uneven ratio range: a crop with width and height swapped would leave it.
        let (scale, ratio) = ((0.08, 1.0), (0.9, 2.0));
        let mut rng = Rng::derive(4, Stream::Augment, 0);
        let (mut smallest, mut tallest, mut widest) = (1f64, f64::INFINITY, 0f64);
        for _ in 0..500 {
            let (top, left, ch, cw) = resized_crop_box(h, w, scale, ratio, &mut rng);
            assert!(ch > 0 && cw > 0 && top + ch <= h && left + cw <= w);
            // Width and height are rounded from exact values of the drawn area and aspect,
            // so each is within half a pixel of one that is in range.
            let (fh, fw) = (ch as f64, cw as f64);
            let area = (h * w) as f64;
            assert!((fw - 0.5) * (fh - 0.5) <= scale.1 * area);
            assert!((fw + 0.5) * (fh + 0.5) >= scale.0 * area);
            assert!((fw - 0.5) / (fh + 0.5) <= ratio.1);
            assert!((fw + 0.5) / (fh - 0.5) >= ratio.0);
            smallest = smallest.min(fh * fw / area);
            tallest = tallest.min(fw / fh);
            widest = widest.max(fw / fh);
        }
        // The draws cover the ranges rather than sitting at one end.
        assert!(smallest < 0.15, "{smallest}");
        assert!(tallest < 0.95 && widest > 1.8, "{tallest} {widest}");
    }

    #[test]
    fn random_resized_crop_resamples_its_box() {
        let img = ramp(3, 48, 64);
        let rrc = Augment::RandomResizedCrop {
            size: 32,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        };
        let out = rrc.apply(&img, &mut Rng::derive(5, Stream::Augment, 9));
        assert_eq!((out.c, out.h, out.w), (3, 32, 32));
        // The same seed and step draw the same crop; the next step another.
        assert_eq!(
            rrc.apply(&img, &mut Rng::derive(5, Stream::Augment, 9)),
            out
        );
        assert_ne!(
            rrc.apply(&img, &mut Rng::derive(5, Stream::Augment, 10)),
            out
        );

        // A box of the output's size is copied pixel for pixel from where it was drawn.
        let window = Augment::RandomResizedCrop {
            size: 16,
            scale: (0.25, 0.25),
            ratio: (1.0, 1.0),
        };
        let img = ramp(2, 32, 32);
        for step in 0..10 {
            let rng = Rng::derive(6, Stream::Augment, step);
            let (top, left, ch, cw) =
                resized_crop_box(32, 32, (0.25, 0.25), (1.0, 1.0), &mut rng.clone());
            assert_eq!((ch, cw), (16, 16));
            assert_eq!(
                window.apply(&img, &mut rng.clone()),
                img.crop(top, left, 16, 16)
            );
        }
    }

    #[test]
    fn lecun_distortions_keep_ink_mass_roughly() {
        // A centred blob keeps most of its mass under a mild distortion.
        let mut img = Image {
            c: 1,
            h: 32,
            w: 32,
            data: vec![0.0; 1024],
        };
        for y in 12..20 {
            for x in 12..20 {
                img.data[y * 32 + x] = 1.0;
            }
        }
        let mut rng = Rng::derive(2, Stream::Augment, 0);
        for _ in 0..20 {
            let out = Augment::LECUN.apply(&img, &mut rng);
            let mass: f32 = out.data.iter().sum();
            assert!((40.0..90.0).contains(&mass), "{mass}");
        }
    }
}
