//! Scenario-shaped mutations: the knobs whose extremes have broken the simulator before
//! (a catalogue of dotted paths and edge values), matrix axes by the dozen, colliding case
//! names, seeds at the edges, names that are paths.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::mutate_json::{hostile_string, short};

/// Scenario names that are paths, or not names at all.
pub const NAMES: [&str; 12] =
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
            json!({"num_requests": pick(rng, &[json!(12), json!(200_000)]),
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
pub fn apply_targeted(doc: &mut Value, rng: &mut ChaCha8Rng) -> String {
    let (key, mut value) = targeted(rng);
    // The "prompt exactly the context" knob also sets max_model_len.
    let engine_len = value.as_object_mut().and_then(|m| m.remove("__engine_len"));
    let cases = doc.get("cases").and_then(Value::as_array).map_or(0, Vec::len);
    if cases > 0 && rng.gen_bool(0.4) {
        let i = rng.gen_range(0..cases);
        let case = &mut doc["cases"][i];
        // An earlier mutation may have made the case a number or a list: leave it alone.
        if !case.is_object() {
            return format!("targeted cases[{i}] skipped: not an object");
        }
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

/// Matrix axes: `k` of them, each with two values when the product should overflow.
pub fn many_axes(rng: &mut ChaCha8Rng) -> (usize, Value) {
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

pub fn mutate_cases(doc: &mut Value, rng: &mut ChaCha8Rng) -> String {
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

pub fn mutate_seeds(doc: &mut Value, rng: &mut ChaCha8Rng) -> String {
    let seeds = [
        json!({"from": 0, "to": u64::MAX}),
        json!([u64::MAX]),
        json!([1, 1]),
        json!([]),
        json!({"from": 5, "to": 1}),
        json!({"from": u64::MAX - 1, "to": u64::MAX}),
        json!({"from": 1, "to": 40}),
        json!([0, 18446744073709551615u64, 9007199254740993u64]),
    ];
    let value = seeds.choose(rng).unwrap().clone();
    let note = format!("seeds = {value}");
    if doc.is_object() {
        doc["seeds"] = value;
    }
    note
}
