//! The conformance suite on every device compiled into this build (flex, ndarray, tch-cpu,
//! tch, cuda, vulkan — `didact_model::device::known_devices`). Each device runs in a child
//! process of this test binary (`--device NAME`), so a backend that crashes (a GPU driver's
//! segfault) is a failed device, not a lost suite. A device that is not compiled in, or has
//! no hardware here, is reported as skipped by name; `DIDACT_REQUIRE_DEVICES=flex,tch-cpu`
//! (CI) turns a skip of a listed device into a failure, so a missing LibTorch cannot pass
//! silently. An argument filters checks by name (`cargo test -p didact-conformance -- greedy`).
//!
//! Custom harness (no libtest): one table of device × check, printed as it runs.

use didact_conformance::{Options, Outcome, Reference, fixtures, run_device};
use didact_model::device::{known_devices, probe};
use std::process::Command;

/// Exit status of a child whose device cannot run here (not a failure unless required).
const SKIPPED: i32 = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for d in known_devices() {
            println!("{}: test", d.name);
        }
        return;
    }
    // `--device NAME` (the parent's child calls) takes its value; the filter is the first other
    // word (a check name part, as libtest's filter).
    let device_at = args.iter().position(|a| a == "--device");
    let filter = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with('-') && device_at.is_none_or(|d| *i != d + 1))
        .map(|(_, a)| a.clone());
    match device_at {
        Some(i) => std::process::exit(child(&args[i + 1], filter)),
        None => parent(filter),
    }
}

/// Run one device's checks in this process; exit status 0 ok, 1 failed, 2 skipped.
fn child(name: &str, filter: Option<String>) -> i32 {
    let d = known_devices()
        .into_iter()
        .find(|d| d.name == name)
        .expect("a known device");
    let device = match probe(name) {
        Ok(device) => device,
        Err(why) => {
            println!("SKIP  {:<8} (all checks) ({}): {why}", d.name, d.backend);
            return SKIPPED;
        }
    };
    let opts = Options {
        fixtures: fixtures::default_dir(),
        recipe: true,
        filter,
    };
    println!("--- {} ({})", d.name, d.backend);
    let reference = Reference::compute(&opts);
    let results = run_device(d.name, &device, &reference, &opts, |r| {
        println!("{}", r.line())
    });
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .count();
    // A run that checked nothing must not pass (a filter that matches no check, or arguments
    // read wrongly: this once ran zero checks on every device and passed).
    let passed = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Pass(_)))
        .count();
    if passed == 0 {
        println!(
            "FAIL  {:<8} no check ran (filter {:?})",
            d.name, opts.filter
        );
        return 1;
    }
    (failed > 0) as i32
}

fn parent(filter: Option<String>) {
    let required: Vec<String> = std::env::var("DIDACT_REQUIRE_DEVICES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    println!(
        "conformance suite; fixtures: {}",
        fixtures::default_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none (fixture checks skipped)".into())
    );
    let exe = std::env::current_exe().expect("the test binary");
    let (mut failed, mut ran) = (Vec::new(), Vec::new());
    for d in known_devices() {
        let mut skipped = None;
        if !d.compiled {
            let why = format!("not compiled in (build with --features {})", d.feature);
            println!("SKIP  {:<8} (all checks) ({}): {why}", d.name, d.backend);
            skipped = Some(why);
        } else {
            let mut cmd = Command::new(&exe);
            cmd.args(["--device", d.name]).args(filter.iter());
            let status = cmd.status().expect("spawn the device's child");
            match status.code() {
                Some(0) => ran.push(d.name),
                Some(SKIPPED) => skipped = Some("no such device here".to_string()),
                Some(_) => {
                    ran.push(d.name);
                    failed.push(format!("{}: checks failed (lines above)", d.name));
                }
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    let why = format!(
                        "crashed (signal {}) inside the backend",
                        status.signal().unwrap_or(0)
                    );
                    println!("FAIL  {:<8} (all checks): {why}", d.name);
                    failed.push(format!("{}: {why}", d.name));
                }
            }
        }
        if let Some(why) = skipped
            && required.iter().any(|r| r == d.name)
        {
            failed.push(format!(
                "{}: required by DIDACT_REQUIRE_DEVICES but skipped: {why}",
                d.name
            ));
        }
    }
    for r in &required {
        if !known_devices().iter().any(|d| d.name == r) {
            failed.push(format!(
                "DIDACT_REQUIRE_DEVICES names an unknown device `{r}`"
            ));
        }
    }
    println!("devices run: {}", ran.join(", "));
    if failed.is_empty() {
        println!("conformance: ok");
        return;
    }
    println!("conformance: {} failure(s)", failed.len());
    for f in &failed {
        println!("  {f}");
    }
    std::process::exit(1);
}
