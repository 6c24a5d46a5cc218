//! `cargo xtask bench`: our models beside the reference implementations, on the same cores,
//! interleaved, as medians and ratios.
//!
//! Each measurement runs in its own process with the thread count fixed before anything
//! starts (candle's, PyTorch's and ONNX Runtime's thread pools read it once): this binary
//! re-invoked as `bench-worker`, and the Python scripts in `xtask/bench/`. Rounds alternate
//! between the implementations so that a disturbance of the machine hits all of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use convnets_core::Classifier;
use convnets_core::layers::{Activation, Conv2d, Conv2dConfig};
use convnets_inception::{
    GoogLeNetConfig, Inception, InceptionResNetV2Config, InceptionV3Config, InceptionV4Config,
};
use convnets_lenet::LeNet5;
use convnets_resnet::{ResNet, ResNetConfig};
use convnets_train::{Criterion, OptimizerConfig};

const USAGE: &str = "\
usage: cargo xtask bench [infer|train|gemm|lenet-train|layers] [options]

  (none)        gemm, infer and train, one after the other
  gemm          the machine's f32 matrix-product GFLOP/s (2048³): the limit
  infer         inference at batch 16, f32: ResNet-50, ResNet-18, VGG-16, AlexNet, GoogLeNet,
                Inception-v3, against PyTorch (NCHW and channels_last) and ONNX Runtime
  train         training steps: LeNet-5 (modern, classic; batch 64) and the CIFAR ResNet-20
                and -56 (batch 128), against PyTorch
  lenet-train   the LeNet-5 rows of `train` only
  layers        the 3×3 convolutions of ResNet-50, VGG-16 and AlexNet one by one, one image
                on one thread: the direct kernel beside the default (Winograd F(2×2, 3×3)
                where it applies), ms and GFLOP/s counted as the direct sum

options:
  --models a,b,..   a subset (infer: resnet50 resnet18 vgg16 alexnet googlenet inception_v3
                    and on request resnet101 resnet152 wide_resnet50_2 resnext50_32x4d vgg16_bn
                    inception_v4 inception_resnet_v2; train: lenet5-modern lenet5-classic
                    resnet20 resnet56)
  --impls a,b,..    infer: which of convnets, torch, torch-cl, ort (default: all)
  --threads N       thread count (default: 2 for infer, 1 and 2 for train)
  --rounds N        interleaved rounds per measurement (default 5; the median is reported)
  --batch N         batch size (default: 16 infer, 64 LeNet-5, 128 CIFAR ResNets)
  --seconds S       minimum timed seconds per round (default 2)
  --python-keeps-freed-memory
                    run the Python side under the allocator settings our binaries use
                    (convnets_core::runtime, as GLIBC_TUNABLES): the comparison with both
                    sides' allocators alike
  --baseline PATH   another build of this xtask binary (say, of an earlier commit), measured
                    as one more implementation, `before`: before/after in the same rounds

The reference side needs PYTHON pointing at a Python with torch (and onnxruntime, onnx for
the ONNX Runtime column; timm for inception_v4 and inception_resnet_v2):
tests/parity/requirements.txt. Without it only our side is measured.
";

/// Measured by `infer` when named in `--models`.
const EXTRA_MODELS: &[&str] = &[
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "resnext50_32x4d",
    "vgg16_bn",
    "inception_v4",
    "inception_resnet_v2",
];

const INFER_MODELS: &[&str] = &[
    "resnet50",
    "resnet18",
    "vgg16",
    "alexnet",
    "googlenet",
    "inception_v3",
];
const TRAIN_MODELS: &[&str] = &["lenet5-modern", "lenet5-classic", "resnet20", "resnet56"];
const IMPLS: &[&str] = &["convnets", "torch", "torch-cl", "ort"];

#[derive(Debug, Clone)]
struct Options {
    models: Option<Vec<String>>,
    impls: Vec<String>,
    threads: Option<Vec<usize>>,
    rounds: usize,
    batch: Option<usize>,
    seconds: f64,
    baseline: Option<PathBuf>,
    python_keeps_freed_memory: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        models: None,
        impls: IMPLS.iter().map(|s| s.to_string()).collect(),
        threads: None,
        rounds: 5,
        batch: None,
        seconds: 2.0,
        baseline: None,
        python_keeps_freed_memory: false,
    };
    let list = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--models" => o.models = Some(list(v()?)),
            "--impls" => o.impls = list(v()?),
            "--threads" => o.threads = Some(vec![v()?.parse()?]),
            "--rounds" => o.rounds = v()?.parse()?,
            "--batch" => o.batch = Some(v()?.parse()?),
            "--seconds" => o.seconds = v()?.parse()?,
            "--baseline" => o.baseline = Some(v()?.into()),
            "--python-keeps-freed-memory" => o.python_keeps_freed_memory = true,
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    for i in &o.impls {
        if !IMPLS.contains(&i.as_str()) {
            bail!("unknown implementation `{i}` (one of {IMPLS:?})");
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<()> {
    let (what, rest) = match args.first().map(String::as_str) {
        Some(w @ ("infer" | "train" | "gemm" | "lenet-train" | "layers")) => (w, &args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return Ok(());
        }
        _ => ("all", args),
    };
    let o = parse(rest)?;
    let mut env = Env::detect()?;
    if o.python_keeps_freed_memory {
        // What convnets_core::runtime::keep_freed_memory sets with mallopt.
        env.python_tunables = Some(format!(
            "glibc.malloc.mmap_threshold={}:glibc.malloc.trim_threshold={}",
            32 << 20,
            1 << 30
        ));
    }
    println!("{}\n", env.describe());
    match what {
        "gemm" => gemm(&env, &o).map(drop),
        "layers" => layers(&env, &o),
        "infer" => infer(&env, &o, None),
        "train" => train(&env, &o),
        "lenet-train" => train(
            &env,
            &Options {
                models: Some(vec!["lenet5-modern".into(), "lenet5-classic".into()]),
                ..o
            },
        ),
        _ => {
            let limit = gemm(&env, &o)?;
            infer(&env, &o, Some(limit))?;
            train(&env, &o)
        }
    }
}

/// Where the workers are and what the reference side can run.
struct Env {
    exe: PathBuf,
    root: PathBuf,
    python: Option<String>,
    torch: bool,
    ort: bool,
    /// GLIBC_TUNABLES for the Python processes (`--python-keeps-freed-memory`).
    python_tunables: Option<String>,
}

impl Env {
    fn detect() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace root")?
            .to_path_buf();
        let python = std::env::var("PYTHON").ok();
        let imports = |modules: &str| {
            python.as_ref().is_some_and(|p| {
                Command::new(p)
                    .args(["-c", &format!("import {modules}")])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
        };
        let torch = imports("torch, torchvision");
        let ort = torch && imports("onnxruntime, onnx");
        if !torch {
            eprintln!("no PYTHON with torch and torchvision: measuring convnets only");
        } else if !ort {
            eprintln!("PYTHON lacks onnxruntime or onnx: no ONNX Runtime column");
        }
        Ok(Self {
            exe: std::env::current_exe()?,
            root,
            python,
            torch,
            ort,
            python_tunables: None,
        })
    }

    fn describe(&self) -> String {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let python_malloc = match &self.python_tunables {
            Some(t) => format!("the same ({t})"),
            None => "glibc's defaults".into(),
        };
        format!(
            "machine: {cpu}, {} logical CPUs; load average at start: {load}\n\
             convnets: freed memory kept, candle's elementwise pool on one thread (convnets_core::runtime); Python allocator: {python_malloc}",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )
    }

    fn worker(&self, args: &[&str], threads: usize) -> Command {
        self.worker_of(&self.exe, args, threads)
    }

    fn worker_of(&self, exe: &Path, args: &[&str], threads: usize) -> Command {
        let mut cmd = Command::new(exe);
        cmd.arg("bench-worker")
            .args(args)
            .env("RAYON_NUM_THREADS", threads.to_string());
        cmd
    }

    fn python(&self, script: &str, args: &[&str], threads: usize) -> Option<Command> {
        let py = self.python.as_ref().filter(|_| self.torch)?;
        let mut cmd = Command::new(py);
        cmd.arg(self.root.join("xtask/bench").join(script))
            .args(args)
            .args(["--threads", &threads.to_string()])
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("MKL_NUM_THREADS", threads.to_string());
        if let Some(tunables) = &self.python_tunables {
            cmd.env("GLIBC_TUNABLES", tunables);
        }
        Some(cmd)
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs one measurement process and returns its last output line, parsed.
fn measure(mut cmd: Command) -> Result<serde_json::Value> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("no output")?;
    serde_json::from_str(line).with_context(|| format!("parsing `{line}`"))
}

fn field(v: &serde_json::Value, name: &str) -> Result<f64> {
    v[name]
        .as_f64()
        .with_context(|| format!("no `{name}` in {v}"))
}

/// The matrix-product rate ours (candle's gemm) and PyTorch's reach; returns the larger.
fn gemm(env: &Env, o: &Options) -> Result<f64> {
    let threads = o.threads.as_ref().map_or(2, |t| t[0]);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        ours.push(field(&measure(env.worker(&["gemm"], threads))?, "gflops")?);
        if let Some(cmd) = env.python("infer.py", &["--gemm"], threads) {
            theirs.push(field(&measure(cmd)?, "gflops")?);
        }
    }
    println!("f32 matrix product 2048×2048×2048, {threads} threads, GFLOP/s (median)\n");
    println!("| candle (gemm crate) | PyTorch |");
    println!("|---|---|");
    let a = median(&ours);
    let b = (!theirs.is_empty()).then(|| median(&theirs));
    println!(
        "| {a:.0} | {} |\n",
        b.map_or("-".into(), |b| format!("{b:.0}"))
    );
    Ok(a.max(b.unwrap_or(0.0)))
}

/// The 3×3 convolutions `layers` times: name, input channels, map size, output channels,
/// stride.
const LAYERS: &[(&str, usize, usize, usize, usize)] = &[
    ("ResNet-50 stage 1", 64, 56, 64, 1),
    ("ResNet-50 stage 2, first", 128, 56, 128, 2),
    ("ResNet-50 stage 2", 128, 28, 128, 1),
    ("ResNet-50 stage 3, first", 256, 28, 256, 2),
    ("ResNet-50 stage 3", 256, 14, 256, 1),
    ("ResNet-50 stage 4, first", 512, 14, 512, 2),
    ("ResNet-50 stage 4", 512, 7, 512, 1),
    ("VGG-16 conv1_2", 64, 224, 64, 1),
    ("VGG-16 conv2_2", 128, 112, 128, 1),
    ("VGG-16 conv3_2", 256, 56, 256, 1),
    ("VGG-16 conv4_2", 512, 28, 512, 1),
    ("VGG-16 conv5_2", 512, 14, 512, 1),
    ("AlexNet conv3", 192, 13, 384, 1),
    ("AlexNet conv4", 384, 13, 256, 1),
    ("AlexNet conv5", 256, 13, 256, 1),
];

/// Per-layer times of the direct and the default kernel, medians over the rounds.
fn layers(env: &Env, o: &Options) -> Result<()> {
    let seconds = (o.seconds / 4.0).to_string();
    let mut runs = Vec::new();
    for _ in 0..o.rounds {
        let v = measure(env.worker(&["layers", &seconds], 1))?;
        let ms: Vec<(f64, f64)> = v
            .as_array()
            .context("layers: expected a list")?
            .iter()
            .map(|l| Ok((field(l, "direct_ms")?, field(l, "default_ms")?)))
            .collect::<Result<_>>()?;
        runs.push(ms);
    }
    println!(
        "3×3 convolutions, one image, 1 thread, f32, with bias and ReLU (a folded \
         BatchNorm's shape), median of {} rounds\n",
        o.rounds
    );
    println!(
        "| layer | C → O | map | stride | direct ms | default ms | direct GFLOP/s | default GFLOP/s | speed-up |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, &(name, c, h, out, s)) in LAYERS.iter().enumerate() {
        let direct = median(&runs.iter().map(|r| r[i].0).collect::<Vec<_>>());
        let fast = median(&runs.iter().map(|r| r[i].1).collect::<Vec<_>>());
        let oh = (h + 2 - 3) / s + 1;
        let gflop = 2.0 * (out * c * 9 * oh * oh) as f64 / 1e9;
        println!(
            "| {name} | {c} → {out} | {h}×{h} | {s} | {direct:.3} | {fast:.3} | {:.0} | {:.0} | {:.2}× |",
            gflop / direct * 1e3,
            gflop / fast * 1e3,
            direct / fast
        );
    }
    println!();
    Ok(())
}

/// The worker side of `layers`: each layer's direct and default kernel, alternately.
fn layer_times(seconds: f64) -> Result<serde_json::Value> {
    let dev = Device::Cpu;
    let mut rows = Vec::new();
    for &(_, c, h, o, s) in LAYERS {
        let weight = Tensor::randn(0f32, 0.05, (o, c, 3, 3), &dev)?;
        let bias = Tensor::randn(0f32, 0.05, o, &dev)?;
        let cfg = Conv2dConfig::new(3).stride(s).padding(1);
        let fast = Conv2d::from_parts(weight, Some(bias), cfg);
        let direct = fast.clone().without_winograd();
        let x = Tensor::randn(0f32, 1.0, (1, c, h, h), &dev)?;
        let (mut d, mut f) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            for (conv, times) in [(&direct, &mut d), (&fast, &mut f)] {
                let calls = rate(seconds / 3.0, || {
                    conv.forward_act(&x, Activation::Relu)?;
                    Ok(())
                })?;
                times.push(1e3 / calls);
            }
        }
        rows.push(serde_json::json!({ "direct_ms": median(&d), "default_ms": median(&f) }));
    }
    Ok(serde_json::Value::Array(rows))
}

fn infer(env: &Env, o: &Options, limit: Option<f64>) -> Result<()> {
    let threads = o.threads.as_ref().map_or(2, |t| t[0]);
    let batch = o.batch.unwrap_or(16);
    let models = o
        .models
        .clone()
        .unwrap_or_else(|| INFER_MODELS.iter().map(|s| s.to_string()).collect());
    let mut impls: Vec<&str> = o
        .impls
        .iter()
        .map(String::as_str)
        .filter(|i| match *i {
            "convnets" => true,
            "ort" => env.ort,
            _ => env.torch,
        })
        .collect();
    if o.baseline.is_some() {
        impls.insert(1, "before");
    }
    println!(
        "inference, batch {batch}, f32, {threads} threads, images/s (median of {} rounds)\n",
        o.rounds
    );
    let mut header = "| model |".to_string();
    for i in &impls {
        header += &format!(" {} |", impl_title(i));
    }
    if impls.contains(&"convnets") {
        for i in impls.iter().filter(|i| **i != "convnets") {
            header += &format!(" ÷ {} |", impl_title(i));
        }
    }
    let limit_col = limit.is_some() && env.torch;
    if limit_col {
        header += " GFLOP/img | limit |";
    }
    println!("{header}");
    println!("{}", "|---".repeat(header.matches('|').count() - 1) + "|");
    let seconds = o.seconds.to_string();
    let batch_s = batch.to_string();
    for model in &models {
        let mut results: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut gflops = None;
        for _ in 0..o.rounds {
            for &i in &impls {
                let args = ["infer", model, &batch_s, &seconds];
                let cmd = if i == "convnets" {
                    Some(env.worker(&args, threads))
                } else if i == "before" {
                    o.baseline
                        .as_ref()
                        .map(|b| env.worker_of(b, &args, threads))
                } else {
                    env.python(
                        "infer.py",
                        &[
                            "--model",
                            model,
                            "--impl",
                            i,
                            "--batch",
                            &batch_s,
                            "--seconds",
                            &seconds,
                        ],
                        threads,
                    )
                };
                let Some(cmd) = cmd else { continue };
                let v = measure(cmd)?;
                results
                    .entry(i)
                    .or_default()
                    .push(field(&v, "images_per_sec")?);
                if let Some(g) = v["gflops_per_image"].as_f64() {
                    gflops = Some(g);
                }
            }
        }
        let med: Vec<f64> = impls.iter().map(|i| median(&results[i])).collect();
        let mut row = format!("| {model} |");
        for m in &med {
            row += &format!(" {m:.1} |");
        }
        if impls.contains(&"convnets") {
            for (i, m) in impls.iter().zip(&med).filter(|(i, _)| **i != "convnets") {
                let _ = i;
                row += &format!(" {:.2}× |", med[0] / m);
            }
        }
        if limit_col {
            match (gflops, limit) {
                (Some(g), Some(l)) => row += &format!(" {g:.2} | {:.1} |", l / g),
                _ => row += " - | - |",
            }
        }
        println!("{row}");
    }
    if limit_col {
        println!(
            "\nlimit: images/s at the measured matrix-product rate, if every multiply-add of the \
             network ran at it (FLOPs counted by torch.utils.flop_counter)"
        );
    }
    println!();
    Ok(())
}

fn impl_title(i: &str) -> &'static str {
    match i {
        "convnets" => "convnets",
        "before" => "convnets before",
        "torch" => "PyTorch NCHW",
        "torch-cl" => "PyTorch channels_last",
        "ort" => "ONNX Runtime",
        _ => "?",
    }
}

fn train(env: &Env, o: &Options) -> Result<()> {
    let models = o
        .models
        .clone()
        .unwrap_or_else(|| TRAIN_MODELS.iter().map(|s| s.to_string()).collect());
    let threads = o.threads.clone().unwrap_or_else(|| vec![1, 2]);
    println!(
        "training steps (forward, loss, backward, SGD with momentum), f32, images/s \
         (median of {} rounds)\n",
        o.rounds
    );
    let before = o.baseline.as_ref();
    if before.is_some() {
        println!("| model | batch | threads | convnets before | convnets | PyTorch | ratio |");
        println!("|---|---|---|---|---|---|---|");
    } else {
        println!("| model | batch | threads | convnets | PyTorch | ratio |");
        println!("|---|---|---|---|---|---|");
    }
    let seconds = o.seconds.to_string();
    for model in &models {
        let batch = o
            .batch
            .unwrap_or(if model.starts_with("lenet") { 64 } else { 128 });
        let batch_s = batch.to_string();
        for &t in &threads {
            let (mut ours, mut theirs, mut earlier) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..o.rounds {
                let args = ["train", model, &batch_s, &seconds];
                if let Some(b) = before {
                    earlier.push(field(
                        &measure(env.worker_of(b, &args, t))?,
                        "images_per_sec",
                    )?);
                }
                ours.push(field(&measure(env.worker(&args, t))?, "images_per_sec")?);
                let args = ["--model", model, "--batch", &batch_s, "--seconds", &seconds];
                if let Some(cmd) = env.python("train.py", &args, t) {
                    theirs.push(field(&measure(cmd)?, "images_per_sec")?);
                }
            }
            let a = median(&ours);
            let before = if earlier.is_empty() {
                String::new()
            } else {
                format!(" {:.0} |", median(&earlier))
            };
            if theirs.is_empty() {
                println!("| {model} | {batch} | {t} |{before} {a:.0} | - | - |");
            } else {
                let b = median(&theirs);
                println!(
                    "| {model} | {batch} | {t} |{before} {a:.0} | {b:.0} | {:.2}× |",
                    a / b
                );
            }
        }
    }
    println!();
    Ok(())
}

/// The measuring side of `bench`, in its own process.
pub fn worker(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = match args.as_slice() {
        ["gemm"] => serde_json::json!({ "impl": "candle", "gflops": gemm_rate()? }),
        ["layers", seconds] => layer_times(seconds.parse()?)?,
        ["infer", model, batch, seconds] => {
            let ips = infer_rate(model, batch.parse()?, seconds.parse()?)?;
            serde_json::json!({ "impl": "convnets", "images_per_sec": ips })
        }
        ["train", model, batch, seconds] => {
            let ips = train_rate(model, batch.parse()?, seconds.parse()?)?;
            serde_json::json!({ "impl": "convnets", "images_per_sec": ips })
        }
        _ => bail!(
            "bench-worker gemm | layers <seconds> | infer <model> <batch> <seconds> | train <model> <batch> <seconds>"
        ),
    };
    println!("{v}");
    Ok(())
}

/// Runs `step` (after two warm-up calls) until `seconds` have passed and at least three
/// calls were timed; returns calls per second.
fn rate(seconds: f64, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    step()?;
    step()?;
    let (start, min) = (Instant::now(), Duration::from_secs_f64(seconds));
    let mut calls = 0;
    while calls < 3 || start.elapsed() < min {
        step()?;
        calls += 1;
    }
    Ok(calls as f64 / start.elapsed().as_secs_f64())
}

fn gemm_rate() -> Result<f64> {
    let n = 2048;
    let dev = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let calls = rate(1.0, || {
        a.matmul(&b)?;
        Ok(())
    })?;
    Ok(calls * 2.0 * (n * n * n) as f64 / 1e9)
}

/// Builds `model` with seeded random weights as plain tensors (as a checkpoint gives them:
/// nothing tracks gradients), BatchNorm folded, as one would deploy it.
fn inference_model(model: &str) -> Result<(Box<dyn Classifier>, usize)> {
    let dev = Device::Cpu;
    let build = |vb: VarBuilder<'_>| -> Result<(Box<dyn Classifier>, usize)> {
        Ok(match model {
            "resnet50" => (Box::new(ResNet::new(&ResNetConfig::resnet50(), vb)?), 224),
            "resnet101" => (Box::new(ResNet::new(&ResNetConfig::resnet101(), vb)?), 224),
            "resnet18" => (Box::new(ResNet::new(&ResNetConfig::resnet18(), vb)?), 224),
            "resnet152" => (Box::new(ResNet::new(&ResNetConfig::resnet152(), vb)?), 224),
            "wide_resnet50_2" => (
                Box::new(ResNet::new(&ResNetConfig::wide_resnet50_2(), vb)?),
                224,
            ),
            "resnext50_32x4d" => (
                Box::new(ResNet::new(&ResNetConfig::resnext50_32x4d(), vb)?),
                224,
            ),
            "vgg16" => (
                Box::new(convnets_vgg::Vgg::new(&convnets_vgg::VggConfig::d(), vb)?),
                224,
            ),
            "vgg16_bn" => (
                Box::new(convnets_vgg::Vgg::new(
                    &convnets_vgg::VggConfig::d().with_batch_norm(),
                    vb,
                )?),
                224,
            ),
            "alexnet" => (
                Box::new(convnets_alexnet::AlexNet::new(
                    &convnets_alexnet::AlexNetConfig::alexnet(),
                    vb,
                )?),
                224,
            ),
            "googlenet" => (
                Box::new(Inception::new(
                    GoogLeNetConfig::googlenet().with_aux_logits(false),
                    vb,
                )?),
                224,
            ),
            "inception_v3" => (
                Box::new(Inception::new(
                    InceptionV3Config::inception_v3().with_aux_logits(false),
                    vb,
                )?),
                299,
            ),
            "inception_v4" => (
                Box::new(Inception::new(InceptionV4Config::inception_v4(), vb)?),
                299,
            ),
            "inception_resnet_v2" => (
                Box::new(Inception::new(
                    InceptionResNetV2Config::inception_resnet_v2(),
                    vb,
                )?),
                299,
            ),
            other => {
                bail!("unknown model `{other}` (one of {INFER_MODELS:?} or {EXTRA_MODELS:?})")
            }
        })
    };
    let varmap = VarMap::new();
    build(convnets_core::init::var_builder(
        &varmap,
        0,
        DType::F32,
        &dev,
    ))?;
    let (mut net, size) = build(convnets_core::init::frozen(&varmap, DType::F32, &dev)?)?;
    net.fold_batch_norm()?;
    Ok((net, size))
}

fn infer_rate(model: &str, batch: usize, seconds: f64) -> Result<f64> {
    let (net, size) = inference_model(model)?;
    let x = Tensor::randn(0f32, 1.0, (batch, 3, size, size), &Device::Cpu)?;
    let calls = rate(seconds, || {
        net.forward_t(&x, false)?;
        Ok(())
    })?;
    Ok(calls * batch as f64)
}

fn train_rate(model: &str, batch: usize, seconds: f64) -> Result<f64> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = convnets_core::init::var_builder(&varmap, 0, DType::F32, &dev);
    let (net, criterion, input, classes, opt): (Box<dyn Classifier>, _, _, _, _) = match model {
        "lenet5-modern" | "lenet5-classic" => {
            let variant = &model["lenet5-".len()..];
            let criterion = if variant == "classic" {
                Criterion::LeCunMap { j: 10.0 }
            } else {
                Criterion::CROSS_ENTROPY
            };
            let net = LeNet5::new(&crate::train::lenet_config(variant)?, vb)?;
            (
                Box::new(net),
                criterion,
                (1, 32),
                10,
                OptimizerConfig::sgd(0.9, 0.0),
            )
        }
        "resnet20" | "resnet56" => {
            let cfg = if model == "resnet20" {
                ResNetConfig::resnet20()
            } else {
                ResNetConfig::resnet56()
            };
            (
                Box::new(ResNet::new(&cfg, vb)?),
                Criterion::CROSS_ENTROPY,
                (3, 32),
                10,
                OptimizerConfig::sgd(0.9, 1e-4),
            )
        }
        other => bail!("unknown model `{other}` (one of {TRAIN_MODELS:?})"),
    };
    let mut opt = opt.build(&varmap)?;
    let (c, s) = input;
    let x = Tensor::randn(0f32, 1.0, (batch, c, s, s), &dev)?;
    let y = Tensor::from_vec(
        (0..batch as u32).map(|i| i % classes).collect::<Vec<_>>(),
        batch,
        &dev,
    )?;
    let calls = rate(seconds, || {
        let out = net.forward_train(&x)?;
        let loss = criterion.loss(&out, &y)?;
        let grads = loss.backward()?;
        opt.step(&grads, 1e-3)?;
        Ok(())
    })?;
    Ok(calls * batch as f64)
}
