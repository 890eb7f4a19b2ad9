//! Supervised fine-tuning with a completion-only loss: AdamW, linear warmup + cosine decay,
//! global-norm gradient clipping (as `torch.nn.utils.clip_grad_norm_`), gradient accumulation
//! (the loss of an accumulation window is the mean over all its completion tokens, so the
//! result equals one big batch), held-out eval loss, and a stop on the first non-finite loss.

use crate::batch::{Batch, EpochSampler, TokenRow, make_batch};
use crate::error::{Result, TrainError};
use crate::schedule::warmup_cosine;
use didact_model::Decoder;
use didact_model::burn::module::{Module, ModuleVisitor, Param};
use didact_model::burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use didact_model::burn::tensor::activation::log_softmax;
use didact_model::burn::tensor::{Device, Int, Tensor};
use std::time::Instant;

/// Optimisation settings of one training call (one round's SFT, DPO or reward-model fit).
#[derive(Debug, Clone, PartialEq)]
pub struct SftConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Rows per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub warmup_steps: usize,
    /// Final LR as a fraction of the peak.
    pub min_lr_ratio: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient-norm clip; 0 disables.
    pub grad_clip: f64,
    /// Rows are truncated to this many tokens.
    pub max_len: usize,
    /// Seeds the data order.
    pub seed: u64,
}

/// What a training call measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SftReport {
    /// Loss (mean NLL per completion token) of every optimizer step.
    pub step_losses: Vec<f64>,
    /// Global gradient norm before clipping, per step.
    pub grad_norms: Vec<f64>,
    /// Input tokens processed (non-pad).
    pub tokens: usize,
    pub seconds: f64,
}

impl SftReport {
    /// Mean loss over the last quarter of the steps (a smoothed final training loss).
    pub fn final_loss(&self) -> f64 {
        let n = self.step_losses.len();
        if n == 0 {
            return f64::NAN;
        }
        let tail = &self.step_losses[n - n.div_ceil(4)..];
        tail.iter().sum::<f64>() / tail.len() as f64
    }

    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// Sum of completion-token NLL over a batch, as a rank-1 tensor of one element.
///
/// # Shapes
/// - logits `[B, T, V]`, targets/mask `[B, T]` → `[1]`
pub fn batch_nll_sum<M: Decoder>(model: &M, batch: &Batch) -> Tensor<1> {
    let logits = model.forward(batch.inputs.clone()); // [B, T, V]
    let logp = log_softmax(logits, 2); // [B, T, V]
    let picked = logp.gather(2, batch.targets.clone().unsqueeze_dim(2)); // [B, T, 1]
    let picked = picked.squeeze_dim::<2>(2); // [B, T]
    (picked * batch.mask.clone()).sum().neg()
}

/// Summed completion-token log-probability of every row (differentiable).
///
/// # Shapes
/// - logits `[B, T, V]`, targets/mask `[B, T]` → `[B]`
pub fn row_logp_sums<M: Decoder>(model: &M, batch: &Batch) -> Tensor<1> {
    logp_sums_of(model.forward(batch.inputs.clone()), batch)
}

/// Per-row summed completion-token log-probability from a batch's logits.
///
/// # Shapes
/// - logits `[B, T, V]`, targets/mask `[B, T]` → `[B]`
pub fn logp_sums_of(logits: Tensor<3>, batch: &Batch) -> Tensor<1> {
    let [b, t] = batch.inputs.dims();
    let logp = log_softmax(logits, 2)
        .gather(2, batch.targets.clone().unsqueeze_dim(2)) // [B, T, 1]
        .reshape([b, t]); // [B, T]
    (logp * batch.mask.clone()).sum_dim(1).reshape([b]) // [B]
}

/// AdamW as every trainer here configures it.
pub(crate) fn adamw(cfg: &SftConfig) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(cfg.beta1 as f32)
        .with_beta_2(cfg.beta2 as f32)
        .with_epsilon(cfg.eps as f32)
        .with_weight_decay(cfg.weight_decay as f32)
}

/// Fine-tune `model` (on any device; training runs on `device.autodiff()`) and return the
/// trained model on the plain device. `on_step(step, loss)` is called after each optimizer step.
pub fn train_sft<M: Module + Decoder>(
    model: M,
    rows: &[TokenRow],
    cfg: &SftConfig,
    pad_id: u32,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
) -> Result<(M, SftReport)> {
    let rows: Vec<&TokenRow> = rows.iter().filter(|r| r.n_target() > 0).collect();
    if rows.is_empty() {
        return Err(TrainError::NoData);
    }
    if cfg.batch_size == 0 || cfg.grad_accum == 0 {
        return Err(TrainError::Config(
            "batch_size and grad_accum must be > 0".into(),
        ));
    }
    let ad = device.clone().autodiff();
    let mut model = model.fork(&ad).train();
    let mut optim = adamw(cfg).init();
    let mut sampler = EpochSampler::new(rows.len(), cfg.seed);
    let mut next_row = || sampler.next_index();

    let start = Instant::now();
    let mut report = SftReport {
        step_losses: Vec::with_capacity(cfg.steps),
        grad_norms: Vec::with_capacity(cfg.steps),
        tokens: 0,
        seconds: 0.0,
    };
    for step in 0..cfg.steps {
        // Draw the whole window first so the loss can be normalised by its token count.
        let micro: Vec<Vec<&TokenRow>> = (0..cfg.grad_accum)
            .map(|_| (0..cfg.batch_size).map(|_| rows[next_row()]).collect())
            .collect();
        let batches: Vec<Batch> = micro
            .iter()
            .map(|m| make_batch(m, cfg.max_len, pad_id, &ad))
            .collect();
        let window_tokens: usize = batches.iter().map(|b| b.n_target).sum::<usize>().max(1);
        let mut accum = GradientsAccumulator::<M>::new();
        let mut step_loss = 0.0;
        for (i, batch) in batches.iter().enumerate() {
            let loss = batch_nll_sum(&model, batch).div_scalar(window_tokens as f64);
            let value: f64 = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    loss: value,
                    step,
                    micro: i,
                });
            }
            step_loss += value;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accum.accumulate(&model, grads);
            report.tokens += batch.n_tokens;
        }
        let mut grads = accum.grads();
        let norm = clip_global_norm(&model, &mut grads, cfg.grad_clip);
        if !norm.is_finite() {
            return Err(TrainError::NonFinite {
                loss: norm,
                step,
                micro: cfg.grad_accum,
            });
        }
        let lr = warmup_cosine(step, cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio);
        model = optim.step(lr, model, grads);
        report.step_losses.push(step_loss);
        report.grad_norms.push(norm);
        on_step(step, step_loss);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok((model.valid(), report))
}

/// Global L2 norm of all gradients; when `max_norm > 0` and the norm exceeds it, every
/// gradient is scaled by `max_norm / (norm + 1e-6)` (PyTorch's `clip_grad_norm_`).
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sq: f64,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(p.id) {
                self.sq += g.powi_scalar(2).sum().into_scalar::<f32>() as f64;
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(p.id) {
                self.grads.register(p.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut n = Norm { grads, sq: 0.0 };
    model.visit(&mut n);
    let norm = n.sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let mut s = Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        };
        model.visit(&mut s);
    }
    norm
}

/// Held-out loss: total completion-token NLL / number of completion tokens, with no autodiff.
/// Returns `(mean_nll, n_tokens)`.
pub fn eval_loss<M: Decoder>(
    model: &M,
    rows: &[TokenRow],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> (f64, usize) {
    let rows: Vec<&TokenRow> = rows.iter().filter(|r| r.n_target() > 0).collect();
    let mut total = 0.0;
    let mut n = 0;
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = make_batch(chunk, max_len, pad_id, device);
        total += batch_nll_sum(model, &batch).into_scalar::<f32>() as f64;
        n += batch.n_target;
    }
    if n == 0 {
        return (f64::NAN, 0);
    }
    (total / n as f64, n)
}

/// Per-row summed completion log-probability and token count (for scoring and DPO).
pub fn row_logprobs<M: Decoder>(
    model: &M,
    rows: &[TokenRow],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<(f64, usize)> {
    row_logprobs_with(
        &|x| model.forward(x),
        rows,
        batch_size,
        max_len,
        pad_id,
        device,
    )
}

/// `row_logprobs` for any forward function (`[B, T]` ids → `[B, T, V]` logits).
pub fn row_logprobs_with(
    forward: &dyn Fn(Tensor<2, Int>) -> Tensor<3>,
    rows: &[TokenRow],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<(f64, usize)> {
    let mut out = Vec::with_capacity(rows.len());
    let refs: Vec<&TokenRow> = rows.iter().collect();
    for chunk in refs.chunks(batch_size.max(1)) {
        let batch = make_batch(chunk, max_len, pad_id, device);
        let sums = logp_sums_of(forward(batch.inputs.clone()), &batch);
        let masked: Vec<f32> = sums.into_data().try_to_vec().unwrap_or_default();
        for (row, s) in chunk.iter().zip(masked) {
            out.push((s as f64, row.n_target().min(max_len.saturating_sub(1))));
        }
    }
    out
}
