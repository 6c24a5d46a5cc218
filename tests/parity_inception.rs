//! Full-size parity of the Inception family with its references (fixtures written by
//! `tests/parity/ref_inception.py`): torchvision's GoogLeNet and Inception-v3 in evaluation
//! (built with and without their auxiliary classifiers) and in training, timm's Inception-v4
//! and Inception-ResNet-v2, and Caffe's `bvlc_googlenet` as an ONNX graph run by onnxruntime,
//! the last under its ONNX tensor names through the `CAFFE_ONNX` key map, also in training
//! with Caffe's auxiliary classifiers written in PyTorch.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use convnets_core::Classifier;
use convnets_core::checkpoint::{IDENTITY, KeyMap};
use convnets_inception::weights::{
    self, CAFFE_ONNX, GOOGLENET_TV_IN1K, INCEPTION_RESNET_V2_TF_IN1K, INCEPTION_V3_TV_IN1K,
    INCEPTION_V4_TF_IN1K, TIMM, TORCHVISION,
};
use convnets_inception::{GoogLeNetConfig, Inception, InceptionV3Config, Network, TransformInput};
use convnets_workspace_tests::{check_parity, fixture};

/// The inference network of a pretrained file, as the zoo builds it.
fn pretrained(spec: &convnets_core::spec::WeightSpec) -> Network {
    weights::network_for(spec).expect("a spec of this family")
}

#[test]
fn googlenet_matches_torchvision() -> Result<()> {
    // The fixture's state dict has the auxiliary classifiers, as the published file does;
    // the inference model has none and leaves them unused.
    let net = pretrained(&GOOGLENET_TV_IN1K);
    assert_eq!(net.transform_input, Some(TransformInput::TORCHVISION));
    assert!(net.aux.is_empty());
    check_parity("googlenet", &TORCHVISION, |vb| Inception::new(net, vb))?;
    Ok(())
}

/// Evaluates `net`, built with its auxiliary classifiers, against the evaluation fixture of
/// `arch`: the IDENTITY map lets no auxiliary tensor go unused, so the heads are really
/// there and loaded, and the check refuses anything but the `[2, 1000]` logits of
/// torchvision's `eval()` forward.
fn check_eval_with_aux_heads(arch: &str, net: Network) -> Result<()> {
    check_parity(arch, &IDENTITY, |vb| {
        let model = Inception::new(net, vb)?;
        if !model.has_aux_logits() {
            candle_core::bail!("{arch}: built without its auxiliary classifiers")
        }
        Ok(model)
    })?;
    Ok(())
}

#[test]
fn googlenet_with_aux_heads_evaluates_to_the_logits_alone() -> Result<()> {
    let net = GoogLeNetConfig::googlenet().with_transform_input(Some(TransformInput::TORCHVISION));
    check_eval_with_aux_heads("googlenet", net.into())
}

#[test]
fn folded_googlenet_matches_torchvision() -> Result<()> {
    let net = pretrained(&GOOGLENET_TV_IN1K);
    check_parity("googlenet", &TORCHVISION, |vb| {
        let mut m = Inception::new(net, vb)?;
        m.fold_batch_norm()?;
        Ok(m)
    })?;
    Ok(())
}

#[test]
fn googlenet_without_transform_input_does_not_match() {
    // The fixture was made with `transform_input=True`: it notices a model that skips it.
    let net = GoogLeNetConfig::googlenet().with_aux_logits(false);
    let err = check_parity("googlenet", &TORCHVISION, |vb| Inception::new(net, vb))
        .expect_err("torchvision's GoogLeNet weights need their transform_input");
    assert!(err.to_string().starts_with("parity: googlenet"), "{err}");
}

/// Loads a training fixture into `net` through `key_map` and compares `[logits, aux logits…]`
/// of `forward_train` with the reference; returns the auxiliary heads' names and weights.
///
/// Computed in f64: BatchNorm over a batch of two images, on the 1×1 maps of Inception-v3's
/// auxiliary head, normalises pairs of values and amplifies f32 rounding to the size of the
/// tolerance, so torchvision's references are f64 too (see `tests/parity/ref_inception.py`);
/// the paper's GoogLeNet, without BatchNorm, has an f32 reference well within it.
fn check_training(arch: &str, key_map: &KeyMap, net: Network) -> Result<Vec<(&'static str, f64)>> {
    let device = Device::Cpu;
    let fx = fixture(arch)?;
    let model = fx
        .checkpoint(&device)?
        .load(key_map, DType::F64, &device, |vb| Inception::new(net, vb))?;
    let out = model.forward_train(&fx.input(DType::F64, &device)?)?;
    let mut all = vec![out.logits];
    all.extend(out.aux.iter().map(|a| a.logits.clone()));
    let report = fx.check(&Tensor::cat(&all, 1)?)?;
    eprintln!(
        "{arch}: max abs err {:.2e} (tolerance {:.2e})",
        report.max_abs_err, report.tolerance
    );
    Ok(out.aux.iter().map(|a| (a.name, a.loss_weight)).collect())
}

#[test]
fn googlenet_training_outputs_match_torchvision() -> Result<()> {
    let net = GoogLeNetConfig::googlenet()
        .with_transform_input(Some(TransformInput::TORCHVISION))
        .with_dropout(0.0, 0.0);
    let aux = check_training("googlenet_train", &TORCHVISION, net.into())?;
    assert_eq!(aux, [("aux1", 0.3), ("aux2", 0.3)]);
    Ok(())
}

#[test]
fn googlenet_paper_matches_bvlc_googlenet_in_onnxruntime() -> Result<()> {
    let net = GoogLeNetConfig::paper().with_aux_logits(false);
    let report = check_parity("googlenet_paper", &CAFFE_ONNX, |vb| Inception::new(net, vb))?;
    assert!(report.max_abs_err <= report.tolerance);
    assert_eq!(fixture("googlenet_paper")?.num_params(), 6_998_552);
    Ok(())
}

#[test]
fn googlenet_paper_training_outputs_match_caffes_auxiliary_heads() -> Result<()> {
    // The trunk from the ONNX graph under its ONNX names; the heads, which the deploy export
    // lacks, under the model's own names (`aux1.conv.conv`, `aux1.fc1`, …), which the key map
    // leaves as they are.
    let net = GoogLeNetConfig::paper().with_dropout(0.0, 0.0);
    let aux = check_training("googlenet_paper_train", &CAFFE_ONNX, net.into())?;
    assert_eq!(aux, [("aux1", 0.3), ("aux2", 0.3)]);
    assert_eq!(fixture("googlenet_paper_train")?.num_params(), 13_378_280);
    Ok(())
}

#[test]
fn googlenet_paper_with_floor_pooling_matches_the_onnx_graph_as_shipped() -> Result<()> {
    let net = GoogLeNetConfig::paper()
        .with_aux_logits(false)
        .with_ceil_mode(false);
    check_parity("googlenet_paper_onnx", &CAFFE_ONNX, |vb| {
        Inception::new(net, vb)
    })?;
    Ok(())
}

#[test]
fn the_paper_fixture_notices_a_missing_lrn_or_kernel() {
    // The fixture drives the LRNs hard enough that leaving them out changes the logits, and
    // torchvision's 3×3 kernel cannot stand in for the 5×5 one.
    let no_lrn = GoogLeNetConfig {
        lrn: None,
        ..GoogLeNetConfig::paper().with_aux_logits(false)
    };
    let err = check_parity("googlenet_paper", &CAFFE_ONNX, |vb| {
        Inception::new(no_lrn, vb)
    })
    .expect_err("a GoogLeNet without LRN must not pass");
    assert!(
        err.to_string().starts_with("parity: googlenet_paper"),
        "{err}"
    );
    let err = check_parity("googlenet_paper", &CAFFE_ONNX, |vb| {
        Inception::new(GoogLeNetConfig::googlenet().with_aux_logits(false), vb)
    })
    .expect_err("torchvision's GoogLeNet is not the paper's");
    assert!(
        err.to_string()
            .contains("inception3a.branch3.1.conv.weight"),
        "{err}"
    );
}

#[test]
fn inception_v3_matches_torchvision() -> Result<()> {
    let net = pretrained(&INCEPTION_V3_TV_IN1K);
    assert_eq!(net.transform_input, Some(TransformInput::TORCHVISION));
    check_parity("inception_v3", &TORCHVISION, |vb| Inception::new(net, vb))?;
    Ok(())
}

#[test]
fn inception_v3_with_aux_heads_evaluates_to_the_logits_alone() -> Result<()> {
    let net =
        InceptionV3Config::inception_v3().with_transform_input(Some(TransformInput::TORCHVISION));
    check_eval_with_aux_heads("inception_v3", net.into())
}

#[test]
fn inception_v3_training_outputs_match_torchvision() -> Result<()> {
    let net = InceptionV3Config::inception_v3()
        .with_transform_input(Some(TransformInput::TORCHVISION))
        .with_dropout(0.0);
    let aux = check_training("inception_v3_train", &TORCHVISION, net.into())?;
    assert_eq!(aux, [("AuxLogits", 0.4)]);
    Ok(())
}

#[test]
fn inception_v4_matches_timm() -> Result<()> {
    let net = pretrained(&INCEPTION_V4_TF_IN1K);
    assert_eq!(net.transform_input, None);
    check_parity("inception_v4", &TIMM, |vb| Inception::new(net, vb))?;
    Ok(())
}

#[test]
fn inception_resnet_v2_matches_timm() -> Result<()> {
    let net = pretrained(&INCEPTION_RESNET_V2_TF_IN1K);
    assert_eq!(net.transform_input, None);
    check_parity("inception_resnet_v2", &TIMM, |vb| Inception::new(net, vb))?;
    Ok(())
}
