//! LeNet-5, classic and modern, against the PyTorch modules of tests/parity/ref_lenet.py.

use anyhow::Result;
use convnets_lenet::weights::NATIVE;
use convnets_lenet::{LeNet5, LeNetConfig};
use convnets_workspace_tests::{check_parity, fixture};

#[test]
fn lenet5_classic_matches_pytorch() -> Result<()> {
    check_parity("lenet5_classic", &NATIVE, |vb| {
        LeNet5::new(&LeNetConfig::classic(), vb)
    })?;
    assert_eq!(fixture("lenet5_classic")?.num_params(), 60_000);
    Ok(())
}

#[test]
fn lenet5_modern_matches_pytorch() -> Result<()> {
    check_parity("lenet5_modern", &NATIVE, |vb| {
        LeNet5::new(&LeNetConfig::modern(), vb)
    })?;
    assert_eq!(fixture("lenet5_modern")?.num_params(), 61_706);
    Ok(())
}

#[test]
fn the_classic_fixture_does_not_fit_the_modern_model() -> Result<()> {
    // Table I's per-map kernels are not a full C3, and S2/S4 have parameters a max-pooling
    // network does not take: the strict loader names them.
    let err = check_parity("lenet5_classic", &NATIVE, |vb| {
        LeNet5::new(&LeNetConfig::modern(), vb)
    })
    .expect_err("must not load");
    let msg = format!("{err:#}");
    for needle in ["c3.weight", "c3.0.weight", "s2.weight", "output.weight"] {
        assert!(msg.contains(needle), "`{needle}` not in:\n{msg}");
    }
    Ok(())
}
