//! The accuracy regression bar of DESIGN.md §5.2: the LeNet-5 weights trained here and
//! shipped in `weights/` are evaluated on the full MNIST test set (shipped with
//! convnets-data), and the test error may not exceed the recorded one by more than 0.05
//! points.

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use convnets_core::checkpoint::Checkpoint;
use convnets_core::spec::WeightSource;
use convnets_data::mnist::Mnist;
use convnets_lenet::weights::{NATIVE, WEIGHTS};
use convnets_lenet::{LeNet5, LeNetConfig, paper_input};
use convnets_train::metrics::TopK;
use convnets_workspace_tests::root;

/// Allowed excess over the recorded test error, in percentage points.
const SLACK: f64 = 0.05;

fn config(arch: &str) -> Result<LeNetConfig> {
    match arch {
        "lenet5_classic" => Ok(LeNetConfig::classic()),
        "lenet5_modern" => Ok(LeNetConfig::modern()),
        other => bail!("no LeNet-5 configuration for `{other}`"),
    }
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
        let recorded = spec
            .accuracy
            .iter()
            .find(|a| a.dataset == "mnist test")
            .and_then(|a| a.top1)
            .map(|top1| 100.0 - top1)
            .with_context(|| format!("{}: no recorded MNIST test accuracy", spec.id))?;
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
