//! The convolution of the training path: the inference kernel's forward pass, and a backward
//! pass of matrix products.
//!
//! candle differentiates its convolution with a transposed convolution that is a scalar loop
//! (85 % of a LeNet-5 training step). Here, per image and group, with the columns `cols`
//! of the forward pass ([`Geometry::gather`]):
//!
//! - the input gradient is `Wᵀ · dY`, scattered back from columns to pixels (the reverse of
//!   the gather, into the same stride-phase layout, then unpadded); a 1×1 convolution with
//!   stride 1 writes `Wᵀ · dY` into the gradient directly;
//! - the weight gradient is `Σ_images dY · colsᵀ`, accumulated per thread then summed;
//! - the bias gradient is the per-channel sum of `dY`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::conv::{COLS, Epilogue, Geometry, PADDED, on_worker, tile_len, with_buffer};
use super::f32_slice;
use super::gemm::{MatMut, MatRef, matmul};
use crate::layers::{Activation, Conv2dConfig};

/// `conv(x, weight) + bias`, then a ReLU if `relu`, with a backward pass, for f32 CPU
/// tensors.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    cfg: &Conv2dConfig,
    relu: bool,
) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (o, cg, kh, kw) = weight.dims4()?;
    if cg * cfg.groups != c || (kh, kw) != cfg.kernel || !o.is_multiple_of(cfg.groups) {
        candle_core::bail!(
            "Conv2d: weight {:?} does not fit a {c}-channel input in {} groups",
            weight.dims(),
            cfg.groups
        )
    }
    let op = ConvTrain(Geometry::new(c, h, w, o, cfg)?, relu);
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&weight, &b.contiguous()?, op),
        None => x.apply_op2(&weight, op),
    }
}

/// The geometry, and whether a ReLU follows (its gradient is then masked by the output's
/// sign before the matrix products).
struct ConvTrain(Geometry, bool);

impl ConvTrain {
    fn forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let n = x.1.dims()[0];
        let epilogue = Epilogue {
            shift: bias.map(<[f32]>::to_vec),
            act: self.1.then_some(Activation::Relu),
            ..Epilogue::default()
        };
        let out = g.forward(
            f32_slice("conv2d", x.0, x.1, "input")?,
            n,
            f32_slice("conv2d", w.0, w.1, "weight")?,
            None,
            &epilogue,
            None,
        );
        Ok((CpuStorage::F32(out), Shape::from((n, g.o, g.oh, g.ow))))
    }

    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Tensor)> {
        let g = self.0;
        let dy = dy.contiguous()?;
        let dy = if self.1 {
            dy.apply_op2_no_bwd(&y.contiguous()?, &ReluGrad)?
        } else {
            dy
        };
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &GradInput(g))?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(&dy, &GradWeight(g))?)
        } else {
            None
        };
        Ok((dx, dw, dy))
    }
}

impl CustomOp2 for ConvTrain {
    fn name(&self) -> &'static str {
        "convnets-conv2d-train"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward((xs, xl), (ws, wl), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, y, dy)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for ConvTrain {
    fn name(&self) -> &'static str {
        "convnets-conv2d-train"
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
        self.forward(
            (xs, xl),
            (ws, wl),
            Some(f32_slice("conv2d", bs, bl, "bias")?),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, dy) = self.backward(x, w, y, dy)?;
        let db = if b.track_op() {
            Some(dy.apply_op1_no_bwd(&ChannelSums)?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// `dY · [y > 0]`, on `(dY, y)`: the gradient through a fused ReLU (PyTorch's, which is 0
/// where the output is 0).
pub(super) struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "convnets-relu-grad"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (dy, y) = (
            f32_slice("conv2d", ds, dl, "gradient")?,
            f32_slice("conv2d", ys, yl, "output")?,
        );
        if dy.len() != y.len() {
            candle_core::bail!(
                "relu gradient: {:?} for an output {:?}",
                dl.dims(),
                yl.dims()
            )
        }
        let mut dx = super::alloc::zeroed(dy.len());
        dx.par_chunks_mut(1 << 14)
            .zip(dy.par_chunks(1 << 14).zip(y.par_chunks(1 << 14)))
            .for_each(|(dx, (dy, y))| {
                for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
                    *d = if v > 0.0 { g } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(dx), dl.shape().clone()))
    }
}

/// `dY` (`N × O × OH × OW`) and `W` to the input gradient `N × C × H × W`.
struct GradInput(Geometry);

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "convnets-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        dys: &CpuStorage,
        dyl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (dy, w) = (
            f32_slice("conv2d", dys, dyl, "gradient")?,
            f32_slice("conv2d", ws, wl, "weight")?,
        );
        let n = dyl.dims()[0];
        let (in_len, out_len) = (g.c * g.h * g.w, g.o * g.p());
        let mut dx = super::alloc::zeroed(n * in_len);
        let image = |(dx, dy): (&mut [f32], &[f32])| g.grad_input_image(w, dy, dx);
        if n > 1 || on_worker() {
            dx.par_chunks_mut(in_len)
                .zip(dy.par_chunks(out_len))
                .for_each(image);
        } else {
            dx.chunks_mut(in_len)
                .zip(dy.chunks(out_len))
                .for_each(image);
        }
        Ok((CpuStorage::F32(dx), Shape::from((n, g.c, g.h, g.w))))
    }
}

/// `X` (`N × C × H × W`) and `dY` to the weight gradient `O × C/groups × kh × kw`.
struct GradWeight(Geometry);

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "convnets-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        dys: &CpuStorage,
        dyl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let (x, dy) = (
            f32_slice("conv2d", xs, xl, "input")?,
            f32_slice("conv2d", dys, dyl, "gradient")?,
        );
        let (in_len, out_len, len) = (g.c * g.h * g.w, g.o * g.p(), g.o * g.kg());
        let dw = x
            .par_chunks(in_len)
            .zip(dy.par_chunks(out_len))
            .fold(
                || vec![0f32; len],
                |mut acc, (x, dy)| {
                    g.grad_weight_image(x, dy, &mut acc);
                    acc
                },
            )
            .reduce(
                || vec![0f32; len],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        // Each group's block back from kg × og to og × kg.
        let (og, kg) = (g.og(), g.kg());
        let mut out = vec![0f32; len];
        for (t, w) in dw.chunks_exact(kg * og).zip(out.chunks_exact_mut(og * kg)) {
            for (r, row) in w.chunks_exact_mut(kg).enumerate() {
                for (k, v) in row.iter_mut().enumerate() {
                    *v = t[k * og + r];
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((g.o, g.cg(), g.kh, g.kw))))
    }
}

/// `[N, C, ...]` to the per-channel sums `[C]`, accumulated in f64.
pub(crate) struct ChannelSums;

impl CustomOp1 for ChannelSums {
    fn name(&self) -> &'static str {
        "convnets-channel-sums"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice("conv2d", s, l, "input")?;
        let dims = l.dims();
        let (n, c) = (dims[0], dims[1]);
        let plane = dims[2..].iter().product::<usize>();
        let sums: Vec<f32> = (0..c)
            .into_par_iter()
            .map(|ch| {
                (0..n)
                    .map(|b| {
                        x[(b * c + ch) * plane..][..plane]
                            .iter()
                            .map(|&v| f64::from(v))
                            .sum::<f64>()
                    })
                    .sum::<f64>() as f32
            })
            .collect();
        Ok((CpuStorage::F32(sums), Shape::from(c)))
    }
}

impl Geometry {
    /// Adds the column gradient `dcols` (the `kg` rows, `ld` apart, of output positions
    /// `p0..p0 + len`, group `g`) into `dxp`, the image's gradient in [`Geometry::pad`]'s
    /// layout: the reverse of [`Geometry::gather`].
    fn scatter(&self, dcols: &[f32], g: usize, p0: usize, len: usize, ld: usize, dxp: &mut [f32]) {
        let (s, (hq, wq)) = (self.stride, self.phase());
        let (kh, kw, d) = (self.kh, self.kw, self.dilation);
        for c in 0..self.cg() {
            let phases = &mut dxp[(g * self.cg() + c) * s * s * hq * wq..][..s * s * hq * wq];
            for i in 0..kh {
                for j in 0..kw {
                    let row = &dcols[((c * kh + i) * kw + j) * ld..][..len];
                    let (a, b) = ((i * d) % s, (j * d) % s);
                    let plane = &mut phases[(a * s + b) * hq * wq..][..hq * wq];
                    let (dy, dx) = ((i * d) / s, (j * d) / s);
                    let (mut oy, mut ox) = (p0 / self.ow, p0 % self.ow);
                    let mut done = 0;
                    while done < len {
                        let n = (self.ow - ox).min(len - done);
                        let dst = &mut plane[(oy + dy) * wq + ox + dx..][..n];
                        for (v, r) in dst.iter_mut().zip(&row[done..done + n]) {
                            *v += r;
                        }
                        done += n;
                        (oy, ox) = (oy + 1, 0);
                    }
                }
            }
        }
    }

    /// The reverse of [`Geometry::pad`]: the image's pixels out of `xp`, padding dropped.
    fn unpad(&self, xp: &[f32], x: &mut [f32]) {
        let (s, (hq, wq)) = (self.stride, self.phase());
        let (h, w, ph, pw) = (self.h, self.w, self.ph, self.pw);
        if s == 1 {
            for (dst, plane) in x.chunks_exact_mut(h * w).zip(xp.chunks_exact(hq * wq)) {
                for (line, row) in dst
                    .chunks_exact_mut(w)
                    .zip(plane[ph * wq..].chunks_exact(wq))
                {
                    line.copy_from_slice(&row[pw..pw + w]);
                }
            }
            return;
        }
        for (dst, phases) in x
            .chunks_exact_mut(h * w)
            .zip(xp.chunks_exact(s * s * hq * wq))
        {
            for (y, line) in dst.chunks_exact_mut(w).enumerate() {
                let (a, yq) = ((y + ph) % s, (y + ph) / s);
                for b in 0..s {
                    let first = (b + s - pw % s) % s;
                    if first >= w {
                        continue;
                    }
                    let row = &phases[((a * s + b) * hq + yq) * wq..][..wq];
                    let xq = (first + pw) / s;
                    for (v, x) in line[first..].iter_mut().step_by(s).zip(&row[xq..]) {
                        *v = *x;
                    }
                }
            }
        }
    }

    /// One image's input gradient `dx` (`C × H × W`) from its output gradient `dy`
    /// (`O × OH × OW`).
    fn grad_input_image(&self, w: &[f32], dy: &[f32], dx: &mut [f32]) {
        let (p, og, kg, cg) = (self.p(), self.og(), self.kg(), self.cg());
        let weight_t = |grp: usize| MatRef::row_major(&w[grp * og * kg..][..og * kg], og, kg).t();
        let dy_rows = |grp: usize, p0: usize, len: usize| MatRef {
            data: &dy[grp * og * p + p0..],
            rows: og,
            cols: len,
            rs: p,
            cs: 1,
        };
        if self.pointwise() {
            for grp in 0..self.groups {
                let dst = MatMut::row_major(&mut dx[grp * cg * p..][..cg * p], cg, p);
                matmul(dst, weight_t(grp), dy_rows(grp, 0, p), false, false);
            }
            return;
        }
        let tile = tile_len(self, kg);
        with_buffer(&PADDED, self.padded_len(), |dxp| {
            dxp.fill(0.0);
            let mut p0 = 0;
            while p0 < p {
                let len = tile.min(p - p0);
                for grp in 0..self.groups {
                    with_buffer(&COLS, kg * len, |dcols| {
                        let dst = MatMut::row_major(dcols, kg, len);
                        matmul(dst, weight_t(grp), dy_rows(grp, p0, len), false, false);
                        self.scatter(dcols, grp, p0, len, len, dxp);
                    });
                }
                p0 += len;
            }
            self.unpad(dxp, dx);
        });
    }

    /// Adds one image's weight gradient to `acc`, which holds each group's gradient
    /// transposed (`groups × kg × og`), from its input `x` (`C × H × W`) and output gradient
    /// `dy` (`O × OH × OW`).
    ///
    /// Transposed, because the matrix kernel reads its left operand in panels of rows: with
    /// `dY` on the left (`og` rows, the output positions along `k`), the operand it repacks
    /// per call is a tile of `dY`, not the (`kh·kw` times larger) columns, and the columns
    /// are read in place as the right operand.
    fn grad_weight_image(&self, x: &[f32], dy: &[f32], acc: &mut [f32]) {
        let (p, og, kg) = (self.p(), self.og(), self.kg());
        let tile = if self.pointwise() {
            p
        } else {
            tile_len(self, kg)
        };
        let mut run = |xp: &[f32]| {
            let mut p0 = 0;
            while p0 < p {
                let len = tile.min(p - p0);
                for grp in 0..self.groups {
                    // dWᵀ viewed as dW (og × kg) with unit row stride.
                    let dst = MatMut {
                        data: &mut acc[grp * kg * og..][..kg * og],
                        rows: og,
                        cols: kg,
                        rs: 1,
                        cs: og,
                    };
                    let dy = MatRef {
                        data: &dy[grp * og * p + p0..],
                        rows: og,
                        cols: len,
                        rs: p,
                        cs: 1,
                    };
                    if self.pointwise() {
                        let cols = MatRef {
                            data: &xp[grp * kg * p + p0..],
                            rows: kg,
                            cols: len,
                            rs: p,
                            cs: 1,
                        };
                        matmul(dst, dy, cols.t(), true, false);
                    } else {
                        with_buffer(&COLS, kg * len, |cols| {
                            self.gather(xp, grp, p0, len, cols, len);
                            matmul(dst, dy, MatRef::row_major(cols, kg, len).t(), true, false);
                        });
                    }
                }
                p0 += len;
            }
        };
        if self.pointwise() || self.reads_input() {
            run(x);
        } else {
            with_buffer(&PADDED, self.padded_len(), |xp| {
                self.pad(x, xp);
                run(xp);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::kernels::conv::tests::values;

    /// A fused ReLU gives the values and gradients of the convolution followed by a ReLU:
    /// the gradient is masked by the output's sign before it reaches x, the weight and
    /// the bias.
    #[test]
    fn a_fused_relu_is_the_relu_after_the_convolution() -> Result<()> {
        let dev = Device::Cpu;
        let (n, c, h, w, o) = (3, 4, 9, 8, 5);
        let cfg = Conv2dConfig::new(3).stride(2).padding(1);
        let x = Var::from_vec(values(n * c * h * w, 1), (n, c, h, w), &dev)?;
        let wt = Var::from_vec(values(o * c * 9, 2), (o, c, 3, 3), &dev)?;
        let b = Var::from_vec(values(o, 3), o, &dev)?;
        let run = |fused: bool| -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
            let args = (x.as_tensor(), wt.as_tensor(), Some(b.as_tensor()));
            let y = if fused {
                conv2d(args.0, args.1, args.2, &cfg, true)?
            } else {
                conv2d(args.0, args.1, args.2, &cfg, false)?.relu()?
            };
            let r = Tensor::from_vec(values(y.elem_count(), 4), y.shape(), &dev)?;
            let grads = (&y * &r)?.sum_all()?.backward()?;
            let grad = |v: &Var| -> Result<Vec<f32>> {
                grads.get(v).expect("a gradient").flatten_all()?.to_vec1()
            };
            Ok((
                y.flatten_all()?.to_vec1()?,
                vec![grad(&x)?, grad(&wt)?, grad(&b)?],
            ))
        };
        let ((y, fused), (want_y, plain)) = (run(true)?, run(false)?);
        assert_eq!(y, want_y);
        assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
        for (got, want) in fused.iter().zip(&plain) {
            for (a, e) in got.iter().zip(want) {
                assert!((a - e).abs() <= 1e-5 * e.abs().max(1.0), "{a} vs {e}");
            }
        }
        Ok(())
    }

    /// The gradients of `sum(conv(x) · r)` against the definition, in f64 (candle's own
    /// convolution gradient is off for strided convolutions of odd sizes).
    #[test]
    fn gradients_match_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        let cases = [
            (2, 5, 9, 9, 7, Conv2dConfig::new(1)),
            (2, 6, 8, 7, 4, Conv2dConfig::new(1).stride(2)),
            (3, 4, 10, 11, 6, Conv2dConfig::new(3).padding(1)),
            (2, 3, 13, 11, 4, Conv2dConfig::new(3).stride(2).padding(1)),
            (
                2,
                3,
                15,
                16,
                4,
                Conv2dConfig::rect(5, 3).stride(3).padding_hw(2, 1),
            ),
            (1, 4, 12, 12, 6, Conv2dConfig::new(3).padding(2).dilation(2)),
            (
                2,
                8,
                10,
                9,
                6,
                Conv2dConfig::new(3).stride(2).padding(1).groups(2),
            ),
            (2, 8, 6, 6, 8, Conv2dConfig::new(1).groups(4)),
            (2, 2, 9, 9, 3, Conv2dConfig::new(5)),
            (130, 2, 4, 4, 3, Conv2dConfig::new(3).padding(1)),
        ];
        for (k, (n, c, h, w, o, cfg)) in cases.into_iter().enumerate() {
            let g = Geometry::new(c, h, w, o, &cfg)?;
            let (kh, kw) = cfg.kernel;
            let (xs, ws, bs) = (
                values(n * c * h * w, k),
                values(o * g.kg(), k + 1),
                values(o, k + 2),
            );
            let x = Var::from_vec(xs.clone(), (n, c, h, w), &dev)?;
            let wt = Var::from_vec(ws.clone(), (o, g.cg(), kh, kw), &dev)?;
            let b = Var::from_vec(bs.clone(), o, &dev)?;
            let y = conv2d(
                x.as_tensor(),
                wt.as_tensor(),
                Some(b.as_tensor()),
                &cfg,
                false,
            )?;
            let rs = values(y.elem_count(), k + 3);
            let r = Tensor::from_vec(rs.clone(), y.shape(), &dev)?;
            let grads = (&y * &r)?.sum_all()?.backward()?;
            // The definition: every (image, output, tap) pairs one input with one weight.
            let mut want_y = vec![0f64; n * o * g.p()];
            let (mut dx, mut dw, mut db) =
                (vec![0f64; xs.len()], vec![0f64; ws.len()], vec![0f64; o]);
            for bi in 0..n {
                for oc in 0..o {
                    let grp = oc / g.og();
                    for (q, (oy, ox)) in (0..g.oh)
                        .flat_map(|a| (0..g.ow).map(move |b| (a, b)))
                        .enumerate()
                    {
                        let at = (bi * o + oc) * g.p() + q;
                        let rv = f64::from(rs[at]);
                        want_y[at] += f64::from(bs[oc]);
                        db[oc] += rv;
                        for ci in 0..g.cg() {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let (Some(iy), Some(ix)) =
                                        (g.source(oy, i, g.ph, h), g.source(ox, j, g.pw, w))
                                    else {
                                        continue;
                                    };
                                    let xi = ((bi * c + grp * g.cg() + ci) * h + iy) * w + ix;
                                    let wi = ((oc * g.cg() + ci) * kh + i) * kw + j;
                                    want_y[at] += f64::from(xs[xi]) * f64::from(ws[wi]);
                                    dx[xi] += rv * f64::from(ws[wi]);
                                    dw[wi] += rv * f64::from(xs[xi]);
                                }
                            }
                        }
                    }
                }
            }
            let close = |got: &Tensor, want: &[f64], what: &str| -> Result<()> {
                let got: Vec<f32> = got.flatten_all()?.to_vec1()?;
                assert_eq!(got.len(), want.len(), "case {k}: {what}");
                let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
                for (i, (a, e)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (f64::from(*a) - e).abs() <= 1e-5 * scale,
                        "case {k} {cfg:?}: {what}[{i}] {a} vs {e}"
                    );
                }
                Ok(())
            };
            close(&y, &want_y, "output")?;
            let grad = |v: &Var| grads.get(v.as_tensor()).cloned().expect("a gradient");
            close(&grad(&x), &dx, "dx")?;
            close(&grad(&wt), &dw, "dw")?;
            close(&grad(&b), &db, "db")?;
        }
        Ok(())
    }
}
