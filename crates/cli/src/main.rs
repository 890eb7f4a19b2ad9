//! The `didact` binary: clap subcommands over the library crates. Picks the device (by cargo
//! feature and recipe) and the thread count at the edge; `anyhow` lives only here.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use didact_loop::report;
use didact_loop::{RunOptions, load_rounds, run};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Generate continuations with a checkpoint (didact's or a Hugging Face Llama/Qwen2
    /// directory). Prints one JSON line per prompt: `prompt`, `completion`, `token_ids`,
    /// `stopped`.
    ///
    /// Example: didact generate --model runs/quickstart-s1/rounds/round-03/model --prompt 417+86= --greedy
    Generate {
        #[arg(long)]
        model: PathBuf,
        /// Prompt text (repeatable: the prompts are generated as one batch).
        #[arg(long, required = true)]
        prompt: Vec<String>,
        /// Greedy decoding (otherwise temperature / top-k / top-p sampling).
        #[arg(long)]
        greedy: bool,
        #[arg(long, default_value_t = 32)]
        max_new_tokens: usize,
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop token id (default: the tokenizer's end-of-sequence token).
        #[arg(long)]
        stop_token: Option<u32>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Print a run's metrics table (every metric × every round) and write RUN_DIR/report.md.
    ///
    /// Example: didact report runs/quickstart-s1
    Report {
        /// Run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
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
            "note: {} malformed dataset rows were skipped",
            summary.skipped_rows
        );
    }
    let md = format!("# {}\n\n{}", plan.name, report::markdown(&summary.rounds));
    let report_path = summary.dir.join("report.md");
    didact_core::write_atomic(&report_path, md.as_bytes())
        .with_context(|| report_path.display().to_string())?;
    eprintln!(
        "done: {} (metrics.csv, metrics.parquet, report.md); full table: didact report {}",
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

/// One input row → (token ids, prompt length): `input_ids`, `text`, or `prompt`+`completion`.
fn score_row(
    v: &serde_json::Value,
    tok: &didact_model::Tok,
) -> std::result::Result<(Vec<u32>, usize), String> {
    if let Some(ids) = v.get("input_ids") {
        let ids: Vec<u32> = serde_json::from_value(ids.clone())
            .map_err(|e| format!("`input_ids` must be a list of token ids: {e}"))?;
        return Ok((ids, 0));
    }
    if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
        return Ok((tok.encode(t).map_err(|e| e.to_string())?, 0));
    }
    match (
        v.get("prompt").and_then(|x| x.as_str()),
        v.get("completion").and_then(|x| x.as_str()),
    ) {
        (Some(p), Some(c)) => {
            let mut ids = tok.encode(p).map_err(|e| e.to_string())?;
            let n = ids.len();
            ids.extend(tok.encode(c).map_err(|e| e.to_string())?);
            Ok((ids, n))
        }
        _ => Err("expected `text`, `input_ids`, or `prompt` and `completion`".into()),
    }
}

fn cmd_score(model: PathBuf, input: PathBuf, reward: bool, device: String) -> Result<()> {
    let device = didact_model::device::device_from_name(&device)?;
    let text = std::fs::read_to_string(&input).with_context(|| input.display().to_string())?;
    let ck = didact_model::any::load(&model, &device)?;
    let (max_len, tok) = (ck.max_seq_len, ck.tokenizer.clone());
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: invalid JSON: {e}", input.display(), i + 1))?;
        let (ids, n_prompt) = score_row(&v, &tok)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", input.display(), i + 1))?;
        if ids.len() > max_len {
            anyhow::bail!(
                "{}:{}: {} tokens, longer than the model's max_seq_len {max_len}",
                input.display(),
                i + 1,
                ids.len()
            );
        }
        if ids.len() < 2 && !reward {
            anyhow::bail!(
                "{}:{}: a row needs at least 2 tokens to be scored",
                input.display(),
                i + 1
            );
        }
        rows.push(didact_train::TokenRow { ids, n_prompt });
    }
    let out: Vec<serde_json::Value> = if reward {
        let (rm, _) = didact_loop::rm::load_reward_model(&model, &device)?;
        let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.ids.clone()).collect();
        let r = didact_train::score_rows(&rm, &ids, 16, max_len, tok.pad_id, &device);
        rows.iter()
            .zip(r)
            .map(|(row, x)| serde_json::json!({"tokens": row.ids.len(), "reward": x}))
            .collect()
    } else {
        let lp = didact_train::row_logprobs_with(
            &|x| ck.model.forward(x),
            &rows,
            16,
            max_len,
            tok.pad_id,
            &device,
        );
        lp.iter()
            .zip(&rows)
            .map(|((sum, n), row)| {
                let mean = -sum / (*n).max(1) as f64;
                serde_json::json!({"tokens": row.ids.len(), "scored_tokens": n, "sum_logprob": sum, "mean_nll": mean, "perplexity": mean.exp()})
            })
            .collect()
    };
    for o in out {
        println!("{o}");
    }
    Ok(())
}

struct GenArgs {
    model: PathBuf,
    prompt: Vec<String>,
    greedy: bool,
    max_new_tokens: usize,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    seed: u64,
    stop_token: Option<u32>,
    device: String,
}

fn cmd_generate(a: GenArgs) -> Result<()> {
    use didact_model::{SamplingParams, row_seed};
    let device = didact_model::device::device_from_name(&a.device)?;
    let ck = didact_model::any::load(&a.model, &device)?;
    let stop = Some(a.stop_token.unwrap_or(ck.tokenizer.eos_id));
    let params = if a.greedy {
        SamplingParams::greedy(a.max_new_tokens, stop)
    } else {
        SamplingParams {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            max_new_tokens: a.max_new_tokens,
            stop_token: stop,
        }
    };
    let prompts: Vec<Vec<u32>> = a
        .prompt
        .iter()
        .map(|p| ck.tokenizer.encode(p))
        .collect::<std::result::Result<_, _>>()?;
    let seeds: Vec<u64> = (0..prompts.len() as u64)
        .map(|i| row_seed(a.seed, 0, i))
        .collect();
    let gens = ck.model.generate(
        ck.max_seq_len,
        &prompts,
        &seeds,
        &params,
        ck.tokenizer.pad_id,
        &device,
    )?;
    for (p, g) in a.prompt.iter().zip(gens) {
        let completion = ck.tokenizer.decode(&g.tokens)?;
        println!(
            "{}",
            serde_json::json!({"prompt": p, "completion": completion, "token_ids": g.tokens, "stopped": g.stopped})
        );
    }
    Ok(())
}

fn cmd_report(dirs: Vec<PathBuf>) -> Result<()> {
    for dir in dirs {
        let rounds = load_rounds(&dir)?;
        if rounds.is_empty() {
            anyhow::bail!("{}: no finished rounds yet", dir.display());
        }
        println!("# {}\n", dir.display());
        println!("{}", report::terminal(&rounds));
        let md = format!("# {}\n\n{}", dir.display(), report::markdown(&rounds));
        let p = dir.join("report.md");
        didact_core::write_atomic(&p, md.as_bytes()).with_context(|| p.display().to_string())?;
        eprintln!("wrote {}", p.display());
    }
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
        } => cmd_score(model, input, reward, device),
        Cmd::Generate {
            model,
            prompt,
            greedy,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            stop_token,
            device,
        } => cmd_generate(GenArgs {
            model,
            prompt,
            greedy,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            stop_token,
            device,
        }),
        Cmd::Report { dirs } => cmd_report(dirs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
