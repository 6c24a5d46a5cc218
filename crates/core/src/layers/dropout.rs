//! Dropout that draws its masks from the seedable stream of [`crate::random`].

use candle_core::{Result, Tensor};
use candle_nn::ModuleT;

/// `torch.nn.Dropout`: in training, zeroes each element with probability `p` and scales the
/// survivors by `1/(1-p)`; in evaluation, the identity.
///
/// Unlike `candle_nn::Dropout`, the mask comes from [`crate::random`], so a training run
/// seeded with [`crate::random::manual_seed`] is repeatable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1]`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            candle_core::bail!("Dropout: probability {p} is not in [0, 1]")
        }
        Ok(Self { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return x.zeros_like();
        }
        let u = crate::random::uniform(x.dims(), x.device())?;
        let keep = u.ge(self.p)?.to_dtype(x.dtype())?;
        (x * keep)? * (1.0 / (1.0 - self.p))
    }
}
