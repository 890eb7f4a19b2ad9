//! `didact train-rm`: a Bradley-Terry reward model from a preference file (`[reward]`), end to
//! end — load and validate pairs, seeded train/held-out split, tokenizer, optional language-model
//! warm-up of the backbone on the chosen texts, reward-head training, held-out `rm/*` metrics.
//! Writes `<out>/rm/` (config.json, model.safetensors with `score.weight`, tokenizer.json),
//! `<out>/rm_metrics.json`, `<out>/train_rm_log.json` and `<out>/recipe.resolved.toml`.

use crate::error::{LoopError, Result, io};
use crate::progress::{bar, on_loss};
use crate::seeds::Stream;
use didact_core::{Metrics, write_atomic};
use didact_data::{PrefRow, load_prefs};
use didact_model::burn::tensor::Device;
use didact_model::{Llama, LlamaConfig, Tok, checkpoint};
use didact_recipe::{ModelPlan, RewardPlan, RunPlan, TokenizerKind};
use didact_train::reward::SCORE_WEIGHT;
use didact_train::{Batching, RewardModel, RmReport, TokenRow, eval_rm, train_rm, train_sft};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

pub struct RmSummary {
    pub dir: PathBuf,
    pub metrics: Metrics,
    /// `file:line: reason` of the first skipped pairs.
    pub skipped_examples: Vec<String>,
}

fn encode_pairs(tok: &Tok, rows: &[PrefRow]) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
    rows.iter()
        .map(|r| {
            let c = tok.encode(&format!("{}{}", r.prompt, r.chosen))?;
            let j = tok.encode(&format!("{}{}", r.prompt, r.rejected))?;
            Ok((c, j))
        })
        .collect()
}

/// Preference pairs of `[reward] data`, validated, seeded-shuffled, capped at `max_rows` and
/// split into train / held out (`eval_fraction`, at least one pair each).
pub struct FilePairs {
    pub train: Vec<PrefRow>,
    pub eval: Vec<PrefRow>,
    pub skipped: usize,
    pub skipped_examples: Vec<String>,
}

pub fn file_pairs(plan: &RewardPlan, run_seed: u64) -> Result<FilePairs> {
    let Some(data) = &plan.data else {
        return Err(LoopError::RunDir {
            path: PathBuf::from("."),
            msg: "`reward.data` is empty: a preference file (prompt/chosen/rejected JSONL or Parquet, or HH-RLHF dialogues) is needed".into(),
        });
    };
    let loaded = load_prefs(data, plan.on_error)?;
    let mut rows = loaded.rows;
    if rows.len() < 4 {
        return Err(LoopError::RunDir {
            path: data.clone(),
            msg: format!(
                "only {} usable preference pairs; at least 4 are needed",
                rows.len()
            ),
        });
    }
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(
        Stream::PrefShuffle.seed(run_seed, 0),
    ));
    if let Some(max) = plan.max_rows {
        rows.truncate(max.max(4));
    }
    let n_eval =
        ((rows.len() as f64 * plan.eval_fraction).ceil() as usize).clamp(1, rows.len() - 1);
    let eval = rows.split_off(rows.len() - n_eval);
    Ok(FilePairs {
        train: rows,
        eval,
        skipped: loaded.skipped,
        skipped_examples: loaded.skipped_examples,
    })
}

/// A reward-model fit: the plan, the backbone's shape and tokenizer, where to run.
pub struct Fit<'a> {
    pub plan: &'a RewardPlan,
    pub cfg: &'a LlamaConfig,
    pub tok: &'a Tok,
    pub device: &'a Device,
    pub seed: u64,
    pub eval_batch: usize,
    pub quiet: bool,
}

impl Fit<'_> {
    /// Train a reward head (and the backbone under it) on `train` pairs; `rm/*` on `eval`.
    pub fn run(
        &self,
        backbone: Llama,
        train: &[PrefRow],
        eval: &[PrefRow],
    ) -> Result<(RewardModel, Metrics, RmReport)> {
        let train_pairs = encode_pairs(self.tok, train)?;
        let eval_pairs = encode_pairs(self.tok, eval)?;
        let head_seed = Stream::RmHeadInit.seed(self.seed, 0);
        let rm = RewardModel::new(backbone, self.cfg.d_model, None, head_seed, self.device)
            .map_err(|e| LoopError::Train {
                round: 0,
                source: e,
            })?;
        let (bs, len, pad) = (self.eval_batch, self.cfg.max_seq_len, self.tok.pad_id);
        let before = eval_rm(&rm, &eval_pairs, bs, len, pad, self.device);
        let data = Batching {
            max_len: len,
            pad_id: pad,
            seed: Stream::RmOrder.seed(self.seed, 0),
            pack: false,
        };
        let pb = bar(self.plan.optim.steps as u64, "rm train", self.quiet);
        let (rm, rep) = train_rm(
            rm,
            &train_pairs,
            &self.plan.optim,
            self.plan.center,
            &data,
            self.device,
            on_loss(&pb),
        )
        .map_err(|e| LoopError::Train {
            round: 0,
            source: e,
        })?;
        pb.finish_and_clear();
        let after = eval_rm(&rm, &eval_pairs, bs, len, pad, self.device);
        let n_train_eval = train_pairs.len().min(eval_pairs.len().max(64));
        let on_train = eval_rm(&rm, &train_pairs[..n_train_eval], bs, len, pad, self.device);
        let mut m = Metrics::new();
        m.insert("rm/loss".into(), after.loss);
        m.insert("rm/accuracy".into(), after.accuracy);
        m.insert("rm/margin".into(), after.margin);
        m.insert("rm/accuracy_untrained".into(), before.accuracy);
        m.insert("rm/train_accuracy".into(), on_train.accuracy);
        m.insert("rm/train_loss".into(), on_train.loss);
        m.insert("rm/train_pairs".into(), train_pairs.len() as f64);
        m.insert("rm/eval_pairs".into(), eval_pairs.len() as f64);
        m.insert(
            "rm/tokens_per_s".into(),
            rep.tokens as f64 / rep.seconds.max(1e-9),
        );
        Ok((rm, m, rep))
    }

    /// Language-model warm-up of a fresh backbone on the chosen texts (no prompt mask).
    fn lm_warmup(&self, backbone: Llama, rows: &[PrefRow]) -> Result<(Llama, f64)> {
        let Some(opt) = &self.plan.lm else {
            return Ok((backbone, f64::NAN));
        };
        let lm_rows: Vec<TokenRow> = rows
            .iter()
            .map(|r| {
                let mut ids = self.tok.encode(&format!("{}{}", r.prompt, r.chosen))?;
                ids.push(self.tok.eos_id);
                Ok(TokenRow { ids, n_prompt: 0 })
            })
            .collect::<Result<_>>()?;
        let data = Batching {
            max_len: self.cfg.max_seq_len,
            pad_id: self.tok.pad_id,
            seed: Stream::RmLmOrder.seed(self.seed, 0),
            pack: false,
        };
        let pb = bar(opt.steps as u64, "rm backbone lm", self.quiet);
        let (b, rep) = train_sft(backbone, &lm_rows, opt, &data, self.device, on_loss(&pb))
            .map_err(|e| LoopError::Train {
                round: 0,
                source: e,
            })?;
        pb.finish_and_clear();
        Ok((b, rep.final_loss()))
    }
}

/// Save a reward model in HF layout with its head as `score.weight`.
pub fn save_reward_model(dir: &Path, cfg: &LlamaConfig, rm: &RewardModel, tok: &Tok) -> Result<()> {
    let head = vec![(SCORE_WEIGHT.into(), vec![1, cfg.d_model], rm.score_weight())];
    Ok(checkpoint::save_with_extra(
        dir,
        cfg,
        &rm.backbone,
        tok,
        head,
    )?)
}

/// The backbone `train-rm` starts from: a fresh model of the `[model]` shape with a tokenizer
/// trained on the training texts, or the `[model] hf` checkpoint with its own.
fn backbone(
    plan: &RunPlan,
    rows: &[PrefRow],
    device: &Device,
) -> Result<(Llama, LlamaConfig, Tok)> {
    match &plan.model {
        ModelPlan::Fresh { shape, tokenizer } => {
            let texts = rows.iter().flat_map(|r| {
                [
                    format!("{}{}", r.prompt, r.chosen),
                    format!("{}{}", r.prompt, r.rejected),
                ]
            });
            let tok = match tokenizer {
                TokenizerKind::Char => Tok::char_level(&texts.collect::<String>())?,
                TokenizerKind::Bpe { vocab } => Tok::train_bpe(texts, *vocab)?,
            };
            let cfg = crate::env::model_config(shape, &tok)?;
            cfg.check()?;
            let model = cfg.init(Stream::RmBackboneInit.seed(plan.seed, 0), device)?;
            Ok((model, cfg, tok))
        }
        ModelPlan::Pretrained { dir } => {
            let ck = checkpoint::load(dir, device)?;
            Ok((ck.model, ck.config, ck.tokenizer))
        }
    }
}

/// Train and evaluate a reward model as the recipe's `[reward]` section says.
pub fn train_reward_model(
    plan: &RunPlan,
    resolved_toml: &str,
    out: &Path,
    device: &Device,
    quiet: bool,
) -> Result<RmSummary> {
    let split = file_pairs(&plan.reward, plan.seed)?;
    let (rows, eval_rows) = (split.train, split.eval);
    std::fs::create_dir_all(out).map_err(io(out))?;
    let recipe = out.join("recipe.resolved.toml");
    write_atomic(&recipe, resolved_toml.as_bytes()).map_err(io(&recipe))?;
    let (backbone, cfg, tok) = backbone(plan, &rows, device)?;
    let fit = Fit {
        plan: &plan.reward,
        cfg: &cfg,
        tok: &tok,
        device,
        seed: plan.seed,
        eval_batch: plan.eval.batch_size,
        quiet,
    };
    let mut m = Metrics::new();
    let (backbone, lm_loss) = fit.lm_warmup(backbone, &rows)?;
    if lm_loss.is_finite() {
        m.insert("rm/lm_loss".into(), lm_loss);
    }
    let (rm, fit_m, rep) = fit.run(backbone, &rows, &eval_rows)?;
    m.extend(fit_m);
    m.insert("rm/skipped_rows".into(), split.skipped as f64);
    let dir = out.join("rm");
    save_reward_model(&dir, &cfg, &rm, &tok)?;
    let log = serde_json::json!({ "step_losses": rep.step_losses, "accuracies": rep.accuracies, "margins": rep.margins, "grad_norms": rep.grad_norms, "seconds": rep.seconds });
    let log_path = out.join("train_rm_log.json");
    write_atomic(
        &log_path,
        serde_json::to_string_pretty(&log).expect("json").as_bytes(),
    )
    .map_err(io(&log_path))?;
    let mpath = out.join("rm_metrics.json");
    write_atomic(
        &mpath,
        serde_json::to_string_pretty(&m).expect("json").as_bytes(),
    )
    .map_err(io(&mpath))?;
    Ok(RmSummary {
        dir,
        metrics: m,
        skipped_examples: split.skipped_examples,
    })
}

/// Load a reward model saved by `train_reward_model` (or any checkpoint with `score.weight`).
pub fn load_reward_model(dir: &Path, device: &Device) -> Result<(RewardModel, Tok)> {
    let ck = checkpoint::load(dir, device)?;
    let (_, w) = checkpoint::read_tensor(dir, SCORE_WEIGHT)?;
    let d = ck.config.d_model;
    let rm = RewardModel::new(ck.model, d, Some(w), 0, device).map_err(|e| LoopError::Train {
        round: 0,
        source: e,
    })?;
    Ok((rm, ck.tokenizer))
}

/// Preference pairs from a verifiable world's correct rows: chosen = the correct answer,
/// rejected = the answer off by a random nonzero amount (±1, ±2, ±10 or ±100) — the mistakes a
/// small model makes. Rows whose answer is not an integer are left out.
pub fn world_prefs(rows: &[didact_core::Example], seed: u64) -> Vec<PrefRow> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rows.iter()
        .filter_map(|e| {
            let v: i64 = e.completion.trim().parse().ok()?;
            let mag = [1, 2, 10, 100][rng.random_range(0..4)];
            let sign = if rng.random_bool(0.5) { 1 } else { -1 };
            Some(PrefRow {
                prompt: e.prompt.clone(),
                chosen: e.completion.clone(),
                rejected: (v + sign * mag).to_string(),
            })
        })
        .collect()
}
