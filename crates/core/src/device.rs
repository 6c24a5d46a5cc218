//! The one way to choose where a model runs: `cpu`, `cuda` or `cuda:N`.
//!
//! Binaries take a `--device` option parsed by [`parse`]; a `cuda` device in a build without
//! the `cuda` feature is an error that says how to get one, not a silent fallback to CPU.

use candle_core::Device;

use crate::{Error, Result};

/// Parses `cpu`, `cuda` (device 0) or `cuda:N` into a candle [`Device`].
pub fn parse(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("cpu") {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.split_once(':') {
        None if spec.eq_ignore_ascii_case("cuda") => 0,
        Some((kind, n)) if kind.eq_ignore_ascii_case("cuda") => {
            n.parse::<usize>().map_err(|_| {
                Error::Config(format!(
                    "device `{spec}`: `{n}` is not a CUDA device number"
                ))
            })?
        }
        _ => {
            return Err(Error::Config(format!(
                "device `{spec}`: expected `cpu`, `cuda` or `cuda:N`"
            )));
        }
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::Config(format!(
            "device `{spec}`: this binary was built without CUDA; rebuild with `--features cuda`"
        )));
    }
    Ok(Device::new_cuda(ordinal)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses() {
        assert!(parse("cpu").unwrap().is_cpu());
        assert!(parse(" CPU ").unwrap().is_cpu());
    }

    #[test]
    fn malformed_specs_are_refused() {
        for spec in ["gpu", "cuda:x", "cuda:", "metal:0", ""] {
            let err = parse(spec).unwrap_err().to_string();
            assert!(err.contains(spec.trim()), "{err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let err = parse("cuda:1").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
