//! Reward-model smoke test (TRL `tests/test_reward_trainer.py::test_train` style): on pairs
//! whose chosen rows contain a marker token and rejected rows another, the Bradley-Terry loss
//! falls, held-out pairwise accuracy reaches 1, every parameter (backbone and head) changes, and
//! the head survives a save → load through `model.safetensors` as `score.weight`.

use didact_model::LlamaConfig;
use didact_model::Tok;
use didact_model::burn::tensor::Device;
use didact_model::checkpoint::{self, named_tensors};
use didact_train::{Batching, OptimConfig, RewardModel, eval_rm, score_rows, train_rm};

fn pairs(offset: u32) -> Vec<(Vec<u32>, Vec<u32>)> {
    (0..24u32)
        .map(|i| {
            let ctx: Vec<u32> = (0..5).map(|j| 3 + (i * 7 + j * 3 + offset) % 10).collect();
            (
                [ctx.clone(), vec![13, 1]].concat(),
                [ctx, vec![14, 1]].concat(),
            )
        })
        .collect()
}

fn opt() -> OptimConfig {
    OptimConfig {
        steps: 60,
        batch_size: 8,
        grad_accum: 1,
        lr: 3e-3,
        warmup_steps: 5,
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
        seed: 2,
        pack: false,
    }
}

#[test]
fn reward_model_learns_and_round_trips() {
    let device = Device::flex();
    let cfg = LlamaConfig::new(17)
        .with_d_model(32)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_n_kv_heads(2)
        .with_max_seq_len(32);
    let rm = RewardModel::new(cfg.init(1, &device).unwrap(), 32, None, 9, &device).unwrap();
    let before = named_tensors(&rm.backbone).unwrap();
    let head_before = rm.score_weight();
    let held_out = pairs(5);
    let e0 = eval_rm(&rm, &held_out, 8, 32, 0, &device);
    let (rm, rep) = train_rm(rm, &pairs(0), &opt(), None, &data(), &device, |_, _| {}).unwrap();
    let e1 = eval_rm(&rm, &held_out, 8, 32, 0, &device);
    assert!(
        e1.loss < 0.5 * e0.loss,
        "rm/loss {} -> {}",
        e0.loss,
        e1.loss
    );
    assert_eq!(e1.accuracy, 1.0, "held-out rm/accuracy {}", e1.accuracy);
    assert!(e1.margin > e0.margin);
    assert!(rep.step_losses.last().unwrap() < &rep.step_losses[0]);
    // Every backbone tensor the reward reaches changed (the LM head is not on the reward path).
    for ((name, _, a), (_, _, b)) in before.iter().zip(&named_tensors(&rm.backbone).unwrap()) {
        if name == "lm_head.weight" {
            assert_eq!(
                a, b,
                "lm_head is not used by the reward and must not change"
            );
            continue;
        }
        assert!(
            a.iter().zip(b).any(|(x, y)| x != y),
            "{name} did not change"
        );
    }
    assert_ne!(rm.score_weight(), head_before);

    // Save as HF LlamaForSequenceClassification-style tensors and load back: same rewards.
    let dir = std::env::temp_dir().join(format!("didact-rm-{}", std::process::id()));
    let tok = Tok::char_level("0123456789+-*=").unwrap();
    checkpoint::save_with_extra(
        &dir,
        &cfg,
        &rm.backbone,
        &tok,
        vec![("score.weight".into(), vec![1, 32], rm.score_weight())],
    )
    .unwrap();
    let back = checkpoint::load(&dir, &device).unwrap().model;
    let (shape, w) = checkpoint::read_tensor(&dir, "score.weight").unwrap();
    assert_eq!(shape, vec![1, 32]);
    let rm2 = RewardModel::new(back, 32, Some(w), 0, &device).unwrap();
    let rows: Vec<Vec<u32>> = held_out.iter().map(|p| p.0.clone()).collect();
    assert_eq!(
        score_rows(&rm, &rows, 8, 32, 0, &device),
        score_rows(&rm2, &rows, 8, 32, 0, &device)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
