//! Round 0's side models. The distillation teacher, measured (`teacher/*`): a second, larger
//! Llama with the student's vocabulary, context and RoPE, trained here on the real rows (or
//! its own, more, fresh rows of the world), a Hugging Face checkpoint, or the Markov world's
//! true source (its loss is the source's entropy rate on the held-out rows). The reward
//! model: a Bradley-Terry head on the round-0 policy, trained on `[reward] data` or, with the
//! arithmetic world and no data, on correct answers against perturbed ones (`rm/*`).

use crate::env::Env;
use crate::error::{LoopError, Result};
use crate::progress::{bar, on_loss};
use crate::seeds::Stream;
use crate::task::Task;
use didact_core::Metrics;
use didact_data::PrefRow;
use didact_model::{LlamaConfig, Lm, checkpoint};
use didact_recipe::{RewardPlan, TeacherPlan, TrainedTeacher};
use didact_train::{eval_loss, train_sft};

/// The teacher's shape: the student's vocabulary, context and RoPE with `[teacher]`'s size.
pub fn teacher_config(student: &LlamaConfig, t: &TrainedTeacher) -> LlamaConfig {
    student
        .clone()
        .with_d_model(t.d_model)
        .with_n_layers(t.n_layers)
        .with_n_heads(t.n_heads)
        .with_n_kv_heads(t.n_kv_heads)
        .with_d_ff(t.d_ff.unwrap_or(0))
}

/// Round 0's teacher: trained and saved when the plan trains one; measured in every case.
pub fn teacher(
    env: &Env<'_>,
    plan: &TeacherPlan,
    task: &Task,
    eval_batch: usize,
) -> Result<Metrics> {
    let mut m = Metrics::new();
    match plan {
        TeacherPlan::Trained(t) => return trained_teacher(env, t, task, eval_batch),
        TeacherPlan::Hf(dir) => {
            let teacher = crate::stages::distill::LiveTeacher::open(
                env,
                &crate::lineage::ModelRef::Pretrained(dir.clone()),
                task,
                0,
            )?;
            let crate::stages::distill::LiveTeacher::Model(model) = teacher else {
                unreachable!("a checkpoint opens as a model")
            };
            let eval_rows = env.tokenize(&task.eval)?;
            let (loss, _) = eval_loss(
                model.as_ref(),
                &eval_rows,
                eval_batch,
                env.max_len(),
                env.tok.pad_id,
                env.device,
            );
            m.insert("teacher/loss_real".into(), loss);
            m.insert(
                "teacher/params".into(),
                didact_model::burn::module::Module::num_params(model.as_ref()) as f64,
            );
        }
        // It scores only its own samples: nothing to measure on held-out text.
        TeacherPlan::Endpoint { .. } => {}
        TeacherPlan::Oracle => {
            if let Some(loss) = crate::stages::distill::oracle_loss_real(task) {
                m.insert("teacher/loss_real".into(), loss);
            }
        }
    }
    if let Some(&loss) = m.get("teacher/loss_real") {
        m.insert("teacher/ppl_real".into(), didact_metrics::perplexity(loss));
    }
    m.retain(|_, v| v.is_finite());
    Ok(m)
}

/// Train, measure and save a teacher of the plan's shape.
fn trained_teacher(
    env: &Env<'_>,
    plan: &TrainedTeacher,
    task: &Task,
    eval_batch: usize,
) -> Result<Metrics> {
    let cfg = teacher_config(env.llama_config()?, plan);
    let start = cfg.init(env.seed(Stream::TeacherInit, 0), env.device)?;
    let own;
    let real = match plan.train_size {
        Some(n) => {
            own = task.fresh_rows(n, env.seed(Stream::TeacherTrainSet, 0))?;
            &own
        }
        None => &task.real_train,
    };
    let rows = env.tokenize(real)?;
    let pb = bar(plan.optim.steps as u64, "r0 teacher", env.quiet);
    let data = env.batching(Stream::TeacherOrder, 0);
    let (model, report) = train_sft(start, &rows, &plan.optim, &data, env.device, on_loss(&pb))
        .map_err(|e| LoopError::Train {
            round: 0,
            source: e,
        })?;
    pb.finish_and_clear();
    let eval_rows = env.tokenize(&task.eval)?;
    let (loss, _) = eval_loss(
        &model,
        &eval_rows,
        eval_batch,
        cfg.max_seq_len,
        env.tok.pad_id,
        env.device,
    );
    let mut m = Metrics::new();
    m.insert("teacher/loss_real".into(), loss);
    m.insert("teacher/ppl_real".into(), didact_metrics::perplexity(loss));
    m.insert("teacher/train_loss".into(), report.final_loss());
    m.insert("teacher/train_rows".into(), rows.len() as f64);
    m.insert(
        "teacher/params".into(),
        didact_model::burn::module::Module::num_params(&model) as f64,
    );
    m.retain(|_, v| v.is_finite());
    checkpoint::save(&env.dir.teacher(), &cfg, &model, env.tok)?;
    Ok(m)
}

/// Train/held-out preference pairs of the round-0 reward model: `[reward] data` (split as
/// `train-rm` splits it), else derived from the world's correct rows.
fn reward_pairs(
    env: &Env<'_>,
    plan: &RewardPlan,
    task: &Task,
) -> Result<(Vec<PrefRow>, Vec<PrefRow>)> {
    if plan.data.is_none() {
        let train = crate::rm::world_prefs(&task.real_train, env.seed(Stream::WorldPrefsTrain, 0));
        let eval = crate::rm::world_prefs(&task.eval, env.seed(Stream::WorldPrefsEval, 0));
        return Ok((train, eval));
    }
    let split = crate::rm::file_pairs(plan, env.seed)?;
    Ok((split.train, split.eval))
}

/// Fit the reward model on the round-0 policy (`backbone`) and save it.
pub fn reward_model(
    env: &Env<'_>,
    plan: &RewardPlan,
    task: &Task,
    backbone: Lm,
    eval_batch: usize,
) -> Result<Metrics> {
    let (train, eval) = reward_pairs(env, plan, task)?;
    let Lm::Llama(backbone) = backbone else {
        return Err(LoopError::RunDir {
            path: env.dir.model(0),
            msg: "a reward model needs a Llama-family backbone (Llama, Qwen2); this checkpoint is GPT-2".into(),
        });
    };
    let cfg = env.llama_config()?;
    let fit = crate::rm::Fit {
        plan,
        cfg,
        tok: env.tok,
        device: env.device,
        seed: env.seed,
        eval_batch,
        quiet: env.quiet,
    };
    let (rm, m, _) = fit.run(backbone, &train, &eval)?;
    crate::rm::save_reward_model(&env.dir.reward_model(), cfg, &rm, env.tok)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::testkit::Kit;

    #[test]
    fn the_teacher_is_trained_measured_and_saved_with_the_students_vocabulary() {
        let kit = Kit::new(
            "teacher",
            &[
                "teacher.d_model=32",
                "teacher.n_layers=1",
                "teacher.n_heads=2",
                "teacher.n_kv_heads=1",
                "teacher.steps=3",
            ],
        );
        let env = kit.env();
        let Some(t) = kit.plan.generate.teacher() else {
            panic!("a teacher plan")
        };
        let m = teacher(&env, t, &kit.task, 4).unwrap();
        assert!(m["teacher/loss_real"].is_finite() && m["teacher/params"] > 0.0);
        let ck = checkpoint::load(&kit.dir.teacher(), env.device).unwrap();
        assert_eq!(ck.config.d_model, 32);
        assert_eq!(ck.config.vocab_size, env.tok.vocab_size());
    }

    #[test]
    fn a_world_reward_model_fits_on_the_round_zero_policy() {
        let kit = Kit::new(
            "rm",
            &[
                "train.algo=dpo",
                "generate.n_per_prompt=2",
                "dpo.scorer=reward",
                "reward.steps=3",
                "reward.batch_size=4",
            ],
        );
        let env = kit.env();
        let m = reward_model(&env, &kit.plan.reward, &kit.task, kit.model(), 4).unwrap();
        assert!(m["rm/loss"].is_finite() && m["rm/train_pairs"] > 0.0);
        assert!(kit.dir.reward_model().join("model.safetensors").exists());
    }
}
