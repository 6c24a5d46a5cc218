//! `cargo xtask <task>`: the project's tasks, each a thin layer over the library crates.

use std::io::IsTerminal as _;
use std::process::ExitCode;

mod bench;
mod fixtures;
mod manifest;
mod reproduce;
mod train;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  reproduce WHAT [..]  evaluate pretrained weights and print the table beside the
                       published numbers (`cargo xtask reproduce lenet`; --help for more)
  train lenet5 [--variant classic|modern] [--distortions] [--dataset mnist|fashion] ...
                       train LeNet-5 (see `cargo xtask train lenet5 --help`)
  bench [infer|train|gemm|lenet-train] [--models ..] [--threads N] [--rounds N] ...
                       speed against PyTorch and ONNX Runtime (set PYTHON; see
                       `cargo xtask bench --help`)
  manifest             write weights/manifest.toml from the weight tables
  fixtures [ARCH...]   regenerate every parity fixture (ops, models, Pillow, hub layouts);
                       with ARCH... or `published` (the weights tables' published
                       numbers), only those, with tests/parity/generate.py (needs a
                       Python with torch, torchvision, timm: set PYTHON)
";

fn main() -> ExitCode {
    // SAFETY: the first statement of main: no other thread is running yet.
    #[allow(unsafe_code)]
    unsafe {
        convnets_core::runtime::configure_cpu_process()
    };
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("reproduce") => reproduce::run(&args[1..]),
        Some("manifest") => manifest::run(&args[1..]),
        Some("fixtures") => fixtures::run(&args[1..]),
        Some("train") => train::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("bench-worker") => bench::worker(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A checkpoint is written and the message says how to resume; 130 is what a shell
        // reports for a command ended by SIGINT, so scripts can tell it from a failure.
        Err(err) if err.is::<train::Interrupted>() => {
            eprintln!("{err}");
            ExitCode::from(130)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tracing` events to stderr: by default the convnets crates' and xtask's at `info` and
/// up, everything else's warnings; `RUST_LOG` replaces that (`RUST_LOG=convnets_train=debug`).
/// A directive's target matches by prefix, so `convnets` covers every `convnets_*` crate.
fn init_logging() {
    let directives =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,convnets=info,xtask=info".into());
    // Lossy: a mistyped directive is reported on stderr and skipped, not fatal.
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(directives);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
