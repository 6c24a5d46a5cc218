//! ImageNet-1k (ILSVRC2012) validation in the layouts users have, and the class table.
//!
//! - Class folders, as torchvision's `ImageFolder` reads them: `val/n01440764/*.JPEG`.
//! - The flat official folder (`ILSVRC2012_val_00000001.JPEG` ...) with the devkit's
//!   `ILSVRC2012_validation_ground_truth.txt`, whose class ids (`ILSVRC2012_ID`, 1..1000 in
//!   the devkit's own order) are mapped to the sorted-synset order by a [`DevkitIds`] table
//!   ([`DevkitIds::ilsvrc2012`], committed as `assets/ilsvrc2012_devkit_ids.txt`).
//! - The flat folder with Kaggle's `LOC_val_solution.csv` (`ImageId,PredictionString`, the
//!   synset first in the prediction string).
//! - Hugging Face `imagenet-1k` parquet shards (`validation-*.parquet`: `image` {bytes, path},
//!   `label` in sorted-synset order), streamed.
//!
//! Every layout yields the same [`Item`]s: a name for messages, the encoded bytes (or the
//! error reading them) and the class index in sorted-synset order, the order of every
//! torchvision and timm checkpoint ([`CLASSES`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result, read_file};
use crate::parquet::ImageRows;

/// One ImageNet-1k class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// Index in sorted-synset order: the output unit of the classifier.
    pub index: usize,
    /// WordNet id, e.g. `n01440764`.
    pub synset: &'static str,
    /// Short English name (torchvision's), e.g. `tench`.
    pub name: &'static str,
    /// The synset's WordNet lemmas, e.g. `tench, Tinca tinca`.
    pub lemmas: &'static str,
}

/// The class table, `assets/imagenet_classes.tsv` (provenance in `assets/README.md`).
const CLASSES_TSV: &str = include_str!("../assets/imagenet_classes.tsv");

/// The 1000 classes in sorted-synset order.
pub static CLASSES: ImageNetClasses = ImageNetClasses(OnceLock::new());

/// The class table, parsed on first use.
#[derive(Debug)]
pub struct ImageNetClasses(OnceLock<(Vec<Class>, HashMap<&'static str, usize>)>);

impl ImageNetClasses {
    fn table(&self) -> &(Vec<Class>, HashMap<&'static str, usize>) {
        self.0.get_or_init(|| {
            let classes: Vec<Class> = CLASSES_TSV
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .enumerate()
                .map(|(i, line)| {
                    let mut cols = line.split('\t');
                    let mut next = || cols.next().unwrap_or_default();
                    let index = next().parse().unwrap_or(usize::MAX);
                    assert_eq!(index, i, "imagenet_classes.tsv: row {i} has index {index}");
                    Class {
                        index,
                        synset: next(),
                        name: next(),
                        lemmas: next(),
                    }
                })
                .collect();
            assert_eq!(classes.len(), 1000, "imagenet_classes.tsv has 1000 rows");
            let by_synset = classes.iter().map(|c| (c.synset, c.index)).collect();
            (classes, by_synset)
        })
    }

    /// All classes, index order.
    pub fn all(&self) -> &[Class] {
        &self.table().0
    }

    /// The class of an index.
    pub fn get(&self, index: usize) -> Option<&Class> {
        self.table().0.get(index)
    }

    /// The index of a synset id.
    pub fn index_of(&self, synset: &str) -> Option<usize> {
        self.table().1.get(synset).copied()
    }
}

/// The devkit's class ids: `ILSVRC2012_ID` `k` (1-based, the devkit's `meta.mat` order) is
/// the synset at position `k - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevkitIds {
    /// Sorted-synset index of each devkit id, `devkit id - 1` as position.
    to_index: Vec<usize>,
}

/// `assets/ilsvrc2012_devkit_ids.txt`: the devkit ids of ILSVRC2012 (provenance in
/// `assets/README.md`).
const DEVKIT_IDS: &str = include_str!("../assets/ilsvrc2012_devkit_ids.txt");

impl DevkitIds {
    /// The ILSVRC2012 devkit's ids (`data/meta.mat` of `ILSVRC2012_devkit_t12`), committed
    /// with the crate; the 2014-2017 devkits' `map_clsloc.txt` uses the same ids.
    pub fn ilsvrc2012() -> Self {
        match Self::parse(DEVKIT_IDS, Path::new("assets/ilsvrc2012_devkit_ids.txt")) {
            Ok(ids) => ids,
            Err(e) => unreachable!("the committed devkit table is checked by the tests: {e}"),
        }
    }

    /// Reads the mapping from a text file of 1000 lines `n02119789 1 kit_fox`
    /// (`map_clsloc.txt` of the ILSVRC2014-2017 devkits) or `1 n02119789` (`ILSVRC2012_ID
    /// WNID`, the committed table's format); `#` starts a comment line.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = String::from_utf8(read_file(path)?)
            .map_err(|_| Error::format(path, "not UTF-8 text"))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut to_index = vec![usize::MAX; 1000];
        let lines = text.lines().enumerate();
        for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
            let mut words = line.split_whitespace();
            let (a, b) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (synset, id) = if a.starts_with('n') { (a, b) } else { (b, a) };
            let id: usize = id
                .parse()
                .ok()
                .filter(|id| (1..=1000).contains(id))
                .ok_or_else(|| Error::format(path, format!("line {}: no id in 1..=1000", n + 1)))?;
            let index = CLASSES.index_of(synset).ok_or_else(|| {
                Error::format(
                    path,
                    format!("line {}: `{synset}` is not an ImageNet-1k synset", n + 1),
                )
            })?;
            if to_index[id - 1] != usize::MAX {
                return Err(Error::format(
                    path,
                    format!("line {}: id {id} given twice", n + 1),
                ));
            }
            to_index[id - 1] = index;
        }
        if let Some(missing) = to_index.iter().position(|&i| i == usize::MAX) {
            return Err(Error::format(
                path,
                format!("devkit id {} is missing", missing + 1),
            ));
        }
        Ok(Self { to_index })
    }

    /// The sorted-synset index of a devkit id (1-based).
    pub fn index(&self, devkit_id: usize) -> Option<usize> {
        devkit_id
            .checked_sub(1)
            .and_then(|i| self.to_index.get(i))
            .copied()
    }
}

/// One validation image, not yet decoded.
#[derive(Debug)]
pub struct Item {
    /// The file, or the shard and row: what an error message names.
    pub name: String,
    /// The encoded image, or why it could not be read.
    pub bytes: Result<Vec<u8>>,
    /// Class index, sorted-synset order.
    pub label: u32,
}

/// Where the images of a validation set are.
#[derive(Debug, Clone)]
enum Images {
    /// Files with their labels.
    Files(Vec<(PathBuf, u32)>),
    /// Parquet shards, read in order; with `keep`, only the rows (numbered across shards)
    /// it marks.
    Parquet {
        shards: Vec<PathBuf>,
        keep: Option<Arc<[bool]>>,
    },
}

/// An ImageNet-1k validation set (or any subset of it) in one of the supported layouts.
#[derive(Debug, Clone)]
pub struct ImageNetVal {
    images: Images,
    len: usize,
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// How many folders above a flat validation folder [`ImageNetVal::detect`] looks for
/// `LOC_val_solution.csv`: from `ILSVRC/Data/CLS-LOC/val` up to the top of the Kaggle
/// download.
pub const KAGGLE_LEVELS: usize = 4;

fn is_synset(name: &str) -> bool {
    name.len() == 9 && name.starts_with('n') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

impl ImageNetVal {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `dir/<synset>/<file>`: every file of every synset folder (sorted), as `ImageFolder`
    /// with the 1000 classes fixed by the table, so a subset keeps the checkpoint's indices.
    pub fn class_folders(dir: &Path) -> Result<Self> {
        let mut files = Vec::new();
        for class_dir in list_dir(dir)?.into_iter().filter(|p| p.is_dir()) {
            let name = class_dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let index = CLASSES.index_of(name).ok_or_else(|| {
                Error::format(&class_dir, "folder name is not an ImageNet-1k synset")
            })?;
            for file in list_dir(&class_dir)?.into_iter().filter(|p| p.is_file()) {
                files.push((file, index as u32));
            }
        }
        Self::from_files(dir, files)
    }

    /// The flat folder and the devkit's ground truth: line `i` holds the devkit id of
    /// `ILSVRC2012_val_{i:08}.JPEG`.
    pub fn devkit(dir: &Path, ground_truth: &Path, ids: &DevkitIds) -> Result<Self> {
        let text = String::from_utf8(read_file(ground_truth)?)
            .map_err(|_| Error::format(ground_truth, "not UTF-8 text"))?;
        let mut files = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let label = line
                .trim()
                .parse()
                .ok()
                .and_then(|id| ids.index(id))
                .ok_or_else(|| {
                    Error::format(
                        ground_truth,
                        format!("line {}: `{line}` is not a devkit id 1..=1000", n + 1),
                    )
                })?;
            let file = dir.join(format!("ILSVRC2012_val_{:08}.JPEG", n + 1));
            files.push((file, label as u32));
        }
        Self::from_files(dir, files)
    }

    /// The flat folder and Kaggle's `LOC_val_solution.csv`.
    pub fn kaggle(dir: &Path, solution: &Path) -> Result<Self> {
        let text = String::from_utf8(read_file(solution)?)
            .map_err(|_| Error::format(solution, "not UTF-8 text"))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == "ImageId,PredictionString" => {}
            _ => {
                return Err(Error::format(
                    solution,
                    "expected the header `ImageId,PredictionString`",
                ));
            }
        }
        let mut files = Vec::new();
        for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |what: &str| Error::format(solution, format!("line {}: {what}", n + 1));
            let (id, prediction) = line.split_once(',').ok_or_else(|| bad("no comma"))?;
            let synset = prediction.split_whitespace().next().unwrap_or("");
            let label = CLASSES
                .index_of(synset)
                .ok_or_else(|| bad(&format!("`{synset}` is not an ImageNet-1k synset")))?;
            files.push((dir.join(format!("{}.JPEG", id.trim())), label as u32));
        }
        // The CSV is not in file order; evaluation order should not depend on it.
        files.sort();
        Self::from_files(dir, files)
    }

    /// Hugging Face `imagenet-1k` shards: the given files, or every `validation-*.parquet`
    /// of a folder (searching `data/` too, the repository's layout).
    pub fn parquet(shards: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        for path in shards {
            if path.is_dir() {
                for dir in [path.clone(), path.join("data")] {
                    if dir.is_dir() {
                        files.extend(list_dir(&dir)?.into_iter().filter(|p| {
                            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                                n.starts_with("validation-") && n.ends_with(".parquet")
                            })
                        }));
                    }
                }
            } else {
                files.push(path.clone());
            }
        }
        if files.is_empty() {
            return Err(Error::NotFound(format!(
                "no validation-*.parquet in {shards:?}"
            )));
        }
        let mut len = 0;
        for f in &files {
            len += ImageRows::open(f, "image", &["label"])?.len();
        }
        Ok(Self {
            images: Images::Parquet {
                shards: files,
                keep: None,
            },
            len,
        })
    }

    /// Picks the layout of `dir`: class folders if it has synset folders; else the flat
    /// folder with `LOC_val_solution.csv` in it or in one of the [`KAGGLE_LEVELS`] folders
    /// above it (the Kaggle download has it at its top, beside `ILSVRC/`, four levels above
    /// `ILSVRC/Data/CLS-LOC/val`); else parquet shards. The devkit layout needs its id
    /// table and is never guessed.
    pub fn detect(dir: &Path) -> Result<Self> {
        let entries = list_dir(dir)?;
        let synset_dirs = entries.iter().any(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_synset)
        });
        if synset_dirs {
            return Self::class_folders(dir);
        }
        // Lexically absolute, so that a relative `val` has parents; symlinks stay as given.
        let absolute = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
        let csv = absolute
            .ancestors()
            .take(KAGGLE_LEVELS + 1)
            .map(|d| d.join("LOC_val_solution.csv"))
            .find(|csv| csv.is_file());
        if let Some(csv) = csv {
            return Self::kaggle(dir, &csv);
        }
        Self::parquet(&[dir.to_path_buf()]).map_err(|_| {
            Error::NotFound(format!(
                "{}: no synset folders, no LOC_val_solution.csv in it or up to {KAGGLE_LEVELS} \
                 folders above it, no validation-*.parquet; for the devkit layout give the \
                 ground-truth file and the id table",
                dir.display()
            ))
        })
    }

    fn from_files(dir: &Path, files: Vec<(PathBuf, u32)>) -> Result<Self> {
        if files.is_empty() {
            return Err(Error::NotFound(format!("{}: no images", dir.display())));
        }
        Ok(Self {
            len: files.len(),
            images: Images::Files(files),
        })
    }

    /// The images in evaluation order, read lazily (one file or one parquet row at a time).
    /// An `Err` item is a shard that cannot be read further; an unreadable single image is
    /// an `Ok` item whose `bytes` is the error.
    pub fn items(&self) -> Box<dyn Iterator<Item = Result<Item>> + Send> {
        match &self.images {
            Images::Files(files) => Box::new(files.clone().into_iter().map(|(path, label)| {
                Ok(Item {
                    name: path.display().to_string(),
                    bytes: read_file(&path),
                    label,
                })
            })),
            Images::Parquet { shards, keep } => {
                let rows = shards.clone().into_iter().flat_map(|shard| {
                    let rows: Box<dyn Iterator<Item = Result<Item>> + Send> =
                        match ImageRows::open(&shard, "image", &["label"]) {
                            Err(e) => Box::new(std::iter::once(Err(e))),
                            Ok(rows) => Box::new(rows.map(move |row| {
                                let row = row?;
                                let label = u32::try_from(row.labels[0])
                                    .ok()
                                    .filter(|&l| l < 1000)
                                    .ok_or_else(|| {
                                        Error::format(
                                            &shard,
                                            format!(
                                                "row {}: label {} not in 0..1000",
                                                row.row, row.labels[0]
                                            ),
                                        )
                                    })?;
                                Ok(Item {
                                    name: format!("{} row {}", shard.display(), row.row),
                                    bytes: Ok(row.bytes),
                                    label,
                                })
                            })),
                        };
                    rows
                });
                match keep.clone() {
                    None => Box::new(rows),
                    // The bytes of a row left out are read (a row group is read whole) but
                    // never decoded.
                    Some(keep) => Box::new(
                        rows.enumerate()
                            .filter(move |(i, _)| keep.get(*i).copied().unwrap_or(false))
                            .map(|(_, item)| item),
                    ),
                }
            }
        }
    }

    /// `n` images spread evenly over the set, in order ([`crate::subset::evenly_spaced`]): a
    /// quick partial evaluation of a layout sorted by class sees every part of it.
    pub fn evenly_spaced(&self, n: usize) -> Self {
        if n >= self.len {
            return self.clone();
        }
        let picked = crate::subset::evenly_spaced(self.len, n);
        let images = match &self.images {
            Images::Files(files) => Images::Files(picked.map(|i| files[i].clone()).collect()),
            Images::Parquet { shards, keep: None } => {
                let mut keep = vec![false; self.len];
                picked.for_each(|i| keep[i] = true);
                Images::Parquet {
                    shards: shards.clone(),
                    keep: Some(keep.into()),
                }
            }
            Images::Parquet {
                shards,
                keep: Some(kept),
            } => {
                // Positions among the rows already kept, mapped back to row numbers.
                let rows: Vec<usize> = (0..kept.len()).filter(|&r| kept[r]).collect();
                let mut keep = vec![false; kept.len()];
                picked.for_each(|i| keep[rows[i]] = true);
                Images::Parquet {
                    shards: shards.clone(),
                    keep: Some(keep.into()),
                }
            }
        };
        Self { images, len: n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_is_the_sorted_synset_order() {
        let all = CLASSES.all();
        assert_eq!(all.len(), 1000);
        assert!(all.windows(2).all(|w| w[0].synset < w[1].synset));
        assert_eq!(all[0].synset, "n01440764");
        assert_eq!(all[0].name, "tench");
        assert_eq!(CLASSES.index_of("n02123045"), Some(281));
        assert_eq!(CLASSES.get(281).map(|c| c.name), Some("tabby"));
        assert_eq!(CLASSES.get(999).map(|c| c.synset), Some("n15075141"));
        assert_eq!(CLASSES.index_of("n00000000"), None);
    }

    #[test]
    fn devkit_ids_label_the_first_validation_images() {
        // The first ten lines of ILSVRC2012_validation_ground_truth.txt, and the synsets the
        // images ILSVRC2012_val_00000001..10 are filed under in class-folder copies of the
        // validation set (tensorflow/models imagenet_2012_validation_synset_labels.txt).
        let ground_truth = [490, 361, 171, 822, 297, 482, 13, 704, 599, 164];
        let synsets = [
            "n01751748",
            "n09193705",
            "n02105855",
            "n04263257",
            "n03125729",
            "n01735189",
            "n02346627",
            "n02776631",
            "n03794056",
            "n02328150",
        ];
        let ids = DevkitIds::ilsvrc2012();
        for (id, synset) in ground_truth.into_iter().zip(synsets) {
            assert_eq!(ids.index(id), CLASSES.index_of(synset), "devkit id {id}");
        }
        // Every class has exactly one id (checked by parse), kit fox first, dumbbell last.
        assert_eq!(ids.index(1), CLASSES.index_of("n02119789"));
        assert_eq!(ids.index(1000), CLASSES.index_of("n03255030"));
        assert_eq!(ids.index(0), None);
        assert_eq!(ids.index(1001), None);
    }
}
