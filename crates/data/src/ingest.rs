//! Real data ingestion. `.txt`: one corpus cut into chunks on whitespace; `.jsonl`: one JSON
//! object per line, read line by line so a malformed row is reported with its file and line;
//! `.parquet`: read through polars. Rows use TRL's field names: `prompt`/`completion`,
//! `text`, or `messages` (a list of `{role, content}`; the last assistant turn is the
//! completion, the turns before it the prompt).

use crate::chat::{ChatTemplate, parse_messages};
use crate::error::{DataError, Result};
use didact_core::Example;
use polars::prelude::*;
use serde_json::Value;
use std::path::Path;

pub use didact_core::OnError;

/// Ingestion result: rows plus the skipped-row diagnostics.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rows: Vec<Example>,
    pub skipped: usize,
    /// `file:line: reason` of the first skipped rows (at most 20).
    pub skipped_examples: Vec<String>,
}

impl Loaded {
    fn skip(&mut self, err: DataError) {
        self.skipped += 1;
        if self.skipped_examples.len() < 20 {
            self.skipped_examples.push(err.to_string());
        }
    }
}

/// Load a dataset file by extension. `chunk_chars` cuts `.txt` corpora.
pub fn load(path: &Path, on_error: OnError, chunk_chars: usize) -> Result<Loaded> {
    load_with_chat(path, on_error, chunk_chars, None)
}

/// `load`, rendering JSONL `messages` rows with a model's chat template (one example per
/// assistant turn, see `chat.rs`) instead of the plain `role: content` rendering.
pub fn load_with_chat(
    path: &Path,
    on_error: OnError,
    chunk_chars: usize,
    chat: Option<&ChatTemplate>,
) -> Result<Loaded> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" => load_txt(path, chunk_chars),
        "jsonl" | "json" => load_jsonl(path, on_error, chat),
        "parquet" => load_parquet(path, on_error),
        _ => Err(DataError::File {
            path: path.to_path_buf(),
            msg: format!("unknown dataset extension `.{ext}` (expected .txt, .jsonl or .parquet)"),
        }),
    }
}

/// Cut a corpus into chunks of about `chunk_chars` characters, breaking at whitespace.
pub fn load_txt(path: &Path, chunk_chars: usize) -> Result<Loaded> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(Loaded {
        rows: chunk_text(&text, chunk_chars.max(1))
            .into_iter()
            .map(|c| Example::real("", c))
            .collect(),
        ..Default::default()
    })
}

/// Chunks of at most `n` characters (longer only if a single word is longer), cut at the last
/// whitespace before the limit; empty chunks are dropped.
pub fn chunk_text(text: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + n).min(chars.len());
        if end < chars.len()
            && let Some(ws) = (start + 1..end).rev().find(|&i| chars[i].is_whitespace())
        {
            end = ws;
        }
        let chunk: String = chars[start..end].iter().collect();
        if !chunk.trim().is_empty() {
            out.push(chunk);
        }
        start = end;
        while start < chars.len() && chars[start].is_whitespace() && start - end < 1 {
            start += 1;
        }
    }
    out
}

/// The prompt of a Self-Instruct instance: the instruction, its input if any, then `Output:`.
pub fn instance_prompt(instruction: &str, input: &str) -> String {
    if input.trim().is_empty() {
        format!("Instruction: {instruction}\nOutput:")
    } else {
        format!("Instruction: {instruction}\nInput: {input}\nOutput:")
    }
}

/// Turn one JSON object into an example (TRL field names, or a Self-Instruct task).
pub fn row_to_example(v: &Value) -> std::result::Result<Example, String> {
    let obj = v.as_object().ok_or("row is not a JSON object")?;
    let text_field = |k: &str| -> std::result::Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field `{k}` must be a string")),
        }
    };
    if let Some(c) = text_field("completion")? {
        let p = text_field("prompt")?.ok_or("`completion` without `prompt`")?;
        if c.is_empty() {
            return Err("empty `completion`".into());
        }
        return Ok(Example::real(p, c));
    }
    if let Some(t) = text_field("text")? {
        if t.is_empty() {
            return Err("empty `text`".into());
        }
        return Ok(Example::real("", t));
    }
    if let Some(m) = obj.get("messages") {
        return messages_to_example(m);
    }
    if obj.contains_key("prompt") {
        return Err("`prompt` without `completion`".into());
    }
    if let Some(inst) = text_field("instruction")? {
        // Self-Instruct task: its first instance, as `Instruction: …\n[Input: …\n]Output:`.
        let first = obj
            .get("instances")
            .and_then(|x| x.as_array())
            .and_then(|a| a.first())
            .ok_or("`instruction` without `instances`")?;
        let input = first["input"].as_str().unwrap_or("");
        let output = first["output"].as_str().unwrap_or("");
        if output.is_empty() {
            return Err("empty instance `output`".into());
        }
        return Ok(Example::real(instance_prompt(&inst, input), output));
    }
    Err("no usable field: expected `prompt`+`completion`, `text`, `messages` or `instruction`+`instances`".into())
}

/// Plain rendering of a conversation (`role: content` lines); the last assistant turn is the
/// completion. (Model-specific chat templates come with HF checkpoints.)
fn messages_to_example(m: &Value) -> std::result::Result<Example, String> {
    let turns = m.as_array().ok_or("`messages` must be a list")?;
    let mut parsed = Vec::with_capacity(turns.len());
    for (i, t) in turns.iter().enumerate() {
        let role = t["role"]
            .as_str()
            .ok_or(format!("messages[{i}] has no string `role`"))?;
        let content = t["content"]
            .as_str()
            .ok_or(format!("messages[{i}] has no string `content`"))?;
        parsed.push((role, content));
    }
    let last = parsed
        .iter()
        .rposition(|(r, _)| *r == "assistant")
        .ok_or("`messages` has no assistant turn")?;
    let mut prompt = String::new();
    for (r, c) in &parsed[..last] {
        prompt.push_str(&format!("{r}: {c}\n"));
    }
    prompt.push_str("assistant: ");
    let completion = parsed[last].1.to_string();
    if completion.is_empty() {
        return Err("empty assistant turn".into());
    }
    Ok(Example::real(prompt, completion))
}

pub fn load_jsonl(path: &Path, on_error: OnError, chat: Option<&ChatTemplate>) -> Result<Loaded> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut out = Loaded::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(|v| match (chat, v.get("messages")) {
                (Some(t), Some(m)) => t.examples(&parse_messages(m)?),
                _ => row_to_example(&v).map(|e| vec![e]),
            });
        match parsed {
            Ok(ex) => out.rows.extend(ex),
            Err(msg) => {
                let err = DataError::Row {
                    path: path.to_path_buf(),
                    line: i + 1,
                    msg,
                };
                match on_error {
                    OnError::Fail => return Err(err),
                    OnError::Skip => out.skip(err),
                }
            }
        }
    }
    Ok(out)
}

/// Parquet rows; "line" in messages is the 1-based row number.
pub fn load_parquet(path: &Path, on_error: OnError) -> Result<Loaded> {
    let pe = |e: PolarsError| DataError::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let df = ParquetReader::new(file).finish().map_err(pe)?;
    let str_col = |name: &str| -> Result<Option<Vec<Option<String>>>> {
        match df.column(name) {
            Err(_) => Ok(None),
            Ok(c) => {
                let s = c.str().map_err(|_| DataError::File {
                    path: path.to_path_buf(),
                    msg: format!(
                        "column `{name}` must be a string column (found {})",
                        c.dtype()
                    ),
                })?;
                Ok(Some(s.iter().map(|x| x.map(str::to_string)).collect()))
            }
        }
    };
    let prompt = str_col("prompt")?;
    let completion = str_col("completion")?;
    let text = str_col("text")?;
    if completion.is_none() && text.is_none() {
        return Err(DataError::File {
            path: path.to_path_buf(),
            msg: format!(
                "no usable columns: expected `prompt`+`completion` or `text` (found {:?})",
                df.get_column_names()
            ),
        });
    }
    let mut out = Loaded::default();
    for i in 0..df.height() {
        let row = match (&prompt, &completion, &text) {
            (Some(p), Some(c), _) => match (&p[i], &c[i]) {
                (Some(p), Some(c)) if !c.is_empty() => Ok(Example::real(p.clone(), c.clone())),
                _ => Err("null `prompt` or null/empty `completion`".to_string()),
            },
            (None, Some(_), _) => Err("`completion` without `prompt`".to_string()),
            (_, None, Some(t)) => match &t[i] {
                Some(t) if !t.is_empty() => Ok(Example::real("", t.clone())),
                _ => Err("null or empty `text`".to_string()),
            },
            _ => unreachable!("checked above"),
        };
        match row {
            Ok(ex) => out.rows.push(ex),
            Err(msg) => {
                let err = DataError::Row {
                    path: path.to_path_buf(),
                    line: i + 1,
                    msg,
                };
                match on_error {
                    OnError::Fail => return Err(err),
                    OnError::Skip => out.skip(err),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_break_on_whitespace() {
        let c = chunk_text("aaa bbb ccc ddd", 8);
        assert_eq!(c, vec!["aaa bbb", "ccc ddd"]);
        assert!(chunk_text("   ", 4).is_empty());
        let long = chunk_text("abcdefghij", 4);
        assert_eq!(long.concat(), "abcdefghij");
    }

    #[test]
    fn trl_fields() {
        let v: Value = serde_json::from_str(r#"{"prompt":"Q","completion":"A"}"#).unwrap();
        assert_eq!(row_to_example(&v).unwrap(), Example::real("Q", "A"));
        let v: Value = serde_json::from_str(r#"{"text":"hello"}"#).unwrap();
        assert_eq!(row_to_example(&v).unwrap(), Example::real("", "hello"));
        let v: Value = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}"#,
        )
        .unwrap();
        assert_eq!(
            row_to_example(&v).unwrap(),
            Example::real("user: hi\nassistant: ", "yo")
        );
        for bad in [
            r#"{"prompt":"Q"}"#,
            r#"{"completion":"A"}"#,
            r#"{"text":""}"#,
            r#"[1]"#,
            r#"{"text":3}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(row_to_example(&v).is_err(), "{bad}");
        }
    }
}
