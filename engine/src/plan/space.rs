//! The search space: every combination of GPU type, quantization, TP degree, vLLM batch
//! limits, chunked prefill and router, each turned into a validated one-replica [`Case`]
//! through the scenario validator (so every vLLM default resolves per GPU exactly as in a
//! scenario file), and pruned before any simulation when it cannot run: an invalid
//! combination, a model that does not fit in memory, a GPU without a price.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::hardware::memory;
use crate::scenario::Case;
use crate::serving::router::RouterPolicy;

/// The axes; `None` in a list means "vLLM's default for the GPU".
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    pub gpus: Vec<String>,
    pub quants: Vec<String>,
    pub tps: Vec<u32>,
    pub max_num_seqs: Vec<Option<u32>>,
    pub max_num_batched_tokens: Vec<Option<u32>>,
    pub chunked_prefill: Vec<Option<bool>>,
    /// CPU KV offload (`--kv-offloading-size`): `None` keeps the base case's setting,
    /// `Some(None)` turns it off, `Some(Some(gib))` gives a tier of that many GiB.
    pub kv_offloading: Vec<Option<Option<f64>>>,
    pub routers: Vec<RouterPolicy>,
    /// Prefill:decode splits to try (`None`: a unified fleet), innermost; a disaggregated
    /// candidate's "replica" is one unit of `p + d` replicas.
    pub pd_splits: Vec<Option<PdSplit>>,
}

/// A disaggregated fleet's shape: `prefill` prefill replicas per `decode` decode replicas,
/// over `link` (`hardware::link`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PdSplit {
    pub prefill: u32,
    pub decode: u32,
    pub link: String,
}

impl Space {
    /// Number of points before pruning.
    pub fn size(&self) -> usize {
        self.gpus.len()
            * self.quants.len()
            * self.tps.len()
            * self.max_num_seqs.len()
            * self.max_num_batched_tokens.len()
            * self.chunked_prefill.len()
            * self.kv_offloading.len()
            * self.routers.len()
            * self.pd_splits.len()
    }
}

/// One point of the space, as asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub gpu: String,
    pub quant: String,
    pub tp: u32,
    pub max_num_seqs: Option<u32>,
    pub max_num_batched_tokens: Option<u32>,
    pub chunked_prefill: Option<bool>,
    /// The CPU KV tier: `None` leaves the base case's setting, `Some(None)` is off,
    /// `Some(Some(gib))` a tier of that many GiB.
    pub kv_offloading_size: Option<Option<f64>>,
    pub router: RouterPolicy,
    pub pd: Option<PdSplit>,
}

impl Config {
    /// The fields a case JSON gets for this point (on top of the base case): one replica
    /// behind the router, or one Ray Data actor for an `offline` batch job.
    pub fn overrides(&self, offline: bool) -> Value {
        let mut engine = serde_json::Map::new();
        if let Some(v) = self.max_num_seqs {
            engine.insert("max_num_seqs".into(), v.into());
        }
        if let Some(v) = self.max_num_batched_tokens {
            engine.insert("max_num_batched_tokens".into(), v.into());
        }
        if let Some(v) = self.chunked_prefill {
            engine.insert("enable_chunked_prefill".into(), v.into());
        }
        match self.kv_offloading_size {
            Some(Some(gib)) => {
                engine.insert("kv_offloading_size".into(), gib.into());
            }
            Some(None) => {
                engine.insert("kv_offloading_size".into(), Value::Null);
                engine.insert("num_cpu_blocks".into(), Value::Null);
            }
            None => {}
        }
        let mut out = json!({"gpu": self.gpu, "quant": self.quant, "tp": self.tp, "engine": engine});
        match (&self.pd, offline) {
            (_, true) => out["batch"] = json!({"concurrency": 1}),
            (None, false) => out["fleet"] = json!({"replicas": 1, "router": self.router}),
            (Some(pd), false) => {
                out["fleet"] = json!({"router": self.router, "disaggregation": {
                    "prefill": {"replicas": pd.prefill}, "decode": {"replicas": pd.decode}, "link": pd.link}})
            }
        }
        out
    }
}

/// A point that can run: its resolved case and its price.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub config: Config,
    pub case: Case,
    pub usd_per_gpu_hour: f64,
    pub price_basis: String,
}

impl Candidate {
    /// A short label with the resolved values: `h100-80gb bf16 tp1 seqs 256 tokens 8192 chunked least_outstanding`.
    pub fn label(&self) -> String {
        let e = &self.case.engine;
        format!(
            "{} {} tp{} seqs {} tokens {}{}{} {}",
            self.case.gpu.name,
            self.config.quant,
            self.case.tp,
            e.max_num_seqs,
            e.max_num_batched_tokens,
            if e.enable_chunked_prefill { " chunked" } else { "" },
            match e.kv_offloading {
                Some(crate::scenario::OffloadSize::Gib(g)) => format!(" offload {g} GiB"),
                Some(crate::scenario::OffloadSize::Blocks(n)) => format!(" offload {n} blocks"),
                None => String::new(),
            },
            router_name(self.config.router)
        ) + &self
            .config
            .pd
            .as_ref()
            .map_or(String::new(), |pd| format!(" P:D {}:{} {}", pd.prefill, pd.decode, pd.link))
    }

    /// The case with `replicas` replicas, or, for a disaggregated candidate, `replicas` units
    /// of its P:D split.
    pub fn sized(&self, replicas: u32) -> Case {
        let mut case = self.case.clone();
        match (&mut case.disagg, &self.config.pd) {
            (Some(d), Some(pd)) => {
                d.prefill.replicas = pd.prefill * replicas;
                d.decode.replicas = pd.decode * replicas;
                case.replicas = (pd.prefill + pd.decode) * replicas;
            }
            _ => case.replicas = replicas,
        }
        case
    }

    /// Whether the step times rest on measurements of this GPU (a fitted roofline or its
    /// kernel timings).
    pub fn calibrated(&self) -> bool {
        self.case.step_time_calibrated()
    }

    /// How far its simulated latencies may be from vLLM's (a fraction).
    pub fn error_band(&self) -> f64 {
        self.case.error_band().unwrap_or(self.case.gpu.error_band())
    }

    /// GPUs in one "replica" of the search: one replica, or one unit of the P:D split.
    pub fn gpus_per_replica(&self) -> u64 {
        self.case.tp * self.config.pd.as_ref().map_or(1, |pd| (pd.prefill + pd.decode) as u64)
    }
}

pub fn router_name(router: RouterPolicy) -> String {
    serde_json::to_value(router).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Each point in a fixed order (the axes nested in the order of [`Space`], routers innermost,
/// so that points that differ only by router are neighbours).
pub fn enumerate(space: &Space) -> Vec<Config> {
    let mut out = Vec::with_capacity(space.size());
    for gpu in &space.gpus {
        for quant in &space.quants {
            for &tp in &space.tps {
                for &max_num_seqs in &space.max_num_seqs {
                    for &max_num_batched_tokens in &space.max_num_batched_tokens {
                        for &chunked_prefill in &space.chunked_prefill {
                            for &kv_offloading_size in &space.kv_offloading {
                                for &router in &space.routers {
                                    for pd in &space.pd_splits {
                                        out.push(Config {
                                            gpu: gpu.clone(),
                                            quant: quant.clone(),
                                            tp,
                                            max_num_seqs,
                                            max_num_batched_tokens,
                                            chunked_prefill,
                                            kv_offloading_size,
                                            router,
                                            pd: pd.clone(),
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// `base` (a case object as in a scenario's `base`) with `patch` merged in, objects key by key.
pub fn merged(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = a.clone();
            for (k, v) in b {
                let merged_value = out.get(k).map_or_else(|| v.clone(), |old| merged(old, v));
                out.insert(k.clone(), merged_value);
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

/// Resolves one point: `Ok` with its candidate, or `Err` with why it was pruned.
pub fn resolve(
    base: &Value,
    base_dir: &Path,
    config: &Config,
    prices: &BTreeMap<String, (f64, String)>,
) -> Result<Candidate, String> {
    let offline = base.get("batch").is_some_and(|b| !b.is_null());
    if offline && config.pd.is_some() {
        return Err("a P:D split, which a Ray Data batch job does not have (use --pd-splits unified)".into());
    }
    let case_json = merged(base, &config.overrides(offline));
    let scenario = json!({"name": "plan", "base": case_json});
    let mut parsed =
        crate::scenario::parse_in(&scenario.to_string(), "the plan's base case", base_dir).map_err(|problems| {
            let first = problems.first().map(|p| p.to_string()).unwrap_or_default();
            format!("not a valid configuration: {first}")
        })?;
    let case = parsed.cases.remove(0);
    if let Err(failure) = memory::plan(&case.model, &case.gpu, &case.memory_config()) {
        return Err(format!("does not fit in memory: {}", crate::text::clip_message(&failure.message)));
    }
    let (usd_per_gpu_hour, price_basis) = prices
        .get(&case.gpu.name)
        .cloned()
        .ok_or_else(|| format!("no price for {} (give one with --prices)", case.gpu.name))?;
    Ok(Candidate { config: config.clone(), case, usd_per_gpu_hour, price_basis })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space {
            gpus: vec!["a100-80gb".into(), "h100-80gb".into()],
            quants: vec!["fp16".into()],
            tps: vec![1, 2],
            max_num_seqs: vec![None, Some(64)],
            max_num_batched_tokens: vec![None],
            chunked_prefill: vec![None],
            kv_offloading: vec![None],
            routers: vec![RouterPolicy::RoundRobin, RouterPolicy::LeastOutstanding],
            pd_splits: vec![None],
        }
    }

    #[test]
    fn enumeration_is_the_full_product_with_routers_innermost() {
        let configs = enumerate(&space());
        assert_eq!(configs.len(), space().size());
        assert_eq!(configs.len(), 16);
        assert_eq!(configs[0].router, RouterPolicy::RoundRobin);
        assert_eq!(configs[1].router, RouterPolicy::LeastOutstanding);
        assert_eq!((configs[0].gpu.as_str(), configs[8].gpu.as_str()), ("a100-80gb", "h100-80gb"));
    }

    #[test]
    fn merge_keeps_base_fields_and_overrides_leaves() {
        let base = json!({"model": "m", "engine": {"max_model_len": 4096, "max_num_seqs": 8}});
        let out = merged(&base, &json!({"engine": {"max_num_seqs": 64}, "gpu": "g"}));
        assert_eq!(out, json!({"model": "m", "engine": {"max_model_len": 4096, "max_num_seqs": 64}, "gpu": "g"}));
    }

    #[test]
    fn points_are_pruned_with_the_reason() {
        let base = json!({"model": "llama-2-70b", "workload": {"arrival": {"rate": 1}, "num_requests": 10}});
        let prices: BTreeMap<String, (f64, String)> =
            [("a100-80gb".to_string(), (2.0, "test".to_string()))].into_iter().collect();
        let mut config = enumerate(&space())[0].clone();
        let err = resolve(&base, Path::new("."), &config, &prices).unwrap_err();
        assert!(err.contains("does not fit in memory"), "{err}");
        config.tp = 4;
        let ok = resolve(&base, Path::new("."), &config, &prices).unwrap();
        assert_eq!(ok.case.tp, 4);
        assert_eq!(ok.usd_per_gpu_hour, 2.0);
        config.gpu = "h100-80gb".into();
        assert!(resolve(&base, Path::new("."), &config, &prices).unwrap_err().contains("no price"));
        config.tp = 3;
        let err = resolve(&base, Path::new("."), &config, &prices).unwrap_err();
        assert!(err.contains("not a valid configuration"), "{err}");
    }
}
