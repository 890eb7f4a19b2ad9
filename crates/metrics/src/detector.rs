//! Collapse detector: rules over the per-round metric series, evaluated after every round. A
//! rule compares the newest round's value of one metric with a baseline — round 0 or the best
//! round so far — and fires when the relative change in the bad direction exceeds a threshold:
//! - `rise_over_best`: value > best · (1 + pct/100), best = the minimum so far (for metrics where
//!   lower is better, e.g. `eval/ppl_real`, `dist/kl_real_gen`);
//! - `drop_from_first`: value < round-0 value · (1 − pct/100) (e.g. `diversity/distinct_2`,
//!   `tail/real_rare_coverage`);
//! - `drop_from_best`: value < best · (1 − pct/100), best = the maximum so far (`eval/accuracy`).
//!
//! A pure function of the series, so a resumed run recomputes exactly the same alerts.

use std::collections::BTreeMap;

/// How a rule reads its metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleKind {
    RiseOverBest,
    DropFromFirst,
    DropFromBest,
}

impl RuleKind {
    pub const NAMES: &[&str] = &["rise_over_best", "drop_from_first", "drop_from_best"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rise_over_best" => Some(Self::RiseOverBest),
            "drop_from_first" => Some(Self::DropFromFirst),
            "drop_from_best" => Some(Self::DropFromBest),
            _ => None,
        }
    }
}

/// What the loop does when a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Warn,
    Rollback,
    Stop,
}

impl Action {
    pub const NAMES: &[&str] = &["warn", "rollback", "stop"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warn" => Some(Self::Warn),
            "rollback" => Some(Self::Rollback),
            "stop" => Some(Self::Stop),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub metric: String,
    pub kind: RuleKind,
    /// Threshold, percent.
    pub pct: f64,
    pub action: Action,
}

/// One fired rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub round: u32,
    pub metric: String,
    pub kind: RuleKind,
    pub action: Action,
    pub value: f64,
    pub baseline: f64,
    /// Relative change in percent (positive = in the bad direction).
    pub change_pct: f64,
}

/// Rules that fire on the last round of `series` (`(round, metrics)` in round order). Rounds
/// where the metric is missing or not finite are skipped for baselines; a missing newest value
/// fires nothing.
pub fn evaluate(series: &[(u32, BTreeMap<String, f64>)], rules: &[Rule]) -> Vec<Alert> {
    let Some((round, last)) = series.last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rule in rules {
        let Some(&value) = last.get(&rule.metric).filter(|v| v.is_finite()) else {
            continue;
        };
        let history: Vec<f64> = series[..series.len() - 1]
            .iter()
            .filter_map(|(_, m)| m.get(&rule.metric).copied().filter(|v| v.is_finite()))
            .collect();
        let Some(&first) = history.first() else {
            continue;
        };
        let (baseline, bad_change) = match rule.kind {
            RuleKind::RiseOverBest => {
                let best = history.iter().copied().fold(f64::INFINITY, f64::min);
                (best, (value - best) / best.abs().max(1e-12))
            }
            RuleKind::DropFromFirst => (first, (first - value) / first.abs().max(1e-12)),
            RuleKind::DropFromBest => {
                let best = history.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (best, (best - value) / best.abs().max(1e-12))
            }
        };
        let change_pct = 100.0 * bad_change;
        if change_pct > rule.pct {
            out.push(Alert {
                round: *round,
                metric: rule.metric.clone(),
                kind: rule.kind,
                action: rule.action,
                value,
                baseline,
                change_pct,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(metric: &str, values: &[f64]) -> Vec<(u32, BTreeMap<String, f64>)> {
        values
            .iter()
            .enumerate()
            .map(|(r, &v)| (r as u32, BTreeMap::from([(metric.to_string(), v)])))
            .collect()
    }

    fn rule(metric: &str, kind: RuleKind, pct: f64, action: Action) -> Rule {
        Rule {
            metric: metric.into(),
            kind,
            pct,
            action,
        }
    }

    #[test]
    fn perplexity_rising_over_the_best_round_fires() {
        let r = [rule(
            "eval/ppl_real",
            RuleKind::RiseOverBest,
            10.0,
            Action::Stop,
        )];
        // best so far 9.0 (round 1); 9.8 is +8.9 % → quiet; 10.0 is +11.1 % → fires
        assert!(evaluate(&series("eval/ppl_real", &[10.0, 9.0, 9.8]), &r).is_empty());
        let a = evaluate(&series("eval/ppl_real", &[10.0, 9.0, 9.8, 10.0]), &r);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].round, a[0].baseline, a[0].action),
            (3, 9.0, Action::Stop)
        );
        assert!((a[0].change_pct - 100.0 / 9.0).abs() < 1e-9);
    }

    #[test]
    fn diversity_dropping_from_round_zero_fires() {
        let r = [rule(
            "diversity/distinct_2",
            RuleKind::DropFromFirst,
            20.0,
            Action::Warn,
        )];
        assert!(evaluate(&series("diversity/distinct_2", &[0.5, 0.45, 0.41]), &r).is_empty()); // −18 %
        let a = evaluate(&series("diversity/distinct_2", &[0.5, 0.45, 0.39]), &r); // −22 %
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].baseline, 0.5);
    }

    #[test]
    fn accuracy_dropping_from_its_best_fires_and_missing_values_are_skipped() {
        let r = [rule(
            "eval/accuracy",
            RuleKind::DropFromBest,
            5.0,
            Action::Rollback,
        )];
        let mut s = series("eval/accuracy", &[0.6, 0.8, 0.7]);
        let a = evaluate(&s, &r);
        assert_eq!((a.len(), a[0].baseline), (1, 0.8));
        s[1].1.insert("eval/accuracy".into(), f64::NAN); // best unknown → baseline 0.6
        assert!(evaluate(&s, &r).is_empty());
        s.push((3, BTreeMap::new())); // newest value missing → nothing
        assert!(evaluate(&s, &r).is_empty());
        assert!(evaluate(&series("eval/accuracy", &[0.6]), &r).is_empty()); // no history
    }

    #[test]
    fn a_collapse_series_trips_every_rule() {
        // Shape of a replace-mode collapse: ppl up, distinct-2 and tail coverage down.
        let mut s = Vec::new();
        for (r, (ppl, d2, tail)) in [(5.0, 0.6, 0.4), (5.2, 0.55, 0.3), (6.5, 0.4, 0.15)]
            .into_iter()
            .enumerate()
        {
            s.push((
                r as u32,
                BTreeMap::from([
                    ("eval/ppl_real".to_string(), ppl),
                    ("diversity/distinct_2".to_string(), d2),
                    ("tail/real_rare_coverage".to_string(), tail),
                ]),
            ));
        }
        let rules = [
            rule("eval/ppl_real", RuleKind::RiseOverBest, 20.0, Action::Warn),
            rule(
                "diversity/distinct_2",
                RuleKind::DropFromFirst,
                25.0,
                Action::Warn,
            ),
            rule(
                "tail/real_rare_coverage",
                RuleKind::DropFromFirst,
                50.0,
                Action::Stop,
            ),
        ];
        let a = evaluate(&s, &rules);
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().map(|x| x.action).max(), Some(Action::Stop));
    }
}
