//! `cargo xtask bench`: our models beside the reference implementations, on the same cores,
//! interleaved, as medians and ratios.
//!
//! Each measurement runs in its own process with the thread count fixed before anything
//! starts (candle's and PyTorch's thread pools read it once): this binary re-invoked as
//! `bench-worker`, and the Python scripts in `xtask/bench/`. Rounds alternate between the
//! implementations so that a disturbance of the machine hits both.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use convnets_core::Classifier;
use convnets_lenet::LeNet5;
use convnets_train::{Criterion, OptimizerConfig};

const USAGE: &str = "\
usage: cargo xtask bench lenet-train [--threads N] [--rounds N] [--batch N]

  lenet-train   LeNet-5 (classic and modern) training steps, convnets-train against
                PyTorch; needs PYTHON pointing at a Python with torch (tests/parity/
                requirements.txt), else only our side is measured
";

struct Options {
    threads: Vec<usize>,
    rounds: usize,
    batch: usize,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        threads: vec![1, 2],
        rounds: 5,
        batch: 64,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => o.threads = vec![v()?.parse()?],
            "--rounds" => o.rounds = v()?.parse()?,
            "--batch" => o.batch = v()?.parse()?,
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("lenet-train") => lenet_train(&parse(&args[1..])?),
        _ => bail!("{USAGE}"),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs one measurement process and reads its `images_per_sec`.
fn measure(mut cmd: Command) -> Result<f64> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("parsing `{line}`"))?;
    v["images_per_sec"].as_f64().context("no images_per_sec")
}

fn lenet_train(o: &Options) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let python = std::env::var("PYTHON").ok();
    let torch_ok = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !torch_ok {
        eprintln!("no PYTHON with torch: measuring convnets only");
    }
    let exe = std::env::current_exe()?;
    println!(
        "LeNet-5 training, batch {}, {} rounds, images/s (median)\n",
        o.batch, o.rounds
    );
    println!("| model | threads | convnets | PyTorch | ratio |");
    println!("|---|---|---|---|---|");
    for variant in ["modern", "classic"] {
        for &threads in &o.threads {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..o.rounds {
                let mut cmd = Command::new(&exe);
                cmd.args(["bench-worker", "lenet-train", variant, &o.batch.to_string()])
                    .env("RAYON_NUM_THREADS", threads.to_string());
                ours.push(measure(cmd)?);
                if let (true, Some(py)) = (torch_ok, &python) {
                    let mut cmd = Command::new(py);
                    cmd.arg(root.join("xtask/bench/lenet_train.py"))
                        .args([
                            "--variant",
                            variant,
                            "--threads",
                            &threads.to_string(),
                            "--batch",
                            &o.batch.to_string(),
                        ])
                        .env("OMP_NUM_THREADS", threads.to_string());
                    theirs.push(measure(cmd)?);
                }
            }
            let a = median(&mut ours);
            if theirs.is_empty() {
                println!("| LeNet-5 {variant} | {threads} | {a:.0} | - | - |");
            } else {
                let b = median(&mut theirs);
                println!(
                    "| LeNet-5 {variant} | {threads} | {a:.0} | {b:.0} | {:.2}× |",
                    a / b
                );
            }
        }
    }
    Ok(())
}

/// The measuring side of `bench`, in its own process.
pub fn worker(args: &[String]) -> Result<()> {
    let [what, variant, batch] = args else {
        bail!("bench-worker lenet-train <classic|modern> <batch>");
    };
    if what != "lenet-train" {
        bail!("unknown worker `{what}`");
    }
    let batch: usize = batch.parse()?;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let model = LeNet5::new(
        &crate::train::lenet_config(variant)?,
        convnets_core::init::var_builder(&varmap, 0, DType::F32, &dev),
    )?;
    let mut opt = OptimizerConfig::sgd(0.9, 0.0).build(&varmap)?;
    let criterion = if variant == "classic" {
        Criterion::LeCunMap { j: 10.0 }
    } else {
        Criterion::CROSS_ENTROPY
    };
    let x = Tensor::randn(0f32, 1.0, (batch, 1, 32, 32), &dev)?;
    let y = Tensor::from_vec(
        (0..batch as u32).map(|i| i % 10).collect::<Vec<_>>(),
        batch,
        &dev,
    )?;
    let mut step = || -> Result<()> {
        let out = model.forward_train(&x)?;
        let loss = criterion.loss(&out, &y)?;
        let grads = loss.backward()?;
        opt.step(&grads, 1e-3)?;
        Ok(())
    };
    for _ in 0..10 {
        step()?;
    }
    let steps = 100;
    let t = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    let ips = (batch * steps) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "impl": "convnets", "images_per_sec": ips })
    );
    Ok(())
}
