//! The `didact` binary: clap subcommands over the library crates. Picks the device (by cargo
//! feature and recipe) and the thread count at the edge; `anyhow` lives only here.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use didact_loop::report;
use didact_loop::{RunOptions, load_rounds, run};
use std::path::PathBuf;
use std::process::ExitCode;

mod doctor;
mod tools;
mod train;

#[derive(Parser)]
#[command(
    name = "didact",
    version,
    about = "Self-evolution training loops: generate → score → filter → mix → train → evaluate, round after round"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a recipe: round 0 trains the base model, each later round generates, scores,
    /// filters, mixes, fine-tunes and evaluates.
    ///
    /// Example: didact run recipes/quickstart.toml --set run.rounds=5 --out runs/q5
    Run {
        /// The recipe TOML file.
        recipe: PathBuf,
        /// Run directory (default: runs/<name>-s<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a recipe value: --set section.key=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue a killed run at its first unfinished stage.
        #[arg(long)]
        resume: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Run every point of the recipe's `[sweep]` grid (one run directory each under OUT,
    /// resumable: finished stages are reused), then write OUT/comparison.csv and
    /// OUT/comparison.md with each point's final-round metrics.
    ///
    /// Example: didact sweep recipes/quickstart.toml --set 'sweep."mix.mode"=["replace","accumulate"]'
    Sweep {
        recipe: PathBuf,
        /// Sweep directory (default: runs/<name>-sweep).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        quiet: bool,
        /// Points run at the same time; they share `[run] threads` (default 1).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Hand each point's `didact run …` to this command, `{cmd}` standing for it (shell-
        /// quoted words): `sbatch --wait --wrap "{cmd}"`, `ssh gpu1 "{cmd}"`, `bash -c "{cmd}"`. With
        /// --jobs N, N launches wait at once.
        #[arg(long)]
        launcher: Option<String>,
    },
    /// Train and evaluate a Bradley-Terry reward model from the recipe's `[reward]` section
    /// (preference pairs: prompt/chosen/rejected, or HH-RLHF dialogues). Writes OUT/rm/ (HF
    /// layout with `score.weight`) and OUT/rm_metrics.json; prints the metrics as JSON.
    ///
    /// Example: didact train-rm recipes/reward-model.toml --set reward.steps=100
    TrainRm {
        recipe: PathBuf,
        /// Output directory (default: runs/<name>-s<seed>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        quiet: bool,
    },
    /// Score rows of a JSONL file with a model: per row `tokens`, `sum_logprob`, `mean_nll`,
    /// `perplexity` (rows give `text`, pre-tokenized `input_ids`, or `prompt`+`completion` to
    /// score the completion only), or with `--reward` the reward model's `reward`. One JSON line
    /// per input row on stdout.
    ///
    /// Example: didact score --model runs/quickstart-s1/rounds/round-03/model --input rows.jsonl
    Score {
        /// A checkpoint directory (config.json, model.safetensors, tokenizer.json).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        input: PathBuf,
        /// Score with a reward model (the directory holds `score.weight`).
        #[arg(long)]
        reward: bool,
        /// `cpu`, `flex`, `ndarray`, `cuda`, `tch`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Generate continuations with a checkpoint (didact's or a Hugging Face Llama/Qwen2/GPT-2
    /// directory). Prints one JSON line per prompt: `prompt`, `completion`, `token_ids`,
    /// `stopped`.
    ///
    /// Example: didact generate --model runs/quickstart-s1/rounds/round-03/model --prompt 417+86= --greedy
    Generate(tools::GenArgs),
    /// The sample metric suite of a set of samples — the same names and definitions a run's
    /// evaluation reports (`diversity/*`, `gen/mean_length` in words, …) — as one JSON object.
    /// Input: JSONL or Parquet (the `--field` column) or `.txt` (one sample per line).
    /// `--reference` adds `gen/real_mean_length`, tail mass against the reference's hapax words
    /// (`tail/*`), add-½-smoothed unigram KL(reference ‖ samples), `reference/rougeL_max_mean`
    /// (mean over samples of the best ROUGE-L F against the reference texts) and the reference
    /// set's own distinct-2. `--chars` counts every non-space character as a word (what runs on
    /// the arithmetic world report).
    ///
    /// Example: didact metrics --input runs/qs/rounds/round-01/generated.parquet --field completion --chars
    Metrics {
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value = "text")]
        field: String,
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Characters are the words (arithmetic-world runs).
        #[arg(long)]
        chars: bool,
    },
    /// Serve a checkpoint (didact round `model/`, or an HF Llama / Qwen2 / GPT-2 directory)
    /// through the OpenAI-compatible API: POST /v1/completions, POST /v1/chat/completions
    /// (streaming, logprobs, n, lists of prompts), GET /v1/models. A request's `seed` makes its
    /// sampling reproducible (completion k of a prompt uses seed + k).
    ///
    /// Example: didact serve --model runs/distill-s1/rounds/round-00/teacher --port 8000
    Serve {
        #[arg(long)]
        model: PathBuf,
        /// A PEFT LoRA adapter directory merged into --model (served under its directory name).
        #[arg(long)]
        adapter: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// 0 = any free port (the address is printed).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Fault injection (testing clients): every N-th request gets the next of --faults.
        #[arg(long, default_value_t = 0)]
        fault_every: usize,
        /// Comma-separated: HTTP statuses (500, 429, 503…), `drop` (close without answering),
        /// `slow` (answer after --slow-ms).
        #[arg(long, default_value = "")]
        faults: String,
        #[arg(long, default_value_t = 5000)]
        slow_ms: u64,
        /// Requests answered at once (one thread each).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
        workers: u16,
        /// Largest request body in bytes (413 beyond it).
        #[arg(long, default_value_t = 8 << 20)]
        max_body_bytes: usize,
        /// Seconds a request body may take to arrive, and a silent connection is kept (408 /
        /// closed beyond it).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        read_timeout_secs: u64,
    },
    /// Check this machine: which backends are compiled in and which devices exist (CUDA
    /// devices through LibTorch), then on DEVICE the conformance self-check against flex (and
    /// transformers/TRL when ../shared/fixtures is found) and a train/sample throughput probe.
    /// Prints the exact fix when something fails. Run it first on any new (GPU) machine.
    ///
    /// Example: didact doctor --device tch
    Doctor {
        /// `flex`, `ndarray`, `tch-cpu`, `tch` (LibTorch CUDA), `cuda`.
        #[arg(long, default_value = "flex")]
        device: String,
        /// Skip the throughput probe.
        #[arg(long)]
        no_throughput: bool,
        /// Only check that DEVICE runs one kernel, then exit (used by doctor itself).
        #[arg(long, hide = true)]
        probe_only: bool,
    },
    /// Train a checkpoint once, outside a run: SFT on `prompt`/`completion` (or `messages`,
    /// `text`) rows or DPO on `prompt`/`chosen`/`rejected` rows (reference = the starting
    /// checkpoint), written as an HF directory with train_log.json. Also what a recipe's
    /// `[train] external` command can call.
    ///
    /// Example: didact train --model runs/quickstart-s1/rounds/round-00/model --data rows.jsonl --out runs/ft --steps 200
    Train(train::TrainArgs),
    /// Merge a PEFT LoRA adapter (didact's `didact train --lora-r …` output, or one made by
    /// `peft`) into its base checkpoint and write the result as an HF directory — what PEFT's
    /// `merge_and_unload()` + `save_pretrained` give.
    ///
    /// Example: didact merge --model runs/qs/rounds/round-00/model --adapter runs/ft/adapter --out runs/ft-merged
    Merge {
        /// The base checkpoint the adapter was trained on.
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        adapter: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Calibrate the collapse detector: replay a recipe's `[detector]` rules over finished runs
    /// known to be stable and runs known to collapse (e.g. the seeds of an accumulate/replace
    /// sweep) and write OUT/calibration.csv and OUT/calibration.md — per rule the false-alarm
    /// rate, the detection round on each collapsing run, and the metric's round-0 seed-to-seed
    /// standard deviation (the rule's `noise_sd`). Rules come from --recipe (default: the first
    /// stable run's recipe.resolved.toml); --set tries other rules without rerunning anything.
    ///
    /// Example: didact calibrate --stable runs/s/mode-accumulate_seed-* --collapsing runs/s/mode-replace_seed-* --out runs/calib
    Calibrate {
        /// Run directories that must not alarm.
        #[arg(long, num_args = 1.., required = true)]
        stable: Vec<PathBuf>,
        /// Run directories that must be detected.
        #[arg(long, num_args = 1.., required = true)]
        collapsing: Vec<PathBuf>,
        /// The recipe whose `[detector]` rules are replayed.
        #[arg(long)]
        recipe: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Where calibration.csv and calibration.md go.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print each run's metrics table and write report.md + charts/ (SVG and PNG): every
    /// metric against round, one line per run, collapse alerts marked; for a sweep directory
    /// also every final metric against the swept value.
    ///
    /// Examples: didact report runs/quickstart-s1
    ///           didact report runs/collapse-replace-s1 runs/collapse-accumulate-s1 --out runs/collapse
    Report {
        /// Run or sweep directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where report.md and charts/ go (default: the directory, when there is one).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Chart only metrics starting with one of these (comma-separated prefixes, e.g.
        /// `eval/,truth/,tail/`); default: every metric.
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
    },
}

fn cmd_run(
    recipe: PathBuf,
    out: Option<PathBuf>,
    set: Vec<String>,
    resume: bool,
    quiet: bool,
) -> Result<()> {
    let (loaded, device) = setup(&recipe, &set)?;
    let plan = &loaded.plan;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-s{}", plan.name, plan.seed)));
    let opts = RunOptions {
        out: out.clone(),
        resume,
        quiet,
        threads: rayon::current_num_threads(),
    };
    eprintln!(
        "didact run {} → {} (device {}, {} threads, {} rounds after round 0)",
        recipe.display(),
        out.display(),
        plan.device,
        opts.threads,
        plan.rounds
    );
    println!("{}", report::summary_header());
    let summary = run(
        plan,
        &didact_recipe::to_toml(&loaded.file),
        &opts,
        device,
        |r, m| {
            println!("{}", report::summary_row(r, m));
        },
    )?;
    if summary.skipped_rows > 0 {
        eprintln!(
            "note: {} dataset rows were skipped (malformed, or longer than the model's context)",
            summary.skipped_rows
        );
    }
    didact_loop::charts::write_report(std::slice::from_ref(&summary.dir), &summary.dir, &[])?;
    eprintln!(
        "done: {} (metrics.csv, metrics.parquet, report.md, charts/); full table: didact report {}",
        summary.dir.display(),
        summary.dir.display()
    );
    Ok(())
}

/// Recipe → plan, thread pool and device: the common start of `run` and `train-rm`.
fn setup(
    recipe: &std::path::Path,
    set: &[String],
) -> Result<(didact_recipe::Loaded, didact_model::burn::tensor::Device)> {
    let loaded = didact_recipe::load(recipe, set)?;
    if loaded.plan.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(loaded.plan.threads)
            .build_global()
            .context("configuring the thread pool")?;
    }
    let device = didact_model::device::device_from_name(&loaded.plan.device)?;
    Ok((loaded, device))
}

fn cmd_sweep(
    recipe: PathBuf,
    out: Option<PathBuf>,
    set: Vec<String>,
    quiet: bool,
    jobs: usize,
    launcher: Option<String>,
) -> Result<()> {
    let (base, device) = setup(&recipe, &set)?;
    let launcher = match launcher {
        Some(t) if !t.contains("{cmd}") => {
            anyhow::bail!(
                "--launcher: expected a command with {{cmd}} in it (the point's didact run), got {t:?}"
            )
        }
        Some(template) => Some(didact_loop::sweep::Launcher {
            template,
            exe: std::env::current_exe().context("locating the didact binary")?,
        }),
        None => None,
    };
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-sweep", base.plan.name)));
    let opts = didact_loop::sweep::SweepOptions {
        recipe: recipe.clone(),
        sets: set,
        out: out.clone(),
        quiet,
        threads: rayon::current_num_threads(),
        jobs,
        launcher,
    };
    let md = didact_loop::sweep::run_sweep(&base, &opts, &device, |msg| eprintln!("{msg}"))?;
    println!("{md}");
    eprintln!(
        "done: {} (comparison.csv, comparison.md, report.md, charts/)",
        out.display()
    );
    Ok(())
}

fn cmd_train_rm(
    recipe: PathBuf,
    out: Option<PathBuf>,
    set: Vec<String>,
    quiet: bool,
) -> Result<()> {
    let (loaded, device) = setup(&recipe, &set)?;
    let plan = &loaded.plan;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-s{}", plan.name, plan.seed)));
    eprintln!(
        "didact train-rm {} → {} (device {}, {} threads)",
        recipe.display(),
        out.display(),
        plan.device,
        rayon::current_num_threads()
    );
    let s = didact_loop::rm::train_reward_model(
        plan,
        &didact_recipe::to_toml(&loaded.file),
        &out,
        &device,
        quiet,
    )?;
    for e in &s.skipped_examples {
        eprintln!("skipped: {e}");
    }
    println!("{}", serde_json::to_string_pretty(&s.metrics)?);
    eprintln!("done: {} (rm_metrics.json)", s.dir.display());
    Ok(())
}

fn cmd_report(dirs: Vec<PathBuf>, out: Option<PathBuf>, metrics: Vec<String>) -> Result<()> {
    for dir in &dirs {
        if dir.join("comparison.csv").exists() {
            continue;
        }
        let rounds = load_rounds(dir)?;
        if rounds.is_empty() {
            anyhow::bail!("{}: no finished rounds yet", dir.display());
        }
        println!("# {}\n", dir.display());
        println!("{}", report::terminal(&rounds));
    }
    let out = match (out, dirs.as_slice()) {
        (Some(o), _) => o,
        (None, [one]) => one.clone(),
        (None, _) => anyhow::bail!("several directories: name the report's directory with --out"),
    };
    didact_loop::charts::write_report(&dirs, &out, &metrics)?;
    eprintln!(
        "wrote {} and {}",
        out.join("report.md").display(),
        out.join("charts").display()
    );
    Ok(())
}

fn cmd_calibrate(
    stable: Vec<PathBuf>,
    collapsing: Vec<PathBuf>,
    recipe: Option<PathBuf>,
    set: Vec<String>,
    out: PathBuf,
) -> Result<()> {
    let recipe = recipe.unwrap_or_else(|| stable[0].join("recipe.resolved.toml"));
    let rules = didact_recipe::load(&recipe, &set)?.plan.detector;
    if rules.is_empty() {
        anyhow::bail!("{}: no [detector] rules to calibrate", recipe.display());
    }
    let load = |dirs: &[PathBuf]| -> Result<Vec<Vec<(u32, didact_core::Metrics)>>> {
        dirs.iter()
            .map(|d| {
                let r = load_rounds(d)?;
                if r.len() < 2 {
                    anyhow::bail!("{}: fewer than two finished rounds", d.display());
                }
                Ok(r)
            })
            .collect()
    };
    let (s, c) = (load(&stable)?, load(&collapsing)?);
    let sv: Vec<&[(u32, didact_core::Metrics)]> = s.iter().map(|x| x.as_slice()).collect();
    let cv: Vec<&[(u32, didact_core::Metrics)]> = c.iter().map(|x| x.as_slice()).collect();
    let rows = didact_loop::calibrate::calibrate(&rules, &sv, &cv);
    let names =
        |d: &[PathBuf]| -> Vec<String> { d.iter().map(|p| p.display().to_string()).collect() };
    let (sn, cn) = (names(&stable), names(&collapsing));
    didact_loop::calibrate::write(&out, &rows, &sn, &cn)?;
    println!("{}", didact_loop::calibrate::markdown(&rows, &sn, &cn));
    eprintln!(
        "wrote {} and calibration.md",
        out.join("calibration.csv").display()
    );
    Ok(())
}

fn cmd_serve(
    model: PathBuf,
    adapter: Option<PathBuf>,
    addr: String,
    device: String,
    plan: didact_serve::FaultPlan,
    limits: didact_serve::Limits,
) -> Result<()> {
    let device = didact_model::device::device_from_name(&device)?;
    let m = didact_serve::Model::load_with_adapter(&model, adapter.as_deref(), &device)?;
    let (listener, local) = didact_serve::bind(&addr)?;
    eprintln!(
        "didact serve {} ({}) → http://{local}/v1",
        model.display(),
        m.ck.config.architecture()
    );
    didact_serve::run(listener, m, plan, limits)?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run {
            recipe,
            out,
            set,
            resume,
            quiet,
        } => cmd_run(recipe, out, set, resume, quiet),
        Cmd::Sweep {
            recipe,
            out,
            set,
            quiet,
            jobs,
            launcher,
        } => cmd_sweep(recipe, out, set, quiet, jobs, launcher),
        Cmd::TrainRm {
            recipe,
            out,
            set,
            quiet,
        } => cmd_train_rm(recipe, out, set, quiet),
        Cmd::Score {
            model,
            input,
            reward,
            device,
        } => tools::cmd_score(model, input, reward, device),
        Cmd::Generate(args) => tools::cmd_generate(args),
        Cmd::Train(args) => train::cmd_train(args),
        Cmd::Merge {
            model,
            adapter,
            out,
        } => tools::cmd_merge(&model, &adapter, &out),
        Cmd::Metrics {
            input,
            field,
            reference,
            chars,
        } => tools::cmd_metrics(input, field, reference, chars),
        Cmd::Report { dirs, out, metrics } => cmd_report(dirs, out, metrics),
        Cmd::Calibrate {
            stable,
            collapsing,
            recipe,
            set,
            out,
        } => cmd_calibrate(stable, collapsing, recipe, set, out),
        Cmd::Doctor {
            device,
            probe_only: true,
            ..
        } => doctor::probe_only(&device),
        Cmd::Doctor {
            device,
            no_throughput,
            ..
        } => doctor::cmd_doctor(&device, no_throughput),
        Cmd::Serve {
            model,
            adapter,
            host,
            port,
            device,
            fault_every,
            faults,
            slow_ms,
            workers,
            max_body_bytes,
            read_timeout_secs,
        } => didact_serve::FaultPlan::parse(fault_every, &faults, slow_ms)
            .map_err(anyhow::Error::from)
            .and_then(|plan| {
                let limits = didact_serve::Limits {
                    workers: workers as usize,
                    max_body_bytes,
                    read_timeout: std::time::Duration::from_secs(read_timeout_secs),
                };
                let addr = format!("{host}:{port}");
                cmd_serve(model, adapter, addr, device, plan, limits)
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: the library errors already put their source into
/// their own message (`path: cause`), so a cause whose text is already there is left out.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !text.contains(&c) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&c);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e: anyhow::Error = didact_loop::LoopError::Io {
            path: "runs/x/metrics.json".into(),
            source: io,
        }
        .into();
        assert_eq!(error_text(&e), "runs/x/metrics.json: No such file");
        let e = e.context("reading the run");
        assert_eq!(
            error_text(&e),
            "reading the run: runs/x/metrics.json: No such file"
        );
    }
}
