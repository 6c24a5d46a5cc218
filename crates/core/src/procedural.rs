//! Procedural tensors: values that are a pure function of a tensor's name and an element's
//! index, computed identically here and in `tests/parity/generate.py`.
//!
//! This is what lets the parity tests run full-size models against PyTorch without
//! committing a single weight file: the fixture records each tensor's name, shape and value
//! range, and both sides regenerate the same bits. The exact specification lives in
//! `tests/parity/README.md`; in short, for element `i` of tensor `name`:
//!
//! ```text
//! seed = fnv1a64(utf8(name))
//! z    = splitmix64_mix(seed + (i + 1) * 0x9E3779B97F4A7C15)     (mod 2^64)
//! u    = (z >> 40) * 2^-24                                         in [0, 1), exact in f32
//! x    = f32(lo + (hi - lo) * u)                                   computed in f64
//! ```
//!
//! Every operation is exact or correctly rounded IEEE arithmetic, so numpy and Rust agree to
//! the bit.

use candle_core::{DType, Device, Tensor};

use crate::Result;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a, 64-bit, over the bytes of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The finaliser of SplitMix64 (Steele, Lea and Flood 2014): a bijective 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in `[0, 1)` with 24 random bits, for element `index` of the stream `seed`.
pub fn unit(seed: u64, index: u64) -> f64 {
    let z = mix64(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)));
    (z >> 40) as f64 * (1.0 / (1u64 << 24) as f64)
}

/// The `n` values of the procedural tensor `name` with range `[lo, hi)`.
pub fn values(name: &str, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    let seed = fnv1a64(name.as_bytes());
    let span = hi - lo;
    (0..n as u64)
        .map(|i| (lo + span * unit(seed, i)) as f32)
        .collect()
}

/// The procedural tensor `name` of the given shape and range, as f32 on `device`.
pub fn tensor(name: &str, shape: &[usize], lo: f64, hi: f64, device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    Ok(Tensor::from_vec(values(name, n, lo, hi), shape, device)?)
}

/// Like [`tensor`], converted to `dtype`.
pub fn tensor_as(
    name: &str,
    shape: &[usize],
    lo: f64,
    hi: f64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    Ok(tensor(name, shape, lo, hi, device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn values_are_in_range_and_spread() {
        let v = values("features.0.weight", 10_000, -0.5, 0.25);
        assert!(v.iter().all(|&x| (-0.5..0.25).contains(&x)));
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        assert!((mean + 0.125).abs() < 0.01, "{mean}");
        assert_ne!(values("a", 4, 0.0, 1.0), values("b", 4, 0.0, 1.0));
    }

    #[test]
    fn values_match_the_python_generator_bit_for_bit() {
        // python: procedural("conv1.weight", 4, -1.0, 1.0) in tests/parity/generate.py
        let expect = [
            0.0901498794555664,
            0.49032342433929443,
            -0.9541566371917725,
            0.47239553928375244,
        ];
        let v = values("conv1.weight", 4, -1.0, 1.0);
        assert_eq!(v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(), expect);
    }
}
