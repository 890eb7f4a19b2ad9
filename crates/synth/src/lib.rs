//! didact-synth: generators that turn prompts into `Sample`s. Here: responses from the
//! in-process burn model (n samples per prompt, seeded per row) or an OpenAI-compatible
//! endpoint (same seeds, sent with each request). Self-Instruct and STaR rationales slot in
//! beside them. Knows nothing of training.

pub mod self_instruct;

use didact_core::Sample;
use didact_model::burn::tensor::Device;
use didact_model::{Decoder, Result, SamplingParams, Tok, generate_all, row_seed};
use std::collections::BTreeMap;

/// What to generate and how.
pub struct ResponseJob<'a> {
    pub prompts: &'a [String],
    pub n_per_prompt: usize,
    pub params: SamplingParams,
    pub batch_size: usize,
    /// Round number written into each sample and its id.
    pub round: u32,
    /// Run seed and a stream id (one per stage) for per-row seeds.
    pub seed: u64,
    pub stream: u64,
}

/// Generate `n_per_prompt` responses per prompt with the local model. Each sample records
/// `gen/stopped` (1 if the stop token ended it). `on_batch(n)` reports progress in samples.
pub fn generate_responses(
    model: &impl Decoder,
    max_seq_len: usize,
    tok: &Tok,
    job: &ResponseJob<'_>,
    device: &Device,
    on_batch: impl FnMut(usize),
) -> Result<Vec<Sample>> {
    let mut encoded = Vec::with_capacity(job.prompts.len() * job.n_per_prompt);
    let mut texts = Vec::with_capacity(encoded.capacity());
    for p in job.prompts {
        let ids = tok.encode(p)?;
        for _ in 0..job.n_per_prompt {
            encoded.push(ids.clone());
            texts.push(p.clone());
        }
    }
    let seeds: Vec<u64> = (0..encoded.len() as u64)
        .map(|i| row_seed(job.seed, job.stream, i))
        .collect();
    let mut params = job.params.clone();
    params.stop_token = Some(tok.eos_id);
    let gens = generate_all(
        model,
        max_seq_len,
        &encoded,
        &seeds,
        &params,
        tok.pad_id,
        job.batch_size,
        device,
        on_batch,
    )?;
    let mut out = Vec::with_capacity(gens.len());
    for (i, (g, prompt)) in gens.into_iter().zip(texts).enumerate() {
        let mut scores = BTreeMap::new();
        scores.insert("gen/stopped".to_string(), if g.stopped { 1.0 } else { 0.0 });
        out.push(Sample {
            id: format!("r{}-{i}", job.round),
            round: job.round,
            prompt,
            completion: tok.decode(&g.tokens)?,
            n_tokens: g.tokens.len(),
            scores,
            dropped: None,
        });
    }
    Ok(out)
}

/// Generate `n_per_prompt` responses per prompt through an OpenAI-compatible endpoint, with
/// the same per-row seeds as the local generator (sent as the request's `seed`). Sampling
/// settings come from `job.params` (`top_k` is not part of the API and is not sent).
pub fn generate_endpoint(
    cfg: &didact_endpoint::EndpointConfig,
    job: &ResponseJob<'_>,
    on_done: impl Fn(usize) + Sync,
) -> didact_endpoint::Result<(Vec<Sample>, didact_endpoint::Stats)> {
    let (samples, _, stats) = generate_endpoint_logprobs(cfg, job, 0, on_done)?;
    Ok((samples, stats))
}

/// [`generate_endpoint`], also asking for the `top_logprobs` most likely tokens at every
/// generated position (a distillation teacher's distribution); one list per sample.
pub fn generate_endpoint_logprobs(
    cfg: &didact_endpoint::EndpointConfig,
    job: &ResponseJob<'_>,
    top_logprobs: usize,
    on_done: impl Fn(usize) + Sync,
) -> didact_endpoint::Result<(
    Vec<Sample>,
    Vec<Vec<didact_endpoint::TokenLogprobs>>,
    didact_endpoint::Stats,
)> {
    let mut requests = Vec::with_capacity(job.prompts.len() * job.n_per_prompt);
    for p in job.prompts {
        for _ in 0..job.n_per_prompt {
            requests.push(didact_endpoint::Request {
                prompt: p.clone(),
                max_tokens: job.params.max_new_tokens,
                temperature: job.params.temperature as f64,
                top_p: job.params.top_p as f64,
                seed: row_seed(job.seed, job.stream, requests.len() as u64),
                stop: vec![],
                top_logprobs,
            });
        }
    }
    let (done, stats) = didact_endpoint::complete_all(cfg, &requests, on_done)?;
    let mut samples = Vec::with_capacity(done.len());
    let mut logprobs = Vec::with_capacity(done.len());
    for (i, (c, r)) in done.into_iter().zip(requests).enumerate() {
        let mut scores = BTreeMap::new();
        let stopped = c.finish_reason == "stop";
        scores.insert("gen/stopped".to_string(), if stopped { 1.0 } else { 0.0 });
        samples.push(Sample {
            id: format!("r{}-{i}", job.round),
            round: job.round,
            prompt: r.prompt,
            completion: c.text,
            n_tokens: c.completion_tokens as usize,
            scores,
            dropped: None,
        });
        logprobs.push(c.logprobs);
    }
    Ok((samples, logprobs, stats))
}
