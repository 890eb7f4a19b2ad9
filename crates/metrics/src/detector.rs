//! Collapse detector: rules over the per-round metric series, evaluated after every round. A
//! rule compares the newest round's value of one metric with a baseline — round 0 or the best
//! round so far — and fires when the relative change in the bad direction exceeds a threshold:
//! - `rise_over_best`: value > best · (1 + pct/100), best = the minimum so far (for metrics where
//!   lower is better, e.g. `eval/ppl_real`, `dist/kl_real_gen`);
//! - `drop_from_first`: value < round-0 value · (1 − pct/100) (e.g. `diversity/distinct_2`,
//!   `tail/real_rare_coverage`);
//! - `drop_from_best`: value < best · (1 − pct/100), best = the maximum so far (`eval/accuracy`).
//!
//! Two guards make a rule noise-aware (a rule that cries wolf gets switched off):
//! - `noise_sd`: the metric's seed-to-seed standard deviation (what `didact calibrate` measures
//!   on round 0 of a seed sweep). The absolute change must also exceed `NOISE_Z · √2 · noise_sd`
//!   — a one-sided 3σ test on the difference of two measurements that each carry that noise;
//! - `rounds`: the condition must hold in that many consecutive rounds (each judged against
//!   the history before it), so one noisy round does not fire.
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

    pub fn name(self) -> &'static str {
        match self {
            Self::RiseOverBest => "rise_over_best",
            Self::DropFromFirst => "drop_from_first",
            Self::DropFromBest => "drop_from_best",
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
    /// Seed-to-seed standard deviation of the metric (absolute units; 0 = no noise guard).
    pub noise_sd: f64,
    /// Consecutive rounds the condition must hold (≥ 1).
    pub rounds: u32,
}

/// z of the noise guard: a change must exceed `NOISE_Z · √2 · noise_sd`.
pub const NOISE_Z: f64 = 3.0;

impl Rule {
    /// A rule with no noise guard that fires on one round (the plain threshold rule).
    pub fn new(metric: &str, kind: RuleKind, pct: f64, action: Action) -> Self {
        Self {
            metric: metric.into(),
            kind,
            pct,
            action,
            noise_sd: 0.0,
            rounds: 1,
        }
    }
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
/// fires nothing. A rule with `rounds = k` fires only when its condition also held on each of
/// the k − 1 rounds before (each against its own history).
pub fn evaluate(series: &[(u32, BTreeMap<String, f64>)], rules: &[Rule]) -> Vec<Alert> {
    rules
        .iter()
        .filter_map(|rule| {
            let alert = condition(series, rule)?;
            let k = rule.rounds.max(1) as usize;
            (1..k)
                .all(|back| {
                    series.len() > back && condition(&series[..series.len() - back], rule).is_some()
                })
                .then_some(alert)
        })
        .collect()
}

/// The first round of `series` on which `rule` fires (the detection round), if any.
pub fn first_alert(series: &[(u32, BTreeMap<String, f64>)], rule: &Rule) -> Option<u32> {
    let rules = std::slice::from_ref(rule);
    (1..=series.len()).find_map(|n| evaluate(&series[..n], rules).first().map(|a| a.round))
}

/// The relative change of the newest value in the rule's bad direction, in percent, with its
/// baseline (`None` without a finite newest value or history).
pub fn bad_change_pct(
    series: &[(u32, BTreeMap<String, f64>)],
    rule: &Rule,
) -> Option<(f64, f64, f64)> {
    let (_, last) = series.last()?;
    let value = last.get(&rule.metric).copied().filter(|v| v.is_finite())?;
    let history: Vec<f64> = series[..series.len() - 1]
        .iter()
        .filter_map(|(_, m)| m.get(&rule.metric).copied().filter(|v| v.is_finite()))
        .collect();
    let first = *history.first()?;
    let baseline = match rule.kind {
        RuleKind::RiseOverBest => history.iter().copied().fold(f64::INFINITY, f64::min),
        RuleKind::DropFromFirst => first,
        RuleKind::DropFromBest => history.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    };
    let bad_abs = match rule.kind {
        RuleKind::RiseOverBest => value - baseline,
        RuleKind::DropFromFirst | RuleKind::DropFromBest => baseline - value,
    };
    Some((100.0 * bad_abs / baseline.abs().max(1e-12), value, baseline))
}

/// The rule's condition on the newest round alone.
fn condition(series: &[(u32, BTreeMap<String, f64>)], rule: &Rule) -> Option<Alert> {
    let (change_pct, value, baseline) = bad_change_pct(series, rule)?;
    let bad_abs = change_pct / 100.0 * baseline.abs().max(1e-12);
    let above_noise = bad_abs > NOISE_Z * std::f64::consts::SQRT_2 * rule.noise_sd;
    (change_pct > rule.pct && above_noise).then(|| Alert {
        round: series.last().map(|(r, _)| *r).unwrap_or_default(),
        metric: rule.metric.clone(),
        kind: rule.kind,
        action: rule.action,
        value,
        baseline,
        change_pct,
    })
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
        Rule::new(metric, kind, pct, action)
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

    #[test]
    fn the_noise_guard_needs_a_change_beyond_three_sigma_of_a_difference() {
        let mut r = rule("tail/cov", RuleKind::DropFromFirst, 20.0, Action::Warn);
        let s = series("tail/cov", &[0.40, 0.30]); // −25 %, 0.10 absolute
        assert_eq!(evaluate(&s, std::slice::from_ref(&r)).len(), 1);
        r.noise_sd = 0.03; // 3·√2·0.03 = 0.127 > 0.10 → within noise
        assert!(evaluate(&s, std::slice::from_ref(&r)).is_empty());
        r.noise_sd = 0.02; // 0.085 < 0.10 → fires
        assert_eq!(evaluate(&s, std::slice::from_ref(&r)).len(), 1);
    }

    #[test]
    fn a_rule_over_consecutive_rounds_ignores_one_noisy_round() {
        let mut r = rule("eval/loss", RuleKind::RiseOverBest, 5.0, Action::Warn);
        r.rounds = 2;
        let rules = std::slice::from_ref(&r);
        // a blip at round 1, back at round 2: never two rounds in a row
        let blip = series("eval/loss", &[2.0, 2.2, 2.0, 2.01]);
        assert!((1..=4).all(|n| evaluate(&blip[..n], rules).is_empty()));
        assert_eq!(first_alert(&blip, &r), None);
        // a trend: over the threshold at rounds 2 and 3 → fires at 3, not at 2
        let trend = series("eval/loss", &[2.0, 2.05, 2.15, 2.3]);
        assert!(evaluate(&trend[..3], rules).is_empty());
        assert_eq!(first_alert(&trend, &r), Some(3));
        r.rounds = 1;
        assert_eq!(first_alert(&trend, &r), Some(2));
        // a series too short for the persistence never fires
        r.rounds = 5;
        assert_eq!(first_alert(&trend, &r), None);
    }
}
