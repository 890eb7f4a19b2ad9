//! The position options of didact's Llama (`[model] positional`, `rope_scaling`):
//! - `nope` ("none"): without positional encoding the model sees order only through the causal
//!   mask, so a one-layer model's last-position logits cannot tell the earlier tokens' order
//!   apart (with RoPE they can); saved as `didact_nope` in config.json.
//! - `coupled_zero` ("coupled", Cho et al. 2024): positions come from the tokens — a digit's
//!   index within its number — so in the reversed sum format the digits of one significance
//!   share a position at any length; decoding with the KV cache
//!   continues the positions exactly (same logits as the full forward); saved as
//!   `didact_coupled_zero`.
//! - `rope_linear_factor` (`rope_scaling`): HF's linear RoPE scaling, read from both config layouts.

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
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
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

/// Char ids as a char-level tokenizer over "+0123456789=" gives them: 3 = "+", 4..14 = digits.
fn ids(text: &str) -> Vec<i64> {
    text.chars()
        .map(|c| match c {
            '+' => 3,
            '=' => 14,
            d => 4 + d.to_digit(10).unwrap() as i64,
        })
        .collect()
}

fn coupled() -> LlamaConfig {
    LlamaConfig::new(16)
        .with_d_model(32)
        .with_n_layers(2)
        .with_coupled_zero(Some(4))
}

/// A coupled model's logits are the plain rotary model's (same weights) fed each digit's index
/// within its number as its position, 0 for `+` and `=`.
#[test]
fn coupled_positions_count_digits_within_each_number() {
    use didact_model::Positions;
    let device = Device::flex();
    let cfg = coupled();
    let model = cfg.init(5, &device).unwrap();
    let plain = cfg
        .clone()
        .with_coupled_zero(None)
        .init(5, &device)
        .unwrap();
    let text = ids("714+68=305");
    let t = text.len();
    let x = Tensor::<2, Int>::from_data(TensorData::new(text, [1, t]), &device);
    // Digit index within its number; "+" and "=" at 0: the units digits 7, 6 and 3 share
    // position 1 whatever the numbers' lengths.
    let want = vec![1i64, 2, 3, 0, 1, 2, 0, 1, 2, 3];
    let by_hand = Positions {
        ids: Some(Tensor::from_data(TensorData::new(want, [1, t]), &device)),
        start: 0,
        mask: None,
    };
    let a: Vec<f32> = model.forward(x.clone()).into_data().try_to_vec().unwrap();
    let h = plain.hidden(x, &by_hand, None);
    let b: Vec<f32> = plain.logits(h).into_data().try_to_vec().unwrap();
    assert_eq!(a, b, "coupled ids are the digit indices");
}

/// Decoding one token at a time over the KV cache continues the row's digit count: the logits
/// equal the full forward's at every step; in a left-padded batch each row generates what it
/// generates alone.
#[test]
fn coupled_positions_continue_across_the_kv_cache() {
    use didact_model::{KvCache, Positions};
    let device = Device::flex();
    let model = coupled().init(9, &device).unwrap();
    let text = ids("91+872=0738");
    let t = text.len();
    let full: Vec<f32> = model
        .forward(Tensor::from_data(
            TensorData::new(text.clone(), [1, t]),
            &device,
        ))
        .into_data()
        .try_to_vec()
        .unwrap();
    let mut cache = KvCache::new(2);
    let p = 7; // "91+872=" as the prompt
    let prompt = Tensor::<2, Int>::from_data(TensorData::new(text[..p].to_vec(), [1, p]), &device);
    let mut h = model.hidden(prompt, &Positions::causal(), Some(&mut cache));
    for i in p..=t {
        let step: Vec<f32> = model
            .logits(h.clone().narrow(1, h.dims()[1] - 1, 1))
            .into_data()
            .try_to_vec()
            .unwrap();
        let v = 16;
        let want = &full[(i - 1) * v..i * v];
        assert!(max_diff(&step, want) < 1e-4, "position {i}");
        if i == t {
            break;
        }
        let next = Tensor::<2, Int>::from_data(TensorData::new(vec![text[i]], [1, 1]), &device);
        let pos = Positions {
            ids: None,
            start: i,
            mask: None,
        };
        h = model.hidden(next, &pos, Some(&mut cache));
    }
    // Batched greedy decoding with left padding = each prompt alone.
    use didact_model::{SamplingParams, generate_batch};
    let prompts: Vec<Vec<u32>> = ["91+872=", "5+6=", "1234+9=", "=+"]
        .iter()
        .map(|p| ids(p).iter().map(|&x| x as u32).collect())
        .collect();
    let params = SamplingParams::greedy(6, None);
    let greedy = |ps: &[Vec<u32>]| {
        generate_batch(&model, 256, ps, &vec![0; ps.len()], &params, 0, &device).unwrap()
    };
    let together = greedy(&prompts);
    for (p, g) in prompts.iter().zip(&together) {
        assert_eq!(greedy(std::slice::from_ref(p))[0].tokens, g.tokens, "{p:?}");
    }
    // Saved and loaded, the option stays.
    let tok = Tok::char_level("+0123456789=").unwrap();
    assert_eq!(tok.encode("0").unwrap(), vec![4], "digits are ids 4..14");
    let dir = std::env::temp_dir().join(format!("didact-coupled-{}", std::process::id()));
    let cfg = coupled();
    checkpoint::save(&dir, &cfg, &model, &tok).unwrap();
    assert_eq!(
        checkpoint::load(&dir, &device).unwrap().config.coupled_zero,
        Some(4)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Linear RoPE scaling (HF `rope_scaling = {rope_type: "linear", factor}`): a factor-2 model at
/// positions 0, 2, 4, 6 is the plain model at 0, 1, 2, 3; the factor is written in HF's layout
/// and read from both the transformers 4.x (`rope_scaling`, `type` or `rope_type`) and 5.x
/// (`rope_parameters`) layouts.
#[test]
fn linear_rope_scaling_divides_positions_and_round_trips() {
    use didact_model::Positions;
    let device = Device::flex();
    let base = LlamaConfig::new(16).with_d_model(32).with_n_layers(2);
    let plain = base.init(4, &device).unwrap();
    let scaled_cfg = base.clone().with_rope_linear_factor(2.0);
    let scaled = scaled_cfg.init(4, &device).unwrap();
    let x = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 7, 3, 9], [1, 4]), &device);
    let at = |ids: Vec<i64>| Positions {
        ids: Some(Tensor::from_data(TensorData::new(ids, [1, 4]), &device)),
        start: 0,
        mask: None,
    };
    let a: Vec<f32> = plain
        .logits(plain.hidden(x.clone(), &at(vec![0, 1, 2, 3]), None))
        .into_data()
        .try_to_vec()
        .unwrap();
    let b: Vec<f32> = scaled
        .logits(scaled.hidden(x, &at(vec![0, 2, 4, 6]), None))
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
    let tok = Tok::char_level("0123456789").unwrap();
    let json = checkpoint::config_to_hf_json(&scaled_cfg, &tok);
    assert_eq!(json["rope_scaling"]["rope_type"], "linear");
    assert_eq!(json["rope_scaling"]["factor"], 2.0);
    let dir = std::env::temp_dir().join(format!("didact-rope-scaling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    for (layout, factor) in [
        (json.clone(), 2.0),
        (
            serde_json::json!({"rope_scaling": null, "rope_parameters":
                {"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0}}),
            4.0,
        ),
        (
            serde_json::json!({"rope_scaling": {"type": "linear", "factor": 8.0}}),
            8.0,
        ),
        (serde_json::json!({"rope_scaling": null}), 1.0),
    ] {
        let mut v = json.clone();
        for (k, x) in layout.as_object().unwrap() {
            v[k] = x.clone();
        }
        std::fs::write(&path, v.to_string()).unwrap();
        let cfg = checkpoint::config_from_hf_json(&path).unwrap();
        assert_eq!(cfg.rope_linear_factor, factor, "{layout}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
