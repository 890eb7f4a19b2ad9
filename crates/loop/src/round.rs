//! One round, top to bottom: generate → score/filter → mix → train → evaluate. Each stage
//! writes its output atomically, then is recorded in the journal; on resume a recorded stage
//! is read back from disk instead of recomputed. Models are always read back from their
//! checkpoint before use, so an interrupted and an uninterrupted run compute the same thing.

use crate::error::{LoopError, Result, io};
use crate::evaluate::{StageFacts, evaluate};
pub use crate::generators::{JUDGE_SCORE, JUDGE_UNPARSEABLE};
use crate::generators::{fit_teacher, generate_with, judge_samples, self_instruct_round};
use crate::journal::{Entry, Journal};
use crate::progress::{bar, on_loss};
use crate::task::Task;
use didact_core::{Example, Metrics, Pair, Provenance, Sample, write_atomic};
use didact_data::PrefRow;
use didact_data::mix::{MixMode, mix};
use didact_data::table;
use didact_judge::{Rules, score_and_filter, select_pairs};
use didact_model::burn::tensor::Device;
use didact_model::sample::row_seed;
use didact_model::{LlamaConfig, Lm, LmConfig, SamplingParams, Tok};
use didact_recipe::{DpoLossKind, Init, Mix, RunPlan};
use didact_synth::ResponseJob;
use didact_train::dpo_loss::{DpoLoss, DpoObjective};
use didact_train::score_rows;
use didact_train::{
    DpoReport, PairRow, SftConfig, TokenRow, reference_logps, train_dpo, train_sft,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything a round needs.
pub struct Ctx<'a> {
    pub plan: &'a RunPlan,
    pub dir: PathBuf,
    pub device: Device,
    pub task: Task,
    pub tok: Tok,
    pub cfg: LmConfig,
    pub journal: Journal,
    pub quiet: bool,
    /// Set by a `rollback` detector alert: the next round starts from this round's model.
    pub rollback_to: Option<u32>,
}

impl Ctx<'_> {
    pub fn round_dir(&self, r: u32) -> PathBuf {
        self.dir.join("rounds").join(format!("round-{r:02}"))
    }

    pub fn model_dir(&self, r: u32) -> PathBuf {
        self.round_dir(r).join("model")
    }

    /// The student's Llama-family shape (every run without a GPT-2 `[model] hf`).
    pub fn llama_config(&self) -> Result<&LlamaConfig> {
        self.cfg.as_llama().ok_or_else(|| LoopError::RunDir {
            path: self.dir.clone(),
            msg: format!(
                "this needs a Llama-family model; the run's model is {}",
                self.cfg.architecture()
            ),
        })
    }

    /// Round 0's teacher (`[teacher]`).
    pub fn teacher_dir(&self) -> PathBuf {
        self.round_dir(0).join("teacher")
    }

    pub fn load_model(&self, r: u32) -> Result<Lm> {
        Ok(didact_model::any::load(&self.model_dir(r), &self.device)?.model)
    }

    pub fn tokenize(&self, rows: &[Example]) -> Result<Vec<TokenRow>> {
        rows.iter()
            .map(|e| {
                let mut ids = self.tok.encode(&e.prompt)?;
                let n_prompt = ids.len();
                ids.extend(self.tok.encode(&e.completion)?);
                ids.push(self.tok.eos_id);
                Ok(TokenRow { ids, n_prompt })
            })
            .collect()
    }

    /// Seeds are derived from the run seed, a stream id and the round.
    pub fn seed(&self, stream: u64, r: u32) -> u64 {
        row_seed(self.plan.seed, stream, r as u64)
    }
}

/// The train stage's side output (kept beside the model).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainLog {
    pub steps: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub final_loss: f64,
    pub step_losses: Vec<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub last_grad_norm: f64,
    pub tokens: usize,
    pub seconds: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub tokens_per_s: f64,
    /// DPO's metrics (`rewards/*`, `logps/*`, `dpo/*`) when the round ran DPO.
    #[serde(default)]
    pub dpo: BTreeMap<String, f64>,
}

/// JSON has no NaN: serde_json writes it as `null`; read `null` back as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Run `compute` unless the journal says the stage finished; then `load` its output instead.
fn stage<T>(
    ctx: &mut Ctx<'_>,
    r: u32,
    name: &str,
    output: &Path,
    compute: impl FnOnce(&mut Ctx<'_>) -> Result<T>,
    load: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    if ctx.journal.done(r, name).is_some() {
        return load(output);
    }
    let t0 = Instant::now();
    let value = compute(ctx)?;
    let rel = output
        .strip_prefix(&ctx.dir)
        .unwrap_or(output)
        .display()
        .to_string();
    ctx.journal.record(Entry {
        round: r,
        stage: name.to_string(),
        output: rel,
        seconds: t0.elapsed().as_secs_f64(),
    })?;
    Ok(value)
}

fn sampling(plan: &RunPlan) -> SamplingParams {
    SamplingParams {
        temperature: plan.generate.temperature as f32,
        top_k: plan.generate.top_k,
        top_p: plan.generate.top_p as f32,
        max_new_tokens: plan.generate.max_new_tokens,
        stop_token: None,
    }
}

/// Kept samples of a scored round as training rows with synthetic provenance.
fn kept_examples(samples: &[Sample]) -> Vec<Example> {
    samples
        .iter()
        .filter(|s| s.dropped.is_none())
        .map(|s| Example {
            prompt: s.prompt.clone(),
            completion: s.completion.clone(),
            provenance: Provenance::Synthetic { round: s.round },
        })
        .collect()
}

/// The model round `r` starts from (and DPO's reference): a fresh init in round 0, else the
/// previous round's model or the base model (`train.init`).
pub fn start_model(ctx: &Ctx<'_>, r: u32) -> Result<Lm> {
    match (r, ctx.plan.init) {
        (0, _) if !ctx.plan.model.hf.is_empty() => {
            Ok(didact_model::any::load(Path::new(&ctx.plan.model.hf), &ctx.device)?.model)
        }
        (0, _) => Ok(Lm::Llama(
            ctx.llama_config()?.init(ctx.seed(6000, 0), &ctx.device)?,
        )),
        (_, _) if ctx.rollback_to.is_some() => ctx.load_model(ctx.rollback_to.expect("checked")),
        (_, Init::Continue) => ctx.load_model(r - 1),
        (_, Init::Base) => ctx.load_model(0),
        (_, Init::Scratch) => start_model(ctx, 0),
    }
}

/// Tokenized (chosen, rejected) rows of pairs.
fn pair_rows(ctx: &Ctx<'_>, pairs: &[Pair]) -> Result<Vec<(TokenRow, TokenRow)>> {
    pairs
        .iter()
        .map(|p| {
            let rows = ctx.tokenize(&[
                Example::real(&p.prompt, &p.chosen),
                Example::real(&p.prompt, &p.rejected),
            ])?;
            let [c, r]: [TokenRow; 2] = rows.try_into().expect("two rows");
            Ok((c, r))
        })
        .collect()
}

/// Optimizer settings from `[train]` for a call with its own steps, batch, peak LR and seed
/// (warmup capped at half the steps, no accumulation).
pub(crate) fn optim_config(
    plan: &RunPlan,
    steps: usize,
    batch_size: usize,
    lr: f64,
    seed: u64,
    max_len: usize,
) -> SftConfig {
    let t = &plan.train;
    SftConfig {
        steps,
        batch_size,
        grad_accum: 1,
        lr,
        warmup_steps: t.warmup_steps.min(steps / 2),
        min_lr_ratio: t.min_lr_ratio,
        weight_decay: t.weight_decay,
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        grad_clip: t.grad_clip,
        max_len,
        seed,
    }
}

fn sft_config(ctx: &Ctx<'_>, r: u32) -> SftConfig {
    let t = &ctx.plan.train;
    let (steps, lr) = if r == 0 {
        (t.base_steps, t.lr)
    } else {
        (t.steps, if t.round_lr > 0.0 { t.round_lr } else { t.lr })
    };
    SftConfig {
        grad_accum: t.grad_accum,
        ..optim_config(
            ctx.plan,
            steps,
            t.batch_size,
            lr,
            ctx.seed(5000, r),
            ctx.cfg.max_seq_len(),
        )
    }
}

/// SFT of `start` on the mixed rows.
fn fit_sft(ctx: &Ctx<'_>, r: u32, start: Lm, rows: &[Example]) -> Result<(Lm, TrainLog)> {
    let rows = ctx.tokenize(rows)?;
    let cfg = sft_config(ctx, r);
    let pb = bar(cfg.steps as u64, &format!("r{r} train"), ctx.quiet);
    let (model, report) = train_sft(
        start,
        &rows,
        &cfg,
        ctx.tok.pad_id,
        &ctx.device,
        on_loss(&pb),
    )
    .map_err(|e| LoopError::Train {
        round: r,
        source: e,
    })?;
    pb.finish_and_clear();
    let log = TrainLog {
        steps: cfg.steps,
        final_loss: report.final_loss(),
        step_losses: report.step_losses.clone(),
        last_grad_norm: report.grad_norms.last().copied().unwrap_or(f64::NAN),
        tokens: report.tokens,
        seconds: report.seconds,
        tokens_per_s: report.tokens_per_s(),
        dpo: BTreeMap::new(),
    };
    Ok((model, log))
}

/// DPO of `start` on the round's pairs (reference log-probs already in them).
fn fit_dpo(ctx: &Ctx<'_>, r: u32, start: Lm, pairs: &[Pair]) -> Result<(Lm, DpoReport)> {
    let d = &ctx.plan.dpo;
    let rows: Vec<PairRow> = pair_rows(ctx, pairs)?
        .into_iter()
        .zip(pairs)
        .map(|((chosen, rejected), p)| PairRow {
            chosen,
            rejected,
            ref_chosen: p.ref_chosen,
            ref_rejected: p.ref_rejected,
        })
        .collect();
    let opt = optim_config(
        ctx.plan,
        d.steps,
        d.batch_size,
        d.lr,
        ctx.seed(5500, r),
        ctx.cfg.max_seq_len(),
    );
    let obj = DpoObjective {
        loss: match ctx.plan.dpo_loss {
            DpoLossKind::Sigmoid => DpoLoss::Sigmoid,
            DpoLossKind::Ipo => DpoLoss::Ipo,
            DpoLossKind::Hinge => DpoLoss::Hinge,
            DpoLossKind::Robust => DpoLoss::Robust,
        },
        beta: d.beta,
        label_smoothing: d.label_smoothing,
        rpo_alpha: d.rpo_alpha,
    };
    let pb = bar(d.steps as u64, &format!("r{r} dpo"), ctx.quiet);
    let out = train_dpo(
        start,
        &rows,
        &opt,
        &obj,
        ctx.tok.pad_id,
        &ctx.device,
        on_loss(&pb),
    )
    .map_err(|e| LoopError::Train {
        round: r,
        source: e,
    })?;
    pb.finish_and_clear();
    Ok(out)
}

/// Does this recipe score samples with a reward model?
fn uses_reward(plan: &RunPlan) -> bool {
    plan.algo.dpo && plan.dpo.scorer == "reward"
}

/// The score that ranks a prompt's samples into pairs.
fn pair_key(plan: &RunPlan) -> &'static str {
    match plan.dpo.scorer.as_str() {
        "reward" => REWARD_SCORE,
        "rules" => RULES_SCORE,
        "judge" => JUDGE_SCORE,
        _ => "verifier/correct",
    }
}

/// 1 when a sample passed every `[filter]` rule, else 0 (the `rules` pair scorer).
pub const RULES_SCORE: &str = "rules/kept";

/// Score name of the reward model's output.
pub const REWARD_SCORE: &str = "reward/score";

/// Train/held-out preference pairs for the round-0 reward model: `[reward] data` when given
/// (split as `train-rm` splits it), else derived from the world's correct rows.
fn reward_pairs(ctx: &Ctx<'_>) -> Result<(Vec<PrefRow>, Vec<PrefRow>)> {
    let rw = &ctx.plan.reward;
    if rw.data.is_empty() {
        let train = crate::rm::world_prefs(&ctx.task.real_train, ctx.seed(8100, 0));
        let eval = crate::rm::world_prefs(&ctx.task.eval, ctx.seed(8200, 0));
        return Ok((train, eval));
    }
    let split = crate::rm::file_pairs(ctx.plan)?;
    Ok((split.train, split.eval))
}

/// Add `reward/score` from round 0's reward model to every sample.
fn score_with_reward(ctx: &Ctx<'_>, samples: &mut [Sample]) -> Result<()> {
    let (rm, _) = crate::rm::load_reward_model(&ctx.round_dir(0).join("rm"), &ctx.device)?;
    let rows: Vec<Vec<u32>> = samples
        .iter()
        .map(|s| ctx.tok.encode(&format!("{}{}", s.prompt, s.completion)))
        .collect::<std::result::Result<_, _>>()?;
    let r = score_rows(
        &rm,
        &rows,
        ctx.plan.eval.batch_size,
        ctx.cfg.max_seq_len(),
        ctx.tok.pad_id,
        &ctx.device,
    );
    for (s, x) in samples.iter_mut().zip(r) {
        s.scores.insert(REWARD_SCORE.into(), x);
    }
    Ok(())
}

/// Execute round `r` and return its metrics.
pub fn run_round(ctx: &mut Ctx<'_>, r: u32) -> Result<Metrics> {
    let rdir = ctx.round_dir(r);
    std::fs::create_dir_all(&rdir).map_err(io(&rdir))?;
    let plan = ctx.plan;
    let mut facts = StageFacts::default();

    // 1–2. generate, then score and filter (rounds ≥ 1)
    if r >= 1 {
        let gen_path = rdir.join("generated.parquet");
        // The generate stage's own metrics (`endpoint/*`, `self_instruct/*`), beside its output.
        let stats_path = rdir.join("generate_metrics.json");
        let generated = stage(
            ctx,
            r,
            "generate",
            &gen_path,
            |ctx| {
                let prompts = ctx.task.prompts(plan.generate.n_prompts, ctx.seed(3000, r));
                let job = ResponseJob {
                    prompts: &prompts,
                    n_per_prompt: plan.generate.n_per_prompt,
                    params: sampling(plan),
                    batch_size: plan.generate.batch_size,
                    round: r,
                    seed: plan.seed,
                    stream: 1000 + r as u64,
                };
                let pb = bar(
                    (prompts.len() * job.n_per_prompt) as u64,
                    &format!("r{r} generate"),
                    ctx.quiet,
                );
                let mut side = Metrics::new();
                let samples = if plan.self_instruct.seed_tasks.is_empty() {
                    generate_with(ctx, r, &job, &mut side, |n| pb.inc(n as u64))?
                } else {
                    self_instruct_round(ctx, r, &job, &mut side)?
                };
                write_atomic(
                    &stats_path,
                    serde_json::to_string_pretty(&side)
                        .expect("json")
                        .as_bytes(),
                )
                .map_err(io(&stats_path))?;
                pb.finish_and_clear();
                table::write_samples(&gen_path, &samples)?;
                Ok(samples)
            },
            |p| Ok(table::read_samples(p)?),
        )?;
        if stats_path.exists() {
            facts.side.extend(read_metrics(&stats_path)?);
        }
        let scored_path = rdir.join("scored.parquet");
        let scored = stage(
            ctx,
            r,
            "score",
            &scored_path,
            |ctx| {
                let mut samples = generated.clone();
                let rules = Rules {
                    verifier: plan.filter.verifier,
                    min_chars: plan.filter.min_chars,
                    max_chars: plan.filter.max_chars,
                    dedup: plan.filter.dedup,
                    require_stop: plan.filter.require_stop,
                };
                let verifier = ctx.task.verifier();
                let pb = bar(samples.len() as u64, &format!("r{r} score"), ctx.quiet);
                let v = verifier.map(|f| move |p: &str, c: &str| f(p, c));
                score_and_filter(
                    &mut samples,
                    &rules,
                    v.as_ref().map(|f| f as &dyn Fn(&str, &str) -> Option<bool>),
                );
                if plan.algo.dpo && plan.dpo.scorer == "rules" {
                    for smp in samples.iter_mut() {
                        smp.scores
                            .insert(RULES_SCORE.into(), smp.dropped.is_none() as u8 as f64);
                    }
                }
                if uses_reward(plan) {
                    score_with_reward(ctx, &mut samples)?;
                }
                if plan.judge.mode == "score" {
                    judge_samples(ctx, r, &mut samples)?;
                }
                pb.finish_and_clear();
                table::write_samples(&scored_path, &samples)?;
                Ok(samples)
            },
            |p| Ok(table::read_samples(p)?),
        )?;
        facts.scored = Some(scored.clone());

        // 3b. preference pairs, with the reference model's log-probs cached beside them
        if plan.algo.dpo {
            let pairs_path = rdir.join("pairs.parquet");
            let pairs = stage(
                ctx,
                r,
                "pairs",
                &pairs_path,
                |ctx| {
                    let (mut pairs, _) = select_pairs(&scored, pair_key(plan), plan.dpo.min_gap, r);
                    let reference = start_model(ctx, r)?;
                    let rows = pair_rows(ctx, &pairs)?;
                    let with_ref = reference_logps(
                        &reference,
                        &rows,
                        plan.eval.batch_size,
                        ctx.cfg.max_seq_len(),
                        ctx.tok.pad_id,
                        &ctx.device,
                    );
                    for (p, w) in pairs.iter_mut().zip(&with_ref) {
                        p.ref_chosen = w.ref_chosen;
                        p.ref_rejected = w.ref_rejected;
                    }
                    table::write_pairs(&pairs_path, &pairs)?;
                    Ok(pairs)
                },
                |p| Ok(table::read_pairs(p)?),
            )?;
            facts.pairs = Some(pairs);
        }
    }

    // 3. mix
    let train_path = rdir.join("train.parquet");
    let train_rows = stage(
        ctx,
        r,
        "mix",
        &train_path,
        |ctx| {
            let rows = if r == 0 {
                ctx.task.real_train.clone()
            } else {
                let mut pool = Vec::with_capacity(r as usize);
                for i in 1..=r {
                    let p = ctx.round_dir(i).join("scored.parquet");
                    pool.push(kept_examples(&table::read_samples(&p)?));
                }
                let mode = match plan.mix {
                    Mix::Replace => MixMode::Replace,
                    Mix::Accumulate => MixMode::Accumulate,
                    Mix::Ratio(x) => MixMode::Ratio(x),
                };
                mix(
                    &ctx.task.real_train,
                    &pool,
                    mode,
                    plan.mix_size,
                    ctx.seed(4000, r),
                )
            };
            table::write_examples(&train_path, &rows)?;
            Ok(rows)
        },
        |p| Ok(table::read_examples(p)?),
    )?;
    if train_rows.is_empty() {
        return Err(LoopError::RunDir {
            path: train_path,
            msg: format!(
                "round {r}: the training set is empty (every generated sample was dropped; see scored.parquet `dropped`)"
            ),
        });
    }
    facts.train_rows = train_rows.len();
    facts.synthetic_fraction = didact_data::synthetic_fraction(&train_rows);

    // 4. train
    let model_dir = ctx.model_dir(r);
    let log_path = rdir.join("train_log.json");
    let log = stage(
        ctx,
        r,
        "train",
        &model_dir,
        |ctx| {
            let start = start_model(ctx, r)?;
            // Round 0 from a pretrained checkpoint skips base training.
            let sft = if r == 0 {
                plan.model.hf.is_empty()
            } else {
                plan.algo.sft
            };
            let (model, mut log) = if sft {
                fit_sft(ctx, r, start, &train_rows)?
            } else {
                let none = TrainLog {
                    final_loss: f64::NAN,
                    last_grad_norm: f64::NAN,
                    tokens_per_s: f64::NAN,
                    ..TrainLog::default()
                };
                (start, none)
            };
            let pairs = facts.pairs.as_deref().unwrap_or_default();
            let model = if r >= 1 && plan.algo.dpo {
                log.dpo.insert("dpo/n_pairs".into(), pairs.len() as f64);
                if pairs.is_empty() {
                    model
                } else {
                    let (model, rep) = fit_dpo(ctx, r, model, pairs)?;
                    let finite = rep.summary().into_iter().filter(|(_, v)| v.is_finite());
                    log.dpo.extend(finite.map(|(k, v)| (k.to_string(), v)));
                    log.dpo
                        .insert("dpo/tokens_per_s".into(), rep.tokens_per_s());
                    if !sft {
                        // DPO is the round's training: train/* describes it.
                        log.steps = rep.step_losses.len();
                        log.final_loss = rep.summary()[0].1;
                        log.step_losses = rep.step_losses.clone();
                        log.last_grad_norm = rep.grad_norms.last().copied().unwrap_or(f64::NAN);
                        log.tokens = rep.tokens;
                        log.seconds = rep.seconds;
                        log.tokens_per_s = rep.tokens_per_s();
                    }
                    model
                }
            } else {
                model
            };
            write_atomic(
                &log_path,
                serde_json::to_string_pretty(&log).expect("json").as_bytes(),
            )
            .map_err(io(&log_path))?;
            didact_model::any::save(&model_dir, &ctx.cfg, &model, &ctx.tok)?;
            Ok(log)
        },
        |_| {
            let text = std::fs::read_to_string(&log_path).map_err(io(&log_path))?;
            serde_json::from_str(&text).map_err(|e| LoopError::RunDir {
                path: log_path.clone(),
                msg: e.to_string(),
            })
        },
    )?;
    facts.train = Some(log);

    // 4b. round 0 of a reward-scored recipe: the reward model, on the round-0 policy
    if r == 0 && uses_reward(plan) {
        let rm_dir = rdir.join("rm");
        let m_path = rdir.join("rm_metrics.json");
        let m = stage(
            ctx,
            r,
            "reward",
            &rm_dir,
            |ctx| {
                let (train, eval) = reward_pairs(ctx)?;
                let Lm::Llama(backbone) = ctx.load_model(0)? else {
                    return Err(LoopError::RunDir {
                        path: ctx.model_dir(0),
                        msg: "a reward model needs a Llama-family backbone (Llama, Qwen2); this checkpoint is GPT-2".into(),
                    });
                };
                let (rm, m, _) = crate::rm::fit(
                    plan,
                    backbone,
                    &ctx.tok,
                    &train,
                    &eval,
                    &ctx.device,
                    ctx.quiet,
                )?;
                write_atomic(
                    &m_path,
                    serde_json::to_string_pretty(&m).expect("json").as_bytes(),
                )
                .map_err(io(&m_path))?;
                crate::rm::save_reward_model(&rm_dir, plan, &rm, &ctx.tok)?;
                Ok(m)
            },
            |_| read_metrics(&m_path),
        )?;
        facts.side.extend(m);
    }

    // 4c. round 0 of a distillation recipe: the teacher
    if let (0, Some(t)) = (r, &plan.teacher) {
        let m_path = rdir.join("teacher_metrics.json");
        let m = stage(
            ctx,
            r,
            "teacher",
            &ctx.teacher_dir(),
            |ctx| fit_teacher(ctx, t, &m_path),
            |_| read_metrics(&m_path),
        )?;
        facts.side.extend(m);
    }

    // 5. evaluate
    let metrics_path = rdir.join("metrics.json");
    stage(
        ctx,
        r,
        "evaluate",
        &metrics_path,
        |ctx| {
            let t0 = Instant::now();
            let mut m = evaluate(ctx, r, &facts)?;
            let before = ctx.journal.round_seconds(r);
            m.insert("time/round_s".into(), before + t0.elapsed().as_secs_f64());
            write_atomic(
                &metrics_path,
                serde_json::to_string_pretty(&m).expect("json").as_bytes(),
            )
            .map_err(io(&metrics_path))?;
            Ok(m)
        },
        read_metrics,
    )
}

pub fn read_metrics(p: &Path) -> Result<Metrics> {
    let text = std::fs::read_to_string(p).map_err(io(p))?;
    serde_json::from_str(&text).map_err(|e| LoopError::RunDir {
        path: p.to_path_buf(),
        msg: format!("invalid metrics: {e}"),
    })
}
