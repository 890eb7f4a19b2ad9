//! The reference workload: the shape (vocab 512, d_model 256, 4 layers, 4 heads / 2 KV heads,
//! sequence 128, batch 16) and the measured jobs — SFT optimizer steps, DPO steps on cached
//! reference log-probs and KV-cached sampling. The criterion benches (`benches/`), the PyTorch
//! scripts in `benches/reference/` (same shape, same jobs) and `didact doctor`'s throughput
//! probe all run exactly this.

use didact_model::burn::tensor::Device;
use didact_model::{Llama, LlamaConfig, SamplingParams, generate_all};
use didact_train::dpo_loss::{DpoLoss, DpoObjective};
use didact_train::{
    Batching, OptimConfig, PairRow, TokenRow, reference_logps, train_dpo, train_sft,
};

pub const VOCAB: usize = 512;
pub const SEQ: usize = 128;
pub const BATCH: usize = 16;
/// Sampling: prompt length and new tokens (prompt + new = SEQ).
pub const PROMPT: usize = 16;
pub const NEW: usize = SEQ - PROMPT;

pub fn config() -> LlamaConfig {
    LlamaConfig::new(VOCAB)
        .with_d_model(256)
        .with_n_layers(4)
        .with_n_heads(4)
        .with_n_kv_heads(2)
        .with_max_seq_len(SEQ)
}

/// Deterministic pseudo-random token rows of exactly `SEQ` tokens; the loss covers all but
/// the first token (as a causal-LM step in the reference does).
pub fn rows(n: usize) -> Vec<TokenRow> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            let ids = (0..SEQ)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    3 + (x % (VOCAB as u64 - 3)) as u32
                })
                .collect();
            TokenRow { ids, n_prompt: 1 }
        })
        .collect()
}

pub fn sft_config(steps: usize) -> OptimConfig {
    OptimConfig {
        steps,
        batch_size: BATCH,
        grad_accum: 1,
        lr: 1e-4,
        warmup_steps: 0,
        min_lr_ratio: 1.0,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        grad_clip: 1.0,
        activation_checkpointing: false,
        lora: None,
        bf16: false,
    }
}

/// Rows of `SEQ` tokens, pad 0, data order seed 0.
pub fn batching() -> Batching {
    Batching {
        max_len: SEQ,
        pad_id: 0,
        seed: 0,
        pack: false,
    }
}

/// `steps` optimizer steps on `BATCH × SEQ` tokens each; returns the model and tokens trained.
pub fn train_steps(
    model: Llama,
    rows: &[TokenRow],
    steps: usize,
    device: &Device,
) -> (Llama, usize) {
    let (model, _) = train_sft(
        model,
        rows,
        &sft_config(steps),
        &batching(),
        device,
        |_, _| {},
    )
    .expect("train");
    (model, steps * BATCH * SEQ)
}

/// Preference pairs at the reference shape: `BATCH / 2` pairs per step (so a step processes
/// `BATCH × SEQ` tokens, like an SFT step), prompt `PROMPT` tokens, reference log-probs cached.
pub fn dpo_pairs(n: usize, reference: &Llama, device: &Device) -> Vec<PairRow> {
    let rows = rows(2 * n);
    let pairs: Vec<(TokenRow, TokenRow)> = rows
        .chunks(2)
        .map(|c| {
            let mut rejected = c[1].clone();
            rejected.ids[..PROMPT].copy_from_slice(&c[0].ids[..PROMPT]);
            let t = |r: &TokenRow| TokenRow {
                ids: r.ids.clone(),
                n_prompt: PROMPT,
            };
            (t(&c[0]), t(&rejected))
        })
        .collect();
    reference_logps(reference, &pairs, BATCH, SEQ, 0, device)
}

/// `steps` DPO steps (sigmoid loss, β 0.1); returns the model and tokens processed.
pub fn dpo_steps(model: Llama, pairs: &[PairRow], steps: usize, device: &Device) -> (Llama, usize) {
    let mut opt = sft_config(steps);
    opt.batch_size = BATCH / 2;
    let obj = DpoObjective {
        loss: DpoLoss::Sigmoid,
        beta: 0.1,
        label_smoothing: 0.0,
        rpo_alpha: 0.0,
    };
    let (model, _) =
        train_dpo(model, pairs, &opt, &obj, &batching(), device, |_, _| {}).expect("dpo");
    (model, steps * BATCH * SEQ)
}

/// Sample `NEW` tokens for `BATCH` prompts (no stop token, so every row runs to the end);
/// returns the number of tokens generated.
pub fn sample(model: &Llama, device: &Device) -> usize {
    let prompts: Vec<Vec<u32>> = rows(BATCH)
        .into_iter()
        .map(|r| r.ids[..PROMPT].to_vec())
        .collect();
    let seeds: Vec<u64> = (0..BATCH as u64).collect();
    let params = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        max_new_tokens: NEW,
        stop_token: None,
    };
    let gens = generate_all(
        model,
        SEQ,
        &prompts,
        &seeds,
        &params,
        0,
        BATCH,
        device,
        |_| {},
    )
    .expect("generate");
    gens.iter().map(|g| g.tokens.len()).sum()
}
