//! Images and labels from parquet files as the Hugging Face Hub stores datasets
//! (`datasets` writes them through pyarrow): an image column that is a struct
//! `{bytes: binary, path: string}` (or plain binary) holding the encoded file, and integer
//! label columns. Read with the `parquet` crate's record API, row group by row group, so a
//! shard of ImageNet streams instead of being loaded whole.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use parquet::schema::types::Type;

use crate::decode::decode;
use crate::error::{Error, Result};
use crate::mnist::Split;

/// One row: the encoded image and the requested labels.
#[derive(Debug, Clone)]
pub struct ImageRow {
    /// Row number in the file.
    pub row: usize,
    /// The encoded image (JPEG or PNG bytes).
    pub bytes: Vec<u8>,
    /// The label columns, in the order asked.
    pub labels: Vec<i64>,
}

/// The rows of a parquet file, read lazily: an image column and label columns.
pub struct ImageRows {
    path: PathBuf,
    rows: RowIter<'static>,
    next: usize,
    len: usize,
}

impl std::fmt::Debug for ImageRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageRows({}, {} rows)", self.path.display(), self.len)
    }
}

impl ImageRows {
    /// Opens `path` and checks that the columns exist.
    pub fn open(path: &Path, image: &str, labels: &[&str]) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = SerializedFileReader::new(file)
            .map_err(|e| Error::format(path, format!("not a readable parquet file: {e}")))?;
        let meta = reader.metadata().file_metadata();
        let len = usize::try_from(meta.num_rows()).unwrap_or(0);
        let schema = meta.schema();
        let field = |name: &str| -> Result<Arc<Type>> {
            schema
                .get_fields()
                .iter()
                .find(|f| f.name() == name)
                .cloned()
                .ok_or_else(|| {
                    let have: Vec<_> = schema.get_fields().iter().map(|f| f.name()).collect();
                    Error::format(path, format!("no column `{name}` (columns: {have:?})"))
                })
        };
        let mut fields = vec![field(image)?];
        for l in labels {
            fields.push(field(l)?);
        }
        let projection = Type::group_type_builder(schema.name())
            .with_fields(fields)
            .build()
            .map_err(|e| Error::format(path, e.to_string()))?;
        let rows = RowIter::from_file_into(Box::new(reader))
            .project(Some(projection))
            .map_err(|e| Error::format(path, e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            rows,
            next: 0,
            len,
        })
    }

    /// Number of rows the footer announces.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&self, row: &Row) -> std::result::Result<(Vec<u8>, Vec<i64>), String> {
        let mut columns = row.get_column_iter();
        let (name, image) = columns.next().ok_or("empty row")?;
        let bytes = match image {
            Field::Bytes(b) => b.data().to_vec(),
            Field::Group(g) => g
                .get_column_iter()
                .find_map(|(n, f)| match (n.as_str(), f) {
                    ("bytes", Field::Bytes(b)) => Some(b.data().to_vec()),
                    _ => None,
                })
                .ok_or_else(|| format!("column `{name}` has no `bytes`"))?,
            Field::Null => return Err(format!("column `{name}` is null")),
            other => return Err(format!("column `{name}` is {other:?}, not image bytes")),
        };
        let labels = columns
            .map(|(n, f)| match f {
                Field::Long(v) => Ok(*v),
                Field::Int(v) => Ok(i64::from(*v)),
                Field::Short(v) => Ok(i64::from(*v)),
                Field::Byte(v) => Ok(i64::from(*v)),
                other => Err(format!("label column `{n}` is {other:?}")),
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok((bytes, labels))
    }
}

impl Iterator for ImageRows {
    type Item = Result<ImageRow>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.next;
        let item = self.rows.next()?;
        self.next += 1;
        Some(
            item.map_err(|e| e.to_string())
                .and_then(|r| self.parse(&r))
                .map(|(bytes, labels)| ImageRow { row, bytes, labels })
                .map_err(|reason| Error::format(&self.path, format!("row {row}: {reason}"))),
        )
    }
}

/// A greyscale split (MNIST, Fashion-MNIST as the hub stores them: PNG images), every
/// image `rows × cols`.
pub(crate) fn grey_split(
    path: &Path,
    (image, label): (&str, &str),
    classes: u8,
    (rows, cols): (usize, usize),
) -> Result<Split> {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for row in ImageRows::open(path, image, &[label])? {
        let row = row?;
        let origin = format!("{} row {}", path.display(), row.row);
        let img = decode(&row.bytes, &origin)?;
        if (img.height(), img.width()) != (rows, cols) {
            return Err(Error::format(
                path,
                format!(
                    "row {}: image is {}x{}, not {cols}x{rows}",
                    row.row,
                    img.width(),
                    img.height()
                ),
            ));
        }
        images.extend(img.pixels().chunks_exact(3).map(|p| p[0]));
        labels.push(label_in(path, row.row, row.labels[0], classes)?);
    }
    if labels.is_empty() {
        return Err(Error::format(path, "no rows"));
    }
    Ok(Split {
        count: labels.len(),
        images,
        labels,
        rows,
        cols,
    })
}

/// A label checked against the number of classes.
pub(crate) fn label_in(path: &Path, row: usize, label: i64, classes: u8) -> Result<u8> {
    u8::try_from(label)
        .ok()
        .filter(|&l| l < classes)
        .ok_or_else(|| {
            Error::format(
                path,
                format!("row {row}: label {label} not in 0..{classes}"),
            )
        })
}
