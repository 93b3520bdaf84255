//! `base` + `cases` (dotted-path overrides) + `matrix` (cartesian product) → one JSON value
//! per case, before typing and validation.

use serde_json::{Map, Value};

use super::file::{ExpectFile, ScenarioFile};
use super::validate::{typed, Ctx, MAX_CASES};

/// Sets `value` at a dotted path inside `target`, creating missing objects.
pub(super) fn set_dotted(target: &mut Value, dotted: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{dotted}` is not a dotted path like `engine.max_num_seqs`"));
    }
    let mut node = target;
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(format!(
                "`{}` is not an object, so `{dotted}` cannot be set; a dotted path can only be set inside an object",
                parts[..i].join(".")
            ));
        };
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        node = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    unreachable!("the loop returns at the last part")
}

pub(super) type Expanded = (String, Value, Option<ExpectFile>, String);

/// `base` + each case's overrides, then each matrix combination on top.
pub(super) fn expand(file: &ScenarioFile, ctx: &mut Ctx<'_>) -> Vec<Expanded> {
    let mut cases: Vec<Expanded> = Vec::new();
    if file.cases.is_empty() {
        cases.push(("base".into(), file.base.clone(), None, "base".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, case) in file.cases.iter().enumerate() {
        let path = format!("cases[{i}]");
        let name = match case.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            _ => {
                ctx.push(&path, "each case needs a non-empty string `name`");
                continue;
            }
        };
        if !names.insert(name.clone()) {
            ctx.push(format!("{path}.name"), format!("duplicate case name `{name}`; case names must be unique"));
        }
        let mut value = file.base.clone();
        let mut expect = None;
        for (key, override_value) in case {
            match key.as_str() {
                "name" | "description" => {}
                "expect" => expect = typed::<ExpectFile>(override_value, &format!("{path}.expect"), ctx),
                dotted => {
                    if let Err(message) = set_dotted(&mut value, dotted, override_value.clone()) {
                        ctx.push(format!("{path}.{dotted}"), message);
                    }
                }
            }
        }
        cases.push((name, value, expect, path));
    }
    let Some(matrix) = &file.matrix else {
        super::names::check_cases(&cases, ctx);
        return cases;
    };
    let mut axes = Vec::new();
    for (axis, values) in matrix {
        match values {
            Value::Array(values) if !values.is_empty() => axes.push((axis.clone(), values.clone())),
            _ => ctx.push(format!("matrix.{axis}"), "a matrix axis needs a non-empty list of values"),
        }
    }
    // Counted with checked arithmetic: 64 axes of two values would wrap a plain product to 0.
    let combinations = axes.iter().try_fold(cases.len(), |n, a| n.checked_mul(a.1.len()));
    if combinations.is_none_or(|n| n > MAX_CASES) {
        let count = combinations.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
        ctx.push("matrix", format!("expands to {count} cases; at most {MAX_CASES}: remove axes or values"));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, value, expect, path) in cases {
        let mut partial = vec![(name.clone(), value)];
        for (axis, values) in &axes {
            let mut next = Vec::new();
            for (name, value) in &partial {
                for v in values {
                    let mut value = value.clone();
                    if let Err(message) = set_dotted(&mut value, axis, v.clone()) {
                        ctx.push(format!("matrix.{axis}"), message);
                        return Vec::new();
                    }
                    next.push((format!("{name} {}={}", axis.rsplit('.').next().unwrap_or(axis), short(v)), value));
                }
            }
            partial = next;
        }
        let base_name = if file.cases.is_empty() { None } else { Some(name) };
        for (case_name, value) in partial {
            let case_name = match &base_name {
                Some(_) => case_name,
                None => case_name.trim_start_matches("base ").to_string(),
            };
            out.push((case_name, value, expect.clone(), path.clone()));
        }
    }
    super::names::check_cases(&out, ctx);
    out
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
