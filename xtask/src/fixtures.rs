//! `cargo xtask fixtures`: runs the committed Python generators of the parity fixtures:
//! the ops and model parity of `convnets-core` and `tests/parity`, and the data fixtures of
//! `convnets-data` (Pillow/torchvision preprocessing, the miniature ImageNet layouts, the
//! hub-layout parquet files of the small datasets).
//!
//! The generators need torch, torchvision, timm, onnx, onnxruntime, Pillow, pyarrow and the
//! packages the photographs ship with (all pinned in `tests/parity/requirements.txt`),
//! installed in a virtualenv outside the repository; `hub_fixtures.py` also reads Debian's
//! Fashion-MNIST (`.ci/setup` installs it). CI never runs them, it only reads what they
//! wrote.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Every generator, in the order they run without arguments.
const GENERATORS: [&str; 4] = [
    "crates/core/tests/ops_reference.py",
    "tests/parity/generate.py",
    // Before `hub_fixtures.py`, which makes its thumbnails of the photographs it writes.
    "crates/data/tests/pillow_reference.py",
    "crates/data/tests/hub_fixtures.py",
];

/// The model-parity generator, the only one that takes arguments (the architectures, or
/// `published`, to regenerate).
const MODEL_PARITY: &str = "tests/parity/generate.py";

/// `cargo xtask fixtures`: every generator; `cargo xtask fixtures ARCH…`: the named models'
/// parity fixtures alone (the ops, Pillow and hub fixtures take minutes and are not named).
pub fn run(args: &[String]) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    for (script, script_args) in plan(args) {
        let status = Command::new(&python)
            .current_dir(root)
            .arg(script)
            .args(script_args)
            .status()
            .with_context(|| {
                format!("running `{python} {script}` (set PYTHON to a Python with torch)")
            })?;
        if !status.success() {
            bail!("`{python} {script}` failed with {status}");
        }
    }
    Ok(())
}

/// The generators to run for `args`, each with its arguments.
fn plan(args: &[String]) -> Vec<(&'static str, &[String])> {
    if args.is_empty() {
        GENERATORS.iter().map(|&script| (script, args)).collect()
    } else {
        vec![(MODEL_PARITY, args)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_models_regenerate_their_fixtures_alone() {
        let args = vec!["resnet50".to_string(), "published".to_string()];
        assert_eq!(plan(&args), [(MODEL_PARITY, &args[..])]);
        let all = plan(&[]);
        assert_eq!(all.iter().map(|(s, _)| *s).collect::<Vec<_>>(), GENERATORS);
        assert!(all.iter().all(|(_, a)| a.is_empty()));
        assert!(GENERATORS.contains(&MODEL_PARITY));
    }
}
