//! CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the binary batches of the original
//! distribution or from the Hugging Face Hub's parquet files (`uoft-cs/cifar10`,
//! `uoft-cs/cifar100`: PNG images). File sizes, record counts and label ranges are
//! checked; a wrong or truncated file is an error that names it.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::decode::decode;
use crate::error::{Error, Result, read_file};
use crate::hub::{HubCache, dataset_files};
use crate::parquet::{ImageRows, label_in};
use crate::subset::gather;

/// Bytes of one 32 × 32 RGB image, channel-planar as the binary batches store it.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// One split: images `(count, 3, 32, 32)` channel-planar, and labels.
#[derive(Debug, Clone)]
pub struct CifarSplit {
    /// `count × 3 × 32 × 32` bytes.
    pub images: Vec<u8>,
    /// Labels: CIFAR-10's classes, CIFAR-100's fine labels.
    pub labels: Vec<u8>,
    /// CIFAR-100's 20 superclasses; `None` for CIFAR-10.
    pub coarse_labels: Option<Vec<u8>>,
}

impl CifarSplit {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images as `(count, 3, 32, 32)` `f32` on `[0, 1]`.
    pub fn images_tensor(&self, device: &Device) -> Result<Tensor> {
        let t = Tensor::from_slice(&self.images, (self.len(), 3, 32, 32), device)?;
        Ok((t.to_dtype(DType::F32)? / 255.0)?)
    }

    /// Labels as a `(count,)` `u32` tensor.
    pub fn labels_tensor(&self, device: &Device) -> Result<Tensor> {
        let l: Vec<u32> = self.labels.iter().map(|&l| u32::from(l)).collect();
        Ok(Tensor::from_vec(l, self.len(), device)?)
    }

    /// `n` examples spread evenly over the split ([`crate::subset::evenly_spaced`]), or all
    /// of it.
    pub fn evenly_spaced(&self, n: usize) -> Self {
        let picked: Vec<usize> = crate::subset::evenly_spaced(self.len(), n).collect();
        Self {
            images: gather(&self.images, IMAGE_BYTES, &picked),
            labels: gather(&self.labels, 1, &picked),
            coarse_labels: self
                .coarse_labels
                .as_ref()
                .map(|coarse| gather(coarse, 1, &picked)),
        }
    }
}

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes; binary records are `label, 3072 bytes`.
    Ten,
    /// 100 fine classes in 20 coarse ones; binary records are `coarse, fine, 3072 bytes`.
    Hundred,
}

impl Cifar {
    /// The dataset's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ten => "CIFAR-10",
            Self::Hundred => "CIFAR-100",
        }
    }

    /// The folder the binary distribution extracts to, and its archive.
    fn binary_distribution(self) -> (&'static str, &'static str) {
        match self {
            Self::Ten => ("cifar-10-batches-bin", "cifar-10-binary.tar.gz"),
            Self::Hundred => ("cifar-100-binary", "cifar-100-binary.tar.gz"),
        }
    }

    fn label_bytes(self) -> usize {
        match self {
            Self::Ten => 1,
            Self::Hundred => 2,
        }
    }

    /// The binary files of a split, relative to the extracted folder.
    fn binary_files(self, train: bool) -> &'static [&'static str] {
        match (self, train) {
            (Self::Ten, true) => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (Self::Ten, false) => &["test_batch.bin"],
            (Self::Hundred, true) => &["train.bin"],
            (Self::Hundred, false) => &["test.bin"],
        }
    }

    /// Records per file of the original distribution.
    fn records(self, train: bool) -> usize {
        match (self, train) {
            (Self::Ten, _) => 10_000,
            (Self::Hundred, true) => 50_000,
            (Self::Hundred, false) => 10_000,
        }
    }

    /// The Hub repository and the parquet file of a split.
    pub fn hub_file(self, train: bool) -> (&'static str, &'static str) {
        let split = if train { "train" } else { "test" };
        match (self, split) {
            (Self::Ten, "train") => ("uoft-cs/cifar10", "plain_text/train-00000-of-00001.parquet"),
            (Self::Ten, _) => ("uoft-cs/cifar10", "plain_text/test-00000-of-00001.parquet"),
            (Self::Hundred, "train") => {
                ("uoft-cs/cifar100", "cifar100/train-00000-of-00001.parquet")
            }
            (Self::Hundred, _) => ("uoft-cs/cifar100", "cifar100/test-00000-of-00001.parquet"),
        }
    }

    /// Parses one binary batch file.
    pub fn read_binary(self, path: &Path, expected_records: Option<usize>) -> Result<CifarSplit> {
        let bytes = read_file(path)?;
        let record = self.label_bytes() + IMAGE_BYTES;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(Error::format(
                path,
                format!(
                    "{} bytes is not a whole number of {record}-byte records",
                    bytes.len()
                ),
            ));
        }
        let n = bytes.len() / record;
        if let Some(want) = expected_records.filter(|&w| w != n) {
            return Err(Error::format(path, format!("{n} records, expected {want}")));
        }
        let mut split = CifarSplit {
            images: Vec::with_capacity(n * IMAGE_BYTES),
            labels: Vec::with_capacity(n),
            coarse_labels: (self == Self::Hundred).then(|| Vec::with_capacity(n)),
        };
        for (i, rec) in bytes.chunks_exact(record).enumerate() {
            match (self, split.coarse_labels.as_mut()) {
                (Self::Hundred, Some(coarse)) => {
                    coarse.push(label_in(path, i, rec[0].into(), 20)?);
                    split.labels.push(label_in(path, i, rec[1].into(), 100)?);
                }
                _ => split.labels.push(label_in(path, i, rec[0].into(), 10)?),
            }
            split.images.extend_from_slice(&rec[self.label_bytes()..]);
        }
        Ok(split)
    }

    /// A split from the extracted binary distribution (`cifar-10-batches-bin/` or
    /// `cifar-100-binary/`, or the folder holding their files).
    pub fn from_binary_dir(self, dir: &Path, train: bool) -> Result<CifarSplit> {
        let mut out: Option<CifarSplit> = None;
        for name in self.binary_files(train) {
            let path = [
                dir.join(name),
                dir.join("cifar-10-batches-bin").join(name),
                dir.join("cifar-100-binary").join(name),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| Error::NotFound(format!("{}: no {name}", dir.display())))?;
            let part = self.read_binary(&path, Some(self.records(train)))?;
            match out.as_mut() {
                None => out = Some(part),
                Some(acc) => {
                    acc.images.extend(part.images);
                    acc.labels.extend(part.labels);
                }
            }
        }
        out.ok_or_else(|| Error::NotFound(format!("{}: no CIFAR files", dir.display())))
    }

    /// A split from the Hub's parquet file.
    pub fn read_parquet(self, path: &Path) -> Result<CifarSplit> {
        let labels: &[&str] = match self {
            Self::Ten => &["label"],
            Self::Hundred => &["fine_label", "coarse_label"],
        };
        let rows = ImageRows::open(path, "img", labels)?;
        let mut split = CifarSplit {
            images: Vec::with_capacity(rows.len() * IMAGE_BYTES),
            labels: Vec::with_capacity(rows.len()),
            coarse_labels: (self == Self::Hundred).then(Vec::new),
        };
        for row in rows {
            let row = row?;
            let img = decode(&row.bytes, &format!("{} row {}", path.display(), row.row))?;
            if (img.width(), img.height()) != (32, 32) {
                return Err(Error::format(
                    path,
                    format!(
                        "row {}: image is {}x{}, not 32x32",
                        row.row,
                        img.width(),
                        img.height()
                    ),
                ));
            }
            for c in 0..3 {
                split
                    .images
                    .extend(img.pixels().chunks_exact(3).map(|p| p[c]));
            }
            let fine = if self == Self::Ten { 10 } else { 100 };
            split
                .labels
                .push(label_in(path, row.row, row.labels[0], fine)?);
            if let Some(coarse) = split.coarse_labels.as_mut() {
                coarse.push(label_in(path, row.row, row.labels[1], 20)?);
            }
        }
        Ok(split)
    }

    /// A split from a Hub snapshot folder (`<dir>/plain_text/train-00000-of-00001.parquet`).
    pub fn from_parquet_dir(self, dir: &Path, train: bool) -> Result<CifarSplit> {
        let path: PathBuf = dir.join(self.hub_file(train).1);
        self.read_parquet(&path)
    }

    /// Finds a split, as [`crate::mnist::FashionMnist::resolve`] does: at `explicit` if
    /// given, else in the Hugging Face cache of the environment (`HF_HOME`, `HF_ENDPOINT`),
    /// downloading it there with the `hub` feature. See [`Cifar::resolve_in`].
    pub fn resolve(self, explicit: Option<&Path>, train: bool) -> Result<CifarSplit> {
        self.resolve_in(explicit, train, &HubCache::from_env())
    }

    /// Finds a split by what `explicit` is: a `.parquet` file is the hub's file of the split;
    /// any other file a binary batch (the whole of `test_batch.bin`, or some of its
    /// records); a folder holding the hub's file (a snapshot folder, or the file's own
    /// folder) is read as parquet, any other folder as the binary distribution
    /// (`cifar-10-batches-bin/`, or the folder it was extracted in). Without `explicit`, the
    /// split comes from `cache`.
    pub fn resolve_in(
        self,
        explicit: Option<&Path>,
        train: bool,
        cache: &HubCache,
    ) -> Result<CifarSplit> {
        let Some(path) = explicit else {
            return self.from_hub(cache, train);
        };
        let hub_file = Path::new(self.hub_file(train).1);
        if path.is_file() {
            let parquet = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
            return if parquet {
                self.read_parquet(path)
            } else {
                self.read_binary(path, None)
            };
        }
        if !path.is_dir() {
            return Err(Error::NotFound(format!(
                "{}: no such file or folder",
                path.display()
            )));
        }
        let parquet = [
            Some(path.join(hub_file)),
            hub_file.file_name().map(|name| path.join(name)),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file());
        match parquet {
            Some(file) => self.read_parquet(&file),
            None => self.from_binary_dir(path, train),
        }
    }

    /// A split from a Hugging Face cache (`datasets--uoft-cs--cifar10/snapshots/…`),
    /// downloading it into the cache with the `hub` feature. When it is in neither, the
    /// error says what to fetch and where to put it.
    pub fn from_hub(self, cache: &HubCache, train: bool) -> Result<CifarSplit> {
        let (repo, file) = self.hub_file(train);
        let path = dataset_files(cache, repo, &[file]).map_err(|e| {
            let (folder, archive) = self.binary_distribution();
            Error::NotFound(format!(
                "{} {} split: {e}. Put it in the Hugging Face cache {} with \
                 `huggingface-cli download --repo-type dataset {repo} {file}`, or give the \
                 folder `{folder}` extracted from the binary distribution {archive}",
                self.name(),
                if train { "training" } else { "test" },
                cache.path().display(),
            ))
        })?;
        match path.first() {
            Some(path) => self.read_parquet(path),
            None => Err(Error::NotFound(format!("{repo}/{file}"))),
        }
    }
}
