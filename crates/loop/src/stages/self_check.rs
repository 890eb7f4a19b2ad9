//! The self-checks of the score stage on reversed sums (`[filter] prefix_check`,
//! `top_check`): the round's policies answer, greedy, every prompt's sub-problem — its
//! operands' low n − 1 digits (`didact_data::arithmetic::low_digits_problem`) or its operands
//! without their units digit (`high_digits_problem`); the answer most of them give is the
//! reference, and every sample gets `prefix/consistent` or `top/consistent` — 1 when its
//! answer agrees with the reference (its first n − 1 digits are the low answer; its digits
//! after the units digit are the high answer, or that plus the units' carry), else 0, which the
//! filter's `prefix` / `top` rule drops before the vote. The low digits of a sum depend only on
//! the operands' low digits, the high digits on the high digits and one carry, and a model
//! that has learned n − 1 digits answers those reliably; no verifier is involved. Stats:
//! `prefix/*`, `top/*`.

use crate::env::Env;
use crate::error::Result;
use crate::seeds::Stream;
use crate::stages::generate::Writer;
use didact_core::{Metrics, Sample};
use didact_data::arithmetic::{
    high_digits_agree, high_digits_problem, low_digits_agree, low_digits_problem,
};
use didact_judge::{PREFIX_SCORE, TOP_SCORE, answer_of};
use didact_model::SamplingParams;
use didact_synth::ResponseJob;
use std::collections::BTreeMap;

/// Which sub-problem a check asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The operands' low n − 1 digits; the answer's first n − 1 digits must agree.
    Low,
    /// The operands without their units digit; the answer's rest must agree (± the carry).
    High,
}

impl Check {
    /// The score key and the metric prefix.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Check::Low => (PREFIX_SCORE, "prefix"),
            Check::High => (TOP_SCORE, "top"),
        }
    }

    /// The prompt's sub-problem, and what to compare an answer with given its answer.
    fn sub_problem(self, prompt: &str) -> Option<(String, usize)> {
        match self {
            Check::Low => low_digits_problem(prompt),
            Check::High => high_digits_problem(prompt).map(|p| (p, 0)),
        }
    }

    fn agree(self, answer: &str, reference: &str, k: usize) -> bool {
        match self {
            Check::Low => low_digits_agree(answer, reference, k),
            Check::High => high_digits_agree(answer, reference),
        }
    }
}

/// Each peer's writer with its environment (peer 0 first).
pub type Policies<'a, 'b> = &'a [(Env<'b>, Writer)];

/// Mark every sample of `samples` whose prompt has the check's sub-problem.
pub fn run(
    check: Check,
    policies: Policies<'_, '_>,
    samples: &mut [Sample],
    batch_size: usize,
    max_new_tokens: usize,
    r: u32,
) -> Result<Metrics> {
    let mut prompts: Vec<String> = Vec::new();
    let mut subs: Vec<String> = Vec::new();
    let mut k_of: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples.iter() {
        if k_of.contains_key(&s.prompt) {
            continue;
        }
        if let Some((sub, k)) = check.sub_problem(&s.prompt) {
            k_of.insert(s.prompt.clone(), k);
            prompts.push(s.prompt.clone());
            subs.push(sub);
        }
    }
    let mut answers: Vec<Vec<String>> = vec![Vec::new(); prompts.len()];
    for (env, writer) in policies {
        let job = ResponseJob {
            prompts: &subs,
            n_per_prompt: 1,
            params: SamplingParams::greedy(max_new_tokens, None),
            batch_size,
            round: r,
            seed: env.model_seed(),
            stream: Stream::Generate.family(r),
        };
        let out = writer.respond(env, &job, &mut Metrics::new(), |_| {})?;
        for (a, s) in answers.iter_mut().zip(out) {
            a.push(s.completion.trim().to_string());
        }
    }
    let reference: BTreeMap<&str, String> = prompts
        .iter()
        .zip(&answers)
        .map(|(p, a)| (p.as_str(), most_common(a)))
        .collect();
    let (key, stat) = check.names();
    let (mut judged, mut consistent) = (0usize, 0usize);
    for s in samples.iter_mut() {
        let (Some(low), Some(&k)) = (reference.get(s.prompt.as_str()), k_of.get(&s.prompt)) else {
            continue;
        };
        let ok = check.agree(answer_of(&s.completion), low, k);
        s.scores.insert(key.into(), ok as u8 as f64);
        judged += 1;
        consistent += ok as usize;
    }
    let mut m = Metrics::new();
    m.insert(format!("{stat}/n_problems"), prompts.len() as f64);
    if judged > 0 {
        m.insert(
            format!("{stat}/consistent"),
            consistent as f64 / judged as f64,
        );
    }
    Ok(m)
}

/// The answer given most often; a tie goes to the one given first (peer 0's first).
fn most_common(answers: &[String]) -> String {
    let mut best: Option<(&String, usize)> = None;
    for a in answers {
        let n = answers.iter().filter(|b| *b == a).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((a, n));
        }
    }
    best.map(|(a, _)| a.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::Kit;

    #[test]
    fn ties_go_to_the_first_answer() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(most_common(&v(&["12", "13", "13"])), "13");
        assert_eq!(most_common(&v(&["12", "13"])), "12");
        assert_eq!(most_common(&[]), "");
    }

    /// The kit policy's greedy answer to `prompt` (at most 4 tokens), trimmed.
    fn greedy_answer(kit: &Kit, prompt: &str) -> String {
        let env = kit.env();
        let job = ResponseJob {
            prompts: &[prompt.to_string()],
            n_per_prompt: 1,
            params: SamplingParams::greedy(4, None),
            batch_size: 4,
            round: 1,
            seed: env.model_seed(),
            stream: Stream::Generate.family(1),
        };
        Writer::Model(Box::new(kit.model()))
            .respond(&env, &job, &mut Metrics::new(), |_| {})
            .unwrap()[0]
            .completion
            .trim()
            .to_string()
    }

    fn sample(prompt: &str, c: &str) -> Sample {
        Sample {
            id: "x".into(),
            round: 1,
            prompt: prompt.into(),
            completion: c.into(),
            n_tokens: c.len(),
            scores: Default::default(),
            dropped: None,
        }
    }

    /// A sample whose low digits are the policy's own low-digit answer passes; one that
    /// differs there does not; the vote never sees it. The kit's world writes sums plainly, so
    /// the prompts here are written as reversed sums by hand.
    #[test]
    fn samples_are_checked_against_the_policys_low_digit_answer() {
        let kit = Kit::new("prefix", &[]);
        let policies = vec![(kit.env(), Writer::Model(Box::new(kit.model())))];
        // What the (untrained) policy answers to the sub-problem decides.
        let low = greedy_answer(&kit, "71+68=");
        let padded = format!("{low:0<2}");
        let agree = format!("{}9", &padded[..2]);
        let other = if &padded[..1] == "1" { "2" } else { "1" };
        let disagree = format!("{other}{}9", &padded[1..2]);
        let mut s = vec![
            sample("714+689=", &agree),
            sample("714+689=", &disagree),
            sample("7+8=", "15"),
        ];
        let m = run(Check::Low, &policies, &mut s, 4, 4, 1).unwrap();
        assert_eq!(s[0].scores[PREFIX_SCORE], 1.0, "{low:?} {agree}");
        assert_eq!(s[1].scores[PREFIX_SCORE], 0.0, "{low:?} {disagree}");
        assert!(
            !s[2].scores.contains_key(PREFIX_SCORE),
            "one digit: no sub-problem"
        );
        assert_eq!(m["prefix/n_problems"], 1.0);
        assert_eq!(m["prefix/consistent"], 0.5);
    }

    /// The high-digit check marks `top/consistent` against the policy's answer to the prompt
    /// without its units digits; a one-digit operand has no such sub-problem.
    #[test]
    fn samples_are_checked_against_the_policys_high_digit_answer() {
        let kit = Kit::new("top", &[]);
        let policies = vec![(kit.env(), Writer::Model(Box::new(kit.model())))];
        let high = greedy_answer(&kit, "14+89=");
        let sample = |c: String| sample("714+689=", &c);
        let mut s = vec![sample(format!("9{high}")), sample(format!("9{high}77"))];
        s.push(Sample {
            prompt: "7+89=".into(),
            ..sample("69".into())
        });
        let m = run(Check::High, &policies, &mut s, 4, 4, 1).unwrap();
        let digits = !high.is_empty() && high.bytes().all(|c| c.is_ascii_digit());
        assert_eq!(s[0].scores[TOP_SCORE], digits as u8 as f64, "{high:?}");
        assert_eq!(s[1].scores[TOP_SCORE], 0.0, "{high:?}");
        assert!(!s[0].scores.contains_key(PREFIX_SCORE));
        assert!(!s[2].scores.contains_key(TOP_SCORE), "a one-digit operand");
        assert_eq!(m["top/n_problems"], 1.0);
        assert!(!m.contains_key("prefix/n_problems"));
    }
}
