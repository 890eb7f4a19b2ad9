//! The pair stage: best-vs-worst preference pairs of each prompt's samples, ranked by the
//! plan's scorer, kept when the gap is at least `min_gap`; the reference model (the round's
//! training start) computes their log-probs once, stored with the pairs so the reference is
//! never in memory during DPO. Stats: `dpo/n_pairs`, `dpo/pair_prompts`.

use crate::env::Env;
use crate::error::Result;
use crate::stages::filter::RULES_SCORE;
use crate::stages::judge::{JUDGE_SCORE, REWARD_SCORE};
use didact_core::{Example, Metrics, Pair, Sample};
use didact_judge::select_pairs;
use didact_model::Lm;
use didact_recipe::{DpoPlan, PairScorer};
use didact_train::{TokenRow, reference_logps};

/// The sample score a scorer ranks by.
pub fn score_key(scorer: PairScorer) -> &'static str {
    match scorer {
        PairScorer::Verifier => "verifier/correct",
        PairScorer::Reward => REWARD_SCORE,
        PairScorer::Rules => RULES_SCORE,
        PairScorer::Judge => JUDGE_SCORE,
    }
}

/// Tokenized (chosen, rejected) rows of pairs.
pub fn pair_rows(env: &Env<'_>, pairs: &[Pair]) -> Result<Vec<(TokenRow, TokenRow)>> {
    pairs
        .iter()
        .map(|p| {
            let rows = env.tokenize(&[
                Example::real(&p.prompt, &p.chosen),
                Example::real(&p.prompt, &p.rejected),
            ])?;
            let [c, r]: [TokenRow; 2] = rows.try_into().expect("two rows");
            Ok((c, r))
        })
        .collect()
}

/// Round `r`'s pairs with the reference's log-probs filled in.
pub fn run(
    env: &Env<'_>,
    plan: &DpoPlan,
    scored: &[Sample],
    reference: &Lm,
    batch_size: usize,
    r: u32,
) -> Result<(Vec<Pair>, Metrics)> {
    let (mut pairs, st) = select_pairs(scored, score_key(plan.scorer), plan.min_gap, r);
    let rows = pair_rows(env, &pairs)?;
    let with_ref = reference_logps(
        reference,
        &rows,
        batch_size,
        env.max_len(),
        env.tok.pad_id,
        env.device,
    );
    for (p, w) in pairs.iter_mut().zip(&with_ref) {
        p.ref_chosen = w.ref_chosen;
        p.ref_rejected = w.ref_rejected;
    }
    let mut m = Metrics::new();
    m.insert("dpo/n_pairs".into(), st.pairs as f64);
    m.insert("dpo/pair_prompts".into(), st.prompts as f64);
    Ok((pairs, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::Kit;

    fn sample(prompt: &str, completion: &str, correct: f64) -> Sample {
        let mut s = Sample {
            prompt: prompt.into(),
            completion: completion.into(),
            round: 1,
            ..Sample::default()
        };
        s.scores.insert("verifier/correct".into(), correct);
        s
    }

    #[test]
    fn verifier_pairs_carry_the_reference_log_probs() {
        let kit = Kit::new("pair", &["train.algo=dpo", "generate.n_per_prompt=2"]);
        let env = kit.env();
        let plan = kit.plan.dpo.clone().unwrap();
        let scored = vec![
            sample("1+2=", "3", 1.0),
            sample("1+2=", "4", 0.0),
            sample("2+2=", "4", 1.0),
            sample("2+2=", "4", 1.0), // no gap: no pair
        ];
        let reference = kit.model();
        let (pairs, m) = run(&env, &plan, &scored, &reference, 4, 1).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            (pairs[0].chosen.as_str(), pairs[0].rejected.as_str()),
            ("3", "4")
        );
        assert_eq!((m["dpo/n_pairs"], m["dpo/pair_prompts"]), (1.0, 2.0));
        let rows = pair_rows(&env, &pairs).unwrap();
        let want = reference_logps(
            &reference,
            &rows,
            4,
            env.max_len(),
            env.tok.pad_id,
            env.device,
        );
        assert_eq!(pairs[0].ref_chosen, want[0].ref_chosen);
        assert!(pairs[0].ref_chosen < 0.0 && pairs[0].ref_rejected < 0.0);
    }
}
