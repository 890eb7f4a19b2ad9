//! The mini recipe: round 0 plus two rounds of training on the model's own samples in the
//! Markov-source world (the whole loop: seeded sampling, filtering, mixing, SFT, evaluation
//! with exact `truth/*` metrics), run on the device and on flex into temporary directories.
//! Per round, the metrics that summarise the science must agree within `COMPARED`.
//!
//! Why the Markov world and not arithmetic: on 1–2 digit sums a small model learns through a
//! sudden drop of the loss, and where that drop happens depends on float rounding, so two
//! correct backends can end a short run at 0.43 and 0.76 accuracy (measured: flex vs ndarray,
//! 1,200 steps). Text from a Markov source is learned smoothly; there flex, ndarray and
//! tch-cpu agree to four digits in every round, and the tolerances below leave room for GPU
//! kernels that sum in another order.

use crate::outcome::Outcome;
use didact_core::Metrics;
use didact_model::burn::tensor::Device;
use std::path::PathBuf;

/// The recipe, as a user would write it (`replace` mode: the run also shows collapse).
pub const MINI_RECIPE: &str = r#"
[run]
name = "conformance-mini"
seed = 5
rounds = 2
[world]
kind = "markov"
train_size = 500
max_chars = 40
[model]
d_model = 48
n_layers = 2
n_heads = 4
n_kv_heads = 2
max_seq_len = 48
[train]
base_steps = 300
steps = 60
batch_size = 32
lr = 3e-3
round_lr = 1e-3
[generate]
n_prompts = 200
temperature = 1.0
max_new_tokens = 40
prompt_chars = 2
[filter]
dedup = false
require_stop = false
[mix]
mode = "replace"
[eval]
eval_size = 200
n_samples = 200
"#;

/// (metric, tolerance, relative?) compared in every round.
pub const COMPARED: &[(&str, f64, bool)] = &[
    ("eval/loss_real", 1e-3, true),
    ("train/loss", 1e-3, true),
    ("truth/kl", 1e-2, true),
    ("diversity/distinct_2", 0.01, false),
    ("filter/kept_fraction", 0.02, false),
];

/// Every round's metrics.
pub type RecipeResult = Vec<(u32, Metrics)>;

/// Run the mini recipe on `device` in a fresh temporary directory (removed afterwards).
pub fn run_mini(device: &Device, tag: &str) -> Result<RecipeResult, String> {
    let loaded = didact_recipe::load_str(MINI_RECIPE, "conformance-mini.toml", &[])
        .map_err(|e| e.to_string())?;
    let out: PathBuf = std::env::temp_dir().join(format!(
        "didact-conformance-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let opts = didact_loop::RunOptions {
        out: out.clone(),
        resume: false,
        quiet: true,
        threads: 0,
    };
    let toml = didact_recipe::to_toml(&loaded.file);
    let summary = didact_loop::run(&loaded.plan, &toml, &opts, device.clone(), |_, _| {});
    let _ = std::fs::remove_dir_all(&out);
    Ok(summary.map_err(|e| e.to_string())?.rounds)
}

/// The device's rounds against flex's.
pub fn compare(
    reference: &Result<RecipeResult, String>,
    got: Result<RecipeResult, String>,
) -> Outcome {
    let want = match reference {
        Ok(w) => w,
        Err(e) => return Outcome::Fail(format!("the flex reference run failed: {e}")),
    };
    let got = match got {
        Ok(g) => g,
        Err(e) => return Outcome::Fail(e),
    };
    if got.len() != want.len() {
        return Outcome::Fail(format!("{} rounds, flex ran {}", got.len(), want.len()));
    }
    let mut worst: Vec<String> = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    for &(key, tol, relative) in COMPARED {
        let mut max_d: f64 = 0.0;
        for ((r, g), (_, w)) in got.iter().zip(want) {
            let (Some(a), Some(b)) = (g.get(key), w.get(key)) else {
                if g.contains_key(key) != w.contains_key(key) {
                    bad.push(format!("{key} present in one run only (round {r})"));
                }
                continue;
            };
            let d = if relative {
                (a - b).abs() / b.abs().max(1e-12)
            } else {
                (a - b).abs()
            };
            let d = if d.is_nan() { f64::INFINITY } else { d };
            if d > tol {
                bad.push(format!("round {r} {key}: {a:.4} vs flex {b:.4}"));
            }
            max_d = max_d.max(d);
        }
        let kind = if relative { "rel " } else { "" };
        worst.push(format!("{key} {kind}{max_d:.1e} (≤ {tol:.0e})"));
    }
    let last = |m: &[(u32, Metrics)], k: &str| {
        m.last()
            .and_then(|(_, x)| x.get(k).copied())
            .unwrap_or(f64::NAN)
    };
    let summary = format!(
        "{} rounds; final truth/kl {:.4} (flex {:.4}), eval/loss_real {:.4} (flex {:.4}); max Δ: {}",
        got.len(),
        last(&got, "truth/kl"),
        last(want, "truth/kl"),
        last(&got, "eval/loss_real"),
        last(want, "eval/loss_real"),
        worst.join(", ")
    );
    if bad.is_empty() {
        Outcome::Pass(summary)
    } else {
        Outcome::Fail(format!("{summary}; outside tolerance: {}", bad.join("; ")))
    }
}
