//! The evaluate stage: fixed real held-out data and fresh samples of the round's model →
//! the round's metrics, named like TRL's (`eval/…`, `diversity/…`, `gen/…`, `filter/…`,
//! `data/…`, `train/…`, `time/…`). Metrics that do not apply (accuracy without a verifier,
//! filter metrics in round 0) are absent, which the tables show as null.

use crate::error::Result;
use crate::progress::bar;
use crate::round::{Ctx, TrainLog, start_model};
use didact_core::{Metrics, Sample};
use didact_model::{SamplingParams, generate_all, row_seed};
use didact_recipe::TokenizerKind;
use didact_train::{TokenRow, eval_loss, row_logprobs};

/// What earlier stages of the round measured.
#[derive(Default)]
pub struct StageFacts {
    pub scored: Option<Vec<Sample>>,
    pub pairs: Option<Vec<didact_core::Pair>>,
    /// Round 0's reward-model metrics (`rm/*`).
    pub rm: Option<Metrics>,
    pub train_rows: usize,
    pub synthetic_fraction: f64,
    pub train: Option<TrainLog>,
}

/// "417" → "4 1 7": characters as words for the diversity metrics.
fn spaced_chars(text: &str) -> String {
    let chars: Vec<String> = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(String::from)
        .collect();
    chars.join(" ")
}

fn put(m: &mut Metrics, k: &str, v: f64) {
    if v.is_finite() {
        m.insert(k.to_string(), v);
    }
}

/// Greedy accuracy of the model on `(prompt, answer)` rows under the task's verifier.
fn accuracy(
    ctx: &Ctx<'_>,
    model: &didact_model::Llama,
    rows: &[didact_core::Example],
    label: &str,
) -> Result<f64> {
    let Some(verify) = ctx.task.verifier() else {
        return Ok(f64::NAN);
    };
    if rows.is_empty() {
        return Ok(f64::NAN);
    }
    let prompts: Vec<Vec<u32>> = rows
        .iter()
        .map(|e| ctx.tok.encode(&e.prompt))
        .collect::<std::result::Result<_, _>>()?;
    let params = SamplingParams::greedy(ctx.task.answer_budget(), Some(ctx.tok.eos_id));
    let seeds = vec![0; prompts.len()];
    let pb = bar(prompts.len() as u64, label, ctx.quiet);
    let gens = generate_all(
        model,
        ctx.cfg.max_seq_len,
        &prompts,
        &seeds,
        &params,
        ctx.tok.pad_id,
        ctx.plan.eval.batch_size,
        &ctx.device,
        |n| pb.inc(n as u64),
    )?;
    pb.finish_and_clear();
    let mut correct = 0usize;
    for (e, g) in rows.iter().zip(&gens) {
        let text = ctx.tok.decode(&g.tokens)?;
        if g.stopped && verify(&e.prompt, &text) == Some(true) {
            correct += 1;
        }
    }
    Ok(correct as f64 / rows.len() as f64)
}

pub fn evaluate(ctx: &Ctx<'_>, r: u32, facts: &StageFacts) -> Result<Metrics> {
    let model = ctx.load_model(r)?;
    let mut m = Metrics::new();

    // Held-out real data.
    let eval_rows = ctx.tokenize(&ctx.task.eval)?;
    let (loss, _) = eval_loss(
        &model,
        &eval_rows,
        ctx.plan.eval.batch_size,
        ctx.cfg.max_seq_len,
        ctx.tok.pad_id,
        &ctx.device,
    );
    put(&mut m, "eval/loss_real", loss);
    put(&mut m, "eval/ppl_real", didact_metrics::perplexity(loss));
    put(
        &mut m,
        "eval/accuracy",
        accuracy(ctx, &model, &ctx.task.eval, &format!("r{r} eval acc"))?,
    );
    put(
        &mut m,
        "eval/accuracy_ood",
        accuracy(ctx, &model, &ctx.task.ood, &format!("r{r} eval ood"))?,
    );

    // Diversity of fresh samples at the generation settings.
    let n = ctx.plan.eval.n_samples;
    let prompts: Vec<Vec<u32>> = ctx
        .task
        .eval_prompts(n)
        .iter()
        .map(|p| ctx.tok.encode(p))
        .collect::<std::result::Result<_, _>>()?;
    let seeds: Vec<u64> = (0..n as u64)
        .map(|i| row_seed(ctx.plan.seed, 2000 + r as u64, i))
        .collect();
    let params = SamplingParams {
        temperature: ctx.plan.generate.temperature as f32,
        top_k: ctx.plan.generate.top_k,
        top_p: ctx.plan.generate.top_p as f32,
        max_new_tokens: ctx.plan.generate.max_new_tokens,
        stop_token: Some(ctx.tok.eos_id),
    };
    let pb = bar(n as u64, &format!("r{r} eval div"), ctx.quiet);
    let gens = generate_all(
        &model,
        ctx.cfg.max_seq_len,
        &prompts,
        &seeds,
        &params,
        ctx.tok.pad_id,
        ctx.plan.eval.batch_size,
        &ctx.device,
        |k| pb.inc(k as u64),
    )?;
    pb.finish_and_clear();
    let texts: Vec<String> = gens
        .iter()
        .map(|g| ctx.tok.decode(&g.tokens))
        .collect::<std::result::Result<_, _>>()?;
    // Diversity counts words; with a character vocabulary (the arithmetic world has no spaces)
    // the characters are the words, so each is set apart before counting.
    let texts: Vec<String> = match ctx.plan.tokenizer {
        TokenizerKind::Char => texts.iter().map(|t| spaced_chars(t)).collect(),
        TokenizerKind::Bpe { .. } => texts,
    };
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    put(
        &mut m,
        "diversity/distinct_1",
        didact_metrics::distinct_n(&refs, 1),
    );
    put(
        &mut m,
        "diversity/distinct_2",
        didact_metrics::distinct_n(&refs, 2),
    );
    put(
        &mut m,
        "diversity/self_bleu",
        didact_metrics::self_bleu(&refs, 4),
    );
    put(
        &mut m,
        "diversity/unigram_entropy",
        didact_metrics::unigram_entropy(&refs),
    );
    put(
        &mut m,
        "diversity/bigram_entropy",
        didact_metrics::bigram_entropy(&refs),
    );
    // Against the held-out real completions (same word units): tails and unigram KL.
    let real: Vec<String> = ctx
        .task
        .eval
        .iter()
        .map(|e| match ctx.plan.tokenizer {
            TokenizerKind::Char => spaced_chars(&e.completion),
            TokenizerKind::Bpe { .. } => e.completion.clone(),
        })
        .collect();
    let real_refs: Vec<&str> = real.iter().map(|s| s.as_str()).collect();
    let tail = didact_metrics::tail_mass(&refs, &real_refs, 1);
    put(&mut m, "tail/gen_rare_share", tail.gen_rare_share);
    put(&mut m, "tail/real_rare_coverage", tail.real_rare_coverage);
    put(
        &mut m,
        "dist/kl_real_gen",
        didact_metrics::kl_real_gen(&refs, &real_refs),
    );
    // KL(π ‖ π_ref) to the round's starting model, Monte-Carlo on the samples just drawn:
    // mean over samples of log π(y|x) − log π_ref(y|x) (unbiased at temperature 1).
    if r >= 1 {
        let rows: Vec<TokenRow> = prompts
            .iter()
            .zip(&gens)
            .filter(|(_, g)| !g.tokens.is_empty())
            .map(|(p, g)| {
                let mut ids = p.clone();
                ids.extend(&g.tokens);
                if g.stopped {
                    ids.push(ctx.tok.eos_id);
                }
                TokenRow {
                    ids,
                    n_prompt: p.len(),
                }
            })
            .collect();
        let reference = start_model(ctx, r)?;
        let (bs, len, pad) = (
            ctx.plan.eval.batch_size,
            ctx.cfg.max_seq_len,
            ctx.tok.pad_id,
        );
        let lp = row_logprobs(&model, &rows, bs, len, pad, &ctx.device);
        let lr = row_logprobs(&reference, &rows, bs, len, pad, &ctx.device);
        let kl = lp.iter().zip(&lr).map(|(a, b)| a.0 - b.0).sum::<f64>() / rows.len().max(1) as f64;
        put(&mut m, "eval/kl_ref", kl);
    }
    let mean_len =
        gens.iter().map(|g| g.tokens.len()).sum::<usize>() as f64 / gens.len().max(1) as f64;
    put(&mut m, "gen/mean_length", mean_len);
    let stop_rate = gens.iter().filter(|g| g.stopped).count() as f64 / gens.len().max(1) as f64;
    put(&mut m, "gen/stop_rate", stop_rate);

    // Earlier stages.
    if let Some(scored) = &facts.scored {
        let total = scored.len();
        let kept = scored.iter().filter(|s| s.dropped.is_none()).count();
        put(&mut m, "filter/n_generated", total as f64);
        put(&mut m, "filter/n_kept", kept as f64);
        put(
            &mut m,
            "filter/kept_fraction",
            kept as f64 / total.max(1) as f64,
        );
        let rewards: Vec<f64> = scored
            .iter()
            .filter_map(|s| s.scores.get(crate::round::REWARD_SCORE).copied())
            .collect();
        if !rewards.is_empty() {
            let n = rewards.len() as f64;
            let mean = rewards.iter().sum::<f64>() / n;
            put(&mut m, "judge/mean_reward", mean);
            put(
                &mut m,
                "judge/reward_std",
                (rewards.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt(),
            );
        }
        let judged: Vec<f64> = scored
            .iter()
            .filter_map(|s| s.scores.get("verifier/correct").copied())
            .collect();
        if !judged.is_empty() {
            put(
                &mut m,
                "filter/verifier_accuracy",
                judged.iter().sum::<f64>() / judged.len() as f64,
            );
        }
    }
    for (k, v) in facts.rm.iter().flatten() {
        put(&mut m, k, *v);
    }
    put(&mut m, "data/train_rows", facts.train_rows as f64);
    put(&mut m, "data/synthetic_fraction", facts.synthetic_fraction);
    if let Some(t) = &facts.train {
        put(&mut m, "train/loss", t.final_loss);
        put(&mut m, "train/steps", t.steps as f64);
        put(&mut m, "train/grad_norm", t.last_grad_norm);
        put(&mut m, "train/tokens_per_s", t.tokens_per_s);
        for (k, v) in &t.dpo {
            put(&mut m, k, *v);
        }
    }
    Ok(m)
}
