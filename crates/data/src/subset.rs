//! Quick partial runs: `n` examples spread evenly over a set, the one rule every subset of
//! the workspace follows (`--limit` of an evaluation, `--limit` of a training).

/// The indices of `n` examples spread evenly over a set of `len`, in order: `⌊k · len / n⌋`
/// for each `k < n`, or every index when `n ≥ len`. A subset of a set sorted by class (a
/// class-folder layout) sees every part of it, where the first `n` would be a few classes.
pub fn evenly_spaced(len: usize, n: usize) -> impl Iterator<Item = usize> {
    let n = n.min(len);
    (0..n).map(move |k| k * len / n)
}

/// The `record`-byte records of `bytes` at `picked`, concatenated.
pub(crate) fn gather(bytes: &[u8], record: usize, picked: &[usize]) -> Vec<u8> {
    picked
        .iter()
        .flat_map(|&i| &bytes[i * record..(i + 1) * record])
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::evenly_spaced;

    fn picked(len: usize, n: usize) -> Vec<usize> {
        evenly_spaced(len, n).collect()
    }

    #[test]
    fn n_indices_spread_over_the_set_in_order() {
        assert_eq!(picked(10, 3), [0, 3, 6]);
        assert_eq!(picked(10, 4), [0, 2, 5, 7]);
        assert_eq!(picked(60_000, 2), [0, 30_000]);
        // A set sorted by class, 100 images per class: one image of each class.
        let classes: Vec<usize> = evenly_spaced(1000, 10).map(|i| i / 100).collect();
        assert_eq!(classes, (0..10).collect::<Vec<_>>());
        for (len, n) in [(7, 3), (50_000, 999), (10, 9)] {
            let p = picked(len, n);
            assert_eq!(p.len(), n);
            assert!(p.windows(2).all(|w| w[0] < w[1]) && p[n - 1] < len, "{p:?}");
        }
        // Asking for all of it, or more, is all of it; none is none.
        assert_eq!(picked(5, 5), [0, 1, 2, 3, 4]);
        assert_eq!(picked(5, 9), [0, 1, 2, 3, 4]);
        assert!(picked(5, 0).is_empty());
        assert!(picked(0, 3).is_empty());
    }
}
