//! Running a model over a validation set under one protocol, counting top-1 and top-5 with
//! the accumulator training uses (`convnets_train::metrics::TopK`).

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use candle_nn::ops::softmax_last_dim;
use convnets::Model;
use convnets::core::spec::{EvalTransform, Resize, WeightSpec};
use convnets::data::cifar::CifarSplit;
use convnets::data::imagenet::ImageNetVal;
use convnets::data::loader::{Loader, LoaderConfig, Skipped};
use convnets::data::mnist::Mnist;
use convnets::data::{Transform, Views};
use convnets_train::metrics::TopK;
use indicatif::{ProgressBar, ProgressStyle};

use super::options::Protocol;

/// What an evaluation measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub accuracy: TopK,
    pub seconds: f64,
    /// The images left out as unreadable (`--skip-unreadable`), not in `accuracy`.
    pub skipped: Vec<Skipped>,
}

impl Measured {
    pub fn images_per_sec(&self) -> f64 {
        self.accuracy.n as f64 / self.seconds.max(1e-9)
    }
}

/// How images are fed to the model.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub device: &'a Device,
    pub batch_size: usize,
    pub workers: usize,
    /// Leave unreadable images out (listed in [`Measured::skipped`]) instead of failing.
    pub skip_unreadable: bool,
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>28} {wide_bar} {pos}/{len} images, {per_sec}, {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// ImageNet validation under `protocol`, with the weights' own eval transform.
pub fn imagenet(
    model: &Model,
    spec: &WeightSpec,
    val: &ImageNetVal,
    protocol: Protocol,
    scales: &[usize],
    run: Run<'_>,
) -> Result<Measured> {
    let start = Instant::now();
    let bar = progress(val.len(), spec.id);
    let (accuracy, skipped) = match protocol {
        Protocol::Single | Protocol::TenCrop => {
            let views = if protocol == Protocol::Single {
                Views::CenterCrop
            } else {
                Views::TenCrop
            };
            let mut accuracy = TopK::default();
            let mut batches = loader(val, spec.transform, views, run.batch_size, run)?;
            for batch in batches.by_ref() {
                let batch = batch?;
                let scores = match views {
                    Views::TenCrop => ten_crop_scores(model, &batch.images, run.device)?,
                    _ => model.forward_t(&batch.images.to_device(run.device)?, false)?,
                };
                accuracy.update(&scores, &batch.labels)?;
                bar.inc(batch.names.len() as u64);
            }
            (accuracy, batches.skipped().to_vec())
        }
        Protocol::MultiScale => multi_scale(model, spec, val, scales, run, &bar)?,
    };
    bar.finish_and_clear();
    ensure!(accuracy.n > 0, "no image was evaluated");
    Ok(Measured {
        accuracy,
        seconds: start.elapsed().as_secs_f64(),
        skipped,
    })
}

fn loader(
    val: &ImageNetVal,
    transform: EvalTransform,
    views: Views,
    batch_size: usize,
    run: Run<'_>,
) -> Result<Loader> {
    let config = LoaderConfig {
        batch_size,
        workers: run.workers,
        prefetch: (4 * batch_size).max(2 * run.workers),
        skip_unreadable: run.skip_unreadable,
        views,
    };
    Ok(Loader::new(
        val.items(),
        Transform::new(transform)?,
        config,
    )?)
}

/// Krizhevsky et al.'s ten views: the softmax posteriors of the four corners, the centre and
/// their mirror images, averaged.
fn ten_crop_scores(model: &Model, images: &Tensor, device: &Device) -> Result<Tensor> {
    let (n, views, c, h, w) = images.dims5()?;
    let logits = model.forward_t(
        &images.reshape((n * views, c, h, w))?.to_device(device)?,
        false,
    )?;
    let posteriors = softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
    Ok(posteriors.reshape((n, views, ()))?.mean(1)?)
}

/// Dense evaluation at each shorter side in `scales`, of the image and its mirror image: the
/// softmax of each pass's spatially averaged class scores, averaged over the passes
/// (Simonyan & Zisserman 2015 §3.2; He et al. 2015 §3.4). An unreadable image is
/// unreadable at every scale: the passes skip the same images.
fn multi_scale(
    model: &Model,
    spec: &WeightSpec,
    val: &ImageNetVal,
    scales: &[usize],
    run: Run<'_>,
    bar: &ProgressBar,
) -> Result<(TopK, Vec<Skipped>)> {
    ensure!(
        !scales.is_empty(),
        "multi-scale evaluation needs at least one scale"
    );
    bar.set_length((val.len() * scales.len()) as u64);
    // The first pass's images, in order: every later pass must see the same.
    let mut names: Vec<String> = Vec::with_capacity(val.len());
    let mut sums: Vec<Tensor> = Vec::with_capacity(val.len());
    let mut labels: Vec<u32> = Vec::with_capacity(val.len());
    let mut skipped = Vec::new();
    let first = scales[0];
    for (pass, &q) in scales.iter().enumerate() {
        let transform = EvalTransform {
            resize: Resize::ShorterSide(q),
            ..spec.transform
        };
        // Whole images differ in shape: one per batch.
        let mut batches = loader(val, transform, Views::Full, 1, run)?;
        let mut seen = 0;
        for batch in batches.by_ref() {
            let batch = batch?;
            let name = batch.names.first().context("an empty batch")?;
            let x = batch.images.to_device(run.device)?;
            let both = Tensor::cat(&[&x, &x.flip(&[3])?], 0)?;
            let scores = softmax_last_dim(&model.forward_dense(&both)?.to_dtype(DType::F32)?)?
                .sum_keepdim(0)?
                .to_device(&Device::Cpu)?;
            if pass == 0 {
                names.push(name.clone());
                sums.push(scores);
                labels.extend(batch.labels.to_vec1::<u32>()?);
            } else {
                ensure!(
                    names.get(seen) == Some(name),
                    "the passes saw different images: image {} of the pass at shorter side \
                     {q} is {name}, of the pass at {first} {}",
                    seen + 1,
                    names
                        .get(seen)
                        .map_or("none (it saw fewer)", String::as_str)
                );
                sums[seen] = (&sums[seen] + scores)?;
            }
            seen += 1;
            bar.inc(1);
        }
        if pass == 0 {
            skipped = batches.skipped().to_vec();
            continue;
        }
        ensure!(
            seen == names.len(),
            "the passes saw different images: the pass at shorter side {q} saw {seen}, the \
             pass at {first} {}; the first one missing is {}",
            names.len(),
            names.get(seen).map_or("", String::as_str)
        );
        let differ = skipped_differently(&skipped, batches.skipped());
        ensure!(
            differ.is_empty(),
            "the passes skipped different images (shorter side {first}, then {q}): {differ}"
        );
    }
    let n = labels.len();
    let mut accuracy = TopK::default();
    accuracy.update(
        &Tensor::cat(&sums, 0)?,
        &Tensor::from_vec(labels, n, &Device::Cpu)?,
    )?;
    Ok((accuracy, skipped))
}

/// What two passes' skips disagree on, by image name; empty when they agree.
fn skipped_differently(first: &[Skipped], later: &[Skipped]) -> String {
    let only = |a: &[Skipped], b: &[Skipped]| -> Vec<String> {
        a.iter()
            .filter(|s| !b.iter().any(|t| t.name == s.name))
            .map(|s| s.name.clone())
            .collect()
    };
    let mut parts = Vec::new();
    let first_only = only(first, later);
    if !first_only.is_empty() {
        parts.push(format!("only the first skipped {}", first_only.join(", ")));
    }
    let later_only = only(later, first);
    if !later_only.is_empty() {
        parts.push(format!("only the later skipped {}", later_only.join(", ")));
    }
    parts.join("; ")
}

/// The CIFAR-10 test images of `test` (read from `source`, which messages name),
/// normalised with the weights' mean and std, at 32×32 as they are.
pub fn cifar10(
    model: &Model,
    spec: &WeightSpec,
    test: &CifarSplit,
    source: &str,
    run: Run<'_>,
) -> Result<Measured> {
    let channel = |v: [f32; 3]| Tensor::from_vec(v.to_vec(), (1, 3, 1, 1), &Device::Cpu);
    let (mean, std) = (channel(spec.transform.mean)?, channel(spec.transform.std)?);
    let images = test
        .images_tensor(&Device::Cpu)?
        .broadcast_sub(&mean)?
        .broadcast_div(&std)?;
    let labels = test.labels_tensor(&Device::Cpu)?;
    in_memory(model, &images, &labels, spec.id, run)
        .with_context(|| format!("evaluating {} on {source}", spec.id))
}

/// The shipped MNIST test set (or `limit` digits spread evenly over it), in the paper's
/// input convention (`convnets_lenet::paper_input`).
pub fn mnist(model: &Model, id: &str, limit: Option<usize>, run: Run<'_>) -> Result<Measured> {
    let mut test = Mnist::bundled()?.test;
    if let Some(n) = limit {
        test = test.evenly_spaced(n);
    }
    let images = convnets::lenet::paper_input(&test.images_tensor(&Device::Cpu)?)?;
    let labels = test.labels_tensor(&Device::Cpu)?;
    in_memory(model, &images, &labels, id, run)
        .with_context(|| format!("evaluating {id} on the shipped MNIST test set"))
}

/// A small dataset held whole in memory, already normalised: batches of `images` through
/// the model, counted against `labels`. The time is the model's alone (the set was read and
/// checked whole before, so nothing is skipped).
fn in_memory(
    model: &Model,
    images: &Tensor,
    labels: &Tensor,
    id: &str,
    run: Run<'_>,
) -> Result<Measured> {
    let start = Instant::now();
    let n = labels.dim(0)?;
    let bar = progress(n, id);
    let mut accuracy = TopK::default();
    for at in (0..n).step_by(run.batch_size) {
        let len = run.batch_size.min(n - at);
        let x = images.narrow(0, at, len)?.to_device(run.device)?;
        accuracy.update(&model.forward_t(&x, false)?, &labels.narrow(0, at, len)?)?;
        bar.inc(len as u64);
    }
    bar.finish_and_clear();
    ensure!(accuracy.n > 0, "no image was evaluated: the set is empty");
    Ok(Measured {
        accuracy,
        seconds: start.elapsed().as_secs_f64(),
        skipped: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_that_skip_differently_are_told_apart_by_name() {
        let skip = |names: &[&str]| -> Vec<Skipped> {
            names
                .iter()
                .map(|n| Skipped {
                    name: n.to_string(),
                    reason: "cannot decode".into(),
                })
                .collect()
        };
        let first = skip(&["val/a.JPEG", "val/b.JPEG"]);
        assert_eq!(skipped_differently(&first, &first), "");
        assert_eq!(
            skipped_differently(&first, &skip(&["val/b.JPEG", "val/c.JPEG"])),
            "only the first skipped val/a.JPEG; only the later skipped val/c.JPEG"
        );
        assert_eq!(
            skipped_differently(&[], &skip(&["val/c.JPEG"])),
            "only the later skipped val/c.JPEG"
        );
    }
}
