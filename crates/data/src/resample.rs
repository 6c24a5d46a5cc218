//! Pillow's `Image.resize`, reimplemented to the bit: the separable convolution of
//! `libImaging/Resample.c` (antialiased when downscaling, horizontal pass then vertical
//! pass through an 8-bit intermediate, coefficients in 22-bit fixed point, results rounded
//! and clipped to 8 bits) and the nearest-neighbour scaling of `libImaging/Geometry.c`
//! (`ImagingScaleAffine`, which Pillow uses for `NEAREST`).
//!
//! Every output pixel depends only on its own coordinates, so [`resize_window`] computes
//! just the pixels a centre crop keeps, with the same arithmetic as the full resize: the
//! crop of a full resize and the resize of a window are the same bytes, and the evaluation
//! transforms skip 20-50 % of the work.

use convnets_core::spec::Interpolation;

use crate::image::RgbImage;

/// `PRECISION_BITS` of Pillow: 32 bits minus 8 for the value and 2 for overshoot.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A window of the output image: its left and top columns, width and height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First column.
    pub x: usize,
    /// First row.
    pub y: usize,
    /// Number of columns.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
}

impl Window {
    /// The whole `width × height` image.
    pub fn full(width: usize, height: usize) -> Self {
        Self {
            x: 0,
            y: 0,
            width,
            height,
        }
    }
}

/// `img.resize((width, height), filter)`.
pub fn resize(img: &RgbImage, width: usize, height: usize, filter: Interpolation) -> RgbImage {
    resize_window(img, width, height, filter, Window::full(width, height))
}

/// The `window` of `img.resize((width, height), filter)`, computed alone.
///
/// # Panics
/// If the window is not inside `width × height` or a size is zero.
pub fn resize_window(
    img: &RgbImage,
    width: usize,
    height: usize,
    filter: Interpolation,
    window: Window,
) -> RgbImage {
    assert!(
        width > 0 && height > 0 && img.width() > 0 && img.height() > 0,
        "resize of or to an empty image"
    );
    assert!(
        window.x + window.width <= width && window.y + window.height <= height,
        "window {window:?} outside {width}x{height}"
    );
    if (width, height) == (img.width(), img.height()) {
        // `Image.resize` returns a copy when the size does not change.
        return img.crop(
            window.x as isize,
            window.y as isize,
            window.width,
            window.height,
        );
    }
    let support = match filter {
        Interpolation::Nearest => return nearest(img, width, height, window),
        Interpolation::Bilinear => 1.0,
        Interpolation::Bicubic => 2.0,
    };
    let kernel = match filter {
        Interpolation::Bicubic => bicubic as fn(f64) -> f64,
        _ => bilinear,
    };
    let vertical = Coefficients::new(
        img.height(),
        height,
        support,
        kernel,
        window.y..window.y + window.height,
    );
    // Source rows the vertical pass reads, and the horizontal pass must produce.
    let first_row = vertical.bounds.first().map_or(0, |b| b.0);
    let last_row = vertical.bounds.last().map_or(0, |b| b.0 + b.1);

    let (rows, row_width) = if width != img.width() {
        let horizontal = Coefficients::new(
            img.width(),
            width,
            support,
            kernel,
            window.x..window.x + window.width,
        );
        (
            horizontal_pass(img, &horizontal, first_row..last_row),
            window.width,
        )
    } else {
        // Only the vertical pass: the columns of the window, rows as they are.
        let cropped = img.crop(
            window.x as isize,
            first_row as isize,
            window.width,
            last_row - first_row,
        );
        (cropped.into_pixels(), window.width)
    };
    if height == img.height() {
        let start = (window.y - first_row) * row_width * 3;
        let pixels = rows[start..start + window.height * row_width * 3].to_vec();
        return RgbImage::new(window.width, window.height, pixels);
    }
    let pixels = vertical_pass(&rows, row_width, first_row, &vertical);
    RgbImage::new(window.width, window.height, pixels)
}

/// Pillow's `bilinear_filter`.
fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `bicubic_filter`, `a = -0.5`, with its evaluation order.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The fixed-point weights of a range of output coordinates along one axis
/// (`precompute_coeffs` + `normalize_coeffs_8bpc`).
struct Coefficients {
    /// Per output coordinate: first input coordinate and number of taps.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output coordinate, zero-padded.
    weights: Vec<i32>,
    ksize: usize,
}

impl Coefficients {
    fn new(
        in_size: usize,
        out_size: usize,
        support: f64,
        kernel: fn(f64) -> f64,
        outputs: std::ops::Range<usize>,
    ) -> Self {
        // Pillow computes `in1 - in0` in float; for whole-image boxes that is exact.
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = support * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(outputs.len());
        let mut weights = vec![0i32; outputs.len() * ksize];
        let mut taps = vec![0f64; ksize];
        for (i, xx) in outputs.enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero, as `as i64` does.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin);
            let mut ww = 0.0;
            for (x, tap) in taps.iter_mut().enumerate().take(n) {
                let w = kernel(((x + xmin) as f64 - center + 0.5) * ss);
                *tap = w;
                ww += w;
            }
            let k = &mut weights[i * ksize..i * ksize + n];
            for (dst, &w) in k.iter_mut().zip(&taps[..n]) {
                let w = if ww != 0.0 { w / ww } else { w };
                let fixed = w * f64::from(1u32 << PRECISION_BITS);
                *dst = if w < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            bounds.push((xmin, n));
        }
        Self {
            bounds,
            weights,
            ksize,
        }
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (start, n) = self.bounds[i];
        (start, &self.weights[i * self.ksize..i * self.ksize + n])
    }
}

/// Pillow's `clip8`: the fixed-point sum to a byte, clamped.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// `ImagingResampleHorizontal_8bpc` over the source rows `rows`.
fn horizontal_pass(img: &RgbImage, c: &Coefficients, rows: std::ops::Range<usize>) -> Vec<u8> {
    let out_w = c.bounds.len();
    let stride = img.width() * 3;
    let mut out = Vec::with_capacity(rows.len() * out_w * 3);
    for y in rows {
        let row = &img.pixels()[y * stride..(y + 1) * stride];
        for i in 0..out_w {
            let (start, k) = c.taps(i);
            let src = &row[start * 3..(start + k.len()) * 3];
            let (mut r, mut g, mut b) = (HALF, HALF, HALF);
            for (px, &w) in src.chunks_exact(3).zip(k) {
                r += i32::from(px[0]) * w;
                g += i32::from(px[1]) * w;
                b += i32::from(px[2]) * w;
            }
            out.extend_from_slice(&[clip8(r), clip8(g), clip8(b)]);
        }
    }
    out
}

/// `ImagingResampleVertical_8bpc`: `rows` holds source rows from `first_row` on.
fn vertical_pass(rows: &[u8], width: usize, first_row: usize, c: &Coefficients) -> Vec<u8> {
    let stride = width * 3;
    let mut out = vec![0u8; c.bounds.len() * stride];
    let mut acc = vec![0i32; stride];
    for (i, dst) in out.chunks_exact_mut(stride).enumerate() {
        let (start, k) = c.taps(i);
        acc.fill(HALF);
        for (j, &w) in k.iter().enumerate() {
            let src = &rows[(start + j - first_row) * stride..][..stride];
            for (a, &p) in acc.iter_mut().zip(src) {
                *a += i32::from(p) * w;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

/// `ImagingScaleAffine`: nearest neighbour with Pillow's accumulated coordinates.
fn nearest(img: &RgbImage, width: usize, height: usize, window: Window) -> RgbImage {
    // Pillow steps `xo += a[0]` from `a[0] / 2`; the accumulation's rounding is part of
    // the result, so every coordinate is computed from the first one.
    let coords = |in_size: usize, out_size: usize| -> Vec<Option<usize>> {
        let step = in_size as f64 / out_size as f64;
        let mut pos = step * 0.5;
        (0..out_size)
            .map(|_| {
                let c = if pos < 0.0 { -1 } else { pos as i64 };
                pos += step;
                (c >= 0 && (c as usize) < in_size).then_some(c as usize)
            })
            .collect()
    };
    let xs = coords(img.width(), width);
    let ys = coords(img.height(), height);
    let mut out = Vec::with_capacity(window.width * window.height * 3);
    for y in &ys[window.y..window.y + window.height] {
        for x in &xs[window.x..window.x + window.width] {
            match (x, y) {
                (Some(x), Some(y)) => {
                    let i = (y * img.width() + x) * 3;
                    out.extend_from_slice(&img.pixels()[i..i + 3]);
                }
                _ => out.extend_from_slice(&[0, 0, 0]),
            }
        }
    }
    RgbImage::new(window.width, window.height, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> RgbImage {
        let px = (0..w * h * 3)
            .map(|i| ((i * 37 + (i / (w * 3)) * 11) % 256) as u8)
            .collect();
        RgbImage::new(w, h, px)
    }

    #[test]
    fn window_is_the_crop_of_the_full_resize() {
        let img = gradient(61, 47);
        for filter in [
            Interpolation::Bilinear,
            Interpolation::Bicubic,
            Interpolation::Nearest,
        ] {
            for (w, h) in [(40, 30), (61, 20), (30, 47), (90, 70)] {
                let full = resize(&img, w, h, filter);
                let win = Window {
                    x: 3,
                    y: 5,
                    width: w - 7,
                    height: h - 9,
                };
                let part = resize_window(&img, w, h, filter, win);
                assert_eq!(part, full.crop(3, 5, w - 7, h - 9), "{filter:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::new(13, 9, [10u8, 128, 250].repeat(13 * 9));
        for filter in [Interpolation::Bilinear, Interpolation::Bicubic] {
            let out = resize(&img, 7, 20, filter);
            assert!(
                out.pixels().chunks(3).all(|p| p == [10, 128, 250]),
                "{filter:?}"
            );
        }
    }

    #[test]
    fn bicubic_overshoot_is_clipped() {
        // A black/white edge: bicubic's negative lobes would go below 0 and above 255.
        let mut px = vec![0u8; 8 * 3];
        px[12..].fill(255);
        let out = resize(&RgbImage::new(8, 1, px), 20, 1, Interpolation::Bicubic);
        assert_eq!(out.pixels()[0], 0);
        assert_eq!(out.pixels()[59], 255);
    }
}
