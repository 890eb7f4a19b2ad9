//! What every stage may use besides its own part of the plan: the device, the tokenizer, the
//! model's shape, the run directory, the run seed, which peer policy (`[run] peers`) the
//! stage works for and whether to draw progress bars. Small on purpose — a stage's inputs are
//! its arguments, not fields reached through a context.

use crate::error::{LoopError, Result};
use crate::layout::RunDir;
use crate::lineage::ModelRef;
use crate::seeds::Stream;
use didact_core::Example;
use didact_model::burn::tensor::Device;
use didact_model::{LlamaConfig, Lm, LmConfig, Tok};
use didact_recipe::{Positional, Shape};
use didact_train::{Batching, TokenRow};

pub struct Env<'a> {
    pub device: &'a Device,
    pub tok: &'a Tok,
    /// The policy's shape.
    pub cfg: &'a LmConfig,
    pub dir: &'a RunDir,
    pub seed: u64,
    /// The policy this environment's models belong to (`[run] peers`); 0 = the run's own.
    pub peer: u32,
    pub quiet: bool,
}

impl<'a> Env<'a> {
    /// The seed of a single stream.
    pub fn seed(&self, stream: Stream, index: u64) -> u64 {
        stream.seed(self.seed, index)
    }

    /// The same run as peer `p`: its own checkpoints (`layout::model_of`), initial weights,
    /// data order and sampling draws (`model_seed`); the data — prompts, mix, evaluation —
    /// stays the run's.
    pub fn peer(&self, p: u32) -> Env<'a> {
        Env { peer: p, ..*self }
    }

    /// The seed of the model's own draws — initial weights, data order, sampling: the run
    /// seed for peer 0 (so one policy draws as before peers existed), else the peer's own.
    pub fn model_seed(&self) -> u64 {
        match self.peer {
            0 => self.seed,
            p => self.seed(Stream::Peer, p as u64),
        }
    }

    pub fn max_len(&self) -> usize {
        self.cfg.max_seq_len()
    }

    /// How training rows are batched, with the data order of `stream` at `index`.
    pub fn batching(&self, stream: Stream, index: u64) -> Batching {
        Batching {
            max_len: self.max_len(),
            pad_id: self.tok.pad_id,
            seed: stream.seed(self.model_seed(), index),
            pack: false,
        }
    }

    /// The policy's Llama-family shape (a teacher and a reward model need one).
    pub fn llama_config(&self) -> Result<&LlamaConfig> {
        self.cfg.as_llama().ok_or_else(|| LoopError::RunDir {
            path: self.dir.root().to_path_buf(),
            msg: format!(
                "this needs a Llama-family model; the run's model is {}",
                self.cfg.architecture()
            ),
        })
    }

    /// Load the checkpoint a role uses (`lineage::model_for`); a round's model is this peer's.
    pub fn load(&self, m: &ModelRef) -> Result<Lm> {
        let dir = match m {
            ModelRef::Fresh => {
                let init = Stream::PolicyInit.seed(self.model_seed(), 0);
                return Ok(Lm::Llama(self.llama_config()?.init(init, self.device)?));
            }
            ModelRef::Pretrained(dir) => dir.clone(),
            ModelRef::Round(r) => self.dir.model_of(*r, self.peer),
            ModelRef::Teacher => self.dir.teacher(),
            ModelRef::Endpoint | ModelRef::Oracle => {
                return Err(LoopError::RunDir {
                    path: self.dir.root().to_path_buf(),
                    msg: format!("{m:?} has no checkpoint to load"),
                });
            }
        };
        Ok(didact_model::any::load(&dir, self.device)?.model)
    }

    /// `prompt ++ completion ++ [eos]`, loss on the completion.
    pub fn tokenize(&self, rows: &[Example]) -> Result<Vec<TokenRow>> {
        rows.iter()
            .map(|e| {
                let mut ids = self.tok.encode(&e.prompt)?;
                let n_prompt = ids.len();
                ids.extend(self.tok.encode(&e.completion)?);
                ids.push(self.tok.eos_id);
                Ok(TokenRow { ids, n_prompt })
            })
            .collect()
    }
}

/// A Llama config of `shape` over `tok`'s vocabulary; position coupling takes the digits'
/// token ids from `tok` (they must be ten consecutive ids, as a char-level tokenizer has).
pub fn model_config(shape: &Shape, tok: &Tok) -> Result<LlamaConfig> {
    let cfg = shape_config(shape, tok.vocab_size());
    if shape.positional != Positional::Coupled {
        return Ok(cfg);
    }
    let ids = tok.encode("0123456789")?;
    let zero = ids[0] as usize;
    if ids.len() != 10 || ids.iter().enumerate().any(|(i, &t)| t as usize != zero + i) {
        return Err(didact_model::ModelError::Config(format!(
            "model.positional = \"coupled\" needs the ten digits as ten consecutive tokens (got {ids:?})"
        ))
        .into());
    }
    Ok(cfg.with_coupled_zero(Some(zero)))
}

/// A Llama config of `shape` over a vocabulary (positions as the shape says, except coupling,
/// which needs the tokenizer: `model_config`).
pub fn shape_config(shape: &Shape, vocab: usize) -> LlamaConfig {
    LlamaConfig::new(vocab)
        .with_d_model(shape.d_model)
        .with_n_layers(shape.n_layers)
        .with_n_heads(shape.n_heads)
        .with_n_kv_heads(shape.n_kv_heads)
        .with_d_ff(shape.d_ff.unwrap_or(0))
        .with_max_seq_len(shape.max_seq_len)
        .with_rope_theta(shape.rope_theta)
        .with_rope_linear_factor(shape.rope_scaling)
        .with_nope(shape.positional == Positional::None)
        .with_tie_embeddings(shape.tie_embeddings)
}
