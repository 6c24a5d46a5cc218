//! The command line of `cargo xtask reproduce`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use lexopt::prelude::*;

use crate::args::positive;

pub const USAGE: &str = "\
usage: cargo xtask reproduce <WHAT> [options]

WHAT is a family (lenet, alexnet, zfnet, vgg, googlenet, inception, resnet,
resnet-cifar), an architecture (resnet50: all its weights), a weights id
(resnet50.tv_in1k), or `all`. Each set of weights is evaluated and printed beside the
published numbers: its own (torchvision's, timm's) and its paper's.

options:
  --imagenet DIR        ILSVRC-2012 validation images (default: $IMAGENET_DIR): class
                        folders (DIR/n01440764/*.JPEG), the Kaggle download
                        (ILSVRC/Data/CLS-LOC/val, LOC_val_solution.csv found in it or up
                        to four folders above), or Hugging Face parquet shards
                        (DIR[/data]/validation-*.parquet)
  --ground-truth FILE   the labels of a flat folder: the devkit's
                        ILSVRC2012_validation_ground_truth.txt (the official tar), or
                        Kaggle's LOC_val_solution.csv wherever it is (a .csv file)
  --cifar10 PATH        the CIFAR-10 test set: the binary distribution's folder
                        (cifar-10-batches-bin), a binary batch file (test_batch.bin,
                        or part of one), the hub's .parquet file or a folder with it
                        (plain_text/test-00000-of-00001.parquet) (default: the
                        Hugging Face cache's uoft-cs/cifar10, downloaded there)
  --weights FILE        evaluate FILE (safetensors or .pth) in place of the zoo's
                        weights: with a weights id, under its transform and key map;
                        with a CIFAR architecture (resnet20 .. resnet1202, plain20 ..),
                        which the zoo has no weights for, with its classifier
                        named `fc` or `linear` (not with --train)
  --mean R,G,B --std R,G,B
                        with a CIFAR architecture: the normalisation FILE was trained
                        with, three numbers each, the std above 0 (default:
                        CIFAR-10's training set, 0.4914,0.4822,0.4465 and
                        0.2470,0.2435,0.2616)
  --protocol P          single (default): one centre crop, the weights' transform;
                        ten-crop: corners and centre, and mirrored (Krizhevsky 2012);
                        multi-scale: dense evaluation over several shorter sides and
                        the mirror image (Simonyan & Zisserman 2015, He et al. 2015);
                        ten-crop and multi-scale are for ImageNet: in a selection
                        with ImageNet weights (`all`) MNIST and CIFAR nets see their
                        whole image; a selection of them alone takes single only
  --scales A,B,...      multi-scale: the shorter sides (default: the paper's)
  --limit N             evaluate N images spread evenly over the set; the table says
                        the run is partial
  --skip-unreadable     leave out ImageNet images that cannot be decoded instead of
                        failing; the table counts them and the JSON lists them with the
                        reason (the run is then partial)
  --batch-size N        images per batch (default 32)
  --threads N           CPU threads for decoding and compute (default: all)
  --device D            cpu (default), cuda or cuda:N (built with --features cuda)
  --offline             use weights already downloaded; never touch the network
  --out DIR             where the table goes as Markdown, CSV and JSON
                        (default: target/reproduce)
  --tolerance P         fail when a complete run's top-1 is more than P points below
                        the weights' own published top-1 (default 0.1)
  --train               lenet: retrain each network with its recipe (the paper's for
                        LeNet-5 classic, a modern one for the modern net), then evaluate
  --train-epochs N      with --train: N epochs instead of the recipe's 20 (a quick run;
                        the table says so)
  --train-limit N       with --train: train on N of the 60,000 training digits

environment: HF_HOME / HF_HUB_CACHE (hub cache), HF_ENDPOINT (mirror), HF_TOKEN
(gated repositories), HF_HUB_OFFLINE, TORCH_HOME (torchvision downloads).
";

/// The evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Single,
    TenCrop,
    MultiScale,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::TenCrop => "ten-crop",
            Self::MultiScale => "multi-scale",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub what: String,
    pub imagenet: Option<PathBuf>,
    pub ground_truth: Option<PathBuf>,
    pub protocol: Protocol,
    pub scales: Option<Vec<usize>>,
    pub limit: Option<usize>,
    pub skip_unreadable: bool,
    pub batch_size: usize,
    pub threads: Option<usize>,
    pub device: String,
    pub offline: bool,
    pub out: PathBuf,
    pub tolerance: f64,
    pub train: bool,
    /// `--train-epochs`: a shortened retraining.
    pub train_epochs: Option<usize>,
    /// `--train-limit`: retraining on part of the training set.
    pub train_limit: Option<usize>,
    pub cifar10: Option<PathBuf>,
    /// `--weights`: a user's checkpoint to evaluate.
    pub weights: Option<PathBuf>,
    /// `--mean` and `--std`, on `[0, 1]` pixels.
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
}

fn value(parser: &mut lexopt::Parser, name: &str) -> Result<String> {
    parser
        .value()
        .with_context(|| format!("--{name} needs a value"))?
        .string()
        .map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

/// Three per-channel numbers, `R,G,B`, each finite.
fn channels(value: &str, option: &str) -> Result<[f32; 3]> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    ensure!(
        parts.len() == 3,
        "{option}: `{value}` has {} value{}; it takes three, R,G,B",
        parts.len(),
        if parts.len() == 1 { "" } else { "s" }
    );
    let mut out = [0.0; 3];
    for ((slot, part), channel) in out.iter_mut().zip(&parts).zip(["R", "G", "B"]) {
        *slot = part
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .with_context(|| format!("{option}: {channel} `{part}` is not a finite number"))?;
    }
    Ok(out)
}

/// `--std R,G,B`: three standard deviations, each above 0 (the pixels are divided by them).
fn deviations(value: &str) -> Result<[f32; 3]> {
    let std = channels(value, "--std")?;
    for (v, channel) in std.iter().zip(["R", "G", "B"]) {
        ensure!(
            *v > 0.0,
            "--std: {channel} is {v}; a standard deviation must be above 0 (pixels are divided \
             by it)"
        );
    }
    Ok(std)
}

impl Options {
    /// Parses the arguments after `reproduce`; `None` when help was asked for.
    pub fn parse(args: &[String]) -> Result<Option<Self>> {
        let mut parser = lexopt::Parser::from_args(args);
        let mut what = None;
        let mut o = Options {
            what: String::new(),
            imagenet: std::env::var_os("IMAGENET_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ground_truth: None,
            protocol: Protocol::Single,
            scales: None,
            limit: None,
            skip_unreadable: false,
            batch_size: 32,
            threads: None,
            device: "cpu".into(),
            offline: false,
            out: PathBuf::from("target/reproduce"),
            tolerance: 0.1,
            train: false,
            train_epochs: None,
            train_limit: None,
            cifar10: None,
            weights: None,
            mean: None,
            std: None,
        };
        while let Some(arg) = parser.next()? {
            match arg {
                Long("help") | Short('h') => return Ok(None),
                Long("imagenet") => o.imagenet = Some(value(&mut parser, "imagenet")?.into()),
                Long("ground-truth") => {
                    o.ground_truth = Some(value(&mut parser, "ground-truth")?.into())
                }
                Long("protocol") => {
                    o.protocol = match value(&mut parser, "protocol")?.as_str() {
                        "single" | "single-crop" => Protocol::Single,
                        "ten-crop" | "10-crop" => Protocol::TenCrop,
                        "multi-scale" | "dense" => Protocol::MultiScale,
                        other => {
                            bail!("--protocol: `{other}` is not single, ten-crop or multi-scale")
                        }
                    }
                }
                Long("scales") => {
                    let v = value(&mut parser, "scales")?;
                    o.scales = Some(
                        v.split(',')
                            .map(|s| positive("--scales", s.trim()))
                            .collect::<Result<_>>()?,
                    );
                }
                Long("limit") => {
                    o.limit = Some(positive("--limit", &value(&mut parser, "limit")?)?)
                }
                Long("skip-unreadable") => o.skip_unreadable = true,
                Long("batch-size") => {
                    o.batch_size = positive("--batch-size", &value(&mut parser, "batch-size")?)?
                }
                Long("threads") => {
                    o.threads = Some(positive("--threads", &value(&mut parser, "threads")?)?)
                }
                Long("cifar10") => o.cifar10 = Some(value(&mut parser, "cifar10")?.into()),
                Long("weights") => o.weights = Some(value(&mut parser, "weights")?.into()),
                Long("mean") => o.mean = Some(channels(&value(&mut parser, "mean")?, "--mean")?),
                Long("std") => o.std = Some(deviations(&value(&mut parser, "std")?)?),
                Long("device") => o.device = value(&mut parser, "device")?,
                Long("offline") => o.offline = true,
                Long("out") => o.out = value(&mut parser, "out")?.into(),
                Long("tolerance") => {
                    let v = value(&mut parser, "tolerance")?;
                    o.tolerance = v
                        .parse::<f64>()
                        .ok()
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .with_context(|| format!("--tolerance: `{v}` is not a number ≥ 0"))?;
                }
                Long("train") => o.train = true,
                Long("train-epochs") => {
                    o.train_epochs = Some(positive(
                        "--train-epochs",
                        &value(&mut parser, "train-epochs")?,
                    )?)
                }
                Long("train-limit") => {
                    o.train_limit = Some(positive(
                        "--train-limit",
                        &value(&mut parser, "train-limit")?,
                    )?)
                }
                Value(v) if what.is_none() => what = Some(v.string()?),
                other => return Err(other.unexpected().into()),
            }
        }
        o.what =
            what.context("what to reproduce? (a family, an architecture, a weights id, or `all`)")?;
        if o.scales.is_some() && o.protocol != Protocol::MultiScale {
            bail!("--scales is for --protocol multi-scale");
        }
        if (o.mean.is_some() || o.std.is_some()) && o.weights.is_none() {
            bail!("--mean and --std describe the checkpoint given with --weights");
        }
        if o.train && o.weights.is_some() {
            bail!(
                "--train retrains the nets from scratch and --weights evaluates FILE as it is: \
                 give one of them"
            );
        }
        if (o.train_epochs.is_some() || o.train_limit.is_some()) && !o.train {
            bail!("--train-epochs and --train-limit shorten --train, which was not given");
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse() -> Result<()> {
        let o = parse(&[
            "resnet",
            "--imagenet=/data/val",
            "--protocol",
            "multi-scale",
            "--scales",
            "224,256",
            "--limit",
            "100",
            "--offline",
            "--skip-unreadable",
            "--tolerance",
            "0",
        ])?
        .context("options")?;
        assert_eq!(o.what, "resnet");
        assert_eq!(o.imagenet, Some(PathBuf::from("/data/val")));
        assert_eq!(o.protocol, Protocol::MultiScale);
        assert_eq!(o.scales, Some(vec![224, 256]));
        assert_eq!((o.limit, o.offline, o.tolerance), (Some(100), true, 0.0));
        assert!(o.skip_unreadable);
        assert!(!parse(&["resnet"])?.context("options")?.skip_unreadable);
        assert_eq!(parse(&["--help"])?, None);
        Ok(())
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        for (args, needle) in [
            (
                &["resnet", "--protocol", "5-crop"][..],
                "`5-crop` is not single",
            ),
            (&["resnet", "--limit", "0"][..], "`0`"),
            (
                &["resnet", "--scales", "256"][..],
                "is for --protocol multi-scale",
            ),
            (&[][..], "what to reproduce"),
            (&["resnet", "--bogus"][..], "bogus"),
            (&["lenet", "--train-epochs", "1"][..], "which was not given"),
            (&["lenet", "--train", "--train-limit", "0"][..], "`0`"),
            (
                &["lenet5_modern.mnist", "--weights", "w.pt", "--train"][..],
                "give one of them",
            ),
            (&["resnet20", "--mean", "0.5,0.5"][..], "has 2 values"),
            (&["resnet20", "--mean", "0.5,0.5,0.5,1"][..], "has 4 values"),
            (
                &["resnet20", "--mean", "0.5,nan,0.5"][..],
                "G `nan` is not a finite number",
            ),
            (
                &["resnet20", "--mean", "0.5,0.5,0.5"][..],
                "describe the checkpoint given with --weights",
            ),
            (
                &["resnet20", "--weights", "w.pt", "--std", "0.2,0.2,0"][..],
                "B is 0; a standard deviation must be above 0",
            ),
            (
                &["resnet20", "--weights", "w.pt", "--std", "-1,0.2,0.2"][..],
                "R is -1",
            ),
            (
                &["resnet20", "--weights", "w.pt", "--std", "0.2,inf,0.2"][..],
                "G `inf` is not a finite number",
            ),
        ] {
            let err = format!("{:#}", parse(args).unwrap_err());
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        // Valid numbers with --weights are accepted.
        let o = parse(&[
            "resnet20",
            "--weights",
            "w.pt",
            "--mean",
            "0.5, 0.5,0.5",
            "--std",
            "0.25,0.25,0.25",
        ]);
        let o = o.ok().flatten().map(|o| (o.mean, o.std));
        assert_eq!(o, Some((Some([0.5; 3]), Some([0.25; 3]))));
    }
}
