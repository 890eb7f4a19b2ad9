//! The mix stage: the round's training set from the real rows and the synthetic pool (every
//! earlier round's kept samples, with their provenance): `replace`, `accumulate` or `ratio`.
//! Round 0 trains on the real rows. Stats: `data/train_rows`, `data/synthetic_fraction`.

use didact_core::{Example, Metrics, Provenance, Sample};
use didact_data::{mix, synthetic_fraction};
use didact_recipe::MixPlan;

/// Kept samples of a scored round as training rows with synthetic provenance.
pub fn kept_examples(samples: &[Sample]) -> Vec<Example> {
    samples
        .iter()
        .filter(|s| s.dropped.is_none())
        .map(|s| Example {
            prompt: s.prompt.clone(),
            completion: s.completion.clone(),
            provenance: Provenance::Synthetic { round: s.round },
        })
        .collect()
}

/// The training rows of a round: `pool[i]` = round i + 1's kept rows (empty in round 0).
pub fn run(real: &[Example], pool: &[Vec<Example>], plan: &MixPlan, seed: u64) -> Vec<Example> {
    if pool.is_empty() {
        return real.to_vec();
    }
    mix(real, pool, plan.mode, plan.size, seed)
}

pub fn stats(rows: &[Example]) -> Metrics {
    let mut m = Metrics::new();
    m.insert("data/train_rows".into(), rows.len() as f64);
    m.insert("data/synthetic_fraction".into(), synthetic_fraction(rows));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use didact_core::MixMode;

    #[test]
    fn round_zero_is_real_and_later_rounds_follow_the_mode() {
        let real: Vec<Example> = (0..4)
            .map(|i| Example::real(format!("{i}+0="), i.to_string()))
            .collect();
        let syn = vec![Example {
            prompt: "9+0=".into(),
            completion: "9".into(),
            provenance: Provenance::Synthetic { round: 1 },
        }];
        let plan = |mode| MixPlan { mode, size: None };
        assert_eq!(run(&real, &[], &plan(MixMode::Replace), 1), real);
        let acc = run(
            &real,
            std::slice::from_ref(&syn),
            &plan(MixMode::Accumulate),
            1,
        );
        assert_eq!(acc.len(), 5);
        assert_eq!(stats(&acc)["data/synthetic_fraction"], 0.2);
        let rep = run(
            &real,
            std::slice::from_ref(&syn),
            &plan(MixMode::Replace),
            1,
        );
        assert_eq!(rep, syn);
    }
}
