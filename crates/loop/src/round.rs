//! One round, top to bottom as the recipe reads: generate → score (filter, judge) → pairs →
//! mix → train (→ round 0's reward model and teacher) → evaluate. Each stage writes its output
//! and its stats (`<stage>_metrics.json`) atomically, then is recorded in the journal; on
//! resume a recorded stage is read back from disk instead of recomputed. Models are always
//! read back from their checkpoints (which one: `lineage.rs`), so an interrupted and an
//! uninterrupted run compute the same thing.

use crate::env::Env;
use crate::error::{LoopError, Result, io};
use crate::journal::{Entry, Journal};
use crate::lineage::{Lineage, Role};
use crate::seeds::Stream;
use crate::stages::generate::Writer;
use crate::stages::train::Work;
use crate::stages::{evaluate, filter, generate, judge, mix, pair, side, train};
use crate::task::Task;
use didact_core::{Example, Metrics, Sample, write_atomic};
use didact_data::table;
use didact_recipe::{ModelPlan, PairScorer, RunPlan};
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
    let (plan, dir) = (run.plan, run.env.dir.clone());
    std::fs::create_dir_all(dir.round(r)).map_err(io(&dir.round(r)))?;
    let stats = run.lineage.metrics(r);
    let mut pairs = Vec::new();
    if r >= 1 {
        let path = dir.file(r, "generated.parquet");
        let generated = run.stage(
            r,
            "generate",
            &path,
            |run| {
                let source = run.lineage.model_for(Role::Generator, r);
                let writer = Writer::open(&run.env, &plan.generate, &source)?;
                let out = generate::run(&run.env, &plan.generate, run.task, &writer, r)?;
                table::write_samples(&path, &out.0)?;
                Ok(out)
            },
            read_samples,
        )?;
        let path = dir.file(r, "scored.parquet");
        let scored = run.stage(
            r,
            "score",
            &path,
            |run| {
                let samples = run.score(generated.clone(), r)?;
                table::write_samples(&path, &samples)?;
                let mut m = filter::stats(&samples);
                m.extend(judge::stats(&samples));
                Ok((samples, m))
            },
            read_samples,
        )?;
        if let Some(dpo) = &plan.dpo {
            let path = dir.file(r, "pairs.parquet");
            pairs = run.stage(
                r,
                "pairs",
                &path,
                |run| {
                    let reference = run.env.load(&run.lineage.model_for(Role::Reference, r))?;
                    let out =
                        pair::run(&run.env, dpo, &scored, &reference, plan.eval.batch_size, r)?;
                    table::write_pairs(&path, &out.0)?;
                    Ok(out)
                },
                |p| Ok(table::read_pairs(p)?),
            )?;
        }
    }
    let path = dir.file(r, "train.parquet");
    let rows = run.stage(
        r,
        "mix",
        &path,
        |run| {
            let rows = run.mix(r)?;
            table::write_examples(&path, &rows)?;
            let m = mix::stats(&rows);
            Ok((rows, m))
        },
        |p| Ok(table::read_examples(p)?),
    )?;
    if rows.is_empty() {
        return Err(LoopError::RunDir {
            path,
            msg: format!(
                "round {r}: the training set is empty (every generated sample was dropped; see scored.parquet `dropped`)"
            ),
        });
    }
    let pretrained = matches!(plan.model, ModelPlan::Pretrained { .. });
    run.stage(
        r,
        "train",
        &dir.model(r),
        |run| {
            let start = run.env.load(&run.lineage.model_for(Role::TrainStart, r))?;
            let work = Work::of_round(&plan.train, plan.dpo.as_ref(), pretrained, r);
            let (model, log) = train::run(&run.env, &work, start, &rows, &pairs, r)?;
            write_json(&dir.file(r, "train_log.json"), &log)?;
            didact_model::any::save(&dir.model(r), run.env.cfg, &model, run.env.tok)?;
            Ok(((), log.metrics()))
        },
        |_| Ok(()),
    )?;
    if r == 0
        && plan
            .dpo
            .as_ref()
            .is_some_and(|d| d.scorer == PairScorer::Reward)
    {
        run.stage(
            r,
            "reward",
            &dir.reward_model(),
            |run| {
                let backbone = run.env.load(&crate::lineage::ModelRef::Round(0))?;
                let m = side::reward_model(
                    &run.env,
                    &plan.reward,
                    run.task,
                    backbone,
                    plan.eval.batch_size,
                )?;
                Ok(((), m))
            },
            |_| Ok(()),
        )?;
    }
    if let (0, didact_recipe::Generator::Teacher(t)) = (r, &plan.generate.generator) {
        run.stage(
            r,
            "teacher",
            &dir.teacher(),
            |run| {
                Ok((
                    (),
                    side::teacher(&run.env, t, run.task, plan.eval.batch_size)?,
                ))
            },
            |_| Ok(()),
        )?;
    }
    run.stage(
        r,
        "evaluate",
        &dir.file(r, "metrics.json"),
        |run| {
            let t0 = Instant::now();
            let mut m = run.evaluate(&rows, r)?;
            m.extend(
                run.stats_so_far(r)?
                    .into_iter()
                    .filter(|(_, v)| v.is_finite()),
            );
            m.extend(stats.clone());
            let time = run.journal.round_seconds(r) + t0.elapsed().as_secs_f64();
            m.insert("time/round_s".into(), time);
            write_json(&dir.file(r, "metrics.json"), &m)?;
            Ok((m, Metrics::new()))
        },
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

    /// The score stage: rules and verifier, then the reward model and the LLM judge.
    fn score(&self, mut samples: Vec<Sample>, r: u32) -> Result<Vec<Sample>> {
        let scorer = self.plan.dpo.as_ref().map(|d| d.scorer);
        filter::run(
            &mut samples,
            &self.plan.filter,
            self.task,
            scorer == Some(PairScorer::Rules),
        );
        let bs = self.plan.eval.batch_size;
        if scorer == Some(PairScorer::Reward) {
            judge::reward(&self.env, &mut samples, &self.env.dir.reward_model(), bs)?;
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
        Ok(samples)
    }

    /// The mix stage's rows: real rows in round 0, else the plan's mix of real and kept rows.
    fn mix(&self, r: u32) -> Result<Vec<Example>> {
        let mut pool = Vec::with_capacity(r as usize);
        for i in 1..=r {
            let p = self.env.dir.file(i, "scored.parquet");
            pool.push(mix::kept_examples(&table::read_samples(&p)?));
        }
        let seed = self.env.seed(Stream::Mix, r as u64);
        Ok(mix::run(&self.task.real_train, &pool, &self.plan.mix, seed))
    }

    /// The evaluate stage on round `r`'s model (and its training start, for `eval/kl_ref`).
    fn evaluate(&self, rows: &[Example], r: u32) -> Result<Metrics> {
        let model = self.env.load(&crate::lineage::ModelRef::Round(r))?;
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
        evaluate::run(&self.env, &inputs, r)
    }
}

fn read_samples(p: &Path) -> Result<Vec<Sample>> {
    Ok(table::read_samples(p)?)
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
