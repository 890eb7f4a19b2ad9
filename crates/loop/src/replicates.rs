//! Seed replicates of a sweep: points that differ only in `run.seed` form one group; per
//! metric the group has its mean and the half-width of a two-sided 95 % Student-t confidence
//! interval of that mean (t quantile × sample standard deviation / √n; none for one seed).
//! `sweep.rs` writes them (`comparison_seeds.csv`, ± figures in `comparison.md`) and
//! `charts.rs` draws the means with shaded bands.

use didact_core::Metrics;

/// The sweep key whose values are replicates.
pub const SEED_KEY: &str = "run.seed";

/// One group of replicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The other keys' values, in key order (the seed key left out).
    pub values: Vec<String>,
    pub seeds: usize,
    pub mean: Metrics,
    /// 95 % CI half-width of each mean (metrics with at least two finite values).
    pub ci95: Metrics,
}

/// t₀.₉₇₅ with `df` degrees of freedom (1..=30 tabulated; the normal 1.96 beyond).
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ => 1.96,
    }
}

/// Mean and 95 % CI half-width of the finite values (NaN half-width for fewer than two).
pub fn mean_ci(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, t975(n - 1) * (var / n as f64).sqrt())
}

/// Group `points` (swept values in key order, final metrics) over the seed key at `seed_at`,
/// in order of first appearance.
pub fn group(points: &[(Vec<String>, &Metrics)], seed_at: usize) -> Vec<Group> {
    let others = |v: &[String]| -> Vec<String> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| *i != seed_at)
            .map(|(_, x)| x.clone())
            .collect()
    };
    let mut keys: Vec<Vec<String>> = Vec::new();
    for (v, _) in points {
        let k = others(v);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| {
            let members: Vec<&Metrics> = points
                .iter()
                .filter(|(v, _)| others(v) == k)
                .map(|(_, m)| *m)
                .collect();
            let mut names: Vec<&String> = members.iter().flat_map(|m| m.keys()).collect();
            names.sort();
            names.dedup();
            let (mut mean, mut ci95) = (Metrics::new(), Metrics::new());
            for name in names {
                let vals: Vec<f64> = members
                    .iter()
                    .filter_map(|m| m.get(name).copied())
                    .collect();
                let (m, c) = mean_ci(&vals);
                if m.is_finite() {
                    mean.insert(name.clone(), m);
                }
                if c.is_finite() {
                    ci95.insert(name.clone(), c);
                }
            }
            Group {
                values: k,
                seeds: members.len(),
                mean,
                ci95,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_t_interval_match_scipy() {
        // scipy.stats.t.interval(0.95, 3, loc=mean, scale=sem) for [1, 2, 3, 4]:
        // mean 2.5, sem 0.6455, half-width 3.182 × 0.6455 = 2.0540.
        let (m, c) = mean_ci(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((c - 2.0540).abs() < 1e-3, "{c}");
        assert!(mean_ci(&[5.0]).1.is_nan());
        assert_eq!(mean_ci(&[5.0, f64::NAN, 7.0]).0, 6.0);
        assert_eq!(t975(200), 1.96);
    }

    #[test]
    fn points_differing_only_in_the_seed_form_a_group() {
        let m = |x: f64| -> Metrics { [("eval/loss_real".to_string(), x)].into() };
        let (a, b, c, d) = (m(1.0), m(3.0), m(10.0), m(12.0));
        let v = |mode: &str, seed: &str| vec![mode.to_string(), seed.to_string()];
        let pts = vec![
            (v("replace", "1"), &a),
            (v("replace", "2"), &b),
            (v("accumulate", "1"), &c),
            (v("accumulate", "2"), &d),
        ];
        let g = group(&pts, 1);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].values, vec!["replace"]);
        assert_eq!((g[0].seeds, g[0].mean["eval/loss_real"]), (2, 2.0));
        // Two seeds: t(1) = 12.706, sd = √2, sem = 1.
        assert!((g[1].ci95["eval/loss_real"] - 12.706).abs() < 1e-9);
    }
}
