//! The distillation teacher at work in rounds: opening it (round 0's trained checkpoint, a
//! Hugging Face directory whose tokenizer must be the student's, the Markov world's true
//! source, or the top-k log-probs an endpoint teacher sent with its samples), the oracle's
//! exact next-token distributions, a round's token-level training (`[distill]`) and
//! `distill/kl_to_teacher` on the held-out rows (not for an endpoint: it scores only its own
//! samples).

use crate::env::Env;
use crate::error::{LoopError, Result};
use crate::lineage::ModelRef;
use crate::progress::{bar, on_loss};
use crate::task::Task;
use didact_data::markov::MarkovWorld;
use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_model::{Lm, Tok};
use didact_recipe::DistillPlan;
use didact_train::kd_loss::MIN_PROB;
use didact_train::{
    KdConfig, KdObjective, KdReport, ModelTeacher, Teacher, TeacherView, TokenRow, kl_to_teacher,
    positions, train_kd,
};
use std::collections::HashMap;
use std::path::Path;

/// A teacher ready to answer: a model, the true source, or an endpoint's recorded top-k.
pub enum LiveTeacher<'a> {
    Model(Box<Lm>),
    Oracle(Oracle<'a>),
    Table(TopKTable),
}

impl<'a> LiveTeacher<'a> {
    /// Open the run's teacher (`lineage.teacher()`) for round `r`.
    pub fn open(env: &Env<'_>, source: &ModelRef, task: &'a Task, r: u32) -> Result<Self> {
        match source {
            ModelRef::Oracle => Ok(LiveTeacher::Oracle(Oracle::new(task, env.tok)?)),
            ModelRef::Endpoint => Ok(LiveTeacher::Table(TopKTable::read(
                env,
                &env.dir.file(r, crate::stages::generate::TEACHER_LOGPROBS),
            )?)),
            ModelRef::Pretrained(dir) => {
                check_hf_teacher(dir, env.tok, env.max_len())?;
                Ok(LiveTeacher::Model(Box::new(env.load(source)?)))
            }
            m => Ok(LiveTeacher::Model(Box::new(env.load(m)?))),
        }
    }

    /// The teacher as the trainer sees it.
    pub fn as_teacher<'s>(&'s self, env: &'s Env<'_>) -> Box<dyn Teacher + 's> {
        match self {
            LiveTeacher::Model(m) => Box::new(ModelTeacher {
                model: m.as_ref(),
                pad_id: env.tok.pad_id,
                device: env.device,
            }),
            LiveTeacher::Oracle(o) => Box::new(o),
            LiveTeacher::Table(t) => Box::new(t),
        }
    }
}

/// A top-k view from host candidate ids and log-probs laid out `[B, T, K]`.
fn top_k_view(ids: Vec<i64>, logp: Vec<f32>, shape: [usize; 3], device: &Device) -> TeacherView {
    TeacherView::TopK {
        ids: Tensor::<3, Int>::from_data(TensorData::new(ids, shape), device),
        logp: Tensor::from_data(TensorData::new(logp, shape), device),
    }
}

/// An endpoint teacher's top-k log-probs of its own samples, keyed by the row's token ids as
/// `Env::tokenize` lays them out. At a position it gave no distribution for (the stop token,
/// which the API does not report, or a row it did not write) the teacher is the row's own
/// next token with probability 1 — the hard label, so the divergence there is the NLL.
pub struct TopKTable {
    rows: HashMap<Vec<u32>, Vec<Vec<(u32, f32)>>>,
    /// Candidates per position (the most any position has).
    k: usize,
    vocab: usize,
    /// Samples whose tokens, re-tokenized, were not the teacher's (trained on hard labels).
    pub misaligned: usize,
    pub samples: usize,
}

impl TopKTable {
    /// Read a round's `teacher_logprobs.jsonl`.
    pub fn read(env: &Env<'_>, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
        let vocab = env.tok.vocab_size();
        let id_of = |t: &str| -> Option<u32> {
            match t.strip_prefix("token_id:") {
                Some(n) => n.parse().ok(),
                None => env.tok.inner().token_to_id(t),
            }
            .filter(|&id| (id as usize) < vocab)
        };
        let mut rows = HashMap::new();
        let (mut k, mut misaligned, mut samples) = (1, 0, 0);
        for (i, line) in text.lines().enumerate() {
            let s: crate::stages::generate::SampleLogprobs =
                serde_json::from_str(line).map_err(|e| LoopError::RunDir {
                    path: path.to_path_buf(),
                    msg: format!("line {}: {e}", i + 1),
                })?;
            samples += 1;
            let mut ids = env.tok.encode(&s.prompt)?;
            let completion = env.tok.encode(&s.completion)?;
            let theirs: Vec<Option<u32>> = s.tokens.iter().map(|t| id_of(&t.token)).collect();
            if theirs.iter().copied().collect::<Option<Vec<u32>>>() != Some(completion.clone()) {
                misaligned += 1;
                continue;
            }
            let tops: Vec<Vec<(u32, f32)>> = s
                .tokens
                .iter()
                .map(|t| {
                    let mut c: Vec<(u32, f32)> = Vec::new();
                    for (tok, lp) in &t.top {
                        if let Some(id) = id_of(tok)
                            && !c.iter().any(|x| x.0 == id)
                        {
                            c.push((id, *lp as f32));
                        }
                    }
                    c
                })
                .collect();
            k = tops.iter().map(Vec::len).max().unwrap_or(1).max(k);
            ids.extend(completion);
            ids.push(env.tok.eos_id);
            rows.insert(ids, tops);
        }
        Ok(TopKTable {
            rows,
            k: k.min(vocab),
            vocab,
            misaligned,
            samples,
        })
    }
}

impl Teacher for &TopKTable {
    fn view(
        &self,
        rows: &[&TokenRow],
        max_len: usize,
        device: &Device,
    ) -> didact_train::Result<TeacherView> {
        let t = positions(rows, max_len);
        let k = self.k;
        let mut ids = Vec::with_capacity(rows.len() * t * k);
        let mut logp = Vec::with_capacity(rows.len() * t * k);
        let floor = MIN_PROB.ln() as f32;
        for row in rows {
            let tops = self.rows.get(&row.ids);
            for j in 0..t {
                let next = row.ids.get(j + 1).copied().unwrap_or(0);
                let told = (j + 1)
                    .checked_sub(row.n_prompt)
                    .and_then(|c| tops.and_then(|t| t.get(c)))
                    .filter(|c| !c.is_empty());
                let mut cands: Vec<(u32, f32)> = match told {
                    Some(c) => c.iter().take(k).copied().collect(),
                    None => vec![(next, 0.0)],
                };
                // Distinct fillers with no teacher mass, so every position has k buckets.
                let mut filler = 0u32;
                while cands.len() < k && (filler as usize) < self.vocab {
                    if !cands.iter().any(|c| c.0 == filler) {
                        cands.push((filler, floor));
                    }
                    filler += 1;
                }
                ids.extend(cands.iter().map(|c| c.0 as i64));
                logp.extend(cands.iter().map(|c| c.1));
            }
        }
        Ok(top_k_view(ids, logp, [rows.len(), t, k], device))
    }

    fn is_top_k(&self) -> bool {
        true
    }
}

/// A Hugging Face teacher must speak the student's tokens: the same vocabulary (token → id)
/// and stop token, and a context at least the student's. Checked before round 0.
pub fn check_hf_teacher(dir: &Path, student: &Tok, max_len: usize) -> Result<()> {
    let cfg = didact_model::any::config_from_dir(dir)?;
    let tok = Tok::load(&dir.join("tokenizer.json"))?;
    let bad = |msg: String| {
        Err(LoopError::RunDir {
            path: dir.to_path_buf(),
            msg,
        })
    };
    let (theirs, ours) = (tok.inner().get_vocab(true), student.inner().get_vocab(true));
    if theirs != ours || tok.eos_id != student.eos_id {
        let differ = ours
            .iter()
            .filter(|&(t, id)| theirs.get(t) != Some(id))
            .map(|(t, _)| format!("{t:?}"))
            .take(3)
            .collect::<Vec<_>>();
        return bad(format!(
            "[teacher] hf: the teacher's tokenizer is not the student's ({} vs {} tokens; differing: {}); token-level distillation compares distributions over one vocabulary — use a teacher and student that share a tokenizer.json",
            theirs.len(),
            ours.len(),
            if differ.is_empty() {
                "the stop token".to_string()
            } else {
                differ.join(", ")
            }
        ));
    }
    if cfg.max_seq_len() < max_len {
        return bad(format!(
            "[teacher] hf: the teacher's context ({} tokens) is shorter than the student's model.max_seq_len ({max_len})",
            cfg.max_seq_len()
        ));
    }
    Ok(())
}

/// The Markov world's source as a teacher: at every position, the true probability of each
/// symbol and of the end (the stop token) given the row so far; every other token has none.
pub struct Oracle<'a> {
    world: &'a MarkovWorld,
    /// Token id of each symbol, in the world's order, then the stop token.
    ids: Vec<i64>,
    /// Symbol index of a token id.
    symbol: HashMap<u32, usize>,
}

impl<'a> Oracle<'a> {
    pub fn new(task: &'a Task, tok: &Tok) -> Result<Self> {
        let world = task.markov.as_ref().ok_or_else(|| LoopError::RunDir {
            path: "[teacher] oracle".into(),
            msg: "the oracle teacher needs the Markov world".into(),
        })?;
        let mut ids = Vec::new();
        let mut symbol = HashMap::new();
        for (k, c) in world.symbols().iter().enumerate() {
            let enc = tok.encode(&c.to_string())?;
            let [id] = enc[..] else {
                return Err(LoopError::RunDir {
                    path: "[teacher] oracle".into(),
                    msg: format!(
                        "the tokenizer splits {c:?} into {enc:?}; the oracle needs one token per character (model.tokenizer = \"char\")"
                    ),
                });
            };
            ids.push(id as i64);
            symbol.insert(id, k);
        }
        ids.push(tok.eos_id as i64);
        Ok(Oracle { world, ids, symbol })
    }
}

impl Teacher for &Oracle<'_> {
    fn view(
        &self,
        rows: &[&TokenRow],
        max_len: usize,
        device: &Device,
    ) -> didact_train::Result<TeacherView> {
        let t = positions(rows, max_len);
        let k = self.ids.len();
        let mut ids = Vec::with_capacity(rows.len() * t * k);
        let mut logp = Vec::with_capacity(rows.len() * t * k);
        for row in rows {
            let mut hist = Vec::with_capacity(t);
            for j in 0..t {
                // Past a row's end (padding) or after a token outside the alphabet the
                // position carries no loss; any distribution will do.
                if let Some(&s) = row.ids.get(j).and_then(|id| self.symbol.get(id)) {
                    hist.push(s);
                }
                ids.extend_from_slice(&self.ids);
                let p = self.world.next(&hist);
                logp.extend(p.iter().map(|&x| x.max(MIN_PROB).ln() as f32));
            }
        }
        Ok(top_k_view(ids, logp, [rows.len(), t, k], device))
    }

    fn is_top_k(&self) -> bool {
        true
    }
}

/// The trainer's settings from the plan: the round's sampling for on-policy batches, prompts
/// of `prompt_tokens` tokens for prompt-less rows.
pub fn kd_config(
    plan: &DistillPlan,
    sampling: &didact_recipe::SamplingPlan,
    prompt_tokens: usize,
    eos_id: u32,
) -> KdConfig {
    KdConfig {
        objective: KdObjective {
            beta: plan.beta,
            temperature: plan.temperature,
        },
        on_policy: plan.on_policy,
        sampling: crate::stages::sampling(sampling),
        prompt_tokens,
        eos_id,
    }
}

/// A round's token-level distillation of `teacher` into `start` on `rows`.
pub fn train(
    env: &Env<'_>,
    cfg: &KdConfig,
    opt: &didact_core::OptimConfig,
    start: Lm,
    rows: &[TokenRow],
    teacher: &dyn Teacher,
    r: u32,
) -> Result<(Lm, KdReport)> {
    let pb = bar(opt.steps as u64, &format!("r{r} distil"), env.quiet);
    let data = env.batching(crate::seeds::Stream::SftOrder, r as u64);
    let out = train_kd(
        start,
        rows,
        opt,
        &data,
        env.device,
        teacher,
        cfg,
        on_loss(&pb),
    )
    .map_err(|e| LoopError::Train {
        round: r,
        source: e,
    })?;
    pb.finish_and_clear();
    Ok(out)
}

/// `distill/kl_to_teacher`: forward KL(teacher ‖ model) per held-out completion token.
pub fn kl_metric(
    env: &Env<'_>,
    model: &Lm,
    teacher: &dyn Teacher,
    task: &Task,
    batch_size: usize,
) -> Result<f64> {
    let rows = env.tokenize(&task.eval)?;
    kl_to_teacher(
        model,
        &rows,
        teacher,
        batch_size,
        env.max_len(),
        env.tok.pad_id,
        env.device,
    )
    .map_err(|e| LoopError::Train {
        round: 0,
        source: e,
    })
}

/// The oracle's held-out loss (`teacher/loss_real`): the source's true NLL per token on the
/// positions `eval/loss_real` scores (every character after the first, and the stop token).
pub fn oracle_loss_real(task: &Task) -> Option<f64> {
    let w = task.markov.as_ref()?;
    let (mut nll, mut n) = (0.0, 0);
    for e in &task.eval {
        let text = format!("{}{}", e.prompt, e.completion);
        let first: String = text.chars().take(1).collect();
        let rest: String = text.chars().skip(1).collect();
        let s = w.score(&first, &rest, text.chars().count() < w.max_chars);
        nll -= s.logp;
        n += s.n;
    }
    Some(nll / n.max(1) as f64)
}

/// `distill/gap_closed`: the fraction of the held-out loss gap between the real-data student
/// (round 0, trained on the real rows alone) and the teacher that a round closed:
/// (L₀ − L_r) / (L₀ − L_teacher). 0 in round 0, 1 = as good as the teacher. Meaningful when
/// the rounds restart from round 0's initial weights with round 0's budget
/// (`train.init = "scratch"`, `train.steps = train.base_steps`).
pub fn gap_closed(round0: &didact_core::Metrics, now: &didact_core::Metrics) -> Option<f64> {
    let l0 = *round0.get("eval/loss_real")?;
    let lt = *round0.get("teacher/loss_real")?;
    let lr = *now.get("eval/loss_real")?;
    let gap = l0 - lt;
    (gap.abs() > 1e-12).then(|| (l0 - lr) / gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_closed_is_the_fraction_of_the_student_to_teacher_gap() {
        let m = |pairs: &[(&str, f64)]| -> didact_core::Metrics {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let r0 = m(&[("eval/loss_real", 2.0), ("teacher/loss_real", 1.8)]);
        assert_eq!(gap_closed(&r0, &r0), Some(0.0));
        let g = gap_closed(&r0, &m(&[("eval/loss_real", 1.85)])).unwrap();
        assert!((g - 0.75).abs() < 1e-12);
        assert_eq!(gap_closed(&m(&[("eval/loss_real", 2.0)]), &r0), None);
    }
    use crate::stages::testkit::Kit;

    #[test]
    fn the_oracle_gives_the_sources_probabilities_and_the_stop_token_at_the_end() {
        let kit = Kit::new("oracle", &["world.kind=markov", "world.max_chars=6"]);
        let env = kit.env();
        let o = Oracle::new(&kit.task, env.tok).unwrap();
        let row = env.tokenize(&kit.task.eval[..1]).unwrap().remove(0);
        let view = (&o).view(&[&row], 64, env.device).unwrap();
        let TeacherView::TopK { ids, logp } = view else {
            panic!("top-k")
        };
        let [_, t, k] = logp.dims();
        assert_eq!(t, row.ids.len() - 1);
        let logp: Vec<f32> = logp.into_data().try_to_vec().unwrap();
        let ids: Vec<i64> = ids.into_data().convert::<i64>().try_to_vec().unwrap();
        let w = kit.task.markov.as_ref().unwrap();
        let text = &kit.task.eval[0].completion;
        // The true log-prob of the row's next token at each position is the source's.
        let mut total = 0.0;
        for j in 0..t {
            let next = row.ids[j + 1] as i64;
            let at = (0..k).find(|&i| ids[j * k + i] == next).unwrap();
            total += logp[j * k + at] as f64;
            let mass: f64 = logp[j * k..(j + 1) * k]
                .iter()
                .map(|&x| (x as f64).exp())
                .sum();
            assert!((mass - 1.0).abs() < 1e-5, "position {j}: {mass}");
        }
        let first = text.chars().next().unwrap().to_string();
        let rest: String = text.chars().skip(1).collect();
        let ended = text.chars().count() < w.max_chars;
        let want = w.score(&first, &rest, ended).logp;
        assert!((total - want).abs() < 1e-4, "{total} vs {want}");
    }
}
