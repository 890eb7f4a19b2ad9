//! Best-versus-worst preference pairs from n scored samples per prompt (the self-rewarding /
//! iterative-DPO recipe): chosen = the highest score, rejected = the lowest, kept when the gap
//! is at least `min_gap` and the two texts differ. Every sample with the score takes part,
//! whether or not a filter dropped it — a wrong answer is exactly what a rejected side is.

use didact_core::{Pair, Sample};
use std::collections::HashMap;

/// What pair selection saw.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairStats {
    /// Prompts with at least two scored samples.
    pub prompts: usize,
    pub pairs: usize,
}

/// Pairs from `samples` ranked by `scores[key]`, in order of each prompt's first sample. Ties
/// keep the earliest sample as chosen and the latest as rejected.
pub fn select_pairs(
    samples: &[Sample],
    key: &str,
    min_gap: f64,
    round: u32,
) -> (Vec<Pair>, PairStats) {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<(&Sample, f64)>> = HashMap::new();
    for s in samples {
        let Some(&score) = s.scores.get(key) else {
            continue;
        };
        if !score.is_finite() {
            continue;
        }
        let g = groups.entry(s.prompt.as_str()).or_default();
        if g.is_empty() {
            order.push(s.prompt.as_str());
        }
        g.push((s, score));
    }
    let mut stats = PairStats::default();
    let mut pairs = Vec::new();
    for prompt in order {
        let g = &groups[prompt];
        if g.len() < 2 {
            continue;
        }
        stats.prompts += 1;
        let best = g.iter().fold(g[0], |a, &b| if b.1 > a.1 { b } else { a });
        let worst = g.iter().fold(g[0], |a, &b| if b.1 <= a.1 { b } else { a });
        if best.1 - worst.1 < min_gap
            || best.1 <= worst.1
            || best.0.completion == worst.0.completion
        {
            continue;
        }
        pairs.push(Pair {
            id: format!("r{round}-p{}", pairs.len()),
            round,
            prompt: prompt.to_string(),
            chosen: best.0.completion.clone(),
            rejected: worst.0.completion.clone(),
            score_chosen: best.1,
            score_rejected: worst.1,
            ref_chosen: f64::NAN,
            ref_rejected: f64::NAN,
        });
    }
    stats.pairs = pairs.len();
    (pairs, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(prompt: &str, completion: &str, score: Option<f64>) -> Sample {
        Sample {
            id: String::new(),
            round: 1,
            prompt: prompt.into(),
            completion: completion.into(),
            n_tokens: completion.len(),
            scores: score
                .map(|x| BTreeMap::from([("verifier/correct".to_string(), x)]))
                .unwrap_or_default(),
            dropped: None,
        }
    }

    #[test]
    fn best_against_worst_with_a_gap() {
        let samples = vec![
            s("1+1=", "3", Some(0.0)),
            s("1+1=", "2", Some(1.0)),
            s("2+2=", "4", Some(1.0)),
            s("2+2=", "4", Some(1.0)), // no gap: no pair
            s("3+3=", "6", Some(1.0)),
            s("3+3=", "x", None), // unscored: ignored, so one sample only
            s("5+5=", "11", Some(0.0)),
            s("5+5=", "10", Some(1.0)),
            s("5+5=", "12", Some(0.0)),
        ];
        let (pairs, stats) = select_pairs(&samples, "verifier/correct", 0.5, 1);
        assert_eq!(
            stats,
            PairStats {
                prompts: 3,
                pairs: 2
            }
        );
        assert_eq!(
            (pairs[0].chosen.as_str(), pairs[0].rejected.as_str()),
            ("2", "3")
        );
        assert_eq!(
            (pairs[1].chosen.as_str(), pairs[1].rejected.as_str()),
            ("10", "12")
        );
        assert_eq!((pairs[1].score_chosen, pairs[1].score_rejected), (1.0, 0.0));
        assert!(pairs[0].ref_chosen.is_nan());
        let (none, _) = select_pairs(&samples, "verifier/correct", 1.5, 1);
        assert!(none.is_empty());
    }
}
