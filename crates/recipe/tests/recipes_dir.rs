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

/// The plan every shipped recipe resolves to, against the committed snapshot
/// (`tests/plans.snap`): a change to the resolver that changes what a user's recipe means
/// fails here. After an intended change: `DIDACT_BLESS=1 cargo test -p didact-recipe`, and
/// review the diff of the snapshot.
#[test]
fn every_recipe_resolves_to_its_snapshot_plan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<_> = std::fs::read_dir(root.join("../../recipes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("toml"))
        .collect();
    names.sort();
    let mut text = String::new();
    for path in &names {
        let plan = didact_recipe::load(path, &[]).unwrap().plan;
        let name = path.file_name().unwrap().to_str().unwrap();
        text.push_str(&format!("=== {name}\n{plan:#?}\n"));
    }
    let snap = root.join("tests/plans.snap");
    if std::env::var_os("DIDACT_BLESS").is_some() {
        std::fs::write(&snap, &text).unwrap();
    }
    let want = std::fs::read_to_string(&snap).expect("tests/plans.snap (DIDACT_BLESS=1 writes it)");
    for (i, (a, b)) in text.lines().zip(want.lines()).enumerate() {
        assert_eq!(
            a,
            b,
            "plans.snap line {}: a shipped recipe resolves differently",
            i + 1
        );
    }
    assert_eq!(
        text.lines().count(),
        want.lines().count(),
        "plans.snap: recipes added or removed"
    );
}
