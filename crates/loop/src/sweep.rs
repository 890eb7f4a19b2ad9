//! Sweeps: every point of a recipe's `[sweep]` grid is one ordinary run in its own directory
//! (resumed when it exists, so an interrupted sweep continues where it stopped; a bounded
//! number of points at a time), then
//! `comparison.csv` (point, swept values, every final-round metric), `comparison.md` and the
//! report (`report.md`, `charts/`: metrics by round per point, final metrics by swept value).
//! A `"run.seed"` key makes replicates: `comparison_seeds.csv` has each group's mean and 95 %
//! confidence half-width per metric (`replicates.rs`), `comparison.md` shows mean ± CI, and
//! the final-metric charts draw the means with shaded bands. With a launcher each point's
//! `didact run` is handed to a command (`sbatch --wait`, `ssh host`, a Ray job) and its result
//! read back from the point's directory, so a sweep spreads over a cluster.

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
    /// Hand each point to this command instead of running it in-process: `{cmd}` is replaced
    /// by the point's `didact run …` (shell-quoted), e.g. `sbatch --wait --wrap "{cmd}"`,
    /// `ssh gpu1 "{cmd}"`, `bash -c "{cmd}"`.
    pub launcher: Option<Launcher>,
}

/// `didact sweep --launcher`: the template and the didact binary the points run with.
pub struct Launcher {
    pub template: String,
    pub exe: PathBuf,
}

/// `s` as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Run one point through the launcher: its resolved recipe is written beside its directory
/// (`<point>.toml`), the launcher runs `didact run <point>.toml --out <point> --quiet
/// [--resume]`, and the point's last round is read back from disk.
fn launch_point(
    l: &Launcher,
    loaded: &Loaded,
    dir: &std::path::Path,
    name: &str,
) -> Result<Metrics> {
    let parent = dir.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let recipe = parent.join(format!("{name}.toml"));
    write_atomic(&recipe, didact_recipe::to_toml(&loaded.file).as_bytes()).map_err(io(&recipe))?;
    let mut words = vec![
        l.exe.display().to_string(),
        "run".into(),
        recipe.display().to_string(),
        "--out".into(),
        dir.display().to_string(),
        "--quiet".into(),
    ];
    if dir.join("journal.jsonl").exists() {
        words.push("--resume".into());
    }
    let cmd: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
    let line = l.template.replace("{cmd}", &cmd.join(" "));
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&line)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(io(std::path::Path::new("sh")))?;
    let bad = |msg: String| crate::error::LoopError::RunDir {
        path: dir.to_path_buf(),
        msg,
    };
    if !status.success() {
        return Err(bad(format!(
            "point {name}: the launcher failed ({status}): {line}"
        )));
    }
    let rounds = crate::run::load_rounds(dir)?;
    let want = loaded.plan.rounds as usize + 1;
    if rounds.len() < want {
        return Err(bad(format!(
            "point {name}: the launcher returned with {} of {want} rounds finished: {line}",
            rounds.len()
        )));
    }
    Ok(rounds.last().map(|(_, m)| m.clone()).unwrap_or_default())
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
        if let Some(l) = &opts.launcher {
            return launch_point(l, &loaded, &dir, &name);
        }
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
    let mut md = comparison_md(&recipe, &finals);
    if let Some(at) = keys.iter().position(|k| k == crate::replicates::SEED_KEY) {
        let pts: Vec<(Vec<String>, &Metrics)> =
            finals.iter().map(|(_, v, m)| (v.clone(), m)).collect();
        let groups = crate::replicates::group(&pts, at);
        let others: Vec<String> = keys
            .iter()
            .filter(|k| k.as_str() != crate::replicates::SEED_KEY)
            .cloned()
            .collect();
        let path = opts.out.join("comparison_seeds.csv");
        write_atomic(&path, seeds_csv(&others, &groups).as_bytes()).map_err(io(&path))?;
        md.push_str(&seeds_md(&others, &groups));
    }
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

/// The other keys' values, `seeds`, then each metric's mean and `<metric>:ci95` (the 95 %
/// confidence half-width; empty for one seed).
fn seeds_csv(keys: &[String], groups: &[crate::replicates::Group]) -> String {
    let mut names: Vec<&String> = groups.iter().flat_map(|g| g.mean.keys()).collect();
    names.sort();
    names.dedup();
    let mut header: Vec<String> = keys.to_vec();
    header.push("seeds".into());
    for n in &names {
        header.push(n.to_string());
        header.push(format!("{n}:ci95"));
    }
    let mut csv = header.join(",") + "\n";
    let cell = |m: &Metrics, n: &str| m.get(n).map(|v| v.to_string()).unwrap_or_default();
    for g in groups {
        let mut row: Vec<String> = g.values.iter().map(|v| v.replace(',', ";")).collect();
        row.push(g.seeds.to_string());
        for n in &names {
            row.push(cell(&g.mean, n));
            row.push(cell(&g.ci95, n));
        }
        csv.push_str(&(row.join(",") + "\n"));
    }
    csv
}

fn seeds_md(keys: &[String], groups: &[crate::replicates::Group]) -> String {
    let shown: Vec<&str> = [
        "eval/loss_real",
        "eval/accuracy",
        "truth/kl",
        "diversity/distinct_2",
    ]
    .into_iter()
    .filter(|k| groups.iter().any(|g| g.mean.contains_key(*k)))
    .collect();
    let mut md = format!(
        "\n## Over seeds (mean ± 95 % CI, comparison_seeds.csv)\n\n| {} | seeds | {} |\n|{}---:|{}\n",
        keys.join(" | "),
        shown.join(" | "),
        "---|".repeat(keys.len()),
        "---:|".repeat(shown.len())
    );
    for g in groups {
        let cells: Vec<String> = shown
            .iter()
            .map(|k| match (g.mean.get(*k), g.ci95.get(*k)) {
                (Some(m), Some(c)) => format!("{m:.4} ± {c:.4}"),
                (Some(m), None) => format!("{m:.4}"),
                _ => "–".into(),
            })
            .collect();
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            g.values.join(" | "),
            g.seeds,
            cells.join(" | ")
        ));
    }
    md
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_groups_are_written_with_means_and_half_widths() {
        let m = |x: f64| -> Metrics { [("eval/loss_real".to_string(), x)].into() };
        let (a, b, c) = (m(1.0), m(3.0), m(5.0));
        let pts = vec![
            (vec!["replace".to_string(), "1".to_string()], &a),
            (vec!["replace".to_string(), "2".to_string()], &b),
            (vec!["accumulate".to_string(), "1".to_string()], &c),
        ];
        let groups = crate::replicates::group(&pts, 1);
        let csv = seeds_csv(&["mix.mode".to_string()], &groups);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "mix.mode,seeds,eval/loss_real,eval/loss_real:ci95"
        );
        assert_eq!(
            lines[1],
            format!("replace,2,2,{}", 12.706 * 2f64.sqrt() / 2f64.sqrt())
        );
        assert_eq!(lines[2], "accumulate,1,5,");
        let md = seeds_md(&["mix.mode".to_string()], &groups);
        assert!(md.contains("| replace | 2 | 2.0000 ± 12.7060 |"), "{md}");
    }
}
