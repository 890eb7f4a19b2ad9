//! The one call into burn's fused attention op. Owns the masking convention: callers give a
//! bool mask with burn's meaning (`true` = may **not** attend) and this module hands each
//! backend what it actually needs.
//!
//! Upstream behaviour worked around (burn 0.22.1, burn-tch 0.22.1, `ops/module.rs`
//! `attention`): burn-tch passes burn's bool mask straight to torch's
//! `scaled_dot_product_attention`, whose bool mask means the opposite (`true` = **may**
//! attend). Every left-padded batch on LibTorch then attends exactly where it must not. On a
//! plain LibTorch device the mask is inverted here, once. Autodiff devices never reach a
//! backend's fused op (burn-autodiff 0.22.1 decomposes attention with burn's own
//! `attention_fallback`, which uses burn's convention), so they get the mask unchanged. The
//! conformance suite (crates/conformance) checks the batched-greedy case on every device, so
//! an upstream fix that flips the convention again fails there, not silently.

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
    if torch_reads_mask_inverted(&mask) {
        return mask.bool_not();
    }
    mask
}

#[cfg(feature = "tch")]
fn torch_reads_mask_inverted(mask: &Tensor<4, Bool>) -> bool {
    matches!(
        mask.device().as_dispatch(),
        burn_dispatch::DispatchDevice::LibTorch(_)
    )
}

#[cfg(not(feature = "tch"))]
fn torch_reads_mask_inverted(_mask: &Tensor<4, Bool>) -> bool {
    false
}
