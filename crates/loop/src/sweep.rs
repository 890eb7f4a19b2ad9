//! Sweeps: every point of a recipe's `[sweep]` grid is one ordinary run in its own directory
//! (resumed when it exists, so an interrupted sweep continues where it stopped; a bounded
//! number of points at a time), then
//! `comparison.csv` (point, swept values, every final-round metric), `comparison.md` and the
//! report (`report.md`, `charts/`: metrics by round per point, final metrics by swept value).

use crate::error::{Result, io};
use crate::report;
use crate::run::{RunOptions, run};
use didact_core::{Metrics, write_atomic};
use didact_model::burn::tensor::Device;
use didact_recipe::Loaded;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub struct SweepOptions {
    pub recipe: PathBuf,
    /// `--set` overrides applied to every point (before the point's own).
    pub sets: Vec<String>,
    pub out: PathBuf,
    pub quiet: bool,
    pub threads: usize,
    /// Points run at the same time (at least 1).
    pub jobs: usize,
}

/// Run the grid, `opts.jobs` points at a time (they share the backend's thread pool); returns
/// the markdown comparison. `say` receives progress lines (prefixed with the point when
/// several run at once).
pub fn run_sweep(
    base: &Loaded,
    opts: &SweepOptions,
    device: &Device,
    say: impl Fn(String) + Sync,
) -> Result<String> {
    let recipe = opts.recipe.display().to_string();
    let points = didact_recipe::sweep_points(&base.file, &recipe)?;
    let jobs = opts.jobs.clamp(1, points.len().max(1));
    say(format!(
        "didact sweep {recipe} → {} ({} points, {jobs} at a time)",
        opts.out.display(),
        points.len()
    ));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Metrics>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    let run_point = |i: usize| -> Result<Metrics> {
        let point = &points[i];
        let name = point.name.clone();
        let sets: Vec<String> = opts
            .sets
            .iter()
            .cloned()
            .chain(point.sets.iter().cloned())
            .collect();
        let loaded = didact_recipe::load(&opts.recipe, &sets)?;
        let dir = opts.out.join(&name);
        say(format!("[{}/{}] {name}", i + 1, points.len()));
        let run_opts = RunOptions {
            out: dir.clone(),
            resume: dir.join("journal.jsonl").exists(),
            // Progress bars of concurrent runs would overwrite each other.
            quiet: opts.quiet || jobs > 1,
            threads: opts.threads,
        };
        let summary = run(
            &loaded.plan,
            &didact_recipe::to_toml(&loaded.file),
            &run_opts,
            device.clone(),
            |r, m| {
                if !opts.quiet {
                    let row = report::summary_row(r, m);
                    say(if jobs > 1 {
                        format!("  {name}: {row}")
                    } else {
                        format!("  {row}")
                    });
                }
            },
        )?;
        Ok(summary
            .rounds
            .last()
            .map(|(_, m)| m.clone())
            .unwrap_or_default())
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= points.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = run_point(i);
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    results.lock().expect("no panics while holding the lock")[i] = Some(r);
                }
            });
        }
    });
    let mut finals: Vec<(String, Vec<String>, Metrics)> = Vec::new();
    let results = results.into_inner().expect("threads joined");
    for (point, r) in points.iter().zip(results) {
        match r {
            Some(Ok(last)) => finals.push((point.name.clone(), point.values.clone(), last)),
            Some(Err(e)) => return Err(e),
            // Not started because another point failed first.
            None => {}
        }
    }
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let keys: Vec<String> = base.file.sweep.keys().cloned().collect();
    let csv_path = opts.out.join("comparison.csv");
    write_atomic(&csv_path, comparison_csv(&keys, &finals).as_bytes()).map_err(io(&csv_path))?;
    let md = comparison_md(&recipe, &finals);
    let md_path = opts.out.join("comparison.md");
    write_atomic(&md_path, md.as_bytes()).map_err(io(&md_path))?;
    crate::charts::write_report(std::slice::from_ref(&opts.out), &opts.out, &[])?;
    Ok(md)
}

fn metric_names(finals: &[(String, Vec<String>, Metrics)]) -> Vec<String> {
    let mut names: Vec<String> = finals
        .iter()
        .flat_map(|(_, _, m)| m.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// point, the swept values (in key order; an arm's name), then every final metric (empty when
/// missing).
fn comparison_csv(keys: &[String], finals: &[(String, Vec<String>, Metrics)]) -> String {
    let metrics = metric_names(finals);
    let mut csv = std::iter::once("point".to_string())
        .chain(keys.iter().cloned())
        .chain(metrics.iter().cloned())
        .collect::<Vec<_>>()
        .join(",");
    csv.push('\n');
    for (name, point, m) in finals {
        let mut row = vec![name.clone()];
        row.extend(point.iter().map(|v| v.replace(',', ";").replace('"', "")));
        row.extend(metrics.iter().map(|k| {
            m.get(k)
                .filter(|v| v.is_finite())
                .map(|v| v.to_string())
                .unwrap_or_default()
        }));
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    csv
}

fn comparison_md(recipe: &str, finals: &[(String, Vec<String>, Metrics)]) -> String {
    let metrics = metric_names(finals);
    let shown: Vec<&str> = [
        "eval/loss_real",
        "eval/ppl_real",
        "eval/accuracy",
        "diversity/distinct_2",
        "diversity/self_bleu",
        "data/synthetic_fraction",
        "alerts/fired",
    ]
    .into_iter()
    .filter(|k| metrics.iter().any(|m| m == k))
    .collect();
    let mut md = format!(
        "# sweep {recipe}\n\nFinal-round metrics per point (all metrics: comparison.csv).\n\n| point | {} |\n|---|{}\n",
        shown.join(" | "),
        "---:|".repeat(shown.len())
    );
    for (name, _, m) in finals {
        let cells: Vec<String> = shown
            .iter()
            .map(|k| {
                m.get(*k)
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        md.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    md
}
