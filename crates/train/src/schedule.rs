//! Learning-rate schedule: linear warmup from 0 to the peak, then cosine decay to
//! `min_lr_ratio · peak` at the last step (the schedule of nanoGPT / HF `cosine_with_min_lr`).

/// Learning rate at optimizer step `step` (0-based) of `total`.
pub fn warmup_cosine(
    step: usize,
    total: usize,
    warmup: usize,
    peak: f64,
    min_lr_ratio: f64,
) -> f64 {
    let min_lr = peak * min_lr_ratio;
    if warmup > 0 && step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    if total <= warmup + 1 {
        return peak;
    }
    let progress = (step - warmup) as f64 / (total - warmup - 1) as f64;
    let progress = progress.clamp(0.0, 1.0);
    min_lr + 0.5 * (peak - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let lr = |s| warmup_cosine(s, 110, 10, 1e-3, 0.1);
        assert!((lr(0) - 1e-4).abs() < 1e-12);
        assert!((lr(9) - 1e-3).abs() < 1e-12);
        assert!((lr(10) - 1e-3).abs() < 1e-12, "peak right after warmup");
        assert!((lr(109) - 1e-4).abs() < 1e-12, "min at the last step");
        // Cosine midpoint: halfway between peak and min.
        let mid = warmup_cosine(10 + 50, 111, 10, 1e-3, 0.0);
        assert!((mid - 5e-4).abs() < 1e-12);
        for s in 10..109 {
            assert!(lr(s + 1) <= lr(s));
        }
    }
}
