//! Training checkpoints: everything needed to continue a run exactly.
//!
//! One safetensors file holds the model's tensors under `model.<name>` (parameters and
//! BatchNorm statistics, with the model's own names), the optimiser's slots under
//! `optim.<param>.<slot>`, and in its metadata the step, the running epoch statistics and
//! the configuration. Random state needs no saving: every random draw is a function of the
//! seed and the step (see [`crate::rng`]). Files are written atomically — to a temporary
//! file, fsynced, then renamed over the old one — so a run killed at any moment leaves the
//! previous checkpoint whole.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use candle_core::Tensor;
use candle_nn::VarMap;
use convnets_core::checkpoint::Checkpoint;

use crate::metrics::TopK;
use crate::optim::Optimizer;
use crate::{Error, Result};

const FORMAT: &str = "convnets-train/1";

/// What a checkpoint restores besides the tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumed {
    /// Steps done.
    pub step: u64,
    /// Training statistics of the epoch in progress.
    pub epoch_stats: TopK,
    /// The configuration the run was started with, as JSON.
    pub config: String,
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Persists the rename; not every platform can fsync a directory, which is harmless.
        let _ = d.sync_all();
    }
    Ok(())
}

fn sorted_vars(varmap: &VarMap) -> Result<Vec<(String, Tensor)>> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
    let mut out: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes the model's weights alone, under their own names: a file any convnets loader (or
/// `safetensors.torch.load_file` + `load_state_dict`) reads.
pub fn save_weights(varmap: &VarMap, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
    let tensors = sorted_vars(varmap)?;
    let bytes =
        safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Writes a training checkpoint.
pub fn save(
    path: &Path,
    varmap: &VarMap,
    optimizer: &Optimizer,
    step: u64,
    epoch_stats: &TopK,
    config: &str,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = sorted_vars(varmap)?
        .into_iter()
        .map(|(k, t)| (format!("model.{k}"), t))
        .collect();
    let (slots, _) = optimizer.state();
    tensors.extend(slots.into_iter().map(|(k, t)| (format!("optim.{k}"), t)));
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("step".to_string(), step.to_string()),
        ("optimizer_steps".to_string(), optimizer.steps().to_string()),
        (
            "epoch_stats".to_string(),
            serde_json::to_string(epoch_stats).map_err(|e| Error::Msg(e.to_string()))?,
        ),
        ("config".to_string(), config.to_string()),
    ]);
    let bytes =
        safetensors::serialize(tensors.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Restores a training checkpoint into `varmap` (every variable must be in the file with its
/// shape, and the file must hold no other model tensor) and `optimizer`.
pub fn load(path: &Path, varmap: &VarMap, optimizer: &mut Optimizer) -> Result<Resumed> {
    let ckpt = Checkpoint::open(path)?;
    let metadata = read_metadata(path)?;
    let meta = |k: &str| -> Result<&String> {
        metadata.get(k).ok_or_else(|| {
            Error::Checkpoint(format!("{}: no `{k}` in the metadata", path.display()))
        })
    };
    if meta("format")? != FORMAT {
        return Err(Error::Checkpoint(format!(
            "{}: format {}, expected {FORMAT}",
            path.display(),
            meta("format")?
        )));
    }
    let parse = |k: &str| -> Result<u64> {
        meta(k)?
            .parse()
            .map_err(|_| Error::Checkpoint(format!("{}: `{k}` is not a number", path.display())))
    };
    let (step, optimizer_steps) = (parse("step")?, parse("optimizer_steps")?);
    let epoch_stats: TopK = serde_json::from_str(meta("epoch_stats")?)
        .map_err(|e| Error::Checkpoint(format!("{}: epoch_stats: {e}", path.display())))?;

    let mut model = HashMap::new();
    let mut optim = HashMap::new();
    for name in ckpt.names() {
        if let Some(k) = name.strip_prefix("model.") {
            model.insert(k.to_string(), ckpt.tensor(&name)?);
        } else if let Some(k) = name.strip_prefix("optim.") {
            optim.insert(k.to_string(), ckpt.tensor(&name)?);
        } else {
            return Err(Error::Checkpoint(format!(
                "{}: unexpected tensor `{name}`",
                path.display()
            )));
        }
    }
    {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        let mut missing: Vec<&String> = vars.keys().filter(|k| !model.contains_key(*k)).collect();
        let mut extra: Vec<&String> = model.keys().filter(|k| !vars.contains_key(*k)).collect();
        if !missing.is_empty() || !extra.is_empty() {
            missing.sort();
            extra.sort();
            return Err(Error::Checkpoint(format!(
                "{}: does not fit the model: missing {missing:?}, unexpected {extra:?}",
                path.display()
            )));
        }
        for (name, var) in vars.iter() {
            let t = &model[name];
            if t.shape() != var.shape() {
                return Err(Error::Checkpoint(format!(
                    "{}: `{name}` has shape {:?}, the model {:?}",
                    path.display(),
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
        }
    }
    optimizer.load_state(&optim, optimizer_steps)?;
    Ok(Resumed {
        step,
        epoch_stats,
        config: meta("config")?.clone(),
    })
}

/// The `__metadata__` of a safetensors file, read from its header alone.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    use std::io::Read as _;
    let bad = |why: &str| Error::Checkpoint(format!("{}: {why}", path.display()));
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| Error::io(path, e))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(bad("safetensors header larger than 100 MB"));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(&format!("header: {e}")))?;
    match header.get("__metadata__") {
        None => Ok(HashMap::new()),
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| bad(&format!("metadata: {e}"))),
    }
}
