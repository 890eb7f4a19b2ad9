//! Checkpoint loading beyond the happy path, on copies of ../shared/fixtures/llama: a sharded
//! checkpoint (`model.safetensors.index.json`) loads to the same logits as the single file, and
//! every kind of bad input is a clear error naming the file and tensor — unsupported
//! architecture, missing tensor, mis-shaped tensor, truncated file, tokenizer larger than the
//! embedding matrix.

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::checkpoint;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/llama")
}

/// A scratch copy of the fixture's config and tokenizer (no weights).
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("didact-ckio-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture().join(f), d.join(f)).unwrap();
    }
    d
}

/// (name, shape, little-endian f32 bytes) of every fixture tensor.
fn tensors() -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            assert_eq!(t.dtype(), safetensors::Dtype::F32);
            (n, t.shape().to_vec(), t.data().to_vec())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn write(path: &Path, ts: &[(String, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = ts
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn logits(dir: &Path) -> Vec<f32> {
    let device = Device::flex();
    let ck = checkpoint::load(dir, &device).unwrap();
    let t = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 17, 300, 2], [1, 4]), &device);
    ck.model.forward(t).into_data().try_to_vec().unwrap()
}

fn load_err(dir: &Path) -> String {
    match checkpoint::load(dir, &Device::flex()) {
        Ok(_) => panic!("{} loaded but should not have", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sharded_checkpoint_loads_like_the_single_file() {
    let d = scratch("shards");
    let ts = tensors();
    let (a, b) = ts.split_at(ts.len() / 2);
    write(&d.join("model-00001-of-00002.safetensors"), a);
    write(&d.join("model-00002-of-00002.safetensors"), b);
    let mut map = serde_json::Map::new();
    for (n, _, _) in a {
        map.insert(n.clone(), "model-00001-of-00002.safetensors".into());
    }
    for (n, _, _) in b {
        map.insert(n.clone(), "model-00002-of-00002.safetensors".into());
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
    assert_eq!(logits(&d), logits(&fixture()));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let ts = tensors();

    // Unsupported architecture.
    let d = scratch("arch");
    write(&d.join("model.safetensors"), &ts);
    let cfg = std::fs::read_to_string(d.join("config.json"))
        .unwrap()
        .replace("LlamaForCausalLM", "MambaForCausalLM");
    std::fs::write(d.join("config.json"), cfg).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("config.json") && e.contains("unsupported architecture `MambaForCausalLM`"),
        "{e}"
    );

    // A missing tensor.
    let d = scratch("missing");
    let without: Vec<_> = ts
        .iter()
        .filter(|t| t.0 != "model.layers.1.mlp.up_proj.weight")
        .cloned()
        .collect();
    write(&d.join("model.safetensors"), &without);
    let e = load_err(&d);
    assert!(
        e.contains("model.safetensors") && e.contains("model.layers.1.mlp.up_proj.weight"),
        "{e}"
    );

    // A mis-shaped tensor (k_proj [32, 64] stored transposed).
    let d = scratch("shape");
    let mut bad = ts.clone();
    let t = bad
        .iter_mut()
        .find(|t| t.0 == "model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    t.1.reverse();
    write(&d.join("model.safetensors"), &bad);
    let e = load_err(&d);
    assert!(
        e.contains("model.layers.0.self_attn.k_proj.weight") && e.contains("shape"),
        "{e}"
    );

    // A truncated file.
    let d = scratch("truncated");
    let full = std::fs::read(fixture().join("model.safetensors")).unwrap();
    std::fs::write(d.join("model.safetensors"), &full[..full.len() / 2]).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors file"),
        "{e}"
    );

    // A tokenizer with more tokens than the embedding has rows.
    let d = scratch("vocab");
    write(&d.join("model.safetensors"), &ts);
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["vocab_size"] = 100.into();
    std::fs::write(d.join("config.json"), v.to_string()).unwrap();
    let e = load_err(&d);
    assert!(e.contains("tokenizer") && e.contains("embedding"), "{e}");

    for tag in ["arch", "missing", "shape", "truncated", "vocab"] {
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("didact-ckio-{tag}-{}", std::process::id())),
        );
    }
}

/// `LmConfig::dims().n_params` — what the memory estimate before round 0 counts — equals the
/// parameters of the loaded fixtures (Llama, Qwen2 with q/k/v biases, GPT-2) and of the stored
/// checkpoint itself (`n_parameters` in fixtures/*/expected.json, from transformers).
#[test]
fn dims_count_the_parameters_of_every_family() {
    use didact_model::burn::module::Module;
    let shared = fixture().join("..");
    for fam in ["llama", "qwen2", "gpt2"] {
        let dir = shared.join(fam);
        let ck = didact_model::any::load(&dir, &Device::flex()).unwrap();
        let dims = ck.config.dims();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let loaded = match &ck.model {
            didact_model::Lm::Llama(m) => m.num_params(),
            didact_model::Lm::Gpt2(m) => m.num_params(),
        };
        assert_eq!(dims.n_params, loaded, "{fam}");
        assert_eq!(
            dims.n_params as u64,
            expected["n_parameters"].as_u64().unwrap(),
            "{fam}"
        );
    }
}
