//! Device selection at the binary edge. Cargo features decide which backends exist:
//! `flex` (default, pure-Rust CPU), `ndarray` (CPU, for comparison), `cuda` (burn's CubeCL
//! CUDA), `tch` (LibTorch: device `tch` = CUDA 0, `tch-cpu` = LibTorch's CPU kernels),
//! `vulkan` (burn's CubeCL over wgpu, pinned to Vulkan).
//! `known_devices` lists every name with whether this build has it, and `probe` checks that a
//! compiled-in device can really run a kernel here (a GPU feature on a machine without the
//! GPU panics inside the backend on first use; `probe` turns that into an error).

use crate::error::{ModelError, Result};
use burn::tensor::{Device, Tensor};

pub use didact_core::DEVICE_NAMES;

/// Resolve a device name. `cpu` is the default CPU backend of this build.
pub fn device_from_name(name: &str) -> Result<Device> {
    let unavailable = |feature: &str| {
        Err(ModelError::Device(format!(
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
        // wgpu pinned to Vulkan, on the adapter wgpu ranks first (a GPU, else a software driver
        // such as Mesa's llvmpipe; `CUBECL_WGPU_DEFAULT_DEVICE` overrides).
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "vulkan"))]
        "vulkan" => unavailable("vulkan"),
        other => Err(ModelError::Device(format!(
            "unknown device `{other}` (expected one of {})",
            DEVICE_NAMES.join(", ")
        ))),
    }
}

/// A device name this binary knows, and whether this build carries its backend.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownDevice {
    /// The `--device` name.
    pub name: &'static str,
    /// What runs it.
    pub backend: &'static str,
    /// The cargo feature that compiles it in.
    pub feature: &'static str,
    pub compiled: bool,
}

/// Every device name (except the `cpu` alias), in the order the conformance suite runs them.
pub fn known_devices() -> Vec<KnownDevice> {
    let d = |name, backend, feature, compiled| KnownDevice {
        name,
        backend,
        feature,
        compiled,
    };
    vec![
        d(
            "flex",
            "burn-flex (pure Rust)",
            "flex",
            cfg!(feature = "flex"),
        ),
        d(
            "ndarray",
            "burn-ndarray",
            "ndarray",
            cfg!(feature = "ndarray"),
        ),
        d("tch-cpu", "LibTorch CPU", "tch", cfg!(feature = "tch")),
        d("tch", "LibTorch CUDA", "tch", cfg!(feature = "tch")),
        d("cuda", "burn CubeCL CUDA", "cuda", cfg!(feature = "cuda")),
        d(
            "vulkan",
            "burn CubeCL wgpu/Vulkan",
            "vulkan",
            cfg!(feature = "vulkan"),
        ),
    ]
}

/// The device by name, after one small kernel ran on it. A compiled-in backend without its
/// hardware or runtime (no GPU, no driver) is an error naming the device, not a panic later.
pub fn probe(name: &str) -> Result<Device> {
    let device = device_from_name(name)?;
    if name == "tch" && libtorch_cuda_devices() == 0 {
        return Err(ModelError::Device(
            "LibTorch sees no CUDA device (no GPU or driver here, or a CPU-only LibTorch)".into(),
        ));
    }
    let d = device.clone();
    let ran = std::panic::catch_unwind(move || {
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &d);
        x.sum().into_scalar::<f32>()
    });
    // The default hook already printed the backend's panic message; say what it means.
    match ran {
        Ok(s) if (s - 6.0).abs() < 1e-6 => Ok(device),
        Ok(s) => Err(ModelError::Device(format!(
            "device `{name}`: 1 + 2 + 3 gave {s}"
        ))),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the backend panicked".into());
            Err(ModelError::Device(format!(
                "compiled in but cannot run here: {msg}"
            )))
        }
    }
}

/// CUDA devices LibTorch sees (0 without a GPU, or when LibTorch is a CPU-only build).
#[cfg(feature = "tch")]
pub fn libtorch_cuda_devices() -> usize {
    tch::Cuda::device_count().max(0) as usize
}

/// CUDA devices LibTorch sees: none, in a build without `--features tch`.
#[cfg(not(feature = "tch"))]
pub fn libtorch_cuda_devices() -> usize {
    0
}
