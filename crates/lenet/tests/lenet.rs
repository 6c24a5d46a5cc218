//! LeNet-5's structure: parameter counts per layer as the paper states them, shapes, the
//! C3 connection scheme, the RBF output and the input normalisation.

use std::collections::BTreeMap;

use anyhow::Result;
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{ModuleT, VarMap};
use convnets_core::Classifier;
use convnets_core::init::var_builder;
use convnets_lenet::config::c3_inputs;
use convnets_lenet::{LeNet5, LeNetConfig, Output, paper_input, rbf_prototypes};

fn build(config: &LeNetConfig) -> Result<(LeNet5, VarMap)> {
    let varmap = VarMap::new();
    let model = LeNet5::new(config, var_builder(&varmap, 7, DType::F32, &Device::Cpu))?;
    Ok((model, varmap))
}

/// Trainable parameters per top-level layer (`c1`, `s2`, ...).
fn params_per_layer(varmap: &VarMap) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for (name, var) in varmap.data().lock().expect("varmap").iter() {
        let layer = name.split('.').next().unwrap_or_default().to_string();
        *layers.entry(layer).or_default() += var.elem_count();
    }
    layers
}

fn input(n: usize) -> Result<Tensor> {
    Ok(Tensor::rand(-1f32, 1., (n, 1, 32, 32), &Device::Cpu)?)
}

#[test]
fn classic_has_the_papers_trainable_parameters_per_layer() -> Result<()> {
    let (_, varmap) = build(&LeNetConfig::classic())?;
    let layers = params_per_layer(&varmap);
    // §II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; the RBF output has none.
    let expected: BTreeMap<String, usize> = [
        ("c1", 156),
        ("s2", 12),
        ("c3", 1_516),
        ("s4", 32),
        ("c5", 48_120),
        ("f6", 10_164),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(layers, expected);
    assert_eq!(layers.values().sum::<usize>(), 60_000);
    Ok(())
}

#[test]
fn modern_has_a_full_c3_and_a_linear_head() -> Result<()> {
    let (_, varmap) = build(&LeNetConfig::modern())?;
    let layers = params_per_layer(&varmap);
    assert_eq!(layers["c3"], 16 * 6 * 25 + 16);
    assert_eq!(layers["output"], 84 * 10 + 10);
    assert!(!layers.contains_key("s2") && !layers.contains_key("s4"));
    assert_eq!(layers.values().sum::<usize>(), 61_706);
    Ok(())
}

#[test]
fn both_map_a_batch_of_32x32_images_to_ten_scores() -> Result<()> {
    for config in [LeNetConfig::classic(), LeNetConfig::modern()] {
        let (model, _) = build(&config)?;
        let x = input(3)?;
        let features = model.forward_features(&x, false)?;
        assert_eq!(features.dims(), [3, 120, 1, 1]);
        let logits = model.forward_t(&x, false)?;
        assert_eq!(logits.dims(), [3, 10]);
        // Batch-agnostic: one image alone gives the same scores, up to the rounding of sums
        // taken in another order. The classic model's scores are squared distances of
        // magnitude up to ~200, where one f32 step is 1.5e-5, so the bound is relative.
        let one = model.forward_t(&x.i(1..2)?, false)?;
        let diff = (&one - logits.i(1..2)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        let scale = one.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
        assert!(diff <= 4e-7 * scale, "{diff} (scores up to {scale})");
        assert_eq!(model.num_classes(), 10);
    }
    Ok(())
}

#[test]
fn a_wrong_input_size_is_a_clear_error() -> Result<()> {
    let (model, _) = build(&LeNetConfig::classic())?;
    let x = Tensor::zeros((1, 1, 36, 36), DType::F32, &Device::Cpu)?;
    let err = model
        .forward_t(&x, false)
        .expect_err("36×36 must be refused");
    assert!(err.to_string().contains("32×32"), "{err}");
    Ok(())
}

#[test]
fn classic_scores_are_negated_distances_to_the_prototypes() -> Result<()> {
    let (model, _) = build(&LeNetConfig::classic())?;
    let x = input(4)?;
    let penalties = model.rbf_penalties(&x, false)?;
    let scores = model.forward_t(&x, false)?;
    let diff = (penalties.neg()? - &scores)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    assert_eq!(diff, 0.0);
    // F6's states lie in (-1.7159, 1.7159), so every penalty is below 84 · 2.7159².
    let max = penalties.max_all()?.to_scalar::<f32>()?;
    let min = penalties.min_all()?.to_scalar::<f32>()?;
    assert!(min > 0.0 && max < 84.0 * 2.7159f32.powi(2), "{min} {max}");
    // A modern model has no RBF units to ask.
    let (modern, _) = build(&LeNetConfig::modern())?;
    assert!(modern.rbf_penalties(&x, false).is_err());
    Ok(())
}

#[test]
fn the_rbf_output_knows_ten_digits_only() {
    let cfg = LeNetConfig::classic().with_num_classes(26);
    let err = LeNet5::new(
        &cfg,
        var_builder(&VarMap::new(), 0, DType::F32, &Device::Cpu),
    )
    .expect_err("26 classes cannot use the digit prototypes");
    assert!(err.to_string().contains("RBF"), "{err}");
    let linear = LeNetConfig {
        output: Output::Linear,
        ..cfg
    };
    assert!(build(&linear).is_ok());
}

#[test]
fn every_parameter_receives_a_gradient() -> Result<()> {
    // The Table I kernels are scattered into a dense kernel in the forward pass; the
    // gradient must flow back through the scatter to each of the sixteen per-map kernels.
    let (model, varmap) = build(&LeNetConfig::classic())?;
    let vars = varmap.data().lock().expect("varmap").clone();
    for j in 0..16 {
        let w = &vars[&format!("c3.{j}.weight")];
        assert_eq!(w.dims(), [1, c3_inputs(j).len(), 5, 5], "map {j}");
    }
    let loss = model.rbf_penalties(&input(2)?, true)?.sum_all()?;
    let grads = loss.backward()?;
    for (name, var) in &vars {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
        assert!(norm > 0.0, "zero gradient for {name}");
    }
    Ok(())
}

#[test]
fn paper_input_pads_and_normalises() -> Result<()> {
    let dev = Device::Cpu;
    let mut pixels = vec![0f32; 28 * 28];
    pixels[0] = 1.0; // ink at the top-left corner of the 28×28 field
    let images = Tensor::from_vec(pixels, (1, 1, 28, 28), &dev)?;
    let x = paper_input(&images)?;
    assert_eq!(x.dims(), [1, 1, 32, 32]);
    let v: Vec<f32> = x.flatten_all()?.to_vec1()?;
    assert_eq!(v[2 * 32 + 2], 1.175);
    assert_eq!(v[0], -0.1);
    assert_eq!(v.iter().filter(|&&p| p == 1.175).count(), 1);
    assert!(paper_input(&Tensor::zeros((1, 1, 33, 33), DType::F32, &dev)?).is_err());
    Ok(())
}

#[test]
fn prototypes_tensor_is_the_sheet() -> Result<()> {
    let p = rbf_prototypes(DType::F32, &Device::Cpu)?;
    assert_eq!(p.dims(), [10, 84]);
    let row: Vec<f32> = p.i(1)?.to_vec1()?;
    assert_eq!(row, convnets_lenet::prototypes::PROTOTYPES[1].to_vec());
    Ok(())
}
