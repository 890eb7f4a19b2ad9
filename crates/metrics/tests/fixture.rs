//! Parity with ../shared/fixtures/text_metrics/text_metrics.json (nltk 3.10.4 Self-BLEU with
//! SmoothingFunction().method1, distinct-n and entropy on 12 real GSM8K questions; exact to
//! 1e-12 for distinct/entropy, 1e-9 for BLEU, as the fixture README says).

use didact_metrics::{
    distinct_n, ngram_counts, self_bleu, self_bleu::self_bleu_per_text, unigram_entropy,
};
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/text_metrics/text_metrics.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).unwrap()
}

fn sentences(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn distinct_n_matches_fixture() {
    let f = fixture();
    let s = sentences(&f["sentences"]);
    let s: Vec<&str> = s.iter().map(|x| x.as_str()).collect();
    for n in 1..=3 {
        let want = f[format!("distinct_{n}")].as_f64().unwrap();
        assert!((distinct_n(&s, n) - want).abs() < 1e-12, "distinct_{n}");
        let (u, t) = ngram_counts(&s, n);
        let c = &f[format!("distinct_{n}_counts")];
        assert_eq!(
            (u as u64, t as u64),
            (c["unique"].as_u64().unwrap(), c["total"].as_u64().unwrap())
        );
    }
}

#[test]
fn entropy_matches_fixture() {
    let f = fixture();
    let s = sentences(&f["sentences"]);
    let s: Vec<&str> = s.iter().map(|x| x.as_str()).collect();
    let want = f["unigram_entropy_nats"].as_f64().unwrap();
    assert!((unigram_entropy(&s) - want).abs() < 1e-12);
}

#[test]
fn self_bleu_matches_nltk() {
    let f = fixture();
    let s = sentences(&f["sentences"]);
    let s: Vec<&str> = s.iter().map(|x| x.as_str()).collect();
    for (n, key) in [(2, "self_bleu2"), (3, "self_bleu3"), (4, "self_bleu4")] {
        let want = f[key].as_f64().unwrap();
        let got = self_bleu(&s, n);
        assert!((got - want).abs() < 1e-9, "{key}: {got} vs {want}");
    }
    let per = self_bleu_per_text(&s, 4);
    for (got, want) in per
        .iter()
        .zip(f["self_bleu4_per_sentence"].as_array().unwrap())
    {
        assert!((got - want.as_f64().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn collapsed_set_matches_fixture() {
    let f = fixture();
    let c = &f["collapsed_set"];
    let s = sentences(&c["sentences"]);
    let s: Vec<&str> = s.iter().map(|x| x.as_str()).collect();
    for (k, v) in c.as_object().unwrap() {
        let want = match v.as_f64() {
            Some(x) => x,
            None => continue,
        };
        let got = match k.as_str() {
            "distinct_1" => distinct_n(&s, 1),
            "distinct_2" => distinct_n(&s, 2),
            "distinct_3" => distinct_n(&s, 3),
            "self_bleu4" => self_bleu(&s, 4),
            "unigram_entropy_nats" => unigram_entropy(&s),
            _ => continue,
        };
        assert!((got - want).abs() < 1e-9, "collapsed {k}: {got} vs {want}");
    }
}

/// `rougeL_pairs` (rouge-score 0.1.2 RougeScorer(['rougeL']), incl. the edge cases: identical,
/// edited, case, punctuation, non-ASCII, empty, repeats, reversed) to 1e-9.
#[test]
fn rouge_l_matches_rouge_score() {
    let f = fixture();
    let pairs = f["rougeL_pairs"].as_array().unwrap();
    assert!(pairs.len() >= 8);
    for p in pairs {
        let (t, pr) = (
            p["target"].as_str().unwrap(),
            p["prediction"].as_str().unwrap(),
        );
        let r = didact_metrics::rouge_l(t, pr);
        for (got, key) in [
            (r.precision, "rougeL_precision"),
            (r.recall, "rougeL_recall"),
            (r.f, "rougeL_f"),
        ] {
            let want = p[key].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-9,
                "{key}: {got} vs {want} for {t:?} / {pr:?}"
            );
        }
    }
}

/// `novelty_filter`: the Self-Instruct rule (keep iff max ROUGE-L F against the pool ≤ 0.7).
#[test]
fn novelty_filter_matches_fixture() {
    let f = fixture();
    let nf = &f["novelty_filter"];
    let pool: Vec<Vec<String>> = sentences(&nf["pool"])
        .iter()
        .map(|s| didact_metrics::rouge_tokens(s))
        .collect();
    let threshold = nf["threshold"].as_f64().unwrap();
    for c in nf["candidates"].as_array().unwrap() {
        let (keep, max, arg) =
            didact_metrics::novelty(c["candidate"].as_str().unwrap(), &pool, threshold);
        assert_eq!(keep, c["keep"].as_bool().unwrap());
        assert!((max - c["max_rougeL_f"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(arg, c["argmax_pool_index"].as_u64().map(|x| x as usize));
    }
}
