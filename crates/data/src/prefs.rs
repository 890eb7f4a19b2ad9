//! Preference-pair datasets for reward models and DPO: JSONL (line by line, so a malformed row
//! names its file and line) or Parquet, with TRL's `prompt`/`chosen`/`rejected` fields, or
//! Anthropic HH-RLHF's two full dialogues (`chosen`/`rejected` only), split at the last
//! "\n\nAssistant:" into a shared prompt and two completions. A row with a missing field, an
//! empty completion or chosen == rejected is skipped (counted) or fatal, as configured.

use crate::error::{DataError, Result};
use crate::ingest::OnError;
use polars::prelude::*;
use serde_json::Value;
use std::path::Path;

/// One preference pair of text.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefRow {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

#[derive(Debug, Default)]
pub struct PrefLoaded {
    pub rows: Vec<PrefRow>,
    pub skipped: usize,
    /// `file:line: reason` of the first skipped rows (at most 20).
    pub skipped_examples: Vec<String>,
}

const ASSISTANT: &str = "\n\nAssistant:";

fn field<'a>(v: &'a Value, name: &str) -> std::result::Result<&'a str, String> {
    match v.get(name) {
        None | Some(Value::Null) => Err(format!("missing field `{name}`")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "field `{name}` must be a string (found {})",
            kind(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list; conversational preference rows are not supported yet",
        Value::Object(_) => "an object",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        _ => "something else",
    }
}

/// Split an HH-RLHF dialogue at its last assistant turn: (prompt incl. "\n\nAssistant:", reply).
pub fn split_dialogue(text: &str) -> Option<(&str, &str)> {
    let i = text.rfind(ASSISTANT)? + ASSISTANT.len();
    Some((&text[..i], &text[i..]))
}

/// One JSON object → a pair, or the reason it is malformed.
pub fn row_to_pref(v: &Value) -> std::result::Result<PrefRow, String> {
    let chosen = field(v, "chosen")?;
    let rejected = field(v, "rejected")?;
    let row = match v.get("prompt") {
        Some(Value::Null) | None => {
            let (pc, c) = split_dialogue(chosen)
                .ok_or("no `prompt` and `chosen` has no \"\\n\\nAssistant:\" turn to split at")?;
            let (pr, r) = split_dialogue(rejected)
                .ok_or("no `prompt` and `rejected` has no \"\\n\\nAssistant:\" turn to split at")?;
            if pc != pr {
                return Err(
                    "chosen and rejected dialogues differ before their last assistant turn".into(),
                );
            }
            PrefRow {
                prompt: pc.to_string(),
                chosen: c.to_string(),
                rejected: r.to_string(),
            }
        }
        Some(_) => PrefRow {
            prompt: field(v, "prompt")?.to_string(),
            chosen: chosen.to_string(),
            rejected: rejected.to_string(),
        },
    };
    if row.chosen.trim().is_empty() {
        return Err("empty `chosen` completion".into());
    }
    if row.rejected.trim().is_empty() {
        return Err("empty `rejected` completion".into());
    }
    if row.chosen == row.rejected {
        return Err("`chosen` and `rejected` are identical".into());
    }
    Ok(row)
}

fn push(
    out: &mut PrefLoaded,
    parsed: std::result::Result<PrefRow, String>,
    path: &Path,
    line: usize,
    on_error: OnError,
) -> Result<()> {
    match parsed {
        Ok(r) => out.rows.push(r),
        Err(msg) => {
            let err = DataError::Row {
                path: path.to_path_buf(),
                line,
                msg,
            };
            if on_error == OnError::Fail {
                return Err(err);
            }
            out.skipped += 1;
            if out.skipped_examples.len() < 20 {
                out.skipped_examples.push(err.to_string());
            }
        }
    }
    Ok(())
}

/// Load preference pairs from `.jsonl` or `.parquet`.
pub fn load_prefs(path: &Path, on_error: OnError) -> Result<PrefLoaded> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let io = |e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut out = PrefLoaded::default();
    match ext.as_str() {
        "jsonl" | "json" => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<Value>(line)
                    .map_err(|e| format!("invalid JSON: {e}"))
                    .and_then(|v| row_to_pref(&v));
                push(&mut out, parsed, path, i + 1, on_error)?;
            }
        }
        "parquet" => {
            let file = std::fs::File::open(path).map_err(io)?;
            let df = ParquetReader::new(file)
                .finish()
                .map_err(|e| DataError::Polars {
                    path: path.to_path_buf(),
                    source: e,
                })?;
            let col = |name: &str| -> Option<Vec<Value>> {
                let c = df.column(name).ok()?;
                let s = c.str().ok()?;
                Some(
                    s.iter()
                        .map(|x| x.map_or(Value::Null, |t| Value::String(t.to_string())))
                        .collect(),
                )
            };
            let (p, c, r) = (col("prompt"), col("chosen"), col("rejected"));
            for i in 0..df.height() {
                let mut obj = serde_json::Map::new();
                for (name, v) in [("prompt", &p), ("chosen", &c), ("rejected", &r)] {
                    if let Some(v) = v {
                        obj.insert(name.into(), v[i].clone());
                    }
                }
                push(
                    &mut out,
                    row_to_pref(&Value::Object(obj)),
                    path,
                    i + 1,
                    on_error,
                )?;
            }
        }
        _ => {
            return Err(DataError::File {
                path: path.to_path_buf(),
                msg: format!(
                    "unknown preference file extension `.{ext}` (expected .jsonl or .parquet)"
                ),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trl_and_hh_rows() {
        let r = row_to_pref(&json!({"prompt": "Q:", "chosen": " yes", "rejected": " no"})).unwrap();
        assert_eq!(
            (r.prompt.as_str(), r.chosen.as_str(), r.rejected.as_str()),
            ("Q:", " yes", " no")
        );
        let hh = json!({
            "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: Sure.",
            "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: No."
        });
        let r = row_to_pref(&hh).unwrap();
        assert_eq!(
            r.prompt,
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant:"
        );
        assert_eq!((r.chosen.as_str(), r.rejected.as_str()), (" Sure.", " No."));
    }

    #[test]
    fn malformed_rows_say_why() {
        let e = |v: Value| row_to_pref(&v).unwrap_err();
        assert_eq!(
            e(json!({"prompt": "Q", "chosen": "a"})),
            "missing field `rejected`"
        );
        assert_eq!(
            e(json!({"prompt": "Q", "chosen": " ", "rejected": "b"})),
            "empty `chosen` completion"
        );
        assert_eq!(
            e(json!({"prompt": "Q", "chosen": "a", "rejected": "a"})),
            "`chosen` and `rejected` are identical"
        );
        assert!(e(json!({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"})).contains("differ"));
        assert!(
            e(json!({"prompt": "Q", "chosen": [{"role": "user"}], "rejected": "b"}))
                .contains("list")
        );
    }

    #[test]
    fn file_errors_name_the_line_or_skip() {
        let d = std::env::temp_dir().join(format!("didact-prefs-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("p.jsonl");
        std::fs::write(&p, "{\"prompt\":\"Q\",\"chosen\":\"a\",\"rejected\":\"b\"}\n{\"prompt\":\"Q\",\"chosen\":\"a\"}\nnot json\n").unwrap();
        let err = load_prefs(&p, OnError::Fail).unwrap_err().to_string();
        assert!(
            err.contains("p.jsonl") && err.contains(":2") && err.contains("rejected"),
            "{err}"
        );
        let ok = load_prefs(&p, OnError::Skip).unwrap();
        assert_eq!((ok.rows.len(), ok.skipped), (1, 2));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
