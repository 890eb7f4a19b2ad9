//! `LlamaConfig::nope` (`[model] positional = "none"`): without positional encoding the model
//! sees order only through the causal mask, so a one-layer model's last-position logits cannot
//! tell the earlier tokens' order apart (with RoPE they can); the option survives a checkpoint
//! round trip as `didact_nope` in config.json.

use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::{LlamaConfig, Tok, checkpoint};

fn last_logits(cfg: &LlamaConfig, tokens: Vec<i64>) -> Vec<f32> {
    let device = Device::flex();
    let model = cfg.init(7, &device).unwrap();
    let t = tokens.len();
    let x = Tensor::<2, Int>::from_data(TensorData::new(tokens, [1, t]), &device);
    let logits: Vec<f32> = model.forward(x).into_data().try_to_vec().unwrap();
    let v = cfg.vocab_size;
    logits[(t - 1) * v..].to_vec()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn without_positions_one_layer_cannot_see_the_order_of_earlier_tokens() {
    let base = LlamaConfig::new(20).with_n_layers(1).with_d_model(32);
    for (nope, order_matters) in [(true, false), (false, true)] {
        let cfg = base.clone().with_nope(nope);
        let a = last_logits(&cfg, vec![3, 9, 4, 11, 5]);
        let b = last_logits(&cfg, vec![11, 4, 9, 3, 5]);
        let d = max_diff(&a, &b);
        match order_matters {
            false => assert!(d < 1e-5, "NoPE: the last token attends to a set ({d})"),
            true => assert!(d > 1e-4, "RoPE: order changes the logits ({d})"),
        }
    }
}

#[test]
fn nope_is_saved_and_loaded() {
    let device = Device::flex();
    let tok = Tok::char_level("0123456789+=").unwrap();
    let cfg = LlamaConfig::new(tok.vocab_size())
        .with_d_model(32)
        .with_nope(true);
    let model = cfg.init(3, &device).unwrap();
    let dir = std::env::temp_dir().join(format!("didact-nope-{}", std::process::id()));
    checkpoint::save(&dir, &cfg, &model, &tok).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(json["didact_nope"], true);
    let back = checkpoint::load(&dir, &device).unwrap();
    assert!(back.config.nope);
    let x = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 4, 2, 7], [1, 4]), &device);
    let a: Vec<f32> = model.forward(x.clone()).into_data().try_to_vec().unwrap();
    let b: Vec<f32> = back.model.forward(x).into_data().try_to_vec().unwrap();
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).unwrap();
    // A RoPE model's config.json has no such key (plain HF Llama).
    let plain = checkpoint::config_to_hf_json(&cfg.clone().with_nope(false), &tok);
    assert!(plain.get("didact_nope").is_none());
}
