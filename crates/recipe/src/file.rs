//! The serde mirror of a recipe TOML file. Every default lives here, once, with its meaning;
//! a recipe names only what differs. Unknown keys are errors. This is the only serialized
//! type (`recipe.resolved.toml` is this struct after defaults and overrides).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RecipeFile {
    pub run: RunSection,
    pub world: WorldSection,
    pub data: DataSection,
    pub model: ModelSection,
    pub train: TrainSection,
    pub generate: GenerateSection,
    pub filter: FilterSection,
    pub mix: MixSection,
    pub dpo: DpoSection,
    pub reward: RewardSection,
    pub teacher: TeacherSection,
    pub distill: DistillSection,
    pub judge: JudgeSection,
    pub self_instruct: SelfInstructSection,
    pub detector: DetectorSection,
    pub eval: EvalSection,
    /// `[sweep]`: a grid for `didact sweep` — keys `"section.key"`, each an array of values;
    /// every combination is one run (`didact run` ignores this table).
    pub sweep: toml::Table,
}

/// `[run]`: identity and the number of rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Run name; the default output directory is `runs/<name>-s<seed>`.
    pub name: String,
    /// Seeds everything: weights, data order, prompts, sampling.
    pub seed: u64,
    /// Self-evolution rounds after round 0 (round 0 trains the base model on real data).
    pub rounds: u32,
    /// `cpu` (the build's default CPU backend: flex), `flex`, `ndarray`, `cuda`, `tch` (LibTorch CUDA), `tch-cpu`.
    pub device: String,
    /// CPU threads for the backend's thread pool; 0 = all cores.
    pub threads: usize,
    /// Policies trained side by side from their own initial weights (Lee et al. 2025's vote
    /// across models): each samples `n_per_prompt` answers to the same prompts, the filter
    /// votes over all of them, each trains on the kept rows. Metrics are peer 0's (the run's
    /// own lineage); 1 = one policy. Needs in-process SFT with the policy as the generator.
    /// Left out of a resolved recipe at 1, so runs from before it existed resume.
    #[serde(skip_serializing_if = "one")]
    pub peers: u32,
}

fn one(n: &u32) -> bool {
    *n == 1
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            name: "run".into(),
            seed: 1,
            rounds: 3,
            device: "cpu".into(),
            threads: 0,
            peers: 1,
        }
    }
}

/// `[judge]`: LLM-as-judge. With `mode = "score"` every generated sample is graded by a judge
/// model — the previous round's model, or an OpenAI-compatible `endpoint` — on the `min..=max`
/// scale: `judge/score` on the sample, `judge/score_mean` and `judge/unparseable` (share of
/// verdicts with no parseable score; never scored) per round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeSection {
    /// `none` or `score`.
    pub mode: String,
    /// Prompt with `{prompt}`, `{response}`, `{min}`, `{max}`; empty = the built-in one
    /// (asks for the rating as `[[N]]`).
    pub template: String,
    pub min: f64,
    pub max: f64,
    /// Keep only samples scored at least this (0 = grade, do not filter). An unparseable
    /// verdict fails the rule when it is on.
    pub min_score: f64,
    /// Tokens of the judge's verdict.
    pub max_new_tokens: usize,
    /// Empty = the previous round's model judges; else an OpenAI-compatible base URL.
    pub endpoint: String,
    pub endpoint_model: String,
    /// Name of the environment variable holding the judge endpoint's key (empty = none).
    pub api_key_env: String,
}

impl Default for JudgeSection {
    fn default() -> Self {
        JudgeSection {
            mode: "none".into(),
            template: String::new(),
            min: 1.0,
            max: 10.0,
            min_score: 0.0,
            max_new_tokens: 16,
            endpoint: String::new(),
            endpoint_model: "default".into(),
            api_key_env: String::new(),
        }
    }
}

/// `[self_instruct]`: Self-Instruct bootstrapping. When `seed_tasks` is set, every round's
/// generate stage asks the generator (the previous model or `[generate] endpoint`) for new
/// instructions — `generate.n_prompts` prompts, each with `k_human` seed and `k_machine`
/// earlier machine instructions in context — parses them, filters them (length, blacklist,
/// bad start, duplicate, ROUGE-L > `rouge_threshold` against the growing pool), writes them to
/// `instructions.jsonl`, and generates one output per accepted instruction; those are the
/// round's samples. The pool grows round by round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfInstructSection {
    /// `seed_tasks.jsonl` (instruction + instances); empty = off.
    pub seed_tasks: String,
    pub k_human: usize,
    pub k_machine: usize,
    pub min_words: usize,
    pub max_words: usize,
    pub rouge_threshold: f64,
    /// Tokens of each instruction list the generator writes.
    pub max_new_tokens: usize,
}

impl Default for SelfInstructSection {
    fn default() -> Self {
        SelfInstructSection {
            seed_tasks: String::new(),
            k_human: 6,
            k_machine: 2,
            min_words: 3,
            max_words: 150,
            rouge_threshold: 0.7,
            max_new_tokens: 128,
        }
    }
}

/// `[teacher]`: distillation. A teacher is one of: a model of this shape trained in round 0
/// on the real data (`d_model > 0`; `rounds/round-00/teacher/`), a Hugging Face checkpoint
/// directory (`hf`; its tokenizer must be the student's), or, in the Markov world, the exact
/// source (`oracle = true`: its true next-token distribution, the best any teacher can do), or
/// an OpenAI-compatible endpoint returning top-k log-probs (`endpoint = URL`).
/// Round 0 measures it (`teacher/*`); every later round generates with it instead of the
/// current model, and `[distill] loss` trains the student on its token distributions.
/// Vocabulary, `max_seq_len`, `rope_theta` and the tokenizer are the student's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherSection {
    /// 0 = no trained teacher.
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// 0 = 8/3 · d_model rounded up to a multiple of 32.
    pub d_ff: usize,
    /// Optimizer steps on the real data (batch size and schedule from `[train]`).
    pub steps: usize,
    pub lr: f64,
    /// A trained teacher's own real rows, drawn fresh from the world (more data than the
    /// student sees); 0 = the student's real rows. Built-in worlds only.
    pub train_size: usize,
    /// A Hugging Face checkpoint directory (`config.json`, `model.safetensors`,
    /// `tokenizer.json`) as the teacher; "" = none.
    pub hf: String,
    /// The Markov world's true source as the teacher.
    pub oracle: bool,
    /// An OpenAI-compatible server as the teacher (base URL up to `/v1`; "" = none): it writes
    /// every round's samples with its `top_logprobs` most likely tokens at each position, and
    /// `[distill]` trains on those (sparse KD; connection settings from `[generate]`).
    pub endpoint: String,
    pub endpoint_model: String,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: String,
    /// How many alternatives per token an endpoint teacher returns (1..=20, the API's limit).
    pub top_logprobs: usize,
}

impl Default for TeacherSection {
    fn default() -> Self {
        TeacherSection {
            d_model: 0,
            n_layers: 4,
            n_heads: 4,
            n_kv_heads: 2,
            d_ff: 0,
            steps: 1000,
            lr: 3e-3,
            train_size: 0,
            hf: String::new(),
            oracle: false,
            endpoint: String::new(),
            endpoint_model: "default".into(),
            api_key_env: String::new(),
            top_logprobs: 20,
        }
    }
}

/// `[distill]`: token-level distillation from the `[teacher]` in rounds ≥ 1 (GKD, Agarwal et
/// al. 2024; TRL's `generalized_jsd_loss`). The student trains on the round's rows (`[mix]`)
/// toward the teacher's next-token distribution instead of the rows' tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillSection {
    /// `none` (next-token NLL on the rows: sequence-level KD when the teacher wrote them),
    /// `forward` (KL(teacher‖student), Hinton KD), `reverse` (KL(student‖teacher)) or `jsd`
    /// (generalized Jensen-Shannon with `beta`).
    pub loss: String,
    /// JSD interpolation β in (0, 1) (TRL's `beta`; 0 would be forward KL, 1 reverse).
    pub beta: f64,
    /// Softmax temperature of both distributions (1 for a top-k teacher).
    pub temperature: f64,
    /// λ: the fraction of batches the student samples itself before the teacher scores them
    /// (on-policy); 0 = off-policy on the rows only.
    pub on_policy: f64,
}

impl Default for DistillSection {
    fn default() -> Self {
        DistillSection {
            loss: "none".into(),
            beta: 0.5,
            temperature: 1.0,
            on_policy: 0.0,
        }
    }
}

/// `[world]`: the built-in task used when `[data] path` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldSection {
    /// `arithmetic` (problems with a verifier) or `markov` (text from a known order-2
    /// character Markov source: exact `truth/*` metrics, no verifier).
    pub kind: String,
    /// Operators drawn uniformly: any of `+`, `-`, `*`.
    pub ops: Vec<String>,
    /// Operand digit range `[min, max]` of training and held-out problems.
    pub digits: [u32; 2],
    /// Operand digit range of the out-of-distribution set (length generalisation).
    pub ood_digits: [u32; 2],
    /// Real (correct) training problems / sentences available to round 0 and to mixing.
    pub train_size: usize,
    /// arithmetic: completions are worked steps then `#### answer` (STaR); the verifier reads
    /// the answer after the last `####`.
    pub rationales: bool,
    /// arithmetic, addition only: operands and answer are written least-significant digit
    /// first (`417+86=` becomes `714+68=305`), so each answer digit depends on the aligned
    /// operand digits and a carry (Lee et al. 2023/2025's reversed format).
    pub reversed: bool,
    /// markov: Zipf exponent of each context's continuation weights (larger = thinner tails).
    pub zipf: f64,
    /// markov: probability that a sentence ends after each symbol (from the third on).
    pub end_prob: f64,
    /// markov: sentences are cut at this many characters.
    pub max_chars: usize,
    /// markov: seed of the source's transition table (the "true distribution").
    pub source_seed: u64,
}

impl Default for WorldSection {
    fn default() -> Self {
        WorldSection {
            kind: "arithmetic".into(),
            ops: vec!["+".into()],
            digits: [1, 3],
            ood_digits: [4, 4],
            train_size: 4000,
            rationales: false,
            reversed: false,
            zipf: 1.5,
            end_prob: 0.04,
            max_chars: 96,
            source_seed: 1,
        }
    }
}

/// `[data]`: a real dataset instead of the built-in world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// `.txt` (one corpus), `.jsonl` or `.parquet` (TRL fields: prompt/completion, text,
    /// messages). Empty = use `[world]`. Relative paths are relative to the working directory.
    pub path: String,
    /// A malformed row: `skip` (counted, first ones reported) or `fail`.
    pub on_error: String,
    /// `.txt` corpora are cut into chunks of about this many characters.
    pub chunk_chars: usize,
    /// Share of rows held out for `eval/loss_real` (taken from the end of a seeded shuffle).
    pub eval_fraction: f64,
    /// Cap on rows used (0 = all): keeps CPU runs short on large files.
    pub max_rows: usize,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            path: String::new(),
            on_error: "fail".into(),
            chunk_chars: 256,
            eval_fraction: 0.05,
            max_rows: 0,
        }
    }
}

/// `[model]`: the Llama-style model trained from scratch in round 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); must divide `n_heads`.
    pub n_kv_heads: usize,
    /// SwiGLU inner size; 0 = 8/3 · d_model rounded up to a multiple of 32.
    pub d_ff: usize,
    /// Longest prompt + completion in tokens.
    pub max_seq_len: usize,
    pub rope_theta: f64,
    /// Linear RoPE scaling factor (HF `rope_scaling` linear): positions are divided by it, so
    /// the fastest rotary frequency aliases only after 2π·factor positions. 1 = plain RoPE.
    pub rope_scaling: f64,
    /// `rope` (rotary position embeddings, as Llama), `none` (NoPE: order only through the
    /// causal mask; Kazemnejad et al. 2023 and Lee et al. 2025 find it generalises to longer
    /// inputs than RoPE) or `coupled` (position coupling, Cho et al. 2024: rotary embeddings at
    /// a digit's index within its number, so in the reversed sum format the digits to add
    /// share a position at every length; `[world] reversed = true` only).
    pub positional: String,
    pub tie_embeddings: bool,
    /// `char` (one token per character: worlds, char-level corpora) or `bpe` (byte-level BPE
    /// trained on the real training rows).
    pub tokenizer: String,
    /// Vocabulary size of a trained BPE.
    pub bpe_vocab: usize,
    /// A pretrained checkpoint directory (Hugging Face `config.json` + `model.safetensors` +
    /// `tokenizer.json`; Llama or Qwen2, or a didact round's `model/`). When set, round 0 starts
    /// from it instead of training a base model, and its shape and tokenizer replace the other
    /// `[model]` keys.
    pub hf: String,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            d_model: 128,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            d_ff: 0,
            max_seq_len: 64,
            rope_theta: 10000.0,
            rope_scaling: 1.0,
            positional: "rope".into(),
            tie_embeddings: false,
            tokenizer: "char".into(),
            bpe_vocab: 512,
            hf: String::new(),
        }
    }
}

/// `[train]`: SFT of every round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Optimizer steps of round 0 (base model on real data).
    pub base_steps: usize,
    /// Optimizer steps of every later round.
    pub steps: usize,
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate of round 0.
    pub lr: f64,
    /// Peak learning rate of later rounds (fine-tuning usually wants less); 0 = same as `lr`.
    pub round_lr: f64,
    pub warmup_steps: usize,
    /// Final LR as a fraction of the peak (cosine decay).
    pub min_lr_ratio: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Global gradient-norm clip; 0 disables.
    pub grad_clip: f64,
    /// Activation checkpointing (burn's balanced gradient checkpointing): memory-bound
    /// activations are recomputed in the backward pass — same gradients, less peak memory.
    pub activation_checkpointing: bool,
    /// `f32`, or `bf16`: mixed precision — every training pass computes in bf16 while the
    /// weights and AdamW's moments stay f32 (fast on LibTorch/CUDA; sampling stays f32).
    pub precision: String,
    /// Later rounds: `continue` fine-tunes the current model; `base` restarts from round 0's
    /// model each round; `scratch` restarts from round 0's initial weights (the same random
    /// init, or the `[model] hf` checkpoint) each round.
    pub init: String,
    /// What later rounds train: `sft` on the mixed set, `dpo` on this round's preference pairs
    /// (`[dpo]`), or `sft+dpo` (SFT, then DPO). Round 0 is always SFT on real data.
    pub algo: String,
    /// SFT packs each micro-batch's rows into as few `max_seq_len` sequences as fit (each row
    /// keeps its positions and attends only to itself: the same loss, less padding).
    pub packing: bool,
    /// Rounds ≥ 1 train outside didact: `{ command = "… {data} … {model} … {out} …" }` (see
    /// `ExternalSpec`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpec>,
    /// Rounds ≥ 1 (SFT and DPO) train LoRA adapters instead of every weight:
    /// `{ r, alpha, targets = ["q_proj", "v_proj"] }` (see `LoraSection`). Round 0 trains the
    /// base model in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSection>,
}

/// `[train] lora`: PEFT's `LoraConfig` fields. The adapters' product is scaled by
/// `alpha / r`; `targets` are HF module names (`q_proj`, `k_proj`, `v_proj`, `o_proj`,
/// `gate_proj`, `up_proj`, `down_proj` for the Llama family; `c_attn`, `c_proj`, `c_fc` for
/// GPT-2). Each round's adapters are merged into the round's saved model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSection {
    pub r: usize,
    pub alpha: f64,
    /// Only 0: the adapters live on the weights (burn's LoRA), PEFT's dropout on activations.
    #[serde(default)]
    pub dropout: f64,
    pub targets: Vec<String>,
}

/// `[train] external`: a command that trains a round (TRL, torchtune, accelerate, torchrun,
/// `sbatch --wait`, a Ray job, or `didact train`). Placeholders: `{data}` (the round's rows as
/// TRL JSONL: `prompt`/`completion` for SFT, `prompt`/`chosen`/`rejected` for DPO), `{model}`
/// (the start checkpoint, an HF directory), `{out}` (where the trained HF checkpoint must be
/// written), `{round}`, `{seed}` (the round's data-order seed; `{seed32}`: its low 32 bits, for tools seeding
/// numpy such as TRL), and the round's optimizer
/// settings `{steps}`, `{lr}`, `{batch_size}`, `{grad_accum}`, `{warmup_steps}`,
/// `{min_lr_ratio}`, `{weight_decay}`, `{grad_clip}` (a DPO round's `[dpo]` optimizer), and for
/// DPO `{beta}`, `{rpo_alpha}`, `{loss}`. Run by `sh -c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalSpec {
    pub command: String,
    /// Seconds before the command is killed (0 = no limit).
    #[serde(default)]
    pub timeout_s: f64,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            base_steps: 600,
            steps: 200,
            batch_size: 32,
            grad_accum: 1,
            lr: 3e-3,
            round_lr: 0.0,
            warmup_steps: 30,
            min_lr_ratio: 0.1,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            activation_checkpointing: false,
            precision: "f32".into(),
            init: "continue".into(),
            algo: "sft".into(),
            packing: false,
            external: None,
            lora: None,
        }
    }
}

/// `[dpo]`: preference pairs and DPO, for rounds with `train.algo` = `dpo` or `sft+dpo`.
/// Pairs come from `generate.n_per_prompt` samples per prompt: chosen = best score, rejected =
/// worst, kept when the gap is at least `min_gap`. The reference model is the round's starting
/// model; its log-probs are computed once and stored in `pairs.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpoSection {
    /// `sigmoid` (standard DPO), `ipo`, `hinge`, `robust` — TRL's definitions.
    pub loss: String,
    pub beta: f64,
    /// ε of the `robust` loss (ignored by the others, as in TRL), in [0, 0.5).
    pub label_smoothing: f64,
    /// Weight of an NLL term on the chosen completions added to the DPO loss (TRL's
    /// `rpo_alpha`; iterative RPO, Pang et al. 2024). Keeps DPO from lowering the likelihood
    /// of correct answers along with the wrong ones; 0 = plain DPO.
    pub rpo_alpha: f64,
    /// What ranks a prompt's samples: `verifier` (correct beats incorrect) or `reward` (a
    /// Bradley-Terry reward model trained in round 0 on `[reward] data`, or — with the built-in
    /// world and no data — on correct answers against perturbed ones; Self-Rewarding style, the
    /// round-0 policy is its backbone), `rules` (a sample that passed every `[filter]` rule
    /// beats one that did not), or `judge` (the LLM judge's `judge/score`, `[judge] mode =
    /// "score"`: Self-Rewarding LMs' LLM-as-a-judge; samples without a parseable verdict are
    /// left out of pairs).
    pub scorer: String,
    /// Smallest chosen − rejected score gap for a pair to be kept.
    pub min_gap: f64,
    /// Optimizer steps per round.
    pub steps: usize,
    /// Pairs per micro-batch.
    pub batch_size: usize,
    /// Peak learning rate (warmup and cosine as `[train]`).
    pub lr: f64,
}

impl Default for DpoSection {
    fn default() -> Self {
        DpoSection {
            loss: "sigmoid".into(),
            beta: 0.1,
            label_smoothing: 0.0,
            rpo_alpha: 0.0,
            scorer: "verifier".into(),
            min_gap: 0.5,
            steps: 100,
            batch_size: 16,
            lr: 1e-4,
        }
    }
}

/// `[reward]`: a Bradley-Terry reward model, trained by `didact train-rm` from human (or
/// synthetic) preference pairs. The backbone has the `[model]` shape and tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardSection {
    /// Preference pairs: `.jsonl`/`.parquet` with `prompt`/`chosen`/`rejected`, or HH-RLHF's
    /// `chosen`/`rejected` dialogues (split at the last "\n\nAssistant:").
    pub data: String,
    /// A malformed pair (missing field, empty completion, chosen == rejected): `skip` or `fail`.
    pub on_error: String,
    /// Share of pairs held out for `rm/accuracy` (the end of a seeded shuffle).
    pub eval_fraction: f64,
    /// Cap on pairs used (0 = all).
    pub max_rows: usize,
    /// Language-model steps on the chosen texts before the reward head is trained (a backbone
    /// trained from scratch otherwise knows nothing of the language); 0 skips.
    pub lm_steps: usize,
    /// Reward-model optimizer steps.
    pub steps: usize,
    /// Pairs per step.
    pub batch_size: usize,
    pub lr: f64,
    /// TRL's `center_rewards_coefficient` (0 = off).
    pub center: f64,
}

impl Default for RewardSection {
    fn default() -> Self {
        RewardSection {
            data: String::new(),
            on_error: "skip".into(),
            eval_fraction: 0.1,
            max_rows: 0,
            lm_steps: 0,
            steps: 300,
            batch_size: 16,
            lr: 1e-3,
            center: 0.0,
        }
    }
}

/// `[generate]`: how the current model produces synthetic data each round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerateSection {
    /// Prompts per round (fresh world problems, or prefixes of real rows).
    pub n_prompts: usize,
    /// Samples per prompt.
    pub n_per_prompt: usize,
    /// 0 = greedy.
    pub temperature: f64,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 = off.
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub batch_size: usize,
    /// Text data without prompts: the prompt is the first this-many characters of a real row.
    pub prompt_chars: usize,
    /// Arithmetic world, self-improvement on harder problems (Lee et al. 2025): round r's
    /// prompts have operands of exactly `world.digits[1] + digits_step × r` digits — one step
    /// longer than anything before each round. 0 = prompts like the training problems.
    pub digits_step: u32,
    /// Arithmetic world, self-improvement with a schedule: entry r − 1 is the number of digits
    /// of round r's operands (e.g. `[4, 5, 6, 6, 7, 7]` holds each length from 6 on for two
    /// rounds, so a length can become reliable before the next starts). At least `run.rounds`
    /// entries; instead of `digits_step`. Empty = off, and then left out of a resolved recipe
    /// so runs from before it existed resume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digits_schedule: Vec<u32>,
    /// An OpenAI-compatible server to generate with instead of the current model (base URL up
    /// to `/v1`, e.g. `http://127.0.0.1:8000/v1`: vLLM, SGLang, TGI, llama.cpp, Ollama,
    /// `didact serve`). Empty = the in-process model. `top_k` is not sent.
    pub endpoint: String,
    /// The `model` field sent to the endpoint.
    pub endpoint_model: String,
    /// Name of the environment variable holding the endpoint's API key (empty = none). The
    /// key itself is never printed or written.
    pub api_key_env: String,
    /// `/chat/completions` (the prompt as one user message) instead of `/completions`.
    pub chat: bool,
    /// Endpoint requests in flight at most.
    pub concurrency: usize,
    /// Per-request timeout, seconds.
    pub timeout_s: f64,
    /// Retries after a 429, a 5xx, a timeout or a dropped connection.
    pub max_retries: u32,
    /// Base backoff before the first retry, milliseconds (doubling, with jitter).
    pub backoff_ms: u64,
    /// Cache endpoint responses in `<run>/cache/endpoint/` (a resumed run re-reads them).
    pub cache: bool,
}

impl Default for GenerateSection {
    fn default() -> Self {
        GenerateSection {
            n_prompts: 1000,
            n_per_prompt: 1,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: 8,
            batch_size: 128,
            prompt_chars: 16,
            digits_step: 0,
            digits_schedule: Vec::new(),
            endpoint: String::new(),
            endpoint_model: "default".into(),
            api_key_env: String::new(),
            chat: false,
            concurrency: 4,
            timeout_s: 60.0,
            max_retries: 5,
            backoff_ms: 500,
            cache: true,
        }
    }
}

/// `[filter]`: which generated samples are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterSection {
    /// Drop samples the world's verifier marks incorrect (ignored for datasets: no verifier).
    pub verifier: bool,
    /// Completion length bounds in characters (inclusive).
    pub min_chars: usize,
    pub max_chars: usize,
    /// Drop exact duplicates (same prompt and completion) within the round.
    pub dedup: bool,
    /// Drop samples that hit `max_new_tokens` without producing the stop token.
    pub require_stop: bool,
    /// Majority vote (self-consistency pseudo-labels, with `generate.n_per_prompt` ≥ 2):
    /// keep a sample only if its final answer (after the last `####`, else the whole
    /// completion) was given by more than this share of its prompt's samples — 0.5 = a strict
    /// majority; 0 = no vote. Usually with `verifier = false`.
    pub majority: f64,
    /// Arithmetic world with `ops = ["+"]`: drop an answer whose digit count no sum of the
    /// prompt's operands can have (the longer operand's, or one more) before it votes — Lee et
    /// al. 2025's length filter.
    pub answer_length: bool,
    /// With `answer_length`: also drop a sum one digit longer than the longer operand whose
    /// extra (most significant) digit is not 1 — two numbers below 10ⁿ add to below 2·10ⁿ, so
    /// the carry digit can only be 1 (a shape rule, like the length; dropped as
    /// `answer_length`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub carry_digit: bool,
    /// Arithmetic world, reversed sums: a self-check before the vote. The round's policies
    /// answer (greedy) every prompt cut to its operands' low n − 1 digits, and a sample whose
    /// first n − 1 answer digits differ from the policies' answer there is dropped (`prefix`):
    /// the low digits of a sum depend only on the operands' low digits, and the model is
    /// reliable one digit shorter. Each sample gets `prefix/consistent` (1 or 0).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prefix_check: bool,
    /// Arithmetic world, reversed sums: the same for the high digits. The policies answer every
    /// prompt without its operands' units digits, and a sample whose digits after the units
    /// digit are neither that answer nor that answer plus one (the units' carry) is dropped
    /// (`top`): this catches a wrong top digit or final carry, which `prefix_check` cannot
    /// see. Each sample gets `top/consistent` (1 or 0).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub top_check: bool,
}

impl Default for FilterSection {
    fn default() -> Self {
        FilterSection {
            verifier: true,
            min_chars: 1,
            max_chars: 100_000,
            dedup: true,
            require_stop: true,
            majority: 0.0,
            answer_length: false,
            carry_digit: false,
            prefix_check: false,
            top_check: false,
        }
    }
}

/// `[mix]`: the next training set from real data and the synthetic pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixSection {
    /// `replace` (newest synthetic only), `accumulate` (real + all synthetic so far) or
    /// `ratio` (`synthetic_ratio` of a fixed `size`).
    pub mode: String,
    pub synthetic_ratio: f64,
    /// Training-set size; 0 = natural size for replace/accumulate, real size for ratio.
    pub size: usize,
}

impl Default for MixSection {
    fn default() -> Self {
        MixSection {
            mode: "accumulate".into(),
            synthetic_ratio: 0.5,
            size: 0,
        }
    }
}

/// `[detector]`: collapse rules evaluated after every round (`didact_metrics::detector`).
/// Example: `rules = [{ metric = "eval/ppl_real", kind = "rise_over_best", pct = 10, action = "stop" }]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSection {
    pub rules: Vec<RuleSpec>,
}

/// One detector rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A metric column name, e.g. `eval/ppl_real`, `diversity/distinct_2`.
    pub metric: String,
    /// `rise_over_best`, `drop_from_first` or `drop_from_best`.
    pub kind: String,
    /// Threshold in percent.
    pub pct: f64,
    /// `warn` (report), `rollback` (the next round starts from the rule's best round) or `stop`.
    #[serde(default = "default_action")]
    pub action: String,
    /// The metric's seed-to-seed standard deviation (absolute units, as `didact calibrate`
    /// measures it): the change must also exceed 3·√2·noise_sd. 0 = no noise guard.
    #[serde(default)]
    pub noise_sd: f64,
    /// Consecutive rounds the condition must hold before the rule fires.
    #[serde(default = "default_rule_rounds")]
    pub rounds: u32,
}

fn default_rule_rounds() -> u32 {
    1
}

fn default_action() -> String {
    "warn".into()
}

/// `[eval]`: what is measured after every round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Held-out real rows (world: fixed problems; dataset: capped held-out split).
    pub eval_size: usize,
    /// Out-of-distribution problems (world only).
    pub ood_size: usize,
    /// Samples drawn (at the generation temperature) for the diversity metrics.
    pub n_samples: usize,
    pub batch_size: usize,
    /// Arithmetic world: greedy accuracy on `ood_size` fixed problems of each operand length
    /// from the training digits' low end to the OOD digits' high end (`eval/accuracy_len_<n>`).
    pub by_length: bool,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            eval_size: 200,
            ood_size: 200,
            n_samples: 200,
            batch_size: 128,
            by_length: false,
        }
    }
}
