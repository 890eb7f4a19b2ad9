//! didact-metrics: pure functions from texts (or losses) to numbers. Tokens are
//! whitespace-separated words (`str.split()`), as in ../shared/fixtures/text_metrics.
//! No burn, no polars, no I/O.

pub mod detector;
pub mod distinct;
pub mod entropy;
pub mod rouge;
pub mod self_bleu;
pub mod suite;
pub mod tail;

pub use distinct::{distinct_n, ngram_counts};
pub use entropy::unigram_entropy;
pub use rouge::{RougeL, novelty, rouge_l, rouge_tokens};
pub use self_bleu::self_bleu;
pub use suite::{Unit, in_unit, sample_suite};
pub use tail::{TailMass, bigram_entropy, kl_real_gen, tail_mass};

/// Whitespace tokenization (Python's `str.split()`).
pub fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// Perplexity from a mean negative log-likelihood in nats.
pub fn perplexity(mean_nll: f64) -> f64 {
    mean_nll.exp()
}
