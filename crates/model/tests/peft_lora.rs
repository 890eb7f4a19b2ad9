//! LoRA adapters against PEFT itself: adapters made by `peft` (tests/peft/, made by
//! tests/peft/make_fixture.py on ../shared/fixtures/{llama,gpt2}) load merged into their base
//! and give PEFT's logits; didact's own adapters start as the identity, cover exactly the
//! targets, and round-trip through the PEFT files; bad adapters are refused by name.

use didact_core::LoraSpec;
use didact_model::any::{load, load_with_adapter};
use didact_model::burn::module::{Module, ModuleMapper, Param};
use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::{Decoder, lora};
use std::path::{Path, PathBuf};

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base(name: &str) -> PathBuf {
    here().join("../../../shared/fixtures").join(name)
}

fn logits_of(m: &impl Decoder, ids: &[i64], device: &Device) -> Vec<f32> {
    let x = Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), device);
    m.forward(x)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn expected(dir: &Path) -> (Vec<i64>, Vec<f32>) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ids = v["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    let bytes = std::fs::read(dir.join("expected_logits.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("logits").unwrap();
    let vals = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (ids, vals)
}

#[test]
fn peft_made_adapters_give_peft_logits() {
    let device = Device::flex();
    for name in ["llama", "gpt2"] {
        let adapter = here().join("tests/peft").join(name);
        let (ids, want) = expected(&adapter);
        let ck = load_with_adapter(&base(name), Some(&adapter), &device).unwrap();
        let got = logits_of(&ck.model, &ids, &device);
        let diff = max_abs(&got, &want);
        // The adapter moves these logits by up to ~5 (expected.json), float noise is ~1e-5.
        assert!(diff < 1e-4, "{name}: max |didact - peft| = {diff}");
        let plain = load(&base(name), &device).unwrap();
        assert!(max_abs(&logits_of(&plain.model, &ids, &device), &want) > 0.5);
    }
}

fn spec(targets: &[&str]) -> LoraSpec {
    LoraSpec {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: targets.iter().map(|t| t.to_string()).collect(),
    }
}

/// Sets every adapter's B to small seeded values (a trained adapter's stand-in).
struct NonzeroB(u32);

impl ModuleMapper for NonzeroB {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dims = p.lazy_shape().dims::<D>();
        if D != 2 || p.adapter().is_some() || dims[0] != 4 {
            return p; // B is [r, out] with r = 4; the fixtures' weights are ≥ 64 rows
        }
        self.0 += 1;
        let k = self.0;
        p.map(|t| {
            let n = t.shape().num_elements();
            let vals: Vec<f32> = (0..n)
                .map(|i| (((i as u32 * 2654435761u32) ^ k) % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            Tensor::from_data(TensorData::new(vals, t.shape()), &t.device())
        })
    }
}

#[test]
fn didact_adapters_start_at_the_base_cover_the_targets_and_round_trip_through_peft_files() {
    let device = Device::flex();
    let tmp = std::env::temp_dir().join(format!("didact-lora-{}", std::process::id()));
    for (name, targets, n_modules) in [
        ("llama", vec!["q_proj", "down_proj"], 4),
        ("gpt2", vec!["c_attn", "c_proj"], 6),
    ] {
        let ck = load(&base(name), &device).unwrap();
        let ids: Vec<i64> = (1..20).collect();
        let before = logits_of(&ck.model, &ids, &device);
        let adapted = lora::attach(ck.model, &spec(&targets), 7).unwrap();
        assert_eq!(
            max_abs(&logits_of(&adapted, &ids, &device), &before),
            0.0,
            "{name}: B = 0 at init"
        );
        let adapted = adapted.map(&mut NonzeroB(0));
        let list = lora::adapters(&adapted).unwrap();
        assert_eq!(
            list.len(),
            n_modules,
            "{name}: one adapter per targeted weight"
        );
        assert!(
            list.iter()
                .all(|a| targets.iter().any(|t| a.module.ends_with(t)))
        );
        let want = logits_of(&adapted, &ids, &device);
        assert!(max_abs(&want, &before) > 1e-2, "{name}: B moved the logits");
        let dir = tmp.join(name);
        lora::save_adapter(&dir, &adapted, &spec(&targets), "base", name == "gpt2").unwrap();
        let back = load_with_adapter(&base(name), Some(&dir), &device).unwrap();
        let diff = max_abs(&logits_of(&back.model, &ids, &device), &want);
        assert!(diff < 1e-4, "{name}: saved and merged back: {diff}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn unknown_targets_and_mismatched_adapters_are_refused_by_name() {
    let device = Device::flex();
    let ck = load(&base("llama"), &device).unwrap();
    let err = lora::attach(ck.model, &spec(&["c_attn"]), 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`c_attn` matches no weight"), "{err}");
    let bad = LoraSpec {
        dropout: 0.1,
        ..spec(&["q_proj"])
    };
    assert!(
        lora::check_spec(&bad)
            .unwrap_err()
            .to_string()
            .contains("lora.dropout")
    );
    // A Llama adapter on GPT-2: its modules do not exist there.
    let err = load_with_adapter(
        &base("gpt2"),
        Some(&here().join("tests/peft/llama")),
        &device,
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("model.layers.0.mlp.down_proj"), "{err}");
}
