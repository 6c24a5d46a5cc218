//! CPU kernels behind the layers' inference path.
//!
//! candle's CPU convolution re-lays-out its input and weight and builds its columns with
//! scalar copies on every call, then scatters the product into place with a stride of one
//! plane per element; BatchNorm, bias, activation and residual sums are then one pass over
//! memory each. These kernels compute the same results in NCHW with one matrix product per
//! tile written in place, and apply everything that follows the convolution to each tile
//! while it is in cache. Training has its own kernels beside them (`conv_grad`, `norm`) with
//! hand-written backward passes.
//!
//! The crate is compiled for the baseline x86-64 (SSE2), so that it runs on any CPU; the
//! few loops that stream over whole maps run through [`wide`], compiled a second time for
//! AVX-512 and chosen at run time, as the `gemm` crate chooses its kernels. Two steps need
//! what the compiler does not find on its own, and are written with AVX-512 intrinsics
//! behind the same run-time check: a transpose in registers (the Winograd output transform,
//! `winograd::transposed`), beside the portable loop it must equal to the bit, and the
//! matrix kernel of the Winograd products (`panel`), whose 24 accumulators must stay in
//! registers, beside the `gemm` crate on the same packed operand.

pub(crate) mod alloc;
pub(crate) mod conv;
pub(crate) mod conv_grad;
pub(crate) mod gemm;
pub(crate) mod norm;
pub(crate) mod panel;
pub(crate) mod residual;
pub(crate) mod winograd;

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

/// `dst[k] = src[k·s]` for every `k` both reach: whole groups of `s` in a loop that
/// vectorises (the first of each group), then the last input, which may stand alone.
#[inline(always)]
pub(crate) fn copy_strided(dst: &mut [f32], src: &[f32], s: usize) {
    // With the stride a constant (inlined), the loop becomes vector shuffles: padding and
    // subsampling a stride-2 layer's input took half the time (0.12 → 0.05 ms for
    // ResNet-50's `layer3.0`). 2 is every strided layer of the zoo but AlexNet's stem.
    if s == 2 {
        copy_every(dst, src, 2)
    } else {
        copy_every(dst, src, s)
    }
}

/// [`copy_strided`]'s body.
#[inline(always)]
fn copy_every(dst: &mut [f32], src: &[f32], s: usize) {
    let n = dst.len().min(src.len().div_ceil(s));
    let whole = (src.len() / s).min(n);
    dst[..whole]
        .iter_mut()
        .zip(src.chunks_exact(s))
        .for_each(|(d, group)| *d = group[0]);
    for (k, d) in dst[..n].iter_mut().enumerate().skip(whole) {
        *d = src[k * s];
    }
}

/// Whether the CPU has the AVX-512 subsets [`wide!`] compiles for (cached by `std`).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

/// `wide!(f(a: A, b: B, …))` calls `f(a, b, …)` (which returns `()`) from a copy of it
/// compiled for AVX-512 where the CPU has it, else as it is. `f` must be
/// `#[inline(always)]`, so that its loops are inlined into, and vectorised for, the wide
/// copy. The same operations either way (Rust never contracts a product and a sum into an
/// FMA on its own), so the same results to the bit, with four times the lanes.
macro_rules! wide {
    ($f:path, $($a:ident: $t:ty),* $(,)?) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
            fn avx512($($a: $t),*) {
                $f($($a),*)
            }
            if $crate::kernels::has_avx512() {
                // SAFETY: the CPU has every feature `avx512` is compiled for (checked just
                // above), the only requirement of calling a `target_feature` function.
                #[allow(unsafe_code)]
                unsafe {
                    avx512($($a),*)
                }
            } else {
                $f($($a),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        $f($($a),*)
    }};
}
pub(crate) use wide;
