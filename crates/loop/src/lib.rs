//! didact-loop: the self-evolution loop. A run is rounds 0..=R (`run.rs`); a round is its
//! stages in recipe order (`round.rs`, top to bottom; the stages themselves in `stages/`),
//! each stage's output written atomically and recorded in `journal.jsonl` so a killed run
//! resumes at the first unfinished stage. `lineage.rs` decides which checkpoint each role
//! uses, `seeds.rs` names every random stream, `layout.rs` every path. Also `train-rm`
//! (`rm.rs`), sweeps (seed replicates: `replicates.rs`) and reports. Knows nothing of command-line parsing.

pub mod calibrate;
pub mod charts;
pub mod env;
pub mod error;
pub mod job;
pub mod journal;
pub mod layout;
pub mod lineage;
pub mod memory;
pub mod progress;
pub mod replicates;
pub mod report;
pub mod rm;
pub mod round;
pub mod run;
pub mod seeds;
pub mod stages;
pub mod sweep;
pub mod task;

pub use didact_data::table::read_text_column;
pub use error::{LoopError, Result};
pub use run::{RunOptions, RunSummary, load_rounds, run};
