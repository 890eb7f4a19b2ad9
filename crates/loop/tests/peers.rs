//! `[run] peers`: several policies side by side (Lee et al. 2025's vote across models). Every
//! peer answers the same prompts into one pool, the vote runs over the pool, and every peer
//! trains on the one mix from its *own* previous checkpoint; peer 0 is the run's own lineage
//! and draws exactly as a one-policy run does. A run killed between two peers' training
//! resumes to the same models and metrics.

use didact_data::table;
use didact_loop::env::Env;
use didact_loop::layout::RunDir;
use didact_loop::stages::generate::{Writer, run as generate};
use didact_loop::task::Task;
use didact_model::Tok;
use didact_model::burn::tensor::Device;
use std::path::{Path, PathBuf};

const RECIPE: &str = r#"
[run]
name = "peers"
seed = 5
rounds = 2
peers = 2
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
steps = 10
batch_size = 8
lr = 1e-2
[generate]
n_prompts = 8
n_per_prompt = 2
max_new_tokens = 4
[filter]
verifier = false
majority = 0.3
dedup = false
require_stop = false
[eval]
eval_size = 8
ood_size = 4
n_samples = 4
"#;

fn out(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("didact-peers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn run(dir: &Path, sets: &[&str], resume: bool) -> Vec<(u32, didact_core::Metrics)> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let loaded = didact_recipe::load_str(RECIPE, "peers.toml", &sets).unwrap();
    let opts = didact_loop::RunOptions {
        out: dir.to_path_buf(),
        resume,
        quiet: true,
        threads: 1,
    };
    let toml = didact_recipe::to_toml(&loaded.file);
    didact_loop::run(&loaded.plan, &toml, &opts, Device::flex(), |_, _| {})
        .unwrap()
        .rounds
}

fn weights(model_dir: &Path) -> Vec<u8> {
    std::fs::read(model_dir.join("model.safetensors")).unwrap()
}

/// Metrics without the wall clock.
fn timeless(rounds: &[(u32, didact_core::Metrics)]) -> Vec<(u32, didact_core::Metrics)> {
    rounds
        .iter()
        .map(|(r, m)| {
            let m = m
                .iter()
                .filter(|(k, _)| !k.starts_with("time/") && *k != "train/tokens_per_s")
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            (*r, m)
        })
        .collect()
}

#[test]
fn peers_pool_their_samples_and_each_trains_its_own_lineage() {
    let a = out("a");
    let metrics = run(&a, &[], false);
    let dir = RunDir::new(&a);

    // Peer 0 is the one-policy run's lineage: the same round-0 model, bit for bit.
    let single = out("single");
    run(&single, &["run.peers=1", "run.rounds=0"], false);
    assert_eq!(
        weights(&dir.model(0)),
        weights(&RunDir::new(&single).model(0))
    );
    assert_ne!(
        weights(&dir.model(0)),
        weights(&dir.model_of(0, 1)),
        "peer 1 starts from its own initial weights"
    );

    // One pool: both peers answer the same prompts, peer 1's ids marked.
    let pool = table::read_samples(&dir.file(2, "generated.parquet")).unwrap();
    assert_eq!(pool.len(), 2 * 8 * 2);
    let (p0, p1) = pool.split_at(16);
    assert!(p0.iter().all(|s| !s.id.starts_with("p1-")));
    assert!(
        p1.iter().all(|s| s.id.starts_with("p1-r2-")),
        "{:?}",
        p1[0].id
    );
    let prompts =
        |ss: &[didact_core::Sample]| ss.iter().map(|s| s.prompt.clone()).collect::<Vec<_>>();
    assert_eq!(prompts(p0), prompts(p1));

    // Peer 1's round-2 samples are what peer 1's own round-1 model writes, not peer 0's.
    let loaded = didact_recipe::load_str(RECIPE, "peers.toml", &[]).unwrap();
    let device = Device::flex();
    let tok = Tok::load(&a.join("tokenizer.json")).unwrap();
    let cfg = didact_model::any::config_from_dir(&dir.model(0)).unwrap();
    let env = Env {
        device: &device,
        tok: &tok,
        cfg: &cfg,
        dir: &dir,
        seed: loaded.plan.seed,
        peer: 1,
        quiet: true,
    };
    let task = Task::build(&loaded.plan).unwrap();
    let by = |model_dir: PathBuf| {
        let model = didact_model::any::load(&model_dir, &device).unwrap().model;
        let writer = Writer::Model(Box::new(model));
        generate(&env, &loaded.plan.generate, &task, &writer, 2)
            .unwrap()
            .0
    };
    assert_eq!(p1, by(dir.model_of(1, 1)).as_slice());
    assert_ne!(p1, by(dir.model(1)).as_slice());
    for r in 0..=2 {
        assert!(dir.model_of(r, 1).join("model.safetensors").exists());
        assert!(dir.train_log(r, 1).exists());
    }

    // Killed after peer 0 trained in round 2, before peer 1 did: the resumed run trains peer 1
    // and ends with the same models and metrics.
    let b = out("b");
    copy_dir(&a, &b);
    let journal = b.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let keep: Vec<&str> = text
        .lines()
        .take_while(|l| !(l.contains("\"round\":2") && l.contains("\"train_p1\"")))
        .collect();
    assert!(keep.last().unwrap().contains("\"train\""), "{keep:?}");
    std::fs::write(&journal, keep.join("\n") + "\n").unwrap();
    std::fs::remove_dir_all(RunDir::new(&b).model_of(2, 1)).unwrap();
    let resumed = run(&b, &[], true);
    assert_eq!(timeless(&resumed), timeless(&metrics));
    assert_eq!(
        weights(&RunDir::new(&b).model_of(2, 1)),
        weights(&dir.model_of(2, 1))
    );
    for d in [a, b, single] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != ".lock" {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
