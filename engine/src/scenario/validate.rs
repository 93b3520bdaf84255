//! From the file as written to a [`Scenario`]: parse with JSON paths, expand `base` +
//! `cases` + `matrix`, resolve vLLM's defaults, and return every problem at once, each naming
//! the file, the JSON path, what is wrong and how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::expand::expand;
use super::file::{CaseFile, EngineKind, Entrypoint, ExpectFile, ScenarioFile, SeedsFile, StepTimeFile};
use super::hints::{explain_serde, parent_for_unknown};
use super::{BatchConfig, Case, EngineConfig, Scenario, StepTimeChoice};
use crate::hardware::{GpuSpec, KvDtype, ModelSpec, Quant};
use crate::sim::bounds::{MAX_BLOCKS, MAX_SECONDS, MAX_SEQS, MAX_TOKENS};
use crate::sim::run::Limits;
use crate::sim::{Nanos, SimTime};

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// JSON path, e.g. `cases[2].engine.max_num_seqs`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: at {}: {}", self.file, self.path, self.message)
        }
    }
}

/// The most cases one file may expand to; a typo in a matrix should not start a week-long run.
pub const MAX_CASES: usize = 10_000;
/// The most seeds one scenario may list.
pub const MAX_SEEDS: usize = 10_000;
/// Default event limit of a run.
pub const DEFAULT_MAX_EVENTS: u64 = 200_000_000;
/// Most replicas in one fleet or batch job.
pub const MAX_REPLICAS: u32 = 4096;
/// Most rows in one batch job: the pipeline keeps 4 bytes per row.
pub const MAX_ROWS: u64 = 1_000_000_000;

pub(crate) struct Ctx<'a> {
    file: &'a str,
    base_dir: &'a Path,
    problems: Vec<Diagnostic>,
    /// Traces already read through, by their spec: the first problem, if any.
    traces: BTreeMap<String, Option<String>>,
}

impl Ctx<'_> {
    pub(crate) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Diagnostic { file: self.file.to_string(), path: path.into(), message: message.into() });
    }
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    let label = path.display().to_string();
    let base_dir = path.parent().map_or_else(|| std::path::PathBuf::from("."), |p| p.to_path_buf());
    match std::fs::read_to_string(path) {
        Ok(text) => parse_in(&text, &label, &base_dir),
        Err(e) => {
            Err(vec![Diagnostic { file: label, path: String::new(), message: format!("cannot read the file: {e}") }])
        }
    }
}

/// Validates scenario JSON text; `label` names the file in messages. Relative trace paths
/// resolve against the current directory.
pub fn parse(text: &str, label: &str) -> Result<Scenario, Vec<Diagnostic>> {
    parse_in(text, label, Path::new("."))
}

/// Validates scenario JSON text whose relative paths start at `base_dir`.
pub fn parse_in(text: &str, label: &str, base_dir: &Path) -> Result<Scenario, Vec<Diagnostic>> {
    let mut ctx = Ctx { file: label, base_dir, problems: Vec::new(), traces: BTreeMap::new() };
    let de = &mut serde_json::Deserializer::from_str(text);
    let file: ScenarioFile = match serde_path_to_error::deserialize(&mut *de) {
        Ok(file) => file,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = if path == "." || inner.is_syntax() || inner.is_eof() { String::new() } else { path };
            if inner.is_syntax() || inner.is_eof() {
                let message = inner.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message).to_string();
                ctx.push(
                    path,
                    format!(
                        "not valid JSON: {message} at line {}, column {}; fix the syntax there",
                        inner.line(),
                        inner.column()
                    ),
                );
                return Err(ctx.problems);
            }
            let message = inner.to_string();
            ctx.push(parent_for_unknown(&path, &message), explain_serde(&message, inner.line(), inner.column()));
            return Err(ctx.problems);
        }
    };
    // The deserializer stops at the end of the first value; text after it is an error too.
    if let Err(e) = de.end() {
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        ctx.push(
            "",
            format!(
                "not valid JSON: {message} at line {}, column {}; remove what follows the closing brace",
                e.line(),
                e.column()
            ),
        );
        return Err(ctx.problems);
    }
    let seeds = seeds(&file, &mut ctx);
    if file.name.trim().is_empty() || file.name.contains(['/', '\\']) {
        ctx.push("name", "the scenario needs a `name` without slashes (it names the report folder)");
    }
    let mut base = file.base.clone();
    super::vllm_args::apply(&mut base, "base", &mut ctx);
    let base: Option<CaseFile> = if ctx.problems.is_empty() { typed(&base, "base", &mut ctx) } else { None };
    if base.is_none() {
        return Err(ctx.problems);
    }
    let mut cases = Vec::new();
    for (name, mut value, expect, path) in expand(&file, &mut ctx) {
        super::vllm_args::apply(&mut value, &path, &mut ctx);
        if let Some(case_file) = typed::<CaseFile>(&value, &path, &mut ctx) {
            if let Some(mut case) = resolve(name, case_file, expect.or_else(|| file.expect.clone()), &path, &mut ctx) {
                case.goodput = file.slo.as_ref().and_then(|slo| goodput(slo, &mut ctx));
                case.base_dir = base_dir.to_path_buf();
                check_trace(&case, &path, &mut ctx);
                cases.push(case);
            }
        }
    }
    if ctx.problems.is_empty() {
        let canonical: Value = serde_json::from_str(text).expect("parsed above");
        // Results also rest on the catalog files read at run time (--catalog, a Hugging Face
        // config.json): their hashes join the file's, so --resume and merge never mix catalogs.
        let mut identity = canonical.to_string();
        let origins: std::collections::BTreeSet<&str> =
            cases.iter().flat_map(|c| [&c.model.origin, &c.gpu.origin]).flatten().map(|o| o.fnv1a.as_str()).collect();
        origins.iter().for_each(|hash| identity.push_str(hash));
        let content_hash = format!("{:016x}", super::fnv1a(identity.as_bytes()));
        Ok(Scenario {
            name: file.name,
            description: file.description,
            seeds,
            slo: file.slo,
            cases,
            analysis: file.analysis,
            content_hash,
            percentiles: Vec::new(),
        })
    } else {
        Err(ctx.problems)
    }
}

/// Reads a case's trace through once (in constant memory) so a bad row is reported before any
/// run starts, with its file and line. With prefix caching the same read counts the trace's
/// block ids for the run (`RecurringIds::keep`), which then need not read it again.
fn check_trace(case: &Case, path: &str, ctx: &mut Ctx<'_>) {
    let Some(spec) = &case.workload.trace else { return };
    let count_ids = case.engine.enable_prefix_caching;
    let key = format!("{}|{}|{count_ids}", case.base_dir.display(), serde_json::to_string(spec).unwrap_or_default());
    let problem = ctx
        .traces
        .entry(key)
        .or_insert_with(|| crate::workload::trace::check(spec, &case.base_dir, count_ids).err().map(|e| e.to_string()))
        .clone();
    if let Some(problem) = problem {
        ctx.push(format!("{path}.workload.trace"), problem);
    }
}

fn goodput(slo: &super::SloFile, ctx: &mut Ctx<'_>) -> Option<super::GoodputSlo> {
    let mut convert = |field: &str, ms: Option<f64>| match ms {
        Some(ms) if ms > 0.0 && ms <= MAX_SECONDS * 1e3 => Some(Nanos::from_secs_f64(ms * 1e-3)),
        Some(ms) => {
            ctx.push(
                format!("slo.{field}"),
                format!("must be a positive number of milliseconds up to {}, got {ms}", MAX_SECONDS * 1e3),
            );
            None
        }
        None => None,
    };
    let out = super::GoodputSlo {
        ttft: convert("ttft_ms", slo.ttft_ms),
        tpot: convert("tpot_ms", slo.tpot_ms),
        e2el: convert("e2el_ms", slo.e2el_ms),
    };
    (out != super::GoodputSlo::default()).then_some(out)
}

fn seeds(file: &ScenarioFile, ctx: &mut Ctx<'_>) -> Vec<u64> {
    let seeds = match &file.seeds {
        None => vec![1],
        Some(SeedsFile::List(list)) => list.clone(),
        Some(SeedsFile::Range { from, to }) if to >= from && to - from < MAX_SEEDS as u64 => (*from..=*to).collect(),
        Some(SeedsFile::Range { from, to }) => {
            ctx.push("seeds", format!("range {from}..{to} is empty or longer than {MAX_SEEDS} seeds; use from <= to"));
            vec![]
        }
    };
    if matches!(&file.seeds, Some(SeedsFile::List(l)) if l.is_empty()) {
        ctx.push("seeds", "the seed list is empty; give at least one seed, e.g. [1]");
    }
    if seeds.len() > MAX_SEEDS {
        ctx.push("seeds", format!("{} seeds; at most {MAX_SEEDS}", seeds.len()));
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        ctx.push("seeds", "a seed is listed twice; each seed must appear once");
    }
    seeds
}

/// Deserializes `value` into `T`, reporting the first error with its JSON path under `prefix`.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: &Value, prefix: &str, ctx: &mut Ctx<'_>) -> Option<T> {
    match serde_path_to_error::deserialize(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner_path = e.path().to_string();
            let path = if inner_path == "." { prefix.to_string() } else { format!("{prefix}.{inner_path}") };
            let message = e.into_inner().to_string();
            ctx.push(parent_for_unknown(&path, &message), explain_serde(&message, 0, 0));
            None
        }
    }
}

fn resolve_batch(b: &super::file::BatchFile, path: &str, ctx: &mut Ctx<'_>) -> BatchConfig {
    let batch_size = b.batch_size.unwrap_or(32);
    let concurrency = b.concurrency.unwrap_or(1);
    let max_concurrent_batches = b.max_concurrent_batches.unwrap_or(8);
    if b.rows == 0 {
        ctx.push(format!("{path}.rows"), "a dataset needs at least one row");
    }
    for (field, value) in
        [("batch_size", batch_size), ("concurrency", concurrency), ("max_concurrent_batches", max_concurrent_batches)]
    {
        if value == 0 {
            ctx.push(format!("{path}.{field}"), "must be at least 1");
        }
    }
    let startup_s = b.startup_s.unwrap_or(0.0);
    if !(0.0..=MAX_SECONDS).contains(&startup_s) {
        ctx.push(format!("{path}.startup_s"), format!("must be within 0..{MAX_SECONDS} seconds, got {startup_s}"));
    }
    // Below 1 MB/s, loading even a small model's weights would take longer than a run may last.
    if b.load_gbps.is_some_and(|g| !(1e-3..=1e6).contains(&g)) {
        ctx.push(format!("{path}.load_gbps"), "must be a bandwidth within 0.001..1e6 GB/s");
    }
    for (field, value, max) in [
        ("rows", b.rows, MAX_ROWS),
        ("batch_size", batch_size as u64, MAX_SEQS as u64),
        ("concurrency", concurrency as u64, MAX_REPLICAS as u64),
        ("max_concurrent_batches", max_concurrent_batches as u64, MAX_SEQS as u64),
    ] {
        if value > max {
            ctx.push(format!("{path}.{field}"), format!("{value} is above the limit of {max}; lower it"));
        }
    }
    BatchConfig {
        rows: b.rows,
        batch_size,
        concurrency,
        max_concurrent_batches,
        startup: Nanos::from_secs_f64(startup_s.max(0.0)),
        load_bytes_per_s: b.load_gbps.map(|g| g * 1e9),
    }
}

/// vLLM's "big GPU" defaults apply at >= 70 GiB unless the device is an A100 (PR #17885).
fn is_big_gpu(gpu: &GpuSpec) -> bool {
    gpu.memory_gib >= 70.0 && !gpu.name.contains("a100")
}

fn resolve(name: String, f: CaseFile, expect: Option<ExpectFile>, path: &str, ctx: &mut Ctx<'_>) -> Option<Case> {
    let problems_before = ctx.problems.len();
    let catalog = crate::hardware::active_catalog();
    let model = crate::hardware::resolve_model(&f.model, ctx.base_dir, catalog)
        .map_err(|e| ctx.push(format!("{path}.model"), e))
        .ok();
    let model = model.as_ref();
    let gpu = catalog.gpu(&f.gpu).map_err(|e| ctx.push(format!("{path}.gpu"), e.to_string())).ok();
    for (p, m) in f.workload.problems(f.batch.is_some()) {
        ctx.push(format!("{path}.workload.{p}"), m);
    }
    let tp = f.tp.unwrap_or(1);
    if !(1..=8).contains(&tp) {
        ctx.push(format!("{path}.tp"), format!("tensor parallel size must be 1 to 8, got {tp}"));
    }
    // vLLM's ModelConfig.verify_with_parallel_config refuses a split of the heads that is not even.
    if let Some(heads) = model.map(|m| m.num_attention_heads).filter(|&h| tp >= 1 && h % tp as u64 != 0) {
        ctx.push(
            format!("{path}.tp"),
            format!("Total number of attention heads ({heads}) must be divisible by tensor parallel size ({tp}) (vLLM's start-up check); use a divisor of {heads}"),
        );
    }
    let fleet = f.fleet.clone().unwrap_or_default();
    let batch = f.batch.as_ref().map(|b| resolve_batch(b, &format!("{path}.batch"), ctx));
    let replicas = match (&batch, fleet.replicas) {
        (Some(_), Some(_)) => {
            ctx.push(
                format!("{path}.fleet.replicas"),
                "a batch job's replicas are `batch.concurrency`; remove `fleet.replicas`",
            );
            1
        }
        (Some(b), None) => b.concurrency,
        (None, r) => r.unwrap_or(1),
    };
    if replicas == 0 || replicas > MAX_REPLICAS {
        ctx.push(format!("{path}.fleet.replicas"), format!("need 1 to {MAX_REPLICAS} replicas, got {replicas}"));
    }
    if fleet.max_waiting == Some(0) {
        ctx.push(
            format!("{path}.fleet.max_waiting"),
            "an admission limit of 0 rejects everything; use at least 1 or remove it",
        );
    }
    let autoscaling =
        super::autoscaling::resolve(&fleet, batch.is_some(), model, f.quant.unwrap_or(Quant::Fp16), tp, path, ctx);
    let replicas = autoscaling.map_or(replicas, |a| a.initial_replicas);
    let (model, gpu) = (model?, gpu?);
    let engine = resolve_engine(&f, model, gpu, path, ctx)?;
    let host_for_pools = crate::hardware::HostParams::shipped().scaled(f.host_scale.unwrap_or(1.0).clamp(0.1, 10.0));
    let disagg = match &fleet.disaggregation {
        None => None,
        Some(d) => {
            let at = format!("{path}.fleet");
            if fleet.replicas.is_some() {
                ctx.push(
                    format!("{at}.replicas"),
                    "a disaggregated fleet's size is its pools' `replicas`; remove `fleet.replicas`",
                );
            }
            if batch.is_some() {
                ctx.push(
                    format!("{at}.disaggregation"),
                    "a Ray Data batch job has no prefill/decode pools; remove `fleet.disaggregation` or `batch`",
                );
            }
            if fleet.autoscaling_config.is_some() {
                ctx.push(format!("{at}.autoscaling_config"), super::autoscaling::DISAGGREGATED_AUTOSCALING);
            }
            if engine.kind != EngineKind::Vllm {
                ctx.push(format!("{at}.disaggregation"), "disaggregated serving needs the vllm engine (NIXL connector); remove `engine.kind` or the disaggregation");
            }
            let effective = crate::hardware::transfer::effective_gpu(gpu, &host_for_pools);
            let router = fleet.router.unwrap_or_default();
            super::disagg::resolve(d, model, &effective, tp, router, &host_for_pools, path, ctx)
        }
    };
    let replicas = disagg.as_ref().map_or(replicas, |d| d.prefill.replicas + d.decode.replicas);
    let step_time = match f.step_time.unwrap_or(StepTimeFile::Auto) {
        StepTimeFile::Auto => StepTimeChoice::Auto,
        StepTimeFile::Roofline => StepTimeChoice::Roofline,
        StepTimeFile::Kernels => StepTimeChoice::Kernels,
        StepTimeFile::Constant { step_ms, token_us } => {
            let hour_ms = 3.6e6;
            if !(step_ms > 0.0 && step_ms <= hour_ms && (0.0..=hour_ms * 1e3).contains(&token_us)) {
                ctx.push(
                    format!("{path}.step_time"),
                    format!("need 0 < step_ms <= {hour_ms} (an hour) and 0 <= token_us <= {}", hour_ms * 1e3),
                );
            }
            StepTimeChoice::Constant {
                per_step: Nanos::from_secs_f64(step_ms.max(0.0) * 1e-3),
                per_token: Nanos::from_secs_f64(token_us.max(0.0) * 1e-6),
            }
        }
    };
    let host_scale = match f.host_scale {
        None => 1.0,
        Some(x) if (0.1..=10.0).contains(&x) => x,
        Some(x) => {
            ctx.push(
                format!("{path}.host_scale"),
                format!("need a factor from 0.1 to 10 (1 is the shipped host profile), got {x}"),
            );
            1.0
        }
    };
    let host = crate::hardware::HostParams::shipped().scaled(host_scale);
    let limits = Limits {
        max_sim_time: match f.limits.max_sim_time_s {
            Some(s) if s > 0.0 && s <= MAX_SECONDS => SimTime::from_secs_f64(s),
            Some(s) => {
                ctx.push(
                    format!("{path}.limits.max_sim_time_s"),
                    format!("must be within 0..{MAX_SECONDS} seconds, got {s}"),
                );
                SimTime::MAX
            }
            None => SimTime::MAX,
        },
        max_events: f.limits.max_events.unwrap_or(DEFAULT_MAX_EVENTS),
        step_by_step: false,
    };
    let expect = expect.unwrap_or_default();
    for outcome in expect.outcome.iter().flat_map(|o| o.names()) {
        const OUTCOMES: [&str; 6] = ["completed", "oom", "time_limit", "event_limit", "stalled", "time_overflow"];
        if !OUTCOMES.contains(&outcome.as_str()) {
            ctx.push(
                format!("{path}.expect.outcome"),
                format!("unknown outcome `{outcome}`; use one of {}", OUTCOMES.join(", ")),
            );
        }
    }
    let case = Case {
        name,
        model: model.clone(),
        // The roofline of a GPU without a fit of its own: fractions of peak from kernel tables,
        // host costs from the host profile (`hardware::transfer`).
        gpu: crate::hardware::transfer::effective_gpu(gpu, &host),
        quant: f.quant.unwrap_or(Quant::Fp16),
        kv_dtype: f.kv_cache_dtype.unwrap_or(KvDtype::Auto),
        tp: tp as u64,
        replicas,
        router: fleet.router.unwrap_or_default(),
        max_waiting: fleet.max_waiting,
        autoscaling,
        batch,
        engine,
        workload: f.workload,
        step_time,
        host,
        limits,
        expect,
        goodput: None,
        base_dir: std::path::PathBuf::new(),
        slo_watch: None,
        price: crate::hardware::PriceBook::builtin().price(gpu),
        disagg,
    };
    // The memory plan divides by the TP size and the block size: plan only a case whose
    // fields all passed.
    if ctx.problems.len() == problems_before {
        match &case.disagg {
            None => check_cache_size(&case, path, ctx),
            Some(d) => {
                check_cache_size(&case.pool_case(&d.prefill), &format!("{path}.fleet.disaggregation.prefill"), ctx);
                check_cache_size(&case.pool_case(&d.decode), &format!("{path}.fleet.disaggregation.decode"), ctx);
            }
        }
    }
    Some(case)
}

/// A KV cache beyond [`MAX_BLOCKS`] (a tiny model on a large GPU, or a config.json with
/// implausibly small layers) would not fit the block ids; say so before any run.
fn check_cache_size(case: &Case, path: &str, ctx: &mut Ctx<'_>) {
    if case.engine.kind != EngineKind::Vllm || case.engine.num_gpu_blocks_override.is_some() {
        return;
    }
    let blocks = match crate::hardware::memory::plan(&case.model, &case.gpu, &case.memory_config()) {
        Ok(plan) => plan.num_gpu_blocks,
        Err(failure) => failure.breakdown.num_gpu_blocks,
    };
    if blocks > MAX_BLOCKS {
        ctx.push(
            format!("{path}.engine"),
            format!("the KV cache would hold {blocks} blocks, above the limit of {MAX_BLOCKS}; set `num_gpu_blocks_override` or a larger `block_size`"),
        );
    }
}

/// vLLM's engine defaults (`EngineArgs._set_default_args` / `get_batch_defaults`) and its
/// `SchedulerConfig` checks.
fn resolve_engine(
    f: &CaseFile,
    model: &ModelSpec,
    gpu: &GpuSpec,
    path: &str,
    ctx: &mut Ctx<'_>,
) -> Option<EngineConfig> {
    let e = &f.engine;
    let entrypoint = e.entrypoint.unwrap_or_default();
    let chunked = e.enable_chunked_prefill.unwrap_or(true);
    let max_model_len = e.max_model_len.unwrap_or(model.max_position_embeddings.min(MAX_TOKENS as u64) as u32);
    if max_model_len as u64 > model.max_position_embeddings {
        ctx.push(
            format!("{path}.engine.max_model_len"),
            format!(
                "{max_model_len} exceeds the model's max_position_embeddings ({}); lower it",
                model.max_position_embeddings
            ),
        );
    }
    if max_model_len < 2 {
        ctx.push(format!("{path}.engine.max_model_len"), "must be at least 2 tokens");
    }
    let (budget_default, seqs_default) = match (entrypoint, is_big_gpu(gpu)) {
        (Entrypoint::Server, true) => (8192, 1024),
        (Entrypoint::Server, false) => (2048, 256),
        (Entrypoint::Offline, true) => (16384, 1024),
        (Entrypoint::Offline, false) => (8192, 256),
    };
    let budget =
        e.max_num_batched_tokens.unwrap_or(if chunked { budget_default } else { max_model_len.max(budget_default) });
    let seqs = e.max_num_seqs.unwrap_or(seqs_default.min(budget));
    let at = |field: &str| format!("{path}.engine.{field}");
    if budget == 0 {
        ctx.push(at("max_num_batched_tokens"), "must be at least 1");
    }
    if seqs == 0 {
        ctx.push(at("max_num_seqs"), "must be at least 1");
    }
    if budget < seqs {
        ctx.push(
            at("max_num_batched_tokens"),
            format!("max_num_batched_tokens ({budget}) is smaller than max_num_seqs ({seqs}); raise it or lower max_num_seqs (vLLM refuses this)"),
        );
    }
    if !chunked && budget < max_model_len {
        ctx.push(
            at("max_num_batched_tokens"),
            format!("with chunked prefill off, max_num_batched_tokens ({budget}) must be at least max_model_len ({max_model_len}); raise it, lower max_model_len or enable chunked prefill"),
        );
    }
    let block_size = e.block_size.unwrap_or(16);
    if !matches!(block_size, 1 | 8 | 16 | 32 | 64 | 128) {
        ctx.push(at("block_size"), format!("block size {block_size} is not one vLLM offers; use 8, 16, 32, 64 or 128"));
    }
    let utilization = e.gpu_memory_utilization.unwrap_or(0.9);
    if !(utilization > 0.0 && utilization <= 1.0) {
        ctx.push(at("gpu_memory_utilization"), format!("must be within (0, 1], got {utilization}"));
    }
    if e.num_gpu_blocks_override.is_some_and(|n| n < 2) {
        ctx.push(at("num_gpu_blocks_override"), "need at least 2 blocks (block 0 is reserved)");
    }
    if let Some(n) = e.num_gpu_blocks_override.filter(|&n| n > MAX_BLOCKS) {
        ctx.push(at("num_gpu_blocks_override"), format!("{n} blocks is above the limit of {MAX_BLOCKS}; lower it"));
    }
    for (field, value) in [
        ("max_num_batched_tokens", budget),
        ("max_model_len", max_model_len),
        ("long_prefill_token_threshold", e.long_prefill_token_threshold.unwrap_or(0)),
    ] {
        if value > MAX_TOKENS {
            ctx.push(at(field), format!("{value} tokens is above the limit of {MAX_TOKENS}; lower it"));
        }
    }
    if seqs > MAX_SEQS {
        ctx.push(at("max_num_seqs"), format!("{seqs} sequences is above the limit of {MAX_SEQS}; lower it"));
    }
    let kv_offloading = offload_size(e, gpu, &at, ctx);
    Some(EngineConfig {
        max_num_batched_tokens: budget,
        max_num_seqs: seqs,
        max_model_len,
        block_size,
        gpu_memory_utilization: utilization,
        enable_prefix_caching: e.enable_prefix_caching.unwrap_or(true),
        enable_chunked_prefill: chunked,
        long_prefill_token_threshold: e.long_prefill_token_threshold.unwrap_or(0),
        async_scheduling: e.async_scheduling.unwrap_or(false),
        enable_expert_parallel: e.enable_expert_parallel.unwrap_or(false),
        generation_config: e.generation_config.unwrap_or_default(),
        num_gpu_blocks_override: e.num_gpu_blocks_override,
        kv_offloading,
        entrypoint,
        kind: e.kind.unwrap_or_default(),
    })
}

/// The CPU KV tier (`--kv-offloading-size` / `num_cpu_blocks`, `--kv-offloading-backend`):
/// vLLM's own checks (`apply_kv_offloading_config`: a positive size, a known backend) plus
/// what symbiote needs to price it.
fn offload_size(
    e: &super::file::EngineFile,
    gpu: &GpuSpec,
    at: &dyn Fn(&str) -> String,
    ctx: &mut Ctx<'_>,
) -> Option<super::OffloadSize> {
    if let Some(backend) = e.kv_offloading_backend.as_deref().filter(|b| *b != "native") {
        ctx.push(
            at("kv_offloading_backend"),
            format!("backend `{backend}` is not modelled; use `native` (vLLM's OffloadingConnector) or leave it out"),
        );
    }
    let size = match (e.kv_offloading_size, e.num_cpu_blocks) {
        (None, None) => {
            if e.kv_offloading_backend.is_some() {
                ctx.push(
                    at("kv_offloading_backend"),
                    "a backend without a size turns nothing on; give `kv_offloading_size` (GiB) too, as vLLM requires",
                );
            }
            return None;
        }
        (Some(_), Some(_)) => {
            ctx.push(
                at("num_cpu_blocks"),
                "give the CPU tier's size once: `kv_offloading_size` (GiB) or `num_cpu_blocks`, not both",
            );
            return None;
        }
        (Some(gib), None) if !(gib.is_finite() && gib > 0.0 && gib <= 1e6) => {
            ctx.push(
                at("kv_offloading_size"),
                format!("must be a positive number of GiB (at most 1e6), got {gib}; leave it out to turn offload off"),
            );
            return None;
        }
        (Some(gib), None) => super::OffloadSize::Gib(gib),
        (None, Some(0)) => {
            ctx.push(at("num_cpu_blocks"), "must be at least 1 block; leave it out to turn offload off");
            return None;
        }
        (None, Some(n)) if n > MAX_BLOCKS => {
            ctx.push(at("num_cpu_blocks"), format!("{n} blocks is above the limit of {MAX_BLOCKS}; lower it"));
            return None;
        }
        (None, Some(n)) => super::OffloadSize::Blocks(n),
    };
    if e.kind == Some(EngineKind::Static) {
        ctx.push(at("kind"), "CPU KV offload is a vLLM connector; the static engine has no paged cache to offload: drop `kv_offloading_size` or use the vllm engine");
        return None;
    }
    if gpu.host_link_gbps.is_none() {
        ctx.push(
            at("kv_offloading_size"),
            format!("GPU `{}` gives no `host_link_gbps` (and `host_link_latency_us`), which price loads from the CPU tier; add them to its catalog file", gpu.name),
        );
        return None;
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#""base": {"model": "llama-2-7b", "gpu": "a100-80gb",
        "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#;

    fn scenario(extra: &str) -> String {
        format!(r#"{{"name": "t", {BASE}{extra}}}"#)
    }

    #[test]
    fn defaults_follow_vllm() {
        let s = parse(&scenario(""), "t.json").unwrap();
        let e = &s.cases[0].engine;
        // A100-80GB is excluded from the big-GPU branch: server defaults 2048 / 256.
        assert_eq!((e.max_num_batched_tokens, e.max_num_seqs, e.max_model_len), (2048, 256, 4096));
        assert_eq!((e.block_size, e.gpu_memory_utilization), (16, 0.9));
        assert!(e.enable_prefix_caching && e.enable_chunked_prefill);
        let h100 = parse(&scenario(r#", "cases": [{"name": "h", "gpu": "h100"}]"#), "t.json").unwrap();
        assert_eq!(h100.cases[0].engine.max_num_batched_tokens, 8192);
        assert_eq!(h100.cases[0].engine.max_num_seqs, 1024);
    }

    #[test]
    fn overrides_apply_by_dotted_path_and_cases_win_over_base() {
        let s = parse(&scenario(r#", "cases": [{"name": "a", "engine.max_num_seqs": 64}, {"name": "b"}]"#), "t.json")
            .unwrap();
        assert_eq!(s.cases[0].engine.max_num_seqs, 64);
        assert_eq!(s.cases[1].engine.max_num_seqs, 256);
    }

    #[test]
    fn matrix_expands_the_cartesian_product_with_readable_names() {
        let s =
            parse(&scenario(r#", "matrix": {"engine.max_num_seqs": [64, 128], "quant": ["fp16", "int4"]}"#), "t.json")
                .unwrap();
        let names: Vec<&str> = s.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "max_num_seqs=64 quant=fp16",
                "max_num_seqs=64 quant=int4",
                "max_num_seqs=128 quant=fp16",
                "max_num_seqs=128 quant=int4"
            ]
        );
        assert_eq!(s.cases[3].quant, Quant::Int4);
        assert_eq!(s.cases[3].engine.max_num_seqs, 128);
    }

    #[test]
    fn matrix_values_win_over_case_overrides_and_file_expectations_apply_to_every_case() {
        let s = parse(
            &scenario(
                r#", "expect": {"outcome": "completed"},
                    "cases": [{"name": "a", "engine.max_num_seqs": 64}, {"name": "b", "expect": {"outcome": "oom"}}],
                    "matrix": {"engine.max_num_seqs": [8]}"#,
            ),
            "t.json",
        )
        .unwrap();
        let names: Vec<&str> = s.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["a max_num_seqs=8", "b max_num_seqs=8"]);
        assert_eq!(s.cases[0].engine.max_num_seqs, 8);
        assert_eq!(s.cases[0].expect.outcome.as_ref().map(|o| o.to_string()).as_deref(), Some("completed"));
        assert_eq!(s.cases[1].expect.outcome.as_ref().map(|o| o.to_string()).as_deref(), Some("oom"));
    }

    #[test]
    fn unknown_fields_suggest_the_right_name() {
        let errs = parse(
            &scenario(r#", "cases": [{"name": "a"}, {"name": "b"}, {"name": "c", "engine.max_num_seq": 5}]"#),
            "t.json",
        )
        .unwrap_err();
        assert_eq!(errs[0].path, "cases[2].engine");
        assert_eq!(errs[0].message, "unknown field `max_num_seq`; did you mean `max_num_seqs`?");
        assert_eq!(
            errs[0].to_string(),
            "t.json: at cases[2].engine: unknown field `max_num_seq`; did you mean `max_num_seqs`?"
        );
    }

    #[test]
    fn seeds_accept_a_list_or_a_range() {
        let s = parse(&scenario(r#", "seeds": {"from": 3, "to": 5}"#), "t.json").unwrap();
        assert_eq!(s.seeds, vec![3, 4, 5]);
        let s = parse(&scenario(r#", "seeds": [9, 2]"#), "t.json").unwrap();
        assert_eq!(s.seeds, vec![9, 2]);
    }
}
