//! distinct-n (Li et al. 2016): |unique n-grams| / |n-grams| over the whole set of texts;
//! n-grams never cross text boundaries; a text shorter than n contributes none.

use std::collections::HashSet;

/// `(unique, total)` n-gram counts over all texts.
pub fn ngram_counts(texts: &[&str], n: usize) -> (usize, usize) {
    let mut seen: HashSet<Vec<&str>> = HashSet::new();
    let mut total = 0;
    for t in texts {
        let w = crate::words(t);
        if w.len() < n || n == 0 {
            continue;
        }
        for g in w.windows(n) {
            total += 1;
            seen.insert(g.to_vec());
        }
    }
    (seen.len(), total)
}

/// distinct-n; 0 when there are no n-grams at all.
pub fn distinct_n(texts: &[&str], n: usize) -> f64 {
    let (u, t) = ngram_counts(texts, n);
    if t == 0 { 0.0 } else { u as f64 / t as f64 }
}
