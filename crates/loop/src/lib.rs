//! didact-loop: the self-evolution loop. A run is rounds 0..=R; a round is generate → score →
//! filter → mix → train → evaluate (`round.rs`, one linear function), each stage's output
//! written atomically and recorded in `journal.jsonl` so a killed run resumes at the first
//! unfinished stage. Also the reports. Knows nothing of command-line parsing.

pub mod charts;
pub mod error;
pub mod evaluate;
pub mod generators;
pub mod journal;
pub mod progress;
pub mod report;
pub mod rm;
pub mod round;
pub mod run;
pub mod sweep;
pub mod task;

pub use didact_data::table::read_text_column;
pub use error::{LoopError, Result};
pub use run::{RunOptions, RunSummary, load_rounds, run};
