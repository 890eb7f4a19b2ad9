//! LoRA through the binary (issue 16, part 1): `didact train --lora-r …` on the tiny HF Llama
//! and GPT-2 fixtures writes the merged model and a PEFT adapter; `peft` itself
//! (`PeftModel.from_pretrained`, run by peft_logits.py beside this file) gives the same logits
//! as didact for base + adapter; `didact merge` writes the same weights as the merged output;
//! `didact generate --adapter` equals generating from the merged model; untargeted weights
//! are untouched. `peft` is a test-only dependency: `.ci/run` pip-installs it and sets
//! `DIDACT_PEFT_PYTHON` with `DIDACT_REQUIRE_PEFT=1`; elsewhere the PEFT check uses `python3`
//! if it can import `peft`, and otherwise says it skipped.

use didact_model::Decoder;
use didact_model::any::load_with_adapter;
use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_didact");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("spawn didact");
    assert!(
        out.status.success(),
        "didact {args:?} failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn python() -> Option<String> {
    let py = std::env::var("DIDACT_PEFT_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import peft, transformers, torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("DIDACT_REQUIRE_PEFT").is_err(),
            "DIDACT_REQUIRE_PEFT is set but {py:?} (DIDACT_PEFT_PYTHON) cannot import peft"
        );
        eprintln!("SKIP the peft check: no python with peft + transformers + torch");
    }
    ok.then_some(py)
}

fn logits(dir: &Path, adapter: Option<&Path>, ids: &[i64]) -> Vec<f32> {
    let device = Device::flex();
    let ck = load_with_adapter(dir, adapter, &device).unwrap();
    let x = Tensor::<2, Int>::from_data(TensorData::new(ids.to_vec(), [1, ids.len()]), &device);
    ck.model
        .forward(x)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// SFT rows from GSM8K questions: the first half of a question → the rest.
fn write_rows(path: &Path) {
    let text =
        std::fs::read_to_string(repo().join("../shared/data/gsm8k/test.jsonl")).expect("gsm8k");
    let rows: Vec<String> = text
        .lines()
        .take(64)
        .map(|l| {
            let q: serde_json::Value = serde_json::from_str(l).unwrap();
            let q: String = q["question"].as_str().unwrap().chars().take(120).collect();
            let cut = q.char_indices().nth(q.chars().count() / 2).unwrap().0;
            serde_json::json!({"prompt": &q[..cut], "completion": &q[cut..]}).to_string()
        })
        .collect();
    std::fs::write(path, rows.join("\n")).unwrap();
}

#[test]
fn a_didact_lora_adapter_is_read_by_peft_merges_and_generates() {
    let tmp = std::env::temp_dir().join(format!("didact-lora-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let rows = tmp.join("rows.jsonl");
    write_rows(&rows);
    let py = python();
    for (name, targets, untouched) in [
        (
            "llama",
            "q_proj,v_proj,down_proj",
            "model.layers.0.self_attn.k_proj.weight",
        ),
        ("gpt2", "c_attn,c_fc", "transformer.h.0.attn.c_proj.weight"),
    ] {
        let base = repo().join("../shared/fixtures").join(name);
        let out = tmp.join(name);
        let (b, o, r) = (
            base.to_str().unwrap(),
            out.to_str().unwrap(),
            rows.to_str().unwrap(),
        );
        let args = [
            "train",
            "--model",
            b,
            "--data",
            r,
            "--out",
            o,
            "--steps",
            "6",
            "--batch-size",
            "8",
            "--lr",
            "1e-2",
            "--warmup-steps",
            "0",
            "--lora-r",
            "4",
            "--lora-alpha",
            "8",
            "--lora-targets",
            targets,
            "--quiet",
        ];
        run_ok(&args);
        let adapter = out.join("adapter");
        for f in ["adapter_config.json", "adapter_model.safetensors"] {
            assert!(adapter.join(f).is_file(), "{name}: {f}");
        }
        let ids: Vec<i64> = (5..45).collect();
        let merged = logits(&out, None, &ids);
        let on_the_fly = logits(&base, Some(&adapter), &ids);
        assert!(
            max_abs(&merged, &on_the_fly) < 1e-4,
            "{name}: merged vs base+adapter"
        );
        assert!(
            max_abs(&merged, &logits(&base, None, &ids)) > 1e-3,
            "{name}: training moved the logits"
        );
        // Untargeted weights are the base's, bit for bit.
        let (_, w_out) = didact_model::checkpoint::read_tensor(&out, untouched).unwrap();
        let (_, w_base) = didact_model::checkpoint::read_tensor(&base, untouched).unwrap();
        assert_eq!(w_out, w_base, "{name}: {untouched}");
        // didact merge = the trained output.
        let m = tmp.join(format!("{name}-merged"));
        let a = adapter.to_str().unwrap();
        run_ok(&[
            "merge",
            "--model",
            b,
            "--adapter",
            a,
            "--out",
            m.to_str().unwrap(),
        ]);
        assert!(max_abs(&logits(&m, None, &ids), &merged) < 1e-4);
        // generate --adapter = generate from the merged model.
        let generate = |model: &str, extra: &[&str]| {
            let mut args = vec![
                "generate", "--model", model, "--prompt", "Natalia", "--greedy",
            ];
            args.extend_from_slice(&["--max-new-tokens", "12", "--no-stop"]);
            args.extend_from_slice(extra);
            run_ok(&args)
        };
        assert_eq!(
            generate(b, &["--adapter", a]),
            generate(o, &[]),
            "{name}: generate --adapter"
        );
        // PEFT reads the adapter as didact does.
        if let Some(py) = &py {
            let ids_path = tmp.join("ids.json");
            std::fs::write(&ids_path, serde_json::to_string(&ids).unwrap()).unwrap();
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peft_logits.py");
            let out = Command::new(py)
                .arg(&script)
                .args([b, a, ids_path.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let peft: Vec<f32> = serde_json::from_slice(&out.stdout).unwrap();
            let diff = max_abs(&peft, &on_the_fly);
            assert!(diff < 1e-4, "{name}: max |peft - didact| = {diff}");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
