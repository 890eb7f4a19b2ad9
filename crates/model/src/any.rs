//! Either model family behind one type. `Decoder` is what the sampler, the scorers and the
//! trainers need (hidden states with positions/mask/KV cache, the LM head); `Lm` is a burn
//! Module enum over the Llama family (Llama, Qwen2, didact's own rounds) and GPT-2, so a run
//! trains, samples and saves whichever architecture its checkpoint has. `LmConfig` and
//! `load`/`save` pick the family by `architectures` in `config.json`.

use crate::checkpoint;
use crate::error::ModelError;
use crate::gpt2::{self, Gpt2, Gpt2Config};
use crate::llama::{KvCache, Llama, LlamaConfig, Positions};
use crate::tokenizer::Tok;
use crate::weights::WeightDtype;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use std::path::Path;

/// A causal decoder the sampler and the trainers can run.
pub trait Decoder {
    /// Final hidden states.
    ///
    /// # Shapes
    /// - `tokens`: `[B, T]` → `[B, T, d_model]`
    fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        pos: &Positions,
        cache: Option<&mut KvCache>,
    ) -> Tensor<3>;

    /// # Shapes
    /// - `hidden`: `[B, T, d_model]` → `[B, T, vocab]`
    fn logits(&self, hidden: Tensor<3>) -> Tensor<3>;

    fn n_layers(&self) -> usize;

    /// Full causal forward from position 0 (training and scoring).
    ///
    /// # Shapes
    /// - `tokens`: `[B, T]` → logits `[B, T, vocab]`
    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.logits(self.hidden(tokens, &Positions::causal(), None))
    }
}

impl Decoder for Llama {
    fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        pos: &Positions,
        cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        Llama::hidden(self, tokens, pos, cache)
    }
    fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        Llama::logits(self, hidden)
    }
    fn n_layers(&self) -> usize {
        Llama::n_layers(self)
    }
}

impl Decoder for Gpt2 {
    fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        pos: &Positions,
        cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        Gpt2::hidden(self, tokens, pos, cache)
    }
    fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        Gpt2::logits(self, hidden)
    }
    fn n_layers(&self) -> usize {
        Gpt2::n_layers(self)
    }
}

/// A model of either family.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Lm {
    Llama(Llama),
    Gpt2(Gpt2),
}

impl Decoder for Lm {
    fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        pos: &Positions,
        cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        match self {
            Lm::Llama(m) => m.hidden(tokens, pos, cache),
            Lm::Gpt2(m) => m.hidden(tokens, pos, cache),
        }
    }
    fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match self {
            Lm::Llama(m) => m.logits(hidden),
            Lm::Gpt2(m) => m.logits(hidden),
        }
    }
    fn n_layers(&self) -> usize {
        match self {
            Lm::Llama(m) => m.n_layers(),
            Lm::Gpt2(m) => m.blocks.len(),
        }
    }
}

/// What decides a model's memory (see [`LmConfig::dims`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Width of the keys (and values): kv heads × head size.
    pub kv_dim: usize,
    pub d_ff: usize,
    pub vocab: usize,
    pub max_seq_len: usize,
    /// Parameters, counted as the HF checkpoint stores them.
    pub n_params: usize,
}

/// The shape of an `Lm`.
#[derive(Debug, Clone, PartialEq)]
pub enum LmConfig {
    Llama(LlamaConfig),
    Gpt2(Gpt2Config),
}

impl LmConfig {
    pub fn max_seq_len(&self) -> usize {
        match self {
            LmConfig::Llama(c) => c.max_seq_len,
            LmConfig::Gpt2(c) => c.n_positions,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            LmConfig::Llama(c) => c.vocab_size,
            LmConfig::Gpt2(c) => c.vocab_size,
        }
    }

    /// The HF architecture name it is saved as.
    pub fn architecture(&self) -> &'static str {
        match self {
            LmConfig::Llama(c) if c.qkv_bias => "Qwen2ForCausalLM",
            LmConfig::Llama(_) => "LlamaForCausalLM",
            LmConfig::Gpt2(_) => "GPT2LMHeadModel",
        }
    }

    /// The sizes that decide memory: widths, depth, vocabulary, context and parameters.
    pub fn dims(&self) -> Dims {
        match self {
            LmConfig::Llama(c) => {
                let (d, kv, f) = (c.d_model, c.n_kv_heads * c.head_dim(), c.ffn_dim());
                let bias = if c.qkv_bias { d + 2 * kv } else { 0 };
                let block = 2 * d + 2 * d * d + 2 * d * kv + bias + 3 * d * f;
                let head = if c.tie_embeddings {
                    0
                } else {
                    c.vocab_size * d
                };
                Dims {
                    d_model: d,
                    n_layers: c.n_layers,
                    n_heads: c.n_heads,
                    kv_dim: kv,
                    d_ff: f,
                    vocab: c.vocab_size,
                    max_seq_len: c.max_seq_len,
                    n_params: c.vocab_size * d + c.n_layers * block + d + head,
                }
            }
            LmConfig::Gpt2(c) => {
                let (d, f) = (c.d_model, c.d_ff);
                let block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d);
                Dims {
                    d_model: d,
                    n_layers: c.n_layers,
                    n_heads: c.n_heads,
                    kv_dim: d,
                    d_ff: f,
                    vocab: c.vocab_size,
                    max_seq_len: c.n_positions,
                    n_params: (c.vocab_size + c.n_positions) * d + c.n_layers * block + 2 * d,
                }
            }
        }
    }

    /// The Llama-family shape, when it is one.
    pub fn as_llama(&self) -> Option<&LlamaConfig> {
        match self {
            LmConfig::Llama(c) => Some(c),
            LmConfig::Gpt2(_) => None,
        }
    }
}

/// A loaded model with its shape and tokenizer.
pub struct AnyCheckpoint {
    pub model: Lm,
    pub config: LmConfig,
    pub tokenizer: Tok,
    pub max_seq_len: usize,
    pub vocab_size: usize,
    /// How the checkpoint stored its weights (`checkpoint::WeightDtype`; compute is f32).
    pub dtype: WeightDtype,
}

fn is_gpt2(dir: &Path) -> crate::Result<bool> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
    Ok(serde_json::from_str::<serde_json::Value>(&text)
        .map(|v| v["architectures"][0] == "GPT2LMHeadModel")
        .unwrap_or(false))
}

/// Read only the shape of a checkpoint directory.
pub fn config_from_dir(dir: &Path) -> crate::Result<LmConfig> {
    let path = dir.join("config.json");
    Ok(if is_gpt2(dir)? {
        LmConfig::Gpt2(gpt2::config_from_hf_json(&path)?)
    } else {
        LmConfig::Llama(checkpoint::config_from_hf_json(&path)?)
    })
}

/// Load any supported checkpoint directory.
pub fn load(dir: &Path, device: &Device) -> crate::Result<AnyCheckpoint> {
    if !is_gpt2(dir)? {
        let ck = checkpoint::load(dir, device)?;
        return Ok(AnyCheckpoint {
            max_seq_len: ck.config.max_seq_len,
            vocab_size: ck.config.vocab_size,
            model: Lm::Llama(ck.model),
            config: LmConfig::Llama(ck.config),
            tokenizer: ck.tokenizer,
            dtype: ck.dtype,
        });
    }
    let (cfg, model, dtype) = gpt2::load_with_dtype(dir, device)?;
    let tokenizer = checkpoint::load_tokenizer(dir, cfg.vocab_size)?;
    Ok(AnyCheckpoint {
        max_seq_len: cfg.n_positions,
        vocab_size: cfg.vocab_size,
        model: Lm::Gpt2(model),
        config: LmConfig::Gpt2(cfg),
        tokenizer,
        dtype,
    })
}

/// `load`, with a PEFT LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`)
/// merged into the weights as they are read: the model PEFT's `merge_and_unload` would give.
/// Refused when an adapter tensor names a module the base does not have or has another shape.
pub fn load_with_adapter(
    dir: &Path,
    adapter: Option<&Path>,
    device: &Device,
) -> crate::Result<AnyCheckpoint> {
    let Some(adapter_dir) = adapter else {
        return load(dir, device);
    };
    let adapter = crate::lora::PeftAdapter::read(adapter_dir)?;
    let config = config_from_dir(dir)?;
    let tokenizer = checkpoint::load_tokenizer(dir, config.vocab_size())?;
    let mut base = crate::weights::SafetensorsSource::open_dir(dir)?;
    let mut src = crate::lora::MergingSource::new(&mut base, &adapter);
    let model = match &config {
        LmConfig::Llama(c) => Lm::Llama(Llama::from_source(c, &mut src, device)?),
        LmConfig::Gpt2(c) => Lm::Gpt2(Gpt2::from_source(c, &mut src, device)?),
    };
    src.finish()?;
    Ok(AnyCheckpoint {
        model,
        max_seq_len: config.max_seq_len(),
        vocab_size: config.vocab_size(),
        config,
        tokenizer,
        dtype: base.dtype(),
    })
}

/// Save in the model's own HF layout, atomically, in f32. The config must be the model's
/// family.
pub fn save(dir: &Path, cfg: &LmConfig, model: &Lm, tok: &Tok) -> crate::Result<()> {
    save_as(dir, cfg, model, tok, WeightDtype::F32)
}

/// `save`, storing the weights as `dtype`.
pub fn save_as(
    dir: &Path,
    cfg: &LmConfig,
    model: &Lm,
    tok: &Tok,
    dtype: WeightDtype,
) -> crate::Result<()> {
    match (cfg, model) {
        (LmConfig::Llama(c), Lm::Llama(m)) => checkpoint::save_as(dir, c, m, tok, dtype),
        (LmConfig::Gpt2(c), Lm::Gpt2(m)) => gpt2::save_as(dir, c, m, tok, dtype),
        _ => Err(ModelError::Config(format!(
            "{}: the model and its config are of different families",
            dir.display()
        ))),
    }
}
