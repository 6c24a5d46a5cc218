//! Option values the tasks' parsers share.

use anyhow::{Result, bail};

/// A count that must be at least 1 (`--epochs`, `--batch-size`, `--limit`, `--scales`' each
/// side, …): zero epochs train nothing, a batch of zero divides the data into no steps, and
/// a limit of zero evaluates nothing. The error names the option and the value given.
pub fn positive<T>(option: &str, value: &str) -> Result<T>
where
    T: std::str::FromStr + PartialEq + From<u8>,
{
    match value.parse::<T>() {
        Ok(n) if n != T::from(0) => Ok(n),
        _ => bail!("{option} takes a whole number of at least 1, not `{value}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_counts_and_what_is_refused() {
        assert_eq!(positive::<usize>("--limit", "12").unwrap(), 12);
        assert_eq!(positive::<u64>("--epochs", "1").unwrap(), 1);
        for bad in ["0", "-1", "x", "", "1.5"] {
            let err = positive::<usize>("--limit", bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--limit takes a whole number of at least 1, not `{bad}`")
            );
        }
    }
}
