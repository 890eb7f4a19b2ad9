//! bf16 mixed-precision training with fp32 master weights (as torch.autocast + an fp32
//! optimizer): every parameter stays f32 and is what the optimizer updates, while a forward
//! pass in training mode reads it cast to bf16, so matmuls, attention and norms run in bf16
//! and the gradients flow back through the cast into the f32 weights. Built on burn's
//! parameter reparameterization: `Bf16Compute` is active only while its training flag is on,
//! so `valid()` (every sampler and every save) sees the exact f32 weights again. The logits are
//! widened to f32 by the models' `logits` (log-softmax and the losses stay in f32).

use burn::module::{Flag, Module, Param, Reparameterization, Reparameterizer};
use burn::tensor::{FloatDType, Tensor};

/// The bf16 view of one f32 parameter, while training.
#[derive(Module, Debug)]
pub struct Bf16Compute {
    /// On in training mode; `valid()` turns it off (the f32 weight is used as is).
    pub training: Param<Flag>,
}

impl Reparameterization for Bf16Compute {
    const NAME: &'static str = "bf16";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        match self.training.val().is_enabled() {
            true => base.cast(FloatDType::BF16),
            false => base,
        }
    }
}

struct Autocast;

impl Reparameterizer for Autocast {
    type Reparam = Bf16Compute;

    fn reparameterize<const D: usize>(
        &mut self,
        _path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<Bf16Compute>) {
        let view = Bf16Compute {
            training: Param::from_bool(true),
        };
        (param, Some(view))
    }
}

/// Give every parameter of `model` its bf16 training view. burn does not nest
/// reparameterizations: not for a model with LoRA adapters.
pub fn autocast_bf16<M: Module>(model: M) -> M {
    model.apply_reparameterization(Autocast)
}
