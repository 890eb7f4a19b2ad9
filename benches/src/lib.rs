//! didact-benches: the CPU backends the criterion benches compare, over the reference
//! workload of `didact_conformance::workload` (shared with `didact doctor`'s throughput probe).

pub use didact_conformance::workload::*;
use didact_model::burn::tensor::Device;

/// The backends compared: flex always; ndarray when the build has `--features ndarray`, and
/// LibTorch's CPU kernels (`tch-cpu`) when it has `--features didact-model/tch` (both turned on
/// by benches/compare.py).
pub fn devices() -> Vec<(&'static str, Device)> {
    let mut out = vec![("flex", Device::flex())];
    // burn 0.22 deprecates burn-ndarray in favour of flex; it stays a column of the comparison.
    for name in ["ndarray", "tch-cpu"] {
        if let Ok(device) = didact_model::device::probe(name) {
            out.push((name, device));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_runs_on_every_compiled_in_backend() {
        let small = config().with_n_layers(1).with_d_model(64);
        for (_, device) in devices() {
            let model = small.init(0, &device).unwrap();
            let (model, n) = train_steps(model, &rows(BATCH), 1, &device);
            assert_eq!(n, BATCH * SEQ);
            assert_eq!(sample(&model, &device), BATCH * NEW);
            let pairs = dpo_pairs(BATCH / 2, &model, &device);
            assert_eq!(dpo_steps(model, &pairs, 1, &device).1, BATCH * SEQ);
        }
    }
}
