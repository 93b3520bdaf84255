//! Catalog folders given at run time: `--catalog DIR` or the `SYMBIOTE_CATALOG` variable (a
//! `:`-separated list, as `PATH`; the flag wins over the variable). Each folder's `gpu/*.json`
//! and `llm/*.json`, in the formats of `models/gpu/` and `models/llm/`, add entries to the
//! built-in catalog, or replace the built-in entry of the same `name`; where two folders give the
//! same name, the first one listed wins, as in `PATH`. Every entry read here remembers its file
//! and the FNV-1a hash of the file's bytes ([`Origin`]), which each case's report config records,
//! so a result can be traced to the exact file it came from.
//!
//! The command line loads the folders once, before any run, and [`install`]s the result for the
//! whole process; [`active`] is what every lookup by name uses (the built-in catalog when nothing
//! was installed). Files are read in name order, so the same folders give the same catalog.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::de::DeserializeOwned;

use super::catalog::{normalize_name, Catalog, GpuSpec, ModelSpec, HF_FIELD_LIMITS};
use super::prices::MAX_USD_PER_GPU_HOUR;

/// The environment variable naming catalog folders when `--catalog` is not given.
pub const ENV_VAR: &str = "SYMBIOTE_CATALOG";

/// Where a catalog entry was read at run time: the file as the user named it (folder joined with
/// `gpu/` or `llm/` and the file name) and the FNV-1a hash of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub fnv1a: String,
}

impl Origin {
    pub fn of(file: &Path, bytes: &[u8]) -> Origin {
        Origin { file: file.display().to_string(), fnv1a: format!("{:016x}", crate::scenario::fnv1a(bytes)) }
    }

    /// `{"file": ..., "fnv1a": ...}` for a report's config.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"file": self.file, "fnv1a": self.fnv1a})
    }
}

/// One problem in a catalog folder: the file (or folder), the field and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", if field.is_empty() { String::new() } else { format!("at {field}: ") })]
pub struct CatalogFileError {
    pub file: String,
    /// JSON path of the field, e.g. `step_time.matmul_efficiency`; empty for the whole file.
    pub field: String,
    pub message: String,
}

/// The catalog the folders make, and one line per built-in entry they replace.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub catalog: Catalog,
    pub overrides: Vec<String>,
}

/// The folders to read: `--catalog`'s if given, else `SYMBIOTE_CATALOG`'s; both may list several
/// separated by `:`. Empty entries are skipped.
pub fn folders(flag: Option<&std::ffi::OsStr>, env: Option<&std::ffi::OsStr>) -> Vec<PathBuf> {
    flag.or(env)
        .map(|list| std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default()
}

/// Reads the folders on top of the built-in catalog. Every problem of every file is returned.
pub fn load(folders: &[PathBuf]) -> Result<Loaded, Vec<CatalogFileError>> {
    let mut problems = Vec::new();
    let mut gpus: Vec<GpuSpec> = Vec::new();
    let mut models: Vec<ModelSpec> = Vec::new();
    for folder in folders {
        let before = problems.len();
        let (gpu_files, llm_files) = list_folder(folder, &mut problems);
        if problems.len() > before {
            continue;
        }
        for file in gpu_files {
            if let Some(gpu) = read_entry::<GpuSpec>(&file, check_gpu, &mut problems) {
                add_entry(&mut gpus, vec![gpu], |g| (&g.name, &g.origin), &mut problems);
            }
        }
        for file in llm_files {
            if let Some(model) = read_entry::<ModelSpec>(&file, check_model, &mut problems) {
                let origin = model.origin.clone();
                let entries: Vec<ModelSpec> = model
                    .with_variants()
                    .into_iter()
                    .map(|mut m| {
                        m.origin = origin.clone();
                        m
                    })
                    .collect();
                add_entry(&mut models, entries, |m| (&m.name, &m.origin), &mut problems);
            }
        }
    }
    let builtin = Catalog::builtin();
    let mut overrides = Vec::new();
    let mut catalog = builtin.clone();
    merge(&mut catalog.gpus, gpus, "gpu", |g| (&g.name, &g.origin), &mut overrides);
    merge(&mut catalog.models, models, "model", |m| (&m.name, &m.origin), &mut overrides);
    check_lookup_keys(&catalog.gpus, "gpu", |g| (&g.name, &g.aliases, &g.origin), &mut problems);
    check_lookup_keys(&catalog.models, "model", |m| (&m.name, &m.aliases, &m.origin), &mut problems);
    if problems.is_empty() {
        Ok(Loaded { catalog, overrides })
    } else {
        Err(problems)
    }
}

/// Makes `catalog` the one every lookup uses from now on, for the whole process. Only the first
/// call counts: the catalog must not change under runs already started.
pub fn install(catalog: Catalog) -> bool {
    ACTIVE.set(catalog).is_ok()
}

/// The catalog lookups use: the installed one, or the built-in catalog.
pub fn active() -> &'static Catalog {
    ACTIVE.get().unwrap_or_else(|| Catalog::builtin())
}

/// Prints `warning: {message}` on stderr the first time a message is given in this process, so
/// a model folder named by a hundred cases warns once.
pub fn warn_once(message: String) {
    static SEEN: Mutex<std::collections::BTreeSet<String>> = Mutex::new(std::collections::BTreeSet::new());
    let first = SEEN.lock().map(|mut seen| seen.insert(message.clone())).unwrap_or(true);
    if first {
        eprintln!("warning: {}", crate::text::clip_message(&message));
    }
}

static ACTIVE: OnceLock<Catalog> = OnceLock::new();

fn problem(file: &Path, field: impl Into<String>, message: impl Into<String>) -> CatalogFileError {
    CatalogFileError { file: file.display().to_string(), field: field.into(), message: message.into() }
}

/// The `gpu/*.json` and `llm/*.json` files of one folder, in name order.
fn list_folder(folder: &Path, problems: &mut Vec<CatalogFileError>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    if !folder.is_dir() {
        problems.push(problem(
            folder,
            "",
            "is not a folder; --catalog and SYMBIOTE_CATALOG take folders holding gpu/*.json and llm/*.json",
        ));
        return (Vec::new(), Vec::new());
    }
    let (gpu, llm) = (folder.join("gpu"), folder.join("llm"));
    if !gpu.is_dir() && !llm.is_dir() {
        problems.push(problem(
            folder,
            "",
            "holds neither gpu/ nor llm/; put GPU files in gpu/ and model files in llm/ (the layout of models/)",
        ));
    }
    let mut json_files = |dir: &Path| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            problems.push(problem(dir, "", "holds no .json file; add one or remove the folder"));
        }
        files
    };
    let gpu_files = if gpu.is_dir() { json_files(&gpu) } else { Vec::new() };
    let llm_files = if llm.is_dir() { json_files(&llm) } else { Vec::new() };
    (gpu_files, llm_files)
}

/// A trait over the two entry types so one reader serves both.
trait Entry: DeserializeOwned {
    fn set_origin(&mut self, origin: Origin);
    const EXAMPLE: &'static str;
}

impl Entry for GpuSpec {
    fn set_origin(&mut self, origin: Origin) {
        self.origin = Some(origin);
    }
    const EXAMPLE: &'static str = "models/gpu/h100-80gb.json (`symbiote list gpus --json` prints every field)";
}

impl Entry for ModelSpec {
    fn set_origin(&mut self, origin: Origin) {
        self.origin = Some(origin);
    }
    const EXAMPLE: &'static str = "models/llm/llama-3.1-8b.json (`symbiote list models --json` prints every field)";
}

fn read_entry<T: Entry>(
    file: &Path,
    check: fn(&T) -> Vec<(String, String)>,
    problems: &mut Vec<CatalogFileError>,
) -> Option<T> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(problem(file, "", format!("cannot read the file: {e}")));
            return None;
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        problems.push(problem(file, "", "is not UTF-8 text; save it as UTF-8 JSON"));
        return None;
    };
    if let Err(e) = serde_json::from_str::<super::catalog::NoDuplicateKeys>(text) {
        problems.push(problem(file, "", format!("not valid JSON: {e}; fix it there")));
        return None;
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let mut entry: T = match serde_path_to_error::deserialize(de) {
        Ok(entry) => entry,
        Err(e) => {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let message = e.into_inner().to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            problems.push(problem(file, field, format!("{message}; follow the format of {}", T::EXAMPLE)));
            return None;
        }
    };
    let found = check(&entry);
    if !found.is_empty() {
        problems.extend(found.into_iter().map(|(field, message)| problem(file, field, message)));
        return None;
    }
    entry.set_origin(Origin::of(file, &bytes));
    Some(entry)
}

/// Adds one file's entries to those read so far. A name already read from an earlier folder is
/// shadowed (the first folder wins, as in `PATH`); the same name twice in one folder is an error.
fn add_entry<T>(
    read: &mut Vec<T>,
    entries: Vec<T>,
    key: impl Fn(&T) -> (&String, &Option<Origin>),
    problems: &mut Vec<CatalogFileError>,
) {
    for entry in entries {
        let (name, origin) = key(&entry);
        let file = origin.as_ref().map_or(String::new(), |o| o.file.clone());
        let folder = |f: &str| Path::new(f).parent().map(Path::to_path_buf);
        match read.iter().find(|e| key(e).0 == name) {
            None => read.push(entry),
            Some(earlier) => {
                let earlier_file = key(earlier).1.as_ref().map_or(String::new(), |o| o.file.clone());
                if folder(&earlier_file) == folder(&file) {
                    problems.push(CatalogFileError {
                        file,
                        field: "name".into(),
                        message: format!("`{name}` is already the name of {earlier_file}; rename one of them"),
                    });
                }
            }
        }
    }
}

/// Puts the read entries into the catalog: in place of a built-in entry of the same name, or
/// after the built-in ones.
fn merge<T>(
    catalog: &mut Vec<T>,
    read: Vec<T>,
    kind: &str,
    key: impl Fn(&T) -> (&String, &Option<Origin>),
    overrides: &mut Vec<String>,
) {
    for entry in read {
        match catalog.iter().position(|e| key(e).0 == key(&entry).0) {
            Some(i) => {
                let file = key(&entry).1.as_ref().map_or(String::new(), |o| o.file.clone());
                overrides.push(format!("catalog: {kind} `{}` from {file} replaces the built-in entry", key(&entry).0));
                catalog[i] = entry;
            }
            None => catalog.push(entry),
        }
    }
}

/// Every name and alias must find one entry: a user entry whose alias is another entry's name
/// would be found or not depending on the order of the list.
fn check_lookup_keys<T>(
    entries: &[T],
    kind: &str,
    key: impl Fn(&T) -> (&String, &Vec<String>, &Option<Origin>),
    problems: &mut Vec<CatalogFileError>,
) {
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let (name, aliases, _) = key(entry);
        for word in std::iter::once(name).chain(aliases) {
            match owner.get(word.as_str()) {
                Some(&j) if j != i => {
                    let (other, _, other_origin) = key(&entries[j]);
                    // Built-in entries are checked by the catalog's own tests; report the user file.
                    let (file, field) = match (key(entry).2, other_origin) {
                        (Some(o), _) => (o.file.clone(), if word == name { "name" } else { "aliases" }),
                        (None, Some(o)) => (o.file.clone(), "aliases"),
                        (None, None) => continue,
                    };
                    let whose = if other_origin.is_some() { "" } else { "built-in " };
                    problems.push(CatalogFileError {
                        file,
                        field: field.into(),
                        message: format!(
                            "`{word}` already finds the {whose}{kind} `{other}`; a {kind} file replaces a built-in one only under the same `name`, so drop or rename `{word}`"
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    owner.insert(word.as_str(), i);
                }
            }
        }
    }
}

/// A name must be what [`normalize_name`] makes of it, or no spelling would find it. (Aliases
/// are not held to it: the built-in files list spellings such as `a100_40gb` that lookups never
/// reach, and a copy of a built-in file must load.)
fn check_names(name: &str, out: &mut Vec<(String, String)>) {
    if name.trim().is_empty() || name.contains(['/', '\\']) {
        out.push(("name".into(), "must be a non-empty name without slashes (reports use it)".into()));
    } else if normalize_name(name) != name {
        out.push((
            "name".into(),
            format!("`{}` is looked up as `{}`; write it that way", crate::text::clip(name), normalize_name(name)),
        ));
    }
}

/// Checks `0 < value <= max` (`0 <= value` where `zero_ok`).
fn in_range(out: &mut Vec<(String, String)>, field: &str, value: f64, zero_ok: bool, max: f64, unit: &str) {
    let low_ok = if zero_ok { value >= 0.0 } else { value > 0.0 };
    if !(value.is_finite() && low_ok && value <= max) {
        let low = if zero_ok { "0 <=" } else { "0 <" };
        out.push((field.into(), format!("is {value}; it must be a number with {low} x <= {max}{unit}")));
    }
}

/// The ranges of a GPU file's numbers: zero or negative memory, bandwidth or throughput would
/// divide by zero or run backwards, and an efficiency is a fraction of a peak.
fn check_gpu(g: &GpuSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_names(&g.name, &mut out);
    // The largest GPU memory shipped is 192 GB (MI300X, B200); 1 TiB leaves room.
    in_range(&mut out, "memory_gib", g.memory_gib, false, 1024.0, " GiB");
    in_range(&mut out, "memory_visible_gib", g.memory_visible_gib, false, g.memory_gib.max(0.0), " GiB (memory_gib)");
    in_range(&mut out, "hbm_bandwidth_gbps", g.hbm_bandwidth_gbps, false, 1e6, " GB/s");
    in_range(&mut out, "pcie_gbps", g.pcie_gbps, false, 1e6, " GB/s");
    if let Some(v) = g.interconnect_gbps {
        in_range(&mut out, "interconnect_gbps", v, false, 1e6, " GB/s");
    }
    if let Some(v) = g.host_link_gbps {
        in_range(&mut out, "host_link_gbps", v, false, 1e6, " GB/s");
    }
    if let Some(v) = g.host_link_latency_us {
        in_range(&mut out, "host_link_latency_us", v, true, 1e6, " us");
    }
    // The largest board power shipped is about 1,200 W (B300); 10 kW leaves room.
    if let Some(v) = g.tdp_watts {
        in_range(&mut out, "tdp_watts", v, false, 1e4, " W");
    }
    let t = &g.tflops;
    for (field, value) in [("tflops.fp32", Some(t.fp32)), ("tflops.fp16_bf16", Some(t.fp16_bf16))].into_iter().chain([
        ("tflops.tf32", t.tf32),
        ("tflops.fp8", t.fp8),
        ("tflops.int8", t.int8),
        ("tflops.int4", t.int4),
    ]) {
        if let Some(v) = value {
            in_range(&mut out, field, v, false, 1e6, " TFLOPS");
        }
    }
    let s = &g.step_time;
    for (field, value) in [
        ("step_time.matmul_efficiency", Some(s.matmul_efficiency)),
        ("step_time.attention_efficiency", Some(s.attention_efficiency)),
        ("step_time.bandwidth_efficiency", Some(s.bandwidth_efficiency)),
        ("step_time.allreduce_efficiency", Some(s.allreduce_efficiency)),
        ("step_time.kv_bandwidth_efficiency", s.kv_bandwidth_efficiency),
        ("step_time.moe_bandwidth_efficiency", s.moe_bandwidth_efficiency),
        ("step_time.sustained_matmul_fraction", s.sustained_matmul_fraction),
    ] {
        if let Some(v) = value {
            in_range(&mut out, field, v, false, 1.0, " (a fraction of the peak)");
        }
    }
    // An hour per step is far beyond any engine; beyond it a unit is wrong (ms for us).
    for (field, value) in [
        ("step_time.step_overhead_us", s.step_overhead_us),
        ("step_time.per_sequence_overhead_us", s.per_sequence_overhead_us),
        ("step_time.allreduce_latency_us", s.allreduce_latency_us),
        ("step_time.frontend_overhead_us", s.frontend_overhead_us),
        ("step_time.sampling_sort_ns_per_logit", s.sampling_sort_ns_per_logit),
    ] {
        in_range(&mut out, field, value, true, 3.6e9, "");
    }
    for (i, quote) in g.prices.iter().enumerate() {
        in_range(
            &mut out,
            &format!("prices[{i}].usd_per_gpu_hour"),
            quote.usd_per_gpu_hour,
            false,
            MAX_USD_PER_GPU_HOUR,
            " USD",
        );
    }
    out
}

/// The ranges of a model file's sizes: those a Hugging Face config.json is held to
/// ([`HF_FIELD_LIMITS`]), under the catalog's field names.
fn check_model(m: &ModelSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_names(&m.name, &mut out);
    for (i, v) in m.variants.iter().enumerate() {
        let mut variant = Vec::new();
        check_names(&v.name, &mut variant);
        out.extend(variant.into_iter().map(|(f, msg)| (format!("variants[{i}].{f}"), msg)));
    }
    let limit =
        |hf_key: &str| HF_FIELD_LIMITS.iter().find(|l| l.0 == hf_key).map(|l| (l.1, l.2)).expect("a listed key");
    let moe = m.moe.as_ref();
    let max_positions =
        m.variants.iter().filter_map(|v| v.max_position_embeddings.map(|p| ("variants[].max_position_embeddings", p)));
    for (field, hf_key, value) in [
        ("hidden_size", "hidden_size", Some(m.hidden_size)),
        ("intermediate_size", "intermediate_size", Some(m.intermediate_size)),
        ("num_layers", "num_hidden_layers", Some(m.num_layers)),
        ("num_attention_heads", "num_attention_heads", Some(m.num_attention_heads)),
        ("num_kv_heads", "num_key_value_heads", Some(m.num_kv_heads)),
        ("head_dim", "head_dim", Some(m.head_dim)),
        ("vocab_size", "vocab_size", Some(m.vocab_size)),
        ("max_position_embeddings", "max_position_embeddings", Some(m.max_position_embeddings)),
        ("moe.num_experts", "num_local_experts", moe.map(|x| x.num_experts as u64)),
        ("moe.experts_per_token", "num_experts_per_tok", moe.map(|x| x.experts_per_token as u64)),
        ("moe.expert_intermediate_size", "intermediate_size", moe.map(|x| x.expert_intermediate_size)),
    ]
    .into_iter()
    .chain(max_positions.map(|(f, p)| (f, "max_position_embeddings", Some(p))))
    {
        let (min, max) = limit(hf_key);
        if let Some(v) = value.filter(|v| !(min..=max).contains(v)) {
            out.push((field.into(), format!("is {v}; it must be an integer within {min}..{max}")));
        }
    }
    if m.num_kv_heads >= 1 && (m.num_kv_heads > m.num_attention_heads || m.num_attention_heads % m.num_kv_heads != 0) {
        out.push((
            "num_kv_heads".into(),
            format!("({}) must divide num_attention_heads ({})", m.num_kv_heads, m.num_attention_heads),
        ));
    }
    if let Some(moe) = moe {
        if moe.experts_per_token > moe.num_experts {
            out.push((
                "moe.experts_per_token".into(),
                format!("({}) exceeds the {} experts", moe.experts_per_token, moe.num_experts),
            ));
        }
        if moe.shared_experts > 1024 {
            out.push(("moe.shared_experts".into(), format!("is {}; it must be at most 1024", moe.shared_experts)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_lists_split_like_path() {
        use std::ffi::OsStr;
        assert_eq!(folders(Some(OsStr::new("a:b")), Some(OsStr::new("c"))), [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(folders(None, Some(OsStr::new("c::d"))), [PathBuf::from("c"), PathBuf::from("d")]);
        assert!(folders(None, None).is_empty());
    }

    #[test]
    fn built_in_entries_pass_the_checks_user_files_get() {
        for g in &Catalog::builtin().gpus {
            assert_eq!(check_gpu(g), Vec::<(String, String)>::new(), "{}", g.name);
        }
        for m in &Catalog::builtin().models {
            assert_eq!(check_model(m), Vec::<(String, String)>::new(), "{}", m.name);
        }
        let mut problems = Vec::new();
        check_lookup_keys(&Catalog::builtin().models, "model", |m| (&m.name, &m.aliases, &m.origin), &mut problems);
        assert!(problems.is_empty());
    }

    #[test]
    fn bad_numbers_name_their_field() {
        let mut g = Catalog::builtin().gpu("l4").unwrap().clone();
        g.memory_visible_gib = 30.0;
        g.step_time.matmul_efficiency = 1.5;
        g.name = "My GPU".into();
        // A fraction of 0 would divide a step's FLOPs by zero; a negative TDP would make one.
        g.step_time.sustained_matmul_fraction = Some(0.0);
        g.tdp_watts = Some(-72.0);
        let fields: Vec<String> = check_gpu(&g).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "name",
                "memory_visible_gib",
                "tdp_watts",
                "step_time.matmul_efficiency",
                "step_time.sustained_matmul_fraction"
            ]
        );
        let mut m = Catalog::builtin().model("llama-2-7b").unwrap().clone();
        m.num_kv_heads = 5;
        m.num_layers = 0;
        let found = check_model(&m);
        assert_eq!(found[0], ("num_layers".to_string(), "is 0; it must be an integer within 1..1024".to_string()));
        assert_eq!(found[1].0, "num_kv_heads");
    }
}
