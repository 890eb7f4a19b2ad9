//! Self-BLEU (Zhu et al. 2018, Texygen): the mean over texts i of NLTK's
//! `sentence_bleu(references = every other text, hypothesis = text i,
//! weights = (1/N,)*N, smoothing_function = SmoothingFunction().method1)` — exactly, not a
//! sample. Instead of comparing each text with every other one (quadratic), each n-gram keeps
//! its largest and second-largest per-text count and which text holds the largest, so "the max
//! count over all references except i" is a lookup: O(total n-grams) for the whole set.
//! Lengths likewise: the closest reference length comes from a sorted multiset of lengths.

use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Copy)]
struct Top2 {
    max1: u32,
    who1: usize,
    max2: u32,
}

/// Self-BLEU-N of `texts` (N = `max_n`, uniform weights). 0 for fewer than 2 texts.
pub fn self_bleu(texts: &[&str], max_n: usize) -> f64 {
    let per = self_bleu_per_text(texts, max_n);
    if per.is_empty() {
        return 0.0;
    }
    per.iter().sum::<f64>() / per.len() as f64
}

/// The per-text terms of [`self_bleu`].
pub fn self_bleu_per_text(texts: &[&str], max_n: usize) -> Vec<f64> {
    let toks: Vec<Vec<&str>> = texts.iter().map(|t| crate::words(t)).collect();
    if toks.len() < 2 || max_n == 0 {
        return vec![];
    }
    // Per n: per-text n-gram counts, and the top-2 table over texts.
    let mut counts: Vec<Vec<HashMap<&[&str], u32>>> = Vec::with_capacity(max_n);
    let mut tops: Vec<HashMap<&[&str], Top2>> = Vec::with_capacity(max_n);
    for n in 1..=max_n {
        let mut per_text = Vec::with_capacity(toks.len());
        let mut top: HashMap<&[&str], Top2> = HashMap::new();
        for (i, w) in toks.iter().enumerate() {
            let mut c: HashMap<&[&str], u32> = HashMap::new();
            if w.len() >= n {
                for g in w.windows(n) {
                    *c.entry(g).or_default() += 1;
                }
            }
            for (&g, &k) in &c {
                let e = top.entry(g).or_insert(Top2 {
                    max1: 0,
                    who1: usize::MAX,
                    max2: 0,
                });
                if k > e.max1 {
                    e.max2 = e.max1;
                    e.max1 = k;
                    e.who1 = i;
                } else if k > e.max2 {
                    e.max2 = k;
                }
            }
            per_text.push(c);
        }
        counts.push(per_text);
        tops.push(top);
    }
    let mut lens: BTreeMap<usize, usize> = BTreeMap::new();
    for w in &toks {
        *lens.entry(w.len()).or_default() += 1;
    }
    let weight = 1.0 / max_n as f64;
    let mut out = Vec::with_capacity(toks.len());
    for (i, w) in toks.iter().enumerate() {
        let hyp_len = w.len();
        let mut num = vec![0u64; max_n];
        let mut den = vec![0u64; max_n];
        for n in 0..max_n {
            let mut total = 0u64;
            let mut clipped = 0u64;
            for (g, &k) in &counts[n][i] {
                total += k as u64;
                let t = tops[n][g];
                let max_ref = if t.who1 == i { t.max2 } else { t.max1 };
                clipped += k.min(max_ref) as u64;
            }
            num[n] = clipped;
            den[n] = total.max(1);
        }
        let ref_len = closest_ref_length(&mut lens, hyp_len);
        out.push(bleu_from_counts(&num, &den, hyp_len, ref_len, weight));
    }
    out
}

/// NLTK `closest_ref_length` over all lengths but one instance of `hyp_len` (the hypothesis
/// itself): the reference length nearest to `hyp_len`, the shorter one on a tie.
fn closest_ref_length(lens: &mut BTreeMap<usize, usize>, hyp_len: usize) -> usize {
    let own = lens.get_mut(&hyp_len).expect("own length present");
    *own -= 1;
    let below = lens
        .range(..=hyp_len)
        .rev()
        .find(|(_, c)| **c > 0)
        .map(|(l, _)| *l);
    let above = lens
        .range(hyp_len..)
        .find(|(_, c)| **c > 0)
        .map(|(l, _)| *l);
    *lens.get_mut(&hyp_len).expect("own length present") += 1;
    match (below, above) {
        (Some(b), Some(a)) => {
            if hyp_len - b <= a - hyp_len {
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        (None, None) => 0,
    }
}

/// NLTK `corpus_bleu` for one hypothesis with smoothing method1 (epsilon 0.1).
fn bleu_from_counts(num: &[u64], den: &[u64], hyp_len: usize, ref_len: usize, weight: f64) -> f64 {
    if num[0] == 0 {
        return 0.0;
    }
    let bp = if hyp_len > ref_len {
        1.0
    } else if hyp_len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    };
    let s: f64 = num
        .iter()
        .zip(den)
        .map(|(&n, &d)| {
            let p = if n == 0 {
                0.1 / d as f64
            } else {
                n as f64 / d as f64
            };
            weight * p.ln()
        })
        .sum();
    bp * s.exp()
}
