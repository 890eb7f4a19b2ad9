//! A detector rollback moves every role: after the rule fires at round 1, round 2's samples
//! come from the best round's model (round 0), not from the collapsed round 1 — the bug this
//! guards against kept generating (and judging) with the previous round's model while only
//! training restarted from the best one. Recorded as `lineage/generated_by` and
//! `lineage/start_from`.

use didact_data::table;
use didact_loop::env::Env;
use didact_loop::layout::RunDir;
use didact_loop::stages::generate::{Writer, run as generate};
use didact_loop::task::Task;
use didact_model::Tok;
use didact_model::burn::tensor::Device;

const RECIPE: &str = r#"
[run]
name = "rollback"
seed = 4
rounds = 2
[world]
train_size = 64
[model]
d_model = 16
n_layers = 1
n_heads = 2
n_kv_heads = 1
max_seq_len = 24
[train]
base_steps = 20
steps = 20
batch_size = 8
lr = 1e-2
[generate]
n_prompts = 16
max_new_tokens = 4
[filter]
verifier = false
dedup = false
require_stop = false
[eval]
eval_size = 8
ood_size = 4
n_samples = 4
# Accumulating rows always grow, so this fires after round 1 and rolls back to round 0.
[detector]
rules = [{ metric = "data/train_rows", kind = "rise_over_best", pct = 1, action = "rollback" }]
"#;

#[test]
fn after_a_rollback_the_best_rounds_model_generates_and_starts_training() {
    let out = std::env::temp_dir().join(format!("didact-rollback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let loaded = didact_recipe::load_str(RECIPE, "rollback.toml", &[]).unwrap();
    let opts = didact_loop::RunOptions {
        out: out.clone(),
        resume: false,
        quiet: true,
        threads: 1,
    };
    let device = Device::flex();
    let toml = didact_recipe::to_toml(&loaded.file);
    let s = didact_loop::run(&loaded.plan, &toml, &opts, device.clone(), |_, _| {}).unwrap();
    let m = |r: usize, k: &str| s.rounds[r].1.get(k).copied();
    assert_eq!(m(1, "alerts/fired"), Some(1.0));
    assert_eq!(m(1, "lineage/generated_by"), Some(0.0));
    assert_eq!(
        m(2, "lineage/generated_by"),
        Some(0.0),
        "the rollback target generates round 2"
    );
    assert_eq!(m(2, "lineage/start_from"), Some(0.0));

    // Round 2's samples are exactly what round 0's model writes with round 2's seeds, and not
    // what round 1's model would have written.
    let dir = RunDir::new(&out);
    let tok = Tok::load(&out.join("tokenizer.json")).unwrap();
    let cfg = didact_model::any::config_from_dir(&dir.model(0)).unwrap();
    let env = Env {
        device: &device,
        tok: &tok,
        cfg: &cfg,
        dir: &dir,
        seed: loaded.plan.seed,
        peer: 0,
        quiet: true,
    };
    let task = Task::build(&loaded.plan).unwrap();
    let written = table::read_samples(&dir.file(2, "generated.parquet")).unwrap();
    let by = |r: u32| {
        let model = didact_model::any::load(&dir.model(r), &device)
            .unwrap()
            .model;
        generate(
            &env,
            &loaded.plan.generate,
            &task,
            &Writer::Model(Box::new(model)),
            2,
        )
        .unwrap()
        .0
    };
    assert_eq!(written, by(0));
    assert_ne!(written, by(1));
    std::fs::remove_dir_all(&out).unwrap();
}
