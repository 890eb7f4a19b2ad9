//! Bradley-Terry reward model (Ouyang et al. 2022; TRL `RewardTrainer`): the LM backbone with a
//! scalar head (`score`, d_model → 1, no bias, as transformers' `LlamaForSequenceClassification`)
//! read at each row's last non-padding token. Trained on (chosen, rejected) token rows with the
//! loss of `bt_loss.rs`; reports `rm/loss`, `rm/accuracy`, `rm/margin`.

use crate::bt_loss::bt_loss_tensor;
use crate::driver::{Batching, MicroLoss, drive};
use crate::error::{Result, TrainError};
use didact_core::OptimConfig;
use didact_model::burn;
use didact_model::burn::module::{Module, Param};
use didact_model::burn::nn::Linear;
use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::{Llama, Positions, WeightSource};

/// Name of the head's weight in `model.safetensors` (transformers' name).
pub const SCORE_WEIGHT: &str = "score.weight";

#[derive(Module, Debug)]
pub struct RewardModel {
    pub backbone: Llama,
    /// `[d_model, 1]` in burn's layout.
    pub score: Linear,
}

impl RewardModel {
    /// Attach a head to a backbone. `weight` is HF-shaped `[1, d_model]`; `None` draws it from
    /// N(0, 1/√(d_model+1)), seeded.
    pub fn new(
        backbone: Llama,
        d_model: usize,
        weight: Option<Vec<f32>>,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let w = match weight {
            Some(w) if w.len() == d_model => w,
            Some(w) => {
                return Err(TrainError::Config(format!(
                    "score.weight has {} values, expected d_model = {d_model}",
                    w.len()
                )));
            }
            None => {
                let std = 1.0 / ((d_model + 1) as f32).sqrt();
                didact_model::weights::RandomInit::new(seed, std)
                    .take(SCORE_WEIGHT, &[1, d_model])
                    .map_err(|e| TrainError::Config(e.to_string()))?
            }
        };
        let t = Tensor::<2>::from_data(TensorData::new(w, [1, d_model]), device).transpose(); // [D, 1]
        Ok(RewardModel {
            backbone,
            score: Linear {
                weight: Param::from_tensor(t),
                bias: None,
            },
        })
    }

    /// The head's weight, HF-shaped `[1, d_model]`, for saving.
    pub fn score_weight(&self) -> Vec<f32> {
        self.score
            .weight
            .val()
            .transpose()
            .into_data()
            .try_to_vec()
            .unwrap_or_default()
    }

    /// Rewards of right-padded rows.
    ///
    /// # Shapes
    /// - `tokens`: `[B, T]`, `last`: index of each row's last real token → `[B]`
    pub fn forward(&self, tokens: Tensor<2, Int>, last: &[usize]) -> Tensor<1> {
        let [b, _] = tokens.dims();
        let h = self.backbone.hidden(tokens, &Positions::causal(), None); // [B, T, D]
        let d = h.dims()[2];
        let idx: Vec<i64> = last
            .iter()
            .flat_map(|&l| std::iter::repeat_n(l as i64, d))
            .collect();
        let idx = Tensor::<3, Int>::from_data(TensorData::new(idx, [b, 1, d]), &h.device());
        let at_last = h.gather(1, idx).reshape([b, d]); // [B, D]
        self.score.forward(at_last).reshape([b]) // [B]
    }
}

/// Right-pad rows (each cut to its last `max_len` tokens, so a long dialogue keeps its reply).
fn pad_rows(
    rows: &[&[u32]],
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> (Tensor<2, Int>, Vec<usize>) {
    let cut: Vec<&[u32]> = rows
        .iter()
        .map(|r| &r[r.len().saturating_sub(max_len)..])
        .collect();
    let t = cut.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let mut ids = vec![pad_id as i64; rows.len() * t];
    let mut last = Vec::with_capacity(rows.len());
    for (i, r) in cut.iter().enumerate() {
        for (j, &x) in r.iter().enumerate() {
            ids[i * t + j] = x as i64;
        }
        last.push(r.len().max(1) - 1);
    }
    (
        Tensor::from_data(TensorData::new(ids, [rows.len(), t]), device),
        last,
    )
}

/// Reward of every row, in batches, without autodiff.
pub fn score_rows(
    rm: &RewardModel,
    rows: &[Vec<u32>],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(batch_size.max(1)) {
        let refs: Vec<&[u32]> = chunk.iter().map(|r| r.as_slice()).collect();
        let (ids, last) = pad_rows(&refs, max_len, pad_id, device);
        let r: Vec<f32> = rm
            .forward(ids, &last)
            .into_data()
            .try_to_vec()
            .unwrap_or_default();
        out.extend(r.into_iter().map(|x| x as f64));
    }
    out
}

/// Pairwise quality on held-out pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmEval {
    /// `rm/loss`: mean −log σ(r_c − r_r).
    pub loss: f64,
    /// `rm/accuracy`: share of pairs with r_c > r_r.
    pub accuracy: f64,
    /// `rm/margin`: mean r_c − r_r.
    pub margin: f64,
}

pub fn eval_rm(
    rm: &RewardModel,
    pairs: &[(Vec<u32>, Vec<u32>)],
    batch_size: usize,
    max_len: usize,
    pad_id: u32,
    device: &Device,
) -> RmEval {
    let chosen: Vec<Vec<u32>> = pairs.iter().map(|p| p.0.clone()).collect();
    let rejected: Vec<Vec<u32>> = pairs.iter().map(|p| p.1.clone()).collect();
    let rc = score_rows(rm, &chosen, batch_size, max_len, pad_id, device);
    let rr = score_rows(rm, &rejected, batch_size, max_len, pad_id, device);
    let n = pairs.len().max(1) as f64;
    RmEval {
        loss: crate::bt_loss::bt_loss(&rc, &rr, None, None),
        accuracy: rc.iter().zip(&rr).filter(|(a, b)| a > b).count() as f64 / n,
        margin: rc.iter().zip(&rr).map(|(a, b)| a - b).sum::<f64>() / n,
    }
}

/// Per-step training measurements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RmReport {
    pub step_losses: Vec<f64>,
    pub accuracies: Vec<f64>,
    pub margins: Vec<f64>,
    pub grad_norms: Vec<f64>,
    pub tokens: usize,
    pub seconds: f64,
}

/// Fit the reward model on (chosen, rejected) token rows. `opt.batch_size` counts pairs.
/// `center` adds TRL's `center_rewards_coefficient` term.
pub fn train_rm(
    rm: RewardModel,
    pairs: &[(Vec<u32>, Vec<u32>)],
    opt: &OptimConfig,
    center: Option<f64>,
    data: &Batching,
    device: &Device,
    mut on_step: impl FnMut(usize, f64),
) -> Result<(RewardModel, RmReport)> {
    let pairs: Vec<&(Vec<u32>, Vec<u32>)> = pairs
        .iter()
        .filter(|p| !p.0.is_empty() && !p.1.is_empty())
        .collect();
    if pairs.is_empty() {
        return Err(TrainError::NoData);
    }
    let n = (opt.batch_size * opt.grad_accum) as f64;
    let mut rep = RmReport::default();
    let (rm, driven) = drive(
        rm,
        pairs.len(),
        opt,
        data.seed,
        device,
        |model: &RewardModel, idx, m, ad| {
            let batch: Vec<&(Vec<u32>, Vec<u32>)> = idx[m].iter().map(|&i| pairs[i]).collect();
            let b = batch.len();
            let rows: Vec<&[u32]> = batch
                .iter()
                .map(|p| p.0.as_slice())
                .chain(batch.iter().map(|p| p.1.as_slice()))
                .collect();
            let (ids, last) = pad_rows(&rows, data.max_len, data.pad_id, ad);
            let tokens = last.iter().map(|l| l + 1).sum::<usize>();
            let r = model.forward(ids, &last); // [2B]
            let (rc, rr) = (r.clone().slice(0..b), r.slice(b..2 * b));
            let loss = bt_loss_tensor(rc.clone(), rr.clone(), None, center)
                .div_scalar(opt.grad_accum as f64);
            let rcv: Vec<f32> = rc.into_data().try_to_vec().unwrap_or_default();
            let rrv: Vec<f32> = rr.into_data().try_to_vec().unwrap_or_default();
            let (mut acc, mut margin) = (0.0, 0.0);
            for (a, c) in rcv.iter().zip(&rrv) {
                acc += (a > c) as u8 as f64;
                margin += (a - c) as f64;
            }
            MicroLoss {
                loss,
                tokens,
                log: (acc, margin),
            }
        },
        |step, loss, logs: Vec<(f64, f64)>| {
            rep.accuracies
                .push(logs.iter().map(|l| l.0).sum::<f64>() / n);
            rep.margins.push(logs.iter().map(|l| l.1).sum::<f64>() / n);
            on_step(step, loss);
        },
    )?;
    rep.step_losses = driven.step_losses;
    rep.grad_norms = driven.grad_norms;
    rep.tokens = driven.tokens;
    rep.seconds = driven.seconds;
    Ok((rm, rep))
}
