//! The interface every model of the zoo implements.

use candle_core::{Result, Tensor};
use candle_nn::ModuleT;
use rayon::prelude::*;

/// Pixels per task of [`Classifier::classify`] in evaluation: one 224 × 224 image.
const CHUNK_PIXELS: usize = 224 * 224;

/// An image classifier: `forward_t(x, train) == forward_head(forward_features(x, train), train)`.
///
/// The split follows timm: `forward_features` returns the last feature map (`[N, C, H, W]`,
/// before global pooling), `forward_head` pools, flattens, applies dropout and the
/// classifier, and returns logits `[N, num_classes]`. Both are batch-agnostic and do no I/O.
pub trait Classifier: ModuleT + Send + Sync {
    /// The backbone: input images `[N, 3, H, W]` to the last feature map.
    fn forward_features(&self, xs: &Tensor, train: bool) -> Result<Tensor>;

    /// The head: the last feature map to logits `[N, num_classes]`.
    fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor>;

    /// The number of classes the head predicts.
    fn num_classes(&self) -> usize;

    /// The whole network, `forward_head(forward_features(xs, train), train)`: what every
    /// model's `ModuleT::forward_t` is.
    ///
    /// In evaluation on the CPU the backbone runs image by image (ImageNet sizes; smaller
    /// images by groups of about 50 000 pixels), the images in parallel on the rayon pool,
    /// and the head on the whole batch: each thread then works on one image's maps, which
    /// stay in cache and whose buffers the allocator recycles, where a batch's maps would be
    /// fresh memory at every layer (docs/perf.md). A model may ask for groups of images
    /// instead ([`Classifier::eval_group`]), to run its last layers, whose weights are large
    /// and maps small, on several images at once. Nothing in an evaluation backbone mixes
    /// images, so the values are the same (up to the order of floating-point sums); the head
    /// (VGG's 400 MB fc6) still reads its weights once per batch.
    fn classify(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let (n, pixels) = (xs.dim(0)?, xs.dims()[2..].iter().product::<usize>());
        // Small images (CIFAR, MNIST) go in groups, so that a task's work outweighs the cost
        // of dispatching its operations; large ones one by one, or in the groups the model
        // asks for (no more than give every thread a task).
        let per_task = CHUNK_PIXELS.div_ceil(pixels.max(1)).clamp(1, n.max(1));
        let grouped = per_task == 1 && self.eval_group() > 1;
        let per_task = if grouped {
            let threads = rayon::current_num_threads();
            self.eval_group().min(n.div_ceil(threads)).max(1)
        } else {
            per_task
        };
        // A forward pass being counted stays on this thread, where the tally is.
        let sequential = train
            || per_task >= n
            || !xs.device().is_cpu()
            || xs.track_op()
            || crate::flops::counting();
        let features = if sequential {
            self.forward_features(xs, train)?
        } else {
            let maps = (0..n.div_ceil(per_task))
                .into_par_iter()
                .map(|i| {
                    let first = i * per_task;
                    let x = xs.narrow(0, first, per_task.min(n - first))?;
                    if grouped {
                        self.forward_features_group(&x)
                    } else {
                        self.forward_features(&x, false)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&maps, 0)?
        };
        self.forward_head(&features, train)
    }

    /// Images per task of [`Classifier::classify`] in evaluation on the CPU, where images
    /// are large enough to run one per task: 1 by default. A model whose last layers have
    /// small maps and large weights (ResNet's last two stages) asks for more, and runs them
    /// in [`Classifier::forward_features_group`].
    fn eval_group(&self) -> usize {
        1
    }

    /// The backbone in evaluation for a group of [`Classifier::eval_group`] images, on one
    /// thread: by default [`Classifier::forward_features`]. A model that asks for groups
    /// runs its early layers image by image here (their maps stay in cache) and its later
    /// ones on the group, whose images then share each weight's reads.
    fn forward_features_group(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_features(xs, false)
    }

    /// Folds every BatchNorm into the convolution before it, for inference (see
    /// [`crate::layers::ConvNormAct::fold_batch_norm`]). Models with BatchNorm override this;
    /// the default, for models without any, does nothing.
    fn fold_batch_norm(&mut self) -> Result<()> {
        Ok(())
    }

    /// The forward pass in training mode, with the auxiliary outputs a model has.
    ///
    /// Models without auxiliary heads keep this default; GoogLeNet and Inception-v3 return
    /// their auxiliary logits here, each with the loss weight its paper uses.
    fn forward_train(&self, xs: &Tensor) -> Result<TrainOutput> {
        Ok(TrainOutput {
            logits: self.forward_t(xs, true)?,
            aux: Vec::new(),
        })
    }
}

/// What a model returns in training mode.
#[derive(Debug, Clone)]
pub struct TrainOutput {
    /// The main classifier's logits `[N, num_classes]`.
    pub logits: Tensor,
    /// The auxiliary classifiers' logits, in the order the model defines them.
    pub aux: Vec<AuxLogits>,
}

/// The logits of an auxiliary classifier and the weight its loss gets in the paper's recipe.
#[derive(Debug, Clone)]
pub struct AuxLogits {
    /// The auxiliary head's module name (`aux1`, `AuxLogits`, ...).
    pub name: &'static str,
    /// Its logits `[N, num_classes]`.
    pub logits: Tensor,
    /// The weight of its loss in the total (GoogLeNet: 0.3; Inception-v3 as torchvision
    /// trains it: 0.4).
    pub loss_weight: f64,
}
