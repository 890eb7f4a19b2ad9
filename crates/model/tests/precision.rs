//! bf16 mixed precision (issue 16, part 2): in training mode every parameter is read as bf16
//! (the passes compute in bf16) while the stored weights stay f32; the logits come out f32;
//! `valid()` gives back the exact f32 weights and f32 compute.

use didact_model::burn::module::Module;
use didact_model::burn::tensor::{DType, Device, Int, Tensor, TensorData};
use didact_model::checkpoint::named_tensors;
use didact_model::{LlamaConfig, Positions, precision};

#[test]
fn training_mode_computes_in_bf16_on_f32_weights_and_valid_restores_f32() {
    let device = Device::flex();
    let cfg = LlamaConfig::new(32).with_d_model(32).with_max_seq_len(16);
    let model = cfg.init(3, &device).unwrap();
    let before = named_tensors(&model).unwrap();
    let ids = Tensor::<2, Int>::from_data(TensorData::new((1..9i64).collect(), [1, 8]), &device);
    let f32_logits = model.forward(ids.clone());

    let ad = device.clone().autodiff();
    let train = precision::autocast_bf16(model).fork(&ad).train();
    assert_eq!(train.embed_tokens.weight.val().dtype(), DType::BF16);
    assert_eq!(
        train.layers[0].attn.q_proj.weight.base().dtype(),
        DType::F32
    );
    let ids_ad = ids.clone().fork(&ad);
    let hidden = train.hidden(ids_ad.clone(), &Positions::causal(), None);
    assert_eq!(hidden.dtype(), DType::BF16);
    let logits = train.forward(ids_ad);
    assert_eq!(logits.dtype(), DType::F32);
    // bf16 rounding moves the logits a little, not a lot.
    let diff = (logits.valid() - f32_logits.clone())
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(diff > 0.0 && diff < 0.05, "bf16 vs f32 logits: {diff}");

    let back = train.valid().materialize();
    assert_eq!(back.embed_tokens.weight.val().dtype(), DType::F32);
    assert_eq!(
        named_tensors(&back).unwrap(),
        before,
        "the f32 weights, exactly"
    );
    let again = back.forward(ids);
    let d = (again - f32_logits).abs().max().into_scalar::<f32>();
    assert_eq!(d, 0.0);
}
