//! Any supported checkpoint directory behind one type, for the commands that only read a model
//! (`didact score`, `didact generate`): the Llama family (Llama, Qwen2, didact's own rounds) with
//! its KV-cache sampler, or GPT-2 (full re-forward per new token). Picks by `architectures` in
//! `config.json`.

use crate::checkpoint;
use crate::error::ModelError;
use crate::gpt2::{self, Gpt2};
use crate::llama::Llama;
use crate::sample::{Generation, SamplingParams, generate_batch, pick_token};
use crate::tokenizer::Tok;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

pub enum AnyLm {
    Llama(Box<Llama>),
    Gpt2(Box<Gpt2>),
}

/// A loaded model with its tokenizer and context length.
pub struct AnyCheckpoint {
    pub model: AnyLm,
    pub tokenizer: Tok,
    pub max_seq_len: usize,
    pub vocab_size: usize,
}

/// Load any supported checkpoint directory.
pub fn load(dir: &Path, device: &Device) -> crate::Result<AnyCheckpoint> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
    let is_gpt2 = serde_json::from_str::<serde_json::Value>(&text)
        .map(|v| v["architectures"][0] == "GPT2LMHeadModel")
        .unwrap_or(false);
    if !is_gpt2 {
        let ck = checkpoint::load(dir, device)?;
        return Ok(AnyCheckpoint {
            max_seq_len: ck.config.max_seq_len,
            vocab_size: ck.config.vocab_size,
            model: AnyLm::Llama(Box::new(ck.model)),
            tokenizer: ck.tokenizer,
        });
    }
    let (cfg, model) = gpt2::load(dir, device)?;
    let tokenizer = Tok::load(&dir.join("tokenizer.json"))?;
    if tokenizer.vocab_size() > cfg.vocab_size {
        return Err(ModelError::Checkpoint {
            path: dir.join("tokenizer.json"),
            msg: format!(
                "tokenizer has {} tokens but the embedding has only {} rows",
                tokenizer.vocab_size(),
                cfg.vocab_size
            ),
        });
    }
    Ok(AnyCheckpoint {
        max_seq_len: cfg.n_positions,
        vocab_size: cfg.vocab_size,
        model: AnyLm::Gpt2(Box::new(model)),
        tokenizer,
    })
}

impl AnyLm {
    /// # Shapes
    /// - `tokens`: `[B, T]` → logits `[B, T, vocab]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        match self {
            AnyLm::Llama(m) => m.forward(tokens),
            AnyLm::Gpt2(m) => m.forward(tokens),
        }
    }

    /// Generate for each prompt: the KV-cache sampler for the Llama family; for GPT-2 one
    /// prompt at a time, re-running the full forward per token.
    pub fn generate(
        &self,
        max_seq_len: usize,
        prompts: &[Vec<u32>],
        seeds: &[u64],
        p: &SamplingParams,
        pad_id: u32,
        device: &Device,
    ) -> crate::Result<Vec<Generation>> {
        match self {
            AnyLm::Llama(m) => generate_batch(m, max_seq_len, prompts, seeds, p, pad_id, device),
            AnyLm::Gpt2(m) => prompts
                .iter()
                .zip(seeds)
                .map(|(prompt, &seed)| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let mut seq = prompt.clone();
                    let mut out = Generation {
                        tokens: Vec::new(),
                        stopped: false,
                    };
                    while out.tokens.len() < p.max_new_tokens && seq.len() < max_seq_len {
                        let t = seq.len();
                        let x = Tensor::<2, Int>::from_data(
                            TensorData::new(
                                seq.iter().map(|&v| v as i64).collect::<Vec<_>>(),
                                [1, t],
                            ),
                            device,
                        );
                        let logits = m.forward(x);
                        let v = logits.dims()[2];
                        let last: Vec<f32> = logits
                            .slice([0..1, t - 1..t, 0..v])
                            .into_data()
                            .try_to_vec()
                            .unwrap_or_default();
                        let next = pick_token(&last, p, &mut rng);
                        if Some(next) == p.stop_token {
                            out.stopped = true;
                            break;
                        }
                        out.tokens.push(next);
                        seq.push(next);
                    }
                    Ok(out)
                })
                .collect(),
        }
    }
}
