//! What a step of eager Hugging Face `generate` costs on a static (padded) batch: the
//! roofline's matmuls and attention (the GPU catalog's efficiencies, unchanged), plus what
//! eager PyTorch adds where vLLM fuses or captures: every elementwise op of the decoder layer
//! as its own kernel reading and writing HBM, DynamicCache's `torch.cat` copying the whole KV
//! cache every step, and one CPU-side launch per kernel with no CUDA graph. The GPU runs while
//! the CPU launches, and `generate` synchronises once per step (`unfinished_sequences.max()`),
//! so a step takes the longer of the two.
//!
//! The batch is priced as given: the static engine passes every row at the padded prompt
//! length and keeps finished rows in the batch until it ends, as `generate` does.
//!
//! Constants and where they come from:
//! - elementwise bytes per token and layer: counted from transformers' `modeling_llama.py`
//!   eager path (below, [`elementwise_bytes_per_token_layer`]);
//! - kernels per layer and per forward: counted from the same code ([`KERNELS_PER_LAYER`]);
//! - CPU time per kernel launch: set from one measured row, Llama-2-7B fp16 batch 1 decode
//!   (83.2 ms per token) of `shared/reference/h200_hf_generate.md` table B, which is host-bound;
//!   that file warns its host launches slowly, so this is a slow host's figure. The file's
//!   other timing rows (prefill at batch 8 to 306, decode at batch 8 to 128) are held out for
//!   the test `issue_12_hf_step_time_*`.

use super::catalog::{GpuSpec, ModelSpec};
use super::hf_memory::CacheKind;
use super::memory::kv_bytes_per_token;
use super::quant::{KvDtype, Quant};
use super::step_time::{Roofline, SeqWork, ServingOptions, StepTimeModel};
use crate::sim::Nanos;

/// Kernels one eager `LlamaDecoderLayer` launches (transformers `modeling_llama.py`, sdpa):
/// two RMSNorms of 8 each (`to(float32)`, `pow`, `mean`, `add`, `rsqrt`, `mul`, `to(dtype)`,
/// `mul` by the weight); q, k, v projections (3); rotary embedding of q and k, 5 each (`q * cos`,
/// `-x2`, `cat`, `* sin`, `+`); the cache update (2: `cat` or `index_copy_` of keys and values);
/// SDPA (1); `transpose(1, 2).contiguous()` (1); o_proj (1); two residual adds (2); the MLP (5:
/// gate, up, SiLU, `*`, down).
pub const KERNELS_PER_LAYER: f64 = 16.0 + 3.0 + 10.0 + 2.0 + 1.0 + 1.0 + 1.0 + 2.0 + 5.0;

/// Kernels per forward outside the layers: the embedding (1), the rotary tables (about 8), the
/// final RMSNorm (8), the LM head (1), and `generate`'s per-step work: the fp32 logits copy,
/// the logits processors, argmax, `cat` of `input_ids` and `attention_mask`, the stopping
/// criteria (about 12).
pub const KERNELS_PER_FORWARD: f64 = 1.0 + 8.0 + 8.0 + 1.0 + 12.0;

/// CPU seconds per eager kernel launch: the H200 file's batch-1 decode, 83.2 ms per token for
/// Llama-2-7B (32 layers), over the kernels of one forward (32 x 41 + 30 = 1,342): 62 us.
pub const LAUNCH_SECS: f64 = 83.2e-3 / (32.0 * KERNELS_PER_LAYER + KERNELS_PER_FORWARD);

/// HBM bytes the unfused elementwise ops of one decoder layer move per token, with `a` bytes
/// per activation: each RMSNorm `(a + 4) + 8 + 4 + 8 + (4 + a) + 2a = 28 + 4a` per hidden
/// element (the fp32 upcast, `pow`, `mean`, the scaling, the downcast, the weight); rotary
/// `2a + a + 2a + 2a + 3a = 10a` per q and k element; the attention output's `contiguous`
/// copy `2a` per q element; two residual adds `3a` each per hidden element; SiLU `2a` and the
/// gate-up product `3a` per intermediate element.
pub fn elementwise_bytes_per_token_layer(model: &ModelSpec, quant: Quant, tp: u64) -> f64 {
    let a = quant.activation_bytes() as f64;
    let hidden = model.hidden_size as f64;
    let q = (model.num_attention_heads * model.head_dim) as f64 / tp as f64;
    let k = (model.num_kv_heads * model.head_dim) as f64 / tp as f64;
    let intermediate = match &model.moe {
        None => model.intermediate_size,
        Some(moe) => moe.expert_intermediate_size * (moe.experts_per_token + moe.shared_experts) as u64,
    } as f64
        / tp as f64;
    2.0 * (28.0 + 4.0 * a) * hidden + 10.0 * a * (q + k) + 2.0 * a * q + 6.0 * a * hidden + 5.0 * a * intermediate
}

/// The eager `generate` step model of one replica.
#[derive(Clone, Debug)]
pub struct HfEagerStepTime {
    roofline: Roofline,
    cache: CacheKind,
    layers: f64,
    elementwise_bytes_per_token: f64,
    kv_bytes_per_token: f64,
    /// Bytes/s elementwise kernels and copies reach: the catalog's streaming efficiency.
    streaming_bandwidth: f64,
}

impl HfEagerStepTime {
    pub fn new(
        model: &ModelSpec,
        gpu: &GpuSpec,
        quant: Quant,
        kv_dtype: KvDtype,
        tp: u64,
        cache: CacheKind,
    ) -> HfEagerStepTime {
        // `generate` applies no top-k/top-p sort unless asked: greedy, as the H200 runs were.
        let options = ServingOptions { expert_parallel: false, model_sampling_defaults: false };
        HfEagerStepTime {
            roofline: Roofline::with_cap(model, gpu, quant, kv_dtype, tp, options, 1.0),
            cache,
            layers: model.num_layers as f64,
            elementwise_bytes_per_token: elementwise_bytes_per_token_layer(model, quant, tp) * model.num_layers as f64,
            kv_bytes_per_token: kv_bytes_per_token(model, quant, kv_dtype, tp) as f64,
            streaming_bandwidth: gpu.hbm_bandwidth_gbps * 1e9 * gpu.step_time.bandwidth_efficiency,
        }
    }

    /// GPU seconds and CPU seconds of a step from the batch's sums: tokens, sequences, causal
    /// (query, context) pairs, KV tokens read.
    pub fn parts_secs(&self, tokens: f64, seqs: f64, pairs: f64, kv_tokens: f64) -> (f64, f64) {
        let [linear, attention, allreduce, _vllm_overhead] = self.roofline.breakdown_of(tokens, seqs, pairs, kv_tokens);
        let elementwise = tokens * self.elementwise_bytes_per_token / self.streaming_bandwidth;
        // DynamicCache: every layer's `cat` reads the old keys and values and writes them
        // again, one token longer (the prefill's `cat` onto an empty tensor copies the prompt's).
        let cat = match self.cache {
            CacheKind::Dynamic => 2.0 * kv_tokens * self.kv_bytes_per_token / self.streaming_bandwidth,
            CacheKind::Static => 0.0,
        };
        let gpu = linear + attention + allreduce + elementwise + cat;
        let host = (self.layers * KERNELS_PER_LAYER + KERNELS_PER_FORWARD) * LAUNCH_SECS;
        (gpu, host)
    }

    fn secs(&self, tokens: f64, seqs: f64, pairs: f64, kv_tokens: f64) -> f64 {
        let (gpu, host) = self.parts_secs(tokens, seqs, pairs, kv_tokens);
        gpu.max(host)
    }
}

/// The batch's sums, as the roofline forms them.
fn sums(batch: &[SeqWork]) -> (f64, f64, f64) {
    let (mut tokens, mut pairs, mut kv_tokens) = (0.0, 0.0, 0.0);
    for seq in batch {
        let q = seq.query_tokens as f64;
        let cached = seq.cached_tokens as f64;
        tokens += q;
        pairs += q * (cached + (q + 1.0) / 2.0);
        kv_tokens += cached + q;
    }
    (tokens, pairs, kv_tokens)
}

impl StepTimeModel for HfEagerStepTime {
    fn step_time(&self, batch: &[SeqWork]) -> Nanos {
        let (tokens, pairs, kv_tokens) = sums(batch);
        Nanos::from_secs_f64(self.secs(tokens, batch.len() as f64, pairs, kv_tokens))
    }

    fn decode_step_time(&self, seqs: u32, cached_tokens: u64, others: &[SeqWork]) -> Nanos {
        let context = (cached_tokens + seqs as u64) as f64;
        let (tokens, pairs, kv_tokens) = sums(others);
        let all = (seqs as usize + others.len()) as f64;
        Nanos::from_secs_f64(self.secs(tokens + seqs as f64, all, pairs + context, kv_tokens + context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::catalog::Catalog;

    fn eager(gpu: &str, cache: CacheKind) -> HfEagerStepTime {
        let c = Catalog::builtin();
        HfEagerStepTime::new(c.model("llama-2-7b").unwrap(), c.gpu(gpu).unwrap(), Quant::Fp16, KvDtype::Auto, 1, cache)
    }

    fn prefill(rows: usize) -> Vec<SeqWork> {
        vec![SeqWork { query_tokens: 512, cached_tokens: 0 }; rows]
    }

    /// Held-out H200 rows (`h200_hf_generate.md`): TTFT of the padded prefill (GPU-bound at
    /// these batches) and host-bound decode at batch 8 to 128 with DynamicCache. Only the
    /// batch-1 decode row set a constant ([`LAUNCH_SECS`]). Within 15%.
    #[test]
    fn issue_12_hf_step_time_matches_held_out_h200_rows() {
        // See: issue 12
        let ttft: [(CacheKind, usize, f64); 5] = [
            (CacheKind::Dynamic, 64, 0.988),
            (CacheKind::Dynamic, 128, 1.927),
            (CacheKind::Dynamic, 252, 3.871),
            (CacheKind::Static, 256, 3.918),
            (CacheKind::Static, 306, 4.702),
        ];
        for (cache, rows, measured) in ttft {
            let secs = eager("h200", cache).step_time(&prefill(rows)).0 as f64 * 1e-9;
            assert!((secs / measured - 1.0).abs() < 0.15, "{cache:?} prefill of {rows}: {secs:.3} s vs {measured} s");
        }
        let model = eager("h200", CacheKind::Dynamic);
        for (rows, measured_ms) in [(8, 103.1), (32, 88.2), (64, 90.0), (128, 86.3)] {
            // The middle of the 128 decode steps: 576 tokens cached per row.
            let ms = model.decode_step_time(rows, rows as u64 * 575, &[]).0 as f64 * 1e-6;
            assert!((ms / measured_ms - 1.0).abs() < 0.2, "decode at {rows}: {ms:.1} ms vs {measured_ms} ms");
        }
    }

    /// The same padded batch costs more as eager HF `generate` than as a vLLM step, in the
    /// prefill and in decode, on the phase-3 GPU.
    #[test]
    fn eager_padded_steps_are_slower_than_vllm() {
        let c = Catalog::builtin();
        let (model, gpu) = (c.model("llama-2-7b").unwrap(), c.gpu("a100-80gb").unwrap());
        let vllm = Roofline::new(model, gpu, Quant::Fp16, KvDtype::Auto, 1, ServingOptions::default());
        let hf = eager("a100-80gb", CacheKind::Dynamic);
        let decode = vec![SeqWork { query_tokens: 1, cached_tokens: 600 }; 128];
        for batch in [prefill(128), decode] {
            let (slow, fast) = (hf.step_time(&batch), vllm.step_time(&batch));
            assert!(slow.0 as f64 > 1.1 * fast.0 as f64, "{slow:?} vs {fast:?}");
        }
        // DynamicCache's per-step copy makes it slower than a static cache at a large batch.
        let big = vec![SeqWork { query_tokens: 1, cached_tokens: 600 }; 256];
        assert!(hf.step_time(&big) > eager("a100-80gb", CacheKind::Static).step_time(&big));
    }

    #[test]
    fn decode_fast_path_equals_the_full_batch() {
        let hf = eager("h100", CacheKind::Dynamic);
        let batch = vec![SeqWork { query_tokens: 1, cached_tokens: 300 }; 64];
        assert_eq!(hf.decode_step_time(64, 64 * 300, &[]), hf.step_time(&batch));
    }
}
