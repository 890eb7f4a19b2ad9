//! Training smoke tests (TRL `test_sft_trainer` style): loss goes down on tiny data, every
//! trainable parameter changes, a non-finite loss stops training with a clear error.

use didact_model::burn::tensor::Device;
use didact_model::checkpoint::named_tensors;
use didact_model::{Llama, LlamaConfig, WeightSource};
use didact_train::{Batching, OptimConfig, TokenRow, TrainError, eval_loss, train_sft};

fn tiny() -> LlamaConfig {
    LlamaConfig::new(16)
        .with_d_model(32)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_n_kv_heads(2)
        .with_max_seq_len(32)
}

fn rows() -> Vec<TokenRow> {
    // "a+b=" → "(a+b)%10": prompt 4 tokens, completion 1 token + eos(1)
    let mut out = vec![];
    for a in 0..5u32 {
        for b in 0..5u32 {
            out.push(TokenRow {
                ids: vec![3 + a, 13, 3 + b, 14, 3 + (a + b) % 10, 1],
                n_prompt: 4,
            });
        }
    }
    out
}

fn cfg(steps: usize) -> OptimConfig {
    OptimConfig {
        steps,
        batch_size: 8,
        grad_accum: 2,
        lr: 3e-3,
        warmup_steps: 5,
        min_lr_ratio: 0.1,
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

fn data() -> Batching {
    Batching {
        max_len: 32,
        pad_id: 0,
        seed: 3,
        pack: false,
    }
}

#[test]
fn loss_decreases_and_every_parameter_changes() {
    let device = Device::flex();
    let model = tiny().init(1, &device).unwrap();
    let before = named_tensors(&model).unwrap();
    let (l0, n) = eval_loss(&model, &rows(), 8, 32, 0, &device);
    assert_eq!(n, 50);
    let (trained, report) =
        train_sft(model, &rows(), &cfg(60), &data(), &device, |_, _| {}).unwrap();
    let (l1, _) = eval_loss(&trained, &rows(), 8, 32, 0, &device);
    assert!(l1 < 0.5 * l0, "eval loss {l0} -> {l1}");
    assert!(report.final_loss() < report.step_losses[0]);
    assert_eq!(report.step_losses.len(), 60);
    let after = named_tensors(&trained).unwrap();
    for ((name, _, a), (_, _, b)) in before.iter().zip(&after) {
        assert_ne!(a, b, "parameter {name} did not change");
    }
}

#[test]
fn same_seed_same_trajectory() {
    let device = Device::flex();
    let run = || {
        let model = tiny().init(5, &device).unwrap();
        train_sft(model, &rows(), &cfg(5), &data(), &device, |_, _| {})
            .unwrap()
            .1
            .step_losses
    };
    assert_eq!(run(), run());
}

/// Activation checkpointing (issue 16, part 4) recomputes activations instead of keeping
/// them: the same trajectory — step losses within float rounding of the run without it — and
/// the same trained weights.
#[test]
fn activation_checkpointing_gives_the_same_training() {
    let device = Device::flex();
    let run = |checkpointing: bool| {
        let opt = OptimConfig {
            activation_checkpointing: checkpointing,
            ..cfg(8)
        };
        let model = tiny().init(5, &device).unwrap();
        let (m, rep) = train_sft(model, &rows(), &opt, &data(), &device, |_, _| {}).unwrap();
        (rep.step_losses, named_tensors(&m).unwrap())
    };
    let (plain, plain_w) = run(false);
    let (ckpt, ckpt_w) = run(true);
    for (a, b) in plain.iter().zip(&ckpt) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "{plain:?} vs {ckpt:?}"
        );
    }
    let max_diff = plain_w
        .iter()
        .zip(&ckpt_w)
        .flat_map(|(a, b)| a.2.iter().zip(&b.2).map(|(x, y)| (x - y).abs()))
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "weights differ by up to {max_diff}");
}

/// LoRA (issue 16, part 1): a model trained on `(a+b) % 10` is LoRA-fine-tuned to
/// `(a+b+1) % 10`. Only the adapters train — every base weight, targeted or not, comes back
/// bit-identical — and the adapted model learns the new task.
#[test]
fn lora_trains_only_the_adapters_and_learns() {
    let device = Device::flex();
    let model = tiny().init(1, &device).unwrap();
    let (base, _) = train_sft(model, &rows(), &cfg(80), &data(), &device, |_, _| {}).unwrap();
    let shifted: Vec<TokenRow> = rows()
        .into_iter()
        .map(|mut r| {
            r.ids[4] = 3 + (r.ids[4] - 3 + 1) % 10;
            r
        })
        .collect();
    let lora = didact_core::LoraSpec {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: ["q_proj", "v_proj", "up_proj", "down_proj"]
            .map(String::from)
            .to_vec(),
    };
    let opt = OptimConfig {
        lora: Some(lora),
        lr: 1e-2,
        ..cfg(60)
    };
    let before = stored(&base);
    let (l0, _) = eval_loss(&base, &shifted, 8, 32, 0, &device);
    let (adapted, _) = train_sft(base, &shifted, &opt, &data(), &device, |_, _| {}).unwrap();
    let (l1, _) = eval_loss(&adapted, &shifted, 8, 32, 0, &device);
    assert!(l1 < 0.5 * l0, "LoRA eval loss on the new task {l0} -> {l1}");
    assert_eq!(didact_model::lora::adapters(&adapted).unwrap().len(), 2 * 4);
    // Every stored base is the weight from before training.
    let after = stored(&adapted);
    assert_eq!(before.len(), after.len());
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{name} changed under LoRA");
    }
}

/// Every stored parameter (an adapted weight's base, not its merged value) with its burn path;
/// the adapters' own factors are left out.
fn stored(m: &Llama) -> Vec<(String, Vec<f32>)> {
    use didact_model::burn::module::{Module, ModuleVisitor, Param};
    use didact_model::burn::tensor::Tensor;
    #[derive(Default)]
    struct Stored(Vec<String>, Vec<(String, Vec<f32>)>);
    impl ModuleVisitor for Stored {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let path = self.0.join(".");
            if !path.contains(".lora.") {
                let v = p
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap();
                self.1.push((path, v));
            }
        }
    }
    let mut s = Stored::default();
    m.visit(&mut s);
    s.1
}

struct Poisoned(didact_model::weights::RandomInit);
impl WeightSource for Poisoned {
    fn take(&mut self, name: &str, shape: &[usize]) -> didact_model::Result<Vec<f32>> {
        let mut v = self.0.take(name, shape)?;
        if name == "model.norm.weight" {
            v[0] = f32::NAN;
        }
        Ok(v)
    }
}

#[test]
fn nan_loss_stops_training_with_a_message() {
    let device = Device::flex();
    let mut src = Poisoned(didact_model::weights::RandomInit::new(1, 0.02));
    let model = Llama::from_source(&tiny(), &mut src, &device).unwrap();
    let err = train_sft(model, &rows(), &cfg(3), &data(), &device, |_, _| {}).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { step: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("last good checkpoint"));
}

/// Rows of different lengths (a 2-token to a 13-token completion).
fn ragged() -> Vec<TokenRow> {
    (0..24u32)
        .map(|i| {
            let n = 2 + (i as usize * 7) % 12;
            let mut ids = vec![3 + i % 5, 13, 3 + i % 7, 14];
            ids.extend((0..n as u32).map(|k| 3 + (i + k) % 11));
            ids.push(1);
            TokenRow { ids, n_prompt: 4 }
        })
        .collect()
}

/// Packing (issue 16): a row's loss is what it is alone, whatever its neighbours in the
/// packed sequence (block-diagonal mask, positions reset per row) — for Llama and GPT-2.
#[test]
fn a_packed_rows_loss_is_unchanged_by_its_neighbours() {
    use didact_train::{make_batch, make_packed_batch, sft::batch_nll_sum};
    let device = Device::flex();
    let rows = ragged();
    let refs: Vec<&TokenRow> = rows.iter().collect();
    let check = |nll: &dyn Fn(&didact_train::Batch) -> f64| {
        let packed = make_packed_batch(&refs, 32, 0, &device);
        let padded = make_batch(&refs, 32, 0, &device);
        assert!(
            packed.inputs.dims()[0] * packed.inputs.dims()[1]
                < padded.inputs.dims()[0] * padded.inputs.dims()[1]
        );
        assert_eq!(packed.n_target, padded.n_target);
        let alone: f64 = refs
            .iter()
            .map(|r| nll(&make_batch(std::slice::from_ref(r), 32, 0, &device)))
            .sum();
        let together = nll(&packed);
        assert!(
            (alone - together).abs() < 1e-4 * alone.abs(),
            "alone {alone} vs packed {together}"
        );
        // and a row's own loss inside a pack of two equals its loss alone
        let two = make_packed_batch(&refs[..2], 32, 0, &device);
        let pair = nll(&make_batch(&refs[..1], 32, 0, &device))
            + nll(&make_batch(&refs[1..2], 32, 0, &device));
        assert!((nll(&two) - pair).abs() < 1e-4 * pair.abs());
    };
    let llama = tiny().init(7, &device).unwrap();
    check(&|b| batch_nll_sum(&llama, b).into_scalar::<f32>() as f64);
    // GPT-2 (learned absolute positions): the transformers fixture (../shared/fixtures/gpt2).
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gpt2");
    let (_, gpt2) = didact_model::gpt2::load(&dir, &device).unwrap();
    check(&|b| batch_nll_sum(&gpt2, b).into_scalar::<f32>() as f64);
}

/// Training with packing follows the unpacked trajectory (the same loss per step, up to
/// float summation order).
#[test]
fn packed_training_follows_the_padded_trajectory() {
    let device = Device::flex();
    let train = |pack: bool| {
        let model = tiny().init(5, &device).unwrap();
        let data = Batching { pack, ..data() };
        train_sft(model, &ragged(), &cfg(8), &data, &device, |_, _| {})
            .unwrap()
            .1
    };
    let (padded, packed) = (train(false), train(true));
    for (a, b) in padded.step_losses.iter().zip(&packed.step_losses) {
        assert!(
            (a - b).abs() < 1e-4 * a.abs(),
            "{:?} vs {:?}",
            padded.step_losses,
            packed.step_losses
        );
    }
    assert_eq!(padded.tokens, packed.tokens);
}
