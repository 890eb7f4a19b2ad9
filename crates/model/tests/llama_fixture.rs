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

/// bf16 and f16 checkpoints (issue 16, part 2): the fixture narrowed to bf16/f16 (round to
/// nearest even, what `model.to(torch.bfloat16).save_pretrained` does) loads with its dtype
/// recorded, gives logits within half-precision tolerance of the f32 fixture's, and saved
/// back in its own dtype is bit-identical — every tensor, and the whole file.
#[test]
fn half_precision_checkpoints_round_trip_bit_exact() {
    use didact_model::WeightDtype;
    let device = Device::flex();
    for name in FIXTURES {
        let f32_ck = checkpoint::load(&fixture_dir(name), &device).unwrap();
        assert_eq!(f32_ck.dtype, WeightDtype::F32);
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 17, 300, 2], [1, 4]), &device);
        let reference: Vec<f32> = f32_ck
            .model
            .forward(tokens.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let scale = reference.iter().fold(0f32, |m, x| m.max(x.abs()));
        for (dtype, hf, tol) in [
            (WeightDtype::BF16, "bfloat16", 2e-2f32),
            (WeightDtype::F16, "float16", 3e-3),
        ] {
            let tmp =
                std::env::temp_dir().join(format!("didact-{}-{name}-{}", hf, std::process::id()));
            let (narrow, again) = (tmp.join("narrow"), tmp.join("again"));
            checkpoint::save_as(
                &narrow,
                &f32_ck.config,
                &f32_ck.model,
                &f32_ck.tokenizer,
                dtype,
            )
            .unwrap();
            let cfg: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(narrow.join("config.json")).unwrap())
                    .unwrap();
            assert_eq!(cfg["torch_dtype"], hf);
            let ck = checkpoint::load(&narrow, &device).unwrap();
            assert_eq!(ck.dtype, dtype, "{name}: the dtype is recorded");
            let logits: Vec<f32> = ck
                .model
                .forward(tokens.clone())
                .into_data()
                .try_to_vec()
                .unwrap();
            let worst = logits
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!(
                "{name} {hf}: max |Δlogit| / max |logit| = {:.2e}",
                worst / scale
            );
            assert!(worst > 0.0, "{name} {hf}: the weights were really narrowed");
            assert!(
                worst <= tol * scale,
                "{name} {hf}: max |Δlogit| {worst} > {tol} × max |logit| {scale}"
            );
            checkpoint::save_as(&again, &ck.config, &ck.model, &ck.tokenizer, ck.dtype).unwrap();
            let bytes = |d: &PathBuf| std::fs::read(d.join("model.safetensors")).unwrap();
            assert_eq!(
                bytes(&again),
                bytes(&narrow),
                "{name} {hf}: saved back bit-identical"
            );
            std::fs::remove_dir_all(&tmp).unwrap();
        }
    }
}
