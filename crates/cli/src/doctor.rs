//! `didact doctor`: what this binary can run on and whether it computes the right numbers
//! there. Lists the backends compiled in and the devices that exist (CUDA devices through
//! LibTorch), runs the conformance self-check on the chosen device against flex (and against
//! transformers/TRL when ../shared/fixtures is found), measures train and sample throughput,
//! and on any failure prints the exact fix.

use anyhow::{Result, bail};
use didact_conformance::{Options, Outcome, Reference, fixtures, run_device, workload};
use didact_model::device::{KnownDevice, known_devices, libtorch_cuda_devices, probe};
use std::time::Instant;

/// How to get a device that is not usable, as commands.
fn fix_for(d: &KnownDevice) -> String {
    if d.compiled && d.name == "tch" {
        return "device `tch` needs an NVIDIA GPU with its driver (`nvidia-smi` must list it) and a CUDA build of LibTorch 2.9.0 (the PyPI torch==2.9.0 wheel for Linux is one, CUDA 12.8);\n  without a GPU, `--device tch-cpu` runs the same LibTorch dispatch on the CPU".into();
    }
    if d.compiled {
        return format!(
            "the `{}` backend is built in but cannot run here: check its driver; `--device flex` always works",
            d.name
        );
    }
    match d.feature {
        "tch" => "pip install torch==2.9.0 (the LibTorch tch 0.22 binds; other versions are refused at build time), then\n  LIBTORCH_USE_PYTORCH=1 cargo build --release --features tch\n  (or LIBTORCH=/path/to/libtorch-2.9.0; at run time the binary finds LibTorch through the rpath set at build time, else set LD_LIBRARY_PATH to torch/lib)".into(),
        "cuda" => "cargo build --release --features cuda (burn's CubeCL CUDA: needs the CUDA toolkit and downloads an LLVM bundle at build time; see README, GPU section)".into(),
        f => format!("cargo build --release --features {f}"),
    }
}

fn gpu_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Probe a device in a child process (`didact doctor --device NAME --probe-only`): a backend
/// that crashes on its first kernel (a GPU driver's segfault) is reported, not fatal.
fn probe_isolated(name: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(["doctor", "--device", name, "--probe-only"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = out.status.signal() {
        return Err(format!(
            "crashed (signal {sig}) inside the backend on its first kernel"
        ));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("probe failed");
    Err(last.trim_start_matches("error: ").to_string())
}

/// `--probe-only`: run one kernel on the device and exit (the child of `probe_isolated`).
pub fn probe_only(device: &str) -> Result<()> {
    probe(device)?;
    Ok(())
}

fn print_devices() -> Vec<(KnownDevice, Result<(), String>)> {
    println!("backends and devices:");
    let mut out = Vec::new();
    for d in known_devices() {
        let status: Result<(), String> = if !d.compiled {
            Err(format!("not compiled in (--features {})", d.feature))
        } else {
            probe_isolated(d.name)
        };
        let shown = match &status {
            Ok(()) => "ready".to_string(),
            Err(e) => e.clone(),
        };
        println!("  {:<8} {:<24} {shown}", d.name, d.backend);
        out.push((d, status));
    }
    println!("  flex matmul kernels: {}", flex_kernels());
    if known_devices()
        .iter()
        .any(|d| d.feature == "tch" && d.compiled)
    {
        let n = libtorch_cuda_devices();
        println!("  CUDA devices seen by LibTorch: {n}");
        for name in gpu_names() {
            println!("    {name}");
        }
        if let Some(lib) = option_env!("DIDACT_LIBTORCH_LIB") {
            println!("  LibTorch (built against): {lib}");
        }
    }
    out
}

/// Which gemm microkernels flex runs here: gemm picks AVX-512 at run time when the CPU has it
/// (burn-flex's `x86-v4`, on in didact-model), else AVX2+FMA, else its portable path.
fn flex_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512 (x86-v4)";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2 + FMA (x86-v3; no AVX-512 on this CPU)";
        }
    }
    "portable"
}

/// Train and sample tokens/s on the reference workload (d_model 256, 4 layers, sequence 128,
/// batch 16): a warm-up step, then timed steps.
fn throughput(device: &didact_model::burn::tensor::Device) -> Result<(f64, f64)> {
    let model = workload::config().init(0, device)?;
    let rows = workload::rows(workload::BATCH * 4);
    let (model, _) = workload::train_steps(model, &rows, 1, device);
    let t0 = Instant::now();
    let (model, n) = workload::train_steps(model, &rows, 3, device);
    let train = n as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let n = workload::sample(&model, device);
    let sample = n as f64 / t0.elapsed().as_secs_f64();
    Ok((train, sample))
}

pub fn cmd_doctor(device_name: &str, skip_throughput: bool) -> Result<()> {
    println!(
        "didact {} doctor — device under test: {device_name}",
        env!("CARGO_PKG_VERSION")
    );
    let devices = print_devices();
    let Some((known, status)) = devices.iter().find(|(d, _)| d.name == device_name) else {
        bail!(
            "unknown device `{device_name}` (expected one of {})",
            known_devices()
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if let Err(e) = status {
        println!("\n{device_name}: {e}\nfix:\n  {}", fix_for(known));
        bail!("device `{device_name}` is not usable here");
    }
    let device = probe(device_name)?;
    let fixtures = fixtures::default_dir();
    println!(
        "\nself-check on {device_name} against flex{}:",
        match &fixtures {
            Some(p) => format!(" and transformers/TRL ({})", p.display()),
            None => {
                " (no ../shared/fixtures here: the checks against transformers are skipped)".into()
            }
        }
    );
    let t0 = Instant::now();
    // The mini recipe is left to the test suite (a minute per device).
    let opts = Options {
        fixtures,
        recipe: false,
        filter: None,
    };
    let reference = Reference::compute(&opts);
    let results = run_device(device_name, &device, &reference, &opts, |r| {
        println!("  {}", r.line())
    });
    let failures = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .count();
    println!("  ({:.1} s)", t0.elapsed().as_secs_f64());
    if !skip_throughput {
        let (train, sample) = throughput(&device)?;
        println!(
            "\nthroughput on {device_name} (d_model 256, 4 layers, seq 128, batch 16, {} threads): train {train:.0} tok/s, sample {sample:.0} tok/s",
            rayon::current_num_threads()
        );
    }
    if failures > 0 {
        println!(
            "\n{failures} check(s) failed on {device_name}: its numbers differ from flex / transformers, so results on it would be wrong."
        );
        if known.feature == "tch" {
            println!(
                "fix: use exactly LibTorch 2.9.0 (pip install torch==2.9.0) and rebuild with LIBTORCH_USE_PYTORCH=1 cargo build --release --features tch; if it still fails, report the lines above."
            );
        }
        bail!("doctor: {device_name} failed {failures} check(s)");
    }
    println!("\ndoctor: {device_name} passed");
    Ok(())
}
