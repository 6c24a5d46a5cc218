//! Weights and datasets fetched from a local server that answers as the Hugging Face Hub and
//! as torchvision's download site do (`convnets_workspace_tests::hub`): downloaded into the
//! cache, checked against their sha256 before use, loaded strictly, and giving PyTorch's
//! logits; a corrupted download refused and not kept; an interrupted one resumed; a gated
//! file fetched with a token; offline, a missing file explained. Datasets (convnets-data's
//! `hub` feature, which the zoo's turns on) land in the cache in huggingface_hub's layout,
//! read as the committed parquet fixtures are, and are read from there afterwards without
//! the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::ModuleT;
use convnets::{Check, Error, Fetcher, Model};
use convnets_core::parity::Fixture;
use convnets_core::spec::{EvalTransform, WeightSource, WeightSpec};
use convnets_data::cifar::Cifar;
use convnets_data::hub::HubCache;
use convnets_data::mnist::{FASHION_MNIST_HUB_FILES, FASHION_MNIST_HUB_REPO, FashionMnist};
use convnets_workspace_tests::hub::{COMMIT, Fault, HubServer, Served, sha256_hex};
use convnets_workspace_tests::root;

/// The CIFAR ResNet-20 that PyTorch saved, both ways, with the logits PyTorch computed.
fn checkpoint(ext: &str) -> PathBuf {
    root()
        .join("tests/parity/checkpoints")
        .join(format!("resnet20_cifar.{ext}"))
}

const REPO: &str = "convnets-test/resnet20";

/// A hub row for it, as the families' tables have them: no sha256, the hub's ETag is checked.
const HUB_SPEC: WeightSpec = WeightSpec {
    id: "resnet20.test",
    arch: "resnet20",
    source: WeightSource::Hub {
        repo: REPO,
        file: "model.safetensors",
        revision: "main",
    },
    sha256: None,
    key_map: &convnets_resnet::weights::TORCHVISION,
    transform: EvalTransform::torchvision(32, 32),
    num_classes: 10,
    num_params: 269_722,
    accuracy: &[],
};

/// A fresh, empty folder under the system temp dir, removed with the value.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("convnets-hub-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    Scratch(dir)
}

fn fetcher(dir: &Path, server: &HubServer) -> Fetcher {
    Fetcher::new(dir.join("hub"), dir.join("torch")).with_endpoint(server.url())
}

/// Loads the fetched file and compares its logits with PyTorch's.
fn matches_pytorch(spec: &WeightSpec, fetched: &convnets::Fetched) -> Result<()> {
    let fixture = Fixture::load(checkpoint("json"))?;
    let model = Model::pretrained(spec, fetched, DType::F32, &Device::Cpu)?;
    let logits = model.forward_t(&fixture.input(DType::F32, &Device::Cpu)?, false)?;
    fixture.check(&logits)?;
    Ok(())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_hub_file_is_downloaded_checked_cached_and_loaded() -> Result<()> {
    let bytes = std::fs::read(checkpoint("safetensors"))?;
    let sha = sha256_hex(&bytes);
    let server = HubServer::start(vec![Served::hub(REPO, "model.safetensors", bytes)]);
    let dir = scratch("download");

    let fetched = fetcher(&dir, &server).fetch(&HUB_SPEC)?;
    assert_eq!(fetched.check(), Check::HubEtag);
    assert_eq!(fetched.sha256(), sha);
    // The layout huggingface_hub reads: the snapshot entry links to the blob named by ETag.
    let snapshot = dir
        .join("hub/models--convnets-test--resnet20/snapshots")
        .join(convnets_workspace_tests::hub::COMMIT)
        .join("model.safetensors");
    assert_eq!(fetched.path(), snapshot);
    assert!(std::fs::canonicalize(&snapshot)?.ends_with(format!("blobs/{sha}")));
    assert_eq!(
        std::fs::read_to_string(dir.join("hub/models--convnets-test--resnet20/refs/main"))?,
        convnets_workspace_tests::hub::COMMIT
    );
    matches_pytorch(&HUB_SPEC, &fetched)?;

    // Cached: found offline, without another request, and checked again.
    let requests = server.requests().len();
    let again = fetcher(&dir, &server).with_offline(true).fetch(&HUB_SPEC)?;
    assert_eq!(again, fetched);
    assert_eq!(server.requests().len(), requests);
    Ok(())
}

#[test]
fn a_corrupted_download_is_refused_and_not_kept() -> Result<()> {
    let bytes = std::fs::read(checkpoint("safetensors"))?;
    let dir = scratch("corrupt");
    {
        let server = HubServer::start(vec![
            Served::hub(REPO, "model.safetensors", bytes.clone()).with_fault(Fault::Corrupt),
        ]);
        let err = fetcher(&dir, &server).fetch(&HUB_SPEC).unwrap_err();
        assert!(
            matches!(err, Error::Core(convnets_core::Error::Checksum { .. })),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("sha256 mismatch") && message.contains("not loaded"),
            "{message}"
        );
        // Neither the blob nor the snapshot entry stays in the cache.
        let left: Vec<_> = files_under(&dir.join("hub"))
            .into_iter()
            .filter(|p| p.extension().is_none_or(|e| e != "lock"))
            .filter(|p| !p.ends_with("refs/main"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // Served correctly, the same cache gets the right file.
    let server = HubServer::start(vec![Served::hub(REPO, "model.safetensors", bytes)]);
    let fetched = fetcher(&dir, &server).fetch(&HUB_SPEC)?;
    matches_pytorch(&HUB_SPEC, &fetched)
}

#[test]
fn an_interrupted_hub_download_resumes_where_it_stopped() -> Result<()> {
    let bytes = std::fs::read(checkpoint("safetensors"))?;
    let size = bytes.len();
    let cut = 400_000;
    let server = HubServer::start(vec![
        Served::hub(REPO, "model.safetensors", bytes).with_fault(Fault::CutAfter(cut)),
    ]);
    let dir = scratch("resume");
    let err = fetcher(&dir, &server).fetch(&HUB_SPEC).unwrap_err();
    assert!(err.to_string().contains("downloading"), "{err}");
    let part = files_under(&dir.join("hub"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "part"))
        .context("the interrupted download leaves its .part file")?;
    assert_eq!(std::fs::metadata(&part)?.len(), cut as u64);

    let fetched = fetcher(&dir, &server).fetch(&HUB_SPEC)?;
    matches_pytorch(&HUB_SPEC, &fetched)?;
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.range.as_deref() == Some(&format!("bytes={cut}-")) && r.status == 206),
        "{requests:?}"
    );
    // Only the missing bytes were sent again (plus one byte per metadata request).
    let sent: usize = requests.iter().map(|r| r.sent).sum();
    assert!(sent <= size + 4, "{sent} bytes sent for a file of {size}");
    Ok(())
}

#[test]
fn a_gated_file_needs_the_token() -> Result<()> {
    let bytes = std::fs::read(checkpoint("safetensors"))?;
    let server = HubServer::start(vec![
        Served::hub(REPO, "model.safetensors", bytes).gated("hf_secret"),
    ]);
    let dir = scratch("gated");
    let err = fetcher(&dir, &server)
        .fetch(&HUB_SPEC)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HF_TOKEN") && err.contains("huggingface-cli login"),
        "{err}"
    );
    let fetched = fetcher(&dir, &server)
        .with_token(Some("hf_secret".into()))
        .fetch(&HUB_SPEC)?;
    matches_pytorch(&HUB_SPEC, &fetched)
}

#[test]
fn offline_a_missing_file_says_where_to_put_it() {
    let server = HubServer::start(vec![]);
    let dir = scratch("offline");
    let err = fetcher(&dir, &server)
        .with_offline(true)
        .fetch(&HUB_SPEC)
        .unwrap_err()
        .to_string();
    for needle in [
        "resnet20.test",
        "--offline",
        "huggingface-cli download convnets-test/resnet20 model.safetensors --revision main",
        "models--convnets-test--resnet20",
        &dir.join("hub").display().to_string(),
    ] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    assert!(server.requests().is_empty());
}

/// A torchvision-style row: a `.pth` at a URL whose name carries its sha256 prefix.
fn url_spec(server: &HubServer, bytes: &[u8]) -> WeightSpec {
    let prefix: &'static str = sha256_hex(bytes)[..8].to_string().leak();
    let url = format!("{}/models/resnet20-{prefix}.pth", server.url()).leak();
    WeightSpec {
        source: WeightSource::Url { url },
        sha256: Some(prefix),
        ..HUB_SPEC
    }
}

#[test]
fn a_torchvision_pth_is_downloaded_resumed_checked_and_read() -> Result<()> {
    let bytes = std::fs::read(checkpoint("pth"))?;
    let path = format!("/models/resnet20-{}.pth", &sha256_hex(&bytes)[..8]);
    let server = HubServer::start(vec![
        Served::at(&path, bytes.clone()).with_fault(Fault::CutAfter(300_000)),
    ]);
    let spec = url_spec(&server, &bytes);
    let dir = scratch("url");
    let err = fetcher(&dir, &server).fetch(&spec).unwrap_err().to_string();
    assert!(err.contains("run again to resume"), "{err}");

    let fetched = fetcher(&dir, &server).fetch(&spec)?;
    assert_eq!(fetched.check(), Check::Spec);
    assert_eq!(fetched.path(), dir.join("torch").join(&path[8..]));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.range.as_deref() == Some("bytes=300000-") && r.status == 206)
    );
    // Read with candle's pickle reader, through the same key map as the safetensors file.
    matches_pytorch(&spec, &fetched)
}

#[test]
fn a_corrupted_pth_is_refused_and_deleted() -> Result<()> {
    let bytes = std::fs::read(checkpoint("pth"))?;
    let path = format!("/models/resnet20-{}.pth", &sha256_hex(&bytes)[..8]);
    let server = HubServer::start(vec![
        Served::at(&path, bytes.clone()).with_fault(Fault::Corrupt),
    ]);
    let spec = url_spec(&server, &bytes);
    let dir = scratch("url-corrupt");
    let err = fetcher(&dir, &server).fetch(&spec).unwrap_err();
    assert!(
        matches!(err, Error::Core(convnets_core::Error::Checksum { .. })),
        "{err}"
    );
    assert!(files_under(&dir.join("torch")).is_empty());
    Ok(())
}

/// convnets-data's parquet fixtures (`crates/data/tests/hub_fixtures.py`), in folders laid out
/// as the Hub's dataset repositories.
fn data_fixture(path: &str) -> PathBuf {
    root().join("crates/data/tests/fixtures/hub").join(path)
}

/// Serves the dataset repository `repo`: each of its `files` with the fixture's bytes.
fn serve_dataset(repo: &str, files: &[(&str, PathBuf)]) -> Result<HubServer> {
    let served = files
        .iter()
        .map(|(file, fixture)| Ok(Served::dataset(repo, file, std::fs::read(fixture)?)))
        .collect::<Result<_>>()?;
    Ok(HubServer::start(served))
}

/// Checks that `file` of the dataset `repo` is in the cache `hub` where huggingface_hub looks
/// for it: `refs/main` names the served commit, whose snapshot entry links to the blob named
/// by the file's ETag (its sha256), holding the fixture's bytes.
fn assert_cached(hub: &Path, repo: &str, file: &str, fixture: &Path) -> Result<()> {
    let folder = hub.join(format!("datasets--{}", repo.replace('/', "--")));
    assert_eq!(std::fs::read_to_string(folder.join("refs/main"))?, COMMIT);
    let snapshot = folder.join("snapshots").join(COMMIT).join(file);
    let bytes = std::fs::read(fixture)?;
    let blob = std::fs::canonicalize(&snapshot)
        .with_context(|| format!("{} is not in the cache", snapshot.display()))?;
    assert!(
        blob.ends_with(format!("blobs/{}", sha256_hex(&bytes))),
        "{blob:?}"
    );
    assert!(
        std::fs::read(&snapshot)? == bytes,
        "{snapshot:?} differs from {fixture:?}"
    );
    Ok(())
}

#[test]
fn fashion_mnist_is_downloaded_into_the_hub_cache_and_read_from_it() -> Result<()> {
    let repo = FASHION_MNIST_HUB_REPO;
    let files = FASHION_MNIST_HUB_FILES.map(|file| (file, data_fixture(file)));
    let server = serve_dataset(repo, &files)?;
    let dir = scratch("fashion-mnist");
    let cache = HubCache::new(dir.join("hub")).with_endpoint(server.url());

    // What `FashionMnist::resolve(None)` reads when Debian's copy is not installed.
    let fm = FashionMnist::from_hub(&cache)?;
    for (file, fixture) in &files {
        assert_cached(cache.path(), repo, file, fixture)?;
    }
    // The fixture's rows: the first 5 training and 3 test images of Fashion-MNIST.
    let committed = FashionMnist::from_parquet_dir(&data_fixture(""))?;
    assert_eq!((fm.train.count, fm.train.rows, fm.train.cols), (5, 28, 28));
    assert_eq!((fm.test.count, fm.test.rows, fm.test.cols), (3, 28, 28));
    assert_eq!(fm.train.labels, [9, 0, 0, 3, 0]);
    assert_eq!(fm.test.labels, [9, 2, 1]);
    assert!(fm.train.images == committed.train.images);
    assert!(fm.test.images == committed.test.images);

    // Cached: read again without a request, then with the server gone.
    let requests = server.requests().len();
    let again = FashionMnist::from_hub(&cache)?;
    assert_eq!(server.requests().len(), requests);
    drop(server);
    let serverless = FashionMnist::from_hub(&cache)?;
    for split in [&again.train, &serverless.train] {
        assert!(split.images == fm.train.images && split.labels == fm.train.labels);
    }
    Ok(())
}

#[test]
fn cifar10_without_a_path_is_downloaded_into_the_hub_cache_and_read_from_it() -> Result<()> {
    let (repo, file) = Cifar::Ten.hub_file(false);
    let fixture = data_fixture(&format!("cifar10/{file}"));
    let server = serve_dataset(repo, &[(file, fixture.clone())])?;
    let dir = scratch("cifar10");
    let cache = HubCache::new(dir.join("hub")).with_endpoint(server.url());

    let split = Cifar::Ten.resolve_in(None, false, &cache)?;
    assert_cached(cache.path(), repo, file, &fixture)?;
    // The fixture's rows: 32x32 thumbnails of four photographs, labelled 3, 1, 4, 1.
    let thumbnails = std::fs::read(data_fixture("cifar_thumbnails_chw.u8"))?;
    assert_eq!(split.labels, [3, 1, 4, 1]);
    assert!(split.images == thumbnails);

    // Cached: read again without a request, then with the server gone.
    let requests = server.requests().len();
    let again = Cifar::Ten.resolve_in(None, false, &cache)?;
    assert_eq!(server.requests().len(), requests);
    drop(server);
    let serverless = Cifar::Ten.resolve_in(None, false, &cache)?;
    for split in [&again, &serverless] {
        assert!(split.images == thumbnails && split.labels == [3, 1, 4, 1]);
    }
    Ok(())
}
