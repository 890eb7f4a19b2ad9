//! Tables on disk through polars: training rows (with provenance), scored samples (one column
//! per score) and per-round metrics, as Parquet (atomic: temp file + rename) and CSV. Column
//! names are plain so pandas/polars users read them directly.

use crate::error::{DataError, Result};
use didact_core::{Example, Metrics, Pair, Provenance, Sample, TempPath};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SAMPLE_FIXED: &[&str] = &[
    "id",
    "round",
    "prompt",
    "completion",
    "n_tokens",
    "kept",
    "dropped",
];

fn pe(path: &Path) -> impl Fn(PolarsError) -> DataError + '_ {
    move |e| DataError::Polars {
        path: path.to_path_buf(),
        source: e,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Write a DataFrame as Parquet, atomically (temp file, fsync, rename, fsync of the directory;
/// no temp file left on error).
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = TempPath::beside(path);
    let file = std::fs::File::create(tmp.path()).map_err(io(tmp.path()))?;
    ParquetWriter::new(file).finish(df).map_err(pe(path))?;
    tmp.persist(path).map_err(io(path))
}

/// Write a DataFrame as CSV, atomically (as `write_parquet`).
pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    let tmp = TempPath::beside(path);
    let file = std::fs::File::create(tmp.path()).map_err(io(tmp.path()))?;
    CsvWriter::new(file).finish(df).map_err(pe(path))?;
    tmp.persist(path).map_err(io(path))
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    ParquetReader::new(file).finish().map_err(pe(path))
}

fn str_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let c = df.column(name).map_err(pe(path))?;
    let s = c.str().map_err(pe(path))?;
    Ok(s.iter().map(|x| x.map(str::to_string)).collect())
}

fn u32_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<Option<u32>>> {
    let c = df
        .column(name)
        .map_err(pe(path))?
        .cast(&DataType::UInt32)
        .map_err(pe(path))?;
    Ok(c.u32().map_err(pe(path))?.iter().collect())
}

fn missing(path: &Path, what: &str) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        msg: format!("null in column `{what}`"),
    }
}

/// Training rows: `prompt`, `completion`, `provenance` (`real` | `synthetic`), `source_round`
/// (null for real rows).
pub fn examples_to_df(rows: &[Example]) -> DataFrame {
    let prompt: Vec<&str> = rows.iter().map(|e| e.prompt.as_str()).collect();
    let completion: Vec<&str> = rows.iter().map(|e| e.completion.as_str()).collect();
    let prov: Vec<&str> = rows
        .iter()
        .map(|e| {
            if e.provenance.is_synthetic() {
                "synthetic"
            } else {
                "real"
            }
        })
        .collect();
    let round: Vec<Option<u32>> = rows
        .iter()
        .map(|e| match e.provenance {
            Provenance::Real => None,
            Provenance::Synthetic { round } => Some(round),
        })
        .collect();
    DataFrame::new_infer_height(vec![
        Column::new("prompt".into(), prompt),
        Column::new("completion".into(), completion),
        Column::new("provenance".into(), prov),
        Column::new("source_round".into(), round),
    ])
    .expect("equal-length columns")
}

pub fn examples_from_df(df: &DataFrame, path: &Path) -> Result<Vec<Example>> {
    let prompt = str_col(df, "prompt", path)?;
    let completion = str_col(df, "completion", path)?;
    let prov = str_col(df, "provenance", path)?;
    let round = u32_col(df, "source_round", path)?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let provenance = match (prov[i].as_deref(), round[i]) {
            (Some("real"), _) => Provenance::Real,
            (Some("synthetic"), Some(r)) => Provenance::Synthetic { round: r },
            _ => return Err(missing(path, "provenance/source_round")),
        };
        out.push(Example {
            prompt: prompt[i].clone().ok_or_else(|| missing(path, "prompt"))?,
            completion: completion[i]
                .clone()
                .ok_or_else(|| missing(path, "completion"))?,
            provenance,
        });
    }
    Ok(out)
}

/// Samples: fixed columns plus one Float64 column per score name (null where a scorer did
/// not score that sample).
pub fn samples_to_df(samples: &[Sample]) -> DataFrame {
    let names: BTreeSet<&str> = samples
        .iter()
        .flat_map(|s| s.scores.keys().map(|k| k.as_str()))
        .collect();
    let mut cols = vec![
        Column::new(
            "id".into(),
            samples.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "round".into(),
            samples.iter().map(|s| s.round).collect::<Vec<_>>(),
        ),
        Column::new(
            "prompt".into(),
            samples
                .iter()
                .map(|s| s.prompt.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "completion".into(),
            samples
                .iter()
                .map(|s| s.completion.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "n_tokens".into(),
            samples
                .iter()
                .map(|s| s.n_tokens as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "kept".into(),
            samples
                .iter()
                .map(|s| s.dropped.is_none())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "dropped".into(),
            samples
                .iter()
                .map(|s| s.dropped.clone())
                .collect::<Vec<_>>(),
        ),
    ];
    for name in names {
        let v: Vec<Option<f64>> = samples
            .iter()
            .map(|s| s.scores.get(name).copied())
            .collect();
        cols.push(Column::new(name.into(), v));
    }
    DataFrame::new_infer_height(cols).expect("equal-length columns")
}

pub fn samples_from_df(df: &DataFrame, path: &Path) -> Result<Vec<Sample>> {
    let id = str_col(df, "id", path)?;
    let round = u32_col(df, "round", path)?;
    let prompt = str_col(df, "prompt", path)?;
    let completion = str_col(df, "completion", path)?;
    let n_tokens = u32_col(df, "n_tokens", path)?;
    let dropped = str_col(df, "dropped", path)?;
    let mut score_cols = Vec::new();
    for c in df.columns() {
        let name = c.name().as_str();
        if SAMPLE_FIXED.contains(&name) {
            continue;
        }
        let f = c.cast(&DataType::Float64).map_err(pe(path))?;
        let v: Vec<Option<f64>> = f.f64().map_err(pe(path))?.iter().collect();
        score_cols.push((name.to_string(), v));
    }
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut scores = BTreeMap::new();
        for (name, v) in &score_cols {
            if let Some(x) = v[i] {
                scores.insert(name.clone(), x);
            }
        }
        out.push(Sample {
            id: id[i].clone().ok_or_else(|| missing(path, "id"))?,
            round: round[i].ok_or_else(|| missing(path, "round"))?,
            prompt: prompt[i].clone().ok_or_else(|| missing(path, "prompt"))?,
            completion: completion[i]
                .clone()
                .ok_or_else(|| missing(path, "completion"))?,
            n_tokens: n_tokens[i].ok_or_else(|| missing(path, "n_tokens"))? as usize,
            scores,
            dropped: dropped[i].clone(),
        });
    }
    Ok(out)
}

/// One row per round; `round` first, then every metric name in sorted order. Missing or NaN
/// values are null.
pub fn metrics_to_df(rounds: &[(u32, Metrics)]) -> DataFrame {
    let names: BTreeSet<&str> = rounds
        .iter()
        .flat_map(|(_, m)| m.keys().map(|k| k.as_str()))
        .collect();
    let mut cols = vec![Column::new(
        "round".into(),
        rounds.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
    )];
    for name in names {
        let v: Vec<Option<f64>> = rounds
            .iter()
            .map(|(_, m)| m.get(name).copied().filter(|x| x.is_finite()))
            .collect();
        cols.push(Column::new(name.into(), v));
    }
    DataFrame::new_infer_height(cols).expect("equal-length columns")
}

/// The per-round metrics of a `metrics.csv` written by `metrics_to_df` (e.g. a committed run
/// summary that kept only that table): one entry per row, nulls left out.
pub fn read_metrics_csv(path: &Path) -> Result<Vec<(u32, Metrics)>> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(pe(path))?;
    let round = df
        .column("round")
        .and_then(|c| c.cast(&DataType::UInt32))
        .map_err(pe(path))?;
    let round = round.u32().map_err(pe(path))?;
    let mut out: Vec<(u32, Metrics)> = Vec::with_capacity(df.height());
    for (i, r) in round.iter().enumerate() {
        let r = r.ok_or_else(|| missing(path, "round"))?;
        let mut m = Metrics::new();
        for col in df.columns().iter().filter(|c| c.name().as_str() != "round") {
            let v = col.cast(&DataType::Float64).map_err(pe(path))?;
            if let Some(x) = v.f64().map_err(pe(path))?.get(i) {
                m.insert(col.name().to_string(), x);
            }
        }
        out.push((r, m));
    }
    Ok(out)
}

pub fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    write_parquet(path, &mut samples_to_df(samples))
}

pub fn read_samples(path: &Path) -> Result<Vec<Sample>> {
    samples_from_df(&read_parquet(path)?, path)
}

pub fn write_examples(path: &Path, rows: &[Example]) -> Result<()> {
    write_parquet(path, &mut examples_to_df(rows))
}

pub fn read_examples(path: &Path) -> Result<Vec<Example>> {
    examples_from_df(&read_parquet(path)?, path)
}

fn f64_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<f64>> {
    let c = df.column(name).map_err(pe(path))?;
    let f = c.cast(&DataType::Float64).map_err(pe(path))?;
    Ok(f.f64()
        .map_err(pe(path))?
        .iter()
        .map(|x| x.unwrap_or(f64::NAN))
        .collect())
}

/// Preference pairs: TRL's `prompt`/`chosen`/`rejected` plus id, round, both scores and the
/// cached reference log-probs (`ref_logp_chosen`, `ref_logp_rejected`; null until computed).
pub fn pairs_to_df(pairs: &[Pair]) -> DataFrame {
    let f = |g: fn(&Pair) -> f64| {
        pairs
            .iter()
            .map(|p| Some(g(p)).filter(|x| x.is_finite()))
            .collect::<Vec<_>>()
    };
    let s = |g: fn(&Pair) -> &str| pairs.iter().map(g).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("id".into(), s(|p| &p.id)),
        Column::new(
            "round".into(),
            pairs.iter().map(|p| p.round).collect::<Vec<_>>(),
        ),
        Column::new("prompt".into(), s(|p| &p.prompt)),
        Column::new("chosen".into(), s(|p| &p.chosen)),
        Column::new("rejected".into(), s(|p| &p.rejected)),
        Column::new("score_chosen".into(), f(|p| p.score_chosen)),
        Column::new("score_rejected".into(), f(|p| p.score_rejected)),
        Column::new("ref_logp_chosen".into(), f(|p| p.ref_chosen)),
        Column::new("ref_logp_rejected".into(), f(|p| p.ref_rejected)),
    ])
    .expect("equal-length columns")
}

pub fn pairs_from_df(df: &DataFrame, path: &Path) -> Result<Vec<Pair>> {
    let id = str_col(df, "id", path)?;
    let round = u32_col(df, "round", path)?;
    let prompt = str_col(df, "prompt", path)?;
    let chosen = str_col(df, "chosen", path)?;
    let rejected = str_col(df, "rejected", path)?;
    let (sc, sr) = (
        f64_col(df, "score_chosen", path)?,
        f64_col(df, "score_rejected", path)?,
    );
    let (rc, rr) = (
        f64_col(df, "ref_logp_chosen", path)?,
        f64_col(df, "ref_logp_rejected", path)?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        out.push(Pair {
            id: id[i].clone().ok_or_else(|| missing(path, "id"))?,
            round: round[i].ok_or_else(|| missing(path, "round"))?,
            prompt: prompt[i].clone().ok_or_else(|| missing(path, "prompt"))?,
            chosen: chosen[i].clone().ok_or_else(|| missing(path, "chosen"))?,
            rejected: rejected[i]
                .clone()
                .ok_or_else(|| missing(path, "rejected"))?,
            score_chosen: sc[i],
            score_rejected: sr[i],
            ref_chosen: rc[i],
            ref_rejected: rr[i],
        });
    }
    Ok(out)
}

pub fn write_pairs(path: &Path, pairs: &[Pair]) -> Result<()> {
    write_parquet(path, &mut pairs_to_df(pairs))
}

pub fn read_pairs(path: &Path) -> Result<Vec<Pair>> {
    pairs_from_df(&read_parquet(path)?, path)
}

/// One string column of a Parquet file (nulls skipped).
pub fn read_text_column(path: &Path, name: &str) -> Result<Vec<String>> {
    let df = read_parquet(path)?;
    Ok(str_col(&df, name, path)?.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("didact-data-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn examples_roundtrip_with_provenance() {
        let d = tmpdir("ex");
        let rows = vec![
            Example::real("1+1=", "2"),
            Example {
                prompt: "2+2=".into(),
                completion: "4".into(),
                provenance: Provenance::Synthetic { round: 3 },
            },
        ];
        let p = d.join("train.parquet");
        write_examples(&p, &rows).unwrap();
        assert_eq!(read_examples(&p).unwrap(), rows);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn samples_roundtrip_with_scores_and_reasons() {
        let d = tmpdir("s");
        let mut a = Sample {
            id: "r1-0".into(),
            round: 1,
            prompt: "1+1=".into(),
            completion: "2".into(),
            n_tokens: 1,
            scores: BTreeMap::new(),
            dropped: None,
        };
        a.scores.insert("verifier/correct".into(), 1.0);
        let mut b = a.clone();
        b.id = "r1-1".into();
        b.completion = "3".into();
        b.scores.insert("verifier/correct".into(), 0.0);
        b.scores.insert("length/chars".into(), 1.0);
        b.dropped = Some("verifier".into());
        let p = d.join("scored.parquet");
        write_samples(&p, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(read_samples(&p).unwrap(), vec![a, b]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn metrics_table_has_round_first_and_nulls() {
        let mut m0 = Metrics::new();
        m0.insert("eval/loss_real".into(), 1.5);
        m0.insert("filter/kept_fraction".into(), f64::NAN);
        let mut m1 = m0.clone();
        m1.insert("filter/kept_fraction".into(), 0.5);
        let df = metrics_to_df(&[(0, m0), (1, m1)]);
        assert_eq!(df.get_column_names()[0].as_str(), "round");
        assert_eq!(df.column("filter/kept_fraction").unwrap().null_count(), 1);
    }

    #[test]
    fn metrics_csv_reads_back_what_was_written_without_the_nulls() {
        let d = tmpdir("mcsv");
        let mut m0 = Metrics::new();
        m0.insert("eval/loss_real".into(), 1.875);
        m0.insert("filter/kept_fraction".into(), f64::NAN);
        let mut m1 = Metrics::new();
        m1.insert("eval/loss_real".into(), 1.9921875);
        m1.insert("filter/kept_fraction".into(), 0.5);
        let p = d.join("metrics.csv");
        write_csv(&p, &mut metrics_to_df(&[(0, m0.clone()), (3, m1.clone())])).unwrap();
        m0.remove("filter/kept_fraction");
        assert_eq!(read_metrics_csv(&p).unwrap(), vec![(0, m0), (3, m1)]);
        std::fs::write(&p, "round,x\nzero,1\n").unwrap();
        let err = read_metrics_csv(&p).unwrap_err().to_string();
        assert!(err.contains("metrics.csv"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pairs_roundtrip_with_reference_logps() {
        let d = tmpdir("pairs");
        let mut a = Pair {
            id: "r1-p0".into(),
            round: 1,
            prompt: "1+1=".into(),
            chosen: "2".into(),
            rejected: "3".into(),
            score_chosen: 1.0,
            score_rejected: 0.0,
            ref_chosen: -0.25,
            ref_rejected: -3.5,
        };
        let p = d.join("pairs.parquet");
        write_pairs(&p, std::slice::from_ref(&a)).unwrap();
        assert_eq!(read_pairs(&p).unwrap(), vec![a.clone()]);
        a.ref_chosen = f64::NAN;
        write_pairs(&p, std::slice::from_ref(&a)).unwrap();
        assert!(read_pairs(&p).unwrap()[0].ref_chosen.is_nan());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
