//! didact-serve: a checkpoint (didact round, Llama, Qwen2, GPT-2) behind the OpenAI-compatible
//! HTTP API — `POST /v1/completions`, `POST /v1/chat/completions` (messages rendered with the
//! checkpoint's own `chat_template`, else `role: content` lines), `GET /v1/models`. A request's
//! `seed` seeds its sampling, so the same request always gets the same completion.
//! `Limits::workers` threads answer requests at once (the model is shared), so a client that
//! stalls mid-request holds one worker, not the server; bodies over `max_body_bytes` get 413
//! unread. Fields it does not implement (`n` > 1, `stream`, `logprobs`, prompt lists) and
//! values outside the OpenAI API's ranges are a 400 with a message, never silently ignored.
//!
//! Fault injection for testing clients: every `every`-th request gets the next fault of the
//! plan in turn — an HTTP status (`500`, `429`, `503`…), `drop` (the connection is closed
//! without a response) or `slow` (the answer comes after `slow_ms`).

use didact_model::burn::tensor::Device;
use didact_model::{AnyCheckpoint, SamplingParams, generate_batch};
use std::path::Path;
use std::time::Duration;
use tiny_http::{Header, Method, Response, Server};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Model(#[from] didact_model::ModelError),
    #[error("{addr}: {msg}")]
    Bind { addr: String, msg: String },
    #[error("--faults: `{0}` is not a fault (an HTTP status like 500 or 429, `drop` or `slow`)")]
    BadFault(String),
    #[error("{0}: {1}")]
    Template(String, String),
}

pub type Result<T> = std::result::Result<T, ServeError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    Drop,
    Slow,
}

/// Which requests fail and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Every `every`-th request (1-based count) is faulted; 0 = never.
    pub every: usize,
    pub faults: Vec<Fault>,
    pub slow_ms: u64,
}

impl FaultPlan {
    /// `"500,429,drop,slow"` → the faults in turn.
    pub fn parse(every: usize, list: &str, slow_ms: u64) -> Result<Self> {
        let faults = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "drop" => Ok(Fault::Drop),
                "slow" => Ok(Fault::Slow),
                _ => s
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (400..600).contains(c))
                    .map(Fault::Status)
                    .ok_or_else(|| ServeError::BadFault(s.to_string())),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FaultPlan {
            every: if faults.is_empty() { 0 } else { every },
            faults,
            slow_ms,
        })
    }

    /// The fault of request number `k` (1-based), if any.
    pub fn fault(&self, k: usize) -> Option<Fault> {
        if self.every == 0 || !k.is_multiple_of(self.every) {
            return None;
        }
        Some(self.faults[(k / self.every - 1) % self.faults.len()])
    }
}

/// A loaded model ready to answer.
pub struct Model {
    pub ck: AnyCheckpoint,
    pub name: String,
    pub chat: Option<didact_data::chat::ChatTemplate>,
    pub device: Device,
}

impl Model {
    pub fn load(dir: &Path, device: &Device) -> Result<Model> {
        let ck = didact_model::any::load(dir, device)?;
        let chat = didact_data::chat::ChatTemplate::from_dir(dir)
            .map_err(|e| ServeError::Template(dir.display().to_string(), e))?;
        Ok(Model {
            ck,
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "didact".into()),
            chat,
            device: device.clone(),
        })
    }
}

fn f64_field(v: &serde_json::Value, k: &str, default: f64) -> f64 {
    v[k].as_f64().unwrap_or(default)
}

/// The prompt text of a request body.
fn prompt_of(m: &Model, v: &serde_json::Value, chat: bool) -> std::result::Result<String, String> {
    if !chat {
        return v["prompt"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| "`prompt` must be a string".into());
    }
    let msgs = didact_data::chat::parse_messages(&v["messages"])?;
    match &m.chat {
        Some(t) => t.render(&msgs, true),
        None => {
            let mut s: String = msgs
                .iter()
                .map(|x| format!("{}: {}\n", x.role, x.content))
                .collect();
            s.push_str("assistant: ");
            Ok(s)
        }
    }
}

/// Request fields this server does not implement, refused with a 400 rather than silently
/// ignored: `n` > 1, `stream`, `logprobs` / `top_logprobs`, a list of prompts.
fn unsupported(v: &serde_json::Value) -> std::result::Result<(), String> {
    if v["n"].as_u64().is_some_and(|n| n != 1) || v["n"].as_i64().is_some_and(|n| n < 1) {
        return Err("`n` must be 1 here (one completion per request)".into());
    }
    if v["stream"].as_bool() == Some(true) {
        return Err("`stream` is not supported by didact serve; send stream=false".into());
    }
    let asks_logprobs = match &v["logprobs"] {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(_) => true,
        _ => false,
    };
    if asks_logprobs || !v["top_logprobs"].is_null() {
        return Err("`logprobs` / `top_logprobs` are not supported by didact serve".into());
    }
    if v["prompt"].is_array() {
        return Err("a list of prompts is not supported; send one prompt per request".into());
    }
    Ok(())
}

/// Answer one completion request body: `(status, JSON)`.
pub fn complete(m: &Model, body: &str, chat: bool) -> (u16, serde_json::Value) {
    let bad = |msg: String| {
        (
            400,
            serde_json::json!({"error": {"message": msg, "type": "invalid_request_error"}}),
        )
    };
    let v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON: {e}")),
    };
    if let Err(e) = unsupported(&v) {
        return bad(e);
    }
    let prompt = match prompt_of(m, &v, chat) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let tok = &m.ck.tokenizer;
    let ids = match tok.encode(&prompt) {
        Ok(ids) if !ids.is_empty() => ids,
        Ok(_) => return bad("the prompt encodes to no tokens".into()),
        Err(e) => return bad(e.to_string()),
    };
    let max_tokens = v["max_tokens"].as_u64().unwrap_or(16) as usize;
    if ids.len() >= m.ck.max_seq_len {
        return bad(format!(
            "the prompt has {} tokens; the model's context is {}",
            ids.len(),
            m.ck.max_seq_len
        ));
    }
    let params = SamplingParams {
        temperature: f64_field(&v, "temperature", 1.0) as f32,
        top_k: 0,
        top_p: f64_field(&v, "top_p", 1.0) as f32,
        max_new_tokens: max_tokens,
        stop_token: Some(tok.eos_id),
    };
    if params.temperature > 2.0 || max_tokens == 0 {
        return bad(
            "temperature must be in [0, 2] and max_tokens >= 1 (the OpenAI API's ranges)".into(),
        );
    }
    if let Err(e) = params.check(m.ck.vocab_size) {
        return bad(e.to_string());
    }
    let seed = v["seed"].as_u64().unwrap_or(0);
    let g = match generate_batch(
        &m.ck.model,
        m.ck.max_seq_len,
        std::slice::from_ref(&ids),
        &[seed],
        &params,
        tok.pad_id,
        &m.device,
    ) {
        Ok(mut g) => g.remove(0),
        Err(e) => {
            return (
                500,
                serde_json::json!({"error": {"message": e.to_string()}}),
            );
        }
    };
    let mut text = tok.decode(&g.tokens).unwrap_or_default();
    let mut stopped = g.stopped;
    let stops: Vec<String> = match &v["stop"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    };
    if let Some(cut) = stops.iter().filter_map(|s| text.find(s.as_str())).min() {
        text.truncate(cut);
        stopped = true;
    }
    let finish = if stopped { "stop" } else { "length" };
    let choice = if chat {
        serde_json::json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
    } else {
        serde_json::json!({"index": 0, "text": text, "finish_reason": finish})
    };
    (
        200,
        serde_json::json!({
            "object": if chat { "chat.completion" } else { "text_completion" },
            "model": m.name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": ids.len(),
                "completion_tokens": g.tokens.len(),
                "total_tokens": ids.len() + g.tokens.len(),
            },
        }),
    )
}

fn json_response(status: u16, v: &serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(v.to_string())
        .with_status_code(status)
        .with_header(Header::from_bytes("Content-Type", "application/json").expect("header"))
}

/// Bind `addr` (port 0 = any free port); returns the server and the address it listens on.
pub fn bind(addr: &str) -> Result<(Server, String)> {
    let server = Server::http(addr).map_err(|e| ServeError::Bind {
        addr: addr.to_string(),
        msg: e.to_string(),
    })?;
    let local = server.server_addr().to_string();
    Ok((server, local))
}

/// How much the server takes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests handled at once (one thread each): a client that stalls mid-request holds
    /// one worker, not the server.
    pub workers: usize,
    /// Largest request body; beyond it the answer is 413 and the body is not read.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            workers: 4,
            max_body_bytes: 8 << 20,
        }
    }
}

/// Answer requests with `limits.workers` threads until the server is unblocked (or forever).
pub fn run(server: &Server, m: &Model, faults: &FaultPlan, limits: &Limits) {
    let count = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..limits.workers.max(1) {
            scope.spawn(|| {
                while let Ok(req) = server.recv() {
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    handle(req, m, faults, limits, n);
                }
            });
        }
    });
}

/// Answer one request (the `n`-th: the fault plan counts them).
fn handle(mut req: tiny_http::Request, m: &Model, faults: &FaultPlan, limits: &Limits, n: usize) {
    match faults.fault(n) {
        Some(Fault::Drop) => {
            // Close the connection without a response.
            drop(req.into_writer());
            return;
        }
        Some(Fault::Status(code)) => {
            let body = serde_json::json!({"error": {"message": format!("injected fault {code}")}});
            let _ = req.respond(json_response(code, &body));
            return;
        }
        Some(Fault::Slow) => std::thread::sleep(Duration::from_millis(faults.slow_ms)),
        None => {}
    }
    let too_large = || {
        let msg = format!(
            "the request body is larger than {} bytes",
            limits.max_body_bytes
        );
        json_response(413, &serde_json::json!({"error": {"message": msg}}))
    };
    if req.body_length().is_some_and(|n| n > limits.max_body_bytes) {
        let _ = req.respond(too_large());
        return;
    }
    let mut body = String::new();
    let limit = limits.max_body_bytes as u64 + 1;
    let _ =
        std::io::Read::read_to_string(&mut std::io::Read::take(req.as_reader(), limit), &mut body);
    if body.len() > limits.max_body_bytes {
        let _ = req.respond(too_large());
        return;
    }
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let (status, v) = match (req.method(), path.as_str()) {
        (Method::Post, "/v1/completions") => complete(m, &body, false),
        (Method::Post, "/v1/chat/completions") => complete(m, &body, true),
        (Method::Get, "/v1/models") => (
            200,
            serde_json::json!({"object": "list", "data": [{"id": m.name, "object": "model"}]}),
        ),
        (_, "/v1/completions" | "/v1/chat/completions" | "/v1/models") => (
            405,
            serde_json::json!({"error": {"message": format!("{} is not allowed on {path}", req.method())}}),
        ),
        _ => (
            404,
            serde_json::json!({"error": {"message": format!("no route {path}")}}),
        ),
    };
    let _ = req.respond(json_response(status, &v));
}
