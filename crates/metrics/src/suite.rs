//! The sample metric suite: what a round's evaluation and `didact metrics` both report about a
//! set of generated texts, with the same names and definitions. Words are whitespace words
//! (Python's `str.split()`), or — `Unit::Chars`, what runs on the arithmetic world use, whose
//! texts have no spaces — every non-space character.
//!
//! Length is counted in the same words: a tokenizer-free unit, so runs with different
//! tokenizers (character vs BPE, teacher vs student) and any JSONL file are comparable, and the
//! length and diversity numbers describe the same units. (The loop adds the model-specific
//! `gen/mean_tokens` beside it.)

use crate::{
    bigram_entropy, distinct_n, kl_real_gen, self_bleu, tail_mass, unigram_entropy, words,
};
use std::collections::BTreeMap;

/// What a word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Whitespace-separated words.
    Words,
    /// Every non-whitespace character is a word.
    Chars,
}

/// The texts in the suite's unit: unchanged for words, one character per word for chars.
pub fn in_unit(texts: &[&str], unit: Unit) -> Vec<String> {
    texts
        .iter()
        .map(|t| match unit {
            Unit::Words => t.to_string(),
            Unit::Chars => t
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(String::from)
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect()
}

/// Mean and population standard deviation (NaN, NaN when empty).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn put(m: &mut BTreeMap<String, f64>, k: &str, v: f64) {
    if v.is_finite() {
        m.insert(k.to_string(), v);
    }
}

/// The suite over `samples` (already in the unit, see [`in_unit`]), and against `reference`
/// texts (held-out real completions in a run; `--reference` for `didact metrics`):
/// `diversity/{distinct_1,distinct_2,self_bleu,unigram_entropy,bigram_entropy}`,
/// `gen/{mean_length,length_std}`, and with a reference `gen/real_mean_length`,
/// `tail/{gen_rare_share,real_rare_coverage}` and `dist/kl_real_gen`. Non-finite values are
/// left out (the tables show them as empty).
pub fn sample_suite(samples: &[&str], reference: Option<&[&str]>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    put(&mut m, "diversity/distinct_1", distinct_n(samples, 1));
    put(&mut m, "diversity/distinct_2", distinct_n(samples, 2));
    put(&mut m, "diversity/self_bleu", self_bleu(samples, 4));
    put(
        &mut m,
        "diversity/unigram_entropy",
        unigram_entropy(samples),
    );
    put(&mut m, "diversity/bigram_entropy", bigram_entropy(samples));
    let lens: Vec<f64> = samples.iter().map(|t| words(t).len() as f64).collect();
    let (mean, std) = mean_std(&lens);
    put(&mut m, "gen/mean_length", mean);
    put(&mut m, "gen/length_std", std);
    if let Some(real) = reference {
        let real_lens: Vec<f64> = real.iter().map(|t| words(t).len() as f64).collect();
        put(&mut m, "gen/real_mean_length", mean_std(&real_lens).0);
        let tail = tail_mass(samples, real, 1);
        put(&mut m, "tail/gen_rare_share", tail.gen_rare_share);
        put(&mut m, "tail/real_rare_coverage", tail.real_rare_coverage);
        put(&mut m, "dist/kl_real_gen", kl_real_gen(samples, real));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_unit_spaces_characters_and_lengths_count_them() {
        let spaced = in_unit(&["417", "5 2"], Unit::Chars);
        assert_eq!(spaced, vec!["4 1 7", "5 2"]);
        let refs: Vec<&str> = spaced.iter().map(|s| s.as_str()).collect();
        let m = sample_suite(&refs, None);
        assert_eq!(m["gen/mean_length"], 2.5);
        assert_eq!(m["gen/length_std"], 0.5);
        assert!(!m.contains_key("dist/kl_real_gen"));
    }

    #[test]
    fn reference_metrics_appear_only_with_a_reference() {
        let s = ["a b c", "a b d"];
        let r = ["a b c d e", "x y"];
        let m = sample_suite(&s, Some(&r));
        assert_eq!(m["gen/real_mean_length"], 3.5);
        assert!(m["dist/kl_real_gen"] > 0.0);
        // distinct-1: 4 unique words of 6; distinct-2: 3 unique bigrams of 4.
        assert!((m["diversity/distinct_1"] - 4.0 / 6.0).abs() < 1e-12);
        assert!((m["diversity/distinct_2"] - 3.0 / 4.0).abs() < 1e-12);
    }
}
