//! Device selection at the binary edge. Cargo features decide which backends exist:
//! `flex` (default, pure-Rust CPU), `ndarray` (CPU, for comparison), `cuda`, `tch` (LibTorch:
//! device `tch` = CUDA 0, `tch-cpu` = LibTorch's CPU kernels).

use crate::error::{ModelError, Result};
use burn::tensor::Device;

/// Names accepted by `[run] device` / `--device`.
pub const DEVICE_NAMES: &[&str] = &["cpu", "flex", "ndarray", "cuda", "tch", "tch-cpu"];

/// Resolve a device name. `cpu` is the default CPU backend of this build.
pub fn device_from_name(name: &str) -> Result<Device> {
    let unavailable = |feature: &str| {
        Err(ModelError::Config(format!(
            "device `{name}` needs didact built with `--features {feature}`"
        )))
    };
    match name {
        #[cfg(feature = "flex")]
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(all(not(feature = "flex"), feature = "ndarray"))]
        #[allow(deprecated)] // burn 0.22 deprecates burn-ndarray in favour of flex
        "cpu" => Ok(Device::ndarray()),
        #[cfg(not(feature = "flex"))]
        "flex" => unavailable("flex"),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(not(feature = "ndarray"))]
        "ndarray" => unavailable("ndarray"),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        "cuda" => unavailable("cuda"),
        // burn 0.22 deprecates burn-tch; it stays as the way to run on PyTorch's own kernels.
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Ok(Device::libtorch_cuda(0)),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch-cpu" => Ok(Device::libtorch()),
        #[cfg(not(feature = "tch"))]
        "tch" | "tch-cpu" => unavailable("tch"),
        other => Err(ModelError::Config(format!(
            "unknown device `{other}` (expected one of {})",
            DEVICE_NAMES.join(", ")
        ))),
    }
}
