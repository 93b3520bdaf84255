//! The kernel-table step-time model: a step priced from GPU kernel timings measured through
//! vLLM 0.14.0 (AIConfigurator's tables, under `models/kernels/`; see [`tables`]), where the
//! roofline prices it from datasheet peaks and fitted efficiencies.
//!
//! A step of `T` tokens over `S` sequences, of which `P` are prefills (more than one query
//! token) and `D` decodes, costs:
//!
//! - **Linear layers**: every GEMM of one forward pass on one TP rank, looked up at m = `T`:
//!   fused QKV, O, fused gate/up and down per layer (an MoE's shared experts and its router in
//!   their place), and the LM head at m = `S`. Each (n, k) is the rank's shape; off the table's
//!   grid, see [`tables::GemmTable::curve_for`]. Along m the time is linear between the table's
//!   m (and proportional to m beyond the last), and never under the speed of light (FLOPs at
//!   the GPU's dense peak, or weight and activation bytes at its bandwidth; AIConfigurator's
//!   floor, which matters where the L40S's 96 MB L2 held a table's weights), nor under the
//!   FLOPs at the fraction of the peak a saturated server sustains ([`super::sustained`]):
//!   the tables time one kernel at a time, faster than a busy server keeps up.
//! - **MoE experts**: as the roofline prices them (the experts one rank touches, read at the
//!   GPU's calibrated MoE bandwidth efficiency, or their FLOPs at its matmul efficiency if
//!   more), because vLLM's fused MoE kernel reads a rank's experts in one launch at a bandwidth
//!   that separate dense GEMMs do not reach (the H100 FP8 GEMM rows at m <= 64 stream 1.2-2.7
//!   TB/s; priced as such GEMMs, Llama-4-Scout FP8 at TP 2 decoded 1.7x slower than its
//!   measured runs), and the tables' fused-MoE shapes (not embedded yet) cover no catalog MoE
//!   model but Mixtral.
//! - **Attention**, per layer: prefills as one batch of `P` uncached sequences of the length
//!   whose causal (query, key) pairs add up to the step's (a cached prefix of c tokens under q
//!   new ones counts q (c + (q + 1) / 2) pairs), from the prefill table; decodes as `D`
//!   sequences reading the batch's mean KV length, from the decode table. A step with both
//!   launches one kernel in vLLM, not two: one launch (the smaller table's time at batch 1 and
//!   length 1) is taken off.
//! - **All-reduce**: two per layer under tensor parallelism, of `T` x hidden 16-bit elements,
//!   from vLLM's all-reduce table for the TP size.
//! - **Host**: the step and per-sequence overheads of the shared host profile
//!   ([`HostParams`](super::host::HostParams), CPU work whatever the GPU), and the GPU's logit
//!   sort ([`StepTimeParams`](super::catalog::StepTimeParams)), as the roofline has it.
//!
//! Heads: a layer's attention on one rank has `q` query and `kv` KV heads of width `d`; the
//! tables measure width 128, so a width-`d` head counts as `d / 128` heads. Prefill (compute
//! bound, by query heads) reads the rows with the largest measured KV-head count not above the
//! rank's (or the MHA rows for MHA) and interpolates linearly between the query-head counts on
//! either side. Decode (bandwidth bound, by KV heads) keeps the group size `q / kv` and folds
//! the KV heads the table lacks into the batch: `kv` heads at batch `b` read as `kv_ref` heads
//! at batch `b kv / kv_ref`, with `kv_ref` the largest measured KV-head count (at most 8) not
//! above `kv` whose group of query heads was measured (Llama-2-7B's 32 MHA heads at batch b are
//! the table's 8/8 rows at batch 4b). Gaps in a table's staircase are filled along the length
//! (quadratically for prefill, linearly for decode) and beyond the last batch proportionally.
//!
//! Everything case-specific (curves over m, attention grids for the case's heads) is built once
//! in [`KernelStepTime::new`]; a step is a pass over the batch and a handful of binary searches
//! over about 20 points.

pub mod tables;

use super::catalog::{GpuSpec, ModelSpec};
use super::host::HostParams;
use super::memory::kv_heads_per_rank;
use super::quant::{KvDtype, Quant};
use super::step_time::{experts_touched_per_rank, SeqWork, ServingOptions, StepTimeModel};
use crate::sim::Nanos;
use tables::{interp, AttentionTable, GemmTable, Grid2};

/// The largest batch whose decode-only linear time is kept precomputed (vLLM's largest default
/// `max_num_seqs` is 1024).
const DECODE_TABLE: usize = 1024;

/// The kernel-table model of one replica (one model on `tp` GPUs of one kind).
#[derive(Clone, Debug)]
pub struct KernelStepTime {
    /// The tables' folder under `models/kernels/`.
    pub tables: &'static str,
    /// The GEMM table's m points, the x of the curves below.
    m: Vec<f64>,
    /// Seconds of one forward pass's dense linear layers (all layers) at each m.
    dense: Vec<f64>,
    /// Seconds of the LM head at each m (sequences).
    lm_head: Vec<f64>,
    /// Dense layers plus LM head at m = tokens = sequences = i for i up to [`DECODE_TABLE`]:
    /// a decode-only step's linear time by one load instead of two binary searches (the
    /// values are the interpolation's own, bit for bit).
    decode_linear: Vec<f64>,
    /// Where a decode batch of i sequences falls on the decode grid's batch axis, for i up to
    /// [`DECODE_TABLE`].
    decode_x: Vec<tables::Bracket>,
    /// Seconds of reading one expert's weights (all layers) on one rank.
    expert_read_secs: f64,
    /// Seconds of the experts' FLOPs per token on one rank.
    expert_secs_per_token: f64,
    num_experts: f64,
    experts_per_token: f64,
    expert_ranks: u32,
    layers: f64,
    /// One layer's prefill attention over (sequences, equivalent uncached length).
    prefill: Grid2,
    /// One layer's decode attention over (batch in `kv_ref` units, KV tokens per sequence).
    decode: Grid2,
    /// Decode batch multiplier: KV heads per rank (in width-128 heads) / `kv_ref`.
    decode_batch_factor: f64,
    /// One attention launch, taken off a step with both prefills and decodes.
    launch: f64,
    /// All-reduce seconds per call over message elements, under tensor parallelism.
    allreduce: Option<(Vec<f64>, Vec<f64>)>,
    hidden: f64,
    step_overhead_secs: f64,
    per_sequence_secs: f64,
    sampling_secs_per_seq: f64,
}

/// One GEMM of the model: its table, rank shape, how many per forward pass, and the bytes of
/// its weights and input activations per element (for the speed-of-light floor).
struct Gemm<'a> {
    table: &'a GemmTable,
    n: f64,
    k: f64,
    count: f64,
    peak: f64,
    weight_bytes: f64,
    input_bytes: f64,
}

impl KernelStepTime {
    /// The model for a case, or why the tables cannot price it (no tables for the GPU, a
    /// precision or KV dtype they did not measure, a TP size without an all-reduce table).
    pub fn new(
        model: &ModelSpec,
        gpu: &GpuSpec,
        quant: Quant,
        kv_dtype: KvDtype,
        tp: u64,
        options: ServingOptions,
        host: &HostParams,
    ) -> Result<KernelStepTime, String> {
        let tables = tables::for_gpu(&gpu.name).ok_or_else(|| format!("no kernel tables for {}", gpu.name))?;
        let dir = tables.dir;
        let linear_dtype = match quant {
            Quant::Fp16 | Quant::Bf16 => "bfloat16",
            Quant::Fp8 => "fp8",
            other => return Err(format!("the kernel tables measure no {other} GEMMs")),
        };
        let linear = tables.gemm.get(linear_dtype).ok_or_else(|| format!("{dir} has no {linear_dtype} GEMM table"))?;
        let bf16 = tables.gemm.get("bfloat16").expect("every GPU has 16-bit GEMMs");
        assert_eq!(linear.m, bf16.m, "{dir}: GEMM tables on different m grids");
        let kv_name = match kv_dtype {
            KvDtype::Auto => "bfloat16",
            KvDtype::Fp8 => "fp8",
        };
        let missing = |what: &str| format!("{dir} has no {what} attention table for a {kv_name} KV cache");
        let context = tables.context.get(kv_name).ok_or_else(|| missing("prefill"))?;
        let generation = tables.generation.get(kv_name).ok_or_else(|| missing("decode"))?;
        let allreduce = match tp {
            1 => None,
            _ => {
                let secs = tables
                    .allreduce
                    .by_gpus
                    .get(&(tp as u32))
                    .ok_or_else(|| format!("{dir} has no all-reduce table for {tp} GPUs"))?;
                Some((tables.allreduce.elements.clone(), secs.clone()))
            }
        };

        let (h, tpf, layers) = (model.hidden_size as f64, tp as f64, model.num_layers as f64);
        let q_heads = model.num_attention_heads as f64 / tpf;
        let kv_heads = kv_heads_per_rank(model, tp) as f64;
        let hd = model.head_dim as f64;
        let input_bytes = if quant == Quant::Fp8 { 1.0 } else { 2.0 };
        let dense_gemm = |n: f64, k: f64, count: f64| Gemm {
            table: linear,
            n,
            k,
            count,
            peak: quant.matmul_peak_flops(gpu),
            weight_bytes: quant.weight_bytes_per_param(),
            input_bytes,
        };
        let bf16_gemm = |n: f64, k: f64, count: f64| Gemm {
            table: bf16,
            n,
            k,
            count,
            peak: Quant::Bf16.matmul_peak_flops(gpu),
            weight_bytes: 2.0,
            input_bytes: 2.0,
        };
        let mut gemms =
            vec![dense_gemm((q_heads + 2.0 * kv_heads) * hd, h, layers), dense_gemm(h, q_heads * hd, layers)];
        // The FLOP rate a saturated server sustains (super::sustained): 1 where none is known.
        let sustained = super::sustained::cap(gpu);
        let (mut expert_read_secs, mut expert_secs_per_token) = (0.0, 0.0);
        let (mut num_experts, mut experts_per_token, mut expert_ranks) = (0.0, 0.0, 1);
        match &model.moe {
            None => {
                let inter = model.intermediate_size as f64 / tpf;
                gemms.push(dense_gemm(2.0 * inter, h, layers));
                gemms.push(dense_gemm(h, inter, layers));
            }
            Some(moe) => {
                let inter = moe.expert_intermediate_size as f64;
                if moe.shared_experts > 0 {
                    let shared = inter * moe.shared_experts as f64 / tpf;
                    gemms.push(dense_gemm(2.0 * shared, h, layers));
                    gemms.push(dense_gemm(h, shared, layers));
                }
                // vLLM's router is a replicated 16-bit linear layer.
                gemms.push(bf16_gemm(moe.num_experts as f64, h, layers));
                num_experts = moe.num_experts as f64;
                experts_per_token = moe.experts_per_token as f64;
                expert_ranks = if options.expert_parallel && tp > 1 { tp as u32 } else { 1 };
                // Whole experts under expert parallelism, a 1/tp slice of each otherwise.
                let params = 3.0 * h * inter * layers;
                let slice = if expert_ranks > 1 { params } else { params / tpf };
                let p = &gpu.step_time;
                let efficiency = p.moe_bandwidth_efficiency.unwrap_or(p.bandwidth_efficiency);
                expert_read_secs = slice * quant.weight_bytes_per_param() / (gpu.hbm_bandwidth_gbps * 1e9 * efficiency);
                expert_secs_per_token = 2.0 * params * experts_per_token
                    / tpf
                    / (quant.matmul_peak_flops(gpu) * p.matmul_efficiency.min(sustained));
            }
        }
        let bandwidth = gpu.hbm_bandwidth_gbps * 1e9;
        let m = linear.m.clone();
        let sum = |gemms: &[Gemm]| {
            let mut total = vec![0.0; m.len()];
            for g in gemms {
                for ((slot, t), &mv) in total.iter_mut().zip(g.table.curve_for(g.n, g.k)).zip(&m) {
                    let flops = 2.0 * mv * g.n * g.k / (g.peak * sustained);
                    let bytes = (mv * g.k * g.input_bytes + g.n * g.k * g.weight_bytes + mv * g.n * 2.0) / bandwidth;
                    *slot += g.count * t.max(flops).max(bytes);
                }
            }
            total
        };
        let dense = sum(&gemms);
        let lm_head = sum(&[bf16_gemm(model.vocab_size as f64 / tpf, h, 1.0)]);

        // Attention in width-128 heads.
        let width = hd / 128.0;
        let (q_eff, kv_eff) = (q_heads * width, kv_heads * width);
        let group = q_heads / kv_heads;
        let prefill = if group == 1.0 {
            heads_grid(context, 0, true, q_eff, 2.0)
        } else {
            let kv_ref = kv_counts(context).into_iter().filter(|&c| c as f64 <= kv_eff.max(1.0)).max().unwrap_or(1);
            heads_grid(context, kv_ref, false, q_eff, 2.0)
        }
        .ok_or_else(|| format!("{dir}: no prefill attention rows for {q_eff} query heads"))?;
        let kv_ref = kv_counts(generation)
            .into_iter()
            .filter(|&c| {
                let top = generation.heads(c, false).last().copied().unwrap_or(0) as f64;
                c as f64 <= kv_eff.max(1.0) && group * c as f64 <= top
            })
            .max()
            .unwrap_or(1);
        let mut decode = heads_grid(generation, kv_ref, false, group * kv_ref as f64, 1.0)
            .ok_or_else(|| format!("{dir}: no decode attention rows for {kv_ref} KV heads"))?;
        // Speed of light of the KV read (the L2 holds small tables' caches between replays).
        let kv_bytes = 2.0 * kv_ref as f64 * 128.0 * kv_dtype.bytes(quant) as f64;
        let ny = decode.ys.len();
        for (xi, &b) in decode.xs.iter().enumerate() {
            for (yi, &len) in decode.ys.iter().enumerate() {
                let v = &mut decode.values[xi * ny + yi];
                *v = v.max(b * len * kv_bytes / bandwidth);
            }
        }
        let launch = prefill.at(1.0, 1.0).min(decode.at(1.0, 1.0));
        let decode_linear = (0..=DECODE_TABLE)
            .map(|i| {
                let x = i as f64;
                interp(&m, &dense, x, 1.0) + interp(&m, &lm_head, x, 1.0)
            })
            .collect();
        let decode_batch_factor = kv_eff / kv_ref as f64;
        let decode_x = (0..=DECODE_TABLE).map(|i| decode.x_bracket(i as f64 * decode_batch_factor)).collect();
        let p = &gpu.step_time;
        Ok(KernelStepTime {
            tables: dir,
            m,
            dense,
            lm_head,
            decode_linear,
            decode_x,
            expert_read_secs,
            expert_secs_per_token,
            num_experts,
            experts_per_token,
            expert_ranks,
            layers,
            prefill,
            decode,
            decode_batch_factor,
            launch,
            allreduce,
            hidden: h,
            step_overhead_secs: host.step_overhead_us * 1e-6,
            per_sequence_secs: host.per_sequence_overhead_us * 1e-6,
            sampling_secs_per_seq: if options.model_sampling_defaults && model.generation_config.filters_logits() {
                model.vocab_size as f64 * p.sampling_sort_ns_per_logit * 1e-9
            } else {
                0.0
            },
        })
    }

    /// Seconds of the linear layers (with MoE experts), attention, all-reduce and host work.
    pub fn breakdown_secs(&self, batch: &[SeqWork]) -> [f64; 4] {
        let mut sums = BatchSums { tokens: 0.0, seqs: 0.0, prefills: 0.0, pairs: 0.0, decodes: 0.0, kv_tokens: 0.0 };
        for seq in batch {
            sums.add(seq);
        }
        sums.seqs = batch.len() as f64;
        self.breakdown_of(sums)
    }

    /// The breakdown from the batch's sums (the model depends on the batch only through them).
    fn breakdown_of(&self, sums: BatchSums) -> [f64; 4] {
        let BatchSums { tokens, seqs, prefills, pairs, decodes, kv_tokens } = sums;
        let mut linear = match self.decode_linear.get(tokens as usize) {
            Some(&t) if tokens == seqs && tokens.fract() == 0.0 => t,
            _ => interp(&self.m, &self.dense, tokens, 1.0) + interp(&self.m, &self.lm_head, seqs, 1.0),
        };
        if self.num_experts > 0.0 {
            let touched = experts_touched_per_rank(self.num_experts, self.experts_per_token, self.expert_ranks, tokens);
            linear += (touched * self.expert_read_secs).max(tokens * self.expert_secs_per_token);
        }
        let prefill = if prefills > 0.0 {
            // The uncached length s with s (s + 1) / 2 pairs per sequence.
            let length = ((8.0 * pairs / prefills + 1.0).sqrt() - 1.0) / 2.0;
            self.prefill.at(prefills, length)
        } else {
            0.0
        };
        let decode = if decodes > 0.0 {
            let x = match self.decode_x.get(decodes as usize) {
                Some(&x) if decodes.fract() == 0.0 => x,
                _ => self.decode.x_bracket(decodes * self.decode_batch_factor),
            };
            self.decode.at_x(x, kv_tokens / decodes)
        } else {
            0.0
        };
        let per_layer = if prefill > 0.0 && decode > 0.0 {
            (prefill + decode - self.launch).max(prefill.max(decode))
        } else {
            prefill + decode
        };
        let allreduce = self
            .allreduce
            .as_ref()
            .map_or(0.0, |(elements, secs)| 2.0 * self.layers * interp(elements, secs, tokens * self.hidden, 1.0));
        let host = self.step_overhead_secs + (self.per_sequence_secs + self.sampling_secs_per_seq) * seqs;
        [linear, self.layers * per_layer, allreduce, host]
    }
}

impl StepTimeModel for KernelStepTime {
    fn step_time(&self, batch: &[SeqWork]) -> Nanos {
        Nanos::from_secs_f64(self.breakdown_secs(batch).iter().sum())
    }

    fn decode_step_time(&self, seqs: u32, cached_tokens: u64, others: &[SeqWork]) -> Nanos {
        let n = seqs as f64;
        // Each decode reads its cached tokens plus itself.
        let kv_tokens = (cached_tokens + seqs as u64) as f64;
        let mut sums = BatchSums { tokens: n, seqs: 0.0, prefills: 0.0, pairs: 0.0, decodes: n, kv_tokens };
        for seq in others {
            sums.add(seq);
        }
        sums.seqs = (seqs as usize + others.len()) as f64;
        Nanos::from_secs_f64(self.breakdown_of(sums).iter().sum())
    }
}

/// What a step's price depends on: scheduled tokens, sequences, prefill sequences and their
/// causal attention pairs, decode sequences and the KV tokens they read.
#[derive(Clone, Copy, Debug)]
struct BatchSums {
    tokens: f64,
    seqs: f64,
    prefills: f64,
    pairs: f64,
    decodes: f64,
    kv_tokens: f64,
}

impl BatchSums {
    fn add(&mut self, seq: &SeqWork) {
        let (q, cached) = (seq.query_tokens as f64, seq.cached_tokens as f64);
        self.tokens += q;
        if seq.query_tokens > 1 {
            self.prefills += 1.0;
            self.pairs += q * (cached + (q + 1.0) / 2.0);
        } else {
            self.decodes += 1.0;
            self.kv_tokens += cached + q;
        }
    }
}

/// The KV-head counts of a table's GQA rows (1, 2, 4, 8).
fn kv_counts(table: &AttentionTable) -> Vec<u32> {
    let mut counts: Vec<u32> = (1..=64).filter(|&kv| table.heads(kv, false).iter().any(|&h| h != kv)).collect();
    counts.dedup();
    counts
}

/// The grid for `heads` query heads (fractional allowed) with `kv_heads` KV heads (or MHA rows):
/// linear between the measured head counts on either side, the smallest below them, scaled by
/// heads above the largest.
fn heads_grid(table: &AttentionTable, kv_heads: u32, mha: bool, heads: f64, axis_power: f64) -> Option<Grid2> {
    let measured = table.heads(kv_heads, mha);
    let grid = |h: u32| table.grid(h, if mha { h } else { kv_heads }, axis_power);
    let (first, last) = (*measured.first()?, *measured.last()?);
    if heads <= first as f64 {
        return grid(first);
    }
    if heads >= last as f64 {
        return Some(grid(last)?.scaled(heads / last as f64));
    }
    let i = measured.partition_point(|&h| h as f64 <= heads);
    let (lo, hi) = (measured[i - 1], measured[i]);
    Some(grid(lo)?.blend(&grid(hi)?, (heads - lo as f64) / (hi - lo) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::catalog::Catalog;

    fn h100() -> &'static tables::KernelTables {
        tables::for_gpu("h100-80gb").unwrap()
    }

    /// Rows of h100_sxm/gemm.csv.gz (bfloat16), copied from the CSV by hand, in ms.
    #[test]
    fn gemm_lookups_are_the_table_rows_at_table_points() {
        let g = &h100().gemm["bfloat16"];
        let rows = [
            (256.0, 4096.0, 4096.0, 0.01919555498494042),
            (2048.0, 4096.0, 4096.0, 0.0800879995028178),
            (64.0, 6144.0, 4096.0, 0.022986667023764715),
            (1.0, 65536.0, 4096.0, 0.21752444903055826),
        ];
        for (m, n, k, ms) in rows {
            assert_eq!(g.at(m, n, k), Some(ms * 1e-3), "({m}, {n}, {k})");
            let mi = g.m.iter().position(|&x| x == m).unwrap();
            assert!((g.curve_for(n, k)[mi] / (ms * 1e-3) - 1.0).abs() < 1e-12);
        }
    }

    /// Between two m the time is on the line between the rows; between two n the time per
    /// weight is between the neighbours' (log-space blend).
    #[test]
    fn gemm_lookups_fall_between_neighbours() {
        let g = &h100().gemm["bfloat16"];
        let (a, b) = (g.at(256.0, 4096.0, 4096.0).unwrap(), g.at(384.0, 4096.0, 4096.0).unwrap());
        let curve = g.curve_for(4096.0, 4096.0);
        assert!((interp(&g.m, &curve, 320.0, 1.0) - (a + b) / 2.0).abs() < 1e-15);
        let mi = g.m.iter().position(|&x| x == 256.0).unwrap();
        let (lo, hi) = (g.at(256.0, 4096.0, 4096.0).unwrap() / 4096.0, g.at(256.0, 5120.0, 4096.0).unwrap() / 5120.0);
        let mid = g.curve_for(4608.0, 4096.0)[mi] / 4608.0;
        assert!(mid > lo.min(hi) && mid < lo.max(hi), "{lo} {mid} {hi}");
        // Beyond the grid the edge's time per weight is kept: the LM head of a 128k vocabulary
        // is twice the 65536 row.
        assert!((g.curve_for(131072.0, 4096.0)[0] / (2.0 * g.at(1.0, 65536.0, 4096.0).unwrap()) - 1.0).abs() < 1e-12);
    }

    /// Rows of h100_sxm/generation_attention.csv.gz and context_attention.csv.gz (bfloat16 KV).
    #[test]
    fn attention_lookups_are_the_table_rows_and_blend_between_head_counts() {
        let (gen, ctx) = (&h100().generation["bfloat16"], &h100().context["bfloat16"]);
        assert_eq!(gen.at(32, 8, 64, 4095.0), Some(0.3531839847564697 * 1e-3));
        assert_eq!(ctx.at(32, 8, 1, 1024.0), Some(0.04489600161711375 * 1e-3));
        let grid = heads_grid(gen, 8, false, 32.0, 1.0).unwrap();
        assert_eq!(grid.at(64.0, 4095.0), 0.3531839847564697 * 1e-3);
        // 28 query heads over 4 KV heads (Qwen2.5-7B): halfway between the 24 and 32 rows.
        let (lo, hi) = (gen.at(24, 4, 16, 1023.0).unwrap(), gen.at(32, 4, 16, 1023.0).unwrap());
        let grid = heads_grid(gen, 4, false, 28.0, 1.0).unwrap();
        assert!((grid.at(16.0, 1023.0) - (lo + hi) / 2.0).abs() < 1e-15);
        // Between two lengths of one row: on the line.
        let (a, b) = (gen.at(32, 8, 64, 2047.0).unwrap(), gen.at(32, 8, 64, 4095.0).unwrap());
        let grid = heads_grid(gen, 8, false, 32.0, 1.0).unwrap();
        assert!((grid.at(64.0, 3071.0) - (a + b) / 2.0).abs() < 1e-15);
    }

    /// A Llama-3.1-8B-shaped model whose every GEMM is on the H100 grid (intermediate 8192,
    /// vocabulary `vocab`), without sampling defaults.
    fn toy(vocab: u64) -> ModelSpec {
        let mut m = Catalog::builtin().model("llama-3.1-8b").unwrap().clone();
        m.intermediate_size = 8192;
        m.vocab_size = vocab;
        m
    }

    /// The H100's model at its tables' own speed (no sustained cap), so that steps are the sums
    /// of table rows.
    fn model(spec: &ModelSpec, tp: u64) -> KernelStepTime {
        let mut gpu = Catalog::builtin().gpu("h100").unwrap().clone();
        gpu.step_time.sustained_matmul_fraction = Some(1.0);
        let options = ServingOptions { model_sampling_defaults: false, ..Default::default() };
        KernelStepTime::new(spec, &gpu, Quant::Bf16, KvDtype::Auto, tp, options, HostParams::shipped()).unwrap()
    }

    /// With the H100's sustained fraction, an 8192-token prefill's linear layers run at that
    /// fraction of the 989.4 TFLOPS peak, where the tables alone run them faster; a decode step
    /// of 8 sequences is left as the tables price it.
    #[test]
    fn linear_layers_never_outrun_the_sustained_fraction() {
        let c = Catalog::builtin();
        let (spec, gpu) = (c.model("llama-3.1-8b").unwrap(), c.gpu("h100").unwrap());
        let options = ServingOptions { model_sampling_defaults: false, ..Default::default() };
        let capped =
            KernelStepTime::new(spec, gpu, Quant::Bf16, KvDtype::Auto, 1, options, HostParams::shipped()).unwrap();
        let tables = model(spec, 1);
        let fraction = gpu.step_time.sustained_matmul_fraction.unwrap();
        // Per token: QKV 6144 x 4096, O 4096 x 4096, gate/up 28672 x 4096, down 4096 x 14336,
        // 32 layers; the LM head (one sequence, so m 1: bandwidth-bound) as the tables have it.
        let flops = 8192.0 * 2.0 * 32.0 * (6144.0 + 4096.0 + 28672.0 + 14336.0) * 4096.0;
        let lm_head = interp(&tables.m, &tables.lm_head, 1.0, 1.0);
        let prefill = [SeqWork { query_tokens: 8192, cached_tokens: 0 }];
        let [linear, ..] = capped.breakdown_secs(&prefill);
        assert!((linear / (flops / (989.4e12 * fraction) + lm_head) - 1.0).abs() < 1e-9, "{linear}");
        assert!(tables.breakdown_secs(&prefill)[0] < 0.6 * linear);
        let decode = vec![SeqWork { query_tokens: 1, cached_tokens: 1000 }; 8];
        assert_eq!(capped.breakdown_secs(&decode), tables.breakdown_secs(&decode));
    }

    /// 64 decodes of 4095-token contexts on one H100: 32 layers of QKV (6144 x 4096), O
    /// (4096 x 4096), gate/up (16384 x 4096) and down (4096 x 8192) at m 64, the LM head
    /// (16384 x 4096) at m 64, and 32 decode attentions (32 / 8 heads, batch 64, step 4095),
    /// each a row of the H100 tables (ms), plus the host time.
    #[test]
    fn a_decode_step_is_the_sum_of_its_table_rows() {
        let k = model(&toy(16384), 1);
        let batch = vec![SeqWork { query_tokens: 1, cached_tokens: 4094 }; 64];
        let [linear, attention, allreduce, host] = k.breakdown_secs(&batch);
        let layer_gemms = 0.022986667023764715 + 0.014797333214018079 + 0.04840888910823398 + 0.02929511004024082;
        let lm_head = 0.04840888910823398;
        assert!((linear / ((32.0 * layer_gemms + lm_head) * 1e-3) - 1.0).abs() < 1e-12, "{linear}");
        assert!((attention / (32.0 * 0.3531839847564697e-3) - 1.0).abs() < 1e-12, "{attention}");
        assert_eq!(allreduce, 0.0);
        let h = HostParams::shipped();
        assert!((host - (h.step_overhead_us + 64.0 * h.per_sequence_overhead_us) * 1e-6).abs() < 1e-15);
    }

    /// One uncached 1024-token prefill at TP 2: rank shapes QKV (3072 x 4096), O (4096 x 2048),
    /// gate/up (8192 x 4096), down (4096 x 4096) at m 1024, LM head (16384 x 4096) at m 1,
    /// prefill attention (16 / 4 heads, batch 1, isl 1024), and two all-reduces per layer of
    /// 1024 x 4096 = 2^22 elements over 2 GPUs.
    #[test]
    fn a_prefill_step_at_tp2_is_the_sum_of_its_table_rows() {
        let k = model(&toy(32768), 2);
        let [linear, attention, allreduce, _] = k.breakdown_secs(&[SeqWork { query_tokens: 1024, cached_tokens: 0 }]);
        let layer_gemms = 0.03387199838956197 + 0.0237137774626414 + 0.0838479995727539 + 0.04260977771547106;
        let lm_head = 0.04609600040647718;
        assert!((linear / ((32.0 * layer_gemms + lm_head) * 1e-3) - 1.0).abs() < 1e-12, "{linear}");
        assert!((attention / (32.0 * 0.029722665747006733e-3) - 1.0).abs() < 1e-12, "{attention}");
        assert!((allreduce / (64.0 * 0.049983038902282714e-3) - 1.0).abs() < 1e-12, "{allreduce}");
    }

    /// Llama-2-7B's 32 MHA heads fold into the batch of the 8 / 8 rows; mixed steps pay one
    /// attention launch less than their parts.
    #[test]
    fn mha_decode_reads_as_more_sequences_and_mixed_steps_share_a_launch() {
        let c = Catalog::builtin();
        let k = model(c.model("llama-2-7b").unwrap(), 1);
        let gen = &h100().generation["bfloat16"];
        let [_, attention, ..] = k.breakdown_secs(&[SeqWork { query_tokens: 1, cached_tokens: 1022 }; 16]);
        assert!((attention / (32.0 * gen.at(8, 8, 64, 1023.0).unwrap()) - 1.0).abs() < 1e-12);
        let decode = vec![SeqWork { query_tokens: 1, cached_tokens: 500 }; 8];
        let prefill = [SeqWork { query_tokens: 300, cached_tokens: 0 }];
        let mixed: Vec<SeqWork> = decode.iter().chain(&prefill).copied().collect();
        let attn = |b: &[SeqWork]| k.breakdown_secs(b)[1];
        let saved = attn(&decode) + attn(&prefill) - attn(&mixed);
        assert!((saved - 32.0 * k.launch).abs() < 1e-12 && k.launch > 0.0, "{saved}");
    }

    /// MoE experts are read as the roofline reads them: one token touches 2 of Mixtral's 8
    /// experts, 64 tokens nearly all of them.
    #[test]
    fn moe_reads_only_the_experts_a_small_batch_touches() {
        let k = model(Catalog::builtin().model("mixtral-8x7b").unwrap(), 2);
        let linear = |n: usize| k.breakdown_secs(&vec![SeqWork { query_tokens: 1, cached_tokens: 0 }; n])[0];
        let expected = (experts_touched_per_rank(8.0, 2.0, 1, 64.0) - 2.0) * k.expert_read_secs;
        let dense = interp(&k.m, &k.dense, 64.0, 1.0) - interp(&k.m, &k.dense, 1.0, 1.0)
            + interp(&k.m, &k.lm_head, 64.0, 1.0)
            - interp(&k.m, &k.lm_head, 1.0, 1.0);
        assert!((linear(64) - linear(1) - dense - expected).abs() < 1e-12, "{} {expected}", linear(64) - linear(1));
        assert!(linear(64) / linear(1) > 2.5 && linear(64) / linear(1) < 4.0);
    }

    #[test]
    fn gpus_and_precisions_without_tables_are_refused_with_the_reason() {
        let c = Catalog::builtin();
        let m = c.model("llama-3.1-8b").unwrap();
        let new = |gpu: &str, quant, kv, tp| {
            KernelStepTime::new(m, c.gpu(gpu).unwrap(), quant, kv, tp, ServingOptions::default(), HostParams::shipped())
                .err()
        };
        assert_eq!(new("a100-40gb", Quant::Bf16, KvDtype::Auto, 1).unwrap(), "no kernel tables for a100-40gb");
        assert!(new("a100-80gb", Quant::Fp8, KvDtype::Auto, 1).unwrap().contains("fp8 GEMM"));
        assert!(new("a100-80gb", Quant::Bf16, KvDtype::Fp8, 1).unwrap().contains("fp8 KV"));
        assert!(new("h100", Quant::Int4, KvDtype::Auto, 1).unwrap().contains("int4"));
        assert!(new("h100", Quant::Bf16, KvDtype::Auto, 3).unwrap().contains("3 GPUs"));
        assert!(new("h100", Quant::Fp8, KvDtype::Fp8, 4).is_none());
        assert!(new("l40s", Quant::Bf16, KvDtype::Auto, 2).is_none());
    }
}
