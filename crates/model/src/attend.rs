//! The one call into burn's fused attention op. Owns the masking convention: callers give a
//! bool mask with burn's meaning (`true` = may **not** attend) and this module hands each
//! backend what it actually needs.
//!

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

/// Scaled dot-product attention, softmax scale `1/sqrt(head_dim)`.
///
/// # Shapes
/// - `q`: `[B, H, T, hd]`, `k`/`v`: `[B, H, T_k, hd]`, `mask`: `[B, H, T, T_k]` → `[B, H, T, hd]`
pub fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    is_causal: bool,
) -> Tensor<4> {
    let opts = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal,
    };
    attention(q, k, v, mask.map(backend_mask), None, opts)
}

/// burn's "true = masked" as the tensor's backend reads it.
fn backend_mask(mask: Tensor<4, Bool>) -> Tensor<4, Bool> {
    mask
}
