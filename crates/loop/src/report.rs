//! Reports: the per-round summary line the run prints, and the full metrics table (every
//! metric × every round) for the terminal and as markdown (`report.md`).

use didact_core::Metrics;
use std::collections::BTreeSet;

/// Columns of the one-line-per-round summary: (metric, header, decimals).
const SUMMARY: &[(&str, &str, usize)] = &[
    ("eval/loss_real", "loss_real", 4),
    ("eval/accuracy", "acc", 3),
    ("eval/accuracy_ood", "acc_ood", 3),
    ("filter/kept_fraction", "kept", 3),
    ("data/synthetic_fraction", "syn_frac", 3),
    ("diversity/distinct_2", "distinct_2", 3),
    ("diversity/self_bleu", "self_bleu", 3),
    ("train/loss", "train_loss", 4),
    ("train/tokens_per_s", "tok/s", 0),
    ("time/round_s", "time_s", 1),
];

pub fn summary_header() -> String {
    let mut s = format!("{:>5}", "round");
    for (_, h, _) in SUMMARY {
        s.push_str(&format!(" {h:>10}"));
    }
    s
}

fn cell(m: &Metrics, key: &str, decimals: usize) -> String {
    match m.get(key) {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".into(),
    }
}

pub fn summary_row(r: u32, m: &Metrics) -> String {
    let mut s = format!("{r:>5}");
    for (k, _, d) in SUMMARY {
        s.push_str(&format!(" {:>10}", cell(m, k, *d)));
    }
    s
}

fn fmt_value(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

/// Markdown table: one row per metric, one column per round.
pub fn markdown(rounds: &[(u32, Metrics)]) -> String {
    let names: BTreeSet<&str> = rounds
        .iter()
        .flat_map(|(_, m)| m.keys().map(|k| k.as_str()))
        .collect();
    let mut s = String::from("| metric |");
    for (r, _) in rounds {
        s.push_str(&format!(" round {r} |"));
    }
    s.push_str("\n|---|");
    for _ in rounds {
        s.push_str("---:|");
    }
    s.push('\n');
    for name in names {
        s.push_str(&format!("| `{name}` |"));
        for (_, m) in rounds {
            s.push_str(&format!(
                " {} |",
                m.get(name)
                    .map(|v| fmt_value(*v))
                    .unwrap_or_else(|| "–".into())
            ));
        }
        s.push('\n');
    }
    s
}

/// Plain aligned table for the terminal (same layout as the markdown).
pub fn terminal(rounds: &[(u32, Metrics)]) -> String {
    let names: BTreeSet<&str> = rounds
        .iter()
        .flat_map(|(_, m)| m.keys().map(|k| k.as_str()))
        .collect();
    let w = names.iter().map(|n| n.len()).max().unwrap_or(6).max(6);
    let mut s = format!("{:<w$}", "metric");
    for (r, _) in rounds {
        s.push_str(&format!(" {:>12}", format!("round {r}")));
    }
    s.push('\n');
    for name in names {
        s.push_str(&format!("{name:<w$}"));
        for (_, m) in rounds {
            s.push_str(&format!(
                " {:>12}",
                m.get(name)
                    .map(|v| fmt_value(*v))
                    .unwrap_or_else(|| "-".into())
            ));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_every_metric_and_missing_values() {
        let mut a = Metrics::new();
        a.insert("eval/loss_real".into(), 1.23456);
        let mut b = a.clone();
        b.insert("filter/kept_fraction".into(), 0.5);
        let md = markdown(&[(0, a.clone()), (1, b.clone())]);
        assert!(
            md.contains("| `eval/loss_real` | 1.2346 | 1.2346 |"),
            "{md}"
        );
        assert!(
            md.contains("| `filter/kept_fraction` | – | 0.5000 |"),
            "{md}"
        );
        assert!(summary_row(1, &b).contains("0.500"));
        assert!(terminal(&[(0, a)]).contains("eval/loss_real"));
    }
}
