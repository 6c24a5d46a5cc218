//! `cargo xtask reproduce <family | architecture | weights id | all>`: evaluates pretrained
//! weights and prints the ILSVRC-style table, measured beside published.
//!
//! Everything is resolved before anything is evaluated, so a run that cannot complete fails
//! in seconds: the options and the protocol checked against every model, the dataset found
//! and listed, every weights file fetched (or found in the cache, with `--offline`) and checked against
//! its sha256. Then each model is loaded strictly and evaluated; the table goes to stdout
//! as Markdown and to `--out` as Markdown, CSV and JSON. A complete run whose top-1 falls
//! below the weights' own published number by more than `--tolerance` fails the command
//! (after the table is written): that is CI's regression check on LeNet-5.

mod evaluate;
mod options;
mod report;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use candle_core::DType;
use convnets::core::spec::{
    EvalTransform, PaperResult, Protocol as Measure, WeightSource, WeightSpec,
};
use convnets::data::cifar::{Cifar, CifarSplit};
use convnets::data::hub::HubCache;
use convnets::data::imagenet::{DevkitIds, ImageNetVal};
use convnets::{
    Architecture, Dataset, Family, Fetched, Fetcher, Model, Structure, architecture, weight,
};
use convnets_train::Outcome;

use evaluate::{Measured, Run};
use options::{Options, Protocol, USAGE};
use report::{Kind, Reference, Report, Row, RunInfo, Skipped};

/// The workspace root (the weights of `WeightSource::Repository` rows are under it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub fn run(args: &[String]) -> Result<()> {
    let Some(opts) = Options::parse(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    if let Some(n) = opts.threads {
        limit_threads(n);
    }
    let plan = Plan::new(&opts.what)?.with_user_weights(&opts)?;
    ensure!(
        !plan.targets.is_empty() || !plan.papers.is_empty(),
        "`{}` has neither pretrained weights in the zoo nor a published result to show (a \
         checkpoint of one's own can be given with --weights FILE)",
        opts.what
    );
    // Everything a run needs, before the first image: options, data, protocol, weights.
    plan.check_protocol(opts.protocol)?;
    plan.check_options_apply(&opts)?;
    let device = convnets::core::device::parse(&opts.device)?;
    let imagenet = if plan.needs(Dataset::ImageNet) {
        Some(imagenet(&opts)?)
    } else {
        None
    };
    let cifar10 = if plan.needs(Dataset::Cifar10) {
        Some(cifar10(&opts)?)
    } else {
        None
    };
    let scales = plan.scales(&opts)?;
    let fetched = plan.fetch(&opts)?;

    let workers = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let run = Run {
        device: &device,
        batch_size: opts.batch_size,
        workers,
        skip_unreadable: opts.skip_unreadable,
    };
    let mut rows = Vec::new();
    for family in Family::ALL {
        for (spec, weights) in plan.targets.iter().zip(&fetched) {
            if convnets::registry::family_of(spec.arch) != Some(family) {
                continue;
            }
            let data = Sets {
                imagenet: imagenet.as_ref().map(|(_, val)| val),
                cifar10: cifar10.as_ref(),
            };
            rows.push(measure(spec, weights, &opts, data, &scales, run)?);
        }
        for r in plan
            .papers
            .iter()
            .filter(|r| convnets::registry::family_of(r.arch) == Some(family))
        {
            rows.push(Row::paper(r.arch, r.label, &r.accuracy));
        }
    }

    let report = Report {
        run: RunInfo {
            what: opts.what.clone(),
            protocol: opts.protocol.name().to_string(),
            // Each row's protocol names the scales it was evaluated at.
            scales: opts.scales.clone(),
            limit: opts.limit,
            date: report::utc_now(),
            machine: report::machine(),
            device: opts.device.clone(),
            threads: workers,
            batch_size: opts.batch_size,
            convnets: env!("CARGO_PKG_VERSION").to_string(),
            commit: git_commit(),
            imagenet: imagenet.map(|(dir, _)| dir),
        },
        rows,
        note: plan
            .targets
            .is_empty()
            .then(|| plan.nothing_to_measure(&opts.what)),
    };
    print!("{}", report.markdown());
    let mut stem = format!("reproduce-{}-{}", opts.what, opts.protocol.name());
    if let Some(n) = opts.limit {
        stem += &format!("-limit{n}");
    }
    for path in report.write(&opts.out, &stem)? {
        tracing::info!("wrote {}", path.display());
    }
    let regressions = report.regressions(opts.tolerance);
    ensure!(
        regressions.is_empty(),
        "accuracy regressed:\n  {}",
        regressions.join("\n  ")
    );
    Ok(())
}

/// What a selection evaluates and which published rows go beside it.
struct Plan {
    targets: Vec<&'static WeightSpec>,
    papers: Vec<&'static PaperResult>,
}

impl Plan {
    fn new(what: &str) -> Result<Self> {
        if what == "all" {
            return Ok(Self {
                targets: convnets::weights().collect(),
                papers: convnets::paper_results().collect(),
            });
        }
        let (targets, papers): (Vec<_>, Vec<_>) = if let Some(family) = Family::from_name(what) {
            (family.weights().collect(), family.paper_results().collect())
        } else if let Ok(spec) = weight(what) {
            let arch = architecture(spec.arch)?;
            (vec![spec], arch.paper_results().collect())
        } else if let Ok(arch) = architecture(what) {
            (arch.weights().collect(), arch.paper_results().collect())
        } else {
            let families: Vec<_> = Family::ALL.iter().map(|f| f.name()).collect();
            bail!(
                "`{what}` is neither a family ({}), an architecture, a weights id nor `all` \
                     (`cargo run -p convnets -- models` lists them)",
                families.join(", ")
            )
        };
        Ok(Self { targets, papers })
    }

    /// `--weights FILE`: the selection's one set of weights evaluated from FILE, or, for a
    /// CIFAR architecture (which the zoo has no weights for), a row made for the file.
    fn with_user_weights(mut self, opts: &Options) -> Result<Self> {
        let Some(file) = &opts.weights else {
            return Ok(self);
        };
        ensure!(file.is_file(), "--weights {}: no such file", file.display());
        if let [spec] = self.targets[..] {
            ensure!(
                opts.mean.is_none() && opts.std.is_none(),
                "--mean and --std are for a CIFAR architecture's checkpoint; {} brings its own \
                 transform",
                spec.id
            );
            return Ok(self);
        }
        let ids: Vec<&str> = self.targets.iter().map(|s| s.id).collect();
        ensure!(
            ids.is_empty(),
            "--weights evaluates one checkpoint, and `{}` has {} sets of weights ({}): select \
             the weights id whose transform and key map the file follows",
            opts.what,
            ids.len(),
            ids.join(", ")
        );
        let arch = architecture(&opts.what)
            .ok()
            .filter(|a| a.family == Family::ResNetCifar)
            .with_context(|| {
                format!(
                    "--weights with `{}`: select a weights id, or a CIFAR architecture (the \
                     resnet-cifar family)",
                    opts.what
                )
            })?;
        self.targets = vec![cifar_spec(arch, file, opts)?];
        Ok(self)
    }

    /// What a user of a selection without weights can do to measure it, for the note under
    /// its table of published rows.
    fn nothing_to_measure(&self, what: &str) -> String {
        let cifar = self
            .papers
            .iter()
            .any(|r| r.accuracy.dataset == Dataset::Cifar10.name());
        let how = if cifar {
            "train one (the zoo builds every architecture listed; `convnets-train` trains it), \
             or take a PyTorch CIFAR ResNet checkpoint, and run `cargo xtask reproduce resnet20 \
             --cifar10 PATH --weights FILE` (with the architecture's name, and --mean/--std if \
             FILE was not trained on CIFAR-10's own statistics)"
        } else {
            "convert a checkpoint (Caffe's, or one you trained) to safetensors in the zoo's \
             names (`convnets inspect FILE` says which architectures it fits), build it in \
             Rust with `convnets::Model::new` on the checkpoint's tensors and evaluate it \
             with `convnets::data`'s ImageNet loader: `reproduce` and `convnets classify` \
             take a file of one's own only in place of a weights id's, or for a CIFAR \
             architecture"
        };
        format!(
            "No pretrained weights for `{what}` are in the zoo, so nothing was measured: the \
             rows above are the published numbers alone. To measure them, {how}."
        )
    }

    /// Ten-crop and multi-scale evaluation are ImageNet protocols: the small datasets'
    /// networks see their whole image. In a selection with ImageNet weights (`all`) they
    /// do so, and their rows say so; a selection of nothing but them is refused.
    fn check_protocol(&self, protocol: Protocol) -> Result<()> {
        if protocol == Protocol::Single || self.needs(Dataset::ImageNet) {
            return Ok(());
        }
        let whole: Vec<&str> = self.targets.iter().map(|s| s.id).collect();
        ensure!(
            whole.is_empty(),
            "--protocol {} is an ImageNet protocol (crops and scales of a photograph); {} \
             see their whole 32×32 image: run them with --protocol single (the default), or \
             select ImageNet weights",
            protocol.name(),
            whole.join(", "),
        );
        Ok(())
    }

    /// Options the selection does not use (a dataset it does not evaluate, retraining with
    /// nothing to retrain) are a mistake (a mistyped selection, a forgotten `--weights`), not
    /// something to ignore silently.
    fn check_options_apply(&self, opts: &Options) -> Result<()> {
        // --train-epochs and --train-limit are refused without --train when parsed.
        ensure!(
            !opts.train
                || self
                    .targets
                    .iter()
                    .any(|s| architecture(s.arch).is_ok_and(|a| a.family == Family::LeNet)),
            "--train retrains LeNet-5 (`reproduce lenet --train`), and `{}` has no LeNet-5 \
             weights to retrain",
            opts.what
        );
        ensure!(
            opts.cifar10.is_none() || self.needs(Dataset::Cifar10),
            "--cifar10 is the test set of a CIFAR architecture's checkpoint (`reproduce \
             resnet20 --weights FILE --cifar10 PATH`), and `{}` evaluates nothing on CIFAR-10",
            opts.what
        );
        if opts.skip_unreadable && !self.needs(Dataset::ImageNet) {
            let small: Vec<&str> = self.targets.iter().map(|s| s.id).collect();
            bail!(
                "--skip-unreadable leaves out ImageNet images that cannot be decoded, and `{}` \
                 evaluates nothing on ImageNet: {}",
                opts.what,
                if small.is_empty() {
                    "it has published rows only".to_string()
                } else {
                    format!(
                        "{} read their small dataset whole, where a bad record fails the run",
                        small.join(", ")
                    )
                }
            );
        }
        Ok(())
    }

    fn needs(&self, dataset: Dataset) -> bool {
        self.targets.iter().any(|s| dataset_of(s) == dataset)
    }

    /// The shorter sides of each ImageNet model's multi-scale evaluation: `--scales`, else
    /// the last dense protocol its paper reports, else its family's.
    fn scales(&self, opts: &Options) -> Result<Vec<(&'static str, Vec<usize>)>> {
        if opts.protocol != Protocol::MultiScale {
            return Ok(Vec::new());
        }
        let dense = |r: &PaperResult| match r.accuracy.protocol {
            Measure::Dense { scales } => Some(scales.to_vec()),
            _ => None,
        };
        let mut out = Vec::new();
        for spec in self
            .targets
            .iter()
            .filter(|s| dataset_of(s) == Dataset::ImageNet)
        {
            let arch = architecture(spec.arch)?;
            ensure!(
                matches!(
                    arch.family,
                    Family::Vgg | Family::GoogLeNet | Family::Inception | Family::ResNet
                ),
                "{}: multi-scale (dense) evaluation needs a fully convolutional network; {} \
                 has fully connected layers for one input size (use single or ten-crop)",
                spec.id,
                arch.name
            );
            let scales = match &opts.scales {
                Some(s) => s.clone(),
                None => arch
                    .paper_results()
                    .filter_map(dense)
                    .last()
                    .or_else(|| arch.family.paper_results().filter_map(dense).last())
                    .with_context(|| {
                        format!(
                            "{}: no paper reports a dense protocol for {}; give --scales",
                            spec.id, arch.name
                        )
                    })?,
            };
            out.push((spec.id, scales));
        }
        Ok(out)
    }

    /// Every weights file, fetched and checked; every missing one reported at once. Once a
    /// download cannot connect, nothing more is downloaded (a firewall that drops packets
    /// would otherwise cost a connect timeout per file): the files still missing are
    /// reported with how to provide them offline.
    fn fetch(&self, opts: &Options) -> Result<Vec<Weights>> {
        if let Some(file) = &opts.weights {
            // `with_user_weights` left one target, evaluated from the file.
            return Ok(vec![Weights::File(file.clone())]);
        }
        let mut fetcher = Fetcher::from_env()
            .with_repository(workspace_root())
            .with_progress(true);
        if opts.offline {
            fetcher = fetcher.with_offline(true);
        }
        let mut fetched = Vec::new();
        let mut errors = Vec::new();
        for spec in &self.targets {
            match fetcher.fetch(spec) {
                Ok(f) => fetched.push(Weights::Zoo(f)),
                Err(e) => {
                    if matches!(e, convnets::Error::Unreachable(_)) && !fetcher.is_offline() {
                        fetcher = fetcher.with_downloads_stopped(format!(
                            "and were not downloaded: the download of `{}` could not connect, \
                             so this run downloads nothing more",
                            spec.id
                        ));
                    }
                    errors.push(format!("{e:#}"));
                }
            }
        }
        ensure!(errors.is_empty(), "{}", errors.join("\n\n"));
        Ok(fetched)
    }
}

/// CIFAR-10's training-set channel statistics: the default normalisation of a user's CIFAR
/// checkpoint (training scripts differ, and a checkpoint does not record it: `--mean`,
/// `--std`).
const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// The row of a user's checkpoint for a CIFAR architecture: the zoo's names, with the
/// classifier called `fc` or `linear` (the common PyTorch CIFAR ResNet's name;
/// `convnets inspect FILE` tells whether the rest fits), the 32×32 image as it is,
/// normalised as `--mean` and `--std` say. Leaked: one per run.
fn cifar_spec(
    arch: &'static Architecture,
    file: &Path,
    opts: &Options,
) -> Result<&'static WeightSpec> {
    let name = file
        .file_name()
        .map_or_else(|| "weights".into(), |n| n.to_string_lossy());
    let id: &'static str = format!("{} ({name})", arch.name).leak();
    let path: &'static str = file.display().to_string().leak();
    let structure = Structure::of_architecture(arch)?;
    Ok(Box::leak(Box::new(WeightSpec {
        id,
        arch: arch.name,
        // Never fetched: `Weights::File` is loaded from the path itself.
        source: WeightSource::Repository { path },
        sha256: None,
        key_map: &convnets::resnet::weights::CIFAR_LINEAR,
        transform: EvalTransform {
            mean: opts.mean.unwrap_or(CIFAR10_MEAN),
            std: opts.std.unwrap_or(CIFAR10_STD),
            ..EvalTransform::torchvision(32, 32)
        },
        num_classes: 10,
        num_params: structure.params,
        accuracy: &[],
    })))
}

fn dataset_of(spec: &WeightSpec) -> Dataset {
    architecture(spec.arch).map_or(Dataset::ImageNet, |a| a.family.dataset())
}

/// The ImageNet validation set `--imagenet` (or `IMAGENET_DIR`) points at, as the run will
/// see it (`--limit` applied).
fn imagenet(opts: &Options) -> Result<(PathBuf, ImageNetVal)> {
    let Some(dir) = &opts.imagenet else {
        bail!(
            "`reproduce {}` evaluates on the ILSVRC-2012 validation set (50,000 images), and \
             none was given: pass --imagenet DIR or set IMAGENET_DIR, DIR being\n  \
             - class folders: DIR/n01440764/ILSVRC2012_val_00000293.JPEG, ... (as torchvision's \
             ImageFolder reads them);\n  \
             - the Kaggle download: the flat folder ILSVRC/Data/CLS-LOC/val, with \
             LOC_val_solution.csv in it or up to four folders above (the download's top), or \
             named by --ground-truth;\n  \
             - Hugging Face `imagenet-1k` parquet shards: DIR/validation-*.parquet or \
             DIR/data/validation-*.parquet;\n  \
             - the official flat folder ILSVRC2012_img_val, with --ground-truth \
             ILSVRC2012_validation_ground_truth.txt from the devkit.\n\
             (LeNet-5 needs nothing: `cargo xtask reproduce lenet` runs on the MNIST copy \
             shipped in crates/data.)",
            opts.what
        );
    };
    let val = match &opts.ground_truth {
        Some(csv)
            if csv
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv")) =>
        {
            ImageNetVal::kaggle(dir, csv)
        }
        Some(gt) => ImageNetVal::devkit(dir, gt, &DevkitIds::ilsvrc2012()),
        None => ImageNetVal::detect(dir),
    }
    .with_context(|| {
        format!(
            "reading the ImageNet validation set at {} (see `cargo xtask reproduce --help` for \
             the layouts)",
            dir.display()
        )
    })?;
    let val = match opts.limit {
        Some(n) => val.evenly_spaced(n),
        None => val,
    };
    Ok((dir.clone(), val))
}

/// The CIFAR-10 test set `--cifar10` points at, else the one in the Hugging Face cache
/// (downloaded there unless `--offline`), `--limit` applied.
fn cifar10(opts: &Options) -> Result<CifarTest> {
    let mut cache = HubCache::from_env();
    if opts.offline {
        cache = cache.with_offline(true);
    }
    let split = Cifar::Ten
        .resolve_in(opts.cifar10.as_deref(), false, &cache)
        .with_context(|| match &opts.cifar10 {
            Some(path) => format!("reading the CIFAR-10 test set at {}", path.display()),
            None => format!(
                "`reproduce {}` evaluates on the CIFAR-10 test set (10,000 images), and none was \
                 given nor could be fetched: pass --cifar10 PATH, PATH being the binary \
                 distribution's folder (cifar-10-batches-bin, with test_batch.bin in it), that \
                 test_batch.bin itself, or the Hugging Face Hub's uoft-cs/cifar10 parquet \
                 (plain_text/test-00000-of-00001.parquet, or its snapshot folder)",
                opts.what
            ),
        })?;
    let source = match &opts.cifar10 {
        Some(path) => format!("the CIFAR-10 test set at {}", path.display()),
        None => format!(
            "the CIFAR-10 test set of the Hugging Face cache {}",
            cache.path().display()
        ),
    };
    Ok(CifarTest {
        split: match opts.limit {
            Some(n) => split.evenly_spaced(n),
            None => split,
        },
        source,
    })
}

/// The CIFAR-10 test set a run evaluates on, and where it was read, for messages.
#[derive(Debug)]
struct CifarTest {
    split: CifarSplit,
    source: String,
}

/// The protocol a model was run with, comparable with the tables' [`Measure`]s.
#[derive(Debug, Clone, Copy)]
enum Ran<'a> {
    FullImage,
    SingleCrop,
    TenCrop,
    Dense(&'a [usize]),
}

impl Ran<'_> {
    fn of<'a>(opts: &Options, dataset: Dataset, scales: &'a [usize]) -> Ran<'a> {
        match (dataset, opts.protocol) {
            (Dataset::Mnist | Dataset::Cifar10, _) => Ran::FullImage,
            (_, Protocol::Single) => Ran::SingleCrop,
            (_, Protocol::TenCrop) => Ran::TenCrop,
            (_, Protocol::MultiScale) => Ran::Dense(scales),
        }
    }

    fn is(&self, m: &Measure) -> bool {
        match (self, m) {
            (Ran::FullImage, Measure::FullImage)
            | (Ran::SingleCrop, Measure::SingleCrop)
            | (Ran::TenCrop, Measure::TenCrop) => true,
            (Ran::Dense(ours), Measure::Dense { scales }) => ours == scales,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match *self {
            Ran::FullImage => Measure::FullImage.to_string(),
            Ran::SingleCrop => Measure::SingleCrop.to_string(),
            Ran::TenCrop => Measure::TenCrop.to_string(),
            Ran::Dense(scales) => {
                let s: Vec<String> = scales.iter().map(usize::to_string).collect();
                format!("dense + flip, scales {}", s.join("/"))
            }
        }
    }
}

/// The number a run is compared with: the weights' own for this protocol, else the paper's
/// for the architecture.
fn reference(spec: &WeightSpec, dataset: Dataset, ran: Ran<'_>) -> Option<Reference> {
    let same =
        |a: &convnets::core::spec::Accuracy| a.dataset == dataset.name() && ran.is(&a.protocol);
    if let Some(a) = spec.accuracy.iter().find(|a| same(a)) {
        return Some(Reference {
            top1: a.top1,
            top5: a.top5,
            source: a.source.to_string(),
            own: true,
        });
    }
    architecture(spec.arch)
        .ok()?
        .paper_results()
        .filter(|r| same(&r.accuracy))
        .last()
        .map(|r| Reference {
            top1: r.accuracy.top1,
            top5: r.accuracy.top5,
            source: format!("{} ({})", r.accuracy.source, r.label),
            own: false,
        })
}

/// Where the weights evaluated come from.
#[derive(Debug)]
enum Weights {
    /// The zoo's file, fetched and checked.
    Zoo(Fetched),
    /// A file given with `--weights`.
    File(PathBuf),
}

/// The evaluation sets a run has read.
#[derive(Debug, Clone, Copy, Default)]
struct Sets<'a> {
    imagenet: Option<&'a ImageNetVal>,
    cifar10: Option<&'a CifarTest>,
}

/// Loads and evaluates one set of weights.
fn measure(
    spec: &'static WeightSpec,
    weights: &Weights,
    opts: &Options,
    data: Sets<'_>,
    scales: &[(&str, Vec<usize>)],
    run: Run<'_>,
) -> Result<Row> {
    let arch = architecture(spec.arch)?;
    let dataset = arch.family.dataset();
    let retrained = opts.train && arch.family == Family::LeNet;
    let (model, sha256, label) = if retrained {
        let (trained, label) = train_lenet(spec, opts)?;
        let model = Model::from_file(spec, &trained, DType::F32, run.device)
            .with_context(|| format!("loading {}", trained.display()))?;
        (
            model,
            Some(convnets::core::checkpoint::sha256_file(&trained)?),
            label,
        )
    } else {
        match weights {
            Weights::Zoo(file) => (
                Model::pretrained(spec, file, DType::F32, run.device)
                    .with_context(|| format!("loading {}", file.path().display()))?,
                Some(file.sha256().to_string()),
                arch.summary.to_string(),
            ),
            Weights::File(path) => (
                Model::from_file(spec, path, DType::F32, run.device)
                    .with_context(|| format!("loading --weights {}", path.display()))?,
                Some(convnets::core::checkpoint::sha256_file(path)?),
                format!("--weights {}", path.display()),
            ),
        }
    };
    let scales = scales
        .iter()
        .find(|(id, _)| *id == spec.id)
        .map_or(&[][..], |(_, s)| s.as_slice());
    let (input, measured): ([usize; 3], Measured) = match dataset {
        Dataset::Mnist => (
            arch.input_shape(),
            evaluate::mnist(&model, spec.id, opts.limit, run)?,
        ),
        Dataset::ImageNet => {
            let val = data.imagenet.context("the ImageNet validation set")?;
            let (h, w) = spec.transform.crop;
            let m = evaluate::imagenet(&model, spec, val, opts.protocol, scales, run)?;
            ([arch.config.in_channels(), h, w], m)
        }
        Dataset::Cifar10 => {
            let test = data.cifar10.context("the CIFAR-10 test set")?;
            (
                arch.input_shape(),
                evaluate::cifar10(&model, spec, &test.split, &test.source, run)?,
            )
        }
    };
    let structure = Structure::of(|vb| Model::for_weights(spec, vb), input)?;
    let ran = Ran::of(opts, dataset, scales);
    let mut protocol = ran.describe();
    if dataset != Dataset::ImageNet && opts.protocol != Protocol::Single {
        // `all --protocol ten-crop`: the small datasets' nets are run as they always are.
        protocol += &format!(" ({} is for ImageNet)", opts.protocol.name());
    }
    let acc = measured.accuracy;
    let mut row = Row::new(Kind::Measured, spec.id, &label, dataset.name(), protocol);
    row.images = Some(acc.n as usize);
    // Fewer images than the set has (`--limit`, or images skipped as unreadable): partial.
    row.partial = (acc.n as usize) < dataset.images();
    row.skipped = measured
        .skipped
        .iter()
        .cloned()
        .map(Skipped::from)
        .collect();
    row.top1 = Some(acc.top1_pct());
    row.top5 = Some(acc.top5_pct());
    row.params = Some(structure.params);
    row.gflops = Some(structure.gflops());
    row.input = Some(input);
    if dataset == Dataset::ImageNet {
        row.set_transform(&spec.transform);
    }
    row.images_per_sec = Some(measured.images_per_sec());
    row.sha256 = sha256;
    let user_file = matches!(weights, Weights::File(_));
    row.other_weights = retrained || user_file;
    // After `partial` is known: a partial run gets no Δ.
    if let Some(mut reference) = reference(spec, dataset, ran) {
        // A user's file, or a shortened retraining, is not what the published number was
        // measured on: shown beside it, but not held to it.
        let shortened = retrained && (opts.train_epochs.is_some() || opts.train_limit.is_some());
        reference.own &= !user_file && !shortened;
        row.compare_with(reference);
    }
    tracing::info!(
        "{}: top-1 {:.3}, top-5 {:.3} on {} images ({:.1} images/s){}",
        spec.id,
        acc.top1_pct(),
        acc.top5_pct(),
        acc.n,
        measured.images_per_sec(),
        match row.skipped.len() {
            0 => String::new(),
            n => format!(", {n} unreadable skipped"),
        }
    );
    Ok(row)
}

/// `reproduce lenet --train`: retrains LeNet-5 as `spec` was trained (the recipe of
/// `cargo xtask train lenet5` for its variant, with LeCun's distortions where the weights
/// had them, shortened by `--train-epochs` and `--train-limit`) and returns the weights
/// file to evaluate in place of the shipped one, with the row's label saying how it was
/// trained.
fn train_lenet(spec: &WeightSpec, opts: &Options) -> Result<(PathBuf, String)> {
    let variant = spec
        .arch
        .strip_prefix("lenet5_")
        .with_context(|| format!("{}: not a LeNet-5", spec.id))?;
    let dir = opts.out.join(format!("train-{}", spec.id));
    let mut args: Vec<String> = vec!["lenet5".into(), "--variant".into(), variant.into()];
    args.extend(["--device".into(), opts.device.clone()]);
    let distortions = spec.tag().contains("distortions");
    if distortions {
        args.push("--distortions".into());
    }
    if let Some(n) = opts.train_epochs {
        args.extend(["--epochs".into(), n.to_string()]);
    }
    if let Some(n) = opts.train_limit {
        args.extend(["--limit".into(), n.to_string()]);
    }
    args.extend(["--out".into(), dir.display().to_string()]);
    // Ctrl-C is the error `Interrupted`, whose message says how to resume; with no
    // --max-steps given, nothing else stops a run before its last epoch.
    let Outcome::Finished { .. } = crate::train::lenet5(&args)? else {
        bail!(
            "retraining {} stopped before its last epoch: no final weights in {}",
            spec.id,
            dir.display()
        );
    };
    let recipe = match (variant, distortions) {
        ("classic", false) => "the paper's protocol",
        ("classic", true) => "the paper's protocol and its distortions",
        _ => "the modern recipe (SGD, Nesterov, cosine schedule)",
    };
    let mut label = format!("retrained here with {recipe}");
    let mut shortened = Vec::new();
    if let Some(n) = opts.train_epochs {
        shortened.push(format!("{n} epoch{}", if n == 1 { "" } else { "s" }));
    }
    if let Some(n) = opts.train_limit {
        shortened.push(format!("{n} training digits"));
    }
    if !shortened.is_empty() {
        label += &format!(", shortened to {}", shortened.join(" on "));
    }
    Ok((dir.join("weights.safetensors"), label))
}

/// Caps candle's and the loader's threads at `n`.
#[allow(unsafe_code)]
fn limit_threads(n: usize) {
    // SAFETY: called first thing in `run`, before any thread of this process is started
    // (the loader's and candle's pools start later), so nothing reads the environment
    // concurrently. candle sizes its CPU parallelism from RAYON_NUM_THREADS on every call.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
}

/// `git describe` of the checkout, when there is one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use candle_nn::VarMap;
    use convnets::core::spec::{Accuracy, EvalTransform, WeightSource};

    use super::*;

    /// A LeNet-5 row for a seeded, untrained model saved to `dir`, claiming `top1`.
    fn untrained_lenet(dir: &Path, top1: f64) -> Result<&'static WeightSpec> {
        let arch = architecture("lenet5_modern")?;
        let varmap = VarMap::new();
        let vb =
            convnets::core::init::var_builder(&varmap, 7, DType::F32, &candle_core::Device::Cpu);
        Model::new(arch, 10, vb)?;
        std::fs::create_dir_all(dir)?;
        let file = dir.join("lenet5_modern.safetensors");
        varmap.save(&file)?;
        let path: &'static str = file.to_str().context("path")?.to_string().leak();
        let accuracy: &'static [Accuracy] = vec![Accuracy {
            dataset: "mnist test",
            protocol: Measure::FullImage,
            top1: Some(top1),
            top5: None,
            source: "this test",
        }]
        .leak();
        Ok(Box::leak(Box::new(WeightSpec {
            id: "lenet5_modern.test",
            arch: "lenet5_modern",
            source: WeightSource::Repository { path },
            sha256: None,
            key_map: &convnets::lenet::weights::NATIVE,
            transform: EvalTransform::torchvision(32, 32),
            num_classes: 10,
            num_params: 61_706,
            accuracy,
        })))
    }

    #[test]
    fn lenet_on_the_shipped_mnist_and_the_regression_check() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("convnets-xtask-lenet-{}", std::process::id()));
        let opts = Options::parse(&["lenet".to_string()])?.context("options")?;
        let device = candle_core::Device::Cpu;
        let run = Run {
            device: &device,
            batch_size: 1000,
            workers: 1,
            skip_unreadable: false,
        };
        // Claimed 99.0 %: an untrained network is far below, and the run is complete.
        let spec = untrained_lenet(&dir, 99.0)?;
        let fetched = Fetcher::new(dir.join("hub"), dir.join("torch"))
            .with_repository("/")
            .fetch(spec)?;
        assert_eq!(fetched.check(), convnets::Check::Shipped);
        let weights = Weights::Zoo(fetched);
        let row = measure(spec, &weights, &opts, Sets::default(), &[], run)?;
        assert_eq!(row.images, Some(10_000));
        assert!(!row.partial);
        assert_eq!(row.protocol, "full image");
        assert_eq!(row.input, Some([1, 32, 32]));
        assert_eq!(row.params, Some(61_706));
        let top1 = row.top1.context("top-1")?;
        assert!(top1 < 50.0, "{top1}");
        assert!(row.reference.as_ref().is_some_and(|r| r.own));
        assert_eq!(row.delta_top1, Some(top1 - 99.0));

        let report = |rows| Report {
            run: RunInfo {
                what: "lenet".into(),
                protocol: "single".into(),
                scales: None,
                limit: None,
                date: report::utc_now(),
                machine: report::machine(),
                device: "cpu".into(),
                threads: 1,
                batch_size: 1000,
                convnets: String::new(),
                commit: None,
                imagenet: None,
            },
            rows,
            note: None,
        };
        assert_eq!(report(vec![row.clone()]).regressions(0.1).len(), 1);

        // Claiming what it measures, it passes.
        let mut honest = row;
        honest.compare_with(Reference {
            top1: Some(top1),
            top5: None,
            source: "this test".into(),
            own: true,
        });
        assert!(report(vec![honest]).regressions(0.0).is_empty());

        // In `all --protocol ten-crop`, LeNet-5 sees its whole image, and its row says so.
        let args = ["lenet", "--protocol", "ten-crop", "--limit", "100"];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let ten_crop = Options::parse(&args)?.context("options")?;
        let row = measure(spec, &weights, &ten_crop, Sets::default(), &[], run)?;
        assert_eq!(row.protocol, "full image (ten-crop is for ImageNet)");
        assert_eq!(row.images, Some(100));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn ground_truth_is_the_devkit_file_or_a_kaggle_csv() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("convnets-xtask-gt-{}", std::process::id()));
        let flat = dir.join("val");
        std::fs::create_dir_all(&flat)?;
        for n in 1..=2 {
            std::fs::write(flat.join(format!("ILSVRC2012_val_{n:08}.JPEG")), b"")?;
        }
        let csv = dir.join("elsewhere/LOC_val_solution.csv");
        std::fs::create_dir_all(csv.parent().context("parent")?)?;
        std::fs::write(
            &csv,
            "ImageId,PredictionString\n\
             ILSVRC2012_val_00000002,n01440764 1 2 3 4\n\
             ILSVRC2012_val_00000001,n15075141 1 2 3 4\n",
        )?;
        // The devkit's ids of kit fox (1) and dumbbell (1000).
        let gt = dir.join("ILSVRC2012_validation_ground_truth.txt");
        std::fs::write(&gt, "1\n1000\n")?;
        let labels = |gt: &Path| -> Result<Vec<u32>> {
            let args = ["resnet", "--imagenet", path_str(&flat)?, "--ground-truth"];
            let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            args.push(path_str(gt)?.to_string());
            let opts = Options::parse(&args)?.context("options")?;
            let (_, val) = imagenet(&opts)?;
            Ok(val
                .items()
                .map(|i| i.map(|i| i.label))
                .collect::<Result<_, _>>()?)
        };
        let index = |synset| {
            convnets::data::imagenet::CLASSES
                .index_of(synset)
                .map_or(u32::MAX, |i| i as u32)
        };
        // In file order, whatever the CSV's order.
        assert_eq!(labels(&csv)?, [index("n15075141"), index("n01440764")]);
        assert_eq!(labels(&gt)?, [index("n02119789"), index("n03255030")]);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn path_str(p: &Path) -> Result<&str> {
        p.to_str().context("a UTF-8 path")
    }

    #[test]
    fn selections() -> Result<()> {
        assert!(
            Plan::new("resnet")?
                .targets
                .iter()
                .all(|s| dataset_of(s) == Dataset::ImageNet)
        );
        assert_eq!(Plan::new("resnet50")?.targets.len(), 3);
        let one = Plan::new("vgg16.tv_in1k")?;
        assert_eq!(one.targets.len(), 1);
        assert!(one.papers.iter().all(|r| r.arch == "vgg16"));

        let all = Plan::new("all")?;
        assert_eq!(all.targets.len(), convnets::weights().count());
        assert_eq!(all.papers.len(), convnets::paper_results().count());

        // Families without weights: their published rows alone, and why.
        let zf = Plan::new("zfnet")?;
        assert!(zf.targets.is_empty());
        assert!(zf.papers.iter().any(|r| r.arch == "zfnet"
            && r.accuracy.top1 == Some(61.6)
            && r.accuracy.source.starts_with("Zeiler, Fergus 2014")));
        let note = zf.nothing_to_measure("zfnet");
        assert!(note.contains("No pretrained weights"), "{note}");
        // `reproduce zfnet --weights FILE` is refused: the note sends the user elsewhere.
        assert!(
            !note.contains("--weights") && note.contains("convnets::Model::new"),
            "{note}"
        );
        let cifar = Plan::new("resnet-cifar")?;
        assert!(cifar.targets.is_empty());
        let table6: Vec<_> = cifar
            .papers
            .iter()
            .filter(|r| r.accuracy.source.starts_with("He et al. 2015, Table 6"))
            .map(|r| (r.arch, r.accuracy.top1))
            .collect();
        assert!(table6.contains(&("resnet20", Some(91.25))), "{table6:?}");
        assert!(table6.contains(&("resnet110", Some(93.57))), "{table6:?}");
        assert!(
            cifar
                .papers
                .iter()
                .all(|r| r.accuracy.dataset == Dataset::Cifar10.name())
        );
        assert!(
            cifar
                .nothing_to_measure("resnet-cifar")
                .contains("CIFAR-10")
        );

        // Crops and scales are for photographs: a selection of small-dataset nets alone is
        // refused, one with ImageNet weights too runs them on their whole image.
        let lenet = Plan::new("lenet")?;
        lenet.check_protocol(Protocol::Single)?;
        for protocol in [Protocol::TenCrop, Protocol::MultiScale] {
            let err = lenet.check_protocol(protocol).unwrap_err().to_string();
            assert!(
                err.contains(protocol.name()) && err.contains("lenet5_modern.mnist"),
                "{err}"
            );
            all.check_protocol(protocol)?;
            zf.check_protocol(protocol)?;
        }
        Plan::new("resnet")?.check_protocol(Protocol::TenCrop)?;
        Ok(())
    }

    #[test]
    fn options_the_selection_does_not_use_are_refused() -> Result<()> {
        let opts = |args: &[&str]| -> Result<Options> {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            Options::parse(&args)?.context("options")
        };
        let cifar = opts(&["lenet", "--cifar10", "cifar-10-batches-bin"])?;
        let err = Plan::new("lenet")?
            .check_options_apply(&cifar)
            .unwrap_err()
            .to_string();
        assert!(err.contains("evaluates nothing on CIFAR-10"), "{err}");
        // A CIFAR architecture without --weights has nothing to evaluate either.
        assert!(Plan::new("resnet20")?.check_options_apply(&cifar).is_err());

        let skip = opts(&["lenet", "--skip-unreadable"])?;
        let err = Plan::new("lenet")?
            .check_options_apply(&skip)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("evaluates nothing on ImageNet") && err.contains("lenet5_modern.mnist"),
            "{err}"
        );
        let err = Plan::new("zfnet")?
            .check_options_apply(&skip)
            .unwrap_err()
            .to_string();
        assert!(err.contains("published rows only"), "{err}");
        // `all` has ImageNet rows for it; a plain run of anything passes.
        Plan::new("all")?.check_options_apply(&skip)?;
        Plan::new("lenet")?.check_options_apply(&opts(&["lenet"])?)?;

        let train = opts(&["lenet", "--train", "--train-epochs", "1"])?;
        for what in ["zfnet", "resnet"] {
            let err = Plan::new(what)?
                .check_options_apply(&train)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("has no LeNet-5 weights to retrain"),
                "{what}: {err}"
            );
        }
        Plan::new("lenet")?.check_options_apply(&train)?;
        Plan::new("all")?.check_options_apply(&train)?;
        Ok(())
    }
}
