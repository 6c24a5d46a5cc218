//! The training loop, generic over any [`Classifier`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Device;
use candle_nn::VarMap;
use convnets_core::Classifier;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::augment::{Augment, Augmenter};
use crate::dataset::Dataset;
use crate::loss::Criterion;
use crate::metrics::{self, EpochRecord, TopK};
use crate::optim::OptimizerConfig;
use crate::rng::{Rng, Stream};
use crate::schedule::Schedule;
use crate::state;
use crate::{Error, Result};

/// Everything that determines a run's result. Saved in every checkpoint; a resumed run must
/// have the same configuration (only `epochs` may grow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The training data, as a name for the record (`mnist`, `fashion-mnist`, ...).
    pub data: String,
    /// Random augmentations of each training image, in order.
    pub augment: Vec<Augment>,
    /// Passes over the training set.
    pub epochs: u64,
    /// Examples per optimisation step.
    pub batch_size: usize,
    /// Seed of every random choice: initialisation (by the caller), order, augmentation,
    /// dropout.
    pub seed: u64,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning rate per step.
    pub schedule: Schedule,
    /// The loss.
    pub criterion: Criterion,
    /// Batch size of evaluation.
    pub eval_batch_size: usize,
}

impl TrainConfig {
    /// Optimisation steps per epoch (the last batch of an epoch may be smaller).
    pub fn steps_per_epoch(&self, examples: usize) -> u64 {
        examples.div_ceil(self.batch_size) as u64
    }
}

/// How to run: where to write, when to stop. None of it changes the result.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory of the checkpoint, metrics, curves and final weights.
    pub out_dir: PathBuf,
    /// Continue from `out_dir/checkpoint.safetensors` if it exists; where it does not, a
    /// fresh run starts, with a warning in the log (so a job restarted by a scheduler can
    /// always pass it).
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in total.
    pub max_steps: Option<u64>,
    /// Also write a checkpoint every this many steps (one is always written at each epoch's
    /// end).
    pub checkpoint_every: Option<u64>,
    /// Set by a Ctrl-C handler: the loop writes a checkpoint and returns.
    pub stop: Option<Arc<AtomicBool>>,
    /// Show a progress bar.
    pub progress: bool,
    /// Where the model runs.
    pub device: Device,
}

impl RunOptions {
    /// Quiet CPU defaults writing to `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            resume: false,
            max_steps: None,
            checkpoint_every: None,
            stop: None,
            progress: false,
            device: Device::Cpu,
        }
    }

    /// The training checkpoint's path.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.out_dir.join("checkpoint.safetensors")
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All epochs done; the final weights are in `out_dir/weights.safetensors`.
    Finished {
        /// One record per epoch.
        records: Vec<EpochRecord>,
    },
    /// Stopped early with a checkpoint written; `--resume` continues.
    Stopped {
        /// Steps done.
        step: u64,
        /// Why.
        reason: StopReason,
    },
}

/// Why a run stopped before its last epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The stop flag was set (Ctrl-C).
    Interrupted,
    /// `max_steps` was reached.
    MaxSteps,
}

/// Evaluates `model` on all of `data` in evaluation mode.
pub fn evaluate<M: Classifier + ?Sized>(
    model: &M,
    data: &dyn Dataset,
    batch_size: usize,
    criterion: &Criterion,
    device: &Device,
) -> Result<TopK> {
    let mut acc = TopK::default();
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let (x, y) = data.batch(chunk, None, device)?;
        let logits = model.forward_t(&x, false)?;
        acc.update(&logits, &y)?;
        acc.add_loss(
            f64::from(criterion.main(&logits, &y)?.to_scalar::<f32>()?),
            chunk.len(),
        );
    }
    Ok(acc)
}

/// Trains `model`, whose parameters are the variables of `varmap`, on `train`, evaluating
/// on `test` after each epoch.
///
/// Every step is a pure function of `(config, step)` and the state before it — example order
/// from `(seed, epoch)`, augmentation and dropout from `(seed, step)` — so on CPU a run
/// interrupted and resumed ends bit for bit where an uninterrupted run ends. A non-finite
/// loss stops the run with [`Error::NonFinite`] before any update, leaving the last
/// checkpoint as it was.
pub fn train<M: Classifier + ?Sized>(
    model: &M,
    varmap: &VarMap,
    config: &TrainConfig,
    train: &dyn Dataset,
    test: Option<&dyn Dataset>,
    run: &RunOptions,
) -> Result<Outcome> {
    if train.is_empty() || config.batch_size == 0 {
        return Err(Error::Config(
            "empty training set or zero batch size".into(),
        ));
    }
    std::fs::create_dir_all(&run.out_dir).map_err(|e| Error::io(&run.out_dir, e))?;
    let config_json = serde_json::to_string(config).map_err(|e| Error::Msg(e.to_string()))?;
    let mut optimizer = config.optimizer.build(varmap)?;
    let ckpt_path = run.checkpoint_path();
    let metrics_path = run.out_dir.join("metrics.jsonl");

    let (mut step, mut epoch_stats, mut records) = (0u64, TopK::default(), Vec::new());
    if run.resume && !ckpt_path.exists() {
        tracing::warn!(
            checkpoint = %ckpt_path.display(),
            "nothing to resume: no checkpoint; starting a fresh run"
        );
    } else if run.resume {
        let resumed = state::load(&ckpt_path, varmap, &mut optimizer)?;
        check_same_run(&resumed.config, config, &ckpt_path)?;
        step = resumed.step;
        epoch_stats = resumed.epoch_stats;
        if metrics_path.exists() {
            records = metrics::read_jsonl(&metrics_path)?;
            records.retain(|r| r.step <= step);
        }
        tracing::info!(step, checkpoint = %ckpt_path.display(), "resuming");
    }
    // Atomic like the checkpoint and metrics, so an interrupted write never leaves a run
    // folder with a truncated config beside a whole checkpoint.
    let config_path = run.out_dir.join("config.json");
    let pretty = serde_json::to_string_pretty(config)
        .map_err(|e| Error::Msg(format!("{}: {e}", config_path.display())))?;
    state::write_atomic(&config_path, pretty.as_bytes())?;

    let n = train.len();
    let steps_per_epoch = config.steps_per_epoch(n);
    let total = config.epochs * steps_per_epoch;
    let last = run.max_steps.map_or(total, |m| m.min(total));
    let bar = progress_bar(run.progress, total, step);
    let save = |step: u64, stats: &TopK, opt: &crate::optim::Optimizer| {
        state::save(&ckpt_path, varmap, opt, step, stats, &config_json)
    };

    let mut order: Option<(u64, Vec<usize>)> = None;
    let mut epoch_start = Instant::now();
    let mut train_time = 0f64;
    while step < last {
        let epoch = step / steps_per_epoch;
        let within = (step % steps_per_epoch) as usize;
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut idx: Vec<usize> = (0..n).collect();
            Rng::derive(config.seed, Stream::Shuffle, epoch).shuffle(&mut idx);
            order = Some((epoch, idx));
        }
        let Some((_, idx)) = order.as_ref() else {
            unreachable!("order was just set")
        };
        let batch = &idx[within * config.batch_size..((within + 1) * config.batch_size).min(n)];

        let t0 = Instant::now();
        let mut rng = Rng::derive(config.seed, Stream::Augment, step);
        let mut augmenter = Augmenter {
            ops: &config.augment,
            rng: &mut rng,
        };
        let (x, y) = train.batch(batch, Some(&mut augmenter), &run.device)?;
        convnets_core::random::manual_seed(
            Rng::derive(config.seed, Stream::Dropout, step).next_u64(),
        );
        let out = model.forward_train(&x)?;
        let loss = config.criterion.loss(&out, &y)?;
        let loss_value = f64::from(loss.to_scalar::<f32>()?);
        if !loss_value.is_finite() {
            bar.abandon();
            return Err(Error::NonFinite {
                step,
                loss: loss_value,
                checkpoint: ckpt_path.exists().then(|| ckpt_path.clone()),
            });
        }
        let grads = loss.backward()?;
        let lr = config.schedule.lr(step);
        optimizer.step(&grads, lr)?;
        epoch_stats.update(&out.logits, &y)?;
        epoch_stats.add_loss(loss_value, batch.len());
        train_time += t0.elapsed().as_secs_f64();
        step += 1;
        bar.set_position(step);
        bar.set_message(format!(
            "epoch {} loss {:.4} {:.0} img/s",
            epoch + 1,
            epoch_stats.loss(),
            epoch_stats.n as f64 / train_time.max(1e-9)
        ));

        if step % steps_per_epoch == 0 {
            let test_stats = match test {
                Some(t) => Some(evaluate(
                    model,
                    t,
                    config.eval_batch_size,
                    &config.criterion,
                    &run.device,
                )?),
                None => None,
            };
            let record = EpochRecord {
                epoch: epoch + 1,
                step,
                lr,
                train_loss: epoch_stats.loss(),
                train_err: 100.0 - epoch_stats.top1_pct(),
                test_loss: test_stats.map(|t| t.loss()),
                test_err: test_stats.map(|t| 100.0 - t.top1_pct()),
                test_top5_err: test_stats.map(|t| 100.0 - t.top5_pct()),
                images_per_sec: epoch_stats.n as f64 / train_time.max(1e-9),
                seconds: epoch_start.elapsed().as_secs_f64(),
            };
            // Written with the bar cleared, then redrawn below it: both go to stderr.
            bar.suspend(|| {
                tracing::info!(
                    epoch = record.epoch,
                    train_loss = %format_args!("{:.4}", record.train_loss),
                    train_err = %format_args!("{:.2}%", record.train_err),
                    test_err = %record.test_err.map_or("-".into(), |e| format!("{e:.2}%")),
                    images_per_sec = %format_args!("{:.0}", record.images_per_sec),
                    "epoch done"
                );
            });
            records.push(record);
            metrics::write_all(&run.out_dir, &records)?;
            epoch_stats = TopK::default();
            train_time = 0.0;
            epoch_start = Instant::now();
            save(step, &epoch_stats, &optimizer)?;
        } else if run.checkpoint_every.is_some_and(|k| k > 0 && step % k == 0) {
            save(step, &epoch_stats, &optimizer)?;
        }
        if run.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            save(step, &epoch_stats, &optimizer)?;
            bar.abandon_with_message(format!("interrupted at step {step}; checkpoint written"));
            tracing::info!(step, checkpoint = %ckpt_path.display(), "interrupted");
            return Ok(Outcome::Stopped {
                step,
                reason: StopReason::Interrupted,
            });
        }
    }
    if step < total {
        save(step, &epoch_stats, &optimizer)?;
        bar.abandon();
        tracing::info!(step, checkpoint = %ckpt_path.display(), "stopped at max_steps");
        return Ok(Outcome::Stopped {
            step,
            reason: StopReason::MaxSteps,
        });
    }
    bar.finish();
    let meta = [("config".to_string(), config_json.clone())]
        .into_iter()
        .collect();
    state::save_weights(varmap, &run.out_dir.join("weights.safetensors"), meta)?;
    Ok(Outcome::Finished { records })
}

fn check_same_run(saved: &str, config: &TrainConfig, path: &Path) -> Result<()> {
    let saved: TrainConfig = serde_json::from_str(saved)
        .map_err(|e| Error::Checkpoint(format!("{}: configuration: {e}", path.display())))?;
    if (TrainConfig {
        epochs: config.epochs,
        ..saved.clone()
    }) != *config
    {
        return Err(Error::Config(format!(
            "{} was written by a run with another configuration; only `epochs` may change on \
             resume.\n  saved: {saved:?}\n  now:   {config:?}",
            path.display()
        )));
    }
    Ok(())
}

fn progress_bar(show: bool, total: u64, at: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {pos}/{len} steps {msg} [{elapsed_precise} < {eta_precise}]",
    ) {
        bar.set_style(style);
    }
    bar.set_position(at);
    bar
}
