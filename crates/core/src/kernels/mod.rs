//! CPU kernels behind the layers' inference path.
//!
//! candle's CPU convolution re-lays-out its input and weight and builds its columns with
//! scalar copies on every call, then scatters the product into place with a stride of one
//! plane per element; BatchNorm, bias, activation and residual sums are then one pass over
//! memory each. These kernels compute the same results in NCHW with one matrix product per
//! tile written in place, and apply everything that follows the convolution to each tile
//! while it is in cache. They run when nothing tracks gradients (the training path keeps
//! candle's differentiable operations).

pub(crate) mod alloc;
pub(crate) mod conv;
pub(crate) mod conv_grad;
pub(crate) mod gemm;
pub(crate) mod norm;

use candle_core::{CpuStorage, Layout, Result};

/// The f32 values of a contiguous CPU tensor, for a kernel; `op` and `what` name the
/// operation and the operand in the error otherwise.
pub(crate) fn f32_slice<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: the {what} must be f32")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: the {what} must be contiguous")
    };
    Ok(&data[start..end])
}
