//! What a step costs: the [`StepTimeModel`] trait, the roofline model built from the model's
//! shape and the GPU's datasheet, and a constant model for tests.
//!
//! Roofline per step: linear layers cost `max(FLOPs / (peak x matmul_eff), dense weight bytes
//! / (bandwidth x bw_eff) + bytes of the MoE experts touched / (bandwidth x moe_bw_eff))`, where
//! under expert parallelism the experts touched are the busiest rank's; attention costs
//! `max(attention FLOPs / (peak x attn_eff), KV bytes read / (bandwidth x bw_eff))` summed over
//! the batch's sequences; tensor parallelism adds two all-reduces per layer; every step pays a
//! fixed overhead plus a per-sequence one, and sorting each sequence's logits when the requests
//! sample with top-k or top-p.

use super::catalog::{GpuSpec, ModelSpec, StepTimeParams};
use super::memory::kv_bytes_per_token;
use super::quant::{KvDtype, Quant};
use super::shape::ParamBreakdown;
use crate::sim::Nanos;

/// The work of one sequence in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqWork {
    /// Tokens computed for this sequence in this step (1 for a decode).
    pub query_tokens: u32,
    /// Tokens already in its KV cache before this step.
    pub cached_tokens: u32,
}

/// Prices one scheduler step from the batch's composition.
pub trait StepTimeModel: Send + Sync {
    fn step_time(&self, batch: &[SeqWork]) -> Nanos;

    /// The time of a step of `seqs` sequences that each decode one token, with
    /// `cached_tokens` tokens in their KV caches together, followed by `others`: bit for bit
    /// what [`Self::step_time`] gives for that batch, in O(`others`). The models depend on the
    /// decodes only through these two sums, and their per-sequence sums add integer-valued
    /// `f64`s, which is exact below 2^53 in any order; the replica's decode fast path relies on
    /// it (`serving::replica::decode_run`).
    fn decode_step_time(&self, seqs: u32, cached_tokens: u64, others: &[SeqWork]) -> Nanos;
}

/// Every step takes `per_step` plus `per_token` for each scheduled token; for tests with exact
/// expected numbers.
#[derive(Clone, Copy, Debug)]
pub struct ConstantStepTime {
    pub per_step: Nanos,
    pub per_token: Nanos,
}

impl StepTimeModel for ConstantStepTime {
    fn step_time(&self, batch: &[SeqWork]) -> Nanos {
        let tokens: u64 = batch.iter().map(|s| s.query_tokens as u64).sum();
        Nanos(self.per_step.0 + self.per_token.0 * tokens)
    }

    fn decode_step_time(&self, seqs: u32, _cached_tokens: u64, others: &[SeqWork]) -> Nanos {
        let tokens = seqs as u64 + others.iter().map(|s| s.query_tokens as u64).sum::<u64>();
        Nanos(self.per_step.0 + self.per_token.0 * tokens)
    }
}

/// Serving choices that change what a step costs beyond the model, GPU, precision and TP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServingOptions {
    /// Each of the `tp` ranks holds `num_experts / tp` whole experts instead of a slice of
    /// every expert (vLLM's `--enable-expert-parallel`; ignored for dense models).
    pub expert_parallel: bool,
    /// Requests sample with the model's `generation_config.json` defaults (vLLM's
    /// `--generation-config auto`).
    pub model_sampling_defaults: bool,
}

impl Default for ServingOptions {
    /// vLLM's defaults: no expert parallelism, the model's sampling defaults.
    fn default() -> ServingOptions {
        ServingOptions { expert_parallel: false, model_sampling_defaults: true }
    }
}

/// The roofline model of one replica (one model on `tp` GPUs of one kind).
#[derive(Clone, Debug)]
pub struct Roofline {
    params: StepTimeParams,
    tp: f64,
    layers: f64,
    hidden: f64,
    /// FLOPs per token through the linear layers on one rank (2 x active params / tp).
    linear_flops_per_token: f64,
    /// LM-head FLOPs per sampled sequence on one rank.
    lm_head_flops_per_seq: f64,
    /// Weight bytes every step reads on one rank, apart from MoE experts.
    dense_weight_bytes: f64,
    /// Bytes of one expert's weights on one rank, and the expert counts, for MoE models.
    expert_bytes: f64,
    num_experts: f64,
    experts_per_token: f64,
    /// Ranks the experts are spread over whole (vLLM's `--enable-expert-parallel`: EP = TP), or
    /// 1 when each expert is sliced over the TP ranks.
    expert_ranks: u32,
    /// Attention FLOPs per (query token x context token) on one rank: 4 x layers x q_heads x
    /// head_dim / tp (QK^T and PV, 2 FLOPs per multiply-add).
    attention_flops_per_pair: f64,
    kv_bytes_per_token: f64,
    activation_bytes: f64,
    matmul_peak: f64,
    attention_peak: f64,
    bandwidth: f64,
    /// One-direction GPU-to-GPU bandwidth, bytes/s.
    link_bandwidth: f64,
    /// Seconds per sequence of sorting its logits (top-k/top-p sampling), or 0.
    sampling_secs_per_seq: f64,
}

impl Roofline {
    /// The roofline of a vLLM replica: the linear layers never faster than the GPU's sustained
    /// fraction of its peak ([`super::sustained`]).
    pub fn new(
        model: &ModelSpec,
        gpu: &GpuSpec,
        quant: Quant,
        kv_dtype: KvDtype,
        tp: u64,
        options: ServingOptions,
    ) -> Roofline {
        Roofline::with_cap(model, gpu, quant, kv_dtype, tp, options, super::sustained::cap(gpu))
    }

    /// The roofline with the linear layers' efficiency capped at `cap` of the peak: 1 is the
    /// GPU's own efficiencies, as Hugging Face's eager `generate` runs, whose one-second padded
    /// prefills on the H200 reached 45% of the peak (h200_hf_generate.md), above the cap fitted
    /// on vLLM's saturated runs.
    pub fn with_cap(
        model: &ModelSpec,
        gpu: &GpuSpec,
        quant: Quant,
        kv_dtype: KvDtype,
        tp: u64,
        options: ServingOptions,
        cap: f64,
    ) -> Roofline {
        let p = ParamBreakdown::of(model);
        let tpf = tp as f64;
        let bpp = quant.weight_bytes_per_param();
        let dense_bytes = quant.activation_bytes() as f64;
        let (expert_params, num_experts, experts_per_token) = match &model.moe {
            Some(moe) => (
                (3 * model.hidden_size * moe.expert_intermediate_size * model.num_layers) as f64,
                moe.num_experts as f64,
                moe.experts_per_token as f64,
            ),
            None => (0.0, 0.0, 0.0),
        };
        // Shared experts are read every step, like the dense layers.
        let non_expert_linear = p.linear as f64 - expert_params * num_experts;
        let lm_head_params = (if p.lm_head > 0 { p.lm_head } else { p.embedding }) as f64;
        let expert_ranks = if options.expert_parallel && num_experts > 0.0 && tp > 1 { tp as u32 } else { 1 };
        // vLLM's default for fp32 is the link the catalog names; PCIe when there is none.
        let link_gbps = gpu.interconnect_gbps.unwrap_or(gpu.pcie_gbps);
        let mut params = gpu.step_time.clone();
        // A saturated server sustains less than the fitted light-load efficiency where the
        // GPU's sustained fraction is lower (super::sustained).
        params.matmul_efficiency = params.matmul_efficiency.min(cap);
        Roofline {
            params,
            tp: tpf,
            layers: model.num_layers as f64,
            hidden: model.hidden_size as f64,
            linear_flops_per_token: 2.0 * p.linear_active as f64 / tpf,
            lm_head_flops_per_seq: 2.0 * lm_head_params / tpf,
            dense_weight_bytes: (non_expert_linear * bpp + lm_head_params * dense_bytes) / tpf,
            // Whole experts under expert parallelism, a 1/tp slice of each otherwise.
            expert_bytes: expert_params * bpp / if expert_ranks > 1 { 1.0 } else { tpf },
            num_experts,
            experts_per_token,
            expert_ranks,
            attention_flops_per_pair: 4.0 * (model.num_layers * model.num_attention_heads * model.head_dim) as f64
                / tpf,
            kv_bytes_per_token: kv_bytes_per_token(model, quant, kv_dtype, tp) as f64,
            activation_bytes: quant.activation_bytes() as f64,
            matmul_peak: quant.matmul_peak_flops(gpu),
            attention_peak: quant.attention_peak_flops(gpu),
            bandwidth: gpu.hbm_bandwidth_gbps * 1e9,
            link_bandwidth: link_gbps * 1e9 / 2.0,
            sampling_secs_per_seq: if options.model_sampling_defaults && model.generation_config.filters_logits() {
                model.vocab_size as f64 * gpu.step_time.sampling_sort_ns_per_logit * 1e-9
            } else {
                0.0
            },
        }
    }

    /// Seconds for the linear layers given the step's tokens and sequences.
    fn linear_secs(&self, tokens: f64, seqs: f64) -> f64 {
        let flops = self.linear_flops_per_token * tokens + self.lm_head_flops_per_seq * seqs;
        let experts_read = self.experts_read_per_rank(tokens);
        let p = &self.params;
        let moe_efficiency = p.moe_bandwidth_efficiency.unwrap_or(p.bandwidth_efficiency);
        let memory = self.dense_weight_bytes / (self.bandwidth * p.bandwidth_efficiency)
            + self.expert_bytes * experts_read / (self.bandwidth * moe_efficiency);
        (flops / (self.matmul_peak * p.matmul_efficiency)).max(memory)
    }

    /// Experts one rank reads in a step of `tokens` tokens, each routed to k of E experts: the
    /// expected number of distinct experts touched, `E (1 - (1 - k/E)^tokens)`. Under expert
    /// parallelism the step waits for the busiest rank, so this is the expected maximum over
    /// the ranks of the experts touched among each rank's own `E / ranks`, with each rank's
    /// count taken as binomial (the slight negative correlation between ranks is ignored).
    fn experts_read_per_rank(&self, tokens: f64) -> f64 {
        experts_touched_per_rank(self.num_experts, self.experts_per_token, self.expert_ranks, tokens)
    }

    /// Seconds of attention from the batch's causal (query, context) pairs and KV tokens read.
    fn attention_secs(&self, pairs: f64, kv_tokens: f64) -> f64 {
        let p = &self.params;
        let compute = pairs * self.attention_flops_per_pair / (self.attention_peak * p.attention_efficiency);
        let kv_efficiency = p.kv_bandwidth_efficiency.unwrap_or(p.bandwidth_efficiency);
        let memory = kv_tokens * self.kv_bytes_per_token / (self.bandwidth * kv_efficiency);
        compute.max(memory)
    }

    /// Two all-reduces of the hidden states per layer (after attention and after the MLP), each
    /// `log2(tp)` steps of latency (recursive doubling) plus the ring's bandwidth term.
    fn allreduce_secs(&self, tokens: f64) -> f64 {
        if self.tp <= 1.0 {
            return 0.0;
        }
        let p = &self.params;
        let bytes = tokens * self.hidden * self.activation_bytes;
        let per_call = self.tp.log2() * p.allreduce_latency_us * 1e-6
            + 2.0 * (self.tp - 1.0) / self.tp * bytes / (self.link_bandwidth * p.allreduce_efficiency);
        2.0 * self.layers * per_call
    }

    /// Seconds of one all-reduce-free breakdown, for reports and tests.
    pub fn breakdown_secs(&self, batch: &[SeqWork]) -> [f64; 4] {
        let tokens: f64 = batch.iter().map(|s| s.query_tokens as f64).sum();
        let mut pairs = 0.0;
        let mut kv_tokens = 0.0;
        for seq in batch {
            let q = seq.query_tokens as f64;
            let cached = seq.cached_tokens as f64;
            // Causal attention: query i sees cached + i + 1 tokens.
            pairs += q * (cached + (q + 1.0) / 2.0);
            kv_tokens += cached + q;
        }
        self.breakdown_of(tokens, batch.len() as f64, pairs, kv_tokens)
    }

    /// The breakdown from the batch's sums: scheduled tokens, sequences, causal attention
    /// pairs and KV tokens read.
    pub(crate) fn breakdown_of(&self, tokens: f64, seqs: f64, pairs: f64, kv_tokens: f64) -> [f64; 4] {
        let p = &self.params;
        [
            self.linear_secs(tokens, seqs),
            self.attention_secs(pairs, kv_tokens),
            self.allreduce_secs(tokens),
            (p.step_overhead_us + p.per_sequence_overhead_us * seqs) * 1e-6 + self.sampling_secs_per_seq * seqs,
        ]
    }
}

/// [`Roofline::experts_read_per_rank`] as a function of the routing, for the other step models.
pub(crate) fn experts_touched_per_rank(
    num_experts: f64,
    experts_per_token: f64,
    expert_ranks: u32,
    tokens: f64,
) -> f64 {
    if num_experts <= 0.0 {
        return 0.0;
    }
    let touched = 1.0 - (1.0 - experts_per_token / num_experts).powf(tokens);
    if expert_ranks <= 1 {
        return num_experts * touched;
    }
    let local = (num_experts / expert_ranks as f64).round() as u32;
    expected_max_of_binomials(local, touched, expert_ranks)
}

/// E[max of `ranks` independent Binomial(n, p)] = sum over j in 1..=n of P(max >= j)
/// = sum of 1 - F(j - 1)^ranks, with F the binomial CDF. O(n) per call.
fn expected_max_of_binomials(n: u32, p: f64, ranks: u32) -> f64 {
    let q = 1.0 - p;
    let mut pmf = q.powi(n as i32);
    let mut cdf = 0.0;
    let mut expected = 0.0;
    for j in 0..n {
        cdf += pmf;
        expected += 1.0 - cdf.min(1.0).powi(ranks as i32);
        // pmf(j + 1) from pmf(j); with q == 0 every rank touches all n.
        pmf = if q > 0.0 { pmf * (n - j) as f64 / (j + 1) as f64 * p / q } else { 0.0 };
    }
    expected
}

impl StepTimeModel for Roofline {
    fn step_time(&self, batch: &[SeqWork]) -> Nanos {
        Nanos::from_secs_f64(self.breakdown_secs(batch).iter().sum())
    }

    fn decode_step_time(&self, seqs: u32, cached_tokens: u64, others: &[SeqWork]) -> Nanos {
        // Each decode is one query over its cached tokens plus itself: one pair per context
        // token, and as many KV tokens read.
        let context = (cached_tokens + seqs as u64) as f64;
        let (mut tokens, mut pairs, mut kv_tokens) = (seqs as f64, context, context);
        for seq in others {
            let q = seq.query_tokens as f64;
            let cached = seq.cached_tokens as f64;
            tokens += q;
            pairs += q * (cached + (q + 1.0) / 2.0);
            kv_tokens += cached + q;
        }
        let all = (seqs as usize + others.len()) as f64;
        Nanos::from_secs_f64(self.breakdown_of(tokens, all, pairs, kv_tokens).iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::catalog::Catalog;

    fn roofline(model: &str, gpu: &str, tp: u64) -> Roofline {
        let c = Catalog::builtin();
        Roofline::new(
            c.model(model).unwrap(),
            c.gpu(gpu).unwrap(),
            Quant::Bf16,
            KvDtype::Auto,
            tp,
            ServingOptions::default(),
        )
    }

    #[test]
    fn a_single_decode_is_bound_by_reading_the_weights() {
        let r = roofline("llama-3.1-8b", "h100", 1);
        let st = &Catalog::builtin().gpu("h100").unwrap().step_time;
        let [linear, attention, allreduce, overhead] =
            r.breakdown_secs(&[SeqWork { query_tokens: 1, cached_tokens: 100 }]);
        // Linear layers and LM head, 2 B each (the embedding table is not streamed; norms are
        // negligible), at 3350 GB/s x the bandwidth efficiency.
        let p = ParamBreakdown::of(Catalog::builtin().model("llama-3.1-8b").unwrap());
        let weight_bytes = (p.linear + p.lm_head) as f64 * 2.0;
        assert!((linear - weight_bytes / (3350e9 * st.bandwidth_efficiency)).abs() < 1e-9, "{linear}");
        assert!(attention < linear / 100.0);
        assert_eq!(allreduce, 0.0);
        // Llama 3.1 samples with top-p 0.9 by default: one sequence's logits sorted.
        let sort = 128_256.0 * st.sampling_sort_ns_per_logit * 1e-9;
        assert!((overhead - (st.step_overhead_us + st.per_sequence_overhead_us) * 1e-6 - sort).abs() < 1e-12);
    }

    #[test]
    fn a_long_prefill_is_bound_by_compute() {
        let r = roofline("llama-3.1-8b", "h100", 1);
        let st = &Catalog::builtin().gpu("h100").unwrap().step_time;
        let [linear, ..] = r.breakdown_secs(&[SeqWork { query_tokens: 8192, cached_tokens: 0 }]);
        let p = ParamBreakdown::of(Catalog::builtin().model("llama-3.1-8b").unwrap());
        let flops = 2.0 * p.linear as f64 * 8192.0 + 2.0 * p.lm_head as f64;
        let efficiency = st.matmul_efficiency.min(st.sustained_matmul_fraction.unwrap());
        assert!(efficiency < st.matmul_efficiency, "the H100's sustained fraction binds");
        assert!((linear - flops / (989.4e12 * efficiency)).abs() / linear < 1e-9);
        let c = Catalog::builtin();
        let uncapped = Roofline::with_cap(
            c.model("llama-3.1-8b").unwrap(),
            c.gpu("h100").unwrap(),
            Quant::Bf16,
            KvDtype::Auto,
            1,
            ServingOptions::default(),
            1.0,
        );
        let [burst, ..] = uncapped.breakdown_secs(&[SeqWork { query_tokens: 8192, cached_tokens: 0 }]);
        assert!((burst - flops / (989.4e12 * st.matmul_efficiency)).abs() / burst < 1e-9);
    }

    /// A decode step streams the weights: far under the sustained fraction's FLOP rate, so the
    /// cap leaves it alone.
    #[test]
    fn the_sustained_cap_leaves_decode_steps_alone() {
        let c = Catalog::builtin();
        let (m, g) = (c.model("llama-3.1-8b").unwrap(), c.gpu("h100").unwrap());
        let o = ServingOptions::default();
        let decode = vec![SeqWork { query_tokens: 1, cached_tokens: 1000 }; 32];
        let capped = Roofline::new(m, g, Quant::Bf16, KvDtype::Auto, 1, o).breakdown_secs(&decode);
        let uncapped = Roofline::with_cap(m, g, Quant::Bf16, KvDtype::Auto, 1, o, 1.0).breakdown_secs(&decode);
        assert_eq!(capped, uncapped);
    }

    /// Llama-3.1-70B at TP 4 on H100, 256 decode tokens: per all-reduce 256 x 8192 x 2 B
    /// = 4 MiB, ring factor 2 x 3/4, over 450 GB/s (half of NVLink's 900 bidirectional) x the
    /// all-reduce efficiency one way, plus log2(4) = 2 steps of latency; 2 per layer x 80
    /// layers = 160 of them.
    #[test]
    fn tensor_parallel_all_reduce_matches_the_hand_calculation() {
        let r = roofline("llama-3.1-70b", "h100", 4);
        let batch = vec![SeqWork { query_tokens: 1, cached_tokens: 500 }; 256];
        let [_, _, allreduce, _] = r.breakdown_secs(&batch);
        let bytes = 256.0 * 8192.0 * 2.0;
        let st = &Catalog::builtin().gpu("h100").unwrap().step_time;
        let per_call = 2.0 * st.allreduce_latency_us * 1e-6 + 1.5 * bytes / (450e9 * st.allreduce_efficiency);
        assert!((allreduce - 160.0 * per_call).abs() < 1e-12, "{allreduce}");
    }

    #[test]
    fn moe_reads_only_the_experts_a_small_batch_touches() {
        let r = roofline("mixtral-8x7b", "h100", 2);
        let one = r.breakdown_secs(&[SeqWork { query_tokens: 1, cached_tokens: 0 }])[0];
        let many = r.breakdown_secs(&vec![SeqWork { query_tokens: 1, cached_tokens: 0 }; 64])[0];
        // One token touches 2 of 8 experts; 64 tokens touch nearly all of them.
        assert!(many / one > 2.5 && many / one < 4.0, "{}", many / one);
    }

    /// Expert reads are priced at the MoE bandwidth efficiency, dense reads at the weights' one.
    #[test]
    fn moe_bandwidth_efficiency_prices_only_the_expert_reads() {
        let c = Catalog::builtin();
        let (model, gpu) = (c.model("mixtral-8x7b").unwrap(), c.gpu("a100-80gb").unwrap());
        let decode = [SeqWork { query_tokens: 1, cached_tokens: 0 }];
        let linear = |moe: Option<f64>| {
            let mut gpu = gpu.clone();
            gpu.step_time.moe_bandwidth_efficiency = moe;
            Roofline::new(model, &gpu, Quant::Bf16, KvDtype::Auto, 1, ServingOptions::default()).breakdown_secs(&decode)
                [0]
        };
        let bw = gpu.step_time.bandwidth_efficiency;
        let (same, half) = (linear(None), linear(Some(bw / 2.0)));
        assert_eq!(linear(Some(bw)), same);
        // Halving the expert efficiency doubles the expert share: more than the dense share
        // (2 of 8 experts of Mixtral's 45B outweigh its ~1.6B dense weights), less than 2x.
        assert!(half / same > 1.5 && half / same < 2.0, "{}", half / same);
    }

    #[test]
    fn expected_max_of_binomials_matches_closed_forms() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // One rank: the binomial mean.
        assert!(close(expected_max_of_binomials(8, 0.3, 1), 2.4));
        // One expert per rank: the max of Bernoullis is 1 unless all miss.
        assert!(close(expected_max_of_binomials(1, 0.25, 2), 1.0 - 0.75f64.powi(2)));
        // Two experts, two ranks, p = 1/2: the max is 2 unless both ranks have < 2 (P = 9/16),
        // and >= 1 unless both have 0 (P = 1/16): 7/16 + 15/16.
        assert!(close(expected_max_of_binomials(2, 0.5, 2), 22.0 / 16.0));
        assert!(close(expected_max_of_binomials(4, 1.0, 8), 4.0));
        assert!(close(expected_max_of_binomials(4, 0.0, 8), 0.0));
    }

    /// Under expert parallelism a small batch waits for the rank with the most touched experts;
    /// a batch that touches every expert reads the same bytes per rank either way.
    #[test]
    fn expert_parallelism_costs_the_busiest_rank() {
        let c = Catalog::builtin();
        let (model, gpu) = (c.model("mixtral-8x7b").unwrap(), c.gpu("h100").unwrap());
        let linear = |ep: bool, tokens: usize| {
            let batch = vec![SeqWork { query_tokens: 1, cached_tokens: 0 }; tokens];
            Roofline::new(
                model,
                gpu,
                Quant::Bf16,
                KvDtype::Auto,
                2,
                ServingOptions { expert_parallel: ep, ..Default::default() },
            )
            .breakdown_secs(&batch)[0]
        };
        assert!(linear(true, 1) > 1.2 * linear(false, 1), "{} vs {}", linear(true, 1), linear(false, 1));
        assert!(linear(true, 8) > linear(false, 8));
        let (ep, tp) = (linear(true, 200), linear(false, 200));
        assert!((ep - tp).abs() < 1e-9 * tp, "{ep} vs {tp}");
        // A dense model ignores the flag.
        let dense = c.model("llama-2-7b").unwrap();
        let one = [SeqWork { query_tokens: 1, cached_tokens: 0 }];
        let r = |ep| {
            Roofline::new(
                dense,
                gpu,
                Quant::Bf16,
                KvDtype::Auto,
                2,
                ServingOptions { expert_parallel: ep, ..Default::default() },
            )
            .breakdown_secs(&one)
        };
        assert_eq!(r(true), r(false));
    }

    /// A model whose generation_config sets top-p sorts every sequence's logits: vocabulary x
    /// the GPU's time per logit, per sequence; off with vLLM's neutral defaults, and never for
    /// a model that sets no filter.
    #[test]
    fn sorting_logits_costs_the_vocabulary_per_sequence() {
        let c = Catalog::builtin();
        let gpu = c.gpu("h100").unwrap();
        let batch = vec![SeqWork { query_tokens: 1, cached_tokens: 100 }; 32];
        let overhead = |model: &str, defaults: bool| {
            Roofline::new(
                c.model(model).unwrap(),
                gpu,
                Quant::Bf16,
                KvDtype::Auto,
                1,
                ServingOptions { model_sampling_defaults: defaults, ..Default::default() },
            )
            .breakdown_secs(&batch)[3]
        };
        let expected = 32.0 * 128_256.0 * gpu.step_time.sampling_sort_ns_per_logit * 1e-9;
        assert!(expected > 0.0);
        let sorted = overhead("llama-3.1-8b", true) - overhead("llama-3.1-8b", false);
        assert!((sorted - expected).abs() < 1e-12, "{sorted} vs {expected}");
        assert_eq!(overhead("mistral-7b", true), overhead("mistral-7b", false));
    }

    #[test]
    fn constant_model_is_exact() {
        let m = ConstantStepTime { per_step: Nanos(1000), per_token: Nanos(10) };
        let batch = [SeqWork { query_tokens: 5, cached_tokens: 0 }, SeqWork { query_tokens: 1, cached_tokens: 9 }];
        assert_eq!(m.step_time(&batch), Nanos(1060));
    }
}
