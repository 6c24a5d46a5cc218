//! Pooling with PyTorch's geometry: `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`.
//!
//! candle's pooling kernels know neither padding nor `ceil_mode`. Both layers here compute
//! PyTorch's output size (`pooling_output_shape` in ATen's `Pool.h`), pad the input so
//! that candle's floor-mode kernel produces exactly those windows, and, for average pooling,
//! rescale each output by the divisor PyTorch would have used.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, DType, Layout, Result, Shape, Tensor};
use candle_nn::ModuleT;
use std::sync::{Arc, Mutex, PoisonError};

use crate::kernels::f32_slice;

use rayon::prelude::*;

/// Pooling geometry along one spatial axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Axis {
    kernel: usize,
    stride: usize,
    padding: usize,
}

/// Where the windows of one axis fall for one input length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Windows {
    /// Number of windows (output length).
    out: usize,
    /// Padding to add before the input.
    left: usize,
    /// Padding to add after the input (the `ceil_mode` overhang included), or, when
    /// negative, trailing input elements no window reaches.
    right: isize,
}

impl Axis {
    fn new(kernel: usize, stride: usize, padding: usize) -> Result<Self> {
        if kernel == 0 || stride == 0 {
            candle_core::bail!("pooling: kernel ({kernel}) and stride ({stride}) must be positive")
        }
        // PyTorch: "pad should be at most half of effective kernel size".
        if 2 * padding > kernel {
            candle_core::bail!(
                "pooling: padding {padding} is more than half the kernel size {kernel}"
            )
        }
        Ok(Self {
            kernel,
            stride,
            padding,
        })
    }

    /// ATen's `pooling_output_shape_pad_lr`, including the rule that in `ceil_mode` the last
    /// window must start inside the input or the left padding.
    fn windows(&self, len: usize, ceil_mode: bool) -> Result<Windows> {
        let Self {
            kernel,
            stride,
            padding,
        } = *self;
        let span = len + 2 * padding;
        if span < kernel {
            candle_core::bail!(
                "pooling: input of size {len} (padded {span}) is smaller than the kernel {kernel}"
            )
        }
        let round_up = if ceil_mode { stride - 1 } else { 0 };
        let mut out = (span - kernel + round_up) / stride + 1;
        if ceil_mode && (out - 1) * stride >= len + padding {
            out -= 1;
        }
        let covered = (out - 1) * stride + kernel;
        Ok(Windows {
            out,
            left: padding,
            right: covered as isize - (len + padding) as isize,
        })
    }

    /// The divisor PyTorch's average pooling uses for each window along this axis.
    fn divisors(&self, len: usize, w: Windows, count_include_pad: bool) -> Vec<usize> {
        (0..w.out)
            .map(|i| {
                let start = (i * self.stride) as isize - self.padding as isize;
                // The window is clipped to the padded input, never to the ceil overhang.
                let end = (start + self.kernel as isize).min((len + self.padding) as isize);
                if count_include_pad {
                    (end - start) as usize
                } else {
                    (end.min(len as isize) - start.max(0)) as usize
                }
            })
            .collect()
    }
}

/// Pads (or trims) `x` along `dim` so that a floor-mode kernel produces `w.out` windows.
fn pad_axis(x: &Tensor, dim: usize, w: Windows, fill: f64) -> Result<Tensor> {
    let len = x.dim(dim)?;
    let (x, right) = if w.right < 0 {
        (x.narrow(dim, 0, len - w.right.unsigned_abs())?, 0)
    } else {
        (x.clone(), w.right as usize)
    };
    if w.left == 0 && right == 0 {
        return Ok(x);
    }
    if fill == 0.0 {
        return x.pad_with_zeros(dim, w.left, right);
    }
    let filler = |n: usize| -> Result<Tensor> {
        let mut shape = x.dims().to_vec();
        shape[dim] = n;
        Tensor::full(fill, shape, x.device())?.to_dtype(x.dtype())
    };
    let mut parts = Vec::with_capacity(3);
    if w.left > 0 {
        parts.push(filler(w.left)?);
    }
    parts.push(x.clone());
    if right > 0 {
        parts.push(filler(right)?);
    }
    Tensor::cat(&parts, dim)
}

fn check_nchw(x: &Tensor, layer: &str) -> Result<(usize, usize)> {
    match x.dims() {
        [_, _, h, w] => Ok((*h, *w)),
        dims => candle_core::bail!("{layer}: expected an [N, C, H, W] input, got {dims:?}"),
    }
}

/// `torch.nn.MaxPool2d` (without dilation): padding is filled with `-inf`, and `ceil_mode`
/// follows PyTorch's rule that the last window must start inside the input or the left
/// padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2d {
    h: Axis,
    w: Axis,
    ceil_mode: bool,
}

impl MaxPool2d {
    /// A square window with the given kernel, stride and padding.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Result<Self> {
        Self::rect((kernel, kernel), (stride, stride), (padding, padding))
    }

    /// A window with separate height and width parameters.
    pub fn rect(
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Self> {
        Ok(Self {
            h: Axis::new(kernel.0, stride.0, padding.0)?,
            w: Axis::new(kernel.1, stride.1, padding.1)?,
            ceil_mode: false,
        })
    }

    /// Rounds the output size up, as `ceil_mode=True` (GoogLeNet, Caffe-era models).
    pub fn ceil_mode(mut self) -> Self {
        self.ceil_mode = true;
        self
    }

    /// Output height and width for an input of `h × w`.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        Ok((
            self.h.windows(h, self.ceil_mode)?.out,
            self.w.windows(w, self.ceil_mode)?.out,
        ))
    }

    /// Applies the pooling to an `[N, C, H, W]` tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = check_nchw(x, "MaxPool2d")?;
        let wh = self.h.windows(h, self.ceil_mode)?;
        let ww = self.w.windows(w, self.ceil_mode)?;
        if direct_applies(x) {
            return DirectPool::new(Reduce::Max, (self.h, wh), (self.w, ww), (h, w)).apply(x);
        }
        let x = pad_axis(x, 2, wh, f64::NEG_INFINITY)?;
        let x = pad_axis(&x, 3, ww, f64::NEG_INFINITY)?;
        if !overlapping_with_grad(&x, self.h, self.w) {
            return x.max_pool2d_with_stride(
                (self.h.kernel, self.w.kernel),
                (self.h.stride, self.w.stride),
            );
        }
        let rows = strided_reduce(&x, 2, self.h, wh.out, |a, b| a.maximum(b))?;
        strided_reduce(&rows, 3, self.w, ww.out, |a, b| a.maximum(b))
    }
}

/// Whether pooling `x` needs the differentiable path: candle's pooling kernels have a
/// backward pass only when the kernel equals the stride, so overlapping windows (ResNet's and
/// AlexNet's 3×3/2, Inception's 3×3/1, GoogLeNet's auxiliary 5×5/3) on a tensor that tracks
/// gradients are reduced from strided views instead. Inference keeps the kernels.
fn overlapping_with_grad(x: &Tensor, h: Axis, w: Axis) -> bool {
    x.track_op() && (h.kernel != h.stride || w.kernel != w.stride)
}

/// The views `x[.., k + stride·i, ..]`, `i in 0..out`, along `dim` of an input padded to exactly
/// cover the windows, one for each offset `k` in the window.
fn window_views(x: &Tensor, dim: usize, axis: Axis, out: usize) -> Result<Vec<Tensor>> {
    // `pad_axis` trims with `narrow` what no window reaches (a floor-mode 3×3/2 pool over 112
    // columns covers 111); a trimmed last axis is not contiguous, which `index_select` needs.
    let x = x.contiguous()?;
    (0..axis.kernel)
        .map(|offset| {
            if axis.stride == 1 {
                return x.narrow(dim, offset, out);
            }
            let (start, step) = (offset as u32, axis.stride as u32);
            let index = Tensor::arange_step(start, start + step * out as u32, step, x.device())?;
            x.index_select(&index, dim)
        })
        .collect()
}

/// `op` folded over the [`window_views`] along `dim`: the values of the pooling kernel, and a
/// gradient through ordinary tensor operations.
fn strided_reduce(
    x: &Tensor,
    dim: usize,
    axis: Axis,
    out: usize,
    op: fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let views = window_views(x, dim, axis, out)?;
    views[1..]
        .iter()
        .try_fold(views[0].clone(), |acc, v| op(&acc, v))
}

/// Whether the direct kernel computes a pooling: an f32 CPU tensor (with its own backward
/// pass when `x` tracks gradients).
fn direct_applies(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Max,
    Mean,
}

/// Pooling in one pass over the input: each output is the maximum, or the sum divided by
/// PyTorch's divisor, of its window clipped to the input. Padding never wins a maximum (it
/// is `-inf`) and adds nothing to a sum, so clipping gives PyTorch's values; NaN propagates
/// through a maximum, as in PyTorch.
///
/// Its backward pass is PyTorch's too: a window's gradient goes to the one input that is
/// its maximum (the first in scan order among equals, the last NaN), where candle's
/// pooling gradient goes to every input equal to it, or is spread over the window with
/// the same divisor; overlapping windows add up. Where a tensor tracks gradients this
/// replaces candle's pooling backward (eight operations for a maximum) and the strided
/// views overlapping windows needed.
#[derive(Debug, Clone)]
struct DirectPool {
    reduce: Reduce,
    /// Per output row and column, the input range of its window.
    rows: Vec<(usize, usize)>,
    cols: Vec<(usize, usize)>,
    /// The output columns whose windows lie wholly inside the input (`kernel` wide,
    /// `stride` apart), and that stride.
    inner: std::ops::Range<usize>,
    col_stride: usize,
    /// The same for the output rows.
    inner_rows: std::ops::Range<usize>,
    row_stride: usize,
    /// Per output row and column, the divisor's factor (average pooling).
    dh: Vec<usize>,
    dw: Vec<usize>,
    /// Where a maximum pooling's backward pass will need them: per output, the index in
    /// its input plane of the input it took (`u32::MAX` for a window wholly in padding),
    /// recorded by the forward pass.
    winners: Option<Arc<Mutex<Vec<u32>>>>,
}

impl DirectPool {
    /// The windows of `h`/`w` over an input of `len = (rows, cols)`.
    fn new(
        reduce: Reduce,
        (h, wh): (Axis, Windows),
        (w, ww): (Axis, Windows),
        len: (usize, usize),
    ) -> Self {
        let ranges = |a: Axis, win: Windows, len: usize| -> Vec<(usize, usize)> {
            (0..win.out)
                .map(|i| {
                    let start = (i * a.stride) as isize - a.padding as isize;
                    let end = (start + a.kernel as isize).min(len as isize);
                    (start.max(0) as usize, end.max(0) as usize)
                })
                .collect()
        };
        // The run of windows that lie wholly inside the input (they are consecutive).
        let whole = |windows: &[(usize, usize)], kernel: usize| {
            let full = |&(a, b): &(usize, usize)| b - a == kernel;
            let start = windows.iter().position(full).unwrap_or(windows.len());
            start..start + windows[start..].iter().take_while(|c| full(c)).count()
        };
        let (rows, cols) = (ranges(h, wh, len.0), ranges(w, ww, len.1));
        Self {
            reduce,
            inner: whole(&cols, w.kernel),
            inner_rows: whole(&rows, h.kernel),
            rows,
            cols,
            col_stride: w.stride,
            row_stride: h.stride,
            dh: Vec::new(),
            dw: Vec::new(),
            winners: None,
        }
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        if x.track_op() {
            let winners = (self.reduce == Reduce::Max).then(Arc::default);
            x.apply_op1(Self {
                winners,
                ..self.clone()
            })
        } else {
            x.apply_op1_no_bwd(self)
        }
    }

    /// One output plane, window by window; for a maximum, also the index of each output's
    /// input in `winners`. The definition the separable passes are tested against.
    #[cfg(test)]
    fn plane(&self, x: &[f32], w: usize, out: &mut [f32], mut winners: Option<&mut [u32]>) {
        let ow = self.cols.len();
        for (i, &(y0, y1)) in self.rows.iter().enumerate() {
            let out = &mut out[i * ow..][..ow];
            for (j, &(x0, x1)) in self.cols.iter().enumerate() {
                out[j] = match self.reduce {
                    Reduce::Max => {
                        let k = argmax(x, w, (y0, y1), (x0, x1));
                        if let Some(winners) = winners.as_deref_mut() {
                            winners[i * ow + j] = k.map_or(u32::MAX, |k| k as u32);
                        }
                        k.map_or(f32::NEG_INFINITY, |k| x[k])
                    }
                    Reduce::Mean => {
                        let mut sum = 0f32;
                        for y in y0..y1 {
                            sum += x[y * w + x0..y * w + x1].iter().sum::<f32>();
                        }
                        sum / (self.dh[i] * self.dw[j]) as f32
                    }
                };
            }
        }
    }

    /// One output plane without the maxima's positions (inference), in two passes: each
    /// input row reduced over every column window into `rows` (`H × OW`), then each output
    /// row reduced over its rows' windows, a loop along the output row that vectorises.
    /// A window is a rectangle, so this is the same reduction as [`DirectPool::plane`]'s in
    /// the same order: a maximum scanned row by row (the first of equal values, NaN
    /// propagating), a sum of row sums, to the bit.
    ///
    /// At stride 1 a pass runs over the whole plane at once rather than row by row: the
    /// branch poolings of the Inception family (3×3, stride 1, "same") have planes of
    /// 8 to 35 columns, where loops along one row are mostly their ends.
    #[inline(always)]
    fn plane_separable(&self, x: &[f32], w: usize, out: &mut [f32], rows: &mut Vec<f32>) {
        match self.reduce {
            Reduce::Max => self.separable(x, w, out, rows, f32::NEG_INFINITY, max),
            Reduce::Mean => {
                // What `Iterator::sum` starts from, so that a window's sum is the scan's.
                let empty_sum: f32 = [0f32; 0].iter().sum();
                self.separable(x, w, out, rows, empty_sum, |a, b| a + b);
                let ow = self.cols.len();
                for (out, &dh) in out.chunks_exact_mut(ow).zip(&self.dh) {
                    out.iter_mut()
                        .zip(&self.dw)
                        .for_each(|(s, &dw)| *s /= (dh * dw) as f32);
                }
            }
        }
    }

    /// [`DirectPool::plane_separable`]'s two passes for one reduction: `op` from `init`
    /// along the rows; along the columns, from `init` for a maximum, +0 for a sum.
    #[inline(always)]
    fn separable(
        &self,
        x: &[f32],
        w: usize,
        out: &mut [f32],
        rows: &mut Vec<f32>,
        init: f32,
        op: impl Fn(f32, f32) -> f32 + Copy,
    ) {
        let ow = self.cols.len();
        let h = x.len() / w;
        let (inner, s) = (self.inner.clone(), self.col_stride);
        rows.clear();
        rows.resize(h * ow + w.next_multiple_of(s), 0.0);
        let (rows, phases) = rows.split_at_mut(h * ow);
        if s == 1 && ow == w && !inner.is_empty() {
            // Output column j of row l is rows[l·w + j]; a whole window starts at input
            // l·w + j + base − j0. Over the plane as one run, windows of columns near a
            // row's ends take inputs of the next or previous row: those are redone below.
            let (j0, base) = (inner.start, self.cols[inner.start].0);
            let kernel = self.cols[j0].1 - base;
            let run = j0..h * w - (ow - inner.end);
            let dst = &mut rows[run.clone()];
            dst.fill(init);
            for tap in 0..kernel {
                let src = &x[run.start + base + tap - j0..];
                dst.iter_mut().zip(src).for_each(|(r, &v)| *r = op(*r, v));
            }
        } else if let Some(&(base, end)) = self.cols.get(inner.start) {
            // Whole windows tap by tap, each a loop along the row that vectorises.
            for (line, row) in x.chunks_exact(w).zip(rows.chunks_exact_mut(ow)) {
                let dst = &mut row[inner.clone()];
                taps(dst, line, phases, base..end, s, init, op);
            }
        }
        // Windows clipped by padding or ceil mode, one by one.
        for (line, row) in x.chunks_exact(w).zip(rows.chunks_exact_mut(ow)) {
            for j in (0..inner.start).chain(inner.end..ow) {
                let window = &line[self.cols[j].0..self.cols[j].1];
                row[j] = window.iter().fold(init, |r, &v| op(r, v));
            }
        }
        // The scan's sum over a window's rows starts from +0.
        let init = match self.reduce {
            Reduce::Max => f32::NEG_INFINITY,
            Reduce::Mean => 0.0,
        };
        let column = |out: &mut [f32], (y0, y1): (usize, usize)| {
            out.fill(init);
            for row in rows[y0 * ow..y1 * ow].chunks_exact(ow) {
                out.iter_mut().zip(row).for_each(|(m, &v)| *m = op(*m, v));
            }
        };
        let inner_rows = self.inner_rows.clone();
        if self.row_stride == 1 && !inner_rows.is_empty() {
            // Whole windows of rows i0.. start at rows y0 + (i − i0): at stride 1, output
            // position q takes rows[q + (y0 − i0 + tap)·OW], one run for all of them.
            let (i0, y0) = (inner_rows.start, self.rows[inner_rows.start].0);
            let kernel = self.rows[i0].1 - y0;
            let dst = &mut out[i0 * ow..inner_rows.end * ow];
            dst.fill(init);
            for tap in 0..kernel {
                let src = &rows[(y0 + tap) * ow..];
                dst.iter_mut().zip(src).for_each(|(m, &v)| *m = op(*m, v));
            }
            for i in (0..inner_rows.start).chain(inner_rows.end..self.rows.len()) {
                column(&mut out[i * ow..][..ow], self.rows[i]);
            }
        } else {
            for (out, &window) in out.chunks_exact_mut(ow).zip(&self.rows) {
                column(out, window);
            }
        }
    }

    /// One max-pooled plane and, in `winners`, the index of each output's input (`u32::MAX`
    /// for a window wholly in padding), in [`DirectPool::plane_separable`]'s two passes:
    /// each input row's maximum and its position per column window, then each output
    /// row's over its rows, taking a row's when it is greater or NaN. That is the window
    /// scan's rule applied in the same order, so the same values and positions: the first
    /// of equal maxima in scan order, the last NaN.
    #[inline(always)]
    fn plane_winners(
        &self,
        x: &[f32],
        w: usize,
        out: &mut [f32],
        winners: &mut [u32],
        (vals, idx): &mut (Vec<f32>, Vec<u32>),
    ) {
        let ow = self.cols.len();
        let h = x.len() / w;
        let (inner, s) = (self.inner.clone(), self.col_stride);
        vals.clear();
        vals.resize(h * ow + w.next_multiple_of(s), 0.0);
        idx.clear();
        idx.resize(h * ow, 0);
        let (vals, phases) = vals.split_at_mut(h * ow);
        let rows = x.chunks_exact(w).zip(vals.chunks_exact_mut(ow));
        for (y, ((line, rv), ri)) in rows.zip(idx.chunks_exact_mut(ow)).enumerate() {
            let at = y * w;
            for j in (0..inner.start).chain(inner.end..ow) {
                let (x0, x1) = self.cols[j];
                (rv[j], ri[j]) = (f32::NEG_INFINITY, (at + x0) as u32);
                for (k, &v) in (at + x0..).zip(&line[x0..x1]) {
                    if v > rv[j] || v.is_nan() {
                        (rv[j], ri[j]) = (v, k as u32);
                    }
                }
            }
            let Some(&(base, end)) = self.cols.get(inner.start) else {
                continue;
            };
            // Whole windows tap by tap: window j's tap t is input base + j·s + t, and the
            // first position its scan starts from is base + j·s.
            let (mv, mi) = (&mut rv[inner.clone()], &mut ri[inner.clone()]);
            let first = (at + base) as u32;
            mv.fill(f32::NEG_INFINITY);
            for (j, k) in mi.iter_mut().enumerate() {
                *k = first + (j * s) as u32;
            }
            let half = split_for(line, phases, s);
            for tap in base..end {
                let off = first + (tap - base) as u32;
                let Some(src) = tap_run(line, phases, half, s, tap) else {
                    // Strides above 2: one input at a time.
                    for (j, (m, k)) in mv.iter_mut().zip(mi.iter_mut()).enumerate() {
                        let v = line[tap + j * s];
                        if v > *m || v.is_nan() {
                            (*m, *k) = (v, off + (j * s) as u32);
                        }
                    }
                    continue;
                };
                let lanes = mv.iter_mut().zip(mi.iter_mut()).zip(src).enumerate();
                for (j, ((m, k), &v)) in lanes {
                    let take = v > *m || v.is_nan();
                    *m = if take { v } else { *m };
                    *k = if take { off + (j * s) as u32 } else { *k };
                }
            }
        }
        let outs = out.chunks_exact_mut(ow).zip(winners.chunks_exact_mut(ow));
        for ((out, win), &(y0, y1)) in outs.zip(&self.rows) {
            out.fill(f32::NEG_INFINITY);
            for (k, &(x0, x1)) in win.iter_mut().zip(&self.cols) {
                *k = if y0 < y1 && x0 < x1 {
                    (y0 * w + x0) as u32
                } else {
                    u32::MAX
                };
            }
            for y in y0..y1 {
                let (rv, ri) = (&vals[y * ow..][..ow], &idx[y * ow..][..ow]);
                for (((m, k), &v), &i) in out.iter_mut().zip(win.iter_mut()).zip(rv).zip(ri) {
                    let take = v > *m || v.is_nan();
                    *m = if take { v } else { *m };
                    *k = if take { i } else { *k };
                }
            }
        }
    }

    /// Adds the gradient `dy` of one output plane to `dx`, the input plane's (`w` wide);
    /// a maximum's goes to the inputs its forward pass recorded in `winners`.
    fn plane_grad(&self, w: usize, dy: &[f32], winners: &[u32], dx: &mut [f32]) {
        if self.reduce == Reduce::Max {
            for (&k, &g) in winners.iter().zip(dy) {
                if let Some(d) = dx.get_mut(k as usize) {
                    *d += g;
                }
            }
            return;
        }
        let ow = self.cols.len();
        for (i, &(y0, y1)) in self.rows.iter().enumerate() {
            let dy = &dy[i * ow..][..ow];
            for (j, &(x0, x1)) in self.cols.iter().enumerate() {
                let g = dy[j] / (self.dh[i] * self.dw[j]) as f32;
                for y in y0..y1 {
                    dx[y * w + x0..y * w + x1].iter_mut().for_each(|d| *d += g);
                }
            }
        }
    }
}

/// The index in `x` (a plane `w` wide) of the maximum of the window `rows × cols`, by
/// PyTorch's rule (`max_pool2d`'s CPU kernel): starting from `-inf` at the window's first
/// position, a value replaces the maximum if it is greater or NaN. `None` for a window that
/// lies wholly in the padding.
#[cfg(test)]
fn argmax(
    x: &[f32],
    w: usize,
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
) -> Option<usize> {
    if y0 >= y1 || x0 >= x1 {
        return None;
    }
    let (mut best, mut max) = (y0 * w + x0, f32::NEG_INFINITY);
    for y in y0..y1 {
        let row = y * w;
        for (k, &v) in (row + x0..).zip(&x[row + x0..row + x1]) {
            // Selects, not a branch: which input wins is data-dependent.
            let take = v > max || v.is_nan();
            best = if take { k } else { best };
            max = if take { v } else { max };
        }
    }
    Some(best)
}

/// Splits `line` into its even then its odd elements in `phases` (at least the line's
/// length rounded up to even) when `s` is 2, so that every tap of windows 2 apart is a
/// contiguous run ([`tap_run`]); returns the length of a half.
#[inline(always)]
fn split_for(line: &[f32], phases: &mut [f32], s: usize) -> usize {
    let half = line.len().div_ceil(2);
    if s == 2 {
        let (even, odd) = phases[..2 * half].split_at_mut(half);
        crate::kernels::copy_strided(even, line, 2);
        if let Some(rest) = line.get(1..) {
            crate::kernels::copy_strided(odd, rest, 2);
        }
    }
    half
}

/// The inputs `tap + j·s` for `j = 0, 1, …` as a contiguous run, at stride 1 or 2 (after
/// [`split_for`]); `None` at larger strides.
#[inline(always)]
fn tap_run<'a>(
    line: &'a [f32],
    phases: &'a [f32],
    half: usize,
    s: usize,
    tap: usize,
) -> Option<&'a [f32]> {
    match s {
        1 => Some(&line[tap..]),
        // Input tap + 2j is phase tap % 2 at tap / 2 + j.
        2 => Some(&phases[(tap % 2) * half + tap / 2..]),
        _ => None,
    }
}

/// `dst[j] = op(…op(op(init, line[t0 + j·s]), line[t0 + 1 + j·s])…)` over the taps `t0..t1`
/// of windows `s` apart: one pass along the row per tap, each contiguous at strides 1 and
/// 2 ([`split_for`], into `phases`).
#[inline(always)]
fn taps(
    dst: &mut [f32],
    line: &[f32],
    phases: &mut [f32],
    taps: std::ops::Range<usize>,
    s: usize,
    init: f32,
    op: impl Fn(f32, f32) -> f32,
) {
    dst.fill(init);
    let half = split_for(line, phases, s);
    for tap in taps {
        match tap_run(line, phases, half, s, tap) {
            Some(src) => dst.iter_mut().zip(src).for_each(|(r, &v)| *r = op(*r, v)),
            None => {
                let src = line[tap..].iter().step_by(s);
                dst.iter_mut().zip(src).for_each(|(r, &v)| *r = op(*r, v));
            }
        }
    }
}

/// PyTorch's running maximum: `v` replaces `m` if it is greater or NaN (a select, which
/// vectorises).
#[inline(always)]
fn max(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() { v } else { m }
}

/// The input gradient of a [`DirectPool`], as an operation on `(x, dy)`.
struct PoolGrad<'a>(&'a DirectPool);

impl CustomOp2 for PoolGrad<'_> {
    fn name(&self) -> &'static str {
        "convnets-pool2d-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = (
            f32_slice("pooling", xs, xl, "input")?,
            f32_slice("pooling", ds, dl, "gradient")?,
        );
        let &[n, c, h, w] = xl.dims() else {
            candle_core::bail!("pooling: expected [N, C, H, W], got {:?}", xl.dims())
        };
        let (oh, ow) = (self.0.rows.len(), self.0.cols.len());
        if dy.len() != n * c * oh * ow {
            candle_core::bail!("pooling: a gradient {:?} for {oh}×{ow} outputs", dl.dims())
        }
        let recorded = self
            .0
            .winners
            .as_ref()
            .map(|w| w.lock().unwrap_or_else(PoisonError::into_inner));
        let winners: &[u32] = recorded.as_deref().map_or(&[], Vec::as_slice);
        if self.0.reduce == Reduce::Max && winners.len() != dy.len() {
            candle_core::bail!("pooling: the backward pass of a maximum without its forward pass")
        }
        let mut dx = crate::kernels::alloc::zeroed(x.len());
        let planes = dx.par_chunks_mut(h * w).zip(dy.par_chunks(oh * ow));
        if winners.is_empty() {
            planes.for_each(|(dx, dy)| self.0.plane_grad(w, dy, &[], dx));
        } else {
            planes
                .zip(winners.par_chunks(oh * ow))
                .for_each(|((dx, dy), win)| self.0.plane_grad(w, dy, win, dx));
        }
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

impl CustomOp1 for DirectPool {
    fn name(&self) -> &'static str {
        "convnets-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice("pooling", storage, layout, "input")?;
        let &[n, c, h, w] = layout.dims() else {
            candle_core::bail!("pooling: expected [N, C, H, W], got {:?}", layout.dims())
        };
        let (oh, ow) = (self.rows.len(), self.cols.len());
        let mut out = crate::kernels::alloc::zeroed(n * c * oh * ow);
        let planes = out.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w));
        match &self.winners {
            None => planes.for_each_init(Vec::new, |rows, (out, plane)| {
                let pool = self;
                crate::kernels::wide!(
                    DirectPool::plane_separable,
                    pool: &DirectPool,
                    plane: &[f32],
                    w: usize,
                    out: &mut [f32],
                    rows: &mut Vec<f32>,
                )
            }),
            Some(record) => {
                let mut winners = vec![0u32; n * c * oh * ow];
                planes.zip(winners.par_chunks_mut(oh * ow)).for_each_init(
                    Default::default,
                    |rows, ((out, plane), win)| {
                        let pool = self;
                        crate::kernels::wide!(
                            DirectPool::plane_winners,
                            pool: &DirectPool,
                            plane: &[f32],
                            w: usize,
                            out: &mut [f32],
                            win: &mut [u32],
                            rows: &mut (Vec<f32>, Vec<u32>),
                        )
                    },
                );
                *record.lock().unwrap_or_else(PoisonError::into_inner) = winners;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        x.apply_op2_no_bwd(&dy.contiguous()?, &PoolGrad(self))
            .map(Some)
    }
}

impl ModuleT for MaxPool2d {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}

/// `torch.nn.AvgPool2d`: zero padding, `ceil_mode`, and `count_include_pad` deciding whether
/// padded positions count in each window's divisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2d {
    h: Axis,
    w: Axis,
    ceil_mode: bool,
    count_include_pad: bool,
}

impl AvgPool2d {
    /// A square window; `count_include_pad` is true, as in PyTorch.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Result<Self> {
        Self::rect((kernel, kernel), (stride, stride), (padding, padding))
    }

    /// A window with separate height and width parameters.
    pub fn rect(
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Self> {
        Ok(Self {
            h: Axis::new(kernel.0, stride.0, padding.0)?,
            w: Axis::new(kernel.1, stride.1, padding.1)?,
            ceil_mode: false,
            count_include_pad: true,
        })
    }

    /// Rounds the output size up, as `ceil_mode=True`.
    pub fn ceil_mode(mut self) -> Self {
        self.ceil_mode = true;
        self
    }

    /// Divides each window by the number of input elements it covers, as
    /// `count_include_pad=False` (timm's Inception-v4 and Inception-ResNet-v2).
    pub fn exclude_pad(mut self) -> Self {
        self.count_include_pad = false;
        self
    }

    /// Output height and width for an input of `h × w`.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        Ok((
            self.h.windows(h, self.ceil_mode)?.out,
            self.w.windows(w, self.ceil_mode)?.out,
        ))
    }

    /// Applies the pooling to an `[N, C, H, W]` tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = check_nchw(x, "AvgPool2d")?;
        let wh = self.h.windows(h, self.ceil_mode)?;
        let ww = self.w.windows(w, self.ceil_mode)?;
        if direct_applies(x) {
            let pool = DirectPool::new(Reduce::Mean, (self.h, wh), (self.w, ww), (h, w));
            return DirectPool {
                dh: self.h.divisors(h, wh, self.count_include_pad),
                dw: self.w.divisors(w, ww, self.count_include_pad),
                ..pool
            }
            .apply(x);
        }
        let padded = pad_axis(x, 2, wh, 0.0)?;
        let padded = pad_axis(&padded, 3, ww, 0.0)?;
        let (kh, kw) = (self.h.kernel, self.w.kernel);
        let mean = if overlapping_with_grad(&padded, self.h, self.w) {
            let rows = strided_reduce(&padded, 2, self.h, wh.out, Tensor::add)?;
            (strided_reduce(&rows, 3, self.w, ww.out, Tensor::add)? / (kh * kw) as f64)?
        } else {
            padded.avg_pool2d_with_stride((kh, kw), (self.h.stride, self.w.stride))?
        };
        // candle divides every window by kh·kw; PyTorch by the window's own divisor, which is
        // separable into a height factor and a width factor.
        let dh = self.h.divisors(h, wh, self.count_include_pad);
        let dw = self.w.divisors(w, ww, self.count_include_pad);
        if dh.iter().all(|&d| d == kh) && dw.iter().all(|&d| d == kw) {
            return Ok(mean);
        }
        let rescale: Vec<f32> = dh
            .iter()
            .flat_map(|&a| {
                dw.iter()
                    .map(move |&b| ((kh * kw) as f64 / (a * b) as f64) as f32)
            })
            .collect();
        let rescale =
            Tensor::from_vec(rescale, (1, 1, wh.out, ww.out), x.device())?.to_dtype(x.dtype())?;
        mean.broadcast_mul(&rescale)
    }
}

impl ModuleT for AvgPool2d {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}

/// `torch.nn.AdaptiveAvgPool2d` to any output size: bin `i` of `n` over a length `L` spans
/// `[floor(i·L/n), ceil((i+1)·L/n))`, so bins overlap when `L` is not a multiple of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    out_h: usize,
    out_w: usize,
}

impl AdaptiveAvgPool2d {
    /// Pools to `out_h × out_w`.
    pub fn new(out_h: usize, out_w: usize) -> Result<Self> {
        if out_h == 0 || out_w == 0 {
            candle_core::bail!("AdaptiveAvgPool2d: output size must be positive")
        }
        Ok(Self { out_h, out_w })
    }

    /// Global average pooling, `AdaptiveAvgPool2d((1, 1))`.
    pub const fn global() -> Self {
        Self { out_h: 1, out_w: 1 }
    }

    /// The output size.
    pub fn output_size(&self) -> (usize, usize) {
        (self.out_h, self.out_w)
    }

    /// Applies the pooling to an `[N, C, H, W]` tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = check_nchw(x, "AdaptiveAvgPool2d")?;
        let (oh, ow) = (self.out_h, self.out_w);
        if (oh, ow) == (1, 1) {
            return x.mean_keepdim(3)?.mean_keepdim(2);
        }
        if (oh, ow) == (h, w) {
            // One element per bin: the mean is the element (VGG's and AlexNet's heads at
            // 224 × 224).
            return Ok(x.clone());
        }
        if h % oh == 0 && w % ow == 0 {
            return x.avg_pool2d_with_stride((h / oh, w / ow), (h / oh, w / ow));
        }
        // General case as two small matrix products: x · Pwᵀ, then Ph · (x · Pwᵀ), where each
        // row of P averages one bin.
        let pw = bin_matrix(w, ow, x)?; // [W, OW]
        let ph = bin_matrix(h, oh, x)?.t()?; // [OH, H]
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let xw = x.reshape((n * c * h, w))?.matmul(&pw)?; // [N·C·H, OW]
        let xw = xw.reshape((n * c, h, ow))?;
        ph.unsqueeze(0)?
            .broadcast_as((n * c, oh, h))?
            .contiguous()?
            .matmul(&xw)?
            .reshape((n, c, oh, ow))
    }
}

/// `[len, bins]` matrix whose column `j` averages PyTorch's adaptive bin `j`.
fn bin_matrix(len: usize, bins: usize, like: &Tensor) -> Result<Tensor> {
    let mut m = vec![0f32; len * bins];
    for j in 0..bins {
        let start = j * len / bins;
        let end = ((j + 1) * len).div_ceil(bins);
        let weight = 1.0 / (end - start) as f32;
        for i in start..end {
            m[i * bins + j] = weight;
        }
    }
    Tensor::from_vec(m, (len, bins), like.device())?.to_dtype(like.dtype())
}

impl ModuleT for AdaptiveAvgPool2d {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.forward(x)
    }
}

/// Global average pooling to `[N, C]`, the head of every post-2014 classifier.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_mode_drops_a_window_that_would_start_in_the_padding() {
        // L=5, k=2, s=3, p=1: ceil gives 3 windows, but the third would start at 6 ≥ 5+1.
        let a = Axis::new(2, 3, 1).unwrap();
        assert_eq!(a.windows(5, true).unwrap().out, 2);
        assert_eq!(a.windows(5, false).unwrap().out, 2);
        // GoogLeNet's 3×3/2 ceil pools: 112 → 56, 56 → 28, 28 → 14, 14 → 7.
        let g = Axis::new(3, 2, 0).unwrap();
        for (i, o) in [(112, 56), (56, 28), (28, 14), (14, 7)] {
            assert_eq!(g.windows(i, true).unwrap().out, o);
        }
        // ResNet's stem pool 3×3/2 pad 1: 112 → 56.
        assert_eq!(
            Axis::new(3, 2, 1).unwrap().windows(112, false).unwrap().out,
            56
        );
    }

    #[test]
    fn overlapping_max_pool_ignores_what_no_window_reaches() {
        // 3×3/2 without padding over 7×6: the windows cover 7 rows and 5 columns, so the last
        // column is trimmed (a non-contiguous view) before the strided views are taken.
        let (h, w) = (7, 6);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 23) % 37) as f32).collect();
        let x = Tensor::from_vec(data.clone(), (1, 1, h, w), &candle_core::Device::Cpu).unwrap();
        let y = MaxPool2d::new(3, 2, 0).unwrap().forward(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 3, 2]);
        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for (k, &v) in y.iter().enumerate() {
            let (oi, oj) = (k / 2, k % 2);
            let mut want = f32::NEG_INFINITY;
            for (a, b) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                want = want.max(data[(2 * oi + a) * w + 2 * oj + b]);
            }
            assert_eq!(v, want, "window ({oi}, {oj})");
        }
    }

    #[test]
    fn overlapping_avg_pool_has_pytorchs_values_and_a_gradient() {
        // Inception's branch pool, 3×3/1 with padding 1, not counting the padding: each output
        // is the mean of the in-bounds part of its window, and the gradient of the sum of the
        // outputs gives each input 1/divisor for every window it is in.
        let (h, w) = (4, 5);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32).collect();
        let x = candle_core::Var::from_vec(data.clone(), (1, 1, h, w), &candle_core::Device::Cpu)
            .unwrap();
        let y = AvgPool2d::new(3, 1, 1)
            .unwrap()
            .exclude_pad()
            .forward(x.as_tensor())
            .unwrap();
        let grad = y.sum_all().unwrap().backward().unwrap();
        let grad: Vec<f32> = grad
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let mut want_grad = vec![0f64; h * w];
        for (i, j) in (0..h).flat_map(|i| (0..w).map(move |j| (i, j))) {
            let window: Vec<usize> = (i.saturating_sub(1)..(i + 2).min(h))
                .flat_map(|r| (j.saturating_sub(1)..(j + 2).min(w)).map(move |c| r * w + c))
                .collect();
            let mean =
                window.iter().map(|&k| f64::from(data[k])).sum::<f64>() / window.len() as f64;
            assert!((f64::from(y[i * w + j]) - mean).abs() < 1e-5, "({i}, {j})");
            for &k in &window {
                want_grad[k] += 1.0 / window.len() as f64;
            }
        }
        for (g, want) in grad.iter().zip(want_grad) {
            assert!((f64::from(*g) - want).abs() < 1e-6, "{grad:?}");
        }
    }

    #[test]
    fn overlapping_max_pool_has_a_gradient() {
        // ResNet's stem pool, 3×3/2 with padding 1, on distinct values: the gradient of the
        // sum of the outputs counts, for each input, the windows whose maximum it is.
        let (h, w) = (7, 6);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 17) % 41) as f32).collect();
        let x = candle_core::Var::from_vec(data.clone(), (1, 1, h, w), &candle_core::Device::Cpu)
            .unwrap();
        let pool = MaxPool2d::new(3, 2, 1).unwrap();
        let y = pool.forward(x.as_tensor()).unwrap();
        assert_eq!(y.dims(), &[1, 1, 4, 3]);
        let grad = y.sum_all().unwrap().backward().unwrap();
        let grad: Vec<f32> = grad
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut want = vec![0f32; h * w];
        let out: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for (oi, oj) in (0..4usize).flat_map(|i| (0..3usize).map(move |j| (i, j))) {
            let rows = (2 * oi).saturating_sub(1)..(2 * oi + 2).min(h);
            let cols = (2 * oj).saturating_sub(1)..(2 * oj + 2).min(w);
            let argmax = rows
                .flat_map(|r| cols.clone().map(move |c| r * w + c))
                .max_by(|&a, &b| data[a].total_cmp(&data[b]))
                .unwrap();
            assert_eq!(out[oi * 3 + oj], data[argmax]);
            want[argmax] += 1.0;
        }
        assert_eq!(grad, want);
    }

    #[test]
    fn overlapping_avg_pool_has_pytorchs_gradient_and_values() {
        // Inception's branch pool, 3×3/1 pad 1 without counting padding, and a ceil-mode
        // 3×3/2: d(sum y)/dx[i] is the sum of 1/divisor over the windows covering x[i].
        let dev = candle_core::Device::Cpu;
        let (h, w) = (5, 6);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32).collect();
        for (pool, stride) in [
            (AvgPool2d::new(3, 1, 1).unwrap().exclude_pad(), 1usize),
            (AvgPool2d::new(3, 2, 1).unwrap().ceil_mode(), 2),
        ] {
            let x = candle_core::Var::from_vec(data.clone(), (1, 1, h, w), &dev).unwrap();
            let y = pool.forward(x.as_tensor()).unwrap();
            let plain = pool
                .forward(&Tensor::from_vec(data.clone(), (1, 1, h, w), &dev).unwrap())
                .unwrap();
            let diff = (&y - &plain).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
            let grad = y.sum_all().unwrap().backward().unwrap();
            let grad: Vec<f32> = grad
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let (oh, ow) = (y.dim(2).unwrap(), y.dim(3).unwrap());
            let (dh, dw) = (
                pool.h.divisors(
                    h,
                    pool.h.windows(h, pool.ceil_mode).unwrap(),
                    pool.count_include_pad,
                ),
                pool.w.divisors(
                    w,
                    pool.w.windows(w, pool.ceil_mode).unwrap(),
                    pool.count_include_pad,
                ),
            );
            let mut want = vec![0f32; h * w];
            for (i, di) in dh.iter().enumerate().take(oh) {
                for (j, dj) in dw.iter().enumerate().take(ow) {
                    let (r0, c0) = ((i * stride) as isize - 1, (j * stride) as isize - 1);
                    for r in r0.max(0)..(r0 + 3).min(h as isize) {
                        for c in c0.max(0)..(c0 + 3).min(w as isize) {
                            want[r as usize * w + c as usize] += 1.0 / (di * dj) as f32;
                        }
                    }
                }
            }
            for (g, e) in grad.iter().zip(&want) {
                assert!((g - e).abs() < 1e-6, "{grad:?}\n{want:?}");
            }
        }
    }

    #[test]
    fn a_max_pool_gradient_goes_to_the_first_of_equal_maxima() {
        // PyTorch routes each window's gradient to one index, the first maximum in scan
        // order (candle's own pooling gradient goes to every input equal to it). LeNet-5's
        // 2×2/2 over a plane of ties, and a 3×3/2 whose windows share a column.
        let dev = candle_core::Device::Cpu;
        let x = candle_core::Var::ones((1, 1, 4, 5), DType::F32, &dev).unwrap();
        for (pool, want) in [
            (
                MaxPool2d::new(2, 2, 0).unwrap(),
                [
                    [1., 0., 1., 0., 0.],
                    [0., 0., 0., 0., 0.],
                    [1., 0., 1., 0., 0.],
                    [0., 0., 0., 0., 0.],
                ],
            ),
            (
                MaxPool2d::new(3, 2, 0).unwrap(),
                [
                    [1., 0., 1., 0., 0.],
                    [0., 0., 0., 0., 0.],
                    [0., 0., 0., 0., 0.],
                    [0., 0., 0., 0., 0.],
                ],
            ),
        ] {
            let y = pool.forward(x.as_tensor()).unwrap();
            let grads = y.sum_all().unwrap().backward().unwrap();
            let grad: Vec<Vec<f32>> = grads
                .get(&x)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec2()
                .unwrap();
            assert_eq!(grad, want.map(|r| r.to_vec()).to_vec(), "{pool:?}");
        }
    }

    #[test]
    fn the_separable_passes_equal_the_scan_to_the_bit() {
        // Values with ties, signed zeros, infinities and NaN, over windows with padding,
        // ceil mode, strides above and below the kernel, and rectangles.
        let specials = [0.0, -0.0, 1.0, 1.0, f32::NEG_INFINITY, f32::NAN, -2.5, 3.25];
        for (h, w, k, s, p, ceil) in [(13, 11), (12, 16)].into_iter().flat_map(|(h, w)| {
            [
                ((3, 3), (2, 2), (1, 1), false),
                ((3, 3), (1, 1), (1, 1), true),
                ((2, 2), (2, 2), (0, 0), true),
                ((5, 3), (3, 2), (2, 1), true),
                ((1, 4), (2, 3), (0, 2), false),
                // Stride 1, where a pass runs over the whole plane: "same" windows (the
                // Inception branch poolings), valid ones, and one axis at stride 1 only.
                ((3, 3), (1, 1), (1, 1), false),
                ((5, 5), (1, 1), (2, 2), false),
                ((3, 3), (1, 1), (0, 0), false),
                ((1, 3), (1, 1), (0, 1), false),
                ((3, 2), (1, 2), (1, 1), true),
            ]
            .map(|(k, s, p, ceil)| (h, w, k, s, p, ceil))
        }) {
            // Two planes: few ties and every special value; then three values in pairs
            // along the rows, so that most windows hold equal maxima.
            for x in [
                (0..h * w)
                    .map(|i| match i % 7 {
                        0 => specials[(i / 7) % specials.len()],
                        k => ((i * 37) % 23) as f32 * 0.37 - 4.0 + k as f32 * 1e-3,
                    })
                    .collect::<Vec<f32>>(),
                (0..h * w).map(|i| ((i / 2) % 3) as f32 - 1.0).collect(),
            ] {
                let (ah, aw) = (
                    Axis::new(k.0, s.0, p.0).unwrap(),
                    Axis::new(k.1, s.1, p.1).unwrap(),
                );
                let (wh, ww) = (ah.windows(h, ceil).unwrap(), aw.windows(w, ceil).unwrap());
                for (reduce, include_pad) in [
                    (Reduce::Max, false),
                    (Reduce::Mean, false),
                    (Reduce::Mean, true),
                ] {
                    let mut pool = DirectPool::new(reduce, (ah, wh), (aw, ww), (h, w));
                    pool.dh = ah.divisors(h, wh, include_pad);
                    pool.dw = aw.divisors(w, ww, include_pad);
                    let len = wh.out * ww.out;
                    let (mut scan, mut fast) = (vec![0f32; len], vec![1f32; len]);
                    let mut winners = vec![0u32; len];
                    let record = (reduce == Reduce::Max).then_some(&mut winners[..]);
                    pool.plane(&x, w, &mut scan, record);
                    pool.plane_separable(&x, w, &mut fast, &mut Vec::new());
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    if reduce == Reduce::Max {
                        // Training's pass, which also records where each maximum came from.
                        let (mut values, mut found) = (vec![1f32; len], vec![7u32; len]);
                        let mut buffers = Default::default();
                        pool.plane_winners(&x, w, &mut values, &mut found, &mut buffers);
                        assert_eq!(
                            bits(&scan),
                            bits(&values),
                            "{h}×{w} {k:?} {s:?} {p:?} {ceil}"
                        );
                        assert_eq!(winners, found, "{h}×{w} {k:?} {s:?} {p:?} {ceil}");
                    }
                    assert_eq!(
                        bits(&scan),
                        bits(&fast),
                        "{reduce:?} {include_pad} {h}×{w} {k:?} {s:?} {p:?} {ceil}"
                    );
                }
            }
        }
    }

    #[test]
    fn too_much_padding_is_refused() {
        assert!(Axis::new(3, 1, 2).is_err());
        assert!(MaxPool2d::new(2, 2, 2).is_err());
    }
}
