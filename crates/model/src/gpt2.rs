//! GPT-2 (Radford et al. 2019) as transformers' `GPT2LMHeadModel` (`modeling_gpt2.py`):
//! token + learned absolute position embeddings, pre-LayerNorm blocks, a fused q/k/v projection
//! (`c_attn`), GELU with the tanh approximation (`gelu_new`), tied LM head. HF stores GPT-2's
//! Conv1D weights as `[in, out]`, which is burn's `Linear` layout, so they load untransposed.
//! Load, save, forward with positions/masks/KV cache like the Llama family, so the same
//! sampler and trainers run it (through `crate::lm::Lm`).

use crate::error::ModelError;
use crate::llama::{KvCache, Positions, WeightSource};
use crate::weights::WeightDtype;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde_json::Value;
use std::path::Path;

#[derive(Config, Debug, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    /// Longest sequence (rows of the position table).
    pub n_positions: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// MLP inner size (`n_inner`, default 4 · d_model).
    pub d_ff: usize,
    #[config(default = 1e-5)]
    pub eps: f64,
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    /// `[d, 3d]`: q, k, v side by side.
    pub c_attn: Linear,
    pub attn_proj: Linear,
    pub ln_2: LayerNorm,
    pub c_fc: Linear,
    pub mlp_proj: Linear,
    pub n_heads: usize,
}

#[derive(Module, Debug)]
pub struct Gpt2 {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub blocks: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

/// `gelu_new`: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let c = (2.0f64 / std::f64::consts::PI).sqrt();
    let inner = (x.clone() + x.clone().powi_scalar(3) * 0.044715) * c;
    x * (inner.tanh() + 1.0) * 0.5
}

fn conv1d(
    src: &mut dyn WeightSource,
    p: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> crate::Result<Linear> {
    let w = src.take(&format!("{p}.weight"), &[d_in, d_out])?;
    let b = src.take(&format!("{p}.bias"), &[d_out])?;
    Ok(Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            device,
        ))),
    })
}

fn layer_norm(
    src: &mut dyn WeightSource,
    p: &str,
    d: usize,
    eps: f64,
    device: &Device,
) -> crate::Result<LayerNorm> {
    let mut ln = LayerNormConfig::new(d).with_epsilon(eps).init(device);
    let g = src.take(&format!("{p}.weight"), &[d])?;
    let b = src.take(&format!("{p}.bias"), &[d])?;
    ln.gamma = Param::from_tensor(Tensor::from_data(TensorData::new(g, [d]), device));
    ln.beta = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(b, [d]),
        device,
    )));
    Ok(ln)
}

fn embedding(
    src: &mut dyn WeightSource,
    name: &str,
    n: usize,
    d: usize,
    device: &Device,
) -> crate::Result<Embedding> {
    let w = src.take(name, &[n, d])?;
    Ok(Embedding {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [n, d]), device)),
    })
}

impl Gpt2 {
    /// Build from HF tensor names (`transformer.h.N.attn.c_attn.weight`, …).
    pub fn from_source(
        cfg: &Gpt2Config,
        src: &mut dyn WeightSource,
        device: &Device,
    ) -> crate::Result<Self> {
        if cfg.n_heads == 0 || !cfg.d_model.is_multiple_of(cfg.n_heads) {
            return Err(ModelError::Config(format!(
                "n_embd {} is not divisible by n_head {}",
                cfg.d_model, cfg.n_heads
            )));
        }
        let d = cfg.d_model;
        let blocks = (0..cfg.n_layers)
            .map(|i| {
                let p = format!("transformer.h.{i}");
                Ok(Gpt2Block {
                    ln_1: layer_norm(src, &format!("{p}.ln_1"), d, cfg.eps, device)?,
                    c_attn: conv1d(src, &format!("{p}.attn.c_attn"), d, 3 * d, device)?,
                    attn_proj: conv1d(src, &format!("{p}.attn.c_proj"), d, d, device)?,
                    ln_2: layer_norm(src, &format!("{p}.ln_2"), d, cfg.eps, device)?,
                    c_fc: conv1d(src, &format!("{p}.mlp.c_fc"), d, cfg.d_ff, device)?,
                    mlp_proj: conv1d(src, &format!("{p}.mlp.c_proj"), cfg.d_ff, d, device)?,
                    n_heads: cfg.n_heads,
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Gpt2 {
            wte: embedding(src, "transformer.wte.weight", cfg.vocab_size, d, device)?,
            wpe: embedding(src, "transformer.wpe.weight", cfg.n_positions, d, device)?,
            blocks,
            ln_f: layer_norm(src, "transformer.ln_f", d, cfg.eps, device)?,
        })
    }

    /// Final hidden states (after `ln_f`), with positions, masking and an optional KV cache as
    /// in [`crate::Llama::hidden`]: `pos.ids` (or `start..start+T`) index the learned position
    /// table; `pos.mask` (`true` = may not attend) or, without one, causal over the cached
    /// keys plus the new ones.
    ///
    /// # Shapes
    /// - `tokens`: `[B, T]` → `[B, T, d_model]`
    pub fn hidden(
        &self,
        tokens: Tensor<2, Int>,
        pos: &Positions,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let pos_ids = match &pos.ids {
            Some(ids) => ids.clone(),
            None => Tensor::<1, Int>::arange(pos.start as i64..(pos.start + t) as i64, &device)
                .reshape([1, t]),
        };
        let mut x = self.wte.forward(tokens) + self.wpe.forward(pos_ids); // [B, T, D]
        let d = x.dims()[2];
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let tk = past + t;
        // True = masked: a key after the query's own position.
        let mask = match &pos.mask {
            Some(m) => m.clone(),
            None => {
                Tensor::<2, Bool>::tril_mask([t, tk], past as i64, &device).reshape([1, 1, t, tk])
            }
        };
        for (i, blk) in self.blocks.iter().enumerate() {
            let h = blk.n_heads;
            let hd = d / h;
            let qkv = blk.c_attn.forward(blk.ln_1.forward(x.clone())); // [B, T, 3D]
            let split = |k: usize| {
                qkv.clone()
                    .narrow(2, k * d, d)
                    .reshape([b, t, h, hd])
                    .swap_dims(1, 2)
            }; // [B, H, T, hd]
            let (q, mut k, mut v) = (split(0), split(1), split(2));
            if let Some(c) = cache.as_deref_mut() {
                if let Some((pk, pv)) = c.layers[i].take() {
                    k = Tensor::cat(vec![pk, k], 2);
                    v = Tensor::cat(vec![pv, v], 2);
                }
                c.layers[i] = Some((k.clone(), v.clone()));
            }
            let scores = q.matmul(k.transpose()) / (hd as f64).sqrt(); // [B, H, T, Tk]
            let scores = scores.mask_fill(mask.clone(), f32::NEG_INFINITY);
            let a = softmax(scores, 3)
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([b, t, d]); // [B, T, D]
            x = x + blk.attn_proj.forward(a);
            let m = blk
                .mlp_proj
                .forward(gelu_new(blk.c_fc.forward(blk.ln_2.forward(x.clone()))));
            x = x + m;
        }
        self.ln_f.forward(x)
    }

    /// Tied LM head.
    ///
    /// # Shapes
    /// - `hidden`: `[B, T, d_model]` → `[B, T, vocab]`
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        // In f32 whatever the compute dtype (log-softmax and the losses need it).
        crate::llama::tied_logits(hidden, self.wte.weight.val()).cast(burn::tensor::FloatDType::F32)
    }

    /// Full causal forward from position 0.
    ///
    /// # Shapes
    /// - `tokens`: `[B, T]` → logits `[B, T, vocab]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.logits(self.hidden(tokens, &Positions::causal(), None))
    }

    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }
}

/// Read a `GPT2LMHeadModel` `config.json`.
pub fn config_from_hf_json(path: &Path) -> crate::Result<Gpt2Config> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let bad = |msg: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if v["architectures"][0].as_str() != Some("GPT2LMHeadModel") {
        return Err(bad("not a GPT2LMHeadModel config".into()));
    }
    if v["activation_function"]
        .as_str()
        .is_some_and(|a| a != "gelu_new")
    {
        return Err(bad(format!(
            "activation_function {} is not supported (gelu_new)",
            v["activation_function"]
        )));
    }
    let get = |k: &str| {
        v[k].as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad(format!("missing or non-integer `{k}`")))
    };
    let d = get("n_embd")?;
    Ok(Gpt2Config {
        vocab_size: get("vocab_size")?,
        n_positions: get("n_positions")?,
        d_model: d,
        n_layers: get("n_layer")?,
        n_heads: get("n_head")?,
        d_ff: v["n_inner"].as_u64().map_or(4 * d, |x| x as usize),
        eps: v["layer_norm_epsilon"].as_f64().unwrap_or(1e-5),
    })
}

/// Every tensor under its transformers name and shape (Conv1D weights `[in, out]`).
pub fn named_tensors(m: &Gpt2) -> crate::Result<Vec<crate::checkpoint::NamedTensor>> {
    let mut out = Vec::new();
    let mut mat = |name: String, t: Tensor<2>| -> crate::Result<()> {
        let dims = t.dims().to_vec();
        out.push((name, dims, crate::checkpoint::host(t)?.0));
        Ok(())
    };
    mat("transformer.wte.weight".into(), m.wte.weight.val())?;
    mat("transformer.wpe.weight".into(), m.wpe.weight.val())?;
    let mut vecs: Vec<(String, Tensor<1>)> = Vec::new();
    for (i, b) in m.blocks.iter().enumerate() {
        let p = format!("transformer.h.{i}");
        for (name, l) in [
            ("attn.c_attn", &b.c_attn),
            ("attn.c_proj", &b.attn_proj),
            ("mlp.c_fc", &b.c_fc),
            ("mlp.c_proj", &b.mlp_proj),
        ] {
            mat(format!("{p}.{name}.weight"), l.weight.val())?;
            if let Some(bias) = &l.bias {
                vecs.push((format!("{p}.{name}.bias"), bias.val()));
            }
        }
        for (name, ln) in [("ln_1", &b.ln_1), ("ln_2", &b.ln_2)] {
            vecs.push((format!("{p}.{name}.weight"), ln.gamma.val()));
            if let Some(beta) = &ln.beta {
                vecs.push((format!("{p}.{name}.bias"), beta.val()));
            }
        }
    }
    vecs.push(("transformer.ln_f.weight".into(), m.ln_f.gamma.val()));
    if let Some(beta) = &m.ln_f.beta {
        vecs.push(("transformer.ln_f.bias".into(), beta.val()));
    }
    for (name, t) in vecs {
        let n = t.dims()[0];
        out.push((name, vec![n], crate::checkpoint::host(t.reshape([1, n]))?.0));
    }
    Ok(out)
}

/// `config.json` of a `GPT2LMHeadModel`.
pub fn config_to_hf_json(cfg: &Gpt2Config, tok: &crate::tokenizer::Tok) -> Value {
    serde_json::json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.n_positions,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layers,
        "n_head": cfg.n_heads,
        "n_inner": cfg.d_ff,
        "layer_norm_epsilon": cfg.eps,
        "tie_word_embeddings": true,
        "scale_attn_weights": true,
        "bos_token_id": tok.eos_id,
        "eos_token_id": tok.eos_id,
        "torch_dtype": "float32",
    })
}

/// Save in transformers' layout, atomically, in f32.
pub fn save(
    dir: &Path,
    cfg: &Gpt2Config,
    model: &Gpt2,
    tok: &crate::tokenizer::Tok,
) -> crate::Result<()> {
    save_as(dir, cfg, model, tok, WeightDtype::F32)
}

/// `save`, storing the weights as `dtype` (`torch_dtype` in config.json says which).
pub fn save_as(
    dir: &Path,
    cfg: &Gpt2Config,
    model: &Gpt2,
    tok: &crate::tokenizer::Tok,
    dtype: WeightDtype,
) -> crate::Result<()> {
    let mut config = config_to_hf_json(cfg, tok);
    config["torch_dtype"] = dtype.hf_name().into();
    crate::checkpoint::write_dir_as(dir, named_tensors(model)?, &config, tok, dtype)
}

/// Load `dir/{config.json, model.safetensors (or shards)}`.
pub fn load(dir: &Path, device: &Device) -> crate::Result<(Gpt2Config, Gpt2)> {
    let (cfg, model, _) = load_with_dtype(dir, device)?;
    Ok((cfg, model))
}

/// `load`, with the dtype the weights were stored in.
pub fn load_with_dtype(
    dir: &Path,
    device: &Device,
) -> crate::Result<(Gpt2Config, Gpt2, WeightDtype)> {
    let cfg = config_from_hf_json(&dir.join("config.json"))?;
    let mut src = crate::weights::SafetensorsSource::open_dir(dir)?;
    let model = Gpt2::from_source(&cfg, &mut src, device)?;
    Ok((cfg, model, src.dtype()))
}
