//! Unigram entropy: −Σ p(w) ln p(w) over the word distribution of all texts (nats).

use std::collections::HashMap;

pub fn unigram_entropy(texts: &[&str]) -> f64 {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut total = 0usize;
    for t in texts {
        for w in crate::words(t) {
            *counts.entry(w).or_default() += 1;
            total += 1;
        }
    }
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    // Sum in a fixed order so the result is reproducible bit for bit.
    let mut c: Vec<usize> = counts.into_values().collect();
    c.sort_unstable();
    -c.iter()
        .map(|&k| {
            let p = k as f64 / n;
            p * p.ln()
        })
        .sum::<f64>()
}
