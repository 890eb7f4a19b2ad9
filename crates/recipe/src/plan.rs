//! The resolved plan a run executes: every value checked, every choice an enum, every "off"
//! an `Option`, every derived value (round LR, warmup caps, the judge's transport) computed —
//! no raw TOML sections, no string compares and no sentinel values after `resolve.rs`.
//! Each stage of the loop gets its own part: `generate`, `filter`, `judge`, `mix`, `dpo`,
//! `train`, `eval`, `detector`.

use didact_core::{DpoLoss, MixMode, OnError, OptimConfig};
use didact_metrics::detector::Rule;
use std::path::PathBuf;

/// Everything a run needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub name: String,
    pub seed: u64,
    pub rounds: u32,
    /// A name of `didact_core::DEVICE_NAMES`.
    pub device: String,
    /// 0 = all cores.
    pub threads: usize,
    /// Policies trained side by side (`[run] peers`); 1 = one.
    pub peers: u32,
    pub source: Source,
    pub model: ModelPlan,
    pub train: TrainPlan,
    pub generate: GeneratePlan,
    pub filter: FilterPlan,
    /// LLM-as-judge grading of every sample (`[judge] mode = "score"`).
    pub judge: Option<JudgePlan>,
    pub mix: MixPlan,
    /// Preference pairs and DPO (`train.algo` includes `dpo`).
    pub dpo: Option<DpoPlan>,
    /// Token-level distillation from the teacher in rounds ≥ 1.
    pub distill: Option<DistillPlan>,
    /// The Bradley-Terry reward model (`didact train-rm`; round 0 of `dpo.scorer = "reward"`).
    pub reward: RewardPlan,
    pub detector: Vec<Rule>,
    pub eval: EvalPlan,
}

/// Where the real data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Built-in arithmetic world.
    Arithmetic {
        ops: Vec<char>,
        digits: (u32, u32),
        ood_digits: (u32, u32),
        train_size: usize,
        rationales: bool,
        /// Operands and answer least-significant digit first (addition only).
        reversed: bool,
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
        path: PathBuf,
        on_error: OnError,
        chunk_chars: usize,
        eval_fraction: f64,
        /// Cap on training rows (`None` = all).
        max_rows: Option<usize>,
    },
}

impl Source {
    /// Does the source come with a verifier (the arithmetic world)?
    pub fn has_verifier(&self) -> bool {
        matches!(self, Source::Arithmetic { .. })
    }
}

/// The model of round 0.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelPlan {
    /// A Llama-style model trained from scratch on the real data.
    Fresh {
        shape: Shape,
        tokenizer: TokenizerKind,
    },
    /// A Hugging Face checkpoint directory (or a didact round's `model/`): its shape and
    /// tokenizer rule, and round 0 does not train.
    Pretrained { dir: PathBuf },
}

/// A Llama-style shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// SwiGLU inner size; `None` = Llama's rule (8/3 · d_model rounded up to 32).
    pub d_ff: Option<usize>,
    pub max_seq_len: usize,
    pub rope_theta: f64,
    /// Linear RoPE scaling factor (1 = none).
    pub rope_scaling: f64,
    pub positional: Positional,
    pub tie_embeddings: bool,
}

/// `[model] positional`: how the model knows where a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positional {
    /// Rotary embeddings at the token's index (Llama).
    Rope,
    /// None: order only through the causal mask (NoPE).
    None,
    /// Rotary embeddings at coupled positions: a digit's index within its number, so digits
    /// of one significance share a position in the reversed sum format (Cho et al. 2024).
    Coupled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    Char,
    Bpe { vocab: usize },
}

/// What later rounds train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sft,
    Dpo,
    /// SFT, then DPO.
    SftThenDpo,
}

impl Algo {
    pub const NAMES: &[&str] = &["sft", "dpo", "sft+dpo"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sft" => Some(Self::Sft),
            "dpo" => Some(Self::Dpo),
            "sft+dpo" => Some(Self::SftThenDpo),
            _ => None,
        }
    }

    pub fn sft(self) -> bool {
        matches!(self, Algo::Sft | Algo::SftThenDpo)
    }

    pub fn dpo(self) -> bool {
        matches!(self, Algo::Dpo | Algo::SftThenDpo)
    }
}

/// Where a later round's training starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// The current model (the previous round's, or the rollback target).
    Continue,
    /// Round 0's trained model.
    Base,
    /// Round 0's initial weights (the same random init, or the pretrained checkpoint).
    Scratch,
}

impl Init {
    pub const NAMES: &[&str] = &["continue", "base", "scratch"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "continue" => Some(Self::Continue),
            "base" => Some(Self::Base),
            "scratch" => Some(Self::Scratch),
            _ => None,
        }
    }
}

/// `[train]`, resolved: the optimizer of round 0 and of later rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPlan {
    pub algo: Algo,
    pub init: Init,
    /// Round 0: SFT of the base model on real data (`base_steps`, `lr`).
    pub base: OptimConfig,
    /// Later rounds' SFT (`steps`, `round_lr` or `lr`).
    pub round: OptimConfig,
    /// SFT micro-batches are packed (`didact_train::make_packed_batch`).
    pub packing: bool,
    /// Rounds ≥ 1 train through this command instead of in-process.
    pub external: Option<ExternalPlan>,
}

/// `[train] external`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalPlan {
    /// The command template (placeholders in `file::ExternalSpec`).
    pub command: String,
    /// Kill the command after this long (`None`: no limit).
    pub timeout_s: Option<f64>,
}

/// Who writes a round's samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Generator {
    /// The current policy (the previous round's model, or the rollback target).
    Policy,
    /// A larger model trained in round 0 on the real data (distillation).
    Teacher(TeacherPlan),
    /// An OpenAI-compatible server.
    Endpoint(EndpointPlan),
}

/// `[teacher]`, resolved: where the teacher comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TeacherPlan {
    /// A Llama of this shape trained in round 0.
    Trained(TrainedTeacher),
    /// A Hugging Face checkpoint directory.
    Hf(PathBuf),
    /// The Markov world's true source.
    Oracle,
    /// An OpenAI-compatible server returning `top_logprobs` alternatives per token.
    Endpoint {
        endpoint: EndpointPlan,
        top_logprobs: usize,
    },
}

/// A teacher trained in round 0.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedTeacher {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_ff: Option<usize>,
    pub optim: OptimConfig,
    /// Its own fresh real rows from the world; `None` = the student's.
    pub train_size: Option<usize>,
}

/// `[distill]`, resolved (present when `loss` is not `none`).
#[derive(Debug, Clone, PartialEq)]
pub struct DistillPlan {
    /// 0 = forward KL, 1 = reverse KL, between: generalized JSD.
    pub beta: f64,
    pub temperature: f64,
    /// λ, the on-policy fraction.
    pub on_policy: f64,
}

/// How to reach an OpenAI-compatible server.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointPlan {
    /// Base URL up to `/v1`.
    pub base_url: String,
    /// The `model` field sent.
    pub model: String,
    /// Name of the environment variable holding the key.
    pub api_key_env: Option<String>,
    /// `/chat/completions` instead of `/completions`.
    pub chat: bool,
    pub concurrency: usize,
    pub timeout_s: f64,
    pub max_retries: u32,
    pub backoff_ms: u64,
    /// Cache responses under the run directory.
    pub cache: bool,
}

/// Decoding settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingPlan {
    /// 0 = greedy.
    pub temperature: f64,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 = off.
    pub top_p: f64,
    pub max_new_tokens: usize,
}

/// `[generate]` (+ `[teacher]`, `[self_instruct]`), resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratePlan {
    pub generator: Generator,
    /// Self-Instruct bootstrapping instead of answering the task's prompts.
    pub self_instruct: Option<SelfInstructPlan>,
    pub n_prompts: usize,
    pub n_per_prompt: usize,
    pub sampling: SamplingPlan,
    pub batch_size: usize,
    /// Prompt-less text rows: the prompt is this many leading characters.
    pub prompt_chars: usize,
    /// Arithmetic self-improvement: entry r − 1 is the number of digits of round r's
    /// operands (from `digits_step` or `digits_schedule`). Empty: prompts like the training
    /// problems.
    pub round_digits: Vec<u32>,
}

impl GeneratePlan {
    /// The distillation teacher, when the run has one.
    pub fn teacher(&self) -> Option<&TeacherPlan> {
        match &self.generator {
            Generator::Teacher(t) => Some(t),
            _ => None,
        }
    }

    /// The number of digits of round `r`'s operands, when the run generates harder problems
    /// each round (`None`: prompts like the training problems).
    pub fn digits_of_round(&self, r: u32) -> Option<u32> {
        let i = (r as usize).checked_sub(1)?;
        self.round_digits.get(i).copied()
    }
}

/// `[self_instruct]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfInstructPlan {
    pub seed_tasks: PathBuf,
    pub k_human: usize,
    pub k_machine: usize,
    pub min_words: usize,
    pub max_words: usize,
    pub rouge_threshold: f64,
    pub max_new_tokens: usize,
}

/// `[filter]`: which samples are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPlan {
    /// Drop what the world's verifier marks incorrect (always false without a verifier).
    pub verifier: bool,
    pub min_chars: usize,
    pub max_chars: usize,
    pub dedup: bool,
    pub require_stop: bool,
    /// Keep answers given by more than this share of a prompt's samples; `None` = no vote.
    pub majority: Option<f64>,
    /// Drop answers of a length no sum can have (arithmetic world, addition).
    pub answer_length: bool,
    /// With `answer_length`: also answers whose carry digit is not 1.
    pub carry_digit: bool,
    /// Drop answers whose low digits disagree with the policies' answer to the low-digit
    /// sub-problem (reversed sums).
    pub prefix_check: bool,
    /// `[filter] top_check`: the high-digit self-check (`top/consistent`).
    pub top_check: bool,
}

/// Who judges.
#[derive(Debug, Clone, PartialEq)]
pub enum JudgeBy {
    /// The current policy, greedy.
    Policy,
    Endpoint(EndpointPlan),
}

/// `[judge] mode = "score"`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgePlan {
    pub by: JudgeBy,
    /// `None` = the built-in template.
    pub template: Option<String>,
    pub min: f64,
    pub max: f64,
    /// Drop kept samples scored below this (and unparseable verdicts); `None` = grade only.
    pub min_score: Option<f64>,
    pub max_new_tokens: usize,
}

/// `[mix]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MixPlan {
    pub mode: MixMode,
    /// Training-set size; `None` = the mode's natural size (real size for `ratio`).
    pub size: Option<usize>,
}

/// What ranks a prompt's samples into preference pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairScorer {
    /// Correct beats incorrect.
    Verifier,
    /// Round 0's Bradley-Terry reward model.
    Reward,
    /// A sample that passed every `[filter]` rule beats one that did not.
    Rules,
    /// The LLM judge's score.
    Judge,
}

impl PairScorer {
    pub const NAMES: &[&str] = &["verifier", "reward", "rules", "judge"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "verifier" => Some(Self::Verifier),
            "reward" => Some(Self::Reward),
            "rules" => Some(Self::Rules),
            "judge" => Some(Self::Judge),
            _ => None,
        }
    }
}

/// `[dpo]`, resolved (present when `train.algo` includes `dpo`).
#[derive(Debug, Clone, PartialEq)]
pub struct DpoPlan {
    pub loss: DpoLoss,
    pub beta: f64,
    pub label_smoothing: f64,
    pub rpo_alpha: f64,
    pub scorer: PairScorer,
    pub min_gap: f64,
    pub optim: OptimConfig,
}

/// `[reward]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardPlan {
    /// Preference pairs; `None` = derived from a built-in world's correct rows.
    pub data: Option<PathBuf>,
    pub on_error: OnError,
    pub eval_fraction: f64,
    /// Cap on pairs (`None` = all).
    pub max_rows: Option<usize>,
    /// Language-model warm-up of a fresh backbone on the chosen texts (`None` = off).
    pub lm: Option<OptimConfig>,
    pub optim: OptimConfig,
    /// TRL's `center_rewards_coefficient` (`None` = off).
    pub center: Option<f64>,
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPlan {
    pub eval_size: usize,
    pub ood_size: usize,
    pub n_samples: usize,
    pub batch_size: usize,
    /// Accuracy by operand length (arithmetic world).
    pub by_length: bool,
}
