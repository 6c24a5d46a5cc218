//! Helpers shared by the workspace-level tests in `tests/` (and `xtask`'s).

pub mod hub;

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use convnets_core::Classifier;
use convnets_core::checkpoint::KeyMap;
use convnets_core::parity::{Fixture, ParityReport};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The parity fixture of `arch`, `tests/parity/fixtures/<arch>.json`.
pub fn fixture(arch: &str) -> Result<Fixture> {
    let path = root()
        .join("tests/parity/fixtures")
        .join(format!("{arch}.json"));
    Fixture::load(&path).with_context(|| format!("loading {}", path.display()))
}

/// The model-parity check of DESIGN.md §5.1: regenerates the reference state dict of `arch`,
/// builds the model from it strictly through `key_map` (every key used, every shape right),
/// runs it in evaluation mode on the fixture's inputs and compares the logits.
pub fn check_parity<M: Classifier>(
    arch: &str,
    key_map: &KeyMap,
    build: impl FnOnce(candle_nn::VarBuilder<'_>) -> candle_core::Result<M>,
) -> Result<ParityReport> {
    let device = Device::Cpu;
    let fx = fixture(arch)?;
    let checkpoint = fx.checkpoint(&device)?;
    let model = checkpoint.load(key_map, DType::F32, &device, build)?;
    let logits = model.forward_t(&fx.input(DType::F32, &device)?, false)?;
    let report = fx.check(&logits)?;
    eprintln!(
        "{arch}: max abs err {:.2e} (tolerance {:.2e}, max |ref| {:.2})",
        report.max_abs_err, report.tolerance, report.max_abs_ref
    );
    Ok(report)
}
