//! PyTorch's legacy (pre-1.6) `torch.save` format, which candle's reader does not open:
//! torchvision's older files (GoogLeNet's among them) are still published in it.
//!
//! The format (`torch/serialization.py`, `_legacy_save`): five pickles — a magic number, the
//! protocol version 1001, a dict of system information, the saved object (each tensor a
//! `torch._utils._rebuild_tensor_v2` call whose storage is a persistent id `('storage',
//! <class>, key, location, numel, view)`), and the sorted list of storage keys — then, for each
//! key in that order, the storage's element count as a little-endian `i64` and its raw
//! little-endian bytes. The pickles are read with candle's pickle machine.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::pickle::{Object, Stack, TensorInfo};
use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// `pickle.dump(0x1950a86a20f9469cfc6c)` after the protocol opcode: `LONG1`, 10 bytes of the
/// number little-endian, `STOP`.
const MAGIC: [u8; 13] = [
    0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];
const PROTOCOL_VERSION: i64 = 1001;
/// Where candle's tensor info puts a storage key: `<dir>/<key>`.
const DIR: &str = "storages";

/// The tensors of a legacy file: where each one's bytes start.
#[derive(Debug)]
pub(crate) struct LegacyPth {
    path: PathBuf,
    tensors: HashMap<String, (TensorInfo, u64)>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn pickle(r: &mut impl std::io::BufRead, path: &Path, what: &str) -> Result<Object> {
    let mut stack = Stack::empty();
    stack
        .read_loop(r)
        .and_then(|()| stack.finalize())
        .map_err(|e| {
            bad(
                path,
                format!("legacy PyTorch file: reading its {what}: {e}"),
            )
        })
}

/// The tensors a (possibly wrapped) state dict describes.
fn tensor_infos(obj: Object) -> Vec<TensorInfo> {
    let Object::Dict(entries) = obj else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut wrapped = None;
    for (name, value) in entries {
        match (&name, &value) {
            (Object::Unicode(key), Object::Dict(_)) if key == "state_dict" || key == "model" => {
                wrapped.get_or_insert(value);
            }
            _ => {
                if let Ok(Some(info)) = value.into_tensor_info(name, Path::new(DIR)) {
                    found.push(info);
                }
            }
        }
    }
    match wrapped {
        Some(inner) if found.is_empty() => tensor_infos(inner),
        _ => found,
    }
}

impl LegacyPth {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut r = BufReader::new(file);
        let mut head = [0u8; 15];
        r.read_exact(&mut head)
            .map_err(|_| bad(path, "legacy PyTorch file: too short"))?;
        if head[0] != 0x80 || head[2..] != MAGIC {
            return Err(bad(
                path,
                "a pickle, but not a PyTorch file (no magic number)",
            ));
        }
        match pickle(&mut r, path, "protocol version")? {
            Object::Int(v) if i64::from(v) == PROTOCOL_VERSION => {}
            Object::Long(v) if v == PROTOCOL_VERSION => {}
            other => {
                return Err(bad(
                    path,
                    format!("legacy PyTorch file of protocol {other:?}, not {PROTOCOL_VERSION}"),
                ));
            }
        }
        let sys_info = pickle(&mut r, path, "system information")?;
        let little_endian = match sys_info {
            Object::Dict(entries) => entries.into_iter().any(|(k, v)| {
                k == Object::Unicode("little_endian".into()) && v == Object::Bool(true)
            }),
            _ => false,
        };
        if !little_endian {
            return Err(bad(
                path,
                "legacy PyTorch file saved on a big-endian machine",
            ));
        }
        let infos = tensor_infos(pickle(&mut r, path, "saved object")?);
        if infos.is_empty() {
            return Err(bad(
                path,
                "not a state dict: the file holds no name → tensor mapping at its top level nor \
                 under `state_dict` or `model` (save `model.state_dict()`, not the model)",
            ));
        }
        let keys = match pickle(&mut r, path, "storage keys")? {
            Object::List(keys) => keys
                .into_iter()
                .map(|k| {
                    k.unicode()
                        .map_err(|_| bad(path, "a storage key is not a string"))
                })
                .collect::<Result<Vec<_>>>()?,
            _ => return Err(bad(path, "legacy PyTorch file: no list of storage keys")),
        };
        let elem_size: HashMap<&str, usize> = infos
            .iter()
            .map(|i| (storage_key(i), i.dtype.size_in_bytes()))
            .collect();
        // The storages follow, in the order of the keys.
        let mut data = HashMap::new();
        for key in &keys {
            let mut count = [0u8; 8];
            r.read_exact(&mut count)
                .map_err(|_| bad(path, format!("storage `{key}` is truncated")))?;
            let count = u64::from_le_bytes(count);
            let start = r.stream_position().map_err(|e| Error::io(path, e))?;
            // A storage no tensor uses has an unknown element size; it can only be last.
            let Some(&size) = elem_size.get(key.as_str()) else {
                break;
            };
            let len = count
                .checked_mul(size as u64)
                .and_then(|n| i64::try_from(n).ok())
                .ok_or_else(|| bad(path, format!("storage `{key}` claims {count} elements")))?;
            r.seek_relative(len).map_err(|e| Error::io(path, e))?;
            data.insert(key.clone(), (start, count));
        }
        let end = r.stream_position().map_err(|e| Error::io(path, e))?;
        let file_len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if end > file_len {
            return Err(bad(
                path,
                format!("legacy PyTorch file is truncated: {file_len} bytes of {end}"),
            ));
        }
        let mut tensors = HashMap::new();
        for info in infos {
            let key = storage_key(&info);
            let &(start, count) = data
                .get(key)
                .ok_or_else(|| bad(path, format!("tensor `{}`: no storage `{key}`", info.name)))?;
            // candle's tensor info counts the view's offset in bytes.
            let size = info.dtype.size_in_bytes();
            let first = info.layout.start_offset() / size;
            let elems = info.layout.shape().elem_count();
            if (first + elems) as u64 > count {
                return Err(bad(
                    path,
                    format!("tensor `{}` reaches past its storage", info.name),
                ));
            }
            let offset = start + info.layout.start_offset() as u64;
            tensors.insert(info.name.clone(), (info, offset));
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    pub(crate) fn tensor_infos(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.values().map(|(info, _)| info)
    }

    pub(crate) fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name).map(|(info, _)| info)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Option<Tensor>> {
        let Some((info, offset)) = self.tensors.get(name) else {
            return Ok(None);
        };
        if !info.layout.is_contiguous() {
            return Err(Error::tensor(
                self.path.display().to_string(),
                name,
                format!("a strided view {:?}, which cannot be read", info.layout),
            ));
        }
        let mut file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.seek(SeekFrom::Start(*offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut bytes = vec![0u8; info.layout.shape().elem_count() * info.dtype.size_in_bytes()];
        file.read_exact(&mut bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(Some(Tensor::from_raw_buffer(
            &bytes,
            info.dtype,
            info.layout.dims(),
            &Device::Cpu,
        )?))
    }
}

fn storage_key(info: &TensorInfo) -> &str {
    info.path
        .strip_prefix(DIR)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(&info.path)
}
