//! didact-train: trainers that turn tokenized rows into updated model weights — SFT with a
//! completion-only loss (DPO and reward models slot in beside it), the LR schedule, gradient
//! clipping and held-out evaluation loss. Knows nothing of generation, recipes or Parquet.

pub mod batch;
pub mod error;
pub mod schedule;
pub mod sft;

pub use batch::{Batch, TokenRow, make_batch};
pub use error::{Result, TrainError};
pub use sft::{SftConfig, SftReport, eval_loss, row_logprobs, train_sft};
