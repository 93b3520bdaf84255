//! GPU memory at start-up, computed the way vLLM computes it, and the itemised start-up
//! failure that is the simulator's OOM.
//!
//! `available_kv = visible_total * gpu_memory_utilization - weights - activation_peak -
//! non_torch` (vLLM `Worker.determine_available_memory`), then
//! `num_blocks = available_kv // page_size // num_layers` (`kv_cache_utils.get_kv_cache_config`),
//! with `page_size = 2 * block_size * kv_heads_per_rank * head_dim * dtype_bytes`
//! (`FullAttentionSpec.page_size_bytes`). CUDA graphs are captured after the KV cache is
//! allocated and are not deducted (vLLM v0.8 to v0.12).

use serde::Serialize;

use super::catalog::{GpuSpec, ModelSpec};
use super::hf_memory::{self, CacheKind};
use super::quant::{KvDtype, Quant};
use super::shape::ParamBreakdown;

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Memory outside PyTorch's allocator (CUDA context growth, cuBLAS workspaces, NCCL). vLLM
/// V1 start-up logs report "non_torch_memory takes" 0.09 to 0.20 GiB on A100 and H100 at TP 1
/// and 2 (e.g. 0.11 GiB for Qwen2.5-Coder-7B at TP 2 on A100-80GB, 0.16 GiB in vLLM PR #12126,
/// 0.20 GiB in PR #14447); 0.15 GiB is the middle of that range.
pub const NON_TORCH_BYTES: f64 = 0.15 * GIB;

/// Bytes of the sampler's fp32 tensors per (sequence, vocab entry) in the profile run: the
/// logits and the probabilities derived from them (`_dummy_sampler_run`), 4 bytes each.
pub const SAMPLER_BYTES_PER_LOGIT: f64 = 8.0;

/// The start-up inputs that decide the memory split.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryConfig {
    pub quant: Quant,
    pub kv_dtype: KvDtype,
    pub tp: u64,
    pub gpu_memory_utilization: f64,
    pub max_num_batched_tokens: u64,
    pub max_num_seqs: u64,
    pub max_model_len: u64,
    pub block_size: u64,
    /// `num_gpu_blocks_override`: replaces the computed block count.
    pub num_gpu_blocks_override: Option<u64>,
}

/// The memory split of one GPU (one TP rank), as vLLM logs it at start-up.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct MemoryBreakdown {
    pub gpu: String,
    pub model: String,
    pub quant: String,
    pub tp: u64,
    pub total_visible_bytes: u64,
    pub gpu_memory_utilization: f64,
    pub requested_bytes: u64,
    pub weights_bytes: u64,
    pub activation_peak_bytes: u64,
    pub non_torch_bytes: u64,
    /// May be negative: that is the "no available memory" failure.
    pub available_kv_bytes: i64,
    pub kv_bytes_per_token: u64,
    pub block_size: u64,
    pub page_bytes_per_layer: u64,
    pub num_gpu_blocks: u64,
    pub kv_cache_tokens: u64,
    pub max_model_len: u64,
    pub max_concurrency: f64,
}

/// Why a replica could not start. The message is vLLM's own.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StartupFailure {
    pub message: String,
    pub breakdown: MemoryBreakdown,
    /// For the static engine: the batch that did not fit.
    pub static_batch: Option<StaticMemory>,
}

impl MemoryBreakdown {
    /// vLLM's two start-up lines.
    pub fn startup_lines(&self) -> [String; 2] {
        [
            format!("GPU KV cache size: {} tokens", group_thousands(self.kv_cache_tokens)),
            format!(
                "Maximum concurrency for {} tokens per request: {:.2}x",
                group_thousands(self.max_model_len),
                self.max_concurrency
            ),
        ]
    }

    /// The itemised split, one line per item, in GiB.
    pub fn table(&self) -> String {
        let gib = |b: f64| format!("{:>9.2} GiB", b / GIB);
        let mut out = String::new();
        let rows: [(&str, f64); 6] = [
            ("total visible", self.total_visible_bytes as f64),
            ("x gpu_memory_utilization", self.requested_bytes as f64),
            ("- model weights", self.weights_bytes as f64),
            ("- activation peak", self.activation_peak_bytes as f64),
            ("- non-torch memory", self.non_torch_bytes as f64),
            ("= KV cache", self.available_kv_bytes as f64),
        ];
        for (label, bytes) in rows {
            out.push_str(&format!("{label:<26}{}\n", gib(bytes)));
        }
        out
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// KV heads held by one rank: vLLM replicates KV heads when there are fewer than ranks.
pub fn kv_heads_per_rank(model: &ModelSpec, tp: u64) -> u64 {
    (model.num_kv_heads / tp).max(1)
}

/// KV bytes one token occupies on one rank, over all layers.
pub fn kv_bytes_per_token(model: &ModelSpec, cfg_quant: Quant, kv_dtype: KvDtype, tp: u64) -> u64 {
    2 * model.num_layers * kv_heads_per_rank(model, tp) * model.head_dim * kv_dtype.bytes(cfg_quant)
}

/// Activation peak of the profile run: a `max_num_batched_tokens` forward pass (the MLP is the
/// largest stage: its input, the gate/up output, the activation output and the residual) plus
/// the sampler run over `min(max_num_seqs, max_num_batched_tokens)` sequences.
/// Checked against a vLLM log in the tests (Llama-3-8B, 8192 tokens: 1.20 GiB measured).
pub fn activation_peak_bytes(model: &ModelSpec, cfg: &MemoryConfig) -> f64 {
    let tokens = cfg.max_num_batched_tokens as f64;
    let seqs = cfg.max_num_seqs.min(cfg.max_num_batched_tokens) as f64;
    let intermediate = match &model.moe {
        None => model.intermediate_size,
        Some(moe) => moe.expert_intermediate_size * (moe.experts_per_token + moe.shared_experts) as u64,
    } as f64
        / cfg.tp as f64;
    let act = cfg.quant.activation_bytes() as f64;
    let mlp = tokens * (2.0 * model.hidden_size as f64 + 3.0 * intermediate) * act;
    let sampler = seqs * model.vocab_size as f64 * SAMPLER_BYTES_PER_LOGIT;
    mlp + sampler
}

/// Plans one replica's memory; `Err` is a start-up failure with vLLM's message.
pub fn plan(model: &ModelSpec, gpu: &GpuSpec, cfg: &MemoryConfig) -> Result<MemoryBreakdown, Box<StartupFailure>> {
    let params = ParamBreakdown::of(model);
    let total = gpu.memory_visible_gib * GIB;
    let requested = total * cfg.gpu_memory_utilization;
    let weights = params.weight_bytes_per_rank(cfg.quant, cfg.tp);
    let activation = activation_peak_bytes(model, cfg);
    let available = requested - weights - activation - NON_TORCH_BYTES;
    let kv_per_token = kv_bytes_per_token(model, cfg.quant, cfg.kv_dtype, cfg.tp);
    let page = kv_per_token / model.num_layers * cfg.block_size;
    let computed_blocks =
        if available > 0.0 { (available / page as f64 / model.num_layers as f64).floor() as u64 } else { 0 };
    let num_gpu_blocks = cfg.num_gpu_blocks_override.unwrap_or(computed_blocks);
    let blocks_per_request = cfg.max_model_len.div_ceil(cfg.block_size);
    let breakdown = MemoryBreakdown {
        gpu: gpu.name.clone(),
        model: model.name.clone(),
        quant: cfg.quant.name().to_string(),
        tp: cfg.tp,
        total_visible_bytes: total as u64,
        gpu_memory_utilization: cfg.gpu_memory_utilization,
        requested_bytes: requested as u64,
        weights_bytes: weights as u64,
        activation_peak_bytes: activation as u64,
        non_torch_bytes: NON_TORCH_BYTES as u64,
        available_kv_bytes: available as i64,
        kv_bytes_per_token: kv_per_token,
        block_size: cfg.block_size,
        page_bytes_per_layer: page,
        num_gpu_blocks,
        kv_cache_tokens: num_gpu_blocks * cfg.block_size,
        max_model_len: cfg.max_model_len,
        max_concurrency: num_gpu_blocks as f64 / blocks_per_request as f64,
    };
    if cfg.num_gpu_blocks_override.is_none() && available <= 0.0 {
        return Err(Box::new(StartupFailure {
            message: "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.".into(),
            breakdown,
            static_batch: None,
        }));
    }
    let needed = (blocks_per_request * page * model.num_layers) as f64;
    let have = (num_gpu_blocks * page * model.num_layers) as f64;
    if needed > have {
        let estimated = estimate_max_model_len(have, page * model.num_layers, cfg.block_size, cfg.max_model_len);
        return Err(Box::new(StartupFailure {
            message: format!(
                "To serve at least one request with the models's max seq len ({}), ({:.2} GiB KV cache is needed, which is larger than the available KV cache memory ({:.2} GiB). Based on the available memory, the estimated maximum model length is {}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
                cfg.max_model_len,
                needed / GIB,
                have / GIB,
                estimated
            ),
            breakdown,
            static_batch: None,
        }));
    }
    Ok(breakdown)
}

/// Memory of one static batch (a plain Hugging Face `generate` call): the whole batch is
/// padded to its longest prompt; the terms are `hf_memory`'s.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StaticMemory {
    pub rows: u64,
    pub padded_prompt_tokens: u64,
    pub output_tokens: u64,
    /// `generate`'s cache: `dynamic` (HF's default) or `static`.
    pub cache: CacheKind,
    pub total_visible_bytes: u64,
    pub weights_bytes: u64,
    /// KV at its largest (DynamicCache: plus one layer's tensor held twice during `torch.cat`).
    pub kv_cache_bytes: u64,
    /// The prefill's activation peak over the padded batch, and the last position's logits.
    pub activation_peak_bytes: u64,
    /// The CUDA context and the memory outside PyTorch's allocator.
    pub non_torch_bytes: u64,
    /// The peak: what PyTorch's caching allocator reserved at the worst point of the run
    /// (`hf_generate_replay`), or the terms live at once where the run is not replayed; for a
    /// batch that does not fit, what it held when it failed plus the failed request.
    pub peak_bytes: u64,
    /// Of `peak_bytes`, what PyTorch's caching allocator holds reserved beyond the allocated
    /// peak: cached blocks too small for the requests that came (fragmentation; under
    /// `DynamicCache` at least `hf_memory::DYNAMIC_CACHE_RESERVED_PER_ALLOCATED` of the
    /// allocated bytes, as measured). 0 where the replay failed or the terms alone did not fit.
    #[serde(default)]
    pub fragmentation_bytes: u64,
    /// The replay's out-of-memory error: the request the allocator could not serve and how
    /// many output tokens were done before it; `None` when it ran, was not replayed, or the
    /// terms alone did not fit.
    #[serde(default)]
    pub failed_allocation: Option<FailedAllocation>,
}

/// Where a replayed `generate` ran out of memory.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct FailedAllocation {
    pub requested_bytes: u64,
    pub reserved_bytes: u64,
    pub allocated_bytes: u64,
    pub tokens_done: u64,
}

impl StaticMemory {
    pub fn needed_bytes(&self) -> u64 {
        self.peak_bytes
    }

    pub fn fits(&self) -> bool {
        self.needed_bytes() <= self.total_visible_bytes
    }

    /// PyTorch's out-of-memory error, with the itemised split.
    pub fn oom_message(&self) -> String {
        let gib = |b: u64| b as f64 / GIB;
        if let Some(f) = self.failed_allocation {
            return format!(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {:.2} GiB after {} output tokens of a static batch of {} rows padded to {} prompt tokens with {} output tokens ({} cache): PyTorch had {:.2} GiB reserved, {:.2} GiB of it allocated (the rest cached in blocks too small for the request), beside weights {:.2} GiB and CUDA context {:.2} GiB, of {:.2} GiB in total; lower the batch size or use paged attention (vLLM)",
                gib(f.requested_bytes),
                f.tokens_done,
                self.rows,
                self.padded_prompt_tokens,
                self.output_tokens,
                self.cache.name(),
                gib(f.reserved_bytes + self.weights_bytes),
                gib(f.allocated_bytes + self.weights_bytes),
                gib(self.weights_bytes),
                gib(self.non_torch_bytes),
                gib(self.total_visible_bytes)
            );
        }
        format!(
            "torch.OutOfMemoryError: CUDA out of memory. A static batch of {} rows padded to {} prompt tokens with {} output tokens ({} cache) needs {:.2} GiB at its peak (weights {:.2}, KV cache {:.2}, prefill activations and logits {:.2}, CUDA context {:.2}, cached by PyTorch's allocator in blocks too small to reuse {:.2}) but the GPU has {:.2} GiB in total; lower the batch size or use paged attention (vLLM)",
            self.rows,
            self.padded_prompt_tokens,
            self.output_tokens,
            self.cache.name(),
            gib(self.needed_bytes()),
            gib(self.weights_bytes),
            gib(self.kv_cache_bytes),
            gib(self.activation_peak_bytes),
            gib(self.non_torch_bytes),
            gib(self.fragmentation_bytes),
            gib(self.total_visible_bytes)
        )
    }
}

/// The static engine's memory for `rows` rows of `prompt` (padded) and `output` tokens under
/// `generate`'s `cache` (see `hf_memory` for each term and its source).
pub fn plan_static(
    model: &ModelSpec,
    gpu: &GpuSpec,
    cfg: &MemoryConfig,
    cache: CacheKind,
    rows: u64,
    prompt: u64,
    output: u64,
) -> StaticMemory {
    let (_, terms, peak, replay) = hf_memory::fits(model, gpu, cfg, cache, rows, prompt, output);
    let fixed = terms.weights_bytes + terms.context_bytes;
    let allocated = terms.needed_bytes(hf_memory::prompt_kv_bytes(model, cfg, rows, prompt));
    let allocated = replay.map_or(allocated, |r| allocated.max(fixed + r.peak_allocated));
    let replay_failed = replay.is_some_and(|r| r.oom.is_some());
    let fragmentation_bytes = if replay_failed { 0 } else { peak.saturating_sub(allocated) };
    let failed_allocation = replay.and_then(|r| r.oom).map(|(oom, tokens_done)| FailedAllocation {
        requested_bytes: oom.requested_bytes,
        reserved_bytes: oom.reserved_bytes,
        allocated_bytes: oom.allocated_bytes,
        tokens_done,
    });
    StaticMemory {
        rows,
        padded_prompt_tokens: prompt,
        output_tokens: output,
        cache,
        total_visible_bytes: (gpu.memory_visible_gib * GIB) as u64,
        weights_bytes: terms.weights_bytes,
        kv_cache_bytes: terms.kv_cache_bytes + terms.kv_growth_bytes,
        activation_peak_bytes: terms.prefill_activation_bytes + terms.logits_bytes,
        non_torch_bytes: terms.context_bytes,
        peak_bytes: peak,
        fragmentation_bytes,
        failed_allocation,
    }
}

/// The largest static batch that fits (0 when not even one row fits): the largest whose
/// terms fit first (cheap), then a bisection below it on the allocator replay, which can
/// only refuse more.
pub fn largest_static_batch(
    model: &ModelSpec,
    gpu: &GpuSpec,
    cfg: &MemoryConfig,
    cache: CacheKind,
    prompt: u64,
    output: u64,
) -> u64 {
    let capacity = (gpu.memory_visible_gib * GIB) as u64;
    let terms_fit = |rows: u64| {
        let terms = hf_memory::hf_terms(model, cfg, cache, rows, prompt, output);
        terms.needed_bytes(hf_memory::prompt_kv_bytes(model, cfg, rows, prompt)) <= capacity
    };
    let upper = largest_where(terms_fit, 1 << 40);
    let fits = |rows: u64| rows == 0 || plan_static(model, gpu, cfg, cache, rows, prompt, output).fits();
    if fits(upper) {
        return upper;
    }
    let (mut lo, mut hi) = (0u64, upper);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The largest `n` in `0..=limit` for which `ok(n)` holds, for a predicate that holds up to
/// some point and fails after it: doubling to bracket it, then bisection. 0 when `ok(1)` fails.
pub fn largest_where(mut ok: impl FnMut(u64) -> bool, limit: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, 1u64);
    while ok(hi) {
        lo = hi;
        hi *= 2;
        if hi > limit {
            return lo;
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The most sequences of `prompt + output` tokens vLLM can hold at once without preemption:
/// usable blocks (the null block excluded) over blocks per sequence.
pub fn largest_vllm_batch(plan: &MemoryBreakdown, prompt: u64, output: u64) -> u64 {
    let per_sequence = (prompt + output).div_ceil(plan.block_size);
    plan.num_gpu_blocks.saturating_sub(1) / per_sequence.max(1)
}

/// The largest length whose blocks fit in `available` bytes, by binary search as vLLM's
/// `estimate_max_model_len` does.
fn estimate_max_model_len(available: f64, block_bytes: u64, block_size: u64, upper: u64) -> u64 {
    let fits = |len: u64| (len.div_ceil(block_size) * block_bytes) as f64 <= available;
    let (mut lo, mut hi) = (0u64, upper);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::catalog::Catalog;

    fn config(quant: Quant, batched: u64, seqs: u64, len: u64) -> MemoryConfig {
        MemoryConfig {
            quant,
            kv_dtype: KvDtype::Auto,
            tp: 1,
            gpu_memory_utilization: 0.9,
            max_num_batched_tokens: batched,
            max_num_seqs: seqs,
            max_model_len: len,
            block_size: 16,
            num_gpu_blocks_override: None,
        }
    }

    /// Llama-2-7B, fp16, on A100-80GB, utilization 0.9, 8192 batched tokens, 256 sequences,
    /// worked by hand:
    ///   visible      79.15 GiB (torch.cuda.mem_get_info on A100-SXM4-80GB)
    ///   requested    0.9 x 79.15 GiB                          = 71.235 GiB = 76,487,998,832 B
    ///   weights      6,738,415,616 params x 2 B                = 13,476,831,232 B
    ///   activation   8192 x (2x4096 + 3x11008) x 2 B           =    675,282,944 B
    ///                + 256 x 32000 x 8 B                       =     65,536,000 B
    ///   non-torch    0.15 GiB                                  =    161,061,273 B
    ///   KV           76,487,998,832 - 13,476,831,232 - 740,818,944 - 161,061,273
    ///                                                          = 62,109,287,383 B
    ///   page/layer   2 x 16 x 32 heads x 128 x 2 B             =        262,144 B
    ///   blocks       62,109,383,721 // 262,144 // 32           = 7,404
    #[test]
    fn llama_2_7b_on_a100_80gb_matches_the_hand_calculation() {
        let catalog = Catalog::builtin();
        let plan = plan(
            catalog.model("llama-2-7b").unwrap(),
            catalog.gpu("a100-80gb").unwrap(),
            &config(Quant::Fp16, 8192, 256, 4096),
        )
        .unwrap();
        assert_eq!(plan.weights_bytes, 13_476_831_232);
        assert_eq!(plan.activation_peak_bytes, 675_282_944 + 65_536_000);
        assert_eq!(plan.page_bytes_per_layer, 262_144);
        assert!((plan.available_kv_bytes - 62_109_287_383).abs() <= 2, "{}", plan.available_kv_bytes);
        assert_eq!(plan.num_gpu_blocks, 7_404);
        assert_eq!(plan.startup_lines()[0], "GPU KV cache size: 118,464 tokens");
        assert_eq!(plan.startup_lines()[1], "Maximum concurrency for 4,096 tokens per request: 28.92x");
    }

    /// vLLM log on A100-80GB (Llama-3-8B, default 8192 batched tokens, 256 sequences):
    /// "PyTorch activation peak memory takes 1.20GiB". The structural estimate should be within
    /// 20% of it; it is not fitted to it.
    #[test]
    fn activation_peak_is_near_a_measured_log() {
        let model = Catalog::builtin().model("llama-3.1-8b").unwrap();
        let gib = activation_peak_bytes(model, &config(Quant::Bf16, 8192, 256, 8192)) / GIB;
        assert!((gib / 1.20 - 1.0).abs() < 0.2, "{gib} GiB");
    }

    #[test]
    fn no_memory_left_gives_vllms_message_and_the_breakdown() {
        let catalog = Catalog::builtin();
        let err = plan(
            catalog.model("llama-2-13b").unwrap(),
            catalog.gpu("rtx-3090").unwrap(),
            &config(Quant::Fp16, 2048, 256, 4096),
        )
        .unwrap_err();
        assert!(err.message.starts_with("No available memory for the cache blocks."), "{}", err.message);
        assert!(err.breakdown.available_kv_bytes < 0);
        assert!(err.breakdown.weights_bytes > 24 * (1 << 30));
    }

    #[test]
    fn a_too_long_max_model_len_gives_vllms_message_with_an_estimate() {
        let catalog = Catalog::builtin();
        let mut cfg = config(Quant::Fp16, 2048, 256, 131_072);
        cfg.gpu_memory_utilization = 0.9;
        let err = plan(catalog.model("llama-3.1-8b").unwrap(), catalog.gpu("rtx-4090").unwrap(), &cfg).unwrap_err();
        assert!(
            err.message.starts_with("To serve at least one request with the models's max seq len (131072), ("),
            "{}",
            err.message
        );
        let estimate: u64 =
            err.message.split("maximum model length is ").nth(1).unwrap().split('.').next().unwrap().parse().unwrap();
        let block_bytes = err.breakdown.page_bytes_per_layer * 32;
        // The estimate fits in the blocks vLLM could allocate; one more block would not.
        assert!(estimate.div_ceil(16) <= err.breakdown.num_gpu_blocks);
        assert!((estimate + 16).div_ceil(16) * block_bytes > err.breakdown.num_gpu_blocks * block_bytes);
    }

    /// The largest static batch fits and one more row does not, for two model/GPU pairs.
    #[test]
    fn largest_static_batch_is_exact() {
        let catalog = Catalog::builtin();
        for (model, gpu) in [("llama-2-7b", "rtx-3090"), ("qwen2.5-0.5b", "a100-40gb")] {
            let (model, gpu) = (catalog.model(model).unwrap(), catalog.gpu(gpu).unwrap());
            let cfg = config(Quant::Fp16, 2048, 256, 4096);
            for cache in [CacheKind::Dynamic, CacheKind::Static] {
                let rows = largest_static_batch(model, gpu, &cfg, cache, 512, 128);
                assert!(rows > 0);
                assert!(plan_static(model, gpu, &cfg, cache, rows, 512, 128).fits());
                assert!(!plan_static(model, gpu, &cfg, cache, rows + 1, 512, 128).fits());
            }
        }
    }

    /// Llama-2-7B fp16 on a 24 GB GPU, 512 + 128 tokens per row: weights 12.55 GiB leave about
    /// 11.3 GiB; each row holds 640 x 512 KiB = 320 MiB of KV plus its activations, so about
    /// thirty rows fit, and a batch of 8192 needs terabytes.
    #[test]
    fn a_static_batch_of_8192_rows_does_not_fit_a_24gb_gpu() {
        let catalog = Catalog::builtin();
        let (model, gpu) = (catalog.model("llama-2-7b").unwrap(), catalog.gpu("rtx-3090").unwrap());
        let cfg = config(Quant::Fp16, 2048, 256, 4096);
        let rows = largest_static_batch(model, gpu, &cfg, CacheKind::Static, 512, 128);
        assert!((25..=36).contains(&rows), "{rows}");
        let big = plan_static(model, gpu, &cfg, CacheKind::Dynamic, 8192, 512, 128);
        assert!(!big.fits());
        assert!(big
            .oom_message()
            .starts_with("torch.OutOfMemoryError: CUDA out of memory. A static batch of 8192 rows"));
    }

    #[test]
    fn tp_splits_weights_and_kv_heads() {
        let catalog = Catalog::builtin();
        let model = catalog.model("llama-3.1-70b").unwrap();
        assert_eq!(kv_heads_per_rank(model, 4), 2);
        assert_eq!(kv_heads_per_rank(model, 16), 1);
        let mut cfg = config(Quant::Bf16, 8192, 1024, 8192);
        cfg.tp = 4;
        let plan = plan(model, catalog.gpu("h100").unwrap(), &cfg).unwrap();
        // 70,553,706,496 params x 2 B / 4, minus the replicated norms' share.
        let p = ParamBreakdown::of(model);
        let expected = ((p.linear + p.embedding + p.lm_head) as f64 * 2.0 / 4.0 + p.other as f64 * 2.0) as u64;
        assert_eq!(plan.weights_bytes, expected);
        assert_eq!(plan.kv_bytes_per_token, 2 * 80 * 2 * 128 * 2);
    }
}
