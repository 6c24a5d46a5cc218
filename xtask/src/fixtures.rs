//! `cargo xtask fixtures`: runs the committed Python generators of the parity fixtures.
//!
//! The generators need torch, torchvision, timm, onnx and onnxruntime (pinned in
//! `tests/parity/requirements.txt`), installed in a virtualenv outside the repository; CI
//! never runs them, it only reads what they wrote.

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
