//! `cargo xtask train lenet5`: LeNet-5 on MNIST (or Fashion-MNIST), with the paper's
//! protocol for the classic network and a modern recipe for the modern one.
//!
//! Everything about the run is in a `TrainConfig` that is saved beside the weights; the
//! defaults below are the recipes whose results `docs/lenet.md` records.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use candle_core::DType;
use candle_nn::VarMap;
use convnets_data::mnist::{Dataset as MnistData, FashionMnist, Mnist, Split};
use convnets_lenet::{LeNet5, LeNetConfig};
use convnets_train::augment::Augment;
use convnets_train::{
    Criterion, InMemory, Normalize, OptimizerConfig, Outcome, RunOptions, Schedule, StopReason,
    TrainConfig,
};

use crate::args::positive;

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
                let v = value()?;
                let lr = v
                    .parse::<f64>()
                    .ok()
                    .filter(|lr| lr.is_finite() && *lr > 0.0);
                o.lr =
                    Some(lr.with_context(|| format!("--lr takes a positive number, not `{v}`"))?);
            }
            "--optimizer" => match value()?.as_str() {
                "sgd" => o.optimizer = Some(Optimizer::Sgd),
                "adamw" => o.optimizer = Some(Optimizer::AdamW),
                other => bail!("--optimizer must be sgd or adamw, not `{other}`"),
            },
            "--seed" => {
                let v = value()?;
                o.seed = v
                    .parse()
                    .with_context(|| format!("--seed takes a whole number, not `{v}`"))?;
            }
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

/// What Ctrl-C does. A process can have one handler, and `reproduce lenet --train` trains
/// several networks in a row with evaluations between them, so the handler is installed once
/// and told when a run is in progress: during one, the first Ctrl-C asks it to stop after its
/// step with a checkpoint, and a second leaves at once; outside one there is nothing to save,
/// and Ctrl-C leaves at once (status 130, as for any command ended by SIGINT).
struct CtrlC {
    /// [`CtrlC::IDLE`], [`CtrlC::TRAINING`] or [`CtrlC::STOPPING`].
    state: AtomicU8,
    /// The runs' stop flag ([`RunOptions::stop`]).
    stop: Arc<AtomicBool>,
}

impl CtrlC {
    const IDLE: u8 = 0;
    const TRAINING: u8 = 1;
    /// Training, and asked to stop.
    const STOPPING: u8 = 2;

    fn new() -> Self {
        Self {
            state: AtomicU8::new(Self::IDLE),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The process's, its handler installed on first use.
    fn get() -> Result<&'static CtrlC> {
        static CTRL_C: OnceLock<Result<CtrlC, String>> = OnceLock::new();
        CTRL_C
            .get_or_init(|| {
                ctrlc::set_handler(|| {
                    // Before `CTRL_C` holds its value no run can have started.
                    let stays = CTRL_C
                        .get()
                        .and_then(|c| c.as_ref().ok())
                        .is_some_and(CtrlC::pressed);
                    if !stays {
                        std::process::exit(130);
                    }
                    tracing::info!(
                        "interrupted: finishing the step and writing a checkpoint \
                         (Ctrl-C again to leave at once)"
                    );
                })
                .map(|()| CtrlC::new())
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| anyhow!("installing the Ctrl-C handler: {e}"))
    }

    /// A Ctrl-C: true when it asked a run to stop after its step, false when the process is
    /// to leave now (no run in progress, or a run already asked once).
    fn pressed(&self) -> bool {
        let first = self
            .state
            .compare_exchange(
                Self::TRAINING,
                Self::STOPPING,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok();
        if first {
            self.stop.store(true, Ordering::SeqCst);
        }
        first
    }

    /// Marks a run in progress until the guard is dropped, with the stop flag cleared of an
    /// earlier run's Ctrl-C.
    fn training(&self) -> Training<'_> {
        self.stop.store(false, Ordering::SeqCst);
        self.state.store(Self::TRAINING, Ordering::SeqCst);
        Training(self)
    }

    /// Whether a Ctrl-C asked the last run to stop.
    fn stop_asked(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A run in progress, for [`CtrlC`].
struct Training<'a>(&'a CtrlC);

impl Drop for Training<'_> {
    fn drop(&mut self) {
        self.0.state.store(CtrlC::IDLE, Ordering::SeqCst);
    }
}

/// The command that continues a run: the run's own options, less `--resume`, `--max-steps`
/// and `--out` (a resume must build the same [`TrainConfig`], which the trainer compares with
/// the checkpoint's, so `--variant`, `--limit`, `--lr` and the rest must come again), then
/// `--resume --out DIR`.
fn resume_command(options: &[String], out: &Path) -> String {
    let mut words = vec!["cargo xtask train lenet5".to_string()];
    let mut it = options.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--resume" => {}
            "--max-steps" | "--out" => {
                it.next();
            }
            _ => words.push(shell_word(arg)),
        }
    }
    words.push("--resume --out".into());
    words.push(shell_word(&out.display().to_string()));
    words.join(" ")
}

/// `word` as a POSIX shell reads it back: as is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
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
    // Installed before the data loads, so that a Ctrl-C from then on leaves at once.
    let ctrl_c = CtrlC::get()?;
    let run = RunOptions {
        out_dir: out.clone(),
        resume: o.resume,
        max_steps: o.max_steps,
        checkpoint_every: Some(500),
        stop: Some(ctrl_c.stop.clone()),
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
    // `--limit` digits spread evenly (every class present: the split is not sorted by label).
    let train_split = o
        .limit
        .map_or_else(|| data.train.clone(), |n| data.train.evenly_spaced(n));
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
    let outcome = {
        // From here a Ctrl-C stops the run with a checkpoint (xtask's Ctrl-C test waits for
        // this line).
        let _training = ctrl_c.training();
        tracing::info!(
            variant = %o.variant,
            dataset = if o.fashion { "Fashion-MNIST" } else { "MNIST" },
            train = train_split.count,
            test = data.test.count,
            epochs = config.epochs,
            steps_per_epoch = steps,
            out = %out.display(),
            "training LeNet-5"
        );
        convnets_train::train(&model, &varmap, &config, &train_set, Some(&test_set), &run)?
    };
    let resume = resume_command(rest, &out);
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
        } => {
            return Err(Interrupted {
                step: *step,
                out,
                resume,
            }
            .into());
        }
        Outcome::Stopped {
            step,
            reason: StopReason::MaxSteps,
        } => println!("stopped at step {step} (--max-steps); continue with `{resume}`"),
    }
    if ctrl_c.stop_asked() {
        // The Ctrl-C came after the last step: the run is complete and its weights written,
        // but the process was asked to end (`reproduce lenet --train` would go on).
        std::process::exit(130);
    }
    Ok(outcome)
}

/// A run ended by Ctrl-C after writing its checkpoint: `main` exits with status 130.
#[derive(Debug)]
pub struct Interrupted {
    pub step: u64,
    pub out: PathBuf,
    /// The command that continues the run ([`resume_command`]).
    pub resume: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {}, checkpoint written in {}; continue with `{}`",
            self.step,
            self.out.display(),
            self.resume
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

    /// The options each shipped run was trained with, beside its folder (from the workspace
    /// root): the weights in `weights/`, and the Fashion-MNIST run documented in
    /// docs/lenet.md, whose files are kept in `docs/runs/`.
    const SHIPPED: [(&str, &[&str]); 4] = [
        ("weights/lenet5_classic.mnist", &["--variant", "classic"]),
        (
            "weights/lenet5_classic.mnist_distortions",
            &["--variant", "classic", "--distortions"],
        ),
        ("weights/lenet5_modern.mnist", &["--variant", "modern"]),
        (
            "docs/runs/lenet5_modern.fashion_mnist",
            &["--variant", "modern", "--dataset", "fashion"],
        ),
    ];

    #[test]
    fn recipes_are_what_the_shipped_weights_were_trained_with() -> Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (dir, args) in SHIPPED {
            let path = root.join(dir).join("config.json");
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
                "--batch-size takes a whole number of at least 1, not `0`",
            ),
            (
                &["--epochs", "0"],
                "--epochs takes a whole number of at least 1, not `0`",
            ),
            (
                &["--max-steps", "0"],
                "--max-steps takes a whole number of at least 1, not `0`",
            ),
            (
                &["--epochs", "x"],
                "--epochs takes a whole number of at least 1, not `x`",
            ),
            (
                &["--batch-size", "-1"],
                "--batch-size takes a whole number of at least 1, not `-1`",
            ),
            (&["--lr", "0"], "--lr takes a positive number, not `0`"),
            (&["--lr", "NaN"], "--lr takes a positive number, not `NaN`"),
            (&["--lr", "0,1"], "--lr takes a positive number, not `0,1`"),
            (&["--seed", "-3"], "--seed takes a whole number, not `-3`"),
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

    #[test]
    fn the_resume_command_repeats_the_runs_options() -> Result<()> {
        let args = |a: &[&str]| a.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let options = args(&[
            "--variant",
            "modern",
            "--max-steps",
            "20",
            "--out",
            "old",
            "--limit",
            "640",
            "--resume",
            "--fashion-dir",
            "my data",
        ]);
        assert_eq!(
            resume_command(&options, Path::new("runs/it's here")),
            "cargo xtask train lenet5 --variant modern --limit 640 --fashion-dir 'my data' \
             --resume --out 'runs/it'\\''s here'"
        );
        // What it keeps parses to the run's options, so the resume trains the same config.
        let kept = args(&["--variant", "modern", "--limit", "640"]);
        let resumed = resume_command(&kept, Path::new("d"));
        let words: Vec<String> = resumed.split(' ').skip(4).map(String::from).collect();
        let (run, again) = (parse(&options)?, parse(&words)?);
        assert_eq!(train_config(&run, 640), train_config(&again, 640));
        assert!(again.resume && again.max_steps.is_none());
        Ok(())
    }

    #[test]
    fn ctrl_c_stops_a_run_once_and_leaves_outside_one() {
        let c = CtrlC::new();
        // No run: nothing to save, leave now.
        assert!(!c.pressed());
        {
            let _run = c.training();
            assert!(c.pressed(), "the first Ctrl-C in a run asks it to stop");
            assert!(c.stop_asked());
            assert!(!c.pressed(), "a second leaves now");
        }
        // Between runs (reproduce's evaluations), Ctrl-C leaves at once again, and the next
        // run starts without the last one's stop.
        assert!(!c.pressed());
        let _next = c.training();
        assert!(!c.stop_asked());
        assert!(c.pressed());
    }
}
