//! One fuzz input: the files it needs (a scenario with its trace or config.json, or a trace
//! alone) and the commands that read them, drawn from the corpus by a ChaCha stream that
//! depends only on the fuzz seed and the input's index.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::corpus::Corpus;
use crate::{mutate_bytes, mutate_json};

/// A file written into the input's `in/` folder.
#[derive(Clone, Debug)]
pub struct InputFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// One command line, run with its own fresh folder as the working directory.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub args: Vec<String>,
    /// Run only when the command before it exited 0 (`run` after `validate`).
    pub after_ok: bool,
}

#[derive(Clone, Debug)]
pub struct Input {
    pub index: u64,
    pub origin: String,
    pub notes: Vec<String>,
    pub files: Vec<InputFile>,
    pub commands: Vec<CommandSpec>,
    /// The scenario as written, for the oracles (none for a bare trace).
    pub scenario: Option<Value>,
    /// A config.json dimension that makes no model (`num_hidden_layers = 0`), if any.
    pub degenerate_config: Option<String>,
}

/// The scenario file's name inside `in/`, and how commands (run from `cwd/`) name it.
pub const SCENARIO: &str = "scenario.json";

fn in_path(name: &str) -> String {
    format!("../in/{name}")
}

pub fn generate(corpus: &Corpus, seed: u64, index: u64) -> Input {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let mut input = Input {
        index,
        origin: String::new(),
        notes: Vec::new(),
        files: Vec::new(),
        commands: Vec::new(),
        scenario: None,
        degenerate_config: None,
    };
    let n_scenarios = corpus.scenarios.len() as u64;
    let n_configs = corpus.hf_configs.len() as u64;
    let unmutated = index < corpus.unmutated_count();
    if unmutated {
        match index {
            i if i < n_scenarios => scenario_input(corpus, &mut rng, &mut input, Some(i as usize)),
            i if i < n_scenarios + n_configs => {
                hf_input(corpus, &mut rng, &mut input, Some((i - n_scenarios) as usize))
            }
            i => trace_input(corpus, &mut rng, &mut input, Some((i - n_scenarios - n_configs) as usize)),
        }
        return input;
    }
    match rng.gen_range(0..100) {
        0..=49 => scenario_input(corpus, &mut rng, &mut input, None),
        50..=69 => hf_input(corpus, &mut rng, &mut input, None),
        _ => trace_input(corpus, &mut rng, &mut input, None),
    }
    input
}

/// How many mutations: mostly one or two, so that most inputs stay near valid.
fn mutation_count(rng: &mut ChaCha8Rng) -> usize {
    let mut n = 1;
    while n < 6 && rng.gen_bool(0.4) {
        n += 1;
    }
    n
}

fn scenario_input(corpus: &Corpus, rng: &mut ChaCha8Rng, input: &mut Input, unmutated: Option<usize>) {
    let seed = match unmutated {
        Some(i) => &corpus.scenarios[i],
        None => corpus.scenarios.choose(rng).unwrap(),
    };
    input.origin = format!("scenarios/{}", seed.name);
    let mut doc = seed.json();
    if unmutated.is_none() {
        for _ in 0..mutation_count(rng) {
            let note = mutate_json::mutate_once(&mut doc, rng, &corpus.donors, true);
            input.notes.push(note);
        }
    }
    finish_scenario(corpus, rng, input, doc, unmutated.is_some());
}

fn hf_input(corpus: &Corpus, rng: &mut ChaCha8Rng, input: &mut Input, unmutated: Option<usize>) {
    let seed = match unmutated {
        Some(i) => &corpus.hf_configs[i],
        None => corpus.hf_configs.choose(rng).unwrap(),
    };
    input.origin = format!("hf/{} with scenarios/hf_model.json", seed.name);
    let mut config = seed.json();
    let mut doc = corpus.hf_scenario.json();
    if unmutated.is_none() {
        for _ in 0..mutation_count(rng) {
            let note = mutate_json::mutate_once(&mut config, rng, &corpus.donors, false);
            input.notes.push(format!("config.json: {note}"));
        }
        if rng.gen_bool(0.1) {
            let key = [
                "num_hidden_layers",
                "hidden_size",
                "num_attention_heads",
                "vocab_size",
                "intermediate_size",
                "num_key_value_heads",
            ]
            .choose(rng)
            .unwrap();
            let target = if config.get("text_config").is_some() { &mut config["text_config"] } else { &mut config };
            if target.is_object() {
                target[*key] = json!(0);
                input.notes.push(format!("config.json: {key} = 0"));
            }
        }
        if rng.gen_bool(0.3) {
            let note = mutate_json::mutate_once(&mut doc, rng, &corpus.donors, true);
            input.notes.push(note);
        }
        if rng.gen_bool(0.3) {
            let mut generation = corpus.generation_config.json();
            if rng.gen_bool(0.5) {
                let note = mutate_json::mutate_once(&mut generation, rng, &corpus.donors, false);
                input.notes.push(format!("generation_config.json: {note}"));
            }
            push_file(input, "generation_config.json", mutate_json::to_text(&generation, true).into_bytes());
        }
    }
    input.degenerate_config = degenerate(&config);
    push_file(input, "config.json", mutate_json::to_text(&config, true).into_bytes());
    finish_scenario(corpus, rng, input, doc, unmutated.is_some());
}

/// A config.json dimension that cannot describe a model.
pub fn degenerate(config: &Value) -> Option<String> {
    let c = config.get("text_config").unwrap_or(config);
    let experts = c.get("num_local_experts").or(c.get("num_experts")).and_then(Value::as_u64);
    // A MoE model with its own expert size has no use for the dense intermediate size.
    let dense_unused =
        experts.is_some_and(|e| e > 1) && c.get("moe_intermediate_size").and_then(Value::as_u64).is_some_and(|m| m > 0);
    for key in [
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
        "intermediate_size",
        "num_key_value_heads",
        "head_dim",
    ] {
        if c.get(key).and_then(Value::as_u64) == Some(0) && !(key == "intermediate_size" && dense_unused) {
            return Some(format!("{key} = 0"));
        }
    }
    let per_token = c.get("num_experts_per_tok").and_then(Value::as_u64);
    match (experts, per_token) {
        (Some(e), Some(0)) if e > 1 => Some("num_experts_per_tok = 0".into()),
        (Some(e), Some(k)) if e > 1 && k > e => Some(format!("num_experts_per_tok {k} > {e} experts")),
        _ => None,
    }
}

fn push_file(input: &mut Input, name: &str, bytes: Vec<u8>) {
    input.files.retain(|f| f.name != name);
    input.files.push(InputFile { name: name.to_string(), bytes });
}

/// A relative path that stays inside `in/` (no `..`, not absolute).
fn simple_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.len() < 200
        && path.split('/').all(|part| !part.is_empty() && part != ".." && part != ".")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

/// Bounds the work of the runs (the event limit, shared out over the runs) so that a
/// timeout means a hang rather than a big sweep, writes the files the scenario reads, and
/// adds the `validate` and `run` commands.
fn finish_scenario(corpus: &Corpus, rng: &mut ChaCha8Rng, input: &mut Input, mut doc: Value, unmutated: bool) {
    bound_events(&mut doc);
    if let Some(path) = doc.pointer("/base/workload/trace/path").and_then(Value::as_str).filter(|p| simple_relative(p))
    {
        if let Some(trace) = corpus.trace_for(path) {
            let mut bytes = trace.bytes.clone();
            if !unmutated && rng.gen_bool(0.4) {
                for _ in 0..mutation_count(rng) {
                    let note = mutate_bytes::mutate_once(&mut bytes, rng, &corpus.donors);
                    input.notes.push(format!("{path}: {note}"));
                }
            }
            if path.ends_with(".gz") {
                bytes = mutate_bytes::gzip(&bytes);
                if !unmutated && rng.gen_bool(0.3) {
                    let note = mutate_bytes::damage_gzip(&mut bytes, rng);
                    input.notes.push(format!("{path}: {note}"));
                }
            }
            push_file(input, path, bytes);
        }
    }
    if let Some(model) =
        doc.pointer("/base/model").and_then(Value::as_str).filter(|m| m.ends_with(".json") && simple_relative(m))
    {
        if !input.files.iter().any(|f| f.name == model) {
            let config = corpus.hf_configs.choose(rng).unwrap();
            push_file(input, model, config.bytes.clone());
        }
    }
    let mut text = mutate_json::to_text(&doc, true);
    if !unmutated && rng.gen_bool(0.03) {
        let at = rng.gen_range(0..=text.len());
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let junk = *["1e999", "NaN", "", "\u{feff}", "}", "\"\\ud800\""].choose(rng).unwrap();
        text.truncate(if junk.is_empty() { at } else { text.len() });
        text.insert_str(at.min(text.len()), junk);
        input.notes.push(format!("scenario text: {junk:?} at byte {at}"));
    }
    push_file(input, SCENARIO, text.into_bytes());
    input.scenario = Some(doc);
    input.commands.push(CommandSpec {
        name: "validate",
        args: vec!["validate".into(), in_path(SCENARIO)],
        after_ok: false,
    });
    let mut args =
        vec!["run".into(), in_path(SCENARIO), "--out".into(), "out".into(), "--requests".into(), "--quiet".into()];
    if !unmutated {
        args.extend(run_flags(rng, input));
    }
    input.commands.push(CommandSpec { name: "run", args, after_ok: true });
}

/// Occasional command-line flags of `run` at their edges.
fn run_flags(rng: &mut ChaCha8Rng, input: &mut Input) -> Vec<String> {
    let options: [(&str, f64, &[&str]); 4] = [
        ("--seeds", 0.05, &["1..3", "0", "18446744073709551615", "1,1", "3..1", "1..18446744073709551615", ""]),
        ("--scale", 0.05, &["0.5", "1e-12", "1e308", "0", "-1", "NaN", "3"]),
        ("--timeline-interval-ms", 0.05, &["0", "1", "1000", "18446744073709551615"]),
        ("--shard", 0.03, &["1/2", "2/2", "0/0", "3/2", "1/18446744073709551615"]),
    ];
    let mut flags: Vec<String> = Vec::new();
    for (flag, p, values) in options {
        if rng.gen_bool(p) {
            if flag == "--timeline-interval-ms" {
                flags.push("--timeline".into());
            }
            flags.extend([flag.to_string(), values.choose(rng).unwrap().to_string()]);
        }
    }
    if !flags.is_empty() {
        input.notes.push(format!("run flags {}", flags.join(" ")));
    }
    flags
}

/// The number of (case, seed) runs a scenario asks for, roughly (matrix axes multiply).
fn run_count(doc: &Value) -> f64 {
    let cases = doc.get("cases").and_then(Value::as_array).map_or(1, |c| c.len().max(1)) as f64;
    let matrix: f64 = doc
        .get("matrix")
        .and_then(Value::as_object)
        .map_or(1.0, |m| m.values().map(|v| v.as_array().map_or(1, Vec::len).max(1) as f64).product());
    let seeds = match doc.get("seeds") {
        Some(Value::Array(s)) => s.len().max(1) as f64,
        Some(Value::Object(r)) => match (r.get("from").and_then(Value::as_u64), r.get("to").and_then(Value::as_u64)) {
            (Some(a), Some(b)) if b >= a => (b - a) as f64 + 1.0,
            _ => 1.0,
        },
        _ => 1.0,
    };
    cases * matrix * seeds
}

/// Gives every run an event limit (about two million events over the whole scenario).
fn bound_events(doc: &mut Value) {
    // Enough for a run to get somewhere (a stack overflow has needed some 220,000 events);
    // a run takes about 1.5 us per event.
    let cap = (2e6 / run_count(doc)).clamp(1_000.0, 300_000.0) as u64;
    let clamp = |v: &Value| json!(v.as_u64().map_or(cap, |x| x.min(cap)));
    if let Some(base) = doc.get_mut("base").and_then(Value::as_object_mut) {
        let limits = base.entry("limits").or_insert_with(|| json!({}));
        if !limits.is_object() {
            *limits = json!({});
        }
        limits["max_events"] = clamp(limits.get("max_events").unwrap_or(&Value::Null));
    }
    if let Some(cases) = doc.get_mut("cases").and_then(Value::as_array_mut) {
        for case in cases.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(v) = case.get_mut("limits.max_events") {
                *v = clamp(v);
            }
            if let Some(limits) = case.get_mut("limits").and_then(Value::as_object_mut) {
                let v = clamp(limits.get("max_events").unwrap_or(&Value::Null));
                limits.insert("max_events".into(), v);
            }
        }
    }
}

fn trace_input(corpus: &Corpus, rng: &mut ChaCha8Rng, input: &mut Input, unmutated: Option<usize>) {
    let traces = corpus.replayable_traces();
    let (seed, gz) = match unmutated {
        Some(i) => (traces[i / 2], i % 2 == 1),
        None => (*traces.choose(rng).unwrap(), rng.gen_bool(0.35)),
    };
    input.origin = format!("traces/{}", seed.name);
    let names: &[&str] = match seed.name.as_str() {
        "azure.csv" => &["azure.csv", "AzureLLMInferenceTrace_code.csv"],
        "burstgpt.csv" => &["BurstGPT_1.csv", "burstgpt.csv"],
        _ => &["mooncake.jsonl", "conversation_trace.jsonl"],
    };
    let mut name = names.choose(rng).unwrap().to_string();
    let mut bytes = seed.bytes.clone();
    if unmutated.is_none() {
        for _ in 0..mutation_count(rng) {
            let note = mutate_bytes::mutate_once(&mut bytes, rng, &corpus.donors);
            input.notes.push(note);
        }
    }
    if gz {
        name.push_str(".gz");
        bytes = mutate_bytes::gzip(&bytes);
        if unmutated.is_none() && rng.gen_bool(0.4) {
            input.notes.push(mutate_bytes::damage_gzip(&mut bytes, rng));
        }
    }
    push_file(input, &name, bytes);
    let mut stats = vec!["trace-stats".to_string(), in_path(&name)];
    if unmutated.is_none() && rng.gen_bool(0.1) {
        let format = ["azure", "mooncake", "burstgpt", "generic", "nope"].choose(rng).unwrap();
        stats.extend(["--format".into(), format.to_string()]);
    }
    input.commands.push(CommandSpec { name: "trace-stats", args: stats, after_ok: false });
    let (model, gpu) =
        *[("llama-2-7b", "a100-80gb"), ("llama-3.1-8b", "h100"), ("qwen2.5-0.5b", "l40s")].choose(rng).unwrap();
    let mut replay: Vec<String> =
        ["replay", &in_path(&name), "--model", model, "--gpu", gpu, "--out", "out", "--requests", "--quiet"]
            .map(String::from)
            .into();
    if unmutated.is_none() {
        replay.extend(replay_flags(rng));
    }
    if !replay.iter().any(|a| a == "--limit") {
        replay.extend(["--limit".into(), "40".into()]);
    }
    input.commands.push(CommandSpec { name: "replay", args: replay, after_ok: false });
}

fn replay_flags(rng: &mut ChaCha8Rng) -> Vec<String> {
    let options: [(&str, &[&str]); 9] = [
        ("--skip-bad-rows", &[]),
        ("--speedup", &["1e-12", "1e308", "0", "-1", "1000", "NaN"]),
        ("--start-s", &["0", "1e308", "-1", "0.5"]),
        ("--end-s", &["0", "1e-12", "1e308", "2"]),
        ("--limit", &["0", "1", "18446744073709551615"]),
        ("--max-model-len", &["1", "16", "4294967295", "0"]),
        ("--replicas", &["0", "3", "100000"]),
        ("--router", &["least-kv", "prefix-affinity", "random"]),
        ("--tp", &["0", "2", "3"]),
    ];
    let mut flags = Vec::new();
    for (flag, values) in options {
        if rng.gen_bool(0.12) {
            flags.push(flag.to_string());
            if let Some(v) = values.choose(rng) {
                flags.push(v.to_string());
            }
        }
    }
    flags
}
