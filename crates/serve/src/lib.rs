//! didact-serve: a checkpoint (didact round, Llama, Qwen2, GPT-2) behind the OpenAI-compatible
//! HTTP API — `POST /v1/completions`, `POST /v1/chat/completions` (messages rendered with the
//! checkpoint's own `chat_template`, else `role: content` lines), `GET /v1/models`. A request's
//! `seed` seeds its sampling, so the same request always gets the same completion.
//! `stream: true` answers with server-sent events; `logprobs`, `n` and lists of prompts are
//! honoured (module `ask` lists every field). Connections are async (a stalled client holds
//! no thread: headers and body must arrive within `Limits::read_timeout`, else the connection
//! is closed or answered 408); generation is CPU-bound, so at most `Limits::workers`
//! requests generate at once on blocking threads sharing the model. Bodies over
//! `max_body_bytes` get 413 unread. Values outside
//! the OpenAI API's ranges and unknown fields are a 400 with a JSON message. The HTTP side
//! (module `http`) is hyper on tokio.
//!
//! Fault injection for testing clients: every `every`-th request gets the next fault of the
//! plan in turn — an HTTP status (`500`, `429`, `503`…), `drop` (the connection is closed
//! without a response) or `slow` (the answer comes after `slow_ms`).

pub mod answer;
pub mod ask;
pub mod choice;

pub mod http;

pub use http::{Listener, bind, run};

use didact_model::AnyCheckpoint;
use didact_model::burn::tensor::Device;
use std::path::Path;
use std::time::Duration;

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
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
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
        Self::load_with_adapter(dir, None, device)
    }

    /// `load`, with a PEFT LoRA adapter merged in; the served model is then named after the
    /// adapter's directory (as vLLM names a LoRA module).
    pub fn load_with_adapter(dir: &Path, adapter: Option<&Path>, device: &Device) -> Result<Model> {
        let ck = didact_model::any::load_with_adapter(dir, adapter, device)?;
        let named = adapter.unwrap_or(dir);
        let chat = didact_data::chat::ChatTemplate::from_dir(dir)
            .map_err(|e| ServeError::Template(dir.display().to_string(), e))?;
        Ok(Model {
            ck,
            name: named
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "didact".into()),
            chat,
            device: device.clone(),
        })
    }
}

/// Answer one non-streaming completion request body: `(status, JSON)`.
pub fn complete(m: &Model, body: &str, chat: bool) -> (u16, serde_json::Value) {
    let ask = match ask::parse(m, body, chat) {
        Ok(a) => a,
        Err(msg) => return (400, error_json(&msg, "invalid_request_error")),
    };
    match answer::body(m, &ask, &answer::Stamp::new(0)) {
        Ok(v) => (200, v),
        Err(msg) => (500, error_json(&msg, "server_error")),
    }
}

fn error_json(msg: &str, kind: &str) -> serde_json::Value {
    serde_json::json!({"error": {"message": msg, "type": kind}})
}

/// How much the server takes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests generating at once (one blocking thread each, sharing the model).
    pub workers: usize,
    /// Largest request body; beyond it the answer is 413 and the body is not read.
    pub max_body_bytes: usize,
    /// Time the headers, and then the body, of a request may take to arrive (closed / 408
    /// beyond it); also how long a streamed answer waits for a client that stopped reading.
    pub read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            workers: 8,
            max_body_bytes: 8 << 20,
            read_timeout: Duration::from_secs(10),
        }
    }
}
