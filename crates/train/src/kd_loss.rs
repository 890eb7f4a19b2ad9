//! Token-level distillation losses, as TRL 1.16 defines them
//! (`GKDTrainer.generalized_jsd_loss`; Agarwal et al. 2024, "On-policy distillation of language
//! models", eq. 1). With S and T the student's and the teacher's next-token distributions
//! (both from logits / temperature) and M = β·T + (1−β)·S:
//! - β = 0: KL(T‖S) — forward KL, Hinton KD (TRL multiplies by nothing: no T² factor);
//! - β = 1: KL(S‖T) — reverse KL (mode seeking);
//! - 0 < β < 1: β·KL(T‖M) + (1−β)·KL(S‖M) — the generalized Jensen-Shannon divergence.
//!
//! The divergence is summed over the vocabulary at each position and averaged over the
//! loss-bearing positions (TRL's `batchmean` with -100 labels). A teacher that only gives the
//! top-k of its distribution (an API) is compared on k + 1 buckets: the k tokens, and one bucket
//! for the rest of the vocabulary, whose mass is 1 − Σ top-k for each side ([`bucketed`]); by
//! the data-processing inequality that divergence is a lower bound on the full one, and it is
//! exact when the rest carries no mass. Tested against TRL on `tests/kd/gkd.json`, made by the
//! committed `tests/kd/make_fixture.py`.

use didact_model::burn::tensor::activation::log_softmax;
use didact_model::burn::tensor::{Int, Tensor};

/// Smallest probability a bucket or a zero-mass token is given before its log is taken (an
/// oracle's impossible outcomes, a top-k that already covers all the mass).
pub const MIN_PROB: f64 = 1e-12;

/// Which divergence, and at which temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdObjective {
    /// 0 = forward KL, 1 = reverse KL, between: generalized JSD.
    pub beta: f64,
    pub temperature: f64,
}

/// Per-position divergence between two distributions given as log-probs over the same last
/// axis (the vocabulary, or k + 1 buckets).
///
/// # Shapes
/// - `student`, `teacher`: `[B, T, N]` log-probs → `[B, T]`
pub fn divergence(student: Tensor<3>, teacher: Tensor<3>, beta: f64) -> Tensor<2> {
    let [b, t, _] = student.dims();
    // F.kl_div(input, target, log_target=True) = exp(target) · (target − input)
    let kl = |target: Tensor<3>, input: Tensor<3>| target.clone().exp() * (target - input);
    let per_token = if beta <= 0.0 {
        kl(teacher, student)
    } else if beta >= 1.0 {
        kl(student, teacher)
    } else {
        let a = student.clone().add_scalar((1.0 - beta).ln());
        let c = teacher.clone().add_scalar(beta.ln());
        let hi = a.clone().max_pair(c.clone());
        let mixture = hi.clone() + ((a - hi.clone()).exp() + (c - hi).exp()).log();
        kl(teacher, mixture.clone()).mul_scalar(beta) + kl(student, mixture).mul_scalar(1.0 - beta)
    };
    per_token.sum_dim(2).reshape([b, t])
}

/// Log-probs of logits at a temperature.
///
/// # Shapes
/// - `[B, T, V]` → `[B, T, V]`
pub fn tempered_logp(logits: Tensor<3>, temperature: f64) -> Tensor<3> {
    let scaled = if temperature == 1.0 {
        logits
    } else {
        logits.div_scalar(temperature)
    };
    log_softmax(scaled, 2)
}

/// `log(1 − Σ exp(logp))` over the last axis, the rest of the mass, at least [`MIN_PROB`].
///
/// # Shapes
/// - `[B, T, K]` → `[B, T, 1]`
fn rest(logp: Tensor<3>) -> Tensor<3> {
    logp.exp()
        .sum_dim(2)
        .neg()
        .add_scalar(1.0)
        .clamp_min(MIN_PROB)
        .log()
}

/// The student's full log-probs and a top-k teacher's, as k + 1 buckets each: the k
/// candidates, then the rest of the vocabulary.
///
/// # Shapes
/// - `student`: `[B, T, V]`, `ids`: `[B, T, K]`, `teacher`: `[B, T, K]` → two `[B, T, K + 1]`
pub fn bucketed(
    student: Tensor<3>,
    ids: Tensor<3, Int>,
    teacher: Tensor<3>,
) -> (Tensor<3>, Tensor<3>) {
    let picked = student.gather(2, ids); // [B, T, K]
    let s = Tensor::cat(vec![picked.clone(), rest(picked)], 2);
    let teacher = teacher.clamp_min(MIN_PROB.ln());
    let t = Tensor::cat(vec![teacher.clone(), rest(teacher)], 2);
    (s, t)
}

/// TRL's reduction: the masked per-position divergences summed, over `denominator` positions.
///
/// # Shapes
/// - `per_token`, `mask`: `[B, T]` → `[1]`
pub fn masked_mean(per_token: Tensor<2>, mask: Tensor<2>, denominator: usize) -> Tensor<1> {
    (per_token * mask)
        .sum()
        .div_scalar(denominator.max(1) as f64)
}

/// `GKDTrainer.generalized_jsd_loss(student, teacher, labels, beta, temperature)` with
/// reduction "batchmean": full logits on both sides.
///
/// # Shapes
/// - logits `[B, T, V]`, `mask` `[B, T]` (1 = a labelled position) → `[1]`
pub fn generalized_jsd_loss(
    student_logits: Tensor<3>,
    teacher_logits: Tensor<3>,
    mask: Tensor<2>,
    o: &KdObjective,
) -> Tensor<1> {
    let n = mask.clone().sum().into_scalar::<f32>().round() as usize;
    let s = tempered_logp(student_logits, o.temperature);
    let t = tempered_logp(teacher_logits, o.temperature);
    masked_mean(divergence(s, t, o.beta), mask, n)
}
