//! `cargo xtask reproduce` end to end, without the internet: the real `resnet18.tv_in1k` row,
//! its file served by a local hub (weights from the parity generator, `HF_ENDPOINT` pointing
//! at it, `HF_TOKEN` opening it), evaluated on real photographs filed as an ImageNet
//! validation folder; LeNet-5's shipped weights and their retraining beside LeCun 1998; the
//! published rows of the families without weights; and the messages of a run that lacks its
//! data or its weights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use candle_core::{DType, Device, Tensor};
use convnets::core::spec::{WeightSource, WeightSpec};
use convnets::data::imagenet::ImageNetVal;
use convnets::data::loader::{Loader, LoaderConfig};
use convnets::data::{Transform, Views};
use convnets_train::metrics::TopK;
use convnets_workspace_tests::hub::{HubServer, Served, sha256_hex};
use convnets_workspace_tests::{fixture, root};
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convnets-xtask-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The photographs of convnets-data's fixtures, filed under their synsets.
fn imagenet_folder(dir: &Path) -> Result<PathBuf> {
    let fixtures = root().join("crates/data/tests/fixtures");
    let labels = std::fs::read_to_string(fixtures.join("imagenet/labels.tsv"))?;
    let val = dir.join("val");
    for line in labels.lines().filter(|l| !l.starts_with('#')) {
        let c: Vec<&str> = line.split('\t').collect();
        let (photo, name, synset) = (c[0], c[1], c[2]);
        std::fs::create_dir_all(val.join(synset))?;
        std::fs::copy(
            fixtures.join("photos").join(photo),
            val.join(synset).join(name),
        )?;
    }
    Ok(val)
}

/// ResNet-18 in torchvision's (and timm's) names with the parity generator's weights, as a
/// safetensors file's bytes.
fn resnet18_safetensors(dir: &Path) -> Result<Vec<u8>> {
    let fx = fixture("resnet18")?;
    let tensors: std::collections::HashMap<String, Tensor> = fx
        .tensors
        .iter()
        .map(|t| Ok((t.name.clone(), t.tensor(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    let path = dir.join("resnet18.safetensors");
    candle_core::safetensors::save(&tensors, &path)?;
    Ok(std::fs::read(path)?)
}

/// Runs `cargo xtask reproduce <args>` with a clean environment of its own.
fn reproduce(args: &[&str], env: &[(&str, &Path)], endpoint: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("reproduce").args(args);
    for var in [
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "TORCH_HOME",
        "IMAGENET_DIR",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(endpoint) = endpoint {
        cmd.env("HF_ENDPOINT", endpoint);
    }
    cmd.output().expect("run xtask")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The top-1 and top-5 the weights reach on the photographs, computed here without the
/// reproduce command: the same file, strict loading, the weights' transform.
fn expected(weights: &Path, val: &Path) -> Result<TopK> {
    let spec = convnets::weight("resnet18.tv_in1k")?;
    let model = convnets::Model::from_file(spec, weights, DType::F32, &Device::Cpu)?;
    let config = LoaderConfig {
        batch_size: 5,
        workers: 1,
        prefetch: 5,
        skip_unreadable: false,
        views: Views::CenterCrop,
    };
    let items = ImageNetVal::class_folders(val)?.items();
    let mut acc = TopK::default();
    for batch in Loader::new(items, Transform::new(spec.transform)?, config)? {
        let batch = batch?;
        let logits = candle_nn::ModuleT::forward_t(&model, &batch.images, false)?;
        acc.update(&logits, &batch.labels)?;
    }
    Ok(acc)
}

#[test]
fn resnet18_from_a_local_hub_on_real_photographs() -> Result<()> {
    let dir = scratch("resnet18");
    let val = imagenet_folder(&dir)?;
    let weights = resnet18_safetensors(&dir)?;
    let sha = sha256_hex(&weights);
    // Gated: only HF_TOKEN, read from the environment, opens it.
    let server = HubServer::start(vec![
        Served::hub("timm/resnet18.tv_in1k", "model.safetensors", weights).gated("hf_secret"),
    ]);
    let (hf, out) = (dir.join("hf"), dir.join("out"));
    let args = [
        "resnet18.tv_in1k",
        "--imagenet",
        val.to_str().context("path")?,
        "--out",
        out.to_str().context("path")?,
        "--batch-size",
        "2",
        "--threads",
        "2",
    ];

    let start = Instant::now();
    let token = Path::new("hf_secret");
    let run = reproduce(
        &args,
        &[("HF_HOME", &hf), ("HF_TOKEN", token)],
        Some(&server.url()),
    );
    eprintln!("reproduce resnet18.tv_in1k: {:?}", start.elapsed());
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    ensure!(run.status.success(), "{stdout}\n{stderr}");
    let requests = server.requests();
    assert!(
        !requests.is_empty()
            && requests
                .iter()
                .all(|r| r.authorization.as_deref() == Some("Bearer hf_secret")),
        "{requests:?}"
    );

    // The Markdown table: the measured row beside torchvision's number and the paper's.
    assert!(stdout.contains("| model | protocol | images | top-1 | top-5 | ref top-1 |"));
    assert!(
        stdout.contains("| `resnet18.tv_in1k` | single crop | 5 * |"),
        "{stdout}"
    );
    assert!(stdout.contains("| 69.758 | 89.078 |"), "{stdout}");
    assert!(stdout.contains("| 11,689,512 | 1.814 | 3×224×224 | 0.875 (256) | bilinear |"));
    assert!(stdout.contains("resnet18: ResNet-18, option A shortcuts, 10-crop (published)"));
    assert!(stdout.contains("Partial run: 5 of the imagenet-1k val images"));

    // Not `with_extension`: the stem has a dot.
    let file = |ext: &str| out.join(format!("reproduce-resnet18.tv_in1k-single.{ext}"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(file("json"))?)?;
    let rows = json["rows"].as_array().context("rows")?;
    let row = &rows[0];
    assert_eq!(row["kind"], "measured");
    assert_eq!(row["images"], 5);
    assert_eq!(row["partial"], true);
    assert_eq!(row["params"], 11_689_512);
    assert_eq!(row["sha256"], sha.as_str());
    assert_eq!(row["reference"]["own"], true);
    assert_eq!(row["reference"]["top1"], 69.758);
    assert_eq!(row["input"], serde_json::json!([3, 224, 224]));
    assert!((row["gflops"].as_f64().context("gflops")? - 1.814).abs() < 5e-4);
    assert!(rows[1..].iter().all(|r| r["kind"] == "paper"));
    assert_eq!(json["run"]["device"], "cpu");
    assert_eq!(json["run"]["threads"], 2);
    assert!(
        stdout.contains("device cpu, 2 threads, batch 2"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(file("csv"))?.lines().count(),
        rows.len() + 1
    );
    assert!(file("md").is_file());

    // The numbers are those of the weights on the photographs.
    let snapshot = hf.join("hub/models--timm--resnet18.tv_in1k/snapshots");
    let file = std::fs::read_dir(&snapshot)?
        .next()
        .context("a snapshot")??
        .path()
        .join("model.safetensors");
    let acc = expected(&file, &val)?;
    assert_eq!(row["top1"].as_f64(), Some(acc.top1_pct()));
    assert_eq!(row["top5"].as_f64(), Some(acc.top5_pct()));

    // Offline, the cached file is used without asking the server again.
    let requests = server.requests().len();
    let offline = reproduce(
        &[&args[..], &["--offline"]].concat(),
        &[("HF_HOME", &hf)],
        None,
    );
    ensure!(offline.status.success(), "{}", text(&offline.stderr));
    assert_eq!(server.requests().len(), requests);

    // The other protocols, on two of the photographs.
    for (protocol, row) in [
        (
            &["--protocol", "ten-crop"][..],
            "| `resnet18.tv_in1k` | 10-crop | 2 * |",
        ),
        (
            &["--protocol", "multi-scale", "--scales", "224,256"][..],
            "| `resnet18.tv_in1k` | dense + flip, scales 224/256 | 2 * |",
        ),
    ] {
        let args = [&args[..], &["--offline", "--limit", "2"], protocol].concat();
        let run = reproduce(&args, &[("HF_HOME", &hf)], None);
        let stdout = text(&run.stdout);
        ensure!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
        assert!(stdout.contains(row), "{stdout}");
    }
    // The paper's ten-crop row is the reference of a ten-crop run of the same architecture.
    let ten_crop =
        std::fs::read_to_string(out.join("reproduce-resnet18.tv_in1k-ten-crop-limit2.json"))?;
    let ten_crop: Value = serde_json::from_str(&ten_crop)?;
    assert_eq!(ten_crop["rows"][0]["reference"]["own"], false);
    assert_eq!(ten_crop["rows"][0]["reference"]["top1"], 72.12);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn an_unreadable_image_fails_the_run_or_is_skipped_and_listed() -> Result<()> {
    let dir = scratch("unreadable");
    let val = imagenet_folder(&dir)?;
    // A third of a JPEG, filed as a tabby cat.
    let jpeg = std::fs::read(root().join("crates/data/tests/fixtures/photos/chelsea.jpg"))?;
    let broken = val.join("n02123045/ILSVRC2012_val_00049999.JPEG");
    std::fs::write(&broken, &jpeg[..jpeg.len() / 3])?;
    let server = HubServer::start(vec![Served::hub(
        "timm/resnet18.tv_in1k",
        "model.safetensors",
        resnet18_safetensors(&dir)?,
    )]);
    let (hf, out) = (dir.join("hf"), dir.join("out"));
    let args = [
        "resnet18.tv_in1k",
        "--imagenet",
        val.to_str().context("path")?,
        "--out",
        out.to_str().context("path")?,
        "--batch-size",
        "4",
    ];

    let run = reproduce(&args, &[("HF_HOME", &hf)], Some(&server.url()));
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{}", text(&run.stdout));
    assert!(
        stderr.contains(&broken.display().to_string()) && stderr.contains("cannot decode"),
        "{stderr}"
    );

    let run = reproduce(
        &[&args[..], &["--offline", "--skip-unreadable"]].concat(),
        &[("HF_HOME", &hf)],
        None,
    );
    let stdout = text(&run.stdout);
    ensure!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    assert!(
        stdout.contains("| `resnet18.tv_in1k` | single crop | 5 * |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`resnet18.tv_in1k`: 1 skipped: one image left out as unreadable"),
        "{stdout}"
    );
    let file = |ext: &str| out.join(format!("reproduce-resnet18.tv_in1k-single.{ext}"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(file("json"))?)?;
    let row = &json["rows"][0];
    assert_eq!(row["images"], 5);
    assert_eq!(row["partial"], true);
    let skipped = row["skipped"].as_array().context("skipped")?;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["name"], broken.display().to_string().as_str());
    let reason = skipped[0]["reason"].as_str().context("reason")?;
    assert!(reason.contains("cannot decode"), "{reason}");
    // A partial run has no Δ, so it cannot pass for a reproduction.
    assert_eq!(row["delta_top1"], Value::Null);
    // The count is the CSV's last column.
    let csv = std::fs::read_to_string(file("csv"))?;
    let last = |line: Option<&str>| line.and_then(|l| l.rsplit(',').next()).map(str::to_owned);
    assert_eq!(last(csv.lines().next()).as_deref(), Some("skipped"));
    assert_eq!(last(csv.lines().nth(1)).as_deref(), Some("1"), "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn without_data_or_weights_it_fails_at_once_saying_what_is_missing() -> Result<()> {
    let dir = scratch("missing");
    let hf = dir.join("hf");

    let start = Instant::now();
    let run = reproduce(&["resnet"], &[("HF_HOME", &hf)], None);
    let err = text(&run.stderr);
    assert!(!run.status.success());
    for needle in [
        "--imagenet DIR",
        "IMAGENET_DIR",
        "LOC_val_solution.csv",
        "parquet",
        "--ground-truth",
    ] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }

    let val = imagenet_folder(&dir)?;
    let run = reproduce(
        &[
            "resnet50.tv_in1k",
            "--imagenet",
            val.to_str().context("path")?,
            "--offline",
        ],
        &[("HF_HOME", &hf)],
        None,
    );
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("huggingface-cli download timm/resnet50.tv_in1k model.safetensors")
            && err.contains(&hf.join("hub").display().to_string()),
        "{err}"
    );

    // No server where HF_ENDPOINT points: the download fails, and says so.
    let run = reproduce(
        &[
            "resnet50.tv_in1k",
            "--imagenet",
            val.to_str().context("path")?,
        ],
        &[("HF_HOME", &hf)],
        Some("http://127.0.0.1:9"),
    );
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("downloading http://127.0.0.1:9/timm/resnet50.tv_in1k/resolve/main/model.safetensors failed"), "{err}");

    let run = reproduce(&["lenet5", "--limit", "1"], &[], None);
    assert!(text(&run.stderr).contains("is neither a family"));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    Ok(())
}

/// The table's rows whose first cell starts with `model`, split into their cells.
fn table_rows<'a>(markdown: &'a str, model: &str) -> Vec<Vec<&'a str>> {
    markdown
        .lines()
        .filter(|l| l.starts_with(&format!("| {model}")))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect()
}

/// The test error (percent) of the last epoch a shipped LeNet-5 was trained for, from the
/// metrics log beside its weights.
fn shipped_test_error(spec: &WeightSpec) -> Result<f64> {
    let WeightSource::Repository { path } = spec.source else {
        anyhow::bail!("{} does not ship in the repository", spec.id);
    };
    let dir = root().join(path);
    let dir = dir.parent().context("the weights' folder")?;
    let log = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
    let last: Value = serde_json::from_str(log.lines().last().context("an epoch")?)?;
    last["test_err"].as_f64().context("test_err")
}

#[test]
fn lenet_with_the_shipped_weights_beside_lecun_1998() -> Result<()> {
    let dir = scratch("lenet");
    let out = dir.join("out");
    let run = reproduce(
        &[
            "lenet",
            "--out",
            out.to_str().context("path")?,
            "--threads",
            "1",
        ],
        &[],
        None,
    );
    let stdout = text(&run.stdout);
    ensure!(run.status.success(), "{stdout}\n{}", text(&run.stderr));

    let family: Vec<_> = convnets::Family::LeNet.weights().collect();
    assert_eq!(family.len(), 3);
    for spec in family {
        let rows = table_rows(&stdout, &format!("`{}`", spec.id));
        let [row] = &rows[..] else {
            panic!("one row for {}: {stdout}", spec.id)
        };
        // model, protocol, images, top-1, top-5, ref top-1, ref top-5, Δ top-1.
        let measured = 100.0 - shipped_test_error(spec)?;
        let top1 = format!("{measured:.3}");
        assert_eq!(
            row[1..4],
            ["full image", "10,000", top1.as_str()],
            "{row:?}"
        );
        let own = spec.accuracy[0].top1.context("own top-1")?;
        assert_eq!(row[5], format!("{own:.3}"), "{row:?}");
        assert_eq!(row[7], format!("{:+.3}", measured - own), "{row:?}");
    }
    let papers: Vec<_> = convnets::Family::LeNet.paper_results().collect();
    assert!(!papers.is_empty());
    for r in papers {
        let rows = table_rows(&stdout, &format!("{}: {} (published)", r.arch, r.label));
        let [row] = &rows[..] else {
            panic!("one row for {}: {stdout}", r.label)
        };
        let top1 = r.accuracy.top1.context("top-1")?;
        assert_eq!(row[5], format!("{top1:.3}"));
        assert!(
            row[9].starts_with("LeCun, Bottou, Bengio, Haffner 1998"),
            "{row:?}"
        );
    }
    assert!(out.join("reproduce-lenet-single.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn lenet_retrained_briefly_is_measured_and_labelled_by_its_recipe() -> Result<()> {
    let dir = scratch("lenet-train");
    let out = dir.join("out");
    let start = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    let run = cmd
        .args([
            "reproduce",
            "lenet",
            "--train",
            "--train-epochs",
            "1",
            "--train-limit",
            "3000",
            "--limit",
            "1000",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out)
        .env("RAYON_NUM_THREADS", "1")
        .output()?;
    eprintln!("reproduce lenet --train: {:?}", start.elapsed());
    let stdout = text(&run.stdout);
    ensure!(run.status.success(), "{stdout}\n{}", text(&run.stderr));

    let json: Value = serde_json::from_str(&std::fs::read_to_string(
        out.join("reproduce-lenet-single-limit1000.json"),
    )?)?;
    let measured: Vec<&Value> = json["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .filter(|r| r["kind"] == "measured")
        .collect();
    assert_eq!(measured.len(), 3);
    for row in measured {
        let id = row["model"].as_str().context("model")?;
        let recipe = if id.starts_with("lenet5_modern") {
            "the modern recipe"
        } else {
            "the paper's protocol"
        };
        let label = row["label"].as_str().context("label")?;
        assert!(
            label.starts_with(&format!("retrained here with {recipe}"))
                && label.ends_with("shortened to 1 epoch on 3000 training digits"),
            "{id}: {label}"
        );
        assert!(stdout.contains(&format!("| `{id}`, {label} | full image | 1,000 * |")));
        assert_eq!(row["images"], 1000);
        // Trained: far above the 10 % of chance, even after 3,000 digits (the modern net's
        // single epoch is its warm-up).
        let top1 = row["top1"].as_f64().context("top-1")?;
        assert!(top1 > 30.0, "{id}: {top1}");
        // Beside the published number, not held to it: a shortened run is no regression.
        assert_eq!(row["reference"]["own"], false);
        // The row is the weights written, trained as the options said.
        let trained = out.join(format!("train-{id}"));
        let weights = std::fs::read(trained.join("weights.safetensors"))?;
        assert_eq!(row["sha256"], sha256_hex(&weights).as_str());
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(trained.join("config.json"))?)?;
        assert_eq!(config["epochs"], 1);
        assert_eq!(config["data"], "mnist, 3000 of the 60000 training images");
        assert_eq!(
            config["augment"].as_array().is_some_and(|a| !a.is_empty()),
            id.ends_with("distortions")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn families_without_weights_give_their_published_rows() -> Result<()> {
    let dir = scratch("papers");
    let out = dir.join("out");
    for family in [convnets::Family::ZfNet, convnets::Family::ResNetCifar] {
        let run = reproduce(
            &[family.name(), "--out", out.to_str().context("path")?],
            &[("HF_HOME", &dir.join("hf"))],
            Some("http://127.0.0.1:9"),
        );
        let stdout = text(&run.stdout);
        ensure!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
        assert!(stdout.contains("No pretrained weights for"), "{stdout}");
        let papers: Vec<_> = family.paper_results().collect();
        assert!(!papers.is_empty());
        for r in &papers {
            let rows = table_rows(&stdout, &format!("{}: {} (published)", r.arch, r.label));
            let [row] = &rows[..] else {
                panic!("one row for {}: {stdout}", r.label)
            };
            let top1 = r.accuracy.top1.context("top-1")?;
            assert_eq!(row[5], format!("{top1:.3}"));
            assert_eq!(row[9], r.accuracy.source);
        }
        let json: Value = serde_json::from_str(&std::fs::read_to_string(
            out.join(format!("reproduce-{}-single.json", family.name())),
        )?)?;
        assert_eq!(json["rows"].as_array().map(Vec::len), Some(papers.len()));
        assert!(
            json["note"]
                .as_str()
                .is_some_and(|n| n.contains("nothing was measured"))
        );
    }
    let zf = text(&std::fs::read(out.join("reproduce-zfnet-single.md"))?);
    assert!(
        zf.contains("Zeiler, Fergus 2014") && zf.contains("| 61.600 |"),
        "{zf}"
    );
    let cifar = text(&std::fs::read(
        out.join("reproduce-resnet-cifar-single.md"),
    )?);
    assert!(cifar.contains("He et al. 2015, Table 6") && cifar.contains("| 91.250 |"));
    assert!(cifar.contains("CIFAR-10"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn an_unreachable_network_stops_the_downloads_and_names_every_file() -> Result<()> {
    let dir = scratch("unreachable");
    let val = imagenet_folder(&dir)?;
    // A port nothing listens on: connecting fails.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let endpoint = format!("http://127.0.0.1:{closed}");
    let start = Instant::now();
    let run = reproduce(
        &["resnet", "--imagenet", val.to_str().context("path")?],
        &[
            ("HF_HOME", &dir.join("hf")),
            ("TORCH_HOME", &dir.join("torch")),
        ],
        Some(&endpoint),
    );
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let ids: Vec<&str> = convnets::Family::ResNet.weights().map(|s| s.id).collect();
    for id in &ids {
        assert!(
            err.contains(&format!("weights `{id}`")),
            "`{id}` not in: {err}"
        );
    }
    // One download tried, the others not, each with how to provide it offline.
    assert_eq!(err.matches("failed: ").count(), 1, "{err}");
    assert_eq!(
        err.matches("so this run downloads nothing more").count(),
        ids.len() - 1,
        "{err}"
    );
    assert_eq!(
        err.matches("To provide them without network").count(),
        ids.len(),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_users_cifar_resnet_checkpoint_on_a_cifar10_batch() -> Result<()> {
    let dir = scratch("cifar");
    let weights = root().join("tests/parity/checkpoints/resnet20_cifar.safetensors");
    // The common PyTorch CIFAR ResNet calls the classifier `linear`, the parity file `fc`.
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)?;
    let linear: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| match k.strip_prefix("fc.") {
            Some(rest) => (format!("linear.{rest}"), t.clone()),
            None => (k.clone(), t.clone()),
        })
        .collect();
    assert!(linear.contains_key("linear.weight") && !linear.contains_key("fc.weight"));
    let linear_file = dir.join("resnet20_linear.safetensors");
    candle_core::safetensors::save(&linear, &linear_file)?;

    // The checkpoint's own predictions under the normalisation given with --mean and --std
    // are the labels, so a run that loads and normalises as documented scores 100 %.
    let (mean, std) = ([0.2f32, 0.7, 0.4], [0.05f32, 0.1, 0.5]);
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let model = convnets::Model::new(convnets::architecture("resnet20")?, 10, vb)?;
    let n = 30;
    // Each image a plane of its own colour per channel with a little noise, so that the
    // predictions differ from image to image (white noise is one class for every image).
    let mut state = 2015u32;
    let mut random = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 24) as u8
    };
    let mut pixels = Vec::with_capacity(n * 3072);
    for _ in 0..n * 3 {
        let colour = random();
        pixels.extend((0..1024).map(|_| colour.saturating_add(random() / 8)));
    }
    let x =
        (Tensor::from_slice(&pixels, (n, 3, 32, 32), &Device::Cpu)?.to_dtype(DType::F32)? / 255.0)?;
    let channel = |v: [f32; 3]| Tensor::from_vec(v.to_vec(), (1, 3, 1, 1), &Device::Cpu);
    let x = x
        .broadcast_sub(&channel(mean)?)?
        .broadcast_div(&channel(std)?)?;
    let labels: Vec<u32> = candle_nn::ModuleT::forward_t(&model, &x, false)?
        .argmax(1)?
        .to_vec1()?;
    assert!(labels.iter().any(|&l| l != labels[0]), "{labels:?}");
    let mut batch = Vec::new();
    for (label, image) in labels.iter().zip(pixels.chunks(3072)) {
        batch.push(*label as u8);
        batch.extend_from_slice(image);
    }
    let file = dir.join("test_batch.bin");
    std::fs::write(&file, batch)?;

    let out = dir.join("out");
    let stats = |v: [f32; 3]| v.map(|c| c.to_string()).join(",");
    let (mean, std) = (stats(mean), stats(std));
    let run = |weights: &Path, normalise: bool| -> Result<Value> {
        let mut args = vec![
            "resnet20",
            "--cifar10",
            file.to_str().context("path")?,
            "--weights",
            weights.to_str().context("path")?,
            "--out",
            out.to_str().context("path")?,
            "--threads",
            "1",
        ];
        if normalise {
            args.extend(["--mean", &mean, "--std", &std]);
        }
        let run = reproduce(&args, &[], None);
        let stdout = text(&run.stdout);
        ensure!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
        assert!(stdout.contains("He et al. 2015, Table 6"), "{stdout}");
        let json: Value = serde_json::from_str(&std::fs::read_to_string(
            out.join("reproduce-resnet20-single.json"),
        )?)?;
        Ok(json["rows"][0].clone())
    };

    let row = run(&linear_file, true)?;
    assert_eq!(row["model"], "resnet20 (resnet20_linear.safetensors)");
    assert_eq!(row["dataset"], "cifar-10 test");
    assert_eq!(row["protocol"], "full image");
    assert_eq!(row["images"], n);
    assert_eq!(row["partial"], true);
    assert_eq!(row["top1"], 100.0);
    assert_eq!(row["other_weights"], true);
    assert_eq!(
        row["sha256"],
        sha256_hex(&std::fs::read(&linear_file)?).as_str()
    );
    assert_eq!(row["params"], 269_722);
    // Beside He et al.'s ResNet-20, not held to it.
    assert_eq!(row["reference"]["top1"], 91.25);
    assert_eq!(row["reference"]["own"], false);

    // The classifier named `fc` loads too; without --mean/--std, CIFAR-10's statistics
    // normalise the images, which are then not those the labels were made from.
    assert_eq!(run(&weights, true)?["top1"], 100.0);
    let default = run(&weights, false)?["top1"].as_f64().context("top-1")?;
    assert!(default < 100.0, "{default}");

    // Without the data, neither given nor in the Hugging Face cache, it says where to get
    // it, without downloading anything when --offline.
    let hf = dir.join("hf");
    let run = reproduce(
        &[
            "resnet20",
            "--weights",
            weights.to_str().context("path")?,
            "--offline",
        ],
        &[("HF_HOME", &hf)],
        Some("http://127.0.0.1:9"),
    );
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("--cifar10 PATH")
            && err.contains("uoft-cs/cifar10")
            && err.contains("downloads are off"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn options_the_selection_does_not_use_are_refused() {
    let run = reproduce(&["lenet", "--cifar10", "cifar-10-batches-bin"], &[], None);
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("evaluates nothing on CIFAR-10"), "{err}");
    let run = reproduce(&["lenet", "--protocol", "ten-crop"], &[], None);
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("is an ImageNet protocol"), "{err}");
    // Nothing to retrain: refused before anything is fetched or printed.
    let run = reproduce(&["zfnet", "--train"], &[], None);
    let err = text(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("has no LeNet-5 weights to retrain"), "{err}");
}
