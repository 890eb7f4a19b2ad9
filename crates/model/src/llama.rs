//! Llama-style decoder-only transformer: token embedding, pre-norm blocks of RMSNorm →
//! grouped-query causal self-attention with rotary position embedding → RMSNorm → SwiGLU MLP,
//! final RMSNorm and LM head (optionally tied to the embedding).
//!
//! Paper: Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models"
//! (RoPE: Su et al. 2021; SwiGLU: Shazeer 2020; GQA: Ainslie et al. 2023).
//! Reference implementation followed for layout and numerics: Hugging Face transformers
//! `models/llama/modeling_llama.py` (rotate-half RoPE, `hidden * rsqrt(mean(h²) + eps) * w`).
//! Weights are named as in HF (`model.layers.N.self_attn.q_proj.weight`, ...) so checkpoints
//! load into transformers unchanged (see `checkpoint.rs`).
//!
//! Position options beyond HF Llama, for length generalisation: linear RoPE scaling (HF's
//! `rope_scaling` linear), no positional encoding (NoPE, Kazemnejad et al. 2023) and position
//! coupling (Cho et al. 2024: positions computed from the digits, continued across the KV
//! cache). The last two are saved as `didact_*` keys in config.json, which transformers ignores.
//!
//! The model has no backend type parameter: burn 0.22 carries the backend in the tensor's
//! `Device`, so the same code trains on `device.autodiff()` and samples on the plain device.

use crate::error::ModelError;
pub use crate::weights::WeightSource;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::silu;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// Shape and numerics of a Llama-style model. Field names follow didact recipes; the HF
/// `config.json` names are produced by [`LlamaConfig::to_hf_json`].
#[derive(Config, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the embedding matrix).
    pub vocab_size: usize,
    /// Hidden size.
    #[config(default = 128)]
    pub d_model: usize,
    /// Number of transformer blocks.
    #[config(default = 2)]
    pub n_layers: usize,
    /// Query heads; `d_model` must be divisible by it.
    #[config(default = 4)]
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); must divide `n_heads`.
    #[config(default = 4)]
    pub n_kv_heads: usize,
    /// SwiGLU inner size; 0 picks Llama's rule (8/3 · d_model rounded up to a multiple of 32).
    #[config(default = 0)]
    pub d_ff: usize,
    /// Longest sequence (prompt + completion) the rotary tables cover.
    #[config(default = 256)]
    pub max_seq_len: usize,
    /// RoPE base frequency.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Linear RoPE scaling (HF `rope_scaling = {rope_type: "linear", factor}`): positions are
    /// divided by this factor, so the fastest rotary frequency turns 1/factor radians per
    /// position and aliases only after 2π·factor positions.
    #[config(default = 1.0)]
    pub rope_linear_factor: f64,
    /// No positional encoding at all (NoPE, Kazemnejad et al. 2023): attention sees order only
    /// through the causal mask. The rotary tables become the identity rotation, so every code
    /// path (cache, packing, position ids) is unchanged. Not an HF Llama option: saved as
    /// `didact_nope` in config.json.
    #[config(default = false)]
    pub nope: bool,
    /// Position coupling (Cho et al. 2024): when set, the token id of the digit `0` (the ten
    /// digits are ids `z..z+10`). A digit's position is one more than the token before it if
    /// that was a digit, else 1; every other token is at 0. In the reversed sum format
    /// (`714+68=305`) the digits of one significance then share a position, so the digit to
    /// add is always one rotary step away, at any length. Saved as `didact_coupled_zero`.
    #[config(default = "None")]
    pub coupled_zero: Option<usize>,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Share the embedding matrix with the LM head.
    #[config(default = false)]
    pub tie_embeddings: bool,
    /// Biases on the q/k/v projections (Qwen2; saved as `Qwen2ForCausalLM`).
    #[config(default = false)]
    pub qkv_bias: bool,
}

impl LlamaConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// SwiGLU inner size after applying the `d_ff = 0` rule.
    pub fn ffn_dim(&self) -> usize {
        if self.d_ff > 0 {
            self.d_ff
        } else {
            (8 * self.d_model / 3).div_ceil(32) * 32
        }
    }

    /// Check that the shape is buildable; names the offending field.
    pub fn check(&self) -> crate::Result<()> {
        let bad = |field: &str, why: String| Err(ModelError::Config(format!("{field}: {why}")));
        if self.vocab_size == 0 {
            return bad("vocab_size", "must be > 0".into());
        }
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad(
                "n_heads",
                format!(
                    "must divide d_model = {} (got {})",
                    self.d_model, self.n_heads
                ),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad("d_model", "d_model / n_heads must be even for RoPE".into());
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(
                "n_kv_heads",
                format!(
                    "must divide n_heads = {} (got {})",
                    self.n_heads, self.n_kv_heads
                ),
            );
        }
        if self.n_layers == 0 {
            return bad("n_layers", "must be > 0".into());
        }
        Ok(())
    }

    /// Build a model with freshly initialised weights: N(0, 0.02) for matrices (as HF
    /// `initializer_range`), ones for norms. Drawn from a seeded ChaCha stream, so the same
    /// seed gives the same weights on every backend.
    pub fn init(&self, seed: u64, device: &Device) -> crate::Result<Llama> {
        self.check()?;
        let mut source = crate::weights::RandomInit::new(seed, 0.02);
        Llama::from_source(self, &mut source, device)
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub input_layernorm: RmsNorm,
    pub attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: SwiGlu,
}

/// Grouped-query causal self-attention with rotary embedding.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct SwiGlu {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

/// The whole decoder.
#[derive(Module, Debug)]
pub struct Llama {
    pub embed_tokens: Embedding,
    pub layers: Vec<Block>,
    pub norm: RmsNorm,
    /// `None` when the head is tied to `embed_tokens`.
    pub lm_head: Option<Linear>,
    /// RoPE tables `[max_seq_len, head_dim]` (cos and sin, rotate-half layout). Constants.
    pub rope_cos: Tensor<2>,
    pub rope_sin: Tensor<2>,
    /// `LlamaConfig::coupled_zero`: positions come from the tokens (position coupling).
    pub coupled_zero: Option<usize>,
}

/// Per-layer key/value cache for incremental decoding.
/// Keys/values are stored after RoPE, with `n_kv_heads` heads: `[B, KV, T_cached, head_dim]`.
#[derive(Debug, Default)]
pub struct KvCache {
    pub(crate) layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Position coupling: each row's position of its last cached token.
    pub(crate) coupled_last: Vec<i64>,
}

impl KvCache {
    pub fn new(n_layers: usize) -> Self {
        KvCache {
            layers: (0..n_layers).map(|_| None).collect(),
            coupled_last: Vec::new(),
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map(|(k, _)| k.dims()[2])
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How positions and masking are given to a forward pass.
pub struct Positions {
    /// Position ids `[B, T]`; `None` means `start..start+T` for every row.
    pub ids: Option<Tensor<2, Int>>,
    pub start: usize,
    /// Attention mask `[B, 1, T_q, T_k]`, `true` = may NOT attend. `None` = plain causal.
    pub mask: Option<Tensor<4, Bool>>,
}

impl Positions {
    /// Plain causal positions from 0 (training, equal-length prompts).
    pub fn causal() -> Self {
        Positions {
            ids: None,
            start: 0,
            mask: None,
        }
    }
}

fn linear(
    source: &mut dyn WeightSource,
    name: &str,
    d_in: usize,
    d_out: usize,
    device: &Device,
) -> crate::Result<Linear> {
    // HF stores [out, in]; burn's Linear multiplies by [in, out].
    let w = source.take(name, &[d_out, d_in])?;
    let t = Tensor::<2>::from_data(TensorData::new(w, [d_out, d_in]), device).transpose();
    Ok(Linear {
        weight: Param::from_tensor(t),
        bias: None,
    })
}

/// `linear`, plus the `….bias` tensor when `bias` is set (Qwen2's q/k/v projections).
fn linear_b(
    source: &mut dyn WeightSource,
    name: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &Device,
) -> crate::Result<Linear> {
    let mut l = linear(source, name, d_in, d_out, device)?;
    if bias {
        let b_name = format!("{}.bias", name.trim_end_matches(".weight"));
        let b = source.take(&b_name, &[d_out])?;
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_out]),
            device,
        )));
    }
    Ok(l)
}

fn rms_norm(
    source: &mut dyn WeightSource,
    name: &str,
    d: usize,
    eps: f64,
    device: &Device,
) -> crate::Result<RmsNorm> {
    let w = source.take(name, &[d])?;
    Ok(RmsNorm {
        gamma: Param::from_tensor(Tensor::<1>::from_data(TensorData::new(w, [d]), device)),
        epsilon: eps,
    })
}

/// RoPE tables in HF's rotate-half layout: `cos[p, i] = cos(p · θ^(-2(i mod h/2)/h))`.
fn rope_tables(cfg: &LlamaConfig, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let hd = cfg.head_dim();
    let half = hd / 2;
    let mut cos = Vec::with_capacity(cfg.max_seq_len * hd);
    let mut sin = Vec::with_capacity(cfg.max_seq_len * hd);
    for p in 0..cfg.max_seq_len {
        for i in 0..hd {
            let k = (i % half) as f64;
            let inv = 1.0 / cfg.rope_theta.powf(2.0 * k / hd as f64);
            // NoPE: angle 0 at every position, i.e. cos 1 and sin 0 (the identity rotation).
            let a = if cfg.nope {
                0.0
            } else {
                p as f64 / cfg.rope_linear_factor * inv
            };
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    let shape = [cfg.max_seq_len, hd];
    (
        Tensor::from_data(TensorData::new(cos, shape), device),
        Tensor::from_data(TensorData::new(sin, shape), device),
    )
}

impl Llama {
    /// Build the model, pulling every tensor from `source` by its HF name.
    pub fn from_source(
        cfg: &LlamaConfig,
        source: &mut dyn WeightSource,
        device: &Device,
    ) -> crate::Result<Self> {
        cfg.check()?;
        let (d, v, hd) = (cfg.d_model, cfg.vocab_size, cfg.head_dim());
        let emb = source.take("model.embed_tokens.weight", &[v, d])?;
        let embed_tokens = Embedding {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(emb, [v, d]), device)),
        };
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = format!("model.layers.{i}");
            layers.push(Block {
                input_layernorm: rms_norm(
                    source,
                    &format!("{p}.input_layernorm.weight"),
                    d,
                    cfg.norm_eps,
                    device,
                )?,
                attn: Attention {
                    q_proj: linear_b(
                        source,
                        &format!("{p}.self_attn.q_proj.weight"),
                        d,
                        cfg.n_heads * hd,
                        cfg.qkv_bias,
                        device,
                    )?,
                    k_proj: linear_b(
                        source,
                        &format!("{p}.self_attn.k_proj.weight"),
                        d,
                        cfg.n_kv_heads * hd,
                        cfg.qkv_bias,
                        device,
                    )?,
                    v_proj: linear_b(
                        source,
                        &format!("{p}.self_attn.v_proj.weight"),
                        d,
                        cfg.n_kv_heads * hd,
                        cfg.qkv_bias,
                        device,
                    )?,
                    o_proj: linear(
                        source,
                        &format!("{p}.self_attn.o_proj.weight"),
                        cfg.n_heads * hd,
                        d,
                        device,
                    )?,
                    n_heads: cfg.n_heads,
                    n_kv_heads: cfg.n_kv_heads,
                    head_dim: hd,
                },
                post_attention_layernorm: rms_norm(
                    source,
                    &format!("{p}.post_attention_layernorm.weight"),
                    d,
                    cfg.norm_eps,
                    device,
                )?,
                mlp: SwiGlu {
                    gate_proj: linear(
                        source,
                        &format!("{p}.mlp.gate_proj.weight"),
                        d,
                        cfg.ffn_dim(),
                        device,
                    )?,
                    up_proj: linear(
                        source,
                        &format!("{p}.mlp.up_proj.weight"),
                        d,
                        cfg.ffn_dim(),
                        device,
                    )?,
                    down_proj: linear(
                        source,
                        &format!("{p}.mlp.down_proj.weight"),
                        cfg.ffn_dim(),
                        d,
                        device,
                    )?,
                },
            });
        }
        let norm = rms_norm(source, "model.norm.weight", d, cfg.norm_eps, device)?;
        let lm_head = if cfg.tie_embeddings {
            None
        } else {
            Some(linear(source, "lm_head.weight", d, v, device)?)
        };
        let (rope_cos, rope_sin) = rope_tables(cfg, device);
        Ok(Llama {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope_cos,
            rope_sin,
            coupled_zero: cfg.coupled_zero,
        })
    }

    /// Final hidden states (after the last RMSNorm).
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
        let hd = self.rope_cos.dims()[1];
        let mut x = self.embed_tokens.forward(tokens.clone()); // [B, T, D]
        // The rotary tables in the activations' dtype (bf16 under `precision::autocast_bf16`).
        let dtype = x.dtype();
        let rope_cos = same_context(self.rope_cos.clone(), &tokens).cast(dtype);
        let rope_sin = same_context(self.rope_sin.clone(), &tokens).cast(dtype);
        let coupled = self.coupled_zero.map(|zero| {
            coupled_positions(&tokens, zero, self.rope_cos.dims()[0], cache.as_deref_mut())
        });
        // RoPE rows for these positions: [B or 1, 1, T, hd]
        let (cos, sin) = match coupled.as_ref().or(pos.ids.as_ref()) {
            None => (
                rope_cos
                    .clone()
                    .narrow(0, pos.start, t)
                    .reshape([1, 1, t, hd]),
                rope_sin
                    .clone()
                    .narrow(0, pos.start, t)
                    .reshape([1, 1, t, hd]),
            ),
            Some(ids) => {
                let flat = ids.clone().reshape([b * t]);
                (
                    rope_cos
                        .clone()
                        .select(0, flat.clone())
                        .reshape([b, 1, t, hd]),
                    rope_sin.select(0, flat).reshape([b, 1, t, hd]),
                )
            }
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let h = layer.attn.forward(
                layer.input_layernorm.forward(x.clone()),
                &cos,
                &sin,
                pos.mask.clone(),
                layer_cache,
            );
            x = x + h;
            let h = layer
                .mlp
                .forward(layer.post_attention_layernorm.forward(x.clone()));
            x = x + h;
        }
        self.norm.forward(x)
    }

    /// Project hidden states to vocabulary logits, in f32 whatever the compute dtype
    /// (log-softmax and the losses need it).
    ///
    /// # Shapes
    /// - `hidden`: `[B, T, d_model]` → `[B, T, vocab]`
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let logits = match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => tied_logits(hidden, self.embed_tokens.weight.val()),
        };
        logits.cast(burn::tensor::FloatDType::F32)
    }

    /// Full causal forward from position 0, no cache (training and scoring).
    ///
    /// # Shapes
    /// - `tokens`: `[B, T]` → logits `[B, T, vocab]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let h = self.hidden(tokens, &Positions::causal(), None);
        self.logits(h)
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
}

impl Attention {
    /// # Shapes
    /// - `x`: `[B, T, D]`; `cos`/`sin`: `[B|1, 1, T, hd]`; `mask`: `[B, 1, T, T_k]` → `[B, T, D]`
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, kv, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let q = self
            .q_proj
            .forward(x.clone())
            .reshape([b, t, h, hd])
            .swap_dims(1, 2); // [B, H, T, hd]
        let k = self
            .k_proj
            .forward(x.clone())
            .reshape([b, t, kv, hd])
            .swap_dims(1, 2); // [B, KV, T, hd]
        let v = self
            .v_proj
            .forward(x)
            .reshape([b, t, kv, hd])
            .swap_dims(1, 2); // [B, KV, T, hd]
        let q = apply_rope(q, cos, sin);
        let k = apply_rope(k, cos, sin);
        let had_cache;
        let (k, v) = match cache {
            Some(slot) => {
                had_cache = slot.is_some();
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => {
                had_cache = false;
                (k, v)
            }
        };
        let t_k = k.dims()[2];
        // Without an explicit mask, a fresh sequence is plain causal; one new token over a cache
        // may attend to every cached position.
        let is_causal = mask.is_none() && !(had_cache && t == 1);
        let (q, k, v, mask) = if kv == h {
            (q, k, v, mask.map(|m| m.expand([b, h, t, t_k])))
        } else if t == 1 && !is_causal {
            // Decoding one token per row over the cache: the `rep` query heads that share a KV
            // head become `rep` query rows of it, so the cache is read as it is instead of being
            // copied out to H heads every step (that copy was ≈15 % of sampling time, perf).
            // Same dot products and softmax rows; no causal mask is involved.
            let rep = h / kv;
            let mask = mask.map(|m| m.expand([b, kv, rep, t_k]));
            (q.reshape([b, kv, rep, hd]), k, v, mask)
        } else {
            let rep = h / kv;
            let k = k
                .unsqueeze_dim::<5>(2)
                .expand([b, kv, rep, t_k, hd])
                .reshape([b, h, t_k, hd]);
            let v = v
                .unsqueeze_dim::<5>(2)
                .expand([b, kv, rep, t_k, hd])
                .reshape([b, h, t_k, hd]);
            (q, k, v, mask.map(|m| m.expand([b, h, t, t_k])))
        };
        // [B, H, T, hd] (the grouped decode's [B, KV, rep, hd] with T = 1 is the same layout)
        let out = crate::attend::attend(q, k, v, mask, is_causal).reshape([b, h, t, hd]);
        self.o_proj
            .forward(out.swap_dims(1, 2).reshape([b, t, h * hd]))
    }
}

/// A constant (the rotary tables) in the autodiff context of `like`: burn's `train()` puts a
/// module's constants on the default gradient-checkpointing strategy, and an op mixing them
/// with activations made under activation checkpointing would mix strategies (burn refuses).
fn same_context<const D: usize>(t: Tensor<D>, like: &Tensor<2, Int>) -> Tensor<D> {
    match like.gradient_checkpointing_strategy() {
        Some(s) if t.is_autodiff() && t.gradient_checkpointing_strategy() != Some(s) => {
            t.with_gradient_checkpointing_strategy(s)
        }
        _ => t,
    }
}

/// Position coupling's ids `[B, T]` for `tokens`: a digit (id in `zero..zero + 10`) is one
/// past the token before it when that was a digit, else at 1; any other token is at 0. With a
/// cache, the rows continue from their last cached token's position (and the cache keeps the
/// new last ones). Positions stop at `rows - 1` (the rotary tables' last row).
fn coupled_positions(
    tokens: &Tensor<2, Int>,
    zero: usize,
    rows: usize,
    cache: Option<&mut KvCache>,
) -> Tensor<2, Int> {
    let [b, t] = tokens.dims();
    let ids: Vec<i64> = tokens
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .expect("int tokens");
    let zero = zero as i64;
    let mut last = match &cache {
        Some(c) if c.coupled_last.len() == b => c.coupled_last.clone(),
        _ => vec![0; b],
    };
    let mut pos = Vec::with_capacity(b * t);
    for (row, prev) in last.iter_mut().enumerate() {
        for &tok in &ids[row * t..(row + 1) * t] {
            *prev = match (zero..zero + 10).contains(&tok) {
                true => (*prev + 1).min(rows as i64 - 1),
                false => 0,
            };
            pos.push(*prev);
        }
    }
    if let Some(c) = cache {
        c.coupled_last = last;
    }
    Tensor::from_data(TensorData::new(pos, [b, t]), &tokens.device())
}

/// `x · cos + rotate_half(x) · sin`, with `rotate_half([a, b]) = [-b, a]` on the last dim.
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let hd = x.dims()[3];
    let half = hd / 2;
    let a = x.clone().narrow(3, 0, half);
    let b2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![b2.neg(), a], 3);
    x * cos.clone() + rotated * sin.clone()
}

impl SwiGlu {
    /// # Shapes
    /// - `x`: `[B, T, D]` → `[B, T, D]`
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let g = silu(self.gate_proj.forward(x.clone())); // [B, T, F]
        self.down_proj.forward(g * self.up_proj.forward(x))
    }
}

/// Make sure a sequence of `len` tokens fits the rotary tables.
/// Logits through a tied head: hidden states times the embedding matrix `[V, D]` transposed.
///
/// # Shapes
/// - `hidden`: `[B, T, D]` → `[B, T, V]`
pub(crate) fn tied_logits(hidden: Tensor<3>, embedding: Tensor<2>) -> Tensor<3> {
    let [b, t, d] = hidden.dims();
    let v = embedding.dims()[0];
    hidden
        .reshape([b * t, d])
        .matmul(embedding.transpose())
        .reshape([b, t, v])
}

pub fn check_len_raw(len: usize, max: usize) -> crate::Result<()> {
    if len > max {
        return Err(ModelError::TooLong { len, max });
    }
    Ok(())
}
