//! Property tests of the recipe resolver: any value (NaN, infinities, huge or negative
//! numbers, wrong types) under any key of the recipe never panics; a refusal names the key,
//! and an accepted plan holds only finite numbers.

use proptest::prelude::*;

/// Every `(section, key)` a recipe has, from the default recipe written out in full.
fn keys() -> Vec<(String, String)> {
    let text = didact_recipe::to_toml(&Default::default());
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for (section, v) in &table {
        if let Some(t) = v.as_table() {
            for key in t.keys() {
                out.push((section.clone(), key.clone()));
            }
        }
    }
    assert!(out.len() > 60, "{} keys", out.len());
    out
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|x| format!("{x:?}")),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        any::<i64>().prop_map(|x| x.to_string()),
        (0u32..64).prop_map(|e| format!("{}", 1u128 << e)),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z/.]{0,12}".prop_map(|s| format!("{s:?}")),
        proptest::collection::vec(-5i64..100, 0..4).prop_map(|v| format!("{v:?}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn any_value_under_any_key_is_resolved_or_refused_by_name(
        pick in any::<proptest::sample::Index>(),
        v in value(),
    ) {
        let keys = keys();
        let (section, key) = &keys[pick.index(keys.len())];
        let text = format!("[{section}]\n{key} = {v}\n");
        match didact_recipe::load_str(&text, "p.toml", &[]) {
            Ok(loaded) => {
                let plan = format!("{:?}", loaded.plan);
                prop_assert!(!plan.contains("NaN") && !plan.contains("inf"), "{text}: {plan}");
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(key.as_str()), "{text}: {msg}");
                prop_assert!(msg.contains("p.toml"), "{text}: {msg}");
            }
        }
    }
}
