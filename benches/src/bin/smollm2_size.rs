//! A real-size check (issue 4): a randomly initialised model with the published SmolLM2-135M
//! configuration (vocab 49152, d_model 576, 30 layers, 9 heads / 3 KV heads, SwiGLU 1536, tied
//! embeddings, rope_theta 1e5), saved in Hugging Face layout, then measured in a fresh process:
//! load time, peak RSS, forward tokens/s and one SFT step's tokens/s (batch 4 × 128).
//!
//! cargo run --release -p didact-benches --bin smollm2_size -- write /tmp/smollm2
//! cargo run --release -p didact-benches --bin smollm2_size -- measure /tmp/smollm2

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::{LlamaConfig, Tok, checkpoint};
use didact_train::{TokenRow, train_sft};
use std::path::Path;
use std::time::Instant;

fn config() -> LlamaConfig {
    LlamaConfig::new(49152)
        .with_d_model(576)
        .with_n_layers(30)
        .with_n_heads(9)
        .with_n_kv_heads(3)
        .with_d_ff(1536)
        .with_max_seq_len(2048)
        .with_rope_theta(100000.0)
        .with_tie_embeddings(true)
}

/// Parameter count of a Llama-family config (tied embeddings counted once).
fn params(c: &LlamaConfig) -> usize {
    let (d, hd) = (c.d_model, c.head_dim());
    let attn = d * c.n_heads * hd * 2 + d * c.n_kv_heads * hd * 2;
    let mlp = 3 * d * c.ffn_dim();
    let head = if c.tie_embeddings {
        0
    } else {
        c.vocab_size * d
    };
    c.vocab_size * d + c.n_layers * (attn + mlp + 2 * d) + d + head
}

/// Peak resident set size of this process, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, dir) = match args.as_slice() {
        [_, m, d] => (m.as_str(), Path::new(d)),
        _ => {
            eprintln!("usage: smollm2_size write|measure DIR");
            std::process::exit(2);
        }
    };
    let device = Device::flex();
    match mode {
        "write" => {
            let cfg = config();
            let model = cfg.init(0, &device).expect("init");
            let tok = Tok::char_level("abcdefghijklmnopqrstuvwxyz ").expect("tokenizer");
            checkpoint::save(dir, &cfg, &model, &tok).expect("save");
            println!("wrote {}", dir.display());
        }
        "measure" => {
            let rss0 = peak_rss_mib();
            let t0 = Instant::now();
            let ck = checkpoint::load(dir, &device).expect("load");
            let load_s = t0.elapsed().as_secs_f64();
            let rss_load = peak_rss_mib();
            let (b, t) = (4usize, 128usize);
            let ids: Vec<i64> = (0..b * t).map(|i| 3 + (i * 7919 % 49000) as i64).collect();
            let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [b, t]), &device);
            let _ = ck.model.forward(tokens.clone()).into_data(); // warm-up
            let reps = 3;
            let t1 = Instant::now();
            for _ in 0..reps {
                let _ = ck.model.forward(tokens.clone()).into_data();
            }
            let fwd = (reps * b * t) as f64 / t1.elapsed().as_secs_f64();
            let rows: Vec<TokenRow> = (0..b)
                .map(|r| TokenRow {
                    ids: ids[r * t..(r + 1) * t].iter().map(|&x| x as u32).collect(),
                    n_prompt: 1,
                })
                .collect();
            let mut opt = didact_benches::sft_config(2);
            opt.batch_size = b;
            let t2 = Instant::now();
            let data = didact_benches::batching();
            let (_, rep) =
                train_sft(ck.model, &rows, &opt, &data, &device, |_, _| {}).expect("sft");
            let sft_total = t2.elapsed().as_secs_f64();
            let out = serde_json::json!({
                "params_millions": params(&ck.config) as f64 / 1e6,
                "load_seconds": load_s,
                "peak_rss_mib_before_load": rss0,
                "peak_rss_mib_after_load": rss_load,
                "forward_tokens_per_s": fwd,
                "sft_step_tokens_per_s": rep.tokens_per_s(),
                "sft_two_steps_seconds_incl_setup": sft_total,
                "peak_rss_mib_after_sft": peak_rss_mib(),
                "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap());
        }
        _ => {
            eprintln!("usage: smollm2_size write|measure DIR");
            std::process::exit(2);
        }
    }
}
