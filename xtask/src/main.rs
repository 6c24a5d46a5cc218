//! `cargo xtask <task>`: the project's tasks, each a thin layer over the library crates.

use std::process::ExitCode;

mod args;
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
        Err(err) => {
            let (message, status) = failure(&err);
            eprintln!("{message}");
            ExitCode::from(status)
        }
    }
}

/// What a failed task prints, and its exit status. A run stopped by Ctrl-C has written its
/// checkpoint and its message says how to resume; 130 is what a shell reports for a command
/// ended by SIGINT, so scripts can tell it from a failure. The message keeps the whole
/// chain, so context a caller adds cannot hide the resume command.
fn failure(err: &anyhow::Error) -> (String, u8) {
    let message = convnets::cli::message(err);
    // `is` sees through `.context(..)`.
    if err.is::<train::Interrupted>() {
        (message, 130)
    } else {
        (format!("error: {message}"), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_run_exits_130_with_its_resume_command_through_context() {
        let interrupted = || train::Interrupted {
            step: 7,
            out: "runs/x".into(),
            resume: "cargo xtask train lenet5 --limit 64 --resume --out runs/x".into(),
        };
        let plain = anyhow::Error::new(interrupted());
        let wrapped = anyhow::Error::new(interrupted()).context("retraining lenet5_modern.mnist");
        for err in [plain, wrapped] {
            let (message, status) = failure(&err);
            assert_eq!(status, 130, "{message}");
            assert!(
                message.contains("interrupted at step 7")
                    && message
                        .contains("`cargo xtask train lenet5 --limit 64 --resume --out runs/x`"),
                "{message}"
            );
        }
        let (message, status) = failure(&anyhow::anyhow!("no such file").context("reading x"));
        assert_eq!(
            (message.as_str(), status),
            ("error: reading x: no such file", 1)
        );
    }
}
