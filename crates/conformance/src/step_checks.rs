//! Checks of whole training steps and of sampling on a small seeded Llama (the same weights on
//! every device: they are drawn on the host from a ChaCha stream). One SFT step, two LoRA SFT
//! steps, one DPO step and one reward-model step (loss, global gradient norm, every updated
//! parameter) are compared with flex; bf16 mixed-precision SFT must start within bf16
//! rounding of flex's f32 loss and learn; seeded temperature sampling must repeat exactly on
//! its device and not depend on the batch.

use crate::outcome::Outcome;
use didact_model::burn::tensor::{DType, Device};
use didact_model::checkpoint::named_tensors;
use didact_model::{Llama, LlamaConfig, SamplingParams, generate_batch, row_seed};
use didact_train::dpo_loss::{DpoLoss, DpoObjective};
use didact_train::reward::RewardModel;
use didact_train::{
    Batching, OptimConfig, TokenRow, reference_logps, train_dpo, train_rm, train_sft,
};

/// Loss and gradient norm: relative difference to flex.
pub const STEP_REL_TOL: f64 = 1e-4;
/// Parameters after the step: ‖θ_device − θ_flex‖ / ‖θ_flex − θ_0‖ (the update's relative
/// error; one AdamW step moves every parameter with a non-zero gradient by about lr).
pub const UPDATE_REL_TOL: f64 = 1e-3;

const VOCAB: usize = 48;

/// The model every step check starts from.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig::new(VOCAB)
        .with_d_model(32)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_n_kv_heads(2)
        .with_max_seq_len(32)
}

fn tiny_model(device: &Device) -> Result<Llama, String> {
    tiny_config().init(11, device).map_err(|e| e.to_string())
}

/// Rows of different lengths (so batches are right-padded) drawn from a fixed LCG.
pub fn tiny_rows(n: usize) -> Vec<TokenRow> {
    let mut x: u64 = 12345;
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    (0..n)
        .map(|_| {
            let len = 6 + next(14) as usize;
            let n_prompt = 2 + next(3) as usize;
            let ids = (0..len)
                .map(|_| 3 + next(VOCAB as u64 - 3) as u32)
                .collect();
            TokenRow { ids, n_prompt }
        })
        .collect()
}

fn opt() -> OptimConfig {
    OptimConfig {
        steps: 1,
        batch_size: 8,
        grad_accum: 1,
        lr: 1e-3,
        warmup_steps: 0,
        min_lr_ratio: 1.0,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.999,
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
        seed: 3,
        pack: false,
    }
}

/// What one step produced.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub loss: f64,
    pub grad_norm: f64,
    /// Every parameter after the step, and before it (identical on every device).
    pub after: Vec<f32>,
    pub before: Vec<f32>,
    /// DPO: the cached reference log-probs of every pair (chosen, rejected).
    pub reference: Vec<f64>,
}

fn flat(model: &Llama) -> Result<Vec<f32>, String> {
    Ok(named_tensors(model)
        .map_err(|e| e.to_string())?
        .into_iter()
        .flat_map(|(_, _, v)| v)
        .collect())
}

/// One SFT step on `tiny_rows`.
pub fn sft_step(device: &Device) -> Result<StepResult, String> {
    sft_steps(device, &opt())
}

/// Two LoRA SFT steps (rank 4 on q/v/down projections; two so that A moves too, B being 0 at
/// the start); the parameters compared are the merged weights.
pub fn lora_step(device: &Device) -> Result<StepResult, String> {
    let lora = didact_core::LoraSpec {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: ["q_proj", "v_proj", "down_proj"].map(String::from).to_vec(),
    };
    let opt = OptimConfig {
        steps: 2,
        lora: Some(lora),
        ..opt()
    };
    sft_steps(device, &opt)
}

/// bf16 mixed precision against flex's f32 step: the first loss within bf16 rounding
/// (`BF16_LOSS_TOL`), the weights still f32, and 30 steps learn (loss at most 0.8× the first).
pub fn bf16_sft(device: &Device, reference: &Result<StepResult, String>) -> Outcome {
    let want = match reference {
        Ok(w) => w.loss,
        Err(e) => return Outcome::Fail(format!("the flex reference failed: {e}")),
    };
    if !device.supports_dtype(DType::BF16) {
        return Outcome::Skip("no bf16 kernels on this device".into());
    }
    let opt = OptimConfig {
        steps: 30,
        lr: 3e-3,
        bf16: true,
        ..opt()
    };
    let run = || -> Result<(Llama, Vec<f64>), String> {
        let model = tiny_model(device)?;
        let (m, rep) = train_sft(model, &tiny_rows(12), &opt, &data(), device, |_, _| {})
            .map_err(|e| e.to_string())?;
        Ok((m, rep.step_losses))
    };
    let (model, losses) = match run() {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e),
    };
    let dtype = model.embed_tokens.weight.val().dtype();
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    let diff = rel(first, want);
    let detail = format!(
        "first loss {first:.5} vs flex f32 {want:.5} (rel {diff:.1e} ≤ {BF16_LOSS_TOL:.0e}), \
         after 30 steps {last:.4}, weights {dtype:?}"
    );
    match diff <= BF16_LOSS_TOL && last < 0.8 * first && dtype == DType::F32 {
        true => Outcome::Pass(detail),
        false => Outcome::Fail(detail),
    }
}

/// bf16 keeps 8 bits of mantissa (relative rounding 2⁻⁸ ≈ 4e-3 per op).
pub const BF16_LOSS_TOL: f64 = 2e-2;

fn sft_steps(device: &Device, opt: &OptimConfig) -> Result<StepResult, String> {
    let model = tiny_model(device)?;
    let before = flat(&model)?;
    let (model, rep) = train_sft(model, &tiny_rows(12), opt, &data(), device, |_, _| {})
        .map_err(|e| e.to_string())?;
    Ok(StepResult {
        loss: rep.step_losses[0],
        grad_norm: rep.grad_norms[0],
        after: flat(&model)?,
        before,
        reference: vec![],
    })
}

/// One DPO step (sigmoid, β = 0.1, plus the RPO NLL term) on pairs sharing a prompt, with the
/// reference log-probs computed by the starting model on the same device.
pub fn dpo_step(device: &Device) -> Result<StepResult, String> {
    let model = tiny_model(device)?;
    let before = flat(&model)?;
    let rows = tiny_rows(16);
    let pairs: Vec<(TokenRow, TokenRow)> = rows
        .chunks(2)
        .map(|c| {
            let mut rejected = c[1].clone();
            rejected.ids[..c[0].n_prompt].copy_from_slice(&c[0].ids[..c[0].n_prompt]);
            rejected.n_prompt = c[0].n_prompt;
            (c[0].clone(), rejected)
        })
        .collect();
    let with_ref = reference_logps(&model, &pairs, 8, 32, 0, device);
    let reference = with_ref
        .iter()
        .flat_map(|p| [p.ref_chosen, p.ref_rejected])
        .collect();
    let obj = DpoObjective {
        loss: DpoLoss::Sigmoid,
        beta: 0.1,
        label_smoothing: 0.0,
        rpo_alpha: 0.5,
    };
    let (model, rep) = train_dpo(model, &with_ref, &opt(), &obj, &data(), device, |_, _| {})
        .map_err(|e| e.to_string())?;
    Ok(StepResult {
        loss: rep.step_losses[0],
        grad_norm: rep.grad_norms[0],
        after: flat(&model)?,
        before,
        reference,
    })
}

/// One Bradley-Terry reward-model step (backbone + score head read at each row's last token,
/// a gather over the sequence) on (chosen, rejected) rows of different lengths.
pub fn rm_step(device: &Device) -> Result<StepResult, String> {
    let rm =
        RewardModel::new(tiny_model(device)?, 32, None, 5, device).map_err(|e| e.to_string())?;
    let flat_rm = |rm: &RewardModel| -> Result<Vec<f32>, String> {
        let mut v = flat(&rm.backbone)?;
        v.extend(rm.score_weight());
        Ok(v)
    };
    let before = flat_rm(&rm)?;
    let rows = tiny_rows(16);
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = rows
        .chunks(2)
        .map(|c| (c[0].ids.clone(), c[1].ids.clone()))
        .collect();
    let (rm, rep) = train_rm(rm, &pairs, &opt(), Some(0.01), &data(), device, |_, _| {})
        .map_err(|e| e.to_string())?;
    Ok(StepResult {
        loss: rep.step_losses[0],
        grad_norm: rep.grad_norms[0],
        after: flat_rm(&rm)?,
        before,
        reference: vec![],
    })
}

fn rel(a: f64, b: f64) -> f64 {
    let d = (a - b).abs() / b.abs().max(1e-12);
    if d.is_nan() { f64::INFINITY } else { d }
}

fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// The device's step against flex's.
pub fn compare_step(
    reference: &Result<StepResult, String>,
    got: Result<StepResult, String>,
) -> Outcome {
    let want = match reference {
        Ok(w) => w,
        Err(e) => return Outcome::Fail(format!("the flex reference failed: {e}")),
    };
    let got = match got {
        Ok(g) => g,
        Err(e) => return Outcome::Fail(e),
    };
    if got.before != want.before {
        return Outcome::Fail("the seeded initial weights differ from flex's".into());
    }
    if got.after.len() != want.after.len() {
        return Outcome::Fail("parameter count differs from flex's".into());
    }
    let loss = rel(got.loss, want.loss);
    let gn = rel(got.grad_norm, want.grad_norm);
    let diff = norm(
        got.after
            .iter()
            .zip(&want.after)
            .map(|(a, b)| (a - b) as f64),
    );
    let step = norm(
        want.after
            .iter()
            .zip(&want.before)
            .map(|(a, b)| (a - b) as f64),
    );
    let upd = if diff.is_nan() {
        f64::INFINITY
    } else {
        diff / step.max(1e-30)
    };
    let refs = got
        .reference
        .iter()
        .zip(&want.reference)
        .map(|(a, b)| rel(*a, *b))
        .fold(0.0, f64::max);
    let mut detail = format!(
        "vs flex: loss {:.6} (rel {loss:.1e}), grad norm {:.5} (rel {gn:.1e}), update rel {upd:.1e}",
        got.loss, got.grad_norm
    );
    if !want.reference.is_empty() {
        detail.push_str(&format!(", reference logps rel {refs:.1e}"));
    }
    detail.push_str(&format!(
        " (≤ {STEP_REL_TOL:.0e}, {STEP_REL_TOL:.0e}, {UPDATE_REL_TOL:.0e})"
    ));
    let ok = loss <= STEP_REL_TOL
        && gn <= STEP_REL_TOL
        && upd <= UPDATE_REL_TOL
        && refs <= STEP_REL_TOL
        && got.reference.len() == want.reference.len();
    Outcome::check(ok, detail)
}

/// Temperature sampling with per-row seeds: the same twice, and each row the same alone as in
/// a left-padded batch.
pub fn seeded_sampling(device: &Device) -> Outcome {
    let model = match tiny_model(device) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(e),
    };
    let prompts: Vec<Vec<u32>> = tiny_rows(6)
        .into_iter()
        .map(|r| r.ids[..r.n_prompt + 2].to_vec())
        .collect();
    let seeds: Vec<u64> = (0..prompts.len() as u64)
        .map(|i| row_seed(7, 0, i))
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 0.95,
        max_new_tokens: 12,
        stop_token: None,
    };
    let run = |ps: &[Vec<u32>], ss: &[u64]| -> Result<Vec<Vec<u32>>, String> {
        Ok(generate_batch(&model, 32, ps, ss, &params, 0, device)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|g| g.tokens)
            .collect())
    };
    let (a, b) = match (run(&prompts, &seeds), run(&prompts, &seeds)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Outcome::Fail(e),
    };
    if a != b {
        return Outcome::Fail("two runs with the same seeds gave different samples".into());
    }
    for (i, p) in prompts.iter().enumerate() {
        match run(std::slice::from_ref(p), &seeds[i..=i]) {
            Ok(s) if s[0] == a[i] => {}
            Ok(s) => {
                return Outcome::Fail(format!(
                    "row {i}: {:?} alone, {:?} in the batch",
                    s[0], a[i]
                ));
            }
            Err(e) => return Outcome::Fail(e),
        }
    }
    Outcome::Pass(format!(
        "{} rows × 12 tokens at T = 1, top-p 0.95: repeatable, and each row alone = in the batch",
        prompts.len()
    ))
}
