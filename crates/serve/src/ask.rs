//! One completion request, read and checked: every field the OpenAI API defines for
//! `/v1/completions` and `/v1/chat/completions` is either honoured (prompt strings, token-id
//! prompts and lists of either; `n`; `stream` with `stream_options.include_usage`; `logprobs`
//! / `top_logprobs`; `stop`; `seed`; `temperature`, `top_p`; `max_tokens` /
//! `max_completion_tokens`; vLLM's `top_k` and `return_tokens_as_token_ids`), accepted because it changes nothing here (`user`, `metadata`,
//! `store`, `model`), or refused with a message — as is every value outside the API's range
//! and every field this server does not know. Nothing is silently ignored.

use crate::Model;
use didact_model::SamplingParams;
use serde_json::Value;

/// Most choices one request may ask for (prompts × `n`).
pub const MAX_CHOICES: usize = 256;
/// Most alternatives per token in `logprobs` / `top_logprobs` (vLLM's default limit).
pub const MAX_TOP_LOGPROBS: usize = 20;
/// Most stop strings per request.
pub const MAX_STOPS: usize = 16;

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub chat: bool,
    /// Token ids of each prompt (a chat request has one).
    pub prompts: Vec<Vec<u32>>,
    /// Completions per prompt; completion `k` of every prompt samples with seed `seed + k`,
    /// so a prompt in a list gets what it gets alone, and `n = 2` gives seeds `s, s+1`.
    pub n: usize,
    pub params: SamplingParams,
    pub seed: u64,
    pub stops: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// `Some(k)`: every token's log-probability and its `k` most likely alternatives.
    pub logprobs: Option<usize>,
    /// vLLM's extension: tokens in `logprobs` as `token_id:<id>` (unambiguous, for a
    /// distillation student that needs ids, not text pieces).
    pub token_ids: bool,
}

type Check<T> = std::result::Result<T, String>;

const COMMON: &[&str] = &[
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "n",
    "stream",
    "stream_options",
    "stop",
    "seed",
    "user",
    "metadata",
    "store",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "return_tokens_as_token_ids",
];
const COMPLETIONS: &[&str] = &["prompt", "echo", "best_of", "suffix"];
const CHAT: &[&str] = &["messages", "max_completion_tokens", "top_logprobs"];

/// A number field in `[lo, hi]`, or `default` when absent or null.
fn number(v: &Value, k: &str, lo: f64, hi: f64, default: f64) -> Check<f64> {
    match &v[k] {
        Value::Null => Ok(default),
        Value::Number(x) => x
            .as_f64()
            .filter(|x| (lo..=hi).contains(x))
            .ok_or_else(|| format!("`{k}` must be a number in [{lo}, {hi}], got {x}")),
        other => Err(format!("`{k}` must be a number, got {other}")),
    }
}

/// An integer field in `[lo, hi]`, or `default` when absent or null.
fn integer(v: &Value, k: &str, lo: i64, hi: i64, default: i64) -> Check<i64> {
    match &v[k] {
        Value::Null => Ok(default),
        Value::Number(x) => x
            .as_i64()
            .filter(|x| (lo..=hi).contains(x))
            .ok_or_else(|| format!("`{k}` must be an integer in [{lo}, {hi}], got {x}")),
        other => Err(format!("`{k}` must be an integer, got {other}")),
    }
}

fn boolean(v: &Value, k: &str) -> Check<bool> {
    match &v[k] {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        other => Err(format!("`{k}` must be true or false, got {other}")),
    }
}

/// Fields that would change the answer but are not implemented: accepted only at the value
/// that means "off".
fn refuse_unimplemented(v: &Value) -> Check<()> {
    for k in ["presence_penalty", "frequency_penalty"] {
        if number(v, k, -2.0, 2.0, 0.0)? != 0.0 {
            return Err(format!("`{k}` is not supported by didact serve; send 0"));
        }
    }
    match &v["logit_bias"] {
        Value::Null => {}
        Value::Object(o) if o.is_empty() => {}
        _ => return Err("`logit_bias` is not supported by didact serve".into()),
    }
    if boolean(v, "echo")? {
        return Err("`echo` is not supported by didact serve".into());
    }
    if !v["suffix"].is_null() {
        return Err("`suffix` is not supported by didact serve".into());
    }
    Ok(())
}

fn stops(v: &Value) -> Check<Vec<String>> {
    let list = match &v["stop"] {
        Value::Null => vec![],
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or("`stop` must be a string or a list of strings")?,
        _ => return Err("`stop` must be a string or a list of strings".into()),
    };
    if list.len() > MAX_STOPS || list.iter().any(String::is_empty) {
        return Err(format!(
            "`stop` takes at most {MAX_STOPS} non-empty strings"
        ));
    }
    Ok(list)
}

/// The prompts of a completions request: a string, a list of strings, a list of token ids or
/// a list of such lists.
fn completion_prompts(m: &Model, v: &Value) -> Check<Vec<Vec<u32>>> {
    let shape = "`prompt` must be a string, a list of strings, a list of token ids or a list of lists of token ids";
    let ids = |a: &[Value]| -> Check<Vec<u32>> {
        a.iter()
            .map(|x| {
                x.as_u64()
                    .filter(|&t| t < m.ck.vocab_size as u64)
                    .map(|t| t as u32)
                    .ok_or_else(|| {
                        format!(
                            "token id {x} in `prompt` is outside the vocabulary (0..{})",
                            m.ck.vocab_size
                        )
                    })
            })
            .collect()
    };
    let text = |s: &str| m.ck.tokenizer.encode(s).map_err(|e| e.to_string());
    match &v["prompt"] {
        Value::String(s) => Ok(vec![text(s)?]),
        Value::Array(a) if a.is_empty() => Err("`prompt` is an empty list".into()),
        Value::Array(a) if a[0].is_number() => Ok(vec![ids(a)?]),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .map(|p| text(p.as_str().unwrap_or_default()))
            .collect(),
        Value::Array(a) if a.iter().all(Value::is_array) => a
            .iter()
            .map(|p| ids(p.as_array().map_or(&[][..], Vec::as_slice)))
            .collect(),
        _ => Err(shape.into()),
    }
}

fn chat_prompt(m: &Model, v: &Value) -> Check<Vec<u32>> {
    let msgs = didact_data::chat::parse_messages(&v["messages"])?;
    let text = match &m.chat {
        Some(t) => t.render(&msgs, true)?,
        None => {
            let mut s: String = msgs
                .iter()
                .map(|x| format!("{}: {}\n", x.role, x.content))
                .collect();
            s.push_str("assistant: ");
            s
        }
    };
    m.ck.tokenizer.encode(&text).map_err(|e| e.to_string())
}

/// `Some(k)` when log-probabilities are asked for.
fn logprobs(v: &Value, chat: bool) -> Check<Option<usize>> {
    let top = MAX_TOP_LOGPROBS as i64;
    if !chat {
        return Ok(match v["logprobs"] {
            Value::Null => None,
            _ => Some(integer(v, "logprobs", 0, top, 0)? as usize),
        });
    }
    let on = boolean(v, "logprobs")?;
    let k = integer(v, "top_logprobs", 0, top, 0)? as usize;
    if !on && !v["top_logprobs"].is_null() {
        return Err("`top_logprobs` needs `logprobs: true`".into());
    }
    Ok(on.then_some(k))
}

fn include_usage(v: &Value, stream: bool) -> Check<bool> {
    match &v["stream_options"] {
        Value::Null => Ok(false),
        Value::Object(o) if stream => {
            if let Some(k) = o.keys().find(|k| *k != "include_usage") {
                return Err(format!("`stream_options.{k}` is not supported"));
            }
            boolean(&v["stream_options"], "include_usage")
        }
        Value::Object(_) => Err("`stream_options` needs `stream: true`".into()),
        _ => Err("`stream_options` must be an object".into()),
    }
}

/// Read and check a request body.
pub fn parse(m: &Model, body: &str, chat: bool) -> Check<Ask> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let fields = v.as_object().ok_or("the body must be a JSON object")?;
    let own = if chat { CHAT } else { COMPLETIONS };
    if let Some(k) = fields
        .keys()
        .find(|k| !COMMON.contains(&k.as_str()) && !own.contains(&k.as_str()))
    {
        return Err(format!("unknown or unsupported field `{k}`"));
    }
    refuse_unimplemented(&v)?;
    let prompts = if chat {
        vec![chat_prompt(m, &v)?]
    } else {
        completion_prompts(m, &v)?
    };
    let ctx = m.ck.max_seq_len;
    for p in &prompts {
        if p.is_empty() {
            return Err("a prompt encodes to no tokens".into());
        }
        if p.len() >= ctx {
            return Err(format!(
                "a prompt has {} tokens; the model's context is {ctx}",
                p.len()
            ));
        }
    }
    let n = integer(&v, "n", 1, MAX_CHOICES as i64, 1)? as usize;
    let best_of = integer(&v, "best_of", 1, MAX_CHOICES as i64, n as i64)?;
    if best_of != n as i64 {
        return Err("`best_of` other than `n` is not supported by didact serve".into());
    }
    if prompts.len() * n > MAX_CHOICES {
        return Err(format!(
            "{} prompts × n = {n} asks for more than {MAX_CHOICES} completions",
            prompts.len()
        ));
    }
    let max_key = if chat && !v["max_completion_tokens"].is_null() {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let max_tokens = integer(&v, max_key, 1, ctx as i64, 16)? as usize;
    let top_k = integer(&v, "top_k", -1, m.ck.vocab_size as i64, -1)?;
    let params = SamplingParams {
        temperature: number(&v, "temperature", 0.0, 2.0, 1.0)? as f32,
        top_k: top_k.max(0) as usize,
        top_p: number(&v, "top_p", 0.0, 1.0, 1.0)? as f32,
        max_new_tokens: max_tokens,
        stop_token: Some(m.ck.tokenizer.eos_id),
    };
    params.check(m.ck.vocab_size).map_err(|e| e.to_string())?;
    let seed = match &v["seed"] {
        Value::Null => 0,
        x => x
            .as_u64()
            .ok_or_else(|| format!("`seed` must be an integer >= 0, got {x}"))?,
    };
    let stream = boolean(&v, "stream")?;
    Ok(Ask {
        chat,
        prompts,
        n,
        params,
        seed,
        stops: stops(&v)?,
        stream,
        include_usage: include_usage(&v, stream)?,
        logprobs: logprobs(&v, chat)?,
        token_ids: boolean(&v, "return_tokens_as_token_ids")?,
    })
}
