//! `didact serve` as the official `openai` Python client sees it (openai_client.py beside
//! this file). The client is a test-only dependency: `.ci/run` pip-installs it and sets
//! `DIDACT_OPENAI_PYTHON` to that interpreter with `DIDACT_REQUIRE_OPENAI=1`; elsewhere the
//! test uses `python3` if it can import `openai`, and otherwise says it skipped.

use didact_model::burn::tensor::Device;
use didact_serve::{FaultPlan, Limits, Model, bind, run};
use std::path::PathBuf;
use std::process::Command;

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<String> {
    let py = std::env::var("DIDACT_OPENAI_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&py)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    has.then_some(py)
}

#[test]
fn the_official_openai_client_streams_and_reads_logprobs() {
    let Some(py) = python() else {
        assert!(
            std::env::var("DIDACT_REQUIRE_OPENAI").is_err(),
            "DIDACT_REQUIRE_OPENAI is set but {:?} (DIDACT_OPENAI_PYTHON, run from {}) cannot import `openai`",
            std::env::var("DIDACT_OPENAI_PYTHON").unwrap_or_else(|_| "python3".into()),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        );
        eprintln!("SKIP openai client: no python with `openai` (pip install openai)");
        return;
    };
    let limits = Limits::default();
    let (server, addr) = bind("127.0.0.1:0").unwrap();
    let fixture = here().join("../../../shared/fixtures/llama");
    let m = Model::load(&fixture, &Device::flex()).unwrap();
    std::thread::spawn(move || run(server, m, FaultPlan::default(), limits));
    let out = Command::new(py)
        .arg(here().join("tests/openai_client.py"))
        .arg(format!("http://{addr}/v1"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(said.contains("checks passed"), "{said}");
}
