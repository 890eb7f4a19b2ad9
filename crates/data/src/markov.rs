//! The built-in Markov-source world: text from a known order-2 character Markov chain, so the
//! true probability of any string is computable exactly. This is the instrument behind the
//! `truth/*` metrics: how far a model's distribution has drifted from the real one, as a number.
//!
//! Definition (fixed by `seed`, independent of the run seed):
//! - symbols: the letters of [`LETTERS`] and a space; after them an end-of-sentence outcome;
//! - context: the previous two symbols, with a start marker before the sentence begins;
//! - `p(end | context) = end_prob` (0 in the two start contexts: no empty sentences and no
//!   one-character sentences); the rest `1 − end_prob` is spread over the symbols with Zipf
//!   weights `1 / rank^zipf` on a per-context seeded permutation, so every symbol has nonzero
//!   probability in every context (every string has finite log-probability) and each context
//!   has a heavy-tailed set of rare continuations — the tails collapse erodes first.
//!
//! A sentence is sampled until the end outcome or `max_chars` symbols (then cut there).
//! The log-probability of a continuation given a prefix sums the transitions after the
//! prefix, plus the end outcome when the continuation ended.

use didact_core::Example;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The letters of the source's alphabet (a space is added).
pub const LETTERS: &str = "aeiklmnorst";

/// Seed of the fixed held-out set (shared by every run of the same world).
const EVAL_SEED: u64 = 0x3a7c_0e1d;

#[derive(Debug, Clone, PartialEq)]
pub struct MarkovWorld {
    symbols: Vec<char>,
    /// `probs[ctx][k]`: probability of symbol k (k < n) or the end (k = n) after context `ctx`.
    probs: Vec<Vec<f64>>,
    pub max_chars: usize,
    pub train_size: usize,
}

/// Log-probability of a string under the source, and whether every symbol was in the alphabet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// ln p(continuation | prefix); `-inf` when a symbol is outside the alphabet.
    pub logp: f64,
    /// Outcomes scored (symbols, plus the end when it ended).
    pub n: usize,
}

impl MarkovWorld {
    pub fn new(seed: u64, zipf: f64, end_prob: f64, max_chars: usize, train_size: usize) -> Self {
        let mut symbols: Vec<char> = LETTERS.chars().collect();
        symbols.push(' ');
        let n = symbols.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let weights: Vec<f64> = (1..=n).map(|r| (r as f64).powf(-zipf)).collect();
        let total: f64 = weights.iter().sum();
        let n_ctx = (n + 1) * (n + 1);
        let probs = (0..n_ctx)
            .map(|ctx| {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let start = ctx / (n + 1) == n || ctx % (n + 1) == n;
                let end = if start { 0.0 } else { end_prob };
                let mut p = vec![0.0; n + 1];
                for (rank, &k) in order.iter().enumerate() {
                    p[k] = (1.0 - end) * weights[rank] / total;
                }
                p[n] = end;
                p
            })
            .collect();
        MarkovWorld {
            symbols,
            probs,
            max_chars,
            train_size,
        }
    }

    /// Every character a sentence can contain.
    pub fn alphabet(&self) -> String {
        self.symbols.iter().collect()
    }

    fn n(&self) -> usize {
        self.symbols.len()
    }

    /// Context index of the two previous symbols (`None` = start marker).
    fn ctx(&self, a: Option<usize>, b: Option<usize>) -> usize {
        let n = self.n();
        a.unwrap_or(n) * (n + 1) + b.unwrap_or(n)
    }

    fn index(&self, c: char) -> Option<usize> {
        self.symbols.iter().position(|&s| s == c)
    }

    /// One sentence.
    pub fn sentence(&self, rng: &mut impl Rng) -> String {
        self.continuation("", rng)
            .map(|(s, _)| s)
            .unwrap_or_default()
    }

    /// A sentence that starts with `prefix`, drawn from the source: the characters after the
    /// prefix, and whether the end outcome (rather than `max_chars`) ended it. `None` when the
    /// prefix has a character outside the alphabet.
    pub fn continuation(&self, prefix: &str, rng: &mut impl Rng) -> Option<(String, bool)> {
        let mut hist = Vec::new();
        for c in prefix.chars() {
            hist.push(self.index(c)?);
        }
        let mut out = String::new();
        while hist.len() < self.max_chars {
            let p = self.next(&hist);
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut k = p.len() - 1;
            for (i, &pi) in p.iter().enumerate() {
                acc += pi;
                if u < acc {
                    k = i;
                    break;
                }
            }
            if k == self.n() {
                return Some((out, true));
            }
            out.push(self.symbols[k]);
            hist.push(k);
        }
        Some((out, false))
    }

    /// The true distribution of what follows the symbols `hist` (indices into [`Self::symbols`]):
    /// one probability per symbol, then the end outcome's. After `max_chars` symbols a sentence
    /// is cut, so the end is certain there.
    pub fn next(&self, hist: &[usize]) -> Vec<f64> {
        let n = self.n();
        if hist.len() >= self.max_chars {
            let mut p = vec![0.0; n + 1];
            p[n] = 1.0;
            return p;
        }
        let l = hist.len();
        let a = (l >= 2).then(|| hist[l - 2]);
        let b = (l >= 1).then(|| hist[l - 1]);
        self.probs[self.ctx(a, b)].clone()
    }

    /// The source's symbols, in the order [`Self::next`] gives their probabilities.
    pub fn symbols(&self) -> &[char] {
        &self.symbols
    }

    fn sentences(&self, n: usize, seed: u64) -> Vec<Example> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| Example::real(String::new(), self.sentence(&mut rng)))
            .collect()
    }

    /// `train_size` real training sentences (seeded by the run).
    pub fn train_set(&self, seed: u64) -> Vec<Example> {
        self.sentences(self.train_size, seed)
    }

    /// `n` sentences drawn with `seed` (more real data, e.g. a teacher's own).
    pub fn sample_set(&self, n: usize, seed: u64) -> Vec<Example> {
        self.sentences(n, seed)
    }

    /// Fixed held-out sentences (the same for every run of this world).
    pub fn eval_set(&self, n: usize) -> Vec<Example> {
        self.sentences(n, EVAL_SEED)
    }

    /// ln p(`continuation` | `prefix`) under the source; `ended` adds the end outcome.
    pub fn score(&self, prefix: &str, continuation: &str, ended: bool) -> Scored {
        let mut hist: Vec<Option<usize>> = vec![None, None];
        for c in prefix.chars() {
            match self.index(c) {
                Some(k) => hist.push(Some(k)),
                None => {
                    return Scored {
                        logp: f64::NEG_INFINITY,
                        n: 0,
                    };
                }
            }
        }
        let mut logp = 0.0;
        let mut n = 0;
        for c in continuation.chars() {
            let Some(k) = self.index(c) else {
                return Scored {
                    logp: f64::NEG_INFINITY,
                    n,
                };
            };
            let l = hist.len();
            logp += self.probs[self.ctx(hist[l - 2], hist[l - 1])][k].ln();
            hist.push(Some(k));
            n += 1;
        }
        if ended {
            let l = hist.len();
            logp += self.probs[self.ctx(hist[l - 2], hist[l - 1])][self.n()].ln();
            n += 1;
        }
        Scored { logp, n }
    }

    /// The source's entropy rate estimate: mean true NLL per outcome of `rows` (nats).
    pub fn nll_per_outcome(&self, rows: &[Example]) -> f64 {
        let (mut nll, mut n) = (0.0, 0usize);
        for e in rows {
            let ended = e.completion.chars().count() < self.max_chars;
            let s = self.score(&e.prompt, &e.completion, ended);
            nll -= s.logp;
            n += s.n;
        }
        nll / n.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> MarkovWorld {
        MarkovWorld::new(1, 1.5, 0.05, 64, 100)
    }

    #[test]
    fn rows_of_the_transition_table_are_distributions() {
        let w = world();
        for (ctx, p) in w.probs.iter().enumerate() {
            let s: f64 = p.iter().sum();
            assert!((s - 1.0).abs() < 1e-12, "context {ctx} sums to {s}");
            assert!(p[..w.n()].iter().all(|&x| x > 0.0));
        }
    }

    #[test]
    fn score_is_the_product_of_the_transitions() {
        let w = world();
        let n = w.n();
        let (a, e) = (w.index('a').unwrap(), w.index('e').unwrap());
        let expected = w.probs[w.ctx(None, None)][a].ln()
            + w.probs[w.ctx(None, Some(a))][e].ln()
            + w.probs[w.ctx(Some(a), Some(e))][n].ln();
        let s = w.score("", "ae", true);
        assert!((s.logp - expected).abs() < 1e-12);
        assert_eq!(s.n, 3);
        // Splitting the string between prefix and continuation is the chain rule.
        let split = w.score("a", "e", true);
        assert!((split.logp - (expected - w.probs[w.ctx(None, None)][a].ln())).abs() < 1e-12);
        assert_eq!(w.score("", "aZ", false).logp, f64::NEG_INFINITY);
    }

    #[test]
    fn sampled_sentences_have_the_source_entropy() {
        // Monte-Carlo: the mean of −ln p over samples is the entropy, and the empirical
        // frequency of a sentence matches its probability for the shortest ones.
        let w = MarkovWorld::new(3, 1.5, 0.3, 64, 20_000);
        let rows = w.train_set(5);
        let mut counts = std::collections::HashMap::new();
        for e in &rows {
            *counts.entry(e.completion.clone()).or_insert(0usize) += 1;
        }
        let (top, k) = counts.iter().max_by_key(|(_, k)| **k).unwrap();
        let p = w.score("", top, true).logp.exp();
        let freq = *k as f64 / rows.len() as f64;
        assert!(
            (freq - p).abs() < 4.0 * (p / rows.len() as f64).sqrt() + 1e-3,
            "{freq} vs {p}"
        );
        assert!(rows.iter().all(|e| e.completion.chars().count() >= 2));
    }

    #[test]
    fn held_out_is_fixed_and_train_depends_on_the_seed() {
        let w = world();
        assert_eq!(w.eval_set(10), w.eval_set(10));
        assert_ne!(w.train_set(1), w.train_set(2));
    }
}
