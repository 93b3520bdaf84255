//! Structure-aware mutations of JSON documents: boundary numbers, deleted and duplicated
//! members, hostile strings, type confusion, splices from other seeds, and targeted knobs
//! (the scenario fields whose extremes have broken the simulator before).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::mutate_scenario::{apply_targeted, many_axes, mutate_cases, mutate_seeds, NAMES};

/// Marks an object key that the serializer turns into a duplicate of `key` (serde_json's
/// `Value` cannot hold duplicate keys; scenario parsing must reject them).
pub const DUP_MARK: &str = "__fuzz_dup__";

/// Stands for the absolute path of the input's work folder, substituted when files are
/// written: a name like `@WORK@/x` is an absolute path outside `--out`.
pub const WORK_MARK: &str = "@WORK@";

#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub type JsonPath = Vec<Seg>;

pub fn show(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(&k.chars().take(40).collect::<String>());
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// Every node's path, parents before children.
pub fn paths(value: &Value) -> Vec<JsonPath> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        match get(value, &path) {
            Some(Value::Object(map)) => {
                out.extend(map.keys().map(|k| [path.clone(), vec![Seg::Key(k.clone())]].concat()));
            }
            Some(Value::Array(items)) => {
                out.extend((0..items.len()).map(|j| [path.clone(), vec![Seg::Index(j)]].concat()))
            }
            _ => {}
        }
        i += 1;
    }
    out
}

pub fn get<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

pub fn get_mut<'a>(value: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// Removes the node at `path` (not the root); true when something was removed.
pub fn remove(value: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    match (get_mut(value, parent), last) {
        (Some(Value::Object(map)), Seg::Key(k)) => map.shift_remove(k).is_some(),
        (Some(Value::Array(items)), Seg::Index(i)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

/// Serializes, turning duplicate marks into real duplicate keys.
pub fn to_text(value: &Value, pretty: bool) -> String {
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) }.unwrap();
    text.replace(&format!("\"{DUP_MARK}"), "\"")
}

/// Numbers at the edges of every integer and float type the simulator uses.
pub fn boundary_number(rng: &mut ChaCha8Rng) -> Value {
    let pool: [Value; 30] = [
        json!(0),
        json!(-1),
        json!(1),
        json!(2),
        json!(0.5),
        json!(1e-12),
        json!(1e-170),
        json!(5e-324),
        json!(1e155),
        json!(1e308),
        json!(-1e308),
        json!(1e6),
        json!(1e9),
        json!(1e12),
        json!(1e18),
        json!(255),
        json!(65536),
        json!(2147483648u64),
        json!(4294967295u64),
        json!(4294967296u64),
        json!(4294967306u64),
        json!(9007199254740992u64),
        json!(9007199254740993u64),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(-0.0),
        json!(3.5e38),
        json!(1.7976931348623157e308),
        json!(0.1),
    ];
    pool.choose(rng).unwrap().clone()
}

/// Strings that have no business being names or paths, and names of the right kinds.
pub fn hostile_string(rng: &mut ChaCha8Rng) -> String {
    let pool: [&str; 36] = [
        "..",
        ".",
        "../..",
        "../escape",
        "a/b",
        "a/../../b",
        "",
        " ",
        "a b",
        "a_b",
        "\u{e9}\u{540d}\u{1f642}",
        "\u{0}",
        "-",
        "--help",
        "NaN",
        "inf",
        "-1",
        "1e999",
        "config.json",
        "../in/config.json",
        "@WORK@/abs",
        "LLAMA-2-7B",
        "meta-llama/Llama-2-7b-hf",
        "A100_40GB",
        "h100",
        "fp8",
        "int4",
        "gamma",
        "lognormal",
        "skip",
        "generic",
        "mooncake",
        "offline",
        "static",
        "prefix_affinity",
        "nonexistent.jsonl.gz",
    ];
    match rng.gen_range(0..12) {
        0 => "x".repeat(300),
        1 => "y".repeat(70_000),
        _ => pool.choose(rng).unwrap().to_string(),
    }
}

/// A short form of a value for notes.
pub fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        format!("{}...({} bytes)", &text[..text.char_indices().nth(60).map_or(text.len(), |(i, _)| i)], text.len())
    } else {
        text
    }
}

/// One random mutation of `doc`; returns a note saying what it did.
pub fn mutate_once(
    doc: &mut Value,
    rng: &mut ChaCha8Rng,
    donors: &BTreeMap<String, Vec<Value>>,
    scenario: bool,
) -> String {
    let all = paths(doc);
    let path = all.choose(rng).unwrap().clone();
    let op = rng.gen_range(0..100);
    match op {
        0..=25 => {
            let numbers: Vec<&JsonPath> = all.iter().filter(|p| get(doc, p).is_some_and(Value::is_number)).collect();
            let target = numbers.choose(rng).map_or(path.clone(), |p| (*p).clone());
            let value = match rng.gen_range(0..8) {
                0 => json!(["NaN", "inf", "-inf", "1e999", "", "0x10"].choose(rng).unwrap()),
                1 => {
                    let x = get(doc, &target).and_then(Value::as_f64).unwrap_or(1.0);
                    json!(x * [1e6, 1e-6, -1.0, 2.0].choose(rng).unwrap())
                }
                _ => boundary_number(rng),
            };
            let note = format!("number {} = {}", show(&target), short(&value));
            if let Some(node) = get_mut(doc, &target) {
                *node = value;
            }
            note
        }
        26..=36 => {
            let note = format!("delete {}", show(&path));
            remove(doc, &path);
            note
        }
        37..=43 => duplicate(doc, &path),
        44..=54 => {
            let strings: Vec<&JsonPath> = all.iter().filter(|p| get(doc, p).is_some_and(Value::is_string)).collect();
            let target = strings.choose(rng).map_or(path.clone(), |p| (*p).clone());
            let value = hostile_string(rng);
            let note = format!("string {} = {}", show(&target), short(&json!(value)));
            if let Some(node) = get_mut(doc, &target) {
                *node = json!(value);
            }
            note
        }
        55..=58 => {
            let value = [json!(null), json!(true), json!([]), json!({}), json!("1"), json!(1), json!([1, 2])]
                .choose(rng)
                .unwrap()
                .clone();
            let note = format!("type {} = {value}", show(&path));
            if let Some(node) = get_mut(doc, &path) {
                *node = value;
            }
            note
        }
        59..=72 => splice(doc, rng, donors, &all),
        73..=86 if scenario => apply_targeted(doc, rng),
        87 if scenario => {
            let (k, axes) = many_axes(rng);
            if doc.is_object() {
                doc["matrix"] = axes;
            }
            format!("matrix with {k} axes")
        }
        88..=91 if scenario => mutate_cases(doc, rng),
        92..=93 if scenario => mutate_seeds(doc, rng),
        _ if scenario => {
            let name = if rng.gen_bool(0.7) { NAMES.choose(rng).unwrap().to_string() } else { hostile_string(rng) };
            let note = format!("name = {}", short(&json!(name)));
            if doc.is_object() {
                doc["name"] = json!(name);
            }
            note
        }
        _ => {
            let value = boundary_number(rng);
            let note = format!("number {} = {}", show(&path), short(&value));
            if let Some(node) = get_mut(doc, &path) {
                *node = value;
            }
            note
        }
    }
}

/// Replaces a member with a value that some seed holds under the same key, or adds a member
/// that some seed has to a random object.
fn splice(doc: &mut Value, rng: &mut ChaCha8Rng, donors: &BTreeMap<String, Vec<Value>>, all: &[JsonPath]) -> String {
    let keyed: Vec<&JsonPath> =
        all.iter().filter(|p| matches!(p.last(), Some(Seg::Key(k)) if donors.contains_key(k))).collect();
    if let (Some(path), true) = (keyed.choose(rng), rng.gen_bool(0.6)) {
        let Some(Seg::Key(key)) = path.last() else { unreachable!() };
        let value = donors[key].choose(rng).unwrap().clone();
        let note = format!("splice {} = {}", show(path), short(&value));
        if let Some(node) = get_mut(doc, path) {
            *node = value;
        }
        return note;
    }
    let objects: Vec<&JsonPath> = all.iter().filter(|p| get(doc, p).is_some_and(Value::is_object)).collect();
    let Some(target) = objects.choose(rng) else { return "splice: no object".into() };
    let keys: Vec<&String> = donors.keys().collect();
    let key = (*keys.choose(rng).unwrap()).clone();
    let value = donors[&key].choose(rng).unwrap().clone();
    let note = format!("splice add {}.{key} = {}", show(target), short(&value));
    if let Some(Value::Object(map)) = get_mut(doc, target) {
        map.insert(key, value);
    }
    note
}

/// Duplicates an array element in place, or an object member as a duplicate key.
fn duplicate(doc: &mut Value, path: &[Seg]) -> String {
    let value = get(doc, path).cloned().unwrap_or(Value::Null);
    match path.split_last() {
        Some((Seg::Index(i), parent)) => {
            if let Some(Value::Array(items)) = get_mut(doc, parent) {
                items.insert(*i, value);
            }
            format!("duplicate element {}", show(path))
        }
        Some((Seg::Key(key), parent)) => {
            if let Some(Value::Object(map)) = get_mut(doc, parent) {
                map.insert(format!("{DUP_MARK}{key}"), value);
            }
            format!("duplicate key {}", show(path))
        }
        None => "duplicate: the root".into(),
    }
}
