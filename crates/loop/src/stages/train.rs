//! The train stage: the round's fine-tuning from its start model (`lineage::model_for(
//! Role::TrainStart, r)`). Round 0 trains the base model on the real rows (none when it starts
//! from a pretrained checkpoint); later rounds run SFT on the mixed rows, DPO on the round's
//! pairs (reference log-probs already cached in them), or SFT then DPO; with `[distill]` the
//! SFT is token-level distillation from the teacher instead. The log is kept beside the model
//! (`train_log.json`) and becomes `train/*`, `distill/*`, `dpo/*`, `rewards/*`, `logps/*`.

use crate::env::Env;
use crate::error::{LoopError, Result};
use crate::progress::{bar, on_loss};
use crate::seeds::Stream;
use crate::stages::pair::pair_rows;
use didact_core::{Example, Metrics, OptimConfig, Pair};
use didact_model::Lm;
use didact_recipe::{DpoPlan, TrainPlan};
use didact_train::dpo_loss::DpoObjective;
use didact_train::{Batching, DpoReport, KdConfig, PairRow, Teacher, train_dpo, train_sft};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The train stage's side output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainLog {
    pub steps: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub final_loss: f64,
    pub step_losses: Vec<f64>,
    #[serde(deserialize_with = "f64_or_nan")]
    pub last_grad_norm: f64,
    pub tokens: usize,
    pub seconds: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub tokens_per_s: f64,
    /// DPO's metrics (`rewards/*`, `logps/*`, `dpo/*`) when the round ran DPO.
    #[serde(default)]
    pub dpo: BTreeMap<String, f64>,
    /// Distillation's (`distill/*`) when the round distilled.
    #[serde(default)]
    pub distill: BTreeMap<String, f64>,
    /// An external trainer's (`external/*`) when the round trained outside didact.
    #[serde(default)]
    pub external: BTreeMap<String, f64>,
}

/// JSON has no NaN: serde_json writes it as `null`; read `null` back as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl TrainLog {
    /// A round that did not train.
    pub fn none() -> Self {
        TrainLog {
            final_loss: f64::NAN,
            last_grad_norm: f64::NAN,
            tokens_per_s: f64::NAN,
            ..TrainLog::default()
        }
    }

    /// `train/loss`, `train/steps`, `train/grad_norm`, `train/tokens_per_s` and the DPO
    /// metrics (finite values only).
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        m.insert("train/loss".into(), self.final_loss);
        m.insert("train/steps".into(), self.steps as f64);
        m.insert("train/grad_norm".into(), self.last_grad_norm);
        m.insert("train/tokens_per_s".into(), self.tokens_per_s);
        m.extend(self.dpo.clone());
        m.extend(self.distill.clone());
        m.extend(self.external.clone());
        m.retain(|_, v| v.is_finite());
        m
    }
}

/// What a round trains: SFT unless it is round 0 of a pretrained start or a DPO-only round;
/// in rounds ≥ 1 with `kd`, distillation takes SFT's place (same steps and batches).
pub struct Work<'a> {
    pub sft: Option<&'a OptimConfig>,
    pub dpo: Option<&'a DpoPlan>,
    pub kd: Option<KdConfig>,
    /// SFT packs its micro-batches (`[train] packing`).
    pub pack: bool,
}

impl<'a> Work<'a> {
    pub fn of_round(
        plan: &'a TrainPlan,
        dpo: Option<&'a DpoPlan>,
        kd: Option<KdConfig>,
        pretrained: bool,
        r: u32,
    ) -> Self {
        match r {
            0 => Work {
                sft: (!pretrained).then_some(&plan.base),
                dpo: None,
                kd: None,
                pack: plan.packing,
            },
            _ => Work {
                sft: plan.algo.sft().then_some(&plan.round),
                dpo: dpo.filter(|_| plan.algo.dpo()),
                kd: kd.filter(|_| plan.algo.sft()),
                pack: plan.packing,
            },
        }
    }
}

fn train_err(r: u32) -> impl Fn(didact_train::TrainError) -> LoopError {
    move |e| LoopError::Train {
        round: r,
        source: e,
    }
}

/// Fine-tune `start` on `rows` and/or `pairs` as `work` says (`teacher`: the distillation
/// teacher when `work.kd` is set).
pub fn run(
    env: &Env<'_>,
    work: &Work<'_>,
    start: Lm,
    rows: &[Example],
    pairs: &[Pair],
    teacher: Option<&dyn Teacher>,
    r: u32,
) -> Result<(Lm, TrainLog)> {
    let (mut model, mut log) = match (work.sft, &work.kd, teacher) {
        (Some(opt), Some(kd), Some(teacher)) => distil(env, kd, opt, start, rows, teacher, r)?,
        (Some(_), Some(_), None) => {
            return Err(LoopError::RunDir {
                path: env.dir.round(r),
                msg: "[distill] needs a teacher and none was opened".into(),
            });
        }
        (Some(opt), None, _) => sft(env, opt, start, rows, work.pack, r)?,
        (None, _, _) => (start, TrainLog::none()),
    };
    if let Some(plan) = work.dpo
        && !pairs.is_empty()
    {
        let (m, rep) = dpo(env, plan, model, pairs, r)?;
        model = m;
        let finite = rep.summary().into_iter().filter(|(_, v)| v.is_finite());
        log.dpo.extend(finite.map(|(k, v)| (k.to_string(), v)));
        log.dpo
            .insert("dpo/tokens_per_s".into(), rep.tokens_per_s());
        if work.sft.is_none() {
            // DPO is the round's training: train/* describes it.
            log.steps = rep.step_losses.len();
            log.final_loss = rep.summary()[0].1;
            log.step_losses = rep.step_losses.clone();
            log.last_grad_norm = rep.grad_norms.last().copied().unwrap_or(f64::NAN);
            log.tokens = rep.tokens;
            log.seconds = rep.seconds;
            log.tokens_per_s = rep.tokens_per_s();
        }
    }
    Ok((model, log))
}

fn sft(
    env: &Env<'_>,
    opt: &OptimConfig,
    start: Lm,
    rows: &[Example],
    pack: bool,
    r: u32,
) -> Result<(Lm, TrainLog)> {
    let rows = env.tokenize(rows)?;
    let pb = bar(opt.steps as u64, &format!("r{r} train"), env.quiet);
    let data = Batching {
        pack,
        ..env.batching(Stream::SftOrder, r as u64)
    };
    let (model, report) =
        train_sft(start, &rows, opt, &data, env.device, on_loss(&pb)).map_err(train_err(r))?;
    pb.finish_and_clear();
    let log = TrainLog {
        steps: opt.steps,
        final_loss: report.final_loss(),
        step_losses: report.step_losses.clone(),
        last_grad_norm: report.grad_norms.last().copied().unwrap_or(f64::NAN),
        tokens: report.tokens,
        seconds: report.seconds,
        tokens_per_s: report.tokens_per_s(),
        dpo: BTreeMap::new(),
        distill: BTreeMap::new(),
        external: BTreeMap::new(),
    };
    Ok((model, log))
}

fn distil(
    env: &Env<'_>,
    kd: &KdConfig,
    opt: &OptimConfig,
    start: Lm,
    rows: &[Example],
    teacher: &dyn Teacher,
    r: u32,
) -> Result<(Lm, TrainLog)> {
    let rows = env.tokenize(rows)?;
    let (model, report) = crate::stages::distill::train(env, kd, opt, start, &rows, teacher, r)?;
    let d = &report.drive;
    let mut distill = BTreeMap::new();
    distill.insert(
        "distill/on_policy_fraction".into(),
        report.on_policy_batches as f64 / report.micro_batches.max(1) as f64,
    );
    let log = TrainLog {
        steps: opt.steps,
        final_loss: d.final_loss(),
        step_losses: d.step_losses.clone(),
        last_grad_norm: d.grad_norms.last().copied().unwrap_or(f64::NAN),
        tokens: d.tokens,
        seconds: d.seconds,
        tokens_per_s: d.tokens_per_s(),
        dpo: BTreeMap::new(),
        distill,
        external: BTreeMap::new(),
    };
    Ok((model, log))
}

fn dpo(
    env: &Env<'_>,
    plan: &DpoPlan,
    start: Lm,
    pairs: &[Pair],
    r: u32,
) -> Result<(Lm, DpoReport)> {
    let rows: Vec<PairRow> = pair_rows(env, pairs)?
        .into_iter()
        .zip(pairs)
        .map(|((chosen, rejected), p)| PairRow {
            chosen,
            rejected,
            ref_chosen: p.ref_chosen,
            ref_rejected: p.ref_rejected,
        })
        .collect();
    let obj = DpoObjective {
        loss: plan.loss,
        beta: plan.beta,
        label_smoothing: plan.label_smoothing,
        rpo_alpha: plan.rpo_alpha,
    };
    let pb = bar(plan.optim.steps as u64, &format!("r{r} dpo"), env.quiet);
    let data = env.batching(Stream::DpoOrder, r as u64);
    let out = train_dpo(
        start,
        &rows,
        &plan.optim,
        &obj,
        &data,
        env.device,
        on_loss(&pb),
    )
    .map_err(train_err(r))?;
    pb.finish_and_clear();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::Kit;
    use didact_model::checkpoint::named_tensors;

    fn weights(m: &Lm) -> Vec<f32> {
        let Lm::Llama(l) = m else { unreachable!() };
        named_tensors(l)
            .unwrap()
            .into_iter()
            .flat_map(|t| t.2)
            .collect()
    }

    #[test]
    fn round_zero_trains_sft_and_a_pretrained_round_zero_does_not() {
        let kit = Kit::new("train", &["train.base_steps=4", "train.batch_size=4"]);
        let env = kit.env();
        let start = kit.model();
        let before = weights(&start);
        let work = Work::of_round(&kit.plan.train, None, None, false, 0);
        let (model, log) = run(
            &env,
            &work,
            start.clone(),
            &kit.task.real_train,
            &[],
            None,
            0,
        )
        .unwrap();
        assert_eq!(log.steps, 4);
        assert!(log.final_loss.is_finite() && log.tokens > 0);
        assert_ne!(weights(&model), before);
        assert_eq!(log.metrics()["train/steps"], 4.0);
        let idle = Work::of_round(&kit.plan.train, None, None, true, 0);
        let (same, log) = run(&env, &idle, start, &kit.task.real_train, &[], None, 0).unwrap();
        assert_eq!(weights(&same), before);
        assert!(
            !log.metrics().contains_key("train/loss"),
            "no training, no train/loss"
        );
    }

    /// A round-1 pair for `1+2=` with cached reference log-probs.
    fn pair(chosen: &str, rejected: &str) -> Pair {
        Pair {
            id: String::new(),
            round: 1,
            prompt: "1+2=".into(),
            chosen: chosen.into(),
            rejected: rejected.into(),
            score_chosen: 1.0,
            score_rejected: 0.0,
            ref_chosen: -3.0,
            ref_rejected: -3.0,
        }
    }

    #[test]
    fn a_dpo_round_reports_dpo_as_its_training() {
        let kit = Kit::new(
            "train-dpo",
            &[
                "train.algo=dpo",
                "generate.n_per_prompt=2",
                "dpo.steps=3",
                "dpo.batch_size=2",
            ],
        );
        let env = kit.env();
        let pairs = vec![pair("3", "4"), pair("3", "5")];
        let work = Work::of_round(&kit.plan.train, kit.plan.dpo.as_ref(), None, false, 1);
        assert!(work.sft.is_none() && work.dpo.is_some());
        let (_, log) = run(&env, &work, kit.model(), &[], &pairs, None, 1).unwrap();
        let m = log.metrics();
        assert_eq!(m["train/steps"], 3.0);
        assert!(m["dpo/loss"].is_finite() && m.contains_key("rewards/margins"));
    }

    /// `[train] lora` (issue 16): a round ≥ 1 running SFT then DPO trains adapters on the
    /// targets in both (DPO merges SFT's first) and returns a model whose untargeted weights
    /// are the start's, bit for bit, and whose targeted ones moved.
    #[test]
    fn a_lora_round_changes_only_the_targeted_weights() {
        let kit = Kit::new(
            "train-lora",
            &[
                "train.algo=sft+dpo",
                "train.steps=3",
                "train.batch_size=4",
                "generate.n_per_prompt=2",
                "dpo.steps=2",
                "dpo.batch_size=2",
                r#"train.lora={ r = 2, alpha = 4, targets = ["q_proj", "down_proj"] }"#,
            ],
        );
        let env = kit.env();
        let work = Work::of_round(&kit.plan.train, kit.plan.dpo.as_ref(), None, false, 1);
        assert!(work.sft.and_then(|o| o.lora.as_ref()).is_some());
        assert!(work.dpo.and_then(|d| d.optim.lora.as_ref()).is_some());
        let start = kit.model();
        let Lm::Llama(before) = &start else {
            unreachable!()
        };
        let before = named_tensors(before).unwrap();
        let rows = &kit.task.real_train;
        let (model, log) = run(&env, &work, start, rows, &[pair("3", "4")], None, 1).unwrap();
        assert!(log.dpo.contains_key("dpo/loss"));
        let Lm::Llama(after) = &model else {
            unreachable!()
        };
        for ((name, _, a), (_, _, b)) in before.iter().zip(&named_tensors(after).unwrap()) {
            let targeted = name.contains("q_proj") || name.contains("down_proj");
            assert_eq!(a != b, targeted, "{name}: changed = {}", a != b);
        }
    }
}
