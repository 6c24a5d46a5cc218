//! The process's allocator, tuned for tensors that are freed and allocated again at every
//! step.
//!
//! Every candle operation allocates its output, so a forward and backward pass frees and
//! allocates the same few dozen buffers of a megabyte or more at every step. glibc's
//! `malloc` serves blocks that large with a fresh `mmap` and returns them with `munmap`
//! (above its mmap threshold, 128 KiB at first) or trims them off the top of the heap
//! when freed (above its trim threshold): either way the next step's buffer is new
//! memory, and every 4 KiB page of it faults on its first write. On this project's
//! 2-core machine the page faults were a fifth of a LeNet-5 training step; keeping freed
//! memory in the heap made LeNet-5 training 1.65× and CIFAR ResNet-20 training 1.4× as
//! fast (docs/perf.md).
//!
//! Changing the allocator is a decision for a program, not for a library: the binaries
//! of this workspace call [`keep_freed_memory`] first thing, and a program that uses
//! these crates may do the same. It costs memory: the heap keeps the peak of a step's
//! buffers (below 32 MiB each) instead of handing them back to the system.

/// Blocks up to this size come from the heap, and freed ones stay there: glibc's largest
/// mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit targets).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of the heap is handed back to the system only beyond this much.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Tells glibc's `malloc` to serve blocks below 32 MiB from the heap and to keep up to
/// 1 GiB of freed memory there, instead of returning each freed buffer to the system and
/// faulting its pages in again at the next allocation. Returns whether the allocator took
/// the settings: `false` on other C libraries and systems, where it does nothing.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes two of glibc's allocation thresholds, which it
        // reads under its own lock; it is safe to call at any time from any thread, and
        // memory already allocated is unaffected.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_takes_the_settings_and_allocation_still_works() {
        let took = super::keep_freed_memory();
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        for len in [1usize << 10, 1 << 20, 40 << 20] {
            let v = vec![1u8; len];
            assert_eq!(v.iter().map(|&b| usize::from(b)).sum::<usize>(), len);
        }
    }
}
