//! The fast path for decoding requests (issue 15, item 2). Once every running request of a
//! replica decodes one token per step, the scheduler's pass over them and the end-of-step pass
//! over them repeat the same work: each computes one token, samples one token after the same
//! gap, and touches the KV cache only at a block boundary. While that holds, the replica keeps
//! those requests in a decode run and plans and ends its steps in O(requests at a block
//! boundary, admitted or finishing) instead of O(running requests): the price of the decodes
//! comes from two sums (`StepTimeModel::decode_step_time`), block boundaries follow from each
//! request's computed tokens modulo the block size, completions from a calendar of finishing
//! steps, and admissions still go through the scheduler's own pass. Every effect (KV blocks in
//! the order the scheduler takes them, metrics, events) is the step-by-step path's, byte for
//! byte; `tests/it/fast_path.rs` holds it.
//!
//! A request in the run keeps its counters (computed and output tokens, last token time) as a
//! base plus the run's step count; they are written back when it reaches a block boundary or
//! finishes, and for all of them when the run ends: before the full path plans a step (a
//! chunked prefill, a preemption, a batch larger than the token budget, a request that did not
//! sample when the step began), and at the end of the simulation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Replica;
use crate::hardware::SeqWork;
use crate::report::metrics::Metrics;
use crate::serving::request::Status;
use crate::sim::{Nanos, SimTime};

/// The decode run of one replica; its buffers are kept from run to run.
#[derive(Debug, Default)]
pub(super) struct DecodeRun {
    open: bool,
    /// Steps planned in runs so far (never reset, so bases stay valid across a run's steps).
    tick: i64,
    /// The last step whose end was applied, and when it ended.
    ended: i64,
    last_end: SimTime,
    /// Per slab id: the request's bases while it is in the run.
    members: Vec<Member>,
    /// Members in the run, and their computed-token bases summed.
    count: usize,
    computed_bases: i64,
    /// Members by computed-token base modulo the block size, as (join order, id), in join
    /// order, which is running order: admissions join at the end of the running list.
    groups: Vec<Vec<(u64, u32)>>,
    next_seq: u64,
    /// (step at whose end it finishes, join order, id) of every member.
    calendar: BinaryHeap<Reverse<(i64, u64, u32)>>,
    work: Vec<SeqWork>,
    boundary: Vec<(u64, u32)>,
    /// The requests that finished in the last step the run ended.
    finishing: Vec<u32>,
}

/// A request in the run: after step `t` was planned its computed tokens are `computed + t`;
/// after step `t` ended its output tokens are `output + t`.
#[derive(Clone, Copy, Debug, Default)]
struct Member {
    computed: i64,
    output: i64,
    /// The first step it was planned in, and its join order.
    joined: i64,
    seq: u64,
}

impl DecodeRun {
    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    /// The requests that finished in the step that `finish_decode_step` ended (a handful, so
    /// that retiring them need not look at every running request); give it back with
    /// [`DecodeRun::put_finishing`].
    pub(super) fn take_finishing(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.finishing)
    }

    pub(super) fn put_finishing(&mut self, finishing: Vec<u32>) {
        self.finishing = finishing;
    }
}

impl Replica {
    /// Plans the next step on the fast path: every running request decodes one token, then the
    /// scheduler's admission pass fills the budget left. `None`, changing nothing, when a
    /// running request is not a plain decode that sampled at `now` (or its blocks are not
    /// exactly those its tokens fill), the batch exceeds the token budget, or a request at a
    /// block boundary would find no free block (the full path preempts).
    pub(super) fn start_decode_step(&mut self, now: SimTime, metrics: &mut Metrics) -> Option<Nanos> {
        // Per-request token gaps (`--vllm-bench-json`) need every request every step.
        if !self.fast_path
            || metrics.detail.is_some()
            || self.scheduler.running.is_empty()
            || self.scheduler.offload.is_some()
        {
            return None;
        }
        let batch = self.scheduler.running.len();
        if batch > self.scheduler.config.max_num_batched_tokens as usize {
            return None;
        }
        let step = self.run.tick + 1;
        let block_size = self.kv.block_size() as i64;
        let allocating = (1 - step).rem_euclid(block_size);
        // Requests that are not in the run yet (all of them when it opens) join it now.
        let first_new = if self.run.open { self.run.count } else { 0 };
        let mut allocations = if self.run.open { self.run.groups[allocating as usize].len() } else { 0 };
        for &id in &self.scheduler.running[first_new..] {
            let r = self.requests.get(id);
            if !self.joins_cleanly(id, now) {
                return None;
            }
            allocations += ((r.num_computed as i64 + 1 - step).rem_euclid(block_size) == allocating) as usize;
        }
        if allocations > self.kv.num_free() as usize {
            return None;
        }
        if !self.run.open {
            self.open_run(block_size as usize);
        }
        self.run.tick = step;
        for position in first_new..batch {
            let id = self.scheduler.running[position];
            self.join(id, step, block_size);
        }
        self.cross_block_boundaries(step);
        let budget = self.scheduler.config.max_num_batched_tokens - batch as u32;
        self.scheduler.schedule_admissions(&mut self.requests, &mut self.kv, &mut self.plan, budget);
        self.run.work.clear();
        for s in &self.plan.scheduled {
            self.run.work.push(SeqWork { query_tokens: s.tokens, cached_tokens: s.computed_before });
            self.requests.get_mut(s.id).first_scheduled.get_or_insert(now);
        }
        let cached = self.run.computed_bases + (step - 1) * batch as i64;
        let duration = self.step_time.decode_step_time(batch as u32, cached as u64, &self.run.work);
        self.release_held();
        self.busy = true;
        self.step_started = now;
        let tokens = batch as u32 + self.plan.total_tokens();
        let (running, waiting) = (self.scheduler.running.len(), self.scheduler.waiting.len());
        metrics.on_step(now, self.index, duration, tokens, running, waiting, self.kv.usage());
        Some(duration)
    }

    /// Ends a step planned on the fast path: every member samples a token after the same gap,
    /// the members whose last token this was are written back and marked finished, and the
    /// requests admitted in the step sample as the full path has them. True when any finished.
    pub(super) fn finish_decode_step(&mut self, now: SimTime, metrics: &mut Metrics) -> bool {
        let step = self.run.tick;
        self.run.finishing.clear();
        (self.run.ended, self.run.last_end) = (step, now);
        metrics.record_itl_n(now.since(self.step_started), self.run.count as u64);
        while let Some(&Reverse((end, _, id))) = self.run.calendar.peek() {
            if end != step {
                debug_assert!(end > step, "a member outlived its last step");
                break;
            }
            self.run.calendar.pop();
            self.leave(id);
            let request = self.requests.get_mut(id);
            request.status = Status::Finished;
            // vLLM's FINISHED_LENGTH_CAPPED by max_model_len: cut short of its max_tokens.
            metrics.length_capped += (request.output_tokens < request.max_output_tokens) as u64;
            self.run.finishing.push(id);
        }
        if self.sample_scheduled(now, metrics) {
            let requests = &self.requests;
            let admitted = self.plan.scheduled.iter().map(|s| s.id);
            self.run.finishing.extend(admitted.filter(|&id| requests.get(id).status == Status::Finished));
        }
        !self.run.finishing.is_empty()
    }

    /// Writes every member's counters back and closes the run; the full path then sees the
    /// state the step-by-step path would have left.
    pub fn settle(&mut self) {
        if !std::mem::take(&mut self.run.open) {
            return;
        }
        for position in 0..self.run.count {
            let id = self.scheduler.running[position];
            self.write_back(id);
        }
        self.run.count = 0;
    }

    /// Whether running request `id` can join the run at `now`: a decode (one token, the one
    /// it sampled at `now`, left to compute), holding exactly the blocks its computed tokens
    /// fill (the schedule of block boundaries assumes it).
    fn joins_cleanly(&self, id: u32, now: SimTime) -> bool {
        let r = self.requests.get(id);
        let block_size = self.kv.block_size();
        let computed = r.num_computed;
        computed + 1 == r.num_tokens()
            && r.last_token == Some(now)
            && r.kv.blocks.len() == computed.div_ceil(block_size) as usize
            && (!self.kv.prefix_caching() || r.kv.num_cached_blocks == (computed / block_size) as usize)
    }

    fn open_run(&mut self, block_size: usize) {
        let run = &mut self.run;
        run.open = true;
        run.ended = run.tick;
        run.count = 0;
        run.computed_bases = 0;
        run.calendar.clear();
        run.groups.resize_with(block_size, Vec::new);
        run.groups.iter_mut().for_each(Vec::clear);
    }

    /// Request `id` (at the end of the running list) joins the run as it is planned in `step`.
    fn join(&mut self, id: u32, step: i64, block_size: i64) {
        let r = self.requests.get(id);
        let max_model_len = self.scheduler.config.max_model_len as i64;
        let (computed, output) = (r.num_computed as i64, r.output_tokens as i64);
        let seq = self.run.next_seq;
        self.run.next_seq += 1;
        let member = Member { computed: computed + 1 - step, output: output + 1 - step, joined: step, seq };
        // It finishes at the end of the step that reaches its output length or max_model_len.
        let left = (r.max_output_tokens as i64 - output).min(max_model_len - computed - 1);
        self.run.calendar.push(Reverse((step - 1 + left, seq, id)));
        self.run.groups[member.computed.rem_euclid(block_size) as usize].push((seq, id));
        self.run.computed_bases += member.computed;
        self.run.count += 1;
        if self.run.members.len() <= id as usize {
            self.run.members.resize(id as usize + 1, Member::default());
        }
        self.run.members[id as usize] = member;
    }

    /// Request `id` finished: its counters are written back and it leaves the run.
    fn leave(&mut self, id: u32) {
        self.write_back(id);
        let member = std::mem::take(&mut self.run.members[id as usize]);
        let group = &mut self.run.groups[member.computed.rem_euclid(self.kv.block_size() as i64) as usize];
        let at = group.binary_search(&(member.seq, id)).expect("a member is in its group");
        group.remove(at);
        self.run.computed_bases -= member.computed;
        self.run.count -= 1;
    }

    /// Writes member `id`'s counters as the step-by-step path has them now.
    fn write_back(&mut self, id: u32) {
        let member = self.run.members[id as usize];
        let request = self.requests.get_mut(id);
        request.num_computed = (member.computed + self.run.tick) as u32;
        request.output_tokens = (member.output + self.run.ended) as u32;
        if self.run.ended >= member.joined {
            request.last_token = Some(self.run.last_end);
        }
    }

    /// Plans `step`'s token for the members where it does anything: one whose computed tokens
    /// fill their last block takes a new one, and (with prefix caching) one whose token fills a
    /// block registers it. Both go through `allocate_slots`, in running order, as the
    /// scheduler's pass would; the caller checked that the pool has the blocks.
    fn cross_block_boundaries(&mut self, step: i64) {
        let block_size = self.kv.block_size() as i64;
        let allocating = (1 - step).rem_euclid(block_size) as usize;
        let filling = (-step).rem_euclid(block_size) as usize;
        let mut boundary = std::mem::take(&mut self.run.boundary);
        boundary.clear();
        if self.kv.prefix_caching() && filling != allocating {
            merge(&self.run.groups[allocating], &self.run.groups[filling], &mut boundary);
        } else {
            boundary.extend_from_slice(&self.run.groups[allocating]);
        }
        let max_model_len = self.scheduler.config.max_model_len;
        for &(_, id) in &boundary {
            self.write_back(id);
            let request = self.requests.get_mut(id);
            // As the scheduler sees it: this step's token not computed yet.
            request.num_computed -= 1;
            let allocated = self.kv.allocate_slots(request, 1, &[], max_model_len);
            assert!(allocated, "a decode run took a block the pool did not have");
            request.num_computed += 1;
        }
        self.run.boundary = boundary;
    }
}

/// Merges two lists in join order (running order) into `out`.
fn merge(a: &[(u64, u32)], b: &[(u64, u32)], out: &mut Vec<(u64, u32)>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}
