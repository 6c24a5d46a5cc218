//! Finding pretrained weights on disk or on the network, and checking them before use.
//!
//! A [`WeightSpec`]'s source says where its file lives:
//!
//! - **Hugging Face Hub** files are looked up in the hub cache that `huggingface_hub` and the
//!   `hf-hub` crate share (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//!   `~/.cache/huggingface/hub`) and downloaded into it with `hf-hub` when missing: from
//!   `$HF_ENDPOINT` (a mirror) if set, with `$HF_TOKEN` or the token `huggingface-cli login`
//!   saved for gated repositories, resuming an interrupted download from its `.part` file.
//! - **URLs** (torchvision's `.pth` files) are looked up in, and downloaded to, torch.hub's
//!   cache (`$TORCH_HOME/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints`), so files
//!   PyTorch already downloaded are reused; an interrupted download resumes too. They are
//!   read by candle's pickle reader when loaded.
//! - **Repository** files ship with the convnets source tree and are found under the root
//!   given to [`Fetcher::with_repository`].
//!
//! Every file is checked before it is handed out as [`Fetched`]: against the spec's sha256
//! (or the prefix of it torchvision's file names carry, which `torch.hub` checks), else
//! against the hub's own content hash (the ETag of an LFS file is its sha256). A file that
//! does not match is deleted from the cache and refused; a file with nothing to check it
//! against is refused too, unless it ships in the repository. Offline (`--offline`, or
//! `HF_HUB_OFFLINE=1`), nothing is downloaded, and a missing file is an error that says
//! where to put it. A download that cannot connect at all is an [`Error::Unreachable`],
//! so that a caller fetching many files can stop downloading
//! ([`Fetcher::with_downloads_stopped`]) rather than wait out a connect timeout per file.

use std::path::{Path, PathBuf};

use convnets_core::checkpoint::{check_sha256, sha256_file};
use convnets_core::spec::{WeightSource, WeightSpec};
use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// The Hugging Face Hub's address.
pub const HF_DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// What a fetched file was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The sha256 (or sha256 prefix) the weight table records.
    Spec,
    /// The hub's content hash: the ETag of the LFS file, its sha256.
    HubEtag,
    /// Nothing: the file ships in the convnets repository, which is its provenance.
    Shipped,
}

/// A weights file on disk whose checksum has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    path: PathBuf,
    sha256: String,
    check: Check,
}

impl Fetched {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its sha256, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What it was checked against.
    pub fn check(&self) -> Check {
        self.check
    }
}

/// Where weights are looked for and downloaded from; see the module documentation.
#[derive(Debug, Clone)]
pub struct Fetcher {
    hub_cache: PathBuf,
    endpoint: String,
    token: Option<String>,
    torch_checkpoints: PathBuf,
    repository: Option<PathBuf>,
    /// Why nothing is downloaded, when nothing is: said in the error of a missing file.
    offline: Option<String>,
    progress: bool,
}

const OFFLINE: &str = "and downloads are off (--offline, or HF_HUB_OFFLINE)";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

impl Fetcher {
    /// Weights cached in `hub_cache` (the folder holding `models--*`) and `torch_cache`,
    /// downloaded from the Hugging Face Hub without a token, no repository checkout.
    pub fn new(hub_cache: impl Into<PathBuf>, torch_cache: impl Into<PathBuf>) -> Self {
        Self {
            hub_cache: hub_cache.into(),
            endpoint: HF_DEFAULT_ENDPOINT.to_string(),
            token: None,
            torch_checkpoints: torch_cache.into(),
            repository: None,
            offline: None,
            progress: false,
        }
    }

    /// The places and settings the environment gives, as `huggingface_hub` and `torch.hub`
    /// read them: `HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN` (else the token file
    /// `huggingface-cli login` writes), `HF_HUB_OFFLINE`, `TORCH_HOME`, `XDG_CACHE_HOME`.
    pub fn from_env() -> Self {
        let cache_home = env("XDG_CACHE_HOME").map_or_else(|| home().join(".cache"), PathBuf::from);
        let hf_home = env("HF_HOME").map_or_else(|| cache_home.join("huggingface"), PathBuf::from);
        let hub_cache = env("HF_HUB_CACHE").map_or_else(|| hf_home.join("hub"), PathBuf::from);
        let torch_home = env("TORCH_HOME").map_or_else(|| cache_home.join("torch"), PathBuf::from);
        let token = env("HF_TOKEN").or_else(|| {
            std::fs::read_to_string(hf_home.join("token"))
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        Self::new(hub_cache, torch_home.join("hub").join("checkpoints"))
            .with_endpoint(env("HF_ENDPOINT").unwrap_or_else(|| HF_DEFAULT_ENDPOINT.to_string()))
            .with_token(token)
            .with_offline(convnets_data::hub::offline_from_env())
    }

    /// The same with another hub cache folder (the one holding `models--*`).
    pub fn with_hub_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.hub_cache = dir.into();
        self
    }

    /// The same with another hub address (a mirror, or a test server).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_string();
        self
    }

    /// The same with another hub token (or none).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The same with another folder for downloads from URLs.
    pub fn with_torch_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.torch_checkpoints = dir.into();
        self
    }

    /// The root of a convnets checkout, where the weights of
    /// [`WeightSource::Repository`] rows are.
    pub fn with_repository(mut self, root: impl Into<PathBuf>) -> Self {
        self.repository = Some(root.into());
        self
    }

    /// Never download, or download what is missing.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline.then(|| OFFLINE.to_string());
        self
    }

    /// Never download from now on, a missing file's error giving `why` (completing "weights
    /// … are not in the cache …"): for a caller that saw a download fail to connect.
    pub fn with_downloads_stopped(mut self, why: impl Into<String>) -> Self {
        self.offline = Some(why.into());
        self
    }

    /// Show a progress bar while downloading.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Whether downloads are off.
    pub fn is_offline(&self) -> bool {
        self.offline.is_some()
    }

    /// The hub cache folder.
    pub fn hub_cache(&self) -> &Path {
        &self.hub_cache
    }

    /// The folder URL downloads go to.
    pub fn torch_cache(&self) -> &Path {
        &self.torch_checkpoints
    }

    /// The weights of `spec` on disk, downloaded first if they are not and downloads are on,
    /// and checked (see the module documentation).
    pub fn fetch(&self, spec: &WeightSpec) -> Result<Fetched> {
        match spec.source {
            WeightSource::Repository { path } => self.repository_file(spec, path),
            WeightSource::Hub {
                repo,
                file,
                revision,
            } => self.hub_file(spec, repo, file, revision),
            WeightSource::Url { url } => self.url_file(spec, url),
        }
    }

    fn repository_file(&self, spec: &WeightSpec, path: &str) -> Result<Fetched> {
        let Some(root) = &self.repository else {
            return Err(Error::Fetch(format!(
                "weights `{}` ship in the convnets repository ({path}): run from a checkout \
                 (`cargo xtask ...`), or give the file itself",
                spec.id
            )));
        };
        let file = root.join(path);
        if !file.is_file() {
            return Err(Error::Fetch(format!(
                "weights `{}` should ship in the repository at {}, which does not exist",
                spec.id,
                file.display()
            )));
        }
        self.verify(spec, &file, None)
    }

    fn hub_cached(&self, repo: &str, file: &str, revision: &str) -> Option<PathBuf> {
        Cache::new(self.hub_cache.clone())
            .repo(hub_repo(repo, revision))
            .get(file)
            .filter(|p| p.is_file())
    }

    fn hub_file(
        &self,
        spec: &WeightSpec,
        repo: &str,
        file: &str,
        revision: &str,
    ) -> Result<Fetched> {
        let path = match self.hub_cached(repo, file, revision) {
            Some(path) => path,
            None => match &self.offline {
                Some(why) => return Err(self.missing_hub(spec, repo, file, revision, why)),
                None => self.hub_download(repo, file, revision).map_err(|failed| {
                    failed.into_error(|why| {
                        self.missing_hub(spec, repo, file, revision, &format!("and {why}"))
                    })
                })?,
            },
        };
        // The snapshot entry links to `blobs/<etag>`; an LFS file's ETag is its sha256.
        let blob = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
        let etag = blob
            .parent()
            .filter(|dir| dir.file_name().is_some_and(|n| n == "blobs"))
            .and(blob.file_name())
            .and_then(|n| n.to_str())
            .filter(|n| is_sha256(n))
            .map(str::to_string);
        self.verify(spec, &path, etag.as_deref()).inspect_err(|e| {
            if matches!(e, Error::Core(convnets_core::Error::Checksum { .. })) {
                // Never use it again: the next run downloads the file anew.
                let _ = std::fs::remove_file(&blob);
                let _ = std::fs::remove_file(&path);
            }
        })
    }

    fn missing_hub(
        &self,
        spec: &WeightSpec,
        repo: &str,
        file: &str,
        revision: &str,
        why: &str,
    ) -> Error {
        Error::Fetch(format!(
            "weights `{id}` ({repo}, {file} at {revision}) are not in the Hugging Face cache \
             {cache} {why}.\n\
             To provide them without network, on a machine that has it run\n    \
             huggingface-cli download {repo} {file} --revision {revision}\n\
             and copy its cache folder `{folder}` into {cache} (or point HF_HOME at a copy of \
             that machine's Hugging Face folder).",
            id = spec.id,
            cache = self.hub_cache.display(),
            folder = repo_folder(repo),
        ))
    }

    fn url_file(&self, spec: &WeightSpec, url: &str) -> Result<Fetched> {
        let dest = self.torch_checkpoints.join(url_file_name(url));
        if !dest.is_file() {
            if let Some(why) = &self.offline {
                return Err(self.missing_url(spec, url, &dest, why));
            }
            download_url(url, &dest, self.progress).map_err(|failed| {
                failed.into_error(|why| self.missing_url(spec, url, &dest, &format!("and {why}")))
            })?;
        }
        self.verify(spec, &dest, None).inspect_err(|e| {
            if matches!(e, Error::Core(convnets_core::Error::Checksum { .. })) {
                let _ = std::fs::remove_file(&dest);
            }
        })
    }

    fn missing_url(&self, spec: &WeightSpec, url: &str, dest: &Path, why: &str) -> Error {
        Error::Fetch(format!(
            "weights `{}` are not at {} {why}.\n\
             To provide them without network, download {url} on a machine that has it and \
             put the file there (torch.hub's cache: $TORCH_HOME/hub/checkpoints, \
             ~/.cache/torch/hub/checkpoints by default).",
            spec.id,
            dest.display(),
        ))
    }

    fn verify(&self, spec: &WeightSpec, path: &Path, hub_etag: Option<&str>) -> Result<Fetched> {
        let sha256 = sha256_file(path)?;
        let check = match (spec.sha256, hub_etag, spec.source) {
            (Some(expected), _, _) => {
                check_sha256(path, &sha256, expected)?;
                Check::Spec
            }
            (None, Some(etag), _) => {
                check_sha256(path, &sha256, etag)?;
                Check::HubEtag
            }
            (None, None, WeightSource::Repository { .. }) => Check::Shipped,
            (None, None, _) => {
                return Err(Error::Fetch(format!(
                    "weights `{}`: {} cannot be checked (the table records no sha256 and the \
                     source publishes none), so it is not used",
                    spec.id,
                    path.display()
                )));
            }
        };
        tracing::debug!(id = spec.id, path = %path.display(), ?check, "weights verified");
        Ok(Fetched {
            path: path.to_path_buf(),
            sha256,
            check,
        })
    }

    #[cfg(feature = "hub")]
    fn hub_download(
        &self,
        repo: &str,
        file: &str,
        revision: &str,
    ) -> std::result::Result<PathBuf, Failed> {
        use hf_hub::api::sync::{ApiBuilder, ApiError};
        let url = format!("{}/{repo}/resolve/{revision}/{file}", self.endpoint);
        let api = ApiBuilder::from_cache(Cache::new(self.hub_cache.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(self.progress)
            .build()
            .map_err(|e| Failed::other(format!("the hub client could not start: {e}")))?;
        api.repo(hub_repo(repo, revision))
            .download(file)
            .map_err(|e| match e {
                ApiError::RequestError(e) if matches!(*e, ureq::Error::Status(401 | 403, _)) => {
                    Failed::other(format!(
                        "{url} refused access ({e}): for a gated or private repository set \
                         HF_TOKEN or run `huggingface-cli login`"
                    ))
                }
                ApiError::RequestError(e) => Failed::of(&e, &url),
                e => Failed::other(format!("downloading {url} failed: {e}")),
            })
    }

    #[cfg(not(feature = "hub"))]
    fn hub_download(&self, _: &str, _: &str, _: &str) -> std::result::Result<PathBuf, Failed> {
        Err(Failed::other(
            "this build of convnets has no `hub` feature to download it",
        ))
    }
}

/// Why a download failed, and whether it could not even connect.
#[derive(Debug)]
struct Failed {
    why: String,
    unreachable: bool,
}

impl Failed {
    fn other(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            unreachable: false,
        }
    }

    /// A failed request to `url`: unreachable when no connection was made (name not
    /// resolved, connection refused or timed out, proxy unreachable).
    #[cfg(feature = "hub")]
    fn of(e: &ureq::Error, url: &str) -> Self {
        use ureq::ErrorKind::{ConnectionFailed, Dns, ProxyConnect};
        Self {
            why: format!("downloading {url} failed: {e}"),
            unreachable: matches!(e.kind(), Dns | ConnectionFailed | ProxyConnect),
        }
    }

    /// The error to return, its message made by `missing` from the reason.
    fn into_error(self, missing: impl FnOnce(&str) -> Error) -> Error {
        match missing(&self.why) {
            Error::Fetch(message) if self.unreachable => Error::Unreachable(message),
            e => e,
        }
    }
}

fn hub_repo(repo: &str, revision: &str) -> Repo {
    Repo::with_revision(repo.to_string(), RepoType::Model, revision.to_string())
}

/// The cache folder of a model repository: `models--{owner}--{name}`.
fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// The file name at the end of a URL.
fn url_file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Downloads `url` to `dest` through `dest.part`, resuming a `.part` an earlier attempt
/// left (HTTP range request; a server that ignores the range sends the whole file, which
/// replaces it).
#[cfg(feature = "hub")]
fn download_url(url: &str, dest: &Path, progress: bool) -> std::result::Result<(), Failed> {
    use std::io::{Read, Write};

    let io = |e: std::io::Error| Failed::other(format!("{}: {e}", dest.display()));
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let part = dest.with_file_name(format!("{}.part", url_file_name(url)));
    let have = std::fs::metadata(&part).map_or(0, |m| m.len());
    let agent = ureq::AgentBuilder::new().try_proxy_from_env(true).build();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| Failed::of(&e, url))?;
    let resumed = response.status() == 206;
    let offset = if resumed { have } else { 0 };
    let total = response
        .header("Content-Length")
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| n + offset);
    let mut file = if resumed {
        std::fs::OpenOptions::new().append(true).open(&part)
    } else {
        std::fs::File::create(&part)
    }
    .map_err(io)?;
    let bar = if progress {
        indicatif::ProgressBar::new(total.unwrap_or(0))
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bytes}/{total_bytes} {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(offset);
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = offset;
    let interrupted = |written: u64, e: &dyn std::fmt::Display| {
        Failed::other(format!(
            "downloading {url} stopped after {written} bytes ({e}); run again to resume from \
             {}",
            part.display()
        ))
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(interrupted(written, &e)),
        };
        file.write_all(&buf[..n]).map_err(io)?;
        written += n as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    if let Some(total) = total.filter(|&t| t != written) {
        return Err(interrupted(written, &format!("{total} expected")));
    }
    file.sync_all().map_err(io)?;
    std::fs::rename(&part, dest).map_err(io)
}

#[cfg(not(feature = "hub"))]
fn download_url(_: &str, _: &Path, _: bool) -> std::result::Result<(), Failed> {
    Err(Failed::other(
        "this build of convnets has no `hub` feature to download it",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_cache_entries() {
        assert_eq!(
            url_file_name("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
            "alexnet-owt-7be5be79.pth"
        );
        assert_eq!(url_file_name("http://h/x.pth?download=1"), "x.pth");
        assert_eq!(
            repo_folder("timm/resnet50.tv_in1k"),
            "models--timm--resnet50.tv_in1k"
        );
        assert!(is_sha256(&"a".repeat(64)) && !is_sha256("abc"));
    }
}
