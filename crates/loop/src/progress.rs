//! Progress bars (indicatif, on stderr, hidden when stderr is not a terminal or the run is quiet).

use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(len: u64, prefix: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{bar:30.cyan/blue}] {pos}/{len} ({per_sec}, ETA {eta}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

/// A trainer's per-step callback that advances `pb` and shows the step's loss.
pub fn on_loss(pb: &ProgressBar) -> impl FnMut(usize, f64) + '_ {
    move |_, loss| {
        pb.set_message(format!("loss {loss:.4}"));
        pb.inc(1);
    }
}
