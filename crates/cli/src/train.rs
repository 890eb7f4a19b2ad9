//! `didact train`: one SFT or DPO job from a checkpoint on a TRL-format dataset into a Hugging
//! Face directory (`didact_loop::job`) — on its own, or as a round's external trainer.

use anyhow::{Result, bail};
use clap::Args;
use didact_core::{DpoLoss, LoraSpec, OnError, OptimConfig};
use didact_loop::job::{Job, JobAlgo};
use didact_train::DpoObjective;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The starting checkpoint (didact round `model/`, or an HF Llama / Qwen2 / GPT-2 directory).
    #[arg(long)]
    model: PathBuf,
    /// JSONL or Parquet: `prompt`/`completion`, `messages` or `text` rows (SFT);
    /// `prompt`/`chosen`/`rejected` rows (DPO).
    #[arg(long)]
    data: PathBuf,
    /// Output directory (config.json, model.safetensors, tokenizer.json, train_log.json).
    #[arg(long)]
    out: PathBuf,
    /// `sft` or `dpo`.
    #[arg(long, default_value = "sft")]
    algo: String,
    #[arg(long, default_value_t = 100)]
    steps: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Peak learning rate (linear warmup, cosine decay to min_lr_ratio · lr).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 10)]
    warmup_steps: usize,
    #[arg(long, default_value_t = 0.1)]
    min_lr_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f64,
    /// Recompute memory-bound activations in the backward pass (burn's balanced gradient
    /// checkpointing): less peak memory, same gradients.
    #[arg(long)]
    activation_checkpointing: bool,
    /// LoRA: train rank-R adapters instead of every weight (0 = full fine-tuning). The merged
    /// model goes to --out, the adapter in PEFT's layout to OUT/adapter.
    #[arg(long, default_value_t = 0)]
    lora_r: usize,
    /// LoRA: the adapters' product is scaled by alpha / r.
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// LoRA: comma-separated HF module names (`q_proj,v_proj`; GPT-2: `c_attn,c_proj,c_fc`).
    #[arg(long, value_delimiter = ',', default_value = "q_proj,v_proj")]
    lora_targets: Vec<String>,
    /// `f32`, or `bf16` mixed precision (bf16 compute, f32 weights and AdamW; LibTorch/CUDA
    /// have fast bf16 kernels).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// DPO: β.
    #[arg(long, default_value_t = 0.1)]
    beta: f64,
    /// DPO: `sigmoid`, `ipo`, `hinge` or `robust` (TRL's definitions).
    #[arg(long, default_value = "sigmoid")]
    loss: String,
    /// DPO: weight of the NLL term on the chosen completions (TRL's `rpo_alpha`).
    #[arg(long, default_value_t = 0.0)]
    rpo_alpha: f64,
    /// Data order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Malformed rows: `fail` (name file:line) or `skip` (drop and count).
    #[arg(long, default_value = "fail")]
    on_error: String,
    /// SFT: pack several rows per sequence (each keeps its positions and attends only to
    /// itself: the same loss with less padding).
    #[arg(long)]
    packing: bool,
    /// `cpu`, `flex`, `ndarray`, `cuda`, `tch`, `tch-cpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long)]
    quiet: bool,
}

fn check(ok: bool, flag: &str, want: &str) -> Result<()> {
    if !ok {
        bail!("--{flag}: expected {want}");
    }
    Ok(())
}

pub fn cmd_train(a: TrainArgs) -> Result<()> {
    let fin = |x: f64| x.is_finite();
    check(
        a.steps >= 1 && a.steps <= 10_000_000,
        "steps",
        "1..=10000000",
    )?;
    check(
        a.batch_size >= 1 && a.batch_size <= 65_536,
        "batch-size",
        "1..=65536",
    )?;
    check(
        a.grad_accum >= 1 && a.grad_accum <= 4096,
        "grad-accum",
        "1..=4096",
    )?;
    check(
        fin(a.lr) && a.lr > 0.0 && a.lr <= 1.0,
        "lr",
        "a learning rate in (0, 1]",
    )?;
    check(
        fin(a.min_lr_ratio) && (0.0..=1.0).contains(&a.min_lr_ratio),
        "min-lr-ratio",
        "0..=1",
    )?;
    check(
        fin(a.weight_decay) && a.weight_decay >= 0.0,
        "weight-decay",
        ">= 0",
    )?;
    check(
        fin(a.grad_clip) && a.grad_clip >= 0.0,
        "grad-clip",
        ">= 0 (0 disables)",
    )?;
    check(fin(a.beta) && a.beta > 0.0, "beta", "> 0")?;
    check(fin(a.rpo_alpha) && a.rpo_alpha >= 0.0, "rpo-alpha", ">= 0")?;
    check(
        matches!(a.precision.as_str(), "f32" | "bf16"),
        "precision",
        "`f32` or `bf16`",
    )?;
    let on_error = OnError::parse(&a.on_error).ok_or_else(|| {
        anyhow::anyhow!(
            "--on-error: expected `fail` or `skip`, got {:?}",
            a.on_error
        )
    })?;
    let algo = match a.algo.as_str() {
        "sft" => JobAlgo::Sft,
        "dpo" => JobAlgo::Dpo(DpoObjective {
            loss: DpoLoss::parse(&a.loss).ok_or_else(|| {
                anyhow::anyhow!(
                    "--loss: expected one of {}, got {:?}",
                    DpoLoss::NAMES.join(", "),
                    a.loss
                )
            })?,
            beta: a.beta,
            label_smoothing: 0.0,
            rpo_alpha: a.rpo_alpha,
        }),
        other => bail!("--algo: expected `sft` or `dpo`, got {other:?}"),
    };
    let lora = (a.lora_r > 0).then(|| LoraSpec {
        r: a.lora_r,
        alpha: a.lora_alpha,
        dropout: 0.0,
        targets: a.lora_targets.clone(),
    });
    if let Some(spec) = &lora {
        didact_model::lora::check_spec(spec).map_err(|e| anyhow::anyhow!("--{e}"))?;
    }
    let device = didact_model::device::device_from_name(&a.device)?;
    let job = Job {
        model: a.model,
        data: a.data,
        out: a.out,
        algo,
        optim: OptimConfig {
            steps: a.steps,
            batch_size: a.batch_size,
            grad_accum: a.grad_accum,
            lr: a.lr,
            warmup_steps: a.warmup_steps.min(a.steps / 2),
            min_lr_ratio: a.min_lr_ratio,
            weight_decay: a.weight_decay,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: a.grad_clip,
            activation_checkpointing: a.activation_checkpointing,
            lora,
            bf16: a.precision == "bf16",
        },
        seed: a.seed,
        on_error,
        pack: a.packing,
        quiet: a.quiet,
    };
    let log = didact_loop::job::run(&job, &device)?;
    println!(
        "{}",
        serde_json::json!({
            "out": job.out.display().to_string(),
            "train/loss": log.final_loss,
            "train/steps": log.steps,
            "train/tokens_per_s": log.tokens_per_s,
        })
    );
    Ok(())
}
