//! Mixing real and synthetic rows into the next training set (Gerstgrasser et al. 2024's
//! `replace` vs `accumulate`, and a fixed synthetic ratio at a fixed size). Every row keeps
//! its provenance, so the training table says where each example came from.

use didact_core::Example;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use didact_core::MixMode;

/// Take `k` rows from `pool`: a shuffled pass, repeated (a fresh shuffle each pass) when `k`
/// exceeds the pool, so every row is used ⌊k/n⌋ or ⌈k/n⌉ times.
pub fn take_cycled(pool: &[Example], k: usize, rng: &mut ChaCha8Rng) -> Vec<Example> {
    let mut out = Vec::with_capacity(k);
    if pool.is_empty() {
        return out;
    }
    while out.len() < k {
        let mut idx: Vec<usize> = (0..pool.len()).collect();
        idx.shuffle(rng);
        out.extend(idx.into_iter().take(k - out.len()).map(|i| pool[i].clone()));
    }
    out
}

/// Build the training set of a round ≥ 1. `synthetic[i]` holds the kept rows of round i+1
/// (oldest first; provenance already set). `size: None` keeps the natural size of
/// replace/accumulate (and the real size for ratio); otherwise the set is sampled to exactly
/// `size` rows.
pub fn mix(
    real: &[Example],
    synthetic: &[Vec<Example>],
    mode: MixMode,
    size: Option<usize>,
    seed: u64,
) -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let newest: &[Example] = synthetic.last().map(|v| v.as_slice()).unwrap_or(&[]);
    let mut out = match mode {
        MixMode::Replace => match size {
            None => newest.to_vec(),
            Some(n) => take_cycled(newest, n, &mut rng),
        },
        MixMode::Accumulate => {
            let all: Vec<Example> = real
                .iter()
                .chain(synthetic.iter().flatten())
                .cloned()
                .collect();
            match size {
                None => all,
                Some(n) => take_cycled(&all, n, &mut rng),
            }
        }
        MixMode::Ratio(r) => {
            let size = size.unwrap_or(real.len());
            let n_syn = if newest.is_empty() {
                0
            } else {
                (r * size as f64).round() as usize
            };
            let mut v = take_cycled(newest, n_syn, &mut rng);
            v.extend(take_cycled(real, size - n_syn, &mut rng));
            v
        }
    };
    out.shuffle(&mut rng);
    out
}

/// Share of synthetic rows in a training set.
pub fn synthetic_fraction(rows: &[Example]) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    rows.iter().filter(|e| e.provenance.is_synthetic()).count() as f64 / rows.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use didact_core::Provenance;

    fn rows(n: usize, p: Provenance) -> Vec<Example> {
        (0..n)
            .map(|i| Example {
                prompt: format!("p{i}"),
                completion: "c".into(),
                provenance: p,
            })
            .collect()
    }

    #[test]
    fn replace_keeps_only_newest_synthetic() {
        let real = rows(10, Provenance::Real);
        let syn = vec![
            rows(4, Provenance::Synthetic { round: 1 }),
            rows(6, Provenance::Synthetic { round: 2 }),
        ];
        let m = mix(&real, &syn, MixMode::Replace, None, 1);
        assert_eq!(m.len(), 6);
        assert!(
            m.iter()
                .all(|e| e.provenance == Provenance::Synthetic { round: 2 })
        );
        assert_eq!(mix(&real, &syn, MixMode::Replace, Some(9), 1).len(), 9);
    }

    #[test]
    fn accumulate_keeps_everything() {
        let real = rows(10, Provenance::Real);
        let syn = vec![
            rows(4, Provenance::Synthetic { round: 1 }),
            rows(6, Provenance::Synthetic { round: 2 }),
        ];
        let m = mix(&real, &syn, MixMode::Accumulate, None, 1);
        assert_eq!(m.len(), 20);
        assert!((synthetic_fraction(&m) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ratio_is_exact_at_fixed_size() {
        let real = rows(100, Provenance::Real);
        let syn = vec![rows(30, Provenance::Synthetic { round: 1 })];
        for r in [0.0, 0.25, 0.5, 1.0] {
            let m = mix(&real, &syn, MixMode::Ratio(r), Some(80), 3);
            assert_eq!(m.len(), 80);
            assert!((synthetic_fraction(&m) - r).abs() < 1e-12, "ratio {r}");
        }
        assert_eq!(
            mix(&real, &syn, MixMode::Ratio(0.5), Some(80), 3),
            mix(&real, &syn, MixMode::Ratio(0.5), Some(80), 3)
        );
    }
}
