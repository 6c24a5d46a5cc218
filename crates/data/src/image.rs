//! A decoded image: 8-bit RGB, row-major, interleaved (Pillow's `"RGB"` mode).

/// An 8-bit RGB image, rows top to bottom, pixels `R, G, B` interleaved.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl RgbImage {
    /// Wraps `width * height * 3` bytes.
    ///
    /// # Panics
    /// If the buffer has another length: a programming error, never a property of a file.
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Self {
        assert_eq!(
            pixels.len(),
            width * height * 3,
            "RgbImage::new: {width}x{height} needs {} bytes",
            width * height * 3
        );
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The interleaved bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Consumes the image, returning its bytes.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }

    /// The `(x, y, w, h)` window, copied; pixels outside the image are black, as
    /// torchvision pads a crop larger than the image.
    pub fn crop(&self, x: isize, y: isize, w: usize, h: usize) -> Self {
        let mut out = vec![0u8; w * h * 3];
        for row in 0..h {
            let sy = y + row as isize;
            if sy < 0 || sy >= self.height as isize {
                continue;
            }
            let x0 = x.max(0);
            let x1 = (x + w as isize).min(self.width as isize);
            if x1 <= x0 {
                continue;
            }
            let src = (sy as usize * self.width + x0 as usize) * 3;
            let dst = (row * w + (x0 - x) as usize) * 3;
            let n = (x1 - x0) as usize * 3;
            out[dst..dst + n].copy_from_slice(&self.pixels[src..src + n]);
        }
        Self::new(w, h, out)
    }

    /// The mirror image (left and right swapped), as `PIL.Image.transpose(FLIP_LEFT_RIGHT)`.
    pub fn flip_horizontal(&self) -> Self {
        let mut out = Vec::with_capacity(self.pixels.len());
        for row in self.pixels.chunks_exact(self.width * 3) {
            for px in row.chunks_exact(3).rev() {
                out.extend_from_slice(px);
            }
        }
        Self::new(self.width, self.height, out)
    }
}
