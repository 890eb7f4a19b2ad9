//! The validated plan a run executes, and the one place (`resolve`) where every value and
//! combination is checked. Strings of the file become enums here; an error names the file,
//! the key (with its line, or `--set`) and what was expected.

use crate::error::RecipeError;
use crate::file::*;

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Built-in arithmetic world.
    Arithmetic {
        ops: Vec<char>,
        digits: (u32, u32),
        ood_digits: (u32, u32),
        train_size: usize,
        rationales: bool,
    },
    /// Built-in Markov-source world (exact true probabilities).
    Markov {
        zipf: f64,
        end_prob: f64,
        max_chars: usize,
        train_size: usize,
        source_seed: u64,
    },
    /// A dataset file.
    Dataset {
        path: String,
        skip_bad_rows: bool,
        chunk_chars: usize,
        eval_fraction: f64,
        max_rows: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mix {
    Replace,
    Accumulate,
    Ratio(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Continue,
    Base,
    Scratch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    Char,
    Bpe { vocab: usize },
}

/// Everything a run needs, validated. Numeric sections are carried as they are in the file
/// (already range-checked); every choice is an enum.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub name: String,
    pub seed: u64,
    pub rounds: u32,
    pub device: String,
    pub threads: usize,
    pub source: Source,
    pub model: ModelSection,
    pub tokenizer: TokenizerKind,
    pub train: TrainSection,
    pub init: Init,
    pub generate: GenerateSection,
    pub filter: FilterSection,
    pub mix: Mix,
    pub mix_size: usize,
    pub algo: Algo,
    pub dpo: DpoSection,
    pub dpo_loss: DpoLossKind,
    pub reward: RewardSection,
    /// Distillation: the teacher that generates in rounds ≥ 1.
    pub teacher: Option<TeacherSection>,
    /// LLM-as-judge (`mode = "none"` = off).
    pub judge: JudgeSection,
    /// Self-Instruct bootstrapping (`seed_tasks` empty = off).
    pub self_instruct: SelfInstructSection,
    pub detector: Vec<didact_metrics::detector::Rule>,
    pub eval: EvalSection,
}

/// What rounds ≥ 1 train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Algo {
    pub sft: bool,
    pub dpo: bool,
}

/// `[dpo] loss`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DpoLossKind {
    Sigmoid,
    Ipo,
    Hinge,
    Robust,
}

/// Locates a key's line for messages.
pub trait KeyLines {
    fn line_of(&self, section: &str, key: &str) -> Option<usize>;
}

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

    fn check(&self, ok: bool, section: &str, key: &str, expected: &str) -> Result<(), RecipeError> {
        if ok {
            Ok(())
        } else {
            Err(self.err(section, key, expected))
        }
    }

    fn one_of(
        &self,
        v: &str,
        allowed: &[&str],
        section: &str,
        key: &str,
    ) -> Result<(), RecipeError> {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        self.check(
            allowed.contains(&v),
            section,
            key,
            &format!("one of {} (got \"{v}\")", quoted.join(", ")),
        )
    }
}

pub const DEVICES: &[&str] = &["cpu", "flex", "ndarray", "cuda", "tch", "tch-cpu"];

/// Validate a resolved recipe into a plan.
/// An http(s) base URL of an OpenAI-compatible server.
fn is_base_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Layers, heads and KV heads of a Llama shape in `[section]`.
fn check_shape(
    c: &Checker<'_>,
    section: &str,
    d_model: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
) -> Result<(), RecipeError> {
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

pub fn resolve(
    f: &RecipeFile,
    file: &str,
    lines: &dyn KeyLines,
    overridden: &[String],
) -> Result<RunPlan, RecipeError> {
    let c = Checker {
        file,
        lines,
        overridden,
    };
    // [run]
    c.check(
        !f.run.name.is_empty() && !f.run.name.contains('/'),
        "run",
        "name",
        "a non-empty name without `/`",
    )?;
    c.check(f.run.rounds <= 1000, "run", "rounds", "0..=1000")?;
    c.one_of(&f.run.device, DEVICES, "run", "device")?;
    c.check(
        f.run.threads <= 1024,
        "run",
        "threads",
        "0 (all cores) ..= 1024",
    )?;

    // source
    let source = if f.data.path.is_empty() && f.world.kind == "markov" {
        let w = &f.world;
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
        Source::Markov {
            zipf: w.zipf,
            end_prob: w.end_prob,
            max_chars: w.max_chars,
            train_size: w.train_size,
            source_seed: w.source_seed,
        }
    } else if f.data.path.is_empty() {
        c.one_of(&f.world.kind, &["arithmetic", "markov"], "world", "kind")?;
        c.check(
            !f.world.ops.is_empty(),
            "world",
            "ops",
            "a non-empty list of \"+\", \"-\", \"*\"",
        )?;
        let mut ops = Vec::new();
        for o in &f.world.ops {
            c.check(
                matches!(o.as_str(), "+" | "-" | "*"),
                "world",
                "ops",
                &format!("operators among \"+\", \"-\", \"*\" (got \"{o}\")"),
            )?;
            ops.push(o.chars().next().expect("checked"));
        }
        let [a, b] = f.world.digits;
        c.check(
            (1..=9).contains(&a) && a <= b && b <= 9,
            "world",
            "digits",
            "[min, max] with 1 <= min <= max <= 9",
        )?;
        let [oa, ob] = f.world.ood_digits;
        c.check(
            (1..=9).contains(&oa) && oa <= ob && ob <= 9,
            "world",
            "ood_digits",
            "[min, max] with 1 <= min <= max <= 9",
        )?;
        c.check(f.world.train_size >= 1, "world", "train_size", ">= 1")?;
        Source::Arithmetic {
            ops,
            digits: (a, b),
            ood_digits: (oa, ob),
            train_size: f.world.train_size,
            rationales: f.world.rationales,
        }
    } else {
        c.one_of(&f.data.on_error, &["skip", "fail"], "data", "on_error")?;
        c.check(f.data.chunk_chars >= 8, "data", "chunk_chars", ">= 8")?;
        c.check(
            f.data.eval_fraction > 0.0 && f.data.eval_fraction <= 0.5,
            "data",
            "eval_fraction",
            "a fraction in (0, 0.5]",
        )?;
        Source::Dataset {
            path: f.data.path.clone(),
            skip_bad_rows: f.data.on_error == "skip",
            chunk_chars: f.data.chunk_chars,
            eval_fraction: f.data.eval_fraction,
            max_rows: f.data.max_rows,
        }
    };

    // [model]
    let m = &f.model;
    c.check(
        m.d_model >= 8 && m.d_model <= 65536,
        "model",
        "d_model",
        "8..=65536",
    )?;
    check_shape(&c, "model", m.d_model, m.n_layers, m.n_heads, m.n_kv_heads)?;
    c.check(
        m.max_seq_len >= 8 && m.max_seq_len <= 131072,
        "model",
        "max_seq_len",
        "8..=131072",
    )?;
    c.check(m.rope_theta > 0.0, "model", "rope_theta", "> 0")?;
    c.one_of(&m.tokenizer, &["char", "bpe"], "model", "tokenizer")?;
    c.check(
        (260..=65536).contains(&m.bpe_vocab),
        "model",
        "bpe_vocab",
        "260..=65536",
    )?;
    let tokenizer = if m.tokenizer == "char" {
        TokenizerKind::Char
    } else {
        TokenizerKind::Bpe { vocab: m.bpe_vocab }
    };

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
    }

    // [train]
    let t = &f.train;
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
    c.one_of(&t.init, &["continue", "base", "scratch"], "train", "init")?;
    let init = match t.init.as_str() {
        "continue" => Init::Continue,
        "base" => Init::Base,
        _ => Init::Scratch,
    };

    // [self_instruct]
    let si = &f.self_instruct;
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

    // [judge]
    let j = &f.judge;
    c.one_of(&j.mode, &["none", "score"], "judge", "mode")?;
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

    // [teacher]
    let te = &f.teacher;
    let teacher = if te.d_model == 0 {
        None
    } else {
        c.check(
            f.model.hf.is_empty(),
            "teacher",
            "d_model",
            "0 when [model] hf is set (the teacher shares the student's tokenizer, which a checkpoint fixes)",
        )?;
        check_shape(
            &c,
            "teacher",
            te.d_model,
            te.n_layers,
            te.n_heads,
            te.n_kv_heads,
        )?;
        c.check(te.steps >= 1, "teacher", "steps", ">= 1")?;
        c.check(te.lr > 0.0, "teacher", "lr", "> 0")?;
        Some(te.clone())
    };

    // [generate]
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
        g.endpoint.is_empty() || f.teacher.d_model == 0,
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
        g.max_new_tokens < m.max_seq_len,
        "generate",
        "max_new_tokens",
        &format!("< model.max_seq_len = {}", m.max_seq_len),
    )?;
    c.check(g.batch_size >= 1, "generate", "batch_size", ">= 1")?;
    c.check(g.prompt_chars >= 1, "generate", "prompt_chars", ">= 1")?;

    // [filter]
    c.check(
        f.filter.min_chars <= f.filter.max_chars,
        "filter",
        "max_chars",
        &format!(">= filter.min_chars = {}", f.filter.min_chars),
    )?;

    // [mix]
    c.one_of(
        &f.mix.mode,
        &["replace", "accumulate", "ratio"],
        "mix",
        "mode",
    )?;
    c.check(
        (0.0..=1.0).contains(&f.mix.synthetic_ratio),
        "mix",
        "synthetic_ratio",
        "a fraction in [0, 1]",
    )?;
    let mix = match f.mix.mode.as_str() {
        "replace" => Mix::Replace,
        "accumulate" => Mix::Accumulate,
        _ => Mix::Ratio(f.mix.synthetic_ratio),
    };

    // [train] algo and [dpo]
    c.one_of(&t.algo, &["sft", "dpo", "sft+dpo"], "train", "algo")?;
    let algo = Algo {
        sft: t.algo.contains("sft"),
        dpo: t.algo.contains("dpo"),
    };
    let d = &f.dpo;
    c.one_of(
        &d.loss,
        &["sigmoid", "ipo", "hinge", "robust"],
        "dpo",
        "loss",
    )?;
    let dpo_loss = match d.loss.as_str() {
        "sigmoid" => DpoLossKind::Sigmoid,
        "ipo" => DpoLossKind::Ipo,
        "hinge" => DpoLossKind::Hinge,
        _ => DpoLossKind::Robust,
    };
    c.check(d.beta > 0.0, "dpo", "beta", "> 0")?;
    c.check(
        (0.0..0.5).contains(&d.label_smoothing),
        "dpo",
        "label_smoothing",
        "[0, 0.5)",
    )?;
    c.check(d.rpo_alpha >= 0.0, "dpo", "rpo_alpha", ">= 0")?;
    c.one_of(
        &d.scorer,
        &["verifier", "reward", "rules", "judge"],
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
    if algo.dpo {
        c.check(
            f.generate.n_per_prompt >= 2,
            "generate",
            "n_per_prompt",
            ">= 2 when train.algo includes dpo (pairs need two samples of a prompt)",
        )?;
        c.check(
            d.scorer != "reward" || !f.reward.data.is_empty() || matches!(source, Source::Arithmetic { .. }),
            "reward",
            "data",
            "a preference file when dpo.scorer = \"reward\" and there is no built-in world to derive pairs from",
        )?;
        c.check(
            d.scorer != "judge" || f.judge.mode == "score",
            "judge",
            "mode",
            "\"score\" when dpo.scorer = \"judge\" (pairs are ranked by the judge's scores)",
        )?;
        c.check(
            d.scorer != "verifier" || matches!(source, Source::Arithmetic { .. }),
            "dpo",
            "scorer",
            "a scorer other than `verifier` for a dataset without a verifier",
        )?;
    }

    // [reward]
    let rw = &f.reward;
    c.one_of(&rw.on_error, &["skip", "fail"], "reward", "on_error")?;
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

    // [detector]
    let mut detector = Vec::new();
    for r in &f.detector.rules {
        use didact_metrics::detector::{Action, Rule, RuleKind};
        c.one_of(&r.kind, RuleKind::NAMES, "detector", "rules")?;
        c.one_of(&r.action, Action::NAMES, "detector", "rules")?;
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
        detector.push(Rule {
            metric: r.metric.clone(),
            kind: RuleKind::parse(&r.kind).expect("checked"),
            pct: r.pct,
            action: Action::parse(&r.action).expect("checked"),
        });
    }

    // [eval]
    c.check(f.eval.eval_size >= 1, "eval", "eval_size", ">= 1")?;
    c.check(f.eval.n_samples >= 2, "eval", "n_samples", ">= 2")?;
    c.check(f.eval.batch_size >= 1, "eval", "batch_size", ">= 1")?;

    Ok(RunPlan {
        name: f.run.name.clone(),
        seed: f.run.seed,
        rounds: f.run.rounds,
        device: f.run.device.clone(),
        threads: f.run.threads,
        source,
        model: f.model.clone(),
        tokenizer,
        train: f.train.clone(),
        init,
        generate: f.generate.clone(),
        filter: f.filter.clone(),
        mix,
        mix_size: f.mix.size,
        algo,
        dpo: f.dpo.clone(),
        dpo_loss,
        reward: f.reward.clone(),
        teacher,
        judge: f.judge.clone(),
        self_instruct: f.self_instruct.clone(),
        detector,
        eval: f.eval.clone(),
    })
}
