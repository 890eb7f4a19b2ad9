//! The memory a run will need, estimated from the plan before anything is built, and checked
//! against what the machine has (Linux `MemAvailable`) so an impossible recipe stops before
//! round 0 naming the keys that make it large — not with an allocation abort mid-training.
//! Parts (fp32, 4 bytes a number): parameters + gradients + two AdamW moments (16 bytes a
//! parameter) for the policy and a `[teacher]`; training activations (what autodiff keeps per
//! token and layer: ~10·d_model + 4·d_ff + 2·heads·seq numbers, and 3 copies of the logits);
//! the generation KV cache and logits; the datasets. Lengths are the data's (`Lens`): checked
//! once before anything is read with the smallest lengths (a lower bound: parameters and
//! optimizer state), then after the rows are tokenized with their real lengths. It is an
//! estimate of what grows with the model and data — the process's own baseline (≈0.5 GB
//! measured: libraries, thread pools, allocator caches) is not counted — so a run is refused
//! only when the estimate alone exceeds the available memory. Written to `env.json`.

use crate::error::{LoopError, Result};
use didact_model::{Dims, LmConfig};
use didact_recipe::{ModelPlan, RunPlan, Source, TokenizerKind};
use std::path::Path;

/// One part of the estimate: what, the recipe keys that size it, bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub what: &'static str,
    pub keys: &'static str,
    pub bytes: u64,
}

/// A run's estimated peak memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub parts: Vec<Part>,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// `{"total_bytes": …, "<what>": bytes, …}` for env.json.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "total_bytes": self.total() });
        for p in &self.parts {
            v[p.what] = serde_json::json!(p.bytes);
        }
        v
    }
}

/// `12.3 GB` style.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

const F32: u64 = 4;

/// The policy's shape before the tokenizer exists: a fresh model's vocabulary is the BPE size
/// asked for (a character vocabulary is counted as 512), a checkpoint's is its own.
fn policy_dims(plan: &RunPlan) -> Result<Dims> {
    match &plan.model {
        ModelPlan::Fresh { shape, tokenizer } => {
            let vocab = match tokenizer {
                TokenizerKind::Bpe { vocab } => *vocab,
                TokenizerKind::Char => 512,
            };
            Ok(LmConfig::Llama(crate::env::shape_config(shape, vocab)).dims())
        }
        ModelPlan::Pretrained { dir } => Ok(didact_model::any::config_from_dir(dir)?.dims()),
    }
}

/// Activations autodiff keeps for a micro-batch of `rows` sequences of `seq` tokens.
fn activations(d: &Dims, rows: usize, seq: usize) -> u64 {
    let per_token_layer = 10 * d.d_model + 4 * d.d_ff + 2 * d.n_heads * seq;
    let per_token = d.n_layers * per_token_layer + 3 * d.vocab;
    (rows * seq) as u64 * per_token as u64 * F32
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Token lengths that size activations and the KV cache: the longest training row (batches
/// are padded to their longest row, not to the context) and the longest generation (prompt +
/// new tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lens {
    pub train: usize,
    pub generate: usize,
}

impl Lens {
    /// Before the data is read: the smallest lengths — the estimate is then a lower bound, so
    /// what it refuses can never run.
    pub const LOWER_BOUND: Lens = Lens {
        train: 1,
        generate: 1,
    };
}

/// Estimate a run's peak memory from its plan and the data's lengths.
pub fn estimate(plan: &RunPlan, lens: Lens) -> Result<Estimate> {
    let d = policy_dims(plan)?;
    let seq = lens.train.min(d.max_seq_len).max(1);
    let gen_seq = lens.generate.min(d.max_seq_len).max(1);
    let mut parts = vec![Part {
        what: "parameters_and_adamw",
        keys: "model.d_model, model.n_layers, model.d_ff and the vocabulary",
        bytes: 4 * F32 * d.n_params as u64,
    }];
    if let Some(didact_recipe::TeacherPlan::Trained(t)) = plan.generate.teacher() {
        let shape = didact_recipe::Shape {
            d_model: t.d_model,
            n_layers: t.n_layers,
            n_heads: t.n_heads,
            n_kv_heads: t.n_kv_heads,
            d_ff: t.d_ff,
            max_seq_len: d.max_seq_len,
            rope_theta: 10_000.0,
            rope_scaling: 1.0,
            positional: didact_recipe::Positional::Rope,
            tie_embeddings: false,
        };
        let td = LmConfig::Llama(crate::env::shape_config(&shape, d.vocab)).dims();
        parts.push(Part {
            what: "teacher_parameters_and_adamw",
            keys: "teacher.d_model, teacher.n_layers, teacher.d_ff",
            bytes: 4 * F32 * td.n_params as u64,
        });
    }
    let pairs = plan.dpo.as_ref().map_or(0, |p| 2 * p.optim.batch_size);
    let rows = plan
        .train
        .base
        .batch_size
        .max(plan.train.round.batch_size)
        .max(pairs);
    parts.push(Part {
        what: "training_activations",
        keys: "train.batch_size (dpo.batch_size × 2) × the longest row (≤ model.max_seq_len)",
        bytes: activations(&d, rows, seq),
    });
    let gen_rows = plan.generate.batch_size.max(plan.eval.batch_size) as u64;
    parts.push(Part {
        what: "generation_cache",
        keys: "generate.batch_size × prompt + max_new_tokens (≤ model.max_seq_len)",
        bytes: gen_rows
            * (seq as u64 * d.n_layers as u64 * 2 * d.kv_dim as u64 + d.vocab as u64)
            * F32,
    });
    let samples = (plan.generate.n_prompts * plan.generate.n_per_prompt) as u64;
    let data = match &plan.source {
        Source::Arithmetic { train_size, .. } => *train_size as u64 * 256,
        Source::Markov {
            train_size,
            max_chars,
            ..
        } => *train_size as u64 * (*max_chars as u64 * 6 + 64),
        Source::Dataset { path, .. } => file_len(path) * 6,
    };
    parts.push(Part {
        what: "datasets_and_samples",
        keys: "world.train_size / the data file, generate.n_prompts × generate.n_per_prompt",
        bytes: data + samples * gen_seq as u64 * 12,
    });
    Ok(Estimate { parts })
}

/// Memory this machine can give now (`MemAvailable`), when it says.
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuse a run whose estimate exceeds `available` bytes, naming the largest parts' keys.
/// Only for host memory: a GPU device's memory is not known here.
pub fn check(plan: &RunPlan, est: &Estimate, available: Option<u64>) -> Result<()> {
    let on_host = matches!(plan.device.as_str(), "cpu" | "flex" | "ndarray" | "tch-cpu");
    let Some(avail) = available.filter(|_| on_host) else {
        return Ok(());
    };
    if est.total() <= avail {
        return Ok(());
    }
    let mut parts = est.parts.clone();
    parts.sort_by_key(|p| std::cmp::Reverse(p.bytes));
    let detail: Vec<String> = parts
        .iter()
        .take(2)
        .map(|p| format!("{} {} (from {})", p.what, human(p.bytes), p.keys))
        .collect();
    Err(LoopError::Memory(format!(
        "this run needs an estimated {} of memory but the machine has {} available: {}. Make those smaller",
        human(est.total()),
        human(avail),
        detail.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(toml: &str) -> RunPlan {
        didact_recipe::load_str(toml, "test.toml", &[])
            .unwrap()
            .plan
    }

    const GB: u64 = 1_000_000_000;
    const WORST: Lens = Lens {
        train: usize::MAX,
        generate: usize::MAX,
    };

    #[test]
    fn the_quickstart_shape_fits_and_a_70b_shape_is_refused_naming_its_keys() {
        let small = plan("[model]\nd_model = 128\nn_layers = 2\n");
        let est = estimate(&small, WORST).unwrap();
        assert!(est.total() < GB, "{est:?}");
        check(&small, &est, Some(16 * GB)).unwrap();
        // Llama-2-70B-like width and depth: ~50 B parameters, ~800 GB with AdamW.
        let big = plan(
            "[model]\nd_model = 8192\nn_layers = 64\nn_heads = 64\nn_kv_heads = 8\nd_ff = 28672\n",
        );
        let est = estimate(&big, Lens::LOWER_BOUND).unwrap();
        let params = est.parts[0].bytes / 16;
        assert!((40e9..70e9).contains(&(params as f64)), "{params}");
        let e = check(&big, &est, Some(16 * GB)).unwrap_err().to_string();
        assert!(
            e.contains("needs an estimated") && e.contains("model.d_model"),
            "{e}"
        );
        assert!(e.contains("16.0 GB available"), "{e}");
    }

    #[test]
    fn activations_grow_with_batch_and_context_and_name_them() {
        let p = plan(
            "[model]\nd_model = 64\nn_layers = 2\nmax_seq_len = 4096\n[train]\nbatch_size = 4096\n",
        );
        let short = estimate(
            &p,
            Lens {
                train: 20,
                generate: 20,
            },
        )
        .unwrap();
        check(&p, &short, Some(16 * GB)).unwrap();
        let est = estimate(&p, WORST).unwrap();
        let act = est
            .parts
            .iter()
            .find(|x| x.what == "training_activations")
            .unwrap();
        assert!(act.bytes > 100 * GB, "{act:?}");
        let e = check(&p, &est, Some(16 * GB)).unwrap_err().to_string();
        assert!(e.contains("train.batch_size"), "{e}");
    }

    #[test]
    fn a_gpu_device_is_not_checked_against_host_memory() {
        let p = plan(
            "[run]\ndevice = \"cuda\"\n[model]\nd_model = 8192\nn_layers = 64\nn_heads = 64\n",
        );
        let est = estimate(&p, Lens::LOWER_BOUND).unwrap();
        check(&p, &est, Some(GB)).unwrap();
    }
}
