//! The external-trainer stage (`[train] external`): a round's training handed to another
//! engine — TRL, torchtune, accelerate/torchrun, `sbatch --wait`, a Ray job, or `didact train`.
//! The round's rows are written as TRL JSONL — `prompt`/`completion` for SFT, `prompt`/
//! `chosen`/`rejected` for DPO — in `external/data/train.jsonl` (alone in its directory, so
//! `datasets.load_dataset(dir)` finds it); the start checkpoint is an HF directory; the
//! command runs under `sh -c` (output to `rounds/NN/external/log.txt`, killed after `timeout_s`); the checkpoint
//! it writes to `{out}` must have the start's config (architecture and every shape; loading
//! then checks each tensor's name and shape) and, when it ships one, the run's tokenizer. Its
//! metrics come from `train_log.json` (`didact train`) or `trainer_state.json` (the HF Trainer
//! under TRL and most others). The train stage is journaled like every stage: a finished
//! external round is not rerun on resume; an interrupted one restarts from a clean directory.

use crate::env::Env;
use crate::error::{LoopError, Result, io};
use crate::lineage::ModelRef;
use crate::stages::train::TrainLog;
use didact_core::{Example, OptimConfig, Pair, write_atomic};
use didact_model::{Lm, Tok};
use didact_recipe::{Algo, DpoPlan, ExternalPlan};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a round hands to its external trainer.
pub struct Inputs<'a> {
    pub plan: &'a ExternalPlan,
    pub algo: Algo,
    pub start: &'a ModelRef,
    pub rows: &'a [Example],
    pub pairs: &'a [Pair],
    pub optim: &'a OptimConfig,
    /// A DPO round's objective (`{beta}`, `{rpo_alpha}`, `{loss}`).
    pub dpo: Option<&'a DpoPlan>,
    pub seed: u64,
}

fn fail(path: &Path, msg: String) -> LoopError {
    LoopError::RunDir {
        path: path.to_path_buf(),
        msg,
    }
}

/// The round's training rows as TRL JSONL.
fn trl_jsonl(algo: Algo, rows: &[Example], pairs: &[Pair]) -> String {
    let lines: Vec<String> = match algo {
        Algo::Dpo => pairs
            .iter()
            .map(|p| {
                serde_json::json!({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected})
                    .to_string()
            })
            .collect(),
        _ => rows
            .iter()
            .map(|e| {
                serde_json::json!({"prompt": e.prompt, "completion": e.completion}).to_string()
            })
            .collect(),
    };
    lines.join("\n") + "\n"
}

/// The start checkpoint's directory (a fresh start is saved into `work/start` first).
fn start_dir(env: &Env<'_>, m: &ModelRef, work: &Path) -> Result<PathBuf> {
    Ok(match m {
        ModelRef::Round(k) => env.dir.model(*k),
        ModelRef::Pretrained(d) => d.clone(),
        ModelRef::Teacher => env.dir.teacher(),
        _ => {
            let dir = work.join("start");
            didact_model::any::save(&dir, env.cfg, &env.load(m)?, env.tok)?;
            dir
        }
    })
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Substitute the placeholders of `[train] external`.
pub fn command_line(
    template: &str,
    data: &Path,
    model: &Path,
    out: &Path,
    i: &Inputs<'_>,
    r: u32,
) -> String {
    template
        .replace("{data}", &absolute(data))
        .replace("{data_dir}", &absolute(data.parent().unwrap_or(data)))
        .replace("{model}", &absolute(model))
        .replace("{out}", &absolute(out))
        .replace("{round}", &r.to_string())
        .replace("{seed32}", &(i.seed & 0xffff_ffff).to_string())
        .replace("{seed}", &i.seed.to_string())
        .replace("{steps}", &i.optim.steps.to_string())
        .replace("{lr}", &i.optim.lr.to_string())
        .replace("{batch_size}", &i.optim.batch_size.to_string())
        .replace("{grad_accum}", &i.optim.grad_accum.to_string())
        .replace("{warmup_steps}", &i.optim.warmup_steps.to_string())
        .replace("{min_lr_ratio}", &i.optim.min_lr_ratio.to_string())
        .replace("{weight_decay}", &i.optim.weight_decay.to_string())
        .replace("{grad_clip}", &i.optim.grad_clip.to_string())
        .replace(
            "{beta}",
            &i.dpo.map_or(String::new(), |d| d.beta.to_string()),
        )
        .replace(
            "{rpo_alpha}",
            &i.dpo.map_or(String::new(), |d| d.rpo_alpha.to_string()),
        )
        .replace(
            "{loss}",
            &i.dpo.map_or(String::new(), |d| d.loss.name().to_string()),
        )
}

/// The last `n` lines of the log, for an error message.
fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run `cmd` under `sh -c` with its output in `log`, killed after `timeout`.
fn execute(cmd: &str, log: &Path, timeout: Option<f64>, r: u32) -> Result<f64> {
    let file = std::fs::File::create(log).map_err(io(log))?;
    let err = file.try_clone().map_err(io(log))?;
    let t0 = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(io(Path::new("sh")))?;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(io(log))? {
            break s;
        }
        if let Some(t) = timeout
            && t0.elapsed().as_secs_f64() > t
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(
                log,
                format!(
                    "round {r}: train.external ran longer than timeout_s = {t} and was killed: {cmd}"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        return Err(fail(
            log,
            format!(
                "round {r}: train.external failed ({status}): {cmd}\nlast lines of its output:\n{}",
                tail(log, 20)
            ),
        ));
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// The returned checkpoint: the start checkpoint's config (as read from disk, so both went
/// through the same parser) and (when it ships one) the run's tokenizer.
fn check_output(env: &Env<'_>, start: &Path, out: &Path, r: u32) -> Result<()> {
    if !out.join("config.json").exists() {
        return Err(fail(
            out,
            format!(
                "round {r}: train.external finished but wrote no checkpoint here (config.json missing)"
            ),
        ));
    }
    let cfg = didact_model::any::config_from_dir(out)?;
    let want = didact_model::any::config_from_dir(start)?;
    if cfg != want {
        return Err(fail(
            out,
            format!(
                "round {r}: train.external returned a different model: {cfg:?}; it started from {want:?}"
            ),
        ));
    }
    let tok_path = out.join("tokenizer.json");
    if tok_path.exists() {
        let tok = Tok::load(&tok_path)?;
        if tok.inner().get_vocab(true) != env.tok.inner().get_vocab(true)
            || tok.eos_id != env.tok.eos_id
        {
            return Err(fail(
                &tok_path,
                format!(
                    "round {r}: train.external changed the tokenizer (the run's has {} tokens, this one {})",
                    env.tok.inner().get_vocab_size(true),
                    tok.inner().get_vocab_size(true)
                ),
            ));
        }
    }
    Ok(())
}

/// The trainer's own log: `train_log.json` (didact train), else `trainer_state.json` (HF
/// Trainer) in `out` or in its last `checkpoint-N/` (TRL's commands save it there with
/// `--save_strategy steps`).
fn read_log(out: &Path) -> Result<TrainLog> {
    let didact = out.join("train_log.json");
    if didact.exists() {
        let text = std::fs::read_to_string(&didact).map_err(io(&didact))?;
        return serde_json::from_str(&text)
            .map_err(|e| fail(&didact, format!("invalid train log: {e}")));
    }
    let mut log = TrainLog::none();
    let Some(hf) = trainer_state(out) else {
        return Ok(log);
    };
    let text = std::fs::read_to_string(&hf).map_err(io(&hf))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(&hf, format!("invalid JSON: {e}")))?;
    let history = v["log_history"].as_array().cloned().unwrap_or_default();
    log.step_losses = history.iter().filter_map(|h| h["loss"].as_f64()).collect();
    log.final_loss = log.step_losses.last().copied().unwrap_or(f64::NAN);
    log.steps = v["global_step"].as_u64().unwrap_or(0) as usize;
    log.last_grad_norm = history
        .iter()
        .rev()
        .find_map(|h| h["grad_norm"].as_f64())
        .unwrap_or(f64::NAN);
    Ok(log)
}

/// `out/trainer_state.json`, or the one of the highest `out/checkpoint-N/`.
fn trainer_state(out: &Path) -> Option<PathBuf> {
    let top = out.join("trainer_state.json");
    if top.exists() {
        return Some(top);
    }
    std::fs::read_dir(out)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("checkpoint-")?
                .parse::<u64>()
                .ok()?;
            Some((n, e.path().join("trainer_state.json")))
        })
        .filter(|(_, p)| p.exists())
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// Train round `r` through the external command; returns the trained model and its log.
pub fn run(env: &Env<'_>, i: &Inputs<'_>, r: u32) -> Result<(Lm, TrainLog)> {
    let work = env.dir.external(r);
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(io(&work))?;
    }
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let data_dir = work.join("data");
    std::fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
    let data = data_dir.join("train.jsonl");
    write_atomic(&data, trl_jsonl(i.algo, i.rows, i.pairs).as_bytes()).map_err(io(&data))?;
    let model = start_dir(env, i.start, &work)?;
    let out = work.join("out");
    let cmd = command_line(&i.plan.command, &data, &model, &out, i, r);
    let seconds = execute(&cmd, &work.join("log.txt"), i.plan.timeout_s, r)?;
    check_output(env, &model, &out, r)?;
    let trained = didact_model::any::load(&out, env.device)?.model;
    let mut log = read_log(&out)?;
    log.external.insert("external/seconds".into(), seconds);
    log.external.insert(
        "external/rows".into(),
        match i.algo {
            Algo::Dpo => i.pairs.len(),
            _ => i.rows.len(),
        } as f64,
    );
    Ok((trained, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_in_trl_field_names() {
        let rows = vec![Example::real("1+2=", "3")];
        let sft = trl_jsonl(Algo::Sft, &rows, &[]);
        assert_eq!(sft, "{\"completion\":\"3\",\"prompt\":\"1+2=\"}\n");
        let pair = Pair {
            id: String::new(),
            round: 1,
            prompt: "1+2=".into(),
            chosen: "3".into(),
            rejected: "4".into(),
            score_chosen: 1.0,
            score_rejected: 0.0,
            ref_chosen: -1.0,
            ref_rejected: -2.0,
        };
        let dpo = trl_jsonl(Algo::Dpo, &rows, &[pair]);
        let v: serde_json::Value = serde_json::from_str(dpo.trim()).unwrap();
        assert_eq!(
            (
                v["prompt"].as_str(),
                v["chosen"].as_str(),
                v["rejected"].as_str()
            ),
            (Some("1+2="), Some("3"), Some("4"))
        );
    }

    #[test]
    fn an_hf_trainer_state_becomes_the_train_log() {
        let dir = std::env::temp_dir().join(format!("didact-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("trainer_state.json"),
            r#"{"global_step": 4, "log_history": [{"loss": 2.5, "grad_norm": 1.5, "step": 2}, {"loss": 2.0, "grad_norm": 0.5, "step": 4}, {"train_loss": 2.25, "step": 4}]}"#,
        )
        .unwrap();
        let log = read_log(&dir).unwrap();
        assert_eq!(
            (log.steps, log.final_loss, log.last_grad_norm),
            (4, 2.0, 0.5)
        );
        assert_eq!(log.step_losses, vec![2.5, 2.0]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
