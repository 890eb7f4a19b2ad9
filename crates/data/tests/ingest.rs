//! Ingestion end to end: a real corpus (../shared/data/tinyshakespeare), JSONL with a
//! malformed row (skipped and counted, or fatal naming file and line), Parquet through polars.

use didact_core::Example;
use didact_data::ingest::{OnError, load};
use didact_data::table::write_examples;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("didact-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn tiny_shakespeare_txt_is_chunked() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/tinyshakespeare/input.txt");
    let l = load(&p, OnError::Fail, 256).unwrap();
    assert!(l.rows.len() > 4000, "{}", l.rows.len());
    assert!(
        l.rows
            .iter()
            .all(|e| e.prompt.is_empty() && e.completion.chars().count() <= 256)
    );
    assert!(l.rows[0].completion.starts_with("First Citizen:"));
}

#[test]
fn malformed_jsonl_row_is_skipped_or_fatal_with_file_and_line() {
    let p = tmp("rows.jsonl");
    std::fs::write(
        &p,
        "{\"prompt\":\"a\",\"completion\":\"b\"}\n\n{\"prompt\": oops}\n{\"text\":\"hello\"}\n{\"prompt\":\"x\"}\n",
    )
    .unwrap();
    let l = load(&p, OnError::Skip, 256).unwrap();
    assert_eq!(
        l.rows,
        vec![Example::real("a", "b"), Example::real("", "hello")]
    );
    assert_eq!(l.skipped, 2);
    assert!(
        l.skipped_examples[0].contains("rows.jsonl:3: invalid JSON"),
        "{:?}",
        l.skipped_examples
    );
    assert!(
        l.skipped_examples[1].contains("rows.jsonl:5: `prompt` without `completion`"),
        "{:?}",
        l.skipped_examples
    );
    let e = load(&p, OnError::Fail, 256).unwrap_err().to_string();
    assert!(
        e.ends_with("rows.jsonl:3: invalid JSON: expected value at line 1 column 12"),
        "{e}"
    );
}

#[test]
fn parquet_with_trl_fields() {
    let p = tmp("rows.parquet");
    let rows = vec![Example::real("Q1", "A1"), Example::real("Q2", "A2")];
    write_examples(&p, &rows).unwrap();
    let l = load(&p, OnError::Fail, 256).unwrap();
    assert_eq!(l.rows, rows);
    let bad = tmp("rows.csv");
    std::fs::write(&bad, "x").unwrap();
    assert!(
        load(&bad, OnError::Fail, 256)
            .unwrap_err()
            .to_string()
            .contains("unknown dataset extension")
    );
}
