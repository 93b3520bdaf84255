//! The scenario file exactly as written: serde mirrors of the JSON with
//! `deny_unknown_fields`, `Option`s where a default applies. Nothing here is validated or
//! resolved; `validate` does that.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::hardware::{KvDtype, Quant};
use crate::workload::WorkloadSpec;

/// Which vLLM entrypoint the defaults follow: `server` (`vllm serve`, what `vllm bench serve`
/// measures) or `offline` (the `LLM` class, as Ray Data LLM drives it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Entrypoint {
    #[default]
    Server,
    Offline,
}

/// Which engine serves: vLLM's continuous batching or a static `generate` loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    #[default]
    Vllm,
    /// Padded batches of up to `max_num_seqs` rows with KV reserved up front (Hugging Face
    /// `generate`).
    Static,
}

/// Where requests that set no sampling parameters get their defaults (`--generation-config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GenerationConfig {
    /// The model's `generation_config.json` (vLLM's default): a model that sets top-p or top-k
    /// there makes every step sort its sequences' logits.
    #[default]
    Auto,
    /// vLLM's neutral defaults (top-p 1, top-k off): no sort.
    Vllm,
}

/// vLLM engine arguments; every field is optional and defaults the way vLLM does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineFile {
    /// `--max-num-batched-tokens`: the token budget of one step.
    pub max_num_batched_tokens: Option<u32>,
    /// `--max-num-seqs`: the most requests running at once.
    pub max_num_seqs: Option<u32>,
    /// `--max-model-len`: default the model's `max_position_embeddings`.
    pub max_model_len: Option<u32>,
    /// `--block-size`: default 16.
    pub block_size: Option<u32>,
    /// `--gpu-memory-utilization`: default 0.9.
    pub gpu_memory_utilization: Option<f64>,
    /// `--enable-prefix-caching`: default true in V1.
    pub enable_prefix_caching: Option<bool>,
    /// `--enable-chunked-prefill`: default true in V1.
    pub enable_chunked_prefill: Option<bool>,
    /// `--long-prefill-token-threshold`: default 0 (off).
    pub long_prefill_token_threshold: Option<u32>,
    /// `--async-scheduling`: the scheduler plans step N+1 while step N runs, so a request that
    /// arrives during step N waits for N+1 as well. Default false (vLLM v0.11); vLLM turned it
    /// on by default in PR #27614 (late 2025).
    pub async_scheduling: Option<bool>,
    /// `--enable-expert-parallel`: a MoE model's experts are spread whole over the TP ranks
    /// (EP = TP) instead of each being sliced over them; the step then waits for the rank whose
    /// experts the batch touches most. Default false; no effect on dense models.
    pub enable_expert_parallel: Option<bool>,
    /// `--generation-config`: `auto` (default) applies the model's sampling defaults to
    /// requests, `vllm` applies vLLM's neutral ones.
    pub generation_config: Option<GenerationConfig>,
    /// `--num-gpu-blocks-override`.
    pub num_gpu_blocks_override: Option<u64>,
    /// `--kv-offloading-size`: a CPU tier of this many GiB (over all tensor-parallel ranks)
    /// for vLLM's OffloadingConnector, which stores full KV blocks to host memory and loads
    /// prefix hits back over PCIe. Default none (off).
    pub kv_offloading_size: Option<f64>,
    /// `--kv-offloading-backend`: `native` (vLLM's OffloadingConnector, the one modelled).
    pub kv_offloading_backend: Option<String>,
    /// The CPU tier in blocks instead of GiB (`kv_connector_extra_config.num_cpu_blocks` of
    /// vLLM 0.11's OffloadingConnector); give this or `kv_offloading_size`, not both.
    pub num_cpu_blocks: Option<u64>,
    /// Which entrypoint's defaults apply. Default `server`.
    pub entrypoint: Option<Entrypoint>,
    /// `vllm` (default) or `static`.
    pub kind: Option<EngineKind>,
}

/// Replicas behind a router (an online fleet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// Number of replicas, each one engine on `tp` GPUs. Default 1.
    pub replicas: Option<u32>,
    /// round_robin (default), least_outstanding, least_kv, prefix_affinity, random.
    pub router: Option<crate::serving::router::RouterPolicy>,
    /// Admission limit: most requests waiting fleet-wide; more are rejected and counted.
    pub max_waiting: Option<u64>,
    /// Ray Serve autoscaling (`ray.serve.config.AutoscalingConfig`, same names and defaults):
    /// replicas added and removed by Ray Serve's default policy instead of a fixed `replicas`.
    pub autoscaling_config: Option<AutoscalingConfigFile>,
    /// What a replica added by the autoscaler pays before it serves.
    pub cold_start: Option<ColdStartFile>,
    /// Disaggregated prefill and decode (vLLM's disaggregated prefilling with the NIXL
    /// connector): a prefill pool and a decode pool instead of `replicas` unified replicas.
    pub disaggregation: Option<DisaggregationFile>,
}

/// Ray Serve's `autoscaling_config` of a deployment; every field defaults as Ray's
/// `AutoscalingConfig` does (`python/ray/serve/config.py`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingConfigFile {
    /// Default 1 (symbiote needs at least 1: scale-to-zero is not modelled).
    pub min_replicas: Option<u32>,
    /// Default 1.
    pub max_replicas: Option<u32>,
    /// Replicas up when the run starts; default `min_replicas`.
    pub initial_replicas: Option<u32>,
    /// Ongoing (queued + running) requests per replica the policy aims at. Default 2.
    pub target_ongoing_requests: Option<f64>,
    /// How long an upscale wish must hold before replicas are added. Default 30 s.
    pub upscale_delay_s: Option<f64>,
    /// How long a downscale wish must hold before replicas are removed. Default 600 s.
    pub downscale_delay_s: Option<f64>,
    /// How often replicas push their averages to the controller. Default 10 s.
    pub metrics_interval_s: Option<f64>,
    /// The window those averages cover. Default 30 s.
    pub look_back_period_s: Option<f64>,
    /// Multiplies each upscale step (`upscaling_factor`, else `upscale_smoothing_factor`,
    /// else `smoothing_factor`). Default 1.
    pub upscaling_factor: Option<f64>,
    /// Multiplies each downscale step. Default 1.
    pub downscaling_factor: Option<f64>,
    /// Ray's older name for both factors. Default 1.
    pub smoothing_factor: Option<f64>,
    pub upscale_smoothing_factor: Option<f64>,
    pub downscale_smoothing_factor: Option<f64>,
}

/// A new replica's cold start: its weights read at `load_gbps`, then vLLM's engine start-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColdStartFile {
    /// Weight-loading bandwidth per GPU, GB/s (each tensor-parallel rank reads its shard).
    /// Default 5 GB/s, an assumption: vLLM issue #20264 logs 3.42 GiB loaded in 0.69 s (5.3
    /// GB/s) from a warm page cache; network storage is slower. Set your own.
    pub load_gbps: Option<f64>,
    /// vLLM's start-up after the weights: profiling, KV-cache allocation, torch.compile (from
    /// its cache) and CUDA-graph capture, plus the API server. Default 58 s (vLLM issue
    /// #20264: first response 59 s after launch with 0.9 s of it loading weights; low
    /// confidence, cold compile caches take longer: #19824 reports 70 s of torch.compile and
    /// 60 s of CUDA-graph capture for Llama-70B on TP 8).
    pub engine_startup_s: Option<f64>,
}

/// Two pools behind a proxy (vLLM's `toy_proxy_server.py`): each request is prefilled on a
/// prefill replica, its KV read by a decode replica over `link`, and decoded there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisaggregationFile {
    pub prefill: PoolFile,
    pub decode: PoolFile,
    /// What carries the KV: `nvlink`, `pcie` (the GPU's own figures) or an RDMA NIC per GPU
    /// (`ib-ndr-400`, `ib-hdr-200`, `ethernet-100`; `models/links.json`).
    pub link: String,
    /// Replaces the link's fixed latency per transfer, in microseconds.
    pub link_latency_us: Option<f64>,
}

/// One pool of a disaggregated fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    /// Replicas in the pool, each one engine on `tp` GPUs.
    pub replicas: u32,
    /// The pool's GPU; default the case's `gpu`.
    pub gpu: Option<String>,
    /// The pool's tensor-parallel size; default the case's `tp`.
    pub tp: Option<u32>,
    /// How the proxy picks a replica of this pool; default the fleet's `router`.
    pub router: Option<crate::serving::router::RouterPolicy>,
}

/// Offline batch inference as Ray Data LLM runs it (`vLLMEngineProcessorConfig`): a dataset of
/// `rows` rows, available at t=0, cut into batches of `batch_size` rows and consumed by
/// `concurrency` replicas, each holding up to `max_concurrent_batches` batches at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchFile {
    pub rows: u64,
    /// Rows per batch. Ray Data LLM's default is 32.
    pub batch_size: Option<u32>,
    /// Replicas (Ray actors). Default 1.
    pub concurrency: Option<u32>,
    /// Batches a replica accepts at once. Ray Data LLM's default is 8.
    pub max_concurrent_batches: Option<u32>,
    /// Fixed start-up time of a replica before it accepts work (process, CUDA graphs), seconds.
    pub startup_s: Option<f64>,
    /// Weight-loading bandwidth, GB/s: adds weights_bytes / bandwidth to the start-up time.
    pub load_gbps: Option<f64>,
}

/// The step-time model of a case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepTimeFile {
    /// The kernel tables where the GPU has them and they can price the case, the roofline
    /// elsewhere (the default).
    Auto,
    /// The roofline model with the GPU catalog's efficiencies.
    Roofline,
    /// GPU kernel timings measured through vLLM (`models/kernels/`: A100-80GB, H100, H200,
    /// L40S; 16-bit and FP8), with the shared host profile (`models/host.json`); the roofline,
    /// with a warning, where the tables cannot price the case.
    Kernels,
    /// Every step costs `step_ms` plus `token_us` per scheduled token.
    Constant {
        step_ms: f64,
        #[serde(default)]
        token_us: f64,
    },
}

/// Bounds on one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Stop at this simulated time (outcome `time_limit`). Default: none.
    pub max_sim_time_s: Option<f64>,
    /// Stop after this many events (outcome `event_limit`). Default 200 million.
    pub max_events: Option<u64>,
}

/// One case, complete: what `base` holds and what overrides produce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Catalog name (`llama-2-7b`) or Hugging Face id.
    pub model: String,
    /// Catalog name (`a100-80gb`).
    pub gpu: String,
    /// Weight precision: fp32, fp16, bf16, fp8, int8, int4. Default fp16.
    #[serde(default)]
    pub quant: Option<Quant>,
    /// `--kv-cache-dtype`: auto or fp8. Default auto.
    #[serde(default)]
    pub kv_cache_dtype: Option<KvDtype>,
    /// `--tensor-parallel-size`. Default 1.
    #[serde(default)]
    pub tp: Option<u32>,
    /// Replicas behind a router.
    #[serde(default)]
    pub fleet: Option<FleetFile>,
    /// Offline batch inference (Ray Data) instead of online arrivals.
    #[serde(default)]
    pub batch: Option<BatchFile>,
    #[serde(default)]
    pub engine: EngineFile,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub step_time: Option<StepTimeFile>,
    /// How much slower (above 1) or faster (below 1) this deployment's host CPU runs vLLM's
    /// host work (scheduling, input preparation, API server) than the host profile's, which
    /// was fitted on the H100 runs of sim2real_trainval.json; 1 by default.
    #[serde(default)]
    pub host_scale: Option<f64>,
    #[serde(default)]
    pub limits: LimitsFile,
    /// vLLM's engine arguments under vLLM's names (`{"tensor_parallel_size": 2, "dtype":
    /// "bfloat16", "enable_prefix_caching": false}`), mapped onto the fields above before
    /// validation; a flag symbiote does not model is an error that names it.
    #[serde(default)]
    pub vllm: Option<serde_json::Map<String, serde_json::Value>>,
    /// vLLM's engine arguments as a `vllm serve` command line (`"--tensor-parallel-size 2
    /// --max-num-seqs 128 --no-enable-prefix-caching"`), mapped like `vllm`.
    #[serde(default)]
    pub vllm_args: Option<String>,
}

/// Bounds on one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The outcome a case expects: one, or any of several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ExpectedOutcome {
    One(String),
    AnyOf(Vec<String>),
}

impl ExpectedOutcome {
    /// The outcome names given.
    pub fn names(&self) -> &[String] {
        match self {
            ExpectedOutcome::One(name) => std::slice::from_ref(name),
            ExpectedOutcome::AnyOf(names) => names,
        }
    }

    pub fn allows(&self, outcome: &str) -> bool {
        self.names().iter().any(|name| name == outcome)
    }
}

impl std::fmt::Display for ExpectedOutcome {
    /// `oom`, or `one of completed, oom`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedOutcome::One(name) => write!(f, "{name}"),
            ExpectedOutcome::AnyOf(names) => write!(f, "one of {}", names.join(", ")),
        }
    }
}

/// What a case is expected to show; each item is reported as pass or fail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    /// `completed`, `oom`, `time_limit`, `event_limit`, `stalled` or `time_overflow`, or a list
    /// of them any of which passes (`["completed", "oom"]` for a sweep whose larger points may
    /// not fit). Without it, a run that does not end `completed` fails like an expectation.
    pub outcome: Option<ExpectedOutcome>,
    /// Every `slo` threshold met (true) or some missed (false).
    pub slo_met: Option<bool>,
    /// Bounds on metrics, by their report key.
    #[serde(default)]
    pub metrics: BTreeMap<String, Bounds>,
    /// Values measured on real hardware for this case, by report key: reported beside the
    /// simulated means with the error, never pass/fail.
    #[serde(default)]
    pub measured: BTreeMap<String, f64>,
}

/// Service-level objectives. Per-request thresholds define goodput as `vllm bench serve
/// --goodput` does; percentile thresholds decide `slo_met`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloFile {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
    pub p99_ttft_ms: Option<f64>,
    pub p99_tpot_ms: Option<f64>,
    pub p99_e2el_ms: Option<f64>,
}

/// Seeds as a list or an inclusive range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SeedsFile {
    List(Vec<u64>),
    Range { from: u64, to: u64 },
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seeds: Option<SeedsFile>,
    #[serde(default)]
    pub slo: Option<SloFile>,
    #[schemars(with = "CaseFile")]
    pub base: serde_json::Value,
    /// Named cases, each `{"name": ..., "<dotted.path>": value, ..., "expect": {...}}`.
    #[serde(default)]
    pub cases: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Axes (dotted path -> values) whose cartesian product is expanded into cases.
    #[serde(default)]
    pub matrix: Option<serde_json::Map<String, serde_json::Value>>,
    /// Expectations applied to every case that does not set its own.
    #[serde(default)]
    pub expect: Option<ExpectFile>,
    /// A phase analysis that adds findings to the report (config_matrix, burstiness, oom,
    /// kv_stress, weight_storage, chunked_prefill).
    #[serde(default)]
    pub analysis: Option<crate::report::phases::Analysis>,
}

/// The JSON Schema of scenario files, for editors (`symbiote schema`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}
