//! Strict checkpoint loading.
//!
//! A [`Checkpoint`] is a name → tensor store over a safetensors file (memory-mapped, tensors
//! read on demand), a PyTorch `.pth` file (a zip archive, through candle's pickle reader, or
//! the legacy pre-1.6 format, through candle's pickle machine and `legacy_pth`) or an
//! in-memory map. [`Checkpoint::load`] builds a model from it through a [`KeyMap`], the one
//! declarative table per (family, source) that renames, reshapes and names the tensors the
//! model does not need, and fails with a single [`Mismatch`] listing every missing,
//! unexpected, mis-shaped and unusable tensor, as PyTorch's `load_state_dict(strict=True)`
//! does, rather than stopping at the first one.
//!
//! Half-precision and f64 files are converted to the model's dtype; integer tensors are only
//! ever accepted where the key map names them as unused buffers (`num_batches_tracked`).

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use safetensors::tensor::{Dtype as StDtype, Metadata, SafeTensors, TensorInfo, TensorView};
use sha2::{Digest, Sha256};

use crate::error::{Error, Mismatch, Result};

// ---------------------------------------------------------------------------------------------
// Key maps

/// One declarative rule of a [`KeyMap`]. Patterns are globs in which `*` matches any run of
/// characters (dots included); in a rename, the `*`s of `to` receive what the `*`s of `from`
/// matched, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// Renames checkpoint keys matching `from` to `to`. The first matching rename applies.
    Rename {
        /// Pattern over the checkpoint's names.
        from: &'static str,
        /// Replacement, with as many `*` as `from`.
        to: &'static str,
    },
    /// The model may ask for the (renamed) tensors matching `pattern` in another shape with
    /// the same number of elements (timm stores VGG's `fc6` as a `4096×512×7×7` conv).
    Reshape {
        /// Pattern over the model's names.
        pattern: &'static str,
    },
    /// Checkpoint tensors matching `pattern` may go unused: buffers the model does not need.
    Unused {
        /// Pattern over the checkpoint's names.
        pattern: &'static str,
        /// Why the model does not need them.
        why: &'static str,
    },
}

/// How the tensor names of one source (torchvision, timm, Caffe via ONNX, ...) map to the
/// names of a model family. Families export these as `const` values beside their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMap {
    /// A name for error messages and the weights manifest, e.g. `torchvision`.
    pub name: &'static str,
    /// The rules.
    pub rules: &'static [KeyRule],
}

/// The rule every torchvision BatchNorm model needs: `num_batches_tracked` is only used when
/// `momentum=None`, which no model of the zoo uses.
pub const UNUSED_NUM_BATCHES_TRACKED: KeyRule = KeyRule::Unused {
    pattern: "*num_batches_tracked",
    why: "BatchNorm's step counter, only read when momentum is None",
};

/// Names as they are, except that BatchNorm step counters may go unused: torchvision's and
/// timm's own layout for models whose module tree this zoo reproduces.
pub const IDENTITY: KeyMap = KeyMap {
    name: "identity",
    rules: &[UNUSED_NUM_BATCHES_TRACKED],
};

/// Where a model tensor comes from in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    source: String,
    reshape: bool,
}

impl KeyMap {
    /// Maps a checkpoint name to the model's name, or `None` if no rename applies.
    pub fn rename(&self, name: &str) -> Result<Option<String>> {
        for rule in self.rules {
            if let KeyRule::Rename { from, to } = rule
                && let Some(captures) = glob(from, name)
            {
                return substitute(to, &captures).map(Some).ok_or_else(|| {
                    Error::Config(format!(
                        "key map `{}`: rule `{from}` → `{to}` has mismatched `*`s",
                        self.name
                    ))
                });
            }
        }
        Ok(None)
    }

    /// Whether the model may ask for `model_name` in another shape.
    pub fn may_reshape(&self, model_name: &str) -> bool {
        self.rules.iter().any(
            |r| matches!(r, KeyRule::Reshape { pattern } if glob(pattern, model_name).is_some()),
        )
    }

    /// Whether the checkpoint tensor `name` may go unused.
    pub fn may_be_unused(&self, name: &str) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, KeyRule::Unused { pattern, .. } if glob(pattern, name).is_some()))
    }

    /// The model name → checkpoint name routing for a checkpoint with these names.
    fn routes<'a>(
        &self,
        origin: &str,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, Route>> {
        let mut routes: HashMap<String, Route> = HashMap::new();
        for name in names {
            let model_name = self.rename(name)?.unwrap_or_else(|| name.to_string());
            let route = Route {
                source: name.to_string(),
                reshape: self.may_reshape(&model_name),
            };
            if let Some(previous) = routes.insert(model_name.clone(), route) {
                return Err(Error::tensor(
                    origin,
                    name,
                    format!(
                        "key map `{}` renames both `{}` and `{name}` to `{model_name}`",
                        self.name, previous.source
                    ),
                ));
            }
        }
        Ok(routes)
    }
}

/// Matches `name` against a glob with `*` wildcards; returns what each `*` matched.
fn glob<'a>(pattern: &str, name: &'a str) -> Option<Vec<&'a str>> {
    fn go<'a>(parts: &[&str], name: &'a str, at: usize, out: &mut Vec<&'a str>) -> bool {
        let Some((first, rest)) = parts.split_first() else {
            return at == name.len();
        };
        if rest.is_empty() {
            // The last literal must end the name.
            if name.len() - at >= first.len() && name.ends_with(first) {
                out.push(&name[at..name.len() - first.len()]);
                return true;
            }
            return false;
        }
        // Try every position of the next literal, leftmost first, backtracking on failure.
        let mut from = at;
        while let Some(i) = name[from..].find(first) {
            let start = from + i;
            out.push(&name[at..start]);
            if go(rest, name, start + first.len(), out) {
                return true;
            }
            out.pop();
            from = start + 1;
        }
        false
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (head, tail) = parts.split_first()?;
    let rest = name.strip_prefix(head)?;
    if tail.is_empty() {
        return rest.is_empty().then(Vec::new);
    }
    let mut out = Vec::new();
    go(tail, name, head.len(), &mut out).then_some(out)
}

fn substitute(to: &str, captures: &[&str]) -> Option<String> {
    let parts: Vec<&str> = to.split('*').collect();
    if parts.len() != captures.len() + 1 {
        return None;
    }
    let mut out = parts[0].to_string();
    for (capture, part) in captures.iter().zip(&parts[1..]) {
        out.push_str(capture);
        out.push_str(part);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Checkpoint files

/// A name → tensor store: a safetensors file, a `.pth` archive, or tensors in memory.
#[derive(Debug)]
pub struct Checkpoint {
    origin: String,
    store: Store,
}

enum Store {
    Safetensors {
        mmap: memmap2::Mmap,
        data_start: usize,
        metadata: Metadata,
    },
    Pth(candle_core::pickle::PthTensors),
    PthLegacy(crate::legacy_pth::LegacyPth),
    Memory(HashMap<String, Tensor>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Safetensors { .. } => f.write_str("Safetensors"),
            Self::Pth(_) => f.write_str("Pth"),
            Self::PthLegacy(_) => f.write_str("PthLegacy"),
            Self::Memory(m) => write!(f, "Memory({} tensors)", m.len()),
        }
    }
}

/// The formats [`Checkpoint::open`] recognises, by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `safetensors`: an 8-byte little-endian header length, then a JSON header.
    Safetensors,
    /// PyTorch ≥ 1.6 `torch.save`: a zip archive holding `data.pkl`.
    PthZip,
    /// PyTorch's legacy (pre-1.6) format: a pickle stream, then the raw storages.
    PthLegacy,
}

/// Guesses a checkpoint's format from its first bytes.
pub fn sniff(head: &[u8]) -> Option<Format> {
    match head {
        [b'P', b'K', 3, 4, ..] => Some(Format::PthZip),
        // A pickle protocol-2+ stream starts with PROTO (0x80) and the protocol number.
        [0x80, 2..=5, ..] => Some(Format::PthLegacy),
        [_, _, _, _, _, _, _, _, b'{', ..] => Some(Format::Safetensors),
        _ => None,
    }
}

impl Checkpoint {
    /// Opens a safetensors or `.pth` file, recognised by its content, not its extension.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut head = [0u8; 9];
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let n = read_up_to(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
        match sniff(&head[..n]) {
            Some(Format::Safetensors) => Self::open_safetensors(path, &file),
            Some(Format::PthZip) => Self::open_pth(path),
            Some(Format::PthLegacy) => Ok(Self {
                origin: path.display().to_string(),
                store: Store::PthLegacy(crate::legacy_pth::LegacyPth::open(path)?),
            }),
            None if n < head.len() => Err(Error::checkpoint(
                path,
                format!(
                    "{n} bytes, too short to hold the header of any checkpoint format: the file \
                     is empty or cut short"
                ),
            )),
            None => Err(Error::checkpoint(
                path,
                format!(
                    "neither safetensors nor a PyTorch zip archive ({} bytes, starts with {:02x?})",
                    file.metadata().map(|m| m.len()).unwrap_or(0),
                    &head[..n]
                ),
            )),
        }
    }

    /// Opens a file after checking that its sha256 is `expected` (hex, or a prefix of at
    /// least 8 hex digits, see [`verify_sha256`]); a mismatch is an error and the file is not
    /// read further.
    pub fn open_verified(path: impl AsRef<Path>, expected: &str) -> Result<Self> {
        verify_sha256(path.as_ref(), expected)?;
        Self::open(path)
    }

    /// Tensors already in memory; `origin` describes them in error messages.
    pub fn from_tensors(origin: impl Into<String>, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            origin: origin.into(),
            store: Store::Memory(tensors),
        }
    }

    #[allow(unsafe_code)]
    fn open_safetensors(path: &Path, file: &std::fs::File) -> Result<Self> {
        // SAFETY: the map is read-only and private to this process. As with every mmap, a file
        // truncated by another process while mapped is undefined behaviour; checkpoints are
        // not modified while a model loads from them.
        let mmap =
            unsafe { memmap2::MmapOptions::new().map(file) }.map_err(|e| Error::io(path, e))?;
        // Validates the header: JSON, dtypes, offsets contiguous, in bounds and consistent
        // with the file's length (a truncated file fails here).
        let (header_len, metadata) =
            SafeTensors::read_metadata(&mmap).map_err(|e| match diagnose_safetensors(&mmap) {
                Some(Flaw {
                    tensor: Some(name),
                    reason,
                }) => Error::tensor(path.display().to_string(), name, reason),
                Some(Flaw { reason, .. }) => {
                    Error::checkpoint(path, format!("not a valid safetensors file: {reason}"))
                }
                None => Error::checkpoint(path, format!("not a valid safetensors file: {e}")),
            })?;
        Ok(Self {
            origin: path.display().to_string(),
            store: Store::Safetensors {
                mmap,
                data_start: 8 + header_len,
                metadata,
            },
        })
    }

    fn open_pth(path: &Path) -> Result<Self> {
        use candle_core::pickle::PthTensors;
        let read = |key: Option<&str>| {
            PthTensors::new(path, key)
                .map_err(|e| Error::checkpoint(path, format!("unreadable PyTorch archive: {e}")))
        };
        // A bare state dict, or one wrapped as training scripts commonly save it.
        let mut pth = read(None)?;
        for key in ["state_dict", "model"] {
            if !pth.tensor_infos().is_empty() {
                break;
            }
            if let Ok(inner) = read(Some(key)) {
                pth = inner;
            }
        }
        if pth.tensor_infos().is_empty() {
            return Err(Error::checkpoint(
                path,
                "not a state dict: the archive holds no name → tensor mapping at its top level \
                 nor under `state_dict` or `model` (save `model.state_dict()`, not the model)",
            ));
        }
        Ok(Self {
            origin: path.display().to_string(),
            store: Store::Pth(pth),
        })
    }

    /// The file (or description) the tensors come from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The names of all tensors, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.store {
            Store::Safetensors { metadata, .. } => metadata.tensors().into_keys().collect(),
            Store::Pth(pth) => pth.tensor_infos().keys().cloned().collect(),
            Store::PthLegacy(pth) => pth.tensor_infos().map(|i| i.name.clone()).collect(),
            Store::Memory(m) => m.keys().cloned().collect(),
        };
        names.sort();
        names
    }

    /// The shape and dtype (as the file names it) of tensor `name`.
    pub fn info(&self, name: &str) -> Option<(Vec<usize>, String)> {
        match &self.store {
            Store::Safetensors { metadata, .. } => metadata
                .info(name)
                .map(|i| (i.shape.clone(), format!("{:?}", i.dtype))),
            Store::Pth(pth) => pth
                .tensor_infos()
                .get(name)
                .map(|i| (i.layout.dims().to_vec(), format!("{:?}", i.dtype))),
            Store::PthLegacy(pth) => pth
                .info(name)
                .map(|i| (i.layout.dims().to_vec(), format!("{:?}", i.dtype))),
            Store::Memory(m) => m
                .get(name)
                .map(|t| (t.dims().to_vec(), format!("{:?}", t.dtype()))),
        }
    }

    /// Reads tensor `name` as it is stored (on the CPU, in the file's dtype).
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let fail = |reason: String| Error::tensor(&self.origin, name, reason);
        match &self.store {
            Store::Safetensors {
                mmap,
                data_start,
                metadata,
            } => {
                let info = metadata
                    .info(name)
                    .ok_or_else(|| fail("not in the file".into()))?;
                let (a, b) = info.data_offsets;
                let bytes = &mmap[data_start + a..data_start + b];
                let view = TensorView::new(info.dtype, info.shape.clone(), bytes)
                    .map_err(|e| fail(e.to_string()))?;
                view.load(&Device::Cpu).map_err(|e| fail(e.to_string()))
            }
            Store::Pth(pth) => pth
                .get(name)
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("not in the file".into())),
            Store::PthLegacy(pth) => pth.get(name)?.ok_or_else(|| fail("not in the file".into())),
            Store::Memory(m) => m
                .get(name)
                .cloned()
                .ok_or_else(|| fail("not in the checkpoint".into())),
        }
    }

    /// The dtype of tensor `name` if candle can hold it as a float, else the file's name for it.
    fn float_dtype(&self, name: &str) -> std::result::Result<(), String> {
        let ok = match &self.store {
            Store::Safetensors { metadata, .. } => metadata.info(name).map(|i| {
                matches!(
                    i.dtype,
                    StDtype::F16 | StDtype::BF16 | StDtype::F32 | StDtype::F64
                )
            }),
            Store::Pth(pth) => pth.tensor_infos().get(name).map(|i| i.dtype.is_float()),
            Store::PthLegacy(pth) => pth.info(name).map(|i| i.dtype.is_float()),
            Store::Memory(m) => m.get(name).map(|t| t.dtype().is_float()),
        };
        match ok {
            Some(true) | None => Ok(()),
            Some(false) => Err(format!(
                "dtype {} where the model needs floating point",
                self.info(name).map(|(_, d)| d).unwrap_or_default()
            )),
        }
    }

    /// Builds a model for inference from this checkpoint, strictly: `build` receives a
    /// `VarBuilder` that serves the checkpoint's tensors under the names `key_map` gives them;
    /// afterwards, every tensor the model asked for and did not get, every tensor it did not
    /// ask for (unless the key map names it unused) and every tensor of the wrong shape or
    /// dtype is reported in one [`Error::Mismatch`].
    pub fn load<M>(
        &self,
        key_map: &KeyMap,
        dtype: DType,
        device: &Device,
        build: impl FnOnce(VarBuilder<'_>) -> candle_core::Result<M>,
    ) -> Result<M> {
        self.load_inner(key_map, None, dtype, device, build)
    }

    /// As [`Checkpoint::load`], for training: every tensor the model takes becomes a [`Var`]
    /// registered in `varmap` under the model's name for it, so an optimiser over
    /// `varmap.all_vars()` fine-tunes the loaded weights and `varmap.save` writes them back.
    pub fn load_trainable<M>(
        &self,
        key_map: &KeyMap,
        varmap: &VarMap,
        dtype: DType,
        device: &Device,
        build: impl FnOnce(VarBuilder<'_>) -> candle_core::Result<M>,
    ) -> Result<M> {
        self.load_inner(key_map, Some(varmap.clone()), dtype, device, build)
    }

    fn load_inner<M>(
        &self,
        key_map: &KeyMap,
        varmap: Option<VarMap>,
        dtype: DType,
        device: &Device,
        build: impl FnOnce(VarBuilder<'_>) -> candle_core::Result<M>,
    ) -> Result<M> {
        let names = self.names();
        let routes = key_map.routes(&self.origin, names.iter().map(String::as_str))?;
        let log = Arc::new(Mutex::new(Log::default()));
        let backend = StrictBackend {
            checkpoint: self,
            routes: &routes,
            varmap,
            log: log.clone(),
        };
        let backend: Box<dyn SimpleBackend + '_> = Box::new(backend);
        let built = build(VarBuilder::from_backend(backend, dtype, device.clone()));
        let log = std::mem::take(&mut *log.lock().map_err(|_| poisoned())?);

        let mut mismatch = Mismatch {
            origin: self.origin.clone(),
            key_map: key_map.name.to_string(),
            missing: log.missing.into_iter().collect(),
            mis_shaped: log.mis_shaped,
            invalid: log.invalid,
            unexpected: Vec::new(),
            build_error: built.as_ref().err().map(|e| e.to_string()),
        };
        let mut unexpected: Vec<String> = routes
            .iter()
            .filter(|(model_name, route)| {
                !log.used.contains(model_name.as_str()) && !key_map.may_be_unused(&route.source)
            })
            .map(|(_, route)| route.source.clone())
            .collect();
        unexpected.sort();
        mismatch.unexpected = unexpected;
        mismatch.mis_shaped.sort();
        mismatch.invalid.sort();
        match built {
            Ok(model) if mismatch.is_empty() => Ok(model),
            _ => Err(Error::Mismatch(Box::new(mismatch))),
        }
    }
}

/// What is wrong with a safetensors file, and with which tensor if the fault is one tensor's.
#[derive(Debug)]
struct Flaw {
    tensor: Option<String>,
    reason: String,
}

/// Reads the header of a file the safetensors crate refused again, to say what is wrong in
/// terms a user can act on: the crate's errors name no tensor (a file cut inside its data is
/// "incomplete metadata, file not fully covered"), and a broken download should say whether
/// the header or the data is short, and where. The tensors are checked in the order of their
/// data, as the crate lays them out: each must hold exactly shape × dtype size bytes, start
/// where the previous one ends and end inside the data; the first that does not is named.
/// `None` when the header shows none of these faults: the crate's own message then stands.
fn diagnose_safetensors(bytes: &[u8]) -> Option<Flaw> {
    let file = |reason: String| {
        Some(Flaw {
            tensor: None,
            reason,
        })
    };
    let Some(length) = bytes.get(..8) else {
        return file(format!(
            "header truncated: {} bytes, fewer than the 8 that give the header's length",
            bytes.len()
        ));
    };
    let header_len = u64::from_le_bytes(length.try_into().ok()?);
    let after = bytes.len() - 8;
    let header = usize::try_from(header_len)
        .ok()
        .and_then(|n| bytes.get(8..n.checked_add(8)?));
    let Some(header) = header else {
        return file(format!(
            "header truncated: it declares {header_len} bytes, only {after} follow"
        ));
    };
    let data_len = after - header.len();
    let entries: HashMap<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        if name == "__metadata__" {
            continue;
        }
        match serde_json::from_value::<TensorInfo>(entry) {
            Ok(info) => tensors.push((name, info)),
            Err(e) => {
                return Some(Flaw {
                    tensor: Some(name),
                    reason: format!("unreadable header entry: {e}"),
                });
            }
        }
    }
    tensors.sort_by(|(a, x), (b, y)| (x.data_offsets, a).cmp(&(y.data_offsets, b)));

    let mut previous: Option<(&str, usize)> = None;
    for (i, (name, info)) in tensors.iter().enumerate() {
        let (start, end) = info.data_offsets;
        let offsets = format!("data_offsets [{start}, {end}]");
        let needed = info
            .shape
            .iter()
            .try_fold(info.dtype.bitsize(), |bits, &d| bits.checked_mul(d))
            .map(|bits| bits.div_ceil(8));
        let (shape, dtype) = (&info.shape, info.dtype);
        let reason = if end < start {
            Some(format!("{offsets} end before they start"))
        } else if needed != Some(end - start) {
            Some(match needed {
                Some(n) => format!(
                    "{offsets} hold {} bytes, shape {shape:?} of {dtype} needs {n}",
                    end - start
                ),
                None => format!("shape {shape:?} of {dtype} overflows the address space"),
            })
        } else {
            match previous {
                Some((before, at)) if start < at => Some(format!(
                    "{offsets} overlap `{before}`, which ends at byte {at} of the data"
                )),
                Some((before, at)) if start > at => Some(format!(
                    "{offsets} leave {} bytes after `{before}` that no tensor holds",
                    start - at
                )),
                None if start > 0 => Some(format!(
                    "{offsets} leave the first {start} bytes of the data to no tensor"
                )),
                _ if end > data_len => Some(format!(
                    "{offsets} reach past the end of the data ({data_len} bytes): the file is \
                     cut short or its header wrong{}",
                    match tensors.len() - i - 1 {
                        0 => String::new(),
                        1 => ", and the one tensor after it is missing".into(),
                        n => format!(", and the {n} tensors after it are missing"),
                    }
                )),
                _ => None,
            }
        };
        if let Some(reason) = reason {
            return Some(Flaw {
                tensor: Some(name.clone()),
                reason,
            });
        }
        previous = Some((name, end));
    }
    match previous {
        Some((last, end)) if end < data_len => file(format!(
            "{} bytes of data follow the last tensor `{last}`, which ends at byte {end}",
            data_len - end
        )),
        _ => None,
    }
}

fn poisoned() -> Error {
    Error::Config("checkpoint loader state poisoned by a panic".into())
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf).map_err(|e| Error::io(path, e))? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks that `path` has the sha256 `expected`, in hex of any case: all 64 digits, or a
/// prefix of at least 8 where only that much is published. torchvision names its files
/// `<name>-<sha256 prefix>.pth` and `torch.hub` verifies exactly that prefix.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    check_sha256(path, &sha256_file(path)?, expected)
}

/// [`verify_sha256`] for a digest already computed: `actual` is the sha256 of `path`.
pub fn check_sha256(path: &Path, actual: &str, expected: &str) -> Result<()> {
    let expected = expected.trim().to_ascii_lowercase();
    if !(8..=64).contains(&expected.len()) || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Config(format!(
            "`{expected}` is neither a sha256 nor a prefix of one of at least 8 hex digits"
        )));
    }
    if actual.starts_with(&expected) {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: PathBuf::from(path),
            expected,
            actual: actual.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The strict VarBuilder backend

#[derive(Debug, Default)]
struct Log {
    used: BTreeSet<String>,
    missing: BTreeSet<String>,
    mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    invalid: Vec<(String, String)>,
}

/// Serves checkpoint tensors to a model's constructor and records every problem instead of
/// stopping at the first: a problem is answered with a zero placeholder of the requested
/// shape so that construction continues and the report is complete.
struct StrictBackend<'a> {
    checkpoint: &'a Checkpoint,
    routes: &'a HashMap<String, Route>,
    varmap: Option<VarMap>,
    log: Arc<Mutex<Log>>,
}

impl StrictBackend<'_> {
    fn fetch(&self, shape: &Shape, name: &str) -> std::result::Result<Tensor, Problem> {
        let route = self.routes.get(name).ok_or(Problem::Missing)?;
        self.checkpoint
            .float_dtype(&route.source)
            .map_err(Problem::Invalid)?;
        let tensor = self
            .checkpoint
            .tensor(&route.source)
            .map_err(|e| Problem::Invalid(e.to_string()))?;
        if tensor.shape() == shape {
            return Ok(tensor);
        }
        if route.reshape && tensor.elem_count() == shape.elem_count() {
            return tensor
                .reshape(shape)
                .map_err(|e| Problem::Invalid(e.to_string()));
        }
        Err(Problem::MisShaped(tensor.dims().to_vec()))
    }
}

enum Problem {
    Missing,
    MisShaped(Vec<usize>),
    Invalid(String),
}

impl SimpleBackend for StrictBackend<'_> {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let fetched = self.fetch(&shape, name);
        let mut log = self
            .log
            .lock()
            .map_err(|_| candle_core::Error::Msg("checkpoint loader state poisoned".into()))?;
        let tensor = match fetched {
            Ok(t) => {
                log.used.insert(name.to_string());
                t.to_dtype(dtype)?.to_device(dev)?
            }
            Err(problem) => {
                match problem {
                    Problem::Missing => {
                        log.missing.insert(name.to_string());
                    }
                    Problem::MisShaped(found) => {
                        log.used.insert(name.to_string());
                        log.mis_shaped
                            .push((name.to_string(), shape.dims().to_vec(), found));
                    }
                    Problem::Invalid(reason) => {
                        log.used.insert(name.to_string());
                        log.invalid.push((name.to_string(), reason));
                    }
                }
                Tensor::zeros(shape, dtype, dev)?
            }
        };
        match &self.varmap {
            None => Ok(tensor),
            Some(varmap) => {
                let var = Var::from_tensor(&tensor)?;
                let t = var.as_tensor().clone();
                varmap
                    .data()
                    .lock()
                    .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?
                    .insert(name.to_string(), var);
                Ok(t)
            }
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let route = self.routes.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!("{}: no tensor `{name}`", self.checkpoint.origin))
        })?;
        if let Ok(mut log) = self.log.lock() {
            log.used.insert(name.to_string());
        }
        self.checkpoint
            .tensor(&route.source)
            .map_err(candle_core::Error::wrap)?
            .to_dtype(dtype)?
            .to_device(dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.routes.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_captures() {
        assert_eq!(glob("a.*.c", "a.b.c"), Some(vec!["b"]));
        assert_eq!(
            glob("*num_batches_tracked", "layer1.0.bn1.num_batches_tracked"),
            Some(vec!["layer1.0.bn1."])
        );
        assert_eq!(glob("x.*", "x."), Some(vec![""]));
        assert_eq!(glob("pre_logits.fc1.*", "pre_logits.fc2.weight"), None);
        assert_eq!(glob("exact", "exact"), Some(vec![]));
        assert_eq!(glob("exact", "exactly"), None);
        assert_eq!(glob("*.w*t", "a.b.weight"), Some(vec!["a.b", "eigh"]));
    }

    #[test]
    fn renames_substitute_in_order() {
        const MAP: KeyMap = KeyMap {
            name: "test",
            rules: &[
                KeyRule::Rename {
                    from: "pre_logits.fc1.*",
                    to: "classifier.0.*",
                },
                KeyRule::Rename {
                    from: "head.fc.*",
                    to: "classifier.6.*",
                },
                KeyRule::Rename {
                    from: "stages.*.blocks.*.w",
                    to: "layer*.*.weight",
                },
            ],
        };
        assert_eq!(
            MAP.rename("pre_logits.fc1.weight").unwrap().as_deref(),
            Some("classifier.0.weight")
        );
        assert_eq!(
            MAP.rename("head.fc.bias").unwrap().as_deref(),
            Some("classifier.6.bias")
        );
        assert_eq!(
            MAP.rename("stages.2.blocks.0.w").unwrap().as_deref(),
            Some("layer2.0.weight")
        );
        assert_eq!(MAP.rename("features.0.weight").unwrap(), None);
    }

    #[test]
    fn a_sha256_prefix_is_checked_as_torch_hub_does() {
        let path = std::env::temp_dir().join(format!("convnets-sha-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        // sha256("abc"), FIPS 180-2 appendix B.1.
        let full = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&path).unwrap(), full);
        for good in [full, "ba7816bf", "BA7816BF8F01"] {
            verify_sha256(&path, good).unwrap();
        }
        for bad in ["ba7816be", "ba7816b", "ba7816bfzz", ""] {
            assert!(verify_sha256(&path, bad).is_err(), "{bad}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn formats_are_sniffed() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Format::PthZip));
        assert_eq!(sniff(&[0x80, 2, 0x8a]), Some(Format::PthLegacy));
        assert_eq!(
            sniff(b"\x10\0\0\0\0\0\0\0{\"a\""),
            Some(Format::Safetensors)
        );
        assert_eq!(sniff(b"GIF89a"), None);
    }
}
