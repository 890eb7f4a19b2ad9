//! A DPO run on a tiny model and tiny pairs (TRL `tests/test_dpo_trainer.py::test_train`
//! style): the loss decreases, `rewards/margins` grows, every trainable policy parameter
//! changes, and the reference log-probs — computed once from the starting model — are what the
//! unchanged starting model still gives.

use didact_model::LlamaConfig;
use didact_model::burn::tensor::Device;
use didact_model::checkpoint::named_tensors;
use didact_train::dpo_loss::{DpoLoss, DpoObjective};
use didact_train::{Batching, OptimConfig, TokenRow, reference_logps, train_dpo};

/// "a+b=" → chosen "(a+b)%10", rejected "(a+b+3)%10"; tokens 3..=12 digits, 13 '+', 14 '='.
fn pairs() -> Vec<(TokenRow, TokenRow)> {
    let mut out = vec![];
    for a in 0..5u32 {
        for b in 0..5u32 {
            let p = vec![3 + a, 13, 3 + b, 14];
            let row = |d: u32| TokenRow {
                ids: [p.clone(), vec![3 + d, 1]].concat(),
                n_prompt: 4,
            };
            out.push((row((a + b) % 10), row((a + b + 3) % 10)));
        }
    }
    out
}

fn opt(steps: usize) -> OptimConfig {
    OptimConfig {
        steps,
        batch_size: 8,
        grad_accum: 1,
        lr: 3e-3,
        warmup_steps: 2,
        min_lr_ratio: 0.1,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        grad_clip: 1.0,
        activation_checkpointing: false,
        lora: None,
        bf16: false,
    }
}

fn data() -> Batching {
    Batching {
        max_len: 32,
        pad_id: 0,
        seed: 5,
        pack: false,
    }
}

#[test]
fn dpo_learns_preferences_and_leaves_the_reference_alone() {
    let device = Device::flex();
    let cfg = LlamaConfig::new(16)
        .with_d_model(32)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_n_kv_heads(2)
        .with_max_seq_len(32);
    let policy = cfg.init(1, &device).unwrap();
    let reference = policy.clone();
    let before = named_tensors(&policy).unwrap();
    let rows = reference_logps(&reference, &pairs(), 8, 32, 0, &device);
    for loss in [
        DpoLoss::Sigmoid,
        DpoLoss::Ipo,
        DpoLoss::Hinge,
        DpoLoss::Robust,
    ] {
        let obj = DpoObjective {
            loss,
            beta: 0.5,
            label_smoothing: if loss == DpoLoss::Robust { 0.1 } else { 0.0 },
            rpo_alpha: 0.0,
        };
        let (trained, rep) = train_dpo(
            policy.clone(),
            &rows,
            &opt(40),
            &obj,
            &data(),
            &device,
            |_, _| {},
        )
        .unwrap();
        let n = rep.step_losses.len();
        let first: f64 = rep.step_losses[..5].iter().sum::<f64>() / 5.0;
        let last: f64 = rep.step_losses[n - 5..].iter().sum::<f64>() / 5.0;
        assert!(last < first, "{loss:?}: loss {first} -> {last}");
        let margin = |i: usize| rep.rewards_chosen[i] - rep.rewards_rejected[i];
        assert!(
            margin(n - 1) > margin(0) + 0.1,
            "{loss:?}: margin {} -> {}",
            margin(0),
            margin(n - 1)
        );
        assert!(
            rep.accuracies[n - 1] >= 0.75,
            "{loss:?}: accuracy {}",
            rep.accuracies[n - 1]
        );
        let after = named_tensors(&trained).unwrap();
        for ((name, _, a), (_, _, b)) in before.iter().zip(&after) {
            let diff = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(diff > 0.0, "{loss:?}: parameter {name} did not change");
        }
    }
    // The reference model was never touched: the cached log-probs are still what it computes.
    let again = reference_logps(&reference, &pairs(), 8, 32, 0, &device);
    assert_eq!(again, rows);
    let still = named_tensors(&reference).unwrap();
    assert_eq!(still, before);
}
