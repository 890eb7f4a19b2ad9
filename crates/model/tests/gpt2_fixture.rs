//! GPT-2 checkpoint round trip on ../shared/fixtures/gpt2 (GPT2LMHeadModel: Conv1D weights
//! stored [in, out], learned positions, tied embeddings, gelu_new). Logits within 1e-4 of
//! transformers 5.23.0 and greedy continuations (`greedy_16`, single and left-padded batch)
//! are checked on every device by the conformance suite (crates/conformance).

mod common;

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::gpt2;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gpt2")
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
