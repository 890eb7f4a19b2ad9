//! A run: a recipe + a seed → a run directory (layout in ARCHITECTURE.md). Writes the
//! resolved recipe and environment, builds the task and tokenizer, runs round 0..=rounds, and
//! after every round rewrites `metrics.parquet` / `metrics.csv` (one row per round).
//! `resume` continues a killed run at its first unfinished stage.

use crate::env::Env;
use crate::error::{LoopError, Result, io};
use crate::journal::Journal;
use crate::layout::RunDir;
use crate::lineage::Lineage;
use crate::round::{Runner, read_metrics, run_round};
use crate::stages::detect::{self, alert_line};
use crate::task::Task;
use didact_core::{Metrics, write_atomic};
use didact_data::table;
use didact_metrics::detector::Alert;
use didact_model::burn::tensor::Device;
use didact_model::{LmConfig, Tok};
use didact_recipe::{ModelPlan, RunPlan};
use std::path::{Path, PathBuf};

pub struct RunOptions {
    pub out: PathBuf,
    pub resume: bool,
    /// Hide progress bars (tests).
    pub quiet: bool,
    /// Backend thread count actually in use (recorded in env.json).
    pub threads: usize,
}

pub struct RunSummary {
    pub dir: PathBuf,
    pub rounds: Vec<(u32, Metrics)>,
    pub skipped_rows: usize,
}

/// `recipe.resolved.toml`, compared on resume.
const RESOLVED: &str = "recipe.resolved.toml";

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// An exclusive lock on a run directory (`.lock`, holding the owner's PID), released when the
/// process ends however it ends: two runs never write into one directory.
pub struct DirLock {
    _file: std::fs::File,
}

/// Take the run directory's lock, or name the process that holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(".lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    if f.try_lock().is_err() {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        return Err(LoopError::RunDir {
            path: dir.to_path_buf(),
            msg: format!(
                "another didact process (PID {}) is running in this directory; wait for it to end or use another --out",
                pid.trim()
            ),
        });
    }
    f.set_len(0).map_err(io(&path))?;
    f.rewind().map_err(io(&path))?;
    write!(f, "{}", std::process::id()).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(DirLock { _file: f })
}

fn prepare_dir(dir: &Path, resolved: &str, resume: bool) -> Result<()> {
    let journal = dir.join("journal.jsonl");
    let recipe = dir.join(RESOLVED);
    if journal.exists() && !resume {
        return Err(LoopError::RunDir {
            path: dir.to_path_buf(),
            msg: "a run already exists here; pass --resume to continue it or --out to start elsewhere".into(),
        });
    }
    if resume && recipe.exists() {
        let old = std::fs::read_to_string(&recipe).map_err(io(&recipe))?;
        if old != resolved {
            return Err(LoopError::RunDir {
                path: recipe,
                msg: "the resolved recipe differs from the one this run started with; resume with the same recipe and --set values, or start a new run".into(),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_atomic(&recipe, resolved.as_bytes()).map_err(io(&recipe))
}

fn tokenizer(dir: &Path, task: &Task, plan: &RunPlan) -> Result<Tok> {
    let path = dir.join("tokenizer.json");
    if path.exists() {
        return Ok(Tok::load(&path)?);
    }
    let tok = match &plan.model {
        ModelPlan::Fresh { tokenizer, .. } => task.tokenizer(*tokenizer)?,
        ModelPlan::Pretrained { dir } => Tok::load(&dir.join("tokenizer.json"))?,
    };
    let tmp = dir.join(format!(".tokenizer.json.{}.tmp", std::process::id()));
    tok.save(&tmp)?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(tok)
}

/// The policy's shape: the `[model]` shape over the tokenizer's vocabulary, or the checkpoint's.
fn policy_config(plan: &RunPlan, tok: &Tok) -> Result<LmConfig> {
    match &plan.model {
        ModelPlan::Fresh { shape, .. } => {
            let c = crate::env::model_config(shape, tok)?;
            c.check()?;
            Ok(LmConfig::Llama(c))
        }
        ModelPlan::Pretrained { dir } => Ok(didact_model::any::config_from_dir(dir)?),
    }
}

/// Execute a run. `on_round` is called with each round's metrics as soon as it is done.
pub fn run(
    plan: &RunPlan,
    resolved_toml: &str,
    opts: &RunOptions,
    device: Device,
    mut on_round: impl FnMut(u32, &Metrics),
) -> Result<RunSummary> {
    let dir = opts.out.clone();
    // A pretrained checkpoint's architecture and the endpoints' keys are checked before
    // anything is written or trained.
    if let ModelPlan::Pretrained { dir } = &plan.model {
        didact_model::any::config_from_dir(dir)?;
    }
    check_endpoint_keys(plan)?;
    use crate::memory::{Lens, available, check, estimate, human};
    check(plan, &estimate(plan, Lens::LOWER_BOUND)?, available())?;
    let _lock = lock_dir(&dir)?;
    prepare_dir(&dir, resolved_toml, opts.resume)?;
    let mut task = Task::build(plan)?;
    let tok = tokenizer(&dir, &task, plan)?;
    let cfg = policy_config(plan, &tok)?;
    if let Some(didact_recipe::TeacherPlan::Hf(t)) = plan.generate.teacher() {
        crate::stages::distill::check_hf_teacher(t, &tok, cfg.max_seq_len())?;
    }
    let longest = fit_lengths(plan, &mut task, &tok, cfg.max_seq_len())?;
    // Later rounds train on samples too: a prompt plus up to max_new_tokens.
    let with_samples = longest + plan.generate.sampling.max_new_tokens;
    let lens = Lens {
        train: with_samples,
        generate: with_samples,
    };
    let memory = estimate(plan, lens)?;
    check(plan, &memory, available())?;
    if !opts.quiet {
        eprintln!(
            "memory estimate: {} (env.json has the parts)",
            human(memory.total())
        );
    }
    write_env(&dir, plan, opts, &memory)?;
    let run_dir = RunDir::new(&dir);
    let mut runner = Runner {
        plan,
        env: Env {
            device: &device,
            tok: &tok,
            cfg: &cfg,
            dir: &run_dir,
            seed: plan.seed,
            peer: 0,
            quiet: opts.quiet,
        },
        task: &task,
        journal: Journal::open(&dir)?,
        lineage: Lineage::new(plan),
    };
    let mut rounds: Vec<(u32, Metrics)> = Vec::new();
    let mut alerts: Vec<Alert> = Vec::new();
    for r in 0..=plan.rounds {
        let m = run_round(&mut runner, r)?;
        rounds.push((r, m));
        // The detector is a pure function of the metric series: a resumed run recomputes the
        // same alerts, rollbacks and stops.
        let verdict = detect::run(&rounds, &plan.detector);
        let last = &mut rounds.last_mut().expect("pushed").1;
        last.insert("alerts/fired".into(), verdict.alerts.len() as f64);
        runner.lineage.rollback_to = verdict.rollback_to;
        alerts.extend(verdict.alerts);
        write_alerts(&dir, &alerts)?;
        write_tables(&dir, &rounds)?;
        on_round(r, &rounds.last().expect("pushed").1);
        for a in alerts.iter().filter(|a| a.round == r) {
            eprintln!("{}", alert_line(a));
        }
        if verdict.stop {
            eprintln!("stopping after round {r}: a collapse rule with action `stop` fired");
            break;
        }
    }
    Ok(RunSummary {
        dir,
        rounds,
        skipped_rows: task.skipped_rows,
    })
}

/// Every real row must fit the model's context, found before round 0 rather than when an
/// evaluation after training meets it (or silently truncated in training). A dataset with
/// `on_error = "skip"` drops the long rows and counts them with the malformed ones; otherwise
/// the run stops naming the file, how many rows and the first. Returns the longest row kept,
/// in tokens.
fn fit_lengths(plan: &RunPlan, task: &mut Task, tok: &Tok, max_len: usize) -> Result<usize> {
    let len = |e: &didact_core::Example| -> Result<usize> {
        Ok(tok.encode(&e.prompt)?.len() + tok.encode(&e.completion)?.len())
    };
    let fits = |e: &didact_core::Example| -> Result<bool> { Ok(len(e)? < max_len) };
    let mut long = Vec::new();
    let mut longest = 0;
    for e in task.real_train.iter().chain(&task.eval).chain(&task.ood) {
        let n = len(e)?;
        if n < max_len {
            longest = longest.max(n + 1);
        } else {
            long.push(
                e.prompt
                    .chars()
                    .chain(e.completion.chars())
                    .take(40)
                    .collect::<String>(),
            );
        }
    }
    let Some(first) = long.first() else {
        return Ok(longest);
    };
    let n = task.real_train.len() + task.eval.len() + task.ood.len();
    let (source, skip) = match &plan.source {
        didact_recipe::Source::Dataset { path, on_error, .. } => (
            path.display().to_string(),
            *on_error == didact_core::OnError::Skip,
        ),
        _ => ("the built-in world".into(), false),
    };
    if skip {
        let keep = |rows: &mut Vec<didact_core::Example>| -> Result<()> {
            let mut kept = Vec::with_capacity(rows.len());
            for e in rows.drain(..) {
                if fits(&e)? {
                    kept.push(e);
                }
            }
            *rows = kept;
            Ok(())
        };
        keep(&mut task.real_train)?;
        keep(&mut task.eval)?;
        task.skipped_rows += long.len();
        if !task.real_train.is_empty() && !task.eval.is_empty() {
            return Ok(longest);
        }
    }
    Err(LoopError::RunDir {
        path: PathBuf::from(source),
        msg: format!(
            "{} of {n} rows are longer than the model's context (max_seq_len {max_len} tokens with the end token); the first starts {first:?}. Raise model.max_seq_len, shorten the rows (data.chunk_chars), or set data.on_error = \"skip\" to drop them",
            long.len()
        ),
    })
}

/// Every endpoint's key variable must be set now, not when round 1 first calls it.
fn check_endpoint_keys(plan: &RunPlan) -> Result<()> {
    use didact_recipe::{Generator, JudgeBy, TeacherPlan};
    let generator = match &plan.generate.generator {
        Generator::Endpoint(e) => e
            .api_key_env
            .as_deref()
            .map(|v| (v, "generate.api_key_env")),
        Generator::Teacher(TeacherPlan::Endpoint { endpoint, .. }) => endpoint
            .api_key_env
            .as_deref()
            .map(|v| (v, "teacher.api_key_env")),
        _ => None,
    };
    let judge = match plan.judge.as_ref().map(|j| &j.by) {
        Some(JudgeBy::Endpoint(e)) => e.api_key_env.as_deref().map(|v| (v, "judge.api_key_env")),
        _ => None,
    };
    for (var, key) in generator.into_iter().chain(judge) {
        if std::env::var_os(var).is_none() {
            return Err(LoopError::RunDir {
                path: PathBuf::from(var),
                msg: format!(
                    "the environment variable named by `{key}` is not set (set it to the endpoint's API key)"
                ),
            });
        }
    }
    Ok(())
}

/// `env.json`: didact version, git commit, device, threads, machine.
fn write_env(
    dir: &Path,
    plan: &RunPlan,
    opts: &RunOptions,
    memory: &crate::memory::Estimate,
) -> Result<()> {
    let env = serde_json::json!({
        "didact_version": env!("CARGO_PKG_VERSION"),
        "git_commit": git_commit(),
        "device": plan.device,
        "threads": opts.threads,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_estimate": memory.to_json(),
        "memory_available_bytes": crate::memory::available(),
    });
    let env_path = dir.join("env.json");
    write_atomic(
        &env_path,
        serde_json::to_string_pretty(&env).expect("json").as_bytes(),
    )
    .map_err(io(&env_path))
}

/// Rewrite `alerts.jsonl` (one object per alert so far), atomically.
fn write_alerts(dir: &Path, alerts: &[Alert]) -> Result<()> {
    let mut text = String::new();
    for a in alerts {
        let v = serde_json::json!({
            "round": a.round,
            "metric": a.metric,
            "kind": format!("{:?}", a.kind),
            "action": format!("{:?}", a.action).to_lowercase(),
            "value": a.value,
            "baseline": a.baseline,
            "change_pct": a.change_pct,
        });
        text.push_str(&v.to_string());
        text.push('\n');
    }
    let p = dir.join("alerts.jsonl");
    write_atomic(&p, text.as_bytes()).map_err(io(&p))
}

/// Rewrite `metrics.parquet` and `metrics.csv` from the rounds so far.
pub fn write_tables(dir: &Path, rounds: &[(u32, Metrics)]) -> Result<()> {
    let mut df = table::metrics_to_df(rounds);
    table::write_parquet(&dir.join("metrics.parquet"), &mut df)?;
    table::write_csv(&dir.join("metrics.csv"), &mut df)?;
    Ok(())
}

/// Every finished round's metrics of a run directory, in round order; a directory holding
/// only `metrics.csv` (a committed run summary under `results/`) is read from that table.
pub fn load_rounds(dir: &Path) -> Result<Vec<(u32, Metrics)>> {
    let rounds_dir = dir.join("rounds");
    let csv = dir.join("metrics.csv");
    if !rounds_dir.exists() && csv.is_file() {
        return Ok(table::read_metrics_csv(&csv)?);
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&rounds_dir).map_err(|e| LoopError::RunDir {
        path: dir.to_path_buf(),
        msg: format!("not a run directory ({}: {e})", rounds_dir.display()),
    })?;
    for e in entries {
        let e = e.map_err(io(&rounds_dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(r) = name
            .strip_prefix("round-")
            .and_then(|x| x.parse::<u32>().ok())
        else {
            continue;
        };
        let p = e.path().join("metrics.json");
        if p.exists() {
            out.push((r, read_metrics(&p)?));
        }
    }
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_in_a_locked_directory_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("didact-lock-{}", std::process::id()));
        let held = lock_dir(&dir).unwrap();
        let err = lock_dir(&dir)
            .err()
            .expect("the directory is locked")
            .to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(lock_dir(&dir).is_ok(), "released with its holder");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_with_only_metrics_csv_loads_from_the_table() {
        let dir = std::env::temp_dir().join(format!("didact-csvrun-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rounds: Vec<(u32, Metrics)> = (0..3)
            .map(|r| {
                (
                    r,
                    Metrics::from([("eval/loss_real".to_string(), 1.5 + r as f64)]),
                )
            })
            .collect();
        write_tables(&dir, &rounds).unwrap();
        std::fs::remove_file(dir.join("metrics.parquet")).unwrap();
        assert_eq!(load_rounds(&dir).unwrap(), rounds);
        std::fs::remove_dir_all(&dir).unwrap();
        let err = load_rounds(&dir).unwrap_err().to_string();
        assert!(err.contains("not a run directory"), "{err}");
    }
}
