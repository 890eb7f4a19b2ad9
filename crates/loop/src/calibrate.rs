//! Detector calibration: the collapse rules replayed over replicate runs known to be stable
//! and runs known to collapse (the detector is a pure function of a run's metric series, so
//! any rule can be tried on finished runs). Per rule: the metric's round-0 mean and
//! seed-to-seed standard deviation over the stable runs (the `noise_sd` a rule can carry), the
//! false-alarm rate (stable runs on which the rule ever fires), the largest bad-direction
//! change a stable run showed, and the detection round on each collapsing run.
//! `didact calibrate` writes `calibration.csv` and `calibration.md`.

use crate::error::{Result, io};
use didact_core::{Metrics, write_atomic};
use didact_metrics::detector::{self, Rule};
use std::path::Path;

/// One rule's calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub rule: Rule,
    /// Round-0 value over the stable runs: mean and sample standard deviation.
    pub round0_mean: f64,
    pub round0_sd: f64,
    pub stable_runs: usize,
    /// Stable runs on which the rule fired at least once.
    pub false_alarms: usize,
    /// Rounds ≥ 1 of stable runs on which it fired, of all such rounds.
    pub stable_alert_rounds: usize,
    pub stable_rounds: usize,
    /// Largest change in the rule's bad direction on any round ≥ 1 of a stable run, percent.
    pub max_stable_change_pct: f64,
    /// Detection round on each collapsing run (`None`: never fired).
    pub detections: Vec<Option<u32>>,
    /// First alert round on each stable run (`None`: never fired).
    pub stable_first: Vec<Option<u32>>,
}

impl Calibration {
    /// The last detection round over the collapsing runs (`None` if one run was missed).
    pub fn detected_by(&self) -> Option<u32> {
        last_detection(&self.detections)
    }
}

/// The round by which every run was detected (`None` if one was missed).
fn last_detection(d: &[Option<u32>]) -> Option<u32> {
    d.iter()
        .copied()
        .collect::<Option<Vec<u32>>>()
        .and_then(|d| d.into_iter().max())
}

type Series = [(u32, Metrics)];

/// Replay `rules` over the stable and collapsing runs.
pub fn calibrate(rules: &[Rule], stable: &[&Series], collapsing: &[&Series]) -> Vec<Calibration> {
    rules
        .iter()
        .map(|rule| {
            let round0: Vec<f64> = stable
                .iter()
                .filter_map(|s| s.first().and_then(|(_, m)| m.get(&rule.metric)).copied())
                .filter(|v| v.is_finite())
                .collect();
            let (round0_mean, round0_sd) = mean_sd(&round0);
            let (mut alarms, mut alert_rounds, mut rounds, mut max_change) =
                (0, 0, 0, f64::NEG_INFINITY);
            for s in stable {
                let mut fired = false;
                for n in 2..=s.len() {
                    rounds += 1;
                    if !detector::evaluate(&s[..n], std::slice::from_ref(rule)).is_empty() {
                        alert_rounds += 1;
                        fired = true;
                    }
                    if let Some((c, _, _)) = detector::bad_change_pct(&s[..n], rule) {
                        max_change = f64::max(max_change, c);
                    }
                }
                alarms += usize::from(fired);
            }
            Calibration {
                rule: rule.clone(),
                round0_mean,
                round0_sd,
                stable_runs: stable.len(),
                false_alarms: alarms,
                stable_alert_rounds: alert_rounds,
                stable_rounds: rounds,
                max_stable_change_pct: max_change,
                detections: collapsing
                    .iter()
                    .map(|s| detector::first_alert(s, rule))
                    .collect(),
                stable_first: stable
                    .iter()
                    .map(|s| detector::first_alert(s, rule))
                    .collect(),
            }
        })
        .collect()
}

/// All rules together, as a run sees them: stable runs on which any rule fired, and the first
/// round any rule fired on each collapsing run.
pub fn any_rule(rows: &[Calibration]) -> (usize, Vec<Option<u32>>) {
    let first = |pick: fn(&Calibration) -> &Vec<Option<u32>>| -> Vec<Option<u32>> {
        let n = rows.first().map_or(0, |c| pick(c).len());
        (0..n)
            .map(|i| rows.iter().filter_map(|c| pick(c)[i]).min())
            .collect()
    };
    let stable = first(|c| &c.stable_first);
    (
        stable.iter().filter(|x| x.is_some()).count(),
        first(|c| &c.detections),
    )
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// A number for the tables; a metric the runs never measured has none (empty in the CSV, `–`
/// in the markdown).
fn num(x: f64, md: Option<usize>) -> String {
    match (x.is_finite(), md) {
        (true, Some(p)) => format!("{x:.p$}"),
        (true, None) => x.to_string(),
        (false, Some(_)) => "–".to_string(),
        (false, None) => String::new(),
    }
}

fn detections_text(d: &[Option<u32>]) -> String {
    d.iter()
        .map(|x| x.map_or("-".to_string(), |r| r.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// calibration.csv: one row per rule.
pub fn csv(rows: &[Calibration]) -> String {
    let mut out = "metric,kind,pct,noise_sd,rounds,round0_mean,round0_sd,stable_runs,false_alarms,false_alarm_rate,stable_alert_rounds,stable_rounds,max_stable_change_pct,collapsing_runs,detected,detected_by,detection_rounds\n".to_string();
    for c in rows {
        let detected = c.detections.iter().filter(|d| d.is_some()).count();
        let fields = [
            c.rule.metric.clone(),
            c.rule.kind.name().to_string(),
            c.rule.pct.to_string(),
            c.rule.noise_sd.to_string(),
            c.rule.rounds.to_string(),
            num(c.round0_mean, None),
            num(c.round0_sd, None),
            c.stable_runs.to_string(),
            c.false_alarms.to_string(),
            (c.false_alarms as f64 / c.stable_runs.max(1) as f64).to_string(),
            c.stable_alert_rounds.to_string(),
            c.stable_rounds.to_string(),
            num(c.max_stable_change_pct, None),
            c.detections.len().to_string(),
            detected.to_string(),
            c.detected_by().map_or(String::new(), |r| r.to_string()),
            detections_text(&c.detections),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    if let Some(c) = rows.first() {
        let (alarms, det) = any_rule(rows);
        let by = last_detection(&det);
        out.push_str(&format!(
            "(any rule),,,,,,,{},{alarms},{},,,,{},{},{},{}\n",
            c.stable_runs,
            alarms as f64 / c.stable_runs.max(1) as f64,
            det.len(),
            det.iter().filter(|d| d.is_some()).count(),
            by.map_or(String::new(), |r| r.to_string()),
            detections_text(&det),
        ));
    }
    out
}

/// calibration.md: the same table for people, with the runs it was computed on.
pub fn markdown(rows: &[Calibration], stable: &[String], collapsing: &[String]) -> String {
    let mut md = format!(
        "# Detector calibration\n\nStable runs ({}): {}\n\nCollapsing runs ({}): {}\n\n\
         A false alarm is a stable run on which the rule fires in any round; the detection \
         round is the first round a rule fires on a collapsing run (`-`: never). `round-0 sd` \
         is the seed-to-seed standard deviation of the metric's round-0 value over the stable \
         runs (a rule's `noise_sd`).\n\n\
         | metric | kind | pct | noise_sd | rounds | round-0 mean ± sd | false alarms | alert rounds (stable) | max stable change % | detection rounds | detected by |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n",
        stable.len(),
        stable.join(", "),
        collapsing.len(),
        collapsing.join(", ")
    );
    for c in rows {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} ± {} | {}/{} | {}/{} | {} | {} | {} |\n",
            c.rule.metric,
            c.rule.kind.name(),
            c.rule.pct,
            c.rule.noise_sd,
            c.rule.rounds,
            num(c.round0_mean, Some(4)),
            num(c.round0_sd, Some(4)),
            c.false_alarms,
            c.stable_runs,
            c.stable_alert_rounds,
            c.stable_rounds,
            if c.max_stable_change_pct.is_finite() {
                format!("{:+.1}", c.max_stable_change_pct)
            } else {
                "–".to_string()
            },
            detections_text(&c.detections),
            match c.detected_by() {
                Some(r) => format!("round {r}"),
                None if c.round0_mean.is_nan() => "not measured".to_string(),
                None => "missed".to_string(),
            },
        ));
    }
    if let Some(c) = rows.first() {
        let (alarms, det) = any_rule(rows);
        let by = last_detection(&det);
        md.push_str(&format!(
            "| **any rule** (what a run sees) | | | | | | {alarms}/{} | | | {} | {} |\n",
            c.stable_runs,
            detections_text(&det),
            by.map_or("missed".to_string(), |r| format!("round {r}")),
        ));
    }
    md
}

/// Write `calibration.csv` and `calibration.md` into `out` (atomically).
pub fn write(
    out: &Path,
    rows: &[Calibration],
    stable: &[String],
    collapsing: &[String],
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let p = out.join("calibration.csv");
    write_atomic(&p, csv(rows).as_bytes()).map_err(io(&p))?;
    let p = out.join("calibration.md");
    write_atomic(&p, markdown(rows, stable, collapsing).as_bytes()).map_err(io(&p))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use didact_metrics::detector::{Action, RuleKind};

    fn series(values: &[f64]) -> Vec<(u32, Metrics)> {
        values
            .iter()
            .enumerate()
            .map(|(r, &v)| (r as u32, Metrics::from([("m/x".to_string(), v)])))
            .collect()
    }

    #[test]
    fn false_alarms_detection_rounds_and_round_zero_spread() {
        let stable = [
            series(&[1.00, 1.02, 1.06, 1.01]), // +6 % at round 2: a false alarm at 5 %
            series(&[1.10, 1.10, 1.12, 1.11]),
            series(&[0.90, 0.91, 0.92, 0.92]),
        ];
        let collapsing = [
            series(&[1.0, 1.04, 1.10, 1.3]),
            series(&[1.0, 1.2, 1.5, 1.9]),
        ];
        let mut rule = Rule::new("m/x", RuleKind::RiseOverBest, 5.0, Action::Warn);
        let s: Vec<&Series> = stable.iter().map(|v| v.as_slice()).collect();
        let c: Vec<&Series> = collapsing.iter().map(|v| v.as_slice()).collect();
        let cal = calibrate(std::slice::from_ref(&rule), &s, &c);
        let k = &cal[0];
        assert_eq!(
            (k.false_alarms, k.stable_alert_rounds, k.stable_rounds),
            (1, 1, 9)
        );
        assert!((k.max_stable_change_pct - 6.0).abs() < 1e-9);
        assert!((k.round0_mean - 1.0).abs() < 1e-12 && (k.round0_sd - 0.1).abs() < 1e-12);
        assert_eq!(k.detections, vec![Some(2), Some(1)]);
        assert_eq!(k.detected_by(), Some(2));
        // two consecutive rounds: the blip is gone, detection one round later
        rule.rounds = 2;
        let k = &calibrate(std::slice::from_ref(&rule), &s, &c)[0];
        assert_eq!(k.false_alarms, 0);
        assert_eq!(k.detections, vec![Some(3), Some(2)]);
        let text = csv(&calibrate(&[rule], &s, &c));
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("m/x,rise_over_best,5,0,2,")
        );
        assert!(text.lines().nth(1).unwrap().ends_with(",2,2,3,3 2"));
    }

    #[test]
    fn all_rules_together_alarm_when_any_fires_and_detect_at_the_earliest() {
        let stable = [series(&[1.0, 1.0, 1.0]), series(&[1.0, 0.8, 0.8])];
        let collapsing = [series(&[1.0, 1.2, 1.5]), series(&[1.0, 0.5, 2.0])];
        let s: Vec<&Series> = stable.iter().map(|v| v.as_slice()).collect();
        let c: Vec<&Series> = collapsing.iter().map(|v| v.as_slice()).collect();
        let rules = [
            Rule::new("m/x", RuleKind::RiseOverBest, 30.0, Action::Warn),
            Rule::new("m/x", RuleKind::DropFromFirst, 10.0, Action::Warn),
        ];
        let cal = calibrate(&rules, &s, &c);
        // rise 30 %: run 1 at round 2 (1.5 vs 1.0), run 2 at round 2 (2.0 vs 0.5);
        // drop 10 %: stable run 2 at round 1, collapsing run 2 at round 1
        assert_eq!(cal[0].detections, vec![Some(2), Some(2)]);
        assert_eq!(cal[1].detections, vec![None, Some(1)]);
        assert_eq!(any_rule(&cal), (1, vec![Some(2), Some(1)]));
        let md = markdown(&cal, &[], &[]);
        assert!(
            md.contains("| **any rule** (what a run sees) | | | | | | 1/2 | | | 2 1 | round 2 |"),
            "{md}"
        );
        assert!(
            csv(&cal).ends_with("(any rule),,,,,,,2,1,0.5,,,,2,2,2,2 1\n"),
            "{}",
            csv(&cal)
        );
    }

    #[test]
    fn a_metric_the_runs_never_measured_is_said_so_not_printed_as_nan() {
        let runs = [series(&[1.0, 1.1, 1.2])];
        let r: Vec<&Series> = runs.iter().map(|v| v.as_slice()).collect();
        let rule = Rule::new("truth/kl", RuleKind::RiseOverBest, 50.0, Action::Warn);
        let cal = calibrate(&[rule], &r, &r);
        let md = markdown(&cal, &["s".into()], &["c".into()]);
        let row = md.lines().rev().nth(1).unwrap();
        assert!(
            row.contains("– ± –") && row.ends_with("| – | - | not measured |"),
            "{row}"
        );
        assert!(!md.contains("NaN") && !md.contains("inf"), "{md}");
        let line = csv(&cal).lines().nth(1).unwrap().to_string();
        assert!(
            line.starts_with("truth/kl,rise_over_best,50,0,1,,,1,0,0,0,2,,1,0,,-"),
            "{line}"
        );
    }
}
