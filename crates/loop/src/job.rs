//! One training job outside a run — what `didact train` does, and what a round's external
//! trainer (`[train] external`) can be: SFT or DPO of a checkpoint on a dataset in TRL's
//! field names (`prompt`/`completion`, `messages` or `text` for SFT; `prompt`/`chosen`/
//! `rejected` for DPO; JSONL or Parquet), saved as a Hugging Face directory (`config.json`,
//! `model.safetensors`, `tokenizer.json`) with `train_log.json`; with LoRA the model is the
//! merged one and `adapter/` holds the adapter in PEFT's layout. DPO's reference is the
//! starting checkpoint: its log-probs of every pair are computed once, before training.

use crate::error::{LoopError, Result};
use crate::progress::{bar, on_loss};
use crate::stages::train::TrainLog;
use didact_core::{OnError, OptimConfig, write_atomic};
use didact_model::Tok;
use didact_model::burn::tensor::Device;
use didact_train::dpo_loss::DpoObjective;
use didact_train::{Batching, PairRow, TokenRow, reference_logps, train_dpo, train_sft};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the job optimises.
#[derive(Debug, Clone, PartialEq)]
pub enum JobAlgo {
    Sft,
    Dpo(DpoObjective),
}

/// A training job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The starting checkpoint (any supported HF directory).
    pub model: PathBuf,
    pub data: PathBuf,
    pub out: PathBuf,
    pub algo: JobAlgo,
    pub optim: OptimConfig,
    /// Data order.
    pub seed: u64,
    /// Malformed rows: `fail` names file:line, `skip` drops and counts them.
    pub on_error: OnError,
    /// SFT: pack rows into full sequences (`didact_train::make_packed_batch`).
    pub pack: bool,
    pub quiet: bool,
}

fn bad(path: &Path, msg: String) -> LoopError {
    LoopError::RunDir {
        path: path.to_path_buf(),
        msg,
    }
}

/// `prompt ++ completion ++ [eos]`, loss on the completion; rows longer than `max_len` are an
/// error naming the file and the first such row (1-based).
fn tokenize(
    tok: &Tok,
    rows: impl Iterator<Item = (String, String)>,
    max_len: usize,
    data: &Path,
) -> Result<Vec<TokenRow>> {
    let mut out = Vec::new();
    for (i, (prompt, completion)) in rows.enumerate() {
        let mut ids = tok.encode(&prompt)?;
        let n_prompt = ids.len();
        ids.extend(tok.encode(&completion)?);
        ids.push(tok.eos_id);
        if ids.len() > max_len {
            return Err(bad(
                data,
                format!(
                    "row {}: {} tokens, longer than the model's context ({max_len})",
                    i + 1,
                    ids.len()
                ),
            ));
        }
        out.push(TokenRow { ids, n_prompt });
    }
    Ok(out)
}

/// Run `job` on `device`: train, then write the checkpoint and `train_log.json` into
/// `job.out` (the checkpoint atomically).
pub fn run(job: &Job, device: &Device) -> Result<TrainLog> {
    let ck = didact_model::any::load(&job.model, device)?;
    let (tok, max_len) = (&ck.tokenizer, ck.max_seq_len);
    let data = Batching {
        max_len,
        pad_id: tok.pad_id,
        seed: job.seed,
        pack: job.pack,
    };
    let empty = |what: &str, skipped: usize, first: &[String]| {
        bad(
            &job.data,
            format!(
                "no {what} rows to train on ({skipped} skipped{})",
                first
                    .first()
                    .map(|e| format!("; first: {e}"))
                    .unwrap_or_default()
            ),
        )
    };
    let pb = bar(job.optim.steps as u64, "train", job.quiet);
    let (model, log) = match &job.algo {
        JobAlgo::Sft => {
            let loaded = didact_data::ingest::load(&job.data, job.on_error, 0)?;
            if loaded.rows.is_empty() {
                return Err(empty(
                    "prompt/completion",
                    loaded.skipped,
                    &loaded.skipped_examples,
                ));
            }
            let pairs = loaded.rows.into_iter().map(|e| (e.prompt, e.completion));
            let rows = tokenize(tok, pairs, max_len, &job.data)?;
            let (model, rep) = train_sft(ck.model, &rows, &job.optim, &data, device, on_loss(&pb))
                .map_err(|e| bad(&job.data, e.to_string()))?;
            let log = TrainLog {
                steps: job.optim.steps,
                final_loss: rep.final_loss(),
                step_losses: rep.step_losses.clone(),
                last_grad_norm: rep.grad_norms.last().copied().unwrap_or(f64::NAN),
                tokens: rep.tokens,
                seconds: rep.seconds,
                tokens_per_s: rep.tokens_per_s(),
                dpo: BTreeMap::new(),
                distill: BTreeMap::new(),
                external: BTreeMap::new(),
            };
            (model, log)
        }
        JobAlgo::Dpo(obj) => {
            let loaded = didact_data::prefs::load_prefs(&job.data, job.on_error)?;
            if loaded.rows.is_empty() {
                return Err(empty(
                    "prompt/chosen/rejected",
                    loaded.skipped,
                    &loaded.skipped_examples,
                ));
            }
            let chosen = loaded
                .rows
                .iter()
                .map(|p| (p.prompt.clone(), p.chosen.clone()));
            let rejected = loaded
                .rows
                .iter()
                .map(|p| (p.prompt.clone(), p.rejected.clone()));
            let chosen = tokenize(tok, chosen, max_len, &job.data)?;
            let rejected = tokenize(tok, rejected, max_len, &job.data)?;
            let rows: Vec<(TokenRow, TokenRow)> = chosen.into_iter().zip(rejected).collect();
            let bs = job.optim.batch_size;
            let refs = reference_logps(&ck.model, &rows, bs, max_len, tok.pad_id, device);
            let rows: Vec<PairRow> = rows
                .into_iter()
                .zip(refs)
                .map(|((chosen, rejected), w)| PairRow {
                    chosen,
                    rejected,
                    ref_chosen: w.ref_chosen,
                    ref_rejected: w.ref_rejected,
                })
                .collect();
            let (model, rep) = train_dpo(
                ck.model,
                &rows,
                &job.optim,
                obj,
                &data,
                device,
                on_loss(&pb),
            )
            .map_err(|e| bad(&job.data, e.to_string()))?;
            let summary = rep.summary();
            let log = TrainLog {
                steps: rep.step_losses.len(),
                final_loss: summary[0].1,
                step_losses: rep.step_losses.clone(),
                last_grad_norm: rep.grad_norms.last().copied().unwrap_or(f64::NAN),
                tokens: rep.tokens,
                seconds: rep.seconds,
                tokens_per_s: rep.tokens_per_s(),
                dpo: summary
                    .into_iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                distill: BTreeMap::new(),
                external: BTreeMap::new(),
            };
            (model, log)
        }
    };
    pb.finish_and_clear();
    // In the start checkpoint's dtype: a bf16 model in, a bf16 model out (trained in f32).
    didact_model::any::save_as(&job.out, &ck.config, &model, tok, ck.dtype)?;
    if let Some(spec) = &job.optim.lora {
        // The adapter alone, in PEFT's layout, for the start checkpoint (absolute, as PEFT's
        // `base_model_name_or_path`).
        let base = std::fs::canonicalize(&job.model).unwrap_or(job.model.clone());
        let gpt2 = matches!(ck.config, didact_model::LmConfig::Gpt2(_));
        let dir = job.out.join("adapter");
        didact_model::lora::save_adapter(&dir, &model, spec, &base.display().to_string(), gpt2)?;
    }
    let p = job.out.join("train_log.json");
    let text = serde_json::to_string_pretty(&log).expect("json");
    write_atomic(&p, text.as_bytes()).map_err(crate::error::io(&p))?;
    Ok(log)
}
