//! The report of one or more run directories (and sweep directories, expanded to their
//! points): `report.md` and `charts/` — every metric against round with one line per run and
//! the rounds where a collapse alert on that metric fired marked; for a sweep, every final
//! metric against the swept value. A sweep over `run.seed` is charted by round as one line per
//! group of replicates — the mean over seeds with a shaded 95 % confidence band. Reads only
//! what runs wrote to disk.

use crate::error::{LoopError, Result, io};
use crate::report;
use crate::run::load_rounds;
use didact_chart::{Chart, Series};
use didact_core::{Metrics, write_atomic};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One run as the report sees it (or a group of seed replicates: the mean by round).
#[derive(Clone)]
pub struct RunData {
    pub label: String,
    pub dir: PathBuf,
    pub rounds: Vec<(u32, Metrics)>,
    /// (round, metric, the alert's line) from `alerts.jsonl`.
    pub alerts: Vec<(u32, String, String)>,
    /// A replicate group's 95 % confidence half-width of each mean by round (empty for a run).
    pub ci95: Vec<(u32, Metrics)>,
}

/// A sweep directory: its points' swept values and final metrics (`comparison.csv`).
pub struct SweepData {
    pub dir: PathBuf,
    pub keys: Vec<String>,
    /// (point name, swept values in key order, final metrics).
    pub points: Vec<(String, Vec<String>, Metrics)>,
}

/// The alert's line as `alert_line` prints it, from its `alerts.jsonl` object.
fn alert_text(v: &serde_json::Value) -> String {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    format!(
        "round {} `{}` = {:.4} vs {:.4} ({:+.1} % in the bad direction, {}) → {}",
        v["round"],
        v["metric"].as_str().unwrap_or(""),
        f("value"),
        f("baseline"),
        f("change_pct"),
        v["kind"].as_str().unwrap_or(""),
        v["action"].as_str().unwrap_or("")
    )
}

fn read_alerts(dir: &Path) -> Result<Vec<(u32, String, String)>> {
    let p = dir.join("alerts.jsonl");
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| LoopError::RunDir {
            path: p.clone(),
            msg: format!("line {}: {e}", i + 1),
        })?;
        let round = v["round"].as_u64().unwrap_or(0) as u32;
        let metric = v["metric"].as_str().unwrap_or("").to_string();
        out.push((round, metric, alert_text(&v)));
    }
    Ok(out)
}

pub fn read_run(dir: &Path, label: &str) -> Result<RunData> {
    let rounds = load_rounds(dir)?;
    if rounds.is_empty() {
        return Err(LoopError::RunDir {
            path: dir.to_path_buf(),
            msg: "no finished rounds yet".into(),
        });
    }
    Ok(RunData {
        label: label.to_string(),
        dir: dir.to_path_buf(),
        rounds,
        alerts: read_alerts(dir)?,
        ci95: vec![],
    })
}

/// Parse `comparison.csv`: swept keys are the columns without a `/` (keys are `section.key`,
/// metrics `group/name`).
pub fn read_sweep(dir: &Path) -> Result<SweepData> {
    let p = dir.join("comparison.csv");
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let keys: Vec<String> = header
        .iter()
        .skip(1)
        .filter(|h| !h.contains('/'))
        .map(|h| h.to_string())
        .collect();
    let mut points = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        let name = cells.first().copied().unwrap_or("").to_string();
        let values: Vec<String> = cells[1..=keys.len().min(cells.len() - 1)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut m = Metrics::new();
        for (h, c) in header.iter().zip(&cells).skip(1 + keys.len()) {
            if let Ok(v) = c.parse::<f64>() {
                m.insert(h.to_string(), v);
            }
        }
        points.push((name, values, m));
    }
    Ok(SweepData {
        dir: dir.to_path_buf(),
        keys,
        points,
    })
}

/// The runs and sweeps named on the command line: a sweep directory (it has
/// `comparison.csv`) contributes each of its points as a run labelled by the point's name.
pub fn collect(dirs: &[PathBuf]) -> Result<(Vec<RunData>, Vec<SweepData>)> {
    let mut runs = Vec::new();
    let mut sweeps = Vec::new();
    for d in dirs {
        if d.join("comparison.csv").exists() {
            let s = read_sweep(d)?;
            for (name, _, _) in &s.points {
                let label = if dirs.len() > 1 {
                    format!("{}/{name}", dir_label(d))
                } else {
                    name.clone()
                };
                runs.push(read_run(&d.join(name), &label)?);
            }
            sweeps.push(s);
        } else {
            runs.push(read_run(d, &dir_label(d))?);
        }
    }
    Ok((runs, sweeps))
}

fn dir_label(d: &Path) -> String {
    d.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| d.display().to_string())
}

/// `eval/loss_real` → `eval-loss_real`.
fn file_stem(metric: &str) -> String {
    metric.replace(['/', ' '], "-")
}

/// Metrics worth a chart: everything but wall-clock timings, and only those starting with one
/// of `only` when it is not empty.
fn charted(name: &str, only: &[String]) -> bool {
    !name.starts_with("time/")
        && (only.is_empty() || only.iter().any(|p| name.starts_with(p.as_str())))
}

/// Write one chart as `out/<metric>.svg|png`; `false` when it has no finite point to draw.
fn write_chart(chart: &Chart, out: &Path, name: &str) -> Result<bool> {
    match didact_chart::write(chart, &out.join(file_stem(name))) {
        Ok(()) => Ok(true),
        Err(didact_chart::ChartError::Empty(_)) => Ok(false),
        Err(e) => Err(LoopError::RunDir {
            path: out.to_path_buf(),
            msg: e.to_string(),
        }),
    }
}

/// Every metric against round, one line per run; returns the metric names charted.
pub fn round_charts(runs: &[RunData], out: &Path, only: &[String]) -> Result<Vec<String>> {
    let names: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| {
            r.rounds
                .iter()
                .flat_map(|(_, m)| m.keys().map(|k| k.as_str()))
        })
        .filter(|n| charted(n, only))
        .collect();
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut done = Vec::new();
    for name in names {
        let series: Vec<Series> = runs
            .iter()
            .map(|run| {
                let value = |r: u32| {
                    run.rounds
                        .iter()
                        .find(|(x, _)| *x == r)
                        .and_then(|(_, m)| m.get(name).copied())
                };
                Series {
                    label: run.label.clone(),
                    points: run
                        .rounds
                        .iter()
                        .filter_map(|(r, m)| m.get(name).map(|v| (*r as f64, *v)))
                        .collect(),
                    marks: run
                        .alerts
                        .iter()
                        .filter(|(_, metric, _)| metric == name)
                        .filter_map(|(r, _, _)| value(*r).map(|v| (*r as f64, v)))
                        .collect(),
                    band: run
                        .ci95
                        .iter()
                        .filter_map(|(r, ci)| {
                            let (m, c) = (value(*r)?, ci.get(name)?);
                            Some((*r as f64, m - c, m + c))
                        })
                        .collect(),
                }
            })
            .collect();
        let chart = Chart {
            title: format!("{name} by round"),
            x_label: "round".into(),
            y_label: name.to_string(),
            series,
            x_categories: vec![],
            mark_label: "collapse alert".into(),
        };
        if write_chart(&chart, out, name)? {
            done.push(name.to_string());
        }
    }
    Ok(done)
}

/// The lines of the by-round charts: every run, except that the points of a sweep over
/// `run.seed` become one line per group of replicates (mean by round, 95 % CI half-widths).
pub fn by_round_lines(runs: &[RunData], sweeps: &[SweepData]) -> Vec<RunData> {
    let mut grouped: Vec<PathBuf> = Vec::new();
    let mut groups: Vec<RunData> = Vec::new();
    for s in sweeps {
        let Some(at) = s.keys.iter().position(|k| k == crate::replicates::SEED_KEY) else {
            continue;
        };
        let others = |v: &[String]| -> Vec<String> {
            v.iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, x)| x.clone())
                .collect()
        };
        let mut keys: Vec<Vec<String>> = Vec::new();
        for p in &s.points {
            if !keys.contains(&others(&p.1)) {
                keys.push(others(&p.1));
            }
        }
        for key in keys {
            let members: Vec<&RunData> = s
                .points
                .iter()
                .filter(|p| others(&p.1) == key)
                .filter_map(|p| runs.iter().find(|r| r.dir == s.dir.join(&p.0)))
                .collect();
            grouped.extend(members.iter().map(|r| r.dir.clone()));
            groups.push(replicate_mean(&key.join("_"), &s.dir, &members));
        }
    }
    runs.iter()
        .filter(|r| !grouped.contains(&r.dir))
        .cloned()
        .chain(groups)
        .collect()
}

/// Mean and 95 % CI half-width of every metric by round over `members`.
fn replicate_mean(label: &str, dir: &Path, members: &[&RunData]) -> RunData {
    let rounds: BTreeSet<u32> = members
        .iter()
        .flat_map(|m| m.rounds.iter().map(|(r, _)| *r))
        .collect();
    let (mut mean, mut ci95) = (Vec::new(), Vec::new());
    for r in rounds {
        let at: Vec<&Metrics> = members
            .iter()
            .filter_map(|m| m.rounds.iter().find(|(x, _)| *x == r).map(|(_, v)| v))
            .collect();
        let names: BTreeSet<&String> = at.iter().flat_map(|m| m.keys()).collect();
        let (mut mr, mut cr) = (Metrics::new(), Metrics::new());
        for n in names {
            let vals: Vec<f64> = at.iter().filter_map(|m| m.get(n).copied()).collect();
            let (m, c) = crate::replicates::mean_ci(&vals);
            mr.insert(n.clone(), m);
            if c.is_finite() {
                cr.insert(n.clone(), c);
            }
        }
        mean.push((r, mr));
        ci95.push((r, cr));
    }
    RunData {
        label: format!("{label} (mean of {} seeds)", members.len()),
        dir: dir.to_path_buf(),
        rounds: mean,
        alerts: vec![],
        ci95,
    }
}

/// The swept key on the x axis: the first key whose values are all numbers and not all equal,
/// else the first key (categorical). The other keys' values name the lines.
fn x_key(s: &SweepData) -> usize {
    (0..s.keys.len())
        .find(|&k| {
            let vals: BTreeSet<&str> = s.points.iter().map(|p| p.1[k].as_str()).collect();
            vals.len() > 1 && vals.iter().all(|v| v.parse::<f64>().is_ok())
        })
        .unwrap_or(0)
}

/// A sweep with a `run.seed` key as one point per group of replicates (the means), with each
/// mean's 95 % confidence half-width by point name.
fn over_seeds(s: &SweepData) -> Option<(SweepData, Vec<Metrics>)> {
    let at = s
        .keys
        .iter()
        .position(|k| k == crate::replicates::SEED_KEY)?;
    let pts: Vec<(Vec<String>, &Metrics)> = s.points.iter().map(|p| (p.1.clone(), &p.2)).collect();
    let groups = crate::replicates::group(&pts, at);
    let keys = s
        .keys
        .iter()
        .filter(|k| k.as_str() != crate::replicates::SEED_KEY)
        .cloned()
        .collect();
    let cis = groups.iter().map(|g| g.ci95.clone()).collect();
    let points = groups
        .into_iter()
        .map(|g| (g.values.join("_"), g.values, g.mean))
        .collect();
    let agg = SweepData {
        dir: s.dir.clone(),
        keys,
        points,
    };
    Some((agg, cis))
}

/// Every final metric against the swept value (over seeds: the means, with 95 % confidence
/// bands); returns (x key, metric names charted).
pub fn sweep_charts(s: &SweepData, out: &Path, only: &[String]) -> Result<(String, Vec<String>)> {
    let (agg, cis);
    let (s, cis): (&SweepData, Option<&[Metrics]>) = match over_seeds(s) {
        Some(x) => {
            (agg, cis) = x;
            (&agg, Some(&cis[..]))
        }
        None => (s, None),
    };
    if s.keys.is_empty() || s.points.is_empty() {
        return Ok((String::new(), vec![]));
    }
    let k = x_key(s);
    let numeric = s.points.iter().all(|p| p.1[k].parse::<f64>().is_ok());
    let mut categories: Vec<String> = Vec::new();
    if !numeric {
        for p in &s.points {
            if !categories.contains(&p.1[k]) {
                categories.push(p.1[k].clone());
            }
        }
    }
    let x_of = |v: &str| -> f64 {
        if numeric {
            v.parse().unwrap_or(f64::NAN)
        } else {
            categories.iter().position(|c| c == v).unwrap_or(0) as f64
        }
    };
    // Lines: the values of the other keys.
    let line_of = |vals: &[String]| -> String {
        let rest: Vec<String> = s
            .keys
            .iter()
            .zip(vals)
            .enumerate()
            .filter(|(i, _)| *i != k)
            .map(|(_, (key, v))| format!("{key}={v}"))
            .collect();
        if rest.is_empty() {
            dir_label(&s.dir)
        } else {
            rest.join(", ")
        }
    };
    let mut lines: Vec<String> = Vec::new();
    for p in &s.points {
        let l = line_of(&p.1);
        if !lines.contains(&l) {
            lines.push(l);
        }
    }
    let names: BTreeSet<&str> = s
        .points
        .iter()
        .flat_map(|p| p.2.keys().map(|k| k.as_str()))
        .filter(|n| charted(n, only))
        .collect();
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut done = Vec::new();
    for name in names {
        let series = lines
            .iter()
            .map(|l| {
                let mine = || {
                    s.points
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| &line_of(&p.1) == l)
                };
                let mut points: Vec<(f64, f64)> = mine()
                    .filter_map(|(_, p)| p.2.get(name).map(|v| (x_of(&p.1[k]), *v)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let band = match cis {
                    Some(cis) => mine()
                        .filter_map(|(i, p)| {
                            let (m, c) = (p.2.get(name)?, cis[i].get(name)?);
                            Some((x_of(&p.1[k]), m - c, m + c))
                        })
                        .collect(),
                    None => vec![],
                };
                Series {
                    label: l.clone(),
                    points,
                    marks: vec![],
                    band,
                }
            })
            .collect();
        let chart = Chart {
            title: format!("final {name} by {}", s.keys[k]),
            x_label: s.keys[k].clone(),
            y_label: name.to_string(),
            series,
            x_categories: categories.clone(),
            mark_label: String::new(),
        };
        if write_chart(&chart, out, name)? {
            done.push(name.to_string());
        }
    }
    Ok((s.keys[k].clone(), done))
}

/// Metrics shown first in the report (the collapse instruments); the rest follow by name.
const HEADLINE: &[&str] = &[
    "eval/loss_real",
    "eval/ppl_real",
    "eval/accuracy",
    "truth/kl",
    "truth/nll",
    "truth/model_entropy",
    "diversity/distinct_2",
    "diversity/self_bleu",
    "tail/real_rare_coverage",
    "tail/gen_rare_share",
    "dist/kl_real_gen",
];

fn ordered(names: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = names
        .iter()
        .filter(|n| HEADLINE.contains(&n.as_str()))
        .collect();
    v.sort_by_key(|n| HEADLINE.iter().position(|h| h == n));
    v.extend(names.iter().filter(|n| !HEADLINE.contains(&n.as_str())));
    v
}

/// Write `out/report.md` and `out/charts/` for `dirs` (charts of the metrics starting with one
/// of `only`, or of all when it is empty); returns the markdown.
/// Held-out accuracy by operand length and round (`eval/accuracy_len_<n>`, `[eval] by_length`)
/// as a heat-map per run — rows the lengths, columns the rounds; `None` when the run has no
/// such metric. Written as `out/accuracy_by_length[-<run>].svg|png`.
pub fn length_heatmap(run: &RunData, out: &Path, suffix: &str) -> Result<Option<String>> {
    let mut lengths: Vec<u32> = run
        .rounds
        .iter()
        .flat_map(|(_, m)| m.keys())
        .filter_map(|k| k.strip_prefix("eval/accuracy_len_")?.parse().ok())
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    if lengths.is_empty() {
        return Ok(None);
    }
    let h = didact_chart::Heatmap {
        title: format!("{}: held-out accuracy by operand length", run.label),
        x_label: "round".into(),
        y_label: "digits per operand".into(),
        columns: run.rounds.iter().map(|(r, _)| r.to_string()).collect(),
        rows: lengths.iter().map(|n| n.to_string()).collect(),
        values: lengths
            .iter()
            .map(|n| {
                let key = format!("eval/accuracy_len_{n}");
                run.rounds
                    .iter()
                    .map(|(_, m)| m.get(&key).copied().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect(),
        range: Some((0.0, 1.0)),
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let stem = format!("accuracy_by_length{suffix}");
    didact_chart::write_heatmap(&h, &out.join(&stem)).map_err(|e| LoopError::RunDir {
        path: out.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(Some(stem))
}

pub fn write_report(dirs: &[PathBuf], out: &Path, only: &[String]) -> Result<String> {
    let (runs, sweeps) = collect(dirs)?;
    let charts = out.join("charts");
    let charted = round_charts(&by_round_lines(&runs, &sweeps), &charts, only)?;
    let mut md = String::from(
        "# didact report\n\n| run | directory | rounds | alerts |\n|---|---|---:|---:|\n",
    );
    for r in &runs {
        md.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            r.label,
            r.dir.display(),
            r.rounds.len(),
            r.alerts.len()
        ));
    }
    let all_alerts: Vec<(&str, &str)> = runs
        .iter()
        .flat_map(|r| r.alerts.iter().map(|a| (r.label.as_str(), a.2.as_str())))
        .collect();
    if !all_alerts.is_empty() {
        md.push_str("\n## Collapse alerts\n\n");
        for (label, line) in all_alerts {
            md.push_str(&format!("- **{label}** {line}\n"));
        }
    }
    for (i, s) in sweeps.iter().enumerate() {
        let sub = if sweeps.len() == 1 {
            "sweep".to_string()
        } else {
            format!("sweep-{i}")
        };
        let (key, names) = sweep_charts(s, &charts.join(&sub), only)?;
        if names.is_empty() {
            continue;
        }
        md.push_str(&format!(
            "\n## Sweep `{}`: final metrics by `{key}`\n\n",
            s.dir.display()
        ));
        for n in ordered(&names).into_iter().take(HEADLINE.len()) {
            md.push_str(&format!("![{n}](charts/{sub}/{}.svg)\n", file_stem(n)));
        }
        md.push_str(&format!("\nEvery metric: `charts/{sub}/`.\n"));
    }
    md.push_str("\n## Metrics by round\n\n");
    for n in ordered(&charted) {
        md.push_str(&format!("![{n}](charts/{}.svg)\n", file_stem(n)));
    }
    for r in &runs {
        let suffix = if runs.len() == 1 {
            String::new()
        } else {
            format!("-{}", file_stem(&r.label))
        };
        if let Some(stem) = length_heatmap(r, &charts, &suffix)? {
            md.push_str(&format!(
                "![{}: accuracy by operand length](charts/{stem}.svg)\n",
                r.label
            ));
        }
    }
    for r in &runs {
        md.push_str(&format!(
            "\n## {}\n\n{}",
            r.label,
            report::markdown(&r.rounds)
        ));
    }
    let p = out.join("report.md");
    write_atomic(&p, md.as_bytes()).map_err(io(&p))?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep over `mix.mode` × `run.seed`: the chart has one point per mode (the mean over
    /// seeds) and a shaded 95 % band; without seeds, no band.
    #[test]
    fn seed_replicates_are_charted_as_means_with_bands() {
        let m = |x: f64| -> Metrics { [("eval/loss_real".to_string(), x)].into() };
        let pt = |mode: &str, seed: &str, x: f64| {
            (
                format!("{mode}-{seed}"),
                vec![mode.to_string(), seed.to_string()],
                m(x),
            )
        };
        let s = SweepData {
            dir: PathBuf::from("sweep"),
            keys: vec!["mix.synthetic_ratio".into(), "run.seed".into()],
            points: vec![
                pt("0.0", "1", 1.0),
                pt("0.0", "2", 1.2),
                pt("0.5", "1", 2.0),
                pt("0.5", "2", 2.4),
            ],
        };
        let dir = std::env::temp_dir().join(format!("didact-bands-{}", std::process::id()));
        let (key, names) = sweep_charts(&s, &dir, &[]).unwrap();
        assert_eq!((key.as_str(), names.len()), ("mix.synthetic_ratio", 1));
        let svg = std::fs::read_to_string(dir.join("eval-loss_real.svg")).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 1, "one band");
        let single = SweepData {
            keys: vec!["mix.synthetic_ratio".into()],
            points: vec![
                ("a".into(), vec!["0.0".into()], m(1.0)),
                ("b".into(), vec!["0.5".into()], m(2.0)),
            ],
            ..s
        };
        sweep_charts(&single, &dir, &[]).unwrap();
        let svg = std::fs::read_to_string(dir.join("eval-loss_real.svg")).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The by-round lines of a seeded sweep: one per group, the mean by round with its band.
    #[test]
    fn seed_replicates_by_round_are_one_line_per_group_with_a_band() {
        let run = |name: &str, losses: &[f64]| RunData {
            label: name.into(),
            dir: PathBuf::from("sw").join(name),
            rounds: losses
                .iter()
                .enumerate()
                .map(|(r, &l)| (r as u32, [("eval/loss_real".to_string(), l)].into()))
                .collect(),
            alerts: vec![],
            ci95: vec![],
        };
        let runs = vec![
            run("a_1", &[1.0, 1.1]),
            run("a_2", &[1.2, 1.3]),
            run("b_1", &[2.0, 2.0]),
            run("other", &[5.0]),
        ];
        let pt = |n: &str, mode: &str, seed: &str| {
            (
                n.to_string(),
                vec![mode.to_string(), seed.to_string()],
                Metrics::new(),
            )
        };
        let s = SweepData {
            dir: PathBuf::from("sw"),
            keys: vec!["mix.mode".into(), "run.seed".into()],
            points: vec![
                pt("a_1", "a", "1"),
                pt("a_2", "a", "2"),
                pt("b_1", "b", "1"),
            ],
        };
        let lines = by_round_lines(&runs, std::slice::from_ref(&s));
        let labels: Vec<&str> = lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            ["other", "a (mean of 2 seeds)", "b (mean of 1 seeds)"]
        );
        let a = &lines[1];
        assert!((a.rounds[1].1["eval/loss_real"] - 1.2).abs() < 1e-12);
        // two seeds: t(1) = 12.706 × sd 0.1414 / √2 = 1.2706
        assert!((a.ci95[0].1["eval/loss_real"] - 1.2706).abs() < 1e-3);
        assert!(lines[2].ci95[0].1.is_empty(), "one seed: no band");
        let dir = std::env::temp_dir().join(format!("didact-round-bands-{}", std::process::id()));
        round_charts(&lines, &dir, &[]).unwrap();
        let svg = std::fs::read_to_string(dir.join("eval-loss_real.svg")).unwrap();
        assert_eq!(
            svg.matches("<polygon").count(),
            1,
            "a band for the two-seed group"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn accuracy_by_length_becomes_a_heat_map_of_length_by_round() {
        let m = |a: f64, b: f64| -> Metrics {
            [
                ("eval/accuracy_len_1".to_string(), a),
                ("eval/accuracy_len_10".to_string(), b),
                ("eval/loss_real".to_string(), 1.0),
            ]
            .into()
        };
        let run = RunData {
            label: "r".into(),
            dir: PathBuf::from("r"),
            rounds: vec![(0, m(0.9, 0.0)), (1, m(0.95, 0.25))],
            alerts: vec![],
            ci95: vec![],
        };
        let dir = std::env::temp_dir().join(format!("didact-heat-{}", std::process::id()));
        assert_eq!(
            length_heatmap(&run, &dir, "").unwrap().as_deref(),
            Some("accuracy_by_length")
        );
        let svg = std::fs::read_to_string(dir.join("accuracy_by_length.svg")).unwrap();
        for t in ["digits per operand", "0.95", "0.25", ">\n10\n<"] {
            assert!(svg.contains(t), "svg lacks {t}");
        }
        let mut plain = run.clone();
        plain.rounds = vec![(0, [("eval/loss_real".to_string(), 1.0)].into())];
        assert_eq!(length_heatmap(&plain, &dir, "-x").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
