//! Parity of didact's Llama family with Hugging Face transformers on the tiny random
//! checkpoints in ../shared/fixtures/llama (LlamaForCausalLM, GQA 4q/2kv, rope_theta 1e5,
//! untied head) and ../shared/fixtures/qwen2 (Qwen2ForCausalLM: q/k/v biases, tied
//! embeddings, rope_theta 1e6); expected values from transformers 5.23.0 (each folder's README).

mod common;

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::checkpoint;
use didact_model::sample::{SamplingParams, generate_batch};
use serde_json::Value;
use std::path::PathBuf;

/// The fixtures this file checks: Llama (GQA, untied) and Qwen2 (q/k/v biases, tied), both
/// run through didact's one Llama-family model.
const FIXTURES: &[&str] = &["llama", "qwen2"];

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name)
}

fn expected_of(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_dir(name).join("expected.json")).unwrap())
        .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn logits_match_transformers_within_1e4() {
    for name in FIXTURES {
        let fixture = || fixture_dir(name);
        let expected = || expected_of(name);
        let _ = &expected;
        let device = Device::flex();
        let ck = checkpoint::load(&fixture(), &device).unwrap();
        let st_bytes = std::fs::read(fixture().join("expected_logits.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
        for case in expected()["cases"].as_array().unwrap() {
            let input = ids(&case["input_ids"]);
            let t = input.len();
            let tokens = Tensor::<2, Int>::from_data(
                TensorData::new(input.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, t]),
                &device,
            );
            let logits: Vec<f32> = ck.model.forward(tokens).into_data().try_to_vec().unwrap();
            let tensor = case["logits_tensor"].as_str().unwrap();
            let want: Vec<f32> = st
                .tensor(tensor)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(logits.len(), want.len());
            let max = logits
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(max <= 1e-4, "{name} {tensor}: max |Δlogit| = {max}");
        }
    }
}

#[test]
fn greedy_with_kv_cache_matches_transformers() {
    for name in FIXTURES {
        let fixture = || fixture_dir(name);
        let expected = || expected_of(name);
        let _ = &expected;
        let device = Device::flex();
        let ck = checkpoint::load(&fixture(), &device).unwrap();
        let cases = expected()["cases"].as_array().unwrap().clone();
        // One batch of all prompts (lengths 3..48): exercises left padding, per-row positions and
        // the padding mask on top of the cache.
        let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["input_ids"])).collect();
        let seeds = vec![0; prompts.len()];
        let params = SamplingParams::greedy(16, None);
        let gens = generate_batch(
            &ck.model,
            ck.config.max_seq_len,
            &prompts,
            &seeds,
            &params,
            0,
            &device,
        )
        .unwrap();
        for (c, g) in cases.iter().zip(&gens) {
            assert_eq!(
                g.tokens,
                ids(&c["greedy_16"]),
                "prompt {:?}",
                ids(&c["input_ids"])
            );
        }
        // And one prompt at a time (no padding path).
        for c in &cases {
            let p = vec![ids(&c["input_ids"])];
            let g = generate_batch(
                &ck.model,
                ck.config.max_seq_len,
                &p,
                &[0],
                &params,
                0,
                &device,
            )
            .unwrap();
            assert_eq!(g[0].tokens, ids(&c["greedy_16"]));
        }
    }
}

#[test]
fn save_then_load_gives_identical_logits() {
    for name in FIXTURES {
        let fixture = || fixture_dir(name);
        let expected = || expected_of(name);
        let _ = &expected;
        let device = Device::flex();
        let ck = checkpoint::load(&fixture(), &device).unwrap();
        let dir = std::env::temp_dir().join(format!("didact-ckpt-{name}-{}", std::process::id()));
        checkpoint::save(&dir, &ck.config, &ck.model, &ck.tokenizer).unwrap();
        let back = checkpoint::load(&dir, &device).unwrap();
        assert_eq!(back.config, ck.config);
        // The saved file has exactly the original tensor names and shapes.
        let shapes = |p: PathBuf| common::safetensors_shapes(&p);
        assert_eq!(
            shapes(dir.join("model.safetensors")),
            shapes(fixture().join("model.safetensors"))
        );
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 17, 300, 2], [1, 4]), &device);
        let a: Vec<f32> = ck
            .model
            .forward(tokens.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = back.model.forward(tokens).into_data().try_to_vec().unwrap();
        assert_eq!(a, b);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
