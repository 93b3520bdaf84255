//! vLLM V1 step planning (`Scheduler.schedule()` in `vllm/v1/core/sched/scheduler.py`).
//!
//! One step: the token budget is `max_num_batched_tokens`. Running requests go first, in
//! admission order, each asking for what it still lacks (1 token for a decode, a chunk for an
//! unfinished prefill), capped by `long_prefill_token_threshold`, the remaining budget and
//! `max_model_len - 1 - computed`. When a running request cannot get KV blocks, the most
//! recently admitted running request is preempted (its blocks freed, it goes to the front of
//! the waiting queue and will recompute) until the allocation succeeds or the request itself
//! is the victim. Waiting requests are admitted next, in FCFS order, only if nothing was
//! preempted in this step, while budget, `max_num_seqs` and KV blocks allow; the first that
//! does not fit blocks those behind it (head-of-line blocking).
//!
//! Disaggregated serving: a waiting request whose prompt KV lives on a prefill replica
//! (`RemoteKv::Pending`) takes blocks for its whole prompt and no token budget, and leaves the
//! queue to wait for the read (vLLM's `schedule()` with `load_kv_async`: status
//! `WAITING_FOR_REMOTE_KVS`, `num_new_tokens = 0`); it still needs the free blocks, and when
//! they are missing it blocks the queue like any request.

use std::collections::VecDeque;

use super::kv_cache::KvCache;
use super::offload::{Loading, Offload};
use super::request::{RemoteKv, RequestSlab, Status};
use crate::sim::SimTime;

/// The scheduler's limits, under vLLM's flag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub max_num_batched_tokens: u32,
    pub max_num_seqs: u32,
    pub max_model_len: u32,
    pub enable_chunked_prefill: bool,
    /// 0 disables the cap (vLLM's default).
    pub long_prefill_token_threshold: u32,
    /// vLLM's `async_scheduling`: step N+1 is planned when step N starts; the replica holds
    /// back requests that arrive during a step for one more step (see `Replica::admit`).
    pub async_scheduling: bool,
}

/// One scheduled request in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub id: u32,
    pub tokens: u32,
    /// Tokens already computed before this step (prefix hits included).
    pub computed_before: u32,
}

/// What one step runs. Reused from step to step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepPlan {
    pub scheduled: Vec<Scheduled>,
    pub preempted: u32,
    pub admitted: u32,
}

impl StepPlan {
    pub fn total_tokens(&self) -> u32 {
        self.scheduled.iter().map(|s| s.tokens).sum()
    }
}

/// The waiting queue and the running list of one replica.
#[derive(Debug)]
pub struct Scheduler {
    pub config: SchedulerConfig,
    pub waiting: VecDeque<u32>,
    pub running: Vec<u32>,
    hits: Vec<u32>,
    /// Remote loads started by the last plan: (request, blocks allocated for the prompt).
    pub receiving_started: Vec<(u32, u32)>,
    /// CPU KV offload (vLLM's OffloadingConnector), when the case has a CPU tier.
    pub offload: Option<Box<Offload>>,
    /// When the step being planned starts: loads finished by then are picked up, and loads
    /// and stores are timed from it. Only the offload path reads it.
    pub now: SimTime,
    loaded: Vec<Loading>,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig) -> Scheduler {
        Scheduler {
            config,
            waiting: VecDeque::new(),
            running: Vec::new(),
            hits: Vec::new(),
            receiving_started: Vec::new(),
            offload: None,
            now: SimTime::ZERO,
            loaded: Vec::new(),
        }
    }

    /// Requests waiting for loads from the CPU tier.
    pub fn loading(&self) -> usize {
        self.offload.as_ref().map_or(0, |o| o.loading.len())
    }

    pub fn add(&mut self, id: u32) {
        self.waiting.push_back(id);
    }

    /// Builds the next step into `plan`, allocating KV blocks and advancing each scheduled
    /// request's computed tokens (vLLM `_update_after_schedule`).
    pub fn schedule(&mut self, requests: &mut RequestSlab, kv: &mut KvCache, plan: &mut StepPlan) {
        plan.scheduled.clear();
        plan.preempted = 0;
        plan.admitted = 0;
        let mut budget = self.config.max_num_batched_tokens;
        self.schedule_running(requests, kv, plan, &mut budget);
        if plan.preempted == 0 {
            self.schedule_waiting(requests, kv, plan, &mut budget);
        }
        for s in &plan.scheduled {
            let request = requests.get_mut(s.id);
            request.num_computed += s.tokens;
            request.scheduled_this_step = false;
        }
        debug_assert!(plan.total_tokens() <= self.config.max_num_batched_tokens, "token budget exceeded");
        debug_assert!(self.running.len() <= self.config.max_num_seqs as usize, "max_num_seqs exceeded");
    }

    /// The admission pass alone, for a step whose running requests the replica's decode fast
    /// path plans itself (one token each, `budget` tokens left): `schedule` without
    /// `schedule_running`, `plan` holding only the admitted requests.
    pub fn schedule_admissions(
        &mut self,
        requests: &mut RequestSlab,
        kv: &mut KvCache,
        plan: &mut StepPlan,
        mut budget: u32,
    ) {
        plan.scheduled.clear();
        plan.preempted = 0;
        plan.admitted = 0;
        self.schedule_waiting(requests, kv, plan, &mut budget);
        for s in &plan.scheduled {
            let request = requests.get_mut(s.id);
            request.num_computed += s.tokens;
            request.scheduled_this_step = false;
        }
    }

    fn capped(&self, wanted: u32, computed: u32, budget: u32) -> u32 {
        let mut tokens = wanted;
        if self.config.long_prefill_token_threshold > 0 {
            tokens = tokens.min(self.config.long_prefill_token_threshold);
        }
        tokens.min(budget).min((self.config.max_model_len - 1).saturating_sub(computed))
    }

    fn schedule_running(
        &mut self,
        requests: &mut RequestSlab,
        kv: &mut KvCache,
        plan: &mut StepPlan,
        budget: &mut u32,
    ) {
        let mut index = 0;
        while index < self.running.len() && *budget > 0 {
            let id = self.running[index];
            let request = requests.get(id);
            let tokens = self.capped(request.num_tokens() - request.num_computed, request.num_computed, *budget);
            if tokens == 0 {
                index += 1;
                continue;
            }
            let mut scheduled = true;
            while !kv.allocate_slots(requests.get_mut(id), tokens, &[], self.config.max_model_len) {
                let victim = self.running.pop().expect("the request itself is running");
                self.preempt(victim, requests, kv, plan, budget);
                if victim == id {
                    scheduled = false;
                    break;
                }
            }
            if !scheduled {
                break;
            }
            let request = requests.get_mut(id);
            request.scheduled_this_step = true;
            plan.scheduled.push(Scheduled { id, tokens, computed_before: request.num_computed });
            *budget -= tokens;
            index += 1;
        }
    }

    /// vLLM `_preempt_request`: free the blocks, forget the computed tokens, go to the front
    /// of the waiting queue. A victim already scheduled in this step gives its tokens back.
    fn preempt(
        &mut self,
        victim: u32,
        requests: &mut RequestSlab,
        kv: &mut KvCache,
        plan: &mut StepPlan,
        budget: &mut u32,
    ) {
        let request = requests.get_mut(victim);
        if request.scheduled_this_step {
            let pos = plan.scheduled.iter().position(|s| s.id == victim).expect("scheduled victim in plan");
            *budget += plan.scheduled.remove(pos).tokens;
            request.scheduled_this_step = false;
        }
        kv.preempt(request);
        request.recomputed_tokens += request.num_computed as u64;
        request.num_computed = 0;
        request.num_preemptions += 1;
        request.status = Status::Waiting;
        self.waiting.push_front(victim);
        plan.preempted += 1;
    }

    fn schedule_waiting(
        &mut self,
        requests: &mut RequestSlab,
        kv: &mut KvCache,
        plan: &mut StepPlan,
        budget: &mut u32,
    ) {
        if self.offload.is_some() {
            self.release_loaded(requests, kv);
        }
        while let Some(&id) = self.waiting.front() {
            if *budget == 0 || self.running.len() >= self.config.max_num_seqs as usize {
                break;
            }
            let request = requests.get_mut(id);
            if let RemoteKv::Pending { prefill, parked, since } = request.remote {
                // The decode side reads every prompt block from the prefill side (its own
                // prefix cache is not consulted: see docs/disaggregation.md).
                let prompt = request.prompt_tokens;
                if !kv.allocate_for_load(request, prompt, &[], self.config.max_model_len) {
                    break;
                }
                self.waiting.pop_front();
                request.remote = RemoteKv::Receiving { prefill, parked, since };
                self.receiving_started.push((id, request.kv.blocks.len() as u32));
                continue;
            }
            let fresh = request.num_computed == 0;
            let hit_tokens = if fresh { kv.find_cached_prefix(request, &mut self.hits) } else { 0 };
            if !fresh {
                // A request back from a CPU-tier load, or whose prompt KV arrived from a prefill
                // replica, gets here with tokens computed: no lookup, and the hits of an earlier
                // one are not its own.
                self.hits.clear();
            }
            if fresh && self.offload.is_some() {
                match self.try_load(id, requests, kv, hit_tokens) {
                    LoadStart::Started => continue,
                    LoadStart::NoRoom => break,
                    LoadStart::NotInCpu => {}
                }
            }
            let request = requests.get_mut(id);
            let computed = request.num_computed + hit_tokens;
            let mut tokens = request.num_tokens() - computed;
            if self.config.long_prefill_token_threshold > 0 {
                tokens = tokens.min(self.config.long_prefill_token_threshold);
            }
            if !self.config.enable_chunked_prefill && tokens > *budget {
                break;
            }
            tokens = tokens.min(*budget);
            if !kv.allocate_slots(request, tokens, &self.hits, self.config.max_model_len) {
                break;
            }
            self.waiting.pop_front();
            if !fresh {
                // Loaded from the CPU tier: `release_loaded` counted its hits.
            } else if request.num_preemptions == 0 {
                request.cached_prompt_tokens = hit_tokens;
            } else {
                request.recomputed_tokens = request.recomputed_tokens.saturating_sub(hit_tokens as u64);
            }
            if fresh {
                if let Some(offload) = &mut self.offload {
                    let stats = &mut offload.tier.stats;
                    stats.gpu_hit_tokens += hit_tokens as u64;
                    stats.miss_tokens += (request.num_tokens() - hit_tokens) as u64;
                }
            }
            request.num_computed = computed;
            request.status = Status::Running;
            request.scheduled_this_step = true;
            self.running.push(id);
            plan.scheduled.push(Scheduled { id, tokens, computed_before: computed });
            plan.admitted += 1;
            *budget -= tokens;
        }
    }
}

/// What `Scheduler::try_load` did with the request at the head of the waiting queue.
enum LoadStart {
    /// Its blocks are allocated and their load from the CPU tier started.
    Started,
    /// The CPU tier has blocks for it but the GPU has no room for them: it waits.
    NoRoom,
    /// No CPU blocks extend its GPU hit: it is scheduled as usual.
    NotInCpu,
}

impl Scheduler {
    /// The OffloadingConnector's path for a waiting request (vLLM `Scheduler.schedule`, the
    /// `load_kv_async` branch): when CPU blocks extend its GPU prefix hit, allocate GPU blocks
    /// for both (the loaded ones not yet cached), start the load and move the request aside
    /// until it is done, taking no token budget in this step.
    fn try_load(&mut self, id: u32, requests: &mut RequestSlab, kv: &mut KvCache, hit_tokens: u32) -> LoadStart {
        let offload = self.offload.as_mut().expect("offload on");
        let block_size = kv.block_size();
        let gpu_blocks = hit_tokens / block_size;
        let request = requests.get_mut(id);
        let cpu_blocks = offload.lookup(request, gpu_blocks as usize, block_size, self.now) as u32;
        if cpu_blocks == 0 {
            return LoadStart::NotInCpu;
        }
        let load_tokens = cpu_blocks * block_size;
        if !kv.allocate_for_load(request, load_tokens, &self.hits, self.config.max_model_len) {
            return LoadStart::NoRoom;
        }
        self.waiting.pop_front();
        // `_update_waiting_for_remote_kv`: a load that covers every token leaves the last one
        // to compute.
        let computed = (hit_tokens + load_tokens).min(request.num_tokens() - 1);
        let stats = &mut offload.tier.stats;
        stats.gpu_hit_tokens += hit_tokens as u64;
        stats.cpu_hit_tokens += (computed - hit_tokens) as u64;
        stats.miss_tokens += (request.num_tokens() - computed) as u64;
        if request.num_preemptions == 0 {
            request.cached_prompt_tokens = computed;
        } else {
            request.recomputed_tokens = request.recomputed_tokens.saturating_sub(computed as u64);
        }
        offload.start_load(id, request, gpu_blocks, cpu_blocks, computed, self.now);
        LoadStart::Started
    }

    /// Requests whose loads are done by `now` go back to the front of the waiting queue, in
    /// the order they were admitted (vLLM keeps them there, skipped, while they load), with
    /// their loaded blocks registered in the prefix cache and their computed tokens set.
    fn release_loaded(&mut self, requests: &mut RequestSlab, kv: &mut KvCache) {
        let offload = self.offload.as_mut().expect("offload on");
        offload.take_ready(self.now, &mut self.loaded, requests);
        for l in self.loaded.iter().rev() {
            let request = requests.get_mut(l.id);
            request.num_computed = l.computed;
            kv.cache_loaded(request, l.computed);
            self.waiting.push_front(l.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serving::request::Request;
    use crate::sim::SimTime;
    use crate::workload::{RequestSpec, Segment};

    struct Bench {
        scheduler: Scheduler,
        requests: RequestSlab,
        kv: KvCache,
        plan: StepPlan,
    }

    fn config(budget: u32, seqs: u32) -> SchedulerConfig {
        SchedulerConfig {
            max_num_batched_tokens: budget,
            max_num_seqs: seqs,
            max_model_len: 4096,
            enable_chunked_prefill: true,
            long_prefill_token_threshold: 0,
            async_scheduling: false,
        }
    }

    impl Bench {
        fn new(config: SchedulerConfig, blocks: u32) -> Bench {
            Bench {
                scheduler: Scheduler::new(config),
                requests: RequestSlab::default(),
                kv: KvCache::new(blocks, 16, true),
                plan: StepPlan::default(),
            }
        }

        /// Adds a request with a unique prompt of `prompt` tokens and `output` output tokens.
        fn add(&mut self, prompt: u32, output: u32) -> u32 {
            self.add_segments(vec![Segment { id: 1000 + self.requests.live() as u64, len: prompt }], output)
        }

        fn add_segments(&mut self, segments: Vec<Segment>, output: u32) -> u32 {
            let prompt_tokens = segments.iter().map(|s| s.len).sum();
            let index = self.requests.live() as u64;
            let spec = RequestSpec {
                index,
                arrival: SimTime::ZERO,
                prompt_tokens,
                output_tokens: output,
                segments,
                output_segment: 5000 + index,
                client: None,
                session: None,
                private_from: RequestSpec::SHARED,
            };
            let id = self.requests.insert(Request::new(index, spec));
            self.scheduler.add(id);
            id
        }

        /// Plans a step and returns its composition as (request, tokens).
        fn step(&mut self) -> Vec<(u32, u32)> {
            self.scheduler.schedule(&mut self.requests, &mut self.kv, &mut self.plan);
            let composition = self.plan.scheduled.iter().map(|s| (s.id, s.tokens)).collect();
            // What the replica does at the end of the step: a request whose computed tokens
            // reached its end samples one token.
            for s in &self.plan.scheduled {
                let r = self.requests.get_mut(s.id);
                if r.num_computed == r.num_tokens() {
                    r.output_tokens += 1;
                }
            }
            self.kv.check_invariants();
            composition
        }
    }

    #[test]
    fn running_requests_go_first_and_new_prompts_take_the_rest_of_the_budget() {
        let mut b = Bench::new(config(250, 16), 100);
        let (x, y, z) = (b.add(100, 5), b.add(100, 5), b.add(100, 5));
        // Step 1: admissions in FCFS order; the third gets only the 50 tokens left (a chunk).
        assert_eq!(b.step(), vec![(x, 100), (y, 100), (z, 50)]);
        // Step 2: running first: x and y decode 1 token each, z continues its prefill.
        assert_eq!(b.step(), vec![(x, 1), (y, 1), (z, 50)]);
        assert_eq!(b.step(), vec![(x, 1), (y, 1), (z, 1)]);
    }

    #[test]
    fn a_new_request_arriving_mid_run_is_admitted_after_the_running_ones() {
        let mut b = Bench::new(config(64, 16), 100);
        let x = b.add(40, 3);
        assert_eq!(b.step(), vec![(x, 40)]);
        let y = b.add(100, 3);
        // x decodes (1 token), y takes the remaining 63 tokens as a first chunk.
        assert_eq!(b.step(), vec![(x, 1), (y, 63)]);
        assert_eq!(b.step(), vec![(x, 1), (y, 37)]);
    }

    #[test]
    fn long_prefill_token_threshold_caps_each_chunk() {
        let mut cfg = config(1000, 16);
        cfg.long_prefill_token_threshold = 128;
        let mut b = Bench::new(cfg, 200);
        let (x, y) = (b.add(300, 2), b.add(300, 2));
        assert_eq!(b.step(), vec![(x, 128), (y, 128)]);
        assert_eq!(b.step(), vec![(x, 128), (y, 128)]);
        assert_eq!(b.step(), vec![(x, 44), (y, 44)]);
        assert_eq!(b.step(), vec![(x, 1), (y, 1)]);
    }

    #[test]
    fn without_chunked_prefill_a_prompt_larger_than_the_budget_left_waits_and_blocks_the_queue() {
        let mut cfg = config(300, 16);
        cfg.enable_chunked_prefill = false;
        let mut b = Bench::new(cfg, 200);
        let (x, y, z) = (b.add(200, 3), b.add(200, 3), b.add(50, 3));
        // y does not fit in the 100 tokens left; z, which would fit, is behind it.
        assert_eq!(b.step(), vec![(x, 200)]);
        assert_eq!(b.step(), vec![(x, 1), (y, 200), (z, 50)]);
    }

    #[test]
    fn max_num_seqs_limits_admissions() {
        let mut b = Bench::new(config(1000, 2), 100);
        let (x, y, _z) = (b.add(10, 2), b.add(10, 2), b.add(10, 2));
        assert_eq!(b.step(), vec![(x, 10), (y, 10)]);
        assert_eq!(b.step(), vec![(x, 1), (y, 1)]);
        assert_eq!(b.scheduler.waiting.len(), 1);
    }

    #[test]
    fn head_of_line_blocking_on_kv_blocks() {
        // 6 usable blocks of 16 tokens.
        let mut b = Bench::new(config(1000, 16), 7);
        let x = b.add(64, 50); // 4 blocks
        let y = b.add(48, 2); // needs 3 blocks: does not fit beside x
        let _z = b.add(8, 2); // would fit in 1 block, but waits behind y
        assert_eq!(b.step(), vec![(x, 64)]);
        assert_eq!(b.scheduler.waiting.iter().copied().collect::<Vec<_>>(), vec![y, _z]);
        assert_eq!(b.step(), vec![(x, 1)]);
    }

    #[test]
    fn kv_exhaustion_preempts_the_latest_admitted_and_blocks_admission_in_that_step() {
        // 4 usable blocks: x and y take 2 each (32 tokens = exactly 2 full blocks).
        let mut b = Bench::new(config(1000, 16), 5);
        let (x, y) = (b.add(32, 10), b.add(32, 10));
        assert_eq!(b.step(), vec![(x, 32), (y, 32)]);
        let w = b.add(4, 2);
        // Both decodes need a third block; x gets none free, so y (admitted last) is
        // preempted; x then takes a freed block. Nothing is admitted in this step.
        assert_eq!(b.step(), vec![(x, 1)]);
        assert_eq!(b.plan.preempted, 1);
        assert_eq!(b.scheduler.running, vec![x]);
        // The victim goes to the front of the queue, ahead of the newer w.
        assert_eq!(b.scheduler.waiting.iter().copied().collect::<Vec<_>>(), vec![y, w]);
        let victim = b.requests.get(y);
        assert_eq!((victim.num_computed, victim.num_preemptions, victim.output_tokens), (0, 1, 1));
        // Next step: y's freed tail block went to x, so only y's first block is still cached:
        // resuming 33 tokens needs 1 hit + 2 new blocks with 1 free. y keeps waiting.
        assert_eq!(b.step(), vec![(x, 1)]);
        assert_eq!(b.scheduler.waiting.front(), Some(&y));
        assert_eq!(b.kv.stats.hits, 16);
    }

    #[test]
    fn a_request_that_would_preempt_itself_stops_the_running_loop() {
        // 2 usable blocks; one request fills both, then needs a third for its next token.
        let mut b = Bench::new(config(1000, 16), 3);
        let x = b.add(32, 10);
        assert_eq!(b.step(), vec![(x, 32)]);
        assert_eq!(b.step(), vec![]);
        assert_eq!(b.plan.preempted, 1);
        assert_eq!(b.scheduler.waiting.front(), Some(&x));
    }

    #[test]
    fn a_shared_prefix_is_computed_once() {
        let mut b = Bench::new(config(1000, 16), 100);
        let system = Segment { id: 42, len: 64 };
        let x = b.add_segments(vec![system, Segment { id: 1, len: 20 }], 3);
        assert_eq!(b.step(), vec![(x, 84)]);
        let y = b.add_segments(vec![system, Segment { id: 2, len: 20 }], 3);
        // y hits the 4 cached blocks of the system prompt and computes only its own 20 tokens.
        assert_eq!(b.step(), vec![(x, 1), (y, 20)]);
        assert_eq!(b.requests.get(y).cached_prompt_tokens, 64);
        assert_eq!(b.kv.stats.hits, 64);
    }

    #[test]
    fn max_model_len_caps_the_tokens_a_request_may_compute() {
        let mut cfg = config(1000, 16);
        cfg.max_model_len = 50;
        let mut b = Bench::new(cfg, 100);
        let x = b.add(45, 100);
        assert_eq!(b.step(), vec![(x, 45)]);
        for _ in 0..4 {
            assert_eq!(b.step(), vec![(x, 1)]);
        }
        // 49 computed, 50 tokens: at most max_model_len - 1 tokens are ever computed, so the
        // request gets nothing more (the replica finishes it as length-capped).
        assert_eq!(b.requests.get(x).num_computed, 49);
        assert_eq!(b.step(), vec![]);
    }
}
