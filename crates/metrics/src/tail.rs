//! Distribution metrics of generated text against real text, on whitespace unigrams:
//! - **bigram entropy**: −Σ p ln p over the pooled bigrams (within texts), nats.
//! - **tail mass**: a real type is *rare* when it occurs 1..=`rare_max` times in the real data.
//!   `gen_rare_share` = share of generated tokens whose type is rare in the real data;
//!   `real_rare_coverage` = share of the real data's rare types that the generated texts still
//!   produce. Model collapse shows as both falling (the tails vanish first).
//! - **KL(real ‖ generated)**: unigram distributions over the union vocabulary, each smoothed
//!   with add-½ (Jeffreys) counts so unseen types have finite cost; nats.

use crate::words;
use std::collections::HashMap;

fn unigram_counts<'a>(texts: &[&'a str]) -> HashMap<&'a str, usize> {
    let mut c = HashMap::new();
    for t in texts {
        for w in words(t) {
            *c.entry(w).or_insert(0) += 1;
        }
    }
    c
}

/// Entropy (nats) of the pooled bigram distribution; 0 when there are no bigrams.
pub fn bigram_entropy(texts: &[&str]) -> f64 {
    let mut c: HashMap<(&str, &str), usize> = HashMap::new();
    for t in texts {
        let w = words(t);
        for p in w.windows(2) {
            *c.entry((p[0], p[1])).or_insert(0) += 1;
        }
    }
    let n: usize = c.values().sum();
    if n == 0 {
        return 0.0;
    }
    // Sum in a fixed order: HashMap order varies between processes and float addition is not
    // associative, and a resumed run must reproduce the metrics bit for bit.
    let mut counts: Vec<usize> = c.into_values().collect();
    counts.sort_unstable();
    counts
        .iter()
        .map(|&k| k as f64 / n as f64)
        .map(|p| -p * p.ln())
        .sum()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailMass {
    pub gen_rare_share: f64,
    pub real_rare_coverage: f64,
}

pub fn tail_mass(generated: &[&str], real: &[&str], rare_max: usize) -> TailMass {
    let real_c = unigram_counts(real);
    let gen_c = unigram_counts(generated);
    let is_rare = |w: &str| real_c.get(w).is_some_and(|&k| k >= 1 && k <= rare_max);
    let gen_total: usize = gen_c.values().sum();
    let gen_rare: usize = gen_c
        .iter()
        .filter(|(w, _)| is_rare(w))
        .map(|(_, &k)| k)
        .sum();
    let rare_types: Vec<&&str> = real_c.keys().filter(|w| is_rare(w)).collect();
    let covered = rare_types
        .iter()
        .filter(|w| gen_c.contains_key(**w))
        .count();
    TailMass {
        gen_rare_share: if gen_total == 0 {
            0.0
        } else {
            gen_rare as f64 / gen_total as f64
        },
        real_rare_coverage: if rare_types.is_empty() {
            f64::NAN
        } else {
            covered as f64 / rare_types.len() as f64
        },
    }
}

/// KL(real ‖ generated) of add-½-smoothed unigram distributions over the union vocabulary.
pub fn kl_real_gen(generated: &[&str], real: &[&str]) -> f64 {
    let (g, r) = (unigram_counts(generated), unigram_counts(real));
    let mut vocab: Vec<&str> = g.keys().chain(r.keys()).copied().collect();
    vocab.sort_unstable();
    vocab.dedup();
    let v = vocab.len() as f64;
    let (ng, nr) = (
        g.values().sum::<usize>() as f64,
        r.values().sum::<usize>() as f64,
    );
    vocab
        .iter()
        .map(|w| {
            let p = (r.get(w).copied().unwrap_or(0) as f64 + 0.5) / (nr + 0.5 * v);
            let q = (g.get(w).copied().unwrap_or(0) as f64 + 0.5) / (ng + 0.5 * v);
            p * (p / q).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigram_entropy_by_hand() {
        // bigrams: (a,b) ×2, (b,c) ×1 → p = 2/3, 1/3
        let h = bigram_entropy(&["a b", "a b c"]);
        let want = -(2.0f64 / 3.0) * (2.0f64 / 3.0).ln() - (1.0f64 / 3.0) * (1.0f64 / 3.0).ln();
        assert!((h - want).abs() < 1e-12);
        assert_eq!(bigram_entropy(&["a", "b"]), 0.0);
    }

    #[test]
    fn tail_mass_by_hand() {
        // real counts: the 4, cat 1, dog 1, sat 2 → rare (≤1): cat, dog
        let real = ["the cat sat", "the dog sat", "the the"];
        let t = tail_mass(&["the cat", "the the the"], &real, 1);
        assert!((t.gen_rare_share - 1.0 / 5.0).abs() < 1e-12); // "cat" of 5 tokens
        assert!((t.real_rare_coverage - 0.5).abs() < 1e-12); // cat yes, dog no
        let collapsed = tail_mass(&["the the", "the"], &real, 1);
        assert_eq!(
            (collapsed.gen_rare_share, collapsed.real_rare_coverage),
            (0.0, 0.0)
        );
    }

    #[test]
    fn kl_is_zero_on_identical_and_grows_with_collapse() {
        let real = ["a b c d", "a b"];
        assert!(kl_real_gen(&real, &real).abs() < 1e-12);
        let mild = kl_real_gen(&["a b c", "a b"], &real); // d never produced
        let collapsed = kl_real_gen(&["a a a", "a a"], &real);
        assert!(collapsed > mild && mild > 0.0);
        // By hand for one case: real {a:1}, gen {b:1}; V = 2; p = (1.5, .5)/2, q = (.5, 1.5)/2.
        let k = kl_real_gen(&["b"], &["a"]);
        let want = 0.75 * (0.75f64 / 0.25).ln() + 0.25 * (0.25f64 / 0.75).ln();
        assert!((k - want).abs() < 1e-12);
    }
}
