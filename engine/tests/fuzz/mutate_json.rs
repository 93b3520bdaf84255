//! Structure-aware mutations of JSON documents: boundary numbers, deleted and duplicated
//! members, hostile strings, type confusion, splices from other seeds, and targeted knobs
//! (the scenario fields whose extremes have broken the simulator before).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

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

/// Scenario names that are paths, or not names at all.
const NAMES: [&str; 12] =
    ["..", "../..", ".", "a/b", "@WORK@/abs", "", "../escape", "a/../../b", "-", " ", "out", "runs"];

/// A knob of a case and a value at one of its edges, as (dotted path, value).
fn targeted(rng: &mut ChaCha8Rng) -> (String, Value) {
    let pick = |rng: &mut ChaCha8Rng, xs: &[Value]| xs.choose(rng).unwrap().clone();
    let big = [
        json!(0),
        json!(1),
        json!(15),
        json!(4294967296u64),
        json!(4294967306u64),
        json!(1_000_000_000_000u64),
        json!(u64::MAX),
    ];
    let cvs = [json!(1e155), json!(1e-170), json!(0), json!(1e308), json!(1e-12), json!(40)];
    let rates = [json!(1e-12), json!(1e308), json!(0), json!(5e-324), json!(1e6)];
    let factors = [json!(1e308), json!(1e6), json!(0), json!(1e-12), json!(-1)];
    let len = *[1u64, 16, 128, 4096, 4294967295].choose(rng).unwrap();
    match rng.gen_range(0..20) {
        0 => ("engine.num_gpu_blocks_override".into(), pick(rng, &big)),
        1 => {
            ("workload.arrival.multipliers".into(), json!([{"start_s": 0, "end_s": 1, "factor": pick(rng, &factors)}]))
        }
        2 => ("workload.arrival".into(), json!({"process": "gamma", "rate": 5, "cv": pick(rng, &cvs)})),
        3 => ("workload.prompt".into(), json!({"dist": "lognormal", "mean": 200, "cv": pick(rng, &cvs)})),
        4 => ("workload.output".into(), json!({"dist": "normal", "mean": 100, "std": pick(rng, &cvs)})),
        5 => (
            "workload.prefix".into(),
            json!({"groups": pick(rng, &[json!(0), json!(1), json!(4294967295u64)]),
                   "tokens": pick(rng, &[json!(4294967295u64), json!(0), json!(1), json!(4294967000u64)]),
                   "fraction": pick(rng, &[json!(1), json!(0), json!(1e-12), json!(2)]), "zipf_s": 1.1}),
        ),
        6 => ("workload.arrival.rate".into(), pick(rng, &rates)),
        7 => {
            let key =
                ["engine.max_model_len", "engine.max_num_batched_tokens", "engine.block_size", "engine.max_num_seqs"]
                    .choose(rng)
                    .unwrap();
            (key.to_string(), pick(rng, &[json!(0), json!(1), json!(3), json!(4294967295u64), json!(len)]))
        }
        8 => ("engine.long_prefill_token_threshold".into(), pick(rng, &[json!(1), json!(4294967295u64)])),
        9 => ("tp".into(), pick(rng, &[json!(0), json!(3), json!(1024), json!(4294967295u64)])),
        10 => ("fleet".into(), json!({"replicas": pick(rng, &[json!(0), json!(1), json!(100000)]), "max_waiting": 0})),
        11 => ("engine.gpu_memory_utilization".into(), pick(rng, &[json!(0), json!(1), json!(1.5), json!(1e-12)])),
        // A prompt exactly as long as the context, and one token longer.
        12 => (
            "workload".into(),
            json!({"arrival": {"rate": 2}, "num_requests": 3,
                   "prompt": {"dist": "fixed", "value": len + rng.gen_range(0..2)},
                   "output": {"dist": "fixed", "value": 4}, "__engine_len": len}),
        ),
        13 => (
            "workload".into(),
            json!({"clients": {"users": 4, "think_time_s": 0}, "num_requests": 12,
                   "arrival": {"rate": 1, "multipliers": [{"start_s": 0, "end_s": 10, "factor": pick(rng, &factors)}]},
                   "shared_prefix": {"num_groups": 2, "num_prompts_per_group": 2, "system_prompt_len": 64,
                                     "question_len": 32, "output_len": 16, "enable_multi_turn_chat": true}}),
        ),
        14 => (
            "workload.clients".into(),
            json!({"users": pick(rng, &[json!(0), json!(1), json!(100000)]), "think_time_s": pick(rng, &rates),
                   "ramp_up_s": pick(rng, &[json!(0), json!(1e308)])}),
        ),
        15 => (
            "batch".into(),
            json!({"rows": pick(rng, &[json!(1), json!(40), json!(u64::MAX)]),
                   "batch_size": pick(rng, &[json!(0), json!(1), json!(4294967295u64)]),
                   "concurrency": pick(rng, &[json!(0), json!(1), json!(4)]), "startup_s": pick(rng, &rates)}),
        ),
        16 => (
            "step_time".into(),
            json!({"model": "constant", "step_ms": pick(rng, &rates), "token_us": pick(rng, &rates)}),
        ),
        17 => ("limits.max_sim_time_s".into(), pick(rng, &[json!(0), json!(1e-12), json!(1e308), json!(-1)])),
        18 => (
            "workload.arrival".into(),
            json!({"process": "constant", "stages": [{"duration_s": pick(rng, &rates), "rate": pick(rng, &rates)}]}),
        ),
        _ => ("workload.duration_s".into(), pick(rng, &[json!(0), json!(1e-12), json!(1e308), json!(5e-324)])),
    }
}

/// Sets `value` at a dotted path under `root`, creating objects on the way.
fn set_dotted(root: &mut Value, dotted: &str, value: Value) {
    let mut node = root;
    let keys: Vec<&str> = dotted.split('.').collect();
    for key in &keys[..keys.len() - 1] {
        if !node.get(*key).is_some_and(Value::is_object) {
            if !node.is_object() {
                return;
            }
            node[*key] = json!({});
        }
        node = node.get_mut(*key).unwrap();
    }
    if node.is_object() {
        node[keys[keys.len() - 1]] = value;
    }
}

/// Applies a targeted knob to `base` or to one case (as a dotted override).
fn apply_targeted(doc: &mut Value, rng: &mut ChaCha8Rng) -> String {
    let (key, mut value) = targeted(rng);
    // The "prompt exactly the context" knob also sets max_model_len.
    let engine_len = value.as_object_mut().and_then(|m| m.remove("__engine_len"));
    let cases = doc.get("cases").and_then(Value::as_array).map_or(0, Vec::len);
    if cases > 0 && rng.gen_bool(0.4) {
        let i = rng.gen_range(0..cases);
        let case = &mut doc["cases"][i];
        if let Some(len) = &engine_len {
            case["engine.max_model_len"] = len.clone();
        }
        case[key.as_str()] = value.clone();
        return format!("targeted cases[{i}].{key} = {}", short(&value));
    }
    if doc.get("base").is_some_and(Value::is_object) {
        if let Some(len) = engine_len {
            set_dotted(&mut doc["base"], "engine.max_model_len", len);
        }
        set_dotted(&mut doc["base"], &key, value.clone());
    }
    format!("targeted base.{key} = {}", short(&value))
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        format!("{}...({} bytes)", &text[..text.char_indices().nth(60).map_or(text.len(), |(i, _)| i)], text.len())
    } else {
        text
    }
}

/// Matrix axes: `k` of them, each with two values when the product should overflow.
fn many_axes(rng: &mut ChaCha8Rng) -> (usize, Value) {
    let k = *[2usize, 16, 32, 63, 64, 65, 128].choose(rng).unwrap();
    let two = k <= 2 || k >= 63;
    let mut axes = Map::new();
    for i in 0..k {
        let values = if two { json!([i + 1, i + 2]) } else { json!([i + 1]) };
        let key = if i == 0 { "engine.max_num_seqs".to_string() } else { format!("engine.max_num_seqs{i}") };
        axes.insert(key, values);
    }
    (k, Value::Object(axes))
}

fn mutate_cases(doc: &mut Value, rng: &mut ChaCha8Rng) -> String {
    let names: Vec<Value> = match rng.gen_range(0..5) {
        0 => vec![json!("a b"), json!("a_b")],
        1 => vec![json!("same"), json!("same")],
        2 => vec![json!(hostile_string(rng))],
        3 => vec![json!("x=1"), json!("x"), json!("x=1 quant=fp16")],
        _ => vec![json!("case/1"), json!("case?1"), json!("case:1")],
    };
    let cases: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    let note = format!("cases = {}", short(&Value::Array(cases.clone())));
    if doc.is_object() {
        doc["cases"] = Value::Array(cases);
    }
    note
}

fn mutate_seeds(doc: &mut Value, rng: &mut ChaCha8Rng) -> String {
    let seeds = [
        json!({"from": 0, "to": u64::MAX}),
        json!([u64::MAX]),
        json!([1, 1]),
        json!([]),
        json!({"from": 5, "to": 1}),
        json!({"from": u64::MAX - 1, "to": u64::MAX}),
        json!({"from": 1, "to": 9999}),
        json!([0, 18446744073709551615u64, 9007199254740993u64]),
    ];
    let value = seeds.choose(rng).unwrap().clone();
    let note = format!("seeds = {value}");
    if doc.is_object() {
        doc["seeds"] = value;
    }
    note
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
