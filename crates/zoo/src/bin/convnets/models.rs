//! `convnets models`: every architecture, every set of weights, and every published result
//! (the reference accuracy of the architectures the zoo has no weights for).

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Result, bail};
use convnets::core::spec::{Resize, WeightSource};
use convnets::{ARCHITECTURES, Family, Structure, architecture, paper_results, weights};

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`models` takes no arguments (got `{arg}`)");
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# Architectures\n\nParameters of the preset (auxiliary heads included where \
         torchvision builds them) and GFLOPs (billions of multiply-accumulates, torchvision's \
         convention) for one image of the input size.\n"
    )?;
    writeln!(
        out,
        "| family | architecture | input | params | GFLOPs | weights | what |"
    )?;
    writeln!(out, "|---|---|---|---:|---:|---|---|")?;
    let mut counted = HashMap::new();
    for family in Family::ALL {
        for arch in family.architectures() {
            let s = Structure::of_architecture(arch)?;
            let [c, h, w] = s.input;
            let ids: Vec<String> = arch.weights().map(|w| format!("`{}`", w.id)).collect();
            writeln!(
                out,
                "| {family} | {} | {c}×{h}×{w} | {} | {} | {} | {} |",
                arch.name,
                thousands(s.params),
                gflops(s.gflops()),
                ids.join(", "),
                arch.summary
            )?;
            counted.insert((arch.name, s.input), s.macs);
        }
    }

    writeln!(
        out,
        "\n# Weights\n\nParameters as published; GFLOPs at the weights' own crop; accuracy as \
         published (ImageNet-1k validation, single crop, unless stated).\n"
    )?;
    writeln!(
        out,
        "| weights | source | params | GFLOPs | transform | top-1 | top-5 | reference |"
    )?;
    writeln!(out, "|---|---|---:|---:|---|---:|---:|---|")?;
    for spec in weights() {
        let arch = architecture(spec.arch)?;
        let (h, w) = spec.transform.crop;
        let input = [arch.config.in_channels(), h, w];
        // Auxiliary heads and input maps do not run multiply-accumulates at inference: the
        // preset's count at this size is the weights' network's.
        let macs = match counted.get(&(arch.name, input)) {
            Some(m) => *m,
            None => Structure::of_weights(spec)?.macs,
        };
        let source = match spec.source {
            WeightSource::Hub { repo, .. } => format!("hub `{repo}`"),
            WeightSource::Url { url } => format!("<{url}>"),
            WeightSource::Repository { path } => format!("`{path}`"),
        };
        let t = &spec.transform;
        let resize = match t.resize {
            Resize::Exact(rh, rw) => format!("warp {rh}×{rw}"),
            _ => t
                .resize_shorter_side()
                .map_or_else(String::new, |s| format!("resize {s}")),
        };
        let transform = format!("{resize}, crop {h}×{w}, {:?}", t.interpolation).to_lowercase();
        let acc = spec.accuracy.first();
        let fmt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.3}"));
        writeln!(
            out,
            "| `{}` | {source} | {} | {} | {transform} | {} | {} | {} |",
            spec.id,
            thousands(spec.num_params),
            gflops(macs.giga()),
            fmt(acc.and_then(|a| a.top1)),
            fmt(acc.and_then(|a| a.top5)),
            acc.map_or("", |a| a.source),
        )?;
    }

    writeln!(
        out,
        "\n# Published results\n\nThe published numbers for each architecture, its paper's (or \
         for `bvlc_alexnet` BVLC's model zoo readme), with or without weights here (`cargo \
         xtask reproduce` sets them beside its measurements).\n"
    )?;
    writeln!(
        out,
        "| architecture | result | dataset | protocol | top-1 | top-5 | source |"
    )?;
    writeln!(out, "|---|---|---|---|---:|---:|---|")?;
    let fmt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.3}"));
    for r in paper_results() {
        let a = &r.accuracy;
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.arch,
            r.label,
            a.dataset,
            a.protocol,
            fmt(a.top1),
            fmt(a.top5),
            a.source
        )?;
    }
    writeln!(
        out,
        "\n{} architectures, {} sets of weights, {} published results (also in \
         `weights/manifest.toml`).",
        ARCHITECTURES.len(),
        weights().count(),
        paper_results().count()
    )?;
    Ok(())
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three decimals, or six for the small nets (LeNet-5's 0.000423).
fn gflops(v: f64) -> String {
    if v < 0.01 {
        format!("{v:.6}")
    } else {
        format!("{v:.3}")
    }
}
