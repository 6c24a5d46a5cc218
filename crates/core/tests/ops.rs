//! The core layers against PyTorch: every case of `fixtures/ops.json`, written by
//! `ops_reference.py` beside this file, is run here on the same procedural tensors, in f32
//! (the CPU kernels of our own) and again in f64 (candle's generic ops, which CUDA takes).

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder};
use convnets_core::layers::{
    Activation, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig,
    ConvNormAct, Dropout, Linear, LocalResponseNorm, MaxPool2d,
};
use convnets_core::procedural;
use serde_json::Value;

/// Relative tolerance for single layers, against PyTorch's f32: in f64 our side is exact to
/// far below it, so the same bound holds there.
const TOL: f64 = 1e-5;

struct Case {
    name: String,
    op: String,
    /// The dtype the layers run in.
    dtype: DType,
    params: Value,
    tensors: HashMap<String, Tensor>,
    /// Tensors in the order the script listed them.
    order: Vec<String>,
    expected: Value,
}

impl Case {
    fn p(&self, key: &str) -> Result<usize> {
        self.params[key]
            .as_u64()
            .map(|v| v as usize)
            .with_context(|| format!("{}: param {key}", self.name))
    }
    fn f(&self, key: &str) -> Result<f64> {
        self.params[key]
            .as_f64()
            .with_context(|| format!("{}: param {key}", self.name))
    }
    fn b(&self, key: &str) -> Result<bool> {
        self.params[key]
            .as_bool()
            .with_context(|| format!("{}: param {key}", self.name))
    }
    fn pair(&self, key: &str) -> Result<(usize, usize)> {
        let v = self.params[key].as_array().context("pair")?;
        Ok((
            v[0].as_u64().context("pair")? as usize,
            v[1].as_u64().context("pair")? as usize,
        ))
    }
    /// The tensor whose name ends with `.suffix`.
    fn t(&self, suffix: &str) -> Result<&Tensor> {
        self.order
            .iter()
            .find(|n| n.ends_with(&format!(".{suffix}")))
            .and_then(|n| self.tensors.get(n))
            .with_context(|| format!("{}: no tensor *.{suffix}", self.name))
    }
    /// A VarBuilder serving this case's tensors with their prefix stripped.
    fn vb(&self, prefix: &str) -> VarBuilder<'static> {
        let map = self
            .tensors
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
            .collect();
        VarBuilder::from_tensors(map, self.dtype, &Device::Cpu)
    }
}

/// The fixture's cases with their tensors in `dtype`.
fn cases(dtype: DType) -> Result<Vec<Case>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ops.json"
    ))?;
    let doc: Value = serde_json::from_str(&text)?;
    let mut out = Vec::new();
    for c in doc["cases"].as_array().context("cases")? {
        let mut tensors = HashMap::new();
        let mut order = Vec::new();
        for spec in c["tensors"].as_array().context("tensors")? {
            let name = spec["name"].as_str().context("name")?.to_string();
            let shape: Vec<usize> = spec["shape"]
                .as_array()
                .context("shape")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).context("dim"))
                .collect::<Result<_>>()?;
            let lo = spec["lo"].as_f64().context("lo")?;
            let hi = spec["hi"].as_f64().context("hi")?;
            tensors.insert(
                name.clone(),
                procedural::tensor(&name, &shape, lo, hi, &Device::Cpu)?.to_dtype(dtype)?,
            );
            order.push(name);
        }
        out.push(Case {
            name: c["name"].as_str().context("name")?.to_string(),
            op: c["op"].as_str().context("op")?.to_string(),
            dtype,
            params: c["params"].clone(),
            tensors,
            order,
            expected: c["expected"].clone(),
        });
    }
    Ok(out)
}

/// Compares `got` with an expected `{shape, values}` object.
fn compare(what: &str, got: &Tensor, expected: &Value) -> Result<f64> {
    let shape: Vec<usize> = expected["shape"]
        .as_array()
        .context("shape")?
        .iter()
        .map(|d| d.as_u64().unwrap_or(0) as usize)
        .collect();
    if got.dims() != shape.as_slice() {
        bail!("{what}: shape {:?}, PyTorch {shape:?}", got.dims());
    }
    let want: Vec<f64> = expected["values"]
        .as_array()
        .context("values")?
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect();
    let got: Vec<f64> = got.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
    let mut worst = 0f64;
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let err = (g - w).abs();
        if err.is_nan() || err > TOL * scale {
            bail!("{what}: element {i}: {g} vs PyTorch {w} (scale {scale})");
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

fn run(case: &Case) -> Result<()> {
    let x = || case.t("x");
    match case.op.as_str() {
        "max_pool" => {
            let mut pool =
                MaxPool2d::new(case.p("kernel")?, case.p("stride")?, case.p("padding")?)?;
            if case.b("ceil_mode")? {
                pool = pool.ceil_mode();
            }
            compare("output", &pool.forward(x()?)?, &case.expected)?;
        }
        "avg_pool" => {
            let mut pool =
                AvgPool2d::new(case.p("kernel")?, case.p("stride")?, case.p("padding")?)?;
            if case.b("ceil_mode")? {
                pool = pool.ceil_mode();
            }
            if !case.b("count_include_pad")? {
                pool = pool.exclude_pad();
            }
            compare("output", &pool.forward(x()?)?, &case.expected)?;
        }
        "adaptive_avg_pool" => {
            let (h, w) = case.pair("size")?;
            let pool = AdaptiveAvgPool2d::new(h, w)?;
            compare("output", &pool.forward(x()?)?, &case.expected)?;
        }
        "lrn" => {
            let lrn = LocalResponseNorm::new(
                case.p("size")?,
                case.f("alpha")?,
                case.f("beta")?,
                case.f("k")?,
            )?;
            compare("output", &lrn.forward(x()?)?, &case.expected)?;
        }
        "batch_norm" => batch_norm(case)?,
        "conv" => {
            let (kh, kw) = case.pair("kernel")?;
            let (ph, pw) = case.pair("padding")?;
            let mut cfg = Conv2dConfig::rect(kh, kw)
                .stride(case.p("stride")?)
                .padding_hw(ph, pw)
                .groups(case.p("groups")?);
            if !case.b("bias")? {
                cfg = cfg.no_bias();
            }
            let conv = Conv2d::new(
                case.p("in")?,
                case.p("out")?,
                cfg,
                case.vb(&format!("{}.", case.name)),
            )?;
            compare("output", &conv.forward(x()?)?, &case.expected)?;
        }
        "conv_grad" => conv_grad(case)?,
        "conv_bn_relu" => {
            let vb = case.vb("cba.");
            let mut block = ConvNormAct::new(
                case.p("in")?,
                case.p("out")?,
                Conv2dConfig::new(3).padding(1).groups(case.p("groups")?),
                BatchNormConfig::new().eps(case.f("eps")?),
                Activation::Relu,
                vb.pp("conv"),
                vb.pp("bn"),
            )?;
            compare("unfolded", &block.forward_t(x()?, false)?, &case.expected)?;
            block.fold_batch_norm()?;
            assert!(block.norm().is_none());
            compare("folded", &block.forward_t(x()?, false)?, &case.expected)?;
        }
        "linear" => {
            let lin = Linear::new(case.p("in")?, case.p("out")?, case.vb("linear."))?;
            compare("output", &lin.forward(x()?)?, &case.expected)?;
        }
        other => bail!("{}: unknown op {other}", case.name),
    }
    Ok(())
}

/// A convolution whose input and parameters track gradients (the training path), and the
/// gradients of `sum(y · g)`.
fn conv_grad(case: &Case) -> Result<()> {
    let (kh, kw) = case.pair("kernel")?;
    let (ph, pw) = case.pair("padding")?;
    let cfg = Conv2dConfig::rect(kh, kw)
        .stride(case.p("stride")?)
        .padding_hw(ph, pw)
        .dilation(case.p("dilation")?)
        .groups(case.p("groups")?);
    let (weight, bias, x) = (
        Var::from_tensor(case.t("weight")?)?,
        Var::from_tensor(case.t("bias")?)?,
        Var::from_tensor(case.t("x")?)?,
    );
    let map = HashMap::from([
        ("weight".to_string(), weight.as_tensor().clone()),
        ("bias".to_string(), bias.as_tensor().clone()),
    ]);
    let conv = Conv2d::new(
        case.p("in")?,
        case.p("out")?,
        cfg,
        VarBuilder::from_tensors(map, case.dtype, &Device::Cpu),
    )?;
    let y = conv.forward(x.as_tensor())?;
    let e = &case.expected;
    compare("output", &y, &e["output"])?;
    let grads = (y * case.t("grad")?)?.sum_all()?.backward()?;
    for (what, v) in [
        ("grad_x", &x),
        ("grad_weight", &weight),
        ("grad_bias", &bias),
    ] {
        let g = grads
            .get(v.as_tensor())
            .with_context(|| format!("{}: no {what}", case.name))?;
        compare(what, g, &e[what])?;
    }
    Ok(())
}

/// One training step (batch statistics, running-stat update, gradients), then evaluation.
fn batch_norm(case: &Case) -> Result<()> {
    // Parameters as Vars so that gradients reach them.
    let var = |s: &str| -> Result<Var> { Ok(Var::from_tensor(case.t(s)?)?) };
    let (weight, bias) = (var("weight")?, var("bias")?);
    let map = HashMap::from([
        ("weight".to_string(), weight.as_tensor().clone()),
        ("bias".to_string(), bias.as_tensor().clone()),
        ("running_mean".to_string(), case.t("running_mean")?.clone()),
        ("running_var".to_string(), case.t("running_var")?.clone()),
    ]);
    let cfg = BatchNormConfig::new()
        .eps(case.f("eps")?)
        .momentum(case.f("momentum")?);
    let bn = BatchNorm2d::new(
        4,
        cfg,
        VarBuilder::from_tensors(map, case.dtype, &Device::Cpu),
    )?;
    let x = Var::from_tensor(case.t("x")?)?;
    let y = bn.forward_t(x.as_tensor(), true)?;
    let e = &case.expected;
    compare("train output", &y, &e["train"])?;
    compare("running_mean", bn.running_mean(), &e["running_mean"])?;
    compare("running_var", bn.running_var(), &e["running_var"])?;
    let grads = (y * case.t("grad")?)?.sum_all()?.backward()?;
    let grad = |v: &Var, what: &str| {
        grads
            .get(v.as_tensor())
            .with_context(|| format!("no gradient for {what}"))
            .cloned()
    };
    compare("grad x", &grad(&x, "x")?, &e["grad_x"])?;
    compare("grad weight", &grad(&weight, "weight")?, &e["grad_weight"])?;
    compare("grad bias", &grad(&bias, "bias")?, &e["grad_bias"])?;
    compare(
        "eval output",
        &bn.forward_t(case.t("x_eval")?, false)?,
        &e["eval"],
    )?;
    Ok(())
}

/// Runs every case in `dtype` and reports all that fail.
fn every_case_in(dtype: DType) -> Result<()> {
    let cases = cases(dtype)?;
    assert!(cases.len() >= 20, "fixture has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = run(case).with_context(|| case.name.clone()) {
            failures.push(format!("{e:#}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{dtype:?}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Ok(())
}

/// In f32 on the CPU, the pooling, BatchNorm and convolution kernels of our own run.
#[test]
fn every_layer_matches_pytorch() -> Result<()> {
    every_case_in(DType::F32)
}

/// In f64 none of them does: pooling is candle's over explicitly padded input, BatchNorm
/// trains unfused, convolutions are candle's (forward and backward). These are the paths
/// `--features cuda` runs, which this machine cannot.
#[test]
fn every_layer_matches_pytorch_on_the_generic_path() -> Result<()> {
    every_case_in(DType::F64)
}

#[test]
fn batch_norm_running_stats_do_not_move_in_eval() -> Result<()> {
    let dev = Device::Cpu;
    let bn = BatchNorm2d::new(
        3,
        BatchNormConfig::new(),
        VarBuilder::zeros(DType::F32, &dev),
    )?;
    let before = bn.running_var().to_vec1::<f32>()?;
    bn.forward_t(
        &procedural::tensor("x", &[2, 3, 4, 4], -1.0, 1.0, &dev)?,
        false,
    )?;
    assert_eq!(bn.running_var().to_vec1::<f32>()?, before);
    let single = procedural::tensor("x", &[1, 3, 1, 1], -1.0, 1.0, &dev)?;
    let err = bn
        .forward_t(&single, true)
        .expect_err("one value per channel cannot train");
    assert!(
        err.to_string().contains("more than 1 value per channel"),
        "{err}"
    );
    Ok(())
}

#[test]
fn dropout_is_identity_in_eval_and_seeded_in_training() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::ones((64, 256), DType::F32, &dev)?;
    let drop = Dropout::new(0.25)?;
    let eval: Vec<f32> = drop.forward_t(&x, false)?.flatten_all()?.to_vec1()?;
    assert!(eval.iter().all(|&v| v == 1.0));

    convnets_core::random::manual_seed(3);
    let a: Vec<f32> = drop.forward_t(&x, true)?.flatten_all()?.to_vec1()?;
    let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / a.len() as f64;
    assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
    assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let a2: Vec<f32> = drop.forward_t(&x, true)?.flatten_all()?.to_vec1()?;
    assert_ne!(a, a2, "consecutive draws differ");
    convnets_core::random::manual_seed(3);
    let b: Vec<f32> = drop.forward_t(&x, true)?.flatten_all()?.to_vec1()?;
    assert_eq!(a, b, "the same seed gives the same mask");
    Ok(())
}

#[test]
fn pooling_refuses_bad_geometry_with_a_message() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 1, 2, 2), DType::F32, &dev).unwrap();
    let err = MaxPool2d::new(3, 1, 0).unwrap().forward(&x).unwrap_err();
    assert!(err.to_string().contains("smaller than the kernel"), "{err}");
    let err = AvgPool2d::new(2, 2, 0)
        .unwrap()
        .forward(&x.flatten_all().unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("[N, C, H, W]"), "{err}");
}

/// A 3×3 stride-1 convolution with 32 channels and more runs as Winograd's F(2×2, 3×3) on
/// the CPU: within rounding of the direct sum (and not equal to it, or the fast path did not
/// run); `without_winograd` gives the direct sum, and BatchNorm folding keeps that choice.
#[test]
fn winograd_is_the_direct_sum_within_rounding_and_can_be_declined() -> Result<()> {
    let dev = Device::Cpu;
    let (c, o) = (32, 40);
    let cfg = Conv2dConfig::new(3).padding(1);
    let weight = procedural::tensor("w", &[o, c, 3, 3], -0.1, 0.1, &dev)?;
    let bias = procedural::tensor("b", &[o], -0.1, 0.1, &dev)?;
    let x = procedural::tensor("x", &[2, c, 12, 11], -1.0, 1.0, &dev)?;
    let fast = Conv2d::from_parts(weight.clone(), Some(bias.clone()), cfg);
    let direct = fast.clone().without_winograd();
    let (a, b) = (fast.forward(&x)?, direct.forward(&x)?);
    let diff = (&a - &b)?.abs()?.max_all()?.to_scalar::<f32>()?;
    let scale = b.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(diff > 0.0, "the Winograd path did not run");
    assert!(diff <= 1e-5 * scale, "{diff} against {scale}");

    let stats = |name: &str, lo, hi| procedural::tensor(name, &[o], lo, hi, &dev);
    let tensors = HashMap::from([
        ("weight".to_string(), stats("g", 0.5, 1.5)?),
        ("bias".to_string(), stats("beta", -0.5, 0.5)?),
        ("running_mean".to_string(), stats("mu", -0.5, 0.5)?),
        ("running_var".to_string(), stats("var", 0.5, 2.0)?),
    ]);
    let norm = BatchNorm2d::new(
        o,
        BatchNormConfig::new(),
        VarBuilder::from_tensors(tensors, DType::F32, &dev),
    )?;
    let mut block = ConvNormAct::from_parts(direct, Some(norm), Activation::Relu);
    block.fold_batch_norm()?;
    let folded = block.conv();
    let plain = Conv2d::from_parts(folded.weight().clone(), folded.bias().cloned(), cfg);
    let want = plain.without_winograd().forward_act(&x, Activation::Relu)?;
    let got = block.forward_t(&x, false)?;
    assert_eq!(
        got.flatten_all()?.to_vec1::<f32>()?,
        want.flatten_all()?.to_vec1::<f32>()?
    );
    Ok(())
}
