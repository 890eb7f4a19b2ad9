//! The shared vocabulary of choices a recipe names and lower crates act on: one enum per
//! concept, its TOML names in one place (`NAMES`, `parse`, `name`). The recipe resolver parses
//! them; `didact-data` mixes by [`MixMode`] and loads rows by [`OnError`]; `didact-train`
//! optimises a [`DpoLoss`] under an [`OptimConfig`].

/// How the next training set is made from real data and the synthetic pool (`[mix] mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixMode {
    /// Train only on the newest round's kept synthetic rows (real data dropped after round 0).
    Replace,
    /// Real data plus every round's kept synthetic rows so far (the pool grows).
    Accumulate,
    /// `size` rows: `round(ratio · size)` synthetic from the newest round, the rest real.
    Ratio(f64),
}

impl MixMode {
    pub const NAMES: &[&str] = &["replace", "accumulate", "ratio"];

    /// The mode of a name; `ratio` takes its synthetic fraction.
    pub fn parse(name: &str, synthetic_ratio: f64) -> Option<Self> {
        match name {
            "replace" => Some(Self::Replace),
            "accumulate" => Some(Self::Accumulate),
            "ratio" => Some(Self::Ratio(synthetic_ratio)),
            _ => None,
        }
    }
}

/// Which DPO objective (TRL's `loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpoLoss {
    Sigmoid,
    Ipo,
    Hinge,
    Robust,
}

impl DpoLoss {
    pub const NAMES: &[&str] = &["sigmoid", "ipo", "hinge", "robust"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sigmoid" => Some(Self::Sigmoid),
            "ipo" => Some(Self::Ipo),
            "hinge" => Some(Self::Hinge),
            "robust" => Some(Self::Robust),
            _ => None,
        }
    }

    /// The recipe's (and TRL's `loss_type`) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sigmoid => "sigmoid",
            Self::Ipo => "ipo",
            Self::Hinge => "hinge",
            Self::Robust => "robust",
        }
    }
}

/// What to do with a malformed dataset row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Skip it, count it, report the first few.
    Skip,
    /// Stop with an error naming the file and line.
    Fail,
}

impl OnError {
    pub const NAMES: &[&str] = &["skip", "fail"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "skip" => Some(Self::Skip),
            "fail" => Some(Self::Fail),
            _ => None,
        }
    }
}

/// The optimizer settings of one training call (a round's SFT, its DPO, the teacher, the
/// reward model): AdamW, linear warmup then cosine decay to `min_lr_ratio · lr`, global-norm
/// clipping, gradient accumulation.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Rows (or pairs) per micro-batch.
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
    /// Activation (gradient) checkpointing: burn's balanced strategy recomputes memory-bound
    /// activations (elementwise ops, norms, softmax) in the backward pass instead of keeping
    /// them; matmul outputs stay cached. Same gradients, less peak memory, more compute.
    pub activation_checkpointing: bool,
    /// Train LoRA adapters on these projections instead of every weight (`None`: full
    /// fine-tuning).
    pub lora: Option<LoraSpec>,
    /// bf16 mixed precision: the forward and backward passes compute in bf16, the weights and
    /// AdamW stay f32 (`didact_model::precision`).
    pub bf16: bool,
}

/// LoRA (Hu et al. 2021) as PEFT configures it: rank-`r` factors on the weights of the modules
/// named in `targets` (HF module names: `q_proj`, `v_proj`, … for the Llama family; `c_attn`,
/// `c_proj`, `c_fc` for GPT-2), their product scaled by `alpha / r`. Everything else is frozen.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    pub r: usize,
    pub alpha: f64,
    /// PEFT's `lora_dropout` (dropout on the adapter's input). Only 0 is supported: didact's
    /// adapters live on the weights (burn's LoRA reparameterization), not on the activations.
    pub dropout: f64,
    pub targets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_a_distinct_value() {
        let losses: Vec<DpoLoss> = DpoLoss::NAMES
            .iter()
            .filter_map(|n| DpoLoss::parse(n))
            .collect();
        assert_eq!(losses.len(), 4);
        assert!(losses.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(DpoLoss::parse("dpo"), None);
        let modes: Vec<MixMode> = MixMode::NAMES
            .iter()
            .filter_map(|n| MixMode::parse(n, 0.25))
            .collect();
        assert_eq!(
            modes,
            vec![MixMode::Replace, MixMode::Accumulate, MixMode::Ratio(0.25)]
        );
        assert_eq!(OnError::parse("skip"), Some(OnError::Skip));
        assert_eq!(OnError::parse("ignore"), None);
    }
}
