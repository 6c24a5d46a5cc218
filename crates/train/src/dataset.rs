//! What the trainer reads: a dataset that can assemble a batch from example indices.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::augment::{Augmenter, Image};
use crate::{Error, Result};

/// A labelled dataset the trainer can draw batches from.
pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples at `indices` as images `[N, C, H, W]` (f32, normalised) and labels `[N]`
    /// (u32), each image passed through `augment` (the configuration's augmentations and the
    /// step's generator) in training; `None` in evaluation.
    fn batch(
        &self,
        indices: &[usize],
        augment: Option<&mut Augmenter<'_>>,
        device: &Device,
    ) -> Result<(Tensor, Tensor)>;
}

/// Per-channel normalisation of pixels scaled to `[0, 1]`: `x = p · scale + offset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Multiplier of each channel.
    pub scale: Vec<f32>,
    /// Offset of each channel.
    pub offset: Vec<f32>,
}

impl Normalize {
    /// `(p - mean) / std`, torchvision's `Normalize`.
    pub fn mean_std(mean: &[f32], std: &[f32]) -> Self {
        Self {
            scale: std.iter().map(|s| 1.0 / s).collect(),
            offset: mean.iter().zip(std).map(|(m, s)| -m / s).collect(),
        }
    }

    /// LeCun et al. 1998 §II-B: background (white) to -0.1 and foreground (black) to
    /// 1.175, which makes the mean roughly 0 and the variance roughly 1 on MNIST (whose
    /// pixels store ink, 0 for background).
    pub fn lecun() -> Self {
        Self {
            scale: vec![1.275],
            offset: vec![-0.1],
        }
    }
}

/// A dataset held in memory as bytes (MNIST, CIFAR), with a fixed padding and a
/// normalisation.
#[derive(Debug, Clone)]
pub struct InMemory {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    shape: (usize, usize, usize),
    pad: usize,
    normalize: Normalize,
}

impl InMemory {
    /// `n` images of `c × h × w` bytes each, and their labels.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u32>,
        shape: (usize, usize, usize),
        normalize: Normalize,
    ) -> Result<Self> {
        let (c, h, w) = shape;
        if pixels.len() != labels.len() * c * h * w {
            return Err(Error::Config(format!(
                "{} pixel bytes for {} images of {c}×{h}×{w}",
                pixels.len(),
                labels.len()
            )));
        }
        if normalize.scale.len() != c || normalize.offset.len() != c {
            return Err(Error::Config(format!(
                "normalisation for {} channels, images have {c}",
                normalize.scale.len()
            )));
        }
        Ok(Self {
            pixels,
            labels,
            shape,
            pad: 0,
            normalize,
        })
    }

    /// Pads every image by `p` zero pixels on each side, in training and evaluation (LeNet-5
    /// reads MNIST's 28×28 digits in a 32×32 field).
    pub fn with_padding(mut self, p: usize) -> Self {
        self.pad = p;
        self
    }

    /// The labels.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    fn image(&self, i: usize) -> Image {
        let (c, h, w) = self.shape;
        let n = c * h * w;
        Image {
            c,
            h,
            w,
            data: self.pixels[i * n..(i + 1) * n]
                .iter()
                .map(|&p| f32::from(p) / 255.0)
                .collect(),
        }
        .pad(self.pad)
    }
}

impl Dataset for InMemory {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn batch(
        &self,
        indices: &[usize],
        mut augment: Option<&mut Augmenter<'_>>,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let mut data = Vec::new();
        let mut dims = (0, 0, 0);
        for &i in indices {
            if i >= self.labels.len() {
                return Err(Error::Config(format!(
                    "example {i} of a dataset of {}",
                    self.labels.len()
                )));
            }
            let img = match augment.as_deref_mut() {
                Some(augmenter) => augmenter.apply(self.image(i)),
                None => self.image(i),
            };
            let plane = img.h * img.w;
            for (c, chunk) in img.data.chunks(plane).enumerate() {
                let (s, o) = (self.normalize.scale[c], self.normalize.offset[c]);
                data.extend(chunk.iter().map(|&p| p * s + o));
            }
            dims = (img.c, img.h, img.w);
        }
        let (c, h, w) = dims;
        let images = Tensor::from_vec(data, (indices.len(), c, h, w), device)?;
        let labels: Vec<u32> = indices.iter().map(|&i| self.labels[i]).collect();
        Ok((images, Tensor::from_vec(labels, indices.len(), device)?))
    }
}
