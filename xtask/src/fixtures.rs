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

pub fn run(args: &[String]) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    for script in [
        "crates/core/tests/ops_reference.py",
        "tests/parity/generate.py",
        // Before `hub_fixtures.py`, which makes its thumbnails of the photographs it writes.
        "crates/data/tests/pillow_reference.py",
        "crates/data/tests/hub_fixtures.py",
    ] {
        let mut cmd = Command::new(&python);
        cmd.current_dir(root).arg(script);
        if script.ends_with("generate.py") {
            cmd.args(args);
        }
        let status = cmd.status().with_context(|| {
            format!("running `{python} {script}` (set PYTHON to a Python with torch)")
        })?;
        if !status.success() {
            bail!("`{python} {script}` failed with {status}");
        }
    }
    Ok(())
}
