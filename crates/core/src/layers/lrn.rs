//! `torch.nn.LocalResponseNorm`: the across-channel normalisation of AlexNet and GoogLeNet.

use candle_core::{Result, Tensor};
use candle_nn::ModuleT;

/// Local response normalisation across channels, exactly as `torch.nn.LocalResponseNorm`:
///
/// ```text
/// b[c] = a[c] / (k + alpha / n · Σ a[c']²)^beta,   c' ∈ [c - n/2, c + (n-1)/2] ∩ [0, C)
/// ```
///
/// The sum is divided by `n` even at the first and last channels, where the window is cut
/// short: PyTorch zero-pads the squares and averages with `count_include_pad`. Caffe's
/// `ACROSS_CHANNELS` LRN divides `alpha` by `local_size` the same way, so Caffe's constants
/// carry over unchanged; the AlexNet paper's do not, because its eq. (2) has no `1/n`
/// (see [`LocalResponseNorm::alexnet`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalResponseNorm {
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
}

impl LocalResponseNorm {
    /// `LocalResponseNorm(size, alpha, beta, k)`.
    pub fn new(size: usize, alpha: f64, beta: f64, k: f64) -> Result<Self> {
        if size == 0 {
            candle_core::bail!("LocalResponseNorm: size must be positive")
        }
        Ok(Self {
            size,
            alpha,
            beta,
            k,
        })
    }

    /// The normalisation of Krizhevsky et al. 2012 §3.3 (`n=5, k=2, α=1e-4, β=0.75`) in
    /// PyTorch's convention: the paper multiplies the sum of squares by `α` itself, PyTorch
    /// by `α/n`, so the paper's `α` becomes `n·α = 5e-4` here. (Caffe's `bvlc_alexnet` is a
    /// different normalisation: `alpha=1e-4` in Caffe's own `α/n` convention, and `k=1`.)
    pub fn alexnet() -> Self {
        Self {
            size: 5,
            alpha: 5e-4,
            beta: 0.75,
            k: 2.0,
        }
    }

    /// Applies the normalisation over dimension 1 of an `[N, C, ...]` tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() < 3 {
            candle_core::bail!(
                "LocalResponseNorm: expected an [N, C, ...] input, got {:?}",
                x.dims()
            )
        }
        let c = x.dim(1)?;
        let squares = x
            .sqr()?
            .pad_with_zeros(1, self.size / 2, (self.size - 1) / 2)?;
        let mut sum = squares.narrow(1, 0, c)?;
        for offset in 1..self.size {
            sum = (sum + squares.narrow(1, offset, c)?)?;
        }
        let denom = sum
            .affine(self.alpha / self.size as f64, self.k)?
            .powf(self.beta)?;
        x / denom
    }
}

impl ModuleT for LocalResponseNorm {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}
