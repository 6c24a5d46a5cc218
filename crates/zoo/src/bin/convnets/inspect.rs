//! `convnets inspect FILE`: a checkpoint's tensors and the architectures it fits.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use convnets::core::checkpoint::Checkpoint;
use convnets::inspect::{Fit, fits};
use lexopt::prelude::*;

/// How many near misses to show when nothing fits.
const NEAREST: usize = 3;

pub fn run(args: &[String]) -> Result<()> {
    let mut parser = lexopt::Parser::from_args(args);
    let (mut file, mut tensors) = (None::<PathBuf>, true);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("no-tensors") => tensors = false,
            Long("help") | Short('h') => {
                print!("{}", crate::USAGE);
                return Ok(());
            }
            Value(v) if file.is_none() => file = Some(v.into()),
            other => return Err(other.unexpected().into()),
        }
    }
    let file = file.context("which file? convnets inspect FILE")?;
    let checkpoint = Checkpoint::open(&file)?;
    let names = checkpoint.names();
    let mut total = 0usize;
    let mut rows = Vec::new();
    for name in &names {
        let (shape, dtype) = checkpoint.info(name).context("a listed tensor")?;
        total += shape.iter().product::<usize>();
        rows.push((name, shape, dtype));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} tensors, {total} values",
        file.display(),
        names.len()
    )?;
    if tensors {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        for (name, shape, dtype) in &rows {
            writeln!(out, "  {name:width$}  {dtype:>5}  {shape:?}")?;
        }
    }

    let fits = fits(&checkpoint)?;
    let exact: Vec<&Fit> = fits.iter().filter(|f| f.is_exact()).collect();
    if exact.is_empty() {
        writeln!(
            out,
            "\nfits no architecture of the zoo exactly; the nearest:"
        )?;
        for group in groups(&fits).into_iter().take(NEAREST) {
            describe(&mut out, &group)?;
            let f = group[0];
            for (name, want, got) in f.mis_shaped.iter().take(3) {
                writeln!(
                    out,
                    "      mis-shaped: {name}: model {want:?}, file {got:?}"
                )?;
            }
            for name in f.missing.iter().take(3) {
                writeln!(out, "      missing:    {name}")?;
            }
            for name in f.unexpected.iter().take(3) {
                writeln!(out, "      unexpected: {name}")?;
            }
        }
        bail!("{} fits no architecture", file.display());
    }
    writeln!(out, "\nfits:")?;
    for group in groups(&exact.into_iter().cloned().collect::<Vec<_>>()) {
        describe(&mut out, &group)?;
    }
    Ok(())
}

/// Fits of one architecture with the same class count and the same result, whatever the
/// key map, in the order of `fits`.
fn groups(fits: &[Fit]) -> Vec<Vec<&Fit>> {
    let mut groups: Vec<Vec<&Fit>> = Vec::new();
    for f in fits {
        let same = |g: &Vec<&Fit>| {
            let h = g[0];
            h.arch.name == f.arch.name
                && h.num_classes == f.num_classes
                && (
                    h.matched,
                    h.missing.len(),
                    h.mis_shaped.len(),
                    h.unexpected.len(),
                ) == (
                    f.matched,
                    f.missing.len(),
                    f.mis_shaped.len(),
                    f.unexpected.len(),
                )
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(f),
            None => groups.push(vec![f]),
        }
    }
    groups
}

fn describe(out: &mut impl Write, group: &[&Fit]) -> Result<()> {
    let f = group[0];
    let mut maps: Vec<String> = group
        .iter()
        .map(|f| format!("`{}`", f.key_map.name))
        .collect();
    maps.dedup();
    let mut weights: Vec<&str> = group.iter().filter_map(|f| f.weights).collect();
    weights.dedup();
    let layout = if weights.is_empty() {
        String::new()
    } else {
        format!(" (the layout of {})", weights.join(", "))
    };
    writeln!(
        out,
        "  {}, {} classes, key map {}{layout}: {} of {} tensors match, {} missing, {} \
         mis-shaped, {} unexpected",
        f.arch.name,
        f.num_classes,
        maps.join(" or "),
        f.matched,
        f.expected,
        f.missing.len(),
        f.mis_shaped.len(),
        f.unexpected.len()
    )?;
    Ok(())
}
