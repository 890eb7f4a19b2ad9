//! didact-synth: generators that turn prompts into `Sample`s. Here: responses from the
//! in-process burn model (n samples per prompt, seeded per row). Self-Instruct, STaR
//! rationales and OpenAI-compatible endpoints slot in beside it. Knows nothing of training.

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
