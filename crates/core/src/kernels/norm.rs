//! BatchNorm in training mode (batch statistics), with an optional ReLU, as one operation
//! with a hand-written backward pass.
//!
//! Written with candle's operations, a training BatchNorm is a dozen passes over the
//! activation forward and twice that backward, and the gradients of its scale and shift
//! are candle's multi-axis sums, which walk a strided index per element. Here the forward
//! pass reads each channel twice (mean, then the variance about it, in f64) and writes the
//! output once; the backward pass reads it twice: once for `Σ dy` and `Σ dy·x̂`, once to
//! write `dx = γ/σ · (dy − Σdy/m − x̂ · Σdy·x̂/m)` (PyTorch's formula). A fused ReLU masks
//! `dy` by the output's sign on the way.

use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::f32_slice;

/// The statistics of one batch: per channel, the mean and the biased variance.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// `relu?((x − mean)/√(var + eps) · weight + bias)` over `[N, C, ...]` with the batch's
/// statistics, which it leaves in `stats` for the running averages.
#[derive(Debug, Clone)]
pub(crate) struct BatchNormTrain {
    pub eps: f64,
    pub relu: bool,
    pub stats: Arc<Mutex<BatchStats>>,
}

fn tensor_slice<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(s) => f32_slice("batch norm", s, layout, what),
        _ => candle_core::bail!("batch norm: the {what} must be on the CPU"),
    }
}

/// `(N, C, plane)` of an `[N, C, ...]` layout.
fn dims(layout: &Layout) -> Result<(usize, usize, usize)> {
    let d = layout.dims();
    if d.len() < 2 {
        candle_core::bail!("batch norm: expected [N, C, ...], got {d:?}")
    }
    Ok((d[0], d[1], d[2..].iter().product()))
}

/// `f` over channel `ch`'s values, image by image.
fn planes(
    x: &[f32],
    (n, c, plane): (usize, usize, usize),
    ch: usize,
) -> impl Iterator<Item = &[f32]> {
    (0..n).map(move |b| &x[(b * c + ch) * plane..][..plane])
}

/// `Σ f(x)` in sixteen f32 lanes (which the compiler vectorises; a plain f32 fold is
/// sequential), for one plane; planes are summed in f64.
fn lanes(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

/// Two sums of `f(x, y, dy)` over one plane, as [`lanes`].
fn lanes2(x: &[f32], y: &[f32], dy: &[f32], f: impl Fn(f32, f32, f32) -> (f32, f32)) -> (f32, f32) {
    let (mut a, mut b) = ([0f32; 16], [0f32; 16]);
    let mut i = 0;
    while i + 16 <= x.len() {
        for l in 0..16 {
            let (p, q) = f(x[i + l], y[i + l], dy[i + l]);
            a[l] += p;
            b[l] += q;
        }
        i += 16;
    }
    let (mut sa, mut sb) = (a.iter().sum::<f32>(), b.iter().sum::<f32>());
    for k in i..x.len() {
        let (p, q) = f(x[k], y[k], dy[k]);
        sa += p;
        sb += q;
    }
    (sa, sb)
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "convnets-batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, weight, bias) = (
            f32_slice("batch norm", xs, xl, "input")?,
            f32_slice("batch norm", ws, wl, "weight")?,
            f32_slice("batch norm", bs, bl, "bias")?,
        );
        let d @ (n, c, plane) = dims(xl)?;
        let m = (n * plane) as f64;
        if m < 2.0 || weight.len() != c || bias.len() != c {
            candle_core::bail!(
                "batch norm: {:?} with {} channels of parameters",
                xl.dims(),
                weight.len()
            )
        }
        let (mean, var): (Vec<f32>, Vec<f32>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let sum: f64 = planes(x, d, ch).map(|p| f64::from(lanes(p, |v| v))).sum();
                let mean = sum / m;
                let mu = mean as f32;
                let sq: f64 = planes(x, d, ch)
                    .map(|p| f64::from(lanes(p, |v| (v - mu) * (v - mu))))
                    .sum();
                (mu, (sq / m) as f32)
            })
            .unzip();
        let mut y = super::alloc::zeroed(x.len());
        y.par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .for_each(|(i, (y, x))| {
                let ch = i % c;
                let inv = 1.0 / (f64::from(var[ch]) + self.eps).sqrt();
                let scale = (f64::from(weight[ch]) * inv) as f32;
                let shift = (f64::from(bias[ch])
                    - f64::from(mean[ch]) * f64::from(weight[ch]) * inv)
                    as f32;
                if self.relu {
                    y.iter_mut()
                        .zip(x)
                        .for_each(|(y, x)| *y = (x * scale + shift).max(0.0));
                } else {
                    y.iter_mut()
                        .zip(x)
                        .for_each(|(y, x)| *y = x * scale + shift);
                }
            });
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = BatchStats { mean, var };
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let BatchStats { mean, var } = self
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (xg, xl) = x.storage_and_layout();
        let (wg, wl) = weight.storage_and_layout();
        let (yg, yl) = y.storage_and_layout();
        let (dg, dl) = dy.storage_and_layout();
        let (xv, wv, yv, dv) = (
            tensor_slice(&xg, xl, "input")?,
            tensor_slice(&wg, wl, "weight")?,
            tensor_slice(&yg, yl, "output")?,
            tensor_slice(&dg, dl, "gradient")?,
        );
        let d @ (n, c, plane) = dims(xl)?;
        let m = (n * plane) as f64;
        let inv: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + self.eps).sqrt()) as f32)
            .collect();
        // The gradient reaching the normalisation: through the ReLU, only where it passed.
        let relu = self.relu;
        let pass = move |dy: f32, y: f32| if relu && y <= 0.0 { 0.0 } else { dy };
        let (sum_dy, sum_dy_xhat): (Vec<f64>, Vec<f64>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mu, s) = (mean[ch], inv[ch]);
                let (mut a, mut b) = (0f64, 0f64);
                for ((x, y), dy) in planes(xv, d, ch)
                    .zip(planes(yv, d, ch))
                    .zip(planes(dv, d, ch))
                {
                    let (pa, pb) = lanes2(x, y, dy, |x, y, dy| {
                        let g = pass(dy, y);
                        (g, g * (x - mu))
                    });
                    a += f64::from(pa);
                    b += f64::from(pb) * f64::from(s);
                }
                (a, b)
            })
            .unzip();
        let dx = if x.track_op() {
            let mut dx = super::alloc::zeroed(xv.len());
            dx.par_chunks_mut(plane).enumerate().for_each(|(i, dx)| {
                let (ch, at) = (i % c, i * plane);
                let (mu, s) = (mean[ch], inv[ch]);
                let k = wv[ch] * s;
                let (ma, mb) = ((sum_dy[ch] / m) as f32, (sum_dy_xhat[ch] / m) as f32);
                let (x, y, dy) = (&xv[at..][..plane], &yv[at..][..plane], &dv[at..][..plane]);
                for (((dx, &x), &y), &dy) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                    *dx = k * (pass(dy, y) - ma - (x - mu) * s * mb);
                }
            });
            Some(Tensor::from_vec(dx, x.shape(), x.device())?)
        } else {
            None
        };
        let to_tensor = |v: &[f64], like: &Tensor| -> Result<Tensor> {
            Tensor::from_vec(
                v.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                like.shape(),
                like.device(),
            )
        };
        let dw = weight
            .track_op()
            .then(|| to_tensor(&sum_dy_xhat, weight))
            .transpose()?;
        let db = bias
            .track_op()
            .then(|| to_tensor(&sum_dy, bias))
            .transpose()?;
        Ok((dx, dw, db))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// Forward values, gradients and statistics against the same normalisation written with
    /// candle's operations (which `tests/ops.rs` checks against PyTorch).
    #[test]
    fn matches_the_composition_of_candle_operations() -> Result<()> {
        let dev = Device::Cpu;
        for relu in [false, true] {
            let (n, c, h, w) = (3, 4, 5, 6);
            let values = |len: usize, seed: u64| -> Vec<f32> {
                (0..len as u64)
                    .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 500.0 - 1.5)
                    .collect()
            };
            let x = Var::from_vec(values(n * c * h * w, 1), (n, c, h, w), &dev)?;
            let wt = Var::from_vec(values(c, 2), c, &dev)?;
            let b = Var::from_vec(values(c, 3), c, &dev)?;
            let r = Tensor::from_vec(values(n * c * h * w, 4), (n, c, h, w), &dev)?;
            let op = BatchNormTrain {
                eps: 1e-5,
                relu,
                stats: Arc::default(),
            };
            let stats = op.stats.clone();
            let ours = x.as_tensor().apply_op3(wt.as_tensor(), b.as_tensor(), op)?;
            let per_channel = |t: &Tensor| t.reshape((1, c, 1, 1));
            let mean = x
                .as_tensor()
                .mean_keepdim(0)?
                .mean_keepdim(2)?
                .mean_keepdim(3)?;
            let centred = x.as_tensor().broadcast_sub(&mean)?;
            let var = centred
                .sqr()?
                .mean_keepdim(0)?
                .mean_keepdim(2)?
                .mean_keepdim(3)?;
            let theirs = centred
                .broadcast_div(&(&var + 1e-5)?.sqrt()?)?
                .broadcast_mul(&per_channel(wt.as_tensor())?)?
                .broadcast_add(&per_channel(b.as_tensor())?)?;
            let theirs = if relu { theirs.relu()? } else { theirs };
            let close = |a: &Tensor, e: &Tensor, what: &str| -> Result<()> {
                let err = (a - e)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let scale = e.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
                assert!(err <= 2e-5 * scale, "relu {relu}: {what} off by {err}");
                Ok(())
            };
            close(&ours, &theirs, "output")?;
            let got = stats.lock().unwrap_or_else(PoisonError::into_inner).clone();
            close(&Tensor::new(got.mean, &dev)?, &mean.flatten_all()?, "mean")?;
            close(
                &Tensor::new(got.var, &dev)?,
                &var.flatten_all()?,
                "variance",
            )?;
            let go = (&ours * &r)?.sum_all()?.backward()?;
            let gt = (&theirs * &r)?.sum_all()?.backward()?;
            for (v, what) in [(&x, "dx"), (&wt, "dweight"), (&b, "dbias")] {
                let (a, e) = (go.get(v.as_tensor()), gt.get(v.as_tensor()));
                close(a.expect("ours"), e.expect("candle's"), what)?;
            }
        }
        Ok(())
    }
}
