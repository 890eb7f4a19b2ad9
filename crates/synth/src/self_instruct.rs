//! Self-Instruct bootstrapping (Wang et al. 2023): the prompt that asks a model for new tasks
//! from k in-context ones, the parser of its numbered list, and the paper's filters — length
//! bounds (3..=150 words), the keyword blacklist (tasks a text model cannot do), instructions
//! starting with punctuation or a non-ASCII character, exact duplicates, and ROUGE-L novelty
//! (rejected when the F-measure against any instruction already in the pool exceeds 0.7;
//! rouge-score's definition, `didact_metrics::rouge`). Accepted instructions join the pool at
//! once, so later candidates of the same batch are compared with them too.
//!
//! Novelty is checked against the whole pool with two savings that keep the result exact:
//! bounds on the LCS (≤ the shorter length, ≤ the number of shared tokens) that skip pool
//! entries which cannot exceed the threshold without running the LCS, on interned token ids,
//! and a parallel early-exit scan (rayon).

use didact_metrics::rouge::{lcs_len, rouge_tokens};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The paper's keyword blacklist.
pub const BLACKLIST: [&str; 13] = [
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to",
];

/// A seed task of `seed_tasks.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedTask {
    pub instruction: String,
    /// (input, output) pairs.
    pub instances: Vec<(String, String)>,
}

/// Load `seed_tasks.jsonl` (fields `instruction`, `instances: [{input, output}]`); a malformed
/// line is an error naming the file and line.
pub fn load_seed_tasks(path: &std::path::Path) -> Result<Vec<SeedTask>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: &str| format!("{}:{}: {msg}", path.display(), i + 1);
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(&format!("invalid JSON: {e}")))?;
        let instruction = v["instruction"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| at("missing `instruction`"))?
            .to_string();
        let instances = v["instances"]
            .as_array()
            .ok_or_else(|| at("missing `instances`"))?
            .iter()
            .map(|x| {
                (
                    x["input"].as_str().unwrap_or("").to_string(),
                    x["output"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.push(SeedTask {
            instruction,
            instances,
        });
    }
    Ok(out)
}

/// The generation prompt: the in-context instructions numbered, then the next number.
pub fn encode_prompt(instructions: &[&str]) -> String {
    let mut s = String::from("Come up with a series of tasks:\n");
    for (i, inst) in instructions.iter().enumerate() {
        s.push_str(&format!("{}. {}\n", i + 1, inst.trim()));
    }
    s.push_str(&format!("{}.", instructions.len() + 1));
    s
}

/// New instructions from a response to `encode_prompt` with `n_given` in-context tasks: the
/// response continues item `n_given + 1`; later items start with `N.` on a new line.
pub fn parse_instructions(response: &str, n_given: usize) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut next = n_given + 2;
    for line in response.lines() {
        let t = line.trim_start();
        let marker = format!("{next}.");
        if let Some(rest) = t.strip_prefix(&marker) {
            items.push(std::mem::take(&mut current));
            current = rest.trim().to_string();
            next += 1;
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(t.trim());
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Filter settings (defaults: the paper's).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterConfig {
    pub min_words: usize,
    pub max_words: usize,
    /// Reject when ROUGE-L F against a pool instruction exceeds this.
    pub rouge_threshold: f64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            min_words: 3,
            max_words: 150,
            rouge_threshold: 0.7,
        }
    }
}

/// The instruction pool, kept tokenized for ROUGE-L: each instruction's tokens as interned ids
/// (in order, for the LCS) and sorted (for the overlap bound).
#[derive(Debug, Default, Clone)]
pub struct Pool {
    pub texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    sorted: Vec<Vec<u32>>,
    vocab: HashMap<String, u32>,
    seen: HashSet<String>,
}

/// Size of the multiset intersection of two sorted id lists.
fn overlap(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// rouge-score's F from an LCS length and the two lengths (the same arithmetic as
/// `didact_metrics::rouge::rouge_l_tokens`, so decisions at the threshold are identical).
fn f_measure(lcs: usize, target: usize, prediction: usize) -> f64 {
    if lcs == 0 {
        return 0.0;
    }
    let (p, r) = (lcs as f64 / prediction as f64, lcs as f64 / target as f64);
    2.0 * p * r / (p + r)
}

impl Pool {
    pub fn new<S: AsRef<str>>(instructions: &[S]) -> Self {
        let mut p = Pool::default();
        for i in instructions {
            p.add(i.as_ref());
        }
        p
    }

    pub fn add(&mut self, instruction: &str) {
        let ids: Vec<u32> = rouge_tokens(instruction)
            .into_iter()
            .map(|t| {
                let next = self.vocab.len() as u32;
                *self.vocab.entry(t).or_insert(next)
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        self.texts.push(instruction.to_string());
        self.ids.push(ids);
        self.sorted.push(sorted);
        self.seen.insert(instruction.to_lowercase());
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Is some pool instruction more similar than `threshold` (ROUGE-L F)? Exact: the LCS
    /// is bounded by the shorter length and by the tokens the two share, so pool entries whose
    /// bound cannot exceed the threshold are skipped without an LCS.
    pub fn too_similar(&self, candidate: &[String], threshold: f64) -> bool {
        let n = candidate.len();
        if n == 0 {
            return false;
        }
        // Tokens the pool has never seen get ids no pool entry contains.
        let mut fresh = self.vocab.len() as u32;
        let ids: Vec<u32> = candidate
            .iter()
            .map(|t| {
                self.vocab.get(t).copied().unwrap_or_else(|| {
                    fresh += 1;
                    fresh
                })
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        let hit = |k: usize| {
            let m = self.ids[k].len();
            if m == 0 || f_measure(n.min(m), m, n) <= threshold {
                return false;
            }
            let shared = overlap(&sorted, &self.sorted[k]);
            if f_measure(shared, m, n) <= threshold {
                return false;
            }
            f_measure(lcs_len(&self.ids[k], &ids), m, n) > threshold
        };
        (0..self.ids.len())
            .into_par_iter()
            .with_min_len(1024)
            .any(hit)
    }
}

/// Why a candidate was dropped (`None` = accepted).
pub fn check(candidate: &str, pool: &Pool, cfg: &FilterConfig) -> Option<&'static str> {
    let words = candidate.split_whitespace().count();
    if words < cfg.min_words {
        return Some("too_short");
    }
    if words > cfg.max_words {
        return Some("too_long");
    }
    let lower = candidate.to_lowercase();
    let word_list: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if BLACKLIST.iter().any(|b| {
        if b.contains(' ') {
            lower.contains(b)
        } else {
            word_list.contains(b)
        }
    }) {
        return Some("blacklist");
    }
    let first = candidate.chars().next().unwrap_or(' ');
    if first.is_ascii_punctuation() || !first.is_ascii() {
        return Some("bad_start");
    }
    if pool.seen.contains(&lower) {
        return Some("duplicate");
    }
    if pool.too_similar(&rouge_tokens(candidate), cfg.rouge_threshold) {
        return Some("rouge");
    }
    None
}

/// Filter candidates in order, adding each accepted one to the pool; returns each candidate's
/// drop reason and the counts by reason.
pub fn filter_into(
    candidates: &[String],
    pool: &mut Pool,
    cfg: &FilterConfig,
) -> (Vec<Option<&'static str>>, BTreeMap<&'static str, usize>) {
    let mut reasons = Vec::with_capacity(candidates.len());
    let mut counts = BTreeMap::new();
    for c in candidates {
        let r = check(c, pool, cfg);
        match r {
            None => pool.add(c),
            Some(why) => *counts.entry(why).or_insert(0) += 1,
        }
        reasons.push(r);
    }
    (reasons, counts)
}

pub use didact_data::ingest::instance_prompt;

/// The prompt that asks for an instance of `instruction`, input first (the paper's
/// input-first generation): the generator writes the input, then `Output:` and the output.
pub fn instance_request(instruction: &str) -> String {
    format!("Instruction: {instruction}\nInput:")
}

/// Split a reply to `instance_request` into (input, output) at the first `Output:`; without
/// one the whole reply is the output and the input is empty. `None` when the output is empty.
pub fn parse_instance(reply: &str) -> Option<(String, String)> {
    let (input, output) = match reply.find("Output:") {
        Some(i) => (reply[..i].trim(), reply[i + "Output:".len()..].trim()),
        None => ("", reply.trim()),
    };
    (!output.is_empty()).then(|| (input.to_string(), output.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_split_at_output() {
        assert_eq!(
            instance_request("Add 2 and 3."),
            "Instruction: Add 2 and 3.\nInput:"
        );
        assert_eq!(
            parse_instance(" 2, 3\nOutput: 5"),
            Some(("2, 3".to_string(), "5".to_string()))
        );
        assert_eq!(
            parse_instance(" 5 "),
            Some((String::new(), "5".to_string()))
        );
        assert_eq!(parse_instance("x\nOutput:  "), None);
        assert_eq!(
            instance_prompt("Add.", "2, 3"),
            "Instruction: Add.\nInput: 2, 3\nOutput:"
        );
    }

    #[test]
    fn prompt_and_parse_round_trip() {
        let p = encode_prompt(&["Add two numbers.", "Name a color."]);
        assert_eq!(
            p,
            "Come up with a series of tasks:\n1. Add two numbers.\n2. Name a color.\n3."
        );
        let got = parse_instructions(
            " Translate the sentence into French.\n4. Write a haiku\nabout rain.\n5.  \n6. Sort the list.",
            2,
        );
        assert_eq!(
            got,
            vec![
                "Translate the sentence into French.",
                "Write a haiku about rain.",
                "Sort the list."
            ]
        );
        assert!(parse_instructions("   ", 2).is_empty());
    }

    #[test]
    fn filters_in_the_papers_order() {
        let mut pool = Pool::new(&["Give me a list of three fruits that are red."]);
        let cfg = FilterConfig::default();
        assert_eq!(check("Hi there", &pool, &cfg), Some("too_short"));
        assert_eq!(check(&"word ".repeat(151), &pool, &cfg), Some("too_long"));
        assert_eq!(
            check("Draw a cat on the page.", &pool, &cfg),
            Some("blacklist")
        );
        assert_eq!(
            check("Go to the store and buy milk.", &pool, &cfg),
            Some("blacklist")
        );
        // "mapping" is not the word "map".
        assert_eq!(
            check("Explain the mapping from keys to values.", &pool, &cfg),
            None
        );
        assert_eq!(
            check("- List three animals please.", &pool, &cfg),
            Some("bad_start")
        );
        assert_eq!(
            check("give me a list of three fruits that are red.", &pool, &cfg),
            Some("duplicate")
        );
        assert_eq!(
            check(
                "Give me a list of three fruits that are yellow.",
                &pool,
                &cfg
            ),
            Some("rouge")
        );
        let cands: Vec<String> = vec![
            "Summarize the paragraph in one sentence.".into(),
            "Summarize the paragraph in one short sentence.".into(),
            "Write a poem about the sea.".into(),
        ];
        let (reasons, counts) = filter_into(&cands, &mut pool, &cfg);
        // The second is too close to the first, which joined the pool a moment earlier.
        assert_eq!(reasons, vec![None, Some("rouge"), None]);
        assert_eq!(counts.get("rouge"), Some(&1));
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn fast_novelty_equals_the_plain_scan() {
        // The length bound and early exit must not change any decision.
        let texts: Vec<String> = (0..300)
            .map(|i| {
                let words = [
                    "write", "a", "short", "story", "about", "the", "sea", "list", "three", "red",
                    "fruits",
                ];
                (0..(3 + i % 9))
                    .map(|j| words[(i * 7 + j * 3) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let pool = Pool::new(&texts[..150]);
        for c in &texts[150..] {
            let toks = rouge_tokens(c);
            let plain = texts[..150]
                .iter()
                .any(|p| didact_metrics::rouge::rouge_l_tokens(&rouge_tokens(p), &toks).f > 0.7);
            assert_eq!(pool.too_similar(&toks, 0.7), plain, "{c}");
        }
    }

    #[test]
    fn seed_tasks_load_and_bad_lines_name_the_line() {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/self-instruct/seed_tasks.jsonl");
        let tasks = load_seed_tasks(&p).unwrap();
        assert_eq!(tasks.len(), 175);
        assert!(tasks.iter().all(|t| !t.instances.is_empty()));
        let dir = std::env::temp_dir().join(format!("didact-si-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.jsonl");
        std::fs::write(
            &bad,
            "{\"instruction\": \"x\", \"instances\": []}\n{\"instances\": []}\n",
        )
        .unwrap();
        let e = load_seed_tasks(&bad).unwrap_err();
        assert!(e.ends_with("bad.jsonl:2: missing `instruction`"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
