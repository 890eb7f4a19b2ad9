//! didact-recipe: TOML recipes → validated run plans. `RecipeFile` is the serde mirror of the
//! file (unknown keys rejected, defaults filled); `--set section.key=value` overrides are
//! applied to it; `resolve` checks every value once and returns a `RunPlan` of typed stage
//! plans, or an error naming the file, key (with line) and what was expected. Knows nothing
//! of burn or polars.

pub mod error;
pub mod file;
pub mod plan;
pub mod resolve;

pub use error::RecipeError;
pub use file::RecipeFile;
pub use plan::*;
pub use resolve::resolve;

use resolve::KeyLines;

/// Key → line lookup over the original text (toml_edit keeps spans).
struct Lines {
    text: String,
    doc: Option<toml_edit::Document<String>>,
}

impl KeyLines for Lines {
    fn line_of(&self, section: &str, key: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let table = doc.as_table().get(section)?.as_table_like()?;
        let span = table.get(key)?.span()?;
        Some(self.text[..span.start].matches('\n').count() + 1)
    }
}

/// A loaded recipe: the resolved mirror (what gets written as `recipe.resolved.toml`) and
/// the plan.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: RecipeFile,
    pub plan: RunPlan,
}

/// Parse one `--set section.key=value`. The value is read as a TOML value when it parses
/// (numbers, booleans, arrays, quoted strings), else taken as a bare string.
pub fn parse_override(arg: &str) -> Result<(Vec<String>, toml::Value), RecipeError> {
    let bad = |msg: &str| RecipeError::Override {
        arg: arg.to_string(),
        msg: msg.to_string(),
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected section.key=value"))?;
    // `section.key`; in `[sweep]` the key is itself `section.key`, optionally quoted.
    let (section, name) = key
        .trim()
        .split_once('.')
        .ok_or_else(|| bad("the key must be `section.key`"))?;
    let name = name.trim().trim_matches('"');
    let path = vec![section.trim().to_string(), name.to_string()];
    if path.iter().any(|p| p.is_empty()) || (section != "sweep" && name.contains('.')) {
        return Err(bad("the key must be `section.key`"));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((path, parsed))
}

/// Load, override and validate a recipe from its text. `file` names it in messages.
pub fn load_str(text: &str, file: &str, sets: &[String]) -> Result<Loaded, RecipeError> {
    // 1. The file alone: syntax, unknown keys and types, with toml's line/column.
    toml::from_str::<RecipeFile>(text).map_err(|e| RecipeError::Parse {
        file: file.to_string(),
        msg: e.to_string().trim_end().to_string(),
    })?;
    // 2. Overrides on the table, then the mirror again.
    let mut table: toml::Table = toml::from_str(text).map_err(|e| RecipeError::Parse {
        file: file.to_string(),
        msg: e.to_string(),
    })?;
    let mut overridden = Vec::new();
    for arg in sets {
        let (path, value) = parse_override(arg)?;
        let section = table
            .entry(path[0].clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let section = section
            .as_table_mut()
            .ok_or_else(|| RecipeError::Override {
                arg: arg.clone(),
                msg: format!("`{}` is not a table", path[0]),
            })?;
        section.insert(path[1].clone(), value);
        let check: Result<RecipeFile, _> = toml::Value::Table(table.clone()).try_into();
        if let Err(e) = check {
            return Err(RecipeError::Override {
                arg: arg.clone(),
                msg: e.to_string().trim_end().to_string(),
            });
        }
        overridden.push(path.join("."));
    }
    let resolved: RecipeFile =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| RecipeError::Parse {
                file: file.to_string(),
                msg: e.to_string(),
            })?;
    let lines = Lines {
        text: text.to_string(),
        doc: toml_edit::Document::parse(text.to_string()).ok(),
    };
    let plan = resolve(&resolved, file, &lines, &overridden)?;
    Ok(Loaded {
        file: resolved,
        plan,
    })
}

/// Load a recipe file.
pub fn load(path: &std::path::Path, sets: &[String]) -> Result<Loaded, RecipeError> {
    let text = std::fs::read_to_string(path).map_err(|e| RecipeError::Io {
        file: path.display().to_string(),
        source: e,
    })?;
    load_str(&text, &path.display().to_string(), sets)
}

/// The resolved recipe as TOML (every key, defaults included).
pub fn to_toml(file: &RecipeFile) -> String {
    toml::to_string_pretty(file).expect("recipe serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let l = load_str("", "empty.toml", &[]).unwrap();
        assert_eq!(l.file, RecipeFile::default());
        assert!(matches!(l.plan.source, Source::Arithmetic { .. }));
        assert_eq!(l.plan.mix.mode, didact_core::MixMode::Accumulate);
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let e = load_str("[run]\nseed = 1\n\n[train]\nlr2 = 0.1\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.toml:"), "{e}");
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("unknown field `lr2`"), "{e}");
    }

    #[test]
    fn unknown_section_is_rejected() {
        let e = load_str("[trian]\nlr = 0.1\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `trian`"), "{e}");
    }

    #[test]
    fn wrong_type_names_line() {
        let e = load_str("[train]\n\nlr = \"fast\"\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn out_of_range_names_key_line_and_expectation() {
        let e = load_str(
            "[mix]\nmode = \"ratio\"\nsynthetic_ratio = 1.5\n",
            "r.toml",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "r.toml: `mix.synthetic_ratio` (line 3): expected a fraction in [0, 1]"
        );
        let e = load_str("[mix]\nmode = \"mixed\"\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`mix.mode` (line 2): expected one of \"replace\""),
            "{e}"
        );
        let e = load_str("[model]\nd_model = 100\nn_heads = 3\n", "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`model.n_heads` (line 3)"), "{e}");
    }

    #[test]
    fn non_finite_numbers_and_huge_sizes_are_refused_by_key() {
        for (set, key) in [
            ("train.weight_decay=inf", "train.weight_decay"),
            ("dpo.beta=inf", "dpo.beta"),
            ("train.eps=nan", "train.eps"),
            ("world.train_size=1000000000000", "world.train_size"),
            ("train.batch_size=1000000000", "train.batch_size"),
            ("model.d_ff=1000000000", "model.d_ff"),
            ("eval.eval_size=10000000000", "eval.eval_size"),
            ("generate.n_prompts=1000000000000", "generate.n_prompts"),
        ] {
            let err = load_str("", "r.toml", &[set.to_string()])
                .err()
                .unwrap_or_else(|| panic!("{set} was accepted"))
                .to_string();
            assert!(err.contains(key) && err.contains("--set"), "{set}: {err}");
        }
    }

    #[test]
    fn new_sections_are_validated_by_key() {
        let bad = |text: &str, want: &str| {
            let e = load_str(text, "r.toml", &[]).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        bad(
            "[teacher]\nd_model = 96\nn_heads = 5\n",
            "`teacher.n_heads` (line 3)",
        );
        bad("[judge]\nmode = \"pairwise\"\n", "`judge.mode` (line 2)");
        bad(
            "[train]\nalgo = \"dpo\"\n[generate]\nn_per_prompt = 2\n[dpo]\nscorer = \"judge\"\n",
            "`judge.mode`",
        );
        bad(
            "[generate]\nendpoint = \"localhost:8000\"\n",
            "`generate.endpoint` (line 2)",
        );
        bad(
            "[world]\nkind = \"markov\"\nend_prob = 1.5\n",
            "`world.end_prob` (line 3)",
        );
        bad(
            "[self_instruct]\nrouge_threshold = 0\n",
            "`self_instruct.rouge_threshold`",
        );
        let ok = load_str(
            "[train]\nalgo = \"dpo\"\n[generate]\nn_per_prompt = 2\n[dpo]\nscorer = \"judge\"\n[judge]\nmode = \"score\"\n",
            "r.toml",
            &[],
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let sets = vec![
            "run.rounds=5".to_string(),
            "mix.mode=replace".to_string(),
            "run.name=\"x y\"".to_string(),
        ];
        let l = load_str("[run]\nrounds = 2\n", "r.toml", &sets).unwrap();
        assert_eq!(l.plan.rounds, 5);
        assert_eq!(l.plan.mix.mode, didact_core::MixMode::Replace);
        assert_eq!(l.plan.name, "x y");
        let e = load_str("", "r.toml", &["train.lr=2.0".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "r.toml: `train.lr` (--set): expected a learning rate in (0, 1]"
        );
        let e = load_str("", "r.toml", &["train.nope=1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--set train.nope=1:") && e.contains("unknown field `nope`"),
            "{e}"
        );
        let e = load_str("", "r.toml", &["rounds=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("section.key"), "{e}");
        let e = load_str("", "r.toml", &["run.rounds=many".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn peers_need_in_process_sft_on_their_own_samples() {
        let l = load_str("[run]\npeers = 3\n", "r.toml", &[]).unwrap();
        assert_eq!(l.plan.peers, 3);
        assert!(to_toml(&l.file).contains("peers = 3"));
        let one = load_str("", "r.toml", &[]).unwrap();
        assert_eq!(one.plan.peers, 1);
        assert!(
            !to_toml(&one.file).contains("peers"),
            "one peer is left out of the resolved recipe (older runs resume)"
        );
        let err = |text: &str| load_str(text, "r.toml", &[]).unwrap_err().to_string();
        let e = err("[run]\npeers = 0\n");
        assert!(e.contains("`run.peers`") && e.contains("1..=16"), "{e}");
        let e =
            err("[run]\npeers = 2\n[generate]\nn_per_prompt = 2\n[train]\nalgo = \"sft+dpo\"\n");
        assert!(
            e.contains("`run.peers`") && e.contains("in-process SFT"),
            "{e}"
        );
    }

    #[test]
    fn digits_step_and_digits_schedule_give_each_rounds_operand_digits() {
        let step = load_str(
            "[run]\nrounds = 3\n[world]\ndigits = [1, 3]\n[generate]\ndigits_step = 2\n",
            "r.toml",
            &[],
        )
        .unwrap();
        assert_eq!(step.plan.generate.round_digits, vec![5, 7, 9]);
        assert_eq!(step.plan.generate.digits_of_round(0), None);
        assert_eq!(step.plan.generate.digits_of_round(2), Some(7));
        assert!(!to_toml(&step.file).contains("digits_schedule"));
        let sched = load_str(
            "[run]\nrounds = 4\n[generate]\ndigits_schedule = [4, 5, 5, 6, 9]\n",
            "r.toml",
            &["run.rounds=3".into()],
        )
        .unwrap();
        assert_eq!(sched.plan.generate.round_digits, vec![4, 5, 5]);
        assert_eq!(sched.plan.generate.digits_of_round(3), Some(5));
        assert_eq!(sched.plan.generate.digits_of_round(4), None);
        let text = to_toml(&sched.file);
        assert!(text.contains("digits_schedule = ["), "{text}");
        assert_eq!(
            load_str(&text, "resolved.toml", &[]).unwrap().plan,
            sched.plan
        );
        let off = load_str("", "r.toml", &[]).unwrap();
        assert!(off.plan.generate.round_digits.is_empty());
        assert_eq!(off.plan.generate.digits_of_round(1), None);

        let err = |text: &str| load_str(text, "r.toml", &[]).unwrap_err().to_string();
        let e = err("[run]\nrounds = 3\n[generate]\ndigits_schedule = [4, 5]\n");
        assert!(
            e.contains("`generate.digits_schedule`") && e.contains("at least run.rounds = 3"),
            "{e}"
        );
        let e = err("[run]\nrounds = 2\n[generate]\ndigits_step = 1\ndigits_schedule = [4, 5]\n");
        assert!(e.contains("not both"), "{e}");
        let e = err("[run]\nrounds = 2\n[generate]\ndigits_schedule = [4, 0]\n");
        assert!(e.contains(">= 1"), "{e}");
        let e = err(
            "[run]\nrounds = 2\n[model]\nmax_seq_len = 24\n[generate]\nmax_new_tokens = 6\ndigits_schedule = [8, 4]\n",
        );
        assert!(
            e.contains("round 1 would need 8-digit operands, 27 tokens"),
            "{e}"
        );
        let e = err(
            "[run]\nrounds = 1\n[world]\nkind = \"markov\"\n[generate]\ndigits_schedule = [4]\n",
        );
        assert!(
            e.contains("`generate.digits_schedule`") && e.contains("arithmetic world"),
            "{e}"
        );
    }

    #[test]
    fn resolved_toml_roundtrips() {
        let l = load_str("[run]\nname = \"q\"\n", "r.toml", &[]).unwrap();
        let text = to_toml(&l.file);
        let back = load_str(&text, "resolved.toml", &[]).unwrap();
        assert_eq!(back.file, l.file);
        assert_eq!(back.plan, l.plan);
    }
}

/// One point of a `[sweep]` grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// Directory-safe name (`mode-replace_synthetic_ratio-0.0`, `method-kd_forward`).
    pub name: String,
    /// Each sweep key's value at this point, in key order (an arm's `name` for an arm key).
    pub values: Vec<String>,
    /// The point's `--set`-style overrides.
    pub sets: Vec<String>,
}

/// The points of a recipe's `[sweep]` grid (the cartesian product; the first key varies
/// slowest). A key is either `"section.key" = [values…]`, or a plain name whose values are
/// *arms*: tables `{ name = "…", "section.key" = value, … }` that set several keys at once
/// (`method = [{ name = "seq_kd", "distill.loss" = "none" }, …]`).
pub fn sweep_points(file: &RecipeFile, name: &str) -> Result<Vec<SweepPoint>, RecipeError> {
    if file.sweep.is_empty() {
        return Err(RecipeError::Override {
            arg: "sweep".into(),
            msg: format!(
                "{name}: the recipe has no [sweep] grid (add `\"section.key\" = [values…]` entries, or --set 'sweep.\"section.key\"=[…]'); for a single run use `didact run`"
            ),
        });
    }
    let mut points = vec![SweepPoint {
        name: String::new(),
        values: vec![],
        sets: vec![],
    }];
    for (key, values) in &file.sweep {
        let bad = |msg: &str| RecipeError::Override {
            arg: format!("sweep.{key}"),
            msg: format!("{name}: {msg}"),
        };
        let values = values
            .as_array()
            .ok_or_else(|| bad("expected an array of values"))?;
        if values.is_empty() {
            return Err(bad("expected at least one value"));
        }
        // (the value shown, the name part, the overrides) of each value of this key.
        let mut options: Vec<(String, String, Vec<String>)> = Vec::new();
        for v in values {
            match (key.split('.').count(), v) {
                (2, v) => {
                    let kv = format!("{key}={v}");
                    let shown = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                    options.push((shown, point_name(std::slice::from_ref(&kv)), vec![kv]));
                }
                (1, toml::Value::Table(arm)) => {
                    let arm_name = arm
                        .get("name")
                        .and_then(|n| n.as_str())
                        .ok_or_else(|| bad("each arm needs a `name = \"…\"` (a string)"))?;
                    let mut sets = Vec::new();
                    for (k, v) in arm.iter().filter(|(k, _)| *k != "name") {
                        if k.split('.').count() != 2 {
                            return Err(bad(&format!(
                                "arm {arm_name:?}: keys must be \"section.key\" (got {k:?})"
                            )));
                        }
                        sets.push(format!("{k}={v}"));
                    }
                    let part = point_name(&[format!("{key}={arm_name}")]);
                    options.push((arm_name.to_string(), part, sets));
                }
                _ => {
                    return Err(bad(
                        "sweep keys are \"section.key\" = [values…], or a name = [arms: { name = \"…\", \"section.key\" = value, … }]",
                    ));
                }
            }
        }
        let mut next = Vec::with_capacity(points.len() * options.len());
        for p in &points {
            for (shown, part, sets) in &options {
                let mut q = p.clone();
                q.values.push(shown.clone());
                q.sets.extend(sets.iter().cloned());
                q.name = if q.name.is_empty() {
                    part.clone()
                } else {
                    format!("{}_{part}", q.name)
                };
                next.push(q);
            }
        }
        points = next;
    }
    Ok(points)
}

/// A directory-safe name for overrides (`mix.mode=replace,run.seed=2` → `mode-replace_seed-2`).
pub fn point_name(point: &[String]) -> String {
    if point.is_empty() {
        return "base".into();
    }
    point
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let k = k.rsplit('.').next().unwrap_or(k);
            let v: String = v
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{k}-{}", v.trim_matches('_'))
        })
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn grid_expands_in_key_order_and_names_points() {
        let text = "[sweep]\n\"mix.synthetic_ratio\" = [0.0, 0.5]\n\"mix.mode\" = [\"replace\", \"accumulate\"]\n";
        let loaded = load_str(text, "t.toml", &[]).unwrap();
        let pts = sweep_points(&loaded.file, "t.toml").unwrap();
        assert_eq!(pts.len(), 4);
        assert_eq!(
            pts[0].sets,
            vec![
                "mix.mode=\"replace\"".to_string(),
                "mix.synthetic_ratio=0.0".to_string()
            ]
        );
        assert_eq!(pts[0].values, vec!["replace", "0.0"]);
        assert_eq!(pts[0].name, "mode-replace_synthetic_ratio-0.0");
        // Every point is a valid override set.
        for p in &pts {
            load_str(text, "t.toml", &p.sets).unwrap();
        }
        let bad = load_str("[sweep]\n\"mix\" = [1]\n", "t.toml", &[]).unwrap();
        assert!(sweep_points(&bad.file, "t.toml").is_err());
    }

    #[test]
    fn arms_set_several_keys_and_name_the_point() {
        let text = "[sweep]\nmethod = [{ name = \"seq_kd\", \"distill.loss\" = \"none\" }, { name = \"kd_jsd_on\", \"distill.loss\" = \"jsd\", \"distill.on_policy\" = 0.5 }]\n\"run.seed\" = [1, 2]\n[teacher]\noracle = true\n[world]\nkind = \"markov\"\n";
        let loaded = load_str(text, "t.toml", &[]).unwrap();
        let pts = sweep_points(&loaded.file, "t.toml").unwrap();
        assert_eq!(pts.len(), 4);
        let p = pts.iter().find(|p| p.values == ["kd_jsd_on", "2"]).unwrap();
        assert_eq!(p.name, "method-kd_jsd_on_seed-2");
        let l = load_str(text, "t.toml", &p.sets).unwrap();
        assert_eq!(l.plan.distill.as_ref().unwrap().on_policy, 0.5);
        assert_eq!(l.plan.seed, 2);
        let nameless = "[sweep]\nmethod = [{ \"distill.loss\" = \"none\" }]\n";
        let bad = load_str(nameless, "t.toml", &[]).unwrap();
        let err = sweep_points(&bad.file, "t.toml").unwrap_err().to_string();
        assert!(err.contains("name"), "{err}");
    }
}
