//! The weights tables (`crates/{alexnet,vgg,inception,resnet}/src/weights.rs`) restate numbers
//! published elsewhere: torchvision's weight metadata and eval transforms, timm's
//! `pretrained_cfg` and its results table. They are typed by hand, so every row is compared
//! here with `tests/parity/fixtures/published.json`, which `tests/parity/published.py` writes
//! from those sources (`cargo xtask fixtures published`): accuracies to the published digit,
//! parameter counts, and the eval transform the accuracy was measured with.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use anyhow::{Context, Result};
use convnets_core::spec::{
    Accuracy, ChannelOrder, Interpolation, PixelRange, Protocol, Resize, WeightSource, WeightSpec,
};
use convnets_workspace_tests::root;
use serde::Deserialize;

const PATH: &str = "tests/parity/fixtures/published.json";

/// Each family's table, with the reference module that registers its rows.
const FAMILIES: &[(&str, &[WeightSpec])] = &[
    ("alexnet", convnets_alexnet::weights::WEIGHTS),
    ("vgg", convnets_vgg::weights::WEIGHTS),
    ("inception", convnets_inception::weights::WEIGHTS),
    ("resnet", convnets_resnet::weights::WEIGHTS),
];

#[derive(Debug, Deserialize)]
struct Published {
    timm_results: TimmResults,
    weights: BTreeMap<String, Entry>,
}

/// Where timm's results table was quoted from.
#[derive(Debug, Deserialize)]
struct TimmResults {
    commit: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
enum Entry {
    Torchvision(TorchvisionEntry),
    Timm(TimmEntry),
}

/// A torchvision weights enum entry: its `meta`, URL and `transforms()`.
#[derive(Debug, Deserialize)]
struct TorchvisionEntry {
    /// `Enum.MEMBER`.
    weights: String,
    url: String,
    num_params: usize,
    num_classes: usize,
    top1: f64,
    top5: f64,
    resize: usize,
    crop: usize,
    interpolation: String,
    mean: [f64; 3],
    std: [f64; 3],
}

/// A timm weights tag: its `pretrained_cfg`, parameter count and results-table row.
#[derive(Debug, Deserialize)]
struct TimmEntry {
    num_params: usize,
    pretrained_cfg: PretrainedCfg,
    results: ResultsRow,
}

#[derive(Debug, Deserialize)]
struct PretrainedCfg {
    input_size: [usize; 3],
    test_input_size: Option<[usize; 3]>,
    crop_pct: f64,
    test_crop_pct: Option<f64>,
    interpolation: String,
    mean: [f64; 3],
    std: [f64; 3],
    num_classes: usize,
}

/// A row of timm's `results/results-imagenet.csv`, quoted verbatim and parsed.
#[derive(Debug, Deserialize)]
struct ResultsRow {
    row: String,
    top1: f64,
    top5: f64,
    /// Millions, to two decimals.
    param_count_m: f64,
    img_size: usize,
    /// To three decimals.
    crop_pct: f64,
    interpolation: String,
}

fn published() -> Result<Published> {
    let path = root().join(PATH);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: run `cargo xtask fixtures published`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The disagreements found for one row, each naming the row and what differs.
struct Disagreements<'a> {
    id: &'a str,
    found: Vec<String>,
}

impl<'a> Disagreements<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            id,
            found: Vec::new(),
        }
    }

    fn equal<T: PartialEq + Debug>(&mut self, what: &str, table: T, published: T) {
        if table != published {
            self.found.push(format!(
                "{}: {what} is {table:?} in weights.rs but {published:?} where it is published",
                self.id
            ));
        }
    }

    fn holds(&mut self, what: &str, ok: bool) {
        if !ok {
            self.found.push(format!("{}: {what}", self.id));
        }
    }
}

fn interpolation(i: Interpolation) -> &'static str {
    match i {
        Interpolation::Nearest => "nearest",
        Interpolation::Bilinear => "bilinear",
        Interpolation::Bicubic => "bicubic",
    }
}

fn f32s(v: [f64; 3]) -> [f32; 3] {
    v.map(|x| x as f32)
}

/// The row's single-crop ImageNet accuracy, the one its source publishes.
fn single_crop<'w>(d: &mut Disagreements<'_>, w: &'w WeightSpec) -> Option<&'w Accuracy> {
    let rows: Vec<&Accuracy> = w
        .accuracy
        .iter()
        .filter(|a| a.dataset == "imagenet-1k val" && a.protocol == Protocol::SingleCrop)
        .collect();
    d.holds(
        &format!(
            "has {} single-crop imagenet-1k val accuracies, not 1",
            rows.len()
        ),
        rows.len() == 1,
    );
    rows.first().copied()
}

fn compare_torchvision(d: &mut Disagreements<'_>, w: &WeightSpec, tv: &TorchvisionEntry) {
    if let Some(a) = single_crop(d, w) {
        d.equal("top-1", a.top1, Some(tv.top1));
        d.equal("top-5", a.top5, Some(tv.top5));
        d.holds(
            &format!(
                "the accuracy's source `{}` does not name {}",
                a.source, tv.weights
            ),
            a.source.contains(&format!("{} ", tv.weights)) || a.source.ends_with(&tv.weights),
        );
    }
    d.equal("num_params", w.num_params, tv.num_params);
    d.equal("num_classes", w.num_classes, tv.num_classes);
    let t = &w.transform;
    d.equal("resize", t.resize_shorter_side(), Some(tv.resize));
    d.equal("crop", t.crop, (tv.crop, tv.crop));
    d.equal(
        "interpolation",
        interpolation(t.interpolation),
        tv.interpolation.as_str(),
    );
    d.equal("mean", t.mean, f32s(tv.mean));
    d.equal("std", t.std, f32s(tv.std));
    // torchvision's ImageClassification: RGB tensors in [0, 1].
    d.equal("pixel range", t.pixel_range, PixelRange::Unit);
    d.equal("channel order", t.channels, ChannelOrder::Rgb);
    if let WeightSource::Url { url } = w.source {
        d.equal("url", url, tv.url.as_str());
        if let Some(prefix) = w.sha256 {
            d.holds(
                &format!("sha256 prefix {prefix} is not in {}", tv.url),
                tv.url.contains(&format!("-{prefix}.")),
            );
        }
    }
}

fn compare_timm(d: &mut Disagreements<'_>, w: &WeightSpec, timm: &TimmEntry, commit: &str) {
    let (cfg, row) = (&timm.pretrained_cfg, &timm.results);
    if let Some(a) = single_crop(d, w) {
        d.equal("top-1", a.top1, Some(row.top1));
        d.equal("top-5", a.top5, Some(row.top5));
        // A short commit in the published file is named whole (and then not found).
        let short = commit.get(..8).unwrap_or(commit);
        d.holds(
            &format!(
                "the accuracy's source `{}` does not name the results table's commit {}",
                a.source, short
            ),
            a.source.contains("results-imagenet.csv") && a.source.contains(short),
        );
    }
    d.equal("num_params", w.num_params, timm.num_params);
    d.equal(
        "num_params in millions, as the results table rounds it",
        format!("{:.2}", w.num_params as f64 / 1e6),
        format!("{:.2}", row.param_count_m),
    );
    d.equal("num_classes", w.num_classes, cfg.num_classes);
    // The accuracy was measured with the test-time config where timm has one.
    let size = cfg.test_input_size.unwrap_or(cfg.input_size);
    let crop_pct = cfg.test_crop_pct.unwrap_or(cfg.crop_pct);
    let t = &w.transform;
    d.equal("crop", t.crop, (size[1], size[2]));
    d.equal("crop in the results table", t.crop.0, row.img_size);
    d.equal("resize", t.resize, Resize::CropPct(crop_pct));
    if let Resize::CropPct(pct) = t.resize {
        d.equal(
            "crop_pct in the results table (three decimals)",
            format!("{pct:.3}"),
            format!("{:.3}", row.crop_pct),
        );
    }
    d.equal(
        "interpolation",
        interpolation(t.interpolation),
        cfg.interpolation.as_str(),
    );
    d.equal(
        "interpolation in the results table",
        interpolation(t.interpolation),
        row.interpolation.as_str(),
    );
    d.equal("mean", t.mean, f32s(cfg.mean));
    d.equal("std", t.std, f32s(cfg.std));
    d.equal("pixel range", t.pixel_range, PixelRange::Unit);
    d.equal("channel order", t.channels, ChannelOrder::Rgb);
    d.holds(
        &format!("the quoted results row `{}` is not this row's", row.row),
        row.row.starts_with(&format!("{},", w.id)),
    );
}

/// Every disagreement between `w` and what `published` holds for it.
fn disagreements(family: &str, w: &WeightSpec, published: &Published) -> Vec<String> {
    let mut d = Disagreements::new(w.id);
    match published.weights.get(w.id) {
        None => d.found.push(format!(
            "{}: not in {PATH}; register it in tests/parity/ref_{family}.py and run `cargo \
             xtask fixtures published`",
            w.id
        )),
        Some(Entry::Torchvision(tv)) => compare_torchvision(&mut d, w, tv),
        Some(Entry::Timm(timm)) => compare_timm(&mut d, w, timm, &published.timm_results.commit),
    }
    d.found
}

#[test]
fn every_weights_row_restates_its_published_numbers() -> Result<()> {
    let published = published()?;
    let mut found = Vec::new();
    let mut ids = BTreeSet::new();
    for (family, weights) in FAMILIES {
        for w in *weights {
            ids.insert(w.id);
            found.extend(disagreements(family, w, &published));
        }
    }
    for id in published.weights.keys() {
        if !ids.contains(id.as_str()) {
            found.push(format!("{id}: in {PATH} but in no weights table"));
        }
    }
    assert!(
        found.is_empty(),
        "{} disagreement(s) with the published numbers:\n{}",
        found.len(),
        found.join("\n")
    );
    eprintln!("{} weights rows agree with {PATH}", ids.len());
    Ok(())
}

/// The comparison notices one wrong digit in any of the fields it checks, for a torchvision
/// row and a timm row alike.
#[test]
fn one_wrong_digit_is_a_disagreement() -> Result<()> {
    let published = published()?;
    let find = |id: &str| {
        FAMILIES
            .iter()
            .flat_map(|(family, weights)| weights.iter().map(move |w| (*family, *w)))
            .find(|(_, w)| w.id == id)
            .with_context(|| format!("{id} is in no table"))
    };
    for id in ["resnet50.tv2_in1k", "inception_resnet_v2.tf_in1k"] {
        let (family, w) = find(id)?;
        assert!(disagreements(family, &w, &published).is_empty(), "{id}");
        let accuracy = w.accuracy[0];
        let top1 = accuracy.top1.map(|v| v + 0.001);
        // Each changed field, and the name its disagreement must give.
        let variants = [
            (
                "top-1",
                WeightSpec {
                    accuracy: Box::leak(Box::new([Accuracy { top1, ..accuracy }])),
                    ..w
                },
            ),
            (
                "num_params",
                WeightSpec {
                    num_params: w.num_params + 1,
                    ..w
                },
            ),
            (
                "interpolation",
                WeightSpec {
                    transform: w.transform.interpolation(Interpolation::Nearest),
                    ..w
                },
            ),
            (
                "crop",
                WeightSpec {
                    transform: convnets_core::spec::EvalTransform {
                        crop: (w.transform.crop.0 + 1, w.transform.crop.1 + 1),
                        ..w.transform
                    },
                    ..w
                },
            ),
        ];
        for (field, v) in &variants {
            let found = disagreements(family, v, &published);
            let named = format!("{id}: {field} is ");
            assert!(
                found.iter().any(|f| f.starts_with(&named)),
                "{id}: changing {field} is not reported as such: {found:?}"
            );
            assert!(found.iter().all(|f| f.starts_with(id)), "{found:?}");
        }
    }
    Ok(())
}
