//! Process-wide settings for programs that run these models on the CPU: what a library
//! must not decide for its users, but a program should. The workspace's binaries (`xtask`,
//! `convnets`) call [`configure_cpu_process`] first thing; a program that uses these crates
//! may do the same. Measured effects are in docs/perf.md.
//!
//! - **Keeping freed memory** ([`keep_freed_memory`]). Every candle operation allocates its
//!   output, so a forward and backward pass frees and allocates the same few dozen buffers
//!   of a megabyte or more at every step. glibc's `malloc` serves blocks that large with a
//!   fresh `mmap` and returns them with `munmap` (above its mmap threshold, 128 KiB at
//!   first) or trims them off the top of the heap when freed (above its trim threshold):
//!   either way the next step's buffer is new memory, and every 4 KiB page of it faults on
//!   its first write. It costs memory: the heap keeps the peak of a step's buffers (below
//!   32 MiB each) instead of handing them back to the system.
//! - **One pool of threads** ([`elementwise_on_one_thread`]). candle runs large
//!   elementwise operations on a pool of its own, beside the rayon pool that runs the
//!   convolutions and matrix products, and its workers spin for a while after each
//!   operation. With as many rayon threads as cores, the two pools fight over the cores:
//!   on two cores, CIFAR ResNet-20 training went from 423 to 502 images/s and LeNet-5 from
//!   9,500 to 11,200 when candle's pool was left out. Inference is unaffected (its
//!   elementwise work is fused into the convolutions).

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

/// The environment variable candle reads, once, for the size of its elementwise pool.
const CANDLE_NUM_THREADS: &str = "CANDLE_NUM_THREADS";

/// Runs candle's elementwise operations on the calling thread, leaving the cores to the
/// rayon pool, unless `CANDLE_NUM_THREADS` is already set (the user's choice wins). It
/// takes effect only if called before candle's first large elementwise operation.
///
/// # Safety
///
/// It sets an environment variable: no other thread may be running (and so reading the
/// environment) while it does. Call it first thing in `main`.
#[allow(unsafe_code)]
pub unsafe fn elementwise_on_one_thread() {
    if std::env::var_os(CANDLE_NUM_THREADS).is_none() {
        // SAFETY: the caller guarantees that no other thread is running.
        unsafe { std::env::set_var(CANDLE_NUM_THREADS, "1") };
    }
}

/// Both settings: [`keep_freed_memory`] and [`elementwise_on_one_thread`].
///
/// # Safety
///
/// As [`elementwise_on_one_thread`]: call it first thing in `main`, before any thread starts.
#[allow(unsafe_code)]
pub unsafe fn configure_cpu_process() {
    keep_freed_memory();
    // SAFETY: the caller's guarantee, passed on.
    unsafe { elementwise_on_one_thread() };
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
