//! The cost of a forward pass, counted from the model's own structure.
//!
//! [`count`] runs a closure (typically `model.forward_t(&x, false)` on a one-image batch) in
//! *counting mode* on the current thread: every [`Conv2d`](crate::layers::Conv2d) and
//! [`Linear`](crate::layers::Linear) adds the multiply-accumulates it would perform to a tally
//! and returns zeros of its output's shape instead of computing anything, and BatchNorm
//! passes its input through. Everything else (pooling, concatenation, residual additions)
//! runs as usual on those zeros, so the shapes, and hence the counts, are the ones the model
//! really produces, and counting VGG-19 at 224×224 takes milliseconds rather than a
//! 20-GFLOP forward pass.
//!
//! **What is counted**: multiply-accumulates (MACs) of convolutions and fully connected
//! layers, nothing else. This is torchvision's convention for the `_ops` ("GFLOPS") field of
//! its weight metadata (pytorch/vision#6936, whose counter reports `aten.convolution` and
//! `aten.addmm`/`mm` as MACs) and what the ResNet paper calls "FLOPs" (3.6 billion for
//! ResNet-34): one multiply-add is one operation, biases, BatchNorm, activations and pooling
//! are free. Twice [`Macs::total`] is the count of separate multiplications and additions.
//! Layers that are not built from `Conv2d`/`Linear` (LeNet-5's RBF output, adaptive pooling
//! expressed as matrix products) are not counted.

use std::cell::Cell;

use candle_core::{Result, Tensor};

/// Multiply-accumulates of a forward pass, by layer kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Macs {
    /// Of convolutions.
    pub conv: u64,
    /// Of fully connected layers.
    pub linear: u64,
}

impl Macs {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.conv + self.linear
    }

    /// In billions: torchvision's "GFLOPS" column.
    pub fn giga(&self) -> f64 {
        self.total() as f64 / 1e9
    }
}

thread_local! {
    static TALLY: Cell<Option<Macs>> = const { Cell::new(None) };
}

/// Restores the enclosing tally (or none) when a count ends, even by a panic.
struct Restore(Option<Macs>);

impl Drop for Restore {
    fn drop(&mut self) {
        TALLY.with(|t| t.set(self.0));
    }
}

/// Runs `forward` in counting mode and returns its result (built from zeros: only its shape
/// means anything) and the multiply-accumulates of the convolutions and linear layers it
/// went through. Counts nest: an inner count does not add to an outer one.
pub fn count<T>(forward: impl FnOnce() -> Result<T>) -> Result<(T, Macs)> {
    let restore = Restore(TALLY.with(|t| t.replace(Some(Macs::default()))));
    let out = forward()?;
    let macs = TALLY.with(|t| t.get()).unwrap_or_default();
    drop(restore);
    Ok((out, macs))
}

/// Whether this thread is counting: layers without multiply-accumulates to count may then
/// skip their arithmetic, as long as they keep the output's shape.
pub(crate) fn counting() -> bool {
    TALLY.with(|t| t.get()).is_some()
}

/// In counting mode, records a convolution of `x` by `weight` (`[out, in/groups, kh, kw]`)
/// with output size `(oh, ow)` and returns the zeros that stand for its output.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    groups: usize,
    output_size: impl FnOnce(usize, usize) -> (usize, usize),
) -> Result<Option<Tensor>> {
    if !counting() {
        return Ok(None);
    }
    let (n, c, h, w) = x.dims4()?;
    let (out, per_group, kh, kw) = weight.dims4()?;
    if c != per_group * groups {
        candle_core::bail!(
            "conv2d: {c} input channels for a weight {:?} in {groups} groups",
            weight.dims()
        )
    }
    let (oh, ow) = output_size(h, w);
    add(|m| m.conv += (n * out * oh * ow * per_group * kh * kw) as u64);
    Tensor::zeros((n, out, oh, ow), x.dtype(), x.device()).map(Some)
}

/// In counting mode, records `x · weightᵀ` (`weight: [out, in]`) and returns the zeros that
/// stand for it.
pub(crate) fn linear(x: &Tensor, weight: &Tensor) -> Result<Option<Tensor>> {
    if !counting() {
        return Ok(None);
    }
    let (out, inp) = weight.dims2()?;
    let mut dims = x.dims().to_vec();
    match dims.last_mut() {
        Some(last) if *last == inp => *last = out,
        _ => candle_core::bail!(
            "linear: input {:?} for a weight {:?}",
            x.dims(),
            weight.dims()
        ),
    }
    add(|m| m.linear += (x.elem_count() * out) as u64);
    Tensor::zeros(dims, x.dtype(), x.device()).map(Some)
}

fn add(f: impl FnOnce(&mut Macs)) {
    TALLY.with(|t| {
        if let Some(mut m) = t.get() {
            f(&mut m);
            t.set(Some(m));
        }
    });
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{ModuleT, VarBuilder, VarMap};

    use super::*;
    use crate::layers::{BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Linear};

    fn vb(varmap: &VarMap) -> VarBuilder<'static> {
        crate::init::var_builder(varmap, 0, DType::F32, &Device::Cpu)
    }

    #[test]
    fn convolutions_and_linear_layers_count_their_multiply_accumulates() -> Result<()> {
        let varmap = VarMap::new();
        let vb = vb(&varmap);
        // 6 → 8 channels in 2 groups, 3×5 kernel, stride 2, padding (1, 2): 9 × 12 → 5 × 6.
        let cfg = Conv2dConfig::rect(3, 5)
            .stride(2)
            .padding_hw(1, 2)
            .groups(2);
        let conv = Conv2d::new(6, 8, cfg, vb.pp("conv"))?;
        let bn = BatchNorm2d::new(8, BatchNormConfig::new(), vb.pp("bn"))?;
        let fc = Linear::new(8 * 5 * 6, 7, vb.pp("fc"))?;
        let x = Tensor::ones((2, 6, 9, 12), DType::F32, &Device::Cpu)?;
        let forward = || {
            let y = bn.forward_t(&conv.forward(&x)?, false)?;
            fc.forward(&y.flatten_from(1)?)
        };

        let real = forward()?;
        let (counted, macs) = count(forward)?;
        assert_eq!(counted.dims(), real.dims());
        assert_eq!(counted.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        // Per image: 8 · 5 · 6 outputs of 3 · 3 · 5 products each; 240 · 7 for the layer.
        assert_eq!(macs.conv, 2 * 8 * 5 * 6 * 3 * 3 * 5);
        assert_eq!(macs.linear, 2 * 240 * 7);
        assert_eq!(macs.total(), 21_600 + 3_360);

        // Counting mode ends with the count: the next pass computes.
        assert_ne!(forward()?.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }

    #[test]
    fn counts_nest_and_a_mismatched_input_is_still_an_error() -> Result<()> {
        let varmap = VarMap::new();
        let fc = Linear::new(4, 3, vb(&varmap))?;
        let x = Tensor::ones((5, 4), DType::F32, &Device::Cpu)?;
        let (inner, outer) = count(|| {
            fc.forward(&x)?;
            let (_, inner) = count(|| fc.forward(&x))?;
            fc.forward(&x)?;
            Ok(inner)
        })?;
        assert_eq!(inner.linear, 60);
        assert_eq!(outer.linear, 120);
        let wrong = Tensor::ones((5, 6), DType::F32, &Device::Cpu)?;
        assert!(count(|| fc.forward(&wrong)).is_err());
        Ok(())
    }
}
