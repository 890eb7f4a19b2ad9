//! `didact train-rm`: a Bradley-Terry reward model from a preference file (`[reward]`), end to
//! end — load and validate pairs, seeded train/held-out split, tokenizer, optional language-model
//! warm-up of the backbone on the chosen texts, reward-head training, held-out `rm/*` metrics.
//! Writes `<out>/rm/` (config.json, model.safetensors with `score.weight`, tokenizer.json),
//! `<out>/rm_metrics.json`, `<out>/train_rm_log.json` and `<out>/recipe.resolved.toml`.

use crate::error::{LoopError, Result, io};
use crate::progress::{bar, on_loss};
use crate::round::optim_config;
use crate::run::model_config;
use didact_core::{Metrics, write_atomic};
use didact_data::{OnError, PrefRow, load_prefs};
use didact_model::burn::tensor::Device;
use didact_model::sample::row_seed;
use didact_model::{Tok, checkpoint};
use didact_recipe::{RunPlan, TokenizerKind};
use didact_train::reward::SCORE_WEIGHT;
use didact_train::{RewardModel, RmReport, TokenRow, eval_rm, train_rm, train_sft};
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

pub fn file_pairs(plan: &RunPlan) -> Result<FilePairs> {
    let rw = &plan.reward;
    let on_error = if rw.on_error == "skip" {
        OnError::Skip
    } else {
        OnError::Fail
    };
    let loaded = load_prefs(Path::new(&rw.data), on_error)?;
    let mut rows = loaded.rows;
    if rows.len() < 4 {
        return Err(LoopError::RunDir {
            path: PathBuf::from(&rw.data),
            msg: format!(
                "only {} usable preference pairs; at least 4 are needed",
                rows.len()
            ),
        });
    }
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(row_seed(plan.seed, 8000, 0)));
    if rw.max_rows > 0 {
        rows.truncate(rw.max_rows.max(4));
    }
    let n_eval = ((rows.len() as f64 * rw.eval_fraction).ceil() as usize).clamp(1, rows.len() - 1);
    let eval = rows.split_off(rows.len() - n_eval);
    Ok(FilePairs {
        train: rows,
        eval,
        skipped: loaded.skipped,
        skipped_examples: loaded.skipped_examples,
    })
}

/// Train a reward head (and the backbone under it) on `train` pairs; `rm/*` metrics on `eval`.
pub fn fit(
    plan: &RunPlan,
    backbone: didact_model::Llama,
    tok: &Tok,
    train: &[PrefRow],
    eval: &[PrefRow],
    device: &Device,
    quiet: bool,
) -> Result<(RewardModel, Metrics, RmReport)> {
    let rw = &plan.reward;
    let d_model = plan.model.d_model;
    let train_pairs = encode_pairs(tok, train)?;
    let eval_pairs = encode_pairs(tok, eval)?;
    let rm = RewardModel::new(
        backbone,
        d_model,
        None,
        row_seed(plan.seed, 6100, 0),
        device,
    )
    .map_err(|e| LoopError::Train {
        round: 0,
        source: e,
    })?;
    let (bs, len, pad) = (plan.eval.batch_size, plan.model.max_seq_len, tok.pad_id);
    let before = eval_rm(&rm, &eval_pairs, bs, len, pad, device);
    let opt = optim_config(
        plan,
        rw.steps,
        rw.batch_size,
        rw.lr,
        row_seed(plan.seed, 5100, 0),
        plan.model.max_seq_len,
    );
    let center = (rw.center > 0.0).then_some(rw.center);
    let pb = bar(rw.steps as u64, "rm train", quiet);
    let (rm, rep) =
        train_rm(rm, &train_pairs, &opt, center, pad, device, on_loss(&pb)).map_err(|e| {
            LoopError::Train {
                round: 0,
                source: e,
            }
        })?;
    pb.finish_and_clear();
    let after = eval_rm(&rm, &eval_pairs, bs, len, pad, device);
    let n_train_eval = train_pairs.len().min(eval_pairs.len().max(64));
    let on_train = eval_rm(&rm, &train_pairs[..n_train_eval], bs, len, pad, device);
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

/// Save a reward model in HF layout with its head as `score.weight`.
pub fn save_reward_model(dir: &Path, plan: &RunPlan, rm: &RewardModel, tok: &Tok) -> Result<()> {
    let cfg = model_config(plan, tok.vocab_size());
    let head = vec![(SCORE_WEIGHT.into(), vec![1, cfg.d_model], rm.score_weight())];
    Ok(checkpoint::save_with_extra(
        dir,
        &cfg,
        &rm.backbone,
        tok,
        head,
    )?)
}

/// Train and evaluate a reward model as the recipe's `[reward]` section says.
pub fn train_reward_model(
    plan: &RunPlan,
    resolved_toml: &str,
    out: &Path,
    device: &Device,
    quiet: bool,
) -> Result<RmSummary> {
    let rw = &plan.reward;
    if rw.data.is_empty() {
        return Err(LoopError::RunDir {
            path: out.to_path_buf(),
            msg: "`reward.data` is empty: train-rm needs a preference file (prompt/chosen/rejected JSONL or Parquet, or HH-RLHF dialogues)".into(),
        });
    }
    let split = file_pairs(plan)?;
    let (rows, eval_rows) = (split.train, split.eval);
    std::fs::create_dir_all(out).map_err(io(out))?;
    let recipe = out.join("recipe.resolved.toml");
    write_atomic(&recipe, resolved_toml.as_bytes()).map_err(io(&recipe))?;

    // Tokenizer from the training texts only.
    let texts = rows.iter().flat_map(|r| {
        [
            format!("{}{}", r.prompt, r.chosen),
            format!("{}{}", r.prompt, r.rejected),
        ]
    });
    let tok = match plan.tokenizer {
        TokenizerKind::Char => Tok::char_level(&texts.collect::<String>())?,
        TokenizerKind::Bpe { vocab } => Tok::train_bpe(texts, vocab)?,
    };
    let cfg = model_config(plan, tok.vocab_size());
    cfg.check()?;
    let mut backbone = cfg.init(row_seed(plan.seed, 6000, 0), device)?;
    let mut m = Metrics::new();

    if rw.lm_steps > 0 {
        // Whole chosen dialogues as language-model text (no prompt mask).
        let lm_rows: Vec<TokenRow> = rows
            .iter()
            .map(|r| {
                let mut ids = tok.encode(&format!("{}{}", r.prompt, r.chosen))?;
                ids.push(tok.eos_id);
                Ok(TokenRow { ids, n_prompt: 0 })
            })
            .collect::<Result<_>>()?;
        let opt = optim_config(
            plan,
            rw.lm_steps,
            plan.train.batch_size,
            plan.train.lr,
            row_seed(plan.seed, 5000, 0),
            plan.model.max_seq_len,
        );
        let pb = bar(rw.lm_steps as u64, "rm backbone lm", quiet);
        let (b, rep) = train_sft(backbone, &lm_rows, &opt, tok.pad_id, device, on_loss(&pb))
            .map_err(|e| LoopError::Train {
                round: 0,
                source: e,
            })?;
        pb.finish_and_clear();
        backbone = b;
        m.insert("rm/lm_loss".into(), rep.final_loss());
    }

    let (rm, fit_m, rep) = fit(plan, backbone, &tok, &rows, &eval_rows, device, quiet)?;
    m.extend(fit_m);
    m.insert("rm/skipped_rows".into(), split.skipped as f64);

    let dir = out.join("rm");
    checkpoint::save_with_extra(
        &dir,
        &cfg,
        &rm.backbone,
        &tok,
        vec![(SCORE_WEIGHT.into(), vec![1, cfg.d_model], rm.score_weight())],
    )?;
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
