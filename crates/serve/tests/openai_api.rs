//! The OpenAI API as `didact serve` answers it, on the tiny transformers Llama of
//! ../shared/fixtures/llama: every out-of-range or unknown field is a 400 naming it; lists of
//! prompts and `n` give what each prompt and seed gives alone; `logprobs` are the model's own
//! (the greedy continuation and its first log-probability equal transformers' —
//! fixtures/llama/expected.json `greedy_16`, expected_logits.safetensors `logits_0`); a
//! streamed answer, re-assembled, equals the unstreamed one, stop strings included.

use didact_model::burn::tensor::Device;
use didact_serve::{FaultPlan, Limits, Model, bind, complete, run};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/llama")
}

fn model() -> Model {
    Model::load(&fixture(), &Device::flex()).unwrap()
}

fn ok(m: &Model, body: &Value, chat: bool) -> Value {
    let (status, v) = complete(m, &body.to_string(), chat);
    assert_eq!(status, 200, "{body}: {v}");
    v
}

#[test]
fn out_of_range_unknown_or_unimplemented_fields_are_a_400_naming_them() {
    let m = model();
    let cases = [
        (json!({"n": 1000000}), "`n`"),
        (json!({"n": 0}), "`n`"),
        (json!({"temperature": -1.0}), "temperature"),
        (json!({"temperature": 3.0}), "temperature"),
        (json!({"temperature": "hot"}), "temperature"),
        (json!({"top_p": 2.0}), "top_p"),
        (json!({"top_p": 0.0}), "top_p"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"max_tokens": 100000}), "max_tokens"),
        (json!({"logprobs": 21}), "logprobs"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"presence_penalty": 0.5}), "presence_penalty"),
        (json!({"frequency_penalty": 3.0}), "frequency_penalty"),
        (json!({"logit_bias": {"5": 10}}), "logit_bias"),
        (json!({"echo": true}), "echo"),
        (json!({"best_of": 3}), "best_of"),
        (json!({"suffix": "x"}), "suffix"),
        (json!({"tools": []}), "tools"),
        (json!({"stream": "yes"}), "stream"),
        (
            json!({"stream_options": {"include_usage": true}}),
            "stream_options",
        ),
        (json!({"seed": -1}), "seed"),
        (json!({"seed": 1.5}), "seed"),
        (json!({"stop": [1, 2]}), "stop"),
        (json!({"stop": ""}), "stop"),
        (json!({"top_k": -2}), "top_k"),
        (json!({"prompt": []}), "empty"),
        (json!({"prompt": [5, 99999]}), "vocabulary"),
        (json!({"prompt": [[5], "x"]}), "prompt"),
        (json!({"prompt": {"a": 1}}), "prompt"),
        (json!({"prompt": vec!["a"; 300]}), "256"),
    ];
    for (extra, says) in cases {
        let mut body = json!({"prompt": "The number 3 is", "max_tokens": 4});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = complete(&m, &body.to_string(), false);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{body}: {v}");
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let chat = json!({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 3});
    let (status, v) = complete(&m, &chat.to_string(), true);
    assert_eq!(status, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("logprobs"));
    // The chat route does not take the completions' `prompt`, nor the reverse.
    let (status, _) = complete(&m, &json!({"prompt": "x"}).to_string(), true);
    assert_eq!(status, 400);
}

#[test]
fn a_list_of_prompts_and_n_give_what_each_prompt_and_seed_gives_alone() {
    let m = model();
    let prompts = ["The number 3 is", "Once upon a time"];
    let v = ok(
        &m,
        &json!({"prompt": prompts, "n": 3, "seed": 40, "max_tokens": 8}),
        false,
    );
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 6);
    let mut completion_tokens = 0;
    for (p, prompt) in prompts.iter().enumerate() {
        for k in 0..3 {
            let alone = ok(
                &m,
                &json!({"prompt": prompt, "seed": 40 + k, "max_tokens": 8}),
                false,
            );
            let c = &choices[p * 3 + k as usize];
            assert_eq!(c["index"], p * 3 + k as usize);
            assert_eq!(c["text"], alone["choices"][0]["text"], "prompt {p}, k {k}");
            completion_tokens += alone["usage"]["completion_tokens"].as_u64().unwrap();
        }
    }
    assert_eq!(v["usage"]["completion_tokens"], completion_tokens);
    let texts: std::collections::BTreeSet<&str> = choices
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.len() > 2,
        "different seeds sample differently: {texts:?}"
    );
    // Token-id prompts are the same prompt as their text.
    let ids = m.ck.tokenizer.encode(prompts[0]).unwrap();
    let by_ids = ok(
        &m,
        &json!({"prompt": ids, "seed": 40, "max_tokens": 8}),
        false,
    );
    assert_eq!(by_ids["choices"][0]["text"], choices[0]["text"]);
}

fn logits_0_last_row() -> Vec<f32> {
    let bytes = std::fs::read(fixture().join("expected_logits.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("logits_0").unwrap();
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let vocab = *t.shape().last().unwrap();
    v[v.len() - vocab..].to_vec()
}

#[test]
fn logprobs_are_the_models_own_and_match_transformers() {
    let m = model();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).unwrap())
            .unwrap();
    let case = &expected["cases"][0];
    let body = json!({"prompt": case["input_ids"], "max_tokens": 16, "temperature": 0,
        "logprobs": 5, "return_tokens_as_token_ids": true});
    let v = ok(&m, &body, false);
    let lp = &v["choices"][0]["logprobs"];
    let ids: Vec<u64> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t.as_str().unwrap()["token_id:".len()..]
                .parse::<u64>()
                .unwrap()
        })
        .collect();
    let greedy: Vec<u64> = serde_json::from_value(case["greedy_16"].clone()).unwrap();
    assert_eq!(ids, greedy, "greedy continuation = transformers' greedy_16");
    // First step: log-softmax of transformers' logits at the last prompt position.
    let logits = logits_0_last_row();
    let lse = logits.iter().map(|&x| (x as f64).exp()).sum::<f64>().ln();
    let want = logits[greedy[0] as usize] as f64 - lse;
    let got = lp["token_logprobs"][0].as_f64().unwrap();
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    // Greedy: the chosen token is the most likely of its step, listed first among 5.
    for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let top = top.as_object().unwrap();
        assert_eq!(top.len(), 5);
        let best = top
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!(best, lp["token_logprobs"][i].as_f64().unwrap());
        assert!(top.contains_key(&format!("token_id:{}", greedy[i])));
    }
    assert_eq!(lp["text_offset"][0], 0);
    // Chat shape: content entries with top_logprobs; logprobs at temperature 1 are the
    // model's, whatever temperature the tokens were sampled at.
    let chat = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
        "logprobs": true, "top_logprobs": 2, "temperature": 0.7, "seed": 3});
    let v = ok(&m, &chat, true);
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(
        content.len() as u64,
        v["usage"]["completion_tokens"].as_u64().unwrap()
    );
    for e in content {
        assert!(e["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(e["top_logprobs"].as_array().unwrap().len(), 2);
        assert!(e["bytes"].is_array());
    }
}

fn start() -> String {
    let limits = Limits::default();
    let (server, addr) = bind("127.0.0.1:0").unwrap();
    let m = model();
    std::thread::spawn(move || run(server, m, FaultPlan::default(), limits));
    addr
}

/// POST over HTTP; the `data:` payloads of a streamed answer (or the body, unstreamed).
fn events(addr: &str, path: &str, body: &Value) -> (String, Vec<String>) {
    use std::io::{Read, Write};
    let body = body.to_string();
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
    let (head, rest) = reply.split_once("\r\n\r\n").unwrap();
    let rest = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let data = rest
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(String::from))
        .collect();
    (head.to_string(), data)
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        s = &rest[size + 2..];
    }
}

#[test]
fn a_streamed_answer_reassembled_equals_the_unstreamed_one() {
    let addr = start();
    let m = model();
    for (path, chat, base) in [
        (
            "/v1/completions",
            false,
            json!({"prompt": ["The number 3 is", "A cat"], "n": 2}),
        ),
        (
            "/v1/chat/completions",
            true,
            json!({"messages": [{"role": "user", "content": "Tell me"}], "n": 2}),
        ),
    ] {
        for stop in [json!(null), json!([" the", "e"])] {
            let mut body = base.clone();
            body["max_tokens"] = json!(12);
            body["seed"] = json!(9);
            body["stop"] = stop.clone();
            body["logprobs"] = if chat { json!(true) } else { json!(2) };
            let whole = ok(&m, &body, chat);
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
            let (head, data) = events(&addr, path, &body);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(head.contains("text/event-stream"), "{head}");
            assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
            let n = whole["choices"].as_array().unwrap().len();
            let mut text = vec![String::new(); n];
            let mut finish = vec![Value::Null; n];
            let mut n_logprobs = vec![0; n];
            let mut usage = Value::Null;
            for d in &data[..data.len() - 1] {
                let v: Value = serde_json::from_str(d).unwrap();
                if !v["usage"].is_null() {
                    usage = v["usage"].clone();
                    continue;
                }
                let c = &v["choices"][0];
                let i = c["index"].as_u64().unwrap() as usize;
                let piece = if chat {
                    &c["delta"]["content"]
                } else {
                    &c["text"]
                };
                text[i].push_str(piece.as_str().unwrap_or(""));
                if !c["finish_reason"].is_null() {
                    assert!(finish[i].is_null(), "one finish per choice");
                    finish[i] = c["finish_reason"].clone();
                }
                n_logprobs[i] += if chat {
                    c["logprobs"]["content"].as_array().map_or(0, Vec::len)
                } else {
                    c["logprobs"]["tokens"].as_array().map_or(0, Vec::len)
                };
            }
            for (i, c) in whole["choices"].as_array().unwrap().iter().enumerate() {
                let want = if chat {
                    &c["message"]["content"]
                } else {
                    &c["text"]
                };
                assert_eq!(text[i], want.as_str().unwrap(), "{path} {stop} choice {i}");
                assert_eq!(finish[i], c["finish_reason"], "{path} {stop} choice {i}");
                let lps = if chat {
                    c["logprobs"]["content"].as_array().unwrap().len()
                } else {
                    c["logprobs"]["tokens"].as_array().unwrap().len()
                };
                assert_eq!(n_logprobs[i], lps);
                if !stop.is_null() {
                    assert!(!text[i].contains(" the") && !text[i].contains('e'));
                }
            }
            assert_eq!(usage, whole["usage"]);
        }
    }
}
