//! Winograd's minimal filtering F(2×2, 3×3) and F(4×4, 3×3) for 3×3 stride-1
//! convolutions, after Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
//! (CVPR 2016), §4.
//!
//! Each `r × r` block of outputs ("tile", `r` = 2 or 4) is computed from the
//! `(r + 2) × (r + 2)` input patch under it with `(r + 2)²` products per input and output
//! channel, where the direct convolution needs `9r²`: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`.
//! Summed over input channels, the element-wise products become as many matrix products
//! `M[e] = V[e]ᵀ · U[e]` (`tiles × O`), `U[e]` the transformed weight (`C × O`, computed
//! once per layer) and `V[e]` the transformed input (`C × tiles`), so that a convolution
//! costs `(r + 2)²·O·C·tiles` multiply-adds instead of `9·O·C·H·W`: 2.25 times fewer with
//! 2×2 tiles and 4 times fewer with 4×4 ones where the map is large, plus two linear
//! transforms.
//!
//! F(2×2, 3×3)'s coefficients are 0, ±1 and ±½, so its input and output transforms are
//! additions and its results differ from the direct sum by rounding only. F(4×4, 3×3)'s
//! (points 0, ±1, ±2, ∞) reach 8 in the output transform and 1/24 in the weight's, and its
//! errors are some 4 times larger (up to 3.6·10⁻⁶ of the largest output in the tests,
//! against under 10⁻⁶), still two orders of magnitude inside the parity tolerance. Both are
//! measured against an f64 reference in the tests, and on whole networks by the parity
//! tests, which run this path. [`tile`] chooses 4×4 tiles on maps of 28×28 and more, and
//! on one thread on 7×7 maps of enough images; the products run on a kernel of their own
//! (`panel.rs`) with the transformed weight packed for it.
//!
//! Used by the inference convolution (`conv.rs`) for 3×3 kernels with stride 1, no
//! dilation, one group, and maps wide enough that the tiles fill the matrix kernel (see
//! [`applies`]): one image at a time, or on small maps several images whose tiles share
//! the products (see [`images_per_job`]).

use super::conv::{Epilogue, Geometry, with_buffer};
use super::panel;
use candle_core::TensorId;
use rayon::prelude::*;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// Whether Winograd's algorithm runs `g`: a 3×3 stride-1 convolution without dilation or
/// groups, with enough channels that the transforms cost little beside the products (32 in
/// and out), and at least 16 tiles of F(2×2, 3×3) (a 7×7 map, which it covers as 8×8 and
/// still runs in 0.58 of the direct kernel's time at 512 channels; below, the products are
/// too thin for the matrix kernel).
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

/// The output tile's side for `g` over `n` images: 4, F(4×4, 3×3), on maps of
/// [`F4_MIN_MAP`] and more, whose 36 products per 16 outputs are 2.25 multiply-adds per
/// output and channel pair where F(2×2, 3×3) needs 4 (and the direct sum 9); also on maps
/// that 4×4 tiles cover with no more padded outputs than 2×2 ones (a 7×7 map is 8×8 either
/// way: 4 tiles of 36 products against 16 of 16), when the images together have
/// [`F4_FEW_TILES`] of them and the pool has one thread (`threads`). 2 otherwise: 4×4
/// tiles cover the other small maps with too many padded outputs (14×14 as 16×16), too few
/// tiles make products too thin for the matrix kernel, and on several threads, each
/// streaming its own images' products, the larger transformed weight (2.25 times the 2×2
/// one's: 38 MB for 512 channels, read from memory) costs more than its products save.
pub(crate) fn tile(g: &Geometry, n: usize, threads: usize) -> usize {
    let same_cover = |len: usize| len.div_ceil(4) * 4 == len.div_ceil(2) * 2;
    let tiles = g.oh.div_ceil(4) * g.ow.div_ceil(4);
    let small = same_cover(g.oh) && same_cover(g.ow) && n * tiles >= F4_FEW_TILES;
    if g.oh.min(g.ow) >= F4_MIN_MAP || (small && threads == 1) {
        4
    } else {
        2
    }
}

/// F(2×2, 3×3)'s weight transform `G` (Lavin & Gray, §4.1).
const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// F(4×4, 3×3)'s weight transform `G`, interpolation points 0, ±1, ±2 and ∞ (Lavin &
/// Gray, §4.2).
const G4: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `U = G g Gᵀ` for every output and input channel of `w` (`O × C × 3 × 3`) with tiles of
/// side `r` (2 or 4), as `(r + 2)²` matrices `C × O`, each packed in panels for the
/// product kernel ([`panel::packed_at`]): element `e = (r + 2)·i + j` of each transform
/// is the right operand of product `e`. Computed in f64 and rounded once.
pub(crate) fn transform_weights(w: &[f32], o: usize, c: usize, r: usize) -> Vec<f32> {
    let g: &[[f64; 3]] = if r == 4 { &G4 } else { &G2 };
    let a = g.len();
    let len = panel::packed_len(c, o);
    let mut u = vec![0f32; a * a * len];
    for (oc, k) in w.chunks_exact(9).enumerate() {
        // G·g (a×3), then (G·g)·Gᵀ (a×a).
        let gg: Vec<[f64; 3]> = g
            .iter()
            .map(|gi| {
                std::array::from_fn(|j| (0..3).map(|t| gi[t] * f64::from(k[t * 3 + j])).sum())
            })
            .collect();
        let (oi, ci) = (oc / c, oc % c);
        for (i, gg) in gg.iter().enumerate() {
            for (j, gj) in g.iter().enumerate() {
                let v: f64 = (0..3).map(|t| gg[t] * gj[t]).sum();
                u[(i * a + j) * len + panel::packed_at(c, ci, oi)] = v as f32;
            }
        }
    }
    u
}

/// A layer's transformed weights, computed on its first use by the kernel and shared by
/// its clones. The weights the kernel sees never change under it (the fused path runs only
/// for tensors that are not variables), and the entry names the tensor it was made from.
#[derive(Clone, Default)]
pub(crate) struct Cache(Arc<[Slot; 2]>);

/// One transform and the tensor it was made from.
type Slot = OnceLock<(TensorId, Vec<f32>)>;

impl std::fmt::Debug for Cache {
    /// Whether the transform is made, not its (weight-sized) values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = self
            .0
            .iter()
            .map(|s| s.get().map(|(_, u)| u.len()))
            .collect::<Vec<_>>();
        f.debug_struct("winograd::Cache")
            .field("values", &made)
            .finish()
    }
}

impl Cache {
    /// The transform of `w` (`O × C × 3 × 3`, the tensor `id`) for the convolution `g`
    /// with tiles of side `r`, from the cache when it holds this tensor's (one slot per tile
    /// size: a layer run with tiles of both sizes keeps both).
    pub(crate) fn get(&self, id: TensorId, w: &[f32], g: &Geometry, r: usize) -> Cow<'_, [f32]> {
        let make = || transform_weights(w, g.o, g.c, r);
        let (cached, u) = self.0[usize::from(r == 4)].get_or_init(|| (id, make()));
        if *cached == id {
            Cow::Borrowed(u)
        } else {
            Cow::Owned(make())
        }
    }
}

thread_local! {
    /// The input split into its column phases, the transformed input `V`, and the products
    /// `M`, per thread.
    static SPLIT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static V: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static M: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Bytes of `V` and `M` a band of tile rows aims to keep in L2.
const BAND_BYTES: usize = 1 << 20;
/// The largest transformed weight read again for every band.
const U_IN_CACHE: usize = 8 << 20;
/// The smallest map (its shorter side) run as F(4×4, 3×3) ([`tile`]). One image, one
/// thread, against 2×2 tiles: ResNet-50's 64-channel 56×56 layer 0.54 against 0.67 ms,
/// its 128-channel 28×28 one 0.48 against 0.61; the 256-channel 14×14 one 0.91 against
/// 0.80 (as 16×16, with a third more products).
const F4_MIN_MAP: usize = 28;
/// The fewest 4×4 tiles a call needs for F(4×4, 3×3) on a small map that 2×2 tiles cover
/// no better ([`tile`]). ResNet-50 (512 channels at 7×7, 4 tiles an image), one thread:
/// 1–2 % faster at batch 16 (groups of 8 images, 32 tiles), 4 % slower at batch 1; two
/// threads, a group each: 1.3 % slower at batch 16 (59.2 against 60.0 images/s).
const F4_FEW_TILES: usize = 32;
/// The fewest tiles a job's products take, where an image has fewer (see
/// [`images_per_job`]).
const JOB_TILES: usize = 64;

/// `epilogue(conv(x, w))` for `n` images: `x` is `N × C × H × W`, `u` the
/// [`transform_weights`] of the layer for tiles of side `r`, `out` `N × O × OH × OW`, `res`
/// the residual's values for these images (if any). The images' tiles go through the same
/// products, so that `U` is read once for all of them (see [`images_per_job`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    g: &Geometry,
    (u, r): (&[f32], usize),
    x: &[f32],
    n: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
    epilogue: &Epilogue,
    parallel: bool,
) {
    // Every band streams all of `U` (one `C × O` matrix per product) through the
    // products. Up to a few MB it comes from cache and bands that fit L2 are faster
    // (AlexNet's 4.7 MB: 10 % over one band); a larger `U` is read once, in one band
    // (VGG-16's 16 MB at 28×28 ran no faster than the direct kernel in its 14 bands of one
    // tile row, 1.74× in one). Several images are together to share `U`: one band.
    let products = (r + 2) * (r + 2);
    let band_bytes = if products * g.c * g.o * 4 > U_IN_CACHE || n > 1 {
        usize::MAX
    } else {
        BAND_BYTES
    };
    run_bands(g, (u, r), x, n, out, (res, epilogue), parallel, band_bytes);
}

/// Images whose tiles (of side `r`) share one set of products: one where an image has
/// enough tiles to fill the matrix kernel; on small maps (ResNet's 14×14 and 7×7 stages, 49
/// and 16 tiles of 2×2), enough images for [`JOB_TILES`] tiles, so that the transformed
/// weight (4–17 MB there, read from memory) is read once for all of them instead of once
/// per image.
pub(crate) fn images_per_job(g: &Geometry, r: usize, n: usize) -> usize {
    let tiles = g.oh.div_ceil(r) * g.ow.div_ceil(r);
    JOB_TILES.div_ceil(tiles).clamp(1, n.max(1))
}

/// [`run`] in bands of tile rows (counted over the images, one after the other) whose `V`
/// and `M` take about `band_bytes`.
#[allow(clippy::too_many_arguments)]
fn run_bands(
    g: &Geometry,
    (u, r): (&[f32], usize),
    x: &[f32],
    n: usize,
    out: &mut [f32],
    (res, epilogue): (Option<&[f32]>, &Epilogue),
    parallel: bool,
    band_bytes: usize,
) {
    let (c, o) = (g.c, g.o);
    // Products: one per element of the (r + 2) × (r + 2) transforms.
    let products = (r + 2) * (r + 2);
    let (th, tw) = (g.oh.div_ceil(r), g.ow.div_ceil(r));
    // Padded rows 0..r·th + 2, each split into its r phases of columns (tw + 1 of each),
    // so that every tap of a row of tiles is a contiguous run.
    let (rows, half) = (r * th + 2, tw + 1);
    let split_len = c * rows * r * half;
    let band = (band_bytes / (products * (c + o) * tw * 4)).clamp(1, n * th);
    // `LANES` elements of slack after the planes and after each element's `V`: the input
    // transform reads and writes whole vectors past the last tile of a row.
    with_buffer(&SPLIT, n * split_len + LANES, |split| {
        let geometry = (g.h, g.w, g.ph, g.pw, rows, half, r);
        let images = x
            .chunks_exact(c * g.h * g.w)
            .zip(split.chunks_mut(split_len));
        for (x, split) in images {
            super::wide!(split_input, x: &[f32], split: &mut [f32], geometry: Geom7);
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
                r,
            };
            let tiles = b.tiles();
            let stride = c * tiles + LANES;
            with_buffer(&V, products * stride, |v| {
                let planes = (rows, half, c);
                if r == 4 {
                    super::wide!(
                        transform_input::<4, 6, F4>,
                        split: &[f32],
                        v: &mut [f32],
                        b: Band,
                        planes: (usize, usize, usize),
                    );
                } else {
                    super::wide!(
                        transform_input::<2, 4, F2>,
                        split: &[f32],
                        v: &mut [f32],
                        b: Band,
                        planes: (usize, usize, usize),
                    );
                }
                with_buffer(&M, products * o * tiles, |m| {
                    // M[e] = V[e]ᵀ · U[e], `tiles × O`: the channels, a multiple of 16
                    // where it matters, run along the kernel's vectors, the tiles (as
                    // few as 16) along its short side.
                    // One image on several threads (a batch smaller than the pool) shares
                    // out the products, each on one thread: many small products split
                    // across threads cost more in synchronisation than they gain.
                    let len = panel::packed_len(c, o);
                    let product = |(e, m): (usize, &mut [f32])| {
                        let (v, u) = (&v[e * stride..][..stride], &u[e * len..][..len]);
                        panel::product(v, tiles, (c, tiles, o), u, m);
                    };
                    if parallel {
                        m.par_chunks_mut(tiles * o).enumerate().for_each(product);
                    } else {
                        m.chunks_mut(tiles * o).enumerate().for_each(product);
                    }
                    // The portable stores where the CPU lacks AVX-512.
                    if !transposed::store_tiles(m, out, b) {
                        if r == 4 {
                            super::wide!(store_tiles::<4, 6, F4>, m: &[f32], out: &mut [f32], b: Band);
                        } else {
                            super::wide!(store_tiles::<2, 4, F2>, m: &[f32], out: &mut [f32], b: Band);
                        }
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
/// row `t` is row `t % th` of image `t / th`, whose tiles (`th × tw`, each `r × r`) cover
/// its `oh × ow` outputs.
#[derive(Debug, Clone, Copy)]
struct Band {
    t0: usize,
    t1: usize,
    th: usize,
    tw: usize,
    oh: usize,
    ow: usize,
    r: usize,
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

type Geom7 = (usize, usize, usize, usize, usize, usize, usize);

/// Pads each input plane (`h × w`, padding `ph`, `pw`) to `rows` rows and splits every
/// padded row into its `r` phases of `half` columns: padded column `X` lands in phase
/// `X % r` at `X / r`.
#[inline(always)]
fn split_input(x: &[f32], split: &mut [f32], (h, w, ph, pw, rows, half, r): Geom7) {
    let row_len = r * half;
    for (plane, dst) in x.chunks_exact(h * w).zip(split.chunks_mut(rows * row_len)) {
        for (y, row) in dst.chunks_exact_mut(row_len).enumerate() {
            // Each row is zeroed as it is written, while it is in cache: the padding, and
            // the phases' ends past the input.
            row.fill(0.0);
            let Some(line) = y
                .checked_sub(ph)
                .and_then(|y| plane.get(y * w..(y + 1) * w))
            else {
                continue; // a padding row, or below the input
            };
            match r {
                2 => split_row::<2>(line, row, half, pw),
                4 => split_row::<4>(line, row, half, pw),
                r => unreachable!("tiles of side {r}"),
            }
        }
    }
}

/// One padded row of [`split_input`]: input column `x` is padded column `x + pw`, at
/// `(x + pw) / R` in phase `(x + pw) % R` of `row` (`R` phases of `half`); inputs past
/// the phases are read by no output. Whole groups of `R` inputs go to the `R` phases in
/// one loop, which the compiler turns into shuffles of whole vectors (where a strided
/// copy per phase ran one value at a time).
#[inline(always)]
fn split_row<const R: usize>(line: &[f32], row: &mut [f32], half: usize, pw: usize) {
    let mut put = |x: usize, v: f32| {
        let col = x + pw;
        if col / R < half {
            row[(col % R) * half + col / R] = v;
        }
    };
    // The inputs before the first whose padded column is a multiple of R.
    let lead = ((R - pw % R) % R).min(line.len());
    for (x, &v) in line[..lead].iter().enumerate() {
        put(x, v);
    }
    let base = (lead + pw) / R;
    let groups = ((line.len() - lead) / R).min(half.saturating_sub(base));
    for (x, &v) in line.iter().enumerate().skip(lead + R * groups) {
        put(x, v);
    }
    let body = &line[lead..lead + R * groups];
    let mut phases = row.chunks_exact_mut(half);
    let mut phases: [&mut [f32]; R] =
        std::array::from_fn(|_| &mut phases.next().expect("R phases")[base..base + groups]);
    for (i, group) in body.chunks_exact(R).enumerate() {
        for (phase, &v) in phases.iter_mut().zip(group) {
            phase[i] = v;
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

/// `[&x[at(0)], …, &x[at(A − 1)]]`: a row or column of a matrix of vectors. A plain loop
/// over a fixed array, not `array::from_fn`, whose closures are not always inlined into the
/// AVX-512 copy.
#[inline(always)]
fn refs<const A: usize, const J: usize>(
    x: &[[Lanes; J]],
    at: impl Fn(usize) -> (usize, usize),
) -> [&Lanes; A] {
    let mut r = [&x[0][0]; A];
    for (k, r) in r.iter_mut().enumerate() {
        let (i, j) = at(k);
        *r = &x[i][j];
    }
    r
}

/// `c·x`.
#[inline(always)]
fn scale(c: f32, x: &Lanes) -> Lanes {
    let mut r = [0.0; LANES];
    for (r, x) in r.iter_mut().zip(x) {
        *r = c * x;
    }
    r
}

/// The one-axis transforms of F(r×r, 3×3) with tiles of side `R` and `A = R + 2` inputs:
/// `Bᵀ x` (`A` values to `A`) for the input, `Aᵀ x` (`A` to `R`) for the output.
trait Transforms<const R: usize, const A: usize> {
    fn bt(x: [&Lanes; A]) -> [Lanes; A];
    fn at(x: [&Lanes; A]) -> [Lanes; R];
}

/// F(2×2, 3×3).
struct F2;

impl Transforms<2, 4> for F2 {
    /// `x0 − x2, x1 + x2, x2 − x1, x1 − x3`.
    #[inline(always)]
    fn bt(x: [&Lanes; 4]) -> [Lanes; 4] {
        [
            sub(x[0], x[2]),
            add(x[1], x[2]),
            sub(x[2], x[1]),
            sub(x[1], x[3]),
        ]
    }

    /// `x0 + x1 + x2, x1 − x2 − x3`.
    #[inline(always)]
    fn at(x: [&Lanes; 4]) -> [Lanes; 2] {
        [add(&add(x[0], x[1]), x[2]), sub(&sub(x[1], x[2]), x[3])]
    }
}

/// F(4×4, 3×3), interpolation points 0, ±1, ±2 and ∞: the rows of
/// `Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0;
/// 0 4 0 −5 0 1]` and `Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]`,
/// their common terms shared.
struct F4;

impl Transforms<4, 6> for F4 {
    #[inline(always)]
    fn bt(x: [&Lanes; 6]) -> [Lanes; 6] {
        let (x4_x2, x3_x1) = (sub(x[4], x[2]), sub(x[3], x[1]));
        let (x3_x4, x1_x2) = (add(x[3], x[4]), add(x[1], x[2]));
        let (x4_x3, x1m2) = (sub(x[4], x[3]), sub(x[1], x[2]));
        [
            add(&sub(&scale(4.0, x[0]), &scale(5.0, x[2])), x[4]),
            sub(&x3_x4, &scale(4.0, &x1_x2)),
            add(&x4_x3, &scale(4.0, &x1m2)),
            add(&x4_x2, &scale(2.0, &x3_x1)),
            sub(&x4_x2, &scale(2.0, &x3_x1)),
            add(&sub(&scale(4.0, x[1]), &scale(5.0, x[3])), x[5]),
        ]
    }

    #[inline(always)]
    fn at(x: [&Lanes; 6]) -> [Lanes; 4] {
        let (s12, d12) = (add(x[1], x[2]), sub(x[1], x[2]));
        let (s34, d34) = (add(x[3], x[4]), sub(x[3], x[4]));
        [
            add(&add(x[0], &s12), &s34),
            add(&d12, &scale(2.0, &d34)),
            add(&s12, &scale(4.0, &s34)),
            add(&add(&d12, &scale(8.0, &d34)), x[5]),
        ]
    }
}

/// `V = Bᵀ d B` for the tiles of band `b` of the `c` channels of `split` (each image's
/// planes after the last's), into `v` as `[A²][C][tiles]` (each element's matrix followed
/// by `LANES` of slack), `LANES` tiles at a time. Rows of `LANES / 2` tiles or fewer share
/// a vector, each row's tiles read from its own place and blended in: a 7×7 map's two 4×4
/// tiles a row would leave 14 of 16 lanes idle (ResNet-50's input transforms at 28×28,
/// 14×14 and 7×7 took 0.40, 0.22 and 0.35 ms an image one row a vector, 0.28, 0.18 and
/// 0.14 sharing). A vector may run past its tiles: the extra lanes read the next padded row
/// (or the slack after the planes) and land on tiles written after them (the next row, the
/// next channel) or in the slack.
#[inline(always)]
fn transform_input<const R: usize, const A: usize, T: Transforms<R, A>>(
    split: &[f32],
    v: &mut [f32],
    b: Band,
    (rows, half, c): (usize, usize, usize),
) {
    let (tiles, tw) = (b.tiles(), b.tw);
    let stride = c * tiles + LANES;
    let rows_per_vector = if tw <= LANES / 2 { LANES / tw } else { 1 };
    for ch in 0..c {
        for t in (b.t0..b.t1).step_by(rows_per_vector) {
            let at0 = ch * tiles + (t - b.t0) * tw;
            for tx in (0..tw).step_by(LANES) {
                // Patch element (k, j) of tile tx is padded row R·ty + k, column R·tx + j:
                // phase j % R, at tx + j / R. Row t + nth's tiles take lanes nth·tw on.
                let mut d = [[[0f32; LANES]; A]; A];
                for nth in 0..rows_per_vector.min(b.t1 - t) {
                    let (image, ty) = b.place(t + nth);
                    let plane = (image * c + ch) * rows * R * half;
                    let first = nth * tw;
                    // All ones on the lanes of this row's tiles and after.
                    let mut mask = [0u32; LANES];
                    for (l, m) in mask.iter_mut().enumerate() {
                        *m = if l >= first { !0 } else { 0 };
                    }
                    for (k, d) in d.iter_mut().enumerate() {
                        let row = plane + (R * ty + k) * R * half + tx;
                        for (j, d) in d.iter_mut().enumerate() {
                            // From `first` lanes before the row's first tile: inside the
                            // planes, since row t + nth lies `nth` tile rows (R·R·half
                            // values each) or a whole plane past row t.
                            let at = row + (j % R) * half + j / R - first;
                            let x = load(split, at, LANES);
                            if nth == 0 {
                                *d = x;
                            } else {
                                for ((d, x), m) in d.iter_mut().zip(&x).zip(&mask) {
                                    *d = f32::from_bits(d.to_bits() & !m | x.to_bits() & m);
                                }
                            }
                        }
                    }
                }
                // Bᵀ d over rows, for each column j; then B over columns.
                let mut cols = [[[0f32; LANES]; A]; A];
                for (j, col) in cols.iter_mut().enumerate() {
                    *col = T::bt(refs(&d, |k| (k, j)));
                }
                for i in 0..A {
                    let e = T::bt(refs(&cols, |j| (j, i)));
                    for (j, e) in e.iter().enumerate() {
                        let at = (A * i + j) * stride + at0 + tx;
                        v[at..at + LANES].copy_from_slice(e);
                    }
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` for the tiles of band `b` from `m` (`[A²][tiles][O]`), `LANES` channels
/// at a time, written to the output pixels they cover (cropped to `oh × ow`) in their
/// image's `O × OH × OW` of `out`, one value at a time ([`transposed::store_tiles`] writes
/// whole rows where it can).
#[inline(always)]
fn store_tiles<const R: usize, const A: usize, T: Transforms<R, A>>(
    m: &[f32],
    out: &mut [f32],
    b: Band,
) {
    let tiles = b.tiles();
    let o = m.len() / (A * A * tiles);
    let (oh, ow) = (b.oh, b.ow);
    let p = oh * ow;
    for t in b.t0..b.t1 {
        let (image, ty) = b.place(t);
        let out = &mut out[image * o * p..][..o * p];
        for tx in 0..b.tw {
            let t = (t - b.t0) * b.tw + tx;
            for o0 in (0..o).step_by(LANES) {
                let n = LANES.min(o - o0);
                let mut e = [[[0f32; LANES]; A]; A];
                for (k, e) in e.iter_mut().flatten().enumerate() {
                    *e = load(m, (k * tiles + t) * o + o0, n);
                }
                // Aᵀ M over rows, for each column j; then A over columns.
                let mut s = [[[0f32; LANES]; R]; A];
                for (j, s) in s.iter_mut().enumerate() {
                    *s = T::at(refs(&e, |i| (i, j)));
                }
                for r in 0..R {
                    let y = R * ty + r;
                    if y >= oh {
                        continue;
                    }
                    let v = T::at(refs(&s, |j| (j, r)));
                    let x = R * tx;
                    for l in 0..n {
                        let at = (o0 + l) * p + y * ow + x;
                        for (c, v) in v.iter().enumerate().take(ow - x) {
                            out[at + c] = v[l];
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
        let (y0, y1) = (b.r * ty0, (b.r * ty1).min(b.oh));
        let at = image * o * p;
        for ch in 0..o {
            let span = at + ch * p + y0 * b.ow..at + ch * p + y1 * b.ow;
            epilogue.row(ch, &mut out[span.clone()], None, res.map(|r| &r[span]));
        }
        t += ty1 - ty0;
    }
}

/// [`store_tiles`] with AVX-512: eight 2×2 tiles, or four 4×4 ones, side by side give each
/// of 16 channels 16 consecutive outputs of a row, which a 16 × 16 transpose in registers
/// turns into one vector store per channel, where the portable loop stores every value on
/// its own (the output transform was 13–15 % of VGG-16's time with 2×2 tiles, and made
/// 4×4 tiles slower than 2×2 ones). The same operations in the same order, so the same
/// values.
mod transposed {
    use super::Band;

    /// Writes the tiles as [`super::store_tiles`] does, if the CPU has the AVX-512 subsets
    /// [`crate::kernels::wide!`] is compiled for ([`crate::kernels::has_avx512`]); returns
    /// whether it did.
    pub(super) fn store_tiles(m: &[f32], out: &mut [f32], b: Band) -> bool {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::has_avx512() {
            let (tiles, r) = (b.tiles(), b.r);
            let elems = (r + 2) * (r + 2);
            assert!(
                tiles > 0 && (r == 2 || r == 4) && m.len().is_multiple_of(elems * tiles),
                "store_tiles: products"
            );
            let o = m.len() / (elems * tiles);
            assert!(
                out.len() >= b.t1.div_ceil(b.th) * o * b.oh * b.ow
                    && b.tw <= b.ow.div_ceil(r)
                    && b.th <= b.oh.div_ceil(r),
                "store_tiles: tiles past the output"
            );
            // SAFETY: the CPU has AVX-512F (`has_avx512`, checked above). Every load reads
            // `m` at `(k·tiles + t)·o + o0 + l` for `k < (r + 2)²`, `t < tiles`,
            // `o0 + l < o` (masked to the channels left), inside `m` (its length is
            // `(r + 2)²·tiles·o`); every store writes image `t / th < ⌈t1 / th⌉`, channel
            // `o0 + l < o`, row `y < oh`, columns `x0..x0 + n` with `x0 < ow` (as
            // `tx0 < tw ≤ ⌈ow/r⌉`) and `x0 + n ≤ ow` (masked), inside `out` (at least
            // `⌈t1 / th⌉·o·oh·ow`); all checked above.
            #[allow(unsafe_code)]
            unsafe {
                if r == 4 {
                    avx512::store_tiles::<4, 6, avx512::F4>(m, out, b, o)
                } else {
                    avx512::store_tiles::<2, 4, avx512::F2>(m, out, b, o)
                }
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
            _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
            _mm512_shuffle_f32x4, _mm512_sub_ps, _mm512_unpackhi_pd, _mm512_unpackhi_ps,
            _mm512_unpacklo_pd, _mm512_unpacklo_ps,
        };

        /// `Aᵀ x` along one axis: `x0 + x1 + x2, x1 − x2 − x3`, as [`super::super::F2`]'s.
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

        /// The output transform along one axis, as the portable one computes it.
        pub(super) trait At<const R: usize, const A: usize> {
            /// `Aᵀ x`.
            ///
            /// # Safety
            ///
            /// The CPU has AVX-512F.
            unsafe fn at(x: [__m512; A]) -> [__m512; R];
        }

        /// F(2×2, 3×3), as [`super::super::F2`].
        pub(super) struct F2;

        impl At<2, 4> for F2 {
            #[target_feature(enable = "avx512f")]
            #[inline]
            unsafe fn at(x: [__m512; 4]) -> [__m512; 2] {
                at(x)
            }
        }

        /// F(4×4, 3×3), as [`super::super::F4`]: the same operations in the same order.
        pub(super) struct F4;

        impl At<4, 6> for F4 {
            #[target_feature(enable = "avx512f")]
            #[inline]
            unsafe fn at(x: [__m512; 6]) -> [__m512; 4] {
                let scale = |c: f32, v: __m512| _mm512_mul_ps(_mm512_set1_ps(c), v);
                let (s12, d12) = (_mm512_add_ps(x[1], x[2]), _mm512_sub_ps(x[1], x[2]));
                let (s34, d34) = (_mm512_add_ps(x[3], x[4]), _mm512_sub_ps(x[3], x[4]));
                [
                    _mm512_add_ps(_mm512_add_ps(x[0], s12), s34),
                    _mm512_add_ps(d12, scale(2.0, d34)),
                    _mm512_add_ps(s12, scale(4.0, s34)),
                    _mm512_add_ps(_mm512_add_ps(d12, scale(8.0, d34)), x[5]),
                ]
            }
        }

        /// See [`super::store_tiles`], whose checks and safety argument this relies on:
        /// tiles of side `R` (`A = R + 2` transformed values along each axis), `16 / R` of
        /// them side by side giving each of 16 channels 16 consecutive outputs of a row.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn store_tiles<const R: usize, const A: usize, T: At<R, A>>(
            m: &[f32],
            out: &mut [f32],
            b: Band,
            o: usize,
        ) {
            let (tiles, tw, oh, ow) = (b.tiles(), b.tw, b.oh, b.ow);
            let p = oh * ow;
            let per_group = 16 / R;
            let (m, out) = (m.as_ptr(), out.as_mut_ptr());
            for t in b.t0..b.t1 {
                let (image, ty) = b.place(t);
                // SAFETY: the caller's (see above).
                let out = unsafe { out.add(image * o * p) };
                for o0 in (0..o).step_by(16) {
                    let channels = (o - o0).min(16);
                    let lanes = ((1u32 << channels) - 1) as u16;
                    for tx0 in (0..tw).step_by(per_group) {
                        // Row r of the outputs, column R·i + c of this group of tiles, as a
                        // vector over the channels.
                        let mut rows = [[_mm512_setzero_ps(); 16]; R];
                        let group = (tw - tx0).min(per_group);
                        for i in 0..group {
                            let t = (t - b.t0) * tw + tx0 + i;
                            let mut e = [[_mm512_setzero_ps(); A]; A];
                            for (k, e) in e.iter_mut().flatten().enumerate() {
                                // SAFETY: the caller's (see above).
                                *e = unsafe {
                                    _mm512_maskz_loadu_ps(lanes, m.add((k * tiles + t) * o + o0))
                                };
                            }
                            let mut s = [[_mm512_setzero_ps(); R]; A];
                            for (j, s) in s.iter_mut().enumerate() {
                                let mut col = [_mm512_setzero_ps(); A];
                                for (k, v) in col.iter_mut().enumerate() {
                                    *v = e[k][j];
                                }
                                // SAFETY: the CPU has AVX-512F (the caller's).
                                *s = unsafe { T::at(col) };
                            }
                            for (r, rows) in rows.iter_mut().enumerate() {
                                let mut row = [_mm512_setzero_ps(); A];
                                for (j, v) in row.iter_mut().enumerate() {
                                    *v = s[j][r];
                                }
                                // SAFETY: the CPU has AVX-512F (the caller's).
                                let v = unsafe { T::at(row) };
                                rows[R * i..R * i + R].copy_from_slice(&v);
                            }
                        }
                        let x0 = R * tx0;
                        // The columns these tiles cover, cropped to the output.
                        let columns = (ow - x0).min(R * group);
                        let keep = ((1u32 << columns) - 1) as u16;
                        for (r, row) in rows.iter_mut().enumerate() {
                            let y = R * ty + r;
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
        for ((o, oh, ow, t0, t1, images), r) in cases.into_iter().flat_map(|c| [(c, 2), (c, 4)]) {
            let (th, tw) = (oh.div_ceil(r), ow.div_ceil(r));
            let (t0, t1) = (t0.min(images * th - 1), t1.min(images * th));
            let m = values((r + 2) * (r + 2) * (t1 - t0) * tw * o, o + ow);
            let b = Band {
                t0,
                t1,
                th,
                tw,
                oh,
                ow,
                r,
            };
            let mut portable = vec![f32::NAN; images * o * oh * ow];
            if r == 4 {
                store_tiles::<4, 6, F4>(&m, &mut portable, b);
            } else {
                store_tiles::<2, 4, F2>(&m, &mut portable, b);
            }
            let mut fast = vec![f32::NAN; images * o * oh * ow];
            if !transposed::store_tiles(&m, &mut fast, b) {
                return;
            }
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&portable),
                bits(&fast),
                "({o}, {oh}×{ow}, tiles of {r}, tile rows {t0}..{t1} of {images} images)"
            );
        }
    }

    #[test]
    fn four_by_four_tiles_on_large_maps_and_on_small_ones_they_cover_as_well() {
        let side = |h: usize, n: usize| {
            let g = Geometry::new(512, h, h, 512, &Conv2dConfig::new(3).padding(1)).unwrap();
            tile(&g, n, 1)
        };
        // 56 and 28 always; 14×14 never (16×16 as 4×4 tiles); 7×7 (8×8 either way) from
        // eight images, 32 tiles, on one thread.
        assert_eq!([side(56, 1), side(28, 1), side(14, 16)], [4, 4, 2]);
        assert_eq!(
            [side(7, 1), side(7, 7), side(7, 8), side(7, 16)],
            [2, 2, 4, 4]
        );
        let g = Geometry::new(512, 7, 7, 512, &Conv2dConfig::new(3).padding(1)).unwrap();
        assert_eq!(tile(&g, 16, 2), 2);
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
            (32, 28, 28, 32, 1),
            (40, 31, 33, 32, 1),
            (32, 34, 30, 48, 2),
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
            // Either tile size on any map (the kernel chooses by map and images).
            for (r, n) in [2, 4].into_iter().flat_map(|r| [(r, 1), (r, 3)]) {
                let u = transform_weights(&wt, o, c, r);
                let x = values(n * c * h * w, k);
                let res = values(n * o * g.p(), k + 20);
                let want: Vec<f64> = x
                    .chunks_exact(c * h * w)
                    .flat_map(|x| naive(x, &g, &wt))
                    .collect();
                // One band, and bands of one and of three tile rows.
                let row_bytes = (r + 2) * (r + 2) * (c + o) * g.ow.div_ceil(r) * 4;
                for band_bytes in [BAND_BYTES, 1, 3 * row_bytes] {
                    let mut out = vec![f32::NAN; n * o * g.p()];
                    // The products on this thread, and shared out over the pool.
                    let parallel = band_bytes == 1;
                    let epilogue = (Some(&res[..]), &e);
                    run_bands(&g, (&u, r), &x, n, &mut out, epilogue, parallel, band_bytes);
                    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
                    for (i, (got, y)) in out.iter().zip(&want).enumerate() {
                        let ch = i / g.p() % o;
                        let (s, t) = (e.scale.as_ref().unwrap()[ch], e.shift.as_ref().unwrap()[ch]);
                        let y = ((*y as f32 * s + t).max(0.0) + res[i]).max(0.0);
                        // F(4×4, 3×3)'s larger coefficients cost precision: up to
                        // 3.6·10⁻⁶ of the largest output here, F(2×2, 3×3) under 10⁻⁶.
                        let tol = if r == 4 { 1e-5 } else { 2e-6 };
                        assert!(
                            (got - y).abs() <= tol * scale as f32 * s.abs().max(1.0),
                            "case {k} ({c}, {h}×{w}, {o}, pad {pad}), {n} images, band \
                             {band_bytes}: [{i}] {got} vs {y}"
                        );
                    }
                }
            }
        }
    }
}
