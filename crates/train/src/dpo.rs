//! Direct Preference Optimization (Rafailov et al. 2023) as TRL's `DPOTrainer` computes it:
//! each batch stacks B chosen and B rejected rows, the policy's summed completion log-probs
//! (prompt masked) enter the loss of `dpo_loss.rs` together with the **cached** reference
//! log-probs — the reference model is evaluated once, before training, and is not held in
//! memory while the policy trains. The optimizer loop is the shared one (`driver.rs`).

use crate::batch::{TokenRow, make_batch};
use crate::dpo_loss::{DpoObjective, loss_tensor};
use crate::driver::{Batching, MicroLoss, drive, tail_mean};
use crate::error::{Result, TrainError};
use crate::sft::{row_logp_sums, row_logprobs};
use didact_core::OptimConfig;
use didact_model::Decoder;
use didact_model::burn::module::Module;
use didact_model::burn::tensor::{Device, Tensor, TensorData};

/// A tokenized preference pair with its cached reference log-probs.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    /// `prompt ++ chosen completion (++ eos)`, loss on the completion.
    pub chosen: TokenRow,
    /// `prompt ++ rejected completion (++ eos)`.
    pub rejected: TokenRow,
    pub ref_chosen: f64,
    pub ref_rejected: f64,
}

/// Summed completion log-probs of the reference model for every pair, computed once.
pub fn reference_logps<M: Decoder>(
    reference: &M,
    pairs: &[(TokenRow, TokenRow)],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<PairRow> {
    let rows: Vec<TokenRow> = pairs
        .iter()
        .flat_map(|(c, r)| [c.clone(), r.clone()])
        .collect();
    let lp = row_logprobs(reference, &rows, batch_size, max_len, pad_id, device);
    pairs
        .iter()
        .zip(lp.chunks(2))
        .map(|((c, r), l)| PairRow {
            chosen: c.clone(),
            rejected: r.clone(),
            ref_chosen: l[0].0,
            ref_rejected: l[1].0,
        })
        .collect()
}

/// Per-step measurements, named as TRL logs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DpoReport {
    pub step_losses: Vec<f64>,
    /// `rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins` per step.
    pub rewards_chosen: Vec<f64>,
    pub rewards_rejected: Vec<f64>,
    pub accuracies: Vec<f64>,
    /// `logps/chosen`, `logps/rejected` (policy, summed over the completion) per step.
    pub logps_chosen: Vec<f64>,
    pub logps_rejected: Vec<f64>,
    pub grad_norms: Vec<f64>,
    pub tokens: usize,
    pub seconds: f64,
}

impl DpoReport {
    /// Means over the last quarter of the steps, keyed by TRL's metric names.
    pub fn summary(&self) -> Vec<(&'static str, f64)> {
        let margins: Vec<f64> = self
            .rewards_chosen
            .iter()
            .zip(&self.rewards_rejected)
            .map(|(a, b)| a - b)
            .collect();
        vec![
            ("dpo/loss", tail_mean(&self.step_losses)),
            ("rewards/chosen", tail_mean(&self.rewards_chosen)),
            ("rewards/rejected", tail_mean(&self.rewards_rejected)),
            ("rewards/margins", tail_mean(&margins)),
            ("rewards/accuracies", tail_mean(&self.accuracies)),
            ("logps/chosen", tail_mean(&self.logps_chosen)),
            ("logps/rejected", tail_mean(&self.logps_rejected)),
            ("dpo/grad_norm", tail_mean(&self.grad_norms)),
        ]
    }

    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

fn vec1(v: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// Per micro-batch sums of the logged quantities: β(π_c − ref_c), β(π_r − ref_r), correct
/// orderings, π_c, π_r.
#[derive(Default)]
struct PairLog {
    rewards_chosen: f64,
    rewards_rejected: f64,
    correct: f64,
    logps_chosen: f64,
    logps_rejected: f64,
}

/// Train the policy on preference pairs. `opt.batch_size` counts pairs per micro-batch.
pub fn train_dpo<M: Module + Decoder>(
    model: M,
    pairs: &[PairRow],
    opt: &OptimConfig,
    obj: &DpoObjective,
    data: &Batching,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
) -> Result<(M, DpoReport)> {
    let pairs: Vec<&PairRow> = pairs
        .iter()
        .filter(|p| p.chosen.n_target() > 0 && p.rejected.n_target() > 0)
        .collect();
    if pairs.is_empty() {
        return Err(TrainError::NoData);
    }
    if obj.beta <= 0.0 || !(0.0..0.5).contains(&obj.label_smoothing) {
        return Err(TrainError::Config(
            "dpo needs beta > 0 and 0 <= label_smoothing < 0.5".into(),
        ));
    }
    let window = (opt.batch_size * opt.grad_accum) as f64;
    let max_len = data.max_len;
    let mut rep = DpoReport::default();
    let (model, driven) = drive(
        model,
        pairs.len(),
        opt,
        data.seed,
        device,
        |model, idx, m, ad| {
            let batch_pairs: Vec<&PairRow> = idx[m].iter().map(|&i| pairs[i]).collect();
            let b = batch_pairs.len();
            // Rows [chosen_0..chosen_{B-1}, rejected_0..rejected_{B-1}], as TRL's collator.
            let rows: Vec<&TokenRow> = batch_pairs
                .iter()
                .map(|p| &p.chosen)
                .chain(batch_pairs.iter().map(|p| &p.rejected))
                .collect();
            let batch = make_batch(&rows, max_len, data.pad_id, ad);
            let logps = row_logp_sums(model, &batch); // [2B]
            let pc = logps.clone().slice(0..b); // [B]
            let pr = logps.slice(b..2 * b); // [B]
            let col =
                |f: &dyn Fn(&PairRow) -> f32| vec1(batch_pairs.iter().map(|p| f(p)).collect(), ad);
            let len_of = |r: &TokenRow| r.n_target().min(max_len - 1) as f32;
            let losses = loss_tensor(
                obj,
                pc.clone(),
                pr.clone(),
                col(&|p| p.ref_chosen as f32),
                col(&|p| p.ref_rejected as f32),
                col(&|p| len_of(&p.chosen)),
                col(&|p| len_of(&p.rejected)),
            );
            let mut loss = losses.sum().div_scalar(window);
            if obj.rpo_alpha > 0.0 {
                // Mean NLL per chosen completion token over the window (this micro-batch's
                // share of it).
                let n_chosen: usize = batch_pairs
                    .iter()
                    .map(|p| p.chosen.n_target().min(max_len - 1))
                    .sum();
                let denom = (n_chosen * opt.grad_accum).max(1) as f64;
                loss = loss
                    + pc.clone()
                        .sum()
                        .neg()
                        .div_scalar(denom)
                        .mul_scalar(obj.rpo_alpha);
            }
            // Logged quantities (detached).
            let pcv: Vec<f32> = pc.into_data().try_to_vec().unwrap_or_default();
            let prv: Vec<f32> = pr.into_data().try_to_vec().unwrap_or_default();
            let mut log = PairLog::default();
            for (i, p) in batch_pairs.iter().enumerate() {
                let (a, r) = (
                    obj.beta * (pcv[i] as f64 - p.ref_chosen),
                    obj.beta * (prv[i] as f64 - p.ref_rejected),
                );
                log.rewards_chosen += a;
                log.rewards_rejected += r;
                log.correct += (a > r) as u8 as f64;
                log.logps_chosen += pcv[i] as f64;
                log.logps_rejected += prv[i] as f64;
            }
            MicroLoss {
                loss,
                tokens: batch.n_tokens,
                log,
            }
        },
        |step, loss, logs: Vec<PairLog>| {
            let sum = |f: fn(&PairLog) -> f64| logs.iter().map(f).sum::<f64>() / window;
            rep.rewards_chosen.push(sum(|l| l.rewards_chosen));
            rep.rewards_rejected.push(sum(|l| l.rewards_rejected));
            rep.accuracies.push(sum(|l| l.correct));
            rep.logps_chosen.push(sum(|l| l.logps_chosen));
            rep.logps_rejected.push(sum(|l| l.logps_rejected));
            on_step(step, loss);
        },
    )?;
    rep.step_losses = driven.step_losses;
    rep.grad_norms = driven.grad_norms;
    rep.tokens = driven.tokens;
    rep.seconds = driven.seconds;
    Ok((model, rep))
}
