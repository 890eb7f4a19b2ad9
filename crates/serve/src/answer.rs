//! Answering a checked request: the completions of every prompt (its `n` samples in one
//! batch, seeds `seed + k`), rendered as the OpenAI API's JSON body, or streamed as
//! server-sent events the way the OpenAI API and vLLM send them (`data: {chunk}` per piece of
//! text, a last chunk per choice with its `finish_reason`, an optional usage chunk, then
//! `data: [DONE]`). Log-probabilities in the completions shape (`tokens`, `token_logprobs`,
//! `top_logprobs`, `text_offset`) or the chat shape (`content: [{token, logprob, bytes,
//! top_logprobs}]`).

use crate::Model;
use crate::ask::Ask;
use crate::choice::{Choice, TokenLogprob};
use serde_json::{Value, json};
use std::io::Write;

/// Names a response: its id and creation time.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub id: String,
    pub created: u64,
}

impl Stamp {
    pub fn new(n: usize) -> Stamp {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Stamp {
            id: format!("cmpl-{created:x}-{n}"),
            created,
        }
    }
}

/// Called with each choice's new text and log-probabilities as they come (`done` on its
/// last call); `false` aborts (the client has gone).
type OnPiece<'a> = dyn FnMut(&Choice, String, Vec<TokenLogprob>, Option<&'static str>) -> bool + 'a;

/// Generate every choice of `ask`.
fn generate(m: &Model, ask: &Ask, on_piece: &mut OnPiece) -> Result<Vec<Choice>, String> {
    let tok = &m.ck.tokenizer;
    let mut all = Vec::with_capacity(ask.prompts.len() * ask.n);
    for (p, ids) in ask.prompts.iter().enumerate() {
        let mut choices: Vec<Choice> = (0..ask.n).map(|k| Choice::new(p * ask.n + k)).collect();
        let seeds: Vec<u64> = (0..ask.n as u64)
            .map(|k| ask.seed.wrapping_add(k))
            .collect();
        let prompts = vec![ids.clone(); ask.n];
        let mut gone = false;
        let mut observe = |row: usize, t: u32, logits: &[f32]| {
            let c = &mut choices[row];
            let go = c.push(tok, t, logits, ask.logprobs, &ask.stops);
            if ask.stream && go && !gone {
                let (text, lps) = c.take(&ask.stops, false);
                if !(text.is_empty() && lps.is_empty()) {
                    gone = !on_piece(c, text, lps, None);
                }
            }
            go && !gone
        };
        let gens = didact_model::generate_batch_observed(
            &m.ck.model,
            m.ck.max_seq_len,
            &prompts,
            &seeds,
            &ask.params,
            tok.pad_id,
            &m.device,
            &mut observe,
        )
        .map_err(|e| e.to_string())?;
        if gone {
            return Err("the client went away".into());
        }
        for (mut c, g) in choices.into_iter().zip(gens) {
            let reason = c.end(g.stopped);
            let (text, lps) = c.take(&ask.stops, true);
            if !on_piece(&c, text, lps, Some(reason)) {
                return Err("the client went away".into());
            }
            all.push(c);
        }
    }
    Ok(all)
}

fn token_text(m: &Model, ask: &Ask, t: u32) -> String {
    if ask.token_ids {
        return format!("token_id:{t}");
    }
    m.ck.tokenizer.decode(&[t]).unwrap_or_default()
}

/// Log-probabilities in the shape of the endpoint (`None` when not asked for).
fn logprobs_json(m: &Model, ask: &Ask, lps: &[TokenLogprob]) -> Value {
    if ask.logprobs.is_none() {
        return Value::Null;
    }
    if ask.chat {
        let entry = |t: u32, lp: f32| {
            let s = token_text(m, ask, t);
            json!({"token": s, "logprob": lp, "bytes": s.as_bytes()})
        };
        let content: Vec<Value> = lps
            .iter()
            .map(|l| {
                let mut e = entry(l.token, l.logprob);
                e["top_logprobs"] = l.top.iter().map(|&(t, lp)| entry(t, lp)).collect();
                e
            })
            .collect();
        return json!({ "content": content });
    }
    let top: Vec<Value> = lps
        .iter()
        .map(|l| {
            let mut d = serde_json::Map::new();
            for &(t, lp) in l.top.iter().chain(std::iter::once(&(l.token, l.logprob))) {
                d.entry(token_text(m, ask, t)).or_insert(json!(lp));
            }
            Value::Object(d)
        })
        .collect();
    json!({
        "tokens": lps.iter().map(|l| token_text(m, ask, l.token)).collect::<Vec<_>>(),
        "token_logprobs": lps.iter().map(|l| l.logprob).collect::<Vec<_>>(),
        "top_logprobs": top,
        "text_offset": lps.iter().map(|l| l.offset).collect::<Vec<_>>(),
    })
}

fn usage(ask: &Ask, choices: &[Choice]) -> Value {
    let prompt: usize = ask.prompts.iter().map(Vec::len).sum();
    let completion: usize = choices.iter().map(|c| c.tokens.len()).sum();
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// The whole answer as one JSON body.
pub fn body(m: &Model, ask: &Ask, stamp: &Stamp) -> Result<Value, String> {
    let mut collect = |_: &Choice, _: String, _: Vec<TokenLogprob>, _: Option<&'static str>| true;
    let choices = generate(m, ask, &mut collect)?;
    let rendered: Vec<Value> = choices
        .iter()
        .map(|c| {
            let reason = c.finish;
            let lps = logprobs_json(m, ask, &c.logprobs);
            if ask.chat {
                json!({"index": c.index, "message": {"role": "assistant", "content": c.text}, "logprobs": lps, "finish_reason": reason})
            } else {
                json!({"index": c.index, "text": c.text, "logprobs": lps, "finish_reason": reason})
            }
        })
        .collect();
    Ok(json!({
        "id": stamp.id,
        "object": if ask.chat { "chat.completion" } else { "text_completion" },
        "created": stamp.created,
        "model": m.name,
        "choices": rendered,
        "usage": usage(ask, &choices),
    }))
}

fn event(w: &mut dyn Write, v: &Value) -> std::io::Result<()> {
    write!(w, "data: {v}\n\n")?;
    w.flush()
}

/// Stream the answer to `w` as server-sent events (after the HTTP head, which the caller
/// writes). An error is sent as an `error` event.
pub fn stream(m: &Model, ask: &Ask, stamp: &Stamp, w: &mut dyn Write) -> std::io::Result<()> {
    let object = if ask.chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = |choices: Value| json!({"id": stamp.id, "object": object, "created": stamp.created, "model": m.name, "choices": choices});
    if ask.chat {
        for i in 0..ask.prompts.len() * ask.n {
            let first = json!([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]);
            event(w, &chunk(first))?;
        }
    }
    let mut failed = None;
    let mut send =
        |c: &Choice, text: String, lps: Vec<TokenLogprob>, reason: Option<&'static str>| {
            let lps = logprobs_json(m, ask, &lps);
            let choice = if ask.chat {
                let delta = if text.is_empty() && reason.is_some() {
                    json!({})
                } else {
                    json!({ "content": text })
                };
                json!({"index": c.index, "delta": delta, "logprobs": lps, "finish_reason": reason})
            } else {
                json!({"index": c.index, "text": text, "logprobs": lps, "finish_reason": reason})
            };
            match event(w, &chunk(json!([choice]))) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        };
    let result = generate(m, ask, &mut send);
    if let Some(e) = failed {
        return Err(e);
    }
    match result {
        Ok(choices) if ask.include_usage => {
            let mut last = chunk(json!([]));
            last["usage"] = usage(ask, &choices);
            event(w, &last)?;
        }
        Ok(_) => {}
        Err(e) => event(w, &json!({"error": {"message": e}}))?,
    }
    write!(w, "data: [DONE]\n\n")?;
    w.flush()
}
