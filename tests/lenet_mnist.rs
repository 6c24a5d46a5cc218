//! The accuracy regression bar of DESIGN.md §5.2: the LeNet-5 weights trained here and
//! shipped in `weights/` are evaluated on the full MNIST test set (shipped with
//! convnets-data), and the test error may not exceed the recorded one by more than 0.05
//! points; and the recorded errors, which are those of the training runs' own logs, meet
//! the targets of the paper, so that worse weights cannot be recorded in their place.

use anyhow::{Context, Result, bail, ensure};
use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use convnets_core::checkpoint::Checkpoint;
use convnets_core::spec::{WeightSource, WeightSpec};
use convnets_data::mnist::Mnist;
use convnets_lenet::weights::{NATIVE, WEIGHTS};
use convnets_lenet::{LeNet5, LeNetConfig, paper_input};
use convnets_train::TrainConfig;
use convnets_train::metrics::{TopK, read_jsonl};
use convnets_workspace_tests::root;

/// Allowed excess over the recorded test error, in percentage points.
const SLACK: f64 = 0.05;

/// The most MNIST test error (%) each shipped run may record: LeCun et al. 1998's 0.95 % for
/// the classic network (§III.C), 0.8 % for the modern one (issue 7's bar, the paper's
/// result with distortions); the distortion-trained run is recorded, with no bar of its own.
const TARGETS: &[(&str, Option<f64>)] = &[
    ("lenet5_classic.mnist", Some(0.95)),
    ("lenet5_classic.mnist_distortions", None),
    ("lenet5_modern.mnist", Some(0.80)),
];

fn config(arch: &str) -> Result<LeNetConfig> {
    match arch {
        "lenet5_classic" => Ok(LeNetConfig::classic()),
        "lenet5_modern" => Ok(LeNetConfig::modern()),
        other => bail!("no LeNet-5 configuration for `{other}`"),
    }
}

/// The recorded MNIST test error of `spec`, in percent.
fn recorded_error(spec: &WeightSpec) -> Result<f64> {
    spec.accuracy
        .iter()
        .find(|a| a.dataset == "mnist test")
        .and_then(|a| a.top1)
        .map(|top1| 100.0 - top1)
        .with_context(|| format!("{}: no recorded MNIST test accuracy", spec.id))
}

#[test]
fn recorded_errors_are_the_logs_and_meet_the_papers_targets() -> Result<()> {
    for spec in WEIGHTS {
        let WeightSource::Repository { path } = spec.source else {
            bail!("{}: LeNet-5 weights are trained here and shipped", spec.id);
        };
        let (_, target) = TARGETS
            .iter()
            .find(|(id, _)| *id == spec.id)
            .with_context(|| format!("{}: no target in TARGETS", spec.id))?;
        let dir = root()
            .join(path)
            .parent()
            .context("weights folder")?
            .to_path_buf();
        let records = read_jsonl(&dir.join("metrics.jsonl"))?;
        let last = records.last().context("an empty metrics log")?;
        let config: TrainConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        ensure!(
            last.epoch == config.epochs,
            "{}: the log ends at epoch {} of {}",
            spec.id,
            last.epoch,
            config.epochs
        );
        let logged = last.test_err.context("no test error in the log")?;
        let recorded = recorded_error(spec)?;
        // The table holds the accuracy to two decimals.
        ensure!(
            (logged - recorded).abs() < 0.005 + 1e-9,
            "{}: recorded {recorded:.2} %, but the run's log ends at {logged:.4} %",
            spec.id
        );
        if let Some(target) = target {
            ensure!(
                recorded <= *target,
                "{}: recorded test error {recorded:.2} % misses the target {target} %",
                spec.id
            );
        }
    }
    Ok(())
}

#[test]
fn shipped_lenet5_weights_keep_their_mnist_test_error() -> Result<()> {
    let mnist = Mnist::bundled()?;
    let dev = Device::Cpu;
    let images = paper_input(&mnist.test.images_tensor(&dev)?)?;
    let labels = mnist.test.labels_tensor(&dev)?;
    let ids: Vec<&str> = WEIGHTS.iter().map(|w| w.id).collect();
    for arch in ["lenet5_classic", "lenet5_modern"] {
        assert!(
            WEIGHTS.iter().any(|w| w.arch == arch),
            "no shipped weights for {arch}: {ids:?}"
        );
    }
    for spec in WEIGHTS {
        let WeightSource::Repository { path } = spec.source else {
            continue;
        };
        let file = root().join(path);
        let sha = spec
            .sha256
            .with_context(|| format!("{}: no sha256 recorded", spec.id))?;
        let ckpt = Checkpoint::open_verified(&file, sha)?;
        let config = config(spec.arch)?;
        let model = ckpt.load(&NATIVE, DType::F32, &dev, |vb| LeNet5::new(&config, vb))?;
        let mut acc = TopK::default();
        for start in (0..mnist.test.count).step_by(1000) {
            let n = 1000.min(mnist.test.count - start);
            let x: Tensor = images.narrow(0, start, n)?;
            acc.update(&model.forward_t(&x, false)?, &labels.narrow(0, start, n)?)?;
        }
        let error = 100.0 - acc.top1_pct();
        let recorded = recorded_error(spec)?;
        eprintln!(
            "{}: test error {error:.2}% (recorded {recorded:.2}%)",
            spec.id
        );
        assert!(
            error <= recorded + SLACK,
            "{}: MNIST test error {error:.2}% exceeds the recorded {recorded:.2}% by more than {SLACK}",
            spec.id
        );
    }
    Ok(())
}
