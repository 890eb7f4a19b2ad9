//! Which checkpoint each role uses in a round — decided here and nowhere else, so a detector
//! rollback and `train.init` hold for every role at once. In round r ≥ 1 the *policy* is the
//! previous round's model, or the rollback target when the detector rolled back after round
//! r − 1; it generates (unless a teacher or an endpoint does) and judges (unless an endpoint
//! does). Training starts from the policy (`continue`), round 0's model (`base`) or round 0's
//! initial weights (`scratch`); the DPO reference and the `eval/kl_ref` reference are the
//! training start.

use didact_core::Metrics;
use didact_recipe::{Generator, Init, JudgeBy, ModelPlan, RunPlan, TeacherPlan};
use std::path::PathBuf;

/// A model's job in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    TrainStart,
    Generator,
    Judge,
    /// DPO's reference and `eval/kl_ref`'s.
    Reference,
}

/// A checkpoint (or where one comes from).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelRef {
    /// Round 0's initial weights, drawn from the run seed.
    Fresh,
    /// The recipe's `[model] hf` checkpoint.
    Pretrained(PathBuf),
    /// The model round `r` trained.
    Round(u32),
    /// Round 0's trained distillation teacher.
    Teacher,
    /// The Markov world's true source (`[teacher] oracle`; no checkpoint).
    Oracle,
    /// An OpenAI-compatible server (no checkpoint here).
    Endpoint,
}

impl ModelRef {
    /// The round whose model this is, if it is one.
    pub fn round(&self) -> Option<u32> {
        match self {
            ModelRef::Round(k) => Some(*k),
            _ => None,
        }
    }
}

/// The rule, from the plan, plus the run's rollback state.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    init: Init,
    /// Round 0's start: fresh weights or a checkpoint.
    origin: ModelRef,
    /// The distillation teacher (`[teacher]`), which generates in rounds ≥ 1.
    teacher: Option<ModelRef>,
    generator_endpoint: bool,
    judge_endpoint: bool,
    /// Set by a `rollback` alert after the previous round: the policy of the next round.
    pub rollback_to: Option<u32>,
}

impl Lineage {
    pub fn new(plan: &RunPlan) -> Self {
        Lineage {
            init: plan.train.init,
            origin: match &plan.model {
                ModelPlan::Fresh { .. } => ModelRef::Fresh,
                ModelPlan::Pretrained { dir } => ModelRef::Pretrained(dir.clone()),
            },
            teacher: plan.generate.teacher().map(|t| match t {
                TeacherPlan::Trained(_) => ModelRef::Teacher,
                TeacherPlan::Hf(dir) => ModelRef::Pretrained(dir.clone()),
                TeacherPlan::Oracle => ModelRef::Oracle,
                TeacherPlan::Endpoint { .. } => ModelRef::Endpoint,
            }),
            generator_endpoint: matches!(plan.generate.generator, Generator::Endpoint(_)),
            judge_endpoint: plan
                .judge
                .as_ref()
                .is_some_and(|j| matches!(j.by, JudgeBy::Endpoint(_))),
            rollback_to: None,
        }
    }

    /// The distillation teacher, if the run has one.
    pub fn teacher(&self) -> Option<ModelRef> {
        self.teacher.clone()
    }

    /// The current policy of round `r` ≥ 1.
    fn policy(&self, r: u32) -> ModelRef {
        ModelRef::Round(self.rollback_to.unwrap_or(r.saturating_sub(1)))
    }

    /// The checkpoint `role` uses in round `r`.
    pub fn model_for(&self, role: Role, r: u32) -> ModelRef {
        match role {
            Role::TrainStart | Role::Reference if r == 0 => self.origin.clone(),
            Role::TrainStart | Role::Reference => match (self.rollback_to, self.init) {
                (Some(_), _) | (None, Init::Continue) => self.policy(r),
                (None, Init::Base) => ModelRef::Round(0),
                (None, Init::Scratch) => self.origin.clone(),
            },
            Role::Generator if self.generator_endpoint => ModelRef::Endpoint,
            Role::Generator if self.teacher.is_some() => self.teacher().expect("checked"),
            Role::Judge if self.judge_endpoint => ModelRef::Endpoint,
            Role::Generator | Role::Judge => self.policy(r),
        }
    }

    /// `lineage/start_from` (the round whose model started training) and, in rounds ≥ 1,
    /// `lineage/generated_by` (the round whose model wrote the samples); absent when it was
    /// fresh weights, a checkpoint, the teacher or an endpoint.
    pub fn metrics(&self, r: u32) -> Metrics {
        let mut m = Metrics::new();
        if let Some(k) = self.model_for(Role::TrainStart, r).round() {
            m.insert("lineage/start_from".into(), k as f64);
        }
        if r >= 1
            && let Some(k) = self.model_for(Role::Generator, r).round()
        {
            m.insert("lineage/generated_by".into(), k as f64);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lineage(init: Init) -> Lineage {
        Lineage {
            init,
            origin: ModelRef::Fresh,
            teacher: None,
            generator_endpoint: false,
            judge_endpoint: false,
            rollback_to: None,
        }
    }

    #[test]
    fn the_policy_is_the_previous_round_unless_rolled_back() {
        let mut l = lineage(Init::Continue);
        assert_eq!(l.model_for(Role::TrainStart, 0), ModelRef::Fresh);
        for role in [
            Role::TrainStart,
            Role::Generator,
            Role::Judge,
            Role::Reference,
        ] {
            assert_eq!(l.model_for(role, 4), ModelRef::Round(3), "{role:?}");
        }
        l.rollback_to = Some(1);
        for role in [
            Role::TrainStart,
            Role::Generator,
            Role::Judge,
            Role::Reference,
        ] {
            assert_eq!(
                l.model_for(role, 4),
                ModelRef::Round(1),
                "{role:?} after a rollback"
            );
        }
        assert_eq!(l.metrics(4)["lineage/start_from"], 1.0);
        assert_eq!(l.metrics(4)["lineage/generated_by"], 1.0);
    }

    #[test]
    fn init_moves_the_training_start_but_not_the_generator() {
        let base = lineage(Init::Base);
        assert_eq!(base.model_for(Role::TrainStart, 3), ModelRef::Round(0));
        assert_eq!(base.model_for(Role::Generator, 3), ModelRef::Round(2));
        let scratch = lineage(Init::Scratch);
        assert_eq!(scratch.model_for(Role::TrainStart, 3), ModelRef::Fresh);
        assert!(!scratch.metrics(3).contains_key("lineage/start_from"));
        assert_eq!(scratch.metrics(3)["lineage/generated_by"], 2.0);
    }

    #[test]
    fn teachers_and_endpoints_generate_instead_of_the_policy() {
        let mut l = lineage(Init::Continue);
        l.teacher = Some(ModelRef::Teacher);
        assert_eq!(l.model_for(Role::Generator, 2), ModelRef::Teacher);
        assert_eq!(l.model_for(Role::Judge, 2), ModelRef::Round(1));
        assert!(!l.metrics(2).contains_key("lineage/generated_by"));
        l.judge_endpoint = true;
        assert_eq!(l.model_for(Role::Judge, 2), ModelRef::Endpoint);
    }
}
