//! One round, top to bottom as the recipe reads: generate → score (self-checks, filter,
//! judge) → pairs → mix → train (→ round 0's reward model and teacher) → evaluate
//! (+ `distill/kl_to_teacher`).
//! With `[run] peers`, every peer generates into the one pool and trains on the one mix
//! (`train_p<k>` stages, checkpoints under `peers/`); evaluation is of peer 0. Each stage writes its output
//! and its stats (`<stage>_metrics.json`) atomically, then is recorded in the journal; on
//! resume a recorded stage is read back from disk instead of recomputed. Models are always
//! read back from their checkpoints (which one: `lineage.rs`), so an interrupted and an
//! uninterrupted run compute the same thing.

use crate::env::Env;
use crate::error::{LoopError, Result, io};
use crate::journal::{Entry, Journal};
use crate::lineage::{Lineage, ModelRef, Role};
use crate::seeds::Stream;
use crate::stages::distill::{self, LiveTeacher};
use crate::stages::generate::Writer;
use crate::stages::self_check::Check;
use crate::stages::train::Work;
use crate::stages::{
    evaluate, external, filter, generate, judge, mix, pair, self_check, side, train,
};
use crate::task::Task;
use didact_core::{Example, Metrics, Pair, Sample, write_atomic};
use didact_data::table;
use didact_recipe::{Algo, ModelPlan, PairScorer, RunPlan, TeacherPlan};
use std::path::Path;
use std::time::Instant;

/// A run in progress: the plan, the stages' environment, the task, the journal and the
/// lineage (which checkpoint each role uses). Only `run_round` reads it; stages get arguments.
pub struct Runner<'a> {
    pub plan: &'a RunPlan,
    pub env: Env<'a>,
    pub task: &'a Task,
    pub journal: Journal,
    pub lineage: Lineage,
}

/// Execute round `r` and return its metrics.
pub fn run_round(run: &mut Runner<'_>, r: u32) -> Result<Metrics> {
    let dir = run.env.dir.clone();
    std::fs::create_dir_all(dir.round(r)).map_err(io(&dir.round(r)))?;
    let mut pairs = Vec::new();
    if r >= 1 {
        let path = dir.file(r, "generated.parquet");
        let generated = run.stage(
            r,
            "generate",
            &path,
            |run| run.generate(&path, r),
            read_samples,
        )?;
        let path = dir.file(r, "scored.parquet");
        let scored = run.stage(
            r,
            "score",
            &path,
            |run| run.score(&path, generated, r),
            read_samples,
        )?;
        if run.plan.dpo.is_some() {
            let path = dir.file(r, "pairs.parquet");
            pairs = run.stage(
                r,
                "pairs",
                &path,
                |run| run.pairs(&path, &scored, r),
                read_pairs,
            )?;
        }
    }
    let path = dir.file(r, "train.parquet");
    let rows = run.stage(r, "mix", &path, |run| run.mix(&path, r), read_examples)?;
    if rows.is_empty() {
        return Err(LoopError::RunDir {
            path,
            msg: format!(
                "round {r}: the training set is empty (every generated sample was dropped; see scored.parquet `dropped`)"
            ),
        });
    }
    for p in 0..run.plan.peers {
        let name = match p {
            0 => "train".to_string(),
            _ => format!("train_p{p}"),
        };
        let out = dir.model_of(r, p);
        run.stage(r, &name, &out, |run| run.train(p, &rows, &pairs, r), done)?;
    }
    let scorer = run.plan.dpo.as_ref().map(|d| d.scorer);
    if r == 0 && scorer == Some(PairScorer::Reward) {
        run.stage(
            r,
            "reward",
            &dir.reward_model(),
            |run| run.reward_model(),
            done,
        )?;
    }
    let measured = |t: &&TeacherPlan| !matches!(t, TeacherPlan::Endpoint { .. });
    if let (0, Some(t)) = (r, run.plan.generate.teacher().filter(measured)) {
        let out = match t {
            TeacherPlan::Trained(_) => dir.teacher(),
            _ => dir.file(0, "teacher_metrics.json"),
        };
        run.stage(r, "teacher", &out, |run| run.teacher(t), done)?;
    }
    let path = dir.file(r, "metrics.json");
    run.stage(
        r,
        "evaluate",
        &path,
        |run| run.evaluate(&path, &rows, r),
        read_metrics,
    )
}

impl Runner<'_> {
    /// Run `compute` unless the journal says the stage finished; then `load` its output
    /// instead. The stats a stage returns are kept in `<round>/<stage>_metrics.json`.
    fn stage<T>(
        &mut self,
        r: u32,
        name: &str,
        output: &Path,
        compute: impl FnOnce(&Self) -> Result<(T, Metrics)>,
        load: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let stats_path = self.env.dir.file(r, &format!("{name}_metrics.json"));
        if self.journal.done(r, name).is_some() {
            return load(output);
        }
        let t0 = Instant::now();
        let (value, stats) = compute(self)?;
        if !stats.is_empty() {
            write_json(&stats_path, &stats)?;
        }
        self.journal.record(Entry {
            round: r,
            stage: name.to_string(),
            output: self.env.dir.relative(output),
            seconds: t0.elapsed().as_secs_f64(),
        })?;
        Ok(value)
    }

    /// Every stage's stats of round `r` so far (`<stage>_metrics.json`, in stage order).
    fn stats_so_far(&self, r: u32) -> Result<Metrics> {
        let mut m = Metrics::new();
        for name in [
            "generate", "score", "pairs", "mix", "train", "reward", "teacher",
        ] {
            let p = self.env.dir.file(r, &format!("{name}_metrics.json"));
            if p.exists() {
                m.extend(read_metrics(&p)?);
            }
        }
        Ok(m)
    }

    /// The generate stage: the round's writer (`lineage`) answers the prompts — with
    /// `[run] peers`, every peer's policy in turn answers the same prompts.
    fn generate(&self, path: &Path, r: u32) -> Result<(Vec<Sample>, Metrics)> {
        let plan = &self.plan.generate;
        let source = self.lineage.model_for(Role::Generator, r);
        let (mut samples, mut stats) = (Vec::new(), Metrics::new());
        for p in 0..self.plan.peers {
            let env = self.env.peer(p);
            let writer = Writer::open(&env, plan, &source, self.task)?;
            let (s, m) = generate::run(&env, plan, self.task, &writer, r)?;
            samples.extend(s);
            stats.extend(m);
        }
        table::write_samples(path, &samples)?;
        Ok((samples, stats))
    }

    /// The score stage: rules and verifier, then the reward model and the LLM judge.
    fn score(
        &self,
        path: &Path,
        mut samples: Vec<Sample>,
        r: u32,
    ) -> Result<(Vec<Sample>, Metrics)> {
        let scorer = self.plan.dpo.as_ref().map(|d| d.scorer);
        let mut m = Metrics::new();
        let f = &self.plan.filter;
        let checks: Vec<Check> = [(f.prefix_check, Check::Low), (f.top_check, Check::High)]
            .into_iter()
            .filter_map(|(on, check)| on.then_some(check))
            .collect();
        if !checks.is_empty() {
            m = self.self_checks(&checks, &mut samples, r)?;
        }
        filter::run(
            &mut samples,
            &self.plan.filter,
            self.task,
            scorer == Some(PairScorer::Rules),
        );
        if scorer == Some(PairScorer::Reward) {
            let rm = self.env.dir.reward_model();
            judge::reward(&self.env, &mut samples, &rm, self.plan.eval.batch_size)?;
        }
        if let Some(j) = &self.plan.judge {
            let by = self.lineage.model_for(Role::Judge, r);
            judge::llm(
                &self.env,
                j,
                &by,
                &mut samples,
                self.plan.generate.batch_size,
                r,
            )?;
        }
        table::write_samples(path, &samples)?;
        m.extend(filter::stats(&samples));
        m.extend(judge::stats(&samples));
        Ok((samples, m))
    }

    /// `[filter] prefix_check` / `top_check`: the round's policies (every peer) answer the
    /// low- / high-digit sub-problems, and each sample is marked by whether it agrees.
    fn self_checks(&self, checks: &[Check], samples: &mut [Sample], r: u32) -> Result<Metrics> {
        let plan = &self.plan.generate;
        let source = self.lineage.model_for(Role::Generator, r);
        let mut policies = Vec::new();
        for p in 0..self.plan.peers {
            let env = self.env.peer(p);
            let writer = Writer::open(&env, plan, &source, self.task)?;
            policies.push((env, writer));
        }
        let max_new = plan.sampling.max_new_tokens;
        let mut m = Metrics::new();
        for &check in checks {
            m.extend(self_check::run(
                check,
                &policies,
                samples,
                plan.batch_size,
                max_new,
                r,
            )?);
        }
        Ok(m)
    }

    /// The pairs stage, with the reference (the round's training start) log-probs.
    fn pairs(&self, path: &Path, scored: &[Sample], r: u32) -> Result<(Vec<Pair>, Metrics)> {
        let dpo = self
            .plan
            .dpo
            .as_ref()
            .expect("a pairs stage has a dpo plan");
        let reference = self.env.load(&self.lineage.model_for(Role::Reference, r))?;
        let out = pair::run(
            &self.env,
            dpo,
            scored,
            &reference,
            self.plan.eval.batch_size,
            r,
        )?;
        table::write_pairs(path, &out.0)?;
        Ok(out)
    }

    /// The mix stage's rows: real rows in round 0, else the plan's mix of real and kept rows.
    fn mix(&self, path: &Path, r: u32) -> Result<(Vec<Example>, Metrics)> {
        let mut pool = Vec::with_capacity(r as usize);
        for i in 1..=r {
            let p = self.env.dir.file(i, "scored.parquet");
            pool.push(mix::kept_examples(&table::read_samples(&p)?));
        }
        let seed = self.env.seed(Stream::Mix, r as u64);
        let rows = mix::run(&self.task.real_train, &pool, &self.plan.mix, seed);
        table::write_examples(path, &rows)?;
        let m = mix::stats(&rows);
        Ok((rows, m))
    }

    /// The train stage of peer `p` (0 = the run's own policy): from the training start
    /// (`lineage`, among the peer's own checkpoints), saved with its log.
    fn train(&self, p: u32, rows: &[Example], pairs: &[Pair], r: u32) -> Result<((), Metrics)> {
        let (plan, dir, env) = (self.plan, self.env.dir, self.env.peer(p));
        if let (Some(ext), true) = (&plan.train.external, r >= 1) {
            return self.train_external(ext, rows, pairs, r);
        }
        let start = env.load(&self.lineage.model_for(Role::TrainStart, r))?;
        let pretrained = matches!(plan.model, ModelPlan::Pretrained { .. });
        let kd = plan.distill.as_ref().map(|d| {
            let g = &plan.generate;
            distill::kd_config(d, &g.sampling, g.prompt_chars, env.tok.eos_id)
        });
        let work = Work::of_round(&plan.train, plan.dpo.as_ref(), kd, pretrained, r);
        let live = match (&work.kd, self.lineage.teacher()) {
            (Some(_), Some(t)) => Some(LiveTeacher::open(&env, &t, self.task, r)?),
            _ => None,
        };
        let teacher = live.as_ref().map(|t| t.as_teacher(&env));
        let (model, mut log) = train::run(&env, &work, start, rows, pairs, teacher.as_deref(), r)?;
        if let Some(LiveTeacher::Table(t)) = &live {
            let aligned = 1.0 - t.misaligned as f64 / t.samples.max(1) as f64;
            log.distill
                .insert("distill/aligned_fraction".into(), aligned);
        }
        write_json(&dir.train_log(r, p), &log)?;
        didact_model::any::save(&dir.model_of(r, p), env.cfg, &model, env.tok)?;
        Ok(((), log.metrics()))
    }

    /// The train stage through `[train] external` (a DPO round without pairs trains nothing,
    /// as in-process).
    fn train_external(
        &self,
        ext: &didact_recipe::ExternalPlan,
        rows: &[Example],
        pairs: &[Pair],
        r: u32,
    ) -> Result<((), Metrics)> {
        let (plan, dir) = (self.plan, self.env.dir);
        let start = self.lineage.model_for(Role::TrainStart, r);
        let algo = plan.train.algo;
        let dpo = plan.dpo.as_ref().filter(|_| algo == Algo::Dpo);
        let (model, log) = if dpo.is_some() && pairs.is_empty() {
            (self.env.load(&start)?, train::TrainLog::none())
        } else {
            let inputs = external::Inputs {
                plan: ext,
                algo,
                start: &start,
                rows,
                pairs,
                optim: dpo.map_or(&plan.train.round, |d| &d.optim),
                dpo,
                seed: self.env.seed(Stream::SftOrder, r as u64),
            };
            external::run(&self.env, &inputs, r)?
        };
        write_json(&dir.file(r, "train_log.json"), &log)?;
        didact_model::any::save(&dir.model(r), self.env.cfg, &model, self.env.tok)?;
        Ok(((), log.metrics()))
    }

    /// Round 0's reward model, on the round-0 policy.
    fn reward_model(&self) -> Result<((), Metrics)> {
        let backbone = self.env.load(&ModelRef::Round(0))?;
        let bs = self.plan.eval.batch_size;
        let m = side::reward_model(&self.env, &self.plan.reward, self.task, backbone, bs)?;
        Ok(((), m))
    }

    /// Round 0's distillation teacher.
    fn teacher(&self, t: &TeacherPlan) -> Result<((), Metrics)> {
        let m = side::teacher(&self.env, t, self.task, self.plan.eval.batch_size)?;
        Ok(((), m))
    }

    /// The evaluate stage: round `r`'s model (and its training start, for `eval/kl_ref`), the
    /// round's stage stats and lineage, and the wall clock of the round.
    fn evaluate(&self, path: &Path, rows: &[Example], r: u32) -> Result<(Metrics, Metrics)> {
        let t0 = Instant::now();
        let model = self.env.load(&ModelRef::Round(r))?;
        let reference = match r {
            0 => None,
            _ => Some(self.env.load(&self.lineage.model_for(Role::Reference, r))?),
        };
        let inputs = evaluate::Inputs {
            plan: &self.plan.eval,
            sampling: &self.plan.generate.sampling,
            task: self.task,
            model: &model,
            reference: reference.as_ref(),
            train_rows: rows,
        };
        let mut m = evaluate::run(&self.env, &inputs, r)?;
        m.extend(
            self.stats_so_far(r)?
                .into_iter()
                .filter(|(_, v)| v.is_finite()),
        );
        m.extend(self.lineage.metrics(r));
        let scoring_teacher = self
            .lineage
            .teacher()
            .filter(|t| *t != crate::lineage::ModelRef::Endpoint);
        if let Some(t) = scoring_teacher {
            let live = LiveTeacher::open(&self.env, &t, self.task, r)?;
            let bs = self.plan.eval.batch_size;
            let kl = distill::kl_metric(
                &self.env,
                &model,
                &*live.as_teacher(&self.env),
                self.task,
                bs,
            )?;
            m.insert("distill/kl_to_teacher".into(), kl);
            let round0 = match r {
                0 => m.clone(),
                _ => read_metrics(&self.env.dir.file(0, "metrics.json"))?,
            };
            if let Some(g) = distill::gap_closed(&round0, &m) {
                m.insert("distill/gap_closed".into(), g);
            }
        }
        let time = self.journal.round_seconds(r) + t0.elapsed().as_secs_f64();
        m.insert("time/round_s".into(), time);
        write_json(path, &m)?;
        Ok((m, Metrics::new()))
    }
}

fn read_samples(p: &Path) -> Result<Vec<Sample>> {
    Ok(table::read_samples(p)?)
}

fn read_pairs(p: &Path) -> Result<Vec<Pair>> {
    Ok(table::read_pairs(p)?)
}

fn read_examples(p: &Path) -> Result<Vec<Example>> {
    Ok(table::read_examples(p)?)
}

/// A stage whose output is a directory (a checkpoint): nothing to read back.
fn done(_: &Path) -> Result<()> {
    Ok(())
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("json");
    write_atomic(path, text.as_bytes()).map_err(io(path))
}

pub fn read_metrics(p: &Path) -> Result<Metrics> {
    let text = std::fs::read_to_string(p).map_err(io(p))?;
    serde_json::from_str(&text).map_err(|e| LoopError::RunDir {
        path: p.to_path_buf(),
        msg: format!("invalid metrics: {e}"),
    })
}
