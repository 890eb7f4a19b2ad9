//! Text-metric speed at the sizes issue 6 names, on Tiny Shakespeare lines (≥ 3 words):
//! ROUGE-L novelty of 10,000 candidates against a 10,000-instruction pool (exact decision,
//! threshold 0.7, `didact_synth::self_instruct::Pool`; and the plain all-pairs scan), and
//! Self-BLEU-4 of 10,000 samples (`didact_metrics::self_bleu`). Prints one JSON object;
//! `benches/reference/text_metrics_reference.py` times rouge-score and nltk on the same lines.
//!
//! Usage: cargo run --release -p didact-benches --bin text_metrics [-- PATH_TO_input.txt]

use didact_metrics::rouge::{rouge_l_tokens, rouge_tokens};
use didact_synth::self_instruct::Pool;
use rayon::prelude::*;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/tinyshakespeare/input.txt"
        )
        .into()
    });
    let text = std::fs::read_to_string(&path).expect("Tiny Shakespeare input.txt");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.split_whitespace().count() >= 3)
        .collect();
    assert!(lines.len() >= 20_000, "need 20,000 lines");
    let (pool_lines, cands) = (&lines[..10_000], &lines[10_000..20_000]);

    let t = Instant::now();
    let pool = Pool::new(pool_lines);
    let rejected = cands
        .iter()
        .filter(|c| pool.too_similar(&rouge_tokens(c), 0.7))
        .count();
    let novelty_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let pool_tok: Vec<Vec<String>> = pool_lines.iter().map(|l| rouge_tokens(l)).collect();
    let rejected_plain = cands
        .par_iter()
        .filter(|c| {
            let ct = rouge_tokens(c);
            pool_tok.iter().any(|p| rouge_l_tokens(p, &ct).f > 0.7)
        })
        .count();
    let plain_s = t.elapsed().as_secs_f64();
    assert_eq!(
        rejected, rejected_plain,
        "the fast scan must decide exactly as the plain one"
    );

    let t = Instant::now();
    let sb = didact_metrics::self_bleu(&lines[..10_000], 4);
    let self_bleu_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "threads": rayon::current_num_threads(),
            "novelty_10k_x_10k_s": novelty_s,
            "novelty_plain_all_pairs_s": plain_s,
            "rejected": rejected,
            "self_bleu_10k_s": self_bleu_s,
            "self_bleu_10k": sb,
        })
    );
}
