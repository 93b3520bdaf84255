//! The seed corpus: small scenario files (the repository's scenarios scaled down, the
//! documentation's examples, and scenarios around traces and config.json files), tiny traces
//! and Hugging Face config.json files, read from `engine/tests/fuzz/corpus/`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One seed file: its name and bytes.
#[derive(Clone, Debug)]
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Seed {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| panic!("corpus file {} is not JSON: {e}", self.name))
    }
}

pub struct Corpus {
    /// Scenario files, except `hf_model.json`.
    pub scenarios: Vec<Seed>,
    /// The scenario whose model is `config.json`.
    pub hf_scenario: Seed,
    /// config.json files (`*.config.json`).
    pub hf_configs: Vec<Seed>,
    pub generation_config: Seed,
    /// Traces by file name: azure.csv, burstgpt.csv, generic.csv, generic.jsonl, mooncake.jsonl.
    pub traces: Vec<Seed>,
    /// Every value found under each object key in every JSON seed: the donors of splices.
    pub donors: BTreeMap<String, Vec<Value>>,
}

fn read_dir(dir: &Path) -> Vec<Seed> {
    let mut seeds: Vec<Seed> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            Seed {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
            }
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    seeds
}

fn collect_donors(value: &Value, donors: &mut BTreeMap<String, Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let list = donors.entry(key.clone()).or_default();
                if !list.contains(v) {
                    list.push(v.clone());
                }
                collect_donors(v, donors);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_donors(v, donors)),
        _ => {}
    }
}

impl Corpus {
    pub fn load() -> Corpus {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
        let (hf_scenario, scenarios): (Vec<Seed>, Vec<Seed>) =
            read_dir(&root.join("scenarios")).into_iter().partition(|s| s.name == "hf_model.json");
        let (generation, hf_configs): (Vec<Seed>, Vec<Seed>) =
            read_dir(&root.join("hf")).into_iter().partition(|s| s.name == "generation_config.json");
        let mut donors = BTreeMap::new();
        for seed in scenarios.iter().chain(&hf_scenario).chain(&hf_configs) {
            collect_donors(&seed.json(), &mut donors);
        }
        Corpus {
            scenarios,
            hf_scenario: hf_scenario.into_iter().next().expect("corpus/scenarios/hf_model.json"),
            hf_configs,
            generation_config: generation.into_iter().next().expect("corpus/hf/generation_config.json"),
            traces: read_dir(&root.join("traces")),
            donors,
        }
    }

    /// The trace seed a scenario's `trace.path` names (by its stem), if any.
    pub fn trace_for(&self, path: &str) -> Option<&Seed> {
        let file = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".gz");
        self.traces.iter().find(|t| t.name == file).or_else(|| {
            let lower = file.to_ascii_lowercase();
            let stem = if lower.contains("burstgpt") {
                "burstgpt.csv"
            } else if lower.ends_with(".jsonl") {
                "mooncake.jsonl"
            } else {
                "azure.csv"
            };
            self.traces.iter().find(|t| t.name == stem)
        })
    }

    /// How many inputs replay a seed unmutated before mutation starts.
    pub fn unmutated_count(&self) -> u64 {
        (self.scenarios.len() + self.hf_configs.len() + 2 * self.replayable_traces().len()) as u64
    }

    /// Traces that `replay` and `trace-stats` can read without a `columns` description.
    pub fn replayable_traces(&self) -> Vec<&Seed> {
        self.traces.iter().filter(|t| !t.name.starts_with("generic")).collect()
    }
}
