//! didact-endpoint: a client for OpenAI-compatible servers (vLLM, SGLang, TGI, llama.cpp,
//! Ollama, `didact serve`): `/v1/completions` or `/v1/chat/completions`, a bounded number of
//! requests in flight, a timeout per request, retries with exponential backoff and jitter on
//! 429, 5xx, timeouts and dropped connections (other 4xx fail at once), and an on-disk cache
//! keyed by (model, endpoint kind, prompt, parameters, seed) so a resumed run never pays twice.
//! The API key is read from the environment variable the caller names; it is sent as a Bearer
//! header and never printed or written. No burn, no polars.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{url}: request {index} failed after {attempts} attempts; last error: {last}")]
    Exhausted {
        url: String,
        index: usize,
        attempts: u32,
        last: String,
    },
    #[error("{url}: HTTP {status} (not retried): {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("environment variable `{0}` (generate.api_key_env) is not set")]
    MissingKey(String),
    #[error("{path}: {msg}")]
    Cache { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, EndpointError>;

/// Where and how to call.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The `model` field of every request.
    pub model: String,
    /// Name of the environment variable holding the API key; empty = no key.
    pub api_key_env: String,
    /// `/chat/completions` (the prompt is one user message) instead of `/completions`.
    pub chat: bool,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Per request (connect, send, whole response).
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff before retry k (1-based): `backoff · 2^(k−1) · (1 + jitter)`, jitter in [0, 1).
    pub backoff: Duration,
    /// Request cache directory; `None` = no cache.
    pub cache_dir: Option<PathBuf>,
}

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub prompt: String,
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    /// Stop strings (may be empty).
    pub stop: Vec<String>,
    /// Ask for the `top_logprobs` most likely tokens at every generated position (0 = none;
    /// the API allows up to 20). Not part of the cache key when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub top_logprobs: usize,
}

fn is_zero(k: &usize) -> bool {
    *k == 0
}

/// One generated token as the server reports it: the token and its most likely alternatives
/// (token, log-probability), as the server spells tokens (vLLM's `token_id:N` or text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprobs {
    pub token: String,
    pub top: Vec<(String, f64)>,
}

/// One generation result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    /// `stop` (a stop token or string ended it) or `length`.
    pub finish_reason: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Per generated token, when the request asked for `top_logprobs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprobs>,
}

/// What a batch of requests cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// HTTP attempts made (first tries and retries; cache hits excluded).
    pub requests: usize,
    /// Attempts that failed (error status, timeout, dropped connection, unreadable body).
    pub failures: usize,
    pub retries: usize,
    pub cache_hits: usize,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub seconds: f64,
}

impl Stats {
    /// As metrics named `{prefix}/requests`, …, `{prefix}/requests_per_s`.
    pub fn metrics(&self, prefix: &str) -> Vec<(String, f64)> {
        let per_s = if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        };
        [
            ("requests", self.requests as f64),
            ("failures", self.failures as f64),
            ("retries", self.retries as f64),
            ("cache_hits", self.cache_hits as f64),
            ("tokens_in", self.tokens_in as f64),
            ("tokens_out", self.tokens_out as f64),
            ("requests_per_s", per_s),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{prefix}/{k}"), v))
        .collect()
    }
}

/// The request body for the chosen endpoint kind.
fn body(cfg: &EndpointConfig, r: &Request) -> serde_json::Value {
    let mut v = serde_json::json!({
        "model": cfg.model,
        "max_tokens": r.max_tokens,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "seed": r.seed,
        "n": 1,
    });
    if cfg.chat {
        v["messages"] = serde_json::json!([{"role": "user", "content": r.prompt}]);
    } else {
        v["prompt"] = serde_json::json!(r.prompt);
    }
    if !r.stop.is_empty() {
        v["stop"] = serde_json::json!(r.stop);
    }
    if r.top_logprobs > 0 {
        if cfg.chat {
            v["logprobs"] = serde_json::json!(true);
            v["top_logprobs"] = serde_json::json!(r.top_logprobs);
        } else {
            v["logprobs"] = serde_json::json!(r.top_logprobs);
        }
    }
    v
}

/// The per-token log-probs of a choice: completions (`logprobs.tokens` and
/// `logprobs.top_logprobs`, one `{token: logprob}` object per token) or chat
/// (`logprobs.content[i].token` and `.top_logprobs[j].{token, logprob}`).
fn parse_logprobs(
    chat: bool,
    choice: &serde_json::Value,
) -> std::result::Result<Vec<TokenLogprobs>, String> {
    let lp = &choice["logprobs"];
    if lp.is_null() {
        return Ok(vec![]);
    }
    let bad = |what: &str| format!("logprobs in the response: {what}");
    if chat {
        let content = lp["content"]
            .as_array()
            .ok_or_else(|| bad("no content list"))?;
        content
            .iter()
            .map(|t| {
                let token = t["token"]
                    .as_str()
                    .ok_or_else(|| bad("a token is not a string"))?;
                let top = t["top_logprobs"]
                    .as_array()
                    .map(|alts| {
                        alts.iter()
                            .filter_map(|a| {
                                Some((a["token"].as_str()?.to_string(), a["logprob"].as_f64()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(TokenLogprobs {
                    token: token.to_string(),
                    top,
                })
            })
            .collect()
    } else {
        let tokens = lp["tokens"]
            .as_array()
            .ok_or_else(|| bad("no tokens list"))?;
        let tops = lp["top_logprobs"].as_array();
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let token = t.as_str().ok_or_else(|| bad("a token is not a string"))?;
                let top = tops
                    .and_then(|v| v.get(i))
                    .and_then(|o| o.as_object())
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(TokenLogprobs {
                    token: token.to_string(),
                    top,
                })
            })
            .collect()
    }
}

/// Cache key: SHA-256 of (model, endpoint kind, prompt, parameters, seed).
pub fn cache_key(cfg: &EndpointConfig, r: &Request) -> String {
    let key = serde_json::json!({"model": cfg.model, "chat": cfg.chat, "request": r});
    let digest = Sha256::digest(key.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn cache_path(cfg: &EndpointConfig, r: &Request) -> Option<PathBuf> {
    let key = cache_key(cfg, r);
    cfg.cache_dir
        .as_ref()
        .map(|d| d.join(&key[..2]).join(format!("{key}.json")))
}

fn read_cache(cfg: &EndpointConfig, r: &Request) -> Option<Completion> {
    let p = cache_path(cfg, r)?;
    let text = std::fs::read_to_string(p).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_cache(cfg: &EndpointConfig, r: &Request, c: &Completion) -> Result<()> {
    let Some(p) = cache_path(cfg, r) else {
        return Ok(());
    };
    let fail = |e: std::io::Error| EndpointError::Cache {
        path: p.clone(),
        msg: e.to_string(),
    };
    std::fs::create_dir_all(p.parent().expect("has a parent")).map_err(fail)?;
    let text = serde_json::to_string(c).expect("json");
    didact_core::write_atomic(&p, text.as_bytes()).map_err(fail)
}

/// Read the generated text, finish reason and token usage of a response.
fn parse(chat: bool, text: &str, want_logprobs: bool) -> std::result::Result<Completion, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let choice = &v["choices"][0];
    let content = if chat {
        &choice["message"]["content"]
    } else {
        &choice["text"]
    };
    let text = content
        .as_str()
        .ok_or_else(|| "no choices[0] text in the response".to_string())?;
    Ok(Completion {
        text: text.to_string(),
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("length")
            .to_string(),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        logprobs: match parse_logprobs(chat, choice)? {
            lp if want_logprobs && lp.is_empty() && !text.is_empty() => {
                return Err(
                    "the response has no logprobs although top_logprobs was asked for (does the server return logprobs?)".into(),
                );
            }
            lp => lp,
        },
    })
}

enum Attempt {
    Done(Completion),
    Retry(String),
    Fatal(u16, String),
}

/// Text a server sent back (or an error about it) with every secret removed: a server may echo
/// the request's headers. Removes the key's own value, anything after `Bearer `, and
/// `sk-…`-style tokens (OpenAI, Anthropic, and most proxies' key format). Every message this
/// crate builds from a response passes through here before it can be printed or written.
pub fn redact(text: &str, key: &str) -> String {
    let mut out = if key.len() >= 4 {
        text.replace(key, "[redacted]")
    } else {
        text.to_string()
    };
    for marker in ["Bearer ", "bearer ", "sk-"] {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(marker) {
            let keep = if marker == "sk-" { "" } else { marker };
            result.push_str(&rest[..i]);
            result.push_str(keep);
            let after = &rest[i + marker.len()..];
            let end = after
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']' | ';')
                })
                .unwrap_or(after.len());
            if end > 0 {
                result.push_str("[redacted]");
            }
            rest = &after[end..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

fn attempt(
    agent: &ureq::Agent,
    cfg: &EndpointConfig,
    url: &str,
    key: &str,
    r: &Request,
) -> Attempt {
    let mut req = agent.post(url).header("Content-Type", "application/json");
    if !key.is_empty() {
        req = req.header("Authorization", &format!("Bearer {key}"));
    }
    let mut resp = match req.send_json(body(cfg, r)) {
        Ok(resp) => resp,
        Err(e) => return Attempt::Retry(redact(&e.to_string(), key)),
    };
    let status = resp.status().as_u16();
    let text = match resp.body_mut().read_to_string() {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("HTTP {status}, body unreadable: {e}");
            return Attempt::Retry(redact(&msg, key));
        }
    };
    match status {
        200..=299 => match parse(cfg.chat, &text, r.top_logprobs > 0) {
            Ok(c) => Attempt::Done(c),
            Err(e) => Attempt::Retry(redact(&e, key)),
        },
        429 | 500..=599 => Attempt::Retry(format!("HTTP {status}")),
        _ => Attempt::Fatal(status, redact(&text, key).chars().take(300).collect()),
    }
}

/// Run every request (cached ones are read back, not sent); results in request order.
/// `on_done(n)` reports progress.
pub fn complete_all(
    cfg: &EndpointConfig,
    requests: &[Request],
    on_done: impl Fn(usize) + Sync,
) -> Result<(Vec<Completion>, Stats)> {
    let key = if cfg.api_key_env.is_empty() {
        String::new()
    } else {
        std::env::var(&cfg.api_key_env)
            .map_err(|_| EndpointError::MissingKey(cfg.api_key_env.clone()))?
    };
    let url = format!(
        "{}/{}",
        cfg.base_url.trim_end_matches('/'),
        if cfg.chat {
            "chat/completions"
        } else {
            "completions"
        }
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let start = Instant::now();
    let stats = Mutex::new(Stats::default());
    let results: Mutex<Vec<Option<Completion>>> = Mutex::new(vec![None; requests.len()]);
    let error: Mutex<Option<EndpointError>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let run_one = |i: usize| -> Result<Completion> {
        let r = &requests[i];
        if let Some(c) = read_cache(cfg, r) {
            stats.lock().expect("stats").cache_hits += 1;
            return Ok(c);
        }
        let mut last = String::new();
        for k in 0..=cfg.max_retries {
            if k > 0 {
                let jitter: f64 = rand::rng().random();
                let wait = cfg
                    .backoff
                    .mul_f64(2f64.powi(k as i32 - 1) * (1.0 + jitter));
                std::thread::sleep(wait.min(Duration::from_secs(60)));
                stats.lock().expect("stats").retries += 1;
            }
            stats.lock().expect("stats").requests += 1;
            match attempt(&agent, cfg, &url, &key, r) {
                Attempt::Done(c) => {
                    let mut s = stats.lock().expect("stats");
                    s.tokens_in += c.prompt_tokens;
                    s.tokens_out += c.completion_tokens;
                    drop(s);
                    write_cache(cfg, r, &c)?;
                    return Ok(c);
                }
                Attempt::Retry(e) => {
                    stats.lock().expect("stats").failures += 1;
                    last = e;
                }
                Attempt::Fatal(status, body) => {
                    stats.lock().expect("stats").failures += 1;
                    return Err(EndpointError::Rejected {
                        url: url.clone(),
                        status,
                        body,
                    });
                }
            }
        }
        Err(EndpointError::Exhausted {
            url: url.clone(),
            index: i,
            attempts: cfg.max_retries + 1,
            last,
        })
    };
    std::thread::scope(|scope| {
        for _ in 0..cfg.concurrency.max(1).min(requests.len().max(1)) {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= requests.len() {
                        break;
                    }
                    match run_one(i) {
                        Ok(c) => {
                            results.lock().expect("results")[i] = Some(c);
                            on_done(1);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            error.lock().expect("error").get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().expect("error") {
        return Err(e);
    }
    let mut stats = stats.into_inner().expect("stats");
    stats.seconds = start.elapsed().as_secs_f64();
    let out = results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|c| c.expect("every request completed"))
        .collect();
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EndpointConfig {
        EndpointConfig {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key_env: String::new(),
            chat: false,
            concurrency: 2,
            timeout: Duration::from_millis(500),
            max_retries: 1,
            backoff: Duration::from_millis(1),
            cache_dir: None,
        }
    }

    fn req(prompt: &str, seed: u64) -> Request {
        Request {
            prompt: prompt.into(),
            max_tokens: 8,
            temperature: 1.0,
            top_p: 1.0,
            seed,
            stop: vec![],
            top_logprobs: 0,
        }
    }

    #[test]
    fn cache_key_covers_model_prompt_parameters_and_seed() {
        let c = cfg();
        let base = cache_key(&c, &req("a", 1));
        assert_eq!(base, cache_key(&c, &req("a", 1)));
        assert_ne!(base, cache_key(&c, &req("b", 1)));
        assert_ne!(base, cache_key(&c, &req("a", 2)));
        let mut r = req("a", 1);
        r.temperature = 0.5;
        assert_ne!(base, cache_key(&c, &r));
        let other = EndpointConfig {
            model: "n".into(),
            ..cfg()
        };
        assert_ne!(base, cache_key(&other, &req("a", 1)));
        // The server address is not part of the key: the same request to a moved server hits.
        let moved = EndpointConfig {
            base_url: "http://elsewhere/v1".into(),
            ..cfg()
        };
        assert_eq!(base, cache_key(&moved, &req("a", 1)));
    }

    #[test]
    fn parses_completions_and_chat_responses() {
        let c = parse(
            false,
            r#"{"choices":[{"text":"hi","finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            false,
        )
        .unwrap();
        assert_eq!((c.text.as_str(), c.finish_reason.as_str()), ("hi", "stop"));
        assert_eq!((c.prompt_tokens, c.completion_tokens), (3, 1));
        let c = parse(
            true,
            r#"{"choices":[{"message":{"role":"assistant","content":"yo"},"finish_reason":"length"}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(c.text, "yo");
        assert!(parse(false, "{\"choices\":[]}", false).is_err());
        assert!(parse(false, "not json", false).is_err());
    }

    /// The OpenAI API's two logprobs layouts (as vLLM and `didact serve` send them).
    #[test]
    fn parses_top_logprobs_of_completions_and_chat() {
        let c = parse(
            false,
            r#"{"choices":[{"text":"ab","finish_reason":"stop","logprobs":{"tokens":["a","b"],"token_logprobs":[-0.1,-0.2],"top_logprobs":[{"a":-0.1,"c":-2.5},{"b":-0.2,"a":-1.9}]}}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(c.logprobs.len(), 2);
        assert_eq!(c.logprobs[1].token, "b");
        let mut top = c.logprobs[1].top.clone();
        top.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(top, vec![("a".to_string(), -1.9), ("b".to_string(), -0.2)]);
        let c = parse(
            true,
            r#"{"choices":[{"message":{"content":"a"},"finish_reason":"stop","logprobs":{"content":[{"token":"a","logprob":-0.3,"top_logprobs":[{"token":"a","logprob":-0.3},{"token":"z","logprob":-1.5}]}]}}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(c.logprobs[0].top[1], ("z".to_string(), -1.5));
        // Asked for and not sent: an error, not a silent fallback.
        let err = parse(
            false,
            r#"{"choices":[{"text":"hi","finish_reason":"stop"}]}"#,
            true,
        )
        .unwrap_err();
        assert!(err.contains("no logprobs"), "{err}");
    }

    #[test]
    fn unreachable_server_is_retried_then_reported() {
        let (r, n) = (complete_all(&cfg(), &[req("a", 1)], |_| {}), 2);
        match r {
            Err(EndpointError::Exhausted { attempts, .. }) => assert_eq!(attempts, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_api_key_names_the_variable_not_a_value() {
        let c = EndpointConfig {
            api_key_env: "DIDACT_TEST_NO_SUCH_KEY".into(),
            ..cfg()
        };
        let e = complete_all(&c, &[req("a", 1)], |_| {}).unwrap_err();
        assert!(e.to_string().contains("DIDACT_TEST_NO_SUCH_KEY"));
    }

    #[test]
    fn secrets_are_redacted_from_what_a_server_echoes() {
        let key = "s3cr3t-Key-value-123";
        let body = format!(
            "{{\"error\": \"bad\", \"headers\": {{\"authorization\": \"Bearer {key}\"}}, \"note\": \"sk-abc123XYZ and {key}\"}}"
        );
        let r = redact(&body, key);
        assert!(!r.contains(key) && !r.contains("abc123XYZ"), "{r}");
        assert!(
            r.contains("Bearer [redacted]") && r.contains("\"error\": \"bad\""),
            "{r}"
        );
        // A short or empty key is not used as a pattern (it would shred the text).
        assert_eq!(redact("a b c", ""), "a b c");
    }

    /// A server that answers every request with 400 and the request's own headers as its
    /// body (as some proxies do): the error didact reports has no trace of the key.
    #[test]
    fn a_header_echoing_server_never_leaks_the_key() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                headers.push_str(&line);
            }
            let mut stream = stream;
            let body = format!("{{\"echo\": {:?}}}", headers);
            write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            )
            .unwrap();
        });
        let var = "DIDACT_TEST_ECHO_KEY";
        let key = "sk-live-0123456789abcdef";
        // SAFETY: this test alone reads and writes this variable.
        unsafe { std::env::set_var(var, key) };
        let c = EndpointConfig {
            base_url: format!("http://{addr}/v1"),
            api_key_env: var.into(),
            max_retries: 0,
            ..cfg()
        };
        let err = complete_all(&c, &[req("x", 1)], |_| {})
            .unwrap_err()
            .to_string();
        server.join().unwrap();
        assert!(err.contains("HTTP 400"), "{err}");
        assert!(
            err.contains("authorization") || err.contains("Authorization"),
            "the echo is shown: {err}"
        );
        assert!(!err.contains("0123456789abcdef"), "the key leaked: {err}");
    }
}
