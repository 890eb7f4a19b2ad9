//! The suite: which checks exist, the flex reference they are compared with, running them on
//! one device (a panicking backend is a failed check, not an aborted suite) and the result
//! lines the test harness and `didact doctor` print.

pub use crate::outcome::Outcome;
use crate::{model_checks, recipe_check, step_checks};
use didact_model::burn::tensor::Device;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub device: String,
    pub check: String,
    pub outcome: Outcome,
    pub seconds: f64,
}

impl CheckResult {
    /// One aligned line: `PASS  tch-cpu   logits/llama   max |Δ| 2.1e-6 (≤ 1e-4)   0.1 s`.
    pub fn line(&self) -> String {
        format!(
            "{:<4}  {:<8} {:<20} {}  ({:.1} s)",
            self.outcome.label(),
            self.device,
            self.check,
            self.outcome.detail(),
            self.seconds
        )
    }
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// ../shared/fixtures; `None` skips the checks against transformers and TRL.
    pub fixtures: Option<PathBuf>,
    /// Also run the 2-round mini recipe (tens of seconds per device).
    pub recipe: bool,
    /// Run only checks whose name contains this.
    pub filter: Option<String>,
}

/// The flex results the other devices are compared with, computed once.
pub struct Reference {
    pub sft: Result<step_checks::StepResult, String>,
    pub lora: Result<step_checks::StepResult, String>,
    pub dpo: Result<step_checks::StepResult, String>,
    pub rm: Result<step_checks::StepResult, String>,
    pub recipe: Option<Result<recipe_check::RecipeResult, String>>,
}

fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => Err(panic_message(e)),
    }
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    let msg = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {msg}")
}

impl Reference {
    /// Run the reference computations on flex.
    pub fn compute(opts: &Options) -> Reference {
        let flex = Device::flex();
        let wants = |name: &str| opts.filter.as_deref().is_none_or(|f| name.contains(f));
        let recipe = (opts.recipe && wants("recipe/mini"))
            .then(|| guarded(|| recipe_check::run_mini(&flex, "flex-reference")));
        Reference {
            sft: guarded(|| step_checks::sft_step(&flex)),
            lora: guarded(|| step_checks::lora_step(&flex)),
            dpo: guarded(|| step_checks::dpo_step(&flex)),
            rm: guarded(|| step_checks::rm_step(&flex)),
            recipe,
        }
    }
}

/// Every check, in order, by name.
pub const CHECKS: &[&str] = &[
    "logits/llama",
    "logits/qwen2",
    "logits/gpt2",
    "greedy/llama",
    "greedy/qwen2",
    "greedy/gpt2",
    "score/llama",
    "dpo_logps/llama",
    "sft_step",
    "lora_step",
    "bf16_sft",
    "dpo_step",
    "rm_step",
    "sampling/seeded",
    "recipe/mini",
];

/// Run the suite on `device` (named `name` in the results), calling `on_result` as each check
/// finishes.
pub fn run_device(
    name: &str,
    device: &Device,
    reference: &Reference,
    opts: &Options,
    mut on_result: impl FnMut(&CheckResult),
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for &check in CHECKS {
        if opts.filter.as_deref().is_some_and(|f| !check.contains(f)) {
            continue;
        }
        let t0 = Instant::now();
        let outcome = match catch_unwind(AssertUnwindSafe(|| {
            one_check(check, device, reference, opts)
        })) {
            Ok(o) => o,
            Err(e) => Outcome::Fail(panic_message(e)),
        };
        let r = CheckResult {
            device: name.to_string(),
            check: check.to_string(),
            outcome,
            seconds: t0.elapsed().as_secs_f64(),
        };
        on_result(&r);
        out.push(r);
    }
    out
}

fn one_check(check: &str, device: &Device, reference: &Reference, opts: &Options) -> Outcome {
    let fixture = |f: &dyn Fn(&std::path::Path) -> Outcome| match &opts.fixtures {
        Some(dir) => f(dir),
        None => Outcome::Skip("no fixtures folder (../shared/fixtures or DIDACT_FIXTURES)".into()),
    };
    match check {
        "logits/llama" => fixture(&|d| model_checks::logits(d, "llama", device)),
        "logits/qwen2" => fixture(&|d| model_checks::logits(d, "qwen2", device)),
        "logits/gpt2" => fixture(&|d| model_checks::logits(d, "gpt2", device)),
        "greedy/llama" => fixture(&|d| model_checks::greedy(d, "llama", device)),
        "greedy/qwen2" => fixture(&|d| model_checks::greedy(d, "qwen2", device)),
        "greedy/gpt2" => fixture(&|d| model_checks::greedy(d, "gpt2", device)),
        "score/llama" => fixture(&|d| model_checks::score(d, device)),
        "dpo_logps/llama" => fixture(&|d| model_checks::dpo_logps(d, device)),
        "sft_step" => step_checks::compare_step(&reference.sft, step_checks::sft_step(device)),
        "bf16_sft" => step_checks::bf16_sft(device, &reference.sft),
        "lora_step" => step_checks::compare_step(&reference.lora, step_checks::lora_step(device)),
        "dpo_step" => step_checks::compare_step(&reference.dpo, step_checks::dpo_step(device)),
        "rm_step" => step_checks::compare_step(&reference.rm, step_checks::rm_step(device)),
        "sampling/seeded" => step_checks::seeded_sampling(device),
        "recipe/mini" => match &reference.recipe {
            None => Outcome::Skip("not requested here (the test suite runs it)".into()),
            Some(r) => recipe_check::compare(r, recipe_check::run_mini(device, "device")),
        },
        other => Outcome::Fail(format!("unknown check `{other}`")),
    }
}
