//! The random stream that layers draw from during training (dropout masks).
//!
//! candle's CPU generator cannot be seeded, so a model trained with `Tensor::rand` would never
//! train the same way twice. Layers here draw from a per-thread counter-based stream
//! instead: [`manual_seed`] (named after `torch.manual_seed`) fixes it, and every draw
//! advances a counter. A trainer that calls `manual_seed(f(seed, step))` before each step
//! makes every step a pure function of `(seed, step)`, which is what makes `--resume` exact
//! without saving any generator state.
//!
//! The stream is thread-local on purpose: the forward pass of one model runs on one thread,
//! and two models trained side by side on two threads do not disturb each other.

use std::cell::Cell;

use candle_core::{Device, Result, Tensor};

use crate::procedural::{mix64, unit};

/// The seed every thread starts with, so that even an unseeded run is repeatable.
const DEFAULT_SEED: u64 = 0x5eed_c0de_0000_0001;

thread_local! {
    /// (seed, number of draws since it was set).
    static STREAM: Cell<(u64, u64)> = const { Cell::new((DEFAULT_SEED, 0)) };
}

/// Restarts this thread's stream from `seed`.
pub fn manual_seed(seed: u64) {
    STREAM.with(|s| s.set((seed, 0)));
}

/// The next key of this thread's stream: distinct for every draw after a given seed.
pub fn next_key() -> u64 {
    STREAM.with(|s| {
        let (seed, draws) = s.get();
        s.set((seed, draws + 1));
        mix64(seed ^ mix64(draws.wrapping_add(1)))
    })
}

/// `n` uniform values in `[0, 1)` from this thread's stream, as an f32 tensor of `shape`.
pub fn uniform(shape: &[usize], device: &Device) -> Result<Tensor> {
    let key = next_key();
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n as u64).map(|i| unit(key, i) as f32).collect();
    Tensor::from_vec(data, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_stream() {
        manual_seed(7);
        let a = (next_key(), next_key());
        manual_seed(7);
        let b = (next_key(), next_key());
        assert_eq!(a, b);
        assert_ne!(a.0, a.1);
        manual_seed(8);
        assert_ne!(next_key(), a.0);
    }
}
