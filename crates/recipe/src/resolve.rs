//! Raw recipe (`RecipeFile`, the serde mirror) → `RunPlan`, once. Every value and every
//! combination is checked here, one function per part of the plan; an error names the file,
//! the key (with its line, `--set` or `default`) and what was expected. Strings become the
//! enums of `plan.rs` and `didact_core::vocab` through their own `NAMES`/`parse`.

use crate::error::RecipeError;
use crate::file::*;
use crate::plan::*;
use didact_core::{DpoLoss, LoraSpec, MixMode, OnError, OptimConfig};
use std::path::PathBuf;

/// Locates a key's line for messages.
pub trait KeyLines {
    fn line_of(&self, section: &str, key: &str) -> Option<usize>;
}

type R<T> = Result<T, RecipeError>;

struct Checker<'a> {
    file: &'a str,
    lines: &'a dyn KeyLines,
    overridden: &'a [String],
}

impl Checker<'_> {
    fn err(&self, section: &str, key: &str, expected: impl Into<String>) -> RecipeError {
        let full = format!("{section}.{key}");
        let origin = if self.overridden.contains(&full) {
            "--set".to_string()
        } else {
            match self.lines.line_of(section, key) {
                Some(l) => format!("line {l}"),
                None => "default".to_string(),
            }
        };
        RecipeError::Invalid {
            file: self.file.to_string(),
            key: full,
            origin,
            expected: expected.into(),
        }
    }

    fn check(&self, ok: bool, section: &str, key: &str, expected: &str) -> R<()> {
        if ok {
            Ok(())
        } else {
            Err(self.err(section, key, expected))
        }
    }

    /// `v` parsed by `parse`, or an error listing `names`.
    fn choice<T>(
        &self,
        v: &str,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
        section: &str,
        key: &str,
    ) -> R<T> {
        parse(v).ok_or_else(|| {
            let quoted: Vec<String> = names.iter().map(|a| format!("\"{a}\"")).collect();
            self.err(
                section,
                key,
                format!("one of {} (got \"{v}\")", quoted.join(", ")),
            )
        })
    }
}

/// Is the source the built-in arithmetic world with bare answers (no rationales)?
fn plain_arithmetic(f: &RecipeFile) -> bool {
    f.data.path.is_empty() && f.world.kind == "arithmetic" && !f.world.rationales
}

/// An http(s) base URL of an OpenAI-compatible server.
fn is_base_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// `None` for an empty string.
fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The optimizer of one training call with `[train]`'s schedule and AdamW settings: its own
/// steps, batch, peak LR and accumulation; warmup capped at half the steps.
fn optim(
    t: &TrainSection,
    steps: usize,
    batch_size: usize,
    lr: f64,
    grad_accum: usize,
) -> OptimConfig {
    OptimConfig {
        steps,
        batch_size,
        grad_accum,
        lr,
        warmup_steps: t.warmup_steps.min(steps / 2),
        min_lr_ratio: t.min_lr_ratio,
        weight_decay: t.weight_decay,
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        grad_clip: t.grad_clip,
        activation_checkpointing: t.activation_checkpointing,
        lora: None,
        bf16: t.precision == "bf16",
    }
}

/// `[train] lora` as the trainers take it (checked by `lora`).
fn lora_spec(t: &TrainSection) -> Option<LoraSpec> {
    t.lora.as_ref().map(|l| LoraSpec {
        r: l.r,
        alpha: l.alpha,
        dropout: l.dropout,
        targets: l.targets.clone(),
    })
}

/// `[train] lora`: a rank, a positive alpha, no dropout, known module names.
fn lora(c: &Checker<'_>, t: &TrainSection) -> R<Option<LoraSpec>> {
    let Some(l) = &t.lora else {
        return Ok(None);
    };
    const NAMES: &[&str] = &[
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "c_attn",
        "c_proj",
        "c_fc",
    ];
    c.check(l.r >= 1, "train", "lora", "r >= 1 (the adapters' rank)")?;
    c.check(
        l.alpha > 0.0 && l.alpha.is_finite(),
        "train",
        "lora",
        "alpha > 0 (the adapters' product is scaled by alpha / r)",
    )?;
    c.check(
        l.dropout == 0.0,
        "train",
        "lora",
        "dropout = 0 (didact's adapters are on the weights, burn's LoRA reparameterization; PEFT's dropout acts on activations)",
    )?;
    let unknown = l.targets.iter().find(|n| !NAMES.contains(&n.as_str()));
    c.check(
        !l.targets.is_empty() && unknown.is_none(),
        "train",
        "lora",
        &format!(
            "targets: a non-empty list of HF module names from {}{}",
            NAMES.join(", "),
            unknown.map(|u| format!(" (got `{u}`)")).unwrap_or_default()
        ),
    )?;
    c.check(
        t.external.is_none(),
        "train",
        "lora",
        "no [train] external (an external trainer has its own LoRA settings)",
    )?;
    Ok(lora_spec(t))
}

/// Validate a resolved recipe into a plan.
pub fn resolve(
    f: &RecipeFile,
    file: &str,
    lines: &dyn KeyLines,
    overridden: &[String],
) -> R<RunPlan> {
    let c = Checker {
        file,
        lines,
        overridden,
    };
    check_finite(&c, f)?;
    check_sizes(&c, f)?;
    check_run(&c, &f.run)?;
    let source = source(&c, f)?;
    let model = model(&c, &f.model)?;
    let train = train(&c, &f.train)?;
    let generate = generate(&c, f)?;
    let judge = judge(&c, f)?;
    let mix = mix(&c, &f.mix)?;
    let dpo = dpo(&c, f, &source)?;
    let distill = distill(&c, f, &generate)?;
    c.check(
        train.external.is_none() || distill.is_none(),
        "train",
        "external",
        "no [distill] (token-level distillation needs the teacher in-process)",
    )?;
    let reward = reward(&c, f)?;
    let detector = detector(&c, &f.detector)?;
    check_eval(&c, &f.eval)?;
    c.check(
        !f.eval.by_length || matches!(source, Source::Arithmetic { .. }),
        "eval",
        "by_length",
        "false unless the source is the arithmetic world (operand lengths)",
    )?;
    c.check(
        !f.eval.by_length || f.eval.ood_size >= 1,
        "eval",
        "by_length",
        "eval.ood_size >= 1 (the problems per length)",
    )?;
    check_filter(&c, &f.filter)?;
    c.check(
        f.model.positional != "coupled"
            || (plain_arithmetic(f)
                && f.world.reversed
                && f.model.tokenizer == "char"
                && f.model.hf.is_empty()),
        "model",
        "positional",
        "\"rope\" or \"none\" unless the source is the arithmetic world with reversed = true \
         and a fresh char-level model (coupling aligns digits counted from the units)",
    )?;
    c.check(
        !f.filter.answer_length || (plain_arithmetic(f) && f.world.ops == ["+"]),
        "filter",
        "answer_length",
        "false unless the source is the arithmetic world with ops = [\"+\"] and no rationales",
    )?;
    check_peers(&c, f, &train, &generate, judge.is_some())?;
    // The self-checks: the policies answer sub-problems of reversed sums.
    let self_check = plain_arithmetic(f)
        && f.world.ops == ["+"]
        && f.world.reversed
        && matches!(generate.generator, Generator::Policy)
        && generate.self_instruct.is_none();
    for (on, key, what) in [
        (f.filter.prefix_check, "prefix_check", "low"),
        (f.filter.top_check, "top_check", "high"),
    ] {
        c.check(
            !on || self_check,
            "filter",
            key,
            &format!(
                "false unless the source is the arithmetic world with ops = [\"+\"], reversed = \
                 true and no rationales, and the policy generates (it answers the {what}-digit \
                 sub-problems)"
            ),
        )?;
    }
    let fl = &f.filter;
    Ok(RunPlan {
        name: f.run.name.clone(),
        seed: f.run.seed,
        rounds: f.run.rounds,
        device: f.run.device.clone(),
        threads: f.run.threads,
        peers: f.run.peers,
        filter: FilterPlan {
            verifier: fl.verifier && source.has_verifier(),
            min_chars: fl.min_chars,
            max_chars: fl.max_chars,
            dedup: fl.dedup,
            require_stop: fl.require_stop,
            majority: (fl.majority > 0.0).then_some(fl.majority),
            answer_length: fl.answer_length,
            carry_digit: fl.carry_digit,
            prefix_check: fl.prefix_check,
            top_check: fl.top_check,
        },
        source,
        model,
        train,
        generate,
        judge,
        mix,
        dpo,
        distill,
        reward,
        detector,
        eval: EvalPlan {
            eval_size: f.eval.eval_size,
            ood_size: f.eval.ood_size,
            n_samples: f.eval.n_samples,
            batch_size: f.eval.batch_size,
            by_length: f.eval.by_length,
        },
    })
}

/// Every float of every section is finite: NaN and ±inf are refused by name before any range
/// check (a range check written as `x >= 0` would let +inf through).
fn check_finite(c: &Checker<'_>, f: &RecipeFile) -> R<()> {
    let value = toml::Value::try_from(f).expect("a recipe serializes");
    for (section, table) in value.as_table().into_iter().flatten() {
        if section == "sweep" {
            continue;
        }
        for (key, v) in table.as_table().into_iter().flatten() {
            if let toml::Value::Float(x) = v
                && !x.is_finite()
            {
                return Err(c.err(section, key, format!("a finite number (got {x})")));
            }
        }
    }
    Ok(())
}

/// Upper bounds on every size that allocates: a typo such as `train_size = 1e12` is an
/// error naming the key, not an allocation failure hours later.
fn check_sizes(c: &Checker<'_>, f: &RecipeFile) -> R<()> {
    const ROWS: usize = 10_000_000;
    let bounds: [(&str, &str, usize, usize); 16] = [
        ("world", "train_size", f.world.train_size, ROWS),
        ("world", "max_chars", f.world.max_chars, 1_000_000),
        ("data", "max_rows", f.data.max_rows, 100_000_000),
        ("model", "d_ff", f.model.d_ff, 1 << 20),
        ("train", "batch_size", f.train.batch_size, 65_536),
        ("train", "grad_accum", f.train.grad_accum, 65_536),
        ("train", "base_steps", f.train.base_steps, 100_000_000),
        ("train", "steps", f.train.steps, 100_000_000),
        ("generate", "n_prompts", f.generate.n_prompts, ROWS),
        ("generate", "n_per_prompt", f.generate.n_per_prompt, 1024),
        ("generate", "batch_size", f.generate.batch_size, 65_536),
        ("eval", "eval_size", f.eval.eval_size, 1_000_000),
        ("eval", "ood_size", f.eval.ood_size, 1_000_000),
        ("eval", "n_samples", f.eval.n_samples, 1_000_000),
        ("eval", "batch_size", f.eval.batch_size, 65_536),
        ("teacher", "d_model", f.teacher.d_model, 65_536),
    ];
    for (section, key, v, max) in bounds {
        c.check(v <= max, section, key, &format!("at most {max} (got {v})"))?;
    }
    Ok(())
}

fn check_run(c: &Checker<'_>, r: &RunSection) -> R<()> {
    c.check(
        !r.name.is_empty() && !r.name.contains('/'),
        "run",
        "name",
        "a non-empty name without `/`",
    )?;
    // At most 999: the loop's per-round seed streams are 1000 apart (didact-loop seeds.rs).
    c.check(r.rounds <= 999, "run", "rounds", "0..=999")?;
    c.choice(
        &r.device,
        didact_core::DEVICE_NAMES,
        |v| didact_core::DEVICE_NAMES.contains(&v).then_some(()),
        "run",
        "device",
    )?;
    c.check(
        r.threads <= 1024,
        "run",
        "threads",
        "0 (all cores) ..= 1024",
    )
}

/// `[run] peers` > 1 holds several policies, each generating and training in-process with SFT:
/// nothing else in a round has a per-peer form yet.
fn check_peers(
    c: &Checker<'_>,
    f: &RecipeFile,
    train: &TrainPlan,
    generate: &GeneratePlan,
    judged: bool,
) -> R<()> {
    c.check(
        (1..=16).contains(&f.run.peers),
        "run",
        "peers",
        "1..=16 (policies trained side by side)",
    )?;
    let alone = train.algo == Algo::Sft
        && train.external.is_none()
        && matches!(generate.generator, Generator::Policy)
        && generate.self_instruct.is_none()
        && !judged;
    c.check(
        f.run.peers == 1 || alone,
        "run",
        "peers",
        "1 unless every round is in-process SFT on the policies' own samples (train.algo = \"sft\", \
         no [train] external, no teacher, endpoint, Self-Instruct or [judge])",
    )
}

fn source(c: &Checker<'_>, f: &RecipeFile) -> R<Source> {
    if !f.data.path.is_empty() {
        let d = &f.data;
        let on_error = c.choice(
            &d.on_error,
            OnError::NAMES,
            OnError::parse,
            "data",
            "on_error",
        )?;
        c.check(d.chunk_chars >= 8, "data", "chunk_chars", ">= 8")?;
        c.check(
            d.eval_fraction > 0.0 && d.eval_fraction <= 0.5,
            "data",
            "eval_fraction",
            "a fraction in (0, 0.5]",
        )?;
        return Ok(Source::Dataset {
            path: PathBuf::from(&d.path),
            on_error,
            chunk_chars: d.chunk_chars,
            eval_fraction: d.eval_fraction,
            max_rows: (d.max_rows > 0).then_some(d.max_rows),
        });
    }
    let w = &f.world;
    c.choice(
        &w.kind,
        &["arithmetic", "markov"],
        |v| matches!(v, "arithmetic" | "markov").then_some(()),
        "world",
        "kind",
    )?;
    if w.kind == "markov" {
        c.check(
            w.zipf > 0.0 && w.zipf <= 8.0,
            "world",
            "zipf",
            "a number in (0, 8]",
        )?;
        c.check(
            w.end_prob > 0.0 && w.end_prob < 1.0,
            "world",
            "end_prob",
            "a probability in (0, 1)",
        )?;
        c.check(w.max_chars >= 2, "world", "max_chars", ">= 2")?;
        c.check(w.train_size >= 2, "world", "train_size", ">= 2")?;
        return Ok(Source::Markov {
            zipf: w.zipf,
            end_prob: w.end_prob,
            max_chars: w.max_chars,
            train_size: w.train_size,
            source_seed: w.source_seed,
        });
    }
    c.check(
        !w.ops.is_empty(),
        "world",
        "ops",
        "a non-empty list of \"+\", \"-\", \"*\"",
    )?;
    let mut ops = Vec::new();
    for o in &w.ops {
        c.check(
            matches!(o.as_str(), "+" | "-" | "*"),
            "world",
            "ops",
            &format!("operators among \"+\", \"-\", \"*\" (got \"{o}\")"),
        )?;
        ops.push(o.chars().next().expect("checked"));
    }
    c.check(
        !w.reversed || (ops == ['+'] && !w.rationales),
        "world",
        "reversed",
        "false unless ops = [\"+\"] without rationales (reversed digits are defined for sums)",
    )?;
    // Answers are i64: a product of two 9-digit operands, a sum of two 18-digit ones.
    let most = if ops.contains(&'*') { 9 } else { 18 };
    let digit_range = |[a, b]: [u32; 2], key: &str| {
        c.check(
            (1..=most).contains(&a) && a <= b && b <= most,
            "world",
            key,
            &format!("[min, max] with 1 <= min <= max <= {most}"),
        )
        .map(|_| (a, b))
    };
    let digits = digit_range(w.digits, "digits")?;
    let ood_digits = digit_range(w.ood_digits, "ood_digits")?;
    c.check(w.train_size >= 1, "world", "train_size", ">= 1")?;
    Ok(Source::Arithmetic {
        ops,
        digits,
        ood_digits,
        train_size: w.train_size,
        rationales: w.rationales,
        reversed: w.reversed,
    })
}

/// Layers, heads and KV heads of a Llama shape in `[section]`.
fn check_shape(
    c: &Checker<'_>,
    section: &str,
    d_model: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
) -> R<()> {
    c.check(
        (1..=256).contains(&n_layers),
        section,
        "n_layers",
        "1..=256",
    )?;
    c.check(
        n_heads >= 1 && d_model.is_multiple_of(n_heads) && (d_model / n_heads).is_multiple_of(2),
        section,
        "n_heads",
        &format!("a divisor of d_model = {d_model} giving an even head size"),
    )?;
    c.check(
        n_kv_heads >= 1 && n_heads.is_multiple_of(n_kv_heads),
        section,
        "n_kv_heads",
        &format!("a divisor of n_heads = {n_heads}"),
    )
}

fn model(c: &Checker<'_>, m: &ModelSection) -> R<ModelPlan> {
    c.check(
        m.d_model >= 8 && m.d_model <= 65536,
        "model",
        "d_model",
        "8..=65536",
    )?;
    check_shape(c, "model", m.d_model, m.n_layers, m.n_heads, m.n_kv_heads)?;
    c.check(
        m.max_seq_len >= 8 && m.max_seq_len <= 131072,
        "model",
        "max_seq_len",
        "8..=131072",
    )?;
    c.check(m.rope_theta > 0.0, "model", "rope_theta", "> 0")?;
    c.check(
        (1.0..=1e6).contains(&m.rope_scaling),
        "model",
        "rope_scaling",
        "a linear RoPE scaling factor in [1, 1e6]",
    )?;
    let positional = c.choice(
        &m.positional,
        &["rope", "none", "coupled"],
        |v| match v {
            "rope" => Some(Positional::Rope),
            "none" => Some(Positional::None),
            "coupled" => Some(Positional::Coupled),
            _ => None,
        },
        "model",
        "positional",
    )?;
    c.choice(
        &m.tokenizer,
        &["char", "bpe"],
        |v| matches!(v, "char" | "bpe").then_some(()),
        "model",
        "tokenizer",
    )?;
    c.check(
        (260..=65536).contains(&m.bpe_vocab),
        "model",
        "bpe_vocab",
        "260..=65536",
    )?;
    if !m.hf.is_empty() {
        let cfg = std::path::Path::new(&m.hf).join("config.json");
        c.check(
            cfg.is_file(),
            "model",
            "hf",
            &format!(
                "a checkpoint directory with config.json ({} not found)",
                cfg.display()
            ),
        )?;
        return Ok(ModelPlan::Pretrained {
            dir: PathBuf::from(&m.hf),
        });
    }
    let tokenizer = if m.tokenizer == "char" {
        TokenizerKind::Char
    } else {
        TokenizerKind::Bpe { vocab: m.bpe_vocab }
    };
    Ok(ModelPlan::Fresh {
        shape: Shape {
            d_model: m.d_model,
            n_layers: m.n_layers,
            n_heads: m.n_heads,
            n_kv_heads: m.n_kv_heads,
            d_ff: (m.d_ff > 0).then_some(m.d_ff),
            max_seq_len: m.max_seq_len,
            rope_theta: m.rope_theta,
            rope_scaling: m.rope_scaling,
            positional,
            tie_embeddings: m.tie_embeddings,
        },
        tokenizer,
    })
}

fn train(c: &Checker<'_>, t: &TrainSection) -> R<TrainPlan> {
    c.check(t.base_steps >= 1, "train", "base_steps", ">= 1")?;
    c.check(t.steps >= 1, "train", "steps", ">= 1")?;
    c.check(t.batch_size >= 1, "train", "batch_size", ">= 1")?;
    c.check(t.grad_accum >= 1, "train", "grad_accum", ">= 1")?;
    c.check(
        t.lr > 0.0 && t.lr <= 1.0,
        "train",
        "lr",
        "a learning rate in (0, 1]",
    )?;
    c.check(
        t.round_lr >= 0.0 && t.round_lr <= 1.0,
        "train",
        "round_lr",
        "0 (= lr) or a learning rate in (0, 1]",
    )?;
    c.check(
        (0.0..=1.0).contains(&t.min_lr_ratio),
        "train",
        "min_lr_ratio",
        "a fraction in [0, 1]",
    )?;
    c.check(t.weight_decay >= 0.0, "train", "weight_decay", ">= 0")?;
    c.check((0.0..1.0).contains(&t.beta1), "train", "beta1", "[0, 1)")?;
    c.check((0.0..1.0).contains(&t.beta2), "train", "beta2", "[0, 1)")?;
    c.check(t.eps > 0.0, "train", "eps", "> 0")?;
    c.check(
        t.grad_clip >= 0.0,
        "train",
        "grad_clip",
        ">= 0 (0 disables)",
    )?;
    c.check(
        matches!(t.precision.as_str(), "f32" | "bf16"),
        "train",
        "precision",
        "`f32` or `bf16` (bf16 mixed precision: bf16 compute, f32 weights and optimizer)",
    )?;
    c.check(
        t.precision == "f32" || t.lora.is_none(),
        "train",
        "precision",
        "`f32` with [train] lora (burn does not nest LoRA and the bf16 view of a weight)",
    )?;
    let init = c.choice(&t.init, Init::NAMES, Init::parse, "train", "init")?;
    let algo = c.choice(&t.algo, Algo::NAMES, Algo::parse, "train", "algo")?;
    let round_lr = if t.round_lr > 0.0 { t.round_lr } else { t.lr };
    Ok(TrainPlan {
        algo,
        init,
        base: optim(t, t.base_steps, t.batch_size, t.lr, t.grad_accum),
        round: OptimConfig {
            lora: lora(c, t)?,
            ..optim(t, t.steps, t.batch_size, round_lr, t.grad_accum)
        },
        packing: t.packing,
        external: external(c, t, algo)?,
    })
}

/// `[train] external`: the command names where its inputs and output go, and trains one
/// objective.
fn external(c: &Checker<'_>, t: &TrainSection, algo: Algo) -> R<Option<ExternalPlan>> {
    let Some(e) = &t.external else {
        return Ok(None);
    };
    let has_data = e.command.contains("{data}") || e.command.contains("{data_dir}");
    for (p, ok) in [
        ("{data} (or {data_dir})", has_data),
        ("{model}", e.command.contains("{model}")),
        ("{out}", e.command.contains("{out}")),
    ] {
        c.check(
            ok,
            "train",
            "external",
            &format!("a command with {p} in it ({{data}}: the round's TRL JSONL, {{model}}: the start checkpoint, {{out}}: where the trained HF checkpoint goes)"),
        )?;
    }
    c.check(
        algo != Algo::SftThenDpo,
        "train",
        "external",
        "train.algo `sft` or `dpo` (one external command trains one objective; `sft+dpo` would need two)",
    )?;
    c.check(
        e.timeout_s >= 0.0 && e.timeout_s.is_finite(),
        "train",
        "external",
        "timeout_s >= 0 seconds (0 = no limit)",
    )?;
    Ok(Some(ExternalPlan {
        command: e.command.clone(),
        timeout_s: (e.timeout_s > 0.0).then_some(e.timeout_s),
    }))
}

/// The transport settings of `[generate]` with another server's address, model and key.
fn endpoint(g: &GenerateSection, base_url: &str, model: &str, key_env: &str) -> EndpointPlan {
    EndpointPlan {
        base_url: base_url.to_string(),
        model: model.to_string(),
        api_key_env: non_empty(key_env),
        chat: g.chat,
        concurrency: g.concurrency,
        timeout_s: g.timeout_s,
        max_retries: g.max_retries,
        backoff_ms: g.backoff_ms,
        cache: g.cache,
    }
}

fn generate(c: &Checker<'_>, f: &RecipeFile) -> R<GeneratePlan> {
    let g = &f.generate;
    c.check(g.n_prompts >= 1, "generate", "n_prompts", ">= 1")?;
    c.check(g.n_per_prompt >= 1, "generate", "n_per_prompt", ">= 1")?;
    c.check(
        g.endpoint.is_empty() || is_base_url(&g.endpoint),
        "generate",
        "endpoint",
        "an http:// or https:// base URL (e.g. http://127.0.0.1:8000/v1), or empty",
    )?;
    c.check(
        g.endpoint.is_empty() || !has_teacher(&f.teacher),
        "generate",
        "endpoint",
        "empty when [teacher] is set (one generator per run)",
    )?;
    c.check(
        (1..=1024).contains(&g.concurrency),
        "generate",
        "concurrency",
        "1..=1024",
    )?;
    c.check(
        g.timeout_s > 0.0 && g.timeout_s <= 3600.0,
        "generate",
        "timeout_s",
        "seconds in (0, 3600]",
    )?;
    c.check(g.max_retries <= 100, "generate", "max_retries", "0..=100")?;
    c.check(
        g.temperature >= 0.0 && g.temperature <= 100.0,
        "generate",
        "temperature",
        "0 (greedy) ..= 100",
    )?;
    c.check(
        g.top_p > 0.0 && g.top_p <= 1.0,
        "generate",
        "top_p",
        "(0, 1]",
    )?;
    c.check(g.max_new_tokens >= 1, "generate", "max_new_tokens", ">= 1")?;
    c.check(
        g.max_new_tokens < f.model.max_seq_len,
        "generate",
        "max_new_tokens",
        &format!("< model.max_seq_len = {}", f.model.max_seq_len),
    )?;
    c.check(g.batch_size >= 1, "generate", "batch_size", ">= 1")?;
    c.check(g.prompt_chars >= 1, "generate", "prompt_chars", ">= 1")?;
    let round_digits = round_digits(c, f)?;
    let generator = if let Some(t) = teacher(c, f)? {
        Generator::Teacher(t)
    } else if !g.endpoint.is_empty() {
        Generator::Endpoint(endpoint(g, &g.endpoint, &g.endpoint_model, &g.api_key_env))
    } else {
        Generator::Policy
    };
    Ok(GeneratePlan {
        generator,
        self_instruct: self_instruct(c, &f.self_instruct)?,
        n_prompts: g.n_prompts,
        n_per_prompt: g.n_per_prompt,
        sampling: SamplingPlan {
            temperature: g.temperature,
            top_k: g.top_k,
            top_p: g.top_p,
            max_new_tokens: g.max_new_tokens,
        },
        batch_size: g.batch_size,
        prompt_chars: g.prompt_chars,
        round_digits,
    })
}

/// `[generate] digits_step` / `digits_schedule` as the operand digits of rounds 1..=rounds.
fn round_digits(c: &Checker<'_>, f: &RecipeFile) -> R<Vec<u32>> {
    let g = &f.generate;
    let w = &f.world;
    let rounds = f.run.rounds;
    let (key, digits): (&str, Vec<u64>) = match (g.digits_step, g.digits_schedule.is_empty()) {
        (0, true) => return Ok(Vec::new()),
        (_, false) => {
            c.check(
                g.digits_step == 0,
                "generate",
                "digits_schedule",
                "either digits_schedule or digits_step, not both",
            )?;
            c.check(
                g.digits_schedule.len() >= rounds as usize,
                "generate",
                "digits_schedule",
                &format!("at least run.rounds = {rounds} entries, one per round"),
            )?;
            c.check(
                g.digits_schedule.iter().all(|&d| d >= 1),
                "generate",
                "digits_schedule",
                "operand digit counts >= 1",
            )?;
            let used = &g.digits_schedule[..rounds as usize];
            ("digits_schedule", used.iter().map(|&d| d as u64).collect())
        }
        (step, true) => (
            "digits_step",
            (1..=rounds as u64)
                .map(|r| (w.digits[1] as u64).saturating_add(step as u64 * r))
                .collect(),
        ),
    };
    c.check(
        plain_arithmetic(f),
        "generate",
        key,
        "off unless the source is the arithmetic world without rationales",
    )?;
    // The longest round's problem: two operands, an operator, `=`, an answer one digit
    // longer, within the context.
    let (at, d) = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| (i + 1, d))
        .max_by_key(|&(_, d)| d)
        .unwrap_or((0, 0));
    let need = d.saturating_mul(3).saturating_add(3);
    // Answers are i64: a product of two 9-digit operands, a sum of two 18-digit ones.
    let most = if w.ops.iter().any(|o| o == "*") {
        9
    } else {
        18
    };
    c.check(
        d <= most && need <= f.model.max_seq_len as u64,
        "generate",
        key,
        &format!(
            "operands of at most {most} digits whose problems fit model.max_seq_len = {} \
             (round {at} would need {d}-digit operands, {need} tokens)",
            f.model.max_seq_len
        ),
    )?;
    Ok(digits.into_iter().map(|d| d as u32).collect())
}

fn has_teacher(te: &TeacherSection) -> bool {
    te.d_model > 0 || !te.hf.is_empty() || te.oracle || !te.endpoint.is_empty()
}

fn teacher(c: &Checker<'_>, f: &RecipeFile) -> R<Option<TeacherPlan>> {
    let te = &f.teacher;
    let sources = [
        te.d_model > 0,
        !te.hf.is_empty(),
        te.oracle,
        !te.endpoint.is_empty(),
    ];
    if !has_teacher(te) {
        c.check(
            te.train_size == 0,
            "teacher",
            "train_size",
            "0 without a trained teacher (set teacher.d_model)",
        )?;
        return Ok(None);
    }
    let key =
        ["d_model", "hf", "oracle", "endpoint"][sources.iter().position(|&b| b).expect("one")];
    c.check(
        sources.iter().filter(|&&b| b).count() == 1,
        "teacher",
        key,
        "one teacher source: d_model > 0 (trained in round 0), hf = DIR, oracle = true, or endpoint = URL",
    )?;
    if !te.endpoint.is_empty() {
        c.check(
            is_base_url(&te.endpoint),
            "teacher",
            "endpoint",
            "an http:// or https:// base URL (e.g. http://127.0.0.1:8000/v1)",
        )?;
        c.check(
            (1..=20).contains(&te.top_logprobs),
            "teacher",
            "top_logprobs",
            "1..=20 (the OpenAI API's limit)",
        )?;
        let endpoint = endpoint(
            &f.generate,
            &te.endpoint,
            &te.endpoint_model,
            &te.api_key_env,
        );
        return Ok(Some(TeacherPlan::Endpoint {
            endpoint,
            top_logprobs: te.top_logprobs,
        }));
    }
    c.check(
        te.train_size == 0 || (te.d_model > 0 && f.data.path.is_empty()),
        "teacher",
        "train_size",
        "0 unless a trained teacher (d_model > 0) learns from a built-in world",
    )?;
    if te.oracle {
        c.check(
            f.data.path.is_empty() && f.world.kind == "markov",
            "teacher",
            "oracle",
            "false unless world.kind = \"markov\" (only that world knows its true distribution)",
        )?;
        c.check(
            f.model.hf.is_empty() && f.model.tokenizer == "char",
            "teacher",
            "oracle",
            "false unless the student is a fresh model with model.tokenizer = \"char\" (the source's outcomes are characters)",
        )?;
        return Ok(Some(TeacherPlan::Oracle));
    }
    if !te.hf.is_empty() {
        return Ok(Some(TeacherPlan::Hf(PathBuf::from(&te.hf))));
    }
    c.check(
        f.model.hf.is_empty(),
        "teacher",
        "d_model",
        "0 when [model] hf is set (the teacher shares the student's tokenizer, which a checkpoint fixes)",
    )?;
    check_shape(
        c,
        "teacher",
        te.d_model,
        te.n_layers,
        te.n_heads,
        te.n_kv_heads,
    )?;
    c.check(te.steps >= 1, "teacher", "steps", ">= 1")?;
    c.check(te.lr > 0.0, "teacher", "lr", "> 0")?;
    Ok(Some(TeacherPlan::Trained(TrainedTeacher {
        d_model: te.d_model,
        n_layers: te.n_layers,
        n_heads: te.n_heads,
        n_kv_heads: te.n_kv_heads,
        d_ff: (te.d_ff > 0).then_some(te.d_ff),
        optim: optim(&f.train, te.steps, f.train.batch_size, te.lr, 1),
        train_size: (te.train_size > 0).then_some(te.train_size),
    })))
}

fn distill(c: &Checker<'_>, f: &RecipeFile, g: &GeneratePlan) -> R<Option<DistillPlan>> {
    let d = &f.distill;
    let names = ["none", "forward", "reverse", "jsd"];
    c.choice(
        &d.loss,
        &names,
        |v| names.contains(&v).then_some(()),
        "distill",
        "loss",
    )?;
    c.check(
        d.beta > 0.0 && d.beta < 1.0,
        "distill",
        "beta",
        "a number in (0, 1) (loss = \"forward\" is beta 0, \"reverse\" beta 1)",
    )?;
    c.check(
        d.temperature > 0.0 && d.temperature <= 100.0,
        "distill",
        "temperature",
        "a number in (0, 100]",
    )?;
    c.check(
        (0.0..=1.0).contains(&d.on_policy),
        "distill",
        "on_policy",
        "a fraction in [0, 1]",
    )?;
    if d.loss == "none" {
        return Ok(None);
    }
    c.check(
        g.teacher().is_some(),
        "distill",
        "loss",
        "\"none\" without a [teacher] (set teacher.d_model, teacher.hf or teacher.oracle)",
    )?;
    c.check(
        f.train.algo != "dpo",
        "distill",
        "loss",
        "\"none\" when train.algo = \"dpo\" (distillation replaces the rounds' SFT)",
    )?;
    if let Some(TeacherPlan::Endpoint { .. }) = g.teacher() {
        // An endpoint scores only what it wrote: the rows must be its samples, as it wrote them.
        c.check(
            d.on_policy == 0.0,
            "distill",
            "on_policy",
            "0 with an endpoint teacher (it gives log-probs only of its own samples, not of the student's)",
        )?;
        c.check(
            d.temperature == 1.0,
            "distill",
            "temperature",
            "1 with an endpoint teacher (its log-probs are at temperature 1)",
        )?;
        c.check(
            f.mix.mode == "replace",
            "mix",
            "mode",
            "\"replace\" with an endpoint teacher and [distill] (the student trains on the teacher's samples, whose log-probs it has)",
        )?;
    }
    Ok(Some(DistillPlan {
        beta: match d.loss.as_str() {
            "forward" => 0.0,
            "reverse" => 1.0,
            _ => d.beta,
        },
        temperature: d.temperature,
        on_policy: d.on_policy,
    }))
}

fn self_instruct(c: &Checker<'_>, si: &SelfInstructSection) -> R<Option<SelfInstructPlan>> {
    c.check(
        si.k_human + si.k_machine >= 1,
        "self_instruct",
        "k_human",
        "k_human + k_machine >= 1",
    )?;
    c.check(
        si.min_words <= si.max_words,
        "self_instruct",
        "max_words",
        "at least self_instruct.min_words",
    )?;
    c.check(
        si.rouge_threshold > 0.0 && si.rouge_threshold <= 1.0,
        "self_instruct",
        "rouge_threshold",
        "a ROUGE-L F in (0, 1]",
    )?;
    c.check(
        si.max_new_tokens >= 1,
        "self_instruct",
        "max_new_tokens",
        ">= 1",
    )?;
    Ok((!si.seed_tasks.is_empty()).then(|| SelfInstructPlan {
        seed_tasks: PathBuf::from(&si.seed_tasks),
        k_human: si.k_human,
        k_machine: si.k_machine,
        min_words: si.min_words,
        max_words: si.max_words,
        rouge_threshold: si.rouge_threshold,
        max_new_tokens: si.max_new_tokens,
    }))
}

fn judge(c: &Checker<'_>, f: &RecipeFile) -> R<Option<JudgePlan>> {
    let j = &f.judge;
    c.choice(
        &j.mode,
        &["none", "score"],
        |v| matches!(v, "none" | "score").then_some(()),
        "judge",
        "mode",
    )?;
    c.check(j.min < j.max, "judge", "max", "a number above judge.min")?;
    c.check(
        j.min_score == 0.0 || (j.min..=j.max).contains(&j.min_score),
        "judge",
        "min_score",
        "0 (no filter) or a score within [min, max]",
    )?;
    c.check(j.max_new_tokens >= 1, "judge", "max_new_tokens", ">= 1")?;
    c.check(
        j.endpoint.is_empty() || is_base_url(&j.endpoint),
        "judge",
        "endpoint",
        "an http:// or https:// base URL, or empty (the previous round's model judges)",
    )?;
    if j.mode == "none" {
        return Ok(None);
    }
    let by = if j.endpoint.is_empty() {
        JudgeBy::Policy
    } else {
        // The judge's verdicts are always cached (a resumed run re-reads them).
        JudgeBy::Endpoint(EndpointPlan {
            cache: true,
            ..endpoint(&f.generate, &j.endpoint, &j.endpoint_model, &j.api_key_env)
        })
    };
    Ok(Some(JudgePlan {
        by,
        template: non_empty(&j.template),
        min: j.min,
        max: j.max,
        min_score: (j.min_score > 0.0).then_some(j.min_score),
        max_new_tokens: j.max_new_tokens,
    }))
}

fn check_filter(c: &Checker<'_>, fl: &FilterSection) -> R<()> {
    c.check(
        fl.min_chars <= fl.max_chars,
        "filter",
        "max_chars",
        &format!(">= filter.min_chars = {}", fl.min_chars),
    )?;
    c.check(
        (0.0..1.0).contains(&fl.majority),
        "filter",
        "majority",
        "a share in [0, 1): 0 = no vote, 0.5 = a strict majority of a prompt's samples",
    )?;
    c.check(
        !fl.carry_digit || fl.answer_length,
        "filter",
        "carry_digit",
        "false unless filter.answer_length = true (it refines the length rule)",
    )
}

fn mix(c: &Checker<'_>, m: &MixSection) -> R<MixPlan> {
    c.check(
        (0.0..=1.0).contains(&m.synthetic_ratio),
        "mix",
        "synthetic_ratio",
        "a fraction in [0, 1]",
    )?;
    let mode = c.choice(
        &m.mode,
        MixMode::NAMES,
        |v| MixMode::parse(v, m.synthetic_ratio),
        "mix",
        "mode",
    )?;
    Ok(MixPlan {
        mode,
        size: (m.size > 0).then_some(m.size),
    })
}

fn dpo(c: &Checker<'_>, f: &RecipeFile, source: &Source) -> R<Option<DpoPlan>> {
    let d = &f.dpo;
    let loss = c.choice(&d.loss, DpoLoss::NAMES, DpoLoss::parse, "dpo", "loss")?;
    c.check(d.beta > 0.0, "dpo", "beta", "> 0")?;
    c.check(
        (0.0..0.5).contains(&d.label_smoothing),
        "dpo",
        "label_smoothing",
        "[0, 0.5)",
    )?;
    c.check(d.rpo_alpha >= 0.0, "dpo", "rpo_alpha", ">= 0")?;
    let scorer = c.choice(
        &d.scorer,
        PairScorer::NAMES,
        PairScorer::parse,
        "dpo",
        "scorer",
    )?;
    c.check(d.min_gap >= 0.0, "dpo", "min_gap", ">= 0")?;
    c.check(d.steps >= 1, "dpo", "steps", ">= 1")?;
    c.check(d.batch_size >= 1, "dpo", "batch_size", ">= 1")?;
    c.check(
        d.lr > 0.0 && d.lr <= 1.0,
        "dpo",
        "lr",
        "a learning rate in (0, 1]",
    )?;
    let algo = Algo::parse(&f.train.algo).expect("checked by train()");
    if !algo.dpo() {
        return Ok(None);
    }
    c.check(
        f.generate.n_per_prompt >= 2,
        "generate",
        "n_per_prompt",
        ">= 2 when train.algo includes dpo (pairs need two samples of a prompt)",
    )?;
    c.check(
        scorer != PairScorer::Reward || !f.reward.data.is_empty() || source.has_verifier(),
        "reward",
        "data",
        "a preference file when dpo.scorer = \"reward\" and there is no built-in world to derive pairs from",
    )?;
    c.check(
        scorer != PairScorer::Judge || f.judge.mode == "score",
        "judge",
        "mode",
        "\"score\" when dpo.scorer = \"judge\" (pairs are ranked by the judge's scores)",
    )?;
    c.check(
        scorer != PairScorer::Verifier || source.has_verifier(),
        "dpo",
        "scorer",
        "a scorer other than `verifier` for a dataset without a verifier",
    )?;
    Ok(Some(DpoPlan {
        loss,
        beta: d.beta,
        label_smoothing: d.label_smoothing,
        rpo_alpha: d.rpo_alpha,
        scorer,
        min_gap: d.min_gap,
        optim: OptimConfig {
            lora: lora_spec(&f.train),
            ..optim(&f.train, d.steps, d.batch_size, d.lr, 1)
        },
    }))
}

fn reward(c: &Checker<'_>, f: &RecipeFile) -> R<RewardPlan> {
    let rw = &f.reward;
    let on_error = c.choice(
        &rw.on_error,
        OnError::NAMES,
        OnError::parse,
        "reward",
        "on_error",
    )?;
    c.check(
        rw.eval_fraction > 0.0 && rw.eval_fraction < 1.0,
        "reward",
        "eval_fraction",
        "a fraction in (0, 1)",
    )?;
    c.check(rw.steps >= 1, "reward", "steps", ">= 1")?;
    c.check(rw.batch_size >= 1, "reward", "batch_size", ">= 1")?;
    c.check(
        rw.lr > 0.0 && rw.lr <= 1.0,
        "reward",
        "lr",
        "a learning rate in (0, 1]",
    )?;
    c.check(rw.center >= 0.0, "reward", "center", ">= 0")?;
    let t = &f.train;
    Ok(RewardPlan {
        data: non_empty(&rw.data).map(PathBuf::from),
        on_error,
        eval_fraction: rw.eval_fraction,
        max_rows: (rw.max_rows > 0).then_some(rw.max_rows),
        lm: (rw.lm_steps > 0).then(|| optim(t, rw.lm_steps, t.batch_size, t.lr, 1)),
        optim: optim(t, rw.steps, rw.batch_size, rw.lr, 1),
        center: (rw.center > 0.0).then_some(rw.center),
    })
}

fn detector(c: &Checker<'_>, d: &DetectorSection) -> R<Vec<didact_metrics::detector::Rule>> {
    use didact_metrics::detector::{Action, Rule, RuleKind};
    let mut rules = Vec::new();
    for r in &d.rules {
        let kind = c.choice(
            &r.kind,
            RuleKind::NAMES,
            RuleKind::parse,
            "detector",
            "rules",
        )?;
        let action = c.choice(&r.action, Action::NAMES, Action::parse, "detector", "rules")?;
        c.check(
            r.pct > 0.0 && r.pct.is_finite(),
            "detector",
            "rules",
            "pct > 0 (percent)",
        )?;
        c.check(
            r.metric.contains('/'),
            "detector",
            "rules",
            "a metric column name such as `eval/ppl_real`",
        )?;
        c.check(
            r.noise_sd >= 0.0 && r.noise_sd.is_finite(),
            "detector",
            "rules",
            "noise_sd >= 0 (the metric's seed-to-seed standard deviation)",
        )?;
        c.check(
            (1..=100).contains(&r.rounds),
            "detector",
            "rules",
            "rounds in 1..=100 (consecutive rounds the condition must hold)",
        )?;
        rules.push(Rule {
            metric: r.metric.clone(),
            kind,
            pct: r.pct,
            action,
            noise_sd: r.noise_sd,
            rounds: r.rounds,
        });
    }
    Ok(rules)
}

fn check_eval(c: &Checker<'_>, e: &EvalSection) -> R<()> {
    c.check(e.eval_size >= 1, "eval", "eval_size", ">= 1")?;
    c.check(e.n_samples >= 2, "eval", "n_samples", ">= 2")?;
    c.check(e.batch_size >= 1, "eval", "batch_size", ">= 1")
}
