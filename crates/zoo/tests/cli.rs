//! The `convnets` command line: `classify` gives the model's own logits and top-k on real
//! photographs, `models` lists every weights id, `inspect` recognises a checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};
use candle_core::{DType, Device, Tensor};
use candle_nn::ModuleT;
use convnets::core::parity::Fixture;
use convnets::data::imagenet::CLASSES;
use convnets::data::{Transform, decode::decode};
use convnets::{Model, weight};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn photo(name: &str) -> PathBuf {
    workspace()
        .join("crates/data/tests/fixtures/photos")
        .join(name)
}

fn convnets(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convnets"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run convnets")
}

fn ok(out: &Output) -> Result<String> {
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout.clone())?)
}

/// ResNet-18 with the parity generator's weights, in torchvision's names.
fn resnet18_file(name: &str) -> Result<PathBuf> {
    let fx = Fixture::load(workspace().join("tests/parity/fixtures/resnet18.json"))?;
    let tensors: HashMap<String, Tensor> = fx
        .tensors
        .iter()
        .map(|t| Ok((t.name.clone(), t.tensor(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    let path = std::env::temp_dir().join(format!(
        "convnets-cli-{}-{name}.safetensors",
        std::process::id()
    ));
    candle_core::safetensors::save(&tensors, &path)?;
    Ok(path)
}

#[test]
fn classify_inspect_and_models() -> Result<()> {
    let file = resnet18_file("classify")?;
    let images = [photo("chelsea.jpg"), photo("coffee_png.JPEG")];
    let (a, b) = (
        images[0].to_str().context("path")?,
        images[1].to_str().context("path")?,
    );
    let weights = file.to_str().context("path")?;

    let json = ok(&convnets(&[
        "classify",
        a,
        b,
        "--model",
        "resnet18.tv_in1k",
        "--weights",
        weights,
        "--top",
        "3",
        "--format",
        "json",
    ]))?;
    let results: Vec<Value> = serde_json::from_str(&json)?;
    assert_eq!(results.len(), 2);

    // The same logits as the model computes on the weights' own transform of the photos.
    let spec = weight("resnet18.tv_in1k")?;
    let model = Model::from_file(spec, &file, DType::F32, &Device::Cpu)?;
    let transform = Transform::new(spec.transform)?;
    for (result, path) in results.iter().zip(&images) {
        let img = decode(&std::fs::read(path)?, "photo")?;
        let x = Tensor::from_vec(transform.apply(&img), (1, 3, 224, 224), &Device::Cpu)?;
        let expected: Vec<f32> = model.forward_t(&x, false)?.flatten_all()?.to_vec1()?;
        let logits: Vec<f32> = result["logits"]
            .as_array()
            .context("logits")?
            .iter()
            .map(|v| v.as_f64().map(|v| v as f32).context("a logit"))
            .collect::<Result<_>>()?;
        assert_eq!(logits.len(), 1000);
        // Batched with the other photo here, alone there: the same to float rounding.
        let err = logits
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-3, "{err}");
        let top = result["top"].as_array().context("top")?;
        assert_eq!(top.len(), 3);
        let best = (0..1000)
            .max_by(|&i, &j| logits[i].total_cmp(&logits[j]))
            .context("argmax")?;
        assert_eq!(top[0]["index"], best);
        assert!(top[0]["probability"].as_f64() >= top[1]["probability"].as_f64());
        // Each guess named as the class table names its index.
        for guess in top {
            let index = guess["index"].as_u64().context("index")? as usize;
            let class = CLASSES.get(index).context("a class")?;
            assert_eq!(guess["synset"], class.synset);
            assert_eq!(guess["name"], class.lemmas);
        }
    }
    // The table itself: torchvision's index 281 is the tabby cat.
    let tabby = CLASSES.get(281).context("class 281")?;
    assert_eq!(
        (tabby.synset, tabby.lemmas),
        ("n02123045", "tabby, tabby cat")
    );

    let text = ok(&convnets(&[
        "classify",
        a,
        "--model",
        "resnet18.tv_in1k",
        "--weights",
        weights,
    ]))?;
    assert_eq!(text.lines().count(), 1 + 5, "{text}");
    assert!(text.starts_with(a));
    let first = results[0]["top"][0]["name"].as_str().context("a name")?;
    assert!(
        text.lines().nth(1).is_some_and(|l| l.contains(first)),
        "{text}"
    );

    let wrong = convnets(&["classify", a, "--model", "resnet50"]);
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("is an architecture") && err.contains("resnet50.tv2_in1k"),
        "{err}"
    );

    let inspected = ok(&convnets(&["inspect", weights, "--no-tensors"]))?;
    assert!(
        inspected.contains("fits:\n  resnet18, 1000 classes, key map `torchvision` or `timm`"),
        "{inspected}"
    );

    let models = ok(&convnets(&["models"]))?;
    for w in convnets::weights() {
        assert!(models.contains(&format!("`{}`", w.id)), "{}", w.id);
    }
    // Every published result, weights or not: the reference accuracy of each architecture.
    let (_, published) = models
        .split_once("# Published results")
        .context("a published results section")?;
    let rows: Vec<&str> = published
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| architecture |"))
        .collect();
    assert_eq!(rows.len(), convnets::paper_results().count());
    for (row, r) in rows.iter().zip(convnets::paper_results()) {
        let top1 = r
            .accuracy
            .top1
            .map_or_else(String::new, |v| format!("{v:.3}"));
        assert!(
            row.starts_with(&format!("| {} | {} | ", r.arch, r.label))
                && row.contains(&format!("| {top1} |"))
                && row.ends_with(&format!("| {} |", r.accuracy.source)),
            "{row}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.starts_with("| zfnet |") && r.contains("| 61.600 |")),
        "{published}"
    );
    // Caffe's AlexNet has no paper of its own; BVLC's readme gives its centre-crop numbers.
    assert!(
        rows.iter().any(|r| r.starts_with("| bvlc_alexnet |")
            && r.contains("| single crop | 57.100 | 80.200 |")
            && r.contains("models/bvlc_alexnet/readme.md")),
        "{published}"
    );
    let _ = std::fs::remove_file(&file);
    Ok(())
}

/// `resnet18.tv_in1k` (the parity generator's weights) in a Hugging Face cache of its own,
/// laid out as `huggingface-cli download` leaves it: the snapshot links to `blobs/<sha256>`,
/// the name the fetcher checks the file against. Returns the cache (`HF_HUB_CACHE`).
#[cfg(unix)]
fn hub_cache_with_resnet18(file: &Path) -> Result<PathBuf> {
    let cache = std::env::temp_dir().join(format!("convnets-cli-hub-{}", std::process::id()));
    let repo = cache.join("models--timm--resnet18.tv_in1k");
    let sha = convnets::core::checkpoint::sha256_file(file)?;
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit);
    for dir in [repo.join("blobs"), repo.join("refs"), snapshot.clone()] {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(file, repo.join("blobs").join(&sha))?;
    std::fs::write(repo.join("refs/main"), commit)?;
    let link = snapshot.join("model.safetensors");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("../../blobs/{sha}"), link)?;
    Ok(cache)
}

/// `RUST_LOG` decides what is logged: the fetcher's debug event that says how it checked the
/// weights shows with `convnets=debug`, and neither it nor anything else with `off` or the
/// default filter (`info`); a mistyped directive is reported and skipped.
#[cfg(unix)]
#[test]
fn rust_log_sets_the_log_filter() -> Result<()> {
    let file = resnet18_file("rust-log")?;
    let cache = hub_cache_with_resnet18(&file)?;
    let chelsea = photo("chelsea.jpg");
    let classify = |rust_log: Option<&str>| -> Result<(String, String)> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_convnets"));
        cmd.arg("classify")
            .arg(&chelsea)
            .args(["--model", "resnet18.tv_in1k", "--top", "1"])
            .env("HF_HUB_CACHE", &cache)
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output()?;
        let stdout = ok(&out)?;
        Ok((stdout, String::from_utf8_lossy(&out.stderr).into_owned()))
    };
    let verified = |stderr: &str| {
        stderr
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("weights verified") && l.contains("HubEtag"))
    };

    let (debug_out, debug_err) = classify(Some("convnets=debug"))?;
    assert!(verified(&debug_err), "{debug_err}");
    let (off_out, off_err) = classify(Some("off"))?;
    assert!(off_err.is_empty(), "{off_err}");
    let (default_out, default_err) = classify(None)?;
    assert!(!verified(&default_err), "{default_err}");
    // The filter changes the logs only.
    assert!(debug_out.contains("chelsea.jpg"), "{debug_out}");
    assert_eq!(debug_out, off_out);
    assert_eq!(debug_out, default_out);

    // Lossy: the bad directive is reported on stderr, the good one still applies.
    let (_, stderr) = classify(Some("convnets=debug,["))?;
    assert!(stderr.contains("invalid filter directive"), "{stderr}");
    assert!(verified(&stderr), "{stderr}");
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_file(&file);
    Ok(())
}
