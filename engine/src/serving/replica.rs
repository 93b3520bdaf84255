//! One engine instance: a scheduler, a KV cache and a step-time model. The loop asks it to
//! start a step (it plans the batch and prices it) and to finish one (it emits tokens, retires
//! finished requests and frees their blocks). One event per step, never per token. While
//! every running request decodes one token per step, both go through the decode run
//! (`decode_run`), which does the same in O(requests that reach a block boundary, are
//! admitted or finish) instead of O(running requests).
//!
//! With `async_scheduling` (vLLM's `step_with_batch_queue` with a queue of two), the engine
//! plans step N+1 as soon as step N is launched, so a request that arrives while step N runs
//! is first considered for step N+2: it waits out the running step and the one already
//! planned. The replica models this by holding such requests back until the step after the
//! next has been planned; when the planned step would be empty (nothing else to run), vLLM
//! would not have queued it, and the held requests are scheduled at once.

mod decode_run;

use std::sync::Arc;

use decode_run::DecodeRun;

use super::admission::{check_length, FrontDoor};
use super::kv_cache::KvCache;
use super::request::{KvState, RemoteKv, Request, RequestSlab, Status};
use super::scheduler::{Scheduler, SchedulerConfig, StepPlan};
use crate::hardware::{SeqWork, StepTimeModel};
use crate::report::metrics::{Metrics, RequestRecord};
use crate::sim::{Nanos, SimTime};
use crate::workload::Segment;

/// Why a request was refused at the door; the message is vLLM's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
}

/// A request that finished in this step, for closed-loop clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The request's index in the workload.
    pub index: u64,
    pub client: Option<u32>,
    pub session: Option<u32>,
    /// The generated tokens, which a multi-turn session quotes in its next prompt.
    pub output: Segment,
}

impl Finished {
    /// What the fleet needs of a request that just finished.
    pub fn of(request: &Request) -> Finished {
        Finished {
            index: request.seq_no,
            client: request.client,
            session: request.session,
            output: Segment { id: request.output_segment, len: request.output_tokens },
        }
    }
}

/// A prefill request that finished on a prefill replica (disaggregated serving): its decode
/// copy, which the proxy routes to a decode replica; its blocks stay parked here.
#[derive(Debug)]
pub struct Handoff {
    pub request: Request,
}

/// A remote read a decode replica started: request `id` there, `blocks` blocks, from slot
/// `parked` of prefill replica `prefill`, for a request that reached this replica at `since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferStart {
    pub id: u32,
    pub blocks: u32,
    pub prefill: u32,
    pub parked: u32,
    pub since: SimTime,
}

pub struct Replica {
    pub index: u32,
    pub scheduler: Scheduler,
    pub kv: KvCache,
    pub requests: RequestSlab,
    step_time: Arc<dyn StepTimeModel>,
    plan: StepPlan,
    work: Vec<SeqWork>,
    busy: bool,
    step_started: SimTime,
    /// Requests that arrived during the running step (async scheduling only), in order.
    held: Vec<u32>,
    /// Requests accepted so far and finished so far, for conservation checks.
    pub accepted: u64,
    pub finished: u64,
    /// Which front door's length checks apply (`admission`).
    pub door: FrontDoor,
    /// Runs of pure-decode steps take the fast path (`decode_run`); off, every step is
    /// planned by the scheduler (`Limits::step_by_step`). The results are the same.
    pub fast_path: bool,
    run: DecodeRun,
    /// Disaggregated prefill: blocks of finished prefill requests held until the decode side
    /// has read them, in reused slots.
    parked: Vec<Option<KvState>>,
    parked_free: Vec<u32>,
    /// Finished prefill requests' decode copies, for the loop to take after a step.
    pub handoffs: Vec<Handoff>,
    /// Disaggregated decode: requests whose KV read is in flight (neither waiting nor running).
    receiving: usize,
    /// Positions in the running list of the requests being retired (a buffer kept between
    /// steps).
    retiring: Vec<usize>,
}

impl Replica {
    pub fn new(index: u32, config: SchedulerConfig, kv: KvCache, step_time: Arc<dyn StepTimeModel>) -> Replica {
        Replica {
            index,
            scheduler: Scheduler::new(config),
            kv,
            requests: RequestSlab::default(),
            step_time,
            plan: StepPlan::default(),
            work: Vec::new(),
            busy: false,
            step_started: SimTime::ZERO,
            held: Vec::new(),
            accepted: 0,
            finished: 0,
            door: FrontDoor::default(),
            fast_path: true,
            run: DecodeRun::default(),
            parked: Vec::new(),
            parked_free: Vec::new(),
            handoffs: Vec::new(),
            receiving: 0,
            retiring: Vec::new(),
        }
    }

    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Requests queued or running here.
    pub fn outstanding(&self) -> usize {
        self.requests.live()
    }

    /// Accepts a request into the waiting queue, or refuses it with vLLM's reason and message
    /// when it does not fit in `max_model_len` (the rules of its front door: `admission`).
    pub fn admit(&mut self, request: Request) -> Result<(), Rejection> {
        let max_model_len = self.scheduler.config.max_model_len;
        check_length(self.door, request.prompt_tokens, request.max_output_tokens, max_model_len)?;
        let id = self.requests.insert(request);
        if self.scheduler.config.async_scheduling && self.busy {
            self.held.push(id);
        } else {
            self.scheduler.add(id);
        }
        self.accepted += 1;
        Ok(())
    }

    /// Plans and prices the next step; `None` when there is nothing to run.
    pub fn start_step(&mut self, now: SimTime, metrics: &mut Metrics) -> Option<Nanos> {
        debug_assert!(!self.busy, "step started while one is running");
        if let Some(duration) = self.start_decode_step(now, metrics) {
            return Some(duration);
        }
        self.settle();
        self.scheduler.now = now;
        self.scheduler.schedule(&mut self.requests, &mut self.kv, &mut self.plan);
        if self.plan.scheduled.is_empty() && !self.held.is_empty() {
            self.release_held();
            self.scheduler.schedule(&mut self.requests, &mut self.kv, &mut self.plan);
        }
        // Requests held during the previous step become visible to the next plan.
        self.release_held();
        metrics.preemptions += self.plan.preempted as u64;
        if self.plan.scheduled.is_empty() {
            return None;
        }
        self.work.clear();
        for s in &self.plan.scheduled {
            self.work.push(SeqWork { query_tokens: s.tokens, cached_tokens: s.computed_before });
            let request = self.requests.get_mut(s.id);
            request.first_scheduled.get_or_insert(now);
        }
        let duration = self.step_time.step_time(&self.work);
        if let Some(offload) = &mut self.scheduler.offload {
            // Stores copy each step's newly full blocks once its forward pass ends.
            let block_size = self.kv.block_size();
            for s in &self.plan.scheduled {
                offload.store_step(self.requests.get_mut(s.id), block_size, now, now + duration);
            }
        }
        self.busy = true;
        self.step_started = now;
        metrics.on_step(
            now,
            self.index,
            duration,
            self.plan.total_tokens(),
            self.scheduler.running.len(),
            self.scheduler.waiting.len(),
            self.kv.usage(),
        );
        Some(duration)
    }

    fn release_held(&mut self) {
        for &id in &self.held {
            self.scheduler.add(id);
        }
        self.held.clear();
    }

    /// Completes the running step at `now`: requests whose computed tokens reached their end
    /// sample a token; those that hit their output length or `max_model_len` finish.
    pub fn finish_step(&mut self, now: SimTime, metrics: &mut Metrics, finished: &mut Vec<Finished>) {
        debug_assert!(self.busy, "finishing a step that was not started");
        self.busy = false;
        if self.run.is_open() {
            if self.finish_decode_step(now, metrics) {
                let finishing = self.run.take_finishing();
                self.retire_finished(now, metrics, finished, Some(&finishing));
                self.run.put_finishing(finishing);
            }
        } else if self.sample_scheduled(now, metrics) {
            self.retire_finished(now, metrics, finished, None);
        }
        self.check_invariants();
    }

    /// The requests of the plan whose computed tokens reached their end sample a token, and
    /// those that reach their output length or `max_model_len` are marked finished; true when
    /// any did.
    fn sample_scheduled(&mut self, now: SimTime, metrics: &mut Metrics) -> bool {
        let max_model_len = self.scheduler.config.max_model_len;
        let mut any_finished = false;
        // Equal gaps in a row (every request that ran in the previous step too) are recorded
        // as one value with a count.
        let mut gaps = (Nanos::ZERO, 0u64);
        for s in &self.plan.scheduled {
            let request = self.requests.get_mut(s.id);
            if request.num_computed < request.num_tokens() {
                continue; // an intermediate prefill chunk samples nothing
            }
            request.output_tokens += 1;
            match request.last_token {
                None => request.first_token = Some(now),
                Some(last) => {
                    let gap = now.since(last);
                    metrics.record_itl_detail(request.seq_no, gap);
                    if gap != gaps.0 {
                        metrics.record_itl_n(gaps.0, gaps.1);
                        gaps = (gap, 0);
                    }
                    gaps.1 += 1;
                }
            }
            request.last_token = Some(now);
            if request.output_tokens >= request.max_output_tokens || request.num_tokens() >= max_model_len {
                request.status = Status::Finished;
                any_finished = true;
                // vLLM's FINISHED_LENGTH_CAPPED by max_model_len: cut short of its max_tokens.
                metrics.length_capped += (request.output_tokens < request.max_output_tokens) as u64;
            }
        }
        metrics.record_itl_n(gaps.0, gaps.1);
        any_finished
    }

    /// Removes the finished requests from the running list, keeping the others' order: frees
    /// their blocks, records them and lists them in `finished`, in running order.
    /// `finishing` names them (the decode run's calendar) or, when `None`, the running requests
    /// marked finished are looked up. Only the list from the first finished request on is
    /// moved, and no closure runs per running request: retiring a handful of requests from a
    /// batch of hundreds was 7% of phase 1 as a `retain` (issue 15).
    fn retire_finished(
        &mut self,
        now: SimTime,
        metrics: &mut Metrics,
        finished: &mut Vec<Finished>,
        finishing: Option<&[u32]>,
    ) {
        let mut at = std::mem::take(&mut self.retiring);
        at.clear();
        let running = &self.scheduler.running;
        match finishing {
            Some(ids) => at.extend(
                ids.iter().map(|id| running.iter().position(|r| r == id).expect("a finishing request is running")),
            ),
            None => at.extend((0..running.len()).filter(|&i| self.requests.get(running[i]).status == Status::Finished)),
        }
        at.sort_unstable();
        at.dedup();
        for &i in &at {
            let id = self.scheduler.running[i];
            self.retire(id, now, metrics, finished);
        }
        if let Some(&first) = at.first() {
            let running = &mut self.scheduler.running;
            let (mut write, mut next) = (first, 0);
            for read in first..running.len() {
                if next < at.len() && at[next] == read {
                    next += 1;
                    continue;
                }
                running[write] = running[read];
                write += 1;
            }
            running.truncate(write);
        }
        self.finished += at.len() as u64;
        self.retiring = at;
    }

    /// Retires one finished request (still in the running list, which the caller updates).
    fn retire(&mut self, id: u32, now: SimTime, metrics: &mut Metrics, finished: &mut Vec<Finished>) {
        let mut request = self.requests.remove(id);
        if let RemoteKv::Prefill { .. } = request.remote {
            // The proxy's prefill copy: its blocks wait for the decode side's read, its
            // one token is dropped, and the request lives on as its decode copy.
            let blocks = KvState { blocks: std::mem::take(&mut request.kv.blocks), ..KvState::default() };
            let slot = match self.parked_free.pop() {
                Some(slot) => {
                    self.parked[slot as usize] = Some(blocks);
                    slot
                }
                None => {
                    self.parked.push(Some(blocks));
                    (self.parked.len() - 1) as u32
                }
            };
            self.handoffs.push(Handoff { request: request.decode_copy(self.index, slot) });
            return;
        }
        self.kv.free(&mut request.kv);
        metrics.record_request(RequestRecord::of(&request, now, self.index));
        finished.push(Finished::of(&request));
    }

    /// The remote reads the last plan started (disaggregated decode), appended to `out`.
    pub fn take_transfers(&mut self, out: &mut Vec<TransferStart>) {
        for (id, blocks) in self.scheduler.receiving_started.drain(..) {
            let RemoteKv::Receiving { prefill, parked, since } = self.requests.get(id).remote else {
                unreachable!("a started read belongs to a receiving request")
            };
            out.push(TransferStart { id, blocks, prefill, parked, since });
            self.receiving += 1;
        }
    }

    /// Request `id`'s KV arrived: it counts its prompt as computed but for the last token,
    /// which the next step recomputes to sample the first output token (vLLM
    /// `Scheduler._update_waiting_for_remote_kv`: `num_computed_tokens = min(blocks *
    /// block_size, num_tokens)`, minus one when that is the whole prompt), registers its full
    /// blocks in the prefix cache, and goes back to the front of the waiting queue, where vLLM
    /// keeps requests it skipped while they waited for their KV.
    pub fn transfer_done(&mut self, id: u32) {
        let block_size = self.kv.block_size();
        let request = self.requests.get_mut(id);
        debug_assert!(matches!(request.remote, RemoteKv::Receiving { .. }), "transfer done twice");
        let computed = (request.kv.blocks.len() as u32 * block_size).min(request.num_tokens());
        request.num_computed = if computed == request.num_tokens() { computed - 1 } else { computed };
        request.remote = RemoteKv::Received;
        let tokens = request.num_computed;
        self.kv.cache_loaded(request, tokens);
        self.receiving -= 1;
        self.scheduler.waiting.push_front(id);
    }

    /// Frees the parked blocks of slot `slot` (the decode side finished reading them: vLLM's
    /// prefill side frees them on the decode side's notification, `get_finished`).
    pub fn release_parked(&mut self, slot: u32) {
        let mut blocks = self.parked[slot as usize].take().expect("parked blocks released twice");
        self.kv.free(&mut blocks);
        self.parked_free.push(slot);
    }

    /// Slots holding parked blocks (prefill side) and reads in flight (decode side).
    pub fn in_transfer(&self) -> (usize, usize) {
        (self.parked.len() - self.parked_free.len(), self.receiving)
    }

    /// When this idle replica must look again for work without another event: a load from
    /// the CPU tier finishes then (vLLM's engine keeps stepping while requests wait for loads).
    pub fn next_wake(&self) -> Option<SimTime> {
        self.scheduler.offload.as_ref().and_then(|o| o.next_ready())
    }

    /// Conservation checks after every step in debug and test builds.
    pub fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            self.kv.check_invariants();
            let live = self.scheduler.waiting.len()
                + self.scheduler.running.len()
                + self.held.len()
                + self.receiving
                + self.scheduler.loading();
            if let Some(offload) = &self.scheduler.offload {
                offload.tier.check_invariants_cheap();
            }
            assert_eq!(live, self.requests.live(), "requests not conserved on replica {}", self.index);
            assert_eq!(self.accepted, self.finished + live as u64, "accepted != finished + in flight");
            assert!(self.scheduler.running.len() <= self.scheduler.config.max_num_seqs as usize);
        }
    }
}
