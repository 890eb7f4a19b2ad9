//! DPO loss variants and implicit rewards, as TRL 1.16 defines them (`DPOTrainer._compute_loss`).
//! With Δ = (π_c − ref_c) − (π_r − ref_r) over summed completion log-probs, β = beta,
//! ε = label_smoothing, σ = sigmoid:
//! - `sigmoid`: −log σ(βΔ) (ε is ignored, as in TRL 1.x)
//! - `ipo`: (Δ_avg − 1/(2β))², Δ_avg on length-averaged log-probs (each completion's own length)
//! - `hinge`: relu(1 − βΔ)
//! - `robust`: (−(1−ε) log σ(βΔ) + ε log σ(−βΔ)) / (1 − 2ε)
//!
//! rewards: chosen = β(π_c − ref_c), rejected = β(π_r − ref_r). The scalar f64 form serves
//! metrics and parity tests; the tensor form is what training differentiates. Both are tested
//! against ../shared/fixtures/losses.

use didact_model::burn::tensor::Tensor;
use didact_model::burn::tensor::activation::log_sigmoid;

pub use didact_core::DpoLoss;

/// Loss settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpoObjective {
    pub loss: DpoLoss,
    pub beta: f64,
    /// ε of the robust loss.
    pub label_smoothing: f64,
    /// Weight of an added NLL term on the chosen completions (TRL's `rpo_alpha`; Pang et al.
    /// 2024, iterative RPO). 0 = plain DPO. Not part of the per-pair losses above.
    pub rpo_alpha: f64,
}

/// One preference pair's log-probs (summed over completion tokens) and completion lengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairLogps {
    pub policy_chosen: f64,
    pub policy_rejected: f64,
    pub ref_chosen: f64,
    pub ref_rejected: f64,
    pub len_chosen: usize,
    pub len_rejected: usize,
}

fn log_sigmoid_f64(x: f64) -> f64 {
    // Stable: log σ(x) = min(x, 0) − log1p(exp(−|x|)).
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}

/// Per-pair loss (f64).
pub fn pair_loss(o: &DpoObjective, p: &PairLogps) -> f64 {
    let delta = (p.policy_chosen - p.ref_chosen) - (p.policy_rejected - p.ref_rejected);
    let z = o.beta * delta;
    match o.loss {
        DpoLoss::Sigmoid => -log_sigmoid_f64(z),
        DpoLoss::Ipo => {
            let avg = (p.policy_chosen - p.ref_chosen) / p.len_chosen.max(1) as f64
                - (p.policy_rejected - p.ref_rejected) / p.len_rejected.max(1) as f64;
            (avg - 1.0 / (2.0 * o.beta)).powi(2)
        }
        DpoLoss::Hinge => (1.0 - z).max(0.0),
        DpoLoss::Robust => {
            let e = o.label_smoothing;
            (-(1.0 - e) * log_sigmoid_f64(z) + e * log_sigmoid_f64(-z)) / (1.0 - 2.0 * e)
        }
    }
}

/// Implicit rewards `(chosen, rejected)` of one pair.
pub fn pair_rewards(o: &DpoObjective, p: &PairLogps) -> (f64, f64) {
    (
        o.beta * (p.policy_chosen - p.ref_chosen),
        o.beta * (p.policy_rejected - p.ref_rejected),
    )
}

/// Per-pair losses as a tensor `[B]`, differentiable through the policy log-probs.
///
/// # Shapes
/// every input `[B]`; `len_*` are completion token counts (only `ipo` reads them).
pub fn loss_tensor(
    o: &DpoObjective,
    policy_chosen: Tensor<1>,
    policy_rejected: Tensor<1>,
    ref_chosen: Tensor<1>,
    ref_rejected: Tensor<1>,
    len_chosen: Tensor<1>,
    len_rejected: Tensor<1>,
) -> Tensor<1> {
    let chosen = policy_chosen - ref_chosen;
    let rejected = policy_rejected - ref_rejected;
    match o.loss {
        DpoLoss::Ipo => {
            let avg = chosen / len_chosen.clamp_min(1.0) - rejected / len_rejected.clamp_min(1.0);
            (avg - 1.0 / (2.0 * o.beta)).powi_scalar(2)
        }
        _ => {
            let z = (chosen - rejected) * o.beta;
            match o.loss {
                DpoLoss::Sigmoid => log_sigmoid(z).neg(),
                DpoLoss::Hinge => (z.neg() + 1.0).clamp_min(0.0),
                DpoLoss::Robust => {
                    let e = o.label_smoothing;
                    (log_sigmoid(z.clone()) * (-(1.0 - e)) + log_sigmoid(z.neg()) * e)
                        / (1.0 - 2.0 * e)
                }
                DpoLoss::Ipo => unreachable!("handled above"),
            }
        }
    }
}
