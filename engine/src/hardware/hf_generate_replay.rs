//! One Hugging Face `generate` call on a padded batch, replayed tensor by tensor through the
//! CUDA caching allocator (`cuda_allocator`): whether it runs out of memory, and its peak
//! reserved and allocated bytes.
//!
//! `hf_memory` adds up the largest live tensors, which is the peak *allocated*; PyTorch fails on
//! *reserved* memory, and `DynamicCache` makes the two drift apart: every decode step replaces
//! each layer's keys and values with a copy one token longer (`torch.cat`), so the cached blocks
//! they leave behind are always a little too small for the next copy. This module allocates and
//! frees what eager PyTorch does, in the order the code runs, so the allocator's own rules
//! decide the outcome. Nothing here is fitted; the H200 rows of
//! `shared/reference/h200_hf_generate.md` are the test.
//!
//! The program, read from transformers 5.x (`models/llama/modeling_llama.py`,
//! `cache_utils.py`, `generation/utils.py`, `generation/logits_process.py`) for a Llama-style
//! decoder (RMSNorm, rotary embeddings, gated MLP, SDPA), greedy search with
//! `min_new_tokens = max_new_tokens`:
//!
//! - `LlamaRotaryEmbedding.forward`: fp32 `freqs`, `emb = cat(freqs, freqs)`, `emb.cos() *
//!   attention_scaling` (and sin), cast to the model dtype;
//! - per decoder layer: `LlamaRMSNorm` (`to(float32)`, `pow(2).mean(-1)`, `* rsqrt(var + eps)`,
//!   `to(dtype)`, `weight *`), `q/k/v_proj`, `apply_rotary_pos_emb` (`q * cos + rotate_half(q) *
//!   sin`, `rotate_half` = `cat(-x2, x1)`), the cache update, SDPA (output and the fp32
//!   log-sum-exp it returns), `transpose(1, 2).contiguous()`, `o_proj`, the residual add, the
//!   second RMSNorm, `down_proj(act_fn(gate_proj(x)) * up_proj(x))`, the residual add; a tensor
//!   is freed when its last Python reference goes (a rebinding or the function's return);
//! - cache update: `DynamicLayer.update` is `self.keys = torch.cat([self.keys, key_states], -2)`
//!   then the same for values (the old tensor freed as the attribute is rebound);
//!   `StaticLayer.lazy_initialization` allocates keys and values of `max_cache_len` tokens at
//!   the layer's first update and later updates copy in place;
//! - the head: the final norm, `lm_head` on the last position (`logits_to_keep=1`), then `_sample`'s fp32 copy of the logits,
//!   `MinNewTokensLengthLogitsProcessor` (`scores.clone()`, then `torch.where` while fewer than
//!   `min_new_tokens` are out), and `input_ids` and `attention_mask` grown by `torch.cat` (int64).
//!
//! Left out, each well under a MiB at the batches where memory runs out or freed at once:
//! tensors of the small pool (1 MiB and under), index and mask bookkeeping, cuBLAS workspaces
//! (counted in the context bytes).

use super::catalog::ModelSpec;
use super::cuda_allocator::{CachingAllocator, Handle, OutOfMemory};
use super::hf_memory::CacheKind;

/// The shapes the replay needs, per GPU rank, in bytes per element where it matters.
#[derive(Clone, Copy, Debug)]
pub struct GenerateShape {
    pub rows: u64,
    pub prompt: u64,
    pub output: u64,
    pub hidden: u64,
    /// Query heads x head_dim on this rank.
    pub q_width: u64,
    /// KV heads x head_dim on this rank.
    pub kv_width: u64,
    pub heads: u64,
    pub head_dim: u64,
    pub intermediate: u64,
    pub vocab: u64,
    pub layers: u64,
    /// Bytes per activation element (2 for fp16/bf16).
    pub act: u64,
    /// Bytes per KV cache element.
    pub kv: u64,
}

impl GenerateShape {
    /// The shape of `model` on one of `tp` ranks; `None` for a mixture of experts, whose
    /// routed MLP this program does not describe.
    pub fn of(model: &ModelSpec, tp: u64, act: u64, kv: u64, rows: u64, prompt: u64, output: u64) -> Option<Self> {
        if model.moe.is_some() {
            return None;
        }
        let heads = model.num_attention_heads.div_ceil(tp);
        Some(GenerateShape {
            rows,
            prompt,
            output,
            hidden: model.hidden_size,
            q_width: heads * model.head_dim,
            kv_width: model.num_kv_heads.div_ceil(tp) * model.head_dim,
            heads,
            head_dim: model.head_dim,
            intermediate: model.intermediate_size.div_ceil(tp),
            vocab: model.vocab_size.div_ceil(tp),
            layers: model.num_layers,
            act,
            kv,
        })
    }
}

/// What the replay saw: the peak reserved and allocated bytes (beyond the weights and the
/// context), or the allocation that failed and how many tokens were out before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayOutcome {
    pub peak_reserved: u64,
    pub peak_allocated: u64,
    pub oom: Option<(OutOfMemory, u64)>,
}

/// Replays `generate` with `limit` bytes left for PyTorch's cache once the weights are loaded.
pub fn replay(shape: &GenerateShape, cache: CacheKind, limit: u64) -> ReplayOutcome {
    let mut run = Run { a: CachingAllocator::new(limit), s: *shape, cache, keys: Vec::new(), values: Vec::new() };
    let mut tokens_out = 0;
    let result = (|| -> Result<(), OutOfMemory> {
        let mut ids = run.t(shape.rows * shape.prompt * 8)?;
        let mut mask = run.t(shape.rows * shape.prompt * 8)?;
        for step in 0..shape.output {
            let (q_len, past) = if step == 0 { (shape.prompt, 0) } else { (1, shape.prompt + step - 1) };
            run.forward(q_len, past)?;
            tokens_out += 1;
            if step + 1 < shape.output {
                // `input_ids = torch.cat([input_ids, next_tokens[:, None]])`, and the mask.
                let len = shape.prompt + step + 1;
                let grown = run.t(shape.rows * len * 8)?;
                run.a.free(ids);
                ids = grown;
                let grown = run.t(shape.rows * len * 8)?;
                run.a.free(mask);
                mask = grown;
            }
        }
        Ok(())
    })();
    ReplayOutcome {
        peak_reserved: run.a.peak_reserved,
        peak_allocated: run.a.peak_allocated,
        oom: result.err().map(|e| (e, tokens_out)),
    }
}

struct Run {
    a: CachingAllocator,
    s: GenerateShape,
    cache: CacheKind,
    keys: Vec<Handle>,
    values: Vec<Handle>,
}

impl Run {
    fn t(&mut self, bytes: u64) -> Result<Handle, OutOfMemory> {
        self.a.malloc(bytes)
    }

    fn free(&mut self, handles: &[Handle]) {
        for &h in handles {
            self.a.free(h);
        }
    }

    /// One `model(...)` call over `q_len` new tokens per row after `past` cached ones, then
    /// `_sample`'s logits handling.
    fn forward(&mut self, q_len: u64, past: u64) -> Result<(), OutOfMemory> {
        let s = self.s;
        let tokens = s.rows * q_len;
        let mut hidden = self.t(tokens * s.hidden * s.act)?; // embed_tokens
        let (cos, sin) = self.rotary(tokens)?;
        for layer in 0..s.layers as usize {
            let out = self.layer(layer, tokens, q_len, past)?;
            self.a.free(hidden); // the loop rebinds `hidden_states`
            hidden = out;
        }
        let normed = self.rms_norm(tokens)?;
        self.a.free(hidden);
        let logits = self.t(s.rows * s.vocab * s.act)?; // `lm_head` on the last position
        self.free(&[normed, cos, sin]);
        let scores = self.t(s.rows * s.vocab * 4)?; // `.to(copy=True, dtype=torch.float32)`
        let clone = self.t(s.rows * s.vocab * 4)?; // `scores.clone()`
        let masked = self.t(s.rows * s.vocab * 4)?; // `torch.where(eos_token_mask, -inf, scores)`
        self.free(&[clone, masked, scores, logits]); // `del outputs` ends the iteration
        Ok(())
    }

    fn rotary(&mut self, tokens: u64) -> Result<(Handle, Handle), OutOfMemory> {
        let d = self.s.head_dim;
        let freqs = self.t(tokens * d / 2 * 4)?;
        let emb = self.t(tokens * d * 4)?;
        let mut fp32 = [Handle::Small; 2];
        for slot in &mut fp32 {
            let raw = self.t(tokens * d * 4)?; // emb.cos() / emb.sin()
            *slot = self.t(tokens * d * 4)?; // * attention_scaling
            self.a.free(raw);
        }
        let mut out = [Handle::Small; 2];
        for slot in &mut out {
            *slot = self.t(tokens * d * self.s.act)?; // .to(dtype)
        }
        self.free(&[fp32[0], fp32[1], emb, freqs]);
        Ok((out[0], out[1]))
    }

    fn rms_norm(&mut self, tokens: u64) -> Result<Handle, OutOfMemory> {
        let s = self.s;
        let fp32 = self.t(tokens * s.hidden * 4)?;
        let squared = self.t(tokens * s.hidden * 4)?;
        let variance = self.t(tokens * 4)?;
        self.a.free(squared);
        let shifted = self.t(tokens * 4)?;
        let rsqrt = self.t(tokens * 4)?;
        self.a.free(shifted);
        let scaled = self.t(tokens * s.hidden * 4)?;
        self.free(&[rsqrt, fp32]);
        let cast = self.t(tokens * s.hidden * s.act)?;
        let out = self.t(tokens * s.hidden * s.act)?;
        self.free(&[cast, scaled, variance]);
        Ok(out)
    }

    /// `q * cos + rotate_half(q) * sin` for a `width`-wide projection.
    fn rope(&mut self, tokens: u64, width: u64) -> Result<Handle, OutOfMemory> {
        let act = self.s.act;
        let by_cos = self.t(tokens * width * act)?;
        let neg = self.t(tokens * width / 2 * act)?;
        let rotated = self.t(tokens * width * act)?;
        self.a.free(neg);
        let by_sin = self.t(tokens * width * act)?;
        self.a.free(rotated);
        let sum = self.t(tokens * width * act)?;
        self.free(&[by_cos, by_sin]);
        Ok(sum)
    }

    fn layer(&mut self, layer: usize, tokens: u64, q_len: u64, past: u64) -> Result<Handle, OutOfMemory> {
        let s = self.s;
        let normed = self.rms_norm(tokens)?;
        let attn = self.attention(layer, tokens, q_len, past)?;
        self.a.free(normed);
        let residual = self.t(tokens * s.hidden * s.act)?;
        self.a.free(attn);
        let normed = self.rms_norm(tokens)?;
        let gate = self.t(tokens * s.intermediate * s.act)?;
        let act = self.t(tokens * s.intermediate * s.act)?;
        self.a.free(gate);
        let up = self.t(tokens * s.intermediate * s.act)?;
        let product = self.t(tokens * s.intermediate * s.act)?;
        self.free(&[act, up]);
        let down = self.t(tokens * s.hidden * s.act)?;
        self.a.free(product);
        self.a.free(normed);
        let out = self.t(tokens * s.hidden * s.act)?;
        self.free(&[down, residual]);
        Ok(out)
    }

    fn attention(&mut self, layer: usize, tokens: u64, q_len: u64, past: u64) -> Result<Handle, OutOfMemory> {
        let s = self.s;
        let q = self.t(tokens * s.q_width * s.act)?;
        let k = self.t(tokens * s.kv_width * s.act)?;
        let v = self.t(tokens * s.kv_width * s.act)?;
        let q_rot = self.rope(tokens, s.q_width)?;
        let k_rot = self.rope(tokens, s.kv_width)?;
        self.free(&[q, k]);
        let per_token = s.rows * s.kv_width * s.kv;
        match self.cache {
            CacheKind::Dynamic => {
                let keys = self.t(per_token * (past + q_len))?;
                if let Some(old) = self.keys.get(layer).copied() {
                    self.a.free(old);
                    self.keys[layer] = keys;
                } else {
                    self.keys.push(keys);
                }
                let values = self.t(per_token * (past + q_len))?;
                if let Some(old) = self.values.get(layer).copied() {
                    self.a.free(old);
                    self.values[layer] = values;
                } else {
                    self.values.push(values);
                }
            }
            CacheKind::Static if self.keys.len() <= layer => {
                let keys = self.t(per_token * (s.prompt + s.output))?;
                let values = self.t(per_token * (s.prompt + s.output))?;
                self.keys.push(keys);
                self.values.push(values);
            }
            CacheKind::Static => {}
        }
        self.free(&[k_rot, v]);
        let out = self.t(tokens * s.q_width * s.act)?;
        let lse = self.t(s.rows * s.heads * q_len * 4)?;
        self.a.free(lse);
        let contiguous = self.t(tokens * s.q_width * s.act)?;
        self.a.free(out);
        let projected = self.t(tokens * s.hidden * s.act)?;
        self.free(&[contiguous, q_rot]);
        Ok(projected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::catalog::Catalog;

    fn shape(rows: u64, prompt: u64, output: u64) -> GenerateShape {
        let model = Catalog::builtin().model("llama-2-7b").unwrap().clone();
        GenerateShape::of(&model, 1, 2, 2, rows, prompt, output).unwrap()
    }

    /// With room to spare nothing fails and the cache holds at least what was allocated; the
    /// allocated peak of a DynamicCache run is its final KV (64 tensors of 8 rows x 8 KiB per
    /// token x 639 tokens) plus what a decode step adds, less than a static cache's.
    #[test]
    fn an_unconstrained_replay_runs_and_reserves_what_it_allocates() {
        for cache in [CacheKind::Dynamic, CacheKind::Static] {
            let r = replay(&shape(8, 512, 128), cache, 1 << 40);
            assert_eq!(r.oom, None);
            assert!(r.peak_reserved >= r.peak_allocated, "{cache:?}: {r:?}");
        }
        let dynamic = replay(&shape(8, 512, 128), CacheKind::Dynamic, 1 << 40);
        let kv = 64 * 8 * 8192 * 639;
        assert!(dynamic.peak_allocated > kv && dynamic.peak_allocated < kv + (1 << 30), "{dynamic:?}");
        let fixed = replay(&shape(8, 512, 128), CacheKind::Static, 1 << 40);
        assert!(fixed.peak_allocated > 64 * 8 * 8192 * 640);
    }

    /// No room at all: the first large request (the prefill's embeddings, 8 x 512 x 4,096 x 2 B
    /// = 32 MiB) fails before any token.
    #[test]
    fn a_replay_without_room_fails_at_the_first_large_request() {
        let r = replay(&shape(8, 512, 128), CacheKind::Dynamic, 0);
        let (oom, tokens) = r.oom.expect("no room");
        assert_eq!((oom.requested_bytes, tokens), (32 << 20, 0));
    }

    /// The same inputs give the same outcome (the allocator's order is total).
    #[test]
    fn replays_are_deterministic() {
        let a = replay(&shape(200, 512, 64), CacheKind::Dynamic, 90 << 30);
        let b = replay(&shape(200, 512, 64), CacheKind::Dynamic, 90 << 30);
        assert_eq!(a, b);
    }
}
