//! The judge stage: scores beyond the rules. `reward/score` from round 0's Bradley-Terry
//! reward model, and the LLM judge (the policy, greedy, or an endpoint) grading every sample
//! on `min..=max` — `judge/score` where the verdict parses, `judge/unparseable` = 1 where it
//! does not (never scored); with `min_score`, kept samples below it (or unparseable) are
//! dropped as `judge`. Stats: `judge/mean_reward`, `judge/reward_std`, `judge/score_mean`,
//! `judge/n_verdicts`, `judge/unparseable`.

use crate::env::Env;
use crate::error::{LoopError, Result};
use crate::lineage::ModelRef;
use crate::seeds::Stream;
use crate::stages::endpoint_config;
use didact_core::{Metrics, Sample};
use didact_metrics::suite::mean_std;
use didact_model::SamplingParams;
use didact_recipe::{JudgeBy, JudgePlan};
use didact_synth::{ResponseJob, generate_endpoint, generate_responses};
use didact_train::score_rows;

/// Score name of the reward model's output.
pub const REWARD_SCORE: &str = "reward/score";
/// Sample score names of the LLM judge.
pub const JUDGE_SCORE: &str = "judge/score";
pub const JUDGE_UNPARSEABLE: &str = "judge/unparseable";

/// Add `reward/score` from the reward model in `rm_dir` to every sample.
pub fn reward(
    env: &Env<'_>,
    samples: &mut [Sample],
    rm_dir: &std::path::Path,
    batch_size: usize,
) -> Result<()> {
    let (rm, _) = crate::rm::load_reward_model(rm_dir, env.device)?;
    let rows: Vec<Vec<u32>> = samples
        .iter()
        .map(|s| env.tok.encode(&format!("{}{}", s.prompt, s.completion)))
        .collect::<std::result::Result<_, _>>()?;
    let r = score_rows(
        &rm,
        &rows,
        batch_size,
        env.max_len(),
        env.tok.pad_id,
        env.device,
    );
    for (s, x) in samples.iter_mut().zip(r) {
        s.scores.insert(REWARD_SCORE.into(), x);
    }
    Ok(())
}

/// The judge's prompts, one per sample.
fn prompts(plan: &JudgePlan, samples: &[Sample]) -> Vec<String> {
    use didact_judge::llm;
    let template = plan.template.as_deref().unwrap_or(llm::SCORE_TEMPLATE);
    let (min, max) = (format!("{}", plan.min), format!("{}", plan.max));
    samples
        .iter()
        .map(|s| {
            llm::render(
                template,
                &[
                    ("prompt", &s.prompt),
                    ("response", &s.completion),
                    ("min", &min),
                    ("max", &max),
                ],
            )
        })
        .collect()
}

/// Grade every sample with the LLM judge (`judge` = `lineage::model_for(Role::Judge, r)`).
pub fn llm(
    env: &Env<'_>,
    plan: &JudgePlan,
    judge: &ModelRef,
    samples: &mut [Sample],
    batch_size: usize,
    r: u32,
) -> Result<()> {
    use didact_judge::llm;
    let prompts = prompts(plan, samples);
    let job = ResponseJob {
        prompts: &prompts,
        n_per_prompt: 1,
        params: SamplingParams::greedy(plan.max_new_tokens, None),
        batch_size,
        round: r,
        seed: env.seed,
        stream: Stream::Judge.family(r),
    };
    let verdicts = match (&plan.by, judge) {
        (JudgeBy::Endpoint(e), ModelRef::Endpoint) => {
            generate_endpoint(&endpoint_config(e, env.dir.cache("judge")), &job, |_| {})?.0
        }
        (_, m) => {
            let budget = env.max_len().saturating_sub(plan.max_new_tokens);
            for p in &prompts {
                let n = env.tok.encode(p)?.len();
                if n > budget {
                    return Err(LoopError::RunDir {
                        path: env.dir.round(r),
                        msg: format!(
                            "[judge] a judge prompt has {n} tokens but the local judge's context leaves {budget} after judge.max_new_tokens; use a shorter judge.template or a judge.endpoint"
                        ),
                    });
                }
            }
            let model = env.load(m)?;
            generate_responses(&model, env.max_len(), env.tok, &job, env.device, |_| {})?
        }
    };
    for (s, v) in samples.iter_mut().zip(verdicts) {
        let parsed = llm::parse_score(&v.completion, plan.min, plan.max).ok();
        s.scores
            .insert(JUDGE_UNPARSEABLE.into(), parsed.is_none() as u8 as f64);
        if let Some(x) = parsed {
            s.scores.insert(JUDGE_SCORE.into(), x);
        }
        let below = match (plan.min_score, parsed) {
            (Some(min), Some(x)) => x < min,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if below && s.dropped.is_none() {
            s.dropped = Some("judge".into());
        }
    }
    Ok(())
}

/// The reward model's and the LLM judge's round statistics over the scored samples.
pub fn stats(scored: &[Sample]) -> Metrics {
    let mut m = Metrics::new();
    let col = |k: &str| -> Vec<f64> {
        scored
            .iter()
            .filter_map(|s| s.scores.get(k).copied())
            .collect()
    };
    let rewards = col(REWARD_SCORE);
    if !rewards.is_empty() {
        let (mean, std) = mean_std(&rewards);
        m.insert("judge/mean_reward".into(), mean);
        m.insert("judge/reward_std".into(), std);
    }
    let verdicts = col(JUDGE_UNPARSEABLE);
    if !verdicts.is_empty() {
        let (mean, _) = mean_std(&col(JUDGE_SCORE));
        if mean.is_finite() {
            m.insert("judge/score_mean".into(), mean);
        }
        m.insert("judge/n_verdicts".into(), verdicts.len() as f64);
        m.insert(
            "judge/unparseable".into(),
            verdicts.iter().sum::<f64>() / verdicts.len() as f64,
        );
    }
    m.retain(|_, v| v.is_finite());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::generate::{Writer, run as generate};
    use crate::stages::testkit::Kit;

    #[test]
    fn an_untrained_judge_is_unparseable_and_min_score_drops_its_samples() {
        let kit = Kit::new(
            "judge",
            &[
                "model.max_seq_len=512",
                "judge.mode=score",
                "judge.min_score=5",
                "judge.template=\"{prompt}{response} 1-10:\"",
            ],
        );
        let env = kit.env();
        let writer = Writer::Model(Box::new(kit.model()));
        let (mut samples, _) = generate(&env, &kit.plan.generate, &kit.task, &writer, 1).unwrap();
        let plan = kit.plan.judge.clone().unwrap();
        llm(&env, &plan, &ModelRef::Fresh, &mut samples, 4, 1).unwrap();
        // Random weights cannot write "[[N]]": every verdict is unparseable, never scored.
        assert!(samples.iter().all(|s| s.scores[JUDGE_UNPARSEABLE] == 1.0));
        assert!(samples.iter().all(|s| !s.scores.contains_key(JUDGE_SCORE)));
        assert!(
            samples
                .iter()
                .all(|s| s.dropped.as_deref() == Some("judge"))
        );
        let m = stats(&samples);
        assert_eq!(m["judge/unparseable"], 1.0);
        assert_eq!(m["judge/n_verdicts"], samples.len() as f64);
        assert!(!m.contains_key("judge/score_mean"));
    }

    #[test]
    fn reward_stats_are_mean_and_spread() {
        let mut s = vec![Sample::default(), Sample::default()];
        s[0].scores.insert(REWARD_SCORE.into(), 1.0);
        s[1].scores.insert(REWARD_SCORE.into(), 3.0);
        let m = stats(&s);
        assert_eq!((m["judge/mean_reward"], m["judge/reward_std"]), (2.0, 1.0));
    }
}
