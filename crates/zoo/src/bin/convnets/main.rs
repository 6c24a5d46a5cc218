//! `convnets`: classify images with any pretrained model of the zoo, list the models, and
//! inspect checkpoint files.

use std::process::ExitCode;

mod classify;
mod inspect;
mod models;

const USAGE: &str = "\
usage: convnets <command> [options]

commands:
  classify IMAGE... --model ID   top-k classes of each image with the weights ID
                                 (e.g. resnet50.tv_in1k), with their own eval transform
      --weights FILE             a file in ID's layout instead of the published one
      --top K                    classes per image (default 5)
      --format text|json         json carries the full logits
      --device cpu|cuda[:N]      (default cpu)
      --offline                  use cached weights only
  models                         every architecture and set of weights, with parameters,
                                 GFLOPs and published accuracy
  inspect FILE                   the tensors of a checkpoint (safetensors or PyTorch .pth)
                                 and the architectures it fits
      --no-tensors               only the summary and the fits

Weights are downloaded once into the Hugging Face cache (HF_HOME, HF_ENDPOINT, HF_TOKEN,
HF_HUB_OFFLINE) or torch.hub's (TORCH_HOME), and checked against their sha256 before use.
";

fn main() -> ExitCode {
    // SAFETY: the first statement of main: no other thread is running yet.
    #[allow(unsafe_code)]
    unsafe {
        convnets_core::runtime::configure_cpu_process()
    };
    convnets::cli::init_logging("warn,convnets=info");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("classify") => classify::run(&args[1..]),
        Some("models") => models::run(&args[1..]),
        Some("inspect") => inspect::run(&args[1..]),
        Some("--version" | "-V") => {
            println!("convnets {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `convnets models | head`: the reader has what it wanted.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", convnets::cli::message(&err));
            ExitCode::FAILURE
        }
    }
}

/// The value of an option, as a string.
fn value(parser: &mut lexopt::Parser, name: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    parser
        .value()
        .with_context(|| format!("--{name} needs a value"))?
        .into_string()
        .map_err(|v| anyhow::anyhow!("--{name}: `{}` is not UTF-8", v.to_string_lossy()))
}
