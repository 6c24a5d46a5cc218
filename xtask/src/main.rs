//! `cargo xtask <task>`: the project's tasks, each a thin layer over the library crates.

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
  fixtures [ARCH...]   regenerate the parity fixtures with tests/parity/generate.py, and
                       `published`, the weights tables' published numbers (needs a
                       Python with torch, torchvision, timm: set PYTHON)
";

fn main() -> ExitCode {
    // SAFETY: the first statement of main: no other thread is running yet.
    #[allow(unsafe_code)]
    unsafe {
        convnets_core::runtime::configure_cpu_process()
    };
    // The convnets crates' and xtask's own events at `info` and up.
    convnets::cli::init_logging("warn,convnets=info,xtask=info");
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
