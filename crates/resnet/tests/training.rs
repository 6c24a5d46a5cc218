//! Training from scratch: initialisation as torchvision's, gradients to every parameter,
//! BatchNorm statistics that move in training and only then, shapes for any head and input.

use std::collections::HashMap;

use anyhow::{Context, Result};
use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::optim::{Optimizer, SGD};
use candle_nn::{ModuleT, VarMap};
use convnets_core::Classifier;
use convnets_core::init::var_builder;
use convnets_resnet::{ResNet, ResNetConfig, Stem};

/// A small bottleneck net with everything the ImageNet models have: the 7×7 stem and max
/// pool, projections, grouped 3×3 convolutions (ResNeXt) and a stage of identity blocks.
const TINY_RESNEXT: ResNetConfig = ResNetConfig {
    depths: &[1, 2],
    widths: &[4, 8],
    stem: Stem {
        width: 8,
        ..Stem::IMAGENET
    },
    num_classes: 5,
    ..ResNetConfig::resnext50_32x4d().with_groups(2, 64)
};

fn build(config: &ResNetConfig, seed: u64) -> Result<(ResNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = var_builder(&varmap, seed, DType::F32, &Device::Cpu);
    Ok((ResNet::new(config, vb)?, varmap))
}

fn vars(varmap: &VarMap) -> Result<HashMap<String, Var>> {
    Ok(varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("VarMap poisoned"))?
        .clone())
}

fn is_running_stat(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

fn images(n: usize, size: usize, seed: u64) -> Result<Tensor> {
    Ok(convnets_core::procedural::tensor(
        &format!("images.{seed}"),
        &[n, 3, size, size],
        -2.0,
        2.0,
        &Device::Cpu,
    )?)
}

fn labels(n: usize, classes: usize) -> Result<Tensor> {
    let l: Vec<u32> = (0..n as u32)
        .map(|i| (i * 7 + 3) % classes as u32)
        .collect();
    Ok(Tensor::new(l, &Device::Cpu)?)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

#[test]
fn a_backward_pass_reaches_every_parameter() -> Result<()> {
    // (config, input size, parameter tensors: three per convolution — weight, BatchNorm
    // scale and shift — and the classifier's two).
    for (config, size, tensors) in [
        (ResNetConfig::resnet20(), 32, 19 * 3 + 2),
        (ResNetConfig::plain20(), 32, 19 * 3 + 2),
        // Stem, three bottlenecks of three convolutions, two projections.
        (TINY_RESNEXT, 64, (1 + 3 * 3 + 2) * 3 + 2),
    ] {
        let (model, varmap) = build(&config, 1)?;
        let logits = model.forward_t(&images(4, size, 0)?, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels(4, config.num_classes)?)?;
        let grads = loss.backward()?;
        let mut params = 0;
        for (name, var) in &vars(&varmap)? {
            if is_running_stat(name) {
                assert!(
                    grads.get(var).is_none(),
                    "{name} is a buffer, not a parameter"
                );
                continue;
            }
            let g = grads
                .get(var)
                .with_context(|| format!("depth {}: no gradient for {name}", config.depth()))?;
            let norm = g.abs()?.sum_all()?.to_scalar::<f32>()?;
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm}"
            );
            params += 1;
        }
        assert_eq!(params, tensors, "{config:?}");
    }
    Ok(())
}

#[test]
fn batch_norm_statistics_move_in_training_only() -> Result<()> {
    let (model, varmap) = build(&TINY_RESNEXT, 2)?;
    let snapshot = |varmap: &VarMap| -> Result<HashMap<String, Tensor>> {
        Ok(vars(varmap)?
            .into_iter()
            .filter(|(name, _)| is_running_stat(name))
            .map(|(name, var)| (name, var.as_tensor().copy().expect("copy")))
            .collect())
    };
    let x = images(4, 64, 1)?;
    let before = snapshot(&varmap)?;
    // Stem, three bottlenecks of three BatchNorms, two projections.
    assert_eq!(before.len(), 2 * (1 + 3 * 3 + 2));

    model.forward_t(&x, false)?;
    for (name, t) in snapshot(&varmap)? {
        assert_eq!(
            max_abs_diff(&t, &before[&name])?,
            0.0,
            "{name} moved in eval mode"
        );
    }
    model.forward_t(&x, true)?;
    for (name, t) in snapshot(&varmap)? {
        assert!(
            max_abs_diff(&t, &before[&name])? > 0.0,
            "{name} did not move in training"
        );
    }
    // And the evaluation output follows the updated statistics.
    let after = snapshot(&varmap)?;
    model.forward_t(&x, false)?;
    for (name, t) in snapshot(&varmap)? {
        assert_eq!(
            max_abs_diff(&t, &after[&name])?,
            0.0,
            "{name} moved in eval mode"
        );
    }
    Ok(())
}

#[test]
fn initialisation_is_torchvisions() -> Result<()> {
    let (_, varmap) = build(&ResNetConfig::resnet20(), 3)?;
    let vars = vars(&varmap)?;
    let values = |name: &str| -> Result<Vec<f32>> {
        Ok(vars[name].as_tensor().flatten_all()?.to_vec1::<f32>()?)
    };
    // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / (64 · 3 · 3)).
    let w = values("layer3.1.conv2.weight")?;
    let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / w.len() as f64;
    let var = w
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / w.len() as f64;
    let want: f64 = 2.0 / (64.0 * 9.0);
    assert!(mean.abs() < 0.05 * want.sqrt(), "mean {mean}");
    assert!(
        (var / want - 1.0).abs() < 0.03,
        "variance {var}, want {want}"
    );
    // BatchNorm: scale 1, shift 0, running mean 0, running variance 1.
    for (name, value) in [
        ("layer1.0.bn2.weight", 1.0),
        ("layer1.0.bn2.bias", 0.0),
        ("bn1.running_mean", 0.0),
        ("bn1.running_var", 1.0),
    ] {
        assert!(values(name)?.iter().all(|&x| x == value), "{name}");
    }
    // The classifier keeps nn.Linear's default: uniform in ±1/sqrt(fan_in).
    let bound = 1.0 / 64f32.sqrt();
    let fc = values("fc.weight")?;
    assert!(fc.iter().all(|x| x.abs() <= bound));
    assert!(fc.iter().any(|x| x.abs() > 0.9 * bound));
    Ok(())
}

#[test]
fn zero_init_residual_zeroes_the_last_batch_norm_of_each_branch() -> Result<()> {
    for (config, last) in [
        (ResNetConfig::resnet20().with_zero_init_residual(), "bn2"),
        (TINY_RESNEXT.with_zero_init_residual(), "bn3"),
    ] {
        let (_, varmap) = build(&config, 4)?;
        for (name, var) in vars(&varmap)? {
            if !name.starts_with("layer") || !name.ends_with(".weight") || !name.contains(".bn") {
                continue;
            }
            let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let want = if name.ends_with(&format!("{last}.weight")) {
                0.0
            } else {
                1.0
            };
            assert!(values.iter().all(|&v| v == want), "{name}: {values:?}");
        }
    }
    Ok(())
}

#[test]
fn a_few_sgd_steps_fit_a_batch() -> Result<()> {
    let config = ResNetConfig::resnet20();
    let (model, varmap) = build(&config, 5)?;
    let params: Vec<Var> = vars(&varmap)?
        .into_iter()
        .filter(|(name, _)| !is_running_stat(name))
        .map(|(_, v)| v)
        .collect();
    let mut sgd = SGD::new(params, 0.05)?;
    // 16×16 images keep the test quick; the network is the same.
    let (x, y) = (images(8, 16, 2)?, labels(8, 10)?);
    let mut losses = Vec::new();
    for _ in 0..6 {
        let loss = candle_nn::loss::cross_entropy(&model.forward_t(&x, true)?, &y)?;
        losses.push(loss.to_scalar::<f32>()?);
        sgd.backward_step(&loss)?;
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    eprintln!("losses {losses:?}");
    assert!(last < 0.8 * first, "losses {losses:?}");
    Ok(())
}

#[test]
fn any_number_of_classes_and_input_channels() -> Result<()> {
    let config = ResNetConfig::resnet18()
        .with_num_classes(7)
        .with_in_channels(1);
    let (model, _) = build(&config, 6)?;
    let x = images(6, 64, 3)?.narrow(1, 0, 1)?.contiguous()?;
    let features = model.forward_features(&x, false)?;
    assert_eq!(features.dims(), &[6, 512, 2, 2]);
    let logits = model.forward_head(&features, false)?;
    assert_eq!(logits.dims(), &[6, 7]);
    assert_eq!(model.num_classes(), 7);
    // forward_t is features then head, in both modes.
    assert_eq!(max_abs_diff(&model.forward_t(&x, false)?, &logits)?, 0.0);
    // Odd sizes: 75 → 38 → 19 → 10 → 5 → 3, and the zero-padded shortcut's subsampling
    // keeps the same ⌈h/2⌉ rows as the strided convolution.
    let (cifar, _) = build(&ResNetConfig::resnet20(), 7)?;
    let features = cifar.forward_features(&images(2, 75, 4)?, false)?;
    assert_eq!(features.dims(), &[2, 64, 19, 19]);
    // A batch of one, in evaluation.
    assert_eq!(cifar.forward_t(&images(1, 32, 5)?, false)?.dims(), &[1, 10]);
    Ok(())
}

#[test]
fn batch_rows_are_independent_in_evaluation() -> Result<()> {
    let (model, _) = build(&ResNetConfig::resnet20(), 8)?;
    let x = images(3, 32, 6)?;
    let together = model.forward_t(&x, false)?;
    for i in 0..3 {
        let alone = model.forward_t(&x.narrow(0, i, 1)?, false)?;
        let row = together.narrow(0, i, 1)?;
        assert!(max_abs_diff(&alone, &row)? < 1e-5);
    }
    let top = together.argmax(D::Minus1)?;
    assert_eq!(top.dims(), &[3]);
    Ok(())
}

#[test]
fn folding_batch_norm_keeps_the_evaluation_output() -> Result<()> {
    let (mut model, varmap) = build(&TINY_RESNEXT, 9)?;
    // Non-trivial statistics and affine parameters first.
    model.forward_t(&images(4, 64, 7)?, true)?;
    for (name, var) in vars(&varmap)? {
        if name.contains("bn") && (name.ends_with("weight") || name.ends_with("bias")) {
            let shifted = (var.as_tensor() + 0.1)?;
            var.set(&shifted)?;
        }
    }
    let x = images(2, 64, 8)?;
    let before = model.forward_t(&x, false)?;
    model.fold_batch_norm()?;
    let after = model.forward_t(&x, false)?;
    let scale = before
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?
        .max(1.0);
    assert!(max_abs_diff(&before, &after)? <= 1e-4 * scale);
    Ok(())
}
