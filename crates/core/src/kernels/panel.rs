//! The matrix kernel of the Winograd products: `M = Vᵀ · U` with `U` packed once per layer.
//!
//! Each of a Winograd convolution's 16 or 36 products is thin (`C × O` by `C × tiles`, tens
//! to a few hundred tiles) and its right operand, the transformed weight `U`, is fixed for
//! the layer. The `gemm` crate packs `U` again on every call with more than 48 tiles (every
//! product of every image) and ran these products at 155–185 GFLOP/s in ResNet-50, where
//! the convolutions' larger ones ran at 220–230. Here `U` is packed once, when it is
//! transformed, in panels of 64 output channels (`[⌈O/64⌉][C][64]`, zero beyond `O`), and
//! `V` (`C × tiles`) is read where it lies: per input channel, four vectors of a panel's
//! row times six broadcast values of a row of `V`, into a 6 × 64 block of `M` kept in 24
//! AVX-512 registers. The shape is the `gemm` crate's
//! own AVX-512 kernel (and MLAS's); only the packing differs. One thread, 36 products
//! 128 × 49 × 128 (ResNet-50's 28×28 layers): 245 against 213 GFLOP/s warm, 202–215
//! against 176 with `U` read from L3; 512 × 64 × 512: 241 against 211, 216–232 against 185.
//! ResNet-50 on one thread: 30.6 → 31.6–31.7 images/s.
//!
//! Each value is `Σ_c v[c][t]·u[c][o]` accumulated in `c` order with fused multiply-adds, as
//! the `gemm` crate does within one depth block. AVX-512 only: elsewhere [`product`] runs
//! the `gemm` crate on each panel.

use super::gemm::{MatMut, MatRef, matmul};

/// Output channels per panel (four vectors of 16) and tiles per block (broadcast values).
pub(crate) const PANEL: usize = 64;
const NR: usize = 6;

/// Length of a `C × O` matrix packed as [`packed_at`] lays it out.
pub(crate) fn packed_len(c: usize, o: usize) -> usize {
    o.div_ceil(PANEL) * c * PANEL
}

/// Index of `u(ci, oi)` in a `C × O` matrix packed in panels of 64 columns, each `C × 64`
/// (`[⌈O/64⌉][C][64]`, zero beyond `O`).
#[inline(always)]
pub(crate) fn packed_at(c: usize, ci: usize, oi: usize) -> usize {
    (oi / PANEL * c + ci) * PANEL + oi % PANEL
}

/// `m[t·o + j] = Σ_k v[k·v_rs + t] · u(k, j)` for `t < tiles`, `j < o`: `v` is `c × tiles`
/// with row stride `v_rs`; `u` is `c × o` packed as [`packed_at`] lays it out; `m` is
/// `tiles × o`, row-major.
///
/// # Panics
///
/// If a slice is shorter than these shapes need.
pub(crate) fn product(
    v: &[f32],
    v_rs: usize,
    (c, tiles, o): (usize, usize, usize),
    u: &[f32],
    m: &mut [f32],
) {
    if c == 0 || tiles == 0 || o == 0 {
        m[..tiles * o].fill(0.0);
        return;
    }
    assert!(
        v_rs >= tiles && v.len() >= (c - 1) * v_rs + tiles,
        "panel: V of {} values for {c} rows of {tiles} tiles, stride {v_rs}",
        v.len()
    );
    assert!(
        u.len() >= packed_len(c, o),
        "panel: U of {} values",
        u.len()
    );
    assert!(m.len() >= tiles * o, "panel: M of {} values", m.len());
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: the CPU has AVX-512F (checked just above). The kernel reads `v` at
        // `k·v_rs + t` for `k < c`, `t < tiles` (inside, by the first assertion), `u` at
        // `(q·c + k)·64 + l` for panels `q < ⌈o/64⌉`, `l < 64` (inside, by the second), and
        // writes `m` at `t·o + j` for `t < tiles`, `j < o` only (masked to the channels of a
        // partial panel; inside, by the third).
        #[allow(unsafe_code)]
        unsafe {
            avx512::run(v, v_rs, (c, tiles, o), u, m)
        };
        return;
    }
    panels_by_gemm(v, v_rs, (c, tiles, o), u, m);
}

/// [`product`] by the `gemm` crate, one panel at a time.
fn panels_by_gemm(
    v: &[f32],
    v_rs: usize,
    (c, tiles, o): (usize, usize, usize),
    u: &[f32],
    m: &mut [f32],
) {
    let vt = MatRef {
        data: v,
        rows: c,
        cols: tiles,
        rs: v_rs,
        cs: 1,
    }
    .t();
    for q in 0..o.div_ceil(PANEL) {
        let n = (o - q * PANEL).min(PANEL);
        let dst = MatMut {
            data: &mut m[q * PANEL..],
            rows: tiles,
            cols: n,
            rs: o,
            cs: 1,
        };
        let panel = MatRef {
            data: &u[q * c * PANEL..][..c * PANEL],
            rows: c,
            cols: n,
            rs: PANEL,
            cs: 1,
        };
        matmul(dst, vt, panel, false, false);
    }
}

/// `u` (`c × o`, row-major) packed into `dst` (at least [`packed_len`]) as the kernel reads
/// it: panels of 64 columns, each `c × 64`, zero beyond `o`.
#[cfg(test)]
pub(crate) fn pack(u: &[f32], c: usize, o: usize, dst: &mut [f32]) {
    dst[..packed_len(c, o)].fill(0.0);
    for (ci, row) in u.chunks_exact(o).enumerate().take(c) {
        for (oi, &x) in row.iter().enumerate() {
            dst[packed_at(c, ci, oi)] = x;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::{NR, PANEL};
    use std::arch::x86_64::{
        __m512, __mmask16, _MM_HINT_T0, _mm_prefetch, _mm512_fmadd_ps, _mm512_loadu_ps,
        _mm512_mask_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };
    /// Rows of the panel ahead that the kernel asks the cache for: a layer's `U` (2.4 MB at
    /// ResNet-50's 28×28, 38 MB at 7×7 on one thread) comes from L3 or memory at every
    /// band. 36 products 128 × 28 × 128 cycling through 16 MB of `U`: 168 GFLOP/s
    /// without, 197–212 with 16 rows (8: 200, 32: 209); warm, 252.
    const AHEAD: usize = 16;

    /// `$body` once for each value of the list, with `$name` a constant of that value: the
    /// kernel's loops over its registers written out, so that every index into the
    /// accumulators is a constant and they stay in registers (as loops, the compiler kept
    /// them in memory and stored each after its multiply-add).
    macro_rules! each {
        ($name:ident in [$($v:literal),*] $body:block) => {
            $({
                const $name: usize = $v;
                $body
            })*
        };
    }

    /// One block: the panel's rows from `u`, six tiles' rows of `V` from `v` (stride
    /// `v_rs`), their `rows` (up to six) rows of `M` at `m` (stride `m_rs`); the panel's
    /// last vector stored masked by `mask`.
    struct Block {
        u: *const f32,
        v: *const f32,
        v_rs: usize,
        m: *mut f32,
        m_rs: usize,
        rows: usize,
        depth: usize,
        mask: __mmask16,
    }

    /// The kernel for panels of `$n` vectors of 16 channels (`$vs` lists `0..$n`) and
    /// blocks of `$js.len()` tiles (`$js` lists them): a last block of fewer than six
    /// tiles (49 = 8·6 + 1) computes only its own.
    macro_rules! kernel {
        ($fn:ident, $n:literal, [$($vs:literal),*], [$($js:literal),*]) => {
            #[target_feature(enable = "avx512f")]
            #[inline(never)]
            unsafe fn $fn(&self) {
                // SAFETY (the whole body): `run`'s bounds: rows `k < depth` of the panel
                // (64 values each) and of `V` (the block's tiles from `v + k·v_rs`), its
                // rows of `M`, the last vector masked to the panel's channels. The
                // prefetches may name addresses past the panel (formed with
                // `wrapping_add`): a prefetch reads nothing and never faults.
                unsafe {
                    let mut acc = [[_mm512_setzero_ps(); NR]; $n];
                    let (mut u, mut v) = (self.u, self.v);
                    for _ in 0..self.depth {
                        let mut x = [_mm512_setzero_ps(); $n];
                        each!(I in [$($vs),*] {
                            x[I] = _mm512_loadu_ps(u.add(16 * I));
                            _mm_prefetch::<_MM_HINT_T0>(u.wrapping_add(AHEAD * PANEL + 16 * I).cast());
                        });
                        each!(J in [$($js),*] {
                            let b = _mm512_set1_ps(*v.add(J));
                            each!(I in [$($vs),*] {
                                acc[I][J] = _mm512_fmadd_ps(x[I], b, acc[I][J]);
                            });
                        });
                        u = u.add(PANEL);
                        v = v.add(self.v_rs);
                    }
                    each!(J in [$($js),*] {
                        let dst = self.m.add(J * self.m_rs);
                        each!(I in [$($vs),*] {
                            store::<$n>(dst, I, self.mask, acc[I][J]);
                        });
                    });
                }
            }
        };
    }

    /// The kernels for `$n` vectors, by tiles in the block.
    macro_rules! kernels {
        ($n:literal, $vs:tt, [$f1:ident, $f2:ident, $f3:ident, $f4:ident, $f5:ident, $f6:ident]) => {
            kernel!($f1, $n, $vs, [0]);
            kernel!($f2, $n, $vs, [0, 1]);
            kernel!($f3, $n, $vs, [0, 1, 2]);
            kernel!($f4, $n, $vs, [0, 1, 2, 3]);
            kernel!($f5, $n, $vs, [0, 1, 2, 3, 4]);
            kernel!($f6, $n, $vs, [0, 1, 2, 3, 4, 5]);
        };
    }

    impl Block {
        kernels!(1, [0], [k1x1, k1x2, k1x3, k1x4, k1x5, k1x6]);
        kernels!(2, [0, 1], [k2x1, k2x2, k2x3, k2x4, k2x5, k2x6]);
        kernels!(3, [0, 1, 2], [k3x1, k3x2, k3x3, k3x4, k3x5, k3x6]);
        kernels!(4, [0, 1, 2, 3], [k4x1, k4x2, k4x3, k4x4, k4x5, k4x6]);

        /// The kernel for `vectors` vectors and `self.rows` tiles.
        #[target_feature(enable = "avx512f")]
        unsafe fn run(&self, vectors: usize) {
            // SAFETY: the caller's.
            unsafe {
                match (vectors, self.rows) {
                    (4, 6) => self.k4x6(),
                    (4, 5) => self.k4x5(),
                    (4, 4) => self.k4x4(),
                    (4, 3) => self.k4x3(),
                    (4, 2) => self.k4x2(),
                    (4, _) => self.k4x1(),
                    (3, 6) => self.k3x6(),
                    (3, 5) => self.k3x5(),
                    (3, 4) => self.k3x4(),
                    (3, 3) => self.k3x3(),
                    (3, 2) => self.k3x2(),
                    (3, _) => self.k3x1(),
                    (2, 6) => self.k2x6(),
                    (2, 5) => self.k2x5(),
                    (2, 4) => self.k2x4(),
                    (2, 3) => self.k2x3(),
                    (2, 2) => self.k2x2(),
                    (2, _) => self.k2x1(),
                    (_, 6) => self.k1x6(),
                    (_, 5) => self.k1x5(),
                    (_, 4) => self.k1x4(),
                    (_, 3) => self.k1x3(),
                    (_, 2) => self.k1x2(),
                    (_, _) => self.k1x1(),
                }
            }
        }
    }

    /// Stores vector `i` of the `N` at `p`, the last one masked.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store<const N: usize>(p: *mut f32, i: usize, mask: __mmask16, x: __m512) {
        // SAFETY: the caller's: 16 values from `p + 16i`, the last vector's masked.
        unsafe {
            if i + 1 == N {
                _mm512_mask_storeu_ps(p.add(16 * i), mask, x);
            } else {
                _mm512_storeu_ps(p.add(16 * i), x);
            }
        }
    }

    /// [`super::product`] on AVX-512: panel by panel (its `C × 64` values in L2), every
    /// block of six tiles against it.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512F, and the slices hold what [`super::product`] asserts.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(
        v: &[f32],
        v_rs: usize,
        (c, tiles, o): (usize, usize, usize),
        u: &[f32],
        m: &mut [f32],
    ) {
        for q in 0..o.div_ceil(PANEL) {
            let n = (o - q * PANEL).min(PANEL);
            let vectors = n.div_ceil(16);
            let rest = n - 16 * (vectors - 1);
            for b in 0..tiles.div_ceil(NR) {
                let block = Block {
                    u: u[q * c * PANEL..].as_ptr(),
                    v: v[b * NR..].as_ptr(),
                    v_rs,
                    m: m[b * NR * o + q * PANEL..].as_mut_ptr(),
                    m_rs: o,
                    rows: (tiles - b * NR).min(NR),
                    depth: c,
                    mask: ((1u32 << rest) - 1) as u16,
                };
                // SAFETY: the CPU has AVX-512F (the caller's); the block's reads and writes
                // are inside the slices by the caller's bounds.
                unsafe { block.run(vectors) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_the_definition_on_either_path() {
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0)
                .collect()
        };
        // Channels around multiples of 16 and 64, tiles around multiples of 6, depths from 1.
        for (c, tiles, o) in [
            (1, 1, 1),
            (3, 6, 16),
            (5, 7, 17),
            (32, 49, 64),
            (17, 13, 65),
            (64, 98, 130),
            (9, 4, 200),
        ] {
            let v_rs = tiles + 3;
            let v = values((c - 1) * v_rs + tiles, 1);
            let u = values(c * o, 2);
            let mut packed = vec![f32::NAN; packed_len(c, o)];
            pack(&u, c, o, &mut packed);
            let mut kernel = vec![f32::NAN; tiles * o + 5];
            product(&v, v_rs, (c, tiles, o), &packed, &mut kernel);
            let mut by_gemm = vec![f32::NAN; tiles * o + 5];
            panels_by_gemm(&v, v_rs, (c, tiles, o), &packed, &mut by_gemm);
            for t in 0..tiles {
                for j in 0..o {
                    let want: f64 = (0..c)
                        .map(|k| f64::from(v[k * v_rs + t]) * f64::from(u[k * o + j]))
                        .sum();
                    for (path, got) in [("kernel", &kernel), ("gemm", &by_gemm)] {
                        let got = got[t * o + j];
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{path} ({c}, {tiles}, {o}): [{t}, {j}] {got} vs {want}"
                        );
                    }
                }
            }
            for got in [&kernel, &by_gemm] {
                assert!(got[tiles * o..].iter().all(|x| x.is_nan()), "wrote past M");
            }
        }
    }
}
