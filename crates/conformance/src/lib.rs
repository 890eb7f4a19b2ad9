//! didact-conformance: one suite of numeric checks that every device must pass before it is
//! supported. Each check runs the same didact code on the device under test and compares
//! with a reference: Hugging Face transformers and TRL (../shared/fixtures) where a fixture
//! exists, and the pure-Rust `flex` backend for whole training steps and a mini recipe.
//!
//! The suite is a library so that the test harness (`tests/devices.rs`, every compiled-in
//! device) and `didact doctor` (one device, on a user's machine) run the very same checks.

pub mod fixtures;
pub mod model_checks;
pub mod outcome;
pub mod recipe_check;
pub mod step_checks;
pub mod suite;
pub mod workload;

pub use suite::{CheckResult, Options, Outcome, Reference, run_device};
