//! ROUGE-L as `rouge_score.rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False)`: tokens are
//! the lowercased text with every run of characters outside `[a-z0-9]` turned into a space;
//! precision = LCS / |prediction|, recall = LCS / |target|, F = 2PR / (P + R), all 0 when either
//! side has no tokens. Plus the Self-Instruct novelty rule (keep a candidate iff its ROUGE-L F
//! against every pool text is ≤ the threshold). Tested against ../shared/fixtures/text_metrics.

/// rouge-score's default tokenizer.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in lower.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Length of the longest common subsequence (O(|a|·|b|) time, O(|b|) memory).
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE-L (precision, recall, F) of `prediction` against `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RougeL {
    pub precision: f64,
    pub recall: f64,
    pub f: f64,
}

pub fn rouge_l(target: &str, prediction: &str) -> RougeL {
    rouge_l_tokens(&rouge_tokens(target), &rouge_tokens(prediction))
}

/// ROUGE-L on pre-tokenized text (see `rouge_tokens`).
pub fn rouge_l_tokens(target: &[String], prediction: &[String]) -> RougeL {
    if target.is_empty() || prediction.is_empty() {
        return RougeL {
            precision: 0.0,
            recall: 0.0,
            f: 0.0,
        };
    }
    let l = lcs_len(target, prediction) as f64;
    let (p, r) = (l / prediction.len() as f64, l / target.len() as f64);
    let f = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    RougeL {
        precision: p,
        recall: r,
        f,
    }
}

/// The Self-Instruct novelty rule: (keep, max F, index of the most similar pool text).
pub fn novelty(
    candidate: &str,
    pool: &[Vec<String>],
    threshold: f64,
) -> (bool, f64, Option<usize>) {
    let c = rouge_tokens(candidate);
    let mut best = (0.0, None);
    for (i, p) in pool.iter().enumerate() {
        let f = rouge_l_tokens(p, &c).f;
        if best.1.is_none() || f > best.0 {
            best = (f, Some(i));
        }
    }
    (best.0 <= threshold, best.0, best.1)
}
