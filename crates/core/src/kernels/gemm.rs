//! A bounds-checked front to the `gemm` crate's f32 matrix product (the one candle uses).
//!
//! candle's `matmul` allocates its output and accepts only a few layouts; the convolution
//! kernels need to write a product into a strided window of a larger buffer (one image's
//! rows of an `[N, O, H, W]` output) and to read operands in place. `gemm::gemm` does that
//! through raw pointers; [`matmul`] checks that every element the product touches lies
//! inside the slices it is given, so that calling it is safe.

use gemm::Parallelism;

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A mutable strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

impl<'a> MatMut<'a> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
}

/// The largest index a `rows × cols` view with strides `rs`, `cs` reads, if it has elements.
fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return None;
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)
}

fn check_in_bounds(what: &str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if let Some(last) = last_index(rows, cols, rs, cs) {
        assert!(
            last < len && rs <= isize::MAX as usize && cs <= isize::MAX as usize,
            "matmul: the {what} view ({rows}×{cols}, strides {rs}, {cs}) overruns its {len} elements"
        );
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, on the calling thread or,
/// when `parallel`, on the current rayon pool.
///
/// # Panics
///
/// If the shapes disagree, if a view reaches past its slice, or if two elements of `dst`
/// share an address (a stride of 0 or strides that interleave).
pub(crate) fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallel: bool,
) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "matmul: {m}×{n} = {}×{} · {}×{}",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols
    );
    check_in_bounds("lhs", lhs.data.len(), m, k, lhs.rs, lhs.cs);
    check_in_bounds("rhs", rhs.data.len(), k, n, rhs.rs, rhs.cs);
    check_in_bounds("dst", dst.data.len(), m, n, dst.rs, dst.cs);
    // Distinct addresses for distinct elements: along an axis of more than one element the
    // stride is positive, and with two such axes one stride steps over the other's extent.
    let (rs, cs) = (dst.rs, dst.cs);
    let distinct = match (m > 1, n > 1) {
        (false, false) => true,
        (true, false) => rs > 0,
        (false, true) => cs > 0,
        (true, true) => {
            cs > 0 && rs >= n.saturating_mul(cs) || rs > 0 && cs >= m.saturating_mul(rs)
        }
    };
    assert!(
        distinct,
        "matmul: the dst view ({m}×{n}, strides {}, {}) aliases itself",
        dst.rs, dst.cs
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = if parallel && rayon::current_num_threads() > 1 {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    // The kernel's panels run along the destination's unit-stride axis, 64 values (four
    // vectors) wide. A last panel of 16 or fewer costs about as much as a full one, and more
    // with it than as a product of its own: 196 columns (a 14×14 map) as 176 + 20 took
    // 0.42 ms where one product took 0.45 (1024 × 196 × 256), 1.07 against 1.12 (256 × 196
    // × 2304), one thread, warm; 80 as 48 + 32, 0.032 against 0.036.
    let head = match n % PANEL {
        r if dst.cs == 1 && n > PANEL && r <= SHORT_PANEL && r > 0 => n - r - SHORT_PANEL,
        _ => n,
    };
    for (j0, cols) in [(0, head), (head, n - head)] {
        if cols == 0 {
            continue;
        }
        // SAFETY: every index `i·rs + j·cs` the product reads (lhs: i < m, j < k; rhs:
        // i < k, j < n) or writes (dst: i < m, j < n) was checked above to lie inside its
        // slice, with strides that fit in an `isize`; the columns `j0..j0 + cols` are among
        // them (`j0 + cols <= n`), so offsetting `dst` and `rhs` by `j0` columns stays inside
        // too. The elements of `dst` have distinct addresses, and `dst` is borrowed mutably,
        // so it overlaps neither operand. With `read_dst` false the destination is only
        // written (alpha is ignored); otherwise dst = 1·dst + 1·lhs·rhs.
        #[allow(unsafe_code)]
        unsafe {
            gemm::gemm(
                m,
                cols,
                k,
                dst.data.as_mut_ptr().add(j0 * dst.cs),
                dst.cs as isize,
                dst.rs as isize,
                accumulate,
                lhs.data.as_ptr(),
                lhs.cs as isize,
                lhs.rs as isize,
                rhs.data.as_ptr().add(j0 * rhs.cs),
                rhs.cs as isize,
                rhs.rs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// The width of the `gemm` crate's AVX-512 kernel's panels (4 vectors of 16), along the
/// destination's unit-stride axis: for a convolution, its output positions.
pub(super) const PANEL: usize = 64;
/// The widest last panel that costs about as much as a full one: [`matmul`] computes it,
/// with 16 more columns, as a product of its own, and the convolution computes a map's
/// last positions of this few for all its images at once.
pub(super) const SHORT_PANEL: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7 + seed * 13) % 17) as f32 - 8.0) / 8.0)
            .collect()
    }

    #[test]
    fn products_of_strided_views_match_the_definition() {
        // 196 and 80 columns, and the transposed 70, end in a short panel that is a
        // product of its own.
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 7),
            (49, 64, 130),
            (70, 3, 2),
            (5, 1, 9),
            (4, 196, 33),
            (6, 80, 9),
        ] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = naive(m, n, k, &a, &b);
            // Row-major everything.
            let mut c = vec![f32::NAN; m * n];
            matmul(
                MatMut::row_major(&mut c, m, n),
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
                false,
            );
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-4, "{m}×{n}×{k}");
            }
            // The transposed problem, cᵀ = bᵀ·aᵀ, written into a window of a wider buffer
            // that already holds ones, accumulating.
            let ld = m + 3;
            let mut ct = vec![1f32; n * ld];
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            matmul(
                MatMut {
                    data: &mut ct,
                    rows: n,
                    cols: m,
                    rs: ld,
                    cs: 1,
                },
                MatRef::row_major(&bt, n, k),
                MatRef::row_major(&a, m, k).t(),
                true,
                true,
            );
            for i in 0..m {
                for j in 0..n {
                    assert!((ct[j * ld + i] - 1.0 - want[i * n + j]).abs() < 1e-4);
                }
                for j in 0..n {
                    for pad in m..ld {
                        assert_eq!(ct[j * ld + pad], 1.0);
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn a_view_past_its_slice_is_refused() {
        let a = vec![0f32; 6];
        let mut c = vec![0f32; 4];
        matmul(
            MatMut::row_major(&mut c, 2, 2),
            MatRef::row_major(&a, 2, 4),
            MatRef::row_major(&a, 4, 2),
            false,
            false,
        );
    }

    #[test]
    #[should_panic(expected = "aliases")]
    fn a_destination_that_overlaps_itself_is_refused() {
        let a = vec![0f32; 4];
        let mut c = vec![0f32; 8];
        matmul(
            MatMut {
                data: &mut c,
                rows: 2,
                cols: 2,
                rs: 1,
                cs: 1,
            },
            MatRef::row_major(&a, 2, 2),
            MatRef::row_major(&a, 2, 2),
            false,
            false,
        );
    }
}
