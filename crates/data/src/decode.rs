//! Image decoding with Pillow's results: `Image.open(f).convert("RGB")`, which is what
//! torchvision's `ImageFolder` loader does.
//!
//! JPEGs are decoded by libjpeg-turbo, the library inside Pillow, with Pillow's settings
//! (accurate integer IDCT, fancy upsampling), so the pixels are Pillow's to the bit; the
//! pure-Rust decoders differ (zune-jpeg: up to 6 levels on 10-17 % of the pixels of 4:2:0
//! photos, see `docs/data.md`). The format is recognised by its signature, not its name:
//! ImageNet has PNGs named `.JPEG`. EXIF orientation is ignored, as Pillow ignores it unless
//! asked to transpose.
//!
//! Colour conversions are Pillow's:
//! - greyscale is replicated to the three channels;
//! - CMYK JPEGs are read as Adobe writes them (inverted, Pillow's `"CMYK;I"` raw mode),
//!   then `cmyk2rgb`: `c' = 255 - k - round(c * (255 - k) / 255)` in Pillow's integer form;
//! - PNG palettes are expanded, alpha is dropped (not composited), 16-bit samples keep
//!   their high byte (Pillow's `"RGB;16B"` unpacker).

use std::cell::RefCell;

use crate::turbojpeg::{Colorspace, Decompressor, PixelFormat};

use crate::error::{Error, Result};
use crate::image::RgbImage;

/// Decodes a JPEG or PNG (recognised by signature) into RGB. `origin` names the file in
/// errors.
pub fn decode(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes, origin)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes, origin)
    } else if bytes.is_empty() {
        Err(Error::decode(origin, "empty file"))
    } else {
        Err(Error::decode(
            origin,
            format!(
                "not a JPEG or PNG (starts with {:02x?})",
                &bytes[..bytes.len().min(8)]
            ),
        ))
    }
}

thread_local! {
    // A TurboJPEG handle per thread: creating one allocates libjpeg's state.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

fn decode_jpeg(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    DECOMPRESSOR.with(|cell| {
        let mut guard = cell.borrow_mut();
        if guard.is_none() {
            *guard = Some(Decompressor::new().map_err(|e| Error::decode(origin, e))?);
        }
        let Some(dec) = guard.as_mut() else {
            unreachable!("initialised above")
        };
        let header = dec
            .read_header(bytes)
            .map_err(|e| Error::decode(origin, e))?;
        let (w, h) = (header.width, header.height);
        if w == 0 || h == 0 {
            return Err(Error::decode(origin, "zero-sized image"));
        }
        let format = match header.colorspace {
            Colorspace::Gray => PixelFormat::Gray,
            Colorspace::Cmyk | Colorspace::Ycck => PixelFormat::Cmyk,
            _ => PixelFormat::Rgb,
        };
        let mut raw = vec![0u8; w * h * format.size()];
        match dec.decompress(bytes, &header, format, &mut raw) {
            Ok(()) => {}
            // TurboJPEG 2 fails a decode that only raised a libjpeg warning, after writing
            // every pixel; Pillow ignores those warnings, so the image is kept.
            Err(msg) if is_libjpeg_warning(&msg) => {}
            Err(e) => return Err(Error::decode(origin, e)),
        }
        Ok(match format {
            PixelFormat::Gray => grey_to_rgb(w, h, &raw),
            PixelFormat::Cmyk => inverted_cmyk_to_rgb(w, h, &raw),
            PixelFormat::Rgb => RgbImage::new(w, h, raw),
        })
    })
}

/// libjpeg's recoverable warnings (`JWRN_*` in `jerror.h`) other than the end of the file
/// arriving early, which Pillow reports as a truncated image.
fn is_libjpeg_warning(msg: &str) -> bool {
    const WARNINGS: [&str; 6] = [
        "Corrupt JPEG data",
        "Unknown Adobe color transform code",
        "Inconsistent progression sequence",
        "Warning: unknown JFIF revision",
        "Invalid SOS parameters for sequential JPEG",
        "Application transferred too many scanlines",
    ];
    WARNINGS.iter().any(|w| msg.starts_with(w))
}

fn grey_to_rgb(w: usize, h: usize, grey: &[u8]) -> RgbImage {
    RgbImage::new(w, h, grey.iter().flat_map(|&v| [v, v, v]).collect())
}

/// Pillow's `MULDIV255(a, b)`: `a * b / 255` rounded, in integers.
fn muldiv255(a: i32, b: i32) -> i32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// libjpeg's CMYK as Adobe stores it (inverted) to Pillow's RGB.
fn inverted_cmyk_to_rgb(w: usize, h: usize, cmyk: &[u8]) -> RgbImage {
    let mut out = Vec::with_capacity(w * h * 3);
    for px in cmyk.chunks_exact(4) {
        let nk = i32::from(px[3]); // 255 - (255 - k)
        for &c in &px[..3] {
            let c = 255 - i32::from(c);
            out.push((nk - muldiv255(c, nk)).clamp(0, 255) as u8);
        }
    }
    RgbImage::new(w, h, out)
}

fn decode_png(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| Error::decode(origin, e))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::decode(origin, "image too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::decode(origin, e))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let buf = &buf[..info.buffer_size()];
    let line = info.line_size;
    let channels = info.color_type.samples();
    let mut out = Vec::with_capacity(w * h * 3);
    for row in buf.chunks_exact(line).take(h) {
        for px in row[..w * channels].chunks_exact(channels) {
            match channels {
                1 | 2 => out.extend_from_slice(&[px[0], px[0], px[0]]),
                _ => out.extend_from_slice(&px[..3]),
            }
        }
    }
    if out.len() != w * h * 3 {
        return Err(Error::decode(origin, "truncated PNG data"));
    }
    Ok(RgbImage::new(w, h, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_is_pillows() {
        // Adobe-inverted bytes: stored 255 means no ink.
        let img = inverted_cmyk_to_rgb(3, 1, &[255, 255, 255, 255, 0, 0, 0, 0, 155, 55, 205, 200]);
        // No ink is white; full ink of every colour is black.
        assert_eq!(&img.pixels()[..6], &[255, 255, 255, 0, 0, 0]);
        // c=100, m=200, y=50, k=55: nk = 200, 200 - round(c*200/255).
        assert_eq!(&img.pixels()[6..], &[122, 43, 161]);
    }

    #[test]
    fn unknown_and_empty_files_are_named() {
        let e = decode(b"GIF89a....", "x/y.JPEG").unwrap_err().to_string();
        assert!(
            e.starts_with("x/y.JPEG: cannot decode image: not a JPEG or PNG"),
            "{e}"
        );
        let e = decode(b"", "empty.JPEG").unwrap_err().to_string();
        assert!(e.contains("empty.JPEG") && e.contains("empty file"), "{e}");
    }

    #[test]
    fn truncated_jpeg_is_an_error() {
        let e = decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16], "t.jpg").unwrap_err();
        assert!(
            e.to_string().starts_with("t.jpg: cannot decode image"),
            "{e}"
        );
    }
}
