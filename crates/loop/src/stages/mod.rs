//! The stages of a round, one module each, in recipe order: `generate` (samples, incl.
//! Self-Instruct), `filter` (rules and the verifier; before it, `self_check`: the policies'
//! low- and high-digit self-checks), `judge` (reward model and LLM-judge
//! scores), `pair` (preference pairs with cached reference log-probs), `mix` (the training
//! set), `train` (SFT and/or DPO of the round), `distill` (the teacher at work: token-level
//! distillation, the oracle, `distill/kl_to_teacher`), `side` (round 0's teacher and reward model),
//! `evaluate` (the round's metrics) and `detect` (collapse rules). Each is a function of the
//! small [`Env`](crate::env::Env), its part of the plan and its typed input, returning its
//! typed output and its stats (metrics as the run tables name them). `round.rs` journals them.

pub mod detect;
pub mod distill;
pub mod evaluate;
pub mod external;
pub mod filter;
pub mod generate;
pub mod judge;
pub mod mix;
pub mod pair;
pub mod self_check;
pub mod side;
pub mod train;

use didact_recipe::{EndpointPlan, SamplingPlan};
use std::path::PathBuf;

/// The client settings of an endpoint plan, caching under `cache_dir` when the plan caches.
pub fn endpoint_config(p: &EndpointPlan, cache_dir: PathBuf) -> didact_endpoint::EndpointConfig {
    didact_endpoint::EndpointConfig {
        base_url: p.base_url.clone(),
        model: p.model.clone(),
        api_key_env: p.api_key_env.clone().unwrap_or_default(),
        chat: p.chat,
        concurrency: p.concurrency,
        timeout: std::time::Duration::from_secs_f64(p.timeout_s),
        max_retries: p.max_retries,
        backoff: std::time::Duration::from_millis(p.backoff_ms),
        cache_dir: p.cache.then_some(cache_dir),
    }
}

/// Sampling parameters of a plan (the stop token is the caller's).
pub fn sampling(p: &SamplingPlan) -> didact_model::SamplingParams {
    didact_model::SamplingParams {
        temperature: p.temperature as f32,
        top_k: p.top_k,
        top_p: p.top_p as f32,
        max_new_tokens: p.max_new_tokens,
        stop_token: None,
    }
}

/// A tiny arithmetic run for the stages' unit tests: a char tokenizer, a 2-layer 16-wide
/// Llama on flex, a fresh run directory.
#[cfg(test)]
pub(crate) mod testkit {
    use crate::env::Env;
    use crate::layout::RunDir;
    use crate::task::Task;
    use didact_model::burn::tensor::Device;
    use didact_model::{Lm, LmConfig, Tok};
    use didact_recipe::{ModelPlan, RunPlan};

    pub struct Kit {
        pub device: Device,
        pub tok: Tok,
        pub cfg: LmConfig,
        pub dir: RunDir,
        pub task: Task,
        pub plan: RunPlan,
    }

    impl Kit {
        /// `sets`: `section.key=value` overrides, as `--set` takes them.
        pub fn new(name: &str, sets: &[&str]) -> Kit {
            let text = "[world]\ntrain_size = 64\n[model]\nd_model = 16\nn_layers = 2\nn_heads = 2\nn_kv_heads = 1\nmax_seq_len = 32\n[generate]\nn_prompts = 6\nmax_new_tokens = 4\nbatch_size = 4\n[eval]\neval_size = 8\nood_size = 4\nn_samples = 6\nbatch_size = 4\n";
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let plan = didact_recipe::load_str(text, "kit.toml", &sets)
                .unwrap()
                .plan;
            let task = Task::build(&plan).unwrap();
            let tok = task.tokenizer(didact_recipe::TokenizerKind::Char).unwrap();
            let ModelPlan::Fresh { shape, .. } = &plan.model else {
                unreachable!()
            };
            let cfg = LmConfig::Llama(crate::env::shape_config(shape, tok.vocab_size()));
            let root =
                std::env::temp_dir().join(format!("didact-stage-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("rounds")).unwrap();
            Kit {
                device: Device::flex(),
                tok,
                cfg,
                dir: RunDir::new(root),
                task,
                plan,
            }
        }

        pub fn env(&self) -> Env<'_> {
            Env {
                device: &self.device,
                tok: &self.tok,
                cfg: &self.cfg,
                dir: &self.dir,
                seed: 3,
                peer: 0,
                quiet: true,
            }
        }

        /// Fresh weights (the run's round-0 start).
        pub fn model(&self) -> Lm {
            self.env().load(&crate::lineage::ModelRef::Fresh).unwrap()
        }
    }

    impl Drop for Kit {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.dir.root());
        }
    }
}
