//! A small deterministic generator for shuffling and augmentation.
//!
//! Training must replay bit for bit after `--resume`, so every random decision is a pure
//! function of `(seed, epoch)` or `(seed, step)`: a generator is created for each, never
//! carried along, and there is no generator state to save. SplitMix64 is used for its
//! simplicity and its stability across platforms and crate versions.

use convnets_core::procedural::mix64;

/// SplitMix64 (Steele, Lea and Flood 2014).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// Distinct streams derived from one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The order of the examples in an epoch.
    Shuffle,
    /// Augmentations of a training batch.
    Augment,
    /// Dropout masks of a training step.
    Dropout,
    /// Parameter initialisation.
    Init,
}

impl Rng {
    /// A generator for `stream` at position `index` (epoch or step) of the run seeded `seed`.
    pub fn derive(seed: u64, stream: Stream, index: u64) -> Self {
        let tag = match stream {
            Stream::Shuffle => 0x5348_5546,
            Stream::Augment => 0x4155_474d,
            Stream::Dropout => 0x4452_4f50,
            Stream::Init => 0x494e_4954,
        };
        Self {
            state: mix64(mix64(seed ^ tag).wrapping_add(index)),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift with rejection.
        loop {
            let x = self.next_u64();
            let m = u128::from(x) * u128::from(n);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_repeatable_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::derive(1, Stream::Shuffle, 0).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Rng::derive(1, Stream::Shuffle, 0);
        let mut y = Rng::derive(1, Stream::Shuffle, 1);
        let mut z = Rng::derive(1, Stream::Augment, 0);
        let (x, y, z) = (x.next_u64(), y.next_u64(), z.next_u64());
        assert!(x != y && x != z && y != z);
    }

    #[test]
    fn shuffle_is_a_permutation_and_below_is_uniform() {
        let mut v: Vec<usize> = (0..1000).collect();
        Rng::derive(7, Stream::Shuffle, 3).shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(v, sorted);
        let mut rng = Rng::derive(7, Stream::Augment, 0);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }
}
