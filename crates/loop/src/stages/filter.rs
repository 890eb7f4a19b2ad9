//! The filter stage: every sample scored by the rules (`length/*`, the world's
//! `verifier/correct`) and marked with the first rule that drops it (`no_stop`, `length`,
//! `answer_length` (a sum's digit count, with `[filter] answer_length`, and its carry digit
//! with `carry_digit`), `verifier`,
//! `majority`, `duplicate`); with `dpo.scorer = "rules"` a `rules/kept` score for pairs. The
//! filter stats are taken over the final scored samples of the round (after a judge may have
//! dropped more): `filter/*`, with `[filter] majority` also `vote_agreement` and
//! `kept_accuracy` (the verifier's verdict on what the vote kept).

use crate::task::Task;
use didact_core::{Metrics, Sample};
use didact_judge::{Rules, score_and_filter};
use didact_recipe::FilterPlan;

/// 1 when a sample passed every `[filter]` rule, else 0 (the `rules` pair scorer).
pub const RULES_SCORE: &str = "rules/kept";

/// Score and mark `samples` in place.
pub fn run(samples: &mut [Sample], plan: &FilterPlan, task: &Task, rules_score: bool) {
    let rules = Rules {
        verifier: plan.verifier,
        min_chars: plan.min_chars,
        max_chars: plan.max_chars,
        dedup: plan.dedup,
        require_stop: plan.require_stop,
        majority: plan.majority,
        prefix: plan.prefix_check,
        top: plan.top_check,
    };
    let verifier = task.verifier();
    let v = verifier.map(|f| move |p: &str, c: &str| f(p, c));
    let reversed = task.world.as_ref().is_some_and(|w| w.reversed);
    let shape = |p: &str, a: &str| match plan.carry_digit {
        true => didact_data::arithmetic::plausible_sum_shape(p, a, reversed),
        false => didact_data::arithmetic::plausible_sum_length(p, a),
    };
    score_and_filter(
        samples,
        &rules,
        v.as_ref().map(|f| f as &dyn Fn(&str, &str) -> Option<bool>),
        plan.answer_length
            .then_some(&shape as &dyn Fn(&str, &str) -> Option<bool>),
    );
    if rules_score {
        for s in samples.iter_mut() {
            s.scores
                .insert(RULES_SCORE.into(), s.dropped.is_none() as u8 as f64);
        }
    }
}

/// `filter/n_generated`, `n_kept`, `kept_fraction`, `dropped_<rule>` (the first failing rule
/// counts) and `verifier_accuracy` (over the samples the verifier judged).
pub fn stats(scored: &[Sample]) -> Metrics {
    let mut m = Metrics::new();
    let total = scored.len();
    let kept = scored.iter().filter(|s| s.dropped.is_none()).count();
    m.insert("filter/n_generated".into(), total as f64);
    m.insert("filter/n_kept".into(), kept as f64);
    m.insert(
        "filter/kept_fraction".into(),
        kept as f64 / total.max(1) as f64,
    );
    for s in scored {
        if let Some(rule) = &s.dropped {
            let k = format!("filter/dropped_{}", rule.replace(['/', ' '], "_"));
            *m.entry(k).or_insert(0.0) += 1.0;
        }
    }
    let judged: Vec<f64> = scored
        .iter()
        .filter_map(|s| s.scores.get("verifier/correct").copied())
        .collect();
    if !judged.is_empty() {
        m.insert(
            "filter/verifier_accuracy".into(),
            judged.iter().sum::<f64>() / judged.len() as f64,
        );
    }
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    // Majority vote: how much a prompt's samples agreed, and — where the world can tell —
    // how often the kept (voted) answers are right: the pseudo-labels' accuracy.
    if let Some(a) = mean(
        scored
            .iter()
            .filter_map(|s| s.scores.get("vote/agreement").copied())
            .collect(),
    ) {
        m.insert("filter/vote_agreement".into(), a);
    }
    if let Some(a) = mean(
        scored
            .iter()
            .filter(|s| s.dropped.is_none())
            .filter_map(|s| s.scores.get("verifier/correct").copied())
            .collect(),
    ) {
        m.insert("filter/kept_accuracy".into(), a);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample(c: &str) -> Sample {
        let mut scores = BTreeMap::new();
        scores.insert("gen/stopped".to_string(), 1.0);
        Sample {
            id: String::new(),
            round: 1,
            prompt: "2+3=".into(),
            completion: c.into(),
            n_tokens: c.len(),
            scores,
            dropped: None,
        }
    }

    fn task() -> Task {
        let plan = didact_recipe::load_str(
            "[world]\ntrain_size = 10\n[eval]\neval_size = 5\nood_size = 5",
            "t.toml",
            &[],
        )
        .unwrap()
        .plan;
        Task::build(&plan).unwrap()
    }

    #[test]
    fn verifier_and_rules_drop_with_reasons_and_stats_count_them() {
        let plan = FilterPlan {
            verifier: true,
            min_chars: 1,
            max_chars: 3,
            dedup: true,
            require_stop: true,
            majority: None,
            answer_length: false,
            carry_digit: false,
            prefix_check: false,
            top_check: false,
        };
        let mut s = vec![sample("5"), sample("5"), sample("6"), sample("5555")];
        run(&mut s, &plan, &task(), true);
        let why: Vec<Option<&str>> = s.iter().map(|x| x.dropped.as_deref()).collect();
        assert_eq!(
            why,
            vec![None, Some("duplicate"), Some("verifier"), Some("length")]
        );
        assert_eq!(s[0].scores[RULES_SCORE], 1.0);
        assert_eq!(s[2].scores[RULES_SCORE], 0.0);
        let m = stats(&s);
        assert_eq!(m["filter/n_kept"], 1.0);
        assert_eq!(m["filter/kept_fraction"], 0.25);
        assert_eq!(m["filter/dropped_verifier"], 1.0);
        // "5555" is wrong too: the verifier judged all four, one of them incorrect twice over.
        assert_eq!(m["filter/verifier_accuracy"], 0.5);
    }

    /// Majority vote without the verifier rule: a wrong answer most samples agree on is kept
    /// (a pseudo-label), and `kept_accuracy` says how often the kept answers are right.
    #[test]
    fn a_vote_keeps_the_majority_answer_and_reports_its_accuracy() {
        let plan = FilterPlan {
            verifier: false,
            min_chars: 1,
            max_chars: 10,
            dedup: false,
            require_stop: true,
            majority: Some(0.5),
            answer_length: false,
            carry_digit: false,
            prefix_check: false,
            top_check: false,
        };
        let mut s = vec![sample("6"), sample("6"), sample("5"), sample("6")];
        run(&mut s, &plan, &task(), false);
        let why: Vec<Option<&str>> = s.iter().map(|x| x.dropped.as_deref()).collect();
        assert_eq!(why, vec![None, None, Some("majority"), None]);
        let m = stats(&s);
        assert_eq!(m["filter/n_kept"], 3.0);
        assert_eq!(
            m["filter/kept_accuracy"], 0.0,
            "2+3=6 is wrong however many agree"
        );
        assert_eq!(m["filter/vote_agreement"], (0.75 * 3.0 + 0.25) / 4.0);
        assert_eq!(m["filter/verifier_accuracy"], 0.25);
    }

    /// A strict-majority vote after the length rule, no verifier.
    fn length_vote() -> FilterPlan {
        FilterPlan {
            verifier: false,
            min_chars: 0,
            max_chars: 10,
            dedup: false,
            require_stop: true,
            majority: Some(0.5),
            answer_length: true,
            carry_digit: false,
            prefix_check: false,
            top_check: false,
        }
    }

    /// `[filter] answer_length`: 2+3 has one or two digits, so "555" and "" never vote.
    #[test]
    fn sums_of_an_impossible_length_are_dropped_by_the_length_filter() {
        let plan = length_vote();
        let mut s = vec![sample("555"), sample("555"), sample("5"), sample("")];
        run(&mut s, &plan, &task(), false);
        let why: Vec<Option<&str>> = s.iter().map(|x| x.dropped.as_deref()).collect();
        let short = Some("answer_length");
        assert_eq!(why, vec![short, short, None, short]);
        assert_eq!(stats(&s)["filter/dropped_answer_length"], 3.0);
    }

    /// `[filter] carry_digit`: 7+8 (plain digit order, the default world) is 15 or a one-digit
    /// number by its length, so "25" votes and no answer has a majority; with the carry rule
    /// "25" is impossible too, and the vote is "15"'s.
    #[test]
    fn a_longer_sum_must_carry_a_one() {
        let mut plan = length_vote();
        let eight = |c: &str| Sample {
            prompt: "7+8=".into(),
            ..sample(c)
        };
        let samples = vec![
            eight("25"),
            eight("25"),
            eight("15"),
            eight("15"),
            eight("5"),
        ];
        let mut s = samples.clone();
        run(&mut s, &plan, &task(), false);
        assert_eq!(s[2].dropped.as_deref(), Some("majority"));
        plan.carry_digit = true;
        let mut s = samples;
        run(&mut s, &plan, &task(), false);
        let why: Vec<Option<&str>> = s.iter().map(|x| x.dropped.as_deref()).collect();
        let shape = Some("answer_length");
        assert_eq!(why, vec![shape, shape, None, None, Some("majority")]);
        assert_eq!(stats(&s)["filter/kept_accuracy"], 1.0);
    }

    /// `[filter] prefix_check` / `top_check`: a sample a self-check marked inconsistent is
    /// dropped as `prefix` / `top` before the vote, so the consistent answer wins it; with the
    /// checks off the marks are ignored and the inconsistent answer has the majority.
    #[test]
    fn self_check_verdicts_drop_before_the_vote() {
        use didact_judge::{PREFIX_SCORE, TOP_SCORE};
        let mut plan = length_vote();
        let marked = |c: &str, key: &str, v: f64| {
            let mut x = sample(c);
            x.scores.insert(key.into(), v);
            x
        };
        let samples = vec![
            marked("4", TOP_SCORE, 0.0),
            marked("4", PREFIX_SCORE, 0.0),
            marked("4", TOP_SCORE, 0.0),
            marked("5", TOP_SCORE, 1.0),
            marked("5", PREFIX_SCORE, 1.0),
        ];
        let mut s = samples.clone();
        run(&mut s, &plan, &task(), false);
        assert_eq!(s[3].dropped.as_deref(), Some("majority"));
        plan.prefix_check = true;
        plan.top_check = true;
        let mut s = samples;
        run(&mut s, &plan, &task(), false);
        let why: Vec<Option<&str>> = s.iter().map(|x| x.dropped.as_deref()).collect();
        assert_eq!(
            why,
            vec![Some("top"), Some("prefix"), Some("top"), None, None]
        );
        assert_eq!(stats(&s)["filter/dropped_top"], 2.0);
    }
}
