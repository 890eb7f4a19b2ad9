//! Property tests of the dataset loaders: any JSONL content (valid rows, wrong types, missing
//! fields, broken JSON, arbitrary text) never panics. With `on_error = fail` a bad row is an
//! error naming `file:line` of a real line; with `skip` the rows kept plus the rows skipped are
//! the non-blank lines.

use didact_core::OnError;
use proptest::prelude::*;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[a-z ]{0,20}", "[a-z ]{0,20}")
            .prop_map(|(p, c)| serde_json::json!({"prompt": p, "completion": c}).to_string()),
        "[a-z ]{0,30}".prop_map(|t| serde_json::json!({"text": t}).to_string()),
        ("[a-z]{1,8}", "[a-z]{1,8}").prop_map(|(u, a)| serde_json::json!({"messages": [
            {"role": "user", "content": u}, {"role": "assistant", "content": a}]})
        .to_string()),
        any::<i64>().prop_map(|x| serde_json::json!({"prompt": x, "completion": [x]}).to_string()),
        Just(r#"{"messages": "oops"}"#.to_string()),
        Just(r#"{"prompt": "a"}"#.to_string()),
        Just("[1, 2, 3]".to_string()),
        Just(String::new()),
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_jsonl_loads_or_names_its_file_and_line(lines in proptest::collection::vec(line(), 0..12)) {
        let dir = std::env::temp_dir().join(format!("didact-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let non_blank = lines.iter().filter(|l| !l.trim().is_empty()).count();
        match didact_data::ingest::load_jsonl(&path, OnError::Fail, None) {
            Ok(l) => prop_assert_eq!(l.skipped, 0),
            Err(e) => {
                let msg = e.to_string();
                let at = msg.find("rows.jsonl:").expect("names the file");
                let n: usize = msg[at + 11..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
                prop_assert!(n >= 1 && n <= lines.len(), "{msg}");
            }
        }
        let l = didact_data::ingest::load_jsonl(&path, OnError::Skip, None).unwrap();
        prop_assert_eq!(l.rows.len() + l.skipped, non_blank);
    }
}
