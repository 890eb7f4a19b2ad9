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
}

impl Calibration {
    /// The last detection round over the collapsing runs (`None` if one run was missed).
    pub fn detected_by(&self) -> Option<u32> {
        self.detections
            .iter()
            .copied()
            .collect::<Option<Vec<u32>>>()
            .and_then(|d| d.into_iter().max())
    }
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
            }
        })
        .collect()
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
            c.round0_mean.to_string(),
            c.round0_sd.to_string(),
            c.stable_runs.to_string(),
            c.false_alarms.to_string(),
            (c.false_alarms as f64 / c.stable_runs.max(1) as f64).to_string(),
            c.stable_alert_rounds.to_string(),
            c.stable_rounds.to_string(),
            c.max_stable_change_pct.to_string(),
            c.detections.len().to_string(),
            detected.to_string(),
            c.detected_by().map_or(String::new(), |r| r.to_string()),
            detections_text(&c.detections),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
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
            "| `{}` | {} | {} | {} | {} | {:.4} ± {:.4} | {}/{} | {}/{} | {:+.1} | {} | {} |\n",
            c.rule.metric,
            c.rule.kind.name(),
            c.rule.pct,
            c.rule.noise_sd,
            c.rule.rounds,
            c.round0_mean,
            c.round0_sd,
            c.false_alarms,
            c.stable_runs,
            c.stable_alert_rounds,
            c.stable_rounds,
            c.max_stable_change_pct,
            detections_text(&c.detections),
            c.detected_by()
                .map_or("missed".to_string(), |r| format!("round {r}")),
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
}
