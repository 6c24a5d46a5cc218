//! Convolution as `im2col` + matrix product, for training on CPU.
//!
//! candle computes a convolution's input gradient with `conv_transpose2d`, a scalar loop
//! without a matrix product that dominates a training step (85 % of LeNet-5's). Here the
//! convolution is written as `W · im2col(x)`: the matrix product and its gradients are
//! candle's (gemm), and `im2col` is a custom op whose backward is `col2im`, a scatter-add of
//! the column gradient. Both are plain memory passes, parallel over the batch.
//!
//! Used by [`super::Conv2d`] on CPU, in f32, when its input or weight tracks gradients;
//! inference keeps candle's kernel.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::Conv2dConfig;

/// Geometry of one `im2col` over `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    ph: usize,
    pw: usize,
    dilation: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(c: usize, h: usize, w: usize, cfg: &Conv2dConfig) -> Result<Self> {
        let (kh, kw) = cfg.kernel;
        let (ph, pw) = cfg.padding;
        let d = cfg.dilation;
        let span = |len: usize, k: usize, p: usize| (len + 2 * p).checked_sub(d * (k - 1) + 1);
        let (Some(sh), Some(sw)) = (span(h, kh, ph), span(w, kw, pw)) else {
            candle_core::bail!("Conv2d: input {h}×{w} is smaller than the kernel {kh}×{kw}")
        };
        Ok(Self {
            c,
            h,
            w,
            kh,
            kw,
            stride: cfg.stride,
            ph,
            pw,
            dilation: d,
            oh: sh / cfg.stride + 1,
            ow: sw / cfg.stride + 1,
        })
    }

    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns: one per output position.
    fn cols(&self) -> usize {
        self.oh * self.ow
    }

    /// For kernel offset `k` along an axis, the input index of output position `o`, or
    /// `None` in the padding.
    fn source(&self, o: usize, k: usize, pad: usize, len: usize) -> Option<usize> {
        (o * self.stride + k * self.dilation)
            .checked_sub(pad)
            .filter(|&i| i < len)
    }

    /// Fills the `kh·kw` rows of channel `c` (`kh·kw × N·OH·OW`) from the `N` planes of
    /// that channel in `x` (`N × C × H × W`).
    fn im2col_channel(&self, x: &[f32], n: usize, c: usize, rows: &mut [f32]) {
        let (l, nl) = (self.cols(), n * self.cols());
        let plane_len = self.h * self.w;
        for i in 0..self.kh {
            for j in 0..self.kw {
                let row = &mut rows[(i * self.kw + j) * nl..][..nl];
                for b in 0..n {
                    let plane = &x[(b * self.c + c) * plane_len..][..plane_len];
                    for oy in 0..self.oh {
                        let out = &mut row[b * l + oy * self.ow..][..self.ow];
                        let Some(y) = self.source(oy, i, self.ph, self.h) else {
                            out.fill(0.0);
                            continue;
                        };
                        let line = &plane[y * self.w..][..self.w];
                        for (ox, v) in out.iter_mut().enumerate() {
                            *v = self.source(ox, j, self.pw, self.w).map_or(0.0, |x| line[x]);
                        }
                    }
                }
            }
        }
    }

    /// Adds the `kh·kw` gradient rows of channel `c` into its `N` planes `dx` (`N × H × W`).
    fn col2im_channel(&self, rows: &[f32], n: usize, dx: &mut [f32]) {
        let (l, nl) = (self.cols(), n * self.cols());
        let plane_len = self.h * self.w;
        for i in 0..self.kh {
            for j in 0..self.kw {
                let row = &rows[(i * self.kw + j) * nl..][..nl];
                for b in 0..n {
                    let plane = &mut dx[b * plane_len..][..plane_len];
                    for oy in 0..self.oh {
                        let Some(y) = self.source(oy, i, self.ph, self.h) else {
                            continue;
                        };
                        let line = &mut plane[y * self.w..][..self.w];
                        for (ox, v) in row[b * l + oy * self.ow..][..self.ow].iter().enumerate() {
                            if let Some(x) = self.source(ox, j, self.pw, self.w) {
                                line[x] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 only")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: the input must be contiguous")
    };
    Ok(&data[start..end])
}

/// `[N, C, H, W]` → `[C·kh·kw, N·OH·OW]`: the whole batch as the columns of one matrix, so
/// that the convolution and both its gradients are single large matrix products.
struct Im2Col(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "convnets-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(storage, layout, self.name())?;
        let n = layout.dims()[0];
        let block = g.kh * g.kw * n * g.cols();
        let mut out = vec![0f32; g.c * block];
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(c, rows)| g.im2col_channel(x, n, c, rows));
        Ok((CpuStorage::F32(out), Shape::from((g.rows(), n * g.cols()))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let n = arg.dim(0)?;
        let dx = grad.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0, n))?;
        Ok(Some(dx.transpose(0, 1)?.contiguous()?))
    }
}

/// `[C·kh·kw, N·OH·OW]` → `[C, N, H, W]`, summing overlapping contributions (the caller
/// transposes to `[N, C, H, W]`).
struct Col2Im(Geometry, usize);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "convnets-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, n) = (self.0, self.1);
        let cols = f32_slice(storage, layout, self.name())?;
        let (plane, block) = (n * g.h * g.w, g.kh * g.kw * n * g.cols());
        let mut dx = vec![0f32; g.c * plane];
        dx.par_chunks_mut(plane)
            .zip(cols.par_chunks(block))
            .for_each(|(dx, rows)| g.col2im_channel(rows, n, dx));
        Ok((CpuStorage::F32(dx), Shape::from((g.c, n, g.h, g.w))))
    }
}

/// Whether [`conv2d`] applies: on CPU, in f32, when gradients are tracked.
pub(super) fn applies(x: &Tensor, weight: &Tensor) -> bool {
    x.device().is_cpu()
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && (x.track_op() || weight.track_op())
}

/// The convolution of `x` (`[N, C, H, W]`) with `weight` (`[O, C/groups, kh, kw]`), without
/// bias, as `weight · im2col(x)` per group.
pub(super) fn conv2d(x: &Tensor, weight: &Tensor, cfg: &Conv2dConfig) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let o = weight.dim(0)?;
    let groups = cfg.groups;
    let g = Geometry::new(c, h, w, cfg)?;
    let per_group = g.rows() / groups;
    let cols = if cfg.kernel == (1, 1) && cfg.stride == 1 && cfg.padding == (0, 0) {
        // A 1×1 convolution's columns are the input itself, channels first.
        x.transpose(0, 1)?.reshape((c, n * h * w))?
    } else {
        x.contiguous()?.apply_op1(Im2Col(g))?
    };
    // [G, O/G, rows/G] · [G, rows/G, N·L] = [G, O/G, N·L]: one product per group.
    let cols = cols.reshape((groups, per_group, n * g.cols()))?;
    let weight = weight.reshape((groups, o / groups, per_group))?;
    weight
        .matmul(&cols)?
        .reshape((o, n, g.oh, g.ow))?
        .transpose(0, 1)?
        .contiguous()
}
