//! libjpeg-turbo's TurboJPEG API, loaded at run time.
//!
//! Pillow decodes JPEGs with libjpeg-turbo; to get its pixels to the bit, so does this crate.
//! The library is opened when the first JPEG is decoded, not linked at build time, so that
//! everything that decodes no JPEG (the LeNet-5 tables, the CLI's `models`) builds and runs
//! on a machine without it, and a machine that lacks it gets an error saying how to install
//! it instead of a link failure.
//!
//! The functions used are the TurboJPEG 2 API (`turbojpeg.h`), present in every
//! libjpeg-turbo from 1.4 to 3.x: `tjInitDecompress`, `tjDecompressHeader3`,
//! `tjDecompress2`, `tjGetErrorStr2`, `tjDestroy`, and for [`encode_rgb`] (benchmark
//! corpora) `tjInitCompress`, `tjCompress2`, `tjFree`. Decoding uses flags 0: the accurate
//! integer IDCT and fancy upsampling, libjpeg's defaults, which Pillow keeps.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_uchar, c_ulong, c_void};
use std::sync::OnceLock;

/// The environment variable that overrides where the library is looked for.
pub const LIBRARY_VAR: &str = "CONVNETS_TURBOJPEG";

#[cfg(target_os = "macos")]
const CANDIDATES: &[&str] = &[
    "libturbojpeg.0.dylib",
    "/opt/homebrew/opt/jpeg-turbo/lib/libturbojpeg.0.dylib",
    "/usr/local/opt/jpeg-turbo/lib/libturbojpeg.0.dylib",
];
#[cfg(target_os = "windows")]
const CANDIDATES: &[&str] = &["turbojpeg.dll"];
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
const CANDIDATES: &[&str] = &["libturbojpeg.so.0", "libturbojpeg.so"];

type Handle = *mut c_void;

/// The TurboJPEG functions, resolved once per process.
struct Api {
    init_decompress: unsafe extern "C" fn() -> Handle,
    decompress_header3: unsafe extern "C" fn(
        Handle,
        *const c_uchar,
        c_ulong,
        *mut c_int,
        *mut c_int,
        *mut c_int,
        *mut c_int,
    ) -> c_int,
    decompress2: unsafe extern "C" fn(
        Handle,
        *const c_uchar,
        c_ulong,
        *mut c_uchar,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
    ) -> c_int,
    error_str2: unsafe extern "C" fn(Handle) -> *mut c_char,
    destroy: unsafe extern "C" fn(Handle) -> c_int,
    init_compress: unsafe extern "C" fn() -> Handle,
    #[allow(clippy::type_complexity)]
    compress2: unsafe extern "C" fn(
        Handle,
        *const c_uchar,
        c_int,
        c_int,
        c_int,
        c_int,
        *mut *mut c_uchar,
        *mut c_ulong,
        c_int,
        c_int,
        c_int,
    ) -> c_int,
    free: unsafe extern "C" fn(*mut c_uchar),
    /// Keeps the library mapped for as long as the function pointers live (the process).
    _library: libloading::Library,
}

fn load() -> Result<Api, String> {
    let explicit = std::env::var(LIBRARY_VAR).ok();
    let candidates: Vec<&str> = match &explicit {
        Some(path) => vec![path.as_str()],
        None => CANDIDATES.to_vec(),
    };
    let mut failures = Vec::new();
    for name in candidates {
        // SAFETY: opening libjpeg-turbo runs its (trivial) initialisers; nothing else of
        // this process is touched.
        match unsafe { libloading::Library::new(name) } {
            Ok(library) => return resolve(library).map_err(|e| format!("{name}: {e}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "libjpeg-turbo's TurboJPEG library is needed to decode JPEGs exactly as Pillow does, \
         and it was not found ({}). Install it (Debian/Ubuntu: `apt-get install \
         libturbojpeg0`; Fedora: `dnf install turbojpeg`; macOS: `brew install jpeg-turbo`) \
         or set {LIBRARY_VAR} to the library's path.",
        failures.join("; ")
    ))
}

fn resolve(library: libloading::Library) -> Result<Api, libloading::Error> {
    // SAFETY: each symbol is looked up by its TurboJPEG 2 name and given the signature
    // `turbojpeg.h` declares for it (`unsigned long` for sizes, `int` for the rest).
    unsafe {
        Ok(Api {
            init_decompress: *library.get(b"tjInitDecompress\0")?,
            decompress_header3: *library.get(b"tjDecompressHeader3\0")?,
            decompress2: *library.get(b"tjDecompress2\0")?,
            error_str2: *library.get(b"tjGetErrorStr2\0")?,
            destroy: *library.get(b"tjDestroy\0")?,
            init_compress: *library.get(b"tjInitCompress\0")?,
            compress2: *library.get(b"tjCompress2\0")?,
            free: *library.get(b"tjFree\0")?,
            _library: library,
        })
    }
}

fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Whether the library can be loaded here.
pub fn available() -> bool {
    api().is_ok()
}

/// TurboJPEG's colour spaces (`TJCS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colorspace {
    /// RGB (no transform in the file).
    Rgb,
    /// YCbCr, the usual.
    YCbCr,
    /// Greyscale.
    Gray,
    /// CMYK.
    Cmyk,
    /// YCCK (Adobe's transformed CMYK).
    Ycck,
}

/// The pixel formats decoded to (`TJPF_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 3 bytes per pixel.
    Rgb,
    /// 1 byte per pixel.
    Gray,
    /// 4 bytes per pixel, as libjpeg stores Adobe CMYK (inverted).
    Cmyk,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn size(self) -> usize {
        match self {
            Self::Rgb => 3,
            Self::Gray => 1,
            Self::Cmyk => 4,
        }
    }

    fn code(self) -> c_int {
        match self {
            Self::Rgb => 0,
            Self::Gray => 6,
            Self::Cmyk => 11,
        }
    }
}

/// A JPEG's dimensions and colour space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Colour space of the file.
    pub colorspace: Colorspace,
}

/// A TurboJPEG decompressor handle (one per thread: creating one allocates libjpeg's state).
pub struct Decompressor {
    api: &'static Api,
    handle: Handle,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decompressor")
    }
}

impl Decompressor {
    /// A new handle; an error if the library cannot be loaded.
    pub fn new() -> Result<Self, String> {
        let api = api()?;
        // SAFETY: no arguments; returns NULL on failure, checked below.
        let handle = unsafe { (api.init_decompress)() };
        if handle.is_null() {
            return Err("tjInitDecompress failed".into());
        }
        Ok(Self { api, handle })
    }

    fn error(&self) -> String {
        // SAFETY: the handle is valid; TurboJPEG returns a NUL-terminated string it owns,
        // copied out at once.
        unsafe { CStr::from_ptr((self.api.error_str2)(self.handle)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Reads the header of `jpeg`.
    pub fn read_header(&mut self, jpeg: &[u8]) -> Result<Header, String> {
        let len = c_ulong::try_from(jpeg.len()).map_err(|_| "JPEG too large")?;
        let (mut w, mut h, mut subsamp, mut cs) = (0, 0, 0, 0);
        // SAFETY: `jpeg` is valid for `len` bytes; the four outputs are valid `int`s.
        let res = unsafe {
            (self.api.decompress_header3)(
                self.handle,
                jpeg.as_ptr(),
                len,
                &mut w,
                &mut h,
                &mut subsamp,
                &mut cs,
            )
        };
        if res != 0 {
            return Err(self.error());
        }
        let colorspace = match cs {
            0 => Colorspace::Rgb,
            1 => Colorspace::YCbCr,
            2 => Colorspace::Gray,
            3 => Colorspace::Cmyk,
            4 => Colorspace::Ycck,
            other => return Err(format!("unknown TurboJPEG colour space {other}")),
        };
        Ok(Header {
            width: usize::try_from(w).map_err(|_| "negative width")?,
            height: usize::try_from(h).map_err(|_| "negative height")?,
            colorspace,
        })
    }

    /// Decodes `jpeg` into `out`, which must hold `width · height · format.size()` bytes.
    /// Returns TurboJPEG's message on failure, which may be a mere libjpeg warning raised
    /// after every pixel was written.
    pub fn decompress(
        &mut self,
        jpeg: &[u8],
        header: &Header,
        format: PixelFormat,
        out: &mut [u8],
    ) -> Result<(), String> {
        let need = header.width * header.height * format.size();
        if out.len() != need {
            return Err(format!("output buffer of {} bytes for {need}", out.len()));
        }
        let len = c_ulong::try_from(jpeg.len()).map_err(|_| "JPEG too large")?;
        let int = |v: usize| c_int::try_from(v).map_err(|_| "image too large".to_string());
        let (w, h, pitch) = (
            int(header.width)?,
            int(header.height)?,
            int(header.width * format.size())?,
        );
        // SAFETY: `jpeg` is valid for `len` bytes and `out` for `pitch · h` bytes (checked
        // above); flags 0.
        let res = unsafe {
            (self.api.decompress2)(
                self.handle,
                jpeg.as_ptr(),
                len,
                out.as_mut_ptr(),
                w,
                pitch,
                h,
                format.code(),
                0,
            )
        };
        if res == 0 { Ok(()) } else { Err(self.error()) }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInitDecompress and is destroyed once.
        unsafe { (self.api.destroy)(self.handle) };
    }
}

/// Encodes an RGB image (`width · height · 3` bytes) as a 4:2:0 JPEG of `quality` (1-100),
/// as Pillow's `save(..., quality=q)` does by default; for benchmark and test corpora.
pub fn encode_rgb(rgb: &[u8], width: usize, height: usize, quality: u8) -> Result<Vec<u8>, String> {
    if rgb.len() != width * height * 3 {
        return Err(format!(
            "{} bytes for a {width}×{height} RGB image",
            rgb.len()
        ));
    }
    let api = api()?;
    let int = |v: usize| c_int::try_from(v).map_err(|_| "image too large".to_string());
    let (w, h, pitch) = (int(width)?, int(height)?, int(width * 3)?);
    // SAFETY: no arguments; NULL on failure.
    let handle = unsafe { (api.init_compress)() };
    if handle.is_null() {
        return Err("tjInitCompress failed".into());
    }
    let (mut buf, mut len): (*mut c_uchar, c_ulong) = (std::ptr::null_mut(), 0);
    // SAFETY: `rgb` holds `pitch · h` bytes (checked); TurboJPEG allocates `buf` (NULL in),
    // sets `len`, and the buffer is copied out and freed with tjFree before returning.
    unsafe {
        let res = (api.compress2)(
            handle,
            rgb.as_ptr(),
            w,
            pitch,
            h,
            0,
            &mut buf,
            &mut len,
            2,
            c_int::from(quality),
            0,
        );
        let out = if res == 0 {
            Ok(std::slice::from_raw_parts(buf, len as usize).to_vec())
        } else {
            Err(CStr::from_ptr((api.error_str2)(handle))
                .to_string_lossy()
                .into_owned())
        };
        if !buf.is_null() {
            (api.free)(buf);
        }
        (api.destroy)(handle);
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoding_then_decoding_returns_the_image() {
        let (w, h) = (40, 24);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 6) as u8, (y * 10) as u8, 128]
            })
            .collect();
        let jpeg = super::encode_rgb(&rgb, w, h, 95).expect("encodes");
        let img = crate::decode::decode(&jpeg, "gradient").expect("decodes");
        assert_eq!((img.width(), img.height()), (w, h));
        let mean_err = img
            .pixels()
            .iter()
            .zip(&rgb)
            .map(|(&a, &b)| f64::from(a.abs_diff(b)))
            .sum::<f64>()
            / rgb.len() as f64;
        assert!(mean_err < 2.0, "{mean_err}");
        assert!(super::encode_rgb(&rgb[1..], w, h, 95).is_err());
    }
}
