//! The conformance suite on every device compiled into this build (flex, ndarray, tch-cpu,
//! tch, cuda — see `didact_model::device::known_devices`). A device that is not compiled in, or
//! has no hardware here, is reported as skipped by name. `DIDACT_REQUIRE_DEVICES=flex,tch-cpu`
//! (CI) turns a skip of a listed device into a failure, so a missing LibTorch cannot pass
//! silently. An argument filters checks by name (`cargo test -p didact-conformance -- greedy`).
//!
//! Custom harness (no libtest): one table of device × check, printed as it runs.

use didact_conformance::{Options, Outcome, Reference, fixtures, run_device};
use didact_model::device::{known_devices, probe};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for d in known_devices() {
            println!("{}: test", d.name);
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let required: Vec<String> = std::env::var("DIDACT_REQUIRE_DEVICES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let opts = Options {
        fixtures: fixtures::default_dir(),
        recipe: true,
        filter,
    };
    println!(
        "conformance suite; fixtures: {}",
        opts.fixtures
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none (fixture checks skipped)".into())
    );
    let reference = Reference::compute(&opts);
    let mut failed = Vec::new();
    let mut ran = Vec::new();
    for d in known_devices() {
        let skip = if !d.compiled {
            Some(format!(
                "not compiled in (build with --features {})",
                d.feature
            ))
        } else {
            probe(d.name).err().map(|e| e.to_string())
        };
        if let Some(why) = skip {
            println!(
                "SKIP  {:<8} {} ({}): {why}",
                d.name, "(all checks)", d.backend
            );
            if required.iter().any(|r| r == d.name) {
                failed.push(format!(
                    "{}: required by DIDACT_REQUIRE_DEVICES but skipped: {why}",
                    d.name
                ));
            }
            continue;
        }
        let device = probe(d.name).expect("probed above");
        println!("--- {} ({})", d.name, d.backend);
        let results = run_device(d.name, &device, &reference, &opts, |r| {
            println!("{}", r.line())
        });
        for r in &results {
            if let Outcome::Fail(why) = &r.outcome {
                failed.push(format!("{} {}: {why}", r.device, r.check));
            }
        }
        ran.push(d.name);
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
