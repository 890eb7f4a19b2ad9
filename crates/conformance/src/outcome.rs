//! What one check found: pass or fail with the measured difference and its tolerance, or
//! skipped and why.

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Within tolerance; the detail gives the measured difference and the tolerance.
    Pass(String),
    Fail(String),
    /// Not run, and why (no fixtures folder, not requested).
    Skip(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Outcome::Pass(s) | Outcome::Fail(s) | Outcome::Skip(s) => s,
        }
    }

    /// `Pass` when `ok`, else `Fail`, with the same detail.
    pub fn check(ok: bool, detail: String) -> Outcome {
        if ok {
            Outcome::Pass(detail)
        } else {
            Outcome::Fail(detail)
        }
    }
}
