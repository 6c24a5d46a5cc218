//! The training loop on a small model and a synthetic task: it learns, it is repeatable, it
//! resumes bit for bit, it stops cleanly and it refuses a non-finite loss.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use convnets_core::Classifier;
use convnets_core::layers::{
    Activation, BatchNormConfig, Conv2dConfig, ConvNormAct, Dropout, Linear, global_avg_pool,
};
use convnets_train::augment::Augment;
use convnets_train::rng::Rng;
use convnets_train::{
    Criterion, InMemory, Normalize, OptimizerConfig, Outcome, RunOptions, Schedule, StopReason,
    TrainConfig, train,
};

/// Conv-BN-ReLU ×2, global pooling, dropout, linear: BatchNorm statistics and dropout masks
/// are both state a resume must get right.
#[derive(Debug)]
struct Net {
    a: ConvNormAct,
    b: ConvNormAct,
    drop: Dropout,
    fc: Linear,
}

impl Net {
    fn new(vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        let bn = BatchNormConfig::new();
        let conv = Conv2dConfig::new(3).padding(1);
        Ok(Self {
            a: ConvNormAct::new(
                1,
                8,
                conv,
                bn,
                Activation::Relu,
                vb.pp("a.conv"),
                vb.pp("a.bn"),
            )?,
            b: ConvNormAct::new(
                8,
                8,
                conv.stride(2),
                bn,
                Activation::Relu,
                vb.pp("b.conv"),
                vb.pp("b.bn"),
            )?,
            drop: Dropout::new(0.2)?,
            fc: Linear::new(8, 4, vb.pp("fc"))?,
        })
    }
}

impl ModuleT for Net {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_head(&self.forward_features(x, train)?, train)
    }
}

impl Classifier for Net {
    fn forward_features(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.b.forward_t(&self.a.forward_t(x, train)?, train)
    }
    fn forward_head(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.fc
            .forward(&self.drop.forward_t(&global_avg_pool(x)?, train)?)
    }
    fn num_classes(&self) -> usize {
        4
    }
}

/// 8×8 images whose bright quadrant is the class, with noise.
fn quadrants(n: usize, seed: u64) -> InMemory {
    let mut rng = Rng::derive(seed, convnets_train::rng::Stream::Init, 0);
    let mut pixels = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let class = rng.below(4) as usize;
        for y in 0..8 {
            for x in 0..8 {
                let q = (y / 4) * 2 + x / 4;
                let base = if q == class { 170.0 } else { 40.0 };
                pixels.push((base + rng.uniform(-40.0, 40.0)) as u8);
            }
        }
        labels.push(class as u32);
    }
    InMemory::new(
        pixels,
        labels,
        (1, 8, 8),
        Normalize::mean_std(&[0.3], &[0.25]),
    )
    .expect("consistent synthetic dataset")
}

fn config(epochs: u64) -> TrainConfig {
    TrainConfig {
        data: "quadrants".into(),
        augment: Vec::new(),
        epochs,
        batch_size: 16,
        seed: 11,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 1e-4,
            decay_1d: false,
        },
        schedule: Schedule::MultiStep {
            base_lr: 0.05,
            milestones: vec![20],
            gamma: 0.5,
        },
        criterion: Criterion::CrossEntropy {
            label_smoothing: 0.05,
        },
        eval_batch_size: 64,
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convnets-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Builds the model from seed-initialised parameters and trains it.
fn run(
    cfg: &TrainConfig,
    data: &InMemory,
    test: &InMemory,
    opts: &RunOptions,
) -> Result<(Outcome, VarMap)> {
    let varmap = VarMap::new();
    let model = Net::new(convnets_core::init::var_builder(
        &varmap,
        cfg.seed,
        DType::F32,
        &Device::Cpu,
    ))?;
    let outcome = train(&model, &varmap, cfg, data, Some(test), opts)?;
    Ok((outcome, varmap))
}

fn weights(dir: &Path) -> Result<Vec<(String, Vec<f32>)>> {
    let ckpt = convnets_core::checkpoint::Checkpoint::open(dir.join("weights.safetensors"))?;
    ckpt.names()
        .into_iter()
        .map(|n| Ok((n.clone(), ckpt.tensor(&n)?.flatten_all()?.to_vec1::<f32>()?)))
        .collect()
}

#[test]
fn it_learns_and_the_same_seed_gives_the_same_bits() -> Result<()> {
    let (data, test) = (quadrants(160, 1), quadrants(64, 2));
    let cfg = config(4);
    let (a, b) = (scratch("seed-a"), scratch("seed-b"));
    let (Outcome::Finished { records }, _) = run(&cfg, &data, &test, &RunOptions::new(&a))? else {
        panic!("the run must finish");
    };
    assert_eq!(records.len(), 4);
    let last = records.last().unwrap();
    assert!(last.test_err.unwrap() < 15.0, "{records:#?}");
    assert!(records[0].train_loss > last.train_loss);
    run(&cfg, &data, &test, &RunOptions::new(&b))?;
    assert_eq!(weights(&a)?, weights(&b)?);
    for f in [
        "metrics.jsonl",
        "metrics.csv",
        "curves.svg",
        "config.json",
        "checkpoint.safetensors",
    ] {
        assert!(a.join(f).exists(), "{f}");
    }
    let written: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(a.join("config.json"))?)?;
    assert_eq!(written, cfg);
    Ok(())
}

#[test]
fn a_resumed_run_ends_bit_for_bit_where_a_straight_run_ends() -> Result<()> {
    let (data, test) = (quadrants(150, 3), quadrants(32, 4));
    let mut cfg = config(3); // 10 steps per epoch, 30 in all; stop at 17, mid-epoch.
    cfg.augment = vec![Augment::RandomCrop {
        size: 8,
        padding: 1,
    }];
    let straight = scratch("straight");
    run(&cfg, &data, &test, &RunOptions::new(&straight))?;

    let resumed = scratch("resumed");
    let first = RunOptions {
        max_steps: Some(17),
        ..RunOptions::new(&resumed)
    };
    let (outcome, _) = run(&cfg, &data, &test, &first)?;
    assert_eq!(
        outcome,
        Outcome::Stopped {
            step: 17,
            reason: StopReason::MaxSteps
        }
    );
    let second = RunOptions {
        resume: true,
        ..RunOptions::new(&resumed)
    };
    let (Outcome::Finished { records }, _) = run(&cfg, &data, &test, &second)? else {
        panic!("the resumed run must finish");
    };
    assert_eq!(weights(&straight)?, weights(&resumed)?);
    let straight_records = convnets_train::metrics::read_jsonl(&straight.join("metrics.jsonl"))?;
    let strip = |r: &convnets_train::metrics::EpochRecord| {
        (
            r.epoch,
            r.step,
            r.train_loss.to_bits(),
            r.train_err.to_bits(),
            r.test_err.map(f64::to_bits),
        )
    };
    assert_eq!(
        records.iter().map(strip).collect::<Vec<_>>(),
        straight_records.iter().map(strip).collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_resume_continues() -> Result<()> {
    let (data, test) = (quadrants(64, 5), quadrants(16, 6));
    let dir = scratch("interrupt");
    let stop = Arc::new(AtomicBool::new(true));
    let opts = RunOptions {
        stop: Some(stop),
        ..RunOptions::new(&dir)
    };
    let (outcome, _) = run(&config(2), &data, &test, &opts)?;
    assert_eq!(
        outcome,
        Outcome::Stopped {
            step: 1,
            reason: StopReason::Interrupted
        }
    );
    assert!(dir.join("checkpoint.safetensors").exists());
    let opts = RunOptions {
        resume: true,
        ..RunOptions::new(&dir)
    };
    assert!(matches!(
        run(&config(2), &data, &test, &opts)?.0,
        Outcome::Finished { .. }
    ));
    // Another configuration cannot resume this run.
    let mut other = config(2);
    other.batch_size = 8;
    let Err(err) = run(&other, &data, &test, &opts) else {
        panic!("a changed configuration must not resume");
    };
    let err = err.to_string();
    assert!(err.contains("another configuration"), "{err}");
    Ok(())
}

/// A model whose logits turn NaN from a given training step on (as diverging weights do).
#[derive(Debug)]
struct Exploding {
    inner: Net,
    after: usize,
    calls: std::sync::atomic::AtomicUsize,
}

impl ModuleT for Exploding {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = self.inner.forward_t(x, train)?;
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if train && n >= self.after {
            y * f64::NAN
        } else {
            Ok(y)
        }
    }
}

impl Classifier for Exploding {
    fn forward_features(&self, x: &Tensor, t: bool) -> candle_core::Result<Tensor> {
        self.inner.forward_features(x, t)
    }
    fn forward_head(&self, x: &Tensor, t: bool) -> candle_core::Result<Tensor> {
        self.inner.forward_head(x, t)
    }
    fn num_classes(&self) -> usize {
        4
    }
}

#[test]
fn a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint() -> Result<()> {
    let data = quadrants(64, 7);
    let dir = scratch("nan");
    let cfg = config(3); // 4 steps per epoch: a checkpoint at step 4, NaN at step 6.
    let varmap = VarMap::new();
    let inner = Net::new(convnets_core::init::var_builder(
        &varmap,
        cfg.seed,
        DType::F32,
        &Device::Cpu,
    ))?;
    let model = Exploding {
        inner,
        after: 6,
        calls: Default::default(),
    };
    let err = train(&model, &varmap, &cfg, &data, None, &RunOptions::new(&dir)).expect_err("NaN");
    let msg = err.to_string();
    assert!(
        msg.contains("NaN at step 6") && msg.contains("checkpoint.safetensors"),
        "{msg}"
    );
    let meta = convnets_train::state::read_metadata(&dir.join("checkpoint.safetensors"))?;
    assert_eq!(meta["step"], "4");
    Ok(())
}
