//! The parity harness proven end to end on SmallNet, a model that chains every core layer
//! (twin of `smallnet` in tests/parity/generate.py), and the strict loader's reports on a
//! fixture that does not fit.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder};
use convnets_core::Classifier;
use convnets_core::checkpoint::{IDENTITY, KeyMap, KeyRule};
use convnets_core::layers::{
    Activation, AdaptiveAvgPool2d, AvgPool2d, BatchNormConfig, Conv2d, Conv2dConfig, ConvNormAct,
    Dropout, Linear, LocalResponseNorm, MaxPool2d,
};
use convnets_workspace_tests::{check_parity, fixture};

#[derive(Debug)]
struct SmallNet {
    stem: ConvNormAct,
    stem_pool: MaxPool2d,
    stem_lrn: LocalResponseNorm,
    grouped: Conv2d,
    wide: ConvNormAct,
    pool: AvgPool2d,
    adapt: AdaptiveAvgPool2d,
    drop: Dropout,
    fc: Linear,
}

impl SmallNet {
    fn new(vb: VarBuilder<'_>) -> candle_core::Result<Self> {
        let bn = BatchNormConfig::new();
        Ok(Self {
            stem: ConvNormAct::new(
                3,
                8,
                Conv2dConfig::new(3).padding(1),
                bn,
                Activation::Relu,
                vb.pp("stem.0"),
                vb.pp("stem.1"),
            )?,
            stem_pool: MaxPool2d::new(3, 2, 0)?.ceil_mode(),
            stem_lrn: LocalResponseNorm::new(5, 1e-2, 0.75, 2.0)?,
            grouped: Conv2d::new(
                8,
                16,
                Conv2dConfig::new(3).padding(1).groups(2),
                vb.pp("grouped"),
            )?,
            wide: ConvNormAct::new(
                16,
                16,
                Conv2dConfig::rect(1, 5).padding_hw(0, 2),
                bn.eps(1e-3),
                Activation::Relu,
                vb.pp("wide"),
                vb.pp("wide_bn"),
            )?,
            pool: AvgPool2d::new(3, 2, 1)?.ceil_mode().exclude_pad(),
            adapt: AdaptiveAvgPool2d::new(3, 3)?,
            drop: Dropout::new(0.5)?,
            fc: Linear::new(16 * 9, 10, vb.pp("fc"))?,
        })
    }
}

impl Classifier for SmallNet {
    fn forward_features(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = self.stem.forward_t(x, train)?;
        let x = self.stem_lrn.forward(&self.stem_pool.forward(&x)?)?;
        let x = self.grouped.forward(&x)?.relu()?;
        self.wide.forward_t(&x, train)
    }

    fn forward_head(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = self
            .adapt
            .forward(&self.pool.forward(x)?)?
            .flatten_from(1)?;
        self.fc.forward(&self.drop.forward_t(&x, train)?)
    }

    fn num_classes(&self) -> usize {
        10
    }

    fn fold_batch_norm(&mut self) -> candle_core::Result<()> {
        self.stem.fold_batch_norm()?;
        self.wide.fold_batch_norm()
    }
}

impl ModuleT for SmallNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_head(&self.forward_features(x, train)?, train)
    }
}

#[test]
fn smallnet_matches_pytorch() -> Result<()> {
    let report = check_parity("smallnet", &IDENTITY, SmallNet::new)?;
    assert!(report.max_abs_err < report.tolerance);
    Ok(())
}

#[test]
fn folded_smallnet_matches_pytorch() -> Result<()> {
    check_parity("smallnet", &IDENTITY, |vb| {
        let mut m = SmallNet::new(vb)?;
        m.fold_batch_norm()?;
        Ok(m)
    })?;
    Ok(())
}

#[test]
fn the_harness_catches_a_wrong_model() -> Result<()> {
    // The same weights through a model with one layer changed must fail the comparison.
    #[derive(Debug)]
    struct NoLrn(SmallNet);
    impl ModuleT for NoLrn {
        fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
            let m = &self.0;
            let x = m.stem.forward_t(x, train)?;
            let x = m.stem_pool.forward(&x)?; // LRN left out
            let x = m.grouped.forward(&x)?.relu()?;
            m.forward_head(&m.wide.forward_t(&x, train)?, train)
        }
    }
    impl Classifier for NoLrn {
        fn forward_features(&self, x: &Tensor, t: bool) -> candle_core::Result<Tensor> {
            self.0.forward_features(x, t)
        }
        fn forward_head(&self, x: &Tensor, t: bool) -> candle_core::Result<Tensor> {
            self.0.forward_head(x, t)
        }
        fn num_classes(&self) -> usize {
            10
        }
    }
    let err = check_parity("smallnet", &IDENTITY, |vb| Ok(NoLrn(SmallNet::new(vb)?)))
        .expect_err("a model without its LRN must not pass");
    // Leaving out the LRN reorders the classes of the second input ("smallnet: input 1:
    // top-5 [9, 6, 1, 4, 3], reference [9, 1, 6, 3, 4]"), which is checked before the error
    // bound; a failure of anything else (loading, shapes) must not count.
    match err.downcast_ref::<convnets_core::Error>() {
        Some(convnets_core::Error::Parity(message)) => assert!(
            message.starts_with("smallnet: input 1: top-5 ["),
            "{message}"
        ),
        _ => panic!("expected a parity failure, got {err:#}"),
    }
    Ok(())
}

#[test]
fn a_fixture_that_does_not_fit_is_reported_whole() -> Result<()> {
    // Renaming `fc.*` away makes fc missing and its tensors unexpected; a strict map without
    // the num_batches_tracked rule reports those buffers as unexpected too.
    const RENAMED: KeyMap = KeyMap {
        name: "test-renamed",
        rules: &[KeyRule::Rename {
            from: "fc.*",
            to: "head.*",
        }],
    };
    let fx = fixture("smallnet")?;
    let ckpt = fx.checkpoint(&Device::Cpu)?;
    let err = ckpt
        .load(&RENAMED, DType::F32, &Device::Cpu, SmallNet::new)
        .expect_err("must not load");
    let msg = err.to_string();
    for needle in [
        "missing:     fc.weight",
        "missing:     fc.bias",
        "unexpected:  fc.weight",
        "unexpected:  stem.1.num_batches_tracked",
        "unexpected:  wide_bn.num_batches_tracked",
        "test-renamed",
    ] {
        assert!(msg.contains(needle), "`{needle}` not in:\n{msg}");
    }
    Ok(())
}
