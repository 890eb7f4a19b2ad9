//! The evaluate stage: fixed real held-out data and fresh samples of the round's model →
//! the round's metrics, named like TRL's (`eval/…`, `diversity/…`, `gen/…`, `filter/…`,
//! `data/…`, `train/…`, `time/…`). Metrics that do not apply (accuracy without a verifier,
//! filter metrics in round 0) are absent, which the tables show as null.

use crate::error::Result;
use crate::progress::bar;
use crate::round::{Ctx, TrainLog, start_model};
use didact_core::{Metrics, Sample};
use didact_model::{SamplingParams, generate_all, row_seed};
use didact_train::{TokenRow, eval_loss, row_logprobs};
use rayon::prelude::*;

/// What earlier stages of the round measured.
#[derive(Default)]
pub struct StageFacts {
    pub scored: Option<Vec<Sample>>,
    pub pairs: Option<Vec<didact_core::Pair>>,
    /// Metrics of round 0's side models: the reward model (`rm/*`), the teacher (`teacher/*`).
    pub side: Metrics,
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

/// Mean and population standard deviation (NaN, NaN when empty).
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Rows of the ROUGE-L pool: this many of the round's training rows at most (evenly spaced).
const ROUGE_POOL: usize = 500;

/// Mean over samples of the best ROUGE-L F1 against the round's training rows (how much the
/// model reproduces its training data; rouge-score's definition, `didact_metrics::rouge`).
fn rouge_to_pool(ctx: &Ctx<'_>, r: u32, samples: &[String], chars: bool) -> Result<f64> {
    let path = ctx.round_dir(r).join("train.parquet");
    if !path.exists() || samples.is_empty() {
        return Ok(f64::NAN);
    }
    let rows = didact_data::table::read_examples(&path)?;
    let step = rows.len().div_ceil(ROUGE_POOL).max(1);
    let pool: Vec<Vec<String>> = rows
        .iter()
        .step_by(step)
        .map(|e| {
            let t = if chars {
                spaced_chars(&e.completion)
            } else {
                e.completion.clone()
            };
            didact_metrics::rouge::rouge_tokens(&t)
        })
        .collect();
    let best: Vec<f64> = samples
        .par_iter()
        .map(|s| {
            let toks = didact_metrics::rouge::rouge_tokens(s);
            pool.iter()
                .map(|p| didact_metrics::rouge::rouge_l_tokens(p, &toks).f)
                .fold(0.0, f64::max)
        })
        .collect();
    Ok(mean_std(&best).0)
}

/// `truth/*` for the Markov-source world, from samples of the model at temperature 1 (the
/// evaluation samples when the generation settings are plain sampling, else a fresh draw):
/// - `truth/kl`: KL(model ‖ source) per sample, the mean of ln q(y|x) − ln p(y|x) (nats);
/// - `truth/nll`: the source's NLL of the samples per outcome (character or end), nats;
/// - `truth/nll_real`: the same on the held-out real sentences — the source's entropy rate;
/// - `truth/model_entropy`: the model's own NLL of its samples per outcome (its entropy rate:
///   a collapsing model grows sure of itself while `truth/nll` stays put, and the gap is KL);
/// - `truth/invalid`: share of samples with a token outside the source's alphabet (excluded).
///
/// Samples are cut at `max_new_tokens` in both distributions, so the estimate is exact for
/// the cut strings.
fn truth_metrics(
    ctx: &Ctx<'_>,
    r: u32,
    w: &didact_data::markov::MarkovWorld,
    model: &didact_model::Lm,
    params: &SamplingParams,
    drawn: (&[Vec<u32>], &[didact_model::Generation]),
    m: &mut Metrics,
) -> Result<()> {
    let pure = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        ..params.clone()
    };
    let fresh;
    let (prompts, gens) = if *params == pure {
        drawn
    } else {
        let seeds: Vec<u64> = (0..drawn.0.len() as u64)
            .map(|i| row_seed(ctx.plan.seed, 3000 + r as u64, i))
            .collect();
        fresh = generate_all(
            model,
            ctx.cfg.max_seq_len(),
            drawn.0,
            &seeds,
            &pure,
            ctx.tok.pad_id,
            ctx.plan.eval.batch_size,
            &ctx.device,
            |_| {},
        )?;
        (drawn.0, &fresh[..])
    };
    let special: Vec<u32> = ["<pad>", "<unk>"]
        .iter()
        .filter_map(|t| ctx.tok.inner().token_to_id(t))
        .collect();
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    let mut invalid = 0usize;
    for (p, g) in prompts.iter().zip(gens) {
        let mut ids = p.clone();
        ids.extend(&g.tokens);
        if g.stopped {
            ids.push(ctx.tok.eos_id);
        }
        let s = w.score(&ctx.tok.decode(p)?, &ctx.tok.decode(&g.tokens)?, g.stopped);
        if g.tokens.iter().any(|t| special.contains(t))
            || !s.logp.is_finite()
            || ids.len() > ctx.cfg.max_seq_len()
        {
            invalid += 1;
            continue;
        }
        rows.push(TokenRow {
            ids,
            n_prompt: p.len(),
        });
        truth.push(s);
    }
    let q = row_logprobs(
        model,
        &rows,
        ctx.plan.eval.batch_size,
        ctx.cfg.max_seq_len(),
        ctx.tok.pad_id,
        &ctx.device,
    );
    let n_valid = truth.len().max(1) as f64;
    let kl = q.iter().zip(&truth).map(|(q, p)| q.0 - p.logp).sum::<f64>() / n_valid;
    let outcomes = truth.iter().map(|s| s.n).sum::<usize>().max(1) as f64;
    let nll = -truth.iter().map(|s| s.logp).sum::<f64>() / outcomes;
    let model_entropy = -q.iter().map(|q| q.0).sum::<f64>() / outcomes;
    put(m, "truth/kl", kl);
    put(m, "truth/model_entropy", model_entropy);
    put(m, "truth/nll", nll);
    put(m, "truth/nll_real", w.nll_per_outcome(&ctx.task.eval));
    put(
        m,
        "truth/invalid",
        invalid as f64 / gens.len().max(1) as f64,
    );
    Ok(())
}

fn put(m: &mut Metrics, k: &str, v: f64) {
    if v.is_finite() {
        m.insert(k.to_string(), v);
    }
}

/// Greedy accuracy of the model on `(prompt, answer)` rows under the task's verifier.
fn accuracy(
    ctx: &Ctx<'_>,
    model: &didact_model::Lm,
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
        ctx.cfg.max_seq_len(),
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
    put(
        &mut m,
        "model/params",
        didact_model::burn::module::Module::num_params(&model) as f64,
    );

    // Held-out real data.
    let eval_rows = ctx.tokenize(&ctx.task.eval)?;
    let (loss, _) = eval_loss(
        &model,
        &eval_rows,
        ctx.plan.eval.batch_size,
        ctx.cfg.max_seq_len(),
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
        ctx.cfg.max_seq_len(),
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
    // Diversity counts words; the arithmetic world has no spaces, so there the characters are
    // the words and each is set apart before counting.
    let words_are_chars = ctx.task.world.is_some();
    let texts: Vec<String> = if words_are_chars {
        texts.iter().map(|t| spaced_chars(t)).collect()
    } else {
        texts
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
        .map(|e| {
            if words_are_chars {
                spaced_chars(&e.completion)
            } else {
                e.completion.clone()
            }
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
            ctx.cfg.max_seq_len(),
            ctx.tok.pad_id,
        );
        let lp = row_logprobs(&model, &rows, bs, len, pad, &ctx.device);
        let lr = row_logprobs(&reference, &rows, bs, len, pad, &ctx.device);
        let kl = lp.iter().zip(&lr).map(|(a, b)| a.0 - b.0).sum::<f64>() / rows.len().max(1) as f64;
        put(&mut m, "eval/kl_ref", kl);
    }
    let lens: Vec<f64> = gens.iter().map(|g| g.tokens.len() as f64).collect();
    let (mean_len, std_len) = mean_std(&lens);
    put(&mut m, "gen/mean_length", mean_len);
    put(&mut m, "gen/length_std", std_len);
    let real_lens: Vec<f64> = ctx
        .task
        .eval
        .iter()
        .map(|e| ctx.tok.encode(&e.completion).map(|t| t.len() as f64))
        .collect::<std::result::Result<_, _>>()?;
    put(&mut m, "gen/real_mean_length", mean_std(&real_lens).0);
    put(
        &mut m,
        "dist/rouge_l_train",
        rouge_to_pool(ctx, r, &texts, words_are_chars)?,
    );
    if let Some(w) = &ctx.task.markov {
        truth_metrics(ctx, r, w, &model, &params, (&prompts, &gens), &mut m)?;
    }
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
        // The breakdown: how many samples each rule dropped (the first failing rule counts).
        let mut by_rule: std::collections::BTreeMap<String, usize> = Default::default();
        for s in scored {
            if let Some(rule) = &s.dropped {
                *by_rule.entry(rule.replace(['/', ' '], "_")).or_default() += 1;
            }
        }
        for (rule, n) in by_rule {
            put(&mut m, &format!("filter/dropped_{rule}"), n as f64);
        }
        let rewards: Vec<f64> = scored
            .iter()
            .filter_map(|s| s.scores.get(crate::round::REWARD_SCORE).copied())
            .collect();
        if !rewards.is_empty() {
            let (mean, std) = mean_std(&rewards);
            put(&mut m, "judge/mean_reward", mean);
            put(&mut m, "judge/reward_std", std);
        }
        let verdicts: Vec<f64> = scored
            .iter()
            .filter_map(|s| s.scores.get(crate::round::JUDGE_UNPARSEABLE).copied())
            .collect();
        if !verdicts.is_empty() {
            let graded: Vec<f64> = scored
                .iter()
                .filter_map(|s| s.scores.get(crate::round::JUDGE_SCORE).copied())
                .collect();
            put(&mut m, "judge/score_mean", mean_std(&graded).0);
            put(&mut m, "judge/n_verdicts", verdicts.len() as f64);
            put(
                &mut m,
                "judge/unparseable",
                verdicts.iter().sum::<f64>() / verdicts.len() as f64,
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
    for (k, v) in &facts.side {
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
