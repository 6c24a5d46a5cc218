//! `cargo xtask manifest`: writes `weights/manifest.toml` from the zoo's tables
//! (`convnets::manifest`). `tests/manifest.rs` fails when the committed file is stale.

use anyhow::{Context, Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`manifest` takes no arguments (got `{arg}`)");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?;
    let path = root.join(convnets::manifest::PATH);
    let text = convnets::manifest::render();
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        eprintln!("{} is up to date", path.display());
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().context("manifest path")?)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
