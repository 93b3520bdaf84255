//! What serves: requests, the vLLM V1 scheduler, the paged KV cache and the replica that
//! runs steps. Serving code never reads files and never advances time itself.

pub mod admission;
pub mod autoscaler;
pub mod cpu_tier;
pub mod fleet_index;
pub mod kv_cache;
pub mod offload;
pub mod replica;
pub mod request;
pub mod router;
pub mod scaled_fleet;
pub mod scheduler;
pub mod static_engine;

use kv_cache::PrefixStats;
use replica::{Finished, Rejection, Replica};
use request::Request;
use static_engine::StaticEngine;

use crate::hardware::memory::StaticMemory;
use crate::report::metrics::Metrics;
use crate::sim::{Nanos, SimTime};

/// One replica's engine: vLLM's continuous batching, or static `generate` batches.
// One engine per replica, held in a Vec for the whole run: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    Vllm(Replica),
    Static(StaticEngine),
}

impl Engine {
    pub fn admit(&mut self, request: Request) -> Result<(), Rejection> {
        match self {
            Engine::Vllm(r) => r.admit(request),
            Engine::Static(s) => s.admit(request),
        }
    }

    /// Starts a step if there is work; `Err` when a static batch does not fit in memory.
    pub fn start_step(&mut self, now: SimTime, metrics: &mut Metrics) -> Result<Option<Nanos>, Box<StaticMemory>> {
        match self {
            Engine::Vllm(r) => Ok(r.start_step(now, metrics)),
            Engine::Static(s) => s.start_step(now, metrics),
        }
    }

    pub fn finish_step(&mut self, now: SimTime, metrics: &mut Metrics, finished: &mut Vec<Finished>) {
        match self {
            Engine::Vllm(r) => r.finish_step(now, metrics, finished),
            Engine::Static(s) => s.finish_step(now, metrics, finished),
        }
    }

    /// Brings the requests of a fast-path run up to date (at the end of a run).
    pub fn settle(&mut self) {
        if let Engine::Vllm(r) = self {
            r.settle();
        }
    }

    pub fn is_busy(&self) -> bool {
        match self {
            Engine::Vllm(r) => r.is_busy(),
            Engine::Static(s) => s.is_busy(),
        }
    }

    /// Requests queued or running here.
    pub fn outstanding(&self) -> usize {
        match self {
            Engine::Vllm(r) => r.outstanding(),
            Engine::Static(s) => s.outstanding(),
        }
    }

    pub fn waiting(&self) -> usize {
        match self {
            Engine::Vllm(r) => r.scheduler.waiting.len() + r.scheduler.loading(),
            Engine::Static(s) => s.waiting(),
        }
    }

    /// KV usage as vLLM reports it (static: the share of memory the batch reserves).
    pub fn kv_usage(&self) -> f64 {
        match self {
            Engine::Vllm(r) => r.kv.usage(),
            Engine::Static(s) => s.usage(),
        }
    }

    pub fn cached_prefix_blocks(&self, hashes: &[u64]) -> usize {
        match self {
            Engine::Vllm(r) => r.kv.cached_prefix_blocks(hashes),
            Engine::Static(_) => 0,
        }
    }

    /// vLLM's length refusal of `request`, which every replica of a fleet applies alike (the
    /// static engine refuses nothing at the door).
    pub fn length_rejection(&self, request: &request::Request) -> Option<replica::Rejection> {
        match self {
            Engine::Vllm(r) => admission::check_length(
                r.door,
                request.prompt_tokens,
                request.max_output_tokens,
                r.scheduler.config.max_model_len,
            )
            .err(),
            Engine::Static(_) => None,
        }
    }

    /// The end-of-run check of the KV block books (the static engine keeps none).
    pub fn check_accounting(&self) -> Result<(), String> {
        match self {
            Engine::Vllm(r) => r.kv.check_accounting(),
            Engine::Static(_) => Ok(()),
        }
    }

    /// When an idle engine must look for work again by itself (a CPU-tier load finishing).
    pub fn next_wake(&self) -> Option<SimTime> {
        match self {
            Engine::Vllm(r) => r.next_wake(),
            Engine::Static(_) => None,
        }
    }

    /// The CPU tier's counters, when the engine has one.
    pub fn tier_stats(&self) -> Option<cpu_tier::TierStats> {
        match self {
            Engine::Vllm(r) => r.scheduler.offload.as_ref().map(|o| o.tier.stats),
            Engine::Static(_) => None,
        }
    }

    pub fn prefix_stats(&self) -> PrefixStats {
        match self {
            Engine::Vllm(r) => r.kv.stats,
            Engine::Static(_) => PrefixStats::default(),
        }
    }
}
