//! Token-level distillation against TRL: `generalized_jsd_loss` values and gradients on
//! `tests/kd/gkd.json` (made by `tests/kd/make_fixture.py` with TRL 1.16.0's own
//! `GKDTrainer.generalized_jsd_loss`, β ∈ {0, 0.1, 0.5, 0.9, 1}, temperatures 1 and 2); the
//! top-k buckets; and a small distillation run in which the student moves toward its teacher,
//! off- and on-policy.

use didact_model::LlamaConfig;
use didact_model::burn::tensor::{Device, Int, Tensor, TensorData};
use didact_train::kd_loss::{
    KdObjective, bucketed, divergence, generalized_jsd_loss, tempered_logp,
};
use didact_train::{
    Batching, KdConfig, ModelTeacher, OptimConfig, TokenRow, kl_to_teacher, train_kd,
};
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kd/gkd.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn generalized_jsd_equals_trl_in_value_and_gradient() {
    let fx = fixture();
    assert_eq!(fx["trl"], "1.16.0");
    let ad = Device::flex().autodiff();
    for case in fx["cases"].as_array().unwrap() {
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let [b, t, v] = [shape[0], shape[1], shape[2]];
        let student: Tensor<3> = Tensor::from_data(
            TensorData::new(floats(&case["student_logits"]), [b, t, v]),
            &ad,
        )
        .require_grad();
        let teacher = Tensor::from_data(
            TensorData::new(floats(&case["teacher_logits"]), [b, t, v]),
            &ad,
        );
        let mask = Tensor::from_data(TensorData::new(floats(&case["mask"]), [b, t]), &ad);
        let o = KdObjective {
            beta: case["beta"].as_f64().unwrap(),
            temperature: case["temperature"].as_f64().unwrap(),
        };
        let loss = generalized_jsd_loss(student.clone(), teacher, mask, &o);
        let got = loss.clone().into_scalar::<f32>() as f64;
        let want = case["loss"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-5 * want.abs().max(1.0),
            "beta {} T {}: {got} vs TRL {want}",
            o.beta,
            o.temperature
        );
        let grads = loss.backward();
        let g: Vec<f32> = student
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want_g = floats(&case["grad_student_logits"]);
        let worst = g
            .iter()
            .zip(&want_g)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "beta {}: gradient off by {worst}", o.beta);
    }
}

/// A teacher whose top-k holds all of its mass gives the full divergence; with a truncated
/// top-k the bucketed divergence is smaller (data processing) but positive.
#[test]
fn top_k_buckets_are_exact_when_complete_and_a_lower_bound_otherwise() {
    let d = Device::flex();
    let fx = fixture();
    let case = &fx["cases"][0];
    let [b, t, v] = [2, 5, 7];
    let s: Tensor<3> = Tensor::from_data(
        TensorData::new(floats(&case["student_logits"]), [b, t, v]),
        &d,
    );
    let te: Tensor<3> = Tensor::from_data(
        TensorData::new(floats(&case["teacher_logits"]), [b, t, v]),
        &d,
    );
    let (s, te) = (tempered_logp(s, 1.0), tempered_logp(te, 1.0));
    for beta in [0.0, 0.5, 1.0] {
        let full: f32 = divergence(s.clone(), te.clone(), beta).sum().into_scalar();
        let top = |k: usize| {
            let (vals, ids) = te.clone().topk_with_indices(k, 2);
            let (sb, tb) = bucketed(s.clone(), ids, vals);
            divergence(sb, tb, beta).sum().into_scalar::<f32>()
        };
        assert!(
            (top(v) - full).abs() < 1e-4,
            "beta {beta}: {} vs {full}",
            top(v)
        );
        let partial = top(3);
        assert!(
            partial > 0.0 && partial < full,
            "beta {beta}: {partial} vs {full}"
        );
    }
}

fn rows() -> Vec<TokenRow> {
    // "a b c …" counting patterns over 12 tokens, prompt = first token.
    (0..24u32)
        .map(|i| TokenRow {
            ids: (0..10).map(|j| 2 + (i + j * (1 + i % 3)) % 12).collect(),
            n_prompt: 1,
        })
        .collect()
}

fn opt(steps: usize) -> OptimConfig {
    OptimConfig {
        steps,
        batch_size: 8,
        grad_accum: 2,
        lr: 1e-2,
        warmup_steps: 0,
        min_lr_ratio: 1.0,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        grad_clip: 1.0,
        activation_checkpointing: false,
        lora: None,
        bf16: false,
    }
}

#[test]
fn distillation_moves_the_student_toward_its_teacher_off_and_on_policy() {
    let d = Device::flex();
    let cfg = LlamaConfig::new(14)
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_n_kv_heads(1)
        .with_max_seq_len(16);
    let teacher_model = cfg.clone().with_d_model(32).init(7, &d).unwrap();
    let teacher = ModelTeacher {
        model: &teacher_model,
        pad_id: 0,
        device: &d,
    };
    let data = Batching {
        max_len: 16,
        pad_id: 0,
        seed: 3,
        pack: false,
    };
    let rows = rows();
    for (beta, on_policy) in [(0.0, 0.0), (1.0, 0.0), (0.5, 1.0)] {
        let student = cfg.init(5, &d).unwrap();
        let before = kl_to_teacher(&student, &rows, &teacher, 8, 16, 0, &d).unwrap();
        let kd = KdConfig {
            objective: KdObjective {
                beta,
                temperature: 1.0,
            },
            on_policy,
            sampling: didact_model::SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                max_new_tokens: 8,
                stop_token: None,
            },
            prompt_tokens: 1,
            eos_id: 1,
        };
        let (student, rep) = train_kd(
            student,
            &rows,
            &opt(30),
            &data,
            &d,
            &teacher,
            &kd,
            |_, _| {},
        )
        .unwrap();
        let after = kl_to_teacher(&student, &rows, &teacher, 8, 16, 0, &d).unwrap();
        assert!(
            after < 0.5 * before,
            "beta {beta} λ {on_policy}: KL to the teacher {before} → {after}"
        );
        let expect_on = if on_policy > 0.0 { 60 } else { 0 };
        assert_eq!(rep.on_policy_batches, expect_on);
        assert_eq!(rep.micro_batches, 60);
        let first = rep.drive.step_losses[0];
        assert!(
            rep.drive.final_loss() < first,
            "{first} → {}",
            rep.drive.final_loss()
        );
    }
}

#[test]
fn a_top_k_teacher_at_another_temperature_is_refused() {
    struct TopK;
    impl didact_train::Teacher for TopK {
        fn view(
            &self,
            _: &[&TokenRow],
            _: usize,
            d: &Device,
        ) -> didact_train::Result<didact_train::TeacherView> {
            Ok(didact_train::TeacherView::TopK {
                ids: Tensor::<3, Int>::zeros([1, 1, 1], d),
                logp: Tensor::zeros([1, 1, 1], d),
            })
        }
        fn is_top_k(&self) -> bool {
            true
        }
    }
    let d = Device::flex();
    let student = LlamaConfig::new(14)
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_n_kv_heads(1)
        .with_max_seq_len(16)
        .init(5, &d)
        .unwrap();
    let kd = KdConfig {
        objective: KdObjective {
            beta: 0.0,
            temperature: 2.0,
        },
        on_policy: 0.0,
        sampling: didact_model::SamplingParams::greedy(4, None),
        prompt_tokens: 1,
        eos_id: 1,
    };
    let data = Batching {
        max_len: 16,
        pad_id: 0,
        seed: 3,
        pack: false,
    };
    let err = train_kd(student, &rows(), &opt(1), &data, &d, &TopK, &kd, |_, _| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("temperature 1"), "{err}");
}
