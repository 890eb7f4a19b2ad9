//! The `didact` binary: clap subcommands over the library crates. Picks the device (by cargo
//! feature and recipe) and the thread count at the edge; `anyhow` lives only here.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use didact_loop::report;
use didact_loop::{RunOptions, load_rounds, run};
use std::path::PathBuf;
use std::process::ExitCode;

mod doctor;

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
    Generate(GenArgs),
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
    /// through the OpenAI-compatible API: POST /v1/completions, POST /v1/chat/completions,
    /// GET /v1/models. A request's `seed` makes its sampling reproducible.
    ///
    /// Example: didact serve --model runs/distill-s1/rounds/round-00/teacher --port 8000
    Serve {
        #[arg(long)]
        model: PathBuf,
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
            "note: {} malformed dataset rows were skipped",
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
) -> Result<()> {
    let (base, device) = setup(&recipe, &set)?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-sweep", base.plan.name)));
    let opts = didact_loop::sweep::SweepOptions {
        recipe: recipe.clone(),
        sets: set,
        out: out.clone(),
        quiet,
        threads: rayon::current_num_threads(),
        jobs,
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
            &|x| didact_model::Decoder::forward(&ck.model, x),
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

#[derive(clap::Args)]
struct GenArgs {
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
    /// Stop token id (default: `eos_token_id` of the model's generation_config.json, else
    /// the tokenizer's end-of-sequence token).
    #[arg(long)]
    stop_token: Option<u32>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn cmd_generate(a: GenArgs) -> Result<()> {
    use didact_model::{SamplingParams, row_seed};
    let device = didact_model::device::device_from_name(&a.device)?;
    let ck = didact_model::any::load(&a.model, &device)?;
    // Stop token: --stop-token, else generation_config.json's eos_token_id (first, if a list),
    // else the tokenizer's end-of-sequence token.
    let from_gen_config = std::fs::read_to_string(a.model.join("generation_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| match &v["eos_token_id"] {
            serde_json::Value::Array(l) => l.first().and_then(|x| x.as_u64()),
            x => x.as_u64(),
        })
        .map(|x| x as u32);
    let stop = Some(
        a.stop_token
            .or(from_gen_config)
            .unwrap_or(ck.tokenizer.eos_id),
    );
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
    let gens = didact_model::generate_batch(
        &ck.model,
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

/// Texts of a samples file: `.txt` lines, or one field of JSONL / Parquet rows.
fn read_texts(path: &std::path::Path, field: &str) -> Result<Vec<String>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" => Ok(std::fs::read_to_string(path)
            .with_context(|| path.display().to_string())?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect()),
        "jsonl" | "json" => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            let mut out = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    anyhow::anyhow!("{}:{}: invalid JSON: {e}", path.display(), i + 1)
                })?;
                let t = v[field].as_str().ok_or_else(|| {
                    anyhow::anyhow!("{}:{}: no string field `{field}`", path.display(), i + 1)
                })?;
                out.push(t.to_string());
            }
            Ok(out)
        }
        "parquet" => Ok(didact_loop::read_text_column(path, field)?),
        _ => anyhow::bail!("{}: expected .txt, .jsonl or .parquet", path.display()),
    }
}

fn cmd_metrics(
    input: PathBuf,
    field: String,
    reference: Option<PathBuf>,
    chars: bool,
) -> Result<()> {
    use didact_metrics as dm;
    let unit = if chars {
        dm::Unit::Chars
    } else {
        dm::Unit::Words
    };
    let in_unit =
        |texts: &[String]| dm::in_unit(&texts.iter().map(|s| s.as_str()).collect::<Vec<_>>(), unit);
    let texts = in_unit(&read_texts(&input, &field)?);
    if texts.is_empty() {
        anyhow::bail!("{}: no samples", input.display());
    }
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let rtexts = match &reference {
        Some(r) => Some(in_unit(&read_texts(r, &field)?)),
        None => None,
    };
    if rtexts.as_ref().is_some_and(|r| r.is_empty()) {
        anyhow::bail!(
            "{}: no reference texts",
            reference.as_ref().expect("some").display()
        );
    }
    let rr: Option<Vec<&str>> = rtexts
        .as_ref()
        .map(|r| r.iter().map(|s| s.as_str()).collect());
    let mut m = serde_json::Map::new();
    m.insert("n_samples".into(), texts.len().into());
    m.insert(
        "diversity/distinct_3".into(),
        dm::distinct_n(&refs, 3).into(),
    );
    for (k, v) in dm::sample_suite(&refs, rr.as_deref()) {
        m.insert(k, v.into());
    }
    if let (Some(rtexts), Some(rr)) = (&rtexts, &rr) {
        let pool: Vec<Vec<String>> = rtexts.iter().map(|t| dm::rouge_tokens(t)).collect();
        let mean = texts
            .iter()
            .map(|t| dm::novelty(t, &pool, 1.0).1)
            .sum::<f64>()
            / texts.len() as f64;
        m.insert("reference/rougeL_max_mean".into(), mean.into());
        m.insert("reference/distinct_2".into(), dm::distinct_n(rr, 2).into());
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(m))?
    );
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

fn cmd_serve(
    model: PathBuf,
    addr: String,
    device: String,
    fault_every: usize,
    faults: String,
    slow_ms: u64,
) -> Result<()> {
    let device = didact_model::device::device_from_name(&device)?;
    let plan = didact_serve::FaultPlan::parse(fault_every, &faults, slow_ms)?;
    let m = didact_serve::Model::load(&model, &device)?;
    let (server, local) = didact_serve::bind(&addr)?;
    eprintln!(
        "didact serve {} ({}) → http://{local}/v1",
        model.display(),
        m.ck.config.architecture()
    );
    didact_serve::run(&server, &m, &plan);
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
        } => cmd_sweep(recipe, out, set, quiet, jobs),
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
        Cmd::Generate(args) => cmd_generate(args),
        Cmd::Metrics {
            input,
            field,
            reference,
            chars,
        } => cmd_metrics(input, field, reference, chars),
        Cmd::Report { dirs, out, metrics } => cmd_report(dirs, out, metrics),
        Cmd::Doctor {
            device,
            no_throughput,
        } => doctor::cmd_doctor(&device, no_throughput),
        Cmd::Serve {
            model,
            host,
            port,
            device,
            fault_every,
            faults,
            slow_ms,
        } => cmd_serve(
            model,
            format!("{host}:{port}"),
            device,
            fault_every,
            faults,
            slow_ms,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
