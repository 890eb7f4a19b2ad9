//! Checks against transformers and TRL on ../shared/fixtures (each fixture folder's README
//! says how its values were made): full logits of the tiny Llama / Qwen2 / GPT-2 checkpoints,
//! greedy continuations of a left-padded batch and of each prompt alone (`greedy_16`),
//! per-sequence and prompt-masked NLL (`perplexity/perplexity.json`), and the policy
//! log-probs and DPO losses of TRL's end-to-end batch (`losses/dpo_e2e.json`).

use crate::fixtures::{f32_tensor, f64s, ids, json, max_abs_diff};
use crate::outcome::Outcome;
use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::{Decoder, SamplingParams, generate_batch};
use didact_train::dpo_loss::{DpoLoss, DpoObjective, loss_tensor};
use didact_train::{TokenRow, row_logprobs};
use std::path::Path;

/// Logits tolerance against transformers (float32 models).
pub const LOGITS_TOL: f64 = 1e-4;
/// Mean-NLL tolerance (perplexity fixture README).
pub const NLL_TOL: f64 = 1e-4;
/// Summed log-prob tolerance (dpo_e2e README: float32 models).
pub const LOGPS_TOL: f64 = 1e-3;
/// DPO loss tolerance (dpo_e2e README).
pub const DPO_LOSS_TOL: f64 = 1e-4;

type R<T> = Result<T, String>;

fn load(dir: &Path, name: &str, device: &Device) -> R<didact_model::AnyCheckpoint> {
    didact_model::any::load(&dir.join(name), device).map_err(|e| e.to_string())
}

fn to_outcome(r: R<Outcome>) -> Outcome {
    r.unwrap_or_else(Outcome::Fail)
}

fn host(t: Tensor<3>) -> R<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// Every case's logits within `LOGITS_TOL` of transformers'.
pub fn logits(dir: &Path, name: &str, device: &Device) -> Outcome {
    to_outcome((|| {
        let ck = load(dir, name, device)?;
        let expected = json(&dir.join(name).join("expected.json"))?;
        let st = std::fs::read(dir.join(name).join("expected_logits.safetensors"))
            .map_err(|e| e.to_string())?;
        let mut worst: f64 = 0.0;
        let cases = expected["cases"].as_array().cloned().unwrap_or_default();
        for case in &cases {
            let input = ids(&case["input_ids"]);
            let t = input.len();
            let x: Vec<i64> = input.iter().map(|&i| i as i64).collect();
            let tokens = Tensor::<2, Int>::from_data(TensorData::new(x, [1, t]), device);
            let got = host(ck.model.forward(tokens))?;
            let want = f32_tensor(&st, case["logits_tensor"].as_str().unwrap_or(""))?;
            worst = worst.max(max_abs_diff(&got, &want));
        }
        Ok(Outcome::check(
            !cases.is_empty() && worst <= LOGITS_TOL,
            format!(
                "max |Δlogit| vs transformers {worst:.1e} over {} prompts (≤ {LOGITS_TOL:.0e})",
                cases.len()
            ),
        ))
    })())
}

/// Greedy 16 tokens: all prompts in one left-padded batch, and each prompt alone, equal
/// transformers' `greedy_16`.
pub fn greedy(dir: &Path, name: &str, device: &Device) -> Outcome {
    to_outcome((|| {
        let ck = load(dir, name, device)?;
        let expected = json(&dir.join(name).join("expected.json"))?;
        let cases = expected["cases"].as_array().cloned().unwrap_or_default();
        let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["input_ids"])).collect();
        let want: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["greedy_16"])).collect();
        let params = SamplingParams::greedy(16, None);
        let greedy_ids = |ps: &[Vec<u32>]| -> R<Vec<Vec<u32>>> {
            let seeds = vec![0; ps.len()];
            let g = generate_batch(&ck.model, ck.max_seq_len, ps, &seeds, &params, 0, device)
                .map_err(|e| e.to_string())?;
            Ok(g.into_iter().map(|g| g.tokens).collect())
        };
        let batched = greedy_ids(&prompts)?;
        let lens: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        for (i, p) in prompts.iter().enumerate() {
            if batched[i] != want[i] {
                return Ok(Outcome::Fail(format!(
                    "left-padded batch, prompt {i} ({} tokens): {:?}, transformers {:?}",
                    p.len(),
                    batched[i],
                    want[i]
                )));
            }
            let single = greedy_ids(std::slice::from_ref(p))?;
            if single[0] != want[i] {
                return Ok(Outcome::Fail(format!(
                    "prompt {i} alone: {:?}, transformers {:?}",
                    single[0], want[i]
                )));
            }
        }
        Ok(Outcome::check(
            !prompts.is_empty(),
            format!(
                "{} prompts of {lens:?} tokens, left-padded batch and one at a time = transformers' greedy_16",
                prompts.len()
            ),
        ))
    })())
}

/// Per-sequence mean NLL (batched, right-padded), the corpus mean and the prompt-masked loss
/// of `perplexity.json` within `NLL_TOL`.
pub fn score(dir: &Path, device: &Device) -> Outcome {
    to_outcome((|| {
        let ck = load(dir, "llama", device)?;
        let fx = json(&dir.join("perplexity").join("perplexity.json"))?;
        let seqs = fx["sequences"].as_array().cloned().unwrap_or_default();
        let rows: Vec<TokenRow> = seqs
            .iter()
            .map(|s| TokenRow {
                ids: ids(&s["input_ids"]),
                n_prompt: 0,
            })
            .collect();
        let lp = row_logprobs(&ck.model, &rows, 16, ck.max_seq_len, 0, device);
        let mut worst: f64 = 0.0;
        for ((sum, n), s) in lp.iter().zip(&seqs) {
            let mean = -sum / *n as f64;
            worst = worst.max((mean - s["mean_nll"].as_f64().unwrap_or(f64::NAN)).abs());
        }
        let total: f64 = lp.iter().map(|(s, _)| -s).sum();
        let n: usize = lp.iter().map(|(_, n)| n).sum();
        let corpus = total / n as f64;
        worst = worst.max((corpus - fx["corpus"]["mean_nll"].as_f64().unwrap_or(f64::NAN)).abs());
        let co = &fx["hf_completion_only"];
        let k = co["prompt_len"].as_u64().unwrap_or(0) as usize;
        let masked: Vec<TokenRow> = rows
            .iter()
            .map(|r| TokenRow {
                ids: r.ids.clone(),
                n_prompt: k,
            })
            .collect();
        let lp = row_logprobs(&ck.model, &masked, 16, ck.max_seq_len, 0, device);
        let total: f64 = lp.iter().map(|(s, _)| -s).sum();
        let n: usize = lp.iter().map(|(_, n)| n).sum();
        let loss = total / n as f64;
        worst = worst.max((loss - co["loss"].as_f64().unwrap_or(f64::NAN)).abs());
        Ok(Outcome::check(
            worst <= NLL_TOL,
            format!(
                "max |ΔNLL| vs transformers {worst:.1e} over {} sequences, corpus and prompt-masked (≤ {NLL_TOL:.0e})",
                seqs.len()
            ),
        ))
    })())
}

/// TRL's collated DPO batch: the policy's summed completion log-probs (batched, right-padded)
/// and every loss type's batch loss on them, with TRL's cached reference log-probs.
pub fn dpo_logps(dir: &Path, device: &Device) -> Outcome {
    to_outcome((|| {
        let ck = load(dir, "llama", device)?;
        let fx = json(&dir.join("losses").join("dpo_e2e.json"))?;
        let batch = &fx["collated_batch"];
        let inputs = batch["input_ids"].as_array().cloned().unwrap_or_default();
        let mut rows = Vec::new();
        for (i, row) in inputs.iter().enumerate() {
            let len = ids(&batch["attention_mask"][i])
                .iter()
                .filter(|&&m| m == 1)
                .count();
            let cm = ids(&batch["completion_mask"][i]);
            let n_prompt = cm.iter().position(|&m| m == 1).unwrap_or(len);
            rows.push(TokenRow {
                ids: ids(row)[..len].to_vec(),
                n_prompt,
            });
        }
        let lp = row_logprobs(&ck.model, &rows, 16, ck.max_seq_len, 0, device);
        let pairs = fx["pairs"].as_array().cloned().unwrap_or_default();
        let b = pairs.len();
        if lp.len() != 2 * b || b == 0 {
            return Err(format!("{} rows for {b} pairs", lp.len()));
        }
        let want: Vec<f64> = pairs
            .iter()
            .map(|p| {
                p["batched_policy_chosen_logps"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
            })
            .chain(pairs.iter().map(|p| {
                p["batched_policy_rejected_logps"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
            }))
            .collect();
        let logp_err =
            lp.iter()
                .zip(&want)
                .map(|((g, _), w)| (g - w).abs())
                .fold(
                    0.0,
                    |m: f64, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
                );
        let t = |v: Vec<f64>| {
            let n = v.len();
            let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
            Tensor::<1>::from_data(TensorData::new(v, [n]), device)
        };
        let field = |k: &str| {
            f64s(&serde_json::Value::Array(
                pairs.iter().map(|p| p[k].clone()).collect(),
            ))
        };
        let mut loss_err: f64 = 0.0;
        for case in fx["losses"].as_array().cloned().unwrap_or_default() {
            let o = DpoObjective {
                loss: DpoLoss::parse(case["loss_type"].as_str().unwrap_or(""))
                    .ok_or("unknown loss_type in dpo_e2e.json")?,
                beta: case["beta"].as_f64().unwrap_or(f64::NAN),
                label_smoothing: case["label_smoothing"].as_f64().unwrap_or(0.0),
                rpo_alpha: 0.0,
            };
            let lens =
                |s: usize| -> Vec<f64> { (0..b).map(|i| rows[s + i].n_target() as f64).collect() };
            let losses = loss_tensor(
                &o,
                t(lp[..b].iter().map(|x| x.0).collect()),
                t(lp[b..].iter().map(|x| x.0).collect()),
                t(field("batched_reference_chosen_logps")),
                t(field("batched_reference_rejected_logps")),
                t(lens(0)),
                t(lens(b)),
            );
            let mean = losses.mean().into_scalar::<f32>() as f64;
            let d = (mean - case["loss_mean_batched"].as_f64().unwrap_or(f64::NAN)).abs();
            loss_err = if d.is_nan() {
                f64::INFINITY
            } else {
                loss_err.max(d)
            };
        }
        Ok(Outcome::check(
            logp_err <= LOGPS_TOL && loss_err <= DPO_LOSS_TOL,
            format!(
                "max |Δlogp| vs TRL {logp_err:.1e} (≤ {LOGPS_TOL:.0e}), max |Δloss| over sigmoid/ipo/hinge/robust {loss_err:.1e} (≤ {DPO_LOSS_TOL:.0e})"
            ),
        ))
    })())
}
