//! Checkpoint round trips of didact's Llama family on the tiny random checkpoints in
//! ../shared/fixtures/llama (LlamaForCausalLM, GQA 4q/2kv, rope_theta 1e5, untied head) and
//! ../shared/fixtures/qwen2 (Qwen2ForCausalLM: q/k/v biases, tied embeddings, rope_theta 1e6).
//! Logits and greedy parity with transformers 5.23.0 are checked on every device by the
//! conformance suite (crates/conformance: `logits/*`, `greedy/*`).

mod common;

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::checkpoint;
use std::path::PathBuf;

/// The fixtures this file checks: Llama (GQA, untied) and Qwen2 (q/k/v biases, tied), both
/// run through didact's one Llama-family model.
const FIXTURES: &[&str] = &["llama", "qwen2"];

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name)
}

#[test]
fn save_then_load_gives_identical_logits() {
    for name in FIXTURES {
        let fixture = || fixture_dir(name);
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
