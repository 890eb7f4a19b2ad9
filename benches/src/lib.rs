//! didact-benches: the CPU backends the criterion benches compare, over the reference
//! workload of `didact_conformance::workload` (shared with `didact doctor`'s throughput probe).

pub use didact_conformance::workload::*;
use didact_model::burn::tensor::Device;

/// The backends compared: flex and ndarray always, and LibTorch's CPU kernels (`tch-cpu`)
/// when the build has `--features didact-model/tch` (benches/compare.py `--tch`).
pub fn devices() -> Vec<(&'static str, Device)> {
    // burn 0.22 marks burn-ndarray deprecated in favour of flex; it is kept here as the
    // comparison the ARCHITECTURE.md backend choice rests on.
    #[allow(deprecated)]
    let ndarray = Device::ndarray();
    let mut out = vec![("flex", Device::flex()), ("ndarray", ndarray)];
    if let Ok(tch) = didact_model::device::probe("tch-cpu") {
        out.push(("tch-cpu", tch));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_runs_on_both_backends() {
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
