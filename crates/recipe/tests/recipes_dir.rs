//! Every recipe shipped under `recipes/` loads and validates, opens with the command that runs
//! it, and survives a round trip through its resolved form (what `recipe.resolved.toml` holds).

use std::path::Path;

#[test]
fn every_recipe_loads_and_opens_with_its_command() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("recipes/") {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            first.starts_with("# didact ") && first.contains(&format!("recipes/{name}")),
            "{name} must open with the command that runs it, got {first:?}"
        );
        let loaded = didact_recipe::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
        let resolved = didact_recipe::to_toml(&loaded.file);
        let again = didact_recipe::load_str(&resolved, "resolved", &[])
            .unwrap_or_else(|e| panic!("{name} resolved: {e}"));
        assert_eq!(
            didact_recipe::to_toml(&again.file),
            resolved,
            "{name}: resolving is not idempotent"
        );
    }
    assert!(n >= 2, "expected the shipped recipes, found {n}");
}
