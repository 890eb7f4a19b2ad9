//! The task a run works on: real training rows, held-out rows, OOD rows and (for a world) a
//! verifier and a prompt source. Built from the plan's `Source`; the same seed always gives
//! the same split.

use crate::error::Result;
use crate::seeds::Stream;
use didact_core::Example;
use didact_data::arithmetic::{self, ArithmeticWorld, Op};
use didact_data::ingest;
use didact_data::markov::MarkovWorld;
use didact_model::Tok;
use didact_recipe::{ModelPlan, RunPlan, Source, TokenizerKind};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub struct Task {
    pub real_train: Vec<Example>,
    pub eval: Vec<Example>,
    pub ood: Vec<Example>,
    /// Arithmetic world with `eval.by_length`: fixed problems per operand length.
    pub by_length: Vec<(u32, Vec<Example>)>,
    pub world: Option<ArithmeticWorld>,
    /// The Markov-source world: real text whose true probabilities are known (`truth/*`).
    pub markov: Option<MarkovWorld>,
    /// Malformed dataset rows skipped at load.
    pub skipped_rows: usize,
    prompt_chars: usize,
}

/// First `n` characters of `s`.
fn prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Task {
    pub fn build(plan: &RunPlan) -> Result<Task> {
        let prompt_chars = plan.generate.prompt_chars;
        match &plan.source {
            Source::Arithmetic {
                ops,
                digits,
                ood_digits,
                train_size,
                rationales,
                reversed,
            } => {
                let world = ArithmeticWorld {
                    ops: ops
                        .iter()
                        .map(|c| Op::parse(&c.to_string()).expect("validated"))
                        .collect(),
                    digits: *digits,
                    ood_digits: *ood_digits,
                    rationales: *rationales,
                    reversed: *reversed,
                };
                let eval = world.eval_set(plan.eval.eval_size);
                let ood = world.ood_set(plan.eval.ood_size);
                let real_train =
                    world.train_set(*train_size, Stream::WorldTrainSet.seed(plan.seed, 0), &eval);
                let by_length = match plan.eval.by_length {
                    true => (digits.0.max(1)..=digits.1.max(ood_digits.1))
                        .map(|n| (n, world.length_set(n, plan.eval.ood_size, &eval)))
                        .collect(),
                    false => vec![],
                };
                Ok(Task {
                    real_train,
                    eval,
                    ood,
                    by_length,
                    world: Some(world),
                    markov: None,
                    skipped_rows: 0,
                    prompt_chars,
                })
            }
            Source::Markov {
                zipf,
                end_prob,
                max_chars,
                train_size,
                source_seed,
            } => {
                let w = MarkovWorld::new(*source_seed, *zipf, *end_prob, *max_chars, *train_size);
                Ok(Task {
                    real_train: w.train_set(Stream::MarkovTrainSet.seed(plan.seed, 0)),
                    eval: w.eval_set(plan.eval.eval_size),
                    ood: vec![],
                    by_length: vec![],
                    world: None,
                    markov: Some(w),
                    skipped_rows: 0,
                    prompt_chars,
                })
            }
            Source::Dataset {
                path,
                on_error,
                chunk_chars,
                eval_fraction,
                max_rows,
            } => {
                // A pretrained checkpoint's chat template renders `messages` rows.
                let chat = match &plan.model {
                    ModelPlan::Fresh { .. } => None,
                    ModelPlan::Pretrained { dir } => didact_data::chat::ChatTemplate::from_dir(dir)
                        .map_err(|msg| didact_data::DataError::File {
                            path: dir.clone(),
                            msg,
                        })?,
                };
                let loaded = ingest::load_with_chat(path, *on_error, *chunk_chars, chat.as_ref())?;
                let mut rows = loaded.rows;
                if rows.len() < 2 {
                    let why = match loaded.skipped_examples.first() {
                        Some(first) => format!(
                            " ({} rows skipped as malformed with on_error = \"skip\"; the first: {first})",
                            loaded.skipped
                        ),
                        None => String::new(),
                    };
                    return Err(didact_data::DataError::File {
                        path: path.clone(),
                        msg: format!("needs at least 2 usable rows, found {}{why}", rows.len()),
                    }
                    .into());
                }
                rows.shuffle(&mut ChaCha8Rng::seed_from_u64(
                    Stream::DataShuffle.seed(plan.seed, 0),
                ));
                let n_eval = ((rows.len() as f64 * eval_fraction).round() as usize)
                    .clamp(1, plan.eval.eval_size.max(1));
                let eval: Vec<Example> = rows.drain(..n_eval).collect();
                if let Some(max) = max_rows {
                    rows.truncate(*max);
                }
                Ok(Task {
                    real_train: rows,
                    eval,
                    ood: vec![],
                    by_length: vec![],
                    world: None,
                    markov: None,
                    skipped_rows: loaded.skipped,
                    prompt_chars,
                })
            }
        }
    }

    /// `n` fresh real rows from the built-in world (a trained teacher's own data), drawn with
    /// `seed`; held-out problems are excluded as in the training set.
    pub fn fresh_rows(&self, n: usize, seed: u64) -> Result<Vec<Example>> {
        match (&self.world, &self.markov) {
            (Some(w), _) => Ok(w.train_set(n, seed, &self.eval)),
            (None, Some(m)) => Ok(m.sample_set(n, seed)),
            (None, None) => Err(crate::error::LoopError::RunDir {
                path: "[teacher] train_size".into(),
                msg: "fresh rows need a built-in world".into(),
            }),
        }
    }

    /// The world's verifier, if the task has one.
    pub fn verifier(&self) -> Option<fn(&str, &str) -> Option<bool>> {
        self.world.as_ref().map(|w| match w.reversed {
            true => arithmetic::verify_reversed as fn(&str, &str) -> Option<bool>,
            false => arithmetic::verify as fn(&str, &str) -> Option<bool>,
        })
    }

    /// The prompt a real row contributes for generation: its own prompt, or a prefix of a
    /// prompt-less text.
    fn prompt_of(&self, e: &Example) -> String {
        if e.prompt.is_empty() {
            prefix(&e.completion, self.prompt_chars)
        } else {
            e.prompt.clone()
        }
    }

    /// A round's prompts: with `digits` (`[generate] digits_step` / `digits_schedule`), world
    /// problems whose operands have exactly that many digits; else plain `prompts`.
    pub fn round_prompts(&self, n: usize, seed: u64, digits: Option<u32>) -> Vec<String> {
        match (&self.world, digits) {
            (Some(w), Some(d)) => w.prompts_with_digits(n, seed, d, &self.eval),
            _ => self.prompts(n, seed),
        }
    }

    /// `n` generation prompts for a round (fresh world problems, or prompts/prefixes of
    /// randomly chosen real training rows).
    pub fn prompts(&self, n: usize, seed: u64) -> Vec<String> {
        match &self.world {
            Some(w) => w.prompts(n, seed, &self.eval),
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let rows = didact_data::mix::take_cycled(&self.real_train, n, &mut rng);
                rows.iter().map(|e| self.prompt_of(e)).collect()
            }
        }
    }

    /// `n` prompts from the held-out rows (cycled) for the diversity samples.
    pub fn eval_prompts(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| self.prompt_of(&self.eval[i % self.eval.len()]))
            .collect()
    }

    /// Longest answer the accuracy evals need, in characters (+1 for the stop token).
    pub fn answer_budget(&self) -> usize {
        match &self.world {
            // Worked steps: ≤ 10 characters per column, plus ` #### ` and the answer.
            Some(w) if w.rationales => 13 * (w.digits.1.max(w.ood_digits.1) as usize + 1) + 8,
            Some(w) => 2 * w.digits.1.max(w.ood_digits.1) as usize + 3,
            None => 0,
        }
    }

    /// The run's tokenizer: characters of the world / data, or a BPE trained on the real
    /// training rows.
    pub fn tokenizer(&self, kind: TokenizerKind) -> Result<Tok> {
        let texts = || {
            self.real_train
                .iter()
                .chain(&self.eval)
                .map(|e| format!("{}{}", e.prompt, e.completion))
        };
        Ok(match (kind, &self.world, &self.markov) {
            (TokenizerKind::Char, Some(w), _) => Tok::char_level(w.alphabet())?,
            (TokenizerKind::Char, None, Some(m)) => Tok::char_level(&m.alphabet())?,
            (TokenizerKind::Char, None, None) => Tok::char_level(&texts().collect::<String>())?,
            (TokenizerKind::Bpe { vocab }, _, _) => Tok::train_bpe(texts(), vocab)?,
        })
    }
}
