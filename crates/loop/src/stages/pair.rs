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
