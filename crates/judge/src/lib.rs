//! didact-judge: scores every generated sample and decides what is kept. Scores are written
//! into `Sample::scores` (`verifier/correct`, `length/chars`, `length/tokens`; the generator
//! already recorded `gen/stopped`) and the first failing rule into `Sample::dropped`, so a
//! dropped sample says why. Rules, in order: `no_stop`, `length`, `answer_length` (a world's
//! check that an answer has a possible shape, e.g. a sum's digit count), `prefix` and `top`
//! (self-checks' verdicts recorded before scoring), `verifier`, `majority`
//! (self-consistency: a prompt's samples vote with their final answers; only the answer more
//! than a set share of them gave is kept — pseudo-labels without a verifier), `duplicate`.
//! Reward models and LLM judges slot in as further scorers. Knows nothing of training.

pub mod llm;
pub mod pairs;

pub use pairs::{PairStats, select_pairs};

use didact_core::Sample;
use std::collections::{BTreeMap, HashSet};

/// A verifier: `Some(true)` correct, `Some(false)` incorrect, `None` cannot judge.
pub type Verifier<'a> = &'a dyn Fn(&str, &str) -> Option<bool>;

/// Which rules apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Drop incorrect samples (needs a verifier; samples it cannot judge are kept).
    pub verifier: bool,
    /// Completion length bounds in characters (inclusive).
    pub min_chars: usize,
    pub max_chars: usize,
    /// Drop exact duplicates (same prompt and completion) of an earlier sample.
    pub dedup: bool,
    /// Drop samples that ended without the stop token (`gen/stopped` = 0).
    pub require_stop: bool,
    /// Majority vote: keep a sample only when its final answer (`answer_of`) was given by
    /// more than this share of its prompt's samples that passed the rules before it; `None`
    /// = no vote. Every voting sample gets `vote/agreement`, the share that agreed with it.
    pub majority: Option<f64>,
    /// Drop samples whose [`PREFIX_SCORE`] is 0 (a self-check that ran before scoring said
    /// the answer disagrees with an easier sub-problem's).
    pub prefix: bool,
    /// Drop samples whose [`TOP_SCORE`] is 0 (the same for the answer's high digits).
    pub top: bool,
}

/// A sample's self-check verdict (1 consistent, 0 not), set before scoring when the world has
/// one (`[filter] prefix_check`).
pub const PREFIX_SCORE: &str = "prefix/consistent";

/// The high-digit self-check's verdict (`[filter] top_check`; 1 consistent, 0 not).
pub const TOP_SCORE: &str = "top/consistent";

/// The final answer of a completion, for voting: what follows the last `####` (worked
/// steps, GSM8K's convention), else the whole completion, trimmed.
pub fn answer_of(completion: &str) -> &str {
    match completion.rfind("####") {
        Some(i) => completion[i + 4..].trim(),
        None => completion.trim(),
    }
}

/// Counts of one scoring pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterStats {
    pub total: usize,
    pub kept: usize,
    /// Dropped samples by rule.
    pub dropped_by: BTreeMap<String, usize>,
    /// Mean of `verifier/correct` over the samples the verifier judged (NaN if none).
    pub verifier_accuracy: f64,
}

impl FilterStats {
    pub fn kept_fraction(&self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            self.kept as f64 / self.total as f64
        }
    }
}

/// Score every sample and mark the dropped ones. `shape`, when given, is the world's check
/// that a completion's answer could be right at all (`Some(false)` drops it as
/// `answer_length` before it can vote; Lee et al. 2025's length filter).
pub fn score_and_filter(
    samples: &mut [Sample],
    rules: &Rules,
    verifier: Option<Verifier<'_>>,
    shape: Option<Verifier<'_>>,
) -> FilterStats {
    let mut stats = FilterStats {
        total: samples.len(),
        ..Default::default()
    };
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let (mut judged, mut correct) = (0usize, 0usize);
    // Votes per prompt: (answer → count, voters), over samples the earlier rules keep.
    let mut votes: BTreeMap<String, (BTreeMap<String, usize>, usize)> = BTreeMap::new();
    if rules.majority.is_some() {
        for s in samples
            .iter()
            .filter(|s| early_rule(s, rules, shape).is_none())
        {
            let e = votes.entry(s.prompt.clone()).or_default();
            *e.0.entry(answer_of(&s.completion).to_string()).or_default() += 1;
            e.1 += 1;
        }
    }
    for s in samples.iter_mut() {
        let chars = s.completion.chars().count();
        s.scores.insert("length/chars".into(), chars as f64);
        s.scores.insert("length/tokens".into(), s.n_tokens as f64);
        let verdict = verifier.and_then(|v| v(&s.prompt, &s.completion));
        if let Some(ok) = verdict {
            s.scores
                .insert("verifier/correct".into(), if ok { 1.0 } else { 0.0 });
            judged += 1;
            correct += ok as usize;
        }
        let reason = if let Some(r) = early_rule(s, rules, shape) {
            Some(r)
        } else if rules.verifier && verdict == Some(false) {
            Some("verifier")
        } else if let Some(share) = rules.majority
            && !wins_vote(&votes, s, share)
        {
            Some("majority")
        } else if rules.dedup && !seen.insert((s.prompt.clone(), s.completion.clone())) {
            Some("duplicate")
        } else {
            None
        };
        s.dropped = reason.map(str::to_string);
        match reason {
            None => stats.kept += 1,
            Some(r) => *stats.dropped_by.entry(r.to_string()).or_default() += 1,
        }
    }
    if rules.majority.is_some() {
        for s in samples.iter_mut() {
            if let Some((counts, n)) = votes.get(&s.prompt) {
                let agree = counts.get(answer_of(&s.completion)).copied().unwrap_or(0);
                s.scores
                    .insert("vote/agreement".into(), agree as f64 / *n as f64);
            }
        }
    }
    stats.verifier_accuracy = if judged == 0 {
        f64::NAN
    } else {
        correct as f64 / judged as f64
    };
    stats
}

/// The rules that look at a sample alone, before any verdict or vote: `no_stop`, `length`,
/// `answer_length`.
fn early_rule(s: &Sample, rules: &Rules, shape: Option<Verifier<'_>>) -> Option<&'static str> {
    let chars = s.completion.chars().count();
    let stopped = s.scores.get("gen/stopped").copied().unwrap_or(1.0) > 0.5;
    if rules.require_stop && !stopped {
        Some("no_stop")
    } else if chars < rules.min_chars || chars > rules.max_chars {
        Some("length")
    } else if shape.is_some_and(|f| f(&s.prompt, answer_of(&s.completion)) == Some(false)) {
        Some("answer_length")
    } else if rules.prefix && s.scores.get(PREFIX_SCORE) == Some(&0.0) {
        Some("prefix")
    } else if rules.top && s.scores.get(TOP_SCORE) == Some(&0.0) {
        Some("top")
    } else {
        None
    }
}

/// Did `s`'s answer get more than `share` of its prompt's votes?
fn wins_vote(
    votes: &BTreeMap<String, (BTreeMap<String, usize>, usize)>,
    s: &Sample,
    share: f64,
) -> bool {
    votes.get(&s.prompt).is_some_and(|(counts, n)| {
        let agree = counts.get(answer_of(&s.completion)).copied().unwrap_or(0);
        agree as f64 > share * *n as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(p: &str, c: &str, stopped: bool) -> Sample {
        let mut s = Sample {
            id: String::new(),
            round: 1,
            prompt: p.into(),
            completion: c.into(),
            n_tokens: c.len(),
            scores: BTreeMap::new(),
            dropped: None,
        };
        s.scores.insert("gen/stopped".into(), stopped as u8 as f64);
        s
    }

    fn rules() -> Rules {
        Rules {
            verifier: true,
            min_chars: 1,
            max_chars: 3,
            dedup: true,
            require_stop: true,
            majority: None,
            prefix: false,
            top: false,
        }
    }

    /// Self-consistency: 5 samples of "2+2=" answer 4, 4, 4, 5, 4 → the four 4s are kept
    /// (4/5 > 1/2), the 5 is dropped as `majority`; a 2–2 tie keeps nothing; answers are
    /// compared after `####` and whitespace; a sample that failed an earlier rule has no vote.
    #[test]
    fn majority_vote_keeps_the_answer_most_samples_agree_on() {
        let mut r = rules();
        r.verifier = false;
        r.dedup = false;
        r.max_chars = 100;
        r.majority = Some(0.5);
        let mut v = vec![
            sample("2+2=", "4", true),
            sample("2+2=", " 4", true),
            sample("2+2=", "2+2 #### 4", true),
            sample("2+2=", "5", true),
            sample("2+2=", "4", true),
            sample("2+2=", "9", false), // no stop: no vote
            sample("1+1=", "2", true),
            sample("1+1=", "2", true),
            sample("1+1=", "3", true),
            sample("1+1=", "3", true),
        ];
        let st = score_and_filter(&mut v, &r, None, None);
        let dropped: Vec<Option<&str>> = v.iter().map(|s| s.dropped.as_deref()).collect();
        assert_eq!(
            dropped,
            vec![
                None,
                None,
                None,
                Some("majority"),
                None,
                Some("no_stop"),
                Some("majority"),
                Some("majority"),
                Some("majority"),
                Some("majority"),
            ]
        );
        assert_eq!((st.kept, st.dropped_by["majority"]), (4, 5));
        assert_eq!(v[0].scores["vote/agreement"], 0.8);
        assert_eq!(v[3].scores["vote/agreement"], 0.2);
        assert_eq!(v[6].scores["vote/agreement"], 0.5);
        assert_eq!(answer_of("1,2 #### 37 "), "37");
    }

    #[test]
    fn every_rule_drops_with_its_reason_and_scores_stay() {
        let v = |p: &str, c: &str| Some((p == "1+1=") == (c == "2"));
        let mut s = vec![
            sample("1+1=", "2", true),
            sample("1+1=", "2", true),    // duplicate
            sample("1+1=", "3", true),    // incorrect
            sample("1+1=", "2222", true), // too long
            sample("1+1=", "2", false),   // no stop token
            sample("1+1=", "", true),     // too short
        ];
        let st = score_and_filter(&mut s, &rules(), Some(&v), None);
        let reasons: Vec<Option<&str>> = s.iter().map(|x| x.dropped.as_deref()).collect();
        assert_eq!(
            reasons,
            vec![
                None,
                Some("duplicate"),
                Some("verifier"),
                Some("length"),
                Some("no_stop"),
                Some("length")
            ]
        );
        assert_eq!(st.kept, 1);
        assert_eq!(st.dropped_by["length"], 2);
        assert!((st.kept_fraction() - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(s[2].scores["verifier/correct"], 0.0);
        assert_eq!(s[3].scores["length/chars"], 4.0);
    }

    #[test]
    fn without_verifier_rule_incorrect_is_kept_but_scored() {
        let v = |_: &str, c: &str| Some(c == "2");
        let mut s = vec![sample("1+1=", "3", true)];
        let mut r = rules();
        r.verifier = false;
        let st = score_and_filter(&mut s, &r, Some(&v), None);
        assert_eq!(st.kept, 1);
        assert_eq!(s[0].scores["verifier/correct"], 0.0);
        assert_eq!(st.verifier_accuracy, 0.0);
    }

    /// The length filter: answers of an impossible length are dropped before the vote, so
    /// three wrong-length answers cannot outvote two right ones.
    #[test]
    fn answers_of_an_impossible_length_are_dropped_before_they_vote() {
        let shape = |_: &str, a: &str| Some(a.len() == 2 || a.len() == 3);
        let mut r = rules();
        r.verifier = false;
        r.dedup = false;
        r.majority = Some(0.5);
        let mut v = vec![
            sample("50+60=", "110", true),
            sample("50+60=", "110", true),
            sample("50+60=", "1", true),
            sample("50+60=", "1", true),
            sample("50+60=", "1", true),
        ];
        let st = score_and_filter(&mut v, &r, None, Some(&shape));
        assert_eq!(st.dropped_by["answer_length"], 3);
        assert_eq!(st.kept, 2, "110 wins 2 of the 2 votes left");
        assert_eq!(v[0].scores["vote/agreement"], 1.0);
        // Without the filter the wrong answer wins 3 of 5.
        let st = score_and_filter(&mut v, &r, None, None);
        assert_eq!((st.kept, st.dropped_by["majority"]), (3, 2));
    }
}
