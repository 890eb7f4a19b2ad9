//! The one optimizer loop every trainer runs (SFT, DPO, the reward model): seeded epochs over
//! the training items, `grad_accum` micro-batches per step whose losses the trainer's closure
//! computes, gradient accumulation, global-norm clipping (as `torch.nn.utils.clip_grad_norm_`),
//! linear warmup + cosine LR, AdamW, and a stop on the first non-finite loss or gradient norm.
//! With LoRA (`OptimConfig::lora`) only the adapters train; the model comes back with them
//! attached (its `val()` weights are the merged ones, so saving it writes the merged model).
//! With `bf16` the passes compute in bf16 on f32 weights (`didact_model::precision`).
//! Nothing is written here, so on a stop the caller's previous checkpoint stays the last good
//! one.

use crate::batch::EpochSampler;
use crate::error::{Result, TrainError};
use crate::schedule::warmup_cosine;
use didact_core::OptimConfig;
use didact_model::burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use didact_model::burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use didact_model::burn::tensor::{DType, Device, GradientCheckpointingStrategy, Tensor};
use std::time::Instant;

/// How rows become batches: truncation, padding and the data order's seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Batching {
    /// Rows are truncated to this many tokens.
    pub max_len: usize,
    pub pad_id: u32,
    /// Seeds the order in which items are drawn.
    pub seed: u64,
    /// SFT: pack each micro-batch's rows into as few sequences as fit (`batch::make_packed_batch`;
    /// the same loss, less padding).
    pub pack: bool,
}

/// One micro-batch's contribution to a step.
pub struct MicroLoss<L> {
    /// The scalar loss `[1]`, scaled so that a step's micro-losses sum to the step's loss.
    pub loss: Tensor<1>,
    /// Non-pad input tokens processed (throughput).
    pub tokens: usize,
    /// What the trainer logs from this micro-batch (host values).
    pub log: L,
}

/// What the loop measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriveReport {
    /// Loss of every optimizer step (the sum of its micro-losses).
    pub step_losses: Vec<f64>,
    /// Global gradient norm before clipping, per step.
    pub grad_norms: Vec<f64>,
    pub tokens: usize,
    pub seconds: f64,
}

impl DriveReport {
    /// Mean over the last quarter of the steps (a smoothed final value).
    pub fn final_loss(&self) -> f64 {
        tail_mean(&self.step_losses)
    }

    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// Mean over the last quarter of `v` (NaN when empty).
pub fn tail_mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let tail = &v[v.len() - v.len().div_ceil(4)..];
    tail.iter().sum::<f64>() / tail.len() as f64
}

/// Gives every parameter burn's balanced gradient-checkpointing strategy. `fork` + `train`
/// leave parameters on the default strategy (none) whatever the device says, and an op mixing
/// them with a batch made on the checkpointing device would mix strategies (burn refuses).
struct Checkpointed;

impl ModuleMapper for Checkpointed {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        p.map(|t| t.with_gradient_checkpointing_strategy(GradientCheckpointingStrategy::Balanced))
    }
}

/// Seeds LoRA's A init apart from the data order (which `seed` seeds as is).
const LORA_STREAM: u64 = 0x4c6f_5241;

/// AdamW as every trainer here configures it.
fn adamw(opt: &OptimConfig) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(opt.beta1 as f32)
        .with_beta_2(opt.beta2 as f32)
        .with_epsilon(opt.eps as f32)
        .with_weight_decay(opt.weight_decay as f32)
}

/// Train `model` (on any device; the steps run on `device.autodiff()`) and return it on the
/// plain device. Each step draws `grad_accum × batch_size` indices into `0..n_items` first;
/// `micro(model, window, m, autodiff_device)` then gives micro-batch `m`'s loss (so a loss can
/// be normalised over the whole window). `on_step(step, loss, logs)` follows every step.
pub fn drive<M: Module, L>(
    model: M,
    n_items: usize,
    opt: &OptimConfig,
    seed: u64,
    device: &Device,
    mut micro: impl FnMut(&M, &[Vec<usize>], usize, &Device) -> MicroLoss<L>,
    mut on_step: impl FnMut(usize, f64, Vec<L>),
) -> Result<(M, DriveReport)> {
    if n_items == 0 {
        return Err(TrainError::NoData);
    }
    if opt.batch_size == 0 || opt.grad_accum == 0 {
        return Err(TrainError::Config(
            "batch_size and grad_accum must be > 0".into(),
        ));
    }
    // LoRA: fresh adapters on the target weights, everything else frozen (an adapted start,
    // e.g. SFT's result going into DPO, is merged first: burn does not nest adapters).
    let model = match &opt.lora {
        Some(spec) => didact_model::lora::attach(model.materialize(), spec, seed ^ LORA_STREAM)?,
        None => model,
    };
    let model = match opt.bf16 {
        true if opt.lora.is_some() => {
            return Err(TrainError::Config(
                "bf16 mixed precision with LoRA is not supported (burn does not nest the bf16 \
                 view and the adapters)"
                    .into(),
            ));
        }
        true if !device.supports_dtype(DType::BF16) => {
            return Err(TrainError::Config(
                "bf16 mixed precision: this device has no bf16 kernels (ndarray); use tch, cuda \
                 or flex"
                    .into(),
            ));
        }
        true => didact_model::precision::autocast_bf16(model),
        false => model,
    };
    let mut ad = device.clone().autodiff();
    if opt.activation_checkpointing {
        ad = ad.gradient_checkpointing();
    }
    let mut model = model.fork(&ad).train();
    if opt.activation_checkpointing {
        model = model.map(&mut Checkpointed);
    }
    let mut optim = adamw(opt).init();
    let mut sampler = EpochSampler::new(n_items, seed);
    let start = Instant::now();
    let mut rep = DriveReport {
        step_losses: Vec::with_capacity(opt.steps),
        grad_norms: Vec::with_capacity(opt.steps),
        ..DriveReport::default()
    };
    for step in 0..opt.steps {
        let window: Vec<Vec<usize>> = (0..opt.grad_accum)
            .map(|_| (0..opt.batch_size).map(|_| sampler.next_index()).collect())
            .collect();
        let mut accum = GradientsAccumulator::<M>::new();
        let mut step_loss = 0.0;
        let mut logs = Vec::with_capacity(opt.grad_accum);
        for m in 0..opt.grad_accum {
            let out = micro(&model, &window, m, &ad);
            let value = out.loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    loss: value,
                    step,
                    micro: m,
                });
            }
            step_loss += value;
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            accum.accumulate(&model, grads);
            rep.tokens += out.tokens;
            logs.push(out.log);
        }
        let mut grads = accum.grads();
        let norm = clip_global_norm(&model, &mut grads, opt.grad_clip);
        if !norm.is_finite() {
            return Err(TrainError::NonFinite {
                loss: norm,
                step,
                micro: opt.grad_accum,
            });
        }
        let lr = warmup_cosine(step, opt.steps, opt.warmup_steps, opt.lr, opt.min_lr_ratio);
        model = optim.step(lr, model, grads);
        rep.step_losses.push(step_loss);
        rep.grad_norms.push(norm);
        on_step(step, step_loss, logs);
    }
    rep.seconds = start.elapsed().as_secs_f64();
    // bf16: `valid()` turns the bf16 views off, so `materialize` leaves the f32 weights.
    let model = match opt.bf16 {
        true => model.valid().materialize(),
        false => model.valid(),
    };
    Ok((model, rep))
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
