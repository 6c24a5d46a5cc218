//! `cargo xtask train lenet5`: LeNet-5 on MNIST (or Fashion-MNIST), with the paper's
//! protocol for the classic network and a modern recipe for the modern one.
//!
//! Everything about the run is in a `TrainConfig` that is saved beside the weights; the
//! defaults below are the recipes whose results `docs/lenet.md` records.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use candle_core::DType;
use candle_nn::VarMap;
use convnets_data::mnist::{Dataset as MnistData, FashionMnist, Mnist, Split};
use convnets_lenet::{LeNet5, LeNetConfig};
use convnets_train::augment::Augment;
use convnets_train::{
    Criterion, InMemory, Normalize, OptimizerConfig, Outcome, RunOptions, Schedule, StopReason,
    TrainConfig,
};

const USAGE: &str = "\
usage: cargo xtask train lenet5 [options]

options:
  --variant classic|modern   the paper's network (RBF output, LeCun's criterion) or the
                             modern one (ReLU, max pooling, linear head)  [classic]
  --distortions              train on LeCun's random affine distortions
  --dataset mnist|fashion    MNIST (shipped) or Fashion-MNIST  [mnist]
  --fashion-dir DIR          where Fashion-MNIST's IDX files are (default: Debian's
                             /usr/share/datasets/fashion-mnist, then the Hugging Face
                             cache, downloading into it; HF_HOME, HF_ENDPOINT)
  --epochs N  --batch-size N  --lr X  --seed N  --optimizer sgd|adamw
                             override the recipe
  --limit N                  train on N of the training images, spread evenly over
                             the set (a quick run; the test set stays whole)
  --out DIR                  output directory  [runs/lenet5_<variant>[_distortions][_fashion]]
  --resume                   continue the run in --out from its checkpoint
  --device cpu|cuda[:N]      [cpu]
";

/// `--optimizer`: replaces the recipe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Optimizer {
    Sgd,
    AdamW,
}

/// Parsed options.
#[derive(Debug, Clone)]
struct Options {
    variant: String,
    distortions: bool,
    fashion: bool,
    fashion_dir: Option<PathBuf>,
    epochs: Option<u64>,
    limit: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    /// Stop (with a checkpoint) after this many steps in all; for tests, so not in USAGE.
    max_steps: Option<u64>,
    optimizer: Option<Optimizer>,
    seed: u64,
    out: Option<PathBuf>,
    resume: bool,
    device: String,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        variant: "classic".into(),
        distortions: false,
        fashion: false,
        fashion_dir: None,
        epochs: None,
        limit: None,
        batch_size: None,
        lr: None,
        max_steps: None,
        optimizer: None,
        seed: 1998,
        out: None,
        resume: false,
        device: "cpu".into(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{arg} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--variant" => o.variant = value()?.clone(),
            "--distortions" => o.distortions = true,
            "--dataset" => match value()?.as_str() {
                "mnist" => o.fashion = false,
                "fashion" | "fashion-mnist" => o.fashion = true,
                other => bail!("unknown dataset `{other}`\n\n{USAGE}"),
            },
            "--fashion-dir" => o.fashion_dir = Some(value()?.into()),
            "--epochs" => o.epochs = Some(positive(arg, value()?)?),
            "--batch-size" => o.batch_size = Some(positive(arg, value()?)?),
            "--limit" => o.limit = Some(positive(arg, value()?)?),
            "--max-steps" => o.max_steps = Some(positive(arg, value()?)?),
            "--lr" => {
                let lr: f64 = value()?.parse().context("--lr")?;
                if !(lr.is_finite() && lr > 0.0) {
                    bail!("--lr must be a positive number, not {lr}");
                }
                o.lr = Some(lr);
            }
            "--optimizer" => match value()?.as_str() {
                "sgd" => o.optimizer = Some(Optimizer::Sgd),
                "adamw" => o.optimizer = Some(Optimizer::AdamW),
                other => bail!("--optimizer must be sgd or adamw, not `{other}`"),
            },
            "--seed" => o.seed = value()?.parse().context("--seed")?,
            "--out" => o.out = Some(value()?.into()),
            "--resume" => o.resume = true,
            "--device" => o.device = value()?.clone(),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    if !matches!(o.variant.as_str(), "classic" | "modern") {
        bail!("--variant must be classic or modern, not `{}`", o.variant);
    }
    Ok(o)
}

/// A count that must be at least 1: zero epochs train nothing, and a batch of zero divides
/// the data into no steps.
fn positive<T: std::str::FromStr + PartialEq + From<u8>>(option: &str, value: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let n: T = value
        .parse()
        .with_context(|| format!("{option} takes a whole number, not `{value}`"))?;
    if n == T::from(0) {
        bail!("{option} must be at least 1");
    }
    Ok(n)
}

/// The model configuration of a variant.
pub fn lenet_config(variant: &str) -> Result<LeNetConfig> {
    match variant {
        "classic" => Ok(LeNetConfig::classic()),
        "modern" => Ok(LeNetConfig::modern()),
        other => bail!("unknown LeNet-5 variant `{other}`"),
    }
}

/// The training recipe of a variant (docs/lenet.md explains each choice).
pub fn recipe(variant: &str, steps_per_epoch: u64, seed: u64) -> TrainConfig {
    match variant {
        // The paper: 20 passes, its decreasing learning-rate schedule, the MAP criterion of
        // eq. (9). The paper's optimiser, stochastic diagonal Levenberg–Marquardt, scales
        // each parameter's step by an estimate of its curvature; AdamW without decay, also a
        // diagonal preconditioner, stands in for it, with the schedule's shape kept from a
        // base rate of 0.002 (docs/lenet.md compares the alternatives measured).
        "classic" => TrainConfig {
            data: String::new(),
            augment: Vec::new(),
            epochs: 20,
            batch_size: 32,
            seed,
            optimizer: OptimizerConfig::adamw(0.0),
            schedule: Schedule::lenet5(0.002, steps_per_epoch),
            criterion: Criterion::LeCunMap { j: 10.0 },
            eval_batch_size: 1000,
        },
        // The modern net: SGD with Nesterov momentum and weight decay (not on biases), a
        // cosine schedule after one warm-up epoch.
        _ => TrainConfig {
            data: String::new(),
            augment: Vec::new(),
            epochs: 20,
            batch_size: 64,
            seed,
            optimizer: OptimizerConfig::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 5e-4,
                decay_1d: false,
            },
            schedule: Schedule::Cosine {
                base_lr: 0.05,
                min_lr: 0.0,
                total: 20 * steps_per_epoch,
                warmup: steps_per_epoch,
                warmup_lr: 0.005,
            },
            criterion: Criterion::CROSS_ENTROPY,
            eval_batch_size: 1000,
        },
    }
}

/// An MNIST-style split as a training dataset: 28×28 digits padded to LeNet-5's 32×32 field
/// and normalised as the paper does (background −0.1, ink 1.175): `convnets_lenet::paper_input`.
pub fn lenet_dataset(split: &Split) -> Result<InMemory> {
    let labels = split.labels.iter().map(|&l| u32::from(l)).collect();
    let pad = (32usize.saturating_sub(split.rows)) / 2;
    Ok(InMemory::new(
        split.images.clone(),
        labels,
        (1, split.rows, split.cols),
        Normalize::lecun(),
    )?
    .with_padding(pad))
}

/// `n` examples of `split` spread evenly over it (every class present, as the splits are
/// not sorted by label), or all of it.
fn evenly_spaced(split: &Split, n: Option<usize>) -> Split {
    n.map_or_else(|| split.clone(), |n| split.evenly_spaced(n))
}

fn load_data(o: &Options) -> Result<MnistData> {
    if o.fashion {
        Ok(FashionMnist::resolve(o.fashion_dir.as_deref())?)
    } else {
        Ok(Mnist::bundled()?)
    }
}

/// The default output directory of a run.
fn default_out(o: &Options) -> PathBuf {
    let mut name = format!("lenet5_{}", o.variant);
    if o.distortions {
        name.push_str("_distortions");
    }
    if o.fashion {
        name.push_str("_fashion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runs")
        .join(name)
}

/// The variant's [`recipe`] with the options' overrides, for `examples` training images.
fn train_config(o: &Options, examples: usize) -> TrainConfig {
    let batch = o
        .batch_size
        .unwrap_or(if o.variant == "classic" { 32 } else { 64 });
    let steps = (examples as u64).div_ceil(batch as u64);
    let mut config = recipe(&o.variant, steps, o.seed);
    config.data = if o.fashion { "fashion-mnist" } else { "mnist" }.into();
    if o.distortions {
        config.augment = vec![Augment::LECUN];
    }
    config.batch_size = batch;
    if let Some(e) = o.epochs {
        config.epochs = e;
        if let Schedule::Cosine { total, .. } = &mut config.schedule {
            *total = e * steps;
        }
    }
    if let Some(lr) = o.lr {
        config.schedule = match config.schedule {
            Schedule::Cosine { total, warmup, .. } => Schedule::Cosine {
                base_lr: lr,
                min_lr: 0.0,
                total,
                warmup,
                warmup_lr: lr / 10.0,
            },
            _ => Schedule::lenet5(lr, steps),
        };
    }
    match o.optimizer {
        None => {}
        Some(Optimizer::Sgd) => config.optimizer = OptimizerConfig::sgd(0.9, 0.0),
        Some(Optimizer::AdamW) => config.optimizer = OptimizerConfig::adamw(0.0),
    }
    config
}

pub fn run(args: &[String]) -> Result<()> {
    lenet5(args).map(|_| ())
}

/// The stop flag Ctrl-C sets, installed once per process (`reproduce lenet --train`
/// trains several networks in a row, and a process can have one handler only).
fn stop_flag() -> Result<Arc<AtomicBool>> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(stop) = STOP.get() {
        return Ok(stop.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: leave now.
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupt: finishing the step and writing a checkpoint (Ctrl-C again to abort)"
        );
    })
    .context("installing the Ctrl-C handler")?;
    Ok(STOP.get_or_init(|| stop).clone())
}

/// Trains as `args` say (`lenet5 [options]`) and tells how the run ended: a run stopped by
/// Ctrl-C is the error [`Interrupted`], after its checkpoint is written.
pub fn lenet5(args: &[String]) -> Result<Outcome> {
    let Some((model, rest)) = args.split_first() else {
        bail!("which model?\n\n{USAGE}");
    };
    if model != "lenet5" {
        bail!("`cargo xtask train` knows `lenet5`, not `{model}`\n\n{USAGE}");
    }
    let o = parse(rest)?;
    let device = convnets_core::device::parse(&o.device)?;
    let out = o.out.clone().unwrap_or_else(|| default_out(&o));
    let stop = stop_flag()?;
    let run = RunOptions {
        out_dir: out.clone(),
        resume: o.resume,
        max_steps: o.max_steps,
        checkpoint_every: Some(500),
        stop: Some(stop),
        progress: true,
        device: device.clone(),
    };
    // The library starts afresh where there is nothing to resume; from the command line that
    // is more likely a mistyped --out, and a fresh run would overwrite what is there.
    if o.resume && !run.checkpoint_path().exists() {
        bail!(
            "--resume: no checkpoint to continue from at {}",
            run.checkpoint_path().display()
        );
    }
    let data = load_data(&o)?;
    let train_split = evenly_spaced(&data.train, o.limit);
    let train_set = lenet_dataset(&train_split)?;
    let test_set = lenet_dataset(&data.test)?;
    let mut config = train_config(&o, train_split.count);
    if train_split.count < data.train.count {
        config.data += &format!(
            ", {} of the {} training images",
            train_split.count, data.train.count
        );
    }
    let steps = config.steps_per_epoch(train_split.count);

    let varmap = VarMap::new();
    let model = LeNet5::new(
        &lenet_config(&o.variant)?,
        convnets_core::init::var_builder(&varmap, o.seed, DType::F32, &device),
    )?;
    eprintln!(
        "training LeNet-5 {} on {} ({} train, {} test), {} epochs of {steps} steps, writing to {}",
        o.variant,
        if o.fashion { "Fashion-MNIST" } else { "MNIST" },
        train_split.count,
        data.test.count,
        config.epochs,
        out.display()
    );
    let outcome =
        convnets_train::train(&model, &varmap, &config, &train_set, Some(&test_set), &run)?;
    match &outcome {
        Outcome::Finished { records } => {
            let last = records.last().context("no epoch recorded")?;
            println!(
                "done: test error {:.2}% after {} epochs; weights in {}",
                last.test_err.unwrap_or(f64::NAN),
                last.epoch,
                out.join("weights.safetensors").display()
            );
        }
        Outcome::Stopped {
            step,
            reason: StopReason::Interrupted,
        } => return Err(Interrupted { step: *step, out }.into()),
        Outcome::Stopped {
            step,
            reason: StopReason::MaxSteps,
        } => {
            println!(
                "stopped at step {step} (--max-steps); continue with --resume --out {}",
                out.display()
            );
        }
    }
    Ok(outcome)
}

/// A run ended by Ctrl-C after writing its checkpoint: `main` exits with status 130.
#[derive(Debug)]
pub struct Interrupted {
    step: u64,
    out: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {}, checkpoint written; continue with --resume --out {}",
            self.step,
            self.out.display()
        )
    }
}

impl std::error::Error for Interrupted {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Options> {
        parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    /// The options each shipped run was trained with, beside its folder in `weights/`.
    const SHIPPED: [(&str, &[&str]); 3] = [
        ("lenet5_classic.mnist", &["--variant", "classic"]),
        (
            "lenet5_classic.mnist_distortions",
            &["--variant", "classic", "--distortions"],
        ),
        ("lenet5_modern.mnist", &["--variant", "modern"]),
    ];

    #[test]
    fn recipes_are_what_the_shipped_weights_were_trained_with() -> Result<()> {
        let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("../weights");
        for (dir, args) in SHIPPED {
            let path = weights.join(dir).join("config.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let shipped: TrainConfig =
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
            let now = train_config(&parse_args(args)?, 60_000);
            assert_eq!(
                now,
                shipped,
                "`cargo xtask train lenet5 {}` no longer trains what {} records",
                args.join(" "),
                path.display()
            );
        }
        Ok(())
    }

    #[test]
    fn options_override_the_recipe() -> Result<()> {
        let o = parse_args(&[
            "--variant",
            "modern",
            "--distortions",
            "--dataset",
            "fashion",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--lr",
            "0.1",
            "--seed",
            "7",
            "--optimizer",
            "adamw",
            "--max-steps",
            "5",
            "--resume",
            "--out",
            "somewhere",
        ])?;
        assert!(o.distortions && o.fashion && o.resume);
        assert_eq!(o.max_steps, Some(5));
        assert_eq!(o.out.as_deref(), Some(Path::new("somewhere")));
        let config = train_config(&o, 60_000);
        assert_eq!(config.data, "fashion-mnist");
        assert_eq!(config.augment, [Augment::LECUN]);
        assert_eq!((config.epochs, config.batch_size, config.seed), (3, 16, 7));
        assert_eq!(config.optimizer, OptimizerConfig::adamw(0.0));
        // 3 epochs of 60,000 / 16 = 3,750 steps, the warm-up still one epoch.
        assert_eq!(
            config.schedule,
            Schedule::Cosine {
                base_lr: 0.1,
                min_lr: 0.0,
                total: 11_250,
                warmup: 3_750,
                warmup_lr: 0.01,
            }
        );
        // The classic recipe keeps the paper's schedule shape from the new base rate.
        let classic = train_config(
            &parse_args(&["--lr", "0.001", "--batch-size", "100"])?,
            60_000,
        );
        assert_eq!(classic.schedule, Schedule::lenet5(0.001, 600));
        Ok(())
    }

    #[test]
    fn zero_and_malformed_counts_are_refused() {
        for (args, says) in [
            (
                &["--batch-size", "0"][..],
                "--batch-size must be at least 1",
            ),
            (&["--epochs", "0"], "--epochs must be at least 1"),
            (&["--max-steps", "0"], "--max-steps must be at least 1"),
            (&["--epochs", "x"], "--epochs takes a whole number, not `x`"),
            (&["--batch-size", "-1"], "--batch-size takes a whole number"),
            (&["--lr", "0"], "--lr must be a positive number"),
            (&["--lr", "NaN"], "--lr must be a positive number"),
            (
                &["--optimizer", "lbfgs"],
                "--optimizer must be sgd or adamw",
            ),
            (&["--variant", "foo"], "--variant must be classic or modern"),
            (&["--dataset", "cifar"], "unknown dataset `cifar`"),
            (&["--epochs"], "--epochs needs a value"),
        ] {
            match parse_args(args) {
                Ok(o) => panic!("{args:?} was accepted: {o:?}"),
                Err(e) => assert!(format!("{e:#}").contains(says), "{args:?}: {e:#}"),
            }
        }
    }
}
