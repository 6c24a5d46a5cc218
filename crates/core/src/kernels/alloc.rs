//! Output buffers backed by transparent huge pages.
//!
//! A fresh `vec![0.0; n]` of more than 32 MiB is a new `mmap` (glibc never recycles chunks
//! that large): every 4 KiB page of it faults on first write. A batch of 16 through
//! ResNet-50's first stage writes several 51 MiB maps, and the faults cost as much as the
//! matrix products that fill them (12 k faults for each: 34 ms for a 1×1 convolution that
//! computes in 11). Where the kernel hands out transparent huge pages on request
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, the common default, or
//! `always`), asking for them before the first write makes that 26 faults.

/// Buffers smaller than this keep the allocator's pages (glibc reuses them anyway).
const MIN_BYTES: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// `vec![0.0; len]`, with `MADV_HUGEPAGE` advice on its whole 2 MiB-aligned interior when
/// it is large.
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    let mut v = vec![0f32; len];
    let bytes = std::mem::size_of_val(v.as_slice());
    if bytes >= MIN_BYTES {
        advise_huge_pages(&mut v);
    }
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(v: &mut [f32]) {
    let start = v.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(v);
    let (begin, finish) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if finish > begin {
        // SAFETY: [begin, finish) lies inside the memory `v` owns and borrows mutably here;
        // MADV_HUGEPAGE only tells the kernel how to back those pages: it never changes
        // their contents or whether they are mapped, so no Rust reference is affected. A
        // failure (no THP support) leaves the memory as it was, so the result is ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(
                begin as *mut libc::c_void,
                finish - begin,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &mut [f32]) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_buffers_are_zeroed_and_writable() {
        for len in [0, 1, 1000, (MIN_BYTES / 4) + 12_345, 3 * HUGE_PAGE] {
            let mut v = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
            for (i, x) in v.iter_mut().enumerate().step_by(997) {
                *x = i as f32;
            }
            assert!(
                v.iter()
                    .enumerate()
                    .step_by(997)
                    .all(|(i, &x)| x == i as f32)
            );
        }
    }
}
