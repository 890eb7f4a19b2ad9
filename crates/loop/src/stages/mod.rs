//! The stages of a round, one module each, in recipe order: `generate` (samples, incl.
//! Self-Instruct), `filter` (rules and the verifier), `judge` (reward model and LLM-judge
//! scores), `pair` (preference pairs with cached reference log-probs), `mix` (the training
//! set), `train` (SFT and/or DPO of the round), `side` (round 0's teacher and reward model),
//! `evaluate` (the round's metrics) and `detect` (collapse rules). Each is a function of the
//! small [`Env`](crate::env::Env), its part of the plan and its typed input, returning its
//! typed output and its stats (metrics as the run tables name them). `round.rs` journals them.

pub mod detect;
pub mod evaluate;
pub mod filter;
pub mod generate;
pub mod judge;
pub mod mix;
pub mod pair;
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
