//! convnets-resnet against its references at full size (tests/parity/README.md): the
//! ImageNet nets against torchvision, the CIFAR-10 nets against `CifarResNet` in
//! tests/parity/ref_resnet.py. Every fixture is loaded strictly through the torchvision key
//! map, so passing also proves that the module tree reproduces the reference state dict key
//! for key and shape for shape.

use anyhow::{Context, Result};
use convnets_core::Classifier;
use convnets_resnet::weights::{TORCHVISION, WEIGHTS};
use convnets_resnet::{BottleneckStride, ResNet, ResNetConfig};
use convnets_workspace_tests::{check_parity, fixture};

fn parity(arch: &str, config: ResNetConfig) -> Result<()> {
    let report = check_parity(arch, &TORCHVISION, |vb| ResNet::new(&config, vb))?;
    assert!(report.max_abs_err <= report.tolerance, "{report:?}");
    Ok(())
}

/// The same comparison after folding every BatchNorm into its convolution.
fn folded_parity(arch: &str, config: ResNetConfig) -> Result<()> {
    check_parity(arch, &TORCHVISION, |vb| {
        let mut model = ResNet::new(&config, vb)?;
        model.fold_batch_norm()?;
        Ok(model)
    })
    .with_context(|| format!("{arch} with folded BatchNorm"))?;
    Ok(())
}

#[test]
fn resnet18_matches_torchvision() -> Result<()> {
    parity("resnet18", ResNetConfig::resnet18())
}

#[test]
fn resnet34_matches_torchvision() -> Result<()> {
    parity("resnet34", ResNetConfig::resnet34())
}

#[test]
fn resnet50_matches_torchvision() -> Result<()> {
    parity("resnet50", ResNetConfig::resnet50())
}

#[test]
fn resnet101_matches_torchvision() -> Result<()> {
    parity("resnet101", ResNetConfig::resnet101())
}

#[test]
fn resnet152_matches_torchvision() -> Result<()> {
    parity("resnet152", ResNetConfig::resnet152())
}

#[test]
fn wide_resnet50_2_matches_torchvision() -> Result<()> {
    parity("wide_resnet50_2", ResNetConfig::wide_resnet50_2())
}

#[test]
fn resnext50_32x4d_matches_torchvision() -> Result<()> {
    parity("resnext50_32x4d", ResNetConfig::resnext50_32x4d())
}

#[test]
fn wide_resnet101_2_matches_torchvision() -> Result<()> {
    parity("wide_resnet101_2", ResNetConfig::wide_resnet101_2())
}

#[test]
fn resnext101_32x8d_matches_torchvision() -> Result<()> {
    parity("resnext101_32x8d", ResNetConfig::resnext101_32x8d())
}

#[test]
fn resnet50_v1_matches_torchvision_with_the_papers_stride() -> Result<()> {
    let v1 = ResNetConfig::resnet50().with_bottleneck_stride(BottleneckStride::Conv1x1);
    parity("resnet50_v1", v1)?;
    // Same tensors, different computation: v1.5 must not pass as v1.
    check_parity("resnet50_v1", &TORCHVISION, |vb| {
        ResNet::new(&ResNetConfig::resnet50(), vb)
    })
    .expect_err("ResNet v1.5 must not match v1");
    Ok(())
}

#[test]
fn cifar_resnets_match_the_reference() -> Result<()> {
    for (arch, config) in [
        ("resnet20", ResNetConfig::resnet20()),
        ("resnet32", ResNetConfig::resnet32()),
        ("resnet44", ResNetConfig::resnet44()),
        ("resnet56", ResNetConfig::resnet56()),
        ("resnet110", ResNetConfig::resnet110()),
    ] {
        parity(arch, config)?;
    }
    Ok(())
}

#[test]
fn cifar_plain_nets_match_the_reference() -> Result<()> {
    for (arch, config) in [
        ("plain20", ResNetConfig::plain20()),
        ("plain32", ResNetConfig::plain32()),
        ("plain44", ResNetConfig::plain44()),
        ("plain56", ResNetConfig::plain56()),
        ("plain110", ResNetConfig::plain110()),
    ] {
        parity(arch, config)?;
    }
    Ok(())
}

#[test]
fn folded_batch_norm_keeps_parity() -> Result<()> {
    // A basic-block net, a bottleneck net with projections, option A and a plain net.
    folded_parity("resnet18", ResNetConfig::resnet18())?;
    folded_parity("resnet50", ResNetConfig::resnet50())?;
    folded_parity("resnet56", ResNetConfig::resnet56())?;
    folded_parity("plain20", ResNetConfig::plain20())
}

#[test]
fn the_wrong_shortcut_fails_parity() -> Result<()> {
    // Option A and a plain net have the same parameters: only the forward pass tells them
    // apart, and the comparison must.
    let err = check_parity("resnet20", &TORCHVISION, |vb| {
        ResNet::new(&ResNetConfig::plain20(), vb)
    })
    .expect_err("a plain net must not pass as ResNet-20");
    assert!(err.to_string().contains("resnet20"), "{err}");
    Ok(())
}

#[test]
fn parameter_counts_are_torchvisions() -> Result<()> {
    // Each fixture lists torchvision's state dict, which the parity tests prove the model
    // asks for exactly; its parameter count must be the one torchvision's metadata (and our
    // weights table) states.
    for arch in [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "resnext50_32x4d",
        "resnext101_32x8d",
    ] {
        let counted = fixture(arch)?.num_params();
        for w in WEIGHTS.iter().filter(|w| w.arch == arch) {
            assert_eq!(counted, w.num_params, "{}", w.id);
        }
        assert!(WEIGHTS.iter().any(|w| w.arch == arch), "{arch}: no weights");
    }
    assert_eq!(fixture("resnet50")?.num_params(), 25_557_032);
    Ok(())
}
