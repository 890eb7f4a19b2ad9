//! GPT-2 parity with transformers on ../shared/fixtures/gpt2 (GPT2LMHeadModel: Conv1D weights
//! stored [in, out], learned positions, tied embeddings, gelu_new; transformers 5.23.0, see
//! that folder's README): full logits within 1e-4, and greedy continuations (`greedy_16`, by
//! re-running the full forward each step) identical.

mod common;

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::gpt2;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gpt2")
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn gpt2_logits_and_greedy_match_transformers() {
    let device = Device::flex();
    let (cfg, model) = gpt2::load(&dir(), &device).unwrap();
    assert_eq!(
        (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff),
        (64, 2, 4, 256)
    );
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    let st_bytes = std::fs::read(dir().join("expected_logits.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    let fwd = |input: &[u32]| -> Vec<f32> {
        let t = input.len();
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(input.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, t]),
            &device,
        );
        model.forward(tokens).into_data().try_to_vec().unwrap()
    };
    for case in expected["cases"].as_array().unwrap() {
        let input = ids(&case["input_ids"]);
        let logits = fwd(&input);
        let want: Vec<f32> = st
            .tensor(case["logits_tensor"].as_str().unwrap())
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
        assert!(max <= 1e-4, "max |Δlogit| = {max}");

        let mut seq = input.clone();
        for _ in 0..16 {
            let l = fwd(&seq);
            let last = &l[l.len() - cfg.vocab_size..];
            let next = last
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |a, (i, &x)| if x > a.1 { (i, x) } else { a })
                .0;
            seq.push(next as u32);
        }
        assert_eq!(seq[input.len()..].to_vec(), ids(&case["greedy_16"]));
    }
}

/// load → save → load: identical logits, and the saved file has exactly transformers' tensor
/// names and shapes.
#[test]
fn gpt2_save_round_trip() {
    let device = Device::flex();
    let (cfg, model) = gpt2::load(&dir(), &device).unwrap();
    let tok = didact_model::Tok::load(&dir().join("tokenizer.json")).unwrap();
    let out = std::env::temp_dir().join(format!("didact-gpt2-{}", std::process::id()));
    gpt2::save(&out, &cfg, &model, &tok).unwrap();
    let (cfg2, back) = gpt2::load(&out, &device).unwrap();
    assert_eq!(cfg2, cfg);
    let t = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 17, 300, 2], [1, 4]), &device);
    let a: Vec<f32> = model.forward(t.clone()).into_data().try_to_vec().unwrap();
    let b: Vec<f32> = back.forward(t).into_data().try_to_vec().unwrap();
    assert_eq!(a, b);
    let shapes = |p: PathBuf| common::safetensors_shapes(&p);
    assert_eq!(
        shapes(out.join("model.safetensors")),
        shapes(dir().join("model.safetensors"))
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// The shared KV-cache sampler runs GPT-2: greedy continuations equal transformers'
/// `greedy_16` (fixture: `model.generate(..., do_sample=False)` with its KV cache), one
/// prompt at a time and all prompts in one left-padded batch (position ids and pad masking).
#[test]
fn gpt2_kv_cache_greedy_matches_transformers_single_and_batched() {
    let device = Device::flex();
    let (cfg, model) = gpt2::load(&dir(), &device).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    let cases = expected["cases"].as_array().unwrap();
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["input_ids"])).collect();
    let want: Vec<Vec<u32>> = cases.iter().map(|c| ids(&c["greedy_16"])).collect();
    assert!(
        prompts
            .iter()
            .map(|p| p.len())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "the batch must need padding"
    );
    let params = didact_model::SamplingParams::greedy(16, None);
    for (p, w) in prompts.iter().zip(&want) {
        let g = didact_model::generate_batch(
            &model,
            cfg.n_positions,
            std::slice::from_ref(p),
            &[0],
            &params,
            0,
            &device,
        )
        .unwrap();
        assert_eq!(&g[0].tokens, w);
    }
    let seeds = vec![0; prompts.len()];
    let g = didact_model::generate_batch(
        &model,
        cfg.n_positions,
        &prompts,
        &seeds,
        &params,
        0,
        &device,
    )
    .unwrap();
    for (g, w) in g.iter().zip(&want) {
        assert_eq!(&g.tokens, w);
    }
}
