//! The generate stage: the round's samples from its writer — the policy, the teacher (both
//! in-process, KV-cached; a peer policy's samples are ids `p<peer>-…`, drawn from the peer's
//! own seed), the Markov world's true source (an oracle teacher: continuations
//! drawn from the source itself, whatever the sampling settings) or an OpenAI-compatible
//! endpoint, with the same per-row seeds — as
//! responses to the task's prompts, or by Self-Instruct bootstrapping (new instructions from
//! in-context seed and machine tasks, the paper's filters into a growing pool, then one
//! instance per accepted instruction). Stats: `endpoint/*`, `self_instruct/*`.

use crate::env::Env;
use crate::error::{LoopError, Result, io};
use crate::lineage::ModelRef;
use crate::progress::bar;
use crate::seeds::Stream;
use crate::stages::{endpoint_config, sampling};
use crate::task::Task;
use didact_core::{Metrics, Sample, write_atomic};
use didact_data::markov::MarkovWorld;
use didact_model::Lm;
use didact_recipe::{GeneratePlan, Generator, SelfInstructPlan, TeacherPlan};
use didact_synth::{ResponseJob, generate_endpoint_logprobs, generate_responses};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Who writes: a loaded model, the true source, or an endpoint client (asking for
/// `top_logprobs` alternatives per token when it is a distillation teacher).
pub enum Writer {
    Model(Box<Lm>),
    Source(MarkovWorld),
    Endpoint {
        cfg: didact_endpoint::EndpointConfig,
        top_logprobs: usize,
    },
}

/// The file of a round's endpoint-teacher log-probs (one JSON line per sample).
pub const TEACHER_LOGPROBS: &str = "teacher_logprobs.jsonl";

/// One line of [`TEACHER_LOGPROBS`]: a sample and its tokens' top-k log-probs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SampleLogprobs {
    pub id: String,
    pub prompt: String,
    pub completion: String,
    pub tokens: Vec<didact_endpoint::TokenLogprobs>,
}

impl Writer {
    /// Open the writer `source` names (`lineage::model_for(Role::Generator, r)`).
    pub fn open(
        env: &Env<'_>,
        plan: &GeneratePlan,
        source: &ModelRef,
        task: &Task,
    ) -> Result<Writer> {
        match (&plan.generator, source) {
            (Generator::Endpoint(e), ModelRef::Endpoint) => Ok(Writer::Endpoint {
                cfg: endpoint_config(e, env.dir.cache("endpoint")),
                top_logprobs: 0,
            }),
            (
                Generator::Teacher(TeacherPlan::Endpoint {
                    endpoint,
                    top_logprobs,
                }),
                ModelRef::Endpoint,
            ) => Ok(Writer::Endpoint {
                cfg: endpoint_config(endpoint, env.dir.cache("endpoint")),
                top_logprobs: *top_logprobs,
            }),
            (_, ModelRef::Oracle) => match &task.markov {
                Some(w) => Ok(Writer::Source(w.clone())),
                None => Err(LoopError::RunDir {
                    path: env.dir.root().to_path_buf(),
                    msg: "the oracle writer needs the Markov world".into(),
                }),
            },
            (_, m) => Ok(Writer::Model(Box::new(env.load(m)?))),
        }
    }

    /// Run one job; an endpoint's costs are added to `stats` as `endpoint/*`.
    pub fn respond(
        &self,
        env: &Env<'_>,
        job: &ResponseJob<'_>,
        stats: &mut Metrics,
        on_done: impl Fn(usize) + Sync,
    ) -> Result<Vec<Sample>> {
        Ok(self.respond_with_logprobs(env, job, stats, on_done)?.0)
    }

    /// [`Writer::respond`], with an endpoint teacher's per-token log-probs (empty otherwise).
    pub fn respond_with_logprobs(
        &self,
        env: &Env<'_>,
        job: &ResponseJob<'_>,
        stats: &mut Metrics,
        on_done: impl Fn(usize) + Sync,
    ) -> Result<(Vec<Sample>, Vec<SampleLogprobs>)> {
        let samples = match self {
            Writer::Model(m) => {
                generate_responses(m.as_ref(), env.max_len(), env.tok, job, env.device, on_done)?
            }
            Writer::Source(w) => from_source(w, job, on_done),
            Writer::Endpoint { cfg, top_logprobs } => {
                let (samples, lps, s) =
                    generate_endpoint_logprobs(cfg, job, *top_logprobs, on_done)?;
                for (k, v) in s.metrics("endpoint") {
                    *stats.entry(k).or_insert(0.0) += v;
                }
                let lps = match top_logprobs {
                    0 => vec![],
                    _ => samples
                        .iter()
                        .zip(lps)
                        .map(|(s, tokens)| SampleLogprobs {
                            id: s.id.clone(),
                            prompt: s.prompt.clone(),
                            completion: s.completion.clone(),
                            tokens,
                        })
                        .collect(),
                };
                return Ok((samples, lps));
            }
        };
        Ok((samples, vec![]))
    }
}

/// Continuations of the job's prompts drawn from the Markov source (one seeded draw per row,
/// as the model writers seed theirs). A prompt with a character outside the alphabet gets an
/// empty, unstopped completion.
fn from_source(w: &MarkovWorld, job: &ResponseJob<'_>, on_done: impl Fn(usize)) -> Vec<Sample> {
    let mut out = Vec::with_capacity(job.prompts.len() * job.n_per_prompt);
    for p in job.prompts {
        for _ in 0..job.n_per_prompt {
            let i = out.len();
            let seed = didact_model::row_seed(job.seed, job.stream, i as u64);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (completion, stopped) = w.continuation(p, &mut rng).unwrap_or_default();
            let mut scores = std::collections::BTreeMap::new();
            scores.insert("gen/stopped".to_string(), if stopped { 1.0 } else { 0.0 });
            out.push(Sample {
                id: format!("r{}-{i}", job.round),
                round: job.round,
                prompt: p.clone(),
                n_tokens: completion.chars().count(),
                completion,
                scores,
                dropped: None,
            });
        }
        on_done(job.n_per_prompt);
    }
    out
}

/// Round `r`'s samples and the stage's stats.
pub fn run(
    env: &Env<'_>,
    plan: &GeneratePlan,
    task: &Task,
    writer: &Writer,
    r: u32,
) -> Result<(Vec<Sample>, Metrics)> {
    let prompts = task.round_prompts(
        plan.n_prompts,
        env.seed(Stream::Prompts, r as u64),
        plan.digits_of_round(r),
    );
    let job = ResponseJob {
        prompts: &prompts,
        n_per_prompt: plan.n_per_prompt,
        params: sampling(&plan.sampling),
        batch_size: plan.batch_size,
        round: r,
        seed: env.model_seed(),
        stream: Stream::Generate.family(r),
    };
    let mut stats = Metrics::new();
    let mut samples = match &plan.self_instruct {
        None => {
            let pb = bar(
                (prompts.len() * job.n_per_prompt) as u64,
                &format!("r{r} generate"),
                env.quiet,
            );
            let (s, lps) =
                writer.respond_with_logprobs(env, &job, &mut stats, |n| pb.inc(n as u64))?;
            pb.finish_and_clear();
            if !lps.is_empty() {
                let path = env.dir.file(r, TEACHER_LOGPROBS);
                let mut text = String::new();
                for l in &lps {
                    text.push_str(&serde_json::to_string(l).expect("json"));
                    text.push('\n');
                }
                write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
            }
            s
        }
        Some(si) => self_instruct(env, si, &job, writer, &mut stats)?,
    };
    if env.peer > 0 {
        for s in &mut samples {
            s.id = format!("p{}-{}", env.peer, s.id);
        }
    }
    Ok((samples, stats))
}

/// Accepted instructions of earlier rounds (`instructions.jsonl`, not dropped).
fn machine_instructions(env: &Env<'_>, r: u32) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for q in 1..r {
        let p = env.dir.file(q, "instructions.jsonl");
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| LoopError::RunDir {
                    path: p.clone(),
                    msg: e.to_string(),
                })?;
            if v["dropped"].is_null() {
                out.push(v["instruction"].as_str().unwrap_or("").to_string());
            }
        }
    }
    Ok(out)
}

/// A Self-Instruct round: `job.prompts.len()` instruction lists, each prompted with
/// `k_human` seed and `k_machine` machine instructions (seeded per prompt), parsed and
/// filtered into the pool (`instructions.jsonl`: every candidate and why it was dropped), then
/// one instance per accepted instruction, input first. Empty outputs are counted and dropped.
fn self_instruct(
    env: &Env<'_>,
    cfg: &SelfInstructPlan,
    job: &ResponseJob<'_>,
    writer: &Writer,
    stats: &mut Metrics,
) -> Result<Vec<Sample>> {
    use didact_synth::self_instruct as si;
    use rand::SeedableRng;
    use rand::seq::IndexedRandom;
    let r = job.round;
    let seeds = si::load_seed_tasks(&cfg.seed_tasks).map_err(|msg| LoopError::RunDir {
        path: cfg.seed_tasks.clone(),
        msg,
    })?;
    let human: Vec<String> = seeds.iter().map(|t| t.instruction.clone()).collect();
    let machine = machine_instructions(env, r)?;
    let mut pool = si::Pool::new(&human);
    for m in &machine {
        pool.add(m);
    }
    let prompts: Vec<String> = (0..job.prompts.len())
        .map(|i| {
            let stream = Stream::SelfInstructPrompts.family(r);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(didact_model::row_seed(
                env.seed, stream, i as u64,
            ));
            let mut ctx_tasks: Vec<&str> = human
                .choose_multiple(&mut rng, cfg.k_human)
                .map(|s| s.as_str())
                .collect();
            ctx_tasks.extend(
                machine
                    .choose_multiple(&mut rng, cfg.k_machine)
                    .map(|s| s.as_str()),
            );
            si::encode_prompt(&ctx_tasks)
        })
        .collect();
    let n_given: Vec<usize> = prompts.iter().map(|p| p.lines().count() - 2).collect();
    let mut params = job.params.clone();
    params.max_new_tokens = cfg.max_new_tokens;
    let list_job = ResponseJob {
        prompts: &prompts,
        n_per_prompt: 1,
        params,
        ..*job
    };
    let lists = writer.respond(env, &list_job, stats, |_| {})?;
    let candidates: Vec<String> = lists
        .iter()
        .zip(&n_given)
        .flat_map(|(s, &n)| si::parse_instructions(&s.completion, n))
        .collect();
    let filter = si::FilterConfig {
        min_words: cfg.min_words,
        max_words: cfg.max_words,
        rouge_threshold: cfg.rouge_threshold,
    };
    let (reasons, counts) = si::filter_into(&candidates, &mut pool, &filter);
    let mut text = String::new();
    for (c, why) in candidates.iter().zip(&reasons) {
        text.push_str(&serde_json::json!({"instruction": c, "dropped": why}).to_string());
        text.push('\n');
    }
    let p = env.dir.file(r, "instructions.jsonl");
    write_atomic(&p, text.as_bytes()).map_err(io(&p))?;
    let accepted: Vec<String> = candidates
        .iter()
        .zip(&reasons)
        .filter(|(_, why)| why.is_none())
        .map(|(c, _)| c.clone())
        .collect();
    stats.insert("self_instruct/candidates".into(), candidates.len() as f64);
    stats.insert("self_instruct/accepted".into(), accepted.len() as f64);
    stats.insert("self_instruct/pool_size".into(), pool.len() as f64);
    for (why, n) in counts {
        stats.insert(format!("self_instruct/dropped_{why}"), n as f64);
    }
    // Instances, input first: the reply is split at `Output:` into input and output; the
    // sample is the instance prompt (instruction + input) and its output.
    let requests: Vec<String> = accepted.iter().map(|c| si::instance_request(c)).collect();
    let instance_job = ResponseJob {
        prompts: &requests,
        n_per_prompt: 1,
        params: job.params.clone(),
        stream: Stream::SelfInstructInstances.family(r),
        ..*job
    };
    let replies = writer.respond(env, &instance_job, stats, |_| {})?;
    let mut samples = Vec::with_capacity(replies.len());
    let mut unparsed = 0usize;
    for (inst, mut s) in accepted.iter().zip(replies) {
        match si::parse_instance(&s.completion) {
            Some((input, output)) => {
                s.prompt = si::instance_prompt(inst, &input);
                s.completion = output;
                samples.push(s);
            }
            None => unparsed += 1,
        }
    }
    stats.insert("self_instruct/instances".into(), samples.len() as f64);
    stats.insert("self_instruct/instances_empty".into(), unparsed as f64);
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::Kit;

    #[test]
    fn the_policy_writes_seeded_samples_for_every_prompt() {
        let kit = Kit::new("generate", &["generate.n_per_prompt=2"]);
        let env = kit.env();
        let writer = Writer::Model(Box::new(kit.model()));
        let (a, stats) = run(&env, &kit.plan.generate, &kit.task, &writer, 1).unwrap();
        assert_eq!(a.len(), 12);
        assert!(a.iter().all(|s| s.round == 1 && s.prompt.ends_with('=')));
        assert_eq!(
            a[0].prompt, a[1].prompt,
            "n_per_prompt samples of a prompt are adjacent"
        );
        assert!(
            stats.is_empty(),
            "an in-process writer has no endpoint costs"
        );
        let (b, _) = run(&env, &kit.plan.generate, &kit.task, &writer, 1).unwrap();
        assert_eq!(a, b, "same run seed and round: same samples");
        let (c, _) = run(&env, &kit.plan.generate, &kit.task, &writer, 2).unwrap();
        assert_ne!(a, c, "another round draws other prompts and seeds");
    }
}
