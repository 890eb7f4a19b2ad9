//! Training smoke tests (TRL `test_sft_trainer` style): loss goes down on tiny data, every
//! trainable parameter changes, a non-finite loss stops training with a clear error.

use didact_model::burn::tensor::Device;
use didact_model::checkpoint::named_tensors;
use didact_model::{Llama, LlamaConfig, WeightSource};
use didact_train::{Batching, OptimConfig, TokenRow, TrainError, eval_loss, train_sft};

fn tiny() -> LlamaConfig {
    LlamaConfig::new(16)
        .with_d_model(32)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_n_kv_heads(2)
        .with_max_seq_len(32)
}

fn rows() -> Vec<TokenRow> {
    // "a+b=" → "(a+b)%10": prompt 4 tokens, completion 1 token + eos(1)
    let mut out = vec![];
    for a in 0..5u32 {
        for b in 0..5u32 {
            out.push(TokenRow {
                ids: vec![3 + a, 13, 3 + b, 14, 3 + (a + b) % 10, 1],
                n_prompt: 4,
            });
        }
    }
    out
}

fn cfg(steps: usize) -> OptimConfig {
    OptimConfig {
        steps,
        batch_size: 8,
        grad_accum: 2,
        lr: 3e-3,
        warmup_steps: 5,
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        grad_clip: 1.0,
    }
}

fn data() -> Batching {
    Batching {
        max_len: 32,
        pad_id: 0,
        seed: 3,
    }
}

#[test]
fn loss_decreases_and_every_parameter_changes() {
    let device = Device::flex();
    let model = tiny().init(1, &device).unwrap();
    let before = named_tensors(&model).unwrap();
    let (l0, n) = eval_loss(&model, &rows(), 8, 32, 0, &device);
    assert_eq!(n, 50);
    let (trained, report) =
        train_sft(model, &rows(), &cfg(60), &data(), &device, |_, _| {}).unwrap();
    let (l1, _) = eval_loss(&trained, &rows(), 8, 32, 0, &device);
    assert!(l1 < 0.5 * l0, "eval loss {l0} -> {l1}");
    assert!(report.final_loss() < report.step_losses[0]);
    assert_eq!(report.step_losses.len(), 60);
    let after = named_tensors(&trained).unwrap();
    for ((name, _, a), (_, _, b)) in before.iter().zip(&after) {
        assert_ne!(a, b, "parameter {name} did not change");
    }
}

#[test]
fn same_seed_same_trajectory() {
    let device = Device::flex();
    let run = || {
        let model = tiny().init(5, &device).unwrap();
        train_sft(model, &rows(), &cfg(5), &data(), &device, |_, _| {})
            .unwrap()
            .1
            .step_losses
    };
    assert_eq!(run(), run());
}

struct Poisoned(didact_model::weights::RandomInit);
impl WeightSource for Poisoned {
    fn take(&mut self, name: &str, shape: &[usize]) -> didact_model::Result<Vec<f32>> {
        let mut v = self.0.take(name, shape)?;
        if name == "model.norm.weight" {
            v[0] = f32::NAN;
        }
        Ok(v)
    }
}

#[test]
fn nan_loss_stops_training_with_a_message() {
    let device = Device::flex();
    let mut src = Poisoned(didact_model::weights::RandomInit::new(1, 0.02));
    let model = Llama::from_source(&tiny(), &mut src, &device).unwrap();
    let err = train_sft(model, &rows(), &cfg(3), &data(), &device, |_, _| {}).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { step: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("last good checkpoint"));
}
