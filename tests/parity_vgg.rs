//! VGG at full size against torchvision's eight VGGs, the paper's columns A-LRN and C built
//! with torchvision's VGG class, and timm's vgg11 (tests/parity/ref_vgg.py); and the paper's
//! dense evaluation against all of them.
//!
//! Each torchvision model is run once (two 224×224 images): its features feed both the
//! standard head and the dense head, so the check that dense evaluation at 224 equals the
//! standard forward costs only the head.

use anyhow::{Result, ensure};
use candle_core::{DType, Device};
use candle_nn::ModuleT;
use convnets_core::Classifier;
use convnets_vgg::weights::{TIMM, TORCHVISION};
use convnets_vgg::{Vgg, VggConfig};
use convnets_workspace_tests::fixture;

/// Loads the fixture of `arch` strictly, checks the standard forward and dense evaluation
/// against the reference logits, and the parameter count against the configuration.
fn check(arch: &str) -> Result<()> {
    let config = VggConfig::for_arch(arch).expect("a VGG configuration");
    let device = Device::Cpu;
    let fx = fixture(arch)?;
    ensure!(
        fx.num_params() == config.num_params(),
        "{arch}: parameter count"
    );
    let model = fx
        .checkpoint(&device)?
        .load(&TORCHVISION, DType::F32, &device, |vb| {
            Vgg::new(&config, vb)
        })?;
    let features = model.forward_features(&fx.input(DType::F32, &device)?, false)?;
    let logits = model.forward_head(&features, false)?;
    let report = fx.check(&logits)?;
    let dense = model.forward_dense_head(&features)?;
    fx.check(&dense)?;
    // At 224 the score map is 1×1: dense evaluation is the standard forward pass.
    let gap = (dense - &logits)?.abs()?.max_all()?.to_scalar::<f32>()?;
    ensure!(
        gap <= 1e-6,
        "{arch}: dense and standard heads differ by {gap}"
    );
    eprintln!(
        "{arch}: max abs err {:.2e} (tolerance {:.2e}, max |ref| {:.2}), dense - standard {gap:.1e}",
        report.max_abs_err, report.tolerance, report.max_abs_ref
    );
    Ok(())
}

#[test]
fn vgg11_matches_torchvision() -> Result<()> {
    check("vgg11")
}

#[test]
fn vgg11_bn_matches_torchvision() -> Result<()> {
    check("vgg11_bn")
}

#[test]
fn vgg13_matches_torchvision() -> Result<()> {
    check("vgg13")
}

#[test]
fn vgg13_bn_matches_torchvision() -> Result<()> {
    check("vgg13_bn")
}

#[test]
fn vgg16_matches_torchvision() -> Result<()> {
    check("vgg16")
}

#[test]
fn vgg16_bn_matches_torchvision() -> Result<()> {
    check("vgg16_bn")
}

#[test]
fn vgg19_matches_torchvision() -> Result<()> {
    check("vgg19")
}

#[test]
fn vgg19_bn_matches_torchvision() -> Result<()> {
    check("vgg19_bn")
}

#[test]
fn vgg11_lrn_matches_the_papers_column_in_pytorch() -> Result<()> {
    check("vgg11_lrn")
}

#[test]
fn vgg16c_matches_the_papers_column_in_pytorch() -> Result<()> {
    check("vgg16c")
}

#[test]
fn timm_vgg11_loads_through_its_key_map_and_dense_evaluation_matches_at_256() -> Result<()> {
    // timm stores fc6/fc7 as convolutions and evaluates densely: at 256×256 the 8×8 feature
    // map gives a 2×2 score map, averaged. The torchvision-style head (adaptive pooling to
    // 7×7) computes something else there, and must not pass.
    let device = Device::Cpu;
    let fx = fixture("vgg11_timm")?;
    let config = VggConfig::a();
    let model = fx
        .checkpoint(&device)?
        .load(&TIMM, DType::F32, &device, |vb| Vgg::new(&config, vb))?;
    let features = model.forward_features(&fx.input(DType::F32, &device)?, false)?;
    assert_eq!(features.dims(), [2, 512, 8, 8]);
    assert_eq!(model.score_map(&features)?.dims(), [2, 1000, 2, 2]);
    let report = fx.check(&model.forward_dense_head(&features)?)?;
    eprintln!(
        "vgg11_timm (dense, 256×256): max abs err {:.2e} (tolerance {:.2e})",
        report.max_abs_err, report.tolerance
    );
    assert!(fx.check(&model.forward_head(&features, false)?).is_err());
    Ok(())
}

#[test]
fn folded_batch_norm_still_matches() -> Result<()> {
    let device = Device::Cpu;
    let fx = fixture("vgg11_bn")?;
    let config = VggConfig::a().with_batch_norm();
    let mut model = fx
        .checkpoint(&device)?
        .load(&TORCHVISION, DType::F32, &device, |vb| {
            Vgg::new(&config, vb)
        })?;
    model.fold_batch_norm()?;
    fx.check(&model.forward_t(&fx.input(DType::F32, &device)?, false)?)?;
    Ok(())
}
