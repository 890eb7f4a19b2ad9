//! The detect stage: the collapse rules over the metric series so far (a pure function, so a
//! resumed run recomputes the same alerts). Returns the round's alerts, the round a
//! `rollback` returns to (its policy then generates, judges and starts training in the next
//! round — `lineage.rs`) and whether a `stop` fired.

use didact_core::Metrics;
use didact_metrics::detector::{self, Action, Alert, Rule};

/// What the rules decided after a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub alerts: Vec<Alert>,
    pub rollback_to: Option<u32>,
    pub stop: bool,
}

/// The rules on `rounds` (the last one just finished).
pub fn run(rounds: &[(u32, Metrics)], rules: &[Rule]) -> Verdict {
    let alerts = detector::evaluate(rounds, rules);
    let rollback_to = alerts
        .iter()
        .filter(|a| a.action == Action::Rollback)
        .filter_map(|a| best_round(rounds, a))
        .next_back();
    let stop = alerts.iter().any(|a| a.action == Action::Stop);
    Verdict {
        alerts,
        rollback_to,
        stop,
    }
}

/// The round whose value was the alert's baseline (the model a rollback returns to).
fn best_round(rounds: &[(u32, Metrics)], a: &Alert) -> Option<u32> {
    rounds[..rounds.len() - 1]
        .iter()
        .find(|(_, m)| m.get(&a.metric).copied() == Some(a.baseline))
        .map(|(r, _)| *r)
}

/// One human line per alert (terminal and report).
pub fn alert_line(a: &Alert) -> String {
    format!(
        "alert: round {} {} = {:.4} vs {:.4} ({:+.1} % in the bad direction, {:?}) → {:?}",
        a.round, a.metric, a.value, a.baseline, a.change_pct, a.kind, a.action
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use didact_metrics::detector::RuleKind;

    fn rounds(loss: &[f64]) -> Vec<(u32, Metrics)> {
        loss.iter()
            .enumerate()
            .map(|(r, &l)| (r as u32, Metrics::from([("eval/loss_real".to_string(), l)])))
            .collect()
    }

    fn rule(action: Action) -> Rule {
        Rule::new("eval/loss_real", RuleKind::RiseOverBest, 5.0, action)
    }

    #[test]
    fn a_rollback_returns_to_the_best_round() {
        let v = run(&rounds(&[2.0, 1.8, 1.9, 2.1]), &[rule(Action::Rollback)]);
        assert_eq!(v.alerts.len(), 1);
        assert_eq!(v.rollback_to, Some(1));
        assert!(!v.stop);
    }

    #[test]
    fn quiet_series_fire_nothing_and_stop_stops() {
        let v = run(&rounds(&[2.0, 1.9, 1.85]), &[rule(Action::Rollback)]);
        assert_eq!(
            v,
            Verdict {
                alerts: vec![],
                rollback_to: None,
                stop: false
            }
        );
        let v = run(&rounds(&[2.0, 2.5]), &[rule(Action::Stop)]);
        assert!(v.stop && v.rollback_to.is_none());
    }
}
