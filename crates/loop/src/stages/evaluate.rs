//! The evaluate stage: the round's model on fixed held-out real data (loss, perplexity,
//! verifier accuracy in and out of distribution) and on fresh samples at the generation
//! settings — the sample metric suite of `didact_metrics::suite` (the one `didact metrics`
//! reports), `gen/mean_tokens`, `gen/stop_rate`, `dist/rouge_l_train`, `eval/kl_ref` and, in
//! the Markov world, the exact `truth/*`. Metrics that do not apply are absent (null in the
//! tables).

use crate::env::Env;
use crate::error::Result;
use crate::progress::bar;
use crate::seeds::Stream;
use crate::stages::sampling;
use crate::task::Task;
use didact_core::{Example, Metrics};
use didact_metrics::suite::{Unit, in_unit, mean_std, sample_suite};
use didact_model::{Generation, Lm, SamplingParams, generate_all, row_seed};
use didact_recipe::{EvalPlan, SamplingPlan};
use didact_train::{TokenRow, eval_loss, row_logprobs};
use rayon::prelude::*;

/// What the stage looks at.
pub struct Inputs<'a> {
    pub plan: &'a EvalPlan,
    /// The generation settings the diversity samples are drawn at.
    pub sampling: &'a SamplingPlan,
    pub task: &'a Task,
    /// The round's model.
    pub model: &'a Lm,
    /// The round's training start (`eval/kl_ref`), rounds ≥ 1.
    pub reference: Option<&'a Lm>,
    /// The round's training rows (`dist/rouge_l_train`).
    pub train_rows: &'a [Example],
}

fn put(m: &mut Metrics, k: &str, v: f64) {
    if v.is_finite() {
        m.insert(k.to_string(), v);
    }
}

/// Round `r`'s metrics.
pub fn run(env: &Env<'_>, inp: &Inputs<'_>, r: u32) -> Result<Metrics> {
    let (task, bs) = (inp.task, inp.plan.batch_size);
    let mut m = Metrics::new();
    put(
        &mut m,
        "model/params",
        didact_model::burn::module::Module::num_params(inp.model) as f64,
    );
    let eval_rows = env.tokenize(&task.eval)?;
    let (loss, _) = eval_loss(
        inp.model,
        &eval_rows,
        bs,
        env.max_len(),
        env.tok.pad_id,
        env.device,
    );
    put(&mut m, "eval/loss_real", loss);
    put(&mut m, "eval/ppl_real", didact_metrics::perplexity(loss));
    put(
        &mut m,
        "eval/accuracy",
        accuracy(env, inp, &task.eval, &format!("r{r} eval acc"))?,
    );
    put(
        &mut m,
        "eval/accuracy_ood",
        accuracy(env, inp, &task.ood, &format!("r{r} eval ood"))?,
    );
    for (n, rows) in &task.by_length {
        let acc = accuracy(env, inp, rows, &format!("r{r} eval len {n}"))?;
        put(&mut m, &format!("eval/accuracy_len_{n}"), acc);
    }

    // Fresh samples at the generation settings, from fixed held-out prompts.
    let n = inp.plan.n_samples;
    let prompts: Vec<Vec<u32>> = task
        .eval_prompts(n)
        .iter()
        .map(|p| env.tok.encode(p))
        .collect::<std::result::Result<_, _>>()?;
    let seeds: Vec<u64> = (0..n as u64)
        .map(|i| row_seed(env.seed, Stream::EvalSamples.family(r), i))
        .collect();
    let params = SamplingParams {
        stop_token: Some(env.tok.eos_id),
        ..sampling(inp.sampling)
    };
    let pb = bar(n as u64, &format!("r{r} eval div"), env.quiet);
    let gens = generate_all(
        inp.model,
        env.max_len(),
        &prompts,
        &seeds,
        &params,
        env.tok.pad_id,
        bs,
        env.device,
        |k| pb.inc(k as u64),
    )?;
    pb.finish_and_clear();
    let texts: Vec<String> = gens
        .iter()
        .map(|g| env.tok.decode(&g.tokens))
        .collect::<std::result::Result<_, _>>()?;
    // The arithmetic world has no spaces: there every character is a word.
    let unit = if task.world.is_some() {
        Unit::Chars
    } else {
        Unit::Words
    };
    let as_refs = |v: &[String]| -> Vec<String> {
        in_unit(&v.iter().map(|s| s.as_str()).collect::<Vec<_>>(), unit)
    };
    let samples = as_refs(&texts);
    let real = as_refs(
        &task
            .eval
            .iter()
            .map(|e| e.completion.clone())
            .collect::<Vec<_>>(),
    );
    let s: Vec<&str> = samples.iter().map(|x| x.as_str()).collect();
    let rr: Vec<&str> = real.iter().map(|x| x.as_str()).collect();
    m.extend(sample_suite(&s, Some(&rr)));
    let tokens: Vec<f64> = gens.iter().map(|g| g.tokens.len() as f64).collect();
    put(&mut m, "gen/mean_tokens", mean_std(&tokens).0);
    let stopped = gens.iter().filter(|g| g.stopped).count();
    put(
        &mut m,
        "gen/stop_rate",
        stopped as f64 / gens.len().max(1) as f64,
    );
    put(
        &mut m,
        "dist/rouge_l_train",
        rouge_to_pool(&samples, inp.train_rows, unit),
    );
    if let Some(reference) = inp.reference {
        put(
            &mut m,
            "eval/kl_ref",
            kl_ref(env, inp.model, reference, &prompts, &gens, bs),
        );
    }
    if let Some(w) = &task.markov {
        let drawn = (prompts.as_slice(), gens.as_slice());
        m.extend(truth_metrics(env, w, inp, &params, drawn, r)?);
    }
    Ok(m)
}

/// Rows of the ROUGE-L pool: this many of the round's training rows at most (evenly spaced).
const ROUGE_POOL: usize = 500;

/// Mean over samples of the best ROUGE-L F1 against the round's training rows (how much the
/// model reproduces its training data; rouge-score's definition).
fn rouge_to_pool(samples: &[String], rows: &[Example], unit: Unit) -> f64 {
    if rows.is_empty() || samples.is_empty() {
        return f64::NAN;
    }
    let step = rows.len().div_ceil(ROUGE_POOL).max(1);
    let pool: Vec<Vec<String>> = rows
        .iter()
        .step_by(step)
        .map(|e| {
            let t = in_unit(&[e.completion.as_str()], unit).remove(0);
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
    mean_std(&best).0
}

/// KL(π ‖ π_ref) to the round's starting model, Monte-Carlo on the samples just drawn: mean
/// over samples of log π(y|x) − log π_ref(y|x) (unbiased at temperature 1).
fn kl_ref(
    env: &Env<'_>,
    model: &Lm,
    reference: &Lm,
    prompts: &[Vec<u32>],
    gens: &[Generation],
    bs: usize,
) -> f64 {
    let rows = sample_rows(env, prompts, gens, |g| !g.tokens.is_empty());
    let (len, pad) = (env.max_len(), env.tok.pad_id);
    let lp = row_logprobs(model, &rows, bs, len, pad, env.device);
    let lr = row_logprobs(reference, &rows, bs, len, pad, env.device);
    lp.iter().zip(&lr).map(|(a, b)| a.0 - b.0).sum::<f64>() / rows.len().max(1) as f64
}

/// `prompt ++ tokens (++ eos when stopped)` of the kept generations, loss on the generation.
fn sample_rows(
    env: &Env<'_>,
    prompts: &[Vec<u32>],
    gens: &[Generation],
    keep: impl Fn(&Generation) -> bool,
) -> Vec<TokenRow> {
    prompts
        .iter()
        .zip(gens)
        .filter(|(_, g)| keep(g))
        .map(|(p, g)| {
            let mut ids = p.clone();
            ids.extend(&g.tokens);
            if g.stopped {
                ids.push(env.tok.eos_id);
            }
            TokenRow {
                ids,
                n_prompt: p.len(),
            }
        })
        .collect()
}

/// Greedy accuracy of the model on `(prompt, answer)` rows under the task's verifier.
fn accuracy(env: &Env<'_>, inp: &Inputs<'_>, rows: &[Example], label: &str) -> Result<f64> {
    let Some(verify) = inp.task.verifier() else {
        return Ok(f64::NAN);
    };
    if rows.is_empty() {
        return Ok(f64::NAN);
    }
    let prompts: Vec<Vec<u32>> = rows
        .iter()
        .map(|e| env.tok.encode(&e.prompt))
        .collect::<std::result::Result<_, _>>()?;
    let params = SamplingParams::greedy(inp.task.answer_budget(), Some(env.tok.eos_id));
    let seeds = vec![0; prompts.len()];
    let pb = bar(prompts.len() as u64, label, env.quiet);
    let gens = generate_all(
        inp.model,
        env.max_len(),
        &prompts,
        &seeds,
        &params,
        env.tok.pad_id,
        inp.plan.batch_size,
        env.device,
        |n| pb.inc(n as u64),
    )?;
    pb.finish_and_clear();
    let mut correct = 0usize;
    for (e, g) in rows.iter().zip(&gens) {
        let text = env.tok.decode(&g.tokens)?;
        if g.stopped && verify(&e.prompt, &text) == Some(true) {
            correct += 1;
        }
    }
    Ok(correct as f64 / rows.len() as f64)
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
    env: &Env<'_>,
    w: &didact_data::markov::MarkovWorld,
    inp: &Inputs<'_>,
    params: &SamplingParams,
    drawn: (&[Vec<u32>], &[Generation]),
    r: u32,
) -> Result<Metrics> {
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
            .map(|i| row_seed(env.seed, Stream::TruthDraw.family(r), i))
            .collect();
        fresh = generate_all(
            inp.model,
            env.max_len(),
            drawn.0,
            &seeds,
            &pure,
            env.tok.pad_id,
            inp.plan.batch_size,
            env.device,
            |_| {},
        )?;
        (drawn.0, &fresh[..])
    };
    let special: Vec<u32> = ["<pad>", "<unk>"]
        .iter()
        .filter_map(|t| env.tok.inner().token_to_id(t))
        .collect();
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    let mut invalid = 0usize;
    for (p, g) in prompts.iter().zip(gens) {
        let s = w.score(&env.tok.decode(p)?, &env.tok.decode(&g.tokens)?, g.stopped);
        let row = sample_rows(
            env,
            std::slice::from_ref(p),
            std::slice::from_ref(g),
            |_| true,
        )
        .remove(0);
        if g.tokens.iter().any(|t| special.contains(t))
            || !s.logp.is_finite()
            || row.ids.len() > env.max_len()
        {
            invalid += 1;
            continue;
        }
        rows.push(row);
        truth.push(s);
    }
    let q = row_logprobs(
        inp.model,
        &rows,
        inp.plan.batch_size,
        env.max_len(),
        env.tok.pad_id,
        env.device,
    );
    let n_valid = truth.len().max(1) as f64;
    let kl = q.iter().zip(&truth).map(|(q, p)| q.0 - p.logp).sum::<f64>() / n_valid;
    let outcomes = truth.iter().map(|s| s.n).sum::<usize>().max(1) as f64;
    let nll = -truth.iter().map(|s| s.logp).sum::<f64>() / outcomes;
    let model_entropy = -q.iter().map(|q| q.0).sum::<f64>() / outcomes;
    let mut m = Metrics::new();
    put(&mut m, "truth/kl", kl);
    put(&mut m, "truth/model_entropy", model_entropy);
    put(&mut m, "truth/nll", nll);
    put(&mut m, "truth/nll_real", w.nll_per_outcome(&inp.task.eval));
    put(
        &mut m,
        "truth/invalid",
        invalid as f64 / gens.len().max(1) as f64,
    );
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::Kit;

    #[test]
    fn round_metrics_cover_held_out_loss_accuracy_and_the_sample_suite() {
        let kit = Kit::new("evaluate", &[]);
        let env = kit.env();
        let model = kit.model();
        let inputs = Inputs {
            plan: &kit.plan.eval,
            sampling: &kit.plan.generate.sampling,
            task: &kit.task,
            model: &model,
            reference: Some(&model),
            train_rows: &kit.task.real_train,
        };
        let m = run(&env, &inputs, 1).unwrap();
        for k in [
            "eval/loss_real",
            "eval/ppl_real",
            "eval/accuracy",
            "eval/accuracy_ood",
            "diversity/distinct_2",
            "gen/mean_length",
            "gen/mean_tokens",
            "gen/real_mean_length",
            "gen/stop_rate",
            "eval/kl_ref",
            "model/params",
        ] {
            assert!(m.contains_key(k), "{k} missing: {m:?}");
        }
        // The model against itself: KL exactly 0.
        assert_eq!(m["eval/kl_ref"], 0.0);
        // Arithmetic texts: a word is a character, so length in words = tokens generated
        // unless a token decodes to nothing.
        assert!(m["gen/mean_length"] <= m["gen/mean_tokens"]);
        assert!(
            m["eval/loss_real"] > 1.0,
            "random weights do not know arithmetic"
        );
    }

    /// `eval.by_length`: one accuracy per operand length, from the training digits' low end
    /// to the OOD digits' high end, each on its own fixed problems.
    #[test]
    fn accuracy_by_length_has_one_metric_per_operand_length() {
        let kit = Kit::new(
            "evaluate-len",
            &[
                "eval.by_length=true",
                "world.digits=[1, 2]",
                "world.ood_digits=[4, 4]",
            ],
        );
        let lengths: Vec<u32> = kit.task.by_length.iter().map(|(n, _)| *n).collect();
        assert_eq!(lengths, vec![1, 2, 3, 4]);
        for (n, rows) in &kit.task.by_length {
            assert_eq!(rows.len(), 4, "ood_size problems per length");
            for e in rows {
                let a = e.prompt.split('+').next().unwrap();
                assert_eq!(a.len(), *n as usize, "{}", e.prompt);
            }
        }
        let (env, model) = (kit.env(), kit.model());
        let inputs = Inputs {
            plan: &kit.plan.eval,
            sampling: &kit.plan.generate.sampling,
            task: &kit.task,
            model: &model,
            reference: None,
            train_rows: &kit.task.real_train,
        };
        let m = run(&env, &inputs, 0).unwrap();
        for n in 1..=4 {
            let a = m[&format!("eval/accuracy_len_{n}")];
            assert!((0.0..=1.0).contains(&a), "len {n}: {a}");
        }
        assert!(!m.contains_key("eval/accuracy_len_5"));
    }
}
