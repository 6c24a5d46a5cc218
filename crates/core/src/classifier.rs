//! The interface every model of the zoo implements.

use candle_core::{Result, Tensor};
use candle_nn::ModuleT;

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
