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

use std::collections::VecDeque;

use super::kv_cache::KvCache;
use super::request::{RequestSlab, Status};

/// The scheduler's limits, under vLLM's flag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    pub max_num_batched_tokens: u32,
    pub max_num_seqs: u32,
    pub max_model_len: u32,
    pub enable_chunked_prefill: bool,
    /// 0 disables the cap (vLLM's default).
    pub long_prefill_token_threshold: u32,
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
}

impl Scheduler {
    pub fn new(config: SchedulerConfig) -> Scheduler {
        Scheduler {
            config,
            waiting: VecDeque::new(),
            running: Vec::new(),
            hits: Vec::new(),
        }
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
        debug_assert!(
            plan.total_tokens() <= self.config.max_num_batched_tokens,
            "token budget exceeded"
        );
        debug_assert!(
            self.running.len() <= self.config.max_num_seqs as usize,
            "max_num_seqs exceeded"
        );
    }

    fn capped(&self, wanted: u32, computed: u32, budget: u32) -> u32 {
        let mut tokens = wanted;
        if self.config.long_prefill_token_threshold > 0 {
            tokens = tokens.min(self.config.long_prefill_token_threshold);
        }
        tokens
            .min(budget)
            .min((self.config.max_model_len - 1).saturating_sub(computed))
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
            let tokens = self.capped(
                request.num_tokens() - request.num_computed,
                request.num_computed,
                *budget,
            );
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
            plan.scheduled.push(Scheduled {
                id,
                tokens,
                computed_before: request.num_computed,
            });
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
            let pos = plan
                .scheduled
                .iter()
                .position(|s| s.id == victim)
                .expect("scheduled victim in plan");
            *budget += plan.scheduled.remove(pos).tokens;
            request.scheduled_this_step = false;
        }
        kv.free(&mut request.kv);
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
        while let Some(&id) = self.waiting.front() {
            if *budget == 0 || self.running.len() >= self.config.max_num_seqs as usize {
                break;
            }
            let request = requests.get_mut(id);
            let hit_tokens = if request.num_computed == 0 {
                kv.find_cached_prefix(request, &mut self.hits)
            } else {
                0
            };
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
            if request.num_preemptions == 0 {
                request.cached_prompt_tokens = hit_tokens;
            } else {
                request.recomputed_tokens =
                    request.recomputed_tokens.saturating_sub(hit_tokens as u64);
            }
            request.num_computed = computed;
            request.status = Status::Running;
            request.scheduled_this_step = true;
            self.running.push(id);
            plan.scheduled.push(Scheduled {
                id,
                tokens,
                computed_before: computed,
            });
            plan.admitted += 1;
            *budget -= tokens;
        }
    }
}
