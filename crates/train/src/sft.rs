//! Supervised fine-tuning with a completion-only loss, on the shared optimizer loop
//! (`driver.rs`: AdamW, warmup + cosine, clipping, accumulation, the non-finite stop). With
//! accumulation the loss of a window is the mean over all its completion tokens, so the result
//! equals one big batch. Also the held-out loss and per-row log-probs every caller scores with.

use crate::batch::{Batch, TokenRow, make_batch, make_packed_batch};
use crate::driver::{Batching, DriveReport, MicroLoss, drive};
use crate::error::{Result, TrainError};
use didact_core::OptimConfig;
use didact_model::Decoder;
use didact_model::burn::module::Module;
use didact_model::burn::tensor::activation::log_softmax;
use didact_model::burn::tensor::{Device, Int, Tensor};

/// What an SFT call measured: per-step losses (mean NLL per completion token) and gradient
/// norms, tokens, seconds.
pub type SftReport = DriveReport;

/// Sum of completion-token NLL over a batch, as a rank-1 tensor of one element.
///
/// # Shapes
/// - logits `[B, T, V]`, targets/mask `[B, T]` → `[1]`
pub fn batch_nll_sum<M: Decoder>(model: &M, batch: &Batch) -> Tensor<1> {
    let hidden = model.hidden(batch.inputs.clone(), &batch.positions(), None);
    let logits = model.logits(hidden); // [B, T, V]
    let logp = log_softmax(logits, 2); // [B, T, V]
    let picked = logp.gather(2, batch.targets.clone().unsqueeze_dim(2)); // [B, T, 1]
    let picked = picked.squeeze_dim::<2>(2); // [B, T]
    (picked * batch.mask.clone()).sum().neg()
}

/// Summed completion-token log-probability of every row (differentiable).
///
/// # Shapes
/// - logits `[B, T, V]`, targets/mask `[B, T]` → `[B]`
pub fn row_logp_sums<M: Decoder>(model: &M, batch: &Batch) -> Tensor<1> {
    logp_sums_of(model.forward(batch.inputs.clone()), batch)
}

/// Per-row summed completion-token log-probability from a batch's logits.
///
/// # Shapes
/// - logits `[B, T, V]`, targets/mask `[B, T]` → `[B]`
pub fn logp_sums_of(logits: Tensor<3>, batch: &Batch) -> Tensor<1> {
    let [b, t] = batch.inputs.dims();
    let logp = log_softmax(logits, 2)
        .gather(2, batch.targets.clone().unsqueeze_dim(2)) // [B, T, 1]
        .reshape([b, t]); // [B, T]
    (logp * batch.mask.clone()).sum_dim(1).reshape([b]) // [B]
}

/// Fine-tune `model` (on any device; training runs on `device.autodiff()`) and return the
/// trained model on the plain device. `on_step(step, loss)` is called after each optimizer step.
pub fn train_sft<M: Module + Decoder>(
    model: M,
    rows: &[TokenRow],
    opt: &OptimConfig,
    data: &Batching,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
) -> Result<(M, SftReport)> {
    let rows: Vec<&TokenRow> = rows.iter().filter(|r| r.n_target() > 0).collect();
    if rows.is_empty() {
        return Err(TrainError::NoData);
    }
    drive(
        model,
        rows.len(),
        opt,
        data.seed,
        device,
        |model, window, m, ad| {
            // The loss is normalised by the whole window's completion tokens.
            let window_tokens: usize = window
                .iter()
                .flatten()
                .map(|&i| rows[i].n_target_in(data.max_len))
                .sum();
            let micro: Vec<&TokenRow> = window[m].iter().map(|&i| rows[i]).collect();
            let batch = if data.pack {
                make_packed_batch(&micro, data.max_len, data.pad_id, ad)
            } else {
                make_batch(&micro, data.max_len, data.pad_id, ad)
            };
            MicroLoss {
                loss: batch_nll_sum(model, &batch).div_scalar(window_tokens.max(1) as f64),
                tokens: batch.n_tokens,
                log: (),
            }
        },
        |step, loss, _| on_step(step, loss),
    )
}

/// Held-out loss: total completion-token NLL / number of completion tokens, with no autodiff.
/// Returns `(mean_nll, n_tokens)`.
pub fn eval_loss<M: Decoder>(
    model: &M,
    rows: &[TokenRow],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> (f64, usize) {
    let rows: Vec<&TokenRow> = rows.iter().filter(|r| r.n_target() > 0).collect();
    let mut total = 0.0;
    let mut n = 0;
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = make_batch(chunk, max_len, pad_id, device);
        total += batch_nll_sum(model, &batch).into_scalar::<f32>() as f64;
        n += batch.n_target;
    }
    if n == 0 {
        return (f64::NAN, 0);
    }
    (total / n as f64, n)
}

/// Per-row summed completion log-probability and token count (for scoring and DPO).
pub fn row_logprobs<M: Decoder>(
    model: &M,
    rows: &[TokenRow],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<(f64, usize)> {
    row_logprobs_with(
        &|x| model.forward(x),
        rows,
        batch_size,
        max_len,
        pad_id,
        device,
    )
}

/// `row_logprobs` for any forward function (`[B, T]` ids → `[B, T, V]` logits).
pub fn row_logprobs_with(
    forward: &dyn Fn(Tensor<2, Int>) -> Tensor<3>,
    rows: &[TokenRow],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<(f64, usize)> {
    let mut out = Vec::with_capacity(rows.len());
    let refs: Vec<&TokenRow> = rows.iter().collect();
    for chunk in refs.chunks(batch_size.max(1)) {
        let batch = make_batch(chunk, max_len, pad_id, device);
        let sums = logp_sums_of(forward(batch.inputs.clone()), &batch);
        let masked: Vec<f32> = sums.into_data().try_to_vec().unwrap_or_default();
        for (row, s) in chunk.iter().zip(masked) {
            out.push((s as f64, row.n_target().min(max_len.saturating_sub(1))));
        }
    }
    out
}
