//! The GPU and LLM catalogs: the JSON files under `models/`, embedded at build time so the
//! binary works from any directory, parsed into [`GpuSpec`] and [`ModelSpec`], and looked up
//! by forgiving names (`a100-40gb`, `A100_40GB`, `llama-2-7b`).
//!
//! This is the only code that knows the `models/` folder.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Dense peak throughput per precision, in TFLOPS (TOPS for integers); `None` where the GPU
/// has no such tensor path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakTflops {
    pub fp32: f64,
    pub tf32: Option<f64>,
    pub fp16_bf16: f64,
    pub fp8: Option<f64>,
    pub int8: Option<f64>,
    pub int4: Option<f64>,
}

/// Efficiencies and overheads of the roofline step-time model for one GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTimeParams {
    /// Fraction of dense peak reached by the linear layers (GEMMs).
    pub matmul_efficiency: f64,
    /// Fraction of dense peak reached by attention kernels.
    pub attention_efficiency: f64,
    /// Fraction of DRAM bandwidth reached when streaming weights.
    pub bandwidth_efficiency: f64,
    /// Fraction of DRAM bandwidth reached by attention reading the paged KV cache; the
    /// weight-streaming figure when absent.
    #[serde(default)]
    pub kv_bandwidth_efficiency: Option<f64>,
    /// Fraction of DRAM bandwidth reached reading MoE expert weights (fused grouped-GEMM
    /// kernels); the weight-streaming figure when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe_bandwidth_efficiency: Option<f64>,
    /// Fixed cost of every step: scheduling, input preparation, launch, sampling short of a sort.
    pub step_overhead_us: f64,
    /// Extra cost per scheduled sequence per step.
    pub per_sequence_overhead_us: f64,
    /// Fraction of the interconnect bandwidth an all-reduce reaches.
    pub allreduce_efficiency: f64,
    /// Latency of one step of a short-message all-reduce; a call over `tp` GPUs takes
    /// `log2(tp)` steps (recursive doubling, the latency-optimal algorithm for short messages:
    /// Thakur, Rabenseifner and Gropp, IJHPCA 2005).
    pub allreduce_latency_us: f64,
    /// Time an online request spends in the API server and client before it reaches the
    /// engine (HTTP, tokenization): part of client-side TTFT. 0 unless calibrated.
    #[serde(default)]
    pub frontend_overhead_us: f64,
    /// GPU time per logit of the sort-based top-k/top-p sampler (vLLM's PyTorch path, the
    /// default until FlashInfer's sampler became it): a step whose requests use top-k or top-p
    /// pays this x sequences x vocabulary. 0 when absent.
    #[serde(default)]
    pub sampling_sort_ns_per_logit: f64,
    /// The fraction of the dense peak that compute-bound linear layers sustain in a saturated
    /// server, fitted on vLLM runs at request rate inf (`scripts/fit_sustained.py`): below
    /// what isolated kernel timings reach. `None` where this GPU has no such runs; it is then
    /// borrowed or derived ([`super::sustained`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustained_matmul_fraction: Option<f64>,
    pub provenance: String,
    pub sources: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    pub name: String,
    pub display_name: String,
    pub aliases: Vec<String>,
    pub vendor: String,
    pub architecture: String,
    pub memory_gib: f64,
    /// Total memory as `torch.cuda.mem_get_info` reports it; vLLM multiplies this number by
    /// `gpu_memory_utilization`.
    pub memory_visible_gib: f64,
    pub hbm_bandwidth_gbps: f64,
    pub tflops: PeakTflops,
    pub interconnect: Option<String>,
    /// GPU-to-GPU bandwidth, GB/s, bidirectional total per GPU as vendors quote it.
    pub interconnect_gbps: Option<f64>,
    pub pcie_gbps: f64,
    /// Effective one-direction bandwidth of the GPU's host link (pinned-memory DMA), GB/s:
    /// what KV blocks offloaded to the CPU tier move at. `None` where the file gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link_gbps: Option<f64>,
    /// Fixed cost of one host-link transfer, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link_latency_us: Option<f64>,
    /// Board power limit (TDP) as the datasheet gives it, watts: what carries the sustained
    /// compute of the GPUs with saturated runs over to the others ([`super::sustained`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdp_watts: Option<f64>,
    /// Public list prices of one GPU-hour, each with provider, source and date
    /// ([`super::prices`] picks the one a report uses); empty where none was found.
    #[serde(default)]
    pub prices: Vec<super::prices::PriceQuote>,
    pub sources: BTreeMap<String, String>,
    pub verification: String,
    pub step_time: StepTimeParams,
    /// The file this entry was read from at run time (`--catalog`); `None` when built in.
    #[serde(skip)]
    pub origin: Option<super::user_catalog::Origin>,
}

/// How far a calibrated GPU's simulated latencies may be from vLLM's: the largest of the
/// held-out (leave-one-model-out) median errors of the shipped H100 parameters on
/// sim2real_trainval.json, 3.5% (E2E), 5.9% (TTFT) and 3.4% (ITL) (README, "Fidelity").
pub const CALIBRATED_ERROR_BAND: f64 = 0.06;
/// How far a GPU priced by its kernel tables (with the shared host profile) may be at light to
/// moderate load: on the H100 runs of sim2real_trainval.json this model's leave-one-model-out
/// median errors are 6.7% (E2E), 12.3% (TTFT) and 6.6% (ITL) (`symbiote fidelity
/// scenarios/validation/sim2real_trainval.json --step-model kernels --cross-validate`), and
/// predicting GPUStack's A100-80GB runs from a host profile fitted on the H100 runs only missed
/// by a median 18-22% in capacity and 13-20% in latency (`symbiote fidelity
/// scenarios/validation/gpustack_perf_lab.json --step-model kernels --cross-validate`); 25%
/// covers both. At saturation (every request at once) it is worse: with the shipped host
/// profile GPUStack's A100 capacity comes out a median 56% too high, the H100's 50% (the
/// calibrated roofline); reports say so beside the band.
pub const KERNEL_TABLES_ERROR_BAND: f64 = 0.25;
/// How far an uncalibrated GPU's may be: on real vLLM runs held out from the developers,
/// simulated A100-80GB E2E and ITL were about 25% and TTFT 40% too fast, L40S 11% and 42%
/// (issue 12).
pub const UNCALIBRATED_ERROR_BAND: f64 = 0.40;

impl GpuSpec {
    /// Whether the step-time parameters were fitted to measured vLLM runs (`symbiote calibrate`).
    pub fn calibrated(&self) -> bool {
        self.step_time.provenance.starts_with("calibrated")
    }

    /// The relative error band that goes with this GPU's simulated latencies.
    pub fn error_band(&self) -> f64 {
        if self.calibrated() {
            CALIBRATED_ERROR_BAND
        } else {
            UNCALIBRATED_ERROR_BAND
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeSpec {
    pub num_experts: u32,
    pub experts_per_token: u32,
    pub expert_intermediate_size: u64,
    /// Experts every token passes through besides the routed ones (Llama 4: one).
    #[serde(default)]
    pub shared_experts: u32,
}

/// The sampling defaults of a model's `generation_config.json`, which vLLM applies to requests
/// that set none (`--generation-config auto`, vLLM PR #11164). Absent fields are vLLM's
/// neutral defaults (top-p 1, top-k off, no penalty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationDefaults {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub repetition_penalty: Option<f64>,
}

impl GenerationDefaults {
    /// Whether requests with these defaults take vLLM's top-k/top-p path, which sorts every
    /// sequence's logits over the whole vocabulary.
    pub fn filters_logits(&self) -> bool {
        self.top_p.is_some_and(|p| p < 1.0) || self.top_k.is_some_and(|k| k > 0)
    }

    /// The defaults from a `generation_config.json`.
    pub fn from_json(text: &str) -> Result<GenerationDefaults, String> {
        serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        Ok(GenerationDefaults {
            temperature: root.get("temperature").and_then(serde_json::Value::as_f64),
            top_p: root.get("top_p").and_then(serde_json::Value::as_f64),
            top_k: root.get("top_k").and_then(serde_json::Value::as_i64),
            repetition_penalty: root.get("repetition_penalty").and_then(serde_json::Value::as_f64),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub display_name: String,
    pub aliases: Vec<String>,
    pub hf_id: String,
    pub architecture: String,
    pub hidden_size: u64,
    pub intermediate_size: u64,
    pub num_layers: u64,
    pub num_attention_heads: u64,
    pub num_kv_heads: u64,
    pub head_dim: u64,
    pub vocab_size: u64,
    pub max_position_embeddings: u64,
    pub tie_word_embeddings: bool,
    pub attention_qkv_bias: bool,
    pub moe: Option<MoeSpec>,
    /// Sliding-window attention width, when every layer uses one.
    pub sliding_window: Option<u64>,
    pub torch_dtype: String,
    pub num_params_published: String,
    /// The sampling defaults of the model's `generation_config.json`; none when it sets none.
    #[serde(default)]
    pub generation_config: GenerationDefaults,
    /// Other repositories with the same architecture but their own name and sampling defaults
    /// (an instruct model beside its base); the catalog lists each as a model of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<ModelVariant>,
    pub sources: BTreeMap<String, String>,
    /// The file this entry was read from at run time (`--catalog`, a Hugging Face config.json);
    /// `None` when built in.
    #[serde(skip)]
    pub origin: Option<super::user_catalog::Origin>,
}

/// A repository that shares a catalog entry's architecture: what differs, with its source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelVariant {
    pub name: String,
    pub hf_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub generation_config: GenerationDefaults,
    /// The variant's own context limit, where its config.json differs from the base's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_position_embeddings: Option<u64>,
    pub source: String,
}

impl ModelSpec {
    /// This entry followed by one entry per variant.
    pub(crate) fn with_variants(mut self) -> Vec<ModelSpec> {
        let variants = std::mem::take(&mut self.variants);
        let mut out = vec![self];
        for v in variants {
            let mut m = out[0].clone();
            m.display_name = format!("{} ({})", m.display_name, v.hf_id);
            m.name = v.name;
            m.hf_id = v.hf_id;
            m.aliases = v.aliases;
            m.generation_config = v.generation_config;
            m.max_position_embeddings = v.max_position_embeddings.unwrap_or(m.max_position_embeddings);
            m.sources.insert("generation_config".into(), v.source);
            out.push(m);
        }
        out
    }
}

/// The shipped catalog files, embedded at build time.
const GPU_FILES: &[(&str, &str)] = &[
    ("a100-40gb.json", include_str!("../../../models/gpu/a100-40gb.json")),
    ("a100-80gb.json", include_str!("../../../models/gpu/a100-80gb.json")),
    ("a10g.json", include_str!("../../../models/gpu/a10g.json")),
    ("b200.json", include_str!("../../../models/gpu/b200.json")),
    ("h100-80gb.json", include_str!("../../../models/gpu/h100-80gb.json")),
    ("h100-pcie.json", include_str!("../../../models/gpu/h100-pcie.json")),
    ("h200.json", include_str!("../../../models/gpu/h200.json")),
    ("l4.json", include_str!("../../../models/gpu/l4.json")),
    ("l40.json", include_str!("../../../models/gpu/l40.json")),
    ("l40s.json", include_str!("../../../models/gpu/l40s.json")),
    ("mi300x.json", include_str!("../../../models/gpu/mi300x.json")),
    ("rtx-3090.json", include_str!("../../../models/gpu/rtx-3090.json")),
    ("rtx-4090.json", include_str!("../../../models/gpu/rtx-4090.json")),
];

const MODEL_FILES: &[(&str, &str)] = &[
    ("llama-2-13b.json", include_str!("../../../models/llm/llama-2-13b.json")),
    ("llama-2-70b.json", include_str!("../../../models/llm/llama-2-70b.json")),
    ("llama-2-7b.json", include_str!("../../../models/llm/llama-2-7b.json")),
    ("llama-3.1-70b.json", include_str!("../../../models/llm/llama-3.1-70b.json")),
    ("llama-3.1-8b.json", include_str!("../../../models/llm/llama-3.1-8b.json")),
    ("llama-4-scout.json", include_str!("../../../models/llm/llama-4-scout.json")),
    ("mistral-7b.json", include_str!("../../../models/llm/mistral-7b.json")),
    ("mistral-nemo.json", include_str!("../../../models/llm/mistral-nemo.json")),
    ("mixtral-8x7b.json", include_str!("../../../models/llm/mixtral-8x7b.json")),
    ("phi-3-mini.json", include_str!("../../../models/llm/phi-3-mini.json")),
    ("qwen2.5-0.5b.json", include_str!("../../../models/llm/qwen2.5-0.5b.json")),
    ("qwen2.5-1.5b.json", include_str!("../../../models/llm/qwen2.5-1.5b.json")),
    ("qwen2.5-7b.json", include_str!("../../../models/llm/qwen2.5-7b.json")),
    ("qwen3-14b.json", include_str!("../../../models/llm/qwen3-14b.json")),
    ("qwen3-32b.json", include_str!("../../../models/llm/qwen3-32b.json")),
    ("qwen3-8b.json", include_str!("../../../models/llm/qwen3-8b.json")),
    ("yi-34b.json", include_str!("../../../models/llm/yi-34b.json")),
];

/// Lowercases and maps `_`, spaces and dots-in-sizes to one spelling so that `A100_40GB`,
/// `a100-40gb` and `A100 40GB` find the same entry.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace(['_', ' '], "-")
}

impl ModelSpec {
    /// A model from a Hugging Face `config.json` (the text config of multimodal models), so a
    /// model missing from the catalog is one file away. `name` labels it in reports.
    pub fn from_hf_config(text: &str, name: &str) -> Result<ModelSpec, String> {
        serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let c = root.get("text_config").unwrap_or(&root);
        check_hf_shape(c)?;
        let int = |key: &str| c.get(key).and_then(serde_json::Value::as_u64);
        let need = |key: &str| int(key).ok_or_else(|| format!("config.json has no integer `{key}`"));
        let hidden = need("hidden_size")?;
        let heads = need("num_attention_heads")?;
        let model_type = c.get("model_type").or_else(|| root.get("model_type")).and_then(|v| v.as_str()).unwrap_or("");
        let moe = match (int("num_local_experts").or_else(|| int("num_experts")), int("num_experts_per_tok")) {
            (Some(experts), Some(per_token)) if experts > 1 => Some(MoeSpec {
                num_experts: experts as u32,
                experts_per_token: per_token as u32,
                expert_intermediate_size: int("moe_intermediate_size")
                    .or_else(|| int("intermediate_size"))
                    .unwrap_or(0),
                shared_experts: int("n_shared_experts").unwrap_or(0) as u32,
            }),
            _ => None,
        };
        Ok(ModelSpec {
            name: name.to_string(),
            display_name: name.to_string(),
            aliases: Vec::new(),
            hf_id: name.to_string(),
            architecture: root.get("architectures").map(|a| a.to_string()).unwrap_or_default(),
            hidden_size: hidden,
            intermediate_size: need("intermediate_size")?,
            num_layers: need("num_hidden_layers")?,
            num_attention_heads: heads,
            num_kv_heads: int("num_key_value_heads").unwrap_or(heads),
            head_dim: int("head_dim").unwrap_or(hidden / heads.max(1)),
            vocab_size: need("vocab_size")?,
            max_position_embeddings: int("max_position_embeddings").unwrap_or(4096),
            tie_word_embeddings: c.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(false),
            attention_qkv_bias: c
                .get("attention_bias")
                .and_then(|v| v.as_bool())
                .unwrap_or(model_type.starts_with("qwen2")),
            moe,
            sliding_window: None,
            torch_dtype: c.get("torch_dtype").and_then(|v| v.as_str()).unwrap_or("bfloat16").to_string(),
            num_params_published: String::new(),
            generation_config: GenerationDefaults::default(),
            variants: Vec::new(),
            origin: None,
            sources: BTreeMap::from([("config".to_string(), format!("Hugging Face config.json given as {name}"))]),
        })
    }
}

/// A JSON document read only to refuse a key given twice in one object: `serde_json::Value`
/// keeps the last silently, so `"hidden_size": 0, ..., "hidden_size": 2048` would be read one
/// way here and possibly another way by whoever wrote it.
pub(crate) struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "`{}` is given twice in one object; keep one",
                    crate::text::clip(&key)
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
}

/// The range of every config.json field symbiote reads: zero layers or heads would divide by
/// zero, a zero hidden size would make the KV cache infinite, and sizes far beyond any published
/// model would make start-up allocate without bound. The upper limits sit well above the largest
/// open models (hidden 16,384 and 126 layers for Llama-3.1-405B, vocabularies of 262,144).
pub(crate) const HF_FIELD_LIMITS: [(&str, u64, u64); 10] = [
    ("hidden_size", 1, 1 << 20),
    ("intermediate_size", 1, 1 << 22),
    ("num_hidden_layers", 1, 1024),
    ("num_attention_heads", 1, 16_384),
    ("num_key_value_heads", 1, 16_384),
    ("head_dim", 1, 65_536),
    ("vocab_size", 1, 1 << 24),
    ("max_position_embeddings", 2, 1 << 30),
    ("num_local_experts", 1, 65_536),
    ("num_experts_per_tok", 1, 65_536),
];

fn check_hf_shape(c: &serde_json::Value) -> Result<(), String> {
    for (key, min, max) in HF_FIELD_LIMITS {
        let Some(value) = c.get(key) else { continue };
        match value.as_u64() {
            Some(v) if (min..=max).contains(&v) => {}
            // `head_dim: null` appears in real configs and means "hidden_size / heads".
            None if value.is_null() => {}
            _ => return Err(format!("config.json `{key}` is {value}; it must be an integer within {min}..{max}")),
        }
    }
    let int = |key: &str| c.get(key).and_then(serde_json::Value::as_u64);
    if let (Some(heads), Some(kv)) = (int("num_attention_heads"), int("num_key_value_heads")) {
        if kv > heads || heads % kv != 0 {
            return Err(format!(
                "config.json `num_key_value_heads` ({kv}) must divide `num_attention_heads` ({heads})"
            ));
        }
    }
    if let (Some(experts), Some(per_token)) =
        (int("num_local_experts").or_else(|| int("num_experts")), int("num_experts_per_tok"))
    {
        if per_token > experts {
            return Err(format!("config.json `num_experts_per_tok` ({per_token}) exceeds the {experts} experts"));
        }
    }
    for key in ["moe_intermediate_size", "n_shared_experts", "num_experts"] {
        if int(key).is_some_and(|v| v > 1 << 22) {
            return Err(format!("config.json `{key}` is above {}; it must be a realistic size", 1u64 << 22));
        }
    }
    if int("head_dim").is_none() {
        if let (Some(hidden), Some(heads)) = (int("hidden_size"), int("num_attention_heads")) {
            if hidden < heads {
                return Err(format!(
                    "config.json `hidden_size` ({hidden}) is smaller than `num_attention_heads` ({heads}), so heads would have no dimension; give `head_dim`"
                ));
            }
        }
    }
    Ok(())
}

/// Both catalogs, parsed.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub gpus: Vec<GpuSpec>,
    pub models: Vec<ModelSpec>,
}

/// A name that matches no catalog entry; the message lists the known names.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown {kind} `{name}`; known: {known}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
    pub known: String,
}

impl Catalog {
    /// The embedded catalog. The files are part of the build, so a parse error is a bug that a
    /// unit test catches.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| Catalog {
            gpus: GPU_FILES
                .iter()
                .map(|(file, text)| serde_json::from_str(text).unwrap_or_else(|e| panic!("models/gpu/{file}: {e}")))
                .collect(),
            models: MODEL_FILES
                .iter()
                .flat_map(|(file, text)| {
                    serde_json::from_str::<ModelSpec>(text)
                        .unwrap_or_else(|e| panic!("models/llm/{file}: {e}"))
                        .with_variants()
                })
                .collect(),
        })
    }

    pub fn gpu(&self, name: &str) -> Result<&GpuSpec, UnknownName> {
        let wanted = normalize_name(name);
        self.gpus.iter().find(|g| g.name == wanted || g.aliases.contains(&wanted)).ok_or_else(|| UnknownName {
            kind: "gpu",
            name: name.to_string(),
            known: format!(
                "{}; or add DIR/gpu/NAME.json (the format of models/gpu/) and pass --catalog DIR or set \
                 SYMBIOTE_CATALOG=DIR (docs/catalog.md)",
                self.gpus.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    pub fn model(&self, name: &str) -> Result<&ModelSpec, UnknownName> {
        let wanted = normalize_name(name);
        let wanted_tail = wanted.rsplit('/').next().unwrap_or(&wanted).to_string();
        self.models
            .iter()
            .find(|m| {
                m.name == wanted
                    || m.aliases.contains(&wanted)
                    || normalize_name(&m.hf_id) == wanted
                    || m.name == wanted_tail
                    || m.aliases.contains(&wanted_tail)
            })
            .ok_or_else(|| UnknownName {
                kind: "model",
                name: name.to_string(),
                known: format!(
                    "{}; or give a Hugging Face model folder or its config.json, or add DIR/llm/NAME.json \
                     (the format of models/llm/) and pass --catalog DIR or set SYMBIOTE_CATALOG=DIR (docs/catalog.md)",
                    self.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visible memory vLLM's budget starts from is what torch reports, measured on a real
    /// H200 (shared/reference/h200_hf_generate.md), not the 140.4 GiB of a common estimate.
    // See: issue 12
    #[test]
    fn h200_visible_memory_is_what_torch_reports() {
        assert_eq!(Catalog::builtin().gpu("h200").unwrap().memory_visible_gib, 139.8);
    }

    #[test]
    fn every_catalog_file_is_embedded_and_parses() {
        let catalog = Catalog::builtin();
        let on_disk = |dir: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("models").join(dir);
            let mut names: Vec<String> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".json"))
                .collect();
            names.sort();
            names
        };
        let embedded = |files: &[(&str, &str)]| files.iter().map(|f| f.0.to_string()).collect::<Vec<_>>();
        assert_eq!(embedded(GPU_FILES), on_disk("gpu"), "add the new file to GPU_FILES");
        assert_eq!(embedded(MODEL_FILES), on_disk("llm"), "add the new file to MODEL_FILES");
        assert_eq!(catalog.gpus.len(), 13);
        // 17 files, three of which (Qwen2.5 0.5B, 1.5B, 7B) add an instruct variant.
        assert_eq!(catalog.models.len(), 20);
    }

    #[test]
    fn an_instruct_variant_is_its_own_model_with_its_own_sampling_defaults() {
        let c = Catalog::builtin();
        let base = c.model("qwen2.5-7b").unwrap();
        let instruct = c.model("Qwen/Qwen2.5-7B-Instruct").unwrap();
        assert_eq!((base.hf_id.as_str(), instruct.name.as_str()), ("Qwen/Qwen2.5-7B", "qwen2.5-7b-instruct"));
        assert_eq!((base.hidden_size, base.vocab_size), (instruct.hidden_size, instruct.vocab_size));
        assert!(!base.generation_config.filters_logits());
        assert_eq!(instruct.generation_config.top_k, Some(20));
        assert!(instruct.generation_config.filters_logits());
        assert!(instruct.sources["generation_config"].contains("Qwen2.5-7B-Instruct"));
        assert!(instruct.variants.is_empty());
        // Qwen2.5-7B-Instruct's config.json caps the context at 32,768; the base's is 131,072.
        assert_eq!((base.max_position_embeddings, instruct.max_position_embeddings), (131_072, 32_768));
    }

    #[test]
    fn names_are_forgiving() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.gpu("A100_40GB").unwrap().name, "a100-40gb");
        assert_eq!(catalog.gpu("h100").unwrap().name, "h100-80gb");
        assert_eq!(catalog.model("Llama-2-7B").unwrap().name, "llama-2-7b");
        assert_eq!(catalog.model("meta-llama/Llama-2-7b-hf").unwrap().name, "llama-2-7b");
        assert_eq!(catalog.model("Qwen/Qwen2.5-0.5B").unwrap().name, "qwen2.5-0.5b");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = Catalog::builtin().gpu("a100").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("unknown gpu `a100`; known: "), "{text}");
        assert!(text.contains("a100-40gb") && text.contains("a100-80gb"), "{text}");
    }
}
