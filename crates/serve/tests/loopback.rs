//! The endpoint client against `didact serve` on loopback (the tiny transformers Llama of
//! ../shared/fixtures/llama), with every other request faulted in turn — HTTP 500, 429, a
//! dropped connection, a response slower than the client's timeout. Nothing may be lost or
//! duplicated: every request's completion equals what the fault-free server gives for the same
//! seed. A second pass with the warm on-disk cache makes no request at all.

use didact_endpoint::{EndpointConfig, Request, complete_all};
use didact_model::burn::tensor::Device;
use didact_serve::{FaultPlan, Limits, Model, bind, complete, run};
use std::path::PathBuf;
use std::time::Duration;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/llama")
}

fn start(faults: FaultPlan) -> String {
    start_with(faults, Limits::default())
}

fn start_with(faults: FaultPlan, limits: Limits) -> String {
    let (server, addr) = bind("127.0.0.1:0").unwrap();
    let model = Model::load(&fixture(), &Device::flex()).unwrap();
    std::thread::spawn(move || run(server, model, faults, limits));
    format!("http://{addr}/v1")
}

fn requests() -> Vec<Request> {
    (0..10)
        .map(|i| Request {
            prompt: format!("The number {i} is"),
            max_tokens: 6,
            temperature: 1.0,
            top_p: 1.0,
            seed: 100 + i,
            stop: vec![],
            top_logprobs: 0,
        })
        .collect()
}

#[test]
fn faults_are_retried_nothing_lost_nothing_duplicated_and_the_cache_answers_a_rerun() {
    let url = start(FaultPlan::parse(2, "500,429,drop,slow", 1500).unwrap());
    let cache = std::env::temp_dir().join(format!("didact-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cfg = EndpointConfig {
        base_url: url,
        model: "llama".into(),
        api_key_env: String::new(),
        chat: false,
        concurrency: 3,
        timeout: Duration::from_millis(1000),
        max_retries: 10,
        backoff: Duration::from_millis(20),
        cache_dir: Some(cache.clone()),
    };
    let reqs = requests();
    let (got, stats) = complete_all(&cfg, &reqs, |_| {}).unwrap();
    assert_eq!(got.len(), reqs.len());
    assert!(stats.failures >= 4, "every fault kind was hit: {stats:?}");
    assert_eq!(stats.requests, reqs.len() + stats.retries);
    assert_eq!(stats.cache_hits, 0);

    // What a fault-free server answers for the same requests, in process.
    let model = Model::load(&fixture(), &Device::flex()).unwrap();
    for (r, c) in reqs.iter().zip(&got) {
        let body = serde_json::json!({"prompt": r.prompt, "max_tokens": r.max_tokens, "temperature": r.temperature, "top_p": r.top_p, "seed": r.seed});
        let (status, v) = complete(&model, &body.to_string(), false);
        assert_eq!(status, 200);
        assert_eq!(v["choices"][0]["text"].as_str().unwrap(), c.text);
        assert_eq!(
            v["usage"]["completion_tokens"].as_u64().unwrap(),
            c.completion_tokens
        );
    }
    // Different seeds gave different samples (nothing was answered twice by mistake).
    let distinct: std::collections::BTreeSet<&str> = got.iter().map(|c| c.text.as_str()).collect();
    assert!(distinct.len() > 1);

    let (again, stats) = complete_all(&cfg, &reqs, |_| {}).unwrap();
    assert_eq!(again, got);
    assert_eq!((stats.requests, stats.cache_hits), (0, reqs.len()));
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn chat_route_matches_in_process_and_bad_requests_are_not_retried() {
    let url = start(FaultPlan::default());
    let cfg = EndpointConfig {
        base_url: url.clone(),
        model: "llama".into(),
        api_key_env: String::new(),
        chat: true,
        concurrency: 1,
        timeout: Duration::from_secs(5),
        max_retries: 3,
        backoff: Duration::from_millis(1),
        cache_dir: None,
    };
    let reqs = &requests()[..2];
    let (got, stats) = complete_all(&cfg, reqs, |_| {}).unwrap();
    let model = Model::load(&fixture(), &Device::flex()).unwrap();
    for (r, c) in reqs.iter().zip(&got) {
        let body = serde_json::json!({"messages": [{"role": "user", "content": r.prompt}], "max_tokens": r.max_tokens, "seed": r.seed});
        let (status, v) = complete(&model, &body.to_string(), true);
        assert_eq!(status, 200);
        assert_eq!(
            v["choices"][0]["message"]["content"].as_str().unwrap(),
            c.text
        );
    }
    assert_eq!((stats.requests, stats.failures), (2, 0));
    // An empty prompt is a client error: reported at once with the status, never retried.
    let mut bad = reqs[..1].to_vec();
    bad[0].prompt.clear();
    let e = complete_all(&EndpointConfig { chat: false, ..cfg }, &bad, |_| {}).unwrap_err();
    assert!(e.to_string().contains("HTTP 400"), "{e}");
}

#[test]
fn a_wrong_method_on_a_known_route_is_405() {
    use std::io::{Read, Write};
    let url = start(FaultPlan::default());
    let mut s = std::net::TcpStream::connect(host(&url)).unwrap();
    write!(
        s,
        "GET /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
}

/// One client that announces a body and never sends it holds one worker; every other client
/// is still answered. A body over the limit is refused with 413 without being read.
#[test]
fn a_stalled_client_does_not_block_the_others_and_big_bodies_get_413() {
    use std::io::Write;
    let url = start_with(
        FaultPlan::default(),
        Limits {
            workers: 2,
            max_body_bytes: 1000,
            ..Limits::default()
        },
    );
    let addr = host(&url);
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stalled,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{{"
    )
    .unwrap();
    let ask = |body: &str| post(&addr, "/v1/completions", body);
    let t0 = std::time::Instant::now();
    for _ in 0..3 {
        let reply = ask(r#"{"prompt": "The number 3 is", "max_tokens": 4}"#);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let big = format!(r#"{{"prompt": "{}"}}"#, "x".repeat(5000));
    assert!(ask(&big).starts_with("HTTP/1.1 413"));
    drop(stalled);
}

/// `host:port` of a base URL `http://host:port/v1`.
fn host(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string()
}

/// Send `body` to `path` over a fresh connection and read the whole reply.
fn post(addr: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

/// A client that announces a body and stops sending gets 408 once the read timeout passes,
/// and its worker is free again: with one worker, the next client is answered after it.
#[test]
fn a_body_that_never_arrives_gets_408_after_the_read_timeout() {
    use std::io::{Read, Write};
    let url = start_with(
        FaultPlan::default(),
        Limits {
            workers: 1,
            read_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let addr = host(&url);
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    let t0 = std::time::Instant::now();
    write!(
        stalled,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n{{\"prompt\""
    )
    .unwrap();
    let mut reply = String::new();
    let _ = stalled.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let ok = post(
        &addr,
        "/v1/completions",
        r#"{"prompt": "The number 3 is", "max_tokens": 4}"#,
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// Load: 32 concurrent completion clients while 4 clients stall mid-body. Every well-formed
/// request is answered 200, each completion equals the one the server gives alone (seeds are
/// per request, whatever ran beside it), and the latencies are printed (p50 / p99).
#[test]
fn thirty_two_clients_beside_four_stalled_ones_are_all_answered() {
    use std::io::Write;
    let url = start_with(
        FaultPlan::default(),
        Limits {
            workers: 8,
            read_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
    );
    let addr = host(&url);
    let stalled: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n{{"
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let body =
        |i: usize| format!(r#"{{"prompt": "The number {i} is", "max_tokens": 8, "seed": {i}}}"#);
    let t0 = std::time::Instant::now();
    let answers: Vec<(Duration, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let addr = addr.clone();
                let body = body(i);
                scope.spawn(move || {
                    let t = std::time::Instant::now();
                    let reply = post(&addr, "/v1/completions", &body);
                    (t.elapsed(), reply)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t0.elapsed();
    let model = Model::load(&fixture(), &Device::flex()).unwrap();
    for (i, (_, reply)) in answers.iter().enumerate() {
        assert!(reply.starts_with("HTTP/1.1 200"), "client {i}: {reply}");
        let json = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
        let got: serde_json::Value = serde_json::from_str(json).unwrap();
        let (_, alone) = complete(&model, &body(i), false);
        assert_eq!(got["choices"], alone["choices"], "client {i}");
    }
    let mut ms: Vec<f64> = answers.iter().map(|(d, _)| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    eprintln!(
        "load: 32 clients + 4 stalled, 8 workers: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, all in {:.2} s",
        pct(0.5),
        pct(0.99),
        ms[ms.len() - 1],
        wall.as_secs_f64()
    );
    drop(stalled);
}

/// Idle for longer than the read timeout, the server still accepts connections (the timeout
/// is per request, never on the listening socket).
#[test]
fn an_idle_server_keeps_accepting_after_the_read_timeout() {
    let url = start_with(
        FaultPlan::default(),
        Limits {
            read_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
    );
    let addr = &host(&url);
    std::thread::sleep(Duration::from_millis(1500));
    let ok = post(
        addr,
        "/v1/completions",
        r#"{"prompt": "The number 3 is", "max_tokens": 2}"#,
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
