//! The optimisers against PyTorch: five steps on procedural parameters and gradients
//! (fixtures/optim.json, written by optim_reference.py beside this file).

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use convnets_core::procedural;
use convnets_train::OptimizerConfig;
use serde_json::Value;

const SHAPES: [(&str, &[usize]); 2] = [("w", &[4, 3]), ("b", &[3])];

fn config(case: &str) -> OptimizerConfig {
    let sgd = |momentum, dampening, nesterov, weight_decay, decay_1d| OptimizerConfig::Sgd {
        momentum,
        dampening,
        nesterov,
        weight_decay,
        decay_1d,
    };
    match case {
        "sgd_momentum_wd" => sgd(0.9, 0.0, false, 1e-2, true),
        "sgd_nesterov_no_1d_decay" => sgd(0.9, 0.0, true, 5e-4, false),
        "sgd_dampening" => sgd(0.8, 0.3, false, 0.0, true),
        "sgd_plain" => sgd(0.0, 0.0, false, 0.0, true),
        "adamw" => OptimizerConfig::AdamW {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.05,
            decay_1d: false,
        },
        "adamw_betas" => OptimizerConfig::AdamW {
            betas: (0.8, 0.9),
            eps: 1e-6,
            weight_decay: 0.0,
            decay_1d: true,
        },
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn five_steps_match_pytorch() -> Result<()> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/optim.json"
    ))?;
    let doc: Value = serde_json::from_str(&text)?;
    let lrs: Vec<f64> = doc["lrs"]
        .as_array()
        .context("lrs")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let cases = doc["cases"].as_object().context("cases")?;
    assert_eq!(cases.len(), 6);
    for (name, case) in cases {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        for (k, shape) in SHAPES {
            let t = procedural::tensor(&format!("param.{k}"), shape, -1.0, 1.0, &dev)?;
            varmap
                .data()
                .lock()
                .unwrap()
                .insert(k.to_string(), Var::from_tensor(&t)?);
        }
        let mut opt = config(name).build(&varmap)?;
        for (step, &lr) in lrs.iter().enumerate() {
            // d/dp Σ(p·g) = g: the procedural gradient, through candle's own backward.
            let mut objective = Tensor::zeros((), DType::F32, &dev)?;
            for p in opt.params() {
                let shape = SHAPES
                    .iter()
                    .find(|(k, _)| *k == p.name)
                    .context("shape")?
                    .1;
                let g =
                    procedural::tensor(&format!("grad.{step}.{}", p.name), shape, -1.0, 1.0, &dev)?;
                objective = (objective + (p.var.as_tensor() * g)?.sum_all()?)?;
            }
            let grads: GradStore = objective.backward()?;
            opt.step(&grads, lr)?;
        }
        for p in opt.params() {
            let got: Vec<f32> = p
                .var
                .as_tensor()
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            let want: Vec<f64> = case["params"][&p.name]
                .as_array()
                .context("values")?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 2e-6 * w.abs().max(1.0),
                    "{name} {}: {got:?} vs {want:?}",
                    p.name
                );
            }
        }
    }
    Ok(())
}

#[test]
fn buffers_are_not_parameters_and_1d_decay_is_optional() -> Result<()> {
    let varmap = VarMap::new();
    let dev = Device::Cpu;
    for (k, n) in [
        ("conv.weight", 2usize),
        ("bn.weight", 1),
        ("bn.running_mean", 1),
        ("bn.running_var", 1),
    ] {
        let shape: Vec<usize> = if n == 2 { vec![2, 2] } else { vec![2] };
        varmap
            .data()
            .lock()
            .unwrap()
            .insert(k.into(), Var::zeros(shape, DType::F32, &dev)?);
    }
    let params = convnets_train::optim::params(&varmap, 1e-4, false)?;
    let summary: Vec<(&str, f64)> = params
        .iter()
        .map(|p| (p.name.as_str(), p.weight_decay))
        .collect();
    assert_eq!(summary, [("bn.weight", 0.0), ("conv.weight", 1e-4)]);
    Ok(())
}

#[test]
fn the_optimiser_state_holds_no_computation_graph() -> Result<()> {
    // A weight used directly as a matrix product's operand gets a gradient that references
    // the forward graph (candle detaches only intermediate nodes' gradients); state built
    // from it would chain every step's graph to the next.
    let dev = Device::Cpu;
    for config in [
        OptimizerConfig::sgd(0.9, 1e-4),
        OptimizerConfig::adamw(1e-2),
    ] {
        let varmap = VarMap::new();
        let w = varmap.get((3, 4), "w", candle_nn::Init::Const(0.5), DType::F32, &dev)?;
        let mut opt = config.build(&varmap)?;
        let x = Var::from_tensor(&Tensor::ones((4, 2), DType::F32, &dev)?)?;
        for _ in 0..2 {
            let hidden = (x.as_tensor() * 2.0)?;
            let loss = w.matmul(&hidden)?.sqr()?.sum_all()?;
            let grads = loss.backward()?;
            assert!(grads.get(&w).context("no gradient for w")?.track_op());
            opt.step(&grads, 0.1)?;
        }
        let (state, _) = opt.state();
        assert!(!state.is_empty());
        for (name, t) in state {
            assert!(
                !t.track_op(),
                "{config:?}: {name} keeps a computation graph"
            );
        }
    }
    Ok(())
}
