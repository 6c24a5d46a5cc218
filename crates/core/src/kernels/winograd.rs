//! Winograd's minimal filtering F(2×2, 3×3) for 3×3 stride-1 convolutions, after Lavin &
//! Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), §4.
//!
//! Each 2×2 block of outputs ("tile") is computed from the 4×4 input patch under it with 16
//! products per input and output channel where the direct convolution needs 36:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over input channels, the 16 element-wise
//! products become 16 matrix products `M[e] = V[e]ᵀ · U[e]` (`tiles × O`), `U[e]` the
//! transformed weight (`C × O`, computed once per layer) and `V[e]` the transformed input
//! (`C × tiles`), so
//! that a convolution costs 16·O·C·tiles multiply-adds instead of 9·O·C·H·W: 2.25 times
//! fewer where the map is even-sized and large, plus two cheap linear transforms.
//!
//! The transforms' coefficients are 0, ±1 and ±½, so the input and output transforms are
//! additions; the results differ from the direct sum by rounding only (measured against an
//! f64 reference in the tests, and on whole networks by the parity tests, which run this
//! path).
//!
//! Used by the inference convolution (`conv.rs`) for 3×3 kernels with stride 1, no
//! dilation, one group, and maps wide enough that the tiles fill the matrix kernel (see
//! [`applies`]): one image at a time, or on small maps several images whose tiles share
//! the products (see [`images_per_job`]).

use super::conv::{Epilogue, Geometry, with_buffer};
use super::gemm::{MatMut, MatRef, matmul};
use candle_core::TensorId;
use rayon::prelude::*;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// Whether F(2×2, 3×3) runs `g`: a 3×3 stride-1 convolution without dilation or groups,
/// with enough channels that the transforms cost little beside the products (32 in and
/// out), and at least 16 tiles (a 7×7 map, which F(2×2, 3×3) covers as 8×8 and still runs
/// in 0.58 of the direct kernel's time at 512 channels; below, the products are too thin
/// for the matrix kernel).
pub(crate) fn applies(g: &Geometry) -> bool {
    let tiles = g.oh.div_ceil(2) * g.ow.div_ceil(2);
    g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.dilation == 1
        && g.groups == 1
        && g.c >= 32
        && g.o >= 32
        && tiles >= 16
}

/// `U = G g Gᵀ` for every output and input channel of `w` (`O × C × 3 × 3`), as
/// `[16][C][O]`: element `e = 4i + j` of each 4×4 transform is the right operand of
/// product `e`. Computed in f64 and rounded once.
pub(crate) fn transform_weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut u = vec![0f32; 16 * o * c];
    for (oc, k) in w.chunks_exact(9).enumerate() {
        // G·g (4×3), then (G·g)·Gᵀ (4×4).
        let mut gg = [[0f64; 3]; 4];
        for (i, row) in gg.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|t| G[i][t] * f64::from(k[t * 3 + j])).sum();
            }
        }
        for i in 0..4 {
            for j in 0..4 {
                let v: f64 = (0..3).map(|t| gg[i][t] * G[j][t]).sum();
                let (oi, ci) = (oc / c, oc % c);
                u[(i * 4 + j) * o * c + ci * o + oi] = v as f32;
            }
        }
    }
    u
}

/// A layer's transformed weights, computed on its first use by the kernel and shared by
/// its clones. The weights the kernel sees never change under it (the fused path runs only
/// for tensors that are not variables), and the entry names the tensor it was made from.
#[derive(Clone, Default)]
pub(crate) struct Cache(Arc<OnceLock<(TensorId, Vec<f32>)>>);

impl std::fmt::Debug for Cache {
    /// Whether the transform is made, not its (weight-sized) values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = self.0.get().map(|(_, u)| u.len());
        f.debug_struct("winograd::Cache")
            .field("values", &made)
            .finish()
    }
}

impl Cache {
    /// The transform of `w` (`O × C × 3 × 3`, the tensor `id`), from the cache when it
    /// holds this tensor's.
    pub(crate) fn get(&self, id: TensorId, w: &[f32], o: usize, c: usize) -> Cow<'_, [f32]> {
        let (cached, u) = self.0.get_or_init(|| (id, transform_weights(w, o, c)));
        if *cached == id {
            Cow::Borrowed(u)
        } else {
            Cow::Owned(transform_weights(w, o, c))
        }
    }
}

thread_local! {
    /// The input split into even and odd columns, the transformed input `V`, and the
    /// products `M`, per thread.
    static SPLIT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static V: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static M: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Bytes of `V` and `M` a band of tile rows aims to keep in L2.
const BAND_BYTES: usize = 1 << 20;
/// The largest transformed weight read again for every band.
const U_IN_CACHE: usize = 8 << 20;
/// The fewest tiles a job's products take, where an image has fewer (see
/// [`images_per_job`]).
const JOB_TILES: usize = 64;

/// `epilogue(conv(x, w))` for `n` images: `x` is `N × C × H × W`, `u` the
/// [`transform_weights`] of the layer, `out` `N × O × OH × OW`, `res` the residual's
/// values for these images (if any). The images' tiles go through the same 16 products,
/// so that `U` is read once for all of them (see [`images_per_job`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    g: &Geometry,
    u: &[f32],
    x: &[f32],
    n: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
    epilogue: &Epilogue,
    parallel: bool,
) {
    // Every band streams all of `U` (16·C·O values) through the products. Up to a few MB
    // it comes from cache and bands that fit L2 are faster (AlexNet's 4.7 MB: 10 % over
    // one band); a larger `U` is read once, in one band (VGG-16's 16 MB at 28×28 ran no
    // faster than the direct kernel in its 14 bands of one tile row, 1.74× in one).
    // Several images are together to share `U`: one band.
    let band_bytes = if 16 * g.c * g.o * 4 > U_IN_CACHE || n > 1 {
        usize::MAX
    } else {
        BAND_BYTES
    };
    run_bands(g, u, x, n, out, (res, epilogue), parallel, band_bytes);
}

/// Images whose tiles share one set of products: one where an image has enough tiles to
/// fill the matrix kernel; on small maps (ResNet's 14×14 and 7×7 stages, 49 and 16 tiles),
/// enough images for [`JOB_TILES`] tiles, so that the transformed weight (4–17 MB there,
/// read from memory) is read once for all of them instead of once per image.
pub(crate) fn images_per_job(g: &Geometry, n: usize) -> usize {
    let tiles = g.oh.div_ceil(2) * g.ow.div_ceil(2);
    JOB_TILES.div_ceil(tiles).clamp(1, n.max(1))
}

/// [`run`] in bands of tile rows (counted over the images, one after the other) whose `V`
/// and `M` take about `band_bytes`.
#[allow(clippy::too_many_arguments)]
fn run_bands(
    g: &Geometry,
    u: &[f32],
    x: &[f32],
    n: usize,
    out: &mut [f32],
    (res, epilogue): (Option<&[f32]>, &Epilogue),
    parallel: bool,
    band_bytes: usize,
) {
    let (c, o) = (g.c, g.o);
    let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    // Padded rows 0..2·th + 2, each split into even and odd columns (tw + 1 of each), so
    // that every tap of a row of tiles is a contiguous run.
    let (rows, half) = (2 * th + 2, tw + 1);
    let split_len = c * rows * 2 * half;
    let band = (band_bytes / (16 * (c + o) * tw * 4)).clamp(1, n * th);
    // `LANES` elements of slack after the planes and after each element's `V`: the input
    // transform reads and writes whole vectors past the last tile of a row.
    with_buffer(&SPLIT, n * split_len + LANES, |split| {
        let geometry = (g.h, g.w, g.ph, g.pw, rows, half);
        let images = x
            .chunks_exact(c * g.h * g.w)
            .zip(split.chunks_mut(split_len));
        for (x, split) in images {
            super::wide!(split_input, x: &[f32], split: &mut [f32], geometry: Geom6);
        }
        let mut t0 = 0;
        while t0 < n * th {
            let t1 = (t0 + band).min(n * th);
            let b = Band {
                t0,
                t1,
                th,
                tw,
                oh: g.oh,
                ow: g.ow,
            };
            let tiles = b.tiles();
            let stride = c * tiles + LANES;
            with_buffer(&V, 16 * stride, |v| {
                let planes = (rows, half, c);
                super::wide!(
                    transform_input,
                    split: &[f32],
                    v: &mut [f32],
                    b: Band,
                    planes: (usize, usize, usize),
                );
                with_buffer(&M, 16 * o * tiles, |m| {
                    // M[e] = V[e]ᵀ · U[e], `tiles × O`: the channels, a multiple of 16
                    // where it matters, run along the kernel's vectors, the tiles (as
                    // few as 16) along its short side.
                    // One image on several threads (a batch smaller than the pool) shares
                    // out the 16 products, each on one thread: many small products split
                    // across threads cost more in synchronisation than they gain.
                    let product = |(e, m): (usize, &mut [f32])| {
                        matmul(
                            MatMut::row_major(m, tiles, o),
                            MatRef::row_major(&v[e * stride..][..c * tiles], c, tiles).t(),
                            MatRef::row_major(&u[e * c * o..][..c * o], c, o),
                            false,
                            false,
                        );
                    };
                    if parallel {
                        m.par_chunks_mut(tiles * o).enumerate().for_each(product);
                    } else {
                        m.chunks_mut(tiles * o).enumerate().for_each(product);
                    }
                    if !transposed::store_tiles(m, out, b) {
                        super::wide!(store_tiles, m: &[f32], out: &mut [f32], b: Band);
                    }
                    super::wide!(
                        finish_rows,
                        out: &mut [f32],
                        b: Band,
                        o: usize,
                        res: Option<&[f32]>,
                        epilogue: &Epilogue,
                    );
                });
            });
            t0 = t1;
        }
    });
}

/// Tile rows `t0..t1` of a run of images, counted over the images one after the other:
/// row `t` is row `t % th` of image `t / th`, whose tiles (`th × tw`) cover its `oh × ow`
/// outputs.
#[derive(Debug, Clone, Copy)]
struct Band {
    t0: usize,
    t1: usize,
    th: usize,
    tw: usize,
    oh: usize,
    ow: usize,
}

impl Band {
    fn tiles(&self) -> usize {
        (self.t1 - self.t0) * self.tw
    }

    /// The image and its tile row of band row `t`.
    #[inline(always)]
    fn place(&self, t: usize) -> (usize, usize) {
        (t / self.th, t % self.th)
    }
}

type Geom6 = (usize, usize, usize, usize, usize, usize);

/// Pads each input plane (`h × w`, padding `ph`, `pw`) to `rows` rows and splits every
/// padded row into its `half` even then `half` odd columns.
#[inline(always)]
fn split_input(x: &[f32], split: &mut [f32], (h, w, ph, pw, rows, half): Geom6) {
    split.fill(0.0);
    for (plane, dst) in x.chunks_exact(h * w).zip(split.chunks_mut(rows * 2 * half)) {
        for (y, line) in plane.chunks_exact(w).enumerate() {
            let Some(row) = dst.get_mut((y + ph) * 2 * half..(y + ph + 1) * 2 * half) else {
                break; // below the last row of tiles: read by no output
            };
            let (even, odd) = row.split_at_mut(half);
            // Padded column X = x + pw lands in phase X % 2 at X / 2: every other input
            // from the first whose column is even, the rest from the next.
            let first = pw % 2;
            super::copy_strided(&mut even[(first + pw) / 2..], &line[first..], 2);
            if let Some(rest) = line.get(1 - first..) {
                super::copy_strided(&mut odd[(1 - first + pw) / 2..], rest, 2);
            }
        }
    }
}

/// Tiles transformed together: one AVX-512 vector of each of the 16 elements.
const LANES: usize = 16;
type Lanes = [f32; LANES];

/// `n ≤ LANES` values of `s` from `at`, zero beyond.
#[inline(always)]
fn load(s: &[f32], at: usize, n: usize) -> Lanes {
    let mut v = [0.0; LANES];
    if n == LANES {
        v.copy_from_slice(&s[at..at + LANES]);
    } else {
        v[..n].copy_from_slice(&s[at..at + n]);
    }
    v
}

// Plain loops over the lanes, not `array::from_fn`, whose closures are not always inlined
// into the AVX-512 copy.
#[inline(always)]
fn sub(a: &Lanes, b: &Lanes) -> Lanes {
    let mut r = [0.0; LANES];
    for ((r, a), b) in r.iter_mut().zip(a).zip(b) {
        *r = a - b;
    }
    r
}

#[inline(always)]
fn add(a: &Lanes, b: &Lanes) -> Lanes {
    let mut r = [0.0; LANES];
    for ((r, a), b) in r.iter_mut().zip(a).zip(b) {
        *r = a + b;
    }
    r
}

/// `Bᵀ x B` along one axis: `x0 − x2, x1 + x2, x2 − x1, x1 − x3`.
#[inline(always)]
fn bt(x: [&Lanes; 4]) -> [Lanes; 4] {
    [
        sub(x[0], x[2]),
        add(x[1], x[2]),
        sub(x[2], x[1]),
        sub(x[1], x[3]),
    ]
}

/// `Aᵀ x` along one axis: `x0 + x1 + x2, x1 − x2 − x3`.
#[inline(always)]
fn at(x: [&Lanes; 4]) -> [Lanes; 2] {
    [add(&add(x[0], x[1]), x[2]), sub(&sub(x[1], x[2]), x[3])]
}

/// `V = Bᵀ d B` for the tiles of band `b` of the `c` channels of `split` (each image's
/// planes after the last's), into `v` as `[16][C][tiles]` (each element's matrix followed
/// by `LANES` of slack), `LANES` tiles at a time. A row's last vector may run past its
/// tiles: the extra lanes read the next padded row (or the slack after the planes) and
/// land on tiles written after them (the next row, the next channel) or in the slack.
#[inline(always)]
fn transform_input(split: &[f32], v: &mut [f32], b: Band, (rows, half, c): (usize, usize, usize)) {
    let (tiles, tw) = (b.tiles(), b.tw);
    let stride = c * tiles + LANES;
    for ch in 0..c {
        for t in b.t0..b.t1 {
            let (image, ty) = b.place(t);
            let plane = (image * c + ch) * rows * 2 * half;
            let at0 = ch * tiles + (t - b.t0) * tw;
            for tx in (0..tw).step_by(LANES) {
                // Patch element (k, j) of tile tx is padded row 2·ty + k, column 2·tx + j:
                // even column tx + j/2 for even j, odd for odd j.
                let mut d = [[[0f32; LANES]; 4]; 4];
                for (k, d) in d.iter_mut().enumerate() {
                    let r = plane + (2 * ty + k) * 2 * half + tx;
                    *d = [
                        load(split, r, LANES),
                        load(split, r + half, LANES),
                        load(split, r + 1, LANES),
                        load(split, r + half + 1, LANES),
                    ];
                }
                // Bᵀ d over rows, for each column j; then B over columns.
                let mut cols = [[[0f32; LANES]; 4]; 4];
                for (j, col) in cols.iter_mut().enumerate() {
                    *col = bt([&d[0][j], &d[1][j], &d[2][j], &d[3][j]]);
                }
                // `i` picks the same row of four arrays.
                #[allow(clippy::needless_range_loop)]
                for i in 0..4 {
                    let e = bt([&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i]]);
                    for (j, e) in e.iter().enumerate() {
                        let at = (4 * i + j) * stride + at0 + tx;
                        v[at..at + LANES].copy_from_slice(e);
                    }
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` for the tiles of band `b` from `m` (`[16][tiles][O]`), `LANES` channels
/// at a time, written to the output pixels they cover (cropped to `oh × ow`) in their
/// image's `O × OH × OW` of `out`, one value at a time ([`transposed::store_tiles`] writes
/// whole rows where it can).
#[inline(always)]
fn store_tiles(m: &[f32], out: &mut [f32], b: Band) {
    let tiles = b.tiles();
    let o = m.len() / (16 * tiles);
    let (oh, ow) = (b.oh, b.ow);
    let p = oh * ow;
    for t in b.t0..b.t1 {
        let (image, ty) = b.place(t);
        let out = &mut out[image * o * p..][..o * p];
        for tx in 0..b.tw {
            let t = (t - b.t0) * b.tw + tx;
            for o0 in (0..o).step_by(LANES) {
                let n = LANES.min(o - o0);
                let mut e = [[0f32; LANES]; 16];
                for (k, e) in e.iter_mut().enumerate() {
                    *e = load(m, (k * tiles + t) * o + o0, n);
                }
                // Aᵀ M over rows, for each column j; then A over columns.
                let mut s = [[[0f32; LANES]; 2]; 4];
                for (j, s) in s.iter_mut().enumerate() {
                    *s = at([&e[j], &e[4 + j], &e[8 + j], &e[12 + j]]);
                }
                // `r` picks the same row of four arrays.
                #[allow(clippy::needless_range_loop)]
                for r in 0..2 {
                    let y = 2 * ty + r;
                    if y >= oh {
                        continue;
                    }
                    let [v0, v1] = at([&s[0][r], &s[1][r], &s[2][r], &s[3][r]]);
                    let x = 2 * tx;
                    for l in 0..n {
                        let at = (o0 + l) * p + y * ow + x;
                        out[at] = v0[l];
                        if x + 1 < ow {
                            out[at + 1] = v1[l];
                        }
                    }
                }
            }
        }
    }
}

/// The epilogue over the output rows of band `b`, every one of the `o` channels.
#[inline(always)]
fn finish_rows(out: &mut [f32], b: Band, o: usize, res: Option<&[f32]>, epilogue: &Epilogue) {
    let p = b.oh * b.ow;
    let mut t = b.t0;
    while t < b.t1 {
        // The band's rows in one image at a time.
        let (image, ty0) = b.place(t);
        let ty1 = (ty0 + b.t1 - t).min(b.th);
        let (y0, y1) = (2 * ty0, (2 * ty1).min(b.oh));
        let at = image * o * p;
        for ch in 0..o {
            let span = at + ch * p + y0 * b.ow..at + ch * p + y1 * b.ow;
            epilogue.row(ch, &mut out[span.clone()], None, res.map(|r| &r[span]));
        }
        t += ty1 - ty0;
    }
}

/// [`store_tiles`] with AVX-512: eight tiles side by side give each of 16 channels 16
/// consecutive outputs of a row, which a 16 × 16 transpose in registers turns into one
/// vector store per channel, where the portable loop stores every value on its own (the
/// output transform was 13–15 % of VGG-16's time). The same additions in the same order,
/// so the same values.
mod transposed {
    use super::Band;

    /// Writes the tiles as [`super::store_tiles`] does, if the CPU has the AVX-512 subsets
    /// [`crate::kernels::wide!`] is compiled for ([`crate::kernels::has_avx512`]); returns
    /// whether it did.
    pub(super) fn store_tiles(m: &[f32], out: &mut [f32], b: Band) -> bool {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::has_avx512() {
            let tiles = b.tiles();
            assert!(
                tiles > 0 && m.len().is_multiple_of(16 * tiles),
                "store_tiles: products"
            );
            let o = m.len() / (16 * tiles);
            assert!(
                out.len() >= b.t1.div_ceil(b.th) * o * b.oh * b.ow
                    && b.tw <= b.ow.div_ceil(2)
                    && b.th <= b.oh.div_ceil(2),
                "store_tiles: tiles past the output"
            );
            // SAFETY: the CPU has AVX-512F (`has_avx512`, checked above). Every load reads
            // `m` at `(k·tiles + t)·o + o0 + l` for `k < 16`, `t < tiles`, `o0 + l < o`
            // (masked to the channels left), inside `m` (its length is `16·tiles·o`); every
            // store writes image `t / th < ⌈t1 / th⌉`, channel `o0 + l < o`, row
            // `y < oh`, columns `x0..x0 + n` with `x0 < ow` (as `tx0 < tw ≤ ⌈ow/2⌉`) and
            // `x0 + n ≤ ow` (masked), inside `out` (at least `⌈t1 / th⌉·o·oh·ow`); all
            // checked above.
            #[allow(unsafe_code)]
            unsafe {
                avx512::store_tiles(m, out, b, o)
            };
            return true;
        }
        let _ = (m, out, b);
        false
    }

    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    mod avx512 {
        use super::Band;
        use std::arch::x86_64::{
            __m512, _mm512_add_ps, _mm512_castpd_ps, _mm512_castps_pd, _mm512_mask_storeu_ps,
            _mm512_maskz_loadu_ps, _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_sub_ps,
            _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
        };

        /// `Aᵀ x` along one axis: `x0 + x1 + x2, x1 − x2 − x3`, as [`super::super::at`].
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn at(x: [__m512; 4]) -> [__m512; 2] {
            [
                _mm512_add_ps(_mm512_add_ps(x[0], x[1]), x[2]),
                _mm512_sub_ps(_mm512_sub_ps(x[1], x[2]), x[3]),
            ]
        }

        /// `r[i]` lane `j` becomes `r[j]` lane `i`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn transpose(r: &mut [__m512; 16]) {
            let mut t = [_mm512_setzero_ps(); 16];
            for i in 0..8 {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            for i in 0..4 {
                let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
                let pd = _mm512_castps_pd;
                r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
                r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
                r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(d)));
                r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(d)));
            }
            for i in 0..4 {
                for h in 0..2 {
                    let (a, b) = (r[8 * h + i], r[8 * h + i + 4]);
                    t[8 * h + i] = _mm512_shuffle_f32x4::<0x88>(a, b);
                    t[8 * h + i + 4] = _mm512_shuffle_f32x4::<0xdd>(a, b);
                }
            }
            for i in 0..8 {
                r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
                r[i + 8] = _mm512_shuffle_f32x4::<0xdd>(t[i], t[i + 8]);
            }
        }

        /// See [`super::store_tiles`], whose checks and safety argument this relies on.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn store_tiles(m: &[f32], out: &mut [f32], b: Band, o: usize) {
            let (tiles, tw, oh, ow) = (b.tiles(), b.tw, b.oh, b.ow);
            let p = oh * ow;
            let (m, out) = (m.as_ptr(), out.as_mut_ptr());
            for t in b.t0..b.t1 {
                let (image, ty) = b.place(t);
                // SAFETY: the caller's (see above).
                let out = unsafe { out.add(image * o * p) };
                for o0 in (0..o).step_by(16) {
                    let channels = (o - o0).min(16);
                    let lanes = ((1u32 << channels) - 1) as u16;
                    for tx0 in (0..tw).step_by(8) {
                        // Row r of the outputs, column 2i + c of this group of tiles, as a
                        // vector over the channels.
                        let mut rows = [[_mm512_setzero_ps(); 16]; 2];
                        let group = (tw - tx0).min(8);
                        for i in 0..group {
                            let t = (t - b.t0) * tw + tx0 + i;
                            let mut e = [_mm512_setzero_ps(); 16];
                            for (k, e) in e.iter_mut().enumerate() {
                                // SAFETY: the caller's (see above).
                                *e = unsafe {
                                    _mm512_maskz_loadu_ps(lanes, m.add((k * tiles + t) * o + o0))
                                };
                            }
                            let mut s = [[_mm512_setzero_ps(); 2]; 4];
                            for (j, s) in s.iter_mut().enumerate() {
                                *s = at([e[j], e[4 + j], e[8 + j], e[12 + j]]);
                            }
                            for (r, rows) in rows.iter_mut().enumerate() {
                                let [v0, v1] = at([s[0][r], s[1][r], s[2][r], s[3][r]]);
                                rows[2 * i] = v0;
                                rows[2 * i + 1] = v1;
                            }
                        }
                        let x0 = 2 * tx0;
                        // The columns these tiles cover, cropped to the output.
                        let columns = (ow - x0).min(2 * group);
                        let keep = ((1u32 << columns) - 1) as u16;
                        for (r, row) in rows.iter_mut().enumerate() {
                            let y = 2 * ty + r;
                            if y >= oh {
                                continue;
                            }
                            transpose(row);
                            for (l, v) in row.iter().enumerate().take(channels) {
                                // SAFETY: the caller's (see above).
                                unsafe {
                                    let at = out.add((o0 + l) * p + y * ow + x0);
                                    _mm512_mask_storeu_ps(at, keep, *v);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv::tests::values;
    use super::*;
    use crate::layers::{Activation, Conv2dConfig};

    /// The direct convolution in f64.
    fn naive(x: &[f32], g: &Geometry, w: &[f32]) -> Vec<f64> {
        let mut y = vec![0f64; g.o * g.p()];
        for o in 0..g.o {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = 0f64;
                    for c in 0..g.c {
                        for i in 0..3 {
                            for j in 0..3 {
                                let (yy, xx) = (
                                    (oy + i) as isize - g.ph as isize,
                                    (ox + j) as isize - g.pw as isize,
                                );
                                if yy >= 0 && xx >= 0 && (yy as usize) < g.h && (xx as usize) < g.w
                                {
                                    acc +=
                                        f64::from(x[(c * g.h + yy as usize) * g.w + xx as usize])
                                            * f64::from(w[((o * g.c + c) * 3 + i) * 3 + j]);
                                }
                            }
                        }
                    }
                    y[o * g.p() + oy * g.ow + ox] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn the_transposed_tile_stores_equal_the_portable_ones_to_the_bit() {
        // Channels around multiples of 16, tile rows around multiples of 8, odd outputs
        // (the last tile cropped), a band that starts below the first tile row, bands over
        // several images (starting and ending inside one).
        let cases: [(usize, usize, usize, usize, usize, usize); 6] = [
            (16, 8, 16, 0, 4, 1),
            (5, 7, 7, 1, 4, 1),
            (33, 9, 19, 2, 5, 1),
            (64, 4, 34, 0, 2, 1),
            (17, 7, 7, 0, 12, 3),
            (32, 14, 14, 5, 19, 3),
        ];
        for (o, oh, ow, t0, t1, images) in cases {
            let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
            let m = values(16 * (t1 - t0) * tw * o, o + ow);
            let b = Band {
                t0,
                t1,
                th,
                tw,
                oh,
                ow,
            };
            let mut portable = vec![f32::NAN; images * o * oh * ow];
            store_tiles(&m, &mut portable, b);
            let mut fast = vec![f32::NAN; images * o * oh * ow];
            if !transposed::store_tiles(&m, &mut fast, b) {
                return;
            }
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&portable),
                bits(&fast),
                "({o}, {oh}×{ow}, tile rows {t0}..{t1} of {images} images)"
            );
        }
    }

    #[test]
    fn winograd_matches_the_direct_convolution() {
        // Even and odd maps, paddings 0, 1 and 2, bands of one tile row and of several
        // (over several images: bands that start and end inside an image), with an
        // epilogue and a residual.
        for (k, (c, h, w, o, pad)) in [
            (32, 14, 14, 40, 1),
            (33, 13, 17, 32, 1),
            (32, 16, 15, 48, 0),
            (40, 12, 13, 32, 2),
            (64, 57, 9, 32, 1),
            (32, 7, 7, 48, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let cfg = Conv2dConfig::new(3).padding(pad);
            let g = Geometry::new(c, h, w, o, &cfg).unwrap();
            assert!(
                applies(&g) || g.oh.div_ceil(2) * g.ow.div_ceil(2) < 40,
                "case {k}"
            );
            let wt = values(o * c * 9, k + 10);
            let e = Epilogue {
                scale: Some(values(o, k + 30)),
                shift: Some(values(o, k + 40)),
                act: Some(Activation::Relu),
                residual: None,
                act_after: Some(Activation::Relu),
            };
            let u = transform_weights(&wt, o, c);
            for n in [1, 3] {
                let x = values(n * c * h * w, k);
                let res = values(n * o * g.p(), k + 20);
                let want: Vec<f64> = x
                    .chunks_exact(c * h * w)
                    .flat_map(|x| naive(x, &g, &wt))
                    .collect();
                // One band, and bands of one and of three tile rows.
                for band_bytes in [BAND_BYTES, 1, 3 * 16 * (c + o) * g.ow.div_ceil(2) * 4] {
                    let mut out = vec![f32::NAN; n * o * g.p()];
                    // The products on this thread, and shared out over the pool.
                    let parallel = band_bytes == 1;
                    let epilogue = (Some(&res[..]), &e);
                    run_bands(&g, &u, &x, n, &mut out, epilogue, parallel, band_bytes);
                    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
                    for (i, (got, y)) in out.iter().zip(&want).enumerate() {
                        let ch = i / g.p() % o;
                        let (s, t) = (e.scale.as_ref().unwrap()[ch], e.shift.as_ref().unwrap()[ch]);
                        let y = ((*y as f32 * s + t).max(0.0) + res[i]).max(0.0);
                        assert!(
                            (got - y).abs() <= 2e-6 * scale as f32 * s.abs().max(1.0),
                            "case {k} ({c}, {h}×{w}, {o}, pad {pad}), {n} images, band \
                             {band_bytes}: [{i}] {got} vs {y}"
                        );
                    }
                }
            }
        }
    }
}
