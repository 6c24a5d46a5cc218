//! Datasets from the Hugging Face Hub cache, the layout `huggingface_hub` and the `hf-hub`
//! crate share: `$HF_HOME/hub/datasets--{org}--{name}/refs/main` holds a commit, and
//! `snapshots/{commit}/{file}` the files. A file already in the cache is used as is; one
//! that is not is downloaded with the `hub` feature (`hf_hub::api::sync`) from
//! `HF_ENDPOINT` (a mirror) or huggingface.co, and is an error naming the repository and the
//! file without it or offline (`HF_HUB_OFFLINE=1`, [`HubCache::with_offline`]).

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{Error, Result};

/// A Hugging Face cache folder, and where files missing from it are downloaded from.
#[derive(Debug, Clone)]
pub struct HubCache {
    cache: Cache,
    endpoint: Option<String>,
    offline: bool,
}

/// Whether `HF_HUB_OFFLINE` turns downloads off, as `huggingface_hub` reads it: `1`,
/// `true`, `yes` or `on`, in any case.
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

impl HubCache {
    /// The cache at `path` (the folder holding `datasets--*`), downloading from
    /// huggingface.co.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            cache: Cache::new(path.into()),
            endpoint: None,
            offline: false,
        }
    }

    /// The cache `huggingface_hub` uses: `$HF_HOME/hub`, `~/.cache/huggingface/hub` by
    /// default; downloading from `HF_ENDPOINT` when it is set, and not at all under
    /// `HF_HUB_OFFLINE=1`, as `huggingface_hub` does.
    pub fn from_env() -> Self {
        Self {
            cache: Cache::from_env(),
            endpoint: std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()),
            offline: offline_from_env(),
        }
    }

    /// Uses only what is in the cache when `offline`: a missing file is an error, never a
    /// download.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Downloads from `endpoint` (a mirror) instead of huggingface.co.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        self.cache.path()
    }

    /// Where missing files are downloaded from, when not huggingface.co.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
}

/// The local paths of `files` of the dataset repository `repo` (at `main`), downloading
/// them with the `hub` feature when they are not cached.
pub fn dataset_files(cache: &HubCache, repo: &str, files: &[&str]) -> Result<Vec<PathBuf>> {
    let cached = cache
        .cache
        .repo(Repo::new(repo.to_string(), RepoType::Dataset));
    files
        .iter()
        .map(|file| match cached.get(file) {
            Some(path) => Ok(path),
            None if cache.offline => Err(Error::NotFound(format!(
                "{repo}/{file} is not in the Hugging Face cache {}, and downloads are off",
                cache.path().display()
            ))),
            None => download(cache, repo, file),
        })
        .collect()
}

#[cfg(feature = "hub")]
fn download(cache: &HubCache, repo: &str, file: &str) -> Result<PathBuf> {
    let mut builder = hf_hub::api::sync::ApiBuilder::from_cache(cache.cache.clone());
    if let Some(endpoint) = cache.endpoint() {
        builder = builder.with_endpoint(endpoint.to_string());
    }
    let api = builder
        .build()
        .map_err(|e| Error::NotFound(format!("hub {repo}: {e}")))?;
    api.repo(Repo::new(repo.to_string(), RepoType::Dataset))
        .get(file)
        .map_err(|e| Error::NotFound(format!("hub {repo}/{file}: download failed: {e}")))
}

#[cfg(not(feature = "hub"))]
fn download(cache: &HubCache, repo: &str, file: &str) -> Result<PathBuf> {
    Err(Error::NotFound(format!(
        "{repo}/{file} is not in the Hugging Face cache {} and convnets-data was built \
         without the `hub` feature that downloads it",
        cache.path().display()
    )))
}
