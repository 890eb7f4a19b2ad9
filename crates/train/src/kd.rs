//! Token-level distillation training (GKD, Agarwal et al. 2024; Hinton KD at β = 0) on the
//! shared optimizer loop: the student matches a [`Teacher`]'s next-token distribution at every
//! completion position of its batch, under the divergence of `kd_loss.rs`. With probability λ
//! (`on_policy`) a micro-batch is on-policy: the current student first samples the completions
//! of the batch's prompts, and the teacher is asked about those. Each micro-batch's loss is its
//! mean over its own completion positions, divided by `grad_accum`. Also the held-out
//! `kl_to_teacher`. A teacher is anything that can say, for a batch of rows, its log-probs at
//! every position: a model (`ModelTeacher`), a top-k list, a known source.

use crate::batch::{Batch, TokenRow, make_batch};
use crate::driver::{Batching, DriveReport, MicroLoss, drive};
use crate::error::{Result, TrainError};
use crate::kd_loss::{KdObjective, bucketed, divergence, masked_mean, tempered_logp};
use didact_core::OptimConfig;
use didact_model::burn::module::Module;
use didact_model::burn::tensor::activation::log_softmax;
use didact_model::burn::tensor::{Device, Int, Tensor};
use didact_model::{Decoder, SamplingParams, generate_batch, row_seed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a teacher says about a batch, on the batch's device.
#[allow(clippy::large_enum_variant)] // built once per micro-batch and consumed at once
pub enum TeacherView {
    /// Its logits at every position (`[B, T, V]`), tempered like the student's.
    Logits(Tensor<3>),
    /// Its log-probs (`[B, T, K]`, temperature 1) of K candidate tokens (`ids`, `[B, T, K]`)
    /// at every position; the remaining mass is one bucket.
    TopK {
        ids: Tensor<3, Int>,
        logp: Tensor<3>,
    },
}

/// A distillation teacher.
pub trait Teacher {
    /// Its distribution after every input position of `rows` as `make_batch(rows, max_len, …)`
    /// lays them out (`T` positions: the longest row, truncated to `max_len`, minus one).
    fn view(&self, rows: &[&TokenRow], max_len: usize, device: &Device) -> Result<TeacherView>;

    /// True when the view is top-k (temperature must then be 1).
    fn is_top_k(&self) -> bool;
}

/// A model on the plain device as a teacher: one forward per batch, no gradients.
pub struct ModelTeacher<'a, M: Decoder> {
    pub model: &'a M,
    pub pad_id: u32,
    /// The device the model lives on.
    pub device: &'a Device,
}

impl<M: Decoder> Teacher for ModelTeacher<'_, M> {
    fn view(&self, rows: &[&TokenRow], max_len: usize, device: &Device) -> Result<TeacherView> {
        let batch = make_batch(rows, max_len, self.pad_id, self.device);
        let logits = self.model.forward(batch.inputs);
        Ok(TeacherView::Logits(Tensor::from_data(
            logits.into_data(),
            device,
        )))
    }

    fn is_top_k(&self) -> bool {
        false
    }
}

/// Per-position divergence of the student's logits from the teacher's view.
///
/// # Shapes
/// - `student_logits`: `[B, T, V]` → `[B, T]`
pub fn per_token(student_logits: Tensor<3>, view: TeacherView, o: &KdObjective) -> Tensor<2> {
    match view {
        TeacherView::Logits(t) => divergence(
            tempered_logp(student_logits, o.temperature),
            tempered_logp(t, o.temperature),
            o.beta,
        ),
        TeacherView::TopK { ids, logp } => {
            let (s, t) = bucketed(log_softmax(student_logits, 2), ids, logp);
            divergence(s, t, o.beta)
        }
    }
}

/// How the trainer distils.
#[derive(Debug, Clone, PartialEq)]
pub struct KdConfig {
    pub objective: KdObjective,
    /// λ: the probability that a micro-batch is sampled by the student first.
    pub on_policy: f64,
    /// How the student samples on-policy completions (its stop token is `eos_id`).
    pub sampling: SamplingParams,
    /// On-policy prompts: each row's prompt, or its first `prompt_tokens` tokens when longer
    /// (prompt-less text rows).
    pub prompt_tokens: usize,
    pub eos_id: u32,
}

/// What a distillation call measured: the optimizer loop's report and how many micro-batches
/// were on-policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KdReport {
    pub drive: DriveReport,
    pub on_policy_batches: usize,
    pub micro_batches: usize,
}

/// The student's own continuations of the rows' prompts (seeded per row).
fn on_policy_rows<M: Module + Decoder>(
    model: &M,
    rows: &[&TokenRow],
    cfg: &KdConfig,
    data: &Batching,
    call: u64,
    device: &Device,
) -> Result<Vec<TokenRow>> {
    let student = model.valid();
    let prompts: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            let p = r.n_prompt.max(cfg.prompt_tokens).clamp(1, r.ids.len() - 1);
            r.ids[..p].to_vec()
        })
        .collect();
    let seeds: Vec<u64> = (0..rows.len() as u64)
        .map(|i| row_seed(data.seed, call, i))
        .collect();
    let params = SamplingParams {
        stop_token: Some(cfg.eos_id),
        ..cfg.sampling.clone()
    };
    let gens = generate_batch(
        &student,
        data.max_len,
        &prompts,
        &seeds,
        &params,
        data.pad_id,
        device,
    )
    .map_err(|e| TrainError::Config(format!("on-policy sampling: {e}")))?;
    Ok(prompts
        .into_iter()
        .zip(gens)
        .map(|(p, g)| {
            let n_prompt = p.len();
            let mut ids = p;
            ids.extend(g.tokens);
            if g.stopped {
                ids.push(cfg.eos_id);
            }
            TokenRow { ids, n_prompt }
        })
        .collect())
}

/// Distil `teacher` into `model` (training on `device.autodiff()`), off-policy on `rows` and
/// on-policy with probability `cfg.on_policy`. `on_step(step, loss)` follows every step.
#[allow(clippy::too_many_arguments)]
pub fn train_kd<M: Module + Decoder>(
    model: M,
    rows: &[TokenRow],
    opt: &OptimConfig,
    data: &Batching,
    device: &Device,
    teacher: &dyn Teacher,
    cfg: &KdConfig,
    mut on_step: impl FnMut(usize, f64),
) -> Result<(M, KdReport)> {
    if teacher.is_top_k() && cfg.objective.temperature != 1.0 {
        return Err(TrainError::Config(
            "a top-k teacher gives log-probs at temperature 1; distil it at temperature 1".into(),
        ));
    }
    let rows: Vec<&TokenRow> = rows.iter().filter(|r| r.n_target() > 0).collect();
    if rows.is_empty() {
        return Err(TrainError::NoData);
    }
    let mut coin = ChaCha8Rng::seed_from_u64(data.seed ^ 0x6b64_5f6f_6e5f_706f);
    let mut calls = 0u64;
    let mut failure = None;
    let mut on_policy_batches = 0;
    let (model, drive_report) = drive(
        model,
        rows.len(),
        opt,
        data.seed,
        device,
        |model, window, m, ad| {
            calls += 1;
            let micro: Vec<&TokenRow> = window[m].iter().map(|&i| rows[i]).collect();
            let on_policy = cfg.on_policy > 0.0 && coin.random::<f64>() < cfg.on_policy;
            let sampled;
            let micro = if on_policy {
                match on_policy_rows(model, &micro, cfg, data, calls, device) {
                    Ok(r) => {
                        sampled = r;
                        sampled.iter().filter(|r| r.n_target() > 0).collect()
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                        micro
                    }
                }
            } else {
                micro
            };
            let batch = make_batch(&micro, data.max_len, data.pad_id, ad);
            let loss = match teacher.view(&micro, data.max_len, ad) {
                Ok(view) => kd_batch_loss(model, &batch, view, &cfg.objective),
                Err(e) => {
                    failure.get_or_insert(e);
                    Tensor::from_floats([f32::NAN], ad)
                }
            };
            MicroLoss {
                loss: loss.div_scalar(opt.grad_accum as f64),
                tokens: batch.n_tokens,
                log: on_policy,
            }
        },
        |step, loss, logs| {
            on_policy_batches += logs.iter().filter(|&&b| b).count();
            on_step(step, loss)
        },
    )
    .map_err(|e| failure.take().unwrap_or(e))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let report = KdReport {
        micro_batches: drive_report.step_losses.len() * opt.grad_accum,
        on_policy_batches,
        drive: drive_report,
    };
    Ok((model, report))
}

/// Mean divergence over a batch's completion positions.
fn kd_batch_loss<M: Decoder>(
    model: &M,
    batch: &Batch,
    view: TeacherView,
    o: &KdObjective,
) -> Tensor<1> {
    let logits = model.forward(batch.inputs.clone());
    masked_mean(
        per_token(logits, view, o),
        batch.mask.clone(),
        batch.n_target,
    )
}

/// Held-out forward KL(teacher ‖ student) per completion position at temperature 1 (the
/// teacher's top-k buckets for a top-k teacher), in nats.
pub fn kl_to_teacher<M: Decoder>(
    student: &M,
    rows: &[TokenRow],
    teacher: &dyn Teacher,
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Result<f64> {
    let forward = KdObjective {
        beta: 0.0,
        temperature: 1.0,
    };
    let rows: Vec<&TokenRow> = rows.iter().filter(|r| r.n_target() > 0).collect();
    let (mut total, mut n) = (0.0, 0usize);
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = make_batch(chunk, max_len, pad_id, device);
        let view = teacher.view(chunk, max_len, device)?;
        let logits = student.forward(batch.inputs.clone());
        let sum = (per_token(logits, view, &forward) * batch.mask).sum();
        total += sum.into_scalar::<f32>() as f64;
        n += batch.n_target;
    }
    Ok(if n == 0 { f64::NAN } else { total / n as f64 })
}
