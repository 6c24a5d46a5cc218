//! Output buffers backed by transparent huge pages.
//!
//! A fresh `vec![0.0; n]` of more than 32 MiB is a new `mmap` (glibc never recycles chunks
//! that large): every 4 KiB page of it faults on first write. A batch of 16 through
//! ResNet-50's first stage writes several 51 MiB maps, and the faults cost as much as the
//! matrix products that fill them (12 k faults for each: 34 ms for a 1×1 convolution that
//! computes in 11). Where the kernel hands out transparent huge pages on request
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, the common default, or
//! `always`), asking for them before the first write makes that 26 faults.
//!
//! A convolution's output is written whole by its kernel, so zeroing it first is a pass
//! over memory for nothing: [`written_by`] hands the kernel the allocation as it comes.

/// Buffers smaller than this keep the allocator's pages (glibc reuses them anyway).
const MIN_BYTES: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// `vec![0.0; len]`, with `MADV_HUGEPAGE` advice on its whole 2 MiB-aligned interior when
/// it is large.
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    let v = vec![0f32; len];
    advise_huge_pages(v.as_ptr() as usize, std::mem::size_of_val(v.as_slice()));
    v
}

/// `len` values, all written by `write` before anything reads them: the allocation
/// without `vec![0.0; len]`'s pass over memory. Zeroing ResNet-50's convolution outputs
/// took 2.4 % of its inference time; leaving it out gave 3 % (A/B, batch 16).
///
/// In debug builds and in this crate's tests `write` gets a slice of NaN instead, so that an
/// element a kernel leaves unwritten fails the comparison with the reference.
///
/// # Safety
///
/// `write` writes every element of its slice before it reads that element, and reads no
/// element it has not written; until then the slice holds uninitialised memory. (candle's
/// own element-wise kernels hand out their outputs the same way.)
#[allow(unsafe_code)]
pub(crate) unsafe fn written_by(len: usize, write: impl FnOnce(&mut [f32])) -> Vec<f32> {
    if cfg!(any(test, debug_assertions)) {
        let mut v = vec![f32::NAN; len];
        write(&mut v);
        return v;
    }
    let mut v = Vec::<f32>::with_capacity(len);
    advise_huge_pages(v.as_ptr() as usize, len * std::mem::size_of::<f32>());
    // SAFETY: the capacity holds `len` values, aligned, owned by `v` and borrowed by
    // nothing else while `write` runs; `write` initialises all of them before reading any
    // (the caller's promise), so setting the length afterwards exposes only written
    // values. If `write` panics, `v` is dropped with length 0.
    unsafe {
        write(std::slice::from_raw_parts_mut(v.as_mut_ptr(), len));
        v.set_len(len);
    }
    v
}

/// Advises huge pages for the `bytes` from address `start`, an allocation this thread owns
/// and has not handed out, if they are [`MIN_BYTES`] or more.
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: usize, bytes: usize) {
    if bytes < MIN_BYTES {
        return;
    }
    let end = start + bytes;
    let (begin, finish) = (
        start.next_multiple_of(HUGE_PAGE),
        end / HUGE_PAGE * HUGE_PAGE,
    );
    if finish > begin {
        // SAFETY: [begin, finish) lies inside an allocation the caller owns and lends to no one;
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
fn advise_huge_pages(_: usize, _: usize) {}

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
