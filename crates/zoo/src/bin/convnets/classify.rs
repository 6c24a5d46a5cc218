//! `convnets classify IMAGE... --model ID`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use candle_nn::ops::softmax_last_dim;
use convnets::data::imagenet::CLASSES;
use convnets::data::{Transform, decode::decode};
use convnets::{Dataset, Fetcher, Model, architecture, weight};
use lexopt::prelude::*;
use serde::Serialize;

use crate::value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// One class of an image's top-k.
#[derive(Debug, Serialize)]
struct Guess {
    rank: usize,
    index: usize,
    synset: Option<&'static str>,
    name: String,
    probability: f32,
}

/// What `--format json` prints per image.
#[derive(Debug, Serialize)]
struct Classified {
    image: String,
    model: &'static str,
    top: Vec<Guess>,
    /// The full logits, so results can be compared with other tools.
    logits: Vec<f32>,
}

/// Images per forward pass.
const CHUNK: usize = 16;

pub fn run(args: &[String]) -> Result<()> {
    let mut parser = lexopt::Parser::from_args(args);
    let (mut images, mut model, mut weights) = (Vec::<PathBuf>::new(), None, None);
    let (mut top, mut format, mut device, mut offline) =
        (5usize, Format::Text, "cpu".to_string(), false);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("model") | Short('m') => model = Some(value(&mut parser, "model")?),
            Long("weights") => weights = Some(PathBuf::from(value(&mut parser, "weights")?)),
            Long("top") => {
                let v = value(&mut parser, "top")?;
                top = v
                    .parse()
                    .ok()
                    .filter(|&k| k > 0)
                    .with_context(|| format!("--top: `{v}` is not a positive number"))?;
            }
            Long("format") => {
                format = match value(&mut parser, "format")?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    other => bail!("--format: `{other}` is not text or json"),
                }
            }
            Long("device") => device = value(&mut parser, "device")?,
            Long("offline") => offline = true,
            Long("help") | Short('h') => {
                print!("{}", crate::USAGE);
                return Ok(());
            }
            Value(v) => images.push(v.into()),
            other => return Err(other.unexpected().into()),
        }
    }
    let id = model.context(
        "which model? --model ID, e.g. --model resnet50.tv_in1k (`convnets models` lists them)",
    )?;
    if images.is_empty() {
        bail!("no image to classify");
    }
    let spec = match weight(&id) {
        Ok(spec) => spec,
        Err(e) => match architecture(&id) {
            Ok(arch) => {
                let ids: Vec<_> = arch.weights().map(|w| w.id).collect();
                bail!(
                    "`{id}` is an architecture; give its weights: {}",
                    ids.join(", ")
                )
            }
            Err(_) => return Err(e.into()),
        },
    };
    let arch = architecture(spec.arch)?;
    if arch.family.dataset() != Dataset::ImageNet {
        bail!(
            "{id} classifies {} images, not photographs; `cargo xtask reproduce {}` evaluates it",
            arch.family.dataset().name(),
            arch.family
        );
    }
    let device = convnets::core::device::parse(&device)?;
    let model = match &weights {
        Some(file) => Model::from_file(spec, file, DType::F32, &device)?,
        None => {
            let mut fetcher = Fetcher::from_env().with_progress(true);
            if offline {
                fetcher = fetcher.with_offline(true);
            }
            Model::pretrained(spec, &fetcher.fetch(spec)?, DType::F32, &device)?
        }
    };
    let transform = Transform::new(spec.transform)?;
    let (h, w) = spec.transform.crop;

    let mut results = Vec::new();
    for chunk in images.chunks(CHUNK) {
        let mut pixels = Vec::with_capacity(chunk.len() * 3 * h * w);
        for path in chunk {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let img = decode(&bytes, &path.display().to_string())?;
            pixels.extend(transform.apply(&img));
        }
        let x =
            Tensor::from_vec(pixels, (chunk.len(), 3, h, w), &Device::Cpu)?.to_device(&device)?;
        let logits = model
            .forward_t(&x, false)?
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?;
        let probs: Vec<Vec<f32>> = softmax_last_dim(&logits)?.to_vec2()?;
        for ((path, logits), probs) in chunk.iter().zip(logits.to_vec2::<f32>()?).zip(probs) {
            results.push(Classified {
                image: path.display().to_string(),
                model: spec.id,
                top: top_k(&probs, top),
                logits,
            });
        }
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Format::Text => {
            for r in &results {
                println!("{}", r.image);
                for g in &r.top {
                    let id = g.synset.map_or_else(
                        || format!("class {}", g.index),
                        |s| format!("{s}, {}", g.index),
                    );
                    println!(
                        "  {:>2}. {:>6.2}%  {}  ({id})",
                        g.rank,
                        100.0 * g.probability,
                        g.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// The `k` most probable classes, most probable first (ties to the lower index).
fn top_k(probs: &[f32], k: usize) -> Vec<Guess> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let imagenet = probs.len() == 1000;
    order
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(rank, index)| {
            let class = imagenet.then(|| CLASSES.get(index)).flatten();
            Guess {
                rank: rank + 1,
                index,
                synset: class.map(|c| c.synset),
                name: class.map_or_else(|| format!("class {index}"), |c| c.lemmas.to_string()),
                probability: probs[index],
            }
        })
        .collect()
}
