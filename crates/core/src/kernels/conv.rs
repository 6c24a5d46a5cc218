//! The convolution of the CPU inference path, with what follows it fused in.
//!
//! `[N, C, H, W]` in, `[N, O, OH, OW]` out, both NCHW: a convolution is, per image and group,
//! the product `W · cols` of the weight as an `[O, C·kh·kw]` matrix (its own memory layout,
//! so nothing is packed) and the input's columns `[C·kh·kw, OH·OW]`. The product is written
//! straight into the output tensor's rows, then one pass over the fresh rows, while they are
//! in cache, applies the epilogue: a per-channel scale and shift (the bias, or an evaluation
//! BatchNorm), an activation, a residual and a second activation.
//!
//! - A 1×1 convolution with stride 1 reads its input in place: its columns are the input.
//! - Otherwise columns are gathered tile by tile (a few hundred output positions at a time,
//!   sized to stay in L2) into a per-thread buffer; stride-1 rows are `memcpy`s.
//! - Small maps (the 7×7 of ResNet's last stage) put several images in one product, so
//!   that the matrix is wide enough for the kernel, through a scratch buffer the epilogue
//!   scatters back.
//!
//! Images are shared among the rayon threads, each running single-threaded products; a
//! batch with fewer images than threads runs the products multi-threaded instead.

use std::cell::RefCell;
use std::thread::LocalKey;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::gemm::{MatMut, MatRef, PANEL, SHORT_PANEL, matmul};
use crate::layers::{Activation, Conv2dConfig};

/// The geometry of one convolution over `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub groups: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub ph: usize,
    pub pw: usize,
    pub dilation: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    pub fn new(c: usize, h: usize, w: usize, o: usize, cfg: &Conv2dConfig) -> Result<Self> {
        let (kh, kw) = cfg.kernel;
        let (ph, pw) = cfg.padding;
        let d = cfg.dilation;
        let span = |len: usize, k: usize, p: usize| (len + 2 * p).checked_sub(d * (k - 1) + 1);
        let (Some(sh), Some(sw)) = (span(h, kh, ph), span(w, kw, pw)) else {
            candle_core::bail!("Conv2d: input {h}×{w} is smaller than the kernel {kh}×{kw}")
        };
        if cfg.stride == 0 || d == 0 || cfg.groups == 0 {
            candle_core::bail!("Conv2d: stride, dilation and groups must be positive")
        }
        Ok(Self {
            c,
            h,
            w,
            o,
            groups: cfg.groups,
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

    /// Input channels per group.
    pub(super) fn cg(&self) -> usize {
        self.c / self.groups
    }

    /// Output channels per group.
    pub(super) fn og(&self) -> usize {
        self.o / self.groups
    }

    /// Rows of a group's column matrix: (channel, kernel row, kernel column).
    pub(super) fn kg(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// Output positions per image.
    pub(super) fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Whether the columns are the input itself.
    pub(super) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.ph == 0 && self.pw == 0
    }

    /// The input index along an axis for output index `o` and kernel offset `k`, if inside.
    #[cfg(test)]
    pub(super) fn source(&self, o: usize, k: usize, pad: usize, len: usize) -> Option<usize> {
        (o * self.stride + k * self.dilation)
            .checked_sub(pad)
            .filter(|&i| i < len)
    }

    /// Height and width of each of the `stride²` phases of a padded input plane.
    pub(super) fn phase(&self) -> (usize, usize) {
        let s = self.stride;
        (
            (self.h + 2 * self.ph).div_ceil(s),
            (self.w + 2 * self.pw).div_ceil(s),
        )
    }

    /// Length of one image's [`Geometry::pad`] buffer.
    pub(super) fn padded_len(&self) -> usize {
        let (hq, wq) = self.phase();
        self.c * self.stride * self.stride * hq * wq
    }

    /// Whether the kernel is 1×1 without padding, at any stride: each output reads one
    /// input.
    pub(super) fn one_by_one(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.ph == 0 && self.pw == 0
    }

    /// Copies the inputs a strided [`Geometry::one_by_one`] convolution reads, `(oy·s,
    /// ox·s)`, into `dst`: channel `c`'s `OH × OW` at `dst[c·ld..]`.
    fn subsample(&self, x: &[f32], dst: &mut [f32], ld: usize) {
        let g = self;
        super::wide!(Geometry::subsample_in, g: &Geometry, x: &[f32], dst: &mut [f32], ld: usize);
    }

    /// [`Geometry::subsample`]'s body, inlined into its wide and narrow copies.
    #[inline(always)]
    fn subsample_in(&self, x: &[f32], dst: &mut [f32], ld: usize) {
        let (s, ow, p) = (self.stride, self.ow, self.p());
        for (c, plane) in x.chunks_exact(self.h * self.w).enumerate() {
            let out = &mut dst[c * ld..][..p];
            for (oy, row) in out.chunks_exact_mut(ow).enumerate() {
                super::copy_strided(row, &plane[oy * s * self.w..], s);
            }
        }
    }

    /// Whether the columns can be gathered from the input as it is: no padding, stride 1.
    pub(super) fn reads_input(&self) -> bool {
        self.ph == 0 && self.pw == 0 && self.stride == 1
    }

    /// Copies one image (`C × H × W`) with its zero padding into `dst`, split by stride
    /// phase: plane `(c, a, b)` holds the padded pixels `(y·s + a, x·s + b)`. A strided
    /// convolution then reads every kernel tap as contiguous runs, as a stride-1 one does.
    pub(super) fn pad(&self, x: &[f32], dst: &mut [f32]) {
        let g = self;
        super::wide!(Geometry::pad_in, g: &Geometry, x: &[f32], dst: &mut [f32]);
    }

    /// [`Geometry::pad`]'s body, inlined into its wide and narrow copies.
    #[inline(always)]
    fn pad_in(&self, x: &[f32], dst: &mut [f32]) {
        let (s, (hq, wq)) = (self.stride, self.phase());
        let (h, w, ph, pw) = (self.h, self.w, self.ph, self.pw);
        if s == 1 {
            // One phase: the plane with a zero border.
            for (src, plane) in x.chunks_exact(h * w).zip(dst.chunks_exact_mut(hq * wq)) {
                plane[..ph * wq].fill(0.0);
                plane[(ph + h) * wq..].fill(0.0);
                for (line, row) in src
                    .chunks_exact(w)
                    .zip(plane[ph * wq..].chunks_exact_mut(wq))
                {
                    row[..pw].fill(0.0);
                    row[pw..pw + w].copy_from_slice(line);
                    row[pw + w..].fill(0.0);
                }
            }
            return;
        }
        dst.fill(0.0);
        for (src, phases) in x
            .chunks_exact(h * w)
            .zip(dst.chunks_exact_mut(s * s * hq * wq))
        {
            for (y, line) in src.chunks_exact(w).enumerate() {
                let (a, yq) = ((y + ph) % s, (y + ph) / s);
                for b in 0..s {
                    // Input columns x with (x + pw) % s == b, from the first such x.
                    let first = (b + s - pw % s) % s;
                    if first >= w {
                        continue;
                    }
                    let row = &mut phases[((a * s + b) * hq + yq) * wq..][..wq];
                    let xq = (first + pw) / s;
                    super::copy_strided(&mut row[xq..], &line[first..], s);
                }
            }
        }
    }

    /// Writes the columns of output positions `p0..p0 + len` of one image, for the channels
    /// of group `g`, into the `kg` rows of `cols`, `ld` apart. `xp` is the image as
    /// [`Geometry::pad`] lays it out, or the image itself when it [`Geometry::reads_input`].
    pub(super) fn gather(
        &self,
        xp: &[f32],
        g: usize,
        p0: usize,
        len: usize,
        cols: &mut [f32],
        ld: usize,
    ) {
        let (s, (hq, wq)) = (self.stride, self.phase());
        let (kh, kw, d) = (self.kh, self.kw, self.dilation);
        for c in 0..self.cg() {
            let phases = &xp[(g * self.cg() + c) * s * s * hq * wq..][..s * s * hq * wq];
            for i in 0..kh {
                for j in 0..kw {
                    let row = &mut cols[((c * kh + i) * kw + j) * ld..][..len];
                    // Output (oy, ox) reads padded (oy·s + i·d, ox·s + j·d), that is phase
                    // (i·d mod s, j·d mod s) at (oy + i·d / s, ox + j·d / s): a run of each
                    // output row is a run of a phase row.
                    let (a, b) = ((i * d) % s, (j * d) % s);
                    let plane = &phases[(a * s + b) * hq * wq..][..hq * wq];
                    let (dy, dx) = ((i * d) / s, (j * d) / s);
                    let (mut oy, mut ox) = (p0 / self.ow, p0 % self.ow);
                    let mut done = 0;
                    while done < len {
                        let n = (self.ow - ox).min(len - done);
                        let src = &plane[(oy + dy) * wq + ox + dx..][..n];
                        row[done..done + n].copy_from_slice(src);
                        done += n;
                        (oy, ox) = (oy + 1, 0);
                    }
                }
            }
        }
    }
}

/// What the convolution's output goes through, per output channel `o`:
/// `act_after(act(y·scale[o] + shift[o]) + residual)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Epilogue {
    pub scale: Option<Vec<f32>>,
    pub shift: Option<Vec<f32>>,
    pub act: Option<Activation>,
    pub residual: Option<Tensor>,
    pub act_after: Option<Activation>,
}

fn apply(act: Option<Activation>, v: f32) -> f32 {
    match act {
        Some(Activation::Relu) => v.max(0.0),
        Some(Activation::Identity) | None => v,
    }
}

impl Epilogue {
    /// Applies the epilogue to `row`, channel `o`'s values, `res` the residual's values at
    /// the same positions; reads from `src` when given (a scratch row), else in place.
    #[inline(always)]
    pub(super) fn row(&self, o: usize, row: &mut [f32], src: Option<&[f32]>, res: Option<&[f32]>) {
        let (s, t) = (
            self.scale.as_ref().map_or(1.0, |s| s[o]),
            self.shift.as_ref().map_or(0.0, |t| t[o]),
        );
        if let Some(src) = src {
            row.copy_from_slice(src);
        }
        let (act, after) = (self.act, self.act_after);
        // Each combination is a plain loop the compiler vectorises.
        match (self.scale.is_some(), res) {
            (true, None) => row
                .iter_mut()
                .for_each(|v| *v = apply(after, apply(act, *v * s + t))),
            (false, None) => row
                .iter_mut()
                .for_each(|v| *v = apply(after, apply(act, *v + t))),
            (true, Some(r)) => row
                .iter_mut()
                .zip(r)
                .for_each(|(v, r)| *v = apply(after, apply(act, *v * s + t) + r)),
            (false, Some(r)) => row
                .iter_mut()
                .zip(r)
                .for_each(|(v, r)| *v = apply(after, apply(act, *v + t) + r)),
        }
    }
}

impl Epilogue {
    /// The epilogue of output positions `p0..p0 + len` of every channel of one image
    /// (`out`, `o × p`), in place.
    #[inline(always)]
    fn tile(&self, out: &mut [f32], res: Option<&[f32]>, (p, p0, len): (usize, usize, usize)) {
        for (ch, chunk) in out.chunks_mut(p).enumerate() {
            let row = &mut chunk[p0..][..len];
            self.row(ch, row, None, res.map(|r| &r[ch * p + p0..][..len]));
        }
    }

    /// The epilogue of positions `p0..p0 + len` of `images` images of `p` positions each,
    /// from `scratch` (`o × images·len`: channel-major, the images side by side) into
    /// `out` (`images × o × p`).
    #[inline(always)]
    fn scatter(
        &self,
        out: &mut [f32],
        scratch: &[f32],
        res: Option<&[f32]>,
        (images, p, p0, len): (usize, usize, usize, usize),
    ) {
        let o = out.len() / (images * p);
        for b in 0..images {
            for ch in 0..o {
                let at = (b * o + ch) * p + p0;
                self.row(
                    ch,
                    &mut out[at..at + len],
                    Some(&scratch[(ch * images + b) * len..][..len]),
                    res.map(|r| &r[at..at + len]),
                );
            }
        }
    }
}

thread_local! {
    pub(super) static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    pub(super) static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    pub(super) static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's buffer `key`, grown to `len` (a fresh one if it is in use).
pub(super) fn with_buffer<R>(
    key: &'static LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Bytes of columns and output a tile aims to keep in L2 (1 MiB per core here, typical).
pub(super) const TILE_BYTES: usize = 768 << 10;
/// The fewest output positions worth a matrix product of their own: below, images are
/// put together (the kernel's panels are 16 to 48 rows tall).
const MIN_COLS: usize = 192;

impl Geometry {
    /// `epilogue(conv(x, w))` for `n` images: `x` is `N × C × H × W`, `w` `O × kg`, `res`
    /// (if any) `N × O × OH × OW`, as the output.
    pub fn forward(
        &self,
        x: &[f32],
        n: usize,
        w: &[f32],
        res: Option<&[f32]>,
        epilogue: &Epilogue,
        winograd: Option<(&[f32], usize)>,
    ) -> Vec<f32> {
        let (p, o) = (self.p(), self.o);
        let per_job = if let Some((_, r)) = winograd {
            super::winograd::images_per_job(self, r, n)
        } else if p >= MIN_COLS {
            1
        } else {
            MIN_COLS.div_ceil(p)
        };
        // Positions left out of the per-image products and computed for all the images in
        // one product: a 14×14 map's 196 end in a panel of 4, which costs as much as one of
        // 16 and a third of a full one (a 256 × 196 × 1024 product ran at 210 GFLOP/s where
        // 192 columns ran at 245); eight images' 4 positions are one panel of 32.
        let rest = match p % PANEL {
            r if per_job == 1 && n > 1 && self.pointwise() && p > PANEL && r <= SHORT_PANEL => r,
            _ => 0,
        };
        let (in_len, out_len) = (self.c * self.h * self.w, o * p);
        let job = |(j, out): (usize, &mut [f32]), parallel: bool| {
            let b0 = j * per_job;
            let images = out.len() / out_len;
            let x = &x[b0 * in_len..][..images * in_len];
            let res = res.map(|r| &r[b0 * out_len..][..images * out_len]);
            if let Some(u) = winograd {
                super::winograd::run(self, u, x, images, out, res, epilogue, parallel);
            } else if images == 1 {
                run_image(self, w, x, out, res, epilogue, parallel, p - rest);
            } else {
                run_images(self, w, x, images, (0, p), out, res, epilogue, parallel);
            }
        };
        let jobs = n.div_ceil(per_job);
        let run = |out: &mut [f32]| {
            // Images in parallel, or one after the other with each product on the pool.
            let parallel = jobs < rayon::current_num_threads() && !on_worker();
            if parallel {
                out.chunks_mut(per_job * out_len)
                    .enumerate()
                    .for_each(|j| job(j, true));
            } else {
                out.par_chunks_mut(per_job * out_len)
                    .enumerate()
                    .for_each(|j| job(j, false));
            }
            if rest > 0 {
                let last = (p - rest, rest);
                run_images(self, w, x, n, last, out, res, epilogue, parallel);
            }
        };
        // SAFETY: the jobs cover the output in chunks, and each writes its whole chunk
        // before reading any of it (but for the last `rest` positions of every channel,
        // which the product after them writes): the Winograd stores and the matrix
        // products (which do not read their destination when not accumulating) write
        // every position they cover, and only then does the epilogue read and rewrite
        // them.
        #[allow(unsafe_code)]
        unsafe {
            super::alloc::written_by(n * o * p, run)
        }
    }
}

/// Whether this thread is a rayon worker already (a caller running images in parallel):
/// then work stays on it.
pub(super) fn on_worker() -> bool {
    rayon::current_thread_index().is_some()
}

/// The convolution, as a custom op over the input (weight and residual are read from their
/// tensors' storage).
struct ConvForward<'a> {
    g: Geometry,
    weight: &'a Tensor,
    epilogue: &'a Epilogue,
    winograd: Option<&'a super::winograd::Cache>,
}

pub(super) fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let Storage::Cpu(storage) = storage else {
        candle_core::bail!("conv2d: the {what} must be a CPU tensor")
    };
    super::f32_slice("conv2d", storage, layout, what)
}

impl CustomOp1 for ConvForward<'_> {
    fn name(&self) -> &'static str {
        "convnets-conv2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let x = super::f32_slice("conv2d", storage, layout, "input")?;
        let n = layout.dims()[0];
        let (w_storage, w_layout) = self.weight.storage_and_layout();
        let w = cpu_f32(&w_storage, w_layout, "weight")?;
        let res_guard = self
            .epilogue
            .residual
            .as_ref()
            .map(|r| r.storage_and_layout());
        let res = match &res_guard {
            Some((s, l)) => Some(cpu_f32(s, l, "residual")?),
            None => None,
        };
        let (p, o) = (g.p(), g.o);
        if w.len() != o * g.kg() || res.is_some_and(|r| r.len() != n * o * p) {
            candle_core::bail!("conv2d: weight or residual of the wrong size")
        }
        // The tile size depends on the images of the call (all its jobs share the transform)
        // and on the threads.
        let r = super::winograd::tile(&g, n, rayon::current_num_threads());
        let u = self
            .winograd
            .filter(|_| super::winograd::applies(&g))
            .map(|cache| cache.get(self.weight.id(), w, &g, r));
        let out = g.forward(x, n, w, res, self.epilogue, u.as_deref().map(|u| (u, r)));
        Ok((CpuStorage::F32(out), Shape::from((n, o, g.oh, g.ow))))
    }
}

/// Output positions per tile for `rows` column rows: as many as fit [`TILE_BYTES`] with the
/// output rows, at least [`MIN_COLS`], split evenly over the image in multiples of the
/// matrix kernel's panel.
pub(super) fn tile_len(g: &Geometry, rows: usize) -> usize {
    let p = g.p();
    let fit = (TILE_BYTES / 4 / (rows + g.o)).max(MIN_COLS);
    if fit >= p {
        return p;
    }
    // Multiples of the matrix kernel's panel.
    let tiles = p.div_ceil(fit);
    p.div_ceil(tiles).next_multiple_of(PANEL).min(p)
}

/// One image: `x` is `C × H × W`, `out` `O × OH × OW`, written tile by tile.
#[allow(clippy::too_many_arguments)]
fn run_image(
    g: &Geometry,
    w: &[f32],
    x: &[f32],
    out: &mut [f32],
    res: Option<&[f32]>,
    epilogue: &Epilogue,
    parallel: bool,
    end: usize,
) {
    let rows = if g.one_by_one() { 0 } else { g.kg() };
    let tile = tile_len(g, rows);
    if g.one_by_one() && !g.pointwise() {
        // A strided 1×1 (ResNet's downsampling shortcut) reads one input in stride²: the
        // subsampled image is its columns, in place, where padding would copy every input
        // into stride² phases and gathering would copy one phase again.
        return with_buffer(&PADDED, g.c * g.p(), |sub| {
            g.subsample(x, sub, g.p());
            run_tiles(g, w, sub, sub, out, res, epilogue, parallel, (tile, end));
        });
    }
    let len = if g.pointwise() || g.reads_input() {
        0
    } else {
        g.padded_len()
    };
    with_buffer(&PADDED, len, |padded| {
        let xp = if len == 0 {
            x
        } else {
            g.pad(x, padded);
            padded
        };
        run_tiles(g, w, x, xp, out, res, epilogue, parallel, (tile, end));
    });
}

/// [`run_image`]'s tiles of up to `tile` positions, up to position `end`: `xp` is the image
/// as [`Geometry::gather`] reads it; for a 1×1 convolution `x` holds the columns
/// (`C × OH·OW`).
#[allow(clippy::too_many_arguments)]
fn run_tiles(
    g: &Geometry,
    w: &[f32],
    x: &[f32],
    xp: &[f32],
    out: &mut [f32],
    res: Option<&[f32]>,
    epilogue: &Epilogue,
    parallel: bool,
    (tile, end): (usize, usize),
) {
    let (p, og, kg) = (g.p(), g.og(), g.kg());
    let mut p0 = 0;
    while p0 < end {
        let len = tile.min(end - p0);
        for grp in 0..g.groups {
            let weight = MatRef::row_major(&w[grp * og * kg..][..og * kg], og, kg);
            let dst = MatMut {
                data: &mut out[grp * og * p + p0..],
                rows: og,
                cols: len,
                rs: p,
                cs: 1,
            };
            if g.one_by_one() {
                let cols = MatRef {
                    data: &x[grp * kg * p + p0..],
                    rows: kg,
                    cols: len,
                    rs: p,
                    cs: 1,
                };
                matmul(dst, weight, cols, false, parallel);
            } else {
                with_buffer(&COLS, kg * len, |cols| {
                    g.gather(xp, grp, p0, len, cols, len);
                    matmul(
                        dst,
                        weight,
                        MatRef::row_major(cols, kg, len),
                        false,
                        parallel,
                    );
                });
            }
        }
        let tile = (p, p0, len);
        super::wide!(
            Epilogue::tile,
            epilogue: &Epilogue,
            out: &mut [f32],
            res: Option<&[f32]>,
            tile: (usize, usize, usize),
        );
        p0 += len;
    }
}

/// Several images in one product per group, through a scratch buffer: output positions
/// `p0..p0 + len` of each (all of a small map, or the end of a pointwise convolution's
/// larger one).
#[allow(clippy::too_many_arguments)]
fn run_images(
    g: &Geometry,
    w: &[f32],
    x: &[f32],
    images: usize,
    (p0, len): (usize, usize),
    out: &mut [f32],
    res: Option<&[f32]>,
    epilogue: &Epilogue,
    parallel: bool,
) {
    let (p, og, kg, o) = (g.p(), g.og(), g.kg(), g.o);
    assert!(
        (p0, len) == (0, p) || g.pointwise(),
        "conv2d: a part of the map is gathered only for a pointwise convolution"
    );
    let (in_len, cols_len) = (g.c * g.h * g.w, images * len);
    with_buffer(&SCRATCH, o * cols_len, |scratch| {
        for grp in 0..g.groups {
            let weight = MatRef::row_major(&w[grp * og * kg..][..og * kg], og, kg);
            with_buffer(&COLS, kg * cols_len, |cols| {
                for b in 0..images {
                    let xb = &x[b * in_len..][..in_len];
                    if g.pointwise() {
                        for c in 0..kg {
                            cols[c * cols_len + b * len..][..len]
                                .copy_from_slice(&xb[(grp * kg + c) * p + p0..][..len]);
                        }
                    } else if g.one_by_one() {
                        // Strided (ResNet's shortcut into 7×7): the subsampled input is
                        // the columns, without the stride phases `pad` would copy.
                        let plane = g.h * g.w;
                        g.subsample(
                            &xb[grp * kg * plane..][..kg * plane],
                            &mut cols[b * p..],
                            cols_len,
                        );
                    } else {
                        with_buffer(&PADDED, g.padded_len(), |padded| {
                            g.pad(xb, padded);
                            g.gather(padded, grp, 0, p, &mut cols[b * p..], cols_len);
                        });
                    }
                }
                let dst = MatMut::row_major(&mut scratch[grp * og * cols_len..], og, cols_len);
                matmul(
                    dst,
                    weight,
                    MatRef::row_major(cols, kg, cols_len),
                    false,
                    parallel,
                );
            });
        }
        let (scratch, shape) = (&*scratch, (images, p, p0, len));
        super::wide!(
            Epilogue::scatter,
            epilogue: &Epilogue,
            out: &mut [f32],
            scratch: &[f32],
            res: Option<&[f32]>,
            shape: (usize, usize, usize, usize),
        );
    });
}

/// `epilogue(conv(x, weight))` for an f32 CPU input `[N, C, H, W]` and weight
/// `[O, C/groups, kh, kw]` (the bias, if any, is the epilogue's shift); with a `winograd`
/// cache, a convolution that [`super::winograd::applies`] runs as F(2×2, 3×3).
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    cfg: &Conv2dConfig,
    epilogue: &Epilogue,
    winograd: Option<&super::winograd::Cache>,
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
    let g = Geometry::new(c, h, w, o, cfg)?;
    let weight = weight.contiguous()?;
    let epilogue = match &epilogue.residual {
        Some(r) => {
            if r.dims() != [x.dim(0)?, o, g.oh, g.ow] {
                candle_core::bail!(
                    "Conv2d: residual {:?} does not match the output [{}, {o}, {}, {}]",
                    r.dims(),
                    x.dim(0)?,
                    g.oh,
                    g.ow
                )
            }
            &Epilogue {
                residual: Some(r.contiguous()?),
                ..epilogue.clone()
            }
        }
        None => epilogue,
    };
    x.contiguous()?.apply_op1_no_bwd(&ConvForward {
        g,
        weight: &weight,
        epilogue,
        winograd,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use candle_core::Device;

    use super::*;

    /// The definition, in f64: `act_after(act(conv·scale + shift) + residual)`.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        n: usize,
        g: &Geometry,
        w: &[f32],
        e: &Epilogue,
        res: Option<&[f32]>,
    ) -> Vec<f32> {
        let (cg, og, p) = (g.cg(), g.og(), g.p());
        let mut out = vec![0f32; n * g.o * p];
        for b in 0..n {
            for o in 0..g.o {
                let grp = o / og;
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut acc = 0f64;
                        for c in 0..cg {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let y = g.source(oy, i, g.ph, g.h);
                                    let xx = g.source(ox, j, g.pw, g.w);
                                    if let (Some(y), Some(xx)) = (y, xx) {
                                        let xv = x[((b * g.c + grp * cg + c) * g.h + y) * g.w + xx];
                                        let wv = w[((o * cg + c) * g.kh + i) * g.kw + j];
                                        acc += f64::from(xv) * f64::from(wv);
                                    }
                                }
                            }
                        }
                        let at = (b * g.o + o) * p + oy * g.ow + ox;
                        let s = e.scale.as_ref().map_or(1.0, |s| s[o]);
                        let t = e.shift.as_ref().map_or(0.0, |t| t[o]);
                        let mut v = apply(e.act, (acc as f32) * s + t);
                        if let Some(r) = res {
                            v = apply(e.act_after, v + r[at]);
                        }
                        out[at] = v;
                    }
                }
            }
        }
        out
    }

    /// Deterministic values in [-1, 1), varied by `seed`: test inputs and weights.
    pub(in crate::kernels) fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5) - 1.0)
            .collect()
    }

    #[test]
    fn every_geometry_matches_the_definition() -> Result<()> {
        let dev = Device::Cpu;
        // (n, c, h, w, o, config): pointwise over one and several images, tiles that split an
        // image, padding wider than the map (1×7 on a 3-wide map), strides, dilation, groups.
        let cases = [
            (2, 5, 16, 16, 7, Conv2dConfig::new(1)),
            // 196 positions: each image's first 192, then the last 4 of all three together.
            (3, 5, 14, 14, 7, Conv2dConfig::new(1)),
            (3, 6, 14, 14, 8, Conv2dConfig::new(1).groups(2)),
            (5, 6, 7, 7, 4, Conv2dConfig::new(1)),
            (2, 6, 7, 7, 4, Conv2dConfig::new(1).stride(2)),
            // Strided 1×1 on one image at a time (subsampled in place of gathered).
            (1, 6, 7, 7, 4, Conv2dConfig::new(1).stride(2)),
            (2, 4, 30, 29, 5, Conv2dConfig::new(1).stride(2)),
            (1, 8, 10, 11, 8, Conv2dConfig::new(1).stride(3).groups(4)),
            (2, 112, 20, 20, 16, Conv2dConfig::new(3).padding(1)),
            (3, 4, 3, 3, 5, Conv2dConfig::rect(1, 7).padding_hw(0, 3)),
            (3, 4, 3, 2, 5, Conv2dConfig::rect(1, 7).padding_hw(0, 3)),
            (3, 4, 5, 3, 5, Conv2dConfig::rect(7, 1).padding_hw(3, 0)),
            (2, 3, 9, 11, 4, Conv2dConfig::new(3).stride(2).padding(1)),
            (2, 3, 29, 31, 8, Conv2dConfig::new(7).stride(2).padding(3)),
            (2, 3, 35, 35, 6, Conv2dConfig::new(11).stride(4).padding(2)),
            (1, 4, 12, 12, 6, Conv2dConfig::new(3).padding(2).dilation(2)),
            (
                2,
                3,
                13,
                11,
                4,
                Conv2dConfig::new(3).stride(2).padding(2).dilation(2),
            ),
            (
                2,
                3,
                14,
                15,
                4,
                Conv2dConfig::rect(3, 5).stride(3).padding_hw(1, 2),
            ),
            (
                3,
                8,
                10,
                9,
                6,
                Conv2dConfig::new(3).stride(2).padding(1).groups(2),
            ),
            (1, 8, 20, 20, 8, Conv2dConfig::new(1).groups(4)),
            (4, 8, 5, 5, 12, Conv2dConfig::new(3).padding(1).groups(4)),
        ];
        for (k, (n, c, h, w, o, cfg)) in cases.into_iter().enumerate() {
            let g = Geometry::new(c, h, w, o, &cfg)?;
            let xs = values(n * c * h * w, k);
            let ws = values(o * g.kg(), k + 100);
            let x = Tensor::from_vec(xs.clone(), (n, c, h, w), &dev)?;
            let weight = Tensor::from_vec(ws.clone(), (o, c / cfg.groups, g.kh, g.kw), &dev)?;
            let res = values(n * o * g.p(), k + 200);
            let epilogues = [
                Epilogue::default(),
                Epilogue {
                    scale: Some(values(o, k + 300)),
                    shift: Some(values(o, k + 400)),
                    act: Some(Activation::Relu),
                    ..Epilogue::default()
                },
                Epilogue {
                    shift: Some(values(o, k + 500)),
                    residual: Some(Tensor::from_vec(res.clone(), (n, o, g.oh, g.ow), &dev)?),
                    act_after: Some(Activation::Relu),
                    ..Epilogue::default()
                },
            ];
            for e in &epilogues {
                let got: Vec<f32> = conv2d(&x, &weight, &cfg, e, None)?
                    .flatten_all()?
                    .to_vec1()?;
                let want = naive(&xs, n, &g, &ws, e, e.residual.as_ref().map(|_| &res[..]));
                let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * scale,
                        "case {k} ({n}, {c}, {h}, {w}, {o}, {cfg:?}), {e:?}: [{i}] {a} vs {b}"
                    );
                }
            }
        }
        Ok(())
    }
}
