//! didact-train: trainers that turn tokenized rows into updated model weights — SFT with a
//! completion-only loss, token-level distillation (forward / reverse KL, generalized JSD,
//! on-policy), DPO on cached reference log-probs and the Bradley-Terry reward model,
//! all on one optimizer loop (`driver.rs`: AdamW, LR schedule, clipping, accumulation); held-out
//! loss and per-row log-probs. Knows nothing of recipes or Parquet; it samples only for
//! on-policy distillation.

pub mod batch;
pub mod bt_loss;
pub mod dpo;
pub mod dpo_loss;
pub mod driver;
pub mod error;
pub mod kd;
pub mod kd_loss;
pub mod reward;
pub mod schedule;
pub mod sft;

pub use batch::{Batch, TokenRow, make_batch, make_packed_batch, positions};
pub use bt_loss::{bt_loss, bt_loss_tensor};
pub use didact_core::OptimConfig;
pub use dpo::{DpoReport, PairRow, reference_logps, train_dpo};
pub use dpo_loss::{DpoLoss, DpoObjective, PairLogps};
pub use driver::{Batching, DriveReport, clip_global_norm};
pub use error::{Result, TrainError};
pub use kd::{KdConfig, KdReport, ModelTeacher, Teacher, TeacherView, kl_to_teacher, train_kd};
pub use kd_loss::KdObjective;
pub use reward::{RewardModel, RmEval, RmReport, eval_rm, score_rows, train_rm};
pub use sft::{
    SftReport, eval_loss, logp_sums_of, row_logp_sums, row_logprobs, row_logprobs_with, train_sft,
};
