//! LoRA adapters (Hu et al. 2021) in PEFT's layout. Training uses burn's LoRA
//! reparameterization: a target weight becomes `base + (alpha / r) · A·B` with the base frozen,
//! so only the factors get gradients and optimizer state and no model code changes. This module
//! owns what burn does not: which weights are targets (by HF module name, as PEFT matches
//! `target_modules`), a seeded PEFT-style init (A ~ kaiming-uniform, B = 0), and the PEFT files
//! (`adapter_config.json` + `adapter_model.safetensors` with `base_model.model.<module>.lora_A.weight`
//! `[r, in]` and `lora_B.weight` `[out, r]`), both written from a trained model and merged into
//! a base checkpoint on load (`MergingSource`).

use crate::error::{ModelError, Result};
use crate::weights::WeightSource;
use burn::module::{LoraAdapter, Module, ModuleVisitor, Param, Reparameterizer};
use burn::tensor::{Tensor, TensorData};
use didact_core::LoraSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// PEFT's names for a tensor of module `module` (an HF module path, e.g.
/// `model.layers.0.self_attn.q_proj`).
fn peft_name(module: &str, factor: &str) -> String {
    format!("base_model.model.{module}.{factor}.weight")
}

/// The HF module path of a burn parameter path (`…layers.3.attn.q_proj.weight` →
/// `model.layers.3.self_attn.q_proj`; `…blocks.1.attn_proj.weight` → `transformer.h.1.attn.c_proj`),
/// for the projection weights LoRA can adapt; `None` for any other parameter.
pub fn hf_module(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let at = parts
        .iter()
        .rposition(|p| *p == "layers" || *p == "blocks")?;
    let (kind, i, rest) = (parts[at], parts.get(at + 1)?, &parts[at + 2..]);
    match (kind, rest) {
        (
            "layers",
            [
                "attn",
                m @ ("q_proj" | "k_proj" | "v_proj" | "o_proj"),
                "weight",
            ],
        ) => Some(format!("model.layers.{i}.self_attn.{m}")),
        ("layers", ["mlp", m @ ("gate_proj" | "up_proj" | "down_proj"), "weight"]) => {
            Some(format!("model.layers.{i}.mlp.{m}"))
        }
        ("blocks", [m, "weight"]) => {
            let hf = match *m {
                "c_attn" => "attn.c_attn",
                "attn_proj" => "attn.c_proj",
                "c_fc" => "mlp.c_fc",
                "mlp_proj" => "mlp.c_proj",
                _ => return None,
            };
            Some(format!("transformer.h.{i}.{hf}"))
        }
        _ => None,
    }
}

/// PEFT's rule for a list of `target_modules`: the module's name is the target or ends with
/// `.target`.
fn is_target(module: &str, target: &str) -> bool {
    module == target || module.ends_with(&format!(".{target}"))
}

/// Attaches seeded adapters to the target weights and freezes every other parameter.
struct PeftInit<'a> {
    spec: &'a LoraSpec,
    rng: ChaCha8Rng,
    /// How many weights each target matched.
    matched: &'a mut BTreeMap<String, usize>,
}

impl Reparameterizer for PeftInit<'_> {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        let hits: Vec<String> = hf_module(path)
            .map(|m| {
                let t = self.spec.targets.iter().filter(|t| is_target(&m, t));
                t.cloned().collect()
            })
            .unwrap_or_default();
        let base = param.set_require_grad(false);
        if D != 2 || hits.is_empty() {
            return (base, None);
        }
        for t in hits {
            *self.matched.entry(t).or_default() += 1;
        }
        let device = base.lazy_device();
        let dims = base.lazy_shape().dims::<2>();
        let (d_in, d_out, r) = (dims[0], dims[1], self.spec.r);
        // PEFT's default init: A as nn.Linear's kaiming_uniform(a = √5), i.e. U(±1/√in); B = 0,
        // so the adapted model starts equal to the base.
        let bound = 1.0 / (d_in as f64).sqrt();
        let a: Vec<f32> = (0..d_in * r)
            .map(|_| self.rng.random_range(-bound..bound) as f32)
            .collect();
        let a = Tensor::<2>::from_data(TensorData::new(a, [d_in, r]), &device);
        let b = Tensor::<2>::zeros([r, d_out], &device);
        let adapter = LoraAdapter {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale: self.spec.alpha / r as f64,
        };
        (base, Some(adapter))
    }
}

/// Check a LoRA spec on its own (rank, alpha, dropout, targets); names the offending key.
pub fn check_spec(spec: &LoraSpec) -> Result<()> {
    let bad = |k: &str, why: &str| Err(ModelError::Config(format!("lora.{k}: {why}")));
    if spec.r == 0 {
        return bad("r", "must be ≥ 1");
    }
    if !(spec.alpha.is_finite() && spec.alpha > 0.0) {
        return bad("alpha", "must be a finite number > 0");
    }
    if spec.dropout != 0.0 {
        return bad(
            "dropout",
            "only 0 is supported (didact's adapters are on the weights, burn's LoRA \
             reparameterization; PEFT's dropout acts on the adapter's input)",
        );
    }
    if spec.targets.is_empty() {
        return bad(
            "targets",
            "list at least one module name (e.g. [\"q_proj\", \"v_proj\"])",
        );
    }
    Ok(())
}

/// Freeze `model` and attach fresh adapters (A seeded by `seed`, B = 0) to the weights of the
/// modules `spec.targets` names. Refused when a target matches nothing in this model.
pub fn attach<M: Module>(model: M, spec: &LoraSpec, seed: u64) -> Result<M> {
    check_spec(spec)?;
    let mut matched = BTreeMap::new();
    let model = model.apply_reparameterization(PeftInit {
        spec,
        rng: ChaCha8Rng::seed_from_u64(seed),
        matched: &mut matched,
    });
    if let Some(t) = spec.targets.iter().find(|t| !matched.contains_key(*t)) {
        return Err(ModelError::Config(format!(
            "lora.targets: `{t}` matches no weight of this model (Llama family: q_proj, \
             k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; GPT-2: c_attn, c_proj, c_fc)"
        )));
    }
    Ok(model)
}

/// One trained adapter in PEFT's layout.
pub struct Adapter {
    /// HF module path, e.g. `model.layers.0.self_attn.q_proj`.
    pub module: String,
    /// `lora_A.weight`: `[r, in]`.
    pub a: (Vec<usize>, Vec<f32>),
    /// `lora_B.weight`: `[out, r]`.
    pub b: (Vec<usize>, Vec<f32>),
}

/// The adapters attached to `model`, in PEFT's layout (burn keeps A `[in, r]` and B
/// `[r, out]`; PEFT stores their transposes). burn's visitor shows an adapted weight as its
/// base followed by the factors at `<weight path>.lora.a` and `.lora.b`.
pub fn adapters<M: Module>(model: &M) -> Result<Vec<Adapter>> {
    struct Collect {
        path: Vec<String>,
        a: BTreeMap<String, Tensor<2>>,
        b: BTreeMap<String, Tensor<2>>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let path = self.path.join(".");
            let Some((weight, factor)) = path.rsplit_once(".lora.") else {
                return;
            };
            let (Some(module), true) = (hf_module(weight), D == 2) else {
                return;
            };
            let t = p.val();
            let d = t.dims();
            let t: Tensor<2> = t.reshape([d[0], d[D - 1]]);
            match factor {
                "a" => self.a.insert(module, t),
                "b" => self.b.insert(module, t),
                _ => None,
            };
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        a: BTreeMap::new(),
        b: BTreeMap::new(),
    };
    model.visit(&mut c);
    let mut out = Vec::with_capacity(c.a.len());
    for (module, a) in c.a {
        let b = c.b.remove(&module).ok_or_else(|| {
            ModelError::Config(format!("LoRA adapter of `{module}` has A but no B"))
        })?;
        let (av, ad) = crate::checkpoint::host(a.transpose())?;
        let (bv, bd) = crate::checkpoint::host(b.transpose())?;
        out.push(Adapter {
            module,
            a: (ad.to_vec(), av),
            b: (bd.to_vec(), bv),
        });
    }
    Ok(out)
}

/// Write `model`'s adapters as a PEFT adapter directory (atomically): `adapter_config.json`
/// (`base_model_name_or_path` = `base`; `fan_in_fan_out` for GPT-2's Conv1D weights) and
/// `adapter_model.safetensors`. `peft`'s `PeftModel.from_pretrained` and vLLM load it as is.
pub fn save_adapter<M: Module>(
    dir: &Path,
    model: &M,
    spec: &LoraSpec,
    base: &str,
    gpt2: bool,
) -> Result<()> {
    let list = adapters(model)?;
    if list.is_empty() {
        return Err(ModelError::Config("the model has no LoRA adapters".into()));
    }
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "r": spec.r,
        "lora_alpha": spec.alpha,
        "lora_dropout": spec.dropout,
        "target_modules": spec.targets,
        "fan_in_fan_out": gpt2,
        "bias": "none",
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "init_lora_weights": true,
        "inference_mode": true,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    });
    let tensors: Vec<crate::checkpoint::NamedTensor> = list
        .into_iter()
        .flat_map(|a| {
            [
                (peft_name(&a.module, "lora_A"), a.a.0, a.a.1),
                (peft_name(&a.module, "lora_B"), a.b.0, a.b.1),
            ]
        })
        .collect();
    crate::checkpoint::write_files(
        dir,
        tensors,
        "adapter_model.safetensors",
        &[("adapter_config.json", &config)],
    )
}

/// A PEFT LoRA adapter read from disk: per HF module, the scaled delta's factors.
pub struct PeftAdapter {
    pub dir: std::path::PathBuf,
    /// `alpha / r` (`alpha / √r` with rsLoRA).
    pub scale: f64,
    /// GPT-2's Conv1D weights are stored `[in, out]` (PEFT's `fan_in_fan_out`).
    pub fan_in_fan_out: bool,
    /// module → its factors (A `[r, in]`, B `[out, r]`)
    modules: BTreeMap<String, Adapter>,
}

impl PeftAdapter {
    /// Read `dir/adapter_config.json` and `dir/adapter_model.safetensors`. Refused: adapter
    /// types other than plain LoRA (DoRA, per-module rank or alpha patterns, trained biases,
    /// `modules_to_save`).
    pub fn read(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join("adapter_config.json");
        let bad = |msg: String| ModelError::Checkpoint {
            path: cfg_path.clone(),
            msg,
        };
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        if v["peft_type"].as_str() != Some("LORA") {
            return Err(bad(format!(
                "peft_type {}: only LORA adapters are supported",
                v["peft_type"]
            )));
        }
        let empty = |k: &str| {
            v[k].is_null()
                || v[k].as_object().is_some_and(|o| o.is_empty())
                || v[k].as_array().is_some_and(|a| a.is_empty())
        };
        for (k, ok) in [
            ("use_dora", v["use_dora"].as_bool() != Some(true)),
            ("bias", matches!(v["bias"].as_str(), None | Some("none"))),
            ("lora_bias", v["lora_bias"].as_bool() != Some(true)),
            ("use_qalora", v["use_qalora"].as_bool() != Some(true)),
            ("target_parameters", empty("target_parameters")),
            ("modules_to_save", empty("modules_to_save")),
            ("rank_pattern", empty("rank_pattern")),
            ("alpha_pattern", empty("alpha_pattern")),
        ] {
            if !ok {
                return Err(bad(format!("`{k}` = {} is not supported", v[k])));
            }
        }
        let r = v["r"]
            .as_u64()
            .filter(|r| *r > 0)
            .ok_or_else(|| bad("missing or invalid `r`".into()))? as f64;
        let alpha = v["lora_alpha"]
            .as_f64()
            .ok_or_else(|| bad("missing or invalid `lora_alpha`".into()))?;
        let scale = match v["use_rslora"].as_bool() {
            Some(true) => alpha / r.sqrt(),
            _ => alpha / r,
        };
        let mut src =
            crate::weights::SafetensorsSource::open(&dir.join("adapter_model.safetensors"))?;
        let mut modules = BTreeMap::new();
        for name in src.names() {
            let Some(module) = name
                .strip_prefix("base_model.model.")
                .and_then(|n| n.strip_suffix(".lora_A.weight"))
            else {
                continue;
            };
            let b_name = peft_name(module, "lora_B");
            let shape = |src: &crate::weights::SafetensorsSource, n: &str| {
                src.shape_of(n).ok_or_else(|| ModelError::Tensor {
                    name: n.to_string(),
                    msg: format!("not found in {}", dir.display()),
                })
            };
            let (sa, sb) = (shape(&src, &name)?, shape(&src, &b_name)?);
            let a = src.take(&name, &sa)?;
            let b = src.take(&b_name, &sb)?;
            if sa.len() != 2 || sb.len() != 2 || sb[1] != sa[0] {
                return Err(ModelError::Tensor {
                    name,
                    msg: format!("lora_A {sa:?} and lora_B {sb:?} do not chain"),
                });
            }
            let adapter = Adapter {
                module: module.to_string(),
                a: (sa, a),
                b: (sb, b),
            };
            modules.insert(module.to_string(), adapter);
        }
        if modules.is_empty() {
            return Err(bad(
                "adapter_model.safetensors holds no lora_A/lora_B tensors".into(),
            ));
        }
        Ok(PeftAdapter {
            dir: dir.to_path_buf(),
            scale,
            fan_in_fan_out: v["fan_in_fan_out"].as_bool().unwrap_or(false),
            modules,
        })
    }

    /// `scale · B·A` in the layout the base checkpoint stores module `module`'s weight
    /// (`[out, in]`, or `[in, out]` with `fan_in_fan_out`).
    fn delta(&self, module: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let Adapter {
            a: (sa, a),
            b: (sb, b),
            ..
        } = self.modules.get(module)?;
        let (r, d_in, d_out) = (sa[0], sa[1], sb[0]);
        let mut d = vec![0f32; d_out * d_in];
        for o in 0..d_out {
            for k in 0..r {
                let bk = b[o * r + k] as f64 * self.scale;
                for i in 0..d_in {
                    d[o * d_in + i] += (bk * a[k * d_in + i] as f64) as f32;
                }
            }
        }
        if !self.fan_in_fan_out {
            return Some((vec![d_out, d_in], d));
        }
        let t = (0..d_in * d_out)
            .map(|j| d[(j % d_out) * d_in + j / d_out])
            .collect();
        Some((vec![d_in, d_out], t))
    }
}

/// A weight source that adds a PEFT adapter's deltas to the base weights it passes on (what
/// PEFT's `merge_and_unload` computes), so a base checkpoint loads with its adapter merged.
pub struct MergingSource<'a> {
    pub inner: &'a mut dyn WeightSource,
    pub adapter: &'a PeftAdapter,
    merged: Vec<String>,
}

impl<'a> MergingSource<'a> {
    pub fn new(inner: &'a mut dyn WeightSource, adapter: &'a PeftAdapter) -> Self {
        MergingSource {
            inner,
            adapter,
            merged: Vec::new(),
        }
    }

    /// Every adapter must have found its weight: one that did not names a module this model
    /// does not have (an adapter for another architecture or size).
    pub fn finish(self) -> Result<()> {
        match self
            .adapter
            .modules
            .keys()
            .find(|m| !self.merged.contains(m))
        {
            Some(m) => Err(ModelError::Checkpoint {
                path: self.adapter.dir.clone(),
                msg: format!("the adapter targets `{m}`, which the base model does not have"),
            }),
            None => Ok(()),
        }
    }
}

impl WeightSource for MergingSource<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let mut w = self.inner.take(name, shape)?;
        let module = name.strip_suffix(".weight").unwrap_or(name);
        if let Some((ds, d)) = self.adapter.delta(module) {
            if ds != shape {
                return Err(ModelError::Tensor {
                    name: name.to_string(),
                    msg: format!(
                        "the adapter's delta is {ds:?} but the weight is {shape:?} (adapter {})",
                        self.adapter.dir.display()
                    ),
                });
            }
            w.iter_mut().zip(d).for_each(|(w, d)| *w += d);
            self.merged.push(module.to_string());
        }
        Ok(w)
    }
}
