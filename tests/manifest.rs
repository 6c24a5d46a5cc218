//! `weights/manifest.toml` is generated from the weight tables (`cargo xtask manifest`): it
//! must be what they give now.

use anyhow::{Context, Result};
use convnets_workspace_tests::root;

#[test]
fn the_committed_manifest_is_what_the_tables_give() -> Result<()> {
    let path = root().join(convnets::manifest::PATH);
    let committed = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: run `cargo xtask manifest`", path.display()))?;
    let fresh = convnets::manifest::render();
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "{} is stale (first difference at line {}: `{}` where the tables give `{}`); run \
             `cargo xtask manifest` and commit the result",
            path.display(),
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            fresh.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
    Ok(())
}
