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
//! [`Loader::skipped`] — never dropped silently. Nor does a panic drop one: a worker that
//! panics on an image reports it as an error naming the image, and if a thread dies with
//! images still owed (the reader, inside the dataset's iterator), the iteration ends with
//! [`Error::Lost`] rather than early: the reader announces how many images there are, and
//! the loader ends only when it has delivered that many.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
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

/// What a worker does with the bytes of one image: [`load`] with the loader's transform.
type Work = dyn Fn(&[u8], &str) -> Result<(Vec<f32>, [usize; 3])> + Send + Sync;

struct Done {
    name: String,
    label: u32,
    result: Result<(Vec<f32>, [usize; 3])>,
}

/// What the loader's threads send the consumer.
enum Message {
    /// The result of the image at this position of the dataset.
    Done(usize, Result<Done>),
    /// The reader reached the end of the dataset: this many images.
    End(usize),
}

/// The parallel loader: an iterator of batches in dataset order.
pub struct Loader {
    config: LoaderConfig,
    results: Receiver<Message>,
    tokens: SyncSender<()>,
    pending: BTreeMap<usize, Result<Done>>,
    next: usize,
    /// The number of images, once the reader has seen the end.
    total: Option<usize>,
    skipped: Vec<Skipped>,
    loaded: usize,
    finished: bool,
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
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
        let views = config.views;
        let work = move |bytes: &[u8], name: &str| load(bytes, name, &transform, views);
        Self::start(items, Arc::new(work), config)
    }

    fn start(
        mut items: Box<dyn Iterator<Item = Result<Item>> + Send>,
        work: Arc<Work>,
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
        let end: Sender<Message> = results_tx.clone();
        std::thread::spawn(move || {
            // A token before each read (pulling an item reads its file), so that at most
            // `prefetch` images are read ahead. No token: the consumer is gone.
            let mut seq = 0;
            while tokens_rx.recv().is_ok() {
                let Some(item) = items.next() else {
                    let _ = end.send(Message::End(seq));
                    return;
                };
                if jobs_tx.send((seq, item)).is_err() {
                    return;
                }
                seq += 1;
            }
        });

        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..config.workers {
            let jobs = Arc::clone(&jobs_rx);
            let results: Sender<_> = results_tx.clone();
            let work = Arc::clone(&work);
            std::thread::spawn(move || {
                loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, item)) = job else { return };
                    let done = item.and_then(|item| {
                        let result = match item.bytes {
                            Err(e) => Err(e),
                            // A panic is a bug to report, not an unreadable image to skip:
                            // it fails the iteration, naming the image.
                            Ok(bytes) => {
                                catch_unwind(AssertUnwindSafe(|| work(&bytes, &item.name)))
                                    .map_err(|panic| {
                                        Error::Lost(format!(
                                            "{}: the loader's worker panicked on it: {}",
                                            item.name,
                                            panic_message(&*panic)
                                        ))
                                    })?
                            }
                        };
                        Ok(Done {
                            name: item.name,
                            label: item.label,
                            result,
                        })
                    });
                    if results.send(Message::Done(seq, done)).is_err() {
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
            total: None,
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

    /// The next result in dataset order, `None` at the end, an error when the threads
    /// stopped before it.
    fn next_done(&mut self) -> Option<Result<Done>> {
        loop {
            if let Some(done) = self.pending.remove(&self.next) {
                self.next += 1;
                // The reader may fetch one more image. It may have finished already.
                let _ = self.tokens.try_send(());
                return Some(done);
            }
            if self.total == Some(self.next) {
                return None;
            }
            match self.results.recv() {
                Ok(Message::Done(seq, done)) => {
                    self.pending.insert(seq, done);
                }
                Ok(Message::End(total)) => self.total = Some(total),
                // Every thread is gone and the image at `next` never came.
                Err(_) => return Some(Err(self.lost())),
            }
        }
    }

    /// What a loader whose threads all stopped early failed to deliver.
    fn lost(&self) -> Error {
        let after = match self.next {
            0 => "before the first image".to_string(),
            n => format!("after {n} images"),
        };
        Error::Lost(match self.total {
            Some(total) => format!(
                "the loader's workers stopped {after}: images {} to {} of {total} (dataset \
                 order, from 0) were lost",
                self.next,
                total - 1
            ),
            None => format!(
                "the loader's reader stopped {after}, before the end of the dataset (a panic \
                 in the dataset's iterator): the batch being built and the rest of the \
                 dataset were lost"
            ),
        })
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::Context as _;

    use super::*;

    /// `n` items named by their position, counting how many the loader has pulled.
    fn counted(
        n: usize,
        pulled: Arc<AtomicUsize>,
    ) -> Box<dyn Iterator<Item = Result<Item>> + Send> {
        Box::new((0..n).map(move |i| {
            pulled.fetch_add(1, Ordering::SeqCst);
            Ok(Item {
                name: i.to_string(),
                bytes: Ok(Vec::new()),
                label: i as u32,
            })
        }))
    }

    /// An image of one value, its position, after `delay(position)`.
    fn work(delay: fn(usize) -> u64) -> Arc<Work> {
        Arc::new(move |_: &[u8], name: &str| {
            let i: usize = name.parse().map_err(|_| Error::Config(name.into()))?;
            std::thread::sleep(Duration::from_millis(delay(i)));
            Ok((vec![i as f32], [1, 1, 1]))
        })
    }

    fn config(batch_size: usize, workers: usize, prefetch: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size,
            workers,
            prefetch,
            skip_unreadable: false,
            views: Views::CenterCrop,
        }
    }

    /// Waits until `pulled` reaches `at_least`, then a little longer for any overshoot.
    fn settle(pulled: &AtomicUsize, at_least: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while pulled.load(Ordering::SeqCst) < at_least && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
        pulled.load(Ordering::SeqCst)
    }

    #[test]
    fn no_more_than_prefetch_images_are_read_ahead() -> anyhow::Result<()> {
        let pulled = Arc::new(AtomicUsize::new(0));
        let items = counted(100, Arc::clone(&pulled));
        let mut loader = Loader::start(items, work(|_| 0), config(4, 3, 6))?;
        assert_eq!(settle(&pulled, 6), 6);
        // Consuming a batch of four frees four places.
        let batch = loader.next().context("a batch")??;
        assert_eq!(batch.names.len(), 4);
        assert_eq!(settle(&pulled, 10), 10);
        assert_eq!(
            loader
                .map(|b| b.map(|b| b.names.len()))
                .sum::<Result<usize>>()?,
            96
        );
        Ok(())
    }

    #[test]
    fn batches_keep_dataset_order_whatever_order_the_workers_finish_in() -> anyhow::Result<()> {
        let pulled = Arc::new(AtomicUsize::new(0));
        let items = counted(23, pulled);
        // Later images often finish first.
        let loader = Loader::start(items, work(|i| (7 - i as u64 % 8) * 2), config(5, 4, 9))?;
        let (mut names, mut values, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for batch in loader {
            let batch = batch?;
            sizes.push(batch.names.len());
            assert_eq!(batch.labels.to_vec1::<u32>()?.len(), batch.names.len());
            values.extend(batch.images.flatten_all()?.to_vec1::<f32>()?);
            names.extend(batch.names);
        }
        let expected: Vec<String> = (0..23).map(|i| i.to_string()).collect();
        assert_eq!(names, expected);
        assert_eq!(values, (0..23).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(sizes, [5, 5, 5, 5, 3]);
        Ok(())
    }

    #[test]
    fn a_worker_panic_is_an_error_naming_the_image_even_when_skipping() -> anyhow::Result<()> {
        for skip_unreadable in [false, true] {
            let panicky: Arc<Work> = Arc::new(|_: &[u8], name: &str| {
                assert_ne!(name, "5", "a bug in the transform");
                Ok((vec![0.0], [1, 1, 1]))
            });
            let pulled = Arc::new(AtomicUsize::new(0));
            let config = LoaderConfig {
                skip_unreadable,
                ..config(2, 2, 4)
            };
            let results: Vec<_> = Loader::start(counted(9, pulled), panicky, config)?.collect();
            // Two whole batches, then the error; nothing after it.
            assert_eq!(results.len(), 3, "skip {skip_unreadable}");
            assert!(results[..2].iter().all(Result::is_ok));
            let e = results[2].as_ref().err().context("an error")?.to_string();
            assert!(
                e.starts_with("5: the loader's worker panicked on it: ")
                    && e.contains("a bug in the transform"),
                "{e}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_reader_that_dies_is_an_error_not_an_early_end() -> anyhow::Result<()> {
        let items: Box<dyn Iterator<Item = Result<Item>> + Send> =
            Box::new((0..10).map(|i: usize| {
                assert!(i < 6, "the dataset's iterator broke");
                Ok(Item {
                    name: i.to_string(),
                    bytes: Ok(Vec::new()),
                    label: 0,
                })
            }));
        let results: Vec<_> = Loader::start(items, work(|_| 0), config(4, 2, 8))?.collect();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].as_ref().map(|b| b.names.len()).ok(), Some(4));
        let e = results[1].as_ref().err().context("an error")?.to_string();
        assert!(
            e.contains("reader stopped after 6 images, before the end of the dataset"),
            "{e}"
        );
        Ok(())
    }
}
