//! Decoding and transforming in parallel, batches out in order.
//!
//! One reader thread pulls encoded images from the dataset (file reads, or parquet rows in
//! order), `workers` threads decode and transform them, and the [`Loader`] iterator puts
//! the results back in dataset order and stacks them into batches. At most `prefetch`
//! images are between the reader and the consumer at any time (a token is taken before an
//! image is read and returned when its result is consumed), so memory stays bounded while
//! the workers run ahead of the model by up to `prefetch` images.
//!
//! An image that cannot be read or decoded stops the iteration with an error naming it, or,
//! with [`LoaderConfig::skip_unreadable`], is left out and listed in
//! [`Loader::skipped`] — never dropped silently.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};

use crate::decode::decode;
use crate::error::{Error, Result};
use crate::imagenet::Item;
use crate::transform::{Transform, Views};

/// How a [`Loader`] batches and parallelises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Images per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// Decoding threads.
    pub workers: usize,
    /// Images in flight between reading and consumption, at most.
    pub prefetch: usize,
    /// Leave unreadable images out (listed in [`Loader::skipped`]) instead of failing.
    pub skip_unreadable: bool,
    /// Views per image.
    pub views: Views,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            batch_size: 64,
            workers,
            prefetch: 256,
            skip_unreadable: false,
            views: Views::CenterCrop,
        }
    }
}

/// A batch: images, labels, and the names of the images.
#[derive(Debug)]
pub struct Batch {
    /// `(n, 3, h, w)` for one view, `(n, views, 3, h, w)` for several; `f32`, on the CPU.
    pub images: Tensor,
    /// `(n,)` class indices, `u32`.
    pub labels: Tensor,
    /// What each image is (file, or shard and row), batch order.
    pub names: Vec<String>,
}

/// An image left out because it could not be read or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file, or the shard and row.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Decodes one image and applies the transform under `views`: the floats, view-major, and
/// the shape of one view `(3, h, w)`.
pub fn load(
    bytes: &[u8],
    name: &str,
    transform: &Transform,
    views: Views,
) -> Result<(Vec<f32>, [usize; 3])> {
    let img = decode(bytes, name)?;
    let crops = transform.views(&img, views);
    let mut out = Vec::new();
    let shape = [3, crops[0].height(), crops[0].width()];
    for crop in &crops {
        transform.normalize_into(crop, &mut out);
    }
    Ok((out, shape))
}

struct Done {
    name: String,
    label: u32,
    result: Result<(Vec<f32>, [usize; 3])>,
}

/// The parallel loader: an iterator of batches in dataset order.
pub struct Loader {
    config: LoaderConfig,
    results: Receiver<(usize, Result<Done>)>,
    tokens: SyncSender<()>,
    pending: BTreeMap<usize, Result<Done>>,
    next: usize,
    skipped: Vec<Skipped>,
    loaded: usize,
    finished: bool,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("config", &self.config)
            .field("loaded", &self.loaded)
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

impl Loader {
    /// Starts the threads over `items` (e.g. [`crate::imagenet::ImageNetVal::items`]).
    pub fn new(
        items: Box<dyn Iterator<Item = Result<Item>> + Send>,
        transform: Transform,
        config: LoaderConfig,
    ) -> Result<Self> {
        if config.batch_size == 0 || config.workers == 0 || config.prefetch == 0 {
            return Err(Error::Config(format!(
                "batch_size, workers and prefetch must be positive: {config:?}"
            )));
        }
        let (tokens_tx, tokens_rx) = sync_channel::<()>(config.prefetch);
        for _ in 0..config.prefetch {
            tokens_tx
                .send(())
                .map_err(|_| Error::Config("token channel".into()))?;
        }
        let (jobs_tx, jobs_rx) = sync_channel::<(usize, Result<Item>)>(config.prefetch);
        let (results_tx, results_rx) = channel();
        // The threads are detached: dropping the loader drops the token sender and the
        // result receiver, which ends the reader, then the workers.
        std::thread::spawn(move || {
            for (seq, item) in items.enumerate() {
                // No token: the consumer is gone.
                if tokens_rx.recv().is_err() || jobs_tx.send((seq, item)).is_err() {
                    return;
                }
            }
        });

        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..config.workers {
            let jobs = Arc::clone(&jobs_rx);
            let results: Sender<_> = results_tx.clone();
            std::thread::spawn(move || {
                loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, item)) = job else { return };
                    let done = item.map(|item| Done {
                        result: item
                            .bytes
                            .and_then(|b| load(&b, &item.name, &transform, config.views)),
                        name: item.name,
                        label: item.label,
                    });
                    if results.send((seq, done)).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(Self {
            config,
            results: results_rx,
            tokens: tokens_tx,
            pending: BTreeMap::new(),
            next: 0,
            skipped: Vec::new(),
            loaded: 0,
            finished: false,
        })
    }

    /// Images left out so far (with [`LoaderConfig::skip_unreadable`]).
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Images delivered in batches so far.
    pub fn loaded(&self) -> usize {
        self.loaded
    }

    /// The next result in dataset order, `None` at the end.
    fn next_done(&mut self) -> Option<Result<Done>> {
        loop {
            if let Some(done) = self.pending.remove(&self.next) {
                self.next += 1;
                // The reader may fetch one more image. It may have finished already.
                let _ = self.tokens.try_send(());
                return Some(done);
            }
            match self.results.recv() {
                Ok((seq, done)) => {
                    self.pending.insert(seq, done);
                }
                Err(_) => return None,
            }
        }
    }

    fn stack(&self, data: Vec<f32>, shape: [usize; 3], n: usize) -> Result<Tensor> {
        let [c, h, w] = shape;
        let views = self.config.views.count();
        let t = if views == 1 {
            Tensor::from_vec(data, (n, c, h, w), &Device::Cpu)?
        } else {
            Tensor::from_vec(data, (n, views, c, h, w), &Device::Cpu)?
        };
        Ok(t)
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let (mut data, mut labels, mut names, mut shape) =
            (Vec::new(), Vec::new(), Vec::new(), None);
        while names.len() < self.config.batch_size {
            let Some(done) = self.next_done() else { break };
            let done = match done {
                Ok(done) => done,
                Err(fatal) => {
                    self.finished = true;
                    return Some(Err(fatal));
                }
            };
            match done.result {
                Ok((values, s)) => {
                    if *shape.get_or_insert(s) != s {
                        self.finished = true;
                        return Some(Err(Error::Config(format!(
                            "{}: views of {s:?} and {:?} in one batch (dense views of images \
                             of different shapes need batch_size 1)",
                            done.name,
                            shape.unwrap_or(s)
                        ))));
                    }
                    data.extend(values);
                    labels.push(done.label);
                    names.push(done.name);
                }
                Err(e) if self.config.skip_unreadable => self.skipped.push(Skipped {
                    name: done.name,
                    reason: e.to_string(),
                }),
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
        let Some(shape) = shape else {
            self.finished = true;
            return None;
        };
        let n = names.len();
        self.loaded += n;
        Some(self.stack(data, shape, n).and_then(|images| {
            Ok(Batch {
                images,
                labels: Tensor::from_vec(labels, n, &Device::Cpu)?,
                names,
            })
        }))
    }
}
