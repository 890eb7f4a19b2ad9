//! The per-file tools: `didact score` (per-row log-probs or rewards of a JSONL file),
//! `didact generate` (continuations of prompts, batched with the KV cache) and `didact
//! metrics` (the sample metric suite of any samples file).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

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

pub fn cmd_score(model: PathBuf, input: PathBuf, reward: bool, device: String) -> Result<()> {
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
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= ck.vocab_size) {
            anyhow::bail!(
                "{}:{}: token id {bad} is outside the model's vocabulary (size {})",
                input.display(),
                i + 1,
                ck.vocab_size
            );
        }
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
pub struct GenArgs {
    #[arg(long)]
    model: PathBuf,
    /// A PEFT LoRA adapter directory merged into --model.
    #[arg(long)]
    adapter: Option<PathBuf>,
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
    #[arg(long, conflicts_with = "no_stop")]
    stop_token: Option<u32>,
    /// No stop token: every prompt gets exactly --max-new-tokens tokens.
    #[arg(long)]
    no_stop: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// `didact merge`: the base with the adapter merged, saved in the base's dtype.
pub fn cmd_merge(model: &Path, adapter: &Path, out: &Path) -> Result<()> {
    let device = didact_model::device::device_from_name("cpu")?;
    let ck = didact_model::any::load_with_adapter(model, Some(adapter), &device)?;
    didact_model::any::save_as(out, &ck.config, &ck.model, &ck.tokenizer, ck.dtype)?;
    println!("{}", serde_json::json!({"out": out.display().to_string()}));
    Ok(())
}

pub fn cmd_generate(a: GenArgs) -> Result<()> {
    use didact_model::{SamplingParams, row_seed};
    let device = didact_model::device::device_from_name(&a.device)?;
    let ck = didact_model::any::load_with_adapter(&a.model, a.adapter.as_deref(), &device)?;
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
    let stop = (!a.no_stop).then(|| {
        a.stop_token
            .or(from_gen_config)
            .unwrap_or(ck.tokenizer.eos_id)
    });
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
    params.check(ck.vocab_size)?;
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

pub fn cmd_metrics(
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
