//! Bradley-Terry reward-model loss, as TRL 1.16's `RewardTrainer.compute_loss`:
//! mean(−log σ(r_c − r_r − m)) + c · mean((r_c + r_r)²), with m the per-pair margin (0 when
//! absent) and c the optional reward-centring coefficient. Scalar f64 form for metrics and
//! parity tests, tensor form for training; both tested against ../shared/fixtures/losses.

use didact_model::burn::tensor::Tensor;
use didact_model::burn::tensor::activation::log_sigmoid;

/// Mean loss over pairs (f64).
pub fn bt_loss(
    chosen: &[f64],
    rejected: &[f64],
    margin: Option<&[f64]>,
    center: Option<f64>,
) -> f64 {
    let n = chosen.len().max(1) as f64;
    let mut loss = 0.0;
    for i in 0..chosen.len() {
        let m = margin.map_or(0.0, |m| m[i]);
        let x = chosen[i] - rejected[i] - m;
        loss += -(x.min(0.0) - (-x.abs()).exp().ln_1p());
    }
    loss /= n;
    if let Some(c) = center {
        loss += c * chosen
            .iter()
            .zip(rejected)
            .map(|(a, b)| (a + b).powi(2))
            .sum::<f64>()
            / n;
    }
    loss
}

/// Mean loss as a scalar tensor `[1]`, differentiable through the rewards.
///
/// # Shapes
/// `chosen`, `rejected`, `margin`: `[B]`
pub fn bt_loss_tensor(
    chosen: Tensor<1>,
    rejected: Tensor<1>,
    margin: Option<Tensor<1>>,
    center: Option<f64>,
) -> Tensor<1> {
    let mut x = chosen.clone() - rejected.clone();
    if let Some(m) = margin {
        x = x - m;
    }
    let mut loss = log_sigmoid(x).neg().mean();
    if let Some(c) = center {
        loss = loss + (chosen + rejected).powi_scalar(2).mean() * c;
    }
    loss
}
