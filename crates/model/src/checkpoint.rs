//! Checkpoint directories in Hugging Face layout: `config.json` (LlamaForCausalLM or
//! Qwen2ForCausalLM fields, both
//! the transformers 4.x `rope_theta` and 5.x `rope_parameters` layouts are read),
//! `model.safetensors` with HF tensor names and `[out, in]` linear weights, `tokenizer.json`.
//! A save writes into a temp directory and renames it into place, so a killed run never leaves
//! a half-written model.

use crate::error::{ModelError, Result};
use crate::llama::{Llama, LlamaConfig};
use crate::tokenizer::Tok;
use crate::weights::{SafetensorsSource, WeightDtype};
use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use serde_json::{Value, json};
use std::path::Path;

/// HF `config.json` for a didact Llama-family model (`Qwen2ForCausalLM` when it has q/k/v
/// biases, else `LlamaForCausalLM`).
pub fn config_to_hf_json(cfg: &LlamaConfig, tok: &Tok) -> Value {
    let (arch, model_type) = if cfg.qkv_bias {
        ("Qwen2ForCausalLM", "qwen2")
    } else {
        ("LlamaForCausalLM", "llama")
    };
    let mut v = json!({
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn_dim(),
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim(),
        "max_position_embeddings": cfg.max_seq_len,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": null,
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "initializer_range": 0.02,
        "bos_token_id": tok.eos_id,
        "eos_token_id": tok.eos_id,
        "pad_token_id": tok.pad_id,
        "torch_dtype": "float32",
        "use_cache": true,
    });
    // Not transformers options: HF would apply plain RoPE to such a model. Only didact reads them.
    if cfg.nope {
        v["didact_nope"] = json!(true);
    }
    if cfg.rope_linear_factor != 1.0 {
        let f = cfg.rope_linear_factor;
        v["rope_scaling"] = json!({"rope_type": "linear", "type": "linear", "factor": f});
    }
    if let Some(zero) = cfg.coupled_zero {
        v["didact_coupled_zero"] = json!(zero);
    }
    v
}

/// The factor of linear RoPE scaling: transformers 4.x `rope_scaling` (`rope_type` or the
/// older `type`) or 5.x `rope_parameters`; 1 when absent or another type.
fn linear_rope_factor(v: &Value) -> f64 {
    [&v["rope_scaling"], &v["rope_parameters"]]
        .into_iter()
        .find(|s| s["rope_type"].as_str().or_else(|| s["type"].as_str()) == Some("linear"))
        .and_then(|s| s["factor"].as_f64())
        .unwrap_or(1.0)
}

/// Read a Llama-family `config.json`.
pub fn config_from_hf_json(path: &Path) -> Result<LlamaConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
        path: path.to_path_buf(),
        msg: format!("invalid JSON: {e}"),
    })?;
    let bad = |msg: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let arch = v["architectures"][0].as_str().unwrap_or("");
    let qkv_bias = match arch {
        "LlamaForCausalLM" | "LlamaForSequenceClassification" => {
            if v["attention_bias"].as_bool() == Some(true) || v["mlp_bias"].as_bool() == Some(true)
            {
                return Err(bad(
                    "Llama with attention_bias/mlp_bias is not supported".into()
                ));
            }
            false
        }
        "Qwen2ForCausalLM" => {
            if v["use_sliding_window"].as_bool() == Some(true) {
                return Err(bad(
                    "Qwen2 with use_sliding_window = true is not supported".into()
                ));
            }
            true
        }
        _ => {
            return Err(bad(format!(
                "unsupported architecture `{arch}` (supported: LlamaForCausalLM, Qwen2ForCausalLM)"
            )));
        }
    };
    let get = |k: &str| -> Result<usize> {
        v[k].as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| bad(format!("missing or non-integer `{k}`")))
    };
    let d_model = get("hidden_size")?;
    let n_heads = get("num_attention_heads")?;
    let rope_theta = v["rope_theta"]
        .as_f64()
        .or_else(|| v["rope_parameters"]["rope_theta"].as_f64())
        .unwrap_or(10000.0);
    let cfg = LlamaConfig {
        vocab_size: get("vocab_size")?,
        d_model,
        n_layers: get("num_hidden_layers")?,
        n_heads,
        n_kv_heads: v["num_key_value_heads"]
            .as_u64()
            .map(|x| x as usize)
            .unwrap_or(n_heads),
        d_ff: get("intermediate_size")?,
        max_seq_len: get("max_position_embeddings")?,
        rope_theta,
        rope_linear_factor: linear_rope_factor(&v),
        nope: v["didact_nope"].as_bool().unwrap_or(false),
        coupled_zero: v["didact_coupled_zero"].as_u64().map(|z| z as usize),
        norm_eps: v["rms_norm_eps"].as_f64().unwrap_or(1e-6),
        tie_embeddings: v["tie_word_embeddings"].as_bool().unwrap_or(false),
        qkv_bias,
    };
    if let Some(hd) = v["head_dim"].as_u64()
        && hd as usize != cfg.head_dim()
    {
        return Err(bad(format!(
            "head_dim {hd} != hidden_size / num_attention_heads = {}",
            cfg.head_dim()
        )));
    }
    cfg.check().map_err(|e| bad(e.to_string()))?;
    Ok(cfg)
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub config: LlamaConfig,
    pub model: Llama,
    pub tokenizer: Tok,
    /// How `model.safetensors` stored the weights (computation is f32 either way).
    pub dtype: WeightDtype,
}

/// `dir/tokenizer.json`, refused when it has more tokens than the embedding has rows.
pub(crate) fn load_tokenizer(dir: &Path, vocab_size: usize) -> Result<Tok> {
    let tokenizer = Tok::load(&dir.join("tokenizer.json"))?;
    if tokenizer.vocab_size() > vocab_size {
        return Err(ModelError::Checkpoint {
            path: dir.join("tokenizer.json"),
            msg: format!(
                "tokenizer has {} tokens but the embedding has only {vocab_size} rows",
                tokenizer.vocab_size()
            ),
        });
    }
    Ok(tokenizer)
}

/// Load `dir/{config.json, model.safetensors, tokenizer.json}` onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let config = config_from_hf_json(&dir.join("config.json"))?;
    let tokenizer = load_tokenizer(dir, config.vocab_size)?;
    let mut source = SafetensorsSource::open_dir(dir)?;
    let model = Llama::from_source(&config, &mut source, device)?;
    Ok(Checkpoint {
        config,
        model,
        tokenizer,
        dtype: source.dtype(),
    })
}

/// A 2-d tensor's values and shape on the host.
pub(crate) fn host(t: Tensor<2>) -> Result<(Vec<f32>, [usize; 2])> {
    let dims = t.dims();
    let v = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Config(format!("reading tensor: {e:?}")))?;
    Ok((v, dims))
}

fn push_linear(
    out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
    name: String,
    l: &Linear,
) -> Result<()> {
    // burn [in, out] → HF [out, in]
    let (v, [_, _]) = host(l.weight.val().transpose())?;
    let [d_in, d_out] = l.weight.val().dims();
    if let Some(b) = &l.bias {
        let n = b.val().dims()[0];
        let (bv, _) = host(b.val().reshape([1, n]))?;
        out.push((
            format!("{}.bias", name.trim_end_matches(".weight")),
            vec![d_out],
            bv,
        ));
    }
    out.push((name, vec![d_out, d_in], v));
    Ok(())
}

fn push_vec(
    out: &mut Vec<(String, Vec<usize>, Vec<f32>)>,
    name: String,
    p: &Param<Tensor<1>>,
) -> Result<()> {
    let t = p.val();
    let n = t.dims()[0];
    let v = t
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::Config(format!("reading tensor: {e:?}")))?;
    out.push((name, vec![n], v));
    Ok(())
}

/// Every tensor of the model with its HF name and shape, on the host.
/// A tensor by name: (HF name, shape, f32 values).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

pub fn named_tensors(model: &Llama) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    let (emb, dims) = host(model.embed_tokens.weight.val())?;
    out.push(("model.embed_tokens.weight".to_string(), dims.to_vec(), emb));
    for (i, l) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        push_vec(
            &mut out,
            format!("{p}.input_layernorm.weight"),
            &l.input_layernorm.gamma,
        )?;
        push_linear(
            &mut out,
            format!("{p}.self_attn.q_proj.weight"),
            &l.attn.q_proj,
        )?;
        push_linear(
            &mut out,
            format!("{p}.self_attn.k_proj.weight"),
            &l.attn.k_proj,
        )?;
        push_linear(
            &mut out,
            format!("{p}.self_attn.v_proj.weight"),
            &l.attn.v_proj,
        )?;
        push_linear(
            &mut out,
            format!("{p}.self_attn.o_proj.weight"),
            &l.attn.o_proj,
        )?;
        push_vec(
            &mut out,
            format!("{p}.post_attention_layernorm.weight"),
            &l.post_attention_layernorm.gamma,
        )?;
        push_linear(
            &mut out,
            format!("{p}.mlp.gate_proj.weight"),
            &l.mlp.gate_proj,
        )?;
        push_linear(&mut out, format!("{p}.mlp.up_proj.weight"), &l.mlp.up_proj)?;
        push_linear(
            &mut out,
            format!("{p}.mlp.down_proj.weight"),
            &l.mlp.down_proj,
        )?;
    }
    push_vec(&mut out, "model.norm.weight".to_string(), &model.norm.gamma)?;
    if let Some(head) = &model.lm_head {
        push_linear(&mut out, "lm_head.weight".to_string(), head)?;
    }
    Ok(out)
}

/// Save the model as an HF directory at `dir` (replaced atomically if it exists), in f32.
pub fn save(dir: &Path, cfg: &LlamaConfig, model: &Llama, tok: &Tok) -> Result<()> {
    save_with_extra(dir, cfg, model, tok, Vec::new())
}

/// `save`, storing the weights as `dtype` (e.g. the dtype the checkpoint was loaded in) and
/// saying so in `config.json` (`torch_dtype`).
pub fn save_as(
    dir: &Path,
    cfg: &LlamaConfig,
    model: &Llama,
    tok: &Tok,
    dtype: WeightDtype,
) -> Result<()> {
    let mut config = config_to_hf_json(cfg, tok);
    config["torch_dtype"] = dtype.hf_name().into();
    write_dir_as(dir, named_tensors(model)?, &config, tok, dtype)
}

/// `save`, with extra named f32 tensors (e.g. a reward head's `score.weight`) written into the
/// same `model.safetensors`.
pub fn save_with_extra(
    dir: &Path,
    cfg: &LlamaConfig,
    model: &Llama,
    tok: &Tok,
    extra: Vec<NamedTensor>,
) -> Result<()> {
    let mut tensors = named_tensors(model)?;
    tensors.extend(extra);
    write_dir(dir, tensors, &config_to_hf_json(cfg, tok), tok)
}

/// Write a checkpoint directory atomically (temp dir + rename): `model.safetensors` from named
/// f32 tensors, `config.json`, `tokenizer.json`, `tokenizer_config.json`.
pub fn write_dir(dir: &Path, tensors: Vec<NamedTensor>, config: &Value, tok: &Tok) -> Result<()> {
    write_dir_as(dir, tensors, config, tok, WeightDtype::F32)
}

/// `write_dir` with the tensors stored as `dtype`.
pub fn write_dir_as(
    dir: &Path,
    tensors: Vec<NamedTensor>,
    config: &Value,
    tok: &Tok,
    dtype: WeightDtype,
) -> Result<()> {
    let tc = tok.hf_tokenizer_config();
    let files = [("config.json", config), ("tokenizer_config.json", &tc)];
    write_files_as(dir, tensors, dtype, "model.safetensors", &files, Some(tok))
}

/// Write a directory atomically (temp dir + rename): `st_name` from named f32 tensors and the
/// given JSON files (e.g. a PEFT adapter: `adapter_model.safetensors`, `adapter_config.json`).
pub fn write_files(
    dir: &Path,
    tensors: Vec<NamedTensor>,
    st_name: &str,
    json_files: &[(&str, &Value)],
) -> Result<()> {
    write_files_as(dir, tensors, WeightDtype::F32, st_name, json_files, None)
}

fn write_files_as(
    dir: &Path,
    tensors: Vec<NamedTensor>,
    dtype: WeightDtype,
    st_name: &str,
    json_files: &[(&str, &Value)],
    tok: Option<&Tok>,
) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    let guard = didact_core::TempPath::beside(dir);
    let tmp = guard.path().to_path_buf();
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;

    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, dtype.encode(&v)))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            let view = safetensors::tensor::TensorView::new(dtype.safetensors(), s.clone(), b)
                .map_err(|e| ModelError::Tensor {
                    name: n.clone(),
                    msg: e.to_string(),
                })?;
            Ok((n.clone(), view))
        })
        .collect::<Result<_>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let st_path = tmp.join(st_name);
    safetensors::serialize_to_file(views, Some(meta), &st_path).map_err(|e| {
        ModelError::Checkpoint {
            path: st_path.clone(),
            msg: e.to_string(),
        }
    })?;
    for (name, value) in json_files {
        let text = serde_json::to_string_pretty(value).expect("json");
        std::fs::write(tmp.join(name), text).map_err(|e| ModelError::io(tmp.join(name), e))?;
    }
    if let Some(tok) = tok {
        tok.save(&tmp.join("tokenizer.json"))?;
    }
    // fsync every file and both directories; replace an older checkpoint; on any error above
    // the temp directory is removed when `guard` drops.
    guard.persist(dir).map_err(|e| ModelError::io(dir, e))
}

/// One named tensor of a checkpoint directory (single file or shards) as f32 (shape, values).
pub fn read_tensor(dir: &Path, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let mut src = crate::weights::SafetensorsSource::open_dir(dir)?;
    let st = src.shape_of(name).ok_or_else(|| ModelError::Tensor {
        name: name.to_string(),
        msg: format!("not found in {}", dir.display()),
    })?;
    let v = crate::WeightSource::take(&mut src, name, &st)?;
    Ok((st, v))
}
