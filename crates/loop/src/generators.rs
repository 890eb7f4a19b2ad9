//! Who produces a round's samples and judgements: the generator (an OpenAI-compatible
//! endpoint, the teacher or the previous round's model), Self-Instruct bootstrapping, the
//! round-0 teacher of a distillation recipe, and the LLM judge. `round.rs` calls these from
//! its stages; everything here writes only what its stage owns.

use crate::error::{LoopError, Result, io};
use crate::progress::{bar, on_loss};
use crate::round::{Ctx, optim_config};
use didact_core::{Metrics, Sample, write_atomic};
use didact_model::checkpoint;
use didact_model::sample::row_seed;
use didact_model::{LlamaConfig, Lm, SamplingParams};
use didact_recipe::TeacherSection;
use didact_synth::{ResponseJob, generate_endpoint, generate_responses};
use didact_train::{eval_loss, train_sft};
use std::path::Path;

/// LLM-as-judge: grade every sample with the judge (the previous round's model, or
/// `[judge] endpoint`), greedy; `judge/score` on each sample whose verdict parses,
/// `judge/unparseable` = 1 on the others. With `min_score > 0`, kept samples below it (or
/// unparseable) are dropped as `judge`.
pub(crate) fn judge_samples(ctx: &Ctx<'_>, r: u32, samples: &mut [Sample]) -> Result<()> {
    use didact_judge::llm;
    let j = &ctx.plan.judge;
    let template = if j.template.is_empty() {
        llm::SCORE_TEMPLATE
    } else {
        j.template.as_str()
    };
    let (min, max) = (format!("{}", j.min), format!("{}", j.max));
    let prompts: Vec<String> = samples
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
        .collect();
    let job = ResponseJob {
        prompts: &prompts,
        n_per_prompt: 1,
        params: SamplingParams::greedy(j.max_new_tokens, None),
        batch_size: ctx.plan.generate.batch_size,
        round: r,
        seed: ctx.plan.seed,
        stream: 9000 + r as u64,
    };
    let verdicts = if j.endpoint.is_empty() {
        let budget = ctx.cfg.max_seq_len().saturating_sub(j.max_new_tokens);
        for p in &prompts {
            let n = ctx.tok.encode(p)?.len();
            if n > budget {
                return Err(LoopError::RunDir {
                    path: ctx.round_dir(r),
                    msg: format!(
                        "[judge] a judge prompt has {n} tokens but the local judge's context leaves {budget} after judge.max_new_tokens; use a shorter judge.template or a judge.endpoint"
                    ),
                });
            }
        }
        let model = ctx.load_model(r - 1)?;
        generate_responses(
            &model,
            ctx.cfg.max_seq_len(),
            &ctx.tok,
            &job,
            &ctx.device,
            |_| {},
        )?
    } else {
        let cfg = didact_endpoint::EndpointConfig {
            base_url: j.endpoint.clone(),
            model: j.endpoint_model.clone(),
            api_key_env: j.api_key_env.clone(),
            cache_dir: Some(ctx.dir.join("cache").join("judge")),
            ..endpoint_config(ctx)
        };
        generate_endpoint(&cfg, &job, |_| {})?.0
    };
    for (s, v) in samples.iter_mut().zip(verdicts) {
        match llm::parse_score(&v.completion, j.min, j.max) {
            Ok(x) => {
                s.scores.insert(JUDGE_SCORE.into(), x);
                s.scores.insert(JUDGE_UNPARSEABLE.into(), 0.0);
                if j.min_score > 0.0 && x < j.min_score && s.dropped.is_none() {
                    s.dropped = Some("judge".into());
                }
            }
            Err(_) => {
                s.scores.insert(JUDGE_UNPARSEABLE.into(), 1.0);
                if j.min_score > 0.0 && s.dropped.is_none() {
                    s.dropped = Some("judge".into());
                }
            }
        }
    }
    Ok(())
}

/// Sample score names of the LLM judge.
pub const JUDGE_SCORE: &str = "judge/score";
pub const JUDGE_UNPARSEABLE: &str = "judge/unparseable";

/// Run a generation job on the round's generator: `[generate] endpoint` when set (its costs
/// added to `side` as `endpoint/*`), else the teacher or the previous round's model.
pub(crate) fn generate_with(
    ctx: &Ctx<'_>,
    r: u32,
    job: &ResponseJob<'_>,
    side: &mut Metrics,
    on_done: impl Fn(usize) + Sync,
) -> Result<Vec<Sample>> {
    if ctx.plan.generate.endpoint.is_empty() {
        let model = generator(ctx, r)?;
        return Ok(generate_responses(
            &model,
            ctx.cfg.max_seq_len(),
            &ctx.tok,
            job,
            &ctx.device,
            on_done,
        )?);
    }
    let (samples, stats) = generate_endpoint(&endpoint_config(ctx), job, on_done)?;
    for (k, v) in stats.metrics("endpoint") {
        *side.entry(k).or_insert(0.0) += v;
    }
    Ok(samples)
}

/// A Self-Instruct round: new instructions from the generator with in-context tasks from the
/// pool (seed tasks + earlier rounds' accepted instructions), filtered into the pool
/// (`instructions.jsonl`: every candidate and why it was dropped), then one instance per
/// accepted instruction, input first — the round's samples (empty outputs are counted, dropped). `self_instruct/*` counts go to `side`.
pub(crate) fn self_instruct_round(
    ctx: &Ctx<'_>,
    r: u32,
    job: &ResponseJob<'_>,
    side: &mut Metrics,
) -> Result<Vec<Sample>> {
    use didact_synth::self_instruct as si;
    use rand::SeedableRng;
    use rand::seq::IndexedRandom;
    let cfg = &ctx.plan.self_instruct;
    let seed_path = Path::new(&cfg.seed_tasks);
    let seeds = si::load_seed_tasks(seed_path).map_err(|msg| LoopError::RunDir {
        path: seed_path.to_path_buf(),
        msg,
    })?;
    let human: Vec<String> = seeds.iter().map(|t| t.instruction.clone()).collect();
    let mut machine: Vec<String> = Vec::new();
    for q in 1..r {
        let p = ctx.round_dir(q).join("instructions.jsonl");
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| LoopError::RunDir {
                    path: p.clone(),
                    msg: e.to_string(),
                })?;
            if v["dropped"].is_null() {
                machine.push(v["instruction"].as_str().unwrap_or("").to_string());
            }
        }
    }
    let mut pool = si::Pool::new(&human);
    for m in &machine {
        pool.add(m);
    }
    // Prompts: k_human seed and k_machine machine instructions, seeded per prompt.
    let prompts: Vec<String> = (0..ctx.plan.generate.n_prompts)
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(row_seed(
                ctx.plan.seed,
                4000 + r as u64,
                i as u64,
            ));
            let mut ctx_tasks: Vec<&str> = human
                .choose_multiple(&mut rng, cfg.k_human)
                .map(|s| s.as_str())
                .collect();
            ctx_tasks.extend(
                machine
                    .choose_multiple(&mut rng, cfg.k_machine)
                    .map(|s| s.as_str()),
            );
            si::encode_prompt(&ctx_tasks)
        })
        .collect();
    let n_given: Vec<usize> = prompts.iter().map(|p| p.lines().count() - 2).collect();
    let mut params = job.params.clone();
    params.max_new_tokens = cfg.max_new_tokens;
    let list_job = ResponseJob {
        prompts: &prompts,
        n_per_prompt: 1,
        params,
        batch_size: job.batch_size,
        round: r,
        seed: job.seed,
        stream: job.stream,
    };
    let lists = generate_with(ctx, r, &list_job, side, |_| {})?;
    let candidates: Vec<String> = lists
        .iter()
        .zip(&n_given)
        .flat_map(|(s, &n)| si::parse_instructions(&s.completion, n))
        .collect();
    let filter = si::FilterConfig {
        min_words: cfg.min_words,
        max_words: cfg.max_words,
        rouge_threshold: cfg.rouge_threshold,
    };
    let (reasons, counts) = si::filter_into(&candidates, &mut pool, &filter);
    let mut text = String::new();
    for (c, why) in candidates.iter().zip(&reasons) {
        text.push_str(&serde_json::json!({"instruction": c, "dropped": why}).to_string());
        text.push('\n');
    }
    let p = ctx.round_dir(r).join("instructions.jsonl");
    write_atomic(&p, text.as_bytes()).map_err(io(&p))?;
    let accepted: Vec<String> = candidates
        .iter()
        .zip(&reasons)
        .filter(|(_, why)| why.is_none())
        .map(|(c, _)| c.clone())
        .collect();
    side.insert("self_instruct/candidates".into(), candidates.len() as f64);
    side.insert("self_instruct/accepted".into(), accepted.len() as f64);
    side.insert("self_instruct/pool_size".into(), pool.len() as f64);
    for (why, n) in counts {
        side.insert(format!("self_instruct/dropped_{why}"), n as f64);
    }
    // Instances, input first: the reply is split at `Output:` into input and output; the
    // sample is the instance prompt (instruction + input) and its output.
    let requests: Vec<String> = accepted.iter().map(|c| si::instance_request(c)).collect();
    let instance_job = ResponseJob {
        prompts: &requests,
        n_per_prompt: 1,
        params: job.params.clone(),
        batch_size: job.batch_size,
        round: r,
        seed: job.seed,
        stream: 5000 + r as u64,
    };
    let replies = generate_with(ctx, r, &instance_job, side, |_| {})?;
    let mut samples = Vec::with_capacity(replies.len());
    let mut unparsed = 0usize;
    for (inst, mut s) in accepted.iter().zip(replies) {
        match si::parse_instance(&s.completion) {
            Some((input, output)) => {
                s.prompt = si::instance_prompt(inst, &input);
                s.completion = output;
                samples.push(s);
            }
            None => unparsed += 1,
        }
    }
    side.insert("self_instruct/instances".into(), samples.len() as f64);
    side.insert("self_instruct/instances_empty".into(), unparsed as f64);
    Ok(samples)
}

/// `[generate]`'s endpoint settings; the cache lives in the run directory.
pub(crate) fn endpoint_config(ctx: &Ctx<'_>) -> didact_endpoint::EndpointConfig {
    let g = &ctx.plan.generate;
    didact_endpoint::EndpointConfig {
        base_url: g.endpoint.clone(),
        model: g.endpoint_model.clone(),
        api_key_env: g.api_key_env.clone(),
        chat: g.chat,
        concurrency: g.concurrency,
        timeout: std::time::Duration::from_secs_f64(g.timeout_s),
        max_retries: g.max_retries,
        backoff: std::time::Duration::from_millis(g.backoff_ms),
        cache_dir: g.cache.then(|| ctx.dir.join("cache").join("endpoint")),
    }
}

/// The model that generates round `r`'s samples: the teacher when there is one, else the
/// previous round's model.
pub(crate) fn generator(ctx: &Ctx<'_>, r: u32) -> Result<Lm> {
    match &ctx.plan.teacher {
        Some(_) => Ok(didact_model::any::load(&ctx.teacher_dir(), &ctx.device)?.model),
        None => ctx.load_model(r - 1),
    }
}

/// The teacher's shape: the student's vocabulary, context and RoPE with `[teacher]`'s size.
pub(crate) fn teacher_config(student: &LlamaConfig, t: &TeacherSection) -> LlamaConfig {
    student
        .clone()
        .with_d_model(t.d_model)
        .with_n_layers(t.n_layers)
        .with_n_heads(t.n_heads)
        .with_n_kv_heads(t.n_kv_heads)
        .with_d_ff(t.d_ff)
}

/// Round 0's teacher stage: train the teacher on the real rows, save it, measure it.
pub(crate) fn fit_teacher(
    ctx: &Ctx<'_>,
    t: &TeacherSection,
    metrics_path: &Path,
) -> Result<Metrics> {
    let cfg = teacher_config(ctx.llama_config()?, t);
    let start = cfg.init(ctx.seed(6100, 0), &ctx.device)?;
    let rows = ctx.tokenize(&ctx.task.real_train)?;
    let sc = optim_config(
        ctx.plan,
        t.steps,
        ctx.plan.train.batch_size,
        t.lr,
        ctx.seed(5100, 0),
        cfg.max_seq_len,
    );
    let pb = bar(t.steps as u64, "r0 teacher", ctx.quiet);
    let (model, report) = train_sft(start, &rows, &sc, ctx.tok.pad_id, &ctx.device, on_loss(&pb))
        .map_err(|e| LoopError::Train {
        round: 0,
        source: e,
    })?;
    pb.finish_and_clear();
    let eval_rows = ctx.tokenize(&ctx.task.eval)?;
    let (loss, _) = eval_loss(
        &model,
        &eval_rows,
        ctx.plan.eval.batch_size,
        cfg.max_seq_len,
        ctx.tok.pad_id,
        &ctx.device,
    );
    let mut m = Metrics::new();
    m.insert("teacher/loss_real".into(), loss);
    m.insert("teacher/ppl_real".into(), didact_metrics::perplexity(loss));
    m.insert("teacher/train_loss".into(), report.final_loss());
    m.insert(
        "teacher/params".into(),
        didact_model::burn::module::Module::num_params(&model) as f64,
    );
    m.retain(|_, v| v.is_finite());
    write_atomic(
        metrics_path,
        serde_json::to_string_pretty(&m).expect("json").as_bytes(),
    )
    .map_err(io(metrics_path))?;
    checkpoint::save(&ctx.teacher_dir(), &cfg, &model, &ctx.tok)?;
    Ok(m)
}
